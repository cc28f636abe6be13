/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/peer.c - the C peer framework (see peer.h).
 */
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
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

/* The spin a peer runs with unless --spin-us says otherwise (struct peer's spin_us). */
static uint32_t spin_default(const struct peer *p)
{
	return p->spin_us == PEER_SPIN_OFF ? 0 : p->spin_us ? p->spin_us : XSEG_SPIN_US_DEFAULT;
}

static void usage(struct peer *p, const char *own_usage, FILE *out, uint32_t spin_def)
{
	fprintf(out,
		"usage: %s -g SPEC%s%s [-p PORT|FIRST-LAST] [-t THREADS] [-d DRIVER] [--create]\n"
		"          [--spin-us N] [--spin-batches on|off] [--io-threads N] [-v|-q] [--version]%s%s\n"
		"  -g SPEC       the segment (demo, posix:demo:...; see docs/spec.md)\n"
		"  -p PORT       the port(s) to serve (default: a dynamic port)\n"
		"  -t THREADS    dispatch threads (default 1)\n"
		"  -d DRIVER     peer type (also --peer-type): futex (default), posixfd, posix\n"
		"  --create      create the segment if it does not exist\n"
		"  --spin-us N   poll this long before sleeping (default %u)\n"
		"  --spin-batches on|off  also poll after a burst of several requests (default %s)\n"
		"  --io-threads N  I/O worker threads of peers that block (default %u)\n",
		p->name, p->required ? " " : "", p->required ? p->required : "",
		own_usage ? "\n" : "", own_usage ? own_usage : "",
		spin_def, p->spin_batches ? "on" : "off",
		PEER_IO_THREADS_DEFAULT);
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

/*
 * The common options that have no short form get codes no character has, so
 * that a peer's own short options (-S, -C, -I...) never land in them.
 */
enum { OPT_CREATE = 0x100, OPT_SPIN, OPT_IO_THREADS, OPT_VERSION, OPT_SPIN_BATCHES };

int peer_parse_args(struct peer *p, int argc, char **argv, const char *own,
		    const struct option *own_long, int (*own_fn)(struct peer *p, int opt, const char *arg),
		    const char *own_usage)
{
	static const struct option common[] = {
		{ "spec", required_argument, NULL, 'g' }, { "port", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 't' }, { "driver", required_argument, NULL, 'd' },
		{ "create", no_argument, NULL, OPT_CREATE }, { "spin-us", required_argument, NULL, OPT_SPIN },
		{ "verbose", no_argument, NULL, 'v' }, { "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' }, { "io-threads", required_argument, NULL, OPT_IO_THREADS },
		{ "version", no_argument, NULL, OPT_VERSION }, { "peer-type", required_argument, NULL, 'd' },
		{ "spin-batches", required_argument, NULL, OPT_SPIN_BATCHES },
	};
	struct option all[64];
	char shorts[128];
	size_t n = 0;
	uint32_t spin_def;
	int c;

	if (!p->name)
		p->name = argv[0];
	p->driver = p->driver ? p->driver : "futex";
	p->threads = p->threads ? p->threads : 1;
	p->spin_us = spin_def = spin_default(p);	/* a peer may preset its own */
	p->io_threads = p->io_threads ? p->io_threads : PEER_IO_THREADS_DEFAULT;
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
		case OPT_CREATE: p->create = 1; break;
		case 'v': p->verbose++; break;
		case 'q': p->verbose = -1; break;
		case 'h': usage(p, own_usage, stdout, spin_def); return 1;
		case OPT_VERSION:
			printf("%s (xseg %s, segment layout %u.%u)\n",
			       strrchr(p->name, '/') ? strrchr(p->name, '/') + 1 : p->name, XSEG_RELEASE,
			       XSEG_VERSION_MAJOR, XSEG_VERSION_MINOR);
			return 1;
		case 't':
			if (parse_u32(optarg, &p->threads) || !p->threads || p->threads > PEER_MAX_PORTS) {
				fprintf(stderr, "%s: -t: '%s' must be 1..%d\n", p->name, optarg, PEER_MAX_PORTS);
				return -1;
			}
			break;
		case OPT_IO_THREADS:
			if (parse_u32(optarg, &p->io_threads) || !p->io_threads ||
			    p->io_threads > PEER_IO_THREADS_MAX) {
				fprintf(stderr, "%s: --io-threads: '%s' must be 1..%u\n", p->name, optarg,
					PEER_IO_THREADS_MAX);
				return -1;
			}
			break;
		case OPT_SPIN:
			if (parse_u32(optarg, &p->spin_us)) {
				fprintf(stderr, "%s: --spin-us: '%s' is not a number\n", p->name, optarg);
				return -1;
			}
			break;
		case OPT_SPIN_BATCHES:
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "%s: --spin-batches: '%s' is not on or off\n", p->name, optarg);
				return -1;
			}
			p->spin_batches = !strcmp(optarg, "on");
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
			usage(p, own_usage, stderr, spin_def);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", p->name, argv[optind]);
		return -1;
	}
	if (!p->spec) {
		fprintf(stderr, "%s: -g SPEC is required\n", p->name);
		usage(p, own_usage, stderr, spin_def);
		return -1;
	}
	return 0;
}

