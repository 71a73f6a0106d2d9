/*
 * port_uring.c -- the TCP port's io_uring engine, the mainline-Linux
 * counterpart of PASTE's stack port: the kernel receives straight into the
 * pool buffer it picks, and one io_uring_enter per poll both submits the
 * replies of the batch just committed and waits for the next requests.
 *
 *   - The free pool buffers are a provided-buffer ring (group 0). A receive
 *     takes the next one; the completion names it (its bid), so the request
 *     is in NVMM-backed pool memory the moment the completion arrives, with
 *     no copy of ours. A bid is a position in the ring, not a buffer index
 *     (bids are 16 bits, pools have more buffers): br_buf maps it back.
 *   - One multishot accept on the listener, one multishot receive per
 *     connection. Completions wait in a backlog and become RX slots (buffer,
 *     length, connection) in order, exactly as the epoll engine fills them,
 *     so handlers and the SDK see no difference. The backlog is what lets a
 *     deploy quiesce (only connections with a request half received are
 *     published) and lets a full RX ring push back without losing a byte.
 *   - Replies: deliver() queues segments (pool buffers by reference, pinned
 *     with a reference so that a trim cannot free them under the kernel;
 *     small replies copied into the connection's stage); the next poll turns
 *     each connection's queue into one sendmsg with MSG_DONTWAIT, so the send
 *     runs inline during that enter and never lingers: what the socket does
 *     not take comes back as a short count or EAGAIN, and a POLLOUT waits
 *     for room. At most one send per connection is in the kernel.
 *   - Buffers the handler releases and the log does not hold return to the
 *     free list (ring.c, bufs.c) and from there to the provided ring at the
 *     next poll. When the ring runs dry, a receive ends with ENOBUFS; the
 *     connection is re-armed once buffers are back: the socket keeps its
 *     data meanwhile, which is the backpressure.
 *
 * The ring is created SINGLE_ISSUER|DEFER_TASKRUN: completions run only when
 * this thread asks (in the poll), never interrupting the handler. A thread
 * that takes the worker over (the old one was terminated) cannot submit to
 * the old ring, so takeover reaps what the old ring completed, closes it and
 * builds a new one that re-arms every open connection.
 *
 * Connection ids are fds, as in the epoll engine. A completion carries the
 * operation, the connection and its generation: a connection's generation
 * changes when it closes, so a late completion for a closed fd (reused by a
 * new connection) is recognised and its buffer given back.
 */
#define _GNU_SOURCE
#include "internal.h"

#ifdef PASTE_NO_URING
/* Built where liburing was missing: the epoll engine serves alone. */
int paste_uring_listen(paste_worker *w, const char *host, uint32_t port, int backlog)
{
	(void)w, (void)host, (void)port, (void)backlog;
	return paste_set_error(PASTE_ERR_UNSUPPORTED,
		"io_uring: this build has no io_uring engine: liburing was missing when it was built "
		"(on Debian/Ubuntu: apt-get install -y liburing-dev, then npm run build)");
}
#else

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

static const struct paste_tcp_engine uring_engine;

static inline struct paste_uring *U(struct paste_worker *w)
{
	return paste_tcp_of(w)->eng_data;
}

static inline uint64_t udata(uint32_t op, uint32_t gen, uint32_t conn)
{
	return (uint64_t)op << 56 | (uint64_t)(gen & 0xffffff) << 32 | conn;
}

/* grow -- make room for one more element in a growable array */
static int grow(void **v, uint32_t n, uint32_t *cap, size_t size)
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
static struct uconn *uconn_of(struct paste_uring *u, uint32_t id)
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
static struct io_uring_sqe *sqe(struct paste_uring *u)
{
	struct io_uring_sqe *e = io_uring_get_sqe(&u->ring);
	if (!e) {
		io_uring_submit(&u->ring);
		e = io_uring_get_sqe(&u->ring);
	}
	return e;
}

/* ------------------------------------------------------ buffers and pins */

