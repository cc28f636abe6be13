/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/user/segtypes/file.c - the "file" segment type (the name is a path,
 * e.g. on tmpfs or hugetlbfs), and the helpers every fd-backed type shares:
 * storage, ownership and mode at create; the owner/mode/size check at map.
 *
 * Every function returns 0 or a negative errno and writes a one-line
 * message naming the segment to err (if not NULL).
 */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include "../../../sys/domain.h"
#include "segtype.h"

/* ------------------------------------------------------- shared helpers */

/* See segtype.h. */
int xseg_segtype_fail(char *err, size_t errlen, int rc, const char *kind,
		      const char *name, const char *fmt, ...)
{
	char reason[256], ebuf[128];
	const char *estr;
	va_list ap;

	if (!err || !errlen)
		return rc;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	estr = strerror_r(-rc, ebuf, sizeof(ebuf));
	snprintf(err, errlen, "%s segment '%s': %s: %s", kind, name, reason, estr);
	return rc;
}

/* "16 MiB", "4 KiB", "1.5 GiB", "100 bytes" */
static const char *human_size(char *buf, size_t len, uint64_t size)
{
	static const char *const units[] = { "GiB", "MiB", "KiB" };
	int shift = 30;

	for (unsigned int u = 0; u < 3; u++, shift -= 10) {
		uint64_t unit = 1ull << shift;

		if (size < unit)
			continue;
		if (size % unit == 0)
			snprintf(buf, len, "%llu %s", (unsigned long long)(size >> shift), units[u]);
		else
			snprintf(buf, len, "%.1f %s", (double)size / (double)unit, units[u]);
		return buf;
	}
	snprintf(buf, len, "%llu bytes", (unsigned long long)size);
	return buf;
}

/* Is @g our effective group or one of our supplementary groups? */
static int in_group(gid_t g)
{
	gid_t small[64], *list = small;
	int n, found = 0;

	if (g == getegid())
		return 1;
	n = getgroups(0, NULL);
	if (n <= 0)
		return 0;
	if (n > 64) {
		list = malloc((size_t)n * sizeof(*list));
		if (!list)
			return 0;
	}
	n = getgroups(n, list);
	for (int i = 0; i < n && !found; i++)
		found = list[i] == g;
	if (list != small)
		free(list);
	return found;
}

/* See segtype.h. */
int xseg_segtype_check_create(const char *kind, const char *name, uint64_t size,
			      uint32_t mode, char *err, size_t errlen)
{
	uint32_t page = xseg_sys_page_size();

	mode &= ~XSEG_CREATE_SPARSE;	/* a storage hint for xseg_segtype_fd_create */
	if (size < XSEG_SEGTYPE_MIN_SIZE || size % page || size > (uint64_t)INT64_MAX ||
	    (uint64_t)(size_t)size != size)
		return xseg_segtype_fail(err, errlen, -EINVAL, kind, name,
					 "size %llu must be a multiple of the page size (%u), at "
					 "least %u and addressable", (unsigned long long)size, page,
					 XSEG_SEGTYPE_MIN_SIZE);
	if (mode & ~0770u)
		return xseg_segtype_fail(err, errlen, -EINVAL, kind, name,
					 "mode %04o grants more than owner and group rights (0770); "
					 "peers refuse a segment others may open", mode);
	if ((mode & 0600) != 0600)
		return xseg_segtype_fail(err, errlen, -EINVAL, kind, name,
					 "mode %04o does not give the owner read and write", mode);
	return 0;
}

/* See segtype.h. */
int xseg_segtype_check_fd(int fd, const char *kind, const char *name, struct stat *st,
			  char *err, size_t errlen)
{
	if (fstat(fd, st) < 0)
		return xseg_segtype_fail(err, errlen, -errno, kind, name, "cannot stat it");
	if (!S_ISREG(st->st_mode))
		return xseg_segtype_fail(err, errlen, -EPERM, kind, name,
					 "not a regular file (mode %06o, owner uid %u); refusing it",
					 (unsigned int)st->st_mode, (unsigned int)st->st_uid);
	return xseg_segtype_check_owner(kind, name, (uint32_t)st->st_uid, (uint32_t)st->st_gid,
					(uint32_t)(st->st_mode & 07777), (uint64_t)st->st_size,
					err, errlen);
}

