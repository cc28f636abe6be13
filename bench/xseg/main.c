/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench/xseg/main.c - the request round trip of the segment core between two
 * processes, against the raw wake-up mechanisms measured in the same run,
 * and the request throughput with 1..128 requests in flight.
 *
 *   xsegbench [-r REPS] [-n ROUND_TRIPS] [-t MAX_SECONDS_PER_RUN]
 *             [-T THROUGHPUT_SECONDS] [-p PARTS] [-m ROW,ROW...] [-o FILE.json] [-v] [-H]
 *
 * PARTS: c = round trips across CPUs, s = on one CPU, t = throughput,
 * g = how cost grows (scale.c) (default cstg); -m runs only the rows with these JSON keys (e.g.
 * xseg_busy,raw_spin for an A/B of the polling path); -v prints every run
 * to stderr; -H makes the segment huge=1 (2 MiB pages: reserve some, and
 * see docs/segtypes.md). See bench/README.md.
 *
 * Every run forks a server and a client (they die with us:
 * PR_SET_PDEATHSIG) and is bounded: each child has an alarm, the harness a
 * deadline, and a lost wake-up fails the run (see xs.c). The posix segment
 * is destroyed at exit, also after a failure, SIGINT, SIGTERM or SIGPIPE.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "xseg/xseg.h"
#include "drivers/user/posixfd.h"
#include "xsb.h"
#include "../stats.h"

#define MAX_REPS	31
#define GOAL		1.25	/* the project's goal: xseg within 1.25x of the raw mechanism */
#define WARMUP_ROUNDS	500u	/* per latency run, not recorded */
#define NDEPTHS		8

static const struct xsb_mech mechs[] = {
#define M_XFUTEX 0
	{ "xseg_futex",        "xseg futex",             "futex",   XSB_SLEEP, 0, 0, xsb_xseg_server, xsb_xseg_client },
#define M_XPOSIXFD 1
	{ "xseg_posixfd",      "xseg posixfd",           "posixfd", XSB_SLEEP, 0, 0, xsb_xseg_server, xsb_xseg_client },
#define M_XPOSIX 2
	{ "xseg_posix",        "xseg posix",             "posix",   XSB_SLEEP, 0, 0, xsb_xseg_server, xsb_xseg_client },
#define M_XPOSIX_BLK 3
	{ "xseg_posix_sigio_blocked", "xseg posix, SIGIO blocked", "posix", XSB_SLEEP, 1, 0,
	  xsb_xseg_server, xsb_xseg_client },
#define M_XWAIT0 4
	{ "xseg_futex_wait_spin0", "xseg futex, xseg_wait spin 0", "futex", XSB_WAIT0, 0, 0,
	  xsb_xseg_server, xsb_xseg_client },
#define M_XBUSY 5
	{ "xseg_busy",         "xseg busy poll",         "futex",   XSB_BUSY,  0, 0, xsb_xseg_server, xsb_xseg_client },
#define M_RFUTEX 6
	{ "raw_futex",         "futex wait/wake",        NULL,      XSB_SLEEP, 0, 0, xsb_futex_server, xsb_futex_client },
#define M_RPIPE 7
	{ "raw_pipe",          "pipe read/write",        NULL,      XSB_SLEEP, 0, 0, xsb_pipe_server, xsb_pipe_client },
#define M_REVENTFD 8
	{ "raw_eventfd",       "eventfd read/write",     NULL,      XSB_SLEEP, 0, 0, xsb_eventfd_server, xsb_eventfd_client },
#define M_RSIGIO 9
	{ "raw_sigio",         "SIGIO tgkill+sigtimedwait", NULL,   XSB_SLEEP, 0, 0, xsb_sigio_server, xsb_sigio_client },
#define M_RSPIN 10
	{ "raw_spin",          "shm spin",               NULL,      XSB_BUSY,  0, 0, xsb_spin_server, xsb_spin_client },
#define M_XBUSY_NT 11
	{ "xseg_busy_no_timing", "xseg busy, NO_TIMING", "futex",   XSB_BUSY,  0, 1, xsb_xseg_server, xsb_xseg_client },
#define M_RPIPEPOLL 12
	{ "raw_pipe_poll",     "pipe ppoll+read",        NULL,      XSB_SLEEP, 0, 0, xsb_pipe_poll_server,
	  xsb_pipe_poll_client },
#define M_FLOOR 13
	{ "floor_spsc_rings",  "floor: 2 SPSC rings",    NULL,      XSB_BUSY,  0, 0, xsb_floor_server, xsb_floor_client },
#define NLAT 14
#define M_XADAPT 14
	{ "xseg_futex_adaptive", "futex, default spin",  "futex",   XSB_ADAPTIVE, 0, 0, xsb_xseg_server, xsb_xseg_client },
};

