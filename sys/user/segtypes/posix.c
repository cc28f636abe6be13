/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/user/segtypes/posix.c - the "posix" segment type: POSIX shared memory,
 * segment <name> is /dev/shm/xseg.<name> (shm_open("/xseg.<name>")).
 *
 * Creation and the owner/mode check at map are shared with the file type
 * (file.c); this file only turns names into shm names.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
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

static int posix_create(const char *name, uint64_t size, uint32_t mode, int32_t gid,
			void **mem, char *err, size_t errlen)
{
	char shm[NAME_MAX + 2];
	int fd, r;

	r = posix_names(name, shm, NULL, err, errlen);
	if (!r)
		r = xseg_segtype_check_create("posix", name, size, mode, err, errlen);
	if (r)
		return r;
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

/* Report every regular /dev/shm/xseg.* (without the prefix); returns how many. */
static int posix_list(void (*fn)(void *arg, const char *name), void *arg)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	d = opendir(SHM_DIR);
	if (!d)
		return -errno;
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
