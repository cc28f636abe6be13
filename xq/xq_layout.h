/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xq/xq_layout.h - the shared-memory layout of an xq queue.
 *
 * This is memory that every peer maps (C processes, the kernel, Node): fixed
 * width fields only, no pointers, no libc. Every field is written with the
 * atomics of sys/domain.h and read back as untrusted input (see xq_attach()).
 *
 *   +--------------------+ 0
 *   | header (64 B)      |  magic, version, order, capacity      (immutable)
 *   +--------------------+ 64
 *   | tail  (own line)   |  next enqueue position, free-running u64
 *   +--------------------+ 128
 *   | head  (own line)   |  next dequeue position, free-running u64
 *   +--------------------+ 192
 *   | threshold          |  SCQ livelock guard, signed
 *   +--------------------+ 256
 *   | slots[1 << order]  |  one u64 entry per slot
 *   +--------------------+
 *
 * Entry word:  bit 63..33 cycle (31 bits) | bit 32 safe | bit 31..0 index
 * Positions are free-running 64-bit counters; a position p lives in slot
 * p & (nslots - 1) (layout version 2; version 1 spread consecutive positions
 * over 8 cache lines) and belongs to cycle (p >> order) mod 2^31.
 */
#ifndef XQ_LAYOUT_H
#define XQ_LAYOUT_H

#include "../sys/domain.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XQ_MAGIC        0x31305158u	/* "XQ01" little endian */
#define XQ_LAYOUT_VERSION 2u	/* 2: position p uses slot p mod nslots (1: remapped) */
#define XQ_CACHELINE    64u
#define XQ_HDR_SIZE     256u

struct xq_layout {
	/* Written once by the creator before the queue is published. */
	uint32_t magic;
	uint32_t version;
	uint32_t order;		/* log2 of the number of slots */
	uint32_t capacity;	/* logical capacity, a power of two */
	uint32_t flags;
	uint32_t hdr_pad[11];
	/* Producers' line. */
	uint64_t tail;
	uint64_t tail_pad[7];
	/* Consumers' line. */
	uint64_t head;
	uint64_t head_pad[7];
	/* Written by both sides, rarely. Holds an int64 as a u64. */
	uint64_t threshold;
	uint64_t thr_pad[7];
	uint64_t slots[];
};

XSEG_STATIC_ASSERT(sizeof(struct xq_layout) == XQ_HDR_SIZE,
		   "xq header must be 256 bytes so that slots start on a cache line in every domain");
XSEG_STATIC_ASSERT(__builtin_offsetof(struct xq_layout, tail) == 64,
		   "tail must sit alone on the second cache line (producers' line)");
XSEG_STATIC_ASSERT(__builtin_offsetof(struct xq_layout, head) == 128,
		   "head must sit alone on the third cache line (consumers' line)");
XSEG_STATIC_ASSERT(__builtin_offsetof(struct xq_layout, threshold) == 192,
		   "threshold must not share a line with head or tail");
XSEG_STATIC_ASSERT(__builtin_offsetof(struct xq_layout, slots) == XQ_HDR_SIZE,
		   "slots follow the header immediately");

/*
 * A hold record: what one participant (a thread or process) is doing with an
 * index while it moves it in or out of a queue, so that recovery can give the
 * index back if the participant dies mid-way. Written only by its owner (and
 * by a recoverer after the owner is dead). 32 bytes.
 */
struct xq_hold {
	uint64_t state;		/* XQ_HOLD_* in bits 0..7; claim info above */
	uint64_t index;		/* bits 0..31 index, bits 32..63 claim count snapshot */
	uint64_t pos;		/* queue position of the pending operation */
	uint64_t qid;		/* caller-chosen id of the queue (e.g. its offset) */
};

XSEG_STATIC_ASSERT(sizeof(struct xq_hold) == 32, "xq_hold is 32 bytes in every domain");

#ifdef __cplusplus
}
#endif

#endif
