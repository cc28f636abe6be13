/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: a redirect changed under a submitting client never strands a
 * request. Two server processes sleep on ports 1 and 2 with a sleeping
 * driver and no polling at all (spin 0, prepare_wait -> accept -> wait_signal:
 * only a signal wakes them). A client submits one request at a time to
 * port 1 with xseg_submit_signal() while port 1's redirect points to port 2
 * or nowhere: first set by the client before each submit (the answering
 * server must be exactly the one the redirect named), then flipped by a
 * third process as fast as it can (the answering server must be the one
 * xseg_submit returned: the redirect as the submit read it). Every request
 * must be answered; the client's wait for a reply is a hang guard (10 s),
 * which the old code hit: it signaled port 1 and the server asleep on port 2
 * never woke. For futex and posixfd.
 */
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include "common.h"

#define NREQ	300		/* requests per phase */
#define GUARD_S	10		/* a reply later than this is a hang */

struct shared {
	int ready[3];
	int stop;
	int toggling;
	uint64_t flips;
	uint64_t served[3];
};

static struct shared *S;

/* A server that only sleeps: the serving port's number goes into serviced. */
static void server(const struct xseg_config *cfg, const char *driver, uint32_t port)
{
	struct xseg *xs = tx_join(cfg, driver);

	alarm(120);
	xseg_set_spin_us(xs, 0);
	CHECK(xseg_bind_port(xs, port, 0) == (int)port);
	__atomic_store_n(&S->ready[port], 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&S->stop, __ATOMIC_ACQUIRE)) {
		struct xseg_request *req = xseg_accept(xs, port);
		int to;

		if (!req) {
			CHECK(xseg_prepare_wait(xs, port) == 0);
			req = xseg_accept(xs, port);
			if (!req) {
				/* Long: a request that waits here waits for a signal. */
				xseg_wait_signal(xs, port, 60ull * 1000 * 1000);
				continue;
			}
			xseg_cancel_wait(xs, port);
		}
		req->serviced = port;
		__atomic_fetch_or(&req->state, XS_SERVED, __ATOMIC_ACQ_REL);
		__atomic_fetch_add(&S->served[port], 1, __ATOMIC_RELAXED);
		to = xseg_respond(xs, req);
		if (to >= 0)
			xseg_signal(xs, (uint32_t)to);
	}
	xseg_leave(xs);
	_exit(0);
}

/* Flip port 1's redirect between port 2 and none until told to stop. */
static void toggler(const struct xseg_config *cfg, const char *driver)
{
	struct xseg *xs = tx_join(cfg, driver);
	uint64_t seed = xt_seed();

	alarm(120);
	__atomic_store_n(&S->toggling, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&S->stop, __ATOMIC_ACQUIRE)) {
		CHECK(xseg_set_redirect(xs, 1, xt_rand(&seed) & 1 ? 2 : XSEG_NO_PORT) == 0);
		__atomic_fetch_add(&S->flips, 1, __ATOMIC_RELEASE);
		for (volatile unsigned i = xt_rand(&seed) % 2000; i; i--)
			;
	}
	xseg_leave(xs);
	_exit(0);
}

/* One request to port 1; returns the port that answered it, checked against the submit's. */
static uint32_t one_request(struct xseg *xs, uint32_t me, uint64_t n)
{
	struct xseg_request *req = xseg_get_request(xs, me), *got;
	uint64_t end;
	int to;

	CHECK(req);
	CHECK(xseg_prep_request(xs, req, "redirect", 8, 0) == 0);
	req->op = X_PING;
	to = xseg_submit_signal(xs, req, 1);
	CHECKF(to == 1 || to == 2, "request %llu: submit %d", (unsigned long long)n, to);
	end = xt_now_ns() + GUARD_S * 1000000000ull;
	while (!(got = xseg_receive(xs, me))) {
		CHECKF(xt_now_ns() < end, "request %llu, queued to port %d: no reply in %d s "
		       "(the server there was never woken)", (unsigned long long)n, to, GUARD_S);
		xseg_wait(xs, me, 100000);
	}
	CHECK(got == req);
	CHECKF(got->state & XS_SERVED, "request %llu: state %#x", (unsigned long long)n, got->state);
	CHECKF(got->serviced == (uint64_t)to, "request %llu: queued to port %d, answered by port %llu",
	       (unsigned long long)n, to, (unsigned long long)got->serviced);
	CHECK(xseg_put_request(xs, got) == 0);
	return (uint32_t)to;
}

