/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test/xq/stress.h - N producers and M consumers over one queue in shared
 * memory, started together on a barrier, as threads or as processes. Every
 * producer sends (id, 0..n-1); every consumer checks that each producer's
 * sequence reaches it in increasing order, and a shared bitmap checks that
 * every item arrives exactly once.
 */
#include <pthread.h>
#include <sched.h>
#include "xtest.h"
#include "xq/xq.h"

#define SEQ_BITS 22u
#define MAXP 8

struct stress {
	/* control, one cache line each */
	uint64_t ready __attribute__((aligned(64)));
	uint64_t received __attribute__((aligned(64)));
	uint64_t errors __attribute__((aligned(64)));
	uint64_t producers_done __attribute__((aligned(64)));
	uint32_t nprod, ncons, items, batch;
	uint64_t *seen;		/* bitmap of nprod << SEQ_BITS bits */
	void *qmem;
	size_t qsize;
};

static void barrier_wait(struct stress *s)
{
	__atomic_fetch_add(&s->ready, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE) < s->nprod + s->ncons)
		sched_yield();
}

static void producer(struct stress *s, uint32_t id)
{
	struct xq h;
	uint64_t rnd = 0x9E3779B97F4A7C15ull * (id + 1);
	uint32_t seq = 0;

	CHECK(xq_attach(&h, s->qmem, s->qsize, XQ_INDEX_MAX + 1u) == 0);
	barrier_wait(s);
	while (seq < s->items) {
		if (s->batch) {
			xq_index v[16];
			uint32_t n = 1 + (uint32_t)(xt_rand(&rnd) % s->batch), k;

			if (n > s->items - seq)
				n = s->items - seq;
			for (k = 0; k < n; k++)
				v[k] = (id << SEQ_BITS) | (seq + k);
			seq += xq_enqueue_batch(&h, v, n, xt_rand(&rnd) & 1);
		} else if (xq_enqueue(&h, (id << SEQ_BITS) | seq)) {
			seq++;
			continue;
		}
		sched_yield();	/* full: let a consumer run (2 cores) */
	}
	__atomic_fetch_add(&s->producers_done, 1, __ATOMIC_ACQ_REL);
}

static void consume(struct stress *s, uint32_t *last, xq_index x)
{
	uint32_t p = x >> SEQ_BITS, q = x & ((1u << SEQ_BITS) - 1);
	uint64_t bit = ((uint64_t)p << SEQ_BITS) | q;

	if (p >= s->nprod || q >= s->items) {
		fprintf(stderr, "bogus item %#x\n", x);
		__atomic_fetch_add(&s->errors, 1, __ATOMIC_RELAXED);
		return;
	}
	if (last[p] != UINT32_MAX && q <= last[p]) {
		fprintf(stderr, "producer %u: %u after %u (order)\n", p, q, last[p]);
		__atomic_fetch_add(&s->errors, 1, __ATOMIC_RELAXED);
	}
	last[p] = q;
	if (__atomic_fetch_or(&s->seen[bit / 64], 1ull << (bit % 64), __ATOMIC_RELAXED) &
	    (1ull << (bit % 64))) {
		fprintf(stderr, "producer %u item %u twice (duplicate)\n", p, q);
		__atomic_fetch_add(&s->errors, 1, __ATOMIC_RELAXED);
	}
}

static void consumer(struct stress *s, uint32_t id)
{
	struct xq h;
	uint32_t last[MAXP];
	uint64_t total = (uint64_t)s->nprod * s->items;
	uint64_t rnd = 0xD1B54A32D192ED03ull * (id + 7);

	for (int i = 0; i < MAXP; i++)
		last[i] = UINT32_MAX;
	CHECK(xq_attach(&h, s->qmem, s->qsize, XQ_INDEX_MAX + 1u) == 0);
	barrier_wait(s);
	while (__atomic_load_n(&s->received, __ATOMIC_ACQUIRE) < total) {
		xq_index v[16];
		uint32_t n;

		if (s->batch) {
			n = xq_dequeue_batch(&h, v, 1 + (uint32_t)(xt_rand(&rnd) % s->batch),
					     xt_rand(&rnd) & 1);
		} else {
			v[0] = xq_dequeue(&h);
			n = v[0] != XQ_NONE;
		}
		if (!n) {
			/* Empty after every producer finished: nothing more can come. */
			if (__atomic_load_n(&s->producers_done, __ATOMIC_ACQUIRE) == s->nprod) {
				v[0] = xq_dequeue(&h);
				if (v[0] == XQ_NONE)
					break;
				n = 1;
			} else {
				sched_yield();
				continue;
			}
		}
		for (uint32_t k = 0; k < n; k++)
			consume(s, last, v[k]);
		__atomic_fetch_add(&s->received, n, __ATOMIC_ACQ_REL);
	}
}

