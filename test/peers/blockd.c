/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: blockd as a child process on a temporary file and a
 * temporary posix segment: INFO, READ/WRITE (checked through blockd and in
 * the file itself), FUA and pre-flush writes, FLUSH/SYNC, DISCARD and
 * WRITE_ZEROES (the ranges read as zeros, in the file too), TRUNCATE,
 * out-of-range (ENOSPC), a buffer too small (EINVAL), unknown ops
 * (EOPNOTSUPP), --target (ENOENT for other names), several client threads
 * with many requests in flight and every byte verified, SIGTERM while
 * requests are in flight (each one is replied), a second blockd on the same
 * file (refused), --readonly (EROFS), and --create-file --size refusing a
 * symlink planted at the path (its target keeps its size).
 */
#include "peers.h"
#include "xseg/xseg_extents.h"

#define MB (1024ull * 1024)
#define VOL (4 * MB)

static struct xseg_config cfg;
static char spec[512];
static struct xseg *xs;
static uint32_t me;

static pid_t start_blockd(uint32_t port, const char *file, const char *extra1, const char *extra2)
{
	char ports[16];
	const char *args[20];
	int n = 0;
	pid_t pid;

	snprintf(ports, sizeof(ports), "%u", port);
	args[n++] = "-q";
	args[n++] = "-g";
	args[n++] = spec;
	args[n++] = "-p";
	args[n++] = ports;
	args[n++] = "--file";
	args[n++] = file;
	if (extra1)
		args[n++] = extra1;
	if (extra2)
		args[n++] = extra2;
	args[n] = NULL;
	pid = tp_start("blockd", args);
	tp_wait_bound(xs, port, pid);
	return pid;
}

static int rw(uint32_t dst, uint32_t op, uint32_t flags, uint64_t off, uint64_t size, void *buf)
{
	struct tp_req r = { .op = op, .flags = flags, .target = "vol", .offset = off, .size = size,
			    .buf_len = size, .out = op == X_READ ? buf : NULL, .out_len = size,
			    .in = op == X_WRITE ? buf : NULL, .in_len = op == X_WRITE ? size : 0 };
	int e = tp_do(xs, me, dst, &r);

	if (!e && (op == X_READ || op == X_WRITE))
		CHECKF(r.serviced == size, "%s serviced %" PRIu64 " of %" PRIu64, xseg_op_name(op), r.serviced, size);
	return e;
}

static int simple(uint32_t dst, uint32_t op, uint32_t flags, uint64_t off, uint64_t size)
{
	struct tp_req r = { .op = op, .flags = flags, .target = "vol", .offset = off, .size = size };

	return tp_do(xs, me, dst, &r);
}

