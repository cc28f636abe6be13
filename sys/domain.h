/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/domain.h - the contract every execution domain implements.
 *
 * Domain-neutral code (xq/, xseg/) includes only this header. It selects the
 * domain's implementation, which must provide:
 *   - fixed-width integer types, bool, size_t, NULL
 *   - xseg_memset / xseg_memcpy
 *   - 64-bit atomics on plain uint64_t words in shared memory, each named by
 *     its ordering: xq_load_relaxed, xq_load_acquire, xq_store_relaxed,
 *     xq_store_release, xq_faa (acq_rel), xq_cas (acq_rel on success,
 *     acquire on failure), xq_fence_seq_cst
 *   - xq_cpu_relax() for spin loops, XSEG_LIKELY / XSEG_UNLIKELY
 *   - XSEG_STATIC_ASSERT(cond, msg)
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

#endif
