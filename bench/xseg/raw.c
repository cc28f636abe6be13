/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench/xseg/raw.c - the raw wake-up mechanisms, in the same two-process
 * ping-pong shape as the xseg round trip: the client sends a ping and waits
 * for the pong, the server waits for the ping and answers. Nothing else is
 * done per round trip, so these are the floors the xseg drivers are
 * compared with:
 *
 *   pipe     blocking read/write of 1 byte each way on two pipes (posixfd's
 *            FIFO is a pipe)
 *   pipe poll  the same pipes non-blocking: each side waits in ppoll() (with
 *            the xseg rows' timeout) and then reads what came, as posixfd's
 *            sleep and drain do and as an event loop does with a pipe
 *   eventfd  blocking read/write of two eventfds
 *   futex    two shared-memory words, FUTEX_WAIT / FUTEX_WAKE (the shared,
 *            not _PRIVATE, ops, as the futex driver uses)
 *   sigio    tgkill(SIGIO) to the other process, which waits in
 *            sigtimedwait() with SIGIO blocked for the whole run (the posix
 *            driver's mechanism without its bookkeeping)
 *   spin     two shared-memory words, both sides busy-polling
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include "xsb.h"

#define S XSB_SERVER
#define C XSB_CLIENT

static void wr(struct xsb_run *run, int role, int fd, const void *buf, size_t len)
{
	ssize_t n = write(fd, buf, len);

	if (n != (ssize_t)len)
		xsb_fail(run, role, "%s write: %s", run->mech->key, n < 0 ? strerror(errno) : "short");
}

static void rd(struct xsb_run *run, int role, int fd, void *buf, size_t len)
{
	ssize_t n = read(fd, buf, len);

	if (n != (ssize_t)len)
		xsb_fail(run, role, "%s read: %s", run->mech->key, n < 0 ? strerror(errno) : "short/EOF");
}

/* ------------------------------------------------------- pipe, pipe poll */
/*
 * fds: 0/1 ping read/write end, 2/3 pong read/write end. The pipe rows wait
 * in a blocking read of one byte; the pipe poll rows have the pair made
 * non-blocking (O_NONBLOCK) and wait in ppoll, then take what came with one
 * read of up to 256 bytes. One ping-pong for both, with its own way to wait.
 */
typedef char wait_byte_fn(struct xsb_run *run, int role, int fd);

static char blocking_rd(struct xsb_run *run, int role, int fd)
{
	char b;

	rd(run, role, fd, &b, 1);
	return b;
}

static char poll_rd(struct xsb_run *run, int role, int fd)
{
	struct timespec ts = { XSB_WAIT_US / 1000000u, (long)(XSB_WAIT_US % 1000000u) * 1000 };
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[256];
	ssize_t n;
	int r;

	do
		r = ppoll(&pfd, 1, &ts, NULL);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		xsb_fail(run, role, "pipe poll: ppoll: %s", r ? strerror(errno) : "timed out (a lost wake-up)");
	n = read(fd, buf, sizeof(buf));
	if (n != 1)
		xsb_fail(run, role, "pipe poll: read: %s", n < 0 ? strerror(errno) : "not 1 byte");
	return buf[0];
}

static void pipe_server(struct xsb_run *run, wait_byte_fn *get)
{
	char b;

	xsb_meet(run, S);
	for (;;) {
		b = get(run, S, run->fds[0]);
		if (b == 'q')
			return;
		wr(run, S, run->fds[3], &b, 1);
	}
}

static void pipe_client(struct xsb_run *run, wait_byte_fn *get)
{
	uint64_t start, t0;
	char b = 'p';

	xsb_meet(run, C);
	start = xsb_now_ns();
	for (uint32_t i = 0;; i++) {
		t0 = xsb_now_ns();
		wr(run, C, run->fds[1], &b, 1);
		b = get(run, C, run->fds[2]);
		if (!xsb_record(run, i, t0, xsb_now_ns(), start))
			break;
	}
	b = 'q';
	wr(run, C, run->fds[1], &b, 1);
}

void xsb_pipe_server(struct xsb_run *run) { pipe_server(run, blocking_rd); }
void xsb_pipe_client(struct xsb_run *run) { pipe_client(run, blocking_rd); }
void xsb_pipe_poll_server(struct xsb_run *run) { pipe_server(run, poll_rd); }
void xsb_pipe_poll_client(struct xsb_run *run) { pipe_client(run, poll_rd); }

/* --------------------------------------------------------------- eventfd */
/* fds: 0 ping, 1 pong. A ping adds 1; the client stops the server with STOP. */
#define EFD_STOP 1000000ull

void xsb_eventfd_server(struct xsb_run *run)
{
	uint64_t v;

	xsb_meet(run, S);
	for (;;) {
		rd(run, S, run->fds[0], &v, 8);
		if (v != 1)
			return;
		wr(run, S, run->fds[1], &v, 8);
	}
}

void xsb_eventfd_client(struct xsb_run *run)
{
	uint64_t start, t0, v = 1;

	xsb_meet(run, C);
	start = xsb_now_ns();
	for (uint32_t i = 0;; i++) {
		t0 = xsb_now_ns();
		v = 1;
		wr(run, C, run->fds[0], &v, 8);
		rd(run, C, run->fds[1], &v, 8);
		if (v != 1)
			xsb_fail(run, C, "eventfd: pong %llu, not 1", (unsigned long long)v);
		if (!xsb_record(run, i, t0, xsb_now_ns(), start))
			break;
	}
	v = EFD_STOP;
	wr(run, C, run->fds[0], &v, 8);
}

/* ----------------------------------------------------------------- futex */
/* Ping i stores i+1 into req_word, pong i stores i+1 into rep_word. */

static long futex(uint32_t *w, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, w, op, val, ts, NULL, 0);
}

static const struct timespec wait_ts = { XSB_WAIT_US / 1000000, (XSB_WAIT_US % 1000000) * 1000 };

/* Sleep until *@w == @want; 0, or 1 if the client stopped the run (server). */
static int futex_await(struct xsb_run *run, int role, uint32_t *w, uint32_t want)
{
	uint64_t since = 0;
	uint32_t v;

	while ((v = __atomic_load_n(w, __ATOMIC_ACQUIRE)) != want) {
		if (role == S && xsb_stopped(run))
			return 1;
		if (futex(w, FUTEX_WAIT, v, &wait_ts) < 0 && errno != EAGAIN && errno != EINTR) {
			if (errno != ETIMEDOUT)
				xsb_fail(run, role, "FUTEX_WAIT: %s", strerror(errno));
			if (role == C && (since += XSB_WAIT_US * 1000ull) >= XSB_NO_REPLY_NS)
				xsb_fail(run, role, "futex: no pong for 1 s");
		}
	}
	return 0;
}

static void futex_post(struct xsb_run *run, int role, uint32_t *w, uint32_t v)
{
	__atomic_store_n(w, v, __ATOMIC_RELEASE);
	if (futex(w, FUTEX_WAKE, 1, NULL) < 0)
		xsb_fail(run, role, "FUTEX_WAKE: %s", strerror(errno));
}

void xsb_futex_server(struct xsb_run *run)
{
	xsb_meet(run, S);
	for (uint32_t seq = 1;; seq++) {
		if (futex_await(run, S, &run->req_word, seq))
			return;
		futex_post(run, S, &run->rep_word, seq);
	}
}

void xsb_futex_client(struct xsb_run *run)
{
	uint64_t start, t0;

	xsb_meet(run, C);
	start = xsb_now_ns();
	for (uint32_t i = 0;; i++) {
		t0 = xsb_now_ns();
		futex_post(run, C, &run->req_word, i + 1);
		futex_await(run, C, &run->rep_word, i + 1);
		if (!xsb_record(run, i, t0, xsb_now_ns(), start))
			break;
	}
	__atomic_store_n(&run->stop, 1, __ATOMIC_RELEASE);
	futex_post(run, C, &run->req_word, UINT32_MAX);
}

/* ----------------------------------------------------------------- SIGIO */

static void sigio_block(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGIO);
	sigprocmask(SIG_BLOCK, set, NULL);
}

