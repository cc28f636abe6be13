/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * filed - an object store peer: one regular file per target name in a
 * directory. READ/WRITE/INFO/CREATE/DELETE/TRUNCATE/COPY/RENAME/HASH
 * (SHA-256), owner-tagged ACQUIRE/RELEASE locks (durable: a file each,
 * kept across restarts; XF_FORCE breaks them), FLUSH/SYNC and
 * DISCARD/WRITE_ZEROES, served on the framework's I/O pool; READ and WRITE
 * that cannot block (objects in memory, reads the page cache holds) on the
 * dispatch thread, as blockd does. Names are
 * checked (1..255 bytes (NAME_MAX), no '/', not "." or "..", no control
 * characters) and every file is reached through openat() on the directory
 * with O_NOFOLLOW, so no request touches anything outside it. The objects a
 * thread served stay open (filed-fdcache.h). Conventions: docs/peers.md.
 */
#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <linux/openat2.h>
#include "peer.h"
#include "objname.h"
#include "sha256.h"
#include "storage.h"

/*
 * Temporary files (COPY) start with this control character, which no valid
 * object name contains: they can never collide with an object, and filed
 * removes leftovers at start.
 */
#define TMP_PREFIX '\001'

/*
 * Lock files start with this one: like the temporary files they cannot be an
 * object, but filed keeps them at start (a lock outlives a restart).
 */
#define LOCK_PREFIX '\002'

enum { INLINE_OFF, INLINE_MEMORY, INLINE_NOWAIT };

#define FDC_GENS 1024u	/* buckets of fd_.name_gen (a power of two) */

static struct filed {
	const char *dir;
	int dirfd;
	dev_t dev;			/* DIR's file system: an object elsewhere is never served inline */
	uint64_t tmp_seq;		/* atomic */
	pthread_mutex_t lock_mu;	/* serialises ACQUIRE/RELEASE (read, decide, write) */
	/*
	 * READ and WRITE on the dispatch thread when they cannot block (no
	 * hand-off to the pool, one wake-up less per request): INLINE_MEMORY,
	 * DIR is in memory (tmpfs, ramfs, hugetlbfs): opening, reading,
	 * writing (FUA and pre-flush included: syncing memory is a no-op) are
	 * copies; INLINE_NOWAIT, reads whose name lookup is cached
	 * (RESOLVE_CACHED) and whose range the page cache holds (RWF_NOWAIT);
	 * INLINE_OFF (--no-inline, or the kernel refused either): the pool.
	 */
	int inline_mode;		/* atomic: NOWAIT drops to OFF once refused */
	uint64_t inline_max;		/* larger requests go to the pool */
	/*
	 * Bumped (after the change, before the reply) by the ops that change
	 * which file a name is. names_gen, by those that unlink a file (DELETE,
	 * RENAME, a COPY renamed over an existing destination): the threads' fd
	 * caches (filed-fdcache.h) are dropped when it moved, so no cached fd
	 * keeps an unlinked file's space. name_gen[bucket of the name's hash],
	 * by those that only give a name a new file (CREATE, a COPY to a new
	 * name): only the cached fds of that bucket's names are stale. Either
	 * way an fd cached under a name never outlives the file the name had.
	 */
	uint64_t names_gen;		/* atomic */
	uint64_t name_gen[FDC_GENS];	/* atomic */
	int no_fd_cache;		/* --no-fd-cache */
	/* The test hook (XSEG_FILED_FAULT, below). */
	char fault_prefix[XSEG_TARGET_MAX + 1];
	char fault_release[256];	/* held until this file exists */
	int fault_armed;		/* atomic: the first matching WRITE disarms it */
	struct xseg_request *fault_req;	/* atomic: that WRITE, held on an I/O thread */
} fd_ = { .dirfd = -1, .lock_mu = PTHREAD_MUTEX_INITIALIZER, .inline_mode = INLINE_NOWAIT,
	  .inline_max = 2 << 20 };

/*
 * obj_open - open object @name with @flags (O_NOFOLLOW, O_NONBLOCK so that a
 * planted FIFO cannot block us); only regular files count as objects.
 * Returns the fd or a negative errno.
 */
static int obj_open_st(const char *name, int flags, mode_t mode, struct stat *st)
{
	int fd = openat(fd_.dirfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);

	if (fd < 0)
		return errno == ELOOP ? -EINVAL : -errno;
	if (fstat(fd, st) || !S_ISREG(st->st_mode)) {
		close(fd);
		return -EINVAL;
	}
	return fd;
}

static int obj_open(const char *name, int flags, mode_t mode)
{
	struct stat st;

	return obj_open_st(name, flags, mode, &st);
}

/*
 * Locks are files: LOCK_PREFIX "lock." and the SHA-256 (hex) of the lock's
 * name (a name of 255 bytes plus a prefix would not fit a directory entry).
 * The file holds "xseglock1\n", the name's length and the name, the owner
 * tag's length and the tag (lengths as 4 bytes little endian). It is written
 * to a temporary file, synced and renamed over (then the directory synced),
 * so after a crash a lock is either held by its old or its new owner.
 */
