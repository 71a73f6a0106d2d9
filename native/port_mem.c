/*
 * port_mem.c -- the mem port: netmap's pkt-gen for the log. It writes
 * requests into free RX buffers as recv() would, and keeps what the handler
 * "sent" for the host to read back. Benchmarks use it to measure the commit
 * path without a network; tests use it to drive a handler without a server.
 *
 * It attaches itself to a worker that has no port at its first request, so a
 * runtime that never listens needs no set-up call.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct paste_mem {
	uint64_t seq;                 /* synthetic requests generated */
	struct paste_bytes delivered; /* {u32 conn, u32 len, bytes}... "sent" and not yet taken */
};

/* mem_deliver -- keep what was "sent" for the host to take */
static int mem_deliver(struct paste_worker *w, uint32_t conn, const struct iovec *iov, int n)
{
	struct paste_mem *m = w->port_data;
	uint32_t len = 0;
	for (int i = 0; i < n; i++)
		len += (uint32_t)iov[i].iov_len;
	int rc = paste_bytes_reserve(&m->delivered, 8 + (size_t)len);
	if (rc)
		return rc;
	memcpy(m->delivered.data + m->delivered.len, &conn, 4);
	memcpy(m->delivered.data + m->delivered.len + 4, &len, 4);
	m->delivered.len += 8;
	for (int i = 0; i < n; i++) {
		memcpy(m->delivered.data + m->delivered.len, iov[i].iov_base, iov[i].iov_len);
		m->delivered.len += iov[i].iov_len;
	}
	return 0;
}

/* Synthetic connections have no socket: nothing to close or end. */
static int mem_close_after(struct paste_worker *w, uint32_t conn) { (void)w; (void)conn; return 0; }
static void mem_after_commit(struct paste_worker *w) { (void)w; }
static uint32_t mem_end_conn(struct paste_worker *w, uint32_t conn) { (void)w; (void)conn; return 0; }
static void mem_takeover(struct paste_worker *w) { (void)w; }

static void mem_detach(struct paste_worker *w)
{
	struct paste_mem *m = w->port_data;
	free(m->delivered.data);
	free(m);
}

/* Each reply is delivered on its own: the host reads them back one by one. */
static const struct paste_port_ops mem_ops = {
	.name = "mem", .coalesce = false, .deliver = mem_deliver, .close_after = mem_close_after,
	.after_commit = mem_after_commit, .end_conn = mem_end_conn, .takeover = mem_takeover, .detach = mem_detach,
};

/* mem_port -- the worker's mem port, attached now if the worker has none; NULL (and the error) if another port owns it */
static struct paste_mem *mem_port(struct paste_worker *w)
{
	if (!w) {
		paste_set_error(PASTE_ERR_STATE, "mem port: no worker");
		return NULL;
	}
	if (paste_port_is(w, &mem_ops))
		return w->port_data;
	if (!paste_port_vacant(w)) {
		paste_set_error(PASTE_ERR_STATE, "mem port: worker %u has the %s port", w->id, w->port->name);
		return NULL;
	}
	struct paste_mem *m = calloc(1, sizeof(*m));
	if (!m) {
		paste_set_error(PASTE_ERR_IO, "mem port: out of memory");
		return NULL;
	}
	paste_port_attach(w, &mem_ops, m);
	return m;
}

/*
 * paste_mem_fill -- synthetic requests written into free RX buffers, as
 * recv() would. Request k carries k as a u64 in its first 8 bytes and then
 * bytes (k * 31 + i) & 0xff, so tests can check every byte that comes back.
 * Stops when the ring is full, when no buffer is free, or when the log has no
 * room for a batch (backpressure).
 */
