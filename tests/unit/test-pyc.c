#include <stdlib.h>

#include "harness.h"
#include "pyc.h"
#include "util.h"

TEST(pyc_mtime32_truncates_like_python)
{
	CHECK_INT(pyc_mtime32(1700000000, 0), 1700000000u);
	CHECK_INT(pyc_mtime32(1700000000, 500000000), 1700000000u);
	/* sec + nsec*1e-9 as a double rounds up to the next second */
	CHECK_INT(pyc_mtime32(1700000000, 999999999), 1700000001u);
	CHECK_INT(pyc_mtime32(1700000000, 999999000), 1700000000u);
	/* int() truncates toward zero, then & 0xFFFFFFFF: -1.5 -> -1 -> 0xFFFFFFFF */
	CHECK_INT(pyc_mtime32(-2, 500000000), 0xFFFFFFFFu);
	CHECK_INT(pyc_mtime32(-1, 0), 0xFFFFFFFFu);
	CHECK_INT(pyc_mtime32(0, 0), 0);
	/* beyond 2106 wraps modulo 2**32 */
	CHECK_INT(pyc_mtime32(4294967296LL + 5, 0), 5);
}

static const struct pyc_format fmt36 = { { 0x33, 0x0d, 0x0d, 0x0a }, 12 };
static const struct pyc_format fmt311 = { { 0xa7, 0x0d, 0x0d, 0x0a }, 16 };

TEST(pyc_header_36_is_12_bytes)
{
	unsigned char h[PYC_HEADER_MAX];
	static const unsigned char want[12] = { 0x33, 0x0d, 0x0d, 0x0a, 0x04, 0x03, 0x02, 0x01,
						0x10, 0x00, 0x00, 0x00 };

	CHECK_INT(pyc_header_timestamp(&fmt36, h, 0x01020304, 16), 12);
	CHECK_MEM(h, want, 12);
}

TEST(pyc_header_37_plus_is_16_bytes)
{
	unsigned char h[PYC_HEADER_MAX];
	static const unsigned char want[16] = { 0xa7, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0,
						0x04, 0x03, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00 };

	/* size is stored modulo 2**32 */
	CHECK_INT(pyc_header_timestamp(&fmt311, h, 0x01020304, 0x100000001ULL), 16);
	CHECK_MEM(h, want, 16);
}

TEST(pyc_freshness_checks_magic_flags_mtime_size)
{
	unsigned char h[PYC_HEADER_MAX];

	pyc_header_timestamp(&fmt311, h, 1000, 200);
	CHECK(pyc_header_is_fresh(&fmt311, h, 16, 1000, 200));
	CHECK(!pyc_header_is_fresh(&fmt311, h, 15, 1000, 200));
	CHECK(!pyc_header_is_fresh(&fmt311, h, 16, 1001, 200));
	CHECK(!pyc_header_is_fresh(&fmt311, h, 16, 1000, 201));
	CHECK(!pyc_header_is_fresh(&fmt36, h, 16, 1000, 200));
	h[4] = 1; /* a hash-based pyc is not a fresh timestamp pyc */
	CHECK(!pyc_header_is_fresh(&fmt311, h, 16, 1000, 200));
}

