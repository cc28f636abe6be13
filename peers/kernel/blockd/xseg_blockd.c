// SPDX-License-Identifier: BSD-2-Clause
/*
 * peers/kernel/blockd/xseg_blockd.c - xseg_blockd.ko: blockd in the kernel.
 * A storage peer that serves one file (or block device) on a port of a
 * segdev segment, as peers/user/blockd.c does from user space, so that a
 * request of xsegbd (or of any peer of the segment) never crosses into a
 * user process: xsegbd's doorbell calls our callback in its own context,
 * which queues our work item; a kernel worker (no address-space switch, no
 * system call) reads or writes the file between it and the request's
 * buffer, responds and rings the client once per batch. Each CPU has its
 * own work item, queued on that CPU, so clients on two CPUs are served on
 * both.
 *
 *   insmod xseg_blockd.ko seg=NAME port=N file=PATH [target=T] [ro=1]
 *
 * Ops, as blockd's: PING; INFO (the size, 8 bytes little endian); READ,
 * WRITE (XF_FUA: written through before the reply; XF_FLUSH: the file
 * flushed first); FLUSH, SYNC, COMMIT; DISCARD (a punched hole) and
 * WRITE_ZEROES (zeroes: a zeroed range, a punched hole, or written zeroes,
 * whichever the file system can); anything else EOPNOTSUPP (OPEN too:
 * xsegbd then uses the file as it is). With target=, a request naming
 * another target fails ENOENT. A range past the end is ENOSPC; ro=1 fails
 * every change EROFS. The size is the file's at load (no TRUNCATE).
 *
 * Everything a request carries is read once from shared memory and checked
 * (the segment is shared with user processes that may write anything): the
 * range against the size, the length against the request's buffer chunk
 * (xseg_req_buffer: one read of the index gives the chunk and its capacity).
 * Whoever may join the segment may read (and, without ro=1, write) the file
 * through this port: give the segment the owner and mode the file needs.
 *
 * Unload stops new work (the callback checks `stopping` under the lock),
 * waits for the work item, then leaves the segment (its port is unbound;
 * requests still queued to it are failed back by recovery).
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/fs.h>
#include <linux/falloc.h>
#include <linux/file.h>
#include <linux/workqueue.h>
#include <linux/spinlock.h>
#include <linux/atomic.h>
#include <linux/sched.h>
#include <linux/err.h>
#include <asm/unaligned.h>
#include "xseg/xseg.h"

static char *seg = "", *file = "", *target = "";
module_param(seg, charp, 0444);
MODULE_PARM_DESC(seg, "the segdev segment to join");
module_param(file, charp, 0444);
MODULE_PARM_DESC(file, "the file (or block device) to serve");
module_param(target, charp, 0444);
MODULE_PARM_DESC(target, "answer only requests naming this target (default: any)");
static uint port = XSEG_ANY_PORT;
module_param(port, uint, 0444);
MODULE_PARM_DESC(port, "the port to serve");
static bool ro;
module_param(ro, bool, 0444);
MODULE_PARM_DESC(ro, "read-only: every change fails EROFS");

static struct kb {
	struct xseg *xs;
	struct file *f;
	u64 size;
	u32 tlen;
	struct workqueue_struct *wq;
	struct work_struct __percpu *work;	/* one work item per CPU */
	spinlock_t lock;		/* stopping, and queueing the work */
	bool stopping;
	atomic64_t served, failed, wakeups, rounds;
} kb;

/* The callback of the segdev driver: atomic context, maybe on two CPUs at once. */
static void kb_wakeup(struct xseg *xs, uint32_t portno, void *arg)
{
	unsigned long fl;

	spin_lock_irqsave(&kb.lock, fl);	/* (irqs off: no migration meanwhile) */
	if (!kb.stopping) {
		int cpu = smp_processor_id();

		if (queue_work_on(cpu, kb.wq, per_cpu_ptr(kb.work, cpu)))
			atomic64_inc(&kb.wakeups);
	}
	spin_unlock_irqrestore(&kb.lock, fl);
}

static int kb_fsync(loff_t start, loff_t end, bool datasync)
{
	return ro ? 0 : vfs_fsync_range(kb.f, start, end, datasync);
}

