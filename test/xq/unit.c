/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: every xq operation single-threaded: init forms, FIFO order,
 * full and empty edges, batch edges (all-or-nothing and best-effort), the
 * wraparound of the 64-bit positions and of the 31-bit lap counter, and
 * attach refusing corrupt headers.
 */
#include "xtest.h"
#include "xq/xq.h"

static void *mkq(uint32_t cap, struct xq *h)
{
	size_t sz = xq_size(cap);
	void *mem;

	CHECK(sz > 0);
	mem = calloc(1, sz);
	CHECK(mem);
	CHECK(xq_init_empty(mem, sz, cap) == 0);
	CHECK(xq_attach(h, mem, sz, XQ_INDEX_MAX + 1u) == 0);
	return mem;
}

static void test_sizes(void)
{
	CHECK(xq_size(0) == 0);
	CHECK(xq_size(3) == 0);		/* not a power of two */
	CHECK(xq_size(1) > XQ_HDR_SIZE);
	CHECK(xq_size(1024) == XQ_HDR_SIZE + 4096 * 8);
	CHECK(xq_size(1u << 29) == 0);	/* over XQ_MAX_ORDER */
}

static void test_fifo_full_empty(void)
{
	uint32_t caps[] = { 1, 2, 4, 64, 1024 };

	for (unsigned c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
		struct xq h;
		uint32_t cap = caps[c];
		void *mem = mkq(cap, &h);

		CHECK(xq_capacity(&h) == cap);
		CHECK(xq_dequeue(&h) == XQ_NONE);
		CHECK(xq_count(&h) == 0);
		/* Several rounds so positions go around the ring many times. */
		for (uint32_t round = 0; round < 50; round++) {
			for (uint32_t i = 0; i < cap; i++)
				CHECK(xq_enqueue(&h, round * 7 + i));
			CHECK(xq_count(&h) == cap);
			CHECK(!xq_enqueue(&h, 99));		/* full is a value */
			for (uint32_t i = 0; i < cap; i++)
				CHECKF(xq_dequeue(&h) == round * 7 + i, "cap %u round %u i %u", cap, round, i);
			CHECK(xq_dequeue(&h) == XQ_NONE);	/* empty is a value */
			CHECK(xq_count(&h) == 0);
		}
		free(mem);
	}
}

static void test_index_range(void)
{
	struct xq h;
	void *mem = mkq(4, &h);

	CHECK(xq_enqueue(&h, 0));
	CHECK(xq_enqueue(&h, XQ_INDEX_MAX));
	CHECK(!xq_enqueue(&h, XQ_TAKEN));	/* reserved markers are refused */
	CHECK(!xq_enqueue(&h, XQ_NONE));
	CHECK(xq_dequeue(&h) == 0);
	CHECK(xq_dequeue(&h) == XQ_INDEX_MAX);
	CHECK(xq_dequeue(&h) == XQ_NONE);
	free(mem);
}

static void test_init_forms(void)
{
	struct xq h;
	size_t sz = xq_size(16);
	void *mem = calloc(1, sz);
	xq_index map[5] = { 9, 3, 7, 1, 0 };

	CHECK(xq_init_seq(mem, sz, 16, 16, 100) == 0);
	CHECK(xq_attach(&h, mem, sz, XQ_INDEX_MAX + 1u) == 0);
	CHECK(xq_count(&h) == 16);
	for (uint32_t i = 0; i < 16; i++)
		CHECK(xq_dequeue(&h) == 100 + i);
	CHECK(xq_dequeue(&h) == XQ_NONE);

	CHECK(xq_init_map(mem, sz, 16, map, 5) == 0);
	CHECK(xq_attach(&h, mem, sz, XQ_INDEX_MAX + 1u) == 0);
	for (uint32_t i = 0; i < 5; i++)
		CHECK(xq_dequeue(&h) == map[i]);
	CHECK(xq_dequeue(&h) == XQ_NONE);

	CHECK(xq_init_seq(mem, sz, 16, 17, 0) == -EINVAL);	/* more than capacity */
	CHECK(xq_init_seq(mem, sz, 16, 2, XQ_INDEX_MAX) == -EINVAL);
	CHECK(xq_init_empty(mem, sz - 1, 16) == -EINVAL);	/* too small */
	CHECK(xq_init_empty(mem, sz, 12) == -EINVAL);
	free(mem);
}

/*
 * Positions whose producers were killed after their FAA on tail (or refused)
 * are skipped by consumers. A best-effort batch whose reserved positions
 * were all such must go on to the index behind them, not return 0 as if
 * the queue were empty (kill_batch's audit found that).
 */
static void test_batch_abandoned(void)
{
	struct xq h;
	void *mem = mkq(64, &h);
	struct xq_layout *q = mem;
	xq_index out[4];

	q->tail += 8;			/* 8 producers took positions and died */
	CHECK(xq_enqueue(&h, 42));
	CHECK(xq_dequeue_batch(&h, out, 4, false) == 1);	/* 4 abandoned positions, then 42 */
	CHECK(out[0] == 42);
	CHECK(xq_dequeue_batch(&h, out, 4, false) == 0);
	CHECK(xq_dequeue(&h) == XQ_NONE);
	free(mem);
}

