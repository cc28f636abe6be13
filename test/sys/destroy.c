/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: destroy removes only what is provably an xseg segment of
 * ours. Through xseg_destroy_name_err() and `xseg-tool destroy` (which must
 * exit 1 and say "not removed"): a plain file, a FIFO, a directory, a
 * symlink to /dev/null and a symlink to a real segment, a file carrying the
 * xseg magic of another segment type (a posix segment copied to a file, a
 * file segment copied into /dev/shm) all survive; so do, as root, a char
 * device node made with mknod, a genuine segment chowned to nobody (header
 * creator uid != file owner) and, as nobody, root's segment. None of the
 * refusals marks the segment destroyed (it can still be joined). A genuine
 * file or posix segment is destroyed, xseg_destroy() of a handle refuses a
 * name that now holds another segment, and the posixfd FIFO directory of a
 * name is removed with the segment. Root-only cases are skipped (and fail
 * under CI=true) without root.
 */
#include "segtest.h"
#include <fcntl.h>
#include <limits.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include "xseg/xseg.h"

static char dir[256];		/* the run's folder, removed at exit */
static char err[512];
static char out[2048];			/* the tool's output */

static void cleanup(void)
{
	if (getpid() != main_pid)
		return;
	remove_run_segments();
	remove_tree(dir);
}

static const char *at(const char *leaf)
{
	static char buf[8][PATH_MAX];
	static unsigned int next;
	char *b = buf[next++ % 8];

	snprintf(b, PATH_MAX, "%s/%s", dir, leaf);
	return b;
}

/* Run `xseg-tool destroy SPEC` (as nobody if @nobody); its exit code, output in out. */
static int tool_destroy(const char *spec, bool nobody)
{
	return run_tool(nobody, out, sizeof(out), "destroy", spec, NULL, NULL);
}

/* Refused by the API and by the tool, with "not removed"; the entry survives. */
static void refused(const char *type, const char *name, const char *path, int code)
{
	char spec[PATH_MAX + 16];
	struct stat before, after;
	int r, rc;

	CHECK(lstat(path, &before) == 0);
	r = xseg_destroy_name_err(type, name, err, sizeof(err));
	printf("  %s:%s -> %d: %s\n", type, name, r, err);
	CHECKF(r == code, "%s:%s: %d, expected %d (%s)", type, name, r, code, err);
	CHECKF(strstr(err, "not removed"), "%s", err);
	snprintf(spec, sizeof(spec), "%s:%s", type, name);
	rc = tool_destroy(spec, false);
	CHECKF(rc == 1 && strstr(out, "not removed"), "xseg-tool destroy %s: exit %d: %s", spec,
	       rc, out);
	CHECKF(lstat(path, &after) == 0, "%s was removed", path);
	CHECK(before.st_ino == after.st_ino && before.st_dev == after.st_dev);
}

/* Can the segment still be joined (not marked destroyed)? */
static void joinable(const char *type, const char *name)
{
	int e = 0;
	struct xseg *xs = xseg_join(type, name, "posix", NULL, NULL, &e, err, sizeof(err));

	CHECKF(xs, "join %s:%s after a refused destroy: %d %s", type, name, e, err);
	xseg_leave(xs);
}

