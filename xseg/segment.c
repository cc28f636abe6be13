/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/segment.c - creating, joining, leaving and destroying segments (the
 * header's tables of joined peers and peer types are kept by hold.c).
 */
#include "xseg_internal.h"

static void seterr(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
	if (err && errlen)
		snprintf(err, errlen, fmt, a, b);
}

int xseg_create(const struct xseg_config *cfg, char *err, size_t errlen)
{
	const struct xseg_segtype_ops *st;
	struct xseg_header *proto;
	struct xseg xs;
	uint64_t size, osize;
	void *mem = NULL;
	bool sparse;
	int r;

	if (!cfg)
		return -EINVAL;
	r = xseg_check_config(cfg, err, errlen);
	if (r)
		return r;
	if ((1ull << cfg->page_shift) < xseg_sys_page_size()) {
		seterr(err, errlen, "page_shift: pages must be at least this system's page size%s%s", "", "");
		return -EINVAL;
	}
	st = xseg_find_segtype(cfg->type);
	if (!st) {
		seterr(err, errlen, "type: no segment type '%s' in this domain%s", cfg->type, "");
		return -ENOTSUP;
	}
	if (cfg->huge && strcmp(cfg->type, "posix") && strcmp(cfg->type, "memfd")) {
		seterr(err, errlen, "huge: huge pages are for posix and memfd segments (%s: put a "
		       "file segment on a hugetlbfs mount)%s", cfg->type, "");
		return -EINVAL;
	}
	proto = xseg_sys_alloc(sizeof(*proto));
	if (!proto)
		return -ENOMEM;
	r = xseg__layout(cfg, proto, &size);
	if (r) {
		seterr(err, errlen, "segment '%s': the configuration is too large%s", cfg->name, "");
		xseg_sys_free(proto);
		return r;
	}
	/*
	 * huge=1: the object is a whole number of huge pages (the header's size
	 * stays the layout's; a mapping may be larger), and the type is told by
	 * XSEG_CREATE_HUGE in the mode (memfd: the descriptor already is one).
	 */
	osize = cfg->huge ? xseg__align(size, XSEG_HUGE_PAGE) : size;
	sparse = cfg->max_requests > cfg->nr_requests &&
		 (!strcmp(cfg->type, "posix") || !strcmp(cfg->type, "file") || !strcmp(cfg->type, "memfd"));
	r = st->create(cfg->name, osize, cfg->mode | (cfg->huge ? XSEG_CREATE_HUGE : 0) |
		       (sparse ? XSEG_CREATE_SPARSE : 0), cfg->gid, &mem, err, errlen);
	if (r) {
		xseg_sys_free(proto);
		return r;
	}
	/*
	 * Sparse (growable): allocate all but the reserve now, as a non-sparse
	 * create would, so a shortage fails here. The object is ours, made
	 * exclusively just now and not formatted (no magic: nobody joined).
	 */
	if (sparse && xseg__populate_live(mem, proto, cfg->nr_requests)) {
		st->unmap(mem, osize);
		st->destroy(cfg->name);
		xseg_sys_free(proto);
		seterr(err, errlen, "segment '%s': not enough memory or space for its live part "
		       "(the reserve of max_requests= is not allocated)%s", cfg->name, "");
		return -ENOSPC;
	}
	xseg_sys_self(&proto->creator_pid, NULL, &proto->uid, &proto->gid);
	if (cfg->gid >= 0)
		proto->gid = (uint32_t)cfg->gid;
	proto->mode = cfg->mode;
	proto->ctime_ns = xseg_sys_realtime_ns();
	proto->flags = cfg->autorm ? XSEG_F_AUTORM : 0;
	xseg_memset(&xs, 0, sizeof(xs));
	xs.base = mem;
	xs.size = size;
	xseg__format(&xs, proto);
	xseg_sys_free(proto);
	st->unmap(mem, osize);
	xseg_sys_log(XSEG_LOG_INFO, "created %s segment '%s' (%llu bytes)", cfg->type, cfg->name,
		     (unsigned long long)size);
	return 0;
}

struct xseg *xseg_join(const char *segtype, const char *segname, const char *peertype,
		       xseg_wakeup_fn wakeup, void *arg, int *errp, char *err, size_t errlen)
{
	const struct xseg_segtype_ops *st;
	struct xseg *xs;
	int r, idx;

	if (err && errlen)
		err[0] = 0;
	if (!segtype || !segname) {
		r = -EINVAL;
		goto out;
	}
	if (wakeup && !XSEG_SYS_WAKEUP_CALLBACKS) {
		seterr(err, errlen, "a wakeup callback is for kernel peers: in this domain pass NULL "
		       "and poll xseg_poll_fd() of each port in an event loop (docs/drivers.md)%s%s", "", "");
		r = -EINVAL;
		goto out;
	}
	st = xseg_find_segtype(segtype);
	if (!st) {
		seterr(err, errlen, "no segment type '%s' in this domain%s", segtype, "");
		r = -ENOTSUP;
		goto out;
	}
	if (peertype && !xseg_find_driver(peertype)) {
		seterr(err, errlen, "no driver for peer type '%s': not built in, and no usable xseg_%s.so in "
		       "$XSEG_DRIVER_PATH, the install's driver folder or beside libxseg (docs/drivers.md)",
		       peertype, peertype);
		r = -ENOTSUP;
		goto out;
	}
	xs = xseg_sys_alloc(sizeof(*xs));
	if (!xs) {
		r = -ENOMEM;
		goto out;
	}
	xs->segtype = st;
	xs->peer_slot = -1;
	xs->spin_us = XSEG_SPIN_US_DEFAULT;
	xs->wakeup = wakeup;
	xs->wakeup_arg = arg;
	strncpy(xs->segname, segname, XSEG_NAME_LEN - 1);
	xseg_sys_self(&xs->pid, &xs->start, &xs->uid, &xs->gid);
	r = st->map(segname, &xs->base, &xs->size, err, errlen);
	if (r)
		goto free_xs;
	r = xseg__adopt(xs, err, errlen);
	if (r) {
		if (r == -EBADMSG && err && errlen) {
			char m[256];

			snprintf(m, sizeof(m), "segment '%s' is corrupt: %s", segname, err);
			strncpy(err, m, errlen - 1);
			err[errlen - 1] = 0;
		}
		goto unmap;
	}
	if (xseg__hdr_flags(xs->hdr) & XSEG_F_DESTROYED) {
		seterr(err, errlen, "segment '%s' is marked for destroy%s", segname, "");
		r = -EIDRM;
		goto unmap;
	}
	if (!peertype) {
		/* An observer: reads the segment, takes no peer-type entry, is not a peer. */
		xs->peer_type = XSEG_OBSERVER;
		if (errp)
			*errp = 0;
		return xs;
	}
	idx = xseg__peer_type_index(xs, peertype);
	if (idx < 0) {
		char m[160];

		snprintf(m, sizeof(m), "the peer_types=%u entries all name other peer types; create the "
			 "segment with a larger peer_types= (up to %u)", xs->nr_peer_types, XSEG_PEER_TYPES_MAX);
		seterr(err, errlen, "segment '%s': its peer-type table is full: %s", segname, m);
		r = idx;
		goto unmap;
	}
	xs->peer_type = (uint32_t)idx;
	xseg__quota_defaults(xs, peertype);
	if (!xseg__driver_for(xs, xs->peer_type)) {
		r = xs->drv[idx].joined < 0 ? xs->drv[idx].joined : -ENOTSUP;
		seterr(err, errlen, "driver '%s' could not join segment '%s'", peertype, segname);
		goto unmap;
	}
	r = xseg__peer_register(xs);
	if (r < 0) {
		seterr(err, errlen, "segment '%s': %s", segname, "too many peers joined");
		goto drivers;
	}
	xs->peer_slot = r;
	if (errp)
		*errp = 0;
	return xs;

drivers:
	for (idx = 0; idx < (int)xs->nr_peer_types; idx++)
		if (xs->drv[idx].joined == 1 && xs->drv[idx].ops->leave)
			xs->drv[idx].ops->leave(xs, xs->drv[idx].priv);
unmap:
	xseg_sys_free(xs->local);
	xseg_sys_free(xs->drv);
	st->unmap(xs->base, xs->size);
free_xs:
	xseg_sys_free(xs);
out:
	if (errp)
		*errp = r;
	return NULL;
}

/*
 * What a destroy must prove about the object it found under the name before
 * removing it. Filled by the callers below, read by destroy_check().
 */
struct destroy_proof {
	const char *type;		/* the segment type the caller named */
	const char *name;		/* for messages */
	bool need_owner;		/* the caller must own it (or be root) */
	bool same;			/* it must be the segment a handle joined: */
	uint64_t ctime_ns;		/*   its creation time */
	uint32_t creator_pid;		/*   and creator */
	uint64_t id;			/* set by destroy_check: the segment's identity */
};

#define REFUSE(rc, ...) do { \
	if (err && errlen) { \
		int n_ = snprintf(err, errlen, "%s:%s ", p->type, p->name); \
		if (n_ > 0 && (size_t)n_ < errlen) \
			snprintf(err + n_, errlen - (size_t)n_, __VA_ARGS__); \
	} \
	return (rc); } while (0)

