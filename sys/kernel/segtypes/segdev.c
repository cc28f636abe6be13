// SPDX-License-Identifier: BSD-2-Clause
/*
 * sys/kernel/segtypes/segdev.c - the "segdev" segment type of the kernel
 * domain, and the module that carries it, xseg_segdev.ko (with the "segdev"
 * driver of kernel peers, drivers/kernel/segdev/xseg_segdev.c; both are
 * registered when the module loads).
 *
 * A segment "segdev:NAME" is the /dev/segdev segment NAME (segdev.ko).
 * map() takes a reference (segdev_get) and pins this module; unmap() drops
 * both. create() makes the segment (owned by root) and maps it. Every
 * handle on one segment shares one struct ksd_seg (ksd.h), which the driver
 * uses too.
 *
 * Exports xseg_segdev_owner() for xseg_posix.ko: the euid that owns a
 * segment, which is whom the kernel may send SIGIO to.
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
#include "../../../drivers/kernel/segdev/xseg_segdev.h"
#include "ksd.h"

DEFINE_MUTEX(ksd_mutex);
LIST_HEAD(ksd_list);

/* See ksd.h. */
struct ksd_seg *ksd_by_base(const void *base)
{
	struct ksd_seg *ks;

	list_for_each_entry_rcu(ks, &ksd_list, node, lockdep_is_held(&ksd_mutex))
		if (ks->base == base)
			return ks;
	return NULL;
}

int xseg_segdev_owner(struct xseg *xs, kuid_t *uid)
{
	struct ksd_seg *ks;
	int r = -ENOTSUP;

	if (!xs)
		return -EINVAL;
	rcu_read_lock();
	ks = ksd_by_base(xseg_base(xs));
	if (ks) {
		*uid = ks->owner;
		r = 0;
	}
	rcu_read_unlock();
	return r;
}
EXPORT_SYMBOL_GPL(xseg_segdev_owner);

static int ksd_map_seg(struct segdev_seg *seg, void **mem, uint64_t *size, char *err, size_t errlen)
{
	struct ksd_seg *ks;

	if (!try_module_get(THIS_MODULE)) {
		segdev_put(seg);
		return -ENODEV;
	}
	mutex_lock(&ksd_mutex);
	ks = ksd_by_base(segdev_mem(seg));
	if (ks) {
		ks->maps++;
		mutex_unlock(&ksd_mutex);
		segdev_put(seg);	/* ks already holds one */
	} else {
		ks = kzalloc(sizeof(*ks), GFP_KERNEL);
		if (!ks) {
			mutex_unlock(&ksd_mutex);
			segdev_put(seg);
			module_put(THIS_MODULE);
			return -ENOMEM;
		}
		ks->seg = seg;
		ks->base = segdev_mem(seg);
		ks->size = segdev_size(seg);
		ks->owner = segdev_owner(seg);
		ks->maps = 1;
		xa_init(&ks->binds);
		list_add_rcu(&ks->node, &ksd_list);
		mutex_unlock(&ksd_mutex);
	}
	*mem = ks->base;
	*size = ks->size;
	return 0;
}

static int ksd_map(const char *name, void **mem, uint64_t *size, char *err, size_t errlen)
{
	struct segdev_seg *seg = segdev_get(name);

	if (IS_ERR(seg)) {
		if (err && errlen)
			snprintf(err, errlen, "segdev segment '%s' does not exist", name);
		return PTR_ERR(seg);
	}
	if (segdev_size(seg) < XSEG_HEADER_SIZE) {
		if (err && errlen)
			snprintf(err, errlen, "segdev segment '%s' is smaller than a header page", name);
		segdev_put(seg);
		return -EBADMSG;
	}
	return ksd_map_seg(seg, mem, size, err, errlen);
}

static void ksd_unmap(void *mem, uint64_t size)
{
	struct ksd_seg *ks;

	mutex_lock(&ksd_mutex);
	ks = ksd_by_base(mem);
	if (!ks || WARN_ON(ks->users && ks->maps == 1)) {
		mutex_unlock(&ksd_mutex);
		return;
	}
	if (--ks->maps) {
		mutex_unlock(&ksd_mutex);
		module_put(THIS_MODULE);
		return;
	}
	list_del_rcu(&ks->node);
	mutex_unlock(&ksd_mutex);
	synchronize_rcu();	/* xseg_segdev_owner() readers */
	xa_destroy(&ks->binds);
	segdev_put(ks->seg);
	kfree(ks);
	module_put(THIS_MODULE);
}

static int ksd_create(const char *name, uint64_t size, uint32_t mode, int32_t gid,
		      void **mem, char *err, size_t errlen)
{
	int r = segdev_create(name, size);

	if (r) {
		if (err && errlen)
			snprintf(err, errlen, "segdev segment '%s': %s", name,
				 r == -EEXIST ? "already exists" : "cannot create");
		return r;
	}
	r = ksd_map(name, mem, &size, err, errlen);
	if (r)
		segdev_destroy(name);
	return r;
}

static int ksd_destroy(const char *name)
{
	return segdev_destroy(name);
}

XSEG_SEGTYPE(segdev) = {
	.abi_size = sizeof(struct xseg_segtype_ops),
	.version = 1,
	.name = "segdev",
	.create = ksd_create,
	.map = ksd_map,
	.unmap = ksd_unmap,
	.destroy = ksd_destroy,
};

static int __init xseg_segdev_init(void)
{
	int r = xseg_register_segtype(&xseg_segtype_segdev);

	if (r) {
		pr_err("xseg_segdev: cannot register the segdev segment type: %d\n", r);
		return r;
	}
	r = xseg_register_driver(&xseg_driver_segdev);
	if (r) {
		xseg_unregister_segtype(&xseg_segtype_segdev);
		pr_err("xseg_segdev: cannot register the segdev driver: %d\n", r);
		return r;
	}
	pr_info("xseg_segdev: segment type and driver 'segdev' registered\n");
	return 0;
}

static void __exit xseg_segdev_exit(void)
{
	/* Every map pinned the module: no handle uses us any more. */
	xseg_unregister_driver(&xseg_driver_segdev);
	xseg_unregister_segtype(&xseg_segtype_segdev);
	pr_info("xseg_segdev: unloaded\n");
}

module_init(xseg_segdev_init);
module_exit(xseg_segdev_exit);
MODULE_LICENSE("Dual BSD/GPL");
MODULE_AUTHOR("xseg");
MODULE_DESCRIPTION("xseg: the segdev segment type and callback peer driver for kernel peers");
