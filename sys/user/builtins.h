/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/user/builtins.h - the user domain's built-in segment types and
 * drivers, one line each (xseg/registry.c registers them, in this order):
 *
 *   XSEG_BUILTIN_SEGTYPE(name)  sys/user/segtypes/<name>.c or segtypes/<name>.c,
 *                               defined there with XSEG_SEGTYPE(name)
 *   XSEG_BUILTIN_DRIVER(name)   drivers/user/<name>.c, defined there with
 *                               XSEG_DRIVER(name)
 *
 * Adding one: its file, and its line here (and in sys/node/builtins.h if
 * Node processes get it too). Read more than once: no include guard.
 */
XSEG_BUILTIN_SEGTYPE(posix)
XSEG_BUILTIN_SEGTYPE(file)
XSEG_BUILTIN_SEGTYPE(heap)
XSEG_BUILTIN_SEGTYPE(segdev)
XSEG_BUILTIN_SEGTYPE(sysv)
XSEG_BUILTIN_SEGTYPE(memfd)
XSEG_BUILTIN_DRIVER(posix)
XSEG_BUILTIN_DRIVER(posixfd)
XSEG_BUILTIN_DRIVER(futex)
XSEG_BUILTIN_DRIVER(segdev)