static int client_init(struct peer *p);

int peer_start(struct peer *p)
{
	char err[256] = "";
	struct sigaction sa;
	uint32_t given = 0;
	int r, e, existed = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	r = xseg_parse_spec_given(p->spec, &p->cfg, &given, err, sizeof(err));
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
		existed = r == -EEXIST;
	}
	p->xs = xseg_join(p->cfg.type, p->cfg.name, p->driver, NULL, NULL, &e, err, sizeof(err));
	if (!p->xs) {
		peer_log(p, 0, "cannot join segment '%s': %s (%s)", p->cfg.name, err, strerror(-e));
		return e;
	}
	/* Create-or-open: what exists must be what the spec asks (docs/spec.md). */
	if (existed) {
		r = xseg_config_mismatch(xseg_config(p->xs), &p->cfg, given, err, sizeof(err));
		if (r) {
			peer_log(p, 0, "--create: %s", err);
			xseg_leave(p->xs);
			p->xs = NULL;
			return r;
		}
	}
	r = client_init(p);
	if (r)
		goto leave;
	/* The dispatch loops spin themselves, adaptively (see work()). */
	xseg_set_spin_us(p->xs, 0);
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
	free(p->client);
	p->client = NULL;
	xseg_leave(p->xs);
	p->xs = NULL;
	return r;
}

struct worker {
	struct peer *p;
	uint32_t first, count;		/* the slice of p->ports this thread serves */
	int result;
	int pending;			/* the peer's pending() said work waits */
	/* Is the machine crowded (see crowded())? */
	int crowd_fd;			/* /proc/pressure/cpu or /proc/loadavg; -1: none, -2: not opened */
	int crowd_psi;			/* crowd_fd is a PSI file (else loadavg) */
	int crowded;			/* the last verdict */
	uint64_t crowd_at;		/* when it was taken (ns) */
	uint64_t crowd_total;		/* PSI: the stall total (us) then */
	uint64_t spins, crowd_skips;	/* spins run, and not run because crowded (for the log) */
	uint64_t batch_spins;		/* of the spins, those after a burst of several requests */
};

/*
 * Signal batching: a thread that replies to many requests in a row (the
 * dispatch loop serving inline, a pool worker draining the ring) signals
 * each destination once at the end of its batch instead of once per reply.
 * The reply is in the queue before the signal either way; a signal is only
 * a wake-up, and a woken peer takes every reply queued. Threads without a
 * batch (peer_complete from the peer's own threads) signal at once.
 */
#define SIGBATCH_PORTS 8
#define SIGBATCH_REPLIES 16	/* replies held back at most, so clients start early */

struct sigbatch {
	struct xseg *xs;
	uint32_t n, replies;
	uint32_t port[SIGBATCH_PORTS];
};

