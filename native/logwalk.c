/*
 * logwalk.c -- reading the log: the walker (log dump, verify, tail, replay,
 * the console's pages) and the log half of recovery, which is a walk that
 * also cuts a torn tail, goes on past a tail the power left one batch
 * behind, and opens a new epoch. log.c's header gives the persist order
 * these rules rely on; paste.h (the log) what a record past the tail must
 * prove.
 */
#include "logrec.h"

#include <string.h>

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