/*
 * xseg row vs raw row, and the goal for their ratio (issue 15): a sleeping
 * round trip at most GOAL its raw mechanism, a busy-polled one at most
 * BUSY_GOAL the raw spin; 0: no goal (a reference line).
 */
#define BUSY_GOAL	2.0
static const struct {
	int x, raw;
	const char *why;
	double goal;
} pairs[] = {
	{ M_XFUTEX, M_RFUTEX, "same mechanism", GOAL },
	{ M_XPOSIXFD, M_RPIPE, "a FIFO is a pipe (a blocking read: one system call where posixfd takes two)", 0 },
	{ M_XPOSIXFD, M_RPIPEPOLL, "same mechanism: a FIFO waited for in ppoll, then read", GOAL },
	{ M_XPOSIX, M_RSIGIO, "same mechanism", GOAL },
	{ M_XPOSIX, M_REVENTFD, "closest kernel wake-up", 0 },
	{ M_XPOSIX_BLK, M_RSIGIO, "same mechanism, without the driver's sigprocmask per sleep", GOAL },
	{ M_XWAIT0, M_RFUTEX, "xseg_wait with spin 0: straight to sleep", GOAL },
	{ M_XBUSY, M_RSPIN, "both poll shared memory", BUSY_GOAL },
	{ M_XBUSY_NT, M_RSPIN, "both poll shared memory; ports bound with XSEG_PORT_NO_TIMING", BUSY_GOAL },
	{ M_FLOOR, M_RSPIN, "not xseg: 64-byte records through two DPDK SPSC rings, the structure per-producer "
	  "lanes would give", 0 },
};
#define NPAIRS (sizeof(pairs) / sizeof(pairs[0]))

static const uint32_t depths[NDEPTHS] = { 1, 2, 4, 8, 16, 32, 64, 128 };
static const int tput_mechs[] = { M_XADAPT, M_XBUSY, M_XBUSY_NT, M_FLOOR };
static const char *const tput_labels[] = { "futex, 20 us spin", "busy poll", "busy, NO_TIMING", "floor: SPSC rings" };
#define NTPUT 4
#define T_BUSY 1
#define T_BUSY_NT 2
#define T_FLOOR 3
#define FLOOR_GOAL 0.5	/* xseg busy poll at >= 8 in flight: at least half the floor */

struct placement {
	const char *key, *label;
	int client_cpu, server_cpu;
	bool busy;			/* run the polling rows (not on one CPU) */
	bool done;
	double med[NLAT][MAX_REPS], p99[NLAT][MAX_REPS];
	uint32_t n[NLAT][MAX_REPS];
	double med_us[NLAT], p99_us[NLAT];
};

static struct placement places[2] = {
	{ "cross_cpu", "client on CPU 0, server on CPU 1", 0, 1, true, false, {{0}}, {{0}}, {{0}}, {0}, {0} },
	{ "same_cpu", "client and server on CPU 0", 0, 0, false, false, {{0}}, {{0}}, {{0}}, {0}, {0} },
};

static double tput[NTPUT][NDEPTHS][MAX_REPS], tput_med[NTPUT][NDEPTHS];
static bool tput_done;

static const char *only;	/* -m: the rows to run (keys, comma-separated), or NULL for all */

