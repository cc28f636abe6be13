/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/spec_quota.c - the spec key quota_types=TYPE/REQUESTS/BUFFER[,...]:
 * per-peer-type quota defaults (docs/spec.md, docs/segment.md "Quotas").
 * A port bound by a process of peer type TYPE starts with that entry's
 * limits instead of quota_requests=/quota_buffer=; the owner may still set
 * its own (xseg_set_port_quota). Parsed, checked and written here; spec.c
 * calls in with the field name already written to its message.
 * Domain-neutral, like spec.c (its bounded writer, xseg/spec_util.h).
 */
#include "spec_quota.h"
#include "spec_util.h"

#define MAX_REQUESTS	1048576u	/* as spec.c's nr_requests bound */

/* A peer type name: 1..15 of [A-Za-z0-9._-], not starting with '.'. */
static bool type_ok(const char *s, size_t n)
{
	size_t i;

	if (n < 1 || n >= XSEG_TYPE_LEN || s[0] == '.')
		return false;
	for (i = 0; i < n; i++)
		if (!is_name_char(s[i]))
			return false;
	return true;
}

/* "'ITEM': " at the start of a message (the caller wrote the field). */
static struct wr *item(struct wr *e, const char *s, size_t n)
{
	wr_quote(e, s, n);
	wr_str(e, ": ");
	return e;
}

int xseg__parse_type_quotas(const char *s, size_t n, struct xseg_config *cfg, char *msg,
			    size_t len)
{
	const char *end = s + n;
	struct wr we, *e = &we;
	uint32_t k = 0;

	wr_init(e, msg, len);
	xseg_memset(cfg->type_quotas, 0, sizeof(cfg->type_quotas));
	cfg->nr_type_quotas = 0;
	for (;;) {
		const char *comma = find_char(s, (size_t)(end - s), ',');
		size_t ilen = comma ? (size_t)(comma - s) : (size_t)(end - s);
		const char *s1 = find_char(s, ilen, '/');
		const char *s2 = s1 ? find_char(s1 + 1, (size_t)(s + ilen - s1 - 1), '/') : NULL;
		uint64_t reqs = 0, buf = 0;
		size_t tlen;
		uint32_t i;

		if (!s1 || !s2) {
			wr_str(item(e, s, ilen), "not TYPE/REQUESTS/BUFFER");
			return -EINVAL;
		}
		tlen = (size_t)(s1 - s);
		if (!type_ok(s, tlen)) {
			wr_str(item(e, s, ilen), "the peer type must be 1..");
			wr_u64(e, XSEG_TYPE_LEN - 1);
			wr_str(e, " of A-Z a-z 0-9 . _ - (not starting with '.')");
			return -EINVAL;
		}
		if (parse_dec(s1 + 1, (size_t)(s2 - s1 - 1), &reqs) || reqs > MAX_REQUESTS) {
			wr_str(item(e, s, ilen), "REQUESTS must be a number 0..");
			wr_u64(e, MAX_REQUESTS);
			return -EINVAL;
		}
		if (parse_size(s2 + 1, (size_t)(s + ilen - s2 - 1), &buf)) {
			wr_str(item(e, s, ilen), "BUFFER is not a size (a number with an optional "
			       "unit K, M, G or T)");
			return -EINVAL;
		}
		for (i = 0; i < k; i++) {
			if (mem_is(s, tlen, cfg->type_quotas[i].type)) {
				wr_str(item(e, s, ilen), "peer type ");
				wr_quote(e, s, tlen);
				wr_str(e, " given twice");
				return -EINVAL;
			}
		}
		if (k == XSEG_MAX_TYPE_QUOTAS) {
			wr_str(e, "more than ");
			wr_u64(e, XSEG_MAX_TYPE_QUOTAS);
			wr_str(e, " peer types");
			return -EINVAL;
		}
		xseg_memcpy(cfg->type_quotas[k].type, s, tlen);
		cfg->type_quotas[k].requests = (uint32_t)reqs;
		cfg->type_quotas[k].buffer = buf;
		cfg->nr_type_quotas = ++k;
		if (!comma)
			return 0;
		s = comma + 1;
	}
}

