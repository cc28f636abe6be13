// SPDX-License-Identifier: BSD-2-Clause
/*
 * peers/kernel/xsegbd/xsegbd.c - xsegbd.ko: blk-mq block devices /dev/xsegbdN
 * served by a user storage peer (blockd, patternd...) through an xseg
 * segment of type segdev.
 *
 *   echo "segment=vol target=disk0 dst=1 [src=N] [qdepth=N] [timeout=S] [discard=0|1]" \
 *        > /sys/kernel/xsegbd/add          -> /dev/xsegbdN (N: the lowest free id)
 *   cat /sys/kernel/xsegbd/list            one line per device
 *   echo N > /sys/kernel/xsegbd/remove     (-EBUSY while the device is open)
 *
 * add joins the segdev segment as a kernel peer of type "segdev" (a callback
 * peer: xseg_segdev.ko), binds the source port (a dynamic one unless src=),
 * asks the storage peer on port dst for the target's size with an INFO
 * request, OPENs the target (peers/user/volume.h: vlmcd locks a volume for
 * this port; "ro=1" and a read-only disk for a snapshot, VOL@SNAP; a peer
 * without opens answers ENOTSUP and is used as before) and creates the
 * disk; remove CLOSEs what add opened. Block requests become xseg requests:
 * READ/WRITE (offset and size in bytes, data in the request buffer),
 * FLUSH, DISCARD, WRITE_ZEROES, and XF_FUA for FUA writes. A request's data
 * must fit the segment's largest buffer class (max_hw_sectors follows it).
 *
 * Submission in batches: requests blk-mq queues with !bd->last are queued
 * to the peer without a signal; the last of the batch (or .commit_rqs)
 * signals once (d->owed).
 *
 * Completion: the storage peer's signal reaches our callback (the segdev
 * doorbell, in the signaler's context, never sleeping), which receives
 * every reply queued, copies read data into the bios and ends the block
 * requests.
 * A kernel-side table maps each xseg request index to the block request it
 * carries; whoever takes the entry (the callback or the timeout handler)
 * ends the request, exactly once. Nothing read from the shared segment is
 * trusted beyond that: a reply to an index we have no request for is only
 * given back.
 *
 * A dead or stuck storage peer: after `timeout` seconds (default 30) the
 * timeout handler fails the request (EIO), runs xseg recovery (a dead
 * peer's port is freed and its queued requests fail back to us at once) and
 * from then on submissions to the freed port fail immediately. Requests
 * whose reply never comes stay counted as lost; when no xseg request is free
 * while some are lost, new I/O fails instead of waiting. The kernel never
 * waits for a peer without a timeout.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/blkdev.h>
#include <linux/blk-mq.h>
#include <linux/bvec.h>
#include <linux/highmem.h>
#include <linux/idr.h>
#include <linux/kobject.h>
#include <linux/sysfs.h>
#include <linux/slab.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/jiffies.h>
#include <linux/ctype.h>
#include <asm/unaligned.h>
#include "../../../xseg/xseg_internal.h"
#include "../../../drivers/kernel/segdev/xseg_segdev.h"
#include "../kctl.h"

#define XSEGBD_MINORS		16
#define XSEGBD_MAX_DEVS		256
#define XSEGBD_SYNC		((struct request *)1)	/* an add/remove-time request (INFO, OPEN, CLOSE) */

static unsigned int default_timeout = 30;
module_param(default_timeout, uint, 0644);
MODULE_PARM_DESC(default_timeout, "seconds before a request to the storage peer fails (default 30)");

struct xsegbd_dev {
	int id;
	struct list_head node;		/* xsegbd_devs */
	char segname[XSEG_NAME_LEN];
	char target[XSEG_TARGET_MAX + 1];
	u32 tlen;
	u32 src, dst, qdepth, timeout;
	bool discard;
	bool readonly;			/* the target is a snapshot (VOL@SNAP) */
	u64 size;			/* bytes, from INFO */
	u64 max_io;			/* largest buffer class */
	kuid_t owner;
	struct xseg *xs;
	spinlock_t lock;		/* serializes our xseg calls on port src */
	struct request **inflight;	/* per xseg request index */
	u32 nr_requests;
	atomic_t lost;			/* timed out, reply not back yet */
	/*
	 * The doorbell owed to the storage peer: 1 + the port that requests
	 * queued with !bd->last went to, 0 if none. The request that ends the
	 * batch (bd->last) or .commit_rqs rings it, once for the batch.
	 */
	atomic_t owed;
	atomic64_t completed, failed, timeouts;
	/*
	 * Counters of the batching: doorbells rung to the storage peer,
	 * wake-ups of our callback that received replies, and replies that
	 * only the timeout handler's drain found (a lost wake-up: should stay 0).
	 */
	atomic64_t doorbells, wakeups, rescued;
	/* The INFO, OPEN and CLOSE requests of add and remove, one at a time. */
	wait_queue_head_t sync_wq;
	u32 sync_op;
	int sync_done;			/* 0 waiting, 1 served, -errno failed */
	u64 sync_size;
	char sync_msg[128];		/* a failed reply's text (volume.h), NUL-terminated */
	bool opened;			/* OPEN succeeded: remove CLOSEs it */
	struct blk_mq_tag_set tag_set;
	struct gendisk *disk;
	int open_count;			/* under xsegbd_mutex */
	bool removing;
};

