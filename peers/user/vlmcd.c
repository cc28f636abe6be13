/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/vlmcd.c - the volume composer: block requests on a named volume
 * become object requests at the storage peer, through the map mapperd keeps
 * (DESIGN.md §10, peers/user/volume.h, docs/volumes.md).
 *
 *   vlmcd -g SPEC -p PORT --mapper PORT --storage PORT [--cache-mb N]
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
 *           peer, rewritten (no copy); several: a request per object with
 *           the data copied; holes read as zeroes without asking storage.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "peer.h"
#include "storage.h"
#include "volume.h"

#define CHUNK 1024u			/* map entries fetched and cached together */
#define TAG_MAX 200u
#define MSG_MAX 200u

struct link { struct link *prev, *next; };

static void l_init(struct link *l) { l->prev = l->next = l; }
static int l_empty(const struct link *l) { return l->next == l; }
static void l_del(struct link *e) { e->prev->next = e->next; e->next->prev = e->prev; l_init(e); }
static void l_add(struct link *head, struct link *e)	/* at the tail */
{
	e->prev = head->prev;
	e->next = head;
	head->prev->next = e;
	head->prev = e;
}
#define l_entry(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

enum { V_CLOSED, V_OPENING, V_OPEN, V_CLOSING };

struct vol {
	struct vol *hnext;
	char name[2 * XV_NAME_MAX + 2];	/* NAME or NAME@SNAP */
	uint32_t nlen;
	int snap;			/* read-only, opened shared */
	int state;
	/* The holder (volumes): the client it is open for. */
	uint32_t hport, hgen;
	char htag[TAG_MAX];		/* the owner tag given to mapperd */
	char ctag[TAG_MAX];		/* the client's own tag ("" if none given) */
	int ro;
	uint64_t size, id, data_id;
	uint32_t object_size;
	struct link waiters;		/* parked ops */
	struct link quiesce;		/* SNAPSHOT/UPDATE/CLOSE ops waiting for writes to drain */
	uint32_t writes;		/* write-like ops past the quiesce gate */
	uint32_t ops;			/* ops that name this volume */
	int busy;			/* a quiescing op is at mapperd */
	uint64_t mapw[64];		/* object indices with a MAPW in flight */
	uint32_t nmapw;
	uint64_t epoch;			/* bumped when the cache is dropped */
	int kicking, kick_again;
};

struct chunk {
	struct chunk *hnext;
	struct link lru;
	struct vol *v;
	uint64_t no;
	uint64_t epoch;
	int fetching;
	uint8_t valid[CHUNK];
	struct xv_map_entry e[CHUNK];
};

struct op {
	struct link link;		/* in v->waiters or v->quiesce */
	struct xseg_request *req;
	uint32_t port;
	struct vol *v;
	uint32_t opc, flags;
	uint64_t offset, size;
	uint32_t cport, cgen;		/* the client */
	char ctag[TAG_MAX];		/* OPEN/CLOSE: owner=; else "" */
	int ro;				/* OPEN: ro=1 */
	int gated, flushed, issued, parked;
	int err;
	uint32_t left;			/* sub-requests out */
	uint64_t serviced;
	/* A request forwarded in place: what its client must see again. */
	char target[XSEG_TARGET_MAX];
	uint32_t tlen;
	char msg[MSG_MAX];
};

enum { S_READ, S_WRITE, S_OTHER, S_FETCH, S_MAPW, S_OPEN, S_CLOSE, S_DISCARD, S_FLUSH, S_FWD };

/* A request of vlmcd's own (or a forward) waiting to go or gone. */
struct sub {
	struct link link;		/* in the pending list */
	int kind;
	struct op *o;			/* NULL for a fetch */
	struct vol *v;
	struct chunk *c;
	uint32_t port, dst;
	char target[XSEG_TARGET_MAX];
	uint32_t tlen;
	uint32_t opc, flags;
	uint64_t offset, size, datalen;
	uint64_t boff;			/* bytes into the client's buffer */
	uint64_t index;			/* MAPW, DISCARD: first object */
	uint64_t epoch;
	char text[TAG_MAX + 32];	/* OPEN/CLOSE data */
};

