// SPDX-License-Identifier: BSD-2-Clause
/*
 * tools/vm/guest_modules/xseg_kpeer - a kernel peer for the VM tests. It
 * joins a segdev segment with the "segdev" peer type and
 *   - serves every READ submitted to port @port: fills the buffer with
 *     kpeer_byte(offset + i) and responds;
 *   - at load, sends @count READs of @size bytes to the peer on port @peer
 *     (at most @window in flight), receives the replies and checks every
 *     byte against the same pattern.
 * @mode says how the server's handle is woken:
 *   callback  a callback peer (xseg_join's wakeup): the doorbell or a kernel
 *             signaler calls it in atomic context; it never sleeps;
 *   sleep     a sleeping peer: a kernel thread blocks in xseg_wait_signal
 *             (prepared with xseg_prepare_wait, no timeout) and drains the
 *             port when woken; kthread_stop() at unload wakes and ends it.
 * With @cport = 0 the client sends from @port on the server's handle (the
 * replies come back the same way). With @cport != 0 the client has a handle
 * of its own, woken as @cmode says, bound to @cport: a kernel client can
 * then send to the kernel server on @port (kernel -> kernel).
 * Nothing polls: every reply travels by a wake-up. A client that gets no
 * reply for 30 s (a hang guard: a lost wake-up) fails. insmod fails (-EIO) if
 * a reply is missing, failed or wrong; the kernel log then says why. On
 * success it logs "xseg_kpeer: PASS".
 *
 *   insmod xseg_kpeer.ko seg=NAME port=K [mode=callback|sleep] peer=U count=N
 *                        [size=B] [window=W] [cport=C cmode=callback|sleep]
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/jiffies.h>
#include <linux/atomic.h>
#include <linux/kthread.h>
#include <linux/err.h>
#include "xseg/xseg.h"

static char *seg = "";
module_param(seg, charp, 0444);
static char *mode = "callback", *cmode = "callback";
module_param(mode, charp, 0444);
module_param(cmode, charp, 0444);
static uint port = 2, peer = 1, count = 1000, size = 4096, window = 8, cport;
module_param(port, uint, 0444);
module_param(peer, uint, 0444);
module_param(count, uint, 0444);
module_param(size, uint, 0444);
module_param(window, uint, 0444);
module_param(cport, uint, 0444);

/* A handle with one bound port, woken by its callback or its own thread. */
struct role {
	const char *name;
	struct xseg *xs;
	u32 port;
	bool serve;			/* accept requests on the port */
	bool client;			/* receive replies on the port */
	bool sleeps;
	spinlock_t lock;		/* our xseg calls on the port */
	struct task_struct *thread;	/* the sleeping peer's thread */
	atomic64_t wakes;		/* times the thread woke */
	int thread_err;
};

static struct role srv = { .name = "server" }, cli = { .name = "client" };
static struct role *client_role;	/* &srv (cport = 0) or &cli */
static DECLARE_WAIT_QUEUE_HEAD(wq);
static atomic_t inflight, good, bad;
static atomic64_t served;

/* The pattern both sides use (tools/vm/guest/xseg-kpeer.c has the same). */
static inline u8 kpeer_byte(u64 pos)
{
	return (u8)((pos >> 9) * 31 + pos * 7 + 3);
}

static int check_reply(struct role *ro, struct xseg_request *req)
{
	u8 *d = xseg_req_data(ro->xs, req);
	u64 off = READ_ONCE(req->offset), i;

	if ((READ_ONCE(req->state) & (XS_SERVED | XS_FAILED)) != XS_SERVED) {
		pr_err("xseg_kpeer: reply at %llu failed: error %d\n", off, READ_ONCE(req->error));
		return -EIO;
	}
	if (!d || READ_ONCE(req->serviced) != size) {
		pr_err("xseg_kpeer: reply at %llu: serviced %llu of %u\n", off, READ_ONCE(req->serviced), size);
		return -EIO;
	}
	for (i = 0; i < size; i++)
		if (d[i] != kpeer_byte(off + i)) {
			pr_err("xseg_kpeer: reply at %llu: byte %llu is %u, want %u\n", off, i, d[i],
			       kpeer_byte(off + i));
			return -EIO;
		}
	return 0;
}

