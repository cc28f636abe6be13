/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/spec.c - spec strings: parse, format and check a struct xseg_config.
 *
 *   type:name:nr_ports:nr_requests:request_size:extra_size:page_shift[:key=value...]
 *
 * Domain-neutral: numbers are parsed by hand and messages are built by a
 * small bounded writer (no snprintf, no strtoull), so the same code runs in
 * user space, in the kernel and in the Node addon. Nothing here allocates,
 * and nothing is written outside the caller's config and buffers, whatever
 * the input. The reference is docs/spec.md.
 */
#include "xseg.h"
#include "xseg_size.h"
#include "spec_quota.h"
#include "spec_util.h"


#define SPEC_FIELDS		7u		/* positional fields */
#define SPEC_MAX_PORTS		4096u
#define SPEC_MAX_REQUESTS	1048576u
#define SPEC_MIN_SHIFT		12u
#define SPEC_MAX_SHIFT		21u
#define SPEC_MAX_BUF_SIZE	(1ull << 30)	/* request_size and class sizes */
#define SPEC_MAX_EXTRA		(64ull << 30)
#define SPEC_MAX_CLASSES	(XSEG_MAX_BUF_CLASSES - 1u)
#define SPEC_MAX_COUNT		1048576u	/* chunks of an extra class */
#define SPEC_GROUP_LEN		64u		/* group names, with NUL */
#define SPEC_GID_MAX		0x7FFFFFFFu

static const char *const spec_types[] = { "posix", "file", "heap", "segdev", "sysv", "memfd" };
#define SPEC_NR_TYPES (sizeof(spec_types) / sizeof(spec_types[0]))

/* Keys, in the order xseg_format_spec() writes them. */
enum { KEY_DYNPORTS, KEY_MODE, KEY_GROUP, KEY_AUTORM, KEY_BUFFERS, KEY_QREQ, KEY_QBUF,
       KEY_HUGE, KEY_QTYPES, KEY_HOPS, KEY_PTYPES, KEY_MAXREQ, KEY_COUNT };
static const char *const spec_keys[KEY_COUNT] = {
	"dynports", "mode", "group", "autorm", "buffers", "quota_requests", "quota_buffer", "huge",
	"quota_types", "max_hops", "peer_types", "max_requests",
};

/*
 * The positional fields nr_ports .. page_shift by name, as keys
 * (posix:demo,ports=16,requests=256,buffer=64K), indexed by position.
 */
static const char *const pos_keys[SPEC_FIELDS] = {
	NULL, NULL, "ports", "requests", "buffer", "extra", "page_shift",
};
/* Their names in messages (a message starts with the field). */
static const char *const pos_fields[SPEC_FIELDS] = {
	"type", "name", "nr_ports", "nr_requests", "request_size", "extra_size", "page_shift",
};
#define SPEC_KEY_LIST "ports, requests, buffer, extra, page_shift, dynports, mode, group, autorm, buffers, " \
	"quota_requests, quota_buffer, huge, quota_types, max_hops, peer_types, max_requests"

/* ----------------------------------------------------------- field checks */

static int type_index(const char *s, size_t n)
{
	unsigned i;

	for (i = 0; i < SPEC_NR_TYPES; i++)
		if (mem_is(s, n, spec_types[i]))
			return (int)i;
	return -1;
}

static int check_type(struct wr *e, const char *s, size_t n)
{
	unsigned i;

	if (n < XSEG_TYPE_LEN && type_index(s, n) >= 0)
		return 0;
	err_val(e, "type", s, n, 0);
	wr_str(e, "is not one of ");
	for (i = 0; i < SPEC_NR_TYPES; i++) {
		if (i)
			wr_str(e, ", ");
		wr_str(e, spec_types[i]);
	}
	return -EINVAL;
}

/*
 * A segment name: 1..127 bytes. For type file (and sysv, whose names may be
 * paths) anything but ':', '=' (they would end the field or start the keys)
 * and control characters.
 * Otherwise [A-Za-z0-9._-], not starting with '.'.
 */
