/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xq/xq.c - SCQ-based lock-free queue of indices (see xq.h, docs/xq.md).
 *
 * Vocabulary: a *position* is a free-running 64-bit ticket taken from head or
 * tail with FAA. Position p uses slot remap(p & mask) in lap ("cycle")
 * cyc(p) = (p >> order) mod 2^31. An entry is {cycle, safe, index}.
 *
 * The queue has nslots = 2^order slots but admits at most capacity <= nslots/4
 * indices (checked on enqueue against tail - head). SCQ needs at most
 * nslots/2 indices present for its livelock bound; the extra nslots/4 of room
 * absorbs producers that race past the full check together.
 */
#include "xq.h"

#define CYC_BITS   31u
#define CYC_MASK   ((1ull << CYC_BITS) - 1)
#define SAFE_BIT   (1ull << 32)
#define IDX_MASK   0xFFFFFFFFull
#define MIN_ORDER  8u
/*
 * Bounds that only a corrupt or hostile segment can reach: a CAS on one word
 * that keeps failing (legitimately it fails at most once per concurrent
 * participant), and a catch-up that keeps losing. Past them an operation
 * reports full/empty instead of spinning.
 */
#define CAS_TRIES  4096u

static inline uint64_t cyc_of_pos(const struct xq *h, uint64_t pos)
{
	return (pos >> h->order) & CYC_MASK;
}

static inline uint64_t e_cyc(uint64_t e) { return e >> 33; }
static inline uint32_t e_idx(uint64_t e) { return (uint32_t)(e & IDX_MASK); }
static inline bool e_safe(uint64_t e) { return (e & SAFE_BIT) != 0; }
static inline bool idx_is_empty(uint32_t i) { return i > XQ_INDEX_MAX; }

/* The taken marker of a hold: which hold record's CAS consumed the entry. */
static inline uint32_t taken_mark(const struct xq_track *tr, const struct xq_hold *hold)
{
	if (!tr || !hold)
		return XQ_TAKEN;
	return XQ_TAKEN_BY((uint32_t)(hold - tr->holds));
}

static inline uint64_t mk_entry(uint64_t cyc, bool safe, uint32_t idx)
{
	return (cyc << 33) | (safe ? SAFE_BIT : 0) | idx;
}

/* a < b for 31-bit cycles that wrap: the difference, read as signed, is negative. */
static inline bool cyc_lt(uint64_t a, uint64_t b)
{
	return ((a - b) & CYC_MASK) >= (1ull << (CYC_BITS - 1));
}

/* a < b and a <= b for free-running 64-bit positions. */
static inline bool pos_lt(uint64_t a, uint64_t b) { return (int64_t)(a - b) < 0; }
static inline bool pos_le(uint64_t a, uint64_t b) { return (int64_t)(a - b) <= 0; }

/*
 * Consecutive positions go to different cache lines (8 entries per line), so
 * producers and consumers working on neighbouring positions do not share a
 * line. A bijection on [0, nslots).
 */
static inline uint64_t *slot_of(const struct xq *h, uint64_t pos)
{
	uint64_t j = pos & h->mask;
	uint64_t s = ((j & 7u) << (h->order - 3)) | (j >> 3);
	return &h->slots[s];
}

static uint32_t order_for(uint32_t capacity)
{
	uint32_t o = 0;

	while ((1u << o) < capacity)
		o++;
	o += 2;
	return o < MIN_ORDER ? MIN_ORDER : o;
}

static bool capacity_ok(uint32_t capacity)
{
	return capacity >= 1 && (capacity & (capacity - 1)) == 0 &&
	       order_for(capacity) <= XQ_MAX_ORDER;
}

size_t xq_size(uint32_t capacity)
{
	if (!capacity_ok(capacity))
		return 0;
	return XQ_HDR_SIZE + ((size_t)1 << order_for(capacity)) * sizeof(uint64_t);
}

int xq_init_at(void *mem, size_t size, uint32_t capacity, uint64_t start)
{
	struct xq_layout *q = mem;
	uint32_t order;
	uint64_t n, i, cyc;

	if (!mem || !capacity_ok(capacity) || size < xq_size(capacity))
		return -EINVAL;
	order = order_for(capacity);
	n = 1ull << order;
	xseg_memset(q, 0, XQ_HDR_SIZE);
	q->magic = XQ_MAGIC;
	q->version = XQ_LAYOUT_VERSION;
	q->order = order;
	q->capacity = capacity;
	/* Every slot starts one lap behind the first position it will serve. */
	cyc = ((start >> order) - 1) & CYC_MASK;
	for (i = 0; i < n; i++)
		q->slots[i] = mk_entry(cyc, true, XQ_NONE);
	q->tail = start;
	q->head = start;
	q->threshold = (uint64_t)(int64_t)-1;	/* empty: dequeue returns at once */
	/* Publishing the memory to other participants is the caller's release. */
	return 0;
}

