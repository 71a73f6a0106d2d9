/*
 * uring.h -- the io_uring engine's state, shared by its three files:
 *   port_uring.c  the engine: the ring, the poll, accept, takeover, teardown
 *   uring_recv.c  receiving: the provided-buffer ring, receives, the backlog, publishing
 *   uring_send.c  sending: reply queues, sendmsg, POLLOUT
 * Only those include it; the TCP port sees the engine through struct paste_tcp_engine.
 */
#ifndef PASTE_URING_H
#define PASTE_URING_H

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define SQ_ENTRIES   1024
#define CQ_ENTRIES   16384
#define BR_MAX       4096     /* provided-ring entries at most (a power of two) */
#define SEND_IOV     64       /* segments one sendmsg takes */
#define EAGER_CONNS  4        /* a batch answering at most this many connections sends at once: uring_delivered */

/* Receive bundles (Linux 6.10): one receive fills several provided buffers.
 * Debian 12's kernel headers predate them; the values are the kernel's ABI. */
#ifndef IORING_RECVSEND_BUNDLE
#define IORING_RECVSEND_BUNDLE     (1U << 4)
#endif
#ifndef IORING_FEAT_RECVSEND_BUNDLE
#define IORING_FEAT_RECVSEND_BUNDLE (1U << 14)
#endif

enum { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_POLLOUT, OP_CANCEL };
enum { RX_DATA, RX_EOF, RX_DEAD };

/* A reply segment: pool buffer buf at off (pinned), or (buf == 0) stage bytes at off. */
struct seg {
	uint32_t buf, len;
	uint64_t off;
};

/* What one connection sends: its queue, the stage its copied bytes are in, the sendmsg in the kernel. */
struct usend {
	struct seg *q;
	uint32_t nq, head, cap;
	struct paste_bytes stage;
	struct msghdr mh;
	struct iovec iov[SEND_IOV];
	uint32_t inflight;         /* segments of q the send in the kernel covers */
};

struct uconn {
	uint32_t gen;              /* changes when the connection closes (24 bits: what a completion carries) */
	bool recv;                 /* a multishot receive is in the kernel */
	bool rearm;                /* on the re-arm list: its receive ended for want of buffers */
	bool sending;              /* a sendmsg is in the kernel */
	bool pollout;              /* waiting for room in the socket */
	bool queued;               /* on the send list */
	uint32_t pass;             /* publish pass that kept one of its entries back */
	struct usend *s;
};

/* A completed receive not yet in an RX slot. */
struct rxe {
	uint32_t conn, gen, buf, len;
	uint32_t kind;
};

struct paste_uring {
	struct io_uring ring;
	bool ring_ok;
	struct io_uring_buf_ring *br;
	size_t br_bytes;
	uint32_t br_entries, br_mask;
	uint32_t br_tail;          /* entries ever added (mod 2^32) */
	uint32_t br_out;           /* added, not yet seen in a completion: with the kernel */
	uint32_t *br_buf;          /* bid -> pool buffer */
	struct uconn *uc;
	uint32_t nuc;
	uint32_t *rearm, nrearm, cap_rearm;
	uint32_t *sendl, nsendl, cap_sendl;
	struct rxe *bl;
	uint32_t nbl, cap_bl;
	bool accepting;            /* the multishot accept is armed */
	bool bundle;               /* receives fill several buffers at once (IORING_RECVSEND_BUNDLE) */
	uint32_t eager_conns;      /* a batch answering at most this many connections sends at once */
	uint32_t pass;
	int reopen_err;            /* a takeover could not make its ring: why, for the next poll */
	char reopen_msg[160];
};

static inline struct paste_uring *U(struct paste_worker *w)
{
	return paste_tcp_of(w)->eng_data;
}

static inline uint64_t udata(uint32_t op, uint32_t gen, uint32_t conn)
{
	return (uint64_t)op << 56 | (uint64_t)(gen & 0xffffff) << 32 | conn;
}

/* grow -- make room for one more element in a growable array */
static inline int grow(void **v, uint32_t n, uint32_t *cap, size_t size)
{
	if (n < *cap)
		return 0;
	uint32_t c = *cap ? *cap * 2 : 64;
	void *nv = realloc(*v, (size_t)c * size);
	if (!nv)
		return paste_set_error(PASTE_ERR_IO, "io_uring: out of memory");
	*v = nv;
	*cap = c;
	return 0;
}

/* uconn_of -- the engine's state of connection id, grown with the worker's connections */
static inline struct uconn *uconn_of(struct paste_uring *u, uint32_t id)
{
	if (id >= u->nuc) {
		uint32_t n = u->nuc ? u->nuc : 256;
		while (n <= id)
			n *= 2;
		struct uconn *nu = realloc(u->uc, (size_t)n * sizeof(*nu));
		if (!nu)
			return NULL;
		memset(nu + u->nuc, 0, (size_t)(n - u->nuc) * sizeof(*nu));
		u->uc = nu;
		u->nuc = n;
	}
	return &u->uc[id];
}

/* sqe -- a submission entry; when the queue is full, what is in it is submitted first */
static inline struct io_uring_sqe *sqe(struct paste_uring *u)
{
	struct io_uring_sqe *e = io_uring_get_sqe(&u->ring);
	if (!e) {
		io_uring_submit(&u->ring);
		e = io_uring_get_sqe(&u->ring);
	}
	return e;
}

static inline int list_push(uint32_t **v, uint32_t *n, uint32_t *cap, uint32_t x)
{
	int rc = grow((void **)v, *n, cap, sizeof(**v));
	if (!rc)
		(*v)[(*n)++] = x;
	return rc;
}

static inline bool owes(const struct uconn *uc)
{
	return uc->s && uc->s->head < uc->s->nq;
}

/* uring_recv.c */
void uring_refill(struct paste_worker *w);
void uring_give_back(struct paste_pool *p, uint32_t b);
void uring_arm_recv(struct paste_worker *w, uint32_t id);
void uring_on_recv(struct paste_worker *w, struct io_uring_cqe *cqe, uint32_t id, uint32_t gen);
uint32_t uring_publish(struct paste_worker *w);
void uring_rearm(struct paste_worker *w);

/* uring_send.c */
void uring_drop_queue(struct paste_worker *w, struct uconn *uc);
void uring_want_send(struct paste_uring *u, uint32_t id);
void uring_submit_sends(struct paste_worker *w);
void uring_on_send(struct paste_worker *w, struct io_uring_cqe *cqe, uint32_t id, uint32_t gen);
void uring_on_pollout(struct paste_worker *w, uint32_t id, uint32_t gen);
int uring_deliver(struct paste_worker *w, uint32_t id, const struct iovec *iov, int n);
void uring_delivered(struct paste_worker *w);

#endif
