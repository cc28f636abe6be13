/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: fuzz target of the spec parser (xseg/spec.c). Any input
 * either fails with -EINVAL and a bounded message that names a field, or
 * parses to a config that passes xseg_check_config, formats to a canonical
 * spec and parses back to the identical config. Built by test/fuzz/Makefile
 * with libFuzzer (-DXSEG_LIBFUZZER); the plain build (make user) is a
 * replay test instead: the seed corpus, files given as arguments, and a
 * deterministic mutation loop (XSEG_SEED, XSEG_FUZZ_ITERS).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "xseg/xseg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define GUARD 32
#define ERRLEN 192

static const char *const fields[] = {
	"spec", "type", "name", "nr_ports", "nr_requests", "request_size", "extra_size",
	"page_shift", "dynports", "mode", "group", "autorm", "buffers", "quota_requests",
	"quota_buffer", "huge", "quota_types", "max_hops", "peer_types", "max_requests",
};

static void die(const char *what, const char *spec, const char *detail)
{
	fprintf(stderr, "spec_fuzz: %s\n  spec:   '%s'\n  detail: '%s'\n", what, spec, detail);
	abort();
}

static void check_guard(const unsigned char *g, const char *where, const char *spec)
{
	for (int i = 0; i < GUARD; i++)
		if (g[i] != 0xEE)
			die("write outside the buffer", spec, where);
}

static bool names_field(const char *msg)
{
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		size_t n = strlen(fields[i]);

		if (!strncmp(msg, fields[i], n) && msg[n] == ':' && msg[n + 1] == ' ' && msg[n + 2])
			return true;
	}
	return false;
}

/* A config and an error buffer, each between guard bytes. */
struct arena {
	unsigned char g0[GUARD];
	struct xseg_config cfg;
	unsigned char g1[GUARD];
	char err[ERRLEN];
	unsigned char g2[GUARD];
};

static void arena_init(struct arena *a)
{
	memset(a, 0xEE, sizeof(*a));
}

static void arena_check(const struct arena *a, const char *spec)
{
	check_guard(a->g0, "before cfg", spec);
	check_guard(a->g1, "after cfg", spec);
	check_guard(a->g2, "after err", spec);
}

