/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/xseg_internal.h - the process-local handle and the core's internals.
 * Not installed; names are xseg__*.
 */
#ifndef XSEG_INTERNAL_H
#define XSEG_INTERNAL_H

#include "xseg.h"
#include "xseg_access.h"

/* The hold records of whoever holds the recovery lease: the last three. */
#define XSEG__RECOVERY_HOLDS 3u
#define XSEG_OBSERVER 0xFFFFFFFFu	/* xs->peer_type of a join with no peer type */

/*
 * Queue ids recorded in hold records, so recovery finds the queue a dead
 * peer was using. Computed from port and class numbers, never read from the
 * segment: 0 free requests, 1 + 2p port p's requests, 2 + 2p its replies,
 * 1 + 2 * nr_ports + c buffer class c.
 */
#define XSEG__QID_FREE 0ull
static inline uint64_t xseg__qid_rq(uint32_t p) { return 1 + 2ull * p; }
static inline uint64_t xseg__qid_pq(uint32_t p) { return 2 + 2ull * p; }

/* What this process knows about one port. Geometry is copied and validated. */
struct xseg__port_local {
	struct xq rq;			/* request queue */
	struct xq pq;			/* reply queue */
	uint32_t bound;			/* bound by this process */
	uint32_t gen;			/* our bind generation */
	uint32_t holds_busy;		/* bitmap of this port's holds in use (atomic) */
	uint32_t timing;		/* bound without XSEG_PORT_NO_TIMING: ts_submit, histogram */
	uint32_t service_timing;	/* bound with XSEG_PORT_SERVICE_TIMING (and timing) */
#if defined(XSEG_DOMAIN_KERNEL)
	/* The wait prepared on this port (kernel: one waiting thread per port, signal.c). */
	struct xseg_armed kwait;
	uint32_t kprepared;
#endif
};

/* A driver instance of this process, for one peer type of the segment. */
struct xseg__drv {
	const struct xseg_driver_ops *ops;
	void *priv;
	int joined;			/* 1 joined, -errno if join failed */
};

struct xseg {
	void *base;
	uint64_t size;
	struct xseg_header *hdr;
	const struct xseg_segtype_ops *segtype;
	char segname[XSEG_NAME_LEN];
	/* A validated copy of the config and region table: the only values used. */
	struct xseg_config cfg;
	uint32_t nr_ports, dynports, nr_requests, queue_cap;
	uint32_t nr_indices, nr_holds, nr_classes;
	struct xseg_buf_class cls[XSEG_MAX_BUF_CLASSES];
	struct xseg_port *ports;
	struct xseg_request *reqs;
	struct xq_hold *holds;
	struct xq freeq;
	struct xq clsq[XSEG_MAX_BUF_CLASSES];
	struct xq_track track;
	uint64_t extra_off, extra_size;
	struct xseg__port_local *local;
	/* Who we are. */
	uint32_t pid, uid, gid;
	uint64_t start;
	int peer_slot;			/* our entry in hdr->peers, or -1 */
	uint32_t peer_type;		/* our peer type's index in the peer-type table, or XSEG_OBSERVER */
	/* The peer-type table (types_off) and its entries, validated at join. */
	struct xseg_peer_type *types;
	uint32_t nr_peer_types;
	/* This process's driver instance per peer type: nr_peer_types entries, from join to leave. */
	struct xseg__drv *drv;
	xseg_wakeup_fn wakeup;
	void *wakeup_arg;
	uint32_t spin_us;
	uint32_t recovery_hold_busy;	/* unused (kept for the handle's layout) */
	/* The quotas our binds start with: quota_types= of our peer type, else the segment's. */
	uint32_t bind_quota_requests;
	uint64_t bind_quota_buffer;
	uint32_t max_hops;		/* the config's max_hops (1..XSEG_PATH_MAX) */
};

/* xseg__queue - the queue named by a qid, or NULL. (request.c) */
struct xq *xseg__queue(struct xseg *xs, uint64_t qid);
static inline uint64_t xseg__qid_cls(const struct xseg *xs, uint32_t c)
{
	return 1 + 2ull * xs->nr_ports + c;
}

/* quota.c: per-port quotas (kinds of usage) */
#define XSEG__Q_REQUESTS	0
#define XSEG__Q_BUFFER		1	/* in pages */
void xseg__quota_bind(struct xseg *xs, uint32_t p, uint32_t gen);
void xseg__quota_defaults(struct xseg *xs, const char *type);
int xseg__quota_charge(struct xseg *xs, uint32_t p, int kind, uint64_t n);
void xseg__quota_release(struct xseg *xs, uint32_t p, uint32_t gen, int kind, uint64_t n);
#include "spec_quota.h"

