/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/layout.c - computing a segment's layout from its config, formatting a
 * new segment, and adopting (validating) a mapped one.
 *
 * xseg__adopt() is the one place where a mapped segment's header is trusted:
 * it copies every value it will ever use into the handle, recomputes the
 * layout from the copied config and insists that the header's region table
 * equals the recomputed one. After that the core uses only the copies, so a
 * peer that scribbles over the header later cannot move the regions.
 */
#include "xseg_internal.h"

static void put_err(char *err, size_t errlen, const char *msg)
{
	size_t n;

	if (!err || !errlen)
		return;
	n = strlen(msg);
	if (n >= errlen)
		n = errlen - 1;
	xseg_memcpy(err, msg, n);
	err[n] = 0;
}

/*
 * xseg__layout - compute the region table of @cfg into @h (only the layout
 * fields) and the total size. Returns 0 or -EINVAL (config out of range) or
 * -EOVERFLOW (sizes overflow).
 */
int xseg__layout(const struct xseg_config *cfg, struct xseg_header *h, uint64_t *size)
{
	uint64_t page, off, qsz, n, bytes, cap;
	uint32_t c, nidx, max;

	if (xseg_check_config(cfg, NULL, 0))
		return -EINVAL;
	page = 1ull << cfg->page_shift;
	xseg_memset(h, 0, sizeof(*h));
	h->cfg = *cfg;
	/* Every region is laid out for the reserved maximum (growth moves nothing). */
	max = cfg->max_requests ? cfg->max_requests : cfg->nr_requests;
	cap = xseg__pow2_at_least(max);
	qsz = xq_size((uint32_t)cap);
	if (!qsz)
		return -EINVAL;
	h->queue_cap = (uint32_t)cap;
	h->queue_size = qsz;

	/* Buffer classes: the default (request_size x nr_requests) then the extras. */
	h->nr_classes = 1 + cfg->nr_classes;
	h->cls[0].size = cfg->request_size;
	h->cls[0].count = max;
	for (c = 0; c < cfg->nr_classes; c++) {
		h->cls[c + 1].size = cfg->classes[c].size;
		h->cls[c + 1].count = cfg->classes[c].count;
	}
	nidx = max;
	for (c = 0; c < h->nr_classes; c++) {
		h->cls[c].first = nidx;
		if ((uint64_t)nidx + h->cls[c].count > XQ_INDEX_MAX)
			return -EOVERFLOW;
		nidx += h->cls[c].count;
	}
	h->nr_indices = nidx;
	h->nr_holds = cfg->nr_ports * XSEG_PORT_HOLDS + XSEG__RECOVERY_HOLDS;

	off = XSEG_HEADER_SIZE;
	/* The peer-type table: right after the header, before the ports. */
	h->nr_peer_types = cfg->peer_types ? cfg->peer_types : XSEG_PEER_TYPES_DEFAULT;
	h->types_off = off;
	off += (uint64_t)h->nr_peer_types * sizeof(struct xseg_peer_type);
	h->ports_off = off = xseg__align(off, 64);
	off += (uint64_t)cfg->nr_ports * sizeof(struct xseg_port);
	h->reqs_off = off = xseg__align(off, 64);
	off += (uint64_t)max * sizeof(struct xseg_request);
	h->gens_off = off = xseg__align(off, 64);
	off += (uint64_t)nidx * sizeof(uint64_t);
	h->holds_off = off = xseg__align(off, 64);
	off += (uint64_t)h->nr_holds * sizeof(struct xq_hold);
	h->queues_off = off = xseg__align(off, 64);
	h->free_queue_off = off;
	off += qsz;
	/* Per port: request queue, reply queue. */
	if (!xseg__mul_ok((uint64_t)cfg->nr_ports * 2, qsz, &bytes) || !xseg__add_ok(off, bytes, &off))
		return -EOVERFLOW;
	for (c = 0; c < h->nr_classes; c++) {
		uint64_t ccap = xseg__pow2_at_least(h->cls[c].count);
		uint64_t csz = xq_size((uint32_t)ccap);

		if (!csz)
			return -EINVAL;
		h->cls[c].queue_off = off;
		off += csz;
	}
	h->bufs_off = off = xseg__align(off, page);
	for (c = 0; c < h->nr_classes; c++) {
		h->cls[c].data_off = off;
		if (!xseg__mul_ok(h->cls[c].size, h->cls[c].count, &n) || !xseg__add_ok(off, n, &off))
			return -EOVERFLOW;
		off = xseg__align(off, page);
	}
	h->extra_off = off;
	if (!xseg__add_ok(off, cfg->extra_size, &off))
		return -EOVERFLOW;
	off = xseg__align(off, page);
	if (off > (1ull << 46))
		return -EOVERFLOW;
	*size = off;
	h->size = off;
	return 0;
}

