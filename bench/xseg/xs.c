/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench/xseg/xs.c - the xseg side: a server on port 0 and a client on port
 * 1 of the run's posix segment, each joined by its own process after the
 * fork, with the mechanism's driver as peer type.
 *
 *   server: accept -> mark served -> respond -> xseg_signal(the client);
 *           when nothing is queued, wait (below) on port 0
 *   client: latency (depth 0): get_request once; per round trip
 *           submit(port 0) + xseg_signal(0), then receive, waiting on
 *           port 1 until the reply is back, and resubmit the same
 *           (received) request.
 *           throughput (depth N): keep N requests submitted: every reply
 *           received is resubmitted (+ signal) at once.
 *           Either way it ends the run with an X_CLOSE request, which the
 *           server answers before it leaves.
 *
 * Waiting (enum xsb_wait):
 *   XSB_SLEEP     the race-free sleep of xseg.h, spelled out: prepare_wait,
 *                 accept/receive once more (cancel_wait if it found work),
 *                 else wait_signal. No polling at all, so every round trip
 *                 sleeps and wakes on both sides.
 *   XSB_WAIT0     xseg_wait() after xseg_set_spin_us(0).
 *   XSB_ADAPTIVE  xseg_wait() with the default spin.
 *   XSB_BUSY      never waits: retry accept/receive after a pause. It still
 *                 signals after every submit and respond, as any client
 *                 must; with nobody waiting that is a fence and a load.
 *
 * A lost wake-up fails loudly: every wait has a 200 ms timeout, and a wait
 * that times out although work was queued means the signal that came with
 * the work did not wake us.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include "xseg/xseg.h"
#include "xsb.h"

#define S XSB_SERVER
#define C XSB_CLIENT
#define SERVER_PORT 0u
#define CLIENT_PORT 1u

typedef struct xseg_request *take_fn(struct xseg *xs, uint32_t portno);

static struct xseg *join(struct xsb_run *run, int role, uint32_t port)
{
	const struct xsb_mech *m = run->mech;
	char err[256] = "";
	struct xseg *xs;
	int e = 0, r;

	if (m->sigio_blocked) {
		/* The posix driver then leaves the mask alone: no sigprocmask per sleep. */
		sigset_t set;

		sigemptyset(&set);
		sigaddset(&set, SIGIO);
		sigprocmask(SIG_BLOCK, &set, NULL);
	}
	xs = xseg_join("posix", run->segname, m->driver, NULL, NULL, &e, err, sizeof(err));
	if (!xs)
		xsb_fail(run, role, "xseg_join(%s, %s): %s (%s)", run->segname, m->driver, err, strerror(-e));
	xseg_set_spin_us(xs, m->wait == XSB_ADAPTIVE ? XSEG_SPIN_US_DEFAULT : 0);
#ifdef XSEG_PORT_NO_TIMING
	r = xseg_bind_port(xs, port, m->no_timing ? XSEG_PORT_NO_TIMING : 0);
#else
	r = xseg_bind_port(xs, port, 0);	/* built against a library without the flag (A/B) */
#endif
	if (r != (int)port)
		xsb_fail(run, role, "xseg_bind_port(%u): %s", port, r < 0 ? strerror(-r) : "another port");
	return xs;
}

static struct xseg_request *try_take(struct xsb_run *run, int role, struct xseg *xs, uint32_t port,
				     take_fn *fn)
{
	struct xseg_request *req = fn(xs, port);

	if (!req && errno != EAGAIN)
		xsb_fail(run, role, "%s(%u): %s", fn == xseg_accept ? "xseg_accept" : "xseg_receive", port,
			 strerror(errno));
	return req;
}

/*
 * The next request (server: @fn = xseg_accept) or reply (client:
 * xseg_receive) of @port, waiting for it as the mechanism says. NULL if
 * none came (a timeout, a spurious wake-up, a pause when polling); the
 * caller tries again.
 */
