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
 *   - 64-bit atomics on plain uint64_t words in shared memory, each named by
 *     its ordering: xq_load_relaxed, xq_load_acquire, xq_store_relaxed,
 *     xq_store_release, xq_faa (acq_rel), xq_cas (acq_rel on success,
 *     acquire on failure), xq_fence_seq_cst
 *   - xq_cpu_relax() for spin loops, XSEG_LIKELY / XSEG_UNLIKELY
 *   - XSEG_STATIC_ASSERT(cond, msg)
 *   - the functions declared below (allocation, logging, time, identity)
 * The user domain (C processes) and the node domain (the addon) share
 * sys/user/domain_user.h; the kernel domain has sys/kernel/domain_kernel.h.
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

#ifdef __cplusplus
}
#endif

#endif
