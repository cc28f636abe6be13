/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/mapperd-mgmt.h - mapperd's management ops (CREATE, SNAPSHOT,
 * CLONE, UPDATE, DELETE, INFO, .list, .fsck) and its start-up recovery.
 * Included once, by mapperd-ops.h. All of it runs under md.mgmt: one at a
 * time, so each op sees the registry it changes.
 */
#ifndef XSEG_PEERS_MAPPERD_MGMT_H
#define XSEG_PEERS_MAPPERD_MGMT_H

/*
 * settle - finish or roll back the records a failed or killed op left
 * CREATING: a snapshot whose volume's header has the new data id had
 * committed (READY); anything else is rolled back. 0 or an errno.
 */
static int settle(void)
{
	int r = 0;

	for (uint32_t k = 0; k < md.nrec; k++) {
		struct xvf_reg_rec e = md.recs[k];

		if (e.state != XVF_ST_CREATING)
			continue;
		if (e.kind == XVF_KIND_SNAPSHOT) {
			struct xvf_header vh;
			char why[256];

			r = hdr_read(e.vol, &vh, why, sizeof(why));
			if (!r && vh.data_id == e.aux) {
				peer_log(md.p, 1, "%s: the snapshot had committed; finishing it", e.name);
				pthread_mutex_lock(&md.mu);
				md.recs[k].state = XVF_ST_READY;
				pthread_mutex_unlock(&md.mu);
				if ((r = reg_save()))
					break;
				continue;
			}
			if (r && r != EIO)
				break;
		}
		peer_log(md.p, 1, "%s: rolling back an unfinished create", e.name);
		if ((r = rollback(e.id)))
			break;
		k--;
	}
	return r;
}

static int op_create(struct rq *q, const char *name)
{
	static const char *keys[] = { "size", "object_size" };
	char vals[2][256];
	int have[2], r;
	uint64_t size = 0, osz = XV_OBJECT_SIZE_DEFAULT, id;
	struct xvf_header h = { .magic = XVF_HDR_MAGIC, .version = XV_VERSION, .kind = XVF_KIND_VOLUME };

	if ((r = kv_parse(q, "size object_size", keys, vals, have, 2)))
		return r;
	if (!have[0])
		return fail(q, EINVAL, "CREATE %s needs size=BYTES", name);
	if ((r = parse_size_kv(q, "size", vals[0], &size)))
		return r;
	if (have[1] && (r = parse_size_kv(q, "object_size", vals[1], &osz)))
		return r;
	if (!size)
		return fail(q, EINVAL, "size=0: a volume has at least one byte");
	if (osz < XV_OBJECT_SIZE_MIN || osz > XV_OBJECT_SIZE_MAX || (osz & (osz - 1)))
		return fail(q, EINVAL, "object_size=%" PRIu64 " is not a power of two between %u and %u", osz,
			    XV_OBJECT_SIZE_MIN, XV_OBJECT_SIZE_MAX);
	if (size > (1ull << 56))
		return fail(q, EINVAL, "size=%" PRIu64 " is too large (at most 2^56 bytes)", size);
	if (rec_by_name(name))
		return fail(q, EEXIST, "%s exists", name);
	if ((r = reg_reserve(q, name, XVF_KIND_VOLUME, 1, 0, &id)))
		return r;
	h.id = h.data_id = id;
	h.size = size;
	h.object_size = (uint32_t)osz;
	h.hversion = 1;
	h.ctime = (uint64_t)time(NULL);
	fmt(h.name, sizeof(h.name), "%s", name);
	r = map_create(id, xvf_nobj(size, (uint32_t)osz));
	if (!r)
		r = hdr_write(&h);
	if (r) {
		int u = rollback(id);

		if (u)
			peer_log(md.p, 0, "%s: cannot roll back: %s (done at the next start)", name, strerror(u));
		return fail(q, r, "%s: cannot write its map or header: %s", name, strerror(r));
	}
	return reg_set_state(q, id, XVF_ST_READY);
}

