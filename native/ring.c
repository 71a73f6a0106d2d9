/*
 * ring.c -- the data path: netmap rings in the pool, the buffers they hold,
 * the handler's imports, and the mem port.
 *
 * Ownership is netmap's. In an RX ring the handler owns [head, tail) and
 * gives slots back by advancing head; native code fills [tail, head - 1) and
 * advances tail. Native code never trusts what it reads back from the window:
 * it keeps a shadow of every RX slot's buffer, bounds-checks head, and checks
 * every buffer index a handler names against its own buffer states.
 *
 * Logging by reference, as PASTE does: a logged buffer stays in its slot
 * while the handler still reads it (several requests may share a buffer).
 * When the handler releases the slot, a buffer that the log references leaves
 * the ring, and the next fill puts a free buffer in the slot with
 * NS_BUF_CHANGED. Nothing is copied.
 */
#define _DEFAULT_SOURCE   /* mincore */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

__thread struct paste_worker *paste_cur;

/* ------------------------------------------------------------ buffers */

void paste_buf_state(struct paste_pool *p, uint32_t b, uint8_t st)
{
	p->nlogged += (st == BS_LOGGED) - (p->bstate[b] == BS_LOGGED);
	p->bstate[b] = st;
}

uint32_t paste_free_pop(struct paste_pool *p)
{
	if (!p->nfree)
		return 0;
	uint32_t b = p->free_stack[--p->nfree];
	p->bstate[b] = BS_FREE;   /* the caller sets where it goes */
	return b;
}

void paste_free_push(struct paste_pool *p, uint32_t b)
{
	paste_buf_state(p, b, BS_FREE);
	p->free_stack[p->nfree++] = b;
}

void paste_buf_maybe_free(struct paste_pool *p, uint32_t b)
{
	if (p->refs[b] == 0 && p->holds[b] == 0 && p->bstate[b] == BS_LOGGED)
		paste_free_push(p, b);
}

/* ----------------------------------------------------------- connections */

struct paste_conn *paste_conn_get(struct paste_worker *w, uint32_t id)
{
	if (id >= w->nconns) {
		uint32_t n = w->nconns ? w->nconns : 256;
		while (n <= id)
			n *= 2;
		struct paste_conn *c = realloc(w->conns, (size_t)n * sizeof(*c));
		if (!c)
			return NULL;
		memset(c + w->nconns, 0, (size_t)(n - w->nconns) * sizeof(*c));
		for (uint32_t i = w->nconns; i < n; i++)
			c[i].fd = -1;
		w->conns = c;
		w->nconns = n;
	}
	return &w->conns[id];
}

void paste_conn_drop_holds(struct paste_worker *w, uint32_t id)
{
	struct paste_pool *p = w->pool;
	if (id >= w->nconns)
		return;
	struct paste_conn *c = &w->conns[id];
	for (uint32_t b = c->held; b;) {
		uint32_t next = p->hold_next[b];
		p->hold_next[b] = 0;
		p->holds[b] = 0;
		paste_buf_maybe_free(p, b);
		b = next;
	}
	c->held = 0;
}

int paste_runtime_init(struct paste_pool *p)
{
	uint32_t n = p->sb.nbufs, w = p->sb.nrings;
	p->refs = calloc(n, sizeof(*p->refs));
	p->holds = calloc(n, sizeof(*p->holds));
	p->hold_next = calloc(n, sizeof(*p->hold_next));
	p->bstate = calloc(n, 1);
	p->free_stack = malloc((size_t)n * sizeof(*p->free_stack));
	p->workers = calloc(w, sizeof(*p->workers));
	if (!p->refs || !p->holds || !p->hold_next || !p->bstate || !p->free_stack || !p->workers) {
		paste_runtime_free(p);
		return paste_set_error(PASTE_ERR_IO, "recover: out of memory for %u buffers", n);
	}
	for (uint32_t i = 0; i < w; i++) {
		p->workers[i].rx_shadow = calloc(p->sb.ring_slots, sizeof(uint32_t));
		if (!p->workers[i].rx_shadow) {
			paste_runtime_free(p);
			return paste_set_error(PASTE_ERR_IO, "recover: out of memory for ring shadows");
		}
	}
	p->bstate[0] = BS_RESERVED;
	p->nfree = 0;
	p->nlogged = 0;
	p->records = p->base + p->sb.log_ofs + PASTE_LOG_HDR_SIZE;
	p->cap = p->sb.log_size - PASTE_LOG_HDR_SIZE;
	pthread_mutex_init(&p->lock, NULL);
	return 0;
}

