/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * drivers/user/segdev.c - the "segdev" signaling driver of the user domain:
 * user peers on segdev segments (kernel memory of /dev/segdev) that talk to
 * kernel peers (xsegbd, test modules) without signals.
 *
 * - To wake a port bound by a kernel peer (its owner pid is
 *   XSEG_SYS_KERNEL_PID), a signal writes the port number to /dev/segdev:
 *   the doorbell, which segdev.ko hands to xseg_segdev.ko, which calls the
 *   kernel peer's callback. One write per wake-up at most: the signaler that
 *   turns the area's pending word from 0 to 1 rings; the kernel clears it
 *   before it calls the callback (drivers/kernel/segdev/segdev_area.h).
 * - A port bound by a user peer of this type has an eventfd registered with
 *   SEGDEV_IOC_EVENTFD at bind. Its waiter counts itself in the area's
 *   waiting word and sleeps in ppoll() on the eventfd; kernel peers signal
 *   it with segdev_notify(), user peers through the same doorbell write
 *   (segdev routes a port no kernel peer serves to its eventfd). With nobody
 *   waiting a signal is a fence and a load: no syscall.
 *
 * join() works on segdev segments only (-ENOTSUP otherwise): it opens
 * /dev/segdev and selects the segment (SEGDEV_IOC_OPEN: its owner or root).
 * The descriptor stays open for the doorbell and the eventfd registrations,
 * which end with it. A thread waiting on several ports polls all their
 * eventfds at once. xseg_poll_fd hands out a port's eventfd to an event loop
 * (then every signal to that port writes; see segdev_poll_fd). Limits:
 * unbind must not race with a wait on the same port.
 */
#if defined(__SANITIZE_THREAD__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wtsan"
#endif
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include "../../xseg/xseg_internal.h"
#include "../kernel/segdev/segdev_area.h"
#include "../../sys/kernel/segdev/segdev.h"
#include "drivers.h"

#define SEGDEV_PATH "/dev/segdev"
#define WAITING_MAX 0x40000000ull	/* saturation of the waiting count */

struct segdev_priv {
	struct xseg_sig_stats st;	/* first member: see signal_area.h */
	int fd;				/* /dev/segdev with the segment selected */
	uint32_t nr_ports;
	int *efd;			/* per port bound here: its eventfd, else -1 */
	uint8_t *polled;		/* per port: xseg_poll_fd handed its eventfd out */
};

#define W_WOKEN 1u	/* struct xseg_armed.flags: sleep read this port's eventfd */

static struct xseg_sig_segdev *area_of(struct xseg *xs, uint32_t portno)
{
	return xseg_port_signal_area(xs, portno);
}

