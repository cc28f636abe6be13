/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/vlmcd.c - the volume composer: block requests on a named volume
 * become object requests at the storage peer, through the map mapperd keeps
 * (DESIGN.md §10, peers/user/volume.h, docs/volumes.md).
 *
 *   vlmcd -g SPEC -p PORT --mapper PORT --storage PORT [--cache SIZE]
 *
 * Everything runs on one dispatch thread with the framework's client side
 * (peer_submit/peer_forward): nothing blocks, nothing is locked, and the
 * only state is a cache of what mapperd and the storage peer hold, so a
 * vlmcd killed at any instruction is replaced by a new one that continues
 * (it opens the volume again; mapperd breaks the dead vlmcd's lock).
 *
 * A block request goes through these gates, each of which may park it on
 * its volume's wait list until what it waits for arrives (then every parked
 * request of the volume runs again from the top; every gate is idempotent):
 *   open    the volume is open here for this client (implicit OPEN at mapperd)
 *   quiesce writes do not start while a SNAPSHOT/UPDATE/CLOSE waits
 *   map     the map entries of the objects it touches are cached (MAPR)
 *   mapw    a write's objects are writable (one MAPW per object at a time)
 *   flush   XF_FLUSH: a FLUSH of the whole store first
 *   I/O     one object: the client's request itself goes to the storage
 *           peer, rewritten (no copy); READ and WRITE are passed (the storage
 *           peer answers the client; a quiescing op finds passed writes still
 *           out by scanning the request table); several: a request per object
 *           with the data copied; holes read as zeroes without asking storage.
 * At start, before serving, it waits until the requests a dead vlmcd on its
 * port sent are settled (vlmcd-fence.h).
 */
#include "xseg/xseg_extents.h"
#include "vlmcd-state.h"
#include "vlmcd-sub.h"
#include "vlmcd-readers.h"
#include "vlmcd-gates.h"
#include "vlmcd-fence.h"

/* ------------------------------------------------------------- I/O */

/* Put back what the client sent (after a forward in place). */
static void restore(struct op *o)
{
	struct xseg_request *req = o->req;

	memcpy(req->target, o->target, o->tlen);
	req->target_len = o->tlen;
	req->offset = o->offset;
	req->size = o->size;
	req->flags = o->flags;
}

/* Send the client's request itself to @dst as @opc on @target at @off, @len bytes. */
static void forward(struct op *o, uint32_t dst, const char *target, uint32_t tlen, uint64_t off, uint64_t len,
		    uint32_t flags)
{
	struct sub *s = sub_new(S_FWD, o, o->v, dst);
	struct xseg_request *req = o->req;

	if (!s) {
		o->err = ENOMEM;
		return;
	}
	memcpy(req->target, target, tlen);
	req->target_len = tlen;
	req->offset = off;
	req->size = len;
	req->flags = flags;
	st.forwarded++;
	sub_go(s);
}

static int no_pass;		/* --no-pass */
static uint64_t passed_reads;	/* one-object READs passed (INFO .stats: passed) */

/*
 * Readdress @o's request to object @name at @off with @flags and make the
 * sub-request that passes it: 0 with *@sp set (NULL: out of memory, @o
 * failed with ENOMEM), or -ENOTSUP (--no-pass) / xseg_readdress's error,
 * and the caller forwards instead.
 */
static int pass_prep(struct op *o, const char *name, uint32_t nlen, uint64_t off, uint32_t flags, struct sub **sp)
{
	int r;

	*sp = NULL;
	if (no_pass)
		return -ENOTSUP;
	restore(o);	/* what is kept is what the client sent */
	r = xseg_readdress(P.xs, o->req, name, nlen, off, flags);
	if (r)
		return r;
	*sp = sub_new(S_FWD, o, o->v, storage);
	if (!*sp) {
		restore(o);
		o->err = ENOMEM;
		return 0;
	}
	(*sp)->pass = 1;
	return 0;
}

/*
 * A READ inside one object: the client's request goes to the storage peer
 * readdressed to the object (the client's target, offset and flags kept in
 * it, put back by the core on the way to the client) with XF_ZEROFILL for
 * a short object's tail, and passed: the storage peer answers the client,
 * and vlmcd is not woken for the reply. 0; -ENOTSUP with --no-pass, or
 * -ENOSPC when both names do not fit in the request (then the caller
 * forwards it instead).
 */
