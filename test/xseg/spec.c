/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: spec strings (xseg/spec.c): the defaults, every positional
 * field and key, size units, the canonical form and round-trips of a table of
 * specs, a table of bad specs (each -EINVAL with a message naming its field),
 * bounded error and format buffers, xseg_check_config on configs built by
 * code, and a randomized format -> parse round-trip (XSEG_SEED repeats it,
 * XSEG_SPEC_ITERS sets its length).
 */
#include <grp.h>
#include "xtest.h"
#include "xseg/xseg.h"

#define KB (1ull << 10)
#define MB (1ull << 20)
#define GB (1ull << 30)

static char err[256];

static void parse_ok(const char *spec, struct xseg_config *cfg)
{
	int r = xseg_parse_spec(spec, cfg, err, sizeof(err));

	CHECKF(r == 0, "'%s' -> %d: %s", spec, r, err);
	CHECKF(err[0] == '\0', "'%s': error text on success: %s", spec, err);
}

static const char *fmt(const struct xseg_config *cfg)
{
	static char buf[512];
	int n = xseg_format_spec(cfg, buf, sizeof(buf));

	CHECK(n > 0 && (size_t)n < sizeof(buf));
	CHECK(strlen(buf) == (size_t)n);
	return buf;
}

/* parse(format(cfg)) == cfg, byte for byte. */
static void check_roundtrip(const struct xseg_config *cfg)
{
	struct xseg_config back;
	const char *s = fmt(cfg);
	int r;

	memset(&back, 0xA5, sizeof(back));
	r = xseg_parse_spec(s, &back, err, sizeof(err));
	CHECKF(r == 0, "formatted '%s' does not parse: %s", s, err);
	CHECKF(memcmp(cfg, &back, sizeof(back)) == 0, "'%s' does not round-trip (reformats as '%s')",
	       s, fmt(&back));
}

static void test_defaults(void)
{
	struct xseg_config d, c;

	memset(&d, 0xA5, sizeof(d));
	xseg_config_defaults(&d);
	CHECK(strcmp(d.type, "posix") == 0);
	CHECK(strcmp(d.name, "xseg") == 0);
	CHECK(d.nr_ports == 16 && d.dynports == 8 && d.nr_requests == 256);
	CHECK(d.request_size == 64 * KB && d.extra_size == 0 && d.page_shift == 12);
	CHECK(d.mode == 0600 && d.gid == -1 && d.autorm == 0 && d.nr_classes == 0);
	/* Everything else zero, so configs compare with memcmp. */
	for (size_t i = strlen(d.type); i < sizeof(d.type); i++)
		CHECK(d.type[i] == 0);
	for (size_t i = strlen(d.name); i < sizeof(d.name); i++)
		CHECK(d.name[i] == 0);
	for (unsigned i = 0; i < XSEG_MAX_BUF_CLASSES - 1; i++)
		CHECK(d.classes[i].size == 0 && d.classes[i].count == 0 && d.classes[i].pad == 0);
	CHECK(xseg_check_config(&d, err, sizeof(err)) == 0);
	CHECK(strcmp(fmt(&d), "posix:xseg:16:256:64K:0:12") == 0);

	/* Empty and missing fields take the defaults. */
	const char *same[] = {
		"posix", ":", "::::::", "posix:xseg", "posix:xseg:16:256:64K:0:12",
		"::16", "posix:xseg:::::", ":::256:65536:0:12", "posix:xseg:16:256:64KiB:0B:12",
		"posix:xseg:dynports=8", "dynports=8", "mode=0600", "mode=600", "autorm=no",
	};
	for (unsigned i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		memset(&c, 0x5A, sizeof(c));
		parse_ok(same[i], &c);
		CHECKF(memcmp(&c, &d, sizeof(c)) == 0, "'%s' is not the defaults", same[i]);
	}
	xseg_config_defaults(NULL);	/* harmless */
}