int xq_init_empty(void *mem, size_t size, uint32_t capacity)
{
	return xq_init_at(mem, size, capacity, 1ull << order_for(capacity ? capacity : 1));
}

int xq_init_map(void *mem, size_t size, uint32_t capacity, const xq_index *map, uint32_t count)
{
	struct xq h;
	uint32_t i;
	int r;

	if (count > capacity || (count && !map))
		return -EINVAL;
	for (i = 0; i < count; i++)
		if (map[i] > XQ_INDEX_MAX)
			return -EINVAL;
	r = xq_init_empty(mem, size, capacity);
	if (r)
		return r;
	r = xq_attach(&h, mem, size, XQ_INDEX_MAX + 1u);
	if (r)
		return r;
	for (i = 0; i < count; i++)
		if (!xq_enqueue(&h, map[i]))
			return -EINVAL;
	return 0;
}

int xq_init_seq(void *mem, size_t size, uint32_t capacity, uint32_t count, xq_index first)
{
	struct xq h;
	uint32_t i;
	int r;

	if (count > capacity || (count && (uint64_t)first + count - 1 > XQ_INDEX_MAX))
		return -EINVAL;
	r = xq_init_empty(mem, size, capacity);
	if (r)
		return r;
	r = xq_attach(&h, mem, size, XQ_INDEX_MAX + 1u);
	if (r)
		return r;
	for (i = 0; i < count; i++)
		if (!xq_enqueue(&h, first + i))
			return -EINVAL;
	return 0;
}

int xq_attach(struct xq *h, void *mem, size_t size, uint32_t limit)
{
	const struct xq_layout *q = mem;
	uint32_t magic, version, order, capacity;

	if (!h || !mem || size < XQ_HDR_SIZE)
		return -EINVAL;
	/* Copy each field out once; only the copies are checked and used. */
	magic = __atomic_load_n(&q->magic, __ATOMIC_RELAXED);
	version = __atomic_load_n(&q->version, __ATOMIC_RELAXED);
	order = __atomic_load_n(&q->order, __ATOMIC_RELAXED);
	capacity = __atomic_load_n(&q->capacity, __ATOMIC_RELAXED);
	if (magic != XQ_MAGIC || version != XQ_LAYOUT_VERSION)
		return -EINVAL;
	if (!capacity_ok(capacity) || order != order_for(capacity))
		return -EINVAL;
	if ((size - XQ_HDR_SIZE) / sizeof(uint64_t) < (1ull << order))
		return -EINVAL;
	h->q = mem;
	h->slots = ((struct xq_layout *)mem)->slots;
	h->order = order;
	h->capacity = capacity;
	h->mask = (1ull << order) - 1;
	h->threshold = 3 * ((1ull << order) / 2) - 1;
	h->limit = limit;
	h->corrupt = 0;
	h->bounded = 0;
	h->pad = 0;
	h->seen_head = xq_load_acquire(&((struct xq_layout *)mem)->head);
	h->seen_tail = xq_load_acquire(&((struct xq_layout *)mem)->tail);
	return 0;
}

void xq_set_bounded(struct xq *h)
{
	h->bounded = 1;
}

/* ---------------------------------------------------------------- enqueue */

/*
 * Try to store @idx at position @t (taken from tail). Returns true if stored.
 * The slot accepts it if it is empty from an older lap and either safe or no
 * consumer has passed @t yet (SCQ's condition for an unsafe slot).
 */
static bool put_at(struct xq *h, uint64_t t, uint32_t idx)
{
	uint64_t *slot = slot_of(h, t);
	uint64_t tc = cyc_of_pos(h, t);
	/* acquire: pairs with the release half of the consumer's CAS that emptied
	 * the slot, so our later store cannot be reordered before its read. */
	uint64_t e = xq_load_acquire(slot);
	unsigned tries;

	for (tries = 0; tries < CAS_TRIES; tries++) {
		if (!cyc_lt(e_cyc(e), tc) || !idx_is_empty(e_idx(e)))
			return false;
		/* acquire: a consumer that marked the slot unsafe published its head
		 * FAA before; seeing head <= t proves no consumer is at t yet. */
		if (!e_safe(e) && !pos_le(xq_load_acquire(&h->q->head), t))
			return false;
		/* release (acq_rel): the consumer that sees this entry must also see
		 * everything the producer wrote to the indexed object before. */
		if (xq_cas(slot, &e, mk_entry(tc, true, idx)))
			return true;
	}
	return false;
}