static struct peer P = { .name = "vlmcd" };
static uint32_t mapper = XSEG_NO_PORT, storage = XSEG_NO_PORT;
static uint64_t cache_max = 32ull << 20;	/* bytes of cached map chunks */
static char ident[128];			/* HOST:PID:STARTTIME */
static struct vol *vols[1024];
static struct chunk *chunks[4096];
static struct link lru, pending;
static uint64_t nchunks;
/* Counters, answered by INFO ".stats" (XV_T_STATS). */
static struct {
	uint64_t ops, forwarded, copied, hole_reads, storage_reads, storage_writes, mapr, mapw,
		discards, opens, closes, mgmt, evicted;
} st;

static void op_run(struct op *o);
static void sub_go(struct sub *s);

static uint32_t hash(const void *b, size_t n)
{
	const uint8_t *p = b;
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ *p++) * 16777619u;
	return h;
}

/* ------------------------------------------------------------ volumes */

static struct vol *vol_get(const char *name, uint32_t nlen, int create)
{
	uint32_t b = hash(name, nlen) % 1024;
	struct vol *v;

	for (v = vols[b]; v; v = v->hnext)
		if (v->nlen == nlen && !memcmp(v->name, name, nlen))
			return v;
	if (!create || !(v = calloc(1, sizeof(*v))))
		return NULL;
	memcpy(v->name, name, nlen);
	v->nlen = nlen;
	v->snap = memchr(name, '@', nlen) != NULL;
	l_init(&v->waiters);
	l_init(&v->quiesce);
	v->hnext = vols[b];
	vols[b] = v;
	return v;
}

static void cache_drop(struct vol *v);

/* Forget a volume nobody uses that is closed here. */
static void vol_put(struct vol *v)
{
	struct vol **pp = &vols[hash(v->name, v->nlen) % 1024];

	if (v->ops || v->state != V_CLOSED || !l_empty(&v->waiters))
		return;
	cache_drop(v);
	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == v) {
			*pp = v->hnext;
			free(v);
			return;
		}
}

/* Run every parked op of @v again (each parks itself again if it still waits). */
static void vol_kick(struct vol *v)
{
	struct link todo;

	if (v->kicking) {
		v->kick_again = 1;
		return;
	}
	v->kicking = 1;
	v->ops++;	/* the volume stays while its ops run */
	do {
		v->kick_again = 0;
		l_init(&todo);
		if (!l_empty(&v->waiters)) {
			todo.next = v->waiters.next;
			todo.prev = v->waiters.prev;
			todo.next->prev = &todo;
			todo.prev->next = &todo;
			l_init(&v->waiters);
		}
		while (!l_empty(&todo)) {
			struct op *o = l_entry(todo.next, struct op, link);

			l_del(&o->link);
			o->parked = 0;
			op_run(o);
		}
	} while (v->kick_again);
	v->kicking = 0;
	v->ops--;
	vol_put(v);
}

static void park(struct op *o)
{
	if (!o->parked) {
		o->parked = 1;
		l_add(&o->v->waiters, &o->link);
	}
}

/* ---------------------------------------------------------- map cache */

static uint32_t chunk_bucket(const struct vol *v, uint64_t no)
{
	uint64_t k[2] = { (uint64_t)(uintptr_t)v, no };

	return hash(k, sizeof(k)) % 4096;
}

static struct chunk *chunk_find(struct vol *v, uint64_t no)
{
	struct chunk *c;

	for (c = chunks[chunk_bucket(v, no)]; c; c = c->hnext)
		if (c->v == v && c->no == no)
			return c;
	return NULL;
}

static void chunk_free(struct chunk *c)
{
	struct chunk **pp = &chunks[chunk_bucket(c->v, c->no)];

	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == c) {
			*pp = c->hnext;
			break;
		}
	l_del(&c->lru);
	nchunks--;
	free(c);
}

/* The bound: at most cache_max bytes of chunks; the least recently used go (not while fetched). */
static struct chunk *chunk_new(struct vol *v, uint64_t no)
{
	struct chunk *c;
	struct link *l = lru.next;

