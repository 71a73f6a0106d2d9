/*
 * internal.h -- what the native library's files share and users never see:
 * the pool handle, the persist dispatch and the error helpers.
 */
#ifndef PASTE_INTERNAL_H
#define PASTE_INTERNAL_H

#include "paste.h"

#include <pthread.h>
#include <sys/uio.h>
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

/* Where a buffer is; native code trusts this, never the window. */
enum paste_buf_state {
	BS_FREE = 0,      /* on the free stack */
	BS_RESERVED,      /* buffer 0 */
	BS_RX_KERNEL,     /* in an RX slot the port may fill */
	BS_RX_USER,       /* in an RX slot the handler owns ([head, tail)) */
	BS_TX,            /* in a TX slot */
	BS_LOGGED,        /* out of every ring, referenced by the log or held by the handler */
};

/* A growable byte queue: replies waiting for their commit, then delivered. */
struct paste_bytes {
	uint8_t *data;
	size_t   len, cap;
};

/* A connection of a port (TCP, or the mem port's synthetic ones), by id. */
struct paste_conn {
	int      fd;                  /* -1: not open */
	bool     eof;                 /* the peer finished sending; close once replies are out */
	bool     dead;                /* reset or closed: discard output */
	bool     want_out;            /* EPOLLOUT armed */
	uint32_t held;                /* first buffer this connection's handler holds (hold_next links) */
	struct paste_bytes out;       /* replies the socket did not take yet */
};

struct paste_tcp;

#define PASTE_MAX_WINDOWS 2

struct paste_worker {
	struct paste_pool *pool;
	uint32_t id;
	struct netmap_ring *rx, *tx;  /* in the native mapping */
	uint64_t rx_wasm;             /* Wasm address of the RX ring */
	uint32_t *rx_shadow;          /* the buffer native put in each RX slot; 0 = needs one */
	uint32_t rx_head;             /* the head native last accepted from the handler */
	uint32_t rx_tail;             /* native's tail: slots [rx_head, rx_tail) are the handler's */
	uint8_t  *wasm;               /* byte 0 of the handler's memory */
	uint64_t wasm_len;
	uint64_t mem_seq;             /* mem port: requests generated */
	struct paste_bytes pending;   /* replies of the open batch */
	struct paste_bytes delivered; /* mem port: replies "sent" */
	uint64_t pending_replies;
	struct paste_conn *conns;     /* by connection id */
	uint32_t nconns;              /* capacity of conns */
	struct paste_tcp *tcp;        /* the TCP port, if listening */
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
	/* Where the window is mapped: one memory normally, two while a deploy
	 * swaps handlers (the new handler's memory is made ready beside the old). */
	uint8_t  *windows[PASTE_MAX_WINDOWS];
	/* runtime, after paste_pool_recover() */
	pthread_mutex_t lock;         /* log append, commit, trim: workers share one log */
	bool      recovered;
	uint32_t *refs;               /* live records referencing each buffer */
	uint16_t *holds;              /* handler holds on each buffer (a request still being received) */
	uint32_t *hold_next;          /* next held buffer of the same connection */
	uint8_t  *bstate;             /* enum paste_buf_state per buffer */
	uint32_t *free_stack;
	uint32_t  nfree;
	uint32_t  nlogged;            /* buffers in state BS_LOGGED */
	uint8_t  *records;            /* the log's record area */
	uint64_t  cap;                /* its bytes */
	uint64_t  head, head_seq;     /* volatile mirrors of the persistent words */
	uint64_t  vtail;              /* appended, not yet committed */
	uint64_t  ptail;              /* persistent tail */
	uint64_t  next_seq, committed_seq;
	struct paste_worker *workers;
	struct paste_stats stats;
	uint64_t  walk_pos, walk_end, walk_expect;   /* log walker */
	struct paste_sim *sim;        /* the persistence simulator, if enabled */
	char      reason[160];
	char      fs_name[24];
	char      path[4096];
};

extern __thread struct paste_worker *paste_cur;   /* the calling thread's bound worker */

/* buffer address in the native mapping */
static inline uint8_t *paste_buf(const struct paste_pool *p, uint32_t idx)
{
	return p->base + p->sb.buf_ofs + (uint64_t)idx * p->sb.buf_size;
}