/* Serve and receive until the port is empty. Atomic context allowed. */
static void drain(struct role *ro)
{
	struct xseg *xs = ro->xs;
	struct xseg_request *req;
	int n;

	for (n = 0; n < 4096; n++) {
		bool any = false;

		if (ro->serve) {
			spin_lock(&ro->lock);
			req = xseg_accept(xs, ro->port);
			spin_unlock(&ro->lock);
		} else {
			req = NULL;
		}
		if (req) {
			u8 *d = xseg_req_data(xs, req);
			u64 off = READ_ONCE(req->offset), len = READ_ONCE(req->size), i;
			int to;

			any = true;
			if (req->op != X_READ || !d || len > req->data_len) {
				spin_lock(&ro->lock);
				to = xseg_fail(xs, req, EOPNOTSUPP);
				spin_unlock(&ro->lock);
			} else {
				for (i = 0; i < len; i++)
					d[i] = kpeer_byte(off + i);
				req->serviced = len;
				req->state |= XS_SERVED;
				spin_lock(&ro->lock);
				to = xseg_respond(xs, req);
				spin_unlock(&ro->lock);
			}
			if (to >= 0)
				xseg_signal(xs, to);
			atomic64_inc(&served);
		}
		if (ro->client) {
			spin_lock(&ro->lock);
			req = xseg_receive(xs, ro->port);
			spin_unlock(&ro->lock);
		} else {
			req = NULL;
		}
		if (req) {
			any = true;
			if (check_reply(ro, req))
				atomic_inc(&bad);
			else
				atomic_inc(&good);
			spin_lock(&ro->lock);
			xseg_put_request(xs, req);
			spin_unlock(&ro->lock);
			atomic_dec(&inflight);
			wake_up(&wq);
		}
		if (!any)
			break;
	}
}

/* The callback peer's wake-up: atomic context, maybe on two CPUs at once. */
static void kpeer_wakeup(struct xseg *x, uint32_t portno, void *arg)
{
	drain(arg);
}

static bool has_work(struct role *ro)
{
	u32 rq = 0, pq = 0;

	xseg_port_depths(ro->xs, ro->port, &rq, &pq);
	return (ro->serve && rq) || (ro->client && pq);
}

/*
 * The sleeping peer's thread: the race-free sleep of xseg/signal.c, with no
 * timeout, so only a signal (or kthread_stop) wakes it.
 */
static int kpeer_thread(void *arg)
{
	struct role *ro = arg;
	int r = 0;

	while (!kthread_should_stop()) {
		drain(ro);
		r = xseg_prepare_wait(ro->xs, ro->port);
		if (r)
			break;
		if (has_work(ro)) {
			xseg_cancel_wait(ro->xs, ro->port);
			continue;
		}
		r = xseg_wait_signal(ro->xs, ro->port, UINT64_MAX);
		xseg_cancel_wait(ro->xs, ro->port);
		if (r == -EINTR && kthread_should_stop()) {
			r = 0;
			break;
		}
		if (r && r != -EINTR)
			break;
		r = 0;
		atomic64_inc(&ro->wakes);
	}
	if (r)
		pr_err("xseg_kpeer: %s thread on port %u: wait failed: %d\n", ro->name, ro->port, r);
	ro->thread_err = r;
	/* kthread_stop() must find us: wait for it. */
	set_current_state(TASK_INTERRUPTIBLE);
	while (!kthread_should_stop()) {
		schedule();
		set_current_state(TASK_INTERRUPTIBLE);
	}
	__set_current_state(TASK_RUNNING);
	return r;
}

static int parse_mode(const char *m, bool *sleeps)
{
	if (!strcmp(m, "callback"))
		*sleeps = false;
	else if (!strcmp(m, "sleep"))
		*sleeps = true;
	else
		return -EINVAL;
	return 0;
}

static void role_stop(struct role *ro)
{
	if (ro->thread) {
		kthread_stop(ro->thread);	/* wakes it from xseg_wait_signal */
		ro->thread = NULL;
	}
	if (ro->xs) {
		xseg_leave(ro->xs);
		ro->xs = NULL;
	}
}

static int role_start(struct role *ro, u32 portno, const char *m)
{
	char err[256] = "";
	int e = 0, r;

	r = parse_mode(m, &ro->sleeps);
	if (r) {
		pr_err("xseg_kpeer: %s mode '%s': want callback or sleep\n", ro->name, m);
		return r;
	}
	spin_lock_init(&ro->lock);
	ro->port = portno;
	ro->xs = xseg_join("segdev", seg, "segdev", ro->sleeps ? NULL : kpeer_wakeup, ro, &e, err,
			   sizeof(err));
	if (!ro->xs) {
		pr_err("xseg_kpeer: join '%s': %d %s\n", seg, e, err);
		return e ? e : -EINVAL;
	}
	xseg_set_spin_us(ro->xs, 0);	/* never poll: every wake-up is a signal */
	r = xseg_bind_port(ro->xs, portno, 0);
	if (r != (int)portno) {
		pr_err("xseg_kpeer: bind port %u (%s): %d\n", portno, ro->name, r);
		role_stop(ro);
		return r < 0 ? r : -EBUSY;
	}
	if (ro->sleeps) {
		ro->thread = kthread_run(kpeer_thread, ro, "xseg_kpeer/%u", portno);
		if (IS_ERR(ro->thread)) {
			r = PTR_ERR(ro->thread);
			ro->thread = NULL;
			role_stop(ro);
			return r;
		}
	}
	return 0;
}