static void sigio_send(struct xsb_run *run, int role, pid_t to)
{
	if (syscall(SYS_tgkill, to, to, SIGIO) < 0)
		xsb_fail(run, role, "tgkill(%d, SIGIO): %s", (int)to, strerror(errno));
}

static void sigio_await(struct xsb_run *run, int role, const sigset_t *set)
{
	uint64_t since = 0;

	for (;;) {
		int s = sigtimedwait(set, NULL, &wait_ts);

		if (s == SIGIO)
			return;
		if (s < 0 && errno == EAGAIN) {
			if (role == S && xsb_stopped(run))
				return;
			if (role == C && (since += XSB_WAIT_US * 1000ull) >= XSB_NO_REPLY_NS)
				xsb_fail(run, role, "sigio: no pong for 1 s");
		} else if (s < 0 && errno != EINTR) {
			xsb_fail(run, role, "sigtimedwait: %s", strerror(errno));
		}
	}
}

void xsb_sigio_server(struct xsb_run *run)
{
	sigset_t set;

	sigio_block(&set);
	xsb_meet(run, S);
	for (;;) {
		sigio_await(run, S, &set);
		if (xsb_stopped(run))
			return;
		sigio_send(run, S, run->pid[C]);
	}
}

void xsb_sigio_client(struct xsb_run *run)
{
	uint64_t start, t0;
	sigset_t set;

	sigio_block(&set);
	xsb_meet(run, C);
	start = xsb_now_ns();
	for (uint32_t i = 0;; i++) {
		t0 = xsb_now_ns();
		sigio_send(run, C, run->pid[S]);
		sigio_await(run, C, &set);
		if (!xsb_record(run, i, t0, xsb_now_ns(), start))
			break;
	}
	__atomic_store_n(&run->stop, 1, __ATOMIC_RELEASE);
	sigio_send(run, C, run->pid[S]);
}

/* ------------------------------------------------------------------ spin */

void xsb_spin_server(struct xsb_run *run)
{
	xsb_meet(run, S);
	for (uint32_t seq = 1;; seq++) {
		while (__atomic_load_n(&run->req_word, __ATOMIC_ACQUIRE) != seq) {
			if (xsb_stopped(run))
				return;
			xsb_relax();
		}
		__atomic_store_n(&run->rep_word, seq, __ATOMIC_RELEASE);
	}
}

void xsb_spin_client(struct xsb_run *run)
{
	uint64_t start, t0;

	xsb_meet(run, C);
	start = xsb_now_ns();
	for (uint32_t i = 0;; i++) {
		uint32_t spins = 0;

		t0 = xsb_now_ns();
		__atomic_store_n(&run->req_word, i + 1, __ATOMIC_RELEASE);
		while (__atomic_load_n(&run->rep_word, __ATOMIC_ACQUIRE) != i + 1) {
			xsb_relax();
			if (++spins % 65536 == 0 && xsb_now_ns() - t0 > XSB_NO_REPLY_NS)
				xsb_fail(run, C, "spin: no pong for 1 s");
		}
		if (!xsb_record(run, i, t0, xsb_now_ns(), start))
			break;
	}
	__atomic_store_n(&run->stop, 1, __ATOMIC_RELEASE);
}