static uint64_t info(uint32_t dst)
{
	uint8_t b[8];
	struct tp_req r = { .op = X_INFO, .target = "vol", .size = 8, .buf_len = 8, .out = b, .out_len = 8 };
	uint64_t v = 0;

	CHECK(tp_do(xs, me, dst, &r) == 0);
	CHECK(r.serviced == 8);
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

static void fill(uint8_t *b, uint64_t n, uint64_t off)
{
	pattern_fill(b, n, 0x1234, off);
}

static void test_basic(void)
{
	const char *file = tp_path("vol.img");
	pid_t pid = start_blockd(1, file, "--create-file", "--size=4M");
	uint8_t *w = malloc(64 * 1024), *r = malloc(64 * 1024), *disk;
	uint64_t len;

	CHECK(info(1) == VOL);
	/* Writes at a few places, unaligned ones included; read back through blockd. */
	const uint64_t offs[] = { 0, 4096, 12345, VOL - 65536, MB + 1 };
	const uint64_t sizes[] = { 4096, 65536, 777, 65536, 1 };

	for (int i = 0; i < 5; i++) {
		fill(w, sizes[i], offs[i]);
		CHECK(rw(1, X_WRITE, 0, offs[i], sizes[i], w) == 0);
		memset(r, 0, sizes[i]);
		CHECK(rw(1, X_READ, 0, offs[i], sizes[i], r) == 0);
		CHECKF(memcmp(w, r, sizes[i]) == 0, "read back at %" PRIu64, offs[i]);
	}
	/* FUA, pre-flush, both; FLUSH and SYNC. */
	fill(w, 4096, 8192);
	CHECK(rw(1, X_WRITE, XF_FUA, 8192, 4096, w) == 0);
	CHECK(rw(1, X_WRITE, XF_FLUSH, 8192, 4096, w) == 0);
	CHECK(rw(1, X_WRITE, XF_FLUSH | XF_FUA, 8192, 4096, w) == 0);
	CHECK(simple(1, X_FLUSH, 0, 0, 0) == 0);
	CHECK(simple(1, X_SYNC, 0, 0, 0) == 0);
	CHECK(simple(1, X_PING, 0, 0, 0) == 0);
	/* The file holds what was written. */
	disk = tp_slurp(file, &len);
	CHECK(len == VOL);
	for (int i = 0; i < 5; i++) {
		fill(w, sizes[i], offs[i]);
		CHECKF(memcmp(disk + offs[i], w, sizes[i]) == 0, "file content at %" PRIu64, offs[i]);
	}
	free(disk);
	/* A write to the file shows in a read. */
	{
		int fd = open(file, O_WRONLY);

		CHECK(fd >= 0);
		CHECK(pwrite(fd, "hello", 5, 2 * MB) == 5);
		close(fd);
		CHECK(rw(1, X_READ, 0, 2 * MB, 5, r) == 0);
		CHECK(memcmp(r, "hello", 5) == 0);
	}
	CHECK(tp_stop(pid) == 0);
	free(w);
	free(r);
}

static void test_errors(void)
{
	const char *file = tp_path("err.img");
	pid_t pid = start_blockd(1, file, "--create-file", "--size=1M");
	uint8_t b[4096];

	CHECK(rw(1, X_READ, 0, MB - 4096, 4096, b) == 0);
	CHECK(rw(1, X_READ, 0, MB - 4095, 4096, b) == ENOSPC);
	CHECK(rw(1, X_READ, 0, MB, 1, b) == ENOSPC);
	CHECK(rw(1, X_READ, 0, UINT64_MAX - 10, 4096, b) == ENOSPC);
	CHECK(rw(1, X_WRITE, 0, MB - 1, 2, b) == ENOSPC);
	CHECK(simple(1, X_DISCARD, 0, MB - 4096, 8192) == ENOSPC);
	CHECK(simple(1, X_WRITE_ZEROES, 0, 2 * MB, 1) == ENOSPC);
	/* The buffer must hold size. */
	{
		struct tp_req r = { .op = X_READ, .target = "vol", .offset = 0, .size = 8192, .buf_len = 4096 };

		CHECK(tp_do(xs, me, 1, &r) == EINVAL);
		r.op = X_WRITE;
		CHECK(tp_do(xs, me, 1, &r) == EINVAL);
		r.op = X_INFO;
		r.buf_len = 4;
		CHECK(tp_do(xs, me, 1, &r) == EINVAL);
	}
	/* COMMIT: a durable barrier of the device (fsync). */
	CHECK(simple(1, X_COMMIT, 0, 0, 0) == 0);
	/* Ops blockd does not implement. */
	const uint32_t unsupported[] = { X_CLONE, X_SNAPSHOT, X_COPY, X_HASH, X_RENAME, X_ACQUIRE, X_DELETE,
					 X_OP_COUNT, 1000 };
	for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++)
		CHECKF(simple(1, unsupported[i], 0, 0, 0) == EOPNOTSUPP, "op %u", unsupported[i]);
	CHECK(tp_stop(pid) == 0);
}

