// SPDX-License-Identifier: BSD-2-Clause
/*
 * drivers/kernel/segdev/xseg_segdev.c - the "segdev" peer type (signaling
 * driver) of the kernel domain, built into xseg_segdev.ko with the kernel's
 * "segdev" segment type (sys/kernel/segtypes/segdev.c: the module, its
 * registrations, and the struct ksd_seg of a mapped segment, ksd.h).
 *
 * Peer type: a kernel peer on a segdev segment is either a callback peer
 * (it joins with a wakeup callback, xseg_join's @wakeup) or a sleeping peer
 * (no callback: its threads block in xseg_wait / xseg_wait_signal, on a
 * waitqueue of its handle). This driver serves the segment's doorbell and
 * routes each rung port to the kernel handle that bound it (its callback, or
 * its waitqueue), or, for a port no kernel peer bound, to the eventfd a user
 * peer registered for it.
 * Signals from a kernel peer:
 *   - to a port bound by a kernel peer: its callback is called at once, in
 *     the signaler's context (under rcu_read_lock), or its sleepers are
 *     woken;
 *   - to a port bound by a user peer of type segdev: segdev_notify() signals
 *     the eventfd it registered (drivers/user/segdev.c waits on it).
 * The signal-area protocol is in segdev_area.h. Nothing here sleeps on the
 * data path: signal() and the doorbell take no lock but RCU.
 *
 * Callbacks run in atomic context (the doorbell writer's syscall, or a kernel
 * signaler's context) and must not sleep; they may run on several CPUs at
 * once. Unbinding a port waits (synchronize_rcu) until no call of its
 * callback is running.
 *
 * Sleeping kernel peers: each kernel-bound port has a wake-up counter (struct
 * ksd_bind.seq). The dispatcher clears the area's pending word (a full
 * barrier), then increments the counter and wakes the handle's waitqueue.
 * arm reads the counter (the note) and fences; sleep is
 * wait_event_interruptible_timeout on "some armed port's counter moved, or
 * kthread_should_stop()"; disarm tells whether the counter moved. A signal
 * after arm moves the counter, and one before it was dispatched before the
 * caller's re-check of its queues, which then sees the work: no lost
 * wake-up. kthread_stop() wakes a sleeping kernel thread (sleep returns
 * -EINTR), as does a signal to a process sleeping in a syscall.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/mutex.h>
#include <linux/list.h>
#include <linux/rculist.h>
#include <linux/xarray.h>
#include <linux/err.h>
#include <linux/wait.h>
#include <linux/sched.h>
#include <linux/kthread.h>
#include <linux/jiffies.h>
#include "../../../xseg/xseg_internal.h"
#include "../../../sys/kernel/segdev/segdev.h"
#include "segdev_area.h"
#include "../../../sys/kernel/segtypes/ksd.h"

/* A kernel handle's driver state: the segment and, for sleepers, a waitqueue. */
struct ksd_handle {
	struct ksd_seg *ks;
	wait_queue_head_t wq;		/* the handle's sleeping threads */
};

/* A port bound by a kernel handle: whom the doorbell calls, or wakes. */
struct ksd_bind {
	struct xseg *xs;
	xseg_wakeup_fn fn;		/* NULL: a sleeping peer's port */
	void *arg;
	struct ksd_handle *h;
	atomic64_t seq;			/* wake-ups dispatched to it (sleeping peers) */
};

static struct xseg_sig_segdev *area_of(struct xseg *xs, uint32_t port)
{
	return xseg_port_signal_area(xs, port);
}

/*
 * Call the callback of the kernel handle that bound @port, or signal the
 * eventfd of a user peer. Under rcu_read_lock (segdev's doorbell holds it; a
 * kernel signaler takes it). Never sleeps.
 */
static void ksd_dispatch(struct ksd_seg *ks, u32 port)
{
	struct ksd_bind *b = xa_load(&ks->binds, port);

	if (b) {
		struct xseg_sig_segdev *a = area_of(b->xs, port);

		/* Full barrier: work queued before a skipped ring is seen by the callback. */
		if (a)
			(void)xchg(&a->pending, 0);
		if (b->fn) {
			b->fn(b->xs, port, b->arg);
		} else {
			atomic64_inc(&b->seq);
			smp_mb__after_atomic();
			wake_up_all(&b->h->wq);
		}
		return;
	}
	segdev_notify(ks->seg, port);
}

