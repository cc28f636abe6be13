/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * nbdkit-xseg-plugin - an nbdkit plugin over libxseg: every NBD command of a
 * connection becomes requests to a storage port of a segment (blockd,
 * filed, patternd...), so nbdkit's users get xseg storage with everything
 * nbdkit has (TLS, filters, socket activation, --run).
 *
 *   nbdkit xseg segment=posix:vol port=1 [target=NAME] [driver=futex] [timeout=30]
 *
 * Threads. The plugin is PARALLEL: nbdkit calls it from many threads at
 * once, across connections. The process joins the segment once (after
 * nbdkit's fork, .after_fork) and binds one dynamic port, shared by all of
 * them: a thread takes a request, submits it to the storage port and sleeps
 * on a condition variable of its own. One reaper thread sleeps on the port,
 * receives every reply and hands it to the thread that waits for it, found by
 * the reply's request index (the request table is the routing table: an
 * index is ours from get_request until we put it back, so one waiter per
 * index; the serial number checks it is the same request).
 *
 * A storage peer that dies: while any request is out, the reaper runs
 * xseg_recover() about once a second, which fails the dead peer's requests
 * back to us (ECONNRESET), so the NBD client gets an error, not a hang; new
 * requests fail at once (no live peer on the port) until a peer binds it
 * again. timeout= is the last guard against a live peer that never answers.
 *
 * Requests larger than the segment's largest buffer are split into pieces
 * that fit, submitted together and awaited together.
 */
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../../xseg/xseg.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

/* Pieces of one NBD command in flight at once (more wait for the first). */
#define MAX_PIECES 64

/* How long a lone request's thread polls for its reply before sleeping. */
#define SPIN_NS 50000u

/* ------------------------------------------------------------ the config */

static char *opt_segment;			/* the spec, e.g. posix:vol */
static uint32_t opt_port = XSEG_NO_PORT;	/* the storage port */
static char *opt_target;			/* NULL: the client's export name */
static char *opt_driver;			/* NULL: futex */
static uint32_t opt_timeout = 30;		/* seconds per request; 0: none */

static void xp_unload(void)
{
	free(opt_segment);
	free(opt_target);
	free(opt_driver);
}

static int set_string(char **where, const char *key, const char *value)
{
	char *s = strdup(value);

	if (!s) {
		nbdkit_error("%s: %m", key);
		return -1;
	}
	free(*where);
	*where = s;
	return 0;
}

static int xp_config(const char *key, const char *value)
{
	if (!strcmp(key, "segment"))
		return set_string(&opt_segment, key, value);
	if (!strcmp(key, "port"))
		return nbdkit_parse_uint32_t("port", value, &opt_port);
	if (!strcmp(key, "target")) {
		if (strlen(value) > XSEG_TARGET_MAX) {
			nbdkit_error("target: '%s' is longer than %u bytes", value, XSEG_TARGET_MAX);
			return -1;
		}
		return set_string(&opt_target, key, value);
	}
	if (!strcmp(key, "driver"))
		return set_string(&opt_driver, key, value);
	if (!strcmp(key, "timeout"))
		return nbdkit_parse_uint32_t("timeout", value, &opt_timeout);
	nbdkit_error("unknown parameter '%s' (segment, port, target, driver, timeout)", key);
	return -1;
}

static struct xseg_config seg_cfg;	/* the spec as given: type and name */

static int xp_config_complete(void)
{
	char err[256];

	if (!opt_segment || opt_port == XSEG_NO_PORT) {
		nbdkit_error("segment= and port= are required (nbdkit xseg segment=posix:vol port=1)");
		return -1;
	}
	if (xseg_parse_spec(opt_segment, &seg_cfg, err, sizeof(err))) {
		nbdkit_error("segment=%s: %s", opt_segment, err);
		return -1;
	}
	if (opt_timeout > 86400) {
		nbdkit_error("timeout=%" PRIu32 ": at most 86400 seconds (0: no timeout)", opt_timeout);
		return -1;
	}
	return 0;
}