static int pass_read(struct op *o, const char *name, uint32_t nlen, uint64_t off)
{
	struct sub *s;
	int r = pass_prep(o, name, nlen, off, XF_ZEROFILL, &s);

	if (r || !s)
		return r;
	passed_reads++;
	sub_go(s);
	return 0;
}

/*
 * A WRITE inside one object of the volume's own, passed like a read: the
 * storage peer answers the client, and vlmcd is not woken for the reply.
 * vlmcd cannot count it in flight by its reply, so a quiescing op (a
 * SNAPSHOT must not miss or be overtaken by it) finds it by scanning the
 * request table instead (quiesce_next, passed_writes_out). 0; -ENOTSUP
 * with --no-pass, -ENOSPC when both names do not fit (the caller forwards).
 */
static uint64_t passed_writes;	/* one-object WRITEs passed (INFO .stats: passed_writes) */

static int pass_write(struct op *o, const char *name, uint32_t nlen, uint64_t off, uint64_t owner)
{
	struct vol *v = o->v;
	struct sub *s;
	uint32_t k;
	int r = pass_prep(o, name, nlen, off, o->flags & XF_FUA, &s);

	if (r || !s)
		return r;
	/* Before the op ends: its quiescer scans for writes to objects of these data ids. */
	for (k = 0; k < v->npw_owner && v->pw_owner[k] != owner; k++)
		;
	if (k == v->npw_owner) {
		if (k < sizeof(v->pw_owner) / sizeof(v->pw_owner[0]))
			v->pw_owner[v->npw_owner++] = owner;
		else
			v->pw_all = 1;
	}
	passed_writes++;
	sub_go(s);
	return 0;
}

static void fwd_done(struct op *o, struct xseg_request *req, int err)
{
	uint64_t n = o->req->serviced, cap = 0;
	uint8_t *d = xseg_req_buffer(P.xs, o->req, &cap);

	(void)req;
	if (!err && o->opc == X_READ && o->v && d) {
		uint64_t len = o->req->size;	/* still the object's piece */

		if (n < len && len <= cap)
			memset(d + n, 0, len - n);	/* past the object's end: zeroes */
	}
	o->serviced = n;
	if (err && o->req->serviced)
		take_msg(o, o->req);
	restore(o);
	op_piece_done(o, err);
}

static struct sub *obj_sub(struct op *o, int kind, uint32_t opc, uint64_t idx, const struct xv_map_entry *e,
			   uint64_t off, uint64_t len, uint64_t boff)
{
	struct sub *s = sub_new(kind, o, o->v, storage);

	if (!s) {
		o->err = ENOMEM;
		return NULL;
	}
	s->tlen = (uint32_t)xv_data_name(s->target, sizeof(s->target), e->owner, idx);
	s->opc = opc;
	s->flags = o->flags & XF_FUA;
	s->offset = off;
	s->size = len;
	s->boff = boff;
	s->datalen = kind == S_OTHER ? 0 : len;
	return s;
}

