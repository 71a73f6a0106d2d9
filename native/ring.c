/*
 * ring.c -- the netmap rings in the pool: reset them after recovery, let a
 * port claim and publish RX slots, take slots back when the handler releases
 * them.
 *
 * Ownership is netmap's. In an RX ring the handler owns [head, tail) and
 * gives slots back by advancing head; native code fills [tail, head - 1) and
 * advances tail. Native code never trusts what it reads back from the window:
 * it keeps a shadow of every RX slot's buffer, bounds-checks head, and checks
 * every buffer index a handler names against its own buffer states (bufs.c).
 *
 * Logging by reference, as PASTE does: a logged buffer stays in its slot
 * while the handler still reads it (several requests may share a buffer).
 * When the handler releases the slot, a buffer that the log references leaves
 * the ring, and the next claim puts a free buffer in the slot with
 * NS_BUF_CHANGED. Nothing is copied.
 */
#include "internal.h"

static struct netmap_ring *ring_at(struct paste_pool *p, uint32_t r)
{
	struct netmap_if *nifp = (struct netmap_if *)(p->base + p->sb.ring_ofs);
	return (struct netmap_ring *)((uint8_t *)nifp + nifp->ring_ofs[r]);
}

/*
 * paste_rings_reset -- after recovery, every ring starts as at create: RX
 * slots empty with a free buffer each, TX slots full of free buffers for the
 * handler. RX slots are served first: they are where requests arrive, and a
 * pool that recovers nearly full must still receive them (nothing in the
 * host sends from TX slots). Slots that find no free buffer get 0 and are
 * filled later.
 */
void paste_rings_reset(struct paste_pool *p)
{
	uint32_t n = p->sb.nrings, slots = p->sb.ring_slots;
	paste_netmap_layout(p->base + p->sb.ring_ofs, &p->sb);   /* never trust a ring offset read from the file */
	for (uint32_t i = 0; i < n; i++) {
		struct paste_worker *w = &p->workers[i];
		w->tx = ring_at(p, i);
		w->rx = ring_at(p, n + i);
		w->rx_wasm = PASTE_WINDOW_BASE + (uint64_t)((uint8_t *)w->rx - (p->base + p->sb.ring_ofs));
		for (uint32_t s = 0; s < slots; s++) {
			uint32_t b = paste_free_pop(p);
			if (b)
				p->bstate[b] = BS_RX_KERNEL;
			w->rx_shadow[s] = b;
			w->rx->slot[s] = (struct netmap_slot){ .buf_idx = b, .flags = NS_BUF_CHANGED };
		}
		w->rx->head = w->rx->cur = w->rx->tail = 0;
		w->rx_head = w->rx_tail = 0;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct paste_worker *w = &p->workers[i];
		for (uint32_t s = 0; s < slots; s++) {
			uint32_t b = paste_free_pop(p);
			if (b)
				p->bstate[b] = BS_TX;
			w->tx->slot[s] = (struct netmap_slot){ .buf_idx = b, .flags = NS_BUF_CHANGED };
		}
		w->tx->head = w->tx->cur = 0;
		w->tx->tail = slots - 1;
	}
}

/* ------------------------------------------------------------- RX filling */

/*
 * paste_rx_room -- how many requests a port may receive now. A handler that
 * logs every request needs log room for each, so receiving waits for a trim
 * when the log runs short. A handler with a cleaner keeps receiving: its
 * log() answers "full" while the cleaner works, so a full pool still
 * answers every request (reads, deletes, an error for a write).
 */
uint32_t paste_rx_room(struct paste_worker *w)
{
	return w->has_cleaner ? UINT32_MAX : paste_log_room(w->pool);
}

