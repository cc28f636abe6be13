/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg-tool - the core operations from C, for systems without Node (the
 * kernel test VM, minimal installs):
 *
 *   xseg-tool create SPEC          create a segment
 *   xseg-tool create memfd:...  --send SOCKET | --exec CMD [ARG...]
 *                                  create a private (memfd) segment and hand
 *                                  it over: its fd over a Unix socket, or
 *                                  inherited by CMD (XSEG_MEMFD=<fd>)
 *   xseg-tool recv SOCKET --exec CMD [ARG...]
 *                                  receive a memfd segment on a Unix socket
 *                                  and run CMD with it (XSEG_MEMFD=<fd>)
 *   xseg-tool destroy SPEC         mark it destroyed and remove its name
 *   xseg-tool list [TYPE]          segments of a type (default posix)
 *   xseg-tool status SPEC          header, ports, queues, counters
 *   xseg-tool recover SPEC         settle ports of dead peers
 *   xseg-tool verify SPEC          consistency check (exit 1 on problems)
 *   xseg-tool requests SPEC [-p PORT]  requests in use (peers/user/xseg-debug.c)
 *   xseg-tool tap SPEC -p PORT --to DST [-n COUNT]  a logging forwarder (same)
 *   xseg-tool fail SPEC SERIAL     fail back a request whose holder is dead (same)
 *   xseg-tool reset-port SPEC PORT [--force]   reset a port's corrupt queues (same)
 *   xseg-tool submit SPEC -p DST [--op OP] [--target T] [--offset N]
 *             [--size N] [--count N] [--depth N] [--verify] [--timeout MS]
 *             [--flags fua,flush,nosync] [--data STR | --data-file F] [--out F]
 *                                  send requests and wait for the replies
 *
 * Exit status: 0 success, 1 failure, 2 usage.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "xseg/xseg.h"
#include "xseg/xseg_extents.h"
#include "sys/user/segtypes/owner.h"
#include "sys/user/segtypes/xseg_memfd.h"
#include <sys/socket.h>
#include <sys/un.h>
#include "pattern.h"
#include "storage.h"

static const char *prog = "xseg-tool";
static char seg_label[XSEG_TYPE_LEN + XSEG_NAME_LEN + 2];	/* "posix:demo", for messages */
static FILE *info_out;	/* submit's report: stdout, or stderr when --out - has stdout */

/* The usage listing: on stdout for --help (exit 0), on stderr for a usage error (2). */
static int usage_to(FILE *out)
{
	fprintf(out,
		"usage: %s create|destroy|status|recover|verify SPEC\n"
		"       %s create memfd:NAME:... --send SOCKET | --exec CMD [ARG...]\n"
		"       %s recv SOCKET --exec CMD [ARG...]\n"
		"       %s config SPEC [--set mode=0NNN,group=G,owner=U]\n"
		"       %s config SPEC --grow requests=N [--wait]   grow or shrink a live segment (max_requests=)\n"
		"       %s list [TYPE]\n"
		"       %s requests SPEC [-p PORT]   the requests in use: life, holder, age, target\n"
		"       %s tap SPEC -p PORT --to DST [-n COUNT]   forward PORT's requests to DST, log each\n"
		"       %s fail SPEC SERIAL   fail back a request whose holder is dead (see requests)\n"
		"       %s reset-port SPEC PORT [--force]   reset a port's corrupt queues (see verify)\n"
		"       %s submit SPEC -p PORT [-o|--op OP] [-T|--target T] [-O|--offset N] [-s|--size N]\n"
		"                 [-n|--count N] [-D|--depth N] [-V|--verify] [-w|--timeout MS] [-d DRIVER]\n"
		"                 [--spin-us N] [-F|--flags fua,flush,nosync] [--data STRING | --data-file FILE]\n"
		"                 [--out FILE|-]\n"
		"       %s --version | --help\n"
		"  SPEC: demo, posix:demo, posix:demo,ports=16,buffer=64K ... (docs/spec.md);\n"
		"  -d DRIVER is also --peer-type; OP: ping read write sync flush info hash ...\n"
		"  sizes and offsets take K, M, G, T; --data/--data-file fill the request's data\n"
		"  (its length is the size unless -s says otherwise); --out writes the data of a\n"
		"  successful reply (serviced bytes) to FILE or stdout; one request prints\n"
		"  'serviced N', INFO 'size N', HASH 'hash HEX', MAPR (of a storage peer or\n"
		"  vlmcd: 4K of room, 256 extents) 'extent OFFSET LENGTH data|hole[,zero]'\n"
		"  config prints the spec with every default filled in; --set changes the\n"
		"  owner, group and mode of the live segment (file and header together);\n"
		"  --grow makes N requests (and default-class chunks) live, up to max_requests;\n"
		"  a shrink parks what comes back free and says what is still held (exit 1\n"
		"  while some are; --wait retries until none is)\n"
		"  a memfd segment has no name: create hands its descriptor over (--send: to\n"
		"  the Unix socket SOCKET; --exec: CMD inherits it), recv takes one from a\n"
		"  socket; CMD finds the descriptor in $XSEG_MEMFD and joins memfd:$XSEG_MEMFD\n",
		prog, prog, prog, prog, prog, prog, prog, prog, prog, prog, prog, prog);
	return 2;
}

