/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: producers and consumers as threads of one process over one
 * queue: every producer's sequence arrives complete, once, and in order at
 * each consumer; single and batch operations; small queues so full and empty
 * are hit constantly. Sized for 2 cores (XSEG_STRESS_ITEMS to scale).
 */
#include "stress.h"

static uint32_t items;

static void test_1p1c(void) { stress_run(false, 1, 1, items, 16, 0); }
static void test_2p2c(void) { stress_run(false, 2, 2, items, 64, 0); }
static void test_4p1c(void) { stress_run(false, 4, 1, items / 2, 8, 0); }
static void test_1p4c(void) { stress_run(false, 1, 4, items, 8, 0); }
static void test_2p2c_batch(void) { stress_run(false, 2, 2, items, 32, 8); }
static void test_3p3c_cap1(void) { stress_run(false, 3, 3, items / 4, 1, 0); }

int main(void)
{
	items = (uint32_t)xt_env_long("XSEG_STRESS_ITEMS", 200000);
	xt_watchdog(240);
	RUN(test_1p1c);
	RUN(test_2p2c);
	RUN(test_4p1c);
	RUN(test_1p4c);
	RUN(test_2p2c_batch);
	RUN(test_3p3c_cap1);
	return 0;
}