static void issue_io(struct op *o)
{
	struct vol *v = o->v;
	uint64_t a, b, cap = 0;
	uint8_t *buf = xseg_req_buffer(P.xs, o->req, &cap);
	char name[64];

	obj_range(v, o->offset, o->size, &a, &b);
	o->issued = 0;
	o->left++;		/* the issuing itself: pieces that end at once do not finish the op */
	for (uint64_t i = a; i < b && !o->err; i++) {
		uint64_t os = i * v->object_size, oe = os + v->object_size;
		uint64_t s0 = o->offset > os ? o->offset : os, s1 = o->offset + o->size < oe ? o->offset + o->size : oe;
		const struct xv_map_entry *e = needs_entry(o, i) ? map_entry(v, i) : NULL;
		struct sub *s;

		if (o->opc == X_READ) {
			if (e->flags & XV_E_HOLE) {
				memset(buf + (s0 - o->offset), 0, s1 - s0);	/* storage is not asked */
				st.hole_reads++;
				continue;
			}
			st.storage_reads++;
			if (b - a == 1) {
				uint32_t nlen = (uint32_t)xv_data_name(name, sizeof(name), e->owner, i);

				if (pass_read(o, name, nlen, s0 - os))
					forward(o, storage, name, nlen, s0 - os, s1 - s0, 0);
				continue;
			}
			st.copied++;
			if ((s = obj_sub(o, S_READ, X_READ, i, e, s0 - os, s1 - s0, s0 - o->offset)))
				sub_go(s);
		} else if (o->opc == X_WRITE) {
			st.storage_writes++;
			if (b - a == 1) {
				uint32_t nlen = (uint32_t)xv_data_name(name, sizeof(name), e->owner, i);

				if (pass_write(o, name, nlen, s0 - os, e->owner))
					forward(o, storage, name, nlen, s0 - os, s1 - s0, o->flags & XF_FUA);
				continue;
			}
			st.copied++;
			if ((s = obj_sub(o, S_WRITE, X_WRITE, i, e, s0 - os, s1 - s0, s0 - o->offset)))
				sub_go(s);
		} else if (!e) {
			/* Whole objects: one DISCARD at mapperd per run of them, at most a chunk long. */
			uint64_t j = i;

			while (j + 1 < b && !needs_entry(o, j + 1) && j + 1 - i < CHUNK)
				j++;
			s = sub_new(S_DISCARD, o, v, mapper);
			if (!s) {
				o->err = ENOMEM;
				break;
			}
			memcpy(s->target, v->name, v->nlen);
			s->tlen = v->nlen;
			s->opc = X_DISCARD;
			s->index = i;
			s->offset = i * v->object_size;
			s->size = (j + 1 - i) * v->object_size;
			s->datalen = sizeof(struct xv_map_reply) + (j + 1 - i) * sizeof(struct xv_map_entry);
			if (s->datalen < 4096)
				s->datalen = 4096;
			sub_go(s);
			i = j;
		} else if (!(e->flags & XV_E_HOLE)) {
			/* A partial object of ours: zeroed at the storage peer. */
			if ((s = obj_sub(o, S_OTHER, o->opc, i, e, s0 - os, s1 - s0, 0)))
				sub_go(s);
		}
	}
	o->issued = 1;
	op_piece_done(o, 0);
}

/* ------------------------------------------------------ ops and replies */

static void quiesce_next(struct vol *v);

static void op_finish(struct op *o)
{
	struct xseg_request *req = o->req;
	struct vol *v = o->v;
	int err = o->err;

	if (o->parked)
		l_del(&o->link);
	if (o->passed) {
		/* The storage peer answers it: only our side of the op ends here. */
	} else if (err) {
		uint64_t cap = 0, n = strlen(o->msg);
		char *d = xseg_req_buffer(P.xs, req, &cap);

		if (n && d && cap) {
			n = n < cap ? n : cap;
			memcpy(d, o->msg, n);
		} else {
			n = 0;
		}
		req->serviced = n;
	} else if (o->opc == X_READ || o->opc == X_WRITE || o->opc == X_DISCARD || o->opc == X_WRITE_ZEROES) {
		req->serviced = o->size;
	} else {
		req->serviced = o->serviced;
	}
	if (!o->passed)
		peer_complete(&P, req, err);
	if (v) {
		if (o->gated && --v->writes == 0)
			quiesce_next(v);
		if (o->quiescer) {
			v->busy = 0;
			if (!err && (o->opc == X_SNAPSHOT || o->opc == X_UPDATE))
				cache_drop(v);	/* every entry may have changed: fetched again on use */
			/* A new data id or size (or, failed, maybe): an OPEN asks mapperd again first. */
			if (o->opc == X_SNAPSHOT || o->opc == X_UPDATE)
				v->stale = 1;
			if (!err && o->opc == X_DELETE) {
				v->state = V_CLOSED;
				cache_drop(v);
			}
			quiesce_next(v);
		}
		v->ops--;
		op_put(o);
		vol_kick(v);
		return;
	}
	op_put(o);
}

/* Mark @v as waiting (@on) or not for passed writes; retry_pending asks again for those that do. */
static void pwait_set(struct vol *v, int on)
{
	if (v->pwait != on) {
		v->pwait = on;
		if (on)
			pwaiting++;
		else
			pwaiting--;
	}
}

