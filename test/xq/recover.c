/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: recovery of tracked operations, one interleaving at a time,
 * single-threaded: a participant's steps are played by hand where the test
 * needs it to stop between two of them. The regression case is the old
 * "known limit": a slow consumer records DEQ for an index that a reclaim
 * takes first, dies before clearing its hold, and its slot moves a full lap
 * before recovery reads it; the index must not be given back a second time.
 * (test/xq/model.c checks every interleaving of a small configuration.)
 */
#include "xtest.h"
#include "xq/xq.h"

#define CAP   8u
#define NIDX  4u
#define NH    3u	/* 0: the slow consumer, 1: the reclaimer, 2: the recoverer */

static uint64_t gen[NIDX];
static struct xq_hold holds[NH];
static struct xq_track tr = { .gen = gen, .nindices = NIDX, .holds = holds, .nholds = NH };

static void count_fn(void *arg, xq_index idx)
{
	uint32_t *seen = arg;

	CHECKF(idx < NIDX, "index %u out of range", idx);
	seen[idx]++;
}

/* Every index is in the queue exactly once. */
static void audit(struct xq *h)
{
	uint32_t seen[NIDX] = { 0 };

	CHECK(xq_scan(h, count_fn, seen) == NIDX);
	for (uint32_t i = 0; i < NIDX; i++)
		CHECKF(seen[i] == 1, "index %u is in the queue %u times", i, seen[i]);
}

static void test_reclaimed_then_lapped_is_not_given_twice(void)
{
	size_t sz = xq_size(CAP);
	void *mem = calloc(1, sz);
	struct xq_layout *q = mem;
	struct xq h;
	uint64_t p, nslots;
	xq_index x;

	CHECK(mem);
	CHECK(xq_init_seq(mem, sz, CAP, NIDX, 0) == 0);
	CHECK(xq_attach(&h, mem, sz, NIDX) == 0);
	nslots = h.mask + 1;
	/* The consumer takes position p (index 0) and is preempted. */
	p = __atomic_fetch_add(&q->head, 1, __ATOMIC_ACQ_REL);
	/* A reclaim (lag 0) takes the index first and queues it again. */
	CHECK(xq_reclaim_stranded(&h, &tr, 0, &holds[1]) == 0);
	CHECK(xq_enqueue_tracked(&h, 1, &tr, &holds[1]));
	/* The consumer had read the slot before the reclaim: it records DEQ for
	 * index 0 at p (with the claim count it read, 0), loses, and dies
	 * before it clears its hold. */
	holds[0].qid = 1;
	holds[0].pos = p;
	holds[0].index = 0;
	holds[0].state = XQ_HOLD_DEQ;
	/* Traffic moves the slot of p a full lap on. */
	while (__atomic_load_n(&q->tail, __ATOMIC_ACQUIRE) - p <= nslots + 1) {
		x = xq_dequeue_tracked(&h, 1, &tr, &holds[2]);
		CHECK(x != XQ_NONE);
		CHECK(xq_enqueue_tracked(&h, 1, &tr, &holds[2]));
	}
	/* Recovery must not give index 0 back: it is in the queue. */
	CHECK(xq_recover_hold(&h, &tr, &holds[0], &holds[2], 2) == XQ_REC_QUEUED);
	CHECK(xq_hold_state(&holds[0], NULL) == XQ_HOLD_NONE);
	CHECK(xq_hold_state(&holds[2], NULL) == XQ_HOLD_NONE);
	audit(&h);
	free(mem);
}

static void test_dead_holder_given_once(void)
{
	size_t sz = xq_size(CAP);
	void *mem = calloc(1, sz);
	struct xq h;
	xq_index x;

	CHECK(mem);
	memset(gen, 0, sizeof(gen));
	memset(holds, 0, sizeof(holds));
	CHECK(xq_init_seq(mem, sz, CAP, NIDX, 0) == 0);
	CHECK(xq_attach(&h, mem, sz, NIDX) == 0);
	/* Holder 0 dies holding an index; recovery gives it back once. */
	x = xq_dequeue_tracked(&h, 1, &tr, &holds[0]);
	CHECK(x == 0);
	CHECK(xq_recover_hold(&h, &tr, &holds[0], &holds[2], 2) == XQ_REC_GIVEN);
	CHECK(xq_recover_hold(&h, &tr, &holds[0], &holds[2], 2) == XQ_REC_NOTHING);
	CHECK(xq_enqueue_tracked(&h, 1, &tr, &holds[2]));
	/* A stranded index (its consumer died right after its FAA) is reclaimed
	 * once, and the queue still hands out every index. */
	__atomic_fetch_add(&((struct xq_layout *)mem)->head, 1, __ATOMIC_ACQ_REL);
	CHECK(xq_reclaim_stranded(&h, &tr, 0, &holds[1]) == 1);
	CHECK(xq_reclaim_stranded(&h, &tr, 0, &holds[2]) == XQ_NONE);
	CHECK(xq_enqueue_tracked(&h, 1, &tr, &holds[1]));
	audit(&h);
	free(mem);
}

int main(void)
{
	xt_watchdog(60);
	RUN(test_reclaimed_then_lapped_is_not_given_twice);
	RUN(test_dead_holder_given_once);
	return 0;
}
