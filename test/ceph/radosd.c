/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: radosd on a real one-node Ceph cluster (tools/ceph/cluster).
 * A cluster nobody answers for makes radosd exit 1 (bounded by
 * --connect-timeout); a missing pool exits 1, bad usage 2. Then the object
 * store conformance suite (test/peers/objects.h) that filed passes, and
 * radosd specifics: two radosd processes exclude each other through the
 * RADOS lock (a tag's lock taken through one is its owner's through the
 * other too), and a namespace hides objects of another. Faults under load
 * (depth 16, every write a distinct object with its own content): radosd
 * SIGKILLed and restarted on its port, and the OSD stopped and restarted.
 * Invariants: every request gets exactly one reply (none lost, none
 * duplicated), the failures while the OSD is down are EIO (after
 * --timeout; nothing hangs), every acknowledged write reads back intact
 * afterwards, and a failed one left either nothing or its whole content.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "ceph.h"
#include "../peers/objects.h"

static struct xseg_config cfg;
static char spec[512];
static struct xseg *xs;
static uint32_t me;
static const char *conf;
static pid_t radosd_pid;
static pid_t striped_pid;		/* the striped radosd at port 2 */
static const char *op_timeout = "10";	/* radosd --timeout: the OSD outage test lowers it */

static pid_t start_radosd(uint32_t port, const char *const *extra)
{
	char ports[16];
	const char *args[32] = { "-q", "-g", spec, "-p", ports, "--conf", conf, "--timeout", op_timeout };
	int n = 9;
	pid_t pid;

	snprintf(ports, sizeof(ports), "%u", port);
	while (extra && *extra)
		args[n++] = *extra++;
	args[n] = NULL;
	pid = tp_start("radosd", args);
	tp_wait_bound(xs, port, pid);
	return pid;
}

/* The suite's restart: SIGTERM (exit 0) or SIGKILL, recovery of the port, a new radosd. */
static void restart_radosd(int crash)
{
	if (crash) {
		CHECK(kill(radosd_pid, SIGKILL) == 0 && tp_wait(radosd_pid) == 128 + SIGKILL);
		CHECK(xseg_recover(xs, NULL) == 0);
	} else {
		CHECK(tp_stop(radosd_pid) == 0);
	}
	radosd_pid = start_radosd(1, NULL);
}

/* Exit status of radosd with @args (after -g SPEC), which must end by itself. */
static int radosd_exit(const char *const *args)
{
	const char *all[32] = { "-q", "-g", spec };
	int n = 3;

	while (*args)
		all[n++] = *args++;
	all[n] = NULL;
	return tp_wait(tp_start("radosd", all));
}

static void test_start_errors(void)
{
	char fake[PATH_MAX], keyring[PATH_MAX];
	FILE *f;

	/* A conf naming a monitor nobody answers for (a port we hold bound and never accept on). */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);

	CHECK(s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(getsockname(s, (struct sockaddr *)&a, &al) == 0);
	snprintf(keyring, sizeof(keyring), "%s", tp_path("fake.keyring"));
	f = fopen(keyring, "w");
	CHECK(f);
	fprintf(f, "[client.admin]\n\tkey = AQBHNLJmAAAAABAAzs2YchmSGRO5k2lUZ7sGJg==\n");
	fclose(f);
	snprintf(fake, sizeof(fake), "%s", tp_path("fake.conf"));
	f = fopen(fake, "w");
	CHECK(f);
	fprintf(f, "[global]\nmon host = [v2:127.0.0.1:%u]\nms bind msgr1 = false\n"
		"log to stderr = false\nerr to stderr = false\n[client]\nkeyring = %s\n",
		(unsigned)ntohs(a.sin_port), keyring);
	fclose(f);
	{
		const char *args[] = { "-p", "3", "--conf", fake, "--connect-timeout", "1", NULL };

		CHECK(radosd_exit(args) == 1);
	}
	close(s);
	{
		const char *nofile[] = { "-p", "3", "--conf", tp_path("no-such.conf"), NULL };
		const char *badt[] = { "-p", "3", "--conf", fake, "--timeout", "0", NULL };
		const char *badname[] = { "-p", "3", "--conf", fake, "--name", "nodot", NULL };

		CHECK(radosd_exit(nofile) == 1);
		CHECK(radosd_exit(badt) == 2);
		CHECK(radosd_exit(badname) == 1);
	}
}

