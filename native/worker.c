/*
 * worker.c -- the runtime over a recovered pool: its workers (one RX and one
 * TX ring each, the handler memory bound to them, a port), their
 * connections, replay into a handler, and taking a worker over from a thread
 * that was terminated.
 *
 * The runtime belongs to the process, not to the thread that opened it: the
 * pool's lock, its buffers, the port and every connection outlive a worker
 * thread, so a new thread can take a worker over (paste_worker_takeover) and
 * no connection that was not mid-request is lost.
 */
#define _DEFAULT_SOURCE   /* mincore */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ------------------------------------------------------------ no port */

/*
 * A worker no port has attached to yet: replies have nowhere to go and are
 * dropped, there is nothing to close. The mem port attaches at its first
 * request, the TCP port at listen.
 */
static int none_deliver(struct paste_worker *w, uint32_t conn, const struct iovec *iov, int n)
{
	(void)w; (void)conn; (void)iov; (void)n;
	return 0;
}
static int none_close_after(struct paste_worker *w, uint32_t conn) { (void)w; (void)conn; return 0; }
static void none_after_commit(struct paste_worker *w) { (void)w; }
static uint32_t none_end_conn(struct paste_worker *w, uint32_t conn) { (void)w; (void)conn; return 0; }
static void none_takeover(struct paste_worker *w) { (void)w; }
static void none_detach(struct paste_worker *w) { (void)w; }

static const struct paste_port_ops port_none = {
	.name = "none", .coalesce = false, .deliver = none_deliver, .close_after = none_close_after,
	.after_commit = none_after_commit, .end_conn = none_end_conn, .takeover = none_takeover, .detach = none_detach,
};

bool paste_port_vacant(const struct paste_worker *w)
{
	return w->port == &port_none;
}

void paste_port_attach(struct paste_worker *w, const struct paste_port_ops *ops, void *data)
{
	w->port->detach(w);
	w->port = ops ? ops : &port_none;
	w->port_data = ops ? data : NULL;
}

/* ---------------------------------------------------------- connections */

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
	if (id < w->nconns)
		paste_hold_drop_all(w->pool, &w->conns[id].held);
}

/* ------------------------------------------------------------- runtime */

static void workers_free(struct paste_pool *p)
{
	if (!p->workers)
		return;
	for (uint32_t i = 0; i < p->sb.nrings; i++) {
		struct paste_worker *w = &p->workers[i];
		if (w->port)
			paste_port_attach(w, NULL, NULL);   /* detaches the port: sockets closed */
		for (uint32_t c = 0; c < w->nconns; c++)
			free(w->conns[c].out.data);
		free(w->conns);
		free(w->rx_shadow);
		free(w->pending.data);
	}
	free(p->workers);
	p->workers = NULL;
}

static int workers_init(struct paste_pool *p)
{
	uint32_t n = p->sb.nrings;
	p->workers = calloc(n, sizeof(*p->workers));
	if (!p->workers)
		return paste_set_error(PASTE_ERR_IO, "recover: out of memory for %u workers", n);
	for (uint32_t i = 0; i < n; i++) {
		struct paste_worker *w = &p->workers[i];
		w->pool = p;
		w->id = i;
		w->port = &port_none;
		w->rx_shadow = calloc(p->sb.ring_slots, sizeof(uint32_t));
		if (!w->rx_shadow) {
			workers_free(p);
			return paste_set_error(PASTE_ERR_IO, "recover: out of memory for ring shadows");
		}
	}
	return 0;
}

/* runtime_close -- pool.c calls this at close: finish the batch in flight, end the runtime */
static int runtime_close(struct paste_pool *p)
{
	pthread_mutex_lock(&p->lock);
	int rc = paste_log_commit(p);   /* a batch in flight is finished: its records become durable */
	pthread_mutex_unlock(&p->lock);
	workers_free(p);
	paste_bufs_free(p);
	pthread_mutex_destroy(&p->lock);
	p->recovered = false;
	p->runtime_close = NULL;
	return rc;
}

int paste_pool_recover(paste_pool *p, struct paste_recovery *out)
{
	if (!p || !out)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "recover: no pool");
	if (p->flags & PASTE_OPEN_RDONLY)
		return paste_set_error(PASTE_ERR_READ_ONLY, "recover: %s is open read-only", p->path);
	if (p->recovered)
		return paste_set_error(PASTE_ERR_STATE, "recover: %s was already recovered", p->path);
	memset(out, 0, sizeof(*out));
	out->was_clean = p->prev_clean;

	int rc = paste_bufs_init(p);
	if (rc)
		return rc;
	rc = workers_init(p);
	if (!rc) {
		paste_log_init(p);
		rc = paste_log_recover(p, out);
	}
	if (rc) {
		workers_free(p);
		paste_bufs_free(p);
		return rc;
	}
	paste_bufs_stack_free(p);
	paste_rings_reset(p);
	out->free_bufs = p->nfree;
	pthread_mutex_init(&p->lock, NULL);
	p->runtime_close = runtime_close;
	p->recovered = true;
	return 0;
}

int paste_pool_stats(paste_pool *p, struct paste_stats *out)
{
	if (!p || !out)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "stats: no pool");
	if (!p->recovered)
		return paste_set_error(PASTE_ERR_STATE, "stats: %s has no runtime (open read-write and recover first)", p->path);
	pthread_mutex_lock(&p->lock);
	*out = p->stats;
	out->next_seq = p->next_seq;
	out->committed_seq = p->committed_seq;
	out->log_used = p->vtail - p->head;
	out->log_capacity = p->cap;
	out->free_bufs = p->nfree;
	out->live_bufs = p->nlogged;
	out->log_bytes = p->log_bytes;
	out->hold_bufs = p->nholds;
	out->ring_bufs = p->sb.nbufs - 1 - p->nfree - p->nlogged;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

