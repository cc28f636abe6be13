/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: producers and consumers in separate processes move a fixed
 * set of indices between two queues in shared memory (free -> work -> free)
 * with tracked operations, while the parent SIGKILLs them at random moments
 * (XSEG_KILLS, default 1000) and starts replacements. Survivors must keep
 * going (the parent waits for progress after every kill, under a watchdog);
 * after the run every index must be accounted for exactly once: in a queue,
 * or given back by recovery (xq_recover_hold / xq_reclaim_stranded) - none
 * duplicated, none lost.
 */
#include <sched.h>
#include "xtest.h"
#include "xq/xq.h"

#define NIDX   48		/* indices in circulation */
#define CAP    64
#define NPROD  2
#define NCONS  2
#define NKIDS  (NPROD + NCONS)
#define PARENT NKIDS		/* the parent's hold id */

enum { Q_FREE = 0, Q_WORK = 1 };

struct shared {
	uint64_t gen[NIDX];
	struct xq_hold holds[NKIDS + 1];
	uint64_t moves __attribute__((aligned(64)));	/* transfers done, all children */
	uint64_t payload[NIDX];				/* producer stamp, checked by consumers */
	uint64_t bad;
};

static struct shared *sh;
static void *qmem[2];
static size_t qsize;

static struct xq_track track(void)
{
	struct xq_track tr = { .gen = sh->gen, .nindices = NIDX, .holds = sh->holds, .nholds = NKIDS + 1 };

	return tr;
}

static void attach(struct xq *q)
{
	CHECK(xq_attach(&q[Q_FREE], qmem[Q_FREE], qsize, NIDX) == 0);
	CHECK(xq_attach(&q[Q_WORK], qmem[Q_WORK], qsize, NIDX) == 0);
}

/* A child: move indices from one queue to the other, forever. */
static void child(uint32_t id)
{
	struct xq q[2];
	struct xq_track tr = track();
	struct xq_hold *me = &sh->holds[id];
	bool prod = id < NPROD;
	int from = prod ? Q_FREE : Q_WORK, to = prod ? Q_WORK : Q_FREE;
	uint64_t stamp = (uint64_t)getpid() << 20;
	unsigned idle = 0;

	attach(q);
	for (;;) {
		xq_index x = xq_dequeue_tracked(&q[from], from, &tr, me);

		if (x == XQ_NONE) {
			/* Spin rather than yield, so that kills land at arbitrary
			 * instructions of the queue operations, not in a syscall. */
			if (++idle % 256 == 0)
				sched_yield();
			continue;
		}
		if (prod) {
			sh->payload[x] = stamp++ ^ (0x5A5Aull * x);
		} else if (sh->payload[x] == 0) {
			__atomic_fetch_add(&sh->bad, 1, __ATOMIC_RELAXED);
		}
		if (!prod)
			sh->payload[x] = 0;
		while (!xq_enqueue_tracked(&q[to], to, &tr, me))
			sched_yield();	/* cannot be full: NIDX < CAP */
		__atomic_fetch_add(&sh->moves, 1, __ATOMIC_RELAXED);
	}
}

static pid_t spawn(uint32_t id)
{
	pid_t pid = xt_fork();

	if (pid == 0) {
		child(id);
		_exit(0);
	}
	return pid;
}

static uint32_t given_back, queued, nothing, stranded;

/* Settle the hold of dead child @id; the parent passes any index on to free. */
static void recover(struct xq *q, uint32_t id)
{
	struct xq_track tr = track();
	struct xq_hold *mine = &sh->holds[PARENT];
	uint64_t qid;
	unsigned st = xq_hold_state(&sh->holds[id], &qid);
	struct xq *hq = NULL;
	int r;

	if ((st & 0x7F) == XQ_HOLD_ENQ || (st & 0x7F) == XQ_HOLD_DEQ) {
		CHECKF(qid <= Q_WORK, "hold %u names queue %" PRIu64, id, qid);
		hq = &q[qid];
	}
	r = xq_recover_hold(hq, &tr, &sh->holds[id], mine, PARENT);
	CHECKF(r >= 0, "recover hold %u: %d", id, r);
	if (r == XQ_REC_GIVEN) {
		given_back++;
		sh->payload[(uint32_t)mine->index] = 0;
		CHECK(xq_enqueue_tracked(&q[Q_FREE], Q_FREE, &tr, mine));
	} else if (r == XQ_REC_QUEUED) {
		queued++;
	} else {
		nothing++;
	}
	CHECK(xq_hold_state(&sh->holds[id], NULL) == XQ_HOLD_NONE);
}