static void check_spec(const char *spec, size_t small)
{
	struct arena a, b, s;
	char out[512], out2[512], *dyn;
	int r, n, n2;

	arena_init(&a);
	r = xseg_parse_spec(spec, &a.cfg, a.err, sizeof(a.err));
	arena_check(&a, spec);
	if (!memchr(a.err, 0, sizeof(a.err)))
		die("error message not NUL-terminated", spec, "");

	/* The same call with a short error buffer: same result, a prefix of the message. */
	arena_init(&s);
	if (xseg_parse_spec(spec, &s.cfg, s.err, small) != r)
		die("result depends on the error buffer size", spec, a.err);
	arena_check(&s, spec);
	for (size_t i = small; i < sizeof(s.err); i++)
		if ((unsigned char)s.err[i] != 0xEE)
			die("error message overran its length", spec, a.err);
	if (small && strncmp(s.err, a.err, strlen(s.err)))
		die("short message is not a prefix of the full one", spec, s.err);
	if (small && strlen(s.err) != (strlen(a.err) < small - 1 ? strlen(a.err) : small - 1))
		die("short message has the wrong length", spec, s.err);
	if (r) {
		if (r != -EINVAL)
			die("error other than -EINVAL", spec, a.err);
		if (!names_field(a.err))
			die("message does not start with a field name", spec, a.err);
		return;
	}
	if (a.err[0])
		die("message on success", spec, a.err);
	if (xseg_check_config(&a.cfg, a.err, sizeof(a.err)))
		die("parsed config fails xseg_check_config", spec, a.err);

	n = xseg_format_spec(&a.cfg, out, sizeof(out));
	if (n <= 0 || (size_t)n >= sizeof(out) || strlen(out) != (size_t)n)
		die("format length", spec, out);
	/* The length needed is the length written with a larger buffer too. */
	dyn = malloc((size_t)n + 1);
	if (!dyn || xseg_format_spec(&a.cfg, dyn, (size_t)n + 1) != n || strcmp(dyn, out))
		die("format into an exact buffer", spec, out);
	free(dyn);
	if (xseg_format_spec(&a.cfg, NULL, 0) != n)
		die("format length without a buffer", spec, out);

	arena_init(&b);
	if (xseg_parse_spec(out, &b.cfg, b.err, sizeof(b.err)))
		die("canonical form does not parse", spec, b.err);
	arena_check(&b, out);
	if (memcmp(&a.cfg, &b.cfg, sizeof(a.cfg)))
		die("canonical form parses to another config", spec, out);
	n2 = xseg_format_spec(&b.cfg, out2, sizeof(out2));
	if (n2 != n || strcmp(out, out2))
		die("canonical form is not stable", out, out2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *spec = malloc(size + 1);

	if (!spec)
		return 0;
	memcpy(spec, data, size);
	spec[size] = '\0';
	/* A short error buffer size picked from the input, 0..31. */
	check_spec(spec, size ? data[size - 1] % 32 : 0);
	free(spec);
	return 0;
}

#ifndef XSEG_LIBFUZZER
/* ------------------------------------------------ the plain (replay) build */
#include "replay.h"

static const char *const builtin[] = {
	"posix", "posix:demo:dynports=4", "posix:demo::512", "file:/tmp/x.seg:8:64:1M:4M:12",
	"heap:h:1:1:4K:0:12:mode=0660:group=0:autorm=yes:buffers=8K*2,1M*1",
	"segdev:s:4096:1048576:1G:64G:21", "posix:x:buffers=4K*0", "posix:x:mode=0400",
	"posix:x:16:256:3000", "::::::", "",
};

/* The seed corpus next to this source file (or under $XSEG_HOME). */
static void test_corpus(void)
{
	for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
		LLVMFuzzerTestOneInput((const uint8_t *)builtin[i], strlen(builtin[i]));
		add_seed(builtin[i], strlen(builtin[i]));
	}
	/* The built-in seeds are enough to go on without the folder, not with an empty one. */
	CHECK(replay_corpus("spec") != 0);
}

/* Mutate the seeds the way a fuzzer would, deterministically per seed. */
static void test_mutations(void)
{
	static const char alphabet[] = ":=*,0123456789KMGBikmgb/.-_ ayeostrufl\x01\xff";
	static const char *const tokens[] = {
		"posix", "file", "heap", "segdev", "dynports=", "mode=", "group=", "autorm=",
		"buffers=", "64K", "1G", "4096", "*", ",", ":", "18446744073709551616", "0777",
	};
	uint64_t s = xt_seed();
	long iters = xt_env_long("XSEG_FUZZ_ITERS", 200000);
	char buf[600];

	for (long it = 0; it < iters; it++) {
		int k = (int)(xt_rand(&s) % (uint64_t)nr_seeds);
		size_t n = seed_len[k];
		int muts = 1 + (int)(xt_rand(&s) % 4);

		memcpy(buf, seeds[k], n);
		while (muts--) {
			size_t at = n ? xt_rand(&s) % (n + 1) : 0;
			const char *t;
			size_t tl;

			switch (xt_rand(&s) % 5) {
			case 0:		/* replace a byte */
				if (at < n)
					buf[at] = alphabet[xt_rand(&s) % (sizeof(alphabet) - 1)];
				break;
			case 1:		/* delete a run */
				if (at < n) {
					size_t dl = 1 + xt_rand(&s) % (n - at);

					memmove(buf + at, buf + at + dl, n - at - dl);
					n -= dl;
				}
				break;
			case 2:		/* insert a byte */
				if (n < 500) {
					memmove(buf + at + 1, buf + at, n - at);
					buf[at] = alphabet[xt_rand(&s) % (sizeof(alphabet) - 1)];
					n++;
				}
				break;
			default:	/* insert a token */
				t = tokens[xt_rand(&s) % (sizeof(tokens) / sizeof(tokens[0]))];
				tl = strlen(t);
				if (n + tl < 500) {
					memmove(buf + at + tl, buf + at, n - at);
					memcpy(buf + at, t, tl);
					n += tl;
				}
				break;
			}
		}
		LLVMFuzzerTestOneInput((const uint8_t *)buf, n);
	}
}

#endif
