/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/domain.h - the contract every execution domain implements.
 *
 * Domain-neutral code (xq/, xseg/) includes only this header. It selects the
 * domain's implementation, which must provide:
 *   - fixed-width integer types, bool, size_t, NULL
 *   - xseg_memset / xseg_memcpy
 *   - xseg_sys_set_errno(e): where the domain has errno, set it (the kernel
 *     has none: a no-op there; callers also get NULL)
 *   - the queue's 64-bit atomics on plain uint64_t words in shared memory,
 *     mapped to the domain's own primitives, each named by its ordering:
 *     xq_load_relaxed, xq_load_acquire, xq_store_relaxed, xq_store_release,
 *     xq_faa (acq_rel), xq_cas (acq_rel on success, acquire on failure),
 *     xq_fence_seq_cst (xq/ and the drivers use these)
 *   - xq_cpu_relax() for spin loops, XSEG_LIKELY / XSEG_UNLIKELY
 *   - XSEG_STATIC_ASSERT(cond, msg)
 *   - the functions declared below (allocation, logging, time, identity)
 * The user domain (C processes) and the node domain (the addon) share
 * sys/user/domain_user.h; the kernel domain has sys/kernel/domain_kernel.h.
 *
 * This header adds, for every domain, the atomic vocabulary of the core
 * (xseg/) and the addon (see "Atomic operations" below): no other file of
 * theirs spells a raw __atomic_ builtin (test/scripts/atomics.sh checks).
 */
#ifndef XSEG_SYS_DOMAIN_H
#define XSEG_SYS_DOMAIN_H

#if defined(XSEG_DOMAIN_KERNEL)
#include "kernel/domain_kernel.h"
#else
#include "user/domain_user.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ------------------------------------------------------------ atomics
 *
 * Atomic operations of the core and the addon, on words in shared memory
 * (or on process-wide tables). One name per operation, width and ordering:
 *
 *     xa_<op>_<order><width>
 *
 *   op      load, store, cas (strong compare-and-swap: on failure *expected
 *           gets the current value), add, sub, or, and (fetch-and-op:
 *           return the old value)
 *   order   rlx relaxed, acq acquire, rel release, acqrel acquire+release;
 *           cas_acqrel is acq_rel on success and acquire on failure (the
 *           only cas the core uses)
 *   width   32 (uint32_t), 64 (uint64_t), ptr (a pointer-sized object of
 *           any pointer type: a macro, so the type is kept)
 *
 * They are the compiler's __atomic builtins (GCC and Clang, C and C++), the
 * C11 memory model in every domain: the kernel build compiled the core's
 * builtins this way before they had names, and a kernel peer agrees with a
 * user peer on every word because both sides use the same instructions.
 * Signed fields (int32_t) go through their unsigned twin's pointer.
 */
static inline uint32_t xa_load_rlx32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline uint32_t xa_load_acq32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline uint64_t xa_load_rlx64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline uint64_t xa_load_acq64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

static inline void xa_store_rlx32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void xa_store_rel32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void xa_store_rlx64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void xa_store_rel64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

