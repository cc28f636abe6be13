/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mapperd - the volume mapper: keeps the registry of volumes and snapshots,
 * their headers and their maps as objects at a storage peer (filed, radosd),
 * and answers MAPR/MAPW/DISCARD, OPEN/CLOSE and the management ops of
 * peers/user/volume.h. Formats: peers/user/xvformat.h; prose and pictures:
 * docs/volumes.md.
 *
 * Every request is served on the framework's I/O pool; each pool thread
 * talks to the storage peer synchronously on its own dynamic port
 * (xclient.h). No state lives outside the storage peer: the registry, the
 * headers and the maps are read at need and cached (maps within --cache,
 * least recently used first out), and every change is durable at the storage
 * peer (FUA) before it is acknowledged, in an order that leaves the old or
 * the new state after a crash, plus at worst objects that .fsck removes.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "peer.h"
#include "storage.h"
#include "volume.h"
#include "xclient.h"
#include "xvformat.h"

#define HDR_SIZE ((uint64_t)sizeof(struct xvf_header))
#define REC_SIZE ((uint64_t)sizeof(struct xvf_reg_rec))
#define NAME_BUF (XVF_FULLNAME_MAX + 1)
/* Cache bytes per cached map entry: its owner and its busy flag. */
#define ENTRY_COST (sizeof(uint64_t) + 1)

/* A volume or snapshot mapperd knows (one per registry record, READY or DELETING). */
struct vol {
	struct vol *next;
	uint64_t id;
	char name[NAME_BUF];		/* "" once deleting */
	uint32_t refs;			/* under md.mu */
	int gone;			/* removed from the registry: freed at the last put */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* Under mu. */
	int hdr_ok;			/* h is loaded and valid */
	struct xvf_header h;
	uint64_t *map;			/* owners per index, cached; NULL if not loaded */
	uint8_t *busy;			/* per index: a MAPW/DISCARD is changing it */
	uint64_t nobj;			/* entries in map */
	int frozen;			/* a management op holds it: map ops wait */
	int stale;			/* a map write failed: the cache may differ from the storage */
	uint32_t active;		/* map ops in flight */
	uint64_t last_use;
	/*
	 * Under md.mgmt (every OPEN/CLOSE/INFO/DELETE runs under it): the reader
	 * slots that may be held. Until a probe of every slot (readers()) it
	 * is unknown (rd_known 0: all may be); then a taken slot is added and
	 * a released one dropped, so the probes that follow skip known-free
	 * slots. Every reader lock of the store is taken by this process (the
	 * store lock admits one mapperd), so nothing else can set one.
	 */
	uint32_t rd_maybe;
	int rd_known;
};

static struct md {
	struct peer *p;
	uint32_t storage;		/* the storage peer's port */
	uint64_t cache_max;		/* bytes of cached map entries */
	uint64_t cache_bytes;		/* under mu */
	uint64_t chunk;			/* bytes per storage request (the segment's request size) */
	pthread_mutex_t mgmt;		/* management ops, OPEN/CLOSE: one at a time */
	pthread_mutex_t mu;		/* the registry copy and the vol list */
	struct xvf_reg_head rh;
	struct xvf_reg_rec *recs;
	uint32_t nrec;
	int reg_bad;			/* the registry is corrupt: nothing is changed */
	int reg_usable;			/* its head is sound: the sound records serve */
	int reg_stale;			/* a write failed: read it again before the next change */
	char reg_msg[200];
	struct vol *vols;
	uint64_t clock;
	char tag[160];			/* our owner tag (HOST:PID:STARTTIME:mapperd) */
	char fault[32];			/* a test hook ($XSEG_MAPPERD_FAULT): below */
	int no_list;			/* fault list-unsupported: as a storage peer without LIST */
	int fault_armed;
} md = { .mgmt = PTHREAD_MUTEX_INITIALIZER, .mu = PTHREAD_MUTEX_INITIALIZER,
	 .cache_max = 64ull << 20 };

/* snprintf for messages and names, which may be cut short (never unterminated). */
__attribute__((format(printf, 3, 4)))
static int fmt(char *buf, size_t n, const char *f, ...)
{
	va_list ap;
	int r;

	va_start(ap, f);
	r = vsnprintf(buf, n, f, ap);
	va_end(ap);
	return r;
}

/*
 * A test hook: with XSEG_MAPPERD_FAULT=WHAT in its environment, mapperd
 * fails the first write at the point WHAT names once, with EIO, while the
 * storage peer stays up (logged at start and when it fires). WHAT:
 *   snapshot-commit         the volume's header write that commits a
 *                           SNAPSHOT fails without writing;
 *   snapshot-commit-landed  it is written, and then reported failed (as a
 *                           reply lost after the write landed).
 *   list-unsupported        every LIST is taken as answered EOPNOTSUPP (as
 *                           by a storage peer without it), for good.
 * Tests only (test/peers/mapperd-fault.h); nothing else reads it.
 */
