/*
 * tcp_bind.c -- the listening socket both TCP engines serve on: resolve the
 * host, bind, listen (non-blocking, close-on-exec; SO_REUSEADDR so that a
 * restarted host gets its port back at once), and the open-files limit a
 * server of thousands of connections needs.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* paste_raise_nofile -- lift the soft open-files limit to the hard one: a server holds thousands of sockets */
int64_t paste_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return paste_set_errno(errno, "getrlimit");
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return (int64_t)rl.rlim_cur;
}

int paste_tcp_bind(const char *host, uint32_t port, int backlog)
{
	paste_raise_nofile();
	if (port > 65535)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "listen: port %u is out of range", port);
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai;
	char ports[8];
	snprintf(ports, sizeof(ports), "%u", port);
	int gai = getaddrinfo(host, ports, &hints, &ai);
	if (gai)
		return paste_set_error(PASTE_ERR_INVALID_ARG, "listen: cannot resolve %s: %s", host, gai_strerror(gai));
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return paste_set_errno(errno, "listen: socket");
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		int e = errno;
		freeaddrinfo(ai);
		close(fd);
		if (e == EADDRINUSE)
			return paste_set_error(PASTE_ERR_ADDR_IN_USE, "%s:%u is already in use by another process", host, port);
		return paste_set_errno(e, "listen: bind %s:%u", host, port);
	}
	freeaddrinfo(ai);
	if (listen(fd, backlog > 0 ? backlog : 4096) != 0) {
		int e = errno;
		close(fd);
		return paste_set_errno(e, "listen on %s:%u", host, port);
	}
	return fd;
}
