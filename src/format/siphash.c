#define _POSIX_C_SOURCE 200809L
#include "siphash.h"

#include "util.h"
#include "banned.h"

/*
 * SipHash as specified by Aumasson and Bernstein, "SipHash: a fast
 * short-input PRF" (2012): a 256-bit state of four u64 words, initialised
 * from the key and four constants ("somepseudorandomlygeneratedbytes");
 * c SipRounds per 8-byte message word, d SipRounds to finalise.
 */

#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

struct sip_state {
	uint64_t v0, v1, v2, v3;
};

static inline void sip_round(struct sip_state *s)
{
	s->v0 += s->v1;
	s->v1 = ROTL64(s->v1, 13);
	s->v1 ^= s->v0;
	s->v0 = ROTL64(s->v0, 32);
	s->v2 += s->v3;
	s->v3 = ROTL64(s->v3, 16);
	s->v3 ^= s->v2;
	s->v0 += s->v3;
	s->v3 = ROTL64(s->v3, 21);
	s->v3 ^= s->v0;
	s->v2 += s->v1;
	s->v1 = ROTL64(s->v1, 17);
	s->v1 ^= s->v2;
	s->v2 = ROTL64(s->v2, 32);
}

static inline void sip_compress(struct sip_state *s, uint64_t m, int crounds)
{
	int i;

	s->v3 ^= m;
	for (i = 0; i < crounds; i++)
		sip_round(s);
	s->v0 ^= m;
}

/* Built from bytes: the input has any alignment and the host any byte order. */
static inline uint64_t load_le64(const unsigned char *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
	       (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
	       (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

/* Inlined into each caller, so the round counts are constants there. */
static inline uint64_t siphash_cd(int crounds, int drounds, uint64_t k0, uint64_t k1,
				  const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t whole = len & ~(size_t)7, off;
	struct sip_state s;
	uint64_t last;
	int i;

	s.v0 = k0 ^ UINT64_C(0x736f6d6570736575);
	s.v1 = k1 ^ UINT64_C(0x646f72616e646f6d);
	s.v2 = k0 ^ UINT64_C(0x6c7967656e657261);
	s.v3 = k1 ^ UINT64_C(0x7465646279746573);

	/* Offsets, not pointer steps: `data` may be NULL when len is 0. */
	for (off = 0; off < whole; off += 8)
		sip_compress(&s, load_le64(p + off), crounds);

	/* The final word: the 0-7 remaining bytes, and len mod 256 on top. */
	last = (uint64_t)(len & 0xff) << 56;
	for (i = (int)(len & 7) - 1; i >= 0; i--)
		last |= (uint64_t)p[whole + (size_t)i] << (8 * i);
	sip_compress(&s, last, crounds);

	s.v2 ^= 0xff;
	for (i = 0; i < drounds; i++)
		sip_round(&s);
	return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

uint64_t siphash24(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
	return siphash_cd(2, 4, k0, k1, data, len);
}

uint64_t siphash13(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
	return siphash_cd(1, 3, k0, k1, data, len);
}

static uint64_t source_hash_u64(enum source_hash_kind kind, const unsigned char magic[4],
				const void *src, size_t len)
{
	uint64_t key = get_le32(magic);

	switch (kind) {
	case SOURCE_HASH_SIPHASH13:
		return siphash13(key, 0, src, len);
	case SOURCE_HASH_SIPHASH24:
		return siphash24(key, 0, src, len);
	}
	BUG("unknown source hash kind %d", (int)kind);
}

void pyc_source_hash(enum source_hash_kind kind, const unsigned char magic[4], const void *src,
		     size_t len, unsigned char out[8])
{
	uint64_t h = source_hash_u64(kind, magic, src, len);

	put_le32(out, (uint32_t)h);
	put_le32(out + 4, (uint32_t)(h >> 32));
}

int source_hash_kind_from_probe(const unsigned char magic[4], const unsigned char abc_hash[8],
				enum source_hash_kind *kind)
{
	static const enum source_hash_kind kinds[] = { SOURCE_HASH_SIPHASH13,
						       SOURCE_HASH_SIPHASH24 };
	uint64_t want = (uint64_t)get_le32(abc_hash) | (uint64_t)get_le32(abc_hash + 4) << 32;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(kinds); i++) {
		if (source_hash_u64(kinds[i], magic, "abc", 3) == want) {
			*kind = kinds[i];
			return 0;
		}
	}
	return -1;
}
