/*
 * test-walklog.c - the walk log's file: a listing recorded is found again
 * for exactly the stat data it was recorded with (and only when old
 * enough); the directories found again are all a rewrite keeps; a log cut
 * or damaged anywhere is an empty log, never a crash (run it under the
 * sanitizers).
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache-util.h"
#include "harness.h"
#include "strbuf.h"
#include "util.h"
#include "walklog.h"

#define SEC 1000000000LL

static struct stat dir_stat(int i, int64_t ctime_ns)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_dev = 7;
	st.st_ino = (ino_t)(100 + i);
	st.st_size = 4096;
	st.st_mode = S_IFDIR | 0755;
	st.st_mtim.tv_sec = (time_t)(ctime_ns / SEC);
	st.st_ctim.tv_sec = (time_t)(ctime_ns / SEC);
	st.st_ctim.tv_nsec = (long)(ctime_ns % SEC);
	return st;
}

/* Directory i's names: i + 1 of them, "mJ.py" regular files, and a directory "sub". */
static void dir_names(int i, struct strbuf *sb, size_t *n)
{
	int j;

	strbuf_reset(sb);
	*n = 0;
	for (j = 0; j <= i; j++) {
		strbuf_addch(sb, 8 /* DT_REG */);
		strbuf_addf(sb, "m%d.py", j);
		strbuf_add(sb, "", 1);
		(*n)++;
	}
	strbuf_addch(sb, 4 /* DT_DIR */);
	strbuf_add(sb, "sub", 4);
	(*n)++;
}

/* A log of `n` directories /t/dI recorded by a walk started at `start`. */
static void write_sample(const char *path, int n, int64_t start)
{
	struct walklog *log = walklog_open(path);
	struct strbuf names = STRBUF_INIT;
	int i;

	for (i = 0; i < n; i++) {
		char *dir = xstrfmt("/t/d%d", i);
		struct stat st = dir_stat(i, 10 * SEC + i);
		size_t k;

		dir_names(i, &names, &k);
		walklog_record(log, dir, &st, (const unsigned char *)names.buf, names.len, k);
		free(dir);
	}
	walklog_close(log, start);
	strbuf_release(&names);
}

/* How many of the sample's directories a walk finds with their names (it finds the first `n`). */
static int count_found(const char *path, int n)
{
	struct walklog *log = walklog_open(path);
	struct strbuf names = STRBUF_INIT;
	int i, found = 0;

	for (i = 0; i < n; i++) {
		char *dir = xstrfmt("/t/d%d", i);
		struct stat st = dir_stat(i, 10 * SEC + i);
		struct walklog_dir wd;
		int got = walklog_find(log, dir, &st, &wd);
		size_t k;

		dir_names(i, &names, &k);
		if (got && wd.nnames == k && wd.len == names.len &&
		    !memcmp(wd.names, names.buf, names.len))
			found++;
		free(dir);
	}
	walklog_close(log, 100 * SEC);
	strbuf_release(&names);
	return found;
}

TEST(walklog_roundtrip_trust_and_rewrite)
{
	char *tmp = make_tmpdir(), *path = xstrfmt("%s/buildlog/walk-x", tmp);
	struct walklog *log;
	struct stat st, before, after;
	struct walklog_dir wd;

	write_sample(path, 30, 20 * SEC);
	log = walklog_open(path);
	st = dir_stat(3, 10 * SEC + 3);
	CHECK(walklog_find(log, "/t/d3", &st, &wd));
	CHECK(!walklog_find(log, "/t/d30", &st, &wd));
	st.st_ctim.tv_nsec++; /* changed since: listed again */
	CHECK(!walklog_find(log, "/t/d4", &st, &wd));
	st = dir_stat(5, 10 * SEC + 5);
	st.st_ino++; /* another directory at that path */
	CHECK(!walklog_find(log, "/t/d5", &st, &wd));
	walklog_close(log, 0); /* no start: never written */

	/* every directory found again, nothing new: the file is left alone */
	CHECK_INT(stat(path, &before), 0);
	CHECK_INT(count_found(path, 30), 30);
	CHECK_INT(stat(path, &after), 0);
	CHECK(before.st_ino == after.st_ino);
	/* a walk that met only 10 of them: the log keeps those 10 */
	CHECK_INT(count_found(path, 10), 10);
	CHECK_INT(count_found(path, 30), 10);

	/* recorded by a walk that started less than 2 s after the directories changed */
	write_sample(path, 30, 11 * SEC);
	CHECK_INT(count_found(path, 30), 0);
	remove_tree(tmp);
	free(path);
}

TEST(walklog_unsafe_or_damaged_logs_are_empty)
{
	char *tmp = make_tmpdir(), *path = xstrfmt("%s/buildlog/walk-x", tmp);
	struct strbuf whole = STRBUF_INIT;
	size_t cut, i;
	int fd;

	write_sample(path, 12, 20 * SEC);
	fd = open(path, O_RDONLY);
	CHECK(strbuf_read_fd(&whole, fd, 0) >= 0);
	close(fd);
	chmod(path, 0622); /* writable by others */
	CHECK_INT(count_found(path, 12), 0);
	chmod(path, 0600);
	CHECK_INT(count_found(path, 12), 12);
	for (cut = 0; cut < whole.len; cut += 7) {
		fd = open(path, O_WRONLY | O_TRUNC | O_CREAT, 0600);
		CHECK_INT((int)write(fd, whole.buf, cut), (int)cut);
		close(fd);
		CHECK_INT(count_found(path, 12), 0);
	}
	for (i = 0; i < whole.len; i += 5) {
		whole.buf[i] ^= 0x21;
		fd = open(path, O_WRONLY | O_TRUNC | O_CREAT, 0600);
		CHECK_INT((int)write(fd, whole.buf, whole.len), (int)whole.len);
		close(fd);
		CHECK_INT(count_found(path, 12), 0);
		whole.buf[i] ^= 0x21;
	}
	strbuf_release(&whole);
	remove_tree(tmp);
	free(path);
}