static int check_name(struct wr *e, bool file, const char *s, size_t n)
{
	size_t i;

	if (!n) {
		err_at(e, "name");
		wr_str(e, "empty");
		return -EINVAL;
	}
	if (n >= XSEG_NAME_LEN) {
		err_val(e, "name", s, n, 0);
		wr_str(e, "is longer than 127 bytes");
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (file) {
			if (c == ':' || c == '=') {
				err_val(e, "name", s, n, 0);
				wr_str(e, "must not contain ':' or '='");
				return -EINVAL;
			}
			if (c < 0x20 || c == 0x7f) {
				err_val(e, "name", s, n, 0);
				wr_str(e, "must not contain control characters");
				return -EINVAL;
			}
		} else if (!is_name_char((char)c)) {
			err_val(e, "name", s, n, 0);
			wr_str(e, "may contain only letters, digits, '.', '_' and '-'");
			return -EINVAL;
		}
	}
	if (!file && s[0] == '.') {
		err_val(e, "name", s, n, 0);
		wr_str(e, "must not start with '.'");
		return -EINVAL;
	}
	return 0;
}

/* A buffer size: a multiple of the page size, in [lo, hi] (lo 0: zero allowed). */
static int check_size(struct wr *e, const char *field, uint64_t v, uint64_t page,
		      uint64_t lo, uint64_t hi)
{
	if (!v && !lo)
		return 0;
	if (v & (page - 1)) {
		err_size(e, field, v);
		wr_str(e, "is not a multiple of the page size ");
		wr_u64(e, page);
		return -EINVAL;
	}
	if (v < lo || v > hi) {
		err_size(e, field, v);
		if (lo) {
			wr_str(e, "must be between ");
			wr_size(e, lo);
			wr_str(e, " and ");
		} else {
			wr_str(e, "must be at most ");
		}
		wr_size(e, hi);
		return -EINVAL;
	}
	return 0;
}

static int check_mode(struct wr *e, const char *s, size_t n, uint64_t mode)
{
	if (mode > 0777 || (mode & 07)) {
		err_at(e, "mode");
		if (s)
			wr_quote(e, s, n);
		else
			wr_mode(e, (uint32_t)mode);
		wr_str(e, mode > 0777 ? " must be at most 0770" :
		       " must not give others access (at most 0770): peers refuse such segments");
		return -EINVAL;
	}
	if ((mode & 0600) != 0600) {
		err_at(e, "mode");
		if (s)
			wr_quote(e, s, n);
		else
			wr_mode(e, (uint32_t)mode);
		wr_str(e, " must give the owner read and write (0600)");
		return -EINVAL;
	}
	return 0;
}

/* ------------------------------------------------------------- the config */

void xseg_config_defaults(struct xseg_config *cfg)
{
	if (!cfg)
		return;
	xseg_memset(cfg, 0, sizeof(*cfg));
	xseg_memcpy(cfg->type, "posix", sizeof("posix"));
	xseg_memcpy(cfg->name, "xseg", sizeof("xseg"));
	cfg->nr_ports = 16;
	cfg->dynports = 8;
	cfg->nr_requests = 256;
	cfg->page_shift = 12;
	cfg->request_size = 64u << 10;
	cfg->extra_size = 0;
	cfg->mode = 0600;
	cfg->gid = -1;
	cfg->autorm = 0;
	cfg->nr_classes = 0;
	cfg->max_hops = XSEG_PATH_DEFAULT;
	cfg->peer_types = XSEG_PEER_TYPES_DEFAULT;
}

