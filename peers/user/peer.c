/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/peer.c - the C peer framework (see peer.h).
 */
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "peer.h"

/* Set by the signal handler, read by every dispatch thread: a lock-free atomic. */
static int stopping;

static void on_stop(int sig)
{
	(void)sig;
	__atomic_store_n(&stopping, 1, __ATOMIC_RELAXED);
}

int peer_stopping(void)
{
	return __atomic_load_n(&stopping, __ATOMIC_RELAXED);
}

void peer_log(struct peer *p, int level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (level > 1 + p->verbose)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s[%d]: %s\n", p->name ? p->name : "peer", (int)getpid(), buf);
}

static void usage(struct peer *p, const char *own_usage)
{
	fprintf(stderr,
		"usage: %s -g SPEC [-p PORT|FIRST-LAST] [-t THREADS] [-d DRIVER] [--create]\n"
		"          [--spin-us N] [-v|-q]%s%s\n"
		"  -g SPEC       the segment (type:name:...; see docs/spec.md)\n"
		"  -p PORT       the port(s) to serve (default: a dynamic port)\n"
		"  -t THREADS    dispatch threads (default 1)\n"
		"  -d DRIVER     peer type: futex (default), posixfd, posix\n"
		"  --create      create the segment if it does not exist\n"
		"  --spin-us N   poll this long before sleeping (default %u)\n",
		p->name, own_usage ? "\n" : "", own_usage ? own_usage : "", XSEG_SPIN_US_DEFAULT);
}

