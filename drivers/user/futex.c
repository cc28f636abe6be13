/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * drivers/user/futex.c - the "futex" signaling driver.
 *
 * The port's signal area holds a 32-bit futex word and a count of waiting
 * threads (struct xseg_sig_futex). A waiter counts itself, reads the word,
 * re-checks its queues and sleeps with FUTEX_WAIT on the value it read; a
 * signaler that finds the count non-zero bumps the word and calls
 * FUTEX_WAKE. The shared (not _PRIVATE) futex ops are used because the word
 * lives in memory mapped by several processes. With nobody waiting a signal
 * is a fence and a load: no syscall.
 *
 * Works across uids (anyone who maps the segment can wake), several threads
 * may wait on one port, and nothing is installed process-wide. A thread
 * sleeping on several ports waits on all their words at once with
 * futex_waitv (Linux 5.16), up to FUTEX_WAITV_MAX (128) of them; on more
 * ports it sleeps on the first 128 (without futex_waitv: on the first one)
 * in slices of at most SLICE_US and reads the others' words between slices.
 */
/*
 * GCC's ThreadSanitizer cannot model fences and refuses them (-Wtsan, an
 * error under -Werror). Our fences order atomics against atomics (the
 * waiter's announcement against the signaler's check), never plain data,
 * so TSan loses nothing it could check: silence the warning in TSan builds.
 */
#if defined(__SANITIZE_THREAD__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wtsan"
#endif
#include <limits.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include "../../xseg/xseg.h"
#include "drivers.h"

struct futex_priv {
	struct xseg_sig_stats st;	/* first member: see signal_area.h */
};

/*
 * Count a waiter in, saturating at XSEG_SIGF_SATURATED so that a corrupt
 * count can never wrap to 0 ("nobody waits") and lose our wake-up. Bounded:
 * after too many lost CAS races it saturates instead of retrying.
 */
