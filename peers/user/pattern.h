/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/pattern.h - the deterministic data pattern of patternd and of
 * the tests and benchmarks that check it: byte i of target T at offset O is
 * a function of (T, O + i) only, so any reader can verify any range.
 */
#ifndef XSEG_PATTERN_H
#define XSEG_PATTERN_H

#include <stdint.h>
#include <stddef.h>

static inline uint64_t pattern_seed(const char *target, uint32_t len)
{
	uint64_t h = 0xCBF29CE484222325ull;	/* FNV-1a */

	for (uint32_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)target[i]) * 0x100000001B3ull;
	return h;
}

static inline uint8_t pattern_byte(uint64_t seed, uint64_t pos)
{
	uint64_t x = seed ^ (pos >> 3) * 0x9E3779B97F4A7C15ull;

	x ^= x >> 29;
	return (uint8_t)(x >> ((pos & 7) * 8));
}

static inline void pattern_fill(uint8_t *buf, uint64_t len, uint64_t seed, uint64_t off)
{
	for (uint64_t i = 0; i < len; i++)
		buf[i] = pattern_byte(seed, off + i);
}

/* Returns the index of the first wrong byte, or len if all match. */
static inline uint64_t pattern_check(const uint8_t *buf, uint64_t len, uint64_t seed, uint64_t off)
{
	for (uint64_t i = 0; i < len; i++)
		if (buf[i] != pattern_byte(seed, off + i))
			return i;
	return len;
}

#endif