int xseg_check_config(const struct xseg_config *cfg, char *err, size_t errlen)
{
	struct wr we, *e = &we;
	uint64_t page, prev;
	size_t tlen, nlen;
	uint32_t i;
	int r;

	wr_init(e, err, errlen);
	if (!cfg) {
		err_at(e, "spec");
		wr_str(e, "no config");
		return -EINVAL;
	}
	tlen = str_nlen(cfg->type, XSEG_TYPE_LEN);
	r = check_type(e, cfg->type, tlen);
	if (r)
		return r;
	nlen = str_nlen(cfg->name, XSEG_NAME_LEN);
	r = check_name(e, mem_is(cfg->type, tlen, "file") || mem_is(cfg->type, tlen, "sysv"),
		       cfg->name, nlen);
	if (r)
		return r;
	if (cfg->page_shift < SPEC_MIN_SHIFT || cfg->page_shift > SPEC_MAX_SHIFT)
		return err_range(e, "page_shift", NULL, 0, cfg->page_shift,
				 SPEC_MIN_SHIFT, SPEC_MAX_SHIFT);
	page = 1ull << cfg->page_shift;
	if (cfg->nr_ports < 1 || cfg->nr_ports > SPEC_MAX_PORTS)
		return err_range(e, "nr_ports", NULL, 0, cfg->nr_ports, 1, SPEC_MAX_PORTS);
	if (cfg->dynports > cfg->nr_ports)
		return err_range(e, "dynports", NULL, 0, cfg->dynports, 0, cfg->nr_ports);
	if (cfg->nr_requests < 1 || cfg->nr_requests > SPEC_MAX_REQUESTS)
		return err_range(e, "nr_requests", NULL, 0, cfg->nr_requests, 1, SPEC_MAX_REQUESTS);
	r = check_size(e, "request_size", cfg->request_size, page, page, SPEC_MAX_BUF_SIZE);
	if (r)
		return r;
	r = check_size(e, "extra_size", cfg->extra_size, page, 0, SPEC_MAX_EXTRA);
	if (r)
		return r;
	r = check_mode(e, NULL, 0, cfg->mode);
	if (r)
		return r;
	if (cfg->gid < -1) {
		err_at(e, "group");
		wr_ch(e, '\'');
		wr_i64(e, cfg->gid);
		wr_str(e, "' is not a gid (or -1 for none)");
		return -EINVAL;
	}
	if (cfg->autorm > 1)
		return err_range(e, "autorm", NULL, 0, cfg->autorm, 0, 1);
	if (cfg->nr_classes > SPEC_MAX_CLASSES) {
		err_at(e, "buffers");
		wr_str(e, "more than ");
		wr_u64(e, SPEC_MAX_CLASSES);
		wr_str(e, " classes");
		return -EINVAL;
	}
	if (cfg->huge > 1)
		return err_range(e, "huge", NULL, 0, cfg->huge, 0, 1);
	if (cfg->max_hops > XSEG_PATH_MAX)	/* 0: the default */
		return err_range(e, "max_hops", NULL, 0, cfg->max_hops, 1, XSEG_PATH_MAX);
	if (cfg->peer_types > XSEG_PEER_TYPES_MAX)	/* 0: the default */
		return err_range(e, "peer_types", NULL, 0, cfg->peer_types, 1, XSEG_PEER_TYPES_MAX);
	/* 0: not growable. A reserve is sparse memory: huge pages and segdev reserve it all. */
	if (cfg->max_requests && (cfg->max_requests < cfg->nr_requests ||
				  cfg->max_requests > SPEC_MAX_REQUESTS))
		return err_range(e, "max_requests", NULL, 0, cfg->max_requests, cfg->nr_requests,
				 SPEC_MAX_REQUESTS);
	if (cfg->max_requests > cfg->nr_requests && cfg->huge) {
		err_at(e, "max_requests");
		wr_str(e, "a growable segment cannot use huge=1 (huge pages are reserved whole at create)");
		return -EINVAL;
	}
	if (cfg->max_requests > cfg->nr_requests && mem_is(cfg->type, tlen, "segdev")) {
		err_at(e, "max_requests");
		wr_str(e, "a segdev segment cannot grow (the driver allocates all its memory at create)");
		return -EINVAL;
	}
	if (cfg->quota_requests > cfg->nr_requests)
		return err_range(e, "quota_requests", NULL, 0, cfg->quota_requests, 0,
				 cfg->nr_requests);
	r = check_size(e, "quota_buffer", cfg->quota_buffer, page, 0, XSEG_USE_MAX * page);
	if (r)
		return r;
	{
		char m[160];	/* spec_quota.c */

		if (xseg__check_type_quotas(cfg, m, sizeof(m))) {
			wr_str(err_at(e, "quota_types"), m);
			return -EINVAL;
		}
	}
	prev = 0;
	for (i = 0; i < cfg->nr_classes; i++) {
		uint64_t size = cfg->classes[i].size;
		uint32_t count = cfg->classes[i].count;

		r = check_size(e, "buffers", size, page, page, SPEC_MAX_BUF_SIZE);
		if (r)
			return r;
		if (count < 1 || count > SPEC_MAX_COUNT) {
			err_at(e, "buffers");
			wr_ch(e, '\'');
			wr_size(e, size);
			wr_ch(e, '*');
			wr_u64(e, count);
			wr_str(e, "': count must be between 1 and ");
			wr_u64(e, SPEC_MAX_COUNT);
			return -EINVAL;
		}
		if (size == cfg->request_size) {
			err_size(e, "buffers", size);
			wr_str(e, "is the request_size (the default class)");
			return -EINVAL;
		}
		if (size <= prev) {
			err_size(e, "buffers", size);
			wr_str(e, "is out of order: class sizes must be distinct and ascending");
			return -EINVAL;
		}
		prev = size;
	}
	return 0;
}

