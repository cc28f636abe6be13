/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test/xtest.h - the tiny harness of the C tests.
 *
 * A test is a program with a "Description:" comment, a few test_*() functions
 * run by RUN(), and exit status 0 (pass), 1 (fail) or 77 (skip). The runner
 * (tools/run-tests) applies the timeout; xt_watchdog() adds a per-test alarm
 * so a hang fails with a message instead of a silent timeout. Either way the
 * test's atexit() cleanups run (xt_fatal).
 */
#ifndef XTEST_H
#define XTEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define XT_SKIP 77

static const char *xt_current = "";

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "FAIL %s: %s:%d: %s\n", xt_current, __FILE__, __LINE__, #cond); \
		exit(1); \
	} } while (0)

#define CHECKF(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "FAIL %s: %s:%d: %s: ", xt_current, __FILE__, __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); \
		exit(1); \
	} } while (0)

#define RUN(fn) do { xt_current = #fn; fn(); printf("ok %s\n", #fn); fflush(stdout); } while (0)

static inline void xt_skip(const char *why)
{
	printf("SKIP: %s\n", why);
	exit(XT_SKIP);
}

/*
 * A test stopped from outside (the runner's timeout sends SIGTERM, and
 * SIGKILL 5 s later; Ctrl-C sends SIGINT) or by its own watchdog still runs
 * its atexit() cleanups, so the segments, FIFOs, sockets and child peers it
 * made do not outlive it. Only the test's own process does so: a process it
 * forked takes the signal's default action, as if this handler were not
 * there. A cleanup that hangs is cut off after 5 s; a second SIGTERM or
 * SIGINT during it is ignored (it would cut off a cleanup that works).
 */
static pid_t xt_main_pid;
static volatile sig_atomic_t xt_dying;

static void xt_fatal(int sig)
{
	static const char hang[] = "FAIL: watchdog expired (a hang); cleaning up\n";
	static const char stop[] = "FAIL: stopped by a signal; cleaning up\n";

	if (getpid() != xt_main_pid) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	if (xt_dying) {
		if (sig != SIGALRM)
			return;	/* stopped again while cleaning up: the cleanup goes on */
		_exit(1);	/* the cleanup hung for 5 s */
	}
	xt_dying = 1;
	if (write(2, sig == SIGALRM ? hang : stop, sig == SIGALRM ? sizeof(hang) - 1 : sizeof(stop) - 1) < 0) {
		/* nothing to do */
	}
	alarm(5);
	/*
	 * exit() here may flush a stdio buffer the signal interrupted half way,
	 * again, into a pipe nobody reads any more: that must not turn the exit
	 * into a death by SIGPIPE (the cleanups ran before the flush anyway).
	 */
	signal(SIGPIPE, SIG_IGN);
	exit(1);
}

static inline void xt_on_signal(int sig)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = xt_fatal;
	sa.sa_flags = SA_NODEFER;	/* the 5 s alarm must reach a handler that hangs */
	sigaction(sig, &sa, NULL);
}

__attribute__((constructor)) static void xt_init(void)
{
	xt_main_pid = getpid();
	xt_on_signal(SIGTERM);
	xt_on_signal(SIGINT);
	xt_on_signal(SIGALRM);
}

/* Fail the whole program if it runs longer than @seconds. */
static inline void xt_watchdog(unsigned seconds)
{
	xt_on_signal(SIGALRM);
	alarm(seconds);
}

/* Memory shared with forked children: real shared memory between processes. */
static inline void *xt_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	memset(p, 0, size);
	return p;
}

/* fork() a child that dies with its parent; returns the pid in the parent. */
static inline pid_t xt_fork(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		alarm(0);
	}
	return pid;
}

static inline uint64_t xt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * xt_nonce, xt_tag - a random 32-bit number fixed for the run, and
 * "<pid>-<its 8 hex>": the tag of every name this run makes (segments, keys,
 * object prefixes). The pid alone is not enough: pids come round again
 * within one `make check`, and a segment an earlier run left behind (a
 * SIGKILL no cleanup survives) would then collide with a new test's create.
 * Both are fixed at the first call (getrandom()), so children forked after
 * it share their parent's.
 */
static inline uint32_t xt_nonce(void)
{
	static uint32_t nonce;

	while (!nonce)
		if (getrandom(&nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
			nonce = (uint32_t)xt_now_ns() ^ ((uint32_t)getpid() << 16);
	return nonce;
}

static inline const char *xt_tag(void)
{
	static char tag[24];	/* "%d-%08x": 11 + 1 + 8, NUL */

	if (!tag[0])
		snprintf(tag, sizeof(tag), "%d-%08x", (int)getpid(), xt_nonce());
	return tag;
}

/* Deterministic per-test random numbers (xorshift64*), seed from XSEG_SEED. */
static inline uint64_t xt_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static inline uint64_t xt_seed(void)
{
	const char *e = getenv("XSEG_SEED");
	uint64_t s = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

	if (!s)
		s = 1;
	printf("seed %" PRIu64 " (set XSEG_SEED to repeat)\n", s);
	return s;
}

/*
 * xt_env_long - the knob @name from the environment, else @dflt. Built with a
 * sanitizer (which slows code 5-20x) the default is divided by 10, so CI's
 * sanitizer runs stay within its time; an explicit value is taken as is.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define XT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define XT_SANITIZED 1
#endif
#endif

static inline long xt_env_long(const char *name, long dflt)
{
	const char *e = getenv(name);

#ifdef XT_SANITIZED
	if (dflt >= 100)
		dflt /= 10;
#endif
	return e && *e ? strtol(e, NULL, 0) : dflt;
}

#endif
