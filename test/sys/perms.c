/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: owners, groups and hostile users against the posix and file
 * segment types, with real users (needs root; skips otherwise, fails under
 * CI=true): a 0600 segment of root is refused to nobody; a name squatted by
 * nobody (world-writable, or merely not ours, or a symlink) is refused to
 * root and root's create gets EEXIST; mode 0660 with a group admits exactly
 * the members of that group (supplementary or effective); a full tmpfs makes
 * create fail at once with ENOSPC and leave nothing behind (file on a 1 MiB
 * tmpfs; posix with a 1 MiB /dev/shm in a private mount namespace); and a
 * file segment on hugetlbfs, when the kernel has it.
 */
#include "segtest.h"
#include "sys/user/segtypes/segtype.h"
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#define KIB		1024ull
#define MIB		(1024ull * 1024ull)
#define XGID		4242u	/* a group nobody is not in unless we add it */

static const struct xseg_segtype_ops *posix = &xseg_segtype_posix;
static const struct xseg_segtype_ops *file = &xseg_segtype_file;

static char sharedir[64];	/* 01777, for squatting file segments */
static char mnt[64];		/* the small tmpfs, while mounted */
static char err[512];

static void cleanup(void)
{
	if (getpid() != main_pid)
		return;
	remove_run_segments();
	if (mnt[0]) {
		umount2(mnt, MNT_DETACH);
		rmdir(mnt);
	}
	remove_tree(sharedir);
}

static const char *shmpath(const char *name)
{
	static char buf[4][256];
	static unsigned int next;
	char *b = buf[next++ % 4];

	snprintf(b, 256, "/dev/shm/xseg.%s", name);
	return b;
}

/*
 * A child as @uid/@gid/@groups maps @name of @ops; if it succeeds it checks
 * word 0 is 0x1234 and writes 0xabcd to word 1. Returns the map result; the
 * message is in res->err.
 */
static int map_as(const struct xseg_segtype_ops *ops, const char *name, uid_t uid,
		  gid_t gid, size_t n, const gid_t *groups)
{
	pid_t pid;
	int st;

	memset(res, 0, sizeof(*res));
	fflush(stdout);
	pid = xt_fork();
	if (pid == 0) {
		volatile uint64_t *w;
		void *mem;

		become(uid, gid, n, groups);
		res->rc = ops->map(name, &mem, &res->size, res->err, sizeof(res->err));
		if (res->rc)
			_exit(0);
		w = mem;
		if (w[0] != 0x1234)
			_exit(3);
		w[1] = 0xabcd;
		ops->unmap(mem, res->size);
		_exit(0);
	}
	st = child_status(pid);
	CHECKF(st == 0, "child exit %d", st);
	if (res->err[0])
		printf("  as uid %u: %s\n", (unsigned int)uid, res->err);
	return res->rc;
}

/* Create @name (posix) as root with @mode/@gid and word 0 = 0x1234. */
static volatile uint64_t *make(const char *name, uint32_t mode, int32_t gid)
{
	void *mem;
	int rc = posix->create(name, 16 * KIB, mode, gid, &mem, err, sizeof(err));

	CHECKF(rc == 0, "%d %s", rc, err);
	((volatile uint64_t *)mem)[0] = 0x1234;
	return mem;
}

/* (1) What root keeps to itself, nobody cannot map. */
static void test_private(void)
{
	const char *a = pname("priv"), *b = pname("rootgrp"), *c = pname("gro");
	const char *o = pname("other");
	volatile uint64_t *m;
	int rc;

	m = make(a, 0600, -1);
	rc = map_as(posix, a, nob_uid, nob_gid, 0, NULL);
	CHECKF(rc == -EACCES || rc == -EPERM, "%d", rc);
	CHECK(strstr(res->err, a));
	CHECK(m[1] == 0);
	posix->unmap((void *)m, 16 * KIB);

	/* 0660 for a group nobody is not in. */
	m = make(b, 0660, 0);
	rc = map_as(posix, b, nob_uid, nob_gid, 0, NULL);
	CHECKF(rc == -EACCES, "%d", rc);
	posix->unmap((void *)m, 16 * KIB);

	/* 0640 admits a member to read only: map needs read-write. */
	m = make(c, 0640, XGID);
	rc = map_as(posix, c, nob_uid, nob_gid, 1, (gid_t[]){ XGID });
	CHECKF(rc == -EACCES, "%d", rc);
	posix->unmap((void *)m, 16 * KIB);

	/* Opened through "other" bits (set behind create's back): refused. */
	m = make(o, 0600, -1);
	CHECK(chmod(shmpath(o), 0606) == 0);
	rc = map_as(posix, o, nob_uid, nob_gid, 0, NULL);
	CHECKF(rc == -EPERM && strstr(res->err, "others"), "%d", rc);
	CHECK(m[1] == 0);
	posix->unmap((void *)m, 16 * KIB);

	CHECK(posix->destroy(a) == 0 && posix->destroy(b) == 0 && posix->destroy(c) == 0);
	CHECK(posix->destroy(o) == 0);
}

