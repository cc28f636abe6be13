/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench/xseg/scale.c - how cost grows (xsegbench -p g; bench/README.md,
 * "How cost grows"):
 *
 *   clients    1, 2, 4, 8, 16 client processes, one request in flight each,
 *              against a server process with 1..4 threads; thread t serves
 *              port t (a port has one waiting thread at a time, xseg.h), and
 *              client i submits to port i % threads. Every side waits with
 *              xseg_wait() and the default spin. Requests/s of all clients
 *              together, median and p99 of every round trip of the run.
 *   idle       the same with 1 client and 1 thread while the harness keeps
 *              0, 1, 10, 100, 1000 other ports of the segment bound and idle.
 *   ports      create / join / bind / leave / destroy of a segment with 4,
 *              64, 1024, 4096 ports (nothing bound).
 *   sizes      the same for segments of 16 MiB .. 4 GiB (256 requests with
 *              buffers of size/256), with the bytes the segment file holds
 *              after create and what a join maps into the joiner (its
 *              resident set grows by it); huge=1 when the machine has 2 MiB
 *              pages reserved and a hugetlbfs, else said skipped.
 *
 * Children die with the harness (PR_SET_PDEATHSIG), each has an alarm, any
 * failure kills the others and fails the benchmark; the segments are
 * destroyed at exit (xsb_scale_cleanup()).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include "xseg/xseg.h"
#include "xsb.h"
#include "../stats.h"

#define SC_MAX_CLIENTS	16u
#define SC_MAX_THREADS	4u
#define SC_SAMPLES	50000u		/* round trips recorded per client and run */
#define SC_CLIENT_PORT0	4u		/* clients: ports 4..19 */
#define SC_HARNESS_PORT	20u		/* the harness: stop requests, idle ports' owner */
#define SC_IDLE_PORT0	21u		/* idle ports: 21.. */
#define SC_MAX_IDLE	1000u
#define SC_NPORTS	(SC_IDLE_PORT0 + SC_MAX_IDLE + 1)	/* + 1 free for the dynamic bind */
#define SC_MAX_REPS	31u

static const uint32_t nclients[] = { 1, 2, 4, 8, 16 };
static const uint32_t nthreads[] = { 1, 2, 3, 4 };
static const uint32_t nidle[] = { 0, 1, 10, 100, 1000 };
static const uint32_t nports[] = { 4, 64, 1024, 4096 };
static const uint32_t size_mib[] = { 16, 64, 256, 1024, 4096 };
#define NC (sizeof(nclients) / sizeof(nclients[0]))
#define NT (sizeof(nthreads) / sizeof(nthreads[0]))
#define NI (sizeof(nidle) / sizeof(nidle[0]))
#define NP (sizeof(nports) / sizeof(nports[0]))
#define NS (sizeof(size_mib) / sizeof(size_mib[0]))

/* What the harness shares with the children of a run (MAP_SHARED). */
struct sc_shared {
	char segname[64];
	uint32_t clients, threads;
	uint64_t run_ns;
	int busy;				/* poll, never sleep; client on CPU 0, server on CPU 1 */
	uint64_t join_ns, any_bind_ns;		/* client 0: its xseg_join, one XSEG_ANY_PORT bind + leave */
	pthread_barrier_t start;		/* clients + server */
	char err[256];
	uint64_t completed[SC_MAX_CLIENTS], elapsed_ns[SC_MAX_CLIENTS];
	uint32_t nsamples[SC_MAX_CLIENTS];
	uint32_t samples[SC_MAX_CLIENTS][SC_SAMPLES];
};

struct cell {
	double rps[SC_MAX_REPS], med[SC_MAX_REPS], p99[SC_MAX_REPS], join[SC_MAX_REPS], bind[SC_MAX_REPS];
	double rps_m, med_m, p99_m, join_m, bind_m;
};

struct life {
	double us[5][SC_MAX_REPS];		/* create, join, bind, leave, destroy */
	double us_m[5];
	uint64_t bytes, file_bytes, join_rss;	/* layout size, file after create, joiner's RSS growth */
	int skipped;
};