void paste_runtime_free(struct paste_pool *p)
{
	if (p->workers) {
		for (uint32_t i = 0; i < p->sb.nrings; i++) {
			struct paste_worker *w = &p->workers[i];
			if (paste_cur == w)
				paste_cur = NULL;
			paste_tcp_free(w);
			for (uint32_t c = 0; c < w->nconns; c++)
				free(w->conns[c].out.data);
			free(w->conns);
			free(w->rx_shadow);
			free(w->pending.data);
			free(w->delivered.data);
		}
	}
	if (p->recovered)
		pthread_mutex_destroy(&p->lock);
	free(p->refs);
	free(p->holds);
	free(p->hold_next);
	free(p->bstate);
	free(p->free_stack);
	free(p->workers);
	p->refs = NULL;
	p->holds = NULL;
	p->hold_next = NULL;
	p->bstate = NULL;
	p->free_stack = NULL;
	p->workers = NULL;
	p->recovered = false;
}

static struct netmap_ring *ring_at(struct paste_pool *p, uint32_t r)
{
	struct netmap_if *nifp = (struct netmap_if *)(p->base + p->sb.ring_ofs);
	return (struct netmap_ring *)((uint8_t *)nifp + nifp->ring_ofs[r]);
}

/*
 * paste_rings_reset -- after recovery, every ring starts as at create: TX
 * slots full of free buffers for the handler, RX slots empty with a free
 * buffer each. Slots that find no free buffer get 0 and are filled later.
 */
void paste_rings_reset(struct paste_pool *p)
{
	uint32_t n = p->sb.nrings, slots = p->sb.ring_slots;
	for (uint32_t i = 0; i < n; i++) {
		struct paste_worker *w = &p->workers[i];
		w->pool = p;
		w->id = i;
		w->tx = ring_at(p, i);
		w->rx = ring_at(p, n + i);
		w->rx_wasm = PASTE_WINDOW_BASE + (uint64_t)((uint8_t *)w->rx - (p->base + p->sb.ring_ofs));
		for (uint32_t s = 0; s < slots; s++) {
			struct netmap_slot *tx = &w->tx->slot[s], *rx = &w->rx->slot[s];
			uint32_t b = paste_free_pop(p);
			if (b)
				p->bstate[b] = BS_TX;
			*tx = (struct netmap_slot){ .buf_idx = b, .flags = NS_BUF_CHANGED };
			b = paste_free_pop(p);
			if (b)
				p->bstate[b] = BS_RX_KERNEL;
			w->rx_shadow[s] = b;
			*rx = (struct netmap_slot){ .buf_idx = b, .flags = NS_BUF_CHANGED };
		}
		w->tx->head = w->tx->cur = 0;
		w->tx->tail = slots - 1;
		w->rx->head = w->rx->cur = w->rx->tail = 0;
		w->rx_head = w->rx_tail = 0;
	}
}

/* ------------------------------------------------------------ workers */

static inline uint32_t ring_next(uint32_t i, uint32_t n)
{
	return i + 1 == n ? 0 : i + 1;
}

/* slot_conn -- the connection an RX slot's request came from (slot.ptr, as PASTE encodes it) */
static inline uint32_t slot_conn(const struct netmap_slot *slot)
{
	return (uint32_t)((slot->ptr & PASTE_PTR_FD_MASK) >> PASTE_PTR_FD_SHIFT);
}

/*
 * slot_take_back -- RX slot s returns to native with the buffer native put
 * there. A buffer the log references or a hold keeps leaves the ring, and the
 * slot gets another at the next fill. Called with the pool lock held.
 */
static void slot_take_back(struct paste_worker *w, uint32_t s)
{
	struct paste_pool *p = w->pool;
	uint32_t b = w->rx_shadow[s];
	w->rx->slot[s].buf_idx = b;
	if (p->refs[b] || p->holds[b]) {
		paste_buf_state(p, b, BS_LOGGED);
		w->rx_shadow[s] = 0;
	} else {
		p->bstate[b] = BS_RX_KERNEL;
	}
}


int paste_worker_bind(paste_pool *p, uint32_t id, void *mem, uint64_t mem_len)
{
	if (!p || !p->recovered)
		return paste_set_error(PASTE_ERR_STATE, "bind: the pool is not recovered");
	if (id >= p->sb.nrings)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "bind: worker %u, the pool has %u ring pairs", id, p->sb.nrings);
	if (!paste_window_mapped(p, mem))
		return paste_set_error(PASTE_ERR_WINDOW, "bind: the window is not mapped into this memory");
	struct paste_worker *w = &p->workers[id];
	w->wasm = mem;
	w->wasm_len = mem_len;
	paste_cur = w;
	return 0;
}