static void test_no_pool(void)
{
	const char *args[] = { "-p", "3", "--conf", conf, "--pool", "no-such-pool", "--connect-timeout", "20",
			       NULL };

	CHECK(radosd_exit(args) == 1);
}

/* Two radosd (two clients of the cluster, as on two machines) share the locks; namespaces. */
static void test_two_peers(void)
{
	const char *ns[] = { "--namespace", "other-ns", NULL };
	pid_t second = start_radosd(2, NULL), third = start_radosd(3, ns);
	char h[300];
	uint64_t sv;

	os_dst = 1;
	CHECK(os_lk(X_ACQUIRE, "shared", "A", 0, h, &sv) == 0);
	os_dst = 2;
	CHECK(os_lk(X_ACQUIRE, "shared", "B", 0, h, &sv) == EBUSY && !strcmp(h, "A"));
	CHECK(os_lk(X_ACQUIRE, "shared", "A", 0, h, &sv) == 0);	/* the owner, through the other peer */
	os_dst = 1;
	CHECK(os_lk(X_ACQUIRE, "shared", "B", 0, h, &sv) == EBUSY && !strcmp(h, "A"));
	CHECK(os_lk(X_RELEASE, "shared", "A", 0, h, &sv) == 0);
	os_dst = 2;
	CHECK(os_lk(X_ACQUIRE, "shared", "B", 0, h, &sv) == 0);
	CHECK(os_lk(X_RELEASE, "shared", "B", 0, h, &sv) == 0);
	/* A namespace: the same name is another object. */
	os_dst = 1;
	CHECK(os_put("ns-obj", 0, "default namespace") == 0);
	os_dst = 3;
	CHECK(os_size("ns-obj") == -ENOENT);
	CHECK(os_put("ns-obj", 0, "other") == 0);
	os_dst = 1;
	CHECK(os_is("ns-obj", "default namespace", 17));
	CHECK(os_req(X_DELETE, "ns-obj", 0, 0, NULL, NULL, 0, NULL) == 0);
	os_dst = 3;
	CHECK(os_req(X_DELETE, "ns-obj", 0, 0, NULL, NULL, 0, NULL) == 0);
	os_dst = 1;
	CHECK(tp_stop(second) == 0);
	CHECK(tp_stop(third) == 0);
}

/*
 * --stripe: targets striped over 4 KiB RADOS objects. The conformance suite's
 * object, lock, name and depth tests hold for a striped radosd too (its
 * 8 KiB requests cross stripes); then striping specifics: I/O across many
 * stripes, holes, clipping at the end, growth by a write past the end (and
 * by many at once), DISCARD / WRITE_ZEROES over whole and partial stripes,
 * TRUNCATE that removes and cuts stripes (growing again reads zeroes, never
 * old data), DELETE that leaves no stripe object behind.
 */
static int sreq(uint32_t op, const char *name, uint64_t off, uint64_t size, const void *in, void *out,
		uint64_t *sv)
{
	struct tp_req r = { .op = op, .target = name, .offset = off, .size = size, .in = in,
			    .in_len = in ? size : 0, .buf_len = size, .out = out, .out_len = out ? size : 0 };

	tp_do(xs, me, 2, &r);
	if (sv)
		*sv = r.serviced;
	return r.error;
}

/* The size of target @name (INFO at the striped radosd), or -errno. */
static int64_t os_size_at(const char *name)
{
	uint8_t b[8];
	uint64_t v = 0;
	int e = sreq(X_INFO, name, 0, 8, NULL, b, NULL);

	if (e)
		return -e;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return (int64_t)v;
}

/* The stripe objects of @name in the pool (rados ls). */
static int stripes_of(const char *name)
{
	char cmd[PATH_MAX + 64], line[512], want[XSEG_TARGET_MAX + 8];
	int n = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "rados -c '%s' -p xseg ls", conf);
	snprintf(want, sizeof(want), "\003%s.", name);
	f = popen(cmd, "r");
	CHECK(f);
	while (fgets(line, sizeof(line), f))
		n += !strncmp(line, want, strlen(want));
	CHECK(pclose(f) == 0);
	return n;
}

static uint8_t pat(uint64_t at, int gen)
{
	return (uint8_t)(at * 31 + (uint64_t)gen * 7 + 1) | 1;	/* never 0 */
}