/* See segtype.h. */
int xseg_segtype_check_owner(const char *kind, const char *name, uint32_t uid, uint32_t gid,
			     uint32_t perm, uint64_t size, char *err, size_t errlen)
{
	uint32_t page = xseg_sys_page_size();
	uid_t me = geteuid();

	if (perm & 07)
		return xseg_segtype_fail(err, errlen, -EPERM, kind, name,
					 "mode %04o (owner uid %u) grants access to others; refusing "
					 "a segment anyone may open (squatted or tampered with?)",
					 perm, (unsigned int)uid);
	if (uid != (uint32_t)me && !((perm & 060) == 060 && in_group((gid_t)gid)))
		return xseg_segtype_fail(err, errlen, -EPERM, kind, name,
					 "owned by uid %u gid %u mode %04o, not by us (uid %u) nor "
					 "read-write for a group of ours; refusing it (squatted?)",
					 (unsigned int)uid, (unsigned int)gid, perm, (unsigned int)me);
	if (size < XSEG_SEGTYPE_MIN_SIZE || size % page || size > (uint64_t)INT64_MAX)
		return xseg_segtype_fail(err, errlen, -EBADMSG, kind, name,
					 "truncated: %llu bytes, not a multiple of the page size (%u) "
					 "of at least %u", (unsigned long long)size, page,
					 XSEG_SEGTYPE_MIN_SIZE);
	if ((uint64_t)(size_t)size != size)
		return xseg_segtype_fail(err, errlen, -EFBIG, kind, name,
					 "%llu bytes do not fit our address space",
					 (unsigned long long)size);
	return 0;
}

static int on_hugetlbfs(int fd)
{
	struct statfs sfs;

	return fstatfs(fd, &sfs) == 0 && sfs.f_type == HUGETLBFS_MAGIC;
}

/*
 * Give @fd @size bytes of storage. posix_fallocate allocates every block now,
 * so a full filesystem fails here with ENOSPC and never with SIGBUS on a
 * later touch. Where that is impossible (EOPNOTSUPP; hugetlbfs on kernels
 * before 4.3, where glibc's write-based emulation fails too), set the size
 * with ftruncate: on hugetlbfs the shared mmap that follows reserves the
 * huge pages, so a shortage still fails at create (ENOMEM).
 */
static int allocate(int fd, uint64_t size)
{
	int r;

	do
		r = posix_fallocate(fd, 0, (off_t)size);
	while (r == EINTR);
	if (r == 0 || r == ENOSPC || r == EFBIG)
		return -r;
	if (r != EOPNOTSUPP && !on_hugetlbfs(fd))
		return -r;
	xseg_sys_log(XSEG_LOG_DEBUG, "posix_fallocate: %s; sizing with ftruncate", strerror(r));
	return ftruncate(fd, (off_t)size) < 0 ? -errno : 0;
}

/* See segtype.h. */
int xseg_segtype_fd_create(int fd, const char *kind, const char *name, const char *where,
			   uint64_t size, uint32_t mode, int32_t gid, void **mem,
			   char *err, size_t errlen)
{
	bool sparse = mode & XSEG_CREATE_SPARSE;
	char hs[32];
	void *p;
	int r;

	mode &= ~XSEG_CREATE_SPARSE;
	/* A growable segment's reserve stays unallocated: the core allocates the live part. */
	r = sparse ? (ftruncate(fd, (off_t)size) < 0 ? -errno : 0) : allocate(fd, size);
	if ((r == -ENOSPC || r == -ENOMEM) && on_hugetlbfs(fd))
		return xseg_segtype_fail(err, errlen, -ENOSPC, kind, name, "not enough free huge "
					 "pages (needs %llu of 2 MiB; HugePages_Free in /proc/meminfo, "
					 "reserve more in /proc/sys/vm/nr_hugepages)",
					 (unsigned long long)((size + (2u << 20) - 1) >> 21));
	if (r == -ENOSPC)
		return xseg_segtype_fail(err, errlen, r, kind, name, "%s is full (needs %s)",
					 where, human_size(hs, sizeof(hs), size));
	if (r)
		return xseg_segtype_fail(err, errlen, r, kind, name, "cannot allocate %s",
					 human_size(hs, sizeof(hs), size));
	if (gid >= 0 && fchown(fd, (uid_t)-1, (gid_t)gid) < 0)
		return xseg_segtype_fail(err, errlen, -errno, kind, name,
					 "cannot give it group %d", (int)gid);
	if (fchmod(fd, (mode_t)mode) < 0)
		return xseg_segtype_fail(err, errlen, -errno, kind, name,
					 "cannot set mode %04o", mode);
	p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return xseg_segtype_fail(err, errlen, -errno, kind, name, "cannot map %s%s",
					 human_size(hs, sizeof(hs), size),
					 on_hugetlbfs(fd) ? " (not enough free huge pages?)" : "");
	*mem = p;
	return 0;
}

