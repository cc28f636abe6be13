/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/vlmcd-state.h - vlmcd's state: volumes, ops, sub-requests, and
 * the map cache (chunks of CHUNK entries, least recently used out beyond
 * --cache bytes).
 *
 * Part of vlmcd.c, one translation unit split by topic (base.mk links each
 * .c of peers/user as a program, so the parts are headers); included once,
 * in order, by vlmcd.c only.
 */
#ifndef XSEG_VLMCD_STATE_H
#define XSEG_VLMCD_STATE_H

#include <stddef.h>
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

/* A client reading a snapshot (vlmcd-readers.h). */
#define RD_MAX 16u
struct reader {
	uint32_t port, gen;
	int pin;			/* its pin at mapperd (vlmcd-readers.h): PIN_NONE, PIN_ASKED, PIN_HELD */
	char tag[128];			/* its OPEN's owner=, "" if none */
};

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
	/*
	 * The data ids of the objects one-object WRITEs were passed to since a
	 * scan last found none out (vlmcd-fence.h, passed_writes_out): the
	 * volume's own (a SNAPSHOT gives it a new one, which vlmcd learns only
	 * from the map). pw_all: look for passed writes to any data object (a
	 * new volume: a dead vlmcd's may still be out; or more data ids than
	 * pw_owner holds). Neither: no passed write can be out. A quiescing op
	 * waits for them too.
	 */
	uint64_t pw_owner[4];
	uint32_t npw_owner;
	int pw_all;
	int pwait;			/* a quiescing op waits for passed writes (retry_pending asks again) */
	uint32_t ops;			/* ops that name this volume */
	int busy;			/* a quiescing op is at mapperd */
	uint64_t mapw[64];		/* object indices with a MAPW in flight */
	uint32_t nmapw;
	uint64_t epoch;			/* bumped when the cache is dropped */
	int kicking, kick_again;
	struct reader rd[RD_MAX];	/* snapshots: the clients reading it */
	uint32_t nrd;
	/*
	 * A SNAPSHOT (a new data id) or an UPDATE (a new size) went through
	 * since mapperd's OPEN reply filled data_id and size: a client's OPEN
	 * asks mapperd again (an OPEN with the holder's tag, S_REFRESH) before
	 * it is answered, so its reply never carries the old ones.
	 */
	int stale;
	int refreshing;			/* that OPEN is at mapperd */
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
	int wrefresh;			/* parked until mapperd is asked for data id and size (refreshed()) */
	int quiescer;			/* a SNAPSHOT/UPDATE/DELETE/CLOSE that holds the volume quiet */
	int passed;			/* the request went on with no return hop: not ours to answer */
	int err;
	uint32_t left;			/* sub-requests out */
	uint64_t serviced;
	/* A request forwarded in place: what its client must see again. */
	char target[XSEG_TARGET_MAX];
	uint32_t tlen;
	char msg[MSG_MAX];
};

enum { S_READ, S_WRITE, S_OTHER, S_FETCH, S_MAPW, S_OPEN, S_CLOSE, S_DISCARD, S_FLUSH, S_FWD, S_PIN, S_UNPIN,
       S_REFRESH };

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
	int pass;			/* S_FWD: xseg_pass (no return hop), the request readdressed */
	char text[TAG_MAX + 32];	/* OPEN/CLOSE data */
	int err;			/* could not be sent: why */
};

/*
 * A poll of 100 us before sleeping by default (docs/peers.md, "vlmcd"): a
 * passed request's reply goes to the client, not back here, so a poll only
 * waits for the client's next request; where waking an idle CPU is dear it
 * comes back within the poll (5x at depth 1 on such a VM), where wake-ups
 * are cheap the poll cost up to 20%.
 */
static struct peer P = { .name = "vlmcd", .spin_us = 100 };

/*
 * Free lists of ops and subs (one of each per request in flight; a forward
 * in place takes one of each): vlmcd runs on one thread, so a popped entry
 * needs no lock, and instead of calloc's zeroing of the whole entry (its
 * name and message buffers are most of it) only the fields before them are
 * cleared and the strings emptied. At most FREE_KEEP of each are kept.
 */
#define FREE_KEEP 512u
struct free_list { void *head; uint32_t n; };	/* an entry's first word links it */
static struct free_list op_free, sub_free;

/* A kept entry (its fields as its last user left them), or a zeroed new one of @size. */
static void *fl_get(struct free_list *fl, size_t size, int *reused)
{
	void *x = fl->head;

	*reused = x != NULL;
	if (!x)
		return calloc(1, size);
	memcpy(&fl->head, x, sizeof(void *));
	fl->n--;
	return x;
}

static void fl_put(struct free_list *fl, void *x)
{
	if (fl->n >= FREE_KEEP) {
		free(x);
		return;
	}
	memcpy(x, &fl->head, sizeof(void *));
	fl->head = x;
	fl->n++;
}

static struct op *op_alloc(void)
{
	int reused;
	struct op *o = fl_get(&op_free, sizeof(*o), &reused);

	if (!o || !reused)
		return o;
	memset(o, 0, offsetof(struct op, ctag));
	o->ctag[0] = 0;
	memset(&o->ro, 0, offsetof(struct op, target) - offsetof(struct op, ro));
	o->tlen = 0;
	o->msg[0] = 0;
	return o;
}

static void op_put(struct op *o)
{
	fl_put(&op_free, o);
}

static struct sub *sub_alloc(void)
{
	int reused;
	struct sub *s = fl_get(&sub_free, sizeof(*s), &reused);

	if (!s || !reused)
		return s;
	memset(s, 0, offsetof(struct sub, target));
	memset(&s->tlen, 0, offsetof(struct sub, text) - offsetof(struct sub, tlen));
	s->text[0] = 0;
	s->err = 0;
	return s;
}

static void sub_put(struct sub *s)
{
	fl_put(&sub_free, s);
}
static uint32_t mapper = XSEG_NO_PORT, storage = XSEG_NO_PORT;
static uint64_t cache_max = 32ull << 20;	/* bytes of cached map chunks */
static char ident[128];			/* HOST:PID:STARTTIME */
static char down_msg[96];		/* why the last request could not be sent */
/*
 * Requests of vlmcd's own out at once (not forwards, which take none): at
 * most a quarter of the segment's, so that vlmcd waiting for free requests
 * never takes every one freed from the clients and mapperd.
 */
static uint32_t subs_out, subs_max = 8;
static struct vol *vols[1024];
static uint32_t pwaiting;		/* volumes with v->pwait set */
static struct chunk *chunks[4096];
static struct link lru, pending, failed;	/* failed: subs that could not be sent, ended after the round */
static uint64_t nchunks;
/* Counters, answered by INFO ".stats" (XV_T_STATS). */
static struct {
	uint64_t ops, forwarded, copied, hole_reads, storage_reads, storage_writes, mapr, mapw,
		discards, opens, closes, mgmt, evicted, waited;
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
	v->pw_all = 1;
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
	if (v->pwait)
		pwaiting--;	/* never left set with nothing waiting (quiesce_next), but never counted twice */
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
	/* Two words mixed by multiplication (a bytewise hash of the 16 bytes was a tenth of a read's work). */
	uint64_t h = ((uint64_t)(uintptr_t)v ^ (no * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;

	return (uint32_t)(h >> 52);	/* the top 12 bits: 4096 buckets */
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

#endif
