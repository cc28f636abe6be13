/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: children move indices between two queues in batches
 * (xq_dequeue_batch / xq_enqueue_batch, untracked: one FAA reserves a batch's
 * positions, one CAS per slot) while the parent SIGKILLs them at random
 * moments (XSEG_KILLS, default 300), so that kills land between a batch's
 * FAA and its last slot. Survivors must keep moving indices after every kill
 * (a batch abandoned half-way never stalls the others); no index is ever
 * delivered twice (each child marks what it holds in an owner word, and a
 * second holder finds the mark). Every ROUND kills the parent stops all
 * children and audits at quiescence: every index is in a queue at most once
 * and never also marked held, and the queues give back exactly what xq_scan
 * found in them. Untracked operations have no recovery, so the indices a
 * killed child was moving are missing; the audit puts them back for the
 * next round.
 */
#include <sched.h>
#include "xtest.h"
#include "xq/xq.h"

#define NIDX   48		/* indices in circulation */
#define CAP    64
#define NKIDS  3
#define BMAX   8		/* largest batch */
#define ROUND  4		/* kills between two audits at quiescence */

/*
 * A kill loses at most the indices its victim was moving (one batch); the
 * progress check after each kill needs some still in circulation, so a round
 * must not be able to lose them all (a slow build, e.g. TSan, lands more kills
 * inside batches: with 10 kills a round it lost every index and waited forever).
 */
_Static_assert((uint64_t)BMAX * ROUND < NIDX, "a round of kills could lose every index");

struct shared {
	uint64_t owner[NIDX];	/* 0, or the pid of the child holding the index */
	uint64_t moves __attribute__((aligned(64)));	/* batches moved, all children */
	uint64_t dup;		/* a second holder found */
	uint64_t bad;		/* an index out of range came out of a queue */
};

static struct shared *sh;
static void *qmem[2];
static size_t qsize;

static void attach(struct xq *q)
{
	for (int w = 0; w < 2; w++) {
		CHECK(xq_attach(&q[w], qmem[w], qsize, NIDX) == 0);
		xq_set_bounded(&q[w]);	/* NIDX <= CAP: never full */
	}
}

