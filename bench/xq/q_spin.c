/* SPDX-License-Identifier: BSD-2-Clause */
/* bench/xq/q_spin.c - the spinlock queue (spinq.h) in the scenarios. */
#include <stdlib.h>
#include "spinq.h"

typedef struct spinq *Q_HANDLE;
typedef uint32_t Q_ELEM;
#define Q_RUN bench_spin_run

static void *q_create(int mode)
{
	size_t size = sizeof(struct spinq) + BENCH_CAP * sizeof(uint32_t);
	struct spinq *q = aligned_alloc(64, (size + 63) & ~(size_t)63);

	(void)mode;
	if (!q)
		abort();
	atomic_init(&q->lock, 0);
	q->head = q->tail = 0;
	q->cap = BENCH_CAP;
	return q;
}

static void q_destroy(void *mem) { free(mem); }
static void q_attach(Q_HANDLE *h, void *mem) { *h = mem; }
static inline Q_ELEM q_mk(uint32_t x) { return x; }
static inline uint32_t q_val(Q_ELEM e) { return e; }
static inline bool q_enq(Q_HANDLE *h, Q_ELEM e) { return spinq_enq(*h, &e, 1); }
static inline bool q_deq(Q_HANDLE *h, Q_ELEM *e) { return spinq_deq(*h, e, 1); }

static inline unsigned q_enq_n(Q_HANDLE *h, const Q_ELEM *v, unsigned n)
{
	return spinq_enq(*h, v, n);
}

static inline unsigned q_deq_n(Q_HANDLE *h, Q_ELEM *v, unsigned n)
{
	return spinq_deq(*h, v, n);
}

#include "scenarios.h"