/* Start the next op waiting for @v to be quiet, once no write is in flight. */
static void quiesce_next(struct vol *v)
{
	struct op *o;

	if (v->busy || v->writes || v->refreshing || l_empty(&v->quiesce)) {
		/* Asked again when that ends (op_finish), or nothing waits: not by retry_pending. */
		pwait_set(v, 0);
		return;
	}
	if (v->npw_owner || v->pw_all) {
		/* Passed writes end at the client, unseen: wait until none is out (asked again each round). */
		if (passed_writes_out(v)) {
			pwait_set(v, 1);
			return;
		}
		v->npw_owner = 0;
		v->pw_all = 0;
	}
	pwait_set(v, 0);
	o = l_entry(v->quiesce.next, struct op, link);
	l_del(&o->link);
	o->parked = 0;
	v->busy = 1;
	o->quiescer = 1;	/* finishing it ends the quiet */
	o->issued = 1;
	if (o->opc == X_CLOSE || (o->opc == X_DELETE && v->state == V_OPEN)) {
		send_close(v, o);	/* DELETE: forwarded by close_done once closed */
		return;
	}
	forward(o, mapper, o->target, o->tlen, o->offset, o->size, o->flags);
}

static int fail_msg(struct xseg_request *req, int err, const char *fmt, const char *a)
{
	uint64_t cap = 0;
	char *d = xseg_req_buffer(P.xs, req, &cap);
	int n = 0;

	if (d && cap) {
		n = snprintf(d, cap, fmt, a);
		n = n < 0 ? 0 : (uint64_t)n < cap ? n : (int)cap - 1;
	}
	req->serviced = (uint64_t)n;
	return err;
}

#define MAPR_OBJECTS 1024u

/*
 * MAPR from a client: the allocation of [offset, offset+size) of the volume
 * from its map entries (their gate fetched them), as extents
 * (xseg/xseg_extents.h): a hole object (XV_E_HOLE, never written or
 * discarded) reads as zeroes and is not allocated; every other one is data,
 * whichever volume owns it (a clone's objects still shared with its parent
 * are data too). Neighbours of the same kind are one extent; as many as the
 * buffer holds.
 */
static void map_answer(struct op *o)
{
	struct vol *v = o->v;
	uint64_t cap = 0, a, b, pos = o->offset, max;
	uint8_t *d = xseg_req_buffer(P.xs, o->req, &cap);
	uint64_t dl = __atomic_load_n(&o->req->data_len, __ATOMIC_RELAXED);
	uint64_t run = 0;
	uint32_t n = 0, runfl = 0;

	if (cap > dl)
		cap = dl;
	max = d ? cap / XSEG_EXTENT_SIZE : 0;
	if (!max) {
		o->err = EINVAL;
		set_msg(o, "%s: no room for one extent in the data buffer", "mapr");
		return;
	}
	obj_range(v, o->offset, o->size, &a, &b);
	for (uint64_t i = a; i < b; i++) {
		const struct xv_map_entry *e = map_entry(v, i);
		uint64_t oe = (i + 1) * v->object_size, end = o->offset + o->size;
		uint64_t len = (oe < end ? oe : end) - pos;
		uint32_t fl = !e || (e->flags & XV_E_HOLE) ? XSEG_EXTENT_HOLE | XSEG_EXTENT_ZERO : 0;

		if (!e)
			break;	/* evicted meanwhile: answer what is known */
		if (run && fl != runfl) {
			xseg_extent_put(d, n++, run, runfl);
			run = 0;
			if (n == max)
				break;
		}
		runfl = fl;
		run += len;
		pos += len;
	}
	if (run && n < max)
		xseg_extent_put(d, n++, run, runfl);
	if (!n) {
		o->err = EAGAIN;
		set_msg(o, "%s: the map entries went out of the cache; ask again", "mapr");
		return;
	}
	o->serviced = (uint64_t)n * XSEG_EXTENT_SIZE;
}

/*
 * A SNAPSHOT or UPDATE went through since mapperd's OPEN reply (v->stale):
 * 1 if @o may go on, else 0: @o is parked until mapperd has been asked for
 * the data id and size again (a failed ask fails it, refresh_done), or
 * failed now (o->err; the caller finishes it). An OPEN's reply and a range
 * past the size @v had need them; the rest does not (its map is fetched
 * again).
 */
static int refreshed(struct op *o)
{
	struct vol *v = o->v;

	o->wrefresh = 0;
	if (!v->stale)
		return 1;
	/* (while a quiescing op is at mapperd: asked once it ends, op_finish's kick) */
	if (!v->refreshing && !v->busy && (o->err = send_refresh(v)))
		return 0;
	o->wrefresh = 1;
	park(o);
	return 0;
}

