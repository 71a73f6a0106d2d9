/*
 * log.c -- the commit path, trim, and the reserve kept for the cleaner;
 * reading the log back (the walker, recovery) is logwalk.c.
 *
 * The log is an index of records that name pool buffers: logging a request
 * writes no payload byte, it flushes the payload's cache lines where the
 * request arrived and appends {seq, extents, crc32c}. Persist order per batch:
 *
 *   1. append records: crc32c of the payload   (paste_log_append, per record)
 *   2. flush the batch's payload and record
 *      lines, and the tail word the previous
 *      commit stored; then drain, once:
 *      sfence / one msync                      (paste_log_commit)
 *   3. store the tail over this batch          (paste_log_commit)
 *   4. only now may replies leave              (paste_commit, reply.c)
 *
 * So the tail never covers a record that is not durable, and after a power
 * failure it lags by at most the last batch. Recovery verifies every record
 * below the tail: a structurally bad one (torn) stops the walk and the log is
 * cut there; a committed record whose payload no longer matches its crc (a
 * handler scribbled on a logged buffer) is reported and never replayed. Past
 * the tail it takes only records that prove themselves whole (paste.h, the
 * log), and the first one that does not ends the log: nothing after it was
 * acknowledged, since replies wait for the drain.
 */
#include "logrec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ append */

/* write_pad -- fill [pos, end of the record area) so the next record starts at offset 0 */
static void write_pad(struct paste_pool *p, uint64_t pos, uint64_t bytes)
{
	struct paste_log_rec *r = rec_at(p, pos);
	memset(r, 0, PASTE_CACHELINE);
	r->flags = PASTE_REC_PAD;
	r->nlines = (uint16_t)(bytes / PASTE_CACHELINE);
	r->epoch = p->epoch;
	/* Only the first line is read back for a PAD; its crc covers that line. */
	r->rec_crc = rec_crc(r, 1);
}

int64_t paste_log_append(struct paste_pool *p, const struct paste_extent *ext, uint32_t n)
{
	if (n > PASTE_REC_MAX_EXTENTS)
		return paste_set_error(PASTE_ERR_HANDLER, "log: %u extents, at most %u per record", n, PASTE_REC_MAX_EXTENTS);
	uint64_t total = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct paste_extent *e = &ext[i];
		if (!extent_in_pool(p, e))
			return paste_set_error(PASTE_ERR_HANDLER,
				"log: extent %u (buffer %u, offset %u, length %u) is outside the pool's %u buffers of %u bytes",
				i, e->buf_idx, e->off, e->len, p->sb.nbufs, p->sb.buf_size);
		uint8_t st = p->bstate[e->buf_idx];
		if (st != BS_RX_USER && st != BS_LOGGED)
			return paste_set_error(PASTE_ERR_HANDLER,
				"log: buffer %u is not the handler's to log (it is %s)", e->buf_idx,
				st == BS_FREE ? "free" : st == BS_TX ? "in a TX slot" : st == BS_RX_KERNEL ? "an empty RX slot" : "reserved");
		total += e->len;
	}
	if (total > UINT32_MAX)
		return paste_set_error(PASTE_ERR_HANDLER, "log: a record of %llu bytes is too large", (unsigned long long)total);

	uint64_t need = (uint64_t)rec_lines(n) * PASTE_CACHELINE;
	uint64_t off = p->vtail % p->cap;
	uint64_t pad = off + need > p->cap ? p->cap - off : 0;
	if (p->vtail + pad + need - p->head > p->cap)
		return paste_set_error(PASTE_ERR_LOG_FULL,
			"log: the index is full (%llu of %llu bytes used); trim committed records",
			(unsigned long long)(p->vtail - p->head), (unsigned long long)p->cap);
	if (pad) {
		write_pad(p, p->vtail, pad);
		p->vtail += pad;
	}

	struct paste_log_rec *r = rec_at(p, p->vtail);
	memset(r, 0, need);
	r->seq = p->next_seq;
	r->len = (uint32_t)total;
	r->nextents = (uint16_t)n;
	r->nlines = (uint16_t)(need / PASTE_CACHELINE);
	r->epoch = p->epoch;
	uint32_t crc = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *data = paste_buf(p, ext[i].buf_idx) + ext[i].off;
		*rec_ext(r, i) = ext[i];
		crc = paste_crc32c(crc, data, ext[i].len);
	}
	r->payload_crc = crc;
	r->rec_crc = rec_crc(r, r->nlines);
	/* Nothing is flushed here: the commit flushes the batch's payload and
	 * record lines together, right before its one fence. A flush per record
	 * would also make the next locked instruction (the log mutex) wait for
	 * the write-back, which measured as the largest cost of log(). */

	for (uint32_t i = 0; i < n; i++)
		p->refs[ext[i].buf_idx]++;
	if (p->sim)
		paste_sim_note_append(p, p->next_seq, (uint32_t)total, crc);
	p->vtail += need;
	p->log_bytes += total;
	p->stats.records++;
	p->stats.payload_bytes += total;
	return (int64_t)p->next_seq++;
}

