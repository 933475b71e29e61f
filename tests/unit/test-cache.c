/*
 * Unit tests of the bytecode cache: the front (cache.h), the disk store
 * (store-disk.h), the directory rule (cachedir.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "cache-util.h"

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
			       "max_size=1073741824\n") != NULL); /* a fresh cache: not scanned */
	CHECK(file.buf[0] >= '1' && file.buf[0] <= '9');
	/* a run that looked nothing up (and stored nothing) adds no line */
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

static const struct cache_store_ops mem_ops = {
	.name = "memory", .get = mem_get, .put = mem_put, .close = mem_close,
};

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

/*
 * A lookup in a shard that does not exist yet misses without asking again;
 * once this run stores there (or another cache handle: its shard is made
 * then), lookups find it.
 */
TEST(cache_missing_shard_then_stored)
{
	char *tmp = make_tmpdir(), *dir = xstrfmt("%s/c", tmp);
	struct cache *c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);

	CHECK(!get_n(c, 7));
	CHECK(!get_n(c, 7));
	put_n(c, 7);
	CHECK(get_n(c, 7));
	cache_close(c, "t");
	c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
	CHECK(get_n(c, 7));
	cache_close(c, "t");
	free(dir);
	remove_tree(tmp);
}

/*
 * A cache directory this run made holds only what the run stored: its
 * lookups of other keys cost no system call, so an entry another process
 * stores meanwhile is missed (as a cache may miss), and found by the next
 * run; what this run stored is found.
 */
TEST(cache_fresh_directory_reads_only_its_own_entries)
{
	char *tmp = make_tmpdir(), *dir = xstrfmt("%s/c", tmp);
	struct cache *c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
	struct cache *other = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);

	CHECK(c != NULL && other != NULL);
	put_n(other, 8);
	CHECK(get_n(other, 8));
	CHECK(!get_n(c, 8));
	put_n(c, 9);
	CHECK(get_n(c, 9));
	cache_close(other, "t");
	cache_close(c, "t");
	c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
	CHECK(get_n(c, 8));
	CHECK(get_n(c, 9));
	cache_close(c, "t");
	free(dir);
	remove_tree(tmp);
}

/* Entries are 0600 whatever the umask: with one that narrows it (fchmod) or not. */
TEST(cache_entry_mode_is_exact_whatever_the_umask)
{
	static const mode_t masks[] = { 022, 0177, 0277, 0 };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(masks); i++) {
		char *tmp = make_tmpdir(), *dir = xstrfmt("%s/c", tmp), *path;
		mode_t was = umask(masks[i]);
		unsigned char key[CACHE_KEY_LEN];
		struct cache *c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
		struct stat st;

		CHECK(c != NULL);
		put_n(c, 3);
		make_key(key, 3);
		path = path_of(dir, key);
		CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
		cache_close(c, "t");
		umask(was);
		free(path);
		free(dir);
		remove_tree(tmp);
	}
}
