/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xq/xq_inline.h - the untracked operations of xq as static inline functions,
 * for callers on a hot path that want them inlined into their loop (as DPDK's
 * rte_ring is): xq_enqueue_inline(), xq_dequeue_inline(),
 * xq_enqueue_batch_inline(), xq_dequeue_batch_inline(). They are the same
 * code as xq_enqueue() and friends (xq/xq.c defines those with these), with
 * the same contracts (see xq.h); a handle may mix both forms freely.
 *
 * Everything named xq__* or XQ__* here is internal: xq/xq.c shares it with
 * these inline functions and nothing else may call it.
 *
 * Vocabulary: a *position* is a free-running 64-bit ticket taken from head or
 * tail with FAA. Position p uses slot p & mask in lap ("cycle")
 * cyc(p) = (p >> order) mod 2^31. An entry is {cycle, safe, index}.
 */
#ifndef XQ_INLINE_H
#define XQ_INLINE_H

#include "xq.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XQ__CYC_BITS   31u
#define XQ__CYC_MASK   ((1ull << XQ__CYC_BITS) - 1)
#define XQ__SAFE_BIT   (1ull << 32)
#define XQ__IDX_MASK   0xFFFFFFFFull
/*
 * Bounds that only a corrupt or hostile segment can reach: a CAS on one word
 * that keeps failing (legitimately it fails at most once per concurrent
 * participant), and a catch-up that keeps losing. Past them an operation
 * reports full/empty instead of spinning.
 */
#define XQ__CAS_TRIES  4096u
#define XQ__SNAP_TRIES 4u

static inline uint64_t xq__cyc_of_pos(const struct xq *h, uint64_t pos)
{
	return (pos >> h->order) & XQ__CYC_MASK;
}

static inline uint64_t xq__e_cyc(uint64_t e) { return e >> 33; }
static inline uint32_t xq__e_idx(uint64_t e) { return (uint32_t)(e & XQ__IDX_MASK); }
static inline bool xq__e_safe(uint64_t e) { return (e & XQ__SAFE_BIT) != 0; }
static inline bool xq__idx_is_empty(uint32_t i) { return i > XQ_INDEX_MAX; }

static inline uint64_t xq__mk_entry(uint64_t cyc, bool safe, uint32_t idx)
{
	return (cyc << 33) | (safe ? XQ__SAFE_BIT : 0) | idx;
}

/* a < b for 31-bit cycles that wrap: the difference, read as signed, is negative. */
static inline bool xq__cyc_lt(uint64_t a, uint64_t b)
{
	return ((a - b) & XQ__CYC_MASK) >= (1ull << (XQ__CYC_BITS - 1));
}

/* a < b and a <= b for free-running 64-bit positions. */
static inline bool xq__pos_lt(uint64_t a, uint64_t b) { return (int64_t)(a - b) < 0; }
static inline bool xq__pos_le(uint64_t a, uint64_t b) { return (int64_t)(a - b) <= 0; }

/*
 * The slot of a position: consecutive positions use consecutive slots, as in
 * rte_ring, so a batch of 32 touches 4 cache lines, not 32 (layout version 2;
 * version 1 spread consecutive positions over 8 lines, see docs/xq.md).
 */
static inline uint64_t *xq__slot_of(const struct xq *h, uint64_t pos)
{
	return &h->slots[pos & h->mask];
}

/*
 * XQ__PREFETCHW - ask for the line of @p in the state a write needs
 * (exclusive), without waiting for it. A line the other CPU wrote last and
 * that we load and then CAS (a slot, an ownership word, tail after the room
 * check) otherwise moves twice: shared for the load, then once more to
 * invalidate the other copy for the locked write. GCC's
 * __builtin_prefetch(p, 1) emits a read prefetch (prefetcht0) unless the
 * target is built with -mprfchw, so x86 names the instruction; every x86-64
 * CPU executes it (those without PRFCHW as a NOP). A hint: no effect on what
 * the queue does.
 */
#if defined(__x86_64__) || defined(__i386__)
#define XQ__PREFETCHW(p) __asm__ volatile("prefetchw %0" : : "m"(*(const volatile char *)(p)))
#else
#define XQ__PREFETCHW(p) __builtin_prefetch((p), 1)
#endif