struct netmap_slot *paste_rx_claim(struct paste_worker *w, uint8_t **data)
{
	struct paste_pool *p = w->pool;
	uint32_t s = w->rx_tail;
	if (paste_ring_next(s, p->sb.ring_slots) == w->rx_head)
		return NULL;   /* ring full: netmap keeps one slot empty */
	struct netmap_slot *slot = &w->rx->slot[s];
	uint32_t b = w->rx_shadow[s];
	if (!b) {
		b = paste_free_pop(p);
		if (!b)
			return NULL;   /* pool full: wait for a trim */
		paste_buf_state(p, b, BS_RX_KERNEL);
		w->rx_shadow[s] = b;
		slot->buf_idx = b;
		slot->flags |= NS_BUF_CHANGED;
	}
	*data = paste_buf(p, b);
	return slot;
}

void paste_rx_publish(struct paste_worker *w, struct netmap_slot *slot, uint32_t len, uint32_t conn)
{
	struct paste_pool *p = w->pool;
	slot->len = (uint16_t)len;
	slot->ptr = ((uint64_t)conn << PASTE_PTR_FD_SHIFT) & PASTE_PTR_FD_MASK;
	p->bstate[w->rx_shadow[w->rx_tail]] = BS_RX_USER;
	w->rx_tail = paste_ring_next(w->rx_tail, p->sb.ring_slots);
	/* The slot's contents are visible before the tail that hands it over. */
	__atomic_store_n(&w->rx->tail, w->rx_tail, __ATOMIC_RELEASE);
}

/*
 * paste_rx_claim_many -- the epoll engine's readv: up to max free slots from
 * the tail, each given a buffer as paste_rx_claim does, so that one call
 * fills several buffers; the port then publishes the ones the read reached.
 */
uint32_t paste_rx_claim_many(struct paste_worker *w, struct iovec *iov, uint32_t max)
{
	struct paste_pool *p = w->pool;
	uint32_t n = p->sb.ring_slots, got = 0;
	for (uint32_t s = w->rx_tail; got < max && paste_ring_next(s, n) != w->rx_head; s = paste_ring_next(s, n)) {
		uint32_t b = w->rx_shadow[s];
		if (!b) {
			b = paste_free_pop(p);
			if (!b)
				break;
			paste_buf_state(p, b, BS_RX_KERNEL);
			w->rx_shadow[s] = b;
			w->rx->slot[s].buf_idx = b;
			w->rx->slot[s].flags |= NS_BUF_CHANGED;
		}
		iov[got++] = (struct iovec){ .iov_base = paste_buf(p, b), .iov_len = p->sb.buf_size };
	}
	return got;
}

bool paste_rx_full(const struct paste_worker *w)
{
	return paste_ring_next(w->rx_tail, w->pool->sb.ring_slots) == w->rx_head;
}

/*
 * paste_rx_publish_buf -- for an engine whose kernel picks the buffer (the
 * io_uring provided-buffer ring): the next slot takes buffer b, and a buffer
 * parked there goes back to the free list. The caller checked paste_rx_full.
 */
void paste_rx_publish_buf(struct paste_worker *w, uint32_t b, uint32_t len, uint32_t conn)
{
	struct paste_pool *p = w->pool;
	uint32_t s = w->rx_tail, old = w->rx_shadow[s];
	if (old && old != b)
		paste_free_push(p, old);
	w->rx_shadow[s] = b;
	w->rx->slot[s].buf_idx = b;
	w->rx->slot[s].flags |= NS_BUF_CHANGED;
	paste_rx_publish(w, &w->rx->slot[s], len, conn);
}

/* paste_rx_unpark -- every slot the handler does not own gives its parked buffer back (the pool lock held) */
void paste_rx_unpark(struct paste_worker *w)
{
	struct paste_pool *p = w->pool;
	uint32_t n = p->sb.ring_slots;
	uint32_t owned = (w->rx_tail + n - w->rx_head) % n;   /* [head, tail): the handler's */
	for (uint32_t i = 0, s = w->rx_tail; i < n - owned; i++, s = paste_ring_next(s, n)) {
		uint32_t b = w->rx_shadow[s];
		if (b && p->bstate[b] == BS_RX_KERNEL) {
			paste_free_push(p, b);
			w->rx_shadow[s] = 0;
			w->rx->slot[s].buf_idx = 0;
		}
	}
}

