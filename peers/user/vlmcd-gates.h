/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/vlmcd-gates.h - the gates a block request passes (open,
 * quiesce, map, mapw); each parks the op on its volume until what it waits
 * for arrives.
 *
 * Part of vlmcd.c, one translation unit split by topic (base.mk links each
 * .c of peers/user as a program, so the parts are headers); included once,
 * in order, by vlmcd.c only.
 */
#ifndef XSEG_VLMCD_GATES_H
#define XSEG_VLMCD_GATES_H

/* ------------------------------------------------------ the gates */

/* 1: open for @o's client; 0: parked (or failed, o->err set). */
static int gate_open(struct op *o)
{
	struct vol *v = o->v;

	if (o->err)
		return 0;
	switch (v->state) {
	case V_OPEN:
		if (v->snap)
			reader_note(v, o);
		if (v->snap || same_client(v, o))
			return 1;
		if (holder_alive(v)) {
			o->err = EBUSY;
			snprintf(o->msg, sizeof(o->msg), "%.60s is open by %.120s", v->name, v->htag);
			return 0;
		}
		/* Its client is gone: close the volume for it, then open it for this one. */
		peer_log(&P, 1, "%s: the client that opened it (port %u) is gone; closing it", v->name, v->hport);
		if (v->busy) {		/* a SNAPSHOT/UPDATE/CLOSE is at mapperd */
			park(o);
			return 0;
		}
		send_close(v, NULL);
		park(o);
		return 0;
	case V_CLOSED:
		send_open(v, o);
		park(o);
		return 0;
	default:
		park(o);
		return 0;
	}
}

static int write_like(uint32_t opc)
{
	return opc == X_WRITE || opc == X_DISCARD || opc == X_WRITE_ZEROES;
}

/* Writes pass only while no SNAPSHOT/UPDATE/CLOSE waits for the volume. */
static int gate_quiesce(struct op *o)
{
	struct vol *v = o->v;

	if (o->gated)
		return 1;
	if (!l_empty(&v->quiesce) || v->busy) {
		park(o);
		return 0;
	}
	o->gated = 1;
	v->writes++;
	return 1;
}

static void fetch(struct vol *v, uint64_t idx, uint32_t port)
{
	uint64_t no = idx / CHUNK, first = no * CHUNK, objects = (v->size + v->object_size - 1) / v->object_size;
	uint64_t n = objects - first < CHUNK ? objects - first : CHUNK;
	struct chunk *c = chunk_find(v, no);
	struct sub *s;

	if (c && c->fetching)
		return;
	if (c && c->epoch != v->epoch) {
		chunk_free(c);
		c = NULL;
	}
	if (!c && !(c = chunk_new(v, no)))
		return;
	s = sub_new(S_FETCH, NULL, v, mapper);
	if (!s)
		return;
	c->fetching = 1;
	v->ops++;
	s->c = c;
	s->port = port;
	s->epoch = v->epoch;
	memcpy(s->target, v->name, v->nlen);
	s->tlen = v->nlen;
	s->opc = X_MAPR;
	s->offset = first * v->object_size;
	s->size = n * v->object_size;
	if (s->offset + s->size > v->size)
		s->size = v->size - s->offset;
	s->datalen = sizeof(struct xv_map_reply) + n * sizeof(struct xv_map_entry);
	if (s->datalen < 4096)
		s->datalen = 4096;
	st.mapr++;
	sub_go(s);
}

static void fetch_done(struct sub *s, struct xseg_request *req, int err)
{
	struct vol *v = s->v;
	struct chunk *c = s->c;

	c->fetching = 0;
	if (!err && c->epoch == s->epoch && s->epoch == v->epoch &&
	    map_apply(v, xseg_req_data(P.xs, req), req->serviced)) {
		peer_log(&P, 0, "%s: MAPR reply is not a map", v->name);
		err = EIO;
	}
	if (err) {
		struct link *l;

		peer_log(&P, 1, "%s: MAPR: %s", v->name, strerror(err));
		for (l = v->waiters.next; l != &v->waiters; l = l->next) {
			struct op *o = l_entry(l, struct op, link);

			if (!o->err) {
				o->err = err;
				take_msg(o, req);
			}
		}
	}
	if (c->epoch != v->epoch)
		chunk_free(c);
	if (req)
		xseg_put_request(P.xs, req);
	sub_put(s);
	v->ops--;
	vol_kick(v);
}

