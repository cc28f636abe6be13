/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/recover.c - settling ports whose owner died (and ports being left).
 *
 * A dead port p of generation g is claimed by one CAS of its owner word
 * (BOUND(g, dead) -> RECOVERING(g, us)); the claimer alone settles it, with
 * two empty hold records of p itself as scratch, so no lease is needed and a
 * stopped recoverer elsewhere delays nothing but what it claimed. It:
 *   1. settles p's hold records with xq_recover_hold: buffer chunks first,
 *      then requests, each index ending in exactly one place,
 *   2. drains p's request queue (nobody else consumes it): those requests
 *      fail back to their clients with ECONNRESET; and p's reply queue:
 *      replies to p are freed (or passed on if p was only a forwarding hop),
 *      then takes back indices stranded in both queues, and resets a queue
 *      whose counters are corrupt,
 *   3. scans the request table for requests p held (holder == p, g):
 *      prepared/received ones are freed, accepted ones fail back,
 *   4. frees p (owner -> FREE, same generation; the next bind raises it).
 * The lease (hdr->recovery; a dead holder's is taken over) is only for what
 * all ports share: its three recovery hold records, ports a dead recoverer
 * left RECOVERING, and the sweeps (requests queued to FREE ports, indices
 * stranded in the free lists, dead peers). Every step is idempotent: a
 * recoverer that dies leaves its port (or the lease) and hold records to the
 * next one, which settles them first. See docs/recovery.md for the argument.
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
	uint64_t cur = xa_load_acq64(&xs->hdr->recovery);
	uint32_t tries;

	for (tries = 0; tries < 64; tries++) {
		/* Held by a live process (another thread of ours included): busy. */
		if (cur && lease_holder_alive(cur))
			return -EALREADY;
		/* acq_rel: the winner sees the previous holder's writes. */
		if (xa_cas_acqrel64(&xs->hdr->recovery, &cur, lease_word(xs)))
			return 0;
	}
	return -EALREADY;
}

static void lease_drop(struct xseg *xs)
{
	uint64_t me = lease_word(xs);

	xa_cas_acqrel64(&xs->hdr->recovery, &me, 0);
}

static void fail_mark(struct xseg_request *req)
{
	req->error = ECONNRESET;
	xseg__req_fail(req);
}

