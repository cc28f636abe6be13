/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * patternd - a storage peer whose every target holds a fixed pattern
 * (pattern.h): READ returns it, WRITE succeeds only with data equal to it
 * (EILSEQ otherwise), INFO reports the target size, PING and SYNC/FLUSH
 * succeed, everything else fails with EOPNOTSUPP. It keeps no data, so it is
 * what tests and benchmarks use to measure the pipeline without storage cost
 * and to verify every byte that crosses it.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "peer.h"
#include "pattern.h"

static uint64_t target_size = 1ull << 40;

static int serve(struct peer *p, uint32_t port, struct xseg_request *req)
{
	uint8_t *data = xseg_req_data(p->xs, req);
	uint64_t seed = pattern_seed(req->target, req->target_len > XSEG_TARGET_MAX ? 0 : req->target_len);

	(void)port;
	switch (req->op) {
	case X_PING:
	case X_SYNC:
	case X_FLUSH:
		return 0;
	case X_INFO:
		if (!data || req->data_len < 8)
			return EINVAL;
		memcpy(data, &target_size, 8);
		req->serviced = 8;
		return 0;
	case X_READ:
	case X_WRITE:
		if (req->size > req->data_len || !data)
			return EINVAL;		/* the buffer cannot hold what was asked */
		if (req->offset > target_size || req->size > target_size - req->offset)
			return ENOSPC;
		if (req->op == X_READ)
			pattern_fill(data, req->size, seed, req->offset);
		else if (pattern_check(data, req->size, seed, req->offset) != req->size)
			return EILSEQ;
		req->serviced = req->size;
		return 0;
	default:
		return EOPNOTSUPP;
	}
}

static int own(struct peer *p, int opt, const char *arg)
{
	char *end;

	(void)p;
	if (opt != 's')
		return -1;
	target_size = strtoull(arg, &end, 0);
	if (*end == 'G')
		target_size <<= 30;
	else if (*end == 'M')
		target_size <<= 20;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = { { "size", required_argument, NULL, 's' }, { 0 } };
	/*
	 * Spin after batches too: patternd answers at once, so a client with
	 * many in flight refills within the spin (the Node batched API does;
	 * without it every batch paid a wake-up here, docs/node.md).
	 */
	struct peer p = { .name = "patternd", .serve = serve, .spin_batches = 1 };
	int r = peer_parse_args(&p, argc, argv, "s:", lopts, own,
				"  -s, --size N  size every target reports (default 1T; suffix M, G)");

	if (r)
		return r > 0 ? 0 : 2;
	if (peer_start(&p))
		return 1;
	r = peer_run(&p);
	peer_stop(&p);
	return r ? 1 : 0;
}
