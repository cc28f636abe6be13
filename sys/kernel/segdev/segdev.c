// SPDX-License-Identifier: BSD-2-Clause
/*
 * sys/kernel/segdev/segdev.c - /dev/segdev: named segments of kernel memory
 * mapped by user processes and kernel modules, with a doorbell (user ->
 * kernel callback) and eventfds (kernel -> user). See segdev.h.
 *
 * Lifetime: a segment is a kref. References: its name (dropped by destroy),
 * each fd that selected it, each vma mapping it (vm_ops open/close), each
 * segdev_get(). The memory is freed with the last one, so destroying a
 * mapped segment is safe.
 *
 * Memory: the pages of a shmem file (shmem_file_setup), all allocated
 * (zeroed) at create, each held by a reference of ours, the file's mapping
 * unevictable (as SHM_LOCK does), so no page is ever swapped out or moved
 * under a kernel peer's callback. Kernel code sees them contiguous through
 * vmap; processes map them with vm_insert_pages. Being page-cache pages of
 * a file, they give a shared futex a key (the file's inode and the page's
 * index), so FUTEX_WAIT works on segdev memory: every user driver (posix,
 * posixfd, futex, segdev) can wait on a segdev segment.
 *
 * Locking: segdev_mutex guards the name list; seg->lock guards the doorbell
 * slot. The doorbell pointer and the eventfd table are read under RCU, so
 * ringing and notifying never sleep and never take a lock a callback could
 * already hold.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/vmalloc.h>
#include <linux/shmem_fs.h>
#include <linux/pagemap.h>
#include <linux/file.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/kref.h>
#include <linux/mutex.h>
#include <linux/list.h>
#include <linux/rcupdate.h>
#include <linux/xarray.h>
#include <linux/eventfd.h>
#include <linux/uaccess.h>
#include <linux/cred.h>
#include <linux/capability.h>
#include <linux/version.h>
#include "segdev.h"

static unsigned int max_segments = 64;
module_param(max_segments, uint, 0644);
MODULE_PARM_DESC(max_segments, "segments that may exist at once (default 64)");

static unsigned long max_size = 1ul << 30;
module_param(max_size, ulong, 0644);
MODULE_PARM_DESC(max_size, "largest segment in bytes (default 1 GiB)");

struct segdev_bell {
	void (*fn)(void *arg, u32 port);
	void *arg;
	struct rcu_head rcu;
};

struct segdev_efd {
	struct eventfd_ctx *ctx;
	struct file *owner;		/* the /dev/segdev file that registered it */
	struct rcu_head rcu;
};

struct segdev_seg {
	struct kref ref;
	struct list_head node;		/* in segdev_list while named */
	bool named;
	char name[SEGDEV_NAME_LEN];
	void *mem;			/* vmap of @pages */
	u64 size;
	struct file *shm;		/* the shmem file that owns the pages */
	struct page **pages;		/* size / PAGE_SIZE, each with a reference of ours */
	unsigned long nr_pages;
	kuid_t uid;
	struct mutex lock;		/* bell updates */
	struct segdev_bell __rcu *bell;
	struct xarray efds;		/* port -> struct segdev_efd */
	atomic64_t rings;		/* doorbell calls served */
};

/* What an open /dev/segdev file refers to. */
struct segdev_file {
	struct mutex lock;
	struct segdev_seg *seg;		/* selected segment (a reference), or NULL */
};

static DEFINE_MUTEX(segdev_mutex);
static LIST_HEAD(segdev_list);
static unsigned int segdev_count;

static void segdev_efd_free_rcu(struct rcu_head *h)
{
	struct segdev_efd *e = container_of(h, struct segdev_efd, rcu);

	eventfd_ctx_put(e->ctx);
	kfree(e);
}

/* Undo segdev_alloc_mem (any part of it). */
static void segdev_free_mem(struct segdev_seg *seg)
{
	unsigned long i;

	if (seg->mem)
		vunmap(seg->mem);
	for (i = 0; i < seg->nr_pages; i++)
		put_page(seg->pages[i]);
	kvfree(seg->pages);
	if (seg->shm)
		fput(seg->shm);
	seg->mem = NULL;
	seg->pages = NULL;
	seg->nr_pages = 0;
	seg->shm = NULL;
}

/*
 * @size bytes of zeroed shmem pages, resident (referenced, unevictable),
 * mapped contiguously for the kernel. 0 or -errno (then nothing is left).
 */