/*
 * Called by the segment type with the object mapped through the one open
 * file it will compare against the name before removing it: is it an xseg
 * segment of this type, made by the owner of the file, which we may remove?
 * Marks it destroyed when it is.
 */
static int destroy_check(void *mem, uint64_t size, uint32_t owner_uid, void *arg,
			 char *err, size_t errlen)
{
	struct destroy_proof *p = arg;
	struct xseg_header *h = mem;
	char type[XSEG_TYPE_LEN];
	uint32_t me;

	if (!mem || size < XSEG_HEADER_SIZE)
		REFUSE(-EBADMSG, "is not an xseg segment (smaller than a header)");
	if (xa_load_acq64(&h->magic) != XSEG_MAGIC)
		REFUSE(-EBADMSG, "is not an xseg segment (no xseg magic)");
	if (h->byte_order != XSEG_BYTE_ORDER)
		REFUSE(-EBADMSG, "is not an xseg segment of this byte order");
	if (h->major != XSEG_VERSION_MAJOR)
		REFUSE(-EPROTO, "has segment layout version %u.%u, this library speaks %u.%u",
		       h->major, h->minor, XSEG_VERSION_MAJOR, XSEG_VERSION_MINOR);
	if (h->size < XSEG_HEADER_SIZE || h->size > size)
		REFUSE(-EBADMSG, "is not a whole xseg segment (its header says %llu bytes, there are "
		       "%llu)", (unsigned long long)h->size, (unsigned long long)size);
	xseg_memcpy(type, h->cfg.type, sizeof(type));
	type[sizeof(type) - 1] = 0;
	if (strcmp(type, p->type))
		REFUSE(-EBADMSG, "is not an xseg segment of type %s (its header says '%s')",
		       p->type, type);
	if (h->uid != owner_uid)
		REFUSE(-EPERM, "is owned by uid %u but its header names creator uid %u (squatted "
		       "or tampered with?)", owner_uid, h->uid);
	xseg_sys_self(NULL, NULL, &me, NULL);
	if (p->need_owner && me != owner_uid && me != 0)
		REFUSE(-EPERM, "is owned by uid %u, not by us (uid %u)", owner_uid, me);
	if (p->same && (h->ctime_ns != p->ctime_ns || h->creator_pid != p->creator_pid))
		REFUSE(-EBUSY, "is no longer the segment this handle joined (replaced?)");
	p->id = xseg__seg_id(h);
	return 0;
}

