/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench/xq/main.c - runs every queue through every scenario, interleaved
 * (repetition r of every queue before repetition r+1 of any), and prints the
 * medians as a table and as JSON.
 *
 *   xqbench [-r REPS] [-t SECONDS_PER_RUN] [-o FILE.json]
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "bench.h"
#include "../stats.h"

#define MAX_REPS 31

static const struct bench_impl impls[] = {
	{ "xq",            "xq",        0, bench_xq_run },
	{ "rte_ring_mpmc", "rte MP/MC", 0, bench_rte_run },
	{ "rte_ring_spsc", "rte SP/SC", 1, bench_rte_run },
	{ "boost",         "boost",     0, bench_boost_run },
	{ "spinlock",      "spinlock",  0, bench_spin_run },
};
#define NIMPLS (sizeof(impls) / sizeof(impls[0]))

/* Ratio columns: xq's median over the median of impls[col]. */
static const struct {
	unsigned col;
	const char *label;
} ratios[] = { { 1, "xq/rteMPMC" }, { 3, "xq/boost" }, { 4, "xq/spin" } };
#define NRATIOS (sizeof(ratios) / sizeof(ratios[0]))

static const struct {
	const char *id, *label;
} scenarios[BENCH_NSCENARIOS] = {
	[BENCH_PAIR]     = { "1t_pair",      "1T enq+deq pair" },
	[BENCH_PC]       = { "1p1c",         "1P+1C" },
	[BENCH_BATCH_ST] = { "1t_batch32",   "1T batch 32" },
	[BENCH_PC_BATCH] = { "1p1c_batch32", "1P+1C batch 32" },
};

static bool pinned;
static double samples[BENCH_NSCENARIOS][NIMPLS][MAX_REPS];
static double medians[BENCH_NSCENARIOS][NIMPLS];

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void bench_fail(const struct bench_impl *impl, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "xqbench: FAIL [%s]: ", impl ? impl->key : "harness");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void pin(int cpu)
{
	cpu_set_t set;
	int r;

	if (!pinned)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	r = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (r)
		bench_fail(NULL, "pthread_setaffinity_np(CPU %d): %s", cpu, strerror(r));
}

void bench_pc_begin(struct bench_pc *pc, bool producer)
{
	pin(producer ? 0 : 1);
	pthread_barrier_wait(&pc->start);
	if (producer)
		pc->t0 = bench_now();
	else
		pc->c0 = bench_now();
}

bool bench_pc_done(struct bench_pc *pc)
{
	double t = bench_now();

	if (t - pc->c0 < pc->secs)
		return false;
	pc->t1 = t;
	__atomic_store_n(&pc->stop, 1, __ATOMIC_RELEASE);
	return true;
}

bool bench_pc_stopped(struct bench_pc *pc)
{
	return __atomic_load_n(&pc->stop, __ATOMIC_ACQUIRE) != 0;
}

double bench_run_pc(struct bench_pc *pc, void *(*prod)(void *), void *(*cons)(void *))
{
	pthread_t tp, tc;

	pc->stop = 0;
	pc->items = 0;
	if (pthread_barrier_init(&pc->start, NULL, 2) ||
	    pthread_create(&tp, NULL, prod, pc) || pthread_create(&tc, NULL, cons, pc))
		bench_fail(pc->impl, "cannot start the threads");
	pthread_join(tp, NULL);
	pthread_join(tc, NULL);
	pthread_barrier_destroy(&pc->start);
	return (double)pc->items / (pc->t1 - pc->t0) / 1e6;
}

/*
 * Core-to-core round trip between CPUs 0 and 1, in ns (median of 5 trials):
 * the price of moving a cache line there and back, which bounds the 1P+1C
 * rows. On a VM it changes when the host moves the vCPUs, so it is measured
 * before and after.
 */
#define PP_ROUNDS 10000u
static _Alignas(64) atomic_uint_fast64_t pp_ball;
static pthread_barrier_t pp_start;
static double pp_secs;

/* CPU 1 serves 0 and times the rally; CPU 0 answers even numbers with odd. */
static void *pp_thread(void *arg)
{
	uint64_t me = (uint64_t)(uintptr_t)arg, i;
	double t0 = 0;

	pin((int)me);
	pthread_barrier_wait(&pp_start);
	if (me == 1) {
		t0 = bench_now();
		atomic_store_explicit(&pp_ball, 0, memory_order_release);
	}
	for (i = me; i < 2 * PP_ROUNDS; i += 2) {
		while (atomic_load_explicit(&pp_ball, memory_order_acquire) != i)
			bench_relax();	/* as in the scenarios (and faster than without) */
		atomic_store_explicit(&pp_ball, i + 1, memory_order_release);
	}
	if (me == 1)
		pp_secs = bench_now() - t0;
	return NULL;
}