static void test_fields(void)
{
	struct xseg_config c;

	parse_ok("heap:my-seg_1.x:64:1024:1M:8M:13:dynports=10:mode=0660:group=123:autorm=1:"
		 "buffers=4M*4,16K*32", &c);
	CHECK(strcmp(c.type, "heap") == 0);
	CHECK(strcmp(c.name, "my-seg_1.x") == 0);
	CHECK(c.nr_ports == 64 && c.dynports == 10 && c.nr_requests == 1024);
	CHECK(c.request_size == MB && c.extra_size == 8 * MB && c.page_shift == 13);
	CHECK(c.mode == 0660 && c.gid == 123 && c.autorm == 1);
	CHECK(c.nr_classes == 2);
	CHECK(c.classes[0].size == 16 * KB && c.classes[0].count == 32);	/* ascending */
	CHECK(c.classes[1].size == 4 * MB && c.classes[1].count == 4);
	CHECK(c.classes[2].size == 0 && c.classes[2].count == 0);
	CHECK(strcmp(fmt(&c), "heap:my-seg_1.x:64:1024:1M:8M:13:dynports=10:mode=0660:"
		     "group=123:autorm=1:buffers=16K*32,4M*4") == 0);

	/* Keys in any order, right after any number of positional fields. */
	parse_ok("posix:demo:autorm=true:dynports=4", &c);
	CHECK(strcmp(c.name, "demo") == 0 && c.nr_ports == 16 && c.dynports == 4 && c.autorm == 1);
	parse_ok("segdev:demo::512", &c);
	CHECK(strcmp(c.type, "segdev") == 0 && c.nr_ports == 16 && c.nr_requests == 512);

	/* dynports follows nr_ports unless given. */
	parse_ok("posix:a:100", &c);
	CHECK(c.nr_ports == 100 && c.dynports == 50);
	parse_ok("posix:a:1", &c);
	CHECK(c.nr_ports == 1 && c.dynports == 0);
	parse_ok("posix:a:7:dynports=7", &c);
	CHECK(c.dynports == 7);
	parse_ok("posix:a:4096:dynports=0", &c);
	CHECK(c.nr_ports == 4096 && c.dynports == 0);
	CHECK(strcmp(fmt(&c), "posix:a:4096:256:64K:0:12:dynports=0") == 0);

	/* Type file: the name is a path. */
	parse_ok("file:/dev/shm/x seg.d/../seg:8", &c);
	CHECK(strcmp(c.type, "file") == 0 && strcmp(c.name, "/dev/shm/x seg.d/../seg") == 0);
	parse_ok("file:.hidden", &c);
	CHECK(strcmp(c.name, ".hidden") == 0);

	/* Limits. */
	char name[200];
	strcpy(name, "heap:");
	memset(name + 5, 'n', 127);
	strcpy(name + 5 + 127, ":1:1:4K:0:12");
	parse_ok(name, &c);
	CHECK(strlen(c.name) == 127 && c.nr_requests == 1);
	name[5 + 127] = 'n';			/* 128 bytes */
	CHECK(xseg_parse_spec(name, &c, err, sizeof(err)) == -EINVAL);
	CHECK(strncmp(err, "name: ", 6) == 0);
	parse_ok("posix:x:4096:1048576:1G:64G:21", &c);
	CHECK(c.nr_requests == 1048576 && c.request_size == GB && c.extra_size == 64 * GB);
	CHECK(c.page_shift == 21);
	parse_ok("posix:x:::2M::21", &c);
	CHECK(c.request_size == 2 * MB && c.page_shift == 21);

	/* Modes and autorm spellings. */
	parse_ok("mode=0770", &c);
	CHECK(c.mode == 0770);
	parse_ok("mode=00000640", &c);
	CHECK(c.mode == 0640);
	const char *yes[] = { "1", "yes", "true" }, *no[] = { "0", "no", "false" };
	for (unsigned i = 0; i < 3; i++) {
		char s[32];

		snprintf(s, sizeof(s), "autorm=%s", yes[i]);
		parse_ok(s, &c);
		CHECK(c.autorm == 1);
		snprintf(s, sizeof(s), "autorm=%s", no[i]);
		parse_ok(s, &c);
		CHECK(c.autorm == 0);
	}

	/* Three classes, sorted. */
	parse_ok("buffers=1M*1,4K*1048576,256K*7", &c);
	CHECK(c.nr_classes == 3);
	CHECK(c.classes[0].size == 4 * KB && c.classes[0].count == 1048576);
	CHECK(c.classes[1].size == 256 * KB && c.classes[1].count == 7);
	CHECK(c.classes[2].size == MB && c.classes[2].count == 1);
}

static void test_group(void)
{
	struct xseg_config c;
	struct group *g;

	parse_ok("group=0", &c);
	CHECK(c.gid == 0);
	parse_ok("group=2147483647", &c);
	CHECK(c.gid == 2147483647);
	g = getgrgid(getgid());
	if (g && strlen(g->gr_name) < 60 && g->gr_gid <= 0x7FFFFFFFu) {
		char s[80];
		bool plain = true;

		for (const char *p = g->gr_name; *p; p++)
			if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *p))
				plain = false;
		if (plain && g->gr_name[0] != '-') {
			snprintf(s, sizeof(s), "posix:x:group=%s", g->gr_name);
			parse_ok(s, &c);
			CHECK(c.gid == (int32_t)g->gr_gid);
			snprintf(s, sizeof(s), "posix:x:16:256:64K:0:12:group=%u", (unsigned)g->gr_gid);
			CHECK(strcmp(fmt(&c), s) == 0);
		}
	}
	CHECK(xseg_parse_spec("group=no-such-group.xseg-test", &c, err, sizeof(err)) == -EINVAL);
	CHECK(strncmp(err, "group: ", 7) == 0);
}

