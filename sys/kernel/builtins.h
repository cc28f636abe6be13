/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/kernel/builtins.h - the kernel domain's built-ins in xseg.ko, one line
 * each, as in sys/user/builtins.h. Drivers and the segdev segment type are
 * modules of their own that register themselves when they load
 * (drivers/kernel/, sys/kernel/segtypes/). Read more than once: no include guard.
 */
XSEG_BUILTIN_SEGTYPE(heap)
