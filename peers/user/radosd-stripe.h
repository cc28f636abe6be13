/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/radosd-stripe.h - radosd's --stripe mode, included by radosd.c
 * after its librados plumbing (rd_, rados_err): striped READ and WRITE as
 * aio fan-outs completed on librados' finisher thread, TRUNCATE, DELETE,
 * DISCARD and WRITE_ZEROES over stripes on the I/O pool.
 */
#ifndef RADOSD_STRIPE_H
#define RADOSD_STRIPE_H

/*
 * Striping (--stripe SIZE): every target is a block target striped over
 * RADOS objects as librbd stripes an image. The head object, named as the
 * target, holds nothing but the target's size (its RADOS size: sparse); byte
 * OFF of the target is byte OFF % SIZE of the stripe object
 * "\003NAME.<OFF / SIZE as 16 hex digits>" (a name no target can have, so
 * stripes never collide with targets). A missing stripe, or the part of one
 * past its end, reads as zeroes. Invariant kept by every op: no stripe holds
 * data past the head's size except while a WRITE that extends the target is
 * in flight (its stripes are written before the head grows), so a READ whose
 * every piece comes back whole needs no look at the head; a piece that is
 * short or missing makes the READ stat the head to clip at the end.
 */
#define STRIPE_PREFIX "\003"
#define STRIPE_WINDOW 64		/* multi-stripe ops: aios in flight at once */

static void stripe_oid(char *out, size_t n, const char *name, uint64_t idx)
{
	snprintf(out, n, STRIPE_PREFIX "%s.%016" PRIx64, name, idx);
}

#define STRIPE_OID_MAX (XSEG_TARGET_MAX + 20)

/*
 * Known sizes: a lower bound of a target's size that this radosd saw (a
 * stat or a growth of the head), so that a WRITE ending within it needs no
 * look at the head. A size is used only while this radosd WATCHES the head
 * (a RADOS watch, set up when the size is first seen): TRUNCATE and DELETE
 * through any radosd NOTIFY the head's watchers before and after they act,
 * and a watcher forgets the size (and bumps the generation) before it acks,
 * so a TRUNCATE through another radosd is seen; a watch that errs (its OSD
 * lost, the head deleted) forgets the entry. A size seen under an older
 * generation is not kept, and a WRITE that began under an older one looks
 * at the head. A process-local mutex: a dead radosd takes it with it.
 */
#define SIZES 64
#define WATCH_SECS 10			/* the OSD drops the watch of a radosd gone this long (librados pings every 5 s) */
#define NOTIFY_MS 3000			/* a TRUNCATE or DELETE waits this long at most for the watchers' acks */

/* A watch on a head, alive from its aio until its unwatch completed. */
struct watch {
	unsigned slot;
	uint64_t epoch;			/* of its slot when it began */
	uint64_t handle;
	struct watch *next;		/* ended, waiting for the exit */
	char name[];
};

static struct {
	pthread_mutex_t mu;
	uint64_t gen, epochs;
	struct {
		uint64_t size;
		uint64_t epoch;		/* which watch the entry is (0: none) */
		int watched;		/* 1 once the watch is registered: only then is size used */
		struct watch *w;
		char name[XSEG_TARGET_MAX + 1];	/* "": empty */
	} e[SIZES];
} sz_ = { .mu = PTHREAD_MUTEX_INITIALIZER };

static unsigned sz_slot(const char *name)
{
	uint32_t h = 2166136261u;

	while (*name)
		h = (h ^ (uint8_t)*name++) * 16777619u;
	return h % SIZES;
}

/*
 * Ended watches are freed only at exit (sizes_shutdown, after
 * rados_watch_flush): a callback of theirs may still be running when their
 * unwatch completes. One per eviction of a watched name from its slot.
 */
static struct watch *graves_;

static void watch_bury(struct watch *w)
{
	pthread_mutex_lock(&sz_.mu);
	w->next = graves_;
	graves_ = w;
	pthread_mutex_unlock(&sz_.mu);
}

static void unwatch_done(rados_completion_t c, void *arg)
{
	rados_aio_release(c);
	watch_bury(arg);
}