	while ((nchunks + 1) * sizeof(struct chunk) > cache_max && l != &lru) {
		struct chunk *old = l_entry(l, struct chunk, lru);

		l = l->next;
		if (!old->fetching) {
			chunk_free(old);
			st.evicted++;
		}
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->v = v;
	c->no = no;
	c->epoch = v->epoch;
	c->hnext = chunks[chunk_bucket(v, no)];
	chunks[chunk_bucket(v, no)] = c;
	l_add(&lru, &c->lru);
	nchunks++;
	return c;
}

/* Drop @v's cached map (after a snapshot, an update, a close); fetches in flight are ignored. */
static void cache_drop(struct vol *v)
{
	v->epoch++;
	for (uint32_t b = 0; b < 4096; b++) {
		struct chunk **pp = &chunks[b];

		while (*pp) {
			struct chunk *c = *pp;

			if (c->v == v && !c->fetching) {
				*pp = c->hnext;
				l_del(&c->lru);
				nchunks--;
				free(c);
			} else {
				if (c->v == v)
					c->epoch = UINT64_MAX;	/* its fetch installs nothing */
				pp = &c->hnext;
			}
		}
	}
}

/* The map entry of object @idx, or NULL if not cached. */
static const struct xv_map_entry *map_entry(struct vol *v, uint64_t idx)
{
	struct chunk *c = chunk_find(v, idx / CHUNK);

	if (!c || c->epoch != v->epoch || !c->valid[idx % CHUNK])
		return NULL;
	l_del(&c->lru);
	l_add(&lru, &c->lru);
	return &c->e[idx % CHUNK];
}

static void map_set(struct vol *v, uint64_t idx, const struct xv_map_entry *e)
{
	struct chunk *c = chunk_find(v, idx / CHUNK);

	if (!c || c->epoch != v->epoch)
		return;		/* not cached: the next use fetches it */
	c->e[idx % CHUNK] = *e;
	c->valid[idx % CHUNK] = 1;
}

static void map_forget(struct vol *v, uint64_t idx)
{
	struct chunk *c = chunk_find(v, idx / CHUNK);

	if (c)
		c->valid[idx % CHUNK] = 0;
}

/*
 * Apply a MAPR/MAPW/DISCARD reply (@len bytes at @d) to @v's cache; the
 * volume's size comes with it. 0, or EIO for a reply that is not a map.
 */
static int map_apply(struct vol *v, const void *d, uint64_t len)
{
	const struct xv_map_reply *m = d;

	if (len < sizeof(*m) || m->magic != XV_MAP_MAGIC || m->count > (len - sizeof(*m)) / sizeof(m->entry[0]) ||
	    m->object_size < XV_OBJECT_SIZE_MIN || m->object_size > XV_OBJECT_SIZE_MAX)
		return EIO;
	v->size = m->size;
	v->object_size = m->object_size;
	for (uint32_t i = 0; i < m->count; i++) {
		struct xv_map_entry e = m->entry[i];

		e.pad = 0;
		if (!(e.flags & (XV_E_HOLE | XV_E_WRITABLE | XV_E_SHARED)))
			return EIO;
		map_set(v, m->first + i, &e);
	}
	return 0;
}

/* ------------------------------------------------------ sub-requests */

static struct sub *sub_new(int kind, struct op *o, struct vol *v, uint32_t dst)
{
	struct sub *s = calloc(1, sizeof(*s));

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
	uint64_t cap = 0, n = req->serviced;
	const char *d = xseg_req_buffer(P.xs, req, &cap);

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
static void close_done(struct sub *s, struct xseg_request *req, int err);
static void fwd_done(struct op *o, struct xseg_request *req, int err);

static void sub_reply(struct peer *p, uint32_t portno, struct xseg_request *req, void *arg)
{
	struct sub *s = arg;
	int err = req->state & XS_FAILED ? (req->error > 0 ? req->error : EIO) : 0;
	struct op *o = s->o;

	(void)portno;
	switch (s->kind) {
	/* These put the request and free @s themselves. */
	case S_FETCH: fetch_done(s, req, err); return;
	case S_MAPW: mapw_done(s, req, err); return;
	case S_OPEN: open_done(s, req, err); return;
	case S_CLOSE: close_done(s, req, err); return;
	case S_FWD: free(s); fwd_done(o, req, err); return;	/* the client's request */
	case S_FLUSH:
		/* The pre-flush of an XF_FLUSH write: its op goes on (or fails) from the top. */
		xseg_put_request(p->xs, req);
		free(s);
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
	free(s);
}

/* Send @s now, or park it in the pending list if no request or buffer is free. */
static void sub_go(struct sub *s)
{
	struct xseg_request *req;
	int r;

	if (!l_empty(&pending) && l_empty(&s->link)) {
		l_add(&pending, &s->link);	/* behind those that wait already */
		return;
	}
	if (s->kind == S_FWD) {
		r = peer_forward(&P, s->port, s->o->req, s->dst, sub_reply, s);
		if (r == -EAGAIN)
			goto wait;
		if (r) {
			struct op *o = s->o;

			free(s);
			fwd_done(o, NULL, -r);
		}
		return;
	}
	req = peer_request(&P, s->port, s->target, s->tlen, s->datalen);
	if (!req) {
		if (errno == EAGAIN || errno == ENOBUFS)
			goto wait;
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
	} else if (s->kind == S_OPEN || s->kind == S_CLOSE) {
		memcpy(xseg_req_data(P.xs, req), s->text, s->size);
	}
	r = peer_submit(&P, s->port, req, s->dst, sub_reply, s);
	if (r == -EAGAIN) {
		xseg_put_request(P.xs, req);
		goto wait;
	}
	if (r) {
		xseg_put_request(P.xs, req);
		goto fail;
	}
	return;
wait:
	if (l_empty(&s->link))
		l_add(&pending, &s->link);
	return;
fail:
	/* As if it had come back failed: the same paths clean up. */
	peer_log(&P, 1, "%s to port %u: %s", xseg_op_name(s->opc), s->dst, strerror(-r));
	switch (s->kind) {
	case S_FETCH: fetch_done(s, NULL, -r); break;
	case S_MAPW: mapw_done(s, NULL, -r); break;
	case S_OPEN: open_done(s, NULL, -r); break;
	case S_CLOSE: close_done(s, NULL, -r); break;
	default:
		if (s->o)
			op_piece_done(s->o, -r);
		free(s);
	}
}

/* pending(): send what waited for a free request, in order. */
static int retry_pending(struct peer *p, uint32_t portno)
{
	(void)p;
	(void)portno;
	while (!l_empty(&pending)) {
		struct sub *s = l_entry(pending.next, struct sub, link);

		l_del(&s->link);
		sub_go(s);
		if (!l_empty(&s->link) && pending.next == &s->link)
			return 1;	/* still no request: the rest waits too */
	}
	return 0;
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

static void send_open(struct vol *v, struct op *o)
{
	struct sub *s = sub_new(S_OPEN, NULL, v, mapper);
	int n;

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
	n = snprintf(s->text, sizeof(s->text), "owner=%s\n%s", v->htag, v->ro ? "ro=1\n" : "");
	memcpy(s->target, v->name, v->nlen);
	s->tlen = v->nlen;
	s->opc = X_OPEN;
	s->size = (uint64_t)n;
	s->datalen = 4096;
	s->port = o->port;
	st.opens++;
	sub_go(s);
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
				snprintf(o->msg, sizeof(o->msg), "%s", msg);
			}
		}
	} else {
		v->state = V_OPEN;
		peer_log(&P, 2, "%s open for %s (size %" PRIu64 ", objects of %u)", v->name, v->htag, v->size,
			 v->object_size);
	}
	if (req)
		xseg_put_request(P.xs, req);
	free(s);
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
	free(s);
	if (o)
		op_piece_done(o, err == ENOENT ? 0 : err);
	v->ops--;	/* after the op: its finish must not free the volume under us */
	vol_kick(v);
}

/* ------------------------------------------------------ the gates */

/* 1: open for @o's client; 0: parked (or failed, o->err set). */
static int gate_open(struct op *o)
{
	struct vol *v = o->v;

	if (o->err)
		return 0;
	switch (v->state) {
	case V_OPEN:
		if (v->snap || same_client(v, o))
			return 1;
		if (holder_alive(v)) {
			o->err = EBUSY;
			snprintf(o->msg, sizeof(o->msg), "%.60s is open by %.120s", v->name, v->htag);
			return 0;
		}
		/* Its client is gone: close the volume for it, then open it for this one. */
		peer_log(&P, 1, "%s: the client that opened it (port %u) is gone; closing it", v->name, v->hport);
		if (v->writes || v->busy) {
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
				if (req)
					take_msg(o, req);
			}
		}
	}
	if (c->epoch != v->epoch)
		chunk_free(c);
	if (req)
		xseg_put_request(P.xs, req);
	free(s);
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

