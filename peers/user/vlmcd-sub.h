/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/vlmcd-sub.h - vlmcd's own requests (to mapperd and the storage
 * peer) and what their replies do; requests that find no free request or
 * buffer wait in the pending list; OPEN and CLOSE at mapperd.
 *
 * Part of vlmcd.c, one translation unit split by topic (base.mk links each
 * .c of peers/user as a program, so the parts are headers); included once,
 * in order, by vlmcd.c only.
 */
#ifndef XSEG_VLMCD_SUB_H
#define XSEG_VLMCD_SUB_H

/* ------------------------------------------------------ sub-requests */

static struct sub *sub_new(int kind, struct op *o, struct vol *v, uint32_t dst)
{
	struct sub *s = sub_alloc();

	if (!s)
		return NULL;
	l_init(&s->link);
	s->kind = kind;
	s->o = o;
	s->v = v;
	s->dst = dst;
	s->port = o ? o->port : P.ports[0];
	if (o)
		o->left++;
	return s;
}

static void op_finish(struct op *o);

/* A piece of @o ended with @err. */
static void op_piece_done(struct op *o, int err)
{
	if (err && !o->err)
		o->err = err;
	if (--o->left == 0 && o->issued)
		op_finish(o);
}

static void set_msg(struct op *o, const char *fmt, const char *a)
{
	snprintf(o->msg, sizeof(o->msg), fmt, a);
}

/* Copy the text of a failed reply (@req) into @o's message. */
static void take_msg(struct op *o, struct xseg_request *req)
{
	uint64_t cap = 0, n;
	const char *d;

	if (!req) {		/* never sent: why, if known */
		if (o && !o->msg[0])
			snprintf(o->msg, sizeof(o->msg), "%s", down_msg);
		return;
	}
	n = req->serviced;
	d = xseg_req_buffer(P.xs, req, &cap);

	if (!o || o->msg[0] || !d || !n)
		return;
	if (n > cap)
		n = cap;
	if (n >= sizeof(o->msg))
		n = sizeof(o->msg) - 1;
	memcpy(o->msg, d, n);
	o->msg[n] = 0;
}

static void fetch_done(struct sub *s, struct xseg_request *req, int err);
static void mapw_done(struct sub *s, struct xseg_request *req, int err);
static void open_done(struct sub *s, struct xseg_request *req, int err);
static void refresh_done(struct sub *s, struct xseg_request *req, int err);
static void close_done(struct sub *s, struct xseg_request *req, int err);
static void pin_done(struct sub *s, struct xseg_request *req, int err);
static void unpin_done(struct sub *s, struct xseg_request *req, int err);
static void fwd_done(struct op *o, struct xseg_request *req, int err);
static void forward(struct op *o, uint32_t dst, const char *target, uint32_t tlen, uint64_t off, uint64_t len,
		    uint32_t flags);

static void sub_reply(struct peer *p, uint32_t portno, struct xseg_request *req, void *arg)
{
	struct sub *s = arg;
	int err = req->state & XS_FAILED ? (req->error > 0 ? req->error : EIO) : 0;
	struct op *o = s->o;

	(void)portno;
	if (s->kind != S_FWD)
		subs_out--;	/* put below (or by the *_done function) */
	switch (s->kind) {
	/* These put the request and free @s themselves. */
	case S_FETCH: fetch_done(s, req, err); return;
	case S_MAPW: mapw_done(s, req, err); return;
	case S_OPEN: open_done(s, req, err); return;
	case S_REFRESH: refresh_done(s, req, err); return;
	case S_CLOSE: close_done(s, req, err); return;
	case S_PIN: pin_done(s, req, err); return;
	case S_UNPIN: unpin_done(s, req, err); return;
	case S_FWD: sub_put(s); fwd_done(o, req, err); return;	/* the client's request */
	case S_FLUSH:
		/* The pre-flush of an XF_FLUSH write: its op goes on (or fails) from the top. */
		xseg_put_request(p->xs, req);
		sub_put(s);
		o->left--;
		if (err && !o->err)
			o->err = err;
		vol_kick(o->v);
		return;
	case S_DISCARD:
		/* The range's entries are what the reply says; those it did not carry are fetched again. */
		for (uint64_t i = s->index; i < s->index + s->size / s->v->object_size; i++)
			map_forget(s->v, i);
		if (err)
			take_msg(o, req);
		else if (map_apply(s->v, xseg_req_data(p->xs, req), req->serviced))
			err = EIO;
		else
			st.discards++;
		break;
	case S_READ:
		if (!err) {
			uint64_t cap = 0, n = req->serviced;
			uint8_t *dst = xseg_req_buffer(p->xs, o->req, &cap);

			if (n > s->size)
				n = s->size;
			if (dst && s->boff + s->size <= cap) {
				memcpy(dst + s->boff, xseg_req_data(p->xs, req), n);
				memset(dst + s->boff + n, 0, s->size - n);	/* past the object's end */
			}
		}
		break;
	default:
		if (err)
			take_msg(o, req);
		break;
	}
	xseg_put_request(p->xs, req);
	if (o)
		op_piece_done(o, err);
	sub_put(s);
}

