/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: the user signaling drivers (posix, posixfd, futex) between
 * real processes over a fake segment in shared memory (stub.h): a 10000
 * round-trip ping-pong with the race-free sleep (no lost wake-up: a
 * watchdog catches a hang), signals landing before prepare, between prepare
 * and wait and during the wait, concurrent signaling threads, timeouts, no
 * syscall for a signal nobody waits for, posix: a stray or forged SIGIO
 * kills nobody, posixfd: directory and FIFO permissions, refusal of foreign
 * or open directories, event-loop mode; and garbage in the signal area
 * neither crashes nor hangs any call.
 *   XSEG_PINGPONG   round trips per driver (default 10000)
 *   XSEG_DRIVERS    comma-separated subset of drivers to test
 */
#include "xtest.h"
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include "stub.h"
#include "drivers/user/drivers.h"
#include "drivers/user/posixfd.h"

#define NPORTS		8
#define FOREVER		UINT64_MAX
#define NTHREADS	4

struct shared {
	struct xseg_port ports[NPORTS];
	uint64_t ball;		/* ping-pong: odd = the child's turn, even = the parent's */
	uint64_t step;		/* handshake between parent and child */
	uint64_t flag;
	uint64_t tokens;	/* concurrent signalers' count */
	uint64_t done;
};

static struct shared *S;
static struct xseg H;			/* this process's handle */
static const struct xseg_driver_ops *D;	/* the driver under test */
static char test_name[128];