static void op_run(struct op *o)
{
	struct vol *v = o->v;

	if (o->err) {
		if (!o->left)
			op_finish(o);
		return;
	}
	switch (o->opc) {
	case X_OPEN:
		if (!gate_open(o) || (v->snap && !gate_pin(o)))
			break;
		if (!refreshed(o))
			break;
		{
			uint64_t cap = 0;
			struct xv_open_reply *r = xseg_req_buffer(P.xs, o->req, &cap);

			if (r && cap >= sizeof(*r)) {
				memset(r, 0, sizeof(*r));
				r->magic = XV_OPEN_MAGIC;
				r->size = v->size;
				r->id = v->id;
				r->data_id = v->ro ? 0 : v->data_id;
				r->object_size = v->object_size;
				r->flags = v->ro ? XV_OPEN_RO : 0;
				o->serviced = sizeof(*r);
			}
		}
		op_finish(o);
		return;
	case X_INFO:
		if (!gate_open(o))
			break;
		if (!map_entry(v, 0) && v->size) {
			fetch(v, 0, o->port);	/* the size comes with it, fresh after an UPDATE */
			park(o);
			return;
		}
		{
			uint8_t *d = xseg_req_data(P.xs, o->req);

			for (int i = 0; i < 8; i++)
				d[i] = (uint8_t)(v->size >> (8 * i));
			o->serviced = 8;
		}
		op_finish(o);
		return;
	default:
		break;
	}
	if (o->err || o->parked)
		goto out;
	/* Quiesce first: a write waiting for the open must not slip past a snapshot. */
	if (o->issued || (write_like(o->opc) && !gate_quiesce(o)) || !gate_open(o))
		goto out;
	if (write_like(o->opc) && v->ro) {
		o->err = EROFS;
		set_msg(o, "%.150s is read-only", v->name);
		goto out;
	}
	if ((o->offset > v->size || o->size > v->size - o->offset) && v->stale && !refreshed(o))
		goto out;
	if (o->offset > v->size || o->size > v->size - o->offset) {
		o->err = ENOSPC;
		set_msg(o, "beyond the end of %.150s", v->name);
		goto out;
	}
	if (!o->size) {
		op_finish(o);
		return;
	}
	if (o->opc == X_MAPR) {
		/* At most MAPR_OBJECTS objects per request: their entries are fetched, then answered. */
		uint64_t first = o->offset / v->object_size, end = (first + MAPR_OBJECTS) * v->object_size;

		if (o->offset + o->size > end)
			o->size = end - o->offset;
		if (!gate_map(o))
			goto out;
		map_answer(o);
		op_finish(o);
		return;
	}
	if (!gate_map(o))
		goto out;
	if (write_like(o->opc) && !gate_mapw(o))
		goto out;
	if ((o->flags & XF_FLUSH) && !o->flushed) {
		struct sub *s = sub_new(S_FLUSH, o, v, storage);

		o->flushed = 1;		/* one flush, before the rest */
		if (s) {
			s->opc = X_FLUSH;
			o->issued = 0;
			sub_go(s);
			park(o);
		}
		goto out;
	}
	issue_io(o);
	return;
out:
	if (o->err && !o->left)
		op_finish(o);
}

