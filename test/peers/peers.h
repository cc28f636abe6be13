/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test/peers/peers.h - helpers of the storage peer tests: start a C peer
 * (lib/user[-san]/bin/<name>) as a child that dies with the test, a temporary
 * directory, and a synchronous request call; the children are killed (by
 * pid) and the directory removed at exit, whichever way the test ends.
 */
#ifndef TEST_PEERS_H
#define TEST_PEERS_H

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>
#include "../xseg/procs.h"

#define TP_MAX_CHILDREN 16

static pid_t tp_children[TP_MAX_CHILDREN];
static char tp_tmp[256];
static pid_t tp_owner;

static void tp_cleanup(void)
{
	char cmd[300];

	if (getpid() != tp_owner)
		return;
	for (int i = 0; i < TP_MAX_CHILDREN; i++) {
		if (tp_children[i] > 0) {
			kill(tp_children[i], SIGKILL);
			waitpid(tp_children[i], NULL, 0);
			tp_children[i] = 0;
		}
	}
	if (tp_tmp[0] && !strncmp(tp_tmp, "/tmp/xseg-peers-", 16)) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tp_tmp);
		if (system(cmd)) { /* nothing more to do */ }
	}
}

static void tp_init(void)
{
	if (tp_owner)
		return;
	tp_owner = getpid();
	atexit(tp_cleanup);
	snprintf(tp_tmp, sizeof(tp_tmp), "/tmp/xseg-peers-XXXXXX");
	CHECK(mkdtemp(tp_tmp));
}

/* A path in the test's temporary directory. */
static inline const char *tp_path(const char *name)
{
	static char bufs[8][PATH_MAX];
	static int n;
	char *b = bufs[n++ % 8];

	tp_init();
	snprintf(b, PATH_MAX, "%s/%s", tp_tmp, name);
	return b;
}

/* Start lib/user/bin/@name with @args (NULL-terminated, after argv[0]). */
static inline pid_t tp_start(const char *name, const char *const *args)
{
	char bin[PATH_MAX];
	const char *argv[64];
	int n = 0, slot = -1;
	pid_t pid;

	tp_init();
	tx_bin(name, bin, sizeof(bin));
	argv[n++] = name;
	while (args && *args && n < 63)
		argv[n++] = *args++;
	argv[n] = NULL;
	for (int i = 0; i < TP_MAX_CHILDREN; i++)
		if (tp_children[i] <= 0) {
			slot = i;
			break;
		}
	CHECK(slot >= 0);
	pid = xt_fork();
	if (pid == 0) {
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	tp_children[slot] = pid;
	return pid;
}

static inline void tp_forget(pid_t pid)
{
	for (int i = 0; i < TP_MAX_CHILDREN; i++)
		if (tp_children[i] == pid)
			tp_children[i] = 0;
}

/* Wait for @pid to end by itself; returns its exit status (or 128+signal). */
static inline int tp_wait(pid_t pid)
{
	int st;

	CHECK(waitpid(pid, &st, 0) == pid);
	tp_forget(pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* SIGTERM @pid and return its exit status. */
static inline int tp_stop(pid_t pid)
{
	CHECK(kill(pid, SIGTERM) == 0);
	return tp_wait(pid);
}

/* Wait until @port is bound, or @pid has died (then fail with its status). */
static inline void tp_wait_bound(struct xseg *xs, uint32_t port, pid_t pid)
{
	for (int i = 0; i < 10000; i++) {
		uint64_t w = __atomic_load_n(&xseg_port(xs, port)->owner, __ATOMIC_ACQUIRE);
		int st;

		if (XSEG_OWNER_STATE(w) == XSEG_PORT_BOUND && XSEG_OWNER_PID(w) == (uint32_t)pid)
			return;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			tp_forget(pid);
			CHECKF(0, "peer %d ended before binding port %u (status %#x)", (int)pid, port, st);
		}
		usleep(1000);
	}
	CHECKF(0, "nobody bound port %u within 10 s", port);
}

/* One request and its reply. */
struct tp_req {
	uint32_t op, flags;
	const char *target;		/* NUL-terminated, or with target_len */
	uint32_t target_len;		/* 0: strlen(target) */
	uint32_t force_tlen;		/* set target_len to this after prep (hostile lengths) */
	int force;
	uint64_t offset, size;
	const void *in;			/* copied into the data buffer */
	uint64_t in_len;
	uint64_t buf_len;		/* data buffer bytes (at least in_len) */
	void *out;			/* reply data copied here (out_len bytes at most) */
	uint64_t out_len;
	/* results */
	uint64_t serviced;
	int error;			/* 0 served, else the reply's errno */
};

/*
 * tp_do - submit @r from client port @me to @dst and wait for the reply
 * (at most 20 s). Returns r->error.
 */
static inline int tp_do(struct xseg *xs, uint32_t me, uint32_t dst, struct tp_req *r)
{
	struct xseg_request *req = xseg_get_request(xs, me), *got;
	uint32_t tl = r->target ? (r->target_len ? r->target_len : (uint32_t)strlen(r->target)) : 0;
	uint64_t buf = r->buf_len > r->in_len ? r->buf_len : r->in_len;
	uint64_t t0 = xt_now_ns();
	int e;

	CHECK(req);
	e = xseg_prep_request(xs, req, r->target, tl, buf);
	CHECKF(e == 0, "prep: %d", e);
	if (r->force)
		req->target_len = r->force_tlen;
	req->op = r->op;
	req->flags = r->flags;
	req->offset = r->offset;
	req->size = r->size;
	if (buf)
		memset(xseg_req_data(xs, req), 0, buf);
	if (r->in_len)
		memcpy(xseg_req_data(xs, req), r->in, r->in_len);
	e = xseg_submit_signal(xs, req, dst);
	CHECKF(e >= 0, "submit to %u: %d", dst, e);
	while (!(got = xseg_receive(xs, me))) {
		CHECKF(xt_now_ns() - t0 < 20000000000ull, "no reply to %s within 20 s", xseg_op_name(r->op));
		xseg_wait(xs, me, 100000);
	}
	CHECK(got == req);
	r->serviced = req->serviced;
	r->error = req->state & XS_FAILED ? req->error : 0;
	if (!r->error)
		CHECK(req->state & XS_SERVED);
	if (r->out && r->out_len && buf)
		memcpy(r->out, xseg_req_data(xs, req), r->out_len < buf ? r->out_len : buf);
	CHECK(xseg_put_request(xs, req) == 0);
	return r->error;
}

/* The whole content of a file (malloc'd; *len its size). */
static inline uint8_t *tp_slurp(const char *path, uint64_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	uint8_t *b;

	CHECKF(fd >= 0, "open %s: %s", path, strerror(errno));
	CHECK(fstat(fd, &st) == 0);
	b = malloc((size_t)st.st_size + 1);
	CHECK(b);
	CHECK(pread(fd, b, (size_t)st.st_size, 0) == st.st_size);
	close(fd);
	*len = (uint64_t)st.st_size;
	return b;
}

static inline int tp_all_zero(const uint8_t *b, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

#endif