/* See segtype.h. */
int xseg_segtype_fd_map(int fd, const char *kind, const char *name, void **mem,
			uint64_t *size, char *err, size_t errlen)
{
	struct stat st;
	char hs[32];
	void *p;
	int r;

	r = xseg_segtype_check_fd(fd, kind, name, &st, err, errlen);
	if (r)
		return r;
	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return xseg_segtype_fail(err, errlen, -errno, kind, name, "cannot map %s",
					 human_size(hs, sizeof(hs), (uint64_t)st.st_size));
	*mem = p;
	*size = (uint64_t)st.st_size;
	return 0;
}

/* See segtype.h. */
int xseg_segtype_open_error(int e, const char *kind, const char *name, const char *path,
			    char *err, size_t errlen)
{
	struct stat st;

	switch (e) {
	case ENOENT:
		return xseg_segtype_fail(err, errlen, -ENOENT, kind, name, "does not exist");
	case ELOOP:
		return xseg_segtype_fail(err, errlen, -EPERM, kind, name,
					 "is a symbolic link; refusing it");
	case EACCES:
		if (path && lstat(path, &st) == 0)
			return xseg_segtype_fail(err, errlen, -EACCES, kind, name,
						 "owner uid %u gid %u mode %04o does not admit "
						 "us (uid %u gid %u)", (unsigned int)st.st_uid,
						 (unsigned int)st.st_gid,
						 (unsigned int)(st.st_mode & 07777),
						 (unsigned int)geteuid(), (unsigned int)getegid());
		return xseg_segtype_fail(err, errlen, -EACCES, kind, name,
					 "cannot open it as uid %u", (unsigned int)geteuid());
	default:
		return xseg_segtype_fail(err, errlen, -e, kind, name, "cannot open it");
	}
}

/* "<kind>:<shown> <reason>" (the core adds what was left alone) */
static int refuse(char *err, size_t errlen, int rc, const char *kind, const char *shown,
		  const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int refuse(char *err, size_t errlen, int rc, const char *kind, const char *shown,
		  const char *fmt, ...)
{
	char reason[200];
	va_list ap;

	if (!err || !errlen)
		return rc;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s:%s %s", kind, shown, reason);
	return rc;
}

static const char *file_kind(mode_t m)
{
	if (S_ISLNK(m))
		return "a symbolic link";
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISSOCK(m))
		return "a socket";
	return "not a regular file";
}

/*
 * Open the entry @base of @dirfd for a destroy or an owner change: it must be
 * a regular file before we open it (lstat: a symlink, FIFO, device or
 * directory is never opened), the open file must be that inode, grant
 * nothing to "other" and hold at least a page; map it through that fd.
 * Returns the fd with *@st and *@mem set, or a negative errno (+ @err).
 */
static int at_open(int dirfd, const char *base, const char *kind, const char *shown,
		   struct stat *st, void **mem, char *err, size_t errlen)
{
	struct stat ls;
	int fd, r;

