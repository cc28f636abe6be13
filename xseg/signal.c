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
 *
 * The core keeps the waits each thread prepared (any number of ports, on any
 * number of handles) and drives the port's driver through them: arm at
 * prepare, sleep on one or many at wait, disarm at the end. Drivers only
 * arm, sleep and wake; a thread serving several ports sleeps on all of them
 * at once (xseg_wait_any). Whom a signal wakes is read from the port's
 * signal area with the steps of signal_area.h that the drivers share.
 */
#include "xseg_internal.h"

static struct xseg__drv *port_driver(struct xseg *xs, uint32_t portno)
{
	return xseg__driver_for(xs, xa_load_acq32(&xs->ports[portno].peer_type));
}

int xseg_signal(struct xseg *xs, uint32_t portno)
{
	struct xseg__drv *d;
	uint64_t w;

	if (!xs || portno >= xs->nr_ports)
		return -EINVAL;
	w = xseg__owner(&xs->ports[portno]);
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

/* Does @d wait with the core's bookkeeping (arm, sleep, disarm)? */
static bool can_wait(const struct xseg__drv *d)
{
	const struct xseg_driver_ops *o = d->ops;

	return o->abi_size >= __builtin_offsetof(struct xseg_driver_ops, disarm) + sizeof(o->disarm) &&
	       o->arm && o->sleep && o->disarm;
}

#if !defined(XSEG_DOMAIN_KERNEL)
/*
 * The waits this thread prepared: one entry per (handle, port), on any
 * number of ports. A few live in thread-local storage; more move to the
 * heap, which is given back when the thread's last wait ends. Entries are
 * unordered (an ended one is replaced by the last).
 */
struct prep {
	struct xseg *xs;
	struct xseg__drv *d;
	struct xseg_armed a;
};

#define PREP_INLINE 8
static _Thread_local struct prep tl_inline[PREP_INLINE];
static _Thread_local struct prep *tl_prep;	/* tl_inline or a heap array */
static _Thread_local uint32_t tl_n, tl_cap;

static struct prep *prep_find(struct xseg *xs, uint32_t portno)
{
	for (uint32_t i = tl_n; i-- > 0;)
		if (tl_prep[i].xs == xs && tl_prep[i].a.portno == portno)
			return &tl_prep[i];
	return NULL;
}

/* A new entry at the end, or NULL (no memory). */
static struct prep *prep_add(void)
{
	if (!tl_prep) {
		tl_prep = tl_inline;
		tl_cap = PREP_INLINE;
	}
	if (tl_n == tl_cap) {
		struct prep *p = xseg_sys_alloc(sizeof(*p) * tl_cap * 2);

		if (!p)
			return NULL;
		xseg_memcpy(p, tl_prep, sizeof(*p) * tl_n);
		if (tl_prep != tl_inline)
			xseg_sys_free(tl_prep);
		tl_prep = p;
		tl_cap *= 2;
	}
	return &tl_prep[tl_n++];
}

static void prep_del(struct prep *p)
{
	*p = tl_prep[--tl_n];
	if (tl_n == 0 && tl_prep != tl_inline) {
		xseg_sys_free(tl_prep);
		tl_prep = tl_inline;
		tl_cap = PREP_INLINE;
	}
}

int xseg_prepare_wait(struct xseg *xs, uint32_t portno)
{
	struct xseg__drv *d = own_driver(xs, portno);
	struct prep *p;
	int r;

	if (!d)
		return -EPERM;
	if (!can_wait(d))
		return 0;		/* wait_signal will say -ENOTSUP */
	p = prep_find(xs, portno);
	if (p) {
		/* Prepared again: withdraw and announce afresh (the caller re-checks after). */
		d->ops->disarm(xs, d->priv, &p->a);
	} else {
		p = prep_add();
		if (!p)
			return -ENOMEM;
		p->xs = xs;
		p->d = d;
	}
	p->a = (struct xseg_armed){ .portno = portno };
	r = d->ops->arm(xs, d->priv, &p->a);
	if (r)
		prep_del(p);
	return r;
}

int xseg_cancel_wait(struct xseg *xs, uint32_t portno)
{
	struct xseg__drv *d = own_driver(xs, portno);
	struct prep *p;

	if (!d)
		return -EPERM;
	p = prep_find(xs, portno);
	if (p) {
		p->d->ops->disarm(xs, p->d->priv, &p->a);
		prep_del(p);
	}
	return 0;
}

/*
 * Sleep on the @n prepared waits of @ports and end them all. The driver
 * sleeps on a copy of the entries (they need not be adjacent in the table);
 * what its sleep noted in them goes to its disarm.
 */
static int sleep_on(struct xseg *xs, struct xseg__drv *d, const uint32_t *ports, uint32_t n,
		    uint64_t timeout_us)
{
	struct xseg_armed local[16], *w = local;
	int r, signaled = 0;
	uint32_t i;

	for (i = 0; i < n; i++)
		if (!prep_find(xs, ports[i]))
			return -EINVAL;	/* no prepare_wait: nothing could wake us */
	if (n > 16) {
		w = xseg_sys_alloc(sizeof(*w) * n);
		if (!w)
			return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		w[i] = prep_find(xs, ports[i])->a;
	r = d->ops->sleep(xs, d->priv, w, n, timeout_us);
	for (i = 0; i < n; i++) {
		struct prep *p = prep_find(xs, ports[i]);

		if (!p)
			continue;	/* a port listed twice: ended already */
		if (d->ops->disarm(xs, d->priv, &w[i]) > 0)
			signaled = 1;
		prep_del(p);
	}
	if (w != local)
		xseg_sys_free(w);
	return signaled ? 0 : r;
}
#else
/*
 * The kernel has no thread-local storage: the wait prepared on a port is kept
 * in the handle's per-port state (struct xseg__port_local.kwait), so in the
 * kernel one thread at a time waits on a given port of a handle (kernel
 * peers give each serving thread its own ports). Drivers of callback peers
 * (the wakeup of xseg_join) never get here: their ports are not armed.
 */
int xseg_prepare_wait(struct xseg *xs, uint32_t portno)
{
	struct xseg__drv *d = own_driver(xs, portno);
	struct xseg__port_local *l;
	int r;

	if (!d)
		return -EPERM;
	if (!can_wait(d))
		return 0;		/* wait_signal will say -ENOTSUP */
	l = &xs->local[portno];
	if (l->kprepared)
		d->ops->disarm(xs, d->priv, &l->kwait);	/* prepared again: announce afresh */
	l->kwait = (struct xseg_armed){ .portno = portno };
	r = d->ops->arm(xs, d->priv, &l->kwait);
	l->kprepared = r == 0;
	return r;
}

int xseg_cancel_wait(struct xseg *xs, uint32_t portno)
{
	struct xseg__drv *d = own_driver(xs, portno);
	struct xseg__port_local *l;

	if (!d)
		return -EPERM;
	l = &xs->local[portno];
	if (l->kprepared) {
		d->ops->disarm(xs, d->priv, &l->kwait);
		l->kprepared = 0;
	}
	return 0;
}

static int sleep_on(struct xseg *xs, struct xseg__drv *d, const uint32_t *ports, uint32_t n,
		    uint64_t timeout_us)
{
	struct xseg_armed local[8], *w = local;
	int r, signaled = 0;
	uint32_t i;

	for (i = 0; i < n; i++)
		if (!xs->local[ports[i]].kprepared)
			return -EINVAL;	/* no prepare_wait: nothing could wake us */
	if (n > 8) {
		w = xseg_sys_alloc(sizeof(*w) * n);
		if (!w)
			return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		w[i] = xs->local[ports[i]].kwait;
	r = d->ops->sleep(xs, d->priv, w, n, timeout_us);
	for (i = 0; i < n; i++) {
		struct xseg__port_local *l = &xs->local[ports[i]];

		if (!l->kprepared)
			continue;	/* a port listed twice: ended already */
		if (d->ops->disarm(xs, d->priv, &w[i]) > 0)
			signaled = 1;
		l->kprepared = 0;
	}
	if (w != local)
		xseg_sys_free(w);
	return signaled ? 0 : r;
}
#endif

int xseg_wait_signal_any(struct xseg *xs, const uint32_t *ports, uint32_t n, uint64_t timeout_us)
{
	struct xseg__drv *d = NULL;
	uint32_t i;

	if (!ports || n == 0)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		d = own_driver(xs, ports[i]);
		if (!d)
			return -EPERM;
	}
	if (!can_wait(d))
		return -ENOTSUP;
	return sleep_on(xs, d, ports, n, timeout_us);
}

int xseg_wait_signal(struct xseg *xs, uint32_t portno, uint64_t timeout_us)
{
	return xseg_wait_signal_any(xs, &portno, 1, timeout_us);
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

static bool any_work(struct xseg *xs, const uint32_t *ports, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (has_work(xs, ports[i]))
			return true;
	return false;
}

/* End the waits prepared on the first @n of @ports. */
static void cancel_all(struct xseg *xs, const uint32_t *ports, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		xseg_cancel_wait(xs, ports[i]);
}

int xseg_wait_any(struct xseg *xs, const uint32_t *ports, uint32_t n, uint64_t timeout_us)
{
	uint64_t start, spin_ns, now;
	uint32_t i;
	int r;

	if (!xs || !ports || n == 0)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!xseg__owned(xs, ports[i]))
			return -EPERM;
	if (any_work(xs, ports, n))
		return 1;
	start = xseg_sys_now_ns();
	spin_ns = (uint64_t)xs->spin_us * 1000;
	if (timeout_us != UINT64_MAX && spin_ns > timeout_us * 1000)
		spin_ns = timeout_us * 1000;
	/* Poll for the spin time (not at all with spin 0), then sleep. */
	for (now = start; now - start < spin_ns; now = xseg_sys_now_ns()) {
		int k;

		for (k = 0; k < 64; k++) {
			if (any_work(xs, ports, n))
				return 1;
			xq_cpu_relax();
		}
	}
	for (i = 0; i < n; i++) {
		r = xseg_prepare_wait(xs, ports[i]);
		if (r) {
			cancel_all(xs, ports, i);
			return r;
		}
	}
	if (any_work(xs, ports, n)) {
		cancel_all(xs, ports, n);
		return 1;
	}
	if (timeout_us != UINT64_MAX) {
		uint64_t spent = (xseg_sys_now_ns() - start) / 1000;

		timeout_us = spent >= timeout_us ? 0 : timeout_us - spent;
	}
	r = xseg_wait_signal_any(xs, ports, n, timeout_us);
	cancel_all(xs, ports, n);	/* spare, unless it failed before ending them */
	if (r < 0 && r != -ETIMEDOUT && r != -EINTR)
		return r;
	return any_work(xs, ports, n) ? 1 : 0;
}

int xseg_wait(struct xseg *xs, uint32_t portno, uint64_t timeout_us)
{
	return xseg_wait_any(xs, &portno, 1, timeout_us);
}