static void test_not_segments(void)
{
	const char *plain = at("v.txt"), *junk = at("junk"), *fifo = at("fifo");
	const char *sub = at("sub"), *lnull = at("null-link");
	char zero[8192] = { 0 };
	int fd;

	/* The reproducer: echo data > /tmp/v.txt. */
	fd = open(plain, O_WRONLY | O_CREAT | O_EXCL, 0644);
	CHECK(fd >= 0 && write(fd, "data\n", 5) == 5 && fchmod(fd, 0644) == 0);
	close(fd);
	refused("file", plain, plain, -EPERM);
	/* A 0600 file of our own, page-sized, without the magic. */
	fd = open(junk, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0 && write(fd, zero, sizeof(zero)) == (ssize_t)sizeof(zero));
	close(fd);
	refused("file", junk, junk, -EBADMSG);
	CHECK(strstr(err, "no xseg magic"));
	CHECK(mkfifo(fifo, 0600) == 0);
	refused("file", fifo, fifo, -EPERM);
	CHECK(strstr(err, "FIFO"));
	CHECK(mkdir(sub, 0700) == 0);
	refused("file", sub, sub, -EPERM);
	CHECK(strstr(err, "directory"));
	CHECK(symlink("/dev/null", lnull) == 0);
	refused("file", lnull, lnull, -EPERM);
	CHECK(strstr(err, "symbolic link"));
	CHECK(access("/dev/null", F_OK) == 0);
}

static void test_symlink_to_segment(void)
{
	const char *seg = at("seg"), *link = at("seg-link");

	make_seg("file", seg);
	CHECK(symlink(seg, link) == 0);
	refused("file", link, link, -EPERM);
	CHECK(access(seg, F_OK) == 0);
	joinable("file", seg);
	CHECKF(xseg_destroy_name_err("file", seg, err, sizeof(err)) == 0, "%s", err);
	CHECK(access(seg, F_OK) < 0 && errno == ENOENT);
}

/* The magic is right, the type is not: a copy of a segment of another type. */
static void test_other_type(void)
{
	const char *p = pname("typed"), *pcopy = at("posix-copy");
	const char *f = at("fseg"), *fcopy = pname("from-file");
	char shm[PATH_MAX];

	make_seg("posix", p);
	snprintf(shm, sizeof(shm), "/dev/shm/xseg.%s", p);
	copy_file(shm, pcopy, 0600);
	refused("file", pcopy, pcopy, -EBADMSG);
	CHECKF(strstr(err, "type file") && strstr(err, "'posix'"), "%s", err);

	make_seg("file", f);
	snprintf(shm, sizeof(shm), "/dev/shm/xseg.%s", fcopy);
	copy_file(f, shm, 0600);
	refused("posix", fcopy, shm, -EBADMSG);
	joinable("posix", p);
	CHECK(xseg_destroy_name("posix", p) == 0 && xseg_destroy_name("file", f) == 0);
}

/* A genuine segment goes, with its posixfd FIFO directory; twice is ENOENT. */
static void test_genuine(void)
{
	const char *p = pname("real"), *f = at("real");
	char spec[PATH_MAX + 16], fifo[PATH_MAX];
	int e = 0;
	struct xseg *xs;

	make_seg("posix", p);
	xs = xseg_join("posix", p, "posixfd", NULL, NULL, &e, err, sizeof(err));
	CHECKF(xs, "%d %s", e, err);
	CHECK(xseg_bind_port(xs, 1, 0) == 1);
	{
		struct xseg_seg_ident id;

		xseg_seg_ident(xs, &id);
		snprintf(fifo, sizeof(fifo), "%s/posix.%016llx/1", at("fifos"),
			 (unsigned long long)id.id);
	}
	CHECKF(access(fifo, F_OK) == 0, "%s", fifo);
	xseg_leave(xs);
	snprintf(spec, sizeof(spec), "posix:%s", p);
	CHECKF(tool_destroy(spec, false) == 0, "%s", out);
	*strrchr(fifo, '/') = 0;
	CHECKF(access(fifo, F_OK) < 0 && errno == ENOENT, "%s survived", fifo);
	CHECKF(xseg_destroy_name_err("posix", p, err, sizeof(err)) == -ENOENT, "%s", err);
	CHECK(strstr(err, "does not exist"));
	make_seg("file", f);
	CHECKF(xseg_destroy_name_err("file", f, err, sizeof(err)) == 0, "%s", err);
	CHECK(access(f, F_OK) < 0);
	CHECK(tool_destroy(spec, false) == 1);
}