#define xp_config_help \
	"segment=SPEC       (required) the segment, e.g. posix:vol\n" \
	"port=N             (required) the storage port (blockd's -p)\n" \
	"target=NAME        the target of every request (default: the export name)\n" \
	"driver=NAME        peer type: futex (default), posixfd, posix\n" \
	"timeout=SECONDS    fail a request unanswered this long (default 30; 0: never)"

/* ---------------------------------------------------- the shared port */

struct waiter {
	pthread_cond_t *cond;		/* the waiting thread's */
	struct xseg_request *reply;	/* set by the reaper */
	uint64_t serial;
};

static struct xseg *xs;
static uint32_t me;			/* our dynamic port */
static uint64_t max_piece;		/* the largest buffer class */
static pthread_t reaper;
static int reaper_started;
static atomic_int stopping;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct waiter **waiting;		/* by request index; under lock */
static uint32_t nr_waiting_slots;
static uint32_t outstanding;		/* requests submitted, reply not received; under lock */

/*
 * An errno's name for messages ("ECONNRESET"): names are what the project's
 * tools print, and glibc's strerror() in a plugin thread makes nbdkit's exit
 * hang under a sanitizer runtime (libp11-kit's destructor then waits on
 * glibc's locale lock; test/scripts/nbdkit-san.sh).
 */