/* Read all @size bytes of @name and compare with @want. */
static void check_all(const char *name, const uint8_t *want, uint64_t size)
{
	uint8_t *got = malloc(size + 1);
	uint64_t sv = 0;

	CHECK(got);
	CHECK(sreq(X_READ, name, 0, size, NULL, got, &sv) == 0 && sv == size);
	for (uint64_t i = 0; i < size; i++)
		CHECKF(got[i] == want[i], "%s byte %" PRIu64 ": %u, not %u", name, i, got[i], want[i]);
	free(got);
}

static void test_striped(void)
{
	enum { SZ = 65536 };
	static uint8_t img[SZ], buf[SZ];
	char name[64], other[64];
	uint64_t sv;

	snprintf(name, sizeof(name), "s%s.stripes", xt_tag());
	snprintf(other, sizeof(other), "s%s.other", xt_tag());
	CHECK(sreq(X_CREATE, name, 0, 20000, NULL, NULL, NULL) == 0);
	CHECK(stripes_of(name) == 0);		/* sized, but nothing written */
	/* A write across four stripes, not aligned; holes read as zeroes. */
	for (uint64_t i = 0; i < 10000; i++)
		img[3000 + i] = pat(3000 + i, 1);
	CHECK(sreq(X_WRITE, name, 3000, 10000, img + 3000, NULL, &sv) == 0 && sv == 10000);
	CHECK(stripes_of(name) == 4);
	check_all(name, img, 20000);
	CHECK(os_size_at(name) == 20000);
	/* Clipped at the end: a read over a missing stripe and the end; past the end nothing. */
	CHECK(sreq(X_READ, name, 19000, 4000, NULL, buf, &sv) == 0 && sv == 1000);
	CHECK(sreq(X_READ, name, 20000, 100, NULL, buf, &sv) == 0 && sv == 0);
	CHECK(sreq(X_READ, name, UINT64_MAX - 10, 100, NULL, buf, &sv) == 0 && sv == 0);	/* no wrap */
	CHECK(sreq(X_READ, name, 12000, 4000, NULL, buf, &sv) == 0 && sv == 4000);
	CHECK(!memcmp(buf, img + 12000, 4000));
	/* A write past the end grows the target; the gap reads as zeroes. */
	for (uint64_t i = 30000; i < 35000; i++)
		img[i] = pat(i, 2);
	CHECK(sreq(X_WRITE, name, 30000, 5000, img + 30000, NULL, &sv) == 0 && sv == 5000);
	CHECK(os_size_at(name) == 35000);
	check_all(name, img, 35000);
	/* DISCARD over a partial, a whole and a partial stripe; WRITE_ZEROES clipped at the end. */
	CHECK(sreq(X_DISCARD, name, 4000, 9000, NULL, NULL, &sv) == 0 && sv == 9000);
	memset(img + 4000, 0, 9000);
	CHECK(sreq(X_WRITE_ZEROES, name, 33000, 10000, NULL, NULL, &sv) == 0 && sv == 2000);
	memset(img + 33000, 0, 2000);
	CHECK(os_size_at(name) == 35000);
	check_all(name, img, 35000);
	/* TRUNCATE into a stripe: the stripes past it go, the cut one is cut; growing again reads zeroes. */
	CHECK(sreq(X_TRUNCATE, name, 5000, 0, NULL, NULL, NULL) == 0);
	CHECK(os_size_at(name) == 5000);
	CHECK(stripes_of(name) <= 2);
	/* radosd knew the size was 35000: a write below that, past the new end, grows it again. */
	CHECK(sreq(X_WRITE, name, 10000, 4, "wxyz", NULL, &sv) == 0 && sv == 4);
	CHECK(os_size_at(name) == 10004);
	CHECK(sreq(X_READ, name, 9998, 10, NULL, buf, &sv) == 0 && sv == 6 && !memcmp(buf, "\0\0wxyz", 6));
	CHECK(sreq(X_TRUNCATE, name, 5000, 0, NULL, NULL, NULL) == 0);
	CHECK(sreq(X_TRUNCATE, name, 35000, 0, NULL, NULL, NULL) == 0);
	memset(img + 5000, 0, 30000);
	check_all(name, img, 35000);
	/* Many writes past the end at once: the size is the furthest end, whatever their order. */
	{
		enum { N = 16 };
		struct xseg_request *rq[N];
		int got = 0;

		for (int i = 0; i < N; i++) {
			uint64_t off = 35000 + (uint64_t)i * 1500;

			rq[i] = xseg_get_request(xs, me);
			CHECK(rq[i]);
			CHECK(xseg_prep_request(xs, rq[i], name, (uint32_t)strlen(name), 1000) == 0);
			rq[i]->op = X_WRITE;
			rq[i]->offset = off;
			rq[i]->size = 1000;
			for (int k = 0; k < 1000; k++)
				img[off + k] = pat(off + k, 3);
			memcpy(xseg_req_data(xs, rq[i]), img + off, 1000);
			CHECK(xseg_submit(xs, rq[i], 2) >= 0);
		}
		xseg_signal(xs, 2);
		while (got < N) {
			struct xseg_request *r = xseg_receive(xs, me);

			if (!r) {
				xseg_wait(xs, me, 100000);
				continue;
			}
			CHECKF((r->state & XS_SERVED) && r->serviced == 1000, "error %d", r->error);
			CHECK(xseg_put_request(xs, r) == 0);
			got++;
		}
		for (int i = 0; i < N - 1; i++)
			memset(img + 35000 + (uint64_t)i * 1500 + 1000, 0, 500);
		CHECK(os_size_at(name) == 35000 + (N - 1) * 1500 + 1000);
		check_all(name, img, 35000 + (N - 1) * 1500 + 1000);
	}
	/* HASH: as unstriped radosd's of the same bytes (holes as zeroes), at port 1. */
	{
		enum { END = 35000 + 15 * 1500 + 1000 };
		char hs[65] = "", hu[65] = "", plain[80];
		struct tp_req w = { .op = X_WRITE, .target = plain, .size = END, .in = img, .in_len = END };
		struct tp_req h = { .op = X_HASH, .target = plain, .size = 64, .buf_len = 64, .out = hu,
				    .out_len = 64 };

		snprintf(plain, sizeof(plain), "s%s.plain", xt_tag());
		CHECK(tp_do(xs, me, 1, &w) == 0);
		CHECK(tp_do(xs, me, 1, &h) == 0 && h.serviced == 64);
		CHECK(sreq(X_HASH, name, 0, 64, NULL, hs, &sv) == 0 && sv == 64);
		CHECKF(!memcmp(hs, hu, 64), "striped %.64s, unstriped %.64s", hs, hu);
		CHECK(tp_do(xs, me, 1, &(struct tp_req){ .op = X_DELETE, .target = plain }) == 0);
	}
	/* COPY keeps the holes holes; RENAME moves every stripe. */
	{
		int n = stripes_of(name);
		struct tp_req r = { .op = X_COPY, .target = other, .size = strlen(name), .in = name,
				    .in_len = strlen(name) };
		char third[64];

		CHECK(tp_do(xs, me, 2, &r) == 0 && r.serviced == 58500);
		CHECK(os_size_at(other) == 58500 && stripes_of(other) == n);
		check_all(other, img, 58500);
		snprintf(third, sizeof(third), "s%s.third", xt_tag());
		r = (struct tp_req){ .op = X_RENAME, .target = other, .size = strlen(third), .in = third,
				     .in_len = strlen(third) };
		CHECK(tp_do(xs, me, 2, &r) == 0);
		CHECK(os_size_at(other) == -ENOENT && stripes_of(other) == 0);
		CHECK(os_size_at(third) == 58500 && stripes_of(third) == n);
		check_all(third, img, 58500);
		CHECK(sreq(X_DELETE, third, 0, 0, NULL, NULL, NULL) == 0);
		CHECK(stripes_of(third) == 0);
	}
	/* DELETE: the head and every stripe. */
	CHECK(sreq(X_DELETE, name, 0, 0, NULL, NULL, NULL) == 0);
	CHECK(os_size_at(name) == -ENOENT);
	CHECK(stripes_of(name) == 0);
	CHECK(sreq(X_READ, name, 0, 100, NULL, buf, NULL) == ENOENT);
	CHECK(sreq(X_DELETE, name, 0, 0, NULL, NULL, NULL) == ENOENT);
	/* A write to a missing target creates it. */
	CHECK(sreq(X_WRITE, name, 5000, 4, "abcd", NULL, &sv) == 0 && sv == 4);
	CHECK(os_size_at(name) == 5004);
	CHECK(sreq(X_DELETE, name, 0, 0, NULL, NULL, NULL) == 0);
	CHECK(stripes_of(name) == 0);
}