/* A child: take a batch from one queue, put it into the other, swap, forever. */
static void child(uint64_t seed)
{
	struct xq q[2];
	uint64_t me = (uint64_t)getpid(), rnd = seed;
	xq_index v[BMAX];
	unsigned idle = 0;
	int from = (int)(seed & 1);

	attach(q);
	for (;;) {
		uint32_t want = 1 + (uint32_t)(xt_rand(&rnd) % BMAX), n, i;

		n = xq_dequeue_batch(&q[from], v, want, xt_rand(&rnd) % 4 == 0);
		if (n == 0) {
			from ^= 1;
			/* Spin rather than yield, so that kills land inside the
			 * queue operations, not in a syscall. */
			if (++idle % 256 == 0)
				sched_yield();
			continue;
		}
		for (i = 0; i < n; i++) {
			uint64_t zero = 0;

			if (v[i] >= NIDX) {
				__atomic_fetch_add(&sh->bad, 1, __ATOMIC_RELAXED);
				continue;
			}
			if (!__atomic_compare_exchange_n(&sh->owner[v[i]], &zero, me, false,
							 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				__atomic_fetch_add(&sh->dup, 1, __ATOMIC_RELAXED);
		}
		/* Given up before they are queued again: a later holder may mark them. */
		for (i = 0; i < n; i++)
			if (v[i] < NIDX)
				__atomic_store_n(&sh->owner[v[i]], 0, __ATOMIC_RELEASE);
		if (xq_enqueue_batch(&q[from ^ 1], v, n, xt_rand(&rnd) % 2 == 0) != n)
			__atomic_fetch_add(&sh->bad, 1, __ATOMIC_RELAXED);	/* bounded: never full */
		__atomic_fetch_add(&sh->moves, 1, __ATOMIC_RELAXED);
		from ^= 1;
	}
}

static pid_t spawn(uint64_t seed)
{
	pid_t pid = xt_fork();

	if (pid == 0) {
		child(seed);
		_exit(0);
	}
	return pid;
}

static void count_fn(void *arg, xq_index idx)
{
	uint32_t *seen = arg;

	CHECKF(idx < NIDX, "index %u out of range in a queue", idx);
	seen[idx]++;
}

/*
 * At quiescence (every child killed): every index is in a queue at most
 * once and never also held; the queues give back exactly what they hold.
 * Returns how many were missing (held by a killed child, or lost with a
 * batch cut off between a slot CAS and the owner mark) and puts them back.
 */
static uint32_t audit(struct xq *q, uint32_t *present_out)
{
	uint32_t seen[NIDX] = { 0 }, drained[NIDX] = { 0 }, present = 0, missing = 0;
	xq_index v[BMAX];
	uint32_t n;

	CHECKF(sh->dup == 0, "%" PRIu64 " indices were delivered while another child held them",
	       sh->dup);
	CHECKF(sh->bad == 0, "%" PRIu64 " bad entries or refused enqueues", sh->bad);
	for (int w = 0; w < 2; w++)
		present += xq_scan(&q[w], count_fn, seen);
	for (uint32_t i = 0; i < NIDX; i++) {
		CHECKF(seen[i] <= 1, "index %u is in the queues %u times", i, seen[i]);
		CHECKF(!(seen[i] && sh->owner[i]), "index %u is queued and held by a dead child", i);
	}
	/* The queues give back exactly what they hold, in batches. */
	for (int w = 0; w < 2; w++)
		while ((n = xq_dequeue_batch(&q[w], v, BMAX, false)) > 0)
			for (uint32_t i = 0; i < n; i++) {
				CHECKF(v[i] < NIDX && seen[v[i]] == 1 && drained[v[i]] == 0,
				       "queue %d gave back %u, which it did not hold once", w, v[i]);
				drained[v[i]]++;
			}
	for (uint32_t i = 0; i < NIDX; i++) {
		CHECKF(drained[i] == seen[i], "index %u: scanned %u, dequeued %u", i, seen[i],
		       drained[i]);
		missing += !seen[i];
		/* Everything back in circulation for the next round. */
		sh->owner[i] = 0;
		CHECK(xq_enqueue(&q[0], i));
	}
	*present_out = present;
	return missing;
}

static void test_kill_batch(void)
{
	long kills = xt_env_long("XSEG_KILLS", 300), k = 0;
	uint64_t rnd = xt_seed(), missing = 0;
	pid_t pid[NKIDS];
	struct xq q[2];
	uint32_t rounds = 0, present = 0;

	sh = xt_shared(sizeof(*sh));
	qsize = xq_size(CAP);
	for (int w = 0; w < 2; w++)
		qmem[w] = xt_shared(qsize);
	CHECK(xq_init_seq(qmem[0], qsize, CAP, NIDX, 0) == 0);
	CHECK(xq_init_empty(qmem[1], qsize, CAP) == 0);
	attach(q);
	/* Rounds of ROUND kills, each ending in an audit at quiescence: without
	 * recovery, the indices lost with cut-off batches are put back there. */
	while (k < kills) {
		long round = kills - k < ROUND ? kills - k : ROUND, in_round;

		for (uint32_t i = 0; i < NKIDS; i++)
			pid[i] = spawn(xt_rand(&rnd));
		for (in_round = 0; in_round < round; in_round++, k++) {
			uint32_t victim = (uint32_t)(xt_rand(&rnd) % NKIDS);
			struct timespec ts = { 0, (long)(xt_rand(&rnd) % 2000000) };
			uint64_t before;
			int st;

			nanosleep(&ts, NULL);
			CHECK(kill(pid[victim], SIGKILL) == 0);
			CHECK(waitpid(pid[victim], &st, 0) == pid[victim]);
			CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
			       "child %u ended on its own (status %#x)", victim, st);
			pid[victim] = spawn(xt_rand(&rnd));
			/* The others keep going: a batch cut off half-way blocks nobody. */
			before = __atomic_load_n(&sh->moves, __ATOMIC_RELAXED);
			while (__atomic_load_n(&sh->moves, __ATOMIC_RELAXED) < before + 20) {
				/* A wrong answer fails now, not at the watchdog (lost
				 * indices would stop the children moving). */
				CHECKF(!__atomic_load_n(&sh->dup, __ATOMIC_RELAXED) &&
				       !__atomic_load_n(&sh->bad, __ATOMIC_RELAXED),
				       "%" PRIu64 " double deliveries, %" PRIu64 " bad entries or refused "
				       "enqueues", sh->dup, sh->bad);
				sched_yield();
			}
		}
		for (uint32_t i = 0; i < NKIDS; i++) {
			CHECK(kill(pid[i], SIGKILL) == 0);
			CHECK(waitpid(pid[i], NULL, 0) == pid[i]);
		}
		missing += audit(q, &present);
		rounds++;
	}
	printf("%ld kills in %u rounds, %" PRIu64 " batches moved; %" PRIu64 " indices were "
	       "held by killed children or lost with a cut-off batch (put back at each audit)\n",
	       kills, rounds, sh->moves, missing);
	CHECK(sh->moves > (uint64_t)kills * 20);
}

int main(void)
{
	xt_watchdog(300);
	RUN(test_kill_batch);
	return 0;
}