/* Removed: mark it, so that peers still joined see it gone (new joins: -EIDRM). */
static void destroy_commit(void *mem, uint32_t uid, uint32_t gid, uint32_t mode, void *arg)
{
	struct xseg_header *h = mem;

	(void)uid; (void)gid; (void)mode; (void)arg;
	xseg__hdr_set_flag(h, XSEG_F_DESTROYED);
}
#undef REFUSE

/*
 * A refused destroy or owner change: every message, whoever wrote it (the
 * check above, the segment type), ends saying what was left alone.
 */
static int not_done(int r, const char *what, char *err, size_t errlen)
{
	size_t n;

	if (r < 0 && err && errlen && err[0]) {
		n = __builtin_strlen(err);
		if (n < errlen)
			snprintf(err + n, errlen - n, "; not %s", what);
	}
	return r;
}

/*
 * Remove @p->name of segment type @st once destroy_check() accepted it,
 * through the type's destroy_checked() where it has one (one open file for
 * the check and the removal); else through map() + destroy(), for types
 * whose names are not in a file system.
 */
static int destroy_proven(const struct xseg_segtype_ops *st, struct destroy_proof *p,
			  char *err, size_t errlen)
{
	void *mem = NULL;
	uint64_t size = 0;
	uint32_t owner;
	int r;

	if (err && errlen)
		err[0] = 0;
	if (st->abi_size >= __builtin_offsetof(struct xseg_segtype_ops, destroy_checked) +
			    sizeof(st->destroy_checked) && st->destroy_checked)
		r = st->destroy_checked(p->name, destroy_check, destroy_commit, p, err, errlen);
	else if (!st->destroy)
		r = -ENOTSUP;
	else {
		r = st->map(p->name, &mem, &size, err, errlen);
		if (!r) {
			owner = size >= XSEG_HEADER_SIZE ? ((struct xseg_header *)mem)->uid : 0;
			r = destroy_check(mem, size, owner, p, err, errlen);
			if (!r)
				r = st->destroy(p->name);
			if (!r)
				destroy_commit(mem, 0, 0, 0, p);
			st->unmap(mem, size);
		}
	}
	if (r)
		return not_done(r, "removed", err, errlen);
	xseg__drivers_destroy(&(struct xseg_seg_ident){ .type = p->type, .name = p->name,
							  .id = p->id });
	return 0;
}

