/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/vlmcd-readers.h - who reads a snapshot through vlmcd.
 *
 * vlmcd opens a snapshot at mapperd once for all its clients (a reader lock
 * with its own tag, HOST:PID:STARTTIME:vlmcd), and remembers here which
 * clients read it: an OPEN names one (its port and owner tag), and a block
 * op from a client not yet known adds it (a client that opens nothing). A DELETE
 * of the snapshot through vlmcd is refused (EBUSY) while one of them is
 * alive (its port bound by the same generation), naming it; when the last
 * one CLOSEs, vlmcd closes the snapshot at mapperd, which drops its reader
 * lock.
 *
 * Pins: a reader that OPENs with an owner tag also gets a reader lock of its
 * own at mapperd, its **pin**, whose tag names the client's process (the
 * pid and start time of the process bound to its port, which mapperd
 * judges as it judges any owner): HOST:PID:START:vlmcd-pin:TAG. The pin is
 * not tied to vlmcd, so it outlives a vlmcd restart: after one, a DELETE
 * of the snapshot is refused by mapperd naming the pin until the reader
 * CLOSEs (through any vlmcd: the tag is computed again from the CLOSE's
 * port and owner=) or its process ends (mapperd breaks a dead holder's
 * lock). The OPEN is answered once the pin is taken; a pin that cannot be
 * taken fails the OPEN with mapperd's message (e.g. 32 readers already).
 * A user client without a tag gets no pin; a kernel port (xsegbd) gets one
 * named after its port (pin_tag).
 *
 * Part of vlmcd.c (one translation unit split by topic), included once,
 * after vlmcd-sub.h.
 */
#ifndef XSEG_VLMCD_READERS_H
#define XSEG_VLMCD_READERS_H

#include "../../sys/domain.h"

enum { PIN_NONE, PIN_ASKED, PIN_HELD };
static char pin_host[64] = "localhost";	/* gethostname(), set at start */

static void quiesce_next(struct vol *v);

/* Is client port @port still bound by generation @gen? */
static int port_alive(uint32_t port, uint32_t gen)
{
	struct xseg_port *pt = xseg_port(P.xs, port);
	uint64_t w;

	if (!pt)
		return 0;
	w = __atomic_load_n(&pt->owner, __ATOMIC_ACQUIRE);
	return XSEG_OWNER_STATE(w) == XSEG_PORT_BOUND && XSEG_OWNER_GEN(w) == gen;
}

/* Forget the readers of @v whose port is gone. */
static void readers_prune(struct vol *v)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < v->nrd; i++)
		if (port_alive(v->rd[i].port, v->rd[i].gen))
			v->rd[k++] = v->rd[i];
	v->nrd = k;
}

/* @o's client reads snapshot @v (an OPEN, or a block op). */
static void reader_note(struct vol *v, const struct op *o)
{
	struct reader *r = NULL;

	for (uint32_t i = 0; i < v->nrd && !r; i++)
		if (v->rd[i].port == o->cport && v->rd[i].gen == o->cgen)
			r = &v->rd[i];
	if (!r) {
		if (v->nrd == RD_MAX)
			readers_prune(v);
		if (v->nrd == RD_MAX) {
			/* Not remembered: a DELETE through vlmcd would not name it (mapperd's lock still holds). */
			peer_log(&P, 1, "%s: more than %u clients read it; port %u is not remembered", v->name,
				 RD_MAX, o->cport);
			return;
		}
		r = &v->rd[v->nrd++];
		r->port = o->cport;
		r->gen = o->cgen;
		r->pin = PIN_NONE;
		r->tag[0] = 0;
	}
	if (o->ctag[0])
		snprintf(r->tag, sizeof(r->tag), "%.*s", (int)sizeof(r->tag) - 1, o->ctag);
}

/* The client on @port bound by @gen no longer reads @v. */
static void reader_forget(struct vol *v, uint32_t port, uint32_t gen)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < v->nrd; i++)
		if (!(v->rd[i].port == port && v->rd[i].gen == gen))
			v->rd[k++] = v->rd[i];
	v->nrd = k;
}

