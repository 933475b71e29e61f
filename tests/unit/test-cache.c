#define _POSIX_C_SOURCE 200809L
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
#include "cache-store.h"
#include "cache.h"
#include "cachedir.h"
#include "harness.h"
#include "strbuf.h"
#include "util.h"

#define HEADER 80

/* ---- helpers ---------------------------------------------------------- */

static char *make_tmpdir(void)
{
	char *t = xstrdup("/tmp/prepyc-unit-cache-XXXXXX");

	if (!mkdtemp(t))
		die("mkdtemp: %s", strerror(errno));
	return t;
}

static void remove_tree(char *dir)
{
	char *cmd = xstrfmt("chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", dir, dir);

	if (system(cmd) != 0)
		printf("  (could not remove %s)\n", dir);
	free(cmd);
	free(dir);
}

static int run_fmt(const char *fmt, const char *arg)
{
	char *cmd = xstrfmt(fmt, arg);
	int rc = system(cmd);

	free(cmd);
	return rc;
}

static void make_key(unsigned char key[CACHE_KEY_LEN], int n)
{
	char s[32];

	snprintf(s, sizeof(s), "key %d", n);
	blake2b(key, CACHE_KEY_LEN, s, strlen(s));
}

/* The layout, written down independently of cache.c: DIR/v1/ab/cdef... */
static char *path_of(const char *dir, const unsigned char *key)
{
	struct strbuf sb = STRBUF_INIT;
	int i;

	strbuf_addf(&sb, "%s/v1/%02x/", dir, key[0]);
	for (i = 1; i < CACHE_KEY_LEN; i++)
		strbuf_addf(&sb, "%02x", key[i]);
	return strbuf_detach(&sb, NULL);
}

/* Contents of a put for key n: a code and warnings of lengths that vary. */
static void body_of(int n, struct strbuf *code, struct strbuf *warn)
{
	int i;

	strbuf_reset(code);
	strbuf_reset(warn);
	for (i = 0; i < 200 + n * 37 % 900; i++)
		strbuf_addch(code, (char)(i * 31 + n));
	if (n % 3)
		strbuf_addf(warn, "w.py:%d: SyntaxWarning: number %d", n, n);
}

static void put_n(struct cache *c, int n)
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
static int get_n(struct cache *c, int n)
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

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static void read_file(const char *path, struct strbuf *sb)
{
	int fd = open(path, O_RDONLY);

	strbuf_reset(sb);
	if (fd >= 0) {
		strbuf_read_fd(sb, fd, 0);
		close(fd);
	}
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write_in_full(fd, data, len) < 0)
		printf("  cannot write %s\n", path);
	if (fd >= 0)
		close(fd);
}

static void set_mtime(const char *path, time_t t)
{
	struct timespec ts[2] = { { t, 0 }, { t, 0 } };

	if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0)
		printf("  utimensat %s: %s\n", path, strerror(errno));
}

static time_t mtime_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_mtime : (time_t)-1;
}

/* Silence stderr around calls that are meant to warn; returns the saved fd. */
static int stderr_off(void)
{
	int saved = dup(2), null = open("/dev/null", O_WRONLY);

	fflush(stderr);
	dup2(null, 2);
	close(null);
	return saved;
}

static void stderr_on(int saved)
{
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
}

/* Total size of the entries (names not starting with '.') under DIR/v1. */
static uint64_t entries_size(const char *dir, size_t *count)
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

/* ---- tests ------------------------------------------------------------ */

