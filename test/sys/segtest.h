/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test/sys/segtest.h - what the segment-type tests share: a run prefix for
 * every segment name they make, and the removal of those segments (and of a
 * folder tree) at exit of the test process, even when a CHECK fails; the
 * user nobody and children that become it; running lib/<domain>/bin/xseg-tool;
 * making a small segment; the skip that CI=true turns into a failure.
 */
#ifndef TEST_SYS_SEGTEST_H
#define TEST_SYS_SEGTEST_H

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "xtest.h"
#include "xseg/xseg.h"

static pid_t main_pid;
static char prefix[64];		/* "xt-<xt_tag()>-": every posix and heap name of this run */
static uid_t nob_uid __attribute__((unused)) = 65534;	/* nobody, once segtest_start() ran */
static gid_t nob_gid __attribute__((unused)) = 65534;
static char tool[PATH_MAX] __attribute__((unused));	/* xseg-tool, by segtest_find_tool() */

/* What a child reports back (in xt_shared() memory). */
struct result {
	int rc;
	uint64_t size;
	char err[512];
};
static struct result *res __attribute__((unused));

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	remove(path);
	return 0;
}

/* Remove /dev/shm/xseg.<prefix>* (test process only, not its children). */
static void remove_run_segments(void)
{
	struct dirent *de;
	char path[512];
	DIR *d;

	if (getpid() != main_pid)
		return;
	d = opendir("/dev/shm");
	if (!d)
		return;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "xseg.", 5) && !strncmp(de->d_name + 5, prefix, strlen(prefix))) {
			snprintf(path, sizeof(path), "/dev/shm/%s", de->d_name);
			unlink(path);
		}
	closedir(d);
}

/* Remove the folder tree @dir, if set. */
static inline void remove_tree(const char *dir)
{
	if (dir[0])
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * Start a run: main_pid, the run prefix, nobody's uid and gid. Returns
 * whether the user nobody exists (else the ids stay 65534).
 */
static inline bool segtest_start(void)
{
	struct passwd *pw = getpwnam("nobody");

	main_pid = getpid();
	snprintf(prefix, sizeof(prefix), "xt-%s-", xt_tag());
	if (!pw)
		return false;
	nob_uid = pw->pw_uid;
	nob_gid = pw->pw_gid;
	return true;
}

/* Unless @ok: skip the test (exit 77) saying @why; under CI=true, fail instead. */
static inline void segtest_need(bool ok, const char *why)
{
	if (ok)
		return;
	if (getenv("CI") && !strcmp(getenv("CI"), "true")) {
		fprintf(stderr, "FAIL: %s; CI=true does not allow a skip\n", why);
		exit(1);
	}
	xt_skip(why);
}

/* @tag with the run prefix: a name of this run (rotating static buffers). */
static inline const char *pname(const char *tag)
{
	static char buf[8][128];
	static unsigned int next;
	char *b = buf[next++ % 8];

	snprintf(b, 128, "%s%s", prefix, tag);
	return b;
}

/* In a child: become @uid/@gid with exactly @n supplementary @groups (else exit 90/91). */
static inline void become(uid_t uid, gid_t gid, size_t n, const gid_t *groups)
{
	if (setgroups(n, groups) || setgid(gid) || setuid(uid))
		_exit(90);
	if (geteuid() != uid || getegid() != gid)
		_exit(91);
}

/* In a child: become nobody, without supplementary groups. */
static inline void become_nobody(void)
{
	become(nob_uid, nob_gid, 0, NULL);
}

/* Reap the child @pid: its exit code, or 128 + the signal that killed it. */
static inline int child_status(pid_t pid)
{
	int st;

	CHECK(waitpid(pid, &st, 0) == pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * Set tool to lib/<domain>/bin/xseg-tool of the tree this test binary
 * (lib/<domain>/test/sys/<name>) was built in; skip if it is not built.
 */
static inline void segtest_find_tool(void)
{
	char self[PATH_MAX / 2];
	ssize_t n;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	CHECK(n > 0);
	self[n] = 0;
	for (int i = 0; i < 3; i++)
		*strrchr(self, '/') = 0;	/* .../lib/user/test/sys/x -> .../lib/user */
	snprintf(tool, sizeof(tool), "%s/bin/xseg-tool", self);
	if (access(tool, X_OK))
		xt_skip("lib/user/bin/xseg-tool is not built (make DOMAINS=user)");
}

/*
 * Run `xseg-tool A [B [C [D]]]` (NULL ends the arguments), as nobody if
 * @nobody; its stdout and stderr in @out (@outlen bytes). Returns its exit
 * code, or 128 + the signal that killed it.
 */
static inline int run_tool(bool nobody, char *out, size_t outlen, const char *a, const char *b,
			   const char *c, const char *d)
{
	int fds[2];
	ssize_t n, got = 0;
	pid_t pid;

	CHECK(pipe(fds) == 0);
	fflush(stdout);
	pid = xt_fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		if (nobody)
			become_nobody();
		execl(tool, "xseg-tool", a, b, c, d, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while ((n = read(fds[0], out + got, outlen - 1 - (size_t)got)) > 0)
		got += n;
	out[got] = 0;
	close(fds[0]);
	return child_status(pid);
}

/* Create the segment @type:@name, 4 ports, 16 requests, 4 KiB buffers. */
static inline void make_seg(const char *type, const char *name)
{
	struct xseg_config cfg;
	char spec[PATH_MAX + 64], e[512];

	snprintf(spec, sizeof(spec), "%s:%s:4:16:4K", type, name);
	CHECKF(xseg_parse_spec(spec, &cfg, e, sizeof(e)) == 0, "%s", e);
	CHECKF(xseg_create(&cfg, e, sizeof(e)) == 0, "%s", e);
}

/* Copy the file @from to a new file @to (O_EXCL: never over something), mode @mode. */
static inline void copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[65536];
	ssize_t n;
	int a = open(from, O_RDONLY), b = open(to, O_WRONLY | O_CREAT | O_EXCL, 0600);

	CHECK(a >= 0 && b >= 0);
	while ((n = read(a, buf, sizeof(buf))) > 0)
		CHECK(write(b, buf, (size_t)n) == n);
	CHECK(fchmod(b, mode) == 0);
	close(a);
	close(b);
}

#endif
