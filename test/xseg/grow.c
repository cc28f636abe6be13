/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: growable segments (max_requests=). A segment reserved for 256
 * requests starts with 16 live; xseg_grow adds requests and default-class
 * chunks (every one usable at once), refuses out-of-range targets, shrinks
 * only what no request holds (-EBUSY with the count while some are held,
 * done once they are put) and grows again. Under load: patternd and three
 * client processes keep round trips in flight while the segment grows
 * several times and shrinks; every round trip completes and the new
 * requests are used. Killed growers: a child process grows or shrinks and is
 * killed at a chosen step (XSEG_TEST_DIE_AT; XSEG_GROW_KILLS, default 60)
 * while a client runs; afterwards recovery and the next grow settle what it
 * left, and at the end no index is lost or duplicated (verify is clean and
 * the free lists hold exactly the live counts). Spec errors name the field.
 */
#include "procs.h"

#define NCLIENTS 3

struct shared {
	uint64_t done __attribute__((aligned(64)));
	uint64_t failed;
	uint64_t bad;
	uint64_t max_index;	/* the highest request index a client used */
};

static struct shared *sh;
static volatile sig_atomic_t client_stop;

static void on_term(int sig)
{
	(void)sig;
	client_stop = 1;
}

/* Entries of the free request queue / the default class's queue (quiescent only). */
static uint32_t free_count(struct xseg *xs, bool chunks)
{
	struct xseg_header *h = xseg_header(xs);
	uint32_t max = h->cls[0].count;
	uint64_t off = chunks ? h->cls[0].queue_off : h->free_queue_off;
	struct xq q;

	CHECK(xq_attach(&q, (char *)xseg_base(xs) + off, xq_size((uint32_t)h->queue_cap), max) == 0);
	return xq_count(&q);
}

static void check_settled(struct xseg *xs, const char *when)
{
	struct xseg_grow_status gs;

	CHECK(xseg_grow_status(xs, &gs) == 0);
	CHECKF(xseg_verify(xs, tx_print_line, NULL) == 0, "verify %s", when);
	CHECKF(free_count(xs, false) == gs.live_requests, "%s: %u free requests, %u live", when,
	       free_count(xs, false), gs.live_requests);
	CHECKF(free_count(xs, true) == gs.live_chunks, "%s: %u free chunks, %u live", when,
	       free_count(xs, true), gs.live_chunks);
}

/* Take every request we can; returns how many (their pointers in @v). */
static uint32_t take_all(struct xseg *xs, uint32_t port, struct xseg_request **v, uint32_t cap)
{
	uint32_t n = 0;

	while (n < cap && (v[n] = xseg_get_request(xs, port)))
		n++;
	return n;
}

