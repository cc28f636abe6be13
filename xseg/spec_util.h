/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/spec_util.h - the spec parser's small tools, shared by xseg/spec.c
 * and xseg/spec_quota.c: string helpers, the bounded message writer (no
 * snprintf: the same code runs in every domain) and the number parsers.
 * Header-only (static inline); not part of the API.
 */
#ifndef XSEG_SPEC_UTIL_H
#define XSEG_SPEC_UTIL_H

#include "xseg.h"
#include "xseg_size.h"

#define SPEC_QUOTE_MAX		64u		/* longest value quoted in a message */
#define SPEC_U64_MAX		(~(uint64_t)0)

/* ------------------------------------------------------------ small helpers */

static inline size_t str_len(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

/* Length of @s, at most @max (for fixed arrays that may lack their NUL). */
static inline size_t str_nlen(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n])
		n++;
	return n;
}

/* Does [s, s+n) equal the NUL-terminated @word? */
static inline bool mem_is(const char *s, size_t n, const char *word)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!word[i] || word[i] != s[i])
			return false;
	return word[n] == '\0';
}

static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static inline bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
	       c == '.' || c == '_' || c == '-';
}

static inline const char *find_char(const char *s, size_t n, char c)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] == c)
			return s + i;
	return NULL;
}

/* ------------------------------------------------------- the bounded writer */

/*
 * Writes into @buf (capacity @cap, always NUL-terminated when cap > 0) and
 * counts in @len every byte it was asked for, like snprintf.
 */
struct wr {
	char *buf;
	size_t cap;
	size_t len;
};

static inline void wr_init(struct wr *w, char *buf, size_t cap)
{
	w->buf = buf;
	w->cap = buf ? cap : 0;
	w->len = 0;
	if (w->cap)
		w->buf[0] = '\0';
}

static inline void wr_ch(struct wr *w, char c)
{
	if (w->len + 1 < w->cap) {
		w->buf[w->len] = c;
		w->buf[w->len + 1] = '\0';
	}
	w->len++;
}

static inline void wr_mem(struct wr *w, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		wr_ch(w, s[i]);
}

static inline void wr_str(struct wr *w, const char *s)
{
	wr_mem(w, s, str_len(s));
}

static inline void wr_u64(struct wr *w, uint64_t v)
{
	char d[20];
	int n = 0;

	do {
		d[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		wr_ch(w, d[--n]);
}

static inline void wr_i64(struct wr *w, int64_t v)
{
	if (v < 0) {
		wr_ch(w, '-');
		wr_u64(w, (uint64_t)0 - (uint64_t)v);
	} else {
		wr_u64(w, (uint64_t)v);
	}
}

/* Octal with a leading 0 and at least three digits: 0600. */
static inline void wr_mode(struct wr *w, uint32_t v)
{
	char d[12];
	int n = 0;

	do {
		d[n++] = (char)('0' + (v & 7u));
		v >>= 3;
	} while (v);
	while (n < 3)
		d[n++] = '0';
	wr_ch(w, '0');
	while (n)
		wr_ch(w, d[--n]);
}

/* A size with the largest unit that divides it exactly: 64K, 1M, 3000, 0. */
static inline void wr_size(struct wr *w, uint64_t v)
{
	static const char units[] = "GMK";
	static const unsigned shifts[] = { 30, 20, 10 };
	unsigned i;

	for (i = 0; v && i < 3; i++) {
		if (!(v & ((1ull << shifts[i]) - 1))) {
			wr_u64(w, v >> shifts[i]);
			wr_ch(w, units[i]);
			return;
		}
	}
	wr_u64(w, v);
}

/* 'value' for messages: bytes outside printable ASCII as \xNN, long values cut. */
static inline void wr_quote(struct wr *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, m = n > SPEC_QUOTE_MAX ? SPEC_QUOTE_MAX : n;

	wr_ch(w, '\'');
	for (i = 0; i < m; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '\\') {
			wr_ch(w, '\\');
			wr_ch(w, 'x');
			wr_ch(w, hex[c >> 4]);
			wr_ch(w, hex[c & 15]);
		} else {
			wr_ch(w, (char)c);
		}
	}
	if (m < n)
		wr_str(w, "...");
	wr_ch(w, '\'');
}

/* Start the (only) error message: "field: ". */
static inline struct wr *err_at(struct wr *e, const char *field)
{
	e->len = 0;
	if (e->cap)
		e->buf[0] = '\0';
	wr_str(e, field);
	wr_str(e, ": ");
	return e;
}

/* "field: 'text' " - the offending text as given, or the value if @s is NULL. */
static inline struct wr *err_val(struct wr *e, const char *field, const char *s, size_t n,
				  uint64_t v)
{
	err_at(e, field);
	if (s) {
		wr_quote(e, s, n);
	} else {
		wr_ch(e, '\'');
		wr_u64(e, v);
		wr_ch(e, '\'');
	}
	wr_ch(e, ' ');
	return e;
}

static inline struct wr *err_size(struct wr *e, const char *field, uint64_t v)
{
	err_at(e, field);
	wr_ch(e, '\'');
	wr_size(e, v);
	wr_str(e, "' ");
	return e;
}

static inline int err_range(struct wr *e, const char *field, const char *s, size_t n, uint64_t v,
			    uint64_t lo, uint64_t hi)
{
	err_val(e, field, s, n, v);
	wr_str(e, "must be between ");
	wr_u64(e, lo);
	wr_str(e, " and ");
	wr_u64(e, hi);
	return -EINVAL;
}

/* ---------------------------------------------------------------- numbers */

/* Decimal digits only. 0, -1 (not a number) or -2 (overflows uint64). */
static inline int parse_dec(const char *s, size_t n, uint64_t *v)
{
	uint64_t x = 0;
	size_t i;

	if (!n)
		return -1;
	for (i = 0; i < n; i++)
		if (!is_digit(s[i]))
			return -1;
	for (i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (x > (SPEC_U64_MAX - d) / 10)
			return -2;
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

/* A size: the grammar of xseg_size.h. 0, -1 (syntax) or -2 (overflows uint64). */
static inline int parse_size(const char *s, size_t n, uint64_t *v)
{
	return xseg_parse_size(s, n, v);
}

/* A count field: decimal, lo..hi. */
static inline int parse_count(struct wr *e, const char *field, const char *s, size_t n,
			      uint64_t lo, uint64_t hi, uint32_t *out)
{
	uint64_t v = 0;
	int r = parse_dec(s, n, &v);

	if (r == -1) {
		err_val(e, field, s, n, 0);
		wr_str(e, "is not a number");
		return -EINVAL;
	}
	if (r || v < lo || v > hi)
		return err_range(e, field, s, n, v, lo, hi);
	*out = (uint32_t)v;
	return 0;
}

static inline int size_syntax_err(struct wr *e, const char *field, const char *s, size_t n, int r)
{
	err_val(e, field, s, n, 0);
	if (r == -2)
		wr_str(e, "is too large");
	else
		wr_str(e, "is not a size (a number with an optional unit K, M, G or T)");
	return -EINVAL;
}

#endif
