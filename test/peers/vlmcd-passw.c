/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: vlmcd passes a WRITE that lies in one object of the volume's
 * own to the storage peer with no return hop (xseg_pass; filed answers the
 * client), and a SNAPSHOT still waits for such a write in flight. On the
 * real chain vlmcd -> mapperd -> filed: with filed holding the first data
 * write until the test lets it go (its test hook hold-write; the write goes
 * to an object of the data id a first snapshot gave the open volume), a
 * SNAPSHOT sent through vlmcd after the write was passed is not answered
 * in the second it is held, and is answered after the write's reply once
 * the write goes on; the snapshot holds the write, and a later write to the same object (a copy-on-write)
 * keeps it in the volume. One-object writes are counted (passed_writes= in
 * INFO .stats, forwarded= unchanged) and come back with the target, offset
 * and flags the client sent; a write across two objects is not passed. With
 * filed stopped (SIGSTOP) and 16 passed writes queued to it, vlmcd is
 * SIGKILLed: once filed runs again the client gets all 16, served, and the
 * data is there.
 */
#include "chain.h"

#define KB 1024ull
#define OBJ (256 * KB)
#define N 16

static pid_t filed_pid, mapperd_pid, vlmcd_pid;
static char release[PATH_MAX];	/* filed holds the first data write until this exists */

static void create(const char *name)
{
	char text[128];

	snprintf(text, sizeof(text), "size=2M\nobject_size=%llu\n", OBJ);
	CHECK(chain_rq(X_CREATE, name, 0, 0, NULL, 0, NULL, 0, text) == 0);
}

/* Submit a WRITE of @n bytes of @fill at @off of @vol from @port. */
static struct xseg_request *submit_write(uint32_t port, const char *vol, uint64_t off, uint64_t n, int fill,
					 uint32_t flags, uint64_t cookie)
{
	return chain_submit_as(port, X_WRITE, vol, off, n, NULL, fill, flags, cookie);
}

/* Read @n bytes at @off of @target and check each is @want. */
static void check_bytes(const char *target, uint64_t off, uint64_t n, int want)
{
	uint8_t *b = malloc(n);

	CHECK(b);
	CHECKF(chain_rq(X_READ, target, off, n, NULL, 0, b, n, NULL) == 0, "read of %s at %" PRIu64, target, off);
	for (uint64_t i = 0; i < n; i++)
		CHECKF(b[i] == (uint8_t)want, "%s: byte %" PRIu64 " is %#x, not %#x", target, off + i, b[i], want);
	free(b);
}

static int readdressed(const struct xseg_request *r)
{
	return !!(r->flags & XF_READDRESSED);
}

/* Is a WRITE passed by vlmcd (readdressed) held by filed? */
static int passed_write_at_filed(void)
{
	return chain_writes_at_filed(0, readdressed) > 0;
}

/*
 * filed holds the first data write until the test lets it go: it is
 * passed, then a SNAPSHOT goes to vlmcd. The SNAPSHOT must be answered
 * after the write: not while it is held, and when its reply is here, the
 * write's is too.
 */
static void test_snapshot_waits(void)
{
	const char *snap = "name=s1\n";
	struct xseg_request *w, *s, *got = NULL;
	uint64_t t0, p0;

	create("vs");
	check_bytes("vs", 0, 4096, 0);	/* opened and mapped: the write below goes straight out */
	/*
	 * A first snapshot while the volume is open here: its data id changes
	 * at mapperd (vlmcd learns it only from the map), so the write below
	 * goes to an object of the new one.
	 */
	CHECK(chain_rq(X_SNAPSHOT, "vs", 0, 0, NULL, 0, NULL, 0, "name=s0\n") == 0);
	check_bytes("vs", 0, 4096, 0);
	p0 = chain_stat("passed_writes");
	w = submit_write(me, "vs", 0, 4096, 0xAA, 0, 1);
	for (t0 = xt_now_ns(); !passed_write_at_filed(); usleep(1000))
		CHECKF(xt_now_ns() - t0 < 20000000000ull, "the write did not reach filed within 20 s");
	CHECK(chain_stat("passed_writes") == p0 + 1);
	s = chain_submit(me2, X_SNAPSHOT, "vs", 0, strlen(snap), snap);
	/*
	 * The write stays at filed until the test lets it go: the SNAPSHOT must
	 * not be answered meanwhile (without the wait it is, within
	 * milliseconds: it needs nothing the held write holds).
	 */
	for (t0 = xt_now_ns(); xt_now_ns() - t0 < 1000000000ull; xseg_wait(xs, me2, 20000))
		CHECKF(!(got = xseg_receive(xs, me2)), "the SNAPSHOT was answered while the passed write was still at filed");
	CHECK(close(open(release, O_CREAT | O_WRONLY, 0600)) == 0);	/* filed writes it now */
	for (t0 = xt_now_ns(); !(got = xseg_receive(xs, me2)); xseg_wait(xs, me2, 100000))
		CHECKF(xt_now_ns() - t0 < 20000000000ull, "no SNAPSHOT reply within 20 s");
	CHECK(got == s);
	CHECKF(!(s->state & XS_FAILED), "SNAPSHOT failed: %d", s->error);
	/* The write's reply was delivered before the SNAPSHOT went to mapperd. */
	got = xseg_receive(xs, me);
	CHECKF(got == w, "the SNAPSHOT was answered while the passed write was still at filed");
	CHECKF(!(w->state & XS_FAILED) && w->serviced == 4096, "the write: state %#x error %d", w->state, w->error);
	CHECK(xseg_put_request(xs, w) == 0);
	CHECK(xseg_put_request(xs, s) == 0);
	/* The snapshot has it; a copy-on-write of the object keeps it in the volume. */
	CHECK(chain_rq(X_WRITE, "vs", 4096, 4096, (uint8_t[4096]){ 0 }, 4096, NULL, 0, NULL) == 0);
	check_bytes("vs@s1", 0, 4096, 0xAA);
	check_bytes("vs@s0", 0, 4096, 0);
	check_bytes("vs", 0, 4096, 0xAA);
	check_bytes("vs", 4096, 4096, 0);
}