static const char *const life_keys[5] = { "createUs", "joinUs", "bindUs", "leaveUs", "destroyUs" };

static struct sc_shared *sh;
static pid_t harness_pid, kids[SC_MAX_CLIENTS + 1];
static char cur_seg[64];		/* lifecycle(): a segment of ours that exists now */
static char run_seg[64];		/* the run segment (clients, idle ports) */
static struct xseg *hx;			/* the harness's handle on the run segment */
static struct cell cells[NT][NC], idle[NI];
static struct life ports_life[NP], size_life[NS];
static const char *huge_note;
static unsigned reps_done;
static int idle_busy;
static double run_s;
static int done;

static void sc_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void sc_fail(const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (getpid() != harness_pid) {
		snprintf(sh->err, sizeof(sh->err), "%s", msg);
		fprintf(stderr, "xsegbench: FAIL [scale]: %s\n", msg);
		_exit(1);
	}
	fprintf(stderr, "xsegbench: FAIL [scale]: %s\n", msg);
	exit(1);	/* atexit: xsb_scale_cleanup() */
}

static void kill_kids(void)
{
	for (unsigned i = 0; i <= SC_MAX_CLIENTS; i++)
		if (kids[i] > 0) {
			kill(kids[i], SIGKILL);
			waitpid(kids[i], NULL, 0);
			kids[i] = 0;
		}
}

void xsb_scale_cleanup(void)
{
	if (getpid() != harness_pid)
		return;
	kill_kids();
	if (hx) {
		xseg_leave(hx);
		hx = NULL;
	}
	if (cur_seg[0]) {
		xseg_destroy_name("posix", cur_seg);
		cur_seg[0] = 0;
	}
	if (run_seg[0]) {
		xseg_destroy_name("posix", run_seg);
		run_seg[0] = 0;
	}
}

static void on_alarm(int sig)
{
	static const char msg[] = "xsegbench: FAIL [scale]: a child did not end in time (a hang)\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(3);
	_exit(3);
}

static pid_t spawn(void (*fn)(unsigned), unsigned arg)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		sc_fail("fork: %s", strerror(errno));
	if (pid)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != harness_pid)
		_exit(9);
	hx = NULL;	/* the harness's handle and segments are not ours */
	cur_seg[0] = run_seg[0] = 0;
	signal(SIGALRM, on_alarm);
	alarm((unsigned)(sh->run_ns / 1000000000ull) + 15);
	fn(arg);
	_exit(0);
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		sc_fail("sched_setaffinity(CPU %d): %s", cpu, strerror(errno));
}

/* Nothing queued on @port: poll again (busy) or wait for a signal. */
static void idle_wait(struct xseg *xs, uint32_t port)
{
	int r;

	if (sh->busy) {
		xsb_relax();
		return;
	}
	r = xseg_wait(xs, port, XSB_WAIT_US);
	if (r < 0)
		sc_fail("xseg_wait(%u): %s", port, strerror(-r));
}

static struct xseg *join_bind(uint32_t port)
{
	char err[256] = "";
	struct xseg *xs;
	uint64_t t0 = xsb_now_ns();
	int e = 0, r;

	xs = xseg_join("posix", sh->segname, "futex", NULL, NULL, &e, err, sizeof(err));
	if (!xs)
		sc_fail("xseg_join(%s): %s (%s)", sh->segname, err, strerror(-e));
	if (port == SC_CLIENT_PORT0) {	/* client 0: what a join and a dynamic bind cost here */
		uint64_t t1 = xsb_now_ns();

		sh->join_ns = t1 - t0;
		r = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
		if (r < 0 || xseg_leave_port(xs, (uint32_t)r))
			sc_fail("xseg_bind_port(XSEG_ANY_PORT): %s", r < 0 ? strerror(-r) : "cannot leave it");
		sh->any_bind_ns = xsb_now_ns() - t1;
	}
	r = xseg_bind_port(xs, port, 0);
	if (r != (int)port)
		sc_fail("xseg_bind_port(%u): %s", port, r < 0 ? strerror(-r) : "another port");
	return xs;
}

