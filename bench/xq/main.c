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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "bench.h"

#define MAX_REPS 31

static const struct bench_impl impls[] = {
	{ "xq",            "xq",        0, bench_xq_run },
	{ "rte_ring_mpmc", "rte MP/MC", 0, bench_rte_run },
	{ "rte_ring_spsc", "rte SP/SC", 1, bench_rte_run },
	{ "boost",         "boost",     0, bench_boost_run },
	{ "spinlock",      "spinlock",  0, bench_spin_run },
};
#define NIMPLS (sizeof(impls) / sizeof(impls[0]))

/* Ratios: xq over these columns. */
static const unsigned ratio_of[] = { 1, 3, 4 };
#define NRATIOS (sizeof(ratio_of) / sizeof(ratio_of[0]))

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
}

void bench_pc_end(struct bench_pc *pc)
{
	pc->t1 = bench_now();
}

double bench_run_pc(struct bench_pc *pc, void *(*prod)(void *), void *(*cons)(void *))
{
	pthread_t tp, tc;

	if (pthread_barrier_init(&pc->start, NULL, 2) ||
	    pthread_create(&tp, NULL, prod, pc) || pthread_create(&tc, NULL, cons, pc))
		bench_fail(pc->impl, "cannot start the threads");
	pthread_join(tp, NULL);
	pthread_join(tc, NULL);
	pthread_barrier_destroy(&pc->start);
	return pc->t1 - pc->t0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, unsigned n)
{
	double s[MAX_REPS];

	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* A short warm-up run sizes the measured runs to about @secs each. */
static uint64_t calibrate(const struct bench_impl *impl, int sc, double secs)
{
	const uint64_t n0 = 1u << 16;
	double t = impl->run(impl, sc, n0), n;

	n = secs * (double)n0 / (t > 1e-6 ? t : 1e-6);
	if (n < n0)
		n = n0;
	if (n > (double)(1ull << 31))
		n = (double)(1ull << 31);
	return ((uint64_t)n + BENCH_BATCH - 1) / BENCH_BATCH * BENCH_BATCH;
}

static void measure(unsigned reps, double secs)
{
	uint64_t n[NIMPLS];
	unsigned sc, i, r;

	for (sc = 0; sc < BENCH_NSCENARIOS; sc++) {
		for (i = 0; i < NIMPLS; i++)
			n[i] = calibrate(&impls[i], (int)sc, secs);
		for (r = 0; r < reps; r++)
			for (i = 0; i < NIMPLS; i++)
				samples[sc][i][r] = (double)n[i] / impls[i].run(&impls[i], (int)sc, n[i]) / 1e6;
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
		printf(" %10s", i == 0 ? "xq/rteMPMC" : i == 1 ? "xq/boost" : "xq/spin");
	printf("\n");
	for (sc = 0; sc < BENCH_NSCENARIOS; sc++) {
		printf("%-16s", scenarios[sc].label);
		for (i = 0; i < NIMPLS; i++)
			printf(" %10.2f", medians[sc][i]);
		for (i = 0; i < NRATIOS; i++)
			printf(" %9.2fx", medians[sc][0] / medians[sc][ratio_of[i]]);
		printf("\n");
	}
}

static void cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256], *p;

	snprintf(buf, len, "unknown");
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "model name", 10) || !(p = strchr(line, ':')))
			continue;
		p += strspn(p + 1, " \t") + 1;
		p[strcspn(p, "\n")] = 0;
		snprintf(buf, len, "%s", p);
		for (p = buf; *p; p++)
			if (*p == '"' || *p == '\\')
				*p = ' ';
		break;
	}
	if (f)
		fclose(f);
}

static void write_json(const char *path, unsigned reps, double secs)
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
	fprintf(f, "  \"machine\": {\"cpus\": %ld, \"model\": \"%s\", \"pinned\": %s},\n",
		sysconf(_SC_NPROCESSORS_ONLN), model, pinned ? "true" : "false");
	fprintf(f, "  \"config\": {\"capacity\": %u, \"batch\": %u, \"repetitions\": %u, "
		"\"secondsPerRun\": %g, \"statistic\": \"median\"},\n  \"rows\": [\n",
		BENCH_CAP, BENCH_BATCH, reps, secs);
	for (sc = 0; sc < BENCH_NSCENARIOS; sc++) {
		fprintf(f, "    {\"scenario\": \"%s\", \"label\": \"%s\", \"unit\": \"Mops/s\",\n",
			scenarios[sc].id, scenarios[sc].label);
		fprintf(f, "     \"results\": {");
		for (i = 0; i < NIMPLS; i++)
			fprintf(f, "%s\"%s\": %.3f", i ? ", " : "", impls[i].key, medians[sc][i]);
		fprintf(f, "},\n     \"ratios\": {");
		for (i = 0; i < NRATIOS; i++)
			fprintf(f, "%s\"xq/%s\": %.3f", i ? ", " : "", impls[ratio_of[i]].key,
				medians[sc][0] / medians[sc][ratio_of[i]]);
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
	double secs = 0.2, t0;
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
	/* Pin the single-thread runs to CPU 0, the 1P1C threads to CPUs 0 and 1. */
	pinned = sched_getaffinity(0, sizeof(set), &set) == 0 &&
		 CPU_ISSET(0, &set) && CPU_ISSET(1, &set);
	if (!pinned)
		fprintf(stderr, "xqbench: CPUs 0 and 1 are not both available: running unpinned\n");
	pin(0);
	t0 = bench_now();
	measure(reps, secs);
	print_table(reps);
	printf("(%.1f s of measuring)\n", bench_now() - t0);
	if (json) {
		write_json(json, reps, secs);
		printf("wrote %s\n", json);
	}
	return 0;
}