/* What blk-mq keeps per block request. */
struct xsegbd_cmd {
	u32 idx;			/* the xseg request carrying it */
	void *data;			/* its buffer, computed at submit */
};

static DEFINE_MUTEX(xsegbd_mutex);	/* devices list, ids, open counts */
static LIST_HEAD(xsegbd_devs);
static DEFINE_IDA(xsegbd_ida);
static int xsegbd_major;
static struct kobject *xsegbd_kobj;

static blk_status_t reply_status(u32 state, int error)
{
	if ((state & XS_FAILED) || !(state & XS_SERVED))
		return error > 0 && error < 4096 ? errno_to_blk_status(-error) : BLK_STS_IOERR;
	return BLK_STS_OK;
}

/* Copy between a block request's bios and a linear buffer. */
static void copy_rq(struct request *rq, void *buf, bool to_buf)
{
	struct req_iterator iter;
	struct bio_vec bv;
	size_t off = 0;

	rq_for_each_segment(bv, rq, iter) {
		void *p = bvec_kmap_local(&bv);

		if (to_buf) {
			memcpy((u8 *)buf + off, p, bv.bv_len);
		} else {
			memcpy(p, (u8 *)buf + off, bv.bv_len);
			flush_dcache_page(bv.bv_page);
		}
		kunmap_local(p);
		off += bv.bv_len;
	}
}

/* Give a request back (its buffer goes with it). */
static void put_req(struct xsegbd_dev *d, struct xseg_request *req)
{
	spin_lock(&d->lock);
	xseg_put_request(d->xs, req);
	spin_unlock(&d->lock);
}

/* One reply: end the block request it carries, if it still has one. */
static void complete_one(struct xsegbd_dev *d, struct xseg_request *req)
{
	int idx = xseg_request_index(d->xs, req);
	u32 state = READ_ONCE(req->state);
	int error = READ_ONCE(req->error);
	u64 serviced = READ_ONCE(req->serviced);
	struct request *rq;
	blk_status_t st;

	if (idx < 0 || (u32)idx >= d->nr_requests) {
		put_req(d, req);
		return;
	}
	rq = xchg(&d->inflight[idx], NULL);
	if (!rq) {
		/* Its block request timed out (or a stray reply): only give it back. */
		put_req(d, req);
		atomic_dec_if_positive(&d->lost);
		return;
	}
	if (rq == XSEGBD_SYNC) {
		void *data = xseg_req_data(d->xs, req);
		u64 cap = READ_ONCE(req->data_len);
		bool info = d->sync_op == X_INFO;
		int done;

		st = reply_status(state, error);
		if (st == BLK_STS_OK && info && data && serviced == 8 && cap >= 8)
			d->sync_size = get_unaligned_le64(data);
		d->sync_msg[0] = 0;
		if (st != BLK_STS_OK && data && serviced > 0) {
			/* The peer's text: bounded by our buffer and theirs, shown once in the log. */
			u64 n = min3(serviced, cap, (u64)sizeof(d->sync_msg) - 1);

			memcpy(d->sync_msg, data, n);
			d->sync_msg[n] = 0;
		}
		put_req(d, req);
		if (st == BLK_STS_OK)
			done = !info || serviced == 8 ? 1 : -EPROTO;
		else
			done = error > 0 && error < 4096 ? -error : -EIO;
		WRITE_ONCE(d->sync_done, done);
		wake_up(&d->sync_wq);
		return;
	}
	st = reply_status(state, error);
	if (st == BLK_STS_OK && (req_op(rq) == REQ_OP_READ || req_op(rq) == REQ_OP_WRITE) &&
	    serviced != blk_rq_bytes(rq))
		st = BLK_STS_IOERR;	/* short: the peer served less than asked */
	if (st == BLK_STS_OK && req_op(rq) == REQ_OP_READ)
		copy_rq(rq, ((struct xsegbd_cmd *)blk_mq_rq_to_pdu(rq))->data, false);
	put_req(d, req);
	if (st == BLK_STS_OK)
		atomic64_inc(&d->completed);
	else
		atomic64_inc(&d->failed);
	blk_mq_end_request(rq, st);
}

