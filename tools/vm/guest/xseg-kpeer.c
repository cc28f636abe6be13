// SPDX-License-Identifier: BSD-2-Clause
/*
 * tools/vm/guest/xseg-kpeer.c - the user side of the kernel <-> user peer
 * scenario (scenarios/kpeer.sh): user peers on a segdev segment that serve
 * and send requests to the kernel peer of xseg_kpeer.ko. Waits never spin
 * (spin 0), so every reply travels by a wake-up: the segdev doorbell to the
 * kernel, SIGIO (posix) or an eventfd (segdev) back.
 *
 *   xseg-kpeer create NAME                    create segdev:NAME (8 ports, 256 requests)
 *   xseg-kpeer serve NAME PORT DRIVER         serve READs on PORT until SIGTERM
 *   xseg-kpeer client NAME PORT DST COUNT DRIVER
 *                                             send COUNT READs to DST, check every byte
 *   xseg-kpeer verify NAME                    recover, then xseg_verify: no problem
 *   xseg-kpeer destroy NAME
 *
 * A reply that does not come within 20 s of the last one (a lost wake-up)
 * fails the client.
 *
 * vm-link: libxseg
 */
#include <errno.h>
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

static int serve(const char *name, uint32_t port, const char *driver)
{
	struct xseg *xs = join(name, driver);
	struct sigaction sa;
	uint64_t served = 0;
	int r = xseg_bind_port(xs, port, 0);

	if (r != (int)port)
		FAILF("serve: bind port %u: %d", port, r);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	printf("serving port %u of %s (%s)\n", port, name, driver);
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
		xseg_wait(xs, port, 1000000);
	}
	printf("served %llu requests on port %u\n", (unsigned long long)served, port);
	xseg_leave(xs);
	return 0;
}

static int client(const char *name, uint32_t port, uint32_t dst, uint64_t count, const char *driver)
{
	struct xseg *xs = join(name, driver);
	uint64_t sent = 0, done = 0, last = now_ns(), t0 = last;
	int r = xseg_bind_port(xs, port, 0);

	if (r != (int)port)
		FAILF("client: bind port %u: %d", port, r);
	while (done < count) {
		struct xseg_request *req;

		while (sent < count && sent - done < WINDOW && (req = xseg_get_request(xs, port))) {
			r = xseg_prep_request(xs, req, "kpeer", 5, SIZE);
			if (r)
				FAILF("prep: %d", r);
			req->op = X_READ;
			req->offset = sent * SIZE;
			req->size = SIZE;
			memset(xseg_req_data(xs, req), 0, SIZE);
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

			if ((req->state & (XS_SERVED | XS_FAILED)) != XS_SERVED || req->serviced != SIZE || !d)
				FAILF("reply at %llu: state %#x error %d serviced %llu",
				      (unsigned long long)req->offset, req->state, req->error,
				      (unsigned long long)req->serviced);
			for (i = 0; i < SIZE; i++)
				if (d[i] != kpeer_byte(req->offset + i))
					FAILF("reply at %llu: byte %llu is %u, want %u",
					      (unsigned long long)req->offset, (unsigned long long)i, d[i],
					      kpeer_byte(req->offset + i));
			xseg_put_request(xs, req);
			done++;
			last = now_ns();
		}
		/* Sleep only when nothing more may be sent: a reply must wake us. */
		if (done < count && (sent == count || sent - done >= WINDOW)) {
			if (now_ns() - last > 20000000000ull)
				FAILF("no reply for 20 s (%llu sent, %llu done): a lost wake-up",
				      (unsigned long long)sent, (unsigned long long)done);
			r = xseg_wait(xs, port, 1000000);
			if (r < 0)
				FAILF("wait: %d", r);
		}
	}
	printf("%llu requests to the kernel peer on port %u (%s) checked in %.2f s\n",
	       (unsigned long long)done, dst, driver, (double)(now_ns() - t0) / 1e9);
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
		snprintf(spec, sizeof(spec), "segdev:%s:8:256:64K:0:12", argv[2]);
		r = xseg_parse_spec(spec, &cfg, err, sizeof(err));
		if (!r)
			r = xseg_create(&cfg, err, sizeof(err));
		if (r)
			FAILF("create %s: %d %s", spec, r, err);
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "serve"))
		return serve(argv[2], (uint32_t)strtoul(argv[3], NULL, 0), argv[4]);
	if (argc == 7 && !strcmp(argv[1], "client"))
		return client(argv[2], (uint32_t)strtoul(argv[3], NULL, 0), (uint32_t)strtoul(argv[4], NULL, 0),
			      strtoull(argv[5], NULL, 0), argv[6]);
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