/* -------------------------------------------------------------- the parser */

struct spec_parse {
	struct xseg_config *cfg;
	struct wr *e;
	unsigned keys_seen;	/* 1 << KEY_* */
	unsigned pos_seen;	/* 1 << position: written positionally or by name */
	const char *dyn;	/* the dynports= value, checked against nr_ports at the end */
	size_t dyn_len;
};

static int parse_positional(struct spec_parse *sp, unsigned pos, const char *s, size_t n)
{
	struct xseg_config *cfg = sp->cfg;
	struct wr *e = sp->e;
	const char *field;
	uint64_t v = 0;
	int r;

	switch (pos) {
	case 0:
		r = check_type(e, s, n);
		if (r)
			return r;
		xseg_memset(cfg->type, 0, sizeof(cfg->type));
		xseg_memcpy(cfg->type, s, n);
		return 0;
	case 1:
		r = check_name(e, mem_is(cfg->type, str_len(cfg->type), "file") ||
			       mem_is(cfg->type, str_len(cfg->type), "sysv"), s, n);
		if (r)
			return r;
		xseg_memset(cfg->name, 0, sizeof(cfg->name));
		xseg_memcpy(cfg->name, s, n);
		return 0;
	case 2:
		return parse_count(e, "nr_ports", s, n, 1, SPEC_MAX_PORTS, &cfg->nr_ports);
	case 3:
		return parse_count(e, "nr_requests", s, n, 1, SPEC_MAX_REQUESTS, &cfg->nr_requests);
	case 4:
	case 5:
		field = pos == 4 ? "request_size" : "extra_size";
		r = parse_size(s, n, &v);
		if (r)
			return size_syntax_err(e, field, s, n, r);
		if (pos == 4)
			cfg->request_size = v;
		else
			cfg->extra_size = v;
		return 0;
	default:
		return parse_count(e, "page_shift", s, n, SPEC_MIN_SHIFT, SPEC_MAX_SHIFT,
				   &cfg->page_shift);
	}
}

static int parse_mode(struct spec_parse *sp, const char *s, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '7') {
			err_val(sp->e, "mode", s, n, 0);
			wr_str(sp->e, "is not an octal number");
			return -EINVAL;
		}
	}
	for (i = 0; i < n; i++) {
		v = v * 8 + (uint64_t)(s[i] - '0');
		if (v > 0777)
			break;		/* too large: no need to read on */
	}
	if (check_mode(sp->e, s, n, v))
		return -EINVAL;
	sp->cfg->mode = (uint32_t)v;
	return 0;
}

