/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/signal_area.h - what the signaling drivers keep in the 64-byte signal
 * area of each port (struct xseg_port.signal, XSEG_SIGNAL_AREA), and the
 * steps on it that several drivers share: the posix claim (user and kernel
 * posix drivers) and the saturating waiter counts (futex, posixfd, segdev).
 * Domain-neutral: included by the user drivers (drivers/user/) and by the
 * kernel's posix driver (drivers/kernel/posix/); installed with the public
 * headers because drivers/user/posixfd.h includes it.
 *
 * The area belongs to the driver of the port's peer type. Its owner (the
 * process that bound the port) and every peer that signals the port write
 * it, so every word read from it is untrusted: a corrupt value may cost a
 * spurious wake-up or a syscall, never a crash, a hang or a wake-up sent to
 * a process that did not ask for one.
 *
 * Fixed-width fields only: the kernel domain reuses the posix layout (a
 * kernel peer waking a user waiter, or the reverse), so nothing here may
 * depend on the user domain. 64-bit words are accessed with the atomics of
 * sys/domain.h; the futex word is 32 bits because the futex syscall is.
 *
 * The area is line 1 of a 64-byte aligned struct xseg_port (offset 64, a
 * cache line of its own, so arming a wait never invalidates the line with
 * the owner word that every submitter reads): every word below is
 * naturally aligned.
 */
#ifndef XSEG_SIGNAL_AREA_H
#define XSEG_SIGNAL_AREA_H

#include "xseg_layout.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ posix */

/*
 * posix: one waiting thread per port, woken with a thread-directed SIGIO.
 *
 * waiter word:  bit 63 SIGNALED | bits 62..32 pid | bits 31..0 tid, or 0.
 * The waiter stores pid|tid at prepare_wait and clears it when its wait ends.
 * A signaler sets SIGNALED by CAS (only the one that sets it sends the
 * signal: later ones see it and return), then sends SIGIO to tid.
 */
struct xseg_sig_posix {
	uint64_t waiter;		/* XSEG_SIGP_WAITER(pid, tid) [| XSEG_SIGP_SIGNALED] or 0 */
	uint64_t reserved[7];
};

#define XSEG_SIGP_SIGNALED	(1ull << 63)
#define XSEG_SIGP_WAITER(pid, tid) \
	((((uint64_t)(pid) & 0x7FFFFFFFull) << 32) | (uint64_t)(uint32_t)(tid))
#define XSEG_SIGP_PID(w)	((uint32_t)(((w) >> 32) & 0x7FFFFFFFull))
#define XSEG_SIGP_TID(w)	((uint32_t)(w))

XSEG_STATIC_ASSERT(sizeof(struct xseg_sig_posix) <= XSEG_SIGNAL_AREA,
		   "the posix signal area must fit the port's XSEG_SIGNAL_AREA bytes");

/* ------------------------------------------------------------------ futex */

/*
 * futex: @word is the futex word. A waiter counts itself in @waiters, reads
 * @word, re-checks its queues and sleeps with FUTEX_WAIT(word, value read).
 * A signaler that sees @waiters != 0 bumps @word and calls FUTEX_WAKE.
 * @waiters saturates at XSEG_SIGF_SATURATED (a corrupt count then means
 * "someone may be waiting" for good: every signal costs a syscall, none is
 * lost) until the next bind resets it.
 */
struct xseg_sig_futex {
	uint32_t word;			/* futex word, bumped by signals that find waiters */
	uint32_t waiters;		/* threads between prepare_wait and the end of their wait */
	uint64_t reserved[7];
};

#define XSEG_SIGF_SATURATED	0x40000000u

XSEG_STATIC_ASSERT(sizeof(struct xseg_sig_futex) <= XSEG_SIGNAL_AREA,
		   "the futex signal area must fit the port's XSEG_SIGNAL_AREA bytes");
XSEG_STATIC_ASSERT(__builtin_offsetof(struct xseg_sig_futex, word) % 4 == 0,
		   "the futex word must be 4-byte aligned for the futex syscall");

/* ---------------------------------------------------------------- posixfd */

/*
 * posixfd: the owner reads a named FIFO; a signaler writes one byte to it.
 *
 * @waiting counts threads between prepare_wait and the end of their wait
 * (saturating like the futex count). @pending is 1 from the signal that
 * wrote a byte until the waiter drains: signals in between skip the write.
 * With XSEG_FD_ALWAYS in @flags (an event loop polls the FIFO at times the
 * driver cannot know) every signal writes. @fifo names the FIFO the owner
 * bound: (bind generation << 32) ^ inode, 0 while unbound; signalers reopen
 * their cached descriptor when it changes.
 */
struct xseg_sig_posixfd {
	uint64_t waiting;		/* threads between prepare_wait and the end of their wait */
	uint64_t pending;		/* 1: a byte is (being) written since the last drain */
	uint64_t flags;			/* XSEG_FD_ALWAYS */
	uint64_t fifo;			/* identity of the bound FIFO, 0 while unbound */
	uint64_t gen;			/* bumped by every bind */
	uint64_t reserved[3];
};