/* A child as nobody creates @path (0 for shm) with @mode, sized 16 KiB. */
static void squat(const char *shm, const char *path, mode_t mode, gid_t group)
{
	pid_t pid;

	fflush(stdout);
	pid = xt_fork();
	if (pid == 0) {
		int fd;

		become(nob_uid, nob_gid, 1, &group);
		umask(0);
		fd = shm ? shm_open(shm, O_CREAT | O_EXCL | O_RDWR, mode)
			 : open(path, O_CREAT | O_EXCL | O_RDWR, mode);
		if (fd < 0)
			_exit(2);
		if (ftruncate(fd, 16 * KIB) || fchown(fd, (uid_t)-1, group) ||
		    fchmod(fd, mode))
			_exit(3);
		_exit(0);
	}
	CHECK(child_status(pid) == 0);
}

static void expect_refused(const struct xseg_segtype_ops *ops, const char *name, int want,
			   const char *words)
{
	uint64_t size;
	void *mem;
	int rc;

	rc = ops->map(name, &mem, &size, err, sizeof(err));
	if (rc == 0)
		ops->unmap(mem, size);
	CHECKF(rc == want, "%s map '%s': %d, want %d (%s)", ops->name, name, rc, want, err);
	CHECKF(strstr(err, name) && strstr(err, words), "'%s' lacks '%s'", err, words);
	printf("  as root: %s\n", err);
	rc = ops->create(name, 16 * KIB, 0600, -1, &mem, err, sizeof(err));
	CHECKF(rc == -EEXIST, "%s create '%s': %d (%s)", ops->name, name, rc, err);
}

/* (2) Names squatted by another user are refused, and create says EEXIST. */
static void test_squatted(void)
{
	const char *a = pname("squat"), *b = pname("squat2"), *c = pname("squat3");
	char shm[256], fa[128], fb[128], owner[32];
	struct stat st;
	pid_t pid;

	snprintf(shm, sizeof(shm), "/xseg.%s", a);
	squat(shm, NULL, 0666, nob_gid);
	CHECK(stat(shmpath(a), &st) == 0 && st.st_uid == nob_uid &&
	      (st.st_mode & 0777) == 0666);
	snprintf(owner, sizeof(owner), "uid %u", (unsigned int)nob_uid);
	expect_refused(posix, a, -EPERM, owner);

	/* Not world-accessible, but not ours either. */
	snprintf(shm, sizeof(shm), "/xseg.%s", b);
	squat(shm, NULL, 0600, nob_gid);
	expect_refused(posix, b, -EPERM, "not by us");

	/* Group read-write, but for a group root is not in. */
	snprintf(shm, sizeof(shm), "/xseg.%s", c);
	squat(shm, NULL, 0660, XGID);
	expect_refused(posix, c, -EPERM, "not by us");

	/* file: a world-writable file and a symlink in a shared sticky dir. */
	snprintf(fa, sizeof(fa), "%s/squat", sharedir);
	snprintf(fb, sizeof(fb), "%s/link", sharedir);
	squat(NULL, fa, 0666, nob_gid);
	expect_refused(file, fa, -EPERM, "others");
	fflush(stdout);
	pid = xt_fork();
	if (pid == 0) {
		become(nob_uid, nob_gid, 0, NULL);
		_exit(symlink("/etc/passwd", fb) ? 2 : 0);
	}
	CHECK(child_status(pid) == 0);
	expect_refused(file, fb, -EPERM, "symbolic link");

	CHECK(posix->destroy(a) == 0 && posix->destroy(b) == 0 && posix->destroy(c) == 0);
	CHECK(unlink(fa) == 0 && unlink(fb) == 0);
}