static int parse_group(struct spec_parse *sp, const char *s, size_t n)
{
	char name[SPEC_GROUP_LEN];
	uint64_t v = 0;
	int32_t gid = -1;
	size_t i;
	int r;

	r = parse_dec(s, n, &v);
	if (r != -1) {
		if (r || v > SPEC_GID_MAX)
			return err_range(sp->e, "group", s, n, v, 0, SPEC_GID_MAX);
		sp->cfg->gid = (int32_t)v;
		return 0;
	}
	for (i = 0; i < n; i++)
		if (!is_name_char(s[i]))
			break;
	if (i < n || n >= SPEC_GROUP_LEN || s[0] == '-') {
		err_val(sp->e, "group", s, n, 0);
		wr_str(sp->e, "is not a group name or gid");
		return -EINVAL;
	}
	xseg_memcpy(name, s, n);
	name[n] = '\0';
	if (xseg_sys_group_id(name, &gid) || gid < 0) {
		err_at(sp->e, "group");
		wr_str(sp->e, "no group named ");
		wr_quote(sp->e, s, n);
		return -EINVAL;
	}
	sp->cfg->gid = gid;
	return 0;
}

static int parse_autorm(struct spec_parse *sp, const char *s, size_t n)
{
	if (mem_is(s, n, "1") || mem_is(s, n, "yes") || mem_is(s, n, "true")) {
		sp->cfg->autorm = 1;
		return 0;
	}
	if (mem_is(s, n, "0") || mem_is(s, n, "no") || mem_is(s, n, "false")) {
		sp->cfg->autorm = 0;
		return 0;
	}
	err_val(sp->e, "autorm", s, n, 0);
	wr_str(sp->e, "is not one of 0, 1, yes, no, true, false");
	return -EINVAL;
}

/* "buffers: 'item': " */
static struct wr *err_item(struct wr *e, const char *s, size_t n)
{
	err_at(e, "buffers");
	wr_quote(e, s, n);
	wr_str(e, ": ");
	return e;
}

/* buffers=SIZE*COUNT[,SIZE*COUNT...]: stored in ascending size order. */
static int parse_buffers(struct spec_parse *sp, const char *s, size_t n)
{
	struct xseg_config *cfg = sp->cfg;
	const char *end = s + n;
	uint32_t i, j;

	for (;;) {
		const char *comma = find_char(s, (size_t)(end - s), ',');
		size_t len = comma ? (size_t)(comma - s) : (size_t)(end - s);
		const char *star = find_char(s, len, '*');
		uint64_t size = 0, count = 0;
		size_t slen;
		int r;

		if (!star) {
			wr_str(err_item(sp->e, s, len), "not SIZE*COUNT");
			return -EINVAL;
		}
		if (cfg->nr_classes == SPEC_MAX_CLASSES) {
			err_at(sp->e, "buffers");
			wr_str(sp->e, "more than ");
			wr_u64(sp->e, SPEC_MAX_CLASSES);
			wr_str(sp->e, " classes");
			return -EINVAL;
		}
		slen = (size_t)(star - s);
		r = parse_size(s, slen, &size);
		if (r) {
			err_item(sp->e, s, len);
			wr_str(sp->e, r == -2 ? "size is too large" :
			       "size is not a number with an optional unit K, M, G or T");
			return -EINVAL;
		}
		r = parse_dec(star + 1, len - slen - 1, &count);
		if (r == -1) {
			wr_str(err_item(sp->e, s, len), "count is not a number");
			return -EINVAL;
		}
		if (r || count < 1 || count > SPEC_MAX_COUNT) {
			wr_str(err_item(sp->e, s, len), "count must be between 1 and ");
			wr_u64(sp->e, SPEC_MAX_COUNT);
			return -EINVAL;
		}
		for (i = 0; i < cfg->nr_classes; i++) {
			if (cfg->classes[i].size == size) {
				wr_str(err_item(sp->e, s, len), "size ");
				wr_size(sp->e, size);
				wr_str(sp->e, " given twice");
				return -EINVAL;
			}
		}
		/* Insert in ascending size order. */
		for (i = cfg->nr_classes; i > 0 && cfg->classes[i - 1].size > size; i--)
			cfg->classes[i] = cfg->classes[i - 1];
		cfg->classes[i].size = size;
		cfg->classes[i].count = (uint32_t)count;
		cfg->classes[i].pad = 0;
		cfg->nr_classes++;
		if (!comma)
			break;
		s = comma + 1;
	}
	/* Unused entries stay zero (defaults), so equal configs compare equal. */
	for (j = cfg->nr_classes; j < SPEC_MAX_CLASSES; j++)
		xseg_memset(&cfg->classes[j], 0, sizeof(cfg->classes[j]));
	return 0;
}

