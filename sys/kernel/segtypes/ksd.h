/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/kernel/segtypes/ksd.h - a segdev segment mapped by kernel peers, shared
 * inside xseg_segdev.ko by the kernel's "segdev" segment type
 * (sys/kernel/segtypes/segdev.c: maps it, keeps the list, loads the module) and
 * the "segdev" driver of kernel peers (drivers/kernel/segdev/xseg_segdev.c:
 * joins it, routes its doorbell). Not for other modules.
 */
#ifndef XSEG_SEGTYPES_KERNEL_KSD_H
#define XSEG_SEGTYPES_KERNEL_KSD_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/uidgid.h>
#include <linux/xarray.h>
#include "../../../xseg/xseg.h"

struct segdev_seg;

/* A segdev segment mapped by kernel peers: one per segment, shared by every handle. */
struct ksd_seg {
	struct list_head node;		/* ksd_list (RCU readers, ksd_mutex writers) */
	struct segdev_seg *seg;
	void *base;
	u64 size;
	kuid_t owner;
	unsigned int maps;		/* segtype maps (each holds the module) */
	unsigned int users;		/* driver joins; the doorbell is ours while > 0 */
	struct xarray binds;		/* port -> struct ksd_bind (kernel-bound ports) */
	struct rcu_head rcu;
};

/* ksd_list: RCU readers, ksd_mutex writers (the segment type's map/unmap, driver joins). */
extern struct mutex ksd_mutex;
extern struct list_head ksd_list;

/* The segment mapped at @base, or NULL. Under rcu_read_lock or ksd_mutex. */
struct ksd_seg *ksd_by_base(const void *base);

/* The two halves of xseg_segdev.ko, registered by its init (segdev.c). */
extern XSEG_SEGTYPE(segdev);
extern XSEG_DRIVER(segdev);

#endif