static double pingpong_ns(void)
{
	double trial[5];
	pthread_t a, b;
	unsigned k;

	for (k = 0; k < 5; k++) {
		atomic_store(&pp_ball, UINT64_MAX);
		if (pthread_barrier_init(&pp_start, NULL, 2) ||
		    pthread_create(&a, NULL, pp_thread, (void *)0) ||
		    pthread_create(&b, NULL, pp_thread, (void *)1))
			bench_fail(NULL, "cannot start the threads");
		pthread_join(a, NULL);
		pthread_join(b, NULL);
		pthread_barrier_destroy(&pp_start);
		trial[k] = pp_secs / PP_ROUNDS * 1e9;
	}
	return median(trial, 5);
}

/*
 * What one slot costs on one thread, in isolation (ns per slot, median of 5
 * trials): the floor argument of docs/xq.md. A batch pair of rte_ring copies
 * each item with a plain store and a plain load; xq's batch pair takes each
 * slot with one CAS on the way in and one on the way out (a locked
 * instruction on x86, ordered against everything around it); a single
 * operation also takes an FAA on a counter. The slots are a ring of 4096
 * words, as the benchmark's queue (capacity 1024).
 */
#define FL_SLOTS 4096u
#define FL_ITERS (1u << 22)
static _Alignas(64) uint64_t fl_ring[FL_SLOTS];
static _Alignas(64) uint64_t fl_counter;
static volatile uint64_t fl_sink;

enum { FL_PLAIN, FL_CAS, FL_FAA, FL_NKINDS };
static const char *const fl_keys[FL_NKINDS] = { "plainStoreLoadNs", "casNs", "faaNs" };

static double floor_trial(int kind)
{
	uint64_t i, acc = 0;
	double t0 = bench_now(), t;

	for (i = 0; i < FL_ITERS; i++) {
		uint64_t *w = &fl_ring[i & (FL_SLOTS - 1)];

		if (kind == FL_PLAIN) {
			__atomic_store_n(w, i, __ATOMIC_RELAXED);
			acc += __atomic_load_n(&fl_ring[(i - 32) & (FL_SLOTS - 1)], __ATOMIC_RELAXED);
		} else if (kind == FL_CAS) {
			uint64_t e = __atomic_load_n(w, __ATOMIC_ACQUIRE);

			acc += __atomic_compare_exchange_n(w, &e, e + i, false, __ATOMIC_ACQ_REL,
							   __ATOMIC_ACQUIRE);
		} else {
			acc += __atomic_fetch_add(&fl_counter, 1, __ATOMIC_ACQ_REL);
		}
	}
	t = bench_now() - t0;
	fl_sink = acc;
	return t / FL_ITERS * 1e9;
}

static void slot_floor(double ns[FL_NKINDS])
{
	double trial[FL_NKINDS][5];
	unsigned k, r;

	for (r = 0; r < 5; r++)		/* interleaved, as the scenarios */
		for (k = 0; k < FL_NKINDS; k++)
			trial[k][r] = floor_trial((int)k);
	for (k = 0; k < FL_NKINDS; k++)
		ns[k] = median(trial[k], 5);
}

/* Per row: one short warm-up run of every queue, then the repetitions. */
static void measure(unsigned reps, double secs)
{
	unsigned sc, i, r;

	for (sc = 0; sc < BENCH_NSCENARIOS; sc++) {
		for (i = 0; i < NIMPLS; i++)
			impls[i].run(&impls[i], (int)sc, secs / 4);
		for (r = 0; r < reps; r++)
			for (i = 0; i < NIMPLS; i++)
				samples[sc][i][r] = impls[i].run(&impls[i], (int)sc, secs);
		for (i = 0; i < NIMPLS; i++)
			medians[sc][i] = median(samples[sc][i], reps);
	}
}

static void print_table(unsigned reps)
{
	unsigned sc, i;

	printf("xq queue benchmark: capacity %u, batch %u, median of %u runs, Mops/s "
	       "(higher is better; row 1 counts pairs, the others items)%s\n",
	       BENCH_CAP, BENCH_BATCH, reps, pinned ? "" : " [NOT PINNED]");
	printf("%-16s", "scenario");
	for (i = 0; i < NIMPLS; i++)
		printf(" %10s", impls[i].label);
	for (i = 0; i < NRATIOS; i++)
		printf(" %10s", ratios[i].label);
	printf("\n");
	for (sc = 0; sc < BENCH_NSCENARIOS; sc++) {
		printf("%-16s", scenarios[sc].label);
		for (i = 0; i < NIMPLS; i++)
			printf(" %10.2f", medians[sc][i]);
		for (i = 0; i < NRATIOS; i++)
			printf(" %9.2fx", medians[sc][0] / medians[sc][ratios[i].col]);
		printf("\n");
	}
}

