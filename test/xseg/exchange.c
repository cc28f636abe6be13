/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: real processes exchanging requests through a posix segment,
 * every byte checked: a client and patternd exchange XSEG_EXCHANGE_COUNT
 * (default 1M) requests once per driver (futex, posixfd, posix) and with
 * busy polling; 4 client processes share one server; a client of one peer
 * type drives a server of another; and requests go through a middle peer
 * process that forwards them to the server and passes the replies back.
 */
#include "procs.h"

static uint64_t count;

/* One client (this process) against patternd on port 1 with @sdrv. */
static void pair(const char *cdrv, const char *sdrv, const char *spin)
{
	struct xseg_config cfg = tx_create("posix:%s:8:256:4K:0:12");
	pid_t srv = tx_patternd(&cfg, 1, sdrv, spin);
	struct xseg *xs = tx_join(&cfg, cdrv);
	struct tx_load ld = { .dst = 1, .count = count, .depth = 32, .size = 64, .target = "vol1" };
	uint64_t t0 = xt_now_ns();

	if (spin)
		xseg_set_spin_us(xs, (uint32_t)atoi(spin));
	tx_wait_bound(xs, 1);
	tx_client(xs, &ld);
	printf("  %s -> %s%s: %" PRIu64 " requests in %.2f s\n", cdrv, sdrv, spin ? " (busy poll)" : "",
	       ld.done, (double)(xt_now_ns() - t0) / 1e9);
	CHECKF(ld.failed == 0 && ld.bad == 0, "%" PRIu64 " failed, %" PRIu64 " wrong", ld.failed, ld.bad);
	tx_stop(srv);
	CHECK(tx_free_requests(xs) == cfg.nr_requests);
	CHECK(xseg_verify(xs, tx_print_line, NULL) == 0);
	xseg_leave(xs);
}

static void test_futex(void) { pair("futex", "futex", NULL); }
static void test_posixfd(void) { pair("posixfd", "posixfd", NULL); }
static void test_posix(void) { pair("posix", "posix", NULL); }
static void test_busy_poll(void) { pair("futex", "futex", "10000000"); }
static void test_mixed_types(void) { pair("posixfd", "futex", NULL); pair("futex", "posix", NULL); }

static void test_four_clients(void)
{
	struct xseg_config cfg = tx_create("posix:%s:16:256:4K:0:12");
	pid_t srv = tx_patternd(&cfg, 1, "futex", NULL), kid[4];
	struct tx_load *res = xt_shared(sizeof(struct tx_load) * 4);
	struct xseg *xs = tx_join(&cfg, "futex");

	tx_wait_bound(xs, 1);
	for (int i = 0; i < 4; i++) {
		kid[i] = xt_fork();
		if (kid[i] == 0) {
			struct xseg *cx = tx_join(&cfg, i % 2 ? "posixfd" : "futex");

			res[i] = (struct tx_load){ .dst = 1, .count = count / 4, .depth = 16, .size = 64,
						   .target = i % 2 ? "odd" : "even" };
			tx_client(cx, &res[i]);
			xseg_leave(cx);
			_exit(0);
		}
	}
	for (int i = 0; i < 4; i++) {
		int st;

		CHECK(waitpid(kid[i], &st, 0) == kid[i]);
		CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client %d status %#x", i, st);
		CHECK(res[i].done == count / 4 && res[i].failed == 0 && res[i].bad == 0);
	}
	tx_stop(srv);
	CHECK(tx_free_requests(xs) == cfg.nr_requests);
	CHECK(xseg_verify(xs, tx_print_line, NULL) == 0);
	xseg_leave(xs);
}

/* The middle peer: requests to port 2 are forwarded to port 1; replies go back. */
static void middle(const struct xseg_config *cfg)
{
	struct xseg *xs = tx_join(cfg, "futex");

	CHECK(xseg_bind_port(xs, 2, 0) == 2);
	for (;;) {
		struct xseg_request *req;
		int busy = 0, to;

		while ((req = xseg_accept(xs, 2))) {
			to = xseg_forward(xs, req, 2, 1);
			CHECKF(to == 1, "forward: %d", to);
			xseg_signal(xs, 1);
			busy = 1;
		}
		while ((req = xseg_receive(xs, 2))) {
			CHECK(req->path_len == 0);
			to = xseg_respond(xs, req);
			CHECK(to >= 0);
			xseg_signal(xs, (uint32_t)to);
			busy = 1;
		}
		if (!busy)
			xseg_wait(xs, 2, 100000);
	}
}

static void test_forward_through_middle(void)
{
	struct xseg_config cfg = tx_create("posix:%s:8:256:4K:0:12");
	pid_t srv = tx_patternd(&cfg, 1, "futex", NULL), mid;
	struct xseg *xs = tx_join(&cfg, "posixfd");
	struct tx_load ld = { .dst = 2, .count = count / 4, .depth = 32, .size = 64, .target = "fwd" };

	mid = xt_fork();
	if (mid == 0)
		middle(&cfg);
	tx_wait_bound(xs, 1);
	tx_wait_bound(xs, 2);
	tx_client(xs, &ld);
	CHECK(ld.failed == 0 && ld.bad == 0);
	CHECK(xseg_port(xs, 2)->cnt.accepted >= ld.count);	/* really went through the middle */
	kill(mid, SIGKILL);
	waitpid(mid, NULL, 0);
	tx_stop(srv);
	xseg_recover(xs, NULL);
	CHECK(tx_free_requests(xs) == cfg.nr_requests);
	xseg_leave(xs);
}

int main(void)
{
#ifdef XT_SANITIZED
	/* Busy polling under TSan crawls: 20k per driver (xt_env_long divides by 10). */
	count = (uint64_t)xt_env_long("XSEG_EXCHANGE_COUNT", 200000);
#else
	count = (uint64_t)xt_env_long("XSEG_EXCHANGE_COUNT", 1000000);
#endif
	xt_watchdog(600);
	RUN(test_futex);
	RUN(test_posixfd);
	RUN(test_posix);
	RUN(test_busy_poll);
	RUN(test_mixed_types);
	RUN(test_four_clients);
	RUN(test_forward_through_middle);
	return 0;
}