static void test_basic(void)
{
	struct xseg_config cfg = tx_create("posix:%s:4:16:4K:0:12:max_requests=256");
	struct xseg_request *v[300];
	struct xseg_grow_status gs;
	char spec[512];
	struct xseg *xs;
	uint32_t n;
	int port;

	xseg_format_spec(&cfg, spec, sizeof(spec));
	CHECKF(strstr(spec, ":max_requests=256"), "spec %s", spec);
	xs = tx_join(&cfg, "futex");
	CHECK(xseg_grow_status(xs, &gs) == 0);
	CHECK(gs.live_requests == 16 && gs.live_chunks == 16 && gs.max_requests == 256);
	check_settled(xs, "at create");
	CHECK(xseg_grow(xs, 257, &gs) == -ERANGE);
	CHECK(xseg_grow(xs, 0, &gs) == -EINVAL);

	CHECK(xseg_grow(xs, 64, &gs) == 0);
	CHECKF(gs.live_requests == 64 && gs.live_chunks == 64 && gs.added == 96, "live %u/%u added %u",
	       gs.live_requests, gs.live_chunks, gs.added);
	check_settled(xs, "after growing to 64");

	port = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(port >= 0);
	n = take_all(xs, (uint32_t)port, v, 300);
	CHECKF(n == 64, "took %u requests of 64 live", n);
	for (uint32_t i = 0; i < n; i++)
		CHECK(xseg_prep_request(xs, v[i], "g", 1, i < 48 ? 4096 : 0) == 0);

	/* Shrink to 32 while all 64 are held: refused with the count, nothing lost. */
	CHECK(xseg_grow(xs, 32, &gs) == -EBUSY);
	CHECKF(gs.held == 32, "held %u (requests 32..63)", gs.held);
	CHECK(gs.target == 32 && gs.live_requests == 64);
	/* A retiring request put back is parked at once, not queued for the next client. */
	CHECK(free_count(xs, false) == 0);
	CHECK(xseg_put_request(xs, v[63]) == 0);
	CHECKF(free_count(xs, false) == 0, "a retiring request went back to the free queue");
	CHECK(xseg_grow(xs, 32, &gs) == -EBUSY && gs.held == 31);
	n = 63;
	/* Growing while a shrink is pending is refused too. */
	CHECK(xseg_grow(xs, 100, &gs) == -EBUSY);
	/* Requests above 32 put; those below re-take chunks, now the ones at the queue's head (32..63). */
	for (uint32_t i = 32; i < n; i++)
		CHECK(xseg_put_request(xs, v[i]) == 0);
	for (uint32_t i = 0; i < 32; i++)
		CHECK(xseg_prep_request(xs, v[i], "g", 1, 0) == 0);
	{
		struct xseg_header *h = xseg_header(xs);
		uint32_t high = 0;

		for (uint32_t i = 0; i < 32; i++) {
			CHECK(xseg_prep_request(xs, v[i], "g", 1, 4096) == 0);
			high += v[i]->buf_index - h->cls[0].first >= 32;
		}
		CHECKF(high > 0, "no request below 32 holds a chunk above it");
		/* Requests shrink; chunks wait for those (every chunk stays live meanwhile). */
		CHECK(xseg_grow(xs, 32, &gs) == -EBUSY);
		CHECKF(gs.held == high && gs.live_requests == 32 && gs.live_chunks == 64,
		       "held %u (want %u chunks), live %u/%u", gs.held, high, gs.live_requests, gs.live_chunks);
	}
	n = 32;
	for (uint32_t i = 0; i < n; i++)
		CHECK(xseg_put_request(xs, v[i]) == 0);
	CHECK(xseg_grow(xs, 32, &gs) == 0);
	CHECKF(gs.live_requests == 32 && gs.live_chunks == 32, "live %u/%u", gs.live_requests,
	       gs.live_chunks);
	CHECKF(gs.bytes_released >= 32 * 4096, "released %" PRIu64 " bytes", gs.bytes_released);
	check_settled(xs, "after shrinking to 32");
	n = take_all(xs, (uint32_t)port, v, 300);
	CHECKF(n == 32, "took %u requests of 32 live", n);
	for (uint32_t i = 0; i < n; i++) {
		CHECK(xseg_request_index(xs, v[i]) < 32);
		CHECK(xseg_put_request(xs, v[i]) == 0);
	}

	/* And grow again, over the given-back range (formatted afresh). */
	CHECK(xseg_grow(xs, 200, &gs) == 0);
	check_settled(xs, "after growing again to 200");
	n = take_all(xs, (uint32_t)port, v, 300);
	CHECKF(n == 200, "took %u requests of 200 live", n);
	for (uint32_t i = 0; i < n; i++) {
		CHECK(xseg_prep_request(xs, v[i], "g", 1, 4096) == 0);
		CHECK(xseg_put_request(xs, v[i]) == 0);
	}
	CHECK(xseg_grow(xs, 200, &gs) == 0 && gs.added == 0);	/* nothing to do */
	check_settled(xs, "at the end");
	CHECK(xseg_leave_port(xs, (uint32_t)port) == 0);
	xseg_leave(xs);

	/* A segment without a reserve cannot grow. */
	cfg = tx_create("posix:%s:4:16:4K:0:12");
	xs = tx_join(&cfg, "futex");
	CHECK(xseg_grow(xs, 17, &gs) == -ERANGE);
	CHECK(xseg_grow(xs, 16, &gs) == 0 && gs.max_requests == 16);
	xseg_leave(xs);
}

static void test_spec_errors(void)
{
	static const struct { const char *spec, *want; } bad[] = {
		{ "posix:x:4:16:4K:0:12:max_requests=8", "max_requests" },
		{ "posix:x:4:16:4K:0:12:max_requests=0", "max_requests" },
		{ "posix:x:4:16:4K:0:12:max_requests=99999999", "max_requests" },
		{ "posix:x:4:16:2M:0:12:huge=1:max_requests=32", "huge" },
		{ "segdev:x:4:16:4K:0:12:max_requests=32", "segdev" },
		{ "posix:x:4:16:4K:0:12:max_requests=abc", "max_requests" },
	};
	struct xseg_config cfg;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		CHECKF(xseg_parse_spec(bad[i].spec, &cfg, err, sizeof(err)) < 0, "'%s' accepted", bad[i].spec);
		CHECKF(strstr(err, bad[i].want), "'%s': message '%s' does not name %s", bad[i].spec, err,
		       bad[i].want);
	}
	/* Equal to nr_requests: accepted, not growable, not written back. */
	CHECK(xseg_parse_spec("posix:x:4:16:4K:0:12:max_requests=16", &cfg, err, sizeof(err)) == 0);
	CHECK(xseg_format_spec(&cfg, err, sizeof(err)) > 0 && !strstr(err, "max_requests"));
}

