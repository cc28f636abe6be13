// SPDX-License-Identifier: BSD-2-Clause
/*
 * tools/vm/guest/blkcheck.c - write, verify and time block devices (or
 * files) in the test VM, for the xsegbd scenarios and the loop-device
 * benchmark. Data follows peers/user/pattern.h: byte i of the device is
 * pattern_byte(seed, i), with the seed of a target name (patternd's data)
 * or of any string.
 *
 *   blkcheck write  PATH SEED SIZE [BS]        write the pattern over [0, SIZE) (creates a file)
 *   blkcheck verify PATH SEED SIZE [BS]        read [0, SIZE) back and check every byte
 *   blkcheck stream PATH SEED SIZE BS EVERY    write the pattern over [0, SIZE) again and
 *                                              again, without end, printing "written N"
 *                                              after every EVERY writes; ends only on an
 *                                              error (exit 1) or a signal
 *   blkcheck bench  PATH read|write|randread|randwrite BS TOTAL THREADS
 *                                              O_DIRECT I/O, prints "<MB/s> MB/s <IOPS> IOPS"
 *   blkcheck aio    PATH write|verify|stream|randread|randwrite SEED SIZE BS DEPTH
 *                                              Linux AIO (O_DIRECT) with DEPTH requests in
 *                                              flight, each batch of DEPTH submitted by one
 *                                              io_submit (one plug: blk-mq hands the driver
 *                                              a batch), blocks in a scattered order (no
 *                                              two of a batch merge): write/verify the
 *                                              pattern as above; stream writes it
 *                                              without end ("written N" after every pass);
 *                                              randread/randwrite time SIZE bytes of
 *                                              random BS blocks (SEED unused) and print
 *                                              as bench does
 *
 * SIZE, BS, TOTAL take K, M, G. write and verify use O_DIRECT on block
 * devices (so the device, not the page cache, is checked) and end with
 * fsync (stream: O_DIRECT too, so every write reached the device before
 * it is counted). Exit 0 on success, 1 on a mismatch or an I/O error (the message
 * names the offset and errno), 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/aio_abi.h>
#include "peers/user/pattern.h"
#include "xseg/xseg_size.h"

/* A SIZE of the one grammar (xseg/xseg_size.h: 4096, 4K, 1M, 1G...). */
static uint64_t parse_size(const char *s)
{
	uint64_t v;

	if (xseg_parse_size_str(s, &v)) {
		fprintf(stderr, "blkcheck: '%s' is not a size (a number with an optional unit K, M, G or T)\n", s);
		exit(2);
	}
	return v;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int open_dev(const char *path, int flags)
{
	struct stat st;
	int fd;

	if (stat(path, &st) == 0 && S_ISBLK(st.st_mode))
		flags |= O_DIRECT;
	fd = open(path, flags | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "blkcheck: open %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return fd;
}

static void *aligned(size_t n)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, n)) {
		fprintf(stderr, "blkcheck: out of memory\n");
		exit(1);
	}
	return p;
}

static int do_write(const char *path, uint64_t seed, uint64_t size, uint64_t bs)
{
	int fd = open_dev(path, O_WRONLY | O_CREAT);
	uint8_t *buf = aligned(bs);

	for (uint64_t off = 0; off < size; off += bs) {
		uint64_t n = size - off < bs ? size - off : bs;
		ssize_t w;

		pattern_fill(buf, n, seed, off);
		w = pwrite(fd, buf, n, (off_t)off);
		if (w != (ssize_t)n) {
			fprintf(stderr, "blkcheck: write %s at %llu: %s\n", path, (unsigned long long)off,
				w < 0 ? strerror(errno) : "short write");
			return 1;
		}
	}
	if (fsync(fd)) {
		fprintf(stderr, "blkcheck: fsync %s: %s\n", path, strerror(errno));
		return 1;
	}
	close(fd);
	free(buf);
	return 0;
}

