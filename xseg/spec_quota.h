/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/spec_quota.h - the spec key quota_types= (xseg/spec_quota.c):
 * per-peer-type quota defaults. Messages come without the field name.
 */
#ifndef XSEG_SPEC_QUOTA_H
#define XSEG_SPEC_QUOTA_H

#include "xseg.h"

int xseg__parse_type_quotas(const char *s, size_t n, struct xseg_config *cfg, char *msg, size_t len);
int xseg__check_type_quotas(const struct xseg_config *cfg, char *msg, size_t len);
size_t xseg__format_type_quotas(const struct xseg_config *cfg, char *buf, size_t len);
const struct xseg_type_quota *xseg__type_quota(const struct xseg_config *cfg, const char *type);

#endif
