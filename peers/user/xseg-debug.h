/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/xseg-debug.h - xseg-tool's commands for looking into a live
 * segment (peers/user/xseg-debug.c).
 */
#ifndef XSEG_TOOL_DEBUG_H
#define XSEG_TOOL_DEBUG_H

#include "../../xseg/xseg.h"

/* One line per bound port with a quota or usage: held/limit requests and bytes. */
void print_quotas(struct xseg *xs, uint32_t nr_ports);

#endif
