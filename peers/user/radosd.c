/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * radosd - an object store peer over librados: the ops filed serves, with
 * filed's semantics (docs/peers.md), on objects of one pool (and namespace)
 * of a Ceph cluster. Names follow objname.h.
 *
 * Completion path (docs/peers.md, radosd): READ, WRITE, INFO, CREATE,
 * TRUNCATE, DELETE and FLUSH/SYNC of an object are one librados aio each,
 * submitted on the dispatch thread (serve() returns PEER_ASYNC); librados
 * calls done() on its finisher thread, which fills in the reply and calls
 * peer_complete(): no lock is shared with the client or taken between the
 * two threads, only the request's own fields, written before the reply is
 * queued. Reads land in the segment buffer (librados reads into the given
 * buffer); writes are copied once by librados' C API into its buffer list.
 * The ops that take several round trips (COPY, RENAME, HASH, DISCARD,
 * WRITE_ZEROES, ACQUIRE/RELEASE) run synchronously on the framework's I/O
 * pool (PEER_DEFER). Every librados call is bounded by --timeout
 * (rados_osd_op_timeout, rados_mon_op_timeout): a request whose OSD is down
 * fails with EIO when it expires.
 */
#include <inttypes.h>
#include <pthread.h>
#include <rados/librados.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "objname.h"
#include "peer.h"
#include "sha256.h"

#if defined(__SANITIZE_THREAD__)
/*
 * librados is not built with TSan: its atomics and lock-free refcounts are
 * invisible to it, so its own threads "race" on every connection. TSan
 * ignores what the Ceph libraries do through its interceptors (memory,
 * locks: called_from_lib), and nothing else: a report with a frame of
 * radosd (done() on librados' finisher thread included) is not suppressed.
 * Since librados' locks are invisible too, the hand-off of a request to the
 * finisher is made visible by radosd itself (struct aio's armed, struct
 * sreq's left: a release before the aio starts, an acquire in the callback).
 */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
	return "called_from_lib:libceph-common.so\ncalled_from_lib:librados.so\n"
	       "called_from_lib:libstdc++.so\nmutex:__run_exit_handlers\n";
}
#endif

/* Lock records: one object per lock name, prefixed by a byte no object name has. */
#define LOCK_PREFIX "\002lock."
#define LOCK_NAME "xseg"		/* the cls_lock lock on that object */
#define COPY_MAX (90ull << 20)		/* osd_max_write_size: one write_full */

static struct radosd {
	const char *conf, *name, *keyring, *pool, *ns;
	unsigned timeout, connect_timeout;
	uint64_t stripe;		/* --stripe: 0, or the stripe object size */
	struct peer *peer;		/* for the logs of the I/O pool's helpers */
	rados_t cluster;
	rados_ioctx_t io;
} rd_ = { .name = "client.admin", .pool = "xseg", .timeout = 30, .connect_timeout = 30 };

/* One aio in flight. */
struct aio {
	struct peer *p;
	struct xseg_request *req;
	uint32_t op;
	rados_completion_t c;
	rados_write_op_t wop;
	uint64_t size;			/* INFO: filled by the stat */
	time_t mtime;
	int armed;			/* released before the aio starts, acquired by done() */
};

/* A librados result (negative errno) as a reply's errno: a timeout is EIO. */
static int rados_err(int r)
{
	if (r >= 0)
		return 0;
	if (r == -ETIMEDOUT || r == -ESHUTDOWN || r == -ENOTCONN || r == -ECONNREFUSED || r < -4095)
		return EIO;
	return -r;
}

