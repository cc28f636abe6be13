/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench/xq/q_xq.c - xq in the scenarios: the inline forms of xq_inline.h, as
 * rte_ring's are inline in its headers (xq/xq.c, the out-of-line forms and
 * the rest, is built with the library's flags).
 */
#include <stdlib.h>
#include "xq/xq_inline.h"
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
static inline bool q_enq(Q_HANDLE *h, Q_ELEM e) { return xq_enqueue_inline(h, e); }

static inline bool q_deq(Q_HANDLE *h, Q_ELEM *e)
{
	*e = xq_dequeue_inline(h);
	return *e != XQ_NONE;
}

static inline unsigned q_enq_n(Q_HANDLE *h, const Q_ELEM *v, unsigned n)
{
	return xq_enqueue_batch_inline(h, v, n, true);
}

static inline unsigned q_deq_n(Q_HANDLE *h, Q_ELEM *v, unsigned n)
{
	return xq_dequeue_batch_inline(h, v, n, true);
}

#include "scenarios.h"
