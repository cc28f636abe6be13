/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/mapperd-ops.h - mapperd's requests: the map ops (MAPR, MAPW,
 * DISCARD), OPEN/CLOSE, the management ops, the start-up recovery and fsck.
 * Included once, by mapperd.c (its statics: struct vol, md, the storage
 * calls); split out only to keep each file short.
 */
#ifndef XSEG_PEERS_MAPPERD_OPS_H
#define XSEG_PEERS_MAPPERD_OPS_H

/* ----------------------------------------------------------- the map ops */

static uint32_t entry_flags(const struct vol *v, uint64_t owner)
{
	if (!owner)
		return XV_E_HOLE;
	if (v->h.kind == XVF_KIND_VOLUME && owner == v->h.data_id)
		return XV_E_WRITABLE;
	return XV_E_SHARED;
}

/* Write map entry @i of @v as @owner, durably. */
static int entry_write(struct vol *v, uint64_t i, uint64_t owner)
{
	char name[64];
	struct xvf_map_entry e = xvf_entry(i, owner);

	xvf_map_name(name, sizeof(name), v->id);
	return st_write(name, XVF_MAP_HEAD + i * sizeof(e), &e, sizeof(e), XF_FUA);
}

/*
 * materialize - give object @i of @v (owned by @old now: 0 a hole) an
 * object of its own data id holding the same bytes, durably: COPY of a
 * shared object, or an empty (zero) object for a hole. Called without v->mu.
 */
static int materialize(struct vol *v, uint64_t data_id, uint32_t objsz, uint64_t i, uint64_t old,
		       char *why, size_t wn)
{
	char dst[64], src[64];
	int r;

	xv_data_name(dst, sizeof(dst), data_id, i);
	if (old) {
		xv_data_name(src, sizeof(src), old, i);
		r = st_copy(dst, src);
		if (r == ENOENT) {
			fmt(why, wn, "%s: object %" PRIu64 " is named by the map but %s is missing",
				 v->name, i, src);
			return EIO;
		}
	} else {
		/* A leftover of a crash (never in the map) may hold old bytes: replace it. */
		r = st_simple(X_CREATE, XF_FUA, dst, 0, objsz);
		if (r == EEXIST && !(r = st_delete(dst)))
			r = st_simple(X_CREATE, XF_FUA, dst, 0, objsz);
	}
	if (r)
		fmt(why, wn, "%s: cannot %s object %" PRIu64 " (%s): %s", v->name, old ? "copy" : "create",
			 i, dst, strerror(r));
	return r;
}