static int op_snapshot(struct rq *q, const char *name, struct vol *v, const struct xvf_reg_rec *e)
{
	static const char *keys[] = { "name" };
	char vals[1][256], full[NAME_BUF + 8];
	int have[1], r, known = 0, committed = 0;
	uint64_t sid, newdata;
	struct xvf_header sh, vh;

	if ((r = kv_parse(q, "name", keys, vals, have, 1)))
		return r;
	if (!have[0])
		return fail(q, EINVAL, "SNAPSHOT %s needs name=SNAP", name);
	if ((r = check_plain_name(q, "snapshot name", vals[0])))
		return r;
	if (e->kind != XVF_KIND_VOLUME)
		return fail(q, EINVAL, "%s is a snapshot; SNAPSHOT takes a volume", name);
	fmt(full, sizeof(full), "%s@%s", name, vals[0]);
	if (rec_by_name(full))
		return fail(q, EEXIST, "%s exists", full);
	if ((r = open_elsewhere(q, v)))
		return r;
	if ((r = reg_reserve(q, full, XVF_KIND_SNAPSHOT, 2, v->id, &sid)))
		return r;
	newdata = sid + 1;
	vol_freeze(v);			/* no MAPW/DISCARD on it meanwhile */
	sh = v->h;
	vh = v->h;
	sh.kind = XVF_KIND_SNAPSHOT;
	sh.id = sid;
	sh.parent = v->id;
	sh.hversion = 1;
	sh.ctime = (uint64_t)time(NULL);
	fmt(sh.name, sizeof(sh.name), "%s", full);
	vh.data_id = newdata;
	vh.hversion++;
	r = map_copy(sid, v->id, 0, 0);
	if (!r)
		r = hdr_write(&sh);
	if (!r && fault("snapshot-commit"))
		r = EIO;
	else if (!r && !(r = hdr_write(&vh)) && fault("snapshot-commit-landed"))	/* the commit */
		r = EIO;
	if (!r) {
		v->h = vh;
	} else {
		/*
		 * A failed write may still have landed: the volume's header is
		 * the truth. Read it before any map op runs again; if it cannot
		 * be read, map ops read it themselves (stale) and the record
		 * stays CREATING, settled before the next management op.
		 */
		struct xvf_header now;
		char why[256];

		known = hdr_read(v->id, &now, why, sizeof(why)) == 0;
		if (known)
			v->h = now;
		else
			v->hdr_ok = 0, v->stale = 1;
		committed = known && now.data_id == newdata;
	}
	vol_thaw(v);
	if (r && committed)
		return reg_set_state(q, sid, XVF_ST_READY);
	if (r) {
		if (!known || rollback(sid))
			peer_log(md.p, 0, "%s: left unfinished; settled before the next management op", full);
		return fail(q, r, "%s: cannot write its map or header: %s", full, strerror(r));
	}
	return reg_set_state(q, sid, XVF_ST_READY);
}

