// SPDX-License-Identifier: BSD-2-Clause
/*
 * tools/vm/guest_modules/xseg_kpeer - a kernel peer for the VM tests: it
 * joins a segdev segment with the "segdev" peer type (a callback peer),
 * binds port @port and
 *   - serves every READ submitted to it from its callback (never sleeping):
 *     fills the buffer with kpeer_byte(offset + i) and responds;
 *   - at load, sends @count READs of @size bytes to the user peer on port
 *     @peer (at most @window in flight), receives the replies in its
 *     callback and checks every byte against the same pattern.
 * insmod fails (-EIO) if a reply is missing, failed or wrong; the kernel
 * log then says why. On success it logs "xseg_kpeer: PASS".
 *
 *   insmod xseg_kpeer.ko seg=NAME port=K peer=U count=N [size=B] [window=W]
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/jiffies.h>
#include <linux/atomic.h>
#include "xseg/xseg.h"

static char *seg = "";
module_param(seg, charp, 0444);
static uint port = 2, peer = 1, count = 1000, size = 4096, window = 8;
module_param(port, uint, 0444);
module_param(peer, uint, 0444);
module_param(count, uint, 0444);
module_param(size, uint, 0444);
module_param(window, uint, 0444);

static struct xseg *xs;
static DEFINE_SPINLOCK(lock);		/* our xseg calls on port @port */
static DECLARE_WAIT_QUEUE_HEAD(wq);
static atomic_t inflight, good, bad;
static atomic64_t served;

/* The pattern both sides use (tools/vm/guest/xseg-kpeer.c has the same). */
static inline u8 kpeer_byte(u64 pos)
{
	return (u8)((pos >> 9) * 31 + pos * 7 + 3);
}

static int check_reply(struct xseg_request *req)
{
	u8 *d = xseg_req_data(xs, req);
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

/* The callback: atomic context, maybe on two CPUs at once. */
static void kpeer_wakeup(struct xseg *x, uint32_t portno, void *arg)
{
	struct xseg_request *req;
	int n;

	for (n = 0; n < 4096; n++) {
		bool any = false;

		spin_lock(&lock);
		req = xseg_accept(xs, port);
		spin_unlock(&lock);
		if (req) {
			u8 *d = xseg_req_data(xs, req);
			u64 off = READ_ONCE(req->offset), len = READ_ONCE(req->size), i;
			int to;

			any = true;
			if (req->op != X_READ || !d || len > req->data_len) {
				spin_lock(&lock);
				to = xseg_fail(xs, req, EOPNOTSUPP);
				spin_unlock(&lock);
			} else {
				for (i = 0; i < len; i++)
					d[i] = kpeer_byte(off + i);
				req->serviced = len;
				req->state |= XS_SERVED;
				spin_lock(&lock);
				to = xseg_respond(xs, req);
				spin_unlock(&lock);
			}
			if (to >= 0)
				xseg_signal(xs, to);
			atomic64_inc(&served);
		}
		spin_lock(&lock);
		req = xseg_receive(xs, port);
		spin_unlock(&lock);
		if (req) {
			any = true;
			if (check_reply(req))
				atomic_inc(&bad);
			else
				atomic_inc(&good);
			spin_lock(&lock);
			xseg_put_request(xs, req);
			spin_unlock(&lock);
			atomic_dec(&inflight);
			wake_up(&wq);
		}
		if (!any)
			break;
	}
}

static int send_one(u32 i)
{
	struct xseg_request *req;
	int r;

	spin_lock(&lock);
	req = xseg_get_request(xs, port);
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
	spin_unlock(&lock);
	if (r >= 0)
		xseg_signal(xs, (u32)r);
	return r < 0 ? r : 0;
}

static int __init kpeer_init(void)
{
	char err[256] = "";
	unsigned long deadline = jiffies + 30 * HZ;
	u32 sent = 0;
	int e = 0, r;

	xs = xseg_join("segdev", seg, "segdev", kpeer_wakeup, NULL, &e, err, sizeof(err));
	if (!xs) {
		pr_err("xseg_kpeer: join '%s': %d %s\n", seg, e, err);
		return e ? e : -EINVAL;
	}
	r = xseg_bind_port(xs, port, 0);
	if (r != (int)port) {
		pr_err("xseg_kpeer: bind port %u: %d\n", port, r);
		xseg_leave(xs);
		return r < 0 ? r : -EBUSY;
	}
	while ((sent < count || atomic_read(&inflight)) && time_before(jiffies, deadline)) {
		while (sent < count && atomic_read(&inflight) < (int)window) {
			r = send_one(sent);
			if (r == -EAGAIN)
				break;
			if (r) {
				pr_err("xseg_kpeer: submit %u to port %u: %d\n", sent, peer, r);
				goto out;
			}
			sent++;
		}
		wait_event_timeout(wq, atomic_read(&inflight) < (int)window || sent == count, HZ / 10);
		if (sent == count && atomic_read(&inflight))
			wait_event_timeout(wq, !atomic_read(&inflight), HZ / 10);
		kpeer_wakeup(xs, port, NULL);	/* a wake-up is never the only way */
	}
	r = 0;
out:
	if (!r && (atomic_read(&good) != (int)count || atomic_read(&bad))) {
		pr_err("xseg_kpeer: %d good, %d bad replies of %u (%u sent, %d in flight)\n",
		       atomic_read(&good), atomic_read(&bad), count, sent, atomic_read(&inflight));
		r = -EIO;
	}
	if (r) {
		xseg_leave(xs);
		return r;
	}
	pr_info("xseg_kpeer: PASS: %u requests to port %u checked; serving port %u of '%s'\n",
		count, peer, port, seg);
	return 0;
}

static void __exit kpeer_exit(void)
{
	xseg_leave(xs);
	pr_info("xseg_kpeer: done, served %lld requests\n", (long long)atomic64_read(&served));
}

module_init(kpeer_init);
module_exit(kpeer_exit);
MODULE_LICENSE("Dual BSD/GPL");
MODULE_DESCRIPTION("xseg kernel peer exchanging requests with a user peer (VM test module)");
