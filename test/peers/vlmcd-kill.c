/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: SIGKILL vlmcd (36 times), mapperd (12) and filed (12) under
 * verified writes: a client keeps
 * 8 writes of 4K in flight on a volume of 4M in objects of 256K (each block
 * stamped with its number and a version; never two writes to one block at
 * once), a snapshot is taken every 8th round so writes also copy objects;
 * one of the three is killed at a random moment, every outstanding request
 * comes back (served, or failed: recovery fails what the dead peer held,
 * vlmcd's callbacks see the error), the peer is started again on its port;
 * a new vlmcd opens the volume again (mapperd breaks the dead vlmcd's
 * lock). Every 4th round and at the end every block is read back: it holds its last acknowledged version, or a version written
 * after it that was not acknowledged (a write in flight at the kill) —
 * never an older one, never a torn block. Snapshots taken read back as
 * they were.
 */
#include "peers.h"

#define KB 1024ull
#define MB (1024ull * 1024)
#define BLK 4096u
#define NBLK 1024u		/* 4M */
#define DEPTH 8
#define ROUNDS 60		/* 36 kill vlmcd, 12 mapperd, 12 filed */
#define MAYBE 8

static struct xseg_config cfg;
static char spec[512];
static struct xseg *xs;
static uint32_t me;
static pid_t pids[4];			/* by port: 1 filed, 2 mapperd, 3 vlmcd */
static const char *const names[4] = { "", "filed", "mapperd", "vlmcd" };
static uint64_t kills_of[4];

static uint32_t acked[NBLK];		/* last acknowledged version (0: never written) */
static uint32_t maybe[NBLK][MAYBE];	/* versions written since, not acknowledged */
static uint32_t nmaybe[NBLK];
static uint8_t inflight[NBLK];
static uint32_t version;
static uint64_t rnd = 12345;
static uint64_t writes_ok, writes_failed, kills;

static pid_t start(const char *name, uint32_t port)
{
	char ps[16];
	const char *fa[] = { "-q", "-g", spec, "-p", ps, "--dir", tp_path("store"), NULL };
	const char *ma[] = { "-q", "-g", spec, "-p", ps, "--storage", "1", NULL };
	const char *va[] = { getenv("VLMCD_V") ? "-v" : "-q", "-g", spec, "-p", ps, "--mapper", "2", "--storage", "1",
			     NULL };
	pid_t pid;

	snprintf(ps, sizeof(ps), "%u", port);
	pid = tp_start(name, !strcmp(name, "filed") ? fa : !strcmp(name, "mapperd") ? ma : va);
	tp_wait_bound(xs, port, pid);
	/*
	 * Bound is not serving: mapperd binds its port, then takes the store and
	 * settles it through filed (waiting up to a minute for a filed that is
	 * gone), and only then serves. A round that killed filed during that
	 * start left mapperd waiting for filed while this test waited for
	 * mapperd's replies before restarting filed. A PING answered means the
	 * dispatch loop runs.
	 */
	{
		struct tp_req ping = { .op = X_PING };

		CHECKF(tp_do(xs, me, port, &ping) == 0, "%s does not answer a PING", name);
	}
	return pid;
}

static void stamp(uint8_t *d, uint32_t blk, uint32_t ver)
{
	uint64_t w = (uint64_t)blk << 32 | ver;

	for (uint32_t i = 0; i < BLK; i += 8)
		memcpy(d + i, &w, 8);
}

/* The version a block holds (0 for zeroes), or -1 if it is torn or foreign. */
static int64_t version_of(const uint8_t *d, uint32_t blk)
{
	uint64_t w;

	memcpy(&w, d, 8);
	if (w == 0) {
		for (uint32_t i = 0; i < BLK; i++)
			if (d[i])
				return -1;
		return 0;
	}
	for (uint32_t i = 8; i < BLK; i += 8)
		if (memcmp(d + i, &w, 8))
			return -1;
	if ((uint32_t)(w >> 32) != blk)
		return -1;
	return (uint32_t)w;
}

static int req_sync(uint32_t op, const char *target, uint64_t off, uint64_t size, const char *text, void *out)
{
	struct tp_req r = { .op = op, .target = target, .offset = off, .size = size, .in = text,
			    .in_len = text ? strlen(text) : 0, .buf_len = out ? size : 0, .out = out,
			    .out_len = out ? size : 0 };

	return tp_do(xs, me, 3, &r);
}

static int submit_write(void)
{
	struct xseg_request *r;
	uint32_t blk;

	do
		blk = (uint32_t)(xt_rand(&rnd) % NBLK);
	while (inflight[blk]);
	r = xseg_get_request(xs, me);
	CHECK(r);
	CHECK(xseg_prep_request(xs, r, "kv", 2, BLK) == 0);
	r->op = X_WRITE;
	r->offset = (uint64_t)blk * BLK;
	r->size = BLK;
	r->cookie = ++version;
	stamp(xseg_req_data(xs, r), blk, (uint32_t)r->cookie);
	if (xseg_submit_signal(xs, r, 3) < 0) {
		xseg_put_request(xs, r);
		return 0;
	}
	inflight[blk] = 1;
	if (nmaybe[blk] < MAYBE)
		maybe[blk][nmaybe[blk]++] = (uint32_t)r->cookie;
	else
		maybe[blk][MAYBE - 1] = (uint32_t)r->cookie;	/* bounded: the newest stays */
	return 1;
}

static void on_reply(struct xseg_request *r)
{
	uint32_t blk = (uint32_t)(r->offset / BLK);

	inflight[blk] = 0;
	if (r->state & XS_FAILED) {
		writes_failed++;
	} else {
		CHECK(r->state & XS_SERVED);
		acked[blk] = (uint32_t)r->cookie;
		nmaybe[blk] = 0;	/* older unacknowledged ones may no longer show */
		writes_ok++;
	}
	CHECK(xseg_put_request(xs, r) == 0);
}

static void verify_all(void)
{
	static uint8_t buf[256 * KB];

	for (uint32_t base = 0; base < NBLK; base += sizeof(buf) / BLK) {
		int e = req_sync(X_READ, "kv", (uint64_t)base * BLK, sizeof(buf), NULL, buf);

		CHECKF(e == 0, "read at block %u: %s", base, strerror(e));
		for (uint32_t i = 0; i < sizeof(buf) / BLK; i++) {
			uint32_t blk = base + i;
			int64_t v = version_of(buf + (uint64_t)i * BLK, blk);
			int ok = v == acked[blk];

			for (uint32_t k = 0; !ok && k < nmaybe[blk]; k++)
				ok = v == maybe[blk][k];
			CHECKF(ok, "block %u holds version %" PRId64 ", last acknowledged %u (%u unacknowledged)",
			       blk, v, acked[blk], nmaybe[blk]);
			acked[blk] = (uint32_t)v;
			nmaybe[blk] = 0;
		}
	}
}

/* Snapshot checksums: the snapshot's content must never change. */
static uint64_t snap_sum(const char *target)
{
	static uint8_t buf[256 * KB];
	uint64_t h = 1469598103934665603ull;

	for (uint64_t off = 0; off < NBLK * BLK; off += sizeof(buf)) {
		CHECK(req_sync(X_READ, target, off, sizeof(buf), NULL, buf) == 0);
		for (size_t i = 0; i < sizeof(buf); i++)
			h = (h ^ buf[i]) * 1099511628211ull;
	}
	return h;
}

/* Replies did not come back: show what vlmcd and the segment hold, then fail. */
static void stuck(int out, const char *victim)
{
	char cmd[2048], bin[512], buf[4096] = "";
	struct tp_req st = { .op = X_INFO, .target = ".stats", .size = sizeof(buf), .buf_len = sizeof(buf),
			     .out = buf, .out_len = sizeof(buf) - 1 };

	tx_bin("xseg-tool", bin, sizeof(bin));
	snprintf(cmd, sizeof(cmd), "%s status '%s' >&2", bin, spec);
	if (system(cmd)) { /* shown or not */ }
	if (tp_do(xs, me, 3, &st) == 0)
		fprintf(stderr, "vlmcd:\n%s", buf);
	CHECKF(0, "%d replies missing after killing %s", out, victim);
}

static void test_kill_loop(void)
{
	char snaps[8][32];
	uint64_t sums[8];
	int nsnap = 0;

	for (int round = 0; round < ROUNDS; round++) {
		uint64_t until = xt_now_ns() + (5 + xt_rand(&rnd) % 40) * 1000000ull, t0;
		int out = 0;

		if (round % 8 == 3 && nsnap < 8) {
			char text[64];
			int e;

			verify_all();	/* a known state to compare the snapshot against later */
			snprintf(snaps[nsnap], sizeof(snaps[nsnap]), "kv@k%d", round);
			snprintf(text, sizeof(text), "name=k%d\n", round);
			e = req_sync(X_SNAPSHOT, "kv", 0, strlen(text), text, NULL);
			CHECKF(e == 0, "snapshot: %s", strerror(e));
			sums[nsnap] = snap_sum(snaps[nsnap]);
			nsnap++;
		}
		while (xt_now_ns() < until) {
			struct xseg_request *r;

			while (out < DEPTH && submit_write())
				out++;
			while ((r = xseg_receive(xs, me))) {
				on_reply(r);
				out--;
			}
			xseg_wait(xs, me, 1000);
		}
		{
			int victim = round % 5 < 3 ? 3 : round % 5 == 3 ? 2 : 1;

			CHECK(kill(pids[victim], SIGKILL) == 0);
			CHECK(tp_wait(pids[victim]) == 128 + SIGKILL);
			kills++;
			kills_of[victim]++;
			/* Everything outstanding comes back: served, or failed by recovery. */
			t0 = xt_now_ns();
			while (out) {
				struct xseg_request *r = xseg_receive(xs, me);

				if (r) {
					on_reply(r);
					out--;
					continue;
				}
				if (xt_now_ns() - t0 >= 20000000000ull)
					stuck(out, names[victim]);
				xseg_recover(xs, NULL);
				xseg_wait(xs, me, 20000);
			}
			pids[victim] = start(names[victim], (uint32_t)victim);
		}
		if (round % 4 == 3)
			verify_all();
	}
	verify_all();
	for (int i = 0; i < nsnap; i++)
		CHECKF(snap_sum(snaps[i]) == sums[i], "snapshot %s changed", snaps[i]);
	printf("  %" PRIu64 " kills (vlmcd %" PRIu64 ", mapperd %" PRIu64 ", filed %" PRIu64 "), %" PRIu64
	       " writes acknowledged, %" PRIu64 " failed, %d snapshots\n", kills, kills_of[3], kills_of[2], kills_of[1],
	       writes_ok, writes_failed, nsnap);
	CHECK(kills_of[3] >= 30 && writes_ok > 0);
}

int main(void)
{
	int r;

	xt_watchdog(300);
	cfg = tx_create("posix:%s:64:512:64K:0:12:dynports=48:buffers=256K*16");
	xseg_format_spec(&cfg, spec, sizeof(spec));
	xs = tx_join(&cfg, "futex");
	r = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(r >= 0);
	me = (uint32_t)r;
	CHECK(mkdir(tp_path("store"), 0700) == 0);
	for (int i = 1; i <= 3; i++)
		pids[i] = start(names[i], (uint32_t)i);
	{
		char text[64];

		snprintf(text, sizeof(text), "size=%llu\nobject_size=%llu\n", (unsigned long long)NBLK * BLK,
			 256 * KB);
		CHECK(req_sync(X_CREATE, "kv", 0, strlen(text), text, NULL) == 0);
	}
	RUN(test_kill_loop);
	for (int i = 3; i >= 1; i--)
		CHECK(tp_stop(pids[i]) == 0);
	xseg_leave(xs);
	return 0;
}
