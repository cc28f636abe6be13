/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/config_match.c - create-or-open: does an existing segment's config
 * agree with the fields a spec wrote? (docs/spec.md, "Create-or-open").
 */
#include "xseg_internal.h"

#define MAX_CLASSES	(XSEG_MAX_BUF_CLASSES - 1)

enum { F_U64, F_SIZE, F_MODE, F_I64, F_BUFFERS, F_QTYPES };

/* Append to @buf (of @len, holding *@at bytes), never past its end. */
#define put(buf, len, at, ...) do { \
	if ((buf) && *(at) < (len)) { \
		int n_ = snprintf((buf) + *(at), (len) - *(at), __VA_ARGS__); \
		if (n_ > 0) \
			*(at) = *(at) + (size_t)n_ < (len) ? *(at) + (size_t)n_ : (len); \
	} } while (0)

/* A size as the spec writes it: the largest unit that divides it (64K, 1M). */
static void put_size(char *buf, size_t len, size_t *at, uint64_t v)
{
	static const char units[] = "GMK";
	static const unsigned int shifts[] = { 30, 20, 10 };
	unsigned int i;

	for (i = 0; v && i < 3; i++)
		if (!(v & ((1ull << shifts[i]) - 1))) {
			put(buf, len, at, "%llu%c", (unsigned long long)(v >> shifts[i]), units[i]);
			return;
		}
	put(buf, len, at, "%llu", (unsigned long long)v);
}

static void put_field(char *buf, size_t len, size_t *at, int kind, const struct xseg_config *c,
		      uint64_t v)
{
	uint32_t i, nc;

	switch (kind) {
	case F_SIZE:
		put_size(buf, len, at, v);
		break;
	case F_MODE:
		put(buf, len, at, "%04o", (unsigned int)v);
		break;
	case F_I64:
		put(buf, len, at, "%lld", (long long)(int64_t)v);
		break;
	case F_BUFFERS:
		nc = c->nr_classes < MAX_CLASSES ? c->nr_classes : MAX_CLASSES;
		if (!nc)
			put(buf, len, at, "none");
		for (i = 0; i < nc; i++) {
			put(buf, len, at, "%s", i ? "," : "");
			put_size(buf, len, at, c->classes[i].size);
			put(buf, len, at, "*%u", c->classes[i].count);
		}
		break;
	case F_QTYPES: {
		char q[320];

		xseg__format_type_quotas(c, q, sizeof(q));
		/* without its ":quota_types=" */
		put(buf, len, at, "%s", q[0] ? q + sizeof(":quota_types=") - 1 : "none");
		break;
	}
	default:
		put(buf, len, at, "%llu", (unsigned long long)v);
	}
}

static bool same_buffers(const struct xseg_config *a, const struct xseg_config *b)
{
	uint32_t i;

	if (a->nr_classes != b->nr_classes || a->nr_classes > MAX_CLASSES)
		return a->nr_classes == b->nr_classes;
	for (i = 0; i < a->nr_classes; i++)
		if (a->classes[i].size != b->classes[i].size ||
		    a->classes[i].count != b->classes[i].count)
			return false;
	return true;
}

/* The same quota_types= entries, in the same order (the spec's). */
static bool same_type_quotas(const struct xseg_config *a, const struct xseg_config *b)
{
	return a->nr_type_quotas == b->nr_type_quotas &&
	       !memcmp(a->type_quotas, b->type_quotas, sizeof(a->type_quotas));
}

