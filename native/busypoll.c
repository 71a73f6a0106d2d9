/*
 * busypoll.c -- adaptive busy polling for the TCP port, shared by both
 * engines: a poll that found work soon after it began spins for up to a
 * budget (--busy-poll, microseconds) before it sleeps in the kernel.
 *
 * Why: on this kind of machine (a 2-vCPU VM), going to sleep in
 * io_uring_enter or epoll_wait and being woken for the next request is dearer
 * than the request. The sleeping side pays the scheduler twice, and the
 * client's send, which runs our receive on its own core over loopback, pays
 * an IPI to wake us. A poller that is still running when the data lands is
 * not woken: the kernel only marks the work (io_uring's IORING_SQ_TASKRUN,
 * in memory we read without a system call; epoll's ready list). Measured
 * with bench/pairs.sh, server on core 1, redis-benchmark -t set -d 1024 -c 1
 * on core 0, three alternating rounds (docs/performance.md, "Busy polling"):
 * 20.1-26.3K SET/s with --busy-poll 0, 30.2-35.3K spinning, where Redis with
 * appendfsync always on tmpfs made 25.8-26.8K; p50 0.031-0.039 ms, 0.023
 * spinning. At -c 50 and -c 50 -P 16 the server seldom waits, and the
 * difference was within the noise.
 *
 * Adaptive, so that an idle or lightly loaded server does not burn a core: a
 * poll spins only if the previous one found requests within the budget of
 * starting to wait (its own work before that, the replies it sent, does not
 * count: at -P 16 that alone takes longer than the budget). A spin that runs
 * out disarms it: the next poll sleeps at once, and spinning comes back when
 * a sleep ends within the budget again. Spinning therefore costs at most one
 * budget per request that comes later than the budget, and never runs in
 * two polls in a row that find nothing. Budget 0 turns it off.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <time.h>

/* cpu_relax -- a spin-wait hint: the sibling hyperthread (and the hypervisor) get the pipeline meanwhile */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void paste_busy_begin(struct paste_busy *b)
{
	b->wait0 = 0;
}

void paste_busy_waiting(struct paste_busy *b)
{
	if (b->budget_us && !b->wait0)
		b->wait0 = mono_ns();
}

void paste_busy_end(struct paste_busy *b, int filled)
{
	if (!b->budget_us)
		return;
	/* Requests that came within the budget of the wait's start (or without a
	 * wait): the next poll spins. The poll's own work (the replies it sent,
	 * which at -P 16 take longer than the budget) is not counted. */
	b->armed = filled > 0 && (!b->wait0 || mono_ns() - b->wait0 <= (uint64_t)b->budget_us * 1000u);
}

bool paste_busy_spin(struct paste_busy *b, bool (*ready)(void *arg), void *arg)
{
	if (!b->budget_us || !b->armed)
		return false;
	/* One budget a poll: an engine that spun into work with nothing to
	 * publish (a send's completion) spins on with what is left of it. */
	if (!b->wait0) {
		b->wait0 = mono_ns();
		b->spins++;
	}
	uint64_t end = b->wait0 + (uint64_t)b->budget_us * 1000u;
	for (unsigned i = 1;; i++) {
		if (ready(arg))
			return true;
		cpu_relax();
		if (!(i & 7) && mono_ns() >= end)
			break;
	}
	b->armed = false;   /* nothing came within the budget: sleep at once next time */
	b->misses++;
	return false;
}
