/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test/tools/relayd.c - a peer that passes every request on to another port,
 * built on the client side of the peer framework (peer_submit,
 * peer_forward, replies on the dispatch thread, pending()); the tests of
 * that client side run it between a client and blockd/filed.
 *
 *   relayd -g SPEC -p PORT --to PORT [--mode forward|copy] [--split BYTES]
 *
 * forward: the accepted request itself goes on (peer_forward, no copy) and
 *   its reply is completed when it comes back.
 * copy: READ and WRITE are cut into pieces of --split bytes (default: one
 *   piece), each a request of relayd's own with its own buffer (the data
 *   copied in for WRITE, out for READ); other ops go as one request with a
 *   copy of the data buffer. The client's request is completed when every
 *   piece is back, with the first error. Pieces that find no free request or
 *   buffer wait for pending() to retry them.
 * One dispatch thread: all state is touched only there.
 */
#include <stdlib.h>
#include <string.h>
#include "peers/user/peer.h"

struct job;

struct piece {
	struct job *job;
	uint64_t off, len;		/* bytes of the client's request */
	struct piece *next;		/* in the waiting list */
	uint32_t port;
};

struct job {
	struct xseg_request *req;	/* the client's */
	uint32_t op, flags;
	uint64_t offset, size;
	uint32_t left;			/* pieces not back yet */
	int err;
	uint64_t serviced;
	struct piece piece[];
};

static uint32_t to_port = XSEG_NO_PORT;
static int copy_mode;
static uint64_t split;
static struct piece *waiting, **waiting_tail = &waiting;

static void job_done(struct peer *p, struct job *j)
{
	j->req->serviced = j->err ? 0 : j->serviced;
	peer_complete(p, j->req, j->err);
	free(j);
}

static void piece_reply(struct peer *p, uint32_t portno, struct xseg_request *req, void *arg)
{
	struct piece *pc = arg;
	struct job *j = pc->job;

	(void)portno;
	if (req->state & XS_FAILED) {
		if (!j->err)
			j->err = req->error > 0 ? req->error : EIO;
	} else {
		uint64_t cap = 0;
		uint8_t *dst = xseg_req_buffer(p->xs, j->req, &cap);
		uint64_t n = req->serviced;

		if (j->op != X_WRITE) {	/* the reply's data goes back */
			if (n > pc->len)
				n = pc->len;
			if (dst && pc->off + n <= cap)
				memcpy(dst + pc->off, xseg_req_data(p->xs, req), n);
		}
		if (j->op == X_READ || j->op == X_WRITE)
			j->serviced += req->serviced;
		else
			j->serviced = req->serviced;
	}
	xseg_put_request(p->xs, req);
	if (--j->left == 0)
		job_done(p, j);
}

/* Send @pc; 0, or 1 if it must wait for a free request. */
static int piece_send(struct peer *p, struct piece *pc)
{
	struct job *j = pc->job;
	char *target = xseg_req_target(p->xs, j->req);
	uint64_t cap = 0;
	uint8_t *src = xseg_req_buffer(p->xs, j->req, &cap);
	struct xseg_request *req;
	int r;

	req = peer_request(p, pc->port, target, j->req->target_len, pc->len);
	if (!req)
		return errno == EAGAIN || errno == ENOBUFS ? 1 : -errno;
	req->op = j->op;
	req->flags = j->flags;
	req->offset = j->offset + (j->op == X_READ || j->op == X_WRITE ? pc->off : 0);
	req->size = j->op == X_READ || j->op == X_WRITE ? pc->len : j->size;
	if (pc->len && src && pc->off + pc->len <= cap)
		memcpy(xseg_req_data(p->xs, req), src + pc->off, pc->len);
	r = peer_submit(p, pc->port, req, to_port, piece_reply, pc);
	if (r) {
		xseg_put_request(p->xs, req);
		return r == -EAGAIN ? 1 : r;
	}
	return 0;
}