/* Is entry @q all zero (an unused entry)? */
static bool zero_entry(const struct xseg_type_quota *q)
{
	const uint8_t *b = (const uint8_t *)q;
	size_t i;

	for (i = 0; i < sizeof(*q); i++)
		if (b[i])
			return false;
	return true;
}

int xseg__check_type_quotas(const struct xseg_config *cfg, char *msg, size_t len)
{
	uint64_t page = 1ull << cfg->page_shift;
	struct wr we, *e = &we;
	uint32_t i, j;

	wr_init(e, msg, len);
	if (cfg->nr_type_quotas > XSEG_MAX_TYPE_QUOTAS) {
		wr_u64(e, cfg->nr_type_quotas);
		wr_str(e, " entries, at most ");
		wr_u64(e, XSEG_MAX_TYPE_QUOTAS);
		return -EINVAL;
	}
	for (i = 0; i < XSEG_MAX_TYPE_QUOTAS; i++) {
		const struct xseg_type_quota *q = &cfg->type_quotas[i];
		size_t n = str_nlen(q->type, XSEG_TYPE_LEN);

		if (i >= cfg->nr_type_quotas) {
			if (!zero_entry(q)) {
				wr_str(e, "entry ");
				wr_u64(e, i);
				wr_str(e, " is past the entries in use but not zero (corrupt)");
				return -EINVAL;
			}
			continue;
		}
		if (!type_ok(q->type, n) || q->pad) {
			wr_str(e, "entry ");
			wr_u64(e, i);
			wr_str(e, ": not a peer type name (corrupt)");
			return -EINVAL;
		}
		for (j = 0; j < i; j++)
			if (mem_is(q->type, n, cfg->type_quotas[j].type)) {
				wr_str(e, "peer type ");
				wr_quote(e, q->type, n);
				wr_str(e, " given twice");
				return -EINVAL;
			}
		if (q->requests > cfg->nr_requests) {
			wr_mem(e, q->type, n);
			wr_str(e, ": requests ");
			wr_u64(e, q->requests);
			wr_str(e, " must be between 0 and ");
			wr_u64(e, cfg->nr_requests);
			wr_str(e, " (nr_requests)");
			return -EINVAL;
		}
		if (q->buffer % page || q->buffer / page > XSEG_USE_MAX) {
			wr_mem(e, q->type, n);
			wr_str(e, ": buffer ");
			wr_u64(e, q->buffer);
			wr_str(e, " is not a multiple of the page size ");
			wr_u64(e, page);
			wr_str(e, " (or is too large)");
			return -EINVAL;
		}
	}
	return 0;
}

/* Write ":quota_types=..." (nothing without entries) to @buf; the bytes it needs. */
size_t xseg__format_type_quotas(const struct xseg_config *cfg, char *buf, size_t len)
{
	uint32_t i, n = cfg->nr_type_quotas < XSEG_MAX_TYPE_QUOTAS ?
			cfg->nr_type_quotas : XSEG_MAX_TYPE_QUOTAS;
	struct wr w;

	wr_init(&w, buf, len);
	for (i = 0; i < n; i++) {
		const struct xseg_type_quota *q = &cfg->type_quotas[i];

		wr_str(&w, i ? "," : ":quota_types=");
		wr_mem(&w, q->type, str_nlen(q->type, XSEG_TYPE_LEN));
		wr_ch(&w, '/');
		wr_u64(&w, q->requests);
		wr_ch(&w, '/');
		wr_size(&w, q->buffer);
	}
	return w.len;
}

/* The entry of peer type @type, or NULL. */
const struct xseg_type_quota *xseg__type_quota(const struct xseg_config *cfg, const char *type)
{
	uint32_t i, n = cfg->nr_type_quotas < XSEG_MAX_TYPE_QUOTAS ?
			cfg->nr_type_quotas : XSEG_MAX_TYPE_QUOTAS;
	size_t tlen = str_nlen(type, XSEG_TYPE_LEN);

	for (i = 0; i < n; i++)
		if (tlen < XSEG_TYPE_LEN && mem_is(type, tlen, cfg->type_quotas[i].type))
			return &cfg->type_quotas[i];
	return NULL;
}
