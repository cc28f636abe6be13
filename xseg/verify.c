/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/verify.c - a read-only consistency check of a joined segment.
 *
 * xseg_join() already refused a header whose layout does not match its
 * config. Verify looks at what peers write while running: port owner words,
 * request fields, queue entries, and (best taken when the segment is idle) a
 * census of where every request and chunk index is.
 */
#include "xseg_internal.h"

struct census {
	struct xseg *xs;
	uint8_t *seen;		/* per index: places found */
	void (*out)(void *arg, const char *line);
	void *arg;
	int problems;
};

static void report(struct census *c, const char *fmt, uint32_t a, uint64_t b)
{
	char line[160];

	c->problems++;
	if (!c->out)
		return;
	snprintf(line, sizeof(line), fmt, a, (unsigned long long)b);
	c->out(c->arg, line);
}

static void count_index(void *arg, xq_index idx)
{
	struct census *c = arg;

	if (idx >= c->xs->nr_indices) {
		report(c, "queue entry %u is out of range (limit %llu)", idx, c->xs->nr_indices);
		return;
	}
	if (c->seen[idx] < 255)
		c->seen[idx]++;
}

/* Counters a peer can corrupt: tail more than a capacity ahead of head, or head far past tail. */
static void check_queue(struct census *c, const struct xq *q, uint32_t port, const char *what)
{
	uint64_t t = xa_load_acq64(&q->q->tail);
	uint64_t h = xa_load_acq64(&q->q->head);
	int64_t used = (int64_t)(t - h);
	char fmt[96];

	if (xq_stale(q))
		report(c, strcmp(what, "request queue") ? "port %u: reply queue: %llu entries behind head"
			  " (stranded or corrupt; recover takes them)" : "port %u: request queue: %llu entries"
			  " behind head (stranded or corrupt; recover takes them)", port, xq_stale(q));
	if (used > (int64_t)q->capacity) {
		snprintf(fmt, sizeof(fmt), "port %%u: %s: tail is %%llu positions ahead of head", what);
		report(c, fmt, port, (uint64_t)used);
	} else if (used < -(int64_t)(q->mask + 1)) {
		snprintf(fmt, sizeof(fmt), "port %%u: %s: head is %%llu positions past tail", what);
		report(c, fmt, port, h - t);	/* -used without overflow */
	}
}

/*
 * Growth: 2 if index @i is past its kind's live count (reserve: in no place
 * at all), 1 if a shrink in progress retires it (parked: in one place or
 * none), else 0. *@live: that live count.
 */
static int growth_place(struct xseg *xs, uint32_t i, uint32_t *live)
{
	uint64_t t;
	uint32_t s;

	if (i < xs->nr_requests) {
		*live = xseg__live_requests(xs);
		t = xa_load_acq64(&xs->hdr->retire_requests);
		s = i;
	} else if (i >= xs->cls[0].first && i - xs->cls[0].first < xs->cls[0].count) {
		*live = xseg__live_chunks(xs, 0);
		t = xa_load_acq64(&xs->hdr->retire_chunks[0]);
		s = i - xs->cls[0].first;
	} else {
		return 0;
	}
	if (s >= *live)
		return 2;
	return t && s >= t ? 1 : 0;
}

