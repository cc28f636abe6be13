/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: the request life cycle inside one process, on heap and posix
 * segments: create/join/bind, get/prep/submit/accept/respond/receive/put with
 * data, forwarding through a middle port and back, redirect, buffer classes,
 * misuse errors (double put, foreign requests, unbound ports, oversized data),
 * leaving a port fails its queued requests back, verify finds nothing wrong,
 * the registry refuses drivers with the retired version-1 wait callbacks or
 * with only part of arm/sleep/disarm, and autorm removes the segment after the last peer leaves.
 */
#include "common.h"

static void roundtrip(struct xseg *xs, uint32_t cli, uint32_t srv, uint32_t len, uint8_t seed)
{
	struct xseg_request *req = xseg_get_request(xs, cli), *got;
	uint8_t *d;

	CHECK(req);
	CHECK(xseg_prep_request(xs, req, "vol1", 4, len) == 0);
	CHECK(memcmp(xseg_req_target(xs, req), "vol1", 4) == 0);
	d = xseg_req_data(xs, req);
	CHECK(d);
	for (uint32_t i = 0; i < len; i++)
		d[i] = (uint8_t)(seed + i);
	req->op = X_WRITE;
	req->offset = 4096;
	req->size = len;
	req->cookie = 0xC0FFEE;
	CHECK(xseg_submit(xs, req, srv) == (int)srv);
	got = xseg_accept(xs, srv);
	CHECK(got == req);
	CHECK(got->op == X_WRITE && got->offset == 4096 && got->size == len);
	d = xseg_req_data(xs, got);
	for (uint32_t i = 0; i < len; i++)
		CHECK(d[i] == (uint8_t)(seed + i));
	for (uint32_t i = 0; i < len; i++)
		d[i] = (uint8_t)~d[i];		/* the "result" */
	got->serviced = len;
	got->state |= XS_SERVED;
	CHECK(xseg_respond(xs, got) == (int)cli);
	CHECK(xseg_accept(xs, srv) == NULL && errno == EAGAIN);
	got = xseg_receive(xs, cli);
	CHECK(got == req);
	CHECK(got->state & XS_SERVED);
	CHECK(got->serviced == len && got->cookie == 0xC0FFEE);
	d = xseg_req_data(xs, got);
	for (uint32_t i = 0; i < len; i++)
		CHECK(d[i] == (uint8_t)~(uint8_t)(seed + i));
	CHECK(xseg_put_request(xs, got) == 0);
	CHECK(xseg_put_request(xs, got) == -EPERM);	/* double put */
}

static void lifecycle(const char *fmt)
{
	struct xseg_config cfg = tx_create(fmt);
	struct xseg *xs = tx_join(&cfg, "posix");
	struct xseg_request *req;
	int cli, srv;

	srv = xseg_bind_port(xs, 1, 0);
	CHECK(srv == 1);
	CHECK(xseg_bind_port(xs, 1, 0) == -EALREADY);
	CHECK(xseg_bind_port(xs, cfg.nr_ports, 0) == -EINVAL);
	CHECK(xseg_bind_port(xs, cfg.dynports, 0) == -EINVAL);	/* dynamic: by ANY only */
	cli = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(cli >= (int)cfg.dynports && cli < (int)cfg.nr_ports);
	for (int i = 0; i < 300; i++)
		roundtrip(xs, (uint32_t)cli, (uint32_t)srv, (uint32_t)(1 + (i * 977) % 65536), (uint8_t)i);

	/* Misuse. */
	req = xseg_get_request(xs, (uint32_t)cli);
	CHECK(req);
	CHECK(xseg_prep_request(xs, req, "x", 1, 1ull << 40) == -E2BIG);
	CHECK(xseg_prep_request(xs, req, "x", XSEG_TARGET_MAX + 1, 0) == -ENAMETOOLONG);
	CHECK(xseg_submit(xs, req, 2) == -ENOENT);		/* nobody bound 2 */
	CHECK(xseg_bind_port(xs, 3, XSEG_PORT_RECEIVE) == 3);	/* a client-only port */
	CHECK(xseg_submit(xs, req, 3) == -EPERM);
	CHECK(xseg_leave_port(xs, 3) == 0);
	CHECK(xseg_submit(xs, req, cfg.nr_ports) == -EINVAL);
	CHECK(xseg_respond(xs, req) == -EPERM);			/* not accepted */
	CHECK(xseg_get_request(xs, 3) == NULL && errno == EPERM);	/* not our port */
	CHECK(xseg_submit(xs, (struct xseg_request *)((char *)req + 8), (uint32_t)srv) == -EINVAL);
	CHECK(xseg_put_request(xs, req) == 0);

	/* Request exhaustion is a value, not a crash. */
	{
		struct xseg_request *all[4096];
		uint32_t n = 0;

		while ((all[n] = xseg_get_request(xs, (uint32_t)cli)) != NULL)
			n++;
		CHECK(errno == EAGAIN && n == cfg.nr_requests);
		while (n)
			CHECK(xseg_put_request(xs, all[--n]) == 0);
	}
	CHECK(tx_free_requests(xs) == cfg.nr_requests);
	CHECK(xseg_verify(xs, tx_print_line, NULL) == 0);
	CHECK(xseg_leave(xs) == 0);
}

