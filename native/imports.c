/*
 * imports.c -- the handler ABI: every function a handler imports from module
 * "paste" (assembly/imports.ts declares the same list), in one file. A handler
 * author's log(), reply() or trim() lands here.
 *
 * koffi hands these functions to Wasm as they are, so a handler's log() is
 * one Wasm -> C transition with no JS in between. That is why they take no
 * worker argument: they act on the worker the host entered around its call
 * into the handler (paste_worker_enter ... paste_worker_leave). The worker is
 * per thread, set for the length of one host call, so two runtimes in one
 * thread never see each other's worker, and an import called outside a host
 * call (a handler export called directly) fails with PASTE_ERR_STATE.
 *
 * Every pointer and length a handler passes is checked against its memory,
 * and every buffer index against the buffer books, before native code uses
 * it (invariant 3). A bad one is PASTE_ERR_HANDLER, counted in the stats.
 */
#include "internal.h"

#include <string.h>

/* A copy fills at most this many buffers (128 KiB of 2 KiB buffers): a copy is for small records. */
#define COPY_MAX_DST 64

/* The worker the host entered on this thread; NULL outside a host call. */
static __thread struct paste_worker *entered;

int paste_worker_enter(paste_worker *w, uint32_t flags)
{
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "enter: no worker");
	w->entered = flags;
	w->has_cleaner = (flags & PASTE_ENTER_RESERVE) != 0;
	w->use_reserve = false;
	entered = w;
	if (w->pool->sim)   /* crash testing counts the steps inside the cleaner */
		paste_sim_tag(w->pool, (flags & PASTE_ENTER_CLEAN) ? PASTE_SIM_TAG_CLEAN : 0,
			      (flags & PASTE_ENTER_CLEAN) ? 0 : PASTE_SIM_TAG_CLEAN);
	return 0;
}

void paste_worker_leave(void)
{
	if (entered && entered->pool->sim)
		paste_sim_tag(entered->pool, 0, PASTE_SIM_TAG_CLEAN);
	entered = NULL;
}

static int not_entered(const char *what)
{
	return paste_set_error(PASTE_ERR_STATE, "%s: called outside a host call into the handler (no worker entered)", what);
}

static double import_error(struct paste_worker *w, int rc)
{
	w->pool->stats.handler_errors++;
	return (double)rc;
}

/* wasm_range -- a handler pointer, checked against its memory: NULL if out of bounds */
static uint8_t *wasm_range(struct paste_worker *w, uint32_t ptr, uint64_t len)
{
	if ((uint64_t)ptr + len > w->wasm_len)
		return NULL;
	return w->wasm + ptr;
}

/* one_extent -- an import's (buf_idx, off, len) as an extent; 0, or the handler error */
static int one_extent(uint32_t buf_idx, uint32_t off, uint32_t len, const char *what, struct paste_extent *e)
{
	if (off > UINT16_MAX || len > UINT16_MAX)
		return paste_set_error(PASTE_ERR_HANDLER, "%s: offset %u length %u do not fit a buffer", what, off, len);
	*e = (struct paste_extent){ .buf_idx = buf_idx, .off = (uint16_t)off, .len = (uint16_t)len };
	return 0;
}

/*
 * reserved -- outside on_clean, a handler with a cleaner may not log into the
 * reserve (log.c): its request gets an error reply instead, and the cleaner
 * keeps room to work. The refusal is not a handler error: nothing is wrong
 * with the request but the space. Called with the pool lock held.
 */
static int reserved(struct paste_worker *w, uint32_t n)
{
	if ((w->entered & (PASTE_ENTER_RESERVE | PASTE_ENTER_CLEAN)) != PASTE_ENTER_RESERVE || w->use_reserve)
		return 0;
	int rc = paste_log_reserved(w->pool, n);
	if (rc)
		w->pool->stats.refused++;
	return rc;
}