/* Is row @m one -m asked for? */
static bool wanted(int m)
{
	const char *k = mechs[m].key, *p = only;
	size_t n = strlen(k);

	if (!only)
		return true;
	while ((p = strstr(p, k))) {
		if ((p == only || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
			return true;
		p += n;
	}
	return false;
}

static struct xsb_run *run;
static pid_t parent_pid, children[2];
static int child_role = -1;
static bool pinned;
static int verbose;
static char segname[64], spec[128];

uint64_t xsb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char *role_name(int role)
{
	return role == XSB_SERVER ? "server" : "client";
}

void xsb_fail(struct xsb_run *r, int role, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (child_role >= 0) {
		snprintf(r->err[role], sizeof(r->err[role]), "%s", msg);
		fprintf(stderr, "xsegbench: FAIL [%s, %s]: %s\n", r->mech->key, role_name(role), msg);
		_exit(1);
	}
	fprintf(stderr, "xsegbench: FAIL: %s\n", msg);
	exit(1);
}

#define fail(...) xsb_fail(run, -1, __VA_ARGS__)

void xsb_meet(struct xsb_run *r, int role)
{
	if (role == XSB_CLIENT)	/* fault the sample pages in before the clock starts */
		memset(r->samples, 0, sizeof(r->samples[0]) * (r->rounds < XSB_MAX_SAMPLES ? r->rounds : XSB_MAX_SAMPLES));
	r->pid[role] = (int32_t)getpid();
	pthread_barrier_wait(&r->start);
}

/* ----------------------------------------------------------- processes */

static void kill_children(void)
{
	for (int i = 0; i < 2; i++)
		if (children[i] > 0) {
			kill(children[i], SIGKILL);
			waitpid(children[i], NULL, 0);
			children[i] = 0;
		}
}

static void cleanup(void)
{
	xsb_scale_cleanup();	/* scale.c's children and segments (-p g) */
	if (getpid() != parent_pid || !segname[0])
		return;
	kill_children();
	xseg_destroy_name("posix", segname);
	segname[0] = 0;
}

static void on_term(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void on_alarm(int sig)
{
	char msg[256];
	int n;

	(void)sig;
	n = snprintf(msg, sizeof(msg), "xsegbench: FAIL [%s, %s]: the run did not end in time "
		     "(%u round trips done): a lost wake-up or a hang\n", run->mech->key,
		     role_name(child_role), __atomic_load_n(&run->progress, __ATOMIC_RELAXED));
	snprintf(run->err[child_role], sizeof(run->err[0]), "timed out");
	if (n > 0 && write(2, msg, (size_t)n) < 0)
		_exit(3);
	_exit(3);
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		xsb_fail(run, child_role, "sched_setaffinity(CPU %d): %s", cpu, strerror(errno));
}

static pid_t spawn(int role, int cpu, unsigned alarm_s)
{
	sigset_t none;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid)
		return pid;
	child_role = role;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent_pid)
		_exit(9);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGALRM, on_alarm);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	alarm(alarm_s);
	if (pinned)
		pin(cpu);
	if (role == XSB_SERVER)
		run->mech->server(run);
	else
		run->mech->client(run);
	_exit(0);
}

/* Reap both children; any failure kills the other one and fails the benchmark. */
static void reap(double limit_s)
{
	uint64_t deadline = xsb_now_ns() + (uint64_t)(limit_s * 1e9);
	sigset_t chld;
	int left = 2;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	while (left) {
		int status;
		pid_t p;

		while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
			int who = p == children[XSB_SERVER] ? XSB_SERVER : p == children[XSB_CLIENT] ? XSB_CLIENT : -1;

			if (who < 0)
				continue;
			children[who] = 0;
			left--;
			if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
				continue;
			kill_children();
			if (WIFSIGNALED(status))
				fail("%s: the %s was killed by signal %d (%s)", run->mech->key, role_name(who),
				     WTERMSIG(status), strsignal(WTERMSIG(status)));
			fail("%s: the %s failed (exit %d): %s", run->mech->key, role_name(who),
			     WEXITSTATUS(status), run->err[who][0] ? run->err[who] : "see above");
		}
		if (!left)
			break;
		uint64_t now = xsb_now_ns();

		if (now >= deadline) {
			kill_children();
			fail("%s: the run did not end within %.0f s (%u round trips done)", run->mech->key,
			     limit_s, run->progress);
		}
		struct timespec ts = { (time_t)((deadline - now) / 1000000000u),
				       (long)((deadline - now) % 1000000000u) };
		sigtimedwait(&chld, NULL, &ts);
	}
}

/*
 * One run of @m: the server on @scpu, the client on @ccpu. depth 0: a
 * latency run of up to @rounds recorded round trips (after WARMUP_ROUNDS)
 * or @max_s seconds; depth N: a throughput run of @max_s seconds.
 */