static void ksd_doorbell(void *arg, u32 port)
{
	ksd_dispatch(arg, port);
}

/* ------------------------------------------------------------------ driver */

static int ksd_join(struct xseg *xs, void **priv)
{
	struct ksd_handle *h = kzalloc(sizeof(*h), GFP_KERNEL);
	struct ksd_seg *ks;
	int r = 0;

	if (!h)
		return -ENOMEM;
	init_waitqueue_head(&h->wq);
	mutex_lock(&ksd_mutex);
	ks = ksd_by_base(xseg_base(xs));
	if (!ks) {
		r = -ENOTSUP;	/* not a segdev segment */
	} else if (ks->users == 0) {
		r = segdev_set_doorbell(ks->seg, ksd_doorbell, ks);
		if (r)
			pr_warn("xseg_segdev: segment '%s': its doorbell is taken by another module (%d)\n",
				xseg_segname(xs), r);
	}
	if (!r) {
		ks->users++;
		h->ks = ks;
		*priv = h;
	}
	mutex_unlock(&ksd_mutex);
	if (r)
		kfree(h);
	return r;
}

static void ksd_leave(struct xseg *xs, void *priv)
{
	struct ksd_handle *h = priv;
	struct ksd_seg *ks = h->ks;
	bool last;

	mutex_lock(&ksd_mutex);
	last = --ks->users == 0;
	mutex_unlock(&ksd_mutex);
	if (last)
		segdev_clear_doorbell(ks->seg);	/* waits for running rings */
	synchronize_rcu();	/* no dispatcher still wakes h->wq (the ports were unbound first) */
	kfree(h);
}

static int ksd_bind(struct xseg *xs, void *priv, uint32_t portno)
{
	struct ksd_handle *h = priv;
	struct ksd_seg *ks = h->ks;
	struct xseg_sig_segdev *a = area_of(xs, portno);
	struct ksd_bind *b;
	void *old;

	if (!a || portno >= SEGDEV_MAX_PORTS)
		return -EINVAL;
	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		return -ENOMEM;
	b->xs = xs;
	b->fn = xs->wakeup;		/* NULL: a sleeping peer */
	b->arg = xs->wakeup_arg;
	b->h = h;
	atomic64_set(&b->seq, 0);
	xq_store_relaxed(&a->waiting, 0);
	xq_store_relaxed(&a->always, 0);
	xq_store_release(&a->pending, 0);
	old = xa_store(&ks->binds, portno, b, GFP_KERNEL);
	if (xa_is_err(old)) {
		kfree(b);
		return xa_err(old);
	}
	if (old) {
		/* A stale entry (a handle that lost the port without unbinding). */
		synchronize_rcu();
		kfree(old);
	}
	return 0;
}

static void ksd_unbind(struct xseg *xs, void *priv, uint32_t portno)
{
	struct ksd_seg *ks = ((struct ksd_handle *)priv)->ks;
	struct ksd_bind *b;

	b = xa_load(&ks->binds, portno);
	if (!b || b->xs != xs)
		return;
	xa_erase(&ks->binds, portno);
	synchronize_rcu();	/* no call of its callback is running any more */
	kfree(b);
}

static int ksd_signal(struct xseg *xs, void *priv, uint32_t portno)
{
	struct ksd_seg *ks = ((struct ksd_handle *)priv)->ks;
	struct xseg_sig_segdev *a = area_of(xs, portno);
	struct xseg_port *port = xseg_port(xs, portno);
	uint64_t zero = 0;
	u32 pid;
	int r;

	if (!a || !port || portno >= SEGDEV_MAX_PORTS)
		return -EINVAL;
	pid = XSEG_OWNER_PID(xq_load_acquire(&port->owner));
	/* Full fence between the caller's enqueue and our reads of the area. */
	xq_fence_seq_cst();
	if (pid == XSEG_SYS_KERNEL_PID) {
		if (xq_load_relaxed(&a->pending) || !xq_cas(&a->pending, &zero, 1))
			return 0;	/* the callback has not started yet: it will see the work */
		rcu_read_lock();
		if (xa_load(&ks->binds, portno)) {
			ksd_dispatch(ks, portno);
			r = 0;
		} else {
			xq_store_release(&a->pending, 0);
			r = -ENOENT;	/* not bound by a kernel peer of this segment */
		}
		rcu_read_unlock();
		return r;
	}
	if (xq_load_relaxed(&a->always))
		return segdev_notify(ks->seg, portno);	/* an event loop polls its eventfd */
	if (!xq_load_relaxed(&a->waiting))
		return 0;		/* nobody sleeps: the waiter's re-check will see the work */
	if (xq_load_relaxed(&a->pending) || !xq_cas(&a->pending, &zero, 1))
		return 0;		/* a wake-up is on its way */
	r = segdev_notify(ks->seg, portno);
	if (r)
		xq_store_release(&a->pending, 0);
	return r;
}

