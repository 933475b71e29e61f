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