static void test_units(void)
{
	static const struct { const char *s; uint64_t v; } good[] = {
		{ "4096", 4096 }, { "8192B", 8192 }, { "8192b", 8192 },
		{ "4K", 4 * KB }, { "4k", 4 * KB }, { "4KB", 4 * KB }, { "4kb", 4 * KB },
		{ "4KiB", 4 * KB }, { "4kib", 4 * KB }, { "4KIB", 4 * KB },
		{ "64K", 64 * KB }, { "1M", MB }, { "1m", MB }, { "3MiB", 3 * MB }, { "3MB", 3 * MB },
		{ "1G", GB }, { "1g", GB }, { "1GiB", GB }, { "1024M", GB }, { "1048576K", GB },
		{ "0004K", 4 * KB }, { "1073741824", GB },
	};
	static const char *const bad[] = {
		"K", "KB", "4X", "4 K", " 4K", "4K ", "4KiBB", "4iB", "4Kb2", "-4K", "+4K", "4.5K",
		"0x1000", "4T", "4KK", "4Bi", "4KI", "1e3",
	};
	struct xseg_config c;
	char s[128];

	for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(s, sizeof(s), "posix:x:1:1:%s", good[i].s);
		parse_ok(s, &c);
		CHECKF(c.request_size == good[i].v, "%s", good[i].s);
		snprintf(s, sizeof(s), "posix:x:1:1:4K:%s", good[i].s);
		parse_ok(s, &c);
		CHECKF(c.extra_size == good[i].v, "%s", good[i].s);
		snprintf(s, sizeof(s), "buffers=%s*2", good[i].s);
		if (good[i].v != 64 * KB) {
			parse_ok(s, &c);
			CHECKF(c.nr_classes == 1 && c.classes[0].size == good[i].v, "%s", good[i].s);
		}
	}
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(s, sizeof(s), "posix:x:1:1:%s", bad[i]);
		CHECKF(xseg_parse_spec(s, &c, err, sizeof(err)) == -EINVAL, "%s", s);
		CHECKF(strncmp(err, "request_size: ", 14) == 0, "%s: %s", s, err);
		snprintf(s, sizeof(s), "posix:x:1:1:4K:%s", bad[i]);
		CHECKF(xseg_parse_spec(s, &c, err, sizeof(err)) == -EINVAL, "%s", s);
		CHECKF(strncmp(err, "extra_size: ", 12) == 0, "%s: %s", s, err);
		snprintf(s, sizeof(s), "buffers=%s*2", bad[i]);
		CHECKF(xseg_parse_spec(s, &c, err, sizeof(err)) == -EINVAL, "%s", s);
		CHECKF(strncmp(err, "buffers: ", 9) == 0, "%s: %s", s, err);
	}
	/* Overflow of uint64, before and after the unit. */
	CHECK(xseg_parse_spec("::::18446744073709551616", &c, err, sizeof(err)) == -EINVAL);
	CHECK(strcmp(err, "request_size: '18446744073709551616' is too large") == 0);
	CHECK(xseg_parse_spec("::::17179869184G", &c, err, sizeof(err)) == -EINVAL);
	CHECK(strcmp(err, "request_size: '17179869184G' is too large") == 0);
	CHECK(xseg_parse_spec(":::::99999999999999999999999999K", &c, err, sizeof(err)) == -EINVAL);
	CHECK(strncmp(err, "extra_size: ", 12) == 0);
	/* Largest exact unit when formatting. */
	static const struct { uint64_t v; const char *s; } out[] = {
		{ 4 * KB, "4K" }, { 12 * KB, "12K" }, { 1024 * KB, "1M" }, { 1536 * KB, "1536K" },
		{ GB, "1G" }, { 3 * GB, "3G" }, { GB + 4 * KB, "1048580K" }, { 5 * MB, "5M" },
	};
	for (unsigned i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
		char want[64];

		xseg_config_defaults(&c);
		c.extra_size = out[i].v;
		snprintf(want, sizeof(want), "posix:xseg:16:256:64K:%s:12", out[i].s);
		CHECKF(strcmp(fmt(&c), want) == 0, "%s", want);
		check_roundtrip(&c);
	}
}

