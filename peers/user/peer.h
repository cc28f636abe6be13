/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/peer.h - the small framework the C peers are written on.
 *
 * A peer parses the common options (-g spec, -p port or FIRST-LAST, -t
 * threads, -d driver, -v/-q, --spin-us, --spin-batches, --create), joins the segment, binds
 * its ports, and runs a sleeping dispatch loop per thread: accept a request,
 * hand it to the peer's serve() callback, respond and signal the client.
 * SIGTERM and SIGINT stop the loops cleanly (in-flight requests finish; the
 * ports are left, which fails anything still queued back to its clients).
 * Every ~second the loop also runs recovery, so clients that died do not
 * leak requests.
 *
 * Peers whose requests block (storage I/O) do not serve them on the dispatch
 * thread: serve() returns PEER_DEFER and the framework's I/O pool
 * (--io-threads workers) runs the peer's work() callback and responds, so
 * many requests are in flight at once; or serve() returns PEER_ASYNC, keeps
 * the request and calls peer_complete() itself later. On SIGTERM the
 * dispatch loops stop accepting and peer_run() returns only once every
 * deferred or async request has been replied.
 */
#ifndef XSEG_PEER_H
#define XSEG_PEER_H

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include "xseg/xseg.h"

#define PEER_MAX_PORTS 64

struct peer;

/*
 * reply - the reply to a request the peer sent itself (peer_submit) or passed
 * on (peer_forward) has come back: @req holds the result (XS_FAILED with
 * req->error, else XS_SERVED with serviced and the data). Called on the
 * dispatch thread that serves @portno, the port the request went out from.
 * For peer_submit the request is the peer's again: put it
 * (xseg_put_request), or prepare and submit it again. For peer_forward it is
 * the client's accepted request again: reply with peer_complete (or forward
 * it once more).
 */
typedef void (*peer_reply_fn)(struct peer *p, uint32_t portno, struct xseg_request *req, void *arg);

/*
 * pending - called on each dispatch thread after every round (with the first
 * port of its slice): the peer retries work that waited for a free request
 * or buffer (peer_request failed with EAGAIN/ENOBUFS). Return nonzero while
 * something still waits: the loop then sleeps at most a millisecond, since a
 * request freed by another process signals nobody.
 */
typedef int (*peer_pending_fn)(struct peer *p, uint32_t portno);

/*
 * serve - handle @req (accepted on @portno). Return 0 after setting
 * req->serviced/state (XS_SERVED) and the data, or a positive errno to fail
 * the request with it. The framework responds and signals.
 */
typedef int (*peer_serve_fn)(struct peer *p, uint32_t portno, struct xseg_request *req);

/* serve() results besides 0 and errnos. */
#define PEER_ASYNC	(-1)	/* kept the request: peer_complete() follows, from any thread */
#define PEER_DEFER	(-2)	/* hand the request to the I/O pool, which calls work() */

/*
 * work - run on an I/O pool thread for a request serve() deferred; returns
 * like serve() (0 or a positive errno; not PEER_ASYNC/PEER_DEFER). May block.
 */
typedef int (*peer_work_fn)(struct peer *p, uint32_t portno, struct xseg_request *req);

#define PEER_IO_THREADS_DEFAULT 8u
#define PEER_IO_THREADS_MAX 256u

/*
 * A peer's preset spin_us for "no poll before sleeping by default" (0 there
 * means the library's default): for peers that get nothing back from the
 * request they pass on, so a poll only waits for the client's next request,
 * which at depth 1 is a whole round trip away (filed; docs/peers.md).
 */
#define PEER_SPIN_OFF UINT32_MAX

struct peer {
	/* Options (set by peer_parse_args or by hand). */
	const char *spec;
	const char *driver;		/* peer type, default "futex" */
	uint32_t port_first, port_last;	/* XSEG_ANY_PORT: one dynamic port */
	uint32_t threads;
	uint32_t spin_us;		/* 0: XSEG_SPIN_US_DEFAULT; a peer may preset its own, PEER_SPIN_OFF for none */
	int verbose;
	int create;			/* create the segment if it does not exist */
	/* State. */
	struct xseg_config cfg;
	struct xseg *xs;
	uint32_t ports[PEER_MAX_PORTS];
	uint32_t nports;
	peer_serve_fn serve;
	void *priv;			/* the peer's own state */
	const char *name;		/* for logs */
	uint64_t served, failed;	/* totals (atomic) */
	/* Appended: the I/O pool and async completions. */
	peer_work_fn work;		/* set to use PEER_DEFER */
	uint32_t io_threads;		/* pool size (--io-threads, default 8) */
	uint64_t inflight;		/* deferred/async requests not yet replied (atomic) */
	void *pool;			/* the framework's */
	/* Appended: the client side (peer_submit, peer_forward). */
	peer_pending_fn pending;	/* optional */
	uint64_t outstanding;		/* own or forwarded requests whose reply is not handled (atomic) */
	void *client;			/* the framework's */
	/* Appended: the peer's required options for its usage line ("-f PATH"). */
	const char *required;
	/*
	 * Appended: spin after a burst of several requests too, not only after
	 * one (--spin-batches on|off; a peer may preset it; patternd does).
	 */
	int spin_batches;
};

