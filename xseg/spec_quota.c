/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/spec_quota.c - the spec key quota_types=TYPE/REQUESTS/BUFFER[,...]:
 * per-peer-type quota defaults (docs/spec.md, docs/segment.md "Quotas").
 * A port bound by a process of peer type TYPE starts with that entry's
 * limits instead of quota_requests=/quota_buffer=; the owner may still set
 * its own (xseg_set_port_quota). Parsed, checked and written here; spec.c
 * calls in with the field name already written to its message.
 * Domain-neutral, like spec.c.
 */
#include "xseg_internal.h"
#include "xseg_size.h"

#define MAX_REQUESTS	1048576u	/* as spec.c's nr_requests bound */

/* Append to @buf (of @len, holding *@at bytes), never past its end. */
#define put(buf, len, at, ...) do { \
	if ((buf) && *(at) < (len)) { \
		int n_ = snprintf((buf) + *(at), (len) - *(at), __VA_ARGS__); \
		if (n_ > 0) \
			*(at) = *(at) + (size_t)n_ < (len) ? *(at) + (size_t)n_ : (len); \
	} } while (0)

static bool type_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || (c == '.' && !first);
}

/* A peer type name: 1..15 of [A-Za-z0-9._-], not starting with '.'. */
static bool type_ok(const char *s, size_t n)
{
	size_t i;

	if (n < 1 || n >= XSEG_TYPE_LEN)
		return false;
	for (i = 0; i < n; i++)
		if (!type_char(s[i], i == 0))
			return false;
	return true;
}

static const char *find(const char *s, size_t n, char c)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] == c)
			return s + i;
	return NULL;
}

/* Decimal digits only, no overflow: 0 or -1. */
static int dec(const char *s, size_t n, uint64_t *v)
{
	uint64_t x = 0;
	size_t i;

	if (!n)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || x > (~0ull - 9) / 10)
			return -1;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	*v = x;
	return 0;
}

/* "'ITEM': " at the start of a message. */
static void item(char *msg, size_t len, size_t *at, const char *s, size_t n)
{
	put(msg, len, at, "'%.*s': ", (int)(n > 64 ? 64 : n), s);
}

int xseg__parse_type_quotas(const char *s, size_t n, struct xseg_config *cfg, char *msg,
			    size_t len)
{
	const char *end = s + n;
	size_t at = 0;
	uint32_t k = 0;

	if (msg && len)
		msg[0] = 0;
	xseg_memset(cfg->type_quotas, 0, sizeof(cfg->type_quotas));
	cfg->nr_type_quotas = 0;
	for (;;) {
		const char *comma = find(s, (size_t)(end - s), ',');
		size_t ilen = comma ? (size_t)(comma - s) : (size_t)(end - s);
		const char *s1 = find(s, ilen, '/');
		const char *s2 = s1 ? find(s1 + 1, (size_t)(s + ilen - s1 - 1), '/') : NULL;
		uint64_t reqs, buf;
		uint32_t i;

		if (!s1 || !s2) {
			item(msg, len, &at, s, ilen);
			put(msg, len, &at, "not TYPE/REQUESTS/BUFFER");
			return -EINVAL;
		}
		if (!type_ok(s, (size_t)(s1 - s))) {
			item(msg, len, &at, s, ilen);
			put(msg, len, &at, "the peer type must be 1..%u of A-Z a-z 0-9 . _ - "
			    "(not starting with '.')", XSEG_TYPE_LEN - 1);
			return -EINVAL;
		}
		if (dec(s1 + 1, (size_t)(s2 - s1 - 1), &reqs) || reqs > MAX_REQUESTS) {
			item(msg, len, &at, s, ilen);
			put(msg, len, &at, "REQUESTS must be a number 0..%u", MAX_REQUESTS);
			return -EINVAL;
		}
		if (xseg_parse_size(s2 + 1, (unsigned long)(s + ilen - s2 - 1), &buf)) {
			item(msg, len, &at, s, ilen);
			put(msg, len, &at, "BUFFER is not a size (a number with an optional unit K, M, G or T)");
			return -EINVAL;
		}
		for (i = 0; i < k; i++) {
			if (strlen(cfg->type_quotas[i].type) == (size_t)(s1 - s) &&
			    !memcmp(cfg->type_quotas[i].type, s, (size_t)(s1 - s))) {
				item(msg, len, &at, s, ilen);
				put(msg, len, &at, "peer type '%.*s' given twice", (int)(s1 - s), s);
				return -EINVAL;
			}
		}
		if (k == XSEG_MAX_TYPE_QUOTAS) {
			put(msg, len, &at, "more than %u peer types", XSEG_MAX_TYPE_QUOTAS);
			return -EINVAL;
		}
		xseg_memcpy(cfg->type_quotas[k].type, s, (size_t)(s1 - s));
		cfg->type_quotas[k].requests = (uint32_t)reqs;
		cfg->type_quotas[k].buffer = buf;
		cfg->nr_type_quotas = ++k;
		if (!comma)
			return 0;
		s = comma + 1;
	}
}

