/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: xseg-bench against blockd on a temporary file: a --verify
 * mixed random run whose JSON (schemaVersion 1) must report every request,
 * no errors or mismatches, ordered percentiles, and the prefill; the file
 * then holds the seeded pattern; after a blockd restart a --no-prefill
 * check still verifies (the data persisted); one byte corrupted in the file
 * is reported as exactly one mismatch with exit status 1; three benches at
 * depth 32 at once; a --time run; usage errors exit 2.
 */
#include "peers.h"

#define MB (1024ull * 1024)

static struct xseg_config cfg;
static char spec[512];
static struct xseg *xs;

/* Run lib/user/bin/@name with @args; its stdout into @out. Returns the exit status. */
static int run_capture(const char *name, const char *const *args, char *out, size_t len)
{
	int fds[2], st;
	size_t got = 0;
	pid_t pid;
	char bin[PATH_MAX];
	const char *argv[40];
	int n = 0;

	tx_bin(name, bin, sizeof(bin));
	argv[n++] = name;
	while (*args && n < 39)
		argv[n++] = *args++;
	argv[n] = NULL;
	CHECK(pipe(fds) == 0);
	pid = xt_fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		ssize_t k = read(fds[0], out + got, len - 1 - got);

		if (k <= 0)
			break;
		got += (size_t)k;
		if (got == len - 1)
			break;
	}
	out[got] = 0;
	close(fds[0]);
	CHECK(waitpid(pid, &st, 0) == pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The number after "key": in @json (the first occurrence after @from, if given). */
static double jnum(const char *json, const char *from, const char *key)
{
	char pat[64];
	const char *p = from ? strstr(json, from) : json;

	CHECKF(p, "no '%s' in:\n%s", from, json);
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(p, pat);
	CHECKF(p, "no key '%s' in:\n%s", key, json);
	return strtod(p + strlen(pat), NULL);
}

static pid_t blockd(const char *file)
{
	const char *args[] = { "-q", "-g", spec, "-p", "1", "--file", file, "--size", "8M", "--create-file", NULL };
	pid_t pid = tp_start("blockd", args);

	tp_wait_bound(xs, 1, pid);
	return pid;
}

static char out[16384];

static void test_verify_json(void)
{
	const char *file = tp_path("bench.img");
	pid_t pid = blockd(file);
	const char *args[] = { "-g", spec, "--dst", "1", "--op", "mix", "--rwmix", "60", "--bs", "4K",
			       "--depth", "32", "-n", "5000", "--pattern", "rand", "--range", "4M",
			       "--target", "vol", "--verify", "--seed", "7", "--json", NULL };
	int st = run_capture("xseg-bench", args, out, sizeof(out));
	uint64_t seed = pattern_seed("vol", 3) ^ (7 * 0x9E3779B97F4A7C15ull), len;
	uint8_t *disk, want[4096];
	double p50, p90, p99, p999, max;

	CHECKF(st == 0, "exit %d:\n%s", st, out);
	CHECK(strstr(out, "\"schemaVersion\": 1"));
	CHECK(jnum(out, NULL, "requests") == 5000);
	CHECK(jnum(out, NULL, "reads") + jnum(out, NULL, "writes") == 5000);
	CHECK(jnum(out, NULL, "reads") > 0 && jnum(out, NULL, "writes") > 0);
	CHECK(jnum(out, NULL, "errors") == 0);
	CHECK(jnum(out, NULL, "mismatches") == 0);
	CHECK(jnum(out, NULL, "bytes") == 5000.0 * 4096);
	CHECK(jnum(out, NULL, "iops") > 0);
	CHECK(jnum(out, "\"prefill\"", "requests") == 1024);
	CHECK(strstr(out, "\"ok\": true"));
	p50 = jnum(out, "latencyUs", "p50");
	p90 = jnum(out, "latencyUs", "p90");
	p99 = jnum(out, "latencyUs", "p99");
	p999 = jnum(out, "latencyUs", "p99.9");
	max = jnum(out, "latencyUs", "max");
	CHECKF(jnum(out, "latencyUs", "min") <= p50 && p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max &&
	       p50 > 0, "percentiles out of order:\n%s", out);
	printf("  %s", strstr(out, "\"iops\""));
	/* The file holds the pattern over the range, zeros after it. */
	CHECK(tp_stop(pid) == 0);
	disk = tp_slurp(file, &len);
	CHECK(len == 8 * MB);
	for (uint64_t off = 0; off < 4 * MB; off += 4096) {
		pattern_fill(want, 4096, seed, off);
		CHECKF(!memcmp(disk + off, want, 4096), "file at %" PRIu64, off);
	}
	CHECK(tp_all_zero(disk + 4 * MB, 4 * MB));
	free(disk);
}

static void test_persist_and_corrupt(void)
{
	const char *file = tp_path("bench.img");
	pid_t pid = blockd(file);
	const char *check[] = { "-g", spec, "--dst", "1", "--op", "read", "-n", "1024", "--range", "4M",
				"--verify", "--no-prefill", "--seed", "7", "--json", NULL };
	int st, fd;
	uint8_t b;

	st = run_capture("xseg-bench", check, out, sizeof(out));
	CHECKF(st == 0 && jnum(out, NULL, "mismatches") == 0, "exit %d:\n%s", st, out);
	/* One byte changes behind blockd's back: one block of 1024 fails. */
	fd = open(file, O_RDWR);
	CHECK(fd >= 0);
	CHECK(pread(fd, &b, 1, 3 * MB + 17) == 1);
	b ^= 0x5A;
	CHECK(pwrite(fd, &b, 1, 3 * MB + 17) == 1);
	close(fd);
	st = run_capture("xseg-bench", check, out, sizeof(out));
	CHECKF(st == 1, "exit %d:\n%s", st, out);
	CHECK(jnum(out, NULL, "mismatches") == 1);
	CHECK(jnum(out, NULL, "errors") == 0);
	CHECK(strstr(out, "\"ok\": false"));
	/* Put it back: three benches at depth 32 at once, all verified. */
	fd = open(file, O_RDWR);
	b ^= 0x5A;
	CHECK(fd >= 0 && pwrite(fd, &b, 1, 3 * MB + 17) == 1);
	close(fd);
	{
		const char *mix[] = { "-g", spec, "--dst", "1", "--op", "mix", "--depth", "32", "-n", "3000",
				      "--pattern", "rand", "--range", "4M", "--verify", "--no-prefill", "--seed",
				      "7", NULL };
		pid_t p[3];

		for (int i = 0; i < 3; i++)
			p[i] = tp_start("xseg-bench", mix);
		for (int i = 0; i < 3; i++)
			CHECKF(tp_wait(p[i]) == 0, "bench %d failed", i);
	}
	CHECK(tp_stop(pid) == 0);
}

static void test_time_and_usage(void)
{
	const char *file = tp_path("bench.img");
	pid_t pid = blockd(file);
	const char *timed[] = { "-g", spec, "--dst", "1", "--op", "write", "--bs", "64K", "--time", "0.3",
				"--json", NULL };
	const char *bad1[] = { "-g", spec, NULL };
	const char *bad2[] = { "-g", spec, "--dst", "1", "--op", "erase", NULL };
	const char *bad3[] = { "-g", spec, "--dst", "1", "-n", "5", "--time", "1", NULL };
	const char *bad4[] = { "-g", spec, "--dst", "1", "--rwmix", "101", NULL };
	const char *past[] = { "-g", spec, "--dst", "1", "--range", "16M", "-n", "100", "--pattern", "rand",
			       "--json", NULL };
	int st = run_capture("xseg-bench", timed, out, sizeof(out));

	CHECKF(st == 0, "exit %d:\n%s", st, out);
	CHECK(jnum(out, NULL, "requests") > 0 && jnum(out, NULL, "writes") == jnum(out, NULL, "requests"));
	CHECK(jnum(out, "config", "time") == 0.3);
	CHECK(run_capture("xseg-bench", bad1, out, sizeof(out)) == 2);
	CHECK(run_capture("xseg-bench", bad2, out, sizeof(out)) == 2);
	CHECK(run_capture("xseg-bench", bad3, out, sizeof(out)) == 2);
	CHECK(run_capture("xseg-bench", bad4, out, sizeof(out)) == 2);
	/* Beyond the volume: blockd fails them (ENOSPC), the bench counts errors and exits 1. */
	st = run_capture("xseg-bench", past, out, sizeof(out));
	CHECKF(st == 1 && jnum(out, NULL, "errors") > 0, "exit %d:\n%s", st, out);
	CHECK(tp_stop(pid) == 0);
}

int main(void)
{
	xt_watchdog(180);
	cfg = tx_create("posix:%s:16:512:64K:0:12");
	xseg_format_spec(&cfg, spec, sizeof(spec));
	xs = tx_join(&cfg, "futex");
	RUN(test_verify_json);
	RUN(test_persist_and_corrupt);
	RUN(test_time_and_usage);
	xseg_leave(xs);
	return 0;
}