/* spec -> its canonical form; both parse to the same config. */
static const struct { const char *spec, *canon; } roundtrips[] = {
	{ "posix", "posix:xseg:16:256:64K:0:12" },
	{ "posix:demo:dynports=4", "posix:demo:16:256:64K:0:12:dynports=4" },
	{ "posix:demo::512", "posix:demo:16:512:64K:0:12" },
	{ "posix:q:quota_buffer=1MiB:quota_requests=8",
	  "posix:q:16:256:64K:0:12:quota_requests=8:quota_buffer=1M" },
	{ "posix:q:max_hops=16", "posix:q:16:256:64K:0:12:max_hops=16" },
	{ "posix:q:max_hops=4", "posix:q:16:256:64K:0:12" },
	{ "posix:q:peer_types=128", "posix:q:16:256:64K:0:12:peer_types=128" },
	{ "posix:q:peer_types=1:max_hops=8", "posix:q:16:256:64K:0:12:max_hops=8:peer_types=1" },
	{ "posix:q:peer_types=16", "posix:q:16:256:64K:0:12" },
	{ "posix:q:max_requests=4096", "posix:q:16:256:64K:0:12:max_requests=4096" },
	{ "posix:q:max_requests=256", "posix:q:16:256:64K:0:12" },
	{ "posix:q:quota_types=futex/8/1MiB,posixfd/2/0,x.y-z_1/0/4096,posix/256/1T:quota_requests=1",
	  "posix:q:16:256:64K:0:12:quota_requests=1:quota_types=futex/8/1M,posixfd/2/0,x.y-z_1/0/4K,posix/256/1024G" },
	{ "posix:h:huge=1", "posix:h:16:256:64K:0:12:huge=1" },
	{ "file:/tmp/seg", "file:/tmp/seg:16:256:64K:0:12" },
	{ "file:rel/a b/c", "file:rel/a b/c:16:256:64K:0:12" },
	{ "heap:h:1:1:4K:0:12", "heap:h:1:1:4K:0:12" },
	{ "segdev:xsegdev:32:1024:128K:1M:12", "segdev:xsegdev:32:1024:128K:1M:12" },
	{ "posix:a:10", "posix:a:10:256:64K:0:12" },
	{ "posix:a:11:dynports=5", "posix:a:11:256:64K:0:12" },
	{ "posix:a:11:dynports=6", "posix:a:11:256:64K:0:12:dynports=6" },
	{ "posix:a:4096:1048576:1G:64G:21", "posix:a:4096:1048576:1G:64G:21" },
	{ "posix:a:::65536:4194304", "posix:a:16:256:64K:4M:12" },
	{ "posix:a:::1048576K:1024M", "posix:a:16:256:1G:1G:12" },
	{ "posix:a:::12288", "posix:a:16:256:12K:0:12" },
	{ "posix:a:::8K::13", "posix:a:16:256:8K:0:13" },
	{ "posix:a:::6M:6M:21", "posix:a:16:256:6M:6M:21" },
	{ "posix:a:mode=660", "posix:a:16:256:64K:0:12:mode=0660" },
	{ "posix:a:mode=0770", "posix:a:16:256:64K:0:12:mode=0770" },
	{ "posix:a:mode=0600", "posix:a:16:256:64K:0:12" },
	{ "posix:a:group=100", "posix:a:16:256:64K:0:12:group=100" },
	{ "posix:a:group=0", "posix:a:16:256:64K:0:12:group=0" },
	{ "posix:a:autorm=yes", "posix:a:16:256:64K:0:12:autorm=1" },
	{ "posix:a:autorm=false", "posix:a:16:256:64K:0:12" },
	{ "posix:a:buffers=4K*16", "posix:a:16:256:64K:0:12:buffers=4K*16" },
	{ "posix:a:buffers=1M*2,4K*16,256K*1", "posix:a:16:256:64K:0:12:buffers=4K*16,256K*1,1M*2" },
	{ "posix:a:buffers=1024K*2,1G*1", "posix:a:16:256:64K:0:12:buffers=1M*2,1G*1" },
	{ "buffers=8KiB*3:autorm=1:group=7:mode=640:dynports=0",
	  "posix:xseg:16:256:64K:0:12:dynports=0:mode=0640:group=7:autorm=1:buffers=8K*3" },
	{ "heap:x.y-z_0:2:2:2M:0:21:dynports=2:buffers=4M*1",
	  "heap:x.y-z_0:2:2:2M:0:21:dynports=2:buffers=4M*1" },
	{ "file:./a.seg:1:1:4096:4096:12:autorm=1", "file:./a.seg:1:1:4K:4K:12:autorm=1" },
	{ ":n:0016:0256", "posix:n:16:256:64K:0:12" },
	{ "segdev:s:::::14", "segdev:s:16:256:64K:0:14" },
	/* A bare name is a posix segment; the positional fields have names too. */
	{ "demo", "posix:demo:16:256:64K:0:12" },
	{ "my.seg-1", "posix:my.seg-1:16:256:64K:0:12" },
	{ "demo,ports=8", "posix:demo:8:256:64K:0:12" },
	{ "file", "file:xseg:16:256:64K:0:12" },
	{ "posix:demo,ports=16,requests=256,buffer=64K", "posix:demo:16:256:64K:0:12" },
	{ "posix:demo,ports=8,requests=32,buffer=1M,extra=4M,page_shift=13",
	  "posix:demo:8:32:1M:4M:13" },
	{ "posix:demo:ports=8:requests=32", "posix:demo:8:32:64K:0:12" },
	{ "posix:demo:8,requests=32", "posix:demo:8:32:64K:0:12" },
	{ "posix:demo,dynports=6,ports=8", "posix:demo:8:256:64K:0:12:dynports=6" },
	{ "posix:demo,buffers=4K*16,1M*2,mode=0660", "posix:demo:16:256:64K:0:12:mode=0660:buffers=4K*16,1M*2" },
	{ "file:./a,b.seg", "file:./a,b.seg:16:256:64K:0:12" },
	{ "file:./a,b.seg,ports=2", "file:./a,b.seg:2:256:64K:0:12" },
	{ "ports=2", "posix:xseg:2:256:64K:0:12" },
};

/* A bare name writes the type; a named field is written as its positional one is. */
static void test_short_forms_given(void)
{
	struct xseg_config c;
	uint32_t g = 0;

	CHECK(xseg_parse_spec_given("demo", &c, &g, err, sizeof(err)) == 0);
	CHECKF(g == (XSEG_GIVEN_TYPE | XSEG_GIVEN_NAME), "%#x", g);
	CHECK(xseg_parse_spec_given("demo,ports=8,buffer=1M", &c, &g, err, sizeof(err)) == 0);
	CHECKF(g == (XSEG_GIVEN_TYPE | XSEG_GIVEN_NAME | XSEG_GIVEN_NR_PORTS | XSEG_GIVEN_REQUEST_SIZE),
	       "%#x", g);
	CHECK(xseg_parse_spec_given("posix:d,requests=8,extra=4K,page_shift=12,mode=0660", &c, &g,
				    err, sizeof(err)) == 0);
	CHECKF(g == (XSEG_GIVEN_TYPE | XSEG_GIVEN_NAME | XSEG_GIVEN_NR_REQUESTS | XSEG_GIVEN_EXTRA_SIZE |
		     XSEG_GIVEN_PAGE_SHIFT | XSEG_GIVEN_MODE), "%#x", g);
	CHECK(xseg_parse_spec_given("posix", &c, &g, err, sizeof(err)) == 0);
	CHECKF(g == XSEG_GIVEN_TYPE && !strcmp(c.name, "xseg"), "%#x %s", g, c.name);
}

static void test_roundtrip_table(void)
{
	for (unsigned i = 0; i < sizeof(roundtrips) / sizeof(roundtrips[0]); i++) {
		struct xseg_config a, b;

		parse_ok(roundtrips[i].spec, &a);
		CHECKF(strcmp(fmt(&a), roundtrips[i].canon) == 0, "'%s' formats as '%s', not '%s'",
		       roundtrips[i].spec, fmt(&a), roundtrips[i].canon);
		parse_ok(roundtrips[i].canon, &b);
		CHECKF(memcmp(&a, &b, sizeof(a)) == 0, "'%s' and '%s' differ",
		       roundtrips[i].spec, roundtrips[i].canon);
		CHECK(xseg_check_config(&a, err, sizeof(err)) == 0);
		check_roundtrip(&a);
	}
}

