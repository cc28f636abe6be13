/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/quota.c - per-port quotas: how many requests a port may hold at once
 * and how many bytes of buffer chunks its requests may hold, so that one
 * greedy client cannot drain the free lists for everyone.
 *
 * A request is charged to its client port (src_port) from get_request until
 * it is freed (put_request, or a recovery that frees it); a buffer chunk
 * from the prep that attaches it until it is released. Limits live in the
 * port (0: unlimited): every bind sets them from the segment's config
 * (spec keys quota_requests=, quota_buffer=, or the binder's peer type's
 * entry of quota_types=, see xseg__quota_defaults), the owner may change them
 * (xseg_set_port_quota). Only a port with a limit of a kind pays for it: a
 * request records in its state word what was charged (XS_Q_REQUEST,
 * XS_Q_BUFFER) and its release gives back only that, so an unlimited port
 * (the default) never touches its usage words, and a limit set on a live
 * port counts what is taken from then on. Usage is a word per kind, XSEG_USE(gen, amount),
 * changed by CAS only: charged by the owner's own calls, given back by
 * whoever frees the request, and only while the word's generation is the
 * request's client generation - a port rebound since starts at 0 with its
 * new generation, so a dead client's usage goes with its port. Values read
 * from the port are a peer's: every one is clamped, never trusted to index
 * or to size anything.
 */
#include "xseg_internal.h"

static uint64_t *use_word(struct xseg_port *port, int kind)
{
	return kind == XSEG__Q_REQUESTS ? &port->use_requests : &port->use_buffer;
}

/* The limit of @kind in units of the usage word (requests, or pages rounded down). */
static uint64_t limit_of(struct xseg *xs, struct xseg_port *port, int kind)
{
	if (kind == XSEG__Q_REQUESTS)
		return xa_load_rlx32(&port->quota_requests);
	return xa_load_rlx64(&port->quota_buffer) >> xs->cfg.page_shift;
}

/*
 * xseg__quota_defaults - the limits this handle's binds start with: the
 * quota_types= entry of its peer type @type if there is one, else the
 * segment's quota_requests=/quota_buffer=. From the validated config copy.
 */
void xseg__quota_defaults(struct xseg *xs, const char *type)
{
	const struct xseg_type_quota *q = xseg__type_quota(&xs->cfg, type);

	xs->bind_quota_requests = q ? q->requests : xs->cfg.quota_requests;
	xs->bind_quota_buffer = q ? q->buffer : xs->cfg.quota_buffer;
}

/* xseg__quota_bind - the port @p is being bound with generation @gen. */
void xseg__quota_bind(struct xseg *xs, uint32_t p, uint32_t gen)
{
	struct xseg_port *port = &xs->ports[p];

	xa_store_rlx32(&port->quota_requests, xs->bind_quota_requests);
	xa_store_rlx64(&port->quota_buffer, xs->bind_quota_buffer);
	xa_store_rel64(&port->use_requests, XSEG_USE(gen, 0));
	xa_store_rel64(&port->use_buffer, XSEG_USE(gen, 0));
}

/*
 * xseg__quota_charge - charge @n of @kind to port @p, ours (bound with
 * xs->local[p].gen): 1 if charged, 0 if the port has no limit of that kind
 * (nothing charged, the usage word not even read: an unlimited port pays no
 * atomic), or -EDQUOT if that would pass the limit. The caller records what
 * was charged in the request (XS_Q_*) and gives back only that. A word of
 * another generation (a peer wrote it) counts as 0.
 */
int xseg__quota_charge(struct xseg *xs, uint32_t p, int kind, uint64_t n)
{
	struct xseg_port *port = &xs->ports[p];
	uint64_t *u, w, lim = limit_of(xs, port, kind);
	uint32_t gen = xs->local[p].gen;

	if (!lim)
		return 0;
	u = use_word(port, kind);
	w = xa_load_acq64(u);
	for (;;) {
		uint64_t have = XSEG_USE_GEN(w) == gen ? XSEG_USE_N(w) : 0;

		if (n > XSEG_USE_MAX - have || have + n > lim)
			return -EDQUOT;
		if (xa_cas_acqrel64(u, &w, XSEG_USE(gen, have + n)))
			return 1;
		lim = limit_of(xs, port, kind);
		if (!lim)
			return 0;	/* the owner lifted the limit meanwhile */
	}
}

/*
 * xseg__quota_release - give back @n of @kind charged to port @p in its bind
 * generation @gen (the request's src_port and src_gen, from shared memory:
 * checked). Nothing if the port was rebound since.
 */
void xseg__quota_release(struct xseg *xs, uint32_t p, uint32_t gen, int kind, uint64_t n)
{
	uint64_t *u, w;

	if (p >= xs->nr_ports || !n)
		return;
	u = use_word(&xs->ports[p], kind);
	w = xa_load_acq64(u);
	while (XSEG_USE_GEN(w) == (gen & 0x3FFFFFFFu)) {
		uint64_t have = XSEG_USE_N(w);

		if (xa_cas_acqrel64(u, &w, XSEG_USE(gen, have > n ? have - n : 0)))
			return;
	}
}

int xseg_set_port_quota(struct xseg *xs, uint32_t portno, uint32_t max_requests,
			uint64_t max_buffer)
{
	if (!xs || portno >= xs->nr_ports)
		return -EINVAL;
	if (!xseg__owned(xs, portno))
		return -EPERM;
	xa_store_rlx32(&xs->ports[portno].quota_requests, max_requests);
	xa_store_rel64(&xs->ports[portno].quota_buffer, max_buffer);
	return 0;
}

int xseg_port_quota(struct xseg *xs, uint32_t portno, struct xseg_quota *q)
{
	struct xseg_port *port;
	uint64_t owner, ur, ub;
	uint32_t gen;

	if (!xs || !q || portno >= xs->nr_ports)
		return -EINVAL;
	port = &xs->ports[portno];
	owner = xseg__owner(port);
	gen = XSEG_OWNER_GEN(owner);
	ur = xa_load_acq64(&port->use_requests);
	ub = xa_load_acq64(&port->use_buffer);
	q->max_requests = xa_load_rlx32(&port->quota_requests);
	q->max_buffer = xa_load_rlx64(&port->quota_buffer);
	/* Usage counts for the port's current bind only. */
	q->requests = XSEG_OWNER_STATE(owner) == XSEG_PORT_BOUND && XSEG_USE_GEN(ur) == gen ?
		      XSEG_USE_N(ur) : 0;
	q->buffer = XSEG_OWNER_STATE(owner) == XSEG_PORT_BOUND && XSEG_USE_GEN(ub) == gen ?
		    XSEG_USE_N(ub) << xs->cfg.page_shift : 0;
	return 0;
}