/* The RADOS watchers of head object @name (rados listwatchers). */
static int watchers_of(const char *name)
{
	char cmd[PATH_MAX + 300], line[512];
	int n = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "rados -c '%s' -p xseg listwatchers '%s' 2>/dev/null", conf, name);
	f = popen(cmd, "r");
	CHECK(f);
	while (fgets(line, sizeof(line), f))
		n += !!strstr(line, "watcher=");
	pclose(f);
	return n;
}

/*
 * A second striped radosd (port 4) on the same targets: a TRUNCATE or a
 * DELETE through it is seen by the first (port 2), which knew the old size
 * (and watches the head): a write there below the old size but past the
 * new end grows the target again, and a write to a deleted one creates it.
 */
static void test_striped_other_radosd(void)
{
	const char *stripe[] = { "--stripe", "4K", NULL };
	pid_t second = start_radosd(4, stripe);
	uint8_t buf[64];
	uint64_t sv, t0 = xt_now_ns();
	char name[64];

	snprintf(name, sizeof(name), "s%s.twice", xt_tag());
	/* Port 2 learns the size 35000 (it grows the target) and watches the head. */
	CHECK(sreq(X_CREATE, name, 0, 20000, NULL, NULL, NULL) == 0);
	CHECK(sreq(X_WRITE, name, 34000, 1000, (uint8_t[1000]){ 1 }, NULL, &sv) == 0 && sv == 1000);
	while (watchers_of(name) < 1) {
		CHECKF(xt_now_ns() - t0 < 60000000000ull, "radosd at port 2 never watched %s", name);
		usleep(50000);
	}
	CHECK(sreq(X_WRITE, name, 30000, 4, "warm", NULL, &sv) == 0 && sv == 4);	/* within the known size */
	/* TRUNCATE through port 4. */
	{
		struct tp_req t = { .op = X_TRUNCATE, .target = name, .offset = 5000 };

		CHECK(tp_do(xs, me, 4, &t) == 0);
	}
	CHECK(os_size_at(name) == 5000);
	CHECK(sreq(X_WRITE, name, 10000, 4, "wxyz", NULL, &sv) == 0 && sv == 4);
	CHECKF(os_size_at(name) == 10004, "size %" PRId64 " after a write ending at 10004 (a TRUNCATE through "
	       "another radosd not seen)", os_size_at(name));
	CHECK(sreq(X_READ, name, 9998, 10, NULL, buf, &sv) == 0 && sv == 6 && !memcmp(buf, "\0\0wxyz", 6));
	/* Port 2 knows 10004 again (it grew it); DELETE through port 4; a write at port 2 creates it anew. */
	CHECK(sreq(X_READ, name, 0, 64, NULL, buf, &sv) == 0 && sv == 64);
	{
		struct tp_req d = { .op = X_DELETE, .target = name };

		CHECK(tp_do(xs, me, 4, &d) == 0);
	}
	CHECK(sreq(X_WRITE, name, 8000, 4, "abcd", NULL, &sv) == 0 && sv == 4);
	CHECKF(os_size_at(name) == 8004, "size %" PRId64 " after a write to a target deleted elsewhere",
	       os_size_at(name));
	CHECK(sreq(X_DELETE, name, 0, 0, NULL, NULL, NULL) == 0);
	CHECK(stripes_of(name) == 0);
	CHECK(tp_stop(second) == 0);
}