static _Thread_local struct sigbatch *tl_batch;

static void batch_flush(struct sigbatch *b)
{
	for (uint32_t i = 0; i < b->n; i++)
		xseg_signal(b->xs, b->port[i]);
	b->n = 0;
	b->replies = 0;
}

/* Signal @to now, or once when this thread's batch ends. */
static void signal_later(struct xseg *xs, uint32_t to)
{
	struct sigbatch *b = tl_batch;

	if (!b || b->xs != xs) {
		xseg_signal(xs, to);
		return;
	}
	if (++b->replies > SIGBATCH_REPLIES) {
		batch_flush(b);
		b->replies = 1;
	}
	for (uint32_t i = 0; i < b->n; i++)
		if (b->port[i] == to)
			return;
	if (b->n == SIGBATCH_PORTS)
		batch_flush(b);
	b->port[b->n++] = to;
}

/*
 * XF_ZEROFILL on a served READ: what the object did not have (a short read
 * at its end) reads as zeroes, and the reply says the full size.
 */
static void zero_fill(struct peer *p, struct xseg_request *req)
{
	uint64_t cap = 0, n = req->serviced, len = req->size;
	uint8_t *d;

	if (req->op != X_READ || !(req->flags & XF_ZEROFILL) || n >= len)
		return;
	d = xseg_req_buffer(p->xs, req, &cap);
	if (!d || len > cap || len > req->data_len)
		return;		/* no room for it: the short reply stands */
	memset(d + n, 0, len - n);
	req->serviced = len;
}

/* Reply to @req with @err (0: served) and signal whoever it went to. */
static int finish(struct peer *p, struct xseg_request *req, int err)
{
	int to;

	if (err) {
		__atomic_fetch_add(&p->failed, 1, __ATOMIC_RELAXED);
		/* -EAGAIN: our other threads hold every hold record of the port; retry. */
		while ((to = xseg_fail(p->xs, req, err)) == -EAGAIN)
			sched_yield();
	} else {
		zero_fill(p, req);
		__atomic_fetch_or(&req->state, XS_SERVED, __ATOMIC_RELEASE);
		__atomic_fetch_add(&p->served, 1, __ATOMIC_RELAXED);
		while ((to = xseg_respond(p->xs, req)) == -EAGAIN)
			sched_yield();
	}
	if (to >= 0)
		signal_later(p->xs, (uint32_t)to);
	else
		peer_log(p, 1, "respond: %s", strerror(-to));
	return to < 0 ? to : 0;
}

int peer_complete(struct peer *p, struct xseg_request *req, int err)
{
	int r = finish(p, req, err);

	/* release: peer_run's drain sees the reply sent before the count drops. */
	__atomic_fetch_sub(&p->inflight, 1, __ATOMIC_RELEASE);
	return r;
}


/*
 * The client side (peer.h): one slot per request of the segment, indexed by
 * the request's index, holds the callback of a request this peer sent or
 * passed on. The slot is this process's memory: nothing in the shared
 * request (which the server may scribble on) decides which callback runs,
 * except that the serial must still match.
 */
struct client_slot {
	peer_reply_fn fn;		/* NULL: no reply awaited */
	void *arg;
	uint64_t serial;
};

struct client {
	uint32_t n;
	struct client_slot slot[];
};

static int client_init(struct peer *p)
{
	uint32_t n = xseg_max_requests(p->xs);	/* request indices of a grown segment too */
	struct client *c = calloc(1, sizeof(*c) + (size_t)n * sizeof(c->slot[0]));

	if (!c)
		return -ENOMEM;
	c->n = n;
	p->client = c;
	return 0;
}

struct xseg_request *peer_request(struct peer *p, uint32_t portno, const char *target, uint32_t tlen,
				  uint64_t datalen)
{
	struct xseg_request *req = xseg_get_request(p->xs, portno);
	int r;

	if (!req)
		return NULL;
	r = xseg_prep_request(p->xs, req, target, tlen, datalen);
	if (r) {
		xseg_put_request(p->xs, req);
		errno = -r;
		return NULL;
	}
	req->op = X_PING;
	req->flags = 0;
	req->offset = req->size = req->serviced = 0;
	return req;
}

