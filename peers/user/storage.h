/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/storage.h - the file I/O the storage peers (blockd, filed)
 * share: whole-range pread/pwrite straight between a request's segment
 * buffer and a file (no bounce buffer), reads that never wait
 * (RWF_NOWAIT) and the memory-backed test for serving without blocking, FUA writes, zeroing and discarding
 * ranges of files and block devices with the fallbacks the conventions in
 * docs/peers.md promise, and size arguments with units.
 *
 * Header-only: base.mk links every .c file of peers/user as a program.
 * Every function returns 0 (or a count) or a negative errno.
 */
#ifndef XSEG_PEERS_STORAGE_H
#define XSEG_PEERS_STORAGE_H

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <unistd.h>
#include "xseg/xseg_size.h"

/*
 * st_preadv2 - read up to @len bytes at @off into @buf with preadv2 @flags,
 * retrying short reads. Returns the bytes read (less than @len only at end
 * of file) or -errno.
 */
static inline int64_t st_preadv2(int fd, void *buf, uint64_t len, uint64_t off, int flags)
{
	uint64_t done = 0;

	while (done < len) {
		struct iovec iov = { (char *)buf + done, len - done };
		ssize_t n = preadv2(fd, &iov, 1, (off_t)(off + done), flags);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (uint64_t)n;
	}
	return (int64_t)done;
}

/* st_pread - st_preadv2 without flags: a read that may block. */
static inline int64_t st_pread(int fd, void *buf, uint64_t len, uint64_t off)
{
	return st_preadv2(fd, buf, len, off, 0);
}

/*
 * st_pread_nowait - with RWF_NOWAIT: only what the page cache holds (a read
 * that would wait for the device is not started). -EAGAIN when some of the
 * range is not cached (the caller reads it again where it may block; what
 * was copied so far is simply overwritten), -EOPNOTSUPP when the file system
 * cannot do RWF_NOWAIT.
 */
static inline int64_t st_pread_nowait(int fd, void *buf, uint64_t len, uint64_t off)
{
	return st_preadv2(fd, buf, len, off, RWF_NOWAIT);
}

/*
 * st_memory_backed - does @fd live in memory (tmpfs, ramfs, hugetlbfs), so
 * that reads and writes are copies that never wait for a device? 1 or 0.
 */
static inline int st_memory_backed(int fd)
{
	struct statfs sf;

	if (fstatfs(fd, &sf))
		return 0;
	return sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC || sf.f_type == HUGETLBFS_MAGIC;
}

/*
 * st_pwrite - write all @len bytes of @buf at @off. @fua: durable before
 * returning (RWF_DSYNC; fdatasync where the file system refuses it).
 * Returns 0 or -errno.
 */
static inline int st_pwrite(int fd, const void *buf, uint64_t len, uint64_t off, int fua)
{
	uint64_t done = 0;
	int flags = fua ? RWF_DSYNC : 0;

	while (done < len) {
		struct iovec iov = { (char *)buf + done, len - done };
		ssize_t n = pwritev2(fd, &iov, 1, (off_t)(off + done), flags);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (flags && (errno == EOPNOTSUPP || errno == EINVAL)) {
				flags = 0;	/* no RWF_DSYNC here: fdatasync below */
				continue;
			}
			return -errno;
		}
		if (n == 0)
			return -EIO;
		done += (uint64_t)n;
	}
	if (fua && !flags && fdatasync(fd))
		return -errno;
	return 0;
}

/* st_write_zeros - write zero bytes over [off, off+len), the fallback of all fallbacks. */
static inline int st_write_zeros(int fd, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[65536];

	while (len) {
		uint64_t n = len < sizeof(zeros) ? len : sizeof(zeros);
		int r = st_pwrite(fd, zeros, n, off, 0);

		if (r)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

static inline int st_fallocate(int fd, int mode, uint64_t off, uint64_t len)
{
	int r;

	do
		r = fallocate(fd, mode, (off_t)off, (off_t)len);
	while (r && errno == EINTR);
	return r ? -errno : 0;
}

/* BLKZEROOUT: the block layer writes zeros (offloaded when the device can). */
static inline int st_blkzeroout(int fd, uint64_t off, uint64_t len)
{
	uint64_t range[2] = { off, len };

	return ioctl(fd, BLKZEROOUT, range) ? -errno : 0;
}

/* Can the next fallback do better than this error? */
static inline int st_fallback(int r)
{
	return r == -EOPNOTSUPP || r == -ENOSYS || r == -EINVAL || r == -ENOTTY;
}

/*
 * st_discard - deallocate [off, off+len) so that it reads as zeros: punch a
 * hole (files; zeroing with unmap allowed on block devices), else BLKZEROOUT
 * (block devices), else write zeros. Never changes the file size.
 */
static inline int st_discard(int fd, int blkdev, uint64_t off, uint64_t len)
{
	int r;

	if (!len)
		return 0;
	r = st_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
	if (r && st_fallback(r) && blkdev)
		r = st_blkzeroout(fd, off, len);
	if (r && st_fallback(r))
		r = st_write_zeros(fd, off, len);
	return r;
}

/*
 * st_write_zeroes - make [off, off+len) read as zeros, keeping it allocated
 * where the file system can (FALLOC_FL_ZERO_RANGE), else as st_discard().
 * Never changes the file size.
 */
static inline int st_write_zeroes(int fd, int blkdev, uint64_t off, uint64_t len)
{
	int r;

	if (!len)
		return 0;
	r = st_fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len);
	if (r && st_fallback(r))
		return st_discard(fd, blkdev, off, len);
	return r;
}

/*
 * st_parse_size - a SIZE of the one grammar (xseg/xseg_size.h: 4096, 4k,
 * 4KiB, 1M, 1T; powers of 1024). Returns 0, or -EINVAL for anything else or
 * an overflow.
 */
static inline int st_parse_size(const char *s, uint64_t *out)
{
	return xseg_parse_size_str(s, out) ? -EINVAL : 0;
}

#endif