static int kb_zeroes(u64 off, u64 len)
{
	static const u8 zero[PAGE_SIZE];
	loff_t pos = (loff_t)off;
	int r;

	r = vfs_fallocate(kb.f, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, pos, len);
	if (r == -EOPNOTSUPP)
		r = vfs_fallocate(kb.f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, pos, len);
	if (r != -EOPNOTSUPP)
		return r;
	while (len) {
		size_t n = min_t(u64, len, sizeof(zero));
		ssize_t w = kernel_write(kb.f, zero, n, &pos);

		if (w < 0)
			return (int)w;
		if (!w)
			return -EIO;
		len -= w;
		cond_resched();
	}
	return 0;
}

/* Serve @req; 0 (serviced set) or a negative errno. */
static int kb_serve(struct xseg_request *req)
{
	u32 op = READ_ONCE(req->op), flags = READ_ONCE(req->flags);
	u64 off = READ_ONCE(req->offset), len = READ_ONCE(req->size), cap = 0;
	u8 *data = NULL;
	loff_t pos = (loff_t)off;
	ssize_t n;
	int r;

	if (kb.tlen && (READ_ONCE(req->target_len) != kb.tlen || memcmp(req->target, target, kb.tlen)))
		return -ENOENT;
	switch (op) {
	case X_PING:
		req->serviced = 0;
		return 0;
	case X_INFO:
		data = xseg_req_buffer(kb.xs, req, &cap);
		if (!data || cap < 8 || READ_ONCE(req->data_len) < 8)
			return -EINVAL;
		put_unaligned_le64(kb.size, data);
		req->serviced = 8;
		return 0;
	case X_FLUSH:
	case X_SYNC:
	case X_COMMIT:
		req->serviced = 0;
		return kb_fsync(0, LLONG_MAX, op == X_FLUSH);
	case X_READ:
	case X_WRITE:
	case X_DISCARD:
	case X_WRITE_ZEROES:
		break;
	default:
		return -EOPNOTSUPP;
	}
	if (ro && op != X_READ)
		return -EROFS;
	if (off > kb.size || len > kb.size - off)
		return -ENOSPC;
	if ((flags & XF_FLUSH) && (r = kb_fsync(0, LLONG_MAX, true)))
		return r;
	if (op == X_DISCARD || op == X_WRITE_ZEROES) {
		r = !len ? 0 : op == X_DISCARD ?
			vfs_fallocate(kb.f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, pos, len) : kb_zeroes(off, len);
		if (!r && len && (flags & XF_FUA))
			r = kb_fsync(pos, pos + len - 1, true);
		req->serviced = r ? 0 : len;
		return r;
	}
	if (len) {
		data = xseg_req_buffer(kb.xs, req, &cap);
		/* One read of the chunk index gave the chunk and its capacity: the I/O stays inside it. */
		if (!data || len > cap || len > READ_ONCE(req->data_len))
			return -EINVAL;
	}
	if (op == X_READ) {
		n = len ? kernel_read(kb.f, data, len, &pos) : 0;
		if (n < 0)
			return (int)n;
		if ((u64)n < len)	/* the file shrank under us: the rest is a hole */
			memset(data + n, 0, len - n);
	} else {
		n = len ? kernel_write(kb.f, data, len, &pos) : 0;
		if (n < 0)
			return (int)n;
		if ((u64)n != len)
			return -EIO;
		if (len && (flags & XF_FUA) && (r = kb_fsync((loff_t)off, (loff_t)(off + len - 1), true)))
			return r;
	}
	req->serviced = len;
	return 0;
}

/*
 * A work item (the one of the CPU whose doorbell call queued it): accept
 * and serve until the port is empty; ring each client once per run of
 * replies to it. A request queued after our last (empty) accept was
 * followed by its client's signal, which queues a work item again (one is
 * no longer pending once it runs). The items of two CPUs may drain the
 * port together: the core takes each request for one of them, and a call
 * that finds every hold record of the port taken by the other (-EAGAIN)
 * is tried again.
 */
static void kb_work(struct work_struct *w)
{
	int ring = -1;
	u32 n = 0;

	for (;;) {
		struct xseg_request *req = xseg_accept(kb.xs, port);
		int r, to;

		if (!req)
			break;
		r = kb_serve(req);
		if (r) {
			while ((to = xseg_fail(kb.xs, req, -r)) == -EAGAIN)
				cpu_relax();
			atomic64_inc(&kb.failed);
		} else {
			req->state |= XS_SERVED;
			while ((to = xseg_respond(kb.xs, req)) == -EAGAIN)
				cpu_relax();
			atomic64_inc(&kb.served);
		}
		if (to >= 0 && to != ring) {
			if (ring >= 0)
				xseg_signal(kb.xs, (u32)ring);
			ring = to;
		}
		if (++n % 64 == 0) {
			if (ring >= 0)
				xseg_signal(kb.xs, (u32)ring);	/* do not hold a long run's replies back */
			ring = -1;
			cond_resched();
		}
	}
	if (ring >= 0)
		xseg_signal(kb.xs, (u32)ring);
	atomic64_inc(&kb.rounds);
}