/* Remember @fn for @req's reply; the slot's index, or -EINVAL. */
static int client_arm(struct peer *p, struct xseg_request *req, peer_reply_fn fn, void *arg)
{
	struct client *c = p->client;
	int idx = xseg_request_index(p->xs, req);

	if (!c || idx < 0 || (uint32_t)idx >= c->n || !fn)
		return -EINVAL;
	c->slot[idx].arg = arg;
	c->slot[idx].serial = req->serial;
	/* release: the thread that receives the reply sees arg and serial with fn. */
	__atomic_store_n(&c->slot[idx].fn, fn, __ATOMIC_RELEASE);
	__atomic_fetch_add(&p->outstanding, 1, __ATOMIC_RELAXED);
	return idx;
}

static void client_disarm(struct peer *p, int idx)
{
	struct client *c = p->client;

	__atomic_store_n(&c->slot[idx].fn, NULL, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&p->outstanding, 1, __ATOMIC_RELEASE);
}

int peer_submit(struct peer *p, uint32_t portno, struct xseg_request *req, uint32_t dst,
		peer_reply_fn fn, void *arg)
{
	int idx = client_arm(p, req, fn, arg), to;

	(void)portno;	/* the request went out from the port it was taken for */
	if (idx < 0)
		return idx;
	to = xseg_submit(p->xs, req, dst);
	if (to < 0) {
		client_disarm(p, idx);
		return to;
	}
	signal_later(p->xs, (uint32_t)to);
	return 0;
}

int peer_forward(struct peer *p, uint32_t portno, struct xseg_request *req, uint32_t dst,
		 peer_reply_fn fn, void *arg)
{
	int idx = client_arm(p, req, fn, arg), to;

	if (idx < 0)
		return idx;
	to = xseg_forward(p->xs, req, portno, dst);
	if (to < 0) {
		client_disarm(p, idx);
		return to;
	}
	signal_later(p->xs, (uint32_t)to);
	return 0;
}

int peer_pass(struct peer *p, uint32_t portno, struct xseg_request *req, uint32_t dst)
{
	int to = xseg_pass(p->xs, req, portno, dst);

	if (to < 0)
		return to;
	signal_later(p->xs, (uint32_t)to);
	/* Answered by @dst now, as far as this peer is concerned (release: see peer_complete). */
	__atomic_fetch_sub(&p->inflight, 1, __ATOMIC_RELEASE);
	return 0;
}

/* Take up to 64 replies queued to @port and run their callbacks; how many. */
static int receive_replies(struct peer *p, uint32_t port)
{
	struct client *c = p->client;
	struct xseg_request *req;
	int k;

	if (!c || !__atomic_load_n(&p->outstanding, __ATOMIC_ACQUIRE))
		return 0;	/* nothing sent: nothing to receive (a reply queue stays empty) */
	for (k = 0; k < 64 && (req = xseg_receive(p->xs, port)); k++) {
		int idx = xseg_request_index(p->xs, req);
		struct client_slot *s = idx >= 0 && (uint32_t)idx < c->n ? &c->slot[idx] : NULL;
		peer_reply_fn fn = s ? __atomic_load_n(&s->fn, __ATOMIC_ACQUIRE) : NULL;

		if (!fn || s->serial != req->serial) {
			/* Not a reply we wait for (a server rewrote it?): give it up. */
			peer_log(p, 1, "port %u: a reply nobody waits for (request %d, %s): dropped", port, idx,
				 xseg_op_name(req->op));
			if (req->src_port == port)
				xseg_put_request(p->xs, req);
			else
				finish(p, req, EIO);
			continue;
		}
		client_disarm(p, idx);
		fn(p, port, req, s->arg);
	}
	return k;
}

/*
 * The I/O pool: a ring of accepted requests (never more than the segment's
 * nr_requests exist, so it cannot overflow) under a mutex, and workers that
 * run the peer's work() and reply.
 */
