/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/port.c - binding and leaving ports (the owner word and the hold
 * records they rest on are in hold.c).
 *
 * A port's owner word changes only by CAS: FREE -> BINDING (ours, details
 * being written) -> BOUND -> RECOVERING (a recoverer or a leaving owner
 * settles it) -> FREE. The generation rises on every bind.
 */
#include "xseg_internal.h"

int xseg_port_depths(struct xseg *xs, uint32_t portno, uint32_t *requests, uint32_t *replies)
{
	if (!xs || portno >= xs->nr_ports)
		return -EINVAL;
	if (requests)
		*requests = xq_count(&xs->local[portno].rq);
	if (replies)
		*replies = xq_count(&xs->local[portno].pq);
	return 0;
}

struct xseg_port *xseg_port(struct xseg *xs, uint32_t portno)
{
	return portno < xs->nr_ports ? &xs->ports[portno] : NULL;
}

/* Replies left in a port's reply queue by its previous owner: recycle them. */
static void drop_stale_replies(struct xseg *xs, uint32_t p)
{
	struct xq_hold *hr, *hc;
	uint32_t n = 0, limit = xs->queue_cap;

	if (xseg__holds_get2(xs, p, &hr, &hc))
		return;
	while (n++ < limit) {
		uint32_t r = xseg__dequeue_life(xs, &xs->local[p].pq, xseg__qid_pq(p), hr, XS_RESPONDED);

		if (r == XQ_NONE)
			break;
		xseg__free_request(xs, r, hr, hc);
		xseg__count(&xs->ports[p].cnt.reclaimed);
	}
	xseg__holds_put2(xs, p, hr, hc);
}

/* Try to bind @p. 0 bound; -EBUSY live owner; -EAGAIN retry after recovery. */
static int try_bind(struct xseg *xs, uint32_t p, uint32_t flags)
{
	struct xseg_port *port = &xs->ports[p];
	uint64_t w = xseg__owner(&xs->ports[p]);
	uint32_t gen;
	struct xseg__drv *d;
	int r;

	if (XSEG_OWNER_STATE(w) != XSEG_PORT_FREE) {
		if (XSEG_OWNER_STATE(w) == XSEG_PORT_RECOVERING) {
			/* Being settled by a live recoverer (or left by us): not yet. */
			if (xseg_sys_alive(XSEG_OWNER_PID(w), 0) && XSEG_OWNER_PID(w) != xs->pid)
				return -EBUSY;
		} else if (xseg__port_live(xs, p, NULL)) {
			return XSEG_OWNER_PID(w) == xs->pid && xa_load_acq32(&xs->local[p].bound) ? -EALREADY : -EBUSY;
		}
		/* Its owner (or its recoverer) is dead: settle it, then try again. */
		r = xseg__recover_port(xs, p, NULL);
		return r == 0 || r == -EALREADY ? -EAGAIN : r;
	}
	gen = (XSEG_OWNER_GEN(w) + 1) & 0x3FFFFFFF;
	/* acq_rel: only one binder wins this generation of the port. */
	if (!xseg__owner_cas(port, &w, XSEG_OWNER(XSEG_PORT_BINDING, gen, xs->pid)))
		return -EAGAIN;
	xa_store_rlx64(&port->owner_start, xs->start);
	xa_store_rlx32(&port->owner_uid, xs->uid);
	xa_store_rlx32(&port->peer_type, xs->peer_type);
	xa_store_rlx32(&port->flags, flags);
	xs->local[p].gen = gen;
	xs->local[p].holds_busy = 0;
	xs->local[p].timing = !(flags & XSEG_PORT_NO_TIMING);
	xs->local[p].service_timing = xs->local[p].timing && (flags & XSEG_PORT_SERVICE_TIMING);
	xseg__quota_bind(xs, p, gen);
	/*
	 * Nobody consumes the port's queues while it is BINDING (and producers
	 * wait for BOUND): reset them if a peer corrupted their counters, or the
	 * port would never get a request or a reply again.
	 */
	xseg__reset_queues(xs, p);
	d = xseg__driver_for(xs, xs->peer_type);
	if (d && d->ops->bind) {
		r = d->ops->bind(xs, d->priv, p);
		if (r) {
			xseg__owner_release(port, XSEG_OWNER(XSEG_PORT_FREE, gen, 0));
			return r;
		}
	}
	/*
	 * release (acq_rel CAS): whoever sees BOUND sees the owner details
	 * above. A CAS, not a store: if a recoverer took the port from us (it
	 * wrongly judged us dead), we lose it rather than overwrite its state.
	 */
	w = XSEG_OWNER(XSEG_PORT_BINDING, gen, xs->pid);
	if (!xseg__owner_cas(port, &w, XSEG_OWNER(XSEG_PORT_BOUND, gen, xs->pid))) {
		if (d && d->ops->unbind)
			d->ops->unbind(xs, d->priv, p);
		return -EAGAIN;
	}
	/* Atomic: another thread binding the same port reads it (-EALREADY). */
	xa_store_rel32(&xs->local[p].bound, 1);
	drop_stale_replies(xs, p);
	return 0;
}