static int64_t copy_and_log(struct paste_worker *w, const struct paste_extent *src, uint32_t n, const char *what,
			    bool pack, struct paste_extent *dst, uint32_t *nd);

/*
 * log_locked -- one record under the pool lock: by reference (copy == NULL),
 * or copied (copy names the import; pack: densely into the cleaner's shared
 * buffer), in which case the copy's extents are left in dst (*nd of them,
 * COPY_MAX_DST room) when dst is given. The seq, a refusal for want of space
 * (not a handler error), or the handler error.
 */
static double log_locked(struct paste_worker *w, const struct paste_extent *ext, uint32_t n, const char *copy, bool pack,
			 struct paste_extent *dst, uint32_t *nd)
{
	struct paste_extent scratch[COPY_MAX_DST];
	uint32_t k = 0;
	pthread_mutex_lock(&w->pool->lock);
	int rc = reserved(w, n);
	int64_t seq = rc ? rc : copy ? copy_and_log(w, ext, n, copy, pack, dst ? dst : scratch, nd ? nd : &k)
				 : paste_log_append(w->pool, ext, n);
	pthread_mutex_unlock(&w->pool->lock);
	if (rc)
		return (double)rc;
	return seq < 0 ? import_error(w, (int)seq) : (double)seq;
}

/* ------------------------------------------------------------------ log */

double paste_h_log(uint32_t buf_idx, uint32_t off, uint32_t len)
{
	struct paste_worker *w = entered;
	if (!w)
		return not_entered("log");
	struct paste_extent e;
	int rc = one_extent(buf_idx, off, len, "log", &e);
	return rc ? import_error(w, rc) : log_locked(w, &e, 1, NULL, false, NULL, NULL);
}

double paste_h_log_extents(uint32_t ptr, uint32_t n)
{
	struct paste_worker *w = entered;
	if (!w)
		return not_entered("log");
	const struct paste_extent *ext = (const struct paste_extent *)wasm_range(w, ptr, (uint64_t)n * sizeof(*ext));
	if (!ext || (ptr & 3))
		return import_error(w, paste_set_error(PASTE_ERR_HANDLER,
			"log: %u extents at %u are outside the handler's memory or misaligned", n, ptr));
	return log_locked(w, ext, n, NULL, false, NULL, NULL);
}

/*
 * copy_and_log -- log copies of the pieces as one record. Two users:
 *  - the copying baseline PASTE is measured against (log_copy*): the pieces
 *    packed into fresh buffers, same record format and recovery as logging
 *    by reference; the difference is the memcpy and the lines it dirties;
 *  - the cleaner (log_pack, pack = true): small live values copied densely
 *    into the pool's open shared buffer (p->pack_buf), so that many share a
 *    buffer instead of each holding the one it arrived in. A shared buffer
 *    is freed when the last record in it is trimmed (bufs.c).
 * Copies only ever go to bytes no record references yet, so a crash in the
 * middle leaves every committed record as it was. Called with the pool lock
 * held; on failure every buffer it took goes back.
 */