static int segdev_alloc_mem(struct segdev_seg *seg, const char *name, u64 size)
{
	unsigned long n = size >> PAGE_SHIFT, i;
	struct address_space *mapping;
	char fname[SEGDEV_NAME_LEN + 8];
	int r;

	snprintf(fname, sizeof(fname), "segdev:%s", name);
	seg->shm = shmem_file_setup(fname, size, 0);	/* accounted now, as shmget */
	if (IS_ERR(seg->shm)) {
		r = PTR_ERR(seg->shm);
		seg->shm = NULL;
		return r;
	}
	mapping = seg->shm->f_mapping;
	mapping_set_unevictable(mapping);
	seg->pages = kvcalloc(n, sizeof(*seg->pages), GFP_KERNEL);
	if (!seg->pages) {
		r = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < n; i++) {
		struct page *pg = shmem_read_mapping_page(mapping, i);	/* zeroed, referenced */

		if (IS_ERR(pg)) {
			r = PTR_ERR(pg);
			goto fail;
		}
		seg->pages[seg->nr_pages++] = pg;
		if (fatal_signal_pending(current)) {
			r = -EINTR;
			goto fail;
		}
		cond_resched();
	}
	seg->mem = vmap(seg->pages, n, VM_MAP, PAGE_KERNEL);
	if (!seg->mem) {
		r = -ENOMEM;
		goto fail;
	}
	return 0;
fail:
	segdev_free_mem(seg);
	return r;
}

static void segdev_release(struct kref *ref)
{
	struct segdev_seg *seg = container_of(ref, struct segdev_seg, ref);
	struct segdev_efd *e;
	unsigned long port;

	WARN_ON(rcu_access_pointer(seg->bell));
	xa_for_each(&seg->efds, port, e) {
		xa_erase(&seg->efds, port);
		call_rcu(&e->rcu, segdev_efd_free_rcu);
	}
	xa_destroy(&seg->efds);
	pr_debug("segdev: segment '%s' freed\n", seg->name);
	segdev_free_mem(seg);
	kfree(seg);
}

void segdev_put(struct segdev_seg *seg)
{
	if (seg)
		kref_put(&seg->ref, segdev_release);
}
EXPORT_SYMBOL_GPL(segdev_put);

static int segdev_name_ok(const char *name)
{
	size_t n = strnlen(name, SEGDEV_NAME_LEN), i;

	if (n == 0 || n >= SEGDEV_NAME_LEN)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (name[i] <= ' ' || name[i] == '/' || name[i] == 0x7f)
			return -EINVAL;
	return 0;
}

/* Under segdev_mutex. */
static struct segdev_seg *segdev_find(const char *name)
{
	struct segdev_seg *seg;

	list_for_each_entry(seg, &segdev_list, node)
		if (!strcmp(seg->name, name))
			return seg;
	return NULL;
}

/* Create @name and return it with one extra reference (besides the name's). */
static struct segdev_seg *segdev_create_ref(const char *name, u64 size)
{
	struct segdev_seg *seg;
	int r;

	r = segdev_name_ok(name);
	if (r)
		return ERR_PTR(r);
	if (size == 0 || size % PAGE_SIZE || size > READ_ONCE(max_size))
		return ERR_PTR(-EINVAL);
	seg = kzalloc(sizeof(*seg), GFP_KERNEL);
	if (!seg)
		return ERR_PTR(-ENOMEM);
	r = segdev_alloc_mem(seg, name, size);
	if (r) {
		kfree(seg);
		return ERR_PTR(r);
	}
	kref_init(&seg->ref);		/* the name's reference */
	strscpy(seg->name, name, sizeof(seg->name));
	seg->size = size;
	seg->uid = current_euid();
	mutex_init(&seg->lock);
	xa_init(&seg->efds);
	mutex_lock(&segdev_mutex);
	if (segdev_find(name))
		r = -EEXIST;
	else if (segdev_count >= READ_ONCE(max_segments))
		r = -ENOSPC;
	if (r) {
		mutex_unlock(&segdev_mutex);
		segdev_free_mem(seg);
		kfree(seg);
		return ERR_PTR(r);
	}
	seg->named = true;
	list_add_tail(&seg->node, &segdev_list);
	segdev_count++;
	kref_get(&seg->ref);
	mutex_unlock(&segdev_mutex);
	pr_debug("segdev: segment '%s' created (%llu bytes)\n", name, size);
	return seg;
}

