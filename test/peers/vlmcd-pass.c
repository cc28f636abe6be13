/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: vlmcd passes a READ that lies in one object to the storage
 * peer with no return hop (xseg_pass; filed answers the client). On the
 * real chain vlmcd -> mapperd -> filed: such reads are counted (passed= in
 * INFO .stats) and return the right bytes with the target, offset and flags
 * the client sent, zeroes past a short object's end (XF_ZEROFILL) and all
 * zeroes for a read wholly past it; reads across objects and holes are not
 * passed. With filed stopped (SIGSTOP) and 16 passed reads queued to it,
 * vlmcd is SIGKILLed: once filed runs again the client still gets all 16,
 * served. filed SIGKILLed with 16 passed reads queued: the client gets 16
 * failures (ECONNRESET, nothing hangs), each as it sent it.
 */
#include <dirent.h>
#include "chain.h"

#define KB 1024ull
#define OBJ (256 * KB)
#define N 16

static pid_t filed_pid, mapperd_pid, vlmcd_pid;

/* Byte @i of the volume as test_reads writes it. */
static uint8_t vbyte(uint64_t i)
{
	return (uint8_t)(i * 31 + (i >> 12) + 1);
}

/* Submit a READ of @n bytes at @off of @vol, its buffer filled with 0xEE first. */
static struct xseg_request *submit_read(const char *vol, uint64_t off, uint64_t n, uint32_t flags, uint64_t cookie)
{
	return chain_submit_as(me, X_READ, vol, off, n, NULL, 0xEE, flags, cookie);
}

/* One READ, checked against @want (NULL: zeroes); the reply as the client sent it. */
static void check_read(const char *vol, uint64_t off, uint64_t n, uint32_t flags, const uint8_t *want)
{
	struct xseg_request *r;
	const uint8_t *d;

	submit_read(vol, off, n, flags, 0);
	r = chain_reply(me, vol, off, n, flags);
	CHECKF(!(r->state & XS_FAILED), "read at %" PRIu64 " failed: %d", off, r->error);
	CHECKF(r->serviced == n, "read at %" PRIu64 ": serviced %" PRIu64 " of %" PRIu64, off, r->serviced, n);
	d = xseg_req_data(xs, r);
	for (uint64_t i = 0; i < n; i++)
		CHECKF(d[i] == (want ? want[i] : 0), "read at %" PRIu64 ": byte %" PRIu64 " is %#x, not %#x", off, i,
		       d[i], want ? want[i] : 0);
	CHECK(xseg_put_request(xs, r) == 0);
}

static void create(const char *name)
{
	char text[128];

	snprintf(text, sizeof(text), "size=2M\nobject_size=%llu\n", OBJ);
	CHECK(chain_rq(X_CREATE, name, 0, 0, NULL, 0, NULL, 0, text) == 0);
}

/*
 * Cut data object @index of the (only) volume to @len bytes in filed's store
 * (the test's own temporary directory), as a store that keeps objects
 * sparse or short would hold it (mapperd makes them whole).
 */
static void cut_object(uint64_t index, off_t len)
{
	char suffix[32], path[PATH_MAX];
	struct dirent *e;
	DIR *d = opendir(tp_path("store"));
	int n = 0;

	CHECK(d);
	snprintf(suffix, sizeof(suffix), ".%016" PRIx64, index);
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);

		if (strncmp(e->d_name, "xv1.d.", 6) || l < strlen(suffix) ||
		    strcmp(e->d_name + l - strlen(suffix), suffix))
			continue;
		snprintf(path, sizeof(path), "%s/%s", tp_path("store"), e->d_name);
		CHECK(truncate(path, len) == 0);
		n++;
	}
	closedir(d);
	CHECKF(n == 1, "%d data objects of index %" PRIu64 " in the store", n, index);
}

