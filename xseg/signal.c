/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/signal.c - waking peers and waiting for work.
 *
 * The library does not signal on its own after submit/respond: the caller
 * signals the destination, with the driver of the *receiving* port's peer
 * type. Recovery is the one exception: it signals every port it fails a
 * request back to (or passes a reply on to), acting for the dead peer that
 * would have. Sleeping uses the race-free protocol
 *   prepare_wait -> check the queues -> cancel_wait | wait_signal
 * and xseg_wait() adds a short poll before it, because a poll that finds work
 * costs a fraction of a microsecond while a cross-CPU wakeup costs ~20 us.
 */
#include "xseg_internal.h"

static struct xseg__drv *port_driver(struct xseg *xs, uint32_t portno)
{
	return xseg__driver_for(xs, __atomic_load_n(&xs->ports[portno].peer_type, __ATOMIC_ACQUIRE));
}

int xseg_signal(struct xseg *xs, uint32_t portno)
{
	struct xseg__drv *d;
	uint64_t w;

	if (!xs || portno >= xs->nr_ports)
		return -EINVAL;
	w = __atomic_load_n(&xs->ports[portno].owner, __ATOMIC_ACQUIRE);
	if (XSEG_OWNER_STATE(w) != XSEG_PORT_BOUND)
		return -ENOENT;
	d = port_driver(xs, portno);
	if (!d)
		return -ENOTSUP;
	return d->ops->signal ? d->ops->signal(xs, d->priv, portno) : 0;
}

/* Our own ports only: the waiting side. */
static struct xseg__drv *own_driver(struct xseg *xs, uint32_t portno)
{
	if (!xs || !xseg__owned(xs, portno))
		return NULL;
	return xseg__driver_for(xs, xs->peer_type);
}

int xseg_prepare_wait(struct xseg *xs, uint32_t portno)
{
	struct xseg__drv *d = own_driver(xs, portno);

	if (!d)
		return -EPERM;
	return d->ops->prepare_wait ? d->ops->prepare_wait(xs, d->priv, portno) : 0;
}

int xseg_cancel_wait(struct xseg *xs, uint32_t portno)
{
	struct xseg__drv *d = own_driver(xs, portno);

	if (!d)
		return -EPERM;
	return d->ops->cancel_wait ? d->ops->cancel_wait(xs, d->priv, portno) : 0;
}

int xseg_wait_signal(struct xseg *xs, uint32_t portno, uint64_t timeout_us)
{
	struct xseg__drv *d = own_driver(xs, portno);

	if (!d)
		return -EPERM;
	if (!d->ops->wait_signal)
		return -ENOTSUP;
	return d->ops->wait_signal(xs, d->priv, portno, timeout_us);
}

int xseg_poll_fd(struct xseg *xs, uint32_t portno)
{
	struct xseg__drv *d = own_driver(xs, portno);

	if (!d)
		return -EPERM;
	return d->ops->poll_fd ? d->ops->poll_fd(xs, d->priv, portno) : -ENOTSUP;
}

void xseg_set_spin_us(struct xseg *xs, uint32_t spin_us)
{
	if (xs)
		xs->spin_us = spin_us;
}

/* Is anything queued to @portno (requests it accepts or replies it receives)? */
static bool has_work(struct xseg *xs, uint32_t portno)
{
	return xq_count(&xs->local[portno].rq) || xq_count(&xs->local[portno].pq);
}

int xseg_wait(struct xseg *xs, uint32_t portno, uint64_t timeout_us)
{
	uint64_t start, spin_ns, now;
	int r;

	if (!xs || !xseg__owned(xs, portno))
		return -EPERM;
	if (has_work(xs, portno))
		return 1;
	start = xseg_sys_now_ns();
	spin_ns = (uint64_t)xs->spin_us * 1000;
	if (timeout_us != UINT64_MAX && spin_ns > timeout_us * 1000)
		spin_ns = timeout_us * 1000;
	/* Poll for the spin time (not at all with spin 0), then sleep. */
	for (now = start; now - start < spin_ns; now = xseg_sys_now_ns()) {
		int i;

		for (i = 0; i < 64; i++) {
			if (has_work(xs, portno))
				return 1;
			xq_cpu_relax();
		}
	}
	r = xseg_prepare_wait(xs, portno);
	if (r)
		return r;
	if (has_work(xs, portno)) {
		xseg_cancel_wait(xs, portno);
		return 1;
	}
	if (timeout_us != UINT64_MAX) {
		uint64_t spent = (xseg_sys_now_ns() - start) / 1000;

		timeout_us = spent >= timeout_us ? 0 : timeout_us - spent;
	}
	r = xseg_wait_signal(xs, portno, timeout_us);
	xseg_cancel_wait(xs, portno);
	if (r == -ETIMEDOUT)
		return has_work(xs, portno) ? 1 : 0;
	if (r < 0 && r != -EINTR)
		return r;
	return has_work(xs, portno) ? 1 : 0;
}
