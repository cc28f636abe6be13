/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/user/segtypes/segtype.h - the user-space segment types and the helpers
 * they share (internal to libxseg; the public interface is struct
 * xseg_segtype_ops in xseg/xseg.h). Each is defined with XSEG_SEGTYPE(name)
 * and registered by its line in sys/user/builtins.h (and sys/node/builtins.h).
 *
 *   posix   /dev/shm/xseg.<name> through shm_open()     posix.c
 *   file    any path, e.g. on tmpfs or hugetlbfs          file.c
 *   segdev  kernel memory of /dev/segdev (segdev.ko)      segdev.c
 *   sysv    System V shm (shmget) named by a key          sysv.c
 *   memfd   an unnamed memfd, passed as an fd             memfd.c
 *   heap    process-private memory for threads            ../heap.c (all domains)
 *
 * The fd-backed types (posix, file) create and map through the helpers
 * below, implemented once in file.c: the owner/mode check of a
 * segment we are about to map lives in exactly one place. owner.[ch] parse
 * the owner and mode a segment is given (`config --set`).
 */
#ifndef XSEG_SEGTYPES_USER_SEGTYPE_H
#define XSEG_SEGTYPES_USER_SEGTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include "../../../xseg/xseg.h"

extern const struct xseg_segtype_ops xseg_segtype_posix;
extern const struct xseg_segtype_ops xseg_segtype_file;
extern const struct xseg_segtype_ops xseg_segtype_heap;
extern const struct xseg_segtype_ops xseg_segtype_segdev;
extern const struct xseg_segtype_ops xseg_segtype_sysv;
extern const struct xseg_segtype_ops xseg_segtype_memfd;

/* The smallest segment any type maps: the header page. */
#define XSEG_SEGTYPE_MIN_SIZE	4096u

/*
 * xseg_segtype_fail - write "<kind> segment '<name>': <reason>: <strerror>"
 * to @err (if not NULL) and return @rc, a negative errno. For the segment
 * types only.
 */
