/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/user/sys_user.c - the domain functions of sys/domain.h for user space.
 */
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#if defined(__x86_64__)
#include <x86intrin.h>		/* __rdtsc: xseg_sys_stamp_ns */
#endif
#include "../domain.h"
#include "stamp.h"

void *xseg_sys_alloc(size_t size)
{
	return calloc(1, size);
}

void xseg_sys_free(void *p)
{
	free(p);
}

void *xseg_sys_heap_alloc(uint64_t size)
{
	/* Anonymous private memory: zeroed, page aligned, returned to the OS on free. */
	void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void xseg_sys_heap_free(void *p, uint64_t size)
{
	munmap(p, (size_t)size);
}

/*
 * Read a small file (a /proc or /sys entry) into @buf, NUL-terminated: its
 * length (> 0), -errno if it cannot be opened, or -EIO if it reads empty or
 * fails.
 */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	return n;
}

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

void xseg_sys_registry_lock(void)
{
	pthread_mutex_lock(&registry_lock);
}

void xseg_sys_registry_unlock(void)
{
	pthread_mutex_unlock(&registry_lock);
}

static int log_level(void)
{
	static int level = -1;

	if (level < 0) {
		const char *e = getenv("XSEG_LOG_LEVEL");

		level = e && *e ? atoi(e) : XSEG_LOG_WARN;
	}
	return level;
}

void xseg_sys_log(int level, const char *fmt, ...)
{
	static const char *names[] = { "error", "warning", "info", "debug" };
	char buf[512];
	va_list ap;
	int n;

	if (level > log_level())
		return;
	n = snprintf(buf, sizeof(buf), "xseg[%d] %s: ", (int)getpid(),
		     names[level < 0 ? 0 : level > 3 ? 3 : level]);
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = (int)strlen(buf);
	buf[n++] = '\n';
	if (write(2, buf, (size_t)n) < 0) {
		/* stderr gone: nothing better to do */
	}
}

static uint64_t ts_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t xseg_sys_now_ns(void)
{
	return ts_ns(CLOCK_MONOTONIC);
}

uint64_t xseg_sys_realtime_ns(void)
{
	return ts_ns(CLOCK_REALTIME);
}

/*
 * xseg_sys_stamp_ns - CLOCK_MONOTONIC for the request stamps (ts_submit and
 * the latency histogram, the server's stamps), read for less. A vDSO
 * clock_gettime costs ~30 ns on our VMs and a client took two per request;
 * where the kernel itself keeps time with the TSC (its clocksource is
 * "tsc": invariant and synchronised across CPUs, or the kernel would have
 * dropped it), a stamp is the thread's last anchor, a (TSC, CLOCK_MONOTONIC)
 * pair, plus the TSC ticks since, converted at the rate measured between
 * the thread's last two anchors. A thread anchors again every 4 ms of TSC,
 * so a stamp stays within about two clock-read jitters (tens of ns) of
 * CLOCK_MONOTONIC and of every other process's stamps; it never goes back
 * within a thread. Elsewhere (not x86-64, another clocksource, or
 * XSEG_STAMP_CLOCK=monotonic in the environment) it is CLOCK_MONOTONIC.
 * Only stamps use it: timeouts and deadlines keep xseg_sys_now_ns.
 */
#if defined(__x86_64__)
#define STAMP_SPAN_NS	4000000ull	/* anchor again after this much TSC time */
#define STAMP_CAL_NS	1000000ull	/* the first rate from anchors at least this far apart */

struct stamp_clock {
	uint64_t tsc, ns;	/* the last anchor */
	uint64_t mult;		/* ns per tick, << 32; 0 until measured */
	uint64_t span;		/* STAMP_SPAN_NS in ticks */
	uint64_t last;		/* the last stamp returned (never go back) */
	uint64_t win;		/* the narrowest anchor window seen, in ticks */
};

static __thread struct stamp_clock stamp_tls;
static int stamp_tsc = -1;	/* 1: the TSC way, 0: CLOCK_MONOTONIC */
static pthread_once_t stamp_once = PTHREAD_ONCE_INIT;