static inline bool xa_cas_acqrel32(uint32_t *p, uint32_t *expected, uint32_t desired)
{
	return __atomic_compare_exchange_n(p, expected, desired, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

static inline bool xa_cas_acqrel64(uint64_t *p, uint64_t *expected, uint64_t desired)
{
	return __atomic_compare_exchange_n(p, expected, desired, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

static inline uint64_t xa_add_rlx64(uint64_t *p, uint64_t v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
static inline uint64_t xa_sub_rlx64(uint64_t *p, uint64_t v) { return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED); }
static inline uint32_t xa_or_acqrel32(uint32_t *p, uint32_t v) { return __atomic_fetch_or(p, v, __ATOMIC_ACQ_REL); }
static inline uint32_t xa_and_acqrel32(uint32_t *p, uint32_t v) { return __atomic_fetch_and(p, v, __ATOMIC_ACQ_REL); }
static inline uint64_t xa_or_acqrel64(uint64_t *p, uint64_t v) { return __atomic_fetch_or(p, v, __ATOMIC_ACQ_REL); }

/* Pointer-sized: *pp must be a pointer (checked at compile time by its size). */
#define XA__PTR(pp) ((void)sizeof(char[sizeof(*(pp)) == sizeof(void *) ? 1 : -1]))
#define xa_load_acqptr(pp) (XA__PTR(pp), __atomic_load_n((pp), __ATOMIC_ACQUIRE))
#define xa_store_relptr(pp, v) (XA__PTR(pp), __atomic_store_n((pp), (v), __ATOMIC_RELEASE))
#define xa_cas_acqrelptr(pp, expected, desired)						\
	(XA__PTR(pp), __atomic_compare_exchange_n((pp), (expected), (desired), false,		\
						  __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))

/* Process-local memory (never shared). */
void *xseg_sys_alloc(size_t size);
void xseg_sys_free(void *p);

/*
 * Zeroed, page-aligned memory for the heap segment type (large: mmap in user
 * space, kvzalloc in the kernel), and the lock of the process- or kernel-wide
 * registries (it may sleep; never held across a call out of the library).
 */
void *xseg_sys_heap_alloc(uint64_t size);
void xseg_sys_heap_free(void *p, uint64_t size);
void xseg_sys_registry_lock(void);
void xseg_sys_registry_unlock(void);

/* Logging: level 0 error, 1 warning, 2 info, 3 debug (XSEG_LOG_LEVEL in user). */
enum { XSEG_LOG_ERR = 0, XSEG_LOG_WARN = 1, XSEG_LOG_INFO = 2, XSEG_LOG_DEBUG = 3 };
void xseg_sys_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Monotonic and wall-clock time in nanoseconds. */
uint64_t xseg_sys_now_ns(void);
uint64_t xseg_sys_realtime_ns(void);
/*
 * The monotonic clock for request stamps: xseg_sys_now_ns's time, read
 * cheaper where the domain can (user: from the TSC, anchored to it every few
 * ms, within tens of ns of it; kernel: the same ktime). Not for timeouts.
 */
uint64_t xseg_sys_stamp_ns(void);

/*
 * Identity of the calling process (or kernel context): pid, start time in
 * domain ticks (with the pid it names a process uniquely across pid reuse),
 * uid and gid.
 */
void xseg_sys_self(uint32_t *pid, uint64_t *start, uint32_t *uid, uint32_t *gid);

/*
 * xseg_sys_alive - is the process @pid that started at @start still running?
 * @start 0 means any process with that pid. Returns 1 (alive), 0 (gone, a
 * zombie, or a reused pid: dead for our purposes).
 */
int xseg_sys_alive(uint32_t pid, uint64_t start);

/*
 * xseg_sys_start_of - the start time of the live process @pid (as
 * xseg_sys_self reports it for itself). Returns 0, or -ESRCH if @pid is not
 * running (or is a zombie).
 */
int xseg_sys_start_of(uint32_t pid, uint64_t *start);

/*
 * Kernel peers have no process of their own: the kernel domain reports this
 * pid, with a start token chosen when xseg.ko loads (readable from
 * /sys/module/xseg/parameters/instance), so user peers can tell a port bound
 * by a loaded module from one bound by a module that was unloaded.
 */
#define XSEG_SYS_KERNEL_PID 0x7FFFFFF0u

uint32_t xseg_sys_page_size(void);

/* xseg_sys_group_id - the gid of group @name: 0, -ENOENT (no such group), -ENOMEM. */
int xseg_sys_group_id(const char *name, int32_t *gid);
void xseg_sys_yield(void);

/*
 * xseg_sys_discard - give the memory of [addr, addr + len) (page aligned, in
 * a mapped segment) back to the system: its contents become zero when next
 * touched (growth's shrink). 0, or -EOPNOTSUPP where the domain cannot.
 */
int xseg_sys_discard(void *addr, uint64_t len);

/*
 * xseg_sys_populate - allocate the memory of [addr, addr + len) (page
 * aligned, in a mapped segment) now, so that a full filesystem or memory
 * shortage is an error here (-ENOSPC) rather than SIGBUS at a later touch.
 * 0 also where the domain cannot tell (old kernels, the kernel domain).
 */
int xseg_sys_populate(void *addr, uint64_t len);

/*
 * xseg_sys_test_point - a numbered step of a multi-step shared update (growth):
 * the user domain's tests make a process die at the Nth (XSEG_TEST_DIE_AT=N);
 * a no-op otherwise and in the kernel.
 */
void xseg_sys_test_point(void);

#ifdef __cplusplus
}
#endif

#endif
