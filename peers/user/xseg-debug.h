/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/xseg-debug.h - xseg-tool's commands for looking into a live
 * segment (peers/user/xseg-debug.c).
 */
#ifndef XSEG_TOOL_DEBUG_H
#define XSEG_TOOL_DEBUG_H

#include "../../xseg/xseg.h"

#include <stdbool.h>

/* Is @cmd one of the commands below (they take a joined segment)? */
bool is_debug_command(const char *cmd);

/*
 * Run @cmd on the joined @xs with xseg-tool's @argc/@argv (argv[1] the
 * command, argv[2] the spec, options from argv[3]): its exit code.
 *   requests SPEC [-p PORT]   the requests in use: life, holder, age, target
 *   tap|bridge SPEC -p PORT --to DST [-n COUNT]
 *                             forward requests from PORT to DST, one line each
 *   fail SPEC SERIAL          settle a request whose holder is dead or stale
 *   reset-port SPEC PORT [--force]
 *                             reset a port's queues whose counters are corrupt
 */
int debug_command(struct xseg *xs, const char *cmd, int argc, char **argv);

/* One line per bound port with a quota or usage: held/limit requests and bytes. */
void print_quotas(struct xseg *xs, uint32_t nr_ports);

#endif
