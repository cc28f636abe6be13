/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench/xq/spinq.h - the baseline: a ring of uint32 indices with head and
 * tail, every operation under one test-and-test-and-set spinlock, like the
 * classic xseg queue. A batch takes the lock once.
 */
#ifndef BENCH_XQ_SPINQ_H
#define BENCH_XQ_SPINQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "bench.h"

struct spinq {
	atomic_uint lock;	/* 0 free, 1 held */
	uint32_t head;		/* next position to dequeue (free-running) */
	uint32_t tail;		/* next position to enqueue (free-running) */
	uint32_t cap;		/* a power of two */
	uint32_t pad[12];	/* the ring starts on the next cache line */
	uint32_t ring[];
};

static inline void spinq_lock(struct spinq *q)
{
	for (;;) {
		while (atomic_load_explicit(&q->lock, memory_order_relaxed))
			bench_relax();
		if (!atomic_exchange_explicit(&q->lock, 1, memory_order_acquire))
			return;
	}
}

static inline void spinq_unlock(struct spinq *q)
{
	atomic_store_explicit(&q->lock, 0, memory_order_release);
}

/* Enqueue v[0..n-1] if all fit; returns n or 0. */
static inline unsigned spinq_enq(struct spinq *q, const uint32_t *v, unsigned n)
{
	unsigned i;

	spinq_lock(q);
	if (q->cap - (q->tail - q->head) < n) {
		spinq_unlock(q);
		return 0;
	}
	for (i = 0; i < n; i++)
		q->ring[(q->tail + i) & (q->cap - 1)] = v[i];
	q->tail += n;
	spinq_unlock(q);
	return n;
}

/* Dequeue n indices into v if that many are there; returns n or 0. */
static inline unsigned spinq_deq(struct spinq *q, uint32_t *v, unsigned n)
{
	unsigned i;

	spinq_lock(q);
	if (q->tail - q->head < n) {
		spinq_unlock(q);
		return 0;
	}
	for (i = 0; i < n; i++)
		v[i] = q->ring[(q->head + i) & (q->cap - 1)];
	q->head += n;
	spinq_unlock(q);
	return n;
}

#endif
