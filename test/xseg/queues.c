/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: a port whose queue counters a peer corrupted is usable again
 * after recovery or a new bind, and nothing in it is lost. A client process
 * dies with a reply queued to its port, or a server process dies with a
 * request queued to its port; lib/.../test-tools/xseg-corrupt then overwrites that
 * queue's tail or head (2^40 positions off). xseg_recover settles the dead
 * port: the queue is reset (its entries taken back: the reply freed, the
 * request failed back with ECONNRESET), so the next peer to bind the port
 * gets requests and replies again. The same corruption of a free port's
 * queue is reset by the next bind. At the end all nr_requests are in the
 * free list and xseg_verify finds nothing. Before the reset, the next client
 * of such a port got no replies at all.
 */
#include <limits.h>
#include <signal.h>
#include <sys/wait.h>
#include "common.h"

#define SPEC "posix:%s:8:16:4K:0:12:dynports=4"
#define SRV 1u

static char corrupt_bin[PATH_MAX];

/* xseg-corrupt SPEC WHAT PORT: 0 or a failed CHECK. */
static void corrupt(const struct xseg_config *cfg, const char *what, uint32_t port)
{
	char spec[300], n[16];
	int status;
	pid_t pid;

	snprintf(spec, sizeof(spec), "%s:%s", cfg->type, cfg->name);
	snprintf(n, sizeof(n), "%u", port);
	fflush(stdout);
	pid = xt_fork();
	if (pid == 0) {
		execl(corrupt_bin, "xseg-corrupt", spec, what, n, (char *)NULL);
		_exit(127);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "xseg-corrupt %s %u: %#x", what, port, status);
}

static struct xseg_request *prepped(struct xseg *xs, uint32_t me)
{
	struct xseg_request *req = xseg_get_request(xs, me);

	CHECK(req);
	CHECK(xseg_prep_request(xs, req, "q", 1, 512) == 0);
	req->op = X_READ;
	req->size = 512;
	return req;
}

/* A round trip in this process: client port @me, server port @srv (both ours). */
static void roundtrip(struct xseg *xs, uint32_t me, uint32_t srv)
{
	struct xseg_request *req = prepped(xs, me), *got;

	CHECK(xseg_submit(xs, req, srv) == (int)srv);
	got = xseg_accept(xs, srv);
	CHECKF(got == req, "port %u got no request", srv);
	got->state |= XS_SERVED;
	CHECK(xseg_respond(xs, got) == (int)me);
	got = xseg_receive(xs, me);
	CHECKF(got == req, "port %u got no reply", me);
	CHECK(xseg_put_request(xs, got) == 0);
}

/* A child that binds @port (or any), tells us which, and waits to be killed. */
static pid_t victim(const struct xseg_config *cfg, uint32_t port, int *bound)
{
	int fd[2];
	pid_t pid;

	CHECK(pipe(fd) == 0);
	fflush(stdout);
	pid = xt_fork();
	if (pid == 0) {
		struct xseg *xs = tx_join(cfg, "futex");
		int p = xseg_bind_port(xs, port, 0);

		CHECK(write(fd[1], &p, sizeof(p)) == sizeof(p));
		for (;;)
			pause();
	}
	CHECK(read(fd[0], bound, sizeof(*bound)) == sizeof(*bound));
	CHECK(*bound >= 0);
	close(fd[0]);
	close(fd[1]);
	return pid;
}

static void end_clean(struct xseg *xs, const struct xseg_config *cfg)
{
	CHECKF(tx_free_requests(xs) == cfg->nr_requests, "free list: %u of %u (a request lost)",
	       tx_free_requests(xs), cfg->nr_requests);
	CHECK(xseg_verify(xs, tx_print_line, NULL) == 0);
}

