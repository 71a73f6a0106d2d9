/*
 * port_tcp.c -- the TCP port: its connections, the closes a handler asks for,
 * quiescing for a deploy; and its first engine, a non-blocking epoll loop per
 * worker that readv()s straight into free pool buffers, hands them to the
 * handler as RX slots (ring.c), and sends a batch's replies when reply.c
 * delivers them. The second engine, io_uring, is port_uring.c: it plugs into
 * the same connections through struct paste_tcp_engine.
 *
 * The one copy is the kernel's, from the socket into the pool buffer the
 * request will be logged in; user space copies nothing on the way in. Replies
 * leave at the batch's commit (reply.c) with writev straight from the pool
 * for replies by reference; only what a socket does not take at once is
 * copied into the connection's output queue.
 *
 * The connection id a handler sees in slot.ptr is the socket's fd, as in
 * PASTE. An fd is closed only once the handler was told (on_close) and the
 * batch is over: an id is never reused while the handler may speak of it.
 *
 * Backpressure: when the ring or the pool has no room, reading stops until
 * the handler releases slots or trims; sockets keep their data in the kernel.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define READS_PER_CONN 4      /* readv()s per connection per poll: fairness across connections */
#define READV_BYTES    16384  /* one readv() fills up to this much, in as many buffers as it takes */
#define MAX_EVENTS     256

static const struct paste_port_ops tcp_ops;
static const struct paste_tcp_engine epoll_engine;

struct paste_tcp *paste_tcp_of(struct paste_worker *w)
{
	return paste_port_is(w, &tcp_ops) ? w->port_data : NULL;
}
#define tcp_of paste_tcp_of

/* epfd -- the epoll engine's descriptor */
static inline int epfd(struct paste_worker *w)
{
	return (int)(intptr_t)tcp_of(w)->eng_data;
}

/* u32_push -- append to a growable array of connection ids */
static int u32_push(uint32_t **v, uint32_t *n, uint32_t *cap, uint32_t x)
{
	if (*n == *cap) {
		uint32_t c = *cap ? *cap * 2 : 64;
		uint32_t *nv = realloc(*v, c * sizeof(**v));
		if (!nv)
			return paste_set_error(PASTE_ERR_IO, "tcp: out of memory");
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = x;
	return 0;
}

int paste_tcp_closed_push(struct paste_worker *w, uint32_t id)
{
	struct paste_tcp *t = tcp_of(w);
	if (w->conns[id].reported)
		return 0;
	w->conns[id].reported = true;
	return u32_push(&t->closed, &t->nclosed, &t->cap_closed, id);
}

void paste_tcp_conn_finish(struct paste_worker *w, uint32_t id, bool dead)
{
	struct paste_conn *c = &w->conns[id];
	struct paste_tcp *t = tcp_of(w);
	if (dead)
		c->dead = true;
	if (!c->eof) {
		c->eof = true;
		/* Replies still owed go out before the close is reported. */
		if (!t->eng->stop_reading(w, id, c->dead))
			paste_tcp_closed_push(w, id);
	} else if (dead && !t->eng->stop_reading(w, id, true)) {
		paste_tcp_closed_push(w, id);   /* reset while replies were going out: they are dropped */
	}
}
#define conn_finish paste_tcp_conn_finish

/* epoll_stop_reading -- off the epoll set; watched for EPOLLOUT instead while replies are owed */
static bool epoll_stop_reading(struct paste_worker *w, uint32_t id, bool dead)
{
	struct paste_conn *c = &w->conns[id];
	if (dead)
		c->out.len = 0;
	epoll_ctl(epfd(w), EPOLL_CTL_DEL, c->fd, NULL);
	if (c->out.len == 0)
		return false;
	epoll_ctl(epfd(w), EPOLL_CTL_ADD, c->fd, &(struct epoll_event){ .events = EPOLLOUT, .data.u32 = id });
	return true;
}

/* tcp_close_after -- close conn once the replies queued so far are sent */
static int tcp_close_after(struct paste_worker *w, uint32_t id)
{
	struct paste_tcp *t = tcp_of(w);
	if (id >= w->nconns || w->conns[id].fd < 0)
		return 0;
	return u32_push(&t->closing, &t->nclosing, &t->cap_closing, id);
}

/* tcp_end_conn -- stop reading conn now; close it once its queued replies are out. 1 if it was open */
static uint32_t tcp_end_conn(struct paste_worker *w, uint32_t id)
{
	if (id >= w->nconns || w->conns[id].fd < 0 || w->conns[id].eof)
		return 0;
	/* No shutdown(SHUT_RD): Linux resets a socket shut both ways that gets
	 * data, which the staged close avoids. The engines stop reading; what
	 * arrives meanwhile is drained when it closes (tcp_linger.c). */
	w->conns[id].ended = true;   /* the peer may still be sending: its close goes in stages */
	conn_finish(w, id, false);
	return 1;
}

/* tcp_after_commit -- the batch's replies are out: close what the handler asked to */
static void tcp_after_commit(struct paste_worker *w)
{
	struct paste_tcp *t = tcp_of(w);
	if (t->eng->delivered)
		t->eng->delivered(w);
	for (uint32_t i = 0; i < t->nclosing; i++)
		tcp_end_conn(w, t->closing[i]);
	t->nclosing = 0;
}

/* tcp_deliver -- a committed batch's replies, to the engine */
static int tcp_deliver(struct paste_worker *w, uint32_t id, const struct iovec *iov, int n)
{
	if (id >= w->nconns || w->conns[id].fd < 0 || w->conns[id].dead)
		return 0;   /* the client left: its replies have nowhere to go */
	return tcp_of(w)->eng->deliver(w, id, iov, n);
}

int paste_tcp_attach(struct paste_worker *w, int lfd, const struct paste_tcp_engine *eng, void *data)
{
	struct paste_tcp *t = calloc(1, sizeof(*t));
	if (!t)
		return paste_set_error(PASTE_ERR_IO, "listen: out of memory");
	*t = (struct paste_tcp){ .lfd = lfd, .eng = eng, .eng_data = data, .busy = { .budget_us = PASTE_BUSY_POLL_US } };
	paste_port_attach(w, &tcp_ops, t);
	paste_pool_populate(w->pool);
	return 0;
}

struct paste_conn *paste_tcp_conn_open(struct paste_worker *w, int fd)
{
	struct paste_conn *c = paste_conn_get(w, (uint32_t)fd);
	if (!c) {
		close(fd);
		return NULL;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));   /* acks are small and urgent */
	c->fd = fd;
	c->eof = c->dead = c->want_out = c->reported = c->ended = false;
	c->held = 0;
	paste_bytes_clear(&c->out);
	tcp_of(w)->open++;
	tcp_of(w)->accepted++;
	return c;
}