/* layout.c */
int xseg__layout(const struct xseg_config *cfg, struct xseg_header *h, uint64_t *size);
int xseg__adopt(struct xseg *xs, char *err, size_t errlen);
void xseg__format(struct xseg *xs, const struct xseg_header *proto);
void xseg__format_request(struct xseg_request *r);
/* grow.c: allocate a fresh growable segment's live ranges (not the reserve). 0 or -ENOSPC. */
int xseg__populate_live(void *base, const struct xseg_header *h, uint32_t live);

/* registry.c (built-ins: sys/<domain>/builtins.h) and the domain's loader (sys/<domain>/loader.c) */
const struct xseg_driver_ops *xseg__load_driver(const char *name);
void xseg__drivers_destroy(const struct xseg_seg_ident *id);
/* segment.c: see xseg_seg_ident() */
uint64_t xseg__seg_id(const struct xseg_header *h);

/* hold.c: owners, hold records, joined peers, peer types */
#include "hold.h"

/* request.c */
int xseg__req_index(struct xseg *xs, const struct xseg_request *req);
uint32_t xseg__dequeue_life(struct xseg *xs, struct xq *q, uint64_t qid, struct xq_hold *hold,
			    uint32_t life);
void xseg__free_request(struct xseg *xs, uint32_t r, struct xq_hold *hold_r, struct xq_hold *hold_c);
void xseg__free_chunk(struct xseg *xs, uint32_t chunk, struct xq_hold *hold);
int xseg__deliver(struct xseg *xs, uint32_t r, struct xq_hold *hold_r, struct xq_hold *hold_c);
bool xseg__chunk_referenced(struct xseg *xs, uint32_t chunk);
int xseg__chunk_class(struct xseg *xs, uint32_t chunk);

/* xseg/segtype_heap.c */
extern const struct xseg_segtype_ops xseg_segtype_heap;
void xseg__heap_cleanup(void);

/* recover.c */
/* Settle @portno if its owner is dead (a bind found it so). 0 or -EALREADY. */
int xseg__recover_port(struct xseg *xs, uint32_t portno, struct xseg_recovery_stats *st);
/* Settle @portno, which this process marked RECOVERING to leave it. */
int xseg__leave_settle(struct xseg *xs, uint32_t portno);
/* Reset @portno's queues if their counters are corrupt (we hold it BINDING). How many. */
int xseg__reset_queues(struct xseg *xs, uint32_t portno);

/*
 * Growth (grow.c). The live words are the header's, so read each time and
 * clamped to the reserve the handle checked against the mapping: a hostile
 * value can only make a peer park or skip indices, never reach past the
 * reserve. xs->nr_requests and xs->cls[c].count are the reserved maxima.
 */
static inline uint32_t xseg__live_requests(const struct xseg *xs)
{
	uint64_t n = xa_load_acq64(&xs->hdr->live_requests);

	return n < xs->nr_requests ? (uint32_t)n : xs->nr_requests;
}

static inline uint32_t xseg__live_chunks(const struct xseg *xs, uint32_t c)
{
	uint64_t n = xa_load_acq64(&xs->hdr->live_chunks[c]);

	return n < xs->cls[c].count ? (uint32_t)n : xs->cls[c].count;
}

/* Is request @r (chunk slot @s of class @c) retiring: to be parked, not freed? */
static inline bool xseg__req_retiring(const struct xseg *xs, uint32_t r)
{
	uint64_t t = xa_load_rlx64(&xs->hdr->retire_requests);

	return t && r >= t;
}

static inline bool xseg__chunk_retiring(const struct xseg *xs, uint32_t c, uint32_t s)
{
	uint64_t t = xa_load_rlx64(&xs->hdr->retire_chunks[c]);

	return t && s >= t;
}

/* recover.c, for grow.c: the recovery lease and the settling of a dead holder's work. */
int xseg__lease_take(struct xseg *xs);
void xseg__lease_drop(struct xseg *xs);
void xseg__settle_leftovers(struct xseg *xs, struct xseg_recovery_stats *st);
struct xq_hold *xseg__rhold(struct xseg *xs, uint32_t k);

/* Overflow-safe helpers. */
static inline bool xseg__add_ok(uint64_t a, uint64_t b, uint64_t *r)
{
	return !__builtin_add_overflow(a, b, r);
}

static inline bool xseg__mul_ok(uint64_t a, uint64_t b, uint64_t *r)
{
	return !__builtin_mul_overflow(a, b, r);
}

/* Is [off, off + len) inside a segment of @size bytes? */
static inline bool xseg__range_ok(uint64_t size, uint64_t off, uint64_t len)
{
	uint64_t end;

	return xseg__add_ok(off, len, &end) && end <= size;
}

static inline uint64_t xseg__align(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static inline uint64_t xseg__pow2_at_least(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

#endif