TEST(cache_put_then_get)
{
	char *tmp = make_tmpdir(), *dir = xstrfmt("%s/a/b/cache", tmp), *path, *tag;
	struct strbuf code = STRBUF_INIT, warn = STRBUF_INIT, file = STRBUF_INIT;
	unsigned char key[CACHE_KEY_LEN], other[CACHE_KEY_LEN];
	size_t hits, misses, stored;
	struct cache *c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
	struct stat st;

	CHECK(c != NULL);
	tag = xstrfmt("%s/CACHEDIR.TAG", dir);
	read_file(tag, &file);
	CHECK(!strncmp(file.buf, "Signature: 8a477f597d28d172789f06886806bc55\n", 44));
	make_key(key, 1);
	make_key(other, 2);
	cache_put(c, key, "CODE\0bytes", 10, "warn", 4);
	path = path_of(dir, key);
	CHECK(stat(path, &st) == 0 && st.st_size == HEADER + 14);
	read_file(path, &file);
	CHECK_MEM(file.buf, "PREPYC\x1a\n\1\0\0\0\0\0\0\0", 16);
	CHECK_MEM(file.buf + 16, key, CACHE_KEY_LEN);
	CHECK_MEM(file.buf + HEADER, "CODE\0bytesw", 11);

	/* appended to what the buffers hold */
	strbuf_addstr(&code, "x");
	strbuf_addstr(&warn, "y");
	CHECK_INT(cache_get(c, key, &code, &warn), 1);
	CHECK_INT(code.len, 11);
	CHECK_MEM(code.buf, "xCODE\0bytes", 11);
	CHECK_STR(warn.buf, "ywarn");
	CHECK_INT(cache_get(c, other, &code, &warn), 0);
	CHECK_INT(code.len, 11);
	CHECK_STR(warn.buf, "ywarn");

	/* empty parts */
	cache_put(c, other, "", 0, "", 0);
	strbuf_reset(&code);
	strbuf_reset(&warn);
	CHECK_INT(cache_get(c, other, &code, &warn), 1);
	CHECK_INT(code.len + warn.len, 0);

	cache_counts(c, &hits, &misses, &stored);
	CHECK_INT(hits, 2);
	CHECK_INT(misses, 1);
	CHECK_INT(stored, 2);
	cache_close(c, "CPython 3.11.7");

	/* the run's line */
	free(path);
	path = xstrfmt("%s/stats", dir);
	read_file(path, &file);
	CHECK(strstr(file.buf, " CPython 3.11.7 hits=2 misses=1 stored=2 stored_bytes=174 evicted=0 "
			       "max_size=1073741824\n") != NULL);
	CHECK(file.buf[0] >= '1' && file.buf[0] <= '9');
	/* a run that looked nothing up adds no line */
	c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
	cache_close(c, "CPython 3.11.7");
	read_file(path, &file);
	CHECK(strchr(file.buf, '\n') == file.buf + file.len - 1);

	cache_close(NULL, "x");
	strbuf_release(&code);
	strbuf_release(&warn);
	strbuf_release(&file);
	free(path);
	free(tag);
	free(dir);
	remove_tree(tmp);
}

TEST(cache_stats_file_is_trimmed)
{
	char *tmp = make_tmpdir(), *dir = xstrfmt("%s/c", tmp), *stats = xstrfmt("%s/c/stats", tmp);
	struct strbuf sb = STRBUF_INIT;
	struct cache *c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
	int i;

	for (i = 0; sb.len <= 256 * 1024; i++)
		strbuf_addf(&sb, "%d CPython 3.%d hits=%d misses=1 stored=0 stored_bytes=0 evicted=0\n",
			    1700000000 + i, i % 14, i);
	write_file(stats, sb.buf, sb.len);
	put_n(c, 1);
	CHECK(get_n(c, 1));
	cache_close(c, "bad\nlabel");
	read_file(stats, &sb);
	CHECK(sb.len > 60 * 1024 && sb.len <= 64 * 1024 + 200);
	CHECK(!strncmp(sb.buf, "17", 2)); /* whole lines only */
	CHECK(strstr(sb.buf, " bad?label hits=1 misses=0 stored=1 ") != NULL);
	CHECK(sb.buf[sb.len - 1] == '\n');
	strbuf_release(&sb);
	free(stats);
	free(dir);
	remove_tree(tmp);
}

enum damage { TRUNCATED, FLIP_CODE, FLIP_WARNINGS, FLIP_SUM, FLIP_LENGTH, BAD_MAGIC,
	      BAD_VERSION, BAD_FLAGS, OTHER_KEY, EMPTY, TRAILING, SYMLINK, DIRECTORY, NDAMAGE };

