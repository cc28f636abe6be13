/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/xseg-debug.c - xseg-tool's commands for looking into a live
 * segment: the per-port quota lines of `status`, `requests` (every
 * request not on the free list: where it is, who holds it, since when) and
 * `tap` (a peer in the middle: binds a port, forwards what comes to it to
 * another port, relays the replies back, one line per request).
 *
 * Everything here reads memory that peers write while we look: each field
 * is loaded once, bounds-checked before it indexes anything, and printed
 * escaped. `requests` changes nothing.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../sys/domain.h"
#include "xseg-debug.h"

void print_quotas(struct xseg *xs, uint32_t nr_ports)
{
	for (uint32_t i = 0; i < nr_ports; i++) {
		struct xseg_port *p = xseg_port(xs, i);
		struct xseg_quota q;
		char mr[16] = "-", mb[24] = "-";

		if (!p || XSEG_OWNER_STATE(__atomic_load_n(&p->owner, __ATOMIC_ACQUIRE)) !=
			  XSEG_PORT_BOUND || xseg_port_quota(xs, i, &q))
			continue;
		if (!q.max_requests && !q.max_buffer && !q.requests && !q.buffer)
			continue;
		if (q.max_requests)
			snprintf(mr, sizeof(mr), "%" PRIu32, q.max_requests);
		if (q.max_buffer)
			snprintf(mb, sizeof(mb), "%" PRIu64, q.max_buffer);
		printf("quota     port %" PRIu32 ": requests %" PRIu32 "/%s, buffer %" PRIu64
		       "/%s bytes\n", i, q.requests, mr, q.buffer, mb);
	}
}

static const char *life_name(uint32_t life)
{
	static const char *const n[] = { "free", "prepared", "submitted", "accepted",
					 "responded", "received" };

	return life < sizeof(n) / sizeof(n[0]) ? n[life] : "corrupt";
}

/* Where a request of life @life held by @port is. */
static const char *place(uint32_t life)
{
	switch (life) {
	case XS_PREPARED: return "with its client";
	case XS_SUBMITTED: return "in the request queue";
	case XS_ACCEPTED: return "being served";
	case XS_RESPONDED: return "in the reply queue";
	case XS_RECEIVED: return "back with its client";
	default: return "-";
	}
}

/* The holder port's owner against the holder word: live, dead, or rebound since. */
static const char *holder_state(struct xseg *xs, uint64_t holder, uint32_t nr_ports)
{
	uint32_t hp = (uint32_t)(holder >> 32), hg = (uint32_t)holder;
	struct xseg_port *p;
	uint64_t w;

	if (holder == XSEG_HOLDER_NONE)
		return "none";
	if (hp >= nr_ports || !(p = xseg_port(xs, hp)))
		return "bad-port";
	w = __atomic_load_n(&p->owner, __ATOMIC_ACQUIRE);
	if (XSEG_OWNER_GEN(w) != (hg & 0x3FFFFFFFu))
		return "stale";		/* the port was rebound: recovery's to settle */
	switch (XSEG_OWNER_STATE(w)) {
	case XSEG_PORT_BOUND:
		return xseg_sys_alive(XSEG_OWNER_PID(w), __atomic_load_n(&p->owner_start,
									 __ATOMIC_RELAXED)) ? "live" : "dead";
	case XSEG_PORT_RECOVERING: return "recovering";
	case XSEG_PORT_BINDING: return "binding";
	default: return "free";
	}
}

/* @n bytes of @s, printable ASCII kept, the rest as \xNN, at most @max source bytes. */
static void put_escaped(const char *s, uint32_t n, uint32_t max)
{
	for (uint32_t i = 0; i < n && i < max; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			putchar(c);
		else
			printf("\\x%02x", c);
	}
	if (n > max)
		printf("...");
}

/*
 * requests SPEC [-p PORT]: one line per request not on the free list (of
 * port PORT only: held by it, from it or sent to it): index, serial, life
 * and where that is, op, holder port:gen and its owner's state, client,
 * destination, age since submit, target.
 */