static int fault(const char *what)
{
	if (!md.fault_armed || strcmp(md.fault, what))
		return 0;
	if (!__atomic_exchange_n(&md.fault_armed, 0, __ATOMIC_ACQ_REL))
		return 0;
	peer_log(md.p, 0, "test hook: %s fails once (EIO)", what);
	return 1;
}

/* ------------------------------------------------------------ one request */

struct rq {
	struct xseg_request *req;
	uint8_t *data;
	uint64_t cap;			/* bytes of data we may use */
	uint32_t op;
	uint64_t off, size;
	char target[XSEG_TARGET_MAX + 1];
	uint32_t tlen;
	char text[4096];		/* the request's key=value text, NUL-terminated */
};

/* Fail @q with @err and a one-line message in its data (volume.h). */
__attribute__((format(printf, 3, 4)))
static int fail(struct rq *q, int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = strlen(msg);
	if (n > q->cap)
		n = (size_t)q->cap;
	if (n)
		memcpy(q->data, msg, n);
	q->req->serviced = n;
	peer_log(md.p, 2, "%s %s: %s (%s)", xseg_op_name(q->op), q->target, msg, strerror(err));
	return err;
}

/* Reply with text @s (served). EOVERFLOW if it does not fit. */
static int reply_text(struct rq *q, const char *s, size_t n)
{
	if (n > q->cap)
		return fail(q, EOVERFLOW, "the reply needs %zu bytes, the request's buffer has %" PRIu64, n, q->cap);
	memcpy(q->data, s, n);
	q->req->serviced = n;
	return 0;
}

/* ------------------------------------------------------- the storage peer */

static __thread struct xc tl_xc;

/*
 * How long a request to the storage peer waits for a free request or
 * buffer of the segment (clients, vlmcd and the other pool threads may hold
 * them all for a while): one minute, as for a storage peer that is not
 * there yet; then it fails EAGAIN/ENOBUFS naming the wait.
 */
#define MD_WAIT_MS 60000u

static int st_do(struct xc_call *k)
{
	uint64_t waits;
	int r;

	if (!tl_xc.bound) {
		r = xc_bind(&tl_xc, md.p->xs, md.storage);
		if (r) {
			peer_log(md.p, 0, "cannot bind a client port: %s", strerror(r));
			return r;
		}
		tl_xc.wait_ms = MD_WAIT_MS;
		tl_xc.stopping = peer_stopping;
	}
	waits = tl_xc.waits;
	r = xc_do(&tl_xc, k);
	if (tl_xc.waits != waits)
		peer_log(md.p, r == EAGAIN || r == ENOBUFS ? 0 : 2, "%s %s: %s a free request of the segment",
			 xseg_op_name(k->op), k->target ? k->target : "", r == EAGAIN || r == ENOBUFS ?
			 "gave up waiting for" : "waited for");
	return r;
}

static int st_simple(uint32_t op, uint32_t flags, const char *name, uint64_t off, uint64_t size)
{
	struct xc_call k = { .op = op, .flags = flags, .target = name, .offset = off, .size = size };

	return st_do(&k);
}

static int st_read(const char *name, uint64_t off, void *buf, uint64_t len, uint64_t *got)
{
	struct xc_call k = { .op = X_READ, .target = name, .offset = off, .size = len, .buf_len = len,
			     .out = buf, .out_len = len };
	int r = st_do(&k);

	*got = r ? 0 : k.serviced;
	return r;
}

static int st_write(const char *name, uint64_t off, const void *buf, uint64_t len, uint32_t flags)
{
	struct xc_call k = { .op = X_WRITE, .flags = flags, .target = name, .offset = off, .size = len,
			     .in = buf, .in_len = len };
	int r = st_do(&k);

	return r ? r : k.serviced == len ? 0 : EIO;
}

/* COPY @src over @dst, durably. */
static int st_copy(const char *dst, const char *src)
{
	struct xc_call k = { .op = X_COPY, .flags = XF_FUA, .target = dst, .size = strlen(src),
			     .in = src, .in_len = strlen(src) };

	return st_do(&k);
}

static int st_delete(const char *name)
{
	int r = st_simple(X_DELETE, 0, name, 0, 0);

	return r == ENOENT ? 0 : r;
}

/*
 * st_list - call @fn(@arg, name) for each object whose name starts with
 * @prefix, in order, through LIST pages of the request size. 0, an errno
 * of the storage peer (EOPNOTSUPP: it has no LIST; radosd, older filed),
 * or @fn's nonzero return.
 */
