/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * drivers/user/drivers.h - the user domain's built-in signaling drivers
 * (drivers/user/{posix,posixfd,futex,segdev}.c), which sys/user/registry_user.c
 * registers. What they keep in a port's signal area is in xseg/signal_area.h.
 */
#ifndef XSEG_DRIVERS_USER_DRIVERS_H
#define XSEG_DRIVERS_USER_DRIVERS_H

#include "../../xseg/xseg.h"
#include "../../xseg/signal_area.h"

extern const struct xseg_driver_ops xseg_driver_posix;
extern const struct xseg_driver_ops xseg_driver_posixfd;
extern const struct xseg_driver_ops xseg_driver_futex;
extern const struct xseg_driver_ops xseg_driver_segdev;

#endif