static int cmd_requests(struct xseg *xs, int argc, char **argv)
{
	const struct xseg_config *c = xseg_config(xs);
	uint64_t now = xseg_sys_now_ns();
	long only = -1;
	uint32_t shown = 0;
	int opt;

	optind = 3;
	while ((opt = getopt(argc, argv, "p:")) != -1) {
		char *end;

		if (opt != 'p')
			return 2;
		only = strtol(optarg, &end, 0);
		if (*end || only < 0 || only >= (long)c->nr_ports) {
			fprintf(stderr, "xseg-tool: requests: -p '%s': not a port (0..%u)\n", optarg,
				c->nr_ports - 1);
			return 2;
		}
	}
	printf("%-6s %-8s %-10s %-20s %-12s %-11s %-10s %-6s %-6s %9s  %s\n", "index", "serial",
	       "life", "where", "op", "holder", "holder-is", "src", "dst", "age-ms", "target");
	struct xseg_grow_status gs;

	xseg_grow_status(xs, &gs);	/* a growable segment's reserve past the live count is unused */
	for (uint32_t i = 0; i < gs.live_requests; i++) {
		struct xseg_request *r = xseg_request_at(xs, i);
		uint32_t life, op, src, dst, hp, tlen;
		uint64_t holder, ts;
		char tgt[XSEG_TARGET_MAX];

		if (!r)
			continue;
		life = (__atomic_load_n(&r->state, __ATOMIC_ACQUIRE) >> XS_LIFE_SHIFT) & 0xFF;
		if (life == XS_FREE)
			continue;
		holder = __atomic_load_n(&r->holder, __ATOMIC_ACQUIRE);
		hp = (uint32_t)(holder >> 32);
		op = __atomic_load_n(&r->op, __ATOMIC_RELAXED);
		src = __atomic_load_n(&r->src_port, __ATOMIC_RELAXED);
		dst = __atomic_load_n(&r->effective_dst, __ATOMIC_RELAXED);
		if (only >= 0 && hp != (uint32_t)only && src != (uint32_t)only &&
		    dst != (uint32_t)only)
			continue;
		ts = __atomic_load_n(&r->ts_submit, __ATOMIC_RELAXED);
		tlen = __atomic_load_n(&r->target_len, __ATOMIC_RELAXED);
		if (tlen > XSEG_TARGET_MAX)
			tlen = XSEG_TARGET_MAX;
		memcpy(tgt, r->target, tlen);
		printf("%-6u %-8" PRIu64 " %-10s %-20s %-12s ", i,
		       __atomic_load_n(&r->serial, __ATOMIC_RELAXED), life_name(life), place(life),
		       op < X_OP_COUNT ? xseg_op_name(op) : "?");
		if (holder == XSEG_HOLDER_NONE)
			printf("%-11s ", "-");
		else
			printf("%5u:%-5u ", hp, (uint32_t)holder);
		printf("%-10s ", holder_state(xs, holder, c->nr_ports));
		if (src < c->nr_ports) printf("%-6u ", src); else printf("%-6s ", "-");
		if (dst < c->nr_ports) printf("%-6u ", dst); else printf("%-6s ", "-");
		if (ts && ts <= now)
			printf("%9.1f  ", (double)(now - ts) / 1e6);
		else
			printf("%9s  ", "-");
		put_escaped(tgt, tlen, 48);
		putchar('\n');
		shown++;
	}
	printf("%u request%s in use\n", shown, shown == 1 ? "" : "s");
	return 0;
}

/*
 * fail SPEC SERIAL: fail the request with that serial back to its client -
 * only when it is provably stuck: its holder port's owner is dead, or the
 * port was rebound since it took the request (stale). Then it is settled
 * as recovery settles every request of a dead port (xseg_recover: a
 * request with a server fails back to its live client with ECONNRESET, one
 * whose client is the dead one goes back to the free list), with the rest
 * of that port. A request whose holder is alive is refused, naming it: its
 * owner may still write to it; stop that peer and its port is recovered.
 */
