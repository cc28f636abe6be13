/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test/xq/model/recover.pml - a Promela model of xq's tracked operations and
 * recovery (xq/xq.c), checked by spin through every interleaving, with any
 * participant killed before any of its steps. Run by test/xq/model.c.
 *
 * Configuration: one slot (so position p is lap p), two indices.
 *   C  (hold 0) the consumer of position 0, slow: its FAA on head is done;
 *               it takes index 0 from position 0, then passes it on (sink)
 *   D  (hold 1) a consumer: FAA head, take, then enqueues the index again
 *   P  (hold 2) a producer holding index 1: tracked enqueue
 *   R  (hold 3) a reclaimer: takes a stranded index behind head (lag 0, so
 *               it races the slow consumer C), then enqueues it again
 *   recoverers (holds 4, 5): settle the hold of every participant that
 *               died, while the others run; the first may itself be killed,
 *               the second then settles what is left, its hold included
 * At the end every index must be exactly once in the slot or passed on, and
 * every hold must be settled.
 *
 * Flags (spin -a -D...): ACTKILL=n participants may be killed (default 1),
 * RECKILL=0|1 the first recoverer may be killed (default 1), WITH_P runs P
 * (else index 1 stays out of the model), NO_D leaves D out, OLD_RULE.
 *
 * Each shared-memory access of the C code is one atomic step (sequential
 * consistency; the acquire/release orderings of xq.c provide the order the
 * steps assume). SCQ's threshold is left out (it only bounds how long
 * consumers chase an empty queue). Compile with -DOLD_RULE for the protocol
 * before the claim word (taken marks and generation bumps): spin then finds
 * the double give-back trace.
 */

#define NIDX   2
#define NHOLD  6
#define NACT   4		/* C, D, P, R */
#define NONE_V 7		/* XQ_NONE */
#define TAKEN_V 6		/* XQ_TAKEN */
#define MARK(k) (8 + (k))	/* XQ_TAKEN_BY(k) */
#define IS_IDX(v) ((v) < NIDX)
#define POS_NONE 255

/* how many participants (C, D, P, R) may be killed; may the first recoverer */
#ifndef ACTKILL
#define ACTKILL 1
#endif
#ifndef RECKILL
#define RECKILL 1
#endif

/* hold states */
#define H_NONE 0
#define H_ENQ  1
#define H_DEQ  2
#define H_HELD 3

/* the queue: one slot */
byte slot_lap, slot_val;
bool slot_safe = true;
byte head, tail;

/* the track: ownership words (claim count, tag = hold + 1) or generations */
byte own_cnt[NIDX], own_tag[NIDX];

/* hold records */
byte hst[NHOLD], hidx[NHOLD], hcnt[NHOLD], hpos[NHOLD];
bool hcl[NHOLD];		/* XQ_HOLD_CLAIMED */
byte hby[NHOLD];		/* claimed by */

byte sink[NIDX];		/* indices passed on out of the model */
byte akills, rkills;
bool dead[NHOLD], fin[NHOLD], settled[NACT];

/* Before every step that writes shared memory (a kill before a load is the
 * same as a kill after it): go on, or die here. */
#define KILLPOINT(me) \
	if \
	:: skip \
	:: me < NACT && akills < ACTKILL -> akills++; dead[me] = true; goto died \
	:: me == 4 && rkills < RECKILL -> rkills++; dead[me] = true; goto died \
	fi

/* pass the held index on (the caller enqueues it elsewhere): one step */
#define PASS_ON(me) atomic { sink[hidx[me]]++; hst[me] = H_NONE }

/* ------------------------------------------------------------------ helpers */

/* held_elsewhere(): does any hold other than hs name index hx? One step:
 * for the claim rule it is only politeness (the claim word decides). */
inline held_elsewhere(hs, hx, hres)
{
	atomic {
		hres = false;
		k = 0;
		do
		:: k < NHOLD -> hres = hres || (k != hs && hst[k] != H_NONE && hidx[k] == hx); k++
		:: else -> break
		od
	}
}

#ifndef OLD_RULE
/*
 * claim(): validate the ownership word against the slot, record DEQ with the
 * claim count, claim the word with one CAS, remove the entry.
 * res: 0 GOT, 1 LOST, 2 RETRY (elap/ev updated).
 */