static double self_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static void write_json(const char *path, unsigned reps, double secs, double others,
		       const double pp[2], const double fl[FL_NKINDS])
{
	char tmp[4096], date[32], model[128];
	time_t now = time(NULL);
	struct tm tm;
	unsigned sc, i, r;
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		bench_fail(NULL, "cannot write %s: %s", tmp, strerror(errno));
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	cpu_model(model, sizeof(model));
	fprintf(f, "{\n  \"schemaVersion\": 1,\n  \"benchmark\": \"xq\",\n  \"date\": \"%s\",\n", date);
	fprintf(f, "  \"machine\": {\"cpus\": %ld, \"model\": \"%s\", \"pinned\": %s, "
		"\"otherLoad\": %.2f, \"pingPongNs\": [%.0f, %.0f]},\n",
		sysconf(_SC_NPROCESSORS_ONLN), model, pinned ? "true" : "false", others,
		pp[0], pp[1]);
	fprintf(f, "  \"config\": {\"capacity\": %u, \"batch\": %u, \"repetitions\": %u, "
		"\"secondsPerRun\": %g, \"statistic\": \"median\"},\n",
		BENCH_CAP, BENCH_BATCH, reps, secs);
	fprintf(f, "  \"slotFloor\": {");
	for (i = 0; i < FL_NKINDS; i++)
		fprintf(f, "%s\"%s\": %.2f", i ? ", " : "", fl_keys[i], fl[i]);
	fprintf(f, "},\n  \"rows\": [\n");
	for (sc = 0; sc < BENCH_NSCENARIOS; sc++) {
		fprintf(f, "    {\"scenario\": \"%s\", \"label\": \"%s\", \"unit\": \"Mops/s\",\n",
			scenarios[sc].id, scenarios[sc].label);
		fprintf(f, "     \"results\": {");
		for (i = 0; i < NIMPLS; i++)
			fprintf(f, "%s\"%s\": %.3f", i ? ", " : "", impls[i].key, medians[sc][i]);
		fprintf(f, "},\n     \"ratios\": {");
		for (i = 0; i < NRATIOS; i++)
			fprintf(f, "%s\"xq/%s\": %.3f", i ? ", " : "", impls[ratios[i].col].key,
				medians[sc][0] / medians[sc][ratios[i].col]);
		fprintf(f, "},\n     \"samples\": {");
		for (i = 0; i < NIMPLS; i++) {
			fprintf(f, "%s\"%s\": [", i ? ", " : "", impls[i].key);
			for (r = 0; r < reps; r++)
				fprintf(f, "%s%.3f", r ? ", " : "", samples[sc][i][r]);
			fprintf(f, "]");
		}
		fprintf(f, "}}%s\n", sc + 1 < BENCH_NSCENARIOS ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
	if (fclose(f) || rename(tmp, path))
		bench_fail(NULL, "cannot write %s: %s", path, strerror(errno));
}

int main(int argc, char **argv)
{
	const char *json = NULL;
	unsigned reps = 7;
	double secs = 0.2, t0, busy0, self0, wall, others, pp[2], fl[FL_NKINDS];
	cpu_set_t set;
	int c;

	while ((c = getopt(argc, argv, "r:t:o:")) != -1) {
		if (c == 'r')
			reps = (unsigned)atoi(optarg);
		else if (c == 't')
			secs = atof(optarg);
		else if (c == 'o')
			json = optarg;
		else
			return 2;
	}
	if (reps < 1 || reps > MAX_REPS || secs <= 0) {
		fprintf(stderr, "usage: xqbench [-r 1..%d] [-t seconds] [-o file.json]\n", MAX_REPS);
		return 2;
	}
	/* The JSON is written to FILE.tmp and renamed over FILE: only ever a regular file. */
	if (json) {
		struct stat st;

		if (lstat(json, &st) == 0 && !S_ISREG(st.st_mode)) {
			fprintf(stderr, "xqbench: -o %s: not a regular file (the result replaces it)\n", json);
			return 2;
		}
	}
	/* Pin the single-thread runs to CPU 0, the 1P1C threads to CPUs 0 and 1. */
	pinned = sched_getaffinity(0, sizeof(set), &set) == 0 &&
		 CPU_ISSET(0, &set) && CPU_ISSET(1, &set);
	if (!pinned)
		fprintf(stderr, "xqbench: CPUs 0 and 1 are not both available: running unpinned\n");
	pin(0);
	pp[0] = pingpong_ns();
	t0 = bench_now();
	busy0 = machine_busy();
	self0 = self_cpu();
	measure(reps, secs);
	wall = bench_now() - t0;
	/* Everything else that ran meanwhile, in CPUs (0 = a quiet machine). */
	others = (machine_busy() - busy0 - (self_cpu() - self0)) / wall;
	if (busy0 < 0 || others < 0)
		others = 0;
	pp[1] = pingpong_ns();
	slot_floor(fl);
	print_table(reps);
	printf("(%.1f s of measuring; other processes kept %.2f of the %ld CPUs busy meanwhile%s)\n",
	       wall, others, sysconf(_SC_NPROCESSORS_ONLN),
	       others > 0.2 ? ": the 1P+1C rows are disturbed" : "");
	printf("(CPU 0 <-> CPU 1 cache-line round trip: %.0f ns before, %.0f ns after)\n",
	       pp[0], pp[1]);
	printf("(one thread, per slot in isolation: plain store + load %.2f ns, CAS %.2f ns, "
	       "FAA on one counter %.2f ns)\n", fl[FL_PLAIN], fl[FL_CAS], fl[FL_FAA]);
	if (json) {
		write_json(json, reps, secs, others, pp, fl);
		printf("wrote %s\n", json);
	}
	return 0;
}