/* The objects [*a, *b) that [off, off+len) touches. */
static void obj_range(const struct vol *v, uint64_t off, uint64_t len, uint64_t *a, uint64_t *b)
{
	*a = off / v->object_size;
	*b = len ? (off + len - 1) / v->object_size + 1 : *a;
}

/* Does @o need the map entry of object @i? (A discard's whole objects need none.) */
static int needs_entry(const struct op *o, uint64_t i)
{
	uint64_t os = i * o->v->object_size, oe = os + o->v->object_size;

	if (o->opc == X_READ || o->opc == X_WRITE || o->opc == X_MAPR)
		return 1;
	return !(o->offset <= os && o->offset + o->size >= oe);
}

/* 1: every entry @o needs is cached; 0: parked behind a fetch. */
static int gate_map(struct op *o)
{
	struct vol *v = o->v;
	uint64_t a, b;
	int missing = 0;

	obj_range(v, o->offset, o->size, &a, &b);
	for (uint64_t i = a; i < b; i++) {
		if (!needs_entry(o, i))
			continue;
		if (!map_entry(v, i)) {
			fetch(v, i, o->port);
			missing = 1;
		}
	}
	if (missing)
		park(o);
	return !missing;
}

static int mapw_busy(const struct vol *v, uint64_t idx)
{
	for (uint32_t i = 0; i < v->nmapw; i++)
		if (v->mapw[i] == idx)
			return 1;
	return 0;
}

static void mapw(struct vol *v, uint64_t idx, uint32_t port)
{
	struct sub *s;

	if (mapw_busy(v, idx))
		return;		/* one MAPW per object: the others wait for it */
	if (v->nmapw == 64 || !(s = sub_new(S_MAPW, NULL, v, mapper)))
		return;		/* a later kick asks */
	v->mapw[v->nmapw++] = idx;
	v->ops++;
	s->index = idx;
	s->port = port;
	memcpy(s->target, v->name, v->nlen);
	s->tlen = v->nlen;
	s->opc = X_MAPW;
	s->offset = idx * v->object_size;
	s->size = v->object_size;
	if (s->offset + s->size > v->size)
		s->size = v->size - s->offset;
	s->datalen = 4096;
	st.mapw++;
	sub_go(s);
}

static void mapw_done(struct sub *s, struct xseg_request *req, int err)
{
	struct vol *v = s->v;
	const struct xv_map_entry *e;

	for (uint32_t i = 0; i < v->nmapw; i++)
		if (v->mapw[i] == s->index) {
			v->mapw[i] = v->mapw[--v->nmapw];
			break;
		}
	if (!err && map_apply(v, xseg_req_data(P.xs, req), req->serviced))
		err = EIO;
	e = err ? NULL : map_entry(v, s->index);
	if (!err && e && !(e->flags & XV_E_WRITABLE)) {
		peer_log(&P, 0, "%s: object %" PRIu64 " still not writable after MAPW", v->name, s->index);
		err = EIO;
	}
	if (err) {
		struct link *l;
		uint64_t a, b;

		for (l = v->waiters.next; l != &v->waiters; l = l->next) {
			struct op *o = l_entry(l, struct op, link);

			obj_range(v, o->offset, o->size, &a, &b);
			if (!o->err && write_like(o->opc) && s->index >= a && s->index < b) {
				o->err = err;
				take_msg(o, req);
			}
		}
	}
	if (req)
		xseg_put_request(P.xs, req);
	sub_put(s);
	v->ops--;
	vol_kick(v);
}

/* Do the objects @o writes to exist and belong to the volume? (Discards: only the partial ones.) */
static int gate_mapw(struct op *o)
{
	struct vol *v = o->v;
	uint64_t a, b;
	int wait = 0;

	obj_range(v, o->offset, o->size, &a, &b);
	for (uint64_t i = a; i < b; i++) {
		const struct xv_map_entry *e;

		if (!needs_entry(o, i))
			continue;
		e = map_entry(v, i);
		if (!e)
			return gate_map(o);	/* evicted meanwhile */
		if (e->flags & XV_E_WRITABLE)
			continue;
		if (o->opc != X_WRITE && (e->flags & XV_E_HOLE))
			continue;	/* zeroing a hole: nothing to do */
		mapw(v, i, o->port);
		wait = 1;
	}
	if (wait)
		park(o);
	return !wait;
}

#endif
