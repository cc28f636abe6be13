// SPDX-License-Identifier: BSD-2-Clause
/*
 * peers/kernel/blockd/xseg_blockd.c - xseg_blockd.ko: blockd in the kernel.
 * Storage peers that each serve one file (or block device) on a port of a
 * segdev segment, as peers/user/blockd.c does from user space, so that a
 * request of xsegbd (or of any peer of the segment) never crosses into a
 * user process: a client's doorbell calls our callback in its own context,
 * which queues the work item of that CPU; a kernel worker (no address-space
 * switch, no system call) reads or writes the file between it and the
 * request's buffer, responds and rings the client once per batch.
 *
 *   echo "segment=NAME port=N file=PATH [target=T] [ro=1]" \
 *        > /sys/kernel/xseg_blockd/add        an export (id: the lowest free;
 *                                             file="A B" for a path with blanks)
 *   cat /sys/kernel/xseg_blockd/list          one line per export
 *   echo ID > /sys/kernel/xseg_blockd/remove
 *
 * Ops, as blockd's: PING; INFO (the size, 8 bytes little endian); READ,
 * WRITE (XF_FUA: written through before the reply; XF_FLUSH: the file
 * flushed first); FLUSH, SYNC, COMMIT; DISCARD (a punched hole) and
 * WRITE_ZEROES (zeroes: a zeroed range, a punched hole, or written zeroes,
 * whichever the file system can); anything else EOPNOTSUPP (OPEN too:
 * xsegbd then uses the file as it is). With target=, a request naming
 * another target fails ENOENT. A range past the end is ENOSPC; ro=1 opens
 * the file read-only and fails every change EROFS. TRUNCATE (offset: the
 * new size) resizes a file (a block device: EOPNOTSUPP), while requests of
 * the export wait; MAPR answers the allocation of a range as extents
 * (xseg/xseg_extents.h) from SEEK_DATA/SEEK_HOLE, as blockd does.
 *
 * Everything a request carries is read once from shared memory and checked
 * (the segment is shared with user processes that may write anything): the
 * range against the size, the length against the request's buffer chunk
 * (xseg_req_buffer: one read of the index gives the chunk and its capacity).
 * Whoever may join the segment may read (and, without ro=1, write) the file
 * through the port: give the segment the owner and mode the file needs.
 *
 * remove stops new work (the callback checks `stopping` under the export's
 * lock), waits for its work items, then leaves the segment (its port is
 * unbound; requests still queued to it are failed back by recovery) and
 * closes the file.
 */
#include <linux/module.h>
#include <linux/fs.h>
#include <linux/falloc.h>
#include <linux/file.h>
#include <linux/workqueue.h>
#include <linux/spinlock.h>
#include <linux/mutex.h>
#include <linux/atomic.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/idr.h>
#include <linux/rwsem.h>
#include <linux/capability.h>
#include <linux/err.h>
#include <asm/unaligned.h>
#include "xseg/xseg.h"
#include "xseg/xseg_extents.h"
#include "../kctl.h"

#define KB_MAX_EXPORTS 256

struct kb;

/* A CPU's work item of an export. */
struct kb_work {
	struct work_struct work;
	struct kb *b;
};

/* An export: one file served on one port. */
struct kb {
	int id;
	struct list_head node;		/* kb_exports */
	char segname[XSEG_NAME_LEN];
	char path[256];
	char target[XSEG_TARGET_MAX + 1];
	u32 tlen, port;
	bool ro;
	bool blk;			/* a block device, not a regular file */
	struct xseg *xs;
	struct file *f;
	u64 size;			/* changed by TRUNCATE under resize (write) */
	struct rw_semaphore resize;	/* held (read) by requests on the size */
	struct kb_work __percpu *work;
	spinlock_t lock;		/* stopping, and queueing the work */
	bool stopping;
	atomic64_t served, failed, wakeups, rounds;
};

static LIST_HEAD(kb_exports);
static DEFINE_MUTEX(kb_mutex);		/* kb_exports, add and remove */
static DEFINE_IDA(kb_ida);
static struct workqueue_struct *kb_wq;
static struct kobject *kb_kobj;

/* The callback of the segdev driver: atomic context, maybe on two CPUs at once. */
static void kb_wakeup(struct xseg *xs, uint32_t portno, void *arg)
{
	struct kb *b = arg;
	unsigned long fl;

	spin_lock_irqsave(&b->lock, fl);	/* (irqs off: no migration meanwhile) */
	if (!b->stopping) {
		int cpu = smp_processor_id();

		if (queue_work_on(cpu, kb_wq, &per_cpu_ptr(b->work, cpu)->work))
			atomic64_inc(&b->wakeups);
	}
	spin_unlock_irqrestore(&b->lock, fl);
}

