/*
 * test-bundle.c - `check BUNDLE` without Python: bundles written here with
 * libarchive's writer, a fake 3.11 target, and the verdicts of
 * bundle_verify() as the sources will arrive (zip: 2-second DOS times,
 * tar: exact, wheel: none), hostile names refused.  The archive tests are
 * empty when prepyc is built without libarchive.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "harness.h"
#include "pyc.h"
#include "siphash.h"
#include "util.h"
#include "walk.h"

#ifdef PREPYC_WITH_LIBARCHIVE
#include <archive.h>
#include <archive_entry.h>
#endif

TEST(bundle_names_and_args)
{
	enum bundle_kind k;
	const char *one[] = { "f.zip" }, *two[] = { "f.zip", "dir" }, *tree[] = { "dir" };

	CHECK(bundle_is_name("f.zip", &k) && k == BUNDLE_ZIP);
	CHECK(bundle_is_name("dist/p-1.0-py3-none-any.whl", &k) && k == BUNDLE_WHEEL);
	CHECK(bundle_is_name("layer.tar.zst", &k) && k == BUNDLE_TAR);
	CHECK(bundle_is_name("A.TGZ", &k) && k == BUNDLE_TAR);
	CHECK(!bundle_is_name("f.py", &k));
	CHECK(!bundle_is_name(".zip", &k));
	CHECK(!bundle_is_name("/", &k));
	CHECK_INT(bundle_args(1, one, NULL, NULL), 1);
	CHECK_INT(bundle_args(1, one, "python", NULL), 1);
	CHECK_INT(bundle_args(1, tree, NULL, NULL), 0);
	fprintf(stderr, "(four errors expected:)\n");
	CHECK_INT(bundle_args(2, two, NULL, NULL), -1);
	CHECK_INT(bundle_args(1, tree, "python", NULL), -1);
	CHECK_INT(bundle_args(1, one, NULL, "--import"), -1);
	CHECK_INT(bundle_args(0, one, "python", NULL), -1);
}

#ifdef PREPYC_WITH_LIBARCHIVE

/* `def f(a, b): return a + b`'s code as CPython 3.11 marshals it, canonical (test-engine.c). */
static const char code311_hex[] =
	"630100000000000000010000000200000013000000730c00000097007c007c017a0000005300"
	"29014e290029025a01615a0162730200000020207a083c737472696e673e5a01667a0f636f64"
	"652e3c6c6f63616c733e2e6604000000730a0000008000983198519933904a7300000000";

#define BASE 1767355200 /* 2026-01-02 12:00:00 UTC */

static const unsigned char MAGIC311[4] = { 0xa7, 0x0d, 0x0d, 0x0a };

static void fake_target(struct target *t)
{
	memset(t, 0, sizeof(*t));
	t->python = t->executable = "fakepython";
	t->version = "3.11.0";
	t->major = 3;
	t->minor = 11;
	t->implementation = "cpython";
	t->cache_tag = "cpython-311";
	t->recursion_limit = 1000;
	t->has_hash_pycs = 1;
	t->hash_kind = SOURCE_HASH_SIPHASH13;
	t->display = "FakePython 3.11";
	t->cwd = "/";
	memcpy(t->fmt.magic, MAGIC311, 4);
	t->fmt.header_len = 16;
	t->layout.cache_tag = t->cache_tag;
	t->layout.cwd = "/";
	t->layout.strip_dot_slash = 0;
}

struct member {
	const char *name;
	const void *data;
	size_t len;
	int64_t mtime;
	const char *symlink;
};