static void stats_text(struct xseg_request *req)
{
	uint64_t cap = 0, npending = 0, parked = 0, mapws = 0, opsn = 0;
	char *d = xseg_req_buffer(P.xs, req, &cap);
	int n, m;

	if (!d)
		return;
	for (struct link *l = pending.next; l != &pending; l = l->next)
		npending++;
	for (uint32_t b = 0; b < 1024; b++)
		for (struct vol *v = vols[b]; v; v = v->hnext) {
			for (struct link *l = v->waiters.next; l != &v->waiters; l = l->next)
				parked++;
			mapws += v->nmapw;
			opsn += v->ops;
		}
	n = snprintf(d, cap,
		     "ops=%" PRIu64 "\nforwarded=%" PRIu64 "\ncopied=%" PRIu64 "\nhole_reads=%" PRIu64
		     "\nstorage_reads=%" PRIu64 "\nstorage_writes=%" PRIu64 "\nmapr=%" PRIu64 "\nmapw=%" PRIu64
		     "\ndiscards=%" PRIu64 "\nopens=%" PRIu64 "\ncloses=%" PRIu64 "\nmgmt=%" PRIu64
		     "\ncache_chunks=%" PRIu64 "\ncache_bytes=%" PRIu64 "\nevicted=%" PRIu64 "\nwaited=%" PRIu64 "\n",
		     st.ops, st.forwarded, st.copied, st.hole_reads, st.storage_reads, st.storage_writes, st.mapr,
		     st.mapw, st.discards, st.opens, st.closes, st.mgmt, nchunks, nchunks * sizeof(struct chunk),
		     st.evicted, st.waited);
	if (n < 0 || (uint64_t)n >= cap)
		n = 0;
	/* The start fence's counters (vlmcd-fence.h). */
	m = snprintf(d + n, cap - (uint64_t)n, "fenced=%" PRIu64 "\nfence_timeouts=%" PRIu64 "\n", fenced,
		     fence_timeouts);
	n += m < 0 || (uint64_t)m >= cap - (uint64_t)n ? 0 : m;
	/* What is in flight now: requests waiting for a free one, ops parked, MAPWs, op references. */
	m = snprintf(d + n, cap - (uint64_t)n,
		     "pending=%" PRIu64 "\nparked=%" PRIu64 "\nmapw_inflight=%" PRIu64 "\nvolume_refs=%" PRIu64
		     "\noutstanding=%" PRIu64 "\nsubs_out=%u\nsubs_max=%u\n", npending, parked, mapws, opsn,
		     __atomic_load_n(&P.outstanding, __ATOMIC_RELAXED), subs_out, subs_max);
	n += m < 0 ? 0 : m;
	if ((uint64_t)n < cap) {
		m = snprintf(d + n, cap - (uint64_t)n, "passed=%" PRIu64 "\npassed_writes=%" PRIu64 "\n", passed_reads,
			     passed_writes);
		n += m < 0 ? 0 : m;
	}
	req->serviced = (uint64_t)n < cap ? (uint64_t)n : cap;
}

/* OPEN/CLOSE data: "owner=TAG\n" and (OPEN) "ro=1\n". 0 or EINVAL (message set). */
static int parse_open(struct op *o, struct xseg_request *req)
{
	uint64_t cap = 0, n = req->size;
	const char *d = xseg_req_buffer(P.xs, req, &cap);
	char text[512], *line, *save = NULL;

	if (!n)
		return 0;
	if (!d || n > cap || n >= sizeof(text))
		return fail_msg(req, EINVAL, "%s: the data is not key=value lines", "open");
	memcpy(text, d, n);
	text[n] = 0;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "owner=", 6) && strlen(line + 6) && strlen(line + 6) < TAG_MAX - 64)
			snprintf(o->ctag, sizeof(o->ctag), "%s", line + 6);
		else if (!strcmp(line, "ro=1") && o->opc == X_OPEN)
			o->ro = 1;
		else if (!strcmp(line, "ro=0") && o->opc == X_OPEN)
			o->ro = 0;
		else
			return fail_msg(req, EINVAL, "unknown or bad key: %.100s", line);
	}
	return 0;
}

