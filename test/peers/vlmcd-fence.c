/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: vlmcd's start fence (peers/user/vlmcd-fence.h). A write of
 * OLD bytes across two objects of a volume is split by vlmcd in two pieces;
 * filed holds the first piece until the test lets it go (its test hook
 * XSEG_FILED_FAULT=hold-write:xv1.d.:FILE), vlmcd is SIGKILLed while it
 * waits, the client's write fails (ECONNRESET), a new vlmcd starts on the
 * port, and the client writes NEW bytes to the same range and reads them
 * back once the held piece has been served. With the fence the new vlmcd
 * does not answer the NEW write while the late OLD piece is held, and
 * serves it after, so the range reads NEW (and INFO .stats counts at least
 * the held piece in fenced: the other piece's request, if it had not ended
 * when vlmcd died, counts too);
 * with --fence-timeout 0 (no fence) the NEW write is answered while the
 * piece is held and the late piece lands over the NEW bytes, the overtaking
 * the fence exists for (shown, so the test proves it can see it); with
 * --fence-timeout 1 the new vlmcd serves after the timeout while the piece
 * is still held (fence_timeouts=1): it does not wait for a wedged storage
 * peer. The piece is let go by the test, never by a clock, so a slow
 * machine (TSan) cannot make it land early.
 */
#include "chain.h"

#define KB 1024ull
#define OBJ (64 * KB)
#define OFF (OBJ - 8 * KB)	/* 8K in object 0, 8K in object 1 */
#define LEN (16 * KB)



static pid_t start(const char *name, uint32_t port, const char *fence)
{
	const char *va[] = { "--fence-timeout", fence, NULL };

	return chain_start(name, port, strcmp(name, "vlmcd") ? NULL : va);
}

static int from_vlmcd(const struct xseg_request *r)
{
	return r->src_port == P_VLMCD;
}

/*
 * WRITEs from vlmcd's port that filed holds (@queued 0), or holds or has
 * queued (@queued 1), any generation. Before the kill only an accepted piece
 * counts: a request's state and holder say "queued at filed" a moment before
 * it is in filed's queue, and a vlmcd killed in that moment still holds it,
 * so recovery frees it and no OLD piece ever reaches filed (the hook then
 * holds the rewrite's piece: CI under TSan saw the rewrite wait 30 s).
 */
static uint32_t held_at_filed(int queued)
{
	return chain_writes_at_filed(queued, from_vlmcd);
}

/* Wait for the reply to @w at port @port (hang guard 30 s). */
static void wait_reply(uint32_t port, struct xseg_request *w, const char *what)
{
	struct xseg_request *back;
	uint64_t t0;

	for (t0 = xt_now_ns(); !(back = xseg_receive(xs, port)); xseg_wait(xs, port, 100000))
		CHECKF(xt_now_ns() - t0 < 30000000000ull, "%s did not come back within 30 s", what);
	CHECK(back == w);
}

/* Submit a WRITE of the range filled with @fill from port @port, not waited for. */
static struct xseg_request *write_async(uint32_t port, const char *vol, uint8_t fill)
{
	static uint8_t buf[LEN];

	memset(buf, fill, LEN);
	return chain_submit(port, X_WRITE, vol, OFF, LEN, buf);
}

/*
 * One scenario on volume @vol: filed holds the first data write until the
 * test creates a release file; vlmcd (then its successor) runs with
 * --fence-timeout @fence. The piece is held for as long as the test needs,
 * whatever the machine's speed: with the fence on (@fence not 0 or 1) the
 * rewrite must not be answered while it is held, and the piece is let go
 * after a second of that; without it (0), or with a fence that times out
 * (1), the rewrite is answered while the piece is still held, and the piece
 * is let go after. Returns how many bytes of the range read back NEW.
 */
