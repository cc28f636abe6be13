/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: the clock of the request stamps (xseg_sys_stamp_ns, sys/user).
 * Where the kernel keeps time with the TSC (clocksource "tsc") it must take
 * the TSC way, and every stamp must lie between CLOCK_MONOTONIC read just
 * before and just after it (give or take TOL: the design keeps it within tens
 * of ns; TOL only absorbs a machine that stalls between the reads), across
 * re-anchoring (naps longer than its 4 ms span) and in several threads at
 * once, each never going back. With XSEG_STAMP_CLOCK=monotonic (checked in a
 * child started with it) it is CLOCK_MONOTONIC itself: inside the bracket,
 * exactly. A wrong rate or a lost anchor puts stamps off by far more than TOL.
 */
#include "../xtest.h"
#include "sys/domain.h"
#include "sys/user/stamp.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOL	10000ull	/* ns: the design error is ~0.1 us; a rate off by 0.25% is 10 us after 4 ms */
#define N	200000

static uint64_t mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* @n stamps, each bracketed by clock reads; a nap of @nap_us every 1000. The worst error, ns. */
static uint64_t bracket(uint32_t n, unsigned nap_us, uint64_t tol)
{
	uint64_t last = 0, worst = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t a = mono(), s = xseg_sys_stamp_ns(), b = mono();

		CHECKF(s >= last, "stamp %u went back: %llu after %llu", i, (unsigned long long)s,
		       (unsigned long long)last);
		CHECKF(s + tol >= a && s <= b + tol, "stamp %u is %llu, the clock read %llu before it and %llu "
		       "after", i, (unsigned long long)s, (unsigned long long)a, (unsigned long long)b);
		if (s < a && a - s > worst)
			worst = a - s;
		if (s > b && s - b > worst)
			worst = s - b;
		last = s;
		if (nap_us && i % 1000 == 999)
			usleep(nap_us);
	}
	return worst;
}

static bool clocksource_tsc(void)
{
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
	char cs[32] = "";

	if (!f)
		return false;
	if (!fgets(cs, sizeof(cs), f))
		cs[0] = 0;
	fclose(f);
	return !strcmp(cs, "tsc\n");
}

static void test_way(void)
{
#if defined(__x86_64__)
	CHECKF(xseg_sys_stamp_tsc() == clocksource_tsc(), "stamps from the TSC: %d, clocksource tsc: %d",
	       xseg_sys_stamp_tsc(), clocksource_tsc());
#else
	CHECK(xseg_sys_stamp_tsc() == 0);
#endif
	printf("# stamps from the %s\n", xseg_sys_stamp_tsc() ? "TSC" : "clock");
}

static void test_bracket(void)
{
	uint64_t w1 = bracket(N, 0, TOL), w2 = bracket(20000, 5000, TOL);

	printf("# worst distance outside the bracket: %llu ns busy, %llu ns with 5 ms naps\n",
	       (unsigned long long)w1, (unsigned long long)w2);
}

static void *thread_main(void *arg)
{
	(void)arg;
	bracket(N / 4, 0, TOL);
	bracket(2000, 4500, TOL);
	return NULL;
}

static void test_threads(void)
{
	pthread_t t[4];

	for (int i = 0; i < 4; i++)
		CHECK(pthread_create(&t[i], NULL, thread_main, NULL) == 0);
	for (int i = 0; i < 4; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
}

/* In a child with XSEG_STAMP_CLOCK=monotonic: the clock itself, no tolerance. */
static void test_forced_monotonic(const char *self)
{
	pid_t pid = fork();
	int st;

	CHECK(pid >= 0);
	if (!pid) {
		setenv("XSEG_STAMP_CLOCK", "monotonic", 1);
		execl(self, self, "monotonic", (char *)NULL);
		_exit(127);
	}
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child with XSEG_STAMP_CLOCK=monotonic: status %#x", st);
}

int main(int argc, char **argv)
{
	xt_watchdog(120);
	if (argc > 1 && !strcmp(argv[1], "monotonic")) {
		CHECK(xseg_sys_stamp_tsc() == 0);
		bracket(N, 0, 0);
		return 0;
	}
	RUN(test_way);
	RUN(test_bracket);
	RUN(test_threads);
	test_forced_monotonic(argv[0]);
	printf("ok test_forced_monotonic\n");
	return 0;
}