/* On librados' finisher thread: the reply. */
static void done(rados_completion_t c, void *arg)
{
	struct aio *a = arg;
	struct xseg_request *req;
	int r = rados_aio_get_return_value(c), err = rados_err(r);

	(void)__atomic_load_n(&a->armed, __ATOMIC_ACQUIRE);	/* what submit() wrote, before */
	req = a->req;

	if (!err) {
		switch (a->op) {
		case X_READ:
			req->serviced = (uint64_t)r;	/* short at the end of the object */
			break;
		case X_WRITE:
			req->serviced = req->size;
			break;
		case X_INFO: {
			uint8_t *d = xseg_req_data(a->p->xs, req);

			for (int i = 0; i < 8; i++)
				d[i] = (uint8_t)(a->size >> (8 * i));
			req->serviced = 8;
			break;
		}
		default:
			break;
		}
	} else if (err == EIO) {
		peer_log(a->p, 1, "%s %.*s: %s", xseg_op_name(a->op), (int)(req->target_len < XSEG_TARGET_MAX ?
			 req->target_len : XSEG_TARGET_MAX), req->target, strerror(-r));
	}
	if (a->wop)
		rados_release_write_op(a->wop);
	rados_aio_release(c);
	peer_complete(a->p, req, err);
	free(a);
}

/* Everything done() reads of @a is written: publish it (a release TSan sees) before the aio starts. */
static inline void arm(struct aio *a)
{
	__atomic_store_n(&a->armed, 1, __ATOMIC_RELEASE);
}

/*
 * submit - start the aio for @req (op, name, buffer checked by serve()).
 * Returns PEER_ASYNC, or an errno when it could not be started.
 */
static int submit(struct peer *p, struct xseg_request *req, const char *oid, uint32_t op, uint8_t *data,
		  uint64_t off, uint64_t len)
{
	struct aio *a = calloc(1, sizeof(*a));
	rados_completion_t c;
	rados_write_op_t wop;
	uint64_t *size;
	time_t *mtime;
	int r;

	if (!a)
		return ENOMEM;
	*a = (struct aio){ .p = p, .req = req, .op = op };
	req->serviced = 0;
	if (rados_aio_create_completion2(a, done, &a->c)) {
		free(a);
		return ENOMEM;
	}
	/* Once started, done() may free a at once: the aio calls take locals, read before arm(). */
	c = a->c;
	switch (op) {
	case X_READ:
		if (len) {
			arm(a);
			r = rados_aio_read(rd_.io, oid, c, (char *)data, (size_t)len, off);
			break;
		}
		/* A read of nothing only says whether the object exists: a stat. */
		__attribute__((fallthrough));
	case X_INFO:
	case X_FLUSH:
	case X_SYNC:
		/* RADOS acknowledges a write once it is durable: a flush has nothing to wait for. */
		a->op = op == X_READ ? X_PING : op;
		size = &a->size;	/* addresses, not reads of a */
		mtime = &a->mtime;
		arm(a);
		r = rados_aio_stat(rd_.io, oid, c, size, mtime);
		break;
	case X_WRITE:
		if (len) {
			arm(a);
			r = rados_aio_write(rd_.io, oid, c, (const char *)data, (size_t)len, off);
			break;
		}
		/* An empty write creates the object if missing. */
		__attribute__((fallthrough));
	case X_CREATE:
	case X_TRUNCATE:
		a->wop = rados_create_write_op();
		if (!a->wop) {
			r = -ENOMEM;
			break;
		}
		if (op == X_WRITE) {
			rados_write_op_create(a->wop, LIBRADOS_CREATE_IDEMPOTENT, NULL);
		} else if (op == X_CREATE) {
			rados_write_op_create(a->wop, LIBRADOS_CREATE_EXCLUSIVE, NULL);
			if (len)
				rados_write_op_truncate(a->wop, len);
		} else {
			rados_write_op_assert_exists(a->wop);
			rados_write_op_truncate(a->wop, off);
		}
		wop = a->wop;
		arm(a);
		r = rados_aio_write_op_operate(wop, rd_.io, c, oid, NULL, 0);
		break;
	case X_DELETE:
		arm(a);
		r = rados_aio_remove(rd_.io, oid, c);
		break;
	default:
		r = -EOPNOTSUPP;
	}
	if (r < 0) {
		/* Not started: a is still ours. */
		if (a->wop)
			rados_release_write_op(a->wop);
		rados_aio_release(c);
		free(a);
		return rados_err(r);
	}
	return PEER_ASYNC;
}

