/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * blockd - a storage peer serving one volume: a regular file or a block
 * device. READ and WRITE go straight between the request's segment buffer
 * and the file (pread/pwrite, no bounce buffer): on the dispatch thread when
 * the I/O cannot block (a file in memory, a read the page cache holds), else
 * on a pool of I/O threads, so many requests are in flight at once; FLUSH/SYNC, FUA, DISCARD,
 * WRITE_ZEROES, TRUNCATE (files) and INFO follow the conventions of
 * docs/peers.md. Built from libc and pthreads only, so it also links
 * statically for the kernel test VM.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include "xseg/xseg_extents.h"
#include "peer.h"
#include "storage.h"

enum { INLINE_OFF, INLINE_MEMORY, INLINE_NOWAIT };

#define BLOCKD_SPIN_US 100u	/* default --spin-us (see main) */

static struct blockd {
	const char *path;
	uint64_t want_size;		/* --size, 0: none */
	int create_file, direct, readonly;
	const char *target;		/* --target: the only name accepted */
	size_t target_len;
	int fd;				/* buffered */
	int dfd;			/* O_DIRECT (--direct), or -1 */
	int blkdev;
	uint64_t size;			/* bytes served (atomic; TRUNCATE changes it) */
	pthread_rwlock_t resize;	/* I/O shares it, TRUNCATE takes it alone */
	/*
	 * Serving on the dispatch thread (no hand-off to the pool) for I/O
	 * that cannot block: INLINE_MEMORY, the file lives in memory (tmpfs):
	 * reads and writes are copies; INLINE_NOWAIT, reads with RWF_NOWAIT
	 * (page-cache hits), the rest on the pool; INLINE_OFF (--no-inline,
	 * --direct, or RWF_NOWAIT refused): everything on the pool.
	 */
	int inline_mode;		/* atomic: NOWAIT drops to OFF once refused */
	uint64_t inline_max;		/* larger requests go to the pool */
} bd = { .fd = -1, .dfd = -1, .inline_mode = INLINE_NOWAIT, .inline_max = 2 << 20 };

static int mutating(uint32_t op)
{
	return op == X_WRITE || op == X_TRUNCATE || op == X_DISCARD || op == X_WRITE_ZEROES;
}

static int serve_inline(struct peer *p, struct xseg_request *req);

/* On the dispatch thread: what needs no I/O (and no size), then I/O that cannot block, then defer. */
static int serve(struct peer *p, uint32_t port, struct xseg_request *req)
{
	(void)port;
	if (bd.target && (req->target_len != bd.target_len ||
			  memcmp(req->target, bd.target, bd.target_len)))
		return ENOENT;
	switch (req->op) {
	case X_PING:
		return 0;
	case X_INFO: {
		uint8_t *data = xseg_req_data(p->xs, req);
		uint64_t size = __atomic_load_n(&bd.size, __ATOMIC_ACQUIRE);

		if (!data || req->data_len < 8)
			return EINVAL;
		for (int i = 0; i < 8; i++)
			data[i] = (uint8_t)(size >> (8 * i));	/* little endian */
		req->serviced = 8;
		return 0;
	}
	case X_READ:
	case X_WRITE:
		if (req->size > req->data_len || (req->size && !xseg_req_data(p->xs, req)))
			return EINVAL;	/* the buffer cannot hold what was asked */
		break;
	case X_FLUSH:
	case X_SYNC:
	case X_COMMIT:
	case X_TRUNCATE:
	case X_DISCARD:
	case X_WRITE_ZEROES:
	case X_MAPR:
		break;
	default:
		peer_log(p, 2, "%s: operation not supported", xseg_op_name(req->op));
		return EOPNOTSUPP;
	}
	if (bd.readonly && mutating(req->op))
		return EROFS;
	return serve_inline(p, req);
}

static int in_range(uint64_t off, uint64_t len)
{
	uint64_t size = __atomic_load_n(&bd.size, __ATOMIC_ACQUIRE);

	return off <= size && len <= size - off;
}

