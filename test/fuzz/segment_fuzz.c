/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: fuzz target of the segment core against corrupt and hostile
 * segment images (docs/hostile.md). A small segment is built once in a
 * heap segment, with requests in every state (queued, accepted, forwarded,
 * replied, prepared) and its ports' owners made dead; its bytes are the
 * pristine image. Each input is a list of patches (region, offset, bytes)
 * applied to a copy of the image placed between PROT_NONE guard pages; then
 * the copy is joined through a segment type of this program (so the join
 * validates the patched header), verified, recovered, and driven through
 * bind/get/prep/submit/accept/forward/respond/receive/put/leave, with a
 * second handle joined beside the first. Any crash, sanitizer report, or
 * access outside the segment (the guard pages) is a bug; so is a join error
 * without a message. Built by test/fuzz/Makefile with libFuzzer
 * (-DXSEG_LIBFUZZER); the plain build (make user) is a replay test: the seed
 * corpus, files given as arguments, and a deterministic mutation loop
 * (XSEG_SEED, XSEG_FUZZ_ITERS, XSEG_FUZZ_SECS).
 *
 * Input: byte 0 = options (bit 0: the fresh image instead of the busy one;
 * bits 1-2: mapping size 0/1 full, 2 one page short, 3 the header page only;
 * bit 3: a second handle; bits 4-7: operation variant), then patches of
 * [region][offset lo][offset hi][len] + len bytes (len 1..16). Region % 8:
 * 0 header and peer-type table, 1 ports, 2 requests, 3 generations, 4 holds, 5 queues,
 * 6 everything before the buffers, 7 the whole segment; the offset is
 * taken modulo the region's size.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "xseg/xseg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SPEC	"heap:fzpristine:4:8:4K:0:12:dynports=2"
#define DEAD_PID 0x3FFFFFF0u	/* above any pid_max: never alive */

static const char *fz_name = "fz";
static uint8_t *region;		/* guard page | segment | guard page */
static uint8_t *seg;		/* the segment copy the fuzzed handle maps */
static uint64_t seg_size, map_size, page;
static uint8_t *pristine[2];	/* busy, fresh */
static struct xseg_header geo;	/* the layout (offsets), from the pristine header */
static unsigned long joined, refused;	/* inputs whose image was joined / refused */

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "segment_fuzz: %s: %s\n", what, detail ? detail : "");
	abort();
}

/* ------------------------------------------------- the fuzz segment type */

static int fz_create(const char *name, uint64_t size, uint32_t mode, int32_t gid, void **mem,
		     char *err, size_t errlen)
{
	(void)name; (void)size; (void)mode; (void)gid; (void)mem; (void)err; (void)errlen;
	return -ENOTSUP;
}

static int fz_map(const char *name, void **mem, uint64_t *size, char *err, size_t errlen)
{
	(void)err; (void)errlen;
	if (strcmp(name, fz_name))
		return -ENOENT;
	*mem = seg;
	*size = map_size;
	return 0;
}

static void fz_unmap(void *mem, uint64_t size)
{
	if (mem != seg)
		die("unmap of memory that is not the segment", NULL);
	(void)size;
}

static int fz_destroy(const char *name)
{
	(void)name;
	return 0;
}

static const struct xseg_segtype_ops fz_ops = {
	.abi_size = sizeof(struct xseg_segtype_ops),
	.version = 1,
	.name = "fuzzseg",
	.create = fz_create,
	.map = fz_map,
	.unmap = fz_unmap,
	.destroy = fz_destroy,
};

/* ------------------------------------------------- the pristine images */

static void must(bool ok, const char *what)
{
	if (!ok)
		die("building the pristine image", what);
}

static struct xseg_request *prepped(struct xseg *xs, uint32_t port, uint64_t len)
{
	struct xseg_request *r = xseg_get_request(xs, port);

	must(r != NULL, "get_request");
	must(xseg_prep_request(xs, r, "target", 6, len) == 0, "prep_request");
	return r;
}

