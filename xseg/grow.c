/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/grow.c - growing and shrinking a live segment within its reserve.
 *
 * A growable segment (max_requests= above nr_requests) is laid out for the
 * maximum: the request array, the ownership words, every queue's capacity and
 * the default class's chunks. Nothing moves and nobody remaps; the header's
 * live words say how many requests (and default-class chunks) circulate.
 *
 * Growth adds one index at a time, under the recovery lease, through the
 * lease's first recovery hold:
 *
 *   format it -> take it in the hold (HELD) -> publish live = i + 1 -> enqueue
 *
 * A grower killed anywhere leaves either nothing (the hold is NONE: index i
 * was not taken, live is i) or the index in the hold. The next lease holder
 * (the next grower, or any recovery) settles its leftovers as it does a dead
 * recoverer's; for a hold naming the index at the live count it first counts
 * it live (grow_fix in recover.c), then puts it in its queue exactly once (HELD: in
 * place; half enqueued: xq_recover_hold). Peers never wait for a grower.
 *
 * Shrinking to T sets the retire words: a request or default-class chunk at
 * or above T that comes back free is parked (dropped from its hold, in no
 * queue) instead of queued; get_request and prep_request park those they
 * meet. The shrinker drains the parked ones out of the free queues and checks
 * that no index of the range is held, queued or referenced; then live = T and
 * the pages of the range are given back. Until then it reports what is still
 * held (-EBUSY); calling again continues. The retire words stay set after a
 * shrink, so an index a straggler still moves is parked too; the next growth
 * clears them first.
 */
#include "xseg_internal.h"

/* The two kinds of growable index ranges: requests, and the default class's chunks. */
struct idx_range {
	struct xq *q;
	uint64_t qid;
	uint64_t *live, *retire;
	uint32_t first;		/* index of slot 0 */
	uint32_t max;		/* slots reserved */
	bool requests;
};

static void range_of(struct xseg *xs, bool requests, struct idx_range *rg)
{
	rg->requests = requests;
	if (requests) {
		rg->q = &xs->freeq;
		rg->qid = XSEG__QID_FREE;
		rg->live = &xs->hdr->live_requests;
		rg->retire = &xs->hdr->retire_requests;
		rg->first = 0;
		rg->max = xs->nr_requests;
	} else {
		rg->q = &xs->clsq[0];
		rg->qid = xseg__qid_cls(xs, 0);
		rg->live = &xs->hdr->live_chunks[0];
		rg->retire = &xs->hdr->retire_chunks[0];
		rg->first = xs->cls[0].first;
		rg->max = xs->cls[0].count;
	}
}

static uint32_t range_live(const struct idx_range *rg)
{
	uint64_t n = xa_load_acq64(rg->live);

	return n < rg->max ? (uint32_t)n : rg->max;
}

/* Allocate the pages that hold [off, off + len) of a segment at @base (page rounded). */
static int populate(void *base, uint64_t off, uint64_t len, uint64_t page)
{
	uint64_t a = off & ~(page - 1), b = xseg__align(off + len, page);

	return b > a ? xseg_sys_populate((uint8_t *)base + a, b - a) : 0;
}

int xseg__populate_live(void *base, const struct xseg_header *h, uint32_t live)
{
	uint64_t page = 1ull << h->cfg.page_shift;
	uint64_t c0end = h->cls[0].data_off + (uint64_t)h->cls[0].count * h->cls[0].size;
	int r;

	/* Header, ports, live requests | gen[], holds, queues, live chunks | other classes, extra. */
	r = populate(base, 0, h->reqs_off + (uint64_t)live * sizeof(struct xseg_request), page);
	if (!r)
		r = populate(base, h->gens_off, h->cls[0].data_off + (uint64_t)live * h->cls[0].size -
			     h->gens_off, page);
	if (!r && h->size > c0end)
		r = populate(base, c0end, h->size - c0end, page);
	return r;
}

/* Add slots live .. @to - 1 of @rg. 0, or -EIO when a queue refuses (corrupt). */
static int grow_range(struct xseg *xs, struct idx_range *rg, uint32_t to, uint32_t *added)
{
	struct xq_hold *h = xseg__rhold(xs, 0);
	uint64_t page = 1ull << xs->cfg.page_shift;
	uint32_t s = range_live(rg);
	int r;

	/* Storage for the whole range first: a shortage is -ENOSPC here, never SIGBUS later. */
	if (s < to) {
		r = rg->requests ?
		    populate(xs->base, (uint64_t)((uint8_t *)&xs->reqs[s] - (uint8_t *)xs->base),
			     (uint64_t)(to - s) * sizeof(struct xseg_request), page) :
		    populate(xs->base, xs->cls[0].data_off + (uint64_t)s * xs->cls[0].size,
			     (uint64_t)(to - s) * xs->cls[0].size, page);
		if (r)
			return r;
	}
	for (; s < to; s++) {
		uint32_t idx = rg->first + s;

		if (rg->requests)
			xseg__format_request(&xs->reqs[idx]);
		xseg_sys_test_point();
		xq_hold_take(&xs->track, h, idx);
		xseg_sys_test_point();
		/* release: a peer that sees the count sees the formatted request. */
		xa_store_rel64(rg->live, (uint64_t)s + 1);
		xseg_sys_test_point();
		if (!xq_enqueue_tracked(rg->q, rg->qid, &xs->track, h)) {
			xq_hold_drop(h);
			xseg_sys_log(XSEG_LOG_WARN, "grow: index %u does not fit its queue (corrupt?)", idx);
			return -EIO;
		}
		(*added)++;
	}
	return 0;
}

