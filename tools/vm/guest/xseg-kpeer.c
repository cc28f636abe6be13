// SPDX-License-Identifier: BSD-2-Clause
/*
 * tools/vm/guest/xseg-kpeer.c - the user side of the kernel <-> user peer
 * scenarios (scenarios/kpeer.sh, scenarios/matrix.sh): user peers on a
 * segdev segment that serve and send requests to kernel peers
 * (xseg_kpeer.ko) or to each other. Waits never spin (spin 0), so every
 * reply travels by a wake-up: the segdev doorbell to the kernel, SIGIO
 * (posix) or an eventfd (segdev) back.
 *
 *   xseg-kpeer create NAME                    create segdev:NAME (16 ports, 0-7 static; 256 requests)
 *   xseg-kpeer serve NAME PORT DRIVER [STYLE] serve READs on PORT until SIGTERM
 *   xseg-kpeer client NAME PORT DST COUNT DRIVER [STYLE [SIZE]]
 *                                             send COUNT READs of SIZE bytes
 *                                             (default 4096) to DST, check every byte
 *   xseg-kpeer verify NAME                    recover, then xseg_verify: no problem
 *   xseg-kpeer destroy NAME
 *
 * STYLE is how the peer waits: "sleep" (default: xseg_prepare_wait, look at
 * the queues, xseg_wait_signal) or "loop" (a callback peer in the user
 * domain: an event loop polls xseg_poll_fd's descriptor, reads it when
 * readable and drains the port).
 *
 * A client that gets no reply for 30 s (a hang guard: a lost wake-up) fails.
 *
 * vm-link: libxseg
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "xseg/xseg.h"

#define FAILF(...) do { fprintf(stderr, "xseg-kpeer: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)
#define SIZE 4096u
#define WINDOW 8u

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The pattern both sides use (xseg_kpeer.ko has the same). */
static inline uint8_t kpeer_byte(uint64_t pos)
{
	return (uint8_t)((pos >> 9) * 31 + pos * 7 + 3);
}

static struct xseg *join(const char *name, const char *driver)
{
	char err[256] = "";
	int e = 0;
	struct xseg *xs = xseg_join("segdev", name, driver, NULL, NULL, &e, err, sizeof(err));

	if (!xs)
		FAILF("join %s with %s: %d %s", name, driver, e, err);
	xseg_set_spin_us(xs, 0);
	return xs;
}

static int is_loop(const char *style)
{
	if (!strcmp(style, "loop"))
		return 1;
	if (strcmp(style, "sleep"))
		FAILF("style '%s': want sleep or loop", style);
	return 0;
}

/*
 * Wait for the port: a signal, or @timeout_us. 1 woken (or work queued), 0
 * timed out with nothing queued, -1 interrupted. @fd >= 0: the event loop's
 * descriptor (poll, then read it); else the race-free sleep of xseg.
 */
static int wait_port(struct xseg *xs, uint32_t port, int fd, uint64_t timeout_us)
{
	uint32_t rq = 0, pq = 0;
	int r;

	if (fd >= 0) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t v;

		r = poll(&p, 1, (int)(timeout_us / 1000));
		if (r < 0 && errno == EINTR)
			return -1;
		if (r < 0)
			FAILF("poll: %s", strerror(errno));
		if (r > 0 && read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			FAILF("read the poll fd: %s", strerror(errno));
		return r > 0;
	}
	r = xseg_prepare_wait(xs, port);
	if (r)
		FAILF("prepare_wait: %d", r);
	xseg_port_depths(xs, port, &rq, &pq);
	if (rq || pq) {
		xseg_cancel_wait(xs, port);
		return 1;
	}
	r = xseg_wait_signal(xs, port, timeout_us);
	xseg_cancel_wait(xs, port);
	if (r == -EINTR)
		return -1;
	if (r == -ETIMEDOUT)
		return 0;
	if (r)
		FAILF("wait_signal: %d", r);
	return 1;
}

static int poll_fd_of(struct xseg *xs, uint32_t port, int loop)
{
	int fd;

	if (!loop)
		return -1;
	fd = xseg_poll_fd(xs, port);
	if (fd < 0)
		FAILF("poll_fd of port %u: %d", port, fd);
	return fd;
}

static int serve(const char *name, uint32_t port, const char *driver, const char *style)
{
	int loop = is_loop(style);
	struct xseg *xs = join(name, driver);
	struct sigaction sa;
	uint64_t served = 0, wakes = 0;
	int r = xseg_bind_port(xs, port, 0), fd;

	if (r != (int)port)
		FAILF("serve: bind port %u: %d", port, r);
	fd = poll_fd_of(xs, port, loop);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	printf("serving port %u of %s (%s, %s)\n", port, name, driver, style);
	fflush(stdout);
	while (!stop) {
		struct xseg_request *req;

		while ((req = xseg_accept(xs, port))) {
			uint8_t *d = xseg_req_data(xs, req);
			uint64_t i;

			if (req->op != X_READ || !d || req->size > req->data_len) {
				r = xseg_fail(xs, req, EOPNOTSUPP);
			} else {
				for (i = 0; i < req->size; i++)
					d[i] = kpeer_byte(req->offset + i);
				req->serviced = req->size;
				req->state |= XS_SERVED;
				r = xseg_respond(xs, req);
			}
			if (r < 0)
				FAILF("serve: respond: %d", r);
			xseg_signal(xs, (uint32_t)r);
			served++;
		}
		/* 1 s: only so that a SIGTERM between the check and the sleep is seen. */
		if (wait_port(xs, port, fd, 1000000) > 0)
			wakes++;
	}
	printf("served %llu requests on port %u (%llu wake-ups)\n", (unsigned long long)served, port,
	       (unsigned long long)wakes);
	xseg_leave(xs);
	return 0;
}

