/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/kernel/domain_kernel.h - the domain contract (sys/domain.h) for Linux
 * kernel modules (built with -DXSEG_DOMAIN_KERNEL).
 *
 * The shared layout structs use plain uint64_t words; here the xq_* atomics
 * map them to the kernel's own primitives (READ_ONCE/WRITE_ONCE,
 * smp_load_acquire/smp_store_release, atomic64 RMW ops on the same words cast
 * to atomic64_t, smp_mb), each at least as strong as the C11 ordering it
 * names, so a kernel peer and a C11 user peer agree on every shared word.
 *
 * The few libc names the core uses (snprintf, strcmp, strncpy, memcmp,
 * strlen) exist in the kernel with the same meaning; the C99 limit macros
 * and ENOTSUP that the kernel lacks are defined below with the user
 * domain's values.
 */
#ifndef XSEG_SYS_DOMAIN_KERNEL_H
#define XSEG_SYS_DOMAIN_KERNEL_H

#include <linux/types.h>
#include <linux/kernel.h>
#include <linux/limits.h>
#include <linux/string.h>
#include <linux/errno.h>
#include <linux/build_bug.h>
#include <linux/compiler.h>
#include <linux/atomic.h>
#include <asm/barrier.h>
#include <asm/processor.h>

#define xseg_memset memset
#define xseg_memcpy memcpy

/* xseg_join's wakeup callback: called by the kernel's drivers (sys/user/domain_user.h). */
#define XSEG_SYS_WAKEUP_CALLBACKS 1

#define XSEG_LIKELY(x)   likely(x)
#define XSEG_UNLIKELY(x) unlikely(x)
/* static_assert(cond, msg) from linux/build_bug.h: C11 _Static_assert. */
#define XSEG_STATIC_ASSERT(cond, msg) static_assert(cond, msg)

/* C99 <stdint.h> limits the core uses; the kernel spells them U64_MAX etc. */
#ifndef UINT64_MAX
#define UINT64_MAX U64_MAX
#endif
#ifndef UINT32_MAX
#define UINT32_MAX U32_MAX
#endif
#ifndef INT32_MAX
#define INT32_MAX S32_MAX
#endif
#ifndef INT64_MAX
#define INT64_MAX S64_MAX
#endif
#ifndef SIZE_MAX
/* linux/limits.h has SIZE_MAX since 4.x; kept for older trees. */
#define SIZE_MAX (~(size_t)0)
#endif

/*
 * xseg_sys_set_errno(e) - where the user domain sets errno (a NULL return of
 * xseg_get_request/accept/receive: EAGAIN nothing there, EPERM not our
 * port). The kernel has no errno: a kernel caller treats NULL as "nothing
 * now", as it would EAGAIN.
 */
#define xseg_sys_set_errno(e) ((void)(e))

/* POSIX ENOTSUP is EOPNOTSUPP on Linux (95): the value user peers see. */
#ifndef ENOTSUP
#define ENOTSUP EOPNOTSUPP
#endif

/*
 * The identity of kernel peers (see xseg_sys_self() in sys_kernel.c): code
 * in xseg.ko acts for kernel modules, never for the user process whose
 * context it happens to run in, so its port owner and peer entries carry
 * this reserved pid (above PID_MAX_LIMIT, 2^22) and the instance token of
 * the loaded xseg.ko as start time. User peers read the token from
 * /sys/module/xseg/parameters/instance to tell whether a kernel peer's
 * owner is still alive.
 */
/* XSEG_SYS_KERNEL_PID: see sys/domain.h */

/* ------------------------------------------------------------ atomics */

/*
 * The atomic64_t casts below act on the very same 8-byte words: atomic64_t
 * is { s64 counter; } with the size and alignment of a u64, and the kernel
 * is built with -fno-strict-aliasing.
 */
static inline uint64_t xq_load_relaxed(const uint64_t *p)
{
	return READ_ONCE(*p);
}

static inline uint64_t xq_load_acquire(const uint64_t *p)
{
	return smp_load_acquire(p);
}

static inline void xq_store_relaxed(uint64_t *p, uint64_t v)
{
	WRITE_ONCE(*p, v);
}

static inline void xq_store_release(uint64_t *p, uint64_t v)
{
	smp_store_release(p, v);
}

/* Fetch-and-add; returns the old value. Fully ordered (>= acq_rel). */
static inline uint64_t xq_faa(uint64_t *p, uint64_t v)
{
	return (uint64_t)atomic64_fetch_add((s64)v, (atomic64_t *)p);
}

/*
 * Compare-and-swap; on failure *expected gets the current value. Fully
 * ordered on success (>= acq_rel). A failed RMW is unordered in the kernel's
 * memory model (atomic_t.txt), so the failure path adds the kernel's
 * "acquire after a control dependency" (a compiler barrier on x86, whose
 * LOCK CMPXCHG is a full barrier either way).
 */
static inline bool xq_cas(uint64_t *p, uint64_t *expected, uint64_t desired)
{
	if (atomic64_try_cmpxchg((atomic64_t *)p, (s64 *)expected, (s64)desired))
		return true;
	smp_acquire__after_ctrl_dep();
	return false;
}

static inline void xq_fence_seq_cst(void)
{
	smp_mb();
}

static inline void xq_cpu_relax(void)
{
	cpu_relax();
}

#endif