/*
 * Ask for the slot lines of positions [p, p + k) for writing before the
 * batch takes them one CAS at a time: a locked instruction cannot hide a
 * cache miss the way a plain store does (it waits for the line), so across
 * CPUs the 4 line transfers of a batch of 32 would otherwise come one after
 * the other. A hint only (GCC and Clang in every domain); no effect on what
 * the queue does.
 */
static inline void xq__prefetch_slots(const struct xq *h, uint64_t p, uint32_t k)
{
	uint32_t i;

	for (i = 0; i < k; i += 8)
		XQ__PREFETCHW(xq__slot_of(h, p + i));
	if (k > 1)
		XQ__PREFETCHW(xq__slot_of(h, p + k - 1));
}

/* ---------------------------------------------------------------- enqueue */

/*
 * Try to store @idx at position @t (taken from tail). Returns true if stored.
 * The slot accepts it if it is empty from an older lap and either safe or no
 * consumer has passed @t yet (SCQ's condition for an unsafe slot).
 */
static inline bool xq__put_at(struct xq *h, uint64_t t, uint32_t idx)
{
	uint64_t *slot = xq__slot_of(h, t);
	uint64_t tc = xq__cyc_of_pos(h, t);
	uint64_t e;
	unsigned tries;

	/* The CAS below writes the slot the consumer emptied last: fetch it
	 * once, for writing, rather than shared for this load and again. */
	XQ__PREFETCHW(slot);
	/* acquire: pairs with the release half of the consumer's CAS that emptied
	 * the slot, so our later store cannot be reordered before its read. */
	e = xq_load_acquire(slot);

	for (tries = 0; tries < XQ__CAS_TRIES; tries++) {
		if (!xq__cyc_lt(xq__e_cyc(e), tc) || !xq__idx_is_empty(xq__e_idx(e)))
			return false;
		/* acquire: a consumer that marked the slot unsafe published its head
		 * FAA before; seeing head <= t proves no consumer is at t yet. */
		if (!xq__e_safe(e) && !xq__pos_le(xq_load_acquire(&h->q->head), t))
			return false;
		/* release (acq_rel): the consumer that sees this entry must also see
		 * everything the producer wrote to the indexed object before. */
		if (XSEG_LIKELY(xq_cas(slot, &e, xq__mk_entry(tc, true, idx))))
			return true;
	}
	return false;
}

/* After a successful store, consumers may stop treating the queue as empty. */
static inline void xq__reset_threshold(struct xq *h)
{
	/* relaxed load + release store: a consumer that reads the new threshold
	 * must find the index we stored before it (stored by our acq_rel CAS). */
	if (XSEG_UNLIKELY(xq_load_relaxed(&h->q->threshold) != h->threshold))
		xq_store_release(&h->q->threshold, h->threshold);
}

/*
 * Read head and tail as one snapshot: the pair (hd, tl) such that, at the
 * moment head was read, tail was tl. Head and tail only grow, so a tail read
 * twice with the same value around the head load was that value throughout.
 * If tail keeps moving we settle for the last head and the tail read after
 * it, which can only overstate tail - head: room() then errs towards full
 * (never admits past the capacity) and xq_count() high (capped).
 * The two loads must not be written as the arguments of one call: C leaves
 * their order unspecified, and a compiler that loads tail first lets a thread
 * preempted between the loads see head past a stale tail.
 */
static inline void xq__snapshot(const struct xq *h, uint64_t *hd, uint64_t *tl)
{
	/* acquire on each: keeps the three loads in program order (a later
	 * load cannot move before an acquire load). */
	uint64_t t = xq_load_acquire(&h->q->tail), t2;
	unsigned tries;

	for (tries = 0; tries < XQ__SNAP_TRIES; tries++) {
		*hd = xq_load_acquire(&h->q->head);
		t2 = xq_load_acquire(&h->q->tail);
		if (t2 == t)
			break;
		t = t2;
	}
	*tl = t;
}

/* Places in use as seen at one instant (see xq__snapshot()), from head @hd. */
static inline int64_t xq__used_from(const struct xq *h, uint64_t *hd)
{
	/* acquire on both, head first: a head older than the tail can only
	 * overstate tail - head, so a room found here is real (never admits
	 * past the capacity). Only "full" is re-read as a snapshot, since a
	 * thread preempted between the loads may hold a head far behind. */
	uint64_t t = xq_load_acquire(&h->q->tail);
	int64_t used = (int64_t)(t - *hd);

	if (used >= (int64_t)h->capacity) {
		xq__snapshot(h, hd, &t);
		used = (int64_t)(t - *hd);
	}
	return used;
}