static void test_writes(void)
{
	uint64_t p0, f0;
	struct xseg_request *r;

	create("vw");
	check_bytes("vw", 0, 4096, 0);
	p0 = chain_stat("passed_writes");
	f0 = chain_stat("forwarded");
	submit_write(me, "vw", 8192, 4096, 0x5A, XF_FUA, 0);
	r = chain_reply(me, "vw", 8192, 4096, XF_FUA);
	CHECKF(!(r->state & XS_FAILED) && r->serviced == 4096, "state %#x error %d serviced %" PRIu64, r->state,
	       r->error, r->serviced);
	CHECK(xseg_put_request(xs, r) == 0);
	CHECK(chain_stat("passed_writes") == p0 + 1);
	CHECK(chain_stat("forwarded") == f0);	/* no return hop */
	check_bytes("vw", 8192, 4096, 0x5A);
	/* Across two objects: pieces of vlmcd's own, not passed. */
	submit_write(me, "vw", OBJ - 2048, 4096, 0x6B, 0, 0);
	r = chain_reply(me, "vw", OBJ - 2048, 4096, 0);
	CHECK(!(r->state & XS_FAILED));
	CHECK(xseg_put_request(xs, r) == 0);
	CHECK(chain_stat("passed_writes") == p0 + 1);
	check_bytes("vw", OBJ - 2048, 4096, 0x6B);
}

static void test_vlmcd_killed(void)
{
	uint64_t p0 = chain_stat("passed_writes");
	int st;

	CHECK(kill(filed_pid, SIGSTOP) == 0);
	CHECK(waitpid(filed_pid, &st, WUNTRACED) == filed_pid && WIFSTOPPED(st));
	for (uint64_t i = 0; i < N; i++)
		submit_write(me, "vw", 65536 + i * 4096, 4096, 0x70 + (int)i, 0, i);
	chain_wait_stat("passed_writes", p0 + N, "the writes queued at the stopped filed");
	CHECK(kill(vlmcd_pid, SIGKILL) == 0);
	CHECK(waitpid(vlmcd_pid, &st, 0) == vlmcd_pid && WIFSIGNALED(st));
	tp_forget(vlmcd_pid);
	chain_recover();
	CHECK(kill(filed_pid, SIGCONT) == 0);
	for (int k = 0; k < N; k++) {
		struct xseg_request *r = chain_reply(me, "vw", UINT64_MAX, 4096, 0);

		CHECKF(!(r->state & XS_FAILED), "a passed write failed: %d", r->error);
		CHECK(r->serviced == 4096 && r->offset == 65536 + r->cookie * 4096);
		CHECK(xseg_put_request(xs, r) == 0);
	}
	vlmcd_pid = chain_start_ready("vlmcd", P_VLMCD);
	for (uint64_t i = 0; i < N; i++)
		check_bytes("vw", 65536 + i * 4096, 4096, 0x70 + (int)i);
}

int main(void)
{
	xt_watchdog(240);
	chain_setup("posix:%s:32:256:64K:0:12:dynports=8:buffers=1M*8");	/* me2: INFO .stats while writes are out on me */
	{
		char env[PATH_MAX + 32];

		snprintf(release, sizeof(release), "%s", tp_path("release-write"));
		snprintf(env, sizeof(env), "hold-write:xv1.d.:%s", release);
		CHECK(setenv("XSEG_FILED_FAULT", env, 1) == 0);
	}
	filed_pid = chain_start_ready("filed", P_FILED);
	CHECK(unsetenv("XSEG_FILED_FAULT") == 0);
	mapperd_pid = chain_start_ready("mapperd", P_MAPPER);
	vlmcd_pid = chain_start_ready("vlmcd", P_VLMCD);
	RUN(test_snapshot_waits);
	RUN(test_writes);
	RUN(test_vlmcd_killed);
	CHECK(tp_stop(vlmcd_pid) == 0);
	CHECK(tp_stop(mapperd_pid) == 0);
	CHECK(tp_stop(filed_pid) == 0);
	xseg_leave(xs);
	return 0;
}