/*
 * paste_worker_takeover -- make worker id usable by a new thread after the
 * thread that ran it was terminated, maybe in the middle of a batch (a
 * handler past its time budget, or one that ran out of memory):
 *  - the cut-off batch's appended records are dropped: never committed, never
 *    acknowledged (paste_log_abort); its queued replies are dropped with them;
 *  - its requests are taken back from the RX ring and their connections are
 *    closed once what was already acknowledged to them is sent: their request
 *    got no answer, and a client must not wait for one;
 *  - every buffer the old handler held for a request still arriving is given
 *    back and that connection closed the same way: the next handler never saw
 *    the first part of the request;
 *  - the old memories are forgotten (they died with the thread's isolate).
 * Every other connection, the listener and every committed record stay.
 */
int paste_worker_takeover(paste_pool *p, uint32_t id, uint32_t *dropped, uint32_t *closed)
{
	if (!p || !p->recovered)
		return paste_set_error(PASTE_ERR_STATE, "takeover: the pool is not recovered");
	if (id >= p->sb.nrings)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "takeover: worker %u, the pool has %u ring pairs", id, p->sb.nrings);
	struct paste_worker *w = &p->workers[id];
	uint32_t n = p->sb.ring_slots;
	*closed = 0;
	paste_window_forget(p);
	paste_tcp_takeover(w);
	w->wasm = NULL;
	w->wasm_len = 0;

	pthread_mutex_lock(&p->lock);
	*dropped = paste_log_abort(p);
	w->pending.len = 0;
	w->pending_replies = 0;
	for (uint32_t c = 0; c < w->nconns; c++) {
		if (w->conns[c].held) {
			paste_conn_drop_holds(w, c);
			*closed += paste_tcp_end_conn(w, c);
		}
	}
	for (uint32_t s = w->rx_head; s != w->rx_tail; s = ring_next(s, n)) {
		*closed += paste_tcp_end_conn(w, slot_conn(&w->rx->slot[s]));
		slot_take_back(w, s);
	}
	pthread_mutex_unlock(&p->lock);
	w->rx_head = w->rx_tail;
	__atomic_store_n(&w->rx->head, w->rx_tail, __ATOMIC_RELEASE);
	__atomic_store_n(&w->rx->cur, w->rx_tail, __ATOMIC_RELEASE);
	return 0;
}

int paste_log_discard(paste_pool *p)
{
	if (!p || !p->recovered)
		return paste_set_error(PASTE_ERR_STATE, "discard: the pool is not recovered");
	pthread_mutex_lock(&p->lock);
	int n = (int)paste_log_abort(p);
	pthread_mutex_unlock(&p->lock);
	return n;
}

/*
 * paste_mem_resident -- bytes of [mem+off, +len) backed by RAM (mincore):
 * how much of its heap a handler has really touched, to tell a trap that came
 * from running out of memory from any other.
 */
int64_t paste_mem_resident(void *mem, uint64_t off, uint64_t len)
{
	long page = sysconf(_SC_PAGESIZE);
	uint8_t *at = (uint8_t *)mem + off;
	size_t pages = (len + (uint64_t)page - 1) / (uint64_t)page;
	unsigned char *vec = malloc(pages);
	if (!vec)
		return paste_set_error(PASTE_ERR_IO, "resident: out of memory");
	if (mincore(at, len, vec)) {
		int err = errno;
		free(vec);
		return paste_set_errno(err, "mincore");
	}
	uint64_t n = 0;
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	free(vec);
	return (int64_t)(n * (uint64_t)page);
}

int paste_worker_mem_len(uint64_t mem_len)
{
	if (!paste_cur)
		return paste_set_error(PASTE_ERR_STATE, "no worker bound to this thread");
	paste_cur->wasm_len = mem_len;
	return 0;
}

int64_t paste_worker_rx_ring(void)
{
	if (!paste_cur)
		return paste_set_error(PASTE_ERR_STATE, "no worker bound to this thread");
	return (int64_t)paste_cur->rx_wasm;
}

/* wasm_range -- a handler pointer, checked against its memory: NULL if out of bounds */
static uint8_t *wasm_range(struct paste_worker *w, uint32_t ptr, uint64_t len)
{
	if ((uint64_t)ptr + len > w->wasm_len)
		return NULL;
	return w->wasm + ptr;
}

int64_t paste_worker_replay(uint64_t pos)
{
	struct paste_worker *w = paste_cur;
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "no worker bound to this thread");
	struct paste_pool *p = w->pool;
	uint64_t box = PASTE_MAILBOX_BASE + (uint64_t)w->id * PASTE_MAILBOX_SIZE;
	struct paste_wasm_record *d = (struct paste_wasm_record *)(w->wasm + box);
	struct paste_extent e;
	const struct paste_log_rec *r = (const struct paste_log_rec *)(p->records + pos % p->cap);
	d->seq = r->seq;
	d->len = r->len;
	d->nextents = r->nextents;
	for (uint32_t i = 0; i < r->nextents; i++) {
		paste_log_extent(p, pos, i, &e);
		/* A Wasm address in the window: the handler reads the bytes in place. */
		d->ext[i].addr = (uint32_t)(PASTE_WINDOW_BASE + (p->sb.buf_ofs - p->sb.ring_ofs) +
					    (uint64_t)e.buf_idx * p->sb.buf_size + e.off);
		d->ext[i].len = e.len;
	}
	return (int64_t)box;
}

