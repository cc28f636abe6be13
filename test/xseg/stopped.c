/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: a recoverer that is stopped (SIGSTOP, a debugger) while it
 * holds the recovery lease blocks no recovery, and nothing is settled
 * twice. A "periodic" child runs xseg_recover in a loop; the parent catches
 * it holding the lease (reads the lease word, stops the child, checks the
 * word still names it; else continues it and tries again). Meanwhile two
 * servers (ports 1 and 2) were SIGKILLed, each holding one accepted request
 * of the parent's client port with one more queued behind it. With the
 * holder stopped: xseg_recover in the parent settles port 1 at once (both
 * its requests fail back with ECONNRESET, lease_busy says the sweeps were
 * left to the holder), a restarted server binds port 1 and serves, another
 * binds port 2 directly (the bind settles it), and xseg-tool recover exits
 * 0. Then the holder is continued and finishes. At the end every request has
 * had exactly one fate: each submitted one came back exactly once, the free
 * list holds all nr_requests, and xseg_verify finds nothing (no index in two
 * places). The old code failed here: recover returned EALREADY and the bind
 * gave up with EBUSY after 20 s.
 */
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include "common.h"

#define SPEC "posix:%s:8:32:4K:0:12:dynports=4"

struct shared {
	int ready[3], stop, periodic_runs, served;
};

static struct shared *S;

/* A server for port @port: serves requests until S->stop, or (@hold) holds the first forever. */
static void server(const struct xseg_config *cfg, uint32_t port, bool hold)
{
	struct xseg *xs = tx_join(cfg, "futex");
	int r = xseg_bind_port(xs, port, 0);

	alarm(170);
	CHECKF(r == (int)port, "server: bind %u: %d", port, r);
	__atomic_store_n(&S->ready[port], 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&S->stop, __ATOMIC_ACQUIRE)) {
		struct xseg_request *req = xseg_accept(xs, port);

		if (!req) {
			xseg_wait(xs, port, 10000);
			continue;
		}
		if (hold) {
			__atomic_store_n(&S->ready[port], 2, __ATOMIC_RELEASE);
			for (;;)
				pause();	/* SIGKILLed holding it */
		}
		req->serviced = req->size;
		__atomic_fetch_or(&req->state, XS_SERVED, __ATOMIC_ACQ_REL);
		r = xseg_respond(xs, req);
		if (r >= 0)
			xseg_signal(xs, (uint32_t)r);
		__atomic_fetch_add(&S->served, 1, __ATOMIC_RELAXED);
	}
	xseg_leave(xs);
	_exit(0);
}

/* A peer's periodic recovery, as fast as it goes. */
static void periodic(const struct xseg_config *cfg)
{
	struct xseg *xs = tx_join(cfg, "futex");

	alarm(170);
	while (!__atomic_load_n(&S->stop, __ATOMIC_ACQUIRE)) {
		xseg_recover(xs, NULL);
		__atomic_fetch_add(&S->periodic_runs, 1, __ATOMIC_RELAXED);
	}
	xseg_leave(xs);
	_exit(0);
}

static pid_t spawn_server(const struct xseg_config *cfg, uint32_t port, bool hold)
{
	pid_t pid;

	fflush(stdout);
	pid = xt_fork();
	if (pid == 0)
		server(cfg, port, hold);
	while (!__atomic_load_n(&S->ready[port], __ATOMIC_ACQUIRE))
		usleep(1000);
	return pid;
}

static struct xseg_request *submit_one(struct xseg *xs, uint32_t me, uint32_t dst)
{
	struct xseg_request *req = xseg_get_request(xs, me);

	CHECK(req);
	CHECK(xseg_prep_request(xs, req, "stopped", 7, 512) == 0);
	req->op = X_READ;
	req->size = 512;
	CHECK(xseg_submit_signal(xs, req, dst) == (int)dst);
	return req;
}

/* Wait for the replies to @n requests (in any order): exactly those, each once, with @error (0: served). */
static void replies_of(struct xseg *xs, uint32_t me, struct xseg_request **reqs, int n, int error)
{
	uint64_t end = xt_now_ns() + 10000000000ull;
	struct xseg_request *got;

	for (int left = n; left;) {
		int k;

		if (!(got = xseg_receive(xs, me))) {
			CHECKF(xt_now_ns() < end, "%d of %d replies missing after 10 s", left, n);
			xseg_wait(xs, me, 100000);
			continue;
		}
		for (k = 0; k < n && reqs[k] != got; k++)
			;
		CHECKF(k < n, "reply %d was not expected (twice? never sent?)", xseg_request_index(xs, got));
		reqs[k] = NULL;
		left--;
		if (error)
			CHECKF((got->state & XS_FAILED) && got->error == error, "state %#x error %d",
			       got->state, got->error);
		else
			CHECKF(got->state & XS_SERVED, "state %#x error %d", got->state, got->error);
		CHECK(xseg_put_request(xs, got) == 0);
	}
}

static void reply_of(struct xseg *xs, uint32_t me, struct xseg_request *req, int error)
{
	replies_of(xs, me, &req, 1, error);
}

/* A server of @port that holds one of our requests, with a second one queued behind it. */
static pid_t busy_server(const struct xseg_config *cfg, struct xseg *xs, uint32_t me, uint32_t port,
			 struct xseg_request **a, struct xseg_request **b)
{
	pid_t pid = spawn_server(cfg, port, true);

	*a = submit_one(xs, me, port);
	while (__atomic_load_n(&S->ready[port], __ATOMIC_ACQUIRE) != 2)
		usleep(1000);
	*b = submit_one(xs, me, port);
	return pid;
}

