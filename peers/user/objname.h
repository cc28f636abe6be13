/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/objname.h - object names as the object storage peers (filed,
 * radosd) accept them: 1..255 bytes (a directory entry's limit, NAME_MAX),
 * no '/', no control characters (NUL and DEL included), not "." or "..".
 * One rule for both, so a name valid at one store is valid at the other,
 * and names starting with a control byte are free for the peers' own
 * records (temporary files, locks).
 *
 * Header-only (base.mk links each .c of peers/user as a program).
 */
#ifndef XSEG_PEERS_OBJNAME_H
#define XSEG_PEERS_OBJNAME_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "xseg/xseg.h"

/* Object names: what a request can carry and a directory entry can hold (255). */
#define NAME_LIMIT (XSEG_TARGET_MAX < NAME_MAX ? XSEG_TARGET_MAX : NAME_MAX)

/*
 * objname_bad_word - does any byte of @x (8 bytes of a name) fall outside a
 * name: below 0x20, 0x7f, '/'? Word at a time (the byte-wise loop was a
 * fifth of filed's instructions per 4K read): the "has a byte below n"
 * and "has a zero byte" tests of a word are exact as yes/no answers (a
 * borrow only starts at a byte that matches), for bytes >= 0x80 too (UTF-8
 * is allowed).
 */
static inline int objname_bad_word(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	uint64_t del = x ^ (ones * 0x7f), slash = x ^ (ones * '/');

	return (((x - ones * 0x20) & ~x) | ((del - ones) & ~del) | ((slash - ones) & ~slash)) & high ? 1 : 0;
}

/*
 * valid_name - copy @len bytes of @src (untrusted: shared memory) to @out
 * with a NUL, and check them (the copy: what the peer uses is what was
 * checked). Returns 1 if it is a valid object name.
 */
static inline int valid_name(const char *src, uint64_t len, char out[XSEG_TARGET_MAX + 1])
{
	if (len < 1 || len > NAME_LIMIT)
		return 0;
	memcpy(out, src, len);
	out[len] = 0;
	if (len < 8) {
		uint64_t w = 0x6161616161616161ull;	/* padded with 'a' */

		memcpy(&w, out, len);
		return !objname_bad_word(w) && (len > 2 || (strcmp(out, ".") && strcmp(out, "..")));
	}
	for (uint64_t i = 0, w; i < len; i += 8) {
		/* Whole words; the last one ends at the name's end (overlapping the one before). */
		memcpy(&w, out + (len - i < 8 ? len - 8 : i), 8);
		if (objname_bad_word(w))
			return 0;
	}
	return 1;
}

/* A printable form of a rejected name, for the log. */
static inline const char *printable(const char *src, uint64_t len, char *buf, size_t size)
{
	size_t o = 0;

	if (len > XSEG_TARGET_MAX)
		len = XSEG_TARGET_MAX;
	for (uint64_t i = 0; i < len && o + 5 < size; i++) {
		unsigned char c = (unsigned char)src[i];

		o += (size_t)snprintf(buf + o, size - o, c < 0x20 || c >= 0x7f ? "\\x%02x" : "%c", c);
	}
	buf[o] = 0;
	return buf;
}

#endif