/*
 * Receive every reply queued to our port; the number received. Any context;
 * never sleeps. The caller need not look again: a reply queued after our
 * last (empty) receive was followed by the peer's signal, and the
 * dispatcher clears the port's pending word (a full barrier) before it
 * calls us, so that signal calls us again (segdev_area.h).
 */
static u32 xsegbd_drain(struct xsegbd_dev *d)
{
	u32 n, limit = 4 * d->nr_requests + 16;

	for (n = 0; n < limit; n++) {
		struct xseg_request *req;

		spin_lock(&d->lock);
		req = xseg_receive(d->xs, d->src);
		spin_unlock(&d->lock);
		if (!req)
			break;
		complete_one(d, req);
	}
	return n;
}

/*
 * The segdev driver's callback: atomic context, possibly on several CPUs at
 * once. One call per doorbell of the storage peer, which rings once for
 * every batch of replies it sends (peers/user/peer.c): every reply queued
 * is completed here.
 */
static void xsegbd_wakeup(struct xseg *xs, uint32_t portno, void *arg)
{
	struct xsegbd_dev *d = arg;

	if (xsegbd_drain(d))
		atomic64_inc(&d->wakeups);
}

/* Ring the storage peer's port @port (queued to by us). */
static void xsegbd_ring(struct xsegbd_dev *d, u32 port)
{
	atomic64_inc(&d->doorbells);
	xseg_signal(d->xs, port);
}

/*
 * The doorbell of a batch: requests queued with !bd->last leave it owed
 * (d->owed); the last one, or .commit_rqs when blk-mq ends the batch early,
 * rings it once. Rings @port (>= 0: the port the caller's request went to,
 * which covers what is owed to it) or, with -1, only what is owed; an owed
 * port other than @port (the destination's redirect changed within the
 * batch) is rung first.
 */
static void xsegbd_flush_doorbell(struct xsegbd_dev *d, int port)
{
	int old = atomic_xchg(&d->owed, 0);

	if (old && old != port + 1)
		xsegbd_ring(d, (u32)(old - 1));
	if (port >= 0)
		xsegbd_ring(d, (u32)port);
}

static void xsegbd_commit_rqs(struct blk_mq_hw_ctx *hctx)
{
	xsegbd_flush_doorbell(hctx->queue->queuedata, -1);
}

