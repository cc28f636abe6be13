/* SPDX-License-Identifier: BSD-2-Clause */
/* bench/xq/q_xq.c - xq (xq/xq.c, built with the library's flags) in the scenarios. */
#include <stdlib.h>
#include "xq/xq.h"
#include "bench.h"

typedef struct xq Q_HANDLE;
typedef uint32_t Q_ELEM;
#define Q_RUN bench_xq_run

static void *q_create(int mode)
{
	size_t size = xq_size(BENCH_CAP);
	void *mem = aligned_alloc(64, (size + 63) & ~(size_t)63);

	(void)mode;
	if (!mem || xq_init_empty(mem, size, BENCH_CAP) != 0)
		abort();
	return mem;
}

static void q_destroy(void *mem) { free(mem); }

/* Every participant builds its own handle, as xq.h asks. */
static void q_attach(Q_HANDLE *h, void *mem)
{
	if (xq_attach(h, mem, xq_size(BENCH_CAP), XQ_INDEX_MAX + 1u) != 0)
		abort();
}

static inline Q_ELEM q_mk(uint32_t x) { return x; }
static inline uint32_t q_val(Q_ELEM e) { return e; }
static inline bool q_enq(Q_HANDLE *h, Q_ELEM e) { return xq_enqueue(h, e); }

static inline bool q_deq(Q_HANDLE *h, Q_ELEM *e)
{
	*e = xq_dequeue(h);
	return *e != XQ_NONE;
}

static inline unsigned q_enq_n(Q_HANDLE *h, const Q_ELEM *v, unsigned n)
{
	return xq_enqueue_batch(h, v, n, true);
}

static inline unsigned q_deq_n(Q_HANDLE *h, Q_ELEM *v, unsigned n)
{
	return xq_dequeue_batch(h, v, n, true);
}

#include "scenarios.h"
