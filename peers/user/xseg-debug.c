/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/xseg-debug.c - xseg-tool's commands for looking into a live
 * segment: the per-port quota lines of `status`, and `requests` (every
 * request not on the free list: where it is, who holds it, since when).
 *
 * Everything here reads memory that peers write while we look: each field
 * is loaded once, bounds-checked before it indexes anything, and printed
 * escaped. Nothing is changed.
 */
#include <getopt.h>
#include <inttypes.h>
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
	for (uint32_t i = 0; i < c->nr_requests; i++) {
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

int debug_command(struct xseg *xs, const char *cmd, int argc, char **argv)
{
	if (!strcmp(cmd, "requests"))
		return cmd_requests(xs, argc, argv);
	return -1;
}

bool is_debug_command(const char *cmd)
{
	return !strcmp(cmd, "requests");
}