/*
 * The request's buffer, if its chunk holds @len bytes. The request lives in
 * shared memory: offset and size were copied out once by work(), and the
 * chunk and its capacity come from one read of the buffer index
 * (xseg_req_buffer), so a client rewriting data_len or buf_index meanwhile
 * cannot make the I/O run past the chunk.
 */
static uint8_t *buffer(struct peer *p, struct xseg_request *req, uint64_t len)
{
	uint64_t cap;
	uint8_t *data = xseg_req_buffer(p->xs, req, &cap);

	return data && len <= cap && len <= __atomic_load_n(&req->data_len, __ATOMIC_RELAXED) ? data : NULL;
}

/* @nowait: only from the page cache (RWF_NOWAIT); -EAGAIN/-EOPNOTSUPP come back as PEER_DEFER. */
static int do_read(struct peer *p, struct xseg_request *req, uint64_t off, uint64_t len, int nowait)
{
	uint8_t *data = buffer(p, req, len);
	int64_t n = -EINVAL;

	if (!data)
		return len ? EINVAL : 0;
	if (nowait) {
		n = st_pread_nowait(bd.fd, data, len, off);
		if (n == -EOPNOTSUPP) {
			/* This file system cannot: stop trying (relaxed: only a hint). */
			__atomic_store_n(&bd.inline_mode, INLINE_OFF, __ATOMIC_RELAXED);
			peer_log(p, 2, "%s: RWF_NOWAIT refused: every read goes to the I/O pool", bd.path);
		}
		if (n == -EAGAIN || n == -EOPNOTSUPP)
			return PEER_DEFER;
	} else {
		if (bd.dfd >= 0)
			n = st_pread(bd.dfd, data, len, off);
		if (n == -EINVAL)	/* not aligned for O_DIRECT (or no --direct) */
			n = st_pread(bd.fd, data, len, off);
	}
	if (n < 0)
		return (int)-n;
	if ((uint64_t)n < len)	/* the file shrank under us: the rest is a hole */
		memset(data + n, 0, len - (uint64_t)n);
	req->serviced = len;
	return 0;
}

static int do_write(struct peer *p, struct xseg_request *req, uint64_t off, uint64_t len)
{
	const uint8_t *data = buffer(p, req, len);
	int fua = !!(req->flags & XF_FUA), r = -EINVAL;

	if (!data)
		return len ? EINVAL : 0;
	if (bd.dfd >= 0)
		r = st_pwrite(bd.dfd, data, len, off, fua);
	if (r == -EINVAL)
		r = st_pwrite(bd.fd, data, len, off, fua);
	if (r)
		return -r;
	req->serviced = len;
	return 0;
}

static int do_truncate(struct peer *p, struct xseg_request *req, uint64_t size)
{
	int r = 0;

	if (bd.blkdev)
		return EOPNOTSUPP;	/* a block device has the size it has */
	if (size > INT64_MAX)
		return EINVAL;
	pthread_rwlock_wrlock(&bd.resize);
	if (ftruncate(bd.fd, (off_t)size))
		r = errno;
	else
		__atomic_store_n(&bd.size, size, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&bd.resize);
	if (!r && (req->flags & XF_FUA) && fsync(bd.fd))
		r = errno;
	if (!r)
		peer_log(p, 2, "truncated %s to %" PRIu64 " bytes", bd.path, size);
	req->serviced = 0;
	return r;
}

/* xseg_extents_seek's look for data or a hole, on the file's descriptor @ctx. */
static int64_t seek_fd(void *ctx, uint64_t pos, int hole)
{
	off_t r = lseek(*(const int *)ctx, (off_t)pos, hole ? SEEK_HOLE : SEEK_DATA);

	return r < 0 ? -errno : (int64_t)r;
}

/*
 * MAPR: the allocation of [off, off+len) as extents (xseg/xseg_extents.h),
 * from lseek SEEK_DATA/SEEK_HOLE. A block device, or a file system without
 * them, is one data extent; past the file's end (a file that shrank) a hole.
 */