static int usage(void)
{
	return usage_to(stderr);
}

/* A usage error about submit's --op: names every op there is. */
static int bad_op(const char *op)
{
	fprintf(stderr, "%s: --op: unknown op '%s' (ops:", prog, op);
	for (uint32_t i = 0; i < X_OP_COUNT; i++)
		fprintf(stderr, " %s", xseg_op_name(i));
	fprintf(stderr, ")\nusage: %s submit SPEC -p PORT [-o|--op OP] ... (%s --help)\n", prog, prog);
	return 2;
}

/* A whole-number option (the size grammar: 4K, 1M...) of at most UINT32_MAX. */
static int u32_opt(const char *opt, const char *arg, uint32_t *v)
{
	uint64_t x;

	if (st_parse_size(arg, &x) || x > UINT32_MAX) {
		fprintf(stderr, "%s: %s: '%s' is not a number from 0 to %u\n", prog, opt, arg, UINT32_MAX);
		return -1;
	}
	*v = (uint32_t)x;
	return 0;
}

/*
 * A SPEC the parser refuses is a failure (1, EINVAL), not a usage error: the
 * command line had the right shape, as `xseg` has it (docs/cli.md#exit-status).
 */
static int spec_of(const char *spec, struct xseg_config *cfg)
{
	char err[256];

	if (xseg_parse_spec(spec, cfg, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return 1;
	}
	return 0;
}

static struct xseg *join(const struct xseg_config *cfg, const char *driver)
{
	char err[256] = "";
	int e;
	struct xseg *xs = xseg_join(cfg->type, cfg->name, driver, NULL, NULL, &e, err, sizeof(err));

	if (!xs)
		fprintf(stderr, "%s: cannot join '%s': %s\n", prog, cfg->name, err[0] ? err : strerror(-e));
	return xs;
}

static void print_name(void *arg, const char *name)
{
	(void)arg;
	printf("%s\n", name);
}

static void print_line(void *arg, const char *line)
{
	(void)arg;
	printf("  %s\n", line);
}

static const char *state_name(uint64_t w, int alive)
{
	switch (XSEG_OWNER_STATE(w)) {
	case XSEG_PORT_FREE: return "free";
	case XSEG_PORT_BOUND: return alive ? "bound" : "dead";
	case XSEG_PORT_BINDING: return "binding";
	default: return "recovering";
	}
}

#include "xseg-debug.h"

/* The named entries of the peer-type table, "index name", eight to a line. */
static void print_peer_types(struct xseg *xs)
{
	uint32_t i, n = xseg_peer_type_count(xs), named = 0;
	char name[XSEG_TYPE_LEN];

	for (i = 0; i < n; i++)
		named += xseg_peer_type_name(xs, i, name, sizeof(name)) == 0;
	printf("types     %u of %u entries named", named, n);
	for (i = 0, named = 0; i < n; i++) {
		if (xseg_peer_type_name(xs, i, name, sizeof(name)))
			continue;
		printf("%s%u %s", named++ % 8 ? ", " : "\n          ", i, name);
	}
	printf("\n");
}

static int cmd_status(struct xseg *xs)
{
	struct xseg_header *h = xseg_header(xs);
	const struct xseg_config *c = xseg_config(xs);
	struct xseg_grow_status gs;
	char spec[512];

	xseg_grow_status(xs, &gs);
	xseg_format_spec(c, spec, sizeof(spec));
	printf("segment   %s\nversion   %u.%u\nsize      %" PRIu64 " bytes\ncreator   uid %u pid %u, mode %04o\n"
	       "requests  %u live of %u (queue capacity %u), serial %" PRIu64 ", recoveries %" PRIu64 "\n",
	       spec, h->major, h->minor, xseg_size(xs), h->uid, h->creator_pid, h->mode, gs.live_requests,
	       gs.max_requests, h->queue_cap, __atomic_load_n(&h->serial, __ATOMIC_RELAXED),
	       __atomic_load_n(&h->recoveries, __ATOMIC_RELAXED));
	{
		uint32_t fu, fg, fm;

		if (xseg_real_owner(c->type, xseg_segname(xs), &fu, &fg, &fm) == 0) {
			printf("file      uid %u gid %u mode %04o", fu, fg, fm);
			if (fu != h->uid || fg != h->gid || fm != h->mode)
				printf(" (MISMATCH: the header says uid %u gid %u mode %04o)", h->uid,
				       h->gid, h->mode);
			printf("\n");
		}
	}
	print_peer_types(xs);
	printf("%-5s %-10s %-8s %-8s %-6s %6s %6s %10s %10s %10s %10s %8s\n", "port", "state", "type",
	       "pid", "alive", "reqq", "repq", "submitted", "accepted", "responded", "received", "failed");
	for (uint32_t i = 0; i < c->nr_ports; i++) {
		struct xseg_port *p = xseg_port(xs, i);
		uint64_t w = __atomic_load_n(&p->owner, __ATOMIC_ACQUIRE);
		int alive = XSEG_OWNER_STATE(w) == XSEG_PORT_BOUND &&
			    xseg_sys_alive(XSEG_OWNER_PID(w), p->owner_start);
		uint32_t pt = p->peer_type;
		uint32_t nrq = 0, npq = 0;
		char ptname[XSEG_TYPE_LEN];

		/* Through the queues join validated, never offsets read again now. */
		xseg_port_depths(xs, i, &nrq, &npq);
		if (XSEG_OWNER_STATE(w) == XSEG_PORT_FREE && !nrq && !npq && !p->cnt.submitted &&
		    !p->cnt.accepted)
			continue;
		printf("%-5u %-10s %-8.8s %-8u %-6s %6u %6u %10" PRIu64 " %10" PRIu64 " %10" PRIu64
		       " %10" PRIu64 " %8" PRIu64 "\n", i, state_name(w, alive),
		       XSEG_OWNER_STATE(w) != XSEG_PORT_FREE &&
		       !xseg_peer_type_name(xs, pt, ptname, sizeof(ptname)) ? ptname : "-",
		       XSEG_OWNER_PID(w), XSEG_OWNER_STATE(w) == XSEG_PORT_FREE ? "-" : alive ? "yes" : "no",
		       nrq, npq, p->cnt.submitted, p->cnt.accepted, p->cnt.responded, p->cnt.received,
		       p->cnt.failed);
	}
	print_quotas(xs, c->nr_ports);	/* xseg-debug.c */
	return 0;
}


/* config SPEC --grow requests=N [--wait]: grow or shrink within max_requests. */
static int cmd_grow(const struct xseg_config *cfg, const char *what, const char *wait)
{
	struct xseg_grow_status gs;
	unsigned long n;
	struct xseg *xs;
	char *end;
	int r;

	if (!strncmp(what, "requests=", 9))
		what += 9;
	errno = 0;
	n = strtoul(what, &end, 10);
	if (!*what || *end || errno || !n || n > UINT32_MAX || (wait && strcmp(wait, "--wait"))) {
		fprintf(stderr, "%s: config --grow needs requests=N (N >= 1), then optionally --wait\n", prog);
		return 2;
	}
	xs = join(cfg, "futex");
	if (!xs)
		return 1;
	for (;;) {
		r = xseg_grow(xs, (uint32_t)n, &gs);
		if (r == -EALREADY || (r == -EBUSY && wait)) {
			usleep(100000);
			continue;
		}
		break;
	}
	if (r == -ERANGE)
		fprintf(stderr, "%s: config --grow: %lu requests is above the segment's max_requests (%u)\n",
			prog, n, gs.max_requests);
	else if (r == -EBUSY)
		fprintf(stderr, "%s: config --grow: shrinking to %u: %u requests or chunks above it still held "
			"(parked as they come back; run again, or --wait)\n", prog, gs.target, gs.held);
	else if (r)
		fprintf(stderr, "%s: config --grow: %s\n", prog, strerror(-r));
	else
		printf("%s:%s: %u requests live (%u chunks) of %u reserved; %u added, %" PRIu64 " bytes given back\n",
		       cfg->type, cfg->name, gs.live_requests, gs.live_chunks, gs.max_requests, gs.added,
		       gs.bytes_released);
	xseg_leave(xs);
	return r ? 1 : 0;
}

struct submit_opts {
	uint32_t dst, count, depth, timeout_ms, flags;
	int op, verify, size_set;
	const char *target;
	uint64_t offset, size;
	const uint8_t *data;		/* --data / --data-file */
	uint64_t data_len;
	const char *out;		/* --out */
};

/* "ENOSPC (No space left on device)" */
static const char *err_text(int e, char *buf, size_t len)
{
	const char *name = strerrorname_np(e);

	snprintf(buf, len, "%s (%s)", name ? name : "?", strerror(e));
	return buf;
}

/*
 * "xseg-tool: DELETE at 0 failed: EBUSY (...): MESSAGE" on stderr: a server
 * may put a one-line reason in a failed request's buffer (serviced bytes,
 * as mapperd and vlmcd do); it is shared memory, so shown escaped.
 */
static void fail_line(struct xseg *xs, struct xseg_request *req, char *eb, size_t ebn)
{
	const unsigned char *d = xseg_req_data(xs, req);
	uint64_t n = req->serviced < req->data_len ? req->serviced : req->data_len;
	char msg[4 * 240 + 1];
	size_t o = 0;

	if (!d || !n || d[0] < 0x20 || d[0] >= 0x7f)	/* no message: data, or nothing */
		n = 0;
	for (uint64_t i = 0; i < n && i < 240 && d[i]; i++)
		o += (size_t)snprintf(msg + o, sizeof(msg) - o, d[i] < 0x20 || d[i] >= 0x7f ? "\\x%02x" : "%c", d[i]);
	msg[o] = 0;
	fprintf(stderr, "%s: %s at %" PRIu64 " failed: %s%s%s\n", prog, xseg_op_name(req->op), req->offset,
		err_text(req->error, eb, ebn), o ? ": " : "", msg);
}

/*
 * An op sent with no data and no -s (DELETE, CLOSE, FLUSH...): it gets a
 * buffer anyway, as room for the reason a server gives when it fails it
 * (shown by fail_line), and size 0, so that the server reads no data in it.
 */
static int msg_room(const struct submit_opts *o)
{
	return !o->data && !o->size_set && o->op != X_READ && o->op != X_WRITE && o->op != X_INFO &&
	       o->op != X_HASH && o->op != X_PING;
}

/* Bytes of data buffer a request of @o needs. */
static uint64_t buffer_len(const struct submit_opts *o)
{
	uint64_t n = 0;

	if (o->op == X_READ || o->op == X_WRITE)
		n = o->size;
	else if (o->op == X_INFO)
		n = 8;
	else if (o->op == X_HASH)
		n = 64;
	else if (o->op == X_MAPR)
		n = 256 * XSEG_EXTENT_SIZE;
	if (o->data && o->data_len > n)
		n = o->data_len;
	if (o->data && o->size_set && o->size > n)
		n = o->size;
	if (msg_room(o))
		n = 256;
	return n;
}

static int write_out(const char *path, const void *buf, uint64_t len)
{
	int fd = strcmp(path, "-") ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : 1;
	int r;

	if (fd < 0) {
		fprintf(stderr, "%s: --out %s: %s\n", prog, path, strerror(errno));
		return -1;
	}
	r = st_pwrite(fd, buf, len, 0, 0);
	if (r == -ESPIPE) {		/* a pipe or a terminal */
		uint64_t done = 0;

		r = 0;
		while (done < len) {
			ssize_t n = write(fd, (const char *)buf + done, len - done);

			if (n <= 0) {
				r = n < 0 ? -errno : -EIO;
				break;
			}
			done += (uint64_t)n;
		}
	}
	if (fd != 1)
		close(fd);
	if (r)
		fprintf(stderr, "%s: --out %s: %s\n", prog, path, strerror(-r));
	return r ? -1 : 0;
}

/* Print what one successful reply carries. */
static int show_reply(struct xseg *xs, struct xseg_request *req, const struct submit_opts *o)
{
	const uint8_t *data = xseg_req_data(xs, req);
	uint64_t n = req->serviced <= req->data_len ? req->serviced : req->data_len;

	if (o->op == X_INFO && data && n >= 8) {
		uint64_t sz = 0;

		for (int i = 7; i >= 0; i--)
			sz = sz << 8 | data[i];
		fprintf(info_out, "size %" PRIu64 "\n", sz);
	} else if (o->op == X_HASH && data) {
		fprintf(info_out, "hash %.*s\n", (int)n, (const char *)data);
	} else if (o->op == X_MAPR && data) {
		/* The storage peers' extents (mapperd answers its own map entries: use --out). */
		uint64_t pos = req->offset;

		for (uint32_t i = 0; i < n / XSEG_EXTENT_SIZE; i++) {
			uint64_t len;
			uint32_t fl;

			xseg_extent_get(data, i, &len, &fl);
			fprintf(info_out, "extent %" PRIu64 " %" PRIu64 " %s%s\n", pos, len,
				fl & XSEG_EXTENT_HOLE ? "hole" : "data", fl & XSEG_EXTENT_ZERO ? ",zero" : "");
			pos += len;
		}
	}
	fprintf(info_out, "serviced %" PRIu64 "\n", req->serviced);
	fflush(info_out);
	if (o->out && data)
		return write_out(o->out, data, n);
	return 0;
}

static int cmd_submit(struct xseg *xs, const struct submit_opts *o)
{
	uint32_t sent = 0, done = 0, failed = 0, bad = 0, inflight = 0;
	uint64_t seed = pattern_seed(o->target, (uint32_t)strlen(o->target));
	uint64_t deadline = xseg_sys_now_ns() + (uint64_t)o->timeout_ms * 1000000;
	uint64_t buflen = buffer_len(o);
	int port = xseg_bind_port(xs, XSEG_ANY_PORT, 0), outerr = 0;
	char eb[128];

	if (port < 0) {
		fprintf(stderr, "%s: no free dynamic port: %s\n", prog, strerror(-port));
		return 1;
	}
	while (done < o->count) {
		struct xseg_request *req;
		uint32_t progress = done;

		while (sent < o->count && inflight < o->depth) {
			uint64_t off = o->offset + (uint64_t)sent * o->size;
			int r;

			req = xseg_get_request(xs, (uint32_t)port);
			if (!req)
				break;
			r = xseg_prep_request(xs, req, o->target, (uint32_t)strlen(o->target), buflen);
			if (r) {
				fprintf(stderr, "%s: prep (%" PRIu64 " bytes of data): %s\n", prog, buflen,
					strerror(-r));
				xseg_put_request(xs, req);
				return 1;
			}
			req->op = (uint32_t)o->op;
			req->flags = o->flags;
			req->offset = off;
			req->size = o->op == X_INFO ? 8 : o->op == X_HASH && !o->size_set ? 64 : msg_room(o) ? 0 : o->size;
			if (o->data) {
				uint8_t *d = xseg_req_data(xs, req);

				memcpy(d, o->data, o->data_len);
				memset(d + o->data_len, 0, buflen - o->data_len);
			} else if (o->op == X_WRITE) {
				pattern_fill(xseg_req_data(xs, req), o->size, seed, off);
			} else if (msg_room(o)) {
				memset(xseg_req_data(xs, req), 0, buflen);	/* no text: the server reads none */
			}
			/* Signals the port it went to: o->dst or its redirect. */
			r = xseg_submit_signal(xs, req, o->dst);
			if (r < 0) {
				if (r == -ENOENT)
					fprintf(stderr, "%s: port %u of %s is not bound (no peer serves it)\n", prog,
						o->dst, seg_label);
				else if (r == -EINVAL && o->dst >= xseg_config(xs)->nr_ports)
					fprintf(stderr, "%s: port %u of %s does not exist (ports 0..%u)\n", prog,
						o->dst, seg_label, xseg_config(xs)->nr_ports - 1);
				else
					fprintf(stderr, "%s: submit to port %u of %s: %s\n", prog, o->dst, seg_label,
						strerror(-r));
				xseg_put_request(xs, req);
				return 1;
			}
			sent++;
			inflight++;
		}
		while ((req = xseg_receive(xs, (uint32_t)port))) {
			inflight--;
			done++;
			if (req->state & XS_FAILED) {
				failed++;
				if (failed <= 5)
					fail_line(xs, req, eb, sizeof(eb));
			} else {
				if (o->verify && o->op == X_READ &&
				    pattern_check(xseg_req_data(xs, req), req->size, seed, req->offset) != req->size)
					bad++;
				if (o->count == 1)
					outerr |= show_reply(xs, req, o);
			}
			xseg_put_request(xs, req);
		}
		/* Sleep only when this round moved nothing: replies free slots to refill. */
		if (done < o->count && done == progress) {
			if (xseg_sys_now_ns() > deadline) {
				fprintf(stderr, "%s: timed out with %u of %u replies\n", prog, done, o->count);
				return 1;
			}
			xseg_wait(xs, (uint32_t)port, 100000);
		}
	}
	fprintf(info_out, "%u requests, %u failed, %u with wrong data\n", done, failed, bad);
	return failed || bad || outerr ? 1 : 0;
}

/* --flags fua,flush,nosync (or a number). */
static int parse_flags(const char *s, uint32_t *flags)
{
	char buf[128], *tok, *save = NULL;

	if (s[0] >= '0' && s[0] <= '9') {
		char *end;

		*flags = (uint32_t)strtoul(s, &end, 0);
		return *end ? -1 : 0;
	}
	snprintf(buf, sizeof(buf), "%s", s);
	*flags = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "fua"))
			*flags |= XF_FUA;
		else if (!strcmp(tok, "flush"))
			*flags |= XF_FLUSH;
		else if (!strcmp(tok, "nosync"))
			*flags |= XF_NOSYNC;
		else
			return -1;
	}
	return 0;
}

