/*
 * cache-util.h - what the bytecode cache's unit tests (test-cache.c,
 * test-cache-admin.c) share: temporary directories, keys and bodies of
 * known entries, the layout written down independently of store-disk.c,
 * and the ways an entry gets damaged.  Header-only (static inline), so
 * that each test file takes what it uses.
 */
#ifndef CACHE_UTIL_H
#define CACHE_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blake2b.h"
#include "cache-admin.h"
#include "cache-logs.h"
#include "cache-store.h"
#include "cache.h"
#include "cachedir.h"
#include "harness.h"
#include "strbuf.h"
#include "util.h"

#define HEADER 80

/* ---- helpers ---------------------------------------------------------- */

static inline char *make_tmpdir(void)
{
	char *t = xstrdup("/tmp/prepyc-unit-cache-XXXXXX");

	if (!mkdtemp(t))
		die("mkdtemp: %s", strerror(errno));
	return t;
}

static inline void remove_tree(char *dir)
{
	char *cmd = xstrfmt("chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", dir, dir);

	if (system(cmd) != 0)
		printf("  (could not remove %s)\n", dir);
	free(cmd);
	free(dir);
}

static inline int run_fmt(const char *fmt, const char *arg)
{
	char *cmd = xstrfmt(fmt, arg);
	int rc = system(cmd);

	free(cmd);
	return rc;
}

static inline void make_key(unsigned char key[CACHE_KEY_LEN], int n)
{
	char s[32];

	snprintf(s, sizeof(s), "key %d", n);
	blake2b(key, CACHE_KEY_LEN, s, strlen(s));
}

/* The layout, written down independently of cache.c: DIR/v1/ab/cdef... */
static inline char *path_of(const char *dir, const unsigned char *key)
{
	struct strbuf sb = STRBUF_INIT;
	int i;

	strbuf_addf(&sb, "%s/v1/%02x/", dir, key[0]);
	for (i = 1; i < CACHE_KEY_LEN; i++)
		strbuf_addf(&sb, "%02x", key[i]);
	return strbuf_detach(&sb, NULL);
}

/* Contents of a put for key n: a code and warnings of lengths that vary. */
static inline void body_of(int n, struct strbuf *code, struct strbuf *warn)
{
	int i;

	strbuf_reset(code);
	strbuf_reset(warn);
	for (i = 0; i < 200 + n * 37 % 900; i++)
		strbuf_addch(code, (char)(i * 31 + n));
	if (n % 3)
		strbuf_addf(warn, "w.py:%d: SyntaxWarning: number %d", n, n);
}

static inline void put_n(struct cache *c, int n)
{
	struct strbuf code = STRBUF_INIT, warn = STRBUF_INIT;
	unsigned char key[CACHE_KEY_LEN];

	make_key(key, n);
	body_of(n, &code, &warn);
	cache_put(c, key, code.buf, code.len, warn.buf, warn.len);
	strbuf_release(&code);
	strbuf_release(&warn);
}

/* 1 when key n hits with exactly its contents. */
static inline int get_n(struct cache *c, int n)
{
	struct strbuf code = STRBUF_INIT, warn = STRBUF_INIT, want = STRBUF_INIT,
		      wwant = STRBUF_INIT;
	unsigned char key[CACHE_KEY_LEN];
	int ok;

	make_key(key, n);
	body_of(n, &want, &wwant);
	ok = cache_get(c, key, &code, &warn) == 1 && code.len == want.len &&
	     !memcmp(code.buf, want.buf, want.len) && warn.len == wwant.len &&
	     !memcmp(warn.buf, wwant.buf, wwant.len);
	strbuf_release(&code);
	strbuf_release(&warn);
	strbuf_release(&want);
	strbuf_release(&wwant);
	return ok;
}

static inline int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static inline void read_file(const char *path, struct strbuf *sb)
{
	int fd = open(path, O_RDONLY);

	strbuf_reset(sb);
	if (fd >= 0) {
		strbuf_read_fd(sb, fd, 0);
		close(fd);
	}
}