static struct xseg_request *take(struct xsb_run *run, int role, struct xseg *xs, uint32_t port,
				 take_fn *fn)
{
	struct xseg_request *req = try_take(run, role, xs, port, fn);
	uint64_t t0;
	int r;

	if (req)
		return req;
	switch (run->mech->wait) {
	case XSB_BUSY:
		xsb_relax();
		return NULL;
	case XSB_WAIT0:
	case XSB_ADAPTIVE:
		t0 = xsb_now_ns();
		r = xseg_wait(xs, port, XSB_WAIT_US);
		if (r < 0)
			xsb_fail(run, role, "xseg_wait(%u): %s", port, strerror(-r));
		if (r > 0 && xsb_now_ns() - t0 >= XSB_WAIT_US * 1000ull)
			xsb_fail(run, role, "lost wake-up: xseg_wait(%u) used up its %u ms timeout "
				 "and returned with work queued", port, XSB_WAIT_US / 1000);
		return r > 0 ? try_take(run, role, xs, port, fn) : NULL;
	case XSB_SLEEP:
	default:
		break;
	}
	r = xseg_prepare_wait(xs, port);
	if (r)
		xsb_fail(run, role, "xseg_prepare_wait(%u): %s", port, strerror(-r));
	req = try_take(run, role, xs, port, fn);
	if (req) {
		xseg_cancel_wait(xs, port);
		return req;
	}
	r = xseg_wait_signal(xs, port, XSB_WAIT_US);
	if (r && r != -ETIMEDOUT && r != -EINTR)
		xsb_fail(run, role, "xseg_wait_signal(%u): %s", port, strerror(-r));
	req = try_take(run, role, xs, port, fn);
	if (req && r == -ETIMEDOUT)
		xsb_fail(run, role, "lost wake-up: xseg_wait_signal(%u) timed out after %u ms "
			 "with work queued", port, XSB_WAIT_US / 1000);
	return req;
}

static void signal_port(struct xsb_run *run, int role, struct xseg *xs, uint32_t port)
{
	int r = xseg_signal(xs, port);

	if (r < 0)
		xsb_fail(run, role, "xseg_signal(%u): %s", port, strerror(-r));
}

void xsb_xseg_server(struct xsb_run *run)
{
	struct xseg *xs = join(run, S, SERVER_PORT);

	xsb_meet(run, S);
	for (;;) {
		struct xseg_request *req = take(run, S, xs, SERVER_PORT, xseg_accept);
		uint32_t op;
		int to;

		if (!req)
			continue;
		op = req->op;
		if (op != X_PING && op != X_CLOSE)
			xsb_fail(run, S, "accepted op %u, not PING", op);
		__atomic_fetch_or(&req->state, XS_SERVED, __ATOMIC_RELEASE);
		to = xseg_respond(xs, req);
		if (to < 0)
			xsb_fail(run, S, "xseg_respond: %s", strerror(-to));
		if (op == X_CLOSE) {
			/*
			 * The client's last request: the run is over. A polling
			 * client may take the reply and leave before this signal,
			 * which then finds its port unbound (-ENOENT): not an error.
			 */
			int r = xseg_signal(xs, (uint32_t)to);

			if (r < 0 && r != -ENOENT)
				xsb_fail(run, S, "xseg_signal(%d) after the last reply: %s", to, strerror(-r));
			break;
		}
		signal_port(run, S, xs, (uint32_t)to);
	}
	xseg_leave(xs);
}

static void check_reply(struct xsb_run *run, struct xseg_request *rep)
{
	if (!(rep->state & XS_SERVED) || (rep->state & XS_FAILED))
		xsb_fail(run, C, "reply not served: state 0x%x, error %d", rep->state, rep->error);
}

static void submit(struct xsb_run *run, struct xseg *xs, struct xseg_request *req)
{
	int r = xseg_submit(xs, req, SERVER_PORT);

	if (r < 0)
		xsb_fail(run, C, "xseg_submit: %s", strerror(-r));
	signal_port(run, C, xs, (uint32_t)r);	/* the port it went to */
}

