/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench/xq/bench.h - the harness shared by the queue adapters (C and C++).
 *
 * Each adapter (q_*.c, q_*.cc) wraps one queue in a few static inline
 * functions and includes scenarios.h, which turns them into a runner. The
 * harness (main.c) calls every runner for every scenario, interleaved, and
 * reports medians.
 */
#ifndef BENCH_XQ_BENCH_H
#define BENCH_XQ_BENCH_H

#include <stdint.h>
#include <stdbool.h>
#include <pthread.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BENCH_CAP   1024u		/* capacity of every queue */
#define BENCH_BATCH 32u			/* items per batch */
#define BENCH_VMASK 0xFFFFFFu		/* values are a counter mod 2^24 */

enum bench_scenario {
	BENCH_PAIR,		/* one thread: enqueue 1, dequeue 1 */
	BENCH_PC,		/* producer on CPU 0, consumer on CPU 1, one at a time */
	BENCH_BATCH_ST,		/* one thread: enqueue 32, dequeue 32 */
	BENCH_PC_BATCH,		/* producer and consumer, batches of 32 */
	BENCH_NSCENARIOS
};

struct bench_impl {
	const char *key;	/* JSON key */
	const char *label;	/* table column */
	int mode;		/* adapter-specific (rte_ring: 1 = SP/SC) */
	/*
	 * Run @scenario on a fresh queue for about @secs seconds; returns
	 * millions of items (pairs for BENCH_PAIR) per second.
	 */
	double (*run)(const struct bench_impl *impl, int scenario, double secs);
};

double bench_xq_run(const struct bench_impl *impl, int scenario, double secs);
double bench_rte_run(const struct bench_impl *impl, int scenario, double secs);
double bench_boost_run(const struct bench_impl *impl, int scenario, double secs);
double bench_spin_run(const struct bench_impl *impl, int scenario, double secs);

/*
 * A producer/consumer run: both threads attach to @mem and meet at @start.
 * The consumer decides when the run ends: it records how many items it got
 * and sets @stop; the producer looks at @stop only when the queue is full.
 */
struct bench_pc {
	const struct bench_impl *impl;
	void *mem;
	double secs;
	unsigned batch;		/* 1 or BENCH_BATCH */
	pthread_barrier_t start;
	double t0, t1;		/* producer's start, consumer's end */
	double c0;		/* consumer's start */
	uint64_t items;		/* received by the consumer */
	int stop;
};

double bench_now(void);
/* Print "FAIL" with the queue's name and exit(1). */
void bench_fail(const struct bench_impl *impl, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 2, 3)));
/* Run @prod on CPU 0 and @cons on CPU 1; returns Mitems/s. */
double bench_run_pc(struct bench_pc *pc, void *(*prod)(void *), void *(*cons)(void *));
/* Called by each thread once attached: pins it, waits for the other one. */
void bench_pc_begin(struct bench_pc *pc, bool producer);
/* Consumer: is the run over? (looks at the clock). Producer: was it stopped? */
bool bench_pc_done(struct bench_pc *pc);
bool bench_pc_stopped(struct bench_pc *pc);

static inline void bench_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

#ifdef __cplusplus
}
#endif

#endif
