/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/node/registry_node.c - the node domain's built-in segment types and
 * drivers. The node domain is the user domain's code (sys/user, drivers/user)
 * compiled into the Node addon, with this file in place of
 * sys/user/registry_user.c, because an addon must not change process-wide
 * state it does not own:
 *   - no "posix" driver: joining or signaling with it installs a SIGIO
 *     handler in the whole Node process. Node peers use "posixfd" (polled by
 *     libuv on the main thread) and "futex" (worker threads); they cannot
 *     signal a port bound with the posix peer type (-ENOTSUP).
 *   - no loading of xseg_<name>.so drivers into the Node process.
 */
#include "../../xseg/xseg_internal.h"

extern const struct xseg_segtype_ops xseg_segtype_posix, xseg_segtype_file, xseg_segtype_heap;
extern const struct xseg_driver_ops xseg_driver_posixfd, xseg_driver_futex;
/* Weak: sys/user/segtype_segdev.c (kernel memory through /dev/segdev) is optional. */
extern const struct xseg_segtype_ops xseg_segtype_segdev __attribute__((weak));

void xseg__register_builtins(void)
{
	xseg_register_segtype(&xseg_segtype_posix);
	xseg_register_segtype(&xseg_segtype_file);
	xseg_register_segtype(&xseg_segtype_heap);
	if (&xseg_segtype_segdev)
		xseg_register_segtype(&xseg_segtype_segdev);
	xseg_register_driver(&xseg_driver_posixfd);
	xseg_register_driver(&xseg_driver_futex);
}

const struct xseg_driver_ops *xseg__load_driver(const char *name)
{
	(void)name;
	return NULL;
}