static int do_map(struct peer *p, struct xseg_request *req, uint64_t off, uint64_t len)
{
	uint64_t cap, dl = __atomic_load_n(&req->data_len, __ATOMIC_RELAXED);
	uint8_t *data = xseg_req_buffer(p->xs, req, &cap);
	uint64_t max;
	int64_t n;

	if (cap > dl)
		cap = dl;
	max = data ? cap / XSEG_EXTENT_SIZE : 0;
	if (!max)
		return EINVAL;	/* no room for one extent */
	n = xseg_extents_seek(data, max, off, off + len, bd.blkdev ? NULL : seek_fd, &bd.fd);
	if (n < 0)
		return (int)-n;
	req->serviced = (uint64_t)n * XSEG_EXTENT_SIZE;
	return 0;
}

/*
 * READ and WRITE on the dispatch thread when they cannot block: the file is
 * in memory, or (reads) the page cache has the range (RWF_NOWAIT). Else
 * PEER_DEFER: the pool serves it. FUA, pre-flush and large requests always
 * go to the pool, and so does everything while a TRUNCATE holds the size.
 */
static int serve_inline(struct peer *p, struct xseg_request *req)
{
	/* Copied out of shared memory once (as in work()). */
	uint64_t off = __atomic_load_n(&req->offset, __ATOMIC_RELAXED);
	uint64_t len = __atomic_load_n(&req->size, __ATOMIC_RELAXED);
	uint32_t op = __atomic_load_n(&req->op, __ATOMIC_RELAXED);
	uint32_t flags = __atomic_load_n(&req->flags, __ATOMIC_RELAXED);
	int mode = __atomic_load_n(&bd.inline_mode, __ATOMIC_RELAXED);
	int r;

	if (mode == INLINE_OFF || len > bd.inline_max || (flags & (XF_FUA | XF_FLUSH)))
		return PEER_DEFER;
	if (op != X_READ && !(op == X_WRITE && mode == INLINE_MEMORY && !bd.readonly))
		return PEER_DEFER;
	if (pthread_rwlock_tryrdlock(&bd.resize))
		return PEER_DEFER;	/* a TRUNCATE runs: do not wait for it here */
	if (!in_range(off, len))
		r = ENOSPC;
	else if (op == X_READ)
		r = do_read(p, req, off, len, mode == INLINE_NOWAIT);
	else
		r = do_write(p, req, off, len);
	pthread_rwlock_unlock(&bd.resize);
	return r;
}

/* On an I/O thread. */
static int work(struct peer *p, uint32_t port, struct xseg_request *req)
{
	/* Copied out of shared memory once. */
	uint64_t off = __atomic_load_n(&req->offset, __ATOMIC_RELAXED);
	uint64_t len = __atomic_load_n(&req->size, __ATOMIC_RELAXED);
	uint32_t op = __atomic_load_n(&req->op, __ATOMIC_RELAXED);
	int r = 0;

	(void)port;
	if (bd.readonly && mutating(op))
		return EROFS;
	if ((req->flags & XF_FLUSH) && !bd.readonly && fdatasync(bd.fd))
		return errno;
	switch (op) {
	case X_FLUSH:
	case X_SYNC:
	case X_COMMIT:
		req->serviced = 0;
		if (bd.readonly)
			return 0;
		return (op == X_FLUSH ? fdatasync(bd.fd) : fsync(bd.fd)) ? errno : 0;
	case X_TRUNCATE:
		return do_truncate(p, req, off);
	default:
		break;
	}
	pthread_rwlock_rdlock(&bd.resize);
	if (!in_range(off, len)) {
		r = ENOSPC;
		goto out;
	}
	switch (op) {
	case X_READ:
		r = do_read(p, req, off, len, 0);
		break;
	case X_WRITE:
		r = do_write(p, req, off, len);
		break;
	case X_DISCARD:
	case X_WRITE_ZEROES:
		r = -(op == X_DISCARD ? st_discard(bd.fd, bd.blkdev, off, len)
					   : st_write_zeroes(bd.fd, bd.blkdev, off, len));
		if (!r && (req->flags & XF_FUA) && fdatasync(bd.fd))
			r = errno;
		req->serviced = r ? 0 : len;
		break;
	case X_MAPR:
		r = do_map(p, req, off, len);
		break;
	default:
		r = EOPNOTSUPP;
	}
out:
	pthread_rwlock_unlock(&bd.resize);
	return r;
}

