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
 * Steps are counted from the enable. The image a power failure at step S
 * leaves (before S runs) is the shadow, plus a seeded-random half of the
 * lines whose bytes differ from it (written or flushed but not fenced, which
 * the cache may or may not have written back). Two ways to get it:
 *
 *   crash    at step crash_at the image is written to a file, and from then
 *            on every drain fails with PASTE_ERR_SIM_CRASHED, so nothing more
 *            is acknowledged;
 *   capture  (paste_sim_capture) at each step of a plan the image is kept as
 *            the lines it adds to the shadow, and the run goes on: one run of
 *            the workload yields every image of the plan. The drains that
 *            follow keep what they overwrite in the shadow (the journal), so
 *            paste_sim_take can later rebuild the image into a scratch file
 *            by rewriting only the lines where the file differs from it.
 *
 * It also records, for the checker, every record appended (seq, len, crc),
 * the highest seq whose commit completed (acknowledgements may have left),
 * the highest seq a trim had begun to release (those may be gone), the
 * replies released, and what each step was part of (PASTE_SIM_TAG_*: the
 * cleaner's call, a trim, the commit of packed copies or re-logged records).
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE PASTE_CACHELINE
#define BLOCK 4096   /* lines are compared a page at a time first: most pages match */

struct sim_line { uint64_t off; uint8_t data[LINE]; };

/* A journal entry: at persist step `step` a fence overwrote this shadow line, which held `data`. */
struct sim_jline { uint64_t step; uint64_t off; uint8_t data[LINE]; };

/* A captured image: its facts, and the lines it holds beyond the shadow of its step. */
struct sim_point {
	struct paste_sim_point info;
	struct sim_line *flips;
	size_t nflips;
};

struct paste_sim {
	uint8_t  *shadow;           /* what the media holds */
	uint64_t *pending;          /* file offsets of flushed, unfenced lines */
	size_t    npending, cap_pending;
	uint64_t  step, crash_at, seed;
	bool      crashed;
	char      image[4096];
	struct paste_sim_rec *recs; /* appended records */
	size_t    nrecs, cap_recs;
	uint64_t  committed, trimmed, replies0;
	uint32_t  ctx;              /* PASTE_SIM_TAG_* of what runs now */
	uint32_t  batch;            /* tags of the records appended since the last commit */
	uint8_t  *tags;             /* tags[i]: what step i + 1 was part of */
	size_t    cap_tags;

	/* capture */
	uint64_t *plan_steps, *plan_seeds;
	size_t    nplan, next_plan;
	struct sim_point *points;   /* captured, not yet taken: points[first..npoints) */
	size_t    first, npoints, cap_points;
	struct sim_point cur;       /* the one taken last */
	bool      has_cur;
	struct sim_jline *journal;
	size_t    njournal, cap_journal;
	uint64_t *diff;             /* lines differing from the shadow at step diff_step */
	size_t    ndiff, cap_diff;
	uint64_t  diff_step;
	char      scratch[4096];    /* the file paste_sim_take rebuilds images into, kept mapped */
	uint8_t  *scratch_map;
	bool      scratch_exact;    /* it holds the image taken last, but for the pages verify notes */
	bool      tracked;          /* a pool opened on it since that take notes what it touched */
	struct paste_touched seen;  /* the pages this pool's mappings touched (find_diff compares only those) */
	struct paste_touched verify;/* the pages pools opened on the scratch file touched since the last take */
};

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* grow -- room for one more element in *arr (elements of size sz); false when out of memory */
static bool grow(void **arr, size_t n, size_t *cap, size_t sz)
{
	if (n < *cap)
		return true;
	size_t c = *cap ? *cap * 2 : 1024;
	void *a = realloc(*arr, c * sz);
	if (!a)
		return false;
	*arr = a;
	*cap = c;
	return true;
}

/* The coin flips of one image: a line that differs from the shadow reached the media if the draw says so. */
static uint64_t flips_seed(uint64_t seed, uint64_t step)
{
	return seed * 0x100000001b3ull ^ step;
}

/* write_image -- crash mode: the shadow plus a random subset of the lines not yet durable, into s->image */
static int write_image(struct paste_pool *p)
{
	struct paste_sim *s = p->sim;
	uint8_t *img = malloc(p->map_len);
	if (!img)
		return paste_set_error(PASTE_ERR_IO, "sim: out of memory for a %llu-byte image", (unsigned long long)p->map_len);
	memcpy(img, s->shadow, p->map_len);
	uint64_t rng = flips_seed(s->seed, s->crash_at);
	for (uint64_t off = 0; off < p->map_len; off += LINE) {
		if (memcmp(p->base + off, s->shadow + off, LINE) != 0 && (xorshift(&rng) & 1))
			memcpy(img + off, p->base + off, LINE);   /* this line happened to reach the media */
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

void paste_sim_present(struct paste_touched *t, const void *addr, uint64_t len, uint64_t off)
{
	/* A page no mapping of this process has touched since it was mapped has no
	 * page table entry; one that was read or written has (present, or swapped
	 * out). Without pagemap every page counts as touched: slower, as right. */
	uint64_t first = (uintptr_t)addr / PASTE_PAGE, n = (len + PASTE_PAGE - 1) / PASTE_PAGE, at = off / PASTE_PAGE;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t e[512];
	for (uint64_t i = 0; i < n;) {
		uint64_t k = n - i < 512 ? n - i : 512;
		bool all = fd < 0 || pread(fd, e, k * sizeof(*e), (off_t)((first + i) * sizeof(*e))) != (ssize_t)(k * sizeof(*e));
		for (uint64_t j = 0; j < k; j++, i++)
			if ((all || (e[j] >> 62)) && at + i < t->npages)
				t->bits[(at + i) / 8] |= (uint8_t)(1u << ((at + i) % 8));
	}
	if (fd >= 0)
		close(fd);
}

static bool page_set(const struct paste_touched *t, uint64_t page)
{
	return page < t->npages && (t->bits[page / 8] >> (page % 8) & 1);
}

/* find_diff -- the lines where the pool differs from the shadow now, in offset order (once per step) */
static int find_diff(struct paste_pool *p)
{
	struct paste_sim *s = p->sim;
	if (s->diff_step == s->step)
		return 0;
	s->ndiff = 0;
	/* A line no mapping touched since the enable still equals the shadow (the enable read the shadow
	 * through the file, not through the mapping): only touched pages are compared. */
	memset(s->seen.bits, 0, (s->seen.npages + 7) / 8);
	paste_sim_present(&s->seen, p->base, p->map_len, 0);
	for (int i = 0; i < PASTE_MAX_WINDOWS; i++)
		if (p->windows[i])
			paste_sim_present(&s->seen, p->windows[i], p->sb.window_size, p->sb.ring_ofs);
	for (uint64_t b = 0; b < p->map_len; b += BLOCK) {
		if (!page_set(&s->seen, b / PASTE_PAGE))
			continue;
		uint64_t end = b + BLOCK < p->map_len ? b + BLOCK : p->map_len;
		if (memcmp(p->base + b, s->shadow + b, end - b) == 0)
			continue;
		for (uint64_t off = b; off < end; off += LINE) {
			if (memcmp(p->base + off, s->shadow + off, LINE) == 0)
				continue;
			if (!grow((void **)&s->diff, s->ndiff, &s->cap_diff, sizeof(*s->diff)))
				return paste_set_error(PASTE_ERR_IO, "sim: out of memory for the lines of an image");
			s->diff[s->ndiff++] = off;
		}
	}
	s->diff_step = s->step;
	return 0;
}

/* capture -- capture mode: keep the image a power failure now would leave, with this seed */
static int capture(struct paste_pool *p, uint64_t seed, uint32_t tags)
{
	struct paste_sim *s = p->sim;
	int rc = find_diff(p);
	if (rc)
		return rc;
	if (s->first == s->npoints)
		s->first = s->npoints = 0;   /* every earlier image was taken: start the queue over */
	if (!grow((void **)&s->points, s->npoints, &s->cap_points, sizeof(*s->points)))
		return paste_set_error(PASTE_ERR_IO, "sim: out of memory for a captured image");
	struct sim_point *pt = &s->points[s->npoints];
	*pt = (struct sim_point){ .info = {
		.step = s->step, .seed = seed, .committed = s->committed, .trimmed = s->trimmed,
		.appended = s->nrecs, .replies = p->stats.replies - s->replies0, .tags = tags } };
	pt->flips = malloc((s->ndiff ? s->ndiff : 1) * sizeof(*pt->flips));
	if (!pt->flips)
		return paste_set_error(PASTE_ERR_IO, "sim: out of memory for a captured image");
	uint64_t rng = flips_seed(seed, s->step);
	for (size_t i = 0; i < s->ndiff; i++) {
		if (xorshift(&rng) & 1) {   /* the same draws, in the same order, as write_image */
			struct sim_line *l = &pt->flips[pt->nflips++];
			l->off = s->diff[i];
			memcpy(l->data, p->base + l->off, LINE);
		}
	}
	s->npoints++;
	return 0;
}

/* step -- count a persist step, note what it is part of; true if the power fails here */
static bool step(struct paste_pool *p)
{
	struct paste_sim *s = p->sim;
	if (s->crashed)
		return true;
	uint32_t tags = s->ctx & ~PASTE_SIM_TAG_COMMIT;
	if (s->ctx & PASTE_SIM_TAG_COMMIT)
		tags |= s->batch;
	if (grow((void **)&s->tags, s->step, &s->cap_tags, 1))
		s->tags[s->step] = (uint8_t)tags;
	++s->step;
	/* out of memory, a point is skipped: the checker finds it missing and says so */
	for (; s->next_plan < s->nplan && s->plan_steps[s->next_plan] == s->step; s->next_plan++)
		capture(p, s->plan_seeds[s->next_plan], tags);
	if (s->step == s->crash_at) {
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
	uintptr_t first = (uintptr_t)addr & ~(uintptr_t)(LINE - 1);
	for (uintptr_t l = first; l < (uintptr_t)addr + len; l += LINE) {
		if (!grow((void **)&s->pending, s->npending, &s->cap_pending, sizeof(*s->pending)))
			return;   /* the line stays "not durable": conservative */
		s->pending[s->npending++] = (uint64_t)(l - (uintptr_t)p->base);
	}
}

static int sim_drain(struct paste_pool *p)
{
	struct paste_sim *s = p->sim;
	if (step(p))
		return paste_set_error(PASTE_ERR_SIM_CRASHED, "simulated power failure at persist step %llu; image %s",
				       (unsigned long long)s->crash_at, s->image);
	/* While a captured image waits to be taken, what this fence overwrites is kept: that image needs it. */
	bool keep = s->first < s->npoints || s->has_cur;
	for (size_t i = 0; i < s->npending; i++) {
		uint64_t off = s->pending[i];
		if (memcmp(s->shadow + off, p->base + off, LINE) == 0)
			continue;
		if (keep) {
			if (!grow((void **)&s->journal, s->njournal, &s->cap_journal, sizeof(*s->journal)))
				return paste_set_error(PASTE_ERR_IO, "sim: out of memory for the journal");
			struct sim_jline *j = &s->journal[s->njournal++];
			j->step = s->step;
			j->off = off;
			memcpy(j->data, s->shadow + off, LINE);
		}
		memcpy(s->shadow + off, p->base + off, LINE);
	}
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
	uint64_t npages = (p->map_len + PASTE_PAGE - 1) / PASTE_PAGE;
	if (!s || !(s->shadow = malloc(p->map_len)) || !(s->seen.bits = calloc(1, (npages + 7) / 8)) ||
	    !(s->verify.bits = calloc(1, (npages + 7) / 8))) {
		if (s) {
			free(s->shadow);
			free(s->seen.bits);
		}
		free(s);
		return paste_set_error(PASTE_ERR_IO, "sim: out of memory for the shadow image");
	}
	s->seen.npages = s->verify.npages = npages;
	/* Everything before the enable is durable: the pool as opened. Read through
	 * the file, so that the mapping's page table shows what the run touches. */
	if (pread(p->fd, s->shadow, p->map_len, 0) != (ssize_t)p->map_len)
		memcpy(s->shadow, p->base, p->map_len);
	s->crash_at = crash_at;
	s->seed = seed;
	s->diff_step = UINT64_MAX;
	s->replies0 = p->stats.replies;
	snprintf(s->image, sizeof(s->image), "%s", image ? image : "");
	p->sim = s;
	p->ops = &sim_ops;
	p->persist = PASTE_PERSIST_PMEM;
	snprintf(p->reason, sizeof(p->reason), "simulated NVMM (crash testing): flushes reach the media only at a fence");
	return 0;
}

int paste_sim_capture(paste_pool *p, const uint64_t *steps, const uint64_t *seeds, uint64_t n)
{
	if (!p || !p->sim || p->recovered || p->sim->nplan)
		return paste_set_error(PASTE_ERR_STATE, "sim: set the capture plan once, after paste_sim_enable, before recovery");
	struct paste_sim *s = p->sim;
	for (uint64_t i = 0; i < n; i++)
		if (steps[i] == 0 || (i && steps[i] < steps[i - 1]))
			return paste_set_error(PASTE_ERR_INVALID_ARG, "sim: capture steps must be 1 or more, in ascending order");
	s->plan_steps = malloc((n ? n : 1) * sizeof(*steps));
	s->plan_seeds = malloc((n ? n : 1) * sizeof(*seeds));
	if (!s->plan_steps || !s->plan_seeds)
		return paste_set_error(PASTE_ERR_IO, "sim: out of memory for %llu capture points", (unsigned long long)n);
	memcpy(s->plan_steps, steps, n * sizeof(*steps));
	memcpy(s->plan_seeds, seeds, n * sizeof(*seeds));
	s->nplan = n;
	return 0;
}

/* map_file -- path mapped read-write at the pool's size (created or resized as needed) */
static int map_file(struct paste_pool *p, const char *path, bool truncate, uint8_t **out)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0600);
	if (fd < 0)
		return paste_set_errno(errno, "sim: open image file %s", path);
	struct stat st;
	if (fstat(fd, &st) != 0 || ((uint64_t)st.st_size != p->map_len && ftruncate(fd, (off_t)p->map_len) != 0)) {
		int e = errno;
		close(fd);
		return paste_set_errno(e, "sim: size image file %s", path);
	}
	uint8_t *m = mmap(NULL, p->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	int e = errno;
	close(fd);
	if (m == MAP_FAILED)
		return paste_set_errno(e, "sim: map image file %s", path);
	*out = m;
	return 0;
}

/* sync_block -- the lines of block b of m that differ from the shadow, from the shadow */
static void sync_block(struct paste_pool *p, uint8_t *m, uint64_t b)
{
	struct paste_sim *s = p->sim;
	uint64_t end = b + BLOCK < p->map_len ? b + BLOCK : p->map_len;
	if (memcmp(m + b, s->shadow + b, end - b) == 0)
		return;
	for (uint64_t off = b; off < end; off += LINE)
		if (memcmp(m + off, s->shadow + off, LINE) != 0)
			memcpy(m + off, s->shadow + off, LINE);
}

/*
 * rebuild -- make the file mapped at m the image of the point taken last
 * (s->cur): where it differs from the shadow, the shadow's line; then, for
 * the lines fences overwrote since the point's step, what they held before
 * (the oldest entry last, so it wins); then the point's own lines. Only lines
 * that differ are compared and written. With prev, m holds that earlier image
 * except for the pages s->verify notes (a check wrote there): then only those
 * pages, prev's own lines and the journal's lines can differ.
 */
static void rebuild(struct paste_pool *p, uint8_t *m, const struct sim_point *prev)
{
	struct paste_sim *s = p->sim;
	if (!prev) {
		for (uint64_t b = 0; b < p->map_len; b += BLOCK)
			sync_block(p, m, b);
	} else {
		for (uint64_t b = 0; b < p->map_len; b += BLOCK)
			if (page_set(&s->verify, b / PASTE_PAGE))
				sync_block(p, m, b);
		for (size_t i = 0; i < prev->nflips; i++)
			memcpy(m + prev->flips[i].off, s->shadow + prev->flips[i].off, LINE);
		for (size_t i = 0; i < s->njournal; i++)
			memcpy(m + s->journal[i].off, s->shadow + s->journal[i].off, LINE);
	}
	/* the journal before the image's step is in the shadow already */
	size_t old = 0;
	while (old < s->njournal && s->journal[old].step < s->cur.info.step)
		old++;
	memmove(s->journal, s->journal + old, (s->njournal - old) * sizeof(*s->journal));
	s->njournal -= old;
	for (size_t i = s->njournal; i-- > 0;)
		memcpy(m + s->journal[i].off, s->journal[i].data, LINE);
	for (size_t i = 0; i < s->cur.nflips; i++)
		memcpy(m + s->cur.flips[i].off, s->cur.flips[i].data, LINE);
}

int paste_sim_take(paste_pool *p, const char *path, struct paste_sim_point *out)
{
	if (!p || !p->sim || !path)
		return paste_set_error(PASTE_ERR_STATE, "sim: not enabled");
	struct paste_sim *s = p->sim;
	if (s->first == s->npoints)
		return 0;   /* the last one stays current: the next rebuild starts from it */
	if (!s->scratch_map || strcmp(s->scratch, path) != 0) {
		if (s->scratch_map)
			munmap(s->scratch_map, p->map_len);
		s->scratch_map = NULL;
		s->scratch_exact = false;
		int rc = map_file(p, path, false, &s->scratch_map);
		if (rc)
			return rc;
		snprintf(s->scratch, sizeof(s->scratch), "%s", path);
	}
	/* Rebuild from the last image only if every pool opened on it since told what it touched. */
	bool from_prev = s->has_cur && s->scratch_exact && s->tracked && s->verify.open == 0;
	struct sim_point prev = s->cur;
	s->cur = s->points[s->first++];
	rebuild(p, s->scratch_map, from_prev ? &prev : NULL);
	if (s->has_cur)
		free(prev.flips);
	s->has_cur = true;
	s->scratch_exact = true;
	s->tracked = false;
	memset(s->verify.bits, 0, (s->verify.npages + 7) / 8);
	*out = s->cur.info;
	return 1;
}

int paste_sim_track(paste_pool *p, paste_pool *check)
{
	if (!p || !p->sim || !check || check->touched)
		return paste_set_error(PASTE_ERR_STATE, "sim: track a pool opened on the scratch file, once");
	if (check->map_len != p->map_len)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "sim: the pool tracked is not the size of the simulated one");
	check->touched = &p->sim->verify;
	p->sim->verify.open++;
	p->sim->tracked = true;
	return 0;
}

int paste_sim_write(paste_pool *p, const char *path)
{
	if (!p || !p->sim || !p->sim->has_cur)
		return paste_set_error(PASTE_ERR_STATE, "sim: no image taken to write");
	uint8_t *m;
	int rc = map_file(p, path, true, &m);
	if (rc)
		return rc;
	rebuild(p, m, NULL);
	munmap(m, p->map_len);
	return 0;
}

uint64_t paste_sim_tags(paste_pool *p, uint8_t *out, uint64_t cap)
{
	if (!p || !p->sim)
		return 0;
	uint64_t n = p->sim->step < cap ? p->sim->step : cap;
	if (n)
		memcpy(out, p->sim->tags, n);
	return p->sim->step;
}

void paste_sim_tag(struct paste_pool *p, uint32_t set, uint32_t clear)
{
	p->sim->ctx = (p->sim->ctx | set) & ~clear;
}

void paste_sim_note_append(struct paste_pool *p, uint64_t seq, uint32_t len, uint32_t crc)
{
	struct paste_sim *s = p->sim;
	uint32_t t = s->ctx & (PASTE_SIM_TAG_CLEAN | PASTE_SIM_TAG_PACK);
	if ((t & PASTE_SIM_TAG_CLEAN) && !(t & PASTE_SIM_TAG_PACK))
		t |= PASTE_SIM_TAG_RELOG;   /* on_clean logged it by reference: a live record moved */
	s->batch |= t;
	if (!grow((void **)&s->recs, s->nrecs, &s->cap_recs, sizeof(*s->recs)))
		return;
	s->recs[s->nrecs++] = (struct paste_sim_rec){ .seq = seq, .len = len, .crc = crc };
}

void paste_sim_note_commit(struct paste_pool *p, uint64_t seq)
{
	p->sim->batch = 0;
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
	struct paste_sim *s = p->sim;
	if (!s)
		return;
	for (size_t i = s->first; i < s->npoints; i++)
		free(s->points[i].flips);
	if (s->has_cur)
		free(s->cur.flips);
	if (s->scratch_map)
		munmap(s->scratch_map, p->map_len);
	free(s->points);
	free(s->seen.bits);
	free(s->verify.bits);
	free(s->journal);
	free(s->diff);
	free(s->tags);
	free(s->plan_steps);
	free(s->plan_seeds);
	free(s->shadow);
	free(s->pending);
	free(s->recs);
	free(s);
	p->sim = NULL;
}
