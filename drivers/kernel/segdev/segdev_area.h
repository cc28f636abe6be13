/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * drivers/kernel/segdev/segdev_area.h - the "segdev" peer type's words in a
 * port's 64-byte signal area (struct xseg_port.signal), shared by the kernel
 * driver (drivers/kernel/segdev/xseg_segdev.c) and the user-side driver
 * (drivers/user/segdev.c). Fixed-width words only, reached with the xq_*
 * atomics of sys/domain.h in both domains.
 *
 * A segdev port is bound either by a kernel peer (the owner pid is
 * XSEG_SYS_KERNEL_PID): a callback peer that never sleeps, woken through the
 * /dev/segdev doorbell; or by a user peer, which sleeps on an eventfd it
 * registered with SEGDEV_IOC_EVENTFD.
 *
 *   kernel port: a signaler that turns @pending from 0 to 1 rings the
 *     doorbell (user) or calls the dispatcher (kernel); the others return. The
 *     dispatcher sets @pending back to 0 with a full barrier *before* it calls
 *     the peer's callback, so work enqueued before a skipped ring is seen by
 *     that callback. @waiting is unused.
 *   user port: @waiting counts threads between prepare_wait and the end of
 *     their wait; a signaler that sees it nonzero and turns @pending from 0 to
 *     1 signals the eventfd (a user signaler through the doorbell, which
 *     segdev routes to the eventfd); the waiter drains the eventfd and then
 *     sets @pending to 0 with a full barrier before it re-checks its queues.
 *     @always != 0 (xseg_poll_fd took the port's eventfd for an event loop):
 *     every signal signals the eventfd, whatever @waiting and @pending say;
 *     the loop reads the eventfd (which clears it) and then drains its queues.
 *   kernel port of a sleeping peer (no wakeup callback): as a kernel port;
 *     the dispatcher clears @pending, then counts the wake-up in the bind's
 *     counter and wakes the handle's waitqueue (xseg_segdev.c).
 *
 * Every word is untrusted: garbage costs a spurious wake-up or a missed one
 * that the peer's timeouts cover, never a crash.
 */
#ifndef XSEG_DRIVERS_SEGDEV_AREA_H
#define XSEG_DRIVERS_SEGDEV_AREA_H

#include "../../../xseg/xseg_layout.h"

struct xseg_sig_segdev {
	uint64_t pending;		/* 1: a wake-up is on its way */
	uint64_t waiting;		/* user port: threads preparing or waiting */
	uint64_t always;		/* user port: an event loop polls its eventfd */
	uint64_t reserved[5];
};

XSEG_STATIC_ASSERT(sizeof(struct xseg_sig_segdev) <= XSEG_SIGNAL_AREA,
		   "the segdev signal area must fit the port's XSEG_SIGNAL_AREA bytes");

#endif
