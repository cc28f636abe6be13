/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/user/segtypes/segdev.c - the "segdev" segment type of the user domain:
 * kernel memory exported by /dev/segdev (segdev.ko), shared with kernel peers.
 *
 * A segment <name> is the segdev segment of that name. create() makes it
 * with SEGDEV_IOC_CREATE (exclusive: EEXIST) and maps it; map() selects it
 * with SEGDEV_IOC_OPEN and maps it; the fd is closed after mmap (the mapping
 * holds the segment). destroy() removes the name (the memory lives on while
 * mapped). segdev segments belong to the creator's euid (or root): mode must
 * be 0600 and no group can be given. There is no list yet (segdev has no
 * list ioctl).
 *
 * Tested in the VM (tools/vm, scenario usersegdev), where /dev/segdev exists;
 * elsewhere create/map fail with -ENOENT ("is segdev.ko loaded?"). The futex
 * driver cannot wait on segdev memory (vmalloc pages: FUTEX_WAIT gives
 * EFAULT); use posix or posixfd with segdev segments.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include "../../../sys/domain.h"
#include "segtype.h"
#include "../../../sys/kernel/segdev/segdev.h"

#define SEGDEV_PATH "/dev/segdev"

static int segdev_dev(const char *name, char *err, size_t errlen)
{
	int fd = open(SEGDEV_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		int r = -errno;

		return xseg_segtype_fail(err, errlen, r, "segdev", name, "cannot open " SEGDEV_PATH
					 "%s", r == -ENOENT ? " (is segdev.ko loaded?)" : "");
	}
	return fd;
}

static int segdev_req_fill(struct segdev_req *req, const char *name, uint64_t size,
			   char *err, size_t errlen)
{
	size_t len = name ? strlen(name) : 0;

	if (!len || len >= SEGDEV_NAME_LEN || strchr(name, '/'))
		return xseg_segtype_fail(err, errlen, -EINVAL, "segdev", name ? name : "(null)",
					 "a segdev segment name is 1 to %u bytes without '/'",
					 SEGDEV_NAME_LEN - 1);
	memset(req, 0, sizeof(*req));
	memcpy(req->name, name, len);
	req->size = size;
	return 0;
}

static int segdev_mmap(int fd, const char *name, uint64_t size, void **mem, char *err, size_t errlen)
{
	void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return xseg_segtype_fail(err, errlen, -errno, "segdev", name,
					 "cannot map %llu bytes", (unsigned long long)size);
	*mem = p;
	return 0;
}

static int segdev_create(const char *name, uint64_t size, uint32_t mode, int32_t gid,
			 void **mem, char *err, size_t errlen)
{
	struct segdev_req req;
	int fd, r;

	r = segdev_req_fill(&req, name, size, err, errlen);
	if (!r)
		r = xseg_segtype_check_create("segdev", name, size, mode, err, errlen);
	if (r)
		return r;
	if ((mode & 0777) != 0600 || gid >= 0)
		return xseg_segtype_fail(err, errlen, -EINVAL, "segdev", name,
					 "segdev segments belong to their creator: mode 0600, no group");
	fd = segdev_dev(name, err, errlen);
	if (fd < 0)
		return fd;
	if (ioctl(fd, SEGDEV_IOC_CREATE, &req) < 0) {
		r = -errno;
		close(fd);
		return xseg_segtype_fail(err, errlen, r, "segdev", name,
					 r == -EEXIST ? "already exists" : "cannot create");
	}
	r = segdev_mmap(fd, name, size, mem, err, errlen);
	close(fd);
	if (r) {
		int dfd = segdev_dev(name, NULL, 0);

		if (dfd >= 0) {		/* exclusively ours: remove it again */
			ioctl(dfd, SEGDEV_IOC_DESTROY, &req);
			close(dfd);
		}
	}
	return r;
}

static int segdev_map(const char *name, void **mem, uint64_t *size, char *err, size_t errlen)
{
	struct segdev_req req;
	int fd, r;

	r = segdev_req_fill(&req, name, 0, err, errlen);
	if (r)
		return r;
	fd = segdev_dev(name, err, errlen);
	if (fd < 0)
		return fd;
	if (ioctl(fd, SEGDEV_IOC_OPEN, &req) < 0) {
		r = -errno;
		close(fd);
		return xseg_segtype_fail(err, errlen, r, "segdev", name,
					 r == -ENOENT ? "does not exist" : "cannot open");
	}
	if (req.size < XSEG_SEGTYPE_MIN_SIZE) {
		close(fd);
		return xseg_segtype_fail(err, errlen, -EBADMSG, "segdev", name,
					 "is %llu bytes, less than a header page",
					 (unsigned long long)req.size);
	}
	r = segdev_mmap(fd, name, req.size, mem, err, errlen);
	close(fd);
	if (!r)
		*size = req.size;
	return r;
}

static void segdev_unmap(void *mem, uint64_t size)
{
	if (mem)
		munmap(mem, (size_t)size);
}

static int segdev_destroy(const char *name)
{
	struct segdev_req req;
	int fd, r;

	r = segdev_req_fill(&req, name, 0, NULL, 0);
	if (r)
		return r;
	fd = segdev_dev(name, NULL, 0);
	if (fd < 0)
		return fd;
	r = ioctl(fd, SEGDEV_IOC_DESTROY, &req) < 0 ? -errno : 0;
	close(fd);
	return r;
}

/* The "segdev" segment type (kernel memory of /dev/segdev). */
XSEG_SEGTYPE(segdev) = {
	.abi_size = sizeof(struct xseg_segtype_ops),
	.version = 1,
	.name = "segdev",
	.create = segdev_create,
	.map = segdev_map,
	.unmap = segdev_unmap,
	.destroy = segdev_destroy,
};