static void test_batch(void)
{
	struct xq h;
	void *mem = mkq(8, &h);
	xq_index in[10], out[10];

	for (int i = 0; i < 10; i++)
		in[i] = 50 + i;
	CHECK(xq_enqueue_batch(&h, in, 0, true) == 0);
	CHECK(xq_enqueue_batch(&h, in, 9, true) == 0);		/* all-or-nothing: no room for 9 */
	CHECK(xq_count(&h) == 0);
	CHECK(xq_enqueue_batch(&h, in, 5, true) == 5);
	CHECK(xq_enqueue_batch(&h, in + 5, 5, true) == 0);	/* 3 free */
	CHECK(xq_enqueue_batch(&h, in + 5, 5, false) == 3);	/* best-effort: a prefix */
	CHECK(xq_enqueue_batch(&h, in, 1, false) == 0);		/* full */
	CHECK(xq_dequeue_batch(&h, out, 9, true) == 0);		/* only 8 there */
	CHECK(xq_dequeue_batch(&h, out, 3, true) == 3);
	for (int i = 0; i < 3; i++)
		CHECK(out[i] == 50u + i);
	CHECK(xq_dequeue_batch(&h, out, 10, false) == 5);
	for (int i = 0; i < 5; i++)
		CHECK(out[i] == 53u + i);
	CHECK(xq_dequeue_batch(&h, out, 4, false) == 0);
	CHECK(xq_dequeue_batch(&h, out, 0, false) == 0);
	/* Mixed single and batch keep one FIFO order. */
	CHECK(xq_enqueue(&h, 1));
	CHECK(xq_enqueue_batch(&h, in, 2, true) == 2);
	CHECK(xq_enqueue(&h, 2));
	CHECK(xq_dequeue(&h) == 1);
	CHECK(xq_dequeue_batch(&h, out, 3, false) == 3);
	CHECK(out[0] == 50 && out[1] == 51 && out[2] == 2);
	in[3] = XQ_NONE;
	CHECK(xq_enqueue_batch(&h, in, 4, false) == 0);		/* an invalid index: nothing */
	free(mem);
}

/* Run the same traffic across a wrap of the positions and of the lap counter. */
static void wrap_run(uint64_t start)
{
	struct xq h;
	uint32_t cap = 4;
	size_t sz = xq_size(cap);
	void *mem = calloc(1, sz);
	uint32_t next_in = 0, next_out = 0;
	xq_index v[4];

	CHECK(xq_init_at(mem, sz, cap, start) == 0);
	CHECK(xq_attach(&h, mem, sz, XQ_INDEX_MAX + 1u) == 0);
	/* 256 slots; 5000 positions cross the wrap point many slots over. */
	for (int i = 0; i < 5000; i++) {
		switch (i % 5) {
		case 0: case 1:
			if (xq_enqueue(&h, next_in))
				next_in++;
			break;
		case 2:
			for (int k = 0; k < 2; k++)
				v[k] = next_in + k;
			next_in += xq_enqueue_batch(&h, v, 2, false);
			break;
		case 3: {
			xq_index x = xq_dequeue(&h);

			if (x != XQ_NONE)
				CHECKF(x == next_out++, "got %u", x);
			break;
		}
		default: {
			uint32_t n = xq_dequeue_batch(&h, v, 3, false);

			for (uint32_t k = 0; k < n; k++)
				CHECK(v[k] == next_out++);
			/* and an empty probe past the tail now and then */
			if (next_out == next_in)
				CHECK(xq_dequeue(&h) == XQ_NONE);
		}
		}
	}
	while (next_out < next_in)
		CHECK(xq_dequeue(&h) == next_out++);
	CHECK(xq_dequeue(&h) == XQ_NONE);
	CHECK(next_in > 1000);
	free(mem);
}

/*
 * Handles cache the other side's counter (struct xq): a producer whose copy
 * of head is old must still see the room consumers made since, for a
 * single enqueue and for an all-or-nothing batch larger than the room its
 * copy shows; a consumer whose copy of tail is old must still find what
 * was produced since.
 */