int paste_tcp_listen(paste_worker *w, const char *host, uint32_t port, int backlog)
{
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "listen: no worker");
	if (tcp_of(w))
		return paste_set_error(PASTE_ERR_STATE, "listen: worker %u already listens", w->id);
	int fd = paste_tcp_bind(host, port, backlog);
	if (fd < 0)
		return fd;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		int e = errno;
		close(fd);
		return paste_set_errno(e, "listen: epoll");
	}
	/* The listener is id UINT32_MAX: a connection's id is its fd. */
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &(struct epoll_event){ .events = EPOLLIN, .data.u32 = UINT32_MAX });
	int rc = paste_tcp_attach(w, fd, &epoll_engine, (void *)(intptr_t)ep);
	if (rc) {
		close(fd);
		close(ep);
	}
	return rc;
}

int paste_tcp_port(paste_worker *w)
{
	if (!tcp_of(w))
		return paste_set_error(PASTE_ERR_STATE, "not listening");
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(tcp_of(w)->lfd, (struct sockaddr *)&ss, &len) != 0)
		return paste_set_errno(errno, "getsockname");
	return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
}

const char *paste_tcp_engine(paste_worker *w)
{
	return tcp_of(w) ? tcp_of(w)->eng->name : "";
}

/* ------------------------------------------------------------ epoll engine */

static void accept_all(struct paste_worker *w)
{
	struct paste_tcp *t = tcp_of(w);
	for (;;) {
		int fd = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;   /* EAGAIN, or a transient error (EMFILE...): try at the next poll */
		if (paste_tcp_conn_open(w, fd))
			epoll_ctl(epfd(w), EPOLL_CTL_ADD, fd, &(struct epoll_event){ .events = EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)fd });
	}
}

/*
 * read_conn -- readv into as many RX slots as READV_BYTES takes, a few times;
 * false when the ring or the pool is full. One call fills several buffers:
 * 16 pipelined 1 KiB requests cost one system call, not nine.
 */