static int st_list(const char *prefix, int (*fn)(void *arg, const char *name), void *arg)
{
	char after[XSEG_TARGET_MAX + 1] = "";
	uint64_t len = md.chunk;
	char *buf;
	int r = 0;

	if (md.no_list)
		return EOPNOTSUPP;
	buf = malloc(len + 1);
	if (!buf)
		return ENOMEM;
	for (;;) {
		struct xc_call k = { .op = X_LIST, .target = prefix, .tlen = (uint32_t)strlen(prefix),
				     .size = strlen(after), .in = after, .in_len = strlen(after), .buf_len = len,
				     .out = buf, .out_len = len };
		char *s, *nl;

		r = st_do(&k);
		if (r || !k.serviced || k.serviced > len)
			break;
		buf[k.serviced] = 0;
		for (s = buf; !r && (nl = strchr(s, '\n')); s = nl + 1) {
			*nl = 0;
			r = fn(arg, s);
			fmt(after, sizeof(after), "%s", s);
		}
		if (r || s == buf)	/* nothing whole came: do not ask again for the same */
			break;
	}
	free(buf);
	return r;
}

/* Does object @name exist? 1, 0, or -errno. */
static int st_exists(const char *name)
{
	uint8_t b[8];
	struct xc_call k = { .op = X_INFO, .target = name, .size = 8, .buf_len = 8, .out = b, .out_len = 8 };
	int r = st_do(&k);

	return r == 0 ? 1 : r == ENOENT ? 0 : -r;
}

/* ------------------------------------------------------------ the registry */

static int reg_load(void)
{
	uint64_t got, total, off;
	struct xvf_reg_head h;
	int r = st_read(XVF_REGISTRY, 0, &h, sizeof(h), &got);

	md.reg_bad = 0;
	md.reg_usable = 0;
	md.reg_msg[0] = 0;
	if (r == ENOENT || (!r && got == 0)) {
		memset(&md.rh, 0, sizeof(md.rh));
		md.rh.magic = XVF_REG_MAGIC;
		md.rh.version = XV_VERSION;
		md.rh.next_id = 1;
		md.rh.rec_size = (uint32_t)REC_SIZE;
		md.nrec = 0;
		md.reg_usable = 1;
		return 0;
	}
	if (r)
		return r;
	if (got != sizeof(h) || h.magic != XVF_REG_MAGIC || !XVF_SEALED(&h) || h.rec_size != REC_SIZE) {
		md.reg_bad = 1;
		fmt(md.reg_msg, sizeof(md.reg_msg), "the registry %s is corrupt (its head %s)", XVF_REGISTRY,
			 got != sizeof(h) ? "is short" : h.magic != XVF_REG_MAGIC ? "has a bad magic" :
			 !XVF_SEALED(&h) ? "fails its checksum" : "has a bad record size");
		return 0;
	}
	if (h.version != XV_VERSION) {
		md.reg_bad = 1;
		fmt(md.reg_msg, sizeof(md.reg_msg), "the registry %s has version %u; this mapperd knows %u",
			 XVF_REGISTRY, h.version, XV_VERSION);
		return 0;
	}
	md.rh = h;
	free(md.recs);
	md.recs = calloc(h.count ? h.count : 1, REC_SIZE);
	if (!md.recs)
		return ENOMEM;
	total = (uint64_t)h.count * REC_SIZE;
	for (off = 0; off < total;) {
		uint64_t n = total - off < md.chunk ? total - off : md.chunk;

		r = st_read(XVF_REGISTRY, sizeof(h) + off, (uint8_t *)md.recs + off, n, &got);
		if (r)
			return r;
		if (got != n) {
			md.reg_bad = 1;
			fmt(md.reg_msg, sizeof(md.reg_msg), "the registry %s is corrupt (shorter than its %u records)",
				 XVF_REGISTRY, h.count);
			break;
		}
		off += n;
	}
	md.nrec = h.count;
	md.reg_usable = !md.reg_bad;
	for (uint32_t i = 0; i < md.nrec && md.reg_usable; i++) {
		struct xvf_reg_rec *e = &md.recs[i];

		if (!XVF_SEALED(e) || memchr(e->name, 0, sizeof(e->name)) == NULL) {
			/* Kept out of every lookup; the others serve, nothing is changed. */
			if (!md.reg_bad)
				fmt(md.reg_msg, sizeof(md.reg_msg), "the registry %s is corrupt (record %u fails its "
				    "checksum)", XVF_REGISTRY, i);
			md.reg_bad = 1;
			e->state = 0;
			e->name[0] = 0;
		}
	}
	return 0;
}