	if (o->opc == X_READ || o->opc == X_WRITE)
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
				if (req)
					take_msg(o, req);
			}
		}
	}
	if (req)
		xseg_put_request(P.xs, req);
	free(s);
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
				forward(o, storage, name, (uint32_t)xv_data_name(name, sizeof(name), e->owner, i),
					s0 - os, s1 - s0, 0);
				continue;
			}
			st.copied++;
			if ((s = obj_sub(o, S_READ, X_READ, i, e, s0 - os, s1 - s0, s0 - o->offset)))
				sub_go(s);
		} else if (o->opc == X_WRITE) {
			st.storage_writes++;
			if (b - a == 1) {
				forward(o, storage, name, (uint32_t)xv_data_name(name, sizeof(name), e->owner, i),
					s0 - os, s1 - s0, o->flags & XF_FUA);
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
	if (err) {
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
	peer_complete(&P, req, err);
	if (v) {
		int quiescer = o->opc == X_SNAPSHOT || o->opc == X_UPDATE || o->opc == X_DELETE || o->opc == X_CLOSE;

		if (o->gated && --v->writes == 0)
			quiesce_next(v);
		if (quiescer && v->busy == 1 && o->issued == 2) {
			v->busy = 0;
			if (!err && (o->opc == X_SNAPSHOT || o->opc == X_UPDATE))
				cache_drop(v);	/* every entry may have changed: fetched again on use */
			if (!err && o->opc == X_DELETE) {
				v->state = V_CLOSED;
				cache_drop(v);
			}
			quiesce_next(v);
		}
		v->ops--;
		free(o);
		vol_kick(v);
		return;
	}
	free(o);
}

/* Start the next op waiting for @v to be quiet, once no write is in flight. */
static void quiesce_next(struct vol *v)
{
	struct op *o;

	if (v->busy || v->writes || l_empty(&v->quiesce))
		return;
	o = l_entry(v->quiesce.next, struct op, link);
	l_del(&o->link);
	o->parked = 0;
	v->busy = 1;
	o->issued = 2;		/* finishing it ends the quiet */
	if (o->opc == X_CLOSE || (o->opc == X_DELETE && v->state == V_OPEN)) {
		send_close(v, o);	/* DELETE: continues in op_run once closed */
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
		if (!gate_open(o))
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
	case X_DELETE:
		/* After the close (quiesce_next): forward the DELETE itself. */
		if (o->issued == 2 && v->state == V_CLOSED && !o->left) {
			o->issued = 3;
			forward(o, mapper, o->target, o->tlen, o->offset, o->size, o->flags);
		}
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
	if (o->issued || !gate_open(o))
		goto out;
	if (write_like(o->opc) && v->ro) {
		o->err = EROFS;
		set_msg(o, "%.150s is read-only", v->name);
		goto out;
	}
	if (o->offset > v->size || o->size > v->size - o->offset) {
		o->err = ENOSPC;
		set_msg(o, "beyond the end of %.150s", v->name);
		goto out;
	}
	if (!o->size) {
		op_finish(o);
		return;
	}
	if (write_like(o->opc) && !gate_quiesce(o))
		goto out;
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
	uint64_t cap = 0;
	char *d = xseg_req_buffer(P.xs, req, &cap);
	int n;

	if (!d)
		return;
	n = snprintf(d, cap,
		     "ops=%" PRIu64 "\nforwarded=%" PRIu64 "\ncopied=%" PRIu64 "\nhole_reads=%" PRIu64
		     "\nstorage_reads=%" PRIu64 "\nstorage_writes=%" PRIu64 "\nmapr=%" PRIu64 "\nmapw=%" PRIu64
		     "\ndiscards=%" PRIu64 "\nopens=%" PRIu64 "\ncloses=%" PRIu64 "\nmgmt=%" PRIu64
		     "\ncache_chunks=%" PRIu64 "\ncache_bytes=%" PRIu64 "\nevicted=%" PRIu64 "\n",
		     st.ops, st.forwarded, st.copied, st.hole_reads, st.storage_reads, st.storage_writes, st.mapr,
		     st.mapw, st.discards, st.opens, st.closes, st.mgmt, nchunks, nchunks * sizeof(struct chunk),
		     st.evicted);
	req->serviced = n < 0 ? 0 : (uint64_t)n < cap ? (uint64_t)n : cap;
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
	o = calloc(1, sizeof(*o));
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
			free(o);
			stats_text(req);
			return 0;
		}
		if (opc != X_INFO && opc != X_DELETE) {
			free(o);
			return fail_msg(req, EINVAL, "%s: only INFO and DELETE go to reserved targets",
					xseg_op_name(opc));
		}
		st.mgmt++;
		o->issued = 1;
		forward(o, mapper, o->target, tlen, o->offset, o->size, o->flags);
		return PEER_ASYNC;
	}
	if (xv_split_target(o->target, tlen, vname, sname)) {
		free(o);
		return fail_msg(req, EINVAL, "'%.100s' is not a volume or NAME@SNAPSHOT", tlen ? req->target : "");
	}
	mgmt = opc == X_CREATE || opc == X_SNAPSHOT || opc == X_CLONE || opc == X_UPDATE || opc == X_DELETE ||
	       (opc == X_INFO && req->size != 8);
	if (!mgmt && opc != X_READ && opc != X_WRITE && opc != X_DISCARD && opc != X_WRITE_ZEROES &&
	    opc != X_INFO && opc != X_OPEN && opc != X_CLOSE) {
		free(o);
		peer_log(&P, 2, "%s: not supported", xseg_op_name(opc));
		return EOPNOTSUPP;
	}
	if ((opc == X_READ || opc == X_WRITE) && (req->size > cap)) {
		free(o);
		return fail_msg(req, EINVAL, "%s: the size is larger than the data buffer", xseg_op_name(opc));
	}
	if (opc == X_INFO && !mgmt && cap < 8) {
		free(o);
		return EINVAL;
	}
	if (write_like(opc) && sname[0]) {
		char full[2 * XV_NAME_MAX + 2];

		free(o);
		snprintf(full, sizeof(full), "%s@%s", vname, sname);
		return fail_msg(req, EROFS, "%.200s is a snapshot: read-only", full);
	}
	if ((opc == X_OPEN || opc == X_CLOSE) && (r = parse_open(o, req))) {
		free(o);
		return r;
	}
	o->v = vol_get(o->target, tlen, 1);
	if (!o->v) {
		free(o);
		return ENOMEM;
	}
	o->v->ops++;
	if (mgmt) {
		st.mgmt++;
		if ((opc == X_SNAPSHOT || opc == X_UPDATE || opc == X_DELETE) && o->v->state == V_OPEN) {
			/* Ours: quiet it first (writes drained), then forward, then refetch. */
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

		if (v->state == V_CLOSED || v->snap) {
			v->ops--;
			free(o);
			vol_put(v);
			return 0;
		}
		if (!same_client(v, o)) {
			r = fail_msg(req, EPERM, "%.200s is open by another owner", v->name);
			v->ops--;
			free(o);
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
	case 'M':
	case 'S':
		v = strtoul(arg, &end, 10);
		if (*end || end == arg || v >= 1u << 30) {
			fprintf(stderr, "vlmcd: --%s: '%s' is not a port\n", opt == 'M' ? "mapper" : "storage", arg);
			return -1;
		}
		*(opt == 'M' ? &mapper : &storage) = (uint32_t)v;
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
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "mapper", required_argument, NULL, 'M' }, { "storage", required_argument, NULL, 'S' },
		{ "cache", required_argument, NULL, 'c' }, { 0, 0, 0, 0 },
	};
	int r;

	P.serve = serve;
	P.pending = retry_pending;
	r = peer_parse_args(&P, argc, argv, "", lo, own,
			    "  --mapper PORT   mapperd's port (required)\n"
			    "  --storage PORT  the storage peer's port (required)\n"
			    "  --cache SIZE    map cache bound (default 32M)");
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
	make_ident();
	if (peer_start(&P))
		return 1;
	r = peer_run(&P);
	peer_stop(&P);
	return r ? 1 : 0;
}