/*
 * The end of a HASH: @r < 0 (an error while reading) gives the hash back and
 * fails with it; else the 64 hex digits of @s's digest go to @data.
 */
static int hash_reply(struct sha256 *s, int r, struct xseg_request *req, uint8_t *data)
{
	uint8_t digest[32];

	if (r < 0) {
		sha256_free(s);	/* no-op when init failed */
		return r;
	}
	if ((r = sha256_final(s, digest)))
		return r;
	sha256_hex(digest, (char *)data);
	req->serviced = 64;
	return 0;
}

#include "radosd-stripe.h"
#include "radosd-scopy.h"

/* Ops whose data carries a second name or an owner tag (size bytes of data). */
static int data_is_name(uint32_t op)
{
	return op == X_COPY || op == X_RENAME || op == X_ACQUIRE || op == X_RELEASE;
}

/*
 * The request's fields, copied out of shared memory once: the chunk and its
 * capacity from one read of the buffer index. Returns 0 or EINVAL (the
 * buffer cannot hold what the op needs).
 */
struct args {
	uint32_t op, flags;
	uint64_t off, len, dlen;
	uint8_t *data;
	char name[XSEG_TARGET_MAX + 1], other[XSEG_TARGET_MAX + 1];
};

static int get_args(struct peer *p, struct xseg_request *req, struct args *a)
{
	uint64_t cap, tlen = __atomic_load_n(&req->target_len, __ATOMIC_RELAXED);
	char shown[XSEG_TARGET_MAX * 4 + 1];

	a->data = xseg_req_buffer(p->xs, req, &cap);
	a->op = __atomic_load_n(&req->op, __ATOMIC_RELAXED);
	a->flags = __atomic_load_n(&req->flags, __ATOMIC_RELAXED);
	a->off = __atomic_load_n(&req->offset, __ATOMIC_RELAXED);
	a->len = __atomic_load_n(&req->size, __ATOMIC_RELAXED);
	a->dlen = __atomic_load_n(&req->data_len, __ATOMIC_RELAXED);
	if (a->dlen > cap || !a->data)
		a->dlen = 0;
	if (!valid_name(req->target, tlen, a->name)) {
		peer_log(p, 1, "%s: invalid object name '%s' (%" PRIu64 " bytes): names have 1..%u bytes, "
			 "no '/' or control characters, and are not '.' or '..'", xseg_op_name(a->op),
			 printable(req->target, tlen, shown, sizeof(shown)), tlen, (unsigned)NAME_LIMIT);
		return EINVAL;
	}
	if ((a->op == X_READ || a->op == X_WRITE) && a->len > a->dlen)
		return EINVAL;		/* the buffer cannot hold what was asked */
	if ((a->op == X_HASH && a->dlen < 64) || (a->op == X_INFO && a->dlen < 8))
		return EINVAL;
	if (data_is_name(a->op)) {
		int lock = a->op == X_ACQUIRE || a->op == X_RELEASE;

		if (a->len < 1 || a->len > XSEG_TARGET_MAX || a->len > a->dlen) {
			peer_log(p, 1, "%s %s: the data must carry 1..%u bytes (size) of %s", xseg_op_name(a->op),
				 a->name, XSEG_TARGET_MAX, lock ? "owner tag" : "name");
			return EINVAL;
		}
		if (lock) {
			memcpy(a->other, a->data, a->len);
			a->other[a->len] = 0;
			if (strlen(a->other) != a->len) {
				peer_log(p, 1, "%s %s: an owner tag with a NUL byte (RADOS lock cookies are strings)",
					 xseg_op_name(a->op), a->name);
				return EINVAL;
			}
		} else if (!valid_name((const char *)a->data, a->len, a->other)) {
			peer_log(p, 1, "%s %s: invalid object name '%s' in the data", xseg_op_name(a->op), a->name,
				 printable((const char *)a->data, a->len, shown, sizeof(shown)));
			return EINVAL;
		}
	}
	return 0;
}

