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
 * may wait on one port, and nothing is installed process-wide.
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
#include "signal_area.h"

struct futex_priv {
	struct xseg_sig_stats st;	/* first member: see signal_area.h */
};

/*
 * What this thread prepared: the area and the futex value it read. A thread
 * may have a few ports prepared at once; each slot is freed by the
 * cancel_wait or wait_signal that ends its wait.
 */
#define PREP_SLOTS 4
static _Thread_local struct futex_prep {
	const void *area;
	uint32_t seq;
} tl_prep[PREP_SLOTS];

static struct futex_prep *prep_find(const void *area)
{
	for (int i = 0; i < PREP_SLOTS; i++)
		if (tl_prep[i].area == area)
			return &tl_prep[i];
	return NULL;
}

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

static int futex_prepare_wait(struct xseg *xs, void *priv, uint32_t portno)
{
	struct xseg_sig_futex *a = xseg_port_signal_area(xs, portno);
	struct futex_prep *p;

	(void)priv;
	if (!a)
		return -EINVAL;
	p = prep_find(a);
	if (!p) {
		p = prep_find(NULL);
		if (!p)
			return -ENOSPC;	/* too many ports prepared by this thread */
		p->area = a;
		count_up(&a->waiters);
	}
	/*
	 * Full fence between our count and the caller's queue re-check: a
	 * signaler whose fence came later reads the count and wakes us.
	 */
	xq_fence_seq_cst();
	/*
	 * Acquire: if this already reads a signaler's bump, the re-check that
	 * follows must see what it enqueued before bumping.
	 */
	p->seq = __atomic_load_n(&a->word, __ATOMIC_ACQUIRE);
	return 0;
}

static int futex_cancel_wait(struct xseg *xs, void *priv, uint32_t portno)
{
	struct xseg_sig_futex *a = xseg_port_signal_area(xs, portno);
	struct futex_prep *p;

	(void)priv;
	if (!a)
		return -EINVAL;
	p = prep_find(a);
	if (!p)
		return 0;
	p->area = NULL;
	count_down(&a->waiters);
	return 0;
}

static int futex_wait_signal(struct xseg *xs, void *priv, uint32_t portno, uint64_t timeout_us)
{
	struct futex_priv *fp = priv;
	struct xseg_sig_futex *a = xseg_port_signal_area(xs, portno);
	struct futex_prep *p;
	struct timespec ts, *tsp = NULL;
	int r;

	if (!a)
		return -EINVAL;
	p = prep_find(a);
	if (!p)
		return -EINVAL;	/* no prepare_wait: nothing could wake us */
	/* Acquire: a changed word means a signal landed after prepare_wait; see its enqueue. */
	if (__atomic_load_n(&a->word, __ATOMIC_ACQUIRE) != p->seq) {
		r = 0;
	} else if (timeout_us == 0) {
		r = -ETIMEDOUT;
	} else {
		if (timeout_us != UINT64_MAX) {
			ts.tv_sec = (time_t)(timeout_us / 1000000u);
			ts.tv_nsec = (long)(timeout_us % 1000000u) * 1000;
			tsp = &ts;
		}
		stat_add(&fp->st.syscalls);
		/* FUTEX_WAIT sleeps only while the word still holds p->seq, atomically. */
		if (sys_futex(&a->word, FUTEX_WAIT, p->seq, tsp) == 0)
			r = 0;
		else if (errno == EAGAIN)
			r = 0;		/* the word moved on: signaled */
		else
			r = -errno;	/* -ETIMEDOUT, -EINTR */
		if (r == 0)
			/* Acquire: read the signaler's bump so our re-check sees its enqueue. */
			(void)__atomic_load_n(&a->word, __ATOMIC_ACQUIRE);
	}
	p->area = NULL;
	count_down(&a->waiters);
	return r;
}

/*
 * xseg_driver_futex - the "futex" peer type. Called only by the core
 * (xseg/), through the callbacks above: join before anything else, bind
 * before prepare_wait on a port, and every prepare_wait ended by exactly one
 * cancel_wait or wait_signal of the same thread. signal() may be called by
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
	.prepare_wait = futex_prepare_wait,
	.cancel_wait = futex_cancel_wait,
	.wait_signal = futex_wait_signal,
	.poll_fd = NULL,
};
