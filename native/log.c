/*
 * log.c -- the commit path, trim and recovery.
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
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static inline uint32_t rec_lines(uint32_t nextents)
{
	return 1 + (nextents > PASTE_REC_INLINE_EXT
		    ? (nextents - PASTE_REC_INLINE_EXT + PASTE_REC_EXT_PER_LINE - 1) / PASTE_REC_EXT_PER_LINE : 0);
}

/* rec_ext -- extent i of a record: four in the first line, eight in each further line */
static inline struct paste_extent *rec_ext(struct paste_log_rec *r, uint32_t i)
{
	if (i < PASTE_REC_INLINE_EXT)
		return &r->ext[i];
	i -= PASTE_REC_INLINE_EXT;
	return (struct paste_extent *)((uint8_t *)r + PASTE_CACHELINE * (1 + i / PASTE_REC_EXT_PER_LINE)) +
	       i % PASTE_REC_EXT_PER_LINE;
}

/* rec_crc -- crc32c of a record's first `lines` lines, its rec_crc field read as zero.
 * Never writes: the walker also runs over read-only mappings. */
static uint32_t rec_crc(const struct paste_log_rec *r, uint32_t lines)
{
	static const uint8_t zero[4];
	const uint8_t *b = (const uint8_t *)r;
	size_t at = offsetof(struct paste_log_rec, rec_crc);
	uint32_t c = paste_crc32c(0, b, at);
	c = paste_crc32c(c, zero, sizeof(zero));
	return paste_crc32c(c, b + at + 4, (size_t)lines * PASTE_CACHELINE - at - 4);
}

static inline struct paste_log_rec *rec_at(struct paste_pool *p, uint64_t pos)
{
	return (struct paste_log_rec *)(p->records + pos % p->cap);
}

static bool extent_in_pool(const struct paste_pool *p, const struct paste_extent *e)
{
	return e->buf_idx > 0 && e->buf_idx < p->sb.nbufs && e->len > 0 &&
	       (uint32_t)e->off + e->len <= p->sb.buf_size;
}

static uint32_t payload_crc(struct paste_pool *p, struct paste_log_rec *r)
{
	uint32_t c = 0;
	for (uint32_t i = 0; i < r->nextents; i++) {
		struct paste_extent *e = rec_ext(r, i);
		c = paste_crc32c(c, paste_buf(p, e->buf_idx) + e->off, e->len);
	}
	return c;
}

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
 */
static void flush_batch(struct paste_pool *p)
{
	for (uint64_t pos = p->ptail; pos < p->vtail;) {
		struct paste_log_rec *r = rec_at(p, pos);
		if (r->flags & PASTE_REC_PAD) {
			p->ops->flush(p, r, PASTE_CACHELINE);
		} else {
			for (uint32_t i = 0; i < r->nextents; i++) {
				struct paste_extent *e = rec_ext(r, i);
				p->ops->flush(p, paste_buf(p, e->buf_idx) + e->off, e->len);
			}
			p->ops->flush(p, r, (size_t)r->nlines * PASTE_CACHELINE);
		}
		pos += (uint64_t)r->nlines * PASTE_CACHELINE;
	}
}

static int commit_steps(struct paste_pool *p);

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
	p->ops->flush(p, &p->log->tail, sizeof(p->log->tail));
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