static bool read_conn(struct paste_worker *w, uint32_t id, uint32_t *filled, uint32_t max)
{
	struct paste_pool *p = w->pool;
	struct paste_conn *c = &w->conns[id];
	uint32_t per = READV_BYTES / p->sb.buf_size;
	struct iovec iov[READV_BYTES / 512];
	if (per < 1)
		per = 1;
	if (per > sizeof(iov) / sizeof(iov[0]))
		per = sizeof(iov) / sizeof(iov[0]);
	for (int i = 0; i < READS_PER_CONN && !c->eof; i++) {
		if (*filled >= max)
			return false;
		uint32_t k = paste_rx_claim_many(w, iov, per < max - *filled ? per : max - *filled);
		if (!k)
			return false;
		ssize_t n = readv(c->fd, iov, (int)k);
		if (n > 0) {
			for (size_t left = (size_t)n; left; ) {
				uint32_t len = left < p->sb.buf_size ? (uint32_t)left : p->sb.buf_size;
				paste_rx_publish(w, &w->rx->slot[w->rx_tail], len, id);
				(*filled)++;
				left -= len;
			}
			if ((size_t)n < (size_t)k * p->sb.buf_size)
				return true;   /* drained */
		} else if (n == 0) {
			conn_finish(w, id, false);
		} else if (errno == EAGAIN || errno == EINTR) {
			return true;
		} else {
			conn_finish(w, id, true);
		}
	}
	return true;
}

static void flush_out(struct paste_worker *w, uint32_t id)
{
	struct paste_conn *c = &w->conns[id];
	while (c->out.len) {
		ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				conn_finish(w, id, true);
			return;
		}
		memmove(c->out.data, c->out.data + n, c->out.len - (size_t)n);
		if ((c->out.len -= (size_t)n) == 0)
			paste_bytes_clear(&c->out);
	}
	if (c->want_out && !c->eof) {
		epoll_ctl(epfd(w), EPOLL_CTL_MOD, c->fd, &(struct epoll_event){ .events = EPOLLIN | EPOLLRDHUP, .data.u32 = id });
		c->want_out = false;
	}
	if (c->eof && !c->dead) {
		epoll_ctl(epfd(w), EPOLL_CTL_DEL, c->fd, NULL);
		paste_tcp_closed_push(w, id);
	}
}

/* epoll_deliver -- sendmsg now, straight from the pool; what the socket does not take waits in the queue */
static int epoll_deliver(struct paste_worker *w, uint32_t id, const struct iovec *iov, int n)
{
	struct paste_conn *c = &w->conns[id];
	size_t sent = 0, total = 0;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (c->out.len == 0) {
		struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
		ssize_t r = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0 && errno != EAGAIN && errno != EINTR) {
			conn_finish(w, id, true);
			return 0;
		}
		sent = r > 0 ? (size_t)r : 0;
	}
	if (sent == total)
		return 0;
	/* The socket is full: keep the rest (a copy, only under backpressure). */
	size_t skip = sent;
	for (int i = 0; i < n; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		int rc = paste_bytes_append(&c->out, (uint8_t *)iov[i].iov_base + skip, iov[i].iov_len - skip);
		if (rc)
			return rc;
		skip = 0;
	}
	if (!c->want_out && !c->eof) {
		epoll_ctl(epfd(w), EPOLL_CTL_MOD, c->fd,
			  &(struct epoll_event){ .events = EPOLLIN | EPOLLRDHUP | EPOLLOUT, .data.u32 = id });
		c->want_out = true;
	}
	return 0;
}

/* An epoll set without a system call to peek at: the spin asks epoll_wait
 * without waiting, and a hit's events are the poll's. */
struct epoll_peek { int ep, n; struct epoll_event *ev; };

static bool epoll_ready(void *arg)
{
	struct epoll_peek *k = arg;
	k->n = epoll_wait(k->ep, k->ev, MAX_EVENTS, 0);
	return k->n != 0;   /* events, or an error for the poll to report */
}