static int op_map(struct rq *q)
{
	char vname[XV_NAME_MAX + 1], sname[XV_NAME_MAX + 1], why[256] = "";
	struct xv_map_reply *rep;
	struct vol *v;
	uint64_t first, last, end, fit, room, i;
	uint32_t objsz;
	int r = 0, corrupt = 0;

	if (xv_split_target(q->target, q->tlen, vname, sname))
		return fail(q, EINVAL, "'%s' is not a volume or snapshot name (1..%u bytes of A-Z a-z 0-9 _ . -, "
			    "not starting with '.' or '-'; NAME@SNAP for a snapshot)", q->target, XV_NAME_MAX);
	if (q->cap < sizeof(struct xv_map_reply))
		return fail(q, EINVAL, "the reply needs a buffer of at least %zu bytes",
			    sizeof(struct xv_map_reply));
	r = vol_lookup(q, q->target, &v, NULL);
	if (r)
		return r;
	pthread_mutex_lock(&v->mu);
	while (v->frozen)
		pthread_cond_wait(&v->cv, &v->mu);
	if (v->stale && !v->active) {
		/* A map write failed (it may have landed or not): read the truth again. */
		pthread_mutex_lock(&md.mu);
		vol_free_map(v);
		pthread_mutex_unlock(&md.mu);
		v->hdr_ok = 0;
		v->stale = 0;
	}
	v->active++;
	r = vol_load(v, why, sizeof(why));
	if (r) {
		r = fail(q, r, "%s", why);
		goto out;
	}
	objsz = v->h.object_size;
	if (q->off > v->h.size || q->size > v->h.size - q->off) {
		r = fail(q, EINVAL, "%s: the range %" PRIu64 "+%" PRIu64 " is past the end (%" PRIu64 " bytes)",
			 q->target, q->off, q->size, v->h.size);
		goto out;
	}
	if (q->op != X_MAPR && v->h.kind != XVF_KIND_VOLUME) {
		r = fail(q, EROFS, "%s is a snapshot: read-only", q->target);
		goto out;
	}
	end = q->off + q->size;
	first = q->off / objsz;
	last = q->size ? (end - 1) / objsz + 1 : first;	/* [first, last) */
	if (q->op == X_MAPW || q->op == X_DISCARD) {
		uint64_t a = first, b = last;

		if (q->op == X_DISCARD) {	/* whole objects only */
			a = (q->off + objsz - 1) / objsz;
			b = end == v->h.size ? last : end / objsz;
		}
		for (i = a; i < b && !r; i++) {
			uint64_t old, data_id = v->h.data_id;

			while (v->busy[i])		/* another request is changing it: one copy */
				pthread_cond_wait(&v->cv, &v->mu);
			old = v->map[i];
			if (old == OWNER_CORRUPT) {
				corrupt = 1;
				break;
			}
			if (q->op == X_MAPW ? old == data_id : old == 0)
				continue;
			v->busy[i] = 1;
			pthread_mutex_unlock(&v->mu);
			if (q->op == X_MAPW) {
				r = materialize(v, data_id, objsz, i, old, why, sizeof(why));
				if (!r && (r = entry_write(v, i, data_id)))
					fmt(why, sizeof(why), "%s: cannot write map entry %" PRIu64 ": %s",
						 q->target, i, strerror(r));
			} else {
				/* The map first, durably; then the object, if it was ours. */
				r = entry_write(v, i, 0);
				if (r)
					fmt(why, sizeof(why), "%s: cannot write map entry %" PRIu64 ": %s",
						 q->target, i, strerror(r));
				if (!r && old == data_id) {
					char obj[64];
					int d;

					xv_data_name(obj, sizeof(obj), old, i);
					d = st_delete(obj);
					if (d)		/* a leak fsck finds; the discard itself is done */
						peer_log(md.p, 1, "%s: cannot delete %s: %s", q->target, obj, strerror(d));
				}
			}
			pthread_mutex_lock(&v->mu);
			if (!r)
				v->map[i] = q->op == X_MAPW ? data_id : 0;
			else
				v->stale = 1;
			v->busy[i] = 0;
			pthread_cond_broadcast(&v->cv);
		}
		if (r) {
			r = fail(q, r, "%s", why);
			goto out;
		}
	}
	for (i = first; i < last && !corrupt; i++)
		corrupt = v->map[i] == OWNER_CORRUPT;
	if (corrupt) {
		for (i = first; i < last && v->map[i] != OWNER_CORRUPT; i++)
			;
		r = fail(q, EIO, "%s: entry %" PRIu64 " of its map (xv1.m.%016" PRIx64 ") is corrupt (checksum)",
			 q->target, i, v->id);
		goto out;
	}
	rep = (struct xv_map_reply *)q->data;
	room = (q->cap - sizeof(*rep)) / sizeof(struct xv_map_entry);
	fit = last - first < room ? last - first : room;
	rep->magic = XV_MAP_MAGIC;
	rep->first = first;
	rep->count = (uint32_t)fit;
	rep->object_size = objsz;
	rep->size = v->h.size;
	for (i = 0; i < fit; i++) {
		uint64_t o = v->map[first + i];
		struct xv_map_entry e = { o, entry_flags(v, o), 0 };

		memcpy(&rep->entry[i], &e, sizeof(e));
	}
	q->req->serviced = sizeof(*rep) + fit * sizeof(struct xv_map_entry);
out:
	v->active--;
	v->last_use = __atomic_add_fetch(&md.clock, 1, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&v->cv);
	pthread_mutex_unlock(&v->mu);
	vol_put(v);
	return r;
}

