/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench/xseg/floor.c - the throughput floor: what two processes passing
 * 64-byte records through a pair of DPDK SPSC rings (rte_ring, elem API, in
 * the shared run mapping) do at the same depth, busy-polled, one record per
 * call as the xseg rows move one request per call. xseg requests carry more
 * (recovery, holders, validation): the floor says how far from free the
 * request path is, not what it should equal. See bench/README.md.
 *
 * The client keeps run->depth records in flight (serial numbers it checks
 * come back served and in order), the server echoes each with a served
 * mark; a record with op FLOOR_CLOSE ends the server after it answers it.
 * With depth 0 (a latency run) the client times each round trip of one
 * record, as the xseg and raw rows time theirs: what a round trip through
 * single-producer/single-consumer rings costs, the structure per-producer
 * lanes would give the request path (docs/segment.md).
 */
#include <stdio.h>
#include <string.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include "xsb.h"

#define C XSB_CLIENT
#define S XSB_SERVER
#define FLOOR_PING 1u
#define FLOOR_CLOSE 2u

struct floor_rec {
	uint64_t serial;
	uint32_t op, served;
	uint64_t payload[6];
};
_Static_assert(sizeof(struct floor_rec) == 64, "64-byte records");

static struct rte_ring *ring(struct xsb_run *run, int which)
{
	return (struct rte_ring *)(void *)run->floor_mem[which];
}

/* Called by the harness before the fork. 0, or -1 (message in @err). */
int xsb_floor_init(struct xsb_run *run, char *err, size_t errlen)
{
	ssize_t need = rte_ring_get_memsize_elem(sizeof(struct floor_rec), XSB_FLOOR_SLOTS);

	if (need < 0 || (size_t)need > sizeof(run->floor_mem[0])) {
		snprintf(err, errlen, "rte_ring_get_memsize_elem: %zd bytes, %zu available", need,
			 sizeof(run->floor_mem[0]));
		return -1;
	}
	for (int i = 0; i < 2; i++)
		if (rte_ring_init(ring(run, i), i ? "floor_rep" : "floor_req", XSB_FLOOR_SLOTS,
				  RING_F_SP_ENQ | RING_F_SC_DEQ)) {
			snprintf(err, errlen, "rte_ring_init failed");
			return -1;
		}
	return 0;
}

static void put(struct xsb_run *run, int role, struct rte_ring *r, const struct floor_rec *rec)
{
	/* The ring has room for every record in flight: full is a bug. */
	if (rte_ring_sp_enqueue_elem(r, (void *)(uintptr_t)rec, sizeof(*rec)))
		xsb_fail(run, role, "floor ring full");
}

void xsb_floor_server(struct xsb_run *run)
{
	struct floor_rec rec;

	xsb_meet(run, S);
	for (;;) {
		if (rte_ring_sc_dequeue_elem(ring(run, 0), &rec, sizeof(rec))) {
			xsb_relax();
			continue;
		}
		rec.served = 1;
		put(run, S, ring(run, 1), &rec);
		if (rec.op == FLOOR_CLOSE)
			return;
	}
}

/* A latency run: one record in flight, each round trip timed. */
static void floor_latency(struct xsb_run *run, struct floor_rec *rec)
{
	uint64_t start = xsb_now_ns(), t0;

	for (uint32_t i = 0;; i++) {
		uint32_t spins = 0;

		t0 = xsb_now_ns();
		rec->serial = i;
		rec->served = 0;
		put(run, C, ring(run, 0), rec);
		while (rte_ring_sc_dequeue_elem(ring(run, 1), rec, sizeof(*rec))) {
			xsb_relax();
			if (++spins % 65536 == 0 && xsb_now_ns() - t0 > XSB_NO_REPLY_NS)
				xsb_fail(run, C, "floor: no record back for 1 s");
		}
		if (rec->serial != i || !rec->served)
			xsb_fail(run, C, "floor: record %llu came back wrong (expected %u)",
				 (unsigned long long)rec->serial, i);
		if (!xsb_record(run, i, t0, xsb_now_ns(), start))
			break;
	}
}

void xsb_floor_client(struct xsb_run *run)
{
	struct floor_rec rec;
	uint64_t t0, now, last, deadline, done = 0, next = 0, expect = 0;
	uint32_t depth = run->depth ? run->depth : 1, inflight;
	int stopping = 0;

	memset(&rec, 0, sizeof(rec));
	xsb_meet(run, C);
	rec.op = FLOOR_PING;
	if (!run->depth) {
		floor_latency(run, &rec);
		depth = 0;	/* straight to the close record */
	}
	last = t0 = xsb_now_ns();
	deadline = t0 + run->max_ns;
	for (inflight = 0; inflight < depth; inflight++) {
		rec.serial = next++;
		put(run, C, ring(run, 0), &rec);
	}
	while (inflight) {
		uint32_t got = 0;

		while (!rte_ring_sc_dequeue_elem(ring(run, 1), &rec, sizeof(rec))) {
			if (rec.serial != expect++ || !rec.served || rec.op != FLOOR_PING)
				xsb_fail(run, C, "floor: record %llu came back wrong (expected %llu)",
					 (unsigned long long)rec.serial, (unsigned long long)expect - 1);
			got++;
			if (!stopping) {
				rec.serial = next++;
				rec.served = 0;
				put(run, C, ring(run, 0), &rec);
			} else {
				inflight--;
			}
		}
		now = xsb_now_ns();
		if (!stopping)
			done += got;
		if (!stopping && now >= deadline) {
			stopping = 1;
			run->elapsed_ns = now - t0;
			run->completed = done;
		}
		if (got) {
			last = now;
			__atomic_store_n(&run->progress, (uint32_t)done, __ATOMIC_RELAXED);
		} else {
			if (now - last > XSB_NO_REPLY_NS)
				xsb_fail(run, C, "floor: no record back for 1 s with %u in flight", inflight);
			xsb_relax();
		}
	}
	rec.op = FLOOR_CLOSE;
	rec.served = 0;
	put(run, C, ring(run, 0), &rec);
	t0 = xsb_now_ns();
	while (rte_ring_sc_dequeue_elem(ring(run, 1), &rec, sizeof(rec))) {
		if (xsb_now_ns() - t0 > XSB_NO_REPLY_NS)
			xsb_fail(run, C, "floor: no answer to the close record for 1 s");
		xsb_relax();
	}
}
