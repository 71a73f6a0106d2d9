/*
 * internal.h -- what the native library's files share and users never see:
 * the pool and worker structs, the persist and port dispatch tables, and what
 * each layer offers the layers above it.
 */
#ifndef PASTE_INTERNAL_H
#define PASTE_INTERNAL_H

#include "paste.h"

#include <pthread.h>
#include <sys/uio.h>
#include <stdbool.h>

struct paste_pool;
struct paste_worker;

/*
 * How a pool makes bytes durable, chosen once at open. flush() queues a range
 * (pmem: the cache-line flushes themselves; msync: widen the dirty page range),
 * drain() makes everything queued durable (pmem: sfence; msync: one msync).
 * The commit path calls flush() per record and drain() twice per batch, with no
 * branch on the mode.
 */
struct paste_persist_ops {
	void (*flush)(struct paste_pool *p, const void *addr, size_t len);
	int  (*drain)(struct paste_pool *p);
};

/*
 * What the layers below a port need from it, filled in by the port when it
 * attaches to a worker (port_mem.c, port_tcp.c): decided once, called through
 * the table, so no file below the ports names one (PMDK's habit).
 */
struct paste_port_ops {
	const char *name;
	/* replies to one connection go out in one deliver() (TCP: one writev); else one a reply */
	bool coalesce;
	/* deliver -- a committed batch's replies for conn (reply.c, after the commit) */
	int  (*deliver)(struct paste_worker *w, uint32_t conn, const struct iovec *iov, int n);
	/* close_after -- close conn once the replies queued so far are sent (imports.c; ring.c after a trap) */
	int  (*close_after)(struct paste_worker *w, uint32_t conn);
	/* after_commit -- the batch's replies are out: carry out the closes asked for (reply.c) */
	void (*after_commit)(struct paste_worker *w);
	/* end_conn -- stop reading conn now, close it once its replies are out; 1 if it was open (worker.c) */
	uint32_t (*end_conn)(struct paste_worker *w, uint32_t conn);
	/* takeover -- a new thread runs the worker: forget what the old one waited for (worker.c) */
	void (*takeover)(struct paste_worker *w);
	/* detach -- close the port and free its state (worker.c: another port attaches, or the pool closes) */
	void (*detach)(struct paste_worker *w);
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
	int      fd;                  /* -1: not open (TCP) */
	bool     eof;                 /* the peer finished sending; close once replies are out */
	bool     dead;                /* reset or closed: discard output */
	bool     want_out;            /* EPOLLOUT armed */
	bool     reported;            /* its close is on the list for on_close (TCP) */
	bool     ended;               /* the server ended it while the peer still sent: close in stages (TCP) */
	uint32_t held;                /* first buffer this connection's handler holds (hold_next links) */
	struct paste_bytes out;       /* replies the socket did not take yet */
};

#define PASTE_MAX_WINDOWS 2

