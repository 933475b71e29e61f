#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "harness.h"
#include "options.h"
#include "strbuf.h"
#include "tempfile.h"
#include "util.h"
#include "walk.h"
#include "parallel.h"

TEST(strbuf_grows_and_detaches)
{
	struct strbuf sb = STRBUF_INIT;
	size_t len, i;
	char *p;

	CHECK_STR(sb.buf, "");
	for (i = 0; i < 10000; i++)
		strbuf_addch(&sb, 'a' + (int)(i % 26));
	CHECK_INT(sb.len, 10000);
	CHECK_INT(sb.buf[10000], 0);
	p = strbuf_detach(&sb, &len);
	CHECK_INT(len, 10000);
	CHECK_INT(sb.len, 0);
	CHECK_STR(sb.buf, "");
	free(p);
}

TEST(strbuf_addf_and_remove_front)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_addf(&sb, "%s-%d", "abc", 42);
	CHECK_STR(sb.buf, "abc-42");
	strbuf_addf(&sb, "%0300d", 7); /* forces a second vsnprintf after growing */
	CHECK_INT(sb.len, 306);
	strbuf_remove_front(&sb, 4);
	CHECK_INT(sb.len, 302);
	CHECK_INT(sb.buf[0], '4');
	strbuf_reset(&sb);
	CHECK_STR(sb.buf, "");
	strbuf_release(&sb);
}

TEST(options_short_long_bundled)
{
	int quiet = 0, force = 0, jobs = -5;
	const char *py = NULL;
	struct option_list pys = { NULL, 0, 0 };
	const struct option opts[] = {
		OPT_COUNT('q', "quiet", &quiet, ""),
		OPT_FLAG('f', "force", &force, ""),
		OPT_INT('j', "jobs", &jobs, "N", ""),
		OPT_STRING('p', "prefix", &py, "P", ""),
		OPT_LIST(0, "python", &pys, "PATH", ""),
		OPT_END(),
	};
	const char *argv[] = { "a", "-qqf", "-j3", "b", "--python", "x", "--python=y",
			       "--prefix=/p", "--", "-c", NULL };

	CHECK_INT(parse_options(10, argv, opts), 3);
	CHECK_STR(argv[0], "a");
	CHECK_STR(argv[1], "b");
	CHECK_STR(argv[2], "-c");
	CHECK_INT(quiet, 2);
	CHECK_INT(force, 1);
	CHECK_INT(jobs, 3);
	CHECK_STR(py, "/p");
	CHECK_INT(pys.nr, 2);
	CHECK_STR(pys.v[0], "x");
	CHECK_STR(pys.v[1], "y");
	option_list_release(&pys);
}

TEST(options_errors)
{
	int jobs = 0, f = 0;
	const struct option opts[] = {
		OPT_INT('j', "jobs", &jobs, "N", ""),
		OPT_FLAG('f', "force", &f, ""),
		OPT_END(),
	};
	const char *a1[] = { "-x" }, *a2[] = { "-j" }, *a3[] = { "--jobs=many" },
		   *a4[] = { "--force=1" }, *a5[] = { "--nope" }, *a6[] = { "--help" };

	printf("  (the next lines of errors are expected)\n");
	CHECK_INT(parse_options(1, a1, opts), -1);
	CHECK_INT(parse_options(1, a2, opts), -1);
	CHECK_INT(parse_options(1, a3, opts), -1);
	CHECK_INT(parse_options(1, a4, opts), -1);
	CHECK_INT(parse_options(1, a5, opts), -1);
	CHECK_INT(parse_options(1, a6, opts), -2);
}

TEST(walk_is_py_name)
{
	CHECK(is_py_name("a.py"));
	CHECK(is_py_name(".py"));
	CHECK(!is_py_name("py"));
	CHECK(!is_py_name("a.pyw"));
	CHECK(!is_py_name("a.PY"));
	CHECK(!is_py_name("a.py.bak"));
}

/* The order must be total: qsort with an inconsistent comparator gives an order that depends on the input's. */
TEST(walk_path_cmp_is_compileall_order)
{
	/* in compileall's order: each directory before its contents, names compared as str */
	static const char *const sorted[] = {
		"t", "t/a", "t/a/z.py", "t/a.b", "t/a.b/y.py", "t/a.py", "t/dir.py", "t/dir.py/inner.py",
		"t/emptydir", "t/link.py", "t/sub", "t/sub/deeper", "t/sub/deeper/m.py", "t/sub/x.py",
		"t/\xc3\xa9.py", "t/\xe2\x82\xac.py", "t/\xff.py", "t/\xf0\x9f\x98\x80.py",
	};
	size_t n = sizeof(sorted) / sizeof(*sorted), i, j;

	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++) {
			int c = walk_path_cmp(sorted[i], sorted[j]);

			CHECK(i < j ? c < 0 : i > j ? c > 0 : c == 0);
		}
}