static int client(const char *name, uint32_t port, uint32_t dst, uint64_t count, const char *driver,
		  const char *style, uint32_t size)
{
	int loop = is_loop(style);
	struct xseg *xs = join(name, driver);
	uint64_t sent = 0, done = 0, t0 = now_ns();
	int r = xseg_bind_port(xs, port, 0), fd;

	if (r != (int)port)
		FAILF("client: bind port %u: %d", port, r);
	if (size == 0 || size > 65536)
		FAILF("client: size %u: want 1..65536", size);
	fd = poll_fd_of(xs, port, loop);
	while (done < count) {
		struct xseg_request *req;

		while (sent < count && sent - done < WINDOW && (req = xseg_get_request(xs, port))) {
			r = xseg_prep_request(xs, req, "kpeer", 5, size);
			if (r)
				FAILF("prep: %d", r);
			req->op = X_READ;
			req->offset = sent * size;
			req->size = size;
			memset(xseg_req_data(xs, req), 0, size);
			r = xseg_submit(xs, req, dst);
			if (r < 0)
				FAILF("submit to port %u: %d", dst, r);
			r = xseg_signal(xs, (uint32_t)r);
			if (r)
				FAILF("signal port %u: %d", dst, r);
			sent++;
		}
		while ((req = xseg_receive(xs, port))) {
			const uint8_t *d = xseg_req_data(xs, req);
			uint64_t i;

			if ((req->state & (XS_SERVED | XS_FAILED)) != XS_SERVED || req->serviced != size || !d)
				FAILF("reply at %llu: state %#x error %d serviced %llu",
				      (unsigned long long)req->offset, req->state, req->error,
				      (unsigned long long)req->serviced);
			for (i = 0; i < size; i++)
				if (d[i] != kpeer_byte(req->offset + i))
					FAILF("reply at %llu: byte %llu is %u, want %u",
					      (unsigned long long)req->offset, (unsigned long long)i, d[i],
					      kpeer_byte(req->offset + i));
			xseg_put_request(xs, req);
			done++;
		}
		/* Sleep only when nothing more may be sent: a reply must wake us. */
		if (done < count && (sent == count || sent - done >= WINDOW)) {
			/* A hang guard, not a speed limit: only a lost wake-up waits this long. */
			r = wait_port(xs, port, fd, 30000000);
			if (r == 0) {
				uint32_t rq = 0, pq = 0;

				xseg_port_depths(xs, port, &rq, &pq);
				FAILF("no wake-up for 30 s (%llu sent, %llu done, %u replies queued): a lost wake-up",
				      (unsigned long long)sent, (unsigned long long)done, pq);
			}
		}
	}
	printf("%llu requests to port %u (%s, %s) checked in %.2f s\n", (unsigned long long)done, dst,
	       driver, style, (double)(now_ns() - t0) / 1e9);
	xseg_leave(xs);
	return 0;
}

int main(int argc, char **argv)
{
	char spec[200], err[256] = "";
	struct xseg_config cfg;
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "create")) {
		snprintf(spec, sizeof(spec), "segdev:%s:16:256:64K:0:12:dynports=8", argv[2]);
		r = xseg_parse_spec(spec, &cfg, err, sizeof(err));
		if (!r)
			r = xseg_create(&cfg, err, sizeof(err));
		if (r)
			FAILF("create %s: %d %s", spec, r, err);
		return 0;
	}
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "serve"))
		return serve(argv[2], (uint32_t)strtoul(argv[3], NULL, 0), argv[4], argc == 6 ? argv[5] : "sleep");
	if (argc >= 7 && argc <= 9 && !strcmp(argv[1], "client"))
		return client(argv[2], (uint32_t)strtoul(argv[3], NULL, 0), (uint32_t)strtoul(argv[4], NULL, 0),
			      strtoull(argv[5], NULL, 0), argv[6], argc >= 8 ? argv[7] : "sleep",
			      argc == 9 ? (uint32_t)strtoul(argv[8], NULL, 0) : SIZE);
	if (argc == 3 && !strcmp(argv[1], "verify")) {
		struct xseg *xs = join(argv[2], "posix");

		xseg_recover(xs, NULL);
		r = xseg_verify(xs, NULL, NULL);
		xseg_leave(xs);
		if (r)
			FAILF("verify %s: %d problems", argv[2], r);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "destroy")) {
		r = xseg_destroy_name("segdev", argv[2]);
		if (r)
			FAILF("destroy %s: %d", argv[2], r);
		return 0;
	}
	fprintf(stderr, "usage: xseg-kpeer create|serve|client|verify|destroy ... (see the source)\n");
	return 2;
}