static void run_once(int m, int ccpu, int scpu, uint32_t rounds, uint32_t depth, double max_s)
{
	pthread_barrierattr_t ba;
	unsigned alarm_s = (unsigned)max_s + 10;

	run->mech = &mechs[m];
	run->warmup = depth ? 0 : WARMUP_ROUNDS;
	run->rounds = rounds;
	run->depth = depth;
	run->max_ns = (uint64_t)(max_s * 1e9);
	run->pid[0] = run->pid[1] = 0;
	run->stop = 0;
	run->progress = 0;
	run->req_word = run->rep_word = 0;
	run->err[0][0] = run->err[1][0] = 0;
	run->t_first = run->t_last = run->elapsed_ns = run->completed = 0;
	run->nsamples = 0;
	for (int i = 0; i < 4; i++)
		run->fds[i] = -1;
	if (mechs[m].server == xsb_pipe_server) {
		if (pipe(&run->fds[0]) || pipe(&run->fds[2]))
			fail("pipe: %s", strerror(errno));
	} else if (mechs[m].server == xsb_pipe_poll_server) {
		if (pipe2(&run->fds[0], O_NONBLOCK) || pipe2(&run->fds[2], O_NONBLOCK))
			fail("pipe2: %s", strerror(errno));
	} else if (mechs[m].server == xsb_eventfd_server) {
		if ((run->fds[0] = eventfd(0, 0)) < 0 || (run->fds[1] = eventfd(0, 0)) < 0)
			fail("eventfd: %s", strerror(errno));
	} else if (mechs[m].server == xsb_floor_server) {
		char err[256];

		if (xsb_floor_init(run, err, sizeof(err)))
			fail("floor rings: %s", err);
	}
	if (pthread_barrierattr_init(&ba) || pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED) ||
	    pthread_barrier_init(&run->start, &ba, 2))
		fail("cannot make a process-shared barrier");
	pthread_barrierattr_destroy(&ba);
	children[XSB_SERVER] = spawn(XSB_SERVER, scpu, alarm_s);
	children[XSB_CLIENT] = spawn(XSB_CLIENT, ccpu, alarm_s);
	for (int i = 0; i < 4; i++)
		if (run->fds[i] >= 0)
			close(run->fds[i]);
	reap(alarm_s + 5);
	pthread_barrier_destroy(&run->start);
}

/* ------------------------------------------------------------ statistics */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Median and p99 (nearest rank) of the run's samples, in us. */
static void sample_stats(double *med, double *p99)
{
	uint32_t n = run->nsamples, *s = run->samples;

	if (n < 100)
		fail("%s: only %u round trips in %.1f s", run->mech->key, n, run->max_ns / 1e9);
	qsort(s, n, sizeof(*s), cmp_u32);
	*med = (n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2.0) / 1e3;
	*p99 = s[(size_t)ceil(0.99 * n) - 1] / 1e3;
}

/* -------------------------------------------------------------- sections */

static void latency(struct placement *pl, unsigned reps, uint32_t rounds, double max_s)
{
	int rows[NLAT], nrows = 0, k;

	for (k = 0; k < NLAT; k++)
		if ((pl->busy || mechs[k].wait != XSB_BUSY) && wanted(k))
			rows[nrows++] = k;
	/* Warm-up: every row once, short, discarded. */
	for (k = 0; k < nrows; k++)
		run_once(rows[k], pl->client_cpu, pl->server_cpu, rounds / 10 + 100, 0, max_s / 4);
	/* Repetition r of every row before r+1 of any; each repetition starts one row later. */
	for (unsigned r = 0; r < reps; r++)
		for (int j = 0; j < nrows; j++) {
			int m = rows[(j + (int)r) % nrows];

			run_once(m, pl->client_cpu, pl->server_cpu, rounds, 0, max_s);
			sample_stats(&pl->med[m][r], &pl->p99[m][r]);
			pl->n[m][r] = run->nsamples;
			if (verbose)
				fprintf(stderr, "xsegbench: %s run %u %-26s median %8.2f us  p99 %8.2f us  "
					"(%u round trips in %.2f s)\n", pl->key, r + 1, mechs[m].key,
					pl->med[m][r], pl->p99[m][r], run->nsamples,
					(run->t_last - run->t_first) / 1e9);
		}
	for (k = 0; k < nrows; k++) {
		pl->med_us[rows[k]] = median(pl->med[rows[k]], reps);
		pl->p99_us[rows[k]] = median(pl->p99[rows[k]], reps);
	}
	pl->done = true;
}