/* ------------------------------------------------------------ the text */

/*
 * kv_get - parse q->text ("key=value\n" lines): each key must be one of
 * @allowed (space-separated); the values of @keys[0..n) go to @vals (NULL
 * if absent). EINVAL with a message naming a bad line or unknown key.
 */
static int kv_parse(struct rq *q, const char *allowed, const char **keys, char vals[][256], int *have, int n)
{
	char *s = q->text, *line;

	for (int k = 0; k < n; k++)
		have[k] = 0;
	while ((line = strsep(&s, "\n"))) {
		char *eq;
		int k;
		char pat[64];

		if (!*line)
			continue;
		eq = strchr(line, '=');
		if (!eq)
			return fail(q, EINVAL, "'%.60s' is not a key=value line", line);
		*eq = 0;
		fmt(pat, sizeof(pat), " %s ", line);
		{
			char all[256];

			fmt(all, sizeof(all), " %s ", allowed);
			if (!*line || !strstr(all, pat))
				return fail(q, EINVAL, "unknown key '%.60s' (%s takes: %s)", line, xseg_op_name(q->op),
					    allowed);
		}
		for (k = 0; k < n; k++)
			if (!strcmp(keys[k], line)) {
				fmt(vals[k], 256, "%s", eq + 1);
				have[k] = 1;
			}
	}
	return 0;
}

static int parse_size_kv(struct rq *q, const char *key, const char *val, uint64_t *out)
{
	if (st_parse_size(val, out))
		return fail(q, EINVAL, "%s=%.60s is not a size (bytes, or with K/M/G/T)", key, val);
	return 0;
}

static int check_plain_name(struct rq *q, const char *what, const char *s)
{
	if (!xv_valid_name(s, strlen(s)))
		return fail(q, EINVAL, "%s '%.100s' is not a valid name (1..%u bytes of A-Z a-z 0-9 _ . -, "
			    "not starting with '.' or '-')", what, s, XV_NAME_MAX);
	return 0;
}

/* ------------------------------------------------------ OPEN and CLOSE */

/*
 * Who holds @id's lock: LOCK_HELD (its tag in @who), 0 nobody, or a
 * (positive) errno of the storage peer. LOCK_HELD is negative so that no
 * errno (EPERM is 1) reads as "held".
 */
#define LOCK_HELD (-1)
static int lock_holder(uint64_t id, char *who, size_t wn)
{
	char lock[64], tag[128];
	struct xc_call k = { .op = X_ACQUIRE, .target = lock };
	int r;

	xvf_lock_name(lock, sizeof(lock), id);
	xvf_owner_tag(tag, sizeof(tag), "mapperd-probe");
	k.in = tag;
	k.in_len = k.size = strlen(tag);
	k.buf_len = 256;
	r = st_do(&k);
	if (r == EBUSY && k.msg[0] && mapperd_holder_dead(k.msg, strlen(k.msg))) {
		/* Its holder is gone (a killed opener, or a killed mapperd's own probe). */
		char dead[256];

		fmt(dead, sizeof(dead), "%s", k.msg);
		k.flags = XF_FORCE;
		r = st_do(&k);
		if (!r)
			peer_log(md.p, 0, "%s: broke the lock of %s (its process is gone)", lock, dead);
	}
	if (r == EBUSY) {
		fmt(who, wn, "%s", k.msg[0] ? k.msg : "another owner");
		return LOCK_HELD;
	}
	if (r)
		return r;
	k.op = X_RELEASE;
	k.flags = 0;
	st_do(&k);
	return 0;
}

/*
 * open_elsewhere - may @q change volume @v (SNAPSHOT, UPDATE)? Not while
 * another process has it open for writing: its writer (vlmcd) keeps the
 * volume's data id and size and writes to the objects it owns without
 * asking here, so a snapshot taken behind its back would change under its
 * writes. Its holder itself may (vlmcd quiesces it first). 0, or the
 * failure given to @q.
 */