/* ------------------------------------------------------------- server */

struct srv_arg {
	struct xseg *xs;
	uint32_t port;
};

static void *serve_port(void *p)
{
	struct srv_arg *a = p;

	for (;;) {
		struct xseg_request *req = xseg_accept(a->xs, a->port);
		uint32_t op;
		int to, r;

		if (!req) {
			if (errno != EAGAIN)
				sc_fail("xseg_accept(%u): %s", a->port, strerror(errno));
			idle_wait(a->xs, a->port);
			continue;
		}
		op = req->op;
		__atomic_fetch_or(&req->state, XS_SERVED, __ATOMIC_RELEASE);
		/* -EAGAIN: no hold record free right now (xseg.h); try again, for 1 s at most. */
		for (uint64_t t0 = xsb_now_ns(); (to = xseg_respond(a->xs, req)) == -EAGAIN;)
			if (xsb_now_ns() - t0 > XSB_NO_REPLY_NS)
				break;
			else
				xsb_relax();
		if (to < 0)
			sc_fail("xseg_respond(port %u): %s", a->port, strerror(-to));
		/* -ENOENT: a client that polled the reply in and left before this signal. */
		if ((r = xseg_signal(a->xs, (uint32_t)to)) < 0 && r != -ENOENT)
			sc_fail("xseg_signal(%d): %s", to, strerror(-r));
		if (op == X_CLOSE)
			return NULL;
	}
}

static void server(unsigned unused)
{
	struct srv_arg a[SC_MAX_THREADS];
	pthread_t th[SC_MAX_THREADS];
	struct xseg *xs = join_bind(0);
	int r;

	(void)unused;
	if (sh->busy)
		pin(1);
	for (uint32_t t = 1; t < sh->threads; t++)
		if ((r = xseg_bind_port(xs, t, 0)) != (int)t)
			sc_fail("xseg_bind_port(%u): %s", t, r < 0 ? strerror(-r) : "another port");
	for (uint32_t t = 0; t < sh->threads; t++) {
		a[t].xs = xs;
		a[t].port = t;
		if ((r = pthread_create(&th[t], NULL, serve_port, &a[t])))
			sc_fail("pthread_create: %s", strerror(r));
	}
	pthread_barrier_wait(&sh->start);
	for (uint32_t t = 0; t < sh->threads; t++)
		pthread_join(th[t], NULL);
	xseg_leave(xs);
}

/* ------------------------------------------------------------- client */

static void client(unsigned i)
{
	uint32_t port = SC_CLIENT_PORT0 + i, dst = i % sh->threads, n = 0;
	struct xseg *xs;
	struct xseg_request *req, *rep;
	uint64_t start, t0, t1, done_n = 0;
	int r;

	if (sh->busy)
		pin(0);
	xs = join_bind(port);
	req = xseg_get_request(xs, port);
	if (!req)
		sc_fail("client %u: xseg_get_request: %s", i, strerror(errno));
	pthread_barrier_wait(&sh->start);
	start = xsb_now_ns();
	do {
		t0 = xsb_now_ns();
		r = xseg_submit(xs, req, dst);
		if (r < 0 || xseg_signal(xs, (uint32_t)r) < 0)
			sc_fail("client %u: xseg_submit/xseg_signal(%u): %s", i, dst, strerror(r < 0 ? -r : errno));
		while (!(rep = xseg_receive(xs, port))) {
			if (errno != EAGAIN)
				sc_fail("client %u: xseg_receive: %s", i, strerror(errno));
			if (xsb_now_ns() - t0 > XSB_NO_REPLY_NS)
				sc_fail("client %u: no reply for 1 s", i);
			idle_wait(xs, port);
		}
		t1 = xsb_now_ns();
		if (rep != req || !(rep->state & XS_SERVED))
			sc_fail("client %u: a wrong or unserved reply", i);
		done_n++;
		if (n < SC_SAMPLES)
			sh->samples[i][n++] = (uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0);
	} while (t1 - start < sh->run_ns);
	sh->completed[i] = done_n;
	sh->elapsed_ns[i] = t1 - start;
	sh->nsamples[i] = n;
	if (xseg_put_request(xs, req))
		sc_fail("client %u: xseg_put_request failed", i);
	xseg_leave(xs);
}

