/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: peers killed with SIGKILL in the middle of real traffic.
 * patternd serves port 1; three client processes keep requests in flight
 * and check every byte. The parent, like a supervisor, SIGKILLs the server
 * or a client at random (XSEG_KILLS, default 120), runs recovery or leaves it
 * to the restarted peer's bind, and restarts the victim. It then waits for
 * the survivors to make progress again. Requests outstanding at a killed
 * server must come back failed with ECONNRESET (none hangs); at the end the
 * clients drain and exit cleanly, every request is back in the free list
 * (none lost, none duplicated) and verify finds nothing wrong.
 */
#include "procs.h"

#define NCLIENTS 3

struct shared {
	uint64_t done __attribute__((aligned(64)));	/* replies, all clients */
	uint64_t reset;		/* replies failed with ECONNRESET */
	uint64_t other;		/* replies failed otherwise (must stay 0) */
	uint64_t bad;		/* served replies with wrong data (must stay 0) */
	uint64_t enoent;	/* submits refused: no server bound right now */
};

static struct shared *sh;
static volatile sig_atomic_t client_stop;

static void on_term(int sig)
{
	(void)sig;
	client_stop = 1;
}

/* A client: depth 8 of READ/WRITE until SIGTERM, then drain and exit 0. */
static void client(const struct xseg_config *cfg, int id)
{
	struct xseg *xs;
	uint64_t seed = pattern_seed("kill", 4), sent = 0, inflight = 0, idle_since = 0;
	int port;

	xs = tx_join(cfg, id % 2 ? "posixfd" : "futex");
	port = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(port >= 0);
	while (!client_stop || inflight) {
		struct xseg_request *req;
		bool progress = false;

		while (!client_stop && inflight < 8 && (req = xseg_get_request(xs, (uint32_t)port))) {
			uint64_t off = (sent % 4096) * 512;
			int r;

			r = xseg_prep_request(xs, req, "kill", 4, 512);
			CHECKF(r == 0, "prep: %d", r);
			req->op = sent % 2 ? X_WRITE : X_READ;
			req->offset = off;
			req->size = 512;
			if (req->op == X_WRITE)
				pattern_fill(xseg_req_data(xs, req), 512, seed, off);
			r = xseg_submit(xs, req, 1);
			if (r == -ENOENT) {		/* the server is down right now */
				__atomic_fetch_add(&sh->enoent, 1, __ATOMIC_RELAXED);
				CHECK(xseg_put_request(xs, req) == 0);
				usleep(1000);
				break;
			}
			CHECKF(r == 1, "submit: %d", r);
			xseg_signal(xs, (uint32_t)r);
			sent++;
			inflight++;
		}
		while ((req = xseg_receive(xs, (uint32_t)port))) {
			inflight--;
			progress = true;
			if (req->state & XS_FAILED) {
				if (req->error == ECONNRESET)
					__atomic_fetch_add(&sh->reset, 1, __ATOMIC_RELAXED);
				else
					__atomic_fetch_add(&sh->other, 1, __ATOMIC_RELAXED);
			} else if (req->op == X_READ &&
				   pattern_check(xseg_req_data(xs, req), 512, seed, req->offset) != 512) {
				__atomic_fetch_add(&sh->bad, 1, __ATOMIC_RELAXED);
			}
			CHECK(xseg_put_request(xs, req) == 0);
			__atomic_fetch_add(&sh->done, 1, __ATOMIC_RELAXED);
		}
		if (progress || !inflight) {
			idle_since = 0;
			continue;
		}
		/* A request may wait for the supervisor's recovery, never forever. */
		if (!idle_since)
			idle_since = xt_now_ns();
		if (xt_now_ns() - idle_since > 30000000000ull) {
			fprintf(stderr, "client %d: %" PRIu64 " requests got no reply in 30 s\n", id, inflight);
			_exit(3);
		}
		xseg_wait(xs, (uint32_t)port, 50000);
	}
	xseg_leave(xs);
	_exit(0);
}