/* flush_tail -- queue the stored tail for the next drain (trim, before the head moves) */
static void flush_tail(struct paste_pool *p)
{
	p->ops->flush(p, &p->log->tail, sizeof(p->log->tail));
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

/* -------------------------------------------------------------------- walk */

/*
 * walk_check -- is the record at pos whole? 0, or a negative code with the
 * reason in the last error. Checks only what recovery must trust: geometry,
 * the record crc, dense sequence numbers, extents inside the pool.
 */
static int walk_check(struct paste_pool *p, uint64_t pos, uint64_t end, uint64_t expect)
{
	struct paste_log_rec *r = rec_at(p, pos);
	uint64_t off = pos % p->cap;
	if (r->nlines == 0 || off + (uint64_t)r->nlines * PASTE_CACHELINE > p->cap ||
	    pos + (uint64_t)r->nlines * PASTE_CACHELINE > end)
		return paste_set_error(PASTE_ERR_POOL_CORRUPT, "log torn at position %llu: record of %u lines overruns the log",
				       (unsigned long long)pos, r->nlines);
	if (r->flags & PASTE_REC_PAD) {
		return rec_crc(r, 1) == r->rec_crc ? 0
			: paste_set_error(PASTE_ERR_POOL_CORRUPT, "log torn at position %llu: bad pad record", (unsigned long long)pos);
	}
	if (r->nextents > PASTE_REC_MAX_EXTENTS || r->nlines != rec_lines(r->nextents))
		return paste_set_error(PASTE_ERR_POOL_CORRUPT, "log torn at position %llu: %u extents in %u lines",
				       (unsigned long long)pos, r->nextents, r->nlines);
	if (rec_crc(r, r->nlines) != r->rec_crc)
		return paste_set_error(PASTE_ERR_POOL_CORRUPT, "log torn at position %llu: record checksum mismatch",
				       (unsigned long long)pos);
	if (r->seq == 0 || (expect && r->seq != expect))
		return paste_set_error(PASTE_ERR_POOL_CORRUPT, "log torn at position %llu: sequence %llu where %llu was due",
				       (unsigned long long)pos, (unsigned long long)r->seq, (unsigned long long)expect);
	uint64_t total = 0;
	for (uint32_t i = 0; i < r->nextents; i++) {
		struct paste_extent *e = rec_ext(r, i);
		if (!extent_in_pool(p, e))
			return paste_set_error(PASTE_ERR_POOL_CORRUPT, "log torn at position %llu: seq %llu names buffer %u outside the pool",
					       (unsigned long long)pos, (unsigned long long)r->seq, e->buf_idx);
		total += e->len;
	}
	if (total != r->len)
		return paste_set_error(PASTE_ERR_POOL_CORRUPT, "log torn at position %llu: extents hold %llu bytes, record says %u",
				       (unsigned long long)pos, (unsigned long long)total, r->len);
	return 0;
}

int paste_log_walk_begin(paste_pool *p)
{
	if (!p)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "walk: no pool");
	paste_log_init(p);   /* also for read-only pools, which never recover */
	p->walk_pos = __atomic_load_n(&p->log->head, __ATOMIC_ACQUIRE);
	p->walk_end = __atomic_load_n(&p->log->tail, __ATOMIC_ACQUIRE);
	p->walk_expect = 0;
	if (p->walk_end < p->walk_pos || p->walk_end - p->walk_pos > p->cap)
		return paste_set_error(PASTE_ERR_POOL_CORRUPT, "log header is inconsistent: head %llu, tail %llu, capacity %llu",
				       (unsigned long long)p->walk_pos, (unsigned long long)p->walk_end, (unsigned long long)p->cap);
	return 0;
}

int paste_log_walk_next(paste_pool *p, struct paste_rec_info *out)
{
	uint64_t head_seq = __atomic_load_n(&p->log->head_seq, __ATOMIC_ACQUIRE);
	while (p->walk_pos < p->walk_end) {
		uint64_t pos = p->walk_pos;
		int rc = walk_check(p, pos, p->walk_end, p->walk_expect);
		if (rc)
			return rc;
		struct paste_log_rec *r = rec_at(p, pos);
		p->walk_pos += (uint64_t)r->nlines * PASTE_CACHELINE;
		if (r->flags & PASTE_REC_PAD)
			continue;
		p->walk_expect = r->seq + 1;
		if (r->seq < head_seq)
			continue;   /* trimmed; the head had not moved past it yet */
		memset(out, 0, sizeof(*out));
		out->seq = r->seq;
		out->pos = pos;
		out->len = r->len;
		out->nextents = r->nextents;
		out->stored_crc = r->payload_crc;
		out->computed_crc = payload_crc(p, r);
		out->status = out->computed_crc == out->stored_crc ? PASTE_REC_OK : PASTE_REC_BAD_CRC;
		return 1;
	}
	return 0;
}