static int open_elsewhere(struct rq *q, struct vol *v)
{
	char who[256];
	int r = lock_holder(v->id, who, sizeof(who));

	if (r == LOCK_HELD && !sent_by_holder(q->req, who))
		return fail(q, EBUSY, "%s is open by %s: %s it through the peer that has it open "
			    "(its vlmcd quiesces its writes first), or after it closes it",
			    q->target, who, q->op == X_SNAPSHOT ? "snapshot" : "resize");
	if (r > 0)
		return fail(q, r, "%s: cannot look at its lock: %s", q->target, strerror(r));
	return 0;
}

/*
 * readers - the live holders of @v's reader slots, comma-separated in @who
 * (@wn bytes), probed as lock_holder does (a dead holder's slot is broken on
 * the way); slots known to be free (v->rd_maybe) are not asked. Returns how
 * many hold one, or -errno. Under md.mgmt.
 */
_Static_assert(XVF_READERS <= 32, "a vol's rd_maybe has a bit per reader slot");

static int readers(struct vol *v, char *who, size_t wn)
{
	size_t o = 0;
	int n = 0;
	uint32_t held = 0;

	who[0] = 0;
	for (uint32_t k = 0; k < XVF_READERS; k++) {
		char lock[64], tag[128], holder[256];
		struct xc_call c = { .op = X_ACQUIRE, .target = lock, .buf_len = 256 };
		int r;

		if (v->rd_known && !(v->rd_maybe & (1u << k)))
			continue;	/* free since the last probe: nobody took it through us */
		xvf_reader_lock_name(lock, sizeof(lock), v->id, k);
		xvf_owner_tag(tag, sizeof(tag), "mapperd-probe");
		c.in = tag;
		c.in_len = c.size = strlen(tag);
		r = st_do(&c);
		if (r == EBUSY && c.msg[0] && mapperd_holder_dead(c.msg, strlen(c.msg))) {
			fmt(holder, sizeof(holder), "%s", c.msg);
			c.flags = XF_FORCE;
			r = st_do(&c);
			if (!r)
				peer_log(md.p, 0, "%s: broke the reader lock of %s (its process is gone)", lock, holder);
		}
		if (r == EBUSY) {
			if (o < wn)
				o += (size_t)fmt(who + o, wn - o, "%s%s", n ? "," : "", c.msg[0] ? c.msg : "another owner");
			n++;
			held |= 1u << k;
			continue;
		}
		if (r)
			return -r;
		c.op = X_RELEASE;
		c.flags = 0;
		if (st_do(&c))
			held |= 1u << k;	/* our probe may still hold it: asked again next time */
	}
	v->rd_maybe = held;
	v->rd_known = 1;
	if (o >= wn && wn)
		who[wn - 1] = 0;
	return n;
}

/*
 * reader_open - take a reader slot of @id for @owner: the first slot that is
 * free, ours already, or held by a provably dead owner (or any, with
 * @force, when all are taken). 0, or an errno with a message in @why.
 */
static int reader_open(struct vol *v, const char *name, const char *owner, int force, char *why, size_t wn)
{
	char lock[64], first[256] = "";

	for (int pass = 0; pass < 1 + !!force; pass++)
		for (uint32_t k = 0; k < XVF_READERS; k++) {
			struct xc_call c = { .op = X_ACQUIRE, .target = lock, .buf_len = 256, .in = owner,
					     .in_len = strlen(owner), .size = strlen(owner) };
			int r;

			xvf_reader_lock_name(lock, sizeof(lock), v->id, k);
			v->rd_maybe |= 1u << k;	/* before the ACQUIRE: held or not, it may be now */
			r = st_do(&c);
			if (r == EBUSY && (pass || (c.msg[0] && mapperd_holder_dead(c.msg, strlen(c.msg))))) {
				char holder[256];

				fmt(holder, sizeof(holder), "%s", c.msg);
				c.flags = XF_FORCE;
				r = st_do(&c);
				if (!r)
					peer_log(md.p, 0, "%s: broke the reader lock %s of %s (%s) for %s", name, lock,
						 holder, pass ? "force=1" : "its process is gone", owner);
			}
			if (r == EBUSY) {
				if (!first[0])
					fmt(first, sizeof(first), "%s", c.msg);
				continue;
			}
			if (r)
				fmt(why, wn, "%s: cannot take a reader lock: %s", name, strerror(r));
			return r;
		}
	fmt(why, wn, "%s has %u readers already (%s, ...)", name, XVF_READERS, first);
	return EBUSY;
}