static int send_one(struct role *ro, u32 i)
{
	struct xseg *xs = ro->xs;
	struct xseg_request *req;
	int r;

	spin_lock(&ro->lock);
	req = xseg_get_request(xs, ro->port);
	r = req ? xseg_prep_request(xs, req, "kpeer", 5, size) : -EAGAIN;
	if (req && r)
		xseg_put_request(xs, req);
	if (!r) {
		req->op = X_READ;
		req->offset = (u64)i * size;
		req->size = size;
		atomic_inc(&inflight);
		r = xseg_submit(xs, req, peer);	/* the port it went to */
		if (r < 0) {
			atomic_dec(&inflight);
			xseg_put_request(xs, req);
		}
	}
	spin_unlock(&ro->lock);
	if (r >= 0)
		xseg_signal(xs, (u32)r);
	return r < 0 ? r : 0;
}

static int run_client(struct role *ro)
{
	u32 sent = 0;
	int r;

	for (;;) {
		/* Read before the end test: a reply after it changes the count. */
		int before = atomic_read(&good) + atomic_read(&bad);

		if (sent == count && !atomic_read(&inflight))
			break;
		while (sent < count && atomic_read(&inflight) < (int)window) {
			r = send_one(ro, sent);
			if (r == -EAGAIN)
				break;
			if (r) {
				pr_err("xseg_kpeer: submit %u to port %u: %d\n", sent, peer, r);
				return r;
			}
			sent++;
		}
		/* A hang guard, not a speed limit: only a lost wake-up stalls this long. */
		if (!wait_event_timeout(wq, atomic_read(&good) + atomic_read(&bad) != before ||
					(sent < count && atomic_read(&inflight) < (int)window) ||
					(sent == count && !atomic_read(&inflight)), 30 * HZ)) {
			u32 rq = 0, pq = 0;

			xseg_port_depths(ro->xs, ro->port, &rq, &pq);
			pr_err("xseg_kpeer: no reply for 30 s (%u sent, %d done, %d in flight, %u replies queued): a lost wake-up\n",
			       sent, atomic_read(&good) + atomic_read(&bad), atomic_read(&inflight), pq);
			return -ETIMEDOUT;
		}
	}
	return 0;
}

static int __init kpeer_init(void)
{
	u64 t0;
	int r;

	srv.serve = true;
	srv.client = cport == 0;
	r = role_start(&srv, port, mode);
	if (r)
		return r;
	client_role = &srv;
	if (cport) {
		cli.client = true;
		r = role_start(&cli, cport, cmode);
		if (r)
			goto out;
		client_role = &cli;
	}
	t0 = ktime_get_ns();
	r = count ? run_client(client_role) : 0;
	if (!r && (atomic_read(&good) != (int)count || atomic_read(&bad))) {
		pr_err("xseg_kpeer: %d good, %d bad replies of %u\n", atomic_read(&good), atomic_read(&bad), count);
		r = -EIO;
	}
	if (!r && (srv.thread_err || cli.thread_err))
		r = -EIO;
out:
	if (r) {
		role_stop(&cli);
		role_stop(&srv);
		return r;
	}
	if (count)
		pr_info("xseg_kpeer: PASS: %u requests from port %u (%s) to port %u checked in %llu ms; serving port %u (%s) of '%s'\n",
			count, client_role->port, client_role->sleeps ? "sleep" : "callback", peer,
			(ktime_get_ns() - t0) / 1000000, port, srv.sleeps ? "sleep" : "callback", seg);
	else
		pr_info("xseg_kpeer: serving port %u (%s) of '%s'\n", port, srv.sleeps ? "sleep" : "callback", seg);
	return 0;
}

static void __exit kpeer_exit(void)
{
	long long sw = atomic64_read(&srv.wakes), cw = atomic64_read(&cli.wakes);

	role_stop(&cli);
	role_stop(&srv);
	pr_info("xseg_kpeer: done, served %lld requests (thread wake-ups: server %lld, client %lld)\n",
		(long long)atomic64_read(&served), sw, cw);
}

module_init(kpeer_init);
module_exit(kpeer_exit);
MODULE_LICENSE("Dual BSD/GPL");
MODULE_DESCRIPTION("xseg kernel peer exchanging requests with other peers (VM test module)");
