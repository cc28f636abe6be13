/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/user/segtypes/owner.h - parsing the "--set mode=0660,group=G,owner=U"
 * argument of `xseg-tool config` and `xseg config` (user and node domains
 * only: names come from the system's user and group databases; not part of
 * xseg.h, whose every function the kernel module exports).
 */
#ifndef XSEG_SEGTYPES_USER_OWNER_H
#define XSEG_SEGTYPES_USER_OWNER_H

#include <stddef.h>
#include <stdint.h>

/*
 * xseg_parse_owner_set - parse "mode=0660,group=G,owner=U" (any of the
 * three, in any order; G and U a name or a number) into *@uid, *@gid and
 * *@mode, (uint32_t)-1 for those not given. Returns 0 or -EINVAL with @err
 * naming what was wrong. It looks names up
 * through NSS (getpwnam_r, getgrnam_r).
 */
int xseg_parse_owner_set(const char *set, uint32_t *uid, uint32_t *gid, uint32_t *mode,
			 char *err, size_t errlen);

#endif