static void test_reads(void)
{
	uint8_t *b = malloc(OBJ * 2);
	uint64_t passed0, fwd0;

	create("vp");
	for (uint64_t i = 0; i < 2 * OBJ; i++)
		b[i] = vbyte(i);
	/* Object 0 whole; object 1 only its first 100 bytes (a short object); 2.. holes. */
	CHECK(chain_rq(X_WRITE, "vp", 0, OBJ, b, OBJ, NULL, 0, NULL) == 0);
	CHECK(chain_rq(X_WRITE, "vp", OBJ, 100, b + OBJ, 100, NULL, 0, NULL) == 0);
	cut_object(1, 100);
	passed0 = chain_stat("passed");
	fwd0 = chain_stat("forwarded");
	check_read("vp", 4096, 4096, 0, b + 4096);
	check_read("vp", 8192 + 512, 512, XF_FUA, b + 8192 + 512);
	CHECK(chain_stat("passed") == passed0 + 2);
	/* The short object's tail: its 100 bytes, then zeroes (the buffer was 0xEE); then wholly past it. */
	memset(b + OBJ + 100, 0, OBJ - 100);
	check_read("vp", OBJ, 4096, 0, b + OBJ);
	check_read("vp", OBJ + 60, 4096, 0, b + OBJ + 60);
	check_read("vp", OBJ + 8192, 4096, 0, NULL);
	CHECK(chain_stat("passed") == passed0 + 5);
	/* Across two objects: copied, not passed; a hole: not asked at all. */
	check_read("vp", OBJ - 2048, 4096, 0, b + OBJ - 2048);
	check_read("vp", 5 * OBJ, 4096, 0, NULL);
	CHECK(chain_stat("passed") == passed0 + 5);
	CHECK(chain_stat("forwarded") == fwd0);	/* none of these took the return hop */
	free(b);
}

/* Stop filed, queue N passed reads of object 0 to it; filed stays stopped. */
static void queue_passed(void)
{
	uint64_t passed0 = chain_stat("passed");
	int st;

	/* Stopped for sure before the reads go out: kill() returns before the stop takes hold. */
	CHECK(kill(filed_pid, SIGSTOP) == 0);
	CHECK(waitpid(filed_pid, &st, WUNTRACED) == filed_pid && WIFSTOPPED(st));
	for (uint64_t i = 0; i < N; i++)
		submit_read("vp", i * 4096, 4096, 0, i);
	/* vlmcd answers INFO .stats while filed is stopped: it holds no read. */
	chain_wait_stat("passed", passed0 + N, "the reads queued at the stopped filed");
}

static void test_vlmcd_killed(void)
{
	int st;

	queue_passed();
	CHECK(kill(vlmcd_pid, SIGKILL) == 0);
	CHECK(waitpid(vlmcd_pid, &st, 0) == vlmcd_pid && WIFSIGNALED(st));
	tp_forget(vlmcd_pid);
	chain_recover();
	CHECK(kill(filed_pid, SIGCONT) == 0);
	for (int k = 0; k < N; k++) {
		struct xseg_request *r = chain_reply(me, "vp", UINT64_MAX, 4096, 0);
		const uint8_t *d = xseg_req_data(xs, r);

		CHECKF(!(r->state & XS_FAILED), "a passed read failed: %d", r->error);
		CHECK(r->serviced == 4096 && r->offset == r->cookie * 4096);
		for (uint64_t i = 0; i < 4096; i++)
			CHECK(d[i] == vbyte(r->offset + i));
		CHECK(xseg_put_request(xs, r) == 0);
	}
	vlmcd_pid = chain_start_ready("vlmcd", P_VLMCD);
}

static void test_filed_killed(void)
{
	uint8_t *b = malloc(4096);
	int st;

	for (uint64_t i = 0; i < 4096; i++)
		b[i] = vbyte(i);
	check_read("vp", 0, 4096, 0, b);	/* the new vlmcd has the volume open and mapped */
	queue_passed();
	CHECK(kill(filed_pid, SIGKILL) == 0);
	CHECK(waitpid(filed_pid, &st, 0) == filed_pid && WIFSIGNALED(st));
	tp_forget(filed_pid);
	chain_recover();
	for (int k = 0; k < N; k++) {
		struct xseg_request *r = chain_reply(me, "vp", UINT64_MAX, 4096, 0);

		CHECKF((r->state & XS_FAILED) && r->error == ECONNRESET, "state %#x error %d", r->state, r->error);
		CHECK(r->offset == r->cookie * 4096);
		CHECK(xseg_put_request(xs, r) == 0);
	}
	filed_pid = chain_start_ready("filed", P_FILED);
	check_read("vp", 0, 4096, 0, b);
	free(b);
}

int main(void)
{
	xt_watchdog(240);
	chain_setup("posix:%s:16:256:64K:0:12:dynports=8:buffers=1M*8");	/* me2: INFO .stats while reads are out on me */
	filed_pid = chain_start_ready("filed", P_FILED);
	mapperd_pid = chain_start_ready("mapperd", P_MAPPER);
	vlmcd_pid = chain_start_ready("vlmcd", P_VLMCD);
	RUN(test_reads);
	RUN(test_vlmcd_killed);
	RUN(test_filed_killed);
	CHECK(tp_stop(vlmcd_pid) == 0);
	CHECK(tp_stop(mapperd_pid) == 0);
	CHECK(tp_stop(filed_pid) == 0);
	xseg_leave(xs);
	return 0;
}