/*
 * flush_batch -- queue every line the uncommitted records touch: their own
 * lines and their payload, in place. The records themselves say what to
 * flush, so nothing is remembered on the per-record path.
 *
 * A record's fields are read before its lines are flushed, never after: a
 * load from a line with a flush in flight waits for the write-back: about
 * 490 TSC ticks a line against 7 the other way round, for clwb on an AMD
 * EPYC (bench/flush-load.c). Rereading nlines after the flush was 8.6% of
 * the server's CPU under pipelined SETs.
 */
static void flush_batch(struct paste_pool *p)
{
	for (uint64_t pos = p->ptail; pos < p->vtail;) {
		struct paste_log_rec *r = rec_at(p, pos);
		size_t lines = r->nlines;
		bool pad = r->flags & PASTE_REC_PAD;
		if (!pad) {
			for (uint32_t i = 0, n = r->nextents; i < n; i++) {
				const struct paste_extent *e = rec_ext(r, i);
				p->ops->flush(p, paste_buf(p, e->buf_idx) + e->off, e->len);
			}
		}
		p->ops->flush(p, r, pad ? PASTE_CACHELINE : lines * PASTE_CACHELINE);
		pos += (uint64_t)lines * PASTE_CACHELINE;
	}
}

static int commit_steps(struct paste_pool *p);

/* flush_tail -- queue the stored tail for the next drain: a commit's, or a trim's before the head moves */
static void flush_tail(struct paste_pool *p)
{
	p->ops->flush(p, &p->log->tail, sizeof(p->log->tail));
}

/* paste_log_commit -- make every appended record durable, then store the tail that covers them */
int paste_log_commit(struct paste_pool *p)
{
	if (p->vtail == p->ptail)
		return 0;
	if (p->sim)
		paste_sim_tag(p, PASTE_SIM_TAG_COMMIT, 0);
	int rc = commit_steps(p);
	if (p->sim)
		paste_sim_tag(p, 0, PASTE_SIM_TAG_COMMIT);
	return rc;
}

/* commit_steps -- paste_log_commit's persist steps, in their order */
static int commit_steps(struct paste_pool *p)
{
#ifdef PASTE_TEST_BROKEN_ORDER
	/* Deliberately wrong, for the crash-test's own test: the tail is stored
	 * over records that are not durable yet, and may reach the media first. */
	__atomic_store_n(&p->log->tail, p->vtail, __ATOMIC_RELEASE);
#endif
	flush_batch(p);
	/* The tail the previous commit stored rides with this batch: the one
	 * drain below makes it durable along with these records. */
	flush_tail(p);
	int rc = p->ops->drain(p);
	if (rc)
		return rc;
	/* Everything below vtail is durable: the tail may say so. It is not
	 * persisted now (that would be a second msync per batch): if the power
	 * fails first, recovery finds these records past the durable tail. */
	__atomic_store_n(&p->log->tail, p->vtail, __ATOMIC_RELEASE);
	p->ptail = p->vtail;
	p->committed_seq = p->next_seq - 1;
	p->stats.batches++;
	if (p->sim)
		paste_sim_note_commit(p, p->committed_seq);
	return 0;
}

