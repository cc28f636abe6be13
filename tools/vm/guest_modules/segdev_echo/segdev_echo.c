// SPDX-License-Identifier: BSD-2-Clause
/*
 * tools/vm/guest_modules/segdev_echo - a kernel peer of a segdev segment for
 * the VM tests: it serves the segment's doorbell and echoes every ring of a
 * port back to the eventfd user space registered for that port, which proves
 * the user -> kernel doorbell and the kernel -> user wake-up end to end.
 *
 *   insmod segdev_echo.ko seg=NAME
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/err.h>
#include <linux/atomic.h>
#include "sys/kernel/segdev/segdev.h"

static char *seg = "";
module_param(seg, charp, 0444);
MODULE_PARM_DESC(seg, "the segdev segment to serve");

static struct segdev_seg *the_seg;
static atomic64_t rings;

/* Atomic context (rcu_read_lock): must not sleep; segdev_notify never does. */
static void echo(void *arg, u32 port)
{
	atomic64_inc(&rings);
	segdev_notify(arg, port);
}

static int __init segdev_echo_init(void)
{
	int r;

	the_seg = segdev_get(seg);
	if (IS_ERR(the_seg)) {
		pr_err("segdev_echo: segment '%s': %ld\n", seg, PTR_ERR(the_seg));
		return PTR_ERR(the_seg);
	}
	r = segdev_set_doorbell(the_seg, echo, the_seg);
	if (r) {
		segdev_put(the_seg);
		return r;
	}
	pr_info("segdev_echo: serving '%s' (%llu bytes)\n", seg, segdev_size(the_seg));
	return 0;
}

static void __exit segdev_echo_exit(void)
{
	segdev_clear_doorbell(the_seg);
	segdev_put(the_seg);
	pr_info("segdev_echo: done, %lld rings\n", (long long)atomic64_read(&rings));
}

module_init(segdev_echo_init);
module_exit(segdev_echo_exit);
MODULE_LICENSE("Dual BSD/GPL");
MODULE_DESCRIPTION("segdev doorbell -> eventfd echo (VM test module)");
