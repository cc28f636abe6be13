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
/* 1 if this process has bound @portno and it is still ours. */
int xseg__owned(struct xseg *xs, uint32_t portno);

/* Hold records: one (or two, both or neither) of @portno's, -EAGAIN when all are busy. */
int xseg__hold_get(struct xseg *xs, uint32_t portno, struct xq_hold **hold);
void xseg__hold_put(struct xseg *xs, uint32_t portno, struct xq_hold *hold);
int xseg__holds_get2(struct xseg *xs, uint32_t portno, struct xq_hold **a, struct xq_hold **b);
void xseg__holds_put2(struct xseg *xs, uint32_t portno, struct xq_hold *a, struct xq_hold *b);

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
struct xseg__drv *xseg__driver_for(struct xseg *xs, uint32_t peer_type);

#endif