/*
 * paste_log_abort -- forget the records appended since the last commit: the
 * batch that appended them was cut off (its worker terminated) and will never
 * commit. No reply for them left (replies wait for the commit), so dropping
 * them loses nothing that was acknowledged. Their lines are zeroed and made
 * durable before anything is appended over them: some of them may have
 * reached the media already, and recovery, which goes on past the tail over
 * records that look whole, must never find them. Their buffers lose the
 * references.
 */
int64_t paste_log_abort(struct paste_pool *p)
{
	int64_t dropped = 0;
	for (uint64_t pos = p->ptail; pos < p->vtail;) {
		struct paste_log_rec *r = rec_at(p, pos);
		size_t bytes = (size_t)r->nlines * PASTE_CACHELINE;
		if (!(r->flags & PASTE_REC_PAD)) {
			for (uint32_t i = 0; i < r->nextents; i++) {
				uint32_t b = rec_ext(r, i)->buf_idx;
				p->refs[b]--;
				paste_buf_maybe_free(p, b);
			}
			p->stats.records--;
			p->stats.payload_bytes -= r->len;
			p->log_bytes -= r->len;
			dropped++;
		}
		memset(r, 0, bytes);
		p->ops->flush(p, r, bytes);
		pos += bytes;
	}
	/* If the zeroes cannot be made durable, say so: the caller fails, and the
	 * next commit's drain (the same media) would fail the same way. */
	int rc = p->vtail != p->ptail ? p->ops->drain(p) : 0;
	p->vtail = p->ptail;
	p->next_seq = p->committed_seq + 1;
	return rc ? rc : dropped;
}

/* -------------------------------------------------------------------- trim */