/*
 * RENAME over stripes, radosd SIGKILLed in the middle of it: one of the two
 * names holds the whole content (the old one, or the new one), and the
 * RENAME repeated through a new radosd finishes it (the old name and all
 * its stripes gone, the new one whole).
 */
static void test_striped_rename_killed(void)
{
	enum { SZ = 2 << 20, CH = 32768 };
	const char *stripe[] = { "--stripe", "4K", NULL };
	static uint8_t img[SZ];
	char from[64], to[64];
	uint64_t t0 = xt_now_ns();
	struct xseg_request *r;
	pid_t pid;
	int64_t fs, ts;
	int whole_from, whole_to;

	snprintf(from, sizeof(from), "s%s.rn-from", xt_tag());
	snprintf(to, sizeof(to), "s%s.rn-to", xt_tag());
	for (uint64_t i = 0; i < SZ; i++)
		img[i] = pat(i, 5);
	for (uint64_t o = 0; o < SZ; o += CH)
		CHECK(sreq(X_WRITE, from, o, CH, img + o, NULL, NULL) == 0);
	/* The RENAME, and SIGKILL once the copy is under way. */
	r = xseg_get_request(xs, me);
	CHECK(r);
	CHECK(xseg_prep_request(xs, r, from, (uint32_t)strlen(from), 64) == 0);
	r->op = X_RENAME;
	r->size = strlen(to);
	memcpy(xseg_req_data(xs, r), to, strlen(to));
	CHECK(xseg_submit(xs, r, 2) >= 0);
	xseg_signal(xs, 2);
	while (stripes_of(to) < 1) {
		CHECKF(xt_now_ns() - t0 < 60000000000ull, "the RENAME never began");
		usleep(20000);
	}
	pid = striped_pid;
	CHECK(kill(pid, SIGKILL) == 0);
	CHECK(xseg_recover(xs, NULL) == 0);
	for (int got = 0; !got;) {
		struct xseg_request *rr = xseg_receive(xs, me);

		if (!rr) {
			xseg_wait(xs, me, 100000);
			continue;
		}
		printf("RENAME of %d KiB with radosd SIGKILLed at %d stripes copied: %s\n", SZ >> 10,
		       stripes_of(to), rr->state & XS_FAILED ? strerror((int)rr->error) : "it had finished");
		CHECK(xseg_put_request(xs, rr) == 0);
		got = 1;
	}
	CHECK(tp_wait(pid) == 128 + SIGKILL);
	pid = striped_pid = start_radosd(2, stripe);
	/* One of them whole. */
	fs = os_size_at(from);
	ts = os_size_at(to);
	whole_from = fs == SZ;
	whole_to = ts == SZ;
	if (whole_from) {
		uint8_t *got = malloc(SZ);
		uint64_t sv;

		CHECK(got);
		for (uint64_t o = 0; o < SZ && whole_from; o += CH)
			whole_from = sreq(X_READ, from, o, CH, NULL, got + o, &sv) == 0 && sv == CH;
		whole_from = whole_from && !memcmp(got, img, SZ);
		free(got);
	}
	if (whole_to) {
		uint8_t *got = malloc(SZ);
		uint64_t sv;

		CHECK(got);
		for (uint64_t o = 0; o < SZ && whole_to; o += CH)
			whole_to = sreq(X_READ, to, o, CH, NULL, got + o, &sv) == 0 && sv == CH;
		whole_to = whole_to && !memcmp(got, img, SZ);
		free(got);
	}
	printf("after the kill: old name %s (%" PRId64 "), new name %s (%" PRId64 ")\n", whole_from ? "whole" :
	       "not whole", fs, whole_to ? "whole" : "not whole", ts);
	CHECKF(whole_from || whole_to, "neither name holds the content after a RENAME was killed");
	/* Repeated: finished. */
	{
		struct tp_req rn = { .op = X_RENAME, .target = from, .size = strlen(to), .in = to,
				     .in_len = strlen(to) };

		tp_do(xs, me, 2, &rn);
		CHECKF(rn.error == 0 || (rn.error == ENOENT && fs == -ENOENT), "repeated RENAME: %d", rn.error);
	}
	CHECK(os_size_at(from) == -ENOENT && stripes_of(from) == 0);
	CHECK(os_size_at(to) == SZ);
	{
		static uint8_t got[SZ];
		uint64_t sv;

		for (uint64_t o = 0; o < SZ; o += CH)
			CHECK(sreq(X_READ, to, o, CH, NULL, got + o, &sv) == 0 && sv == CH);
		CHECK(!memcmp(got, img, SZ));
	}
	/*
	 * The other state a crash can leave: the new name whole, the old one
	 * marked renamed (as after the mark, before its removal; made here
	 * with `rados setxattr`). The old name is gone for COPY; the repeated
	 * RENAME removes it and keeps the new one.
	 */
	{
		char cmd[PATH_MAX + 300];
		struct tp_req cp = { .op = X_COPY, .target = from, .size = strlen(to), .in = to, .in_len = strlen(to) };
		struct tp_req rn = { .op = X_RENAME, .target = from, .size = strlen(to), .in = to,
				     .in_len = strlen(to) };
		struct tp_req c2 = { .op = X_COPY, .target = to, .size = strlen(from), .in = from,
				     .in_len = strlen(from) };
		static uint8_t got[SZ];
		uint64_t sv;

		CHECK(tp_do(xs, me, 2, &cp) == 0 && cp.serviced == SZ);	/* from := to */
		snprintf(cmd, sizeof(cmd), "rados -c '%s' -p xseg setxattr '%s' xseg.renamed '%s'", conf, from, to);
		CHECK(system(cmd) == 0);
		CHECK(tp_do(xs, me, 2, &c2) == ENOENT);
		CHECK(tp_do(xs, me, 2, &rn) == 0);
		CHECK(os_size_at(from) == -ENOENT && stripes_of(from) == 0);
		CHECK(os_size_at(to) == SZ);
		for (uint64_t o = 0; o < SZ; o += CH)
			CHECK(sreq(X_READ, to, o, CH, NULL, got + o, &sv) == 0 && sv == CH);
		CHECK(!memcmp(got, img, SZ));
	}
	CHECK(sreq(X_DELETE, to, 0, 0, NULL, NULL, NULL) == 0);
	CHECK(stripes_of(to) == 0);
}