/* Bad spec -> the field its message starts with. */
static const struct { const char *spec, *field; } bads[] = {
	{ NULL, "spec" },
	{ "", "spec" },
	{ "shm:x", "type" },
	{ "POSIX:x", "type" },
	{ "posixposixposixposix:x", "type" },
	{ "posix:a/b", "name" },
	{ "posix:q:16:8:quota_requests=9", "quota_requests" },
	{ "posix:q:quota_requests=x", "quota_requests" },
	{ "posix:q:quota_buffer=3000", "quota_buffer" },
	{ "posix:h:huge=2", "huge" },
	{ "posix:h:huge=yes", "huge" },
	{ "posix:q:quota_buffer=1Q", "quota_buffer" },
	{ "posix:q:quota_requests=1:quota_requests=2", "quota_requests" },
	{ "posix:q:quota_types=futex", "quota_types" },
	{ "posix:q:max_hops=0", "max_hops" },
	{ "posix:q:max_hops=17", "max_hops" },
	{ "posix:q:max_hops=x", "max_hops" },
	{ "posix:q:peer_types=0", "peer_types" },
	{ "posix:q:peer_types=129", "peer_types" },
	{ "posix:q:peer_types=", "peer_types" },
	{ "posix:q:peer_types=1:peer_types=2", "peer_types" },
	{ "posix:q:max_requests=255", "max_requests" },
	{ "posix:q:max_requests=1048577", "max_requests" },
	{ "posix:q:huge=1:max_requests=512", "max_requests" },
	{ "posix:q:quota_types=futex/1", "quota_types" },
	{ "posix:q:quota_types=/1/0", "quota_types" },
	{ "posix:q:quota_types=.x/1/0", "quota_types" },
	{ "posix:q:quota_types=a/b/0", "quota_types" },
	{ "posix:q:quota_types=a/1/1Q", "quota_types" },
	{ "posix:q:quota_types=a/1/3000", "quota_types" },
	{ "posix:q:16:8:quota_types=a/9/0", "quota_types" },
	{ "posix:q:quota_types=a/1/0,a/2/0", "quota_types" },
	{ "posix:q:quota_types=a/1/0,b/1/0,c/1/0,d/1/0,e/1/0", "quota_types" },
	{ "posix:q:quota_types=abcdefghijklmnop/1/0", "quota_types" },
	{ "posix:q:quota_types=a/1/0:quota_types=b/1/0", "quota_types" },
	{ "posix:.x", "name" },
	{ "posix:a b", "name" },
	{ "heap:a\x01", "name" },
	{ "file:a\tb", "name" },
	{ "posix:x:0", "nr_ports" },
	{ "posix:x:4097", "nr_ports" },
	{ "posix:x:-1", "nr_ports" },
	{ "posix:x:1x", "nr_ports" },
	{ "posix:x:99999999999999999999999", "nr_ports" },
	{ "posix:x:16:0", "nr_requests" },
	{ "posix:x:16:1048577", "nr_requests" },
	{ "posix:x:16:256:3000", "request_size" },
	{ "posix:x:16:256:0", "request_size" },
	{ "posix:x:16:256:2G", "request_size" },
	{ "posix:x:16:256:4K:0:13", "request_size" },
	{ "posix:x:16:256:64K:100", "extra_size" },
	{ "posix:x:16:256:64K:65G", "extra_size" },
	{ "posix:x:16:256:64K:0:11", "page_shift" },
	{ "posix:x:16:256:64K:0:22", "page_shift" },
	{ "posix:x:16:256:64K:0:12:7", "spec" },
	{ "posix:x:dynports=4:16", "spec" },
	{ "posix:x:dynports=4:", "spec" },
	{ "posix:x:foo=1", "spec" },
	{ "posix:x:=1", "spec" },
	{ "posix:x:8:dynports=9", "dynports" },
	{ "posix:x:dynports=", "dynports" },
	{ "posix:x:dynports=1:dynports=2", "dynports" },
	{ "posix:x:mode=0400", "mode" },
	{ "posix:x:mode=1777", "mode" },
	{ "posix:x:mode=0680", "mode" },
	{ "posix:x:mode=rw", "mode" },
	{ "posix:x:group=4294967295", "group" },
	{ "posix:x:group=a b", "group" },
	{ "posix:x:group=-1", "group" },
	{ "posix:x:autorm=2", "autorm" },
	{ "posix:x:autorm=YES", "autorm" },
	{ "posix:x:buffers=4K*0", "buffers" },
	{ "posix:x:buffers=4K*1048577", "buffers" },
	{ "posix:x:buffers=4K", "buffers" },
	{ "posix:x:buffers=4K*1,", "buffers" },
	{ "posix:x:buffers=3000*1", "buffers" },
	{ "posix:x:buffers=4K*1,8K*1,16K*1,32K*1", "buffers" },
	{ "posix:x:buffers=4K*1,4K*2", "buffers" },
	{ "posix:x:buffers=64K*1", "buffers" },
	{ "posix:x:buffers=2G*1", "buffers" },
	{ "posix:x:buffers=*1", "buffers" },
	{ "posix:x:buffers=4K*x", "buffers" },
	{ "posix:x:buffers=4K*1:buffers=8K*1", "buffers" },
	{ "posix:x:8,ports=8", "nr_ports" },
	{ "posix:x,ports=8,ports=8", "nr_ports" },
	{ "posix:x,ports=0", "nr_ports" },
	{ "posix:x,buffer=3000", "request_size" },
	{ "posix:x,requests=", "nr_requests" },
	{ "posix:x,ports=8,16", "nr_ports" },
	{ "posix:x,ports=8,dynports=9", "dynports" },
	{ "x,y", "name" },
	{ "a/b", "name" },
	{ "demo:16", "type" },
};