static blk_status_t xsegbd_queue_rq(struct blk_mq_hw_ctx *hctx, const struct blk_mq_queue_data *bd)
{
	struct request *rq = bd->rq;
	struct xsegbd_dev *d = rq->q->queuedata;
	struct xsegbd_cmd *cmd = blk_mq_rq_to_pdu(rq);
	struct xseg_request *req;
	u64 len = blk_rq_bytes(rq), datalen = 0;
	u32 op;
	int idx, r;

	switch (req_op(rq)) {
	case REQ_OP_READ:
		op = X_READ;
		datalen = len;
		break;
	case REQ_OP_WRITE:
		op = X_WRITE;
		datalen = len;
		break;
	case REQ_OP_FLUSH:
		op = X_FLUSH;
		len = 0;
		break;
	case REQ_OP_DISCARD:
		op = X_DISCARD;
		break;
	case REQ_OP_WRITE_ZEROES:
		op = X_WRITE_ZEROES;
		break;
	default:
		return BLK_STS_NOTSUPP;
	}
	spin_lock(&d->lock);
	req = xseg_get_request(d->xs, d->src);
	if (!req) {
		spin_unlock(&d->lock);
		/* All out: with some lost to a stuck peer, fail rather than wait forever. */
		return atomic_read(&d->lost) ? BLK_STS_IOERR : BLK_STS_RESOURCE;
	}
	r = xseg_prep_request(d->xs, req, d->target, d->tlen, datalen);
	if (r) {
		xseg_put_request(d->xs, req);
		spin_unlock(&d->lock);
		return r == -ENOBUFS ? BLK_STS_RESOURCE : BLK_STS_IOERR;
	}
	spin_unlock(&d->lock);
	idx = xseg_request_index(d->xs, req);
	cmd->data = datalen ? xseg_req_data(d->xs, req) : NULL;
	if (idx < 0 || (u32)idx >= d->nr_requests || (datalen && !cmd->data)) {
		put_req(d, req);
		return BLK_STS_IOERR;
	}
	cmd->idx = idx;
	req->op = op;
	req->offset = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
	req->size = len;
	req->flags = (rq->cmd_flags & REQ_FUA) ? XF_FUA : 0;
	if (op == X_WRITE)
		copy_rq(rq, cmd->data, true);
	blk_mq_start_request(rq);
	/* Release: the callback that takes the entry sees cmd's fields. */
	smp_store_release(&d->inflight[idx], rq);
	spin_lock(&d->lock);
	r = xseg_submit(d->xs, req, d->dst);	/* the port it went to: dst or its redirect */
	spin_unlock(&d->lock);
	if (r < 0) {
		/* Not sent: take the entry back (nobody else can have it) and fail. */
		xchg(&d->inflight[idx], NULL);
		put_req(d, req);
		if (r == -EAGAIN)
			return BLK_STS_RESOURCE;
		atomic64_inc(&d->failed);
		return BLK_STS_IOERR;	/* -ENOENT: no storage peer on dst */
	}
	/*
	 * More of this batch follow (a plug, a dispatch list): leave the
	 * doorbell owed, so the peer wakes once and finds them all queued. The
	 * exchange orders our enqueue before the ringer's signal.
	 */
	if (!bd->last) {
		int old = atomic_xchg(&d->owed, r + 1);

		if (old && old != r + 1)
			xsegbd_ring(d, (u32)(old - 1));
		return BLK_STS_OK;
	}
	xsegbd_flush_doorbell(d, r);
	return BLK_STS_OK;
}

static enum blk_eh_timer_return xsegbd_timeout(struct request *rq)
{
	struct xsegbd_dev *d = rq->q->queuedata;
	struct xsegbd_cmd *cmd = blk_mq_rq_to_pdu(rq);
	struct xseg_recovery_stats rst = { 0 };

	/* A doorbell still owed (never, if blk-mq kept its word), then a reply whose wake-up was lost. */
	xsegbd_flush_doorbell(d, -1);
	atomic64_add(xsegbd_drain(d), &d->rescued);
	if (cmpxchg(&d->inflight[cmd->idx], rq, NULL) != rq)
		return BLK_EH_DONE;	/* ended by the callback meanwhile */
	atomic_inc(&d->lost);
	atomic64_inc(&d->timeouts);
	pr_warn_ratelimited("xsegbd%d: no reply from port %u within %us (%s at sector %llu): failing it\n",
			    d->id, d->dst, d->timeout, req_op(rq) == REQ_OP_READ ? "read" : "request",
			    (unsigned long long)blk_rq_pos(rq));
	blk_mq_end_request(rq, BLK_STS_IOERR);
	/* A dead peer: recovery frees its port and fails its queue back to us. */
	if (xseg_recover(d->xs, &rst) == 0 && rst.ports_freed)
		pr_warn("xsegbd%d: recovery freed %u dead port(s), %u request(s) failed back\n",
			d->id, rst.ports_freed, rst.requests_failed);
	xsegbd_drain(d);
	return BLK_EH_DONE;
}

static const struct blk_mq_ops xsegbd_mq_ops = {
	.queue_rq = xsegbd_queue_rq,
	.commit_rqs = xsegbd_commit_rqs,
	.timeout = xsegbd_timeout,
};

static int xsegbd_open(struct block_device *bdev, fmode_t mode)
{
	struct xsegbd_dev *d = bdev->bd_disk->private_data;
	int r = 0;

	mutex_lock(&xsegbd_mutex);
	if (d->removing)
		r = -ENXIO;
	else
		d->open_count++;
	mutex_unlock(&xsegbd_mutex);
	return r;
}

static void xsegbd_release(struct gendisk *disk, fmode_t mode)
{
	struct xsegbd_dev *d = disk->private_data;

	mutex_lock(&xsegbd_mutex);
	d->open_count--;
	mutex_unlock(&xsegbd_mutex);
}

static const struct block_device_operations xsegbd_fops = {
	.owner = THIS_MODULE,
	.open = xsegbd_open,
	.release = xsegbd_release,
};

