/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/user/segtypes/posix.c - the "posix" segment type: POSIX shared memory,
 * segment <name> is /dev/shm/xseg.<name> (shm_open("/xseg.<name>")).
 *
 * Creation and the owner/mode check at map are shared with the file type
 * (file.c); this file only turns names into shm names.
 *
 * huge=1 (XSEG_CREATE_HUGE in create's mode): the segment is <hugedir>/
 * xseg.<name> instead, a file of 2 MiB pages on a hugetlbfs mount, where
 * <hugedir> is $XSEG_HUGE_DIR (absolute; every peer must see the same) or
 * /dev/hugepages. Every other call finds a name in /dev/shm first, then in
 * <hugedir>; create refuses a name taken in either.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include "../../../sys/domain.h"
#include "segtype.h"

#define SHM_DIR		"/dev/shm"
#define SHM_PREFIX	"xseg."
#define SHM_PREFIX_LEN	(sizeof(SHM_PREFIX) - 1)

/*
 * The shm name ("/xseg.<name>") and the path (for messages) of @name. A name
 * is 1..NAME_MAX-5 bytes (and shorter than XSEG_NAME_LEN), without '/', not
 * "." or "..".
 */
static int posix_names(const char *name, char shm[NAME_MAX + 2], char path[PATH_MAX],
		       char *err, size_t errlen)
{
	size_t len = name ? strlen(name) : 0;
	size_t max = NAME_MAX - SHM_PREFIX_LEN;

	if (max > XSEG_NAME_LEN - 1)
		max = XSEG_NAME_LEN - 1;
	if (!len || len > max || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return xseg_segtype_fail(err, errlen, -EINVAL, "posix", name ? name : "(null)",
					 "a posix segment name is 1 to %zu bytes without '/'", max);
	snprintf(shm, NAME_MAX + 2, "/" SHM_PREFIX "%s", name);
	if (path)
		snprintf(path, PATH_MAX, SHM_DIR "/" SHM_PREFIX "%s", name);
	return 0;
}

#define HUGETLBFS_MAGIC_ 0x958458f6	/* linux/magic.h */

/* The huge-page directory, opened O_PATH; -errno. */
static int huge_dir(const char **path)
{
	const char *env = getenv("XSEG_HUGE_DIR");

	int fd;

	*path = env && *env ? env : "/dev/hugepages";
	if (**path != '/')
		return -EINVAL;
	fd = open(*path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Does the directory @dfd hold an entry @base (any kind)? */
static bool has_entry(int dfd, const char *base)
{
	struct stat st;

	return dfd >= 0 && fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* huge=1: create <hugedir>/xseg.<name> on a hugetlbfs mount, of 2 MiB pages. */
static int posix_create_huge(const char *name, const char *shm, uint64_t size, uint32_t mode,
			     int32_t gid, void **mem, char *err, size_t errlen)
{
	const char *dir;
	struct statfs sfs;
	int dfd, fd, r, sdfd;

	dfd = huge_dir(&dir);
	if (dfd == -EINVAL)
		return xseg_segtype_fail(err, errlen, dfd, "posix", name,
					 "XSEG_HUGE_DIR must be an absolute path");
	if (dfd < 0)
		return xseg_segtype_fail(err, errlen, dfd, "posix", name,
					 "huge=1 needs a hugetlbfs mount at %s (or $XSEG_HUGE_DIR)",
					 dir);
	if (fstatfs(dfd, &sfs) < 0 || sfs.f_type != HUGETLBFS_MAGIC_) {
		close(dfd);
		return xseg_segtype_fail(err, errlen, -EINVAL, "posix", name,
					 "huge=1: %s is not a hugetlbfs mount", dir);
	}
	sdfd = open(SHM_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (has_entry(sdfd, shm + 1)) {
		if (sdfd >= 0)
			close(sdfd);
		close(dfd);
		return xseg_segtype_fail(err, errlen, -EEXIST, "posix", name,
					 "already exists (" SHM_DIR "%s)", shm);
	}
	if (sdfd >= 0)
		close(sdfd);
	fd = openat(dfd, shm + 1, O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		close(dfd);
		return xseg_segtype_fail(err, errlen, r, "posix", name, r == -EEXIST ?
					 "already exists (%s%s)" : "cannot create %s%s", dir, shm);
	}
	r = xseg_segtype_fd_create(fd, "posix", name, dir, size, mode, gid, mem, err, errlen);
	if (r)
		unlinkat(dfd, shm + 1, 0);	/* exclusively ours, just made */
	close(fd);
	close(dfd);
	return r;
}

static int posix_create(const char *name, uint64_t size, uint32_t mode, int32_t gid,
			void **mem, char *err, size_t errlen)
{
	char shm[NAME_MAX + 2];
	bool huge = mode & XSEG_CREATE_HUGE;
	const char *dir;
	int fd, r;

	mode &= ~XSEG_CREATE_HUGE;
	r = posix_names(name, shm, NULL, err, errlen);
	if (!r)
		r = xseg_segtype_check_create("posix", name, size, mode, err, errlen);
	if (r)
		return r;
	if (huge)
		return posix_create_huge(name, shm, size, mode, gid, mem, err, errlen);
	fd = huge_dir(&dir);
	if (fd >= 0) {
		bool taken = has_entry(fd, shm + 1);

		close(fd);
		if (taken)
			return xseg_segtype_fail(err, errlen, -EEXIST, "posix", name,
						 "already exists (%s%s, huge pages)", dir, shm);
	}
	fd = shm_open(shm, O_CREAT | O_EXCL | O_RDWR, 0600);
	if (fd < 0) {
		r = -errno;
		if (r == -EEXIST)
			return xseg_segtype_fail(err, errlen, r, "posix", name,
						 "already exists (" SHM_DIR "%s)", shm);
		return xseg_segtype_fail(err, errlen, r, "posix", name,
					 "cannot create " SHM_DIR "%s", shm);
	}
	r = xseg_segtype_fd_create(fd, "posix", name, SHM_DIR, size, mode, gid, mem,
				   err, errlen);
	if (r)
		shm_unlink(shm);	/* exclusively ours; the sticky /dev/shm keeps it so */
	close(fd);
	return r;
}

static int posix_map(const char *name, void **mem, uint64_t *size, char *err, size_t errlen)
{
	char shm[NAME_MAX + 2], path[PATH_MAX];
	int fd, r;

	r = posix_names(name, shm, path, err, errlen);
	if (r)
		return r;
	fd = shm_open(shm, O_RDWR, 0);		/* glibc adds O_NOFOLLOW | O_CLOEXEC */
	if (fd < 0 && errno == ENOENT) {	/* a huge=1 segment? */
		const char *dir;
		int dfd = huge_dir(&dir);

		if (dfd >= 0) {
			fd = openat(dfd, shm + 1, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
			if (fd >= 0)
				snprintf(path, sizeof(path), "%s%s", dir, shm);
			close(dfd);
		}
		if (fd < 0)
			errno = ENOENT;
	}
	if (fd < 0)
		return xseg_segtype_open_error(errno, "posix", name, path, err, errlen);
	r = xseg_segtype_fd_map(fd, "posix", name, mem, size, err, errlen);
	close(fd);
	return r;
}

static void posix_unmap(void *mem, uint64_t size)
{
	if (mem)
		munmap(mem, (size_t)size);
}

static int posix_destroy(const char *name)
{
	char shm[NAME_MAX + 2];
	int r;

	r = posix_names(name, shm, NULL, NULL, 0);
	if (r)
		return r;
	return shm_unlink(shm) < 0 ? -errno : 0;
}

/*
 * The entry of @name (xseg_segtype_entry_fn): SHM_DIR, pinned (O_PATH), and
 * "xseg.<name>" in @base. shm_open() names live in SHM_DIR: the same object.
 */
static int posix_entry(const char *name, char *base, size_t baselen, char *err, size_t errlen)
{
	char shm[NAME_MAX + 2];
	int dfd, r;

	r = posix_names(name, shm, NULL, err, errlen);
	if (r)
		return r;
	snprintf(base, baselen, "%s", shm + 1);
	dfd = open(SHM_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return xseg_segtype_fail(err, errlen, -errno, "posix", name, "cannot open " SHM_DIR);
	if (!has_entry(dfd, base)) {		/* a huge=1 segment? */
		const char *dir;
		int hfd = huge_dir(&dir);

		if (hfd >= 0 && has_entry(hfd, base)) {
			close(dfd);
			return hfd;
		}
		if (hfd >= 0)
			close(hfd);
	}
	return dfd;
}

static int posix_destroy_checked(const char *name, xseg_segtype_check_fn check,
				 xseg_segtype_commit_fn commit, void *arg, char *err, size_t errlen)
{
	return xseg_segtype_entry_destroy(posix_entry, "posix", name, check, commit, arg, err,
					  errlen);
}

static int posix_set_owner_checked(const char *name, xseg_segtype_check_fn check,
				   xseg_segtype_commit_fn commit, void *arg, uint32_t uid,
				   uint32_t gid, uint32_t mode, char *err, size_t errlen)
{
	return xseg_segtype_entry_set_owner(posix_entry, "posix", name, check, commit, arg, uid,
					    gid, mode, err, errlen);
}

static int posix_owner(const char *name, uint32_t *uid, uint32_t *gid, uint32_t *mode)
{
	return xseg_segtype_entry_owner(posix_entry, name, uid, gid, mode);
}

/* Report every regular xseg.* of @d (without the prefix); returns how many. */
static int list_dir(DIR *d, void (*fn)(void *arg, const char *name), void *arg)
{
	struct dirent *de;
	int n = 0;

	while ((de = readdir(d))) {
		if (strncmp(de->d_name, SHM_PREFIX, SHM_PREFIX_LEN) || !de->d_name[SHM_PREFIX_LEN])
			continue;
		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		fn(arg, de->d_name + SHM_PREFIX_LEN);
		n++;
	}
	closedir(d);
	return n;
}

/* The segments in /dev/shm, then the huge=1 ones. */
static int posix_list(void (*fn)(void *arg, const char *name), void *arg)
{
	const char *env = getenv("XSEG_HUGE_DIR");
	DIR *d = opendir(SHM_DIR);
	int n;

	if (!d)
		return -errno;
	n = list_dir(d, fn, arg);
	d = opendir(env && *env == '/' ? env : "/dev/hugepages");
	if (d)
		n += list_dir(d, fn, arg);
	return n;
}

/* The "posix" segment type (/dev/shm/xseg.<name>). Registered by the core. */
XSEG_SEGTYPE(posix) = {
	.abi_size = sizeof(struct xseg_segtype_ops),
	.version = 1,
	.name = "posix",
	.create = posix_create,
	.map = posix_map,
	.unmap = posix_unmap,
	.destroy = posix_destroy,
	.list = posix_list,
	.destroy_checked = posix_destroy_checked,
	.set_owner_checked = posix_set_owner_checked,
	.owner = posix_owner,
};