/* After a successful store, consumers may stop treating the queue as empty. */
static inline void reset_threshold(struct xq *h)
{
	/* relaxed load + release store: a consumer that reads the new threshold
	 * must find the index we stored before it (stored by our acq_rel CAS). */
	if (xq_load_relaxed(&h->q->threshold) != h->threshold)
		xq_store_release(&h->q->threshold, h->threshold);
}

/*
 * Read head and tail as one snapshot: the pair (hd, tl) such that, at the
 * moment head was read, tail was tl. Head and tail only grow, so a tail read
 * twice with the same value around the head load was that value throughout.
 * If tail keeps moving we settle for the last head and the tail read after
 * it, which can only overstate tail - head: room() then errs towards full
 * (never admits past the capacity), xq_count() high (capped), and a batch
 * dequeue takes positions that hold nothing yet (it returns fewer).
 * The two loads must not be written as the arguments of one call: C leaves
 * their order unspecified, and a compiler that loads tail first lets a thread
 * preempted between the loads see head past a stale tail.
 */
#define SNAP_TRIES 4u
static inline void snapshot(const struct xq *h, uint64_t *hd, uint64_t *tl)
{
	/* acquire on each: keeps the three loads in program order (a later
	 * load cannot move before an acquire load). */
	uint64_t t = xq_load_acquire(&h->q->tail), t2;
	unsigned tries;

	for (tries = 0; tries < SNAP_TRIES; tries++) {
		*hd = xq_load_acquire(&h->q->head);
		t2 = xq_load_acquire(&h->q->tail);
		if (t2 == t)
			break;
		t = t2;
	}
	*tl = t;
}

/* Places in use as seen at one instant (see snapshot()), from head @hd. */
static inline int64_t used_from(const struct xq *h, uint64_t *hd)
{
	/* acquire on both, head first: a head older than the tail can only
	 * overstate tail - head, so a room found here is real (never admits
	 * past the capacity). Only "full" is re-read as a snapshot, since a
	 * thread preempted between the loads may hold a head far behind. */
	uint64_t t = xq_load_acquire(&h->q->tail);
	int64_t used = (int64_t)(t - *hd);

	if (used >= (int64_t)h->capacity) {
		snapshot(h, hd, &t);
		used = (int64_t)(t - *hd);
	}
	return used;
}

static inline uint64_t room_of(const struct xq *h, int64_t used)
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
static inline uint64_t room(struct xq *h, uint32_t need)
{
	uint64_t hd = xq_load_relaxed(&h->seen_head);
	uint64_t t = xq_load_acquire(&h->q->tail);
	int64_t used = (int64_t)(t - hd);

	if (used >= 0 && used < (int64_t)h->capacity && h->capacity - (uint64_t)used >= need)
		return h->capacity - (uint64_t)used;
	hd = xq_load_acquire(&h->q->head);
	used = used_from(h, &hd);
	xq_store_relaxed(&h->seen_head, hd);
	return room_of(h, used);
}

/*
 * Enqueue with an optional hold: when @hold is set, the position is recorded
 * in it (release) right after the FAA, before the CAS that publishes the index.
 */
static bool enqueue_one(struct xq *h, uint32_t idx, struct xq_hold *hold)
{
	uint64_t tries;

	/*
	 * A position is refused only by a slot still holding an index from an
	 * older lap or by consumers that passed it; a whole lap of refusals in a
	 * row means the queue is full of holes or corrupt: report full.
	 */
	for (tries = 0; tries <= h->mask; tries++) {
		uint64_t t;

		if (!h->bounded && room(h, 1) == 0)
			return false;
		/* acq_rel FAA: positions are unique; nothing else is ordered by it. */
		t = xq_faa(&h->q->tail, 1);
		if (hold)
			xq_store_release(&hold->pos, t);
		if (put_at(h, t, idx)) {
			reset_threshold(h);
			return true;
		}
	}
	return false;
}

bool xq_enqueue(struct xq *h, xq_index idx)
{
	if (idx > XQ_INDEX_MAX)
		return false;
	return enqueue_one(h, idx, NULL);
}

