// SPDX-License-Identifier: BSD-2-Clause
/*
 * drivers/kernel/posix/xseg_posix.c - xseg_posix.ko: the "posix" peer type in
 * the kernel domain. Kernel peers use it to wake user peers that sleep with
 * the user-domain posix driver (drivers/user/posix.c): the waiting thread
 * records pid|tid in the port's signal area (struct xseg_sig_posix in
 * xseg/signal_area.h) and sleeps in sigtimedwait({SIGIO}); a signaler that
 * turns the SIGNALED bit on by CAS (xseg_sigp_claim, the step both posix
 * drivers share) sends SIGIO to that thread.
 *
 * The pid and tid come from shared memory, so the kernel checks the target
 * before it signals, under rcu_read_lock and without sleeping:
 *   - the thread @tid exists in the initial pid namespace, is not a kernel
 *     thread or exiting, and belongs to process @pid;
 *   - its real or effective uid is the segment's owner: the euid that created
 *     the segdev segment, as segdev.ko recorded it (xseg_segdev_owner()), never
 *     the uid written in the segment header;
 *   - SIGIO is caught or ignored in it (a joined process), so the signal can
 *     never kill it.
 * A refused target gives -EPERM/-ESRCH and the claim is handed back.
 *
 * Kernel peers do not sleep with this driver: they are callback peers of the
 * segdev type. Binding a port with the posix type from the kernel is refused
 * (-EOPNOTSUPP); only signal() is served. Works on segdev segments only (the
 * only ones user peers can share with the kernel).
 */
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/cred.h>
#include <linux/signal.h>
#include <linux/rcupdate.h>
#include "../../../xseg/xseg.h"
#include "../../../xseg/signal_area.h"
#include "../segdev/xseg_segdev.h"

static atomic64_t sent = ATOMIC64_INIT(0), refused = ATOMIC64_INIT(0);

/* May SIGIO go to thread @tid of process @pid, owned by @owner? Under rcu_read_lock. */
static int kposix_check(struct task_struct *t, u32 pid, kuid_t owner)
{
	const struct cred *c;
	struct sighand_struct *sh;

	if (!t || (t->flags & (PF_KTHREAD | PF_EXITING)) || t->exit_state)
		return -ESRCH;
	if ((u32)task_tgid_nr(t) != pid)
		return -ESRCH;
	c = __task_cred(t);
	if (!uid_eq(c->uid, owner) && !uid_eq(c->euid, owner))
		return -EPERM;
	sh = rcu_dereference(t->sighand);
	if (!sh || READ_ONCE(sh->action[SIGIO - 1].sa.sa_handler) == SIG_DFL)
		return -EPERM;		/* SIGIO would kill it: not a joined process */
	return 0;
}

static int kposix_join(struct xseg *xs, void **priv)
{
	/* May run in atomic context (first signal to a posix port): no sleeping. */
	if (!try_module_get(THIS_MODULE))
		return -ENODEV;
	*priv = NULL;
	return 0;
}

static void kposix_leave(struct xseg *xs, void *priv)
{
	module_put(THIS_MODULE);
}

static int kposix_bind(struct xseg *xs, void *priv, uint32_t portno)
{
	return -EOPNOTSUPP;	/* kernel peers wait with the segdev driver */
}

static int kposix_signal(struct xseg *xs, void *priv, uint32_t portno)
{
	struct xseg_sig_posix *a = xseg_port_signal_area(xs, portno);
	uint64_t w;
	u32 pid, tid;
	kuid_t owner;
	int r;

	if (!a)
		return -EINVAL;
	/* Full fence between the caller's enqueue and our load of the waiter word. */
	xq_fence_seq_cst();
	r = xseg_sigp_claim(a, &pid, &tid, &w);
	if (r <= 0)
		return r;	/* nobody to wake, or a hostile or garbage word */
	if (tid > PID_MAX_LIMIT || pid > PID_MAX_LIMIT)
		return -EINVAL;	/* garbage: leave SIGNALED so nobody else tries */
	r = xseg_segdev_owner(xs, &owner);
	if (!r) {
		struct task_struct *t;

		rcu_read_lock();
		t = pid_task(find_pid_ns((int)tid, &init_pid_ns), PIDTYPE_PID);
		r = kposix_check(t, pid, owner);
		if (!r)
			r = send_sig(SIGIO, t, 1);
		rcu_read_unlock();
	} else {
		r = -EPERM;	/* not a segdev segment: no user peer is ours to signal */
	}
	if (!r) {
		atomic64_inc(&sent);
		return 0;
	}
	atomic64_inc(&refused);
	/* Hand the claim back so another signaler may try; fails if the waiter moved on. */
	xseg_sigp_unclaim(a, w);
	return r;
}

XSEG_DRIVER(posix) = {
	.abi_size = sizeof(struct xseg_driver_ops),
	.version = 1,
	.name = "posix",
	.join = kposix_join,
	.leave = kposix_leave,
	.bind = kposix_bind,
	.signal = kposix_signal,
};

static int __init xseg_posix_init(void)
{
	int r = xseg_register_driver(&xseg_driver_posix);

	if (r) {
		pr_err("xseg_posix: cannot register the posix driver: %d\n", r);
		return r;
	}
	pr_info("xseg_posix: driver 'posix' registered\n");
	return 0;
}

static void __exit xseg_posix_exit(void)
{
	xseg_unregister_driver(&xseg_driver_posix);
	pr_info("xseg_posix: unloaded (%lld SIGIO sent, %lld refused)\n",
		(long long)atomic64_read(&sent), (long long)atomic64_read(&refused));
}

module_init(xseg_posix_init);
module_exit(xseg_posix_exit);
MODULE_LICENSE("Dual BSD/GPL");
MODULE_AUTHOR("xseg");
MODULE_DESCRIPTION("xseg: SIGIO wake-ups from kernel peers to user peers of the posix type");