inline claim(pos, res)
{
	x = ev;
	atomic { wc = own_cnt[x]; wt = own_tag[x] }
	atomic { e2lap = slot_lap; e2v = slot_val };
	if
	:: e2lap != elap || e2v != x -> elap = e2lap; ev = e2v; res = 2
	:: else ->
		if
		:: wt != 0 -> res = 1
		:: else ->
			KILLPOINT(me); atomic { hpos[me] = pos; hidx[me] = x; hcnt[me] = wc; hst[me] = H_DEQ };
			KILLPOINT(me);
			atomic {
				if
				:: own_cnt[x] == wc && own_tag[x] == 0 -> own_cnt[x] = wc + 1; own_tag[x] = me + 1; res = 0
				:: else -> res = 1
				fi
			};
			if
			:: res == 1 -> KILLPOINT(me); hst[me] = H_NONE
			:: else -> skip
			fi;
			if
			:: res == 0 ->
				KILLPOINT(me);
				atomic { if :: slot_lap == elap && slot_val == x -> slot_val = MARK(me) :: else -> skip fi }
			:: else -> skip
			fi
		fi
	fi
}
#else
/* the old take: record DEQ, CAS the slot to our mark, bump the generation */
inline claim(pos, res)
{
	x = ev;
	KILLPOINT(me); atomic { hpos[me] = pos; hidx[me] = x; hst[me] = H_DEQ };
	KILLPOINT(me);
	atomic {
		if
		:: slot_lap == elap && slot_val == x -> slot_val = MARK(me); res = 0
		:: else -> elap = slot_lap; ev = slot_val; res = 2
		fi
	};
	if
	:: res == 2 -> KILLPOINT(me); hst[me] = H_NONE
	:: else -> skip
	fi;
	if
	:: res == 0 -> KILLPOINT(me); own_cnt[x]++
	:: else -> skip
	fi
}
#endif

/* take_at(p): res 0 GOT (index in x), 1 EMPTY */
inline take_at(p, res)
{
	atomic { elap = slot_lap; ev = slot_val };
	do
	:: elap == p && IS_IDX(ev) ->
		claim(p, res);
		if
		:: res == 2 -> skip	/* the entry changed: look again */
		:: else -> break
		fi
	:: elap > p || (elap == p && !IS_IDX(ev)) -> res = 1; break
	:: elap < p ->
		KILLPOINT(me);
		atomic {
			if
			:: slot_lap == elap && slot_val == ev ->
				if
				:: IS_IDX(ev) -> slot_safe = false	/* older lap's index: unsafe */
				:: else -> slot_lap = p; slot_val = NONE_V	/* close it for lap p */
				fi;
				res = 1
			:: else -> elap = slot_lap; ev = slot_val; res = 2
			fi
		};
		if :: res == 1 -> break :: else -> skip fi
	od
}

/* put_at(t, v): res true if stored */
inline put_at(t, v, res)
{
	atomic { elap = slot_lap; ev = slot_val; esafe = slot_safe };
	do
	:: !(elap < t && !IS_IDX(ev)) -> res = false; break
	:: else ->
		if
		:: !esafe -> atomic { hd = head };
			if :: hd > t -> res = false; break :: else -> skip fi
		:: else -> skip
		fi;
		KILLPOINT(me);
		atomic {
			if
			:: slot_lap == elap && slot_val == ev && slot_safe == esafe ->
				slot_lap = t; slot_val = v; slot_safe = true; res = true
			:: else -> elap = slot_lap; ev = slot_val; esafe = slot_safe
			fi
		};
		if :: res -> break :: else -> skip fi
	od
}

/* xq_enqueue_tracked of the index in our HELD hold; res true if placed */
inline enqueue_tracked(res)
{
	x = hidx[me];
	atomic { wc = own_cnt[x] };
	KILLPOINT(me); atomic { hcnt[me] = wc; hpos[me] = POS_NONE; hst[me] = H_ENQ };
#ifndef OLD_RULE
	KILLPOINT(me); own_tag[x] = 0;	/* {count, 0}: claimable once stored */
#endif
	tries = 0;
	res = false;
	do
	:: tries < 2 && !res ->
		KILLPOINT(me); atomic { t = tail; tail++ };
		KILLPOINT(me); hpos[me] = t;
		put_at(t, x, res);
		tries++
	:: else -> break
	od;
	KILLPOINT(me);
	if :: res -> hst[me] = H_NONE :: else -> hst[me] = H_HELD fi
}

/* xq_dequeue_tracked: res 0 GOT (index x, hold HELD), 1 NONE. The fast
 * empty check, catch-up and threshold move no index and are left out. */
