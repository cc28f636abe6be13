/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: producers and consumers as separate processes (fork) over real shared memory over one
 * queue: every producer's sequence arrives complete, once, and in order at
 * each consumer; single and batch operations; small queues so full and empty
 * are hit constantly. Sized for 2 cores (XSEG_STRESS_ITEMS to scale).
 */
#include "stress.h"

int main(void)
{
	stress_main(true);
	return 0;
}