TEST(pyc_header_hash_checked_and_unchecked)
{
	static const unsigned char hash[PYC_HASH_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	static const unsigned char want[16] = { 0xa7, 0x0d, 0x0d, 0x0a, 3, 0, 0, 0,
						1, 2, 3, 4, 5, 6, 7, 8 };
	unsigned char h[PYC_HEADER_MAX];

	CHECK_INT(pyc_header_hash(&fmt311, h, PYC_KIND_CHECKED_HASH, hash), 16);
	CHECK_MEM(h, want, 16);
	CHECK_INT(pyc_header_hash(&fmt311, h, PYC_KIND_UNCHECKED_HASH, hash), 16);
	CHECK_INT(h[4], 1);
	CHECK_MEM(h + 8, hash, 8);
	/* a hash header is never a fresh timestamp header */
	CHECK(!pyc_header_is_fresh(&fmt311, h, 16, get_le32(h + 8), get_le32(h + 12)));
}

TEST(pyc_header_parse_timestamp_36_and_37)
{
	unsigned char h[PYC_HEADER_MAX];
	struct pyc_header ph;

	pyc_header_timestamp(&fmt36, h, 1000, 200);
	CHECK_INT(pyc_header_parse(&fmt36, h, 12, &ph), 0);
	CHECK_INT(ph.kind, PYC_KIND_TIMESTAMP);
	CHECK_INT(ph.flags, 0);
	CHECK_INT(ph.mtime32, 1000);
	CHECK_INT(ph.size32, 200);
	CHECK_INT(ph.len, 12);
	CHECK_MEM(ph.magic, fmt36.magic, 4);
	CHECK_INT(pyc_header_parse(&fmt36, h, 11, &ph), PYC_PARSE_SHORT);
	CHECK_INT(ph.len, 12);

	pyc_header_timestamp(&fmt311, h, 0xfffffffe, 0x100000005ULL);
	CHECK_INT(pyc_header_parse(&fmt311, h, 16, &ph), 0);
	CHECK_INT(ph.kind, PYC_KIND_TIMESTAMP);
	CHECK_INT(ph.mtime32, 0xfffffffeu);
	CHECK_INT(ph.size32, 5);
	CHECK_INT(ph.len, 16);
	CHECK_INT(pyc_header_parse(&fmt311, h, 15, &ph), PYC_PARSE_SHORT);
	CHECK_INT(pyc_header_parse(&fmt311, h, 0, &ph), PYC_PARSE_SHORT);
	/* the import system: "check source" without "hash" is a timestamp pyc */
	h[4] = PYC_FLAG_CHECK_SOURCE;
	CHECK_INT(pyc_header_parse(&fmt311, h, 16, &ph), 0);
	CHECK_INT(ph.kind, PYC_KIND_TIMESTAMP);
	CHECK_INT(ph.flags, 2);
	CHECK_INT(ph.mtime32, 0xfffffffeu);
}

TEST(pyc_header_parse_hash_and_bad_flags)
{
	static const unsigned char hash[PYC_HASH_LEN] = { 9, 8, 7, 6, 5, 4, 3, 2 };
	unsigned char h[PYC_HEADER_MAX + 4];
	struct pyc_header ph;

	pyc_header_hash(&fmt311, h, PYC_KIND_CHECKED_HASH, hash);
	CHECK_INT(pyc_header_parse(&fmt311, h, 20, &ph), 0);
	CHECK_INT(ph.kind, PYC_KIND_CHECKED_HASH);
	CHECK_INT(ph.flags, 3);
	CHECK_MEM(ph.hash, hash, 8);
	pyc_header_hash(&fmt311, h, PYC_KIND_UNCHECKED_HASH, hash);
	CHECK_INT(pyc_header_parse(&fmt311, h, 16, &ph), 0);
	CHECK_INT(ph.kind, PYC_KIND_UNCHECKED_HASH);
	CHECK_MEM(ph.hash, hash, 8);
	/* any bit above 0b11 is refused, whatever else is set */
	h[4] = 4;
	CHECK_INT(pyc_header_parse(&fmt311, h, 16, &ph), PYC_PARSE_BAD_FLAGS);
	CHECK_INT(ph.flags, 4);
	CHECK_MEM(ph.magic, fmt311.magic, 4);
	put_le32(h + 4, 0x80000003u);
	CHECK_INT(pyc_header_parse(&fmt311, h, 16, &ph), PYC_PARSE_BAD_FLAGS);
	CHECK_INT(ph.flags, 0x80000003u);
	/* a 3.6 header has no flags: those bytes are the mtime */
	CHECK_INT(pyc_header_parse(&fmt36, h, 16, &ph), 0);
	CHECK_INT(ph.kind, PYC_KIND_TIMESTAMP);
	CHECK_INT(ph.mtime32, 0x80000003u);
}

TEST(pyc_kind_names_and_magic)
{
	CHECK_STR(pyc_kind_name(PYC_KIND_TIMESTAMP), "timestamp");
	CHECK_STR(pyc_kind_name(PYC_KIND_UNCHECKED_HASH), "unchecked-hash");
	CHECK_STR(pyc_kind_name(PYC_KIND_CHECKED_HASH), "checked-hash");
	CHECK_STR(pyc_kind_name(2), "?");
	CHECK_INT(pyc_magic_number(fmt36.magic), 3379);
	CHECK_INT(pyc_magic_number(fmt311.magic), 3495);
	CHECK(pyc_has_magic(fmt311.magic, 4));
	CHECK(!pyc_has_magic(fmt311.magic, 3));
	CHECK(!pyc_has_magic((const unsigned char *)"\xa7\x0d\n\r", 4));
}

/* magic numbers lo..hi (the release's `own`) are Python 3.minor */
static void check_range(unsigned lo, unsigned own, unsigned hi, int minor, int pypy, int marshal,
			size_t hlen)
{
	const unsigned magics[] = { lo, own, hi };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(magics); i++) {
		const struct pyc_version *v = pyc_version_of_magic(magics[i]);

		CHECK(v != NULL);
		if (!v)
			continue;
		CHECK_INT(v->v.major, 3);
		CHECK_INT(v->v.minor, minor);
		CHECK_INT(v->v.pypy, pypy);
		CHECK_INT(v->marshal, marshal);
		CHECK_INT(v->header_len, hlen);
		CHECK_INT(v->magic_lo, lo);
		CHECK_INT(v->magic, own);
		CHECK_INT(v->magic_hi, hi);
		CHECK_INT(v->header_len, pyc_header_len(3, minor));
	}
}