int xseg_segtype_fail(char *err, size_t errlen, int rc, const char *kind,
		      const char *name, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/*
 * xseg_segtype_check_create - validate the arguments of a create(): @size at
 * least one header page, a multiple of the page size and mappable; @mode
 * within 0770 and granting the owner rw. Returns 0 or -EINVAL (+ @err).
 * For the segment types only.
 */
int xseg_segtype_check_create(const char *kind, const char *name, uint64_t size,
			      uint32_t mode, char *err, size_t errlen);

/*
 * xseg_segtype_check_fd - may we map the open segment file @fd? It must be a
 * regular file, grant nothing to "other", and be owned by our euid or grant
 * group rw ((mode & 060) == 060) to our egid or a supplementary group; then
 * its size must be at least one page and a multiple of the page size.
 * Returns 0 with *@st filled, -EPERM (hostile or foreign), -EBADMSG
 * (truncated), or the fstat error; @err names the owner, mode and size.
 * The one implementation of this check; for the segment types only.
 */
int xseg_segtype_check_fd(int fd, const char *kind, const char *name, struct stat *st,
			  char *err, size_t errlen);

/*
 * xseg_segtype_check_owner - the part of xseg_segtype_check_fd() that does not
 * need a file, for objects described otherwise (sysv: IPC_STAT): owner @uid,
 * group @gid, permission bits @perm and @size in bytes. Returns 0, -EPERM,
 * -EBADMSG or -EFBIG (+ @err). For the segment types only.
 */
int xseg_segtype_check_owner(const char *kind, const char *name, uint32_t uid, uint32_t gid,
			     uint32_t perm, uint64_t size, char *err, size_t errlen);

/*
 * xseg_segtype_fd_create - give the freshly and exclusively created segment
 * file @fd its storage (posix_fallocate, so a full filesystem fails now with
 * -ENOSPC instead of SIGBUS later; ftruncate where that is unsupported, e.g.
 * hugetlbfs before Linux 4.3, whose shared mmap reserves the huge pages
 * instead), its group (@gid >= 0), its final @mode (fchmod,
 * not subject to the umask) and map it shared into *@mem. @where names the
 * filesystem for the ENOSPC message ("/dev/shm"). Does not close @fd and
 * does not unlink on failure: the caller does both. Returns 0 or a negative
 * errno (+ @err). For the segment types only.
 */
int xseg_segtype_fd_create(int fd, const char *kind, const char *name, const char *where,
			   uint64_t size, uint32_t mode, int32_t gid, void **mem,
			   char *err, size_t errlen);

/*
 * xseg_segtype_fd_map - check @fd with xseg_segtype_check_fd() and map it
 * shared; returns 0 with *@mem and *@size set, or a negative errno (+ @err).
 * Does not close @fd. For the segment types only.
 */
int xseg_segtype_fd_map(int fd, const char *kind, const char *name, void **mem,
			uint64_t *size, char *err, size_t errlen);

/*
 * xseg_segtype_open_error - turn the errno @e of opening an existing segment
 * into the returned error and its message: ENOENT -> -ENOENT, EACCES ->
 * -EACCES (naming the owner and mode of @path if it can be stat'ed, and our
 * uid), ELOOP (a symbolic link, refused by O_NOFOLLOW) -> -EPERM, others
 * as they are. For the segment types only.
 */
int xseg_segtype_open_error(int e, const char *kind, const char *name, const char *path,
			    char *err, size_t errlen);

/* What destroy_checked() calls to examine the mapped object (xseg.h). */
typedef int (*xseg_segtype_check_fn)(void *mem, uint64_t size, uint32_t owner_uid, void *arg,
				     char *err, size_t errlen);

/* What destroy_checked() and set_owner_checked() call once the change is made (xseg.h). */
typedef void (*xseg_segtype_commit_fn)(void *mem, uint32_t uid, uint32_t gid, uint32_t mode,
				       void *arg);

/*
 * xseg_segtype_at_destroy - remove the entry @base of the directory @dirfd
 * only if it is provably the segment @check accepts: the entry must be a
 * regular file (lstat first: a symlink, FIFO, device or directory is never
 * opened), open it O_NOFOLLOW|O_NONBLOCK|O_NOCTTY, check that the open file
 * is the entry looked at, refuse "other" bits, map it through that fd and
 * call @check(mem, size, owner, @arg); then unlinkat() only if the entry
 * still names the same inode (st_dev/st_ino), and after it @commit(mem, ...)
 * (so a refused unlink leaves the segment unmarked). @dirfd pins the directory, so
 * a swapped path component cannot redirect the removal; what is left is a
 * writer of that very directory swapping the entry itself between the last
 * look and unlinkat(), which removes only an entry that writer could remove
 * itself. @kind and @shown name the segment in messages ("file:/tmp/x is a
 * FIFO"; the core adds "; not removed"). Returns 0 or a negative errno (+ @err). For the segment
 * types only.
 */
int xseg_segtype_at_destroy(int dirfd, const char *base, const char *kind, const char *shown,
			    xseg_segtype_check_fn check, xseg_segtype_commit_fn commit, void *arg,
			    char *err, size_t errlen);

/*
 * xseg_segtype_at_set_owner - change owner, group and mode of the entry
 * @base of @dirfd (each (uint32_t)-1: unchanged), only if it is the segment
 * @check accepts: opened and checked as xseg_segtype_at_destroy() does, then
 * fchown() and fchmod() on that fd, then @commit(mem, uid, gid, mode, @arg)
 * with what fstat() says now, so the header follows the file. Returns 0 or a
 * negative errno (+ @err). For the segment types only.
 */
int xseg_segtype_at_set_owner(int dirfd, const char *base, const char *kind, const char *shown,
			      xseg_segtype_check_fn check, xseg_segtype_commit_fn commit,
			      void *arg, uint32_t uid, uint32_t gid, uint32_t mode,
			      char *err, size_t errlen);

/* xseg_segtype_at_owner - the real owner, group and mode of the entry @base of @dirfd. */
int xseg_segtype_at_owner(int dirfd, const char *base, uint32_t *uid, uint32_t *gid,
			  uint32_t *mode);

/*
 * xseg_segtype_entry_fn - what a type whose segments are directory entries
 * (posix, file) provides to resolve @name: check the name, open its
 * directory O_PATH|O_DIRECTORY (pinned from then on) and copy the entry's
 * last component into @base (@baselen bytes). Returns the directory fd, which
 * the caller closes, or a negative errno (+ @err naming what was wrong).
 */
typedef int (*xseg_segtype_entry_fn)(const char *name, char *base, size_t baselen,
				     char *err, size_t errlen);

/*
 * xseg_segtype_entry_destroy, xseg_segtype_entry_set_owner,
 * xseg_segtype_entry_owner - the destroy_checked(), set_owner_checked() and
 * owner() ops of a type whose names @entry resolves: resolve @name, then
 * xseg_segtype_at_destroy(), xseg_segtype_at_set_owner() or
 * xseg_segtype_at_owner() on the pinned directory, then close it. @kind
 * names the type in messages. Return what those return, or @entry's error.
 * The one implementation of these ops; for the segment types only.
 */
int xseg_segtype_entry_destroy(xseg_segtype_entry_fn entry, const char *kind, const char *name,
			       xseg_segtype_check_fn check, xseg_segtype_commit_fn commit,
			       void *arg, char *err, size_t errlen);
int xseg_segtype_entry_set_owner(xseg_segtype_entry_fn entry, const char *kind,
				 const char *name, xseg_segtype_check_fn check,
				 xseg_segtype_commit_fn commit, void *arg, uint32_t uid,
				 uint32_t gid, uint32_t mode, char *err, size_t errlen);
int xseg_segtype_entry_owner(xseg_segtype_entry_fn entry, const char *name, uint32_t *uid,
			     uint32_t *gid, uint32_t *mode);

#endif