/* Snapshot the heap segment of @xs into a new buffer; make its owners dead and forget its peers. */
static uint8_t *snapshot(struct xseg *xs)
{
	uint8_t *img = malloc(seg_size);
	struct xseg_header *h;

	must(img != NULL, "malloc");
	memcpy(img, xseg_base(xs), seg_size);
	h = (struct xseg_header *)img;
	for (uint32_t p = 0; p < h->cfg.nr_ports; p++) {
		struct xseg_port *port = (struct xseg_port *)(img + h->ports_off) + p;
		uint64_t w = port->owner;

		if (XSEG_OWNER_STATE(w) != XSEG_PORT_FREE)
			port->owner = XSEG_OWNER(XSEG_OWNER_STATE(w), XSEG_OWNER_GEN(w), DEAD_PID);
	}
	memset(h->peers, 0, sizeof(h->peers));
	h->recovery = 0;
	h->attached = 0;
	return img;
}

static void build(void)
{
	struct xseg_config cfg;
	struct xseg_request *r;
	struct xseg *xs;
	char err[256];
	int e, cli;

	setenv("XSEG_LOG_LEVEL", "0", 0);
	if (xseg_register_segtype(&fz_ops))
		die("cannot register the fuzz segment type", NULL);
	if (xseg_parse_spec(SPEC, &cfg, err, sizeof(err)))
		die("spec", err);
	if (xseg_create(&cfg, err, sizeof(err)))
		die("create", err);
	xs = xseg_join(cfg.type, cfg.name, "futex", NULL, NULL, &e, err, sizeof(err));
	if (!xs)
		die("join", err);
	seg_size = xseg_size(xs);
	page = (uint64_t)sysconf(_SC_PAGESIZE);
	geo = *xseg_header(xs);
	pristine[1] = snapshot(xs);		/* fresh: nothing bound, nothing in flight */

	must(xseg_bind_port(xs, 0, 0) == 0, "bind 0");
	must(xseg_bind_port(xs, 1, 0) == 1, "bind 1");
	cli = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	must(cli >= 2, "bind any");
	/* SUBMITTED to 0 */
	must(xseg_submit(xs, prepped(xs, (uint32_t)cli, 100), 0) >= 0, "submit");
	/* ACCEPTED by 0 */
	must(xseg_submit(xs, prepped(xs, (uint32_t)cli, 4096), 0) >= 0, "submit");
	r = xseg_accept(xs, 0);
	must(r != NULL, "accept");
	/* forwarded 1 -> 0: SUBMITTED to 0 with a return path (behind the first one) */
	must(xseg_submit(xs, prepped(xs, (uint32_t)cli, 1), 1) >= 0, "submit");
	r = xseg_accept(xs, 1);
	must(r != NULL && xseg_forward(xs, r, 1, 0) == 0, "forward");
	/* RESPONDED to the client */
	{
		struct xseg_request *a, *b;

		a = prepped(xs, (uint32_t)cli, 0);
		must(xseg_submit(xs, a, 1) >= 0, "submit");
		b = xseg_accept(xs, 1);
		must(b == a, "accept 1");
		must(xseg_respond(xs, b) == cli, "respond");
	}
	/* PREPARED by the client */
	(void)prepped(xs, (uint32_t)cli, 2000);
	pristine[0] = snapshot(xs);
	/* Leaving settles the heap segment; the snapshot keeps the busy state. */
	xseg_leave(xs);
	xseg_destroy_name(cfg.type, cfg.name);

	region = mmap(NULL, seg_size + 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		die("mmap", NULL);
	seg = region + page;
}

/* ------------------------------------------------- one input */

static void check_line(void *arg, const char *line)
{
	size_t n;

	(void)arg;
	n = strnlen(line, 4096);
	if (n == 4096 || n == 0)
		die("verify printed an unterminated or empty line", NULL);
}

static void serve_all(struct xseg *xs, int s, int m, int c, unsigned variant)
{
	struct xseg_request *r;

	for (int i = 0; i < 12; i++) {
		if (s >= 0 && (r = xseg_accept(xs, (uint32_t)s))) {
			uint64_t len = r->data_len;
			uint8_t *d = xseg_req_data(xs, r);

			/* Touch the whole buffer the library vouched for: the guard pages see it. */
			if (d && len)
				memset(d, 0xA5, (size_t)len);
			(void)xseg_req_target(xs, r);
			if (i % 3 == 2)
				xseg_fail(xs, r, EIO);
			else {
				r->state |= XS_SERVED;
				xseg_respond(xs, r);
			}
		}
		if (m >= 0 && (r = xseg_accept(xs, (uint32_t)m))) {
			if (s < 0 || xseg_forward(xs, r, (uint32_t)m, (uint32_t)s) < 0)
				xseg_fail(xs, r, ENOENT);
		}
		if (m >= 0 && (r = xseg_receive(xs, (uint32_t)m)))
			xseg_respond(xs, r);
		if (c >= 0 && (r = xseg_receive(xs, (uint32_t)c))) {
			uint8_t *d = xseg_req_data(xs, r);

			if (d && r->data_len)
				(void)*(volatile uint8_t *)(d + r->data_len - 1);
			if ((variant & 3) == 1)
				xseg_submit(xs, r, (uint32_t)(s >= 0 ? s : 0));	/* resubmit a received one */
			else
				xseg_put_request(xs, r);
		}
		if (s >= 0)
			xseg_signal(xs, (uint32_t)s);
	}
}

static void exercise(struct xseg *xs, unsigned variant)
{
	static const uint64_t sizes[] = { 0, 1, 512, 4096, 4097, 1 << 20 };
	struct xseg_recovery_stats st;
	struct xseg_request *held[4] = { 0 };
	int s, m, c, n = 0;

	xseg_verify(xs, check_line, NULL);
	xseg_recover(xs, &st);
	xseg_verify(xs, check_line, NULL);
	s = xseg_bind_port(xs, 0, 0);
	m = xseg_bind_port(xs, 1, 0);
	c = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	if (variant & 4)
		xseg_set_redirect(xs, 1, 0);
	serve_all(xs, s, m, c, variant);
	for (int i = 0; c >= 0 && i < 6; i++) {
		struct xseg_request *r = xseg_get_request(xs, (uint32_t)c);
		uint8_t *d;

		if (!r)
			break;
		if (xseg_prep_request(xs, r, "fz", 2, sizes[(i + variant) % 6]) == 0) {
			d = xseg_req_data(xs, r);
			if (d && r->data_len)
				memset(d, i, (size_t)r->data_len);
		}
		if ((i + variant) % 5 == 4 && n < 4) {
			held[n++] = r;		/* kept prepared until the handle leaves */
			continue;
		}
		if (xseg_submit(xs, r, (uint32_t)(i % 2 ? m >= 0 ? m : 1 : s >= 0 ? s : 0)) < 0)
			xseg_put_request(xs, r);
	}
	serve_all(xs, s, m, c, variant);
	if (c >= 0)
		xseg_wait(xs, (uint32_t)c, 0);
	if (variant & 8 && m >= 0)
		xseg_leave_port(xs, (uint32_t)m);
	for (int i = 0; i < n; i++)
		if (variant & 1)
			xseg_put_request(xs, held[i]);
	xseg_verify(xs, check_line, NULL);
	xseg_recover(xs, NULL);
}

static void patch(const uint8_t *data, size_t size)
{
	const struct xseg_header *h = &geo;
	struct { uint64_t off, len; } rg[8] = {
		{ 0, h->ports_off },	/* the header page and the peer-type table */
		{ h->ports_off, h->reqs_off - h->ports_off },
		{ h->reqs_off, h->gens_off - h->reqs_off },
		{ h->gens_off, h->holds_off - h->gens_off },
		{ h->holds_off, h->queues_off - h->holds_off },
		{ h->queues_off, h->bufs_off - h->queues_off },
		{ 0, h->bufs_off },
		{ 0, seg_size },
	};
	size_t i = 0;

	while (i + 4 <= size) {
		unsigned r = data[i] % 8;
		uint64_t off = (uint64_t)data[i + 1] | (uint64_t)data[i + 2] << 8 | (uint64_t)(data[i] >> 3) << 16;
		size_t len = 1 + data[i + 3] % 16;

		i += 4;
		if (len > size - i)
			len = size - i;
		off = rg[r].off + off % rg[r].len;
		if (off + len > seg_size)
			len = (size_t)(seg_size - off);
		memcpy(seg + off, data + i, len);
		i += len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xseg *xs, *x2 = NULL;
	unsigned opt = size ? data[0] : 0;
	char err[256];
	int e = 0;

	if (!seg)
		build();
	/* Restore the image (nothing runs on it now), then patch it. */
	if (mprotect(seg, seg_size, PROT_READ | PROT_WRITE))
		die("mprotect", NULL);
	memcpy(seg, pristine[opt & 1], seg_size);
	if (size)
		patch(data + 1, size - 1);
	switch ((opt >> 1) & 3) {
	case 2:
		map_size = seg_size - page;
		break;
	case 3:
		map_size = XSEG_HEADER_SIZE;
		break;
	default:
		map_size = seg_size;
		break;
	}
	/* What is not mapped must not be touched. */
	if (map_size < seg_size && mprotect(seg + map_size, seg_size - map_size, PROT_NONE))
		die("mprotect", NULL);

	memset(err, 0x5A, sizeof(err));
	xs = xseg_join("fuzzseg", fz_name, "futex", NULL, NULL, &e, err, sizeof(err));
	if (!memchr(err, 0, sizeof(err)))
		die("join error message not NUL-terminated", NULL);
	if (!xs) {
		if (e >= 0 || !err[0])
			die("join failed without an error code and a message", err);
		if (e != -EBADMSG && e != -EPROTO && e != -EIDRM && e != -ENOSPC && e != -EUSERS &&
		    e != -ENOTSUP && e != -ENOMEM)
			die("join failed with an unexpected error", err);
		refused++;
		return 0;
	}
	if (map_size < seg_size)
		die("join accepted a mapping smaller than the segment", NULL);
	joined++;
	if (opt & 8) {
		x2 = xseg_join("fuzzseg", fz_name, "futex", NULL, NULL, &e, err, sizeof(err));
		if (x2)
			xseg_verify(x2, check_line, NULL);
	}
	exercise(xs, opt >> 4);
	if (x2) {
		xseg_recover(x2, NULL);
		xseg_leave(x2);
	}
	xseg_leave(xs);
	return 0;
}

#ifndef XSEG_LIBFUZZER
/* ------------------------------------------------ the plain (replay) build */
#define FZ_MAX_INPUT 1024
#include "replay.h"

/* A patch of @len bytes of @v (little endian) into @region at @off. */
static size_t put_patch(uint8_t *b, size_t at, unsigned rgn, uint32_t off, uint64_t v, unsigned len)
{
	b[at] = (uint8_t)(rgn | (off >> 16) << 3);
	b[at + 1] = (uint8_t)off;
	b[at + 2] = (uint8_t)(off >> 8);
	b[at + 3] = (uint8_t)(len - 1);
	for (unsigned i = 0; i < len; i++)
		b[at + 4 + i] = (uint8_t)(v >> (8 * i));
	return at + 4 + len;
}

/* Built-in seeds: one targeted field each (offsets from the layout). XSEG_FUZZ_DUMP=DIR writes them there. */
static void builtin_seeds(void)
{
	const char *dump = getenv("XSEG_FUZZ_DUMP");
	const struct xseg_header *h = &geo;
	uint64_t q1 = h->free_queue_off + h->queue_size * 3 - h->queues_off;	/* port 1's rq, in region 5 */
	uint64_t fq = h->free_queue_off - h->queues_off;
	struct { unsigned opt, region; uint64_t off, v; unsigned len; } s[] = {
		{ 0, 0, 0, 0, 1 },						/* magic */
		{ 0, 0, __builtin_offsetof(struct xseg_header, major), XSEG_VERSION_MAJOR + 1, 2 },
		{ 0, 0, __builtin_offsetof(struct xseg_header, size), 1, 8 },
		{ 0, 0, __builtin_offsetof(struct xseg_header, cfg.nr_ports), 5, 4 },
		{ 0, 0, __builtin_offsetof(struct xseg_header, flags), XSEG_F_DESTROYED, 8 },
		{ 0, 0, __builtin_offsetof(struct xseg_header, recovery), 1, 8 },
		{ 0, 0, h->types_off + __builtin_offsetof(struct xseg_peer_type, word), 7, 8 },
		{ 0, 0, h->types_off + __builtin_offsetof(struct xseg_peer_type, name), 0x8181818181818181ull, 8 },
		{ 0, 0, __builtin_offsetof(struct xseg_header, types_off), 0xDEADBEEF, 8 },
		{ 0, 0, __builtin_offsetof(struct xseg_header, nr_peer_types), 129, 4 },
		{ 0, 0, __builtin_offsetof(struct xseg_header, cfg.peer_types), 0xDEADBEEF, 4 },
		/* growth words: counts past the reserve, a retire bound that parks everything */
		{ 0, 0, __builtin_offsetof(struct xseg_header, live_requests), 0xFFFFFFFFFFull, 8 },
		{ 0, 0, __builtin_offsetof(struct xseg_header, retire_requests), 1, 8 },
		{ 0, 0, __builtin_offsetof(struct xseg_header, live_chunks), 1ull << 40, 8 },
		{ 0, 0, __builtin_offsetof(struct xseg_header, retire_chunks), 1, 8 },
		{ 0, 0, __builtin_offsetof(struct xseg_header, cfg.max_requests), 1u << 20, 4 },
		{ 0, 1, __builtin_offsetof(struct xseg_port, owner), 0xDEADBEEFDEADBEEFull, 8 },
		{ 0, 1, __builtin_offsetof(struct xseg_port, peer_type), 0xDEADBEEF, 4 },
		{ 0, 1, __builtin_offsetof(struct xseg_port, redirect), 3, 4 },
		{ 0, 1, sizeof(struct xseg_port) + __builtin_offsetof(struct xseg_port, redirect), 0, 4 },
		{ 0, 2, __builtin_offsetof(struct xseg_request, buf_index), 0xDEADBEEF, 4 },
		{ 0, 2, __builtin_offsetof(struct xseg_request, buf_index), 0, 4 },
		{ 0, 2, 512 + __builtin_offsetof(struct xseg_request, path_len), 0xDEADBEEF, 4 },
		{ 0, 2, 1024 + __builtin_offsetof(struct xseg_request, path_len), 3, 4 },
		{ 0, 2, 1024 + __builtin_offsetof(struct xseg_request, state), 0xEE00, 4 },
		{ 0, 2, 1536 + __builtin_offsetof(struct xseg_request, holder), 0xDEADBEEF00000000ull, 8 },
		{ 0, 2, 1536 + __builtin_offsetof(struct xseg_request, src_port), 0xDEADBEEF, 4 },
		{ 0, 2, 2048 + __builtin_offsetof(struct xseg_request, data_len), 1ull << 40, 8 },
		{ 0, 4, 0, XQ_HOLD_HELD, 8 },
		{ 0, 4, 8, 0xFFFFFFFF, 4 },
		{ 0, 4, 32 * 32, XQ_HOLD_DEQ, 8 },			/* a recovery hold */
		{ 0, 4, 33 * 32 + 24, 0xDEADBEEF, 8 },
		{ 0, 5, fq + 64, 1ull << 40, 8 },				/* free queue tail */
		{ 0, 5, fq + 128, 1ull << 40, 8 },				/* free queue head */
		{ 0, 5, fq + 256, 0xFFFFFFFFFFFFFFFFull, 8 },		/* a free queue slot */
		{ 0, 5, q1 + 64, 0xFFFFFFFFFFFFFF00ull, 8 },		/* port 1 rq tail */
		{ 0, 5, q1 + 192, 0x7FFFFFFFFFFFFFFFull, 8 },		/* port 1 rq threshold */
		{ 0, 5, q1 + 12, 1, 4 },					/* port 1 rq capacity */
		{ 2, 0, 0, XSEG_MAGIC, 8 },				/* mapping one page short */
		{ 6, 0, 0, XSEG_MAGIC, 8 },				/* the header page only */
		{ 1, 3, 0, 0xFFFFFFFFFFFFFFFFull, 8 },			/* fresh image, a generation */
		{ 0x18, 7, 0, 0, 1 },					/* second handle, variant 1 */
		{ 0xF9, 6, 0, 0, 1 },
	};

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		uint8_t b[32];
		size_t n;

		b[0] = (uint8_t)s[i].opt;
		n = put_patch(b, 1, s[i].region, (uint32_t)s[i].off, s[i].v, s[i].len);
		LLVMFuzzerTestOneInput(b, n);
		add_seed(b, n);
		if (dump && *dump) {
			char path[4200];
			FILE *f;

			snprintf(path, sizeof(path), "%s/seed-%02zu", dump, i);
			f = fopen(path, "wb");
			CHECKF(f && fwrite(b, 1, n, f) == n && fclose(f) == 0, "cannot write %s", path);
		}
	}
}

/* The seed corpus next to this source file (or under $XSEG_HOME). */
static void test_corpus(void)
{
	LLVMFuzzerTestOneInput(NULL, 0);	/* the pristine image, unpatched */
	builtin_seeds();
	replay_corpus("segment");		/* the built-in seeds are enough to go on */
}

/* Values a corrupt field likes to hold. */
static uint64_t interesting(uint64_t *s)
{
	static const uint64_t v[] = {
		0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000,
		0x7FFFFFFF, 0x80000000ull, 0xFFFFFFFEull, 0xFFFFFFFFull, 0xFFFF0000ull, 0xFFFEFFFFull,
		1ull << 32, 1ull << 40, 1ull << 62, 3ull << 62, 0x7FFFFFFFFFFFFFFFull, 0x8000000000000000ull,
		0xFFFFFFFFFFFFFFFFull, XSEG_MAGIC, XQ_MAGIC, XSEG_NO_PORT, XSEG_HOLDER_NONE,
	};

	return xt_rand(s) % 3 ? v[xt_rand(s) % (sizeof(v) / sizeof(v[0]))] : xt_rand(s);
}

/* Mutate the seeds the way a fuzzer would, deterministically per seed, for a bounded time. */
static void test_mutations(void)
{
	uint64_t s = xt_seed();
	long iters = xt_env_long("XSEG_FUZZ_ITERS", 1000000);
	long secs = xt_env_long("XSEG_FUZZ_SECS", 3);
	uint64_t end = xt_now_ns() + (uint64_t)secs * 1000000000ull;
	uint8_t buf[FZ_MAX_INPUT];
	long it;

	for (it = 0; it < iters && xt_now_ns() < end; it++) {
		int k = (int)(xt_rand(&s) % (uint64_t)nr_seeds);
		size_t n = seed_len[k];
		int muts = 1 + (int)(xt_rand(&s) % 4);

		memcpy(buf, seeds[k], n);
		if (!n) {
			buf[0] = 0;
			n = 1;
		}
		while (muts--) {
			switch (xt_rand(&s) % 4) {
			case 0:		/* another option byte */
				buf[0] = (uint8_t)xt_rand(&s);
				break;
			case 1:		/* flip bytes anywhere */
				for (int j = 0; j < 4; j++)
					buf[xt_rand(&s) % n] ^= (uint8_t)(1u << (xt_rand(&s) % 8));
				break;
			default:	/* a new patch: an interesting value in a region */
				if (n + 12 < sizeof(buf)) {
					unsigned len = 1u << (xt_rand(&s) % 4);

					n = put_patch(buf, n, (unsigned)(xt_rand(&s) % 8),
						      (uint32_t)(xt_rand(&s) % (1u << 21)) & ~(len - 1),
						      interesting(&s), len);
				}
				break;
			}
		}
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("%ld mutated inputs; %lu images joined, %lu refused at join\n", it, joined, refused);
}

#endif