/* reader_close - release every reader slot of @v that @owner holds (known-free ones skipped). 0 or an errno. */
static int reader_close(struct vol *v, const char *owner)
{
	for (uint32_t k = 0; k < XVF_READERS; k++) {
		char lock[64];
		struct xc_call c = { .op = X_RELEASE, .target = lock, .buf_len = 256, .in = owner,
				     .in_len = strlen(owner), .size = strlen(owner) };
		int r;

		if (v->rd_known && !(v->rd_maybe & (1u << k)))
			continue;
		xvf_reader_lock_name(lock, sizeof(lock), v->id, k);
		r = st_do(&c);
		if (!r || r == ENOENT)
			v->rd_maybe &= ~(1u << k);	/* free now */
		if (r && r != ENOENT && r != EPERM)
			return r;
	}
	return 0;
}

static int op_open(struct rq *q, struct vol *v, const struct xvf_reg_rec *e)
{
	static const char *keys[] = { "owner", "ro", "force" };
	char vals[3][256], lock[64], why[256];
	int have[3], r, ro, force;
	struct xv_open_reply rep = { .magic = XV_OPEN_MAGIC };
	struct xc_call k = { .op = X_ACQUIRE, .target = lock, .buf_len = 256 };

	r = kv_parse(q, "owner ro force", keys, vals, have, 3);
	if (r)
		return r;
	if (!have[0])
		fmt(vals[0], sizeof(vals[0]), "port:%u:%u", q->req->src_port, q->req->src_gen);
	if (!vals[0][0])
		return fail(q, EINVAL, "owner= is empty");
	ro = have[1] && !strcmp(vals[1], "1");
	force = have[2] && !strcmp(vals[2], "1");
	if (q->op == X_CLOSE && (have[1] || have[2]))
		return fail(q, EINVAL, "CLOSE takes only owner=");
	pthread_mutex_lock(&v->mu);
	r = vol_load(v, why, sizeof(why));
	if (!r) {
		rep.size = v->h.size;
		rep.id = v->id;
		rep.object_size = v->h.object_size;
		rep.data_id = v->h.data_id;
	}
	pthread_mutex_unlock(&v->mu);
	if (r)
		return fail(q, r, "%s", why);
	if (e->kind == XVF_KIND_SNAPSHOT || ro) {
		/* Read-only opens are shared: each reader holds a reader slot, which DELETE respects. */
		if (q->op == X_CLOSE) {
			r = reader_close(v, vals[0]);
			return r ? fail(q, r, "%s: cannot release its reader locks: %s", q->target, strerror(r)) : 0;
		}
		r = reader_open(v, q->target, vals[0], force, why, sizeof(why));
		if (r)
			return fail(q, r, "%s", why);
		rep.flags = XV_OPEN_RO;
		rep.data_id = 0;
		goto reply;
	}
	xvf_lock_name(lock, sizeof(lock), v->id);
	k.in = vals[0];
	k.in_len = k.size = strlen(vals[0]);
	if (q->op == X_CLOSE) {
		/* The owner's ro=1 opens of the volume too (CLOSE carries no ro=). */
		r = reader_close(v, vals[0]);
		if (r)
			return fail(q, r, "%s: cannot release its reader locks: %s", q->target, strerror(r));
		k.op = X_RELEASE;
		r = st_do(&k);
		if (r == ENOENT)
			return 0;	/* not open: closing twice is fine */
		if (r == EPERM)
			return fail(q, EPERM, "%s is open by %s, not by %s", q->target, k.msg, vals[0]);
		return r ? fail(q, r, "%s: cannot release its lock: %s", q->target, strerror(r)) : 0;
	}
	r = st_do(&k);
	if (r == EBUSY) {
		char holder[256];

		fmt(holder, sizeof(holder), "%s", k.msg);
		if (!force && !mapperd_holder_dead(holder, strlen(holder)))
			return fail(q, EBUSY, "%s is open by %s", q->target, holder);
		k.flags = XF_FORCE;
		r = st_do(&k);
		if (!r)
			peer_log(md.p, 0, "%s: broke the lock of %s (%s) for %s", q->target, holder,
				 force ? "force=1" : "its process is gone", vals[0]);
	}
	if (r)
		return fail(q, r, "%s: cannot take its lock: %s", q->target, strerror(r));
reply:
	if (q->cap < sizeof(rep))
		return fail(q, EINVAL, "the reply needs a buffer of at least %zu bytes", sizeof(rep));
	memcpy(q->data, &rep, sizeof(rep));
	q->req->serviced = sizeof(rep);
	return 0;
}