int paste_pool_pressure(paste_pool *p, struct paste_pressure *out)
{
	if (!p || !out)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "pressure: no pool");
	if (!p->recovered)
		return paste_set_error(PASTE_ERR_STATE, "pressure: %s has no runtime", p->path);
	pthread_mutex_lock(&p->lock);
	paste_log_pressure(p, out);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

int paste_pool_pressure_flags(paste_pool *p)
{
	struct paste_pressure pr;
	int rc = paste_pool_pressure(p, &pr);
	return rc ? rc : (int)pr.flags;
}

/*
 * paste_check_buffers -- after recovery: no buffer is both free and in use.
 * 0, or PASTE_ERR_POOL_CORRUPT naming the first buffer that breaks it.
 */
int paste_check_buffers(paste_pool *p)
{
	if (!p || !p->recovered)
		return paste_set_error(PASTE_ERR_STATE, "check: the pool is not recovered");
	uint8_t *seen = calloc(p->sb.nbufs, 1);
	if (!seen)
		return paste_set_error(PASTE_ERR_IO, "check: out of memory");
	int rc = 0;
	for (uint32_t i = 0; i < p->nfree && !rc; i++) {
		uint32_t b = p->free_stack[i];
		if (b == 0 || b >= p->sb.nbufs)
			rc = paste_set_error(PASTE_ERR_POOL_CORRUPT, "check: free list holds impossible buffer %u", b);
		else if (seen[b]++)
			rc = paste_set_error(PASTE_ERR_POOL_CORRUPT, "check: buffer %u is on the free list twice", b);
		else if (p->refs[b])
			rc = paste_set_error(PASTE_ERR_POOL_CORRUPT, "check: buffer %u is free but %u live records reference it", b, p->refs[b]);
	}
	for (uint32_t w = 0; w < p->sb.nrings && !rc; w++) {
		for (uint32_t s = 0; s < p->sb.ring_slots && !rc; s++) {
			uint32_t rb = p->workers[w].rx_shadow[s], tb = p->workers[w].tx->slot[s].buf_idx;
			if ((rb && seen[rb]) || (tb && seen[tb]))
				rc = paste_set_error(PASTE_ERR_POOL_CORRUPT, "check: ring %u slot %u holds a buffer that is also free", w, s);
		}
	}
	free(seen);
	return rc;
}

/* ------------------------------------------------------------- workers */

int paste_worker_bind(paste_pool *p, uint32_t id, void *mem, uint64_t mem_len, paste_worker **out)
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
	*out = w;
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
	w->port->takeover(w);
	w->wasm = NULL;
	w->wasm_len = 0;

	pthread_mutex_lock(&p->lock);
	int64_t d = paste_log_abort(p);
	int rc = d < 0 ? (int)d : 0;
	*dropped = d < 0 ? 0 : (uint32_t)d;
	paste_reply_drop(w);
	for (uint32_t c = 0; c < w->nconns; c++) {
		if (w->conns[c].held) {
			paste_conn_drop_holds(w, c);
			*closed += w->port->end_conn(w, c);
		}
	}
	for (uint32_t s = w->rx_head; s != w->rx_tail; s = paste_ring_next(s, n)) {
		*closed += w->port->end_conn(w, paste_slot_conn(&w->rx->slot[s]));
		paste_rx_take_back(w, s);
	}
	pthread_mutex_unlock(&p->lock);
	w->rx_head = w->rx_tail;
	__atomic_store_n(&w->rx->head, w->rx_tail, __ATOMIC_RELEASE);
	__atomic_store_n(&w->rx->cur, w->rx_tail, __ATOMIC_RELEASE);
	return rc;
}

int paste_worker_mem_len(paste_worker *w, uint64_t mem_len)
{
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "mem len: no worker");
	w->wasm_len = mem_len;
	return 0;
}

int64_t paste_worker_rx_ring(paste_worker *w)
{
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "rx ring: no worker");
	return (int64_t)w->rx_wasm;
}

/*
 * paste_mem_zero -- give [mem+off, +len) of a handler memory (private
 * anonymous pages) back to the kernel, so it reads as zeros again: a memory
 * reused for a new instance starts as a fresh one would, at the cost of the
 * pages touched (creating a 4 GiB memory costs milliseconds and garbage).
 */
int paste_mem_zero(void *mem, uint64_t off, uint64_t len)
{
	if (((uintptr_t)mem + off) % PASTE_PAGE || len % PASTE_PAGE)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "zero: [%llu, +%llu) is not page aligned",
				       (unsigned long long)off, (unsigned long long)len);
	if (madvise((uint8_t *)mem + off, len, MADV_DONTNEED))
		return paste_set_errno(errno, "madvise");
	return 0;
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

/* --------------------------------------------------------------- replay */

int64_t paste_worker_replay(paste_worker *w, uint64_t pos)
{
	if (!w || !w->wasm)
		return paste_set_error(PASTE_ERR_STATE, "replay: no worker bound to a handler memory");
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
int64_t paste_worker_replay_next(paste_worker *w)
{
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "replay: no worker");
	struct paste_rec_info info;
	for (;;) {
		int rc = paste_log_walk_next(w->pool, &info);
		if (rc <= 0)
			return rc;
		if (info.status == PASTE_REC_OK)   /* a bad checksum was reported by recovery; never exposed */
			return paste_worker_replay(w, info.pos);
	}
}
