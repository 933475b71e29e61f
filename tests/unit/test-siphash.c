#include <stdint.h>
#include <stdlib.h>

#include "harness.h"
#include "siphash.h"
#include "util.h"

/*
 * The published SipHash-2-4 vectors (the paper's appendix and the reference
 * implementation's vectors.h): key 00 01 .. 0f, message 00 01 .. (n-1) for
 * n = 0..63; each output as the reference implementation's 8 bytes.
 */
static const char *const sip24_ref[64] = {
	"310e0edd47db6f72", "fd67dc93c539f874", "5a4fa9d909806c0d", "2d7efbd796666785",
	"b7877127e09427cf", "8da699cd64557618", "cee3fe586e46c9cb", "37d1018bf50002ab",
	"6224939a79f5f593", "b0e4a90bdf82009e", "f3b9dd94c5bb5d7a", "a7ad6b22462fb3f4",
	"fbe50e86bc8f1e75", "903d84c02756ea14", "eef27a8e90ca23f7", "e545be4961ca29a1",
	"db9bc2577fcc2a3f", "9447be2cf5e99a69", "9cd38d96f0b3c14b", "bd6179a71dc96dbb",
	"98eea21af25cd6be", "c7673b2eb0cbf2d0", "883ea3e395675393", "c8ce5ccd8c030ca8",
	"94af49f6c650adb8", "eab8858ade92e1bc", "f315bb5bb835d817", "adcf6b0763612e2f",
	"a5c91da7acaa4dde", "716595876650a2a6", "28ef495c53a387ad", "42c341d8fa92d832",
	"ce7cf2722f512771", "e37859f94623f3a7", "381205bb1ab0e012", "ae97a10fd434e015",
	"b4a31508beff4d31", "81396229f0907902", "4d0cf49ee5d4dcca", "5c73336a76d8bf9a",
	"d0a704536ba93e0e", "925958fcd6420cad", "a915c29bc8067318", "952b79f3bc0aa6d4",
	"f21df2e41d4535f9", "87577519048f53a9", "10a56cf5dfcd9adb", "eb75095ccd986cd0",
	"51a9cb9ecba312e6", "96afadfc2ce666c7", "72fe52975a4364ee", "5a1645b276d592a1",
	"b274cb8ebf87870a", "6f9bb4203de7b381", "eaecb2a30b22a87f", "9924a43cc1315724",
	"bd838d3aafbf8db7", "0b1a2a3265d51aea", "135079a3231ce660", "932b2846e4d70666",
	"e1915f5cb1eca46c", "f325965ca16d629f", "575ff28e60381be5", "724506eb4c328a95",
};

static void unhex8(const char *hex, unsigned char out[8])
{
	int i;

	for (i = 0; i < 8; i++) {
		char two[3] = { hex[2 * i], hex[2 * i + 1], 0 };
		out[i] = (unsigned char)strtoul(two, NULL, 16);
	}
}

static void le64(uint64_t v, unsigned char out[8])
{
	put_le32(out, (uint32_t)v);
	put_le32(out + 4, (uint32_t)(v >> 32));
}

TEST(siphash24_reference_vectors)
{
	const uint64_t k0 = UINT64_C(0x0706050403020100), k1 = UINT64_C(0x0f0e0d0c0b0a0908);
	unsigned char msg[64], got[8], want[8];
	size_t n;

	for (n = 0; n < 64; n++)
		msg[n] = (unsigned char)n;
	for (n = 0; n < 64; n++) {
		le64(siphash24(k0, k1, msg, n), got);
		unhex8(sip24_ref[n], want);
		if (memcmp(got, want, 8))
			printf("  length %zu:\n", n);
		CHECK_MEM(got, want, 8);
	}
	/* the paper's worked example: 15 bytes -> a129ca6149be45e5 */
	CHECK(siphash24(k0, k1, msg, 15) == UINT64_C(0xa129ca6149be45e5));
}

TEST(siphash_any_alignment)
{
	const uint64_t k0 = UINT64_C(0x0706050403020100), k1 = UINT64_C(0x0f0e0d0c0b0a0908);
	unsigned char msg[63], buf[63 + 8];
	uint64_t want24, want13;
	size_t shift, i;

	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char)i;
	want24 = siphash24(k0, k1, msg, sizeof(msg));
	want13 = siphash13(k0, k1, msg, sizeof(msg));
	for (shift = 0; shift < 8; shift++) {
		memcpy(buf + shift, msg, sizeof(msg));
		CHECK(siphash24(k0, k1, buf + shift, sizeof(msg)) == want24);
		CHECK(siphash13(k0, k1, buf + shift, sizeof(msg)) == want13);
	}
	/* an empty message may be NULL */
	CHECK(siphash24(1, 2, NULL, 0) == siphash24(1, 2, buf, 0));
	CHECK(siphash13(1, 2, NULL, 0) == siphash13(1, 2, buf, 0));
}