static void kill_server(pid_t pid, uint32_t port)
{
	CHECK(kill(pid, SIGKILL) == 0);
	CHECK(waitpid(pid, NULL, 0) == pid);
	S->ready[port] = 0;
}

static void test_stopped_lease_holder(void)
{
	struct xseg_config cfg = tx_create(SPEC);
	struct xseg *xs = tx_join(&cfg, "futex");
	struct xseg_header *h = xseg_header(xs);
	struct xseg_recovery_stats st;
	struct xseg_request *a1, *b1, *a2, *b2, *r;
	uint64_t start, word, t0;
	pid_t per, srv1, srv2;
	int me, status, tries, bound;
	char tool[PATH_MAX];

	me = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(me >= 0);
	srv1 = busy_server(&cfg, xs, (uint32_t)me, 1, &a1, &b1);
	srv2 = busy_server(&cfg, xs, (uint32_t)me, 2, &a2, &b2);

	/* The periodic recoverer, caught and stopped inside the lease. */
	fflush(stdout);
	per = xt_fork();
	if (per == 0)
		periodic(&cfg);
	while (xseg_sys_start_of((uint32_t)per, &start) != 0)
		usleep(1000);
	word = (uint64_t)(uint32_t)per | ((start & 0xFFFFFFFFull) << 32);
	t0 = xt_now_ns();
	for (tries = 0;; tries++) {
		/* Its lease lasts microseconds: a hang guard, not a count (TSan is slow). */
		CHECKF(xt_now_ns() - t0 < 60000000000ull, "never caught the periodic recoverer holding the lease");
		if (__atomic_load_n(&h->recovery, __ATOMIC_ACQUIRE) != word) {
			sched_yield();
			continue;
		}
		CHECK(kill(per, SIGSTOP) == 0);
		CHECK(waitpid(per, &status, WUNTRACED) == per && WIFSTOPPED(status));
		if (__atomic_load_n(&h->recovery, __ATOMIC_ACQUIRE) == word)
			break;
		CHECK(kill(per, SIGCONT) == 0);
	}
	printf("  periodic recoverer %d stopped holding the lease after %d tries (%d runs)\n", (int)per,
	       tries, S->periodic_runs);
	/* Now both servers die, each holding a request with another queued. */
	kill_server(srv1, 1);
	kill_server(srv2, 2);

	/* Recovery by another process: port 1 settled now, without the lease. */
	t0 = xt_now_ns();
	CHECKF(xseg_recover(xs, &st) == 0, "recover with a stopped lease holder failed");
	printf("  recover: ports %u, failed back %u, lease busy %u\n", st.ports_freed, st.requests_failed,
	       st.lease_busy);
	/* Ports 1 and 2 both dead: both settled. */
	CHECKF(st.ports_freed == 2 && st.requests_failed == 4 && st.lease_busy == 1,
	       "ports %u failed %u lease_busy %u", st.ports_freed, st.requests_failed, st.lease_busy);
	{
		struct xseg_request *four[] = { a1, b1, a2, b2 };

		replies_of(xs, (uint32_t)me, four, 4, ECONNRESET);
	}

	/* A restarted server binds port 1 and serves. */
	srv1 = spawn_server(&cfg, 1, false);
	r = submit_one(xs, (uint32_t)me, 1);
	reply_of(xs, (uint32_t)me, r, 0);

	/* Port 2 dies again; a restarted peer's bind settles it, lease or not. */
	srv2 = busy_server(&cfg, xs, (uint32_t)me, 2, &a2, &b2);
	kill_server(srv2, 2);
	srv2 = spawn_server(&cfg, 2, false);	/* spawn_server checks its bind == 2 */
	{
		struct xseg_request *two[] = { a2, b2 };

		replies_of(xs, (uint32_t)me, two, 2, ECONNRESET);
	}
	r = submit_one(xs, (uint32_t)me, 2);
	reply_of(xs, (uint32_t)me, r, 0);
	printf("  settled and rebound with the holder stopped in %.1f ms\n", (xt_now_ns() - t0) / 1e6);

	/* The CLI: the lease stays busy, the dead ports are settled: exit 0. */
	if (tx_bin_path("xseg-tool", tool, sizeof(tool))) {
		char spec[300];
		pid_t pid;

		snprintf(spec, sizeof(spec), "%s:%s", cfg.type, cfg.name);
		fflush(stdout);
		pid = xt_fork();
		if (pid == 0) {
			execl(tool, "xseg-tool", "recover", spec, (char *)NULL);
			_exit(127);
		}
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "xseg-tool recover: status %#x", status);
	}

	/* Continue the holder: it finishes what it was doing; nothing is settled twice. */
	CHECK(kill(per, SIGCONT) == 0);
	bound = S->periodic_runs;
	while (S->periodic_runs < bound + 3)
		usleep(1000);
	__atomic_store_n(&S->stop, 1, __ATOMIC_RELEASE);
	CHECK(waitpid(per, &status, 0) == per && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(waitpid(srv1, &status, 0) == srv1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(waitpid(srv2, &status, 0) == srv2 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(xseg_recover(xs, &st) == 0 && !st.lease_busy);
	CHECKF(xseg_receive(xs, (uint32_t)me) == NULL, "a reply nobody expected (a request settled twice)");
	CHECK(xseg_leave_port(xs, (uint32_t)me) == 0);
	CHECKF(tx_free_requests(xs) == cfg.nr_requests, "free list: %u of %u", tx_free_requests(xs),
	       cfg.nr_requests);
	CHECK(xseg_verify(xs, tx_print_line, NULL) == 0);
	xseg_leave(xs);
	xseg_destroy_name(cfg.type, cfg.name);
}

int main(void)
{
	xt_watchdog(180);
	S = xt_shared(sizeof(*S));
	RUN(test_stopped_lease_holder);
	return 0;
}