int xseg_leave(struct xseg *xs)
{
	const struct xseg_segtype_ops *st;
	bool last, autorm;
	uint32_t i;

	if (!xs)
		return -EINVAL;
	for (i = 0; i < xs->nr_ports; i++)
		if (xa_load_acq32(&xs->local[i].bound))
			xseg_leave_port(xs, i);
	for (i = 0; i < xs->nr_peer_types; i++)
		if (xs->drv[i].joined == 1 && xs->drv[i].ops->leave)
			xs->drv[i].ops->leave(xs, xs->drv[i].priv);
	if (xs->peer_slot >= 0) {
		uint64_t me = xs->pid;

		if (xa_cas_acqrel64(&xs->hdr->peers[xs->peer_slot].pid, &me, 0))
			xa_sub_rlx64(&xs->hdr->attached, 1);
	}
	autorm = xseg__hdr_flags(xs->hdr) & XSEG_F_AUTORM;
	last = autorm && xs->peer_type != XSEG_OBSERVER && xseg__live_peers(xs) == 0;
	st = xs->segtype;
	if (last) {
		struct destroy_proof p = {
			.type = st->name, .name = xs->segname, .need_owner = false, .same = true,
			.ctime_ns = xs->hdr->ctime_ns, .creator_pid = xs->hdr->creator_pid,
		};
		char msg[256];

		/* The segment asked for it, so any last peer may; still only this one. */
		if (destroy_proven(st, &p, msg, sizeof(msg)) == 0)
			xseg_sys_log(XSEG_LOG_INFO, "segment '%s' removed after its last peer left",
				     xs->segname);
		else
			xseg_sys_log(XSEG_LOG_WARN, "segment '%s' (autorm): %s",
				     xs->segname, msg);
	}
	st->unmap(xs->base, xs->size);
	xseg_sys_free(xs->local);
	xseg_sys_free(xs->drv);
	xseg_sys_free(xs);
	return 0;
}

int xseg_destroy(struct xseg *xs)
{
	struct destroy_proof p;

	if (!xs)
		return -EINVAL;
	p.type = xs->segtype->name;
	p.name = xs->segname;
	p.need_owner = true;
	p.same = true;
	p.ctime_ns = xs->hdr->ctime_ns;
	p.creator_pid = xs->hdr->creator_pid;
	return destroy_proven(xs->segtype, &p, NULL, 0);
}

int xseg_destroy_name_err(const char *segtype, const char *segname, char *err, size_t errlen)
{
	const struct xseg_segtype_ops *st = xseg_find_segtype(segtype ? segtype : "");
	struct destroy_proof p;

	if (!st || !segname) {
		seterr(err, errlen, "no segment type '%s' in this domain%s", segtype ? segtype : "", "");
		return -EINVAL;
	}
	xseg_memset(&p, 0, sizeof(p));
	p.type = st->name;
	p.name = segname;
	p.need_owner = true;
	return destroy_proven(st, &p, err, errlen);
}

int xseg_destroy_name(const char *segtype, const char *segname)
{
	return xseg_destroy_name_err(segtype, segname, NULL, 0);
}

