/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/vlmcd-fence.h - the start fence: a vlmcd that takes over a
 * port from a dead one serves nothing until every request the dead one sent
 * is settled.
 *
 * A request over several objects is split into pieces of vlmcd's own; if
 * vlmcd dies, recovery fails the client's request back (ECONNRESET) at
 * once, but the pieces already queued at the storage peer (or being
 * written by it) are still served later. A client that rewrites the range
 * through a new vlmcd could be overtaken by such a late piece. So before
 * peer_run() the new vlmcd scans the request table (as `xseg-tool
 * requests` does) for requests whose client is one of its ports under an
 * older bind generation (src_port ours, src_gen not ours) that a live port
 * still holds, queued to it (XS_SUBMITTED) or being served (XS_ACCEPTED),
 * and waits until there are none: every late piece has then landed or
 * failed. A request held by a dead or rebound port is never served (its
 * recovery fails or frees it), so it is not waited for. The wait is bounded
 * by --fence-timeout (a wedged storage peer must not keep vlmcd from
 * starting): after it vlmcd serves anyway and says so at level 0.
 *
 * Part of vlmcd.c, one translation unit split by topic; included once, by
 * vlmcd.c only. fence_wait runs on the main thread before the dispatch loop;
 * passed_writes_out (at the end) on the dispatch thread.
 */
#ifndef XSEG_VLMCD_FENCE_H
#define XSEG_VLMCD_FENCE_H

#include <time.h>
#include "../../sys/domain.h"
#include "objname.h"

static uint32_t fence_ms = 30000;	/* --fence-timeout (seconds on the command line); 0: no fence */
static uint64_t fenced, fence_timeouts;	/* .stats: requests waited for; waits that timed out */

/* Is @holder (XSEG_HOLDER word) a port bound by that generation to a live process? */
static int fence_holder_live(uint64_t holder)
{
	uint32_t hp = (uint32_t)(holder >> 32), hg = (uint32_t)holder & 0x3FFFFFFFu;
	struct xseg_port *pt;
	uint64_t w;

	if (holder == XSEG_HOLDER_NONE || !(pt = xseg_port(P.xs, hp)))
		return 0;
	w = __atomic_load_n(&pt->owner, __ATOMIC_ACQUIRE);
	return XSEG_OWNER_STATE(w) == XSEG_PORT_BOUND && XSEG_OWNER_GEN(w) == hg &&
	       xseg_sys_alive(XSEG_OWNER_PID(w), __atomic_load_n(&pt->owner_start, __ATOMIC_RELAXED));
}

/*
 * scan_in_flight - call @want for every request of the segment that a port
 * queues (XS_SUBMITTED) or serves (XS_ACCEPTED), with its holder word; the
 * number for which it returned 1. @want checks the holder's liveness last
 * (fence_holder_live: a system call), after its cheap checks. Reads shared
 * memory only.
 */
static uint32_t scan_in_flight(int (*want)(struct xseg_request *r, uint64_t holder, void *arg), void *arg)
{
	struct xseg_grow_status gs;
	uint32_t found = 0;

	xseg_grow_status(P.xs, &gs);
	for (uint32_t i = 0; i < gs.live_requests; i++) {
		struct xseg_request *r = xseg_request_at(P.xs, i);
		uint32_t life;

		if (!r)
			continue;
		life = (__atomic_load_n(&r->state, __ATOMIC_ACQUIRE) >> XS_LIFE_SHIFT) & 0xFF;
		if (life == XS_SUBMITTED || life == XS_ACCEPTED)
			found += want(r, __atomic_load_n(&r->holder, __ATOMIC_ACQUIRE), arg) == 1;
	}
	return found;
}

/*
 * The requests an earlier binder of one of our ports sent that a live port
 * still queues or serves; the first one's serial, holder and target go to
 * @first (for the log). Reads shared memory only; changes nothing.
 */
struct fence_scan {
	char *first;			/* the first one, for the log */
	size_t n;
	uint32_t found;
};

static int fence_want(struct xseg_request *r, uint64_t holder, void *arg)
{
	struct fence_scan *f = arg;
	uint32_t src = __atomic_load_n(&r->src_port, __ATOMIC_RELAXED), mine = XSEG_NO_PORT;
	uint32_t gen = __atomic_load_n(&r->src_gen, __ATOMIC_RELAXED) & 0x3FFFFFFFu;

	for (uint32_t k = 0; k < P.nports; k++)
		if (P.ports[k] == src)
			mine = src;
	if (mine == XSEG_NO_PORT)
		return 0;
	if (gen == XSEG_OWNER_GEN(__atomic_load_n(&xseg_port(P.xs, mine)->owner, __ATOMIC_ACQUIRE)))
		return 0;	/* ours, sent by this process: none yet, but never wait for them */
	if ((uint32_t)(holder >> 32) == mine || !fence_holder_live(holder))
		return 0;
	if (!f->found++ && f->first) {
		uint32_t tl = __atomic_load_n(&r->target_len, __ATOMIC_RELAXED);
		char t[32], shown[32 * 4 + 8];
		const char *op = xseg_op_name(__atomic_load_n(&r->op, __ATOMIC_RELAXED));

		/* Shared memory: copied once, and shown escaped (a peer may have written anything). */
		if (tl > sizeof(t))
			tl = sizeof(t);
		memcpy(t, r->target, tl);
		snprintf(f->first, f->n, "request %" PRIu64 " (%s of '%s', held by port %u)",
			 __atomic_load_n(&r->serial, __ATOMIC_RELAXED), op ? op : "?",
			 printable(t, tl, shown, sizeof(shown)), (uint32_t)(holder >> 32));
	}
	return 1;
}