	if (fstatat(dirfd, base, &ls, AT_SYMLINK_NOFOLLOW) < 0) {
		r = -errno;
		if (r == -ENOENT)
			return refuse(err, errlen, r, kind, shown, "does not exist");
		return refuse(err, errlen, r, kind, shown, "cannot be examined: %s", strerror(-r));
	}
	if (!S_ISREG(ls.st_mode))
		return refuse(err, errlen, -EPERM, kind, shown, "is %s, not an xseg segment",
			      file_kind(ls.st_mode));
	fd = openat(dirfd, base, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if (r == -ELOOP)
			return refuse(err, errlen, -EPERM, kind, shown, "is a symbolic link");
		if (r == -EACCES)
			return refuse(err, errlen, r, kind, shown,
				      "cannot be opened by us (uid %u): owner uid %u mode %04o",
				      (unsigned int)geteuid(), (unsigned int)ls.st_uid,
				      (unsigned int)(ls.st_mode & 07777));
		return refuse(err, errlen, r, kind, shown, "cannot be opened: %s", strerror(-r));
	}
	r = 0;
	if (fstat(fd, st) < 0)
		r = refuse(err, errlen, -errno, kind, shown, "cannot be examined: %s",
			   strerror(errno));
	else if (st->st_dev != ls.st_dev || st->st_ino != ls.st_ino)
		r = refuse(err, errlen, -EBUSY, kind, shown, "changed while we looked at it");
	else if (!S_ISREG(st->st_mode))
		r = refuse(err, errlen, -EPERM, kind, shown, "is %s, not an xseg segment",
			   file_kind(st->st_mode));
	else if (st->st_mode & 07)
		r = refuse(err, errlen, -EPERM, kind, shown, "has mode %04o (owner uid %u), which "
			   "grants access to others: not a segment of ours (squatted or "
			   "tampered with?)", (unsigned int)(st->st_mode & 07777),
			   (unsigned int)st->st_uid);
	else if (st->st_size < (off_t)XSEG_SEGTYPE_MIN_SIZE ||
		 (uint64_t)(size_t)st->st_size != (uint64_t)st->st_size)
		r = refuse(err, errlen, -EBADMSG, kind, shown, "is not an xseg segment (%lld "
			   "bytes)", (long long)st->st_size);
	if (!r) {
		*mem = mmap(NULL, (size_t)st->st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (*mem == MAP_FAILED)
			r = refuse(err, errlen, -errno, kind, shown, "cannot be mapped: %s",
				   strerror(errno));
	}
	if (r) {
		close(fd);
		return r;
	}
	return fd;
}

/* See segtype.h. */
int xseg_segtype_at_destroy(int dirfd, const char *base, const char *kind, const char *shown,
			    xseg_segtype_check_fn check, xseg_segtype_commit_fn commit, void *arg,
			    char *err, size_t errlen)
{
	struct stat st, now;
	void *mem;
	int fd, r;

	fd = at_open(dirfd, base, kind, shown, &st, &mem, err, errlen);
	if (fd < 0)
		return fd;
	r = check(mem, (uint64_t)st.st_size, (uint32_t)st.st_uid, arg, err, errlen);
	if (!r) {
		/* Remove the entry only while it still names what we checked. */
		if (fstatat(dirfd, base, &now, AT_SYMLINK_NOFOLLOW) < 0)
			r = refuse(err, errlen, -errno, kind, shown, "vanished while we checked it");
		else if (now.st_dev != st.st_dev || now.st_ino != st.st_ino)
			r = refuse(err, errlen, -EBUSY, kind, shown,
				   "was replaced while we checked it");
		else if (unlinkat(dirfd, base, 0) < 0)
			r = refuse(err, errlen, -errno, kind, shown, "cannot be removed: %s",
				   strerror(errno));
		else
			commit(mem, (uint32_t)st.st_uid, (uint32_t)st.st_gid,
			       (uint32_t)(st.st_mode & 07777), arg);
	}
	munmap(mem, (size_t)st.st_size);
	close(fd);
	return r;
}

/* "changed" in the messages of an owner change. */
static int unchanged(char *err, size_t errlen, int rc, const char *kind, const char *shown,
		     const char *what, unsigned int v)
{
	if (err && errlen)
		snprintf(err, errlen, "%s:%s: cannot set %s %u%s: %s", kind, shown, what,
			 v, rc == -EPERM ? " (only root gives a segment away; the owner may "
			 "choose one of its own groups)" : "", strerror(-rc));
	return rc;
}

/* See segtype.h. */
int xseg_segtype_at_set_owner(int dirfd, const char *base, const char *kind, const char *shown,
			      xseg_segtype_check_fn check, xseg_segtype_commit_fn commit,
			      void *arg, uint32_t uid, uint32_t gid, uint32_t mode,
			      char *err, size_t errlen)
{
	struct stat st;
	size_t size;
	void *mem;
	int fd, r;

	fd = at_open(dirfd, base, kind, shown, &st, &mem, err, errlen);
	if (fd < 0)
		return fd;
	size = (size_t)st.st_size;
	r = check(mem, (uint64_t)st.st_size, (uint32_t)st.st_uid, arg, err, errlen);
	if (!r && (uid != (uint32_t)-1 || gid != (uint32_t)-1) &&
	    fchown(fd, (uid_t)uid, (gid_t)gid) < 0)
		r = unchanged(err, errlen, -errno, kind, shown, uid != (uint32_t)-1 ? "owner uid" :
			      "group gid", uid != (uint32_t)-1 ? uid : gid);
	/* fchmod after fchown, which may clear set-id bits: the mode is the final one. */
	if (!r && mode != (uint32_t)-1 && fchmod(fd, (mode_t)mode) < 0)
		r = unchanged(err, errlen, -errno, kind, shown, "mode", mode);
	if (!r && fstat(fd, &st) == 0)
		commit(mem, (uint32_t)st.st_uid, (uint32_t)st.st_gid, (uint32_t)(st.st_mode & 07777),
		       arg);
	munmap(mem, size);
	close(fd);
	return r;
}

/* See segtype.h. */
int xseg_segtype_at_owner(int dirfd, const char *base, uint32_t *uid, uint32_t *gid,
			  uint32_t *mode)
{
	struct stat st;

	if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	*uid = (uint32_t)st.st_uid;
	*gid = (uint32_t)st.st_gid;
	*mode = (uint32_t)(st.st_mode & 07777);
	return 0;
}

/* ------------------------------------------------------ the file type */

static int file_check_name(const char *path, char *err, size_t errlen)
{
	if (!path || !*path || strlen(path) >= PATH_MAX)
		return xseg_segtype_fail(err, errlen, -EINVAL, "file", path ? path : "(null)",
					 "a file segment is named by a path of 1 to %d bytes",
					 PATH_MAX - 1);
	return 0;
}

static int file_create(const char *path, uint64_t size, uint32_t mode, int32_t gid,
		       void **mem, char *err, size_t errlen)
{
	struct stat st, at;
	int fd, r;

	r = file_check_name(path, err, errlen);
	if (!r)
		r = xseg_segtype_check_create("file", path, size, mode, err, errlen);
	if (r)
		return r;
	fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = -errno;
		if (r == -EEXIST)
			return xseg_segtype_fail(err, errlen, r, "file", path, "already exists");
		if (r == -ENOENT)
			return xseg_segtype_fail(err, errlen, r, "file", path,
						 "its directory does not exist");
		return xseg_segtype_fail(err, errlen, r, "file", path, "cannot create it");
	}
	r = xseg_segtype_fd_create(fd, "file", path, "its filesystem", size, mode, gid,
				   mem, err, errlen);
	/* Remove what we created, not whatever may have replaced it since. */
	if (r && fstat(fd, &st) == 0 && lstat(path, &at) == 0 &&
	    st.st_dev == at.st_dev && st.st_ino == at.st_ino)
		unlink(path);
	close(fd);
	return r;
}