uint32_t xq_enqueue_batch(struct xq *h, const xq_index *v, uint32_t n, bool all)
{
	uint64_t r, t;
	uint32_t k, i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (v[i] > XQ_INDEX_MAX)
			return 0;
	r = h->bounded ? n : room(h, n);
	if (r < n && (all || r == 0))
		return 0;
	k = r < n ? (uint32_t)r : n;
	/* One FAA reserves k consecutive positions. */
	t = xq_faa(&h->q->tail, k);
	for (i = 0; i < k; i++)
		if (!put_at(h, t + i, v[i]))
			break;
	if (i > 0)
		reset_threshold(h);
	/* A slot that refused us: the rest of our positions are abandoned (the
	 * consumers skip them) and the remainder goes one by one, in order. */
	for (; i < k; i++)
		if (!enqueue_one(h, v[i], NULL))
			break;
	return i;
}

/* ---------------------------------------------------------------- dequeue */

/*
 * Move tail up to @head after consumers overran it, so that producers do not
 * fill positions nobody will visit. Gives up as soon as tail >= head.
 */
static void catchup(struct xq *h, uint64_t tail, uint64_t head)
{
	unsigned tries = 0;

	while (!xq_cas(&h->q->tail, &tail, head) && ++tries < CAS_TRIES) {
		head = xq_load_acquire(&h->q->head);
		tail = xq_load_acquire(&h->q->tail);
		if (!pos_lt(tail, head))
			break;
	}
}

enum take { TAKE_GOT, TAKE_EMPTY, TAKE_BAD };

/*
 * The ownership word of an index (tr->gen[idx]): bits 16..63 count the
 * claims of the index, bits 0..15 name the hold that made the last claim
 * (hold number + 1), 0 while the index is in a queue unclaimed. A claim is
 * one CAS from {c, 0} to {c + 1, k + 1}: it decides who takes an instance
 * of the index out of a slot, and unlike a taken mark in the slot, which a
 * producer overwrites a lap later, it stays until the index is enqueued again.
 */
#define OWN_TAG_BITS 16u
static inline uint64_t own_word(uint64_t count, uint32_t tag) { return (count << OWN_TAG_BITS) | tag; }
static inline uint64_t own_count(uint64_t w) { return w >> OWN_TAG_BITS; }
static inline uint32_t own_tag(uint64_t w) { return (uint32_t)(w & 0xFFFFu); }
static inline uint32_t hold_id(const struct xq_track *tr, const struct xq_hold *hold)
{
	return (uint32_t)(hold - tr->holds);
}

enum claim { CLAIM_GOT, CLAIM_LOST, CLAIM_RETRY };

/*
 * Take the index in entry *@e of @slot (lap e_cyc(*e)) for @hold, recording
 * position @pos: validate the ownership word against the slot, record DEQ
 * with the claim count, claim the word, then remove the entry. CLAIM_LOST:
 * somebody else claimed it (they remove it). CLAIM_RETRY: the entry changed
 * under us; *@e holds the new one. On CLAIM_GOT the hold is still DEQ.
 */
static enum claim claim(struct xq *h, struct xq_track *tr, struct xq_hold *hold,
			uint64_t *slot, uint64_t pos, uint64_t *e)
{
	uint32_t idx = e_idx(*e);
	uint64_t ec = e_cyc(*e), w, e2;
	uint64_t *own = &tr->gen[idx];
	unsigned tries;

	/* acquire: we read the slot with acquire, which pairs with the release
	 * of the enqueuer's CAS; the enqueuer cleared the tag before it, so we
	 * see this instance's word or a later claim of it. */
	w = xq_load_acquire(own);
	/* acquire: the slot re-read comes after the word read. The entry (ec,
	 * idx) cannot leave a slot and come back, so if it is still there the
	 * word we read belongs to this instance. */
	e2 = xq_load_acquire(slot);
	if (e_cyc(e2) != ec || e_idx(e2) != idx) {
		*e = e2;
		return CLAIM_RETRY;
	}
	if (own_tag(w) != 0)
		return CLAIM_LOST;	/* claimed by a reclaimer or recoverer */
	xq_store_relaxed(&hold->pos, pos);
	xq_store_relaxed(&hold->index, ((own_count(w) & 0xFFFFFFFFull) << 32) | idx);
	/* release: pos and index (with the claim count) are visible before DEQ. */
	xq_store_release(&hold->state, XQ_HOLD_DEQ);
	/* acq_rel: the one CAS that decides who takes this instance; recovery
	 * reads it (acquire) to tell whether a dead DEQ hold had won. */
	if (!xq_cas(own, &w, own_word(own_count(w) + 1, hold_id(tr, hold) + 1))) {
		xq_store_release(&hold->state, XQ_HOLD_NONE);
		return CLAIM_LOST;
	}
	/* The instance is ours; only consumers clearing the safe bit race this.
	 * acq_rel: a producer that later loads the slot sees it emptied. */
	for (tries = 0; tries < CAS_TRIES; tries++) {
		if (xq_cas(slot, &e2, mk_entry(ec, e_safe(e2), taken_mark(tr, hold))))
			break;
		if (e_cyc(e2) != ec || e_idx(e2) != idx)
			break;	/* only a corrupt peer moves a claimed entry */
	}
	return CLAIM_GOT;
}