inline dequeue_tracked(res)
{
	KILLPOINT(me); atomic { hp = head; head++ };
	take_at(hp, res);
	if
	:: res == 0 -> KILLPOINT(me); hst[me] = H_HELD
	:: else -> skip
	fi
}

/* ---------------------------------------------------------------- recovery */

/* xq_recover_hold of dead hold v by hold me; then passes any index on */
inline recover_hold(v)
{
	atomic { st = hst[v]; cl = hcl[v]; by = hby[v]; x = hidx[v]; c = hcnt[v]; p = hpos[v] };
	give = false;
	done = false;
	if
	:: cl && by != v ->
		atomic { if :: hst[by] == H_HELD && hidx[by] == x -> done = true :: else -> skip fi };
		if :: done -> KILLPOINT(me); hst[v] = H_NONE :: else -> skip fi
	:: else -> skip
	fi;
	if
	:: !done && st == H_NONE -> done = true
	:: else -> skip
	fi;
	if
	:: !done ->
		if
		:: !cl -> KILLPOINT(me); atomic { hcl[v] = true; hby[v] = me }
		:: else -> skip
		fi;
		if
		:: st == H_HELD -> give = true
		:: st == H_ENQ ->
			/* enq_placed() */
			if
			:: p == POS_NONE -> give = true
			:: else ->
				atomic { elap = slot_lap; ev = slot_val };
				if
				:: elap == p -> give = !(ev == x || (!IS_IDX(ev) && ev != NONE_V))
				:: elap < p -> give = true
				:: else ->
#ifndef OLD_RULE
					atomic { give = (own_cnt[x] == c) }
#else
					held_elsewhere(v, x, res);
					if
					:: res -> give = false
					:: else -> atomic { give = (own_cnt[x] == c) }
					fi
#endif
				fi
			fi
		:: st == H_DEQ ->
#ifndef OLD_RULE
			/* deq_settle() */
			atomic { wc = own_cnt[x]; wt = own_tag[x] };
			atomic { elap = slot_lap; ev = slot_val };
			if
			:: wc == c + 1 && wt == v + 1 ->
				give = true;
				if
				:: elap == p && ev == x ->
					KILLPOINT(me);
					atomic { if :: slot_lap == elap && slot_val == x -> slot_val = MARK(me) :: else -> skip fi }
				:: else -> skip
				fi
			:: else ->
				do
				:: elap == p && ev == x ->
					claim(p, res);
					if
					:: res == 0 -> give = true; break
					:: res == 1 -> break
					:: else -> skip
					fi
				:: else -> break
				od
			fi
#else
			/* finish the take under our mark, or read the dead one's mark */
			atomic { elap = slot_lap; ev = slot_val };
			if
			:: elap == p && ev == x ->
				KILLPOINT(me);
				atomic { if :: slot_lap == elap && slot_val == x -> slot_val = MARK(me); give = true
				            :: else -> elap = slot_lap; ev = slot_val fi }
			:: else -> skip
			fi;
			if
			:: !give && elap == p && ev == MARK(v) -> give = true
			:: !give && elap != p -> give = true	/* slot moved on */
			:: else -> skip
			fi;
			if :: give -> KILLPOINT(me); own_cnt[x]++ :: else -> skip fi
#endif
		:: else -> skip
		fi;
		if
		:: give -> KILLPOINT(me); atomic { hidx[me] = x; hst[me] = H_HELD }
		:: else -> skip
		fi;
		KILLPOINT(me); hst[v] = H_NONE;
		if :: give -> KILLPOINT(me); PASS_ON(me) :: else -> skip fi
	:: else -> skip
	fi
}

/* xq_reclaim_stranded(lag 0) on the one slot: res 0 if it took one */
inline reclaim(res)
{
	res = 1;
	atomic { hd = head };
	atomic { elap = slot_lap; ev = slot_val };
	do
	:: IS_IDX(ev) && elap < hd ->
#ifdef OLD_RULE
		/* the old rule relies on it; under the claim rule it is only
		 * politeness, and skipping is the same as not reclaiming */
		held_elsewhere(me, ev, r2);
		if
		:: r2 -> break
		:: else -> skip
		fi;
#endif
		claim(elap, res);
		if
		:: res == 0 -> KILLPOINT(me); hst[me] = H_HELD; break
		:: res == 1 -> break
		:: else -> skip
		fi
	:: else -> break
	od
}

/* ------------------------------------------------------------- participants */

