/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/user/segtypes/memfd.c - the "memfd" segment type: a segment in an
 * unnamed memfd (memfd_create), known by its descriptor. A segment name is
 * the number of an open descriptor of this process ("memfd:5").
 *
 * create("N"): N must be an empty memfd made with MFD_ALLOW_SEALING and no
 * seals yet (xseg_create_memfd() makes one); it gets its storage, group and
 * mode as posix and file segments do, then F_SEAL_SHRINK and F_SEAL_SEAL:
 * nobody can truncate it under a peer (SIGBUS), nor lift the seal.
 * map("N"): N must carry F_SEAL_SHRINK (which no file but a sealed memfd
 * has), then the owner/mode/size check of every fd-backed type.
 * destroy: nothing to remove (the core marks the segment destroyed, so new
 * joins are refused); the memory goes with the last descriptor and mapping.
 * No list: there are no names.
 */
#define _GNU_SOURCE 1
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include "../../../sys/domain.h"
#include "segtype.h"
#include "xseg_memfd.h"

#define MEMFD_SEALS	(F_SEAL_SHRINK | F_SEAL_SEAL)
#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB	(21u << 26)	/* linux/memfd.h: log2(2 MiB) << MFD_HUGE_SHIFT */
#endif

/* The open descriptor @name names, or a negative errno (+ @err). */
static int memfd_fd(const char *name, char *err, size_t errlen)
{
	const char *n = name ? name : "(null)";
	long v;
	char *end;

	if (!name || !*name || *name < '0' || *name > '9' || strlen(name) > 10)
		return xseg_segtype_fail(err, errlen, -EINVAL, "memfd", n,
					 "a memfd segment is named by the number of an open file "
					 "descriptor of this process");
	v = strtol(name, &end, 10);
	if (*end || v < 0 || v > INT_MAX)
		return xseg_segtype_fail(err, errlen, -EINVAL, "memfd", n,
					 "a memfd segment is named by the number of an open file "
					 "descriptor of this process");
	if (fcntl((int)v, F_GETFD) < 0)
		return xseg_segtype_fail(err, errlen, errno == EBADF ? -ENOENT : -errno, "memfd",
					 n, "%ld is not an open file descriptor of this process", v);
	return (int)v;
}

/* The seals of @fd, or -EPERM (+ @err) when it cannot be sealed: not a memfd. */
static int memfd_seals(int fd, const char *name, char *err, size_t errlen)
{
	int s = fcntl(fd, F_GET_SEALS);

	if (s < 0)
		return xseg_segtype_fail(err, errlen, -EPERM, "memfd", name,
					 "descriptor %d is not a memfd (F_GET_SEALS failed)", fd);
	return s;
}

static int memfd_create_op(const char *name, uint64_t size, uint32_t mode, int32_t gid,
			   void **mem, char *err, size_t errlen)
{
	struct stat st;
	int fd, seals, r;

	bool huge = mode & XSEG_CREATE_HUGE;

	mode &= ~XSEG_CREATE_HUGE;
	fd = memfd_fd(name, NULL, 0);
	if (fd < 0)
		return xseg_segtype_fail(err, errlen, fd, "memfd", name ? name : "(null)",
					 "a memfd segment is created in a new memfd, not by name: "
					 "use xseg_create_memfd(), Segment.createMemfd() or "
					 "`xseg-tool create memfd:... --send SOCKET | --exec CMD`");
	r = xseg_segtype_check_create("memfd", name, size, mode, err, errlen);
	if (r)
		return r;
	seals = memfd_seals(fd, name, err, errlen);
	if (seals < 0)
		return seals;
	if (fstat(fd, &st) < 0)
		return xseg_segtype_fail(err, errlen, -errno, "memfd", name, "cannot stat it");
	if (seals || st.st_size || !S_ISREG(st.st_mode))
		return xseg_segtype_fail(err, errlen, -EINVAL, "memfd", name,
					 "descriptor %d is not an empty, unsealed memfd made with "
					 "MFD_ALLOW_SEALING (%lld bytes, seals %#x); "
					 "xseg_create_memfd() makes one", fd, (long long)st.st_size,
					 (unsigned int)seals);
	{
		struct statfs sfs;
		bool on_huge = fstatfs(fd, &sfs) == 0 && sfs.f_type == 0x958458f6;

		if (huge != on_huge)
			return xseg_segtype_fail(err, errlen, -EINVAL, "memfd", name,
						 huge ? "huge=1 needs a memfd made with MFD_HUGETLB "
						 "(xseg_create_memfd() makes one)" : "descriptor %d is "
						 "a huge-page memfd: the spec must say huge=1", fd);
	}
	r = xseg_segtype_fd_create(fd, "memfd", name, huge ? "huge pages" : "memory", size,
				   mode, gid, mem, err, errlen);
	if (r)
		return r;
	if (fcntl(fd, F_ADD_SEALS, MEMFD_SEALS) < 0) {
		r = -errno;
		munmap(*mem, (size_t)size);
		*mem = NULL;
		return xseg_segtype_fail(err, errlen, r, "memfd", name, "cannot seal it");
	}
	return 0;
}

static int memfd_map(const char *name, void **mem, uint64_t *size, char *err, size_t errlen)
{
	int fd, seals;

	fd = memfd_fd(name, err, errlen);
	if (fd < 0)
		return fd;
	seals = memfd_seals(fd, name, err, errlen);
	if (seals < 0)
		return seals;
	if (!(seals & F_SEAL_SHRINK))
		return xseg_segtype_fail(err, errlen, -EPERM, "memfd", name,
					 "descriptor %d is not sealed against shrinking: not a "
					 "memfd segment (seals %#x)", fd, (unsigned int)seals);
	return xseg_segtype_fd_map(fd, "memfd", name, mem, size, err, errlen);
}

