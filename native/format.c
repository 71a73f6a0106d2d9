/*
 * format.c -- the pool file's format: where everything goes for a given size
 * (the geometry), the superblock and its validation, and pool create.
 *
 * Create writes everything but the superblock, makes it durable, and writes
 * the superblock last: a crash during create leaves a file without a valid
 * superblock, which open refuses, never a half-formatted pool that looks fine.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define ALIGN_UP(x, a)   (((x) + ((uint64_t)(a) - 1)) & ~((uint64_t)(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((uint64_t)(a) - 1))

uint64_t paste_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------- geometry */

struct geom {
	uint64_t log_size, ring_ofs, ring_size, buf_ofs, window_size;
	uint64_t if_area, ring_stride;   /* netmap_if page(s), then one stride per ring */
	uint32_t nbufs, min_bufs;
};

/* paste_ring_bufs -- buffers that sit in ring slots when the pool is at rest */
uint32_t paste_ring_bufs(uint32_t nrings, uint32_t slots)
{
	return 2u * nrings * slots;
}

/*
 * geom_compute -- where everything goes for a pool of `size` bytes. Pure: both
 * create and open call it, and open compares the result with the superblock.
 */
static void geom_compute(uint64_t size, uint64_t log_size, uint32_t buf_size,
			 uint32_t nrings, uint32_t slots, struct geom *g)
{
	memset(g, 0, sizeof(*g));
	g->log_size = log_size;
	g->if_area = ALIGN_UP(sizeof(struct netmap_if) + 2ull * nrings * sizeof(int64_t), PASTE_PAGE);
	g->ring_stride = ALIGN_UP(sizeof(struct netmap_ring) + (uint64_t)slots * sizeof(struct netmap_slot), PASTE_PAGE);
	g->ring_size = g->if_area + 2ull * nrings * g->ring_stride;
	g->ring_ofs = ALIGN_UP(PASTE_LOG_OFS + log_size, PASTE_RING_ALIGN);
	g->buf_ofs = g->ring_ofs + g->ring_size;
	/* buffer 0 is reserved (netmap's "invalid"), ring slots hold 2*n*slots,
	 * and the commit path needs at least one spare per RX slot to swap in. */
	g->min_bufs = 1 + paste_ring_bufs(nrings, slots) + nrings * slots;
	if (size > g->buf_ofs) {
		uint64_t n = (size - g->buf_ofs) / buf_size;
		g->nbufs = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
	}
	g->window_size = ALIGN_UP(g->ring_size + (uint64_t)g->nbufs * buf_size, PASTE_PAGE);
}

/*
 * default_log_size -- 3/8 of the pool, less the buffers its rings need in
 * any case (buffer 0, one a slot, one spare an RX slot). Every live record
 * keeps a 64-byte log line, so the log bounds how many small values fit: a
 * million 16-byte values (about 60 bytes of RESP each, packed) need about as
 * much log as buffer space, and the cleaner needs slack above that. A 256 MiB
 * pool gets 1.5 million records; one for large values wants less
 * (--log-size).
 */
static uint64_t default_log_size(uint64_t size, uint32_t buf_size, uint32_t nrings, uint32_t slots)
{
	uint64_t rings = (1 + 3 * (uint64_t)nrings * slots) * buf_size;
	uint64_t l = size > rings ? ALIGN_DOWN((size - rings) / 8 * 3, PASTE_PAGE) : 0;
	return l < PASTE_LOG_MIN_SIZE ? PASTE_LOG_MIN_SIZE : l;
}

static bool is_pow2(uint32_t x)
{
	return x && !(x & (x - 1));
}

/* ----------------------------------------------------------- superblock */

static uint32_t sb_csum(const struct paste_super *sb)
{
	return paste_crc32c(0, sb, offsetof(struct paste_super, csum));
}

/* ring_win_off -- window offset of ring r (0..n-1 tx, n..2n-1 rx) */
static uint64_t ring_win_off(const struct geom *g, uint32_t r)
{
	return g->if_area + (uint64_t)r * g->ring_stride;
}

/*
 * paste_sb_validate -- decide what the first bytes of a file are. Order matters:
 * the version sits at a fixed offset forever, so a newer format is named as
 * such before its checksum (whose place it may have moved) is trusted.
 */