/* ------------------------------------------------------------- add/remove */

/*
 * One request of add or remove, waited for: INFO (the target's size into
 * d->sync_size) or OPEN/CLOSE with the text @text (volume.h: size bytes,
 * NUL-terminated too). Returns 0 or -errno (a failed reply's text in
 * d->sync_msg). Process context, one at a time per device; bounded by
 * d->timeout.
 */
static int xsegbd_sync(struct xsegbd_dev *d, u32 op, const char *text)
{
	struct xseg_request *req;
	unsigned long deadline = jiffies + d->timeout * HZ;
	size_t tl = text ? strlen(text) : 0;
	/* Room for the size (INFO) or the text and its NUL, and for a reply's message. */
	u64 cap = sizeof(d->sync_msg);
	u8 *data;
	int idx, r;

	spin_lock(&d->lock);
	req = xseg_get_request(d->xs, d->src);
	r = req ? xseg_prep_request(d->xs, req, d->target, d->tlen, cap) : -EAGAIN;
	if (req && r)
		xseg_put_request(d->xs, req);
	spin_unlock(&d->lock);
	if (r)
		return r == -EAGAIN ? -EBUSY : r;
	idx = xseg_request_index(d->xs, req);
	data = xseg_req_data(d->xs, req);
	if (idx < 0 || (u32)idx >= d->nr_requests || !data || tl + 1 > cap) {
		put_req(d, req);
		return -EINVAL;
	}
	memset(data, 0, cap);
	if (tl)
		memcpy(data, text, tl);
	req->op = op;
	req->offset = 0;
	req->flags = 0;
	req->size = op == X_INFO ? 8 : tl;
	d->sync_op = op;
	d->sync_msg[0] = 0;
	d->sync_done = 0;
	smp_store_release(&d->inflight[idx], XSEGBD_SYNC);
	spin_lock(&d->lock);
	r = xseg_submit(d->xs, req, d->dst);	/* the port it went to: dst or its redirect */
	spin_unlock(&d->lock);
	if (r < 0) {
		xchg(&d->inflight[idx], NULL);
		put_req(d, req);
		return r;
	}
	/* In process context: joins the driver of the storage peer's type now. */
	xseg_signal(d->xs, (u32)r);
	while (!READ_ONCE(d->sync_done) && time_before(jiffies, deadline)) {
		wait_event_timeout(d->sync_wq, READ_ONCE(d->sync_done), HZ / 10);
		xsegbd_drain(d);	/* also without a wake-up (a peer of another type) */
	}
	r = READ_ONCE(d->sync_done);
	if (r == 0 && cmpxchg(&d->inflight[idx], XSEGBD_SYNC, NULL) == XSEGBD_SYNC) {
		atomic_inc(&d->lost);
		return -ETIMEDOUT;
	}
	return r < 0 ? r : 0;
}

static u64 largest_class(struct xseg *xs)
{
	const struct xseg_config *cfg = xseg_config(xs);
	u64 m = cfg->request_size;
	u32 i;

	for (i = 0; i < cfg->nr_classes && i < XSEG_MAX_BUF_CLASSES - 1; i++)
		m = max(m, cfg->classes[i].size);
	return m;
}

/* CLOSE what add OPENed (no I/O of ours is left). A failure is logged: the peer's lock outlives us. */
static void xsegbd_close(struct xsegbd_dev *d)
{
	int r;

	if (!d->opened)
		return;
	d->opened = false;
	r = xsegbd_sync(d, X_CLOSE, "");
	if (r)
		pr_warn("xsegbd: segment '%s' port %u: CLOSE of target '%s' failed: %d %s\n",
			d->segname, d->dst, d->target, r, d->sync_msg);
}

static void xsegbd_free(struct xsegbd_dev *d)
{
	if (d->xs)
		xseg_leave(d->xs);	/* unbinding waits for running callbacks */
	kvfree(d->inflight);
	if (d->id >= 0)
		ida_free(&xsegbd_ida, d->id);
	kfree(d);
}

static int parse_u32(const char *v, u32 *out)
{
	return kstrtou32(v, 0, out);
}

