/*
 * test-buildlog.c - the build log's file: what is recorded is found again
 * (and trusted only when old enough), and a log cut or damaged anywhere is
 * an empty log, never a crash (run it under the sanitizers).
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buildlog.h"
#include "cache-util.h"
#include "harness.h"
#include "strbuf.h"
#include "util.h"

#define SEC 1000000000LL

static void sample(struct buildlog_stat *st, uint64_t ino, int64_t ctime_ns)
{
	st->dev = 7;
	st->ino = ino;
	st->size = 100 + ino;
	st->mtime_ns = ctime_ns - 5;
	st->ctime_ns = ctime_ns;
}

/* A log of `n` entries /t/pN.pyc recorded by a run started at `start`. */
static void write_sample(const char *path, int n, int64_t start)
{
	struct buildlog *log = buildlog_open(path, start);
	unsigned char hdr[16] = "HDR-HDR-HDR-HDR";
	int i;

	for (i = 0; i < n; i++) {
		struct buildlog_stat src, pyc;
		char *name = xstrfmt("/t/p%d.pyc", i);

		sample(&src, (uint64_t)i, 10 * SEC);
		sample(&pyc, (uint64_t)(1000 + i), 10 * SEC + i);
		buildlog_record(log, name, &src, &pyc, hdr, 16, i % 2 ? BUILDLOG_BODY_OK : 0);
		free(name);
	}
	buildlog_close(log);
}

/* How many of the sample's entries a run finds trusted (it then rewrites the log: none recorded). */
static int count_found(const char *path, int n)
{
	struct buildlog *log = buildlog_open(path, 100 * SEC);
	int i, found = 0;

	for (i = 0; i < n; i++) {
		char *name = xstrfmt("/t/p%d.pyc", i);

		struct buildlog_entry e;

		found += buildlog_find(log, name, &e);
		free(name);
	}
	buildlog_close(log);
	return found;
}

TEST(buildlog_roundtrip_and_trust)
{
	char *tmp = make_tmpdir(), *path = xstrfmt("%s/buildlog/x", tmp);
	struct buildlog *log;
	struct buildlog_entry ent, *e = &ent;
	struct buildlog_stat st;

	write_sample(path, 50, 20 * SEC);
	log = buildlog_open(path, 100 * SEC);
	CHECK(buildlog_find(log, "/t/p3.pyc", e));
	sample(&st, 3, 10 * SEC);
	CHECK(buildlog_stat_equal(&e->src, &st));
	sample(&st, 1003, 10 * SEC + 3);
	CHECK(buildlog_stat_equal(&e->pyc, &st));
	CHECK_INT(e->flags, BUILDLOG_BODY_OK);
	CHECK_INT(e->hlen, 16);
	CHECK_MEM(e->hdr, "HDR-HDR-HDR-HDR", 16);
	CHECK(!buildlog_find(log, "/t/p50.pyc", e));
	CHECK(!buildlog_find(log, "/t/p3.py", e));
	buildlog_close(log);

	/* recorded by a run that started less than 2 s after the files changed: not trusted */
	write_sample(path, 50, 11 * SEC);
	CHECK_INT(count_found(path, 50), 0);
	remove_tree(tmp);
	free(path);
}

/*
 * A run that records some entries again as they were and one anew: the
 * log rewritten keeps the ones found again (copied from the loaded bytes)
 * whole, the new one as recorded, and drops the rest.
 */
TEST(buildlog_rewrite_keeps_entries_found_again)
{
	char *tmp = make_tmpdir(), *path = xstrfmt("%s/buildlog/x", tmp);
	unsigned char hdr[16] = "HDR-HDR-HDR-HDR", other[8] = "NEW-HDR";
	struct buildlog_entry e;
	struct buildlog_stat src, pyc;
	struct buildlog *log;
	int i;

	write_sample(path, 20, 20 * SEC);
	log = buildlog_open(path, 100 * SEC);
	for (i = 0; i < 10; i++) {
		char *name = xstrfmt("/t/p%d.pyc", i);

		CHECK(buildlog_find(log, name, &e));
		buildlog_record(log, name, &e.src, &e.pyc, e.hdr, e.hlen, e.flags);
		free(name);
	}
	sample(&src, 10, 50 * SEC);
	sample(&pyc, 1010, 50 * SEC);
	buildlog_record(log, "/t/p10.pyc", &src, &pyc, other, 8, 0);
	buildlog_close(log);

	log = buildlog_open(path, 200 * SEC);
	for (i = 0; i < 10; i++) {
		char *name = xstrfmt("/t/p%d.pyc", i);

		CHECK(buildlog_find(log, name, &e));
		sample(&src, (uint64_t)i, 10 * SEC);
		sample(&pyc, (uint64_t)(1000 + i), 10 * SEC + i);
		CHECK(buildlog_stat_equal(&e.src, &src) && buildlog_stat_equal(&e.pyc, &pyc));
		CHECK_INT(e.flags, i % 2 ? BUILDLOG_BODY_OK : 0);
		CHECK_INT(e.hlen, 16);
		CHECK_MEM(e.hdr, hdr, 16);
		free(name);
	}
	CHECK(buildlog_find(log, "/t/p10.pyc", &e));
	CHECK_INT(e.hlen, 8);
	CHECK_MEM(e.hdr, other, 8);
	CHECK(!buildlog_find(log, "/t/p11.pyc", &e));
	buildlog_close(log);
	remove_tree(tmp);
	free(path);
}

TEST(buildlog_unsafe_or_damaged_logs_are_empty)
{
	char *tmp = make_tmpdir(), *path = xstrfmt("%s/buildlog/x", tmp);
	struct strbuf whole = STRBUF_INIT;
	size_t cut, i;
	int fd;

	write_sample(path, 20, 20 * SEC);
	fd = open(path, O_RDONLY);
	CHECK(strbuf_read_fd(&whole, fd, 0) >= 0);
	close(fd);
	CHECK_INT(count_found(path, 20), 20);

	write_sample(path, 20, 20 * SEC);
	chmod(path, 0622); /* writable by others */
	CHECK_INT(count_found(path, 20), 0);
	write_sample(path, 20, 20 * SEC);
	CHECK_INT(count_found(path, 20), 20);

	for (cut = 0; cut < whole.len; cut += 7) {
		/* cut anywhere */
		fd = open(path, O_WRONLY | O_TRUNC | O_CREAT, 0600);
		CHECK_INT((int)write(fd, whole.buf, cut), (int)cut);
		close(fd);
		CHECK_INT(count_found(path, 20), 0);
	}
	for (i = 0; i < whole.len; i += 5) {
		/* one byte changed anywhere */
		whole.buf[i] ^= 0x21;
		fd = open(path, O_WRONLY | O_TRUNC | O_CREAT, 0600);
		CHECK_INT((int)write(fd, whole.buf, whole.len), (int)whole.len);
		close(fd);
		CHECK_INT(count_found(path, 20), 0);
		whole.buf[i] ^= 0x21;
	}
	strbuf_release(&whole);
	remove_tree(tmp);
	free(path);
}