/* End watch @w (registered, no longer in its slot): an aio; @w is freed when it completed. */
static void watch_end(struct watch *w)
{
	rados_completion_t c;

	if (rados_aio_create_completion2(w, unwatch_done, &c) == 0) {
		if (rados_aio_unwatch(rd_.io, w->handle, c) == 0)
			return;
		rados_aio_release(c);
	}
	watch_bury(w);	/* not ended: it stays registered and forgets nothing (its epoch is gone) */
}

/* A notify on a watched head (a TRUNCATE or DELETE somewhere): forget its size, then ack. */
static void watch_cb(void *arg, uint64_t notify_id, uint64_t handle, uint64_t notifier, void *data, size_t len)
{
	struct watch *w = arg;

	(void)notifier, (void)data, (void)len;
	pthread_mutex_lock(&sz_.mu);
	sz_.gen++;
	if (sz_.e[w->slot].epoch == w->epoch)
		sz_.e[w->slot].size = 0;
	pthread_mutex_unlock(&sz_.mu);
	rados_notify_ack(rd_.io, w->name, notify_id, handle, NULL, 0);
}

/* The watch failed (its OSD lost, the head deleted): notifies may be missed, forget the entry. */
static void watch_err(void *arg, uint64_t handle, int err)
{
	struct watch *w = arg;
	int mine = 0;

	(void)handle, (void)err;
	pthread_mutex_lock(&sz_.mu);
	sz_.gen++;
	if (sz_.e[w->slot].epoch == w->epoch) {
		sz_.e[w->slot] = (__typeof__(sz_.e[0])){ 0 };
		mine = 1;
	}
	pthread_mutex_unlock(&sz_.mu);
	if (mine)
		watch_end(w);
	/* else: evicted meanwhile, and whoever evicted it ends it */
}

/* The watch's registration came back. */
static void watch_done(rados_completion_t c, void *arg)
{
	struct watch *w = arg;
	int r = rados_aio_get_return_value(c), end = 0;

	pthread_mutex_lock(&sz_.mu);
	if (sz_.e[w->slot].epoch != w->epoch)
		end = r >= 0;		/* evicted while it was being registered: ours to end */
	else if (r >= 0)
		sz_.e[w->slot].watched = 1, sz_.e[w->slot].w = w;
	else
		sz_.e[w->slot] = (__typeof__(sz_.e[0])){ 0 };
	pthread_mutex_unlock(&sz_.mu);
	rados_aio_release(c);
	if (end)
		watch_end(w);
	else if (r < 0)
		watch_bury(w);
}

/* Is @name known to be at least @end bytes? The generation in *gen either way. */
static int size_known(const char *name, uint64_t end, uint64_t *gen)
{
	unsigned i = sz_slot(name);
	int ok;

	pthread_mutex_lock(&sz_.mu);
	*gen = sz_.gen;
	ok = sz_.e[i].watched && !strcmp(sz_.e[i].name, name) && sz_.e[i].size >= end;
	pthread_mutex_unlock(&sz_.mu);
	return ok;
}

/*
 * @name was @size bytes under generation @gen (kept only if no TRUNCATE or
 * DELETE came since). A name new to its slot evicts the one there (its
 * watch ended) and starts a watch of its head; its size is used once the
 * watch is registered.
 */
static void size_seen(const char *name, uint64_t size, uint64_t gen)
{
	unsigned i = sz_slot(name);
	struct watch *old = NULL, *w = NULL;
	rados_completion_t c;
	uint64_t *handle;

	pthread_mutex_lock(&sz_.mu);
	if (gen == sz_.gen) {
		if (strcmp(sz_.e[i].name, name)) {
			w = calloc(1, sizeof(*w) + strlen(name) + 1);
			if (w) {
				if (sz_.e[i].watched)
					old = sz_.e[i].w;	/* registered: ours to end; pending: watch_done ends it */
				w->slot = i;
				w->epoch = ++sz_.epochs;
				strcpy(w->name, name);
				sz_.e[i] = (__typeof__(sz_.e[0])){ .size = size, .epoch = w->epoch };
				snprintf(sz_.e[i].name, sizeof(sz_.e[i].name), "%s", name);
			}
		} else if (size > sz_.e[i].size) {
			sz_.e[i].size = size;
		}
	}
	pthread_mutex_unlock(&sz_.mu);
	if (old)
		watch_end(old);
	if (!w)
		return;
	handle = &w->handle;
	if (rados_aio_create_completion2(w, watch_done, &c) == 0) {
		if (rados_aio_watch2(rd_.io, w->name, c, handle, watch_cb, watch_err, WATCH_SECS, w) == 0)
			return;
		rados_aio_release(c);
	}
	pthread_mutex_lock(&sz_.mu);
	if (sz_.e[i].epoch == w->epoch)
		sz_.e[i] = (__typeof__(sz_.e[0])){ 0 };
	pthread_mutex_unlock(&sz_.mu);
	free(w);
}