/* The object suite (but the restarts) on a striped radosd at port 2. */
static void test_striped_suite(void)
{
	const char *stripe[] = { "--stripe", "4K", NULL };
	char saved[sizeof(os_prefix)];

	striped_pid = start_radosd(2, stripe);
	memcpy(saved, os_prefix, sizeof(saved));
	snprintf(os_prefix, sizeof(os_prefix), "s%s.", xt_tag());
	os_dst = 2;
	RUN(os_test_objects);
	RUN(os_test_copy_rename);
	RUN(os_test_hash);
	RUN(os_test_locks);
	RUN(os_test_names);
	RUN(os_test_depth);
	RUN(test_striped);
	RUN(test_striped_other_radosd);
	RUN(test_striped_rename_killed);
	os_dst = 1;
	memcpy(os_prefix, saved, sizeof(saved));
	CHECK(tp_stop(striped_pid) == 0);
	CHECK(radosd_exit((const char *[]){ "-p", "3", "--conf", conf, "--stripe", "3000", NULL }) == 2);
	CHECK(radosd_exit((const char *[]){ "-p", "3", "--conf", conf, "--stripe", "128M", NULL }) == 2);
}

/*
 * The load of the fault tests: writes of BS bytes, each to its own object
 * "load-SEQ" with content from SEQ, DEPTH in flight, until @total were
 * replied. @fault runs once when @at replies came (with requests in flight)
 * and returns; @during (if set) is called after every reply until it
 * returns 0. Each request's reply is counted by its cookie.
 */