static inline uint64_t xq__room_of(const struct xq *h, int64_t used)
{
	if (used < 0)
		used = 0;
	return used >= (int64_t)h->capacity ? 0 : h->capacity - (uint64_t)used;
}

/*
 * Free places for an enqueue of @need. It starts from the head this handle
 * saw last (see struct xq): older than the shared one, so room found with it
 * is real and the consumers' line is not read. Only when that shows fewer
 * than @need places (or the copy is ahead of tail: from before a reset of
 * the queue) is head read afresh.
 */
static inline uint64_t xq__room(struct xq *h, uint32_t need)
{
	uint64_t hd = xq_load_relaxed(&h->seen_head);
	uint64_t t = xq_load_acquire(&h->q->tail);
	int64_t used = (int64_t)(t - hd);

	if (XSEG_LIKELY(used >= 0 && used < (int64_t)h->capacity &&
			h->capacity - (uint64_t)used >= need))
		return h->capacity - (uint64_t)used;
	hd = xq_load_acquire(&h->q->head);
	used = xq__used_from(h, &hd);
	xq_store_relaxed(&h->seen_head, hd);
	return xq__room_of(h, used);
}

/*
 * Enqueue with an optional hold: when @hold is set, the position is recorded
 * in it (release) right after the FAA, before the CAS that publishes the index.
 */
static inline bool xq__enqueue_one(struct xq *h, uint32_t idx, struct xq_hold *hold)
{
	uint64_t tries;

	/*
	 * A position is refused only by a slot still holding an index from an
	 * older lap or by consumers that passed it; a whole lap of refusals in a
	 * row means the queue is full of holes or corrupt: report full.
	 */
	for (tries = 0; tries <= h->mask; tries++) {
		uint64_t t;

		/* Tail is read by the room check, then written by the FAA; the
		 * slot of the position we expect is written next. Ask for all
		 * for writing at once, so the transfers overlap. */
		XQ__PREFETCHW(&h->q->tail);
		XQ__PREFETCHW(xq__slot_of(h, xq_load_relaxed(&h->next_tail)));
		if (!h->bounded && xq__room(h, 1) == 0)
			return false;
		/* acq_rel FAA: positions are unique; nothing else is ordered by it. */
		t = xq_faa(&h->q->tail, 1);
		xq_store_relaxed(&h->next_tail, t + 1);
		if (hold)
			xq_store_release(&hold->pos, t);
		if (XSEG_LIKELY(xq__put_at(h, t, idx))) {
			xq__reset_threshold(h);
			return true;
		}
	}
	return false;
}

static inline bool xq_enqueue_inline(struct xq *h, xq_index idx)
{
	if (XSEG_UNLIKELY(idx > XQ_INDEX_MAX))
		return false;
	return xq__enqueue_one(h, idx, (struct xq_hold *)0);
}

static inline uint32_t xq_enqueue_batch_inline(struct xq *h, const xq_index *v, uint32_t n, bool all)
{
	uint64_t r, t;
	uint32_t k, i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (XSEG_UNLIKELY(v[i] > XQ_INDEX_MAX))
			return 0;
	r = h->bounded ? n : xq__room(h, n);
	if (r < n && (all || r == 0))
		return 0;
	k = r < n ? (uint32_t)r : n;
	/* One FAA reserves k consecutive positions; each slot still takes its
	 * own CAS (a consumer of the same lap may be closing it, see docs/xq.md). */
	t = xq_faa(&h->q->tail, k);
	xq__prefetch_slots(h, t, k);
	for (i = 0; i < k; i++)
		if (XSEG_UNLIKELY(!xq__put_at(h, t + i, v[i])))
			break;
	if (i > 0)
		xq__reset_threshold(h);
	/* A slot that refused us: the rest of our positions are abandoned (the
	 * consumers skip them) and the remainder goes one by one, in order. */
	for (; i < k; i++)
		if (!xq__enqueue_one(h, v[i], (struct xq_hold *)0))
			break;
	return i;
}

/* ---------------------------------------------------------------- dequeue */

/*
 * Move tail up to @head after consumers overran it, so that producers do not
 * fill positions nobody will visit. Gives up as soon as tail >= head.
 */