/* refill -- free pool buffers into the provided ring, up to its size */
static void refill(struct paste_worker *w)
{
	struct paste_uring *u = U(w);
	struct paste_pool *p = w->pool;
	int added = 0;
	pthread_mutex_lock(&p->lock);
	while (u->br_out < u->br_entries) {
		uint32_t b = paste_free_pop(p);
		if (!b)
			break;
		paste_buf_state(p, b, BS_RX_KERNEL);
		uint32_t bid = (u->br_tail + (uint32_t)added) & u->br_mask;
		u->br_buf[bid] = b;
		io_uring_buf_ring_add(u->br, paste_buf(p, b), p->sb.buf_size, (unsigned short)bid, (int)u->br_mask, added);
		added++;
		u->br_out++;
	}
	pthread_mutex_unlock(&p->lock);
	if (added) {
		io_uring_buf_ring_advance(u->br, added);
		u->br_tail += (uint32_t)added;
	}
}

/* give_back -- a received buffer nobody will see goes back to the free list (the pool lock held) */
static void give_back(struct paste_pool *p, uint32_t b)
{
	if (b)
		paste_free_push(p, b);
}

/* pin/unpin -- a reply by reference keeps its pool buffer alive until the send is done */
static void pin(struct paste_pool *p, uint32_t b)
{
	pthread_mutex_lock(&p->lock);
	p->refs[b]++;
	pthread_mutex_unlock(&p->lock);
}

static void unpin(struct paste_pool *p, uint32_t b)
{
	pthread_mutex_lock(&p->lock);
	p->refs[b]--;
	paste_buf_maybe_free(p, b);
	pthread_mutex_unlock(&p->lock);
}

/* drop_queue -- forget what a connection still had to send (reset or closed) */
static void drop_queue(struct paste_worker *w, struct uconn *uc)
{
	struct usend *s = uc->s;
	if (!s)
		return;
	for (uint32_t i = s->head; i < s->nq; i++)
		if (s->q[i].buf)
			unpin(w->pool, s->q[i].buf);
	s->nq = s->head = s->inflight = 0;
	s->stage.len = 0;
}

static bool owes(const struct uconn *uc)
{
	return uc->s && uc->s->head < uc->s->nq;
}

/* ------------------------------------------------------------ arming */