static void throughput(unsigned reps, double secs)
{
	int t, d;

	for (t = 0; t < NTPUT; t++)
		for (d = 0; d < NDEPTHS && wanted(tput_mechs[t]); d++)
			run_once(tput_mechs[t], 0, 1, 0, depths[d], secs / 4);
	/*
	 * Every mechanism at one depth back to back (then the next depth, then
	 * the next repetition): a host that moves the vCPUs between placements
	 * mid-run then mostly changes them between pairs, not inside one, and
	 * xseg's sample is judged against the floor's taken just before it.
	 */
	for (unsigned r = 0; r < reps; r++)
		for (d = 0; d < NDEPTHS; d++)
			for (t = 0; t < NTPUT; t++) {
				if (!wanted(tput_mechs[t]))
					continue;
				run_once(tput_mechs[t], 0, 1, 0, depths[d], secs);
				if (!run->elapsed_ns || !run->completed)
					fail("%s: no request completed", run->mech->key);
				tput[t][d][r] = (double)run->completed / (run->elapsed_ns / 1e9);
				if (verbose)
					fprintf(stderr, "xsegbench: throughput run %u %-20s %3u in flight: "
						"%.0f requests/s\n", r + 1, mechs[tput_mechs[t]].key, depths[d],
						tput[t][d][r]);
			}
	for (t = 0; t < NTPUT; t++)
		for (d = 0; d < NDEPTHS; d++)
			tput_med[t][d] = median(tput[t][d], reps);
	tput_done = true;
}

static bool pair_done(const struct placement *pl, unsigned i)
{
	return pl->med_us[pairs[i].x] > 0 && pl->med_us[pairs[i].raw] > 0;
}

static double pair_ratio(const struct placement *pl, unsigned i)
{
	return pl->med_us[pairs[i].x] / pl->med_us[pairs[i].raw];
}

/* The median of the per-repetition ratios (runs r of both rows ran close in time). */
static double paired_ratio(const struct placement *pl, unsigned i, unsigned reps)
{
	double v[MAX_REPS];

	for (unsigned r = 0; r < reps; r++)
		v[r] = pl->med[pairs[i].x][r] / pl->med[pairs[i].raw][r];
	return median(v, reps);
}

/* ---------------------------------------------------------------- output */

static void print_latency(const struct placement *pl, unsigned reps, uint32_t rounds, double max_s)
{
	printf("\nxseg request round trip (PING, 1 in flight, 2 processes), %s%s:\n"
	       "median of %u runs of %u round trips (at most %.1f s each); us\n",
	       pl->label, pinned ? "" : " [NOT PINNED]", reps, rounds, max_s);
	printf("%-31s %8s %8s   %-26s %8s %8s %7s\n", "xseg", "median", "p99",
	       "raw mechanism", "median", "p99", "ratio");
	for (unsigned i = 0; i < NPAIRS; i++) {
		int x = pairs[i].x, w = pairs[i].raw;
		double ratio;

		if (!pair_done(pl, i))
			continue;
		ratio = pair_ratio(pl, i);
		printf("%-31s %8.2f %8.2f   %-26s %8.2f %8.2f %6.2fx%s\n", mechs[x].label, pl->med_us[x],
		       pl->p99_us[x], mechs[w].label, pl->med_us[w], pl->p99_us[w], ratio,
		       !pairs[i].goal ? " (no goal)" : ratio > pairs[i].goal ? " *" : "");
	}
	if (!pl->busy)
		printf("(no polling rows: two spinners on one CPU only take turns at the scheduler tick)\n");
}

/*
 * Row @t against the floor at depth @d, one ratio per repetition (the two
 * samples taken back to back): their median, and the range in *@lo, *@hi.
 */
static double floor_ratio(int t, int d, unsigned reps, double *lo, double *hi)
{
	double q[MAX_REPS];
	unsigned n = 0;

	for (unsigned r = 0; r < reps; r++)
		if (tput[T_FLOOR][d][r] > 0)
			q[n++] = tput[t][d][r] / tput[T_FLOOR][d][r];
	*lo = *hi = 0;
	for (unsigned i = 0; i < n; i++) {
		if (!i || q[i] < *lo)
			*lo = q[i];
		if (!i || q[i] > *hi)
			*hi = q[i];
	}
	return n ? median(q, n) : 0;
}