#define LOCK_MAGIC "xseglock1\n"

static int lock_file_name(const char *name, uint32_t nlen, char out[80])
{
	struct sha256 s;
	uint8_t d[32];

	sha256_init(&s);
	sha256_update(&s, name, nlen);
	if (sha256_final(&s, d))
		return ENOMEM;		/* never a name every lock would share */
	out[0] = LOCK_PREFIX;
	memcpy(out + 1, "lock.", 5);
	sha256_hex(d, out + 6);
	out[70] = 0;
	return 0;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * lock_read - the owner of the lock file @file (for @name): 1 with the tag in
 * @owner/@olen, 0 if there is none, or a negative errno (EIO: a lock file
 * that is not one, logged).
 */
static int lock_read(struct peer *p, const char *file, const char *name, uint32_t nlen,
		     char owner[XSEG_TARGET_MAX], uint32_t *olen)
{
	uint8_t buf[sizeof(LOCK_MAGIC) - 1 + 8 + 2 * XSEG_TARGET_MAX];
	const size_t m = sizeof(LOCK_MAGIC) - 1;
	int fd = obj_open(file, O_RDONLY, 0);
	int64_t n;
	uint32_t l1, l2;

	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	n = st_pread(fd, buf, sizeof(buf), 0);
	close(fd);
	if (n < 0)
		return (int)n;
	if ((size_t)n < m + 8 || memcmp(buf, LOCK_MAGIC, m))
		goto bad;
	l1 = get_le32(buf + m);
	if (l1 != nlen || (size_t)n < m + 8 + l1 || memcmp(buf + m + 4, name, nlen))
		goto bad;
	l2 = get_le32(buf + m + 4 + l1);
	if (l2 < 1 || l2 > XSEG_TARGET_MAX || (size_t)n != m + 8 + l1 + l2)
		goto bad;
	memcpy(owner, buf + m + 8 + l1, l2);
	*olen = l2;
	return 1;
bad:
	peer_log(p, 0, "lock file %s/\\x02%s is damaged (not the lock of this name): left as is", fd_.dir,
		 file + 1);
	return -EIO;
}

/* lock_write - make @owner the holder of @name's lock, durably. 0 or a negative errno. */
static int lock_write(const char *file, const char *name, uint32_t nlen, const char *owner, uint32_t olen)
{
	uint8_t buf[sizeof(LOCK_MAGIC) - 1 + 8 + 2 * XSEG_TARGET_MAX];
	const size_t m = sizeof(LOCK_MAGIC) - 1;
	char tmp[64];
	int fd, r;

	memcpy(buf, LOCK_MAGIC, m);
	put_le32(buf + m, nlen);
	memcpy(buf + m + 4, name, nlen);
	put_le32(buf + m + 4 + nlen, olen);
	memcpy(buf + m + 8 + nlen, owner, olen);
	snprintf(tmp, sizeof(tmp), "%clock.%d.%" PRIu64, TMP_PREFIX, (int)getpid(),
		 __atomic_fetch_add(&fd_.tmp_seq, 1, __ATOMIC_RELAXED));
	fd = obj_open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		return fd;
	r = st_pwrite(fd, buf, m + 8 + nlen + olen, 0, 0);
	if (!r && fsync(fd))
		r = -errno;
	close(fd);
	if (!r && renameat(fd_.dirfd, tmp, fd_.dirfd, file))
		r = -errno;
	if (r) {
		unlinkat(fd_.dirfd, tmp, 0);
		return r;
	}
	return fsync(fd_.dirfd) ? -errno : 0;
}

/*
 * lock_op - ACQUIRE (@acquire) or RELEASE the lock on @name for @owner;
 * @force takes or drops it whoever holds it. Returns 0 or an errno; the
 * holder's tag (the one that made it fail, or the one a force displaced) is
 * left in @prev/@plen (0: none).
 */
static int lock_op(struct peer *p, int acquire, int force, const char *name, uint32_t nlen,
		   const char *owner, uint32_t olen, char prev[XSEG_TARGET_MAX], uint32_t *plen)
{
	char file[80];
	int r, held;

	*plen = 0;
	if ((r = lock_file_name(name, nlen, file)))
		return r;
	pthread_mutex_lock(&fd_.lock_mu);
	held = lock_read(p, file, name, nlen, prev, plen);
	if (held < 0) {
		r = -held;
		*plen = 0;
	} else if (held && *plen == olen && !memcmp(prev, owner, olen)) {
		*plen = 0;			/* our own: nothing to report */
		r = acquire ? 0 : (unlinkat(fd_.dirfd, file, 0) || fsync(fd_.dirfd)) ? errno : 0;
	} else if (held && !force) {
		r = acquire ? EBUSY : EPERM;	/* another owner holds it */
	} else if (acquire) {
		r = -lock_write(file, name, nlen, owner, olen);
		if (!r && held)
			peer_log(p, 1, "lock %.*s taken by force from %.*s", (int)nlen, name, (int)*plen, prev);
	} else if (!held) {
		r = ENOENT;			/* not held */
	} else {
		r = (unlinkat(fd_.dirfd, file, 0) || fsync(fd_.dirfd)) ? errno : 0;
		if (!r)
			peer_log(p, 1, "lock %.*s released by force from %.*s", (int)nlen, name, (int)*plen, prev);
	}
	pthread_mutex_unlock(&fd_.lock_mu);
	return r;
}

/* Ops whose data carries a second name or an owner tag (size bytes of data). */
static int data_is_name(uint32_t op)
{
	return op == X_COPY || op == X_RENAME || op == X_ACQUIRE || op == X_RELEASE;
}

#include "filed-fdcache.h"

/*
 * serve_inline - READ or WRITE of object @name on the dispatch thread, when
 * it cannot block (see fd_.inline_mode); PEER_DEFER hands it to the pool,
 * which does it again from the start (nothing is changed before a refusal).
 * Same checks and replies as work().
 */
static int serve_inline(struct peer *p, struct xseg_request *req, const char *name, uint32_t nlen)
{
	uint64_t cap;
	uint8_t *data = xseg_req_buffer(p->xs, req, &cap);
	/* Copied out of shared memory once (as in work()). */
	uint64_t off = __atomic_load_n(&req->offset, __ATOMIC_RELAXED);
	uint64_t len = __atomic_load_n(&req->size, __ATOMIC_RELAXED);
	uint64_t dlen = __atomic_load_n(&req->data_len, __ATOMIC_RELAXED);
	uint32_t op = __atomic_load_n(&req->op, __ATOMIC_RELAXED);
	uint32_t flags = __atomic_load_n(&req->flags, __ATOMIC_RELAXED);
	int mode = __atomic_load_n(&fd_.inline_mode, __ATOMIC_RELAXED);
	struct stat st;
	struct fd_cache *c;
	int64_t n;
	int fd, r = 0, cached = 0;

	if (mode == INLINE_OFF || len > fd_.inline_max)
		return PEER_DEFER;
	if (mode == INLINE_NOWAIT && op != X_READ)
		return PEER_DEFER;
	if (dlen > cap)
		dlen = 0;
	if (len && (!data || len > dlen))
		return EINVAL;
	if (op == X_WRITE && (off > INT64_MAX || len > INT64_MAX - off))
		return EFBIG;
	c = fdc_get();
	if (c && (fd = fdc_find(c, name, nlen, op != X_READ)) >= 0) {
		cached = 1;
	} else if (mode == INLINE_MEMORY && c) {
		/* Read and write (so one fd serves both), created by a write as below. */
		fd = obj_open_st(name, op == X_READ ? O_RDWR : O_RDWR | O_CREAT, 0644, &st);
		if (fd == -EACCES || fd == -EPERM)
			fd = obj_open_st(name, op == X_READ ? O_RDONLY : O_WRONLY | O_CREAT, 0644, &st);
		else if (fd >= 0 && st.st_dev == fd_.dev) {
			fdc_put(c, name, nlen, fd, 1);
			cached = 1;
		}
		if (fd < 0)
			return -fd;
		if (!cached && st.st_dev != fd_.dev) {	/* mounted over from another file system */
			close(fd);
			return PEER_DEFER;
		}
	} else if (mode == INLINE_NOWAIT) {
		/* Only a lookup the dentry cache answers: one needing the disk is -EAGAIN. */
		struct open_how how = { .flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
					.resolve = RESOLVE_CACHED | RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH };

		fd = (int)syscall(SYS_openat2, fd_.dirfd, name, &how, sizeof(how));
		if (fd < 0) {
			if (errno == ENOSYS || errno == EINVAL || errno == E2BIG) {
				__atomic_store_n(&fd_.inline_mode, INLINE_OFF, __ATOMIC_RELAXED);
				peer_log(p, 2, "openat2(RESOLVE_CACHED) refused (%s): every read goes to the I/O pool",
					 strerror(errno));
			}
			return PEER_DEFER;	/* ENOENT, ELOOP and the rest too: work() replies them */
		}
		if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
			close(fd);
			return PEER_DEFER;
		}
		if (c) {
			fdc_put(c, name, nlen, fd, 0);
			cached = 1;
		}
	} else {
		fd = obj_open_st(name, op == X_READ ? O_RDONLY : O_WRONLY | O_CREAT, 0644, &st);
		if (fd < 0)
			return -fd;
		if (st.st_dev != fd_.dev) {	/* mounted over from another file system */
			close(fd);
			return PEER_DEFER;
		}
	}
	if (op == X_READ) {
		n = len ? st_preadv2(fd, data, len, off, mode == INLINE_NOWAIT ? RWF_NOWAIT : 0) : 0;
		if (n == -EOPNOTSUPP && mode == INLINE_NOWAIT) {
			__atomic_store_n(&fd_.inline_mode, INLINE_OFF, __ATOMIC_RELAXED);
			peer_log(p, 2, "%s: RWF_NOWAIT refused: every read goes to the I/O pool", fd_.dir);
		}
		if (mode == INLINE_NOWAIT && (n == -EAGAIN || n == -EOPNOTSUPP))
			r = PEER_DEFER;
		else if (n < 0)
			r = (int)-n;
		else
			req->serviced = (uint64_t)n;	/* short at the end of the object */
	} else if ((flags & XF_FLUSH) && fdatasync(fd)) {
		r = errno;
	} else {
		r = -st_pwrite(fd, data, len, off, !!(flags & XF_FUA));
		if (!r)
			req->serviced = len;
	}
	if (!cached)
		close(fd);
	return r;
}