/* ---------------------------------------------------- management helpers */

/* The vol of record @e (a reference), its header loaded. 0 or an errno (message in @why). */
static int vol_of(const struct xvf_reg_rec *e, struct vol **out, char *why, size_t wn)
{
	struct vol *v;
	int r = 0;

	pthread_mutex_lock(&md.mu);
	v = vol_get_locked(e->id, e->name);
	pthread_mutex_unlock(&md.mu);
	if (!v) {
		fmt(why, wn, "out of memory");
		return ENOMEM;
	}
	pthread_mutex_lock(&v->mu);
	if (!v->hdr_ok) {
		r = hdr_read(v->id, &v->h, why, wn);
		v->hdr_ok = !r;
	}
	pthread_mutex_unlock(&v->mu);
	*out = v;
	return r;
}

/* The names of READY records whose header's parent is @id and of kind @kind, comma-separated. */
static void children(uint64_t id, uint32_t kind, char *out, size_t n)
{
	size_t o = 0;

	out[0] = 0;
	for (uint32_t i = 0; i < md.nrec; i++) {
		struct xvf_reg_rec e = md.recs[i];
		struct vol *c;
		char why[256];

		if (e.state == XVF_ST_DELETING || e.kind != kind)
			continue;
		if (vol_of(&e, &c, why, sizeof(why)) == 0 && c->h.parent == id)
			o += (size_t)fmt(out + o, o < n ? n - o : 0, "%s%s", o ? "," : "", e.name);
		vol_put(c);
		if (o >= n) {
			out[n - 1] = 0;
			return;
		}
	}
}

/* present[] of the data objects of one data id, as LIST finds them. */
struct present {
	uint64_t d, nobj;
	uint8_t *at;
	char prefix[40];
};

static int present_one(void *arg, const char *name)
{
	struct present *pr = arg;
	const char *t = name + strlen(pr->prefix);
	char *end;
	uint64_t i;

	/* xv1.d.<owner, 16 hex>.<index, 16 hex>: anything else is not ours to judge. */
	if (strlen(t) != 16)
		return 0;
	errno = 0;
	i = strtoull(t, &end, 16);
	if (!errno && *end == 0 && i < pr->nobj)
		pr->at[i] = 1;
	return 0;
}

/*
 * list_present - in @at[0..@nobj), 1 where data object @d.i exists, by
 * LIST of the prefix xv1.d.<d>. (one request per page, instead of one INFO
 * or DELETE per index). 0, EOPNOTSUPP when the storage peer has no LIST
 * (the caller probes each index instead), or an errno.
 */
static int list_present(uint64_t d, uint64_t nobj, uint8_t *at)
{
	struct present pr = { .d = d, .nobj = nobj, .at = at };

	memset(at, 0, nobj ? nobj : 1);
	fmt(pr.prefix, sizeof(pr.prefix), XV_DATA_PREFIX "%016" PRIx64 ".", d);
	return st_list(pr.prefix, present_one, &pr);
}

