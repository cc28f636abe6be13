/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: xseg_pass, a forward with no return hop, and xseg_readdress.
 * Three ports in three processes: the client (this process, port 3) submits
 * to a middle process (port 1) that readdresses every request and passes it
 * to a server process (port 2). The server's reply must reach the client
 * with the target, offset and flags the client sent, and the middle must
 * never see it. Then the middle is SIGKILLed with passed requests at the
 * server (the replies still reach the client, served), and the server is
 * SIGKILLed with passed requests (recovery fails them back to the client,
 * ECONNRESET, not to the middle). In one process: a pass below a forwarding
 * hop replies to that hop, and needs no room in a full return path; a pass or readdress of a request that is not
 * accepted on the port is refused; a client cannot set XF_READDRESSED; a
 * scribbled kept record is dropped, not used.
 */
#include "procs.h"

#define CLIENT 3u
#define MIDDLE 1u
#define SERVER 2u
#define OBJ "object-of-the-middle"
#define SHIFT 100000u		/* the middle's offset: the client's plus this */

struct shared {
	uint64_t passed;	/* by the middle */
	uint64_t replies_at_middle;	/* replies the middle received (must stay 0) */
	uint64_t accepted;	/* by the server */
	uint64_t bad_view;	/* server saw another target/offset/flags than the middle set */
	uint32_t hold;		/* the server keeps what it accepts until this drops to 0 */
};

static struct shared *sh;

/* The byte the server fills at @i of a reply to offset @off (its view). */
static uint8_t fill_byte(uint64_t off, uint64_t i)
{
	return (uint8_t)((off >> 9) * 7 + i * 13 + 1);
}

/* The middle: accept on MIDDLE, readdress to OBJ at offset + SHIFT, pass to SERVER. */
static void middle(const struct xseg_config *cfg)
{
	struct xseg *xs = tx_join(cfg, "futex");

	CHECK(xseg_bind_port(xs, MIDDLE, 0) == (int)MIDDLE);
	for (;;) {
		struct xseg_request *req;

		while ((req = xseg_accept(xs, MIDDLE))) {
			int to;

			CHECK(xseg_readdress(xs, req, OBJ, (uint32_t)strlen(OBJ), req->offset + SHIFT,
					     XF_ZEROFILL) == 0);
			to = xseg_pass(xs, req, MIDDLE, SERVER);
			CHECKF(to == (int)SERVER, "pass: %d", to);
			xseg_signal(xs, (uint32_t)to);
			__atomic_fetch_add(&sh->passed, 1, __ATOMIC_RELEASE);
		}
		while ((req = xseg_receive(xs, MIDDLE))) {
			/* Never: a passed request's reply does not come back here. */
			__atomic_fetch_add(&sh->replies_at_middle, 1, __ATOMIC_RELEASE);
			xseg_respond(xs, req);
		}
		xseg_wait(xs, MIDDLE, 20000);
	}
}

/* The server: checks the readdressed view, fills the data; holds replies while sh->hold. */
static void server(const struct xseg_config *cfg)
{
	struct xseg *xs = tx_join(cfg, "futex");
	struct xseg_request *held[64];
	uint32_t nheld = 0;

	CHECK(xseg_bind_port(xs, SERVER, 0) == (int)SERVER);
	for (;;) {
		struct xseg_request *req;

		while (nheld < 64 && (req = xseg_accept(xs, SERVER))) {
			if (req->target_len != strlen(OBJ) || memcmp(req->target, OBJ, strlen(OBJ)) ||
			    req->offset < SHIFT || req->flags != (XF_ZEROFILL | XF_READDRESSED))
				__atomic_fetch_add(&sh->bad_view, 1, __ATOMIC_RELAXED);
			uint8_t *d = xseg_req_data(xs, req);

			for (uint64_t i = 0; d && i < req->size; i++)
				d[i] = fill_byte(req->offset, i);
			req->serviced = req->size;
			held[nheld++] = req;
			__atomic_fetch_add(&sh->accepted, 1, __ATOMIC_RELEASE);
		}
		while (nheld && !__atomic_load_n(&sh->hold, __ATOMIC_ACQUIRE)) {
			int to;

			req = held[--nheld];
			__atomic_fetch_or(&req->state, XS_SERVED, __ATOMIC_RELEASE);
			to = xseg_respond(xs, req);
			CHECKF(to >= 0, "respond: %d", to);
			xseg_signal(xs, (uint32_t)to);
		}
		xseg_wait(xs, SERVER, 2000);
	}
}