static int file_map(const char *path, void **mem, uint64_t *size, char *err, size_t errlen)
{
	int fd, r;

	r = file_check_name(path, err, errlen);
	if (r)
		return r;
	/* O_NOFOLLOW: refuse a symlink; O_NONBLOCK: never hang on a FIFO. */
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return xseg_segtype_open_error(errno, "file", path, path, err, errlen);
	r = xseg_segtype_fd_map(fd, "file", path, mem, size, err, errlen);
	close(fd);
	return r;
}

static void file_unmap(void *mem, uint64_t size)
{
	if (mem)
		munmap(mem, (size_t)size);
}

static int file_destroy(const char *path)
{
	if (file_check_name(path, NULL, 0))
		return -EINVAL;
	return unlink(path) < 0 ? -errno : 0;
}

/* See segtype.h. */
int xseg_segtype_entry_destroy(xseg_segtype_entry_fn entry, const char *kind, const char *name,
			       xseg_segtype_check_fn check, xseg_segtype_commit_fn commit,
			       void *arg, char *err, size_t errlen)
{
	char base[PATH_MAX];
	int dfd, r;

	dfd = entry(name, base, sizeof(base), err, errlen);
	if (dfd < 0)
		return dfd;
	r = xseg_segtype_at_destroy(dfd, base, kind, name, check, commit, arg, err, errlen);
	close(dfd);
	return r;
}

