/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/user/domain_user.h - the domain contract (sys/domain.h) for user space:
 * C processes and the Node addon. Atomics map to the C11 memory model through
 * the GCC/Clang __atomic builtins on plain uint64_t words, so the same layout
 * structs compile unchanged in the kernel (which maps them to its own
 * primitives).
 */
#ifndef XSEG_SYS_DOMAIN_USER_H
#define XSEG_SYS_DOMAIN_USER_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include <string.h>
#include <errno.h>
#include <stdio.h>	/* snprintf */

#ifdef __cplusplus
extern "C" {
#endif

/* Functions that return a pointer report why they failed in errno. */
#define xseg_sys_set_errno(e) ((void)(errno = (e)))

#define xseg_memset memset
#define xseg_memcpy memcpy

/*
 * Whether xseg_join's wakeup callback exists here: not in user space (and the
 * Node addon), where a callback-style peer polls xseg_poll_fd() in its event
 * loop; xseg_join refuses a callback (-EINVAL) rather than keep one it would
 * never call. Kernel peers have it (sys/kernel/domain_kernel.h).
 */
#define XSEG_SYS_WAKEUP_CALLBACKS 0

#define XSEG_LIKELY(x)   __builtin_expect(!!(x), 1)
#define XSEG_UNLIKELY(x) __builtin_expect(!!(x), 0)
#ifdef __cplusplus	/* the Node addon includes the layout headers from C++ */
#define XSEG_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define XSEG_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

static inline uint64_t xq_load_relaxed(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline uint64_t xq_load_acquire(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void xq_store_relaxed(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline void xq_store_release(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* Fetch-and-add; returns the old value. acq_rel: a full RMW on x86. */
static inline uint64_t xq_faa(uint64_t *p, uint64_t v)
{
	return __atomic_fetch_add(p, v, __ATOMIC_ACQ_REL);
}

/*
 * Compare-and-swap. On failure *expected is updated with the current value.
 * acq_rel on success, acquire on failure.
 */
static inline bool xq_cas(uint64_t *p, uint64_t *expected, uint64_t desired)
{
	return __atomic_compare_exchange_n(p, expected, desired, false,
					   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

static inline void xq_fence_seq_cst(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static inline void xq_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

#ifdef __cplusplus
}
#endif

#endif
