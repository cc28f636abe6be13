// SPDX-License-Identifier: BSD-2-Clause
/*
 * sys/kernel/loader.c - the kernel domain's answer for a driver that is not
 * registered. Built in (sys/kernel/builtins.h): the "heap" segment type.
 * Drivers and further segment types (segdev) live in their own modules,
 * which depend on xseg.ko and register themselves at load time; a driver
 * that is not registered is not loaded on demand from here: load its module
 * first (modprobe resolves the dependency the other way round).
 */
#include <linux/printk.h>
#include "../../xseg/xseg_internal.h"

const struct xseg_driver_ops *xseg__load_driver(const char *name)
{
	xseg_sys_log(XSEG_LOG_INFO, "driver '%s' is not registered: load its module (xseg_%s.ko) first",
		     name, name);
	return NULL;
}