/* See segtype.h. */
int xseg_segtype_entry_set_owner(xseg_segtype_entry_fn entry, const char *kind,
				 const char *name, xseg_segtype_check_fn check,
				 xseg_segtype_commit_fn commit, void *arg, uint32_t uid,
				 uint32_t gid, uint32_t mode, char *err, size_t errlen)
{
	char base[PATH_MAX];
	int dfd, r;

	dfd = entry(name, base, sizeof(base), err, errlen);
	if (dfd < 0)
		return dfd;
	r = xseg_segtype_at_set_owner(dfd, base, kind, name, check, commit, arg, uid, gid, mode,
				      err, errlen);
	close(dfd);
	return r;
}

/* See segtype.h. */
int xseg_segtype_entry_owner(xseg_segtype_entry_fn entry, const char *name, uint32_t *uid,
			     uint32_t *gid, uint32_t *mode)
{
	char base[PATH_MAX];
	int dfd, r;

	dfd = entry(name, base, sizeof(base), NULL, 0);
	if (dfd < 0)
		return dfd;
	r = xseg_segtype_at_owner(dfd, base, uid, gid, mode);
	close(dfd);
	return r;
}

/*
 * The entry of @path (xseg_segtype_entry_fn): its directory, pinned
 * (O_PATH), and its last component copied to @base.
 */
static int file_entry(const char *path, char *base, size_t baselen, char *err, size_t errlen)
{
	const char *slash, *last;
	char dir[PATH_MAX];
	int fd, r;

	r = file_check_name(path, err, errlen);
	if (r)
		return r;
	slash = strrchr(path, '/');
	if (!slash) {
		last = path;
		snprintf(dir, sizeof(dir), ".");
	} else {
		last = slash + 1;
		if (slash == path)
			snprintf(dir, sizeof(dir), "/");
		else
			snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	}
	if (!*last || !strcmp(last, ".") || !strcmp(last, ".."))
		return refuse(err, errlen, -EPERM, "file", path, "names a directory");
	snprintf(base, baselen, "%s", last);
	fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT)
			return refuse(err, errlen, r, "file", path, "does not exist");
		return refuse(err, errlen, r, "file", path, "cannot open its directory: %s",
			      strerror(-r));
	}
	return fd;
}

static int file_destroy_checked(const char *path, xseg_segtype_check_fn check,
				xseg_segtype_commit_fn commit, void *arg, char *err, size_t errlen)
{
	return xseg_segtype_entry_destroy(file_entry, "file", path, check, commit, arg, err,
					  errlen);
}

static int file_set_owner_checked(const char *path, xseg_segtype_check_fn check,
				  xseg_segtype_commit_fn commit, void *arg, uint32_t uid,
				  uint32_t gid, uint32_t mode, char *err, size_t errlen)
{
	return xseg_segtype_entry_set_owner(file_entry, "file", path, check, commit, arg, uid,
					    gid, mode, err, errlen);
}

static int file_owner(const char *path, uint32_t *uid, uint32_t *gid, uint32_t *mode)
{
	return xseg_segtype_entry_owner(file_entry, path, uid, gid, mode);
}

/*
 * The "file" segment type: a segment is the file at the path it is named by.
 * No list(): its segments live anywhere. Registered by the core.
 */
XSEG_SEGTYPE(file) = {
	.abi_size = sizeof(struct xseg_segtype_ops),
	.version = 1,
	.name = "file",
	.create = file_create,
	.map = file_map,
	.unmap = file_unmap,
	.destroy = file_destroy,
	.list = NULL,
	.destroy_checked = file_destroy_checked,
	.set_owner_checked = file_set_owner_checked,
	.owner = file_owner,
};