static pid_t spawn(void (*fn)(const struct xseg_config *), const struct xseg_config *cfg, struct xseg *xs,
		   uint32_t port)
{
	pid_t pid = xt_fork();

	if (pid == 0) {
		fn(cfg);
		_exit(0);
	}
	tx_wait_bound(xs, port);
	return pid;
}

static void kill_wait(pid_t pid)
{
	int st;

	CHECK(kill(pid, SIGKILL) == 0);
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "a peer ended on its own (status %#x)", st);
}

static const char *vol_name(uint32_t i)
{
	static char buf[32];

	snprintf(buf, sizeof(buf), "volume-%u", i % 5);
	return buf;
}

/* Submit @n reads from CLIENT to MIDDLE: target volume-K, offset i*512, flags XF_FUA. */
static void submit_n(struct xseg *xs, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct xseg_request *req = xseg_get_request(xs, CLIENT);
		const char *t = vol_name(i);

		CHECK(req);
		CHECK(xseg_prep_request(xs, req, t, (uint32_t)strlen(t), 512) == 0);
		req->op = X_READ;
		req->flags = XF_FUA;
		req->offset = (uint64_t)i * 512;
		req->size = 512;
		req->cookie = i;
		CHECK(xseg_submit_signal(xs, req, MIDDLE) == (int)MIDDLE);
	}
}

/*
 * Receive @n replies on CLIENT: each with the target, offset and flags it was
 * sent with; served ones carry the server's bytes for offset + SHIFT; failed
 * ones ECONNRESET. Returns how many were served.
 */
static uint32_t receive_n(struct xseg *xs, uint32_t n, bool want_served)
{
	uint32_t got = 0, served = 0;

	while (got < n) {
		struct xseg_request *req = xseg_receive(xs, CLIENT);
		const char *t;

		if (!req) {
			xseg_wait(xs, CLIENT, 20000);
			continue;
		}
		t = vol_name((uint32_t)req->cookie);
		CHECKF(req->target_len == strlen(t) && !memcmp(req->target, t, strlen(t)),
		       "reply %" PRIu64 ": target '%.*s', sent '%s'", req->cookie, (int)req->target_len,
		       req->target, t);
		CHECKF(req->offset == req->cookie * 512, "reply %" PRIu64 ": offset %" PRIu64, req->cookie,
		       req->offset);
		CHECKF(req->flags == XF_FUA, "reply %" PRIu64 ": flags %#x", req->cookie, req->flags);
		if (req->state & XS_SERVED) {
			const uint8_t *d = xseg_req_data(xs, req);

			CHECK(want_served);
			CHECK(req->serviced == 512);
			for (uint64_t i = 0; i < 512; i++)
				CHECKF(d[i] == fill_byte(req->offset + SHIFT, i), "reply %" PRIu64 ": byte %" PRIu64,
				       req->cookie, i);
			served++;
		} else {
			CHECKF(!want_served && req->error == ECONNRESET, "reply %" PRIu64 " failed: %d",
			       req->cookie, req->error);
		}
		CHECK(xseg_put_request(xs, req) == 0);
		got++;
	}
	return served;
}

static void wait_count(uint64_t *c, uint64_t n, const char *what)
{
	for (int i = 0; i < 10000 && __atomic_load_n(c, __ATOMIC_ACQUIRE) < n; i++)
		usleep(1000);
	CHECKF(__atomic_load_n(c, __ATOMIC_ACQUIRE) >= n, "%s: %" PRIu64 " of %" PRIu64 " in 10 s", what,
	       __atomic_load_n(c, __ATOMIC_ACQUIRE), n);
}

static void recover_all(struct xseg *xs)
{
	int r;

	/* A peer's own periodic recovery may hold the lease: then it does the same work. */
	for (int i = 0; i < 1000 && (r = xseg_recover(xs, NULL)) == -EALREADY; i++)
		usleep(1000);
	CHECKF(r == 0, "xseg_recover: %d", r);
}