static int kb_fsync(struct kb *b, loff_t start, loff_t end, bool datasync)
{
	return b->ro ? 0 : vfs_fsync_range(b->f, start, end, datasync);
}

static int kb_zeroes(struct kb *b, u64 off, u64 len)
{
	static const u8 zero[PAGE_SIZE];
	loff_t pos = (loff_t)off;
	int r;

	r = vfs_fallocate(b->f, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, pos, len);
	if (r == -EOPNOTSUPP)
		r = vfs_fallocate(b->f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, pos, len);
	if (r != -EOPNOTSUPP)
		return r;
	while (len) {
		size_t n = min_t(u64, len, sizeof(zero));
		ssize_t w = kernel_write(b->f, zero, n, &pos);

		if (w < 0)
			return (int)w;
		if (!w)
			return -EIO;
		len -= w;
		cond_resched();
	}
	return 0;
}

/* TRUNCATE to @size: the file resized while no request of the export runs. */
static int kb_truncate(struct kb *b, struct xseg_request *req, u64 size, u32 flags)
{
	int r;

	req->serviced = 0;
	if (b->ro)
		return -EROFS;
	if (b->blk)
		return -EOPNOTSUPP;	/* a block device has the size it has */
	if (size > LLONG_MAX)
		return -EINVAL;
	down_write(&b->resize);
	r = vfs_truncate(&b->f->f_path, (loff_t)size);
	if (!r)
		WRITE_ONCE(b->size, size);
	up_write(&b->resize);
	if (!r && (flags & XF_FUA))
		r = kb_fsync(b, 0, LLONG_MAX, false);
	if (!r)
		pr_info("xseg_blockd%d: truncated '%s' to %llu bytes\n", b->id, b->path, size);
	return r;
}

/* xseg_extents_seek's look for data or a hole, on the export's file. */
static int64_t kb_seek(void *ctx, uint64_t pos, int hole)
{
	return vfs_llseek(ctx, (loff_t)pos, hole ? SEEK_HOLE : SEEK_DATA);
}

/* MAPR of [@off, @off + @len): extents, as many as the buffer takes. */
static int kb_map(struct kb *b, struct xseg_request *req, u64 off, u64 len)
{
	u64 cap = 0, dl = READ_ONCE(req->data_len), max;
	u8 *data = xseg_req_buffer(b->xs, req, &cap);
	s64 n;

	if (cap > dl)
		cap = dl;
	max = data ? cap / XSEG_EXTENT_SIZE : 0;
	if (!max)
		return -EINVAL;		/* no room for one extent */
	n = xseg_extents_seek(data, max, off, off + len, b->blk ? NULL : kb_seek, b->f);
	if (n < 0)
		return (int)n;
	req->serviced = (u64)n * XSEG_EXTENT_SIZE;
	return 0;
}

/* READ, WRITE, DISCARD, WRITE_ZEROES, MAPR: on a range, under resize (read). */
static int kb_range(struct kb *b, struct xseg_request *req, u32 op, u32 flags, u64 off, u64 len)
{
	u64 cap = 0;
	u8 *data = NULL;
	loff_t pos = (loff_t)off;
	ssize_t n;
	int r;

	if (off > b->size || len > b->size - off)
		return -ENOSPC;
	if (op == X_MAPR)
		return kb_map(b, req, off, len);
	if ((flags & XF_FLUSH) && (r = kb_fsync(b, 0, LLONG_MAX, true)))
		return r;
	if (op == X_DISCARD || op == X_WRITE_ZEROES) {
		r = !len ? 0 : op == X_DISCARD ?
			vfs_fallocate(b->f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, pos, len) :
			kb_zeroes(b, off, len);
		if (!r && len && (flags & XF_FUA))
			r = kb_fsync(b, pos, pos + len - 1, true);
		req->serviced = r ? 0 : len;
		return r;
	}
	if (len) {
		data = xseg_req_buffer(b->xs, req, &cap);
		/* One read of the chunk index gave the chunk and its capacity: the I/O stays inside it. */
		if (!data || len > cap || len > READ_ONCE(req->data_len))
			return -EINVAL;
	}
	if (op == X_READ) {
		n = len ? kernel_read(b->f, data, len, &pos) : 0;
		if (n < 0)
			return (int)n;
		if ((u64)n < len)	/* the file shrank under us: the rest is a hole */
			memset(data + n, 0, len - n);
	} else {
		n = len ? kernel_write(b->f, data, len, &pos) : 0;
		if (n < 0)
			return (int)n;
		if ((u64)n != len)
			return -EIO;
		if (len && (flags & XF_FUA) && (r = kb_fsync(b, (loff_t)off, (loff_t)(off + len - 1), true)))
			return r;
	}
	req->serviced = len;
	return 0;
}

