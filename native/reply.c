/*
 * reply.c -- the end of a batch: the replies a handler queued wait here until
 * the batch's records are durable, and only then go to the port (invariant 4:
 * an ack never precedes durability).
 *
 * A reply is queued either as a copy of a few bytes from the handler's memory
 * or as a reference to bytes in a pool buffer (sent from the pool without a
 * copy: the buffer cannot be reused before the commit that releases it).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ byte queues */

int paste_bytes_reserve(struct paste_bytes *q, size_t more)
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

/*
 * paste_bytes_clear -- empty a byte queue; one that grew past BYTES_KEEP (a
 * large reply once) gives its memory back, so that a batch or a connection
 * that needed megabytes once does not hold them for the rest of the run.
 */
void paste_bytes_clear(struct paste_bytes *q)
{
	q->len = 0;
	if (q->cap > BYTES_KEEP) {
		free(q->data);
		q->data = NULL;
		q->cap = 0;
	}
}

int paste_bytes_append(struct paste_bytes *q, const void *data, size_t len)
{
	int rc = paste_bytes_reserve(q, len);
	if (rc)
		return rc;
	memcpy(q->data + q->len, data, len);
	q->len += len;
	return 0;
}

/* ---------------------------------------------------------- the reply queue */

/*
 * A reply queued during a batch: a header, then len bytes inline, or (buf != 0)
 * a reference to bytes in a pool buffer.
 */
struct pending {
	uint32_t conn;
	uint32_t len;
	uint32_t buf;
	uint32_t off;
};

int paste_reply_queue(struct paste_worker *w, uint32_t conn, uint32_t buf, uint32_t off, const void *src, uint32_t len)
{
	/* Copied bytes are held twice or more before the socket takes them (here,
	 * then in the port's queue): a batch copies at most REPLY_COPY_MAX, so a
	 * handler's bad length (reply(conn, 0, 2^31)) is an error it sees, not
	 * gigabytes the host allocates and copies while the watchdog waits. */
	if (!buf && w->pending.len + len > REPLY_COPY_MAX)
		return paste_set_error(PASTE_ERR_HANDLER,
			"reply: %u bytes would take this batch's copied replies past %u MiB; send large answers by reference "
			"from pool buffers (replyBuffer, replyPieces)", len, REPLY_COPY_MAX >> 20);
	struct pending h = { .conn = conn, .len = len, .buf = buf, .off = off };
	int rc = paste_bytes_reserve(&w->pending, sizeof(h) + (buf ? 0 : len));
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

void paste_reply_drop(struct paste_worker *w)
{
	paste_bytes_clear(&w->pending);
	w->pending_replies = 0;
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
		/* A port that coalesces gets a connection's consecutive replies in one deliver. */
		if (n && (!w->port->coalesce || h.conn != conn || n == 64)) {
			int r = w->port->deliver(w, conn, iov, n);
			if (r && !rc)
				rc = r;
			n = 0;
		}
		conn = h.conn;
		iov[n++] = (struct iovec){ .iov_base = (void *)data, .iov_len = h.len };
		p->stats.reply_bytes += h.len;
	}
	if (n) {
		int r = w->port->deliver(w, conn, iov, n);
		if (r && !rc)
			rc = r;
	}
	p->stats.replies += w->pending_replies;
	paste_reply_drop(w);
	return rc;
}

int64_t paste_commit(paste_worker *w)
{
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "commit: no worker");
	struct paste_pool *p = w->pool;
	pthread_mutex_lock(&p->lock);
	int rc = paste_log_commit(p);
	pthread_mutex_unlock(&p->lock);
	if (rc)
		return rc;   /* nothing is acknowledged: the replies stay queued */
	/* Durable: only now may this batch's replies leave (invariant 4). */
	int64_t n = (int64_t)w->pending_replies;
	rc = release_replies(w);
	w->port->after_commit(w);
	return rc ? rc : n;
}
