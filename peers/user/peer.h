/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/peer.h - the small framework the C peers are written on.
 *
 * A peer parses the common options (-g spec, -p port or FIRST-LAST, -t
 * threads, -d driver, -v/-q, --spin-us, --create), joins the segment, binds
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

struct peer {
	/* Options (set by peer_parse_args or by hand). */
	const char *spec;
	const char *driver;		/* peer type, default "futex" */
	uint32_t port_first, port_last;	/* XSEG_ANY_PORT: one dynamic port */
	uint32_t threads;
	uint32_t spin_us;
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
};

/*
 * peer_parse_args - parse the common options into @p and leave the peer's
 * own (those in @own, getopt syntax, with @own_long) to @own_fn. Prints usage
 * and returns -1 on a bad option (exit status 2), 1 for --help (0).
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
 * fails it. Signals the port the reply went to. Any thread, exactly once per
 * request. Returns 0 or the -errno of xseg_respond (logged).
 */
int peer_complete(struct peer *p, struct xseg_request *req, int err);

/* peer_stop - leave the ports and the segment. */
void peer_stop(struct peer *p);

/* Logging with the peer's name and verbosity. */
void peer_log(struct peer *p, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* peer_stopping - true once SIGTERM/SIGINT arrived. */
int peer_stopping(void);

#endif