static int cmd_fail(struct xseg *xs, int argc, char **argv)
{
	const struct xseg_config *c = xseg_config(xs);
	struct xseg_recovery_stats rs;
	unsigned long long serial;
	char *end;
	int r;

	if (argc != 4 || !*argv[3] || (serial = strtoull(argv[3], &end, 0), *end) || !serial) {
		fprintf(stderr, "xseg-tool: fail needs one SERIAL (a number, see `requests`)\n");
		return 2;
	}
	struct xseg_grow_status gs;

	xseg_grow_status(xs, &gs);
	for (uint32_t i = 0; i < gs.live_requests; i++) {
		struct xseg_request *q = xseg_request_at(xs, i);
		uint64_t holder;
		const char *hs;
		uint32_t life;

		if (!q || __atomic_load_n(&q->serial, __ATOMIC_RELAXED) != serial)
			continue;
		life = (__atomic_load_n(&q->state, __ATOMIC_ACQUIRE) >> XS_LIFE_SHIFT) & 0xFF;
		holder = __atomic_load_n(&q->holder, __ATOMIC_ACQUIRE);
		hs = holder_state(xs, holder, c->nr_ports);
		if (life == XS_FREE) {
			fprintf(stderr, "xseg-tool: fail: request %llu is already free\n", serial);
			return 1;
		}
		if (strcmp(hs, "dead") && strcmp(hs, "stale")) {
			uint64_t w = __atomic_load_n(&xseg_port(xs, (uint32_t)(holder >> 32))->owner,
						      __ATOMIC_ACQUIRE);

			fprintf(stderr, "xseg-tool: fail: request %llu (%s) is held by port %u, whose "
				"owner is %s (pid %u): not provably stuck, left alone; stop that "
				"peer and its port is recovered\n", serial, life_name(life),
				(uint32_t)(holder >> 32), hs, XSEG_OWNER_PID(w));
			return 1;
		}
		r = xseg_recover(xs, &rs);
		if (r < 0 && r != -EALREADY) {
			fprintf(stderr, "xseg-tool: fail: recovery: %s\n", strerror(-r));
			return 1;
		}
		printf("request %llu (%s, holder port %u %s): settled by recovery with its port: "
		       "%u failed back, %u freed, %u ports freed\n", serial, life_name(life),
		       (uint32_t)(holder >> 32), hs, rs.requests_failed, rs.requests_freed,
		       rs.ports_freed);
		return 0;
	}
	fprintf(stderr, "xseg-tool: fail: no request has serial %llu\n", serial);
	return 1;
}

/*
 * reset-port SPEC PORT [--force]: reset the queues of PORT whose counters a
 * peer corrupted (xseg verify names them), as a bind or recovery would:
 * the requests in them fail back to their clients (ECONNRESET), the queues
 * start empty. A healthy port is refused (nothing to do), and so is a port
 * whose owner is alive unless --force, which says what that can cost.
 */
