/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xq/xq.h - a strictly lock-free MPMC FIFO of 32-bit indices in shared memory.
 *
 * The algorithm is SCQ (Nikolaev, "A Scalable, Portable, and Memory-Efficient
 * Lock-Free FIFO Queue", DISC 2019): FAA on head and tail, one single-width
 * CAS per slot. No operation ever waits for another participant: a thread or
 * process stopped or killed at any instruction cannot block the others. See
 * docs/xq.md for the design, the orderings and the recovery protocol.
 *
 * Usage: the memory (struct xq_layout) lives in a segment; every participant
 * builds its own local handle (struct xq) with xq_attach(), which validates
 * the header once and copies out the geometry, so a corrupt or hostile header
 * can never make an operation touch memory outside the queue.
 *
 * All functions may be called from any domain and never sleep. Full and empty
 * are values, never errors: enqueue returns false, dequeue returns XQ_NONE.
 */
#ifndef XQ_H
#define XQ_H

#include "xq_layout.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef uint32_t xq_index;

#define XQ_NONE       0xFFFFFFFFu	/* "no index": empty queue, empty slot */
#define XQ_TAKEN      0xFFFFFFFEu	/* slot consumed by an untracked dequeue */
#define XQ_TAKEN_BY(k) (0xFFFF0000u + (k))	/* slot consumed by hold k (k < XQ_MAX_HOLDS) */
#define XQ_MAX_HOLDS  0xFFFEu
#define XQ_INDEX_MAX  0xFFFEFFFFu	/* largest index a queue can carry */
#define XQ_MAX_ORDER  30u		/* at most 2^30 slots */

/* A participant's local view of a queue. Build with xq_attach(). */
struct xq {
	struct xq_layout *q;
	uint64_t *slots;
	uint32_t order;		/* log2(nslots), copied out and validated */
	uint32_t capacity;
	uint64_t mask;		/* nslots - 1 */
	uint64_t threshold;	/* 3 * nslots / 2 - 1 */
	uint32_t limit;		/* indices >= limit are rejected on dequeue */
	uint32_t corrupt;	/* count of rejected (out of range) entries seen */
	uint32_t bounded;	/* see xq_set_bounded() */
	uint32_t pad;
	/*
	 * The other side's counter as this participant last read it (relaxed
	 * atomics: threads may share a handle). Head and tail only grow, so a
	 * stale copy errs the safe way: a producer's old head overstates what
	 * is queued (room found with it is real), a consumer's old tail
	 * understates what was produced (work found with it is real). Only
	 * when the copy says "full" or "empty" is the shared line read again,
	 * so a producer and a consumer that keep up with each other stop
	 * pulling each other's counter line on every call.
	 */
	uint64_t seen_head;	/* producers: head at the last look */
	uint64_t seen_tail;	/* consumers: tail at the last look */
	/* producers: the position after this handle's last enqueue, a guess
	 * of the next one's slot to fetch it early (only ever a hint) */
	uint64_t next_tail;
};

/*
 * xq_size - bytes needed for a queue of @capacity indices (a power of two,
 * 1 .. 2^27). Returns 0 if @capacity is not valid.
 */
size_t xq_size(uint32_t capacity);

/*
 * xq_init_empty / xq_init_seq / xq_init_map - format @size bytes at @mem as a
 * queue of @capacity indices. _seq fills it with first, first+1, ...,
 * first+count-1; _map with map[0..count-1]. Returns 0, or -EINVAL (bad
 * capacity, @size too small, count > capacity, an index > XQ_INDEX_MAX).
 * Call before the memory is shared; not concurrently with anything else.
 */
int xq_init_empty(void *mem, size_t size, uint32_t capacity);
int xq_init_seq(void *mem, size_t size, uint32_t capacity, uint32_t count, xq_index first);
int xq_init_map(void *mem, size_t size, uint32_t capacity, const xq_index *map, uint32_t count);
/* As xq_init_empty, with head and tail starting at @start: for wraparound tests. */
int xq_init_at(void *mem, size_t size, uint32_t capacity, uint64_t start);

/*
 * xq_attach - validate the queue header at @mem (@size bytes available) and
 * fill the local handle @h. Dequeued entries >= @limit are treated as corrupt
 * and skipped (pass XQ_INDEX_MAX + 1 for no limit). Returns 0, or -EINVAL
 * with @h untouched if the header is not a valid queue fitting in @size.
 */
int xq_attach(struct xq *h, void *mem, size_t size, uint32_t limit);

/*
 * xq_set_bounded - the caller guarantees that at most capacity distinct
 * indices ever move through this queue (e.g. a free list of capacity >= the
 * number of objects), so it can never be full: enqueue skips the full check.
 * Without it, the full check compares tail - head with the capacity, which
 * also counts positions abandoned by producers until consumers pass them; so
 * in the general mode a queue can report full while holding a few indices
 * fewer than its capacity (never more than its capacity).
 */
void xq_set_bounded(struct xq *h);

/* xq_enqueue - append @idx. Returns false if the queue is full (or @idx is invalid). */
bool xq_enqueue(struct xq *h, xq_index idx);

/* xq_dequeue - remove the oldest index. Returns it, or XQ_NONE if empty. */
xq_index xq_dequeue(struct xq *h);

/*
 * xq_enqueue_batch - append v[0..n-1] in order. @all: all-or-nothing (returns
 * 0 unless n places are free when it starts); otherwise best-effort (as many
 * as fit). Returns how many were enqueued (a prefix of v).
 */
uint32_t xq_enqueue_batch(struct xq *h, const xq_index *v, uint32_t n, bool all);

/*
 * xq_dequeue_batch - remove up to @n oldest indices into v, in order. @all:
 * takes nothing unless n indices are visible when it starts; it can still
 * return fewer if a producer it overtook had not yet stored its index (that
 * index is not lost: its producer places it later) - waiting for that producer
 * instead would break lock-freedom. If every position it reserved was
 * abandoned (by a producer refused or killed after taking it), it goes on as
 * one xq_dequeue(), so 0 means empty as it does there. Returns how many were
 * dequeued.
 */
uint32_t xq_dequeue_batch(struct xq *h, xq_index *v, uint32_t n, bool all);

/*
 * xq_count - how many positions are waiting between head and tail, read at
 * one instant (never above capacity): the indices the queue holds plus any
 * position a producer abandoned that consumers have not passed yet (its slot
 * refused it, or the producer was killed after taking it). So it is an upper
 * bound of the indices present; xq_scan() counts them exactly at quiescence.
 */
uint32_t xq_count(const struct xq *h);

static inline uint32_t xq_capacity(const struct xq *h) { return h->capacity; }

/*
 * xq_scan - call @fn(arg, idx) for every index in the queue, oldest first.
 * Exact only while no operation is in progress (audits, tests, recovery at
 * quiescence). Returns the number of indices visited.
 */
uint32_t xq_scan(const struct xq *h, void (*fn)(void *arg, xq_index idx), void *arg);

/*
 * xq_stale - how many slots hold an index for a position head has already
 * passed: stranded by a consumer that died (xq_reclaim_stranded takes them)
 * or written by a corrupt peer. Read-only; a take in progress may be counted.
 */
uint32_t xq_stale(const struct xq *h);

/* ---------------------------------------------------------------------------
 * Tracked operations and recovery.
 *
 * Plain operations are enough while nobody dies. When a participant can be
 * killed mid-operation, the index it was moving would be lost; tracked
 * operations record each step in the participant's hold record so that a
 * recoverer can later give the index back exactly once. A group of queues
 * that move the same indices (e.g. a free list and a work queue) shares one
 * struct xq_track: an ownership word per index and the table of all holds.
 * Taking an index out of a slot is decided by one CAS on its ownership word
 * (a claim), which recovery reads; see docs/xq.md. Queues with a track must
 * be used with tracked operations only.
 * ------------------------------------------------------------------------- */

enum {
	XQ_HOLD_NONE = 0,	/* holds nothing */
	XQ_HOLD_ENQ = 1,	/* enqueuing index at pos (pos == XQ_POS_NONE: not yet placed) */
	XQ_HOLD_DEQ = 2,	/* taking index from slot of pos */
	XQ_HOLD_HELD = 3,	/* owns index, outside every queue */
	XQ_HOLD_CLAIMED = 0x80,	/* a recoverer claimed this (dead) hold */
};
#define XQ_POS_NONE 0xFFFFFFFFFFFFFFFFull

struct xq_track {
	uint64_t *gen;		/* gen[nindices]: ownership words {claim count, claimer} */
	uint32_t nindices;
	struct xq_hold *holds;	/* every participant's hold record */
	uint32_t nholds;
	/*
	 * Optional (zero: none): the objects indices [0, nobjs) name, at
	 * objs + idx * obj_size. A claim asks for the first @obj_hot bytes of
	 * its object for writing, so their transfer overlaps the claim's own
	 * (the taker reads and writes them next). Only ever a hint.
	 */
	void *objs;
	uint32_t obj_size, nobjs, obj_hot;
};

/*
 * xq_enqueue_tracked - enqueue the index held in @hold (state HELD) into @h,
 * identified by @qid. On success the hold becomes NONE and true is returned;
 * on a full queue the hold stays HELD and false is returned.
 */
bool xq_enqueue_tracked(struct xq *h, uint64_t qid, struct xq_track *tr, struct xq_hold *hold);

/*
 * xq_dequeue_tracked - dequeue into @hold (which must be NONE). Returns the
 * index (the hold becomes HELD) or XQ_NONE.
 */
xq_index xq_dequeue_tracked(struct xq *h, uint64_t qid, struct xq_track *tr, struct xq_hold *hold);

/* xq_hold_take / xq_hold_drop - start holding @idx (NONE -> HELD) / stop (HELD -> NONE). */
void xq_hold_take(struct xq_track *tr, struct xq_hold *hold, xq_index idx);
void xq_hold_drop(struct xq_hold *hold);

/*
 * xq_hold_unclaim - @hold (HELD) took an index out of a slot that turned out
 * to be a corrupt duplicate (the index's genuine entry is elsewhere, e.g. in a
 * free list): stop holding it and give its ownership word back unclaimed, so
 * the genuine entry can still be taken. A plain xq_hold_drop() would leave the
 * word claimed and strand the genuine entry for good. For recovery of corrupt
 * queues only.
 */
void xq_hold_unclaim(struct xq_track *tr, struct xq_hold *hold);

/* What recovery decided about a dead participant's hold. */
enum xq_recovery {
	XQ_REC_NOTHING = 0,	/* it held nothing */
	XQ_REC_QUEUED = 1,	/* its index is (or was) in a queue: nothing to give back */
	XQ_REC_GIVEN = 2,	/* its index is now held by the recoverer's hold */
};

/*
 * xq_hold_queue - the qid and state of a (dead) hold, so the recoverer can
 * find the queue to pass to xq_recover_hold(). Returns the state.
 */
unsigned xq_hold_state(const struct xq_hold *hold, uint64_t *qid);

/*
 * xq_recover_hold - settle the hold @dead of a participant that is known to
 * be dead. @h is the queue named by the hold's qid (may be NULL if the state
 * is NONE or HELD). @mine is the recoverer's own hold (NONE on entry); on
 * XQ_REC_GIVEN it holds the index (HELD), which the caller passes on, e.g.
 * with xq_enqueue_tracked(). Idempotent: if the recoverer itself dies, running
 * it again (from another recoverer) neither loses nor duplicates the index.
 * Callers serialize recoveries of the same dead hold. Returns enum xq_recovery,
 * or -EINVAL if the hold is corrupt (out-of-range index or state).
 */
int xq_recover_hold(struct xq *h, struct xq_track *tr, struct xq_hold *dead,
		    struct xq_hold *mine, uint32_t mine_id);

/*
 * xq_reclaim_stranded - take one index whose position's consumer took the
 * position (head passed it) more than @lag positions ago but never removed it
 * (it died between its FAA on head and recording its hold). The index is
 * taken into @mine (NONE on entry; HELD on return) with the same claim a
 * consumer uses, so a slow but live consumer simply finds it claimed and moves
 * on (that one index then leaves FIFO order). Returns the index, or XQ_NONE
 * when there is none. Call in a loop, passing each index on.
 */
xq_index xq_reclaim_stranded(struct xq *h, struct xq_track *tr, uint64_t lag,
			     struct xq_hold *mine);

#ifdef __cplusplus
}
#endif

#endif