static int op_clone(struct rq *q, const char *name, struct vol *s, const struct xvf_reg_rec *e)
{
	static const char *keys[] = { "name", "size" };
	char vals[2][256];
	int have[2], r;
	uint64_t nid, size;
	struct xvf_header h;

	if ((r = kv_parse(q, "name size", keys, vals, have, 2)))
		return r;
	if (e->kind != XVF_KIND_SNAPSHOT)
		return fail(q, EINVAL, "%s is a volume; CLONE takes a snapshot (NAME@SNAP)", name);
	if (!have[0])
		return fail(q, EINVAL, "CLONE %s needs name=NEW", name);
	if ((r = check_plain_name(q, "clone name", vals[0])))
		return r;
	size = s->h.size;
	if (have[1] && (r = parse_size_kv(q, "size", vals[1], &size)))
		return r;
	if (size < s->h.size)
		return fail(q, EINVAL, "size=%" PRIu64 " is smaller than %s (%" PRIu64 " bytes): clones only grow",
			    size, name, s->h.size);
	if (size > (1ull << 56))
		return fail(q, EINVAL, "size=%" PRIu64 " is too large (at most 2^56 bytes)", size);
	if (rec_by_name(vals[0]))
		return fail(q, EEXIST, "%s exists", vals[0]);
	if ((r = reg_reserve(q, vals[0], XVF_KIND_VOLUME, 1, 0, &nid)))
		return r;
	h = s->h;
	h.kind = XVF_KIND_VOLUME;
	h.id = h.data_id = nid;
	h.parent = s->id;
	h.size = size;
	h.hversion = 1;
	h.ctime = (uint64_t)time(NULL);
	fmt(h.name, sizeof(h.name), "%s", vals[0]);
	r = map_copy(nid, s->id, xvf_nobj(s->h.size, s->h.object_size), xvf_nobj(size, s->h.object_size));
	if (!r)
		r = hdr_write(&h);
	if (r) {
		if (rollback(nid))
			peer_log(md.p, 0, "%s: cannot roll back (done at the next start)", vals[0]);
		return fail(q, r, "%s: cannot write its map or header: %s", vals[0], strerror(r));
	}
	return reg_set_state(q, nid, XVF_ST_READY);
}

static int op_update(struct rq *q, const char *name, struct vol *v, const struct xvf_reg_rec *e)
{
	static const char *keys[] = { "size" };
	char vals[1][256], map[64];
	int have[1], r;
	uint64_t size = 0, nobj;
	struct xvf_header h;

	if ((r = kv_parse(q, "size", keys, vals, have, 1)))
		return r;
	if (e->kind != XVF_KIND_VOLUME)
		return fail(q, EROFS, "%s is a snapshot: read-only", name);
	if (!have[0])
		return fail(q, EINVAL, "UPDATE %s needs size=BYTES", name);
	if ((r = parse_size_kv(q, "size", vals[0], &size)))
		return r;
	if (size < v->h.size)
		return fail(q, EINVAL, "size=%" PRIu64 " is smaller than %s (%" PRIu64 " bytes): volumes only grow",
			    size, name, v->h.size);
	if (size > (1ull << 56))
		return fail(q, EINVAL, "size=%" PRIu64 " is too large (at most 2^56 bytes)", size);
	if (size == v->h.size)
		return 0;
	if ((r = open_elsewhere(q, v)))
		return r;
	vol_freeze(v);
	h = v->h;
	nobj = xvf_nobj(size, h.object_size);
	xvf_map_name(map, sizeof(map), v->id);
	/* More holes first (harmless alone), then the header: the commit. */
	r = st_simple(X_TRUNCATE, XF_FUA, map, XVF_MAP_HEAD + nobj * sizeof(struct xvf_map_entry), 0);
	h.size = size;
	h.hversion++;
	if (!r)
		r = hdr_write(&h);
	if (!r) {
		v->h = h;
		r = vol_grow_cache(v, nobj);
		if (r) {	/* the cache only: drop it, it is read again */
			pthread_mutex_lock(&md.mu);
			vol_free_map(v);
			pthread_mutex_unlock(&md.mu);
			r = 0;
		}
	} else {
		v->hdr_ok = 0;	/* read it again: the write may have landed */
		v->stale = 1;
	}
	vol_thaw(v);
	return r ? fail(q, r, "%s: cannot grow: %s", name, strerror(r)) : 0;
}