/* One data-path worker: an RX and a TX ring, the handler memory bound to them, a port. */
struct paste_worker {
	struct paste_pool *pool;
	uint32_t id;
	/* ring.c */
	struct netmap_ring *rx, *tx;  /* in the native mapping */
	uint64_t rx_wasm;             /* Wasm address of the RX ring */
	uint32_t *rx_shadow;          /* the buffer native put in each RX slot; 0 = needs one */
	uint32_t rx_head;             /* the head native last accepted from the handler */
	uint32_t rx_tail;             /* native's tail: slots [rx_head, rx_tail) are the handler's */
	/* worker.c: the handler memory bound, and the connections by id */
	uint8_t  *wasm;               /* byte 0 of the handler's memory */
	uint64_t wasm_len;
	struct paste_conn *conns;
	uint32_t nconns;              /* capacity of conns */
	uint32_t entered;             /* imports.c: PASTE_ENTER_* of the host call in progress */
	bool     use_reserve;         /* imports.c: the handler said its next logs free space */
	bool     has_cleaner;         /* imports.c: the handler has a cleaner (PASTE_ENTER_RESERVE) */
	/* reply.c */
	struct paste_bytes pending;   /* replies of the open batch */
	uint64_t pending_replies;
	/* the port: set by the port itself (paste_port_attach) */
	const struct paste_port_ops *port;
	void     *port_data;
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
	/* The runtime above the pool (worker.c) registers how to end it, so that
	 * pool.c closes it without naming a higher layer. NULL: no runtime. */
	int     (*runtime_close)(struct paste_pool *p);
	/* runtime, after paste_pool_recover() */
	pthread_mutex_t lock;         /* log append, commit, trim: workers share one log */
	bool      recovered;
	bool      populate;  /* a port serves: map each window's pages when it is mapped (paste_pool_populate) */
	/* bufs.c */
	uint32_t *refs;               /* live records referencing each buffer */
	uint16_t *holds;              /* handler holds on each buffer (a request still being received) */
	uint32_t *hold_next;          /* next held buffer of the same connection */
	uint8_t  *bstate;             /* enum paste_buf_state per buffer */
	uint32_t *free_stack;
	uint32_t  nfree;
	uint32_t  nlogged;            /* buffers in state BS_LOGGED */
	uint32_t  nholds;             /* of them, held by a handler for a request still arriving */
	uint64_t  log_bytes;          /* payload bytes of the records between head and vtail */
	uint32_t  pack_buf;           /* the shared buffer the cleaner's copies go into now (0: none) */
	uint32_t  pack_used;          /* its bytes taken */
	/* log.c */
	uint8_t  *records;            /* the log's record area */
	uint64_t  cap;                /* its bytes */
	uint64_t  head, head_seq;     /* volatile mirrors of the persistent words */
	uint64_t  vtail;              /* appended, not yet committed */
	uint64_t  ptail;              /* end of the committed records: the tail word's value (durable with the next batch) */
	uint32_t  epoch;              /* the log epoch records are appended in (set by recovery) */
	uint64_t  next_seq, committed_seq;
	uint64_t  walk_pos, walk_end, walk_expect;   /* log walker */
	/* worker.c */
	struct paste_worker *workers;
	struct paste_stats stats;
	struct paste_sim *sim;        /* the persistence simulator, if enabled */
	struct paste_touched *touched; /* crash testing: where to note the pages this pool's mappings touched */
	char      reason[160];
	char      fs_name[24];
	char      path[4096];
};

/* paste_buf -- a buffer's address in the native mapping */
static inline uint8_t *paste_buf(const struct paste_pool *p, uint32_t idx)
{
	return p->base + p->sb.buf_ofs + (uint64_t)idx * p->sb.buf_size;
}

/* paste_buf_loggable -- a buffer the handler may name: received in this batch, or out of the rings and referenced */
static inline bool paste_buf_loggable(const struct paste_pool *p, uint32_t b)
{
	return b > 0 && b < p->sb.nbufs && (p->bstate[b] == BS_RX_USER || p->bstate[b] == BS_LOGGED);
}

/* ring_next -- netmap's next(i) */
static inline uint32_t paste_ring_next(uint32_t i, uint32_t n)
{
	return i + 1 == n ? 0 : i + 1;
}

/*
 * What each file offers the files above it, bottom first. A file calls only
 * what a lower layer declares here (native/layers.mjs checks the objects at
 * build time); the picture is in paste.h.
 */