/* A dead client's reply queue, corrupted: recovery resets it; the next client gets replies. */
static void reply_queue(const char *what)
{
	struct xseg_config cfg = tx_create(SPEC);
	struct xseg *xs = tx_join(&cfg, "futex");
	struct xseg_recovery_stats st;
	struct xseg_request *req;
	int cli, me;
	pid_t pid;

	CHECK(xseg_bind_port(xs, SRV, 0) == (int)SRV);
	pid = victim(&cfg, XSEG_ANY_PORT, &cli);
	/* A reply waits in its reply queue: ours, readdressed as if it had sent it. */
	{
		int other = xseg_bind_port(xs, XSEG_ANY_PORT, 0);

		CHECK(other > cli);
		req = prepped(xs, (uint32_t)other);
		CHECK(xseg_submit(xs, req, SRV) == (int)SRV);
		CHECK(xseg_accept(xs, SRV) == req);
		req->src_port = (uint32_t)cli;
		req->src_gen = XSEG_OWNER_GEN(xseg_port(xs, (uint32_t)cli)->owner);
		req->state |= XS_SERVED;
		CHECK(xseg_respond(xs, req) == cli);
		CHECK(xseg_leave_port(xs, (uint32_t)other) == 0);
	}
	CHECK(kill(pid, SIGKILL) == 0 && waitpid(pid, NULL, 0) == pid);
	corrupt(&cfg, what, (uint32_t)cli);
	CHECK(xseg_verify(xs, NULL, NULL) > 0);
	CHECK(xseg_recover(xs, &st) == 0);
	CHECKF(st.ports_freed == 1, "%s: ports freed %u", what, st.ports_freed);
	me = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECKF(me == cli, "bound %d, not the dead client's port %d", me, cli);
	for (int i = 0; i < 3 * (int)cfg.nr_requests; i++)
		roundtrip(xs, (uint32_t)me, SRV);
	CHECK(xseg_leave_port(xs, (uint32_t)me) == 0);
	end_clean(xs, &cfg);

	/* The same corruption of the now free port: the next bind resets it. */
	corrupt(&cfg, what, (uint32_t)cli);
	me = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(me == cli);
	for (int i = 0; i < 3 * (int)cfg.nr_requests; i++)
		roundtrip(xs, (uint32_t)me, SRV);
	CHECK(xseg_leave_port(xs, (uint32_t)me) == 0);
	end_clean(xs, &cfg);
	printf("  %s: the next client of port %d got every reply\n", what, cli);
	xseg_leave(xs);
	xseg_destroy_name(cfg.type, cfg.name);
}

/* A dead server's request queue, corrupted: its request fails back; the next server gets requests. */
static void request_queue(const char *what)
{
	struct xseg_config cfg = tx_create(SPEC);
	struct xseg *xs = tx_join(&cfg, "futex");
	struct xseg_recovery_stats st;
	struct xseg_request *req, *got;
	int srv, me;
	pid_t pid;

	me = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(me >= 0);
	pid = victim(&cfg, 2, &srv);
	CHECK(srv == 2);
	req = prepped(xs, (uint32_t)me);
	CHECK(xseg_submit(xs, req, 2) == 2);
	CHECK(kill(pid, SIGKILL) == 0 && waitpid(pid, NULL, 0) == pid);
	corrupt(&cfg, what, 2);
	CHECK(xseg_recover(xs, &st) == 0);
	got = xseg_receive(xs, (uint32_t)me);
	CHECKF(got == req, "%s: the queued request did not fail back", what);
	CHECKF((got->state & XS_FAILED) && got->error == ECONNRESET, "state %#x error %d", got->state, got->error);
	CHECK(xseg_put_request(xs, got) == 0);
	CHECK(xseg_bind_port(xs, 2, 0) == 2);
	for (int i = 0; i < 3 * (int)cfg.nr_requests; i++)
		roundtrip(xs, (uint32_t)me, 2);
	CHECK(xseg_leave_port(xs, 2) == 0);
	CHECK(xseg_leave_port(xs, (uint32_t)me) == 0);
	end_clean(xs, &cfg);
	printf("  %s: the failed-back request and the next server of port 2 are fine\n", what);
	xseg_leave(xs);
	xseg_destroy_name(cfg.type, cfg.name);
}

static void test_reply_tail(void) { reply_queue("reply-tail"); }
static void test_reply_head(void) { reply_queue("reply-head"); }
static void test_queue_tail(void) { request_queue("queue-tail"); }
static void test_queue_head(void) { request_queue("queue-head"); }

int main(void)
{
	xt_watchdog(120);
	if (!tx_bin_path("xseg-corrupt", corrupt_bin, sizeof(corrupt_bin)))
		xt_skip("lib/user/test-tools/xseg-corrupt is not built (make user)");
	RUN(test_reply_tail);
	RUN(test_reply_head);
	RUN(test_queue_tail);
	RUN(test_queue_head);
	return 0;
}