static pid_t spawn_client(const struct xseg_config *cfg, int id)
{
	pid_t pid;

	/* Set before the fork, so a SIGTERM right after it finds the handler. */
	signal(SIGTERM, on_term);
	pid = xt_fork();

	if (pid == 0)
		client(cfg, id);
	return pid;
}

static void test_kill(void)
{
	struct xseg_config cfg = tx_create("posix:%s:16:128:4K:0:12");
	long kills = xt_env_long("XSEG_KILLS", 120);
	uint64_t rnd = xt_seed();
	struct xseg *xs;
	pid_t srv, cli[NCLIENTS];
	uint32_t server_kills = 0, client_kills = 0, recoveries = 0;
	int st;

	sh = xt_shared(sizeof(*sh));
	xs = tx_join(&cfg, "futex");
	srv = tx_patternd(&cfg, 1, "futex", NULL);
	tx_wait_bound(xs, 1);
	for (int i = 0; i < NCLIENTS; i++)
		cli[i] = spawn_client(&cfg, i);

	for (long k = 0; k < kills; k++) {
		uint64_t r = xt_rand(&rnd), before;
		struct timespec ts = { 0, (long)(r % 3000000) };
		bool server = r % 3 == 0;
		int victim = (int)((r >> 8) % NCLIENTS);
		pid_t pid = server ? srv : cli[victim];

		nanosleep(&ts, NULL);
		CHECK(kill(pid, SIGKILL) == 0);
		CHECK(waitpid(pid, &st, 0) == pid);
		CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		       "%s ended on its own with status %#x (it found an error)", server ? "server" : "client", st);
		/* Half the time the supervisor recovers; else the restarted peer's bind does. */
		if (r & (1 << 20)) {
			struct xseg_recovery_stats rs;

			/*
			 * (A replacement killed before it bound a port leaves nothing to
			 * free.) -EALREADY: a peer's own periodic recovery holds the lease
			 * (patternd runs one every second), which does the same work.
			 */
			int rr = xseg_recover(xs, &rs);

			CHECKF(rr == 0 || rr == -EALREADY, "xseg_recover: %d", rr);
			recoveries += rr == 0;
		}
		if (server) {
			srv = tx_patternd(&cfg, 1, "futex", NULL);
			tx_wait_bound(xs, 1);
			server_kills++;
		} else {
			cli[victim] = spawn_client(&cfg, victim);
			client_kills++;
		}
		/* The survivors (and the replacement) must make progress again. */
		before = __atomic_load_n(&sh->done, __ATOMIC_RELAXED);
		while (__atomic_load_n(&sh->done, __ATOMIC_RELAXED) < before + 50)
			usleep(200);
	}

	/* Clients drain: each outstanding request got exactly one reply. */
	for (int i = 0; i < NCLIENTS; i++) {
		CHECK(kill(cli[i], SIGTERM) == 0);
		CHECK(waitpid(cli[i], &st, 0) == cli[i]);
		CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client %d status %#x", i, st);
	}
	tx_stop(srv);
	CHECK(xseg_recover(xs, NULL) == 0);
	printf("%u server kills, %u client kills, %u supervisor recoveries; %" PRIu64 " replies, %" PRIu64
	       " failed with ECONNRESET, %" PRIu64 " submits found no server\n", server_kills, client_kills,
	       recoveries, sh->done, sh->reset, sh->enoent);
	CHECKF(sh->other == 0, "%" PRIu64 " replies failed with an unexpected error", sh->other);
	CHECKF(sh->bad == 0, "%" PRIu64 " replies carried wrong data", sh->bad);
	CHECK(xseg_verify(xs, tx_print_line, NULL) == 0);
	CHECKF(xseg_header(xs)->attached == 1, "%" PRIu64 " peers counted as joined, only we are",
	       xseg_header(xs)->attached);
	CHECKF(tx_free_requests(xs) == cfg.nr_requests, "%u of %u requests are back in the free list",
	       tx_free_requests(xs), cfg.nr_requests);
	if (server_kills > 5)
		CHECKF(sh->reset > 0, "server kills failed no request back (recovery did nothing?)");
	xseg_leave(xs);
}

int main(void)
{
	xt_watchdog(600);
	RUN(test_kill);
	return 0;
}
