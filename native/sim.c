/*
 * sim.c -- the persistence simulator: what a power failure on NVMM would
 * leave, at any persist step of the commit path.
 *
 * Selected at open (paste_sim_enable right after paste_pool_open); when off,
 * nothing here runs: the pool's persist ops are the real ones. When on, the
 * pool's ops are these:
 *
 *   flush(range)  a persist step: its lines become "flushed, not yet fenced"
 *   drain()       a persist step: every flushed line is copied to the shadow
 *                 image, which is what the media holds (a flush is not
 *                 durable until the next fence)
 *
 * Steps are counted from the enable. At step crash_at (before it runs) the
 * simulator writes a crash image: the shadow, plus a seeded-random half of the
 * lines whose bytes differ from it (written or flushed but not fenced, which
 * the cache may or may not have written back), and from then on every drain
 * fails with PASTE_ERR_SIM_CRASHED, so nothing more is acknowledged.
 *
 * It also records, for the checker, every record appended (seq, len, crc),
 * the highest seq whose commit completed (acknowledgements may have left),
 * and the highest seq a trim had begun to release (those may be gone).
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct paste_sim {
	uint8_t  *shadow;           /* what the media holds */
	uint64_t *pending;          /* file offsets of flushed, unfenced lines */
	size_t    npending, cap_pending;
	uint64_t  step, crash_at, seed;
	bool      crashed;
	char      image[4096];
	struct paste_sim_rec *recs; /* appended records */
	size_t    nrecs, cap_recs;
	uint64_t  committed, trimmed;
};

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* write_image -- the shadow plus a random subset of the lines not yet durable */
static int write_image(struct paste_pool *p)
{
	struct paste_sim *s = p->sim;
	uint8_t *img = malloc(p->map_len);
	if (!img)
		return paste_set_error(PASTE_ERR_IO, "sim: out of memory for a %llu-byte image", (unsigned long long)p->map_len);
	memcpy(img, s->shadow, p->map_len);
	uint64_t rng = s->seed * 0x100000001b3ull ^ s->crash_at;
	for (uint64_t off = 0; off < p->map_len; off += PASTE_CACHELINE) {
		if (memcmp(p->base + off, s->shadow + off, PASTE_CACHELINE) != 0 && (xorshift(&rng) & 1))
			memcpy(img + off, p->base + off, PASTE_CACHELINE);   /* this line happened to reach the media */
	}
	int fd = open(s->image, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(img);
		return paste_set_errno(errno, "sim: create crash image %s", s->image);
	}
	size_t done = 0;
	while (done < p->map_len) {
		ssize_t n = write(fd, img + done, p->map_len - done);
		if (n <= 0) {
			int e = errno;
			close(fd);
			free(img);
			return paste_set_errno(e, "sim: write crash image %s", s->image);
		}
		done += (size_t)n;
	}
	close(fd);
	free(img);
	return 0;
}

/* step -- count a persist step; true if the power fails here */
static bool step(struct paste_pool *p)
{
	struct paste_sim *s = p->sim;
	if (s->crashed)
		return true;
	if (++s->step == s->crash_at) {
		s->crashed = true;
		write_image(p);
		return true;
	}
	return false;
}

static void sim_flush(struct paste_pool *p, const void *addr, size_t len)
{
	struct paste_sim *s = p->sim;
	if (step(p))
		return;
	uintptr_t first = (uintptr_t)addr & ~(uintptr_t)(PASTE_CACHELINE - 1);
	for (uintptr_t l = first; l < (uintptr_t)addr + len; l += PASTE_CACHELINE) {
		if (s->npending == s->cap_pending) {
			size_t n = s->cap_pending ? s->cap_pending * 2 : 1024;
			uint64_t *q = realloc(s->pending, n * sizeof(*q));
			if (!q)
				return;   /* the line stays "not durable": conservative */
			s->pending = q;
			s->cap_pending = n;
		}
		s->pending[s->npending++] = (uint64_t)(l - (uintptr_t)p->base);
	}
}

static int sim_drain(struct paste_pool *p)
{
	struct paste_sim *s = p->sim;
	if (step(p))
		return paste_set_error(PASTE_ERR_SIM_CRASHED, "simulated power failure at persist step %llu; image %s",
				       (unsigned long long)s->crash_at, s->image);
	for (size_t i = 0; i < s->npending; i++)
		memcpy(s->shadow + s->pending[i], p->base + s->pending[i], PASTE_CACHELINE);
	s->npending = 0;
	return 0;
}

static const struct paste_persist_ops sim_ops = { sim_flush, sim_drain };

int paste_sim_enable(paste_pool *p, uint64_t crash_at, uint64_t seed, const char *image)
{
	if (!p || (p->flags & PASTE_OPEN_RDONLY))
		return paste_set_error(PASTE_ERR_INVALID_ARG, "sim: needs a pool open read-write");
	if (p->sim || p->recovered)
		return paste_set_error(PASTE_ERR_STATE, "sim: enable right after open, once");
	struct paste_sim *s = calloc(1, sizeof(*s));
	if (!s || !(s->shadow = malloc(p->map_len))) {
		free(s);
		return paste_set_error(PASTE_ERR_IO, "sim: out of memory for the shadow image");
	}
	/* Everything before the enable is durable: the pool as opened. */
	memcpy(s->shadow, p->base, p->map_len);
	s->crash_at = crash_at;
	s->seed = seed;
	snprintf(s->image, sizeof(s->image), "%s", image ? image : "");
	p->sim = s;
	p->ops = &sim_ops;
	p->persist = PASTE_PERSIST_PMEM;
	snprintf(p->reason, sizeof(p->reason), "simulated NVMM (crash testing): flushes reach the media only at a fence");
	return 0;
}

void paste_sim_note_append(struct paste_pool *p, uint64_t seq, uint32_t len, uint32_t crc)
{
	struct paste_sim *s = p->sim;
	if (s->nrecs == s->cap_recs) {
		size_t n = s->cap_recs ? s->cap_recs * 2 : 1024;
		struct paste_sim_rec *r = realloc(s->recs, n * sizeof(*r));
		if (!r)
			return;
		s->recs = r;
		s->cap_recs = n;
	}
	s->recs[s->nrecs++] = (struct paste_sim_rec){ .seq = seq, .len = len, .crc = crc };
}

void paste_sim_note_commit(struct paste_pool *p, uint64_t seq)
{
	if (!p->sim->crashed)
		p->sim->committed = seq;
}

void paste_sim_note_trim(struct paste_pool *p, uint64_t seq)
{
	if (!p->sim->crashed && seq > p->sim->trimmed)
		p->sim->trimmed = seq;
}

int paste_sim_report(paste_pool *p, struct paste_sim_report *out)
{
	if (!p || !p->sim)
		return paste_set_error(PASTE_ERR_STATE, "sim: not enabled");
	out->steps = p->sim->step;
	out->crashed = p->sim->crashed;
	out->committed = p->sim->committed;
	out->trimmed = p->sim->trimmed;
	out->appended = p->sim->nrecs;
	return 0;
}

int paste_sim_record(paste_pool *p, uint64_t i, struct paste_sim_rec *out)
{
	if (!p || !p->sim || i >= p->sim->nrecs)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "sim: no appended record %llu", (unsigned long long)i);
	*out = p->sim->recs[i];
	return 0;
}

void paste_sim_free(struct paste_pool *p)
{
	if (!p->sim)
		return;
	free(p->sim->shadow);
	free(p->sim->pending);
	free(p->sim->recs);
	free(p->sim);
	p->sim = NULL;
}