int paste_sb_validate(const char *path, int fd, uint64_t file_size, struct paste_super *sb)
{
	ssize_t n = pread(fd, sb, sizeof(*sb), 0);
	if (n < 0)
		return paste_set_errno(errno, "read superblock of %s", path);

	if ((size_t)n < 8 || memcmp(sb->magic, PASTE_MAGIC, 8) != 0) {
		/* A damaged magic on an otherwise intact superblock is a pool to
		 * repair, not a foreign file: say which. */
		if ((size_t)n == sizeof(*sb)) {
			struct paste_super fixed = *sb;
			memcpy(fixed.magic, PASTE_MAGIC, 8);
			if (fixed.csum == sb_csum(&fixed))
				return paste_set_error(PASTE_ERR_BAD_MAGIC,
					"%s: bad magic %02x%02x%02x%02x%02x%02x%02x%02x at offset 0 (expected \"%s\"); "
					"the rest of the superblock is intact, so this is a damaged pool",
					path, sb->magic[0], sb->magic[1], sb->magic[2], sb->magic[3],
					sb->magic[4], sb->magic[5], sb->magic[6], sb->magic[7], PASTE_MAGIC);
		}
		return paste_set_error(PASTE_ERR_NOT_A_POOL,
			"%s is not a pool: no \"%s\" superblock at offset 0 (file is %llu bytes)",
			path, PASTE_MAGIC, (unsigned long long)file_size);
	}
	if ((size_t)n < sizeof(*sb))
		return paste_set_error(PASTE_ERR_POOL_TRUNCATED,
			"%s is truncated: %llu bytes, shorter than its %zu-byte superblock",
			path, (unsigned long long)file_size, sizeof(*sb));
	if (sb->version > PASTE_FORMAT_VERSION)
		return paste_set_error(PASTE_ERR_VERSION,
			"%s: pool format version %u is newer than this paste-host supports (%u); upgrade paste-host",
			path, sb->version, PASTE_FORMAT_VERSION);

	uint32_t want = sb_csum(sb);
	if (sb->csum != want)
		return paste_set_error(PASTE_ERR_POOL_CORRUPT,
			"%s: superblock checksum mismatch (stored 0x%08x, computed 0x%08x): the superblock is damaged",
			path, sb->csum, want);
	if (sb->version == 0 || sb->sb_size != sizeof(*sb))
		return paste_set_error(PASTE_ERR_POOL_CORRUPT,
			"%s: superblock says version %u, size %u: not a layout any paste-host wrote",
			path, sb->version, sb->sb_size);
	if (sb->incompat != 0)
		return paste_set_error(PASTE_ERR_VERSION,
			"%s: pool uses features 0x%08x unknown to this paste-host; upgrade paste-host",
			path, sb->incompat);

	struct geom g;
	const char *bad = NULL;
	if (!is_pow2(sb->buf_size) || sb->buf_size < PASTE_BUF_SIZE_MIN || sb->buf_size > PASTE_BUF_SIZE_MAX)
		bad = "buf_size";
	else if (sb->nrings == 0 || sb->nrings > PASTE_RINGS_MAX)
		bad = "nrings";
	else if (sb->ring_slots < PASTE_SLOTS_MIN || sb->ring_slots > PASTE_SLOTS_MAX)
		bad = "ring_slots";
	else if (sb->log_size < PASTE_LOG_MIN_SIZE || sb->log_size % PASTE_PAGE)
		bad = "log_size";
	else if (sb->persist_pref > PASTE_PERSIST_NONE)
		bad = "persist_pref";
	if (!bad) {
		geom_compute(sb->pool_size, sb->log_size, sb->buf_size, sb->nrings, sb->ring_slots, &g);
		if (sb->state_ofs != PASTE_STATE_OFS) bad = "state_ofs";
		else if (sb->log_ofs != PASTE_LOG_OFS) bad = "log_ofs";
		else if (sb->ring_ofs != g.ring_ofs) bad = "ring_ofs";
		else if (sb->ring_size != g.ring_size) bad = "ring_size";
		else if (sb->buf_ofs != g.buf_ofs) bad = "buf_ofs";
		else if (sb->nbufs != g.nbufs || g.nbufs < g.min_bufs) bad = "nbufs";
		else if (sb->window_size != g.window_size || g.window_size > PASTE_WINDOW_MAX) bad = "window_size";
	}
	if (bad)
		return paste_set_error(PASTE_ERR_POOL_CORRUPT,
			"%s: superblock field %s is inconsistent with the pool geometry", path, bad);
	if (file_size < sb->pool_size)
		return paste_set_error(PASTE_ERR_POOL_TRUNCATED,
			"%s is truncated: %llu bytes, but its superblock says %llu",
			path, (unsigned long long)file_size, (unsigned long long)sb->pool_size);
	return 0;
}

