/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/vlmcd-readers.h - who reads a snapshot through vlmcd.
 *
 * vlmcd opens a snapshot at mapperd once for all its clients (a reader lock
 * with its own tag, HOST:PID:STARTTIME:vlmcd), and remembers here which
 * clients read it: an OPEN names one (its port and owner tag), and a block
 * op from a client not yet known adds it (xsegbd opens nothing). A DELETE
 * of the snapshot through vlmcd is refused (EBUSY) while one of them is
 * alive (its port bound by the same generation), naming it; when the last
 * one CLOSEs, vlmcd closes the snapshot at mapperd, which drops its reader
 * lock. Part of vlmcd.c (one translation unit split by topic), included
 * once, after vlmcd-sub.h.
 */
#ifndef XSEG_VLMCD_READERS_H
#define XSEG_VLMCD_READERS_H

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
		r->tag[0] = 0;
	}
	if (o->ctag[0])
		snprintf(r->tag, sizeof(r->tag), "%.*s", (int)sizeof(r->tag) - 1, o->ctag);
}

/* @o's client no longer reads @v (its CLOSE). */
static void reader_drop(struct vol *v, const struct op *o)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < v->nrd; i++)
		if (!(v->rd[i].port == o->cport && v->rd[i].gen == o->cgen))
			v->rd[k++] = v->rd[i];
	v->nrd = k;
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

#endif