static int parse_key(struct spec_parse *sp, const char *s, size_t n, const char *eq)
{
	size_t klen = (size_t)(eq - s);
	const char *v = eq + 1;
	size_t vlen = n - klen - 1;
	unsigned k;

	for (k = 2; k < SPEC_FIELDS; k++) {
		if (!mem_is(s, klen, pos_keys[k]))
			continue;
		if (sp->pos_seen & (1u << k)) {
			err_at(sp->e, pos_fields[k]);
			wr_str(sp->e, "given twice (as a field and as ");
			wr_str(sp->e, pos_keys[k]);
			wr_str(sp->e, "=, or as two keys)");
			return -EINVAL;
		}
		if (!vlen) {
			err_at(sp->e, pos_fields[k]);
			wr_str(sp->e, "empty value");
			return -EINVAL;
		}
		sp->pos_seen |= 1u << k;
		return parse_positional(sp, k, v, vlen);
	}
	for (k = 0; k < KEY_COUNT; k++)
		if (mem_is(s, klen, spec_keys[k]))
			break;
	if (k == KEY_COUNT) {
		err_at(sp->e, "spec");
		wr_str(sp->e, "unknown key ");
		wr_quote(sp->e, s, klen);
		wr_str(sp->e, " (keys: " SPEC_KEY_LIST ")");
		return -EINVAL;
	}
	if (sp->keys_seen & (1u << k)) {
		err_at(sp->e, spec_keys[k]);
		wr_str(sp->e, "given twice");
		return -EINVAL;
	}
	sp->keys_seen |= 1u << k;
	if (!vlen) {
		err_at(sp->e, spec_keys[k]);
		wr_str(sp->e, "empty value");
		return -EINVAL;
	}
	switch (k) {
	case KEY_DYNPORTS:
		/* Against nr_ports at the end: ports= may come after it. */
		sp->dyn = v;
		sp->dyn_len = vlen;
		return parse_count(sp->e, "dynports", v, vlen, 0, SPEC_MAX_PORTS,
				   &sp->cfg->dynports);
	case KEY_MODE:
		return parse_mode(sp, v, vlen);
	case KEY_GROUP:
		return parse_group(sp, v, vlen);
	case KEY_AUTORM:
		return parse_autorm(sp, v, vlen);
	case KEY_HUGE:
		return parse_count(sp->e, "huge", v, vlen, 0, 1, &sp->cfg->huge);
	case KEY_HOPS:
		return parse_count(sp->e, "max_hops", v, vlen, 1, XSEG_PATH_MAX, &sp->cfg->max_hops);
	case KEY_PTYPES:
		return parse_count(sp->e, "peer_types", v, vlen, 1, XSEG_PEER_TYPES_MAX,
				   &sp->cfg->peer_types);
	case KEY_MAXREQ:
		return parse_count(sp->e, "max_requests", v, vlen, 1, SPEC_MAX_REQUESTS,
				   &sp->cfg->max_requests);
	case KEY_QREQ:
		return parse_count(sp->e, "quota_requests", v, vlen, 0, SPEC_MAX_REQUESTS,
				   &sp->cfg->quota_requests);
	case KEY_QBUF: {
		int r = parse_size(v, vlen, &sp->cfg->quota_buffer);

		return r ? size_syntax_err(sp->e, "quota_buffer", v, vlen, r) : 0;
	}
	case KEY_QTYPES: {
		char m[160];	/* spec_quota.c */

		if (!xseg__parse_type_quotas(v, vlen, sp->cfg, m, sizeof(m)))
			return 0;
		wr_str(err_at(sp->e, "quota_types"), m);
		return -EINVAL;
	}
	default:
		return parse_buffers(sp, v, vlen);
	}
}

/* Does [s, s + n) hold a '=' before its first ','? */
static bool item_is_key(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && s[i] != ','; i++)
		if (s[i] == '=')
			return true;
	return false;
}