static void test_discard_zeroes(void)
{
	const char *file = tp_path("dz.img");
	pid_t pid = start_blockd(1, file, "--create-file", "--size=1M");
	uint8_t *w = malloc(MB), *r = malloc(MB), *disk;
	uint64_t len;

	fill(w, MB, 0);
	for (uint64_t o = 0; o < MB; o += 65536)
		CHECK(rw(1, X_WRITE, 0, o, 65536, w + o) == 0);
	/* Discard a page-aligned range and an unaligned one. */
	CHECK(simple(1, X_DISCARD, 0, 65536, 131072) == 0);
	CHECK(simple(1, X_DISCARD, XF_FUA, 300001, 5000) == 0);
	CHECK(simple(1, X_WRITE_ZEROES, 0, 524288, 65536) == 0);
	CHECK(simple(1, X_WRITE_ZEROES, XF_FUA, 700003, 999) == 0);
	memset(w + 65536, 0, 131072);
	memset(w + 300001, 0, 5000);
	memset(w + 524288, 0, 65536);
	memset(w + 700003, 0, 999);
	for (uint64_t o = 0; o < MB; o += 65536) {
		CHECK(rw(1, X_READ, 0, o, 65536, r + o) == 0);
		CHECKF(memcmp(r + o, w + o, 65536) == 0, "read after discard/zeroes at %" PRIu64, o);
	}
	CHECK(tp_all_zero(r + 65536, 131072));
	disk = tp_slurp(file, &len);
	CHECK(len == MB);
	CHECK(memcmp(disk, w, MB) == 0);
	free(disk);
	CHECK(info(1) == MB);	/* discards never change the size */
	CHECK(tp_stop(pid) == 0);
	free(w);
	free(r);
}

static void test_truncate(void)
{
	const char *file = tp_path("tr.img");
	pid_t pid = start_blockd(1, file, "--create-file", "--size=2M");
	uint8_t b[4096];
	struct stat st;

	fill(b, 4096, 0);
	CHECK(rw(1, X_WRITE, 0, 0, 4096, b) == 0);
	CHECK(simple(1, X_TRUNCATE, 0, MB, 0) == 0);
	CHECK(info(1) == MB);
	CHECK(stat(file, &st) == 0 && st.st_size == (off_t)MB);
	CHECK(rw(1, X_READ, 0, MB, 4096, b) == ENOSPC);
	CHECK(simple(1, X_TRUNCATE, XF_FUA, 3 * MB, 0) == 0);
	CHECK(info(1) == 3 * MB);
	CHECK(stat(file, &st) == 0 && st.st_size == (off_t)(3 * MB));
	CHECK(rw(1, X_READ, 0, 2 * MB, 4096, b) == 0);
	CHECK(tp_all_zero(b, 4096));		/* grown: a hole */
	CHECK(rw(1, X_READ, 0, 0, 4096, b) == 0);
	{
		uint8_t want[4096];

		fill(want, 4096, 0);
		CHECK(memcmp(b, want, 4096) == 0);
	}
	CHECK(tp_stop(pid) == 0);
}

static void test_target(void)
{
	const char *file = tp_path("tg.img");
	pid_t pid = start_blockd(2, file, "--create-file", "--size=64K");
	pid_t pid2;
	char t[] = "--target=vol";
	struct tp_req r = { .op = X_INFO, .target = "other", .size = 8, .buf_len = 8 };

	CHECK(tp_do(xs, me, 2, &r) == 0);	/* any name by default */
	CHECK(tp_stop(pid) == 0);
	pid2 = start_blockd(2, file, t, NULL);
	CHECK(tp_do(xs, me, 2, &r) == ENOENT);
	r.target = "vol";
	CHECK(tp_do(xs, me, 2, &r) == 0);
	r.target = "vol2";
	CHECK(tp_do(xs, me, 2, &r) == ENOENT);
	CHECK(tp_stop(pid2) == 0);
}

/* Several client threads, each with its own port and region, many requests in flight. */
struct load {
	uint32_t dst, thread, port;
	uint64_t region, count;
	uint64_t done, bad, failed;
};