/* ----------------------------------------------------------------- create */

static int fsync_dir_of(const char *path)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s", path);
	int dfd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	int rc = fsync(dfd);
	close(dfd);
	return rc;
}

/*
 * paste_netmap_layout -- the netmap_if and every ring's constant fields, from
 * the superblock alone: create writes them, and recovery writes them again
 * before it touches a ring. They are const in netmap.h and hold nothing
 * durable, so a ring area that was damaged (zeroed, overwritten) costs
 * nothing; trusting a ring_ofs read from the file would have sent the ring
 * reset's stores wherever it pointed.
 */
void paste_netmap_layout(uint8_t *win, const struct paste_super *sb)
{
	struct geom g;
	geom_compute(sb->pool_size, sb->log_size, sb->buf_size, sb->nrings, sb->ring_slots, &g);
	struct netmap_if *nifp = (struct netmap_if *)win;
	memset(nifp->ni_name, 0, sizeof(nifp->ni_name));
	memcpy(nifp->ni_name, "paste", 6);
	nifp->ni_version = NETMAP_API;
	nifp->ni_tx_rings = sb->nrings;
	nifp->ni_rx_rings = sb->nrings;
	for (uint32_t r = 0; r < 2 * sb->nrings; r++) {
		uint64_t off = ring_win_off(&g, r);
		struct netmap_ring *ring = (struct netmap_ring *)(win + off);
		bool tx = r < sb->nrings;
		nifp->ring_ofs[r] = (int64_t)off;
		ring->buf_ofs = (int64_t)(sb->ring_size - off);
		ring->num_slots = sb->ring_slots;
		ring->nr_buf_size = sb->buf_size;
		ring->ringid = (uint16_t)(tx ? r : r - sb->nrings);
		ring->dir = tx ? 0 : 1;
	}
}

/* format -- lay out state, log header and rings; buffers are already zero */
static void format(uint8_t *base, const struct paste_super *sb, const struct geom *g)
{
	struct paste_state *st = (struct paste_state *)(base + PASTE_STATE_OFS);
	st->shutdown = PASTE_STATE_CLEAN;

	struct paste_log_hdr *lh = (struct paste_log_hdr *)(base + PASTE_LOG_OFS);
	lh->head = 0;
	lh->tail = 0;
	lh->head_seq = 1;

	uint8_t *win = base + sb->ring_ofs;
	paste_netmap_layout(win, sb);
	uint32_t next_buf = 1;   /* buffer 0 is never handed out */
	for (uint32_t r = 0; r < 2 * sb->nrings; r++) {
		struct netmap_ring *ring = (struct netmap_ring *)(win + ring_win_off(g, r));
		bool tx = r < sb->nrings;
		ring->head = ring->cur = 0;
		/* netmap: a TX ring starts with every slot but one free for the
		 * user ([head, tail)); an RX ring starts empty (head == tail). */
		ring->tail = tx ? sb->ring_slots - 1 : 0;
		for (uint32_t s = 0; s < sb->ring_slots; s++)
			ring->slot[s].buf_idx = next_buf++;
	}
}

/*
 * write_zeros -- write the whole file once, so that every block of a pool on
 * a disk is a written extent before the first msync. posix_fallocate leaves
 * unwritten extents (ext4, xfs): the first write-back into each one converts
 * it, which changes metadata, so that msync also commits the journal and
 * spends CPU on the conversion. kv-wal msync on ext4, redis-benchmark -c 50,
 * 20,000 SETs after the page cache was dropped: 21.4K SET/s at 25 us of
 * server CPU per SET on a fallocated pool, 29.9K at 19 us on a written one
 * (docs/performance.md, "Disk pools"). PostgreSQL zero-fills its WAL segments
 * for the same reason. O_DIRECT, so the zeros do not fill the page cache
 * (large folios left there by a buffered write would make every later msync
 * write tens of KiB a request); buffered with the cache dropped after, where
 * the filesystem refuses O_DIRECT. tmpfs has no extents: nothing to do.
 */