static uint32_t fence_count(char *first, size_t n)
{
	struct fence_scan f = { first, n, 0 };

	return scan_in_flight(fence_want, &f);
}

/* Wait (before serving) until no late piece of a dead vlmcd can still land; bounded by fence_ms. */
static void fence_wait(void)
{
	struct timespec t0, now, nap = { 0, 5 * 1000 * 1000 };
	char first[320] = "";
	uint32_t n = fence_count(first, sizeof(first)), n0 = n;
	uint64_t ms = 0;

	if (!n || !fence_ms)
		return;
	peer_log(&P, 1, "fence: %u request(s) a dead vlmcd on this port sent are still at their peer, "
		 "first %s: serving after they are settled (at most %u ms)", n, first, fence_ms);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (n) {
		nanosleep(&nap, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (uint64_t)(((int64_t)now.tv_sec - t0.tv_sec) * 1000 + ((int64_t)now.tv_nsec - t0.tv_nsec) / 1000000);
		n = fence_count(first, sizeof(first));
		if (n && ms >= fence_ms) {
			peer_log(&P, 0, "FENCE TIMEOUT: after %u ms %u request(s) a dead vlmcd sent are still not "
				 "settled (first %s; the storage peer may be wedged): serving anyway, and a late "
				 "write among them may land over newer data", fence_ms, n, first);
			fence_timeouts++;
			return;
		}
	}
	fenced += n0;
	peer_log(&P, 1, "fence: the %u request(s) were settled after %" PRIu64 " ms; serving", n0, ms);
}

/*
 * passed_writes_out - the one-object WRITEs of volume @v that were passed
 * to the storage peer (xseg_pass: no return hop, so vlmcd never sees them
 * end) and that a live port still queues (XS_SUBMITTED) or serves
 * (XS_ACCEPTED). A quiescing op (SNAPSHOT, UPDATE, DELETE, CLOSE) waits
 * until there are none, as it waits for v->writes. Such a request is
 * recognised by what stays fixed while it is at the storage peer: op WRITE,
 * XF_READDRESSED, and a target naming an object of one of the data ids the
 * volume's passed writes went to (xv1.d.<data id>., v->pw_owner; any data
 * object with v->pw_all); the storage peer changes none of them, and the
 * core puts the client's target back only as it delivers the reply. So a
 * write passed before the scan is never missed; a request that ends (or is
 * reused) during the scan can only be counted too, never lost. Requests of
 * other passers (a dead vlmcd's) that write those objects count too. Reads
 * shared memory only; O(requests of the segment), run only while a
 * quiescing op waits for a volume that passed writes.
 */
struct pw_scan {
	const struct vol *v;
	char want[4][64];		/* "xv1.d.<data id>." of each of v->pw_owner */
	uint32_t n, wl;
};

static int pw_want(struct xseg_request *r, uint64_t holder, void *arg)
{
	struct pw_scan *w = arg;
	char t[64];
	uint32_t tl, k;

	if (__atomic_load_n(&r->op, __ATOMIC_RELAXED) != X_WRITE ||
	    !(__atomic_load_n(&r->flags, __ATOMIC_RELAXED) & XF_READDRESSED))
		return 0;
	tl = __atomic_load_n(&r->target_len, __ATOMIC_RELAXED);
	if (tl < w->wl || tl > sizeof(t))
		return 0;
	memcpy(t, r->target, tl);	/* shared memory: copied once */
	if (w->v->pw_all) {
		if (memcmp(t, XV_DATA_PREFIX, w->wl))
			return 0;
	} else {
		for (k = 0; k < w->n && memcmp(t, w->want[k], w->wl); k++)
			;
		if (k == w->n)
			return 0;
	}
	return fence_holder_live(holder);
}

static uint32_t passed_writes_out(const struct vol *v)
{
	struct pw_scan w = { .v = v, .n = v->pw_all ? 0 : v->npw_owner };

	/* "xv1.d.<data id>.": the index is any. */
	w.wl = v->pw_all ? (uint32_t)strlen(XV_DATA_PREFIX) : 0;
	for (uint32_t k = 0; k < w.n; k++)
		w.wl = (uint32_t)xv_data_name(w.want[k], sizeof(w.want[k]), v->pw_owner[k], 0) - 16;
	return scan_in_flight(pw_want, &w);
}
#endif