/* On the dispatch thread: checks, then one aio, or the I/O pool for the multi-step ops. */
static int serve(struct peer *p, uint32_t port, struct xseg_request *req)
{
	struct args a;
	int r;

	(void)port;
	switch (req->op) {
	case X_PING:
		return 0;
	case X_FLUSH:
	case X_SYNC:
		if (!req->target_len)
			return 0;	/* the whole store: every acknowledged write is durable */
		break;
	case X_READ: case X_WRITE: case X_INFO: case X_DELETE: case X_CREATE: case X_TRUNCATE:
	case X_COPY: case X_RENAME: case X_HASH: case X_ACQUIRE: case X_RELEASE:
	case X_DISCARD: case X_WRITE_ZEROES:
		break;
	default:
		peer_log(p, 2, "%s: operation not supported", xseg_op_name(req->op));
		return EOPNOTSUPP;
	}
	r = get_args(p, req, &a);
	if (r)
		return r;
	if (rd_.stripe) {
		switch (a.op) {
		case X_TRUNCATE: case X_DELETE:
			return PEER_DEFER;
		case X_READ:
			/* Past 2^63 nothing can be (a target ends before): only whether it exists. */
			if (a.len && a.off <= INT64_MAX && a.len <= INT64_MAX - a.off)
				return submit_striped(p, req, a.name, a.op, a.data, a.off, a.len);
			return submit(p, req, a.name, X_READ, a.data, a.off, 0);
		case X_WRITE:
			if (a.off > INT64_MAX || a.len > INT64_MAX - a.off)
				return EFBIG;
			if (a.len)
				return submit_striped(p, req, a.name, a.op, a.data, a.off, a.len);
			break;
		}
	}
	switch (a.op) {
	case X_COPY: case X_RENAME: case X_HASH: case X_ACQUIRE: case X_RELEASE:
	case X_DISCARD: case X_WRITE_ZEROES:
		return PEER_DEFER;
	case X_CREATE:
		if (a.len > INT64_MAX)
			return EFBIG;
		break;
	case X_WRITE:
		if (a.off > INT64_MAX || a.len > INT64_MAX - a.off)
			return EFBIG;
		break;
	case X_TRUNCATE:
		if (a.off > INT64_MAX)
			return EFBIG;
		break;
	}
	return submit(p, req, a.name, a.op, a.data, a.off, a.len);
}

/* The whole of object @oid, malloc'd, in *buf (NULL if empty), its size in *size. 0 or a negative errno. */
static int read_all(const char *oid, uint8_t **buf, uint64_t *size)
{
	uint64_t sz;
	time_t mt;
	int r = rados_stat(rd_.io, oid, &sz, &mt);

	*buf = NULL;
	*size = 0;
	if (r < 0)
		return r;
	if (sz > COPY_MAX)
		return -EFBIG;
	if (!sz)
		return 0;
	*buf = malloc(sz);
	if (!*buf)
		return -ENOMEM;
	r = rados_read(rd_.io, oid, (char *)*buf, sz, 0);
	if (r < 0) {
		free(*buf);
		*buf = NULL;
		return r;
	}
	*size = (uint64_t)r;	/* shrunk meanwhile: what was there */
	return 0;
}

/*
 * COPY @src over @dst: read it whole and write it with one write_full, which
 * RADOS applies atomically: a reader of @dst sees the old or the new object.
 */
static int do_copy(const char *dst, const char *src, uint64_t *copied)
{
	uint8_t *buf;
	uint64_t n;
	int r = read_all(src, &buf, &n);

	if (r < 0)
		return r;
	r = rados_write_full(rd_.io, dst, buf ? (const char *)buf : "", (size_t)n);
	free(buf);
	*copied = n;
	return r;
}