static int op_delete(struct rq *q, const char *name, struct vol *v, const struct xvf_reg_rec *e)
{
	char list[1024], who[256];
	int r;

	if (q->text[0])
		return fail(q, EINVAL, "DELETE takes no keys");
	r = readers(v, who, sizeof(who));
	if (r > 0)
		return fail(q, EBUSY, "%s is open (read-only) by %s", name, who);
	if (r < 0)
		return fail(q, -r, "%s: cannot look at its reader locks: %s", name, strerror(-r));
	if (e->kind == XVF_KIND_VOLUME) {
		r = lock_holder(v->id, who, sizeof(who));
		if (r == LOCK_HELD)
			return fail(q, EBUSY, "%s is open by %s", name, who);
		if (r)
			return fail(q, r, "%s: cannot look at its lock: %s", name, strerror(r));
		children(v->id, XVF_KIND_SNAPSHOT, list, sizeof(list));
		if (list[0])
			return fail(q, EBUSY, "%s has snapshots: %s (delete them first)", name, list);
	} else {
		children(v->id, XVF_KIND_VOLUME, list, sizeof(list));
		if (list[0])
			return fail(q, EBUSY, "%s has clones that depend on it: %s", name, list);
	}
	vol_freeze(v);
	r = reg_set_state(q, v->id, XVF_ST_DELETING);
	vol_thaw(v);
	if (r)
		return r;
	/* The name is gone (the commit); the objects follow. A failure here is left to the next start. */
	r = gc();
	if (r < 0)
		peer_log(md.p, 1, "%s deleted; removing its objects failed (%s): the next start or fsck does it",
			 name, strerror(-r));
	return 0;
}

/* INFO NAME: key=value lines (XV_INFO_KEYS). */
static int op_info(struct rq *q, const char *name, struct vol *v, const struct xvf_reg_rec *e)
{
	enum { LIST = 65536, OUT = 2 * LIST + 8192 };
	char parent[NAME_BUF] = "-", who[256] = "-", why[256], rd[4096] = "-";
	char *out, *snaps, *clones;
	uint64_t objects = 0, owned = 0;
	int r, n;

	if (q->text[0])
		return fail(q, EINVAL, "INFO takes no keys");
	out = malloc(OUT + 2 * LIST);
	if (!out)
		return fail(q, ENOMEM, "out of memory");
	snaps = out + OUT;
	clones = snaps + LIST;
	snaps[0] = clones[0] = 0;
	if (e->kind == XVF_KIND_VOLUME) {
		children(v->id, XVF_KIND_SNAPSHOT, snaps, LIST);
		int lr = lock_holder(v->id, who, sizeof(who));

		if (lr == 0)
			fmt(who, sizeof(who), "-");
		else if (lr != LOCK_HELD)
			fmt(who, sizeof(who), "? (its lock: %s)", strerror(lr));
	} else {
		children(v->id, XVF_KIND_VOLUME, clones, LIST);
	}
	/* Its readers (ro=1 opens of a volume; a snapshot's openers are its readers). */
	if (readers(v, rd, sizeof(rd)) <= 0)
		fmt(rd, sizeof(rd), "-");
	if (e->kind != XVF_KIND_VOLUME)
		fmt(who, sizeof(who), "%s", rd);
	if (v->h.parent) {
		struct xvf_reg_rec *p = rec_by_id(v->h.parent);

		fmt(parent, sizeof(parent), "%s", p && p->name[0] ? p->name : "(deleted)");
	}
	pthread_mutex_lock(&v->mu);
	r = vol_load(v, why, sizeof(why));
	for (uint64_t i = 0; !r && i < v->nobj; i++) {
		objects += v->map[i] != 0;
		owned += v->map[i] == v->h.data_id;
	}
	pthread_mutex_unlock(&v->mu);
	if (r) {
		free(out);
		return fail(q, r, "%s", why);
	}
	n = fmt(out, OUT,
		     "name=%s\nkind=%s\nsize=%" PRIu64 "\nobject_size=%u\nparent=%s\nsnapshots=%s\nclones=%s\n"
		     "objects=%" PRIu64 "\nbytes=%" PRIu64 "\nopen_by=%s\nid=%" PRIu64 "\nversion=%" PRIu64 "\n"
		     "readers=%s\n",
		     name, e->kind == XVF_KIND_VOLUME ? "volume" : "snapshot", v->h.size, v->h.object_size, parent,
		     snaps[0] ? snaps : "-", clones[0] ? clones : "-", objects, owned * v->h.object_size, who,
		     v->id, v->h.hversion, rd);
	r = reply_text(q, out, (size_t)n);
	free(out);
	return r;
}