/* ------------------------------------------------- sleeping kernel peers */

/* The bind of our own sleeping port @portno, or NULL. Under rcu_read_lock. */
static struct ksd_bind *own_sleeper(struct xseg *xs, struct ksd_handle *h, uint32_t portno)
{
	struct ksd_bind *b = xa_load(&h->ks->binds, portno);

	return b && b->xs == xs && !b->fn ? b : NULL;
}

static int ksd_arm(struct xseg *xs, void *priv, struct xseg_armed *w)
{
	struct ksd_bind *b;
	int r = -EINVAL;	/* not our port, or a callback peer's */

	rcu_read_lock();
	b = own_sleeper(xs, priv, w->portno);
	if (b) {
		w->note = (u64)atomic64_read(&b->seq);
		r = 0;
	}
	rcu_read_unlock();
	/* Full fence between reading the counter and the caller's re-check of the queues. */
	smp_mb();
	return r;
}

/* Has a wake-up reached one of the @n armed ports since arm? */
static bool ksd_moved(struct xseg *xs, struct ksd_handle *h, struct xseg_armed *w, uint32_t n)
{
	bool moved = false;
	uint32_t i;

	rcu_read_lock();
	for (i = 0; i < n && !moved; i++) {
		struct ksd_bind *b = own_sleeper(xs, h, w[i].portno);

		/* An unbound port counts as woken: its waiter must look again. */
		moved = !b || (u64)atomic64_read(&b->seq) != w[i].note;
	}
	rcu_read_unlock();
	return moved;
}

static bool ksd_stopping(void)
{
	return (current->flags & PF_KTHREAD) && kthread_should_stop();
}

static int ksd_sleep(struct xseg *xs, void *priv, struct xseg_armed *w, uint32_t n,
		     uint64_t timeout_us)
{
	struct ksd_handle *h = priv;
	long left, j;

	if (ksd_moved(xs, h, w, n))
		return 0;
	if (ksd_stopping())
		return -EINTR;
	if (timeout_us == 0)
		return -ETIMEDOUT;
	if (timeout_us == UINT64_MAX)
		j = MAX_SCHEDULE_TIMEOUT;
	else	/* at most ~11 days per call; callers loop */
		j = (long)min_t(u64, nsecs_to_jiffies(min_t(u64, timeout_us, 1000000000000ull) * 1000) + 1,
				MAX_SCHEDULE_TIMEOUT - 1);
	left = wait_event_interruptible_timeout(h->wq, ksd_moved(xs, h, w, n) || ksd_stopping(), j);
	if (left < 0)
		return -EINTR;		/* a signal (a process sleeping in a syscall) */
	if (ksd_moved(xs, h, w, n))
		return 0;
	if (ksd_stopping())
		return -EINTR;		/* kthread_stop(): the thread must exit */
	return left == 0 ? -ETIMEDOUT : 0;
}

/* 1 if a wake-up reached the port since arm. Never sleeps. */
static int ksd_disarm(struct xseg *xs, void *priv, struct xseg_armed *w)
{
	return ksd_moved(xs, priv, w, 1) ? 1 : 0;
}

XSEG_DRIVER(segdev) = {
	.abi_size = sizeof(struct xseg_driver_ops),
	.version = 1,
	.name = "segdev",
	.join = ksd_join,
	.leave = ksd_leave,
	.bind = ksd_bind,
	.unbind = ksd_unbind,
	.signal = ksd_signal,
	.arm = ksd_arm,
	.sleep = ksd_sleep,
	.disarm = ksd_disarm,
};
