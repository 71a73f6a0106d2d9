/*
 * pool.c -- an open pool: open under a lock, map, decide the persistence
 * mode once, persist, close, and map the window into a handler's
 * WebAssembly.Memory. The file's format and create are in format.c.
 *
 * Open never writes before the superblock has been validated, so a damaged
 * or foreign file is left exactly as it was.
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
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

#define ALIGN_DOWN(x, a) ((x) & ~((uint64_t)(a) - 1))

/* --------------------------------------------------------------- persist */

static void pmem_flush(struct paste_pool *p, const void *addr, size_t len)
{
	(void)p;
	paste_flush_lines(addr, len);
}

static int pmem_drain(struct paste_pool *p)
{
	(void)p;
	paste_fence();
	return 0;
}

static void msync_flush(struct paste_pool *p, const void *addr, size_t len)
{
	uint8_t *lo = (uint8_t *)ALIGN_DOWN((uintptr_t)addr, PASTE_PAGE);
	uint8_t *hi = (uint8_t *)addr + len;
	if (!p->dirty_lo || lo < p->dirty_lo)
		p->dirty_lo = lo;
	if (hi > p->dirty_hi)
		p->dirty_hi = hi;
}

/* msync_drain -- group commit: one msync covers everything queued since the last one */
static int msync_drain(struct paste_pool *p)
{
	if (!p->dirty_lo)
		return 0;
	int rc = msync(p->dirty_lo, (size_t)(p->dirty_hi - p->dirty_lo), MS_SYNC);
	p->dirty_lo = p->dirty_hi = NULL;
	return rc ? paste_set_errno(errno, "msync %s", p->path) : 0;
}

static void none_flush(struct paste_pool *p, const void *addr, size_t len)
{
	(void)p; (void)addr; (void)len;
}

static int none_drain(struct paste_pool *p)
{
	(void)p;
	return 0;
}

static const struct paste_persist_ops persist_ops[] = {
	[PASTE_PERSIST_PMEM]  = { pmem_flush, pmem_drain },
	[PASTE_PERSIST_MSYNC] = { msync_flush, msync_drain },
	[PASTE_PERSIST_NONE]  = { none_flush, none_drain },
};

/* paste_persist_word -- make one 8-byte word of the native mapping durable */
int paste_persist_word(struct paste_pool *p, const uint64_t *w)
{
	p->ops->flush(p, w, sizeof(*w));
	return p->ops->drain(p);
}

/* ------------------------------------------------------------------- open */

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define PASTE_POPULATE_MAX (1ull << 30)

/*
 * populate -- map every page of a memory-backed pool (tmpfs, DAX) up front,
 * in the native mapping and in each handler's window, once a TCP port serves
 * from it (tools and crash tests that only open a pool do not pay for it).
 * Otherwise the first receive into a buffer's page takes a page fault on the
 * request path, and the handler's first read of it through its window
 * another; a log touches all its buffers in turn, so a fresh pool paid that
 * every other 1 KiB request until its whole size had gone by. kv-wal pmem,
 * redis-benchmark -c 1 after a 10,000-SET warm-up, two runs each: 24.7K and
 * 26.2K SET/s populated (25 and 26 us of server CPU a SET, p50 0.031 ms)
 * against 23.2K and 24.2K (28 and 30 us, p50 0.039 ms).
 *
 * It costs about 0.6 s a GiB of pool at start here (1 GiB of tmpfs, both
 * mappings: 969 ms to the first PING unpopulated, 1597 ms populated), so
 * pools over PASTE_POPULATE_MAX fault their pages in as before.
 *
 * Not on a disk file, where a write fault is how the kernel learns which
 * pages msync must write: populating for write would dirty the whole pool.
 * Not where tmpfs lacks the room for the pool's missing pages: filling it
 * at start would make every other file there fail at once, where the pool
 * alone would have run into the limit later. Best effort otherwise: a
 * kernel before 5.14 (no MADV_POPULATE_WRITE) leaves the pages to fault.
 */