#define HAS_OP(st, op) ((st)->abi_size >= __builtin_offsetof(struct xseg_segtype_ops, op) + \
			   sizeof((st)->op) && (st)->op)

/* The file now has @uid, @gid, @mode: so does the header. */
static void owner_commit(void *mem, uint32_t uid, uint32_t gid, uint32_t mode, void *arg)
{
	struct xseg_header *h = mem;

	(void)arg;
	xa_store_rlx32(&h->uid, uid);
	xa_store_rlx32(&h->gid, gid);
	xa_store_rlx32(&h->mode, mode);
	xa_store_rlx32(&h->cfg.mode, mode);
	xa_store_rel32((uint32_t *)&h->cfg.gid, (uint32_t)(int32_t)gid);
}

int xseg_set_owner_mode(const char *segtype, const char *segname, uint32_t uid, uint32_t gid,
			uint32_t mode, char *err, size_t errlen)
{
	const struct xseg_segtype_ops *st = xseg_find_segtype(segtype ? segtype : "");
	struct destroy_proof p;

	if (err && errlen)
		err[0] = 0;
	if (!st || !segname) {
		seterr(err, errlen, "no segment type '%s' in this domain%s", segtype ? segtype : "", "");
		return -EINVAL;
	}
	if (mode != (uint32_t)-1 && ((mode & ~0770u) || (mode & 0600) != 0600)) {
		if (err && errlen)
			snprintf(err, errlen, "%s:%s: mode %04o must give the owner read and write "
				 "and nothing beyond 0770", st->name, segname, mode);
		return not_done(-EINVAL, "changed", err, errlen);
	}
	if (!HAS_OP(st, set_owner_checked)) {
		seterr(err, errlen, "segment type '%s' has no owner or mode to change%s", st->name, "");
		return -ENOTSUP;
	}
	xseg_memset(&p, 0, sizeof(p));
	p.type = st->name;
	p.name = segname;
	p.need_owner = true;
	return not_done(st->set_owner_checked(segname, destroy_check, owner_commit, &p, uid, gid,
					      mode, err, errlen), "changed", err, errlen);
}

int xseg_real_owner(const char *segtype, const char *segname, uint32_t *uid, uint32_t *gid,
		    uint32_t *mode)
{
	const struct xseg_segtype_ops *st = xseg_find_segtype(segtype ? segtype : "");

	if (!st || !segname || !uid || !gid || !mode)
		return -EINVAL;
	if (!HAS_OP(st, owner))
		return -ENOTSUP;
	return st->owner(segname, uid, gid, mode);
}

const struct xseg_config *xseg_config(const struct xseg *xs)
{
	return &xs->cfg;
}

struct xseg_header *xseg_header(struct xseg *xs)
{
	return xs->hdr;
}

void *xseg_base(struct xseg *xs)
{
	return xs->base;
}

uint64_t xseg_size(const struct xseg *xs)
{
	return xs->size;
}

void *xseg_extra(struct xseg *xs, uint64_t *size)
{
	if (size)
		*size = xs->extra_size;
	return xs->extra_size ? (uint8_t *)xs->base + xs->extra_off : NULL;
}

const char *xseg_segname(const struct xseg *xs)
{
	return xs->segname;
}

/*
 * xseg__seg_id - the identity of the segment whose header is @h: FNV-1a 64
 * of its creation time (ns) and creator pid, fields the creator writes
 * before the magic and nobody changes after (an owner change rewrites uid,
 * so it is not used); never 0.
 */
uint64_t xseg__seg_id(const struct xseg_header *h)
{
	uint64_t v[2] = { h->ctime_ns, h->creator_pid };
	const unsigned char *b = (const unsigned char *)v;
	uint64_t x = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < sizeof(v); i++)
		x = (x ^ b[i]) * 0x100000001b3ull;
	return x ? x : 1;
}

void xseg_seg_ident(const struct xseg *xs, struct xseg_seg_ident *out)
{
	out->type = xs->segtype->name;
	out->name = xs->segname;
	out->id = xseg__seg_id(xs->hdr);
}

void *xseg_port_signal_area(struct xseg *xs, uint32_t portno)
{
	return portno < xs->nr_ports ? xs->ports[portno].signal : NULL;
}