/* @name may shrink or go: forget its size and what is being learnt of any size now. */
static void size_forget(const char *name)
{
	unsigned i = sz_slot(name);

	pthread_mutex_lock(&sz_.mu);
	sz_.gen++;
	if (!strcmp(sz_.e[i].name, name))
		sz_.e[i].size = 0;
	pthread_mutex_unlock(&sz_.mu);
}

/*
 * @name is gone (DELETE here): forget it and end the watch of its head at
 * once, rather than when the watch's error comes (a WRITE that creates it
 * again meanwhile would rely on a dead watch).
 */
static void size_drop(const char *name)
{
	unsigned i = sz_slot(name);
	struct watch *w = NULL;

	pthread_mutex_lock(&sz_.mu);
	sz_.gen++;
	if (!strcmp(sz_.e[i].name, name)) {
		if (sz_.e[i].watched)
			w = sz_.e[i].w;		/* pending: watch_done ends it (the epoch is gone) */
		sz_.e[i] = (__typeof__(sz_.e[0])){ 0 };
	}
	pthread_mutex_unlock(&sz_.mu);
	if (w)
		watch_end(w);
}

/*
 * Tell every radosd watching @name's head that it shrinks or goes (they
 * forget its size before they ack). Synchronous, on the I/O pool. A watcher
 * that does not ack within NOTIFY_MS (or --timeout) is not waited for
 * longer: in practice a radosd that was killed, whose watch the OSD keeps
 * up to WATCH_SECS (it knows no size any more); a live one that is merely
 * that slow forgets the size when the notify reaches it.
 */
static void size_notify(const char *name)
{
	char *reply = NULL;
	size_t rlen = 0;
	uint64_t ms = (uint64_t)rd_.timeout * 1000 < NOTIFY_MS ? (uint64_t)rd_.timeout * 1000 : NOTIFY_MS;
	int r = rados_notify2(rd_.io, name, "s", 1, ms, &reply, &rlen);

	if (reply)
		rados_buffer_free(reply);
	if (r < 0 && r != -ENOENT)
		peer_log(rd_.peer, 1, "%s: notifying the radosd that watch it: %s", name, strerror(-r));
}

/* At exit: end the watches (their callbacks done before the I/O context goes). */
static void sizes_shutdown(void)
{
	for (unsigned i = 0; i < SIZES; i++) {
		struct watch *w = NULL;

		pthread_mutex_lock(&sz_.mu);
		if (sz_.e[i].watched)
			w = sz_.e[i].w;
		sz_.e[i] = (__typeof__(sz_.e[0])){ 0 };
		pthread_mutex_unlock(&sz_.mu);
		if (w) {
			rados_unwatch2(rd_.io, w->handle);
			watch_bury(w);
		}
	}
	rados_aio_flush(rd_.io);	/* the unwatches of evictions */
	rados_watch_flush(rd_.cluster);
	pthread_mutex_lock(&sz_.mu);
	while (graves_) {
		struct watch *w = graves_;

		graves_ = w->next;
		free(w);
	}
	pthread_mutex_unlock(&sz_.mu);
}

struct sreq;

struct piece {
	struct sreq *s;
	rados_completion_t c;
	uint64_t len;			/* asked */
	int r;				/* bytes, or a negative errno */
};