/*
 * The consumer of position @p: take the index stored for @p, or make sure no
 * producer stores one there later. With @hold (tracked), the index is taken
 * with claim(), so recovery knows whether we took it even after the slot has
 * moved on.
 */
static enum take take_at(struct xq *h, uint64_t p, uint32_t *out,
			 struct xq_track *tr, struct xq_hold *hold)
{
	uint64_t *slot = slot_of(h, p);
	uint64_t pc = cyc_of_pos(h, p);
	/* acquire: pairs with the producer's release CAS, so the indexed object
	 * is visible to us once we see its index. */
	uint64_t e = xq_load_acquire(slot);
	unsigned tries;

	for (tries = 0; tries < CAS_TRIES; tries++) {
		uint64_t ne;
		uint32_t idx = e_idx(e);

		if (e_cyc(e) == pc && !idx_is_empty(idx)) {
			if (hold && tr && idx < tr->nindices && idx < h->limit) {
				enum claim c = claim(h, tr, hold, slot, p, &e);

				if (c == CLAIM_RETRY)
					continue;
				if (c == CLAIM_LOST)
					return TAKE_EMPTY;
				*out = idx;
				return TAKE_GOT;
			}
			/* Untracked, or an index no tracked peer can own (corrupt).
			 * acq_rel: only one CAS turns this entry into a taken mark. */
			if (!xq_cas(slot, &e, mk_entry(pc, e_safe(e), XQ_TAKEN)))
				continue;	/* taken by a reclaimer, or the safe bit changed */
			if (idx >= h->limit || (tr && hold)) {
				h->corrupt++;
				return TAKE_BAD;
			}
			*out = idx;
			return TAKE_GOT;
		}
		if (!cyc_lt(e_cyc(e), pc))
			return TAKE_EMPTY;	/* already at or past our lap */
		if (idx_is_empty(idx))
			ne = mk_entry(pc, e_safe(e), XQ_NONE);	/* close it for lap pc */
		else
			ne = mk_entry(e_cyc(e), false, idx);	/* an older lap's index: unsafe */
		/* acq_rel: a producer that later loads this slot sees our lap. */
		if (xq_cas(slot, &e, ne))
			return TAKE_EMPTY;
	}
	return TAKE_BAD;	/* a slot that never settles: corrupt */
}

static uint32_t dequeue_one(struct xq *h, struct xq_track *tr, struct xq_hold *hold)
{
	struct xq_layout *q = h->q;
	uint64_t tries;

	/* acquire: pairs with reset_threshold()'s release. */
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
		enum take r;

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
		if (!pos_lt(hp, t) || t - hp > h->mask + 1) {
			t = xq_load_acquire(&q->tail);
			xq_store_relaxed(&h->seen_tail, t);
			if (!pos_lt(hp, t))
				return XQ_NONE;
		}
		hp = xq_faa(&q->head, 1);
		r = take_at(h, hp, &idx, tr, hold);
		if (r == TAKE_GOT)
			return idx;
		if (r == TAKE_BAD)
			continue;
		t = xq_load_acquire(&q->tail);
		if (pos_le(t, hp + 1)) {
			catchup(h, t, hp + 1);
			xq_faa(&q->threshold, (uint64_t)-1);
			return XQ_NONE;
		}
		if ((int64_t)xq_faa(&q->threshold, (uint64_t)-1) <= 0)
			return XQ_NONE;
	}
	return XQ_NONE;
}

xq_index xq_dequeue(struct xq *h)
{
	return dequeue_one(h, NULL, NULL);
}