/* Send @s now, or park it in the pending list if no request or buffer is free. */
/* Send @s: 0 sent (or failed, and cleaned up), 1 no request or queue room: it must wait. */
static int sub_send(struct sub *s)
{
	struct xseg_request *req;
	int r;

	if (s->kind == S_FWD) {
		struct op *o = s->o;

		r = s->pass ? peer_pass(&P, s->port, o->req, s->dst) :
			      peer_forward(&P, s->port, o->req, s->dst, sub_reply, s);
		if (r == -EAGAIN)
			return 1;
		if (r)
			goto fail;
		if (s->pass) {
			/* The storage peer answers the client: nothing comes back here. */
			o->passed = 1;
			sub_put(s);
			op_piece_done(o, 0);
		}
		return 0;
	}
	if (subs_out >= subs_max)
		return 1;	/* leave free requests to the clients, mapperd and the storage peer */
	req = peer_request(&P, s->port, s->target, s->tlen, s->datalen);
	if (!req) {
		if (errno == EAGAIN || errno == ENOBUFS)
			return 1;
		r = -errno;
		goto fail;
	}
	req->op = s->opc;
	req->flags = s->flags;
	req->offset = s->offset;
	req->size = s->size;
	if (s->kind == S_WRITE) {
		uint64_t cap = 0;
		const uint8_t *src = xseg_req_buffer(P.xs, s->o->req, &cap);

		if (!src || s->boff + s->size > cap) {
			xseg_put_request(P.xs, req);
			r = -EINVAL;
			goto fail;
		}
		memcpy(xseg_req_data(P.xs, req), src + s->boff, s->size);
	} else if (s->kind == S_OPEN || s->kind == S_REFRESH || s->kind == S_CLOSE || s->kind == S_PIN ||
		   s->kind == S_UNPIN) {
		memcpy(xseg_req_data(P.xs, req), s->text, s->size);
	}
	r = peer_submit(&P, s->port, req, s->dst, sub_reply, s);
	if (r == -EAGAIN) {
		xseg_put_request(P.xs, req);
		return 1;
	}
	if (r) {
		xseg_put_request(P.xs, req);
		goto fail;
	}
	subs_out++;
	return 0;
fail:
	/* As if it had come back failed: the same paths clean up. */
	if (r == -ENOENT) {
		/* Nobody serves the port (mapperd or the storage peer is down): say so. */
		r = -ECONNREFUSED;
		snprintf(down_msg, sizeof(down_msg), "%s (port %u) is not running",
			 s->dst == mapper ? "mapperd" : "the storage peer", s->dst);
	}
	peer_log(&P, 1, "%s to port %u: %s", xseg_op_name(s->kind == S_FWD ? s->o->opc : s->opc), s->dst,
		 strerror(-r));
	/*
	 * As if it had come back failed, but not from here: the caller may be
	 * in the middle of the op (a gate that parks it after asking), so the
	 * failure is delivered after this round (retry_pending).
	 */
	s->err = -r;
	if (s->kind == S_FWD && !s->o->msg[0])
		snprintf(s->o->msg, sizeof(s->o->msg), "%s", down_msg);
	l_add(&failed, &s->link);
	return 0;
}

/* A sub-request that could not be sent ends here, as if its reply said so. */
static void sub_failed(struct sub *s)
{
	int err = s->err;
	struct op *o = s->o;

	switch (s->kind) {
	case S_FETCH: fetch_done(s, NULL, err); break;
	case S_MAPW: mapw_done(s, NULL, err); break;
	case S_OPEN: open_done(s, NULL, err); break;
	case S_REFRESH: refresh_done(s, NULL, err); break;
	case S_CLOSE: close_done(s, NULL, err); break;
	case S_PIN: pin_done(s, NULL, err); break;
	case S_UNPIN: unpin_done(s, NULL, err); break;
	case S_FWD:
		sub_put(s);
		fwd_done(o, NULL, err);
		break;
	case S_FLUSH:
		sub_put(s);
		o->left--;
		if (!o->err)
			o->err = err;
		vol_kick(o->v);
		break;
	default:
		if (o) {
			take_msg(o, NULL);
			op_piece_done(o, err);
		}
		sub_put(s);
	}
}

