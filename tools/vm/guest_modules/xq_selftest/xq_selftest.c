// SPDX-License-Identifier: BSD-2-Clause
/*
 * tools/vm/guest_modules/xq_selftest - proves that the domain-neutral core
 * built into xseg.ko runs in the kernel: xq's unit checks (FIFO order, full
 * and empty edges, init forms, batches, position and lap wraparound, tracked
 * operations and recovery), a two-thread MPMC run that checks every index
 * arrives exactly once, and the segment core on a kernel heap segment (spec
 * round trip, create, layout, verify, destroy).
 *
 * Runs at load: prints "xq_selftest: PASS (N checks)" or "xq_selftest: FAIL
 * ..." lines, and load fails (-EINVAL) if anything failed, so `insmod`
 * reports it too. Parameter stress_ops: operations per thread (0 skips).
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/kthread.h>
#include <linux/completion.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/sched.h>
#include <linux/sched/task.h>
#include "xq/xq.h"
#include "xseg/xseg.h"

static unsigned int stress_ops = 200000;
module_param(stress_ops, uint, 0444);
MODULE_PARM_DESC(stress_ops, "enqueue+dequeue pairs per stress thread (0: no stress)");

static unsigned int checks, failures;

#define CHECK(cond) do { \
	checks++; \
	if (!(cond)) { \
		failures++; \
		pr_err("xq_selftest: FAIL %s:%d: %s\n", __func__, __LINE__, #cond); \
	} } while (0)

static void *mkq(u32 cap, struct xq *h, size_t *szp)
{
	size_t sz = xq_size(cap);
	void *mem;

	if (!sz)
		return NULL;
	mem = kvzalloc(sz, GFP_KERNEL);
	if (!mem)
		return NULL;
	if (xq_init_empty(mem, sz, cap) || xq_attach(h, mem, sz, XQ_INDEX_MAX + 1u)) {
		kvfree(mem);
		return NULL;
	}
	if (szp)
		*szp = sz;
	return mem;
}

static void test_sizes(void)
{
	CHECK(xq_size(0) == 0);
	CHECK(xq_size(3) == 0);
	CHECK(xq_size(1) > XQ_HDR_SIZE);
	CHECK(xq_size(1024) == XQ_HDR_SIZE + 4096 * 8);
	CHECK(xq_size(1u << 29) == 0);
}

static void test_fifo_full_empty(void)
{
	static const u32 caps[] = { 1, 2, 4, 64, 1024 };
	unsigned int c;

	for (c = 0; c < ARRAY_SIZE(caps); c++) {
		struct xq h;
		u32 cap = caps[c], round, i;
		void *mem = mkq(cap, &h, NULL);

		CHECK(mem);
		if (!mem)
			continue;
		CHECK(xq_capacity(&h) == cap);
		CHECK(xq_dequeue(&h) == XQ_NONE);
		for (round = 0; round < 20; round++) {
			for (i = 0; i < cap; i++)
				CHECK(xq_enqueue(&h, round * 7 + i));
			CHECK(xq_count(&h) == cap);
			CHECK(!xq_enqueue(&h, 99));
			for (i = 0; i < cap; i++)
				CHECK(xq_dequeue(&h) == round * 7 + i);
			CHECK(xq_dequeue(&h) == XQ_NONE);
			CHECK(xq_count(&h) == 0);
		}
		kvfree(mem);
	}
}

static void test_init_forms(void)
{
	struct xq h;
	size_t sz = xq_size(16);
	void *mem = kvzalloc(sz, GFP_KERNEL);
	static const xq_index map[5] = { 9, 3, 7, 1, 0 };
	u32 i;

	CHECK(mem);
	if (!mem)
		return;
	CHECK(xq_init_seq(mem, sz, 16, 16, 100) == 0);
	CHECK(xq_attach(&h, mem, sz, XQ_INDEX_MAX + 1u) == 0);
	CHECK(xq_count(&h) == 16);
	for (i = 0; i < 16; i++)
		CHECK(xq_dequeue(&h) == 100 + i);
	CHECK(xq_dequeue(&h) == XQ_NONE);
	CHECK(xq_init_map(mem, sz, 16, map, 5) == 0);
	CHECK(xq_attach(&h, mem, sz, XQ_INDEX_MAX + 1u) == 0);
	for (i = 0; i < 5; i++)
		CHECK(xq_dequeue(&h) == map[i]);
	CHECK(xq_init_seq(mem, sz, 16, 17, 0) == -EINVAL);
	CHECK(xq_init_empty(mem, sz - 1, 16) == -EINVAL);
	CHECK(xq_init_empty(mem, sz, 12) == -EINVAL);
	/* attach refuses a corrupt header */
	CHECK(xq_init_empty(mem, sz, 16) == 0);
	((struct xq_layout *)mem)->order = 3;
	CHECK(xq_attach(&h, mem, sz, XQ_INDEX_MAX + 1u) == -EINVAL);
	kvfree(mem);
}