static void damage(const char *dir, const unsigned char *key, enum damage how)
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

TEST(cache_damaged_entries_are_misses_and_removed)
{
	char *tmp = make_tmpdir(), *dir = xstrfmt("%s/c", tmp);
	struct cache *c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
	struct strbuf code = STRBUF_INIT, warn = STRBUF_INIT;
	unsigned char key[CACHE_KEY_LEN];
	int how;

	make_key(key, 1);
	for (how = 0; how < NDAMAGE; how++) {
		char *path = path_of(dir, key);

		put_n(c, 1);
		put_n(c, 99);
		CHECK(get_n(c, 1));
		damage(dir, key, (enum damage)how);
		strbuf_addstr(&code, "kept");
		CHECK_INT(cache_get(c, key, &code, &warn), 0);
		CHECK_STR(code.buf, "kept");
		CHECK_INT(warn.len, 0);
		if (how == DIRECTORY) {
			CHECK(exists(path)); /* not ours to remove */
			rmdir(path);
		} else if (exists(path)) {
			printf("  damage %d: entry not removed\n", how);
			CHECK(0);
		}
		/* and it can be stored again */
		put_n(c, 1);
		CHECK(get_n(c, 1));
		unlink(path);
		strbuf_reset(&code);
		free(path);
	}
	cache_close(c, "t");
	strbuf_release(&code);
	strbuf_release(&warn);
	free(dir);
	remove_tree(tmp);
}

TEST(cache_put_leaves_an_existing_entry_alone)
{
	char *tmp = make_tmpdir(), *dir = xstrfmt("%s/c", tmp), *path;
	struct cache *c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
	struct strbuf code = STRBUF_INIT, warn = STRBUF_INIT;
	unsigned char key[CACHE_KEY_LEN];
	struct stat a, b;
	size_t hits, misses, stored;

	make_key(key, 5);
	path = path_of(dir, key);
	cache_put(c, key, "first", 5, "", 0);
	CHECK(stat(path, &a) == 0);
	set_mtime(path, a.st_mtime - 100);
	cache_put(c, key, "second", 6, "", 0);
	CHECK(stat(path, &b) == 0);
	CHECK(a.st_ino == b.st_ino);
	CHECK(b.st_mtime == a.st_mtime - 100);
	CHECK_INT(cache_get(c, key, &code, &warn), 1);
	CHECK_STR(code.buf, "first");
	cache_counts(c, &hits, &misses, &stored);
	CHECK_INT(stored, 1);
	/* a hit on a recent entry does not touch it; on an old one, it does */
	CHECK(mtime_of(path) == a.st_mtime - 100);
	set_mtime(path, a.st_mtime - 7200);
	strbuf_reset(&code);
	CHECK_INT(cache_get(c, key, &code, &warn), 1);
	CHECK(mtime_of(path) >= a.st_mtime);
	cache_close(c, "t");
	strbuf_release(&code);
	strbuf_release(&warn);
	free(path);
	free(dir);
	remove_tree(tmp);
}

/* The read-only part, in a process that cannot write `dir`; returns the failures. */
static int read_only_checks(const char *dir)
{
	char *stats = xstrfmt("%s/stats", dir), *damaged;
	unsigned char key[CACHE_KEY_LEN];
	struct strbuf before = STRBUF_INIT, after = STRBUF_INIT;
	size_t hits, misses, stored, n;
	struct cache *c;
	int saved, failures = harness_failures;

	read_file(stats, &before);
	saved = stderr_off();
	c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
	stderr_on(saved);
	CHECK(c != NULL);
	CHECK(get_n(c, 1));
	CHECK(get_n(c, 2));
	make_key(key, 3);
	damaged = path_of(dir, key);
	CHECK(!get_n(c, 3));
	CHECK(exists(damaged)); /* cannot be removed: still a miss, no crash */
	saved = stderr_off();
	put_n(c, 4);
	put_n(c, 5);
	stderr_on(saved);
	CHECK(!get_n(c, 4));
	cache_counts(c, &hits, &misses, &stored);
	CHECK_INT(hits, 2);
	CHECK_INT(stored, 0);
	cache_close(c, "ro");
	read_file(stats, &after);
	CHECK(before.len == after.len);
	entries_size(dir, &n);
	CHECK_INT(n, 3);
	strbuf_release(&before);
	strbuf_release(&after);
	free(stats);
	free(damaged);
	return harness_failures - failures;
}