/* Write until an error: for kill tests, the victim is provably busy. */
static int do_stream(const char *path, uint64_t seed, uint64_t size, uint64_t bs, uint64_t every)
{
	int fd = open_dev(path, O_WRONLY);
	uint8_t *buf = aligned(bs);
	uint64_t n = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		for (uint64_t off = 0; off + bs <= size; off += bs) {
			ssize_t w;

			pattern_fill(buf, bs, seed, off);
			w = pwrite(fd, buf, bs, (off_t)off);
			if (w != (ssize_t)bs) {
				fprintf(stderr, "blkcheck: write %s at %llu (after %llu writes): %s\n", path,
					(unsigned long long)off, (unsigned long long)n,
					w < 0 ? strerror(errno) : "short write");
				return 1;
			}
			if (++n % every == 0)
				printf("written %llu\n", (unsigned long long)n);
		}
	}
}

static int do_verify(const char *path, uint64_t seed, uint64_t size, uint64_t bs)
{
	int fd = open_dev(path, O_RDONLY);
	uint8_t *buf = aligned(bs);

	for (uint64_t off = 0; off < size; off += bs) {
		uint64_t n = size - off < bs ? size - off : bs, bad;
		ssize_t r = pread(fd, buf, n, (off_t)off);

		if (r != (ssize_t)n) {
			fprintf(stderr, "blkcheck: read %s at %llu: %s\n", path, (unsigned long long)off,
				r < 0 ? strerror(errno) : "short read");
			return 1;
		}
		bad = pattern_check(buf, n, seed, off);
		if (bad != n) {
			fprintf(stderr, "blkcheck: %s: byte %llu is %u, want %u\n", path,
				(unsigned long long)(off + bad), buf[bad], pattern_byte(seed, off + bad));
			return 1;
		}
	}
	close(fd);
	free(buf);
	return 0;
}

/* ------------------------------------------------------------------ bench */

struct bench {
	const char *path;
	int write, random;
	uint64_t bs, per_thread, span;
	unsigned idx;
	int err;
};

static void *bench_thread(void *arg)
{
	struct bench *b = arg;
	int fd = open_dev(b->path, b->write ? O_WRONLY : O_RDONLY);
	uint8_t *buf = aligned(b->bs);
	uint64_t blocks = b->span / b->bs, x = 0x9E3779B97F4A7C15ull * (b->idx + 1);
	uint64_t n = b->per_thread / b->bs, pos = (blocks / 8) * b->idx;

	memset(buf, 0x5A, b->bs);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t blk;
		ssize_t r;

		if (b->random) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			blk = x % blocks;
		} else {
			blk = (pos + i) % blocks;
		}
		r = b->write ? pwrite(fd, buf, b->bs, (off_t)(blk * b->bs))
			     : pread(fd, buf, b->bs, (off_t)(blk * b->bs));
		if (r != (ssize_t)b->bs) {
			b->err = r < 0 ? errno : EIO;
			break;
		}
	}
	close(fd);
	free(buf);
	return NULL;
}

static int do_bench(const char *path, const char *mode, uint64_t bs, uint64_t total, unsigned threads)
{
	struct bench b[64];
	pthread_t th[64];
	uint64_t t0, ns, span;
	int fd;
	off_t end;
	double secs;

	if (threads < 1 || threads > 64 || bs == 0 || total < bs * threads)
		return 2;
	fd = open_dev(path, O_RDONLY);
	end = lseek(fd, 0, SEEK_END);
	close(fd);
	span = (uint64_t)end;
	if (span < bs) {
		fprintf(stderr, "blkcheck: %s is smaller than a block\n", path);
		return 1;
	}
	t0 = now_ns();
	for (unsigned i = 0; i < threads; i++) {
		b[i] = (struct bench){ .path = path, .write = strstr(mode, "write") != NULL,
				       .random = !strncmp(mode, "rand", 4), .bs = bs,
				       .per_thread = total / threads, .span = span, .idx = i };
		pthread_create(&th[i], NULL, bench_thread, &b[i]);
	}
	for (unsigned i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		if (b[i].err) {
			fprintf(stderr, "blkcheck: bench %s %s: %s\n", path, mode, strerror(b[i].err));
			return 1;
		}
	}
	ns = now_ns() - t0;
	secs = (double)ns / 1e9;
	printf("%.1f MB/s %.0f IOPS\n", (double)total / secs / 1e6, (double)(total / bs) / secs);
	return 0;
}