/* The census of a retiring range: which slots are anywhere at all. */
struct census {
	struct xseg *xs;
	struct idx_range *rg;
	uint32_t from, to;	/* slots */
	uint8_t *busy;		/* per slot of [from, to) */
};

static void mark(struct census *c, uint32_t idx)
{
	if (idx >= c->rg->first && idx - c->rg->first >= c->from && idx - c->rg->first < c->to)
		c->busy[idx - c->rg->first - c->from] = 1;
}

static void mark_fn(void *arg, xq_index idx)
{
	mark(arg, idx);
}

/*
 * Drain the parked-to-be slots out of @rg's free queue: each entry is taken
 * once (bounded by what the queue held), a retiring one is parked, any other
 * goes back. Under the lease, through its recovery hold, so a shrinker that
 * dies loses nothing (its hold is settled like a dead recoverer's).
 */
static void drain_retiring(struct xseg *xs, struct idx_range *rg, uint32_t from)
{
	struct xq_hold *h = xseg__rhold(xs, 0);
	struct census c = { xs, rg, from, range_live(rg), NULL };
	uint32_t n, todo;

	if (c.to <= from)
		return;
	c.busy = xseg_sys_alloc(c.to - from);
	if (!c.busy)
		return;
	xseg_memset(c.busy, 0, c.to - from);
	xq_scan(rg->q, mark_fn, &c);
	for (n = 0, todo = 0; n < c.to - from; n++)
		todo += c.busy[n];
	xseg_sys_free(c.busy);
	for (n = xq_count(rg->q); todo && n; n--) {
		uint32_t idx = xq_dequeue_tracked(rg->q, rg->qid, &xs->track, h);

		if (idx == XQ_NONE)
			break;
		xseg_sys_test_point();
		if (idx >= rg->first && idx - rg->first >= from && idx - rg->first < rg->max) {
			xq_hold_drop(h);
			todo--;
		} else if (!xq_enqueue_tracked(rg->q, rg->qid, &xs->track, h)) {
			xq_hold_drop(h);
		}
	}
}

/* How many slots of [from, live) are still held, queued or referenced (0: all parked). */
static uint32_t still_held(struct xseg *xs, struct idx_range *rg, uint32_t from)
{
	struct census c = { xs, rg, from, range_live(rg), NULL };
	uint32_t i, n = 0;

	if (c.to <= from)
		return 0;
	c.busy = xseg_sys_alloc(c.to - from);
	if (!c.busy)
		return c.to - from;
	xseg_memset(c.busy, 0, c.to - from);
	/* Holds first, then queues: an index moving from one to the other is seen. */
	for (i = 0; i < xs->nr_holds; i++)
		if ((xq_load_acquire(&xs->holds[i].state) & 0x7F) != XQ_HOLD_NONE)
			mark(&c, (uint32_t)xq_load_acquire(&xs->holds[i].index));
	xq_scan(rg->q, mark_fn, &c);
	for (i = 0; i < xs->nr_ports; i++) {
		xq_scan(&xs->local[i].rq, mark_fn, &c);
		xq_scan(&xs->local[i].pq, mark_fn, &c);
	}
	for (i = 0; i < xseg__live_requests(xs); i++) {
		struct xseg_request *r = &xs->reqs[i];

		if (rg->requests && xseg__life(r) != XS_FREE)
			mark(&c, i);
		if (!rg->requests)
			mark(&c, xa_load_acq32(&r->buf_index));
	}
	for (i = 0; i < c.to - from; i++)
		n += c.busy[i];
	xseg_sys_free(c.busy);
	return n;
}

/* Give back the pages wholly inside [off, off + len) of the segment. */
static uint64_t discard(struct xseg *xs, uint64_t off, uint64_t len)
{
	uint64_t page = 1ull << xs->cfg.page_shift;
	uint64_t a = xseg__align(off, page), b = (off + len) & ~(page - 1);

	if (b <= a || xseg_sys_discard((uint8_t *)xs->base + a, b - a))
		return 0;
	return b - a;
}

/*
 * Store @v in @w with a read-modify-write (acq_rel), not a plain store: the
 * census that follows must not be ordered before it (the sanitizers' and
 * the kernel's model have no seq_cst fence we may use here).
 */
static void set_word(uint64_t *w, uint64_t v)
{
	uint64_t cur = xa_load_rlx64(w);

	while (!xa_cas_acqrel64(w, &cur, v))
		;
}

