/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/user/segtypes/owner.c - the "--set mode=0660,group=G,owner=U" argument
 * of `xseg-tool config` and `xseg config` (names resolved through the
 * system's user and group databases), parsed once for both.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../../xseg/xseg.h"
#include "owner.h"

/* A decimal id below 2^31, or -1 if @s is not all digits. */
static long long dec_id(const char *s)
{
	long long v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > 0x7fffffffLL / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v <= 0x7fffffffLL ? v : -1;
}

static int by_name(const char *key, const char *v, uint32_t *out, char *err, size_t errlen)
{
	char buf[16384];
	long long id = dec_id(v);
	int r;

	if (id >= 0) {
		*out = (uint32_t)id;
		return 0;
	}
	if (!strcmp(key, "owner")) {
		struct passwd pw, *res = NULL;

		r = getpwnam_r(v, &pw, buf, sizeof(buf), &res);
		if (!r && res) {
			*out = (uint32_t)pw.pw_uid;
			return 0;
		}
	} else {
		struct group gr, *res = NULL;

		r = getgrnam_r(v, &gr, buf, sizeof(buf), &res);
		if (!r && res) {
			*out = (uint32_t)gr.gr_gid;
			return 0;
		}
	}
	if (err && errlen)
		snprintf(err, errlen, "--set %s: '%s' is not a %s name or number", key, v,
			 !strcmp(key, "owner") ? "user" : "group");
	return -EINVAL;
}

int xseg_parse_owner_set(const char *set, uint32_t *uid, uint32_t *gid, uint32_t *mode,
			 char *err, size_t errlen)
{
	char copy[512], *save = NULL, *item;

	*uid = *gid = *mode = (uint32_t)-1;
	if (!set || !*set || strlen(set) >= sizeof(copy)) {
		if (err && errlen)
			snprintf(err, errlen, "--set: expected mode=0NNN,group=G,owner=U (any of them)");
		return -EINVAL;
	}
	strcpy(copy, set);
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '='), *end;
		const char *v;
		uint32_t *dst;
		int r;

		if (!eq || eq == item || !eq[1]) {
			if (err && errlen)
				snprintf(err, errlen, "--set: '%s' is not key=value (mode, group, owner)",
					 item);
			return -EINVAL;
		}
		*eq = 0;
		v = eq + 1;
		dst = !strcmp(item, "mode") ? mode : !strcmp(item, "group") ? gid :
		      !strcmp(item, "owner") ? uid : NULL;
		if (!dst) {
			if (err && errlen)
				snprintf(err, errlen, "--set: unknown key '%s' (mode, group, owner)", item);
			return -EINVAL;
		}
		if (*dst != (uint32_t)-1) {
			if (err && errlen)
				snprintf(err, errlen, "--set: %s given twice", item);
			return -EINVAL;
		}
		if (dst == mode) {
			unsigned long m = strtoul(v, &end, 8);

			if (*end || m > 07777 || *v == '-' || *v == '+' || *v == ' ') {
				if (err && errlen)
					snprintf(err, errlen, "--set mode: '%s' is not an octal mode", v);
				return -EINVAL;
			}
			*mode = (uint32_t)m;
			continue;
		}
		r = by_name(item, v, dst, err, errlen);
		if (r)
			return r;
	}
	return 0;
}
