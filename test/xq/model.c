/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: the recovery protocol of xq's tracked operations is checked
 * by spin through every interleaving of a small configuration
 * (test/xq/model/recover.pml: a slow consumer, a consumer that queues again,
 * a producer, a reclaimer and recoverers, with any participant killed before
 * any step and a recoverer killed too): no index is ever given back twice or
 * lost, and every dead hold is settled. The same model with the rule before
 * the claim word (-DOLD_RULE) must fail: that proves the model can see the
 * double give-back. Skips without spin or a C compiler (a failure under CI).
 */
#include <libgen.h>
#include <sys/stat.h>
#include "xtest.h"

static char dir[] = "/tmp/xq-model.XXXXXX";
static const char *files[] = { "pan", "pan.b", "pan.c", "pan.h", "pan.m", "pan.p",
			       "pan.t", "recover.pml.trail", "out.txt", "recover.pml" };
static char paths[sizeof(files) / sizeof(files[0])][sizeof(dir) + 32];
static volatile sig_atomic_t made;

/* Remove only what we made: the files spin and pan write in our mkdtemp dir.
 * Async-signal-safe: the watchdog calls it too. */
static void cleanup(void)
{
	if (!made)
		return;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(paths[i]);
	rmdir(dir);
}

static void on_alarm(int sig)
{
	static const char msg[] = "FAIL: watchdog expired (a hang)\n";

	(void)sig;
	cleanup();
	if (write(2, msg, sizeof(msg) - 1) < 0) { /* nothing to do */ }
	_exit(1);	/* pan and its shell die with us (PR_SET_PDEATHSIG) */
}

static bool have(const char *tool)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

/* Run one shell command in our dir as a child that dies with us. */
static int sh(const char *cmd)
{
	pid_t pid = xt_fork();
	int st;

	if (pid == 0) {
		if (chdir(dir) != 0)
			_exit(127);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	CHECK(waitpid(pid, &st, 0) == pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* What pan said: the number after "errors:", or -1; and how many states. */
static long pan_result(long *states, bool *depth_ok)
{
	char path[sizeof(dir) + 16], line[512];
	long errors = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/out.txt", dir);
	f = fopen(path, "r");
	CHECKF(f, "no pan output in %s", path);
	*states = -1;
	*depth_ok = true;
	while (fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, "errors: ");

		if (p)
			errors = strtol(p + 8, NULL, 10);
		if (strstr(line, "states, stored"))
			*states = strtol(line, NULL, 10);
		if (strstr(line, "max search depth too small"))
			*depth_ok = false;
	}
	fclose(f);
	return errors;
}

/* Build and run the model with @flags; returns pan's error count. */
static long check(const char *flags)
{
	char cmd[512];
	long states, errors;
	bool depth_ok;

	snprintf(cmd, sizeof(cmd),
		 "spin -a %s recover.pml >out.txt 2>&1 && "
		 "${CC:-cc} -O0 -w -DSAFETY -DCOLLAPSE -DMEMLIM=2048 -o pan pan.c >>out.txt 2>&1 && "
		 "exec ./pan -m100000 >out.txt 2>&1", flags);
	CHECKF(sh(cmd) == 0, "spin or pan failed for [%s]; see %s/out.txt", flags, dir);
	errors = pan_result(&states, &depth_ok);
	CHECKF(depth_ok, "[%s]: the search was cut at its depth limit", flags);
	CHECKF(errors >= 0, "[%s]: pan printed no result", flags);
	printf("[%s] %ld states, %ld errors\n", flags, states, errors);
	fflush(stdout);
	return errors;
}

static void copy_model(void)
{
	char src[4096], dst[sizeof(dir) + 16], buf[8192];
	char here[] = __FILE__;
	FILE *in, *out;
	size_t n;

	snprintf(src, sizeof(src), "%s/model/recover.pml", dirname(here));
	snprintf(dst, sizeof(dst), "%s/recover.pml", dir);
	in = fopen(src, "r");
	CHECKF(in, "cannot read the model %s", src);
	out = fopen(dst, "w");
	CHECK(out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		CHECK(fwrite(buf, 1, n, out) == n);
	fclose(in);
	CHECK(fclose(out) == 0);
}

/*
 * The claim rule: no interleaving gives an index back twice or loses it.
 * XSEG_MODEL_FULL=1 adds the larger configurations (minutes, GBs).
 */
static void test_claim_rule_holds(void)
{
	/* the slow consumer and the reclaimer: any two of them killed at any
	 * step, and the first recoverer too */
	CHECK(check("-DACTKILL=2 -DRECKILL=1 -DNO_D") == 0);
	/* with a consumer that queues its index again: two killed */
	CHECK(check("-DACTKILL=2 -DRECKILL=0") == 0);
	if (xt_env_long("XSEG_MODEL_FULL", 0)) {
		CHECK(check("-DACTKILL=1 -DRECKILL=1") == 0);
		CHECK(check("-DACTKILL=1 -DRECKILL=0 -DWITH_P -DNO_D") == 0);
		CHECK(check("-DACTKILL=2 -DRECKILL=1 -DWITH_P -DNO_D") == 0);
	}
}

/* The rule before it (taken marks, generations): spin finds the trace. */
static void test_old_rule_fails(void)
{
	CHECK(check("-DOLD_RULE -DACTKILL=1 -DRECKILL=0") > 0);
	CHECK(check("-DOLD_RULE -DACTKILL=1 -DRECKILL=0 -DWITH_P -DNO_D") > 0);
}

int main(void)
{
	xt_watchdog(280);
	if (!have("spin"))
		xt_skip("spin is not installed (tools/install-deps check)");
	if (!have("${CC:-cc}"))
		xt_skip("no C compiler for spin's verifier");
	CHECK(mkdtemp(dir) != NULL);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		snprintf(paths[i], sizeof(paths[i]), "%s/%s", dir, files[i]);
	made = 1;
	atexit(cleanup);
	signal(SIGALRM, on_alarm);
	copy_model();
	RUN(test_old_rule_fails);
	RUN(test_claim_rule_holds);
	return 0;
}