TEST(cache_read_only_directory_still_hits)
{
	char *tmp = make_tmpdir(), *dir = xstrfmt("%s/c", tmp), *blocked, *probe;
	unsigned char key[CACHE_KEY_LEN];
	struct cache *c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
	int saved, fd;

	put_n(c, 1);
	put_n(c, 2);
	put_n(c, 3);
	CHECK(get_n(c, 1));
	cache_close(c, "rw");
	make_key(key, 3);
	damage(dir, key, FLIP_CODE);

	if (geteuid() != 0) {
		/* chmod stops an ordinary user */
		if (run_fmt("chmod -R a-w '%s'", dir) != 0)
			CHECK(0);
		probe = xstrfmt("%s/v1/probe", dir);
		fd = open(probe, O_WRONLY | O_CREAT, 0644);
		if (fd >= 0) {
			printf("  (chmod does not stop writes here: skipped)\n");
			close(fd);
		} else {
			read_only_checks(dir);
		}
		free(probe);
	} else {
		/* root ignores modes: check as nobody, in a child, with the tree not theirs */
		pid_t pid;
		int status;

		if (chmod(tmp, 0755) < 0 || run_fmt("chmod -R a+rX,go-w '%s'", dir) != 0)
			CHECK(0);
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			if (setgid(65534) < 0 || setuid(65534) < 0)
				_exit(100);
			if (access(dir, W_OK) == 0)
				_exit(101);
			status = read_only_checks(dir);
			fflush(stdout);
			free(dir); /* the parent's copies: a leak checker follows the child too */
			free(tmp);
			_exit(status ? 1 : 0);
		}
		CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
		if (WIFEXITED(status) && WEXITSTATUS(status) >= 100)
			printf("  (cannot drop privileges here: skipped)\n");
		else
			CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}

	/* a cache directory that cannot even be created: NULL, and NULL is usable */
	blocked = xstrfmt("%s/file", tmp);
	write_file(blocked, "x", 1);
	free(dir);
	dir = xstrfmt("%s/cache", blocked);
	saved = stderr_off();
	c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
	stderr_on(saved);
	CHECK(c == NULL);
	CHECK(!get_n(c, 1));
	put_n(c, 1);
	cache_close(c, "none");
	free(blocked);
	free(dir);
	remove_tree(tmp);
}

/* Entries of one size (80 + 1000 bytes) for the eviction test. */
static void put_fixed(struct cache *c, int n)
{
	unsigned char key[CACHE_KEY_LEN];
	char code[1000];

	make_key(key, n);
	memset(code, n, sizeof(code));
	cache_put(c, key, code, sizeof(code), "", 0);
}

static int hit(struct cache *c, int n)
{
	struct strbuf code = STRBUF_INIT, warn = STRBUF_INIT;
	unsigned char key[CACHE_KEY_LEN];
	int r;

	make_key(key, n);
	r = cache_get(c, key, &code, &warn);
	strbuf_release(&code);
	strbuf_release(&warn);
	return r;
}

static char *beside(const char *path, const char *name)
{
	return xstrfmt("%.*s%s", (int)(strrchr(path, '/') - path + 1), path, name);
}