int segdev_create(const char *name, u64 size)
{
	struct segdev_seg *seg = segdev_create_ref(name, size);

	if (IS_ERR(seg))
		return PTR_ERR(seg);
	segdev_put(seg);
	return 0;
}
EXPORT_SYMBOL_GPL(segdev_create);

struct segdev_seg *segdev_get(const char *name)
{
	struct segdev_seg *seg;

	mutex_lock(&segdev_mutex);
	seg = segdev_find(name);
	if (seg)
		kref_get(&seg->ref);
	mutex_unlock(&segdev_mutex);
	return seg ? seg : ERR_PTR(-ENOENT);
}
EXPORT_SYMBOL_GPL(segdev_get);

static bool segdev_may(const struct segdev_seg *seg)
{
	return uid_eq(current_euid(), seg->uid) || capable(CAP_SYS_ADMIN);
}

/* Remove @name; @check: only its owner (or CAP_SYS_ADMIN) may. */
static int segdev_destroy_checked(const char *name, bool check)
{
	struct segdev_seg *seg;
	int r = 0;

	if (segdev_name_ok(name))
		return -EINVAL;
	mutex_lock(&segdev_mutex);
	seg = segdev_find(name);
	if (!seg) {
		r = -ENOENT;
	} else if (check && !segdev_may(seg)) {
		r = -EPERM;
	} else {
		list_del(&seg->node);
		seg->named = false;
		segdev_count--;
	}
	mutex_unlock(&segdev_mutex);
	if (!r)
		segdev_put(seg);	/* the name's reference */
	return r;
}

int segdev_destroy(const char *name)
{
	return segdev_destroy_checked(name, false);
}
EXPORT_SYMBOL_GPL(segdev_destroy);

void *segdev_mem(struct segdev_seg *seg)
{
	return seg->mem;
}
EXPORT_SYMBOL_GPL(segdev_mem);

u64 segdev_size(struct segdev_seg *seg)
{
	return seg->size;
}
EXPORT_SYMBOL_GPL(segdev_size);

kuid_t segdev_owner(struct segdev_seg *seg)
{
	return seg->uid;
}
EXPORT_SYMBOL_GPL(segdev_owner);

const char *segdev_name(struct segdev_seg *seg)
{
	return seg->name;
}
EXPORT_SYMBOL_GPL(segdev_name);

int segdev_set_doorbell(struct segdev_seg *seg, void (*fn)(void *arg, u32 port), void *arg)
{
	struct segdev_bell *b;
	int r = 0;

	if (!fn)
		return -EINVAL;
	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		return -ENOMEM;
	b->fn = fn;
	b->arg = arg;
	mutex_lock(&seg->lock);
	if (rcu_access_pointer(seg->bell))
		r = -EBUSY;
	else
		rcu_assign_pointer(seg->bell, b);
	mutex_unlock(&seg->lock);
	if (r)
		kfree(b);
	return r;
}
EXPORT_SYMBOL_GPL(segdev_set_doorbell);

void segdev_clear_doorbell(struct segdev_seg *seg)
{
	struct segdev_bell *b;

	mutex_lock(&seg->lock);
	b = rcu_dereference_protected(seg->bell, lockdep_is_held(&seg->lock));
	RCU_INIT_POINTER(seg->bell, NULL);
	mutex_unlock(&seg->lock);
	if (b) {
		synchronize_rcu();	/* every ring that saw it has returned */
		kfree(b);
	}
}
EXPORT_SYMBOL_GPL(segdev_clear_doorbell);

/*
 * The doorbell: the kernel callback serves it; without one, the eventfd
 * registered for @port (a user peer woken by another user peer); -ENXIO if
 * neither exists.
 */
static int segdev_ring(struct segdev_seg *seg, u32 port)
{
	struct segdev_bell *b;
	int r = -ENXIO;

	rcu_read_lock();
	b = rcu_dereference(seg->bell);
	if (b) {
		b->fn(b->arg, port);
		atomic64_inc(&seg->rings);
		r = 0;
	}
	rcu_read_unlock();
	if (!b && port < SEGDEV_MAX_PORTS && segdev_notify(seg, port) == 0)
		r = 0;
	return r;
}

int segdev_notify(struct segdev_seg *seg, u32 port)
{
	struct segdev_efd *e;
	int r = -ENOENT;

	rcu_read_lock();
	e = xa_load(&seg->efds, port);
	if (e) {
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
		eventfd_signal(e->ctx);
#else
		eventfd_signal(e->ctx, 1);
#endif
		r = 0;
	}
	rcu_read_unlock();
	return r;
}
EXPORT_SYMBOL_GPL(segdev_notify);