static int op_list(struct rq *q)
{
	size_t cap = 4096, o = 0;
	char *out = malloc(cap);
	int r;

	if (!out)
		return fail(q, ENOMEM, "out of memory");
	for (uint32_t k = 0; k < md.nrec; k++) {
		struct xvf_reg_rec e = md.recs[k];
		struct vol *v;
		char why[256], parent[NAME_BUF] = "-";

		if (e.state != XVF_ST_READY)
			continue;
		r = vol_of(&e, &v, why, sizeof(why));
		if (!r && v->h.parent) {
			struct xvf_reg_rec *p = rec_by_id(v->h.parent);

			fmt(parent, sizeof(parent), "%s", p && p->name[0] ? p->name : "(deleted)");
		}
		if (o + NAME_BUF * 2 + 64 > cap) {
			char *n = realloc(out, cap *= 2);

			if (!n) {
				vol_put(v);
				free(out);
				return fail(q, ENOMEM, "out of memory");
			}
			out = n;
		}
		if (r)
			o += (size_t)fmt(out + o, cap - o, "%s\t%s\t?\t?\n", e.name,
					      e.kind == XVF_KIND_VOLUME ? "volume" : "snapshot");
		else
			o += (size_t)fmt(out + o, cap - o, "%s\t%s\t%" PRIu64 "\t%s\n", e.name,
					      e.kind == XVF_KIND_VOLUME ? "volume" : "snapshot", v->h.size, parent);
		vol_put(v);
	}
	r = reply_text(q, out, o);
	free(out);
	return r;
}

/*
 * fsck - count the data objects (named by a READY map, or leaked) and, with
 * @fix, delete the leaked ones. Every data object was created under the
 * data id D of one record (the volume's at the time; frozen into a snapshot
 * later), at an index where that record's own map then named it; any map
 * that names D.i does so because the record of D names it too. So the
 * objects are counted per record: for each index where its map names its
 * own D, one named object; at every other index, D.i is a leak if it
 * exists (one LIST of D's objects; a storage peer without LIST: an INFO
 * per index). Records being deleted keep only objects another
 * map still names. A volume is frozen while its indices are probed, so an
 * object a MAPW has copied but not yet mapped is never taken for a leak.
 */
