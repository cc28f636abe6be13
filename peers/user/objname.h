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
 * valid_name - copy @len bytes of @src (untrusted: shared memory) to @out
 * with a NUL, and check them. Returns 1 if it is a valid object name.
 */
static inline int valid_name(const char *src, uint64_t len, char out[XSEG_TARGET_MAX + 1])
{
	if (len < 1 || len > NAME_LIMIT)
		return 0;
	memcpy(out, src, len);
	out[len] = 0;
	for (uint64_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)out[i];

		if (c < 0x20 || c == 0x7f || c == '/')
			return 0;
	}
	return strcmp(out, ".") && strcmp(out, "..");
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