/* Write the registry copy: a new object, flushed, renamed over the old one. */
static int reg_save(void)
{
	uint64_t total, off;
	uint8_t *img;
	int r;

	/* An image taken under mu: map ops read the records meanwhile. */
	pthread_mutex_lock(&md.mu);
	md.rh.count = md.nrec;
	md.rh.generation++;
	XVF_SEAL(&md.rh);
	for (uint32_t i = 0; i < md.nrec; i++)
		XVF_SEAL(&md.recs[i]);
	total = sizeof(md.rh) + (uint64_t)md.nrec * REC_SIZE;
	img = malloc(total);
	if (img) {
		memcpy(img, &md.rh, sizeof(md.rh));
		memcpy(img + sizeof(md.rh), md.recs, total - sizeof(md.rh));
	}
	pthread_mutex_unlock(&md.mu);
	if (!img)
		return ENOMEM;
	r = st_delete(XVF_REGISTRY_NEW);
	for (off = 0; !r && off < total;) {
		uint64_t n = total - off < md.chunk ? total - off : md.chunk;

		r = st_write(XVF_REGISTRY_NEW, off, img + off, n, 0);
		off += n;
	}
	free(img);
	if (!r)
		r = st_simple(X_FLUSH, 0, XVF_REGISTRY_NEW, 0, 0);
	if (!r) {
		struct xc_call k = { .op = X_RENAME, .flags = XF_FUA, .target = XVF_REGISTRY_NEW,
				     .size = strlen(XVF_REGISTRY), .in = XVF_REGISTRY, .in_len = strlen(XVF_REGISTRY) };

		r = st_do(&k);
	}
	if (r)
		peer_log(md.p, 0, "cannot write the registry: %s", strerror(r));
	return r;
}

static struct xvf_reg_rec *rec_by_id(uint64_t id)
{
	for (uint32_t i = 0; i < md.nrec; i++)
		if (md.recs[i].id == id)
			return &md.recs[i];
	return NULL;
}

static struct xvf_reg_rec *rec_by_name(const char *name)
{
	for (uint32_t i = 0; i < md.nrec; i++)
		if (md.recs[i].state && md.recs[i].state != XVF_ST_DELETING && !strcmp(md.recs[i].name, name))
			return &md.recs[i];
	return NULL;
}

/* Append a record (under mu); NULL if out of memory. */
static struct xvf_reg_rec *rec_add(void)
{
	struct xvf_reg_rec *n = realloc(md.recs, (md.nrec + 1) * REC_SIZE);

	if (!n)
		return NULL;
	md.recs = n;
	memset(&md.recs[md.nrec], 0, REC_SIZE);
	return &md.recs[md.nrec++];
}

static void rec_remove(uint64_t id)
{
	for (uint32_t i = 0; i < md.nrec; i++)
		if (md.recs[i].id == id) {
			memmove(&md.recs[i], &md.recs[i + 1], (md.nrec - i - 1) * REC_SIZE);
			md.nrec--;
			return;
		}
}

/* --------------------------------------------------------------- volumes */

/* The vol of record id @id (created on first use), with a reference. Under md.mu. */
static struct vol *vol_get_locked(uint64_t id, const char *name)
{
	struct vol *v;

	for (v = md.vols; v; v = v->next)
		if (v->id == id && !v->gone)
			break;
	if (!v) {
		v = calloc(1, sizeof(*v));
		if (!v)
			return NULL;
		v->id = id;
		pthread_mutex_init(&v->mu, NULL);
		pthread_cond_init(&v->cv, NULL);
		fmt(v->name, sizeof(v->name), "%s", name);
		v->next = md.vols;
		md.vols = v;
	}
	v->refs++;
	return v;
}

static void vol_free_map(struct vol *v)
{
	if (v->map) {
		md.cache_bytes -= v->nobj * ENTRY_COST;	/* under md.mu */
		free(v->map);
		free(v->busy);
		v->map = NULL;
		v->busy = NULL;
		v->nobj = 0;
	}
}

static void vol_put(struct vol *v)
{
	struct vol **pp;

	pthread_mutex_lock(&md.mu);
	if (--v->refs == 0 && v->gone) {
		for (pp = &md.vols; *pp; pp = &(*pp)->next)
			if (*pp == v) {
				*pp = v->next;
				break;
			}
		vol_free_map(v);
		pthread_mutex_destroy(&v->mu);
		pthread_cond_destroy(&v->cv);
		free(v);
	}
	pthread_mutex_unlock(&md.mu);
}