/* (3) mode 0660 + a group admits the group's members, and nobody else. */
static void test_group(void)
{
	const char *a = pname("grp"), *b = pname("egid"), *c = pname("nobgrp");
	char shm[256];
	volatile uint64_t *m;
	uint64_t size;
	void *mem;
	pid_t pid;
	int rc;

	/* A supplementary group. */
	m = make(a, 0660, XGID);
	rc = map_as(posix, a, nob_uid, nob_gid, 1, (gid_t[]){ XGID });
	CHECKF(rc == 0, "%d %s", rc, res->err);
	CHECK(res->size == 16 * KIB && m[1] == 0xabcd);	/* shared both ways */
	m[1] = 0;
	rc = map_as(posix, a, nob_uid, nob_gid, 0, NULL);
	CHECKF(rc == -EACCES, "%d", rc);
	CHECK(strstr(res->err, "gid 4242"));
	posix->unmap((void *)m, 16 * KIB);

	/* The effective group. */
	m = make(b, 0660, (int32_t)nob_gid);
	rc = map_as(posix, b, nob_uid, nob_gid, 0, NULL);
	CHECKF(rc == 0, "%d %s", rc, res->err);
	CHECK(m[1] == 0xabcd);
	posix->unmap((void *)m, 16 * KIB);

	/*
	 * Root passes open()'s checks anyway: our own check decides. A segment
	 * nobody made 0660 for XGID admits a root process in XGID only.
	 */
	fflush(stdout);
	pid = xt_fork();
	if (pid == 0) {
		become(nob_uid, nob_gid, 1, (gid_t[]){ XGID });
		rc = posix->create(c, 16 * KIB, 0660, XGID, &mem, res->err, sizeof(res->err));
		if (rc)
			_exit(2);
		((volatile uint64_t *)mem)[0] = 0x1234;
		_exit(0);
	}
	CHECKF(child_status(pid) == 0, "%s", res->err);
	rc = map_as(posix, c, 0, 0, 1, (gid_t[]){ XGID });
	CHECKF(rc == 0, "%d %s", rc, res->err);
	rc = map_as(posix, c, 0, 0, 1, (gid_t[]){ 0 });
	CHECKF(rc == -EPERM, "%d", rc);
	rc = posix->map(c, &mem, &size, err, sizeof(err));	/* root, groups {0} */
	CHECKF(rc == -EPERM, "%d", rc);

	/* A non-member cannot give a segment a group. */
	fflush(stdout);
	pid = xt_fork();
	if (pid == 0) {
		become(nob_uid, nob_gid, 0, NULL);
		rc = posix->create(pname("nomember"), 16 * KIB, 0660, XGID, &mem,
				   res->err, sizeof(res->err));
		res->rc = rc;
		_exit(0);
	}
	CHECK(child_status(pid) == 0);
	CHECKF(res->rc == -EPERM && strstr(res->err, "group 4242"), "%d %s", res->rc, res->err);
	printf("  as nobody: %s\n", res->err);
	snprintf(shm, sizeof(shm), "/xseg.%s", pname("nomember"));
	CHECK(shm_open(shm, O_RDONLY, 0) < 0 && errno == ENOENT);	/* nothing left */

	CHECK(posix->destroy(a) == 0 && posix->destroy(b) == 0 && posix->destroy(c) == 0);
}

/* (4a) file: a 4 MiB segment on a 1 MiB tmpfs. */
static void test_enospc_file(void)
{
	char path[128];
	struct stat st;
	void *mem;
	int rc;

	snprintf(mnt, sizeof(mnt), "/tmp/xseg-perms-mnt.XXXXXX");
	CHECK(mkdtemp(mnt));
	if (mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0700") < 0) {
		printf("SKIP (subcase) test_enospc_file: mount tmpfs: %s\n", strerror(errno));
		rmdir(mnt);
		mnt[0] = 0;
		return;
	}
	snprintf(path, sizeof(path), "%s/seg", mnt);
	rc = file->create(path, 4 * MIB, 0600, -1, &mem, err, sizeof(err));
	CHECKF(rc == -ENOSPC, "%d %s", rc, err);
	CHECKF(strstr(err, path) && strstr(err, "full (needs 4 MiB)"), "%s", err);
	printf("  %s\n", err);
	CHECK(lstat(path, &st) < 0 && errno == ENOENT);
	/* What fits, fits. */
	rc = file->create(path, 512 * KIB, 0600, -1, &mem, err, sizeof(err));
	CHECKF(rc == 0, "%d %s", rc, err);
	memset(mem, 1, 512 * KIB);
	file->unmap(mem, 512 * KIB);
	CHECK(file->destroy(path) == 0);
	CHECK(umount2(mnt, 0) == 0);
	CHECK(rmdir(mnt) == 0);
	mnt[0] = 0;
}

