/*
 * bufs.c -- the pool's buffers as native code sees them: where each one is
 * (enum paste_buf_state), the free stack, how many live records reference it
 * and whether a handler holds it for a request still arriving.
 *
 * Native code trusts these books, never the window: a handler can write any
 * buf_idx into a slot, so every index it names is checked against them. A
 * buffer goes back on the free stack only when it is out of every ring, no
 * live record references it and no handler holds it.
 *
 * Called with the pool lock held (the log and every worker share the books).
 */
#include "internal.h"

#include <stdlib.h>

int paste_bufs_init(struct paste_pool *p)
{
	uint32_t n = p->sb.nbufs;
	p->refs = calloc(n, sizeof(*p->refs));
	p->holds = calloc(n, sizeof(*p->holds));
	p->hold_next = calloc(n, sizeof(*p->hold_next));
	p->bstate = calloc(n, 1);
	p->free_stack = malloc((size_t)n * sizeof(*p->free_stack));
	if (!p->refs || !p->holds || !p->hold_next || !p->bstate || !p->free_stack) {
		paste_bufs_free(p);
		return paste_set_error(PASTE_ERR_IO, "recover: out of memory for %u buffers", n);
	}
	p->bstate[0] = BS_RESERVED;   /* netmap's "invalid" buffer: never handed out */
	p->nfree = 0;
	p->nlogged = 0;
	p->nholds = 0;
	p->pack_buf = p->pack_used = 0;
	return 0;
}

void paste_bufs_free(struct paste_pool *p)
{
	free(p->refs);
	free(p->holds);
	free(p->hold_next);
	free(p->bstate);
	free(p->free_stack);
	p->refs = NULL;
	p->holds = NULL;
	p->hold_next = NULL;
	p->bstate = NULL;
	p->free_stack = NULL;
}

void paste_bufs_stack_free(struct paste_pool *p)
{
	for (uint32_t b = 1; b < p->sb.nbufs; b++)
		if (p->bstate[b] == BS_FREE)
			paste_free_push(p, b);
}

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
	if (b == p->pack_buf)
		p->pack_buf = 0;   /* the cleaner's shared buffer emptied: its next copy starts a fresh one */
	paste_buf_state(p, b, BS_FREE);
	p->free_stack[p->nfree++] = b;
}

void paste_buf_maybe_free(struct paste_pool *p, uint32_t b)
{
	if (p->refs[b] == 0 && p->holds[b] == 0 && p->bstate[b] == BS_LOGGED)
		paste_free_push(p, b);
}

/* ------------------------------------------------------------------ holds */

/*
 * A handler holds a buffer when a request spans several recv()s: the slot
 * goes back to the ring, the buffer stays. Each connection keeps its held
 * buffers on a list linked through hold_next, so a connection that goes away
 * gives every one of them back in one walk.
 */

int paste_hold_push(struct paste_pool *p, uint32_t *head, uint32_t b)
{
	if (!paste_buf_loggable(p, b))
		return paste_set_error(PASTE_ERR_HANDLER, "hold: buffer %u is not a received or logged buffer", b);
	if (p->holds[b])
		return paste_set_error(PASTE_ERR_HANDLER, "hold: buffer %u is already held", b);
	p->holds[b] = 1;
	p->nholds++;
	p->hold_next[b] = *head;
	*head = b;
	return 0;
}

int paste_hold_remove(struct paste_pool *p, uint32_t *head, uint32_t b)
{
	uint32_t *link = head;
	while (*link && *link != b)
		link = &p->hold_next[*link];
	if (!*link)
		return PASTE_ERR_HANDLER;   /* the caller names the connection in the message */
	*link = p->hold_next[b];
	p->hold_next[b] = 0;
	p->holds[b] = 0;
	p->nholds--;
	paste_buf_maybe_free(p, b);
	return 0;
}

void paste_hold_drop_all(struct paste_pool *p, uint32_t *head)
{
	for (uint32_t b = *head; b;) {
		uint32_t next = p->hold_next[b];
		p->hold_next[b] = 0;
		p->holds[b] = 0;
		p->nholds--;
		paste_buf_maybe_free(p, b);
		b = next;
	}
	*head = 0;
}
