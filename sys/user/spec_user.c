/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/user/spec_user.c - the user-domain part of spec strings (xseg/spec.c):
 * resolving a group name to its gid.
 */
#include <grp.h>
#include <stdlib.h>
#include <unistd.h>
#include "../domain.h"

/*
 * Declared in xseg/spec.c until sys/domain.h carries it: resolve the group
 * @name to its gid. Returns 0, -ENOENT if there is no such group (or its gid
 * does not fit an int32_t), or -ENOMEM.
 */
int xseg_sys_group_id(const char *name, int32_t *gid)
{
	struct group gr, *res = NULL;
	long hint = sysconf(_SC_GETGR_R_SIZE_MAX);
	size_t size = hint > 0 ? (size_t)hint : 16384;
	char *buf = NULL;
	int r;

	for (;;) {
		char *nbuf = realloc(buf, size);

		if (!nbuf) {
			free(buf);
			return -ENOMEM;
		}
		buf = nbuf;
		r = getgrnam_r(name, &gr, buf, size, &res);
		if (r != ERANGE || size >= (1u << 24))
			break;
		size *= 2;
	}
	if (r == 0 && res && res->gr_gid <= 0x7FFFFFFFu) {
		*gid = (int32_t)res->gr_gid;
		r = 0;
	} else {
		r = -ENOENT;
	}
	free(buf);
	return r;
}
