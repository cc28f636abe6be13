/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: per-port quotas. A greedy client port takes requests until
 * it is refused with EDQUOT at its quota (quota_requests=4 from the spec)
 * while a polite port still gets requests; buffers past quota_buffer fail
 * prep with -EDQUOT; put gives quota back; the owner overrides the limits
 * after bind (xseg_set_port_quota); a greedy client killed while holding
 * its quota loses it with the port (recovery frees the requests, the next
 * bind starts at 0); a hostile usage word of another generation or below
 * zero neither blocks nor wraps. An unlimited port never touches its usage
 * words; a limit set on a live port counts what is taken from then on
 * (requests and buffers taken before it are not given back to it), and a
 * hostile charge bit in a request mis-counts only its own port.
 */
#include <signal.h>
#include <stdio.h>
#include "common.h"

static struct xseg_quota quota(struct xseg *xs, uint32_t p)
{
	struct xseg_quota q;

	CHECK(xseg_port_quota(xs, p, &q) == 0);
	return q;
}

/* Take requests for @p until refused; they go in @out. Returns how many, errno in *@e. */
static uint32_t take_all(struct xseg *xs, uint32_t p, struct xseg_request **out, uint32_t max,
			 int *e)
{
	uint32_t n = 0;

	for (;;) {
		struct xseg_request *r = xseg_get_request(xs, p);

		if (!r) {
			*e = errno;
			return n;
		}
		CHECKF(n < max, "port %u got more than %u requests", p, max);
		out[n++] = r;
	}
}

static void put_all(struct xseg *xs, struct xseg_request **r, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		CHECK(xseg_put_request(xs, r[i]) == 0);
}