static int do_hash(struct peer *p, const char *oid, struct xseg_request *req, uint8_t *data)
{
	enum { CHUNK = 4 << 20 };
	uint8_t *buf = malloc(CHUNK);
	struct sha256 s = { 0 };
	uint64_t off = 0;
	int r = 0;

	(void)p;
	if (!buf)
		return -ENOMEM;
	/* An empty object reads nothing; a missing one fails the stat. */
	r = rados_stat(rd_.io, oid, &(uint64_t){ 0 }, &(time_t){ 0 });
	if (r >= 0)
		r = sha256_init(&s);
	while (r >= 0) {
		r = rados_read(rd_.io, oid, (char *)buf, CHUNK, off);
		if (r <= 0)
			break;
		sha256_update(&s, buf, (size_t)r);
		off += (uint64_t)r;
	}
	free(buf);
	return hash_reply(&s, r, req, data);
}

/* Make [off, off+len) of @oid read as zeroes, clipped to the object (its size unchanged). */
static int do_zero(const char *oid, uint64_t off, uint64_t len, uint64_t *done)
{
	uint64_t sz, end;
	time_t mt;
	rados_write_op_t op;
	int r = rados_stat(rd_.io, oid, &sz, &mt);

	*done = 0;
	if (r < 0)
		return r;
	end = len > UINT64_MAX - off ? UINT64_MAX : off + len;
	if (end > sz)
		end = sz;
	if (off >= end)
		return 0;
	op = rados_create_write_op();
	if (!op)
		return -ENOMEM;
	rados_write_op_assert_exists(op);
	rados_write_op_zero(op, off, end - off);
	/*
	 * The OSD turns a zeroed range that reaches the end into a truncation:
	 * the size is set back in the same (atomic) operation. Not atomic with
	 * the stat above: a write that extends the object in between is cut.
	 */
	if (end == sz)
		rados_write_op_truncate(op, sz);
	r = rados_write_op_operate(op, rd_.io, oid, NULL, 0);
	rados_release_write_op(op);
	if (r >= 0)
		*done = end - off;
	return r;
}

/* The first string of @src (@n bytes) into @dst (@size), cut to fit. */
static void copy_str(char *dst, size_t size, const char *src, size_t n)
{
	size_t l = strnlen(src, n < size - 1 ? n : size - 1);

	memcpy(dst, src, l);
	dst[l] = 0;
}

/*
 * The holder of lock @lock: 1 with its cookie (the owner tag) in @tag and
 * its client ("client.4123") in @client, 0 if nobody holds it, or a
 * negative errno.
 */
static int lock_holder(const char *lock, char tag[XSEG_TARGET_MAX + 1], char client[128])
{
	char ltag[256], clients[1024], cookies[1024], addrs[1024];
	size_t tl = sizeof(ltag), cl = sizeof(clients), kl = sizeof(cookies), al = sizeof(addrs);
	int excl;
	ssize_t n = rados_list_lockers(rd_.io, lock, LOCK_NAME, &excl, ltag, &tl, clients, &cl, cookies, &kl,
				       addrs, &al);

	if (n == -ENOENT || n == 0)
		return 0;
	if (n < 0)
		return (int)n;
	copy_str(tag, XSEG_TARGET_MAX + 1, cookies, kl);
	copy_str(client, 128, clients, cl);
	return 1;
}

/*
 * ACQUIRE or RELEASE lock @name for @owner (XF_FORCE in @force), as filed
 * does: 0 or a positive errno; the holder's tag that refused it, or that a
 * force displaced, in @prev (empty: none).
 *
 * A RADOS lock is held by (client instance, cookie). The cookie is the owner
 * tag; the client instance is this radosd's, and a restarted radosd is
 * another one. So "held by the same owner" is decided on the cookie alone:
 * a lock of our owner tag taken through another radosd is broken and taken
 * again under ours (a third owner that wins the race in between makes it
 * EBUSY, naming that owner).
 */