/*
 * key=value items separated by ',' (one ':' field may hold several). A
 * ',' followed by text without '=' before the next ',' belongs to the value
 * (buffers=4K*256,4M*16).
 */
static int parse_keys(struct spec_parse *sp, const char *s, size_t n)
{
	const char *end = s + n;

	while (s < end) {
		const char *p = s, *eq;
		size_t len;
		int r;

		for (;;) {
			const char *c = find_char(p, (size_t)(end - p), ',');

			if (!c) {
				p = end;
				break;
			}
			if (item_is_key(c + 1, (size_t)(end - c - 1))) {
				p = c;
				break;
			}
			p = c + 1;
		}
		len = (size_t)(p - s);
		eq = find_char(s, len, '=');
		if (!eq) {
			err_at(sp->e, "spec");
			wr_quote(sp->e, s, len);
			wr_str(sp->e, " is not key=value (positional fields come first)");
			return -EINVAL;
		}
		r = parse_key(sp, s, len, eq);
		if (r)
			return r;
		s = p < end ? p + 1 : end;
	}
	return 0;
}

int xseg_parse_spec(const char *spec, struct xseg_config *cfg, char *err, size_t errlen)
{
	return xseg_parse_spec_given(spec, cfg, NULL, err, errlen);
}

int xseg_parse_spec_given(const char *spec, struct xseg_config *cfg, uint32_t *given,
			  char *err, size_t errlen)
{
	struct wr we;
	struct spec_parse sp = { .cfg = cfg, .e = &we, .keys_seen = 0 };
	const char *p = spec;
	unsigned pos = 0;
	bool keys = false;

	wr_init(&we, err, errlen);
	if (!cfg) {
		err_at(&we, "spec");
		wr_str(&we, "no config");
		return -EINVAL;
	}
	xseg_config_defaults(cfg);
	if (given)
		*given = 0;
	if (!spec || !*spec) {
		err_at(&we, "spec");
		wr_str(&we, "empty");
		return -EINVAL;
	}
	/*
	 * A bare name: no ':' and a first item that is not a type (nor a key)
	 * names a posix segment: demo = posix:demo, demo,ports=8 = posix:demo,ports=8.
	 */
	if (!find_char(spec, str_len(spec), ':')) {
		const char *c = find_char(spec, str_len(spec), ',');
		size_t n = c ? (size_t)(c - spec) : str_len(spec);

		if (n && !item_is_key(spec, n) && type_index(spec, n) < 0) {
			pos = 1;
			if (given)
				*given |= XSEG_GIVEN_TYPE;
		}
	}
	for (;;) {
		const char *end = p, *eq, *comma, *q;
		size_t n;
		int r = 0;

		while (*end && *end != ':')
			end++;
		n = (size_t)(end - p);
		eq = find_char(p, n, '=');
		/* FIELD,key=value...: the field ends at the last ',' before the first '='. */
		comma = NULL;
		for (q = p; eq && !keys && q < eq; q++)
			if (*q == ',')
				comma = q;
		if (eq && !comma) {
			keys = true;
			r = parse_keys(&sp, p, n);
		} else if (keys) {
			err_at(&we, "spec");
			wr_quote(&we, p, n);
			wr_str(&we, " is not key=value (positional fields come first)");
			r = -EINVAL;
		} else if (pos >= SPEC_FIELDS) {
			err_at(&we, "spec");
			wr_str(&we, "too many fields at ");
			wr_quote(&we, p, n);
			wr_str(&we, " (type:name:nr_ports:nr_requests:request_size:extra_size:page_shift, then key=value)");
			r = -EINVAL;
		} else {
			size_t fn = comma ? (size_t)(comma - p) : n;

			if (fn)
				r = parse_positional(&sp, pos, p, fn);
			if (fn) {
				sp.pos_seen |= 1u << pos;
				if (given)
					*given |= 1u << pos;	/* XSEG_GIVEN_TYPE.. in field order */
			}
			pos++;
			if (!r && comma) {
				keys = true;
				r = parse_keys(&sp, comma + 1, (size_t)(end - comma - 1));
			}
		}
		if (r)
			return r;
		if (!*end)
			break;
		p = end + 1;
	}
	if (!(sp.keys_seen & (1u << KEY_DYNPORTS)))
		cfg->dynports = cfg->nr_ports / 2;
	else if (cfg->dynports > cfg->nr_ports)
		return err_range(&we, "dynports", sp.dyn, sp.dyn_len, cfg->dynports, 0, cfg->nr_ports);
	if (given)
		*given |= sp.pos_seen & ((1u << SPEC_FIELDS) - 1);	/* named fields too */
	if (given)
		*given |= sp.keys_seen << 8;	/* XSEG_GIVEN_DYNPORTS.. in KEY_* order */
	/* A reserve of nr_requests is no reserve: one config, one canonical form. */
	if (cfg->max_requests == cfg->nr_requests)
		cfg->max_requests = 0;
	return xseg_check_config(cfg, err, errlen);
}