static void test_lifecycle_heap(void) { lifecycle("heap:%s:8:64:64K:0:12"); }
static void test_lifecycle_posix(void) { lifecycle("posix:%s:8:64:64K:0:12:buffers=4K*16,1M*2"); }

static void test_buffer_classes(void)
{
	struct xseg_config cfg = tx_create("heap:%s:4:8:64K:0:12:buffers=4K*2,1M*1");
	struct xseg *xs = tx_join(&cfg, "posix");
	struct xseg_request *r[4];
	int c;

	CHECK(xseg_bind_port(xs, 0, 0) == 0);
	c = 0;
	for (int i = 0; i < 4; i++)
		CHECK((r[i] = xseg_get_request(xs, (uint32_t)c)));
	/* 4K class has 2 chunks; the third 4K ask spills to 64K. */
	CHECK(xseg_prep_request(xs, r[0], "a", 1, 100) == 0);
	CHECK(xseg_prep_request(xs, r[1], "b", 1, 4096) == 0);
	CHECK(xseg_prep_request(xs, r[2], "c", 1, 4000) == 0);
	CHECK(xseg_req_data(xs, r[0]) && xseg_req_data(xs, r[1]) && xseg_req_data(xs, r[2]));
	CHECK(xseg_prep_request(xs, r[3], "d", 1, 1 << 20) == 0);
	{
		/* The chunk's capacity, whatever data_len says. */
		uint64_t cap = 0;
		CHECK(xseg_req_buffer(xs, r[0], &cap) == xseg_req_data(xs, r[0]) && cap == 4096);
		CHECK(xseg_req_buffer(xs, r[2], &cap) == xseg_req_data(xs, r[2]) && cap == 65536);
		CHECK(xseg_req_buffer(xs, r[3], &cap) && cap == 1 << 20);
		r[0]->data_len = 1 << 30;	/* as a hostile client could */
		CHECK(xseg_req_data(xs, r[0]) == NULL);
		CHECK(xseg_req_buffer(xs, r[0], &cap) != NULL && cap == 4096);
		r[0]->data_len = 100;
	}
	CHECK(xseg_prep_request(xs, r[0], "a", 1, 1 << 20) == -ENOBUFS);	/* the only 1M is taken */
	CHECK(xseg_prep_request(xs, r[0], "a", 1, (1 << 20) + 1) == -E2BIG);
	for (int i = 0; i < 4; i++)
		CHECK(xseg_put_request(xs, r[i]) == 0);
	CHECK(xseg_verify(xs, tx_print_line, NULL) == 0);
	xseg_leave(xs);
}

/* max_hops=: a request is forwarded that many times, then -ENOSPC; the reply unwinds them all. */
static void hops(const char *fmt, uint32_t want)
{
	struct xseg_config cfg = tx_create(fmt);
	struct xseg *xs = tx_join(&cfg, "posix");
	struct xseg_request *req, *got;
	uint32_t n = 0, at = 1;
	int cli, r;

	CHECK(cfg.max_hops == want);
	CHECK(xseg_bind_port(xs, 1, 0) == 1 && xseg_bind_port(xs, 2, 0) == 2);
	cli = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(cli >= 0);
	req = xseg_get_request(xs, (uint32_t)cli);
	CHECK(req && xseg_submit(xs, req, 1) == 1);
	CHECK(xseg_accept(xs, 1) == req);
	/* Back and forth between ports 1 and 2, one hop each time. */
	while ((r = xseg_forward(xs, req, at, 3 - at)) >= 0) {
		CHECK(r == (int)(3 - at));
		at = 3 - at;
		CHECK(xseg_accept(xs, at) == req && req->path_len == ++n);
		CHECKF(n <= XSEG_PATH_MAX, "%u hops, more than the inline path holds", n);
	}
	CHECKF(r == -ENOSPC && n == want, "%s: %u hops, then %d", fmt, n, r);
	req->state |= XS_SERVED;
	/* The reply goes back through every hop, last first, then to the client. */
	while (n--) {
		CHECK(xseg_respond(xs, req) == (int)(3 - at));
		at = 3 - at;
		got = xseg_receive(xs, at);
		CHECK(got == req && req->path_len == n);
	}
	CHECK(xseg_respond(xs, req) == cli);
	CHECK(xseg_receive(xs, (uint32_t)cli) == req && (req->state & XS_SERVED));
	CHECK(xseg_put_request(xs, req) == 0);
	CHECK(xseg_verify(xs, NULL, NULL) == 0);
	xseg_leave(xs);
	xseg_destroy_name(cfg.type, cfg.name);
}