enum { DEPTH = 16, BS = 4096, MAXSEQ = 4096 };
static uint8_t replied[MAXSEQ];
static int result[MAXSEQ];		/* 0 acknowledged, else the errno */

static void fill(uint8_t *d, uint64_t seq)
{
	for (int k = 0; k < BS; k++)
		d[k] = (uint8_t)(seq * 131 + (uint64_t)k * 7 + (k >> 8));
}

static uint32_t load(uint32_t total, uint32_t at, void (*fault)(void), int (*during)(uint32_t seq, int err))
{
	uint32_t next = 0, done = 0, inflight = 0, busy = 1;
	uint64_t last = xt_now_ns();

	memset(replied, 0, sizeof(replied));
	CHECK(total <= MAXSEQ);
	while (done < next || next < total) {
		struct xseg_request *r;

		while (inflight < DEPTH && next < total) {
			char name[64];
			int q;

			r = xseg_get_request(xs, me);
			CHECK(r);
			snprintf(name, sizeof(name), "%sload-%u", os_prefix, next);
			CHECK(xseg_prep_request(xs, r, name, (uint32_t)strlen(name), BS) == 0);
			r->op = X_WRITE;
			r->size = BS;
			r->cookie = next;
			fill(xseg_req_data(xs, r), next);
			q = xseg_submit(xs, r, 1);
			if (q < 0) {
				/* Nobody serves the port this moment (a restart): try again soon. */
				CHECK(q == -ENOENT || q == -EAGAIN);
				CHECK(xseg_put_request(xs, r) == 0);
				break;
			}
			xseg_signal(xs, (uint32_t)q);
			next++;
			inflight++;
		}
		r = xseg_receive(xs, me);
		if (!r) {
			CHECKF(xt_now_ns() - last < 60000000000ull, "no reply for 60 s: %u in flight (a hang)",
			       inflight);
			xseg_wait(xs, me, 20000);
			if (!inflight)
				usleep(10000);
			continue;
		}
		last = xt_now_ns();
		CHECK(r->cookie < next);
		CHECKF(!replied[r->cookie], "a second reply to request %" PRIu64, r->cookie);
		replied[r->cookie] = 1;
		result[r->cookie] = r->state & XS_FAILED ? r->error : 0;
		if (!(r->state & XS_FAILED))
			CHECK((r->state & XS_SERVED) && r->serviced == BS);
		if (during && busy)
			busy = during((uint32_t)r->cookie, result[r->cookie]);
		CHECK(xseg_put_request(xs, r) == 0);
		inflight--;
		if (++done == at && fault)
			fault();
	}
	for (uint32_t i = 0; i < total; i++)
		CHECKF(replied[i], "request %u never replied", i);
	return done;
}

