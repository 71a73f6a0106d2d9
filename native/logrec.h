/*
 * logrec.h -- a log record as log.c (append, commit, trim) and logwalk.c
 * (the walker, recovery) both read it: its lines, its extents, its two
 * checksums. Layout in paste.h (struct paste_log_rec).
 */
#ifndef PASTE_LOGREC_H
#define PASTE_LOGREC_H

#include "internal.h"

#include <stddef.h>

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
static inline uint32_t rec_crc(const struct paste_log_rec *r, uint32_t lines)
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

static inline bool extent_in_pool(const struct paste_pool *p, const struct paste_extent *e)
{
	return e->buf_idx > 0 && e->buf_idx < p->sb.nbufs && e->len > 0 &&
	       (uint32_t)e->off + e->len <= p->sb.buf_size;
}

static inline uint32_t payload_crc(struct paste_pool *p, struct paste_log_rec *r)
{
	uint32_t c = 0;
	for (uint32_t i = 0; i < r->nextents; i++) {
		struct paste_extent *e = rec_ext(r, i);
		c = paste_crc32c(c, paste_buf(p, e->buf_idx) + e->off, e->len);
	}
	return c;
}

#endif
