// SPDX-License-Identifier: BSD-2-Clause
/*
 * drivers/kernel/segdev/xseg_segdev.c - the "segdev" peer type (signaling
 * driver) of the kernel domain, built into xseg_segdev.ko with the kernel's
 * "segdev" segment type (sys/kernel/segtypes/segdev.c: the module, its
 * registrations, and the struct ksd_seg of a mapped segment, ksd.h).
 *
 * Peer type: kernel peers on segdev segments are callback peers that never
 * sleep. A kernel peer joins with a wakeup callback (xseg_join's @wakeup) and
 * binds its ports; this driver serves the segment's doorbell and routes each
 * rung port to the callback of the kernel handle that bound it, or, for a
 * port no kernel peer bound, to the eventfd a user peer registered for it.
 * Signals from a kernel peer:
 *   - to a port bound by a kernel peer: its callback is called at once, in
 *     the signaler's context (under rcu_read_lock);
 *   - to a port bound by a user peer of type segdev: segdev_notify() signals
 *     the eventfd it registered (drivers/user/segdev.c waits on it).
 * The signal-area protocol is in segdev_area.h. Nothing here sleeps on the
 * data path: signal() and the doorbell take no lock but RCU.
 *
 * Callbacks run in atomic context (the doorbell writer's syscall, or a kernel
 * signaler's context) and must not sleep; they may run on several CPUs at
 * once. Unbinding a port waits (synchronize_rcu) until no call of its
 * callback is running.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/mutex.h>
#include <linux/list.h>
#include <linux/rculist.h>
#include <linux/xarray.h>
#include <linux/err.h>
#include "../../../xseg/xseg_internal.h"
#include "../../../sys/kernel/segdev/segdev.h"
#include "segdev_area.h"
#include "../../../sys/kernel/segtypes/ksd.h"

/* A port bound by a kernel handle: whom the doorbell calls. */
struct ksd_bind {
	struct xseg *xs;
	xseg_wakeup_fn fn;
	void *arg;
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
		b->fn(b->xs, port, b->arg);
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
	struct ksd_seg *ks;
	int r = 0;

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
		*priv = ks;
	}
	mutex_unlock(&ksd_mutex);
	return r;
}

static void ksd_leave(struct xseg *xs, void *priv)
{
	struct ksd_seg *ks = priv;
	bool last;

	mutex_lock(&ksd_mutex);
	last = --ks->users == 0;
	mutex_unlock(&ksd_mutex);
	if (last)
		segdev_clear_doorbell(ks->seg);	/* waits for running rings */
}

static int ksd_bind(struct xseg *xs, void *priv, uint32_t portno)
{
	struct ksd_seg *ks = priv;
	struct xseg_sig_segdev *a = area_of(xs, portno);
	struct ksd_bind *b;
	void *old;

	if (!a || portno >= SEGDEV_MAX_PORTS)
		return -EINVAL;
	if (!xs->wakeup)
		return -EINVAL;		/* kernel segdev peers are callback peers */
	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		return -ENOMEM;
	b->xs = xs;
	b->fn = xs->wakeup;
	b->arg = xs->wakeup_arg;
	xq_store_relaxed(&a->waiting, 0);
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
	struct ksd_seg *ks = priv;
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
	struct ksd_seg *ks = priv;
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
	if (!xq_load_relaxed(&a->waiting))
		return 0;		/* nobody sleeps: the waiter's re-check will see the work */
	if (xq_load_relaxed(&a->pending) || !xq_cas(&a->pending, &zero, 1))
		return 0;		/* a wake-up is on its way */
	r = segdev_notify(ks->seg, portno);
	if (r)
		xq_store_release(&a->pending, 0);
	return r;
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
};
