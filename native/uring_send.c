/*
 * uring_send.c -- the io_uring engine's sending side (port_uring.c has the
 * picture): a committed batch's replies queued per connection (pool buffers
 * by reference, pinned until sent), one sendmsg per connection at the next
 * enter, POLLOUT when the socket is full.
 */
#define _GNU_SOURCE
#include "internal.h"

#ifndef PASTE_NO_URING
#include "uring.h"

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
void uring_drop_queue(struct paste_worker *w, struct uconn *uc)
{
	struct usend *s = uc->s;
	if (!s)
		return;
	for (uint32_t i = s->head; i < s->nq; i++)
		if (s->q[i].buf)
			unpin(w->pool, s->q[i].buf);
	s->nq = s->head = s->inflight = 0;
	paste_bytes_clear(&s->stage);
}

void uring_want_send(struct paste_uring *u, uint32_t id)
{
	struct uconn *uc = &u->uc[id];
	if (!uc->queued && !list_push(&u->sendl, &u->nsendl, &u->cap_sendl, id))
		uc->queued = true;
}

/* submit_sends -- one sendmsg per connection with something queued and nothing in the kernel */
void uring_submit_sends(struct paste_worker *w)
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

void uring_on_send(struct paste_worker *w, struct io_uring_cqe *cqe, uint32_t id, uint32_t gen)
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
		paste_bytes_clear(&s->stage);
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
		uring_want_send(u, id);   /* more than one sendmsg takes */
	}
}

void uring_on_pollout(struct paste_worker *w, uint32_t id, uint32_t gen)
{
	struct paste_uring *u = U(w);
	if (id >= u->nuc || u->uc[id].gen != gen)
		return;
	u->uc[id].pollout = false;
	uring_want_send(u, id);
}

/* --------------------------------------------------------------- replies */

/* uring_deliver -- queue a committed batch's replies; the next poll's enter sends them */
int uring_deliver(struct paste_worker *w, uint32_t id, const struct iovec *iov, int n)
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
	uring_want_send(u, id);
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
 * (-c 50 -P 16 was no better sending at once). EAGER_CONNS is in uring.h.
 */

void uring_delivered(struct paste_worker *w)
{
	struct paste_uring *u = U(w);
	if (u->nsendl && u->nsendl <= u->eager_conns) {
		uring_submit_sends(w);
		io_uring_submit(&u->ring);
	}
}

#endif /* PASTE_NO_URING */