static void print_throughput(unsigned reps, double secs)
{
	printf("\nxseg throughput (PING, N requests in flight, client on CPU 0, server on CPU 1)%s:\n"
	       "median of %u runs of %.2f s; thousand requests/s\n", pinned ? "" : " [NOT PINNED]", reps, secs);
	printf("%-22s", "in flight");
	for (int d = 0; d < NDEPTHS; d++)
		printf(" %8u", depths[d]);
	printf("\n");
	for (int t = 0; t < NTPUT; t++) {
		printf("%-22s", tput_labels[t]);
		for (int d = 0; d < NDEPTHS; d++)
			printf(" %8.1f", tput_med[t][d] / 1e3);
		printf("\n");
	}
	/* The goal: busy poll at >= 8 in flight at least FLOOR_GOAL of the floor. */
	for (int t = T_BUSY; t <= T_BUSY_NT; t++) {
		double lo, hi;

		printf("%-22s", t == T_BUSY ? "busy poll / floor" : "NO_TIMING / floor");
		for (int d = 0; d < NDEPTHS; d++) {
			double q = floor_ratio(t, d, reps, &lo, &hi);

			printf(" %7.2fx%s", q, t == T_BUSY && depths[d] >= 8 && q < FLOOR_GOAL ? "*" : " ");
		}
		printf("\n%-22s", "  (lowest, highest)");
		for (int d = 0; d < NDEPTHS; d++) {
			floor_ratio(t, d, reps, &lo, &hi);
			printf(" %4.2f-%-4.2f", lo, hi);
		}
		printf("\n");
	}
	printf("(floor: two processes pass 64-byte records through two DPDK SPSC rte_rings, busy-polled;\n"
	       " a ratio: the median over the repetitions of xseg's sample / the floor's taken just before\n"
	       " it; goal >= %.2fx at 8 or more in flight, * below it)\n", FLOOR_GOAL);
}

/* CPU time of this process and of its reaped children. */
static double own_cpu(void)
{
	struct rusage a, b;

	getrusage(RUSAGE_SELF, &a);
	getrusage(RUSAGE_CHILDREN, &b);
	return (double)(a.ru_utime.tv_sec + a.ru_stime.tv_sec + b.ru_utime.tv_sec + b.ru_stime.tv_sec) +
	       (double)(a.ru_utime.tv_usec + a.ru_stime.tv_usec + b.ru_utime.tv_usec + b.ru_stime.tv_usec) * 1e-6;
}

static double clock_read_ns(void)
{
	uint64_t t0 = xsb_now_ns();
	volatile uint64_t sink = 0;

	for (int i = 0; i < 100000; i++)
		sink += xsb_now_ns();
	(void)sink;
	return (double)(xsb_now_ns() - t0) / 100000;
}

static void json_list(FILE *f, const double *v, unsigned n, const char *fmt)
{
	fputc('[', f);
	for (unsigned i = 0; i < n; i++) {
		if (i)
			fputs(", ", f);
		fprintf(f, fmt, v[i]);
	}
	fputc(']', f);
}