static void populate(const struct paste_pool *p, void *addr, size_t len)
{
	if (p->medium == PASTE_MEDIUM_FILE || (p->flags & PASTE_OPEN_RDONLY) || len > PASTE_POPULATE_MAX)
		return;
	struct stat st;
	struct statfs fs;
	if (p->medium == PASTE_MEDIUM_TMPFS) {
		if (fstat(p->fd, &st) || fstatfs(p->fd, &fs))
			return;
		uint64_t missing = (uint64_t)st.st_size > (uint64_t)st.st_blocks * 512 ? (uint64_t)st.st_size - (uint64_t)st.st_blocks * 512 : 0;
		if (missing > (uint64_t)fs.f_bavail * (uint64_t)fs.f_bsize)
			return;
	}
	(void)madvise(addr, len, MADV_POPULATE_WRITE);
}

void paste_pool_populate(struct paste_pool *p)
{
	if (p->populate)
		return;
	p->populate = true;
	populate(p, p->base + p->sb.ring_ofs, p->sb.window_size);
	for (int i = 0; i < PASTE_MAX_WINDOWS; i++)
		if (p->windows[i])
			populate(p, p->windows[i], p->sb.window_size);
}

static const char *fs_name_of(long type)
{
	switch (type) {
	case TMPFS_MAGIC: return "tmpfs";
	case EXT4_SUPER_MAGIC: return "ext4";       /* also ext2/ext3: one magic */
	case XFS_SUPER_MAGIC: return "xfs";
	case BTRFS_SUPER_MAGIC: return "btrfs";
	case 0x2fc12fc1: return "zfs";
	case 0x794c7630: return "overlayfs";
	case NFS_SUPER_MAGIC: return "nfs";
	case RAMFS_MAGIC: return "ramfs";
	default: return "unknown filesystem";
	}
}

/* lock_owner -- best-effort pid of the process that holds a pool, 0 if unknown */
static uint32_t lock_owner(int fd)
{
	struct paste_super sb;
	struct paste_state st;
	struct stat s;
	if (fstat(fd, &s) != 0 || paste_sb_validate("", fd, (uint64_t)s.st_size, &sb) != 0)
		return 0;
	if (pread(fd, &st, sizeof(st), (off_t)sb.state_ofs) != (ssize_t)sizeof(st))
		return 0;
	return st.owner_pid;
}

/*
 * The pools this process holds read-write. A worker thread that replaces a
 * terminated one finds its pool here (paste_pool_attach): the pool, its lock
 * and its runtime belong to the process, not to the thread that opened them.
 */
#define REGISTRY_MAX 16
static struct paste_pool *registry[REGISTRY_MAX];
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

static void registry_add(struct paste_pool *p)
{
	pthread_mutex_lock(&registry_lock);
	for (int i = 0; i < REGISTRY_MAX; i++)
		if (!registry[i]) {
			registry[i] = p;
			break;
		}
	pthread_mutex_unlock(&registry_lock);
}

static void registry_remove(struct paste_pool *p)
{
	pthread_mutex_lock(&registry_lock);
	for (int i = 0; i < REGISTRY_MAX; i++)
		if (registry[i] == p)
			registry[i] = NULL;
	pthread_mutex_unlock(&registry_lock);
}

