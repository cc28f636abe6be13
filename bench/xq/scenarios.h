/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench/xq/scenarios.h - the four scenarios, written once and compiled into
 * every adapter so that each queue's operations inline into the same loops.
 * Valid C11 and C++17. Every run lasts a fixed time (the clock is read every
 * SC_CHUNK operations), so a slow queue or a busy machine cannot stretch it.
 *
 * The adapter defines, before including this file:
 *   Q_HANDLE   a participant's handle (each thread attaches its own)
 *   Q_ELEM     what the queue stores
 *   Q_RUN      the runner's name (declared in bench.h)
 * and these static functions:
 *   void    *q_create(int mode)           a fresh empty queue of BENCH_CAP
 *   void     q_destroy(void *mem)
 *   void     q_attach(Q_HANDLE *h, void *mem)
 *   bool     q_enq(Q_HANDLE *h, Q_ELEM e)   false if full
 *   bool     q_deq(Q_HANDLE *h, Q_ELEM *e)  false if empty
 *   unsigned q_enq_n(Q_HANDLE *h, const Q_ELEM *v, unsigned n)  how many (a prefix)
 *   unsigned q_deq_n(Q_HANDLE *h, Q_ELEM *v, unsigned n)        how many
 *   Q_ELEM   q_mk(uint32_t x);  uint32_t q_val(Q_ELEM e)
 */
#include <inttypes.h>

#define SC_VAL(i) ((uint32_t)(i) & BENCH_VMASK)
#define SC_CHUNK 4096u		/* operations between two looks at the clock */

static double sc_pair(const struct bench_impl *impl, void *mem, double secs)
{
	Q_HANDLE h;
	Q_ELEM e;
	uint64_t i = 0, end;
	double t0, t;

	q_attach(&h, mem);
	t0 = bench_now();
	do {
		for (end = i + SC_CHUNK; i < end; i++) {
			if (!q_enq(&h, q_mk(SC_VAL(i))) || !q_deq(&h, &e))
				bench_fail(impl, "pair %" PRIu64 ": an operation failed", i);
			if (q_val(e) != SC_VAL(i))
				bench_fail(impl, "pair %" PRIu64 ": got %" PRIu32, i, q_val(e));
		}
		t = bench_now() - t0;
	} while (t < secs);
	return (double)i / t / 1e6;
}

static double sc_batch(const struct bench_impl *impl, void *mem, double secs)
{
	const unsigned b = BENCH_BATCH;
	Q_HANDLE h;
	Q_ELEM in[BENCH_BATCH], out[BENCH_BATCH];
	uint64_t i = 0, end;
	unsigned j;
	double t0, t;

	q_attach(&h, mem);
	t0 = bench_now();
	do {
		for (end = i + SC_CHUNK; i < end; i += b) {
			for (j = 0; j < b; j++)
				in[j] = q_mk(SC_VAL(i + j));
			if (q_enq_n(&h, in, b) != b || q_deq_n(&h, out, b) != b)
				bench_fail(impl, "batch at %" PRIu64 ": an operation was short", i);
			if (q_val(out[0]) != SC_VAL(i) || q_val(out[b - 1]) != SC_VAL(i + b - 1))
				bench_fail(impl, "batch at %" PRIu64 ": wrong items", i);
		}
		t = bench_now() - t0;
	} while (t < secs);
	return (double)i / t / 1e6;
}

/* Sends 0, 1, 2, ... until the queue is full and the consumer has stopped. */
static void *sc_producer(void *arg)
{
	struct bench_pc *pc = (struct bench_pc *)arg;
	Q_HANDLE h;
	Q_ELEM v[BENCH_BATCH];
	uint64_t i;
	unsigned j, done;

	q_attach(&h, pc->mem);
	bench_pc_begin(pc, true);
	if (pc->batch == 1) {
		for (i = 0;; i++)
			while (!q_enq(&h, q_mk(SC_VAL(i)))) {
				if (bench_pc_stopped(pc))
					return NULL;
				bench_relax();
			}
	}
	for (i = 0;; i += BENCH_BATCH) {
		for (j = 0; j < BENCH_BATCH; j++)
			v[j] = q_mk(SC_VAL(i + j));
		for (done = 0; done < BENCH_BATCH;) {
			unsigned k = q_enq_n(&h, v + done, BENCH_BATCH - done);

			if (k == 0) {
				if (bench_pc_stopped(pc))
					return NULL;
				bench_relax();
			}
			done += k;
		}
	}
}

/* Takes items and checks that they come out as 0, 1, 2, ... (mod 2^24). */
static void *sc_consumer(void *arg)
{
	struct bench_pc *pc = (struct bench_pc *)arg;
	const bool one = pc->batch == 1;
	Q_HANDLE h;
	Q_ELEM v[BENCH_BATCH];
	uint64_t i = 0, loops = 0;
	unsigned j, k;

	q_attach(&h, pc->mem);
	bench_pc_begin(pc, false);
	for (;;) {
		if (++loops % SC_CHUNK == 0 && bench_pc_done(pc))
			break;
		k = one ? (q_deq(&h, &v[0]) ? 1 : 0) : q_deq_n(&h, v, BENCH_BATCH);
		if (k == 0) {
			bench_relax();
			continue;
		}
		for (j = 0; j < k; j++)
			if (q_val(v[j]) != SC_VAL(i + j))
				bench_fail(pc->impl, "1P1C out of order: item %" PRIu64
					   " is %" PRIu32 ", expected %" PRIu32,
					   i + j, q_val(v[j]), SC_VAL(i + j));
		i += k;
	}
	pc->items = i;
	return NULL;
}

double Q_RUN(const struct bench_impl *impl, int scenario, double secs)
{
	void *mem = q_create(impl->mode);
	struct bench_pc pc;
	double r;

	if (scenario == BENCH_PAIR) {
		r = sc_pair(impl, mem, secs);
	} else if (scenario == BENCH_BATCH_ST) {
		r = sc_batch(impl, mem, secs);
	} else {
		pc.impl = impl;
		pc.mem = mem;
		pc.secs = secs;
		pc.batch = scenario == BENCH_PC_BATCH ? BENCH_BATCH : 1;
		r = bench_run_pc(&pc, sc_producer, sc_consumer);
	}
	q_destroy(mem);
	return r;
}