/*
 * A test hook: with XSEG_FILED_FAULT=hold-write:PREFIX:/FILE in its
 * environment, filed holds the first WRITE of an object whose name starts
 * with PREFIX on an I/O thread until FILE exists (looked for every 10 ms,
 * at most 120 s) before writing it; every other request is served
 * meanwhile, and it logs when the write is held and when it goes on. The
 * test, not a clock, decides when the piece lands, whatever the machine's
 * speed: test/peers/vlmcd-fence.c kills vlmcd while one piece of its write
 * waits here. Tests only; nothing else reads it.
 */
static int fault_match(const char *name)
{
	return __atomic_load_n(&fd_.fault_armed, __ATOMIC_ACQUIRE) &&
	       !strncmp(name, fd_.fault_prefix, strlen(fd_.fault_prefix));
}

/*
 * On the dispatch thread, in the order filed accepts requests: is @req the
 * first matching WRITE (then it is the one held)? Chosen there, not on the
 * pool, so a WRITE accepted later can never be held in its place.
 */
static int fault_pick(struct xseg_request *req, const char *name)
{
	if (req->op != X_WRITE || !fault_match(name) || !__atomic_exchange_n(&fd_.fault_armed, 0, __ATOMIC_ACQ_REL))
		return 0;
	__atomic_store_n(&fd_.fault_req, req, __ATOMIC_RELEASE);
	return 1;
}

