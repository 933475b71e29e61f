/*
 * blake2b.c - BLAKE2b as specified by RFC 7693, sections 2 and 3.
 *
 * The working vector lives in sixteen locals and the twelve rounds are
 * unrolled with their message schedule as constants, so that a -O2 scalar
 * build keeps v[] in registers.
 */
#define _POSIX_C_SOURCE 200809L
#include "blake2b.h"

#include <string.h>

#include "util.h"
#include "banned.h"

/* RFC 7693 2.6: the SHA-512 initialization vector. */
static const uint64_t blake2b_iv[8] = {
	UINT64_C(0x6a09e667f3bcc908), UINT64_C(0xbb67ae8584caa73b),
	UINT64_C(0x3c6ef372fe94f82b), UINT64_C(0xa54ff53a5f1d36f1),
	UINT64_C(0x510e527fade682d1), UINT64_C(0x9b05688c2b3e6c1f),
	UINT64_C(0x1f83d9abfb41bd6b), UINT64_C(0x5be0cd19137e2179),
};

/* RFC 7693 2.7: message word permutations; rounds 10 and 11 reuse 0 and 1. */
static const unsigned char sigma[12][16] = {
	{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
	{ 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 },
	{ 11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4 },
	{ 7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8 },
	{ 9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13 },
	{ 2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9 },
	{ 12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11 },
	{ 13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10 },
	{ 6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5 },
	{ 10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0 },
	{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
	{ 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 },
};

static inline uint64_t load64(const unsigned char *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
	       (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
	       (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static inline uint64_t rotr64(uint64_t x, unsigned n)
{
	return x >> n | x << (64 - n);
}

/* RFC 7693 3.1: the mixing function, rotations 32, 24, 16, 63. */
#define G(a, b, c, d, x, y)                      \
	do {                                     \
		a = a + b + (x);                 \
		d = rotr64(d ^ a, 32);           \
		c = c + d;                       \
		b = rotr64(b ^ c, 24);           \
		a = a + b + (y);                 \
		d = rotr64(d ^ a, 16);           \
		c = c + d;                       \
		b = rotr64(b ^ c, 63);           \
	} while (0)

/* RFC 7693 3.2: four column steps, then four diagonal steps. */
#define ROUND(r)                                                               \
	do {                                                                   \
		G(v0, v4, v8, v12, m[sigma[r][0]], m[sigma[r][1]]);            \
		G(v1, v5, v9, v13, m[sigma[r][2]], m[sigma[r][3]]);            \
		G(v2, v6, v10, v14, m[sigma[r][4]], m[sigma[r][5]]);           \
		G(v3, v7, v11, v15, m[sigma[r][6]], m[sigma[r][7]]);           \
		G(v0, v5, v10, v15, m[sigma[r][8]], m[sigma[r][9]]);           \
		G(v1, v6, v11, v12, m[sigma[r][10]], m[sigma[r][11]]);         \
		G(v2, v7, v8, v13, m[sigma[r][12]], m[sigma[r][13]]);          \
		G(v3, v4, v9, v14, m[sigma[r][14]], m[sigma[r][15]]);          \
	} while (0)

/* RFC 7693 3.2: compress one 128-byte block; the counter is already updated. */
static void compress(struct blake2b *s, const unsigned char *block, int last)
{
	uint64_t m[16];
	uint64_t v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15;
	int i;

	for (i = 0; i < 16; i++)
		m[i] = load64(block + 8 * i);
	v0 = s->h[0], v1 = s->h[1], v2 = s->h[2], v3 = s->h[3];
	v4 = s->h[4], v5 = s->h[5], v6 = s->h[6], v7 = s->h[7];
	v8 = blake2b_iv[0], v9 = blake2b_iv[1], v10 = blake2b_iv[2], v11 = blake2b_iv[3];
	v12 = blake2b_iv[4] ^ s->t[0];
	v13 = blake2b_iv[5] ^ s->t[1];
	v14 = last ? ~blake2b_iv[6] : blake2b_iv[6];
	v15 = blake2b_iv[7];

	ROUND(0);
	ROUND(1);
	ROUND(2);
	ROUND(3);
	ROUND(4);
	ROUND(5);
	ROUND(6);
	ROUND(7);
	ROUND(8);
	ROUND(9);
	ROUND(10);
	ROUND(11);

	s->h[0] ^= v0 ^ v8;
	s->h[1] ^= v1 ^ v9;
	s->h[2] ^= v2 ^ v10;
	s->h[3] ^= v3 ^ v11;
	s->h[4] ^= v4 ^ v12;
	s->h[5] ^= v5 ^ v13;
	s->h[6] ^= v6 ^ v14;
	s->h[7] ^= v7 ^ v15;
}

#undef ROUND
#undef G

/* The 128-bit byte counter t. */
static inline void count(struct blake2b *s, size_t n)
{
	s->t[0] += n;
	if (s->t[0] < n)
		s->t[1]++;
}

void blake2b_init_key(struct blake2b *s, size_t outlen, const void *key, size_t keylen)
{
	int i;

	if (!outlen || outlen > BLAKE2B_OUTBYTES || keylen > BLAKE2B_KEYBYTES)
		BUG("blake2b: output length %zu, key length %zu", outlen, keylen);
	for (i = 0; i < 8; i++)
		s->h[i] = blake2b_iv[i];
	/* parameter block: digest length, key length, fanout 1, depth 1 */
	s->h[0] ^= UINT64_C(0x01010000) ^ (uint64_t)keylen << 8 ^ (uint64_t)outlen;
	s->t[0] = s->t[1] = 0;
	s->outlen = outlen;
	s->buflen = 0;
	memset(s->buf, 0, sizeof(s->buf));
	if (keylen) {
		/* the key, zero-padded, is the first block */
		memcpy(s->buf, key, keylen);
		s->buflen = BLAKE2B_BLOCKBYTES;
	}
}

void blake2b_init(struct blake2b *s, size_t outlen)
{
	blake2b_init_key(s, outlen, NULL, 0);
}

void blake2b_update(struct blake2b *s, const void *data, size_t len)
{
	const unsigned char *in = data;
	size_t fill = BLAKE2B_BLOCKBYTES - s->buflen;

	/*
	 * A full block is compressed only once more input follows it: the
	 * last block, even a full one, is kept for blake2b_final().
	 */
	if (len > fill) {
		memcpy(s->buf + s->buflen, in, fill);
		count(s, BLAKE2B_BLOCKBYTES);
		compress(s, s->buf, 0);
		s->buflen = 0;
		in += fill;
		len -= fill;
		while (len > BLAKE2B_BLOCKBYTES) {
			count(s, BLAKE2B_BLOCKBYTES);
			compress(s, in, 0);
			in += BLAKE2B_BLOCKBYTES;
			len -= BLAKE2B_BLOCKBYTES;
		}
	}
	if (len) {
		memcpy(s->buf + s->buflen, in, len);
		s->buflen += len;
	}
}

void blake2b_final(struct blake2b *s, unsigned char *out)
{
	size_t i;

	count(s, s->buflen);
	memset(s->buf + s->buflen, 0, BLAKE2B_BLOCKBYTES - s->buflen);
	compress(s, s->buf, 1);
	for (i = 0; i < s->outlen; i++)
		out[i] = (unsigned char)(s->h[i / 8] >> (8 * (i % 8)));
}

void blake2b(void *out, size_t outlen, const void *data, size_t len)
{
	struct blake2b s;

	blake2b_init(&s, outlen);
	blake2b_update(&s, data, len);
	blake2b_final(&s, out);
}