struct par_ctx {
	unsigned char seen[1000];
};

static void par_mark(void *ctx, size_t i)
{
	struct par_ctx *c = ctx;

	c->seen[i]++; /* distinct i: no race */
}

TEST(parallel_for_calls_each_item_once)
{
	static struct par_ctx c;
	size_t n, i;

	for (n = 0; n <= 1000; n += 333) {
		memset(&c, 0, sizeof(c));
		parallel_for(n, 4, par_mark, &c);
		for (i = 0; i < 1000; i++)
			CHECK_INT(c.seen[i], i < n ? 1 : 0);
	}
	CHECK_INT(parallel_threads(10, 256, 1), 1);
	CHECK(parallel_threads(1000, 256, 2) >= 1);
	CHECK(parallel_threads(1000, 256, 2) <= PARALLEL_MAX_THREADS);
}

/*
 * xrealloc_bulk(): a large new array is 2 MiB aligned and whole; a small
 * one, or one growing, is xrealloc()'s; every byte stays the caller's.
 */
TEST(bulk_arrays_are_aligned_and_grow)
{
	size_t big = ((size_t)3 << 20) + 5, i;
	unsigned char *p = xrealloc_bulk(NULL, big), *q;
	int *small = NULL;
	size_t nr = 0, alloc = 0;

	CHECK_INT((uintptr_t)p % ((uintptr_t)2 << 20), 0);
	memset(p, 0xab, big);
	p = xrealloc_bulk(p, big * 2); /* grown: a plain realloc, the bytes kept */
	for (i = 0; i < big; i += 4093)
		CHECK_INT(p[i], 0xab);
	free(p);
	q = xrealloc_bulk(NULL, 100);
	memset(q, 1, 100);
	free(q);
	for (i = 0; i < 100000; i++) {
		ALLOC_GROW_BULK(small, nr + 1, alloc);
		small[nr++] = (int)i;
	}
	CHECK_INT(small[99999], 99999);
	CHECK(alloc >= nr);
	free(small);
}

/*
 * tempfile.c: a missing directory is made once and known to be ours; an
 * existing one is swept of a dead run's temporary file at the first write.
 */
TEST(tempfile_directories_made_and_swept)
{
	char tmp[] = "/tmp/prepyc-unit-tempfile-XXXXXX";
	char *made, *old, *stray, *cmd;
	struct iovec iov = { (void *)"data", 4 };
	const char *what = "";
	struct stat st;
	int fd;

	CHECK(mkdtemp(tmp) != NULL);
	made = xstrfmt("%s/new/x.pyc", tmp);
	CHECK_INT(temp_dir_prepare(made), 1);
	CHECK_INT(temp_dir_prepare(made), 1); /* known now */
	CHECK(stat(made, &st) < 0 && errno == ENOENT);
	CHECK_INT(write_file_atomic(made, 0644, &iov, 1, &what), 0);
	CHECK(stat(made, &st) == 0 && st.st_size == 4);
	/* an existing directory, with what a killed run (PID long gone) left */
	old = xstrfmt("%s/old/y.pyc", tmp);
	stray = xstrfmt("%s/old/.prepyc-2147483646-1.tmp", tmp);
	CHECK(mkdirs_for(stray) == 0);
	fd = open(stray, O_WRONLY | O_CREAT | O_EXCL, 0644);
	CHECK(fd >= 0);
	close(fd);
	CHECK_INT(temp_dir_prepare(old), 0);
	CHECK_INT(write_file_atomic(old, 0644, &iov, 1, &what), 0);
	CHECK(stat(stray, &st) < 0 && errno == ENOENT);
	CHECK(stat(old, &st) == 0 && st.st_size == 4);
	/* a directory that cannot be made (a file is in the way): 0, and the write fails */
	free(made);
	made = xstrfmt("%s/old/y.pyc/z/w.pyc", tmp);
	CHECK_INT(temp_dir_prepare(made), 0);
	CHECK(write_file_atomic(made, 0644, &iov, 1, &what) < 0);
	CHECK_STR(what, "cannot create a temporary file for"); /* ENOTDIR */
	cmd = xstrfmt("rm -rf '%s'", tmp);
	CHECK(system(cmd) == 0);
	free(cmd);
	free(made);
	free(old);
	free(stray);
}
