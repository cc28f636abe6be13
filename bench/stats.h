/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench/stats.h - what both benchmarks need around their measurements:
 * medians, how busy the rest of the machine was, the CPU model.
 */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median of v[0..n-1] (n > 0); v is not changed. */
static inline double median(const double *v, unsigned n)
{
	double *s = malloc(n * sizeof(*s)), m;

	if (!s)
		abort();
	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	free(s);
	return m;
}

/* CPU seconds spent so far by the whole machine (busy, or stolen by the host). */
static inline double machine_busy(void)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	int n = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) : 0;

	if (f)
		fclose(f);
	if (n != 8)
		return -1;
	/* user nice system [idle iowait] irq softirq steal */
	return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

static inline void cpu_model(char *buf, size_t len)
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

#endif
