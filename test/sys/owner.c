/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: owner, group and mode of a live segment
 * (xseg_set_owner_mode, `xseg-tool config --set`, status). As root (skips
 * without root; fails under CI=true): nobody is refused root's 0600 posix
 * and file segments, cannot change their owner or mode itself (not even
 * through a group that admits it), and is admitted after root gives the
 * group nogroup rw (mode 0660); the file and the header change together and
 * `xseg-tool status` shows the file's real mode, flagging a chmod behind the
 * header's back as a MISMATCH; a bad mode is EINVAL and changes nothing;
 * giving the segment to nobody keeps destroy's proof (header uid = owner)
 * and lets nobody destroy it (in a sticky directory; in root's 0755 one the
 * unlink is refused and the segment is left unmarked and joinable).
 */
#include "segtest.h"
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sys/stat.h>
#include "xseg/xseg.h"
#include "sys/user/segtypes/owner.h"

static char dir[256];
static char err[512];
static char out[4096];

static void cleanup(void)
{
	if (getpid() != main_pid)
		return;
	remove_run_segments();
	remove_tree(dir);
}

/* As nobody: join @type:@name (0 or the error). */
static int join_as_nobody(const char *type, const char *name)
{
	pid_t pid;

	memset(res, 0, sizeof(*res));
	fflush(stdout);
	pid = xt_fork();
	if (pid == 0) {
		int e = 0;
		struct xseg *xs;

		become_nobody();
		xs = xseg_join(type, name, "posix", NULL, NULL, &e, res->err, sizeof(res->err));
		res->rc = xs ? 0 : e;
		if (xs)
			xseg_leave(xs);
		_exit(0);
	}
	CHECK(child_status(pid) == 0);
	printf("  nobody joins %s:%s: %d %s\n", type, name, res->rc, res->err);
	return res->rc;
}

/* As nobody: xseg_set_owner_mode(@type:@name, ...). */
static int set_as_nobody(const char *type, const char *name, uint32_t uid, uint32_t gid,
			 uint32_t mode)
{
	pid_t pid;

	memset(res, 0, sizeof(*res));
	fflush(stdout);
	pid = xt_fork();
	if (pid == 0) {
		become_nobody();
		res->rc = xseg_set_owner_mode(type, name, uid, gid, mode, res->err, sizeof(res->err));
		_exit(0);
	}
	CHECK(child_status(pid) == 0);
	printf("  nobody sets %s:%s: %d %s\n", type, name, res->rc, res->err);
	return res->rc;
}

/* The file at @path and its header agree on @uid, @gid, @mode (read, not joined). */
static void agree(const char *type, const char *name, const char *path, uint32_t uid,
		  uint32_t gid, uint32_t mode)
{
	static struct xseg_header h;
	uint32_t fu, fg, fm;
	int fd;

	CHECK(xseg_real_owner(type, name, &fu, &fg, &fm) == 0);
	CHECKF(fu == uid && fg == gid && fm == mode, "file: uid %u gid %u mode %04o", fu, fg, fm);
	fd = open(path, O_RDONLY | O_NOFOLLOW);
	CHECK(fd >= 0 && pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h));
	close(fd);
	CHECKF(h.uid == uid && h.gid == gid && h.mode == mode && h.cfg.mode == mode,
	       "header: uid %u gid %u mode %04o", h.uid, h.gid, h.mode);
}

