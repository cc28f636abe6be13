/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * drivers/user/posix.c - the "posix" signaling driver: a thread-directed SIGIO.
 *
 * The waiting thread blocks SIGIO in its own signal mask at prepare_wait,
 * records pid|tid in the port's signal area (struct xseg_sig_posix) and
 * sleeps in sigtimedwait(). A signaler that finds a waiter recorded sets the
 * SIGNALED bit by CAS and, if it was the one to set it, sends SIGIO with
 * tgkill(pid, tid). A SIGIO sent between prepare_wait and wait_signal stays
 * pending (SIGIO is blocked), so sigtimedwait() returns at once: nothing is
 * lost. With nobody waiting a signal is a fence and a load: no syscall.
 *
 * Process-wide effects: join() makes sure a stray SIGIO can never kill the
 * process: if SIGIO's disposition is SIG_DFL (terminate) it installs a no-op
 * handler with SA_RESTART. It is left installed after leave(), because a
 * late SIGIO may still arrive. A handler or SIG_IGN the application set is
 * kept. Applications that use SIGIO themselves (O_ASYNC) should use another
 * driver: they would see our wake-ups.
 *
 * Whom we signal: the pid and tid come from shared memory, which any peer
 * can write, so before the first signal to a thread (and again every second)
 * the signaler reads /proc/<pid>/task/<tid>/status and requires that the
 * thread belongs to @pid, that SIGIO is caught or ignored in that process
 * (so it cannot be killed by it: every joined process qualifies) and that
 * its real or effective uid equals our real or effective uid. The kernel's
 * kill permission applies on top for unprivileged callers. Signals to our
 * own process skip the check (join made SIGIO harmless here).
 *
 * A thread waiting on several ports records itself in each; any of their
 * signals wakes its one sigtimedwait (SIGIOs coalesce: disarm takes a
 * pending one at most once per sleep).
 *
 * Limits: one waiting thread per port; peers of other uids cannot wake
 * each other (use futex).
 */
/*
 * GCC's ThreadSanitizer cannot model fences and refuses them (-Wtsan, an
 * error under -Werror). Our fences order atomics against atomics (the
 * waiter's announcement against the signaler's check), never plain data,
 * so TSan loses nothing it could check: silence the warning in TSan builds.
 */
#if defined(__SANITIZE_THREAD__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wtsan"
#endif
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "../../xseg/xseg.h"
#include "drivers.h"

#define VERIFY_SLOTS	16
#define VERIFY_TTL_NS	1000000000ull	/* re-read /proc for a target after this */
#define MAX_STRAY	64		/* stray SIGIOs tolerated within one wait */

struct posix_target {
	uint32_t pid, tid;
	uint64_t until;		/* monotonic ns; 0 = empty slot */
	int verdict;		/* 0 may be signaled, or a negative errno */
};

struct posix_priv {
	struct xseg_sig_stats st;	/* first member: see signal_area.h */
	uint32_t pid, ruid, euid;
	pthread_mutex_t lock;		/* protects the target cache */
	struct posix_target tgt[VERIFY_SLOTS];
	uint32_t next;
};

/*
 * This thread's SIGIO mask: blocked from its first arm to its last disarm.
 * The waits themselves are the core's (struct xseg_armed: @note is the
 * waiter word we stored).
 */
static _Thread_local int tl_armed;	/* waits armed by this thread */
static _Thread_local int tl_unblock;	/* SIGIO was unblocked before our first arm */
static _Thread_local uint32_t tl_tid, tl_tid_pid;

#define W_TAKEN	1u	/* struct xseg_armed.flags: sleep took the SIGIO sent for this wait */

static void sigio_set(sigset_t *s)
{
	sigemptyset(s);
	sigaddset(s, SIGIO);
}

static void sigio_noop(int sig)
{
	(void)sig;
}

static uint32_t my_tid(const struct posix_priv *pp)
{
	if (tl_tid_pid != pp->pid) {	/* first use in this thread, or a forked child */
		tl_tid = (uint32_t)syscall(SYS_gettid);
		tl_tid_pid = pp->pid;
	}
	return tl_tid;
}