static int serve(struct peer *p, uint32_t portno, struct xseg_request *req)
{
	uint32_t opc = req->op, tlen = req->target_len;
	char vname[XV_NAME_MAX + 1], sname[XV_NAME_MAX + 1];
	uint64_t cap = 0;
	struct op *o;
	int mgmt, r;

	(void)p;
	st.ops++;
	xseg_req_buffer(P.xs, req, &cap);
	if (tlen > XSEG_TARGET_MAX)
		return EINVAL;
	if (opc == X_PING)
		return 0;
	o = op_alloc();
	if (!o)
		return ENOMEM;
	l_init(&o->link);
	o->req = req;
	o->port = portno;
	o->opc = opc;
	o->flags = req->flags;
	o->offset = req->offset;
	o->size = req->size;
	o->cport = req->src_port;
	o->cgen = req->src_gen;
	memcpy(o->target, req->target, tlen);
	o->tlen = tlen;
	if (opc == X_FLUSH || opc == X_SYNC) {
		/* The whole store: every object of every volume. */
		o->issued = 1;
		forward(o, storage, "", 0, 0, 0, 0);
		return PEER_ASYNC;
	}
	if (tlen && o->target[0] == '.') {
		if (tlen == strlen(XV_T_STATS) && !memcmp(o->target, XV_T_STATS, tlen) && opc == X_INFO) {
			op_put(o);
			stats_text(req);
			return 0;
		}
		if (opc != X_INFO && opc != X_DELETE) {
			op_put(o);
			return fail_msg(req, EINVAL, "%s: only INFO and DELETE go to reserved targets",
					xseg_op_name(opc));
		}
		st.mgmt++;
		o->issued = 1;
		forward(o, mapper, o->target, tlen, o->offset, o->size, o->flags);
		return PEER_ASYNC;
	}
	if (xv_split_target(o->target, tlen, vname, sname)) {
		op_put(o);
		return fail_msg(req, EINVAL, "'%.100s' is not a volume or NAME@SNAPSHOT", tlen ? req->target : "");
	}
	mgmt = opc == X_CREATE || opc == X_SNAPSHOT || opc == X_CLONE || opc == X_UPDATE || opc == X_DELETE ||
	       (opc == X_INFO && req->size != 8);
	if (!mgmt && opc != X_READ && opc != X_WRITE && opc != X_DISCARD && opc != X_WRITE_ZEROES &&
	    opc != X_INFO && opc != X_OPEN && opc != X_CLOSE && opc != X_MAPR) {
		op_put(o);
		peer_log(&P, 2, "%s: not supported", xseg_op_name(opc));
		return EOPNOTSUPP;
	}
	if ((opc == X_READ || opc == X_WRITE) && (req->size > cap)) {
		op_put(o);
		return fail_msg(req, EINVAL, "%s: the size is larger than the data buffer", xseg_op_name(opc));
	}
	if (opc == X_INFO && !mgmt && cap < 8) {
		op_put(o);
		return EINVAL;
	}
	if (write_like(opc) && sname[0]) {
		char full[2 * XV_NAME_MAX + 2];

		op_put(o);
		snprintf(full, sizeof(full), "%s@%s", vname, sname);
		return fail_msg(req, EROFS, "%.200s is a snapshot: read-only", full);
	}
	if ((opc == X_OPEN || opc == X_CLOSE) && (r = parse_open(o, req))) {
		op_put(o);
		return r;
	}
	o->v = vol_get(o->target, tlen, 1);
	if (!o->v) {
		op_put(o);
		return ENOMEM;
	}
	o->v->ops++;
	if (mgmt && opc == X_DELETE && o->v->snap) {
		char who[MSG_MAX];

		if (readers_live(o->v, who, sizeof(who))) {
			struct vol *v = o->v;

			snprintf(o->msg, sizeof(o->msg), "%.*s is open by %.*s", (int)v->nlen, v->name, 120, who);
			r = fail_msg(req, EBUSY, "%s", o->msg);
			v->ops--;
			free(o);
			vol_put(v);
			return r;
		}
	}
	if (mgmt) {
		st.mgmt++;
		if ((opc == X_SNAPSHOT || opc == X_UPDATE || opc == X_DELETE) &&
		    (!o->v->snap || o->v->state != V_CLOSED)) {
			/* Quiet it first (writes drained, new ones held), then forward, then refetch. */
			o->parked = 1;
			l_add(&o->v->quiesce, &o->link);
			quiesce_next(o->v);
			return PEER_ASYNC;
		}
		o->issued = 1;
		forward(o, mapper, o->target, tlen, o->offset, o->size, o->flags);
		return PEER_ASYNC;
	}
	if (opc == X_CLOSE) {
		struct vol *v = o->v;

		if (v->snap) {
			/* Its pin dropped, then forgotten; the last reader closes it (vlmcd-readers.h). */
			snap_close_start(o);
			return PEER_ASYNC;
		}
		if (v->state == V_CLOSED && !v->snap && o->ctag[0]) {
			/*
			 * Not open here, but its lock may still be at mapperd under
			 * this client's tag: an earlier CLOSE failed there (the
			 * storage peer was away) and the client tries again. mapperd
			 * answers 0 when there is nothing to release.
			 */
			snprintf(v->htag, sizeof(v->htag), "%.60s:vlmcd:%.130s", ident, o->ctag);
			o->parked = 1;
			l_add(&v->quiesce, &o->link);
			quiesce_next(v);
			return PEER_ASYNC;
		}
		if (v->state == V_CLOSED || v->snap) {
			v->ops--;
			op_put(o);
			vol_put(v);
			return 0;
		}
		if (!same_client(v, o)) {
			r = fail_msg(req, EPERM, "%.200s is open by another owner", v->name);
			v->ops--;
			op_put(o);
			return r;
		}
		o->parked = 1;
		l_add(&v->quiesce, &o->link);
		quiesce_next(v);
		return PEER_ASYNC;
	}
	op_run(o);
	return PEER_ASYNC;
}