static int segdev_join(struct xseg *xs, void **priv)
{
	struct segdev_priv *sp;
	struct segdev_req req;
	size_t len = strlen(xs->segname);
	uint32_t i;

	if (!xs->segtype || strcmp(xs->segtype->name, "segdev") != 0)
		return -ENOTSUP;	/* the doorbell exists for segdev segments only */
	if (len == 0 || len >= SEGDEV_NAME_LEN)
		return -EINVAL;
	sp = xseg_sys_alloc(sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	memset(sp, 0, sizeof(*sp));
	sp->nr_ports = xs->nr_ports;
	sp->efd = xseg_sys_alloc(sizeof(int) * sp->nr_ports);
	sp->polled = xseg_sys_alloc(sp->nr_ports);
	if (!sp->efd || !sp->polled) {
		xseg_sys_free(sp->efd);
		xseg_sys_free(sp->polled);
		xseg_sys_free(sp);
		return -ENOMEM;
	}
	memset(sp->polled, 0, sp->nr_ports);
	for (i = 0; i < sp->nr_ports; i++)
		sp->efd[i] = -1;
	sp->fd = open(SEGDEV_PATH, O_RDWR | O_CLOEXEC);
	if (sp->fd >= 0) {
		memset(&req, 0, sizeof(req));
		memcpy(req.name, xs->segname, len);
		if (ioctl(sp->fd, SEGDEV_IOC_OPEN, &req) == 0) {
			*priv = sp;
			return 0;
		}
	}
	{
		int r = -errno;

		xseg_sys_log(XSEG_LOG_WARN, "segdev driver: segment '%s': cannot select it on "
			     SEGDEV_PATH ": %s", xs->segname, strerror(errno));
		if (sp->fd >= 0)
			close(sp->fd);
		xseg_sys_free(sp->efd);
		xseg_sys_free(sp->polled);
		xseg_sys_free(sp);
		return r;
	}
}

static void segdev_leave(struct xseg *xs, void *priv)
{
	struct segdev_priv *sp = priv;
	uint32_t i;

	(void)xs;
	if (!sp)
		return;
	for (i = 0; i < sp->nr_ports; i++)
		if (sp->efd[i] >= 0)
			close(sp->efd[i]);
	close(sp->fd);		/* ends every eventfd registration of ours */
	xseg_sys_free(sp->efd);
	xseg_sys_free(sp->polled);
	xseg_sys_free(sp);
}

static int segdev_bind(struct xseg *xs, void *priv, uint32_t portno)
{
	struct segdev_priv *sp = priv;
	struct xseg_sig_segdev *a = area_of(xs, portno);
	struct segdev_eventfd e;
	int efd;

	if (!a || portno >= sp->nr_ports || portno >= SEGDEV_MAX_PORTS)
		return -EINVAL;
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (efd < 0)
		return -errno;
	e.port = portno;
	e.fd = efd;
	if (ioctl(sp->fd, SEGDEV_IOC_EVENTFD, &e) < 0) {
		int r = -errno;

		close(efd);
		return r;
	}
	if (sp->efd[portno] >= 0)
		close(sp->efd[portno]);
	sp->efd[portno] = efd;
	sp->polled[portno] = 0;
	xq_store_relaxed(&a->always, 0);	/* a previous owner's event loop */
	xq_store_relaxed(&a->waiting, 0);
	/* Release: a signaler that reads 0 sees no trace of the previous owner. */
	xq_store_release(&a->pending, 0);
	return 0;
}

static void segdev_unbind(struct xseg *xs, void *priv, uint32_t portno)
{
	struct segdev_priv *sp = priv;
	struct segdev_eventfd e = { .port = portno, .fd = -1 };

	if (portno >= sp->nr_ports || sp->efd[portno] < 0)
		return;
	if (sp->polled[portno]) {
		struct xseg_sig_segdev *a = area_of(xs, portno);

		if (a)
			xq_store_release(&a->always, 0);
		sp->polled[portno] = 0;
	}
	ioctl(sp->fd, SEGDEV_IOC_EVENTFD, &e);
	close(sp->efd[portno]);
	sp->efd[portno] = -1;
}

static int segdev_signal(struct xseg *xs, void *priv, uint32_t portno)
{
	struct segdev_priv *sp = priv;
	struct xseg_sig_segdev *a = area_of(xs, portno);
	struct xseg_port *port = xseg_port(xs, portno);
	uint64_t zero = 0;
	uint32_t p32 = portno;

	if (!a || !port || portno >= SEGDEV_MAX_PORTS)
		return -EINVAL;
	/*
	 * Full fence between the caller's enqueue and our loads of the area: a
	 * waiter (or kernel callback) that cleared its word after this fence
	 * sees the enqueue in its re-check.
	 */
	xq_fence_seq_cst();
	if (XSEG_OWNER_PID(xq_load_acquire(&port->owner)) != XSEG_SYS_KERNEL_PID) {
		if (xq_load_relaxed(&a->always))
			goto ring;	/* an event loop polls the eventfd: every signal writes */
		if (!xq_load_relaxed(&a->waiting))
			return 0;	/* a user port nobody waits on */
	}
	/* acq_rel CAS: one signaler rings until the other side clears it. */
	if (xq_load_relaxed(&a->pending) || !xq_cas(&a->pending, &zero, 1))
		return 0;
ring:
	stat_add(&sp->st.syscalls);
	if (write(sp->fd, &p32, sizeof(p32)) == (ssize_t)sizeof(p32)) {
		stat_add(&sp->st.wakes);
		return 0;
	}
	{
		int r = -errno;

		if (!xq_load_relaxed(&a->always))
			xq_store_release(&a->pending, 0);	/* nothing is on its way after all */
		return r;
	}
}

static int segdev_arm(struct xseg *xs, void *priv, struct xseg_armed *w)
{
	struct segdev_priv *sp = priv;
	struct xseg_sig_segdev *a = area_of(xs, w->portno);

	if (!a || w->portno >= sp->nr_ports || sp->efd[w->portno] < 0)
		return -EINVAL;
	xseg_sig_count_up(&a->waiting, WAITING_MAX);
	/* Full fence between announcing ourselves and the caller's re-check of the queues. */
	xq_fence_seq_cst();
	return 0;
}

static int segdev_sleep(struct xseg *xs, void *priv, struct xseg_armed *w, uint32_t n,
			uint64_t timeout_us)
{
	struct segdev_priv *sp = priv;
	struct pollfd local[16], *pfd = local;
	struct timespec ts, *tsp = NULL;
	int r;

	for (uint32_t i = 0; i < n; i++)
		if (!area_of(xs, w[i].portno) || w[i].portno >= sp->nr_ports || sp->efd[w[i].portno] < 0)
			return -EINVAL;
	if (n > 16) {
		pfd = xseg_sys_alloc(sizeof(*pfd) * n);
		if (!pfd)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++)
		pfd[i] = (struct pollfd){ .fd = sp->efd[w[i].portno], .events = POLLIN };
	if (timeout_us != UINT64_MAX) {
		ts.tv_sec = (time_t)(timeout_us / 1000000u);
		ts.tv_nsec = (long)(timeout_us % 1000000u) * 1000;
		tsp = &ts;
	}
	stat_add(&sp->st.syscalls);
	r = ppoll(pfd, n, tsp, NULL);
	if (r > 0) {
		for (uint32_t i = 0; i < n; i++) {
			uint64_t v;

			if (!(pfd[i].revents & POLLIN))
				continue;
			stat_add(&sp->st.syscalls);
			if (read(pfd[i].fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				xseg_sys_log(XSEG_LOG_DEBUG, "segdev driver: eventfd read: %s", strerror(errno));
			/*
			 * Drained: later signals must write again. Exchange (a
			 * full barrier) before the caller re-checks its queues.
			 */
			__atomic_exchange_n(&area_of(xs, w[i].portno)->pending, 0, __ATOMIC_SEQ_CST);
			w[i].flags |= W_WOKEN;
		}
		r = 0;
	} else {
		r = r == 0 ? -ETIMEDOUT : errno == EINTR ? -EINTR : -errno;
	}
	if (pfd != local)
		xseg_sys_free(pfd);
	return r;
}

/* disarm: count ourselves out; 1 if sleep was woken by this port's eventfd. */
static int segdev_disarm(struct xseg *xs, void *priv, struct xseg_armed *w)
{
	struct xseg_sig_segdev *a = area_of(xs, w->portno);

	(void)priv;
	if (a)
		xseg_sig_count_down(&a->waiting, WAITING_MAX);
	return (w->flags & W_WOKEN) != 0;
}

/*
 * poll_fd: the port's eventfd, for an event loop. From now on until unbind
 * every signal to the port writes the doorbell (the area's @always word),
 * so the loop needs no protocol of ours: when the fd polls readable, read
 * it (8 bytes; that clears it) and then drain the port's queues.
 */
static int segdev_poll_fd(struct xseg *xs, void *priv, uint32_t portno)
{
	struct segdev_priv *sp = priv;
	struct xseg_sig_segdev *a = area_of(xs, portno);

	if (!a || portno >= sp->nr_ports || sp->efd[portno] < 0)
		return -EINVAL;
	if (!sp->polled[portno]) {
		sp->polled[portno] = 1;
		xq_store_relaxed(&a->always, 1);
		/* Full fence: a signaler after this sees @always; one before it rang or was seen by the caller's first drain. */
		xq_fence_seq_cst();
	}
	return sp->efd[portno];
}

/*
 * xseg_driver_segdev - the "segdev" peer type of the user domain. Every
 * arm is ended by one disarm of the same thread.
 */
XSEG_DRIVER(segdev) = {
	.abi_size = sizeof(struct xseg_driver_ops),
	.version = 1,
	.name = "segdev",
	.join = segdev_join,
	.leave = segdev_leave,
	.bind = segdev_bind,
	.unbind = segdev_unbind,
	.signal = segdev_signal,
	.poll_fd = segdev_poll_fd,
	.arm = segdev_arm,
	.sleep = segdev_sleep,
	.disarm = segdev_disarm,
};
