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

/* Start @name on @port (chain_start, no extra arguments) and wait until it answers a PING. */
static inline pid_t chain_start_ready(const char *name, uint32_t port)
{
	struct tp_req ping = { .op = X_PING };
	pid_t pid = chain_start(name, port, NULL);

	CHECKF(tp_do(xs, me, port, &ping) == 0, "%s does not answer a PING", name);
	return pid;
}

/*
 * A request to vlmcd from me, waited for: @in (@in_len bytes) as data, or
 * with @text that text as the data and the size; @out (@out_len) gets the
 * reply's data. The error (0 if it was served).
 */
static inline int chain_rq(uint32_t op, const char *target, uint64_t off, uint64_t size, const void *in,
			   uint64_t in_len, void *out, uint64_t out_len, const char *text)
{
	struct tp_req r = { .op = op, .target = target, .offset = off, .size = size, .in = in ? in : text,
			    .in_len = in ? in_len : text ? strlen(text) : 0, .buf_len = out_len > in_len ? out_len : in_len,
			    .out = out, .out_len = out_len };

	if (text)
		r.size = r.in_len;
	return tp_do(xs, me, P_VLMCD, &r);
}

/* The value of @key in vlmcd's INFO .stats (asked from me2). */
static inline uint64_t chain_stat(const char *key)
{
	char buf[4096] = "", pat[64];
	const char *p;
	struct tp_req r = { .op = X_INFO, .target = ".stats", .size = sizeof(buf), .buf_len = sizeof(buf),
			    .out = buf, .out_len = sizeof(buf) - 1 };

	CHECK(tp_do(xs, me2, P_VLMCD, &r) == 0);
	snprintf(pat, sizeof(pat), "\n%s=", key);
	p = strstr(buf, pat);
	CHECKF(p, "no %s in:\n%s", key, buf);
	return strtoull(p + strlen(pat), NULL, 10);
}

/* Wait until vlmcd's .stats @key reaches @want (20 s hang guard; @what names the count in the failure). */
static inline void chain_wait_stat(const char *key, uint64_t want, const char *what)
{
	uint64_t t0 = xt_now_ns(), v;

	while ((v = chain_stat(key)) < want) {
		CHECKF(xt_now_ns() - t0 < 20000000000ull, "%s: %s=%" PRIu64 ", not %" PRIu64 " within 20 s", what, key,
		       v, want);
		usleep(2000);
	}
}

/* Run the segment's recovery (as a restarted peer's bind would), retried while another recovery runs. */
static inline void chain_recover(void)
{
	int r;

	for (int i = 0; i < 2000 && (r = xseg_recover(xs, NULL)) == -EALREADY; i++)
		usleep(1000);
	CHECKF(r == 0, "xseg_recover: %d", r);
}

/*
 * Submit @op of @n bytes at @off on @target from @port to vlmcd, not waited
 * for, with @flags and @cookie; its data is @in, or (@in NULL) @n bytes of
 * @fill.
 */
static inline struct xseg_request *chain_submit_as(uint32_t port, uint32_t op, const char *target, uint64_t off,
						   uint64_t n, const void *in, int fill, uint32_t flags,
						   uint64_t cookie)
{
	struct xseg_request *r = xseg_get_request(xs, port);

	CHECK(r);
	CHECK(xseg_prep_request(xs, r, target, (uint32_t)strlen(target), n) == 0);
	r->op = op;
	r->flags = flags;
	r->offset = off;
	r->size = n;
	r->cookie = cookie;
	if (in)
		memcpy(xseg_req_data(xs, r), in, n);
	else
		memset(xseg_req_data(xs, r), fill, n);
	CHECK(xseg_submit_signal(xs, r, P_VLMCD) >= 0);
	return r;
}

/* Submit @op of @n bytes at @off on @target from @port to vlmcd, not waited for; @in (if any) is the data. */
static inline struct xseg_request *chain_submit(uint32_t port, uint32_t op, const char *target, uint64_t off,
						uint64_t n, const void *in)
{
	return chain_submit_as(port, op, target, off, n, in, 0, 0, 0);
}

/* The next reply on @port (20 s hang guard); checks it carries what was sent (@off UINT64_MAX: any offset). */
static inline struct xseg_request *chain_reply(uint32_t port, const char *vol, uint64_t off, uint64_t n,
					       uint32_t flags)
{
	uint64_t t0 = xt_now_ns();
	struct xseg_request *r;

	while (!(r = xseg_receive(xs, port))) {
		CHECKF(xt_now_ns() - t0 < 20000000000ull, "no reply within 20 s");
		xseg_wait(xs, port, 100000);
	}
	CHECKF(r->target_len == strlen(vol) && !memcmp(r->target, vol, strlen(vol)),
	       "the reply's target is '%.*s', not '%s'", (int)r->target_len, r->target, vol);
	if (off != UINT64_MAX)
		CHECKF(r->offset == off, "the reply's offset is %" PRIu64 ", not %" PRIu64, r->offset, off);
	CHECKF(r->size == n && r->flags == flags, "size %" PRIu64 " flags %#x", r->size, r->flags);
	return r;
}

/* How many WRITEs filed holds (XS_ACCEPTED) or has queued (XS_SUBMITTED, with @queued) that @want accepts. */
static inline uint32_t chain_writes_at_filed(int queued, int (*want)(const struct xseg_request *r))
{
	struct xseg_grow_status gs;
	uint32_t n = 0;

	xseg_grow_status(xs, &gs);
	for (uint32_t i = 0; i < gs.live_requests; i++) {
		struct xseg_request *r = xseg_request_at(xs, i);
		uint32_t life;

		if (!r)
			continue;
		life = (__atomic_load_n(&r->state, __ATOMIC_ACQUIRE) >> XS_LIFE_SHIFT) & 0xFF;
		if ((life == XS_ACCEPTED || (queued && life == XS_SUBMITTED)) && r->op == X_WRITE && want(r) &&
		    (uint32_t)(__atomic_load_n(&r->holder, __ATOMIC_ACQUIRE) >> 32) == P_FILED)
			n++;
	}
	return n;
}

#endif