/* Find a READY record by name and take its vol. ENOENT/EIO with a message. */
static int vol_lookup(struct rq *q, const char *name, struct vol **out, struct xvf_reg_rec *rec)
{
	struct xvf_reg_rec *e;

	pthread_mutex_lock(&md.mu);
	if (!md.reg_usable) {
		pthread_mutex_unlock(&md.mu);
		return fail(q, EIO, "%s", md.reg_msg);
	}
	e = rec_by_name(name);
	if (!e || e->state != XVF_ST_READY) {
		int creating = e && e->state == XVF_ST_CREATING;

		pthread_mutex_unlock(&md.mu);
		if (creating)
			return fail(q, EAGAIN, "%s is being created", name);
		if (md.reg_bad)
			return fail(q, EIO, "no sound record names %s: %s", name, md.reg_msg);
		return fail(q, ENOENT, "no volume or snapshot named %s", name);
	}
	if (rec)
		*rec = *e;
	*out = vol_get_locked(e->id, e->name);
	pthread_mutex_unlock(&md.mu);
	return *out ? 0 : fail(q, ENOMEM, "out of memory");
}

static int hdr_read(uint64_t id, struct xvf_header *h, char *why, size_t wn)
{
	char name[64];
	uint64_t got;
	int r;

	xvf_header_name(name, sizeof(name), id);
	r = st_read(name, 0, h, HDR_SIZE, &got);
	if (r) {
		fmt(why, wn, "cannot read the header %s: %s", name, strerror(r));
		return r == ENOENT ? EIO : r;
	}
	if (got != HDR_SIZE || h->magic != XVF_HDR_MAGIC || !XVF_SEALED(h) || h->id != id ||
	    h->version != XV_VERSION || !h->object_size || (h->object_size & (h->object_size - 1))) {
		fmt(why, wn, "the header %s is corrupt (%s)", name,
			 got != HDR_SIZE ? "short" : h->magic != XVF_HDR_MAGIC ? "bad magic" :
			 !XVF_SEALED(h) ? "checksum mismatch" : h->id != id ? "names another id" :
			 h->version != XV_VERSION ? "unknown version" : "bad object size");
		return EIO;
	}
	return 0;
}

static int hdr_write(struct xvf_header *h)
{
	char name[64];

	xvf_header_name(name, sizeof(name), h->id);
	XVF_SEAL(h);
	return st_write(name, 0, h, HDR_SIZE, XF_FUA);
}

static int map_head_write(uint64_t id)
{
	char name[64];
	struct xvf_map_head mh = { .magic = XVF_MAP_MAGIC, .version = XV_VERSION,
				   .entry_size = sizeof(struct xvf_map_entry), .id = id };

	xvf_map_name(name, sizeof(name), id);
	XVF_SEAL(&mh);
	return st_write(name, 0, &mh, sizeof(mh), XF_FUA);
}

/* Evict cached maps, least recently used first, until the cache fits (not @keep's). */
static void cache_trim(struct vol *keep)
{
	pthread_mutex_lock(&md.mu);
	while (md.cache_bytes > md.cache_max) {
		struct vol *best = NULL;

		for (struct vol *v = md.vols; v; v = v->next)
			if (v != keep && v->map && (!best || v->last_use < best->last_use))
				if (pthread_mutex_trylock(&v->mu) == 0) {
					if (!v->active && !v->frozen) {
						if (best)
							pthread_mutex_unlock(&best->mu);
						best = v;
					} else {
						pthread_mutex_unlock(&v->mu);
					}
				}
		if (!best)
			break;
		peer_log(md.p, 2, "cache: dropped the map of %s (%" PRIu64 " entries)", best->name, best->nobj);
		vol_free_map(best);
		pthread_mutex_unlock(&best->mu);
	}
	pthread_mutex_unlock(&md.mu);
}

/*
 * vol_load - header and map of @v into memory (under v->mu). EIO with a
 * message in @why for a corrupt header or map head; corrupt entries load as
 * UINT64_MAX, reported when a request touches them.
 */