static void *load_thread(void *arg)
{
	struct load *ld = arg;
	uint32_t port = ld->port;
	const uint32_t bs = 4096, depth = 16, blocks = (uint32_t)(ld->region / bs);
	uint64_t base = ld->thread * ld->region, seed = 0xABCD + ld->thread, rnd = seed;
	uint64_t sent = 0, inflight = 0, t0 = xt_now_ns();
	int phase;

	/* Phase 0 writes every block; phase 1 reads random blocks and checks them. */
	for (phase = 0; phase < 2; phase++) {
		uint64_t total = phase ? ld->count : blocks;

		sent = 0;
		while (sent < total || inflight) {
			struct xseg_request *req;
			int moved = 0;

			while (sent < total && inflight < depth && (req = xseg_get_request(xs, (uint32_t)port))) {
				uint64_t off = base + (phase ? xt_rand(&rnd) % blocks : sent) * bs;

				CHECK(xseg_prep_request(xs, req, "vol", 3, bs) == 0);
				req->op = phase ? X_READ : X_WRITE;
				req->offset = off;
				req->size = bs;
				if (!phase)
					pattern_fill(xseg_req_data(xs, req), bs, seed, off);
				else
					memset(xseg_req_data(xs, req), 0, bs);
				CHECK(xseg_submit(xs, req, ld->dst) >= 0);
				xseg_signal(xs, ld->dst);
				sent++;
				inflight++;
				moved = 1;
			}
			while ((req = xseg_receive(xs, (uint32_t)port))) {
				inflight--;
				ld->done++;
				moved = 1;
				if (req->state & XS_FAILED)
					ld->failed++;
				else if (req->serviced != bs ||
					 (req->op == X_READ &&
					  pattern_check(xseg_req_data(xs, req), bs, seed, req->offset) != bs))
					ld->bad++;
				CHECK(xseg_put_request(xs, req) == 0);
			}
			if (!moved) {
				CHECKF(xt_now_ns() - t0 < 60000000000ull, "thread %u: stuck", ld->thread);
				xseg_wait(xs, (uint32_t)port, 100000);
			}
		}
	}
	return NULL;
}

static void test_many_in_flight(void)
{
	const char *file = tp_path("load.img");
	pid_t pid = start_blockd(3, file, "--create-file", "--size=8M");
	enum { T = 4 };
	struct load ld[T];
	pthread_t th[T];
	uint64_t count = (uint64_t)xt_env_long("XSEG_BLOCKD_COUNT", 5000), done = 0;
	uint8_t *disk, want[4096];
	uint64_t len;

	for (uint32_t i = 0; i < T; i++) {
		/* Bound here, not by the threads: concurrent binds race in the core (see the report). */
		int port = xseg_bind_port(xs, XSEG_ANY_PORT, 0);

		CHECK(port >= 0);
		ld[i] = (struct load){ .dst = 3, .thread = i, .port = (uint32_t)port, .region = 2 * MB,
				       .count = count };
		CHECK(pthread_create(&th[i], NULL, load_thread, &ld[i]) == 0);
	}
	for (uint32_t i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		CHECK(xseg_leave_port(xs, ld[i].port) == 0);
		CHECKF(!ld[i].failed && !ld[i].bad, "thread %u: %" PRIu64 " failed, %" PRIu64 " wrong", i,
		       ld[i].failed, ld[i].bad);
		done += ld[i].done;
	}
	printf("  %" PRIu64 " requests from %d threads, all verified\n", done, T);
	/* The file: each thread's region holds its pattern. */
	disk = tp_slurp(file, &len);
	CHECK(len == 8 * MB);
	for (uint64_t off = 0; off < len; off += 4096) {
		pattern_fill(want, 4096, 0xABCD + off / (2 * MB), off);
		CHECKF(memcmp(disk + off, want, 4096) == 0, "file at %" PRIu64, off);
	}
	free(disk);
	CHECK(tp_stop(pid) == 0);
}