/* -------------------------------------------------------------- formatting */

int xseg_format_spec(const struct xseg_config *cfg, char *buf, size_t len)
{
	struct wr w;
	uint32_t i, nc;

	wr_init(&w, buf, len);
	if (!cfg)
		return -EINVAL;
	wr_mem(&w, cfg->type, str_nlen(cfg->type, XSEG_TYPE_LEN));
	wr_ch(&w, ':');
	wr_mem(&w, cfg->name, str_nlen(cfg->name, XSEG_NAME_LEN));
	wr_ch(&w, ':');
	wr_u64(&w, cfg->nr_ports);
	wr_ch(&w, ':');
	wr_u64(&w, cfg->nr_requests);
	wr_ch(&w, ':');
	wr_size(&w, cfg->request_size);
	wr_ch(&w, ':');
	wr_size(&w, cfg->extra_size);
	wr_ch(&w, ':');
	wr_u64(&w, cfg->page_shift);
	if (cfg->dynports != cfg->nr_ports / 2) {
		wr_str(&w, ":dynports=");
		wr_u64(&w, cfg->dynports);
	}
	if (cfg->mode != 0600) {
		wr_str(&w, ":mode=");
		wr_mode(&w, cfg->mode);
	}
	if (cfg->gid != -1) {
		wr_str(&w, ":group=");
		wr_i64(&w, cfg->gid);
	}
	if (cfg->autorm) {
		wr_str(&w, ":autorm=");
		wr_u64(&w, cfg->autorm);
	}
	if (cfg->huge)
		wr_str(&w, ":huge=1");
	if (cfg->max_hops && cfg->max_hops != XSEG_PATH_DEFAULT) {
		wr_str(&w, ":max_hops=");
		wr_u64(&w, cfg->max_hops);
	}
	if (cfg->peer_types && cfg->peer_types != XSEG_PEER_TYPES_DEFAULT) {
		wr_str(&w, ":peer_types=");
		wr_u64(&w, cfg->peer_types);
	}
	if (cfg->max_requests && cfg->max_requests != cfg->nr_requests) {
		wr_str(&w, ":max_requests=");
		wr_u64(&w, cfg->max_requests);
	}
	if (cfg->quota_requests) {
		wr_str(&w, ":quota_requests=");
		wr_u64(&w, cfg->quota_requests);
	}
	if (cfg->quota_buffer) {
		wr_str(&w, ":quota_buffer=");
		wr_size(&w, cfg->quota_buffer);
	}
	{
		char q[320];	/* spec_quota.c: 4 entries of at most 45 bytes */

		xseg__format_type_quotas(cfg, q, sizeof(q));
		wr_str(&w, q);
	}
	nc = cfg->nr_classes < SPEC_MAX_CLASSES ? cfg->nr_classes : SPEC_MAX_CLASSES;
	for (i = 0; i < nc; i++) {
		wr_str(&w, i ? "," : ":buffers=");
		wr_size(&w, cfg->classes[i].size);
		wr_ch(&w, '*');
		wr_u64(&w, cfg->classes[i].count);
	}
	return w.len > 0x7FFFFFFF ? 0x7FFFFFFF : (int)w.len;
}
