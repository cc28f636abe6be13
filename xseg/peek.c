/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/peek.c - a look at a segment's header without joining it, for `xseg
 * list` (the columns of ipcs -m) and `xseg list file DIR`: map, copy out the
 * few fields asked for after the checks a destroy makes (magic, byte order,
 * layout version, whole size, type), unmap. Nothing is written: no attach,
 * no recovery, no driver.
 */
#include "xseg_internal.h"

#define PEEK_FAIL(rc, ...) do { \
	if (err && errlen) \
		snprintf(err, errlen, __VA_ARGS__); \
	r = (rc); \
	goto out; } while (0)

int xseg_peek(const char *type, const char *name, struct xseg_peek *out, char *err, size_t errlen)
{
	const struct xseg_segtype_ops *st;
	struct xseg_header *h;
	char htype[XSEG_TYPE_LEN];
	void *mem = NULL;
	uint64_t size = 0;
	uint32_t i;
	int r;

	if (err && errlen)
		err[0] = 0;
	if (!type || !name || !out)
		return -EINVAL;
	xseg_memset(out, 0, sizeof(*out));
	st = xseg_find_segtype(type);
	if (!st) {
		if (err && errlen)
			snprintf(err, errlen, "no segment type '%s'", type);
		return -ENOENT;
	}
	r = st->map(name, &mem, &size, err, errlen);
	if (r)
		return r;
	h = mem;
	/* Untrusted: each field is read once and checked before it is used. */
	if (size < XSEG_HEADER_SIZE)
		PEEK_FAIL(-EBADMSG, "%s:%s is not an xseg segment (smaller than a header)", type, name);
	if (xa_load_acq64(&h->magic) != XSEG_MAGIC)
		PEEK_FAIL(-EBADMSG, "%s:%s is not an xseg segment (no xseg magic)", type, name);
	if (h->byte_order != XSEG_BYTE_ORDER)
		PEEK_FAIL(-EBADMSG, "%s:%s is not an xseg segment of this byte order", type, name);
	out->major = h->major;
	out->minor = h->minor;
	if (out->major != XSEG_VERSION_MAJOR)
		PEEK_FAIL(-EPROTO, "%s:%s has segment layout version %u.%u, this library speaks %u.%u",
			  type, name, out->major, out->minor, XSEG_VERSION_MAJOR, XSEG_VERSION_MINOR);
	out->size = h->size;
	if (out->size < XSEG_HEADER_SIZE || out->size > size)
		PEEK_FAIL(-EBADMSG, "%s:%s is not a whole xseg segment", type, name);
	xseg_memcpy(htype, h->cfg.type, sizeof(htype));
	htype[sizeof(htype) - 1] = 0;
	if (strcmp(htype, st->name))
		PEEK_FAIL(-EBADMSG, "%s:%s is not an xseg segment of type %s (its header says '%s')",
			  type, name, st->name, htype);
	xseg_memcpy(&out->cfg, &h->cfg, sizeof(out->cfg));
	out->cfg.type[sizeof(out->cfg.type) - 1] = 0;
	out->cfg.name[sizeof(out->cfg.name) - 1] = 0;
	out->uid = h->uid;
	out->gid = h->gid;
	out->mode = h->mode;
	out->creator_pid = h->creator_pid;
	out->ctime_ns = h->ctime_ns;
	out->attached = xa_load_acq64(&h->attached);
	out->flags = xa_load_acq64(&h->flags);
	for (i = 0; i < XSEG_MAX_PEERS && out->nr_pids < XSEG_PEEK_PIDS; i++) {
		uint64_t pid = xa_load_acq64(&h->peers[i].pid);

		/* Live ones only: a dead peer's entry waits for recovery to clear it. */
		if (pid && xseg_sys_alive((uint32_t)pid, xa_load_acq64(&h->peers[i].start)))
			out->pids[out->nr_pids++] = (uint32_t)pid;
	}
	r = 0;
out:
	st->unmap(mem, size);
	return r;
}
