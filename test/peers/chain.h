/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test/peers/chain.h - the volume chain the vlmcd tests run on: one segment,
 * two client ports of the test's (me, me2), filed on port 1 over the test's
 * store folder, mapperd on port 2 and vlmcd on port 3, each started as a real
 * process (peers.h's tp_start) and waited for until its port is bound.
 */
#ifndef TEST_PEERS_CHAIN_H
#define TEST_PEERS_CHAIN_H

#include "peers.h"

#define P_FILED 1
#define P_MAPPER 2
#define P_VLMCD 3

static struct xseg_config cfg;
static char spec[512];
static struct xseg *xs;
static uint32_t me, me2;

/*
 * Start peer @name ("filed", "mapperd" or "vlmcd") on @port with the chain's
 * arguments, then @extra (more of vlmcd's options, NULL-terminated, or NULL).
 */
static inline pid_t chain_start(const char *name, uint32_t port, const char *const *extra)
{
	const char *argv[24] = { "-q", "-g", spec, "-p", NULL };
	char ps[16];
	int n = 5;
	pid_t pid;

	snprintf(ps, sizeof(ps), "%u", port);
	argv[4] = ps;
	if (!strcmp(name, "filed")) {
		argv[n++] = "--dir";
		argv[n++] = tp_path("store");
	} else {
		if (strcmp(name, "mapperd")) {
			argv[n++] = "--mapper";
			argv[n++] = "2";
		}
		argv[n++] = "--storage";
		argv[n++] = "1";
	}
	for (int i = 0; extra && extra[i]; i++) {
		CHECKF(n < 23, "too many arguments for %s", name);
		argv[n++] = extra[i];
	}
	argv[n] = NULL;
	pid = tp_start(name, argv);
	tp_wait_bound(xs, port, pid);
	return pid;
}

/* Create the segment of @spec_fmt, join it, bind me and me2, make the store folder. */
static inline void chain_setup(const char *spec_fmt)
{
	int r;

	cfg = tx_create(spec_fmt);
	xseg_format_spec(&cfg, spec, sizeof(spec));
	xs = tx_join(&cfg, "futex");
	r = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(r >= 0);
	me = (uint32_t)r;
	r = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(r >= 0);
	me2 = (uint32_t)r;
	CHECK(mkdir(tp_path("store"), 0700) == 0);
}

/* Submit @op of @n bytes at @off on @target from @port to vlmcd, not waited for; @in (if any) is the data. */
static inline struct xseg_request *chain_submit(uint32_t port, uint32_t op, const char *target, uint64_t off,
						uint64_t n, const void *in)
{
	struct xseg_request *r = xseg_get_request(xs, port);

	CHECK(r);
	CHECK(xseg_prep_request(xs, r, target, (uint32_t)strlen(target), n) == 0);
	r->op = op;
	r->offset = off;
	r->size = n;
	if (in)
		memcpy(xseg_req_data(xs, r), in, n);
	CHECK(xseg_submit_signal(xs, r, P_VLMCD) >= 0);
	return r;
}

#endif