static int op_fsck(struct rq *q, int fix)
{
	uint64_t named = 0, leaked = 0;
	size_t cap = q->cap, o = 0, hl, ll;
	char *list, head[160];
	int r = 0;

	if (md.reg_bad)
		return fail(q, EIO, "%s", md.reg_msg);
	if (q->text[0])
		return fail(q, EINVAL, "fsck takes no keys");
	list = malloc(cap + 1);
	if (!list)
		return fail(q, ENOMEM, "out of memory");
	list[0] = 0;
	for (uint32_t k = 0; k < md.nrec && !r; k++) {
		struct xvf_reg_rec e = md.recs[k];
		struct vol *v;
		char why[256];
		int frozen = 0, ready = e.state == XVF_ST_READY, listed = EOPNOTSUPP;
		uint8_t *named_other = NULL, *at = NULL;

		if (e.state == XVF_ST_CREATING)
			continue;
		r = vol_of(&e, &v, why, sizeof(why));
		if (r) {
			vol_put(v);
			free(list);
			return fail(q, r, "fsck: %s", why);
		}
		if (ready && e.kind == XVF_KIND_VOLUME) {
			vol_freeze(v);
			frozen = 1;
		} else {
			pthread_mutex_lock(&v->mu);
		}
		r = vol_load(v, why, sizeof(why));
		if (!r && !ready) {
			/* Its objects another map names are named. */
			named_other = malloc(v->nobj ? v->nobj : 1);
			r = named_other ? named_by_others(v->h.data_id, e.id, v->nobj, named_other) : ENOMEM;
			if (r)
				fmt(why, sizeof(why), "cannot read the maps: %s", strerror(r));
		}
		if (!r) {
			/* Which objects of its data id exist: one LIST (else an INFO per index, below). */
			at = malloc(v->nobj ? v->nobj : 1);
			listed = at ? list_present(v->h.data_id, v->nobj, at) : ENOMEM;
			if (listed && listed != EOPNOTSUPP) {
				r = listed;
				fmt(why, sizeof(why), "LIST of the objects of data id %016" PRIx64 ": %s", v->h.data_id,
				    strerror(r));
			}
		}
		for (uint64_t i = 0; !r && i < v->nobj; i++) {
			uint64_t d = v->h.data_id;
			char obj[64];
			int x;

			if (v->map[i] == OWNER_CORRUPT) {
				r = EIO;
				fmt(why, sizeof(why), "entry %" PRIu64 " of the map of %s is corrupt; "
					 "not judging its objects", i, e.name[0] ? e.name : "a deleted record");
				break;
			}
			if (v->map[i] == d && ready) {
				named++;
				continue;
			}
			if (!ready && named_other[i]) {
				named++;
				continue;
			}
			xv_data_name(obj, sizeof(obj), d, i);
			x = listed ? st_exists(obj) : at[i];
			if (x < 0) {
				r = -x;
				fmt(why, sizeof(why), "INFO %s: %s", obj, strerror(r));
				break;
			}
			if (!x)
				continue;
			leaked++;
			if (o + strlen(obj) + 9 < cap)
				o += (size_t)fmt(list + o, cap + 1 - o, "leaked=%s\n", obj);
			if (fix) {
				r = st_delete(obj);
				if (r) {
					fmt(why, sizeof(why), "DELETE %s: %s", obj, strerror(r));
					break;
				}
				peer_log(md.p, 1, "fsck: removed leaked object %s", obj);
			}
		}
		if (frozen)
			vol_thaw(v);
		else
			pthread_mutex_unlock(&v->mu);
		free(named_other);
		free(at);
		vol_put(v);
		if (r) {
			free(list);
			return fail(q, r, "fsck: %s", why);
		}
	}
	if (fix) {
		int g = gc();

		if (g < 0) {
			free(list);
			return fail(q, -g, "fsck: removing deleted records: %s", strerror(-g));
		}
	}
	fmt(head, sizeof(head), "objects=%" PRIu64 "\nnamed=%" PRIu64 "\nleaked=%" PRIu64 "\n",
		 named + leaked, named, leaked);
	hl = strlen(head);
	if (hl > cap) {
		free(list);
		return fail(q, EOVERFLOW, "the reply needs a buffer of at least %zu bytes", hl);
	}
	ll = o;
	while (hl + ll > cap) {		/* as many whole lines as fit */
		char *nl = ll ? memrchr(list, '\n', ll - 1) : NULL;

		ll = nl ? (size_t)(nl - list) + 1 : 0;
	}
	memcpy(q->data, head, hl);
	memcpy(q->data + hl, list, ll);
	q->req->serviced = hl + ll;
	free(list);
	return 0;
}