/*
 * named_by_others - mark in @named[0..@nobj) each index where the map of a
 * READY record other than @skip names data id @d (a corrupt entry counts as
 * naming it: never delete what cannot be judged). One pass over the maps.
 * 0 or an errno (then nothing may be deleted).
 */
static int named_by_others(uint64_t d, uint64_t skip, uint64_t nobj, uint8_t *named)
{
	memset(named, 0, nobj ? nobj : 1);
	for (uint32_t k = 0; k < md.nrec; k++) {
		struct xvf_reg_rec e = md.recs[k];
		struct vol *v;
		char why[256];
		int r;

		if (e.state != XVF_ST_READY || e.id == skip)
			continue;
		r = vol_of(&e, &v, why, sizeof(why));
		if (!r) {
			pthread_mutex_lock(&v->mu);
			r = vol_load(v, why, sizeof(why));
			for (uint64_t i = 0; !r && i < nobj && i < v->nobj; i++)
				named[i] |= v->map[i] == d || v->map[i] == OWNER_CORRUPT;
			pthread_mutex_unlock(&v->mu);
		}
		vol_put(v);
		if (r) {
			peer_log(md.p, 1, "%s", why);
			return r;
		}
	}
	return 0;
}

/*
 * gc - finish the records in DELETING: delete the objects of their data id
 * that no READY map names, at every index (not only those its map names: an
 * object a MAPW copied before a crash, never mapped, is under this data id
 * too, and once the record is gone nothing would find it), then, if no
 * other map names any of them, the header, the map and the record. The
 * objects are found by LIST of their data id's prefix; a storage peer
 * without LIST gets one DELETE per object index, as `rbd rm` without an
 * object map. Returns the number of records removed, or -errno.
 */
static int gc(void)
{
	int removed = 0, changed = 0;

	for (uint32_t k = 0; k < md.nrec; k++) {
		struct xvf_reg_rec e = md.recs[k];
		struct vol *v;
		char why[256], obj[64];
		uint64_t nobj = 0, d = 0;
		uint8_t *named = NULL;
		int r, kept = 0;

		if (e.state != XVF_ST_DELETING)
			continue;
		r = vol_of(&e, &v, why, sizeof(why));
		if (!r) {
			pthread_mutex_lock(&v->mu);
			r = vol_load(v, why, sizeof(why));
			nobj = v->nobj;
			d = v->h.data_id;
			pthread_mutex_unlock(&v->mu);
		}
		if (r == EIO) {
			/* No readable header or map: nothing of it can be found; forget it. */
			peer_log(md.p, 1, "deleting id %016" PRIx64 ": %s; its objects are left", e.id, why);
			r = 0;
		} else if (!r) {
			uint8_t *at = malloc(nobj ? nobj : 1);
			int listed;

			named = malloc(nobj ? nobj : 1);
			r = named && at ? named_by_others(d, e.id, nobj, named) : ENOMEM;
			/* Only the objects LIST finds; without LIST, every index is tried. */
			listed = r ? EOPNOTSUPP : list_present(d, nobj, at);
			if (listed && listed != EOPNOTSUPP)
				r = listed;
			for (uint64_t i = 0; !r && i < nobj; i++) {
				if (named[i]) {
					kept++;
					continue;
				}
				if (!listed && !at[i])
					continue;
				xv_data_name(obj, sizeof(obj), d, i);
				r = st_delete(obj);
			}
			free(named);
			free(at);
		}
		if (r) {
			vol_put(v);
			return -r;
		}
		if (!kept) {
			char name[64];

			xvf_map_name(name, sizeof(name), e.id);
			st_delete(name);
			xvf_header_name(name, sizeof(name), e.id);
			st_delete(name);
			pthread_mutex_lock(&md.mu);
			rec_remove(e.id);
			v->gone = 1;
			pthread_mutex_unlock(&md.mu);
			k--;
			removed++;
			changed = 1;
		}
		vol_put(v);
	}
	if (changed) {
		int r = reg_save();

		if (r)
			return -r;
	}
	return removed;
}