static int64_t copy_and_log(struct paste_worker *w, const struct paste_extent *src, uint32_t n, const char *what,
			    bool pack, struct paste_extent *dst, uint32_t *nd)
{
	struct paste_pool *p = w->pool;
	uint32_t room = 0, fresh = 0;   /* dst[fresh..] are buffers this call took from the free list */
	uint64_t copied = 0;
	int rc = 0;
	*nd = 0;
	if (pack && p->pack_buf) {
		dst[0] = (struct paste_extent){ .buf_idx = p->pack_buf, .off = (uint16_t)p->pack_used, .len = 0 };
		room = p->sb.buf_size - p->pack_used;
		*nd = fresh = 1;
	}
	for (uint32_t i = 0; i < n && !rc; i++) {
		const struct paste_extent *e = &src[i];
		if (!paste_buf_loggable(p, e->buf_idx) || e->len == 0 || (uint32_t)e->off + e->len > p->sb.buf_size) {
			rc = paste_set_error(PASTE_ERR_HANDLER,
				"%s: extent %u (buffer %u [%u, +%u)) is not the handler's to log", what, i, e->buf_idx, e->off, e->len);
			break;
		}
		for (uint32_t done = 0; done < e->len;) {
			if (!room) {
				uint32_t b = *nd < COPY_MAX_DST ? paste_free_pop(p) : 0;
				if (!b) {
					rc = paste_set_error(PASTE_ERR_POOL_FULL, "%s: no free buffer to copy into; trim", what);
					break;
				}
				paste_buf_state(p, b, BS_LOGGED);
				dst[(*nd)++] = (struct paste_extent){ .buf_idx = b, .off = 0, .len = 0 };
				room = p->sb.buf_size;
			}
			struct paste_extent *d = &dst[*nd - 1];
			uint32_t k = e->len - done < room ? e->len - done : room;
			memcpy(paste_buf(p, d->buf_idx) + d->off + d->len, paste_buf(p, e->buf_idx) + e->off + done, k);
			d->len = (uint16_t)(d->len + k);
			room -= k;
			done += k;
			copied += k;
		}
	}
	if (*nd && dst[0].len == 0 && fresh == 1) {
		/* the open shared buffer was full: the record starts in the next one */
		memmove(dst, dst + 1, (size_t)(*nd - 1) * sizeof(*dst));
		(*nd)--;
		fresh = 0;
	}
	if (pack && p->sim)
		paste_sim_tag(p, PASTE_SIM_TAG_PACK, 0);
	int64_t seq = rc ? rc : paste_log_append(p, dst, *nd);
	if (pack && p->sim)
		paste_sim_tag(p, 0, PASTE_SIM_TAG_PACK);
	if (seq < 0) {
		for (uint32_t k = fresh; k < *nd; k++)
			paste_buf_maybe_free(p, dst[k].buf_idx);
		return seq;
	}
	if (pack) {
		struct paste_extent *last = &dst[*nd - 1];
		p->pack_buf = last->buf_idx;
		p->pack_used = (uint32_t)last->off + last->len;
	}
	p->stats.payload_copies += copied;
	return seq;
}

/* paste_h_log_copy -- the copying baseline for one range of one buffer */
double paste_h_log_copy(uint32_t buf_idx, uint32_t off, uint32_t len)
{
	struct paste_worker *w = entered;
	if (!w)
		return not_entered("log_copy");
	struct paste_extent e;
	int rc = one_extent(buf_idx, off, len, "log_copy", &e);
	return rc ? import_error(w, rc) : log_locked(w, &e, 1, "log_copy", false, NULL, NULL);
}

/* paste_h_log_copy_extents -- the copying baseline for a record of several pieces */
double paste_h_log_copy_extents(uint32_t ptr, uint32_t n)
{
	struct paste_worker *w = entered;
	if (!w)
		return not_entered("log_copy_extents");
	const struct paste_extent *src = (const struct paste_extent *)wasm_range(w, ptr, (uint64_t)n * sizeof(*src));
	if (!src || (ptr & 3) || n > PASTE_REC_MAX_EXTENTS)
		return import_error(w, paste_set_error(PASTE_ERR_HANDLER,
			"log_copy_extents: %u extents at %u are not in the handler's memory", n, ptr));
	return log_locked(w, src, n, "log_copy_extents", false, NULL, NULL);
}

double paste_h_trim(double upto)
{
	struct paste_worker *w = entered;
	if (!w)
		return not_entered("trim");
	if (!(upto >= 0))
		return import_error(w, paste_set_error(PASTE_ERR_HANDLER, "trim: bad sequence number"));
	/* Past the committed sequence is a handler's mistake, not a wish the host
	 * can half grant: records not yet durable are not the handler's to release. */
	uint64_t committed = __atomic_load_n(&w->pool->committed_seq, __ATOMIC_ACQUIRE);
	if (upto > (double)committed)
		return import_error(w, paste_set_error(PASTE_ERR_HANDLER,
			"trim: %.0f is beyond the committed sequence %llu (only durable records can be released)",
			upto, (unsigned long long)committed));
	return (double)paste_trim(w->pool, (uint64_t)upto);
}