/* @o's client no longer reads @v (its CLOSE). */
static void reader_drop(struct vol *v, const struct op *o)
{
	reader_forget(v, o->cport, o->cgen);
}

static struct reader *reader_find(struct vol *v, uint32_t port, uint32_t gen)
{
	for (uint32_t i = 0; i < v->nrd; i++)
		if (v->rd[i].port == port && v->rd[i].gen == gen)
			return &v->rd[i];
	return NULL;
}

/* The live readers of @v, named in @out (@n bytes, "TAG" or "port P"); how many. */
static uint32_t readers_live(struct vol *v, char *out, size_t n)
{
	size_t o = 0;

	readers_prune(v);
	out[0] = 0;
	for (uint32_t i = 0; i < v->nrd && o < n; i++) {
		int w = v->rd[i].tag[0] ? snprintf(out + o, n - o, "%s%.*s", i ? "," : "", 120, v->rd[i].tag)
					: snprintf(out + o, n - o, "%sport %u", i ? "," : "", v->rd[i].port);

		o += w > 0 ? (size_t)w : 0;
	}
	return v->nrd;
}

/*
 * Once a second, from the dispatch loop (pending()): forget the readers
 * whose port is gone (recovery frees the port of a process that died within
 * a second), and close at mapperd a snapshot nobody reads any more, so that
 * vlmcd's reader lock does not pin it for a reader that never CLOSEs
 * (xsegbd, a client killed). Cheap: a walk of the volumes vlmcd knows.
 */
static void readers_sweep(void)
{
	static uint64_t last;
	uint64_t now = xseg_sys_now_ns();

	if (now - last < 1000000000ull)
		return;
	last = now;
	for (uint32_t b = 0; b < 1024; b++)
		for (struct vol *v = vols[b]; v; v = v->hnext) {
			if (!v->snap || !v->nrd)
				continue;
			readers_prune(v);
			if (v->nrd || v->state != V_OPEN || v->busy || v->ops || !l_empty(&v->quiesce) ||
			    !l_empty(&v->waiters))
				continue;
			peer_log(&P, 2, "%s: its last reader's port is gone; closing it", v->name);
			send_close(v, NULL);
		}
}

/* ------------------------------------------------------------ pins */

/*
 * The pin tag of @o's client into @b (@n bytes): 1, or 0 when it gets no
 * pin (a user client without an owner tag, its port not bound by its
 * generation). A kernel port (an xsegbd device) has no process to name: its
 * tag names the port, the generation and the kernel's instance token in
 * this segment, HOST:kport.PORT.GEN.TYPE.NAME:INSTANCE:vlmcd-pin:TAG (TAG
 * "kernel" when it gave none), which mapperd judges dead once that port is
 * no longer bound by that generation of that kernel (mapperd_holder_dead).
 */
static int pin_tag(const struct op *o, char *b, size_t n)
{
	struct xseg_port *pt = xseg_port(P.xs, o->cport);
	unsigned long long start;
	uint64_t w;
	uint32_t pid;

	if (!pt)
		return 0;
	w = __atomic_load_n(&pt->owner, __ATOMIC_ACQUIRE);
	pid = XSEG_OWNER_PID(w);
	start = (unsigned long long)__atomic_load_n(&pt->owner_start, __ATOMIC_RELAXED);
	if (XSEG_OWNER_STATE(w) != XSEG_PORT_BOUND || XSEG_OWNER_GEN(w) != o->cgen || !pid)
		return 0;
	if (pid == XSEG_SYS_KERNEL_PID)
		return snprintf(b, n, "%s:kport.%u.%u.%s.%s:%llu:vlmcd-pin:%.100s", pin_host, o->cport, o->cgen,
				P.cfg.type, P.cfg.name, start, o->ctag[0] ? o->ctag : "kernel") < (int)n;
	if (!o->ctag[0])
		return 0;
	snprintf(b, n, "%s:%u:%llu:vlmcd-pin:%.100s", pin_host, pid, start, o->ctag);
	return 1;
}

