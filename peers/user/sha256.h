/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/sha256.h - SHA-256 for filed's HASH op (and radosd), a thin
 * wrapper over OpenSSL's libcrypto (EVP): the hashing is libcrypto's, only
 * the names are ours. A program that includes it links -lcrypto (base.mk:
 * PEER_LDLIBS_<peer>). Checked against the FIPS/NIST vectors by
 * test/peers/sha256.c.
 *
 *   struct sha256 s;
 *   sha256_init(&s);                 0, or -ENOMEM if libcrypto could not start
 *   sha256_update(&s, data, n);      any lengths, any number of times
 *   sha256_final(&s, digest);        0 and the 32-byte digest, or -EIO if any
 *                                    step failed; frees the context
 *   sha256_hex(digest, hex);         64 lowercase hex characters, no NUL
 *
 * A hash abandoned before sha256_final (an I/O error mid-way) is given back
 * with sha256_free(&s); both may be called more than once. Header-only: every
 * .c file of peers/user is a program of its own.
 */
#ifndef XSEG_PEERS_SHA256_H
#define XSEG_PEERS_SHA256_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <openssl/evp.h>

struct sha256 {
	EVP_MD_CTX *ctx;	/* NULL once freed or when init failed */
	int err;		/* the first failure: -ENOMEM at init, -EIO later */
};

static inline void sha256_free(struct sha256 *s)
{
	EVP_MD_CTX_free(s->ctx);
	s->ctx = NULL;
}

static inline int sha256_init(struct sha256 *s)
{
	s->err = 0;
	s->ctx = EVP_MD_CTX_new();
	if (!s->ctx)
		return s->err = -ENOMEM;
	if (EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL) != 1) {
		sha256_free(s);
		return s->err = -ENOMEM;
	}
	return 0;
}

static inline void sha256_update(struct sha256 *s, const void *data, size_t n)
{
	if (s->err || !n)
		return;
	if (EVP_DigestUpdate(s->ctx, data, n) != 1)
		s->err = -EIO;
}

static inline int sha256_final(struct sha256 *s, uint8_t out[32])
{
	unsigned int len = 0;

	if (!s->err && (EVP_DigestFinal_ex(s->ctx, out, &len) != 1 || len != 32))
		s->err = -EIO;
	if (s->err)
		memset(out, 0, 32);
	sha256_free(s);
	return s->err;
}

static inline void sha256_hex(const uint8_t digest[32], char hex[64])
{
	static const char x[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		hex[2 * i] = x[digest[i] >> 4];
		hex[2 * i + 1] = x[digest[i] & 15];
	}
}

#endif