static void test_max_hops(void)
{
	hops("heap:%s:8:16:4K:0:12", XSEG_PATH_DEFAULT);
	hops("heap:%s:8:16:4K:0:12:max_hops=1", 1);
	hops("heap:%s:8:16:4K:0:12:max_hops=7", 7);
	hops("heap:%s:8:16:4K:0:12:max_hops=16", XSEG_PATH_MAX);
}

static void test_forward_and_redirect(void)
{
	struct xseg_config cfg = tx_create("heap:%s:8:16:4K:0:12");
	struct xseg *xs = tx_join(&cfg, "posix");
	struct xseg_request *req, *got;
	int cli;

	CHECK(xseg_bind_port(xs, 1, 0) == 1);	/* middle */
	CHECK(xseg_bind_port(xs, 2, 0) == 2);	/* storage */
	cli = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(cli >= 0);
	req = xseg_get_request(xs, (uint32_t)cli);
	CHECK(xseg_prep_request(xs, req, "t", 1, 16) == 0);
	CHECK(xseg_submit(xs, req, 1) == 1);
	got = xseg_accept(xs, 1);
	CHECK(got == req);
	CHECK(xseg_forward(xs, got, 1, 2) == 2);
	CHECK(xseg_forward(xs, got, 1, 2) == -EPERM);	/* no longer ours */
	got = xseg_accept(xs, 2);
	CHECK(got == req && got->path_len == 1);
	got->state |= XS_SERVED;
	CHECK(xseg_respond(xs, got) == 1);		/* back through the middle first */
	CHECK(xseg_receive(xs, (uint32_t)cli) == NULL);
	got = xseg_receive(xs, 1);
	CHECK(got == req && got->path_len == 0);
	CHECK(xseg_respond(xs, got) == cli);		/* then on to the client */
	got = xseg_receive(xs, (uint32_t)cli);
	CHECK(got == req && (got->state & XS_SERVED));
	/* Redirect: submits to 1 go to 2. */
	CHECK(xseg_set_redirect(xs, 1, 2) == 0);
	CHECK(xseg_submit(xs, got, 1) == 2);		/* the port to signal */
	CHECK(xseg_accept(xs, 1) == NULL);
	got = xseg_accept(xs, 2);
	CHECK(got == req && got->dst_port == 1 && got->effective_dst == 2);
	CHECK(xseg_fail(xs, got, EROFS) == cli);
	got = xseg_receive(xs, (uint32_t)cli);
	CHECK(got && (got->state & XS_FAILED) && got->error == EROFS);
	CHECK(xseg_put_request(xs, got) == 0);
	CHECK(xseg_set_redirect(xs, 1, XSEG_NO_PORT) == 0);
	CHECK(xseg_verify(xs, tx_print_line, NULL) == 0);
	xseg_leave(xs);
}

static void test_leave_port_fails_queued(void)
{
	struct xseg_config cfg = tx_create("heap:%s:8:16:4K:0:12");
	struct xseg *xs = tx_join(&cfg, "posix");
	struct xseg_request *req, *got;
	int cli;

	CHECK(xseg_bind_port(xs, 1, 0) == 1);
	cli = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	req = xseg_get_request(xs, (uint32_t)cli);
	CHECK(xseg_prep_request(xs, req, "t", 1, 16) == 0);
	CHECK(xseg_submit(xs, req, 1) == 1);
	CHECK(xseg_leave_port(xs, 1) == 0);		/* the server leaves */
	got = xseg_receive(xs, (uint32_t)cli);
	CHECK(got == req && (got->state & XS_FAILED) && got->error == ECONNRESET);
	CHECK(xseg_put_request(xs, got) == 0);
	CHECK(xseg_leave_port(xs, 1) == -EPERM);
	CHECK(xseg_bind_port(xs, 1, 0) == 1);		/* bindable again */
	CHECK(tx_free_requests(xs) == cfg.nr_requests);
	xseg_leave(xs);
}