/* paste_buf_loggable -- a buffer the handler may name: received in this batch, or out of the rings and referenced */
static inline bool paste_buf_loggable(const struct paste_pool *p, uint32_t b)
{
	return b > 0 && b < p->sb.nbufs && (p->bstate[b] == BS_RX_USER || p->bstate[b] == BS_LOGGED);
}

/* runtime internals shared by log.c and ring.c */
int  paste_runtime_init(struct paste_pool *p);
void paste_runtime_free(struct paste_pool *p);
void paste_rings_reset(struct paste_pool *p);
int64_t paste_log_append(struct paste_pool *p, const struct paste_extent *ext, uint32_t n);
int  paste_log_commit(struct paste_pool *p);
int  paste_persist_word(struct paste_pool *p, const uint64_t *w);
uint32_t paste_free_pop(struct paste_pool *p);
/* paste_buf_release -- a buffer out of the rings lost its last reference or hold: free it */
void paste_buf_maybe_free(struct paste_pool *p, uint32_t b);
/* paste_conn_get -- connection id's state, grown on demand; NULL if out of memory */
struct paste_conn *paste_conn_get(struct paste_worker *w, uint32_t id);
/* paste_conn_drop_holds -- release every buffer a connection's handler still holds */
void paste_conn_drop_holds(struct paste_worker *w, uint32_t id);
/* paste_deliver -- hand a committed reply to the port (TCP socket, or the mem port's queue) */
int paste_deliver(struct paste_worker *w, uint32_t conn, const struct iovec *iov, int n);
/* paste_rx_claim -- the next RX slot the port may fill and its buffer; NULL when the ring or pool is full */
struct netmap_slot *paste_rx_claim(struct paste_worker *w, uint8_t **data);
/* paste_rx_publish -- hand the claimed slot to the handler with len bytes from conn */
void paste_rx_publish(struct paste_worker *w, struct netmap_slot *slot, uint32_t len, uint32_t conn);
/* paste_tcp_deliver -- send (or queue) a reply on a TCP connection */
int paste_tcp_deliver(struct paste_worker *w, uint32_t conn, const struct iovec *iov, int n);
/* paste_bytes_append -- append to a byte queue */
int paste_bytes_append(struct paste_bytes *q, const void *data, size_t len);
/* paste_log_room -- requests the log can take before a batch waits for a trim */
uint32_t paste_log_room(struct paste_pool *p);
/* paste_tcp_close_after -- close a connection once its queued replies are sent */
int paste_tcp_close_after(struct paste_worker *w, uint32_t id);
/* paste_tcp_after_commit -- after a batch's replies went out: carry out requested closes */
void paste_tcp_after_commit(struct paste_worker *w);
/* paste_tcp_end_conn -- stop reading conn now; close it once its queued replies are out. 1 if it was open */
uint32_t paste_tcp_end_conn(struct paste_worker *w, uint32_t id);
/* paste_log_abort -- forget the appended, uncommitted records (their batch will never commit) */
uint32_t paste_log_abort(struct paste_pool *p);
/* paste_tcp_takeover -- reset what a terminated thread left of the port (a deploy's quiesce) */
void paste_tcp_takeover(struct paste_worker *w);
/* paste_tcp_free -- close the port and every connection */
void paste_tcp_free(struct paste_worker *w);

/* paste_buf_state -- move buffer b to state st, keeping the counters right */
void paste_buf_state(struct paste_pool *p, uint32_t b, uint8_t st);
void paste_free_push(struct paste_pool *p, uint32_t idx);

/* the persistence simulator's bookkeeping (sim.c); called only when p->sim */
void paste_sim_note_append(struct paste_pool *p, uint64_t seq, uint32_t len, uint32_t crc);
void paste_sim_note_commit(struct paste_pool *p, uint64_t seq);
void paste_sim_note_trim(struct paste_pool *p, uint64_t seq);
void paste_sim_free(struct paste_pool *p);

/* paste_set_error -- format this thread's last error and return rc */
int paste_set_error(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* paste_set_errno -- the same, with ": strerror(err)" appended and rc from err */
int paste_set_errno(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* PASTE_INTERNAL_H */
