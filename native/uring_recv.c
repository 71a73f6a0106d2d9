/*
 * uring_recv.c -- the io_uring engine's receiving side (port_uring.c has the
 * picture): free pool buffers into the provided-buffer ring, a multishot
 * receive per connection, completions into a backlog, and the backlog into
 * RX slots in order.
 */
#define _GNU_SOURCE
#include "internal.h"

#ifndef PASTE_NO_URING
#include "uring.h"

/* refill -- free pool buffers into the provided ring, up to its size */
void uring_refill(struct paste_worker *w)
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
void uring_give_back(struct paste_pool *p, uint32_t b)
{
	if (b)
		paste_free_push(p, b);
}

void uring_arm_recv(struct paste_worker *w, uint32_t id)
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

static int backlog_push(struct paste_uring *u, uint32_t conn, uint32_t gen, uint32_t buf, uint32_t len, uint32_t kind)
{
	int rc = grow((void **)&u->bl, u->nbl, &u->cap_bl, sizeof(*u->bl));
	if (!rc)
		u->bl[u->nbl++] = (struct rxe){ conn, gen, buf, len, kind };
	return rc;
}

void uring_on_recv(struct paste_worker *w, struct io_uring_cqe *cqe, uint32_t id, uint32_t gen)
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
				uring_give_back(p, b);   /* a stale completion, or no memory to keep it */
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

/* ------------------------------------------------------------- publishing */

/*
 * publish -- the backlog into RX slots, in order. An entry stays back when
 * the ring or the log has no room, or (quiescing) when its connection holds
 * no request half received; every later entry of that connection stays back
 * with it, so a connection's bytes reach the handler in order.
 */
uint32_t uring_publish(struct paste_worker *w)
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
			uring_give_back(p, e.buf);   /* closed, or no longer read (the handler ended it) */
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
void uring_rearm(struct paste_worker *w)
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
			uring_arm_recv(w, id);
	}
	u->nrearm = 0;
}

#endif /* PASTE_NO_URING */
