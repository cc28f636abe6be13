/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * drivers/user/posixfd.h - helpers of the "posixfd" driver for event loops.
 *
 * A port bound with the posixfd peer type has a FIFO the owner can poll:
 * xseg_poll_fd() returns it and marks the port XSEG_FD_ALWAYS (every signal
 * writes a byte, since an event loop sleeps at times the driver cannot see).
 * After the fd polls readable, drain it, then look at the port's queues.
 */
#ifndef XSEG_DRIVERS_POSIXFD_H
#define XSEG_DRIVERS_POSIXFD_H

#include "../../xseg/xseg.h"
#include "../../xseg/signal_area.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * xseg_posixfd_drain - read every wake-up byte queued in @fd (a descriptor
 * from xseg_poll_fd()) without blocking. Call after the fd polled readable
 * and before re-checking the port's queues, from the thread that owns the
 * event loop. Returns the number of bytes drained (0 if none) or -errno.
 */
int xseg_posixfd_drain(int fd);

/*
 * xseg_posixfd_set_always - set (@on != 0) or clear XSEG_FD_ALWAYS on
 * @portno, which this process must have bound with the posixfd peer type.
 * With it every signal writes a byte, whether or not a waiter prepared;
 * without it only signals that find a prepared waiter do. xseg_poll_fd()
 * sets it. Returns 0, or -EINVAL for an invalid port.
 */
int xseg_posixfd_set_always(struct xseg *xs, uint32_t portno, int on);

/*
 * xseg_posixfd_cleanup - remove the FIFO directory of segment @id
 * (<base>/<segtype>.<id>/, see docs/drivers.md; xseg_seg_ident() gives @id
 * of a joined segment) and the FIFOs left in it by dead owners. For the
 * segment's destroy, after its peers have left: a FIFO still bound is
 * removed too. The core calls it when it destroys a segment. Refuses
 * (-EPERM) a directory that is not ours or is group/other-accessible.
 * Returns 0 (also if there was nothing to remove) or -errno.
 */
int xseg_posixfd_cleanup(const struct xseg_seg_ident *id);

#ifdef __cplusplus
}
#endif

#endif