static void stamp_choose(void)
{
	const char *env = getenv("XSEG_STAMP_CLOCK");
	char cs[32];
	ssize_t n;
	int tsc = 0;

	if (!env || strcmp(env, "monotonic")) {
		n = read_small("/sys/devices/system/clocksource/clocksource0/current_clocksource", cs, sizeof(cs));
		tsc = n >= 3 && !strncmp(cs, "tsc", 3) && (n == 3 || cs[3] == '\n');
	}
	__atomic_store_n(&stamp_tsc, tsc, __ATOMIC_RELEASE);
}

/*
 * A new anchor: the clock read between two TSC reads, taken only if that
 * window was narrow (nothing interrupted the three reads). Four wide ones in
 * a row (a preempted or stalled thread): this stamp is the clock read itself
 * and the anchor stays, so a late anchor never skews the rate.
 */
static uint64_t stamp_anchor(struct stamp_clock *c)
{
	uint64_t t1, t2, ns = 0, mid = 0;

	if (!c->mult && c->ns) {
		/* Measuring the rate: keep the first anchor until STAMP_CAL_NS have passed. */
		ns = ts_ns(CLOCK_MONOTONIC);
		if (ns - c->ns < STAMP_CAL_NS)
			return c->last = ns > c->last ? ns : c->last;
	}
	for (int i = 0; i < 4 && !mid; i++) {
		t1 = __rdtsc();
		ns = ts_ns(CLOCK_MONOTONIC);
		t2 = __rdtsc();
		if (t2 < t1)
			continue;	/* read on two CPUs whose TSCs disagree: try again */
		if (!c->win || t2 - t1 < c->win)
			c->win = t2 - t1;
		if (t2 - t1 <= 2 * c->win + 64)
			mid = t1 + (t2 - t1) / 2;
	}
	if (mid && c->ns && ns > c->ns && mid > c->tsc && (c->mult || ns - c->ns >= STAMP_CAL_NS)) {
		unsigned __int128 m = ((unsigned __int128)(ns - c->ns) << 32) / (mid - c->tsc);

		if (m > 0 && m < (1ull << 40)) {	/* a TSC of 4 MHz to 4 THz: else ignore it */
			c->mult = (uint64_t)m;
			c->span = (STAMP_SPAN_NS << 32) / c->mult;
		}
	}
	if (mid) {
		c->tsc = mid;
		c->ns = ns;
	}
	if (ns < c->last)
		ns = c->last;
	return c->last = ns;
}

static int stamp_way(void)
{
	int way = __atomic_load_n(&stamp_tsc, __ATOMIC_ACQUIRE);

	if (way < 0) {
		pthread_once(&stamp_once, stamp_choose);
		way = __atomic_load_n(&stamp_tsc, __ATOMIC_ACQUIRE);
	}
	return way;
}

int xseg_sys_stamp_tsc(void)
{
	return stamp_way();
}

uint64_t xseg_sys_stamp_ns(void)
{
	struct stamp_clock *c;
	uint64_t t, d, v;

	if (!stamp_way())
		return ts_ns(CLOCK_MONOTONIC);
	c = &stamp_tls;
	t = __rdtsc();
	d = t - c->tsc;
	if (!c->mult || t < c->tsc || d >= c->span)
		return stamp_anchor(c);
	v = c->ns + ((d * c->mult) >> 32);	/* d < span: the product stays below 2^64 */
	if (v < c->last)
		v = c->last;
	return c->last = v;
}
#else
int xseg_sys_stamp_tsc(void)
{
	return 0;
}

uint64_t xseg_sys_stamp_ns(void)
{
	return ts_ns(CLOCK_MONOTONIC);
}
#endif

/*
 * Read /proc/<pid>/stat: the state letter (field 3) and the start time in
 * clock ticks since boot (field 22). The command name (field 2) may contain
 * spaces and parentheses, so parse from the last ')'.
 */