static void fault_delay(struct peer *p, struct xseg_request *req, const char *name)
{
	unsigned waited = 0;

	if (__atomic_load_n(&fd_.fault_req, __ATOMIC_ACQUIRE) != req)
		return;
	__atomic_store_n(&fd_.fault_req, NULL, __ATOMIC_RELAXED);
	peer_log(p, 0, "test hook: WRITE of %s held until %s exists", name, fd_.fault_release);
	for (; access(fd_.fault_release, F_OK) && waited < 12000; waited++)
		usleep(10000);
	if (waited == 12000)
		peer_log(p, 0, "test hook: %s did not appear within 120 s", fd_.fault_release);
	peer_log(p, 0, "test hook: WRITE of %s goes on", name);
}

static int fault_parse(const char *v)
{
	const char *a = v + strlen("hold-write:"), *c = strrchr(v, ':');

	if (strncmp(v, "hold-write:", strlen("hold-write:")) || c < a || (size_t)(c - a) > XSEG_TARGET_MAX ||
	    c[1] != '/' || strlen(c + 1) >= sizeof(fd_.fault_release))
		return -1;
	strcpy(fd_.fault_release, c + 1);
	memcpy(fd_.fault_prefix, a, (size_t)(c - a));
	fd_.fault_prefix[c - a] = 0;
	fd_.fault_armed = 1;
	return 0;
}

