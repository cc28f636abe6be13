/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: the one size grammar (xseg/xseg_size.h): every line of
 * test/xseg/size-vectors.txt (the vectors test/node/size.test.ts runs against
 * the TypeScript twin) gives the value, a syntax error or a range error, with
 * and without a NUL after the input and as a spec field (request_size), and
 * st_parse_size (the peers' options) agrees.
 */
#include <limits.h>
#include "xtest.h"
#include "xseg/xseg.h"
#include "xseg/xseg_size.h"
#include "peers/user/storage.h"

static void check_line(const char *want, const char *in, size_t n)
{
	uint64_t v = 12345, sv = 0, expect = 0;
	char buf[256];
	int r, rs, want_r;

	if (!strcmp(want, "syntax"))
		want_r = XSEG_SIZE_SYNTAX;
	else if (!strcmp(want, "range"))
		want_r = XSEG_SIZE_RANGE;
	else {
		want_r = 0;
		expect = strtoull(want, NULL, 10);
	}
	/* Not NUL-terminated: a byte after the input must not be read as part of it. */
	CHECK(n + 1 < sizeof(buf));
	memcpy(buf, in, n);
	buf[n] = 'K';
	r = xseg_parse_size(buf, n, &v);
	CHECKF(r == want_r, "'%.*s': %d, want %s", (int)n, in, r, want);
	if (!r)
		CHECKF(v == expect, "'%.*s': %llu, want %s", (int)n, in, (unsigned long long)v, want);
	else
		CHECKF(v == 12345, "'%.*s': value written on error", (int)n, in);
	buf[n] = 0;
	CHECK(xseg_parse_size_str(buf, &sv) == r);
	rs = st_parse_size(buf, &sv);
	CHECKF((rs == 0) == (r == 0), "st_parse_size('%s') = %d", buf, rs);
	if (!r)
		CHECK(sv == expect);
}

static void test_vectors(void)
{
	char path[PATH_MAX], line[512];
	const char *slash = strrchr(__FILE__, '/');
	FILE *f;
	int lines = 0;

	snprintf(path, sizeof(path), "%.*s/size-vectors.txt",
		 slash ? (int)(slash - __FILE__) : 1, slash ? __FILE__ : ".");
	f = fopen(path, "r");
	CHECKF(f != NULL, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		char *tab;

		if (len && line[len - 1] == '\n')
			line[--len] = 0;
		if (!len || line[0] == '#')
			continue;
		tab = strchr(line, '\t');
		CHECKF(tab != NULL, "%s: no tab in '%s'", path, line);
		*tab = 0;
		check_line(line, tab + 1, strlen(tab + 1));
		lines++;
	}
	fclose(f);
	CHECKF(lines >= 40, "%s: only %d vectors", path, lines);
}

/* A spec field takes the same grammar (its own range checks come after). */
static void test_spec_field(void)
{
	struct xseg_config cfg;
	char err[256];

	CHECK(xseg_parse_spec("posix:s:1:1:1MiB", &cfg, err, sizeof(err)) == 0);
	CHECK(cfg.request_size == 1ull << 20);
	CHECK(xseg_parse_spec("posix:s:1:1:4kb:1T", &cfg, err, sizeof(err)) == -EINVAL);
	CHECKF(strstr(err, "extra_size") != NULL, "%s", err);
	CHECK(xseg_parse_spec("posix:s:1:1:0x1000", &cfg, err, sizeof(err)) == -EINVAL);
	CHECKF(strstr(err, "request_size") && strstr(err, "not a size"), "%s", err);
}

int main(void)
{
	RUN(test_vectors);
	RUN(test_spec_field);
	return 0;
}
