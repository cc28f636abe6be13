// SPDX-License-Identifier: BSD-2-Clause
// bench/xq/q_boost.cc - boost::lockfree::queue<uint32_t> with a fixed
// capacity of BENCH_CAP in the scenarios. Boost has no batch calls: a batch
// is a loop of push/pop that stops at the first failure.
#include <cstdlib>
#include <boost/lockfree/queue.hpp>
#include "bench.h"

typedef boost::lockfree::queue<uint32_t, boost::lockfree::capacity<BENCH_CAP>> bq;
typedef bq *Q_HANDLE;
typedef uint32_t Q_ELEM;
#define Q_RUN bench_boost_run

static void *q_create(int)
{
	bq *q = new bq();

	if (!q->is_lock_free())
		std::abort();
	return q;
}

static void q_destroy(void *mem) { delete static_cast<bq *>(mem); }
static void q_attach(Q_HANDLE *h, void *mem) { *h = static_cast<bq *>(mem); }
static inline Q_ELEM q_mk(uint32_t x) { return x; }
static inline uint32_t q_val(Q_ELEM e) { return e; }
static inline bool q_enq(Q_HANDLE *h, Q_ELEM e) { return (*h)->push(e); }
static inline bool q_deq(Q_HANDLE *h, Q_ELEM *e) { return (*h)->pop(*e); }

static inline unsigned q_enq_n(Q_HANDLE *h, const Q_ELEM *v, unsigned n)
{
	unsigned i = 0;

	while (i < n && (*h)->push(v[i]))
		i++;
	return i;
}

static inline unsigned q_deq_n(Q_HANDLE *h, Q_ELEM *v, unsigned n)
{
	unsigned i = 0;

	while (i < n && (*h)->pop(v[i]))
		i++;
	return i;
}

// Q_RUN has C linkage from its declaration in bench.h.
#include "scenarios.h"