TEST(pyc_version_of_magic_ranges)
{
	check_range(3360, 3379, 3379, 6, 0, 4, 12);
	check_range(3390, 3394, 3399, 7, 0, 4, 16);
	check_range(3400, 3413, 3419, 8, 0, 4, 16);
	check_range(3420, 3425, 3429, 9, 0, 4, 16);
	check_range(3430, 3439, 3449, 10, 0, 4, 16); /* 3440-3449 as PC/launcher.c */
	check_range(3450, 3495, 3499, 11, 0, 4, 16);
	check_range(3500, 3531, 3549, 12, 0, 4, 16);
	check_range(3550, 3571, 3599, 13, 0, 4, 16);
	check_range(3600, 3627, 3649, 14, 0, 5, 16);
	check_range(3650, 3666, 3699, 15, 0, 6, 16);
	check_range(336, 336, 336, 9, 1, 4, 16);
	check_range(352, 352, 352, 10, 1, 4, 16);
}

TEST(pyc_version_of_magic_refuses_the_unknown)
{
	/* 3.5, the gaps before 3.7 and 3.11 are not gaps, 3.16, 2.7, PyPy's others */
	CHECK(!pyc_version_of_magic(3351));
	CHECK(!pyc_version_of_magic(3359));
	CHECK(!pyc_version_of_magic(3380));
	CHECK(!pyc_version_of_magic(3389));
	CHECK(!pyc_version_of_magic(3700));
	CHECK(!pyc_version_of_magic(62211));
	CHECK(!pyc_version_of_magic(0));
	CHECK(!pyc_version_of_magic(335));
	CHECK(!pyc_version_of_magic(337));
	CHECK(!pyc_version_of_magic(351));
	CHECK(!pyc_version_of_magic(353));
}

TEST(pyc_version_facts)
{
	struct marshal_version v;

	CHECK_INT(pyc_header_len(3, 6), 12);
	CHECK_INT(pyc_header_len(3, 7), 16);
	CHECK_INT(pyc_header_len(3, 15), 16);
	v = pyc_marshal_version(3, 13, "cpython");
	CHECK(v.major == 3 && v.minor == 13 && !v.pypy);
	v = pyc_marshal_version(3, 10, "pypy");
	CHECK(v.major == 3 && v.minor == 10 && v.pypy);
	v = pyc_marshal_version(3, 9, NULL);
	CHECK(!v.pypy);
	CHECK(!pyc_strips_dot_slash(3, 11));
	CHECK(pyc_strips_dot_slash(3, 12));
	CHECK(pyc_strips_dot_slash(4, 0));
}

TEST(pyc_legacy_paths)
{
	char *p = pyc_legacy_path("a/b.py");

	CHECK_STR(p, "a/b.pyc");
	free(p);
	p = pyc_legacy_source("a/b.pyc");
	CHECK_STR(p, "a/b.py");
	free(p);
	p = pyc_legacy_source(".pyc");
	CHECK_STR(p, ".py");
	free(p);
	CHECK(!pyc_legacy_source("a/b.py"));
	CHECK(!pyc_legacy_source("pyc"));
}