static inline void xq__catchup(struct xq *h, uint64_t tail, uint64_t head)
{
	unsigned tries = 0;

	while (!xq_cas(&h->q->tail, &tail, head) && ++tries < XQ__CAS_TRIES) {
		head = xq_load_acquire(&h->q->head);
		tail = xq_load_acquire(&h->q->tail);
		if (!xq__pos_lt(tail, head))
			break;
	}
}

enum xq__take { XQ__TAKE_GOT, XQ__TAKE_EMPTY, XQ__TAKE_BAD, XQ__TAKE_MINE };

/*
 * Tracked consumers hand an entry of their lap to this (xq.c's claim step);
 * the untracked inline paths pass none. Returns an enum xq__take.
 */
typedef enum xq__take (*xq__claim_fn)(struct xq *h, struct xq_track *tr, struct xq_hold *hold,
				      uint64_t *slot, uint64_t pos, uint64_t *e);

/*
 * The consumer of position @p: take the index stored for @p, or make sure no
 * producer stores one there later. With @claim (tracked), an entry of our lap
 * naming an index the track owns is taken by it; it returns XQ__TAKE_MINE to
 * have the entry looked at again (it changed under it).
 */
static inline enum xq__take xq__take_at(struct xq *h, uint64_t p, uint32_t *out,
					xq__claim_fn claim, struct xq_track *tr,
					struct xq_hold *hold)
{
	uint64_t *slot = xq__slot_of(h, p);
	uint64_t pc = xq__cyc_of_pos(h, p);
	uint64_t e;
	unsigned tries;

	/* Nearly every way out below writes the slot (taken or closed). */
	XQ__PREFETCHW(slot);
	/* acquire: pairs with the producer's release CAS, so the indexed object
	 * is visible to us once we see its index. */
	e = xq_load_acquire(slot);

	for (tries = 0; tries < XQ__CAS_TRIES; tries++) {
		uint64_t ne;
		uint32_t idx = xq__e_idx(e);

		if (XSEG_LIKELY(xq__e_cyc(e) == pc && !xq__idx_is_empty(idx))) {
			if (claim && idx < tr->nindices && idx < h->limit) {
				enum xq__take c = claim(h, tr, hold, slot, p, &e);

				if (c == XQ__TAKE_MINE)
					continue;	/* the entry changed: look again */
				if (c == XQ__TAKE_GOT)
					*out = idx;
				return c;
			}
			/* Untracked, or an index no tracked peer can own (corrupt).
			 * acq_rel: only one CAS turns this entry into a taken mark. */
			if (XSEG_UNLIKELY(!xq_cas(slot, &e, xq__mk_entry(pc, xq__e_safe(e), XQ_TAKEN))))
				continue;	/* taken by a reclaimer, or the safe bit changed */
			if (XSEG_UNLIKELY(idx >= h->limit || claim)) {
				h->corrupt++;
				return XQ__TAKE_BAD;
			}
			*out = idx;
			return XQ__TAKE_GOT;
		}
		if (!xq__cyc_lt(xq__e_cyc(e), pc))
			return XQ__TAKE_EMPTY;	/* already at or past our lap */
		if (xq__idx_is_empty(idx))
			ne = xq__mk_entry(pc, xq__e_safe(e), XQ_NONE);	/* close it for lap pc */
		else
			ne = xq__mk_entry(xq__e_cyc(e), false, idx);	/* an older lap's index: unsafe */
		/* acq_rel: a producer that later loads this slot sees our lap. */
		if (xq_cas(slot, &e, ne))
			return XQ__TAKE_EMPTY;
	}
	return XQ__TAKE_BAD;	/* a slot that never settles: corrupt */
}

static inline uint32_t xq__dequeue_one(struct xq *h, xq__claim_fn claim, struct xq_track *tr,
				       struct xq_hold *hold)
{
	struct xq_layout *q = h->q;
	uint64_t tries;