#define OWNER_CORRUPT UINT64_MAX
static int vol_load(struct vol *v, char *why, size_t wn)
{
	char name[64];
	struct xvf_map_head mh;
	uint64_t got, nobj, off, bytes;
	uint8_t *buf;
	int r;

	v->last_use = __atomic_add_fetch(&md.clock, 1, __ATOMIC_RELAXED);
	if (!v->hdr_ok) {
		r = hdr_read(v->id, &v->h, why, wn);
		if (r)
			return r;
		v->hdr_ok = 1;
	}
	if (v->map && v->nobj != xvf_nobj(v->h.size, v->h.object_size)) {
		/* The header was read again and says another size: so must the map. */
		pthread_mutex_lock(&md.mu);
		vol_free_map(v);
		pthread_mutex_unlock(&md.mu);
	}
	if (v->map)
		return 0;
	nobj = xvf_nobj(v->h.size, v->h.object_size);
	xvf_map_name(name, sizeof(name), v->id);
	r = st_read(name, 0, &mh, sizeof(mh), &got);
	if (r) {
		fmt(why, wn, "cannot read the map %s of %s: %s", name, v->name, strerror(r));
		return r == ENOENT ? EIO : r;
	}
	if (got != sizeof(mh) || mh.magic != XVF_MAP_MAGIC || !XVF_SEALED(&mh) || mh.id != v->id ||
	    mh.entry_size != sizeof(struct xvf_map_entry)) {
		fmt(why, wn, "the map %s of %s is corrupt (its head %s)", name, v->name,
			 got != sizeof(mh) ? "is short" : mh.magic != XVF_MAP_MAGIC ? "has a bad magic" :
			 !XVF_SEALED(&mh) ? "fails its checksum" : "names another volume");
		return EIO;
	}
	v->map = calloc(nobj ? nobj : 1, sizeof(uint64_t));
	v->busy = calloc(nobj ? nobj : 1, 1);
	buf = malloc(md.chunk);
	if (!v->map || !v->busy || !buf) {
		free(v->map);
		free(v->busy);
		free(buf);
		v->map = NULL;
		v->busy = NULL;
		fmt(why, wn, "out of memory");
		return ENOMEM;
	}
	bytes = nobj * sizeof(struct xvf_map_entry);
	for (off = 0; off < bytes;) {
		uint64_t n = bytes - off < md.chunk ? bytes - off : md.chunk;

		r = st_read(name, XVF_MAP_HEAD + off, buf, n, &got);
		if (r) {
			free(v->map);
			free(v->busy);
			free(buf);
			v->map = NULL;
			v->busy = NULL;
			fmt(why, wn, "cannot read the map %s of %s: %s", name, v->name, strerror(r));
			return r;
		}
		for (uint64_t k = 0; k < n / sizeof(struct xvf_map_entry); k++) {
			uint64_t i = off / sizeof(struct xvf_map_entry) + k;
			struct xvf_map_entry e;

			memcpy(&e, buf + k * sizeof(e), sizeof(e));
			/* A map is never shorter than its volume (made, copied and grown whole). */
			if ((k + 1) * sizeof(e) > got || xvf_entry_check(&e, i, &v->map[i]))
				v->map[i] = OWNER_CORRUPT;
		}
		off += n;
	}
	free(buf);
	v->nobj = nobj;
	pthread_mutex_lock(&md.mu);
	md.cache_bytes += nobj * ENTRY_COST;
	pthread_mutex_unlock(&md.mu);
	cache_trim(v);
	return 0;
}

/* Make @v's map reflect a new size (grown): more holes. Under v->mu. */
static int vol_grow_cache(struct vol *v, uint64_t nobj)
{
	uint64_t *m;
	uint8_t *b;

	if (!v->map || nobj <= v->nobj)
		return 0;
	m = realloc(v->map, nobj * sizeof(uint64_t));
	if (!m)
		return ENOMEM;
	v->map = m;
	b = realloc(v->busy, nobj);
	if (!b)
		return ENOMEM;
	v->busy = b;
	memset(v->map + v->nobj, 0, (nobj - v->nobj) * sizeof(uint64_t));
	memset(v->busy + v->nobj, 0, nobj - v->nobj);
	pthread_mutex_lock(&md.mu);
	md.cache_bytes += (nobj - v->nobj) * ENTRY_COST;
	pthread_mutex_unlock(&md.mu);
	v->nobj = nobj;
	return 0;
}

/* Freeze @v for a management op: no map op runs until vol_thaw. */
static void vol_freeze(struct vol *v)
{
	pthread_mutex_lock(&v->mu);
	while (v->frozen)
		pthread_cond_wait(&v->cv, &v->mu);
	v->frozen = 1;
	while (v->active)
		pthread_cond_wait(&v->cv, &v->mu);
}

static void vol_thaw(struct vol *v)
{
	v->frozen = 0;
	pthread_cond_broadcast(&v->cv);
	pthread_mutex_unlock(&v->mu);
}

/*
 * mapperd_holder_dead - is the lock holder tagged @tag (@len bytes, read
 * back from the storage peer) provably gone? A process's tag is judged by
 * its pid and start time (xvf_owner_dead). A kernel port's (vlmcd pins an
 * xsegbd device's reader lock so, vlmcd-readers.h pin_tag):
 * HOST:kport.PORT.GEN.TYPE.NAME:INSTANCE:..., judged here when it names
 * this host and this segment: dead once PORT is no longer bound by
 * generation GEN of the kernel instance INSTANCE. Another segment's or
 * host's port is not ours to judge (0).
 */
