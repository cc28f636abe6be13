/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/radosd-scopy.h - radosd's --stripe COPY, RENAME and HASH, on
 * the I/O pool (synchronous, windows of aios), included by radosd.c after
 * radosd-stripe.h.
 *
 * COPY and RENAME over stripes are not atomic (many objects). What holds:
 * - COPY: the destination is replaced by an empty target of the source's
 *   size first, then the source's stripes are copied into it; a reader of
 *   the destination meanwhile sees zeroes where nothing was copied yet.
 * - RENAME: the new name is made complete (as COPY) before the old name is
 *   touched; then the old head is marked renamed (an xattr, one atomic op),
 *   then the old name is removed (its stripes, then its head). So at every
 *   moment one of the two names holds the whole content: unmarked, the old
 *   name; marked, the new one. A crash leaves one of these states, and a
 *   RENAME repeated after it finishes the job (a marked source: its removal
 *   is finished; an unmarked one: the copy is made again). A marked name is
 *   gone for COPY and RENAME (ENOENT, the repeated RENAME aside).
 * - HASH: SHA-256 of the target's bytes (holes as zeroes), as without
 *   --stripe for the same bytes.
 */
#ifndef RADOSD_SCOPY_H
#define RADOSD_SCOPY_H

#define RENAMED_XATTR "xseg.renamed"	/* on the head of a RENAME's source being removed */
#define SCOPY_BYTES (16u << 20)		/* bytes of stripes read at once */

static uint32_t scopy_window(void)
{
	uint64_t w = SCOPY_BYTES / rd_.stripe;

	return w < 1 ? 1 : w > STRIPE_WINDOW ? STRIPE_WINDOW : (uint32_t)w;
}

/*
 * Read stripes [first, first+k) of @name (a target of @size bytes) into
 * @buf (k * stripe bytes), zeroes where missing or short. The bytes each
 * stripe object holds (0 if missing) in @got. 0 or -errno.
 */
static int stripes_read(const char *name, uint64_t first, uint32_t k, uint64_t size, uint8_t *buf, uint64_t *got)
{
	rados_completion_t c[STRIPE_WINDOW];
	uint64_t st = rd_.stripe;
	char oid[STRIPE_OID_MAX];
	uint32_t started = 0;
	int err = 0;

	for (; started < k; started++) {
		uint64_t at = (first + started) * st, len = size - at < st ? size - at : st;
		int r;

		if (rados_aio_create_completion2(NULL, NULL, &c[started])) {
			err = -ENOMEM;
			break;
		}
		stripe_oid(oid, sizeof(oid), name, first + started);
		r = rados_aio_read(rd_.io, oid, c[started], (char *)buf + started * st, (size_t)len, 0);
		if (r < 0) {
			rados_aio_release(c[started]);
			err = r;
			break;
		}
	}
	for (uint32_t i = 0; i < started; i++) {
		uint64_t at = (first + i) * st, len = size - at < st ? size - at : st;
		int r;

		rados_aio_wait_for_complete(c[i]);
		r = rados_aio_get_return_value(c[i]);
		rados_aio_release(c[i]);
		if (r == -ENOENT)
			r = 0;
		if (r < 0) {
			if (!err)
				err = r;
			continue;
		}
		got[i] = (uint64_t)r;
		memset(buf + i * st + r, 0, (size_t)(len - (uint64_t)r));
	}
	return err;
}

/* Is the head of @name marked as a renamed source? 1, 0, or -errno (-ENOENT: no such target). */
static int renamed_mark(const char *name)
{
	char v[XSEG_TARGET_MAX + 1];	/* the new name */
	int r = rados_getxattr(rd_.io, name, RENAMED_XATTR, v, sizeof(v));

	if (r >= 0 || r == -ERANGE)
		return 1;
	return r == -ENODATA ? 0 : r;
}

/* The size of target @name, unless it is a renamed source being removed (-ENOENT then). */
static int striped_size(const char *name, uint64_t *size)
{
	time_t mt;
	int r = rados_stat(rd_.io, name, size, &mt);

	if (r < 0)
		return r;
	r = renamed_mark(name);
	return r < 0 ? r : r ? -ENOENT : 0;
}

/*
 * COPY striped target @src (of @size bytes) over @dst: @dst made an empty
 * target of that size (its old stripes removed), then every stripe @src
 * has written to @dst, a window at a time. 0 or -errno.
 */