static void write_json(const char *path, unsigned reps, uint32_t rounds, double max_s, double tsecs,
		       double others, double clock_ns, double wall)
{
	char tmp[4096], date[32], model[128];
	time_t now = time(NULL);
	struct tm tm;
	bool first;
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		fail("cannot write %s: %s", tmp, strerror(errno));
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	cpu_model(model, sizeof(model));
	fprintf(f, "{\n  \"schemaVersion\": 1,\n  \"benchmark\": \"xseg\",\n  \"date\": \"%s\",\n", date);
	fprintf(f, "  \"machine\": {\"cpus\": %ld, \"model\": \"%s\", \"pinned\": %s, "
		"\"otherLoad\": %.2f, \"clockReadNs\": %.1f},\n",
		sysconf(_SC_NPROCESSORS_ONLN), model, pinned ? "true" : "false", others, clock_ns);
	fprintf(f, "  \"config\": {\"segment\": \"%s\", \"repetitions\": %u, \"roundTripsPerRun\": %u, "
		"\"warmupRoundTrips\": %u, \"maxSecondsPerRun\": %g, \"throughputSecondsPerRun\": %g, "
		"\"spinUsDefault\": %u, \"statistic\": \"median\", \"goalRatio\": %.2f, \"seconds\": %.1f},\n",
		spec, reps, rounds, WARMUP_ROUNDS, max_s, tsecs, XSEG_SPIN_US_DEFAULT, GOAL, wall);
	fprintf(f, "  \"latency\": [");
	first = true;
	for (int p = 0; p < 2; p++) {
		const struct placement *pl = &places[p];
		bool r1 = true;

		if (!pl->done)
			continue;
		fprintf(f, "%s\n    {\"placement\": \"%s\", \"clientCpu\": %d, \"serverCpu\": %d, "
			"\"unit\": \"us\",\n     \"rows\": [", first ? "" : ",", pl->key, pl->client_cpu,
			pl->server_cpu);
		first = false;
		for (int m = 0; m < NLAT; m++) {
			double n[MAX_REPS];

			if (pl->med_us[m] <= 0)
				continue;
			for (unsigned r = 0; r < reps; r++)
				n[r] = pl->n[m][r];
			fprintf(f, "%s\n      {\"mechanism\": \"%s\", \"label\": \"%s\", \"median\": %.3f, "
				"\"p99\": %.3f,\n       \"samples\": {\"median\": ", r1 ? "" : ",", mechs[m].key,
				mechs[m].label, pl->med_us[m], pl->p99_us[m]);
			r1 = false;
			json_list(f, pl->med[m], reps, "%.3f");
			fprintf(f, ", \"p99\": ");
			json_list(f, pl->p99[m], reps, "%.3f");
			fprintf(f, ", \"roundTrips\": ");
			json_list(f, n, reps, "%.0f");
			fprintf(f, "}}");
		}
		fprintf(f, "],\n     \"ratios\": [");
		r1 = true;
		for (unsigned i = 0; i < NPAIRS; i++) {
			double ratio;

			if (!pair_done(pl, i))
				continue;
			ratio = pair_ratio(pl, i);
			fprintf(f, "%s\n      {\"xseg\": \"%s\", \"raw\": \"%s\", \"why\": \"%s\", \"ratio\": %.3f, "
				"\"pairedRatio\": %.3f", r1 ? "" : ",", mechs[pairs[i].x].key,
				mechs[pairs[i].raw].key, pairs[i].why, ratio, paired_ratio(pl, i, reps));
			if (pairs[i].goal)
				fprintf(f, ", \"goal\": %.2f, \"withinGoal\": %s", pairs[i].goal,
					ratio <= pairs[i].goal ? "true" : "false");
			fprintf(f, "}");
			r1 = false;
		}
		fprintf(f, "]}");
	}
	fprintf(f, "],\n  \"throughput\": ");
	if (!tput_done) {
		fprintf(f, "null");
	} else {
		double dv[NDEPTHS];

		for (int d = 0; d < NDEPTHS; d++)
			dv[d] = depths[d];
		fprintf(f, "{\"clientCpu\": 0, \"serverCpu\": 1, \"unit\": \"requests/s\", \"inFlight\": ");
		json_list(f, dv, NDEPTHS, "%.0f");
		fprintf(f, ",\n    \"rows\": [");
		for (int t = 0; t < NTPUT; t++) {
			fprintf(f, "%s\n      {\"mechanism\": \"%s\", \"label\": \"%s\", \"median\": ", t ? "," : "",
				mechs[tput_mechs[t]].key, tput_labels[t]);
			json_list(f, tput_med[t], NDEPTHS, "%.0f");
			if (t == T_BUSY || t == T_BUSY_NT) {
				double pr[NDEPTHS], lo, hi;

				for (int d = 0; d < NDEPTHS; d++)
					pr[d] = floor_ratio(t, d, reps, &lo, &hi);
				fprintf(f, ",\n       \"pairedRatioToFloor\": ");
				json_list(f, pr, NDEPTHS, "%.3f");
			}
			fprintf(f, ",\n       \"samples\": [");
			for (int d = 0; d < NDEPTHS; d++) {
				if (d)
					fputs(", ", f);
				json_list(f, tput[t][d], reps, "%.0f");
			}
			fprintf(f, "]}");
		}
		fprintf(f, "]}");
	}
	fprintf(f, ",\n  \"scale\": ");
	xsb_scale_json(f);
	fprintf(f, "\n}\n");
	if (fclose(f) || rename(tmp, path))
		fail("cannot write %s: %s", path, strerror(errno));
}