/* `xseg-tool status` of @cfg prints the line @want (skipped if xseg-tool is not built). */
static void status_shows(const struct xseg_config *cfg, const char *want)
{
	char tool[2200], cmd[2400], out[8192];
	size_t n;
	FILE *f;

	if (!tx_bin_path("xseg-tool", tool, sizeof(tool))) {
		CHECKF(!getenv("CI") || strcmp(getenv("CI"), "true"), "xseg-tool is not built");
		return;
	}
	snprintf(cmd, sizeof(cmd), "'%s' status '%s:%s' 2>&1", tool, cfg->type, cfg->name);
	f = popen(cmd, "r");
	CHECK(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = 0;
	CHECK(pclose(f) == 0);
	CHECKF(strstr(out, want), "status does not show '%s':\n%s", want, out);
}

/* Greedy and polite ports of one segment: the greedy one stops at its quota. */
static void test_greedy_polite(void)
{
	struct xseg_config cfg = tx_create("posix:%s:4:16:4K:0:12:quota_requests=4:quota_buffer=8K");
	struct xseg *xs = tx_join(&cfg, "posix");
	struct xseg_request *g[16], *pol[16], *r;
	struct xseg_quota q;
	uint32_t n, m;
	int e = 0;

	CHECK(xseg_bind_port(xs, 0, 0) == 0 && xseg_bind_port(xs, 1, 0) == 1);
	n = take_all(xs, 0, g, 16, &e);
	CHECKF(n == 4 && e == EDQUOT, "greedy got %u, then errno %d", n, e);
	q = quota(xs, 0);
	CHECK(q.max_requests == 4 && q.requests == 4 && q.max_buffer == 8192 && q.buffer == 0);
	status_shows(&cfg, "quota     port 0: requests 4/4, buffer 0/8192 bytes");
	/* The polite port is not starved: it has its own 4. */
	m = take_all(xs, 1, pol, 16, &e);
	CHECKF(m == 4 && e == EDQUOT, "polite got %u, then errno %d", m, e);
	CHECK(tx_free_requests(xs) == 8);
	put_all(xs, pol, m);

	/* Buffers: 8K of 4K chunks, then -EDQUOT; put gives it back. */
	CHECK(xseg_prep_request(xs, g[0], "a", 1, 4096) == 0);
	CHECK(xseg_prep_request(xs, g[1], "b", 1, 100) == 0);
	CHECK(xseg_prep_request(xs, g[2], "c", 1, 4096) == -EDQUOT);
	q = quota(xs, 0);
	CHECK(q.buffer == 8192);
	CHECK(xseg_prep_request(xs, g[1], "b", 1, 0) == 0);	/* releases its chunk */
	CHECK(quota(xs, 0).buffer == 4096);
	CHECK(xseg_prep_request(xs, g[2], "c", 1, 4096) == 0);
	CHECK(xseg_put_request(xs, g[0]) == 0);
	q = quota(xs, 0);
	CHECK(q.requests == 3 && q.buffer == 4096);
	r = xseg_get_request(xs, 0);
	CHECK(r);
	g[0] = r;
	CHECK(!xseg_get_request(xs, 0) && errno == EDQUOT);

	/* The owner overrides: 2 for the polite port, unlimited for the greedy one. */
	CHECK(xseg_set_port_quota(xs, 1, 2, 0) == 0);
	m = take_all(xs, 1, pol, 16, &e);
	CHECKF(m == 2 && e == EDQUOT, "polite got %u, then errno %d", m, e);
	put_all(xs, pol, m);
	CHECK(xseg_set_port_quota(xs, 0, 0, 0) == 0);
	n = 4 + take_all(xs, 0, g + 4, 12, &e);
	CHECKF(n == 16 && e == EAGAIN, "unlimited greedy got %u, then errno %d", n, e);
	CHECK(!xseg_get_request(xs, 1) && errno == EAGAIN);	/* what quotas prevent */
	put_all(xs, g, n);
	q = quota(xs, 0);
	CHECK(q.requests == 0 && q.buffer == 0);
	CHECK(xseg_set_port_quota(xs, 3, 1, 0) == -EPERM);	/* not ours */
	CHECK(xseg_set_port_quota(xs, 99, 1, 0) == -EINVAL);
	xseg_leave(xs);
}

/* A greedy client killed with its quota taken: recovery gives it back with the port. */
static void test_killed_greedy(void)
{
	struct xseg_config cfg = tx_create("posix:%s:4:16:4K:0:12:quota_requests=4");
	struct xseg *xs = tx_join(&cfg, "posix");
	uint64_t *go = xt_shared(sizeof(uint64_t));
	struct xseg_recovery_stats rs;
	struct xseg_request *g[16];
	uint32_t n;
	int e = 0, st;
	pid_t pid;

	fflush(stdout);
	pid = xt_fork();
	if (pid == 0) {
		struct xseg *c = tx_join(&cfg, "posix");
		struct xseg_request *mine[16];
		int ce = 0;

		if (xseg_bind_port(c, 1, 0) != 1 || take_all(c, 1, mine, 16, &ce) != 4 ||
		    ce != EDQUOT)
			_exit(2);
		__atomic_store_n(go, 1, __ATOMIC_RELEASE);
		pause();
		_exit(0);
	}
	for (int i = 0; i < 20000 && !__atomic_load_n(go, __ATOMIC_ACQUIRE) &&
			 waitpid(pid, &st, WNOHANG) == 0; i++)
		usleep(1000);	/* hang guard only */
	CHECK(__atomic_load_n(go, __ATOMIC_ACQUIRE) == 1);
	CHECK(quota(xs, 1).requests == 4);
	CHECK(tx_free_requests(xs) == 12);
	CHECK(kill(pid, SIGKILL) == 0 && waitpid(pid, &st, 0) == pid);
	CHECK(xseg_recover(xs, &rs) == 0);
	CHECK(tx_free_requests(xs) == 16);
	CHECK(quota(xs, 1).requests == 0);		/* not bound: no usage */
	CHECK(xseg_bind_port(xs, 1, 0) == 1);
	CHECK(quota(xs, 1).requests == 0 && quota(xs, 1).max_requests == 4);
	n = take_all(xs, 1, g, 16, &e);
	CHECKF(n == 4 && e == EDQUOT, "rebound port got %u, then errno %d", n, e);
	put_all(xs, g, n);
	xseg_leave(xs);
}

/* Hostile usage words: another generation counts as 0; a release never wraps below 0. */
static void test_hostile_words(void)
{
	struct xseg_config cfg = tx_create("posix:%s:4:16:4K:0:12:quota_requests=2");
	struct xseg *xs = tx_join(&cfg, "posix");
	struct xseg_port *port;
	struct xseg_request *g[4];
	uint64_t w;
	uint32_t n;
	int e = 0;

	CHECK(xseg_bind_port(xs, 0, 0) == 0);
	port = xseg_port(xs, 0);
	w = __atomic_load_n(&port->use_requests, __ATOMIC_ACQUIRE);
	/* A peer writes a full count of another generation: ignored. */
	__atomic_store_n(&port->use_requests,
			 XSEG_USE(XSEG_USE_GEN(w) + 1, XSEG_USE_MAX), __ATOMIC_RELEASE);
	n = take_all(xs, 0, g, 4, &e);
	CHECKF(n == 2 && e == EDQUOT, "got %u, then errno %d", n, e);
	/* A peer zeroes it: the puts stop at 0 instead of wrapping. */
	__atomic_store_n(&port->use_requests, XSEG_USE(XSEG_USE_GEN(w), 0), __ATOMIC_RELEASE);
	put_all(xs, g, n);
	CHECK(quota(xs, 0).requests == 0);
	n = take_all(xs, 0, g, 4, &e);
	CHECK(n == 2 && e == EDQUOT);
	put_all(xs, g, n);
	xseg_leave(xs);
}

/* Has request @r the quota bits @bits (XS_Q_*) set? */
static bool charged(struct xseg_request *r, uint32_t bits)
{
	return (__atomic_load_n(&r->state, __ATOMIC_ACQUIRE) & (XS_Q_REQUEST | XS_Q_BUFFER)) == bits;
}

/* A limit set after requests were taken counts from then on. */
static void test_limit_after(void)
{
	struct xseg_config cfg = tx_create("posix:%s:4:16:4K:0:12");
	struct xseg *xs = tx_join(&cfg, "posix");
	struct xseg_request *old[3], *g[4], *p1[2];
	struct xseg_port *port;
	uint64_t ur, ub;
	uint32_t n;
	int e = 0;

	CHECK(xseg_bind_port(xs, 0, 0) == 0 && xseg_bind_port(xs, 1, 0) == 1);
	port = xseg_port(xs, 0);
	ur = __atomic_load_n(&port->use_requests, __ATOMIC_ACQUIRE);
	ub = __atomic_load_n(&port->use_buffer, __ATOMIC_ACQUIRE);
	/* Unlimited: nothing charged, the usage words are left as bind set them. */
	for (int i = 0; i < 3; i++) {
		old[i] = xseg_get_request(xs, 0);
		CHECK(old[i] && charged(old[i], 0));
	}
	CHECK(xseg_prep_request(xs, old[0], "a", 1, 4096) == 0 && charged(old[0], 0));
	CHECK(__atomic_load_n(&port->use_requests, __ATOMIC_ACQUIRE) == ur &&
	      __atomic_load_n(&port->use_buffer, __ATOMIC_ACQUIRE) == ub);
	CHECK(quota(xs, 0).requests == 0 && quota(xs, 0).buffer == 0);

	/* The limit counts from now: 2 more requests and one 4K chunk, whatever was taken. */
	CHECK(xseg_set_port_quota(xs, 0, 2, 4096) == 0);
	n = take_all(xs, 0, g, 4, &e);
	CHECKF(n == 2 && e == EDQUOT, "after the limit: got %u, then errno %d", n, e);
	CHECK(charged(g[0], XS_Q_REQUEST) && charged(g[1], XS_Q_REQUEST));
	CHECK(xseg_prep_request(xs, g[0], "g", 1, 4096) == 0 && charged(g[0], XS_Q_REQUEST | XS_Q_BUFFER));
	CHECK(xseg_prep_request(xs, g[1], "g", 1, 4096) == -EDQUOT && charged(g[1], XS_Q_REQUEST));
	CHECK(xseg_prep_request(xs, old[1], "o", 1, 4096) == -EDQUOT);	/* new buffers count */
	/* The requests taken before the limit go back without lowering the count. */
	put_all(xs, old, 3);
	CHECK(quota(xs, 0).requests == 2 && quota(xs, 0).buffer == 4096);
	CHECK(!xseg_get_request(xs, 0) && errno == EDQUOT);
	CHECK(xseg_prep_request(xs, g[0], "g", 1, 0) == 0 && charged(g[0], XS_Q_REQUEST));
	CHECK(quota(xs, 0).buffer == 0);
	put_all(xs, g, n);
	CHECK(quota(xs, 0).requests == 0 && quota(xs, 0).buffer == 0);

	/*
	 * Hostile charge bits (a peer writes the state word): a cleared bit leaks
	 * one unit of that port's quota, a forged one gives back what was not
	 * taken (never below 0); the other port is untouched, nothing crashes.
	 */
	CHECK(xseg_set_port_quota(xs, 1, 2, 0) == 0);
	CHECK(take_all(xs, 1, p1, 2, &e) == 2 && e == EDQUOT);
	n = take_all(xs, 0, g, 4, &e);
	CHECK(n == 2);
	__atomic_fetch_and(&g[0]->state, ~XS_Q_REQUEST, __ATOMIC_ACQ_REL);
	put_all(xs, g, n);
	CHECK(quota(xs, 0).requests == 1 && quota(xs, 1).requests == 2);
	CHECK(xseg_set_port_quota(xs, 0, 0, 0) == 0);
	g[0] = xseg_get_request(xs, 0);
	CHECK(g[0] && charged(g[0], 0));
	__atomic_fetch_or(&g[0]->state, XS_Q_REQUEST | XS_Q_BUFFER, __ATOMIC_ACQ_REL);
	CHECK(xseg_put_request(xs, g[0]) == 0);
	CHECK(quota(xs, 0).requests == 0 && quota(xs, 1).requests == 2);
	put_all(xs, p1, 2);
	CHECK(quota(xs, 1).requests == 0);
	/* A freed request carries no charge bits to its next client. */
	g[0] = xseg_get_request(xs, 0);
	CHECK(g[0] && charged(g[0], 0));
	CHECK(xseg_put_request(xs, g[0]) == 0);
	xseg_leave(xs);
}

/* quota_types=: a bind starts with its peer type's entry, else the segment's quotas. */
static void test_type_defaults(void)
{
	struct xseg_config cfg = tx_create("posix:%s:4:16:4K:0:12:quota_requests=4:"
					   "quota_types=futex/2/8K,other/1/0");
	struct xseg *fx = tx_join(&cfg, "futex"), *px = tx_join(&cfg, "posix");
	struct xseg_config want, have;
	struct xseg_request *g[16];
	struct xseg_quota q;
	uint32_t given, n;
	char msg[512];
	int e = 0;

	CHECK(xseg_bind_port(fx, 0, 0) == 0 && xseg_bind_port(px, 1, 0) == 1);
	q = quota(fx, 0);
	CHECKF(q.max_requests == 2 && q.max_buffer == 8192, "futex port: %u/%llu", q.max_requests,
	       (unsigned long long)q.max_buffer);
	q = quota(px, 1);
	CHECKF(q.max_requests == 4 && q.max_buffer == 0, "posix port: %u/%llu", q.max_requests,
	       (unsigned long long)q.max_buffer);
	n = take_all(fx, 0, g, 16, &e);
	CHECKF(n == 2 && e == EDQUOT, "futex port got %u, then errno %d", n, e);
	put_all(fx, g, n);
	/* The owner's override still wins over its type's default. */
	CHECK(xseg_set_port_quota(fx, 0, 3, 0) == 0);
	n = take_all(fx, 0, g, 16, &e);
	CHECKF(n == 3 && e == EDQUOT, "overridden port got %u, then errno %d", n, e);
	put_all(fx, g, n);
	n = take_all(px, 1, g, 16, &e);
	CHECKF(n == 4 && e == EDQUOT, "posix port got %u, then errno %d", n, e);
	put_all(px, g, n);
	/* Create-or-open names a differing quota_types=. */
	have = cfg;
	CHECK(xseg_parse_spec_given("posix:x:quota_types=futex/1/0", &want, &given, NULL, 0) == 0);
	CHECK(given & XSEG_GIVEN_QUOTA_TYPES);
	CHECK(xseg_config_mismatch(&have, &want, given, msg, sizeof(msg)) != 0);
	CHECKF(strstr(msg, "quota_types=futex/2/8K,other/1/0") && strstr(msg, "futex/1/0"), "%s", msg);
	xseg_leave(px);
	xseg_leave(fx);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	RUN(test_greedy_polite);
	RUN(test_killed_greedy);
	RUN(test_hostile_words);
	RUN(test_limit_after);
	RUN(test_type_defaults);
	return 0;
}
