/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/user/registry_user.c - the user domain's built-in segment types and
 * drivers, and the loader of drivers that are not built in (xseg_<name>.so,
 * found by the dynamic linker's search path, exporting xseg_driver_<name>).
 */
#include <dlfcn.h>
#include "../../xseg/xseg_internal.h"
#include "../../drivers/user/drivers.h"
#include "segtype.h"

void xseg__register_builtins(void)
{
	xseg_register_segtype(&xseg_segtype_posix);
	xseg_register_segtype(&xseg_segtype_file);
	xseg_register_segtype(&xseg_segtype_heap);
	xseg_register_segtype(&xseg_segtype_segdev);
	xseg_register_driver(&xseg_driver_posix);
	xseg_register_driver(&xseg_driver_posixfd);
	xseg_register_driver(&xseg_driver_futex);
	xseg_register_driver(&xseg_driver_segdev);
}

const struct xseg_driver_ops *xseg__load_driver(const char *name)
{
	char lib[64], sym[64];
	const struct xseg_driver_ops *ops;
	void *h;
	const char *c;

	for (c = name; *c; c++)		/* a name, not a path */
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
			return NULL;
	snprintf(lib, sizeof(lib), "xseg_%s.so", name);
	snprintf(sym, sizeof(sym), "xseg_driver_%s", name);
	h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		xseg_sys_log(XSEG_LOG_INFO, "driver '%s': %s", name, dlerror());
		return NULL;
	}
	ops = dlsym(h, sym);
	if (!ops || ops->abi_size < __builtin_offsetof(struct xseg_driver_ops, join) || !ops->name ||
	    strcmp(ops->name, name)) {
		xseg_sys_log(XSEG_LOG_WARN, "driver '%s': %s has no valid %s", name, lib, sym);
		dlclose(h);
		return NULL;
	}
	return ops;	/* stays loaded for the life of the process */
}
