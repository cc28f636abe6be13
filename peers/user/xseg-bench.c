/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg-bench - a load generator peer: keeps --depth READ/WRITE requests in
 * flight from a dynamic port to a storage peer (blockd, filed, patternd...),
 * sequential or random block offsets over a range, for a count or a time,
 * and reports IOPS, MB/s and latency percentiles (a log-linear histogram,
 * ~1.6% resolution) as text or as one JSON document (--json,
 * "schemaVersion": 1). --verify first writes the whole range with the seeded
 * pattern of pattern.h, then checks every byte every read returns (writes of
 * the run carry the same pattern, so any interleaving still verifies);
 * mismatches are counted and make the exit status 1, as do failed requests
 * (--no-prefill: only check, e.g. after a restart of the storage peer).
 * With --seed 0 (the default) the pattern is patternd's own.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "xseg/xseg.h"
#include "pattern.h"
#include "storage.h"

#define HIST_SUB 64u		/* sub-buckets per power of two */
#define HIST_N (HIST_SUB * 60u)

enum { OP_READ, OP_WRITE, OP_MIX };

static const char *prog = "xseg-bench";

static struct opts {
	const char *spec, *driver, *target;
	uint32_t dst, depth, rwmix, timeout_ms;
	int op, rand, verify, json, spin_us, no_prefill;
	uint64_t bs, range, count, seed;
	double seconds;
	int count_set, range_set;
} o = { .driver = "futex", .target = "vol", .dst = UINT32_MAX, .depth = 32, .rwmix = 70,
	.timeout_ms = 30000, .bs = 4096, .spin_us = -1 };

struct stats {
	uint64_t requests, reads, writes, errors, mismatches, bytes;
	uint64_t lat_min, lat_max, lat_sum;	/* ns */
	uint64_t hist[HIST_N];
	uint64_t t0, t1;			/* ns */
	int first_errors;
};

static struct xseg *xs;
static uint32_t me;
static uint64_t pseed;	/* the pattern's seed */
static uint64_t rnd;	/* xorshift state for offsets and the mix */

static uint64_t now_ns(void)
{
	return xseg_sys_now_ns();
}