struct pool_item {
	uint32_t port;
	struct xseg_request *req;
};

struct pool {
	struct peer *p;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pool_item *ring;
	uint32_t cap, head, tail;	/* tail - head items, indices mod cap */
	uint32_t idle;			/* workers waiting on cv */
	int quit;
	uint32_t nth;
	pthread_t th[];
};

static int pool_push(struct pool *pl, uint32_t port, struct xseg_request *req)
{
	int wake;

	pthread_mutex_lock(&pl->mu);
	if (pl->tail - pl->head >= pl->cap) {
		pthread_mutex_unlock(&pl->mu);
		return -ENOSPC;
	}
	pl->ring[pl->tail % pl->cap] = (struct pool_item){ port, req };
	pl->tail++;
	wake = pl->idle > 0;
	pthread_mutex_unlock(&pl->mu);
	if (wake)
		pthread_cond_signal(&pl->cv);
	return 0;
}

static void *pool_worker(void *arg)
{
	struct pool *pl = arg;
	struct peer *p = pl->p;
	struct sigbatch batch = { .xs = p->xs };

	tl_batch = &batch;
	for (;;) {
		struct pool_item it;

		pthread_mutex_lock(&pl->mu);
		if (pl->head == pl->tail && batch.n) {
			/* Nothing more for now: wake the clients before sleeping. */
			pthread_mutex_unlock(&pl->mu);
			batch_flush(&batch);
			pthread_mutex_lock(&pl->mu);
		}
		while (pl->head == pl->tail && !pl->quit) {
			pl->idle++;
			pthread_cond_wait(&pl->cv, &pl->mu);
			pl->idle--;
		}
		if (pl->head == pl->tail) {	/* quit, and nothing left */
			pthread_mutex_unlock(&pl->mu);
			batch_flush(&batch);
			tl_batch = NULL;
			return NULL;
		}
		it = pl->ring[pl->head % pl->cap];
		pl->head++;
		pthread_mutex_unlock(&pl->mu);
		peer_complete(p, it.req, p->work(p, it.port, it.req));
	}
}

static void pool_stop(struct peer *p)
{
	struct pool *pl = p->pool;

	if (!pl)
		return;
	pthread_mutex_lock(&pl->mu);
	pl->quit = 1;
	pthread_mutex_unlock(&pl->mu);
	pthread_cond_broadcast(&pl->cv);
	for (uint32_t i = 0; i < pl->nth; i++)
		pthread_join(pl->th[i], NULL);
	pthread_cond_destroy(&pl->cv);
	pthread_mutex_destroy(&pl->mu);
	free(pl->ring);
	free(pl);
	p->pool = NULL;
}

