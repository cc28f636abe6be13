/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/segment.c - creating, joining, leaving and destroying segments; the
 * table of joined peers and the peer-type (driver) registry in the header.
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
	uint64_t size;
	void *mem = NULL;
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
	proto = xseg_sys_alloc(sizeof(*proto));
	if (!proto)
		return -ENOMEM;
	r = xseg__layout(cfg, proto, &size);
	if (r) {
		seterr(err, errlen, "segment '%s': the configuration is too large%s", cfg->name, "");
		xseg_sys_free(proto);
		return r;
	}
	r = st->create(cfg->name, size, cfg->mode, cfg->gid, &mem, err, errlen);
	if (r) {
		xseg_sys_free(proto);
		return r;
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
	st->unmap(mem, size);
	xseg_sys_log(XSEG_LOG_INFO, "created %s segment '%s' (%llu bytes)", cfg->type, cfg->name,
		     (unsigned long long)size);
	return 0;
}

/* Claim an entry of the joined-peers table, reusing entries of dead peers. */
static int peer_register(struct xseg *xs)
{
	struct xseg_header *h = xs->hdr;
	uint32_t i;

	for (i = 0; i < XSEG_MAX_PEERS; i++) {
		uint64_t cur = __atomic_load_n(&h->peers[i].pid, __ATOMIC_ACQUIRE);
		uint64_t start = __atomic_load_n(&h->peers[i].start, __ATOMIC_ACQUIRE);

		if (cur && xseg_sys_alive((uint32_t)cur, start))
			continue;
		/* acq_rel: whoever wins the entry owns it; the start follows. */
		if (__atomic_compare_exchange_n(&h->peers[i].pid, &cur, xs->pid, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			__atomic_store_n(&h->peers[i].start, xs->start, __ATOMIC_RELEASE);
			/* A dead peer's entry we take over leaves the count as it was. */
			if (!cur)
				__atomic_fetch_add(&h->attached, 1, __ATOMIC_RELAXED);
			return (int)i;
		}
	}
	return -EUSERS;
}

/*
 * xseg__forget_dead_peers - clear the joined-peers entries of dead processes
 * (recovery calls it), keeping hdr->attached the number of live peers.
 */
void xseg__forget_dead_peers(struct xseg *xs)
{
	struct xseg_header *h = xs->hdr;
	uint32_t i;

	for (i = 0; i < XSEG_MAX_PEERS; i++) {
		uint64_t pid = __atomic_load_n(&h->peers[i].pid, __ATOMIC_ACQUIRE);

		if (pid && !xseg_sys_alive((uint32_t)pid, __atomic_load_n(&h->peers[i].start,
									   __ATOMIC_ACQUIRE)) &&
		    __atomic_compare_exchange_n(&h->peers[i].pid, &pid, 0, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			__atomic_fetch_sub(&h->attached, 1, __ATOMIC_RELAXED);
	}
}

static uint32_t live_peers(struct xseg *xs)
{
	struct xseg_header *h = xs->hdr;
	uint32_t i, n = 0;

	for (i = 0; i < XSEG_MAX_PEERS; i++) {
		uint64_t pid = __atomic_load_n(&h->peers[i].pid, __ATOMIC_ACQUIRE);

		if (pid && xseg_sys_alive((uint32_t)pid, __atomic_load_n(&h->peers[i].start,
									  __ATOMIC_ACQUIRE)))
			n++;
	}
	return n;
}

/*
 * xseg__peer_type_index - the index of peer type @name in the segment's
 * registry, claiming a free entry if it is new. -ENOSPC when full.
 */
int xseg__peer_type_index(struct xseg *xs, const char *name)
{
	struct xseg_header *h = xs->hdr;
	uint32_t i;

	for (i = 0; i < XSEG_MAX_PEER_TYPES; i++) {
		uint64_t w = __atomic_load_n(&h->peer_type_word[i], __ATOMIC_ACQUIRE);

		if (w == 2 && !strncmp(h->peer_type[i], name, XSEG_TYPE_LEN))
			return (int)i;
	}
	for (i = 0; i < XSEG_MAX_PEER_TYPES; i++) {
		uint64_t zero = 0;

		if (__atomic_compare_exchange_n(&h->peer_type_word[i], &zero, 1, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			xseg_memset(h->peer_type[i], 0, XSEG_TYPE_LEN);
			strncpy(h->peer_type[i], name, XSEG_TYPE_LEN - 1);
			/* release: a reader that sees 2 sees the name. */
			__atomic_store_n(&h->peer_type_word[i], 2, __ATOMIC_RELEASE);
			return (int)i;
		}
		/* A racer may be naming the same type right now: look again. */
		if (__atomic_load_n(&h->peer_type_word[i], __ATOMIC_ACQUIRE) == 2 &&
		    !strncmp(h->peer_type[i], name, XSEG_TYPE_LEN))
			return (int)i;
	}
	return -ENOSPC;
}

/*
 * xseg__driver_for - this process's instance of the driver of peer type
 * @peer_type (an index read from a port: validated here), joining it on
 * first use. NULL if the type is unknown or has no driver in this process.
 */
struct xseg__drv *xseg__driver_for(struct xseg *xs, uint32_t peer_type)
{
	struct xseg__drv *d;
	char name[XSEG_TYPE_LEN];

	if (peer_type >= XSEG_MAX_PEER_TYPES)
		return NULL;
	d = &xs->drv[peer_type];
	if (d->joined == 1)
		return d;
	if (d->joined < 0)
		return NULL;
	if (__atomic_load_n(&xs->hdr->peer_type_word[peer_type], __ATOMIC_ACQUIRE) != 2)
		return NULL;
	xseg_memcpy(name, xs->hdr->peer_type[peer_type], XSEG_TYPE_LEN);
	name[XSEG_TYPE_LEN - 1] = 0;
	d->ops = xseg_find_driver(name);
	if (!d->ops) {
		d->joined = -ENOTSUP;
		return NULL;
	}
	if (d->ops->join) {
		int r = d->ops->join(xs, &d->priv);

		if (r) {
			d->joined = r;
			return NULL;
		}
	}
	d->joined = 1;
	return d;
}

struct xseg *xseg_join(const char *segtype, const char *segname, const char *peertype,
		       xseg_wakeup_fn wakeup, void *arg, int *errp, char *err, size_t errlen)
{
	const struct xseg_segtype_ops *st;
	struct xseg *xs;
	int r, idx;

	if (err && errlen)
		err[0] = 0;
	if (!segtype || !segname || !peertype) {
		r = -EINVAL;
		goto out;
	}
	st = xseg_find_segtype(segtype);
	if (!st) {
		seterr(err, errlen, "no segment type '%s' in this domain%s", segtype, "");
		r = -ENOTSUP;
		goto out;
	}
	if (!xseg_find_driver(peertype)) {
		seterr(err, errlen, "no driver for peer type '%s' (built in or xseg_%s.so)", peertype, peertype);
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
	if (__atomic_load_n(&xs->hdr->flags, __ATOMIC_ACQUIRE) & XSEG_F_DESTROYED) {
		seterr(err, errlen, "segment '%s' is marked for destroy%s", segname, "");
		r = -EIDRM;
		goto unmap;
	}
	idx = xseg__peer_type_index(xs, peertype);
	if (idx < 0) {
		seterr(err, errlen, "segment '%s': its peer-type table is full%s", segname, "");
		r = idx;
		goto unmap;
	}
	xs->peer_type = (uint32_t)idx;
	if (!xseg__driver_for(xs, xs->peer_type)) {
		r = xs->drv[idx].joined < 0 ? xs->drv[idx].joined : -ENOTSUP;
		seterr(err, errlen, "driver '%s' could not join segment '%s'", peertype, segname);
		goto unmap;
	}
	r = peer_register(xs);
	if (r < 0) {
		seterr(err, errlen, "segment '%s': %s", segname, "too many peers joined");
		goto drivers;
	}
	xs->peer_slot = r;
	if (errp)
		*errp = 0;
	return xs;

drivers:
	for (idx = 0; idx < (int)XSEG_MAX_PEER_TYPES; idx++)
		if (xs->drv[idx].joined == 1 && xs->drv[idx].ops->leave)
			xs->drv[idx].ops->leave(xs, xs->drv[idx].priv);
unmap:
	xseg_sys_free(xs->local);
	st->unmap(xs->base, xs->size);
free_xs:
	xseg_sys_free(xs);
out:
	if (errp)
		*errp = r;
	return NULL;
}

int xseg_leave(struct xseg *xs)
{
	const struct xseg_segtype_ops *st;
	bool last, autorm;
	uint32_t i;

	if (!xs)
		return -EINVAL;
	for (i = 0; i < xs->nr_ports; i++)
		if (__atomic_load_n(&xs->local[i].bound, __ATOMIC_ACQUIRE))
			xseg_leave_port(xs, i);
	for (i = 0; i < XSEG_MAX_PEER_TYPES; i++)
		if (xs->drv[i].joined == 1 && xs->drv[i].ops->leave)
			xs->drv[i].ops->leave(xs, xs->drv[i].priv);
	if (xs->peer_slot >= 0) {
		uint64_t me = xs->pid;

		if (__atomic_compare_exchange_n(&xs->hdr->peers[xs->peer_slot].pid, &me, 0, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			__atomic_fetch_sub(&xs->hdr->attached, 1, __ATOMIC_RELAXED);
	}
	autorm = __atomic_load_n(&xs->hdr->flags, __ATOMIC_ACQUIRE) & XSEG_F_AUTORM;
	last = autorm && live_peers(xs) == 0;
	st = xs->segtype;
	if (last) {
		__atomic_fetch_or(&xs->hdr->flags, XSEG_F_DESTROYED, __ATOMIC_ACQ_REL);
		if (st->destroy)
			st->destroy(xs->segname);
		xseg__drivers_destroy(xs->segname);
		xseg_sys_log(XSEG_LOG_INFO, "segment '%s' removed after its last peer left", xs->segname);
	}
	st->unmap(xs->base, xs->size);
	xseg_sys_free(xs->local);
	xseg_sys_free(xs);
	return 0;
}

int xseg_destroy(struct xseg *xs)
{
	if (!xs)
		return -EINVAL;
	__atomic_fetch_or(&xs->hdr->flags, XSEG_F_DESTROYED, __ATOMIC_ACQ_REL);
	xseg__drivers_destroy(xs->segname);
	return xs->segtype->destroy ? xs->segtype->destroy(xs->segname) : -ENOTSUP;
}

int xseg_destroy_name(const char *segtype, const char *segname)
{
	const struct xseg_segtype_ops *st = xseg_find_segtype(segtype ? segtype : "");
	void *mem;
	uint64_t size;

	if (!st || !segname)
		return -EINVAL;
	/* Mark it first so that peers still joined see it going away. */
	if (st->map(segname, &mem, &size, NULL, 0) == 0) {
		struct xseg_header *h = mem;

		if (size >= XSEG_HEADER_SIZE &&
		    __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) == XSEG_MAGIC)
			__atomic_fetch_or(&h->flags, XSEG_F_DESTROYED, __ATOMIC_ACQ_REL);
		st->unmap(mem, size);
	}
	xseg__drivers_destroy(segname);
	return st->destroy ? st->destroy(segname) : -ENOTSUP;
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

void *xseg_port_signal_area(struct xseg *xs, uint32_t portno)
{
	return portno < xs->nr_ports ? xs->ports[portno].signal : NULL;
}
