/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/filed-fdcache.h - filed's fd cache: each thread that serves
 * READ and WRITE keeps the objects it served open (docs/peers.md, filed).
 *
 * Part of filed.c, one translation unit split by topic (base.mk links each
 * .c of peers/user as a program, so the parts are headers); included once,
 * by filed.c only, after struct filed and obj_open.
 */
#ifndef XSEG_FILED_FDCACHE_H
#define XSEG_FILED_FDCACHE_H

#include <sys/resource.h>

/*
 * The fd cache of a thread (a dispatch thread, or an I/O pool worker):
 * the objects it read or wrote stay open, so a READ or WRITE of an object
 * served before is one preadv2/pwritev2 instead of openat, fstat, the I/O
 * and close. A hash table of fdc_slots entries (fdc_size: what
 * RLIMIT_NOFILE leaves, shared by every thread, at most FDC_SLOTS), chained
 * by a hash of the name, the least recently used entry closed when a new
 * name needs room: any fdc_slots objects stay open together (a
 * direct-mapped table closed one of two names that fell in one slot, 3-5%
 * of a volume's 4K reads reopened their object). Each thread its own,
 * touched by that thread only (no lock). Its generation is fd_.names_gen
 * when it was last checked: a request that arrives after a DELETE, RENAME
 * or a COPY over an existing object was answered sees the bump (the queues
 * order it) and drops the whole cache; each slot keeps its name's
 * fd_.name_gen bucket as read before the open, and a CREATE or a COPY to a
 * new name bumps only that bucket, so only names hashed there are opened
 * again. A name never reaches an unlinked or replaced file.
 * Nobody else may change the directory (filed holds its flock); a file
 * removed or renamed there by hand is served from its open fd until the
 * next such op.
 */
#define FDC_SLOTS 128u
#define FDC_NIL UINT32_MAX

struct fdc_slot {
	uint64_t gen;			/* fd_.name_gen[its bucket] read before the open */
	int fd;				/* open (every slot below c->used) */
	int rw;				/* opened O_RDWR (else O_RDONLY) */
	uint32_t hash, nlen;
	uint32_t hnext;			/* the next slot of its bucket, FDC_NIL */
	uint32_t older, newer;		/* the use order (FDC_NIL at the ends) */
	char name[NAME_LIMIT + 1];
};

struct fd_cache {
	struct fd_cache *next;		/* every thread's, for the end (fdc_end) */
	uint64_t gen;
	uint64_t hits, misses;		/* for -v at exit, and the test */
	/* fdc_find's last name: its hash, and its fd_.name_gen bucket read before the caller opens it */
	uint64_t fgen;
	uint32_t fhash;
	uint32_t used;			/* slots [0, used) hold an open object */
	uint32_t newest, oldest;	/* the use order's ends */
	uint32_t *bucket;		/* fdc_buckets heads (after the slots) */
	struct fdc_slot slot[];		/* fdc_slots */
};

static uint32_t fdc_slots = FDC_SLOTS;	/* per thread; 0: no cache (set before the threads start) */
static uint32_t fdc_buckets = 2 * FDC_SLOTS;	/* a power of two, at least 2 * fdc_slots */

static _Thread_local struct fd_cache *tl_fdc;
static struct fd_cache *fdc_all;	/* under fdc_mu */
static pthread_mutex_t fdc_mu = PTHREAD_MUTEX_INITIALIZER;

static void fdc_drop(struct fd_cache *c)
{
	for (uint32_t i = 0; i < c->used; i++)
		close(c->slot[i].fd);
	c->used = 0;
	c->newest = c->oldest = FDC_NIL;
	for (uint32_t i = 0; i < fdc_buckets; i++)
		c->bucket[i] = FDC_NIL;
}

/* This thread's cache, checked against the names' generation; NULL without one. */
static struct fd_cache *fdc_get(void)
{
	struct fd_cache *c = tl_fdc;
	uint64_t g;