static int lock_op(struct peer *p, int acquire, int force, const char *name, const char *owner,
		   char prev[XSEG_TARGET_MAX + 1])
{
	char lock[XSEG_TARGET_MAX + sizeof(LOCK_PREFIX)], tag[XSEG_TARGET_MAX + 1], client[128];
	int r, held, tries = 0;

	prev[0] = 0;
	snprintf(lock, sizeof(lock), "%s%s", LOCK_PREFIX, name);
again:
	if (acquire) {
		r = rados_lock_exclusive(rd_.io, lock, LOCK_NAME, owner, "xseg owner-tagged lock", NULL,
					 LIBRADOS_LOCK_FLAG_MAY_RENEW);
		if (r == 0 || r == -EEXIST)
			return 0;
		if (r != -EBUSY)
			return rados_err(r);
	} else {
		r = rados_unlock(rd_.io, lock, LOCK_NAME, owner);
		if (r == 0)
			return 0;
		if (r != -ENOENT)
			return rados_err(r);
	}
	held = lock_holder(lock, tag, client);
	if (held < 0)
		return rados_err(held);
	if (!held) {
		if (acquire && ++tries < 8)
			goto again;		/* released meanwhile */
		return acquire ? EBUSY : ENOENT;
	}
	if (strcmp(tag, owner) && !force) {
		snprintf(prev, XSEG_TARGET_MAX + 1, "%s", tag);
		return acquire ? EBUSY : EPERM;
	}
	/* Ours through another client instance, or forced: break it. */
	r = rados_break_lock(rd_.io, lock, LOCK_NAME, client, tag);
	if (r < 0 && r != -ENOENT)
		return rados_err(r);
	if (strcmp(tag, owner)) {
		snprintf(prev, XSEG_TARGET_MAX + 1, "%s", tag);
		peer_log(p, 1, "lock %s %s by force from %s (%s)", name, acquire ? "taken" : "released", tag,
			 client);
	}
	if (!acquire)
		return 0;
	if (++tries < 8)
		goto again;
	return EBUSY;
}

/* On an I/O thread: the ops of several librados calls, synchronously. */
static int work(struct peer *p, uint32_t port, struct xseg_request *req)
{
	struct args a;
	uint64_t n = 0;
	int r;

	(void)port;
	req->serviced = 0;
	r = get_args(p, req, &a);
	if (r)
		return r;
	if (rd_.stripe) {
		switch (a.op) {
		case X_TRUNCATE:
			return rados_err(a.off > INT64_MAX ? -EFBIG : striped_truncate(a.name, a.off));
		case X_DELETE:
			return rados_err(striped_delete(a.name));
		case X_DISCARD:
		case X_WRITE_ZEROES:
			r = striped_zero(a.name, a.off, a.len, &n);
			if (r >= 0)
				req->serviced = n;
			return rados_err(r);
		case X_COPY:
			r = striped_copy(a.name, a.other, &n);
			if (r >= 0)
				req->serviced = n;
			return rados_err(r);
		case X_RENAME:
			return rados_err(striped_rename(p, a.name, a.other));
		case X_HASH:
			return rados_err(striped_hash(a.name, req, a.data));
		}
	}
	switch (a.op) {
	case X_COPY:
		r = do_copy(a.name, a.other, &n);
		if (r >= 0)
			req->serviced = n;
		return rados_err(r);
	case X_RENAME:
		/*
		 * Not atomic in RADOS: the content is copied to the new name
		 * (atomically there), then the old name removed. A crash in
		 * between leaves both names with the same content.
		 */
		if (!strcmp(a.name, a.other))
			return rados_err(rados_stat(rd_.io, a.name, &n, &(time_t){ 0 }));
		r = do_copy(a.other, a.name, &n);
		if (r >= 0)
			r = rados_remove(rd_.io, a.name);
		return rados_err(r);
	case X_HASH:
		return rados_err(do_hash(p, a.name, req, a.data));
	case X_DISCARD:
	case X_WRITE_ZEROES:
		r = do_zero(a.name, a.off, a.len, &n);
		if (r >= 0)
			req->serviced = n;
		return rados_err(r);
	case X_ACQUIRE:
	case X_RELEASE: {
		char prev[XSEG_TARGET_MAX + 1];
		uint64_t plen;

		r = lock_op(p, a.op == X_ACQUIRE, !!(a.flags & XF_FORCE), a.name, a.other, prev);
		/* The holder's tag, as a failed reply's text or a forced one's result (volume.h). */
		plen = strlen(prev);
		if (plen > a.dlen)
			plen = a.dlen;
		memcpy(a.data, prev, plen);
		req->serviced = plen;
		return r;
	}
	default:
		return EOPNOTSUPP;
	}
}