	/* acquire: pairs with xq__reset_threshold()'s release. */
	if ((int64_t)xq_load_acquire(&q->threshold) < 0)
		return XQ_NONE;
	/*
	 * SCQ bounds the failed positions of a dequeue by the shared threshold;
	 * a corrupt segment may hold any threshold, so we also bound them by the
	 * legitimate maximum ourselves.
	 */
	for (tries = 0; tries <= h->threshold; tries++) {
		uint64_t hp, t;
		uint32_t idx;
		enum xq__take r;

		/*
		 * Fast empty check without writing head: no position is waiting.
		 * Head first, then tail (acquire keeps them in that order): tail
		 * read after head was current while head could only have grown
		 * since, so head >= tail held at the moment tail was read and the
		 * empty answer is true at that instant. In the other order a
		 * consumer preempted between the loads compares a fresh head with
		 * a stale tail and reports empty with the queue full.
		 */
		hp = xq_load_acquire(&q->head);
		t = xq_load_relaxed(&h->seen_tail);
		/* The tail this handle saw last (see struct xq): work it shows is
		 * there (tail only grows). Else, or if the copy is implausibly far
		 * ahead (from before a reset), read tail afresh, after head. */
		if (!xq__pos_lt(hp, t) || t - hp > h->mask + 1) {
			t = xq_load_acquire(&q->tail);
			xq_store_relaxed(&h->seen_tail, t);
			if (!xq__pos_lt(hp, t))
				return XQ_NONE;
		}
		/* Work is there: the slot at head is the one we will most
		 * likely take (and write, taking or closing it). */
		XQ__PREFETCHW(xq__slot_of(h, hp));
		hp = xq_faa(&q->head, 1);
		r = xq__take_at(h, hp, &idx, claim, tr, hold);
		if (XSEG_LIKELY(r == XQ__TAKE_GOT))
			return idx;
		if (r == XQ__TAKE_BAD)
			continue;
		t = xq_load_acquire(&q->tail);
		if (xq__pos_le(t, hp + 1)) {
			xq__catchup(h, t, hp + 1);
			xq_faa(&q->threshold, (uint64_t)-1);
			return XQ_NONE;
		}
		if ((int64_t)xq_faa(&q->threshold, (uint64_t)-1) <= 0)
			return XQ_NONE;
	}
	return XQ_NONE;
}

static inline xq_index xq_dequeue_inline(struct xq *h)
{
	return xq__dequeue_one(h, (xq__claim_fn)0, (struct xq_track *)0, (struct xq_hold *)0);
}

static inline uint32_t xq_dequeue_batch_inline(struct xq *h, xq_index *v, uint32_t n, bool all)
{
	struct xq_layout *q = h->q;
	uint64_t t, hp, avail;
	uint32_t k, i, got = 0;

	if (n == 0)
		return 0;
	/*
	 * Head first, then the tail this handle saw last (work it shows is
	 * there); only if that shows fewer than n is tail read afresh, after
	 * head (acquire keeps the order). A head that went stale while we were
	 * preempted between the loads overstates what is there: we then take
	 * positions that hold nothing yet and return fewer (never lose one).
	 */
	hp = xq_load_acquire(&q->head);
	t = xq_load_relaxed(&h->seen_tail);
	avail = xq__pos_lt(hp, t) && t - hp <= h->mask + 1 ? t - hp : 0;
	if (avail < n) {
		t = xq_load_acquire(&q->tail);
		xq_store_relaxed(&h->seen_tail, t);
		avail = xq__pos_lt(hp, t) ? t - hp : 0;
	}
	if (avail < n && (all || avail == 0)) {
		if (all)
			return 0;
		/* Nothing visible: one ordinary dequeue keeps SCQ's threshold logic. */
		v[0] = xq_dequeue_inline(h);
		return v[0] == XQ_NONE ? 0 : 1;
	}
	k = avail < n ? (uint32_t)avail : n;
	hp = xq_faa(&q->head, k);
	xq__prefetch_slots(h, hp, k);
	for (i = 0; i < k; i++) {
		uint32_t idx;

		if (XSEG_LIKELY(xq__take_at(h, hp + i, &idx, (xq__claim_fn)0, (struct xq_track *)0,
					    (struct xq_hold *)0) == XQ__TAKE_GOT))
			v[got++] = idx;
	}
	/* Every position gave an index: producers stored at all of them, so
	 * tail is past them and there is nothing to catch up. */
	if (XSEG_UNLIKELY(got < k)) {
		t = xq_load_acquire(&q->tail);
		if (xq__pos_le(t, hp + k))
			xq__catchup(h, t, hp + k);
		/*
		 * Every position we took was abandoned (its producer was refused
		 * or killed after its FAA): indices may still wait behind them,
		 * and 0 would read as "empty". One ordinary dequeue goes on past
		 * such positions, under SCQ's threshold.
		 */
		if (got == 0) {
			v[0] = xq_dequeue_inline(h);
			return v[0] == XQ_NONE ? 0 : 1;
		}
	}
	return got;
}

#ifdef __cplusplus
}
#endif

#endif