uint64_t xseg_layout_size(const struct xseg_config *cfg)
{
	/* Not on the stack: 3 KB is too much for a kernel stack. */
	struct xseg_header *h = xseg_sys_alloc(sizeof(*h));
	uint64_t size = 0;

	if (h && xseg__layout(cfg, h, &size))
		size = 0;
	xseg_sys_free(h);
	return size;
}

/* A request as format and growth lay it out: free, no buffer, nobody's. */
void xseg__format_request(struct xseg_request *r)
{
	xseg_memset(r, 0, sizeof(*r));
	r->holder = XSEG_HOLDER_NONE;
	r->buf_index = XSEG_NO_BUF;
	r->src_port = r->dst_port = r->effective_dst = r->transit_port = XSEG_NO_PORT;
}

static uint64_t port_q_off(const struct xseg_header *h, uint32_t portno, int reply)
{
	return h->free_queue_off + h->queue_size * (1 + 2ull * portno + (uint64_t)reply);
}

/*
 * xseg__format - write a fresh segment: header from @proto (a computed
 * layout), ports free, every request free and in the free queue, every chunk
 * in its class queue. The segment is not yet visible to other peers: the
 * magic is stored last, with release.
 */
void xseg__format(struct xseg *xs, const struct xseg_header *proto)
{
	struct xseg_header *h = xs->base;
	uint8_t *b = xs->base;
	uint32_t i, c;

	*h = *proto;
	h->magic = 0;
	h->byte_order = XSEG_BYTE_ORDER;
	h->major = XSEG_VERSION_MAJOR;
	h->minor = XSEG_VERSION_MINOR;
	h->header_size = sizeof(struct xseg_header);
	h->port_size = sizeof(struct xseg_port);
	h->request_size = sizeof(struct xseg_request);
	h->hold_size = sizeof(struct xq_hold);
	for (i = 0; i < proto->cfg.nr_ports; i++) {
		struct xseg_port *p = (struct xseg_port *)(b + h->ports_off) + i;

		xseg_memset(p, 0, sizeof(*p));
		p->redirect = XSEG_NO_PORT;
		p->rq_off = port_q_off(h, i, 0);
		p->pq_off = port_q_off(h, i, 1);
		xq_init_empty(b + p->rq_off, h->queue_size, h->queue_cap);
		xq_init_empty(b + p->pq_off, h->queue_size, h->queue_cap);
	}
	/* Only the live requests: growth formats each one it adds (the reserve stays untouched). */
	for (i = 0; i < proto->cfg.nr_requests; i++)
		xseg__format_request((struct xseg_request *)(b + h->reqs_off) + i);
	xseg_memset(b + h->types_off, 0, (size_t)h->nr_peer_types * sizeof(struct xseg_peer_type));
	xseg_memset(b + h->gens_off, 0, (size_t)h->nr_indices * sizeof(uint64_t));
	xseg_memset(b + h->holds_off, 0, (size_t)h->nr_holds * sizeof(struct xq_hold));
	xq_init_seq(b + h->free_queue_off, h->queue_size, h->queue_cap, proto->cfg.nr_requests, 0);
	for (c = 0; c < h->nr_classes; c++) {
		uint32_t ccap = (uint32_t)xseg__pow2_at_least(h->cls[c].count);

		uint32_t live = c ? h->cls[c].count : proto->cfg.nr_requests;

		xq_init_seq(b + h->cls[c].queue_off, xq_size(ccap), ccap, live, h->cls[c].first);
		h->live_chunks[c] = live;
		h->retire_chunks[c] = 0;
	}
	h->live_requests = proto->cfg.nr_requests;
	h->retire_requests = 0;
	/* release: every peer that sees the magic sees the formatted segment. */
	xa_store_rel64(&h->magic, XSEG_MAGIC);
}