TEST(pycache_name_parts)
{
	char *tag = NULL, *src = NULL;

	CHECK_INT(pycache_name_parts("d/__pycache__/m.cpython-311.pyc", &tag, &src), 0);
	CHECK_STR(tag, "cpython-311");
	CHECK_STR(src, "d/m.py");
	free(tag);
	free(src);
	CHECK_INT(pycache_name_parts("__pycache__/m.cpython-311.opt-2.pyc", &tag, &src), 0);
	CHECK_STR(tag, "cpython-311");
	CHECK_STR(src, "m.py");
	free(tag);
	free(src);
	CHECK_INT(pycache_name_parts("d/m.cpython-311.pyc", &tag, &src), -1);
	CHECK_INT(pycache_name_parts("d/__pycache__/m.pyc", &tag, &src), -1);
	CHECK_INT(pycache_name_parts("d/__pycache__/m.a.b.c.pyc", &tag, &src), -1);
}

static const struct pyc_layout plain = { "cpython-311", NULL, "/home/u", 0 };

static void check_path(const struct pyc_layout *l, const char *src, int opt, const char *want)
{
	char *got = pyc_cache_path(l, src, opt);
	CHECK_STR(got, want);
	free(got);
}

TEST(pyc_cache_path_plain)
{
	check_path(&plain, "a/b.py", 0, "a/__pycache__/b.cpython-311.pyc");
	check_path(&plain, "b.py", 0, "__pycache__/b.cpython-311.pyc");
	check_path(&plain, "/abs/b.py", 0, "/abs/__pycache__/b.cpython-311.pyc");
	check_path(&plain, "./b.py", 0, "./__pycache__/b.cpython-311.pyc");
	check_path(&plain, "a//b.py", 0, "a/__pycache__/b.cpython-311.pyc");
}

TEST(pyc_cache_path_odd_names)
{
	/* tail.rpartition('.'): the base, or the rest when the base is empty */
	check_path(&plain, "d/.py", 0, "d/__pycache__/py.cpython-311.pyc");
	check_path(&plain, "d/a.b.py", 0, "d/__pycache__/a.b.cpython-311.pyc");
	check_path(&plain, "d/with space.py", 0, "d/__pycache__/with space.cpython-311.pyc");
	/* importlib's quirks: '/x.py' has an empty head, '//x.py' a head of '/' */
	check_path(&plain, "/x.py", 0, "__pycache__/x.cpython-311.pyc");
	check_path(&plain, "//x.py", 0, "/__pycache__/x.cpython-311.pyc");
}

TEST(pyc_cache_path_optimization)
{
	check_path(&plain, "a/b.py", 1, "a/__pycache__/b.cpython-311.opt-1.pyc");
	check_path(&plain, "a/b.py", 2, "a/__pycache__/b.cpython-311.opt-2.pyc");
}

TEST(pyc_cache_path_prefix)
{
	struct pyc_layout l = { "cpython-38", "/cache/", "/home/u", 0 };

	check_path(&l, "/srv/app/m.py", 0, "/cache/srv/app/m.cpython-38.pyc");
	check_path(&l, "app/m.py", 0, "/cache/home/u/app/m.cpython-38.pyc");
	check_path(&l, "m.py", 0, "/cache/home/u/m.cpython-38.pyc");
	check_path(&l, "./app/m.py", 0, "/cache/home/u/./app/m.cpython-38.pyc");
	l.strip_dot_slash = 1; /* 3.12+ */
	l.cache_tag = "cpython-312";
	check_path(&l, "./app/m.py", 1, "/cache/home/u/app/m.cpython-312.opt-1.pyc");
	check_path(&l, "./m.py", 0, "/cache/home/u/./m.cpython-312.pyc");
}

TEST(pyc_mode)
{
	CHECK_INT(pyc_mode(0100644), 0644);
	CHECK_INT(pyc_mode(0100444), 0644);
	CHECK_INT(pyc_mode(0100755), 0644);
	CHECK_INT(pyc_mode(0104777), 0666);
}