static int mapperd_holder_dead(const char *tag, size_t len)
{
	char t[300], host[64] = "", seg[XSEG_NAME_LEN + XSEG_TYPE_LEN + 2];
	unsigned port, gen;
	unsigned long long start;
	struct xseg_port *pt;
	const char *k;
	int used = 0;
	uint64_t w;

	if (len >= sizeof(t))
		return 0;
	memcpy(t, tag, len);
	t[len] = 0;
	k = strchr(t, ':');
	if (!k || strncmp(k + 1, "kport.", 6))
		return xvf_owner_dead(tag, len);
	gethostname(host, sizeof(host) - 1);
	if ((size_t)(k - t) != strlen(host) || strncmp(t, host, (size_t)(k - t)))
		return 0;
	if (sscanf(k + 7, "%u.%u.%n", &port, &gen, &used) != 2 || !used)
		return 0;
	snprintf(seg, sizeof(seg), "%s.%s:", md.p->cfg.type, md.p->cfg.name);
	if (strncmp(k + 7 + used, seg, strlen(seg)))
		return 0;
	start = strtoull(k + 7 + used + strlen(seg), NULL, 10);
	if (!(pt = xseg_port(md.p->xs, port)))
		return 0;
	w = __atomic_load_n(&pt->owner, __ATOMIC_ACQUIRE);
	return XSEG_OWNER_STATE(w) != XSEG_PORT_BOUND || XSEG_OWNER_GEN(w) != gen ||
	       XSEG_OWNER_PID(w) != XSEG_SYS_KERNEL_PID ||
	       __atomic_load_n(&pt->owner_start, __ATOMIC_RELAXED) != start;
}

/*
 * sent_by_holder - did the process that holds a lock tagged @tag send @req?
 * The sender is the hop that handed it to us (the last of its return path:
 * a vlmcd forwarding its client's SNAPSHOT), else its client. A tag
 * HOST:PID:STARTTIME:... names it when HOST is ours and PID with that start
 * time is the process bound to that port by that generation; mapperd's own
 * default tag for an OPEN without owner=, port:PORT:GEN, when it is that
 * port and generation. 1 or 0 (a hostile or torn path is 0).
 */
static int sent_by_holder(const struct xseg_request *req, const char *tag)
{
	uint32_t n = __atomic_load_n(&req->path_len, __ATOMIC_ACQUIRE), port, gen;
	char host[64] = "", mine[80];
	unsigned long long start;
	struct xseg_port *pt;
	uint64_t w, hop;
	unsigned p2, g2;
	int used = 0;

	if (n > XSEG_PATH_MAX)
		return 0;
	hop = n ? req->path[n - 1] : XSEG_HOLDER(req->src_port, req->src_gen);
	port = (uint32_t)(hop >> 32);
	gen = (uint32_t)hop;
	if (sscanf(tag, "port:%u:%u%n", &p2, &g2, &used) == 2 && !tag[used])
		return p2 == port && g2 == gen;
	if (!(pt = xseg_port(md.p->xs, port)))
		return 0;
	w = __atomic_load_n(&pt->owner, __ATOMIC_ACQUIRE);
	start = (unsigned long long)__atomic_load_n(&pt->owner_start, __ATOMIC_RELAXED);
	if (XSEG_OWNER_STATE(w) != XSEG_PORT_BOUND || (XSEG_OWNER_GEN(w) & 0x3FFFFFFFu) != (gen & 0x3FFFFFFFu) ||
	    !XSEG_OWNER_PID(w) || XSEG_OWNER_PID(w) == XSEG_SYS_KERNEL_PID)
		return 0;
	gethostname(host, sizeof(host) - 1);
	fmt(mine, sizeof(mine), "%s:%u:%llu:", host, (unsigned)XSEG_OWNER_PID(w), start);
	return !strncmp(tag, mine, strlen(mine));
}

#include "mapperd-ops.h"

/* --------------------------------------------------------------- serving */

static int serve(struct peer *p, uint32_t port, struct xseg_request *req)
{
	(void)p;
	(void)port;
	switch (req->op) {
	case X_PING:
		return 0;
	case X_MAPR: case X_MAPW: case X_DISCARD: case X_OPEN: case X_CLOSE: case X_CREATE:
	case X_SNAPSHOT: case X_CLONE: case X_UPDATE: case X_DELETE: case X_INFO:
		return PEER_DEFER;
	default:
		peer_log(p, 2, "%s: operation not supported", xseg_op_name(req->op));
		return EOPNOTSUPP;
	}
}

