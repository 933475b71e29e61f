#include <stdlib.h>

#include "blake2b.h"
#include "harness.h"
#include "util.h"

/* Every digest below was checked against Python's hashlib.blake2b. */

static void unhex(const char *hex, unsigned char *out, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char two[3] = { hex[2 * i], hex[2 * i + 1], 0 };
		out[i] = (unsigned char)strtoul(two, NULL, 16);
	}
}

static int digest_is(const unsigned char *got, const char *hex)
{
	unsigned char want[BLAKE2B_OUTBYTES];
	size_t n = strlen(hex) / 2;

	unhex(hex, want, n);
	return !memcmp(got, want, n);
}

TEST(blake2b_rfc7693_and_empty)
{
	unsigned char out[64];

	/* RFC 7693 Appendix A */
	blake2b(out, 64, "abc", 3);
	CHECK(digest_is(out, "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
			     "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923"));
	blake2b(out, 64, "", 0);
	CHECK(digest_is(out, "786a02f742015903c6c6fd852552d272912f4740e15847618a86e217f71f5419"
			     "d25e1031afee585313896444934eb04b903a685b1448b755d56f701afe9be2ce"));
	blake2b(out, 32, "", 0);
	CHECK(digest_is(out, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"));
	/* the output length is a parameter: BLAKE2b-128 is not a prefix */
	blake2b(out, 16, "abc", 3);
	CHECK(digest_is(out, "cf4ab791c62b8d2b2109c90275287816"));
	memset(out, 0, sizeof(out));
	blake2b(out, 1, (const char[1000]){ 0 }, 1000);
	CHECK_INT(out[0], 0x5d);
	CHECK_INT(out[1], 0);
}

/* blake2b-kat.txt: key 00..3f, input 00 01 .. (n-1), BLAKE2b-512. */
static const struct {
	size_t n;
	const char *hex;
} keyed_kat[] = {
	{ 0, "10ebb67700b1868efb4417987acf4690ae9d972fb7a590c2f02871799aaa4786"
	     "b5e996e8f0f4eb981fc214b005f42d2ff4233499391653df7aefcbc13fc51568" },
	{ 1, "961f6dd1e4dd30f63901690c512e78e4b45e4742ed197c3c5e45c549fd25f2e4"
	     "187b0bc9fe30492b16b0d0bc4ef9b0f34c7003fac09a5ef1532e69430234cebd" },
	{ 2, "da2cfbe2d8409a0f38026113884f84b50156371ae304c4430173d08a99d9fb1b"
	     "983164a3770706d537f49e0c916d9f32b95cc37a95b99d857436f0232c88a965" },
	{ 63, "bd965bf31e87d70327536f2a341cebc4768eca275fa05ef98f7f1b71a0351298"
	      "de006fba73fe6733ed01d75801b4a928e54231b38e38c562b2e33ea1284992fa" },
	{ 64, "65676d800617972fbd87e4b9514e1c67402b7a331096d3bfac22f1abb95374ab"
	      "c942f16e9ab0ead33b87c91968a6e509e119ff07787b3ef483e1dcdccf6e3022" },
	{ 65, "939fa189699c5d2c81ddd1ffc1fa207c970b6a3685bb29ce1d3e99d42f2f7442"
	      "da53e95a72907314f4588399a3ff5b0a92beb3f6be2694f9f86ecf2952d5b41c" },
	{ 127, "76d2d819c92bce55fa8e092ab1bf9b9eab237a25267986cacf2b8ee14d214d73"
	       "0dc9a5aa2d7b596e86a1fd8fa0804c77402d2fcd45083688b218b1cdfa0dcbcb" },
	{ 128, "72065ee4dd91c2d8509fa1fc28a37c7fc9fa7d5b3f8ad3d0d7a25626b57b1b44"
	       "788d4caf806290425f9890a3a2a35a905ab4b37acfd0da6e4517b2525c9651e4" },
	{ 129, "64475dfe7600d7171bea0b394e27c9b00d8e74dd1e416a79473682ad3dfdbb70"
	       "6631558055cfc8a40e07bd015a4540dcdea15883cbbf31412df1de1cd4152b91" },
	{ 255, "142709d62e28fcccd0af97fad0f8465b971e82201dc51070faa0372aa43e9248"
	       "4be1c1e73ba10906d5d1853db6a4106e0a7bf9800d373d6dee2d46d62ef2a461" },
};

TEST(blake2b_keyed_kat)
{
	unsigned char key[64], msg[256], out[64];
	struct blake2b s;
	size_t i;

	for (i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)i;
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char)i;
	for (i = 0; i < ARRAY_SIZE(keyed_kat); i++) {
		blake2b_init_key(&s, 64, key, sizeof(key));
		blake2b_update(&s, msg, keyed_kat[i].n);
		blake2b_final(&s, out);
		if (!digest_is(out, keyed_kat[i].hex)) {
			printf("  keyed, length %zu:\n", keyed_kat[i].n);
			CHECK(0);
		}
	}
	/* a short key and an odd output length */
	blake2b_init_key(&s, 20, "prepyc", 6);
	blake2b_update(&s, "The quick brown fox jumps over the lazy dog", 43);
	blake2b_final(&s, out);
	CHECK(digest_is(out, "61cabf282f81df7f6fd46f620b7aeb5c7b36a94f"));
}

/* Feed `data` in pieces of `chunk` bytes (cycling through `sizes` when chunk is 0). */
static void hash_in_pieces(unsigned char out[32], const unsigned char *data, size_t len,
			   size_t chunk)
{
	static const size_t sizes[] = { 1, 127, 128, 129, 0, 3, 255, 256, 1000, 64 };
	struct blake2b s;
	size_t off = 0, k = 0;

	blake2b_init(&s, 32);
	while (off < len) {
		size_t n = chunk ? chunk : sizes[k++ % ARRAY_SIZE(sizes)];

		if (n > len - off)
			n = len - off;
		blake2b_update(&s, data + off, n);
		off += n;
	}
	blake2b_final(&s, out);
}

TEST(blake2b_any_split_gives_the_same_digest)
{
	static const size_t chunks[] = { 1, 2, 7, 64, 127, 128, 129, 255, 256, 4096, 0 };
	const size_t len = 1000000;
	unsigned char *data = xmalloc(len + 1), one[32], got[32];
	size_t i;

	for (i = 0; i < len; i++)
		data[i] = (unsigned char)(i * 7 + 3);
	blake2b(one, 32, data, len);
	CHECK(digest_is(one, "d48a491f3fe3c69942b7153de924b9fadec07d645a09205472d846c08e95e20f"));
	for (i = 0; i < ARRAY_SIZE(chunks); i++) {
		hash_in_pieces(got, data, len, chunks[i]);
		if (memcmp(got, one, 32)) {
			printf("  pieces of %zu bytes:\n", chunks[i]);
			CHECK(0);
		}
	}
	/* every length around the block boundaries, one-shot vs. byte by byte, at any alignment */
	for (i = 0; i <= 300; i++) {
		blake2b(one, 32, data + 1 + i % 8, i);
		hash_in_pieces(got, data + 1 + i % 8, i, 1);
		if (memcmp(got, one, 32)) {
			printf("  length %zu:\n", i);
			CHECK(0);
		}
	}
	free(data);
}
