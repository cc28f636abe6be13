/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: vlmcd on the real chain vlmcd -> mapperd -> filed, each a
 * child process in one segment. Data integrity against an in-memory
 * reference (random writes and reads, within and across objects of 256K);
 * thin reads: a fresh volume reads as zeroes with no READ sent to storage
 * (vlmcd's own counters, INFO .stats); INFO gives the size; snapshot, then
 * overwrite, then the snapshot still reads the old data, writes to it fail
 * EROFS, and a clone of it reads the same and diverges on its own;
 * exclusivity (a second owner gets EBUSY with a message naming the holder,
 * a CLOSE by a non-owner EPERM, after the owner's CLOSE the second opens);
 * DISCARD and WRITE_ZEROES of whole and partial objects read back zeroes;
 * FLUSH and FUA writes; bad input (past the end: ENOSPC, bad names: EINVAL,
 * unknown volume: ENOENT); an OPEN after a SNAPSHOT or UPDATE gives the new
 * data id and size; xseg-bench --verify at depth 32 through vlmcd.
 */
#include "chain.h"
#include "xseg/xseg_extents.h"
#include "peers/user/volume.h"
#include "peers/user/xvformat.h"

#define KB 1024ull
#define MB (1024ull * 1024)
#define OBJ (256 * KB)

static pid_t filed_pid, mapperd_pid, vlmcd_pid;


static pid_t start(const char *name, uint32_t port)
{
	return chain_start(name, port, NULL);
}

/* A request from @from to @dst; reply data (or the error text) into @out. */
static int rq(uint32_t from, uint32_t dst, uint32_t op, const char *target, uint64_t off, uint64_t size,
	      const void *in, uint64_t in_len, void *out, uint64_t out_len, uint32_t flags, uint64_t *serviced)
{
	struct tp_req r = { .op = op, .flags = flags, .target = target, .offset = off, .size = size, .in = in,
			    .in_len = in_len, .buf_len = out_len > in_len ? out_len : in_len, .out = out,
			    .out_len = out_len };

	tp_do(xs, from, dst, &r);
	if (serviced)
		*serviced = r.serviced;
	return r.error;
}

static int mgmt(uint32_t op, const char *target, const char *text, char *msg)
{
	char buf[4096] = "";
	uint64_t sv = 0;
	int e = rq(me, P_VLMCD, op, target, 0, text ? strlen(text) : 0, text, text ? strlen(text) : 0, buf,
		   sizeof(buf) - 1, 0, &sv);

	if (msg) {
		buf[sv < sizeof(buf) ? sv : sizeof(buf) - 1] = 0;
		strcpy(msg, buf);
	}
	return e;
}

static int vwrite(uint32_t from, const char *vol, uint64_t off, const void *b, uint64_t n, uint32_t flags)
{
	return rq(from, P_VLMCD, X_WRITE, vol, off, n, b, n, NULL, 0, flags, NULL);
}

static int vread(uint32_t from, const char *vol, uint64_t off, void *b, uint64_t n)
{
	uint64_t sv = 0;
	int e = rq(from, P_VLMCD, X_READ, vol, off, n, NULL, 0, b, n, 0, &sv);

	if (!e)
		CHECKF(sv == n, "read %" PRIu64 " at %" PRIu64 ": serviced %" PRIu64, n, off, sv);
	return e;
}

/* vlmcd's counter @key (INFO .stats) at @port. */
static uint64_t stat_at(uint32_t port, const char *key)
{
	char buf[4096] = "", pat[64];
	uint64_t sv = 0;
	const char *p;

	CHECK(rq(me, port, X_INFO, ".stats", 0, sizeof(buf), NULL, 0, buf, sizeof(buf) - 1, 0, &sv) == 0);
	buf[sv < sizeof(buf) ? sv : sizeof(buf) - 1] = 0;
	snprintf(pat, sizeof(pat), "\n%s=", key);
	p = strstr(buf, pat);
	if (!p && !strncmp(buf, key, strlen(key)) && buf[strlen(key)] == '=')
		return strtoull(buf + strlen(key) + 1, NULL, 10);
	CHECKF(p, "no %s in:\n%s", key, buf);
	return strtoull(p + strlen(pat), NULL, 10);
}

static uint64_t stat_of(const char *key)
{
	return stat_at(P_VLMCD, key);
}

static void create(const char *name, const char *size)
{
	char text[128], msg[4096];
	int e;

	snprintf(text, sizeof(text), "size=%s\nobject_size=%llu\n", size, OBJ);
	e = mgmt(X_CREATE, name, text, msg);
	CHECKF(e == 0, "create %s: %s (%s)", name, strerror(e), msg);
}

static uint64_t rnd = 0x9E3779B97F4A7C15ull;

static void fill(uint8_t *b, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		b[i] = (uint8_t)(xt_rand(&rnd) >> 24);
}

static void test_integrity(void)
{
	const uint64_t size = 4 * MB;
	uint8_t *ref = calloc(1, size), *got = malloc(MB), *b = malloc(MB);
	char msg[4096];
	uint8_t sz[8];
	uint64_t v = 0, sv = 0;

	create("vi", "4M");
	CHECK(rq(me, P_VLMCD, X_INFO, "vi", 0, 8, NULL, 0, sz, 8, 0, &sv) == 0 && sv == 8);
	for (int i = 7; i >= 0; i--)
		v = v << 8 | sz[i];
	CHECK(v == size);
	for (int i = 0; i < 300; i++) {
		uint64_t n = 1 + xt_rand(&rnd) % (i % 3 ? 8 * KB : 600 * KB), off = xt_rand(&rnd) % (size - n);

		if (i % 4 == 0)
			n = (n + 511) & ~511ull;
		if (i % 2) {
			fill(b, n);
			CHECK(vwrite(me, "vi", off, b, n, i % 10 == 1 ? XF_FUA : i % 10 == 3 ? XF_FLUSH : 0) == 0);
			memcpy(ref + off, b, n);
		} else {
			CHECK(vread(me, "vi", off, got, n) == 0);
			CHECKF(!memcmp(got, ref + off, n), "read %" PRIu64 " at %" PRIu64 " differs", n, off);
		}
	}
	for (uint64_t off = 0; off < size; off += MB) {
		CHECK(vread(me, "vi", off, got, MB) == 0);
		CHECKF(!memcmp(got, ref + off, MB), "MB at %" PRIu64 " differs", off);
	}
	/* Past the end, names, unknown volumes. */
	CHECK(vwrite(me, "vi", size - 10, b, 20, 0) == ENOSPC);
	CHECK(vread(me, "vi", size, got, 1) == ENOSPC);
	CHECK(vread(me, "../x", 0, got, 1) == EINVAL);
	CHECK(vread(me, "a@b@c", 0, got, 1) == EINVAL);
	CHECK(mgmt(X_CREATE, "bad/name", "size=1M\n", msg) == EINVAL);
	CHECK(vread(me, "nosuchvol", 0, got, 1) == ENOENT);
	CHECK(rq(me, P_VLMCD, X_FLUSH, "vi", 0, 0, NULL, 0, NULL, 0, 0, NULL) == 0);
	free(ref);
	free(got);
	free(b);
}

static void test_thin_reads(void)
{
	uint8_t *got = malloc(MB);
	uint64_t reads0, holes0;

	create("vt", "8M");
	reads0 = stat_of("storage_reads");
	holes0 = stat_of("hole_reads");
	for (uint64_t off = 0; off < 8 * MB; off += MB) {
		memset(got, 0xAA, MB);
		CHECK(vread(me, "vt", off, got, MB) == 0);
		CHECK(tp_all_zero(got, MB));
	}
	CHECK(stat_of("storage_reads") == reads0);
	CHECK(stat_of("hole_reads") == holes0 + 32);
	/* One written object: reading it asks storage, the holes around it still do not. */
	memset(got, 7, 4096);
	CHECK(vwrite(me, "vt", 3 * OBJ + 100, got, 4096, 0) == 0);
	CHECK(vread(me, "vt", 2 * OBJ, got, 3 * OBJ) == 0);
	CHECK(stat_of("storage_reads") == reads0 + 1);
	CHECK(tp_all_zero(got, OBJ + 100) && got[OBJ + 100] == 7 && got[OBJ + 100 + 4095] == 7);
	CHECK(tp_all_zero(got + OBJ + 100 + 4096, 2 * OBJ - 100 - 4096));
	free(got);
}

static void test_snapshot_clone(void)
{
	const uint64_t size = 2 * MB;
	uint8_t *a = malloc(size), *b = malloc(size), *got = malloc(size), *c = malloc(size);
	char msg[4096];
	int e;

	create("vs", "2M");
	fill(a, size);
	CHECK(vwrite(me, "vs", 0, a, size / 2, 0) == 0);
	CHECK(vwrite(me, "vs", size / 2, a + size / 2, size / 2, 0) == 0);
	e = mgmt(X_SNAPSHOT, "vs", "name=s1\n", msg);
	CHECKF(e == 0, "snapshot: %s (%s)", strerror(e), msg);
	/* Overwrite parts of the volume: within an object, across two, a whole one. */
	memcpy(b, a, size);
	fill(b + 1000, 5000);
	fill(b + OBJ - 100, 300);
	fill(b + 4 * OBJ, OBJ);
	CHECK(vwrite(me, "vs", 1000, b + 1000, 5000, 0) == 0);
	CHECK(vwrite(me, "vs", OBJ - 100, b + OBJ - 100, 300, XF_FUA) == 0);
	CHECK(vwrite(me, "vs", 4 * OBJ, b + 4 * OBJ, OBJ, 0) == 0);
	CHECK(vread(me, "vs", 0, got, size / 2) == 0 && vread(me, "vs", size / 2, got + size / 2, size / 2) == 0);
	CHECK(!memcmp(got, b, size));
	CHECK(vread(me, "vs@s1", 0, got, size / 2) == 0 && vread(me, "vs@s1", size / 2, got + size / 2, size / 2) == 0);
	CHECK(!memcmp(got, a, size));
	CHECK(vwrite(me, "vs@s1", 0, a, 10, 0) == EROFS);
	CHECK(vread(me, "vs@nosnap", 0, got, 10) == ENOENT);
	/* A clone of the snapshot reads as the snapshot and then goes its own way. */
	e = mgmt(X_CLONE, "vs@s1", "name=vc\n", msg);
	CHECKF(e == 0, "clone: %s (%s)", strerror(e), msg);
	CHECK(vread(me, "vc", 0, got, size / 2) == 0 && vread(me, "vc", size / 2, got + size / 2, size / 2) == 0);
	CHECK(!memcmp(got, a, size));
	memcpy(c, a, size);
	fill(c + 3 * OBJ + 7, 20000);
	CHECK(vwrite(me, "vc", 3 * OBJ + 7, c + 3 * OBJ + 7, 20000, 0) == 0);
	CHECK(vread(me, "vc", 0, got, size / 2) == 0 && vread(me, "vc", size / 2, got + size / 2, size / 2) == 0);
	CHECK(!memcmp(got, c, size));
	CHECK(vread(me, "vs@s1", 0, got, size / 2) == 0 && vread(me, "vs@s1", size / 2, got + size / 2, size / 2) == 0);
	CHECK(!memcmp(got, a, size));
	CHECK(vread(me, "vs", 0, got, size / 2) == 0 && vread(me, "vs", size / 2, got + size / 2, size / 2) == 0);
	CHECK(!memcmp(got, b, size));
	free(a);
	free(b);
	free(c);
	free(got);
}

static void test_exclusive(void)
{
	char msg[4096] = "";
	uint8_t buf[64] = { 1 };
	uint64_t sv = 0;
	int e;

	create("vx", "1M");
	CHECK(rq(me, P_VLMCD, X_OPEN, "vx", 0, 8, "owner=A\n", 8, msg, sizeof(msg) - 1, 0, NULL) == 0);
	CHECK(vwrite(me, "vx", 0, buf, 64, 0) == 0);
	/* Another client: EBUSY, with a message naming the holder. */
	e = rq(me2, P_VLMCD, X_OPEN, "vx", 0, 8, "owner=B\n", 8, msg, sizeof(msg) - 1, 0, &sv);
	msg[sv < sizeof(msg) ? sv : 0] = 0;
	CHECKF(e == EBUSY && strstr(msg, "vx is open by ") && strstr(msg, ":vlmcd:A"), "%d '%s'", e, msg);
	CHECK(vwrite(me2, "vx", 0, buf, 64, 0) == EBUSY);
	CHECK(vread(me2, "vx", 0, buf, 64) == EBUSY);
	CHECK(rq(me2, P_VLMCD, X_CLOSE, "vx", 0, 8, "owner=B\n", 8, NULL, 0, 0, NULL) == EPERM);
	CHECK(rq(me, P_VLMCD, X_CLOSE, "vx", 0, 8, "owner=A\n", 8, NULL, 0, 0, NULL) == 0);
	CHECK(rq(me2, P_VLMCD, X_OPEN, "vx", 0, 8, "owner=B\n", 8, NULL, 0, 0, NULL) == 0);
	CHECK(vread(me2, "vx", 0, buf, 64) == 0 && buf[0] == 1);
	CHECK(rq(me2, P_VLMCD, X_CLOSE, "vx", 0, 8, "owner=B\n", 8, NULL, 0, 0, NULL) == 0);
}

/*
 * A snapshot being read cannot be deleted: a reader that OPENs it (as the
 * gateway does) or only reads it (as xsegbd does) is named by vlmcd's
 * refusal, and mapperd's names vlmcd's reader lock; once the reader CLOSEs
 * (or its port is gone) the DELETE goes through.
 */
static void test_snapshot_readers(void)
{
	char msg[4096], want[128];
	uint8_t buf[64];
	uint64_t sv = 0;
	uint32_t me3;
	int e, r;

	create("vr", "1M");
	CHECK(vwrite(me, "vr", 0, "hello", 5, 0) == 0);
	CHECK(mgmt(X_SNAPSHOT, "vr", "name=s\n", msg) == 0);
	CHECK(rq(me2, P_VLMCD, X_OPEN, "vr@s", 0, 10, "owner=GW1\n", 10, msg, sizeof(msg) - 1, 0, NULL) == 0);
	CHECK(vread(me2, "vr@s", 0, buf, 64) == 0 && !memcmp(buf, "hello", 5));
	e = mgmt(X_DELETE, "vr@s", NULL, msg);
	CHECKF(e == EBUSY && strstr(msg, "vr@s is open by GW1"), "DELETE through vlmcd: %s '%s'", strerror(e), msg);
	e = rq(me, P_MAPPER, X_DELETE, "vr@s", 0, 0, NULL, 0, msg, sizeof(msg) - 1, 0, &sv);
	msg[sv < sizeof(msg) ? sv : 0] = 0;
	CHECKF(e == EBUSY && strstr(msg, "vr@s is open (read-only) by ") && strstr(msg, ":vlmcd"),
	       "DELETE at mapperd: %s '%s'", strerror(e), msg);
	/* A reader that only reads (xsegbd opens nothing) counts too, until its port is gone. */
	r = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(r >= 0);
	me3 = (uint32_t)r;
	CHECK(vread(me3, "vr@s", 0, buf, 64) == 0 && !memcmp(buf, "hello", 5));
	CHECK(rq(me2, P_VLMCD, X_CLOSE, "vr@s", 0, 10, "owner=GW1\n", 10, NULL, 0, 0, NULL) == 0);
	e = mgmt(X_DELETE, "vr@s", NULL, msg);
	snprintf(want, sizeof(want), "vr@s is open by port %u", me3);
	CHECKF(e == EBUSY && strstr(msg, want), "DELETE with a reading port: %s '%s'", strerror(e), msg);
	xseg_leave_port(xs, me3);
	e = mgmt(X_DELETE, "vr@s", NULL, msg);
	CHECKF(e == 0, "DELETE once nobody reads: %s '%s'", strerror(e), msg);
	CHECK(vread(me2, "vr@s", 0, buf, 64) == ENOENT);
	/* The last reader's CLOSE drops vlmcd's reader lock: mapperd itself deletes it then. */
	CHECK(mgmt(X_SNAPSHOT, "vr", "name=t\n", msg) == 0);
	CHECK(rq(me2, P_VLMCD, X_OPEN, "vr@t", 0, 10, "owner=GW2\n", 10, msg, sizeof(msg) - 1, 0, NULL) == 0);
	CHECK(vread(me2, "vr@t", 0, buf, 64) == 0 && !memcmp(buf, "hello", 5));
	CHECK(rq(me2, P_VLMCD, X_CLOSE, "vr@t", 0, 10, "owner=GW2\n", 10, NULL, 0, 0, NULL) == 0);
	e = rq(me, P_MAPPER, X_DELETE, "vr@t", 0, 0, NULL, 0, msg, sizeof(msg) - 1, 0, &sv);
	msg[sv < sizeof(msg) ? sv : 0] = 0;
	CHECKF(e == 0, "DELETE at mapperd after the last CLOSE: %s '%s'", strerror(e), msg);
	CHECK(mgmt(X_DELETE, "vr", NULL, msg) == 0);
}

static void test_discard(void)
{
	uint8_t *b = malloc(8 * OBJ), *got = malloc(8 * OBJ);

	create("vd", "2M");
	memset(b, 0x5C, 8 * OBJ);
	CHECK(vwrite(me, "vd", 0, b, 4 * OBJ, 0) == 0);
	CHECK(vwrite(me, "vd", 4 * OBJ, b, 4 * OBJ, 0) == 0);
	/* Whole objects 1 and 2 plus parts of 0 and 3; then zeroes over part of 4 and 5. */
	CHECK(rq(me, P_VLMCD, X_DISCARD, "vd", OBJ - 1000, 2 * OBJ + 3000, NULL, 0, NULL, 0, 0, NULL) == 0);
	CHECK(rq(me, P_VLMCD, X_WRITE_ZEROES, "vd", 4 * OBJ + 10, OBJ + 100, NULL, 0, NULL, 0, 0, NULL) == 0);
	memset(b + OBJ - 1000, 0, 2 * OBJ + 3000);
	memset(b + 4 * OBJ + 10, 0, OBJ + 100);
	CHECK(vread(me, "vd", 0, got, 4 * OBJ) == 0);
	CHECK(vread(me, "vd", 4 * OBJ, got + 4 * OBJ, 4 * OBJ) == 0);
	CHECK(!memcmp(got, b, 8 * OBJ));
	/* Whole objects discarded are holes again: reading them asks no storage. */
	{
		uint64_t r0 = stat_of("storage_reads");

		CHECK(vread(me, "vd", OBJ, got, 2 * OBJ) == 0 && tp_all_zero(got, 2 * OBJ));
		CHECK(stat_of("storage_reads") == r0);
	}
	/* MAPR: the allocation from the map (xseg/xseg_extents.h): objects 1 and 2 are holes, the rest data. */
	{
		uint8_t ext[64 * XSEG_EXTENT_SIZE];
		const uint64_t want[][2] = { { OBJ, 0 }, { 2 * OBJ, XSEG_EXTENT_HOLE | XSEG_EXTENT_ZERO }, { 5 * OBJ, 0 } };
		uint64_t sv = 0, len;
		uint32_t fl;

		CHECK(rq(me, P_VLMCD, X_MAPR, "vd", 0, 8 * OBJ, NULL, 0, ext, sizeof(ext), 0, &sv) == 0);
		CHECKF(sv == 3 * XSEG_EXTENT_SIZE, "MAPR serviced %" PRIu64, sv);
		for (uint32_t i = 0; i < 3 && i < sv / XSEG_EXTENT_SIZE; i++) {
			xseg_extent_get(ext, i, &len, &fl);
			CHECKF(len == want[i][0] && fl == want[i][1], "extent %u: %" PRIu64 " bytes, flags %u", i, len, fl);
		}
		/* Inside a hole; room for one extent; past the end; no room at all. */
		CHECK(rq(me, P_VLMCD, X_MAPR, "vd", OBJ + 5, 100, NULL, 0, ext, sizeof(ext), 0, &sv) == 0);
		xseg_extent_get(ext, 0, &len, &fl);
		CHECK(sv == XSEG_EXTENT_SIZE && len == 100 && fl == (XSEG_EXTENT_HOLE | XSEG_EXTENT_ZERO));
		CHECK(rq(me, P_VLMCD, X_MAPR, "vd", 0, 8 * OBJ, NULL, 0, ext, XSEG_EXTENT_SIZE, 0, &sv) == 0);
		xseg_extent_get(ext, 0, &len, &fl);
		CHECK(sv == XSEG_EXTENT_SIZE && len == OBJ && fl == 0);
		CHECK(rq(me, P_VLMCD, X_MAPR, "vd", 7 * OBJ, 2 * OBJ, NULL, 0, ext, sizeof(ext), 0, NULL) == ENOSPC);
		CHECK(rq(me, P_VLMCD, X_MAPR, "vd", 0, OBJ, NULL, 0, ext, 8, 0, NULL) == EINVAL);
	}
	free(b);
	free(got);
}

/* Submit without waiting; the reply is collected by collect(). */
static struct xseg_request *submit(uint32_t op, const char *target, uint64_t off, uint64_t n, const void *in)
{
	return chain_submit(me, op, target, off, n, in);
}

/* Wait for @n replies to @me; they land in @got (in any order). */
static void collect(struct xseg_request **got, int n)
{
	uint64_t t0 = xt_now_ns();

	for (int k = 0; k < n;) {
		struct xseg_request *r = xseg_receive(xs, me);

		if (!r) {
			CHECKF(xt_now_ns() - t0 < 20000000000ull, "%d of %d replies", k, n);
			xseg_wait(xs, me, 100000);
			continue;
		}
		got[k++] = r;
	}
}

/*
 * Many writes to one object a snapshot shares, at once: one MAPW (one copy);
 * reads of the same blocks meanwhile see the old or the new block, never a mix.
 */
static void test_coalesce(void)
{
	uint8_t *a = malloc(OBJ), *nb = malloc(16 * 4096);
	struct xseg_request *got[32];
	uint64_t mapw0;
	char msg[4096];

	create("vq", "1M");
	memset(a, 0xA1, OBJ);
	CHECK(vwrite(me, "vq", 0, a, OBJ, 0) == 0);
	CHECK(mgmt(X_SNAPSHOT, "vq", "name=q1\n", msg) == 0);
	memset(nb, 0x3B, 16 * 4096);
	mapw0 = stat_of("mapw");
	for (int i = 0; i < 16; i++) {
		submit(X_WRITE, "vq", (uint64_t)i * 8192, 4096, nb);
		submit(X_READ, "vq", (uint64_t)i * 8192, 4096, NULL);
	}
	collect(got, 32);
	for (int i = 0; i < 32; i++) {
		struct xseg_request *r = got[i];
		const uint8_t *d = xseg_req_data(xs, r);

		CHECKF(!(r->state & XS_FAILED), "%s failed: %d", xseg_op_name(r->op), r->error);
		if (r->op == X_READ) {
			int old = d[0] == 0xA1;

			CHECK(d[0] == 0xA1 || d[0] == 0x3B);
			for (int k = 0; k < 4096; k++)
				CHECKF(d[k] == (old ? 0xA1 : 0x3B), "a read mixes old and new at byte %d", k);
		}
		CHECK(xseg_put_request(xs, r) == 0);
	}
	CHECK(stat_of("mapw") == mapw0 + 1);
	CHECK(vread(me, "vq@q1", 0, a, OBJ) == 0);
	for (uint64_t k = 0; k < OBJ; k++)
		CHECK(a[k] == 0xA1);
	free(a);
	free(nb);
}

/*
 * A SNAPSHOT among writes in flight: the writes sent before it are all in
 * the snapshot, those sent after it none; UPDATE grows the volume (INFO says
 * so at once, and the new space is writable); shrinking fails EINVAL;
 * DELETE of a volume vlmcd has open closes it first, then the volume is gone.
 */
static void test_management(void)
{
	uint8_t a[4096], b[4096], c[4096], got[4096], sz[8];
	struct xseg_request *rs[64];
	uint64_t v = 0, sv = 0;
	char msg[4096];
	int n = 0;

	create("vm", "1M");
	memset(a, 0xA0, sizeof(a));
	memset(b, 0xB0, sizeof(b));
	memset(c, 0xC0, sizeof(c));
	/* Object 0 written, 1-3 holes: the writes to them wait for MAPWs at mapperd. */
	for (int i = 0; i < 4; i++)
		CHECK(vwrite(me, "vm", (uint64_t)i * 65536, a, 4096, 0) == 0);
	for (int i = 0; i < 16; i++, n++)
		submit(X_WRITE, "vm", (uint64_t)i * 65536, 4096, b);
	submit(X_SNAPSHOT, "vm", 0, 8, "name=m1\n");
	n++;
	for (int i = 0; i < 16; i++, n++)
		submit(X_WRITE, "vm", (uint64_t)i * 65536, 4096, c);
	collect(rs, n);
	{
		/* Quiesced: every write sent before the SNAPSHOT was done (replied) before it. */
		int b_done = 0;

		for (int i = 0; i < n; i++) {
			if (rs[i]->op == X_WRITE && !memcmp(xseg_req_data(xs, rs[i]), b, 16))
				b_done++;
			if (rs[i]->op == X_SNAPSHOT)
				CHECKF(b_done == 16, "the snapshot was replied before %d writes sent ahead of it",
				       16 - b_done);
		}
	}
	for (int i = 0; i < n; i++) {
		CHECKF(!(rs[i]->state & XS_FAILED), "%s failed: %d", xseg_op_name(rs[i]->op), rs[i]->error);
		CHECK(xseg_put_request(xs, rs[i]) == 0);
	}
	for (int i = 0; i < 16; i++) {
		CHECK(vread(me, "vm@m1", (uint64_t)i * 65536, got, 4096) == 0);
		CHECKF(!memcmp(got, b, 4096), "snapshot block %d: %#x", i, got[0]);
		CHECK(vread(me, "vm", (uint64_t)i * 65536, got, 4096) == 0);
		CHECKF(!memcmp(got, c, 4096), "volume block %d: %#x", i, got[0]);
	}
	/* Grow: the size vlmcd answers follows at once. */
	CHECK(mgmt(X_UPDATE, "vm", "size=2M\n", msg) == 0);
	CHECK(rq(me, P_VLMCD, X_INFO, "vm", 0, 8, NULL, 0, sz, 8, 0, &sv) == 0 && sv == 8);
	for (int i = 7; i >= 0; i--)
		v = v << 8 | sz[i];
	CHECK(v == 2 * MB);
	CHECK(vwrite(me, "vm", 2 * MB - 4096, c, 4096, 0) == 0);
	CHECK(vread(me, "vm", 2 * MB - 4096, got, 4096) == 0 && !memcmp(got, c, 4096));
	CHECK(vread(me, "vm", MB, got, 4096) == 0 && tp_all_zero(got, 4096));
	CHECK(mgmt(X_UPDATE, "vm", "size=1M\n", msg) == EINVAL);
	/* Delete a volume open here (no snapshots). */
	create("vdel", "1M");
	CHECK(vwrite(me, "vdel", 0, c, 4096, 0) == 0);
	CHECK(mgmt(X_DELETE, "vdel", NULL, msg) == 0);
	{
		int e = vread(me, "vdel", 0, got, 4096);

		CHECKF(e == ENOENT, "read after delete: %d", e);
	}
}

/*
 * The map cache stays within --cache: a vlmcd with 1M of cache on a volume
 * of 8G in objects of 64K (128 chunks of 1024 entries, about 2.2M of map)
 * written and read at 160 places all over it evicts chunks, never holds
 * more than its bound, and reads back what was written.
 */
static void test_cache_bound(void)
{
	char ps[8] = "4", text[128], msg[4096];
	const char *va[] = { "-q", "-g", spec, "-p", ps, "--mapper", "2", "--storage", "1", "--cache", "1M", NULL };
	pid_t v2 = tp_start("vlmcd", va);
	const uint64_t size = 8192 * MB, step = size / 160;
	uint8_t b[4096], got[4096];
	uint64_t sv = 0;
	int e;

	tp_wait_bound(xs, 4, v2);
	snprintf(text, sizeof(text), "size=%llu\nobject_size=%llu\n", (unsigned long long)size, 64 * KB);
	e = rq(me, 4, X_CREATE, "vbig", 0, strlen(text), text, strlen(text), msg, sizeof(msg) - 1, 0, &sv);
	msg[sv < sizeof(msg) ? sv : 0] = 0;
	CHECKF(e == 0, "create: %s (%s)", strerror(e), msg);
	for (int pass = 0; pass < 2; pass++)
		for (uint64_t i = 0; i < 160; i++) {
			memset(b, (int)(i + 1), sizeof(b));
			if (pass == 0) {
				CHECK(rq(me, 4, X_WRITE, "vbig", i * step, 4096, b, 4096, NULL, 0, 0, NULL) == 0);
			} else {
				CHECK(rq(me, 4, X_READ, "vbig", i * step, 4096, NULL, 0, got, 4096, 0, NULL) == 0);
				CHECKF(!memcmp(got, b, 4096), "block %" PRIu64, i);
			}
			CHECK(stat_at(4, "cache_bytes") <= MB);
		}
	CHECK(stat_at(4, "evicted") > 0);
	CHECK(tp_stop(v2) == 0);
}

/*
 * mapperd is down: a write that needs a MAPW fails at once with
 * ECONNREFUSED and a message naming mapperd (no retry loop), reads of what
 * is cached still work; once mapperd is back the same write succeeds.
 */
static void test_mapper_down(void)
{
	uint8_t b[4096], got[4096];
	char msg[256] = "";
	uint64_t sv = 0;
	int e;

	create("vn", "1M");
	memset(b, 0x6E, sizeof(b));
	CHECK(vwrite(me, "vn", 0, b, 4096, 0) == 0);
	CHECK(vread(me, "vn", OBJ, got, 4096) == 0 && tp_all_zero(got, 4096));
	/* vn2 grown through vlmcd, its new size not yet asked for (no OPEN, no map fetched since). */
	create("vn2", "1M");
	CHECK(vwrite(me, "vn2", 0, b, 4096, 0) == 0);
	CHECKF(mgmt(X_UPDATE, "vn2", "size=2M\n", msg) == 0, "update: %s", msg);
	CHECK(kill(mapperd_pid, SIGKILL) == 0);
	CHECK(tp_wait(mapperd_pid) == 128 + SIGKILL);
	CHECK(xseg_recover(xs, NULL) == 0);	/* its port is free now: nobody serves it */
	e = rq(me, P_VLMCD, X_WRITE, "vn", 2 * OBJ, 4096, b, 4096, msg, sizeof(msg) - 1, 0, &sv);
	msg[sv < sizeof(msg) ? sv : 0] = 0;
	CHECKF(e == ECONNREFUSED && strstr(msg, "mapperd"), "%d '%s'", e, msg);
	CHECK(vread(me, "vn", 0, got, 4096) == 0 && !memcmp(got, b, 4096));
	CHECK(vwrite(me, "vn", 8, b, 100, 0) == 0);	/* writable already: no mapperd needed */
	/* Past the size vlmcd had before the UPDATE: it must ask mapperd, which is down: one failure, no retry loop. */
	msg[0] = 0;
	e = rq(me, P_VLMCD, X_WRITE, "vn2", MB + 4096, 4096, b, 4096, msg, sizeof(msg) - 1, 0, &sv);
	msg[sv < sizeof(msg) ? sv : 0] = 0;
	CHECKF(e == ECONNREFUSED && strstr(msg, "mapperd"), "a write to the grown part, mapperd down: %d '%s'", e, msg);
	mapperd_pid = start("mapperd", P_MAPPER);
	CHECK(vwrite(me, "vn2", MB + 4096, b, 4096, 0) == 0);
	CHECK(vread(me, "vn2", MB + 4096, got, 4096) == 0 && !memcmp(got, b, 4096));
	CHECK(vwrite(me, "vn", 2 * OBJ, b, 4096, 0) == 0);
	CHECK(vread(me, "vn", 2 * OBJ, got, 4096) == 0 && !memcmp(got, b, 4096));
}

/*
 * A client's OPEN after a SNAPSHOT or an UPDATE through vlmcd gives the
 * volume's data id and size as they are now: the data id its writes go to
 * (the object they make at filed is named by it), not the one of vlmcd's
 * first OPEN at mapperd, and the grown size.
 */
static void test_open_refresh(void)
{
	struct xv_open_reply r1, r2, r3;
	char msg[4096], obj[128], path[PATH_MAX];
	uint8_t b[4096], got[4096];
	struct stat sb;

	create("vo", "1M");
	CHECK(rq(me, P_VLMCD, X_OPEN, "vo", 0, 8, "owner=O\n", 8, &r1, sizeof(r1), 0, NULL) == 0);
	CHECK(r1.magic == XV_OPEN_MAGIC && r1.data_id && r1.size == MB);
	memset(b, 0x5a, sizeof(b));
	CHECK(vwrite(me, "vo", 0, b, sizeof(b), 0) == 0);
	CHECKF(mgmt(X_SNAPSHOT, "vo", "name=s1\n", msg) == 0, "snapshot: %s", msg);
	CHECK(rq(me, P_VLMCD, X_OPEN, "vo", 0, 8, "owner=O\n", 8, &r2, sizeof(r2), 0, NULL) == 0);
	CHECKF(r2.magic == XV_OPEN_MAGIC && r2.data_id && r2.data_id != r1.data_id,
	       "OPEN after SNAPSHOT: data id %" PRIu64 ", the same as before it", r2.data_id);
	/* The copy-on-write of object 0 is named by the data id the OPEN gave. */
	CHECK(vwrite(me, "vo", 4096, b, sizeof(b), 0) == 0);
	xv_data_name(obj, sizeof(obj), r2.data_id, 0);
	snprintf(path, sizeof(path), "%s/%s", tp_path("store"), obj);
	CHECKF(stat(path, &sb) == 0, "the write went to no object of data id %" PRIu64 " (%s)", r2.data_id, obj);
	CHECKF(mgmt(X_UPDATE, "vo", "size=2M\n", msg) == 0, "update: %s", msg);
	CHECK(rq(me, P_VLMCD, X_OPEN, "vo", 0, 8, "owner=O\n", 8, &r3, sizeof(r3), 0, NULL) == 0);
	CHECKF(r3.size == 2 * MB && r3.data_id == r2.data_id, "OPEN after UPDATE: size %" PRIu64 ", data id %" PRIu64,
	       r3.size, r3.data_id);
	CHECK(rq(me, P_VLMCD, X_CLOSE, "vo", 0, 8, "owner=O\n", 8, NULL, 0, 0, NULL) == 0);
	/* A write past the old end right after an UPDATE (no OPEN in between) is inside the volume. */
	CHECK(vwrite(me, "vo", 0, b, sizeof(b), 0) == 0);
	CHECKF(mgmt(X_UPDATE, "vo", "size=3M\n", msg) == 0, "update: %s", msg);
	CHECK(vwrite(me, "vo", 2 * MB + 4096, b, sizeof(b), 0) == 0);
	CHECK(vread(me, "vo", 2 * MB + 4096, got, sizeof(got)) == 0 && !memcmp(got, b, sizeof(b)));
	CHECK(rq(me, P_VLMCD, X_CLOSE, "vo", 0, 0, NULL, 0, NULL, 0, 0, NULL) == 0);
	/* An ro=1 opener learns the size after an UPDATE through vlmcd too: its OPEN, and its reads. */
	CHECK(rq(me2, P_VLMCD, X_OPEN, "vo2", 0, 0, NULL, 0, NULL, 0, 0, NULL) == ENOENT);
	create("vo2", "1M");
	CHECK(rq(me2, P_VLMCD, X_OPEN, "vo2", 0, 14, "owner=R\nro=1\n", 14, &r1, sizeof(r1), 0, NULL) == 0);
	CHECK(r1.size == MB && (r1.flags & XV_OPEN_RO));
	CHECKF(mgmt(X_UPDATE, "vo2", "size=2M\n", msg) == 0, "update of an ro=1-open volume: %s", msg);
	CHECK(rq(me2, P_VLMCD, X_OPEN, "vo2", 0, 14, "owner=R\nro=1\n", 14, &r2, sizeof(r2), 0, NULL) == 0);
	CHECKF(r2.size == 2 * MB && (r2.flags & XV_OPEN_RO), "ro=1 OPEN after UPDATE: size %" PRIu64, r2.size);
	CHECK(mgmt(X_UPDATE, "vo2", "size=3M\n", msg) == 0);
	CHECKF(vread(me2, "vo2", 2 * MB + 4096, got, sizeof(got)) == 0 && tp_all_zero(got, sizeof(got)),
	       "ro=1 read past the old end after UPDATE");
	CHECK(rq(me2, P_VLMCD, X_CLOSE, "vo2", 0, 8, "owner=R\n", 8, NULL, 0, 0, NULL) == 0);
}

/*
 * A SNAPSHOT or UPDATE sent straight to mapperd while vlmcd has the volume
 * open is refused, naming the holder: vlmcd writes to the objects the
 * volume owns without asking mapperd, so a snapshot taken behind its back
 * would change under its next write. The same ops through vlmcd go through
 * (it quiesces first), and at mapperd once the volume is closed, or from
 * the process that has it open there itself.
 */
static void test_mgmt_behind(void)
{
	uint8_t a[4096], b[4096], got[4096];
	char msg[4096], tag[128], text[160];
	uint64_t sv = 0;
	int e;

	create("vbh", "1M");
	CHECK(rq(me, P_VLMCD, X_OPEN, "vbh", 0, 8, "owner=O\n", 8, NULL, 0, 0, NULL) == 0);
	memset(a, 0xA1, sizeof(a));
	memset(b, 0xB2, sizeof(b));
	CHECK(vwrite(me, "vbh", 0, a, sizeof(a), 0) == 0);
	e = rq(me, P_MAPPER, X_SNAPSHOT, "vbh", 0, 7, "name=s\n", 7, msg, sizeof(msg) - 1, 0, &sv);
	msg[sv < sizeof(msg) ? sv : 0] = 0;
	CHECKF(e == EBUSY && strstr(msg, "vbh is open by") && strstr(msg, ":vlmcd:") && strstr(msg, "snapshot it"),
	       "SNAPSHOT at mapperd of a volume vlmcd has open: %d '%s'", e, msg);
	e = rq(me, P_MAPPER, X_UPDATE, "vbh", 0, 8, "size=2M\n", 8, msg, sizeof(msg) - 1, 0, &sv);
	msg[sv < sizeof(msg) ? sv : 0] = 0;
	CHECKF(e == EBUSY && strstr(msg, "resize it"), "UPDATE at mapperd of a volume vlmcd has open: %d '%s'", e, msg);
	/* Nothing changed: no snapshot, the old size, writes still in place. */
	CHECK(mgmt(X_INFO, "vbh@s", NULL, msg) == ENOENT);
	CHECK(vwrite(me, "vbh", 0, b, sizeof(b), 0) == 0);
	CHECK(vread(me, "vbh", 0, got, sizeof(got)) == 0 && !memcmp(got, b, sizeof(b)));
	/* Through vlmcd: quiesced, then taken; the snapshot keeps its bytes. */
	CHECKF(mgmt(X_SNAPSHOT, "vbh", "name=s\n", msg) == 0, "snapshot through vlmcd: %s", msg);
	CHECK(vwrite(me, "vbh", 0, a, sizeof(a), 0) == 0);
	CHECK(vread(me, "vbh@s", 0, got, sizeof(got)) == 0 && !memcmp(got, b, sizeof(b)));
	CHECK(rq(me, P_VLMCD, X_CLOSE, "vbh", 0, 8, "owner=O\n", 8, NULL, 0, 0, NULL) == 0);
	/* Closed: mapperd takes it from anyone. */
	e = rq(me, P_MAPPER, X_SNAPSHOT, "vbh", 0, 7, "name=t\n", 7, msg, sizeof(msg) - 1, 0, &sv);
	msg[sv < sizeof(msg) ? sv : 0] = 0;
	CHECKF(e == 0, "SNAPSHOT at mapperd of a closed volume: %d '%s'", e, msg);
	/* Open at mapperd by this process (a tag naming it): its own SNAPSHOT and UPDATE go through. */
	xvf_owner_tag(tag, sizeof(tag), "test");
	snprintf(text, sizeof(text), "owner=%s\n", tag);
	CHECK(rq(me, P_MAPPER, X_OPEN, "vbh", 0, strlen(text), text, strlen(text), msg, sizeof(msg), 0, NULL) == 0);
	e = rq(me, P_MAPPER, X_SNAPSHOT, "vbh", 0, 7, "name=u\n", 7, msg, sizeof(msg) - 1, 0, &sv);
	msg[sv < sizeof(msg) ? sv : 0] = 0;
	CHECKF(e == 0, "SNAPSHOT at mapperd by its holder: %d '%s'", e, msg);
	e = rq(me, P_MAPPER, X_UPDATE, "vbh", 0, 8, "size=2M\n", 8, msg, sizeof(msg) - 1, 0, &sv);
	msg[sv < sizeof(msg) ? sv : 0] = 0;
	CHECKF(e == 0, "UPDATE at mapperd by its holder: %d '%s'", e, msg);
	/* ... but not vlmcd's on this holder's behalf of another client. */
	e = mgmt(X_SNAPSHOT, "vbh", "name=w\n", msg);
	CHECKF(e == EBUSY && strstr(msg, tag), "SNAPSHOT through vlmcd of a volume another process has open: %d '%s'",
	       e, msg);
	CHECK(rq(me, P_MAPPER, X_CLOSE, "vbh", 0, strlen(text), text, strlen(text), NULL, 0, 0, NULL) == 0);
}

static void test_bench(void)
{
	const char *args[] = { "-g", spec, "--dst", "3", "--op", "mix", "--bs", "4K", "--depth", "32", "-n", "6000",
			       "--pattern", "rand", "--target", "vb", "--verify", NULL };

	create("vb", "2M");
	CHECK(tp_wait(tp_start("xseg-bench", args)) == 0);
}

int main(void)
{
	xt_watchdog(240);
	chain_setup("posix:%s:64:512:64K:0:12:dynports=48:buffers=1M*32");
	filed_pid = start("filed", P_FILED);
	mapperd_pid = start("mapperd", P_MAPPER);
	vlmcd_pid = start("vlmcd", P_VLMCD);
	RUN(test_integrity);
	RUN(test_thin_reads);
	RUN(test_snapshot_clone);
	RUN(test_exclusive);
	RUN(test_snapshot_readers);
	RUN(test_discard);
	RUN(test_coalesce);
	RUN(test_management);
	RUN(test_open_refresh);
	RUN(test_mgmt_behind);
	RUN(test_cache_bound);
	RUN(test_mapper_down);
	RUN(test_bench);
	CHECK(tp_stop(vlmcd_pid) == 0);
	CHECK(tp_stop(mapperd_pid) == 0);
	CHECK(tp_stop(filed_pid) == 0);
	xseg_leave(xs);
	return 0;
}