int paste_log_walk_seek(paste_pool *p, uint64_t seq)
{
	/* Only the structure is checked on the way (walk_check, the record's own
	 * checksum over its lines): the payload crc32c, most of a walk's cost, is
	 * left for the records the caller reads. One call, not one per record:
	 * a page of the log browser deep in a long log used to pause the data
	 * path for a walk through koffi from the head. */
	while (p->walk_pos < p->walk_end) {
		int rc = walk_check(p, p->walk_pos, p->walk_end, p->walk_expect);
		if (rc)
			return rc;
		struct paste_log_rec *r = rec_at(p, p->walk_pos);
		if (!(r->flags & PASTE_REC_PAD)) {
			if (r->seq >= seq)
				return 0;
			p->walk_expect = r->seq + 1;
		}
		p->walk_pos += (uint64_t)r->nlines * PASTE_CACHELINE;
	}
	return 0;
}

int64_t paste_log_read(paste_pool *p, uint64_t pos, void *buf, uint64_t cap)
{
	struct paste_log_rec *r = rec_at(p, pos);
	uint64_t n = 0;
	for (uint32_t i = 0; i < r->nextents && n < cap; i++) {
		struct paste_extent *e = rec_ext(r, i);
		uint64_t k = e->len < cap - n ? e->len : cap - n;
		memcpy((uint8_t *)buf + n, paste_buf(p, e->buf_idx) + e->off, k);
		n += k;
	}
	return (int64_t)n;
}

int paste_log_extent(paste_pool *p, uint64_t pos, uint32_t i, struct paste_extent *out)
{
	struct paste_log_rec *r = rec_at(p, pos);
	if (i >= r->nextents)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "record at %llu has %u extents", (unsigned long long)pos, r->nextents);
	*out = *rec_ext(r, i);
	return 0;
}

/* ---------------------------------------------------------------- recovery */

void paste_log_init(struct paste_pool *p)
{
	p->records = p->base + p->sb.log_ofs + PASTE_LOG_HDR_SIZE;
	p->cap = p->sb.log_size - PASTE_LOG_HDR_SIZE;
}

/* What recover_walk has found so far. */
struct recover_books {
	uint64_t first_live_pos;      /* UINT64_MAX until a live record */
	uint64_t last_seq;
};

/*
 * recover_walk -- walk on to walk_end, referencing every live record's
 * buffers (BS_LOGGED, with their counts) and counting it into *out; a torn
 * record cuts the log there, durably. 0 or a negative error.
 */
static int recover_walk(struct paste_pool *p, struct paste_recovery *out, struct recover_books *bk)
{
	struct paste_rec_info info;
	for (;;) {
		uint64_t before = p->walk_pos;
		int r = paste_log_walk_next(p, &info);
		if (r == 0)
			return 0;
		if (r < 0) {
			out->torn = 1;
			out->torn_pos = before;
			out->discarded = p->walk_end - before;
			/* The cut is durable before anything new is appended over it. */
			p->walk_end = before;
			__atomic_store_n(&p->log->tail, before, __ATOMIC_RELEASE);
			return paste_persist_word(p, &p->log->tail);
		}
		if (bk->first_live_pos == UINT64_MAX)
			bk->first_live_pos = info.pos;
		bk->last_seq = info.seq;
		struct paste_log_rec *rec = rec_at(p, info.pos);
		p->log_bytes += rec->len;
		for (uint32_t i = 0; i < rec->nextents; i++) {
			uint32_t b = rec_ext(rec, i)->buf_idx;
			if (p->refs[b]++ == 0)
				out->live_bufs++;
			paste_buf_state(p, b, BS_LOGGED);
		}
		if (info.status == PASTE_REC_OK) {
			if (!out->first_seq)
				out->first_seq = info.seq;
			out->records++;
			out->bytes += info.len;
		} else if (!out->corrupt++) {
			out->first_corrupt_seq = info.seq;
		}
	}
}

