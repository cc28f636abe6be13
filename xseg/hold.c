/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/hold.c - who holds what: the owner and hold primitives the rest of
 * the core is built on (declared in hold.h).
 *
 *   port owners      is a port bound by a live process, is it ours
 *   hold records     this process's per-port records of queue moves in
 *                    flight (recovery replays a dead peer's from them)
 *   joined peers     the header's table of joined processes
 *   peer types       the header's peer-type table, and this process's
 *                    instance of the driver each type names
 *
 * It calls no other unit of the core but the registry (to find a driver):
 * port.c, request.c, recover.c, segment.c and signal.c all use it, and none
 * of them is needed to build it.
 */
#include "xseg_internal.h"

/* ---------------------------------------------------------- port owners */

/*
 * xseg__port_live - is @portno bound by a live process? Sets *gen to its
 * bind generation. Reads /proc: for recovery and binding, not the data path.
 */
int xseg__port_live(struct xseg *xs, uint32_t portno, uint32_t *gen)
{
	uint64_t w;

	if (portno >= xs->nr_ports)
		return 0;
	w = xseg__owner(&xs->ports[portno]);
	if (gen)
		*gen = XSEG_OWNER_GEN(w);
	switch (XSEG_OWNER_STATE(w)) {
	case XSEG_PORT_BOUND:
		return xseg_sys_alive(XSEG_OWNER_PID(w),
				      xa_load_acq64(&xs->ports[portno].owner_start));
	case XSEG_PORT_BINDING:
		return xseg_sys_alive(XSEG_OWNER_PID(w), 0);
	default:
		return 0;
	}
}

/* --------------------------------------------------------- hold records */

/* Hold records: xseg__hold_get/put and holds_get2/put2 are inline (hold.h). */

/* --------------------------------------------------------- joined peers */

/*
 * xseg__peer_register - claim an entry of the joined-peers table, reusing
 * entries of dead peers. The entry index, or -EUSERS when all are live.
 */
int xseg__peer_register(struct xseg *xs)
{
	struct xseg_header *h = xs->hdr;
	uint32_t i;

	for (i = 0; i < XSEG_MAX_PEERS; i++) {
		uint64_t cur = xa_load_acq64(&h->peers[i].pid);
		uint64_t start = xa_load_acq64(&h->peers[i].start);

		if (cur && xseg_sys_alive((uint32_t)cur, start))
			continue;
		/* acq_rel: whoever wins the entry owns it; the start follows. */
		if (xa_cas_acqrel64(&h->peers[i].pid, &cur, xs->pid)) {
			xa_store_rel64(&h->peers[i].start, xs->start);
			/* A dead peer's entry we take over leaves the count as it was. */
			if (!cur)
				xa_add_rlx64(&h->attached, 1);
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
		uint64_t pid = xa_load_acq64(&h->peers[i].pid);

		if (pid && !xseg_sys_alive((uint32_t)pid, xa_load_acq64(&h->peers[i].start)) &&
		    xa_cas_acqrel64(&h->peers[i].pid, &pid, 0))
			xa_sub_rlx64(&h->attached, 1);
	}
}

/* xseg__live_peers - how many joined-peers entries name a live process. */
uint32_t xseg__live_peers(struct xseg *xs)
{
	struct xseg_header *h = xs->hdr;
	uint32_t i, n = 0;

	for (i = 0; i < XSEG_MAX_PEERS; i++) {
		uint64_t pid = xa_load_acq64(&h->peers[i].pid);

		if (pid && xseg_sys_alive((uint32_t)pid, xa_load_acq64(&h->peers[i].start)))
			n++;
	}
	return n;
}

/* ----------------------------------------------------------- peer types */

/*
 * xseg__peer_type_index - the index of peer type @name in the segment's
 * peer-type table (peer_types= entries), claiming a free entry if it is new.
 * -ENOSPC when full.
 */
int xseg__peer_type_index(struct xseg *xs, const char *name)
{
	struct xseg_peer_type *t;
	uint32_t i;

	for (i = 0; (t = xseg__peer_type(xs, i)); i++) {
		if (xseg__peer_type_named(t) && !strncmp(t->name, name, XSEG_TYPE_LEN))
			return (int)i;
	}
	for (i = 0; (t = xseg__peer_type(xs, i)); i++) {
		uint64_t unnamed = XSEG__PT_FREE;

		if (xa_cas_acqrel64(&t->word, &unnamed, XSEG__PT_NAMING)) {
			xseg_memset(t->name, 0, XSEG_TYPE_LEN);
			strncpy(t->name, name, XSEG_TYPE_LEN - 1);
			/* release: a reader that sees NAMED sees the name. */
			xa_store_rel64(&t->word, XSEG__PT_NAMED);
			return (int)i;
		}
		/* A racer may be naming the same type right now: look again. */
		if (xseg__peer_type_named(t) && !strncmp(t->name, name, XSEG_TYPE_LEN))
			return (int)i;
	}
	return -ENOSPC;
}

uint32_t xseg_peer_type_count(const struct xseg *xs)
{
	return xs ? xs->nr_peer_types : 0;
}

int xseg_peer_type_name(struct xseg *xs, uint32_t i, char *name, size_t len)
{
	const struct xseg_peer_type *t;

	if (!xs || !name || !len)
		return -EINVAL;
	name[0] = 0;
	t = xseg__peer_type(xs, i);
	if (!t)
		return -ERANGE;
	if (!xseg__peer_type_named(t))
		return -ENOENT;
	if (len > XSEG_TYPE_LEN)
		len = XSEG_TYPE_LEN;
	/* Shared and untrusted: copy, then terminate, and check it is a name. */
	xseg_memcpy(name, t->name, len);
	name[len - 1] = 0;
	for (size_t k = 0; name[k]; k++) {
		if ((unsigned char)name[k] < 0x21 || (unsigned char)name[k] > 0x7e) {
			name[0] = 0;	/* never hand garbage (or a terminal's escapes) on */
			return -EBADMSG;
		}
	}
	return name[0] ? 0 : -EBADMSG;
}

/*
 * xseg__driver_join - the slow path of xseg__driver_for (hold.h): this
 * process's instance of the driver of peer type @peer_type (an index read
 * from a port: validated here), joining it on first use. NULL if the type
 * is unknown or has no driver in this process.
 */
struct xseg__drv *xseg__driver_join(struct xseg *xs, uint32_t peer_type)
{
	struct xseg__drv *d;
	char name[XSEG_TYPE_LEN];

	if (peer_type >= xs->nr_peer_types)
		return NULL;
	d = &xs->drv[peer_type];
	if (d->joined == 1)
		return d;
	if (d->joined < 0)
		return NULL;
	if (xseg_peer_type_name(xs, peer_type, name, sizeof(name)))
		return NULL;
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