static uint8_t *read_file(const char *path, uint64_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t end;
	uint8_t *buf;
	int64_t n;

	if (fd < 0)
		return NULL;
	end = lseek(fd, 0, SEEK_END);
	if (end < 0 || !(buf = malloc(end ? (size_t)end : 1))) {
		close(fd);
		return NULL;
	}
	n = st_pread(fd, buf, (uint64_t)end, 0);
	close(fd);
	if (n != end) {
		free(buf);
		errno = n < 0 ? (int)-n : EIO;
		return NULL;
	}
	*len = (uint64_t)end;
	return buf;
}

/*
 * recover: dead ports need no lease, but the shared sweeps do. While another
 * live process holds the lease (a peer's periodic recovery, about once a
 * second, takes it for a moment), or a port needs it (-EALREADY), try again
 * for up to 3 s; after that the sweeps are left to the holder (said on
 * stderr; not a failure: every dead port was settled).
 */
static int cmd_recover(struct xseg *xs)
{
	struct xseg_recovery_stats st, sum = { 0 };
	int r, tries;

	for (tries = 0;; tries++) {
		r = xseg_recover(xs, &st);
		sum.ports_freed += st.ports_freed;
		sum.requests_failed += st.requests_failed;
		sum.requests_freed += st.requests_freed;
		sum.buffers_freed += st.buffers_freed;
		sum.holds_settled += st.holds_settled;
		if ((r != -EALREADY && !(r == 0 && st.lease_busy)) || tries == 60)
			break;
		usleep(50000);
	}
	if (r) {
		fprintf(stderr, "%s: recover: %s\n", prog, strerror(-r));
		return 1;
	}
	if (st.lease_busy)
		fprintf(stderr, "%s: recover: another live process holds the recovery lease; "
			"the shared sweeps are left to it\n", prog);
	printf("%u ports freed, %u requests failed back, %u requests freed, %u buffers freed, "
	       "%u queue moves settled\n", sum.ports_freed, sum.requests_failed, sum.requests_freed,
	       sum.buffers_freed, sum.holds_settled);
	return 0;
}

