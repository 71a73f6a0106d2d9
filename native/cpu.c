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
 * crc32 instruction, three streams at once combined with pclmulqdq, when
 * present, and on a slicing-by-8 table otherwise; both
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
 * The SSE4.2 path runs three crc32 streams side by side: the instruction's
 * latency is three cycles and its throughput one, so one stream leaves two
 * thirds of the unit idle. The CRC register update is linear over GF(2):
 * crc(c, A|B|C) = shift(crc(c, A), 2L) ^ shift(crc(0, B), L) ^ crc(0, C),
 * where shift(x, n) runs n zero bytes through the register, that is,
 * multiplies x by x^(8n) mod P. L is a third of what is left (a multiple of
 * 8, at most CRC_LMAX), so a 1 KiB request is one block and a tail under 24
 * bytes.
 *
 * The shift is one carry-less multiply (pclmulqdq) and one crc32: crc32 of a
 * 64-bit word D from zero is D * x^32 mod P, and the product of two
 * bit-reflected 32-bit values carries one more factor of x, so
 * crc32(0, clmul(x, K)) with K = x^(8n-33) mod P is shift(x, n). K for every
 * L is made at load time (crc_k_init). On a 1069-byte SET this takes
 * 121-155 TSC ticks where the table-combined blocks of 768 and 192 bytes it
 * replaces took 168-175 (paste_crc32c of both libraries dlopen'ed in one
 * process, alternating, best of 5000, hot in cache, AMD EPYC).
 *
 * Without pclmulqdq (no x86-64 CPU with SSE4.2 this project knows of), one
 * crc32 stream.
 */
#define CRC_LMAX 1024
static uint32_t crc_k[CRC_LMAX / 8 + 1][2];   /* [L / 8]: K for shifting by L bytes, by 2L bytes */

/* zeros_sw -- n zero bytes through the raw register (no inversion): x * x^(8n) mod P */
static uint32_t zeros_sw(uint32_t c, size_t n)
{
	while (n--)
		c = (c >> 8) ^ crc_table[0][c & 0xff];
	return c;
}

static void crc_k_init(void)
{
	/* 0x01000000 is x^7 (bit i holds x^(31-i)); x^7 * x^(8(n-5)) = x^(8n-33) */
	uint32_t k1 = zeros_sw(0x01000000u, 8 - 5), k2 = zeros_sw(0x01000000u, 16 - 5);
	for (size_t j = 1; j <= CRC_LMAX / 8; j++) {
		crc_k[j][0] = k1;
		crc_k[j][1] = k2;
		k1 = zeros_sw(k1, 8);
		k2 = zeros_sw(k2, 16);
	}
}

__attribute__((target("sse4.2,pclmul")))
static inline uint64_t clmul(uint64_t a, uint64_t b)
{
	__m128i p = _mm_clmulepi64_si128(_mm_cvtsi64_si128((long long)a), _mm_cvtsi64_si128((long long)b), 0);
	return (uint64_t)_mm_cvtsi128_si64(p);
}

/* crc_tail -- one stream, 8 bytes a step (x86 loads need no alignment) */
__attribute__((target("sse4.2")))
static inline uint64_t crc_tail(uint64_t c, const uint8_t *p, size_t len)
{
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = _mm_crc32_u64(c, w);
	}
	if (len >= 4) {
		uint32_t w;
		memcpy(&w, p, 4);
		c = _mm_crc32_u32((uint32_t)c, w);
		p += 4;
		len -= 4;
	}
	while (len--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return c;
}

__attribute__((target("sse4.2,pclmul")))
static uint32_t crc32c_clmul(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t c = (uint32_t)~crc;
	while (len >= 96) {   /* below, the combine costs what the third streams save */
		size_t l = len / 24 * 8;
		if (l > CRC_LMAX)
			l = CRC_LMAX;
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
		c = _mm_crc32_u64(0, clmul(c, crc_k[l / 8][1]) ^ clmul(c1, crc_k[l / 8][0])) ^ c2;
		p += 3 * l;
		len -= 3 * l;
	}
	return ~(uint32_t)crc_tail(c, p, len);
}

__attribute__((target("sse4.2")))
static uint32_t crc32c_sse42(uint32_t crc, const void *buf, size_t len)
{
	return ~(uint32_t)crc_tail((uint32_t)~crc, buf, len);
}

static uint32_t (*crc_hw)(uint32_t, const void *, size_t) = crc32c_sse42;

uint32_t paste_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	return has_sse42 ? crc_hw(crc, buf, len) : paste_crc32c_sw(crc, buf, len);
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
	crc_k_init();
	if (__get_cpuid(1, &a, &b, &c, &d)) {
		has_sse42 = (c & bit_SSE4_2) != 0;
		if (c & bit_PCLMUL)
			crc_hw = crc32c_clmul;
	}
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
		crc_fn = crc_hw;
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
