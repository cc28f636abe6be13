/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test/drivers/stub.h - a fake segment for the driver tests.
 *
 * The drivers need only three things from the core: the 64-byte signal
 * area of a port, the segment's name and its identity (type "stub", id a
 * hash of the name, fake but stable). This stub provides both over an array
 * of real struct xseg_port in MAP_SHARED memory (so the areas sit where the
 * core puts them: offset 64 of 64-byte aligned ports, a line of their own)
 * and a per-process handle. A test that includes it must not use the core itself: these two
 * definitions replace the core's when the test links against libxseg.a.
 */
#ifndef XSEG_TEST_DRIVERS_STUB_H
#define XSEG_TEST_DRIVERS_STUB_H

#include "xseg/xseg.h"

struct xseg {
	struct xseg_port *ports;	/* shared by every process of the test */
	uint32_t nr_ports;
	char name[XSEG_NAME_LEN];
};

void *xseg_port_signal_area(struct xseg *xs, uint32_t portno)
{
	if (!xs || portno >= xs->nr_ports)
		return NULL;
	return xs->ports[portno].signal;
}

const char *xseg_segname(const struct xseg *xs)
{
	return xs->name;
}

void xseg_seg_ident(const struct xseg *xs, struct xseg_seg_ident *out)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (const char *c = xs->name; *c; c++)
		h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
	out->type = "stub";
	out->name = xs->name;
	out->id = h ? h : 1;
}

/* The FIFO directory name the posixfd driver uses for @xs. */
static inline const char *stub_segdir(const struct xseg *xs)
{
	static char b[64];
	struct xseg_seg_ident id;

	xseg_seg_ident(xs, &id);
	snprintf(b, sizeof(b), "%s.%016llx", id.type, (unsigned long long)id.id);
	return b;
}

#endif