/* A Unix socket address for @path, or -1 (+ message) if it does not fit. */
static int unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (!*path || strlen(path) >= sizeof(sa->sun_path)) {
		fprintf(stderr, "%s: socket path '%s' is empty or longer than %zu bytes\n", prog,
			path, sizeof(sa->sun_path) - 1);
		return -1;
	}
	memcpy(sa->sun_path, path, strlen(path));
	return 0;
}

/* Run @argv with the memfd segment @fd inherited and $XSEG_MEMFD naming it. */
static int exec_with(int fd, char **argv)
{
	char num[16];

	snprintf(num, sizeof(num), "%d", fd);
	if (fcntl(fd, F_SETFD, 0) < 0 || setenv("XSEG_MEMFD", num, 1)) {
		perror(prog);
		return 1;
	}
	execvp(argv[0], argv);
	fprintf(stderr, "%s: cannot run %s: %s\n", prog, argv[0], strerror(errno));
	return 1;
}

/* create memfd:... --send SOCKET | --exec CMD...: argv[3] onward. */
static int create_memfd(const struct xseg_config *cfg, int argc, char **argv)
{
	struct sockaddr_un sa;
	char err[512] = "";
	int fd, s, r;

	if (argc < 5 || (strcmp(argv[3], "--send") && strcmp(argv[3], "--exec")) ||
	    (!strcmp(argv[3], "--send") && argc != 5)) {
		fprintf(stderr, "%s: a memfd segment lives only while a descriptor of it does: "
			"give --send SOCKET or --exec CMD [ARG...]\n", prog);
		return 2;
	}
	if (!strcmp(argv[3], "--send") && unix_addr(argv[4], &sa))
		return 2;
	fd = xseg_create_memfd(cfg, err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "%s: %s\n", prog, err[0] ? err : strerror(-fd));
		return 1;
	}
	if (!strcmp(argv[3], "--exec"))
		return exec_with(fd, argv + 4);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "%s: cannot connect to %s: %s\n", prog, argv[4], strerror(errno));
		return 1;
	}
	r = xseg_memfd_send(s, fd);
	if (r)
		fprintf(stderr, "%s: cannot send the segment to %s: %s\n", prog, argv[4],
			strerror(-r));
	close(s);
	close(fd);
	return r ? 1 : 0;
}