uint32_t xq_dequeue_batch(struct xq *h, xq_index *v, uint32_t n, bool all)
{
	struct xq_layout *q = h->q;
	uint64_t t, hp, avail;
	uint32_t k, i, got = 0;

	if (n == 0)
		return 0;
	snapshot(h, &hp, &t);
	avail = pos_lt(hp, t) ? t - hp : 0;
	if (avail < n && (all || avail == 0)) {
		if (all)
			return 0;
		/* Nothing visible: one ordinary dequeue keeps SCQ's threshold logic. */
		v[0] = xq_dequeue(h);
		return v[0] == XQ_NONE ? 0 : 1;
	}
	k = avail < n ? (uint32_t)avail : n;
	hp = xq_faa(&q->head, k);
	for (i = 0; i < k; i++) {
		uint32_t idx;

		if (take_at(h, hp + i, &idx, NULL, NULL) == TAKE_GOT)
			v[got++] = idx;
	}
	t = xq_load_acquire(&q->tail);
	if (pos_le(t, hp + k))
		catchup(h, t, hp + k);
	return got;
}

uint32_t xq_count(const struct xq *h)
{
	uint64_t hd = xq_load_acquire(&h->q->head);

	return h->capacity - (uint32_t)room_of(h, used_from(h, &hd));
}

uint32_t xq_scan(const struct xq *h, void (*fn)(void *arg, xq_index idx), void *arg)
{
	uint64_t hp = xq_load_acquire(&h->q->head);
	uint64_t t = xq_load_acquire(&h->q->tail);
	uint64_t p;
	uint32_t n = 0;

	/* Positions in [head, tail) hold the queue; more than one lap is corrupt. */
	if (!pos_lt(hp, t) || t - hp > h->mask + 1)
		return 0;
	for (p = hp; p != t; p++) {
		uint64_t e = xq_load_acquire(slot_of(h, p));

		if (e_cyc(e) == cyc_of_pos(h, p) && !idx_is_empty(e_idx(e))) {
			if (fn)
				fn(arg, e_idx(e));
			n++;
		}
	}
	return n;
}

uint32_t xq_stale(const struct xq *h)
{
	uint64_t hp = xq_load_acquire(&h->q->head), p;
	uint32_t n = 0;

	/* Each slot once, through its latest position before head. */
	for (p = hp - (h->mask + 1); p != hp; p++) {
		uint64_t e = xq_load_acquire(slot_of(h, p));

		if (!idx_is_empty(e_idx(e)) && !cyc_lt(cyc_of_pos(h, p), e_cyc(e)))
			n++;
	}
	return n;
}

/* ------------------------------------------------------- tracked operations */

static inline uint32_t hold_idx(uint64_t w) { return (uint32_t)w; }
static inline uint32_t hold_gen(uint64_t w) { return (uint32_t)(w >> 32); }

void xq_hold_take(struct xq_track *tr, struct xq_hold *hold, xq_index idx)
{
	(void)tr;
	xq_store_relaxed(&hold->index, idx);
	xq_store_release(&hold->state, XQ_HOLD_HELD);
}

void xq_hold_drop(struct xq_hold *hold)
{
	xq_store_release(&hold->state, XQ_HOLD_NONE);
}

void xq_hold_unclaim(struct xq_track *tr, struct xq_hold *hold)
{
	uint32_t idx = hold_idx(xq_load_relaxed(&hold->index));
	uint64_t w;

	/* release: the hold is NONE before the word is given up, so a
	 * recoverer of ours never gives the index back as well; dying between
	 * the two loses the entry (verify reports it), never duplicates it. */
	xq_store_release(&hold->state, XQ_HOLD_NONE);
	if (idx >= tr->nindices)
		return;
	/* acquire: pairs with our own claim; nobody else writes a claimed word. */
	w = xq_load_acquire(&tr->gen[idx]);
	/* acq_rel: the tag goes back to 0 with the claim count kept, so the
	 * consumer of the genuine entry (elsewhere) can claim it again. */
	if (own_tag(w) == hold_id(tr, hold) + 1)
		(void)xq_cas(&tr->gen[idx], &w, own_word(own_count(w), 0));
}

bool xq_enqueue_tracked(struct xq *h, uint64_t qid, struct xq_track *tr, struct xq_hold *hold)
{
	uint32_t idx = hold_idx(xq_load_relaxed(&hold->index));
	uint64_t count;

	if (idx > XQ_INDEX_MAX || idx >= tr->nindices)
		return false;
	/* We own idx, so nobody else writes its ownership word now. */
	count = own_count(xq_load_relaxed(&tr->gen[idx]));
	xq_store_relaxed(&hold->index, ((count & 0xFFFFFFFFull) << 32) | idx);
	xq_store_relaxed(&hold->qid, qid);
	xq_store_relaxed(&hold->pos, XQ_POS_NONE);
	/* release: index, qid and pos are visible before ENQ is. */
	xq_store_release(&hold->state, XQ_HOLD_ENQ);
	/* release: clear the claim tag so the next consumer can claim the
	 * index; the CAS that stores the index (acq_rel) publishes it too. */
	xq_store_release(&tr->gen[idx], own_word(count, 0));
	if (!enqueue_one(h, idx, hold)) {
		xq_store_release(&hold->state, XQ_HOLD_HELD);
		return false;
	}
	xq_store_release(&hold->state, XQ_HOLD_NONE);
	return true;
}