static void test_autorm_and_destroy(void)
{
	struct xseg_config cfg = tx_create("posix:%s:4:8:4K:0:12:autorm=1");
	struct xseg *a = tx_join(&cfg, "posix"), *b = tx_join(&cfg, "posix");
	char err[256];
	int e;

	CHECK(xseg_header(a)->attached == 2);
	CHECK(xseg_leave(a) == 0);
	CHECK(xseg_header(b)->attached == 1);
	CHECK(xseg_leave(b) == 0);			/* the last one: removed */
	CHECK(xseg_join(cfg.type, cfg.name, "posix", NULL, NULL, &e, err, sizeof(err)) == NULL);
	CHECK(e == -ENOENT);

	cfg = tx_create("posix:%s:4:8:4K:0:12");
	a = tx_join(&cfg, "posix");
	CHECK(xseg_destroy(a) == 0);
	CHECK(xseg_join(cfg.type, cfg.name, "posix", NULL, NULL, &e, err, sizeof(err)) == NULL);
	CHECK(e == -ENOENT);
	CHECK(xseg_leave(a) == 0);			/* still mapped until now */
}

static void test_registry(void)
{
	static const struct xseg_driver_ops extra = {
		.abi_size = sizeof(struct xseg_driver_ops), .version = 1, .name = "testdrv",
	};
	const struct xseg_driver_ops *futex = xseg_find_driver("futex");

	CHECK(futex && xseg_find_segtype("posix") && xseg_find_segtype("heap"));
	CHECK(xseg_register_driver(&extra) == 0);
	CHECK(xseg_register_driver(&extra) == 0);		/* the same ops again: fine */
	CHECK(xseg_find_driver("testdrv") == &extra);
	CHECK(xseg_unregister_driver(&extra) == 0);
	CHECK(xseg_unregister_driver(&extra) == -ENOENT);
	CHECK(xseg_find_driver("testdrv") == NULL);		/* and no xseg_testdrv.so */
	CHECK(xseg_find_driver("../evil") == NULL);		/* names, never paths */
	{
		/* Version 1's wait callbacks are retired; arm, sleep and disarm go together. */
		static struct xseg_driver_ops old = {
			.abi_size = sizeof(struct xseg_driver_ops), .version = 1, .name = "olddrv",
		};
		static struct xseg_driver_ops half = {
			.abi_size = sizeof(struct xseg_driver_ops), .version = 1, .name = "halfdrv",
		};
		static int slot;

		old.retired_wait[1] = &slot;
		half.arm = futex->arm;
		half.disarm = futex->disarm;
		CHECK(xseg_register_driver(&old) == -EINVAL);
		CHECK(xseg_register_driver(&half) == -EINVAL);
		CHECK(xseg_find_driver("olddrv") == NULL && xseg_find_driver("halfdrv") == NULL);
	}
	xseg_finalize();
	CHECK(xseg_register_driver(&extra) == 0);
	CHECK(xseg_find_driver("testdrv") == &extra);	/* lookups register the built-ins again */
	CHECK(xseg_find_driver("futex") == futex);
	CHECK(xseg_unregister_driver(&extra) == 0);
	CHECK(xseg_initialize() == 0 && xseg_find_segtype("posix"));
}

static void never_called(struct xseg *xs, uint32_t portno, void *arg)
{
	(void)xs; (void)portno; (void)arg;
	abort();
}

static void test_join_errors(void)
{
	struct xseg_config cfg = tx_create("heap:%s:4:8:4K:0:12");
	char err[256];
	int e;

	CHECK(xseg_join("nosuch", cfg.name, "posix", NULL, NULL, &e, err, sizeof(err)) == NULL);
	CHECK(e == -ENOTSUP);
	CHECK(xseg_join(cfg.type, cfg.name, "nosuchdriver", NULL, NULL, &e, err, sizeof(err)) == NULL);
	CHECK(e == -ENOTSUP && strstr(err, "nosuchdriver"));
	CHECK(xseg_join(cfg.type, "missing-segment", "posix", NULL, NULL, &e, err, sizeof(err)) == NULL);
	CHECK(e == -ENOENT);
	CHECK(xseg_create(&cfg, err, sizeof(err)) == -EEXIST);
	/* a wakeup callback is for kernel peers: refused here, never kept and ignored */
	CHECK(xseg_join(cfg.type, cfg.name, "posixfd", never_called, NULL, &e, err, sizeof(err)) == NULL);
	CHECKF(e == -EINVAL && strstr(err, "xseg_poll_fd"), "%d %s", e, err);
}

int main(void)
{
	xt_watchdog(60);
	RUN(test_lifecycle_heap);
	RUN(test_max_hops);
	RUN(test_lifecycle_posix);
	RUN(test_buffer_classes);
	RUN(test_forward_and_redirect);
	RUN(test_leave_port_fails_queued);
	RUN(test_autorm_and_destroy);
	RUN(test_join_errors);
	RUN(test_registry);
	return 0;
}
