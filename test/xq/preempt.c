/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: no false empties, false fulls or false counts under
 * preemption. A closed set of N indices circulates through one queue: each
 * of T threads (more threads than CPUs, so threads are preempted mid-
 * operation) dequeues an index and enqueues it again. A thread holds at most
 * one index outside the queue, so at every moment the queue holds at least
 * N - T of them; a dequeue that returns XQ_NONE, an enqueue that reports
 * full (N is half the capacity) or an xq_count() outside [N - T, capacity]
 * is counted, and every count must be zero. At the end every index is in
 * the queue exactly once. A fixed number of operations (XSEG_PREEMPT_OPS per
 * thread), not a duration; the counts are printed.
 */
#include <pthread.h>
#include <sched.h>
#include "xtest.h"
#include "xq/xq.h"

#define T    8u		/* threads: four per CPU on the 2-CPU CI machines */
#define CAP  64u
#define N    (CAP / 2)	/* >= T + 1, so the queue is never empty */

static struct xq q;
static long ops;
static uint64_t ready;
static uint64_t false_empty, false_full, bad_count;

static void *mover(void *arg)
{
	uint64_t rnd = 0x9E3779B97F4A7C15ull * ((uintptr_t)arg + 1);

	__atomic_fetch_add(&ready, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(&ready, __ATOMIC_ACQUIRE) < T)
		sched_yield();
	for (long i = 0; i < ops; i++) {
		xq_index x = xq_dequeue(&q);
		uint32_t c;

		if (x == XQ_NONE) {
			/* At least N - T >= 1 indices were in the queue throughout. */
			__atomic_fetch_add(&false_empty, 1, __ATOMIC_RELAXED);
			continue;
		}
		if ((xt_rand(&rnd) & 15) == 0) {
			c = xq_count(&q);
			if (c < N - T || c > CAP)
				__atomic_fetch_add(&bad_count, 1, __ATOMIC_RELAXED);
		}
		while (!xq_enqueue(&q, x))	/* at most N < CAP indices exist */
			__atomic_fetch_add(&false_full, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void count_fn(void *arg, xq_index idx)
{
	uint8_t *seen = arg;

	CHECKF(idx < N, "index %u was never enqueued", idx);
	seen[idx]++;
}

static void test_no_false_empty_or_full(void)
{
	size_t sz = xq_size(CAP);
	void *mem = calloc(1, sz);
	uint8_t seen[N] = { 0 };
	pthread_t t[T];

	CHECK(mem);
	ops = xt_env_long("XSEG_PREEMPT_OPS", 4000000);
	CHECK(xq_init_seq(mem, sz, CAP, N, 0) == 0);
	CHECK(xq_attach(&q, mem, sz, N) == 0);	/* the general mode: full is checked */
	for (uintptr_t i = 0; i < T; i++)
		CHECK(pthread_create(&t[i], NULL, mover, (void *)i) == 0);
	for (uint32_t i = 0; i < T; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
	printf("%u threads x %ld operations: %" PRIu64 " false empties, %" PRIu64
	       " false fulls, %" PRIu64 " counts outside [%u, %u]\n", T, ops,
	       false_empty, false_full, bad_count, N - T, CAP);
	CHECK(xq_scan(&q, count_fn, seen) == N);
	for (uint32_t i = 0; i < N; i++)
		CHECKF(seen[i] == 1, "index %u is in the queue %u times", i, seen[i]);
	CHECK(xq_count(&q) == N);
	CHECK(false_empty == 0);
	CHECK(false_full == 0);
	CHECK(bad_count == 0);
	free(mem);
}

int main(void)
{
	xt_watchdog(240);
	RUN(test_no_false_empty_or_full);
	return 0;
}