/* Registry change failed: reload what is durable, so memory never runs ahead of it. */
static int reg_reload(void)
{
	int r;

	pthread_mutex_lock(&md.mu);
	r = reg_load();
	md.reg_stale = r != 0;
	pthread_mutex_unlock(&md.mu);
	return r;
}

static int reg_failed(struct rq *q, int r)
{
	if (reg_reload())
		peer_log(md.p, 0, "the registry could not be read back; the next change tries again");
	return fail(q, r, "cannot write the registry: %s", strerror(r));
}

/* Reserve @n ids and add a CREATING record named @name; its id in *@id. */
static int reg_reserve(struct rq *q, const char *name, uint32_t kind, uint32_t n, uint64_t vol_id, uint64_t *id)
{
	struct xvf_reg_rec *e;
	int r;

	pthread_mutex_lock(&md.mu);
	e = rec_add();
	if (!e) {
		pthread_mutex_unlock(&md.mu);
		return fail(q, ENOMEM, "out of memory");
	}
	fmt(e->name, sizeof(e->name), "%s", name);
	e->kind = (uint8_t)kind;
	e->state = XVF_ST_CREATING;
	e->id = md.rh.next_id;
	e->aux = n > 1 ? md.rh.next_id + 1 : 0;
	e->vol = vol_id;
	*id = e->id;
	md.rh.next_id += n;
	pthread_mutex_unlock(&md.mu);
	r = reg_save();
	return r ? reg_failed(q, r) : 0;
}

static int reg_set_state(struct rq *q, uint64_t id, uint32_t state)
{
	struct xvf_reg_rec *e;
	int r;

	pthread_mutex_lock(&md.mu);
	e = rec_by_id(id);
	if (e) {
		e->state = (uint8_t)state;
		if (state == XVF_ST_DELETING)
			memset(e->name, 0, sizeof(e->name));
	}
	pthread_mutex_unlock(&md.mu);
	r = reg_save();
	return r ? reg_failed(q, r) : 0;
}

/* Undo a CREATING record (its objects are ours alone). */
static int rollback(uint64_t id)
{
	char name[64];
	struct vol *v;
	int r;

	xvf_map_name(name, sizeof(name), id);
	r = st_delete(name);
	xvf_header_name(name, sizeof(name), id);
	if (!r)
		r = st_delete(name);
	if (r)
		return r;
	pthread_mutex_lock(&md.mu);
	rec_remove(id);
	v = vol_get_locked(id, "");	/* retired at the put below (or by its last user) */
	if (v)
		v->gone = 1;
	pthread_mutex_unlock(&md.mu);
	if (v)
		vol_put(v);
	return reg_save();
}

/* Write a fresh map object for @id with @nobj holes. */
static int map_create(uint64_t id, uint64_t nobj)
{
	char name[64];
	uint64_t len = XVF_MAP_HEAD + nobj * sizeof(struct xvf_map_entry);
	int r;

	xvf_map_name(name, sizeof(name), id);
	r = st_simple(X_CREATE, XF_FUA, name, 0, len);
	if (r == EEXIST && !(r = st_delete(name)))
		r = st_simple(X_CREATE, XF_FUA, name, 0, len);
	return r ? r : map_head_write(id);
}

/* COPY the map of @src to @dst (sized for @nobj entries), with its own head. */
static int map_copy(uint64_t dst, uint64_t src, uint64_t src_nobj, uint64_t nobj)
{
	char d[64], s[64];
	int r;

	xvf_map_name(d, sizeof(d), dst);
	xvf_map_name(s, sizeof(s), src);
	r = st_copy(d, s);
	if (!r && nobj > src_nobj)
		r = st_simple(X_TRUNCATE, XF_FUA, d, XVF_MAP_HEAD + nobj * sizeof(struct xvf_map_entry), 0);
	return r ? r : map_head_write(dst);
}

#include "mapperd-mgmt.h"

#endif