static int cmd_reset_port(struct xseg *xs, int argc, char **argv)
{
	const struct xseg_config *c = xseg_config(xs);
	struct xseg_recovery_stats rs;
	int force = 0, r, i;
	long port = -1;
	char *end;

	for (i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f")) {
			force = 1;
		} else if (port < 0 && *argv[i] && (port = strtol(argv[i], &end, 0), !*end) &&
			   port >= 0 && port < (long)c->nr_ports) {
			continue;
		} else {
			fprintf(stderr, "xseg-tool: reset-port: '%s' is not a port (0..%u) or --force\n"
				"usage: xseg-tool reset-port SPEC PORT [--force]\n", argv[i], c->nr_ports - 1);
			return 2;
		}
	}
	if (port < 0) {
		fprintf(stderr, "usage: xseg-tool reset-port SPEC PORT [--force]\n");
		return 2;
	}
	r = xseg_reset_port(xs, (uint32_t)port, 0, &rs);
	if (r == -EBUSY) {
		uint64_t w = __atomic_load_n(&xseg_port(xs, (uint32_t)port)->owner, __ATOMIC_ACQUIRE);

		if (!force) {
			fprintf(stderr, "xseg-tool: reset-port: port %ld has corrupt queue counters, but "
				"its owner (pid %u) is alive: refused. Stop that peer (recovery then "
				"resets the queues), or pass --force to reset them under it\n", port,
				XSEG_OWNER_PID(w));
			return 1;
		}
		fprintf(stderr, "xseg-tool: reset-port: --force: resetting the queues of port %ld under "
			"its live owner (pid %u). The owner may take a request in the same moment (it "
			"then serves it, and the reset does not fail it back); a request submitted to "
			"the port meanwhile can be lost (its client gets no reply: see `requests`)\n",
			port, XSEG_OWNER_PID(w));
		r = xseg_reset_port(xs, (uint32_t)port, XSEG_RESET_FORCE, &rs);
	}
	if (r == 0) {
		fprintf(stderr, "xseg-tool: reset-port: port %ld: its queue counters are in order: "
			"nothing to reset\n", port);
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "xseg-tool: reset-port: port %ld: %s%s\n", port, strerror(-r),
			r == -EAGAIN ? " (the port is being bound or recovered: that resets its queues)" :
			r == -EALREADY ? " (the recovery lease stayed taken: try again)" : "");
		return 1;
	}
	printf("port %ld: %d queue%s reset: %u requests failed back, %u freed, %u ports freed\n", port,
	       r, r == 1 ? "" : "s", rs.requests_failed, rs.requests_freed, rs.ports_freed);
	return 0;
}

static volatile sig_atomic_t tap_stop;

static void on_tap_signal(int sig)
{
	(void)sig;
	tap_stop = 1;
}

/* A port number option: 0..@n-1, else a usage message and -1. */
static long port_arg(const char *opt, const char *s, uint32_t n)
{
	char *end;
	long v = strtol(s, &end, 0);

	if (*s && !*end && v >= 0 && v < (long)n)
		return v;
	fprintf(stderr, "xseg-tool: tap: %s '%s': not a port (0..%u)\n", opt, s, n - 1);
	return -1;
}

/* One line for a reply going back through the tap. */
static void tap_line(struct xseg *xs, struct xseg_request *r, uint32_t to, uint64_t t0)
{
	uint32_t st = __atomic_load_n(&r->state, __ATOMIC_ACQUIRE), op = r->op;
	uint32_t tlen = r->target_len < XSEG_TARGET_MAX ? r->target_len : XSEG_TARGET_MAX;
	int e = r->error;

	(void)xs;
	printf("%" PRIu64 " %s ", r->serial, op < X_OP_COUNT ? xseg_op_name(op) : "?");
	put_escaped(r->target, tlen, 48);
	printf(" offset %" PRIu64 " size %" PRIu64 " from %u via %u: ", r->offset, r->size,
	       r->src_port, to);
	if (st & XS_FAILED)
		printf("failed %s", e > 0 && e < 4096 ? strerrorname_np(e) : "?");
	else
		printf("ok serviced %" PRIu64, r->serviced);
	if (t0)
		printf(" %.1f us", (double)(xseg_sys_now_ns() - t0) / 1e3);
	putchar('\n');
	fflush(stdout);
}

/*
 * tap SPEC -p PORT --to DST [-n COUNT]: bind PORT, forward every request
 * submitted to it on to DST (this port on the return path), relay each
 * reply back to its client with one line: serial, op, target, offset, size,
 * client, result, microseconds through the tap. Requests that cannot go on
 * (DST not bound, the forwarding path full) fail back with that errno and
 * a line. Stops after COUNT replies (0: until SIGINT/SIGTERM), leaving the
 * port: what is still in flight fails back to its clients (ECONNRESET).
 */