TEST(cache_eviction_keeps_recently_used)
{
	char *tmp = make_tmpdir(), *dir = xstrfmt("%s/c", tmp), *path, *stats;
	char *old_tmp, *new_tmp, *mine, *mine2;
	const uint64_t one = 1080, max = 10 * one;
	unsigned char key[CACHE_KEY_LEN];
	struct strbuf sb = STRBUF_INIT;
	time_t now = time(NULL);
	struct cache *c;
	uint64_t total;
	size_t n;
	int i;

	c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
	for (i = 0; i < 20; i++)
		put_fixed(c, i);
	cache_close(c, "setup");
	CHECK(entries_size(dir, &n) == 20 * one);
	/* entry i was last used at now - 100000 + 10 i */
	for (i = 0; i < 20; i++) {
		make_key(key, i);
		path = path_of(dir, key);
		set_mtime(path, now - 100000 + 10 * i);
		free(path);
	}
	/* strays: an old temporary file goes, a young one stays; a user's files stay */
	make_key(key, 0);
	path = path_of(dir, key);
	old_tmp = beside(path, ".prepyc-1-1.tmp");
	new_tmp = beside(path, ".prepyc-1-2.tmp");
	mine = beside(path, "README");
	mine2 = xstrfmt("%s/v1/notes.txt", dir);
	write_file(old_tmp, "t", 1);
	write_file(new_tmp, "t", 1);
	write_file(mine, "m", 1);
	write_file(mine2, "m", 1);
	set_mtime(old_tmp, now - 7200);
	set_mtime(mine, now - 1000000);
	free(path);

	/*
	 * Bounded to 10 entries: use the five oldest (they become the most
	 * recent) and store one; close evicts down to 90%, 9 entries: those
	 * six and the three most recent of the others (17, 18, 19).
	 */
	c = cache_open(dir, max);
	for (i = 0; i < 5; i++)
		CHECK(hit(c, i));
	put_fixed(c, 1000);
	cache_close(c, "CPython 3.12.1");

	total = entries_size(dir, &n);
	CHECK_INT(n, 9 + 1); /* and the README */
	CHECK(total - 1 <= max - max / 10);
	for (i = 0; i < 20; i++) {
		int keep = i < 5 || i >= 17;

		make_key(key, i);
		path = path_of(dir, key);
		if (exists(path) != keep) {
			printf("  entry %d: %s\n", i, keep ? "evicted" : "kept");
			CHECK(0);
		}
		free(path);
	}
	make_key(key, 1000);
	path = path_of(dir, key);
	CHECK(exists(path));
	free(path);
	CHECK(!exists(old_tmp));
	CHECK(exists(new_tmp));
	CHECK(exists(mine));
	CHECK(exists(mine2));
	stats = xstrfmt("%s/stats", dir);
	read_file(stats, &sb);
	CHECK(strstr(sb.buf, " CPython 3.12.1 hits=5 misses=0 stored=1 stored_bytes=1080 "
			     "evicted=12 max_size=10800\n") != NULL);

	/* a run that stored nothing does not scan, even over the bound */
	c = cache_open(dir, 1);
	CHECK(hit(c, 0));
	cache_close(c, "t");
	entries_size(dir, &n);
	CHECK_INT(n, 10);

	strbuf_release(&sb);
	free(stats);
	free(old_tmp);
	free(new_tmp);
	free(mine);
	free(mine2);
	free(dir);
	remove_tree(tmp);
}

TEST(cache_parse_size_cases)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{ "0", 0 },
		{ "1073741824", 1073741824 },
		{ "1G", 1 << 30 },
		{ "1g", 1 << 30 },
		{ "1GiB", 1 << 30 },
		{ "1gib", 1 << 30 },
		{ "1GB", 1 << 30 },
		{ "500M", (uint64_t)500 << 20 },
		{ "64k", 64 << 10 },
		{ "64KiB", 64 << 10 },
		{ "2T", (uint64_t)2 << 40 },
		{ "100b", 100 },
		{ "100B", 100 },
		{ "15E", (uint64_t)15 << 60 },
		{ "18446744073709551615", UINT64_MAX },
	};
	static const char *const bad[] = {
		"", "-1", "+1", " 1", "1 ", "1.5G", "G", "1X", "1GG", "1Gi", "1iB", "1KBB", "0x10",
		"lots", "18446744073709551616", "16E", "17179869184G", "1e6",
	};
	uint64_t v;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(good); i++) {
		v = 12345;
		if (cache_parse_size(good[i].s, &v) < 0 || v != good[i].v) {
			printf("  '%s' -> %llu\n", good[i].s, (unsigned long long)v);
			CHECK(0);
		}
	}
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		v = 12345;
		if (cache_parse_size(bad[i], &v) == 0 || v != 12345) {
			printf("  '%s' accepted\n", bad[i]);
			CHECK(0);
		}
	}
}