static void test_bad_specs(void)
{
	for (unsigned i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		struct xseg_config c;
		size_t fl = strlen(bads[i].field);
		int r;

		memset(err, 0, sizeof(err));
		r = xseg_parse_spec(bads[i].spec, &c, err, sizeof(err));
		CHECKF(r == -EINVAL, "'%s' -> %d", bads[i].spec ? bads[i].spec : "(null)", r);
		CHECKF(strncmp(err, bads[i].field, fl) == 0 && err[fl] == ':' && err[fl + 1] == ' ',
		       "'%s': message '%s' does not start with '%s: '",
		       bads[i].spec ? bads[i].spec : "(null)", err, bads[i].field);
		CHECK(strlen(err) > fl + 2);
	}
}

/* The exact messages the documentation shows. */
static void test_messages(void)
{
	static const struct { const char *spec, *msg; } m[] = {
		{ NULL, "spec: empty" },
		{ "posix:x:0", "nr_ports: '0' must be between 1 and 4096" },
		{ "posix:x:16:256:3000", "request_size: '3000' is not a multiple of the page size 4096" },
		{ "posix:x:16:256:2G", "request_size: '2G' must be between 4K and 1G" },
		{ "posix:x:buffers=4K*0", "buffers: '4K*0': count must be between 1 and 1048576" },
		{ "posix:x:foo=1", "spec: unknown key 'foo' (keys: ports, requests, buffer, extra, page_shift, dynports, mode, group, autorm, buffers, quota_requests, quota_buffer, huge, quota_types, max_hops, peer_types, max_requests)" },
		{ "shm:x", "type: 'shm' is not one of posix, file, heap, segdev, sysv, memfd" },
		{ "posix:x:dynports=1:dynports=2", "dynports: given twice" },
		{ "posix:x:8:dynports=9", "dynports: '9' must be between 0 and 8" },
		{ "posix:x:mode=0400", "mode: '0400' must give the owner read and write (0600)" },
		{ "posix:a/b", "name: 'a/b' may contain only letters, digits, '.', '_' and '-'" },
		{ "heap:a\x01", "name: 'a\\x01' may contain only letters, digits, '.', '_' and '-'" },
		{ "posix:x:buffers=4K*1,4K*2", "buffers: '4K*2': size 4K given twice" },
		{ "posix:x:quota_types=futex:8", "quota_types: 'futex': not TYPE/REQUESTS/BUFFER" },
		{ "posix:x:quota_types=futex/8/1M,futex/2/0", "quota_types: 'futex/2/0': peer type 'futex' given twice" },
		{ "posix:x:max_hops=17", "max_hops: '17' must be between 1 and 16" },
		{ "posix:x:peer_types=129", "peer_types: '129' must be between 1 and 128" },
		{ "posix:x:16:8:quota_types=futex/9/0",
		  "quota_types: futex: requests 9 must be between 0 and 8 (nr_requests)" },
		{ "posix:x:16:256:64K:0:12:7",
		  "spec: too many fields at '7' (type:name:nr_ports:nr_requests:request_size:extra_size:page_shift, then key=value)" },
	};
	struct xseg_config c;

	for (unsigned i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		CHECK(xseg_parse_spec(m[i].spec, &c, err, sizeof(err)) == -EINVAL);
		CHECKF(strcmp(err, m[i].msg) == 0, "got '%s', want '%s'", err, m[i].msg);
	}
	/* Long values are cut in messages. */
	char s[400];
	memset(s, 'x', sizeof(s));
	memcpy(s, "shm", 3);
	s[sizeof(s) - 2] = ':';	/* without a ':' it would be a bare name */
	s[sizeof(s) - 1] = 0;
	CHECK(xseg_parse_spec(s, &c, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "...' is not one of") != NULL);
	CHECK(strlen(err) < 140);
}

/* Never a byte outside the buffers, whatever their size; snprintf semantics. */
static void test_bounded(void)
{
	struct xseg_config c;
	char buf[300], full[300];
	int n, r;

	r = xseg_parse_spec("posix:x:0", &c, full, sizeof(full));
	CHECK(r == -EINVAL);
	for (size_t len = 0; len < strlen(full) + 3; len++) {
		memset(buf, '#', sizeof(buf));
		CHECK(xseg_parse_spec("posix:x:0", &c, buf, len) == -EINVAL);
		for (size_t i = len; i < sizeof(buf); i++)
			CHECK(buf[i] == '#');
		if (len) {
			CHECK(strlen(buf) == (len - 1 < strlen(full) ? len - 1 : strlen(full)));
			CHECK(strncmp(buf, full, strlen(buf)) == 0);
		}
	}
	CHECK(xseg_parse_spec("posix:x:0", &c, NULL, 100) == -EINVAL);
	CHECK(xseg_parse_spec("posix", NULL, buf, sizeof(buf)) == -EINVAL);
	CHECK(strncmp(buf, "spec: ", 6) == 0);
	CHECK(xseg_check_config(NULL, buf, sizeof(buf)) == -EINVAL);

	/* A success clears a previous message. */
	strcpy(buf, "stale");
	CHECK(xseg_parse_spec("posix", &c, buf, sizeof(buf)) == 0 && buf[0] == 0);

	parse_ok("file:/some/long/path/name:4096:1048576:1G:64G:21:dynports=3:mode=0660:group=12345:"
		 "autorm=1:buffers=4M*1048576,8M*1048576,16M*1048576", &c);
	n = xseg_format_spec(&c, full, sizeof(full));
	CHECK(n > 0 && (size_t)n == strlen(full));
	for (size_t len = 0; len < (size_t)n + 3; len++) {
		memset(buf, '#', sizeof(buf));
		CHECK(xseg_format_spec(&c, len ? buf : NULL, len) == n);
		for (size_t i = len; i < sizeof(buf); i++)
			CHECK(buf[i] == '#');
		if (len) {
			size_t want = len - 1 < (size_t)n ? len - 1 : (size_t)n;

			CHECK(strlen(buf) == want && strncmp(buf, full, want) == 0);
		}
	}
	CHECK(xseg_format_spec(NULL, buf, sizeof(buf)) < 0);
}