/*
 * paste_worker_replay_next -- the walk's next intact record, described in the
 * mailbox: its Wasm address, or 0 after the last. One native call a record
 * (walk, checksum, descriptor): replay is what a start or a deploy waits for.
 */
int64_t paste_worker_replay_next(void)
{
	if (!paste_cur)
		return paste_set_error(PASTE_ERR_STATE, "no worker bound to this thread");
	struct paste_rec_info info;
	for (;;) {
		int rc = paste_log_walk_next(paste_cur->pool, &info);
		if (rc <= 0)
			return rc;
		if (info.status == PASTE_REC_OK)   /* a bad checksum was reported by recovery; never exposed */
			return paste_worker_replay(info.pos);
	}
}

/* --------------------------------------------------------- RX release */


/* in_span -- is h in the cyclic range [from, to] of a ring of n slots? */
static bool in_span(uint32_t h, uint32_t from, uint32_t to, uint32_t n)
{
	uint32_t d = (h + n - from) % n, span = (to + n - from) % n;
	return h < n && d <= span;
}

int paste_rx_release(int all)
{
	struct paste_worker *w = paste_cur;
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "no worker bound to this thread");
	struct paste_pool *p = w->pool;
	uint32_t n = p->sb.ring_slots;
	uint32_t h = all ? w->rx_tail : __atomic_load_n(&w->rx->head, __ATOMIC_ACQUIRE);
	int rc = 0;
	if (!in_span(h, w->rx_head, w->rx_tail, n)) {
		/* A bogus head: take every slot back so the ring stays usable. */
		rc = paste_set_error(PASTE_ERR_HANDLER,
			"handler set RX ring %u head to %u, outside its slots [%u, %u) of %u; all slots taken back",
			w->id, h, w->rx_head, w->rx_tail, n);
		h = w->rx_tail;
	}
	if (all && w->tcp) {
		/* The handler trapped: the requests it did not get to release will
		 * never be answered. Their connections are closed once the replies
		 * already owed (this batch's included) are sent, so no client waits
		 * for an answer that is not coming. */
		uint32_t hh = __atomic_load_n(&w->rx->head, __ATOMIC_ACQUIRE);
		if (!in_span(hh, w->rx_head, w->rx_tail, n))
			hh = w->rx_head;
		for (uint32_t s = hh; s != w->rx_tail; s = ring_next(s, n))
			paste_tcp_close_after(w, slot_conn(&w->rx->slot[s]));
	}
	pthread_mutex_lock(&p->lock);
	uint32_t released = 0;
	for (uint32_t s = w->rx_head; s != h; s = ring_next(s, n)) {
		uint32_t b = w->rx_shadow[s], got = w->rx->slot[s].buf_idx;
		if (got != b && !rc)
			rc = paste_set_error(PASTE_ERR_HANDLER,
				"handler changed RX ring %u slot %u buffer from %u to %u; restored", w->id, s, b, got);
		slot_take_back(w, s);
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

/* ------------------------------------------------------------ replies */

/*
 * A reply queued during a batch: a header, then len bytes inline, or (buf != 0)
 * a reference to bytes in a pool buffer, sent from the pool without a copy.
 */
struct pending {
	uint32_t conn;
	uint32_t len;
	uint32_t buf;
	uint32_t off;
};

static int bytes_reserve(struct paste_bytes *q, size_t more)
{
	if (q->len + more <= q->cap)
		return 0;
	size_t cap = q->cap ? q->cap : 4096;
	while (cap < q->len + more)
		cap *= 2;
	uint8_t *d = realloc(q->data, cap);
	if (!d)
		return paste_set_error(PASTE_ERR_IO, "replies: out of memory for %zu bytes", cap);
	q->data = d;
	q->cap = cap;
	return 0;
}

int paste_bytes_append(struct paste_bytes *q, const void *data, size_t len)
{
	int rc = bytes_reserve(q, len);
	if (rc)
		return rc;
	memcpy(q->data + q->len, data, len);
	q->len += len;
	return 0;
}

static int queue_reply(struct paste_worker *w, uint32_t conn, uint32_t buf, uint32_t off, const void *src, uint32_t len)
{
	struct pending h = { .conn = conn, .len = len, .buf = buf, .off = off };
	int rc = bytes_reserve(&w->pending, sizeof(h) + (buf ? 0 : len));
	if (rc)
		return rc;
	memcpy(w->pending.data + w->pending.len, &h, sizeof(h));
	w->pending.len += sizeof(h);
	if (!buf) {
		memcpy(w->pending.data + w->pending.len, src, len);   /* small replies are copied */
		w->pending.len += len;
	}
	w->pending_replies++;
	return 0;
}

int paste_h_reply(uint32_t conn, uint32_t ptr, uint32_t len)
{
	struct paste_worker *w = paste_cur;
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "reply: no worker bound to this thread");
	const uint8_t *src = wasm_range(w, ptr, len);
	if (!src) {
		w->pool->stats.handler_errors++;
		return paste_set_error(PASTE_ERR_HANDLER, "reply: [%u, +%u) is outside the handler's memory", ptr, len);
	}
	return queue_reply(w, conn, 0, 0, src, len);
}