static void test_batch(void)
{
	struct xq h;
	void *mem = mkq(8, &h, NULL);
	xq_index in[10], out[10];
	int i;

	CHECK(mem);
	if (!mem)
		return;
	for (i = 0; i < 10; i++)
		in[i] = 50 + i;
	CHECK(xq_enqueue_batch(&h, in, 9, true) == 0);
	CHECK(xq_enqueue_batch(&h, in, 5, true) == 5);
	CHECK(xq_enqueue_batch(&h, in + 5, 5, true) == 0);
	CHECK(xq_enqueue_batch(&h, in + 5, 5, false) == 3);
	CHECK(xq_dequeue_batch(&h, out, 9, true) == 0);
	CHECK(xq_dequeue_batch(&h, out, 3, true) == 3);
	for (i = 0; i < 3; i++)
		CHECK(out[i] == 50u + i);
	CHECK(xq_dequeue_batch(&h, out, 10, false) == 5);
	for (i = 0; i < 5; i++)
		CHECK(out[i] == 53u + i);
	CHECK(xq_dequeue_batch(&h, out, 4, false) == 0);
	kvfree(mem);
}

static void wrap_run(u64 start)
{
	struct xq h;
	u32 cap = 4, next_in = 0, next_out = 0, n, k;
	size_t sz = xq_size(cap);
	void *mem = kvzalloc(sz, GFP_KERNEL);
	xq_index v[4], x;
	int i;

	CHECK(mem);
	if (!mem)
		return;
	CHECK(xq_init_at(mem, sz, cap, start) == 0);
	CHECK(xq_attach(&h, mem, sz, XQ_INDEX_MAX + 1u) == 0);
	for (i = 0; i < 5000; i++) {
		switch (i % 5) {
		case 0:
		case 1:
			if (xq_enqueue(&h, next_in))
				next_in++;
			break;
		case 2:
			v[0] = next_in;
			v[1] = next_in + 1;
			next_in += xq_enqueue_batch(&h, v, 2, false);
			break;
		case 3:
			x = xq_dequeue(&h);
			if (x != XQ_NONE)
				CHECK(x == next_out++);
			break;
		default:
			n = xq_dequeue_batch(&h, v, 3, false);
			for (k = 0; k < n; k++)
				CHECK(v[k] == next_out++);
		}
	}
	while (next_out < next_in)
		CHECK(xq_dequeue(&h) == next_out++);
	CHECK(xq_dequeue(&h) == XQ_NONE);
	CHECK(next_in > 1000);
	kvfree(mem);
}

static void test_wrap(void)
{
	wrap_run(0ull - 300);			/* 64-bit positions wrap */
	wrap_run((1ull << 39) - 300);		/* the 31-bit lap counter wraps */
	wrap_run(0ull - 77777);
}