double paste_h_committed(void)
{
	struct paste_worker *w = entered;
	return w ? (double)w->pool->committed_seq : not_entered("committed");
}

/* --------------------------------------------------------------- replies */

int paste_h_reply(uint32_t conn, uint32_t ptr, uint32_t len)
{
	struct paste_worker *w = entered;
	if (!w)
		return not_entered("reply");
	const uint8_t *src = wasm_range(w, ptr, len);
	if (!src)
		return (int)import_error(w, paste_set_error(PASTE_ERR_HANDLER,
			"reply: [%u, +%u) is outside the handler's memory", ptr, len));
	return paste_reply_queue(w, conn, 0, 0, src, len);
}

/*
 * paste_h_replies -- n copied replies in one call: n (conn, len) pairs at
 * Wasm address ptr, their bytes one after another at data. The SDK gathers a
 * handler call's replies and hands them over here when the call ends (or
 * before a reply by reference or a close, which must come after them): one
 * crossing of the Wasm boundary per call instead of one per reply. Each is
 * queued as paste_h_reply would queue it; at the first one refused the rest
 * are not queued (a range error names which).
 */
int paste_h_replies(uint32_t ptr, uint32_t n, uint32_t data)
{
	struct paste_worker *w = entered;
	if (!w)
		return not_entered("replies");
	const uint32_t *pairs = (const uint32_t *)wasm_range(w, ptr, (uint64_t)n * 8);
	if (!pairs || (ptr & 3))
		return (int)import_error(w, paste_set_error(PASTE_ERR_HANDLER,
			"replies: %u (conn, len) pairs at %u are outside the handler's memory (or not 4-byte aligned)", n, ptr));
	uint64_t at = data;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t conn = pairs[2 * i], len = pairs[2 * i + 1];
		const uint8_t *src = at + len <= UINT32_MAX ? wasm_range(w, (uint32_t)at, len) : NULL;
		if (!src)
			return (int)import_error(w, paste_set_error(PASTE_ERR_HANDLER,
				"replies: reply %u of %u, [%llu, +%u), is outside the handler's memory", i, n, (unsigned long long)at, len));
		int rc = paste_reply_queue(w, conn, 0, 0, src, len);
		if (rc)
			return (int)import_error(w, rc);
		at += len;
	}
	return 0;
}

int paste_h_reply_ref(uint32_t conn, uint32_t buf_idx, uint32_t off, uint32_t len)
{
	struct paste_worker *w = entered;
	if (!w)
		return not_entered("reply_ref");
	struct paste_pool *p = w->pool;
	if (!paste_buf_loggable(p, buf_idx) || (uint64_t)off + len > p->sb.buf_size)
		return (int)import_error(w, paste_set_error(PASTE_ERR_HANDLER,
			"reply_ref: buffer %u [%u, +%u) is not a logged, held or received buffer", buf_idx, off, len));
	/* Sent at this batch's commit, before any buffer can be reused: safe by reference. */
	return paste_reply_queue(w, conn, buf_idx, off, NULL, len);
}

/* paste_h_close -- close conn after the replies queued so far have been sent */
int paste_h_close(uint32_t conn)
{
	struct paste_worker *w = entered;
	if (!w)
		return not_entered("close");
	return w->port->close_after(w, conn);
}

/* ----------------------------------------------------------------- holds */