int paste_h_reply_ref(uint32_t conn, uint32_t buf_idx, uint32_t off, uint32_t len)
{
	struct paste_worker *w = paste_cur;
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "reply: no worker bound to this thread");
	struct paste_pool *p = w->pool;
	if (!paste_buf_loggable(p, buf_idx) || (uint64_t)off + len > p->sb.buf_size) {
		p->stats.handler_errors++;
		return paste_set_error(PASTE_ERR_HANDLER,
			"reply_ref: buffer %u [%u, +%u) is not a logged, held or received buffer", buf_idx, off, len);
	}
	/* Sent at this batch's commit, before any buffer can be reused: safe by reference. */
	return queue_reply(w, conn, buf_idx, off, NULL, len);
}

int paste_deliver(struct paste_worker *w, uint32_t conn, const struct iovec *iov, int n)
{
	if (w->tcp)
		return paste_tcp_deliver(w, conn, iov, n);
	/* mem port: keep what was "sent", {u32 conn, u32 len, bytes}, for the host to read */
	uint32_t len = 0;
	for (int i = 0; i < n; i++)
		len += (uint32_t)iov[i].iov_len;
	int rc = bytes_reserve(&w->delivered, 8 + (size_t)len);
	if (rc)
		return rc;
	memcpy(w->delivered.data + w->delivered.len, &conn, 4);
	memcpy(w->delivered.data + w->delivered.len + 4, &len, 4);
	w->delivered.len += 8;
	for (int i = 0; i < n; i++) {
		memcpy(w->delivered.data + w->delivered.len, iov[i].iov_base, iov[i].iov_len);
		w->delivered.len += iov[i].iov_len;
	}
	return 0;
}

/* release_replies -- the batch is durable: hand every queued reply to the port */
static int release_replies(struct paste_worker *w)
{
	struct paste_pool *p = w->pool;
	struct iovec iov[64];
	int n = 0;
	uint32_t conn = 0;
	int rc = 0;
	for (size_t at = 0; at < w->pending.len;) {
		struct pending h;
		memcpy(&h, w->pending.data + at, sizeof(h));
		at += sizeof(h);
		const uint8_t *data = h.buf ? paste_buf(p, h.buf) + h.off : w->pending.data + at;
		if (!h.buf)
			at += h.len;
		/* A TCP connection gets its consecutive replies in one writev. */
		if (n && (!w->tcp || h.conn != conn || n == 64)) {
			int r = paste_deliver(w, conn, iov, n);
			if (r && !rc)
				rc = r;
			n = 0;
		}
		conn = h.conn;
		iov[n++] = (struct iovec){ .iov_base = (void *)data, .iov_len = h.len };
		p->stats.reply_bytes += h.len;
	}
	if (n) {
		int r = paste_deliver(w, conn, iov, n);
		if (r && !rc)
			rc = r;
	}
	p->stats.replies += w->pending_replies;
	w->pending.len = 0;
	w->pending_replies = 0;
	return rc;
}

int64_t paste_commit(void)
{
	struct paste_worker *w = paste_cur;
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "commit: no worker bound to this thread");
	struct paste_pool *p = w->pool;
	pthread_mutex_lock(&p->lock);
	int rc = paste_log_commit(p);
	pthread_mutex_unlock(&p->lock);
	if (rc)
		return rc;   /* nothing is acknowledged: the replies stay queued */
	/* Durable: only now may this batch's replies leave (invariant 4). */
	int64_t n = (int64_t)w->pending_replies;
	rc = release_replies(w);
	if (w->tcp)
		paste_tcp_after_commit(w);
	return rc ? rc : n;
}

