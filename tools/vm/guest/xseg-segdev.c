// SPDX-License-Identifier: BSD-2-Clause
/*
 * tools/vm/guest/xseg-segdev.c - user peers (libxseg, linked statically)
 * exchanging requests through a segment of type "segdev": kernel memory
 * exported by /dev/segdev. Run in the test VM by scenarios/usersegdev.sh.
 *
 *   xseg-segdev COUNT DRIVER    create segdev:<name>, fork a server on port
 *                               1, send COUNT requests from port 0 with peer
 *                               type DRIVER, check every reply byte, verify
 *                               the segment, destroy it
 *   xseg-segdev futex-probe     check that a shared FUTEX_WAIT works on
 *                               segdev memory (shmem pages: the futex key is
 *                               the file's); fails with the errno otherwise
 *
 * The segdev segment type is built into libxseg (sys/user/segtypes/segdev.c).
 *
 * vm-link: libxseg
 */
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include "xseg/xseg.h"
#include "sys/kernel/segdev/segdev.h"


#define FAILF(...) do { fprintf(stderr, "xseg-segdev: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint8_t pattern(uint64_t off, uint64_t i)
{
	return (uint8_t)((off >> 12) * 131 + i * 7 + 1);
}

static struct xseg *join(const char *name, const char *driver)
{
	char err[256] = "";
	int e = 0;
	struct xseg *xs = xseg_join("segdev", name, driver, NULL, NULL, &e, err, sizeof(err));

	if (!xs)
		FAILF("join %s with %s: %d %s", name, driver, e, err);
	return xs;
}

static void serve(const char *name, const char *driver)
{
	struct xseg *xs = join(name, driver);
	int r = xseg_bind_port(xs, 1, 0);

	if (r != 1)
		FAILF("server: bind port 1: %d", r);
	for (;;) {
		struct xseg_request *req;
		int busy = 0;

		while ((req = xseg_accept(xs, 1))) {
			uint8_t *d = xseg_req_data(xs, req);
			uint64_t i;

			for (i = 0; i < req->size; i++)
				d[i] = pattern(req->offset, i);
			req->serviced = req->size;
			req->state |= XS_SERVED;
			r = xseg_respond(xs, req);
			if (r < 0)
				FAILF("server: respond: %d", r);
			xseg_signal(xs, (uint32_t)r);
			busy = 1;
		}
		if (!busy)
			xseg_wait(xs, 1, 100000);
	}
}

static int run(uint64_t count, const char *driver)
{
	char name[64], spec[128], err[256] = "";
	struct xseg_config cfg;
	struct xseg *xs;
	uint64_t sent = 0, done = 0, idle = 0, t0;
	pid_t srv;
	int r, st;

	snprintf(name, sizeof(name), "us%d", (int)getpid());
	snprintf(spec, sizeof(spec), "segdev:%s:4:64:4K:0:12", name);
	r = xseg_parse_spec(spec, &cfg, err, sizeof(err));
	if (r)
		FAILF("parse %s: %s", spec, err);
	r = xseg_create(&cfg, err, sizeof(err));
	if (r)
		FAILF("create %s: %d %s", spec, r, err);
	srv = fork();
	if (srv < 0)
		FAILF("fork: %s", strerror(errno));
	if (srv == 0) {
		serve(name, driver);
		_exit(1);
	}
	xs = join(name, driver);
	r = xseg_bind_port(xs, 0, 0);
	if (r != 0)
		FAILF("client: bind port 0: %d", r);
	t0 = now_ns();
	while (done < count) {
		struct xseg_request *req;
		uint64_t before = done;

		while (sent < count && (req = xseg_get_request(xs, 0))) {
			r = xseg_prep_request(xs, req, "vol", 3, 4096);
			if (r)
				FAILF("prep: %d", r);
			req->op = X_READ;
			req->offset = (sent % 1000) * 4096;
			req->size = 4096;
			memset(xseg_req_data(xs, req), 0, 4096);
			r = xseg_submit(xs, req, 1);
			if (r == -ENOENT && sent == 0) {	/* the server has not bound yet */
				xseg_put_request(xs, req);
				usleep(10000);
				if (now_ns() - t0 > 20000000000ull)
					FAILF("the server never bound port 1");
				continue;
			}
			if (r < 0)
				FAILF("submit: %d", r);
			xseg_signal(xs, (uint32_t)r);
			sent++;
		}
		while ((req = xseg_receive(xs, 0))) {
			const uint8_t *d = xseg_req_data(xs, req);
			uint64_t i;

			if (!(req->state & XS_SERVED) || req->serviced != 4096)
				FAILF("reply %llu: state %#x serviced %llu", (unsigned long long)done,
				      req->state, (unsigned long long)req->serviced);
			for (i = 0; i < 4096; i++)
				if (d[i] != pattern(req->offset, i))
					FAILF("reply at %llu: byte %llu is %u", (unsigned long long)req->offset,
					      (unsigned long long)i, d[i]);
			xseg_put_request(xs, req);
			done++;
		}
		if (done == before) {
			if (!idle)
				idle = now_ns();
			if (now_ns() - idle > 20000000000ull)
				FAILF("no reply for 20 s (%llu sent, %llu done)", (unsigned long long)sent,
				      (unsigned long long)done);
			xseg_wait(xs, 0, 100000);
		} else {
			idle = 0;
		}
	}
	printf("%llu requests through a segdev segment (%s driver) in %.2f s\n",
	       (unsigned long long)done, driver, (double)(now_ns() - t0) / 1e9);
	kill(srv, SIGKILL);
	waitpid(srv, &st, 0);
	xseg_recover(xs, NULL);
	r = xseg_verify(xs, NULL, NULL);
	if (r)
		FAILF("verify: %d problems", r);
	xseg_leave(xs);
	r = xseg_destroy_name("segdev", name);
	if (r)
		FAILF("destroy: %d", r);
	return 0;
}

/* Does FUTEX_WAIT accept a word in a segdev mapping? (It did not on vmalloc pages: EFAULT.) */
static int futex_probe(void)
{
	struct segdev_req req;
	uint32_t *w;
	long r;
	int e, fd = open("/dev/segdev", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		FAILF("open /dev/segdev: %s", strerror(errno));
	memset(&req, 0, sizeof(req));
	strcpy(req.name, "futexprobe");
	req.size = 4096;
	if (ioctl(fd, SEGDEV_IOC_CREATE, &req))
		FAILF("create: %s", strerror(errno));
	w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (w == MAP_FAILED)
		FAILF("mmap: %s", strerror(errno));
	*w = 1;
	/* The value differs: a usable futex key gives EAGAIN at once. */
	r = syscall(SYS_futex, w, FUTEX_WAIT, 0, NULL, NULL, 0);
	e = errno;
	printf("futex-probe: shared FUTEX_WAIT on segdev memory: %s\n",
	       r == -1 && e == EAGAIN ? "works (EAGAIN on a changed value)" : strerror(e));
	munmap(w, 4096);
	ioctl(fd, SEGDEV_IOC_DESTROY, &req);
	close(fd);
	return r == -1 && e == EAGAIN ? 0 : 1;
}

int main(int argc, char **argv)
{

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!xseg_find_segtype("segdev"))
		FAILF("libxseg has no segdev segment type%s", "");
	if (argc == 2 && !strcmp(argv[1], "futex-probe"))
		return futex_probe();
	if (argc == 3)
		return run(strtoull(argv[1], NULL, 0), argv[2]);
	fprintf(stderr, "usage: xseg-segdev COUNT DRIVER | futex-probe\n");
	return 2;
}