/* A client of patternd on port 1: depth @depth of 4 KiB READ/WRITE until SIGTERM, then drain. */
static void client(const struct xseg_config *cfg, uint32_t depth)
{
	uint64_t seed = pattern_seed("grow", 4), sent = 0, inflight = 0, idle_since = 0;
	struct xseg *xs = tx_join(cfg, "futex");
	int port = xseg_bind_port(xs, XSEG_ANY_PORT, 0);

	CHECK(port >= 0);
	while (!client_stop || inflight) {
		struct xseg_request *req;
		bool progress = false;

		while (!client_stop && inflight < depth && (req = xseg_get_request(xs, (uint32_t)port))) {
			uint64_t off = (sent % 1024) * 4096, idx = (uint64_t)xseg_request_index(xs, req);
			uint64_t m = __atomic_load_n(&sh->max_index, __ATOMIC_RELAXED);

			while (idx > m && !__atomic_compare_exchange_n(&sh->max_index, &m, idx, false,
								       __ATOMIC_RELAXED, __ATOMIC_RELAXED))
				;
			CHECK(xseg_prep_request(xs, req, "grow", 4, 4096) == 0);
			req->op = sent % 2 ? X_WRITE : X_READ;
			req->offset = off;
			req->size = 4096;
			if (req->op == X_WRITE)
				pattern_fill(xseg_req_data(xs, req), 4096, seed, off);
			CHECK(xseg_submit_signal(xs, req, 1) >= 0);
			sent++;
			inflight++;
		}
		while ((req = xseg_receive(xs, (uint32_t)port))) {
			inflight--;
			progress = true;
			if (req->state & XS_FAILED)
				__atomic_fetch_add(&sh->failed, 1, __ATOMIC_RELAXED);
			else if (req->serviced != 4096 || (req->op == X_READ &&
				 pattern_check(xseg_req_data(xs, req), 4096, seed, req->offset) != 4096))
				__atomic_fetch_add(&sh->bad, 1, __ATOMIC_RELAXED);
			CHECK(xseg_put_request(xs, req) == 0);
			__atomic_fetch_add(&sh->done, 1, __ATOMIC_RELAXED);
		}
		if (progress || !inflight) {
			idle_since = 0;
			if (!inflight)
				usleep(200);	/* every request is out: growth or a shrink in progress */
			continue;
		}
		if (!idle_since)
			idle_since = xt_now_ns();
		if (xt_now_ns() - idle_since > 30000000000ull) {
			fprintf(stderr, "client: %" PRIu64 " requests got no reply in 30 s\n", inflight);
			_exit(3);
		}
		xseg_wait(xs, (uint32_t)port, 50000);
	}
	xseg_leave(xs);
	_exit(0);
}

static pid_t spawn_client(const struct xseg_config *cfg, uint32_t depth)
{
	pid_t pid;

	signal(SIGTERM, on_term);
	pid = xt_fork();
	if (pid == 0)
		client(cfg, depth);
	return pid;
}

static void wait_progress(uint64_t n)
{
	uint64_t before = __atomic_load_n(&sh->done, __ATOMIC_RELAXED), t0 = xt_now_ns();

	while (__atomic_load_n(&sh->done, __ATOMIC_RELAXED) < before + n) {
		CHECKF(xt_now_ns() - t0 < 60000000000ull, "no progress for 60 s");	/* hang guard */
		usleep(500);
	}
}

/* xseg_grow until it is done (a shrink waits for the clients to put what they hold). */
static void grow_to(struct xseg *xs, uint32_t n)
{
	struct xseg_grow_status gs;
	uint64_t t0 = xt_now_ns();
	int r;

	while ((r = xseg_grow(xs, n, &gs)) == -EBUSY || r == -EALREADY) {
		CHECKF(xt_now_ns() - t0 < 60000000000ull, "grow to %u: still %d after 60 s (held %u)", n, r,
		       gs.held);	/* hang guard */
		usleep(1000);
	}
	CHECKF(r == 0, "grow to %u: %d", n, r);
	CHECK(gs.live_requests == n);
}