static void test_three_processes(void)
{
	struct xseg_config cfg = tx_create("posix:%s:8:64:4K:0:12:dynports=6");
	struct xseg *xs;
	pid_t mid, srv;

	sh = xt_shared(sizeof(*sh));
	xs = tx_join(&cfg, "futex");
	CHECK(xseg_bind_port(xs, CLIENT, 0) == (int)CLIENT);
	mid = spawn(middle, &cfg, xs, MIDDLE);
	srv = spawn(server, &cfg, xs, SERVER);

	/* 1. Passed: the reply reaches the client as it sent it; the middle never sees it. */
	submit_n(xs, 40);
	CHECK(receive_n(xs, 40, true) == 40);
	/* The middle counts after its pass returns: the replies can be here before its last count. */
	for (int i = 0; i < 20000 && __atomic_load_n(&sh->passed, __ATOMIC_ACQUIRE) < 40; i++)
		usleep(1000);
	CHECK(sh->passed == 40 && sh->accepted == 40);
	CHECKF(sh->bad_view == 0, "the server saw %" PRIu64 " requests not readdressed", sh->bad_view);
	CHECK(xseg_port(xs, MIDDLE)->cnt.accepted == 40);
	CHECKF(xseg_port(xs, MIDDLE)->cnt.responded == 40, "a pass counts as responded at the middle: %llu",
	       (unsigned long long)xseg_port(xs, MIDDLE)->cnt.responded);
	CHECKF(xseg_port(xs, MIDDLE)->cnt.received == 0 && sh->replies_at_middle == 0,
	       "the middle received %" PRIu64 " replies", sh->replies_at_middle);
	CHECK(xseg_port(xs, CLIENT)->cnt.received == 40);

	/* 2. The middle dies with 8 passed requests at the server: they are still served. */
	__atomic_store_n(&sh->hold, 1, __ATOMIC_RELEASE);
	submit_n(xs, 8);
	wait_count(&sh->accepted, 48, "server accepts");
	kill_wait(mid);
	recover_all(xs);
	__atomic_store_n(&sh->hold, 0, __ATOMIC_RELEASE);
	xseg_signal(xs, SERVER);
	CHECK(receive_n(xs, 8, true) == 8);
	mid = spawn(middle, &cfg, xs, MIDDLE);

	/* 3. The server dies with 8 passed requests: they fail back to the client. */
	__atomic_store_n(&sh->hold, 1, __ATOMIC_RELEASE);
	submit_n(xs, 8);
	wait_count(&sh->accepted, 56, "server accepts");
	wait_count(&sh->passed, 56, "middle passes");
	kill_wait(srv);
	recover_all(xs);
	CHECK(receive_n(xs, 8, false) == 0);
	CHECK(sh->replies_at_middle == 0 && xseg_port(xs, MIDDLE)->cnt.received == 0);

	kill_wait(mid);
	recover_all(xs);
	CHECK(xseg_verify(xs, tx_print_line, NULL) == 0);
	CHECKF(tx_free_requests(xs) == cfg.nr_requests, "%u of %u requests are back in the free list",
	       tx_free_requests(xs), cfg.nr_requests);
	xseg_leave(xs);
}

/*
 * client 3 -> A(1) forwards -> B(2) passes -> C(4) answers: the reply goes to
 * A, then to the client. max_hops=1: A's forward fills the return path, and
 * B's pass needs no room in it (a forward there is refused).
 */
static void test_pass_below_forward(void)
{
	struct xseg_config cfg = tx_create("posix:%s:8:16:4K:0:12:dynports=6:max_hops=1");
	struct xseg *xs = tx_join(&cfg, "futex");
	struct xseg_request *req, *got;

	for (uint32_t p = 1; p <= 4; p++)
		CHECK(xseg_bind_port(xs, p, 0) == (int)p);
	req = xseg_get_request(xs, 3);
	CHECK(req && xseg_prep_request(xs, req, "vol", 3, 0) == 0);
	req->offset = 7;
	CHECK(xseg_submit(xs, req, 1) == 1);
	got = xseg_accept(xs, 1);
	CHECK(got == req && xseg_forward(xs, got, 1, 2) == 2);
	got = xseg_accept(xs, 2);
	CHECK(got == req && xseg_readdress(xs, got, "obj", 3, 99, 0) == 0);
	CHECK(xseg_forward(xs, got, 2, 4) == -ENOSPC);
	CHECK(xseg_pass(xs, got, 2, 4) == 4);
	CHECK(xseg_pass(xs, got, 2, 4) == -EPERM);	/* no longer B's */
	got = xseg_accept(xs, 4);
	CHECK(got == req && got->offset == 99 && got->target_len == 3 && !memcmp(got->target, "obj", 3));
	CHECK(xseg_respond(xs, got) == 1);		/* to A, the hop before B */
	CHECK(!xseg_receive(xs, 2));
	got = xseg_receive(xs, 1);
	CHECK(got == req && xseg_request_index(xs, got) >= 0);
	/* A sees what it forwarded: B's rewrite is undone once the reply passes B. */
	CHECK(got->offset == 7 && got->target_len == 3 && !memcmp(got->target, "vol", 3) && !got->flags);
	CHECK(xseg_respond(xs, got) == 3);
	got = xseg_receive(xs, 3);
	CHECK(got == req && got->offset == 7 && !memcmp(got->target, "vol", 3));
	CHECK(xseg_put_request(xs, got) == 0);
	xseg_leave(xs);
}

