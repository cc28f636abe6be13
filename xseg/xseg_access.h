/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/xseg_access.h - accessors for the shared fields of the layout
 * (xseg_layout.h) that carry ownership and state between peers: a port's
 * owner word, a request's life and holder, the header's flags, peer-type
 * words and joined-peer entries, the statistics counters.
 *
 * The core (xseg/) and the Node addon read and change these words through
 * these names only, so each word has one ordering, stated here once. Other
 * shared fields use the xa_* operations of sys/domain.h directly. Not
 * installed: the layout is the contract, these are how our code keeps it.
 */
#ifndef XSEG_ACCESS_H
#define XSEG_ACCESS_H

#include "xseg_layout.h"

/* ---------------------------------------------------------- port owner */

/* acquire: a BOUND word comes with the owner details stored before it. */
static inline uint64_t xseg__owner(const struct xseg_port *p)
{
	return xa_load_acq64(&p->owner);
}

/* The only way a port changes hands: CAS from *expected (updated on failure). */
static inline bool xseg__owner_cas(struct xseg_port *p, uint64_t *expected, uint64_t to)
{
	return xa_cas_acqrel64(&p->owner, expected, to);
}

/* release: the last step of settling a port (it becomes FREE). */
static inline void xseg__owner_release(struct xseg_port *p, uint64_t to)
{
	xa_store_rel64(&p->owner, to);
}

/* ------------------------------------------------------------ requests */

/* The request's life (XS_FREE ... XS_RECEIVED). */
static inline uint32_t xseg__life(const struct xseg_request *req)
{
	return (xa_load_acq32(&req->state) >> XS_LIFE_SHIFT) & 0xFF;
}

/*
 * Set the life, keeping the result bits. Only the request's holder calls it
 * (relaxed read of its own word); release: whoever reads the new life sees
 * the fields written before it.
 */
static inline void xseg__set_life(struct xseg_request *req, uint32_t life)
{
	uint32_t st = xa_load_rlx32(&req->state);

	st = (st & ~(0xFFu << XS_LIFE_SHIFT)) | (life << XS_LIFE_SHIFT);
	xa_store_rel32(&req->state, st);
}

/* The whole state word: result bits and life. */
static inline uint32_t xseg__req_state(const struct xseg_request *req)
{
	return xa_load_acq32(&req->state);
}

/* Mark the result failed (and not served). */
static inline void xseg__req_fail(struct xseg_request *req)
{
	xa_or_acqrel32(&req->state, XS_FAILED);
	xa_and_acqrel32(&req->state, ~XS_SERVED);
}

/* Replace the result bits (XS_SERVED, XS_FAILED) with @bits. */
static inline void xseg__req_result(struct xseg_request *req, uint32_t bits)
{
	xa_and_acqrel32(&req->state, ~(uint32_t)(XS_SERVED | XS_FAILED));
	xa_or_acqrel32(&req->state, bits);
}

/* release: recovery that reads the holder sees the fields set before it. */
static inline void xseg__set_holder(struct xseg_request *req, uint64_t h)
{
	xa_store_rel64(&req->holder, h);
}

static inline uint64_t xseg__holder(const struct xseg_request *req)
{
	return xa_load_acq64(&req->holder);
}

/* -------------------------------------------------------------- header */

/* XSEG_F_* (acquire: a flag comes with what was done before it was set). */
static inline uint64_t xseg__hdr_flags(const struct xseg_header *h)
{
	return xa_load_acq64(&h->flags);
}

static inline void xseg__hdr_set_flag(struct xseg_header *h, uint64_t flag)
{
	xa_or_acqrel64(&h->flags, flag);
}

/* Peer-type words: 0 free, 1 being named, 2 named (the name is readable). */
#define XSEG__PT_FREE	0ull
#define XSEG__PT_NAMING	1ull
#define XSEG__PT_NAMED	2ull

static inline uint64_t xseg__peer_type_word(const struct xseg_peer_type *t)
{
	return xa_load_acq64(&t->word);
}

static inline bool xseg__peer_type_named(const struct xseg_peer_type *t)
{
	return xseg__peer_type_word(t) == XSEG__PT_NAMED;
}

/* ------------------------------------------------------------ counters */

/* Statistics: relaxed, they order nothing. */
static inline void xseg__count(uint64_t *counter)
{
	xa_add_rlx64(counter, 1);
}

static inline uint64_t xseg__counter(const uint64_t *counter)
{
	return xa_load_rlx64(counter);
}

#endif