/* Parse "Name:\t<number>..." at the start of @line; base 10 or 16. */
static int field(const char *line, const char *name, int base, uint64_t *v, const char **end)
{
	size_t n = strlen(name);
	char *e;

	if (strncmp(line, name, n) != 0)
		return 0;
	*v = strtoull(line + n, &e, base);
	if (e == line + n)
		return 0;
	if (end)
		*end = e;
	return 1;
}

/*
 * May SIGIO be sent to thread @tid of process @pid? Reads
 * /proc/<pid>/task/<tid>/status (see the top of the file for the rules).
 * Returns 0 or -ESRCH (no such thread) / -EPERM.
 */
static int check_status(const struct posix_priv *pp, uint32_t pid, uint32_t tid)
{
	char path[64], buf[4096], *line;
	uint64_t tgid = 0, ign = 0, cgt = 0, uid_r = UINT64_MAX, uid_e = UINT64_MAX, v;
	const char *e;
	size_t len = 0;
	ssize_t n;
	int fd, seen = 0;

	snprintf(path, sizeof(path), "/proc/%u/task/%u/status", pid, tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ESRCH;
	while (len < sizeof(buf) - 1) {
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = 0;
	for (line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		if (field(line, "Tgid:", 10, &tgid, NULL)) {
			seen |= 1;
		} else if (field(line, "Uid:", 10, &uid_r, &e)) {
			if (field(e, "", 10, &uid_e, NULL))	/* real, then effective */
				seen |= 2;
		} else if (field(line, "SigIgn:", 16, &ign, NULL)) {
			seen |= 4;
		} else if (field(line, "SigCgt:", 16, &cgt, NULL)) {
			seen |= 8;
		}
	}
	if (seen != 15 || tgid != pid)
		return -ESRCH;
	v = 1ull << (SIGIO - 1);
	if (!((ign | cgt) & v))
		return -EPERM;		/* SIGIO would kill it: not a joined process */
	if (uid_r != pp->ruid && uid_r != pp->euid && uid_e != pp->ruid && uid_e != pp->euid)
		return -EPERM;
	return 0;
}

/* check_status() with a small cache of verdicts, each trusted for VERIFY_TTL_NS. */
static int check_target(struct posix_priv *pp, uint32_t pid, uint32_t tid)
{
	uint64_t now;
	int r = 1, i;

	if (pid == pp->pid)
		return 0;	/* our own process: join() made SIGIO harmless */
	now = xseg_sys_now_ns();
	pthread_mutex_lock(&pp->lock);
	for (i = 0; i < VERIFY_SLOTS; i++) {
		struct posix_target *t = &pp->tgt[i];

		if (t->until > now && t->pid == pid && t->tid == tid) {
			r = t->verdict;
			break;
		}
	}
	pthread_mutex_unlock(&pp->lock);
	if (r <= 0)
		return r;
	stat_add(&pp->st.syscalls);
	r = check_status(pp, pid, tid);
	pthread_mutex_lock(&pp->lock);
	pp->tgt[pp->next] = (struct posix_target){ pid, tid, now + VERIFY_TTL_NS, r };
	pp->next = (pp->next + 1) % VERIFY_SLOTS;
	pthread_mutex_unlock(&pp->lock);
	return r;
}

static int posix_join(struct xseg *xs, void **priv)
{
	struct posix_priv *pp;
	struct sigaction old, sa;

	(void)xs;
	/* A stray SIGIO must never kill a joined process (see the top of the file). */
	if (sigaction(SIGIO, NULL, &old) < 0)
		return -errno;
	if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = sigio_noop;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = SA_RESTART;
		if (sigaction(SIGIO, &sa, NULL) < 0)
			return -errno;
	}
	pp = xseg_sys_alloc(sizeof(*pp));
	if (!pp)
		return -ENOMEM;
	pp->pid = (uint32_t)getpid();
	pp->ruid = (uint32_t)getuid();
	pp->euid = (uint32_t)geteuid();
	if (pthread_mutex_init(&pp->lock, NULL) != 0) {
		xseg_sys_free(pp);
		return -ENOMEM;
	}
	*priv = pp;
	return 0;
}

static void posix_leave(struct xseg *xs, void *priv)
{
	struct posix_priv *pp = priv;

	(void)xs;
	if (!pp)
		return;
	pthread_mutex_destroy(&pp->lock);
	xseg_sys_free(pp);
}

static int posix_bind(struct xseg *xs, void *priv, uint32_t portno)
{
	struct xseg_sig_posix *a = xseg_port_signal_area(xs, portno);

	(void)priv;
	if (!a)
		return -EINVAL;
	/* Release: a signaler that reads 0 sees no trace of the previous owner's waiter. */
	xq_store_release(&a->waiter, 0);
	return 0;
}

static void posix_unbind(struct xseg *xs, void *priv, uint32_t portno)
{
	struct xseg_sig_posix *a = xseg_port_signal_area(xs, portno);

	(void)priv;
	if (a)
		/* Release: signalers that read 0 stop sending SIGIO to this process. */
		xq_store_release(&a->waiter, 0);
}

static int posix_signal(struct xseg *xs, void *priv, uint32_t portno)
{
	struct posix_priv *pp = priv;
	struct xseg_sig_posix *a = xseg_port_signal_area(xs, portno);
	uint64_t w;
	uint32_t pid, tid;
	int r;

	if (!a)
		return -EINVAL;
	/*
	 * Full fence between the caller's enqueue and our load of the waiter:
	 * a waiter that stored itself after this fence (so we may read 0 and
	 * send nothing) must see the enqueue in its re-check.
	 */
	xq_fence_seq_cst();
	r = xseg_sigp_claim(a, &pid, &tid, &w);
	if (r <= 0)
		return r;	/* nobody to wake, or a hostile or garbage word */
	r = check_target(pp, pid, tid);
	if (r == 0) {
		stat_add(&pp->st.syscalls);
		if (syscall(SYS_tgkill, (pid_t)pid, (pid_t)tid, SIGIO) == 0) {
			stat_add(&pp->st.wakes);
			return 0;
		}
		r = -errno;
	}
	/* We could not send: hand the claim back so another signaler (with the permission we lack) may try. */
	xseg_sigp_unclaim(a, w);
	return r;
}

static int posix_arm(struct xseg *xs, void *priv, struct xseg_armed *w)
{
	struct posix_priv *pp = priv;
	struct xseg_sig_posix *a = xseg_port_signal_area(xs, w->portno);
	sigset_t set, old;

	if (!a)
		return -EINVAL;
	if (tl_armed == 0) {
		sigio_set(&set);
		if (pthread_sigmask(SIG_BLOCK, &set, &old) != 0)
			return -EINVAL;
		tl_unblock = !sigismember(&old, SIGIO);
	}
	tl_armed++;
	w->note = XSEG_SIGP_WAITER(pp->pid, my_tid(pp));
	/*
	 * Exchange then a full fence between storing ourselves and the
	 * caller's queue re-check: a signaler whose fence came later reads
	 * our pid|tid and sends SIGIO, which stays pending until we wait.
	 */
	__atomic_exchange_n(&a->waiter, w->note, __ATOMIC_SEQ_CST);
	xq_fence_seq_cst();
	return 0;
}

/* Did a signaler claim @w (SIGNALED set on our word)? Acquire: then see its enqueue. */
static int claimed(struct xseg *xs, const struct xseg_armed *w)
{
	struct xseg_sig_posix *a = xseg_port_signal_area(xs, w->portno);

	return a && xq_load_acquire(&a->waiter) == (w->note | XSEG_SIGP_SIGNALED);
}

/* The first of @w[0..n) a signaler claimed, or -1. */
static int first_claimed(struct xseg *xs, const struct xseg_armed *w, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (claimed(xs, &w[i]))
			return (int)i;
	return -1;
}

static int posix_sleep(struct xseg *xs, void *priv, struct xseg_armed *w, uint32_t n,
		       uint64_t timeout_us)
{
	struct posix_priv *pp = priv;
	uint64_t deadline = UINT64_MAX, now;
	sigset_t set;
	int r = -ETIMEDOUT;

	for (uint32_t i = 0; i < n; i++)
		if (!xseg_port_signal_area(xs, w[i].portno))
			return -EINVAL;
	/* SIGNALED already set means a signal landed after arm. */
	if (first_claimed(xs, w, n) >= 0)
		return 0;
	if (timeout_us == 0)
		return -ETIMEDOUT;
	if (timeout_us != UINT64_MAX) {
		now = xseg_sys_now_ns();
		deadline = timeout_us > (UINT64_MAX - 1 - now) / 1000u ? UINT64_MAX - 1
								       : now + timeout_us * 1000u;
	}
	sigio_set(&set);
	for (int stray = 0; stray < MAX_STRAY; stray++) {
		struct timespec ts, *tsp = NULL;
		int s, k;

		if (deadline != UINT64_MAX) {
			now = xseg_sys_now_ns();
			if (now >= deadline) {
				r = -ETIMEDOUT;
				break;
			}
			ts.tv_sec = (time_t)((deadline - now) / 1000000000u);
			ts.tv_nsec = (long)((deadline - now) % 1000000000u);
			tsp = &ts;
		}
		stat_add(&pp->st.syscalls);
		s = sigtimedwait(&set, NULL, tsp);
		if (s == SIGIO) {
			/* Ours if SIGNALED is set on one of our words. */
			k = first_claimed(xs, w, n);
			if (k >= 0) {
				w[k].flags |= W_TAKEN;	/* disarm need not take it */
				r = 0;
				break;
			}
			r = 0;	/* a stale or stray SIGIO: sleep on (0 if we give up) */
			continue;
		}
		r = (s < 0 && errno == EAGAIN) ? -ETIMEDOUT : s < 0 ? -errno : -EINTR;
		break;
	}
	return r;
}

/*
 * disarm: withdraw from the waiter word; if a signaler claimed it, take
 * the SIGIO it sent (unless sleep took it: W_TAKEN). The last disarm of
 * the thread restores its signal mask.
 */
static int posix_disarm(struct xseg *xs, void *priv, struct xseg_armed *w)
{
	struct posix_priv *pp = priv;
	struct xseg_sig_posix *a = xseg_port_signal_area(xs, w->portno);
	uint64_t v = w->note;
	int signaled = 0;
	sigset_t set;

	sigio_set(&set);
	/* acq_rel CAS: if SIGNALED is set, see what the signaler enqueued before setting it. */
	if (a && !xq_cas(&a->waiter, &v, 0) && v == (w->note | XSEG_SIGP_SIGNALED)) {
		signaled = 1;
		/* acq_rel CAS: fails harmlessly if the word has moved on again. */
		xq_cas(&a->waiter, &v, 0);
	}
	if (signaled && !(w->flags & W_TAKEN)) {
		/* Take the SIGIO now if it has arrived; a later one is a spurious wake. */
		struct timespec zero = { 0, 0 };

		stat_add(&pp->st.syscalls);
		sigtimedwait(&set, NULL, &zero);
	}
	if (tl_armed > 0 && --tl_armed == 0 && tl_unblock) {
		tl_unblock = 0;
		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	}
	return signaled;
}

/*
 * xseg_driver_posix - the "posix" peer type. Called only by the core
 * (xseg/), through the callbacks above: join before anything else, bind
 * before arm on a port, and every arm ended by exactly one disarm of the
 * same thread (the SIGIO mask is per thread). signal() may be called by any process for a port any process
 * bound; join() may change SIGIO's disposition (see the top of the file).
 */
XSEG_DRIVER(posix) = {
	.abi_size = sizeof(struct xseg_driver_ops),
	.version = 1,
	.name = "posix",
	.join = posix_join,
	.leave = posix_leave,
	.bind = posix_bind,
	.unbind = posix_unbind,
	.signal = posix_signal,
	.poll_fd = NULL,
	.arm = posix_arm,
	.sleep = posix_sleep,
	.disarm = posix_disarm,
};