static int parse_u32(const char *s, uint32_t *v)
{
	char *end;
	unsigned long x;

	errno = 0;
	x = strtoul(s, &end, 10);
	if (errno || end == s || *end || x > UINT32_MAX)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

int peer_parse_args(struct peer *p, int argc, char **argv, const char *own,
		    const struct option *own_long, int (*own_fn)(struct peer *p, int opt, const char *arg),
		    const char *own_usage)
{
	static const struct option common[] = {
		{ "spec", required_argument, NULL, 'g' }, { "port", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 't' }, { "driver", required_argument, NULL, 'd' },
		{ "create", no_argument, NULL, 'C' }, { "spin-us", required_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' }, { "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
	};
	struct option all[64];
	char shorts[128];
	size_t n = 0;
	int c;

	if (!p->name)
		p->name = argv[0];
	p->driver = p->driver ? p->driver : "futex";
	p->threads = p->threads ? p->threads : 1;
	p->spin_us = XSEG_SPIN_US_DEFAULT;
	p->port_first = p->port_last = XSEG_ANY_PORT;
	memcpy(all, common, sizeof(common));
	n = sizeof(common) / sizeof(common[0]);
	for (size_t i = 0; own_long && own_long[i].name && n < 63; i++)
		all[n++] = own_long[i];
	memset(&all[n], 0, sizeof(all[n]));
	snprintf(shorts, sizeof(shorts), "g:p:t:d:vqh%s", own ? own : "");
	while ((c = getopt_long(argc, argv, shorts, all, NULL)) != -1) {
		switch (c) {
		case 'g': p->spec = optarg; break;
		case 'd': p->driver = optarg; break;
		case 'C': p->create = 1; break;
		case 'v': p->verbose++; break;
		case 'q': p->verbose = -1; break;
		case 'h': usage(p, own_usage); return 1;
		case 't':
			if (parse_u32(optarg, &p->threads) || !p->threads || p->threads > PEER_MAX_PORTS) {
				fprintf(stderr, "%s: -t: '%s' must be 1..%d\n", p->name, optarg, PEER_MAX_PORTS);
				return -1;
			}
			break;
		case 'S':
			if (parse_u32(optarg, &p->spin_us)) {
				fprintf(stderr, "%s: --spin-us: '%s' is not a number\n", p->name, optarg);
				return -1;
			}
			break;
		case 'p': {
			char buf[32], *dash;

			snprintf(buf, sizeof(buf), "%s", optarg);
			dash = strchr(buf, '-');
			if (dash)
				*dash++ = 0;
			if (parse_u32(buf, &p->port_first) ||
			    (dash ? parse_u32(dash, &p->port_last) : (p->port_last = p->port_first, 0)) ||
			    p->port_last < p->port_first || p->port_last - p->port_first >= PEER_MAX_PORTS) {
				fprintf(stderr, "%s: -p: '%s' is not PORT or FIRST-LAST (at most %d ports)\n",
					p->name, optarg, PEER_MAX_PORTS);
				return -1;
			}
			break;
		}
		default:
			if (c != '?' && own_fn && own_fn(p, c, optarg) == 0)
				break;
			usage(p, own_usage);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", p->name, argv[optind]);
		return -1;
	}
	if (!p->spec) {
		fprintf(stderr, "%s: -g SPEC is required\n", p->name);
		usage(p, own_usage);
		return -1;
	}
	return 0;
}

int peer_start(struct peer *p)
{
	char err[256] = "";
	struct sigaction sa;
	int r, e;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	r = xseg_parse_spec(p->spec, &p->cfg, err, sizeof(err));
	if (r) {
		peer_log(p, 0, "bad spec: %s", err);
		return r;
	}
	if (p->create) {
		r = xseg_create(&p->cfg, err, sizeof(err));
		if (r && r != -EEXIST) {
			peer_log(p, 0, "cannot create segment: %s", err);
			return r;
		}
	}
	p->xs = xseg_join(p->cfg.type, p->cfg.name, p->driver, NULL, NULL, &e, err, sizeof(err));
	if (!p->xs) {
		peer_log(p, 0, "cannot join segment '%s': %s (%s)", p->cfg.name, err, strerror(-e));
		return e;
	}
	xseg_set_spin_us(p->xs, p->spin_us);
	if (p->port_first == XSEG_ANY_PORT) {
		r = xseg_bind_port(p->xs, XSEG_ANY_PORT, 0);
		if (r < 0) {
			peer_log(p, 0, "cannot bind a dynamic port: %s", strerror(-r));
			goto leave;
		}
		p->ports[p->nports++] = (uint32_t)r;
	} else {
		for (uint32_t port = p->port_first; port <= p->port_last; port++) {
			r = xseg_bind_port(p->xs, port, 0);
			if (r < 0) {
				peer_log(p, 0, "cannot bind port %u: %s", port, strerror(-r));
				goto leave;
			}
			p->ports[p->nports++] = port;
		}
	}
	peer_log(p, 2, "serving port(s) %u-%u of '%s' as %s", p->ports[0], p->ports[p->nports - 1],
		 p->cfg.name, p->driver);
	return 0;
leave:
	xseg_leave(p->xs);
	p->xs = NULL;
	return r;
}

struct worker {
	struct peer *p;
	uint32_t first, count;		/* the slice of p->ports this thread serves */
	int result;
};

/* Serve one request: call serve(), respond, signal whoever it went to. */
static void dispatch(struct peer *p, uint32_t port, struct xseg_request *req)
{
	int err, to;

	if (req->op >= X_OP_COUNT)
		err = EOPNOTSUPP;
	else
		err = p->serve(p, port, req);
	if (err) {
		__atomic_fetch_add(&p->failed, 1, __ATOMIC_RELAXED);
		to = xseg_fail(p->xs, req, err);
	} else {
		__atomic_fetch_or(&req->state, XS_SERVED, __ATOMIC_RELEASE);
		__atomic_fetch_add(&p->served, 1, __ATOMIC_RELAXED);
		to = xseg_respond(p->xs, req);
	}
	if (to >= 0)
		xseg_signal(p->xs, (uint32_t)to);
	else
		peer_log(p, 1, "respond: %s", strerror(-to));
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct peer *p = w->p;
	uint64_t last_recovery = xseg_sys_now_ns();

	while (!peer_stopping()) {
		int busy = 0;

		for (uint32_t i = 0; i < w->count; i++) {
			uint32_t port = p->ports[w->first + i];
			struct xseg_request *req;

			/* Batches of work before looking at the clock again. */
			for (int k = 0; k < 64 && (req = xseg_accept(p->xs, port)); k++) {
				dispatch(p, port, req);
				busy = 1;
			}
		}
		if (busy)
			continue;
		if (xseg_sys_now_ns() - last_recovery > 1000000000ull && w->first == 0) {
			struct xseg_recovery_stats st;

			if (xseg_recover(p->xs, &st) == 0 && (st.ports_freed || st.requests_freed))
				peer_log(p, 2, "recovery: %u ports freed, %u requests failed back, %u freed",
					 st.ports_freed, st.requests_failed, st.requests_freed);
			last_recovery = xseg_sys_now_ns();
		}
		/* Sleep on the first port of our slice; others are polled each round. */
		if (xseg_wait(p->xs, p->ports[w->first], w->count > 1 ? 1000 : 200000) < 0) {
			w->result = -EIO;
			break;
		}
	}
	return NULL;
}

int peer_run(struct peer *p)
{
	struct worker w[PEER_MAX_PORTS];
	pthread_t th[PEER_MAX_PORTS];
	uint32_t n = p->threads, per, i;

	if (!p->xs || !p->serve)
		return -EINVAL;
	/* Threads share ports: each port is accepted by exactly one thread. */
	if (n > p->nports)
		n = p->nports;
	per = (p->nports + n - 1) / n;
	for (i = 0; i < n; i++) {
		w[i].p = p;
		w[i].first = i * per;
		w[i].count = i * per + per > p->nports ? p->nports - i * per : per;
		w[i].result = 0;
		if (pthread_create(&th[i], NULL, work, &w[i]))
			return -errno;
	}
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < n; i++)
		if (w[i].result)
			return w[i].result;
	return 0;
}

void peer_stop(struct peer *p)
{
	if (p->xs) {
		peer_log(p, 2, "stopping: %llu served, %llu failed", (unsigned long long)p->served,
			 (unsigned long long)p->failed);
		xseg_leave(p->xs);
		p->xs = NULL;
	}
}