/* ------------------------------------------------------------ the device */

static int segdev_open(struct inode *inode, struct file *file)
{
	struct segdev_file *f = kzalloc(sizeof(*f), GFP_KERNEL);

	if (!f)
		return -ENOMEM;
	mutex_init(&f->lock);
	file->private_data = f;
	return 0;
}

static int segdev_file_release(struct inode *inode, struct file *file)
{
	struct segdev_file *f = file->private_data;
	struct segdev_seg *seg = f->seg;

	if (seg) {
		struct segdev_efd *e;
		unsigned long port;

		/* This file's eventfd registrations end with it. */
		xa_lock(&seg->efds);
		xa_for_each(&seg->efds, port, e) {
			if (e->owner == file) {
				__xa_erase(&seg->efds, port);
				call_rcu(&e->rcu, segdev_efd_free_rcu);
			}
		}
		xa_unlock(&seg->efds);
		segdev_put(seg);
	}
	kfree(f);
	return 0;
}

/* The selected segment, or NULL. The file keeps its reference until release. */
static struct segdev_seg *segdev_selected(struct file *file)
{
	struct segdev_file *f = file->private_data;
	struct segdev_seg *seg;

	mutex_lock(&f->lock);
	seg = f->seg;
	mutex_unlock(&f->lock);
	return seg;
}

static int segdev_select(struct file *file, struct segdev_seg *seg)
{
	struct segdev_file *f = file->private_data;
	int r = 0;

	mutex_lock(&f->lock);
	if (f->seg)
		r = -EBUSY;
	else
		f->seg = seg;
	mutex_unlock(&f->lock);
	return r;
}

static int segdev_get_req(struct segdev_req *req, void __user *arg)
{
	if (copy_from_user(req, arg, sizeof(*req)))
		return -EFAULT;
	if (req->flags || req->pad)
		return -EINVAL;
	if (strnlen(req->name, SEGDEV_NAME_LEN) >= SEGDEV_NAME_LEN)
		return -EINVAL;
	return segdev_name_ok(req->name);
}

static int segdev_set_eventfd(struct file *file, struct segdev_seg *seg, void __user *arg)
{
	struct segdev_eventfd a;
	struct segdev_efd *e = NULL, *old;

	if (copy_from_user(&a, arg, sizeof(a)))
		return -EFAULT;
	if (a.port >= SEGDEV_MAX_PORTS)
		return -EINVAL;
	if (a.fd >= 0) {
		struct eventfd_ctx *ctx = eventfd_ctx_fdget(a.fd);

		if (IS_ERR(ctx))
			return PTR_ERR(ctx);
		e = kzalloc(sizeof(*e), GFP_KERNEL);
		if (!e) {
			eventfd_ctx_put(ctx);
			return -ENOMEM;
		}
		e->ctx = ctx;
		e->owner = file;
	} else if (a.fd != -1) {
		return -EBADF;
	}
	old = e ? xa_store(&seg->efds, a.port, e, GFP_KERNEL) : xa_erase(&seg->efds, a.port);
	if (xa_is_err(old)) {
		eventfd_ctx_put(e->ctx);
		kfree(e);
		return xa_err(old);
	}
	if (old)
		call_rcu(&old->rcu, segdev_efd_free_rcu);
	return 0;
}

static long segdev_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;
	struct segdev_seg *seg;
	struct segdev_req req;
	int r;

	switch (cmd) {
	case SEGDEV_IOC_CREATE:
		r = segdev_get_req(&req, uarg);
		if (r)
			return r;
		if (segdev_selected(file))
			return -EBUSY;
		seg = segdev_create_ref(req.name, req.size);
		if (IS_ERR(seg))
			return PTR_ERR(seg);
		r = segdev_select(file, seg);
		if (r) {
			segdev_put(seg);
			return r;
		}
		return 0;
	case SEGDEV_IOC_OPEN:
		r = segdev_get_req(&req, uarg);
		if (r)
			return r;
		seg = segdev_get(req.name);
		if (IS_ERR(seg))
			return PTR_ERR(seg);
		if (!segdev_may(seg)) {
			segdev_put(seg);
			return -EACCES;
		}
		r = segdev_select(file, seg);
		if (r) {
			segdev_put(seg);
			return r;
		}
		req.size = seg->size;
		return copy_to_user(uarg, &req, sizeof(req)) ? -EFAULT : 0;
	case SEGDEV_IOC_SIZE:
		seg = segdev_selected(file);
		if (!seg)
			return -ENXIO;
		return put_user(seg->size, (__u64 __user *)uarg);
	case SEGDEV_IOC_DESTROY:
		r = segdev_get_req(&req, uarg);
		if (r)
			return r;
		return segdev_destroy_checked(req.name, true);
	case SEGDEV_IOC_RING: {
		u32 port;

		seg = segdev_selected(file);
		if (!seg)
			return -ENXIO;
		if (get_user(port, (__u32 __user *)uarg))
			return -EFAULT;
		return segdev_ring(seg, port);
	}
	case SEGDEV_IOC_EVENTFD:
		seg = segdev_selected(file);
		if (!seg)
			return -ENXIO;
		return segdev_set_eventfd(file, seg, uarg);
	default:
		return -ENOTTY;
	}
}