/* epoll_poll -- wait (spinning first if armed: busypoll.c), accept, send what is owed, readv into RX slots */
static int epoll_poll(struct paste_worker *w, int timeout_ms)
{
	struct paste_tcp *t = tcp_of(w);
	struct paste_pool *p = w->pool;
	struct epoll_event ev[MAX_EVENTS];
	struct epoll_peek k = { .ep = epfd(w), .ev = ev };
	int n;
	if (timeout_ms != 0 && paste_busy_spin(&t->busy, epoll_ready, &k)) {
		n = k.n;
	} else {
		paste_busy_waiting(&t->busy);   /* replies left at the commit: the poll's wait starts here */
		n = epoll_wait(epfd(w), ev, MAX_EVENTS, timeout_ms);
	}
	if (n < 0)
		return errno == EINTR ? 0 : paste_set_errno(errno, "epoll_wait");
	uint32_t filled = 0;
	pthread_mutex_lock(&p->lock);
	uint32_t max = paste_rx_room(w);
	pthread_mutex_unlock(&p->lock);
	t->blocked = false;
	for (int i = 0; i < n; i++) {
		uint32_t id = ev[i].data.u32;
		if (id == UINT32_MAX) {
			accept_all(w);
			continue;
		}
		if (ev[i].events & EPOLLOUT)
			flush_out(w, id);
		if (ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
			if (t->blocked || !paste_tcp_may_read(t, &w->conns[id]))
				continue;
			pthread_mutex_lock(&p->lock);
			bool room = read_conn(w, id, &filled, max);
			pthread_mutex_unlock(&p->lock);
			if (!room)
				t->blocked = true;   /* level-triggered: the rest is read at the next poll */
		}
	}
	return (int)filled;
}

static void epoll_closing(struct paste_worker *w, uint32_t id)
{
	/* close() would take it off the epoll set, but a connection the server
	 * ended stays open a while to drain (tcp_linger.c): off the set now */
	if (w->conns[id].ended)
		epoll_ctl(epfd(w), EPOLL_CTL_DEL, w->conns[id].fd, NULL);
}

static void epoll_stop_accepting(struct paste_worker *w)
{
	epoll_ctl(epfd(w), EPOLL_CTL_DEL, tcp_of(w)->lfd, NULL);
}

static void epoll_takeover(struct paste_worker *w)
{
	(void)w;   /* an epoll set serves any thread */
}

static void epoll_detach(struct paste_worker *w)
{
	close(epfd(w));
}

static const struct paste_tcp_engine epoll_engine = {
	.name = "epoll", .poll = epoll_poll, .deliver = epoll_deliver, .stop_reading = epoll_stop_reading,
	.closing = epoll_closing, .stop_accepting = epoll_stop_accepting, .takeover = epoll_takeover, .detach = epoll_detach,
};

/* ---------------------------------------------------------- the port's API */

/*
 * paste_tcp_poll -- wait up to timeout_ms for sockets, accept, send what is
 * owed, and receive into RX slots; the number of slots filled. Closed
 * connections are collected for paste_tcp_take_closed().
 */
int paste_tcp_poll(paste_worker *w, int timeout_ms)
{
	struct paste_tcp *t = tcp_of(w);
	if (!t)
		return paste_set_error(PASTE_ERR_STATE, "poll: not listening");
	if (t->nclosed)
		timeout_ms = 0;   /* closes to report: do not sleep */
	paste_linger_service(&t->linger);
	paste_busy_begin(&t->busy);
	int filled = t->eng->poll(w, timeout_ms);
	paste_busy_end(&t->busy, filled);
	return filled;
}

int paste_tcp_busy_poll(paste_worker *w, int64_t budget_us, uint64_t *spins, uint64_t *hits)
{
	struct paste_tcp *t = tcp_of(w);
	if (!t)
		return paste_set_error(PASTE_ERR_STATE, "busy poll: not listening");
	if (budget_us > (int64_t)PASTE_BUSY_POLL_MAX_US)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "busy poll: %lld us is over the most, %u us",
				       (long long)budget_us, PASTE_BUSY_POLL_MAX_US);
	if (budget_us >= 0) {
		t->busy.budget_us = (uint32_t)budget_us;
		t->busy.armed = false;
	}
	if (spins)
		*spins = t->busy.spins;
	if (hits)
		*hits = t->busy.spins - t->busy.misses;
	return (int)t->busy.budget_us;
}

/* paste_tcp_blocked -- 1 if the last poll stopped reading for want of ring slots or buffers */
int paste_tcp_blocked(paste_worker *w)
{
	struct paste_tcp *t = tcp_of(w);
	return t && t->blocked;
}

/*
 * paste_tcp_take_closed -- connections closed and not yet reported, for the
 * handler's on_close. A connection stays listed until paste_tcp_close_conn,
 * so one whose on_close never returned (its worker was terminated) is
 * reported again to the handler that takes over.
 */