int paste_pool_attach(const char *path, paste_pool **out)
{
	struct stat want, have;
	if (stat(path, &want))
		return paste_set_errno(errno, "attach: %s", path);
	int rc = paste_set_error(PASTE_ERR_STATE, "attach: this process does not hold %s open", path);
	pthread_mutex_lock(&registry_lock);
	for (int i = 0; i < REGISTRY_MAX; i++) {
		struct paste_pool *p = registry[i];
		if (p && !fstat(p->fd, &have) && have.st_dev == want.st_dev && have.st_ino == want.st_ino) {
			*out = p;
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	return rc;
}

int paste_pool_open(const char *path, uint32_t flags, uint32_t persist, paste_pool **out)
{
	if (!path || !out)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "pool open: a path is required");
	if (persist > PASTE_PERSIST_NONE)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "pool open: unknown persistence mode %u", persist);
	*out = NULL;

	bool ro = flags & PASTE_OPEN_RDONLY;
	int fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT
			? paste_set_error(PASTE_ERR_NOT_FOUND, "no pool at %s (create one with: paste-host pool create %s --size 64M)", path, path)
			: paste_set_errno(errno, "open %s", path);

	int rc;
	struct paste_pool *p = calloc(1, sizeof(*p));
	if (!p) {
		close(fd);
		return paste_set_errno(ENOMEM, "pool open");
	}
	p->fd = fd;
	p->flags = flags;
	p->base = MAP_FAILED;
	snprintf(p->path, sizeof(p->path), "%s", path);

	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = paste_set_errno(errno, "stat %s", path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = paste_set_error(PASTE_ERR_NOT_A_POOL, "%s is not a pool: not a regular file", path);
		goto fail;
	}
	/* Lock before reading, so a concurrent `pool create --force` cannot
	 * replace the file under a validated superblock. */
	if (flock(fd, (ro ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0) {
		p->locked = true;
	} else if (errno == EWOULDBLOCK && ro) {
		p->in_use = true;   /* inspecting a live pool: read-only, harmless */
	} else if (errno == EWOULDBLOCK) {
		uint32_t pid = lock_owner(fd);
		rc = pid
			? paste_set_error(PASTE_ERR_POOL_LOCKED, "%s is locked by another process (pid %u); stop it first", path, pid)
			: paste_set_error(PASTE_ERR_POOL_LOCKED, "%s is locked by another process; stop it first", path);
		goto fail;
	} else {
		rc = paste_set_errno(errno, "lock %s", path);
		goto fail;
	}
	rc = paste_sb_validate(path, fd, (uint64_t)st.st_size, &p->sb);
	if (rc)
		goto fail;

	/* Decide the persistence mode once. MAP_SYNC is accepted only on DAX. */
	struct statfs sfs;
	long fstype = fstatfs(fd, &sfs) == 0 ? (long)sfs.f_type : 0;
	snprintf(p->fs_name, sizeof(p->fs_name), "%s", fs_name_of(fstype));
	int prot = ro ? PROT_READ : PROT_READ | PROT_WRITE;
	p->map_len = p->sb.pool_size;
	p->base = mmap(NULL, p->map_len, prot, MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);
	if (p->base != MAP_FAILED) {
		p->medium = PASTE_MEDIUM_DAX;
	} else {
		p->medium = fstype == TMPFS_MAGIC ? PASTE_MEDIUM_TMPFS : PASTE_MEDIUM_FILE;
		p->base = mmap(NULL, p->map_len, prot, MAP_SHARED, fd, 0);
		if (p->base == MAP_FAILED) {
			rc = paste_set_errno(errno, "map %s", path);
			goto fail;
		}
	}

	uint32_t mode = persist != PASTE_PERSIST_AUTO ? persist : p->sb.persist_pref;
	const char *by = persist != PASTE_PERSIST_AUTO ? "requested at open" : "set at pool create";
	if (mode == PASTE_PERSIST_AUTO) {
		if (p->medium == PASTE_MEDIUM_DAX) {
			mode = PASTE_PERSIST_PMEM;
			snprintf(p->reason, sizeof(p->reason),
				 "DAX on %s: the kernel accepted MAP_SYNC, so flushed cache lines are durable", p->fs_name);
		} else if (p->medium == PASTE_MEDIUM_TMPFS) {
			mode = PASTE_PERSIST_PMEM;
			snprintf(p->reason, sizeof(p->reason),
				 "tmpfs: memory-backed, emulating NVMM with cache-line flushes (survives a crash, not a power loss)");
		} else {
			mode = PASTE_PERSIST_MSYNC;
			snprintf(p->reason, sizeof(p->reason),
				 "plain file on %s (MAP_SYNC refused: no DAX): durable after msync", p->fs_name);
		}
	} else if (mode == PASTE_PERSIST_PMEM && p->medium == PASTE_MEDIUM_FILE) {
		snprintf(p->reason, sizeof(p->reason),
			 "forced (%s); WARNING: on %s without DAX a cache flush does not reach the disk", by, p->fs_name);
	} else if (mode == PASTE_PERSIST_NONE) {
		snprintf(p->reason, sizeof(p->reason), "forced (%s): nothing is made durable, a networking-only baseline", by);
	} else {
		snprintf(p->reason, sizeof(p->reason), "forced (%s) on %s%s", by, p->fs_name,
			 p->medium == PASTE_MEDIUM_DAX ? " (DAX)" : "");
	}
	p->persist = mode;
	p->ops = &persist_ops[mode];
	p->state = (struct paste_state *)(p->base + p->sb.state_ofs);
	p->log = (struct paste_log_hdr *)(p->base + p->sb.log_ofs);
	p->prev_clean = p->state->shutdown == PASTE_STATE_CLEAN || p->state->shutdown == 0;

	if (!ro) {
		/* Dirty until a clean close: a crash leaves the mark for recovery. */
		p->state->owner_pid = (uint32_t)getpid();
		p->state->open_count++;
		p->state->last_open_ns = paste_now_ns();
		p->ops->flush(p, p->state, sizeof(*p->state));
		p->state->shutdown = PASTE_STATE_DIRTY;
		rc = paste_persist_word(p, &p->state->shutdown);
		if (rc)
			goto fail;
		registry_add(p);
	}
	*out = p;
	return 0;

fail:
	if (p->base != MAP_FAILED)
		munmap(p->base, p->map_len);
	close(fd);
	free(p);
	return rc;
}

/* window_release -- give window i's range back to its Wasm memory as zero pages */
static int window_release(struct paste_pool *p, int i)
{
	if (p->touched)
		paste_sim_present(p->touched, p->windows[i], p->sb.window_size, p->sb.ring_ofs);
	void *w = mmap(p->windows[i], p->sb.window_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (w == MAP_FAILED)
		return paste_set_errno(errno, "unmap the window of %s", p->path);
	p->windows[i] = NULL;
	return 0;
}

int paste_pool_close(paste_pool *p, int clean)
{
	int rc = 0;
	if (!p)
		return 0;
	for (int i = 0; i < PASTE_MAX_WINDOWS; i++)
		if (p->windows[i] && !rc)
			rc = window_release(p, i);
	/* The runtime above (worker.c) finishes the batch in flight and ends
	 * itself; pool.c knows it only through the pointer it registered. */
	if (p->runtime_close) {
		int r = p->runtime_close(p);
		if (!rc)
			rc = r;
	}
	if (!(p->flags & PASTE_OPEN_RDONLY)) {
		/* The last commit stored its tail without persisting it (log.c): it
		 * rides with this drain, so a closed pool's tail is current. */
		p->ops->flush(p, &p->log->tail, sizeof(p->log->tail));
		int r = p->ops->drain(p);
		if (!rc)
			rc = r;
		if (clean && !rc) {
			/* Only after everything else is durable does the pool say so. */
			p->state->shutdown = PASTE_STATE_CLEAN;
			rc = paste_persist_word(p, &p->state->shutdown);
		}
	}
	registry_remove(p);
	paste_sim_free(p);
	if (p->touched) {
		paste_sim_present(p->touched, p->base, p->map_len, 0);
		p->touched->open--;
	}
	munmap(p->base, p->map_len);
	close(p->fd);   /* drops the flock */
	free(p);
	return rc;
}

int paste_pool_info(const paste_pool *p, struct paste_info *out)
{
	if (!p || !out)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "pool info: no pool");
	memset(out, 0, sizeof(*out));
	const struct paste_super *sb = &p->sb;
	out->pool_size = sb->pool_size;
	out->created_ns = sb->created_ns;
	out->log_ofs = sb->log_ofs;
	out->log_size = sb->log_size;
	out->ring_ofs = sb->ring_ofs;
	out->ring_size = sb->ring_size;
	out->buf_ofs = sb->buf_ofs;
	out->window_size = sb->window_size;
	out->window_base = PASTE_WINDOW_BASE;
	out->handler_base = PASTE_HANDLER_BASE;
	out->log_head = __atomic_load_n(&p->log->head, __ATOMIC_ACQUIRE);
	out->log_head_seq = __atomic_load_n(&p->log->head_seq, __ATOMIC_ACQUIRE);
	out->log_tail = __atomic_load_n(&p->log->tail, __ATOMIC_ACQUIRE);
	out->log_capacity = sb->log_size - PASTE_LOG_HDR_SIZE;
	out->open_count = p->state->open_count;
	out->last_open_ns = p->state->last_open_ns;
	out->version = sb->version;
	out->buf_size = sb->buf_size;
	out->nbufs = sb->nbufs;
	out->nrings = sb->nrings;
	out->ring_slots = sb->ring_slots;
	out->ring_bufs = paste_ring_bufs(sb->nrings, sb->ring_slots);
	out->persist_pref = sb->persist_pref;
	out->persist = p->persist;
	out->medium = p->medium;
	out->flush = (uint32_t)paste_flush_kind();
	out->clean = p->prev_clean;
	out->read_only = (p->flags & PASTE_OPEN_RDONLY) != 0;
	out->in_use = p->in_use;
	out->owner_pid = p->state->owner_pid;
	memcpy(out->uuid, sb->uuid, sizeof(out->uuid));
	return 0;
}

const char *paste_pool_persist_reason(const paste_pool *p)
{
	return p ? p->reason : "";
}

const char *paste_pool_fs_name(const paste_pool *p)
{
	return p ? p->fs_name : "";
}

int paste_persist_window(paste_pool *p, uint64_t off, uint64_t len)
{
	if (!p)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "persist: no pool");
	if (p->flags & PASTE_OPEN_RDONLY)
		return paste_set_error(PASTE_ERR_READ_ONLY, "persist: %s is open read-only", p->path);
	if (off > p->sb.window_size || len > p->sb.window_size - off)
		return paste_set_error(PASTE_ERR_INVALID_ARG,
			"persist: window range [%llu, +%llu) is outside the %llu-byte window",
			(unsigned long long)off, (unsigned long long)len, (unsigned long long)p->sb.window_size);
	p->ops->flush(p, p->base + p->sb.ring_ofs + off, (size_t)len);
	return p->ops->drain(p);
}

/* ------------------------------------------------------------- the window */

/* window_slot -- the index of the window mapped into mem, or -1 */
static int window_slot(const struct paste_pool *p, const void *mem)
{
	for (int i = 0; i < PASTE_MAX_WINDOWS; i++)
		if (p->windows[i] && p->windows[i] == (const uint8_t *)mem + PASTE_WINDOW_BASE)
			return i;
	return -1;
}

int paste_window_map(paste_pool *p, void *mem, uint64_t mem_len)
{
	if (!p || !mem)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "window: no pool or no memory");
	if (p->flags & PASTE_OPEN_RDONLY)
		return paste_set_error(PASTE_ERR_READ_ONLY,
			"window: %s is open read-only; a handler's stores would fault", p->path);
	if (window_slot(p, mem) >= 0)
		return paste_set_error(PASTE_ERR_WINDOW, "window: %s is already mapped into this memory", p->path);
	int i;
	for (i = 0; i < PASTE_MAX_WINDOWS && p->windows[i]; i++)
		;
	if (i == PASTE_MAX_WINDOWS)
		return paste_set_error(PASTE_ERR_WINDOW, "window: %s is already mapped into %d memories", p->path, PASTE_MAX_WINDOWS);
	if ((uintptr_t)mem % PASTE_PAGE)
		return paste_set_error(PASTE_ERR_WINDOW, "window: memory at %p is not page aligned", mem);
	if (mem_len < PASTE_WINDOW_BASE + p->sb.window_size)
		return paste_set_error(PASTE_ERR_WINDOW,
			"window: a memory of %llu bytes cannot hold the %llu-byte window at 0x%llx",
			(unsigned long long)mem_len, (unsigned long long)p->sb.window_size,
			(unsigned long long)PASTE_WINDOW_BASE);

	uint8_t *at = (uint8_t *)mem + PASTE_WINDOW_BASE;
	int mflags = MAP_FIXED | (p->medium == PASTE_MEDIUM_DAX ? MAP_SHARED_VALIDATE | MAP_SYNC : MAP_SHARED);
	void *w = mmap(at, p->sb.window_size, PROT_READ | PROT_WRITE, mflags, p->fd, (off_t)p->sb.ring_ofs);
	if (w == MAP_FAILED)
		return paste_set_errno(errno, "window: map %s at %p", p->path, (void *)at);
	p->windows[i] = at;
	if (p->populate)
		populate(p, at, p->sb.window_size);
	return 0;
}

int paste_window_unmap(paste_pool *p, void *mem)
{
	int i = p ? window_slot(p, mem) : -1;
	if (i < 0)
		return paste_set_error(PASTE_ERR_WINDOW, "window: not mapped into the memory at %p", mem);
	return window_release(p, i);
}

int paste_window_mapped(paste_pool *p, void *mem)
{
	return p && window_slot(p, mem) >= 0;
}

/*
 * paste_window_forget -- drop every window from the books without touching
 * the memory: the memories belonged to a worker thread that was terminated,
 * and the engine freed them (and the mappings inside) with its isolate. An
 * munmap now could hit whatever lives at those addresses today.
 */
void paste_window_forget(paste_pool *p)
{
	for (int i = 0; i < PASTE_MAX_WINDOWS; i++)
		p->windows[i] = NULL;
}

uint64_t paste_addr(const void *mem)
{
	return (uint64_t)(uintptr_t)mem;
}
