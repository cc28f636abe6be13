/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: mapperd when the segment has no free request: a client sends
 * a MAPW (which needs a CREATE and a map write at filed) and then takes every
 * free request of the segment for 12 s, longer than xclient's default wait
 * (10 s, after which mapperd failed the MAPW EAGAIN); mapperd waits, and once
 * the requests are given back the MAPW completes, served, and the volume's
 * map names the object. mapperd's log says it waited.
 */
#include "peers.h"
#include "../../peers/user/volume.h"

static struct xseg_config cfg;
static char spec[512];
static struct xseg *xs;
static uint32_t me;
static const char *mlog;

#define HOLD_MAX 256

static pid_t start(const char *name, uint32_t port)
{
	char ps[16];
	const char *fa[] = { "-q", "-g", spec, "-p", ps, "--dir", tp_path("store"), NULL };
	const char *ma[] = { "-v", "-g", spec, "-p", ps, "--storage", "1", "--io-threads", "2", NULL };
	int saved = -1, fd;
	pid_t pid;

	snprintf(ps, sizeof(ps), "%u", port);
	if (!strcmp(name, "mapperd")) {
		saved = dup(2);
		fd = open(mlog, O_WRONLY | O_CREAT | O_APPEND, 0644);
		CHECK(saved >= 0 && fd >= 0 && dup2(fd, 2) == 2);
		close(fd);
	}
	pid = tp_start(name, !strcmp(name, "filed") ? fa : ma);
	if (saved >= 0) {
		CHECK(dup2(saved, 2) == 2);
		close(saved);
	}
	tp_wait_bound(xs, port, pid);
	return pid;
}

static int log_has(const char *path, const char *s)
{
	uint64_t n = 0;
	uint8_t *b = tp_slurp(path, &n);
	int hit;

	if (!b)
		return 0;
	hit = memmem(b, n, s, strlen(s)) != NULL;
	free(b);
	return hit;
}

static void test_starve(void)
{
	const char *text = "size=4M\nobject_size=64K\n";
	struct tp_req c = { .op = X_CREATE, .target = "sv", .size = strlen(text), .in = text,
			    .in_len = strlen(text) };
	uint8_t map[4096];
	struct tp_req r = { .op = X_MAPR, .target = "sv", .offset = 3 << 16, .size = 1, .buf_len = sizeof(map),
			    .out = map, .out_len = sizeof(map) };
	struct xseg_request *held[HOLD_MAX], *req, *got = NULL;
	const struct xv_map_reply *rep = (const void *)map;
	int nheld = 0;
	uint64_t t0;

	CHECK(tp_do(xs, me, 2, &c) == 0);
	/* The MAPW, ready to go; then every other free request is ours. */
	req = xseg_get_request(xs, me);
	CHECK(req);
	CHECK(xseg_prep_request(xs, req, "sv", 2, 4096) == 0);
	req->op = X_MAPW;
	req->offset = 3 << 16;
	req->size = 100;
	memset(xseg_req_data(xs, req), 0, 4096);
	while (nheld < HOLD_MAX && (held[nheld] = xseg_get_request(xs, me)))
		nheld++;
	CHECKF(nheld > 0 && nheld < HOLD_MAX, "took %d requests", nheld);
	CHECK(xseg_submit_signal(xs, req, 2) >= 0);
	/* 12 s without a free request: mapperd must still be waiting, not failing. */
	t0 = xt_now_ns();
	while (xt_now_ns() - t0 < 12000000000ull && !(got = xseg_receive(xs, me)))
		xseg_wait(xs, me, 100000);
	CHECKF(!got, "MAPW answered while the segment had no free request: %s",
	       got->state & XS_FAILED ? strerror(got->error) : "served");
	for (int i = 0; i < nheld; i++)
		CHECK(xseg_put_request(xs, held[i]) == 0);
	t0 = xt_now_ns();
	while (!(got = xseg_receive(xs, me))) {
		CHECKF(xt_now_ns() - t0 < 60000000000ull, "no reply to MAPW within 60 s of freeing the requests");
		xseg_wait(xs, me, 100000);
	}
	CHECK(got == req);
	CHECKF(!(got->state & XS_FAILED) && (got->state & XS_SERVED), "MAPW failed: %s",
	       got->state & XS_FAILED ? strerror(got->error) : "not served");
	CHECK(xseg_put_request(xs, got) == 0);
	/* The map names the object now. */
	CHECK(tp_do(xs, me, 2, &r) == 0);
	CHECK(rep->magic == XV_MAP_MAGIC && rep->count == 1 && (rep->entry[0].flags & XV_E_WRITABLE));
	CHECKF(log_has(mlog, "waited for a free request of the segment"), "mapperd did not say it waited (%s)",
	       mlog);
}

int main(void)
{
	pid_t pf, pm;
	int r;

	xt_watchdog(200);
	cfg = tx_create("posix:%s:64:40:64K:0:12:dynports=48");
	xseg_format_spec(&cfg, spec, sizeof(spec));
	xs = tx_join(&cfg, "futex");
	r = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(r >= 0);
	me = (uint32_t)r;
	mlog = strdup(tp_path("mapperd.log"));
	CHECK(mkdir(tp_path("store"), 0700) == 0);
	pf = start("filed", 1);
	pm = start("mapperd", 2);
	RUN(test_starve);
	CHECK(tp_stop(pm) == 0);
	CHECK(tp_stop(pf) == 0);
	xseg_leave(xs);
	return 0;
}