int paste_tcp_take_closed(paste_worker *w, uint32_t *out, uint32_t cap)
{
	struct paste_tcp *t = tcp_of(w);
	if (!t)
		return 0;
	uint32_t n = t->nclosed < cap ? t->nclosed : cap;
	memcpy(out, t->closed, n * sizeof(*out));
	return (int)n;
}

/* paste_tcp_close_conn -- after on_close: drop the handler's holds and close the socket */
int paste_tcp_close_conn(paste_worker *w, uint32_t id)
{
	struct paste_tcp *t = tcp_of(w);
	if (!t)
		return paste_set_error(PASTE_ERR_STATE, "close: not listening");
	/* off the to-report list first, so that a bad id cannot stay listed for ever */
	for (uint32_t i = 0; i < t->nclosed; i++)
		if (t->closed[i] == id) {
			memmove(t->closed + i, t->closed + i + 1, (t->nclosed - i - 1) * sizeof(*t->closed));
			t->nclosed--;
			break;
		}
	if (id >= w->nconns || w->conns[id].fd < 0)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "close: no connection %u", id);
	struct paste_conn *c = &w->conns[id];
	t->eng->closing(w, id);
	pthread_mutex_lock(&w->pool->lock);
	paste_conn_drop_holds(w, id);
	pthread_mutex_unlock(&w->pool->lock);
	/* Ended by us, the peer maybe still sending: an immediate close could reset
	 * the connection before the client reads the last reply (tcp_linger.c). */
	if (c->ended && !c->dead)
		paste_linger_add(&t->linger, c->fd);
	else
		close(c->fd);
	c->fd = -1;
	c->ended = false;
	paste_bytes_clear(&c->out);
	t->open--;
	return 0;
}

/* paste_tcp_stats -- connections open and accepted */
int paste_tcp_stats(paste_worker *w, uint64_t *open, uint64_t *accepted)
{
	struct paste_tcp *t = tcp_of(w);
	if (!t)
		return paste_set_error(PASTE_ERR_STATE, "not listening");
	*open = t->open;
	*accepted = t->accepted;
	return 0;
}

/*
 * paste_tcp_quiesce -- on: read only from connections whose handler holds a
 * request still arriving, so that the handler can be swapped at a batch
 * boundary where no request is half received (the new handler never sees the
 * old one's partial state). Returns the connections that still hold buffers.
 */
int paste_tcp_quiesce(paste_worker *w, int on)
{
	struct paste_tcp *t = tcp_of(w);
	if (!t)
		return paste_set_error(PASTE_ERR_STATE, "quiesce: not listening");
	t->quiesce = on != 0;
	int holding = 0;
	for (uint32_t i = 0; i < w->nconns; i++)
		if (w->conns[i].fd >= 0 && w->conns[i].held)
			holding++;
	return holding;
}

/* tcp_takeover -- a new thread runs the port: no deploy of the old one is waiting any more */
static void tcp_takeover(struct paste_worker *w)
{
	tcp_of(w)->quiesce = false;
	tcp_of(w)->eng->takeover(w);
}

/* paste_tcp_stop_accepting -- close the listener; connections stay */
int paste_tcp_stop_accepting(paste_worker *w)
{
	struct paste_tcp *t = tcp_of(w);
	if (!t || t->lfd < 0)
		return 0;
	t->eng->stop_accepting(w);
	close(t->lfd);
	t->lfd = -1;
	return 0;
}

/* tcp_detach -- the engine's state, then the listener and every connection */
static void tcp_detach(struct paste_worker *w)
{
	struct paste_tcp *t = tcp_of(w);
	t->eng->detach(w);
	for (uint32_t i = 0; i < w->nconns; i++) {
		if (w->conns[i].fd >= 0) {
			close(w->conns[i].fd);
			w->conns[i].fd = -1;
		}
	}
	if (t->lfd >= 0)
		close(t->lfd);
	paste_linger_free(&t->linger);
	free(t->closed);
	free(t->closing);
	free(t);
}

/* Consecutive replies to one connection go out in one writev. */
static const struct paste_port_ops tcp_ops = {
	.name = "tcp", .coalesce = true, .deliver = tcp_deliver, .close_after = tcp_close_after,
	.after_commit = tcp_after_commit, .end_conn = tcp_end_conn, .takeover = tcp_takeover, .detach = tcp_detach,
};
