/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/xseg-debug.c - xseg-tool's commands for looking into a live
 * segment: the per-port quota lines of `status`.
 */
#include <inttypes.h>
#include <stdio.h>
#include "xseg-debug.h"

void print_quotas(struct xseg *xs, uint32_t nr_ports)
{
	for (uint32_t i = 0; i < nr_ports; i++) {
		struct xseg_port *p = xseg_port(xs, i);
		struct xseg_quota q;
		char mr[16] = "-", mb[24] = "-";

		if (!p || XSEG_OWNER_STATE(__atomic_load_n(&p->owner, __ATOMIC_ACQUIRE)) !=
			  XSEG_PORT_BOUND || xseg_port_quota(xs, i, &q))
			continue;
		if (!q.max_requests && !q.max_buffer && !q.requests && !q.buffer)
			continue;
		if (q.max_requests)
			snprintf(mr, sizeof(mr), "%" PRIu32, q.max_requests);
		if (q.max_buffer)
			snprintf(mb, sizeof(mb), "%" PRIu64, q.max_buffer);
		printf("quota     port %" PRIu32 ": requests %" PRIu32 "/%s, buffer %" PRIu64
		       "/%s bytes\n", i, q.requests, mr, q.buffer, mb);
	}
}
