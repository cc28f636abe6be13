/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: vlmcd when the segment runs out of requests: a segment of 40
 * requests, a client keeping 8 writes of 1M in flight on a volume of 64K
 * objects (16 object requests of vlmcd's own each, 128 at once for the 24
 * or so left), so vlmcd's requests wait in its pending list for free ones
 * and go out in order as replies free them; every write completes and
 * xseg-bench --verify reads every byte back.
 */
#include "peers.h"

static struct xseg_config cfg;
static char spec[512];
static struct xseg *xs;
static uint32_t me;

static pid_t start(const char *name, uint32_t port)
{
	char ps[16];
	const char *fa[] = { "-q", "-g", spec, "-p", ps, "--dir", tp_path("store"), NULL };
	const char *ma[] = { "-q", "-g", spec, "-p", ps, "--storage", "1", "--io-threads", "2", NULL };
	const char *va[] = { getenv("VLMCD_V") ? "-vv" : "-q", "-g", spec, "-p", ps, "--mapper", "2", "--storage", "1", NULL };
	pid_t pid;

	snprintf(ps, sizeof(ps), "%u", port);
	pid = tp_start(name, !strcmp(name, "filed") ? fa : !strcmp(name, "mapperd") ? ma : va);
	tp_wait_bound(xs, port, pid);
	return pid;
}

static void test_pending(void)
{
	const char *text = "size=8388608\nobject_size=65536\n";
	struct tp_req c = { .op = X_CREATE, .target = "vp", .size = strlen(text), .in = text,
			    .in_len = strlen(text) };
	const char *args[] = { "-g", spec, "--dst", "3", "--op", "mix", "--bs", "1M", "--depth", "8", "-n", "300",
			       "--pattern", "rand", "--target", "vp", "--verify", NULL };
	char buf[4096] = "", *p;
	int r;
	struct tp_req st = { .op = X_INFO, .target = ".stats", .size = sizeof(buf), .buf_len = sizeof(buf),
			     .out = buf, .out_len = sizeof(buf) - 1 };

	CHECK(tp_do(xs, me, 3, &c) == 0);
	r = tp_wait(tp_start("xseg-bench", args));
	if (r && getenv("VLMCD_V")) {
		char cmd[2048], bin[512];

		tx_bin("xseg-tool", bin, sizeof(bin));
		snprintf(cmd, sizeof(cmd), "%s status '%s' >&2", bin, spec);
		if (system(cmd)) { /* shown or not */ }
	}
	CHECK(tp_do(xs, me, 3, &st) == 0);
	CHECKF(r == 0, "xseg-bench exited %d; vlmcd:\n%s", r, buf);
	p = strstr(buf, "\ncopied=");
	CHECK(p && strtoull(p + 8, NULL, 10) > 300);
	p = strstr(buf, "\nwaited=");
	CHECKF(p && strtoull(p + 8, NULL, 10) > 0, "nothing waited for a free request:\n%s", buf);
}

int main(void)
{
	pid_t pids[4];
	int r;

	xt_watchdog(200);
	cfg = tx_create("posix:%s:64:40:64K:0:12:dynports=48:buffers=1M*10");
	xseg_format_spec(&cfg, spec, sizeof(spec));
	xs = tx_join(&cfg, "futex");
	r = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(r >= 0);
	me = (uint32_t)r;
	CHECK(mkdir(tp_path("store"), 0700) == 0);
	pids[1] = start("filed", 1);
	pids[2] = start("mapperd", 2);
	pids[3] = start("vlmcd", 3);
	RUN(test_pending);
	for (int i = 3; i >= 1; i--)
		CHECK(tp_stop(pids[i]) == 0);
	xseg_leave(xs);
	return 0;
}
