/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test/xseg/wake.c - recovery wakes the clients it fails requests back to.
 *
 * A server process accepts a request and is killed with SIGKILL while the
 * client sleeps in xseg_wait_signal on its port. A third process runs
 * recovery: the request is failed back (ECONNRESET) to the client's reply
 * queue, and the client must be woken by that, not by its timeout (a
 * sleeping client of a dead server would otherwise wait forever: the gateway
 * of the NBD pipeline did, before recovery signaled). For each sleeping
 * driver: futex and posixfd.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include "../xtest.h"
#include "common.h"

struct waiter {
	struct xseg *xs;
	int prepared;
	int result;
};

static void *sleeper(void *arg)
{
	struct waiter *w = arg;

	CHECK(xseg_prepare_wait(w->xs, 0) == 0);
	CHECK(xseg_receive(w->xs, 0) == NULL);	/* nothing yet: sleep */
	__atomic_store_n(&w->prepared, 1, __ATOMIC_RELEASE);
	/* 60 s: far beyond recovery; a timeout here means nobody woke us. */
	w->result = xseg_wait_signal(w->xs, 0, 60ull * 1000 * 1000);
	return NULL;
}

static void one(const char *driver)
{
	struct xseg_config cfg = tx_create("posix:%s:4:16:4K:0:12");
	struct xseg *xs = tx_join(&cfg, driver);
	struct xseg_request *req, *got;
	struct waiter w = { .xs = xs, .result = 1 };
	struct xseg_recovery_stats st;
	int ready[2], status;
	pthread_t t;
	pid_t server, recoverer;
	char c;

	CHECK(xseg_bind_port(xs, 0, 0) == 0);
	CHECK(pipe(ready) == 0);
	server = fork();
	CHECK(server >= 0);
	if (server == 0) {
		/* A server that accepts one request and never answers. */
		struct xseg *s = tx_join(&cfg, driver);
		CHECK(xseg_bind_port(s, 1, 0) == 1);
		CHECK(write(ready[1], "b", 1) == 1);
		while (!xseg_accept(s, 1))
			xseg_wait(s, 1, 100000);
		CHECK(write(ready[1], "a", 1) == 1);
		for (;;)
			pause();
	}
	CHECK(read(ready[0], &c, 1) == 1 && c == 'b');
	CHECK((req = xseg_get_request(xs, 0)));
	CHECK(xseg_prep_request(xs, req, "t", 1, 16) == 0);
	req->op = X_READ;
	req->size = 16;
	CHECK(xseg_submit(xs, req, 1) == 1);
	CHECK(xseg_signal(xs, 1) == 0);
	CHECK(read(ready[0], &c, 1) == 1 && c == 'a');

	CHECK(pthread_create(&t, NULL, sleeper, &w) == 0);
	while (!__atomic_load_n(&w.prepared, __ATOMIC_ACQUIRE))
		usleep(1000);
	usleep(20000);		/* let it reach the sleep proper */
	CHECK(kill(server, SIGKILL) == 0);
	CHECK(waitpid(server, &status, 0) == server);

	recoverer = fork();
	CHECK(recoverer >= 0);
	if (recoverer == 0) {
		struct xseg *r = tx_join(&cfg, driver);
		CHECK(xseg_recover(r, &st) == 0);
		CHECKF(st.requests_failed == 1, "recovery failed back %u requests, not 1", (unsigned)st.requests_failed);
		xseg_leave(r);
		_exit(0);
	}
	CHECK(waitpid(recoverer, &status, 0) == recoverer);
	CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "recoverer status %d", status);

	CHECK(pthread_join(t, NULL) == 0);
	CHECKF(w.result == 0, "%s: the client was not woken by recovery (wait returned %d)", driver, w.result);
	CHECK(xseg_cancel_wait(xs, 0) == 0 || 1);
	CHECK((got = xseg_receive(xs, 0)) == req);
	CHECKF((got->state & XS_FAILED) && got->error == ECONNRESET, "state %#x error %d", got->state, got->error);
	CHECK(xseg_put_request(xs, got) == 0);
	close(ready[0]);
	close(ready[1]);
	xseg_leave(xs);
}

static void test_recovery_wakes_futex(void) { one("futex"); }
static void test_recovery_wakes_posixfd(void) { one("posixfd"); }

int main(void)
{
	RUN(test_recovery_wakes_futex);
	RUN(test_recovery_wakes_posixfd);
	return 0;
}