/* Open (and with --create-file create) the volume; its size from fstat or BLKGETSIZE64. */
static int open_volume(struct peer *p)
{
	/*
	 * --create-file names a path that is ours to make: never follow a link
	 * planted there (in /tmp, say) to grow and serve somebody else's file.
	 */
	int flags = (bd.readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (bd.create_file ? O_NOFOLLOW : 0);
	struct stat st;

	bd.fd = open(bd.path, flags);
	if (bd.fd < 0 && errno == ELOOP && bd.create_file) {
		peer_log(p, 0, "%s is a symbolic link; --create-file does not follow links", bd.path);
		return -1;
	}
	if (bd.fd < 0 && errno == ENOENT && bd.create_file && !bd.readonly) {
		bd.fd = open(bd.path, flags | O_CREAT | O_EXCL, 0600);
		if (bd.fd >= 0)
			peer_log(p, 2, "created %s", bd.path);
	}
	if (bd.fd < 0) {
		peer_log(p, 0, "cannot open %s: %s%s", bd.path, strerror(errno),
			 errno == ENOENT ? " (--create-file --size N creates it)" : "");
		return -1;
	}
	if (fstat(bd.fd, &st)) {
		peer_log(p, 0, "cannot stat %s: %s", bd.path, strerror(errno));
		return -1;
	}
	if (S_ISBLK(st.st_mode)) {
		bd.blkdev = 1;
		if (ioctl(bd.fd, BLKGETSIZE64, &bd.size)) {
			peer_log(p, 0, "%s: BLKGETSIZE64: %s", bd.path, strerror(errno));
			return -1;
		}
		if (bd.want_size && bd.want_size != bd.size) {
			peer_log(p, 0, "%s is a block device of %" PRIu64 " bytes: --size %" PRIu64
				 " does not apply", bd.path, bd.size, bd.want_size);
			return -1;
		}
	} else if (S_ISREG(st.st_mode)) {
		bd.size = (uint64_t)st.st_size;
		if (bd.want_size && bd.size > bd.want_size) {
			peer_log(p, 0, "%s has %" PRIu64 " bytes, more than --size %" PRIu64
				 " (blockd never shrinks a volume; TRUNCATE does)", bd.path, bd.size,
				 bd.want_size);
			return -1;
		}
		if (bd.want_size > bd.size) {
			if (bd.readonly) {
				peer_log(p, 0, "%s has %" PRIu64 " bytes, less than --size; cannot grow it "
					 "--readonly", bd.path, bd.size);
				return -1;
			}
			if (ftruncate(bd.fd, (off_t)bd.want_size)) {
				peer_log(p, 0, "cannot size %s to %" PRIu64 " bytes: %s", bd.path,
					 bd.want_size, strerror(errno));
				return -1;
			}
			bd.size = bd.want_size;
		}
	} else {
		peer_log(p, 0, "%s is neither a regular file nor a block device", bd.path);
		return -1;
	}
	/* One writer per volume: a second blockd on the same file is refused. */
	if (flock(bd.fd, (bd.readonly ? LOCK_SH : LOCK_EX) | LOCK_NB)) {
		peer_log(p, 0, "%s is in use by another process (flock: %s)", bd.path, strerror(errno));
		return -1;
	}
	if (bd.direct) {
		char self[64];

		/* The file opened and checked above, not whatever the path names now. */
		snprintf(self, sizeof(self), "/proc/self/fd/%d", bd.fd);
		bd.dfd = open(self, (flags & ~(O_CREAT | O_NOFOLLOW)) | O_DIRECT);
		if (bd.dfd < 0) {
			peer_log(p, 0, "cannot open %s with O_DIRECT: %s", bd.path, strerror(errno));
			return -1;
		}
	}
	if (bd.inline_mode != INLINE_OFF)	/* --no-inline sets OFF */
		bd.inline_mode = bd.direct ? INLINE_OFF : st_memory_backed(bd.fd) ? INLINE_MEMORY : INLINE_NOWAIT;
	peer_log(p, 2, "serving %s (%s, %" PRIu64 " bytes%s%s; inline: %s)", bd.path,
		 bd.blkdev ? "block device" : "file", bd.size, bd.readonly ? ", read-only" : "",
		 bd.direct ? ", O_DIRECT" : "",
		 bd.inline_mode == INLINE_MEMORY ? "reads and writes (in memory)" :
		 bd.inline_mode == INLINE_NOWAIT ? "cached reads" : "none");
	return 0;
}

static int own(struct peer *p, int opt, const char *arg)
{
	switch (opt) {
	case 'f': bd.path = arg; return 0;
	case 's':
		if (st_parse_size(arg, &bd.want_size) || !bd.want_size || bd.want_size > INT64_MAX) {
			fprintf(stderr, "%s: --size: '%s' is not a size (N[K|M|G|T], above 0)\n", p->name, arg);
			return -2;
		}
		return 0;
	case 'c': bd.create_file = 1; return 0;
	case 'T':
		bd.target = arg;
		bd.target_len = strlen(arg);
		if (!bd.target_len || bd.target_len > XSEG_TARGET_MAX) {
			fprintf(stderr, "%s: --target: the name must have 1..%u bytes\n", p->name, XSEG_TARGET_MAX);
			return -2;
		}
		return 0;
	case 'D': bd.direct = 1; return 0;
	case 'r': bd.readonly = 1; return 0;
	case 'N': bd.inline_mode = INLINE_OFF; return 0;
	default: return -1;
	}
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "file", required_argument, NULL, 'f' }, { "size", required_argument, NULL, 's' },
		{ "create-file", no_argument, NULL, 'c' }, { "target", required_argument, NULL, 'T' },
		{ "direct", no_argument, NULL, 'D' }, { "readonly", no_argument, NULL, 'r' },
		{ "no-inline", no_argument, NULL, 'N' }, { 0 } };
	/*
	 * Spin 100 us (not 20): a client at depth 1 behind the NBD gateway sends
	 * its next request ~50-80 us after our reply (two wake-ups away); the
	 * framework spins only after single-request bursts and while it pays.
	 */
	struct peer p = { .name = "blockd", .serve = serve, .work = work, .spin_us = BLOCKD_SPIN_US,
			  .required = "-f PATH" };
	int r = peer_parse_args(&p, argc, argv, "f:s:", lopts, own,
				"  -f, --file PATH     the regular file or block device to serve (required)\n"
				"  -s, --size N        the volume size (K, M, G, T): a smaller file is extended\n"
				"  --create-file       create PATH if it does not exist (needs --size)\n"
				"  --target NAME       accept only requests for this target (others: ENOENT)\n"
				"  --direct            O_DIRECT for aligned reads and writes\n"
				"  --readonly          open read-only; writes, discards, truncates fail EROFS\n"
				"  --no-inline         every READ/WRITE on the I/O pool (default: those that\n"
				"                      cannot block are served on the dispatch thread)");

	if (r)
		return r > 0 ? 0 : 2;
	if (!bd.path) {
		fprintf(stderr, "blockd: --file PATH is required\n");
		return 2;
	}
	if (bd.create_file && !bd.want_size) {
		fprintf(stderr, "blockd: --create-file needs --size N\n");
		return 2;
	}
	if (bd.create_file && bd.readonly) {
		fprintf(stderr, "blockd: --create-file and --readonly do not go together\n");
		return 2;
	}
	pthread_rwlock_init(&bd.resize, NULL);
	if (open_volume(&p))
		return 1;
	if (peer_start(&p))
		return 1;
	r = peer_run(&p);
	/* Every accepted request was replied; make what they wrote durable. */
	if (!bd.readonly && fsync(bd.fd))
		peer_log(&p, 0, "fsync %s: %s", bd.path, strerror(errno));
	peer_stop(&p);
	close(bd.fd);
	if (bd.dfd >= 0)
		close(bd.dfd);
	return r ? 1 : 0;
}