/* The release every C tool's --version prints (base.mk passes XSEG_VERSION). */
#ifndef XSEG_RELEASE
#define XSEG_RELEASE "unknown"
#endif

/*
 * peer_parse_args - parse the common options into @p and leave the peer's
 * own (those in @own, getopt syntax, with @own_long) to @own_fn. Prints usage
 * (to stderr) and returns -1 on a bad option (exit status 2); prints usage
 * for --help, or the version for --version, to stdout and returns 1 (exit 0).
 * --peer-type is a spelling of -d/--driver (the `xseg` CLI's).
 */
int peer_parse_args(struct peer *p, int argc, char **argv, const char *own,
		    const struct option *own_long, int (*own_fn)(struct peer *p, int opt, const char *arg),
		    const char *own_usage);

/* peer_start - join (creating with --create), bind the ports. 0 or -errno (logged). */
int peer_start(struct peer *p);

/* peer_run - the dispatch loops (threads), until SIGTERM/SIGINT. 0 or -errno. */
int peer_run(struct peer *p);

/*
 * peer_complete - reply to a request serve() returned PEER_ASYNC for: @err 0
 * responds it served (set serviced and the data first), a positive errno
 * fails it. Every served reply (serve's 0, work's, this) of a READ with
 * XF_ZEROFILL is completed to its size with zeroes past serviced. Signals
 * the port the reply went to. Any thread, exactly once per request. Returns
 * 0 or the -errno of xseg_respond (logged).
 */
int peer_complete(struct peer *p, struct xseg_request *req, int err);

/*
 * The client side: a peer sends requests of its own from its ports to other
 * ports, and passes requests it accepted on, and gets the replies back
 * asynchronously on the dispatch thread that serves the port they went out
 * from. That loop receives replies on its ports alongside accepting
 * requests (replies first, so requests are freed before new ones are
 * taken), and a reply wakes it like a request does. Nothing here takes a
 * lock another process could hold: a request to a peer that dies comes back
 * failed (ECONNRESET) once recovery settles the dead port, and the callback
 * sees it as any failed reply. On SIGTERM the loops stop accepting but keep
 * receiving until every outstanding reply has been handled and every
 * deferred or async request replied.
 *
 * A peer using it usually serves with one dispatch thread (-t 1), so that its
 * own state is touched only there and needs no lock; with more threads a
 * callback runs on the thread that owns its port.
 */

/*
 * peer_request - a free request of port @portno (bound by this peer) with
 * target @target (@tlen bytes) and a data buffer of @datalen bytes (0: none),
 * op PING, flags, offset and size 0. NULL with errno EAGAIN (no free request),
 * ENOBUFS (no free buffer), E2BIG (no buffer class that large), ENAMETOOLONG.
 * Any thread; never sleeps.
 */
struct xseg_request *peer_request(struct peer *p, uint32_t portno, const char *target, uint32_t tlen,
				  uint64_t datalen);

/*
 * peer_submit - send @req (from peer_request on @portno, op and fields set)
 * to @dst; @fn(p, portno, req, @arg) runs on @portno's dispatch thread when
 * the reply is back. Returns 0, or a -errno of xseg_submit (-ENOENT nobody
 * serves @dst, -EAGAIN its queue is full): then @fn never runs and the
 * request is still the caller's. The destination is signaled (batched when
 * called on a dispatch thread). Any thread.
 */
int peer_submit(struct peer *p, uint32_t portno, struct xseg_request *req, uint32_t dst,
		peer_reply_fn fn, void *arg);

/*
 * peer_forward - pass @req, accepted on @portno (serve() returned PEER_ASYNC
 * for it), on to @dst without copying it: the target, offset, size and flags
 * may be rewritten first (the data buffer is the client's, served in place).
 * The reply comes back to @portno first and @fn runs there; the peer then
 * restores what the client must see and calls peer_complete. If this peer
 * dies meanwhile, the reply goes on to the client failed (ECONNRESET).
 * Returns 0 or -errno as peer_submit (-ENOSPC: the return path is full);
 * on an error the request is still accepted and the peer's to complete.
 */
int peer_forward(struct peer *p, uint32_t portno, struct xseg_request *req, uint32_t dst,
		 peer_reply_fn fn, void *arg);

/*
 * peer_pass - pass @req, accepted on @portno (serve() returned PEER_ASYNC for
 * it), on to @dst with no return hop (xseg_pass): @dst's reply goes to the
 * client (or the hop before this peer) and this peer never sees it again;
 * it counts as completed here. Rewrite the fields with xseg_readdress()
 * first so that the client gets back what it sent. Returns 0, or -errno as
 * peer_submit; on an error the request is still the peer's to complete.
 */
int peer_pass(struct peer *p, uint32_t portno, struct xseg_request *req, uint32_t dst);

/* peer_stop - leave the ports and the segment. */
void peer_stop(struct peer *p);

/* Logging with the peer's name and verbosity. */
void peer_log(struct peer *p, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* peer_stopping - true once SIGTERM/SIGINT arrived. */
int peer_stopping(void);

#endif