static void latency(struct xsb_run *run, struct xseg *xs)
{
	struct xseg_request *req = xseg_get_request(xs, CLIENT_PORT), *rep;
	uint64_t start, t0;

	if (!req)
		xsb_fail(run, C, "xseg_get_request: %s", strerror(errno));
	xsb_meet(run, C);
	start = xsb_now_ns();
	for (uint32_t i = 0;; i++) {
		t0 = xsb_now_ns();
		submit(run, xs, req);
		while (!(rep = take(run, C, xs, CLIENT_PORT, xseg_receive)))
			if (xsb_now_ns() - t0 > XSB_NO_REPLY_NS)
				xsb_fail(run, C, "no reply for 1 s (%u round trips done)", i);
		if (rep != req)
			xsb_fail(run, C, "received request %d, not the one submitted (%d)",
				 xseg_request_index(xs, rep), xseg_request_index(xs, req));
		check_reply(run, rep);
		if (!xsb_record(run, i, t0, xsb_now_ns(), start))
			break;
	}
	if (xseg_put_request(xs, req))
		xsb_fail(run, C, "xseg_put_request failed");
}

static void throughput(struct xsb_run *run, struct xseg *xs)
{
	struct xseg_request *reqs[XSB_MAX_DEPTH], *rep;
	uint32_t depth = run->depth, inflight, i;
	uint64_t t0, now, deadline, last, done = 0;
	int stopping = 0;

	for (i = 0; i < depth; i++)
		if (!(reqs[i] = xseg_get_request(xs, CLIENT_PORT)))
			xsb_fail(run, C, "xseg_get_request #%u: %s", i, strerror(errno));
	xsb_meet(run, C);
	last = t0 = xsb_now_ns();
	deadline = t0 + run->max_ns;
	for (i = 0; i < depth; i++)
		submit(run, xs, reqs[i]);
	for (inflight = depth; inflight;) {
		uint32_t got = 0;

		/* Wait only when nothing is queued, then take every reply there is. */
		for (rep = take(run, C, xs, CLIENT_PORT, xseg_receive); rep;
		     rep = try_take(run, C, xs, CLIENT_PORT, xseg_receive)) {
			check_reply(run, rep);
			got++;
			if (!stopping) {
				submit(run, xs, rep);
			} else {
				if (xseg_put_request(xs, rep))
					xsb_fail(run, C, "xseg_put_request failed");
				inflight--;
			}
		}
		now = xsb_now_ns();
		if (!stopping)
			done += got;
		if (!stopping && now >= deadline) {
			stopping = 1;
			run->elapsed_ns = now - t0;
			run->completed = done;
		}
		if (got) {
			last = now;
			__atomic_store_n(&run->progress, (uint32_t)done, __ATOMIC_RELAXED);
		} else if (now - last > XSB_NO_REPLY_NS) {
			xsb_fail(run, C, "no reply for 1 s with %u in flight", inflight);
		}
	}
}

/*
 * End the run with a request, not a flag: a server that is polling in
 * xseg_wait() when a flag is set and signaled would go to sleep after it
 * and see the flag only at its timeout.
 */
static void stop_server(struct xsb_run *run, struct xseg *xs)
{
	struct xseg_request *req = xseg_get_request(xs, CLIENT_PORT), *rep;
	uint64_t t0 = xsb_now_ns();

	if (!req)
		xsb_fail(run, C, "xseg_get_request: %s", strerror(errno));
	req->op = X_CLOSE;
	submit(run, xs, req);
	while (!(rep = take(run, C, xs, CLIENT_PORT, xseg_receive)))
		if (xsb_now_ns() - t0 > XSB_NO_REPLY_NS)
			xsb_fail(run, C, "no reply to the stop request for 1 s");
	check_reply(run, rep);
	if (rep != req || xseg_put_request(xs, rep))
		xsb_fail(run, C, "the stop request came back wrong");
}

void xsb_xseg_client(struct xsb_run *run)
{
	struct xseg *xs = join(run, C, CLIENT_PORT);

	if (run->depth)
		throughput(run, xs);
	else
		latency(run, xs);
	stop_server(run, xs);
	xseg_leave(xs);
}