int xseg__check_type_quotas(const struct xseg_config *cfg, char *msg, size_t len)
{
	uint64_t page = 1ull << cfg->page_shift;
	size_t at = 0;
	uint32_t i, j;

	if (msg && len)
		msg[0] = 0;
	if (cfg->nr_type_quotas > XSEG_MAX_TYPE_QUOTAS) {
		put(msg, len, &at, "%u entries, at most %u", cfg->nr_type_quotas, XSEG_MAX_TYPE_QUOTAS);
		return -EINVAL;
	}
	for (i = 0; i < XSEG_MAX_TYPE_QUOTAS; i++) {
		const struct xseg_type_quota *q = &cfg->type_quotas[i];
		size_t n = strnlen(q->type, XSEG_TYPE_LEN);

		if (i >= cfg->nr_type_quotas) {
			static const struct xseg_type_quota zero;

			if (memcmp(q, &zero, sizeof(zero))) {
				put(msg, len, &at, "entry %u is past the %u given but not zero (corrupt)", i,
				    cfg->nr_type_quotas);
				return -EINVAL;
			}
			continue;
		}
		if (n == XSEG_TYPE_LEN || !type_ok(q->type, n) || q->pad) {
			put(msg, len, &at, "entry %u: not a peer type name (corrupt)", i);
			return -EINVAL;
		}
		for (j = 0; j < i; j++)
			if (!strncmp(cfg->type_quotas[j].type, q->type, XSEG_TYPE_LEN)) {
				put(msg, len, &at, "peer type '%s' given twice", q->type);
				return -EINVAL;
			}
		if (q->requests > cfg->nr_requests) {
			put(msg, len, &at, "%s: requests %u must be between 0 and %u (nr_requests)", q->type,
			    q->requests, cfg->nr_requests);
			return -EINVAL;
		}
		if (q->buffer % page || q->buffer / page > XSEG_USE_MAX) {
			put(msg, len, &at, "%s: buffer %llu is not a multiple of the page size %llu "
			    "(or is too large)", q->type, (unsigned long long)q->buffer,
			    (unsigned long long)page);
			return -EINVAL;
		}
	}
	return 0;
}

/* Write ":quota_types=..." (nothing without entries) to @buf; the bytes it needs. */
size_t xseg__format_type_quotas(const struct xseg_config *cfg, char *buf, size_t len)
{
	static const char units[] = "TGMK";
	size_t at = 0, need = 0;
	uint32_t i, n = cfg->nr_type_quotas < XSEG_MAX_TYPE_QUOTAS ?
			cfg->nr_type_quotas : XSEG_MAX_TYPE_QUOTAS;

	if (buf && len)
		buf[0] = 0;
	for (i = 0; i < n; i++) {
		const struct xseg_type_quota *q = &cfg->type_quotas[i];
		uint64_t v = q->buffer;
		char unit[2] = "";
		char one[96];
		unsigned int u;
		int w;

		for (u = 0; v && u < 4; u++) {
			unsigned int shift = 40 - 10 * u;

			if (!(v & ((1ull << shift) - 1))) {
				v >>= shift;
				unit[0] = units[u];
				break;
			}
		}
		w = snprintf(one, sizeof(one), "%s%.*s/%u/%llu%s", i ? "," : ":quota_types=",
			     (int)XSEG_TYPE_LEN - 1, q->type, q->requests, (unsigned long long)v, unit);
		if (w < 0)
			continue;
		need += (size_t)w;
		put(buf, len, &at, "%s", one);
	}
	return need;
}

/* The entry of peer type @type, or NULL. */
const struct xseg_type_quota *xseg__type_quota(const struct xseg_config *cfg, const char *type)
{
	uint32_t i, n = cfg->nr_type_quotas < XSEG_MAX_TYPE_QUOTAS ?
			cfg->nr_type_quotas : XSEG_MAX_TYPE_QUOTAS;

	for (i = 0; i < n; i++)
		if (!strncmp(cfg->type_quotas[i].type, type, XSEG_TYPE_LEN))
			return &cfg->type_quotas[i];
	return NULL;
}