#define XSEG_FD_ALWAYS		(1ull << 0)	/* every signal writes a byte */
#define XSEG_SIGFD_SATURATED	0x40000000ull

XSEG_STATIC_ASSERT(sizeof(struct xseg_sig_posixfd) <= XSEG_SIGNAL_AREA,
		   "the posixfd signal area must fit the port's XSEG_SIGNAL_AREA bytes");

/* ------------------------------------------------- steps drivers share */

/*
 * xseg_sigp_claim - the signaler's half of the posix protocol, the one copy
 * shared by the user (drivers/user/posix.c) and kernel
 * (drivers/kernel/posix/) drivers: whom to wake. Call it after a full fence
 * between the caller's enqueue and this load. It sets SIGNALED in a
 * recorded waiter word by CAS; only the signaler that sets it sends SIGIO.
 * Returns 1 with the thread to signal in *@pid, *@tid and the word it
 * claimed in *@w (for xseg_sigp_unclaim); 0 if nobody is to be woken (no
 * waiter, or a wake-up is on its way); -EAGAIN if the word kept changing
 * (a hostile peer); -EINVAL if the claimed word is garbage (SIGNALED stays
 * set, so nobody else tries). Bounded, never sleeps, any domain.
 */
static inline int xseg_sigp_claim(struct xseg_sig_posix *a, uint32_t *pid, uint32_t *tid,
				  uint64_t *w)
{
	/* Relaxed: only a hint (the caller's fence orders it); the CAS decides. */
	uint64_t v = xq_load_relaxed(&a->waiter);
	int i;

	for (i = 0;; i++) {
		if (v == 0 || (v & XSEG_SIGP_SIGNALED))
			return 0;	/* nobody waits, or a wake-up is on its way */
		if (i == 4)
			return -EAGAIN;	/* the word keeps changing: a hostile peer */
		/*
		 * acq_rel CAS: the waiter that reads SIGNALED (and so returns
		 * 0) must see the caller's enqueue; only one signaler wins.
		 */
		if (xq_cas(&a->waiter, &v, v | XSEG_SIGP_SIGNALED))
			break;
	}
	*w = v;
	*pid = XSEG_SIGP_PID(v);
	*tid = XSEG_SIGP_TID(v);
	if (*pid == 0 || *tid == 0 || *tid > 0x7FFFFFFFu)
		return -EINVAL;
	return 1;
}

/*
 * xseg_sigp_unclaim - the claim of @w could not be honoured (no permission,
 * no such thread): hand it back so another signaler may try. acq_rel CAS:
 * nothing to publish, but it must not overwrite a waiter that has moved on
 * (the CAS then fails).
 */
static inline void xseg_sigp_unclaim(struct xseg_sig_posix *a, uint64_t w)
{
	uint64_t claimed = w | XSEG_SIGP_SIGNALED;

	xq_cas(&a->waiter, &claimed, w);
}

/*
 * Count a waiter in (up) or out (down) of a 64-bit waiting count that
 * saturates at @sat (posixfd, segdev): a corrupt count can never wrap to 0
 * ("nobody waits") and lose a wake-up; saturated means "maybe waiting" for
 * good, until the next bind resets it. Bounded: after too many lost CAS
 * races up saturates instead of retrying, and down gives up (a signaler that
 * still sees our count only makes a spare syscall). The caller's seq_cst
 * fence publishes the count; the CASes are acq_rel.
 */
static inline void xseg_sig_count_up(uint64_t *p, uint64_t sat)
{
	uint64_t v = xq_load_relaxed(p);
	int i;

	for (i = 0; i < 64; i++) {
		if (v >= sat)
			return;
		if (xq_cas(p, &v, v + 1))
			return;
	}
	xq_store_relaxed(p, sat);
}

static inline void xseg_sig_count_down(uint64_t *p, uint64_t sat)
{
	uint64_t v = xq_load_relaxed(p);
	int i;

	for (i = 0; i < 64; i++) {
		if (v == 0 || v >= sat)
			return;
		if (xq_cas(p, &v, v - 1))
			return;
	}
}

/* -------------------------------------------------- per-process statistics */

/*
 * The first member of every user driver's per-process state (the priv that
 * join() returns): what this process did. Process-local, never shared;
 * updated with relaxed atomics (any thread may signal). Tests use
 * @syscalls to check that a signal nobody waits for costs no syscall.
 */
struct xseg_sig_stats {
	uint64_t syscalls;		/* syscalls made by signal() and the wait calls */
	uint64_t wakes;			/* signals that found a waiter and woke it */
};

/* Count one event in a struct xseg_sig_stats counter (relaxed: statistics). */
static inline void stat_add(uint64_t *c)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

#ifdef __cplusplus
}
#endif

#endif