static int set_conf(struct peer *p, const char *key, const char *val)
{
	int r = rados_conf_set(rd_.cluster, key, val);

	if (r < 0)
		peer_log(p, 0, "cannot set %s = %s: %s", key, val, strerror(-r));
	return r;
}

/* Connect to the cluster and open the pool: 0, or -1 after saying why. */
static int connect_cluster(struct peer *p)
{
	char t[32], ct[32];
	int r;

	r = rados_create2(&rd_.cluster, "ceph", rd_.name, 0);
	if (r < 0) {
		peer_log(p, 0, "--name %s: %s (a client name is TYPE.ID, e.g. client.admin)", rd_.name,
			 strerror(-r));
		return -1;
	}
	r = rd_.conf ? rados_conf_read_file(rd_.cluster, rd_.conf) : rados_conf_read_file(rd_.cluster, NULL);
	if (r < 0) {
		peer_log(p, 0, "cannot read the Ceph configuration %s: %s", rd_.conf ? rd_.conf :
			 "(the default search path: $CEPH_CONF, /etc/ceph/ceph.conf, ~/.ceph/config, ./ceph.conf)",
			 strerror(-r));
		return -1;
	}
	rados_conf_parse_env(rd_.cluster, NULL);	/* CEPH_ARGS */
	snprintf(t, sizeof(t), "%u", rd_.timeout);
	snprintf(ct, sizeof(ct), "%u", rd_.connect_timeout);
	if ((rd_.keyring && set_conf(p, "keyring", rd_.keyring) < 0) ||
	    set_conf(p, "rados_osd_op_timeout", t) < 0 || set_conf(p, "rados_mon_op_timeout", t) < 0 ||
	    set_conf(p, "client_mount_timeout", ct) < 0)
		return -1;
	r = rados_connect(rd_.cluster);
	if (r < 0) {
		peer_log(p, 0, "cannot connect to the Ceph cluster (%s, as %s): %s%s", rd_.conf ? rd_.conf :
			 "default configuration", rd_.name, strerror(-r), r == -ETIMEDOUT ?
			 " (no monitor answered within --connect-timeout)" : r == -EACCES || r == -EPERM ?
			 " (check --name and --keyring)" : "");
		return -1;
	}
	r = rados_ioctx_create(rd_.cluster, rd_.pool, &rd_.io);
	if (r < 0) {
		peer_log(p, 0, "cannot open pool %s: %s", rd_.pool, r == -ENOENT ? "no such pool" : strerror(-r));
		return -1;
	}
	if (rd_.ns)
		rados_ioctx_set_namespace(rd_.io, rd_.ns);
	peer_log(p, 2, "connected as %s, pool %s%s%s, %s", rd_.name, rd_.pool, rd_.ns ? ", namespace " : "",
		 rd_.ns ? rd_.ns : "", rd_.stripe ? "targets striped" : "one object per target");
	return 0;
}