/* After a fault: every acknowledged write intact, every failed one all or nothing. */
static void verify_load(uint32_t total, uint32_t *acked, uint32_t *failed)
{
	static uint8_t want[BS], got[BS];

	*acked = *failed = 0;
	for (uint32_t i = 0; i < total; i++) {
		char name[32];
		uint64_t sv = 0;
		int e;

		snprintf(name, sizeof(name), "load-%u", i);
		fill(want, i);
		memset(got, 0, sizeof(got));
		e = os_req(X_READ, name, 0, BS, NULL, got, BS, &sv);
		if (result[i] == 0) {
			(*acked)++;
			CHECKF(e == 0 && sv == BS && !memcmp(got, want, BS), "acknowledged write %u: %d, %" PRIu64
			       " bytes%s", i, e, sv, e || sv != BS ? "" : ", different content");
		} else {
			(*failed)++;
			CHECKF(e == ENOENT || (e == 0 && sv == BS && !memcmp(got, want, BS)),
			       "failed write %u (%d) left %d, %" PRIu64 " bytes", i, result[i], e, sv);
		}
		if (e == 0)
			CHECK(os_req(X_DELETE, name, 0, 0, NULL, NULL, 0, NULL) == 0);
	}
}

static void kill_radosd(void)
{
	restart_radosd(1);
}

/* Writes per fault test (XSEG_CEPH_LOAD; a tenth, at least 160, under a sanitizer). */
static uint32_t load_total(void)
{
	long n = xt_env_long("XSEG_CEPH_LOAD", 600);

	return (uint32_t)(n < 10 * DEPTH ? 10 * DEPTH : n > MAXSEQ ? MAXSEQ : n);
}

static void test_kill_under_load(void)
{
	uint32_t total = load_total(), acked, failed, n = load(total, total / 3, kill_radosd, NULL);

	verify_load(n, &acked, &failed);
	printf("radosd SIGKILLed at reply %u of %u: %u acknowledged, %u failed back\n", total / 3, total, acked,
	       failed);
	CHECK(acked >= total / 3);
}

static int osd_down, eio_seen;

static void stop_osd(void)
{
	CHECK(tc_cluster("osd-stop", NULL) == 0);
	osd_down = 1;
}

/* While the OSD is down every failure is EIO; once DEPTH of them came, the OSD restarts. */
static int watch_outage(uint32_t seq, int err)
{
	(void)seq;
	if (!osd_down)
		return 1;
	if (err) {
		CHECKF(err == EIO, "a request failed with %d (%s) while the OSD was down, not EIO", err,
		       strerror(err));
		if (++eio_seen == DEPTH) {
			CHECK(tc_cluster("osd-start", NULL) == 0);
			osd_down = 0;
			return 0;
		}
	}
	return 1;
}

static void test_osd_stop_under_load(void)
{
	uint32_t acked, failed, n;

	/* Requests to a stopped OSD fail after --timeout: 2 s keeps the outage short. */
	op_timeout = "2";
	restart_radosd(0);
	n = load(load_total(), load_total() / 4, stop_osd, watch_outage);

	CHECK(!osd_down && eio_seen >= DEPTH);
	verify_load(n, &acked, &failed);
	printf("OSD stopped at reply %u of %u: %u acknowledged, %u failed with EIO\n", n / 4, n, acked, failed);
	CHECK(failed >= DEPTH && acked >= n / 4);
}

int main(void)
{
	int fd;

	xt_watchdog(280);
	tc_require("radosd");
	cfg = tx_create("posix:%s:16:256:64K:0:12");
	xseg_format_spec(&cfg, spec, sizeof(spec));
	xs = tx_join(&cfg, "futex");
	fd = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(fd >= 0);
	me = (uint32_t)fd;
	RUN(test_start_errors);
	conf = tc_start();
	RUN(test_no_pool);
	radosd_pid = start_radosd(1, NULL);
	os_xs = xs;
	os_me = me;
	os_dst = 1;
	os_restart = restart_radosd;
	os_suite();
	RUN(test_two_peers);
	RUN(test_striped_suite);
	RUN(test_kill_under_load);
	RUN(test_osd_stop_under_load);
	CHECK(tp_stop(radosd_pid) == 0);
	xseg_leave(xs);
	return 0;
}
