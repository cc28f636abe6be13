/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench/xq/cost.c - which of the queue's shared lines a producer and a
 * consumer touch per call, for bench/xq/cost.py (run under valgrind
 * --tool=lackey --trace-mem=yes). One thread, two handles (a producer's and
 * a consumer's) on one queue of capacity 1024 in the general mode, kept
 * half full: ROUNDS times one xq_enqueue then one xq_dequeue, each call
 * after a store to its side's marker word. Prints the marker addresses and
 * the queue's address for the script.
 */
#include <stdio.h>
#include <stdlib.h>
#include "xq/xq.h"

#define CAP 1024u
#define ROUNDS 2000u

volatile uint64_t xqcost_mark_prod, xqcost_mark_cons, xqcost_mark_off;

int main(void)
{
	size_t size = xq_size(CAP);
	void *mem = aligned_alloc(64, (size + 63) & ~(size_t)63);
	struct xq p, c;
	uint32_t i;

	if (!mem || xq_init_empty(mem, size, CAP) || xq_attach(&p, mem, size, XQ_INDEX_MAX + 1u) ||
	    xq_attach(&c, mem, size, XQ_INDEX_MAX + 1u))
		return 1;
	for (i = 0; i < CAP / 2; i++)
		if (!xq_enqueue(&p, i))
			return 1;
	printf("marks prod=%p cons=%p off=%p\nqueue %p size %zu rounds %u\n", (void *)&xqcost_mark_prod,
	       (void *)&xqcost_mark_cons, (void *)&xqcost_mark_off, mem, size, ROUNDS);
	fflush(stdout);
	for (i = 0; i < ROUNDS; i++) {
		xqcost_mark_prod = i;
		if (!xq_enqueue(&p, CAP / 2 + i))
			return 1;
		xqcost_mark_cons = i;
		if (xq_dequeue(&c) != i)
			return 1;
		xqcost_mark_off = i;
	}
	free(mem);
	return 0;
}