static int op_mgmt(struct rq *q)
{
	char vname[XV_NAME_MAX + 1], sname[XV_NAME_MAX + 1];
	struct xvf_reg_rec e;
	struct vol *v = NULL;
	int r;

	if (q->op == X_PING)
		return 0;
	if (md.reg_stale && (r = reg_reload()))
		return fail(q, EIO, "the registry cannot be read after a failed write: %s", strerror(r));
	if (!md.reg_bad && (r = settle()))
		return fail(q, r, "an earlier unfinished create cannot be settled: %s", strerror(r));
	if (!strcmp(q->target, XV_T_LIST) && q->op == X_INFO)
		return op_list(q);
	if (!strcmp(q->target, XV_T_FSCK) && (q->op == X_INFO || q->op == X_DELETE))
		return op_fsck(q, q->op == X_DELETE);
	if (xv_split_target(q->target, q->tlen, vname, sname))
		return fail(q, EINVAL, "'%s' is not a volume or snapshot name (1..%u bytes of A-Z a-z 0-9 _ . -, "
			    "not starting with '.' or '-'; NAME@SNAP for a snapshot)", q->target, XV_NAME_MAX);
	if (md.reg_bad && q->op != X_INFO && q->op != X_OPEN && q->op != X_CLOSE)
		return fail(q, EIO, "%s; nothing is changed until it is repaired", md.reg_msg);
	if (q->op == X_CREATE) {
		if (sname[0])
			return fail(q, EINVAL, "'%s': CREATE takes a volume name (snapshots are made by SNAPSHOT)",
				    q->target);
		return op_create(q, q->target);
	}
	r = vol_lookup(q, q->target, &v, &e);
	if (r)
		return r;
	{
		char why[256];

		pthread_mutex_lock(&v->mu);
		if (!v->hdr_ok) {
			r = hdr_read(v->id, &v->h, why, sizeof(why));
			v->hdr_ok = !r;
		}
		pthread_mutex_unlock(&v->mu);
		if (r) {
			vol_put(v);
			return fail(q, r, "%s: %s", q->target, why);
		}
	}
	switch (q->op) {
	case X_OPEN: case X_CLOSE: r = op_open(q, v, &e); break;
	case X_SNAPSHOT: r = op_snapshot(q, q->target, v, &e); break;
	case X_CLONE: r = op_clone(q, q->target, v, &e); break;
	case X_UPDATE: r = op_update(q, q->target, v, &e); break;
	case X_DELETE: r = op_delete(q, q->target, v, &e); break;
	case X_INFO: r = op_info(q, q->target, v, &e); break;
	default: r = fail(q, EOPNOTSUPP, "%s is not a volume op", xseg_op_name(q->op));
	}
	vol_put(v);
	return r;
}

/*
 * startup - read the registry; finish or roll back what a crash left
 * CREATING; finish DELETING records. 0 or an errno (only for a storage peer
 * that cannot be read at all: a corrupt registry starts, refusing changes).
 */
/*
 * store_lock - take XVF_STORE_LOCK with our tag: one mapperd per store (two
 * would each rewrite the registry from their own copy). A holder that is
 * provably dead (a killed mapperd on this host) is broken with a log line;
 * a live one is EBUSY. 0 or an errno.
 */
static int store_lock(int acquire)
{
	struct xc_call k = { .op = acquire ? X_ACQUIRE : X_RELEASE, .target = XVF_STORE_LOCK, .buf_len = 256 };
	int r;

	k.in = md.tag;
	k.in_len = k.size = strlen(md.tag);
	r = st_do(&k);
	if (acquire && r == EBUSY && k.msg[0] && mapperd_holder_dead(k.msg, strlen(k.msg))) {
		char dead[256];

		fmt(dead, sizeof(dead), "%s", k.msg);
		k.flags = XF_FORCE;
		r = st_do(&k);
		if (!r)
			peer_log(md.p, 1, "the store's lock was held by %s, whose process is gone: taken", dead);
	}
	if (acquire && r == EBUSY)
		peer_log(md.p, 0, "another mapperd serves this store: %s holds %s", k.msg, XVF_STORE_LOCK);
	return r;
}

/* The storage peer is not there, or died while it answered: worth waiting for. */
static int storage_gone(int r)
{
	return r == ECONNREFUSED || r == ECONNRESET;
}

/*
 * While start waits for the storage peer, what clients send is failed at
 * once (ECONNREFUSED, the reason in the reply's data as any failure's)
 * instead of waiting in the queue until start is done: the storage peer may
 * stay down, and a client (vlmcd, and through it a block device) must not
 * hang on a mapperd that cannot serve. Once the storage peer's port is bound
 * again nothing is refused: start is about to go on, and what waits is served.
 */