static int parse_secs(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 86400)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int own(struct peer *p, int opt, const char *arg)
{
	static char name[140];

	switch (opt) {
	case 'c': rd_.conf = arg; return 0;
	case 'P': rd_.pool = arg; return 0;
	case 'N': rd_.ns = arg; return 0;
	case 'k': rd_.keyring = arg; return 0;
	case 'i':
		snprintf(name, sizeof(name), "client.%s", arg);
		rd_.name = name;
		return 0;
	case 'n': rd_.name = arg; return 0;
	case 'S': {
		char *end;
		unsigned long long v;

		errno = 0;
		v = strtoull(arg, &end, 10);
		if (*end == 'K' || *end == 'k')
			v <<= 10, end++;
		else if (*end == 'M' || *end == 'm')
			v <<= 20, end++;
		if (errno || end == arg || *end || v < 4096 || v > (64ull << 20) || (v & (v - 1))) {
			fprintf(stderr, "%s: --stripe: '%s' must be a power of two from 4K to 64M\n", p->name, arg);
			return -2;
		}
		rd_.stripe = v;
		return 0;
	}
	case 'T':
	case 'U':
		if (parse_secs(arg, opt == 'T' ? &rd_.timeout : &rd_.connect_timeout)) {
			fprintf(stderr, "%s: --%s: '%s' must be 1..86400 seconds\n", p->name,
				opt == 'T' ? "timeout" : "connect-timeout", arg);
			return -2;
		}
		return 0;
	}
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "conf", required_argument, NULL, 'c' }, { "pool", required_argument, NULL, 'P' },
		{ "namespace", required_argument, NULL, 'N' }, { "keyring", required_argument, NULL, 'k' },
		{ "id", required_argument, NULL, 'i' }, { "name", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 'T' }, { "connect-timeout", required_argument, NULL, 'U' },
		{ "stripe", required_argument, NULL, 'S' }, { 0 } };
	struct peer p = { .name = "radosd", .serve = serve, .work = work };
	int r = peer_parse_args(&p, argc, argv, "c:P:N:k:i:n:", lopts, own,
		"  -c, --conf FILE       the cluster's ceph.conf (default: librados' search path, $CEPH_CONF)\n"
		"  -i, --id ID           the client id (client.ID; default admin)\n"
		"  -n, --name TYPE.ID    the client name (default client.admin)\n"
		"  -k, --keyring FILE    the client's keyring (default: the conf's)\n"
		"  -P, --pool POOL       the pool of the objects (default xseg; it must exist)\n"
		"  -N, --namespace NS    a RADOS namespace in the pool (default: none)\n"
		"  --timeout SECS        a request whose OSD or monitor does not answer fails with EIO\n"
		"                        after this long (rados_osd_op_timeout, rados_mon_op_timeout; default 30)\n"
		"  --connect-timeout SECS  give up connecting at start after this long (default 30)\n"
		"  --stripe SIZE         serve block targets striped over RADOS objects of SIZE (4K..64M,\n"
		"                        a power of two; 4M as an RBD image): byte OFF of target NAME is in\n"
		"                        object \\003NAME.<OFF/SIZE, 16 hex digits>, object NAME holds the size;\n"
		"                        COPY and RENAME are not atomic then (docs/peers.md)\n"
		"  A multi-node cluster: its ceph.conf (mon host) and a keyring of a client with\n"
		"  'mon allow r, osd allow rwx pool=POOL' caps are all radosd needs (docs/peers.md).");

	if (r)
		return r > 0 ? 0 : 2;
	rd_.peer = &p;
	if (connect_cluster(&p))
		r = 1;
	else if (peer_start(&p))
		r = 1;
	else
		r = peer_run(&p) ? 1 : 0;
	peer_stop(&p);
	if (rd_.io && rd_.stripe)
		sizes_shutdown();
	if (rd_.io)
		rados_ioctx_destroy(rd_.io);
	if (rd_.cluster)
		rados_shutdown(rd_.cluster);
	return r;
}