xq_index xq_dequeue_tracked(struct xq *h, uint64_t qid, struct xq_track *tr, struct xq_hold *hold)
{
	uint32_t idx;

	xq_store_relaxed(&hold->qid, qid);
	idx = dequeue_one(h, tr, hold);
	if (idx != XQ_NONE)
		xq_store_release(&hold->state, XQ_HOLD_HELD);
	return idx;
}

unsigned xq_hold_state(const struct xq_hold *hold, uint64_t *qid)
{
	if (qid)
		*qid = xq_load_acquire(&hold->qid);
	return (unsigned)(xq_load_acquire(&hold->state) & 0xFF);
}

/* Does any hold other than @skip hold @idx (in any state)? */
static bool held_elsewhere(struct xq_track *tr, const struct xq_hold *skip, uint32_t idx)
{
	uint32_t i;

	for (i = 0; i < tr->nholds; i++) {
		struct xq_hold *o = &tr->holds[i];
		uint64_t st;

		if (o == skip)
			continue;
		st = xq_load_acquire(&o->state) & 0x7F;
		if (st != XQ_HOLD_NONE && hold_idx(xq_load_acquire(&o->index)) == idx)
			return true;
	}
	return false;
}

/* Decide whether a dead enqueuer's index reached the queue. */
static bool enq_placed(struct xq *h, struct xq_track *tr, uint32_t idx, uint32_t count,
		       uint64_t pos)
{
	uint64_t e, pc;

	if (pos == XQ_POS_NONE || !h)
		return false;
	e = xq_load_acquire(slot_of(h, pos));
	pc = cyc_of_pos(h, pos);
	if (e_cyc(e) == pc)
		return e_idx(e) == idx || (idx_is_empty(e_idx(e)) && e_idx(e) != XQ_NONE);
		/* idx: still queued; a taken mark: stored and consumed; NONE: overtaken */
	if (cyc_lt(e_cyc(e), pc))
		return false;	/* the slot never reached our lap: not stored */
	/*
	 * The slot moved on past our lap, so the answer is not there any more.
	 * If our index was stored, it left the slot, and whoever took it out
	 * claimed its ownership word first: the claim count moved. If it was not
	 * stored, nobody could claim it (it was in no queue): the count did not.
	 * acquire: we read the slot first; a claim precedes the removal that
	 * let the slot move on, so it is visible now.
	 */
	return (uint32_t)own_count(xq_load_acquire(&tr->gen[idx])) != count;
}

/*
 * Settle a dead hold that was taking @idx (claim count @count) from the slot
 * of @pos: it owns the index if its claim won. Returns whether to give it.
 */
static bool deq_settle(struct xq *h, struct xq_track *tr, struct xq_hold *dead,
		       struct xq_hold *mine, uint32_t idx, uint32_t count, uint64_t pos)
{
	/* acquire: pairs with the claimer's acq_rel CAS (the claimer is dead or
	 * was dead when recovery started, so this is its final value). */
	uint64_t w = xq_load_acquire(&tr->gen[idx]);
	uint64_t *slot, pc, e;
	unsigned tries;

	if (!h || pos == XQ_POS_NONE)
		return false;
	slot = slot_of(h, pos);
	pc = cyc_of_pos(h, pos);
	e = xq_load_acquire(slot);
	if ((uint32_t)own_count(w) == (uint32_t)(count + 1) &&
	    own_tag(w) == hold_id(tr, dead) + 1) {
		/* Its claim won: the index is its own. If it died before removing
		 * the entry, remove it for it (acq_rel, as in claim()). */
		for (tries = 0; tries < CAS_TRIES; tries++) {
			if (e_cyc(e) != pc || e_idx(e) != idx)
				break;
			if (xq_cas(slot, &e, mk_entry(pc, e_safe(e), taken_mark(tr, mine))))
				break;
		}
		return true;
	}
	/*
	 * Its claim lost or never happened. If the entry is still in the slot
	 * unclaimed, its position's consumer (the dead one) will never take it:
	 * take it with our own hold through the same claim, so that our death
	 * here is settled like any consumer's.
	 */
	for (tries = 0; tries < CAS_TRIES; tries++) {
		enum claim c;

		if (e_cyc(e) != pc || e_idx(e) != idx)
			return false;
		c = claim(h, tr, mine, slot, pos, &e);
		if (c == CLAIM_GOT)
			return true;
		if (c == CLAIM_LOST)
			return false;
	}
	return false;
}