int64_t paste_mem_take_replies(void *buf, uint64_t cap)
{
	struct paste_worker *w = paste_cur;
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "no worker bound to this thread");
	/* whole replies only */
	size_t n = 0;
	while (n + 8 <= w->delivered.len) {
		uint32_t len;
		memcpy(&len, w->delivered.data + n + 4, 4);
		if (n + 8 + len > cap)
			break;
		n += 8 + (size_t)len;
	}
	if (!n && w->delivered.len)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "take replies: a buffer of %llu bytes holds no whole reply",
				       (unsigned long long)cap);
	memcpy(buf, w->delivered.data, n);
	memmove(w->delivered.data, w->delivered.data + n, w->delivered.len - n);
	w->delivered.len -= n;
	return (int64_t)n;
}

/* ------------------------------------------------------------ RX filling */

struct netmap_slot *paste_rx_claim(struct paste_worker *w, uint8_t **data)
{
	struct paste_pool *p = w->pool;
	uint32_t s = w->rx_tail;
	if (ring_next(s, p->sb.ring_slots) == w->rx_head)
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
	w->rx_tail = ring_next(w->rx_tail, p->sb.ring_slots);
	/* The slot's contents are visible before the tail that hands it over. */
	__atomic_store_n(&w->rx->tail, w->rx_tail, __ATOMIC_RELEASE);
}

/* log_room -- requests the log can take before a batch must wait for a trim */
uint32_t paste_log_room(struct paste_pool *p)
{
	uint64_t lines = (p->cap - (p->vtail - p->head)) / PASTE_CACHELINE;
	/* keep room for a pad and a long multi-extent record per request */
	return lines > 1024 ? (uint32_t)((lines - 1024) / 2 > UINT32_MAX ? UINT32_MAX : (lines - 1024) / 2) : 0;
}

/* ------------------------------------------------------------ mem port */

/*
 * paste_mem_fill -- netmap's pkt-gen for the log: synthetic requests written
 * into free RX buffers, as recv() would. Request k carries k as a u64 in its
 * first 8 bytes and then bytes (k * 31 + i) & 0xff, so tests can check
 * every byte that comes back. Stops when the ring is full, when no buffer is
 * free, or when the log has no room for a batch (backpressure).
 */
int paste_mem_fill(uint32_t size, uint32_t max, uint32_t conns)
{
	struct paste_worker *w = paste_cur;
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "mem port: no worker bound to this thread");
	struct paste_pool *p = w->pool;
	if (size == 0 || size > p->sb.buf_size)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "mem port: request size %u must be 1 to %u (the buffer size)",
				       size, p->sb.buf_size);
	if (conns == 0)
		conns = 1;
	uint32_t filled = 0;
	pthread_mutex_lock(&p->lock);
	uint32_t room = paste_log_room(p);
	if (max > room)
		max = room;
	while (filled < max) {
		uint8_t *d;
		struct netmap_slot *slot = paste_rx_claim(w, &d);
		if (!slot)
			break;
		uint64_t k = ++w->mem_seq;
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

/* --------------------------------------------------------- handler imports */

static double import_error(int rc)
{
	if (paste_cur)
		paste_cur->pool->stats.handler_errors++;
	return (double)rc;
}

/* one_extent -- an import's (buf_idx, off, len) as an extent; 0, or the handler error */
static int one_extent(uint32_t buf_idx, uint32_t off, uint32_t len, const char *what, struct paste_extent *e)
{
	if (off > UINT16_MAX || len > UINT16_MAX)
		return paste_set_error(PASTE_ERR_HANDLER, "%s: offset %u length %u do not fit a buffer", what, off, len);
	*e = (struct paste_extent){ .buf_idx = buf_idx, .off = (uint16_t)off, .len = (uint16_t)len };
	return 0;
}

double paste_h_log(uint32_t buf_idx, uint32_t off, uint32_t len)
{
	struct paste_worker *w = paste_cur;
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "log: no worker bound to this thread");
	struct paste_extent e;
	int rc = one_extent(buf_idx, off, len, "log", &e);
	if (rc)
		return import_error(rc);
	pthread_mutex_lock(&w->pool->lock);
	int64_t seq = paste_log_append(w->pool, &e, 1);
	pthread_mutex_unlock(&w->pool->lock);
	return seq < 0 ? import_error((int)seq) : (double)seq;
}

/*
 * copy_and_log -- the copying baseline PASTE is measured against: copy the
 * pieces, packed, into fresh pool buffers and log the copies as one record.
 * Same record format and recovery as logging by reference; the difference is
 * the memcpy and the lines it dirties. Called with the pool lock held.
 */
