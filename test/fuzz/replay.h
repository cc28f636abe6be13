/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test/fuzz/replay.h - the plain (non-libFuzzer) build of a fuzz target, as
 * `make check` runs it: replay the seed corpus, keep the seeds for the
 * target's own deterministic mutations, and a main that also replays files
 * named on the command line (crash reproducers). The target defines
 * LLVMFuzzerTestOneInput, and test_corpus() / test_mutations().
 */
#ifndef TEST_FUZZ_REPLAY_H
#define TEST_FUZZ_REPLAY_H

#include <dirent.h>
#include "xtest.h"

#define MAX_SEEDS 256
#ifndef FZ_MAX_INPUT
#define FZ_MAX_INPUT 4096
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static void test_corpus(void);
static void test_mutations(void);

static uint8_t *seeds[MAX_SEEDS];
static size_t seed_len[MAX_SEEDS];
static int nr_seeds;

/* Keep a copy of @s (NUL-terminated too, for text targets) as a mutation seed. */
static void add_seed(const void *s, size_t n)
{
	if (nr_seeds == MAX_SEEDS)
		return;
	seeds[nr_seeds] = malloc(n + 1);
	CHECK(seeds[nr_seeds]);
	memcpy(seeds[nr_seeds], s, n);
	seeds[nr_seeds][n] = 0;
	seed_len[nr_seeds++] = n;
}

/* Run the target on the file @path (up to FZ_MAX_INPUT bytes) and keep it as a seed. */
static int replay_file(const char *path)
{
	uint8_t buf[FZ_MAX_INPUT];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	add_seed(buf, n);
	return 0;
}

/*
 * Replay test/fuzz/corpus/@name (under $XSEG_HOME, else next to this file).
 * Returns the number of files, or -1 if the folder is missing.
 */
static int replay_corpus(const char *name)
{
	const char *home = getenv("XSEG_HOME");
	char dir[4096];
	struct dirent *d;
	DIR *dp;
	int files = 0;

	if (home && *home) {
		snprintf(dir, sizeof(dir), "%s/test/fuzz/corpus/%s", home, name);
	} else {
		const char *slash = strrchr(__FILE__, '/');
		int len = slash ? (int)(slash - __FILE__) : 1;

		snprintf(dir, sizeof(dir), "%.*s/corpus/%s", len, slash ? __FILE__ : ".", name);
	}
	dp = opendir(dir);
	if (!dp)
		return -1;
	while ((d = readdir(dp))) {
		char path[8192];

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		CHECK(replay_file(path) == 0);
		files++;
	}
	closedir(dp);
	return files;
}

int main(int argc, char **argv)
{
	xt_watchdog(120);
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			CHECKF(replay_file(argv[i]) == 0, "cannot read %s", argv[i]);
		return 0;
	}
	RUN(test_corpus);
	RUN(test_mutations);
	return 0;
}

#endif