int main(int argc, char **argv)
{
	const char *json = NULL, *parts = "cstg";
	unsigned reps = 5;
	uint32_t rounds = 20000;
	double max_s = 2.0, tsecs = 0.2, t0, busy0, own0, wall, others, clock_ns;
	struct xseg_config cfg;
	struct sigaction sa;
	char err[256] = "";
	sigset_t chld;
	cpu_set_t set;
	int c, r, huge = 0;

	while ((c = getopt(argc, argv, "r:n:t:T:p:o:m:vH")) != -1) {
		if (c == 'r')
			reps = (unsigned)atoi(optarg);
		else if (c == 'n')
			rounds = (uint32_t)atol(optarg);
		else if (c == 't')
			max_s = atof(optarg);
		else if (c == 'T')
			tsecs = atof(optarg);
		else if (c == 'p')
			parts = optarg;
		else if (c == 'o')
			json = optarg;
		else if (c == 'm')
			only = optarg;
		else if (c == 'v')
			verbose = 1;
		else if (c == 'H')
			huge = 1;
		else
			return 2;
	}
	if (reps < 1 || reps > MAX_REPS || rounds < 100 || rounds > XSB_MAX_SAMPLES || max_s <= 0 ||
	    max_s > 60 || tsecs <= 0 || tsecs > 60 || strspn(parts, "cstg") != strlen(parts)) {
		fprintf(stderr, "usage: xsegbench [-r 1..%d] [-n 100..%u round trips] [-t max seconds per run] "
			"[-T throughput seconds per run] [-p cstg] [-m row,row...] [-o file.json] [-v] [-H]\n",
			MAX_REPS, XSB_MAX_SAMPLES);
		return 2;
	}
	/* The JSON is written to FILE.tmp and renamed over FILE: only ever a regular file. */
	if (json) {
		struct stat st;

		if (lstat(json, &st) == 0 && !S_ISREG(st.st_mode)) {
			fprintf(stderr, "xsegbench: -o %s: not a regular file (the result replaces it)\n", json);
			return 2;
		}
	}
	parent_pid = getpid();
	pinned = sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_ISSET(0, &set) && CPU_ISSET(1, &set);
	if (!pinned)
		fprintf(stderr, "xsegbench: CPUs 0 and 1 are not both available: running unpinned, "
			"without the one-CPU rows\n");
	run = mmap(NULL, sizeof(*run), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (run == MAP_FAILED)
		fail("mmap: %s", strerror(errno));

	/* SIGCHLD is taken with sigtimedwait; the segment goes away however we end. */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);	/* e.g. | head */
	snprintf(segname, sizeof(segname), "xsb%d", (int)parent_pid);
	snprintf(spec, sizeof(spec), "posix:%s:4:256:4K:0:12%s", segname, huge ? ":huge=1" : "");
	if (xseg_parse_spec(spec, &cfg, err, sizeof(err)))
		fail("spec %s: %s", spec, err);
	atexit(cleanup);
	r = xseg_create(&cfg, err, sizeof(err));
	if (r == -EEXIST) {	/* left by an earlier run that had our pid and was killed */
		xseg_destroy_name("posix", segname);
		r = xseg_create(&cfg, err, sizeof(err));
	}
	if (r)
		fail("cannot create the segment %s: %s", spec, err);
	snprintf(run->segname, sizeof(run->segname), "%s", segname);

	clock_ns = clock_read_ns();
	t0 = xsb_now_ns() / 1e9;
	busy0 = machine_busy();
	own0 = own_cpu();
	if (strchr(parts, 'c'))
		latency(&places[0], reps, rounds, max_s);
	if (strchr(parts, 's') && pinned)
		latency(&places[1], reps, rounds, max_s);
	if (strchr(parts, 't'))
		throughput(reps, tsecs);
	if (strchr(parts, 'g'))
		xsb_scale(reps, tsecs, verbose, pinned);
	wall = xsb_now_ns() / 1e9 - t0;
	/* Everything else that ran meanwhile, in CPUs (0 = a quiet machine). */
	others = (machine_busy() - busy0 - (own_cpu() - own0)) / wall;
	if (busy0 < 0 || others < 0)
		others = 0;
	cleanup();

	for (int p = 0; p < 2; p++)
		if (places[p].done)
			print_latency(&places[p], reps, rounds, max_s);
	if (places[0].done || places[1].done)
		printf("ratio = xseg median / raw median; the goal is at most %.2fx for a sleeping round trip, "
		       "%.1fx busy-polled (* above it)\n", GOAL, BUSY_GOAL);
	if (tput_done)
		print_throughput(reps, tsecs);
	xsb_scale_print();
	printf("(%.1f s of measuring; other processes kept %.2f of the %ld CPUs busy meanwhile%s; "
	       "a clock read costs %.0f ns and is in every sample)\n", wall, others,
	       sysconf(_SC_NPROCESSORS_ONLN), others > 0.2 ? ": the numbers are disturbed" : "", clock_ns);
	if (json) {
		write_json(json, reps, rounds, max_s, tsecs, others, clock_ns, wall);
		printf("wrote %s\n", json);
	}
	return 0;
}