TEST(cache_dir_resolve_order)
{
	const char *names[] = { "PREPYC_CACHE_DIR", "XDG_CACHE_HOME", "HOME" };
	char *saved[3], *d;
	size_t i;

	for (i = 0; i < 3; i++) {
		const char *v = getenv(names[i]);
		saved[i] = v ? xstrdup(v) : NULL;
	}
	setenv("PREPYC_CACHE_DIR", "/p", 1);
	setenv("XDG_CACHE_HOME", "/x", 1);
	setenv("HOME", "/h", 1);
	CHECK_STR(d = cache_dir_resolve("/opt"), "/opt");
	free(d);
	CHECK_STR(d = cache_dir_resolve(NULL), "/p");
	free(d);
	setenv("PREPYC_CACHE_DIR", "", 1);
	CHECK_STR(d = cache_dir_resolve(NULL), "/x/prepyc");
	free(d);
	setenv("XDG_CACHE_HOME", "relative", 1);
	CHECK_STR(d = cache_dir_resolve(NULL), "/h/.cache/prepyc");
	free(d);
	unsetenv("XDG_CACHE_HOME");
	unsetenv("HOME");
	CHECK(cache_dir_resolve(NULL) == NULL);
	for (i = 0; i < 3; i++) {
		if (saved[i])
			setenv(names[i], saved[i], 1);
		else
			unsetenv(names[i]);
		free(saved[i]);
	}
}

struct racer {
	struct cache *c;
	int seed, bad;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	int round, i;

	for (round = 0; round < 20; round++) {
		for (i = 0; i < 64; i++) {
			int n = (i * 7 + r->seed * 13 + round) % 64;
			struct strbuf code = STRBUF_INIT, warn = STRBUF_INIT;
			unsigned char key[CACHE_KEY_LEN];

			make_key(key, n);
			if (cache_get(r->c, key, &code, &warn)) {
				struct strbuf want = STRBUF_INIT, wwant = STRBUF_INIT;

				body_of(n, &want, &wwant);
				r->bad += code.len != want.len || memcmp(code.buf, want.buf, want.len) ||
					  strcmp(warn.buf, wwant.buf);
				strbuf_release(&want);
				strbuf_release(&wwant);
			} else {
				put_n(r->c, n);
			}
			strbuf_release(&code);
			strbuf_release(&warn);
		}
	}
	return NULL;
}

TEST(cache_concurrent_put_get)
{
	char *tmp = make_tmpdir(), *dir = xstrfmt("%s/c", tmp);
	/* two threads on one cache, two on another of the same directory (as two processes) */
	struct cache *c1 = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
	struct cache *c2 = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
	struct racer r[4] = { { c1, 0, 0 }, { c1, 1, 0 }, { c2, 2, 0 }, { c2, 3, 0 } };
	pthread_t t[4];
	size_t hits, misses, stored, n, total_stored = 0, i;

	for (i = 0; i < 4; i++)
		CHECK(pthread_create(&t[i], NULL, race, &r[i]) == 0);
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK_INT(r[i].bad, 0);
	}
	cache_counts(c1, &hits, &misses, &stored);
	CHECK_INT(hits + misses, 2 * 20 * 64);
	total_stored += stored;
	cache_counts(c2, &hits, &misses, &stored);
	CHECK_INT(hits + misses, 2 * 20 * 64);
	total_stored += stored;
	CHECK(total_stored >= 64);
	cache_close(c1, "one");
	cache_close(c2, "two");
	c1 = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
	for (i = 0; i < 64; i++)
		CHECK(get_n(c1, (int)i));
	cache_close(c1, "check");
	entries_size(dir, &n);
	CHECK_INT(n, 64); /* and no temporary file left behind (they start with '.') */
	for (i = 0; i < 256; i++) {
		char *sub = xstrfmt("%s/v1/%02zx", dir, i);
		DIR *d = opendir(sub);
		struct dirent *de;

		while (d && (de = readdir(d)))
			CHECK(strncmp(de->d_name, ".prepyc-", 8));
		if (d)
			closedir(d);
		free(sub);
	}
	free(dir);
	remove_tree(tmp);
}