/* The doorbell: each 4-byte word written is a port number to ring. */
static ssize_t segdev_write(struct file *file, const char __user *buf, size_t len, loff_t *ppos)
{
	struct segdev_seg *seg = segdev_selected(file);
	u32 ports[16];
	size_t done = 0;

	if (!seg)
		return -ENXIO;
	if (len == 0 || len % sizeof(u32))
		return -EINVAL;
	while (done < len) {
		size_t n = min(len - done, sizeof(ports)), i;
		int r;

		if (copy_from_user(ports, buf + done, n))
			return done ? (ssize_t)done : -EFAULT;
		for (i = 0; i < n / sizeof(u32); i++) {
			r = segdev_ring(seg, ports[i]);
			if (r)
				return done ? (ssize_t)done : r;
			done += sizeof(u32);
		}
		cond_resched();
	}
	return done;
}

static void segdev_vm_open(struct vm_area_struct *vma)
{
	struct segdev_seg *seg = vma->vm_private_data;

	kref_get(&seg->ref);
}

static void segdev_vm_close(struct vm_area_struct *vma)
{
	segdev_put(vma->vm_private_data);
}

static const struct vm_operations_struct segdev_vm_ops = {
	.open = segdev_vm_open,
	.close = segdev_vm_close,
};

static int segdev_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct segdev_seg *seg = segdev_selected(file);
	unsigned long npages;
	int r;

	if (!seg)
		return -ENXIO;
	/* Shared memory only: a private (copy-on-write) view shares nothing. */
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	npages = vma_pages(vma);
	if (vma->vm_pgoff >= seg->nr_pages || npages > seg->nr_pages - vma->vm_pgoff)
		return -EINVAL;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
#else
	vma->vm_flags |= VM_DONTEXPAND | VM_DONTDUMP;
#endif
	/* The segment's own pages (not copies); sets VM_MIXEDMAP. */
	r = vm_insert_pages(vma, vma->vm_start, seg->pages + vma->vm_pgoff, &npages);
	if (r)
		return r;
	if (npages)
		return -ENOMEM;
	vma->vm_private_data = seg;
	vma->vm_ops = &segdev_vm_ops;
	segdev_vm_open(vma);
	return 0;
}

static const struct file_operations segdev_fops = {
	.owner = THIS_MODULE,
	.open = segdev_open,
	.release = segdev_file_release,
	.unlocked_ioctl = segdev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.write = segdev_write,
	.mmap = segdev_mmap,
	.llseek = noop_llseek,
};

static struct miscdevice segdev_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "segdev",
	.fops = &segdev_fops,
	.mode = 0600,
};

static int __init segdev_init(void)
{
	int r = misc_register(&segdev_misc);

	if (r)
		return r;
	pr_info("segdev: /dev/segdev ready\n");
	return 0;
}

static void __exit segdev_exit(void)
{
	struct segdev_seg *seg, *tmp;

	misc_deregister(&segdev_misc);
	/* No file or mapping is left (each holds the module); drop the names. */
	mutex_lock(&segdev_mutex);
	list_for_each_entry_safe(seg, tmp, &segdev_list, node) {
		list_del(&seg->node);
		seg->named = false;
		segdev_count--;
		if (kref_read(&seg->ref) != 1)
			pr_warn("segdev: segment '%s' still referenced at unload\n", seg->name);
		segdev_put(seg);
	}
	mutex_unlock(&segdev_mutex);
	rcu_barrier();		/* eventfd releases queued with call_rcu */
}

module_init(segdev_init);
module_exit(segdev_exit);
MODULE_LICENSE("Dual BSD/GPL");
MODULE_AUTHOR("xseg");
MODULE_DESCRIPTION("segdev: named kernel memory segments mapped by processes and modules");