static double copy_and_log(struct paste_pool *p, const struct paste_extent *src, uint32_t n, const char *what)
{
	struct paste_extent dst[64] = { { 0 } };
	uint32_t nd = 0, room = 0;
	uint64_t copied = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct paste_extent *e = &src[i];
		if (!paste_buf_loggable(p, e->buf_idx) || e->len == 0 || (uint32_t)e->off + e->len > p->sb.buf_size) {
			for (uint32_t k = 0; k < nd; k++)
				paste_free_push(p, dst[k].buf_idx);
			return import_error(paste_set_error(PASTE_ERR_HANDLER,
				"%s: extent %u (buffer %u [%u, +%u)) is not the handler's to log", what, i, e->buf_idx, e->off, e->len));
		}
		for (uint32_t done = 0; done < e->len;) {
			if (!room) {
				uint32_t b = nd < 64 ? paste_free_pop(p) : 0;
				if (!b) {
					for (uint32_t k = 0; k < nd; k++)
						paste_free_push(p, dst[k].buf_idx);
					return import_error(paste_set_error(PASTE_ERR_POOL_FULL, "%s: no free buffer to copy into; trim", what));
				}
				paste_buf_state(p, b, BS_LOGGED);
				dst[nd++] = (struct paste_extent){ .buf_idx = b, .off = 0, .len = 0 };
				room = p->sb.buf_size;
			}
			struct paste_extent *d = &dst[nd - 1];
			uint32_t k = e->len - done < room ? e->len - done : room;
			memcpy(paste_buf(p, d->buf_idx) + d->len, paste_buf(p, e->buf_idx) + e->off + done, k);
			d->len = (uint16_t)(d->len + k);
			room -= k;
			done += k;
			copied += k;
		}
	}
	int64_t seq = paste_log_append(p, dst, nd);
	if (seq < 0) {
		for (uint32_t k = 0; k < nd; k++)
			paste_free_push(p, dst[k].buf_idx);
		return import_error((int)seq);
	}
	p->stats.payload_copies += copied;
	return (double)seq;
}

/* paste_h_log_copy -- the copying baseline for one range of one buffer */
double paste_h_log_copy(uint32_t buf_idx, uint32_t off, uint32_t len)
{
	struct paste_worker *w = paste_cur;
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "log: no worker bound to this thread");
	struct paste_extent e;
	int rc = one_extent(buf_idx, off, len, "log_copy", &e);
	if (rc)
		return import_error(rc);
	pthread_mutex_lock(&w->pool->lock);
	double r = copy_and_log(w->pool, &e, 1, "log_copy");
	pthread_mutex_unlock(&w->pool->lock);
	return r;
}

double paste_h_log_extents(uint32_t ptr, uint32_t n)
{
	struct paste_worker *w = paste_cur;
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "log: no worker bound to this thread");
	const struct paste_extent *ext = (const struct paste_extent *)wasm_range(w, ptr, (uint64_t)n * sizeof(*ext));
	if (!ext || (ptr & 3))
		return import_error(paste_set_error(PASTE_ERR_HANDLER,
			"log: %u extents at %u are outside the handler's memory or misaligned", n, ptr));
	pthread_mutex_lock(&w->pool->lock);
	int64_t seq = paste_log_append(w->pool, ext, n);
	pthread_mutex_unlock(&w->pool->lock);
	return seq < 0 ? import_error((int)seq) : (double)seq;
}

double paste_h_trim(double upto)
{
	struct paste_worker *w = paste_cur;
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "trim: no worker bound to this thread");
	if (!(upto >= 0))
		return import_error(paste_set_error(PASTE_ERR_HANDLER, "trim: bad sequence number"));
	int64_t n = paste_trim(w->pool, (uint64_t)upto);
	return (double)n;
}

double paste_h_committed(void)
{
	return paste_cur ? (double)paste_cur->pool->committed_seq : 0;
}

int paste_h_error(uint32_t ptr, uint32_t cap)
{
	struct paste_worker *w = paste_cur;
	const char *msg = paste_last_error();
	size_t len = strlen(msg);
	if (!w || !cap)
		return (int)len;
	uint8_t *d = wasm_range(w, ptr, cap);
	if (!d)
		return paste_set_error(PASTE_ERR_HANDLER, "error: [%u, +%u) is outside the handler's memory", ptr, cap);
	if (len > cap)
		len = cap;
	memcpy(d, msg, len);
	return (int)len;
}

/* paste_h_hold -- keep a received buffer for conn after its slot is released (a request still arriving) */
int paste_h_hold(uint32_t buf_idx, uint32_t conn)
{
	struct paste_worker *w = paste_cur;
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "hold: no worker bound to this thread");
	struct paste_pool *p = w->pool;
	if (!paste_buf_loggable(p, buf_idx)) {
		p->stats.handler_errors++;
		return paste_set_error(PASTE_ERR_HANDLER, "hold: buffer %u is not a received or logged buffer", buf_idx);
	}
	if (p->holds[buf_idx]) {
		p->stats.handler_errors++;
		return paste_set_error(PASTE_ERR_HANDLER, "hold: buffer %u is already held", buf_idx);
	}
	struct paste_conn *c = paste_conn_get(w, conn);
	if (!c)
		return paste_set_error(PASTE_ERR_IO, "hold: out of memory for connection %u", conn);
	p->holds[buf_idx] = 1;
	p->hold_next[buf_idx] = c->held;
	c->held = buf_idx;
	return 0;
}

