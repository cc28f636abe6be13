/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * drivers/kernel/segdev/xseg_segdev.h - what xseg_segdev.ko exports to other
 * kernel modules besides the "segdev" segment type and driver it registers.
 */
#ifndef XSEG_KERNEL_SEGDEV_H
#define XSEG_KERNEL_SEGDEV_H

#include <linux/uidgid.h>

struct xseg;

/*
 * xseg_segdev_owner - the euid that owns the segdev segment @xs is joined
 * to (its creator, from segdev.ko, not from the shared header). -ENOTSUP if
 * @xs is not on a segdev segment mapped by kernel peers. Never sleeps.
 */
int xseg_segdev_owner(struct xseg *xs, kuid_t *uid);

#endif