/* Serve @req; 0 (serviced set) or a negative errno. */
static int kb_serve(struct kb *b, struct xseg_request *req)
{
	u32 op = READ_ONCE(req->op), flags = READ_ONCE(req->flags);
	u64 off = READ_ONCE(req->offset), len = READ_ONCE(req->size), cap = 0;
	u8 *data = NULL;
	int r;

	if (b->tlen && (READ_ONCE(req->target_len) != b->tlen || memcmp(req->target, b->target, b->tlen)))
		return -ENOENT;
	switch (op) {
	case X_PING:
		req->serviced = 0;
		return 0;
	case X_INFO:
		data = xseg_req_buffer(b->xs, req, &cap);
		if (!data || cap < 8 || READ_ONCE(req->data_len) < 8)
			return -EINVAL;
		put_unaligned_le64(READ_ONCE(b->size), data);
		req->serviced = 8;
		return 0;
	case X_FLUSH:
	case X_SYNC:
	case X_COMMIT:
		req->serviced = 0;
		return kb_fsync(b, 0, LLONG_MAX, op == X_FLUSH);
	case X_TRUNCATE:
		return kb_truncate(b, req, off, flags);
	case X_READ:
	case X_WRITE:
	case X_DISCARD:
	case X_WRITE_ZEROES:
	case X_MAPR:
		break;
	default:
		return -EOPNOTSUPP;
	}
	if (b->ro && op != X_READ && op != X_MAPR)
		return -EROFS;
	down_read(&b->resize);
	r = kb_range(b, req, op, flags, off, len);
	up_read(&b->resize);
	return r;
}

/*
 * A work item (the one of the CPU whose doorbell call queued it): accept
 * and serve until the port is empty; ring each client once per run of
 * replies to it (at least every 64). A request queued after our last
 * (empty) accept was followed by its client's signal, which queues a work
 * item again (one is no longer pending once it runs). The items of two
 * CPUs may drain the port together: the core takes each request for one of
 * them, and a call that finds every hold record of the port taken by the
 * other (-EAGAIN) is tried again.
 */
static void kb_work(struct work_struct *w)
{
	struct kb *b = container_of(w, struct kb_work, work)->b;
	int ring = -1;
	u32 n = 0;

	for (;;) {
		struct xseg_request *req = xseg_accept(b->xs, b->port);
		int r, to;

		if (!req)
			break;
		r = kb_serve(b, req);
		if (r) {
			while ((to = xseg_fail(b->xs, req, -r)) == -EAGAIN)
				cpu_relax();
			atomic64_inc(&b->failed);
		} else {
			req->state |= XS_SERVED;
			while ((to = xseg_respond(b->xs, req)) == -EAGAIN)
				cpu_relax();
			atomic64_inc(&b->served);
		}
		if (to >= 0 && to != ring) {
			if (ring >= 0)
				xseg_signal(b->xs, (u32)ring);
			ring = to;
		}
		if (++n % 64 == 0) {
			if (ring >= 0)
				xseg_signal(b->xs, (u32)ring);	/* do not hold a long run's replies back */
			ring = -1;
			cond_resched();
		}
	}
	if (ring >= 0)
		xseg_signal(b->xs, (u32)ring);
	atomic64_inc(&b->rounds);
}

static void kb_free(struct kb *b)
{
	if (b->xs)
		xseg_leave(b->xs);	/* unbinding waits for running callbacks */
	if (!IS_ERR_OR_NULL(b->f))
		filp_close(b->f, NULL);
	free_percpu(b->work);
	if (b->id >= 0)
		ida_free(&kb_ida, b->id);
	kfree(b);
}

