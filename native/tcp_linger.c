/*
 * tcp_linger.c -- closing a connection in stages (RFC 9112, 9.6 "Tear-down").
 *
 * When the server ends a connection the client is still sending on (a
 * handler refused a request and asked for the close, or a deploy cut a
 * request off), an immediate close() with input unread, or input arriving
 * after it, makes the kernel answer with a reset, and a reset can destroy
 * the client's copy of the last reply before the client reads it: the 400
 * that said why is lost. So the port half-closes instead (shutdown SHUT_WR:
 * the reply, then a FIN), keeps the socket open while it discards what the
 * client still sends, and closes it once the client has closed too, or after
 * LINGER_MS. The fd stays open meanwhile, so the connection id (the fd) is
 * not reused before the close.
 *
 * Both engines share it: the port services the list at every poll, with
 * non-blocking reads, so it needs nothing from epoll or io_uring.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINGER_MS 1000u

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* drained -- discard what fd has; true once the peer has closed its side too (or the socket failed) */
static bool drained(int fd)
{
	static char sink[4096];   /* discarded bytes: any thread may scribble here */
	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n > 0)
			continue;
		if (n == 0)
			return true;   /* the peer's FIN: it sends nothing more */
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			break;
		return true;   /* reset or failed: nothing left to protect */
	}
	return false;
}

void paste_linger_add(struct paste_linger *l, int fd)
{
	shutdown(fd, SHUT_WR);   /* what was sent goes out, then our FIN */
	if (drained(fd)) {
		close(fd);
		return;
	}
	if (l->n == l->cap) {
		uint32_t cap = l->cap ? l->cap * 2 : 16;
		struct paste_linger_fd *v = realloc(l->fds, cap * sizeof(*v));
		if (!v) {
			close(fd);   /* no room to wait: close now, as before */
			return;
		}
		l->fds = v;
		l->cap = cap;
	}
	l->fds[l->n++] = (struct paste_linger_fd){ .fd = fd, .until_ms = mono_ms() + LINGER_MS };
}

void paste_linger_service(struct paste_linger *l)
{
	if (!l->n)
		return;
	uint64_t now = mono_ms();
	for (uint32_t i = 0; i < l->n;) {
		struct paste_linger_fd *f = &l->fds[i];
		if (drained(f->fd) || now >= f->until_ms) {
			close(f->fd);
			*f = l->fds[--l->n];
		} else {
			i++;
		}
	}
}

void paste_linger_free(struct paste_linger *l)
{
	for (uint32_t i = 0; i < l->n; i++)
		close(l->fds[i].fd);
	free(l->fds);
	l->fds = NULL;
	l->n = l->cap = 0;
}