/* (4b) posix: a 4 MiB segment in a 1 MiB /dev/shm (a private mount namespace). */
static void test_enospc_posix(void)
{
	const char *a = pname("full");
	pid_t pid;
	int st;

	memset(res, 0, sizeof(*res));
	fflush(stdout);
	pid = xt_fork();
	if (pid == 0) {
		char shm[256];
		void *mem;

		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV,
			  "size=1m,mode=1777") < 0) {
			snprintf(res->err, sizeof(res->err), "%s", strerror(errno));
			_exit(77);
		}
		res->rc = posix->create(a, 4 * MIB, 0600, -1, &mem, res->err, sizeof(res->err));
		snprintf(shm, sizeof(shm), "/xseg.%s", a);
		if (shm_open(shm, O_RDONLY, 0) >= 0 || errno != ENOENT)
			_exit(2);		/* something left behind */
		_exit(0);
	}
	st = child_status(pid);
	if (st == 77) {
		printf("SKIP (subcase) test_enospc_posix: private /dev/shm: %s\n", res->err);
		return;
	}
	CHECKF(st == 0, "child exit %d", st);
	CHECKF(res->rc == -ENOSPC, "%d %s", res->rc, res->err);
	CHECKF(strstr(res->err, a) && strstr(res->err, "/dev/shm is full (needs 4 MiB)"),
	       "%s", res->err);
	printf("  %s\n", res->err);
}

/*
 * file on hugetlbfs: create succeeds if huge pages are free and fails at
 * once (ENOSPC or ENOMEM, nothing left behind) if not; never SIGBUS later.
 */
static void test_hugetlbfs(void)
{
	pid_t pid;
	int st;

	memset(res, 0, sizeof(*res));
	fflush(stdout);
	pid = xt_fork();
	if (pid == 0) {
		char dir[64] = "/tmp/xseg-perms-huge.XXXXXX", path[128];
		struct statfs sfs;
		struct stat sb;
		uint64_t size, msize;
		void *mem;

		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 || !mkdtemp(dir)) {
			snprintf(res->err, sizeof(res->err), "%s", strerror(errno));
			_exit(77);
		}
		if (mount("hugetlbfs", dir, "hugetlbfs", MS_NOSUID | MS_NODEV, "mode=0700") < 0) {
			snprintf(res->err, sizeof(res->err), "mount hugetlbfs: %s",
				 strerror(errno));
			rmdir(dir);
			_exit(77);
		}
		if (statfs(dir, &sfs) < 0 || sfs.f_type != HUGETLBFS_MAGIC)
			_exit(3);
		size = (uint64_t)sfs.f_bsize;
		snprintf(path, sizeof(path), "%s/seg", dir);
		res->rc = file->create(path, size, 0600, -1, &mem, res->err, sizeof(res->err));
		res->size = size;
		if (res->rc == 0) {
			memset(mem, 1, size);		/* reserved: no SIGBUS */
			file->unmap(mem, size);
			if (file->map(path, &mem, &msize, res->err, sizeof(res->err)) ||
			    msize != size || ((uint8_t *)mem)[size - 1] != 1)
				_exit(4);
			file->unmap(mem, msize);
			if (file->destroy(path))
				_exit(5);
		} else if (lstat(path, &sb) == 0) {
			_exit(6);			/* left behind */
		}
		umount2(dir, 0);
		rmdir(dir);
		_exit(0);
	}
	st = child_status(pid);
	if (st == 77) {
		printf("SKIP (subcase) test_hugetlbfs: %s\n", res->err);
		return;
	}
	CHECKF(st == 0, "child exit %d (%s)", st, res->err);
	CHECKF(res->rc == 0 || res->rc == -ENOSPC || res->rc == -ENOMEM, "%d %s",
	       res->rc, res->err);
	if (res->rc)
		printf("  no free huge pages: %s\n", res->err);
	else
		printf("  a %llu KiB huge-page segment: created, used, mapped, destroyed\n",
		       (unsigned long long)(res->size / KIB));
}

int main(void)
{
	segtest_need(geteuid() == 0, "test/sys/perms needs root to switch users (run it as root)");
	segtest_need(segtest_start(), "no user 'nobody' to test against");
	CHECK(nob_uid != 0 && nob_gid != 0 && nob_gid != XGID);

	res = xt_shared(sizeof(*res));
	snprintf(sharedir, sizeof(sharedir), "/tmp/xseg-perms.XXXXXX");
	CHECK(mkdtemp(sharedir));
	CHECK(chmod(sharedir, 01777) == 0);
	atexit(cleanup);
	xt_watchdog(60);

	RUN(test_private);
	RUN(test_squatted);
	RUN(test_group);
	RUN(test_enospc_file);
	RUN(test_enospc_posix);
	RUN(test_hugetlbfs);
	return 0;
}
