/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/registry.c - drivers (peer types) and segment types by name.
 *
 * The built-ins of the domain are the lines of its list,
 * sys/<domain>/builtins.h, registered here before the first lookup; a driver
 * that is not built in is loaded on first use by the domain's loader
 * (xseg__load_driver: in user space xseg_<name>.so), and kernel modules
 * register their own at load. Registration is expected at start-up; lookups
 * are lock-free reads of a table that only grows.
 */
#include "xseg_internal.h"

/* The domain's list: the node domain is the user domain's code in the addon. */
#if defined(XSEG_DOMAIN_KERNEL)
#define XSEG__BUILTINS "../sys/kernel/builtins.h"
#elif defined(XSEG_DOMAIN_NODE)
#define XSEG__BUILTINS "../sys/node/builtins.h"
#else
#define XSEG__BUILTINS "../sys/user/builtins.h"
#endif

#define XSEG_BUILTIN_SEGTYPE(n)	extern XSEG_SEGTYPE(n);
#define XSEG_BUILTIN_DRIVER(n)	extern XSEG_DRIVER(n);
#include XSEG__BUILTINS
#undef XSEG_BUILTIN_SEGTYPE
#undef XSEG_BUILTIN_DRIVER

/* Each built-in with the name its list line gives it. */
static const struct builtin {
	const struct xseg_segtype_ops *segtype;
	const struct xseg_driver_ops *driver;
	const char *name;
} builtins[] = {
#define XSEG_BUILTIN_SEGTYPE(n)	{ &xseg_segtype_##n, NULL, #n },
#define XSEG_BUILTIN_DRIVER(n)	{ NULL, &xseg_driver_##n, #n },
#include XSEG__BUILTINS
#undef XSEG_BUILTIN_SEGTYPE
#undef XSEG_BUILTIN_DRIVER
};

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
		const struct xseg_driver_ops *cur = xa_load_acqptr(&drivers[i]);

		if (cur && !strcmp(cur->name, ops->name))
			return cur == ops ? 0 : -EEXIST;
		if (!cur) {
			const struct xseg_driver_ops *expect = NULL;

			/* acq_rel: a looker-up that sees the pointer sees the ops. */
			if (xa_cas_acqrelptr(&drivers[i], &expect, ops))
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
		const struct xseg_segtype_ops *cur = xa_load_acqptr(&segtypes[i]);

		if (cur && !strcmp(cur->name, ops->name))
			return cur == ops ? 0 : -EEXIST;
		if (!cur) {
			const struct xseg_segtype_ops *expect = NULL;

			if (xa_cas_acqrelptr(&segtypes[i], &expect, ops))
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

		if (ops && xa_cas_acqrelptr(&table[i], &expect, NULL))
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

/* Register the list's built-ins (once, before the first lookup). */
static void register_builtins(void)
{
	size_t i;

	for (i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
		const struct builtin *b = &builtins[i];
		const char *name = b->segtype ? b->segtype->name : b->driver->name;
		int r;

		if (!name || strcmp(name, b->name)) {
			xseg_sys_log(XSEG_LOG_ERR, "built-in %s '%s' is named '%s': not registered",
				     b->segtype ? "segment type" : "driver", b->name, name ? name : "(null)");
			continue;
		}
		r = b->segtype ? xseg_register_segtype(b->segtype) : xseg_register_driver(b->driver);
		if (r)
			xseg_sys_log(XSEG_LOG_ERR, "built-in %s '%s': not registered (%d)",
				     b->segtype ? "segment type" : "driver", b->name, r);
	}
}

static void ensure_builtins(void)
{
	uint64_t zero = 0;

	if (xa_load_acq64(&builtins_done) == 2)
		return;
	if (xa_cas_acqrel64(&builtins_done, &zero, 1)) {
		register_builtins();
		xa_store_rel64(&builtins_done, 2);
		return;
	}
	while (xa_load_acq64(&builtins_done) != 2)
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
		ops = xa_load_acqptr(&drivers[i]);
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
		const struct xseg_segtype_ops *ops = xa_load_acqptr(&segtypes[i]);

		if (ops && !strcmp(ops->name, name))
			return ops;
	}
	return NULL;
}

/*
 * xseg__drivers_destroy - tell every driver that can clean up after a
 * segment that the segment @id is gone: through destroy_ident where its
 * abi_size covers it, else through the older destroy (by name).
 */
#define HAS_OP(ops, f) ((ops)->abi_size >= __builtin_offsetof(struct xseg_driver_ops, f) + \
			sizeof((ops)->f) && (ops)->f)
void xseg__drivers_destroy(const struct xseg_seg_ident *id)
{
	unsigned i;

	ensure_builtins();
	for (i = 0; i < MAX_DRIVERS; i++) {
		const struct xseg_driver_ops *ops = xa_load_acqptr(&drivers[i]);

		if (!ops)
			continue;
		if (HAS_OP(ops, destroy_ident))
			ops->destroy_ident(id);
		else if (HAS_OP(ops, destroy))
			ops->destroy(id->name);
	}
}
#undef HAS_OP

int xseg_initialize(void)
{
	ensure_builtins();
	return 0;
}

void xseg_finalize(void)
{
	unsigned i;

	for (i = 0; i < MAX_DRIVERS; i++)
		xa_store_relptr(&drivers[i], NULL);
	for (i = 0; i < MAX_SEGTYPES; i++)
		xa_store_relptr(&segtypes[i], NULL);
	xa_store_rel64(&builtins_done, 0);
}