static uint64_t ld(uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void st(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* Spin (politely) until *@p == @v; fail after 20 s. */
static void await(uint64_t *p, uint64_t v)
{
	uint64_t t0 = xt_now_ns();

	while (ld(p) != v) {
		CHECKF(xt_now_ns() - t0 < 20000000000ull, "await %" PRIu64 " (at %" PRIu64 ")", v, ld(p));
		usleep(100);
	}
}

static void reap(pid_t pid)
{
	int status;

	CHECK(waitpid(pid, &status, 0) == pid);
	CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d status 0x%x", (int)pid, status);
}

static void *join(void)
{
	void *priv = NULL;
	int r = D->join(&H, &priv);

	CHECKF(r == 0 && priv, "%s join: %d", D->name, r);
	return priv;
}

static void do_bind(void *priv, uint32_t port)
{
	int r = D->bind(&H, priv, port);

	CHECKF(r == 0, "%s bind %u: %d", D->name, port, r);
}

static uint64_t nsyscalls(void *priv)
{
	return __atomic_load_n(&((struct xseg_sig_stats *)priv)->syscalls, __ATOMIC_RELAXED);
}

/*
 * The core's part of the race-free sleep, for one port at a time: the test
 * has no core (stub.h), so it keeps each thread's armed waits here, as
 * xseg/signal.c does, and calls the driver's arm, sleep and disarm.
 */
static _Thread_local struct {
	int on;
	struct xseg_armed a;
} tl_wait[NPORTS];

static int prepare_wait(void *priv, uint32_t port)
{
	int r;

	if (tl_wait[port].on)
		D->disarm(&H, priv, &tl_wait[port].a);
	tl_wait[port].a = (struct xseg_armed){ .portno = port };
	r = D->arm(&H, priv, &tl_wait[port].a);
	tl_wait[port].on = r == 0;
	return r;
}

static int cancel_wait(void *priv, uint32_t port)
{
	if (tl_wait[port].on)
		D->disarm(&H, priv, &tl_wait[port].a);
	tl_wait[port].on = 0;
	return 0;
}

static int wait_signal(void *priv, uint32_t port, uint64_t timeout_us)
{
	int r;

	if (!tl_wait[port].on)
		return -EINVAL;
	r = D->sleep(&H, priv, &tl_wait[port].a, 1, timeout_us);
	tl_wait[port].on = 0;
	return D->disarm(&H, priv, &tl_wait[port].a) > 0 ? 0 : r;
}

/*
 * The race-free sleep until *@word == @v. Counts spurious wake-ups. With
 * @peer != 0 it sleeps 1 s at a time: a timeout after which the word
 * already holds @v is a lost wake-up (also when the driver reports the
 * signal only at the timeout), and with @peer > 0 (the parent's
 * side: the child's pid) a dead child fails the test at once. With @peer
 * == 0 it sleeps forever (a lost wake-up is a hang the alarm catches).
 */
static void wait_for(void *priv, uint32_t port, uint64_t *word, uint64_t v, uint64_t *spurious,
		     pid_t peer)
{
	while (ld(word) != v) {
		uint64_t t0;
		int r, status;

		CHECK(prepare_wait(priv, port) == 0);
		if (ld(word) == v) {
			CHECK(cancel_wait(priv, port) == 0);
			return;
		}
		t0 = xt_now_ns();
		r = wait_signal(priv, port, peer ? 1000000 : FOREVER);
		if (peer && xt_now_ns() - t0 >= 1000000000ull)
			CHECKF(ld(word) != v, "lost wake-up: the word was set but we slept 1 s (%d)", r);
		if (r == -ETIMEDOUT && peer) {
			CHECKF(peer < 0 || waitpid(peer, &status, WNOHANG) == 0,
			       "the child died: status 0x%x", status);
			continue;
		}
		CHECKF(r == 0 || r == -EINTR, "%s wait_signal: %d", D->name, r);
		if (ld(word) != v && spurious)
			(*spurious)++;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* (1) ping-pong: every round trip is two sleeps and two wake-ups. */
static void test_pingpong(void)
{
	long n = xt_env_long("XSEG_PINGPONG", 10000);
	uint64_t spurious = 0, *rt;
	void *priv;
	pid_t pid;

	st(&S->ball, 0);
	st(&S->step, 0);
	pid = xt_fork();
	if (pid == 0) {
		alarm(60);
		priv = join();
		do_bind(priv, 1);
		st(&S->step, 1);
		for (long i = 1; i <= n; i++) {
			wait_for(priv, 1, &S->ball, (uint64_t)(2 * i - 1), &spurious, -1);
			st(&S->ball, (uint64_t)(2 * i));
			CHECK(D->signal(&H, priv, 0) == 0);
		}
		D->unbind(&H, priv, 1);
		D->leave(&H, priv);
		_exit(0);
	}
	priv = join();
	do_bind(priv, 0);
	await(&S->step, 1);
	rt = calloc((size_t)n, sizeof(*rt));
	CHECK(rt);
	for (long i = 1; i <= n; i++) {
		uint64_t t0 = xt_now_ns();
		int r;

		st(&S->ball, (uint64_t)(2 * i - 1));
		r = D->signal(&H, priv, 1);
		CHECKF(r == 0, "signal: %d", r);
		wait_for(priv, 0, &S->ball, (uint64_t)(2 * i), &spurious, pid);
		rt[i - 1] = xt_now_ns() - t0;
	}
	reap(pid);
	qsort(rt, (size_t)n, sizeof(*rt), cmp_u64);
	printf("%s: %ld round trips, median %.1f us, p90 %.1f us, p99 %.1f us, parent spurious wakes %" PRIu64 "\n",
	       D->name, n, rt[n / 2] / 1e3, rt[n * 9 / 10] / 1e3, rt[n * 99 / 100] / 1e3, spurious);
	free(rt);
	D->unbind(&H, priv, 0);
	D->leave(&H, priv);
}

/* (2) a signal before prepare is seen by the re-check; between prepare and wait and during the wait it wakes. */
static void test_wake_points(void)
{
	void *priv;
	pid_t pid;
	int r;

	st(&S->step, 0);
	st(&S->flag, 0);
	pid = xt_fork();
	if (pid == 0) {
		uint64_t t0;

		alarm(60);
		priv = join();
		do_bind(priv, 2);
		st(&S->step, 1);
		/* Before prepare: the signal found nobody, the flag tells. */
		await(&S->step, 2);
		CHECK(prepare_wait(priv, 2) == 0);
		CHECK(ld(&S->flag) == 1);
		CHECK(cancel_wait(priv, 2) == 0);
		/* Between prepare and wait. */
		CHECK(prepare_wait(priv, 2) == 0);
		st(&S->step, 3);
		await(&S->step, 4);
		t0 = xt_now_ns();
		r = wait_signal(priv, 2, 10000000);
		CHECKF(r == 0, "between prepare and wait: %d after %.1f ms", r, (xt_now_ns() - t0) / 1e6);
		/* Again, polled with timeout 0. */
		CHECK(prepare_wait(priv, 2) == 0);
		st(&S->step, 5);
		await(&S->step, 6);
		r = wait_signal(priv, 2, 0);
		CHECKF(r == 0, "between prepare and wait(0): %d", r);
		/* During the wait (a spurious wake-up before it: sleep again). */
		CHECK(prepare_wait(priv, 2) == 0);
		st(&S->step, 7);
		t0 = xt_now_ns();
		for (;;) {
			r = wait_signal(priv, 2, 10000000);
			if (r != 0 || ld(&S->step) == 8)
				break;
			CHECK(prepare_wait(priv, 2) == 0);
		}
		CHECKF(r == 0, "during the wait: %d after %.1f ms", r, (xt_now_ns() - t0) / 1e6);
		/* Own process, same thread, between prepare and wait. */
		CHECK(prepare_wait(priv, 2) == 0);
		CHECK(D->signal(&H, priv, 2) == 0);
		CHECK(wait_signal(priv, 2, 0) == 0);
		D->unbind(&H, priv, 2);
		D->leave(&H, priv);
		_exit(0);
	}
	priv = join();
	await(&S->step, 1);
	st(&S->flag, 1);
	CHECK(D->signal(&H, priv, 2) == 0);
	st(&S->step, 2);
	await(&S->step, 3);
	CHECK(D->signal(&H, priv, 2) == 0);
	st(&S->step, 4);
	await(&S->step, 5);
	CHECK(D->signal(&H, priv, 2) == 0);
	CHECK(D->signal(&H, priv, 2) == 0);	/* coalesced or not, harmless */
	st(&S->step, 6);
	await(&S->step, 7);
	usleep(50000);				/* let the child fall asleep */
	st(&S->step, 8);
	CHECK(D->signal(&H, priv, 2) == 0);
	reap(pid);
	D->leave(&H, priv);
}

struct signaler_arg {
	void *priv;
	long n;
};

static void *signaler(void *p)
{
	struct signaler_arg *a = p;

	for (long i = 0; i < a->n; i++) {
		__atomic_fetch_add(&S->tokens, 1, __ATOMIC_RELEASE);
		CHECK(D->signal(&H, a->priv, 3) == 0);
		if (i % 64 == 0)
			usleep(50);
	}
	return NULL;
}

/* Several threads of one process signal one sleeper concurrently: it sees every token. */
static void test_threads(void)
{
	const long per = 2000;
	struct signaler_arg arg;
	pthread_t th[NTHREADS];
	void *priv;
	pid_t pid;

	st(&S->tokens, 0);
	st(&S->step, 0);
	pid = xt_fork();
	if (pid == 0) {
		alarm(60);
		priv = join();
		do_bind(priv, 3);
		st(&S->step, 1);
		wait_for(priv, 3, &S->tokens, (uint64_t)(per * NTHREADS), NULL, 0);
		D->unbind(&H, priv, 3);
		D->leave(&H, priv);
		_exit(0);
	}
	priv = join();
	await(&S->step, 1);
	arg.priv = priv;
	arg.n = per;
	for (int i = 0; i < NTHREADS; i++)
		CHECK(pthread_create(&th[i], NULL, signaler, &arg) == 0);
	for (int i = 0; i < NTHREADS; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	reap(pid);
	D->leave(&H, priv);
}

/* (3) timeouts: -ETIMEDOUT, also for timeout 0. */
static void test_timeouts(void)
{
	void *priv = join();
	uint64_t t0, el;
	int r;

	do_bind(priv, 4);
	CHECK(prepare_wait(priv, 4) == 0);
	t0 = xt_now_ns();
	r = wait_signal(priv, 4, 20000);
	el = xt_now_ns() - t0;
	CHECKF(r == -ETIMEDOUT, "wait 20 ms: %d", r);
	printf("%s: a 20 ms timeout took %.2f ms\n", D->name, el / 1e6);
	CHECK(prepare_wait(priv, 4) == 0);
	CHECK(wait_signal(priv, 4, 0) == -ETIMEDOUT);
	CHECK(prepare_wait(priv, 4) == 0);
	CHECK(cancel_wait(priv, 4) == 0);
	CHECK(cancel_wait(priv, 4) == 0);		/* nothing prepared: harmless */
	CHECK(wait_signal(priv, 4, 1000) == -EINVAL);	/* not prepared */
	D->unbind(&H, priv, 4);
	D->leave(&H, priv);
}

/* (4) a signal nobody waits for makes no syscall; one somebody waits for does. */
static void test_no_syscall(void)
{
	void *owner = join(), *sig = join();
	uint64_t before;

	do_bind(owner, 5);
	before = nsyscalls(sig);
	for (int i = 0; i < 1000; i++)
		CHECK(D->signal(&H, sig, 5) == 0);
	CHECKF(nsyscalls(sig) == before, "%" PRIu64 " syscalls for 1000 signals nobody waited for",
	       nsyscalls(sig) - before);
	/* Prepared and cancelled: still nobody waits. */
	CHECK(prepare_wait(owner, 5) == 0);
	CHECK(cancel_wait(owner, 5) == 0);
	CHECK(D->signal(&H, sig, 5) == 0);
	CHECK(nsyscalls(sig) == before);
	/* A waiter: the first signal makes syscalls, the following ones are coalesced. */
	CHECK(prepare_wait(owner, 5) == 0);
	CHECK(D->signal(&H, sig, 5) == 0);
	CHECK(nsyscalls(sig) > before);
	before = nsyscalls(sig);
	for (int i = 0; i < 100; i++)
		CHECK(D->signal(&H, sig, 5) == 0);
	if (strcmp(D->name, "futex") != 0)	/* futex wakes every time a waiter is counted */
		CHECKF(nsyscalls(sig) == before, "%" PRIu64 " syscalls for 100 coalesced signals",
		       nsyscalls(sig) - before);
	CHECK(wait_signal(owner, 5, 1000000) == 0);
	D->unbind(&H, owner, 5);
	D->leave(&H, sig);
	D->leave(&H, owner);
}

/* (5) posix: a stray SIGIO does not kill a joined process; a forged waiter is not signaled. */
static void test_posix_stray(void)
{
	struct xseg_sig_posix *a = (struct xseg_sig_posix *)S->ports[6].signal;
	void *priv;
	pid_t pid;
	int status;

	/*
	 * Control: SIGIO kills a process that has not joined. The child says
	 * when it has reset SIGIO (until then it has our inherited handler).
	 */
	st(&S->step, 0);
	pid = xt_fork();
	if (pid == 0) {
		signal(SIGIO, SIG_DFL);
		st(&S->step, 1);
		for (;;)
			pause();
	}
	await(&S->step, 1);
	CHECK(kill(pid, SIGIO) == 0);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECKF(WIFSIGNALED(status) && WTERMSIG(status) == SIGIO, "control status 0x%x", status);

	/* A joined process, idle, and then between prepare and cancel. */
	st(&S->step, 0);
	pid = xt_fork();
	if (pid == 0) {
		alarm(30);
		signal(SIGIO, SIG_DFL);		/* as if it had never seen our handler */
		priv = join();
		do_bind(priv, 6);
		st(&S->step, 1);
		await(&S->step, 2);
		CHECK(prepare_wait(priv, 6) == 0);
		st(&S->step, 3);
		await(&S->step, 4);
		cancel_wait(priv, 6);
		usleep(10000);			/* a stale SIGIO would land here */
		D->unbind(&H, priv, 6);
		D->leave(&H, priv);
		_exit(0);
	}
	await(&S->step, 1);
	for (int i = 0; i < 5; i++) {
		CHECK(kill(pid, SIGIO) == 0);
		usleep(1000);
	}
	st(&S->step, 2);
	await(&S->step, 3);
	CHECK(kill(pid, SIGIO) == 0);
	CHECK(syscall(SYS_tgkill, pid, pid, SIGIO) == 0);
	st(&S->step, 4);
	reap(pid);

	/* A forged waiter word naming a process that would die of SIGIO. */
	st(&S->step, 0);
	pid = xt_fork();
	if (pid == 0) {
		signal(SIGIO, SIG_DFL);
		st(&S->step, 1);
		for (;;)
			pause();
	}
	await(&S->step, 1);
	priv = join();
	__atomic_store_n(&a->waiter, XSEG_SIGP_WAITER(pid, pid), __ATOMIC_RELEASE);
	CHECKF(D->signal(&H, priv, 6) == -EPERM, "forged waiter signaled");
	usleep(20000);
	CHECK(waitpid(pid, &status, WNOHANG) == 0);	/* still alive */
	CHECK(kill(pid, SIGKILL) == 0);
	CHECK(waitpid(pid, &status, 0) == pid);
	__atomic_store_n(&a->waiter, 0, __ATOMIC_RELEASE);
	D->leave(&H, priv);
}

static mode_t mode_of(const char *path)
{
	struct stat sb;

	CHECKF(lstat(path, &sb) == 0, "%s: %s", path, strerror(errno));
	return sb.st_mode;
}

static int join_err(void)
{
	void *priv = NULL;
	int r = D->join(&H, &priv);

	if (r == 0)
		D->leave(&H, priv);
	return r;
}

/* The posixfd driver's cleanup of the stub segment H. */
static int cleanup_H(void)
{
	struct xseg_seg_ident id;

	xseg_seg_ident(&H, &id);
	return xseg_posixfd_cleanup(&id);
}

/* (6) posixfd: 0700 directories, a 0600 FIFO, foreign or open directories refused, event-loop mode. */
static void test_posixfd_files(void)
{
	char base[64], path[512], cmd[600];
	void *priv, *sig;
	int fd, r;
	struct pollfd pfd;

	snprintf(base, sizeof(base), "/tmp/xseg-drvtest-XXXXXX");
	CHECK(mkdtemp(base));

	/* Fresh: created 0700, the FIFO 0600, gone after unbind. */
	snprintf(path, sizeof(path), "%s/fifo", base);
	setenv("XSEG_FIFO_DIR", path, 1);
	priv = join();
	CHECK((mode_of(path) & 07777) == 0700 && S_ISDIR(mode_of(path)));
	snprintf(path, sizeof(path), "%s/fifo/%s", base, stub_segdir(&H));
	CHECK((mode_of(path) & 07777) == 0700 && S_ISDIR(mode_of(path)));
	/* A stale file at the FIFO's name is replaced. */
	snprintf(path, sizeof(path), "%s/fifo/%s/3", base, stub_segdir(&H));
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	CHECK(fd >= 0);
	close(fd);
	do_bind(priv, 3);
	CHECK(S_ISFIFO(mode_of(path)) && (mode_of(path) & 07777) == 0600);

	/* Event-loop mode: every signal writes, no prepare needed. */
	sig = join();
	fd = D->poll_fd(&H, priv, 3);
	CHECK(fd >= 0);
	CHECK(D->poll_fd(&H, priv, 2) == -ENOENT);	/* not bound here */
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	CHECK(poll(&pfd, 1, 0) == 0);
	CHECK(D->signal(&H, sig, 3) == 0);
	CHECK(D->signal(&H, sig, 3) == 0);
	CHECK(poll(&pfd, 1, 1000) == 1);
	CHECK(xseg_posixfd_drain(fd) == 2);
	CHECK(poll(&pfd, 1, 0) == 0);
	CHECK(xseg_posixfd_drain(fd) == 0);
	CHECK(xseg_posixfd_set_always(&H, 3, 0) == 0);
	CHECK(D->signal(&H, sig, 3) == 0);
	CHECK(poll(&pfd, 1, 0) == 0);			/* nobody waits: nothing written */
	D->leave(&H, sig);

	D->unbind(&H, priv, 3);
	CHECK(access(path, F_OK) < 0 && errno == ENOENT);
	D->leave(&H, priv);
	CHECK(cleanup_H() == 0);
	snprintf(path, sizeof(path), "%s/fifo/%s", base, stub_segdir(&H));
	CHECK(access(path, F_OK) < 0 && errno == ENOENT);

	/* A name with slashes, dots and more than a directory name can hold. */
	{
		struct xseg h2 = H;
		char saved[XSEG_NAME_LEN];

		memcpy(saved, H.name, sizeof(saved));
		memset(h2.name, 0, sizeof(h2.name));
		snprintf(h2.name, sizeof(h2.name), "../a/b.%.40s/", saved);
		memset(h2.name + strlen(h2.name), 'x', sizeof(h2.name) - 1 - strlen(h2.name));
		H = h2;
		priv = join();
		do_bind(priv, 1);
		D->unbind(&H, priv, 1);
		D->leave(&H, priv);
		CHECK(cleanup_H() == 0);
		memcpy(H.name, saved, sizeof(saved));
	}

	/* The default base: /tmp/xseg-<euid>, 0700. */
	unsetenv("XSEG_FIFO_DIR");
	priv = join();
	snprintf(path, sizeof(path), "/tmp/xseg-%u", (unsigned)geteuid());
	CHECK((mode_of(path) & 07777) == 0700);
	D->leave(&H, priv);

	/* An open (0777) base, an open (0755) segment directory, a symlink: refused. */
	snprintf(path, sizeof(path), "%s/open", base);
	CHECK(mkdir(path, 0700) == 0 && chmod(path, 0777) == 0);
	setenv("XSEG_FIFO_DIR", path, 1);
	r = join_err();
	CHECKF(r == -EPERM, "0777 base: %d", r);
	snprintf(path, sizeof(path), "%s/ok", base);
	CHECK(mkdir(path, 0700) == 0);
	setenv("XSEG_FIFO_DIR", path, 1);
	snprintf(path, sizeof(path), "%s/ok/%s", base, stub_segdir(&H));
	CHECK(mkdir(path, 0700) == 0 && chmod(path, 0755) == 0);
	r = join_err();
	CHECKF(r == -EPERM, "0755 segment directory: %d", r);
	CHECK(chmod(path, 0700) == 0);
	CHECK(join_err() == 0);
	snprintf(path, sizeof(path), "%s/link", base);
	snprintf(cmd, sizeof(cmd), "%s/ok", base);
	CHECK(symlink(cmd, path) == 0);
	setenv("XSEG_FIFO_DIR", path, 1);
	r = join_err();
	CHECKF(r == -EPERM, "symlinked base: %d", r);

	/* Owned by someone else (needs root to make). */
	if (geteuid() == 0) {
		snprintf(path, sizeof(path), "%s/other", base);
		CHECK(mkdir(path, 0700) == 0 && chown(path, 65534, 65534) == 0);
		setenv("XSEG_FIFO_DIR", path, 1);
		r = join_err();
		CHECKF(r == -EPERM, "foreign base: %d", r);
		snprintf(path, sizeof(path), "%s/ok", base);
		setenv("XSEG_FIFO_DIR", path, 1);
		snprintf(path, sizeof(path), "%s/ok/%s", base, stub_segdir(&H));
		CHECK(chown(path, 65534, 65534) == 0);
		r = join_err();
		CHECKF(r == -EPERM, "foreign segment directory: %d", r);
	} else {
		printf("posixfd: not root, foreign-owner checks skipped\n");
	}
	unsetenv("XSEG_FIFO_DIR");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	CHECK(system(cmd) == 0);
}

static void fill(void *area, uint64_t *seed, int pattern)
{
	uint8_t *b = area;

	for (unsigned i = 0; i < XSEG_SIGNAL_AREA; i++)
		b[i] = pattern == 0 ? 0xFF : pattern == 1 ? 0x00 : (uint8_t)xt_rand(seed);
}

/* (7) garbage in the signal area: every call returns, none crashes or hangs. */
static void test_garbage(void)
{
	void *owner = join(), *sig = join();
	void *area = S->ports[7].signal;
	uint64_t seed = xt_seed();

	do_bind(owner, 7);
	for (int it = 0; it < 300; it++) {
		int pat = it < 2 ? it : 2;
		uint64_t t0;
		int r;

		fill(area, &seed, pat);
		D->signal(&H, sig, 7);
		D->signal(&H, owner, 7);
		r = prepare_wait(owner, 7);
		CHECK(r == 0);
		fill(area, &seed, pat);		/* changed under a prepared waiter */
		D->signal(&H, sig, 7);
		t0 = xt_now_ns();
		r = wait_signal(owner, 7, 2000);
		CHECKF(r == 0 || r == -ETIMEDOUT || r == -EINTR, "wait: %d", r);
		CHECK(xt_now_ns() - t0 < 2000000000ull);
		fill(area, &seed, pat);
		CHECK(prepare_wait(owner, 7) == 0);
		fill(area, &seed, pat);
		cancel_wait(owner, 7);
		fill(area, &seed, pat);
		CHECK(prepare_wait(owner, 7) == 0);
		r = wait_signal(owner, 7, 0);
		CHECKF(r == 0 || r == -ETIMEDOUT, "wait(0): %d", r);
	}
	/* A new bind resets the area: everything works again. */
	fill(area, &seed, 0);
	D->unbind(&H, owner, 7);
	do_bind(owner, 7);
	CHECK(prepare_wait(owner, 7) == 0);
	CHECK(D->signal(&H, sig, 7) == 0);
	CHECK(wait_signal(owner, 7, 1000000) == 0);
	D->unbind(&H, owner, 7);
	D->leave(&H, sig);
	D->leave(&H, owner);
}

/*
 * (8) one thread armed on every port at once (more than the 4 a thread
 * could prepare before the core kept the waits): a signal to any one of
 * them wakes its single sleep, and only that wait reports it. Then the same
 * with 200 waits (the ports listed many times; the signaled one after the
 * 128 that one futex_waitv takes), and timeouts with nothing signaled.
 */
#define MANY 200

/*
 * The port of wait @i of @n: every port once for n == NPORTS; with MANY
 * waits the first 128 all name port NPORTS - 1 (never signaled) and the
 * others cycle over the rest, so that the signaled wait lies beyond what
 * one futex_waitv takes.
 */
static uint32_t port_of(uint32_t i, uint32_t n)
{
	if (n == NPORTS)
		return i;
	return i < 128 ? NPORTS - 1 : (i - 128) % (NPORTS - 1);
}

static void test_many_ports(void)
{
	static struct xseg_armed w[MANY];
	void *priv = join();
	pid_t pid;
	int r;

	for (uint32_t p = 0; p < NPORTS; p++)
		do_bind(priv, p);
	for (uint32_t n = NPORTS; n <= MANY; n = n == NPORTS ? MANY : MANY + 1) {
		for (uint32_t target = 0; target < NPORTS; target += 3) {
			int hits = 0;

			st(&S->step, 0);
			st(&S->flag, 0);
			for (uint32_t i = 0; i < n; i++) {
				w[i] = (struct xseg_armed){ .portno = port_of(i, n) };
				CHECKF(D->arm(&H, priv, &w[i]) == 0, "%s arm %u of %u", D->name, i, n);
			}
			pid = xt_fork();
			if (pid == 0) {
				void *sig = join();

				alarm(30);
				await(&S->step, 1);
				CHECK(D->signal(&H, sig, target) == 0);
				st(&S->flag, 1);
				D->leave(&H, sig);
				_exit(0);
			}
			st(&S->step, 1);
			/* Woken before the signal (a spurious wake-up): sleep again, still armed. */
			do {
				r = D->sleep(&H, priv, w, n, 10000000);
				CHECKF(r == 0 || r == -EINTR, "%s sleep on %u waits: %d", D->name, n, r);
			} while (ld(&S->flag) == 0);
			reap(pid);
			for (uint32_t i = 0; i < n; i++) {
				int s = D->disarm(&H, priv, &w[i]);

				CHECK(s == 0 || s == 1);
				if (s && w[i].portno != target)
					CHECKF(0, "%s: the wait on port %u reports the signal sent to %u",
					       D->name, w[i].portno, target);
				hits += s;
			}
			CHECKF(hits >= 1, "%s: no wait on port %u reports its signal (%u waits)", D->name,
			       target, n);
		}
		/* Nothing signaled: a poll and a short sleep time out. */
		for (uint32_t i = 0; i < n; i++) {
			w[i] = (struct xseg_armed){ .portno = port_of(i, n) };
			CHECK(D->arm(&H, priv, &w[i]) == 0);
		}
		CHECK(D->sleep(&H, priv, w, n, 0) == -ETIMEDOUT);
		r = D->sleep(&H, priv, w, n, 20000);
		CHECKF(r == -ETIMEDOUT, "%s: 20 ms on %u quiet waits: %d", D->name, n, r);
		for (uint32_t i = 0; i < n; i++)
			CHECK(D->disarm(&H, priv, &w[i]) == 0);
	}
	for (uint32_t p = 0; p < NPORTS; p++)
		D->unbind(&H, priv, p);
	D->leave(&H, priv);
}

/* Run one test of driver D, with a watchdog of its own. */
#define DRUN(fn) do { \
	snprintf(test_name, sizeof(test_name), "%s/%s", D->name, #fn); \
	xt_current = test_name; xt_watchdog(90); fn(); alarm(0); \
	printf("ok %s\n", test_name); fflush(stdout); \
} while (0)

/* Is driver @name in the comma-separated list $XSEG_DRIVERS (or is the list unset)? */
static int selected(const char *name)
{
	const char *l = getenv("XSEG_DRIVERS");
	size_t n = strlen(name);

	if (!l || !*l)
		return 1;
	for (const char *p = l; p; p = strchr(p, ','), p = p ? p + 1 : NULL)
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == 0))
			return 1;
	return 0;
}

int main(void)
{
	const struct xseg_driver_ops *all[] = { &xseg_driver_posix, &xseg_driver_posixfd, &xseg_driver_futex };

	setvbuf(stdout, NULL, _IOLBF, 0);
	S = xt_shared(sizeof(*S));
	H.ports = S->ports;
	H.nr_ports = NPORTS;
	snprintf(H.name, sizeof(H.name), "drvtest.%d", (int)getpid());
	unsetenv("XSEG_FIFO_DIR");
	for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		D = all[i];
		if (!selected(D->name))
			continue;
		CHECK(D->abi_size == sizeof(struct xseg_driver_ops) && D->version == 1);
		memset(S->ports, 0, sizeof(S->ports));
		DRUN(test_pingpong);
		DRUN(test_wake_points);
		DRUN(test_threads);
		DRUN(test_timeouts);
		DRUN(test_no_syscall);
		if (D == &xseg_driver_posix)
			DRUN(test_posix_stray);
		if (D == &xseg_driver_posixfd)
			DRUN(test_posixfd_files);
		DRUN(test_garbage);
		DRUN(test_many_ports);
	}
	CHECK(cleanup_H() == 0);
	return 0;
}