static int write_zeros(const char *path, int fd, uint64_t size)
{
	struct statfs sfs;
	if (fstatfs(fd, &sfs) == 0 && sfs.f_type == TMPFS_MAGIC)
		return 0;
	const size_t chunk = 1u << 20;
	void *z = mmap(NULL, chunk, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);   /* zeros, page-aligned */
	if (z == MAP_FAILED)
		return paste_set_errno(errno, "zero %s: out of memory", path);
	int dfd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
	int wfd = dfd >= 0 ? dfd : fd;
	int rc = 0;
	for (uint64_t off = 0; off < size;) {
		size_t n = size - off < chunk ? (size_t)(size - off) : chunk;
		ssize_t w = pwrite(wfd, z, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EINVAL && wfd == dfd) {   /* O_DIRECT refused after all: buffered */
			wfd = fd;
			continue;
		}
		if (w <= 0) {
			rc = errno == ENOSPC
				? paste_set_error(PASTE_ERR_NO_SPACE, "%s: no space for a %llu-byte pool", path, (unsigned long long)size)
				: paste_set_errno(w < 0 ? errno : EIO, "zero %s at %llu", path, (unsigned long long)off);
			break;
		}
		off += (uint64_t)w;
	}
	if (!rc && fdatasync(wfd) != 0)
		rc = paste_set_errno(errno, "sync %s", path);
	if (!rc && wfd == fd)
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	if (dfd >= 0)
		close(dfd);
	munmap(z, chunk);
	return rc;
}