/*
 * How many times proc_stat() read a /proc/<pid>/stat: a count, not a time,
 * for tests that check a step does not grow with the ports bound
 * (test/xseg/bindscale.c). Not exported from the shared library.
 */
uint64_t xseg_sys_proc_stat_reads;

static int proc_stat(uint32_t pid, char *state, uint64_t *start)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int field;

	__atomic_fetch_add(&xseg_sys_proc_stat_reads, 1, __ATOMIC_RELAXED);
	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	n = read_small(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -EIO;
	p += 2;
	*state = *p;
	/* p is at field 3; advance to field 22 */
	for (field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p)
		return -EIO;
	*start = strtoull(p, NULL, 10);
	return 0;
}

void xseg_sys_self(uint32_t *pid, uint64_t *start, uint32_t *uid, uint32_t *gid)
{
	static __thread uint32_t cached_pid;
	static __thread uint64_t cached_start;
	uint32_t me = (uint32_t)getpid();

	if (cached_pid != me) {	/* first call, or we are a forked child */
		char st;

		cached_start = 0;
		if (proc_stat(me, &st, &cached_start) < 0)
			cached_start = 0;
		cached_pid = me;
	}
	if (pid)
		*pid = me;
	if (start)
		*start = cached_start;
	if (uid)
		*uid = (uint32_t)geteuid();
	if (gid)
		*gid = (uint32_t)getegid();
}

int xseg_sys_alive(uint32_t pid, uint64_t start)
{
	char st;
	uint64_t s;

	if (pid == 0)
		return 0;
	if (pid == XSEG_SYS_KERNEL_PID)	/* xseg.ko loaded, with instance token @start */
		return xseg_sys_start_of(pid, &s) == 0 && (start == 0 || s == start);
	if (proc_stat(pid, &st, &s) < 0)
		return 0;			/* no such process */
	if (st == 'Z' || st == 'X')
		return 0;			/* a zombie is dead for us */
	return start == 0 || s == start;	/* 0: any start; else a reused pid is dead */
}

int xseg_sys_start_of(uint32_t pid, uint64_t *start)
{
	char st;

	if (pid == XSEG_SYS_KERNEL_PID) {
		char buf[32];

		if (read_small("/sys/module/xseg/parameters/instance", buf, sizeof(buf)) < 0)
			return -ESRCH;
		*start = strtoull(buf, NULL, 10);
		return 0;
	}
	if (pid == 0 || proc_stat(pid, &st, start) < 0 || st == 'Z' || st == 'X')
		return -ESRCH;
	return 0;
}

uint32_t xseg_sys_page_size(void)
{
	return (uint32_t)sysconf(_SC_PAGESIZE);
}

int xseg_sys_discard(void *addr, uint64_t len)
{
	/* Shared file-backed memory (shm, tmpfs, hugetlbfs): punch the pages out. */
	if (!madvise(addr, (size_t)len, MADV_REMOVE))
		return 0;
	/* A filesystem that cannot punch holes keeps the blocks: nothing given back. */
	if (errno != EINVAL)
		return -errno;
	/* EINVAL: private anonymous memory (the heap type): drop it. */
	if (!madvise(addr, (size_t)len, MADV_DONTNEED))
		return 0;
	return -errno;
}

int xseg_sys_populate(void *addr, uint64_t len)
{
#ifdef MADV_POPULATE_WRITE
	if (!madvise(addr, (size_t)len, MADV_POPULATE_WRITE))
		return 0;
	if (errno == EFAULT || errno == ENOMEM || errno == EHWPOISON)
		return -ENOSPC;	/* the page could not be had: SIGBUS had we touched it */
#endif
	return 0;	/* older kernels: storage comes at first touch */
}

void xseg_sys_test_point(void)
{
	static long passed;	/* counted only while the variable is set (not in a parent) */
	const char *e = getenv("XSEG_TEST_DIE_AT");

	if (e && *e && passed++ == strtol(e, NULL, 10))
		_exit(99);
}

void xseg_sys_yield(void)
{
	sched_yield();
}
