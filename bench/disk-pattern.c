/*
 * disk-pattern.c -- what one group commit costs on a disk file, by where the
 * batch's bytes lie: 50 writes of 1 KiB per batch (one batch of 50 SETs at
 * -c 50) plus one 64-byte log line, then one sync, 400 batches.
 *
 *   cc -O2 -o /tmp/disk-pattern bench/disk-pattern.c
 *   /tmp/disk-pattern FILE [msync|fdatasync] [scattered|adjacent]
 *
 * scattered: each 1 KiB lands in a random 2 KiB slot of a 224 MiB region (a
 * pool whose free buffers lie anywhere); adjacent: one after the other (an
 * append-only file, or a pool handing out neighbouring buffers). The file
 * (256 MiB) is written whole and synced first, so no block is allocated or
 * converted from unwritten during the timed part. docs/performance.md, "Disk
 * pools", quotes it.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SIZE    (256ul << 20)
#define REGION  (32ul << 20)   /* where the "buffers" start; below it, the "log" */
#define BATCHES 400
#define PER     50

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s FILE msync|fdatasync scattered|adjacent\n", argv[0]);
		return 2;
	}
	int use_msync = strcmp(argv[2], "msync") == 0;
	int scattered = strcmp(argv[3], "scattered") == 0;
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || posix_fallocate(fd, 0, SIZE) != 0) {
		perror(argv[1]);
		return 1;
	}
	char *m = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset(m, 1, SIZE);
	msync(m, SIZE, MS_SYNC);

	unsigned seed = 1;
	size_t next = REGION;
	double t0 = now();
	for (int b = 0; b < BATCHES; b++) {
		for (int k = 0; k < PER; k++) {
			size_t off = scattered ? REGION + (size_t)(rand_r(&seed) % ((SIZE - REGION) / 2048)) * 2048 : (next += 1024);
			memset(m + off, b, 1024);
		}
		memset(m + 4096 + (size_t)(b % 64) * 64, b, 64);
		if (use_msync ? msync(m, SIZE, MS_SYNC) : fdatasync(fd)) {
			perror("sync");
			return 1;
		}
	}
	printf("%s %s: %.1f us per batch of %d x 1 KiB\n", argv[2], argv[3], (now() - t0) / BATCHES * 1e6, PER);
	munmap(m, SIZE);
	close(fd);
	unlink(argv[1]);
	return 0;
}