/* Configs built by code get the same checks. */
static void test_check_config(void)
{
	struct xseg_config c;

#define BAD(field, stmt) do { \
		xseg_config_defaults(&c); \
		stmt; \
		CHECKF(xseg_check_config(&c, err, sizeof(err)) == -EINVAL, "%s", #stmt); \
		CHECKF(strncmp(err, field ": ", strlen(field) + 2) == 0, "%s: %s", #stmt, err); \
	} while (0)
	BAD("type", strcpy(c.type, "shm"));
	BAD("type", memset(c.type, 'p', sizeof(c.type)));
	BAD("type", c.type[0] = 0);
	BAD("name", c.name[0] = 0);
	BAD("name", memset(c.name, 'n', sizeof(c.name)));
	BAD("name", strcpy(c.name, "a:b"));
	BAD("name", (strcpy(c.type, "file"), strcpy(c.name, "a:b")));
	BAD("name", (strcpy(c.type, "file"), strcpy(c.name, "a=b")));
	BAD("name", strcpy(c.name, "a=b"));
	BAD("page_shift", c.page_shift = 0);
	BAD("page_shift", c.page_shift = 64);
	BAD("nr_ports", c.nr_ports = 0);
	BAD("nr_ports", c.nr_ports = 5000);
	BAD("dynports", c.dynports = 17);
	BAD("nr_requests", c.nr_requests = 0);
	BAD("nr_requests", c.nr_requests = 0xFFFFFFFF);
	BAD("request_size", c.request_size = 0);
	BAD("request_size", c.request_size = 4097);
	BAD("request_size", c.request_size = ~0ull);
	BAD("request_size", c.request_size = 2 * GB);
	BAD("extra_size", c.extra_size = 1);
	BAD("extra_size", c.extra_size = 128 * GB);
	BAD("mode", c.mode = 0);
	BAD("mode", c.mode = 01600);
	BAD("mode", c.mode = 0200);
	BAD("mode", c.mode = 0606);	/* others: peers would refuse it */
	BAD("group", c.gid = -2);
	BAD("autorm", c.autorm = 2);
	BAD("buffers", c.nr_classes = 4);
	BAD("buffers", c.nr_classes = 0xFFFFFFFF);
	BAD("buffers", (c.nr_classes = 1, c.classes[0].size = 4096, c.classes[0].count = 0));
	BAD("buffers", (c.nr_classes = 1, c.classes[0].size = 100, c.classes[0].count = 1));
	BAD("buffers", (c.nr_classes = 1, c.classes[0].size = 0, c.classes[0].count = 1));
	BAD("buffers", (c.nr_classes = 1, c.classes[0].size = 64 * KB, c.classes[0].count = 1));
	BAD("buffers", (c.nr_classes = 2, c.classes[0].size = 8192, c.classes[0].count = 1,
			c.classes[1].size = 4096, c.classes[1].count = 1));
	BAD("buffers", (c.nr_classes = 2, c.classes[0].size = 8192, c.classes[0].count = 1,
			c.classes[1].size = 8192, c.classes[1].count = 1));
	/* quota_types= as a header a peer wrote may hold it: every entry checked on join. */
	BAD("max_hops", c.max_hops = XSEG_PATH_MAX + 1);
	BAD("peer_types", c.peer_types = XSEG_PEER_TYPES_MAX + 1);
	BAD("peer_types", c.peer_types = 0xFFFFFFFF);
	BAD("max_requests", c.max_requests = c.nr_requests - 1);
	BAD("max_requests", c.max_requests = 1048577);
	BAD("quota_types", c.nr_type_quotas = XSEG_MAX_TYPE_QUOTAS + 1);
	BAD("quota_types", (c.nr_type_quotas = 1, memset(c.type_quotas[0].type, 'a', XSEG_TYPE_LEN)));
	BAD("quota_types", (c.nr_type_quotas = 1));	/* empty name */
	BAD("quota_types", (c.nr_type_quotas = 1, strcpy(c.type_quotas[0].type, "a/b")));
	BAD("quota_types", (c.nr_type_quotas = 1, strcpy(c.type_quotas[0].type, "a"),
			    c.type_quotas[0].pad = 1));
	BAD("quota_types", (c.nr_type_quotas = 1, strcpy(c.type_quotas[0].type, "a"),
			    c.type_quotas[0].requests = 257));
	BAD("quota_types", (c.nr_type_quotas = 1, strcpy(c.type_quotas[0].type, "a"),
			    c.type_quotas[0].buffer = 100));
	BAD("quota_types", (c.nr_type_quotas = 2, strcpy(c.type_quotas[0].type, "a"),
			    strcpy(c.type_quotas[1].type, "a")));
	BAD("quota_types", strcpy(c.type_quotas[1].type, "b"));	/* past nr_type_quotas */
#undef BAD
	/* The message shows the value for configs built by code. */
	xseg_config_defaults(&c);
	c.request_size = 3000;
	CHECK(xseg_check_config(&c, err, sizeof(err)) == -EINVAL);
	CHECK(strcmp(err, "request_size: '3000' is not a multiple of the page size 4096") == 0);
	c.request_size = 4 * KB;
	c.nr_ports = 0;
	CHECK(xseg_check_config(&c, err, sizeof(err)) == -EINVAL);
	CHECK(strcmp(err, "nr_ports: '0' must be between 1 and 4096") == 0);

	/* Format never reads past the arrays of a bad config. */
	memset(&c, 'z', sizeof(c));
	CHECK(xseg_format_spec(&c, NULL, 0) > (int)(XSEG_TYPE_LEN + XSEG_NAME_LEN));
	CHECK(xseg_check_config(&c, err, sizeof(err)) == -EINVAL);
}

/* ------------------------------------------------------ random round-trip */

static uint64_t rnd(uint64_t *s, uint64_t lo, uint64_t hi)
{
	return lo + xt_rand(s) % (hi - lo + 1);
}

/* A random size in pages: often a round number, sometimes any. */
static uint64_t rnd_size(uint64_t *s, uint64_t page, uint64_t max)
{
	uint64_t pages = max / page;

	switch (xt_rand(s) % 4) {
	case 0:
		return page << rnd(s, 0, 63 - __builtin_clzll(pages));
	case 1:
		return page * rnd(s, 1, pages < 64 ? pages : 64);
	default:
		return page * rnd(s, 1, pages);
	}
}

static void random_config(uint64_t *s, struct xseg_config *c)
{
	static const char *types[] = { "posix", "file", "heap", "segdev" };
	static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
	static const char path[] = "abcXYZ019._-/ ~+,@#%&()[]{}!\"'\\*?<>|;^`$";
	uint64_t page;
	size_t n;

	xseg_config_defaults(c);
	strcpy(c->type, types[xt_rand(s) % 4]);
	memset(c->name, 0, sizeof(c->name));
	n = xt_rand(s) % 3 ? rnd(s, 1, 16) : rnd(s, 1, XSEG_NAME_LEN - 1);
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(c->type, "file"))
			c->name[i] = (char)(xt_rand(s) % 8 ? path[xt_rand(s) % (sizeof(path) - 1)]
							: (char)rnd(s, 0x80, 0xff));
		else
			c->name[i] = plain[xt_rand(s) % (sizeof(plain) - 1)];
	}
	if (strcmp(c->type, "file") && c->name[0] == '.')
		c->name[0] = 'd';
	c->page_shift = (uint32_t)rnd(s, 12, 21);
	page = 1ull << c->page_shift;
	c->nr_ports = (uint32_t)(xt_rand(s) % 2 ? rnd(s, 1, 64) : rnd(s, 1, 4096));
	c->dynports = xt_rand(s) % 2 ? c->nr_ports / 2 : (uint32_t)rnd(s, 0, c->nr_ports);
	c->nr_requests = (uint32_t)(xt_rand(s) % 2 ? rnd(s, 1, 1024) : rnd(s, 1, 1048576));
	c->request_size = rnd_size(s, page, GB);
	c->extra_size = xt_rand(s) % 3 ? 0 : rnd_size(s, page, 64 * GB);
	c->mode = xt_rand(s) % 2 ? 0600 : 0600 | (uint32_t)(xt_rand(s) & 0170);
	c->gid = xt_rand(s) % 2 ? -1 : (int32_t)rnd(s, 0, 0x7FFFFFFF);
	c->autorm = (uint32_t)(xt_rand(s) % 2);
	c->peer_types = (uint32_t)rnd(s, 1, XSEG_PEER_TYPES_MAX);
	c->nr_classes = 0;
	for (uint32_t want = (uint32_t)rnd(s, 0, 3), tries = 0; c->nr_classes < want && tries < 20; tries++) {
		uint64_t size = rnd_size(s, page, GB);
		uint32_t i;
		bool dup = size == c->request_size;

		for (i = 0; i < c->nr_classes; i++)
			dup |= c->classes[i].size == size;
		if (dup)
			continue;
		for (i = c->nr_classes; i > 0 && c->classes[i - 1].size > size; i--)
			c->classes[i] = c->classes[i - 1];
		c->classes[i].size = size;
		c->classes[i].count = (uint32_t)(xt_rand(s) % 2 ? rnd(s, 1, 100) : rnd(s, 1, 1048576));
		c->nr_classes++;
	}
}

static void test_random_roundtrip(void)
{
	uint64_t seed = xt_seed();
	long iters = xt_env_long("XSEG_SPEC_ITERS", 20000);

	for (long it = 0; it < iters; it++) {
		struct xseg_config c;

		random_config(&seed, &c);
		CHECKF(xseg_check_config(&c, err, sizeof(err)) == 0, "iteration %ld: %s", it, err);
		check_roundtrip(&c);
	}
}

int main(void)
{
	xt_watchdog(60);
	RUN(test_defaults);
	RUN(test_fields);
	RUN(test_group);
	RUN(test_units);
	RUN(test_roundtrip_table);
	RUN(test_bad_specs);
	RUN(test_messages);
	RUN(test_short_forms_given);
	RUN(test_bounded);
	RUN(test_check_config);
	RUN(test_random_roundtrip);
	return 0;
}