int paste_mem_fill(paste_worker *w, uint32_t size, uint32_t max, uint32_t conns)
{
	struct paste_mem *m = mem_port(w);
	if (!m)
		return PASTE_ERR_STATE;
	struct paste_pool *p = w->pool;
	if (size == 0 || size > p->sb.buf_size)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "mem port: request size %u must be 1 to %u (the buffer size)",
				       size, p->sb.buf_size);
	if (conns == 0)
		conns = 1;
	uint32_t filled = 0;
	pthread_mutex_lock(&p->lock);
	uint32_t room = paste_rx_room(w);
	if (max > room)
		max = room;
	while (filled < max) {
		uint8_t *d;
		struct netmap_slot *slot = paste_rx_claim(w, &d);
		if (!slot)
			break;
		uint64_t k = ++m->seq;
		uint32_t i = 0;
		for (; i < 8 && i < size; i++)
			d[i] = (uint8_t)(k >> (8 * i));
		for (; i < size; i++)
			d[i] = (uint8_t)(k * 31 + i);
		paste_rx_publish(w, slot, size, (uint32_t)(1 + (k % conns)));
		filled++;
	}
	pthread_mutex_unlock(&p->lock);
	return (int)filled;
}

/*
 * paste_mem_fill_bytes -- the mem port with the caller's bytes: one request
 * of len bytes (at most a buffer) into the next RX slot, from conn, as recv()
 * would put it there. For workloads that speak a handler's protocol.
 */
int paste_mem_fill_bytes(paste_worker *w, const void *data, uint32_t len, uint32_t conn)
{
	if (!mem_port(w))
		return PASTE_ERR_STATE;
	struct paste_pool *p = w->pool;
	if (len == 0 || len > p->sb.buf_size)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "mem port: %u bytes do not fit a %u-byte buffer", len, p->sb.buf_size);
	pthread_mutex_lock(&p->lock);
	uint8_t *d;
	struct netmap_slot *slot = paste_rx_room(w) ? paste_rx_claim(w, &d) : NULL;
	if (slot) {
		memcpy(d, data, len);
		paste_rx_publish(w, slot, len, conn);
	}
	pthread_mutex_unlock(&p->lock);
	return slot ? 1 : 0;
}

int64_t paste_mem_take_replies(paste_worker *w, void *buf, uint64_t cap)
{
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "take replies: no worker");
	if (!paste_port_is(w, &mem_ops))
		return 0;   /* nothing was delivered here */
	struct paste_bytes *q = &((struct paste_mem *)w->port_data)->delivered;
	/* whole replies only */
	size_t n = 0;
	while (n + 8 <= q->len) {
		uint32_t len;
		memcpy(&len, q->data + n + 4, 4);
		if (n + 8 + len > cap)
			break;
		n += 8 + (size_t)len;
	}
	if (!n && q->len)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "take replies: a buffer of %llu bytes holds no whole reply",
				       (unsigned long long)cap);
	memcpy(buf, q->data, n);
	memmove(q->data, q->data + n, q->len - n);
	q->len -= n;
	return (int64_t)n;
}

/*
 * paste_mem_native_wal -- the mem-wal handler's zero-copy mode as a plain C
 * loop: fill, log every request by reference, queue an 8-byte ack, release,
 * commit. The benchmark runs it next to the Wasm handler to show what the
 * sandbox costs. Returns requests handled.
 */
int paste_mem_native_wal(paste_worker *w, uint32_t size, uint32_t max, uint32_t conns)
{
	int filled = paste_mem_fill(w, size, max, conns);
	if (filled <= 0)
		return filled;
	struct paste_pool *p = w->pool;
	uint32_t n = p->sb.ring_slots;
	for (uint32_t s = w->rx_head; s != w->rx_tail; s = paste_ring_next(s, n)) {
		struct netmap_slot *slot = &w->rx->slot[s];
		struct paste_extent e = { .buf_idx = slot->buf_idx, .off = 0, .len = slot->len };
		pthread_mutex_lock(&p->lock);
		int64_t seq = paste_log_append(p, &e, 1);
		pthread_mutex_unlock(&p->lock);
		if (seq < 0)
			return (int)seq;
		int rc = paste_reply_queue(w, paste_slot_conn(slot), 0, 0, &seq, 8);
		if (rc)
			return rc;
	}
	__atomic_store_n(&w->rx->head, w->rx_tail, __ATOMIC_RELEASE);
	int rc = paste_rx_release(w, 0);
	if (rc < 0)
		return rc;
	int64_t c = paste_commit(w);
	return c < 0 ? (int)c : filled;
}