/*
 * beyond_tail -- where the log really ends, from pos (the persistent tail):
 * past it lie the records the last run committed after its tail last reached
 * the media (at most one batch, log.c's header). Each must prove itself
 * whole: structure and record checksum, the next sequence number (expect),
 * this epoch, room before the head's lap, and a payload that matches its crc
 * (a payload crc that fails here is a batch cut by the power, not a handler's
 * scribble: nothing of it was acknowledged). The first that does not ends it.
 */
static uint64_t beyond_tail(struct paste_pool *p, uint64_t pos, uint64_t head, uint64_t expect, uint32_t epoch)
{
	for (;;) {
		if (walk_check(p, pos, head + p->cap, expect) != 0)
			return pos;
		struct paste_log_rec *r = rec_at(p, pos);
		if (r->epoch != epoch)
			return pos;
		if (!(r->flags & PASTE_REC_PAD)) {
			if (payload_crc(p, r) != r->payload_crc)
				return pos;
			expect++;
		}
		pos += (uint64_t)r->nlines * PASTE_CACHELINE;
	}
}

/*
 * paste_log_recover -- the log half of recovery: walk from head to the
 * persistent tail, cut a torn tail durably, go on past the tail over the last
 * batch if its tail never reached the media, move the head past records a
 * trim had released, open a new epoch, and mark every live record's buffers
 * BS_LOGGED with their reference counts. The buffer books (paste_bufs_init)
 * exist already.
 */
int paste_log_recover(struct paste_pool *p, struct paste_recovery *out)
{
	int rc = paste_log_walk_begin(p);
	if (rc)
		return rc;
	p->log_bytes = 0;

	uint64_t head = p->walk_pos, head_seq = p->log->head_seq, epoch = p->log->epoch;
	struct recover_books bk = { UINT64_MAX, 0 };
	rc = recover_walk(p, out, &bk);
	/* Epoch 0: the pool was only ever written with the tail persisted after
	 * each batch (before epochs), so nothing past it can be trusted. */
	if (!rc && !out->torn && epoch) {
		uint64_t expect = p->walk_expect ? p->walk_expect : head_seq;
		uint64_t end = beyond_tail(p, p->walk_end, head, expect, (uint32_t)epoch);
		if (end > p->walk_end) {
			uint64_t before = out->records + out->corrupt;
			p->walk_end = end;
			rc = recover_walk(p, out, &bk);
			out->beyond_tail = out->records + out->corrupt - before;
			/* Durable before the new epoch: with the epoch moved on, these
			 * records would no longer pass as whole past an older tail. */
			if (!rc) {
				__atomic_store_n(&p->log->tail, p->walk_end, __ATOMIC_RELEASE);
				rc = paste_persist_word(p, &p->log->tail);
			}
		}
	}
	if (rc)
		return rc;
	/* A new epoch: whatever lies past the tail now (a cut-off batch, a torn
	 * record's neighbours) can never pass as this run's. */
	__atomic_store_n(&p->log->epoch, epoch + 1, __ATOMIC_RELEASE);
	rc = paste_persist_word(p, &p->log->epoch);
	if (rc)
		return rc;
	p->epoch = (uint32_t)(epoch + 1);

	/* Trimmed records the head had not passed yet: move the head now. */
	uint64_t live_head = bk.first_live_pos != UINT64_MAX ? bk.first_live_pos : p->walk_end;
	if (live_head != head) {
		for (uint64_t q = head; q < live_head;) {
			struct paste_log_rec *r = rec_at(p, q);
			if (!(r->flags & PASTE_REC_PAD))
				out->skipped++;
			q += (uint64_t)r->nlines * PASTE_CACHELINE;
		}
		__atomic_store_n(&p->log->head, live_head, __ATOMIC_RELEASE);
		rc = paste_persist_word(p, &p->log->head);
		if (rc)
			return rc;
	}
	p->head = live_head;
	p->head_seq = head_seq;
	p->vtail = p->ptail = p->walk_end;
	p->next_seq = bk.last_seq ? bk.last_seq + 1 : head_seq;
	if (p->next_seq < head_seq)
		p->next_seq = head_seq;
	p->committed_seq = p->next_seq - 1;
	out->last_seq = bk.last_seq;
	out->next_seq = p->next_seq;
	return 0;
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