static uint64_t scenario(const char *vol, const char *fence, uint64_t *fenced, uint64_t *timeouts)
{
	static uint8_t got[LEN];
	char text[128], env[PATH_MAX + 32], release[PATH_MAX];
	struct xseg_request *w;
	pid_t filed, mapperd, vlmcd;
	bool fencing = strcmp(fence, "0") && strcmp(fence, "1");
	uint64_t t0, same = 0;
	int fd, rc;

	snprintf(release, sizeof(release), "%s", tp_path(vol));
	snprintf(env, sizeof(env), "hold-write:xv1.d.:%s", release);
	CHECK(setenv("XSEG_FILED_FAULT", env, 1) == 0);
	filed = start("filed", P_FILED, fence);
	CHECK(unsetenv("XSEG_FILED_FAULT") == 0);
	mapperd = start("mapperd", P_MAPPER, fence);
	vlmcd = start("vlmcd", P_VLMCD, fence);
	snprintf(text, sizeof(text), "size=%llu\nobject_size=%llu\n", 4 * OBJ, OBJ);
	CHECK(chain_rq(X_CREATE, vol, 0, strlen(text), text, strlen(text), NULL, 0, NULL) == 0);

	/* The OLD write, from the second port, not waited for: one piece is held at filed. */
	w = write_async(me2, vol, 0xAA);
	for (t0 = xt_now_ns(); !held_at_filed(0); usleep(1000))
		CHECKF(xt_now_ns() - t0 < 20000000000ull, "filed accepted no piece of the write within 20 s");

	/* vlmcd dies with the piece still held; the new one's bind fails the client's write back. */
	CHECK(kill(vlmcd, SIGKILL) == 0);
	CHECK(tp_wait(vlmcd) == 128 + SIGKILL);
	vlmcd = start("vlmcd", P_VLMCD, fence);
	wait_reply(me2, w, "the interrupted write");
	CHECKF((w->state & XS_FAILED) && w->error == ECONNRESET, "the interrupted write: state %#x error %d",
	       w->state, w->error);
	CHECK(xseg_put_request(xs, w) == 0);

	/* The rewrite through the new vlmcd (which is fencing by now: it fences right after its bind). */
	w = write_async(me, vol, 0xBB);
	if (fencing) {
		for (t0 = xt_now_ns(); xt_now_ns() - t0 < 1000000000ull; usleep(10000))
			CHECKF(!xseg_receive(xs, me), "the rewrite was answered while a late piece of the dead "
			       "vlmcd was held at filed");
	} else {
		wait_reply(me, w, "the rewrite");
		CHECKF(held_at_filed(0), "the late piece was not held when the rewrite was answered");
	}
	CHECK((fd = open(release, O_CREAT | O_WRONLY, 0600)) >= 0);
	close(fd);
	if (fencing)
		wait_reply(me, w, "the rewrite");
	CHECKF(!(w->state & XS_FAILED), "the rewrite failed: error %d", w->error);
	CHECK(xseg_put_request(xs, w) == 0);
	for (t0 = xt_now_ns(); held_at_filed(1); usleep(1000))
		CHECKF(xt_now_ns() - t0 < 30000000000ull, "the held piece was not served within 30 s");

	CHECKF((rc = chain_rq(X_READ, vol, OFF, LEN, NULL, 0, got, LEN, NULL)) == 0, "the read back: %d", rc);
	for (uint64_t i = 0; i < LEN; i++) {
		CHECKF(got[i] == 0xBB || got[i] == 0xAA, "byte %" PRIu64 " reads %#x, neither OLD nor NEW", i,
		       got[i]);
		same += got[i] == 0xBB;
	}
	*fenced = chain_stat("fenced");
	*timeouts = chain_stat("fence_timeouts");
	CHECK(tp_stop(vlmcd) == 0);
	CHECK(tp_stop(mapperd) == 0);
	CHECK(tp_stop(filed) == 0);
	return same;
}

/* The fence: the NEW bytes are what the range holds. */
static void test_fence(void)
{
	uint64_t fenced, timeouts, n = scenario("fv1", "30", &fenced, &timeouts);

	CHECKF(n == LEN, "with the fence %" PRIu64 " of %llu bytes read NEW: a late OLD piece landed over them",
	       n, LEN);
	/*
	 * fenced counts every request the dead vlmcd left at a live peer: the
	 * held piece, and the other piece's request too (its MAPW at mapperd or
	 * its WRITE at filed) when it had not ended yet as vlmcd died (seen
	 * under TSan), so 1 or 2.
	 */
	CHECKF(fenced >= 1 && fenced <= 2 && timeouts == 0, "fenced=%" PRIu64 " fence_timeouts=%" PRIu64,
	       fenced, timeouts);
}

/* Without it (--fence-timeout 0) the late piece lands over the NEW bytes: the test sees the hazard. */
static void test_no_fence_overtaken(void)
{
	uint64_t fenced, timeouts, n = scenario("fv2", "0", &fenced, &timeouts);

	CHECKF(n == LEN - 8 * KB, "without the fence %" PRIu64 " bytes read NEW (expected the held piece's "
	       "8K to read OLD)", n);
	CHECK(fenced == 0 && timeouts == 0);
}

/* A storage peer that holds the piece longer than --fence-timeout: vlmcd starts anyway. */
static void test_fence_timeout(void)
{
	uint64_t fenced, timeouts;

	scenario("fv3", "1", &fenced, &timeouts);
	CHECKF(fenced == 0 && timeouts == 1, "fenced=%" PRIu64 " fence_timeouts=%" PRIu64, fenced, timeouts);
}

int main(void)
{
	xt_watchdog(120);
	chain_setup("posix:%s:64:512:64K:0:12:dynports=48:buffers=256K*16");
	RUN(test_fence);
	RUN(test_no_fence_overtaken);
	RUN(test_fence_timeout);
	xseg_leave(xs);
	return 0;
}