int xseg_config_mismatch(const struct xseg_config *have, const struct xseg_config *want,
			 uint32_t given, char *err, size_t errlen)
{
	if (!have || !want)
		return -EINVAL;
	{
		const struct {
			uint32_t bit;
			const char *name;
			int kind;
			uint64_t h, w;
		} f[] = {
			{ XSEG_GIVEN_NR_PORTS, "nr_ports", F_U64, have->nr_ports, want->nr_ports },
			{ XSEG_GIVEN_NR_REQUESTS, "nr_requests", F_U64, have->nr_requests,
			  want->nr_requests },
			{ XSEG_GIVEN_REQUEST_SIZE, "request_size", F_SIZE, have->request_size,
			  want->request_size },
			{ XSEG_GIVEN_EXTRA_SIZE, "extra_size", F_SIZE, have->extra_size,
			  want->extra_size },
			{ XSEG_GIVEN_PAGE_SHIFT, "page_shift", F_U64, have->page_shift,
			  want->page_shift },
			{ XSEG_GIVEN_DYNPORTS, "dynports", F_U64, have->dynports, want->dynports },
			{ XSEG_GIVEN_MODE, "mode", F_MODE, have->mode, want->mode },
			{ XSEG_GIVEN_GROUP, "group", F_I64, (uint64_t)(int64_t)have->gid,
			  (uint64_t)(int64_t)want->gid },
			{ XSEG_GIVEN_AUTORM, "autorm", F_U64, have->autorm, want->autorm },
			{ XSEG_GIVEN_BUFFERS, "buffers", F_BUFFERS, 0, 0 },
			{ XSEG_GIVEN_QUOTA_REQUESTS, "quota_requests", F_U64, have->quota_requests,
			  want->quota_requests },
			{ XSEG_GIVEN_QUOTA_BUFFER, "quota_buffer", F_SIZE, have->quota_buffer,
			  want->quota_buffer },
			{ XSEG_GIVEN_HUGE, "huge", F_U64, have->huge, want->huge },
			{ XSEG_GIVEN_QUOTA_TYPES, "quota_types", F_QTYPES, 0, 0 },
			{ XSEG_GIVEN_MAX_HOPS, "max_hops", F_U64,
			  have->max_hops ? have->max_hops : XSEG_PATH_DEFAULT,
			  want->max_hops ? want->max_hops : XSEG_PATH_DEFAULT },
			{ XSEG_GIVEN_PEER_TYPES, "peer_types", F_U64,
			  have->peer_types ? have->peer_types : XSEG_PEER_TYPES_DEFAULT,
			  want->peer_types ? want->peer_types : XSEG_PEER_TYPES_DEFAULT },
			{ XSEG_GIVEN_MAX_REQUESTS, "max_requests", F_U64,
			  have->max_requests ? have->max_requests : have->nr_requests,
			  want->max_requests ? want->max_requests : want->nr_requests },
		};
		const unsigned int nf = sizeof(f) / sizeof(f[0]);
		bool differs[sizeof(f) / sizeof(f[0])];
		unsigned int i, n = 0, k;
		size_t at = 0;

		for (i = 0; i < nf; i++) {
			differs[i] = (given & f[i].bit) &&
				     (f[i].kind == F_BUFFERS ? !same_buffers(have, want) :
				      f[i].kind == F_QTYPES ? !same_type_quotas(have, want) :
							       f[i].h != f[i].w);
			n += differs[i];
		}
		if (!n)
			return 0;
		if (err && errlen)
			err[0] = 0;
		put(err, errlen, &at, "%.*s:%.*s exists with ", (int)XSEG_TYPE_LEN, have->type,
		    (int)XSEG_NAME_LEN, have->name);
		for (i = 0, k = 0; i < nf; i++) {
			if (!differs[i])
				continue;
			put(err, errlen, &at, "%s%s=", k++ ? ", " : "", f[i].name);
			put_field(err, errlen, &at, f[i].kind, have, f[i].h);
		}
		put(err, errlen, &at, "; the spec asks ");
		for (i = 0, k = 0; i < nf; i++) {
			if (!differs[i])
				continue;
			put(err, errlen, &at, "%s", k++ ? ", " : "");
			put_field(err, errlen, &at, f[i].kind, want, f[i].w);
		}
		return -EEXIST;
	}
}