TEST(cache_admin_stats_clear_prune)
{
	char *tmp = make_tmpdir(), *dir = xstrfmt("%s/c", tmp), *none = xstrfmt("%s/none", tmp);
	char *mine = xstrfmt("%s/mine.txt", dir), *path;
	unsigned char key[CACHE_KEY_LEN];
	struct cache *c = cache_open(dir, 3000);
	struct cache_usage u;
	struct cache_runs runs;
	struct cache_clear_result cr;
	struct cache_prune_result pr;
	size_t n;
	int i, recorded;

	for (i = 0; i < 6; i++) {
		put_n(c, i);
		CHECK(get_n(c, i));
	}
	cache_close(c, "CPython 3.11.7");
	entries_size(dir, &n);
	CHECK_INT(n, 6);

	/* stats */
	CHECK(cache_admin_exists(dir));
	CHECK(!cache_admin_exists(none));
	CHECK_INT(cache_admin_usage(dir, &u), 0);
	CHECK_INT(u.entries, 6);
	CHECK(u.bytes == entries_size(dir, &n));
	CHECK_INT(u.temps, 0);
	CHECK(cache_admin_last_max_size(dir, &recorded) == 3000 && recorded);
	CHECK(cache_admin_last_max_size(none, &recorded) == CACHE_DEFAULT_MAX_SIZE && !recorded);
	CHECK_INT(cache_admin_read_runs(dir, 10, &runs), 0);
	CHECK_INT(runs.nr, 1);
	CHECK_STR(runs.v[0].label, "CPython 3.11.7");
	CHECK(runs.v[0].hits == 6 && runs.v[0].misses == 0 && runs.v[0].stored == 6);
	CHECK(runs.last_max_size == 3000);
	cache_runs_release(&runs);
	CHECK(cache_admin_read_runs(none, 10, &runs) < 0 && runs.nr == 0);

	/* prune: damaged entries, then down to the bound */
	make_key(key, 0);
	damage(dir, key, FLIP_SUM);
	CHECK_INT(cache_admin_prune(dir, (uint64_t)1 << 20, &pr), 0);
	CHECK_INT(pr.damaged, 1);
	CHECK_INT(pr.evicted, 0);
	CHECK_INT(pr.left, 5);
	CHECK_INT(pr.failed, 0);
	entries_size(dir, &n);
	CHECK_INT(n, 5);
	for (i = 1; i < 6; i++) {
		make_key(key, i);
		path = path_of(dir, key);
		set_mtime(path, time(NULL) - 1000 + i);
		free(path);
	}
	CHECK_INT(cache_admin_prune(dir, 1, &pr), 0);
	CHECK_INT(pr.evicted, 5);
	CHECK_INT(pr.left, 0);
	CHECK(pr.left_bytes == 0);
	entries_size(dir, &n);
	CHECK_INT(n, 0);

	/* clear: only what prepyc made */
	c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
	put_n(c, 1);
	CHECK(get_n(c, 1));
	cache_close(c, "t");
	write_file(mine, "mine", 4);
	CHECK_INT(cache_admin_clear(dir, &cr), 0);
	CHECK_INT(cr.entries, 1);
	CHECK_INT(cr.failed, 0);
	entries_size(dir, &n);
	CHECK_INT(n, 0);
	CHECK(exists(mine));
	free(mine);
	mine = xstrfmt("%s/v1", dir);
	CHECK(!exists(mine));
	free(mine);
	mine = xstrfmt("%s/stats", dir);
	CHECK(!exists(mine));
	CHECK(!cache_admin_exists(dir));

	free(mine);
	free(none);
	free(dir);
	remove_tree(tmp);
}

/* A store in memory, behind the disk one: the front's second store. */
struct mem_store {
	struct cache_store base;
	unsigned char key[CACHE_KEY_LEN];
	struct strbuf code, warnings;
	int has, gets, puts, closed;
};

