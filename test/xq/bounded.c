/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: a bounded queue is never full. 256 indices circulate between
 * two queues of capacity 256 (free lists of xseg look like this), with three
 * threads each dequeuing from one queue and enqueuing into the other; in
 * bounded mode (xq_set_bounded) an enqueue must never report full, and at
 * the end every index is in one of the queues exactly once. Positions that
 * producers abandon make tail - head overcount, which in the general mode
 * can refuse the last index (see xq.h); this is the regression test for it.
 */
#include <pthread.h>
#include "xtest.h"
#include "xq/xq.h"

#define N 256u

static struct xq qa, qb;
static uint64_t full_errors;
static long moves;

static void *mover(void *arg)
{
	(void)arg;
	for (long i = 0; i < moves;) {
		xq_index x = xq_dequeue(&qa);
		struct xq *to = &qb;

		if (x == XQ_NONE) {
			x = xq_dequeue(&qb);
			to = &qa;
			if (x == XQ_NONE)
				continue;
		}
		if (!xq_enqueue(to, x)) {
			__atomic_fetch_add(&full_errors, 1, __ATOMIC_RELAXED);
			/* keep the index: put it back where it came from */
			while (!xq_enqueue(to == &qa ? &qb : &qa, x))
				;
		}
		i++;
	}
	return NULL;
}

static void count(void *arg, xq_index idx)
{
	uint8_t *seen = arg;

	CHECK(idx < N);
	seen[idx]++;
}

static void test_bounded_never_full(void)
{
	size_t sz = xq_size(N);

	full_errors = 0;
	void *ma = calloc(1, sz), *mb = calloc(1, sz);
	uint8_t seen[N] = { 0 };
	pthread_t t[3];

	CHECK(xq_init_seq(ma, sz, N, N, 0) == 0);
	CHECK(xq_init_empty(mb, sz, N) == 0);
	CHECK(xq_attach(&qa, ma, sz, N) == 0 && xq_attach(&qb, mb, sz, N) == 0);
	xq_set_bounded(&qa);
	xq_set_bounded(&qb);
	for (int i = 0; i < 3; i++)
		CHECK(pthread_create(&t[i], NULL, mover, NULL) == 0);
	for (int i = 0; i < 3; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
	CHECKF(full_errors == 0, "a bounded queue reported full %" PRIu64 " times", full_errors);
	xq_scan(&qa, count, seen);
	xq_scan(&qb, count, seen);
	for (uint32_t i = 0; i < N; i++)
		CHECKF(seen[i] == 1, "index %u is in the queues %u times", i, seen[i]);
	free(ma);
	free(mb);
}

int main(void)
{
	moves = xt_env_long("XSEG_STRESS_ITEMS", 2000000);
	xt_watchdog(120);
	for (int i = 0; i < 20; i++)
		RUN(test_bounded_never_full);
	return 0;
}