static int __init kb_init(void)
{
	char err[256] = "";
	struct inode *ino;
	int e = 0, r, cpu;

	if (!seg[0] || !file[0] || port == XSEG_ANY_PORT) {
		pr_err("xseg_blockd: seg=, port= and file= are required\n");
		return -EINVAL;
	}
	kb.tlen = strlen(target);
	if (kb.tlen > XSEG_TARGET_MAX) {
		pr_err("xseg_blockd: target= is longer than %u bytes\n", XSEG_TARGET_MAX);
		return -EINVAL;
	}
	spin_lock_init(&kb.lock);
	kb.work = alloc_percpu(struct work_struct);
	if (!kb.work)
		return -ENOMEM;
	for_each_possible_cpu(cpu)
		INIT_WORK(per_cpu_ptr(kb.work, cpu), kb_work);
	kb.f = filp_open(file, (ro ? O_RDONLY : O_RDWR) | O_LARGEFILE, 0);
	if (IS_ERR(kb.f)) {
		pr_err("xseg_blockd: cannot open '%s': %pe\n", file, kb.f);
		free_percpu(kb.work);
		return PTR_ERR(kb.f);
	}
	ino = kb.f->f_mapping->host;
	if (!S_ISREG(file_inode(kb.f)->i_mode) && !S_ISBLK(file_inode(kb.f)->i_mode)) {
		pr_err("xseg_blockd: '%s' is not a regular file or a block device\n", file);
		r = -EINVAL;
		goto close;
	}
	kb.size = i_size_read(ino);
	kb.wq = alloc_workqueue("xseg_blockd", WQ_HIGHPRI | WQ_MEM_RECLAIM, 0);
	if (!kb.wq) {
		r = -ENOMEM;
		goto close;
	}
	kb.xs = xseg_join("segdev", seg, "segdev", kb_wakeup, NULL, &e, err, sizeof(err));
	if (!kb.xs) {
		pr_err("xseg_blockd: cannot join segdev segment '%s': %d %s\n", seg, e, err);
		r = e ? e : -EINVAL;
		goto wq;
	}
	xseg_set_spin_us(kb.xs, 0);
	r = xseg_bind_port(kb.xs, port, XSEG_PORT_ACCEPT);
	if (r != (int)port) {
		pr_err("xseg_blockd: segment '%s': cannot bind port %u: %d\n", seg, port, r);
		r = r < 0 ? r : -EBUSY;
		goto leave;
	}
	/* Requests queued before the bind signalled nobody. */
	kb_wakeup(kb.xs, port, NULL);
	pr_info("xseg_blockd: serving '%s' (%llu bytes%s) on port %u of '%s'%s%s\n", file, kb.size,
		ro ? ", read-only" : "", port, seg, kb.tlen ? " as target " : "", target);
	return 0;
leave:
	xseg_leave(kb.xs);
wq:
	destroy_workqueue(kb.wq);
close:
	filp_close(kb.f, NULL);
	free_percpu(kb.work);
	return r;
}

static void __exit kb_exit(void)
{
	unsigned long fl;
	int cpu;

	spin_lock_irqsave(&kb.lock, fl);
	kb.stopping = true;
	spin_unlock_irqrestore(&kb.lock, fl);
	for_each_possible_cpu(cpu)
		flush_work(per_cpu_ptr(kb.work, cpu));
	xseg_leave(kb.xs);	/* unbinding waits for running callbacks */
	destroy_workqueue(kb.wq);
	filp_close(kb.f, NULL);
	free_percpu(kb.work);
	pr_info("xseg_blockd: done, served %lld requests, failed %lld (%lld wake-ups, %lld rounds)\n",
		(long long)atomic64_read(&kb.served), (long long)atomic64_read(&kb.failed),
		(long long)atomic64_read(&kb.wakeups), (long long)atomic64_read(&kb.rounds));
}

module_init(kb_init);
module_exit(kb_exit);
MODULE_LICENSE("Dual BSD/GPL");
MODULE_DESCRIPTION("xseg storage peer serving a file from the kernel");
