/* Unit tests of the cache's administration (cache-admin.h): eviction, stats, clear, prune. */
#define _POSIX_C_SOURCE 200809L
#include "cache-util.h"

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
			     "evicted=12 max_size=10800 size=9720\n") != NULL);

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

TEST(cache_trim_scans_only_when_the_stats_cannot_vouch)
{
	char *tmp = make_tmpdir(), *dir = xstrfmt("%s/c", tmp), *stats, *junk, *line;
	const uint64_t one = 1080, max = 100 * one;
	unsigned char key[CACHE_KEY_LEN];
	struct strbuf sb = STRBUF_INIT, big = STRBUF_INIT;
	struct cache *c;
	size_t n;
	int i;

	/* a fresh cache holds what this run stored: no scan */
	c = cache_open(dir, max);
	for (i = 0; i < 5; i++)
		put_fixed(c, i);
	cache_close(c, "first");
	stats = xstrfmt("%s/stats", dir);
	read_file(stats, &sb);
	CHECK(strstr(sb.buf, " first hits=0 misses=0 stored=5 stored_bytes=5400 evicted=0 "
			     "max_size=108000\n") != NULL);
	/* no scan on record: this one scans, and records the size */
	c = cache_open(dir, max);
	put_fixed(c, 5);
	cache_close(c, "second");
	strbuf_reset(&sb);
	read_file(stats, &sb);
	CHECK(strstr(sb.buf, " second hits=0 misses=0 stored=1 stored_bytes=1080 evicted=0 "
			     "max_size=108000 size=6480\n") != NULL);
	/* an entry behind prepyc's back, over the bound, and the oldest */
	make_key(key, 999);
	junk = path_of(dir, key);
	line = xstrndup(junk, (size_t)(strrchr(junk, '/') - junk));
	mkdir(line, 0700);
	free(line);
	strbuf_grow(&big, 200000);
	memset(big.buf, 'j', 200000);
	strbuf_setlen(&big, 200000);
	write_file(junk, big.buf, big.len);
	set_mtime(junk, time(NULL) - 100000);
	/* 6480 + 1080 by the stats, within: no scan, nothing evicted */
	c = cache_open(dir, max);
	put_fixed(c, 6);
	cache_close(c, "third");
	strbuf_reset(&sb);
	read_file(stats, &sb);
	CHECK(strstr(sb.buf, " third hits=0 misses=0 stored=1 stored_bytes=1080 evicted=0 "
			     "max_size=108000\n") != NULL);
	CHECK(exists(junk));
	/* the last scan over an hour ago: this run scans, and evicts the junk */
	line = xstrfmt("%lld old hits=0 misses=0 stored=5 stored_bytes=5400 evicted=0 "
		       "max_size=108000 size=5400\n", (long long)time(NULL) - CACHE_SCAN_EVERY - 10);
	write_file(stats, line, strlen(line));
	c = cache_open(dir, max);
	put_fixed(c, 7);
	cache_close(c, "fourth");
	CHECK(!exists(junk));
	entries_size(dir, &n);
	CHECK_INT(n, 8);
	strbuf_reset(&sb);
	read_file(stats, &sb);
	CHECK(strstr(sb.buf, " fourth hits=0 misses=0 stored=1 stored_bytes=1080 evicted=1 "
			     "max_size=108000 size=8640\n") != NULL);

	strbuf_release(&sb);
	strbuf_release(&big);
	free(line);
	free(junk);
	free(stats);
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

/* DIR/buildlog/NAME with `size` bytes, used `age` seconds ago. */
static void make_log(const char *dir, const char *name, size_t size, time_t age)
{
	char *path = xstrfmt("%s/buildlog/%s", dir, name);
	char *data = xcalloc(size + 1, 1);

	write_file(path, data, size);
	set_mtime(path, time(NULL) - age);
	free(data);
	free(path);
}

static int log_exists(const char *dir, const char *name)
{
	char *path = xstrfmt("%s/buildlog/%s", dir, name);
	int e = exists(path);

	free(path);
	return e;
}

/*
 * The logs of builds that did not run for 30 days go, and past the 100
 * most recently run; files of other names stay; count removes nothing.
 */
TEST(cache_logs_unused_ones_are_removed)
{
	char *tmp = make_tmpdir(), *sub = xstrfmt("%s/buildlog", tmp);
	struct cache_logs_result res;
	char name[64];
	int i;

	CHECK(mkdir(sub, 0700) == 0);
	cache_logs_prune(tmp, CACHE_LOGS_PRUNE, &res); /* empty */
	CHECK(res.removed == 0 && res.left == 0 && res.failed == 0);
	/* 110 logs used an hour apart (the first just now), half of them walk logs */
	for (i = 0; i < 110; i++) {
		snprintf(name, sizeof(name), "%s%032x", i % 2 ? "walk-" : "", i);
		make_log(tmp, name, 10, (time_t)i * 3600);
	}
	make_log(tmp, "0123456789abcdef0123456789abcdeF", 10, 40 * 24 * 3600); /* not a log name */
	make_log(tmp, "mine.txt", 10, 40 * 24 * 3600);
	snprintf(name, sizeof(name), "%032x", 0xabc);
	make_log(tmp, name, 5, 31 * 24 * 3600); /* a month unused */
	cache_logs_prune(tmp, CACHE_LOGS_COUNT, &res);
	CHECK_INT(res.left, 111);
	CHECK(res.left_bytes == 1105 && res.removed == 0);
	cache_logs_prune(tmp, CACHE_LOGS_PRUNE, &res);
	CHECK_INT(res.removed, 11);
	CHECK_INT(res.left, 100);
	CHECK(!log_exists(tmp, name));
	snprintf(name, sizeof(name), "%032x", 98);
	CHECK(log_exists(tmp, name));
	snprintf(name, sizeof(name), "%032x", 100);
	CHECK(!log_exists(tmp, name));
	CHECK(log_exists(tmp, "mine.txt") && log_exists(tmp, "0123456789abcdef0123456789abcdeF"));
	cache_logs_prune(tmp, CACHE_LOGS_ALL, &res);
	CHECK_INT(res.removed, 100);
	CHECK_INT(res.left, 0);
	CHECK(log_exists(tmp, "mine.txt"));
	free(sub);
	remove_tree(tmp);
}
