/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench/xq/q_rte.c - DPDK rte_ring in the scenarios, on a plain aligned
 * buffer (rte_ring_init; no EAL). Mode 0: MP/MC, mode 1: SP/SC. Capacity is
 * exactly BENCH_CAP (RING_F_EXACT_SZ). Batches use the bulk (all-or-nothing)
 * functions; the generic calls dispatch on the mode chosen at init.
 */
#include <stdlib.h>
#include <rte_ring.h>
#include "bench.h"

typedef struct rte_ring *Q_HANDLE;
typedef void *Q_ELEM;
#define Q_RUN bench_rte_run

static void *q_create(int mode)
{
	unsigned flags = RING_F_EXACT_SZ | (mode ? RING_F_SP_ENQ | RING_F_SC_DEQ : 0);
	ssize_t size = rte_ring_get_memsize(2 * BENCH_CAP);	/* EXACT_SZ: 2x slots */
	struct rte_ring *r;

	if (size < 0)
		abort();
	r = aligned_alloc(RTE_CACHE_LINE_SIZE, ((size_t)size + 63) & ~(size_t)63);
	if (!r || rte_ring_init(r, "bench", BENCH_CAP, flags) != 0 ||
	    rte_ring_get_capacity(r) != BENCH_CAP)
		abort();
	return r;
}

static void q_destroy(void *mem) { free(mem); }
static void q_attach(Q_HANDLE *h, void *mem) { *h = mem; }
static inline Q_ELEM q_mk(uint32_t x) { return (void *)(uintptr_t)x; }
static inline uint32_t q_val(Q_ELEM e) { return (uint32_t)(uintptr_t)e; }
static inline bool q_enq(Q_HANDLE *h, Q_ELEM e) { return rte_ring_enqueue(*h, e) == 0; }
static inline bool q_deq(Q_HANDLE *h, Q_ELEM *e) { return rte_ring_dequeue(*h, e) == 0; }

static inline unsigned q_enq_n(Q_HANDLE *h, const Q_ELEM *v, unsigned n)
{
	return rte_ring_enqueue_bulk(*h, v, n, NULL);
}

static inline unsigned q_deq_n(Q_HANDLE *h, Q_ELEM *v, unsigned n)
{
	return rte_ring_dequeue_bulk(*h, v, n, NULL);
}

#include "scenarios.h"
