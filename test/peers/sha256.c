/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: peers/user/sha256.h (filed's HASH) against the known SHA-256
 * vectors of FIPS 180-4 / NIST: "", "abc", the 448-bit and 896-bit messages
 * and a million 'a's; the same digests when the input arrives in pieces of
 * every size from 1 to 130 bytes; the 55/56/63/64-byte padding edges agree
 * between one update and byte-by-byte updates. The wrapper over libcrypto
 * gives its context back on final and on sha256_free (twice is harmless; the
 * sanitizer builds see a leak or a double free).
 */
#include "xtest.h"
#include "../../peers/user/sha256.h"

static void hex_of(const void *data, size_t n, char out[65])
{
	struct sha256 s;
	uint8_t d[32];

	sha256_init(&s);
	sha256_update(&s, data, n);
	sha256_final(&s, d);
	sha256_hex(d, out);
	out[64] = 0;
}

static const struct { const char *msg; const char *hex; } vectors[] = {
	{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
	{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
	{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	{ "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
	  "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
};

static void test_vectors(void)
{
	char h[65];

	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		hex_of(vectors[i].msg, strlen(vectors[i].msg), h);
		CHECKF(!strcmp(h, vectors[i].hex), "vector %zu: %s", i, h);
	}
}

static void test_million_a(void)
{
	static char a[1000000];
	char h[65];

	memset(a, 'a', sizeof(a));
	hex_of(a, sizeof(a), h);
	CHECKF(!strcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "%s", h);
}

static void test_pieces(void)
{
	const char *m = vectors[3].msg;
	size_t n = strlen(m);

	for (size_t piece = 1; piece <= 130; piece++) {
		struct sha256 s;
		uint8_t d[32];
		char h[65];

		sha256_init(&s);
		for (size_t o = 0; o < n; o += piece)
			sha256_update(&s, m + o, n - o < piece ? n - o : piece);
		sha256_final(&s, d);
		sha256_hex(d, h);
		h[64] = 0;
		CHECKF(!strcmp(h, vectors[3].hex), "pieces of %zu: %s", piece, h);
	}
}

static void test_padding_edges(void)
{
	uint8_t buf[200];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	for (size_t n = 0; n <= 130; n++) {
		struct sha256 s;
		uint8_t d[32];
		char one[65], bytes[65];

		hex_of(buf, n, one);
		sha256_init(&s);
		for (size_t i = 0; i < n; i++)
			sha256_update(&s, buf + i, 1);
		sha256_final(&s, d);
		sha256_hex(d, bytes);
		bytes[64] = 0;
		CHECKF(!strcmp(one, bytes), "length %zu", n);
	}
}

static void test_free(void)
{
	struct sha256 s;
	uint8_t d[32];
	char h[65];

	CHECK(sha256_init(&s) == 0);
	sha256_update(&s, "abc", 3);
	sha256_free(&s);		/* abandoned mid-way */
	sha256_free(&s);
	CHECK(sha256_init(&s) == 0);
	sha256_update(&s, "abc", 3);
	CHECK(sha256_final(&s, d) == 0);
	sha256_free(&s);		/* after final */
	sha256_hex(d, h);
	h[64] = 0;
	CHECKF(!strcmp(h, vectors[1].hex), "%s", h);
}

int main(void)
{
	xt_watchdog(60);
	RUN(test_vectors);
	RUN(test_million_a);
	RUN(test_pieces);
	RUN(test_padding_edges);
	RUN(test_free);
	return 0;
}