int xseg_verify(struct xseg *xs, void (*out)(void *arg, const char *line), void *arg)
{
	struct census c = { xs, NULL, out, arg, 0 };
	uint32_t i, k;

	if (!xs)
		return -EINVAL;
	c.seen = xseg_sys_alloc(xs->nr_indices);
	if (!c.seen)
		return -ENOMEM;
	for (i = 0; i < xs->nr_ports; i++) {
		struct xseg_port *p = &xs->ports[i];
		uint64_t w = xseg__owner(p);
		uint32_t red = xa_load_rlx32(&p->redirect);

		if (XSEG_OWNER_STATE(w) != XSEG_PORT_FREE &&
		    xa_load_rlx32(&p->peer_type) >= xs->nr_peer_types)
			report(&c, "port %u: peer type %llu is out of range", i, p->peer_type);
		if (red != XSEG_NO_PORT && red >= xs->nr_ports)
			report(&c, "port %u: redirect to %llu is out of range", i, red);
		if (XSEG_OWNER_STATE(w) == XSEG_PORT_BOUND && !xseg__port_live(xs, i, NULL))
			report(&c, "port %u: owner pid %llu is dead (run recover)", i, XSEG_OWNER_PID(w));
		else if ((XSEG_OWNER_STATE(w) == XSEG_PORT_BINDING ||
			  XSEG_OWNER_STATE(w) == XSEG_PORT_RECOVERING) &&
			 !xseg_sys_alive(XSEG_OWNER_PID(w), 0))
			report(&c, "port %u: left half bound or half recovered by dead pid %llu (run recover)",
			       i, XSEG_OWNER_PID(w));
		check_queue(&c, &xs->local[i].rq, i, "request queue");
		check_queue(&c, &xs->local[i].pq, i, "reply queue");
		xq_scan(&xs->local[i].rq, count_index, &c);
		xq_scan(&xs->local[i].pq, count_index, &c);
	}
	xq_scan(&xs->freeq, count_index, &c);
	for (k = 0; k < xs->nr_classes; k++)
		xq_scan(&xs->clsq[k], count_index, &c);
	/* Requests past the live count are reserve (never formatted): not read. */
	for (i = 0; i < xseg__live_requests(xs); i++) {
		struct xseg_request *r = &xs->reqs[i];
		uint32_t life = xseg__life(r), buf = xa_load_rlx32(&r->buf_index);
		uint64_t h = xa_load_rlx64(&r->holder);

		if (life > XS_RECEIVED)
			report(&c, "request %u: lifecycle state %llu is unknown", i, life);
		if (buf != XSEG_NO_BUF) {
			if (xseg__chunk_class(xs, buf) < 0)
				report(&c, "request %u: buffer index %llu is not a chunk", i, buf);
			else
				count_index(&c, buf);
		}
		if (h != XSEG_HOLDER_NONE && (h >> 32) >= xs->nr_ports)
			report(&c, "request %u: holder port %llu is out of range", i, h >> 32);
		if (r->path_len > xs->max_hops) {
			report(&c, "request %u: return path length %llu is too long", i, r->path_len);
		} else {
			for (k = 0; k < r->path_len; k++)
				if ((r->path[k] >> 32) >= xs->nr_ports)
					report(&c, "request %u: return path hop names port %llu, out of range",
					       i, r->path[k] >> 32);
		}
		if (r->target_len > XSEG_TARGET_MAX)
			report(&c, "request %u: target length %llu is too long", i, r->target_len);
		/* Held requests are with a peer: count them as one place. */
		if (life == XS_PREPARED || life == XS_ACCEPTED || life == XS_RECEIVED)
			count_index(&c, i);
	}
	/* Growth words a peer can corrupt: peers clamp them to the reserve, but say so. */
	if (xa_load_acq64(&xs->hdr->live_requests) > xs->nr_requests)
		report(&c, "the live request count %u is above the reserve (%llu requests)",
		       (uint32_t)xa_load_acq64(&xs->hdr->live_requests), xs->nr_requests);
	for (k = 0; k < xs->nr_classes; k++)
		if (xa_load_acq64(&xs->hdr->live_chunks[k]) > xs->cls[k].count)
			report(&c, "buffer class %u: the live chunk count is above the reserve (%llu chunks)", k,
			       xs->cls[k].count);
	for (i = 0; i < xs->nr_peer_types; i++) {
		const struct xseg_peer_type *t = xseg__peer_type(xs, i);
		uint64_t w = xseg__peer_type_word(t);

		if (w > XSEG__PT_NAMED)
			report(&c, "peer type entry %u: state word %llu is unknown", i, w);
		else if (w == XSEG__PT_NAMED && !memchr(t->name, 0, XSEG_TYPE_LEN))
			report(&c, "peer type entry %u: its name is not terminated (%llu)", i, XSEG_TYPE_LEN);
	}
	for (i = 0; i < xs->nr_holds; i++) {
		uint64_t st = xa_load_rlx64(&xs->holds[i].state) & 0x7F;

		if (st > XQ_HOLD_HELD)
			report(&c, "hold record %u: state %llu is unknown", i, st);
	}
	for (i = 0; i < xs->nr_indices; i++) {
		uint32_t live;
		int g = growth_place(xs, i, &live);

		if (g == 2 && c.seen[i]) {
			report(&c, "index %u is past the live count (%llu) but in use", i, live);
			continue;
		}
		if (g) {
			/* Reserve, or parked by a shrink in progress when nowhere. */
			if (c.seen[i] > 1)
				report(&c, "index %u is in %llu places at once (duplicated)", i, c.seen[i]);
			continue;
		}
		if (c.seen[i] > 1)
			report(&c, "index %u is in %llu places at once (duplicated)", i, c.seen[i]);
		else if (!c.seen[i])
			report(&c, "index %u is nowhere (lost, or in flight right now)", i, 0);
	}
	xseg_sys_free(c.seen);
	return c.problems;
}