static bool port_gen_bound(struct xseg *xs, uint32_t p, uint32_t gen)
{
	uint64_t w;

	if (p >= xs->nr_ports)
		return false;
	w = xseg__owner(&xs->ports[p]);
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
	uint64_t holder = xseg__holder(req);
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

/* The hold records of port @p, chunks first (see docs/recovery.md), adopting into @s0 (spare @s1). */
static void settle_port_holds(struct xseg *xs, uint32_t p, struct xq_hold *s0, struct xq_hold *s1,
			      struct xseg_recovery_stats *st)
{
	uint32_t pass, k;

	for (pass = 0; pass < 2; pass++) {
		for (k = 0; k < XSEG_PORT_HOLDS; k++) {
			struct xq_hold *h = &xs->holds[p * XSEG_PORT_HOLDS + k];
			uint32_t idx = (uint32_t)xq_load_acquire(&h->index);
			bool chunk = idx >= xs->nr_requests;

			/* Our scratch holds are empty between steps: nothing to settle. */
			if (h == s0 || h == s1)
				continue;
			if ((pass == 0) == chunk)
				settle_hold(xs, h, p, s0, s1, st);
		}
	}
}

/*
 * Settle request @r taken from a queue of the kind @want (SUBMITTED for a
 * request queue, RESPONDED for a reply queue). Anything else in a queue is a
 * corrupt entry whose request lives elsewhere: dropped, never settled twice.
 */
static void settle_from_queue(struct xseg *xs, uint32_t r, uint32_t want, uint32_t dead,
			      struct xq_hold *s0, struct xq_hold *s1, struct xseg_recovery_stats *st)
{
	if (xseg__life(&xs->reqs[r]) != want) {
		xseg_sys_log(XSEG_LOG_WARN, "request %u in a %s queue is not %s: a corrupt entry, dropped",
			     r, want == XS_SUBMITTED ? "request" : "reply",
			     want == XS_SUBMITTED ? "submitted" : "a reply");
		xq_hold_unclaim(&xs->track, s0);
		return;
	}
	settle_request(xs, r, dead, s0, s1, st);
}

/* Empty a queue nobody else consumes, settling each request in it (scratch holds @s0, @s1). */
static void drain(struct xseg *xs, struct xq *q, uint64_t qid, uint32_t want, uint32_t dead,
		  struct xq_hold *s0, struct xq_hold *s1, struct xseg_recovery_stats *st)
{
	uint32_t n, r;

	for (n = 0; n < xs->queue_cap; n++) {
		r = xseg__dequeue_life(xs, q, qid, s0, want);
		if (r == XQ_NONE)
			break;
		settle_request(xs, r, dead, s0, s1, st);
	}
	for (n = 0; n < xs->queue_cap; n++) {
		r = xq_reclaim_stranded(q, &xs->track, 0, s0);
		if (r == XQ_NONE)
			break;
		settle_from_queue(xs, r, want, dead, s0, s1, st);
	}
}

/* Are @q's counters in order: at most a capacity queued, head at most a lap past tail? */
static bool counters_ok(const struct xq *q)
{
	uint64_t t = xa_load_acq64(&q->q->tail);
	uint64_t h = xa_load_acq64(&q->q->head);
	int64_t used = (int64_t)(t - h);

	return used <= (int64_t)q->capacity && used >= -(int64_t)(q->mask + 1);
}

/*
 * reset_queue - @q (port @p's, queue id @qid) has corrupt counters and no
 * consumer (its port is RECOVERING or BINDING, held by us): take back every
 * index still in its slots, settle each like a drained one, and lay the
 * queue out empty again. The entries sit near one of the two counters (the
 * other is the corrupt one), so head is moved two laps past each in turn:
 * every entry of the positions before it is then behind head, where
 * xq_reclaim_stranded takes it with a consumer's CAS (an index some live
 * hold names is left alone). An entry whose request is not in the state the
 * queue implies is a corrupt entry: dropped, never settled twice.
 */
static void reset_queue(struct xseg *xs, struct xq *q, uint32_t want, uint32_t p, struct xq_hold *s0,
			struct xq_hold *s1, struct xseg_recovery_stats *st)
{
	uint64_t t = xa_load_acq64(&q->q->tail);
	uint64_t h = xa_load_acq64(&q->q->head);
	uint64_t lap = q->mask + 1, base[2];
	uint32_t k, n, r;

	xseg_sys_log(XSEG_LOG_WARN, "port %u: %s queue counters are corrupt (head %llu, tail %llu): "
		     "queue reset", p, want == XS_SUBMITTED ? "request" : "reply",
		     (unsigned long long)h, (unsigned long long)t);
	base[0] = (int64_t)(t - h) > 0 ? h : t;
	base[1] = (int64_t)(t - h) > 0 ? t : h;
	for (k = 0; k < 2; k++) {
		uint64_t b = base[k] + 2 * lap;

		xa_store_rel64(&q->q->tail, b);
		xa_store_rel64(&q->q->head, b);
		for (n = 0; n <= q->mask; n++) {
			r = xq_reclaim_stranded(q, &xs->track, 0, s0);
			if (r == XQ_NONE)
				break;
			settle_from_queue(xs, r, want, p, s0, s1, st);
		}
	}
	/*
	 * Empty, starting a lap past the last base: the layout a creator writes.
	 * Published to the port's next peers by the release that frees or binds
	 * the port (its owner word), as a creator's layout is by the header.
	 */
	xq_init_at(q->q, xq_size(q->capacity), q->capacity, base[1] + 3 * lap);
}

/*
 * xseg__reset_queues - the queues of port @p, which this process holds
 * RECOVERING or BINDING (nobody consumes them): reset those whose counters
 * are corrupt (see reset_queue). Scratch: @s0, @s1 (NONE). Returns how many
 * queues were reset.
 */
static int reset_queues(struct xseg *xs, uint32_t p, struct xq_hold *s0, struct xq_hold *s1,
			struct xseg_recovery_stats *st)
{
	int n = 0;

	if (!counters_ok(&xs->local[p].rq)) {
		reset_queue(xs, &xs->local[p].rq, XS_SUBMITTED, p, s0, s1, st);
		n++;
	}
	if (!counters_ok(&xs->local[p].pq)) {
		reset_queue(xs, &xs->local[p].pq, XS_RESPONDED, p, s0, s1, st);
		n++;
	}
	return n;
}

int xseg__reset_queues(struct xseg *xs, uint32_t p)
{
	struct xq_hold *s0, *s1;
	int n;

	if (!counters_ok(&xs->local[p].rq) || !counters_ok(&xs->local[p].pq)) {
		if (xseg__holds_get2(xs, p, &s0, &s1))
			return 0;
		n = reset_queues(xs, p, s0, s1, NULL);
		xseg__holds_put2(xs, p, s0, s1);
		return n;
	}
	return 0;
}

/*
 * Settle port @p, claimed (RECOVERING) by us, of dead generation @gen, with
 * the scratch holds @s0, @s1 (NONE): its holds, its queues (reset if their
 * counters are corrupt), the requests it held; then free it.
 */
static void settle_port(struct xseg *xs, uint32_t p, uint32_t gen, uint32_t dead_pid,
			struct xq_hold *s0, struct xq_hold *s1, struct xseg_recovery_stats *st)
{
	uint64_t held = XSEG_HOLDER(p, gen);
	uint32_t i;

	settle_port_holds(xs, p, s0, s1, st);
	drain(xs, &xs->local[p].rq, xseg__qid_rq(p), XS_SUBMITTED, p, s0, s1, st);
	drain(xs, &xs->local[p].pq, xseg__qid_pq(p), XS_RESPONDED, p, s0, s1, st);
	reset_queues(xs, p, s0, s1, st);
	for (i = 0; i < xseg__live_requests(xs); i++) {
		struct xseg_request *req = &xs->reqs[i];
		uint32_t life;

		if (xseg__holder(req) != held)
			continue;
		life = xseg__life(req);
		/* Queued ones were drained above or are in a live sender's hands. */
		if (life != XS_PREPARED && life != XS_RECEIVED && life != XS_ACCEPTED)
			continue;
		xq_hold_take(&xs->track, s0, i);
		settle_request(xs, i, p, s0, s1, st);
		xseg__count(&xs->ports[p].cnt.reclaimed);
	}
	/* release: the next binder sees a settled port. */
	xseg__owner_release(&xs->ports[p], XSEG_OWNER(XSEG_PORT_FREE, gen, 0));
	if (dead_pid != xs->pid) {	/* not a port we are leaving ourselves */
		xseg__count(&xs->hdr->recoveries);
		if (st)
			st->ports_freed++;
	}
}

/* How a port may be claimed. */
enum claim_how {
	CLAIM_DEAD,		/* BOUND or BINDING by a dead pid: by anyone, no lease */
	CLAIM_LEASE,		/* also RECOVERING by a dead recoverer: only under the lease */
	CLAIM_LEAVING,		/* RECOVERING by ourselves: the port we are leaving */
};

/*
 * claim - take @p for settling by a CAS of its owner word to RECOVERING(our
 * pid): the CAS makes us the only process that settles it. Sets *@gen, *@pid
 * (the dead owner's) and *@was (the word we replaced).
 */
static bool claim(struct xseg *xs, uint32_t p, enum claim_how how, uint32_t *gen, uint32_t *pid,
		  uint64_t *was)
{
	uint64_t w = xseg__owner(&xs->ports[p]);
	uint64_t st = XSEG_OWNER_STATE(w);

	*gen = XSEG_OWNER_GEN(w);
	*pid = XSEG_OWNER_PID(w);
	*was = w;
	if (st == XSEG_PORT_FREE)
		return false;
	if (st == XSEG_PORT_RECOVERING) {
		if (XSEG_OWNER_PID(w) == xs->pid)
			return how == CLAIM_LEAVING;	/* else another thread of ours settles it */
		/*
		 * A recoverer (or leaver) died mid-way. It may have used the lease's
		 * recovery holds for this port: only the lease holder, which settles
		 * those first, may take the port over.
		 */
		if (how != CLAIM_LEASE || xseg_sys_alive(XSEG_OWNER_PID(w), 0))
			return false;
	} else if (how == CLAIM_LEAVING || xseg__port_live(xs, p, NULL)) {
		return false;
	}
	return xseg__owner_cas(&xs->ports[p], &w, XSEG_OWNER(XSEG_PORT_RECOVERING, *gen, xs->pid));
}

/*
 * port_scratch - two empty hold records of port @p for settling it. The
 * port's owner is dead (or it is ours, being left) and the port is claimed
 * by us, so nobody else uses its records: settling them is ours alone, and
 * one that we use and die with is settled by the next claimer like the rest
 * (settle_port_holds). false if fewer than two are empty (every record was
 * busy when its owner died).
 */
static bool port_scratch(struct xseg *xs, uint32_t p, struct xq_hold **s0, struct xq_hold **s1)
{
	uint32_t k, n = 0;
	struct xq_hold *got[2];

	for (k = 0; k < XSEG_PORT_HOLDS && n < 2; k++) {
		struct xq_hold *h = &xs->holds[p * XSEG_PORT_HOLDS + k];

		if (xq_load_acquire(&h->state) == XQ_HOLD_NONE)
			got[n++] = h;
	}
	if (n < 2)
		return false;
	*s0 = got[0];
	*s1 = got[1];
	return true;
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
 * A recovery hold of a dead grower (grow.c) names the index it was adding:
 * the one at its kind's live count, with no shrink since. Count it live
 * before it is settled into its free list (a CAS: only that exact state).
 */
static void grow_fix(struct xseg *xs, uint32_t idx)
{
	uint64_t want;

	if (idx < xs->nr_requests) {
		want = idx;
		if (!xa_load_acq64(&xs->hdr->retire_requests))
			xa_cas_acqrel64(&xs->hdr->live_requests, &want, want + 1);
	} else if (idx >= xs->cls[0].first && idx - xs->cls[0].first < xs->cls[0].count) {
		want = idx - xs->cls[0].first;
		if (!xa_load_acq64(&xs->hdr->retire_chunks[0]))
			xa_cas_acqrel64(&xs->hdr->live_chunks[0], &want, want + 1);
	}
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
		/* A grower died adding this index: it is live now (grow.c). */
		grow_fix(xs, (uint32_t)xq_load_acquire(&h->index));
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
		uint64_t w = xseg__owner(&xs->ports[p]);

		if (XSEG_OWNER_STATE(w) != XSEG_PORT_FREE)
			continue;
		if (xq_count(&xs->local[p].rq))
			drain(xs, &xs->local[p].rq, xseg__qid_rq(p), XS_SUBMITTED, p, rhold(xs, 0),
			      rhold(xs, 1), st);
		if (xq_count(&xs->local[p].pq))
			drain(xs, &xs->local[p].pq, xseg__qid_pq(p), XS_RESPONDED, p, rhold(xs, 0),
			      rhold(xs, 1), st);
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
			xq_hold_unclaim(&xs->track, rhold(xs, 0));
	}
	for (c = 0; c < xs->nr_classes; c++) {
		for (n = 0; n < xs->cls[c].count; n++) {
			idx = xq_reclaim_stranded(&xs->clsq[c], &xs->track, 0, rhold(xs, 0));
			if (idx == XQ_NONE)
				break;
			if (xseg__chunk_class(xs, idx) == (int)c)
				settle_index(xs, XSEG_NO_PORT, rhold(xs, 0), rhold(xs, 1), st);
			else
				xq_hold_unclaim(&xs->track, rhold(xs, 0));
		}
	}
}

/*
 * lease_wait - take the lease, waiting while a live recoverer holds it (its
 * work is bounded), up to XSEG_LEASE_WAIT_NS: for the rare port that needs
 * the lease's recovery holds (see settle_claimed).
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

/*
 * settle_claimed - settle port @p that we claimed (@was: the owner word we
 * replaced). With two empty hold records of its own as scratch it needs no
 * lease. Else (every record busy) it needs the lease's recovery holds: if
 * we hold the lease (@leased) we use them; otherwise we wait for the lease
 * briefly, and if a live holder keeps it (stopped, say), we give the claim
 * back (a port we leave stays RECOVERING by us: the next recovery after we
 * are gone settles it). 0 or -EALREADY.
 */
static int settle_claimed(struct xseg *xs, uint32_t p, uint32_t gen, uint32_t pid, uint64_t was,
			  bool leased, struct xseg_recovery_stats *st)
{
	struct xq_hold *s0, *s1;

	if (port_scratch(xs, p, &s0, &s1)) {
		settle_port(xs, p, gen, pid, s0, s1, st);
		return 0;
	}
	if (!leased) {
		if (lease_wait(xs)) {
			uint64_t mine = XSEG_OWNER(XSEG_PORT_RECOVERING, gen, xs->pid);

			if (pid != xs->pid)
				xseg__owner_cas(&xs->ports[p], &mine, was);
			return -EALREADY;
		}
		settle_leftovers(xs, st);
	}
	settle_port(xs, p, gen, pid, rhold(xs, 0), rhold(xs, 1), st);
	if (!leased)
		lease_drop(xs);
	return 0;
}

/* Claim and settle every port that @how allows (only @only if >= 0). 0 or -EALREADY. */
static int settle_ports(struct xseg *xs, int only, enum claim_how how, struct xseg_recovery_stats *st)
{
	uint32_t p, gen, pid;
	uint64_t was;
	int r = 0;

	for (p = 0; p < xs->nr_ports; p++) {
		if (only >= 0 && p != (uint32_t)only)
			continue;
		if (claim(xs, p, how, &gen, &pid, &was) &&
		    settle_claimed(xs, p, gen, pid, was, how == CLAIM_LEASE, st))
			r = -EALREADY;
	}
	return r;
}

/*
 * recover_port - settle @portno: a port we are leaving (@leaving), or one
 * whose owner is dead (a bind found it so). A port a dead recoverer left
 * half settled needs the lease (waited for briefly).
 */
static int recover_port(struct xseg *xs, uint32_t portno, bool leaving, struct xseg_recovery_stats *st)
{
	uint64_t w;
	int r;

	if (leaving)
		return settle_ports(xs, (int)portno, CLAIM_LEAVING, st);
	r = settle_ports(xs, (int)portno, CLAIM_DEAD, st);
	w = xseg__owner(&xs->ports[portno]);
	if (r || XSEG_OWNER_STATE(w) != XSEG_PORT_RECOVERING || XSEG_OWNER_PID(w) == xs->pid ||
	    xseg_sys_alive(XSEG_OWNER_PID(w), 0))
		return r;
	r = lease_wait(xs);
	if (r)
		return r;
	settle_leftovers(xs, st);
	r = settle_ports(xs, (int)portno, CLAIM_LEASE, st);
	lease_drop(xs);
	return r;
}

int xseg__recover_port(struct xseg *xs, uint32_t portno, struct xseg_recovery_stats *st)
{
	return recover_port(xs, portno, false, st);
}

int xseg__leave_settle(struct xseg *xs, uint32_t portno)
{
	return recover_port(xs, portno, true, NULL);
}

int xseg__lease_take(struct xseg *xs)
{
	return lease_take(xs);
}

void xseg__lease_drop(struct xseg *xs)
{
	lease_drop(xs);
}

void xseg__settle_leftovers(struct xseg *xs, struct xseg_recovery_stats *st)
{
	settle_leftovers(xs, st);
}

struct xq_hold *xseg__rhold(struct xseg *xs, uint32_t k)
{
	return rhold(xs, k);
}

int xseg_recover(struct xseg *xs, struct xseg_recovery_stats *st)
{
	int r;

	if (!xs)
		return -EINVAL;
	if (st)
		xseg_memset(st, 0, sizeof(*st));
	/* Dead peers' ports first: each is claimed by a CAS, no lease needed. */
	r = settle_ports(xs, -1, CLAIM_DEAD, st);
	/* Then what only the lease holder does; a live holder (even a stopped one) does it. */
	if (lease_take(xs)) {
		if (st)
			st->lease_busy = 1;
		return r;
	}
	settle_leftovers(xs, st);
	if (settle_ports(xs, -1, CLAIM_LEASE, st))
		r = -EALREADY;
	sweep_free_ports(xs, st);
	sweep_free_lists(xs, st);
	xseg__forget_dead_peers(xs);
	lease_drop(xs);
	return r;
}

/*
 * xseg_reset_port - re-initialise the queues of port @p whose counters are
 * corrupt, the way a bind or a recovery does (reset_queue): each request in
 * them is settled (failed back to a live client with ECONNRESET, or freed),
 * each queue laid out empty. Nothing is done to a port whose queues are in
 * order (0). A free port is claimed for the reset (RECOVERING by us) and
 * freed again; one of a dead owner is recovered (settled and freed). A live
 * owner's port is refused (-EBUSY) unless XSEG_RESET_FORCE: then the queues
 * are reset under it, with the lease's recovery holds as scratch (see
 * xseg.h for what that can cost). Returns the number of queues reset (1, 2).
 */
int xseg_reset_port(struct xseg *xs, uint32_t p, uint32_t flags, struct xseg_recovery_stats *st)
{
	struct xq_hold *s0, *s1;
	uint64_t w;
	int n, r;

	if (!xs || p >= xs->nr_ports || (flags & ~XSEG_RESET_FORCE))
		return -EINVAL;
	if (st)
		xseg_memset(st, 0, sizeof(*st));
	n = !counters_ok(&xs->local[p].rq) + !counters_ok(&xs->local[p].pq);
	if (!n)
		return 0;
	w = xseg__owner(&xs->ports[p]);
	switch (XSEG_OWNER_STATE(w)) {
	case XSEG_PORT_FREE: {
		uint64_t mine = XSEG_OWNER(XSEG_PORT_RECOVERING, XSEG_OWNER_GEN(w), xs->pid);

		/* Nobody consumes a free port's queues; a binder racing us waits for the claim. */
		if (!xseg__owner_cas(&xs->ports[p], &w, mine))
			return -EAGAIN;
		if (port_scratch(xs, p, &s0, &s1)) {
			n = reset_queues(xs, p, s0, s1, st);
		} else if (lease_wait(xs) == 0) {
			settle_leftovers(xs, st);
			n = reset_queues(xs, p, rhold(xs, 0), rhold(xs, 1), st);
			lease_drop(xs);
		} else {
			n = -EALREADY;
		}
		xseg__owner_release(&xs->ports[p], XSEG_OWNER(XSEG_PORT_FREE, XSEG_OWNER_GEN(w), 0));
		return n;
	}
	case XSEG_PORT_BOUND:
		if (!xseg__port_live(xs, p, NULL))
			break;
		if (!(flags & XSEG_RESET_FORCE))
			return -EBUSY;
		r = lease_wait(xs);
		if (r)
			return r;
		settle_leftovers(xs, st);
		n = reset_queues(xs, p, rhold(xs, 0), rhold(xs, 1), st);
		lease_drop(xs);
		return n;
	default:	/* BINDING or RECOVERING: that resets them, if its process lives */
		if (xseg_sys_alive(XSEG_OWNER_PID(w), 0))
			return -EAGAIN;
		break;
	}
	/* Its owner is dead: recovery settles the port, queues and all, and frees it. */
	r = xseg__recover_port(xs, p, st);
	return r ? r : n;
}