/* On the dispatch thread: checks, locks, READ and WRITE that cannot block; the rest is deferred. */
static int serve(struct peer *p, uint32_t port, struct xseg_request *req)
{
	char name[XSEG_TARGET_MAX + 1], shown[XSEG_TARGET_MAX * 4 + 1];
	uint64_t tlen = req->target_len;
	const char *data = xseg_req_data(p->xs, req);

	(void)port;
	switch (req->op) {
	case X_PING:
		return 0;
	case X_FLUSH:
	case X_SYNC:
	case X_COMMIT:
		if (!tlen)
			return PEER_DEFER;	/* the whole store */
		break;
	case X_LIST:
		return PEER_DEFER;	/* a directory scan (checked by do_list) */
	case X_READ: case X_WRITE: case X_INFO: case X_DELETE: case X_CREATE: case X_COPY:
	case X_RENAME: case X_HASH: case X_ACQUIRE: case X_RELEASE: case X_TRUNCATE:
	case X_DISCARD: case X_WRITE_ZEROES:
		break;
	default:
		peer_log(p, 2, "%s: operation not supported", xseg_op_name(req->op));
		return EOPNOTSUPP;
	}
	if (!valid_name(req->target, tlen, name)) {
		peer_log(p, 1, "%s: invalid object name '%s' (%" PRIu64 " bytes): names have 1..%u bytes, "
			 "no '/' or control characters, and are not '.' or '..'", xseg_op_name(req->op),
			 printable(req->target, tlen, shown, sizeof(shown)), tlen, (unsigned)NAME_LIMIT);
		return EINVAL;
	}
	if ((req->op == X_READ || req->op == X_WRITE) && req->size && (req->size > req->data_len || !data))
		return EINVAL;		/* the buffer cannot hold what was asked */
	if (data_is_name(req->op)) {
		char other[XSEG_TARGET_MAX + 1];

		if (!data || req->size > req->data_len || req->size < 1 || req->size > XSEG_TARGET_MAX) {
			peer_log(p, 1, "%s %s: the data must carry 1..%u bytes (size) of %s", xseg_op_name(req->op),
				 name, XSEG_TARGET_MAX, req->op == X_ACQUIRE || req->op == X_RELEASE ?
				 "owner tag" : "name");
			return EINVAL;
		}
		if (req->op == X_ACQUIRE || req->op == X_RELEASE)
			return PEER_DEFER;	/* the lock files */
		if (!valid_name(data, req->size, other)) {
			peer_log(p, 1, "%s %s: invalid object name '%s' in the data", xseg_op_name(req->op), name,
				 printable(data, req->size, shown, sizeof(shown)));
			return EINVAL;
		}
	}
	if ((req->op == X_HASH && (!data || req->data_len < 64)) || (req->op == X_INFO && (!data || req->data_len < 8)))
		return EINVAL;
	if (fault_pick(req, name))
		return PEER_DEFER;	/* the test hook waits on an I/O thread */
	if (req->op == X_READ || req->op == X_WRITE)
		return serve_inline(p, req, name, (uint32_t)tlen);	/* valid_name checked tlen */
	return PEER_DEFER;
}

static int do_copy(struct peer *p, const char *dst, const char *src, struct xseg_request *req)
{
	char tmp[64];
	int in, out, r = 0;
	uint64_t done = 0;
	struct stat st;

	in = obj_open(src, O_RDONLY, 0);
	if (in < 0)
		return -in;
	snprintf(tmp, sizeof(tmp), "%ccopy.%d.%" PRIu64, TMP_PREFIX, (int)getpid(),
		 __atomic_fetch_add(&fd_.tmp_seq, 1, __ATOMIC_RELAXED));
	out = obj_open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (out < 0) {
		close(in);
		return -out;
	}
	if (fstat(in, &st)) {
		r = errno;
		goto fail;
	}
	while (done < (uint64_t)st.st_size) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)((uint64_t)st.st_size - done), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL)) {
			/* No in-kernel copy here: through a buffer. */
			static __thread uint8_t buf[65536];
			int64_t got = st_pread(in, buf, sizeof(buf), done);

			if (got < 0) {
				r = (int)-got;
				goto fail;
			}
			if (got == 0)
				break;
			r = -st_pwrite(out, buf, (uint64_t)got, done, 0);
			if (r)
				goto fail;
			done += (uint64_t)got;
			continue;
		}
		if (n < 0) {
			r = errno;
			goto fail;
		}
		if (n == 0)
			break;		/* the source shrank meanwhile */
		done += (uint64_t)n;
	}
	if ((req->flags & XF_FUA) && fsync(out)) {
		r = errno;
		goto fail;
	}
	if (renameat(fd_.dirfd, tmp, fd_.dirfd, dst)) {
		r = errno;
		goto fail;
	}
	/* FUA: the new name is durable too, not only the bytes (the directory entry). */
	if ((req->flags & XF_FUA) && fsync(fd_.dirfd)) {
		r = errno;
		close(in);
		close(out);
		return r;
	}
	close(in);
	close(out);
	req->serviced = done;
	peer_log(p, 3, "copied %s to %s (%" PRIu64 " bytes)", src, dst, done);
	return 0;
fail:
	unlinkat(fd_.dirfd, tmp, 0);
	close(in);
	close(out);
	return r;
}

static int do_hash(struct peer *p, const char *name, struct xseg_request *req)
{
	static __thread uint8_t buf[65536];
	int fd = obj_open(name, O_RDONLY, 0);
	struct sha256 s;
	uint8_t digest[32];
	uint64_t off = 0;

	if (fd < 0)
		return -fd;
	if (sha256_init(&s)) {
		close(fd);
		return ENOMEM;
	}
	for (;;) {
		int64_t n = st_pread(fd, buf, sizeof(buf), off);

		if (n < 0) {
			close(fd);
			sha256_free(&s);
			return (int)-n;
		}
		if (n == 0)
			break;
		sha256_update(&s, buf, (size_t)n);
		off += (uint64_t)n;
	}
	close(fd);
	if (sha256_final(&s, digest))
		return EIO;
	sha256_hex(digest, xseg_req_data(p->xs, req));
	req->serviced = 64;
	return 0;
}