static void arm_accept(struct paste_worker *w)
{
	struct paste_uring *u = U(w);
	int lfd = paste_tcp_of(w)->lfd;
	if (u->accepting || lfd < 0)
		return;
	struct io_uring_sqe *e = sqe(u);
	io_uring_prep_multishot_accept(e, lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(e, udata(OP_ACCEPT, 0, 0));
	u->accepting = true;
}

static void arm_recv(struct paste_worker *w, uint32_t id)
{
	struct paste_uring *u = U(w);
	struct uconn *uc = &u->uc[id];
	struct io_uring_sqe *e = sqe(u);
	io_uring_prep_recv_multishot(e, w->conns[id].fd, NULL, 0, 0);
	e->flags |= IOSQE_BUFFER_SELECT;
	e->buf_group = 0;
	if (u->bundle)
		e->ioprio |= IORING_RECVSEND_BUNDLE;   /* 16 pipelined 1 KiB requests: one receive, not nine */
	io_uring_sqe_set_data64(e, udata(OP_RECV, uc->gen, id));
	uc->recv = true;
}

static void cancel(struct paste_uring *u, uint64_t what)
{
	struct io_uring_sqe *e = sqe(u);
	io_uring_prep_cancel64(e, what, 0);
	io_uring_sqe_set_data64(e, udata(OP_CANCEL, 0, 0));
}

static int list_push(uint32_t **v, uint32_t *n, uint32_t *cap, uint32_t x)
{
	int rc = grow((void **)v, *n, cap, sizeof(**v));
	if (!rc)
		(*v)[(*n)++] = x;
	return rc;
}

static void want_send(struct paste_uring *u, uint32_t id)
{
	struct uconn *uc = &u->uc[id];
	if (!uc->queued && !list_push(&u->sendl, &u->nsendl, &u->cap_sendl, id))
		uc->queued = true;
}

/* submit_sends -- one sendmsg per connection with something queued and nothing in the kernel */
static void submit_sends(struct paste_worker *w)
{
	struct paste_uring *u = U(w);
	struct paste_pool *p = w->pool;
	for (uint32_t i = 0; i < u->nsendl; i++) {
		uint32_t id = u->sendl[i];
		struct uconn *uc = &u->uc[id];
		uc->queued = false;
		struct paste_conn *c = &w->conns[id];
		if (uc->sending || uc->pollout || !owes(uc) || c->fd < 0 || c->dead)
			continue;
		struct usend *s = uc->s;
		uint32_t k = 0;
		for (uint32_t j = s->head; j < s->nq && k < SEND_IOV; j++, k++) {
			struct seg *g = &s->q[j];
			uint8_t *base = g->buf ? paste_buf(p, g->buf) : s->stage.data;
			s->iov[k] = (struct iovec){ .iov_base = base + g->off, .iov_len = g->len };
		}
		s->inflight = k;
		s->mh = (struct msghdr){ .msg_iov = s->iov, .msg_iovlen = k };
		struct io_uring_sqe *e = sqe(u);
		io_uring_prep_sendmsg(e, c->fd, &s->mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		io_uring_sqe_set_data64(e, udata(OP_SEND, uc->gen, id));
		uc->sending = true;
	}
	u->nsendl = 0;
}

/* ------------------------------------------------------------ completions */

static void on_accept(struct paste_worker *w, struct io_uring_cqe *cqe)
{
	struct paste_uring *u = U(w);
	if (!(cqe->flags & IORING_CQE_F_MORE))
		u->accepting = false;   /* re-armed at the next poll while the listener is open */
	if (cqe->res < 0)
		return;   /* EMFILE and the like: the next connection may fare better */
	int fd = cqe->res;
	struct uconn *uc = uconn_of(u, (uint32_t)fd);
	if (!uc) {
		close(fd);
		return;
	}
	if (!paste_tcp_conn_open(w, fd))
		return;
	uc->recv = uc->rearm = uc->sending = uc->pollout = uc->queued = false;
	drop_queue(w, uc);
	arm_recv(w, (uint32_t)fd);
}

static int backlog_push(struct paste_uring *u, uint32_t conn, uint32_t gen, uint32_t buf, uint32_t len, uint32_t kind)
{
	int rc = grow((void **)&u->bl, u->nbl, &u->cap_bl, sizeof(*u->bl));
	if (!rc)
		u->bl[u->nbl++] = (struct rxe){ conn, gen, buf, len, kind };
	return rc;
}

static void on_recv(struct paste_worker *w, struct io_uring_cqe *cqe, uint32_t id, uint32_t gen)
{
	struct paste_uring *u = U(w);
	struct paste_pool *p = w->pool;
	bool live = id < u->nuc && u->uc[id].gen == gen && id < w->nconns && w->conns[id].fd >= 0;
	struct uconn *uc = live ? &u->uc[id] : NULL;
	if (uc && !(cqe->flags & IORING_CQE_F_MORE))
		uc->recv = false;
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		/* A bundle fills consecutive ring entries from the first bid, each to
		 * its length but the last; a plain receive, one entry. */
		uint32_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT, size = p->sb.buf_size;
		uint32_t left = cqe->res > 0 ? (uint32_t)cqe->res : 0;
		uint32_t nb = left ? (left + size - 1) / size : 1;
		for (uint32_t k = 0; k < nb; k++) {
			uint32_t b = u->br_buf[(bid + k) & u->br_mask], len = left < size ? left : size;
			u->br_out--;
			left -= len;
			if (!uc || !len || backlog_push(u, id, gen, b, len, RX_DATA)) {
				pthread_mutex_lock(&p->lock);
				give_back(p, b);   /* a stale completion, or no memory to keep it */
				pthread_mutex_unlock(&p->lock);
			}
		}
	}
	if (!uc || w->conns[id].eof)
		return;
	if (cqe->res == 0)
		backlog_push(u, id, gen, 0, 0, RX_EOF);
	else if (cqe->res == -ENOBUFS || (cqe->res > 0 && !uc->recv)) {
		if (!uc->rearm && !list_push(&u->rearm, &u->nrearm, &u->cap_rearm, id))
			uc->rearm = true;   /* the ring ran dry: re-armed once buffers are back */
	} else if (cqe->res < 0 && cqe->res != -ECANCELED)
		backlog_push(u, id, gen, 0, 0, RX_DEAD);
}

static void on_send(struct paste_worker *w, struct io_uring_cqe *cqe, uint32_t id, uint32_t gen)
{
	struct paste_uring *u = U(w);
	if (id >= u->nuc || u->uc[id].gen != gen || id >= w->nconns || w->conns[id].fd < 0)
		return;   /* closed meanwhile: its queue was dropped */
	struct uconn *uc = &u->uc[id];
	struct usend *s = uc->s;
	struct paste_conn *c = &w->conns[id];
	uc->sending = false;
	if (cqe->res < 0 && cqe->res != -EAGAIN && cqe->res != -EINTR) {
		paste_tcp_conn_finish(w, id, true);
		return;
	}
	size_t sent = cqe->res > 0 ? (size_t)cqe->res : 0;
	bool full = cqe->res == -EAGAIN;
	for (uint32_t j = 0; j < s->inflight && s->head < s->nq; j++) {
		struct seg *g = &s->q[s->head];
		if (sent < g->len) {
			g->off += sent;
			g->len -= (uint32_t)sent;
			full = true;   /* a short send: the socket is full */
			break;
		}
		sent -= g->len;
		if (g->buf)
			unpin(w->pool, g->buf);
		s->head++;
	}
	s->inflight = 0;
	if (s->head == s->nq) {
		s->head = s->nq = 0;
		s->stage.len = 0;
		if (c->eof && !c->dead)
			paste_tcp_closed_push(w, id);   /* the last reply is out: report the close */
		return;
	}
	if (full) {
		struct io_uring_sqe *e = sqe(u);
		io_uring_prep_poll_add(e, c->fd, POLLOUT);
		io_uring_sqe_set_data64(e, udata(OP_POLLOUT, uc->gen, id));
		uc->pollout = true;
	} else {
		want_send(u, id);   /* more than one sendmsg takes */
	}
}

static void on_pollout(struct paste_worker *w, uint32_t id, uint32_t gen)
{
	struct paste_uring *u = U(w);
	if (id >= u->nuc || u->uc[id].gen != gen)
		return;
	u->uc[id].pollout = false;
	want_send(u, id);
}

/* reap -- every completion in the queue, into the backlog and the connections' state */
static void reap(struct paste_worker *w)
{
	struct paste_uring *u = U(w);
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	io_uring_for_each_cqe(&u->ring, head, cqe) {
		uint64_t d = cqe->user_data;
		uint32_t op = (uint32_t)(d >> 56), gen = (uint32_t)(d >> 32) & 0xffffff, id = (uint32_t)d;
		if (op == OP_ACCEPT)
			on_accept(w, cqe);
		else if (op == OP_RECV)
			on_recv(w, cqe, id, gen);
		else if (op == OP_SEND)
			on_send(w, cqe, id, gen);
		else if (op == OP_POLLOUT)
			on_pollout(w, id, gen);
		n++;
	}
	io_uring_cq_advance(&u->ring, n);
}

/* ------------------------------------------------------------- publishing */

/*
 * publish -- the backlog into RX slots, in order. An entry stays back when
 * the ring or the log has no room, or (quiescing) when its connection holds
 * no request half received; every later entry of that connection stays back
 * with it, so a connection's bytes reach the handler in order.
 */
static uint32_t publish(struct paste_worker *w)
{
	struct paste_uring *u = U(w);
	struct paste_tcp *t = paste_tcp_of(w);
	struct paste_pool *p = w->pool;
	uint32_t filled = 0, keep = 0, pass = ++u->pass;
	pthread_mutex_lock(&p->lock);
	uint32_t max = paste_rx_room(w);
	for (uint32_t i = 0; i < u->nbl; i++) {
		struct rxe e = u->bl[i];
		struct uconn *uc = &u->uc[e.conn];
		struct paste_conn *c = &w->conns[e.conn];
		if (uc->gen != e.gen || c->fd < 0 || (c->eof && e.kind == RX_DATA)) {
			give_back(p, e.buf);   /* closed, or no longer read (the handler ended it) */
			continue;
		}
		bool room = e.kind != RX_DATA || (filled < max && !paste_rx_full(w));
		if (uc->pass == pass || !paste_tcp_may_read(t, c) || !room) {
			if (!room)
				t->blocked = true;
			uc->pass = pass;
			u->bl[keep++] = e;
			continue;
		}
		if (e.kind == RX_DATA) {
			paste_rx_publish_buf(w, e.buf, e.len, e.conn);
			filled++;
		} else {
			pthread_mutex_unlock(&p->lock);
			paste_tcp_conn_finish(w, e.conn, e.kind == RX_DEAD);
			pthread_mutex_lock(&p->lock);
		}
	}
	pthread_mutex_unlock(&p->lock);
	u->nbl = keep;
	return filled;
}

/* rearm -- connections whose receive ended for want of buffers, now that the ring has some */
static void rearm(struct paste_worker *w)
{
	struct paste_uring *u = U(w);
	if (!u->nrearm)
		return;
	if (!u->br_out) {
		paste_tcp_of(w)->blocked = true;   /* every buffer is in the log, a ring or a hold */
		return;
	}
	for (uint32_t i = 0; i < u->nrearm; i++) {
		uint32_t id = u->rearm[i];
		u->uc[id].rearm = false;
		if (id < w->nconns && w->conns[id].fd >= 0 && !w->conns[id].eof && !u->uc[id].recv)
			arm_recv(w, id);
	}
	u->nrearm = 0;
}

static int uring_poll(struct paste_worker *w, int timeout_ms)
{
	struct paste_uring *u = U(w);
	struct paste_tcp *t = paste_tcp_of(w);
	if (!u->ring_ok)
		return paste_set_error(u->reopen_err ? u->reopen_err : PASTE_ERR_STATE, "io_uring: no ring after the handler restart: %s", u->reopen_msg);
	t->blocked = false;
	refill(w);
	rearm(w);
	arm_accept(w);
	submit_sends(w);
	/* Something already waiting to be published: do not sleep for more. */
	bool ready = u->nbl && !t->blocked;
	struct __kernel_timespec ts = { .tv_sec = timeout_ms / 1000, .tv_nsec = (long long)(timeout_ms % 1000) * 1000000 };
	struct io_uring_cqe *cqe;
	int rc = ready || timeout_ms == 0
		? io_uring_submit_and_get_events(&u->ring)   /* runs the completions due, waits for none */
		: io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
	if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
		return paste_set_errno(-rc, "io_uring_enter");
	reap(w);
	t->blocked = false;
	uint32_t filled = publish(w);
	if (u->nrearm && !u->br_out && !u->nbl)
		t->blocked = true;
	return (int)filled;
}

/* --------------------------------------------------------------- replies */

/* uring_deliver -- queue a committed batch's replies; the next poll's enter sends them */
static int uring_deliver(struct paste_worker *w, uint32_t id, const struct iovec *iov, int n)
{
	struct paste_uring *u = U(w);
	struct paste_pool *p = w->pool;
	struct uconn *uc = uconn_of(u, id);
	if (!uc)
		return paste_set_error(PASTE_ERR_IO, "io_uring: out of memory");
	if (!uc->s && !(uc->s = calloc(1, sizeof(*uc->s))))
		return paste_set_error(PASTE_ERR_IO, "io_uring: out of memory");
	struct usend *s = uc->s;
	uint8_t *lo = paste_buf(p, 1), *hi = paste_buf(p, p->sb.nbufs);
	for (int i = 0; i < n; i++) {
		uint8_t *at = iov[i].iov_base;
		int rc = grow((void **)&s->q, s->nq, &s->cap, sizeof(*s->q));
		if (rc)
			return rc;
		struct seg g = { .len = (uint32_t)iov[i].iov_len };
		if (at >= lo && at < hi) {
			/* by reference: the pool buffer stays where it is, pinned until sent */
			uint64_t rel = (uint64_t)(at - paste_buf(p, 0));
			g.buf = (uint32_t)(rel / p->sb.buf_size);
			g.off = rel % p->sb.buf_size;
			pin(p, g.buf);
		} else {
			/* A send in the kernel points into the stage: it must not move. MSG_DONTWAIT
			 * sends finish inside the enter that submits them, so none is in flight here. */
			g.off = s->stage.len;
			if ((rc = paste_bytes_append(&s->stage, at, g.len)))
				return rc;
		}
		s->q[s->nq++] = g;
	}
	want_send(u, id);
	return 0;
}

/*
 * uring_delivered -- a batch that answered only a few connections sends its
 * replies now, in an enter of their own; a larger one leaves them for the
 * next poll's enter, which then both sends and waits. With few connections a
 * client waits on each reply, so the reply's latency is the throughput:
 * redis-benchmark -c 1, four alternating pairs (PASTE_URING_EAGER_CONNS=0
 * always waits, for measuring): 10.7K, 11.0K, 10.2K, 10.9K SET/s sending at
 * once against 10.5K, 9.8K, 9.8K, 10.7K, at 46.5 against 49.2 us of server
 * CPU per SET on average. With many connections the saved system call wins
 * (-c 50 -P 16 was no better sending at once).
 */
#define EAGER_CONNS 4

static void uring_delivered(struct paste_worker *w)
{
	struct paste_uring *u = U(w);
	if (u->nsendl && u->nsendl <= u->eager_conns) {
		submit_sends(w);
		io_uring_submit(&u->ring);
	}
}

/* ------------------------------------------------------- the engine's rest */

static bool uring_stop_reading(struct paste_worker *w, uint32_t id, bool dead)
{
	struct paste_uring *u = U(w);
	struct uconn *uc = uconn_of(u, id);
	if (!uc)
		return false;
	if (uc->recv)
		cancel(u, udata(OP_RECV, uc->gen, id));
	if (dead)
		drop_queue(w, uc);
	return !dead && (owes(uc) || uc->sending);
}

static void uring_closing(struct paste_worker *w, uint32_t id)
{
	struct paste_uring *u = U(w);
	struct uconn *uc = uconn_of(u, id);
	if (!uc)
		return;
	if (uc->recv)
		cancel(u, udata(OP_RECV, uc->gen, id));
	if (uc->pollout)
		cancel(u, udata(OP_POLLOUT, uc->gen, id));
	drop_queue(w, uc);
	uc->recv = uc->pollout = uc->sending = false;
	uc->gen = (uc->gen + 1) & 0xffffff;   /* completions still on their way are stale from now on */
}

static void uring_stop_accepting(struct paste_worker *w)
{
	struct paste_uring *u = U(w);
	if (u->accepting) {
		cancel(u, udata(OP_ACCEPT, 0, 0));
		io_uring_submit(&u->ring);
		u->accepting = false;
	}
}

/* ring_close -- the ring, its provided buffers back to the free list (what completed must be reaped first) */
static void ring_close(struct paste_worker *w)
{
	struct paste_uring *u = U(w);
	struct paste_pool *p = w->pool;
	if (!u->ring_ok)
		return;
	io_uring_queue_exit(&u->ring);
	u->ring_ok = false;
	pthread_mutex_lock(&p->lock);
	for (uint32_t k = 0; k < u->br_out; k++)
		give_back(p, u->br_buf[(u->br_tail - u->br_out + k) & u->br_mask]);
	pthread_mutex_unlock(&p->lock);
	u->br_out = 0;
	u->accepting = false;
	/* The kernel may tear the closed ring down later (its exit work runs
	 * asynchronously) and keeps the pages it registered pinned until then:
	 * the next ring gets memory of its own, never a buffer list a dying ring
	 * still reads. */
	munmap(u->br, u->br_bytes);
	u->br = NULL;
}

/* refused -- PASTE_ERR_UNSUPPORTED naming what refused io_uring, for the startup line */
static int refused(int err, const char *what)
{
	if (err == ENOSYS)
		return paste_set_error(PASTE_ERR_UNSUPPORTED, "io_uring: %s: this kernel has no io_uring (ENOSYS)", what);
	if (err == EPERM) {
		char v[8] = "";
		FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
		if (f) {
			if (!fgets(v, sizeof(v), f))
				v[0] = 0;
			fclose(f);
		}
		if (v[0] == '2' || v[0] == '1')
			return paste_set_error(PASTE_ERR_UNSUPPORTED, "io_uring: %s: refused by kernel.io_uring_disabled = %c", what, v[0]);
		return paste_set_error(PASTE_ERR_UNSUPPORTED,
			"io_uring: %s: refused (EPERM) by a seccomp profile or security module; Docker's default profile refuses io_uring", what);
	}
	if (err == EINVAL)
		return paste_set_error(PASTE_ERR_UNSUPPORTED,
			"io_uring: %s: this kernel lacks a feature the engine needs (SINGLE_ISSUER, DEFER_TASKRUN, provided-buffer rings: Linux 6.1 or later)", what);
	return paste_set_error(PASTE_ERR_UNSUPPORTED, "io_uring: %s: %s", what, strerror(err));
}

/* ring_open -- the ring and its provided-buffer ring, made by the thread that will poll */
static int ring_open(struct paste_worker *w)
{
	struct paste_uring *u = U(w);
	const char *env = getenv("PASTE_URING_REFUSE");
	if (env && *env && strcmp(env, "0") != 0)
		return paste_set_error(PASTE_ERR_UNSUPPORTED, "io_uring: refused on purpose (PASTE_URING_REFUSE is set)");
	struct io_uring_params prm = {
		.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
		.cq_entries = CQ_ENTRIES,
	};
	if (!u->br) {
		void *m = mmap(NULL, u->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return paste_set_error(PASTE_ERR_IO, "io_uring: out of memory for the provided-buffer ring");
		u->br = m;
	}
	int rc = io_uring_queue_init_params(SQ_ENTRIES, &u->ring, &prm);
	if (rc < 0)
		return refused(-rc, "io_uring_setup");
	if (!(prm.features & IORING_FEAT_EXT_ARG)) {
		io_uring_queue_exit(&u->ring);
		return refused(EINVAL, "io_uring_setup");
	}
	io_uring_buf_ring_init(u->br);
	struct io_uring_buf_reg reg = { .ring_addr = (uint64_t)(uintptr_t)u->br, .ring_entries = u->br_entries, .bgid = 0 };
	rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
	if (rc < 0) {
		io_uring_queue_exit(&u->ring);
		return refused(-rc, "register the provided-buffer ring");
	}
	u->ring_ok = true;
	u->br_tail = u->br_out = 0;
	const char *nb = getenv("PASTE_URING_NO_BUNDLE");
	u->bundle = (prm.features & IORING_FEAT_RECVSEND_BUNDLE) && !(nb && *nb && strcmp(nb, "0") != 0);
	const char *ec = getenv("PASTE_URING_EAGER_CONNS");   /* for measuring: 0 always waits for the next enter */
	u->eager_conns = ec && *ec ? (uint32_t)strtoul(ec, NULL, 10) : EAGER_CONNS;
	return 0;
}

/*
 * uring_takeover -- a new thread runs the worker. The old thread's ring
 * refuses this one (SINGLE_ISSUER), and its requests were cancelled when the
 * thread exited. Reap what it completed (data received stays in the
 * backlog, in order), close it, and build a ring of this thread's that
 * re-arms the listener, every open connection and every queued reply.
 */
static void uring_takeover(struct paste_worker *w)
{
	struct paste_uring *u = U(w);
	if (u->ring_ok)
		reap(w);
	ring_close(w);
	for (uint32_t i = 0; i < u->nuc; i++) {
		u->uc[i].recv = u->uc[i].sending = u->uc[i].pollout = u->uc[i].queued = u->uc[i].rearm = false;
		if (u->uc[i].s)
			u->uc[i].s->inflight = 0;
	}
	u->nsendl = u->nrearm = 0;
	if ((u->reopen_err = ring_open(w)) != 0) {
		snprintf(u->reopen_msg, sizeof(u->reopen_msg), "%s", paste_last_error());
		return;   /* the next poll fails with the reason */
	}
	for (uint32_t i = 0; i < w->nconns && i < u->nuc; i++) {
		if (w->conns[i].fd < 0)
			continue;
		if (!w->conns[i].eof && !list_push(&u->rearm, &u->nrearm, &u->cap_rearm, i))
			u->uc[i].rearm = true;
		if (owes(&u->uc[i]))
			want_send(u, i);
	}
}

static void uring_free(struct paste_uring *u)
{
	for (uint32_t i = 0; i < u->nuc; i++)
		if (u->uc[i].s) {
			free(u->uc[i].s->q);
			free(u->uc[i].s->stage.data);
			free(u->uc[i].s);
		}
	free(u->uc);
	free(u->rearm);
	free(u->sendl);
	free(u->bl);
	free(u->br_buf);
	if (u->br)
		munmap(u->br, u->br_bytes);
	free(u);
}

static void uring_detach(struct paste_worker *w)
{
	struct paste_uring *u = U(w);
	struct paste_pool *p = w->pool;
	ring_close(w);
	pthread_mutex_lock(&p->lock);
	for (uint32_t i = 0; i < u->nbl; i++)
		give_back(p, u->bl[i].buf);
	pthread_mutex_unlock(&p->lock);
	for (uint32_t i = 0; i < u->nuc; i++)
		drop_queue(w, &u->uc[i]);
	uring_free(u);
}

int paste_uring_listen(paste_worker *w, const char *host, uint32_t port, int backlog)
{
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "listen: no worker");
	if (paste_tcp_of(w))
		return paste_set_error(PASTE_ERR_STATE, "listen: worker %u already listens", w->id);
	struct paste_uring *u = calloc(1, sizeof(*u));
	if (!u)
		return paste_set_error(PASTE_ERR_IO, "io_uring: out of memory");
	uint32_t n = 1;
	while (n * 2 <= w->pool->sb.ring_slots && n * 2 <= BR_MAX)
		n *= 2;
	u->br_entries = n;
	u->br_mask = n - 1;
	u->br_bytes = ((size_t)n * sizeof(struct io_uring_buf) + 4095) & ~(size_t)4095;   /* mapped by ring_open */
	u->br_buf = calloc(n, sizeof(*u->br_buf));
	if (!u->br_buf) {
		uring_free(u);
		return paste_set_error(PASTE_ERR_IO, "io_uring: out of memory for the provided-buffer ring");
	}
	int fd = paste_tcp_bind(host, port, backlog);
	if (fd < 0) {
		uring_free(u);
		return fd;
	}
	int rc = paste_tcp_attach(w, fd, &uring_engine, u);
	if (rc) {
		close(fd);
		uring_free(u);
		return rc;
	}
	if ((rc = ring_open(w)) != 0) {
		paste_port_attach(w, NULL, NULL);   /* detaches: the listener is closed, u freed */
		return rc;
	}
	/* The kernel picks RX buffers now: the ones parked in free slots go back to the free list. */
	pthread_mutex_lock(&w->pool->lock);
	paste_rx_unpark(w);
	pthread_mutex_unlock(&w->pool->lock);
	return 0;
}

static const struct paste_tcp_engine uring_engine = {
	.name = "io_uring", .poll = uring_poll, .deliver = uring_deliver, .delivered = uring_delivered, .stop_reading = uring_stop_reading,
	.closing = uring_closing, .stop_accepting = uring_stop_accepting, .takeover = uring_takeover, .detach = uring_detach,
};

#endif /* PASTE_NO_URING */