/* SIGTERM with requests queued and in flight: every one gets a reply, blockd exits 0. */
static void test_sigterm_drain(void)
{
	const char *file = tp_path("term.img");
	pid_t pid = start_blockd(4, file, "--create-file", "--size=4M");
	int port = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	uint32_t sent = 0, replies = 0, served = 0;
	uint64_t t0 = xt_now_ns();

	CHECK(port >= 0);
	for (; sent < 128; sent++) {
		struct xseg_request *req = xseg_get_request(xs, (uint32_t)port);

		CHECK(req);
		CHECK(xseg_prep_request(xs, req, "vol", 3, 32768) == 0);
		req->op = sent % 8 == 7 ? X_FLUSH : X_WRITE;
		req->flags = sent % 3 == 0 ? XF_FUA : 0;
		req->offset = (uint64_t)sent * 32768;
		req->size = req->op == X_WRITE ? 32768 : 0;
		memset(xseg_req_data(xs, req), (int)sent, 32768);
		CHECK(xseg_submit(xs, req, 4) >= 0);
	}
	xseg_signal(xs, 4);
	usleep(2000);
	CHECK(kill(pid, SIGTERM) == 0);
	while (replies < sent) {
		struct xseg_request *req = xseg_receive(xs, (uint32_t)port);

		if (!req) {
			CHECKF(xt_now_ns() - t0 < 30000000000ull, "%u of %u replies", replies, sent);
			xseg_wait(xs, (uint32_t)port, 100000);
			continue;
		}
		replies++;
		if (!(req->state & XS_FAILED))
			served++;
		CHECK(xseg_put_request(xs, req) == 0);
	}
	CHECK(tp_wait(pid) == 0);
	printf("  %u requests: %u served, %u failed back at the stop\n", sent, served, sent - served);
	CHECK(xseg_leave_port(xs, (uint32_t)port) == 0);
	CHECK(xseg_verify(xs, tx_print_line, NULL) == 0);
}

static void test_readonly_and_exclusive(void)
{
	const char *file = tp_path("ro.img");
	pid_t pid = start_blockd(1, file, "--create-file", "--size=1M");
	const char *args[] = { "-q", "-g", spec, "-p", "2", "--file", file, NULL };
	pid_t second;
	uint8_t b[4096], want[4096];

	fill(want, 4096, 4096);
	CHECK(rw(1, X_WRITE, 0, 4096, 4096, want) == 0);
	/* A second writer on the same file is refused. */
	second = tp_start("blockd", args);
	CHECK(tp_wait(second) == 1);
	CHECK(tp_stop(pid) == 0);
	pid = start_blockd(2, file, "--readonly", NULL);
	CHECK(rw(2, X_READ, 0, 4096, 4096, b) == 0);
	CHECK(memcmp(b, want, 4096) == 0);
	CHECK(info(2) == MB);
	CHECK(rw(2, X_WRITE, 0, 0, 4096, b) == EROFS);
	CHECK(simple(2, X_DISCARD, 0, 0, 4096) == EROFS);
	CHECK(simple(2, X_WRITE_ZEROES, 0, 0, 4096) == EROFS);
	CHECK(simple(2, X_TRUNCATE, 0, 4096, 0) == EROFS);
	CHECK(simple(2, X_FLUSH, 0, 0, 0) == 0);
	CHECK(tp_stop(pid) == 0);
	/* Usage errors exit 2, a missing file 1. */
	{
		const char *a1[] = { "-g", spec, NULL };
		const char *a2[] = { "-q", "-g", spec, "-p", "2", "--file", tp_path("missing.img"), NULL };
		const char *a3[] = { "-g", spec, "--file", file, "--size", "12Q", NULL };

		CHECK(tp_wait(tp_start("blockd", a1)) == 2);
		/* --create-file never follows a link planted at the path (nor grows its target). */
		{
			const char *victim = tp_path("victim"), *link = tp_path("planted.img");
			const char *a4[] = { "-q", "-g", spec, "-p", "2", "--file", link, "--create-file",
					     "--size=1M", NULL };
			struct stat st;
			int fd = open(victim, O_WRONLY | O_CREAT | O_EXCL, 0600);

			CHECK(fd >= 0 && write(fd, "precious\n", 9) == 9);
			close(fd);
			pid_t child;
			int status = 0, r = 0;

			CHECK(symlink(victim, link) == 0);
			child = tp_start("blockd", a4);
			/* It must exit 1 at once; one that serves the link is stopped (a hang guard). */
			for (int i = 0; i < 2000 && (r = waitpid(child, &status, WNOHANG)) == 0; i++)
				usleep(10000);
			if (r == 0) {
				tp_stop(child);
				CHECKF(0, "blockd --create-file served a symlink planted at its path");
			}
			tp_forget(child);
			CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
			CHECK(stat(victim, &st) == 0 && st.st_size == 9);
		}
		CHECK(tp_wait(tp_start("blockd", a2)) == 1);
		CHECK(tp_wait(tp_start("blockd", a3)) == 2);
	}
}

