/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: timestamps are taken only by ports that ask for them: a
 * client port bound with default flags stamps ts_submit and counts the
 * round trip in its latency histogram; a server port stamps ts_accept and
 * ts_respond only when bound with XSEG_PORT_SERVICE_TIMING; a port bound
 * with XSEG_PORT_NO_TIMING takes none (also with SERVICE_TIMING) and leaves
 * its histogram alone, and a resubmit clears the server's stamps of the
 * round before. A forward keeps the client's ts_submit, so the client's
 * latency runs from its own submit, not from the last hop's forward.
 */
#include "common.h"

static uint64_t lat_sum(struct xseg *xs, uint32_t port)
{
	uint64_t n = 0;

	for (uint32_t b = 0; b < XSEG_LAT_BUCKETS; b++)
		n += xseg_port(xs, port)->lat[b];
	return n;
}

/* One round trip cli -> srv; returns the received request. */
static struct xseg_request *round_trip(struct xseg *xs, struct xseg_request *req, uint32_t cli, uint32_t srv)
{
	struct xseg_request *got;

	CHECK(xseg_submit(xs, req, srv) == (int)srv);
	got = xseg_accept(xs, srv);
	CHECK(got == req);
	got->state |= XS_SERVED;
	CHECK(xseg_respond(xs, got) == (int)cli);
	got = xseg_receive(xs, cli);
	CHECK(got == req);
	return got;
}

static void test_flags(void)
{
	struct xseg_config cfg = tx_create("heap:%s:8:16:4K:0:12");
	struct xseg *xs = tx_join(&cfg, "posix");
	const uint32_t A = XSEG_PORT_ACCEPT | XSEG_PORT_RECEIVE;
	struct xseg_request *req;
	uint64_t before;

	CHECK(xseg_bind_port(xs, 0, XSEG_PORT_SERVICE_TIMING) == 0);	/* server, stamps */
	CHECK(xseg_bind_port(xs, 1, A | XSEG_PORT_NO_TIMING) == 1);	/* server, none */
	CHECK(xseg_bind_port(xs, 2, A) == 2);				/* client, timing */
	CHECK(xseg_bind_port(xs, 3, A | XSEG_PORT_NO_TIMING) == 3);	/* client, none */
	CHECK(xseg_bind_port(xs, XSEG_ANY_PORT, 0) == 4);		/* server, default: none */
	/* NO_TIMING wins over SERVICE_TIMING. */
	CHECK(xseg_bind_port(xs, XSEG_ANY_PORT, XSEG_PORT_NO_TIMING | XSEG_PORT_SERVICE_TIMING) == 5);

	/* Both take them: all three stamps, one histogram sample. */
	req = xseg_get_request(xs, 2);
	CHECK(req);
	before = lat_sum(xs, 2);
	req = round_trip(xs, req, 2, 0);
	CHECK(req->ts_submit && req->ts_accept >= req->ts_submit && req->ts_respond >= req->ts_accept);
	CHECK(lat_sum(xs, 2) == before + 1);
	/* A server that takes none: the client's stamp only; the round before's are cleared. */
	req = round_trip(xs, req, 2, 1);
	CHECK(req->ts_submit && !req->ts_accept && !req->ts_respond);
	CHECK(lat_sum(xs, 2) == before + 2);
	/* A server with default flags, and one with both flags: no service stamps either. */
	req = round_trip(xs, req, 2, 0);
	CHECK(req->ts_accept && req->ts_respond);
	req = round_trip(xs, req, 2, 4);
	CHECK(req->ts_submit && !req->ts_accept && !req->ts_respond);
	req = round_trip(xs, req, 2, 5);
	CHECK(req->ts_submit && !req->ts_accept && !req->ts_respond);
	CHECK(lat_sum(xs, 2) == before + 5);
	CHECK(xseg_put_request(xs, req) == 0);

	/* A client that takes none: no ts_submit, no sample. */
	req = xseg_get_request(xs, 3);
	CHECK(req);
	before = lat_sum(xs, 3);
	req = round_trip(xs, req, 3, 0);
	CHECK(!req->ts_submit && req->ts_accept && req->ts_respond);
	req = round_trip(xs, req, 3, 1);
	CHECK(!req->ts_submit && !req->ts_accept && !req->ts_respond);
	CHECK(lat_sum(xs, 3) == before);
	CHECK(xseg_put_request(xs, req) == 0);
	/* The flags as bound; NO_TIMING alone accepts and receives as with flags 0. */
	CHECK(xseg_port(xs, 0)->flags == (A | XSEG_PORT_SERVICE_TIMING));
	CHECK(xseg_bind_port(xs, XSEG_ANY_PORT, XSEG_PORT_NO_TIMING) == 6);
	CHECK(xseg_port(xs, 6)->flags == (A | XSEG_PORT_NO_TIMING));
	xseg_leave(xs);
}

static void test_forward_keeps_submit_time(void)
{
	struct xseg_config cfg = tx_create("heap:%s:8:16:4K:0:12");
	struct xseg *xs = tx_join(&cfg, "posix");
	struct xseg_request *req, *got;
	uint64_t ts;

	CHECK(xseg_bind_port(xs, 1, 0) == 1);	/* middle */
	CHECK(xseg_bind_port(xs, 2, 0) == 2);	/* storage */
	CHECK(xseg_bind_port(xs, 3, 0) == 3);	/* client */
	req = xseg_get_request(xs, 3);
	CHECK(req);
	CHECK(xseg_submit(xs, req, 1) == 1);
	ts = req->ts_submit;
	CHECK(ts);
	got = xseg_accept(xs, 1);
	CHECK(got == req);
	/* The clock moves on before the forward (so a new stamp would differ). */
	while (xseg_sys_now_ns() == ts)
		;
	CHECK(xseg_forward(xs, got, 1, 2) == 2);
	CHECKF(req->ts_submit == ts, "forward moved ts_submit from %llu to %llu",
	       (unsigned long long)ts, (unsigned long long)req->ts_submit);
	got = xseg_accept(xs, 2);
	CHECK(got == req);
	got->state |= XS_SERVED;
	CHECK(xseg_respond(xs, got) == 1);
	got = xseg_receive(xs, 1);
	CHECK(got == req);
	CHECK(xseg_respond(xs, got) == 3);
	got = xseg_receive(xs, 3);
	CHECK(got == req && got->ts_submit == ts);
	CHECK(xseg_put_request(xs, got) == 0);
	xseg_leave(xs);
}

int main(void)
{
	xt_watchdog(60);
	RUN(test_flags);
	RUN(test_forward_keeps_submit_time);
	return 0;
}