#define ADOPT_FAIL(msg) do { put_err(err, errlen, msg); return -EBADMSG; } while (0)

/*
 * xseg__adopt - validate the mapped segment at xs->base (xs->size bytes) and
 * fill the handle's copies. Returns 0, -EPROTO (another major version: the
 * message names both), or -EBADMSG (corrupt: the message names the field).
 */
static int adopt(struct xseg *xs, struct xseg_header *copy, struct xseg_header *expect,
		 char *err, size_t errlen);

int xseg__adopt(struct xseg *xs, char *err, size_t errlen)
{
	/* Two header copies are 6 KB: from the heap, not a (kernel) stack. */
	struct xseg_header *a = xseg_sys_alloc(sizeof(*a)), *b = xseg_sys_alloc(sizeof(*b));
	int r = -ENOMEM;

	if (a && b)
		r = adopt(xs, a, b, err, errlen);
	else
		put_err(err, errlen, "out of memory");
	xseg_sys_free(a);
	xseg_sys_free(b);
	return r;
}

static int adopt(struct xseg *xs, struct xseg_header *copy, struct xseg_header *expect,
		 char *err, size_t errlen)
{
	uint64_t size;
	uint8_t *b = xs->base;
	uint32_t i, c;

	if (xs->size < XSEG_HEADER_SIZE)
		ADOPT_FAIL("segment is smaller than its header page (truncated)");
	/* acquire: pairs with xseg__format()'s release of the magic. */
	if (xa_load_acq64(&((struct xseg_header *)b)->magic) != XSEG_MAGIC)
		ADOPT_FAIL("bad magic: not an xseg segment, or not formatted yet");
	xseg_memcpy(copy, b, sizeof(*copy));
	if (copy->byte_order != XSEG_BYTE_ORDER)
		ADOPT_FAIL("byte order differs from this machine's");
	if (copy->major != XSEG_VERSION_MAJOR) {
		char m[160];

		snprintf(m, sizeof(m), "segment layout version %u.%u, this library speaks %u.%u",
			 copy->major, copy->minor, XSEG_VERSION_MAJOR, XSEG_VERSION_MINOR);
		put_err(err, errlen, m);
		return -EPROTO;
	}
	if (copy->header_size != sizeof(struct xseg_header) || copy->port_size != sizeof(struct xseg_port) ||
	    copy->request_size != sizeof(struct xseg_request) || copy->hold_size != sizeof(struct xq_hold))
		ADOPT_FAIL("struct sizes differ from this library's (a build with another layout)");
	copy->cfg.type[XSEG_TYPE_LEN - 1] = 0;
	copy->cfg.name[XSEG_NAME_LEN - 1] = 0;
	if (xseg__layout(&copy->cfg, expect, &size)) {
		char why[160], m[200];

		/* The config check names the field (peer_types: '129' must be ...). */
		if (!xseg_check_config(&copy->cfg, why, sizeof(why)))
			snprintf(why, sizeof(why), "its sizes overflow");
		snprintf(m, sizeof(m), "the config in the header is invalid: %s", why);
		ADOPT_FAIL(m);
	}
	if (size != copy->size || size > xs->size)
		ADOPT_FAIL("segment size does not match its config (truncated or corrupt)");
	if (expect->ports_off != copy->ports_off || expect->reqs_off != copy->reqs_off ||
	    expect->gens_off != copy->gens_off || expect->holds_off != copy->holds_off ||
	    expect->queues_off != copy->queues_off || expect->free_queue_off != copy->free_queue_off ||
	    expect->bufs_off != copy->bufs_off || expect->extra_off != copy->extra_off ||
	    expect->queue_size != copy->queue_size || expect->queue_cap != copy->queue_cap ||
	    expect->nr_indices != copy->nr_indices || expect->nr_holds != copy->nr_holds ||
	    expect->nr_classes != copy->nr_classes)
		ADOPT_FAIL("region table does not match the config");
	if (expect->types_off != copy->types_off || expect->nr_peer_types != copy->nr_peer_types) {
		char m[200];

		snprintf(m, sizeof(m), "peer-type table (types_off %llu, nr_peer_types %u) does not match "
			 "the config (peer_types=%u: at %llu)", (unsigned long long)copy->types_off,
			 copy->nr_peer_types, expect->nr_peer_types, (unsigned long long)expect->types_off);
		ADOPT_FAIL(m);
	}
	for (c = 0; c < expect->nr_classes; c++)
		if (memcmp(&expect->cls[c], &copy->cls[c], sizeof(expect->cls[c])))
			ADOPT_FAIL("buffer class table does not match the config");

	xs->cfg = copy->cfg;
	xs->nr_ports = copy->cfg.nr_ports;
	xs->dynports = copy->cfg.dynports;
	/* The reserve: every bound check uses it; the live words only say what circulates. */
	xs->nr_requests = expect->cls[0].count;
	xs->max_hops = copy->cfg.max_hops ? copy->cfg.max_hops : XSEG_PATH_DEFAULT;
	xs->nr_peer_types = expect->nr_peer_types;
	xs->types = (struct xseg_peer_type *)(b + expect->types_off);
	xs->queue_cap = expect->queue_cap;
	xs->nr_indices = expect->nr_indices;
	xs->nr_holds = expect->nr_holds;
	xs->nr_classes = expect->nr_classes;
	xseg_memcpy(xs->cls, expect->cls, sizeof(xs->cls));
	xs->hdr = (struct xseg_header *)b;
	xs->ports = (struct xseg_port *)(b + expect->ports_off);
	xs->reqs = (struct xseg_request *)(b + expect->reqs_off);
	xs->holds = (struct xq_hold *)(b + expect->holds_off);
	xs->extra_off = expect->extra_off;
	xs->extra_size = copy->cfg.extra_size;
	xs->track.gen = (uint64_t *)(b + expect->gens_off);
	xs->track.nindices = expect->nr_indices;
	xs->track.holds = xs->holds;
	xs->track.nholds = expect->nr_holds;
	/* A taker of a request reads and writes its lines 0 and 1 next. */
	xs->track.objs = xs->reqs;
	xs->track.obj_size = sizeof(struct xseg_request);
	xs->track.nobjs = xs->nr_requests;
	xs->track.obj_hot = 128;
	if (xq_attach(&xs->freeq, b + expect->free_queue_off, expect->queue_size, xs->nr_requests))
		ADOPT_FAIL("free request queue is corrupt");
	/* Every xseg queue carries at most its capacity of distinct indices. */
	xq_set_bounded(&xs->freeq);
	for (c = 0; c < xs->nr_classes; c++) {
		uint32_t ccap = (uint32_t)xseg__pow2_at_least(xs->cls[c].count);

		if (xq_attach(&xs->clsq[c], b + xs->cls[c].queue_off, xq_size(ccap),
			      xs->cls[c].first + xs->cls[c].count))
			ADOPT_FAIL("a buffer class queue is corrupt");
		xq_set_bounded(&xs->clsq[c]);
	}
	xs->local = xseg_sys_alloc(sizeof(*xs->local) * xs->nr_ports);
	/* Freed with local (xseg_leave, or join's error path). */
	xs->drv = xseg_sys_alloc(sizeof(*xs->drv) * xs->nr_peer_types);
	if (!xs->local || !xs->drv) {
		xseg_sys_free(xs->local);
		xseg_sys_free(xs->drv);
		xs->local = NULL;
		xs->drv = NULL;
		put_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* Port queues live at fixed offsets: computed, never read from the port. */
	for (i = 0; i < xs->nr_ports; i++) {
		if (xq_attach(&xs->local[i].rq, b + port_q_off(expect, i, 0), expect->queue_size,
			      xs->nr_requests) ||
		    xq_attach(&xs->local[i].pq, b + port_q_off(expect, i, 1), expect->queue_size,
			      xs->nr_requests)) {
			char m[80];

			snprintf(m, sizeof(m), "port %u: a queue header is corrupt", i);
			put_err(err, errlen, m);
			xseg_sys_free(xs->local);
			xseg_sys_free(xs->drv);
			xs->local = NULL;
			xs->drv = NULL;
			return -EBADMSG;
		}
		xq_set_bounded(&xs->local[i].rq);
		xq_set_bounded(&xs->local[i].pq);
	}
	return 0;
}