/* Parse "key=value ..." into @b; 0 or -EINVAL (the kernel log says which). */
static int kb_parse(struct kb *b, char *s)
{
	bool have_seg = false, have_port = false, have_file = false;
	char *tok, *v;
	int r;

	while ((r = kctl_next(&s, &tok, &v, "xseg_blockd")) > 0) {
		u32 n;

		if (!strcmp(tok, "segment")) {
			if (!*v || strlen(v) >= sizeof(b->segname))
				goto bad;
			strscpy(b->segname, v, sizeof(b->segname));
			have_seg = true;
		} else if (!strcmp(tok, "port")) {
			if (kstrtou32(v, 0, &b->port) || b->port == XSEG_ANY_PORT)
				goto bad;
			have_port = true;
		} else if (!strcmp(tok, "file")) {
			if (!*v || strlen(v) >= sizeof(b->path))
				goto bad;
			strscpy(b->path, v, sizeof(b->path));
			have_file = true;
		} else if (!strcmp(tok, "target")) {
			if (!*v || strlen(v) > XSEG_TARGET_MAX)
				goto bad;
			strscpy(b->target, v, sizeof(b->target));
			b->tlen = strlen(v);
		} else if (!strcmp(tok, "ro")) {
			if (kstrtou32(v, 0, &n) || n > 1)
				goto bad;
			b->ro = n;
		} else {
			pr_err("xseg_blockd: add: unknown key '%s' (segment, port, file, target, ro)\n", tok);
			return -EINVAL;
		}
		continue;
bad:
		pr_err("xseg_blockd: add: bad value '%s' for %s\n", v, tok);
		return -EINVAL;
	}
	if (r)
		return r;
	if (!have_seg || !have_port || !have_file) {
		pr_err("xseg_blockd: add: segment=, port= and file= are required\n");
		return -EINVAL;
	}
	return 0;
}

static int kb_add(const char *buf, size_t count)
{
	char err[256] = "", *s;
	struct kb *b;
	int e = 0, r, cpu;

	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		return -ENOMEM;
	b->id = -1;
	spin_lock_init(&b->lock);
	init_rwsem(&b->resize);
	s = kstrndup(buf, count, GFP_KERNEL);
	if (!s) {
		r = -ENOMEM;
		goto free;
	}
	r = kb_parse(b, s);
	kfree(s);
	if (r)
		goto free;
	b->work = alloc_percpu(struct kb_work);
	if (!b->work) {
		r = -ENOMEM;
		goto free;
	}
	for_each_possible_cpu(cpu) {
		INIT_WORK(&per_cpu_ptr(b->work, cpu)->work, kb_work);
		per_cpu_ptr(b->work, cpu)->b = b;
	}
	b->f = filp_open(b->path, (b->ro ? O_RDONLY : O_RDWR) | O_LARGEFILE, 0);
	if (IS_ERR(b->f)) {
		pr_err("xseg_blockd: cannot open '%s': %pe\n", b->path, b->f);
		r = PTR_ERR(b->f);
		goto free;
	}
	if (!S_ISREG(file_inode(b->f)->i_mode) && !S_ISBLK(file_inode(b->f)->i_mode)) {
		pr_err("xseg_blockd: '%s' is not a regular file or a block device\n", b->path);
		r = -EINVAL;
		goto free;
	}
	b->blk = S_ISBLK(file_inode(b->f)->i_mode);
	b->size = i_size_read(b->f->f_mapping->host);
	b->id = ida_alloc_max(&kb_ida, KB_MAX_EXPORTS - 1, GFP_KERNEL);
	if (b->id < 0) {
		r = b->id;
		goto free;
	}
	b->xs = xseg_join("segdev", b->segname, "segdev", kb_wakeup, b, &e, err, sizeof(err));
	if (!b->xs) {
		pr_err("xseg_blockd: cannot join segdev segment '%s': %d %s\n", b->segname, e, err);
		r = e ? e : -EINVAL;
		goto free;
	}
	xseg_set_spin_us(b->xs, 0);
	r = xseg_bind_port(b->xs, b->port, XSEG_PORT_ACCEPT);
	if (r != (int)b->port) {
		pr_err("xseg_blockd: segment '%s': cannot bind port %u: %d\n", b->segname, b->port, r);
		r = r < 0 ? r : -EBUSY;
		goto free;
	}
	mutex_lock(&kb_mutex);
	list_add_tail(&b->node, &kb_exports);
	mutex_unlock(&kb_mutex);
	/* Requests queued before the bind signalled nobody. */
	kb_wakeup(b->xs, b->port, b);
	pr_info("xseg_blockd%d: serving '%s' (%llu bytes%s) on port %u of '%s'%s%s\n", b->id, b->path, b->size,
		b->ro ? ", read-only" : "", b->port, b->segname, b->tlen ? " as target " : "", b->target);
	return 0;
free:
	kb_free(b);
	return r;
}