int paste_pool_create(const char *path, const struct paste_create_opts *o)
{
	if (!path || !*path || !o)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "pool create: a path is required");

	uint32_t buf_size = o->buf_size ? o->buf_size : PASTE_BUF_SIZE_DEFAULT;
	uint32_t nrings = o->nrings ? o->nrings : 1;
	uint32_t slots = o->ring_slots ? o->ring_slots : PASTE_SLOTS_DEFAULT;
	uint64_t log_size = o->log_size ? o->log_size : default_log_size(o->size, buf_size, nrings, slots);

	if (!is_pow2(buf_size) || buf_size < PASTE_BUF_SIZE_MIN || buf_size > PASTE_BUF_SIZE_MAX)
		return paste_set_error(PASTE_ERR_INVALID_ARG,
			"pool create: buffer size %u must be a power of two from %u to %u",
			buf_size, PASTE_BUF_SIZE_MIN, PASTE_BUF_SIZE_MAX);
	if (nrings > PASTE_RINGS_MAX)
		return paste_set_error(PASTE_ERR_INVALID_ARG,
			"pool create: %u ring pairs requested, at most %u", nrings, PASTE_RINGS_MAX);
	if (slots < PASTE_SLOTS_MIN || slots > PASTE_SLOTS_MAX)
		return paste_set_error(PASTE_ERR_INVALID_ARG,
			"pool create: %u slots per ring, must be %u to %u", slots, PASTE_SLOTS_MIN, PASTE_SLOTS_MAX);
	if (log_size < PASTE_LOG_MIN_SIZE || log_size % PASTE_PAGE)
		return paste_set_error(PASTE_ERR_INVALID_ARG,
			"pool create: log size %llu must be a multiple of 4 KiB and at least %u KiB",
			(unsigned long long)log_size, PASTE_LOG_MIN_SIZE >> 10);
	if (o->persist > PASTE_PERSIST_NONE)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "pool create: unknown persistence mode %u", o->persist);

	struct geom g;
	geom_compute(o->size, log_size, buf_size, nrings, slots, &g);
	if (g.nbufs < g.min_bufs) {
		uint64_t need = g.buf_ofs + (uint64_t)g.min_bufs * buf_size;
		return paste_set_error(PASTE_ERR_INVALID_ARG,
			"pool create: %llu bytes is too small for %u ring pair(s) of %u slots with %u-byte buffers; "
			"it needs at least %llu bytes (%llu MiB)",
			(unsigned long long)o->size, nrings, slots, buf_size,
			(unsigned long long)need, (unsigned long long)((need + (1 << 20) - 1) >> 20));
	}
	if (g.window_size > PASTE_WINDOW_MAX)
		return paste_set_error(PASTE_ERR_INVALID_ARG,
			"pool create: rings and buffers would take %llu bytes, more than the %llu-byte window "
			"a wasm32 handler can address below its own data at 2 GiB; use a smaller size",
			(unsigned long long)g.window_size, (unsigned long long)PASTE_WINDOW_MAX);

	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | (o->force ? 0 : O_EXCL), 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return paste_set_error(PASTE_ERR_EXISTS,
				"%s already exists; refusing to overwrite it (use --force to replace it)", path);
		return paste_set_errno(errno, "create %s", path);
	}

	int rc;
	uint8_t *base = MAP_FAILED;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = paste_set_errno(errno, "stat %s", path);
		goto fail_keep;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = paste_set_error(PASTE_ERR_INVALID_ARG, "%s is not a regular file; refusing to format it", path);
		goto fail_keep;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK
			? paste_set_error(PASTE_ERR_POOL_LOCKED, "%s is open in another process; refusing to replace it", path)
			: paste_set_errno(errno, "lock %s", path);
		goto fail_keep;
	}
	/* From here on the file is ours to replace: on failure, remove it. */
	if (ftruncate(fd, 0) != 0) {
		rc = paste_set_errno(errno, "truncate %s", path);
		goto fail;
	}
	/* Allocate every block now so a full filesystem fails here, with an
	 * error, and not later as SIGBUS on a store into the mapping. */
	int fe = posix_fallocate(fd, 0, (off_t)o->size);
	if (fe == EOPNOTSUPP || fe == EINVAL)
		fe = ftruncate(fd, (off_t)o->size) ? errno : 0;
	if (fe) {
		rc = fe == ENOSPC
			? paste_set_error(PASTE_ERR_NO_SPACE, "%s: no space for a %llu-byte pool", path, (unsigned long long)o->size)
			: paste_set_errno(fe, "allocate %llu bytes for %s", (unsigned long long)o->size, path);
		goto fail;
	}
	if ((rc = write_zeros(path, fd, o->size)) != 0)
		goto fail;
	base = mmap(NULL, o->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		rc = paste_set_errno(errno, "map %s", path);
		goto fail;
	}

	struct paste_super sb;
	memset(&sb, 0, sizeof(sb));
	memcpy(sb.magic, PASTE_MAGIC, 8);
	sb.version = PASTE_FORMAT_VERSION;
	sb.sb_size = sizeof(sb);
	if (getrandom(sb.uuid, sizeof(sb.uuid), 0) != (ssize_t)sizeof(sb.uuid)) {
		rc = paste_set_errno(errno, "getrandom for the pool uuid");
		goto fail;
	}
	sb.uuid[6] = (uint8_t)((sb.uuid[6] & 0x0f) | 0x40);
	sb.uuid[8] = (uint8_t)((sb.uuid[8] & 0x3f) | 0x80);
	sb.pool_size = o->size;
	sb.created_ns = paste_now_ns();
	sb.buf_size = buf_size;
	sb.nbufs = g.nbufs;
	sb.nrings = nrings;
	sb.ring_slots = slots;
	sb.state_ofs = PASTE_STATE_OFS;
	sb.log_ofs = PASTE_LOG_OFS;
	sb.log_size = log_size;
	sb.ring_ofs = g.ring_ofs;
	sb.ring_size = g.ring_size;
	sb.buf_ofs = g.buf_ofs;
	sb.window_size = g.window_size;
	sb.persist_pref = o->persist;
	sb.csum = sb_csum(&sb);

	format(base, &sb, &g);
	/* Everything but the superblock is durable before the superblock is
	 * written: a pool with a valid superblock is always fully formatted. */
	if (msync(base, o->size, MS_SYNC) != 0) {
		rc = paste_set_errno(errno, "msync %s", path);
		goto fail;
	}
	memcpy(base, &sb, sizeof(sb));
	if (msync(base, PASTE_PAGE, MS_SYNC) != 0 || fsync(fd) != 0) {
		rc = paste_set_errno(errno, "sync %s", path);
		goto fail;
	}
	munmap(base, o->size);
	close(fd);
	fsync_dir_of(path);   /* the new name is durable too; best effort */
	return 0;

fail:
	if (base != MAP_FAILED)
		munmap(base, o->size);
	unlink(path);
fail_keep:
	close(fd);
	return rc;
}
