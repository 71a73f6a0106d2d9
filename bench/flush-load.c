/*
 * flush-load.c -- what a load costs from a cache line whose flush is still
 * in flight, against the same load made before the flush. The commit path
 * (native/log.c, flush_batch) reads each record's fields before it flushes
 * the record's lines for this reason.
 *
 *   cc -O2 -o /tmp/flush-load bench/flush-load.c
 *   /tmp/flush-load
 *
 * For each of 1024 lines (64 KiB, in cache): flush, then load a field of the
 * same line; or load, then flush. Best of 200 passes, TSC ticks per line.
 */
#include <cpuid.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <x86intrin.h>

#define LINES 1024
static uint8_t buf[LINES * 64] __attribute__((aligned(64)));

enum { LOAD, FLUSH_THEN_LOAD, LOAD_THEN_FLUSH, FLUSH };
static const char *const names[] = { "load only", "flush, then load", "load, then flush", "flush only" };

__attribute__((target("clwb,clflushopt")))
static double pass(int mode, int opt)
{
	uint64_t best = UINT64_MAX;
	for (int rep = 0; rep < 200; rep++) {
		memset(buf, rep, sizeof buf);
		volatile uint64_t sink = 0;
		uint64_t t = __rdtsc();
		for (int i = 0; i < LINES; i++) {
			uint8_t *l = buf + i * 64;
			if (mode == LOAD_THEN_FLUSH || mode == LOAD)
				sink += *(volatile uint16_t *)(l + 18);
			if (mode != LOAD) {
				if (opt)
					_mm_clflushopt(l);
				else
					_mm_clwb(l);
			}
			if (mode == FLUSH_THEN_LOAD)
				sink += *(volatile uint16_t *)(l + 18);
		}
		_mm_sfence();
		t = __rdtsc() - t;
		if (t < best)
			best = t;
	}
	return (double)best / LINES;
}

int main(void)
{
	unsigned a, b, c, d;
	__cpuid_count(7, 0, a, b, c, d);
	for (int opt = 0; opt < 2; opt++) {
		if (!(b & (1u << (opt ? 23 : 24)))) {
			printf("%s: not on this CPU\n", opt ? "clflushopt" : "clwb");
			continue;
		}
		for (int m = LOAD; m <= FLUSH; m++)
			printf("%-10s %-18s %7.1f ticks a line\n", opt ? "clflushopt" : "clwb", names[m], pass(m, opt));
	}
	return 0;
}