/* Send @s now, or behind the requests that wait already for a free one. */
static void sub_go(struct sub *s)
{
	if (!l_empty(&pending) || sub_send(s)) {
		l_add(&pending, &s->link);
		st.waited++;
	}
}

static void readers_sweep(void);
static void quiesce_next(struct vol *v);

/* pending(): send what waited for a free request, in order (and the readers' sweep). */
static int retry_pending(struct peer *p, uint32_t portno)
{
	(void)p;
	(void)portno;
	readers_sweep();
	if (pwaiting) {
		/* Quiescing ops waiting for passed writes (vlmcd.c): nothing signals their end. */
		for (uint32_t b = 0; b < 1024; b++)
			for (struct vol *v = vols[b], *next; v; v = next) {
				next = v->hnext;
				if (v->pwait)
					quiesce_next(v);
			}
	}
	while (!l_empty(&failed)) {
		struct sub *s = l_entry(failed.next, struct sub, link);

		l_del(&s->link);
		sub_failed(s);
	}
	while (!l_empty(&pending)) {
		struct sub *s = l_entry(pending.next, struct sub, link);

		l_del(&s->link);
		if (sub_send(s)) {
			/* Still none free: it stays first, the rest waits behind it. */
			s->link.next = pending.next;
			s->link.prev = &pending;
			pending.next->prev = &s->link;
			pending.next = &s->link;
			return 1;
		}
	}
	return pwaiting != 0;	/* nonzero: the loop naps at most 1 ms, and asks again */
}

/* ------------------------------------------------------ open / close */

static int same_client(const struct vol *v, const struct op *o)
{
	if (o->ctag[0] && v->ctag[0])
		return !strcmp(o->ctag, v->ctag);
	return v->hport == o->cport && v->hgen == o->cgen;
}

/* Is the client that holds @v still there (its port bound by the same generation)? */
static int holder_alive(const struct vol *v)
{
	struct xseg_port *pt = xseg_port(P.xs, v->hport);
	uint64_t w;

	if (!pt)
		return 0;
	w = __atomic_load_n(&pt->owner, __ATOMIC_ACQUIRE);
	return XSEG_OWNER_STATE(w) == XSEG_PORT_BOUND && XSEG_OWNER_GEN(w) == v->hgen;
}

/* Send @s to mapperd as @v's OPEN by its holder tag (v->htag), read-only if @v is. */
static void open_go(struct vol *v, struct sub *s)
{
	int n = snprintf(s->text, sizeof(s->text), "owner=%s\n%s", v->htag, v->ro ? "ro=1\n" : "");

	memcpy(s->target, v->name, v->nlen);
	s->tlen = v->nlen;
	s->opc = X_OPEN;
	s->size = (uint64_t)n;
	s->datalen = 4096;
	sub_go(s);
}

static void send_open(struct vol *v, struct op *o)
{
	struct sub *s = sub_new(S_OPEN, NULL, v, mapper);

	if (!s) {
		o->err = ENOMEM;
		return;
	}
	v->state = V_OPENING;
	v->ops++;
	v->hport = o->cport;
	v->hgen = o->cgen;
	v->ro = v->snap || o->ro;
	snprintf(v->ctag, sizeof(v->ctag), "%s", o->ctag);
	if (v->snap)
		snprintf(v->htag, sizeof(v->htag), "%s:vlmcd", ident);
	else if (o->ctag[0])
		snprintf(v->htag, sizeof(v->htag), "%.60s:vlmcd:%.130s", ident, o->ctag);
	else
		snprintf(v->htag, sizeof(v->htag), "%s:vlmcd:port=%u.gen=%u", ident, o->cport, o->cgen);
	s->port = o->port;
	st.opens++;
	open_go(v, s);
}