/* On an I/O thread. */
static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * do_list - LIST: the names of the objects (regular files with valid
 * names: never locks or temporaries) that start with the target (the
 * prefix, may be empty) and sort after the name in the data (size bytes; 0:
 * from the first), in byte order, each followed by '\n', as many whole names
 * as fit the buffer; serviced 0 when none is left. One scan of the directory
 * per request, so a caller pages through a large store with the last name
 * it got.
 */
static int do_list(struct peer *p, struct xseg_request *req, uint8_t *data, uint64_t dlen, uint64_t len)
{
	char prefix[XSEG_TARGET_MAX + 1], after[XSEG_TARGET_MAX + 1], **names = NULL;
	uint32_t plen = __atomic_load_n(&req->target_len, __ATOMIC_RELAXED);
	size_t n = 0, cap = 0, o = 0;
	struct dirent *e;
	DIR *d;
	int fd, r = 0;

	if (plen > XSEG_TARGET_MAX || len > XSEG_TARGET_MAX || !data || len > dlen)
		return EINVAL;
	memcpy(prefix, req->target, plen);
	prefix[plen] = 0;
	memcpy(after, data, len);	/* copied out of shared memory once */
	after[len] = 0;
	for (uint32_t i = 0; i < plen; i++)
		if ((unsigned char)prefix[i] < 0x20 || prefix[i] == 0x7f || prefix[i] == '/') {
			peer_log(p, 1, "list: the prefix has a '/' or a control character");
			return EINVAL;
		}
	if (memchr(after, 0, len)) {
		peer_log(p, 1, "list: the name to list after has a NUL");
		return EINVAL;
	}
	if (dlen < NAME_LIMIT + 1) {
		peer_log(p, 1, "list: the buffer (%" PRIu64 " bytes) cannot hold a name of %u bytes", dlen,
			 (unsigned)NAME_LIMIT + 1);
		return EINVAL;
	}
	fd = openat(fd_.dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		r = errno;
		if (fd >= 0)
			close(fd);
		return r;
	}
	while ((e = readdir(d))) {
		char tmp[XSEG_TARGET_MAX + 1];
		size_t l = strlen(e->d_name);
		struct stat st;

		if (l < plen || memcmp(e->d_name, prefix, plen) || strcmp(e->d_name, after) <= 0 ||
		    !valid_name(e->d_name, l, tmp))
			continue;
		if (e->d_type != DT_REG && (e->d_type != DT_UNKNOWN ||
		    fstatat(fd_.dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode)))
			continue;
		if (n == cap) {
			char **m = realloc(names, (cap = cap ? 2 * cap : 256) * sizeof(*names));

			if (!m) {
				r = ENOMEM;
				break;
			}
			names = m;
		}
		if (!(names[n] = strdup(e->d_name))) {
			r = ENOMEM;
			break;
		}
		n++;
	}
	closedir(d);
	if (!r) {
		if (n)		/* qsort(NULL, 0) is undefined */
			qsort(names, n, sizeof(*names), name_cmp);
		for (size_t i = 0; i < n; i++) {
			size_t l = strlen(names[i]);

			if (o + l + 1 > dlen)
				break;
			memcpy(data + o, names[i], l);
			data[o + l] = '\n';
			o += l + 1;
		}
		req->serviced = o;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

static int work(struct peer *p, uint32_t port, struct xseg_request *req)
{
	char name[XSEG_TARGET_MAX + 1], other[XSEG_TARGET_MAX + 1];
	/*
	 * Copied out of shared memory once; the chunk and its capacity come
	 * from one read of the buffer index, and data_len never counts past it.
	 */
	uint64_t cap;
	uint8_t *data = xseg_req_buffer(p->xs, req, &cap);
	uint64_t off = __atomic_load_n(&req->offset, __ATOMIC_RELAXED);
	uint64_t len = __atomic_load_n(&req->size, __ATOMIC_RELAXED);
	uint64_t dlen = __atomic_load_n(&req->data_len, __ATOMIC_RELAXED);
	uint32_t op = __atomic_load_n(&req->op, __ATOMIC_RELAXED);
	int fd = -1, r = 0, cached = 0;
	struct stat st;

	(void)port;
	req->serviced = 0;
	if (dlen > cap)
		dlen = 0;
	if (((op == X_READ || op == X_WRITE) && len && (!data || len > dlen)) ||
	    (op == X_INFO && (!data || dlen < 8)) || (op == X_HASH && (!data || dlen < 64)))
		return EINVAL;
	if (op == X_FLUSH || op == X_SYNC || op == X_COMMIT) {
		if (!req->target_len)
			return syncfs(fd_.dirfd) ? errno : 0;
	}
	if (op == X_LIST)
		return do_list(p, req, data, dlen, len);
	/* Checked by serve(); copied again, from shared memory, for our own use. */
	if (!valid_name(req->target, req->target_len, name))
		return EINVAL;
	if (op == X_COPY || op == X_RENAME) {
		if (!data || len > dlen || !valid_name((const char *)data, len, other))
			return EINVAL;
	}
	if (op == X_ACQUIRE || op == X_RELEASE) {
		char prev[XSEG_TARGET_MAX];
		uint32_t plen;

		if (!data || len < 1 || len > XSEG_TARGET_MAX || len > dlen)
			return EINVAL;
		memcpy(other, data, len);	/* copy the tag out of shared memory once */
		r = lock_op(p, op == X_ACQUIRE, !!(req->flags & XF_FORCE), name, (uint32_t)strlen(name),
			    other, (uint32_t)len, prev, &plen);
		/* The holder's tag, as a failed reply's text or a forced one's result (volume.h). */
		if (plen > dlen)
			plen = (uint32_t)dlen;
		memcpy(data, prev, plen);
		req->serviced = plen;
		return r;
	}
	switch (op) {
	case X_READ: {
		int64_t n;

		fd = pool_open(name, 0, &cached);
		if (fd < 0)
			return -fd;
		n = len ? st_pread(fd, data, len, off) : 0;
		if (n < 0)
			r = (int)-n;
		else
			req->serviced = (uint64_t)n;	/* short at the end of the object */
		break;
	}
	case X_WRITE:
		if (off > INT64_MAX || len > INT64_MAX - off)
			return EFBIG;
		fault_delay(p, req, name);
		fd = pool_open(name, 1, &cached);
		if (fd < 0)
			return -fd;
		if ((req->flags & XF_FLUSH) && fdatasync(fd)) {
			r = errno;
			break;
		}
		r = -st_pwrite(fd, data, len, off, !!(req->flags & XF_FUA));
		if (!r)
			req->serviced = len;
		break;
	case X_INFO:
		fd = obj_open(name, O_RDONLY, 0);
		if (fd < 0)
			return -fd;
		if (fstat(fd, &st)) {
			r = errno;
			break;
		}
		for (int i = 0; i < 8; i++)
			data[i] = (uint8_t)((uint64_t)st.st_size >> (8 * i));
		req->serviced = 8;
		break;
	case X_DELETE:
		if (fstatat(fd_.dirfd, name, &st, AT_SYMLINK_NOFOLLOW))
			return errno;
		if (!S_ISREG(st.st_mode))
			return EINVAL;
		r = unlinkat(fd_.dirfd, name, 0) ? errno : 0;
		names_changed();
		return r;
	case X_CREATE:
		if (len > INT64_MAX)
			return EFBIG;
		fd = obj_open(name, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0)
			return -fd;
		if (len && ftruncate(fd, (off_t)len)) {
			r = errno;
			unlinkat(fd_.dirfd, name, 0);
		} else if ((req->flags & XF_FUA) && (fsync(fd) || fsync(fd_.dirfd))) {
			r = errno;
		}
		name_changed(name);	/* an fd cached for a name removed by hand goes */
		break;
	case X_TRUNCATE:
		if (off > INT64_MAX)
			return EFBIG;
		fd = obj_open(name, O_WRONLY, 0);
		if (fd < 0)
			return -fd;
		if (ftruncate(fd, (off_t)off))
			r = errno;
		else if ((req->flags & XF_FUA) && fsync(fd))
			r = errno;
		break;
	case X_COPY: {
		/* The destination is another file now; an fd of the one it replaced would keep its space. */
		int replaced = !fstatat(fd_.dirfd, other, &st, AT_SYMLINK_NOFOLLOW);

		r = do_copy(p, name, other, req);
		if (replaced)
			names_changed();
		else
			name_changed(other);
		break;
	}
	case X_RENAME:
		if (fstatat(fd_.dirfd, name, &st, AT_SYMLINK_NOFOLLOW))
			return errno;
		if (!S_ISREG(st.st_mode))
			return EINVAL;
		r = renameat(fd_.dirfd, name, fd_.dirfd, other) ? errno : 0;
		names_changed();
		if (r)
			return r;
		if ((req->flags & XF_FUA) && fsync(fd_.dirfd))
			return errno;
		return 0;
	case X_HASH:
		return do_hash(p, name, req);
	case X_FLUSH:
	case X_SYNC:
	case X_COMMIT:
		fd = obj_open(name, O_RDONLY, 0);
		if (fd < 0)
			return -fd;
		if (op == X_FLUSH ? fdatasync(fd) : fsync(fd))
			r = errno;
		/* COMMIT: the object's name (a create, a rename) is durable too. */
		else if (op == X_COMMIT && fsync(fd_.dirfd))
			r = errno;
		break;
	case X_DISCARD:
	case X_WRITE_ZEROES: {
		uint64_t end, n;

		fd = obj_open(name, O_WRONLY, 0);
		if (fd < 0)
			return -fd;
		if (fstat(fd, &st)) {
			r = errno;
			break;
		}
		/* Within the object only: neither op changes its size. */
		end = len > UINT64_MAX - off ? UINT64_MAX : off + len;
		if (end > (uint64_t)st.st_size)
			end = (uint64_t)st.st_size;
		n = off < end ? end - off : 0;
		r = -(op == X_DISCARD ? st_discard(fd, 0, off, n) : st_write_zeroes(fd, 0, off, n));
		if (!r && (req->flags & XF_FUA) && fdatasync(fd))
			r = errno;
		if (!r)
			req->serviced = n;
		break;
	}
	default:
		r = EOPNOTSUPP;
	}
	if (fd >= 0 && !cached)
		close(fd);
	return r;
}

/* Open (creating if missing) the directory, lock it, remove leftover temporary files. */
static int open_dir(struct peer *p)
{
	DIR *d;
	struct dirent *e;
	int dfd;

	if (mkdir(fd_.dir, 0755) == 0)
		peer_log(p, 2, "created %s", fd_.dir);
	fd_.dirfd = open(fd_.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd_.dirfd < 0) {
		peer_log(p, 0, "cannot open directory %s: %s", fd_.dir, strerror(errno));
		return -1;
	}
	if (flock(fd_.dirfd, LOCK_EX | LOCK_NB)) {
		peer_log(p, 0, "%s is served by another filed (flock: %s)", fd_.dir, strerror(errno));
		return -1;
	}
	dfd = dup(fd_.dirfd);
	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		peer_log(p, 0, "cannot list %s: %s", fd_.dir, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	while ((e = readdir(d)))
		if (e->d_name[0] == TMP_PREFIX && unlinkat(fd_.dirfd, e->d_name, 0) == 0)
			peer_log(p, 2, "removed a leftover temporary file");
	closedir(d);
	{
		struct stat st;

		if (fstat(fd_.dirfd, &st)) {
			peer_log(p, 0, "cannot stat %s: %s", fd_.dir, strerror(errno));
			return -1;
		}
		fd_.dev = st.st_dev;
	}
	if (fd_.inline_mode != INLINE_OFF)	/* --no-inline sets OFF */
		fd_.inline_mode = st_memory_backed(fd_.dirfd) ? INLINE_MEMORY : INLINE_NOWAIT;
	peer_log(p, 2, "serving %s (inline: %s)", fd_.dir,
		 fd_.inline_mode == INLINE_MEMORY ? "reads and writes (in memory)" :
		 fd_.inline_mode == INLINE_NOWAIT ? "cached reads" : "none");
	return 0;
}

static int own(struct peer *p, int opt, const char *arg)
{
	(void)p;
	switch (opt) {
	case 'D': fd_.dir = arg; return 0;
	case 'N': fd_.inline_mode = INLINE_OFF; return 0;
	case 'C': fd_.no_fd_cache = 1; return 0;
	default: return -1;
	}
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = { { "dir", required_argument, NULL, 'D' },
		{ "no-inline", no_argument, NULL, 'N' }, { "no-fd-cache", no_argument, NULL, 'C' }, { 0 } };
	/*
	 * No poll before sleeping by default: behind vlmcd, filed answers the
	 * client directly and its next request is a round trip away; its 20 us
	 * poll bought nothing measurable on either VM we measured (docs/peers.md,
	 * vlmcd).
	 */
	struct peer p = { .name = "filed", .serve = serve, .work = work, .required = "-D DIR",
			  .spin_us = PEER_SPIN_OFF };
	int r = peer_parse_args(&p, argc, argv, "D:", lopts, own,
				"  -D, --dir DIR       the object directory (created if missing; its parent must exist)\n"
				"  --no-inline         every READ/WRITE on the I/O pool (default: those that\n"
				"                      cannot block are served on the dispatch thread)\n"
				"  --no-fd-cache       close every object after each READ/WRITE (default: each\n"
				"                      dispatch and I/O thread keeps up to 128 open)");

	if (r)
		return r > 0 ? 0 : 2;
	if (!fd_.dir) {
		fprintf(stderr, "filed: --dir DIR is required\n");
		return 2;
	}
	if (getenv("XSEG_FILED_FAULT")) {
		if (fault_parse(getenv("XSEG_FILED_FAULT"))) {
			fprintf(stderr, "filed: XSEG_FILED_FAULT='%s': not hold-write:PREFIX:/FILE\n",
				getenv("XSEG_FILED_FAULT"));
			return 2;
		}
		fprintf(stderr, "filed: test hook XSEG_FILED_FAULT=%s armed\n", getenv("XSEG_FILED_FAULT"));
	}
	if (open_dir(&p))
		return 1;
	fdc_size(&p);
	if (peer_start(&p))
		return 1;
	r = peer_run(&p);
	fdc_end(&p);
	if (syncfs(fd_.dirfd))
		peer_log(&p, 0, "syncfs %s: %s", fd_.dir, strerror(errno));
	peer_stop(&p);
	close(fd_.dirfd);
	return r ? 1 : 0;
}