/* A striped READ or WRITE in flight: its pieces, then a look at the head. */
struct sreq {
	struct peer *p;
	struct xseg_request *req;
	uint32_t op, n;
	uint32_t left;			/* aios of this phase not yet done (atomic) */
	int phase;			/* 0 the pieces (WRITE: and a stat of the head), 1 the head */
	int tries;
	int known;			/* WRITE: ends within the known size, no stat of the head */
	int armed;			/* released before a head aio starts, acquired by head_cb() */
	uint64_t gen;			/* of the known sizes, when it began */
	uint8_t *data;
	uint64_t off, len, end;
	rados_completion_t hc;		/* the head's stat or write op */
	rados_write_op_t wop;
	uint64_t hsize;
	time_t hmtime;
	int hr;				/* the head's result */
	char name[XSEG_TARGET_MAX + 1];
	struct piece pc[];
};

static void sreq_free(struct sreq *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		if (s->pc[i].c)
			rados_aio_release(s->pc[i].c);
	if (s->hc)
		rados_aio_release(s->hc);
	if (s->wop)
		rados_release_write_op(s->wop);
	free(s);
}

static void sreq_done(struct sreq *s, int err)
{
	struct peer *p = s->p;
	struct xseg_request *req = s->req;

	if (err == EIO)
		peer_log(p, 1, "%s %s (striped): I/O error or timeout", xseg_op_name(s->op), s->name);
	sreq_free(s);
	peer_complete(p, req, err);
}

static void head_cb(rados_completion_t c, void *arg);

/* Stat the head (phase 1, or again while growing it). 0 or an errno. */
static int head_stat(struct sreq *s)
{
	rados_completion_t hc;
	int r;

	if (s->hc)
		rados_aio_release(s->hc);
	s->hc = NULL;
	if (rados_aio_create_completion2(s, head_cb, &s->hc))
		return ENOMEM;
	hc = s->hc;
	/* Once it is started, s may be freed by head_cb: nothing of s after. */
	__atomic_store_n(&s->armed, 1, __ATOMIC_RELEASE);
	r = rados_aio_stat(rd_.io, s->name, hc, &s->hsize, &s->hmtime);
	return r < 0 ? rados_err(r) : 0;
}

/*
 * Raise the head's size to s->end: create it (exclusive) if it is missing,
 * else truncate it up under an assertion of the version the stat saw, so
 * that of two writers growing it at once neither shrinks it back (the loser
 * stats again). 0 (in flight) or an errno.
 */
static int head_grow(struct sreq *s, int missing)
{
	rados_write_op_t wop;
	rados_completion_t hc;
	int r;

	if (s->wop)
		rados_release_write_op(s->wop);
	s->wop = rados_create_write_op();
	if (!s->wop)
		return ENOMEM;
	if (missing) {
		rados_write_op_create(s->wop, LIBRADOS_CREATE_EXCLUSIVE, NULL);
	} else {
		rados_write_op_assert_version(s->wop, rados_aio_get_version(s->hc));
	}
	rados_write_op_truncate(s->wop, s->end);
	rados_aio_release(s->hc);
	s->hc = NULL;
	if (rados_aio_create_completion2(s, head_cb, &s->hc))
		return ENOMEM;
	s->phase = missing ? 2 : 3;
	wop = s->wop;
	hc = s->hc;
	__atomic_store_n(&s->armed, 1, __ATOMIC_RELEASE);
	r = rados_aio_write_op_operate(wop, rd_.io, hc, s->name, NULL, 0);
	return r < 0 ? rados_err(r) : 0;
}

/* A WRITE's pieces and the head's stat are in: grow the head if it ends short. */
static void write_settle(struct sreq *s)
{
	int err = 0;

	for (uint32_t i = 0; i < s->n && !err; i++)
		err = rados_err(s->pc[i].r);
	if (!err && s->known) {
		uint64_t gen;

		s->known = 0;
		if (size_known(s->name, s->end, &gen) && gen == s->gen) {
			s->req->serviced = s->len;
			sreq_done(s, 0);
			return;
		}
		/* A TRUNCATE or DELETE came meanwhile: look at the head after all. */
		s->phase = 0;
		__atomic_store_n(&s->left, 1, __ATOMIC_RELAXED);
		err = head_stat(s);
		if (!err)
			return;
	}
	if (!err && s->hr >= 0 && s->hsize >= s->end)
		size_seen(s->name, s->hsize, s->gen);
	if (!err && s->hr < 0 && s->hr != -ENOENT)
		err = rados_err(s->hr);
	if (!err && (s->hr == -ENOENT || s->hsize < s->end)) {
		if (++s->tries > 16) {
			err = EIO;
		} else {
			err = head_grow(s, s->hr == -ENOENT);
			if (!err)
				return;
		}
	}
	if (!err)
		s->req->serviced = s->len;
	sreq_done(s, err);
}