/* Stop and free @b (taken off kb_exports by the caller). */
static void kb_remove(struct kb *b)
{
	unsigned long fl;
	int cpu;

	spin_lock_irqsave(&b->lock, fl);
	b->stopping = true;
	spin_unlock_irqrestore(&b->lock, fl);
	for_each_possible_cpu(cpu)
		flush_work(&per_cpu_ptr(b->work, cpu)->work);
	pr_info("xseg_blockd%d: removed, served %lld requests, failed %lld (%lld wake-ups, %lld rounds)\n", b->id,
		(long long)atomic64_read(&b->served), (long long)atomic64_read(&b->failed),
		(long long)atomic64_read(&b->wakeups), (long long)atomic64_read(&b->rounds));
	kb_free(b);
}

static ssize_t add_store(struct kobject *k, struct kobj_attribute *a, const char *buf, size_t count)
{
	int r;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	r = kb_add(buf, count);
	return r ? r : (ssize_t)count;
}

static ssize_t remove_store(struct kobject *k, struct kobj_attribute *a, const char *buf, size_t count)
{
	struct kb *b, *found = NULL;
	int id, r;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	r = kstrtoint(buf, 10, &id);
	if (r)
		return r;
	mutex_lock(&kb_mutex);
	list_for_each_entry(b, &kb_exports, node) {
		if (b->id == id) {
			list_del(&b->node);
			found = b;
			break;
		}
	}
	mutex_unlock(&kb_mutex);
	if (!found)
		return -ENOENT;
	kb_remove(found);
	return count;
}

static ssize_t list_show(struct kobject *k, struct kobj_attribute *a, char *buf)
{
	struct kb *b;
	int n = 0;

	mutex_lock(&kb_mutex);
	list_for_each_entry(b, &kb_exports, node) {
		/* A path with blanks is quoted, as add takes it. */
		const char *q = strpbrk(b->path, " \t") ? "\"" : "";

		n += sysfs_emit_at(buf, n, "%d segment=%s port=%u file=%s%s%s size=%llu target=%s ro=%d served=%lld failed=%lld wakeups=%lld\n",
				   b->id, b->segname, b->port, q, b->path, q, READ_ONCE(b->size),
				   b->tlen ? b->target : "-", b->ro,
				   (long long)atomic64_read(&b->served), (long long)atomic64_read(&b->failed),
				   (long long)atomic64_read(&b->wakeups));
	}
	mutex_unlock(&kb_mutex);
	return n;
}

static struct kobj_attribute add_attr = __ATTR_WO(add);
static struct kobj_attribute remove_attr = __ATTR_WO(remove);
static struct kobj_attribute list_attr = __ATTR_RO(list);

static struct attribute *kb_attrs[] = {
	&add_attr.attr, &remove_attr.attr, &list_attr.attr, NULL,
};

static const struct attribute_group kb_group = {
	.attrs = kb_attrs,
};

static int __init kb_init(void)
{
	int r;

	kb_wq = alloc_workqueue("xseg_blockd", WQ_HIGHPRI | WQ_MEM_RECLAIM, 0);
	if (!kb_wq)
		return -ENOMEM;
	kb_kobj = kctl_create("xseg_blockd", &kb_group, &r);
	if (!kb_kobj) {
		destroy_workqueue(kb_wq);
		return r;
	}
	pr_info("xseg_blockd: ready: /sys/kernel/xseg_blockd/{add,remove,list}\n");
	return 0;
}

static void __exit kb_exit(void)
{
	struct kb *b;

	/* No store runs after this: removing the files waits for them. */
	kctl_remove(kb_kobj, &kb_group);
	for (;;) {
		mutex_lock(&kb_mutex);
		b = list_first_entry_or_null(&kb_exports, struct kb, node);
		if (b)
			list_del(&b->node);
		mutex_unlock(&kb_mutex);
		if (!b)
			break;
		kb_remove(b);
	}
	destroy_workqueue(kb_wq);
	ida_destroy(&kb_ida);
	pr_info("xseg_blockd: unloaded\n");
}

module_init(kb_init);
module_exit(kb_exit);
MODULE_LICENSE("Dual BSD/GPL");
MODULE_DESCRIPTION("xseg storage peers serving files from the kernel");
