/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: one thread waits on many of its ports at once, through the
 * core (xseg/signal.c keeps each thread's prepared waits). For each sleeping
 * driver (futex, posix, posixfd): a thread prepares waits on 40 ports (the
 * drivers used to stop it at 4 with -ENOSPC), each port's signal area shows
 * it as a waiter, and a request a client process submits and signals to any
 * one of them wakes its single xseg_wait_signal_any, which ends every wait;
 * xseg_wait_any does the same with its poll first, and times out when
 * nothing comes; bad calls (no ports, a port not ours, a port not prepared)
 * are refused and leave the other waits as they were.
 */
#include <sys/wait.h>
#include "../xtest.h"
#include "common.h"
#include "xseg/signal_area.h"

#define NP	40		/* ports the waiting thread serves: 1..NP */
#define CLIENT	0

static struct xseg_config cfg;
static uint32_t ports[NP];

/* Does @port's signal area show a waiter, as @driver records one? */
static int announced(struct xseg *xs, const char *driver, uint32_t port)
{
	void *a = xseg_port_signal_area(xs, port);

	if (!strcmp(driver, "futex"))
		return __atomic_load_n(&((struct xseg_sig_futex *)a)->waiters, __ATOMIC_ACQUIRE) != 0;
	if (!strcmp(driver, "posix"))
		return XSEG_SIGP_PID(__atomic_load_n(&((struct xseg_sig_posix *)a)->waiter,
						     __ATOMIC_ACQUIRE)) == (uint32_t)getpid();
	return __atomic_load_n(&((struct xseg_sig_posixfd *)a)->waiting, __ATOMIC_ACQUIRE) != 0;
}

/*
 * A client process: submit one request to @dst from port CLIENT, signal
 * it, wait for the reply. Returns its pid.
 */
static pid_t client(const char *driver, uint32_t dst)
{
	pid_t pid = xt_fork();

	if (pid == 0) {
		struct xseg *c = tx_join(&cfg, driver);
		struct xseg_request *req;
		uint64_t t0 = xt_now_ns();

		alarm(60);
		CHECK(xseg_bind_port(c, CLIENT, 0) == CLIENT);
		CHECK((req = xseg_get_request(c, CLIENT)));
		CHECK(xseg_prep_request(c, req, "t", 1, 16) == 0);
		req->op = X_READ;
		req->size = 16;
		CHECK(xseg_submit_signal(c, req, dst) >= 0);
		while (!xseg_receive(c, CLIENT)) {
			CHECKF(xt_now_ns() - t0 < 20000000000ull, "no reply from port %u within 20 s", dst);
			xseg_wait(c, CLIENT, 100000);
		}
		CHECK(xseg_put_request(c, req) == 0);
		xseg_leave(c);
		_exit(0);
	}
	return pid;
}

static void reap(pid_t pid)
{
	int st;

	CHECK(waitpid(pid, &st, 0) == pid);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client %d status %#x", (int)pid, st);
}

/* Serve the one request queued to @port (found after a wake-up) and answer it. */
static void serve(struct xseg *xs, uint32_t port)
{
	struct xseg_request *req = xseg_accept(xs, port);
	int r;

	CHECKF(req, "woken, but nothing was queued to port %u", port);
	req->serviced = req->size;
	r = xseg_respond(xs, req);
	CHECKF(r >= 0, "respond: %d", r);
	xseg_signal(xs, (uint32_t)r);
}

/* Prepare a wait on every port, each announced in its signal area. */
static void prepare_all(struct xseg *xs, const char *driver)
{
	for (uint32_t i = 0; i < NP; i++) {
		int r = xseg_prepare_wait(xs, ports[i]);

		CHECKF(r == 0, "%s: prepare_wait on port %u, this thread's wait %u: %d", driver, ports[i],
		       i + 1, r);
	}
	for (uint32_t i = 0; i < NP; i++)
		CHECKF(announced(xs, driver, ports[i]), "%s: port %u does not show our wait", driver,
		       ports[i]);
}

static void one(const char *driver)
{
	const uint32_t targets[] = { NP, 17, 5, 1 };
	struct xseg *xs;
	uint64_t spurious = 0;
	int r;

	cfg = tx_create("posix:%s:48:64:4K:0:12:dynports=48");
	xs = tx_join(&cfg, driver);
	for (uint32_t i = 0; i < NP; i++) {
		ports[i] = i + 1;
		CHECK(xseg_bind_port(xs, ports[i], 0) == (int)ports[i]);
	}

	/* The spelled-out sleep on all ports: a request to any one wakes it. */
	for (unsigned t = 0; t < sizeof(targets) / sizeof(targets[0]); t++) {
		pid_t pid;
		int woke = 0;

		prepare_all(xs, driver);
		CHECK(xseg_prepare_wait(xs, ports[3]) == 0);	/* prepared again: still one wait */
		pid = client(driver, targets[t]);
		for (int round = 0; round < 1000 && !woke; round++) {
			if (round)
				prepare_all(xs, driver);
			r = xseg_wait_signal_any(xs, ports, NP, 20000000);
			CHECKF(r == 0 || r == -EINTR, "%s: wait on %u ports for port %u: %d", driver, NP,
			       targets[t], r);
			/* Every wait has ended. */
			CHECK(xseg_wait_signal(xs, ports[0], 0) == -EINVAL);
			CHECK(!announced(xs, driver, ports[NP - 1]));
			{
				uint32_t rq = 0;

				CHECK(xseg_port_depths(xs, targets[t], &rq, NULL) == 0);
				woke = rq > 0;
			}
			spurious += !woke;
		}
		CHECKF(woke, "%s: a request to port %u never woke the wait on %u ports", driver,
		       targets[t], NP);
		serve(xs, targets[t]);
		reap(pid);
	}

	/* The adaptive wait on all ports: times out quietly, wakes for any port. */
	r = xseg_wait_any(xs, ports, NP, 20000);
	CHECKF(r == 0, "%s: xseg_wait_any with nothing queued: %d", driver, r);
	CHECK(xseg_wait_signal(xs, ports[0], 0) == -EINVAL);	/* it ended its waits */
	for (unsigned t = 0; t < sizeof(targets) / sizeof(targets[0]); t++) {
		pid_t pid = client(driver, targets[t]);
		uint32_t rq = 0;

		for (int round = 0; round < 1000 && !rq; round++) {
			r = xseg_wait_any(xs, ports, NP, 20000000);
			CHECKF(r == 0 || r == 1, "%s: xseg_wait_any for port %u: %d", driver, targets[t], r);
			CHECK(xseg_port_depths(xs, targets[t], &rq, NULL) == 0);
			CHECK(r == 1 || rq == 0);
		}
		CHECKF(rq == 1, "%s: xseg_wait_any never saw the request to port %u", driver, targets[t]);
		CHECK(xseg_wait_any(xs, ports, NP, 0) == 1);	/* queued: no sleep at all */
		serve(xs, targets[t]);
		reap(pid);
	}

	/* Bad calls are refused and leave the other waits alone. */
	CHECK(xseg_wait_any(xs, ports, 0, 0) == -EINVAL);
	CHECK(xseg_wait_signal_any(xs, ports, 0, 0) == -EINVAL);
	{
		uint32_t bad[2] = { ports[0], 47 };	/* 47: not ours */
		uint32_t half[2] = { ports[0], ports[2] };

		CHECK(xseg_wait_any(xs, bad, 2, 0) == -EPERM);
		CHECK(xseg_prepare_wait(xs, ports[0]) == 0);
		CHECK(xseg_prepare_wait(xs, ports[1]) == 0);
		CHECK(xseg_wait_signal_any(xs, bad, 2, 0) == -EPERM);
		CHECK(xseg_wait_signal_any(xs, half, 2, 0) == -EINVAL);	/* ports[2]: not prepared */
		CHECK(announced(xs, driver, ports[0]) && announced(xs, driver, ports[1]));
		CHECK(xseg_wait_signal(xs, ports[0], 0) == -ETIMEDOUT);	/* still prepared */
		CHECK(xseg_cancel_wait(xs, ports[1]) == 0);
		CHECK(xseg_cancel_wait(xs, ports[1]) == 0);		/* spare: harmless */
		CHECK(!announced(xs, driver, ports[0]) && !announced(xs, driver, ports[1]));
	}
	printf("%s: %u ports per wait, %llu spurious wake-ups\n", driver, NP,
	       (unsigned long long)spurious);
	xseg_leave(xs);
}

static void test_many_futex(void) { one("futex"); }
static void test_many_posix(void) { one("posix"); }
static void test_many_posixfd(void) { one("posixfd"); }

int main(void)
{
	RUN(test_many_futex);
	RUN(test_many_posix);
	RUN(test_many_posixfd);
	return 0;
}
