/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test/sys/so/xseg_tcount.c - a signaling driver built as a shared object
 * (lib/user/test-drivers/xseg_tcount.so), for test/sys/driverso.c: the
 * "tcount" peer type. It cannot put a thread to sleep (no arm, sleep,
 * disarm: its peers poll), and each signal to a port adds one to that port's
 * counter in the first 64 bytes of the segment's extra area, so that the
 * test sees, from another process, that this code ran. Built the way a
 * driver package builds one: against libxseg.so, exporting only
 * xseg_driver_tcount.
 */
#include <stdint.h>
#include "xseg/xseg.h"

static int tc_join(struct xseg *xs, void **priv)
{
	(void)xs;
	*priv = NULL;
	return 0;
}

static void tc_leave(struct xseg *xs, void *priv)
{
	(void)xs; (void)priv;
}

static int tc_bind(struct xseg *xs, void *priv, uint32_t portno)
{
	(void)xs; (void)priv; (void)portno;
	return 0;
}

static void tc_unbind(struct xseg *xs, void *priv, uint32_t portno)
{
	(void)xs; (void)priv; (void)portno;
}

static int tc_signal(struct xseg *xs, void *priv, uint32_t portno)
{
	uint64_t size = 0;
	uint64_t *counts = xseg_extra(xs, &size);

	(void)priv;
	if (counts && size >= 8 * sizeof(uint64_t))
		__atomic_fetch_add(&counts[portno % 8], 1, __ATOMIC_RELAXED);
	return 0;
}

__attribute__((visibility("default"))) XSEG_DRIVER(tcount) = {
	.abi_size = sizeof(struct xseg_driver_ops),
	.version = 1,
	.name = "tcount",
	.join = tc_join,
	.leave = tc_leave,
	.bind = tc_bind,
	.unbind = tc_unbind,
	.signal = tc_signal,
};