static int pool_start(struct peer *p)
{
	uint32_t n = p->io_threads ? p->io_threads : PEER_IO_THREADS_DEFAULT;
	struct pool *pl = calloc(1, sizeof(*pl) + n * sizeof(pthread_t));
	sigset_t block, old;
	int r = 0;

	if (!pl)
		return -ENOMEM;
	pl->p = p;
	pl->cap = xseg_max_requests(p->xs) + 1;
	pl->ring = calloc(pl->cap, sizeof(*pl->ring));
	if (!pl->ring) {
		free(pl);
		return -ENOMEM;
	}
	pthread_mutex_init(&pl->mu, NULL);
	pthread_cond_init(&pl->cv, NULL);
	p->pool = pl;
	/* Workers never take SIGTERM/SIGINT: the dispatch threads handle the stop. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (pl->nth = 0; pl->nth < n; pl->nth++) {
		r = pthread_create(&pl->th[pl->nth], NULL, pool_worker, pl);
		if (r)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		peer_log(p, 0, "cannot start I/O thread %u: %s", pl->nth, strerror(r));
		pool_stop(p);
		return -r;
	}
	return 0;
}

/* Serve one request: call serve(), then reply now, or let the pool or the peer reply later. */
static void dispatch(struct peer *p, uint32_t port, struct xseg_request *req)
{
	int err;

	if (req->op >= X_OP_COUNT) {
		finish(p, req, EOPNOTSUPP);
		return;
	}
	__atomic_fetch_add(&p->inflight, 1, __ATOMIC_RELAXED);
	err = p->serve(p, port, req);
	if (err == PEER_ASYNC)
		return;
	if (err == PEER_DEFER) {
		if (p->pool && pool_push(p->pool, port, req) == 0)
			return;
		err = p->work ? p->work(p, port, req) : EIO;	/* no pool: serve it here */
	}
	peer_complete(p, req, err);
}

static inline void sched_yield_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Accept and serve up to 64 requests per port of @w's slice; how many. */
static int round_of_work(struct worker *w)
{
	struct peer *p = w->p;
	int busy = 0;

	for (uint32_t i = 0; i < w->count; i++) {
		uint32_t port = p->ports[w->first + i];
		struct xseg_request *req;

		/* Replies first: they free requests the new work may need. */
		busy += receive_replies(p, port);
		/* Batches of work before looking at the clock again. */
		for (int k = 0; k < 64 && (req = xseg_accept(p->xs, port)); k++) {
			dispatch(p, port, req);
			busy++;
		}
	}
	if (p->pending && p->pending(p, p->ports[w->first]))
		w->pending = 1;
	else
		w->pending = 0;
	return busy;
}

/*
 * Poll the slice for up to @spin_ns before sleeping; true if work came.
 * Polling is accept itself (an empty queue costs a few loads).
 */
static int spin_for_work(struct worker *w, uint64_t spin_ns)
{
	uint64_t start = xseg_sys_now_ns();

	do {
		for (int i = 0; i < 16; i++) {
			if (round_of_work(w))
				return 1;
			sched_yield_relax();
		}
	} while (xseg_sys_now_ns() - start < spin_ns);
	return 0;
}

/*
 * The dispatch loop. Spinning is adaptive: a spin pays only when the next
 * request comes within it (clients keeping many requests in flight), and on
 * a machine with few CPUs a spin that does not pay takes the CPU the client
 * needs to send that request. So the loop spins (for --spin-us) only while
 * its last spin caught work (or the last idle gap was short enough for one
 * to); after a spin that found nothing (a client at queue depth 1 behind a
 * slow event loop) it sleeps at once, and tries a spin again every
 * SPIN_PROBE idle periods, so a client that speeds up gets it back.
 */
/*
 * After the stop: accept nothing more, but keep receiving the replies the
 * peer's async requests wait for, until nothing is outstanding and nothing
 * accepted is unreplied. Recovery keeps running, so a dead server's
 * requests come back failed instead of hanging here.
 */
static void drain_replies(struct worker *w)
{
	struct peer *p = w->p;
	uint64_t last_recovery = xseg_sys_now_ns();

	if (!p->client)
		return;
	while (__atomic_load_n(&p->outstanding, __ATOMIC_ACQUIRE) ||
	       __atomic_load_n(&p->inflight, __ATOMIC_ACQUIRE)) {
		int busy = 0;

		for (uint32_t i = 0; i < w->count; i++)
			busy += receive_replies(p, p->ports[w->first + i]);
		if (p->pending)
			p->pending(p, p->ports[w->first]);
		batch_flush(tl_batch);
		if (busy)
			continue;
		if (xseg_sys_now_ns() - last_recovery > 1000000000ull && w->first == 0) {
			xseg_recover(p->xs, NULL);
			last_recovery = xseg_sys_now_ns();
		}
		if (xseg_wait(p->xs, p->ports[w->first], 1000) < 0)
			break;
	}
}

/*
 * Spinning needs a CPU nobody else wants. On a machine with more runnable
 * tasks than CPUs a spin takes the CPU the client (or the next peer of the
 * chain) needs to send the request, and a spinner that the scheduler
 * preempts is not a futex waiter, so a request sent meanwhile wakes nobody
 * and waits for the spinner's next time slice (milliseconds under load; a
 * 4K QD1 cell fell to a tenth of its unloaded rate that way). So the loop
 * spins only while the machine is not crowded: the kernel's CPU pressure
 * (PSI, /proc/pressure/cpu: how long some runnable task waited for a CPU)
 * grew by less than CROWD_STALL_PCT of the time since the last look, taken
 * at most every CROWD_PERIOD_NS, on the idle path only. Without PSI the
 * runnable count of /proc/loadavg is compared with the online CPUs. The
 * environment variable XSEG_PEER_PRESSURE names another file in PSI's format
 * (tests), or "off" to spin regardless (as before).
 */
#define CROWD_PERIOD_NS 20000000ull	/* 20 ms */
#define CROWD_STALL_PCT 80u

static int crowd_open(struct worker *w)
{
	const char *env = getenv("XSEG_PEER_PRESSURE");

	w->crowd_psi = 1;
	if (env && !strcmp(env, "off"))
		return -1;
	if (env && *env)
		return open(env, O_RDONLY | O_CLOEXEC);
	w->crowd_fd = open("/proc/pressure/cpu", O_RDONLY | O_CLOEXEC);
	if (w->crowd_fd >= 0) {
		char c;

		/* A kernel booted with psi=0 has the file but refuses to read it. */
		if (pread(w->crowd_fd, &c, 1, 0) == 1)
			return w->crowd_fd;
		close(w->crowd_fd);
	}
	w->crowd_psi = 0;
	return open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
}

/* PSI's "some ... total=N" (microseconds), or the runnable tasks of loadavg ("a b c R/T pid"). */
static int crowd_read(struct worker *w, uint64_t *v)
{
	char buf[256], *s;
	ssize_t n = pread(w->crowd_fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return -1;
	buf[n] = 0;
	if (w->crowd_psi) {
		s = strstr(buf, "total=");	/* the first line: "some" */
		if (!s)
			return -1;
		*v = strtoull(s + 6, NULL, 10);
		return 0;
	}
	s = strchr(buf, '/');
	while (s && s > buf && s[-1] >= '0' && s[-1] <= '9')
		s--;
	if (!s)
		return -1;
	*v = strtoull(s, NULL, 10);
	return 0;
}

static int crowded(struct worker *w, uint64_t now)
{
	uint64_t v, dt;

	if (w->crowd_fd == -2)
		w->crowd_fd = crowd_open(w);
	if (w->crowd_fd < 0)
		return 0;
	dt = now - w->crowd_at;
	if (w->crowd_at && dt < CROWD_PERIOD_NS)
		return w->crowded;
	if (crowd_read(w, &v)) {
		close(w->crowd_fd);
		w->crowd_fd = -1;	/* unreadable: never crowded, as without it */
		return w->crowded = 0;
	}
	if (!w->crowd_psi) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		/* The count includes this thread. */
		w->crowded = cpus > 0 && v > (uint64_t)cpus;
	} else if (w->crowd_at) {
		w->crowded = v > w->crowd_total && (v - w->crowd_total) * 1000 * 100 > (uint64_t)CROWD_STALL_PCT * dt;
	}
	w->crowd_total = v;
	w->crowd_at = now;
	return w->crowded;
}

#define SPIN_PROBE 8
static void *work(void *arg)
{
	struct worker *w = arg;
	struct peer *p = w->p;
	uint64_t last_recovery = xseg_sys_now_ns();
	uint64_t spin_ns = (uint64_t)p->spin_us * 1000;
	struct sigbatch batch = { .xs = p->xs };
	uint32_t probe = 0, burst = 0;
	int spin = 1;

	tl_batch = &batch;
	while (!peer_stopping()) {
		uint64_t idle_since;
		int busy = round_of_work(w);

		/* The replies of this round (served inline) wake their clients once. */
		batch_flush(&batch);
		burst += (uint32_t)busy;
		if (busy)
			continue;
		idle_since = xseg_sys_now_ns();
		/*
		 * Spin only after a burst of one request: a client that waits for
		 * each reply. One with many in flight sends batches and keeps the
		 * CPUs busy itself; a spin would only take one from it. Unless the
		 * peer spins after batches too (--spin-batches, patternd's
		 * default): a client that refills its batch as soon as the replies
		 * are in (the Node batched API) then finds the peer awake instead
		 * of paying a wake-up per batch (docs/peers.md).
		 */
		if (spin_ns && (burst <= 1 || p->spin_batches) && (spin || ++probe % SPIN_PROBE == 0)) {
			if (crowded(w, idle_since)) {
				w->crowd_skips++;
				goto sleep;
			}
			w->spins++;
			w->batch_spins += burst > 1;
			spin = spin_for_work(w, spin_ns);
			if (spin) {
				batch_flush(&batch);
				burst = 1;
				continue;
			}
		}
sleep:
		burst = 0;
		if (w->pending) {
			/* The peer waits for free requests, which other processes free without a signal. */
			if (xseg_wait(p->xs, p->ports[w->first], 1000) < 0) {
				w->result = -EIO;
				break;
			}
			continue;
		}
		if (xseg_sys_now_ns() - last_recovery > 1000000000ull && w->first == 0) {
			struct xseg_recovery_stats st;

			if (xseg_recover(p->xs, &st) == 0 && (st.ports_freed || st.requests_freed))
				peer_log(p, 2, "recovery: %u ports freed, %u requests failed back, %u freed",
					 st.ports_freed, st.requests_failed, st.requests_freed);
			last_recovery = xseg_sys_now_ns();
		}
		/* Sleep on every port of our slice at once: a signal to any wakes us. */
		if (xseg_wait_any(p->xs, &p->ports[w->first], w->count, 200000) < 0) {
			w->result = -EIO;
			break;
		}
		/* Would a spin have caught this work? (The gap includes the wake-up.) */
		if (!spin)
			spin = xseg_sys_now_ns() - idle_since <= spin_ns;
	}
	batch_flush(&batch);
	drain_replies(w);
	batch_flush(&batch);
	tl_batch = NULL;
	if (w->crowd_fd >= 0)
		close(w->crowd_fd);
	if (spin_ns)
		peer_log(p, 2, "%llu spins, %llu not spun: the machine was crowded; %llu spins after a burst of several requests",
			 (unsigned long long)w->spins, (unsigned long long)w->crowd_skips,
			 (unsigned long long)w->batch_spins);
	return NULL;
}

int peer_run(struct peer *p)
{
	struct worker w[PEER_MAX_PORTS];
	pthread_t th[PEER_MAX_PORTS];
	uint32_t n = p->threads, per, i;
	int r = 0;

	if (!p->xs || !p->serve)
		return -EINVAL;
	if (p->work && (r = pool_start(p)))
		return r;
	/* Threads share ports: each port is accepted by exactly one thread. */
	if (n > p->nports)
		n = p->nports;
	per = (p->nports + n - 1) / n;
	for (i = 0; i < n; i++) {
		w[i].p = p;
		w[i].first = i * per;
		w[i].count = i * per + per > p->nports ? p->nports - i * per : per;
		w[i].result = 0;
		w[i].pending = 0;
		w[i].crowd_fd = -2;
		w[i].crowd_psi = w[i].crowded = 0;
		w[i].crowd_at = w[i].crowd_total = w[i].spins = w[i].crowd_skips = w[i].batch_spins = 0;
		r = pthread_create(&th[i], NULL, work, &w[i]);
		if (r) {
			peer_log(p, 0, "cannot start dispatch thread %u: %s", i, strerror(r));
			__atomic_store_n(&stopping, 1, __ATOMIC_RELAXED);
			n = i;
			break;
		}
	}
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	/* Nothing is accepted any more: wait for what the pool and the peer still hold. */
	while (__atomic_load_n(&p->inflight, __ATOMIC_ACQUIRE))
		usleep(1000);
	pool_stop(p);
	if (r)
		return -r;
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
	free(p->client);
	p->client = NULL;
}