static void refuse_while_waiting(void)
{
	struct xseg_port *sp = xseg_port(md.p->xs, md.storage);
	char msg[128];
	int n;

	if (sp && XSEG_OWNER_STATE(__atomic_load_n(&sp->owner, __ATOMIC_ACQUIRE)) == XSEG_PORT_BOUND)
		return;
	n = snprintf(msg, sizeof(msg), "mapperd is starting: the storage peer on port %u is not running",
		     md.storage);

	for (uint32_t i = 0; i < md.p->nports; i++) {
		struct xseg_request *req;

		while ((req = xseg_accept(md.p->xs, md.p->ports[i]))) {
			uint64_t cap = 0;
			uint8_t *data = xseg_req_buffer(md.p->xs, req, &cap);
			uint32_t op = req->op;	/* the request is the client's once failed */
			int to;

			req->serviced = 0;
			if (data && cap) {
				req->serviced = (uint64_t)n < cap ? (uint64_t)n : cap;
				memcpy(data, msg, (size_t)req->serviced);
			}
			while ((to = xseg_fail(md.p->xs, req, ECONNREFUSED)) == -EAGAIN)
				sched_yield();
			if (to >= 0)
				xseg_signal(md.p->xs, (uint32_t)to);
			peer_log(md.p, 2, "%s refused: %s", xseg_op_name(op), msg);
		}
	}
}

/*
 * Sleep @us while the storage peer is away, failing what clients send
 * meanwhile. Recovery first, at most once a second (as the dispatch loop
 * runs it): a storage peer that died still holds its port until somebody
 * frees it.
 */
static void wait_for_storage(uint64_t us)
{
	static uint64_t last_recovery;
	uint64_t now = xseg_sys_now_ns();

	if (!last_recovery || now - last_recovery >= 1000000000ull) {
		xseg_recover(md.p->xs, NULL);
		last_recovery = now;
	}
	for (uint64_t t = 0; t < us; t += 10000) {
		refuse_while_waiting();
		usleep(10000);
	}
	refuse_while_waiting();
}

static int startup_once(void)
{
	int r;

	pthread_mutex_lock(&md.mgmt);
	xvf_owner_tag(md.tag, sizeof(md.tag), "mapperd");
	for (int tries = 0; storage_gone(r = store_lock(1)) && tries < 600 && !peer_stopping(); tries++) {
		if (tries == 0)
			peer_log(md.p, 0, "waiting for the storage peer on port %u", md.storage);
		wait_for_storage(100000);
	}
	if (r) {
		if (r != EBUSY)
			peer_log(md.p, 0, "cannot take the store's lock %s: %s", XVF_STORE_LOCK, strerror(r));
		pthread_mutex_unlock(&md.mgmt);
		return r;
	}
	for (int tries = 0; storage_gone(r = reg_load()) && tries < 600 && !peer_stopping(); tries++) {
		if (tries == 0)
			peer_log(md.p, 0, "waiting for the storage peer on port %u", md.storage);
		wait_for_storage(100000);
	}
	if (r) {
		peer_log(md.p, 0, "cannot read the registry %s: %s", XVF_REGISTRY, strerror(r));
		pthread_mutex_unlock(&md.mgmt);
		return r;
	}
	if (md.reg_bad) {
		peer_log(md.p, 0, "%s: serving what can be read, changing nothing", md.reg_msg);
		pthread_mutex_unlock(&md.mgmt);
		return 0;
	}
	r = settle();
	if (!r) {
		int g = gc();

		r = g < 0 ? -g : 0;
	}
	pthread_mutex_unlock(&md.mgmt);
	if (r)
		peer_log(md.p, 0, "recovery at start: %s", strerror(r));
	return r;
}

/*
 * startup - take the store, read the registry, settle what a crash left
 * half done. Every step is safe to repeat (the lock is ours again, settling
 * is idempotent), so a storage peer that dies in the middle (ECONNRESET: its
 * requests failed back by recovery) is waited for and the whole start redone,
 * for up to a minute.
 */
static int startup(void)
{
	int r;

	for (int tries = 0; storage_gone(r = startup_once()) && tries < 60 && !peer_stopping(); tries++) {
		peer_log(md.p, 0, "the storage peer on port %u went away during start: again", md.storage);
		wait_for_storage(1000000);
	}
	return r;
}

#endif