/*
 * The owners (pid, start) a dynamic bind found live so far in its scan.
 * Idle ports are mostly bound by a few processes: without this a bind
 * would look each bound port's owner up (a /proc read in user space), so
 * its cost would grow with the number of ports bound. A process found live
 * during the scan counts as live for the rest of it (as if it died just
 * after the scan); a dead owner's port is still recovered and taken.
 */
#define LIVE_OWNERS 8
struct live_owners {
	uint32_t n;
	uint32_t pid[LIVE_OWNERS];
	uint64_t start[LIVE_OWNERS];
};

static int live_owner_seen(struct xseg *xs, uint32_t p, const struct live_owners *l)
{
	uint64_t w = xseg__owner(&xs->ports[p]), start;
	uint32_t i;

	if (XSEG_OWNER_STATE(w) != XSEG_PORT_BOUND || !l->n)
		return 0;
	start = xa_load_acq64(&xs->ports[p].owner_start);
	for (i = 0; i < l->n && i < LIVE_OWNERS; i++)
		if (l->pid[i] == XSEG_OWNER_PID(w) && l->start[i] == start)
			return 1;
	return 0;
}

/*
 * try_bind() just found @p busy (-EBUSY, -EALREADY): if its owner word is
 * still @w0, the one it judged, and BOUND, its owner is live: remember it.
 */
static void live_owner_note(struct xseg *xs, uint32_t p, uint64_t w0, struct live_owners *l)
{
	uint64_t w = xseg__owner(&xs->ports[p]);
	uint32_t i = l->n % LIVE_OWNERS;

	if (w != w0 || XSEG_OWNER_STATE(w) != XSEG_PORT_BOUND || live_owner_seen(xs, p, l))
		return;
	l->pid[i] = XSEG_OWNER_PID(w);
	l->start[i] = xa_load_acq64(&xs->ports[p].owner_start);
	l->n++;
}

int xseg_bind_port(struct xseg *xs, uint32_t portno, uint32_t flags)
{
	struct live_owners live = { .n = 0 };
	uint32_t p, tries;
	int r = -ENOSPC;

	if (!xs)
		return -EINVAL;
	if (xs->peer_type == XSEG_OBSERVER)
		return -EPERM;	/* joined without a peer type (xseg_join) */
	if (!(flags & (XSEG_PORT_ACCEPT | XSEG_PORT_RECEIVE)))
		flags |= XSEG_PORT_ACCEPT | XSEG_PORT_RECEIVE;
	if (portno != XSEG_ANY_PORT) {
		if (portno >= xs->dynports)
			return -EINVAL;	/* static ports only; dynamic ones by XSEG_ANY_PORT */
		for (tries = 0; tries < 4; tries++) {
			r = try_bind(xs, portno, flags);
			if (r != -EAGAIN)
				return r ? r : (int)portno;
		}
		return -EBUSY;
	}
	for (p = xs->dynports; p < xs->nr_ports; p++) {
		uint64_t w0 = xseg__owner(&xs->ports[p]);

		if (live_owner_seen(xs, p, &live))
			continue;	/* bound by an owner found live earlier in this scan */
		for (tries = 0; tries < 4; tries++) {
			r = try_bind(xs, p, flags);
			if (r == 0)
				return (int)p;
			if (r != -EAGAIN)
				break;
		}
		if (r == -EBUSY || r == -EALREADY)
			live_owner_note(xs, p, w0, &live);
	}
	return -ENOSPC;
}

int xseg_leave_port(struct xseg *xs, uint32_t portno)
{
	struct xseg_port *port;
	struct xseg__drv *d;
	uint64_t w;

	if (!xs || portno >= xs->nr_ports)
		return -EINVAL;
	if (!xseg__owned(xs, portno))
		return -EPERM;
	port = &xs->ports[portno];
	d = xseg__driver_for(xs, xs->peer_type);
#if defined(XSEG_DOMAIN_KERNEL)
	xseg_cancel_wait(xs, portno);	/* a wait left prepared on it (kept per port in the kernel) */
#endif
	if (d && d->ops->unbind)
		d->ops->unbind(xs, d->priv, portno);
	/*
	 * Leaving settles the port exactly as recovery settles a dead owner's:
	 * queued requests fail back to their clients, our requests go back to
	 * the free list. We mark it RECOVERING ourselves first.
	 */
	w = XSEG_OWNER(XSEG_PORT_BOUND, xs->local[portno].gen, xs->pid);
	if (!xseg__owner_cas(port, &w, XSEG_OWNER(XSEG_PORT_RECOVERING, xs->local[portno].gen, xs->pid)))
		return -EPERM;
	xa_store_rel32(&xs->local[portno].bound, 0);
	return xseg__leave_settle(xs, portno) == 0 ? 0 : -EIO;
}

int xseg_set_redirect(struct xseg *xs, uint32_t portno, uint32_t to)
{
	if (!xs || portno >= xs->nr_ports || (to != XSEG_NO_PORT && to >= xs->nr_ports) || to == portno)
		return -EINVAL;
	xa_store_rel32(&xs->ports[portno].redirect, to);
	return 0;
}