/* ------------------------------------------------------------ harness */

/*
 * Reap children until none of @pids (n of them) is left; any child that
 * fails (a client, or the server early) kills the others and fails the
 * benchmark. A child stuck at the start barrier because another died
 * ends by its alarm at the latest.
 */
static void reap(const pid_t *pids, unsigned n)
{
	unsigned left = n;

	while (left) {
		int status, mine = 0;
		pid_t pid = waitpid(-1, &status, 0);
		const char *who;

		if (pid < 0)
			sc_fail("waitpid: %s", strerror(errno));
		who = pid == kids[SC_MAX_CLIENTS] ? "server" : "client";
		for (unsigned i = 0; i < n; i++)
			if (pids[i] == pid)
				mine = 1;
		for (unsigned i = 0; i <= SC_MAX_CLIENTS; i++)
			if (kids[i] == pid)
				kids[i] = 0;
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			kill_kids();
			sc_fail("the %s failed (%s%s)", who,
				WIFSIGNALED(status) ? "signal " : "status ",
				WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : sh->err);
		}
		if (mine)
			left--;
	}
}

/* End every server thread with an X_CLOSE from the harness's port. */
static void stop_server(void)
{
	for (uint32_t t = 0; t < sh->threads; t++) {
		struct xseg_request *req = xseg_get_request(hx, SC_HARNESS_PORT), *rep;
		uint64_t t0 = xsb_now_ns();
		int r;

		if (!req)
			sc_fail("harness: xseg_get_request: %s", strerror(errno));
		req->op = X_CLOSE;
		r = xseg_submit(hx, req, t);
		if (r < 0 || xseg_signal(hx, (uint32_t)r) < 0)
			sc_fail("harness: cannot submit the stop request to port %u", t);
		while (!(rep = xseg_receive(hx, SC_HARNESS_PORT))) {
			if (xsb_now_ns() - t0 > XSB_NO_REPLY_NS)
				sc_fail("harness: no reply to the stop request of port %u", t);
			xseg_wait(hx, SC_HARNESS_PORT, XSB_WAIT_US);
		}
		if (xseg_put_request(hx, rep))
			sc_fail("harness: xseg_put_request failed");
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* One run: @c clients, @t server threads; fills rep @r of @cl. */
static void run_cell(uint32_t c, uint32_t t, struct cell *cl, unsigned r)
{
	static uint32_t all[SC_MAX_CLIENTS * SC_SAMPLES];
	pid_t pids[SC_MAX_CLIENTS];
	pthread_barrierattr_t ba;
	uint64_t total = 0, n = 0;
	double secs = 0;

	sh->clients = c;
	sh->threads = t;
	memset(sh->completed, 0, sizeof(sh->completed));
	memset(sh->nsamples, 0, sizeof(sh->nsamples));
	if (pthread_barrierattr_init(&ba) || pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED) ||
	    pthread_barrier_init(&sh->start, &ba, c + 1))
		sc_fail("cannot make a process-shared barrier");
	pthread_barrierattr_destroy(&ba);
	kids[SC_MAX_CLIENTS] = spawn(server, 0);
	for (uint32_t i = 0; i < c; i++)
		kids[i] = spawn(client, i);
	memcpy(pids, kids, c * sizeof(pids[0]));
	reap(pids, c);
	stop_server();
	pids[0] = kids[SC_MAX_CLIENTS];
	reap(pids, 1);
	pthread_barrier_destroy(&sh->start);
	for (uint32_t i = 0; i < c; i++) {
		total += sh->completed[i];
		secs += sh->elapsed_ns[i] / 1e9 / c;	/* mean run length */
		memcpy(all + n, sh->samples[i], sh->nsamples[i] * sizeof(all[0]));
		n += sh->nsamples[i];
	}
	if (n < 10 || secs <= 0)
		sc_fail("%u clients, %u threads: only %llu round trips", c, t, (unsigned long long)n);
	qsort(all, n, sizeof(all[0]), cmp_u32);
	cl->rps[r] = (double)total / secs;
	cl->med[r] = (n % 2 ? all[n / 2] : (all[n / 2 - 1] + all[n / 2]) / 2.0) / 1e3;
	cl->p99[r] = all[(size_t)ceil(0.99 * (double)n) - 1] / 1e3;
	cl->join[r] = sh->join_ns / 1e3;
	cl->bind[r] = sh->any_bind_ns / 1e3;
}

static void cell_stats(struct cell *cl, unsigned reps)
{
	cl->rps_m = median(cl->rps, reps);
	cl->med_m = median(cl->med, reps);
	cl->p99_m = median(cl->p99, reps);
	cl->join_m = median(cl->join, reps);
	cl->bind_m = median(cl->bind, reps);
}

static uint64_t resident_bytes(void)
{
	unsigned long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%lu %lu", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* create / join / bind / leave / destroy of @spec once; rep @r of @lf. */
static void lifecycle(const char *spec, const char *name, struct life *lf, unsigned r)
{
	struct xseg_config cfg;
	char err[256] = "", path[128];
	struct xseg *xs;
	struct stat st;
	uint64_t t[6], rss0;
	int e = 0, rc;

	if (xseg_parse_spec(spec, &cfg, err, sizeof(err)))
		sc_fail("spec %s: %s", spec, err);
	snprintf(cur_seg, sizeof(cur_seg), "%s", name);
	t[0] = xsb_now_ns();
	rc = xseg_create(&cfg, err, sizeof(err));
	t[1] = xsb_now_ns();
	if (rc)
		sc_fail("cannot create %s: %s", spec, err);
	snprintf(path, sizeof(path), "/dev/shm/xseg.%s", name);	/* sys/user/segtypes/posix.c */
	if (stat(path, &st) == 0)
		lf->file_bytes = (uint64_t)st.st_blocks * 512u;
	rss0 = resident_bytes();
	xs = xseg_join("posix", name, "futex", NULL, NULL, &e, err, sizeof(err));
	t[2] = xsb_now_ns();
	if (!xs)
		sc_fail("cannot join %s: %s", spec, err);
	lf->join_rss = resident_bytes() - rss0;
	lf->bytes = xseg_size(xs);
	rc = xseg_bind_port(xs, 0, 0);
	t[3] = xsb_now_ns();
	if (rc != 0)
		sc_fail("%s: xseg_bind_port(0): %s", spec, strerror(-rc));
	xseg_leave(xs);
	t[4] = xsb_now_ns();
	rc = xseg_destroy_name("posix", name);
	t[5] = xsb_now_ns();
	if (rc)
		sc_fail("cannot destroy %s: %s", spec, strerror(-rc));
	cur_seg[0] = 0;
	for (int k = 0; k < 5; k++)
		lf->us[k][r] = (t[k + 1] - t[k]) / 1e3;
}

/* Room for @bytes more in /dev/shm and in memory (with 1 GiB to spare)? */
static int room_for(uint64_t bytes)
{
	struct statfs sfs;
	long pages = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);

	if (statfs("/dev/shm", &sfs))
		return 0;
	return (uint64_t)sfs.f_bavail * (uint64_t)sfs.f_bsize > bytes + (1ull << 30) &&
	       (uint64_t)pages * (uint64_t)psz > bytes + (1ull << 30);
}

void xsb_scale(unsigned reps, double tsecs, int verbose, int pinned)
{
	struct xseg_config cfg;
	char spec[160], name[64], err[256] = "";
	uint32_t idle_bound = 0;
	int e = 0, r;

	if (reps > SC_MAX_REPS)
		reps = SC_MAX_REPS;
	harness_pid = getpid();
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		sc_fail("mmap: %s", strerror(errno));
	atexit(xsb_scale_cleanup);
	run_s = tsecs;
	idle_busy = pinned;
	sh->run_ns = (uint64_t)(tsecs * 1e9);

	/* The run segment: servers 0..3, clients 4..19, the harness 20, idle 21..1020. */
	snprintf(sh->segname, sizeof(sh->segname), "xsbg%d", (int)harness_pid);
	snprintf(spec, sizeof(spec), "posix:%s:%u:256:4K:0:12:dynports=%u", sh->segname, SC_NPORTS,
		 SC_IDLE_PORT0);
	if (xseg_parse_spec(spec, &cfg, err, sizeof(err)))
		sc_fail("spec %s: %s", spec, err);
	r = xseg_create(&cfg, err, sizeof(err));
	if (r == -EEXIST) {	/* left by a killed run that had our pid */
		xseg_destroy_name("posix", sh->segname);
		r = xseg_create(&cfg, err, sizeof(err));
	}
	if (r)
		sc_fail("cannot create %s: %s", spec, err);
	snprintf(run_seg, sizeof(run_seg), "%s", sh->segname);
	hx = xseg_join("posix", sh->segname, "futex", NULL, NULL, &e, err, sizeof(err));
	if (!hx || xseg_bind_port(hx, SC_HARNESS_PORT, 0) != (int)SC_HARNESS_PORT)
		sc_fail("harness: cannot join %s: %s", sh->segname, err);

	/* Warm-up, discarded. */
	run_cell(1, 1, &idle[0], 0);
	for (unsigned rep = 0; rep < reps; rep++) {
		for (unsigned t = 0; t < NT; t++)
			for (unsigned c = 0; c < NC; c++) {
				run_cell(nclients[c], nthreads[t], &cells[t][c], rep);
				if (verbose)
					fprintf(stderr, "xsegbench: scale run %u: %2u clients %u threads: %8.0f req/s "
						"median %.1f us p99 %.1f us\n", rep + 1, nclients[c], nthreads[t],
						cells[t][c].rps[rep], cells[t][c].med[rep], cells[t][c].p99[rep]);
			}
		/* Idle ports: bind 0..1000 in the harness, up and down each repetition. */
		for (unsigned k = 0; k < NI; k++) {
			for (; idle_bound < nidle[k]; idle_bound++)
				if (xseg_bind_port(hx, XSEG_ANY_PORT, 0) != (int)(SC_IDLE_PORT0 + idle_bound))
					sc_fail("harness: cannot bind idle port %u", SC_IDLE_PORT0 + idle_bound);
			sh->busy = pinned;
			run_cell(1, 1, &idle[k], rep);
			sh->busy = 0;
			if (verbose)
				fprintf(stderr, "xsegbench: scale run %u: %4u idle ports: %8.0f req/s median %.2f us "
					"p99 %.2f us, join %.0f us, dynamic bind %.0f us\n", rep + 1, nidle[k],
					idle[k].rps[rep], idle[k].med[rep], idle[k].p99[rep], idle[k].join[rep],
					idle[k].bind[rep]);
		}
		for (; idle_bound > 0; idle_bound--)
			if (xseg_leave_port(hx, SC_IDLE_PORT0 + idle_bound - 1))
				sc_fail("harness: cannot leave idle port %u", SC_IDLE_PORT0 + idle_bound - 1);
		for (unsigned k = 0; k < NP; k++) {
			snprintf(name, sizeof(name), "xsbp%d", (int)harness_pid);
			snprintf(spec, sizeof(spec), "posix:%s:%u:256:4K:0:12", name, nports[k]);
			lifecycle(spec, name, &ports_life[k], rep);
		}
		for (unsigned k = 0; k < NS; k++) {
			uint64_t bytes = (uint64_t)size_mib[k] << 20;

			if (size_life[k].skipped || !room_for(bytes)) {
				size_life[k].skipped = 1;
				continue;
			}
			snprintf(name, sizeof(name), "xsbs%d", (int)harness_pid);
			snprintf(spec, sizeof(spec), "posix:%s:4:256:%lluK:0:12", name,
				 (unsigned long long)(bytes / 256 / 1024));
			lifecycle(spec, name, &size_life[k], rep);
			if (verbose)
				fprintf(stderr, "xsegbench: scale run %u: %5u MiB: create %.0f us join %.0f us "
					"destroy %.0f us\n", rep + 1, size_mib[k], size_life[k].us[0][rep],
					size_life[k].us[1][rep], size_life[k].us[4][rep]);
		}
	}
	/* Huge pages: only where the machine has them (a hugetlbfs and reserved pages). */
	{
		FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r");
		long n = 0;

		if (f) {
			if (fscanf(f, "%ld", &n) != 1)
				n = 0;
			fclose(f);
		}
		huge_note = n > 0 ? "huge pages reserved but not measured (run with -H)" :
			"skipped: no 2 MiB pages reserved (/proc/sys/vm/nr_hugepages is 0)";
	}
	xsb_scale_cleanup();
	for (unsigned t = 0; t < NT; t++)
		for (unsigned c = 0; c < NC; c++)
			cell_stats(&cells[t][c], reps);
	for (unsigned k = 0; k < NI; k++)
		cell_stats(&idle[k], reps);
	for (unsigned k = 0; k < NP; k++)
		for (int j = 0; j < 5; j++)
			ports_life[k].us_m[j] = median(ports_life[k].us[j], reps);
	for (unsigned k = 0; k < NS; k++)
		for (int j = 0; j < 5 && !size_life[k].skipped; j++)
			size_life[k].us_m[j] = median(size_life[k].us[j], reps);
	reps_done = reps;
	done = 1;
}

void xsb_scale_print(void)
{
	if (!done)
		return;
	printf("\nhow cost grows: N client processes (1 PING in flight each) against a server with T threads\n"
	       "(thread t serves port t; client i submits to port i %% T; xseg_wait, default spin);\n"
	       "median of %u runs of %.2f s: thousand requests/s | p99 us\n", reps_done, run_s);
	printf("%-10s", "clients");
	for (unsigned c = 0; c < NC; c++)
		printf(" %16u", nclients[c]);
	printf("\n");
	for (unsigned t = 0; t < NT; t++) {
		printf("%u thread%s ", nthreads[t], nthreads[t] > 1 ? "s" : " ");
		for (unsigned c = 0; c < NC; c++)
			printf(" %7.1f | %6.1f", cells[t][c].rps_m / 1e3, cells[t][c].p99_m);
		printf("\n");
	}
	printf("(2 CPUs here: from 2 processes on, clients and server time-share the CPUs)\n");
	printf("\nidle ports bound (by another process), 1 client, 1 server thread%s;\n"
	       "a new client's xseg_join and one dynamic bind (XSEG_ANY_PORT, past the bound ones) + leave:\n",
	       idle_busy ? ", both busy-polling, client on CPU 0, server on CPU 1" : " [NOT PINNED: xseg_wait]");
	printf("%-12s %10s %10s %10s %10s %10s\n", "idle ports", "k req/s", "median us", "p99 us", "join us",
	       "dyn bind us");
	for (unsigned k = 0; k < NI; k++)
		printf("%-12u %10.1f %10.2f %10.2f %10.0f %10.0f\n", nidle[k], idle[k].rps_m / 1e3, idle[k].med_m,
		       idle[k].p99_m, idle[k].join_m, idle[k].bind_m);
	printf("\nsegment life by ports configured (256 requests, 4K buffers); median us:\n");
	printf("%-8s %10s %10s %8s %8s %10s %10s %10s\n", "ports", "bytes", "create", "join", "bind",
	       "leave", "destroy", "join RSS");
	for (unsigned k = 0; k < NP; k++) {
		const struct life *l = &ports_life[k];

		printf("%-8u %10llu %10.0f %8.0f %8.1f %10.0f %10.0f %9lluK\n", nports[k],
		       (unsigned long long)l->bytes, l->us_m[0], l->us_m[1], l->us_m[2], l->us_m[3], l->us_m[4],
		       (unsigned long long)(l->join_rss >> 10));
	}
	printf("\nsegment life by size (4 ports, 256 requests, buffers of size/256); median us:\n");
	printf("%-8s %10s %10s %8s %8s %10s %10s %10s\n", "MiB", "file MiB", "create", "join", "bind",
	       "leave", "destroy", "join RSS");
	for (unsigned k = 0; k < NS; k++) {
		const struct life *l = &size_life[k];

		if (l->skipped) {
			printf("%-8u skipped: not enough room in /dev/shm or memory\n", size_mib[k]);
			continue;
		}
		printf("%-8u %10.0f %10.0f %8.0f %8.1f %10.0f %10.0f %9lluK\n", size_mib[k],
		       l->file_bytes / 1048576.0, l->us_m[0], l->us_m[1], l->us_m[2], l->us_m[3], l->us_m[4],
		       (unsigned long long)(l->join_rss >> 10));
	}
	printf("huge=1: %s\n", huge_note);
}

static void json_reps(FILE *f, const double *v)
{
	fputc('[', f);
	for (unsigned i = 0; i < reps_done; i++)
		fprintf(f, "%s%.1f", i ? ", " : "", v[i]);
	fputc(']', f);
}

static void json_cell(FILE *f, const struct cell *c)
{
	fprintf(f, "\"requestsPerS\": %.0f, \"medianUs\": %.2f, \"p99Us\": %.2f, \"samples\": {\"requestsPerS\": ",
		c->rps_m, c->med_m, c->p99_m);
	json_reps(f, c->rps);
	fprintf(f, ", \"p99Us\": ");
	json_reps(f, c->p99);
	fprintf(f, "}, \"joinUs\": %.1f, \"anyBindUs\": %.1f}", c->join_m, c->bind_m);
}

static void json_life(FILE *f, const struct life *l)
{
	for (int j = 0; j < 5; j++)
		fprintf(f, ", \"%s\": %.1f", life_keys[j], l->us_m[j]);
	fprintf(f, ", \"bytes\": %llu, \"fileBytes\": %llu, \"joinRssBytes\": %llu}",
		(unsigned long long)l->bytes, (unsigned long long)l->file_bytes, (unsigned long long)l->join_rss);
}

/* The "scale" object of xseg.json, or null. */
void xsb_scale_json(FILE *f)
{
	if (!done) {
		fprintf(f, "null");
		return;
	}
	fprintf(f, "{\"repetitions\": %u, \"secondsPerRun\": %g, \"wait\": \"xseg_wait, default spin\",\n"
		"    \"clients\": [", reps_done, run_s);
	for (unsigned t = 0; t < NT; t++)
		for (unsigned c = 0; c < NC; c++) {
			fprintf(f, "%s\n      {\"clients\": %u, \"serverThreads\": %u, ", t || c ? "," : "",
				nclients[c], nthreads[t]);
			json_cell(f, &cells[t][c]);
		}
	fprintf(f, "],\n    \"idlePortsWait\": \"%s\",\n    \"idlePorts\": [",
		idle_busy ? "busy poll, client CPU 0, server CPU 1" : "xseg_wait, default spin (not pinned)");
	for (unsigned k = 0; k < NI; k++) {
		fprintf(f, "%s\n      {\"idlePorts\": %u, ", k ? "," : "", nidle[k]);
		json_cell(f, &idle[k]);
	}
	fprintf(f, "],\n    \"ports\": [");
	for (unsigned k = 0; k < NP; k++) {
		fprintf(f, "%s\n      {\"ports\": %u", k ? "," : "", nports[k]);
		json_life(f, &ports_life[k]);
	}
	fprintf(f, "],\n    \"sizes\": [");
	for (unsigned k = 0; k < NS; k++) {
		fprintf(f, "%s\n      {\"mib\": %u", k ? "," : "", size_mib[k]);
		if (size_life[k].skipped)
			fprintf(f, ", \"skipped\": \"not enough room in /dev/shm or memory\"}");
		else
			json_life(f, &size_life[k]);
	}
	fprintf(f, "],\n    \"huge\": \"%s\"}", huge_note);
}