/* xseg_destroy(handle) removes its own segment, never a newer one of the name. */
static void test_handle_replaced(void)
{
	const char *p = pname("again");
	struct xseg *old, *cur;
	int e = 0;

	make_seg("posix", p);
	old = xseg_join("posix", p, "posix", NULL, NULL, &e, err, sizeof(err));
	CHECKF(old, "%d %s", e, err);
	CHECK(xseg_destroy_name("posix", p) == 0);
	make_seg("posix", p);
	CHECK(xseg_destroy(old) == -EBUSY);
	joinable("posix", p);
	xseg_leave(old);
	cur = xseg_join("posix", p, "posix", NULL, NULL, &e, err, sizeof(err));
	CHECKF(cur, "%d %s", e, err);
	CHECK(xseg_destroy(cur) == 0);
	xseg_leave(cur);
	CHECK(xseg_destroy_name("posix", p) == -ENOENT);
}

/* As root: a device node, someone else's file, a chowned segment; as nobody: root's. */
static void test_root_cases(void)
{
	const char *dev = at("chardev"), *p = pname("chowned"), *f = at("chowned");
	const char *mine = pname("roots"), *sq = pname("squat");
	char shm[PATH_MAX], spec[PATH_MAX];
	int fd;

	if (geteuid() != 0) {
		CHECKF(!getenv("CI") || strcmp(getenv("CI"), "true"),
		       "the root-only cases need root under CI=true");
		printf("  skipped: the root-only cases need root\n");
		return;
	}
	/* /dev/null's numbers: removing the node is harmless, but it must stay. */
	CHECK(mknod(dev, S_IFCHR | 0600, makedev(1, 3)) == 0);
	refused("file", dev, dev, -EPERM);
	CHECK(strstr(err, "character device"));

	/* A genuine root segment given to nobody: the header says uid 0. */
	make_seg("posix", p);
	snprintf(shm, sizeof(shm), "/dev/shm/xseg.%s", p);
	CHECK(chown(shm, nob_uid, nob_gid) == 0);
	refused("posix", p, shm, -EPERM);
	CHECKF(strstr(err, "creator uid 0"), "%s", err);
	make_seg("file", f);
	CHECK(chown(f, nob_uid, nob_gid) == 0);
	refused("file", f, f, -EPERM);

	/* nobody's squatted /dev/shm name with junk in it: not even root removes it. */
	snprintf(shm, sizeof(shm), "/dev/shm/xseg.%s", sq);
	fd = open(shm, O_RDWR | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0 && ftruncate(fd, 8192) == 0 && fchown(fd, nob_uid, nob_gid) == 0);
	close(fd);
	refused("posix", sq, shm, -EBADMSG);

	/* nobody may not destroy root's segment, and its try marks nothing. */
	make_seg("posix", mine);
	snprintf(spec, sizeof(spec), "posix:%s", mine);
	CHECKF(tool_destroy(spec, true) == 1, "%s", out);
	printf("  as nobody: %s", out);
	snprintf(shm, sizeof(shm), "/dev/shm/xseg.%s", mine);
	CHECK(access(shm, F_OK) == 0);
	joinable("posix", mine);
	CHECK(xseg_destroy_name("posix", mine) == 0);
}

int main(void)
{
	xt_watchdog(60);
	segtest_start();
	segtest_find_tool();
	snprintf(dir, sizeof(dir), "/tmp/xseg-destroy-XXXXXX");
	CHECK(mkdtemp(dir));
	CHECK(chmod(dir, 0755) == 0);	/* nobody's child must reach it */
	atexit(cleanup);
	CHECK(setenv("XSEG_FIFO_DIR", at("fifos"), 1) == 0);
	RUN(test_not_segments);
	RUN(test_symlink_to_segment);
	RUN(test_other_type);
	RUN(test_genuine);
	RUN(test_handle_replaced);
	RUN(test_root_cases);
	return 0;
}
