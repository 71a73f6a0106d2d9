/*
 * cpu.c -- the instructions the commit path depends on, picked once.
 *
 * libpmem's habit: probe cpuid when the library loads, store a function
 * pointer, and never branch on the CPU again on the per-record path. Best
 * first: clwb (writes back, keeps the line cached), clflushopt (evicts, but
 * unordered so many can be in flight under one fence), clflush (evicts,
 * serialising). PASTE_FLUSH=clflushopt|clflush in the environment downgrades
 * the choice, for benchmarks; it never upgrades past what cpuid reports.
 *
 * crc32c (Castagnoli, reflected polynomial 0x82F63B78) runs on the SSE4.2
 * crc32 instruction, three streams at once, when present and on a slicing-by-8 table otherwise; both
 * give identical results (test/crc32c.test.ts checks known answers on both).
 */
#include "internal.h"

#include <cpuid.h>
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

paste_flush_fn paste_flush_lines;
static int flush_kind = PASTE_FLUSH_CLFLUSH;
static int has_sse42;

#define LINE_START(a) ((uintptr_t)(a) & ~(uintptr_t)(PASTE_CACHELINE - 1))

__attribute__((target("clwb")))
static void flush_clwb(const void *addr, size_t len)
{
	for (uintptr_t p = LINE_START(addr); p < (uintptr_t)addr + len; p += PASTE_CACHELINE)
		_mm_clwb((void *)p);
}

__attribute__((target("clflushopt")))
static void flush_clflushopt(const void *addr, size_t len)
{
	for (uintptr_t p = LINE_START(addr); p < (uintptr_t)addr + len; p += PASTE_CACHELINE)
		_mm_clflushopt((void *)p);
}

static void flush_clflush(const void *addr, size_t len)
{
	for (uintptr_t p = LINE_START(addr); p < (uintptr_t)addr + len; p += PASTE_CACHELINE)
		_mm_clflush((const void *)p);
}

/* ------------------------------------------------------------------ crc32c */

static uint32_t crc_table[8][256];

static void crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

uint32_t paste_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t c = ~crc;

	while (len && ((uintptr_t)p & 7)) {
		c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
		len--;
	}
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		w ^= c;
		c = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^
		    crc_table[5][(w >> 16) & 0xff] ^ crc_table[4][(w >> 24) & 0xff] ^
		    crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff] ^
		    crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
	return ~c;
}

/*
 * The SSE4.2 path runs three crc32 streams side by side over blocks of 3 x L
 * bytes: the instruction's latency is three cycles and its throughput one, so
 * one stream leaves two thirds of the unit idle. The CRC register update is
 * linear over GF(2): crc(c, A|B|C) = shift(crc(c, A), 2L) ^ shift(crc(0, B), L)
 * ^ crc(0, C), where shift(x, n) runs n zero bytes through the register. A
 * shift by a fixed n is multiplication by a constant, done with four 256-entry
 * tables made at load time from the 32 shifted unit vectors.
 */
#define CRC_LONG  256   /* L for blocks of 768 bytes: a 1 KiB request has one */
#define CRC_SHORT 64    /* then blocks of 192 */

static uint32_t crc_shift_long[2][4][256], crc_shift_short[2][4][256];   /* [L, 2L][byte lane][byte] */

/* zeros_sw -- n zero bytes through the raw register (no inversion) */
static uint32_t zeros_sw(uint32_t c, size_t n)
{
	while (n--)
		c = (c >> 8) ^ crc_table[0][c & 0xff];
	return c;
}

static void shift_tables_init(uint32_t t[4][256], size_t n)
{
	uint32_t unit[32];
	for (int b = 0; b < 32; b++)
		unit[b] = zeros_sw(1u << b, n);
	for (int lane = 0; lane < 4; lane++)
		for (uint32_t v = 0; v < 256; v++) {
			uint32_t x = 0;
			for (int b = 0; b < 8; b++)
				if (v & (1u << b))
					x ^= unit[lane * 8 + b];
			t[lane][v] = x;
		}
}

static inline uint32_t crc_shift(uint32_t t[4][256], uint32_t c)
{
	return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
}

__attribute__((target("sse4.2")))
static inline uint64_t crc3_block(uint64_t c, const uint8_t *p, size_t l, uint32_t sh[2][4][256])
{
	uint64_t c1 = 0, c2 = 0;
	for (size_t i = 0; i < l; i += 8) {
		uint64_t a, b, d;
		memcpy(&a, p + i, 8);
		memcpy(&b, p + l + i, 8);
		memcpy(&d, p + 2 * l + i, 8);
		c = _mm_crc32_u64(c, a);
		c1 = _mm_crc32_u64(c1, b);
		c2 = _mm_crc32_u64(c2, d);
	}
	return crc_shift(sh[1], (uint32_t)c) ^ crc_shift(sh[0], (uint32_t)c1) ^ (uint32_t)c2;
}

__attribute__((target("sse4.2")))
static uint32_t crc32c_sse42(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t c = (uint32_t)~crc;

	while (len && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		len--;
	}
	for (; len >= 3 * CRC_LONG; p += 3 * CRC_LONG, len -= 3 * CRC_LONG)
		c = crc3_block(c, p, CRC_LONG, crc_shift_long);
	for (; len >= 3 * CRC_SHORT; p += 3 * CRC_SHORT, len -= 3 * CRC_SHORT)
		c = crc3_block(c, p, CRC_SHORT, crc_shift_short);
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = _mm_crc32_u64(c, w);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

uint32_t paste_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	return has_sse42 ? crc32c_sse42(crc, buf, len) : paste_crc32c_sw(crc, buf, len);
}

static uint32_t (*crc_fn)(uint32_t, const void *, size_t) = paste_crc32c_sw;

uint32_t paste_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return crc_fn(crc, buf, len);
}

/* ------------------------------------------------------------------- init */

__attribute__((constructor))
static void cpu_init(void)
{
	unsigned a, b, c, d;
	bool clwb = false, clflushopt = false;

	crc_table_init();
	shift_tables_init(crc_shift_long[0], CRC_LONG);
	shift_tables_init(crc_shift_long[1], 2 * CRC_LONG);
	shift_tables_init(crc_shift_short[0], CRC_SHORT);
	shift_tables_init(crc_shift_short[1], 2 * CRC_SHORT);
	if (__get_cpuid(1, &a, &b, &c, &d))
		has_sse42 = (c & bit_SSE4_2) != 0;
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
		clwb = (b & (1u << 24)) != 0;
		clflushopt = (b & (1u << 23)) != 0;
	}
	const char *want = getenv("PASTE_FLUSH");
	if (want && strcmp(want, "clflush") == 0)
		clwb = clflushopt = false;
	else if (want && strcmp(want, "clflushopt") == 0)
		clwb = false;

	if (clwb) {
		flush_kind = PASTE_FLUSH_CLWB;
		paste_flush_lines = flush_clwb;
	} else if (clflushopt) {
		flush_kind = PASTE_FLUSH_CLFLUSHOPT;
		paste_flush_lines = flush_clflushopt;
	} else {
		flush_kind = PASTE_FLUSH_CLFLUSH;
		paste_flush_lines = flush_clflush;
	}
	if (has_sse42)
		crc_fn = crc32c_sse42;
}

int paste_flush_kind(void)
{
	return flush_kind;
}

const char *paste_flush_name(void)
{
	static const char *const names[] = { "clwb", "clflushopt", "clflush" };
	return names[flush_kind];
}

int paste_cpu_has_crc32c(void)
{
	return has_sse42;
}