static void test_cached_counters(void)
{
	struct xq p, c;
	void *mem = mkq(16, &p);
	xq_index in[16], out[16];
	uint32_t i;

	CHECK(xq_attach(&c, mem, xq_size(16), XQ_INDEX_MAX + 1u) == 0);
	for (i = 0; i < 16; i++)
		in[i] = 100 + i;
	CHECK(xq_dequeue(&c) == XQ_NONE);			/* c's tail copy: empty */
	CHECK(xq_enqueue_batch(&p, in, 12, true) == 12);	/* p's head copy: 4 free */
	CHECK(xq_dequeue_batch(&c, out, 12, true) == 12);
	CHECK(xq_enqueue_batch(&p, in, 8, true) == 8);		/* 16 free, its copy says 4 */
	for (i = 0; i < 8; i++)
		CHECK(xq_dequeue(&c) == 100 + i);
	CHECK(xq_dequeue(&c) == XQ_NONE);
	for (i = 0; i < 16; i++)
		CHECK(xq_enqueue(&p, 200 + i));			/* fill it: the copy goes stale */
	CHECK(!xq_enqueue(&p, 1));
	CHECK(xq_count(&c) == 16 && xq_count(&p) == 16);
	for (i = 0; i < 16; i++)
		CHECK(xq_dequeue(&c) == 200 + i);
	CHECK(xq_count(&p) == 0);
	CHECK(xq_enqueue(&p, 7) && xq_dequeue(&c) == 7);
	free(mem);
}

static void test_wrap_positions(void)
{
	/* head and tail start 300 positions before 2^64 */
	wrap_run(0ull - 300);
}

static void test_wrap_cycles(void)
{
	/* the 31-bit lap counter wraps 2^31 laps in: order 8, so pos 2^39 */
	wrap_run((1ull << 39) - 300);
	/* and both together at an odd start */
	wrap_run(0ull - 77777);
}

static void test_attach_rejects(void)
{
	struct xq h, before;
	size_t sz = xq_size(64);
	struct xq_layout *q = calloc(1, sz);

	CHECK(xq_init_empty(q, sz, 64) == 0);
	memset(&before, 0xAB, sizeof(before));
	h = before;
	CHECK(xq_attach(&h, q, sz - 8, 100) == -EINVAL);	/* slots beyond the mapping */
	CHECK(xq_attach(&h, q, 10, 100) == -EINVAL);
	q->magic ^= 1;
	CHECK(xq_attach(&h, q, sz, 100) == -EINVAL);
	q->magic ^= 1;
	q->version = XQ_LAYOUT_VERSION + 1;
	CHECK(xq_attach(&h, q, sz, 100) == -EINVAL);
	q->version = 1;		/* version 1 mapped positions to slots differently */
	CHECK(xq_attach(&h, q, sz, 100) == -EINVAL);
	q->version = XQ_LAYOUT_VERSION;
	q->order = 30;						/* claims a huge ring */
	CHECK(xq_attach(&h, q, sz, 100) == -EINVAL);
	q->order = 8;
	q->capacity = 3;
	CHECK(xq_attach(&h, q, sz, 100) == -EINVAL);
	CHECK(memcmp(&h, &before, sizeof(h)) == 0);		/* untouched on error */
	q->capacity = 64;
	CHECK(xq_attach(&h, q, sz, 100) == 0);
	/* An index beyond the caller's limit, planted in a slot, is skipped. */
	CHECK(xq_enqueue(&h, 5));
	CHECK(xq_enqueue(&h, 500));
	CHECK(xq_enqueue(&h, 6));
	CHECK(xq_dequeue(&h) == 5);
	CHECK(xq_dequeue(&h) == 6);
	CHECK(h.corrupt == 1);
	/* Garbage counters never make an operation go out of bounds or hang. */
	q->head = 0x123456789ull;
	q->tail = 0x12345ull;
	q->threshold = 1000;
	CHECK(xq_dequeue(&h) == XQ_NONE);
	(void)xq_enqueue(&h, 1);	/* either answer is fine; it must return */
	for (uint32_t i = 0; i < (1u << 8); i++)
		q->slots[i] = 0xFFFFFFFFFFFFFFFFull - i;	/* garbage entries */
	for (int i = 0; i < 1000; i++) {
		xq_index x = xq_dequeue(&h);

		CHECK(x == XQ_NONE || x < 100);
		(void)xq_enqueue(&h, 7);
	}
	free(q);
}

struct scan_ctx { uint32_t *v; uint32_t n; };

static void scan_fn(void *arg, xq_index idx)
{
	struct scan_ctx *c = arg;

	c->v[c->n++] = idx;
}

static void test_scan(void)
{
	struct xq h;
	void *mem = mkq(16, &h);
	uint32_t seen[16];
	struct scan_ctx ctx = { seen, 0 };

	for (uint32_t i = 0; i < 10; i++)
		CHECK(xq_enqueue(&h, i * 3));
	for (uint32_t i = 0; i < 4; i++)
		CHECK(xq_dequeue(&h) == i * 3);
	CHECK(xq_scan(&h, scan_fn, &ctx) == 6);
	CHECK(ctx.n == 6);
	for (uint32_t i = 0; i < 6; i++)
		CHECK(seen[i] == (i + 4) * 3);
	free(mem);
}


int main(void)
{
	xt_watchdog(60);
	RUN(test_sizes);
	RUN(test_fifo_full_empty);
	RUN(test_index_range);
	RUN(test_init_forms);
	RUN(test_batch);
	RUN(test_batch_abandoned);
	RUN(test_cached_counters);
	RUN(test_wrap_positions);
	RUN(test_wrap_cycles);
	RUN(test_attach_rejects);
	RUN(test_scan);
	return 0;
}