/* A READ's pieces are in: whole, or clipped at the head's size. */
static void read_settle(struct sreq *s)
{
	uint64_t pos = 0, avail;
	int err = 0, whole = 1;

	for (uint32_t i = 0; i < s->n && !err; i++) {
		if (s->pc[i].r == -ENOENT || (s->pc[i].r >= 0 && (uint64_t)s->pc[i].r < s->pc[i].len))
			whole = 0;
		else if (s->pc[i].r < 0)
			err = rados_err(s->pc[i].r);
	}
	if (!err && !whole && s->phase == 0) {
		s->phase = 1;
		err = head_stat(s);
		if (!err)
			return;
	}
	if (!err && !whole) {
		if (s->hr < 0) {
			err = rados_err(s->hr);
		} else {
			size_seen(s->name, s->hsize, s->gen);
			/* Holes read as zeroes, up to the end of the target. */
			for (uint32_t i = 0; i < s->n; i++) {
				uint64_t got = s->pc[i].r > 0 ? (uint64_t)s->pc[i].r : 0;

				memset(s->data + pos + got, 0, s->pc[i].len - got);
				pos += s->pc[i].len;
			}
			avail = s->hsize > s->off ? s->hsize - s->off : 0;
			s->req->serviced = avail < s->len ? avail : s->len;
		}
	} else if (!err) {
		s->req->serviced = s->len;
	}
	sreq_done(s, err);
}

static void piece_cb(rados_completion_t c, void *arg)
{
	struct piece *pc = arg;
	struct sreq *s = __atomic_load_n(&pc->s, __ATOMIC_ACQUIRE);	/* released before it started */

	pc->r = rados_aio_get_return_value(c);
	/* acq_rel: the last one to finish sees every piece's result. */
	if (__atomic_sub_fetch(&s->left, 1, __ATOMIC_ACQ_REL))
		return;
	if (s->op == X_READ)
		read_settle(s);
	else
		write_settle(s);
}

static void head_cb(rados_completion_t c, void *arg)
{
	struct sreq *s = arg;
	int r = rados_aio_get_return_value(c);

	(void)__atomic_load_n(&s->armed, __ATOMIC_ACQUIRE);	/* what was written before it started */

	switch (s->phase) {
	case 0:			/* the WRITE's stat, alongside its pieces */
		s->hr = r;
		if (__atomic_sub_fetch(&s->left, 1, __ATOMIC_ACQ_REL))
			return;
		write_settle(s);
		return;
	case 1:			/* the READ's stat, after its pieces */
		s->hr = r;
		read_settle(s);
		return;
	default:		/* 2: created, 3: grown; a writer in between: look again */
		if (r >= 0) {
			size_seen(s->name, s->end, s->gen);
			s->req->serviced = s->len;
			sreq_done(s, 0);
			return;
		}
		if ((s->phase == 2 && r == -EEXIST) || (s->phase == 3 && (r == -ERANGE || r == -EOVERFLOW ||
								      r == -ENOENT))) {
			s->phase = 0;
			__atomic_store_n(&s->left, 1, __ATOMIC_RELAXED);
			r = head_stat(s);
			if (!r)
				return;
			sreq_done(s, r);
			return;
		}
		sreq_done(s, rados_err(r));
	}
}