static void piece_go(struct peer *p, struct piece *pc)
{
	int r = waiting ? 1 : piece_send(p, pc);	/* keep the order of waiting pieces */

	if (r == 1) {
		pc->next = NULL;
		*waiting_tail = pc;
		waiting_tail = &pc->next;
	} else if (r < 0) {
		struct job *j = pc->job;

		if (!j->err)
			j->err = -r;
		if (--j->left == 0)
			job_done(p, j);
	}
}

static int retry(struct peer *p, uint32_t portno)
{
	(void)portno;
	while (waiting) {
		struct piece *pc = waiting;
		int r = piece_send(p, pc);

		if (r == 1)
			return 1;
		waiting = pc->next;
		if (!waiting)
			waiting_tail = &waiting;
		if (r < 0) {
			struct job *j = pc->job;

			if (!j->err)
				j->err = -r;
			if (--j->left == 0)
				job_done(p, j);
		}
	}
	return 0;
}

static void forward_reply(struct peer *p, uint32_t portno, struct xseg_request *req, void *arg)
{
	(void)portno;
	(void)arg;
	peer_complete(p, req, req->state & XS_FAILED ? (req->error > 0 ? req->error : EIO) : 0);
}

static int serve(struct peer *p, uint32_t portno, struct xseg_request *req)
{
	uint64_t size = req->size, cap = 0, len, n;
	struct job *j;
	int r;

	if (!copy_mode) {
		r = peer_forward(p, portno, req, to_port, forward_reply, NULL);
		return r ? -r : PEER_ASYNC;
	}
	xseg_req_buffer(p->xs, req, &cap);
	if (req->op == X_READ || req->op == X_WRITE) {
		if (size > cap)
			return EINVAL;
		len = split && split < size ? split : size;
	} else {
		size = cap < req->data_len ? cap : req->data_len;	/* the data buffer, whole */
		len = size;
	}
	n = len ? (size + len - 1) / len : 1;
	j = calloc(1, sizeof(*j) + n * sizeof(j->piece[0]));
	if (!j)
		return ENOMEM;
	j->req = req;
	j->op = req->op;
	j->flags = req->flags;
	j->offset = req->offset;
	j->size = req->size;
	j->left = (uint32_t)n;
	for (uint64_t i = 0; i < n; i++) {
		struct piece *pc = &j->piece[i];

		pc->job = j;
		pc->port = portno;
		pc->off = i * len;
		pc->len = size - pc->off < len ? size - pc->off : len;
	}
	for (uint64_t i = 0; i < n; i++)
		piece_go(p, &j->piece[i]);
	return PEER_ASYNC;
}

static int own(struct peer *p, int opt, const char *arg)
{
	char *end;

	(void)p;
	switch (opt) {
	case 'T':
		to_port = (uint32_t)strtoul(arg, &end, 10);
		return *end ? -1 : 0;
	case 'M':
		if (!strcmp(arg, "copy"))
			copy_mode = 1;
		else if (strcmp(arg, "forward"))
			return -1;
		return 0;
	case 'L':
		split = strtoull(arg, &end, 10);
		return *end ? -1 : 0;
	}
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "to", required_argument, NULL, 'T' }, { "mode", required_argument, NULL, 'M' },
		{ "split", required_argument, NULL, 'L' }, { 0, 0, 0, 0 },
	};
	struct peer p = { .name = "relayd", .serve = serve, .pending = retry };
	int r = peer_parse_args(&p, argc, argv, "", lo, own,
				"  --to PORT     where requests go\n"
				"  --mode M      forward (default) or copy\n"
				"  --split N     copy: READ/WRITE in pieces of N bytes");

	if (r)
		return r < 0 ? 2 : 0;
	if (to_port == XSEG_NO_PORT) {
		fprintf(stderr, "relayd: --to PORT is required\n");
		return 2;
	}
	p.threads = 1;
	if (peer_start(&p))
		return 1;
	r = peer_run(&p);
	peer_stop(&p);
	return r ? 1 : 0;
}
