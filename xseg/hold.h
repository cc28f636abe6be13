/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/hold.h - the owner and hold primitives (xseg/hold.c): the unit the
 * rest of the core stands on. Internal (names are xseg__*); included by
 * xseg_internal.h after struct xseg.
 */
#ifndef XSEG_HOLD_H
#define XSEG_HOLD_H

struct xseg;
struct xseg__drv;
struct xq_hold;

/* Port owners. */
/* Is @portno bound by a live process? Sets *gen to its bind generation (reads /proc). */
int xseg__port_live(struct xseg *xs, uint32_t portno, uint32_t *gen);

/*
 * Inline: every request operation calls these (the owner check and the hold
 * records around each queue move), and a call into another unit per use was
 * a measurable part of a request's own cost.
 */

/* xseg__owned - 1 if this process has bound @portno (and it is still ours). */
static inline int xseg__owned(struct xseg *xs, uint32_t portno)
{
	uint64_t w;

	if (portno >= xs->nr_ports || !xa_load_acq32(&xs->local[portno].bound))
		return 0;
	w = xseg__owner(&xs->ports[portno]);
	return XSEG_OWNER_STATE(w) == XSEG_PORT_BOUND && XSEG_OWNER_PID(w) == xs->pid &&
	       XSEG_OWNER_GEN(w) == xs->local[portno].gen;
}

/*
 * xseg__hold_get - one of @portno's hold records for a queue move by this
 * process. -EAGAIN when all XSEG_PORT_HOLDS are in use by our threads.
 */
static inline int xseg__hold_get(struct xseg *xs, uint32_t portno, struct xq_hold **hold)
{
	uint32_t *busy = &xs->local[portno].holds_busy;
	uint32_t cur = xa_load_acq32(busy);

	for (;;) {
		uint32_t bit;

		if (cur == (1u << XSEG_PORT_HOLDS) - 1)
			return -EAGAIN;
		bit = (uint32_t)__builtin_ctz(~cur);
		if (xa_cas_acqrel32(busy, &cur, cur | (1u << bit))) {
			*hold = &xs->holds[portno * XSEG_PORT_HOLDS + bit];
			return 0;
		}
	}
}

static inline void xseg__hold_put(struct xseg *xs, uint32_t portno, struct xq_hold *hold)
{
	uint32_t bit = (uint32_t)(hold - &xs->holds[portno * XSEG_PORT_HOLDS]);

	xa_and_acqrel32(&xs->local[portno].holds_busy, ~(1u << bit));
}

/*
 * Two holds at once (a request and its buffer chunk): both, or neither,
 * with one atomic operation each way (respond and receive take and return
 * a pair on every call, on the round trip's path).
 */
static inline int xseg__holds_get2(struct xseg *xs, uint32_t portno, struct xq_hold **a, struct xq_hold **b)
{
	uint32_t *busy = &xs->local[portno].holds_busy;
	uint32_t cur = xa_load_acq32(busy);

	for (;;) {
		uint32_t fr = ~cur & ((1u << XSEG_PORT_HOLDS) - 1), b0, b1;

		if (!fr || !(fr & (fr - 1)))
			return -EAGAIN;		/* fewer than two free */
		b0 = (uint32_t)__builtin_ctz(fr);
		b1 = (uint32_t)__builtin_ctz(fr & (fr - 1));
		if (xa_cas_acqrel32(busy, &cur, cur | (1u << b0) | (1u << b1))) {
			*a = &xs->holds[portno * XSEG_PORT_HOLDS + b0];
			*b = &xs->holds[portno * XSEG_PORT_HOLDS + b1];
			return 0;
		}
	}
}

static inline void xseg__holds_put2(struct xseg *xs, uint32_t portno, struct xq_hold *a, struct xq_hold *b)
{
	const struct xq_hold *base = &xs->holds[portno * XSEG_PORT_HOLDS];

	xa_and_acqrel32(&xs->local[portno].holds_busy,
			~((1u << (uint32_t)(a - base)) | (1u << (uint32_t)(b - base))));
}


/* Joined peers. */
int xseg__peer_register(struct xseg *xs);
void xseg__forget_dead_peers(struct xseg *xs);
uint32_t xseg__live_peers(struct xseg *xs);

/* Peer types and this process's driver instance for each. */
int xseg__peer_type_index(struct xseg *xs, const char *name);
/*
 * xseg__peer_type - entry @i of the peer-type table, or NULL past the count
 * validated at join: the one way into the table (its fields are shared and
 * untrusted: read the word with xseg__peer_type_word(), copy the name).
 */
static inline struct xseg_peer_type *xseg__peer_type(struct xseg *xs, uint32_t i)
{
	return i < xs->nr_peer_types ? &xs->types[i] : (struct xseg_peer_type *)0;
}
struct xseg__drv *xseg__driver_join(struct xseg *xs, uint32_t peer_type);

/*
 * xseg__driver_for - this process's instance of the driver of peer type
 * @peer_type (an index read from a port: validated), joining it on first use
 * (xseg__driver_join). NULL if the type is unknown or has no driver in this
 * process. Once joined, it reads only the handle (never the shared table).
 */
static inline struct xseg__drv *xseg__driver_for(struct xseg *xs, uint32_t peer_type)
{
	if (peer_type < xs->nr_peer_types && xs->drv[peer_type].joined == 1)
		return &xs->drv[peer_type];
	return xseg__driver_join(xs, peer_type);
}

#endif
