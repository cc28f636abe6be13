/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench/xseg/cost.c - what one request round trip touches, for
 * bench/xseg/cost.py (run under valgrind --tool=lackey --trace-mem=yes).
 *
 * One process, one heap segment, one handle: the server binds port 0, the
 * client port 1, and one thread plays both sides of XSEG_COST_ROUNDS busy
 * round trips (client: submit + signal; server: accept, respond + signal;
 * client: receive). Before each phase it stores to its own marker word, so
 * the trace can be cut into client and server phases; it prints the marker
 * addresses, the segment base and the region offsets on stdout for the
 * script. Argument "notiming": both ports are bound with XSEG_PORT_NO_TIMING.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../xseg/xseg.h"

#define ROUNDS 200
#define WARM 50

volatile uint64_t cost_mark_client, cost_mark_server, cost_mark_off;

static void die(const char *what, int e)
{
	fprintf(stderr, "cost: %s: %s\n", what, strerror(e < 0 ? -e : e));
	exit(1);
}

int main(int argc, char **argv)
{
	uint32_t extra = argc > 1 && !strcmp(argv[1], "notiming") ? XSEG_PORT_NO_TIMING : 0;
	uint32_t flags = XSEG_PORT_ACCEPT | XSEG_PORT_RECEIVE | extra;
	struct xseg_config cfg;
	char spec[128], err[256] = "", name[64];
	struct xseg_request *req;
	struct xseg *xs;
	int e = 0, r, i;

	snprintf(name, sizeof(name), "cost%d", (int)getpid());
	snprintf(spec, sizeof(spec), "heap:%s:4:256:4K:0:12", name);
	if ((r = xseg_parse_spec(spec, &cfg, err, sizeof(err))) || (r = xseg_create(&cfg, err, sizeof(err))))
		die(err, r);
	xs = xseg_join("heap", name, "futex", NULL, NULL, &e, err, sizeof(err));
	if (!xs)
		die(err, e);
	if ((r = xseg_bind_port(xs, 0, flags)) != 0)
		die("bind 0", r);
	if ((r = xseg_bind_port(xs, 1, flags)) != 1)
		die("bind 1", r);
	req = xseg_get_request(xs, 1);
	if (!req)
		die("get_request", errno);
	{
		const struct xseg_header *h = xseg_header(xs);

		printf("marks client=%p server=%p off=%p\n", (void *)&cost_mark_client,
		       (void *)&cost_mark_server, (void *)&cost_mark_off);
		printf("base %p size %" PRIu64 "\n", (const void *)h, h->size);
		printf("regions ports=%" PRIu64 " reqs=%" PRIu64 " gens=%" PRIu64 " holds=%" PRIu64
		       " queues=%" PRIu64 " bufs=%" PRIu64 "\n", h->ports_off, h->reqs_off, h->gens_off,
		       h->holds_off, h->queues_off, h->bufs_off);
		printf("queues free=%" PRIu64 " rq0=%" PRIu64 " pq0=%" PRIu64 " rq1=%" PRIu64 " pq1=%" PRIu64
		       " qsize=%" PRIu64 "\n", h->free_queue_off, xseg_port(xs, 0)->rq_off,
		       xseg_port(xs, 0)->pq_off, xseg_port(xs, 1)->rq_off, xseg_port(xs, 1)->pq_off,
		       h->queue_size);
		printf("sizes port=%zu request=%zu hold=%zu rounds=%d\n", sizeof(struct xseg_port),
		       sizeof(struct xseg_request), sizeof(struct xq_hold), ROUNDS);
		fflush(stdout);
	}
	for (i = 0; i < WARM + ROUNDS; i++) {
		struct xseg_request *s;

		if (i >= WARM)
			cost_mark_client = (uint64_t)i;
		if ((r = xseg_submit(xs, req, 0)) < 0)
			die("submit", r);
		xseg_signal(xs, (uint32_t)r);
		if (i >= WARM)
			cost_mark_server = (uint64_t)i;
		s = xseg_accept(xs, 0);
		if (!s)
			die("accept", errno);
		s->state |= XS_SERVED;
		if ((r = xseg_respond(xs, s)) < 0)
			die("respond", r);
		xseg_signal(xs, (uint32_t)r);
		if (i >= WARM)
			cost_mark_client = (uint64_t)i;
		req = xseg_receive(xs, 1);
		if (!req)
			die("receive", errno);
		if (i >= WARM)
			cost_mark_off = (uint64_t)i;
	}
	xseg_put_request(xs, req);
	xseg_destroy(xs);
	xseg_leave(xs);
	return 0;
}