static int cmd_tap(struct xseg *xs, int argc, char **argv)
{
	static const struct option lo[] = { { "to", required_argument, NULL, 't' }, { 0 } };
	const struct xseg_config *c = xseg_config(xs);
	long a = -1, b = -1, count = 0, done = 0;
	struct sigaction sa;
	uint64_t *t0;
	int opt, r;

	optind = 3;
	while ((opt = getopt_long(argc, argv, "p:t:n:", lo, NULL)) != -1) {
		if (opt == 'p' && (a = port_arg("-p", optarg, c->nr_ports)) < 0)
			return 2;
		if (opt == 't' && (b = port_arg("--to", optarg, c->nr_ports)) < 0)
			return 2;
		if (opt == 'n')
			count = strtol(optarg, NULL, 0);
		if (opt == '?')
			return 2;
	}
	if (a < 0 || b < 0 || a == b || count < 0) {
		fprintf(stderr, "xseg-tool: tap needs -p PORT and --to DST (another port), and "
			"-n COUNT >= 0\n");
		return 2;
	}
	t0 = calloc(xseg_max_requests(xs), sizeof(*t0));
	if (!t0)
		return 1;
	r = xseg_bind_port(xs, (uint32_t)a, 0);
	if (r < 0) {
		fprintf(stderr, "xseg-tool: tap: cannot bind port %ld: %s\n", a, strerror(-r));
		free(t0);
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_tap_signal;	/* no SA_RESTART: the wait returns */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fprintf(stderr, "xseg-tool: tap: port %ld -> port %ld\n", a, b);
	while (!tap_stop && (!count || done < count)) {
		struct xseg_request *req;
		int busy = 0, to, idx;

		while ((req = xseg_accept(xs, (uint32_t)a))) {
			idx = xseg_request_index(xs, req);
			if (idx >= 0 && (uint32_t)idx < xseg_max_requests(xs))
				t0[idx] = xseg_sys_now_ns();
			to = xseg_forward(xs, req, (uint32_t)a, (uint32_t)b);
			if (to >= 0) {
				xseg_signal(xs, (uint32_t)to);
			} else {
				int back = xseg_fail(xs, req, -to);	/* to the client, failed */

				if (back >= 0)
					xseg_signal(xs, (uint32_t)back);
				printf("request to port %ld not forwarded to %ld: %s\n", a, b,
				       strerrorname_np(-to));
			}
			busy = 1;
		}
		while ((req = xseg_receive(xs, (uint32_t)a))) {
			idx = xseg_request_index(xs, req);
			tap_line(xs, req, (uint32_t)a, idx >= 0 ? t0[idx] : 0);
			to = xseg_respond(xs, req);
			if (to >= 0)
				xseg_signal(xs, (uint32_t)to);	/* (0 may be "freed": harmless) */
			done++;
			busy = 1;
		}
		if (!busy)
			xseg_wait(xs, (uint32_t)a, 100000);
	}
	xseg_leave_port(xs, (uint32_t)a);
	free(t0);
	fprintf(stderr, "xseg-tool: tap: %ld replies relayed\n", done);
	return 0;
}

int debug_command(struct xseg *xs, const char *cmd, int argc, char **argv)
{
	if (!strcmp(cmd, "requests"))
		return cmd_requests(xs, argc, argv);
	if (!strcmp(cmd, "tap") || !strcmp(cmd, "bridge"))
		return cmd_tap(xs, argc, argv);
	if (!strcmp(cmd, "fail"))
		return cmd_fail(xs, argc, argv);
	if (!strcmp(cmd, "reset-port"))
		return cmd_reset_port(xs, argc, argv);
	return -1;
}

bool is_debug_command(const char *cmd)
{
	return !strcmp(cmd, "requests") || !strcmp(cmd, "tap") || !strcmp(cmd, "bridge") ||
	       !strcmp(cmd, "fail") || !strcmp(cmd, "reset-port");
}