/* ------------------------------------------------------------------- aio */

/* Linux AIO by its system calls (no libaio in the static guest). */
static long aio_setup(unsigned n, aio_context_t *ctx) { return syscall(SYS_io_setup, n, ctx); }
static long aio_submit(aio_context_t ctx, long n, struct iocb **v) { return syscall(SYS_io_submit, ctx, n, v); }
static long aio_events(aio_context_t ctx, long min, long max, struct io_event *ev)
{
	return syscall(SYS_io_getevents, ctx, min, max, ev, NULL);
}

static uint64_t b_gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* The smallest stride >= 7 coprime with n (1 for tiny n). */
static uint64_t b_gcd_stride(uint64_t n)
{
	for (uint64_t a = 7; a < n; a++)
		if (b_gcd(a, n) == 1)
			return a;
	return 1;
}

/*
 * Block i of a pass over @n blocks: a stride coprime with n scatters
 * consecutive submissions, so the requests of one batch never merge.
 */
static uint64_t scatter(uint64_t i, uint64_t n)
{
	return (i * b_gcd_stride(n)) % n;
}

/*
 * @mode: 'w' write, 'v' verify, 's' stream (write forever), 'r'/'W' random
 * read/write for timing. Keeps @depth requests in flight; refills a whole
 * batch with one io_submit when the batch has completed.
 */
