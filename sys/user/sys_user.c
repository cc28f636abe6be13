/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/user/sys_user.c - the domain functions of sys/domain.h for user space.
 */
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include "../domain.h"

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
	int fd, field;

	__atomic_fetch_add(&xseg_sys_proc_stat_reads, 1, __ATOMIC_RELAXED);
	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
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
		ssize_t n;
		int fd = open("/sys/module/xseg/parameters/instance", O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			return -ESRCH;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			return -ESRCH;
		buf[n] = 0;
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