static void open_done(struct sub *s, struct xseg_request *req, int err)
{
	struct vol *v = s->v;

	if (!err && req) {
		const struct xv_open_reply *r = xseg_req_data(P.xs, req);

		if (req->serviced < sizeof(*r) || r->magic != XV_OPEN_MAGIC ||
		    r->object_size < XV_OBJECT_SIZE_MIN || r->object_size > XV_OBJECT_SIZE_MAX ||
		    (r->object_size & (r->object_size - 1))) {
			peer_log(&P, 0, "%s: OPEN reply from mapperd is not an xv_open_reply", v->name);
			err = EIO;
		} else {
			v->size = r->size;
			v->object_size = r->object_size;
			v->id = r->id;
			v->data_id = r->data_id;
			v->stale = 0;
			if ((r->flags & XV_OPEN_RO) || !r->data_id)
				v->ro = 1;
		}
	}
	if (err) {
		/* Every op parked on the volume learns why (they may retry with their own OPEN). */
		struct link *l;
		char msg[MSG_MAX] = "";

		if (req && req->serviced) {
			uint64_t cap = 0, n = req->serviced;
			const char *d = xseg_req_buffer(P.xs, req, &cap);

			n = n < cap ? n : cap;
			n = n < sizeof(msg) - 1 ? n : sizeof(msg) - 1;
			if (d)
				memcpy(msg, d, n);
			msg[n] = 0;
		}
		v->state = V_CLOSED;
		for (l = v->waiters.next; l != &v->waiters; l = l->next) {
			struct op *o = l_entry(l, struct op, link);

			if (!o->err) {
				o->err = err;
				snprintf(o->msg, sizeof(o->msg), "%s", req ? msg : down_msg);
			}
		}
	} else {
		v->state = V_OPEN;
		peer_log(&P, 2, "%s open for %s (size %" PRIu64 ", objects of %u)", v->name, v->htag, v->size,
			 v->object_size);
	}
	if (req)
		xseg_put_request(P.xs, req);
	sub_put(s);
	v->ops--;
	vol_kick(v);
}

/*
 * Ask mapperd for @v's data id and size again (v->stale): an OPEN with the
 * holder's tag, which mapperd answers as any repeated OPEN of the same owner
 * (its lock is already that owner's). Client OPENs of @v wait for it. 0, or
 * ENOMEM.
 */
static int send_refresh(struct vol *v)
{
	struct sub *s = sub_new(S_REFRESH, NULL, v, mapper);

	if (!s)
		return ENOMEM;
	v->refreshing = 1;
	v->ops++;
	open_go(v, s);
	return 0;
}

static void refresh_done(struct sub *s, struct xseg_request *req, int err)
{
	struct vol *v = s->v;
	const struct xv_open_reply *r = req && !err ? xseg_req_data(P.xs, req) : NULL;

	v->refreshing = 0;
	if (r && (req->serviced < sizeof(*r) || r->magic != XV_OPEN_MAGIC || r->object_size != v->object_size)) {
		peer_log(&P, 0, "%s: OPEN reply from mapperd is not an xv_open_reply of this volume", v->name);
		err = EIO;
	}
	if (!err) {
		v->size = r->size;
		if (!v->ro)
			v->data_id = r->data_id;	/* (an ro=1 open's reply carries none) */
		v->stale = 0;
	} else {
		/* The ops waiting for it fail with mapperd's reason (no retry loop); the volume stays open. */
		peer_log(&P, 1, "%s: asking mapperd for its data id again: %s", v->name, strerror(err));
		for (struct link *l = v->waiters.next; l != &v->waiters; l = l->next) {
			struct op *o = l_entry(l, struct op, link);

			if (o->wrefresh && !o->err) {
				o->err = err;
				take_msg(o, req);
			}
		}
	}
	if (req)
		xseg_put_request(P.xs, req);
	sub_put(s);
	quiesce_next(v);	/* a SNAPSHOT/UPDATE/CLOSE waited for it (never two at mapperd at once) */
	v->ops--;
	vol_kick(v);
}

static void send_close(struct vol *v, struct op *o)
{
	struct sub *s = sub_new(S_CLOSE, o, v, mapper);

	if (!s) {
		if (o)
			o->err = ENOMEM;
		return;
	}
	v->state = V_CLOSING;
	v->ops++;
	s->size = (uint64_t)snprintf(s->text, sizeof(s->text), "owner=%s\n", v->htag);
	memcpy(s->target, v->name, v->nlen);
	s->tlen = v->nlen;
	s->opc = X_CLOSE;
	s->datalen = 4096;
	st.closes++;
	sub_go(s);
}

static void close_done(struct sub *s, struct xseg_request *req, int err)
{
	struct vol *v = s->v;
	struct op *o = s->o;

	if (err)
		peer_log(&P, 1, "%s: CLOSE at mapperd: %s", v->name, strerror(err));
	if (err && req && o)
		take_msg(o, req);
	/* Closed here whatever mapperd said: a lock left behind is broken as a dead owner's. */
	v->state = V_CLOSED;
	cache_drop(v);
	if (req)
		xseg_put_request(P.xs, req);
	sub_put(s);
	if (o && o->opc == X_DELETE && (!err || err == ENOENT)) {
		/* Closed: now the DELETE itself. */
		o->left--;
		forward(o, mapper, o->target, o->tlen, o->offset, o->size, o->flags);
	} else if (o) {
		op_piece_done(o, err == ENOENT ? 0 : err);
	}
	v->ops--;	/* after the op: its finish must not free the volume under us */
	vol_kick(v);
}

#endif