/* Shrink @rg to @to slots. 0 done, or -EBUSY (*held: slots still held). */
static int shrink_range(struct xseg *xs, struct idx_range *rg, uint32_t to, uint32_t *held,
			uint64_t *released)
{
	uint32_t live = range_live(rg), n;
	uint64_t retire = xa_load_acq64(rg->retire);

	if (!retire || retire > to)
		/* Lower only: a lower bound parks more, never frees a parked one. */
		set_word(rg->retire, to);
	drain_retiring(xs, rg, to);
	n = still_held(xs, rg, to);
	if (n) {
		*held += n;
		return -EBUSY;
	}
	xa_store_rel64(rg->live, to);
	if (rg->requests)
		*released += discard(xs, (uint64_t)((uint8_t *)&xs->reqs[to] - (uint8_t *)xs->base),
				     (uint64_t)(live - to) * sizeof(struct xseg_request));
	else
		*released += discard(xs, xs->cls[0].data_off + (uint64_t)to * xs->cls[0].size,
				     (uint64_t)(live - to) * xs->cls[0].size);
	return 0;
}

uint32_t xseg_max_requests(struct xseg *xs)
{
	return xs ? xs->nr_requests : 0;
}

int xseg_grow_status(struct xseg *xs, struct xseg_grow_status *st)
{
	uint64_t t;

	if (!xs || !st)
		return -EINVAL;
	xseg_memset(st, 0, sizeof(*st));
	st->max_requests = xs->nr_requests;
	st->live_requests = xseg__live_requests(xs);
	st->live_chunks = xseg__live_chunks(xs, 0);
	st->target = st->live_requests;
	/* A shrink in progress: its target (requests first, then chunks). */
	t = xa_load_acq64(&xs->hdr->retire_requests);
	if (t && t < st->live_requests)
		st->target = (uint32_t)t;
	t = xa_load_acq64(&xs->hdr->retire_chunks[0]);
	if (t && t < st->live_chunks && t < st->target)
		st->target = (uint32_t)t;
	return 0;
}

/*
 * Shrink requests to @treq, then (only once no request above it is left)
 * the default class's chunks to @tchunk: while requests above the bound
 * still hold chunks below it, every chunk stays live, so a live request
 * always finds one. 0 or -EBUSY.
 */
static int shrink_both(struct xseg *xs, struct idx_range *rq, struct idx_range *rc, uint32_t treq,
		       uint32_t tchunk, struct xseg_grow_status *st)
{
	int r;

	if (treq < range_live(rq)) {
		r = shrink_range(xs, rq, treq, &st->held, &st->bytes_released);
		if (r)
			return r;
	}
	if (tchunk < range_live(rc))
		return shrink_range(xs, rc, tchunk, &st->held, &st->bytes_released);
	return 0;
}

int xseg_grow(struct xseg *xs, uint32_t nr_requests, struct xseg_grow_status *st)
{
	struct xseg_grow_status local;
	struct idx_range rq, rc;
	uint32_t lreq, lchunk;
	uint64_t rr, rcr;
	int r = 0;

	if (!st)
		st = &local;
	if (!xs || !nr_requests)
		return -EINVAL;
	xseg_grow_status(xs, st);
	if (nr_requests > xs->nr_requests)
		return -ERANGE;
	if (xseg__lease_take(xs))
		return -EALREADY;
	/* A dead grower's (or recoverer's) index in flight: settled, counted live. */
	xseg__settle_leftovers(xs, NULL);
	range_of(xs, true, &rq);
	range_of(xs, false, &rc);
	lreq = range_live(&rq);
	lchunk = range_live(&rc);
	rr = xa_load_acq64(rq.retire);
	rcr = xa_load_acq64(rc.retire);
	if ((rr && rr < lreq) || (rcr && rcr < lchunk)) {
		/* A shrink in progress. A lower target just lowers its bound (below); else it finishes first. */
		uint32_t treq = rr && rr < lreq ? (uint32_t)rr : lreq;

		if (nr_requests >= treq) {
			r = shrink_both(xs, &rq, &rc, treq, rcr && rcr < lchunk ? (uint32_t)rcr : treq, st);
			if (r)
				goto out;
			lreq = range_live(&rq);
			lchunk = range_live(&rc);
		}
	}
	if (nr_requests > lreq || nr_requests > lchunk) {
		/* A finished shrink left its retire words: cleared before anything is added. */
		set_word(rq.retire, 0);
		set_word(rc.retire, 0);
		/* Chunks first: a live request always finds a live chunk. */
		r = grow_range(xs, &rc, nr_requests, &st->added);
		if (!r)
			r = grow_range(xs, &rq, nr_requests, &st->added);
	}
	if (!r && (nr_requests < range_live(&rq) || nr_requests < range_live(&rc)))
		r = shrink_both(xs, &rq, &rc, nr_requests, nr_requests, st);
out:
	xseg__lease_drop(xs);
	{
		uint32_t added = st->added, held = st->held;
		uint64_t rel = st->bytes_released;

		xseg_grow_status(xs, st);
		st->added = added;
		st->held = held;
		st->bytes_released = rel;
	}
	return r;
}
