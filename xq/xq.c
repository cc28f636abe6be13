/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xq/xq.c - SCQ-based lock-free queue of indices (see xq.h, docs/xq.md).
 *
 * Vocabulary: a *position* is a free-running 64-bit ticket taken from head or
 * tail with FAA. Position p uses slot p & mask in lap ("cycle")
 * cyc(p) = (p >> order) mod 2^31. An entry is {cycle, safe, index}.
 *
 * The queue has nslots = 2^order slots but admits at most capacity <= nslots/4
 * indices (checked on enqueue against tail - head). SCQ needs at most
 * nslots/2 indices present for its livelock bound; the extra nslots/4 of room
 * absorbs producers that race past the full check together.
 */
#include "xq_inline.h"

#define MIN_ORDER  8u

/* Short names for the internals shared with xq_inline.h. */
#define CYC_MASK   XQ__CYC_MASK
#define CAS_TRIES  XQ__CAS_TRIES
#define cyc_of_pos xq__cyc_of_pos
#define e_cyc      xq__e_cyc
#define e_idx      xq__e_idx
#define e_safe     xq__e_safe
#define idx_is_empty xq__idx_is_empty
#define mk_entry   xq__mk_entry
#define cyc_lt     xq__cyc_lt
#define pos_lt     xq__pos_lt
#define pos_le     xq__pos_le
#define slot_of    xq__slot_of

/* The taken marker of a hold: which hold record's CAS consumed the entry. */
static inline uint32_t taken_mark(const struct xq_track *tr, const struct xq_hold *hold)
{
	if (!tr || !hold)
		return XQ_TAKEN;
	return XQ_TAKEN_BY((uint32_t)(hold - tr->holds));
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
	h->next_tail = h->seen_tail;
	return 0;
}

void xq_set_bounded(struct xq *h)
{
	h->bounded = 1;
}

/* ------------------------------------------------- untracked operations */

bool xq_enqueue(struct xq *h, xq_index idx)
{
	return xq_enqueue_inline(h, idx);
}

uint32_t xq_enqueue_batch(struct xq *h, const xq_index *v, uint32_t n, bool all)
{
	return xq_enqueue_batch_inline(h, v, n, all);
}

xq_index xq_dequeue(struct xq *h)
{
	return xq_dequeue_inline(h);
}

uint32_t xq_dequeue_batch(struct xq *h, xq_index *v, uint32_t n, bool all)
{
	return xq_dequeue_batch_inline(h, v, n, all);
}

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

/* Ask for the hot lines of the object @idx names (xq_track's objs), for writing. */
static inline void prefetch_obj(const struct xq_track *tr, uint32_t idx)
{
	if (idx < tr->nobjs) {
		const char *o = (const char *)tr->objs + (size_t)idx * tr->obj_size;
		uint32_t off;

		for (off = 0; off < tr->obj_hot; off += 64)
			XQ__PREFETCHW(o + off);
	}
}

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

	XQ__PREFETCHW(own);	/* loaded now, CASed below: fetch it once */
	prefetch_obj(tr, idx);
	{
		/* The entry after ours, if it is there: a consumer draining a
		 * queue takes it next, so its lines travel while we work. */
		uint64_t ne = xq_load_relaxed(slot_of(h, pos + 1));
		uint32_t ni = e_idx(ne);

		if (e_cyc(ne) == cyc_of_pos(h, pos + 1) && ni < tr->nindices && ni < h->limit) {
			XQ__PREFETCHW(&tr->gen[ni]);
			prefetch_obj(tr, ni);
		}
	}
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

/* The tracked consumer's step of xq__take_at(): claim() in its terms. */
static enum xq__take claim_take(struct xq *h, struct xq_track *tr, struct xq_hold *hold,
				uint64_t *slot, uint64_t pos, uint64_t *e)
{
	switch (claim(h, tr, hold, slot, pos, e)) {
	case CLAIM_GOT:
		return XQ__TAKE_GOT;
	case CLAIM_RETRY:
		return XQ__TAKE_MINE;
	default:
		return XQ__TAKE_EMPTY;	/* claimed by somebody else: next position */
	}
}

uint32_t xq_count(const struct xq *h)
{
	uint64_t hd = xq_load_acquire(&h->q->head);

	return h->capacity - (uint32_t)xq__room_of(h, xq__used_from(h, &hd));
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

/*
 * The tracked operations are flattened: the untracked core (xq_inline.h),
 * the claim and every helper inlined into one body each, so the claim is a
 * direct, inlined call and not a call through a pointer per dequeue.
 */
__attribute__((flatten))
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
	if (!xq__enqueue_one(h, idx, hold)) {
		xq_store_release(&hold->state, XQ_HOLD_HELD);
		return false;
	}
	xq_store_release(&hold->state, XQ_HOLD_NONE);
	return true;
}

__attribute__((flatten))
xq_index xq_dequeue_tracked(struct xq *h, uint64_t qid, struct xq_track *tr, struct xq_hold *hold)
{
	uint32_t idx;

	xq_store_relaxed(&hold->qid, qid);
	idx = xq__dequeue_one(h, claim_take, tr, hold);
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
