/*
 * uring-exit.c -- a probe, not part of the library: what becomes of a
 * SINGLE_ISSUER|DEFER_TASKRUN ring's multishot receive when the thread that
 * submitted it exits without reaping (a handler's worker thread terminated),
 * and whether the ring the next thread opens receives everything after it.
 * The io_uring engine's takeover relies on the answer (host/core/tcp.ts).
 *
 *   cc -O1 -o /tmp/uring-exit native/probes/uring-exit.c -luring -lpthread
 *   /tmp/uring-exit          # the old ring left open while the new one serves
 *   /tmp/uring-exit close    # the old ring closed first, as uring_takeover does
 *
 * Seen on Linux 6.18: "old ring: 0 cqes", "new ring: 5 cqes", nothing left in
 * the socket, in both forms.
 */
#define _GNU_SOURCE
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static int sv[2];
static volatile int armed = 0, go_exit = 0;
static struct io_uring r1, r2;

static void setup(struct io_uring *r) {
	struct io_uring_params p = { .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN };
	if (io_uring_queue_init_params(64, r, &p)) exit(1);
	struct io_uring_buf_ring *br = mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
	io_uring_buf_ring_init(br);
	struct io_uring_buf_reg reg = { .ring_addr = (unsigned long)br, .ring_entries = 8, .bgid = 0 };
	if (io_uring_register_buf_ring(r, &reg, 0)) exit(2);
	char *bufs = malloc(8 * 1024);
	for (int i = 0; i < 8; i++) io_uring_buf_ring_add(br, bufs + i * 1024, 1024, i, io_uring_buf_ring_mask(8), i);
	io_uring_buf_ring_advance(br, 8);
	struct io_uring_sqe *sqe = io_uring_get_sqe(r);
	io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = 0;
	io_uring_submit(r);
}
static void *worker(void *a) { (void)a; setup(&r1); armed = 1; while (!go_exit) usleep(1000); return NULL; }
static int count(struct io_uring *r, const char *name) {
	unsigned head; struct io_uring_cqe *cqe; int n = 0;
	io_uring_for_each_cqe(r, head, cqe) { printf("  %s: res=%d more=%d\n", name, cqe->res, !!(cqe->flags & IORING_CQE_F_MORE)); n++; }
	return n;
}
int main(int argc, char **argv) {
	int close_first = argc > 1;
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	pthread_t t; pthread_create(&t, NULL, worker, NULL);
	while (!armed) usleep(100);
	go_exit = 1; pthread_join(t, NULL);
	if (close_first) io_uring_queue_exit(&r1);
	setup(&r2);                                   /* the taking-over thread's ring */
	int got = 0;
	for (int k = 0; k < 5; k++) {
		write(sv[1], "request!", 8);
		struct io_uring_cqe *cqe; struct __kernel_timespec ts = { 0, 20000000 };
		io_uring_submit_and_wait_timeout(&r2, &cqe, 1, &ts, NULL);
		got += count(&r2, "new");
		io_uring_cq_advance(&r2, io_uring_cq_ready(&r2));
		usleep(20000);
	}
	if (!close_first) printf("old ring: %d cqes\n", count(&r1, "old"));
	printf("new ring: %d cqes\n", got);
	char b[256]; int n = recv(sv[0], b, sizeof b, MSG_DONTWAIT);
	printf("left in the socket: %d bytes (of 40 sent)\n", n);
	return 0;
}