/* paste_h_unhold -- give a held buffer back: free once the log does not reference it */
int paste_h_unhold(uint32_t buf_idx, uint32_t conn)
{
	struct paste_worker *w = paste_cur;
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "unhold: no worker bound to this thread");
	struct paste_pool *p = w->pool;
	struct paste_conn *c = conn < w->nconns ? &w->conns[conn] : NULL;
	uint32_t *link = c ? &c->held : NULL;
	while (link && *link && *link != buf_idx)
		link = &p->hold_next[*link];
	if (!link || !*link) {
		p->stats.handler_errors++;
		return paste_set_error(PASTE_ERR_HANDLER, "unhold: connection %u does not hold buffer %u", conn, buf_idx);
	}
	*link = p->hold_next[buf_idx];
	p->hold_next[buf_idx] = 0;
	p->holds[buf_idx] = 0;
	paste_buf_maybe_free(p, buf_idx);
	return 0;
}

/* paste_h_close -- close conn after the replies queued so far have been sent */
int paste_h_close(uint32_t conn)
{
	struct paste_worker *w = paste_cur;
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "close: no worker bound to this thread");
	return w->tcp ? paste_tcp_close_after(w, conn) : 0;
}

/* paste_h_log_copy_extents -- the copying baseline for a record of several pieces */
double paste_h_log_copy_extents(uint32_t ptr, uint32_t n)
{
	struct paste_worker *w = paste_cur;
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "log: no worker bound to this thread");
	const struct paste_extent *src = (const struct paste_extent *)wasm_range(w, ptr, (uint64_t)n * sizeof(*src));
	if (!src || (ptr & 3) || n > PASTE_REC_MAX_EXTENTS)
		return import_error(paste_set_error(PASTE_ERR_HANDLER, "log_copy_extents: %u extents at %u are not in the handler's memory", n, ptr));
	pthread_mutex_lock(&w->pool->lock);
	double r = copy_and_log(w->pool, src, n, "log_copy_extents");
	pthread_mutex_unlock(&w->pool->lock);
	return r;
}

/*
 * paste_mem_native_wal -- the mem-wal handler's zero-copy mode as a plain C
 * loop: fill, log every request by reference, queue an 8-byte ack, release,
 * commit. The benchmark runs it next to the Wasm handler to show what the
 * sandbox costs. Returns requests handled.
 */
int paste_mem_native_wal(uint32_t size, uint32_t max, uint32_t conns)
{
	struct paste_worker *w = paste_cur;
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "mem port: no worker bound to this thread");
	int filled = paste_mem_fill(size, max, conns);
	if (filled <= 0)
		return filled;
	struct paste_pool *p = w->pool;
	uint32_t n = p->sb.ring_slots;
	for (uint32_t s = w->rx_head; s != w->rx_tail; s = ring_next(s, n)) {
		struct netmap_slot *slot = &w->rx->slot[s];
		struct paste_extent e = { .buf_idx = slot->buf_idx, .off = 0, .len = slot->len };
		pthread_mutex_lock(&p->lock);
		int64_t seq = paste_log_append(p, &e, 1);
		pthread_mutex_unlock(&p->lock);
		if (seq < 0)
			return (int)seq;
		int rc = queue_reply(w, slot_conn(slot), 0, 0, &seq, 8);
		if (rc)
			return rc;
	}
	__atomic_store_n(&w->rx->head, w->rx_tail, __ATOMIC_RELEASE);
	int rc = paste_rx_release(0);
	if (rc < 0)
		return rc;
	int64_t c = paste_commit();
	return c < 0 ? (int)c : filled;
}

/*
 * paste_mem_fill_bytes -- the mem port with the caller's bytes: one request
 * of len bytes (at most a buffer) into the next RX slot, from conn, as recv()
 * would put it there. For workloads that speak a handler's protocol.
 */
int paste_mem_fill_bytes(const void *data, uint32_t len, uint32_t conn)
{
	struct paste_worker *w = paste_cur;
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "mem port: no worker bound to this thread");
	struct paste_pool *p = w->pool;
	if (len == 0 || len > p->sb.buf_size)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "mem port: %u bytes do not fit a %u-byte buffer", len, p->sb.buf_size);
	pthread_mutex_lock(&p->lock);
	uint8_t *d;
	struct netmap_slot *slot = paste_log_room(p) ? paste_rx_claim(w, &d) : NULL;
	if (slot) {
		memcpy(d, data, len);
		paste_rx_publish(w, slot, len, conn);
	}
	pthread_mutex_unlock(&p->lock);
	return slot ? 1 : 0;
}
