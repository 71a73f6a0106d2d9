/*
 * internal.h -- what the native library's files share and users never see:
 * the pool handle, the persist dispatch and the error helpers.
 */
#ifndef PASTE_INTERNAL_H
#define PASTE_INTERNAL_H

#include "paste.h"

#include <stdbool.h>

/* Flush the cache lines covering [addr, addr+len); not ordered until paste_fence(). */
typedef void (*paste_flush_fn)(const void *addr, size_t len);
extern paste_flush_fn paste_flush_lines;

/* paste_fence -- order every earlier flush before any later store (sfence) */
static inline void paste_fence(void)
{
	__asm__ __volatile__("sfence" ::: "memory");
}

struct paste_pool;

/*
 * How a pool makes bytes durable, chosen once at open. flush() queues a range
 * (pmem: the cache-line flushes themselves; msync: widen the dirty page range),
 * drain() makes everything queued durable (pmem: sfence; msync: one msync).
 * The commit path calls flush() per record and drain() once per batch, with no
 * branch on the mode.
 */
struct paste_persist_ops {
	void (*flush)(struct paste_pool *p, const void *addr, size_t len);
	int  (*drain)(struct paste_pool *p);
};

struct paste_pool {
	int       fd;
	uint32_t  flags;              /* PASTE_OPEN_* */
	bool      locked;             /* holds flock: LOCK_EX (rw) or LOCK_SH (ro) */
	bool      in_use;             /* ro open of a pool another process holds */
	uint8_t  *base;               /* the native mapping of the whole file */
	uint64_t  map_len;
	struct paste_super sb;        /* validated copy */
	struct paste_state *state;    /* in the mapping */
	struct paste_log_hdr *log;    /* in the mapping */
	uint32_t  persist;            /* enum paste_persist, never AUTO */
	uint32_t  medium;             /* enum paste_medium */
	bool      prev_clean;         /* state at open, before we marked it dirty */
	const struct paste_persist_ops *ops;
	uint8_t  *dirty_lo, *dirty_hi;/* msync mode: pages queued since the last drain */
	uint8_t  *window;             /* where the window is mapped, or NULL */
	char      reason[160];
	char      fs_name[24];
	char      path[4096];
};

/* paste_set_error -- format this thread's last error and return rc */
int paste_set_error(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* paste_set_errno -- the same, with ": strerror(err)" appended and rc from err */
int paste_set_errno(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* PASTE_INTERNAL_H */
