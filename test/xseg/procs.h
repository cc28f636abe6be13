/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test/xseg/procs.h - real peer processes for the core tests: start the C
 * peers built next to the test (lib/user[-san]/bin/), and a pipelined client
 * that checks every byte against the pattern of peers/user/pattern.h.
 */
#ifndef TEST_XSEG_PROCS_H
#define TEST_XSEG_PROCS_H

#include <limits.h>
#include "common.h"
#include "../../peers/user/pattern.h"

/* lib/user[-san]/bin/<name>, next to lib/user[-san]/test/xseg/<this test>. */
static inline void tx_bin(const char *name, char *path, size_t len)
{
	char self[PATH_MAX / 2];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *p;

	CHECK(n > 0);
	self[n] = 0;
	for (int i = 0; i < 3; i++) {		/* strip test/xseg/<name> */
		p = strrchr(self, '/');
		CHECK(p);
		*p = 0;
	}
	CHECK(strlen(self) + strlen(name) + 6 < len);
	memcpy(path, self, strlen(self));
	sprintf(path + strlen(self), "/bin/%s", name);
	CHECKF(access(path, X_OK) == 0, "%s is not built (make user)", path);
}

/*
 * Start patternd serving @port of segment @cfg with @driver; @spin_us is its
 * poll time before sleeping (NULL: the default). Dies with the test.
 */
static inline pid_t tx_patternd(const struct xseg_config *cfg, uint32_t port, const char *driver,
				const char *spin_us)
{
	char bin[PATH_MAX], spec[512], ports[16];
	const char *argv[16];
	int n = 0;
	pid_t pid;

	tx_bin("patternd", bin, sizeof(bin));
	xseg_format_spec(cfg, spec, sizeof(spec));
	snprintf(ports, sizeof(ports), "%u", port);
	argv[n++] = "patternd";
	argv[n++] = "-q";
	argv[n++] = "-g";
	argv[n++] = spec;
	argv[n++] = "-p";
	argv[n++] = ports;
	argv[n++] = "-d";
	argv[n++] = driver;
	if (spin_us) {
		argv[n++] = "--spin-us";
		argv[n++] = spin_us;
	}
	argv[n] = NULL;
	pid = xt_fork();
	if (pid == 0) {
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* Wait until someone has bound @port (a peer that just started). */
static inline void tx_wait_bound(struct xseg *xs, uint32_t port)
{
	for (int i = 0; i < 5000; i++) {
		uint64_t w = __atomic_load_n(&xseg_port(xs, port)->owner, __ATOMIC_ACQUIRE);

		if (XSEG_OWNER_STATE(w) == XSEG_PORT_BOUND)
			return;
		usleep(1000);
	}
	CHECKF(0, "nobody bound port %u within 5 s", port);
}

/* Stop a child peer with SIGTERM and check that it exited cleanly. */
static inline void tx_stop(pid_t pid)
{
	int st;

	CHECK(kill(pid, SIGTERM) == 0);
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "peer %d ended with status %#x", (int)pid, st);
}

struct tx_load {
	uint32_t dst;		/* port to submit to */
	uint64_t count;		/* requests */
	uint32_t depth;		/* in flight */
	uint32_t size;		/* data bytes per request */
	const char *target;
	/* results */
	uint64_t done, failed, reset, bad;	/* reset: failed with ECONNRESET */
};

/*
 * A pipelined client on a dynamic port of @xs: READ and WRITE alternately at
 * increasing offsets, writes carrying the pattern (the server checks it),
 * reads checked against it. Fills the results; returns when all replies came.
 */
static inline void tx_client(struct xseg *xs, struct tx_load *ld)
{
	uint64_t sent = 0, inflight = 0, seed = pattern_seed(ld->target, (uint32_t)strlen(ld->target));
	uint64_t idle_since = 0;
	int port = xseg_bind_port(xs, XSEG_ANY_PORT, 0);

	CHECKF(port >= 0, "bind: %d", port);
	while (ld->done < ld->count) {
		struct xseg_request *req;
		uint64_t before = ld->done;

		while (sent < ld->count && inflight < ld->depth && (req = xseg_get_request(xs, (uint32_t)port))) {
			uint64_t off = (sent % 100000) * ld->size;

			CHECK(xseg_prep_request(xs, req, ld->target, (uint32_t)strlen(ld->target), ld->size) == 0);
			req->op = sent % 2 ? X_WRITE : X_READ;
			req->offset = off;
			req->size = ld->size;
			if (req->op == X_WRITE)
				pattern_fill(xseg_req_data(xs, req), ld->size, seed, off);
			else
				memset(xseg_req_data(xs, req), 0, ld->size);
			CHECKF(xseg_submit_signal(xs, req, ld->dst) >= 0, "submit to %u", ld->dst);
			sent++;
			inflight++;
		}
		while ((req = xseg_receive(xs, (uint32_t)port))) {
			inflight--;
			ld->done++;
			if (req->state & XS_FAILED) {
				ld->failed++;
				if (req->error == ECONNRESET)
					ld->reset++;
				else
					fprintf(stderr, "%s at %" PRIu64 " failed: %s\n", xseg_op_name(req->op),
						req->offset, strerror(req->error));
			} else if (!(req->state & XS_SERVED) || req->serviced != req->size ||
				   (req->op == X_READ &&
				    pattern_check(xseg_req_data(xs, req), req->size, seed, req->offset) != req->size)) {
				ld->bad++;
			}
			CHECK(xseg_put_request(xs, req) == 0);
		}
		if (ld->done == before) {
			/* No reply this round: sleep, but never forever. */
			if (!idle_since)
				idle_since = xt_now_ns();
			CHECKF(xt_now_ns() - idle_since < 20000000000ull,
			       "no reply for 20 s with %" PRIu64 " in flight (a lost wakeup or a lost request)",
			       inflight);
			{
				int w = xseg_wait(xs, (uint32_t)port, 100000);

				CHECKF(w >= 0, "xseg_wait on port %d: %s (owner word %#llx, our pid %d)", port,
				       strerror(-w), (unsigned long long)xseg_port(xs, (uint32_t)port)->owner,
				       (int)getpid());
			}
		} else {
			idle_since = 0;
		}
	}
	CHECK(xseg_leave_port(xs, (uint32_t)port) == 0);
}

#endif
