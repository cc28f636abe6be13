/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test/ceph/ceph.h - a real one-node Ceph cluster for a C test, through
 * tools/ceph/cluster: started in a fresh /tmp/xseg-ceph-XXXXXX, and stopped
 * and removed whichever way the test ends: at exit, and by a guardian
 * process that waits for the test to die (SIGKILL, a timeout of the runner)
 * and then stops it. Tests skip (77) without Ceph or without radosd (a
 * failure under CI=true, tools/run-tests).
 */
#ifndef TEST_CEPH_H
#define TEST_CEPH_H

#include "../peers/peers.h"

static char tc_home[PATH_MAX];		/* the source tree (tools/ceph/cluster) */
static char tc_dir[64], tc_conf[128];
static pid_t tc_owner;

/* The source tree: from lib/user[-san]/test/ceph/<test>, four levels up. */
static inline const char *tc_tool(void)
{
	static char tool[PATH_MAX + 32];
	const char *env = getenv("XSEG_HOME");

	if (!tc_home[0]) {
		if (env && *env) {
			snprintf(tc_home, sizeof(tc_home), "%s", env);
		} else {
			ssize_t n = readlink("/proc/self/exe", tc_home, sizeof(tc_home) - 1);

			CHECK(n > 0);
			tc_home[n] = 0;
			for (int i = 0; i < 5; i++) {
				char *p = strrchr(tc_home, '/');

				CHECK(p);
				*p = 0;
			}
		}
	}
	snprintf(tool, sizeof(tool), "%s/tools/ceph/cluster", tc_home);
	return tool;
}

/* Run `cluster CMD DIR [ARG]`; its exit status. */
static inline int tc_cluster(const char *cmd, const char *arg)
{
	char line[PATH_MAX + 256];
	int st;

	snprintf(line, sizeof(line), "'%s' %s '%s' %s", tc_tool(), cmd, tc_dir, arg ? arg : "");
	st = system(line);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void tc_stop(void)
{
	if (getpid() != tc_owner || !tc_dir[0])
		return;
	tc_cluster("stop", "--rm");
	rmdir(tc_dir);		/* a start that failed before its marker: empty */
	tc_dir[0] = 0;
}

/* Skip unless Ceph's daemons and @peer are installed/built. */
static inline void tc_require(const char *peer)
{
	char bin[PATH_MAX];

	if (system("command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null && "
		   "command -v ceph >/dev/null"))
		xt_skip("Ceph is not installed (tools/install-deps check)");
	if (access(tc_tool(), X_OK))
		xt_skip("tools/ceph/cluster not found (set XSEG_HOME)");
	tx_bin(peer, bin, sizeof(bin));
	if (access(bin, X_OK))
		xt_skip("radosd is not built (librados-dev missing: tools/install-deps check)");
}

/*
 * tc_start - start the cluster; returns the path of its ceph.conf. A
 * guardian process stops it if the test dies without its atexit.
 */
static inline const char *tc_start(void)
{
	int fds[2];
	pid_t g;
	FILE *f;
	char cmd[PATH_MAX + 128];
	size_t n;

	snprintf(tc_dir, sizeof(tc_dir), "/tmp/xseg-ceph-XXXXXX");
	CHECK(mkdtemp(tc_dir));
	tc_owner = getpid();
	atexit(tc_stop);
	CHECK(pipe2(fds, O_CLOEXEC) == 0);
	g = fork();
	CHECK(g >= 0);
	if (g == 0) {
		char c, marker[96];

		/* The guardian: outlives the test, and stops the cluster when it is gone. */
		setsid();
		signal(SIGTERM, SIG_IGN);
		signal(SIGINT, SIG_IGN);
		alarm(0);
		close(fds[1]);
		while (read(fds[0], &c, 1) != 0 && errno == EINTR)
			;
		snprintf(marker, sizeof(marker), "%s/.xseg-ceph-cluster", tc_dir);
		if (access(marker, F_OK) == 0)
			execl(tc_tool(), "cluster", "stop", tc_dir, "--rm", (char *)NULL);
		_exit(0);
	}
	close(fds[0]);		/* fds[1] stays open (close-on-exec) until we are gone */
	snprintf(cmd, sizeof(cmd), "'%s' start '%s' --timeout 90", tc_tool(), tc_dir);
	f = popen(cmd, "r");
	CHECK(f);
	n = fread(tc_conf, 1, sizeof(tc_conf) - 1, f);
	tc_conf[n] = 0;
	CHECKF(pclose(f) == 0, "%s failed", cmd);
	tc_conf[strcspn(tc_conf, "\n")] = 0;
	CHECK(access(tc_conf, R_OK) == 0);
	return tc_conf;
}

#endif