/* ------------------------------------------------------------ RX release */

/*
 * paste_rx_take_back -- RX slot s returns to native with the buffer native
 * put there. A buffer the log references or a hold keeps leaves the ring; one
 * nothing needs goes back to the free list. Either way the slot gets a buffer
 * at its next claim. Parking an unneeded buffer in its slot instead would
 * strand it: on a full pool the next slot to claim has none and the free list
 * is empty, so receiving would stop with buffers idle in other slots (a
 * handler refusing requests for want of space would lose one buffer to the
 * ring per refusal). Called with the pool lock held.
 */
void paste_rx_take_back(struct paste_worker *w, uint32_t s)
{
	struct paste_pool *p = w->pool;
	uint32_t b = w->rx_shadow[s];
	w->rx_shadow[s] = 0;
	w->rx->slot[s].buf_idx = 0;
	if (p->refs[b] || p->holds[b])
		paste_buf_state(p, b, BS_LOGGED);
	else
		paste_free_push(p, b);
}

/* in_span -- is h in the cyclic range [from, to] of a ring of n slots? */
static bool in_span(uint32_t h, uint32_t from, uint32_t to, uint32_t n)
{
	uint32_t d = (h + n - from) % n, span = (to + n - from) % n;
	return h < n && d <= span;
}

int paste_rx_release(paste_worker *w, int all)
{
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "release: no worker");
	struct paste_pool *p = w->pool;
	uint32_t n = p->sb.ring_slots;
	uint32_t h = all ? w->rx_tail : __atomic_load_n(&w->rx->head, __ATOMIC_ACQUIRE);
	int rc = 0;
	bool bogus = false;
	if (!in_span(h, w->rx_head, w->rx_tail, n)) {
		/* A bogus head: take every slot back so the ring stays usable. */
		rc = paste_set_error(PASTE_ERR_HANDLER,
			"handler set RX ring %u head to %u, outside its slots [%u, %u) of %u; all slots taken back, their connections closed",
			w->id, h, w->rx_head, w->rx_tail, n);
		h = w->rx_tail;
		bogus = true;
	}
	if (all || bogus) {
		/* The handler trapped, or its head says nothing true about what it
		 * handled: the requests it did not get to release (for a bogus head,
		 * any of the batch's) may never be answered. Their connections are
		 * closed once the replies already owed (this batch's included) are
		 * sent, so no client waits for an answer that is not coming. */
		uint32_t hh = bogus ? w->rx_head : __atomic_load_n(&w->rx->head, __ATOMIC_ACQUIRE);
		if (!in_span(hh, w->rx_head, w->rx_tail, n))
			hh = w->rx_head;
		for (uint32_t s = hh; s != w->rx_tail; s = paste_ring_next(s, n))
			w->port->close_after(w, paste_slot_conn(&w->rx->slot[s]));
	}
	pthread_mutex_lock(&p->lock);
	uint32_t released = 0;
	for (uint32_t s = w->rx_head; s != h; s = paste_ring_next(s, n)) {
		uint32_t b = w->rx_shadow[s], got = w->rx->slot[s].buf_idx;
		if (got != b && !rc)
			rc = paste_set_error(PASTE_ERR_HANDLER,
				"handler changed RX ring %u slot %u buffer from %u to %u; restored", w->id, s, b, got);
		paste_rx_take_back(w, s);
		released++;
	}
	pthread_mutex_unlock(&p->lock);
	w->rx_head = h;
	if (rc || all) {
		__atomic_store_n(&w->rx->head, h, __ATOMIC_RELEASE);
		__atomic_store_n(&w->rx->cur, h, __ATOMIC_RELEASE);
		if (rc) {
			p->stats.handler_errors++;
			return rc;
		}
	}
	return (int)released;
}