/* A striped READ or WRITE of len > 0: one aio per stripe it touches (and a head stat for a WRITE). */
static int submit_striped(struct peer *p, struct xseg_request *req, const char *name, uint32_t op, uint8_t *data,
			  uint64_t off, uint64_t len)
{
	uint64_t st = rd_.stripe, first = off / st, last = (off + len - 1) / st, pos = 0;
	uint32_t n = (uint32_t)(last - first + 1);
	struct sreq *s = calloc(1, sizeof(*s) + n * sizeof(struct piece));
	char oid[STRIPE_OID_MAX];
	uint32_t started = 0;
	int r = 0, hstarted = 0, head;
	rados_completion_t hc;

	if (!s)
		return ENOMEM;
	*s = (struct sreq){ .p = p, .req = req, .op = op, .n = n, .data = data, .off = off, .len = len,
			    .end = off + len };
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->known = size_known(name, s->end, &s->gen) && op == X_WRITE;
	req->serviced = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (rados_aio_create_completion2(&s->pc[i], piece_cb, &s->pc[i].c)) {
			sreq_free(s);
			return ENOMEM;
		}
	}
	if (op == X_WRITE && !s->known && rados_aio_create_completion2(s, head_cb, &s->hc)) {
		sreq_free(s);
		return ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint64_t soff = (off + pos) - (first + i) * st, plen = st - soff;

		s->pc[i].len = plen > len - pos ? len - pos : plen;
		pos += s->pc[i].len;
	}
	/*
	 * Every aio counted, and all the callbacks read written, before the
	 * first starts (pc->s and armed are the releases TSan sees: librados'
	 * own locks are invisible to it): the last callback settles.
	 */
	head = op == X_WRITE && !s->known;
	hc = s->hc;
	__atomic_store_n(&s->left, n + head, __ATOMIC_RELAXED);
	/*
	 * Once the last aio is started, s may be settled and freed on a
	 * callback thread: from here on only locals, and s only while an aio
	 * not yet started (or the error's skip) keeps it alive.
	 */
	pos = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t idx = first + i, soff = (off + pos) - idx * st, plen = s->pc[i].len;
		rados_completion_t c = s->pc[i].c;

		stripe_oid(oid, sizeof(oid), name, idx);
		__atomic_store_n(&s->pc[i].s, s, __ATOMIC_RELEASE);
		r = op == X_READ ? rados_aio_read(rd_.io, oid, c, (char *)data + pos, (size_t)plen, soff) :
			rados_aio_write(rd_.io, oid, c, (const char *)data + pos, (size_t)plen, soff);
		if (r < 0)
			break;
		started++;
		pos += plen;
	}
	if (r >= 0 && head) {
		uint64_t *hsize = &s->hsize;
		time_t *hmtime = &s->hmtime;

		__atomic_store_n(&s->armed, 1, __ATOMIC_RELEASE);
		r = rados_aio_stat(rd_.io, name, hc, hsize, hmtime);
		if (r >= 0)
			hstarted = 1;
	}
	if (r < 0) {
		/*
		 * Not all started: those in flight complete into s, so it is
		 * the last callback's to settle; the ones never started count
		 * as failed with this error.
		 */
		uint32_t skip = (n - started) + (head && !hstarted);

		peer_log(p, 1, "%s %s (striped): %s", xseg_op_name(op), name, strerror(-r));
		for (uint32_t i = started; i < n; i++)
			s->pc[i].r = r;
		if (op == X_WRITE && !hstarted)
			s->hr = r;
		s->known = 0;	/* settle on the error */
		if (!started && !hstarted) {
			sreq_free(s);
			return rados_err(r);
		}
		if (!__atomic_sub_fetch(&s->left, skip, __ATOMIC_ACQ_REL)) {
			if (op == X_READ)
				read_settle(s);
			else
				write_settle(s);
		}
	}
	return PEER_ASYNC;
}

/* Remove stripes [first, last] of @name, STRIPE_WINDOW at a time; a missing one is fine. 0 or -errno. */
static int stripes_remove(const char *name, uint64_t first, uint64_t last)
{
	rados_completion_t c[STRIPE_WINDOW];
	char oid[STRIPE_OID_MAX];
	int err = 0;

	for (uint64_t at = first; at <= last && !err;) {
		uint32_t k = 0;

		for (; k < STRIPE_WINDOW && at <= last; k++, at++) {
			int r;

			if (rados_aio_create_completion2(NULL, NULL, &c[k])) {
				err = -ENOMEM;
				break;
			}
			stripe_oid(oid, sizeof(oid), name, at);
			r = rados_aio_remove(rd_.io, oid, c[k]);
			if (r < 0) {
				rados_aio_release(c[k]);
				err = r;
				break;
			}
		}
		for (uint32_t i = 0; i < k; i++) {
			int r;

			rados_aio_wait_for_complete(c[i]);
			r = rados_aio_get_return_value(c[i]);
			if (r < 0 && r != -ENOENT && !err)
				err = r;
			rados_aio_release(c[i]);
		}
	}
	return err;
}

