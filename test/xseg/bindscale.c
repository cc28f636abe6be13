/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test/xseg/bindscale.c - a dynamic bind (XSEG_ANY_PORT) does not look up
 * the owner of every port bound before the free one.
 *
 * Another process binds 200 dynamic ports. Our xseg_bind_port(ANY) scans
 * them for a free port; it used to ask /proc whether each one's owner was
 * alive, so its cost grew with the number of ports bound (bench/README.md,
 * "How cost grows"). Counted, not timed: the library's count of /proc reads
 * (xseg_sys_proc_stat_reads) may grow by a few for the one owner, never by
 * one per port. Then the owner is killed, and the next dynamic bind must
 * still recover and take its first port (a dead owner's ports are not
 * skipped).
 */
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "../xtest.h"
#include "common.h"

#define DYN	8u
#define HELD	200u

extern uint64_t xseg_sys_proc_stat_reads;	/* sys/user/sys_user.c */

static void test_any_bind_does_not_look_up_each_bound_port(void)
{
	struct xseg_config cfg = tx_create("posix:%s:256:16:4K:0:12:dynports=8");
	struct xseg *xs;
	int ready[2], hold[2], status;
	uint64_t reads;
	pid_t owner;
	char c;
	int p;

	CHECK(pipe(ready) == 0 && pipe(hold) == 0);
	owner = fork();
	CHECK(owner >= 0);
	if (owner == 0) {
		struct xseg *o;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(ready[0]);
		close(hold[1]);
		o = tx_join(&cfg, "futex");
		for (uint32_t i = 0; i < HELD; i++)
			CHECK(xseg_bind_port(o, XSEG_ANY_PORT, 0) == (int)(DYN + i));
		CHECK(write(ready[1], "r", 1) == 1);
		while (read(hold[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	CHECK(read(ready[0], &c, 1) == 1);
	xs = tx_join(&cfg, "futex");

	reads = __atomic_load_n(&xseg_sys_proc_stat_reads, __ATOMIC_RELAXED);
	p = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	reads = __atomic_load_n(&xseg_sys_proc_stat_reads, __ATOMIC_RELAXED) - reads;
	CHECKF(p == (int)(DYN + HELD), "bound %d, not the first free port %u", p, DYN + HELD);
	CHECKF(reads <= 4, "one dynamic bind past %u ports of one live owner read /proc %llu times "
	       "(once per bound port: the scan grows with the ports bound)", HELD, (unsigned long long)reads);
	printf("  past %u bound ports: %llu /proc reads\n", HELD, (unsigned long long)reads);

	/* A dead owner's port is still recovered and taken by the next dynamic bind. */
	CHECK(kill(owner, SIGKILL) == 0 && waitpid(owner, &status, 0) == owner);
	p = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECKF(p == (int)DYN, "after the owner died: bound %d, not its first port %u", p, DYN);
	close(ready[0]);
	close(hold[1]);
	xseg_leave(xs);
}

int main(void)
{
	xt_watchdog(60);
	RUN(test_any_bind_does_not_look_up_each_bound_port);
	return 0;
}
