/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: the client side of the peer framework (peer_request,
 * peer_submit, peer_forward, replies on the dispatch thread, pending()),
 * through test/tools/relayd between a client and blockd: forwarded requests
 * (zero copy) and requests cut into pieces of relayd's own, each verified
 * byte for byte by xseg-bench and then read straight from blockd; a segment
 * with 8 requests where pieces must wait for free requests (pending()
 * retries them) and still all complete; a downstream peer that accepts and
 * dies with the requests: the client gets ECONNRESET through the relay in
 * both modes (recovery fails them back, the callback sees the error); and
 * SIGTERM to the relay with replies outstanding: it keeps receiving, every
 * client request is answered served, and it exits 0.
 */
#include "peers.h"

static struct xseg_config cfg;
static char spec[512];
static struct xseg *xs;
static uint32_t me;

/* Start lib/.../test-tools/relayd on @port sending to @to with extra @args. */
static pid_t relayd(const struct xseg_config *c, const char *sp, struct xseg *h, uint32_t port, uint32_t to,
		    const char *mode, const char *split)
{
	char bin[PATH_MAX], ps[16], ts[16];
	const char *argv[16];
	int n = 0, slot = -1;
	pid_t pid;

	(void)c;
	if (!tx_bin_path("relayd", bin, sizeof(bin)))
		xt_skip("lib/user/test-tools/relayd is not built (make user)");
	snprintf(ps, sizeof(ps), "%u", port);
	snprintf(ts, sizeof(ts), "%u", to);
	argv[n++] = "relayd";
	argv[n++] = "-q";
	argv[n++] = "-g";
	argv[n++] = sp;
	argv[n++] = "-p";
	argv[n++] = ps;
	argv[n++] = "--to";
	argv[n++] = ts;
	argv[n++] = "--mode";
	argv[n++] = mode;
	if (split) {
		argv[n++] = "--split";
		argv[n++] = split;
	}
	argv[n] = NULL;
	tp_init();
	for (int i = 0; i < TP_MAX_CHILDREN; i++)
		if (tp_children[i] <= 0) {
			slot = i;
			break;
		}
	CHECK(slot >= 0);
	pid = xt_fork();
	if (pid == 0) {
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	tp_children[slot] = pid;
	tp_wait_bound(h, port, pid);
	return pid;
}

static pid_t blockd(const char *sp, struct xseg *h, const char *file)
{
	const char *args[] = { "-q", "-g", sp, "-p", "1", "--file", file, "--size", "8M", "--create-file", NULL };
	pid_t pid = tp_start("blockd", args);

	tp_wait_bound(h, 1, pid);
	return pid;
}

static int bench(const char *sp, uint32_t dst, const char *bs, const char *depth, const char *count,
		 int prefill)
{
	char d[16];
	const char *args[] = { "-g", sp, "--dst", d, "--op", "mix", "--bs", bs, "--depth", depth, "-n", count,
			       "--pattern", "rand", "--range", "4M", "--verify", "--seed", "3",
			       prefill ? NULL : "--no-prefill", NULL };

	snprintf(d, sizeof(d), "%u", dst);
	return tp_wait(tp_start("xseg-bench", args));
}

static void test_forward_and_copy(void)
{
	pid_t b = blockd(spec, xs, tp_path("a.img"));
	pid_t fwd = relayd(&cfg, spec, xs, 2, 1, "forward", NULL);
	pid_t cp = relayd(&cfg, spec, xs, 3, 1, "copy", "1024");
	uint8_t sz[8];
	struct tp_req info = { .op = X_INFO, .target = "vol", .buf_len = 8, .out = sz, .out_len = 8 };
	uint64_t v = 0;

	/* Through the forwarding relay, then checked straight at blockd. */
	CHECK(bench(spec, 2, "4K", "32", "4000", 1) == 0);
	CHECK(bench(spec, 1, "4K", "32", "2000", 0) == 0);
	/* Through the copying relay: 16K requests as 16 pieces each; then blockd and forward again. */
	CHECK(bench(spec, 3, "16K", "16", "1500", 1) == 0);
	CHECK(bench(spec, 1, "16K", "16", "1000", 0) == 0);
	CHECK(bench(spec, 2, "16K", "16", "1000", 0) == 0);
	/* An op that is not READ/WRITE through the copying relay: one piece, its data copied back. */
	CHECK(tp_do(xs, me, 3, &info) == 0);
	CHECK(info.serviced == 8);
	for (int i = 7; i >= 0; i--)
		v = v << 8 | sz[i];
	CHECK(v == 8u << 20);
	CHECK(tp_stop(fwd) == 0);
	CHECK(tp_stop(cp) == 0);
	CHECK(tp_stop(b) == 0);
}

/* Pieces outnumber the segment's requests: pending() must retry them. */
static void test_pending(void)
{
	struct xseg_config c = tx_create("posix:%s:8:12:64K:0:12");
	char sp[512];
	struct xseg *h;
	pid_t b, cp;

	xseg_format_spec(&c, sp, sizeof(sp));
	h = tx_join(&c, "futex");
	b = blockd(sp, h, tp_path("b.img"));
	cp = relayd(&c, sp, h, 3, 1, "copy", "512");
	/* 4 in flight, 8 pieces each: 32 pieces for the 8 requests left. */
	CHECK(bench(sp, 3, "4K", "4", "600", 1) == 0);
	CHECK(bench(sp, 1, "4K", "4", "400", 0) == 0);
	CHECK(tp_stop(cp) == 0);
	CHECK(tp_stop(b) == 0);
	xseg_leave(h);
}

/*
 * A downstream peer in a child: binds @port, accepts requests and counts
 * them in *@accepted; once *@go is set it serves them all (or, never set,
 * it holds them until it is killed).
 */
static pid_t sink(uint32_t port, volatile uint32_t *accepted, volatile uint32_t *go)
{
	pid_t pid = xt_fork();

	if (pid == 0) {
		struct xseg *h = tx_join(&cfg, "futex");
		struct xseg_request *held[64];
		uint32_t n = 0;

		CHECK(xseg_bind_port(h, port, 0) == (int)port);
		for (;;) {
			struct xseg_request *r;

			while (n < 64 && (r = xseg_accept(h, port))) {
				held[n++] = r;
				__atomic_store_n(accepted, n, __ATOMIC_RELEASE);
			}
			if (__atomic_load_n(go, __ATOMIC_ACQUIRE)) {
				for (uint32_t i = 0; i < n; i++) {
					held[i]->serviced = held[i]->size;
					__atomic_fetch_or(&held[i]->state, XS_SERVED, __ATOMIC_RELEASE);
					xseg_signal(h, (uint32_t)xseg_respond(h, held[i]));
				}
				n = 0;
				__atomic_store_n(accepted, 0, __ATOMIC_RELEASE);
				__atomic_store_n(go, 0, __ATOMIC_RELEASE);
			}
			xseg_wait(h, port, 1000);
		}
	}
	tp_init();
	for (int i = 0; i < TP_MAX_CHILDREN; i++)
		if (tp_children[i] <= 0) {
			tp_children[i] = pid;
			break;
		}
	tp_wait_bound(xs, port, pid);
	return pid;
}

/* Submit @n READs of 4K from @me to @dst. */
static void send_reads(uint32_t dst, int n)
{
	for (int i = 0; i < n; i++) {
		struct xseg_request *r = xseg_get_request(xs, me);

		CHECK(r);
		CHECK(xseg_prep_request(xs, r, "vol", 3, 4096) == 0);
		r->op = X_READ;
		r->offset = (uint64_t)i * 4096;
		r->size = 4096;
		CHECK(xseg_submit_signal(xs, r, dst) >= 0);
	}
}

/* Receive @n replies (20 s at most); how many failed with @err (the rest must be served). */
static int recv_replies(int n, int err)
{
	uint64_t t0 = xt_now_ns();
	int failed = 0;

	for (int got = 0; got < n;) {
		struct xseg_request *r = xseg_receive(xs, me);

		if (!r) {
			CHECKF(xt_now_ns() - t0 < 20000000000ull, "%d of %d replies within 20 s", got, n);
			xseg_wait(xs, me, 100000);
			continue;
		}
		if (r->state & XS_FAILED) {
			CHECKF(r->error == err, "failed with %d, expected %d", r->error, err);
			failed++;
		} else {
			CHECK(r->state & XS_SERVED);
			CHECK(r->serviced == 4096);
		}
		CHECK(xseg_put_request(xs, r) == 0);
		got++;
	}
	return failed;
}

static void wait_accepted(volatile uint32_t *accepted, uint32_t n)
{
	for (int i = 0; __atomic_load_n(accepted, __ATOMIC_ACQUIRE) < n; i++) {
		CHECKF(i < 20000, "the sink accepted %u of %u", *accepted, n);
		usleep(1000);
	}
}

static void test_dead_downstream(void)
{
	volatile uint32_t *sh = xt_shared(4096);
	const char *modes[] = { "forward", "copy" };

	for (int m = 0; m < 2; m++) {
		pid_t s = sink(5, &sh[0], &sh[1]);
		pid_t r = relayd(&cfg, spec, xs, 2, 5, modes[m], m ? "1024" : NULL);

		send_reads(2, 3);
		wait_accepted(&sh[0], m ? 12 : 3);
		CHECK(kill(s, SIGKILL) == 0);
		CHECK(tp_wait(s) == 128 + SIGKILL);
		CHECKF(recv_replies(3, ECONNRESET) == 3, "mode %s", modes[m]);
		CHECK(tp_stop(r) == 0);
		sh[0] = sh[1] = 0;
	}
}

static void test_sigterm_drains(void)
{
	volatile uint32_t *sh = xt_shared(4096);
	const char *modes[] = { "forward", "copy" };

	for (int m = 0; m < 2; m++) {
		pid_t s = sink(5, &sh[0], &sh[1]);
		pid_t r = relayd(&cfg, spec, xs, 2, 5, modes[m], m ? "2048" : NULL);
		int st;

		send_reads(2, 8);
		wait_accepted(&sh[0], m ? 16 : 8);
		CHECK(kill(r, SIGTERM) == 0);
		usleep(200000);
		/* Still there: its replies are outstanding. */
		CHECK(waitpid(r, &st, WNOHANG) == 0);
		__atomic_store_n(&sh[1], 1, __ATOMIC_RELEASE);
		CHECKF(recv_replies(8, 0) == 0, "mode %s", modes[m]);
		CHECK(tp_wait(r) == 0);
		CHECK(kill(s, SIGKILL) == 0);
		tp_wait(s);
		sh[0] = sh[1] = 0;
	}
}

int main(void)
{
	char bin[PATH_MAX];

	xt_watchdog(240);
	if (!tx_bin_path("relayd", bin, sizeof(bin)))
		xt_skip("lib/user/test-tools/relayd is not built (make user)");
	cfg = tx_create("posix:%s:16:512:64K:0:12");
	xseg_format_spec(&cfg, spec, sizeof(spec));
	xs = tx_join(&cfg, "futex");
	{
		int r = xseg_bind_port(xs, XSEG_ANY_PORT, 0);

		CHECKF(r >= 0, "bind: %d", r);
		me = (uint32_t)r;
	}
	RUN(test_forward_and_copy);
	RUN(test_pending);
	RUN(test_dead_downstream);
	RUN(test_sigterm_drains);
	xseg_leave(xs);
	return 0;
}