/* Tracked dequeue, then the "dead" holder's index is recovered exactly once. */
static void test_tracked_recovery(void)
{
	struct xq h;
	u64 gen[8] = { 0 };
	struct xq_hold holds[2] = { { 0 } };
	struct xq_track tr = { .gen = gen, .nindices = 8, .holds = holds, .nholds = 2 };
	size_t sz = xq_size(8);
	void *mem = kvzalloc(sz, GFP_KERNEL);
	u64 qid = 0;
	xq_index x;

	CHECK(mem);
	if (!mem)
		return;
	CHECK(xq_init_seq(mem, sz, 8, 8, 0) == 0);
	CHECK(xq_attach(&h, mem, sz, 8) == 0);
	x = xq_dequeue_tracked(&h, 42, &tr, &holds[0]);
	CHECK(x == 0);
	CHECK(xq_hold_state(&holds[0], &qid) == XQ_HOLD_HELD && qid == 42);
	/* holder 0 "dies" holding index 0; holder 1 recovers it */
	CHECK(xq_recover_hold(&h, &tr, &holds[0], &holds[1], 1) == XQ_REC_GIVEN);
	CHECK(xq_hold_state(&holds[1], NULL) == XQ_HOLD_HELD);
	CHECK(xq_hold_state(&holds[0], NULL) == XQ_HOLD_NONE);
	CHECK(xq_recover_hold(&h, &tr, &holds[0], &holds[1], 1) == XQ_REC_NOTHING);	/* idempotent */
	CHECK(xq_enqueue_tracked(&h, 42, &tr, &holds[1]));
	CHECK(xq_hold_state(&holds[1], NULL) == XQ_HOLD_NONE);
	CHECK(xq_count(&h) == 8);
	kvfree(mem);
}

/* ------------------------------------------------- two-thread MPMC stress */

#define STRESS_N 256u		/* indices in circulation */

struct stress {
	struct xq from, to;	/* each thread moves indices from -> to */
	u8 *seen;		/* per index: times it was dequeued from the final pass */
	unsigned int ops;
	atomic_t errors;
	atomic_t spurious_full;	/* enqueues refused below capacity (retried) */
	struct completion done[2];
};

struct stress_arg {
	struct stress *s;
	int id;
};

/*
 * Put @x into @q. The queues are bounded (xq_set_bounded: only STRESS_N
 * indices exist), so a refusal is a bug: counted (the test fails on it) and
 * retried, never dropped.
 */
static bool stress_put(struct stress *s, struct xq *q, xq_index x)
{
	unsigned int tries;

	if (x >= STRESS_N) {
		atomic_inc(&s->errors);
		return false;
	}
	for (tries = 0; tries < 1000000; tries++) {
		if (xq_enqueue(q, x))
			return true;
		atomic_inc(&s->spurious_full);
		cond_resched();
	}
	atomic_inc(&s->errors);		/* still refused after a million tries */
	return false;
}

static int stress_thread(void *arg)
{
	struct stress_arg *a = arg;
	struct stress *s = a->s;
	unsigned int i, stuck = 0;

	for (i = 0; i < s->ops; ) {
		xq_index x = xq_dequeue(&s->from);

		if (x == XQ_NONE) {
			x = xq_dequeue(&s->to);
			if (x == XQ_NONE) {
				if (++stuck > 1000000) {
					atomic_inc(&s->errors);
					break;
				}
				cond_resched();
				continue;
			}
			if (!stress_put(s, &s->from, x))
				break;
			continue;
		}
		stuck = 0;
		if (!stress_put(s, &s->to, x))
			break;
		i++;
		if ((i & 1023) == 0)
			cond_resched();
	}
	complete(&s->done[a->id]);
	return 0;
}