static inline void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write_in_full(fd, data, len) < 0)
		printf("  cannot write %s\n", path);
	if (fd >= 0)
		close(fd);
}

static inline void set_mtime(const char *path, time_t t)
{
	struct timespec ts[2] = { { t, 0 }, { t, 0 } };

	if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0)
		printf("  utimensat %s: %s\n", path, strerror(errno));
}

static inline time_t mtime_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_mtime : (time_t)-1;
}

/* Silence stderr around calls that are meant to warn; returns the saved fd. */
static inline int stderr_off(void)
{
	int saved = dup(2), null = open("/dev/null", O_WRONLY);

	fflush(stderr);
	dup2(null, 2);
	close(null);
	return saved;
}

static inline void stderr_on(int saved)
{
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
}

/* Total size of the entries (names not starting with '.') under DIR/v1. */
static inline uint64_t entries_size(const char *dir, size_t *count)
{
	uint64_t total = 0;
	int i;

	*count = 0;
	for (i = 0; i < 256; i++) {
		char *sub = xstrfmt("%s/v1/%02x", dir, i);
		DIR *d = opendir(sub);
		struct dirent *de;

		while (d && (de = readdir(d))) {
			char *p = xstrfmt("%s/%s", sub, de->d_name);
			struct stat st;

			if (de->d_name[0] != '.' && lstat(p, &st) == 0) {
				total += (uint64_t)st.st_size;
				(*count)++;
			}
			free(p);
		}
		if (d)
			closedir(d);
		free(sub);
	}
	return total;
}

enum damage { TRUNCATED, FLIP_CODE, FLIP_WARNINGS, FLIP_SUM, FLIP_LENGTH, BAD_MAGIC,
	      BAD_VERSION, BAD_FLAGS, OTHER_KEY, EMPTY, TRAILING, SYMLINK, DIRECTORY, NDAMAGE };

static inline void damage(const char *dir, const unsigned char *key, enum damage how)
{
	struct strbuf sb = STRBUF_INIT;
	unsigned char okey[CACHE_KEY_LEN];
	char *path = path_of(dir, key), *opath;

	read_file(path, &sb);
	switch (how) {
	case TRUNCATED:
		strbuf_setlen(&sb, sb.len - 1);
		break;
	case FLIP_CODE:
		sb.buf[HEADER + 3] ^= 1;
		break;
	case FLIP_WARNINGS:
		sb.buf[sb.len - 1] ^= 0x40;
		break;
	case FLIP_SUM:
		sb.buf[70] ^= 1;
		break;
	case FLIP_LENGTH: /* code one shorter, warnings one longer: sizes still add up */
		sb.buf[48]--;
		sb.buf[56]++;
		break;
	case BAD_MAGIC:
		sb.buf[0] = 'p';
		break;
	case BAD_VERSION:
		sb.buf[8] = 2;
		break;
	case BAD_FLAGS:
		sb.buf[12] = 1;
		break;
	case TRAILING:
		strbuf_addch(&sb, 0);
		break;
	case EMPTY:
		strbuf_reset(&sb);
		break;
	case OTHER_KEY:
		make_key(okey, 99);
		opath = path_of(dir, okey);
		if (rename(opath, path) < 0)
			printf("  rename: %s\n", strerror(errno));
		free(opath);
		goto out;
	case SYMLINK:
		make_key(okey, 99);
		opath = path_of(dir, okey);
		unlink(path);
		if (symlink(opath, path) < 0)
			printf("  symlink: %s\n", strerror(errno));
		free(opath);
		goto out;
	case DIRECTORY:
		unlink(path);
		mkdir(path, 0755);
		goto out;
	default:
		break;
	}
	write_file(path, sb.buf, sb.len);
out:
	strbuf_release(&sb);
	free(path);
}

#endif
