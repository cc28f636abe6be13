/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/request.c - the life of a request:
 *
 *   free queue --get--> PREPARED (client) --submit--> SUBMITTED (dst's queue)
 *     --accept--> ACCEPTED (server) --respond--> RESPONDED (client's replies)
 *     --receive--> RECEIVED (client) --put--> free queue
 *   (forward: ACCEPTED at a middle port --> SUBMITTED to the next one, and the
 *    reply comes back through the middle port first; pass: the same with no
 *    return hop, the reply goes where the middle port's would have gone.)
 *
 * Every move between a queue and a peer goes through one of the moving
 * port's hold records (xq tracked operations), and the request's holder word
 * names the port it is with or heading to. Together they let recovery give
 * every request exactly one fate when a peer dies at any instruction.
 */
#include "xseg_internal.h"

static const char *const op_names[X_OP_COUNT] = {
	[X_PING] = "ping", [X_READ] = "read", [X_WRITE] = "write", [X_SYNC] = "sync",
	[X_TRUNCATE] = "truncate", [X_DELETE] = "delete", [X_INFO] = "info", [X_COPY] = "copy",
	[X_CLONE] = "clone", [X_SNAPSHOT] = "snapshot", [X_ACQUIRE] = "acquire",
	[X_RELEASE] = "release", [X_OPEN] = "open", [X_CLOSE] = "close", [X_MAPR] = "mapr",
	[X_MAPW] = "mapw", [X_HASH] = "hash", [X_CREATE] = "create", [X_RENAME] = "rename",
	[X_UPDATE] = "update", [X_FLUSH] = "flush", [X_DISCARD] = "discard",
	[X_WRITE_ZEROES] = "write_zeroes", [X_COMMIT] = "commit",
	[X_LIST] = "list",
};

const char *xseg_op_name(uint32_t op)
{
	return op < X_OP_COUNT ? op_names[op] : "unknown";
}

int xseg_op_from_name(const char *name)
{
	int i;

	for (i = 0; name && i < X_OP_COUNT; i++)
		if (!strcmp(op_names[i], name))
			return i;
	return -EINVAL;
}

struct xq *xseg__queue(struct xseg *xs, uint64_t qid)
{
	uint64_t nq = 1 + 2ull * xs->nr_ports;

	if (qid == XSEG__QID_FREE)
		return &xs->freeq;
	if (qid < nq)
		return (qid & 1) ? &xs->local[(qid - 1) / 2].rq : &xs->local[(qid - 2) / 2].pq;
	if (qid - nq < xs->nr_classes)
		return &xs->clsq[qid - nq];
	return NULL;
}

int xseg__req_index(struct xseg *xs, const struct xseg_request *req)
{
	uintptr_t a = (uintptr_t)req, b = (uintptr_t)xs->reqs;

	if (!req || a < b || (a - b) % sizeof(*req) || (a - b) / sizeof(*req) >= xs->nr_requests)
		return -EINVAL;
	return (int)((a - b) / sizeof(*req));
}

int xseg_request_index(struct xseg *xs, const struct xseg_request *req)
{
	return xs ? xseg__req_index(xs, req) : -EINVAL;
}

struct xseg_request *xseg_request_at(struct xseg *xs, uint32_t index)
{
	return xs && index < xs->nr_requests ? &xs->reqs[index] : NULL;
}

/* The class of a chunk index, or -1. */
int xseg__chunk_class(struct xseg *xs, uint32_t chunk)
{
	uint32_t c;

	for (c = 0; c < xs->nr_classes; c++)
		if (chunk >= xs->cls[c].first && chunk - xs->cls[c].first < xs->cls[c].count)
			return (int)c;
	return -1;
}

bool xseg__chunk_referenced(struct xseg *xs, uint32_t chunk)
{
	uint32_t i;

	for (i = 0; i < xseg__live_requests(xs); i++)
		if (xa_load_acq32(&xs->reqs[i].buf_index) == chunk)
			return true;
	return false;
}

/* Give a chunk held in @hold (HELD) back to its class. */
void xseg__free_chunk(struct xseg *xs, uint32_t chunk, struct xq_hold *hold)
{
	int c = xseg__chunk_class(xs, chunk);

	/* A shrink retires it: parked, in no queue (grow.c counts it given back). */
	if (c >= 0 && xseg__chunk_retiring(xs, (uint32_t)c, chunk - xs->cls[c].first)) {
		xq_hold_drop(hold);
		return;
	}
	if (c < 0 || !xq_enqueue_tracked(&xs->clsq[c], xseg__qid_cls(xs, (uint32_t)c), &xs->track, hold)) {
		xseg_sys_log(XSEG_LOG_WARN, "buffer chunk %u cannot go back to its pool (corrupt?)", chunk);
		xq_hold_drop(hold);
	}
}

/* Release the request's buffer, through @hold_c. */
static void release_buffer(struct xseg *xs, struct xseg_request *req, struct xq_hold *hold_c)
{
	uint32_t chunk = xa_load_acq32(&req->buf_index);

	if (chunk == XSEG_NO_BUF)
		return;
	if (xseg__chunk_class(xs, chunk) < 0) {
		xa_store_rel32(&req->buf_index, XSEG_NO_BUF);
		return;
	}
	/* Hold the chunk before the request lets go of it, so it is never in neither. */
	xq_hold_take(&xs->track, hold_c, chunk);
	xa_store_rel32(&req->buf_index, XSEG_NO_BUF);
	xa_store_rlx64(&req->data_len, 0);
	/* Only a charged chunk is given back (a hostile bit mis-counts that port only). */
	if (xseg__req_state(req) & XS_Q_BUFFER) {
		xa_and_acqrel32(&req->state, ~XS_Q_BUFFER);
		xseg__quota_release(xs, req->src_port, req->src_gen, XSEG__Q_BUFFER,
				    xs->cls[xseg__chunk_class(xs, chunk)].size >> xs->cfg.page_shift);
	}
	xseg__free_chunk(xs, chunk, hold_c);
}

/*
 * xseg__free_request - return request @r (and its buffer) to the free queue.
 * @hold_r holds r (HELD) or is NONE (then the caller owns r through its
 * holder word); @hold_c is a second, free hold for the buffer.
 */
void xseg__free_request(struct xseg *xs, uint32_t r, struct xq_hold *hold_r, struct xq_hold *hold_c)
{
	struct xseg_request *req = &xs->reqs[r];

	if (xq_hold_state(hold_r, NULL) != XQ_HOLD_HELD)
		xq_hold_take(&xs->track, hold_r, r);
	release_buffer(xs, req, hold_c);
	if (xseg__req_state(req) & XS_Q_REQUEST)
		xseg__quota_release(xs, req->src_port, req->src_gen, XSEG__Q_REQUESTS, 1);
	/* Free: no result, nothing charged (a stale bit would mis-count its next client). */
	xa_store_rel32(&req->state, XS_FREE << XS_LIFE_SHIFT);
	xseg__set_holder(req, XSEG_HOLDER_NONE);
	/* A shrink retires it: parked free, in no queue (grow.c gives it back). */
	if (xseg__req_retiring(xs, r)) {
		xq_hold_drop(hold_r);
		return;
	}
	if (!xq_enqueue_tracked(&xs->freeq, XSEG__QID_FREE, &xs->track, hold_r)) {
		xseg_sys_log(XSEG_LOG_WARN, "request %u cannot go back to the free queue (corrupt?)", r);
		xq_hold_drop(hold_r);
	}
}

/* The live bind generation of @p if it is bound (not checking liveness). */
static int port_bound(struct xseg *xs, uint32_t p, uint32_t *gen)
{
	uint64_t w;

	if (p >= xs->nr_ports)
		return 0;
	w = xseg__owner(&xs->ports[p]);
	*gen = XSEG_OWNER_GEN(w);
	return XSEG_OWNER_STATE(w) == XSEG_PORT_BOUND;
}

/* Is @req held by port @p of ours right now? */
static bool held_by_us(struct xseg *xs, const struct xseg_request *req, uint32_t *p)
{
	uint64_t h = xseg__holder(req);
	uint32_t port = (uint32_t)(h >> 32);

	if (h == XSEG_HOLDER_NONE || port >= xs->nr_ports || !xseg__owned(xs, port) ||
	    (uint32_t)h != xs->local[port].gen)
		return false;
	*p = port;
	return true;
}

/*
 * xseg__dequeue_life - the next request in @q (queue id @qid) whose life is
 * @life, held in @hold (HELD); XQ_NONE when there is none. An entry whose
 * request is in another state is a corrupt entry (the request itself is
 * elsewhere): logged and dropped, never handed out. Bounded by the capacity.
 */
uint32_t xseg__dequeue_life(struct xseg *xs, struct xq *q, uint64_t qid, struct xq_hold *hold,
			    uint32_t life)
{
	uint32_t tries, r;

	for (tries = 0; tries < xs->queue_cap; tries++) {
		r = xq_dequeue_tracked(q, qid, &xs->track, hold);
		if (r == XQ_NONE)
			return XQ_NONE;
		if (xseg__life(&xs->reqs[r]) == life)
			return r;
		xseg_sys_log(XSEG_LOG_WARN, "request %u in queue %llu is in state %u, not %u: "
			     "a corrupt entry, dropped", r, (unsigned long long)qid,
			     xseg__life(&xs->reqs[r]), life);
		xq_hold_drop(hold);
	}
	return XQ_NONE;
}

/*
 * own_hold - for a call that takes from a queue on behalf of port @p: the
 * port must be ours (else errno EPERM) and have a free hold record (else
 * EAGAIN: every record of the port is in use by its other threads). 0 or -1.
 */
static int own_hold(struct xseg *xs, uint32_t p, struct xq_hold **hold)
{
	if (!xs || !xseg__owned(xs, p)) {
		xseg_sys_set_errno(EPERM);
		return -1;
	}
	if (xseg__hold_get(xs, p, hold)) {
		xseg_sys_set_errno(EAGAIN);
		return -1;
	}
	return 0;
}

struct xseg_request *xseg_get_request(struct xseg *xs, uint32_t src)
{
	struct xseg_request *req;
	struct xq_hold *hold;
	uint32_t r, charged;
	int q;

	if (own_hold(xs, src, &hold))
		return NULL;
	q = xseg__quota_charge(xs, src, XSEG__Q_REQUESTS, 1);
	if (q < 0) {
		xseg__hold_put(xs, src, hold);
		xseg_sys_set_errno(EDQUOT);
		return NULL;
	}
	charged = q ? XS_Q_REQUEST : 0;
	for (uint32_t tries = 0;; tries++) {
		uint32_t st;

		r = tries < xs->queue_cap ?
		    xq_dequeue_tracked(&xs->freeq, XSEG__QID_FREE, &xs->track, hold) : XQ_NONE;
		if (r == XQ_NONE) {
			if (charged)
				xseg__quota_release(xs, src, xs->local[src].gen, XSEG__Q_REQUESTS, 1);
			xseg__hold_put(xs, src, hold);
			xseg_sys_set_errno(EAGAIN);
			return NULL;
		}
		req = &xs->reqs[r];
		/* A shrink retires it: leave it parked (free, in no queue). */
		if (xseg__req_retiring(xs, r)) {
			xq_hold_drop(hold);
			continue;
		}
		/*
		 * Claim it FREE -> PREPARED with a CAS: an entry of the free list
		 * whose request is not free is a corrupt duplicate, never taken.
		 */
		st = xseg__req_state(req);
		if (((st >> XS_LIFE_SHIFT) & 0xFF) == XS_FREE &&
		    xa_cas_acqrel32(&req->state, &st, (XS_PREPARED << XS_LIFE_SHIFT) | charged))
			break;
		xseg_sys_log(XSEG_LOG_WARN, "request %u in the free list is in use: a corrupt entry, dropped", r);
		xq_hold_drop(hold);
	}
	req->serial = xa_add_rlx64(&xs->hdr->serial, 1) + 1;
	req->op = X_PING;
	req->flags = 0;
	req->error = 0;
	req->offset = req->size = req->serviced = 0;
	req->src_port = src;
	req->src_gen = xs->local[src].gen;
	req->dst_port = req->effective_dst = req->transit_port = XSEG_NO_PORT;
	req->path_len = 0;
	req->target_len = 0;
	req->ts_submit = req->ts_accept = req->ts_respond = 0;
	req->cookie = 0;
	if (xa_load_acq32(&req->buf_index) != XSEG_NO_BUF) {
		/* A free request never has a buffer; this one's is not ours to free. */
		xa_store_rel32(&req->buf_index, XSEG_NO_BUF);
	}
	req->data_len = 0;
	xseg__set_holder(req, XSEG_HOLDER(src, xs->local[src].gen));
	xq_hold_drop(hold);
	xseg__hold_put(xs, src, hold);
	return req;
}

static void *chunk_data(struct xseg *xs, uint32_t chunk, uint64_t *size)
{
	int c = xseg__chunk_class(xs, chunk);

	if (c < 0)
		return NULL;
	if (size)
		*size = xs->cls[c].size;
	return (uint8_t *)xs->base + xs->cls[c].data_off + (uint64_t)(chunk - xs->cls[c].first) * xs->cls[c].size;
}

int xseg_prep_request(struct xseg *xs, struct xseg_request *req,
		      const char *target, uint32_t tlen, uint64_t datalen)
{
	struct xq_hold *hold;
	uint32_t p, chunk, c, first = XSEG_MAX_BUF_CLASSES;
	uint64_t have = 0;
	int r;

	if (!xs || xseg__req_index(xs, req) < 0)
		return -EINVAL;
	if (!held_by_us(xs, req, &p) || xseg__life(req) != XS_PREPARED)
		return -EPERM;
	if (tlen > XSEG_TARGET_MAX || (tlen && !target))
		return -ENAMETOOLONG;
	for (c = 0; c < xs->nr_classes; c++)
		if (xs->cls[c].size >= datalen && (first == XSEG_MAX_BUF_CLASSES ||
						   xs->cls[c].size < xs->cls[first].size))
			first = c;
	if (datalen && first == XSEG_MAX_BUF_CLASSES)
		return -E2BIG;
	if (tlen)
		xseg_memcpy(req->target, target, tlen);
	req->target_len = tlen;
	chunk = xa_load_acq32(&req->buf_index);
	if (chunk != XSEG_NO_BUF && chunk_data(xs, chunk, &have) && have >= datalen && datalen) {
		req->data_len = datalen;	/* the buffer it has fits */
		return 0;
	}
	r = xseg__hold_get(xs, p, &hold);
	if (r)
		return r;
	release_buffer(xs, req, hold);
	req->data_len = 0;
	if (!datalen) {
		xseg__hold_put(xs, p, hold);
		return 0;
	}
	/* The smallest class that fits, then larger ones. */
	r = -ENOBUFS;
	for (have = xs->cls[first].size;;) {
		uint64_t next = UINT64_MAX;

		for (c = 0; c < xs->nr_classes; c++) {
			uint64_t pages = xs->cls[c].size >> xs->cfg.page_shift;

			if (xs->cls[c].size != have)
				continue;
			/* Charged to the client (the request's src: us) before it has it. */
			int q = xseg__quota_charge(xs, p, XSEG__Q_BUFFER, pages);

			if (q < 0) {
				r = -EDQUOT;	/* a larger class would pass it too */
				goto out;
			}
			chunk = xq_dequeue_tracked(&xs->clsq[c], xseg__qid_cls(xs, c), &xs->track, hold);
			/* Retiring chunks (a shrink) are parked; the queue holds at most cap of them. */
			for (uint32_t n = 0; chunk != XQ_NONE && n < xs->queue_cap &&
			     xseg__chunk_class(xs, chunk) == (int)c &&
			     xseg__chunk_retiring(xs, c, chunk - xs->cls[c].first); n++) {
				xq_hold_drop(hold);
				chunk = xq_dequeue_tracked(&xs->clsq[c], xseg__qid_cls(xs, c), &xs->track, hold);
			}
			if (chunk != XQ_NONE && xseg__chunk_class(xs, chunk) == (int)c) {
				if (q)
					xa_or_acqrel32(&req->state, XS_Q_BUFFER);
				xa_store_rel32(&req->buf_index, chunk);
				req->data_len = datalen;
				xq_hold_drop(hold);
				r = 0;
				goto out;
			}
			if (q)
				xseg__quota_release(xs, p, xs->local[p].gen, XSEG__Q_BUFFER, pages);
			if (chunk != XQ_NONE)
				xq_hold_drop(hold);	/* corrupt entry: drop it */
		}
		for (c = 0; c < xs->nr_classes; c++)
			if (xs->cls[c].size > have && xs->cls[c].size < next)
				next = xs->cls[c].size;
		if (next == UINT64_MAX)
			break;
		have = next;
	}
out:
	xseg__hold_put(xs, p, hold);
	return r;
}

char *xseg_req_target(struct xseg *xs, struct xseg_request *req)
{
	return xs && xseg__req_index(xs, req) >= 0 ? req->target : NULL;
}

void *xseg_req_data(struct xseg *xs, struct xseg_request *req)
{
	uint64_t size;
	void *d;

	if (!xs || xseg__req_index(xs, req) < 0)
		return NULL;
	d = chunk_data(xs, xa_load_acq32(&req->buf_index), &size);
	if (!d || xa_load_rlx64(&req->data_len) > size)
		return NULL;
	return d;
}

void *xseg_req_buffer(struct xseg *xs, struct xseg_request *req, uint64_t *capacity)
{
	uint64_t size = 0;
	void *d = NULL;

	if (xs && xseg__req_index(xs, req) >= 0)
		d = chunk_data(xs, xa_load_acq32(&req->buf_index), &size);
	if (capacity)
		*capacity = d ? size : 0;
	return d;
}

/*
 * Queue request @r (held in @hold) to @dst's request queue as SUBMITTED.
 * @submit: a client's submit, which stamps ts_submit (if its port @from
 * takes timestamps) and clears the server's stamps of an earlier round; a
 * forward keeps them, so the client's latency runs from its own submit.
 */
static int queue_to(struct xseg *xs, uint32_t r, uint32_t dst, struct xq_hold *hold,
		    uint64_t back_holder, uint32_t back_life, bool submit, uint32_t from)
{
	struct xseg_request *req = &xs->reqs[r];
	uint32_t eff = xa_load_acq32(&xs->ports[dst].redirect), gen;

	if (eff >= xs->nr_ports)
		eff = dst;
	if (!port_bound(xs, eff, &gen))
		return -ENOENT;
	if (!(xa_load_acq32(&xs->ports[eff].flags) & XSEG_PORT_ACCEPT))
		return -EPERM;		/* bound to receive replies only */
	req->dst_port = dst;
	req->effective_dst = eff;
	if (submit) {
		req->ts_submit = xs->local[from].timing ? xseg_sys_stamp_ns() : 0;
		req->ts_accept = req->ts_respond = 0;
	}
	xq_hold_take(&xs->track, hold, r);
	/* A new result; what the request is charged stays with it. */
	xa_store_rel32(&req->state, (xseg__req_state(req) & (XS_Q_REQUEST | XS_Q_BUFFER)) |
				    (XS_SUBMITTED << XS_LIFE_SHIFT));
	xseg__set_holder(req, XSEG_HOLDER(eff, gen));
	if (!xq_enqueue_tracked(&xs->local[eff].rq, xseg__qid_rq(eff), &xs->track, hold)) {
		xseg__set_life(req, back_life);
		xseg__set_holder(req, back_holder);
		xq_hold_drop(hold);
		return -EAGAIN;
	}
	return (int)eff;
}

int xseg_submit(struct xseg *xs, struct xseg_request *req, uint32_t dst)
{
	struct xq_hold *hold;
	uint32_t p, life;
	int r, idx = xs ? xseg__req_index(xs, req) : -EINVAL;

	if (idx < 0 || dst >= xs->nr_ports)
		return -EINVAL;
	if (!held_by_us(xs, req, &p))
		return -EPERM;
	life = xseg__life(req);
	if (life != XS_PREPARED && life != XS_RECEIVED)
		return -EPERM;
	r = xseg__hold_get(xs, p, &hold);
	if (r)
		return r;
	req->path_len = 0;
	req->error = 0;
	req->flags &= ~XF_READDRESSED;	/* only a hop's xseg_readdress sets it */
	r = queue_to(xs, (uint32_t)idx, dst, hold, XSEG_HOLDER(p, xs->local[p].gen), life, true, p);
	xseg__hold_put(xs, p, hold);
	if (r < 0)
		return r;
	xseg__count(&xs->ports[p].cnt.submitted);
	return r;	/* the port it was queued to: the one to signal */
}

int xseg_submit_signal(struct xseg *xs, struct xseg_request *req, uint32_t dst)
{
	int to = xseg_submit(xs, req, dst);

	/*
	 * The request is queued whatever the signal does: a signal error (no
	 * driver of that peer type here) is not a submit error, or the caller
	 * would put back a request a server may already hold.
	 */
	if (to >= 0)
		xseg_signal(xs, (uint32_t)to);
	return to;
}

struct xseg_request *xseg_accept(struct xseg *xs, uint32_t portno)
{
	struct xseg_request *req;
	struct xq_hold *hold;
	uint32_t r;

	if (own_hold(xs, portno, &hold))
		return NULL;
	r = xseg__dequeue_life(xs, &xs->local[portno].rq, xseg__qid_rq(portno), hold, XS_SUBMITTED);
	if (r != XQ_NONE) {
		req = &xs->reqs[r];
		if (xs->local[portno].service_timing)
			req->ts_accept = xseg_sys_stamp_ns();
		req->transit_port = portno;
		xseg__set_life(req, XS_ACCEPTED);
		xseg__set_holder(req, XSEG_HOLDER(portno, xs->local[portno].gen));
		xq_hold_drop(hold);
		xseg__hold_put(xs, portno, hold);
		xseg__count(&xs->ports[portno].cnt.accepted);
		return req;
	}
	xseg__hold_put(xs, portno, hold);
	xseg_sys_set_errno(EAGAIN);
	return NULL;
}

/*
 * What xseg_readdress keeps, in the last KEEP_SIZE bytes of the target
 * array, with the kept target just before them. The request is shared:
 * everything read back is checked, and a bad record is dropped, not used.
 */
struct keep {
	uint64_t offset;
	uint32_t flags;
	uint16_t tlen;
	uint8_t level;		/* path_len at the readdressing hop */
	uint8_t magic;
};
#define KEEP_SIZE	16u
#define KEEP_MAGIC	0xA7u
XSEG_STATIC_ASSERT(sizeof(struct keep) == KEEP_SIZE, "the kept fields are 16 bytes");

/* Copy @n bytes within the target array (the ranges may overlap). */
static void target_move(struct xseg_request *req, uint32_t to, uint32_t from, uint32_t n)
{
	char tmp[XSEG_TARGET_MAX];

	xseg_memcpy(tmp, req->target + from, n);
	xseg_memcpy(req->target + to, tmp, n);
}

/*
 * Put back what xseg_readdress kept, if the reply now leaves the hop that
 * readdressed it: to the client (@client), or to a hop above it (its path
 * index @n below the kept level).
 */
static void readdress_undo(struct xseg_request *req, bool client, uint32_t n)
{
	uint32_t flags = req->flags;
	struct keep k;

	if (!(flags & XF_READDRESSED))
		return;
	xseg_memcpy(&k, req->target + XSEG_TARGET_MAX - KEEP_SIZE, KEEP_SIZE);
	if (k.magic != KEEP_MAGIC || k.tlen > XSEG_TARGET_MAX - KEEP_SIZE) {
		req->flags = flags & ~XF_READDRESSED;	/* scribbled on: nothing to put back */
		return;
	}
	if (!client && n >= k.level)
		return;
	target_move(req, 0, XSEG_TARGET_MAX - KEEP_SIZE - k.tlen, k.tlen);
	req->target_len = k.tlen;
	req->offset = k.offset;
	req->flags = k.flags & ~XF_READDRESSED;
}

int xseg_readdress(struct xseg *xs, struct xseg_request *req, const char *target, uint32_t tlen,
		   uint64_t offset, uint32_t flags)
{
	uint32_t p, ct;
	struct keep k;

	if (!xs || xseg__req_index(xs, req) < 0 || (tlen && !target))
		return -EINVAL;
	if (!held_by_us(xs, req, &p) || xseg__life(req) != XS_ACCEPTED)
		return -EPERM;
	if (req->flags & XF_READDRESSED)
		return -EBUSY;
	ct = req->target_len;
	if (ct > XSEG_TARGET_MAX - KEEP_SIZE || tlen > XSEG_TARGET_MAX - KEEP_SIZE - ct)
		return -ENOSPC;
	k.offset = req->offset;
	k.flags = req->flags;
	k.tlen = (uint16_t)ct;
	k.level = (uint8_t)req->path_len;
	k.magic = KEEP_MAGIC;
	target_move(req, XSEG_TARGET_MAX - KEEP_SIZE - ct, 0, ct);
	xseg_memcpy(req->target + XSEG_TARGET_MAX - KEEP_SIZE, &k, KEEP_SIZE);
	if (tlen)
		xseg_memcpy(req->target, target, tlen);
	req->target_len = tlen;
	req->offset = offset;
	req->flags = flags | XF_READDRESSED;
	return 0;
}

/*
 * xseg__deliver - send request @r, held in @hold_r, back along its return
 * path as RESPONDED: to the last forwarding hop, else to its client. If that
 * port is no longer bound by the same generation, the request is freed
 * instead (its client is gone). Returns the port it went to, or -ENOENT if
 * it was freed.
 */
int xseg__deliver(struct xseg *xs, uint32_t r, struct xq_hold *hold_r, struct xq_hold *hold_c)
{
	struct xseg_request *req = &xs->reqs[r];
	uint32_t n = xa_load_acq32(&req->path_len), to, want, gen;
	bool client;

	if (n > xs->max_hops)
		n = 0;		/* corrupt path: go straight to the client */
	for (;;) {
		client = !n;
		if (n) {
			uint64_t hop = req->path[--n];

			to = (uint32_t)(hop >> 32);
			want = (uint32_t)hop;
		} else {
			to = req->src_port;
			want = req->src_gen;
		}
		if (port_bound(xs, to, &gen) && gen == want)
			break;
		if (!n && to == req->src_port) {
			/* The client is gone: nobody waits for this one. */
			xa_store_rel32(&req->path_len, 0);
			xseg__free_request(xs, r, hold_r, hold_c);
			return -ENOENT;
		}
		/* A forwarding hop that is gone: it fails, and goes on down the path. */
		req->error = ECONNRESET;
		xseg__req_fail(req);
	}
	readdress_undo(req, client, n);
	xa_store_rel32(&req->path_len, n);
	xseg__set_life(req, XS_RESPONDED);
	xseg__set_holder(req, XSEG_HOLDER(to, want));
	if (!xq_enqueue_tracked(&xs->local[to].pq, xseg__qid_pq(to), &xs->track, hold_r)) {
		xseg_sys_log(XSEG_LOG_WARN, "port %u: reply queue full (corrupt?); request %u freed", to, r);
		xseg__free_request(xs, r, hold_r, hold_c);
		return -ENOENT;
	}
	return (int)to;
}

int xseg_respond(struct xseg *xs, struct xseg_request *req)
{
	struct xq_hold *hr, *hc;
	uint64_t served;
	uint32_t p;
	int r, idx = xs ? xseg__req_index(xs, req) : -EINVAL;

	if (idx < 0)
		return -EINVAL;
	if (!held_by_us(xs, req, &p) || xseg__life(req) != XS_ACCEPTED)
		return -EPERM;
	r = xseg__holds_get2(xs, p, &hr, &hc);
	if (r)
		return r;
	if (xs->local[p].service_timing)
		req->ts_respond = xseg_sys_stamp_ns();
	served = req->serviced;		/* before delivery: then it is the client's */
	xq_hold_take(&xs->track, hr, (uint32_t)idx);
	r = xseg__deliver(xs, (uint32_t)idx, hr, hc);
	xseg__holds_put2(xs, p, hr, hc);
	xseg__count(&xs->ports[p].cnt.responded);
	xa_add_rlx64(&xs->ports[p].bytes_responded, served);
	return r < 0 ? 0 : r;	/* a vanished client is not the server's error */
}

int xseg_fail(struct xseg *xs, struct xseg_request *req, int error)
{
	uint32_t p;

	if (!xs || xseg__req_index(xs, req) < 0)
		return -EINVAL;
	if (!held_by_us(xs, req, &p))
		return -EPERM;
	req->error = error > 0 ? error : EIO;
	xseg__req_fail(req);
	return xseg_respond(xs, req);
}

int xseg_forward(struct xseg *xs, struct xseg_request *req, uint32_t via, uint32_t dst)
{
	struct xq_hold *hold;
	uint32_t p, n;
	int r, idx = xs ? xseg__req_index(xs, req) : -EINVAL;

	if (idx < 0 || dst >= xs->nr_ports)
		return -EINVAL;
	if (!held_by_us(xs, req, &p) || p != via || xseg__life(req) != XS_ACCEPTED)
		return -EPERM;
	n = req->path_len;
	if (n >= xs->max_hops)		/* the segment's max_hops= (at most XSEG_PATH_MAX) */
		return -ENOSPC;
	r = xseg__hold_get(xs, p, &hold);
	if (r)
		return r;
	req->path[n] = XSEG_HOLDER(via, xs->local[via].gen);
	xa_store_rel32(&req->path_len, n + 1);
	r = queue_to(xs, (uint32_t)idx, dst, hold, XSEG_HOLDER(p, xs->local[p].gen), XS_ACCEPTED, false, p);
	if (r < 0)
		req->path_len = n;
	xseg__hold_put(xs, p, hold);
	return r;
}

int xseg_pass(struct xseg *xs, struct xseg_request *req, uint32_t via, uint32_t dst)
{
	struct xq_hold *hold;
	uint32_t p;
	int r, idx = xs ? xseg__req_index(xs, req) : -EINVAL;

	if (idx < 0 || dst >= xs->nr_ports)
		return -EINVAL;
	if (!held_by_us(xs, req, &p) || p != via || xseg__life(req) != XS_ACCEPTED)
		return -EPERM;
	r = xseg__hold_get(xs, p, &hold);
	if (r)
		return r;
	/* The path stays as it is: @dst's reply pops the hop before us, or goes to the client. */
	r = queue_to(xs, (uint32_t)idx, dst, hold, XSEG_HOLDER(p, xs->local[p].gen), XS_ACCEPTED, false, p);
	xseg__hold_put(xs, p, hold);
	if (r >= 0)	/* done with it, as after a respond: accepted - responded stays what is in hand */
		xseg__count(&xs->ports[p].cnt.responded);
	return r;
}

struct xseg_request *xseg_receive(struct xseg *xs, uint32_t portno)
{
	struct xseg_request *req;
	struct xq_hold *hr, *hc;
	uint32_t r, tries, gen;

	if (!xs || !xseg__owned(xs, portno)) {
		xseg_sys_set_errno(EPERM);
		return NULL;
	}
	if (xseg__holds_get2(xs, portno, &hr, &hc)) {
		xseg_sys_set_errno(EAGAIN);
		return NULL;
	}
	gen = xs->local[portno].gen;
	for (tries = 0; tries < xs->queue_cap; tries++) {
		r = xseg__dequeue_life(xs, &xs->local[portno].pq, xseg__qid_pq(portno), hr, XS_RESPONDED);
		if (r == XQ_NONE)
			break;
		req = &xs->reqs[r];
		if (xseg__holder(req) != XSEG_HOLDER(portno, gen)) {
			/* Addressed to an earlier owner of this port: recycle it. */
			xseg__free_request(xs, r, hr, hc);
			xseg__count(&xs->ports[portno].cnt.reclaimed);
			continue;
		}
		if (req->src_port == portno && req->src_gen == gen) {
			uint64_t ts = req->ts_submit;

			if (ts && xs->local[portno].timing) {
				/* Stamps of two threads may be tens of ns apart: never below 0. */
				uint64_t now = xseg_sys_stamp_ns(), us = now > ts ? (now - ts) / 1000 : 0;
				uint32_t b = us ? 63u - (uint32_t)__builtin_clzll(us) : 0;

				if (b >= XSEG_LAT_BUCKETS)
					b = XSEG_LAT_BUCKETS - 1;
				xseg__count(&xs->ports[portno].lat[b]);
			}
			xseg__count(&xs->ports[portno].cnt.received);
			xa_add_rlx64(&xs->ports[portno].bytes_received, req->serviced);
			if (req->state & XS_FAILED)
				xseg__count(&xs->ports[portno].cnt.failed);
			xseg__set_life(req, XS_RECEIVED);
		} else {
			/* A reply coming back through us, a forwarding hop: ours to respond on. */
			xseg__set_life(req, XS_ACCEPTED);
		}
		xseg__set_holder(req, XSEG_HOLDER(portno, gen));
		xq_hold_drop(hr);
		xseg__holds_put2(xs, portno, hr, hc);
		return req;
	}
	xseg__holds_put2(xs, portno, hr, hc);
	xseg_sys_set_errno(EAGAIN);
	return NULL;
}

int xseg_put_request(struct xseg *xs, struct xseg_request *req)
{
	struct xq_hold *hr, *hc;
	uint32_t p, life;
	int r, idx = xs ? xseg__req_index(xs, req) : -EINVAL;

	if (idx < 0)
		return -EINVAL;
	if (!held_by_us(xs, req, &p))
		return -EPERM;
	life = xseg__life(req);
	if (life != XS_PREPARED && life != XS_RECEIVED)
		return -EPERM;
	r = xseg__holds_get2(xs, p, &hr, &hc);
	if (r)
		return r;
	xseg__free_request(xs, (uint32_t)idx, hr, hc);
	xseg__holds_put2(xs, p, hr, hc);
	return 0;
}