static int mem_get(struct cache_store *s, const unsigned char key[CACHE_KEY_LEN],
		   struct strbuf *code, struct strbuf *warnings)
{
	struct mem_store *m = (struct mem_store *)s;

	m->gets++;
	if (!m->has || memcmp(key, m->key, CACHE_KEY_LEN))
		return 0;
	strbuf_add(code, m->code.buf, m->code.len);
	strbuf_add(warnings, m->warnings.buf, m->warnings.len);
	return 1;
}

static int mem_put(struct cache_store *s, const unsigned char key[CACHE_KEY_LEN],
		   const void *code, size_t code_len, const void *warnings, size_t warnings_len,
		   uint64_t *bytes)
{
	struct mem_store *m = (struct mem_store *)s;

	m->puts++;
	if (m->has)
		return 0;
	memcpy(m->key, key, CACHE_KEY_LEN);
	strbuf_add(&m->code, code, code_len);
	strbuf_add(&m->warnings, warnings, warnings_len);
	m->has = 1;
	*bytes = code_len + warnings_len;
	return 1;
}

static void mem_close(struct cache_store *s, const char *label,
		      const struct cache_store_counts *counts)
{
	struct mem_store *m = (struct mem_store *)s;

	(void)label;
	m->closed = 1;
	/* a lookup of key 1 that missed, one of key 7 that hit; the put of key 2 found it full */
	CHECK(counts->hits == 1 && counts->misses == 1);
	CHECK(counts->stored == 0 && counts->stored_bytes == 0);
}

static const struct cache_store_ops mem_ops = { "memory", mem_get, mem_put, mem_close };

TEST(cache_front_asks_stores_in_order)
{
	char *tmp = make_tmpdir(), *dir = xstrfmt("%s/c", tmp), *path, *stats;
	struct mem_store m = { .base = { &mem_ops } };
	struct strbuf code = STRBUF_INIT, warn = STRBUF_INIT, file = STRBUF_INIT;
	unsigned char key[CACHE_KEY_LEN];
	size_t hits, misses, stored;
	struct cache *c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);

	strbuf_init(&m.code, 0);
	strbuf_init(&m.warnings, 0);
	cache_add_store(c, &m.base);
	cache_add_store(c, NULL);
	make_key(key, 7);
	/* in the second store only: a hit, put into the first (the disk) */
	CHECK(mem_put(&m.base, key, "abc", 3, "warn", 4, &(uint64_t){ 0 }) == 1);
	m.puts = 0;
	CHECK(!get_n(c, 1));
	strbuf_addstr(&code, "x");
	CHECK_INT(cache_get(c, key, &code, &warn), 1);
	CHECK_STR(code.buf, "xabc");
	CHECK_STR(warn.buf, "warn");
	CHECK_INT(m.gets, 2);
	CHECK_INT(m.puts, 0);
	path = path_of(dir, key);
	CHECK(exists(path));
	/* now the first store answers */
	strbuf_reset(&code);
	strbuf_reset(&warn);
	CHECK_INT(cache_get(c, key, &code, &warn), 1);
	CHECK_STR(code.buf, "abc");
	CHECK_INT(m.gets, 2);
	/* a put goes to every store */
	put_n(c, 2);
	CHECK_INT(m.puts, 1);
	cache_counts(c, &hits, &misses, &stored);
	CHECK_INT(hits, 2);
	CHECK_INT(misses, 1);
	CHECK_INT(stored, 1);
	cache_close(c, "t");
	CHECK(m.closed);
	/* the disk store's line: its own hits and misses, the back-filled entry counted */
	stats = xstrfmt("%s/stats", dir);
	read_file(stats, &file);
	CHECK(strstr(file.buf, " t hits=1 misses=2 stored=2 ") != NULL);
	strbuf_release(&m.code);
	strbuf_release(&m.warnings);
	strbuf_release(&code);
	strbuf_release(&warn);
	strbuf_release(&file);
	free(stats);
	free(path);
	free(dir);
	remove_tree(tmp);
}