static void memfd_unmap(void *mem, uint64_t size)
{
	if (mem)
		munmap(mem, (size_t)size);
}

/* Nothing has a name to remove: the core marks the segment destroyed. */
static int memfd_destroy(const char *name)
{
	int fd = memfd_fd(name, NULL, 0);

	return fd < 0 ? fd : 0;
}

static int memfd_set_owner_checked(const char *name, xseg_segtype_check_fn check,
				   xseg_segtype_commit_fn commit, void *arg, uint32_t uid,
				   uint32_t gid, uint32_t mode, char *err, size_t errlen)
{
	struct stat st;
	uint64_t size;
	void *mem;
	int fd, r;

	r = memfd_map(name, &mem, &size, err, errlen);
	if (r)
		return r;
	fd = memfd_fd(name, NULL, 0);
	if (fstat(fd, &st) < 0) {
		r = xseg_segtype_fail(err, errlen, -errno, "memfd", name, "cannot stat it");
		goto out;
	}
	r = check(mem, size, (uint32_t)st.st_uid, arg, err, errlen);
	if (!r && (uid != (uint32_t)-1 || gid != (uint32_t)-1) &&
	    fchown(fd, (uid_t)uid, (gid_t)gid) < 0)
		r = xseg_segtype_fail(err, errlen, -errno, "memfd", name,
				      "cannot set owner %d group %d", (int)uid, (int)gid);
	if (!r && mode != (uint32_t)-1 && fchmod(fd, (mode_t)mode) < 0)
		r = xseg_segtype_fail(err, errlen, -errno, "memfd", name,
				      "cannot set mode %04o", mode);
	if (!r && fstat(fd, &st) == 0)
		commit(mem, (uint32_t)st.st_uid, (uint32_t)st.st_gid, (uint32_t)(st.st_mode & 07777),
		       arg);
out:
	munmap(mem, (size_t)size);
	return r;
}

static int memfd_owner(const char *name, uint32_t *uid, uint32_t *gid, uint32_t *mode)
{
	struct stat st;
	int fd = memfd_fd(name, NULL, 0);

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		return -errno;
	*uid = (uint32_t)st.st_uid;
	*gid = (uint32_t)st.st_gid;
	*mode = (uint32_t)(st.st_mode & 07777);
	return 0;
}

/* The "memfd" segment type (an unnamed memfd, by descriptor). Registered by the core. */
XSEG_SEGTYPE(memfd) = {
	.abi_size = sizeof(struct xseg_segtype_ops),
	.version = 1,
	.name = "memfd",
	.create = memfd_create_op,
	.map = memfd_map,
	.unmap = memfd_unmap,
	.destroy = memfd_destroy,
	.list = NULL,
	.destroy_checked = NULL,
	.set_owner_checked = memfd_set_owner_checked,
	.owner = memfd_owner,
};

/* ------------------------------------------------ the public helpers */

/* See xseg_memfd.h. */
int xseg_create_memfd(const struct xseg_config *cfg, char *err, size_t errlen)
{
	struct xseg_config c;
	char label[16 + XSEG_NAME_LEN];
	int fd, r;

	if (!cfg) {
		if (err && errlen)
			snprintf(err, errlen, "memfd: no config");
		return -EINVAL;
	}
	c = *cfg;
	snprintf(label, sizeof(label), "xseg");
	fd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING |
				 (c.huge ? MFD_HUGETLB | MFD_HUGE_2MB : 0));
	if (fd < 0) {
		r = -errno;
		if (err && errlen)
			snprintf(err, errlen, "memfd: cannot create one (memfd_create%s): %s",
				 c.huge ? " with MFD_HUGETLB, huge=1" : "", strerror(-r));
		return r;
	}
	memset(c.type, 0, sizeof(c.type));
	memcpy(c.type, "memfd", sizeof("memfd"));
	memset(c.name, 0, sizeof(c.name));
	snprintf(c.name, sizeof(c.name), "%d", fd);
	r = xseg_create(&c, err, errlen);
	if (r) {
		close(fd);
		return r;
	}
	return fd;
}

/* See xseg_memfd.h. */
int xseg_memfd_send(int sock, int fd)
{
	union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
	struct msghdr msg;
	struct cmsghdr *c;
	char byte = 'X';
	struct iovec iov = { &byte, 1 };
	ssize_t n;

	if (fd < 0)
		return -EBADF;
	memset(&u, 0, sizeof(u));
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : 0;
}

/* See xseg_memfd.h. */
int xseg_memfd_recv(int sock, char *err, size_t errlen)
{
	union { struct cmsghdr h; char buf[CMSG_SPACE(8 * sizeof(int))]; } u;
	struct msghdr msg;
	struct cmsghdr *c;
	char byte;
	struct iovec iov = { &byte, 1 };
	int fd = -1, extra = 0;
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		size_t k, cnt;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (k = 0; k < cnt; k++) {
			int got;

			memcpy(&got, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
			if (fd < 0) {
				fd = got;
			} else {
				close(got);
				extra++;
			}
		}
	}
	if (fd < 0 || extra || (msg.msg_flags & MSG_CTRUNC)) {
		if (fd >= 0)
			close(fd);
		if (err && errlen)
			snprintf(err, errlen, "memfd: %s", n == 0 ? "the peer closed the socket "
				 "without sending a descriptor" : "expected exactly one descriptor "
				 "(SCM_RIGHTS) in the message");
		return n == 0 ? -ENOTCONN : -EPROTO;
	}
	return fd;
}