/* recv SOCKET --exec CMD...: take one connection, one descriptor, run CMD. */
static int recv_memfd(int argc, char **argv)
{
	struct sockaddr_un sa;
	char err[256] = "";
	int ls, cs, fd;

	if (argc < 5 || strcmp(argv[3], "--exec"))
		return usage();
	if (unix_addr(argv[2], &sa))
		return 2;
	ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 1)) {
		fprintf(stderr, "%s: cannot listen on %s: %s\n", prog, argv[2], strerror(errno));
		return 1;
	}
	cs = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	unlink(argv[2]);	/* the socket we just bound: ours */
	close(ls);
	if (cs < 0) {
		fprintf(stderr, "%s: accept on %s: %s\n", prog, argv[2], strerror(errno));
		return 1;
	}
	fd = xseg_memfd_recv(cs, err, sizeof(err));
	close(cs);
	if (fd < 0) {
		fprintf(stderr, "%s: %s\n", prog, err[0] ? err : strerror(-fd));
		return 1;
	}
	return exec_with(fd, argv + 4);
}

int main(int argc, char **argv)
{
	struct xseg_config cfg;
	const char *cmd;
	struct xseg *xs;
	int r = 0;

	if (argc < 2)
		return usage();
	cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
		usage_to(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version")) {
		printf("%s (xseg %s, segment layout %u.%u)\n", prog, XSEG_RELEASE, XSEG_VERSION_MAJOR,
		       XSEG_VERSION_MINOR);
		return 0;
	}
	if (!strcmp(cmd, "list")) {
		const struct xseg_segtype_ops *st = xseg_find_segtype(argc > 2 ? argv[2] : "posix");

		if (st && !strcmp(st->name, "memfd")) {
			fprintf(stderr, "%s: memfd segments have no names to list (each is a "
				"descriptor of the processes that hold it)\n", prog);
			return 1;
		}
		if (!st || !st->list) {
			fprintf(stderr, "%s: cannot list segments of type '%s'\n", prog, argc > 2 ? argv[2] : "posix");
			return 1;
		}
		return st->list(print_name, NULL) < 0;
	}
	if (argc < 3)
		return usage();
	if (!strcmp(cmd, "recv"))
		return recv_memfd(argc, argv);
	r = spec_of(argv[2], &cfg);
	if (r)
		return r;
	if (!strcmp(cmd, "create") && !strcmp(cfg.type, "memfd"))
		return create_memfd(&cfg, argc, argv);
	if (!strcmp(cmd, "create")) {
		char err[256] = "";

		r = xseg_create(&cfg, err, sizeof(err));
		if (r)
			fprintf(stderr, "%s: %s\n", prog, err[0] ? err : strerror(-r));
		return r ? 1 : 0;
	}
	if (!strcmp(cmd, "config")) {
		char err[512] = "", spec[512];
		uint32_t uid, gid, mode;

		if (argc == 3) {
			xseg_format_spec(&cfg, spec, sizeof(spec));
			printf("%s\n", spec);
			return 0;
		}
		if ((argc == 5 || argc == 6) && !strcmp(argv[3], "--grow"))
			return cmd_grow(&cfg, argv[4], argc == 6 ? argv[5] : NULL);
		if (argc != 5 || strcmp(argv[3], "--set"))
			return usage();
		r = xseg_parse_owner_set(argv[4], &uid, &gid, &mode, err, sizeof(err));
		if (r) {
			fprintf(stderr, "%s: %s\n", prog, err);
			return 2;
		}
		r = xseg_set_owner_mode(cfg.type, cfg.name, uid, gid, mode, err, sizeof(err));
		if (r) {
			fprintf(stderr, "%s: config: %s\n", prog, err[0] ? err : strerror(-r));
			return 1;
		}
		if (xseg_real_owner(cfg.type, cfg.name, &uid, &gid, &mode) == 0)
			printf("%s:%s: owner uid %u gid %u mode %04o\n", cfg.type, cfg.name, uid, gid,
			       mode);
		return 0;
	}
	if (!strcmp(cmd, "destroy")) {
		char err[512] = "";

		r = xseg_destroy_name_err(cfg.type, cfg.name, err, sizeof(err));
		if (r)
			fprintf(stderr, "%s: destroy: %s\n", prog, err[0] ? err : strerror(-r));
		return r ? 1 : 0;
	}
	if (strcmp(cmd, "status") && strcmp(cmd, "recover") && strcmp(cmd, "verify") && strcmp(cmd, "submit") &&
	    !is_debug_command(cmd))
		return usage();
	if (!strcmp(cmd, "submit")) {
		static const struct option lo[] = {
			{ "op", required_argument, NULL, 'o' }, { "target", required_argument, NULL, 'T' },
			{ "offset", required_argument, NULL, 'O' }, { "size", required_argument, NULL, 's' },
			{ "count", required_argument, NULL, 'n' }, { "depth", required_argument, NULL, 'D' },
			{ "verify", no_argument, NULL, 'V' }, { "timeout", required_argument, NULL, 'w' },
			{ "driver", required_argument, NULL, 'd' }, { "port", required_argument, NULL, 'p' },
			{ "spin-us", required_argument, NULL, 'S' }, { "flags", required_argument, NULL, 'F' },
			{ "data", required_argument, NULL, 'a' }, { "data-file", required_argument, NULL, 'A' },
			{ "out", required_argument, NULL, 'u' }, { "peer-type", required_argument, NULL, 'd' },
			{ 0 } };
		struct submit_opts o = { .dst = UINT32_MAX, .count = 1, .depth = 1, .timeout_ms = 10000,
					 .op = X_PING, .target = "target", .size = 4096 };
		const char *driver = "futex";
		long spin_us = -1;
		int c;

		optind = 3;
		while ((c = getopt_long(argc, argv, "p:d:n:s:o:T:O:D:Vw:F:", lo, NULL)) != -1) {
			switch (c) {
			case 'p':
				if (u32_opt("-p", optarg, &o.dst))
					return 2;
				break;
			case 'o':
				o.op = xseg_op_from_name(optarg);
				if (o.op < 0)
					return bad_op(optarg);
				break;
			case 'T': o.target = optarg; break;
			case 'O':
				if (st_parse_size(optarg, &o.offset)) {
					fprintf(stderr, "%s: --offset: '%s' is not a number (units K, M, G, T)\n", prog, optarg);
					return 2;
				}
				break;
			case 's':
				if (st_parse_size(optarg, &o.size)) {
					fprintf(stderr, "%s: --size: '%s' is not a number (units K, M, G, T)\n", prog, optarg);
					return 2;
				}
				o.size_set = 1;
				break;
			case 'F':
				if (parse_flags(optarg, &o.flags)) {
					fprintf(stderr, "%s: --flags: '%s' is not a list of fua, flush, nosync\n", prog, optarg);
					return 2;
				}
				break;
			case 'a':
				o.data = (const uint8_t *)optarg;
				o.data_len = strlen(optarg);
				break;
			case 'A':
				o.data = read_file(optarg, &o.data_len);
				if (!o.data) {
					fprintf(stderr, "%s: --data-file %s: %s\n", prog, optarg, strerror(errno));
					return 1;
				}
				break;
			case 'u': o.out = optarg; break;
			case 'n':
				if (u32_opt("--count", optarg, &o.count))
					return 2;
				break;
			case 'D':
				if (u32_opt("--depth", optarg, &o.depth))
					return 2;
				break;
			case 'V': o.verify = 1; break;
			case 'w':
				if (u32_opt("--timeout", optarg, &o.timeout_ms))
					return 2;
				break;
			case 'd': driver = optarg; break;
			case 'S': spin_us = strtol(optarg, NULL, 0); break;
			default: return usage();
			}
		}
		if (o.dst == UINT32_MAX || !o.count || !o.depth || strlen(o.target) > XSEG_TARGET_MAX) {
			fprintf(stderr, "%s: submit needs -p PORT, and counts of at least 1\n", prog);
			return 2;
		}
		if (o.data && !o.size_set)
			o.size = o.data_len;	/* the data says how much */
		info_out = o.out && !strcmp(o.out, "-") ? stderr : stdout;
		snprintf(seg_label, sizeof(seg_label), "%s:%s", cfg.type, cfg.name);
		xs = join(&cfg, driver);
		if (!xs)
			return 1;
		if (spin_us >= 0)
			xseg_set_spin_us(xs, (uint32_t)spin_us);
		r = cmd_submit(xs, &o);
		xseg_leave(xs);
		return r;
	}
	/* status and verify only look: an observer, so a full peer-type table does not stop them. */
	xs = join(&cfg, !strcmp(cmd, "status") || !strcmp(cmd, "verify") ? NULL : "futex");
	if (!xs)
		return 1;
	if (is_debug_command(cmd)) {
		r = debug_command(xs, cmd, argc, argv);	/* xseg-debug.c */
	} else if (!strcmp(cmd, "status")) {
		r = cmd_status(xs);
	} else if (!strcmp(cmd, "recover")) {
		r = cmd_recover(xs);
	} else {
		r = xseg_verify(xs, print_line, NULL);
		printf("%d problem%s\n", r, r == 1 ? "" : "s");
		r = r ? 1 : 0;
	}
	xseg_leave(xs);
	return r;
}