static void stop_all(pid_t *cli, int ncli, pid_t srv)
{
	int st;

	for (int i = 0; i < ncli; i++) {
		CHECK(kill(cli[i], SIGTERM) == 0);
		CHECK(waitpid(cli[i], &st, 0) == cli[i]);
		CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client %d status %#x", i, st);
	}
	tx_stop(srv);
}

static void test_under_load(void)
{
	struct xseg_config cfg = tx_create("posix:%s:8:16:4K:0:12:max_requests=256");
	static const uint32_t steps[] = { 32, 64, 128, 256, 40, 200 };
	struct xseg *xs;
	pid_t srv, cli[NCLIENTS];

	sh = xt_shared(sizeof(*sh));
	memset(sh, 0, sizeof(*sh));
	xs = tx_join(&cfg, "futex");
	srv = tx_patternd(&cfg, 1, "futex", NULL);
	tx_wait_bound(xs, 1);
	for (int i = 0; i < NCLIENTS; i++)
		cli[i] = spawn_client(&cfg, 64);
	wait_progress(200);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		grow_to(xs, steps[i]);
		wait_progress(500);
	}
	stop_all(cli, NCLIENTS, srv);
	CHECK(xseg_recover(xs, NULL) == 0);
	printf("under load: %" PRIu64 " round trips, highest request index used %" PRIu64 "\n", sh->done,
	       sh->max_index);
	CHECKF(sh->failed == 0 && sh->bad == 0, "%" PRIu64 " failed, %" PRIu64 " wrong data", sh->failed,
	       sh->bad);
	CHECKF(sh->max_index >= 128, "the grown requests were not used (highest index %" PRIu64 ")",
	       sh->max_index);
	check_settled(xs, "after the load");
	xseg_leave(xs);
}

/* A grower (or shrinker) killed at step @die of its work. Returns its exit status. */
static int killed_grow(const struct xseg_config *cfg, uint32_t target, long die)
{
	pid_t pid = xt_fork();
	char v[32];
	int st;

	if (pid == 0) {
		struct xseg *xs = tx_join(cfg, "futex");
		struct xseg_grow_status gs;
		int r;

		snprintf(v, sizeof(v), "%ld", die);
		setenv("XSEG_TEST_DIE_AT", v, 1);
		r = xseg_grow(xs, target, &gs);
		unsetenv("XSEG_TEST_DIE_AT");
		xseg_leave(xs);
		_exit(r == 0 || r == -EBUSY || r == -EALREADY ? 0 : 1);
	}
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECKF(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 99), "grower status %#x", st);
	return WEXITSTATUS(st);
}

static void test_killed_grower(void)
{
	struct xseg_config cfg = tx_create("posix:%s:8:16:4K:0:12:max_requests=512");
	long kills = xt_env_long("XSEG_GROW_KILLS", 60);
	uint64_t rnd = xt_seed();
	uint32_t died = 0, finished = 0, target = 16;
	struct xseg *xs;
	pid_t srv, cli[1];

	sh = xt_shared(sizeof(*sh));
	memset(sh, 0, sizeof(*sh));
	xs = tx_join(&cfg, "futex");
	srv = tx_patternd(&cfg, 1, "futex", NULL);
	tx_wait_bound(xs, 1);
	cli[0] = spawn_client(&cfg, 12);
	wait_progress(100);
	for (long k = 0; k < kills; k++) {
		uint64_t r = xt_rand(&rnd);
		struct xseg_grow_status gs;

		/* Mostly growth (3 steps per index), now and then a shrink (drain steps). */
		CHECK(xseg_grow_status(xs, &gs) == 0);
		if (r % 5 == 0 && gs.live_requests > 24)
			target = gs.live_requests - 1 - (uint32_t)((r >> 8) % 8);
		else
			target = gs.live_requests + 1 + (uint32_t)((r >> 8) % 6);
		if (target > 512)
			target = 512;
		/* Growth: 3 steps per index, chunks and requests: die at any of them. */
		if (killed_grow(&cfg, target, (long)((r >> 16) % (target > gs.live_requests ?
								  6 * (target - gs.live_requests) : 24))) == 99)
			died++;
		else
			finished++;
		/* Half the time recovery settles what it left, else the next grower does. */
		if (r & (1u << 30))
			CHECK(xseg_recover(xs, NULL) == 0);
		/* A pending shrink must finish before growth: the client puts what it holds. */
		CHECK(xseg_grow_status(xs, &gs) == 0);
		if (gs.target < gs.live_requests)
			grow_to(xs, gs.target);
		wait_progress(20);
	}
	grow_to(xs, 300);	/* growth continues after all that */
	wait_progress(200);
	stop_all(cli, 1, srv);
	CHECK(xseg_recover(xs, NULL) == 0);
	printf("killed growers: %u died mid-way, %u finished; %" PRIu64 " round trips\n", died, finished,
	       sh->done);
	CHECKF(died >= (uint32_t)kills / 2, "only %u of %ld growers died mid-way (test points missed?)", died,
	       kills);
	CHECKF(sh->failed == 0 && sh->bad == 0, "%" PRIu64 " failed, %" PRIu64 " wrong data", sh->failed,
	       sh->bad);
	check_settled(xs, "after the killed growers");
	xseg_leave(xs);
}