static void count_up(uint32_t *p)
{
	/* Relaxed: the caller's seq_cst fence orders the count before its queue check. */
	uint32_t v = __atomic_load_n(p, __ATOMIC_RELAXED);

	for (int i = 0; i < 64; i++) {
		if (v >= XSEG_SIGF_SATURATED)
			return;
		/* Relaxed CAS: the seq_cst fence in prepare_wait publishes it to signalers. */
		if (__atomic_compare_exchange_n(p, &v, v + 1, false,
						__ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return;
	}
	/* Relaxed: "maybe waiting" for good is safe; the fence that follows publishes it. */
	__atomic_store_n(p, XSEG_SIGF_SATURATED, __ATOMIC_RELAXED);
}

/* Count a waiter out; 0 and saturated values are left alone. Bounded. */
static void count_down(uint32_t *p)
{
	/* Relaxed: a signaler that still sees our count only makes a harmless syscall. */
	uint32_t v = __atomic_load_n(p, __ATOMIC_RELAXED);

	for (int i = 0; i < 64; i++) {
		if (v == 0 || v >= XSEG_SIGF_SATURATED)
			return;
		/* Relaxed CAS: nothing is published by leaving the count. */
		if (__atomic_compare_exchange_n(p, &v, v - 1, false,
						__ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return;
	}
}

static long sys_futex(uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

static int futex_join(struct xseg *xs, void **priv)
{
	struct futex_priv *fp = xseg_sys_alloc(sizeof(*fp));

	(void)xs;
	if (!fp)
		return -ENOMEM;
	*priv = fp;
	return 0;
}

static void futex_leave(struct xseg *xs, void *priv)
{
	(void)xs;
	xseg_sys_free(priv);
}

/* A new owner starts with no waiters; the word keeps its value (no reason to rewind it). */
static int futex_bind(struct xseg *xs, void *priv, uint32_t portno)
{
	struct xseg_sig_futex *a = xseg_port_signal_area(xs, portno);

	(void)priv;
	if (!a)
		return -EINVAL;
	/* Release: signalers that read 0 see nothing of the old owner's wait. */
	__atomic_store_n(&a->waiters, 0, __ATOMIC_RELEASE);
	return 0;
}

static void futex_unbind(struct xseg *xs, void *priv, uint32_t portno)
{
	struct xseg_sig_futex *a = xseg_port_signal_area(xs, portno);

	(void)priv;
	if (a)
		/* Relaxed: signals to an unbound port may be dropped. */
		__atomic_store_n(&a->waiters, 0, __ATOMIC_RELAXED);
}

static int futex_signal(struct xseg *xs, void *priv, uint32_t portno)
{
	struct futex_priv *fp = priv;
	struct xseg_sig_futex *a = xseg_port_signal_area(xs, portno);

	if (!a)
		return -EINVAL;
	/*
	 * Full fence between the caller's enqueue and our load of the count:
	 * a waiter that counted itself after this fence (so we read 0 and
	 * skip the wake) must see the enqueue in its re-check.
	 */
	xq_fence_seq_cst();
	if (__atomic_load_n(&a->waiters, __ATOMIC_RELAXED) == 0)
		return 0;
	/*
	 * Release: a waiter that reads the new value (at prepare_wait, or its
	 * FUTEX_WAIT failing with EAGAIN) must also see the caller's enqueue.
	 */
	__atomic_fetch_add(&a->word, 1, __ATOMIC_RELEASE);
	stat_add(&fp->st.syscalls);
	if (sys_futex(&a->word, FUTEX_WAKE, INT_MAX, NULL) < 0)
		return -errno;
	stat_add(&fp->st.wakes);
	return 0;
}

/* arm: count ourselves in, fence, note the word's value. */
static int futex_arm(struct xseg *xs, void *priv, struct xseg_armed *w)
{
	struct xseg_sig_futex *a = xseg_port_signal_area(xs, w->portno);

	(void)priv;
	if (!a)
		return -EINVAL;
	count_up(&a->waiters);
	/*
	 * Full fence between our count and the caller's queue re-check: a
	 * signaler whose fence came later reads the count and wakes us.
	 */
	xq_fence_seq_cst();
	/*
	 * Acquire: if this already reads a signaler's bump, the re-check that
	 * follows must see what it enqueued before bumping.
	 */
	w->note = __atomic_load_n(&a->word, __ATOMIC_ACQUIRE);
	return 0;
}

/* Has a signal bumped the word of @w since arm? Acquire: then see its enqueue. */
static int moved(struct xseg *xs, const struct xseg_armed *w)
{
	struct xseg_sig_futex *a = xseg_port_signal_area(xs, w->portno);

	return a && __atomic_load_n(&a->word, __ATOMIC_ACQUIRE) != (uint32_t)w->note;
}

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#define WAITV_MAX	128		/* FUTEX_WAITV_MAX */
#define WAITV_U32	2		/* FUTEX_32: a 32-bit word, shared (not private) */
#define SLICE_US	1000u		/* sleep slice when not every word can be waited on */

struct waitv {				/* struct futex_waitv of linux/futex.h (5.16) */
	uint64_t val;
	uint64_t uaddr;
	uint32_t flags;
	uint32_t reserved;
};

static int waitv_missing;		/* 1: the kernel has no futex_waitv (relaxed) */

/*
 * Sleep on the words of @w[0..n) (n <= WAITV_MAX) with futex_waitv: 0 woken
 * or a word moved, -ETIMEDOUT, -EINTR, -ENOSYS.
 */
static int sleep_waitv(struct xseg *xs, struct futex_priv *fp, const struct xseg_armed *w,
		       uint32_t n, uint64_t timeout_us)
{
	struct waitv v[WAITV_MAX];
	struct timespec ts, *tsp = NULL;

	for (uint32_t i = 0; i < n; i++) {
		struct xseg_sig_futex *a = xseg_port_signal_area(xs, w[i].portno);

		v[i] = (struct waitv){ .val = (uint32_t)w[i].note,
				       .uaddr = (uint64_t)(uintptr_t)&a->word,
				       .flags = WAITV_U32 };
	}
	if (timeout_us != UINT64_MAX) {
		/* futex_waitv takes an absolute time on the clock it is given. */
		uint64_t now = xseg_sys_now_ns(), ns = timeout_us > (UINT64_MAX - now) / 1000u / 2
							? UINT64_MAX / 2 : now + timeout_us * 1000u;

		ts.tv_sec = (time_t)(ns / 1000000000u);
		ts.tv_nsec = (long)(ns % 1000000000u);
		tsp = &ts;
	}
	stat_add(&fp->st.syscalls);
	if (syscall(SYS_futex_waitv, v, n, 0, tsp, CLOCK_MONOTONIC) >= 0)
		return 0;
	if (errno == EAGAIN)
		return 0;		/* a word moved on: signaled */
	return -errno;			/* -ETIMEDOUT, -EINTR, -ENOSYS */
}

/* Sleep on one word: 0 woken or moved, -ETIMEDOUT, -EINTR. */
static int sleep_one(struct xseg *xs, struct futex_priv *fp, const struct xseg_armed *w,
		     uint64_t timeout_us)
{
	struct xseg_sig_futex *a = xseg_port_signal_area(xs, w->portno);
	struct timespec ts, *tsp = NULL;

	if (timeout_us != UINT64_MAX) {
		ts.tv_sec = (time_t)(timeout_us / 1000000u);
		ts.tv_nsec = (long)(timeout_us % 1000000u) * 1000;
		tsp = &ts;
	}
	stat_add(&fp->st.syscalls);
	/* FUTEX_WAIT sleeps only while the word still holds the value noted, atomically. */
	if (sys_futex(&a->word, FUTEX_WAIT, (uint32_t)w->note, tsp) == 0)
		return 0;
	if (errno == EAGAIN)
		return 0;		/* the word moved on: signaled */
	return -errno;			/* -ETIMEDOUT, -EINTR */
}

static int futex_sleep(struct xseg *xs, void *priv, struct xseg_armed *w, uint32_t n,
		       uint64_t timeout_us)
{
	struct futex_priv *fp = priv;
	uint64_t deadline = UINT64_MAX, now;
	int r;

	for (uint32_t i = 0; i < n; i++) {
		if (!xseg_port_signal_area(xs, w[i].portno))
			return -EINVAL;
		if (moved(xs, &w[i]))
			return 0;	/* a signal landed after arm */
	}
	if (timeout_us == 0)
		return -ETIMEDOUT;
	if (n == 1)
		return sleep_one(xs, fp, w, timeout_us);
	if (n <= WAITV_MAX && !__atomic_load_n(&waitv_missing, __ATOMIC_RELAXED)) {
		r = sleep_waitv(xs, fp, w, n, timeout_us);
		if (r != -ENOSYS)
			return r;
		__atomic_store_n(&waitv_missing, 1, __ATOMIC_RELAXED);
	}
	/*
	 * More words than one call can take (or no futex_waitv): the first
	 * WAITV_MAX (or the first one) in slices, the others read between.
	 */
	if (timeout_us != UINT64_MAX) {
		now = xseg_sys_now_ns();
		deadline = timeout_us > (UINT64_MAX - 1 - now) / 1000u ? UINT64_MAX - 1
								       : now + timeout_us * 1000u;
	}
	for (;;) {
		uint64_t slice = SLICE_US;

		if (deadline != UINT64_MAX) {
			now = xseg_sys_now_ns();
			if (now >= deadline)
				return -ETIMEDOUT;
			if ((deadline - now) / 1000u < slice)
				slice = (deadline - now) / 1000u + 1;
		}
		r = !__atomic_load_n(&waitv_missing, __ATOMIC_RELAXED)
			? sleep_waitv(xs, fp, w, n < WAITV_MAX ? n : WAITV_MAX, slice)
			: sleep_one(xs, fp, w, slice);
		if (r == -ENOSYS)
			__atomic_store_n(&waitv_missing, 1, __ATOMIC_RELAXED);
		else if (r != -ETIMEDOUT)
			return r;
		for (uint32_t i = 0; i < n; i++)
			if (moved(xs, &w[i]))
				return 0;
	}
}

/* disarm: count ourselves out; signaled if the word moved since arm. */
static int futex_disarm(struct xseg *xs, void *priv, struct xseg_armed *w)
{
	struct xseg_sig_futex *a = xseg_port_signal_area(xs, w->portno);

	(void)priv;
	if (!a)
		return 0;
	count_down(&a->waiters);
	return moved(xs, w);
}

/*
 * xseg_driver_futex - the "futex" peer type. Called only by the core
 * (xseg/), through the callbacks above: join before anything else, bind
 * before arm on a port, and every arm ended by exactly one disarm of the
 * same thread (the core keeps the waits each thread prepared). signal() may be called by
 * any process for a port any process bound.
 */
XSEG_DRIVER(futex) = {
	.abi_size = sizeof(struct xseg_driver_ops),
	.version = 1,
	.name = "futex",
	.join = futex_join,
	.leave = futex_leave,
	.bind = futex_bind,
	.unbind = futex_unbind,
	.signal = futex_signal,
	.poll_fd = NULL,
	.arm = futex_arm,
	.sleep = futex_sleep,
	.disarm = futex_disarm,
};
