/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/recover.c - settling ports whose owner died (and ports being left).
 *
 * One recoverer at a time holds the lease (hdr->recovery = its pid; a dead
 * holder's lease is taken over). For a dead port p of generation g it:
 *   1. claims p (owner -> RECOVERING),
 *   2. settles p's hold records with xq_recover_hold: buffer chunks first,
 *      then requests, each index ending in exactly one place,
 *   3. drains p's request queue (nobody else consumes it): those requests
 *      fail back to their clients with ECONNRESET; and p's reply queue:
 *      replies to p are freed (or passed on if p was only a forwarding hop),
 *      then takes back indices stranded in both queues,
 *   4. scans the request table for requests p held (holder == p, g):
 *      prepared/received ones are freed, accepted ones fail back,
 *   5. frees p (owner -> FREE, same generation; the next bind raises it).
 * Requests queued to a FREE port (a submit that raced with recovery) are
 * failed back by every later recovery run, and replies queued to it freed.
 * Every step is idempotent: a recoverer that dies leaves the lease and its
 * hold records to the next one, which settles them first.
 */
#include "xseg_internal.h"

#define NRH XSEG__RECOVERY_HOLDS

static struct xq_hold *rhold(struct xseg *xs, uint32_t k)
{
	return &xs->holds[xs->nr_holds - NRH + k];
}

/*
 * The lease word: holder pid | low 32 bits of its start time << 32. A word
 * naming a live pid with another start (a forged or stale lease) is taken
 * over, so a hostile peer cannot block recovery by writing a live pid.
 */
static uint64_t lease_word(struct xseg *xs)
{
	return (uint64_t)xs->pid | ((xs->start & 0xFFFFFFFFull) << 32);
}

static bool lease_holder_alive(uint64_t w)
{
	uint64_t start;

	return xseg_sys_start_of((uint32_t)w, &start) == 0 && (start & 0xFFFFFFFFull) == (w >> 32);
}

static int lease_take(struct xseg *xs)
{
	uint64_t cur = __atomic_load_n(&xs->hdr->recovery, __ATOMIC_ACQUIRE);
	uint32_t tries;

	for (tries = 0; tries < 64; tries++) {
		/* Held by a live process (another thread of ours included): busy. */
		if (cur && lease_holder_alive(cur))
			return -EALREADY;
		/* acq_rel: the winner sees the previous holder's writes. */
		if (__atomic_compare_exchange_n(&xs->hdr->recovery, &cur, lease_word(xs), false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return 0;
	}
	return -EALREADY;
}

static void lease_drop(struct xseg *xs)
{
	uint64_t me = lease_word(xs);

	__atomic_compare_exchange_n(&xs->hdr->recovery, &me, 0, false, __ATOMIC_ACQ_REL,
				    __ATOMIC_ACQUIRE);
}

static void fail_mark(struct xseg_request *req)
{
	req->error = ECONNRESET;
	__atomic_fetch_or(&req->state, XS_FAILED, __ATOMIC_ACQ_REL);
	__atomic_fetch_and(&req->state, ~XS_SERVED, __ATOMIC_ACQ_REL);
}

static bool port_gen_bound(struct xseg *xs, uint32_t p, uint32_t gen)
{
	uint64_t w;

	if (p >= xs->nr_ports)
		return false;
	w = __atomic_load_n(&xs->ports[p].owner, __ATOMIC_ACQUIRE);
	return XSEG_OWNER_STATE(w) == XSEG_PORT_BOUND && XSEG_OWNER_GEN(w) == gen;
}

/*
 * Settle request @r, held in recovery hold @h0 (HELD; @h1 is a free spare), on behalf of dead port
 * @dead (XSEG_NO_PORT: no particular one, e.g. a request queued to a free
 * port). Exactly one of: freed, failed back, passed on.
 */
/*
 * Fail request @r back along its return path and wake the port it lands on:
 * that client may be asleep waiting for exactly this reply, and nobody else
 * would signal it (the library never signals on its own; recovery is the
 * exception, acting for the dead peer that would have).
 */
static void deliver_failed(struct xseg *xs, uint32_t r, struct xq_hold *h0, struct xq_hold *h1,
			   struct xseg_recovery_stats *st)
{
	int to = xseg__deliver(xs, r, h0, h1);

	if (to < 0)
		return;
	if (st)
		st->requests_failed++;
	xseg_signal(xs, (uint32_t)to);
}

static void settle_request(struct xseg *xs, uint32_t r, uint32_t dead, struct xq_hold *h0,
			   struct xq_hold *h1, struct xseg_recovery_stats *st)
{
	struct xseg_request *req = &xs->reqs[r];
	uint32_t life = xseg__life(req);
	uint64_t holder = __atomic_load_n(&req->holder, __ATOMIC_ACQUIRE);
	bool client_dead = req->src_port == dead || !port_gen_bound(xs, req->src_port, req->src_gen);

	switch (life) {
	case XS_SUBMITTED:
	case XS_ACCEPTED:
		/* Its server (or a hop forwarding it) died: fail it back. */
		if (client_dead)
			break;
		fail_mark(req);
		deliver_failed(xs, r, h0, h1, st);
		return;
	case XS_RESPONDED: {
		/* A reply in flight: on to the port it was heading to, if alive. */
		uint32_t to = (uint32_t)(holder >> 32);

		if (to != dead && port_gen_bound(xs, to, (uint32_t)holder) &&
		    xq_enqueue_tracked(&xs->local[to].pq, xseg__qid_pq(to), &xs->track, h0)) {
			xseg_signal(xs, to);
			return;
		}
		if (!client_dead) {
			/* It was heading to a dead hop: the client still waits. */
			fail_mark(req);
			deliver_failed(xs, r, h0, h1, st);
			return;
		}
		break;
	}
	default:	/* FREE, PREPARED, RECEIVED: nobody waits for it */
		break;
	}
	xseg__free_request(xs, r, h0, h1);
	if (st)
		st->requests_freed++;
}

/* Settle an index held in @h0 (HELD): a chunk or a request. */
static void settle_index(struct xseg *xs, uint32_t dead, struct xq_hold *h0, struct xq_hold *h1,
			 struct xseg_recovery_stats *st)
{
	uint32_t idx = (uint32_t)xq_load_acquire(&h0->index);

	if (idx < xs->nr_requests) {
		settle_request(xs, idx, dead, h0, h1, st);
		return;
	}
	if (idx >= xs->nr_indices || xseg__chunk_referenced(xs, idx)) {
		xq_hold_drop(h0);	/* a request owns it; it goes with the request */
		return;
	}
	xseg__free_chunk(xs, idx, h0);
	if (st)
		st->buffers_freed++;
}

/* Settle dead hold record @h, adopting what it gives back into @mine (then @spare). */
static void settle_hold(struct xseg *xs, struct xq_hold *h, uint32_t dead, struct xq_hold *mine,
			struct xq_hold *spare, struct xseg_recovery_stats *st)
{
	uint64_t qid;
	unsigned state = xq_hold_state(h, &qid) & 0x7F;
	struct xq *q = NULL;
	int r;

	if (state == XQ_HOLD_NONE)
		return;
	if (state == XQ_HOLD_ENQ || state == XQ_HOLD_DEQ) {
		q = xseg__queue(xs, qid);
		if (!q) {
			xseg_sys_log(XSEG_LOG_WARN, "a hold record names no queue (%llu): cleared",
				     (unsigned long long)qid);
			xq_hold_drop(h);
			return;
		}
	}
	r = xq_recover_hold(q, &xs->track, h, mine, (uint32_t)(mine - xs->holds));
	if (r < 0) {
		xseg_sys_log(XSEG_LOG_WARN, "a corrupt hold record was cleared");
		xq_hold_drop(h);
		return;
	}
	if (st)
		st->holds_settled++;
	if (r == XQ_REC_GIVEN)
		settle_index(xs, dead, mine, spare, st);
}

/* The hold records of port @p, chunks first (see docs/recovery.md). */
static void settle_port_holds(struct xseg *xs, uint32_t p, struct xseg_recovery_stats *st)
{
	uint32_t pass, k;

	for (pass = 0; pass < 2; pass++) {
		for (k = 0; k < XSEG_PORT_HOLDS; k++) {
			struct xq_hold *h = &xs->holds[p * XSEG_PORT_HOLDS + k];
			uint32_t idx = (uint32_t)xq_load_acquire(&h->index);
			bool chunk = idx >= xs->nr_requests;

			if ((pass == 0) == chunk)
				settle_hold(xs, h, p, rhold(xs, 0), rhold(xs, 1), st);
		}
	}
}

/*
 * Settle request @r taken from a queue of the kind @want (SUBMITTED for a
 * request queue, RESPONDED for a reply queue). Anything else in a queue is a
 * corrupt entry whose request lives elsewhere: dropped, never settled twice.
 */
static void settle_from_queue(struct xseg *xs, uint32_t r, uint32_t want, uint32_t dead,
			      struct xseg_recovery_stats *st)
{
	if (xseg__life(&xs->reqs[r]) != want) {
		xseg_sys_log(XSEG_LOG_WARN, "request %u in a %s queue is not %s: a corrupt entry, dropped",
			     r, want == XS_SUBMITTED ? "request" : "reply",
			     want == XS_SUBMITTED ? "submitted" : "a reply");
		xq_hold_drop(rhold(xs, 0));
		return;
	}
	settle_request(xs, r, dead, rhold(xs, 0), rhold(xs, 1), st);
}

/* Empty a queue nobody else consumes, settling each request in it. */
static void drain(struct xseg *xs, struct xq *q, uint64_t qid, uint32_t want, uint32_t dead,
		  struct xseg_recovery_stats *st)
{
	uint32_t n, r;

	for (n = 0; n < xs->queue_cap; n++) {
		r = xseg__dequeue_life(xs, q, qid, rhold(xs, 0), want);
		if (r == XQ_NONE)
			break;
		settle_request(xs, r, dead, rhold(xs, 0), rhold(xs, 1), st);
	}
	for (n = 0; n < xs->queue_cap; n++) {
		r = xq_reclaim_stranded(q, &xs->track, 0, rhold(xs, 0));
		if (r == XQ_NONE)
			break;
		settle_from_queue(xs, r, want, dead, st);
	}
}

/* Settle port @p, already claimed (RECOVERING) by us; its dead generation @gen. */
static void settle_port(struct xseg *xs, uint32_t p, uint32_t gen, uint32_t dead_pid,
			struct xseg_recovery_stats *st)
{
	uint64_t held = XSEG_HOLDER(p, gen);
	uint32_t i;

	settle_port_holds(xs, p, st);
	drain(xs, &xs->local[p].rq, xseg__qid_rq(p), XS_SUBMITTED, p, st);
	drain(xs, &xs->local[p].pq, xseg__qid_pq(p), XS_RESPONDED, p, st);
	for (i = 0; i < xs->nr_requests; i++) {
		struct xseg_request *req = &xs->reqs[i];
		uint32_t life;

		if (__atomic_load_n(&req->holder, __ATOMIC_ACQUIRE) != held)
			continue;
		life = xseg__life(req);
		/* Queued ones were drained above or are in a live sender's hands. */
		if (life != XS_PREPARED && life != XS_RECEIVED && life != XS_ACCEPTED)
			continue;
		xq_hold_take(&xs->track, rhold(xs, 0), i);
		settle_request(xs, i, p, rhold(xs, 0), rhold(xs, 1), st);
		__atomic_fetch_add(&xs->ports[p].cnt.reclaimed, 1, __ATOMIC_RELAXED);
	}
	/* release: the next binder sees a settled port. */
	__atomic_store_n(&xs->ports[p].owner, XSEG_OWNER(XSEG_PORT_FREE, gen, 0), __ATOMIC_RELEASE);
	if (dead_pid != xs->pid) {	/* not a port we are leaving ourselves */
		__atomic_fetch_add(&xs->hdr->recoveries, 1, __ATOMIC_RELAXED);
		if (st)
			st->ports_freed++;
	}
}

/* Claim @p for settling if its owner is dead (or it is ours, leaving). */
static bool claim(struct xseg *xs, uint32_t p, uint32_t *gen, uint32_t *pid)
{
	uint64_t w = __atomic_load_n(&xs->ports[p].owner, __ATOMIC_ACQUIRE);
	uint64_t st = XSEG_OWNER_STATE(w);

	*gen = XSEG_OWNER_GEN(w);
	*pid = XSEG_OWNER_PID(w);
	if (st == XSEG_PORT_FREE)
		return false;
	if (st == XSEG_PORT_RECOVERING) {
		/* Ours (leaving), or a recoverer/leaver that died mid-way. */
		return XSEG_OWNER_PID(w) == xs->pid || !xseg_sys_alive(XSEG_OWNER_PID(w), 0);
	}
	if (xseg__port_live(xs, p, NULL))
		return false;
	return __atomic_compare_exchange_n(&xs->ports[p].owner, &w,
					   XSEG_OWNER(XSEG_PORT_RECOVERING, *gen, xs->pid), false,
					   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* A free one of our recovery holds other than @a and @b, or NULL. */
static struct xq_hold *free_rhold(struct xseg *xs, struct xq_hold *a, struct xq_hold *b)
{
	uint32_t k;

	for (k = 0; k < NRH; k++) {
		struct xq_hold *h = rhold(xs, k);

		if (h != a && h != b && (xq_hold_state(h, NULL) & 0x7F) == XQ_HOLD_NONE)
			return h;
	}
	return NULL;
}

/*
 * A previous recoverer died holding the lease: its recovery holds are ours
 * now. A HELD one we settle in place; a half-done move or a claimed one is
 * settled with xq_recover_hold into a free one of the three.
 */
static void settle_leftovers(struct xseg *xs, struct xseg_recovery_stats *st)
{
	uint32_t k;

	for (k = 0; k < NRH; k++) {
		struct xq_hold *h = rhold(xs, k), *mine, *spare;
		unsigned state = (unsigned)xq_load_acquire(&h->state);

		if (state == XQ_HOLD_NONE)
			continue;
		if (state == XQ_HOLD_HELD) {
			spare = free_rhold(xs, h, NULL);
			if (spare) {
				settle_index(xs, XSEG_NO_PORT, h, spare, st);
				continue;
			}
		}
		mine = free_rhold(xs, h, NULL);
		spare = free_rhold(xs, h, mine);
		if (!mine || !spare) {
			xseg_sys_log(XSEG_LOG_WARN, "recovery hold %u left busy: every spare is busy too", k);
			continue;
		}
		settle_hold(xs, h, XSEG_NO_PORT, mine, spare, st);
	}
}

/* Requests queued to ports nobody has bound: fail them back; free replies. */
static void sweep_free_ports(struct xseg *xs, struct xseg_recovery_stats *st)
{
	uint32_t p;

	for (p = 0; p < xs->nr_ports; p++) {
		uint64_t w = __atomic_load_n(&xs->ports[p].owner, __ATOMIC_ACQUIRE);

		if (XSEG_OWNER_STATE(w) != XSEG_PORT_FREE)
			continue;
		if (xq_count(&xs->local[p].rq))
			drain(xs, &xs->local[p].rq, xseg__qid_rq(p), XS_SUBMITTED, p, st);
		if (xq_count(&xs->local[p].pq))
			drain(xs, &xs->local[p].pq, xseg__qid_pq(p), XS_RESPONDED, p, st);
	}
}

/*
 * Indices stranded in the shared free lists: a peer killed between its FAA on
 * the free queue's head and its hold record leaves its position's index in
 * the slot. Free lists need no FIFO order, so we take back every index that
 * sits behind head (a live consumer we overtake just finds its position
 * empty and moves on; see xq_reclaim_stranded).
 */
static void sweep_free_lists(struct xseg *xs, struct xseg_recovery_stats *st)
{
	uint32_t c, n, idx;

	for (n = 0; n < xs->nr_requests; n++) {
		idx = xq_reclaim_stranded(&xs->freeq, &xs->track, 0, rhold(xs, 0));
		if (idx == XQ_NONE)
			break;
		/* Only a free request belongs in the free list; else a corrupt entry. */
		if (idx < xs->nr_requests && xseg__life(&xs->reqs[idx]) == XS_FREE)
			settle_index(xs, XSEG_NO_PORT, rhold(xs, 0), rhold(xs, 1), st);
		else
			xq_hold_drop(rhold(xs, 0));
	}
	for (c = 0; c < xs->nr_classes; c++) {
		for (n = 0; n < xs->cls[c].count; n++) {
			idx = xq_reclaim_stranded(&xs->clsq[c], &xs->track, 0, rhold(xs, 0));
			if (idx == XQ_NONE)
				break;
			if (xseg__chunk_class(xs, idx) == (int)c)
				settle_index(xs, XSEG_NO_PORT, rhold(xs, 0), rhold(xs, 1), st);
			else
				xq_hold_drop(rhold(xs, 0));
		}
	}
}

/*
 * lease_wait - take the lease, waiting while a live recoverer holds it (its
 * work is bounded), up to XSEG_LEASE_WAIT_NS. A port being left or rebound
 * needs its own settling to finish: returning at once would leave it
 * RECOVERING for the next recovery after this process is gone.
 */
#define XSEG_LEASE_WAIT_NS (5ull * 1000 * 1000 * 1000)
static int lease_wait(struct xseg *xs)
{
	uint64_t until = xseg_sys_now_ns() + XSEG_LEASE_WAIT_NS;
	int r;

	while ((r = lease_take(xs)) == -EALREADY && xseg_sys_now_ns() < until)
		xseg_sys_yield();
	return r;
}

static int recover(struct xseg *xs, int only, struct xseg_recovery_stats *st)
{
	uint32_t p, gen, pid;
	int r = only >= 0 ? lease_wait(xs) : lease_take(xs);

	if (r < 0)
		return r;
	settle_leftovers(xs, st);
	for (p = 0; p < xs->nr_ports; p++) {
		if (only >= 0 && p != (uint32_t)only)
			continue;
		if (claim(xs, p, &gen, &pid))
			settle_port(xs, p, gen, pid, st);
	}
	if (only < 0) {
		sweep_free_ports(xs, st);
		sweep_free_lists(xs, st);
		xseg__forget_dead_peers(xs);
	}
	lease_drop(xs);
	return 0;
}

int xseg__recover_port(struct xseg *xs, uint32_t portno, struct xseg_recovery_stats *st)
{
	return recover(xs, (int)portno, st);
}

int xseg_recover(struct xseg *xs, struct xseg_recovery_stats *st)
{
	if (!xs)
		return -EINVAL;
	if (st)
		xseg_memset(st, 0, sizeof(*st));
	return recover(xs, -1, st);
}