static void test_stress(void)
{
	struct stress *s;
	struct task_struct *t[2];
	struct stress_arg args[2];
	size_t sz = xq_size(STRESS_N);
	void *m1, *m2;
	u32 total = 0, k;
	xq_index x;
	int i;

	if (!stress_ops)
		return;
	s = kzalloc(sizeof(*s), GFP_KERNEL);
	m1 = kvzalloc(sz, GFP_KERNEL);
	m2 = kvzalloc(sz, GFP_KERNEL);
	CHECK(s && m1 && m2);
	if (!s || !m1 || !m2)
		goto out;
	s->seen = kzalloc(STRESS_N, GFP_KERNEL);
	CHECK(s->seen);
	if (!s->seen)
		goto out;
	CHECK(xq_init_seq(m1, sz, STRESS_N, STRESS_N, 0) == 0);
	CHECK(xq_init_empty(m2, sz, STRESS_N) == 0);
	CHECK(xq_attach(&s->from, m1, sz, STRESS_N) == 0);
	CHECK(xq_attach(&s->to, m2, sz, STRESS_N) == 0);
	xq_set_bounded(&s->from);
	xq_set_bounded(&s->to);
	s->ops = stress_ops;
	for (i = 0; i < 2; i++) {
		init_completion(&s->done[i]);
		args[i].s = s;
		args[i].id = i;
		t[i] = kthread_run(stress_thread, &args[i], "xq_stress/%d", i);
		CHECK(!IS_ERR(t[i]));
		if (!IS_ERR(t[i]))
			get_task_struct(t[i]);
	}
	for (i = 0; i < 2; i++) {
		if (IS_ERR(t[i]))
			continue;
		wait_for_completion(&s->done[i]);
		kthread_stop(t[i]);	/* reaps it (we hold a reference) */
		put_task_struct(t[i]);
	}
	CHECK(atomic_read(&s->errors) == 0);
	CHECK(atomic_read(&s->spurious_full) == 0);
	/* Every index is in exactly one of the two queues, once. */
	for (k = 0; k < 2; k++) {
		struct xq *q = k ? &s->to : &s->from;

		while ((x = xq_dequeue(q)) != XQ_NONE) {
			CHECK(x < STRESS_N);
			if (x < STRESS_N)
				s->seen[x]++;
			total++;
		}
	}
	CHECK(total == STRESS_N);
	for (k = 0; k < STRESS_N; k++)
		CHECK(s->seen[k] == 1);
	pr_info("xq_selftest: stress: 2 threads x %u moves, %u indices conserved, %d spurious full\n",
		stress_ops, total, atomic_read(&s->spurious_full));
out:
	if (s)
		kfree(s->seen);
	kfree(s);
	kvfree(m1);
	kvfree(m2);
}

/* -------------------------------------------------- the segment core */

static void test_xseg_heap(void)
{
	struct xseg_config *cfg, *back;
	char *err, *buf;
	int n;

	cfg = kzalloc(sizeof(*cfg), GFP_KERNEL);
	back = kzalloc(sizeof(*back), GFP_KERNEL);
	err = kzalloc(256, GFP_KERNEL);
	buf = kzalloc(512, GFP_KERNEL);
	CHECK(cfg && back && err && buf);
	if (!cfg || !back || !err || !buf)
		goto out;
	CHECK(xseg_parse_spec("heap:kseg:8:64:4K:0:12", cfg, err, 256) == 0);
	CHECK(!strcmp(cfg->type, "heap") && !strcmp(cfg->name, "kseg"));
	CHECK(cfg->nr_ports == 8 && cfg->nr_requests == 64 && cfg->request_size == 4096);
	n = xseg_format_spec(cfg, buf, 512);
	CHECK(n > 0 && n < 512);
	CHECK(xseg_parse_spec(buf, back, err, 256) == 0);
	CHECK(!memcmp(cfg, back, sizeof(*cfg)));
	CHECK(xseg_parse_spec("heap:kseg:0:64", back, err, 256) == -EINVAL);
	CHECK(strstr(err, "nr_ports") != NULL);
	CHECK(xseg_layout_size(cfg) > 0);
	CHECK(xseg_create(cfg, err, 256) == 0);
	CHECK(xseg_create(cfg, err, 256) == -EEXIST);
	CHECK(xseg_destroy_name("heap", "kseg") == 0);
	CHECK(xseg_destroy_name("heap", "kseg") == -ENOENT);
	CHECK(xseg_find_segtype("heap") != NULL);
	CHECK(xseg_find_segtype("posix") == NULL);	/* not in the kernel */
	CHECK(xseg_op_from_name("read") == X_READ);
out:
	kfree(cfg);
	kfree(back);
	kfree(err);
	kfree(buf);
}

static int __init xq_selftest_init(void)
{
	test_sizes();
	test_fifo_full_empty();
	test_init_forms();
	test_batch();
	test_wrap();
	test_tracked_recovery();
	test_stress();
	test_xseg_heap();
	if (failures) {
		pr_err("xq_selftest: FAIL (%u of %u checks failed)\n", failures, checks);
		return -EINVAL;
	}
	pr_info("xq_selftest: PASS (%u checks)\n", checks);
	return 0;
}

static void __exit xq_selftest_exit(void)
{
}

module_init(xq_selftest_init);
module_exit(xq_selftest_exit);
MODULE_LICENSE("Dual BSD/GPL");
MODULE_DESCRIPTION("xq and xseg core checks in the kernel (VM test module)");
