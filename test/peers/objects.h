/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test/peers/objects.h - the conformance suite of the object storage peers
 * (filed, radosd): the semantics docs/peers.md gives for filed, asserted
 * only through requests, so one suite runs against every store. A test sets
 * os_xs, os_me (its client port), os_dst (the peer's port) and os_restart
 * (stop the peer, SIGKILL if @crash, and start it again on the same store),
 * then runs os_suite().
 *
 * Object names are prefixed with os_prefix (a store may outlive a run:
 * a Ceph pool), so runs do not see each other's objects.
 */
#ifndef TEST_PEERS_OBJECTS_H
#define TEST_PEERS_OBJECTS_H

#include <inttypes.h>
#include "peers.h"

static struct xseg *os_xs;
static uint32_t os_me, os_dst;
static void (*os_restart)(int crash);
static char os_prefix[32];

/* @name with the run's prefix (a rotating set of buffers). */
static inline const char *on(const char *name)
{
	static char bufs[16][XSEG_TARGET_MAX + 64];
	static int n;
	char *b = bufs[n++ % 16];

	snprintf(b, XSEG_TARGET_MAX + 64, "%s%s", os_prefix, name);
	return b;
}

/* A request on @name (used as is); @in as data (a string or NULL); reply data into @out. */
static inline int os_req_raw(uint32_t op, uint32_t flags, const char *name, uint64_t off, uint64_t size,
			     const char *in, void *out, uint64_t out_len, uint64_t *serviced)
{
	struct tp_req r = { .op = op, .flags = flags, .target = name, .offset = off, .size = size,
			    .in = in, .in_len = in ? strlen(in) : 0, .buf_len = out_len,
			    .out = out, .out_len = out_len };

	if (name && !*name)
		r.target = NULL;	/* an empty name */
	tp_do(os_xs, os_me, os_dst, &r);
	if (serviced)
		*serviced = r.serviced;
	return r.error;
}

/* The same on the run's object @name. */
static inline int os_req(uint32_t op, const char *name, uint64_t off, uint64_t size, const char *in,
			 void *out, uint64_t out_len, uint64_t *serviced)
{
	return os_req_raw(op, 0, on(name), off, size, in, out, out_len, serviced);
}

static inline int os_put(const char *name, uint64_t off, const char *s)
{
	uint64_t sv = 0;
	int e = os_req(X_WRITE, name, off, strlen(s), s, NULL, 0, &sv);

	if (!e)
		CHECK(sv == strlen(s));
	return e;
}

static inline int64_t os_size(const char *name)
{
	uint8_t b[8];
	uint64_t v = 0;
	int e = os_req(X_INFO, name, 0, 8, NULL, b, 8, NULL);

	if (e)
		return -e;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return (int64_t)v;
}

/* The whole object (malloc'd, *len bytes; NUL-terminated), or NULL with *err. */
static inline char *os_get(const char *name, uint64_t *len, int *err)
{
	int64_t sz = os_size(name);
	char *b;
	uint64_t sv = 0;

	*len = 0;
	if (sz < 0) {
		if (err)
			*err = (int)-sz;
		return NULL;
	}
	b = calloc(1, (size_t)sz + 1);
	CHECK(b);
	if (sz) {
		int e = os_req(X_READ, name, 0, (uint64_t)sz, NULL, b, (uint64_t)sz, &sv);

		CHECKF(e == 0 && sv == (uint64_t)sz, "read %s: %d, %" PRIu64 " of %" PRId64, name, e, sv, sz);
	}
	*len = (uint64_t)sz;
	return b;
}

static inline int os_is(const char *name, const void *want, uint64_t len)
{
	uint64_t l;
	char *c = os_get(name, &l, NULL);
	int ok = c && l == len && !memcmp(c, want, len);

	free(c);
	return ok;
}

static void os_test_objects(void)
{
	char buf[4096];
	uint64_t sv;

	/* CREATE: exclusive, sized (reads as zeroes). */
	CHECK(os_req(X_CREATE, "a", 0, 100, NULL, NULL, 0, NULL) == 0);
	CHECK(os_req(X_CREATE, "a", 0, 0, NULL, NULL, 0, NULL) == EEXIST);
	CHECK(os_size("a") == 100);
	memset(buf, 1, sizeof(buf));
	CHECK(os_req(X_READ, "a", 0, 100, NULL, buf, 100, &sv) == 0 && sv == 100 && tp_all_zero((uint8_t *)buf, 100));
	/* WRITE in place, then past the end (extends, the gap reads as zeroes). */
	CHECK(os_put("a", 0, "hello world") == 0);
	CHECK(os_size("a") == 100);
	CHECK(os_put("a", 200, "tail") == 0);
	CHECK(os_size("a") == 204);
	CHECK(os_req(X_READ, "a", 0, 204, NULL, buf, 204, &sv) == 0 && sv == 204);
	CHECK(!memcmp(buf, "hello world", 11) && tp_all_zero((uint8_t *)buf + 11, 189) && !memcmp(buf + 200, "tail", 4));
	/* READ: short at the end, nothing past it, ENOENT for a missing object. */
	CHECK(os_req(X_READ, "a", 198, 100, NULL, buf, 100, &sv) == 0 && sv == 6);
	CHECK(!memcmp(buf, "\0\0tail", 6));
	CHECK(os_req(X_READ, "a", 204, 10, NULL, buf, 10, &sv) == 0 && sv == 0);
	CHECK(os_req(X_READ, "a", 5000, 10, NULL, buf, 10, &sv) == 0 && sv == 0);
	CHECK(os_req(X_READ, "a", 0, 0, NULL, NULL, 0, &sv) == 0 && sv == 0);
	CHECK(os_req(X_READ, "missing", 0, 10, NULL, buf, 10, NULL) == ENOENT);
	CHECK(os_req(X_READ, "missing", 0, 0, NULL, NULL, 0, NULL) == ENOENT);
	CHECK(os_req(X_INFO, "missing", 0, 8, NULL, buf, 8, NULL) == ENOENT);
	CHECK(os_req(X_READ, "a", 0, 100, NULL, buf, 50, NULL) == EINVAL);	/* buffer too small */
	CHECK(os_req(X_INFO, "a", 0, 4, NULL, buf, 4, NULL) == EINVAL);
	/* WRITE creates a missing object; FUA and pre-flush writes; an empty write creates it too. */
	CHECK(os_req_raw(X_WRITE, XF_FUA, on("b"), 3, 3, "xyz", NULL, 0, &sv) == 0 && sv == 3);
	CHECK(os_req_raw(X_WRITE, XF_FLUSH, on("b"), 0, 3, "abc", NULL, 0, &sv) == 0 && sv == 3);
	CHECK(os_is("b", "abcxyz", 6));
	CHECK(os_req(X_WRITE, "empty-write", 0, 0, NULL, NULL, 0, &sv) == 0 && sv == 0);
	CHECK(os_size("empty-write") == 0);
	CHECK(os_req(X_WRITE, "a", 0, 100, "x", NULL, 0, NULL) == EINVAL);	/* size past the data */
	/* TRUNCATE: shrink, grow (zeroes), ENOENT when missing. */
	CHECK(os_req(X_TRUNCATE, "a", 5, 0, NULL, NULL, 0, NULL) == 0);
	CHECK(os_is("a", "hello", 5));
	CHECK(os_req(X_TRUNCATE, "a", 8, 0, NULL, NULL, 0, NULL) == 0);
	CHECK(os_is("a", "hello\0\0\0", 8));
	CHECK(os_req(X_TRUNCATE, "missing", 8, 0, NULL, NULL, 0, NULL) == ENOENT);
	CHECK(os_size("missing") == -ENOENT);
	/* FLUSH/SYNC: of an object, ENOENT when missing, of the whole store. */
	CHECK(os_req(X_FLUSH, "a", 0, 0, NULL, NULL, 0, NULL) == 0);
	CHECK(os_req(X_SYNC, "a", 0, 0, NULL, NULL, 0, NULL) == 0);
	CHECK(os_req(X_FLUSH, "missing", 0, 0, NULL, NULL, 0, NULL) == ENOENT);
	CHECK(os_req_raw(X_FLUSH, 0, "", 0, 0, NULL, NULL, 0, NULL) == 0);
	CHECK(os_req_raw(X_SYNC, 0, "", 0, 0, NULL, NULL, 0, NULL) == 0);
	/* DISCARD and WRITE_ZEROES: zeroes, clipped to the object, its size unchanged. */
	CHECK(os_put("z", 0, "0123456789abcdef") == 0);
	CHECK(os_req(X_DISCARD, "z", 2, 3, NULL, NULL, 0, &sv) == 0 && sv == 3);
	CHECK(os_req(X_WRITE_ZEROES, "z", 10, 100, NULL, NULL, 0, &sv) == 0 && sv == 6);
	CHECK(os_size("z") == 16);
	CHECK(os_is("z", "01\0\0\0" "56789\0\0\0\0\0\0", 16));
	CHECK(os_req(X_DISCARD, "z", 16, 10, NULL, NULL, 0, &sv) == 0 && sv == 0);
	CHECK(os_req(X_WRITE_ZEROES, "z", 100, 10, NULL, NULL, 0, &sv) == 0 && sv == 0);
	CHECK(os_size("z") == 16);
	CHECK(os_req(X_DISCARD, "missing", 0, 10, NULL, NULL, 0, NULL) == ENOENT);
	CHECK(os_req(X_WRITE_ZEROES, "missing", 0, 10, NULL, NULL, 0, NULL) == ENOENT);
	CHECK(os_size("missing") == -ENOENT);
	/* DELETE, and ENOENT the second time. */
	CHECK(os_req(X_DELETE, "a", 0, 0, NULL, NULL, 0, NULL) == 0);
	CHECK(os_req(X_DELETE, "a", 0, 0, NULL, NULL, 0, NULL) == ENOENT);
	CHECK(os_size("a") == -ENOENT);
	CHECK(os_req(X_CREATE, "a", 0, 0, NULL, NULL, 0, NULL) == 0);	/* a name can be created again */
	CHECK(os_size("a") == 0);
	/* PING; ops no object store serves. */
	CHECK(os_req(X_PING, "a", 0, 0, NULL, NULL, 0, NULL) == 0);
	CHECK(os_req(X_CLONE, "a", 0, 0, NULL, NULL, 0, NULL) == EOPNOTSUPP);
	CHECK(os_req(X_SNAPSHOT, "a", 0, 0, NULL, NULL, 0, NULL) == EOPNOTSUPP);
	CHECK(os_req(X_MAPR, "a", 0, 0, NULL, NULL, 0, NULL) == EOPNOTSUPP);
	CHECK(os_req(X_OP_COUNT + 5, "a", 0, 0, NULL, NULL, 0, NULL) == EOPNOTSUPP);
	for (const char *n = "a\0b\0z\0empty-write\0"; *n; n += strlen(n) + 1)
		CHECK(os_req(X_DELETE, n, 0, 0, NULL, NULL, 0, NULL) == 0);
}

static void os_test_copy_rename(void)
{
	uint64_t sv;

	CHECK(os_put("src", 0, "copy me, please") == 0);
	CHECK(os_req(X_COPY, "dst", 0, strlen(on("src")), on("src"), NULL, 0, &sv) == 0 && sv == 15);
	CHECK(os_is("dst", "copy me, please", 15));
	CHECK(os_is("src", "copy me, please", 15));
	/* A copy replaces an existing destination, a longer one too. */
	CHECK(os_put("other", 0, "a longer object than the source") == 0);
	CHECK(os_req(X_COPY, "other", 0, strlen(on("src")), on("src"), NULL, 0, NULL) == 0);
	CHECK(os_is("other", "copy me, please", 15));
	/* An empty source makes an empty destination. */
	CHECK(os_req(X_CREATE, "empty", 0, 0, NULL, NULL, 0, NULL) == 0);
	CHECK(os_req(X_COPY, "dst3", 0, strlen(on("empty")), on("empty"), NULL, 0, &sv) == 0 && sv == 0);
	CHECK(os_size("dst3") == 0);
	CHECK(os_req(X_COPY, "dst2", 0, strlen(on("missing")), on("missing"), NULL, 0, NULL) == ENOENT);
	CHECK(os_size("dst2") == -ENOENT);
	CHECK(os_req(X_COPY, "dst2", 0, 4, "../x", NULL, 0, NULL) == EINVAL);
	CHECK(os_req(X_COPY, "dst2", 0, 0, NULL, NULL, 0, NULL) == EINVAL);	/* no source name */
	/* RENAME: the new name has the content, the old one is gone; it replaces. */
	CHECK(os_req(X_RENAME, "dst", 0, strlen(on("renamed")), on("renamed"), NULL, 0, NULL) == 0);
	CHECK(os_size("dst") == -ENOENT);
	CHECK(os_is("renamed", "copy me, please", 15));
	CHECK(os_put("other", 0, "overwritten by rename") == 0);
	CHECK(os_req(X_RENAME, "renamed", 0, strlen(on("other")), on("other"), NULL, 0, NULL) == 0);
	CHECK(os_is("other", "copy me, please", 15) && os_size("renamed") == -ENOENT);
	CHECK(os_req(X_RENAME, "other", 0, strlen(on("other")), on("other"), NULL, 0, NULL) == 0);	/* onto itself */
	CHECK(os_is("other", "copy me, please", 15));
	CHECK(os_req(X_RENAME, "renamed", 0, strlen(on("abc")), on("abc"), NULL, 0, NULL) == ENOENT);
	CHECK(os_size("abc") == -ENOENT);
	CHECK(os_req(X_RENAME, "other", 0, 3, "a/b", NULL, 0, NULL) == EINVAL);
	CHECK(os_req(X_RENAME, "other", 0, 2, "..", NULL, 0, NULL) == EINVAL);
	for (const char *n = "src\0other\0empty\0dst3\0"; *n; n += strlen(n) + 1)
		CHECK(os_req(X_DELETE, n, 0, 0, NULL, NULL, 0, NULL) == 0);
}

static void os_test_hash(void)
{
	static char a[65536];
	char h[65] = "";
	uint64_t sv;

	CHECK(os_put("h", 0, "abc") == 0);
	CHECK(os_req(X_HASH, "h", 0, 64, NULL, h, 64, &sv) == 0 && sv == 64);
	CHECKF(!memcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 64), "%.64s", h);
	CHECK(os_req(X_CREATE, "hempty", 0, 0, NULL, NULL, 0, NULL) == 0);
	CHECK(os_req(X_HASH, "hempty", 0, 64, NULL, h, 64, &sv) == 0 && sv == 64);
	CHECKF(!memcmp(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 64), "%.64s", h);
	CHECK(os_req(X_HASH, "missing", 0, 64, NULL, h, 64, NULL) == ENOENT);
	/* A million 'a's, written in 64K pieces. */
	memset(a, 'a', sizeof(a));
	for (uint64_t o = 0; o < 1000000; o += sizeof(a)) {
		uint64_t n = 1000000 - o < sizeof(a) ? 1000000 - o : sizeof(a);
		struct tp_req r = { .op = X_WRITE, .target = on("million"), .offset = o, .size = n, .in = a,
				    .in_len = n };

		CHECK(tp_do(os_xs, os_me, os_dst, &r) == 0);
	}
	CHECK(os_req(X_HASH, "million", 0, 64, NULL, h, 64, NULL) == 0);
	CHECKF(!memcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", 64), "%.64s", h);
	CHECK(os_req(X_HASH, "h", 0, 64, NULL, h, 32, NULL) == EINVAL);	/* no room for 64 hex */
	for (const char *n = "h\0hempty\0million\0"; *n; n += strlen(n) + 1)
		CHECK(os_req(X_DELETE, n, 0, 0, NULL, NULL, 0, NULL) == 0);
}

/*
 * A lock request with @flags; the reply's data (the holder's tag on
 * EBUSY/EPERM or after a force) into @holder (NUL-terminated), its length
 * in *sv.
 */
static inline int os_lk(uint32_t op, const char *name, const char *tag, uint32_t flags, char holder[300],
			uint64_t *sv)
{
	char out[300] = "";
	struct tp_req r = { .op = op, .flags = flags, .target = on(name), .size = strlen(tag), .in = tag,
			    .in_len = strlen(tag), .buf_len = 256, .out = out, .out_len = 256 };

	tp_do(os_xs, os_me, os_dst, &r);
	*sv = r.serviced;
	CHECK(r.serviced <= 256);
	memcpy(holder, out, r.serviced);
	holder[r.serviced] = 0;
	return r.error;
}

static void os_test_locks(void)
{
	char h[300];
	uint64_t sv;

	CHECK(os_lk(X_ACQUIRE, "vol", "A", 0, h, &sv) == 0 && sv == 0);
	CHECK(os_lk(X_ACQUIRE, "vol", "A", 0, h, &sv) == 0);	/* the owner again */
	CHECK(os_lk(X_ACQUIRE, "vol", "B", 0, h, &sv) == EBUSY);
	CHECK(os_lk(X_ACQUIRE, "vol", "AB", 0, h, &sv) == EBUSY);
	CHECK(os_lk(X_RELEASE, "vol", "B", 0, h, &sv) == EPERM);
	CHECK(os_lk(X_ACQUIRE, "vol2", "B", 0, h, &sv) == 0);	/* another name */
	CHECK(os_lk(X_RELEASE, "vol", "A", 0, h, &sv) == 0);
	CHECK(os_lk(X_RELEASE, "vol", "A", 0, h, &sv) == ENOENT);
	CHECK(os_lk(X_ACQUIRE, "vol", "B", 0, h, &sv) == 0);
	CHECK(os_req(X_ACQUIRE, "vol", 0, 0, NULL, NULL, 0, NULL) == EINVAL);	/* no owner tag */
	CHECK(os_lk(X_RELEASE, "vol", "B", 0, h, &sv) == 0);
	CHECK(os_lk(X_RELEASE, "vol2", "B", 0, h, &sv) == 0);
	/* A refused ACQUIRE (and RELEASE) names the holder: serviced = the tag's length. */
	CHECK(os_lk(X_ACQUIRE, "v", "vlmcd@host:1234/port 7", 0, h, &sv) == 0 && sv == 0);
	CHECK(os_lk(X_ACQUIRE, "v", "other", 0, h, &sv) == EBUSY);
	CHECKF(sv == 22 && !strcmp(h, "vlmcd@host:1234/port 7"), "%" PRIu64 " '%s'", sv, h);
	CHECK(os_lk(X_RELEASE, "v", "other", 0, h, &sv) == EPERM && !strcmp(h, "vlmcd@host:1234/port 7"));
	/* XF_FORCE takes it, and says from whom; the old owner is refused after. */
	CHECK(os_lk(X_ACQUIRE, "v", "other", XF_FORCE, h, &sv) == 0);
	CHECK(sv == 22 && !strcmp(h, "vlmcd@host:1234/port 7"));
	CHECK(os_lk(X_ACQUIRE, "v", "vlmcd@host:1234/port 7", 0, h, &sv) == EBUSY && !strcmp(h, "other"));
	CHECK(os_lk(X_ACQUIRE, "free", "x", XF_FORCE, h, &sv) == 0 && sv == 0);	/* nobody held it */
	CHECK(os_lk(X_ACQUIRE, "free", "x", XF_FORCE, h, &sv) == 0 && sv == 0);	/* ours already */
	/* A forced RELEASE drops whoever holds it; of a free lock: ENOENT. */
	CHECK(os_lk(X_RELEASE, "v", "third", XF_FORCE, h, &sv) == 0 && !strcmp(h, "other"));
	CHECK(os_lk(X_RELEASE, "v", "third", XF_FORCE, h, &sv) == ENOENT && sv == 0);
	CHECK(os_lk(X_ACQUIRE, "v", "third", 0, h, &sv) == 0);
	CHECK(os_lk(X_RELEASE, "v", "third", 0, h, &sv) == 0);
	CHECK(os_lk(X_RELEASE, "free", "x", 0, h, &sv) == 0);
	/* Locks are not objects: no object appears; a lock on an object's name is independent. */
	CHECK(os_size("v") == -ENOENT && os_size("vol") == -ENOENT);
	CHECK(os_put("locked-object", 0, "data") == 0);
	CHECK(os_lk(X_ACQUIRE, "locked-object", "A", 0, h, &sv) == 0);
	CHECK(os_req(X_DELETE, "locked-object", 0, 0, NULL, NULL, 0, NULL) == 0);
	CHECK(os_lk(X_ACQUIRE, "locked-object", "B", 0, h, &sv) == EBUSY && !strcmp(h, "A"));
	CHECK(os_lk(X_RELEASE, "locked-object", "A", 0, h, &sv) == 0);
}

static void os_test_names(void)
{
	const char *bad[] = { "../x", "a/b", ".", "..", "/etc/passwd", "x\ny", "tab\there", "del\x7f",
			      "../../tmp/escape", "a/", "\001copy.1.1", "\002lock.x" };
	const uint32_t ops[] = { X_WRITE, X_CREATE, X_READ, X_INFO, X_DELETE, X_TRUNCATE, X_HASH,
				 X_ACQUIRE, X_RELEASE, X_COPY, X_RENAME, X_DISCARD, X_WRITE_ZEROES, X_FLUSH };
	char h[64], longname[XSEG_TARGET_MAX + 1];
	struct tp_req r256 = { .op = X_WRITE, .target = longname, .size = 1, .in = "x", .in_len = 1 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++)
			CHECKF(os_req_raw(ops[k], 0, bad[i], 0, 1, "x", h, 64, NULL) == EINVAL, "op %s name '%s'",
			       xseg_op_name(ops[k]), bad[i]);
	CHECK(os_req_raw(X_WRITE, 0, "", 0, 1, "x", NULL, 0, NULL) == EINVAL);
	CHECK(os_req_raw(X_INFO, 0, "", 0, 8, NULL, h, 8, NULL) == EINVAL);
	{
		struct tp_req r = { .op = X_WRITE, .target = "ab\0cd", .target_len = 5, .size = 1, .in = "x",
				    .in_len = 1 };

		CHECK(tp_do(os_xs, os_me, os_dst, &r) == EINVAL);
	}
	/* 255 bytes is fine; 256 (XSEG_TARGET_MAX) and a hostile target_len are not. */
	memset(longname, 'n', XSEG_TARGET_MAX);
	longname[XSEG_TARGET_MAX] = 0;
	CHECK(tp_do(os_xs, os_me, os_dst, &r256) == EINVAL);
	memcpy(longname, os_prefix, strlen(os_prefix));
	longname[255] = 0;
	r256.target = longname;
	CHECK(tp_do(os_xs, os_me, os_dst, &r256) == 0);
	CHECK(os_req_raw(X_DELETE, 0, longname, 0, 0, NULL, NULL, 0, NULL) == 0);
	{
		struct tp_req r = { .op = X_WRITE, .target = on("x"), .size = 1, .in = "x", .in_len = 1,
				    .force = 1, .force_tlen = XSEG_TARGET_MAX + 1 };

		CHECK(tp_do(os_xs, os_me, os_dst, &r) == EINVAL);
		r.force_tlen = 0xFFFFFFFFu;
		CHECK(tp_do(os_xs, os_me, os_dst, &r) == EINVAL);
	}
	/* COPY/RENAME with a bad name in the data, and a source name over 255 bytes. */
	CHECK(os_put("good", 0, "g") == 0);
	CHECK(os_req(X_COPY, "good", 0, 5, "a\nb/c", NULL, 0, NULL) == EINVAL);
	CHECK(os_req(X_RENAME, "good", 0, 256, longname, NULL, 0, NULL) == EINVAL);
	CHECK(os_req(X_DELETE, "good", 0, 0, NULL, NULL, 0, NULL) == 0);
}

/* Many requests in flight at once, each on its own object: every one served, every byte right. */
static void os_test_depth(void)
{
	enum { N = 48, SZ = 8192 };
	struct xseg_request *rq[N];
	char name[N][64];
	int got = 0;

	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < N; i++) {
			uint8_t *d;

			snprintf(name[i], sizeof(name[i]), "%sdepth-%d", os_prefix, i);
			rq[i] = xseg_get_request(os_xs, os_me);
			CHECK(rq[i]);
			CHECK(xseg_prep_request(os_xs, rq[i], name[i], (uint32_t)strlen(name[i]), SZ) == 0);
			rq[i]->op = pass ? X_READ : X_WRITE;
			rq[i]->offset = (uint64_t)i * 512;
			rq[i]->size = SZ;
			d = xseg_req_data(os_xs, rq[i]);
			for (int k = 0; k < SZ; k++)
				d[k] = pass ? 0 : (uint8_t)(i * 7 + k);
			CHECK(xseg_submit(os_xs, rq[i], os_dst) >= 0);
		}
		uint64_t t0 = xt_now_ns();

		xseg_signal(os_xs, os_dst);
		for (got = 0; got < N;) {
			struct xseg_request *r = xseg_receive(os_xs, os_me);

			if (!r) {
				CHECKF(xt_now_ns() - t0 < 60000000000ull, "replies missing");
				xseg_wait(os_xs, os_me, 100000);
				continue;
			}
			CHECKF((r->state & XS_SERVED) && r->serviced == SZ, "%s: error %d serviced %" PRIu64,
			       r->target, r->error, r->serviced);
			if (pass) {
				const uint8_t *d = xseg_req_data(os_xs, r);
				int i = -1;

				for (int k = 0; k < N; k++)
					if (rq[k] == r)
						i = k;
				CHECK(i >= 0);
				for (int k = 0; k < SZ; k++)
					CHECKF(d[k] == (uint8_t)(i * 7 + k), "%s byte %d", r->target, k);
			}
			CHECK(xseg_put_request(os_xs, r) == 0);
			got++;
		}
	}
	for (int i = 0; i < N; i++) {
		CHECK(os_size(name[i] + strlen(os_prefix)) == (int64_t)(i * 512 + SZ));
		CHECK(os_req(X_DELETE, name[i] + strlen(os_prefix), 0, 0, NULL, NULL, 0, NULL) == 0);
	}
}