int xq_recover_hold(struct xq *h, struct xq_track *tr, struct xq_hold *dead,
		    struct xq_hold *mine, uint32_t mine_id)
{
	uint64_t st = xq_load_acquire(&dead->state);
	uint64_t w = xq_load_acquire(&dead->index);
	uint64_t pos = xq_load_acquire(&dead->pos);
	uint32_t idx = hold_idx(w), base;
	bool give;

	if (st & XQ_HOLD_CLAIMED) {
		uint32_t by = (uint32_t)(st >> 8);

		/* An earlier recoverer died after adopting the index. */
		if (by < tr->nholds && &tr->holds[by] != dead &&
		    (xq_load_acquire(&tr->holds[by].state) & 0x7F) == XQ_HOLD_HELD &&
		    hold_idx(xq_load_acquire(&tr->holds[by].index)) == idx) {
			xq_store_release(&dead->state, XQ_HOLD_NONE);
			return XQ_REC_NOTHING;
		}
	}
	base = (uint32_t)(st & 0x7F);
	if (base == XQ_HOLD_NONE)
		return XQ_REC_NOTHING;
	if (base > XQ_HOLD_HELD || idx >= tr->nindices)
		return -EINVAL;
	if (!(st & XQ_HOLD_CLAIMED))
		xq_store_release(&dead->state, XQ_HOLD_CLAIMED | ((uint64_t)mine_id << 8) | base);

	switch (base) {
	case XQ_HOLD_HELD:
		give = true;
		break;
	case XQ_HOLD_ENQ:
		give = !enq_placed(h, tr, idx, hold_gen(w), pos);
		break;
	default: /* XQ_HOLD_DEQ: it was taking idx from pos */
		give = deq_settle(h, tr, dead, mine, idx, hold_gen(w), pos);
		break;
	}
	if (give) {
		xq_store_relaxed(&mine->index, idx);
		xq_store_release(&mine->state, XQ_HOLD_HELD);
	}
	xq_store_release(&dead->state, XQ_HOLD_NONE);
	return give ? XQ_REC_GIVEN : XQ_REC_QUEUED;
}

xq_index xq_reclaim_stranded(struct xq *h, struct xq_track *tr, uint64_t lag,
			     struct xq_hold *mine)
{
	uint64_t hp = xq_load_acquire(&h->q->head);
	uint64_t nslots = h->mask + 1, p;

	/*
	 * Visit each slot once, through its latest position p in [hp - nslots, hp).
	 * An index stored there for position P = p - k * nslots (k laps older)
	 * with P < hp - lag had its consumer already. If no hold names it, that
	 * consumer died between its FAA on head and its DEQ record.
	 */
	for (p = hp - nslots; p != hp; p++) {
		uint64_t *slot = slot_of(h, p);
		uint64_t pc = cyc_of_pos(h, p);
		uint64_t e = xq_load_acquire(slot);
		unsigned tries = 0;
		enum claim c;

		while (!idx_is_empty(e_idx(e)) && !cyc_lt(pc, e_cyc(e)) && tries++ < CAS_TRIES) {
			uint64_t k = (pc - e_cyc(e)) & CYC_MASK;
			uint64_t at = p - k * nslots;
			uint32_t idx = e_idx(e);

			if (!pos_lt(at, hp - lag))
				break;
			if (idx >= tr->nindices || idx >= h->limit) {
				/* Garbage that no consumer will ever take: clear it so the
				 * slot serves producers again. */
				if (xq_cas(slot, &e, mk_entry(e_cyc(e), e_safe(e), XQ_TAKEN))) {
					h->corrupt++;
					break;
				}
				continue;
			}
			/* Politeness, not safety: leave it to a consumer that has
			 * recorded it (the claim decides either way). */
			if (held_elsewhere(tr, mine, idx))
				break;
			/* The same claim a consumer takes it with. */
			c = claim(h, tr, mine, slot, at, &e);
			if (c == CLAIM_GOT) {
				xq_store_release(&mine->state, XQ_HOLD_HELD);
				return idx;
			}
			if (c == CLAIM_LOST)
				break;
		}
	}
	return XQ_NONE;
}