static int work(struct peer *p, uint32_t port, struct xseg_request *req)
{
	struct rq *q = malloc(sizeof(*q));
	uint64_t dlen;
	int r;

	(void)port;
	if (!q)
		return ENOMEM;
	memset(q, 0, offsetof(struct rq, text) + 1);
	q->req = req;
	q->data = xseg_req_buffer(p->xs, req, &q->cap);
	dlen = __atomic_load_n(&req->data_len, __ATOMIC_RELAXED);
	if (!q->data)
		q->cap = 0;
	else if (dlen < q->cap)
		q->cap = dlen;
	q->op = __atomic_load_n(&req->op, __ATOMIC_RELAXED);
	q->off = __atomic_load_n(&req->offset, __ATOMIC_RELAXED);
	q->size = __atomic_load_n(&req->size, __ATOMIC_RELAXED);
	q->tlen = __atomic_load_n(&req->target_len, __ATOMIC_RELAXED);
	req->serviced = 0;
	if (q->tlen > XSEG_TARGET_MAX) {
		free(q);
		return EINVAL;
	}
	memcpy(q->target, req->target, q->tlen);
	q->target[q->tlen] = 0;
	for (uint32_t i = 0; i < q->tlen; i++)	/* printable in messages */
		if ((unsigned char)q->target[i] < 0x20 || q->target[i] == 0x7f)
			q->target[i] = '?';
	if (q->op != X_MAPR && q->op != X_MAPW && q->op != X_DISCARD && q->data) {
		/* The text: size bytes, or up to the first NUL (volume.h). */
		uint64_t n = q->size && q->size <= q->cap ? q->size : q->cap;

		if (n > sizeof(q->text) - 1)
			n = sizeof(q->text) - 1;
		memcpy(q->text, q->data, n);
		q->text[n] = 0;
	}
	switch (q->op) {
	case X_MAPR: case X_MAPW: case X_DISCARD:
		r = op_map(q);
		break;
	default:
		pthread_mutex_lock(&md.mgmt);
		r = op_mgmt(q);
		pthread_mutex_unlock(&md.mgmt);
	}
	free(q);
	return r;
}

static int own(struct peer *p, int opt, const char *arg)
{
	uint64_t v;

	(void)p;
	switch (opt) {
	case 's': {
		char *end;

		errno = 0;
		v = strtoull(arg, &end, 10);
		if (errno || end == arg || *end || *arg == '-' || v >= XSEG_ANY_PORT) {
			fprintf(stderr, "mapperd: --storage '%s' is not a port number\n", arg);
			return -1;
		}
		md.storage = (uint32_t)v;
		return 0;
	}
	case 'c':
		if (st_parse_size(arg, &v) || v > (1ull << 40)) {
			fprintf(stderr, "mapperd: --cache '%s' is not a size (bytes, or with K/M/G/T; 0..1T)\n", arg);
			return -1;
		}
		md.cache_max = v;
		return 0;
	case 'M':
		/* The old spelling: MiB. vlmcd and every tool say --cache SIZE. */
		if (st_parse_size(arg, &v) || v > (1ull << 20)) {
			fprintf(stderr, "mapperd: --cache-mb '%s' is not a number of MiB (0..1048576)\n", arg);
			return -1;
		}
		fprintf(stderr, "mapperd: --cache-mb N is deprecated: say --cache %" PRIu64 "M\n", v);
		md.cache_max = v << 20;
		return 0;
	}
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = { { "storage", required_argument, NULL, 's' },
					       { "cache", required_argument, NULL, 'c' },
					       { "cache-mb", required_argument, NULL, 'M' }, { 0 } };
	struct peer p = { .name = "mapperd", .serve = serve, .work = work, .required = "-s PORT" };
	int r;

	md.storage = XSEG_ANY_PORT;
	r = peer_parse_args(&p, argc, argv, "s:c:M:", lopts, own,
			    "  -s, --storage PORT  the storage peer's port (filed, radosd); required\n"
			    "  -c, --cache SIZE    bound of the cached maps (default 64M; 0: none kept)\n"
			    "  -M, --cache-mb N    deprecated: --cache NM");
	if (r)
		return r > 0 ? 0 : 2;
	if (md.storage == XSEG_ANY_PORT) {
		fprintf(stderr, "mapperd: --storage PORT is required\n");
		return 2;
	}
	md.p = &p;
	if (getenv("XSEG_MAPPERD_FAULT")) {
		fmt(md.fault, sizeof(md.fault), "%s", getenv("XSEG_MAPPERD_FAULT"));
		md.fault_armed = 1;
		md.no_list = !strcmp(md.fault, "list-unsupported");
		fprintf(stderr, "mapperd: test hook XSEG_MAPPERD_FAULT=%s armed\n", md.fault);
	}
	if (peer_start(&p))
		return 1;
	md.chunk = p.xs ? xseg_config(p.xs)->request_size : 65536;
	if (md.chunk > (1u << 20))
		md.chunk = 1u << 20;
	md.chunk -= md.chunk % REC_SIZE;
	r = startup();
	if (r) {
		peer_log(&p, 0, "cannot start: %s", strerror(r));
		peer_stop(&p);
		return 1;
	}
	r = peer_run(&p);
	if (store_lock(0))
		peer_log(&p, 1, "could not release the store's lock %s", XVF_STORE_LOCK);
	peer_stop(&p);
	return r ? 1 : 0;
}