/* Take back indices whose consumer died right after its FAA on head. */
static void reclaim(struct xq *q, bool quiescent)
{
	struct xq_track tr = track();
	struct xq_hold *mine = &sh->holds[PARENT];

	for (int w = 0; w < 2; w++) {
		/* While children run, only indices a full lap behind head. */
		uint64_t lag = quiescent ? 0 : q[w].mask + 1;

		while (xq_reclaim_stranded(&q[w], &tr, lag, mine) != XQ_NONE) {
			stranded++;
			sh->payload[(uint32_t)mine->index] = 0;
			CHECK(xq_enqueue_tracked(&q[Q_FREE], Q_FREE, &tr, mine));
		}
	}
}

static void count_fn(void *arg, xq_index idx)
{
	uint32_t *seen = arg;

	CHECKF(idx < NIDX, "index %u out of range in a queue", idx);
	seen[idx]++;
}

static void test_kill(void)
{
	long kills = xt_env_long("XSEG_KILLS", 1000);
	uint64_t rnd = xt_seed();
	pid_t pid[NKIDS];
	struct xq q[2];
	uint32_t seen[NIDX] = { 0 }, scanned = 0;

	sh = xt_shared(sizeof(*sh));
	qsize = xq_size(CAP);
	for (int w = 0; w < 2; w++)
		qmem[w] = xt_shared(qsize);
	CHECK(xq_init_seq(qmem[Q_FREE], qsize, CAP, NIDX, 0) == 0);
	CHECK(xq_init_empty(qmem[Q_WORK], qsize, CAP) == 0);
	attach(q);
	for (uint32_t i = 0; i < NKIDS; i++)
		pid[i] = spawn(i);

	for (long k = 0; k < kills; k++) {
		uint32_t victim = (uint32_t)(xt_rand(&rnd) % NKIDS);
		struct timespec ts = { 0, (long)(xt_rand(&rnd) % 2000000) };
		uint64_t before;
		int st;

		nanosleep(&ts, NULL);
		CHECK(kill(pid[victim], SIGKILL) == 0);
		CHECK(waitpid(pid[victim], &st, 0) == pid[victim]);
		CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		       "child %u ended on its own (status %#x): it found an error", victim, st);
		recover(q, victim);
		if (k % 16 == 15)
			reclaim(q, false);
		pid[victim] = spawn(victim);
		/* Survivors keep going: the system must make progress again. */
		before = __atomic_load_n(&sh->moves, __ATOMIC_RELAXED);
		while (__atomic_load_n(&sh->moves, __ATOMIC_RELAXED) < before + 20)
			sched_yield();
	}

	/* Stop everyone, settle every hold, then audit at quiescence. */
	for (uint32_t i = 0; i < NKIDS; i++) {
		CHECK(kill(pid[i], SIGKILL) == 0);
		CHECK(waitpid(pid[i], NULL, 0) == pid[i]);
	}
	for (uint32_t i = 0; i < NKIDS; i++)
		recover(q, i);
	reclaim(q, true);
	CHECK(sh->bad == 0);
	for (int w = 0; w < 2; w++) {
		uint32_t n = xq_scan(&q[w], count_fn, seen);

		/*
		 * xq_count() counts positions between head and tail, so a position
		 * whose producer was killed after its FAA on tail (its index was
		 * given back and queued again elsewhere) counts until consumers
		 * pass it: it may exceed the indices present, never fall below.
		 */
		CHECKF(xq_count(&q[w]) >= n, "queue %d: count %u < %u indices present",
		       w, xq_count(&q[w]), n);
		scanned += n;
	}
	for (uint32_t i = 0; i < NIDX; i++)
		CHECKF(seen[i] == 1, "index %u is in the queues %u times (%s)", i, seen[i],
		       seen[i] ? "duplicated" : "lost");
	CHECK(scanned == NIDX);
	printf("%ld kills, %" PRIu64 " moves; recovery: %u given back, %u already queued, "
	       "%u held nothing, %u stranded reclaimed\n",
	       kills, sh->moves, given_back, queued, nothing, stranded);
	CHECK(sh->moves > (uint64_t)kills * 20);
}

int main(void)
{
	xt_watchdog(300);
	RUN(test_kill);
	return 0;
}