	if (fd_.no_fd_cache || !fdc_slots)
		return NULL;
	if (!c) {
		c = malloc(sizeof(*c) + fdc_slots * sizeof(c->slot[0]) + fdc_buckets * sizeof(uint32_t));
		if (!c)
			return NULL;
		c->bucket = (uint32_t *)(void *)&c->slot[fdc_slots];
		c->used = 0;
		fdc_drop(c);
		c->hits = c->misses = 0;
		c->gen = __atomic_load_n(&fd_.names_gen, __ATOMIC_ACQUIRE);
		pthread_mutex_lock(&fdc_mu);
		c->next = fdc_all;
		fdc_all = c;
		pthread_mutex_unlock(&fdc_mu);
		tl_fdc = c;
		return c;
	}
	/* acquire: pairs with the bump's release (before the reply that ordered this request). */
	g = __atomic_load_n(&fd_.names_gen, __ATOMIC_ACQUIRE);
	if (g != c->gen) {
		fdc_drop(c);
		c->gen = g;	/* read before any open that fills it again */
	}
	return c;
}

/* A hash of @name, 8 bytes at a time (bytewise FNV was a tenth of a 4K read's instructions). */
static uint32_t fdc_hash(const char *name, uint32_t nlen)
{
	uint64_t h = nlen;

	for (uint32_t i = 0; i < nlen; i += 8) {
		uint64_t w = 0;

		/* Whole words; the last one ends at the name's end (overlapping), or a short name's bytes. */
		if (nlen < 8)
			memcpy(&w, name, nlen);
		else
			memcpy(&w, name + (nlen - i < 8 ? nlen - 8 : i), 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	return (uint32_t)(h ^ (h >> 32));
}

/* Take slot @i out of the use order. */
static void fdc_unlink(struct fd_cache *c, uint32_t i)
{
	struct fdc_slot *s = &c->slot[i];

	if (s->newer != FDC_NIL)
		c->slot[s->newer].older = s->older;
	else
		c->newest = s->older;
	if (s->older != FDC_NIL)
		c->slot[s->older].newer = s->newer;
	else
		c->oldest = s->newer;
}

/* Put slot @i (in no order yet) first in the use order. */
static void fdc_push(struct fd_cache *c, uint32_t i)
{
	struct fdc_slot *s = &c->slot[i];

	s->newer = FDC_NIL;
	s->older = c->newest;
	if (c->newest != FDC_NIL)
		c->slot[c->newest].newer = i;
	c->newest = i;
	if (c->oldest == FDC_NIL)
		c->oldest = i;
}

/* Make slot @i the most recently used. */
static void fdc_touch(struct fd_cache *c, uint32_t i)
{
	if (c->newest == i)
		return;
	fdc_unlink(c, i);
	fdc_push(c, i);
}

/* The slot holding @name (hash @h), or FDC_NIL. */
static uint32_t fdc_lookup(struct fd_cache *c, const char *name, uint32_t nlen, uint32_t h)
{
	for (uint32_t i = c->bucket[h & (fdc_buckets - 1)]; i != FDC_NIL; i = c->slot[i].hnext) {
		const struct fdc_slot *s = &c->slot[i];

		if (s->hash == h && s->nlen == nlen && !memcmp(s->name, name, nlen))
			return i;
	}
	return FDC_NIL;
}

static uint64_t *name_gen_of(uint32_t h)
{
	return &fd_.name_gen[h & (FDC_GENS - 1)];
}

/*
 * The cached fd of @name, opened for writing if @rw; -1 if none (or one a
 * CREATE or COPY made stale: fdc_put replaces it). Call it before opening
 * @name for fdc_put: it reads the name's generation first.
 */
static int fdc_find(struct fd_cache *c, const char *name, uint32_t nlen, int rw)
{
	uint32_t h = fdc_hash(name, nlen), i;

	/* acquire: pairs with name_changed's release, as fdc_get's load. */
	c->fgen = __atomic_load_n(name_gen_of(h), __ATOMIC_ACQUIRE);
	c->fhash = h;
	i = fdc_lookup(c, name, nlen, h);
	if (i == FDC_NIL || (rw && !c->slot[i].rw) || c->slot[i].gen != c->fgen) {
		c->misses++;
		return -1;
	}
	c->hits++;
	fdc_touch(c, i);
	return c->slot[i].fd;
}

/* Keep @fd for @name: in place of its older fd, in a free slot, or the least recently used one's. */
static void fdc_put(struct fd_cache *c, const char *name, uint32_t nlen, int fd, int rw)
{
	uint32_t h = fdc_hash(name, nlen), i = fdc_lookup(c, name, nlen, h), *pp;
	/* The generation read before the open (fdc_find); else now, as conservative as it can be. */
	uint64_t g = c->fhash == h ? c->fgen : __atomic_load_n(name_gen_of(h), __ATOMIC_ACQUIRE);
	struct fdc_slot *s;

	if (i != FDC_NIL) {
		s = &c->slot[i];
		close(s->fd);
		s->fd = fd;
		s->rw = rw;
		s->gen = g;
		fdc_touch(c, i);
		return;
	}
	if (c->used < fdc_slots) {
		i = c->used++;
		s = &c->slot[i];
		fdc_push(c, i);
	} else {
		i = c->oldest;
		s = &c->slot[i];
		/* Out of its bucket's chain, closed. */
		for (pp = &c->bucket[s->hash & (fdc_buckets - 1)]; *pp != i; pp = &c->slot[*pp].hnext)
			;
		*pp = s->hnext;
		close(s->fd);
		fdc_touch(c, i);
	}
	s->fd = fd;
	s->rw = rw;
	s->gen = g;
	s->hash = h;
	s->nlen = nlen;
	memcpy(s->name, name, nlen);
	s->hnext = c->bucket[h & (fdc_buckets - 1)];
	c->bucket[h & (fdc_buckets - 1)] = i;
}

/*
 * fdc_size - the slots of each thread's cache: the descriptors RLIMIT_NOFILE
 * leaves past FDC_RESERVE (the segment, the directory, signal FIFOs, lock
 * and COPY files), shared by the dispatch threads and the I/O pool; at most
 * FDC_SLOTS, and none below 8. Before the threads start.
 */
#define FDC_RESERVE 256u

static void fdc_size(struct peer *p)
{
	uint32_t users = p->threads + p->io_threads;
	struct rlimit rl;
	uint64_t n = FDC_SLOTS;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		n = rl.rlim_cur > FDC_RESERVE ? (rl.rlim_cur - FDC_RESERVE) / (users ? users : 1) : 0;
	fdc_slots = n > FDC_SLOTS ? FDC_SLOTS : n < 8 ? 0 : (uint32_t)n;
	for (fdc_buckets = 16; fdc_buckets < 2 * fdc_slots; fdc_buckets *= 2)
		;
	if (!fd_.no_fd_cache)
		peer_log(p, 2, "keeping up to %u objects open per thread (%u threads)", fdc_slots, users);
}

/* After peer_run (its threads are done): close and free every cache, log their counts. */
static void fdc_end(struct peer *p)
{
	uint64_t hits = 0, misses = 0;

	pthread_mutex_lock(&fdc_mu);
	while (fdc_all) {
		struct fd_cache *c = fdc_all;

		fdc_all = c->next;
		hits += c->hits;
		misses += c->misses;
		fdc_drop(c);
		free(c);
	}
	pthread_mutex_unlock(&fdc_mu);
	if (!fd_.no_fd_cache)
		peer_log(p, 2, "fd cache: %" PRIu64 " hits, %" PRIu64 " misses", hits, misses);
}

/* After a change of what names are that unlinked a file (before its reply): every cache goes. */
static void names_changed(void)
{
	__atomic_fetch_add(&fd_.names_gen, 1, __ATOMIC_RELEASE);
}

/* After @name got a new file and no file was unlinked (before its reply): its cached fds go. */
static void name_changed(const char *name)
{
	__atomic_fetch_add(name_gen_of(fdc_hash(name, (uint32_t)strlen(name))), 1, __ATOMIC_RELEASE);
}

/*
 * pool_open - object @name for a READ (or a WRITE, @write: created if
 * missing) on an I/O thread, from the thread's fd cache when it has it;
 * *@cached says whether the fd stays open (else the caller closes it).
 * Opened read-write for the cache (a file we may not write is opened as
 * before, and not kept). The fd or a negative errno.
 */
static int pool_open(const char *name, int write, int *cached)
{
	struct fd_cache *c = fdc_get();
	uint32_t nlen = (uint32_t)strlen(name);
	int fd;

	*cached = 0;
	if (c && (fd = fdc_find(c, name, nlen, 1)) >= 0) {
		*cached = 1;
		return fd;
	}
	if (c) {
		fd = obj_open(name, write ? O_RDWR | O_CREAT : O_RDWR, 0644);
		if (fd >= 0) {
			fdc_put(c, name, nlen, fd, 1);
			*cached = 1;
			return fd;
		}
		if (fd != -EACCES && fd != -EPERM)
			return fd;
	}
	return obj_open(name, write ? O_WRONLY | O_CREAT : O_RDONLY, 0644);
}

#endif