/* Zero [soff, soff+len) of stripe @idx (truncate it at soff if @cut): a missing stripe reads as zeroes already. */
static int stripe_part(const char *name, uint64_t idx, uint64_t soff, uint64_t len, int cut)
{
	char oid[STRIPE_OID_MAX];
	rados_write_op_t op = rados_create_write_op();
	int r;

	if (!op)
		return -ENOMEM;
	stripe_oid(oid, sizeof(oid), name, idx);
	rados_write_op_assert_exists(op);
	if (cut)
		rados_write_op_truncate(op, soff);
	else
		rados_write_op_zero(op, soff, len);	/* to its end: the OSD truncates, a hole either way */
	r = rados_write_op_operate(op, rd_.io, oid, NULL, 0);
	rados_release_write_op(op);
	return r == -ENOENT ? 0 : r;
}

/* Make [off, end) of a striped target zeroes: whole stripes removed, the ends zeroed. */
static int stripes_zero(const char *name, uint64_t off, uint64_t end)
{
	uint64_t st = rd_.stripe, a = (off + st - 1) / st, b = end / st;	/* whole stripes [a, b) */
	int r = 0;

	if (a > b) /* within one stripe */
		return stripe_part(name, off / st, off % st, end - off, 0);
	if (off % st)
		r = stripe_part(name, off / st, off % st, st - off % st, 0);
	if (r >= 0 && a < b)
		r = stripes_remove(name, a, b - 1);
	if (r >= 0 && end % st)
		r = stripe_part(name, b, 0, end % st, 0);
	return r;
}

/* TRUNCATE a striped target to @size: the stripes past it first, then the head. */
static int striped_truncate(const char *name, uint64_t size)
{
	uint64_t cur, st = rd_.stripe;
	time_t mt;
	rados_write_op_t op;
	int r = rados_stat(rd_.io, name, &cur, &mt);

	if (r < 0)
		return r;
	size_forget(name);
	size_notify(name);	/* every radosd forgets its size before it shrinks */
	if (size < cur) {
		uint64_t keep = (size + st - 1) / st;	/* stripes [0, keep) stay */

		r = stripes_remove(name, keep, (cur - 1) / st);
		if (r >= 0 && size % st)
			r = stripe_part(name, size / st, size % st, 0, 1);
		if (r < 0)
			return r;
	}
	op = rados_create_write_op();
	if (!op)
		return -ENOMEM;
	rados_write_op_assert_exists(op);
	rados_write_op_truncate(op, size);
	r = rados_write_op_operate(op, rd_.io, name, NULL, 0);
	rados_release_write_op(op);
	size_forget(name);
	size_notify(name);	/* and what they learnt of it meanwhile */
	return r;
}

/* DELETE a striped target: its stripes, then the head. */
static int striped_delete(const char *name)
{
	uint64_t cur;
	time_t mt;
	int r = rados_stat(rd_.io, name, &cur, &mt);

	if (r < 0)
		return r;
	size_forget(name);
	size_notify(name);	/* removing the head breaks the watches too */
	if (cur)
		r = stripes_remove(name, 0, (cur - 1) / rd_.stripe);
	if (r >= 0)
		r = rados_remove(rd_.io, name);
	size_drop(name);
	return r;
}

/* DISCARD / WRITE_ZEROES of a striped target, clipped to its size. */
static int striped_zero(const char *name, uint64_t off, uint64_t len, uint64_t *done)
{
	uint64_t cur, end;
	time_t mt;
	int r = rados_stat(rd_.io, name, &cur, &mt);

	*done = 0;
	if (r < 0)
		return r;
	end = len > UINT64_MAX - off ? UINT64_MAX : off + len;
	if (end > cur)
		end = cur;
	if (off >= end)
		return 0;
	r = stripes_zero(name, off, end);
	if (r >= 0)
		*done = end - off;
	return r;
}


#endif