static int own(struct peer *p, int opt, const char *arg)
{
	uint64_t v;
	char *end;

	(void)p;
	switch (opt) {
	case 'F':
		v = strtoul(arg, &end, 10);
		if (*end || end == arg || v > 3600) {
			fprintf(stderr, "vlmcd: --fence-timeout: '%s' is not a number of seconds (0..3600)\n", arg);
			return -1;
		}
		fence_ms = (uint32_t)v * 1000;
		return 0;
	case 'M':
	case 'S':
		v = strtoul(arg, &end, 10);
		if (*end || end == arg || v >= 1u << 30) {
			fprintf(stderr, "vlmcd: --%s: '%s' is not a port\n", opt == 'M' ? "mapper" : "storage", arg);
			return -1;
		}
		*(opt == 'M' ? &mapper : &storage) = (uint32_t)v;
		return 0;
	case 'n':
		no_pass = 1;
		return 0;
	case 'c':
		if (st_parse_size(arg, &v) || v < (1u << 20)) {
			fprintf(stderr, "vlmcd: --cache: '%s' is not a size of at least 1M\n", arg);
			return -1;
		}
		cache_max = v;
		return 0;
	}
	return -1;
}

/* HOST:PID:STARTTIME, the prefix of every owner tag vlmcd gives mapperd. */
static void make_ident(void)
{
	char host[64] = "localhost", buf[1024], *s;
	unsigned long long start = 0;
	FILE *f = fopen("/proc/self/stat", "r");

	gethostname(host, sizeof(host) - 1);
	if (f) {
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);

		buf[n] = 0;
		fclose(f);
		s = strrchr(buf, ')');
		/* Field 22 (starttime); s points at field 2's end, so 20 fields on. */
		for (int i = 0; s && i < 20; i++)
			s = strchr(s + 1, ' ');
		if (s)
			start = strtoull(s + 1, NULL, 10);
	}
	snprintf(ident, sizeof(ident), "%s:%d:%llu", host, (int)getpid(), start);
	snprintf(pin_host, sizeof(pin_host), "%s", host);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "fence-timeout", required_argument, NULL, 'F' },
		{ "mapper", required_argument, NULL, 'M' }, { "storage", required_argument, NULL, 'S' },
		{ "cache", required_argument, NULL, 'c' }, { "no-pass", no_argument, NULL, 'n' }, { 0, 0, 0, 0 },
	};
	int r;

	P.serve = serve;
	P.pending = retry_pending;
	P.required = "--mapper PORT --storage PORT";
	r = peer_parse_args(&P, argc, argv, "", lo, own,
			    "  --mapper PORT   mapperd's port (required)\n"
			    "  --fence-timeout SECS  at start, wait at most SECS (30; 0: not at all) for the\n"
			    "                  requests a dead vlmcd on the port sent to settle\n"
			    "  --storage PORT  the storage peer's port (required)\n"
			    "  --cache SIZE    map cache bound (default 32M)\n"
			    "  --no-pass       one-object READs and WRITEs come back through vlmcd too (a\n"
			    "                  storage peer without XF_ZEROFILL)");
	if (r)
		return r < 0 ? 2 : 0;
	if (mapper == XSEG_NO_PORT || storage == XSEG_NO_PORT) {
		fprintf(stderr, "vlmcd: --mapper PORT and --storage PORT are required\n");
		return 2;
	}
	if (P.threads != 1)
		peer_log(&P, 1, "-t %u: vlmcd serves all its ports on one thread", P.threads);
	P.threads = 1;
	l_init(&lru);
	l_init(&pending);
	l_init(&failed);
	make_ident();
	if (peer_start(&P))
		return 1;
	fence_wait();	/* before serving: no late piece of a dead vlmcd can land after this */
	subs_max = xseg_config(P.xs)->nr_requests / 4;
	if (subs_max < 4)
		subs_max = 4;
	r = peer_run(&P);
	peer_stop(&P);
	return r ? 1 : 0;
}
