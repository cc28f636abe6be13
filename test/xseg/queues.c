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
 * of such a port got no replies at all. `xseg-tool reset-port` does the same
 * to a port on demand: it refuses a healthy port and a live owner's port
 * without --force; with --force the request stuck in a live server's
 * corrupt queue fails back and the server, untouched, serves again; a free
 * port's and a dead owner's corrupt queues are reset too.
 */
#include <limits.h>
#include <signal.h>
#include <sys/wait.h>
#include "common.h"

#define SPEC "posix:%s:8:16:4K:0:12:dynports=4"
#define SRV 1u

static char corrupt_bin[PATH_MAX], tool_bin[PATH_MAX];

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

/* xseg-tool reset-port SPEC ARGS: its exit status, its output (both streams) in @out. */
static int reset_port(const struct xseg_config *cfg, const char *args, char *out, size_t len)
{
	char cmd[PATH_MAX + 400];
	size_t n;
	FILE *f;
	int st;

	snprintf(cmd, sizeof(cmd), "'%s' reset-port '%s:%s' %s 2>&1", tool_bin, cfg->type, cfg->name, args);
	fflush(stdout);
	f = popen(cmd, "r");
	CHECK(f);
	n = fread(out, 1, len - 1, f);
	out[n] = 0;
	st = pclose(f);
	CHECK(WIFEXITED(st));
	printf("  reset-port %s -> %d: %s", args, WEXITSTATUS(st), out);
	return WEXITSTATUS(st);
}

/* A live server on port 2 that serves until it gets X_CLOSE. */
static pid_t server(const struct xseg_config *cfg)
{
	int fd[2], ok = 0;
	pid_t pid;

	CHECK(pipe(fd) == 0);
	fflush(stdout);
	pid = xt_fork();
	if (pid == 0) {
		struct xseg *xs = tx_join(cfg, "futex");
		int p = xseg_bind_port(xs, 2, 0);

		CHECK(write(fd[1], &p, sizeof(p)) == sizeof(p));
		for (;;) {
			struct xseg_request *req = xseg_accept(xs, 2);
			int to, close = 0;

			if (!req) {
				xseg_wait(xs, 2, 20000);
				continue;
			}
			close = req->op == X_CLOSE;
			req->serviced = req->size;
			req->state |= XS_SERVED;
			to = xseg_respond(xs, req);
			if (to >= 0)
				xseg_signal(xs, (uint32_t)to);
			if (close) {
				xseg_leave_port(xs, 2);
				xseg_leave(xs);
				_exit(0);
			}
		}
	}
	CHECK(read(fd[0], &ok, sizeof(ok)) == sizeof(ok) && ok == 2);
	close(fd[0]);
	close(fd[1]);
	return pid;
}

/* Submit @req to port 2 and wait (hang guard only) for its reply. */
static struct xseg_request *ask(struct xseg *xs, uint32_t me, struct xseg_request *req)
{
	struct xseg_request *got = NULL;

	CHECK(xseg_submit(xs, req, 2) == 2);
	xseg_signal(xs, 2);
	for (int i = 0; i < 20000 && !(got = xseg_receive(xs, me)); i++)
		usleep(500);
	return got;
}

/* xseg-tool reset-port: refusals, a live server's corrupt queue reset under it, free and dead ports. */
static void test_reset_port(void)
{
	struct xseg_config cfg = tx_create(SPEC);
	struct xseg *xs = tx_join(&cfg, "futex");
	struct xseg_request *req, *got;
	char out[2048];
	int me, st, dead;
	pid_t pid;

	if (!tx_bin_path("xseg-tool", tool_bin, sizeof(tool_bin))) {
		CHECKF(!getenv("CI") || strcmp(getenv("CI"), "true"), "xseg-tool is not built");
		printf("  (xseg-tool is not built: skipped)\n");
		xseg_leave(xs);
		xseg_destroy_name(cfg.type, cfg.name);
		return;
	}
	me = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(me >= 0);
	pid = server(&cfg);
	/* Healthy: refused, nothing done. */
	CHECK(reset_port(&cfg, "2", out, sizeof(out)) == 1 && strstr(out, "in order"));
	CHECK(reset_port(&cfg, "99", out, sizeof(out)) == 2 && strstr(out, "not a port"));
	CHECK(reset_port(&cfg, "", out, sizeof(out)) == 2 && strstr(out, "usage"));

	/* The live server's request queue goes corrupt: a request submitted now is stuck. */
	corrupt(&cfg, "queue-head", 2);
	req = prepped(xs, (uint32_t)me);
	CHECK(xseg_submit(xs, req, 2) == 2);
	xseg_signal(xs, 2);
	usleep(20000);
	CHECK(!xseg_receive(xs, (uint32_t)me));	/* (the server never sees it) */
	CHECK(reset_port(&cfg, "2", out, sizeof(out)) == 1 && strstr(out, "alive") &&
	      strstr(out, "--force"));
	CHECK(xseg_verify(xs, NULL, NULL) > 0);
	CHECK(reset_port(&cfg, "2 --force", out, sizeof(out)) == 0 && strstr(out, "can be lost") &&
	      strstr(out, "1 queue reset: 1 requests failed back"));
	got = xseg_receive(xs, (uint32_t)me);
	CHECKF(got == req, "the stuck request did not fail back");
	CHECKF((got->state & XS_FAILED) && got->error == ECONNRESET, "state %#x error %d", got->state, got->error);
	/* The same server serves again. */
	for (int i = 0; i < 3 * (int)cfg.nr_requests; i++) {
		got->state = (got->state & ~(uint32_t)(XS_FAILED | XS_SERVED));
		got->error = 0;
		got = ask(xs, (uint32_t)me, got);
		CHECKF(got == req && (got->state & XS_SERVED) && !(got->state & XS_FAILED),
		       "round %d after the reset: no reply from the live server", i);
	}
	got->op = X_CLOSE;
	CHECK(ask(xs, (uint32_t)me, got) == req);
	CHECK(xseg_put_request(xs, req) == 0);
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	end_clean(xs, &cfg);

	/* A free port's corrupt reply queue: reset (no bind needed), the port left free. */
	corrupt(&cfg, "reply-tail", 5);
	CHECK(xseg_verify(xs, NULL, NULL) > 0);
	CHECK(reset_port(&cfg, "5", out, sizeof(out)) == 0 && strstr(out, "1 queue reset"));
	CHECK(xseg_port(xs, 5)->owner >> 62 == XSEG_PORT_FREE);
	end_clean(xs, &cfg);

	/* A dead owner's corrupt request queue: recovered (its request fails back), the port freed. */
	pid = victim(&cfg, 2, &dead);
	req = prepped(xs, (uint32_t)me);
	CHECK(xseg_submit(xs, req, 2) == 2);
	CHECK(kill(pid, SIGKILL) == 0 && waitpid(pid, NULL, 0) == pid);
	corrupt(&cfg, "queue-tail", 2);
	CHECK(reset_port(&cfg, "2", out, sizeof(out)) == 0 && strstr(out, "1 ports freed"));
	got = xseg_receive(xs, (uint32_t)me);
	CHECK(got == req && (got->state & XS_FAILED) && got->error == ECONNRESET);
	CHECK(xseg_put_request(xs, got) == 0);
	CHECK(xseg_bind_port(xs, 2, 0) == 2);
	roundtrip(xs, (uint32_t)me, 2);
	CHECK(xseg_leave_port(xs, 2) == 0);
	CHECK(xseg_leave_port(xs, (uint32_t)me) == 0);
	end_clean(xs, &cfg);
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
	RUN(test_reset_port);
	return 0;
}
