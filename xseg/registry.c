/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/registry.c - drivers (peer types) and segment types by name.
 *
 * The domain registers its built-ins (xseg__register_builtins, in
 * sys/<domain>/); a driver that is not built in is loaded on first use by the
 * domain's loader (in user space: xseg_<name>.so). Registration is expected
 * at start-up; lookups are lock-free reads of a table that only grows.
 */
#include "xseg_internal.h"

#define MAX_DRIVERS  16
#define MAX_SEGTYPES 8

static const struct xseg_driver_ops *drivers[MAX_DRIVERS];
static const struct xseg_segtype_ops *segtypes[MAX_SEGTYPES];
static uint64_t builtins_done;

static bool name_ok(const char *name)
{
	size_t n;

	if (!name)
		return false;
	n = strlen(name);
	return n > 0 && n < XSEG_TYPE_LEN;
}

/* The wait callbacks: none of version 1's retired slots, and arm/sleep/disarm all or none. */
static bool wait_ops_ok(const struct xseg_driver_ops *ops)
{
	size_t end = __builtin_offsetof(struct xseg_driver_ops, retired_wait) + sizeof(ops->retired_wait);
	int n = 0;

	if (ops->abi_size >= end && (ops->retired_wait[0] || ops->retired_wait[1] || ops->retired_wait[2])) {
		xseg_sys_log(XSEG_LOG_ERR, "driver '%s': prepare_wait, cancel_wait and wait_signal are "
			     "retired; implement arm, sleep and disarm (see xseg.h)", ops->name);
		return false;
	}
	if (ops->abi_size < __builtin_offsetof(struct xseg_driver_ops, disarm) + sizeof(ops->disarm))
		return true;
	n = !!ops->arm + !!ops->sleep + !!ops->disarm;
	if (n == 1 || n == 2) {
		xseg_sys_log(XSEG_LOG_ERR, "driver '%s': arm, sleep and disarm go together (it has %d of them)",
			     ops->name, n);
		return false;
	}
	return true;
}

int xseg_register_driver(const struct xseg_driver_ops *ops)
{
	unsigned i;

	if (!ops || !name_ok(ops->name) || ops->abi_size < __builtin_offsetof(struct xseg_driver_ops, join) ||
	    !wait_ops_ok(ops))
		return -EINVAL;
	for (i = 0; i < MAX_DRIVERS; i++) {
		const struct xseg_driver_ops *cur = __atomic_load_n(&drivers[i], __ATOMIC_ACQUIRE);

		if (cur && !strcmp(cur->name, ops->name))
			return cur == ops ? 0 : -EEXIST;
		if (!cur) {
			const struct xseg_driver_ops *expect = NULL;

			/* acq_rel: a looker-up that sees the pointer sees the ops. */
			if (__atomic_compare_exchange_n(&drivers[i], &expect, ops, false,
							__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				return 0;
			i--;	/* lost a race for this entry: look at it again */
		}
	}
	return -ENOSPC;
}

int xseg_register_segtype(const struct xseg_segtype_ops *ops)
{
	unsigned i;

	if (!ops || !name_ok(ops->name) || !ops->create || !ops->map || !ops->unmap)
		return -EINVAL;
	for (i = 0; i < MAX_SEGTYPES; i++) {
		const struct xseg_segtype_ops *cur = __atomic_load_n(&segtypes[i], __ATOMIC_ACQUIRE);

		if (cur && !strcmp(cur->name, ops->name))
			return cur == ops ? 0 : -EEXIST;
		if (!cur) {
			const struct xseg_segtype_ops *expect = NULL;

			if (__atomic_compare_exchange_n(&segtypes[i], &expect, ops, false,
							__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				return 0;
			i--;
		}
	}
	return -ENOSPC;
}

/*
 * Remove a registration (a kernel module that registered a driver or a
 * segment type calls this before it unloads). Callers make sure no handle
 * still uses it. Returns 0 or -ENOENT.
 */
static int unregister(const void **table, unsigned n, const void *ops)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		const void *expect = ops;

		if (ops && __atomic_compare_exchange_n(&table[i], &expect, NULL, false,
						       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return 0;
	}
	return -ENOENT;
}

int xseg_unregister_driver(const struct xseg_driver_ops *ops)
{
	return unregister((const void **)drivers, MAX_DRIVERS, ops);
}

int xseg_unregister_segtype(const struct xseg_segtype_ops *ops)
{
	return unregister((const void **)segtypes, MAX_SEGTYPES, ops);
}

static void ensure_builtins(void)
{
	uint64_t zero = 0;

	if (__atomic_load_n(&builtins_done, __ATOMIC_ACQUIRE) == 2)
		return;
	if (__atomic_compare_exchange_n(&builtins_done, &zero, 1, false,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		xseg__register_builtins();
		__atomic_store_n(&builtins_done, 2, __ATOMIC_RELEASE);
		return;
	}
	while (__atomic_load_n(&builtins_done, __ATOMIC_ACQUIRE) != 2)
		xseg_sys_yield();	/* another thread is registering (start-up only) */
}

const struct xseg_driver_ops *xseg_find_driver(const char *name)
{
	const struct xseg_driver_ops *ops;
	unsigned i;

	if (!name_ok(name))
		return NULL;
	ensure_builtins();
	for (i = 0; i < MAX_DRIVERS; i++) {
		ops = __atomic_load_n(&drivers[i], __ATOMIC_ACQUIRE);
		if (ops && !strcmp(ops->name, name))
			return ops;
	}
	ops = xseg__load_driver(name);
	if (ops && xseg_register_driver(ops) == 0)
		return ops;
	return NULL;
}

const struct xseg_segtype_ops *xseg_find_segtype(const char *name)
{
	unsigned i;

	if (!name_ok(name))
		return NULL;
	ensure_builtins();
	for (i = 0; i < MAX_SEGTYPES; i++) {
		const struct xseg_segtype_ops *ops = __atomic_load_n(&segtypes[i], __ATOMIC_ACQUIRE);

		if (ops && !strcmp(ops->name, name))
			return ops;
	}
	return NULL;
}

/*
 * xseg__drivers_destroy - tell every driver that can clean up after a
 * segment (its abi_size covers the destroy hook) that @segname is gone.
 */
void xseg__drivers_destroy(const char *segname)
{
	unsigned i;

	ensure_builtins();
	for (i = 0; i < MAX_DRIVERS; i++) {
		const struct xseg_driver_ops *ops = __atomic_load_n(&drivers[i], __ATOMIC_ACQUIRE);

		if (ops && ops->abi_size >= __builtin_offsetof(struct xseg_driver_ops, destroy) +
					    sizeof(ops->destroy) && ops->destroy)
			ops->destroy(segname);
	}
}

int xseg_initialize(void)
{
	ensure_builtins();
	return 0;
}

void xseg_finalize(void)
{
	unsigned i;

	for (i = 0; i < MAX_DRIVERS; i++)
		__atomic_store_n(&drivers[i], NULL, __ATOMIC_RELEASE);
	for (i = 0; i < MAX_SEGTYPES; i++)
		__atomic_store_n(&segtypes[i], NULL, __ATOMIC_RELEASE);
	__atomic_store_n(&builtins_done, 0, __ATOMIC_RELEASE);
}