/* paste_h_hold -- keep a received buffer for conn after its slot is released (a request still arriving) */
int paste_h_hold(uint32_t buf_idx, uint32_t conn)
{
	struct paste_worker *w = entered;
	if (!w)
		return not_entered("hold");
	struct paste_conn *c = paste_conn_get(w, conn);
	if (!c)
		return paste_set_error(PASTE_ERR_IO, "hold: out of memory for connection %u", conn);
	pthread_mutex_lock(&w->pool->lock);
	int rc = paste_hold_push(w->pool, &c->held, buf_idx);
	pthread_mutex_unlock(&w->pool->lock);
	return rc ? (int)import_error(w, rc) : 0;
}

/* paste_h_unhold -- give a held buffer back: free once the log does not reference it */
int paste_h_unhold(uint32_t buf_idx, uint32_t conn)
{
	struct paste_worker *w = entered;
	if (!w)
		return not_entered("unhold");
	int rc = PASTE_ERR_HANDLER;
	if (conn < w->nconns) {
		pthread_mutex_lock(&w->pool->lock);
		rc = paste_hold_remove(w->pool, &w->conns[conn].held, buf_idx);
		pthread_mutex_unlock(&w->pool->lock);
	}
	if (rc)
		return (int)import_error(w, paste_set_error(PASTE_ERR_HANDLER,
			"unhold: connection %u does not hold buffer %u", conn, buf_idx));
	return 0;
}

/* --------------------------------------------------------------- cleaning */

/* paste_h_use_reserve -- a handler vouches that what it logs next frees space (a delete): the reserve may take it */
int paste_h_use_reserve(uint32_t on)
{
	struct paste_worker *w = entered;
	if (!w)
		return not_entered("use_reserve");
	w->use_reserve = on != 0;
	return 0;
}

/* paste_h_pressure -- the pool's space, for the handler's cleaner to pace itself */
int paste_h_pressure(uint32_t ptr)
{
	struct paste_worker *w = entered;
	if (!w)
		return not_entered("pressure");
	uint8_t *d = wasm_range(w, ptr, sizeof(struct paste_pressure));
	if (!d || (ptr & 7))
		return (int)import_error(w, paste_set_error(PASTE_ERR_HANDLER,
			"pressure: [%u, +%zu) is outside the handler's memory or misaligned", ptr, sizeof(struct paste_pressure)));
	struct paste_pressure pr;
	pthread_mutex_lock(&w->pool->lock);
	paste_log_pressure(w->pool, &pr);
	pthread_mutex_unlock(&w->pool->lock);
	memcpy(d, &pr, sizeof(pr));
	return 0;
}

/* paste_h_log_pack -- the cleaner's copy of a small live record into shared buffers; where it went at out */
double paste_h_log_pack(uint32_t ptr, uint32_t n, uint32_t out, uint32_t out_cap)
{
	struct paste_worker *w = entered;
	if (!w)
		return not_entered("log_pack");
	const struct paste_extent *src = (const struct paste_extent *)wasm_range(w, ptr, (uint64_t)n * sizeof(*src));
	uint8_t *o = wasm_range(w, out, 8 + (uint64_t)out_cap * sizeof(struct paste_extent));
	if (!src || !o || (ptr & 3) || (out & 3) || n > PASTE_REC_MAX_EXTENTS)
		return import_error(w, paste_set_error(PASTE_ERR_HANDLER,
			"log_pack: %u extents at %u (out %u, room for %u) are not in the handler's memory", n, ptr, out, out_cap));
	struct paste_extent dst[COPY_MAX_DST];
	uint32_t nd = 0;
	double seq = log_locked(w, src, n, "log_pack", true, dst, &nd);
	if (seq < 0)
		return seq;
	uint32_t count = nd < out_cap ? nd : out_cap, zero = 0;
	memcpy(o, &nd, 4);
	memcpy(o + 4, &zero, 4);
	memcpy(o + 8, dst, (size_t)count * sizeof(*dst));
	return seq;
}

/* ----------------------------------------------------------------- error */

/* paste_h_error -- this thread's last error message into the handler's memory */
int paste_h_error(uint32_t ptr, uint32_t cap)
{
	struct paste_worker *w = entered;
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