/* Parse "key=value ..." into @d. */
static int xsegbd_parse(struct xsegbd_dev *d, char *s)
{
	char *tok, *v;
	bool have_seg = false, have_dst = false, have_target = false;
	int r;

	while ((r = kctl_next(&s, &tok, &v, "xsegbd")) > 0) {
		u32 n;

		if (!strcmp(tok, "segment")) {
			if (!*v || strlen(v) >= sizeof(d->segname))
				goto bad;
			strscpy(d->segname, v, sizeof(d->segname));
			have_seg = true;
		} else if (!strcmp(tok, "target")) {
			if (!*v || strlen(v) > XSEG_TARGET_MAX)
				goto bad;
			strscpy(d->target, v, sizeof(d->target));
			d->tlen = strlen(v);
			have_target = true;
		} else if (!strcmp(tok, "dst")) {
			if (parse_u32(v, &d->dst))
				goto bad;
			have_dst = true;
		} else if (!strcmp(tok, "src")) {
			if (!strcmp(v, "any"))
				d->src = XSEG_ANY_PORT;
			else if (parse_u32(v, &d->src))
				goto bad;
		} else if (!strcmp(tok, "qdepth")) {
			if (parse_u32(v, &n) || n < 1 || n > 4096)
				goto bad;
			d->qdepth = n;
		} else if (!strcmp(tok, "timeout")) {
			if (parse_u32(v, &n) || n < 1 || n > 3600)
				goto bad;
			d->timeout = n;
		} else if (!strcmp(tok, "discard")) {
			if (parse_u32(v, &n) || n > 1)
				goto bad;
			d->discard = n;
		} else {
			pr_err("xsegbd: add: unknown key '%s' (segment, target, dst, src, qdepth, timeout, discard)\n",
			       tok);
			return -EINVAL;
		}
		continue;
bad:
		pr_err("xsegbd: add: bad value '%s' for %s\n", v, tok);
		return -EINVAL;
	}
	if (r)
		return r;
	if (!have_seg || !have_target || !have_dst) {
		pr_err("xsegbd: add: segment=, target= and dst= are required\n");
		return -EINVAL;
	}
	return 0;
}

