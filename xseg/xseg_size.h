/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/xseg_size.h - the one size grammar of every xseg tool (docs/cli.md#sizes).
 *
 *   SIZE = DIGITS [UNIT] [SUFFIX]
 *   UNIT = K | M | G | T          (any case; powers of 1024)
 *   SUFFIX = B | iB               (iB only after a UNIT)
 *
 * 4096 = 4096B = 4k = 4K = 4KB = 4KiB; 1M = 1048576; 1T = 2^40. A unit is
 * always a power of 1024: KB means 1024 (as in the spec strings), never
 * 1000. Decimal digits only: no sign, no spaces, no 0x, no fraction. A value
 * that does not fit 64 bits is an error, never a wrap.
 *
 * Domain-neutral and header-only (static inline, no libc): the same function
 * runs in user space, in the kernel and in the Node addon. The TypeScript
 * twin is peers/node/cli/size.ts; test/xseg/size-vectors.txt holds the
 * vectors both are tested with (test/xseg/size.c, test/node/size.test.ts).
 */
#ifndef XSEG_SIZE_H
#define XSEG_SIZE_H

#include "../sys/domain.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What xseg_parse_size() returns besides 0. */
#define XSEG_SIZE_SYNTAX	(-1)	/* not a size */
#define XSEG_SIZE_RANGE		(-2)	/* does not fit 64 bits */

/*
 * xseg_parse_size - parse the @n bytes at @s (no NUL needed) as a SIZE.
 * Returns 0 and sets *@v, XSEG_SIZE_SYNTAX or XSEG_SIZE_RANGE (*@v then
 * untouched). Any domain, any context; does not sleep.
 */
static inline int xseg_parse_size(const char *s, unsigned long n, uint64_t *v)
{
	unsigned long d = 0, m, i;
	unsigned shift = 0;
	const char *u;
	uint64_t x = 0;

	if (!s)
		return XSEG_SIZE_SYNTAX;
	while (d < n && s[d] >= '0' && s[d] <= '9')
		d++;
	if (!d)
		return XSEG_SIZE_SYNTAX;
	u = s + d;
	m = n - d;
	if (m) {
		switch (u[0] | 0x20) {
		case 'k': shift = 10; break;
		case 'm': shift = 20; break;
		case 'g': shift = 30; break;
		case 't': shift = 40; break;
		}
		if (shift) {
			u++;
			m--;
		}
	}
	if (m == 1 && (u[0] | 0x20) == 'b')
		m = 0;
	else if (shift && m == 2 && (u[0] | 0x20) == 'i' && (u[1] | 0x20) == 'b')
		m = 0;
	if (m)
		return XSEG_SIZE_SYNTAX;
	for (i = 0; i < d; i++) {
		unsigned c = (unsigned)(s[i] - '0');

		if (x > (~(uint64_t)0 - c) / 10)
			return XSEG_SIZE_RANGE;
		x = x * 10 + c;
	}
	if (x > (~(uint64_t)0 >> shift))
		return XSEG_SIZE_RANGE;
	*v = x << shift;
	return 0;
}

/* xseg_parse_size_str - the same for a NUL-terminated @s. */
static inline int xseg_parse_size_str(const char *s, uint64_t *v)
{
	unsigned long n = 0;

	if (!s)
		return XSEG_SIZE_SYNTAX;
	while (s[n])
		n++;
	return xseg_parse_size(s, n, v);
}

#ifdef __cplusplus
}
#endif

#endif