struct targ { struct stress *s; uint32_t id; bool prod; };

static void *thread_main(void *a)
{
	struct targ *t = a;

	if (t->prod)
		producer(t->s, t->id);
	else
		consumer(t->s, t->id);
	return NULL;
}

/* One run: returns after checking completeness; fails the test otherwise. */
static void stress_run(bool procs, uint32_t nprod, uint32_t ncons, uint32_t items,
		       uint32_t cap, uint32_t batch)
{
	size_t bits = (size_t)nprod << SEQ_BITS;
	struct stress *s = xt_shared(sizeof(*s));
	struct targ t[2 * MAXP];
	pthread_t th[2 * MAXP];
	pid_t pid[2 * MAXP];
	uint32_t n = nprod + ncons, i;
	struct xq h;

	CHECK(nprod <= MAXP && ncons <= MAXP && items < (1u << SEQ_BITS));
	s->nprod = nprod; s->ncons = ncons; s->items = items; s->batch = batch;
	s->seen = xt_shared(bits / 8);
	s->qsize = xq_size(cap);
	s->qmem = xt_shared(s->qsize);
	CHECK(xq_init_empty(s->qmem, s->qsize, cap) == 0);
	for (i = 0; i < n; i++) {
		t[i].s = s;
		t[i].prod = i < nprod;
		t[i].id = i < nprod ? i : i - nprod;
		if (procs) {
			pid[i] = xt_fork();
			if (pid[i] == 0) {
				thread_main(&t[i]);
				_exit(0);
			}
		} else {
			CHECK(pthread_create(&th[i], NULL, thread_main, &t[i]) == 0);
		}
	}
	for (i = 0; i < n; i++) {
		if (procs) {
			int st;

			CHECK(waitpid(pid[i], &st, 0) == pid[i]);
			CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %u status %#x", i, st);
		} else {
			CHECK(pthread_join(th[i], NULL) == 0);
		}
	}
	CHECKF(s->errors == 0, "%" PRIu64 " errors", s->errors);
	for (uint32_t p = 0; p < nprod; p++)
		for (uint32_t q = 0; q < items; q++) {
			uint64_t bit = ((uint64_t)p << SEQ_BITS) | q;

			CHECKF(s->seen[bit / 64] & (1ull << (bit % 64)), "producer %u item %u lost", p, q);
		}
	CHECK(s->received == (uint64_t)nprod * items);
	CHECK(xq_attach(&h, s->qmem, s->qsize, XQ_INDEX_MAX + 1u) == 0);
	CHECK(xq_dequeue(&h) == XQ_NONE);
	CHECK(xq_count(&h) == 0);
	munmap(s->qmem, s->qsize);
	munmap(s->seen, bits / 8);
	munmap(s, sizeof(*s));
}

/* The scenarios, as threads or as processes (the two stress_*.c programs). */
static void stress_main(bool procs)
{
	uint32_t items = (uint32_t)xt_env_long("XSEG_STRESS_ITEMS", 200000);

	static const struct { uint32_t p, c, div, cap, batch; const char *what; } sc[] = {
		{ 1, 1, 1, 16, 0, "1 producer, 1 consumer" },
		{ 2, 2, 1, 64, 0, "2 producers, 2 consumers" },
		{ 4, 1, 2, 8, 0, "4 producers, 1 consumer, capacity 8" },
		{ 1, 4, 1, 8, 0, "1 producer, 4 consumers, capacity 8" },
		{ 2, 2, 1, 32, 8, "2 producers, 2 consumers, batches up to 8" },
		{ 3, 3, 4, 1, 0, "3 producers, 3 consumers, capacity 1" },
	};

	xt_watchdog(240);
	for (unsigned i = 0; i < sizeof(sc) / sizeof(sc[0]); i++) {
		xt_current = sc[i].what;	/* names the scenario in a failure */
		stress_run(procs, sc[i].p, sc[i].c, items / sc[i].div, sc[i].cap, sc[i].batch);
		printf("ok %s\n", sc[i].what);
	}
}
