/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: a test stopped from outside still cleans up after itself
 * (test/xtest.h, xt_fatal): a test program that made a segment and is then
 * sent SIGTERM (what the runner's timeout sends first) or SIGINT, or whose
 * own watchdog fires, exits 1 with a message and its segment is gone; a
 * process a test forked takes SIGTERM's default action, as before.
 */
#include <fcntl.h>
#include "xtest.h"
#include "xseg/xseg.h"
#include "common.h"

/* The victim: make a segment, say its name, wait to be stopped. */
static _Noreturn void victim(const char *how)
{
	struct xseg_config cfg = tx_create("posix:%s:4:8:4K:0:12");
	char line[XSEG_NAME_LEN + 2];
	int n = snprintf(line, sizeof(line), "%s\n", cfg.name);

	/* write(), not stdio: a stop must not find a stdio buffer half flushed. */
	CHECK(write(1, line, (size_t)n) == n);
	if (!strcmp(how, "watchdog"))
		xt_watchdog(1);
	for (;;)
		pause();
}

/* Run a victim, stop it by @sig (0: its watchdog fires), check what is left. */
static void stop_victim(int sig, const char *how)
{
	char name[XSEG_NAME_LEN] = "", err[256];
	struct xseg_peek pk;
	int fds[2], st;
	ssize_t n;
	pid_t pid;

	CHECK(pipe(fds) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl("/proc/self/exe", "cleanup", "--victim", how, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	n = read(fds[0], name, sizeof(name) - 1);
	close(fds[0]);
	CHECKF(n > 1, "the victim said no segment name");
	name[strcspn(name, "\n")] = 0;
	CHECKF(xseg_peek("posix", name, &pk, err, sizeof(err)) == 0, "%s: %s", name, err);
	if (sig)
		CHECK(kill(pid, sig) == 0);
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 1, "%s: status 0x%x, not exit 1", how, st);
	CHECKF(xseg_peek("posix", name, &pk, err, sizeof(err)) == -ENOENT,
	       "%s: segment %s is still there", how, name);
}

static void test_sigterm(void)
{
	stop_victim(SIGTERM, "term");
}

static void test_sigint(void)
{
	stop_victim(SIGINT, "int");
}

static void test_watchdog(void)
{
	stop_victim(0, "watchdog");
}

/* A forked child is not the test: SIGTERM kills it, no cleanup of ours runs. */
static void test_forked_child_default(void)
{
	int st;
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0) {
		for (;;)
			pause();
	}
	CHECK(kill(pid, SIGTERM) == 0);
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "status 0x%x", st);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--victim"))
		victim(argv[2]);
	xt_watchdog(60);
	RUN(test_sigterm);
	RUN(test_sigint);
	RUN(test_watchdog);
	RUN(test_forked_child_default);
	return 0;
}