static void group_grant(const char *type, const char *name, const char *path)
{
	char spec[PATH_MAX + 16], set[64];
	const uint32_t K = (uint32_t)-1;
	int rc;

	make_seg(type, name);
	snprintf(spec, sizeof(spec), "%s:%s", type, name);
	/* Before: refused, and nobody may not change that. */
	rc = join_as_nobody(type, name);
	CHECKF(rc == -EACCES || rc == -EPERM, "%d", rc);
	rc = set_as_nobody(type, name, K, nob_gid, 0660);
	CHECKF(rc == -EACCES || rc == -EPERM, "%d", rc);
	CHECK(strstr(res->err, "not changed"));
	CHECKF(run_tool(true, out, sizeof(out), "config", spec, "--set", "mode=0660") == 1, "%s", out);
	agree(type, name, path, 0, 0, 0600);
	/* A bad mode changes nothing. */
	CHECK(xseg_set_owner_mode(type, name, K, K, 0666, err, sizeof(err)) == -EINVAL);
	CHECK(xseg_set_owner_mode(type, name, K, K, 0460, err, sizeof(err)) == -EINVAL);
	agree(type, name, path, 0, 0, 0600);
	/* Root gives the group nogroup rw: nobody is admitted. */
	snprintf(set, sizeof(set), "mode=0660,group=%u", (unsigned int)nob_gid);
	CHECKF(run_tool(false, out, sizeof(out), "config", spec, "--set", set) == 0, "%s", out);
	agree(type, name, path, 0, nob_gid, 0660);
	CHECKF(join_as_nobody(type, name) == 0, "%s", res->err);
	/* Admitted by the group is not owning it: nobody still cannot change it. */
	CHECK(set_as_nobody(type, name, K, K, 0600) == -EPERM);
	CHECKF(strstr(res->err, "not by us"), "%s", res->err);
	agree(type, name, path, 0, nob_gid, 0660);
	/* status shows the truth: the file's mode, a header that disagrees. */
	CHECKF(run_tool(false, out, sizeof(out), "status", spec, NULL, NULL) == 0, "%s", out);
	CHECKF(strstr(out, "file      uid 0 gid") && !strstr(out, "MISMATCH"), "%s", out);
	CHECK(chmod(path, 0640) == 0);
	CHECKF(run_tool(false, out, sizeof(out), "status", spec, NULL, NULL) == 0, "%s", out);
	CHECKF(strstr(out, "mode 0640 (MISMATCH: the header says"), "%s", out);
	CHECK(xseg_set_owner_mode(type, name, K, K, 0600, err, sizeof(err)) == 0);
	agree(type, name, path, 0, nob_gid, 0600);
	CHECK(join_as_nobody(type, name) != 0);
	/* Given away: the header follows, so destroy's proof holds, for the new owner. */
	CHECKF(xseg_set_owner_mode(type, name, nob_uid, K, K, err, sizeof(err)) == 0, "%s", err);
	agree(type, name, path, nob_uid, nob_gid, 0600);
	CHECKF(join_as_nobody(type, name) == 0, "%s", res->err);
	if (!strcmp(type, "file")) {
		/* The directory (0755 root) refuses nobody's unlink: nothing is marked either. */
		static struct xseg_header h;
		int fd;

		CHECKF(run_tool(true, out, sizeof(out), "destroy", spec, NULL, NULL) == 1 &&
		       strstr(out, "cannot be removed"), "%s", out);
		fd = open(path, O_RDONLY | O_NOFOLLOW);
		CHECK(fd >= 0 && pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h));
		close(fd);
		CHECK(!(h.flags & XSEG_F_DESTROYED));
		CHECKF(join_as_nobody(type, name) == 0, "%s", res->err);
		CHECK(chmod(dir, 01777) == 0);
	}
	CHECKF(run_tool(true, out, sizeof(out), "destroy", spec, NULL, NULL) == 0, "%s", out);
	CHECK(access(path, F_OK) < 0 && errno == ENOENT);
}

static void test_posix(void)
{
	char path[256];
	const char *n = "own";
	char name[128];

	snprintf(name, sizeof(name), "%s%s", prefix, n);
	snprintf(path, sizeof(path), "/dev/shm/xseg.%s", name);
	group_grant("posix", name, path);
}

static void test_file(void)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/seg", dir);
	group_grant("file", path, path);
}

static void test_bad_input(void)
{
	uint32_t u, g, m;

	CHECK(xseg_parse_owner_set("mode=0660,group=0,owner=0", &u, &g, &m, err, sizeof(err)) == 0);
	CHECK(u == 0 && g == 0 && m == 0660);
	CHECK(xseg_parse_owner_set("mode=9", &u, &g, &m, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "octal"));
	CHECK(xseg_parse_owner_set("color=red", &u, &g, &m, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "unknown key 'color'"));
	CHECK(xseg_parse_owner_set("owner=no-such-user-xyz", &u, &g, &m, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "not a user name"));
	CHECK(xseg_parse_owner_set("mode=0600,mode=0660", &u, &g, &m, err, sizeof(err)) == -EINVAL);
	CHECK(xseg_set_owner_mode("heap", "x", 0, 0, 0600, err, sizeof(err)) == -ENOTSUP);
}

int main(void)
{
	xt_watchdog(60);
	segtest_start();
	RUN(test_bad_input);
	segtest_need(geteuid() == 0, "needs root (setuid children)");
	segtest_find_tool();
	res = xt_shared(sizeof(*res));
	snprintf(dir, sizeof(dir), "/tmp/xseg-owner-XXXXXX");
	CHECK(mkdtemp(dir));
	CHECK(chmod(dir, 0755) == 0);
	atexit(cleanup);
	RUN(test_posix);
	RUN(test_file);
	return 0;
}