/* MAPR: the allocation of a sparse file as extents (xseg/xseg_extents.h). */
static uint32_t mapr(uint64_t off, uint64_t size, uint64_t buf_len, uint8_t *out, int *err)
{
	struct tp_req r = { .op = X_MAPR, .target = "vol", .offset = off, .size = size,
			    .buf_len = buf_len, .out = out, .out_len = buf_len };

	*err = tp_do(xs, me, 1, &r);
	CHECK(r.serviced % XSEG_EXTENT_SIZE == 0);
	return (uint32_t)(r.serviced / XSEG_EXTENT_SIZE);
}

static void test_map(void)
{
	const char *file = tp_path("map.img");
	pid_t pid = start_blockd(1, file, "--create-file", "--size=4M");
	uint8_t *w = malloc(65536), ext[4096];
	const uint64_t want[][2] = { { MB, XSEG_EXTENT_HOLE | XSEG_EXTENT_ZERO }, { 65536, 0 },
				     { VOL - MB - 65536, XSEG_EXTENT_HOLE | XSEG_EXTENT_ZERO } };
	uint64_t len;
	uint32_t n, fl;
	int err;

	fill(w, 65536, MB);
	CHECK(rw(1, X_WRITE, 0, MB, 65536, w) == 0);
	n = mapr(0, VOL, sizeof(ext), ext, &err);
	CHECK(err == 0 && n == 3);
	for (uint32_t i = 0; i < n && i < 3; i++) {
		xseg_extent_get(ext, i, &len, &fl);
		CHECKF(len == want[i][0] && fl == want[i][1], "extent %u: %" PRIu64 " bytes, flags %u", i, len, fl);
	}
	/* A range inside the data; room for one extent only: the first; past the end; no room at all. */
	CHECK(mapr(MB + 4096, 8192, sizeof(ext), ext, &err) == 1 && err == 0);
	xseg_extent_get(ext, 0, &len, &fl);
	CHECK(len == 8192 && fl == 0);
	CHECK(mapr(0, VOL, XSEG_EXTENT_SIZE, ext, &err) == 1 && err == 0);
	xseg_extent_get(ext, 0, &len, &fl);
	CHECK(len == MB && fl == (XSEG_EXTENT_HOLE | XSEG_EXTENT_ZERO));
	mapr(VOL - 4096, 8192, sizeof(ext), ext, &err);
	CHECK(err == ENOSPC);
	mapr(0, VOL, 8, ext, &err);
	CHECK(err == EINVAL);
	free(w);
	CHECK(tp_stop(pid) == 0);
}

int main(void)
{
	int port;

	xt_watchdog(240);
	cfg = tx_create("posix:%s:16:256:64K:0:12");
	xseg_format_spec(&cfg, spec, sizeof(spec));
	xs = tx_join(&cfg, "futex");
	port = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(port >= 0);
	me = (uint32_t)port;
	RUN(test_basic);
	RUN(test_errors);
	RUN(test_discard_zeroes);
	RUN(test_map);
	RUN(test_truncate);
	RUN(test_target);
	RUN(test_many_in_flight);
	RUN(test_sigterm_drain);
	RUN(test_readonly_and_exclusive);
	xseg_leave(xs);
	return 0;
}