/*
 * Hostile growth words: a peer that writes the header's live and retire
 * words (or the reserve in the config) cannot make another touch memory past
 * the reserve it checked against the mapping: counts are clamped, a changed
 * max_requests makes join refuse the segment naming the mismatch, verify
 * names a count above the reserve, and grow, get/put and recover go on.
 */
static void test_hostile(void)
{
	struct xseg_config cfg = tx_create("posix:%s:4:16:4K:0:12:max_requests=64");
	struct xseg_request *v[80];
	struct xseg_grow_status gs;
	struct xseg_header *h;
	char err[256] = "";
	struct xseg *xs, *bad;
	int port, e = 0;
	uint32_t n;

	xs = tx_join(&cfg, "futex");
	h = xseg_header(xs);
	port = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(port >= 0);

	/* Live counts far past the reserve: clamped to it; verify says so. */
	__atomic_store_n(&h->live_requests, ~0ull, __ATOMIC_RELEASE);
	__atomic_store_n(&h->live_chunks[0], 1ull << 40, __ATOMIC_RELEASE);
	CHECK(xseg_grow_status(xs, &gs) == 0 && gs.live_requests == 64 && gs.live_chunks == 64);
	CHECK(xseg_verify(xs, NULL, NULL) > 0);
	n = take_all(xs, (uint32_t)port, v, 80);
	CHECKF(n == 16, "took %u (the free queue holds 16)", n);
	for (uint32_t i = 0; i < n; i++) {
		CHECK(xseg_prep_request(xs, v[i], "h", 1, 4096) == 0);
		CHECK(xseg_put_request(xs, v[i]) == 0);
	}
	CHECK(xseg_recover(xs, NULL) == 0);
	/* grow puts the counts right again: shrink to 16 finds the range parked. */
	__atomic_store_n(&h->live_requests, 16, __ATOMIC_RELEASE);
	__atomic_store_n(&h->live_chunks[0], 16, __ATOMIC_RELEASE);
	CHECK(xseg_verify(xs, tx_print_line, NULL) == 0);

	/* A retire word that parks everything: requests go out of circulation, nothing breaks. */
	__atomic_store_n(&h->retire_requests, 1, __ATOMIC_RELEASE);
	n = take_all(xs, (uint32_t)port, v, 80);
	CHECKF(n <= 1, "took %u with everything above 1 retiring", n);
	for (uint32_t i = 0; i < n; i++)
		CHECK(xseg_put_request(xs, v[i]) == 0);
	/* The owner repairs it: a shrink to 1 completes, growth brings them back. */
	CHECK(xseg_grow(xs, 1, &gs) == 0);
	CHECK(xseg_grow(xs, 32, &gs) == 0 && gs.live_requests == 32);
	check_settled(xs, "after the hostile retire word");

	/* A reserve changed in the header: join refuses it, naming the mismatch. */
	h->cfg.max_requests = 1u << 20;
	bad = xseg_join(cfg.type, cfg.name, "futex", NULL, NULL, &e, err, sizeof(err));
	CHECKF(!bad && e == -EBADMSG && strstr(err, "size"), "join: %d %s", e, err);
	h->cfg.max_requests = 64;
	CHECK(xseg_leave_port(xs, (uint32_t)port) == 0);
	xseg_leave(xs);
}

int main(void)
{
	xt_watchdog(600);
	RUN(test_spec_errors);
	RUN(test_basic);
	RUN(test_hostile);
	RUN(test_under_load);
	RUN(test_killed_grower);
	return 0;
}