static int stripes_copy(const char *dst, const char *src, uint64_t size)
{
	uint64_t st = rd_.stripe, n = (size + st - 1) / st, got[STRIPE_WINDOW], cur;
	uint32_t w = scopy_window();
	rados_completion_t c[STRIPE_WINDOW];
	rados_write_op_t op;
	char oid[STRIPE_OID_MAX];
	uint8_t *buf;
	time_t mt;
	int r;

	/* The destination: gone (as DELETE does it), then an empty target of the size. */
	r = rados_stat(rd_.io, dst, &cur, &mt);
	if (r >= 0)
		r = striped_delete(dst);
	if (r < 0 && r != -ENOENT)
		return r;
	op = rados_create_write_op();
	if (!op)
		return -ENOMEM;
	rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
	rados_write_op_truncate(op, size);
	r = rados_write_op_operate(op, rd_.io, dst, NULL, 0);
	rados_release_write_op(op);
	size_forget(dst);
	if (r < 0)
		return r;
	if (!n)
		return 0;
	buf = malloc(w * st);
	if (!buf)
		return -ENOMEM;
	for (uint64_t at = 0; at < n && r >= 0; at += w) {
		uint32_t k = n - at < w ? (uint32_t)(n - at) : w, started = 0;

		r = stripes_read(src, at, k, size, buf, got);
		for (uint32_t i = 0; i < k && r >= 0; i++) {
			if (!got[i])
				continue;	/* a hole stays a hole */
			if (rados_aio_create_completion2(NULL, NULL, &c[started])) {
				r = -ENOMEM;
				break;
			}
			stripe_oid(oid, sizeof(oid), dst, at + i);
			r = rados_aio_write_full(rd_.io, oid, c[started], (const char *)buf + i * st, (size_t)got[i]);
			if (r < 0) {
				rados_aio_release(c[started]);
				break;
			}
			started++;
		}
		for (uint32_t i = 0; i < started; i++) {
			int e;

			rados_aio_wait_for_complete(c[i]);
			e = rados_aio_get_return_value(c[i]);
			rados_aio_release(c[i]);
			if (e < 0 && r >= 0)
				r = e;
		}
	}
	free(buf);
	return r < 0 ? r : 0;
}

/* COPY over stripes: @dst gets @src's bytes and size; *copied the size. 0 or -errno. */
static int striped_copy(const char *dst, const char *src, uint64_t *copied)
{
	uint64_t size;
	int r = striped_size(src, &size);

	*copied = 0;
	if (r < 0)
		return r;
	if (!strcmp(dst, src)) {
		*copied = size;
		return 0;
	}
	r = stripes_copy(dst, src, size);
	if (r >= 0)
		*copied = size;
	return r;
}

/* RENAME over stripes: the new name complete, then the old one marked, then removed (see above). */
static int striped_rename(struct peer *p, const char *from, const char *to)
{
	uint64_t size;
	rados_write_op_t op;
	int r = renamed_mark(from);

	if (r < 0)
		return r;
	if (r) {
		/* A RENAME that copied and marked, then stopped: finish removing the source. */
		peer_log(p, 1, "RENAME %s: finishing the removal of a renamed source", from);
		return striped_delete(from);
	}
	r = striped_size(from, &size);
	if (r < 0)
		return r;
	if (!strcmp(from, to))
		return 0;
	r = stripes_copy(to, from, size);
	if (r < 0)
		return r;
	op = rados_create_write_op();
	if (!op)
		return -ENOMEM;
	rados_write_op_assert_exists(op);
	rados_write_op_setxattr(op, RENAMED_XATTR, to, strlen(to));
	r = rados_write_op_operate(op, rd_.io, from, NULL, 0);
	rados_release_write_op(op);
	if (r < 0)
		return r;
	return striped_delete(from);
}

/* HASH over stripes: SHA-256 of the target's bytes, holes as zeroes. The 64 hex digits into @data. */
static int striped_hash(const char *name, struct xseg_request *req, uint8_t *data)
{
	uint64_t st = rd_.stripe, size, n, got[STRIPE_WINDOW];
	uint32_t w = scopy_window();
	uint8_t *buf;
	struct sha256 s = { 0 };
	time_t mt;
	int r = rados_stat(rd_.io, name, &size, &mt);

	if (r < 0)
		return r;
	n = (size + st - 1) / st;
	buf = malloc(w * st);
	if (!buf)
		return -ENOMEM;
	r = sha256_init(&s);
	for (uint64_t at = 0; at < n && r >= 0; at += w) {
		uint32_t k = n - at < w ? (uint32_t)(n - at) : w;
		uint64_t bytes = size - at * st < (uint64_t)k * st ? size - at * st : (uint64_t)k * st;

		r = stripes_read(name, at, k, size, buf, got);
		if (r >= 0)
			sha256_update(&s, buf, (size_t)bytes);
	}
	free(buf);
	return hash_reply(&s, r, req, data);
}

#endif