static const char *errname(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "an unknown error";
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* A reply for us: to its waiter, or back to the free list if nobody waits. */
static void deliver(struct xseg_request *req)
{
	int idx = xseg_request_index(xs, req);
	struct waiter *w = NULL;

	pthread_mutex_lock(&lock);
	if (idx >= 0 && (uint32_t)idx < nr_waiting_slots && waiting[idx] &&
	    waiting[idx]->serial == req->serial) {
		w = waiting[idx];
		waiting[idx] = NULL;
		outstanding--;
		w->reply = req;
		pthread_cond_signal(w->cond);
	}
	pthread_mutex_unlock(&lock);
	if (!w)
		while (xseg_put_request(xs, req) == -EAGAIN)
			sched_yield();
}

static void *reap(void *arg)
{
	uint64_t last_recover = now_ns();

	(void)arg;
	while (!atomic_load(&stopping)) {
		struct xseg_request *req;
		int got = 0;
		uint32_t out;

		while ((req = xseg_receive(xs, me))) {
			deliver(req);
			got = 1;
		}
		if (got)
			continue;
		pthread_mutex_lock(&lock);
		out = outstanding;
		pthread_mutex_unlock(&lock);
		/* Requests out and the storage peer perhaps dead: recovery fails
		 * a dead peer's requests back to us. */
		if (out && now_ns() - last_recover >= 1000000000u) {
			struct xseg_recovery_stats st;

			if (xseg_recover(xs, &st) == 0 && st.requests_failed)
				nbdkit_debug("xseg: recovery failed %" PRIu32 " requests of a dead peer back",
					     st.requests_failed);
			last_recover = now_ns();
		}
		xseg_wait(xs, me, out ? 200000 : 1000000);
	}
	return NULL;
}

static void xp_cleanup(void)
{
	if (reaper_started) {
		atomic_store(&stopping, 1);
		xseg_signal(xs, me);
		pthread_join(reaper, NULL);
		reaper_started = 0;
	}
	if (xs) {
		xseg_leave(xs);
		xs = NULL;
	}
	free(waiting);
	waiting = NULL;
}

/* After nbdkit's fork: the port's owner is the serving process. */
static int xp_after_fork(void)
{
	const struct xseg_config *c;
	char err[256] = "";
	int e = 0, r;

	xs = xseg_join(seg_cfg.type, seg_cfg.name, opt_driver ? opt_driver : "futex", NULL, NULL,
		       &e, err, sizeof(err));
	if (!xs) {
		nbdkit_error("cannot join %s:%s: %s", seg_cfg.type, seg_cfg.name, err[0] ? err : errname(-e));
		return -1;
	}
	c = xseg_config(xs);
	if (opt_port >= c->nr_ports) {
		nbdkit_error("port=%" PRIu32 ": %s:%s has ports 0 to %" PRIu32, opt_port,
			     seg_cfg.type, seg_cfg.name, c->nr_ports - 1);
		goto fail;
	}
	max_piece = c->request_size;
	for (uint32_t i = 0; i < c->nr_classes && i < XSEG_MAX_BUF_CLASSES - 1; i++)
		if (c->classes[i].size > max_piece)
			max_piece = c->classes[i].size;
	if (max_piece > (1u << 30))
		max_piece = 1u << 30;
	nr_waiting_slots = xseg_max_requests(xs);	/* by request index (growth included) */
	waiting = calloc(nr_waiting_slots, sizeof(*waiting));
	if (!waiting) {
		nbdkit_error("out of memory");
		goto fail;
	}
	xseg_set_spin_us(xs, 0);
	r = xseg_bind_port(xs, XSEG_ANY_PORT, XSEG_PORT_RECEIVE);
	if (r < 0) {
		nbdkit_error("%s:%s: no free dynamic port: %s", seg_cfg.type, seg_cfg.name, errname(-r));
		goto fail;
	}
	me = (uint32_t)r;
	if (pthread_create(&reaper, NULL, reap, NULL)) {
		nbdkit_error("cannot start the reply thread");
		goto fail;
	}
	reaper_started = 1;
	nbdkit_debug("xseg: joined %s:%s, port %" PRIu32 " -> storage port %" PRIu32 ", pieces up to %" PRIu64,
		     seg_cfg.type, seg_cfg.name, me, opt_port, max_piece);
	return 0;
fail:
	xp_cleanup();
	return -1;
}

/* -------------------------------------------------------- one request */

struct piece {
	struct xseg_request *req;
	struct waiter w;
	int idx;
	int err;			/* positive errno; 0 */
	int alone;			/* the only request out when submitted */
	uint64_t offset, size;
	char *out;			/* READ: where the data goes */
};

/* Wait a little before trying again; 0, or -1 after the deadline. */
static int backoff(unsigned *tries, uint64_t deadline)
{
	struct timespec t = { 0, 0 };

	if (deadline && now_ns() > deadline)
		return -1;
	if (++*tries < 16) {
		sched_yield();
		return 0;
	}
	t.tv_nsec = *tries < 64 ? 50000 : 1000000;
	nanosleep(&t, NULL);
	return 0;
}

struct call {
	const char *target;
	uint32_t tlen;
	uint32_t op, flags;
	uint64_t deadline;		/* 0: none */
};

/*
 * Take, fill and submit one piece. 0, or a positive errno (nothing out).
 * With @busy (this thread has pieces out already) a lack of free requests or
 * buffers returns EWOULDBLOCK at once: the caller awaits its pieces first,
 * so that threads holding requests never all wait for more.
 */
static int submit(const struct call *c, struct piece *pc, const void *in, uint64_t datalen, int busy)
{
	unsigned tries = 0;
	int r;

	while (!(pc->req = xseg_get_request(xs, me))) {
		if (busy && errno == EAGAIN)
			return EWOULDBLOCK;
		if (errno != EAGAIN || backoff(&tries, c->deadline)) {
			nbdkit_error("xseg: no free request on %s:%s (%s)", seg_cfg.type, seg_cfg.name,
				     errno == EAGAIN ? "all in use until the timeout" : errname(errno));
			return errno == EAGAIN ? ETIMEDOUT : EIO;
		}
	}
	tries = 0;
	while ((r = xseg_prep_request(xs, pc->req, c->target, c->tlen, datalen)) == -ENOBUFS) {
		if (busy) {
			xseg_put_request(xs, pc->req);
			return EWOULDBLOCK;
		}
		if (backoff(&tries, c->deadline))
			break;
	}
	if (r) {
		nbdkit_error("xseg: no buffer of %" PRIu64 " bytes: %s", datalen, errname(-r));
		xseg_put_request(xs, pc->req);
		return r == -ENOBUFS ? ETIMEDOUT : EIO;
	}
	pc->req->op = c->op;
	pc->req->flags = c->flags;
	pc->req->offset = pc->offset;
	pc->req->size = pc->size;
	if (in)
		memcpy(xseg_req_data(xs, pc->req), in, pc->size);
	pc->idx = xseg_request_index(xs, pc->req);
	pc->w.reply = NULL;
	pc->w.serial = pc->req->serial;
	pthread_mutex_lock(&lock);
	waiting[pc->idx] = &pc->w;
	pc->alone = ++outstanding == 1;
	pthread_mutex_unlock(&lock);
	tries = 0;
	while ((r = xseg_submit_signal(xs, pc->req, opt_port)) == -EAGAIN)
		if (backoff(&tries, c->deadline))
			break;
	if (r < 0) {
		pthread_mutex_lock(&lock);
		waiting[pc->idx] = NULL;
		outstanding--;
		pthread_mutex_unlock(&lock);
		xseg_put_request(xs, pc->req);
		pc->req = NULL;
		if (r == -ENOENT)
			nbdkit_error("xseg: port %" PRIu32 " of %s:%s has no live storage peer",
				     opt_port, seg_cfg.type, seg_cfg.name);
		else
			nbdkit_error("xseg: submit to port %" PRIu32 " of %s:%s: %s", opt_port,
				     seg_cfg.type, seg_cfg.name, errname(-r));
		return r == -EAGAIN ? ETIMEDOUT : EIO;
	}
	return 0;
}

/*
 * The errno the client sees: those NBD has a code for pass (nbdkit maps
 * them), the rest (ECONNRESET from recovery, ENOENT, ...) become EIO rather
 * than nbdkit's catch-all EINVAL, which would blame the client.
 */
static int nbd_errno(int e)
{
	switch (e) {
	case EPERM: case EROFS: case EIO: case ENOMEM: case EINVAL: case ENOSPC:
	case EDQUOT: case EFBIG: case EOVERFLOW: case ENOTSUP: case ESHUTDOWN:
		return e;
	default:
		return EIO;
	}
}

/* Wait for a submitted piece's reply and take its result. */
static void await(const struct call *c, struct piece *pc)
{
	struct xseg_request *req;

	/*
	 * Alone (a client at depth 1): receive on the port ourselves for up to
	 * SPIN_NS before sleeping, so that a quick reply costs no wake-up of
	 * the reply thread and then of us. Replies for others found meanwhile
	 * go to their waiters. With more requests out the CPUs are better left
	 * to the storage peer and the reply thread.
	 */
	if (pc->alone) {
		uint64_t until = now_ns() + SPIN_NS;
		int mine = 0;

		do {
			struct xseg_request *r = xseg_receive(xs, me);

			if (r)
				deliver(r);
			pthread_mutex_lock(&lock);
			mine = pc->w.reply != NULL;
			pthread_mutex_unlock(&lock);
		} while (!mine && now_ns() < until);
	}
	pthread_mutex_lock(&lock);
	while (!pc->w.reply) {
		if (c->deadline) {
			struct timespec t = { (time_t)(c->deadline / 1000000000u),
					      (long)(c->deadline % 1000000000u) };

			if (pthread_cond_timedwait(pc->w.cond, &lock, &t) == ETIMEDOUT && !pc->w.reply) {
				/* Abandoned: the reaper puts it back if it ever comes. */
				waiting[pc->idx] = NULL;
				outstanding--;
				pthread_mutex_unlock(&lock);
				nbdkit_error("xseg: %s at %" PRIu64 " unanswered by port %" PRIu32 " for %" PRIu32 " s",
					     xseg_op_name(c->op), pc->offset, opt_port, opt_timeout);
				pc->err = ETIMEDOUT;
				return;
			}
		} else {
			pthread_cond_wait(pc->w.cond, &lock);
		}
	}
	pthread_mutex_unlock(&lock);
	req = pc->w.reply;
	if (req->state & XS_FAILED) {
		int e = req->error > 0 && req->error < 4096 ? req->error : EIO;

		pc->err = nbd_errno(e);
		if (pc->err != e)
			nbdkit_error("xseg: %s at %" PRIu64 " on port %" PRIu32 " failed: %s",
				     xseg_op_name(c->op), pc->offset, opt_port, errname(e));
		else
			nbdkit_debug("xseg: %s at %" PRIu64 " failed: %s", xseg_op_name(c->op), pc->offset,
				     errname(e));
	} else if (pc->out && req->serviced != pc->size) {
		nbdkit_error("xseg: short read at %" PRIu64 ": %" PRIu64 " of %" PRIu64 " bytes",
			     pc->offset, req->serviced, pc->size);
		pc->err = EIO;
	} else if (pc->out) {
		/* The chunk as the request names it now, with its real capacity:
		 * the peer could have rewritten data_len or buf_index. */
		uint64_t cap = 0;
		const void *d = xseg_req_buffer(xs, req, &cap);

		if (d && cap >= pc->size) {
			memcpy(pc->out, d, pc->size);
		} else {
			nbdkit_error("xseg: the reply at %" PRIu64 " has no buffer of %" PRIu64 " bytes",
				     pc->offset, pc->size);
			pc->err = EIO;
		}
	}
	while (xseg_put_request(xs, req) == -EAGAIN)
		sched_yield();
}

/*
 * One NBD command as requests of @op: READ and WRITE in pieces of at most
 * max_piece bytes, up to MAX_PIECES in flight at once; INFO into @info (8
 * bytes); the others (FLUSH, DISCARD, WRITE_ZEROES) as one request for the
 * range. 0, or -1 with nbdkit's error set to the first failure's errno.
 */
static int run(const char *target, uint32_t op, uint32_t flags, uint64_t offset, uint64_t count,
	       const char *in, char *out, uint8_t *info)
{
	struct call c = { target, (uint32_t)strlen(target), op, flags,
			  opt_timeout ? now_ns() + (uint64_t)opt_timeout * 1000000000u : 0 };
	int pieces = op == X_READ || op == X_WRITE;
	struct piece pcs[MAX_PIECES];
	pthread_condattr_t a;
	pthread_cond_t cond;
	int err = 0, first = 1;

	/* One condition variable for the pieces of this thread, on the clock
	 * of the deadline. */
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&cond, &a);
	pthread_condattr_destroy(&a);
	while (!err && (first || count)) {
		int n = 0;

		first = 0;
		while (n < MAX_PIECES) {
			struct piece *pc = &pcs[n];
			uint64_t len = pieces && count > max_piece ? max_piece : count;
			int e;

			pc->w.cond = &cond;
			pc->offset = offset;
			pc->size = info ? 8 : len;
			pc->out = info ? (char *)info : out;
			pc->err = 0;
			e = submit(&c, pc, in, info ? 8 : pieces ? len : 0, n > 0);
			if (e == EWOULDBLOCK)
				break;		/* the rest after these */
			if (e) {
				err = e;
				break;
			}
			n++;
			if (!pieces)
				len = count;
			offset += len;
			count -= len;
			if (in)
				in += len;
			if (out)
				out += len;
			if (!count)
				break;
		}
		for (int i = 0; i < n; i++) {
			await(&c, &pcs[i]);
			if (pcs[i].err && !err)
				err = pcs[i].err;
		}
	}
	pthread_cond_destroy(&cond);
	if (err) {
		nbdkit_set_error(nbd_errno(err));
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------- connections */

struct handle {
	char target[XSEG_TARGET_MAX + 1];
};

static void *xp_open(int readonly)
{
	struct handle *h = calloc(1, sizeof(*h));
	const char *t = opt_target;

	(void)readonly;
	if (!h) {
		nbdkit_error("out of memory");
		return NULL;
	}
	if (!t)
		t = nbdkit_export_name();
	if (!t)
		t = "";
	if (strlen(t) > XSEG_TARGET_MAX) {
		nbdkit_error("export name '%s' is longer than a target (%u bytes)", t, XSEG_TARGET_MAX);
		free(h);
		return NULL;
	}
	strcpy(h->target, t);
	return h;
}

static void xp_close(void *handle)
{
	free(handle);
}

static int64_t xp_get_size(void *handle)
{
	struct handle *h = handle;
	uint8_t d[8];
	uint64_t size = 0;

	if (run(h->target, X_INFO, 0, 0, 8, NULL, NULL, d))
		return -1;
	for (int i = 7; i >= 0; i--)
		size = size << 8 | d[i];
	if (size > INT64_MAX) {
		nbdkit_error("xseg: target '%s' reports a size beyond 2^63", h->target);
		return -1;
	}
	return (int64_t)size;
}

static int xp_can_write(void *handle) { (void)handle; return 1; }
static int xp_can_flush(void *handle) { (void)handle; return 1; }
static int xp_can_trim(void *handle) { (void)handle; return 1; }
static int xp_can_zero(void *handle) { (void)handle; return 1; }
/* The storage peer may write zeros to zero a range: not fast. */
static int xp_can_fast_zero(void *handle) { (void)handle; return 0; }
static int xp_can_fua(void *handle) { (void)handle; return NBDKIT_FUA_NATIVE; }
/* Every connection reaches the same storage peer and target: a FLUSH
 * (fdatasync of the volume) covers the writes of all of them. */
static int xp_can_multi_conn(void *handle) { (void)handle; return 1; }

static int xp_pread(void *handle, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	struct handle *h = handle;

	(void)flags;
	return run(h->target, X_READ, 0, offset, count, NULL, buf, NULL);
}

static int xp_pwrite(void *handle, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	struct handle *h = handle;

	return run(h->target, X_WRITE, flags & NBDKIT_FLAG_FUA ? XF_FUA : 0, offset, count, buf, NULL, NULL);
}

static int xp_flush(void *handle, uint32_t flags)
{
	struct handle *h = handle;

	(void)flags;
	return run(h->target, X_FLUSH, 0, 0, 0, NULL, NULL, NULL);
}

/* DISCARD and WRITE_ZEROES carry no data: one request for the range. FUA:
 * a FLUSH after it (the storage peers take XF_FUA on writes only). */
static int range_op(struct handle *h, uint32_t op, uint32_t count, uint64_t offset, uint32_t flags)
{
	if (run(h->target, op, 0, offset, count, NULL, NULL, NULL))
		return -1;
	if (flags & NBDKIT_FLAG_FUA)
		return run(h->target, X_FLUSH, 0, 0, 0, NULL, NULL, NULL);
	return 0;
}

static int xp_trim(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
	return range_op(handle, X_DISCARD, count, offset, flags);
}

static int xp_zero(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
	if (flags & NBDKIT_FLAG_FAST_ZERO) {
		nbdkit_set_error(ENOTSUP);
		return -1;
	}
	return range_op(handle, X_WRITE_ZEROES, count, offset, flags);
}

static struct nbdkit_plugin plugin = {
	.name = "xseg",
	.longname = "xseg storage port",
	.version = "0.1.0",
	.description = "Serves a storage port of an xseg segment (blockd, filed) over NBD",
	.unload = xp_unload,
	.config = xp_config,
	.config_complete = xp_config_complete,
	.config_help = xp_config_help,
	.after_fork = xp_after_fork,
	.cleanup = xp_cleanup,
	.open = xp_open,
	.close = xp_close,
	.get_size = xp_get_size,
	.can_write = xp_can_write,
	.can_flush = xp_can_flush,
	.can_trim = xp_can_trim,
	.can_zero = xp_can_zero,
	.can_fast_zero = xp_can_fast_zero,
	.can_fua = xp_can_fua,
	.can_multi_conn = xp_can_multi_conn,
	.pread = xp_pread,
	.pwrite = xp_pwrite,
	.flush = xp_flush,
	.trim = xp_trim,
	.zero = xp_zero,
	.errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN(plugin)