static void test_hostile(void)
{
	struct xseg_config cfg = tx_create("posix:%s:8:16:4K:0:12:dynports=6");
	struct xseg *xs = tx_join(&cfg, "futex");
	struct xseg_request *req, *got;
	char big[XSEG_TARGET_MAX];

	for (uint32_t p = 1; p <= 3; p++)
		CHECK(xseg_bind_port(xs, p, 0) == (int)p);
	req = xseg_get_request(xs, 3);
	CHECK(req && xseg_prep_request(xs, req, "vol", 3, 0) == 0);
	/* Not accepted: refused, whatever port names it. */
	CHECK(xseg_pass(xs, req, 3, 2) == -EPERM);
	CHECK(xseg_pass(xs, req, 1, 2) == -EPERM);
	CHECK(xseg_readdress(xs, req, "x", 1, 0, 0) == -EPERM);
	CHECK(xseg_pass(NULL, req, 1, 2) == -EINVAL);
	CHECK(xseg_pass(xs, (struct xseg_request *)big, 1, 2) == -EINVAL);
	/* A client's XF_READDRESSED is not taken for a hop's. */
	req->flags = XF_READDRESSED | XF_FUA;
	CHECK(xseg_submit(xs, req, 1) == 1);
	CHECK(xseg_pass(xs, req, 1, 2) == -EPERM);	/* queued: nobody's to pass */
	got = xseg_accept(xs, 1);
	CHECK(got == req && got->flags == XF_FUA);
	/* Accepted on 1, passed as if on 2: refused. */
	CHECK(xseg_pass(xs, got, 2, 3) == -EPERM);
	CHECK(xseg_pass(xs, got, 1, 99999) == -EINVAL);
	/* Too long for both names and the kept fields; then once only. */
	memset(big, 'b', sizeof(big));
	CHECK(xseg_readdress(xs, got, big, XSEG_TARGET_MAX - 16 - 2, 0, 0) == -ENOSPC);
	CHECK(xseg_readdress(xs, got, big, XSEG_TARGET_MAX - 16 - 3, 5, 0) == 0);
	CHECK(xseg_readdress(xs, got, "y", 1, 0, 0) == -EBUSY);
	CHECK(xseg_pass(xs, got, 1, 2) == 2);
	got = xseg_accept(xs, 2);
	CHECK(got == req && got->target_len == XSEG_TARGET_MAX - 16 - 3 && got->offset == 5);
	/* The server scribbles on the kept record: dropped, the flag cleared, nothing else moved. */
	memset(got->target + XSEG_TARGET_MAX - 16, 0xEE, 16);
	CHECK(xseg_respond(xs, got) == 3);
	got = xseg_receive(xs, 3);
	CHECK(got == req && got->flags == 0 && got->offset == 5);
	/* A request to a port with no server: the pass fails and the request is still ours. */
	CHECK(xseg_submit(xs, got, 1) == 1);
	got = xseg_accept(xs, 1);
	CHECK(xseg_pass(xs, got, 1, 5) == -ENOENT);
	CHECK(xseg_respond(xs, got) == 3);
	got = xseg_receive(xs, 3);
	CHECK(got == req && xseg_put_request(xs, got) == 0);
	CHECK(xseg_verify(xs, tx_print_line, NULL) == 0);
	xseg_leave(xs);
}

int main(void)
{
	xt_watchdog(120);
	RUN(test_pass_below_forward);
	RUN(test_hostile);
	RUN(test_three_processes);
	return 0;
}