static int xsegbd_add(const char *buf, size_t count)
{
	struct xsegbd_dev *d;
	struct gendisk *disk;
	char err[256] = "", *s;
	int r, e = 0;

	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d)
		return -ENOMEM;
	d->id = -1;
	d->src = XSEG_ANY_PORT;
	d->qdepth = 64;
	d->timeout = READ_ONCE(default_timeout) ? READ_ONCE(default_timeout) : 30;
	d->discard = true;
	spin_lock_init(&d->lock);
	init_waitqueue_head(&d->sync_wq);
	atomic_set(&d->lost, 0);
	atomic_set(&d->owed, 0);
	s = kstrndup(buf, count, GFP_KERNEL);
	if (!s) {
		kfree(d);
		return -ENOMEM;
	}
	r = xsegbd_parse(d, s);
	kfree(s);
	if (r)
		goto free;
	d->id = ida_alloc_max(&xsegbd_ida, XSEGBD_MAX_DEVS - 1, GFP_KERNEL);
	if (d->id < 0) {
		r = d->id;
		goto free;
	}
	d->xs = xseg_join("segdev", d->segname, "segdev", xsegbd_wakeup, d, &e, err, sizeof(err));
	if (!d->xs) {
		pr_err("xsegbd: cannot join segdev segment '%s': %d %s\n", d->segname, e, err);
		r = e ? e : -EINVAL;
		goto free;
	}
	if (xseg_segdev_owner(d->xs, &d->owner))
		d->owner = GLOBAL_ROOT_UID;
	/* The index bound: a growable segment's requests reach max_requests= (xseg/grow.c). */
	d->nr_requests = xseg_max_requests(d->xs);
	d->inflight = kvcalloc(d->nr_requests, sizeof(*d->inflight), GFP_KERNEL);
	if (!d->inflight) {
		r = -ENOMEM;
		goto free;
	}
	d->qdepth = min(d->qdepth, d->nr_requests);
	r = xseg_bind_port(d->xs, d->src, XSEG_PORT_RECEIVE);
	if (r < 0) {
		pr_err("xsegbd: segment '%s': cannot bind port %d: %d\n", d->segname,
		       d->src == XSEG_ANY_PORT ? -1 : (int)d->src, r);
		goto free;
	}
	d->src = r;
	if (d->dst >= xseg_config(d->xs)->nr_ports || d->dst == d->src) {
		pr_err("xsegbd: segment '%s': bad destination port %u\n", d->segname, d->dst);
		r = -EINVAL;
		goto free;
	}
	d->max_io = largest_class(d->xs);
	r = xsegbd_sync(d, X_INFO, NULL);
	if (r) {
		pr_err("xsegbd: segment '%s' port %u: INFO of target '%s' failed: %d %s\n",
		       d->segname, d->dst, d->target, r, d->sync_msg);
		goto free;
	}
	d->size = d->sync_size;
	/* A volume (vlmcd) is opened for our port; a snapshot read-only and shared. */
	d->readonly = strchr(d->target, '@') != NULL;
	r = xsegbd_sync(d, X_OPEN, d->readonly ? "ro=1\n" : "");
	if (r == -EOPNOTSUPP) {
		r = 0;		/* a peer without opens (blockd, filed): as before */
	} else if (r) {
		pr_err("xsegbd: segment '%s' port %u: OPEN of target '%s' failed: %d %s\n",
		       d->segname, d->dst, d->target, r, d->sync_msg);
		goto free;
	} else {
		d->opened = true;
	}

	d->tag_set.ops = &xsegbd_mq_ops;
	d->tag_set.nr_hw_queues = 1;
	d->tag_set.queue_depth = d->qdepth;
	d->tag_set.numa_node = NUMA_NO_NODE;
	d->tag_set.cmd_size = sizeof(struct xsegbd_cmd);
	d->tag_set.flags = BLK_MQ_F_SHOULD_MERGE;
	d->tag_set.driver_data = d;
	r = blk_mq_alloc_tag_set(&d->tag_set);
	if (r)
		goto free;
	disk = blk_mq_alloc_disk(&d->tag_set, d);
	if (IS_ERR(disk)) {
		r = PTR_ERR(disk);
		goto free_tags;
	}
	d->disk = disk;
	disk->major = xsegbd_major;
	disk->first_minor = d->id * XSEGBD_MINORS;
	disk->minors = XSEGBD_MINORS;
	disk->fops = &xsegbd_fops;
	disk->private_data = d;
	snprintf(disk->disk_name, sizeof(disk->disk_name), "xsegbd%d", d->id);
	blk_queue_logical_block_size(disk->queue, 512);
	blk_queue_physical_block_size(disk->queue, 4096);
	blk_queue_io_min(disk->queue, 4096);
	blk_queue_max_hw_sectors(disk->queue, (unsigned int)min_t(u64, d->max_io >> SECTOR_SHIFT, UINT_MAX));
	blk_queue_max_segments(disk->queue, USHRT_MAX);
	blk_queue_max_segment_size(disk->queue, (unsigned int)min_t(u64, d->max_io, UINT_MAX));
	blk_queue_write_cache(disk->queue, true, true);
	blk_queue_rq_timeout(disk->queue, d->timeout * HZ);
	blk_queue_flag_set(QUEUE_FLAG_NONROT, disk->queue);
	blk_queue_flag_clear(QUEUE_FLAG_ADD_RANDOM, disk->queue);
	if (d->discard) {
		disk->queue->limits.discard_granularity = 4096;
		blk_queue_max_discard_sectors(disk->queue, UINT_MAX >> SECTOR_SHIFT);
		blk_queue_max_write_zeroes_sectors(disk->queue, UINT_MAX >> SECTOR_SHIFT);
	}
	set_capacity(disk, d->size >> SECTOR_SHIFT);
	set_disk_ro(disk, d->readonly);
	r = add_disk(disk);
	if (r)
		goto free_disk;
	mutex_lock(&xsegbd_mutex);
	list_add_tail(&d->node, &xsegbd_devs);
	mutex_unlock(&xsegbd_mutex);
	pr_info("xsegbd%d: segment '%s' target '%s' ports %u -> %u, %llu bytes, queue depth %u%s%s\n",
		d->id, d->segname, d->target, d->src, d->dst, d->size, d->qdepth,
		d->opened ? ", opened" : "", d->readonly ? ", read-only" : "");
	return 0;

free_disk:
	put_disk(disk);
free_tags:
	blk_mq_free_tag_set(&d->tag_set);
free:
	xsegbd_close(d);
	xsegbd_free(d);
	return r;
}

/* Remove device @d (on xsegbd_devs, not removing). Called with xsegbd_mutex held; drops it. */
static int xsegbd_remove_locked(struct xsegbd_dev *d)
{
	if (d->open_count) {
		mutex_unlock(&xsegbd_mutex);
		return -EBUSY;
	}
	d->removing = true;
	list_del(&d->node);
	mutex_unlock(&xsegbd_mutex);
	/* Waits for every request: each ends by a reply or by its timeout. */
	del_gendisk(d->disk);
	put_disk(d->disk);
	blk_mq_free_tag_set(&d->tag_set);
	xsegbd_close(d);
	pr_info("xsegbd%d: removed (%lld completed, %lld failed, %lld timed out)\n", d->id,
		(long long)atomic64_read(&d->completed), (long long)atomic64_read(&d->failed),
		(long long)atomic64_read(&d->timeouts));
	xsegbd_free(d);
	return 0;
}