static void write_bundle(const char *path, int zip, const struct member *m, size_t n)
{
	struct archive *a = archive_write_new();
	size_t i;

	if (zip)
		archive_write_set_format_zip(a);
	else
		archive_write_set_format_pax_restricted(a);
	CHECK_INT(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();

		archive_entry_set_pathname(e, m[i].name);
		archive_entry_set_mtime(e, (time_t)m[i].mtime, 0);
		archive_entry_set_perm(e, 0644);
		if (m[i].symlink) {
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_symlink(e, m[i].symlink);
		} else {
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_size(e, (la_int64_t)m[i].len);
		}
		CHECK_INT(archive_write_header(a, e), ARCHIVE_OK);
		if (!m[i].symlink)
			CHECK(archive_write_data(a, m[i].data, m[i].len) == (la_ssize_t)m[i].len);
		archive_entry_free(e);
	}
	CHECK_INT(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

/* A pyc: a timestamp header (mtime, size) or, with `hash`, a checked-hash one; then the code. */
static size_t make_pyc(unsigned char *out, uint32_t mtime, uint32_t size, const unsigned char *hash)
{
	struct pyc_format fmt = { { 0xa7, 0x0d, 0x0d, 0x0a }, 16 };
	size_t n = hash ? pyc_header_hash(&fmt, out, PYC_KIND_CHECKED_HASH, hash)
			: pyc_header_timestamp(&fmt, out, mtime, size);
	size_t i, len = strlen(code311_hex) / 2;

	for (i = 0; i < len; i++) {
		unsigned v;

		sscanf(code311_hex + 2 * i, "%2x", &v);
		out[n + i] = (unsigned char)v;
	}
	return n + len;
}

/* The verdict on bundle member SOURCE's pyc; detail into `detail`. */
static enum pyc_status verdict(const char *path, int zip, const struct member *m, size_t n,
			       const char *source, char *detail, size_t dlen)
{
	struct bundle b = BUNDLE_INIT;
	struct source_list list = SOURCE_LIST_INIT;
	struct target t;
	enum pyc_status st = PYC_NSTATUS;
	size_t k;

	fake_target(&t);
	write_bundle(path, zip, m, n);
	CHECK_INT(bundle_load(&b, path, NULL, WALK_MAX_DEPTH, &t, 1, &list), 0);
	for (k = 0; k < list.nr; k++) {
		const struct source *s = &list.v[k];

		if (s->kind == ENTRY_SOURCE && !strcmp(s->path + strlen(path) + 1, source)) {
			char *pyc = pyc_cache_path(&t.layout, s->path, 0);

			st = bundle_verify(&b, &t, pyc, s, -1, detail, dlen);
			free(pyc);
		}
	}
	source_list_release(&list);
	bundle_release(&b);
	return st;
}

static char *tmp_path(const char *name)
{
	const char *dir = getenv("TMPDIR");

	return xstrfmt("%s/prepyc-unit-bundle-%ld-%s", dir && *dir ? dir : "/tmp", (long)getpid(),
		       name);
}

TEST(bundle_arrival_zip_tar_wheel)
{
	static const char src[] = "x = 1\n";
	unsigned char odd[256], even[256];
	size_t nodd = make_pyc(odd, BASE + 3, sizeof(src) - 1, NULL);
	size_t neven = make_pyc(even, BASE + 4, sizeof(src) - 1, NULL);
	struct member m[] = {
		{ "pkg/odd.py", src, sizeof(src) - 1, BASE + 3, NULL },
		{ "pkg/__pycache__/odd.cpython-311.pyc", odd, nodd, BASE + 5, NULL },
		{ "pkg/even.py", src, sizeof(src) - 1, BASE + 4, NULL },
		{ "pkg/__pycache__/even.cpython-311.pyc", even, neven, BASE + 5, NULL },
	};
	char *zip = tmp_path("a.zip"), *tar = tmp_path("a.tar"), *whl = tmp_path("a.whl");
	char detail[200];
	const char *tz = getenv("TZ");
	char *saved = tz ? xstrdup(tz) : NULL;

	setenv("TZ", "UTC", 1);
	tzset();
	CHECK_INT(verdict(tar, 0, m, 4, "pkg/odd.py", detail, sizeof(detail)), PYC_OK);
	CHECK_INT(verdict(tar, 0, m, 4, "pkg/even.py", detail, sizeof(detail)), PYC_OK);
	CHECK_INT(verdict(zip, 1, m, 4, "pkg/even.py", detail, sizeof(detail)), PYC_OK);
	CHECK_INT(verdict(zip, 1, m, 4, "pkg/odd.py", detail, sizeof(detail)),
		  PYC_STALE_ON_ARRIVAL);
	CHECK_STR(detail, "the zip stores 2026-01-02 12:00:02 UTC for a source compiled at "
		  "2026-01-02 12:00:03 UTC");
	CHECK_INT(verdict(whl, 1, m, 4, "pkg/even.py", detail, sizeof(detail)),
		  PYC_STALE_ON_ARRIVAL);
	/* stale before it was packed: not the bundle's doing */
	m[2].mtime = BASE + 100;
	CHECK_INT(verdict(tar, 0, m, 4, "pkg/even.py", detail, sizeof(detail)), PYC_STALE_MTIME);
	/* every member one time: a packer reset them */
	m[0].mtime = m[1].mtime = m[2].mtime = m[3].mtime = 315532800;
	CHECK_INT(verdict(tar, 0, m, 4, "pkg/even.py", detail, sizeof(detail)),
		  PYC_STALE_ON_ARRIVAL);
	CHECK(strstr(detail, "1980-01-01 00:00:00 UTC") && strstr(detail, "every file"));
	if (saved)
		setenv("TZ", saved, 1);
	else
		unsetenv("TZ");
	tzset();
	unlink(zip);
	unlink(tar);
	unlink(whl);
	free(saved);
	free(zip);
	free(tar);
	free(whl);
}

TEST(bundle_hash_pycs_and_links)
{
	static const char src[] = "x = 1\n", other[] = "x = 2\n";
	unsigned char hash[PYC_HASH_LEN], pyc[256];
	size_t n;
	struct member m[] = {
		{ "a.py", src, sizeof(src) - 1, BASE + 1, NULL },
		{ "__pycache__/a.cpython-311.pyc", pyc, 0, BASE + 7, NULL },
		{ "b.py", NULL, 0, BASE + 1, "a.py" },
		{ "__pycache__/b.cpython-311.pyc", NULL, 0, BASE + 1, "a.cpython-311.pyc" },
	};
	char *zip = tmp_path("h.zip"), *tar = tmp_path("h.tar");
	char detail[200];

	pyc_source_hash(SOURCE_HASH_SIPHASH13, MAGIC311, src, sizeof(src) - 1, hash);
	m[1].len = n = make_pyc(pyc, 0, 0, hash);
	CHECK_INT(verdict(zip, 1, m, 4, "a.py", detail, sizeof(detail)), PYC_OK);
	CHECK_INT(verdict(tar, 0, m, 4, "a.py", detail, sizeof(detail)), PYC_OK);
	/* links inside are their targets */
	CHECK_INT(verdict(tar, 0, m, 4, "b.py", detail, sizeof(detail)), PYC_OK);
	m[0].data = other;
	CHECK_INT(verdict(zip, 1, m, 4, "a.py", detail, sizeof(detail)), PYC_STALE_HASH);
	CHECK(n > 16);
	unlink(zip);
	unlink(tar);
	free(zip);
	free(tar);
}

TEST(bundle_refuses_hostile_names)
{
	static const char src[] = "x = 1\n";
	static const struct {
		struct member m;
		int zip;
	} cases[] = {
		{ { "/etc/evil.py", src, 6, BASE, NULL }, 0 },
		{ { "a/../../evil.py", src, 6, BASE, NULL }, 0 },
		{ { "../evil.py", src, 6, BASE, NULL }, 1 },
		{ { "a.py", NULL, 0, BASE, "/etc/passwd" }, 0 },
		{ { "d/a.py", NULL, 0, BASE, "../../x.py" }, 0 },
	};
	char *tar = tmp_path("bad.tar"), *zip = tmp_path("bad.zip");
	size_t i;

	fprintf(stderr, "(five errors expected:)\n");
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct bundle b = BUNDLE_INIT;
		struct source_list list = SOURCE_LIST_INIT;
		struct target t;

		fake_target(&t);
		write_bundle(cases[i].zip ? zip : tar, cases[i].zip, &cases[i].m, 1);
		CHECK_INT(bundle_load(&b, cases[i].zip ? zip : tar, NULL, WALK_MAX_DEPTH, &t, 1,
				      &list), -1);
		source_list_release(&list);
		bundle_release(&b);
	}
	unlink(tar);
	unlink(zip);
	free(tar);
	free(zip);
}

#else

TEST(bundle_arrival_zip_tar_wheel)
{
}

TEST(bundle_hash_pycs_and_links)
{
}

TEST(bundle_refuses_hostile_names)
{
}

#endif