#define LOCALS byte x, elap, ev, e2lap, e2v, wc, wt, t, hd, hp, tries, k, res; bool esafe, r2
/* a finished or dead process keeps its locals in the state vector: zero them */
#define RESET d_step { x = 0; elap = 0; ev = 0; e2lap = 0; e2v = 0; wc = 0; wt = 0; t = 0; \
	hd = 0; hp = 0; tries = 0; k = 0; res = 0; esafe = 0; r2 = 0 }

proctype C()	/* the slow consumer of position 0 */
{
	byte me = 0;
	LOCALS;
	take_at(0, res);
	if
	:: res == 0 -> KILLPOINT(me); hst[me] = H_HELD; KILLPOINT(me); PASS_ON(me)
	:: else -> skip
	fi;
	fin[me] = true;
	goto end;
died:
	skip;
end:
	skip;
	RESET
}

proctype D()	/* a consumer that queues what it takes again */
{
	byte me = 1;
	LOCALS;
	dequeue_tracked(res);
	if
	:: res == 0 ->
		enqueue_tracked(r2);
		if :: !r2 -> KILLPOINT(me); PASS_ON(me) :: else -> skip fi
	:: else -> skip
	fi;
	fin[me] = true;
	goto end;
died:
	skip;
end:
	skip;
	RESET
}

proctype P()	/* a producer of index 1 */
{
	byte me = 2;
	LOCALS;
	enqueue_tracked(r2);
	if :: !r2 -> KILLPOINT(me); PASS_ON(me) :: else -> skip fi;
	fin[me] = true;
	goto end;
died:
	skip;
end:
	skip;
	RESET
}

proctype R()	/* a reclaimer that queues what it takes again */
{
	byte me = 3;
	LOCALS;
	reclaim(res);
	if
	:: res == 0 ->
		enqueue_tracked(r2);
		if :: !r2 -> KILLPOINT(me); PASS_ON(me) :: else -> skip fi
	:: else -> skip
	fi;
	fin[me] = true;
	goto end;
died:
	skip;
end:
	skip;
	RESET
}

/* The recoverer: settles each dead participant's hold, in any order, while
 * the others run. Hold 4 may be killed; hold 5 then settles what is left,
 * hold 4 included. Recoveries of one dead hold never overlap (xq.h). */
proctype Recoverer(byte me)
{
	LOCALS;
	byte v, st, by, c, p;
	bool cl, give, done;

	do
	:: atomic { dead[0] && !settled[0] -> v = 0 }; recover_hold(v); settled[v] = true
	:: atomic { dead[1] && !settled[1] -> v = 1 }; recover_hold(v); settled[v] = true
	:: atomic { dead[2] && !settled[2] -> v = 2 }; recover_hold(v); settled[v] = true
	:: atomic { dead[3] && !settled[3] -> v = 3 }; recover_hold(v); settled[v] = true
	:: atomic { (fin[0] || settled[0]) && (fin[1] || settled[1]) &&
		    (fin[2] || settled[2]) && (fin[3] || settled[3]) } -> break
	od;
	if
	:: me == 5 && dead[4] -> v = 4; recover_hold(v)
	:: else -> skip
	fi;
	fin[me] = true;
	goto end;
died:
	skip;
end:
	skip;
	RESET;
	d_step { v = 0; st = 0; by = 0; c = 0; p = 0; cl = 0; give = 0; done = 0 }
}

init
{
	byte i;

	/* index 0 stored at position 0, whose consumer C has taken position 0 */
	slot_lap = 0; slot_val = 0;
	head = 1; tail = 1;
#ifdef NO_D
	fin[1] = true;
#endif
#ifdef WITH_P
	hst[2] = H_HELD; hidx[2] = 1;	/* P holds index 1 */
#else
	sink[1] = 1;			/* index 1 is elsewhere */
	fin[2] = true;
#endif
	for (i : 0 .. NHOLD - 1) { hby[i] = 255 }
	atomic {
		run C(); run R(); run Recoverer(4);
#ifndef NO_D
		run D();
#endif
#ifdef WITH_P
		run P();
#endif
	};
	/* if the first recoverer died, a second one takes over */
	(fin[4] || dead[4]);
	if
	:: dead[4] -> run Recoverer(5); (fin[5])
	:: else -> skip
	fi;
	/* every index is exactly once in the slot or passed on */
	assert(sink[0] + (slot_val == 0 -> 1 : 0) == 1);
	assert(sink[1] + (slot_val == 1 -> 1 : 0) == 1);
	/* every hold is settled */
	for (i : 0 .. NHOLD - 1) { assert(hst[i] == H_NONE) }
}