static ssize_t add_store(struct kobject *k, struct kobj_attribute *a, const char *buf, size_t count)
{
	int r;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	r = xsegbd_add(buf, count);
	return r ? r : (ssize_t)count;
}

static ssize_t remove_store(struct kobject *k, struct kobj_attribute *a, const char *buf, size_t count)
{
	struct xsegbd_dev *d;
	const char *p = buf;
	int id, r;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (!strncmp(p, "xsegbd", 6))
		p += 6;
	r = kstrtoint(p, 10, &id);
	if (r)
		return r;
	mutex_lock(&xsegbd_mutex);
	list_for_each_entry(d, &xsegbd_devs, node) {
		if (d->id == id) {
			r = xsegbd_remove_locked(d);
			return r ? r : (ssize_t)count;
		}
	}
	mutex_unlock(&xsegbd_mutex);
	return -ENOENT;
}

static ssize_t list_show(struct kobject *k, struct kobj_attribute *a, char *buf)
{
	struct xsegbd_dev *d;
	int n = 0;

	mutex_lock(&xsegbd_mutex);
	list_for_each_entry(d, &xsegbd_devs, node)
		n += sysfs_emit_at(buf, n, "xsegbd%d segment=%s target=%s src=%u dst=%u size=%llu qdepth=%u timeout=%u owner=%u completed=%lld failed=%lld timeouts=%lld doorbells=%lld wakeups=%lld rescued=%lld\n",
				   d->id, d->segname, d->target, d->src, d->dst, d->size, d->qdepth,
				   d->timeout, from_kuid(&init_user_ns, d->owner), (long long)atomic64_read(&d->completed),
				   (long long)atomic64_read(&d->failed),
				   (long long)atomic64_read(&d->timeouts),
				   (long long)atomic64_read(&d->doorbells),
				   (long long)atomic64_read(&d->wakeups),
				   (long long)atomic64_read(&d->rescued));
	mutex_unlock(&xsegbd_mutex);
	return n;
}

static struct kobj_attribute add_attr = __ATTR_WO(add);
static struct kobj_attribute remove_attr = __ATTR_WO(remove);
static struct kobj_attribute list_attr = __ATTR_RO(list);

static struct attribute *xsegbd_attrs[] = {
	&add_attr.attr, &remove_attr.attr, &list_attr.attr, NULL,
};

static const struct attribute_group xsegbd_group = {
	.attrs = xsegbd_attrs,
};

static int __init xsegbd_init(void)
{
	int r;

	xsegbd_major = register_blkdev(0, "xsegbd");
	if (xsegbd_major < 0)
		return xsegbd_major;
	xsegbd_kobj = kctl_create("xsegbd", &xsegbd_group, &r);
	if (!xsegbd_kobj) {
		unregister_blkdev(xsegbd_major, "xsegbd");
		return r;
	}
	pr_info("xsegbd: ready (major %d): /sys/kernel/xsegbd/{add,remove,list}\n", xsegbd_major);
	return 0;
}

static void __exit xsegbd_exit(void)
{
	struct xsegbd_dev *d;

	/* No store runs after this: removing the files waits for them. */
	kctl_remove(xsegbd_kobj, &xsegbd_group);
	for (;;) {
		mutex_lock(&xsegbd_mutex);
		d = list_first_entry_or_null(&xsegbd_devs, struct xsegbd_dev, node);
		if (!d) {
			mutex_unlock(&xsegbd_mutex);
			break;
		}
		d->open_count = 0;	/* the module is unloading: nobody holds a device open */
		xsegbd_remove_locked(d);
	}
	unregister_blkdev(xsegbd_major, "xsegbd");
	ida_destroy(&xsegbd_ida);
	pr_info("xsegbd: unloaded\n");
}

module_init(xsegbd_init);
module_exit(xsegbd_exit);
MODULE_LICENSE("Dual BSD/GPL");
MODULE_AUTHOR("xseg");
MODULE_DESCRIPTION("xsegbd: block devices served by user storage peers through xseg segments");