static void run(const char *driver)
{
	struct xseg_config cfg = tx_create("posix:%s:8:32:4K:0:12:dynports=4");
	struct xseg *xs = tx_join(&cfg, driver);
	pid_t srv[3], tog;
	uint64_t via[3] = { 0 };
	int me, status;

	memset(S, 0, sizeof(*S));
	for (uint32_t p = 1; p <= 2; p++) {
		fflush(stdout);
		srv[p] = xt_fork();
		if (srv[p] == 0)
			server(&cfg, driver, p);
	}
	for (uint32_t p = 1; p <= 2; p++) {
		uint64_t end = xt_now_ns() + 10000000000ull;

		while (!__atomic_load_n(&S->ready[p], __ATOMIC_ACQUIRE)) {
			CHECKF(xt_now_ns() < end, "server %u did not start", p);
			usleep(1000);
		}
	}
	me = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(me >= 0);
	usleep(20000);		/* both servers asleep */

	/* Phase 1: the redirect as set right before each submit decides. */
	for (uint64_t n = 0; n < NREQ; n++) {
		uint32_t want = n % 3 == 1 ? 2 : 1;

		CHECK(xseg_set_redirect(xs, 1, want == 2 ? 2 : XSEG_NO_PORT) == 0);
		CHECKF(one_request(xs, (uint32_t)me, n) == want, "request %llu: not queued to port %u",
		       (unsigned long long)n, want);
		if (n % 50 == 49)
			usleep(2000);	/* let both servers fall fully asleep now and then */
	}

	/* Phase 2: another process flips the redirect while we submit. */
	fflush(stdout);
	tog = xt_fork();
	if (tog == 0)
		toggler(&cfg, driver);
	while (!__atomic_load_n(&S->toggling, __ATOMIC_ACQUIRE))
		usleep(1000);
	for (uint64_t n = 0; n < NREQ; n++) {
		uint64_t f = __atomic_load_n(&S->flips, __ATOMIC_ACQUIRE);

		/* On a busy machine the toggler may not run: let it flip at least once. */
		while (__atomic_load_n(&S->flips, __ATOMIC_ACQUIRE) == f)
			sched_yield();
		via[one_request(xs, (uint32_t)me, NREQ + n)]++;
	}

	__atomic_store_n(&S->stop, 1, __ATOMIC_RELEASE);
	CHECK(waitpid(tog, &status, 0) == tog && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	for (uint32_t p = 1; p <= 2; p++) {
		xseg_signal(xs, p);
		CHECK(waitpid(srv[p], &status, 0) == srv[p]);
		CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "server %u: status %#x", p, status);
	}
	printf("  %s: %d requests answered; while flipping, %llu went to port 1 and %llu to port 2\n",
	       driver, 2 * NREQ, (unsigned long long)via[1], (unsigned long long)via[2]);
	CHECK(S->served[1] + S->served[2] == 2 * NREQ);
	CHECK(xseg_leave(xs) == 0);
	xseg_destroy_name(cfg.type, cfg.name);
}

static void test_redirect_futex(void) { run("futex"); }
static void test_redirect_posixfd(void) { run("posixfd"); }

int main(void)
{
	xt_watchdog(300);
	S = xt_shared(sizeof(*S));
	RUN(test_redirect_futex);
	RUN(test_redirect_posixfd);
	return 0;
}