/* An OPEN (@unpin 0, ro=1) or CLOSE (1) at mapperd of @o's pin on snapshot @v; NULL if none. */
static struct sub *pin_sub(struct op *o, int unpin)
{
	struct vol *v = o->v;
	char tag[TAG_MAX];
	struct sub *s;

	if (!pin_tag(o, tag, sizeof(tag)) || !(s = sub_new(unpin ? S_UNPIN : S_PIN, unpin ? o : NULL, v, mapper)))
		return NULL;
	s->port = o->port;
	s->index = (uint64_t)o->cport << 32 | o->cgen;
	s->size = (uint64_t)snprintf(s->text, sizeof(s->text), "owner=%s\n%s", tag, unpin ? "" : "ro=1\n");
	memcpy(s->target, v->name, v->nlen);
	s->tlen = v->nlen;
	s->opc = unpin ? X_CLOSE : X_OPEN;
	s->datalen = 4096;
	v->ops++;
	return s;
}

/* 1: @o (an OPEN of snapshot @v) holds its pin, or gets none; 0: parked (or failed). */
static int gate_pin(struct op *o)
{
	struct reader *r = reader_find(o->v, o->cport, o->cgen);
	struct sub *s;

	if (!r || r->pin == PIN_HELD)
		return 1;
	if (r->pin == PIN_NONE) {
		if (!(s = pin_sub(o, 0)))
			return 1;	/* no pin for this client */
		r->pin = PIN_ASKED;
		sub_go(s);
	}
	park(o);
	return 0;
}

static void pin_done(struct sub *s, struct xseg_request *req, int err)
{
	struct vol *v = s->v;
	uint32_t port = (uint32_t)(s->index >> 32), gen = (uint32_t)s->index;
	struct reader *r = reader_find(v, port, gen);

	if (err) {
		/* Its OPENs fail with mapperd's word; it is no reader. */
		peer_log(&P, 1, "%s: the pin of port %u at mapperd: %s", v->name, port, strerror(err));
		for (struct link *l = v->waiters.next; l != &v->waiters; l = l->next) {
			struct op *o = l_entry(l, struct op, link);

			if (!o->err && o->opc == X_OPEN && o->cport == port && o->cgen == gen) {
				o->err = err;
				take_msg(o, req);
			}
		}
		reader_forget(v, port, gen);
	} else if (r) {
		r->pin = PIN_HELD;
	}
	if (req)
		xseg_put_request(P.xs, req);
	sub_put(s);
	v->ops--;
	vol_kick(v);
}

/* The rest of a snapshot's CLOSE, after its pin is dropped. */
static void snap_close(struct op *o)
{
	struct vol *v = o->v;
	char who[MSG_MAX];

	/*
	 * The last reader gone: the snapshot is closed at mapperd (its
	 * reader lock dropped) before this CLOSE is answered, as a
	 * volume's CLOSE is (a DELETE after it queues behind it).
	 */
	reader_drop(v, o);
	if (!readers_live(v, who, sizeof(who)) && v->state == V_OPEN) {
		o->parked = 1;
		l_add(&v->quiesce, &o->link);
		quiesce_next(v);
		return;
	}
	o->issued = 1;
	if (!o->left)
		op_finish(o);
}

static void unpin_done(struct sub *s, struct xseg_request *req, int err)
{
	struct vol *v = s->v;
	struct op *o = s->o;

	if (err) {
		peer_log(&P, 1, "%s: dropping a pin at mapperd: %s", v->name, strerror(err));
		if (!o->err)
			o->err = err;
		take_msg(o, req);
	}
	if (req)
		xseg_put_request(P.xs, req);
	sub_put(s);
	o->left--;
	v->ops--;
	snap_close(o);
}

/*
 * CLOSE of snapshot @o->v: the client's pin is dropped at mapperd (computed
 * from its port and tag, so also a pin a dead vlmcd took), then the reader
 * is forgotten, and the last reader's CLOSE closes the snapshot here.
 */
static void snap_close_start(struct op *o)
{
	struct sub *s = pin_sub(o, 1);

	if (s) {
		sub_go(s);
		return;
	}
	snap_close(o);
}

#endif