/* error.c */
/* paste_set_error -- format this thread's last error and return rc */
int paste_set_error(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* paste_set_errno -- the same, with ": strerror(err)" appended and rc from err */
int paste_set_errno(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* cpu.c: flush the cache lines covering [addr, addr+len); not ordered until paste_fence() */
typedef void (*paste_flush_fn)(const void *addr, size_t len);
extern paste_flush_fn paste_flush_lines;

/* paste_fence -- order every earlier flush before any later store (sfence) */
static inline void paste_fence(void)
{
	__asm__ __volatile__("sfence" ::: "memory");
}

/* sim.c: the persistence simulator's bookkeeping; called only when p->sim */
void paste_sim_note_append(struct paste_pool *p, uint64_t seq, uint32_t len, uint32_t crc);
void paste_sim_note_commit(struct paste_pool *p, uint64_t seq);
void paste_sim_note_trim(struct paste_pool *p, uint64_t seq);
/*
 * Pages of a pool file some mapping touched (crash testing): a verifying pool
 * notes its own mappings here before it unmaps them (pool.c), so that the
 * simulator rebuilds only those pages of the next image. open counts pools
 * still holding it.
 */
struct paste_touched {
	uint8_t *bits;                /* one bit per 4 KiB page of the file */
	uint64_t npages;
	int      open;
};
/* paste_sim_present -- OR into t's bits the pages of [addr, +len) (file offset off) this process has mapped */
void paste_sim_present(struct paste_touched *t, const void *addr, uint64_t len, uint64_t off);
/* paste_sim_tag -- what runs now (PASTE_SIM_TAG_*): set the bits of set, then clear those of clear */
void paste_sim_tag(struct paste_pool *p, uint32_t set, uint32_t clear);
void paste_sim_free(struct paste_pool *p);

/* format.c */
/* paste_sb_validate -- read and check the superblock of an open pool file; 0 or the error naming what is wrong */
int  paste_sb_validate(const char *path, int fd, uint64_t file_size, struct paste_super *sb);
/* paste_netmap_layout -- write the netmap_if and the rings' constant fields at win from sb (create, recovery) */
void paste_netmap_layout(uint8_t *win, const struct paste_super *sb);
/* paste_ring_bufs -- buffers that sit in ring slots when the pool is at rest */
uint32_t paste_ring_bufs(uint32_t nrings, uint32_t slots);
/* paste_now_ns -- CLOCK_REALTIME in nanoseconds */
uint64_t paste_now_ns(void);

/* pool.c */
/* paste_pool_populate -- a port starts serving: map the pool's pages now, not on the request path (pool.c) */
void paste_pool_populate(struct paste_pool *p);
/* paste_persist_word -- make one 8-byte word of the native mapping durable */
int  paste_persist_word(struct paste_pool *p, const uint64_t *w);

/* bufs.c */
/* paste_bufs_init -- per-buffer books for a recovered pool, all free but buffer 0 (not yet on the stack) */
int  paste_bufs_init(struct paste_pool *p);
/* paste_bufs_free -- drop the books */
void paste_bufs_free(struct paste_pool *p);
/* paste_bufs_stack_free -- after recovery marked the live ones: every free buffer onto the stack */
void paste_bufs_stack_free(struct paste_pool *p);
/* paste_buf_state -- move buffer b to state st, keeping the counters right */
void paste_buf_state(struct paste_pool *p, uint32_t b, uint8_t st);
/* paste_free_pop -- a free buffer (its state for the caller to set), or 0 */
uint32_t paste_free_pop(struct paste_pool *p);
/* paste_free_push -- buffer b is free again */
void paste_free_push(struct paste_pool *p, uint32_t b);
/* paste_buf_maybe_free -- a buffer out of the rings lost its last reference or hold: free it */
void paste_buf_maybe_free(struct paste_pool *p, uint32_t b);
/* paste_hold_push -- hold buffer b on the list at *head; PASTE_ERR_HANDLER if it cannot be held */
int  paste_hold_push(struct paste_pool *p, uint32_t *head, uint32_t b);
/* paste_hold_remove -- give held buffer b back from the list at *head; PASTE_ERR_HANDLER if not on it */
int  paste_hold_remove(struct paste_pool *p, uint32_t *head, uint32_t b);
/* paste_hold_drop_all -- give back every buffer on the list at *head */
void paste_hold_drop_all(struct paste_pool *p, uint32_t *head);

/* log.c */
/* paste_log_init -- the log's volatile books, from the pool's geometry */
void paste_log_init(struct paste_pool *p);
/* paste_log_recover -- walk, cut a torn tail, reference every live record's buffers */
int  paste_log_recover(struct paste_pool *p, struct paste_recovery *out);
/* paste_log_append -- one record of n extents; its seq, or a negative error */
int64_t paste_log_append(struct paste_pool *p, const struct paste_extent *ext, uint32_t n);
/* paste_log_commit -- make every appended record durable, then the tail that covers them */
int  paste_log_commit(struct paste_pool *p);
/* paste_log_abort -- forget the appended, uncommitted records (their batch will never commit),
 * zeroing them durably; how many, or a negative error if the zeroes could not be made durable */
int64_t paste_log_abort(struct paste_pool *p);
/* paste_log_room -- requests the log can take before a batch waits for a trim */
uint32_t paste_log_room(struct paste_pool *p);
/* paste_log_pressure -- the pool's space: free buffers, log room, the reserve kept for the cleaner */
void paste_log_pressure(struct paste_pool *p, struct paste_pressure *out);
/* paste_log_reserved -- 0, or the error if a record of n extents logged outside cleaning would eat the reserve */
int  paste_log_reserved(struct paste_pool *p, uint32_t n);

/* ring.c */
/* paste_rings_reset -- after recovery: every ring as at create, free buffers in its slots */
void paste_rings_reset(struct paste_pool *p);
/* paste_rx_claim -- the next RX slot the port may fill and its buffer; NULL when the ring or pool is full */
struct netmap_slot *paste_rx_claim(struct paste_worker *w, uint8_t **data);
/* paste_rx_publish -- hand the claimed slot to the handler with len bytes from conn */
void paste_rx_publish(struct paste_worker *w, struct netmap_slot *slot, uint32_t len, uint32_t conn);
/* paste_rx_room -- requests a port may put in the ring now (the pool lock held) */
uint32_t paste_rx_room(struct paste_worker *w);
/* paste_rx_claim_many -- up to max consecutive free RX slots, each with its buffer (for one readv); how many */
uint32_t paste_rx_claim_many(struct paste_worker *w, struct iovec *iov, uint32_t max);
/* paste_rx_full -- no RX slot free for the port */
bool paste_rx_full(const struct paste_worker *w);
/* paste_rx_publish_buf -- the next RX slot gets buffer b (the kernel chose it) with len bytes from conn (the pool lock held) */
void paste_rx_publish_buf(struct paste_worker *w, uint32_t b, uint32_t len, uint32_t conn);
/* paste_rx_unpark -- the free RX slots give back the buffers parked in them (a port whose kernel picks buffers) */
void paste_rx_unpark(struct paste_worker *w);
/* paste_rx_take_back -- RX slot s returns to native (the pool lock held) */
void paste_rx_take_back(struct paste_worker *w, uint32_t s);
/* paste_slot_conn -- the connection an RX slot's request came from (slot.ptr, as PASTE encodes it) */
static inline uint32_t paste_slot_conn(const struct netmap_slot *slot)
{
	return (uint32_t)((slot->ptr & PASTE_PTR_FD_MASK) >> PASTE_PTR_FD_SHIFT);
}

/* reply.c */
/* A byte queue keeps at most this much memory once it is empty (paste_bytes_clear). */
#define BYTES_KEEP     (1u << 20)
/* The bytes a batch's replies may copy out of the handler's memory (reply.c). */
#define REPLY_COPY_MAX (64u << 20)
/* paste_bytes_clear -- empty a byte queue, giving back what a large reply made it grow to */
void paste_bytes_clear(struct paste_bytes *q);
/* paste_bytes_append -- append to a byte queue */
int  paste_bytes_append(struct paste_bytes *q, const void *data, size_t len);
/* paste_bytes_reserve -- room for more bytes at the end of a byte queue */
int  paste_bytes_reserve(struct paste_bytes *q, size_t more);
/* paste_reply_queue -- queue a reply for conn: len bytes copied from src, or (buf != 0) by reference to a pool buffer */
int  paste_reply_queue(struct paste_worker *w, uint32_t conn, uint32_t buf, uint32_t off, const void *src, uint32_t len);
/* paste_reply_drop -- forget the open batch's replies (it will never commit) */
void paste_reply_drop(struct paste_worker *w);

/* worker.c */
/* paste_conn_get -- connection id's state, grown on demand; NULL if out of memory */
struct paste_conn *paste_conn_get(struct paste_worker *w, uint32_t id);
/* paste_conn_drop_holds -- release every buffer a connection's handler still holds (the pool lock held) */
void paste_conn_drop_holds(struct paste_worker *w, uint32_t id);
/* paste_port_attach -- make ops (with its state) the worker's port; the previous one is detached */
void paste_port_attach(struct paste_worker *w, const struct paste_port_ops *ops, void *data);
/* paste_port_vacant -- no port has attached to the worker yet */
bool paste_port_vacant(const struct paste_worker *w);
/* paste_port_is -- is ops the worker's port? */
static inline bool paste_port_is(const struct paste_worker *w, const struct paste_port_ops *ops)
{
	return w && w->port == ops;
}

/*
 * port_tcp.c, for the engine above it (port_uring.c). The TCP port keeps the
 * connections, the close lists and the quiesce flag; an engine moves the
 * bytes: it waits, accepts, receives into RX slots and sends replies. The
 * port reaches its engine only through this table (the port ops' habit).
 */
struct paste_tcp_engine {
	const char *name;
	/* poll -- wait up to timeout_ms, accept, send what is owed, receive into RX slots; slots filled */
	int  (*poll)(struct paste_worker *w, int timeout_ms);
	/* deliver -- a committed batch's replies for conn */
	int  (*deliver)(struct paste_worker *w, uint32_t conn, const struct iovec *iov, int n);
	/* delivered -- every reply of the batch was handed to deliver (NULL: nothing to do) */
	void (*delivered)(struct paste_worker *w);
	/* stop_reading -- conn's input ended (dead: reset, drop its output); true if replies are still
	 * owed, the engine then reports the close (paste_tcp_closed_push) once they are sent */
	bool (*stop_reading)(struct paste_worker *w, uint32_t conn, bool dead);
	/* closing -- conn's socket is about to be closed: forget what is in flight for it */
	void (*closing)(struct paste_worker *w, uint32_t conn);
	/* stop_accepting -- the listener is about to be closed */
	void (*stop_accepting)(struct paste_worker *w);
	/* takeover -- a new thread runs the port */
	void (*takeover)(struct paste_worker *w);
	/* detach -- free the engine's state (the sockets are closed after) */
	void (*detach)(struct paste_worker *w);
};

/* tcp_linger.c: connections half-closed, their input discarded until the peer closes or a deadline */
struct paste_linger_fd { int fd; uint64_t until_ms; };
struct paste_linger { struct paste_linger_fd *fds; uint32_t n, cap; };
/* paste_linger_add -- half-close fd and keep it until the peer closes too (or a second passes); then close it */
void paste_linger_add(struct paste_linger *l, int fd);
/* paste_linger_service -- discard what the lingering sockets received; close the ones that are done */
void paste_linger_service(struct paste_linger *l);
/* paste_linger_free -- close every lingering socket now */
void paste_linger_free(struct paste_linger *l);

/*
 * busypoll.c: adaptive busy polling, for both engines. A poll that found work
 * within budget_us of starting to wait arms the next one to spin that long (on
 * a check that needs no system call where the engine has one) before it sleeps.
 */
struct paste_busy {
	uint32_t budget_us;       /* 0: never spin (--busy-poll 0) */
	bool     armed;           /* the last poll found work within the budget */
	uint64_t wait0;           /* when the poll under way began to wait (spin or sleep); 0: not yet */
	uint64_t spins, misses;   /* polls that spun; of them, the ones whose budget ran out (they slept) */
};
/* paste_busy_begin -- a poll starts */
void paste_busy_begin(struct paste_busy *b);
/* paste_busy_waiting -- the poll has done its own work (sent what it owed) and is about to sleep */
void paste_busy_waiting(struct paste_busy *b);
/* paste_busy_end -- the poll is over, having filled this many slots: arms or disarms the next spin */
void paste_busy_end(struct paste_busy *b, int filled);
/* paste_busy_spin -- if armed: call ready(arg) until it says true or the budget runs out; true if it did */
bool paste_busy_spin(struct paste_busy *b, bool (*ready)(void *arg), void *arg);

struct paste_tcp {
	int       lfd;
	const struct paste_tcp_engine *eng;
	void     *eng_data;
	uint32_t *closing;        /* connections a handler asked to close after their replies */
	uint32_t  nclosing, cap_closing;
	uint32_t  open;           /* connections open */
	uint64_t  accepted;
	uint32_t *closed;         /* connections to report to the handler */
	uint32_t  nclosed, cap_closed;
	bool      blocked;        /* the last poll stopped for want of slots or buffers */
	bool      quiesce;        /* a deploy waits: read only connections with a request half received */
	struct paste_linger linger;   /* closed connections still draining (tcp_linger.c) */
	struct paste_busy busy;       /* busy polling before a poll sleeps (busypoll.c) */
};

/* paste_tcp_of -- the worker's TCP port, or NULL if it has another (or none) */
struct paste_tcp *paste_tcp_of(struct paste_worker *w);
/* paste_tcp_bind (tcp_bind.c) -- a listening socket on host:port; its fd, or the error */
int  paste_tcp_bind(const char *host, uint32_t port, int backlog);
/* paste_tcp_attach -- make the TCP port with engine eng (its state data) on listener lfd w's port */
int  paste_tcp_attach(struct paste_worker *w, int lfd, const struct paste_tcp_engine *eng, void *data);
/* paste_tcp_conn_open -- a connection was accepted on fd: its state (NULL: out of memory, fd closed) */
struct paste_conn *paste_tcp_conn_open(struct paste_worker *w, int fd);
/* paste_tcp_conn_finish -- the peer is gone (dead) or done: stop reading, report the close once */
void paste_tcp_conn_finish(struct paste_worker *w, uint32_t id, bool dead);
/* paste_tcp_closed_push -- conn is closed and its replies out: report it to the handler (once) */
int  paste_tcp_closed_push(struct paste_worker *w, uint32_t id);
/* paste_tcp_may_read -- whether the port reads conn now (a deploy waits for half-received requests only) */
static inline bool paste_tcp_may_read(const struct paste_tcp *t, const struct paste_conn *c)
{
	return !t->quiesce || c->held;
}

#endif /* PASTE_INTERNAL_H */
