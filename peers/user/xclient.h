/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/xclient.h - a small synchronous client: one request, wait for
 * its reply. For a peer's I/O pool threads talking to the next peer (mapperd
 * to the storage peer), for xseg-tool and for tests.
 *
 * Each thread that calls binds its own dynamic port (xc_bind with
 * XSEG_ANY_PORT) and has one request in flight at a time on it, so no reply
 * can be confused with another. Header-only (base.mk links each .c of
 * peers/user as a program). Functions return 0 or a positive errno, like a
 * failed reply's error.
 */
#ifndef XSEG_PEERS_XCLIENT_H
#define XSEG_PEERS_XCLIENT_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "xseg/xseg.h"

struct xc {
	struct xseg *xs;
	uint32_t port;			/* our client port */
	uint32_t dst;			/* where requests go */
	int bound;
	/*
	 * How long xc_do waits for a free request or buffer of the segment
	 * (others hold them all) before it gives up with EAGAIN/ENOBUFS, ms;
	 * xc_bind sets XC_WAIT_MS. @stopping (NULL: never) ends the wait early.
	 */
	uint32_t wait_ms;
	int (*stopping)(void);
	uint64_t waits;			/* calls that found no free request at first */
};

#define XC_WAIT_MS 10000u

/* One call: what goes out and what comes back. */
struct xc_call {
	uint32_t op, flags;
	const char *target;		/* @tlen bytes (0: strlen) */
	uint32_t tlen;
	uint64_t offset, size;
	const void *in;			/* copied into the data buffer first */
	uint64_t in_len;
	uint64_t buf_len;		/* data buffer bytes (at least in_len; 0: in_len) */
	void *out;			/* reply data copied here, out_len bytes at most */
	uint64_t out_len;
	/* Results. */
	uint64_t serviced;
	char msg[256];			/* a failed reply's text (volume.h), "" if none */
};

static inline uint64_t xc_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xc_bind - bind a dynamic port of @xs for requests to @dst. 0 or an errno. */
static inline int xc_bind(struct xc *c, struct xseg *xs, uint32_t dst)
{
	int r = xseg_bind_port(xs, XSEG_ANY_PORT, 0);

	if (r < 0)
		return -r;
	c->xs = xs;
	c->port = (uint32_t)r;
	c->dst = dst;
	c->bound = 1;
	c->wait_ms = XC_WAIT_MS;
	c->stopping = NULL;
	c->waits = 0;
	return 0;
}

static inline void xc_unbind(struct xc *c)
{
	if (c->bound)
		xseg_leave_port(c->xs, c->port);
	c->bound = 0;
}

/*
 * xc_do - submit @k and wait for its reply. Returns 0 (served) or the
 * reply's errno; EAGAIN/ENOBUFS when no request or buffer was free for
 * c->wait_ms (polled, 1 ms at first, then up to 10 ms apart: a request freed
 * by another process signals nobody), ECONNREFUSED when nobody serves @dst (not ENOENT,
 * which a reply uses for a missing object), another -errno of submit.
 * The wait has no deadline: a storage peer that dies fails its requests
 * back through recovery (ECONNRESET), which the caller's peer runs.
 */
static inline int xc_do(struct xc *c, struct xc_call *k)
{
	struct xseg_request *req = NULL, *got;
	uint32_t tl = k->target ? (k->tlen ? k->tlen : (uint32_t)strlen(k->target)) : 0;
	uint64_t buf = k->buf_len > k->in_len ? k->buf_len : k->in_len;
	uint64_t t0 = xc_now_ns(), nap = 1000000;
	int e, err, waited = 0;

	k->serviced = 0;
	k->msg[0] = 0;
	for (;;) {
		req = xseg_get_request(c->xs, c->port);
		if (req) {
			e = xseg_prep_request(c->xs, req, k->target, tl, buf);
			if (e == 0)
				break;
			xseg_put_request(c->xs, req);
			if (e != -ENOBUFS)
				return -e;
		}
		if (!waited++)
			c->waits++;
		if (xc_now_ns() - t0 > (uint64_t)c->wait_ms * 1000000ull || (c->stopping && c->stopping())) {
			snprintf(k->msg, sizeof(k->msg), "no free %s in the segment for %u ms",
				 req ? "buffer" : "request", c->wait_ms);
			return req ? ENOBUFS : EAGAIN;
		}
		struct timespec ts = { 0, (long)nap };
		nanosleep(&ts, NULL);
		if (nap < 10000000)
			nap += nap / 4;
	}
	req->op = k->op;
	req->flags = k->flags;
	req->offset = k->offset;
	req->size = k->size;
	if (buf) {
		uint8_t *d = xseg_req_data(c->xs, req);

		if (k->in_len)
			memcpy(d, k->in, k->in_len);
		if (buf > k->in_len)
			memset(d + k->in_len, 0, buf - k->in_len);
	}
	e = xseg_submit_signal(c->xs, req, c->dst);
	if (e < 0) {
		xseg_put_request(c->xs, req);
		if (e == -ENOENT) {	/* not the object's ENOENT: nobody is there */
			snprintf(k->msg, sizeof(k->msg), "nobody serves port %u", c->dst);
			return ECONNREFUSED;
		}
		return -e;
	}
	while (!(got = xseg_receive(c->xs, c->port)))
		xseg_wait(c->xs, c->port, 100000);
	/* One request in flight per port: the reply is ours. */
	k->serviced = got->serviced;
	err = got->state & XS_FAILED ? (got->error > 0 ? got->error : EIO) : 0;
	if (buf) {
		const uint8_t *d = xseg_req_data(c->xs, got);
		uint64_t n = k->serviced < buf ? k->serviced : buf;

		if (!err && k->out && k->out_len)
			memcpy(k->out, d, k->out_len < buf ? k->out_len : buf);
		if (err && n) {
			size_t m = n < sizeof(k->msg) - 1 ? (size_t)n : sizeof(k->msg) - 1;

			memcpy(k->msg, d, m);
			k->msg[m] = 0;
			for (size_t i = 0; i < m; i++)	/* one printable line */
				if ((unsigned char)k->msg[i] < 0x20)
					k->msg[i] = ' ';
		}
	}
	xseg_put_request(c->xs, got);
	return err;
}

#endif
