/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg-corrupt - overwrite one thing in a segment, for tests and for people
 * checking that their peers survive a corrupt or hostile segment
 * (docs/hostile.md). It joins nothing: it maps the segment file directly
 * (posix: /dev/shm/xseg.<name>; file: the path) and writes one field.
 *
 *   xseg-corrupt SPEC WHAT [N] [VALUE]
 *
 * Header (the next xseg_join must refuse the segment):
 *   magic [V]            the magic (default: garbage)
 *   major [V]            the major version (default: major + 1)
 *   byte-order [V]       the byte-order mark (default: byte-swapped)
 *   size [V]             the header's size field (default: size + 4096)
 *   flags [V]            the header flags (default: | DESTROYED)
 *   truncate V           ftruncate the file to V bytes
 *   queue-header N       the xq header (magic) of port N's request queue
 *   types-count [V]      the header's nr_peer_types (default 0xDEADBEEF)
 *   types-off [V]        the header's types_off (default types_off + 64)
 *   cfg-peer-types [V]   the config's peer_types (default 129)
 * Runtime (peers must get errors or recover, and xseg_verify must say so):
 *   port-owner N [V]     port N's owner word (default 0xDEADBEEFDEADBEEF)
 *   port-peer-type N [V] port N's peer-type index (default 0xDEADBEEF)
 *   port-redirect N [V]  port N's redirect (default 0xDEADBEEF)
 *   port-signal N [S]    port N's driver signal area: garbage (seed S)
 *   queue-tail N [V]     port N's request queue tail (default head + 2^40), threshold max
 *   queue-head N [V]     port N's request queue head (default tail + 2^40)
 *   queue-slots N [S]    port N's request queue slots: garbage (seed S), some
 *                        with the right lap so consumers take them
 *   reply-tail, reply-head, reply-slots N ...   the same for port N's reply queue
 *   free-queue [V]       the free request queue: every other entry out of
 *                        range, or every entry V (duplicates)
 *   chunk-queue [V]      the default buffer class's free queue, likewise
 *   request-buf N [V]    request N's buf_index (default 0xDEADBEEF)
 *   request-path N [V]   request N's path_len (default 0xDEADBEEF), garbage hops
 *   request-life N [V]   request N's lifecycle state (a number or free, prepared,
 *                        submitted, accepted, responded, received; default 0xEE)
 *   request-holder N [V] request N's holder word (default 0xDEADBEEF00000001)
 *   request-target N [V] request N's target_len (default 0xDEADBEEF)
 *   holds [S]            garbage in every hold record (seed S)
 *   peer-types [S]       garbage words and names in the peer-type table
 *   peers [S]            garbage in the joined-peers table
 *   recovery-lease [V]   the recovery lease word (default 1: init's pid)
 *
 * Values are numbers (0x.. for hex). Exit status: 0 done, 1 failure (cannot
 * open or map the segment, N out of range, the region to write is not inside
 * the file), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include "xseg/xseg.h"

static const char *prog = "xseg-corrupt";

/* The mapped segment file and the geometry read (and checked) from its header. */
struct seg {
	const char *what;
	char path[4200];
	int fd;
	uint8_t *base;
	uint64_t size;
	struct xseg_header *h;
	uint32_t nr_ports, nr_requests, nr_indices, nr_holds;
};

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* What was done, on stdout: "<file>: <what changed>". */
static void say(const struct seg *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const struct seg *s, const char *fmt, ...)
{
	va_list ap;

	printf("%s: ", s->path);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

static int usage(void)
{
	fprintf(stderr,
		"usage: %s SPEC WHAT [N] [VALUE]\n"
		"  header:  magic|major|byte-order|size|flags [V], truncate V, queue-header N,\n"
		"           types-count|types-off|cfg-peer-types [V]\n"
		"  ports:   port-owner|port-peer-type|port-redirect N [V], port-signal N [SEED]\n"
		"  queues:  queue-tail|queue-head|reply-tail|reply-head N [V],\n"
		"           queue-slots|reply-slots N [SEED], free-queue [V], chunk-queue [V]\n"
		"  request: request-buf|request-path|request-life|request-holder|request-target N [V]\n"
		"  tables:  holds [SEED], peer-types [SEED], peers [SEED], recovery-lease [V]\n"
		"Maps the segment file directly (posix: /dev/shm/xseg.<name>; file: the path)\n"
		"and overwrites one thing; see docs/hostile.md. Exit: 0 done, 1 failure, 2 usage.\n",
		prog);
	return 2;
}

static int parse_u64(const char *what, const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	if (!s || !*s || *s == '-')
		goto bad;
	*v = strtoull(s, &end, 0);
	if (errno || *end)
		goto bad;
	return 0;
bad:
	fprintf(stderr, "%s: %s: '%s' is not a number (decimal, 0x hex or 0 octal)\n", prog, what,
		s ? s : "");
	return 2;
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* Is [off, off + len) inside the mapped file? */
static bool inside(const struct seg *s, uint64_t off, uint64_t len)
{
	return off <= s->size && len <= s->size - off;
}

/* ------------------------------------------------------------ opening */

static int open_seg(struct seg *s, const struct xseg_config *cfg, bool map)
{
	struct stat st;

	if (!strcmp(cfg->type, "posix"))
		snprintf(s->path, sizeof(s->path), "/dev/shm/xseg.%s", cfg->name);
	else if (!strcmp(cfg->type, "file"))
		snprintf(s->path, sizeof(s->path), "%s", cfg->name);
	else if (!strcmp(cfg->type, "heap"))
		return fail("heap segments are private to their process: nothing to corrupt from outside");
	else
		return fail("segment type '%s': only posix and file segments can be corrupted by this tool",
			    cfg->type);
	s->fd = open(s->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (s->fd < 0)
		return fail("cannot open %s: %s", s->path, strerror(errno));
	if (fstat(s->fd, &st) < 0)
		return fail("cannot stat %s: %s", s->path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail("%s is not a regular file", s->path);
	s->size = (uint64_t)st.st_size;
	if (!map)
		return 0;
	if (s->size < XSEG_HEADER_SIZE)
		return fail("%s is %" PRIu64 " bytes, smaller than the header page (%u)", s->path, s->size,
			    XSEG_HEADER_SIZE);
	s->base = mmap(NULL, (size_t)s->size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
	if (s->base == MAP_FAILED)
		return fail("cannot map %s: %s", s->path, strerror(errno));
	s->h = (struct xseg_header *)s->base;
	s->nr_ports = s->h->cfg.nr_ports;
	s->nr_requests = s->h->cfg.nr_requests;
	s->nr_indices = s->h->nr_indices;
	s->nr_holds = s->h->nr_holds;
	return 0;
}

/* The geometry a WHAT needs, checked against the file: a clear error if it is not there. */
static int need_ports(struct seg *s)
{
	if (!s->nr_ports || s->nr_ports > 65536 || s->h->ports_off % 8 ||
	    !inside(s, s->h->ports_off, (uint64_t)s->nr_ports * sizeof(struct xseg_port)))
		return fail("%s: the header's port table (%u ports at %" PRIu64 ") is not inside the file; "
			    "is the header already corrupt?", s->what, s->nr_ports, s->h->ports_off);
	return 0;
}

static int need_requests(struct seg *s)
{
	if (!s->nr_requests || s->h->reqs_off % 8 ||
	    !inside(s, s->h->reqs_off, (uint64_t)s->nr_requests * sizeof(struct xseg_request)))
		return fail("%s: the header's request table (%u requests at %" PRIu64 ") is not inside "
			    "the file; is the header already corrupt?", s->what, s->nr_requests, s->h->reqs_off);
	return 0;
}

static int need_index(struct seg *s, const char *kind, uint64_t n, uint32_t count)
{
	if (n >= count)
		return fail("%s: %s %" PRIu64 " is out of range (the segment has %u)", s->what, kind, n, count);
	return 0;
}

/* A queue at @off: its header checked, so that slots can be placed. */
struct qview {
	struct xq_layout *q;
	uint32_t order;
	uint64_t nslots;
};

static int queue_at(struct seg *s, uint64_t off, uint64_t size, const char *name, struct qview *v)
{
	if (off % 8 || !inside(s, off, size) || size < XQ_HDR_SIZE)
		return fail("%s: %s (at %" PRIu64 ", %" PRIu64 " bytes) is not inside the file", s->what,
			    name, off, size);
	v->q = (struct xq_layout *)(s->base + off);
	v->order = v->q->order;
	if (v->q->magic != XQ_MAGIC || v->order < 3 || v->order > XQ_MAX_ORDER ||
	    ((size - XQ_HDR_SIZE) / 8) < (1ull << v->order))
		return fail("%s: %s has a corrupt header (magic %#x, order %u): cannot place entries",
			    s->what, name, v->q->magic, v->order);
	v->nslots = 1ull << v->order;
	return 0;
}

static int port_queue(struct seg *s, uint64_t port, int reply, struct qview *v)
{
	char name[64];
	uint64_t off;

	if (need_index(s, "port", port, s->nr_ports))
		return 1;
	snprintf(name, sizeof(name), "port %" PRIu64 "'s %s queue", port, reply ? "reply" : "request");
	/* Where the library computes it (never the port's rq_off/pq_off). */
	off = s->h->free_queue_off + s->h->queue_size * (1 + 2 * port + (uint64_t)reply);
	return queue_at(s, off, s->h->queue_size, name, v);
}

/* Slot of position @p (layout 2: p mod nslots) and the entry {lap of p, safe, idx}
 * (see xq/xq_layout.h). */
static uint64_t *slot_of(const struct qview *v, uint64_t p)
{
	return &v->q->slots[p & (v->nslots - 1)];
}

static uint64_t entry(const struct qview *v, uint64_t p, uint32_t idx)
{
	uint64_t cyc = (p >> v->order) & ((1ull << 31) - 1);

	return (cyc << 33) | (1ull << 32) | idx;
}

/* Does the entry at position @p hold an index for that lap? */
static bool present(const struct qview *v, uint64_t p)
{
	uint64_t e = __atomic_load_n(slot_of(v, p), __ATOMIC_ACQUIRE);

	return (e >> 33) == ((p >> v->order) & ((1ull << 31) - 1)) && (uint32_t)e <= XQ_INDEX_MAX;
}

/* ------------------------------------------------------------ the WHATs */

struct args {
	bool has_n, has_v;
	uint64_t n, v;
	const char *vstr;
};

static int c_magic(struct seg *s, struct args *a)
{
	uint64_t old = s->h->magic, v = a->has_v ? a->v : 0x0BADBADBADBADBADull;

	__atomic_store_n(&s->h->magic, v, __ATOMIC_RELEASE);
	say(s, "magic %#" PRIx64 " -> %#" PRIx64 "\n", old, v);
	return 0;
}

static int c_major(struct seg *s, struct args *a)
{
	uint16_t old = s->h->major, v = (uint16_t)(a->has_v ? a->v : old + 1u);

	if (a->has_v && a->v > 0xFFFF)
		return fail("major: %" PRIu64 " does not fit 16 bits", a->v);
	s->h->major = v;
	say(s, "major version %u -> %u\n", old, v);
	return 0;
}

static int c_byte_order(struct seg *s, struct args *a)
{
	uint32_t old = s->h->byte_order, v = a->has_v ? (uint32_t)a->v : __builtin_bswap32(old);

	s->h->byte_order = v;
	say(s, "byte order %#x -> %#x\n", old, v);
	return 0;
}

static int c_size(struct seg *s, struct args *a)
{
	uint64_t old = s->h->size, v = a->has_v ? a->v : old + 4096;

	s->h->size = v;
	say(s, "header size field %" PRIu64 " -> %" PRIu64 "\n", old, v);
	return 0;
}

static int c_types_count(struct seg *s, struct args *a)
{
	uint32_t old = s->h->nr_peer_types, v = a->has_v ? (uint32_t)a->v : 0xDEADBEEFu;

	s->h->nr_peer_types = v;
	say(s, "header nr_peer_types %u -> %u\n", old, v);
	return 0;
}

static int c_types_off(struct seg *s, struct args *a)
{
	uint64_t old = s->h->types_off, v = a->has_v ? a->v : old + 64;

	s->h->types_off = v;
	say(s, "header types_off %" PRIu64 " -> %" PRIu64 "\n", old, v);
	return 0;
}

static int c_cfg_peer_types(struct seg *s, struct args *a)
{
	uint32_t old = s->h->cfg.peer_types, v = a->has_v ? (uint32_t)a->v : XSEG_PEER_TYPES_MAX + 1;

	s->h->cfg.peer_types = v;
	say(s, "config peer_types %u -> %u\n", old, v);
	return 0;
}

static int c_flags(struct seg *s, struct args *a)
{
	uint64_t old = __atomic_load_n(&s->h->flags, __ATOMIC_RELAXED);
	uint64_t v = a->has_v ? a->v : old | XSEG_F_DESTROYED;

	__atomic_store_n(&s->h->flags, v, __ATOMIC_RELEASE);
	say(s, "flags %#" PRIx64 " -> %#" PRIx64 "\n", old, v);
	return 0;
}

static int c_queue_header(struct seg *s, struct args *a)
{
	uint64_t off;
	struct xq_layout *q;

	if (need_index(s, "port", a->n, s->nr_ports))
		return 1;
	off = s->h->free_queue_off + s->h->queue_size * (1 + 2 * a->n);
	if (!inside(s, off, XQ_HDR_SIZE))
		return fail("queue-header: port %" PRIu64 "'s request queue is not inside the file", a->n);
	q = (struct xq_layout *)(s->base + off);
	say(s, "port %" PRIu64 " request queue magic %#x -> %#x\n", a->n, q->magic, 0xBADC0DEu);
	q->magic = 0xBADC0DEu;
	return 0;
}

static struct xseg_port *port_of(struct seg *s, uint64_t n)
{
	if (need_ports(s) || need_index(s, "port", n, s->nr_ports))
		return NULL;
	return (struct xseg_port *)(s->base + s->h->ports_off) + n;
}

static int c_port_owner(struct seg *s, struct args *a)
{
	struct xseg_port *p = port_of(s, a->n);
	uint64_t v = a->has_v ? a->v : 0xDEADBEEFDEADBEEFull;

	if (!p)
		return 1;
	say(s, "port %" PRIu64 " owner %#" PRIx64 " -> %#" PRIx64 "\n", a->n,
	       __atomic_exchange_n(&p->owner, v, __ATOMIC_ACQ_REL), v);
	return 0;
}

static int c_port_peer_type(struct seg *s, struct args *a)
{
	struct xseg_port *p = port_of(s, a->n);
	uint32_t v = a->has_v ? (uint32_t)a->v : 0xDEADBEEFu;

	if (!p)
		return 1;
	say(s, "port %" PRIu64 " peer type %u -> %u\n", a->n,
	       __atomic_exchange_n(&p->peer_type, v, __ATOMIC_ACQ_REL), v);
	return 0;
}

static int c_port_redirect(struct seg *s, struct args *a)
{
	struct xseg_port *p = port_of(s, a->n);
	uint32_t v = a->has_v ? (uint32_t)a->v : 0xDEADBEEFu;

	if (!p)
		return 1;
	say(s, "port %" PRIu64 " redirect %#x -> %#x\n", a->n,
	       __atomic_exchange_n(&p->redirect, v, __ATOMIC_ACQ_REL), v);
	return 0;
}

static int c_port_signal(struct seg *s, struct args *a)
{
	struct xseg_port *p = port_of(s, a->n);
	uint64_t seed = a->has_v && a->v ? a->v : 0x5EED;

	if (!p)
		return 1;
	for (unsigned i = 0; i < XSEG_SIGNAL_AREA; i++)
		__atomic_store_n(&p->signal[i], (uint8_t)rnd(&seed), __ATOMIC_RELAXED);
	say(s, "port %" PRIu64 " signal area: %u garbage bytes\n", a->n, XSEG_SIGNAL_AREA);
	return 0;
}

static int queue_counter(struct seg *s, struct args *a, int reply, int tail)
{
	struct qview v;
	uint64_t *w, old, val;

	if (port_queue(s, a->n, reply, &v))
		return 1;
	w = tail ? &v.q->tail : &v.q->head;
	old = __atomic_load_n(w, __ATOMIC_RELAXED);
	if (a->has_v)
		val = a->v;
	else if (tail)
		val = __atomic_load_n(&v.q->head, __ATOMIC_RELAXED) + (1ull << 40) + 12345;
	else
		val = __atomic_load_n(&v.q->tail, __ATOMIC_RELAXED) + (1ull << 40) + 12345;
	__atomic_store_n(w, val, __ATOMIC_RELEASE);
	if (tail)	/* make consumers believe there is work */
		__atomic_store_n(&v.q->threshold, (uint64_t)INT64_MAX, __ATOMIC_RELEASE);
	say(s, "port %" PRIu64 " %s queue %s %" PRIu64 " -> %" PRIu64 "\n", a->n, reply ? "reply" : "request",
	       tail ? "tail" : "head", old, val);
	return 0;
}

static int c_queue_tail(struct seg *s, struct args *a) { return queue_counter(s, a, 0, 1); }
static int c_queue_head(struct seg *s, struct args *a) { return queue_counter(s, a, 0, 0); }
static int c_reply_tail(struct seg *s, struct args *a) { return queue_counter(s, a, 1, 1); }
static int c_reply_head(struct seg *s, struct args *a) { return queue_counter(s, a, 1, 0); }

/*
 * Garbage that a consumer takes: the positions from head on get entries of
 * the right lap naming out-of-range indices, in-range requests and chunks
 * (duplicates), and taken marks; every other slot gets a random word.
 */
static int queue_slots(struct seg *s, struct args *a, int reply)
{
	struct qview v;
	uint64_t seed = a->has_v && a->v ? a->v : 0x5EED5EEDull, head, n, p, i;
	uint32_t nidx = s->nr_indices ? s->nr_indices : 1, nreq = s->nr_requests ? s->nr_requests : 1;

	if (port_queue(s, a->n, reply, &v))
		return 1;
	head = __atomic_load_n(&v.q->head, __ATOMIC_ACQUIRE);
	for (i = 0; i < v.nslots; i++)
		__atomic_store_n(&v.q->slots[i], rnd(&seed), __ATOMIC_RELAXED);
	n = v.nslots / 4;
	for (p = head; p != head + n; p++) {
		uint64_t r = rnd(&seed);
		uint32_t idx;

		switch (r % 5) {
		case 0: idx = nidx + (uint32_t)(r >> 8) % 1000; break;			/* out of range */
		case 1: idx = (uint32_t)(r >> 8) % nreq; break;				/* a request */
		case 2: idx = nreq + (uint32_t)(r >> 8) % (nidx > nreq ? nidx - nreq : 1); break; /* a chunk */
		case 3: idx = XQ_INDEX_MAX; break;
		default: idx = 0xFFFF0000u + (uint32_t)(r >> 8) % 64; break;		/* a taken mark */
		}
		__atomic_store_n(slot_of(&v, p), entry(&v, p, idx), __ATOMIC_RELAXED);
	}
	__atomic_store_n(&v.q->tail, head + n, __ATOMIC_RELEASE);
	__atomic_store_n(&v.q->threshold, (uint64_t)INT64_MAX, __ATOMIC_RELEASE);
	say(s, "port %" PRIu64 " %s queue: %" PRIu64 " garbage slots, %" PRIu64 " of them queued\n", a->n,
	       reply ? "reply" : "request", v.nslots, n);
	return 0;
}

static int c_queue_slots(struct seg *s, struct args *a) { return queue_slots(s, a, 0); }
static int c_reply_slots(struct seg *s, struct args *a) { return queue_slots(s, a, 1); }

/* Every other queued entry out of range (above @limit), or every one @a->v. */
static int queue_entries(struct seg *s, struct args *a, uint64_t off, uint64_t size, const char *name,
			 uint32_t limit)
{
	struct qview v;
	uint64_t head, tail, p;
	uint32_t k = 0, changed = 0;

	if (queue_at(s, off, size, name, &v))
		return 1;
	head = __atomic_load_n(&v.q->head, __ATOMIC_ACQUIRE);
	tail = __atomic_load_n(&v.q->tail, __ATOMIC_ACQUIRE);
	if ((int64_t)(tail - head) < 0 || tail - head > v.nslots)
		return fail("%s: %s has corrupt counters (head %" PRIu64 ", tail %" PRIu64 ")", s->what, name,
			    head, tail);
	if (a->has_v && a->v > XQ_INDEX_MAX)
		return fail("%s: %" PRIu64 " is not an index a queue can carry (at most %u)", s->what, a->v,
			    XQ_INDEX_MAX);
	for (p = head; p != tail; p++) {
		if (!present(&v, p))
			continue;
		if (a->has_v || k++ % 2 == 0) {
			__atomic_store_n(slot_of(&v, p),
					 entry(&v, p, a->has_v ? (uint32_t)a->v : limit + 1000 + changed),
					 __ATOMIC_RELEASE);
			changed++;
		}
	}
	if (a->has_v)
		say(s, "%s: %u entries -> index %" PRIu64 "\n", name, changed, a->v);
	else
		say(s, "%s: %u entries -> out of range\n", name, changed);
	return 0;
}

static int c_free_queue(struct seg *s, struct args *a)
{
	return queue_entries(s, a, s->h->free_queue_off, s->h->queue_size, "the free request queue",
			     s->nr_indices);
}

static int c_chunk_queue(struct seg *s, struct args *a)
{
	uint32_t count = s->h->cls[0].count, cap = 1;

	if (!count || count > (1u << 27))
		return fail("chunk-queue: the header's buffer class 0 (%u chunks) is corrupt", count);
	while (cap < count)
		cap <<= 1;
	return queue_entries(s, a, s->h->cls[0].queue_off, xq_size(cap), "the free chunk queue",
			     s->nr_indices);
}

static struct xseg_request *request_of(struct seg *s, uint64_t n)
{
	if (need_requests(s) || need_index(s, "request", n, s->nr_requests))
		return NULL;
	return (struct xseg_request *)(s->base + s->h->reqs_off) + n;
}

static int c_request_buf(struct seg *s, struct args *a)
{
	struct xseg_request *r = request_of(s, a->n);
	uint32_t v = a->has_v ? (uint32_t)a->v : 0xDEADBEEFu;

	if (!r)
		return 1;
	say(s, "request %" PRIu64 " buf_index %u -> %u\n", a->n,
	       __atomic_exchange_n(&r->buf_index, v, __ATOMIC_ACQ_REL), v);
	return 0;
}

static int c_request_path(struct seg *s, struct args *a)
{
	struct xseg_request *r = request_of(s, a->n);
	uint32_t v = a->has_v ? (uint32_t)a->v : 0xDEADBEEFu;

	if (!r)
		return 1;
	for (unsigned i = 0; i < XSEG_PATH_MAX; i++)
		__atomic_store_n(&r->path[i], XSEG_HOLDER(0xDEAD0000u + i, 0xBEEF), __ATOMIC_RELAXED);
	say(s, "request %" PRIu64 " path_len %u -> %u (hops: garbage ports)\n", a->n,
	       __atomic_exchange_n(&r->path_len, v, __ATOMIC_ACQ_REL), v);
	return 0;
}

static const char *const life_names[] = {
	"free", "prepared", "submitted", "accepted", "responded", "received",
};

static int c_request_life(struct seg *s, struct args *a)
{
	struct xseg_request *r = request_of(s, a->n);
	uint32_t life = 0xEE, st;

	if (!r)
		return 1;
	if (a->vstr) {
		unsigned i;

		for (i = 0; i < sizeof(life_names) / sizeof(life_names[0]); i++)
			if (!strcmp(a->vstr, life_names[i]))
				break;
		if (i < sizeof(life_names) / sizeof(life_names[0])) {
			life = i;
		} else if (parse_u64("request-life", a->vstr, &a->v)) {
			return 2;
		} else if (a->v > 0xFF) {
			return fail("request-life: %" PRIu64 " does not fit the 8-bit lifecycle field", a->v);
		} else {
			life = (uint32_t)a->v;
		}
	}
	st = __atomic_load_n(&r->state, __ATOMIC_RELAXED);
	__atomic_store_n(&r->state, (st & ~(0xFFu << XS_LIFE_SHIFT)) | (life << XS_LIFE_SHIFT),
			 __ATOMIC_RELEASE);
	say(s, "request %" PRIu64 " lifecycle %u -> %u\n", a->n, (st >> XS_LIFE_SHIFT) & 0xFF, life);
	return 0;
}

static int c_request_holder(struct seg *s, struct args *a)
{
	struct xseg_request *r = request_of(s, a->n);
	uint64_t v = a->has_v ? a->v : 0xDEADBEEF00000001ull;

	if (!r)
		return 1;
	say(s, "request %" PRIu64 " holder %#" PRIx64 " -> %#" PRIx64 "\n", a->n,
	       __atomic_exchange_n(&r->holder, v, __ATOMIC_ACQ_REL), v);
	return 0;
}

static int c_request_target(struct seg *s, struct args *a)
{
	struct xseg_request *r = request_of(s, a->n);
	uint32_t v = a->has_v ? (uint32_t)a->v : 0xDEADBEEFu;

	if (!r)
		return 1;
	say(s, "request %" PRIu64 " target_len %u -> %u\n", a->n,
	       __atomic_exchange_n(&r->target_len, v, __ATOMIC_ACQ_REL), v);
	return 0;
}

/* Garbage a recoverer will read: every state, in- and out-of-range indices, queue ids, positions. */
static int c_holds(struct seg *s, struct args *a)
{
	uint64_t seed = a->has_v && a->v ? a->v : 0x401D5ull;
	uint32_t nq = 1 + 2 * s->nr_ports + 4, i;
	struct xq_hold *hd;

	if (!s->nr_holds || s->h->holds_off % 8 ||
	    !inside(s, s->h->holds_off, (uint64_t)s->nr_holds * sizeof(struct xq_hold)))
		return fail("holds: the header's hold table (%u at %" PRIu64 ") is not inside the file",
			    s->nr_holds, s->h->holds_off);
	hd = (struct xq_hold *)(s->base + s->h->holds_off);
	for (i = 0; i < s->nr_holds; i++) {
		uint64_t r = rnd(&seed), st, idx;

		switch (r % 6) {
		case 0: st = XQ_HOLD_HELD; break;
		case 1: st = XQ_HOLD_ENQ; break;
		case 2: st = XQ_HOLD_DEQ; break;
		case 3: st = XQ_HOLD_CLAIMED | (rnd(&seed) & ~0xFFull) | (1 + r % 3); break;
		case 4: st = 4 + (r >> 8) % 0x7C; break;			/* unknown */
		default: st = rnd(&seed); break;
		}
		idx = (r >> 16) % 3 ? (r >> 20) % (s->nr_indices + 2) : rnd(&seed);
		__atomic_store_n(&hd[i].index, idx | (rnd(&seed) << 32), __ATOMIC_RELAXED);
		__atomic_store_n(&hd[i].pos, (r >> 24) % 2 ? rnd(&seed) : (r >> 28) % 4096, __ATOMIC_RELAXED);
		__atomic_store_n(&hd[i].qid, (r >> 32) % 2 ? (r >> 36) % nq : rnd(&seed), __ATOMIC_RELAXED);
		__atomic_store_n(&hd[i].state, st, __ATOMIC_RELEASE);
	}
	say(s, "%u hold records: garbage\n", s->nr_holds);
	return 0;
}

static int c_peer_types(struct seg *s, struct args *a)
{
	uint64_t seed = a->has_v && a->v ? a->v : 0x7E57ull;
	uint32_t n = s->h->nr_peer_types;
	struct xseg_peer_type *t;

	if (!n || n > XSEG_PEER_TYPES_MAX || s->h->types_off % 8 ||
	    !inside(s, s->h->types_off, (uint64_t)n * sizeof(*t)))
		return fail("%s: the header's peer-type table (%u entries at %" PRIu64 ") is not inside the "
			    "file; is the header already corrupt?", s->what, n, s->h->types_off);
	t = (struct xseg_peer_type *)(s->base + s->h->types_off);
	for (unsigned i = 0; i < n; i++) {
		uint64_t r = rnd(&seed);

		for (unsigned k = 0; k < XSEG_TYPE_LEN; k++)
			t[i].name[k] = (char)(0x80 | (rnd(&seed) & 0x7F));	/* no NUL */
		__atomic_store_n(&t[i].word, r % 3 == 0 ? 1 : r % 3 == 1 ? 2 : r | 4, __ATOMIC_RELEASE);
	}
	say(s, "%u peer-type entries: garbage words and names\n", n);
	return 0;
}

static int c_peers(struct seg *s, struct args *a)
{
	uint64_t seed = a->has_v && a->v ? a->v : 0xFEE5ull;

	for (unsigned i = 0; i < XSEG_MAX_PEERS; i++) {
		__atomic_store_n(&s->h->peers[i].start, rnd(&seed), __ATOMIC_RELAXED);
		__atomic_store_n(&s->h->peers[i].pid, i % 2 ? rnd(&seed) : 1 + rnd(&seed) % 64, __ATOMIC_RELEASE);
	}
	say(s, "%u joined-peer entries: garbage\n", XSEG_MAX_PEERS);
	return 0;
}

static int c_recovery_lease(struct seg *s, struct args *a)
{
	uint64_t v = a->has_v ? a->v : 1;

	say(s, "recovery lease %#" PRIx64 " -> %#" PRIx64 "\n",
	       __atomic_exchange_n(&s->h->recovery, v, __ATOMIC_ACQ_REL), v);
	return 0;
}

/* ------------------------------------------------------------ main */

enum { ARG_NONE, ARG_N };

static const struct cmd {
	const char *name;
	int needs_n;
	int (*fn)(struct seg *s, struct args *a);
} cmds[] = {
	{ "magic", ARG_NONE, c_magic }, { "major", ARG_NONE, c_major },
	{ "byte-order", ARG_NONE, c_byte_order }, { "size", ARG_NONE, c_size },
	{ "flags", ARG_NONE, c_flags }, { "queue-header", ARG_N, c_queue_header },
	{ "types-count", ARG_NONE, c_types_count }, { "types-off", ARG_NONE, c_types_off },
	{ "cfg-peer-types", ARG_NONE, c_cfg_peer_types },
	{ "port-owner", ARG_N, c_port_owner }, { "port-peer-type", ARG_N, c_port_peer_type },
	{ "port-redirect", ARG_N, c_port_redirect }, { "port-signal", ARG_N, c_port_signal },
	{ "queue-tail", ARG_N, c_queue_tail }, { "queue-head", ARG_N, c_queue_head },
	{ "queue-slots", ARG_N, c_queue_slots }, { "reply-tail", ARG_N, c_reply_tail },
	{ "reply-head", ARG_N, c_reply_head }, { "reply-slots", ARG_N, c_reply_slots },
	{ "free-queue", ARG_NONE, c_free_queue }, { "chunk-queue", ARG_NONE, c_chunk_queue },
	{ "request-buf", ARG_N, c_request_buf }, { "request-path", ARG_N, c_request_path },
	{ "request-life", ARG_N, c_request_life }, { "request-holder", ARG_N, c_request_holder },
	{ "request-target", ARG_N, c_request_target }, { "holds", ARG_NONE, c_holds },
	{ "peer-types", ARG_NONE, c_peer_types }, { "peers", ARG_NONE, c_peers },
	{ "recovery-lease", ARG_NONE, c_recovery_lease },
};

int main(int argc, char **argv)
{
	struct xseg_config cfg;
	struct seg s = { .fd = -1 };
	struct args a = { 0 };
	const struct cmd *c = NULL;
	char err[256];
	int i, r;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage();
		return 0;
	}
	if (argc < 3)
		return usage();
	for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++)
		if (!strcmp(argv[2], cmds[k].name))
			c = &cmds[k];
	if (!c && strcmp(argv[2], "truncate")) {
		fprintf(stderr, "%s: unknown WHAT '%s'\n", prog, argv[2]);
		return usage();
	}
	s.what = argv[2];
	i = 3;
	if (c && c->needs_n) {
		if (argc <= i) {
			fprintf(stderr, "%s: %s needs N (a port or request number)\n", prog, argv[2]);
			return 2;
		}
		r = parse_u64(argv[2], argv[i++], &a.n);
		if (r)
			return r;
		a.has_n = true;
	}
	if (argc > i) {
		a.vstr = argv[i];
		if (c != NULL && c->fn == c_request_life) {
			a.has_v = true;		/* a name or a number: parsed there */
		} else {
			r = parse_u64(argv[2], argv[i], &a.v);
			if (r)
				return r;
			a.has_v = true;
		}
		i++;
	}
	if (argc > i) {
		fprintf(stderr, "%s: %s: unexpected argument '%s'\n", prog, argv[2], argv[i]);
		return 2;
	}
	if (xseg_parse_spec(argv[1], &cfg, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return 2;
	}
	if (!c) {	/* truncate */
		if (!a.has_v) {
			fprintf(stderr, "%s: truncate needs the new size in bytes\n", prog);
			return 2;
		}
		if (a.v > INT64_MAX)
			return fail("truncate: %" PRIu64 " bytes is too large", a.v);
		r = open_seg(&s, &cfg, false);
		if (r)
			return r;
		if (ftruncate(s.fd, (off_t)a.v) < 0)
			return fail("cannot truncate %s to %" PRIu64 " bytes: %s", s.path, a.v, strerror(errno));
		say(&s, "truncated %" PRIu64 " -> %" PRIu64 " bytes\n", s.size, a.v);
		close(s.fd);
		return 0;
	}
	r = open_seg(&s, &cfg, true);
	if (r)
		return r;
	r = c->fn(&s, &a);
	fflush(stdout);
	if (!r && msync(s.base, (size_t)s.size, MS_SYNC) < 0)
		r = fail("msync %s: %s", s.path, strerror(errno));
	munmap(s.base, (size_t)s.size);
	close(s.fd);
	return r;
}
