// SPDX-License-Identifier: BSD-2-Clause
/*
 * sys/kernel/registry_kernel.c - the kernel domain's built-in segment types
 * and drivers (xseg/registry.c calls these).
 *
 * Built in: the "heap" segment type (kernel memory shared by kernel peers).
 * Drivers and further segment types (segdev) live in their own modules, which
 * depend on xseg.ko and register themselves at load time; a driver that is
 * not registered is not loaded on demand from here: load its module first
 * (modprobe resolves the dependency the other way round).
 */
#include <linux/printk.h>
#include "../../xseg/xseg_internal.h"

extern const struct xseg_segtype_ops xseg_segtype_heap;

void xseg__register_builtins(void)
{
	xseg_register_segtype(&xseg_segtype_heap);
}

const struct xseg_driver_ops *xseg__load_driver(const char *name)
{
	xseg_sys_log(XSEG_LOG_INFO, "driver '%s' is not registered: load its module (xseg_%s.ko) first",
		     name, name);
	return NULL;
}