/* _imp.source_hash(_RAW_MAGIC_NUMBER, ...) of each target (shared PYC-FACTS). */
static const struct {
	unsigned magic;
	enum source_hash_kind kind;
	const char *empty, *abc, *hello;
} pyc_vectors[] = {
	{ 3394, SOURCE_HASH_SIPHASH24, "85ee0caabd83b6a7", "d2e9663953762962", "06e194963fac82c1" },
	{ 3413, SOURCE_HASH_SIPHASH24, "81e4881b3643e8e9", "cdfe194f45691474", "104d74a34256f655" },
	{ 3425, SOURCE_HASH_SIPHASH24, "ac0bb7c83e5b1c5f", "361f0027dbc6db99", "abeeac5cccf46907" },
	{ 3439, SOURCE_HASH_SIPHASH24, "8cc0cd2525e7fd27", "435b6a4bbf3d9415", "c3b74919613be674" },
	{ 3495, SOURCE_HASH_SIPHASH13, "738d9cd5d5e87f73", "c7af82e77c1da4f5", "4384a52f77abf775" },
	{ 3531, SOURCE_HASH_SIPHASH13, "baf18eedc9387a25", "a00f5731f8bafd32", "636bbff74880dda4" },
	{ 3571, SOURCE_HASH_SIPHASH13, "27ec6d312f93b814", "c9ff551a534790a0", "69784eb12d346688" },
};

static void magic_of(unsigned number, unsigned char magic[4])
{
	magic[0] = (unsigned char)number;
	magic[1] = (unsigned char)(number >> 8);
	magic[2] = '\r';
	magic[3] = '\n';
}

static void check_source_hash(unsigned number, enum source_hash_kind kind, const char *src,
			      const char *want_hex)
{
	unsigned char magic[4], got[8], want[8];

	magic_of(number, magic);
	pyc_source_hash(kind, magic, src, strlen(src), got);
	unhex8(want_hex, want);
	if (memcmp(got, want, 8))
		printf("  magic %u, SipHash-%d, source \"%s\":\n", number, (int)kind, src);
	CHECK_MEM(got, want, 8);
}

TEST(pyc_source_hash_matches_cpython)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(pyc_vectors); i++) {
		check_source_hash(pyc_vectors[i].magic, pyc_vectors[i].kind, "",
				  pyc_vectors[i].empty);
		check_source_hash(pyc_vectors[i].magic, pyc_vectors[i].kind, "abc",
				  pyc_vectors[i].abc);
		check_source_hash(pyc_vectors[i].magic, pyc_vectors[i].kind,
				  "print(\"hello\")\n", pyc_vectors[i].hello);
	}
}

TEST(source_hash_kind_from_probe)
{
	unsigned char magic[4], abc[8], garbage[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	enum source_hash_kind kind;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(pyc_vectors); i++) {
		magic_of(pyc_vectors[i].magic, magic);
		unhex8(pyc_vectors[i].abc, abc);
		kind = (enum source_hash_kind)0;
		CHECK_INT(source_hash_kind_from_probe(magic, abc, &kind), 0);
		CHECK_INT(kind, pyc_vectors[i].kind);
	}

	/* 3.8 and 3.12 by name */
	magic_of(3413, magic);
	unhex8("cdfe194f45691474", abc);
	CHECK_INT(source_hash_kind_from_probe(magic, abc, &kind), 0);
	CHECK_INT(kind, SOURCE_HASH_SIPHASH24);
	magic_of(3531, magic);
	unhex8("a00f5731f8bafd32", abc);
	CHECK_INT(source_hash_kind_from_probe(magic, abc, &kind), 0);
	CHECK_INT(kind, SOURCE_HASH_SIPHASH13);

	/* garbage, and a right hash for another magic, leave *kind alone */
	kind = (enum source_hash_kind)0;
	CHECK_INT(source_hash_kind_from_probe(magic, garbage, &kind), -1);
	unhex8("cdfe194f45691474", abc); /* 3.8's, with 3.12's magic */
	CHECK_INT(source_hash_kind_from_probe(magic, abc, &kind), -1);
	/* the b'' hash is not the b'abc' hash */
	unhex8("baf18eedc9387a25", abc);
	CHECK_INT(source_hash_kind_from_probe(magic, abc, &kind), -1);
	CHECK_INT(kind, 0);
}
