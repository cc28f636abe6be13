// SPDX-License-Identifier: BSD-2-Clause
/*
 * sys/kernel/sys_kernel.c - the domain functions of sys/domain.h for Linux
 * kernel modules, and xseg.ko's module entry points.
 *
 * Identity: everything in xseg.ko runs on behalf of kernel peers (modules),
 * never of the user process whose context it happens to run in (insmod, a
 * sysfs write, an ioctl), so xseg_sys_self() names the kernel: the pid
 * XSEG_SYS_KERNEL_PID and a random instance token chosen at load time as
 * start. A reload of xseg.ko is a new instance: ports bound by kernel peers
 * of an older instance are dead. User peers learn the token from
 * /sys/module/xseg/parameters/instance.
 *
 * Liveness of user processes: the pid is looked up in the initial pid
 * namespace, a zombie or exiting process is dead, and the start time is
 * compared in the unit user peers record: clock ticks (USER_HZ) since boot,
 * field 22 of /proc/<pid>/stat, computed from task->start_boottime exactly
 * as fs/proc/array.c does.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/rcupdate.h>
#include <linux/random.h>
#include <linux/timekeeping.h>
#include <linux/math64.h>
#include <linux/mutex.h>
#include <linux/printk.h>
#include "../../xseg/xseg_layout.h"
#include "kernel_internal.h"

static unsigned long instance;
module_param(instance, ulong, 0444);
MODULE_PARM_DESC(instance, "the start time of kernel peers (XSEG_SYS_KERNEL_PID): a random token of this load");

static int log_level = XSEG_LOG_WARN;
module_param(log_level, int, 0644);
MODULE_PARM_DESC(log_level, "0 errors, 1 warnings (default), 2 info, 3 debug");

void *xseg_sys_alloc(size_t size)
{
	return kvzalloc(size, GFP_KERNEL);
}

void xseg_sys_free(void *p)
{
	kvfree(p);
}

void *xseg_sys_heap_alloc(uint64_t size)
{
	return kvzalloc((size_t)size, GFP_KERNEL);
}

void xseg_sys_heap_free(void *p, uint64_t size)
{
	kvfree(p);
}

static DEFINE_MUTEX(registry_lock);

void xseg_sys_registry_lock(void)
{
	mutex_lock(&registry_lock);
}

void xseg_sys_registry_unlock(void)
{
	mutex_unlock(&registry_lock);
}

void xseg_sys_log(int level, const char *fmt, ...)
{
	struct va_format vaf;
	va_list ap;

	if (level > READ_ONCE(log_level))
		return;
	va_start(ap, fmt);
	vaf.fmt = fmt;
	vaf.va = &ap;
	switch (level) {
	case XSEG_LOG_ERR:
		pr_err("xseg: %pV\n", &vaf);
		break;
	case XSEG_LOG_WARN:
		pr_warn("xseg: %pV\n", &vaf);
		break;
	case XSEG_LOG_INFO:
		pr_info("xseg: %pV\n", &vaf);
		break;
	default:
		pr_debug("xseg: %pV\n", &vaf);
		break;
	}
	va_end(ap);
}

uint64_t xseg_sys_now_ns(void)
{
	return ktime_get_ns();
}

/* Stamps: the kernel's monotonic clock is already cheap to read. */
uint64_t xseg_sys_stamp_ns(void)
{
	return xseg_sys_now_ns();
}

uint64_t xseg_sys_realtime_ns(void)
{
	return ktime_get_real_ns();
}

void xseg_sys_self(uint32_t *pid, uint64_t *start, uint32_t *uid, uint32_t *gid)
{
	if (pid)
		*pid = XSEG_SYS_KERNEL_PID;
	if (start)
		*start = instance;
	if (uid)
		*uid = 0;
	if (gid)
		*gid = 0;
}

/* Clock ticks since boot, as /proc/<pid>/stat field 22 shows them. */
static u64 start_ticks(const struct task_struct *t)
{
#if (NSEC_PER_SEC % USER_HZ) == 0
	return div_u64(t->start_boottime, NSEC_PER_SEC / USER_HZ);
#else
	return div_u64(t->start_boottime * USER_HZ, NSEC_PER_SEC);
#endif
}

int xseg_sys_start_of(uint32_t pid, uint64_t *start)
{
	struct task_struct *t;
	int r = -ESRCH;

	if (pid == XSEG_SYS_KERNEL_PID) {
		*start = instance;
		return 0;
	}
	if (pid == 0 || pid > PID_MAX_LIMIT)
		return -ESRCH;
	rcu_read_lock();
	t = pid_task(find_pid_ns((int)pid, &init_pid_ns), PIDTYPE_TGID);
	if (t && !(t->exit_state & (EXIT_ZOMBIE | EXIT_DEAD)) && !(t->flags & PF_EXITING)) {
		*start = start_ticks(t);
		r = 0;
	}
	rcu_read_unlock();
	return r;
}

int xseg_sys_alive(uint32_t pid, uint64_t start)
{
	struct task_struct *t;
	int alive = 0;

	if (pid == XSEG_SYS_KERNEL_PID)
		return start == 0 || start == instance;
	if (pid == 0 || pid > PID_MAX_LIMIT)
		return 0;
	rcu_read_lock();
	t = pid_task(find_pid_ns((int)pid, &init_pid_ns), PIDTYPE_TGID);
	if (t && !(t->exit_state & (EXIT_ZOMBIE | EXIT_DEAD)) && !(t->flags & PF_EXITING))
		alive = start == 0 || start_ticks(t) == start;
	rcu_read_unlock();
	return alive;
}

uint32_t xseg_sys_page_size(void)
{
	return PAGE_SIZE;
}

int xseg_sys_group_id(const char *name, int32_t *gid)
{
	return -ENOENT;		/* the kernel has no group database: give gids by number */
}

int xseg_sys_discard(void *addr, uint64_t len)
{
	return -EOPNOTSUPP;	/* segdev memory is the driver's; it does not grow */
}

int xseg_sys_populate(void *addr, uint64_t len)
{
	return 0;
}

void xseg_sys_test_point(void)
{
}

void xseg_sys_yield(void)
{
	cond_resched();
	cpu_relax();
}

static int __init xseg_module_init(void)
{
	/* Nonzero, and never the "any start" wildcard 0. */
	while (!instance)
		instance = (unsigned long)get_random_u64();
	pr_info("xseg: loaded (layout %u.%u, instance %lu)\n",
		XSEG_VERSION_MAJOR, XSEG_VERSION_MINOR, instance);
	return 0;
}

static void __exit xseg_module_exit(void)
{
	xseg__heap_cleanup();
	pr_info("xseg: unloaded\n");
}

module_init(xseg_module_init);
module_exit(xseg_module_exit);
MODULE_LICENSE("Dual BSD/GPL");
MODULE_AUTHOR("xseg");
MODULE_DESCRIPTION("xseg: shared-memory segments and lock-free queues (the core, kernel domain)");