int64_t paste_trim(paste_pool *p, uint64_t upto)
{
	if (!p || !p->recovered)
		return paste_set_error(PASTE_ERR_STATE, "trim: the pool is not open for writing or not recovered");
	pthread_mutex_lock(&p->lock);
	if (upto > p->committed_seq)
		upto = p->committed_seq;   /* only durable records can be released */
	uint64_t pos = p->head, count = 0;
	while (pos < p->ptail) {
		struct paste_log_rec *r = rec_at(p, pos);
		if (!(r->flags & PASTE_REC_PAD) && r->seq > upto)
			break;
		if (!(r->flags & PASTE_REC_PAD))
			count++;
		pos += (uint64_t)r->nlines * PASTE_CACHELINE;
	}
	if (pos == p->head) {
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	uint64_t old = p->head;
	/* From here on the release may reach the media, in part or whole. */
	if (p->sim) {
		paste_sim_note_trim(p, upto);
		paste_sim_tag(p, PASTE_SIM_TAG_TRIM, 0);
	}
	/* head_seq first: a crash before head moves leaves records recovery skips. */
	__atomic_store_n(&p->log->head_seq, upto + 1 > p->head_seq ? upto + 1 : p->head_seq, __ATOMIC_RELEASE);
	/* The head may move past the durable tail (the last commit's tail rides
	 * with the next batch): persist the tail with head_seq, so the head never
	 * passes it on the media. */
	flush_tail(p);
	int rc = paste_persist_word(p, &p->log->head_seq);
	if (!rc) {
		__atomic_store_n(&p->log->head, pos, __ATOMIC_RELEASE);
		rc = paste_persist_word(p, &p->log->head);
	}
	if (p->sim)
		paste_sim_tag(p, 0, PASTE_SIM_TAG_TRIM);
	if (rc) {
		pthread_mutex_unlock(&p->lock);
		return rc;
	}
	p->head_seq = p->log->head_seq;
	p->head = pos;
	/* Only now, with the release durable, may the buffers be reused. */
	for (uint64_t q = old; q < pos;) {
		struct paste_log_rec *r = rec_at(p, q);
		if (!(r->flags & PASTE_REC_PAD)) {
			p->log_bytes -= r->len;
			for (uint32_t i = 0; i < r->nextents; i++) {
				uint32_t b = rec_ext(r, i)->buf_idx;
				--p->refs[b];
				paste_buf_maybe_free(p, b);
			}
		}
		q += (uint64_t)r->nlines * PASTE_CACHELINE;
	}
	p->stats.trimmed += count;
	pthread_mutex_unlock(&p->lock);
	return (int64_t)count;
}

/* paste_log_room -- requests the log can take before a batch must wait for a trim */
uint32_t paste_log_room(struct paste_pool *p)
{
	uint64_t lines = (p->cap - (p->vtail - p->head)) / PASTE_CACHELINE;
	/* keep room for a pad and a long multi-extent record per request */
	return lines > 1024 ? (uint32_t)((lines - 1024) / 2 > UINT32_MAX ? UINT32_MAX : (lines - 1024) / 2) : 0;
}

/* ---------------------------------------------------------------- pressure */

/*
 * The reserve: a sixteenth of the log and a thirty-second of the buffers (at
 * least a few records' worth of each) are kept for the cleaner. Outside
 * on_clean a record that would eat into them is refused, so a full pool
 * still receives requests (their buffers come back when they are released
 * unlogged) and the cleaner can always re-log and copy its way out.
 */
static uint64_t log_reserve(const struct paste_pool *p)
{
	uint64_t r = p->cap / 16;
	return r < 64 * PASTE_CACHELINE ? 64 * PASTE_CACHELINE : r;
}

static uint32_t buf_reserve(const struct paste_pool *p)
{
	uint32_t r = p->sb.nbufs / 32;
	return r < 16 ? 16 : r;
}

void paste_log_pressure(struct paste_pool *p, struct paste_pressure *out)
{
	memset(out, 0, sizeof(*out));
	out->free_bufs = p->nfree;
	out->nbufs = p->sb.nbufs;
	out->reserve_bufs = buf_reserve(p);
	out->log_used = p->vtail - p->head;
	out->log_capacity = p->cap;
	out->log_reserve = log_reserve(p);
	out->live_bufs = p->nlogged;
	out->ring_bufs = p->sb.nbufs - 1 - p->nfree - p->nlogged;
	if (out->free_bufs < out->nbufs / 4)
		out->flags |= PASTE_PRESSURE_BUFS;
	if (out->log_used > out->log_capacity / 2)
		out->flags |= PASTE_PRESSURE_LOG;
	if (paste_log_reserved(p, 1))
		out->flags |= PASTE_PRESSURE_FULL;
}

int paste_log_reserved(struct paste_pool *p, uint32_t n)
{
	uint64_t need = (uint64_t)rec_lines(n) * PASTE_CACHELINE;
	if (p->nfree <= buf_reserve(p))
		return paste_set_error(PASTE_ERR_POOL_FULL,
			"pool full: %u of %u buffers free, the last %u are kept for the cleaner; free space (delete or trim) or use a bigger pool",
			p->nfree, p->sb.nbufs, buf_reserve(p));
	if (p->cap - (p->vtail - p->head) < log_reserve(p) + need)
		return paste_set_error(PASTE_ERR_LOG_FULL,
			"log full: %llu of %llu bytes used, the last %llu are kept for the cleaner; free space (delete or trim) or use a bigger log",
			(unsigned long long)(p->vtail - p->head), (unsigned long long)p->cap, (unsigned long long)log_reserve(p));
	return 0;
}

int paste_log_discard(paste_pool *p)
{
	if (!p || !p->recovered)
		return paste_set_error(PASTE_ERR_STATE, "discard: the pool is not recovered");
	pthread_mutex_lock(&p->lock);
	int n = (int)paste_log_abort(p);   /* a count, or a negative error */
	pthread_mutex_unlock(&p->lock);
	return n;
}