static uint64_t xorshift(void)
{
	uint64_t x = rnd;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rnd = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static uint32_t hist_index(uint64_t v)
{
	uint32_t shift;

	if (v < 2 * HIST_SUB)
		return (uint32_t)v;
	shift = (uint32_t)(63 - __builtin_clzll(v)) - 6;	/* v >> shift in [64, 128) */
	return HIST_SUB * (shift + 1) + (uint32_t)(v >> shift) - HIST_SUB;
}

/* The middle of bucket @i, in ns. */
static double hist_value(uint32_t i)
{
	uint32_t shift;

	if (i < 2 * HIST_SUB)
		return i;
	shift = i / HIST_SUB - 1;
	return (double)((uint64_t)(i % HIST_SUB + HIST_SUB) << shift) + (double)(1ull << shift) / 2;
}

static void record(struct stats *s, uint64_t lat)
{
	uint32_t i = hist_index(lat);

	s->hist[i < HIST_N ? i : HIST_N - 1]++;
	s->lat_sum += lat;
	if (!s->lat_min || lat < s->lat_min)
		s->lat_min = lat;
	if (lat > s->lat_max)
		s->lat_max = lat;
}

/* The latency (µs) below which @q of the requests completed. */
static double percentile(const struct stats *s, double q)
{
	uint64_t n = s->requests, want, seen = 0;
	double v;

	if (!n)
		return 0;
	want = (uint64_t)(q * (double)n);
	if ((double)want < q * (double)n)
		want++;			/* the ceiling */
	if (!want)
		want = 1;
	for (uint32_t i = 0; i < HIST_N; i++) {
		seen += s->hist[i];
		if (seen >= want) {
			v = hist_value(i);
			if (v > (double)s->lat_max)
				v = (double)s->lat_max;
			return v / 1000.0;
		}
	}
	return (double)s->lat_max / 1000.0;
}

static const char *err_name(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "?";
}

/*
 * One phase: @count requests (0: until @deadline), @depth in flight. The
 * prefill phase writes every block of the range in order.
 */
static int run(struct stats *s, int prefill, uint64_t count, uint64_t deadline)
{
	uint64_t blocks = o.range / o.bs, sent = 0, inflight = 0, last_progress = now_ns();
	uint64_t next_report = now_ns() + 1000000000ull;
	int tty = isatty(2) && !prefill;

	s->t0 = now_ns();
	for (;;) {
		struct xseg_request *req;
		int moved = 0;
		uint64_t t;

		while (inflight < o.depth && (count ? sent < count : now_ns() < deadline)) {
			uint64_t blk = prefill ? sent : o.rand ? xorshift() % blocks : sent % blocks;
			int write = prefill || o.op == OP_WRITE ||
				    (o.op == OP_MIX && xorshift() % 100 >= o.rwmix);
			int r;

			req = xseg_get_request(xs, me);
			if (!req)
				break;
			r = xseg_prep_request(xs, req, o.target, (uint32_t)strlen(o.target), o.bs);
			if (r) {
				fprintf(stderr, "%s: a %" PRIu64 "-byte buffer: %s (the segment's buffer classes are "
					"too small or too few for --bs and --depth)\n", prog, o.bs, strerror(-r));
				xseg_put_request(xs, req);
				return -1;
			}
			req->op = write ? X_WRITE : X_READ;
			req->flags = 0;
			req->offset = blk * o.bs;
			req->size = o.bs;
			if (write && o.verify)
				pattern_fill(xseg_req_data(xs, req), o.bs, pseed, req->offset);
			req->cookie = now_ns();
			/* Signals the port it went to: o.dst or its redirect. */
			r = xseg_submit_signal(xs, req, o.dst);
			if (r < 0) {
				fprintf(stderr, "%s: submit to port %u: %s\n", prog, o.dst, strerror(-r));
				xseg_put_request(xs, req);
				return -1;
			}
			sent++;
			inflight++;
			moved = 1;
		}
		while ((req = xseg_receive(xs, me))) {
			t = now_ns();
			inflight--;
			moved = 1;
			s->requests++;
			record(s, t - req->cookie);
			if (req->op == X_READ)
				s->reads++;
			else
				s->writes++;
			if (req->state & XS_FAILED) {
				s->errors++;
				if (s->first_errors++ < 5)
					fprintf(stderr, "%s: %s at %" PRIu64 " failed: %s (%s)\n", prog,
						xseg_op_name(req->op), req->offset, err_name(req->error),
						strerror(req->error));
			} else {
				s->bytes += req->serviced;
				if (o.verify && req->op == X_READ &&
				    (req->serviced != o.bs ||
				     pattern_check(xseg_req_data(xs, req), o.bs, pseed, req->offset) != o.bs)) {
					if (s->mismatches++ < 5)
						fprintf(stderr, "%s: wrong data read at %" PRIu64 "\n", prog, req->offset);
				}
			}
			xseg_put_request(xs, req);
		}
		if (!inflight && (count ? sent >= count : now_ns() >= deadline))
			break;
		t = now_ns();
		if (moved) {
			last_progress = t;
		} else {
			if (t - last_progress > (uint64_t)o.timeout_ms * 1000000) {
				fprintf(stderr, "%s: no reply for %u ms with %" PRIu64 " in flight\n", prog,
					o.timeout_ms, inflight);
				return -1;
			}
			xseg_wait(xs, me, 100000);
		}
		if (tty && t >= next_report) {
			double secs = (double)(t - s->t0) / 1e9;

			fprintf(stderr, "\r%s: %" PRIu64 " requests, %.0f IOPS, %" PRIu64 " errors   ", prog,
				s->requests, (double)s->requests / secs, s->errors);
			next_report = t + 1000000000ull;
		}
	}
	s->t1 = now_ns();
	if (tty)
		fprintf(stderr, "\r%60s\r", "");
	return 0;
}

/* @str as a JSON string. */
static void json_str(const char *str)
{
	putchar('"');
	for (const unsigned char *c = (const unsigned char *)str; *c; c++)
		printf(*c < 0x20 || *c == '"' || *c == '\\' ? "\\u%04x" : "%c", *c);
	putchar('"');
}

static void report(const struct stats *s, const struct stats *pre)
{
	double secs = (double)(s->t1 - s->t0) / 1e9;
	double iops = secs > 0 ? (double)s->requests / secs : 0;
	double mbps = secs > 0 ? (double)s->bytes / secs / 1e6 : 0;
	double mean = s->requests ? (double)s->lat_sum / (double)s->requests / 1000.0 : 0;
	static const char *ops[] = { "read", "write", "mix" };

	if (o.json) {
		printf("{\n  \"schemaVersion\": 1,\n  \"tool\": \"xseg-bench\",\n");
		printf("  \"config\": { \"spec\": ");
		json_str(o.spec);
		printf(", \"dst\": %u, \"driver\": ", o.dst);
		json_str(o.driver);
		printf(", \"op\": \"%s\", \"rwmix\": %u, \"bs\": %" PRIu64 ", \"depth\": %u, \"pattern\": \"%s\", "
		       "\"range\": %" PRIu64 ", \"target\": ", ops[o.op], o.rwmix, o.bs, o.depth,
		       o.rand ? "rand" : "seq", o.range);
		json_str(o.target);
		printf(", \"count\": %" PRIu64 ", \"time\": %g, \"verify\": %s, \"seed\": %" PRIu64 " },\n",
		       o.count_set ? o.count : 0, o.count_set ? 0 : o.seconds, o.verify ? "true" : "false", o.seed);
		printf("  \"requests\": %" PRIu64 ",\n  \"reads\": %" PRIu64 ",\n  \"writes\": %" PRIu64 ",\n"
		       "  \"errors\": %" PRIu64 ",\n  \"mismatches\": %" PRIu64 ",\n  \"bytes\": %" PRIu64 ",\n"
		       "  \"seconds\": %.6f,\n  \"iops\": %.1f,\n  \"mbPerSecond\": %.3f,\n",
		       s->requests, s->reads, s->writes, s->errors, s->mismatches, s->bytes, secs, iops, mbps);
		printf("  \"latencyUs\": { \"min\": %.3f, \"mean\": %.3f, \"p50\": %.3f, \"p90\": %.3f, "
		       "\"p99\": %.3f, \"p99.9\": %.3f, \"max\": %.3f },\n",
		       (double)s->lat_min / 1000.0, mean, percentile(s, 0.5), percentile(s, 0.9),
		       percentile(s, 0.99), percentile(s, 0.999), (double)s->lat_max / 1000.0);
		if (pre)
			printf("  \"prefill\": { \"requests\": %" PRIu64 ", \"errors\": %" PRIu64 ", \"seconds\": %.6f },\n",
			       pre->requests, pre->errors, (double)(pre->t1 - pre->t0) / 1e9);
		else
			printf("  \"prefill\": null,\n");
		printf("  \"ok\": %s\n}\n", s->errors || s->mismatches || (pre && pre->errors) ? "false" : "true");
		return;
	}
	if (pre)
		printf("prefill   %" PRIu64 " writes of %" PRIu64 " bytes in %.2f s, %" PRIu64 " errors\n",
		       pre->requests, o.bs, (double)(pre->t1 - pre->t0) / 1e9, pre->errors);
	printf("%s %s bs=%" PRIu64 " depth=%u range=%" PRIu64 "%s\n", o.rand ? "rand" : "seq", ops[o.op], o.bs,
	       o.depth, o.range, o.verify ? " verify" : "");
	printf("requests  %" PRIu64 " (%" PRIu64 " reads, %" PRIu64 " writes) in %.2f s\n", s->requests, s->reads,
	       s->writes, secs);
	printf("iops      %.0f\nMB/s      %.1f\n", iops, mbps);
	printf("latency   us: min %.1f mean %.1f p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f\n",
	       (double)s->lat_min / 1000.0, mean, percentile(s, 0.5), percentile(s, 0.9), percentile(s, 0.99),
	       percentile(s, 0.999), (double)s->lat_max / 1000.0);
	printf("errors    %" PRIu64 "\n", s->errors + (pre ? pre->errors : 0));
	if (o.verify)
		printf("mismatch  %" PRIu64 "\n", s->mismatches);
}

/* The target's size, by INFO. 0 or -1 (printed). */
static int target_size(uint64_t *size)
{
	struct xseg_request *req = xseg_get_request(xs, me);
	uint64_t t0 = now_ns();
	const uint8_t *d;
	int r;

	if (!req || xseg_prep_request(xs, req, o.target, (uint32_t)strlen(o.target), 8)) {
		fprintf(stderr, "%s: no request for INFO\n", prog);
		return -1;
	}
	req->op = X_INFO;
	req->size = 8;
	r = xseg_submit_signal(xs, req, o.dst);
	if (r < 0) {
		fprintf(stderr, "%s: submit to port %u: %s\n", prog, o.dst, strerror(-r));
		xseg_put_request(xs, req);
		return -1;
	}
	while (!(req = xseg_receive(xs, me))) {
		if (now_ns() - t0 > (uint64_t)o.timeout_ms * 1000000) {
			fprintf(stderr, "%s: no reply to INFO\n", prog);
			return -1;
		}
		xseg_wait(xs, me, 100000);
	}
	d = xseg_req_data(xs, req);
	if ((req->state & XS_FAILED) || req->serviced < 8 || !d) {
		fprintf(stderr, "%s: INFO of '%s' failed: %s (give --range)\n", prog, o.target,
			req->state & XS_FAILED ? strerror(req->error) : "short reply");
		xseg_put_request(xs, req);
		return -1;
	}
	*size = 0;
	for (int i = 7; i >= 0; i--)
		*size = *size << 8 | d[i];
	xseg_put_request(xs, req);
	return 0;
}

static int usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: %s -g SPEC -p PORT [-d DRIVER] [-o|--op OP] [--rwmix PCT_READS]\n"
		"          [-s|--size SIZE] [-D|--depth N] [-n COUNT | -t|--time SECS] [--pattern seq|rand]\n"
		"          [--range SIZE] [-T|--target NAME] [-V|--verify] [--seed N] [--json]\n"
		"          [--no-prefill] [-w|--timeout MS] [--spin-us N] [--version]\n"
		"  OP: read, write, rw (mixed; also mix), randread, randwrite, randrw (= --pattern rand)\n"
		"  -p is also --dst, --size also --bs (each request's size), -d also --peer-type;\n"
		"  SPEC may also be the first argument (xseg-bench SPEC -p PORT ...)\n"
		"  defaults: --op read --rwmix 70 --size 4K --depth 32 -n 10000 --pattern seq\n"
		"  --target vol; --range: the target's size (INFO), capped at 1G for --verify\n"
		"  --verify writes the range with the pattern first, then checks every read;\n"
		"  --no-prefill skips that write (the range holds the pattern already)\n",
		prog);
	return status;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "spec", required_argument, NULL, 'g' }, { "dst", required_argument, NULL, 'p' },
		{ "driver", required_argument, NULL, 'd' }, { "op", required_argument, NULL, 'o' },
		{ "rwmix", required_argument, NULL, 'm' }, { "bs", required_argument, NULL, 'b' },
		{ "depth", required_argument, NULL, 'D' }, { "count", required_argument, NULL, 'n' },
		{ "time", required_argument, NULL, 't' }, { "pattern", required_argument, NULL, 'P' },
		{ "range", required_argument, NULL, 'r' }, { "target", required_argument, NULL, 'T' },
		{ "verify", no_argument, NULL, 'V' }, { "seed", required_argument, NULL, 'e' },
		{ "json", no_argument, NULL, 'j' }, { "timeout", required_argument, NULL, 'w' },
		{ "spin-us", required_argument, NULL, 'S' }, { "help", no_argument, NULL, 'h' },
		{ "no-prefill", no_argument, NULL, 'N' }, { "port", required_argument, NULL, 'p' },
		{ "size", required_argument, NULL, 'b' }, { "peer-type", required_argument, NULL, 'd' },
		{ "version", no_argument, NULL, 'v' },
		{ 0 } };
	struct xseg_config cfg;
	struct stats *main_st = NULL, *pre = NULL;
	char err[256] = "";
	uint64_t v;
	char *end;
	int c, e, r;

	while ((c = getopt_long(argc, argv, "g:p:d:o:b:s:D:n:t:r:jVhT:w:", lo, NULL)) != -1) {
		switch (c) {
		case 'g': o.spec = optarg; break;
		case 'd': o.driver = optarg; break;
		case 'T': o.target = optarg; break;
		case 'v':
			printf("%s (xseg %s, segment layout %u.%u)\n", prog, XSEG_RELEASE, XSEG_VERSION_MAJOR,
			       XSEG_VERSION_MINOR);
			return 0;
		case 'V': o.verify = 1; break;
		case 'N': o.no_prefill = 1; break;
		case 'j': o.json = 1; break;
		case 'h': return usage(0);
		case 'p': case 'D': case 'm': case 'w': case 'S':
			errno = 0;
			v = strtoull(optarg, &end, 0);
			if (errno || end == optarg || *end || v > UINT32_MAX || (c != 'S' && !v) ||
			    (c == 'm' && v > 100)) {
				fprintf(stderr, "%s: '%s' is not a valid value for --%s\n", prog, optarg,
					c == 'p' ? "dst" : c == 'D' ? "depth" : c == 'm' ? "rwmix" :
					c == 'w' ? "timeout" : "spin-us");
				return 2;
			}
			if (c == 'p') o.dst = (uint32_t)v;
			else if (c == 'D') o.depth = (uint32_t)v;
			else if (c == 'm') o.rwmix = (uint32_t)v;
			else if (c == 'w') o.timeout_ms = (uint32_t)v;
			else o.spin_us = (int)v;
			break;
		case 'o':
			if (!strncmp(optarg, "rand", 4) && strcmp(optarg, "rand")) {
				o.rand = 1;	/* randread = --op read --pattern rand */
				optarg += 4;
			}
			if (!strcmp(optarg, "read")) o.op = OP_READ;
			else if (!strcmp(optarg, "write")) o.op = OP_WRITE;
			else if (!strcmp(optarg, "mix") || !strcmp(optarg, "rw")) o.op = OP_MIX;
			else {
				fprintf(stderr, "%s: --op: '%s' is not one of read, write, rw, randread, randwrite, randrw\n"
					"usage: %s -g SPEC -p PORT [--op OP] ... (%s --help)\n", prog, optarg, prog, prog);
				return 2;
			}
			break;
		case 'P':
			if (!strcmp(optarg, "seq")) o.rand = 0;
			else if (!strcmp(optarg, "rand")) o.rand = 1;
			else {
				fprintf(stderr, "%s: --pattern: '%s' is not seq or rand\n", prog, optarg);
				return 2;
			}
			break;
		case 'b': case 's': case 'r': case 'n': case 'e':
			if (st_parse_size(optarg, &v) || (c != 'e' && !v)) {
				fprintf(stderr, "%s: --%s: '%s' is not a number above 0 (units K, M, G, T)\n", prog,
					c == 'b' || c == 's' ? "size" : c == 'r' ? "range" : c == 'n' ? "count" : "seed",
					optarg);
				return 2;
			}
			if (c == 'b' || c == 's') o.bs = v;
			else if (c == 'r') { o.range = v; o.range_set = 1; }
			else if (c == 'n') { o.count = v; o.count_set = 1; }
			else o.seed = v;
			break;
		case 't':
			o.seconds = strtod(optarg, &end);
			if (end == optarg || *end || !(o.seconds > 0)) {
				fprintf(stderr, "%s: --time: '%s' is not a number of seconds above 0\n", prog, optarg);
				return 2;
			}
			break;
		default:
			return usage(2);
		}
	}
	if (optind < argc && !o.spec)
		o.spec = argv[optind++];	/* xseg-bench SPEC -p PORT, as xseg-tool and xseg take it */
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
		return 2;
	}
	if (!o.spec || o.dst == UINT32_MAX) {
		fprintf(stderr, "%s: -g SPEC and -p PORT are required\n", prog);
		return usage(2);
	}
	if (o.count_set && o.seconds > 0) {
		fprintf(stderr, "%s: give -n COUNT or --time SECS, not both\n", prog);
		return 2;
	}
	if (!o.count_set && !(o.seconds > 0))
		o.count = 10000, o.count_set = 1;
	if (strlen(o.target) > XSEG_TARGET_MAX) {
		fprintf(stderr, "%s: --target: at most %u bytes\n", prog, XSEG_TARGET_MAX);
		return 2;
	}
	if (xseg_parse_spec(o.spec, &cfg, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return 2;
	}
	xs = xseg_join(cfg.type, cfg.name, o.driver, NULL, NULL, &e, err, sizeof(err));
	if (!xs) {
		fprintf(stderr, "%s: cannot join '%s': %s\n", prog, cfg.name, err[0] ? err : strerror(-e));
		return 1;
	}
	if (o.spin_us >= 0)
		xseg_set_spin_us(xs, (uint32_t)o.spin_us);
	r = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	if (r < 0) {
		fprintf(stderr, "%s: no free dynamic port: %s\n", prog, strerror(-r));
		xseg_leave(xs);
		return 1;
	}
	me = (uint32_t)r;
	r = 1;
	if (!o.range_set) {
		if (target_size(&o.range))
			goto out;
		if (o.verify && o.range > (1ull << 30))
			o.range = 1ull << 30;	/* the prefill writes all of it */
	}
	if (o.range < o.bs) {
		fprintf(stderr, "%s: the range (%" PRIu64 " bytes) is smaller than --bs %" PRIu64 "\n", prog,
			o.range, o.bs);
		goto out;
	}
	o.range -= o.range % o.bs;
	pseed = pattern_seed(o.target, (uint32_t)strlen(o.target)) ^ (o.seed * 0x9E3779B97F4A7C15ull);
	rnd = o.seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
	main_st = calloc(1, sizeof(*main_st));
	if (!main_st || (o.verify && !o.no_prefill && !(pre = calloc(1, sizeof(*pre))))) {
		fprintf(stderr, "%s: out of memory\n", prog);
		goto out;
	}
	if (pre && run(pre, 1, o.range / o.bs, 0))
		goto out;
	if (run(main_st, 0, o.count_set ? o.count : 0,
		o.count_set ? 0 : now_ns() + (uint64_t)(o.seconds * 1e9)))
		goto out;
	report(main_st, pre);
	r = main_st->errors || main_st->mismatches || (pre && pre->errors) ? 1 : 0;
out:
	xseg_leave_port(xs, me);
	xseg_leave(xs);
	free(main_st);
	free(pre);
	return r;
}