/* Data and locks survive a restart of the peer, a crash (SIGKILL) included. */
static void os_test_restart(void)
{
	char h[300];
	uint64_t sv;

	CHECK(os_put("kept", 0, "acknowledged") == 0);
	CHECK(os_lk(X_ACQUIRE, "durable", "owner-1", 0, h, &sv) == 0);
	CHECK(os_lk(X_ACQUIRE, "durable2", "owner-2", 0, h, &sv) == 0);
	os_restart(0);
	CHECK(os_lk(X_ACQUIRE, "durable", "owner-9", 0, h, &sv) == EBUSY && !strcmp(h, "owner-1"));
	CHECK(os_lk(X_RELEASE, "durable2", "owner-2", 0, h, &sv) == 0);
	CHECK(os_is("kept", "acknowledged", 12));
	os_restart(1);
	CHECK(os_lk(X_ACQUIRE, "durable", "owner-1", 0, h, &sv) == 0);	/* the same owner, a new peer */
	CHECK(os_lk(X_ACQUIRE, "durable2", "owner-9", 0, h, &sv) == 0 && sv == 0);	/* released before */
	CHECK(os_lk(X_RELEASE, "durable", "owner-1", 0, h, &sv) == 0);
	CHECK(os_lk(X_RELEASE, "durable2", "owner-9", 0, h, &sv) == 0);
	CHECK(os_is("kept", "acknowledged", 12));
	CHECK(os_req(X_DELETE, "kept", 0, 0, NULL, NULL, 0, NULL) == 0);
}

/* The whole suite, on the peer at os_dst. */
static inline void os_suite(void)
{
	if (!os_prefix[0])
		snprintf(os_prefix, sizeof(os_prefix), "t%s.", xt_tag());
	RUN(os_test_objects);
	RUN(os_test_copy_rename);
	RUN(os_test_hash);
	RUN(os_test_locks);
	RUN(os_test_names);
	RUN(os_test_depth);
	RUN(os_test_restart);
}

#endif