static int do_aio(const char *path, int mode, uint64_t seed, uint64_t size, uint64_t bs, unsigned depth)
{
	int writing = mode == 'w' || mode == 's' || mode == 'W';
	int fd = open_dev(path, writing ? O_RDWR | (mode == 'w' ? O_CREAT : 0) : O_RDONLY);
	uint64_t nblocks = size / bs, total = nblocks, next = 0, done = 0, passes = 0, x = 0x9E3779B97F4A7C15ull;
	struct iocb *cbs = calloc(depth, sizeof(*cbs));
	struct iocb **v = calloc(depth, sizeof(*v));
	struct io_event *ev = calloc(depth, sizeof(*ev));
	uint8_t *bufs = aligned(bs * depth);
	aio_context_t ctx = 0;
	uint64_t t0 = now_ns();
	unsigned i;

	if (!cbs || !v || !ev || nblocks < depth) {
		fprintf(stderr, "blkcheck: aio: SIZE must hold DEPTH blocks\n");
		return 2;
	}
	if (aio_setup(depth, &ctx)) {
		fprintf(stderr, "blkcheck: io_setup: %s\n", strerror(errno));
		return 1;
	}
	while (mode == 's' || done < total) {
		unsigned n = 0;
		long got, k;

		/* One batch: up to DEPTH requests in one io_submit. */
		for (i = 0; i < depth && (mode == 's' || next < total); i++, next++) {
			uint64_t blk;
			uint8_t *b = bufs + (uint64_t)i * bs;

			if (mode == 'r' || mode == 'W') {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				blk = x % nblocks;
			} else {
				blk = scatter(next % nblocks, nblocks);
			}
			memset(&cbs[i], 0, sizeof(cbs[i]));
			cbs[i].aio_fildes = (uint32_t)fd;
			cbs[i].aio_lio_opcode = writing ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
			cbs[i].aio_buf = (uint64_t)(uintptr_t)b;
			cbs[i].aio_nbytes = bs;
			cbs[i].aio_offset = (int64_t)(blk * bs);
			cbs[i].aio_data = blk;
			if (mode == 'w' || mode == 's')
				pattern_fill(b, bs, seed, blk * bs);
			else if (mode == 'W')
				memset(b, 0x5A, bs);
			v[n++] = &cbs[i];
		}
		got = aio_submit(ctx, n, v);
		if (got != (long)n) {
			fprintf(stderr, "blkcheck: io_submit of %u: %s\n", n,
				got < 0 ? strerror(errno) : "partial submission");
			return 1;
		}
		for (k = 0; k < (long)n;) {
			long m = aio_events(ctx, 1, depth, ev);

			if (m < 0) {
				if (errno == EINTR)
					continue;
				fprintf(stderr, "blkcheck: io_getevents: %s\n", strerror(errno));
				return 1;
			}
			for (long j = 0; j < m; j++) {
				uint64_t blk = ev[j].data;
				struct iocb *cb = (struct iocb *)(uintptr_t)ev[j].obj;

				if (ev[j].res != (int64_t)bs) {
					fprintf(stderr, "blkcheck: aio %s %s at %llu: %s\n", writing ? "write" : "read",
						path, (unsigned long long)(blk * bs),
						ev[j].res < 0 ? strerror((int)-ev[j].res) : "short");
					return 1;
				}
				if (mode == 'v') {
					uint8_t *b = (uint8_t *)(uintptr_t)cb->aio_buf;
					uint64_t bad = pattern_check(b, bs, seed, blk * bs);

					if (bad != bs) {
						fprintf(stderr, "blkcheck: %s: byte %llu is %u, want %u\n", path,
							(unsigned long long)(blk * bs + bad), b[bad],
							pattern_byte(seed, blk * bs + bad));
						return 1;
					}
				}
			}
			k += m;
		}
		done += n;
		if (mode == 's' && done / nblocks > passes) {
			passes = done / nblocks;
			printf("written %llu\n", (unsigned long long)done);
			fflush(stdout);
		}
	}
	if (mode == 'r' || mode == 'W') {
		double secs = (double)(now_ns() - t0) / 1e9;

		printf("%.1f MB/s %.0f IOPS\n", (double)(total * bs) / secs / 1e6, (double)total / secs);
	} else if (writing && fsync(fd)) {
		fprintf(stderr, "blkcheck: fsync %s: %s\n", path, strerror(errno));
		return 1;
	}
	syscall(SYS_io_destroy, ctx);
	close(fd);
	free(bufs);
	free(cbs);
	free(v);
	free(ev);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && (!strcmp(argv[1], "write") || !strcmp(argv[1], "verify"))) {
		uint64_t seed = pattern_seed(argv[3], (uint32_t)strlen(argv[3]));
		uint64_t size = parse_size(argv[4]), bs = argc > 5 ? parse_size(argv[5]) : 1 << 20;

		if (!bs || bs % 512)
			return 2;
		return argv[1][0] == 'w' ? do_write(argv[2], seed, size, bs) : do_verify(argv[2], seed, size, bs);
	}
	if (argc == 7 && !strcmp(argv[1], "stream")) {
		uint64_t seed = pattern_seed(argv[3], (uint32_t)strlen(argv[3]));
		uint64_t size = parse_size(argv[4]), bs = parse_size(argv[5]), every = parse_size(argv[6]);

		if (!bs || bs % 512 || size < bs || !every)
			return 2;
		return do_stream(argv[2], seed, size, bs, every);
	}
	if (argc == 8 && !strcmp(argv[1], "aio")) {
		static const char *modes[] = { "write", "verify", "stream", "randread", "randwrite" };
		static const char codes[] = "wvsrW";
		uint64_t seed = pattern_seed(argv[4], (uint32_t)strlen(argv[4]));
		uint64_t size = parse_size(argv[5]), bs = parse_size(argv[6]);
		unsigned long depth = strtoul(argv[7], NULL, 0);

		if (!bs || bs % 512 || depth < 1 || depth > 1024)
			return 2;
		for (unsigned m = 0; m < 5; m++)
			if (!strcmp(argv[3], modes[m]))
				return do_aio(argv[2], codes[m], seed, size, bs, (unsigned)depth);
		return 2;
	}
	if (argc == 7 && !strcmp(argv[1], "bench"))
		return do_bench(argv[2], argv[3], parse_size(argv[4]), parse_size(argv[5]),
				(unsigned)strtoul(argv[6], NULL, 0));
	fprintf(stderr, "usage: blkcheck write|verify PATH SEED SIZE [BS]\n"
		"       blkcheck stream PATH SEED SIZE BS EVERY\n"
		"       blkcheck bench PATH read|write|randread|randwrite BS TOTAL THREADS\n"
		"       blkcheck aio PATH write|verify|stream|randread|randwrite SEED SIZE BS DEPTH\n");
	return 2;
}
