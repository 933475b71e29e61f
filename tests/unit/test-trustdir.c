/*
 * Unit tests of who may have written the cache (trustdir.h): the rule on
 * made-up stats (any user, any group, no root needed), on real temporary
 * directories (chmod; chown when root), and the disk store refusing
 * entries and shards that are not ours.
 */
#define _XOPEN_SOURCE 700
#include "cache-util.h"
#include "trustdir.h"

#define OTHER_UID 4711
#define OTHER_GID 4712

/* A trust of uid 1000 with user-private group 1000 and the groups `g`. */
static void fake_trust(struct trust *t, int shared, gid_t extra)
{
	memset(t, 0, sizeof(*t));
	t->uid = 1000;
	t->shared = shared;
	t->has_private = 1;
	t->private_gid = 1000;
	t->groups = xcalloc(2, sizeof(*t->groups));
	t->groups[t->nr_groups++] = 1000;
	t->groups[t->nr_groups++] = extra;
}

static struct stat fake_stat(int dir, uid_t uid, gid_t gid, mode_t mode)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_uid = uid;
	st.st_gid = gid;
	st.st_mode = (dir ? S_IFDIR : S_IFREG) | mode;
	return st;
}

/* trust_stat_check(): 0, or 1 with the reason compared. */
static int judge(const struct trust *t, struct stat st, const char *want)
{
	struct strbuf why = STRBUF_INIT;
	int rc = trust_stat_check(t, &st, &why);

	if (want && rc != 1)
		printf("  expected refusal: %s\n", want);
	if (want && rc == 1 && strcmp(why.buf, want)) {
		printf("  reason \"%s\", expected \"%s\"\n", why.buf, want);
		rc = 2;
	}
	if (!want && rc)
		printf("  unexpected refusal: %s\n", why.buf);
	strbuf_release(&why);
	return rc;
}

TEST(trust_rule_on_owners_and_modes)
{
	struct trust t, s;

	fake_trust(&t, 0, 50);
	fake_trust(&s, 1, 50);
	/* ours, in the modes of now and of older prepyc (0755, 0644, umask 002 with a private group) */
	CHECK_INT(judge(&t, fake_stat(1, 1000, 1000, 0700), NULL), 0);
	CHECK_INT(judge(&t, fake_stat(1, 1000, 100, 0755), NULL), 0);
	CHECK_INT(judge(&t, fake_stat(0, 1000, 100, 0644), NULL), 0);
	CHECK_INT(judge(&t, fake_stat(1, 1000, 1000, 0775), NULL), 0);
	CHECK_INT(judge(&t, fake_stat(0, 1000, 1000, 0664), NULL), 0);
	/* root's: trusted (root can replace prepyc itself) */
	CHECK_INT(judge(&t, fake_stat(1, 0, 0, 0755), NULL), 0);
	/* someone else's, whatever the modes */
	CHECK_INT(judge(&t, fake_stat(1, OTHER_UID, OTHER_GID, 0700),
			"belongs to uid 4711, not to you (uid 1000); see --cache-shared"), 1);
	CHECK_INT(judge(&t, fake_stat(0, OTHER_UID, 50, 0600),
			"belongs to uid 4711, not to you (uid 1000); see --cache-shared"), 1);
	/* writable by others: never, not even sticky, not even shared */
	CHECK_INT(judge(&t, fake_stat(1, 1000, 1000, 0777), "can be written by anyone (mode 0777)"), 1);
	CHECK_INT(judge(&t, fake_stat(1, 1000, 1000, 01777), "can be written by anyone (mode 1777)"), 1);
	CHECK_INT(judge(&t, fake_stat(0, 1000, 1000, 0666), "can be written by anyone (mode 0666)"), 1);
	CHECK_INT(judge(&s, fake_stat(1, 1000, 50, 02777), "can be written by anyone (mode 2777)"), 1);
	/* writable by a group that is not our private one */
	CHECK_INT(judge(&t, fake_stat(1, 1000, 50, 02770),
			"can be written by the members of group 50 (mode 2770); see --cache-shared"), 1);
	CHECK_INT(judge(&t, fake_stat(0, 1000, 100, 0660),
			"can be written by the members of group 100 (mode 0660); see --cache-shared"), 1);

	/* --cache-shared: our groups' members' directories (setgid) and entries */
	CHECK_INT(judge(&s, fake_stat(1, 1000, 50, 02770), NULL), 0);
	CHECK_INT(judge(&s, fake_stat(1, OTHER_UID, 50, 02770), NULL), 0);
	CHECK_INT(judge(&s, fake_stat(0, OTHER_UID, 50, 0660), NULL), 0);
	CHECK_INT(judge(&s, fake_stat(0, OTHER_UID, 50, 0640), NULL), 0);
	CHECK_INT(judge(&s, fake_stat(1, OTHER_UID, 50, 0770),
			"belongs to uid 4711, not to you (uid 1000), and is not setgid"), 1);
	/* a group we are not in is no one we trust */
	CHECK_INT(judge(&s, fake_stat(1, OTHER_UID, OTHER_GID, 02770),
			"belongs to uid 4711, not to you (uid 1000)"), 1);
	CHECK_INT(judge(&s, fake_stat(0, 1000, OTHER_GID, 0660),
			"can be written by the members of group 4712 (mode 0660)"), 1);

	CHECK_INT(trust_dir_mode(&t), 0700);
	CHECK_INT(trust_file_mode(&t), 0600);
	CHECK_INT(trust_dir_mode(&s), 02770);
	CHECK_INT(trust_file_mode(&s), 0660);
	trust_release(&t);
	trust_release(&s);
}

/* trust_cache_dir() on a real directory: its result, and the reason's start. */
static int check_dir(const struct trust *t, const char *dir, const char *sub, int create,
		     const char *want)
{
	struct strbuf why = STRBUF_INIT;
	int rc = trust_cache_dir(t, dir, sub, create, &why);

	if (want && (rc != 1 || strcmp(why.buf, want))) {
		printf("  %s: %d \"%s\", expected \"%s\"\n", dir, rc, why.buf, want);
		rc = 2;
	}
	if (!want && rc)
		printf("  %s: unexpected %d: %s\n", dir, rc, why.buf);
	strbuf_release(&why);
	return rc;
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

TEST(trust_cache_dir_creates_and_checks)
{
	char *tmp = make_tmpdir(), *dir = xstrfmt("%s/a/cache", tmp), *v1 = xstrfmt("%s/v1", dir);
	char *open_dir = xstrfmt("%s/open", tmp), *below = xstrfmt("%s/open/cache", tmp);
	char *link = xstrfmt("%s/link", tmp), *want, cwd[4096];
	struct trust t, s;
	mode_t old = umask(022);

	trust_init(&t, 0);
	trust_init(&s, TRUST_SHARED);
	/* created exactly 0700, whatever the umask */
	umask(0);
	CHECK_INT(check_dir(&t, dir, "v1", 1, NULL), 0);
	CHECK_INT(mode_of(dir), 0700);
	CHECK_INT(mode_of(v1), 0700);
	/* without create, missing is ENOENT */
	rmdir(v1);
	{
		struct strbuf why = STRBUF_INIT;

		CHECK_INT(trust_cache_dir(&t, dir, "v1", 0, &why), -1);
		CHECK_INT(errno, ENOENT);
		CHECK_STR(why.buf, v1);
		strbuf_release(&why);
	}
	/* shared: 02770 even under umask 077 */
	umask(077);
	CHECK_INT(check_dir(&s, dir, "v1", 1, NULL), 0);
	CHECK_INT(mode_of(v1), 02770);
	umask(022);

	/* the cache directory or its subdirectory writable by anyone */
	chmod(dir, 0777);
	want = xstrfmt("it can be written by anyone (mode 0777)");
	CHECK_INT(check_dir(&t, dir, "v1", 0, want), 1);
	free(want);
	chmod(dir, 0700);
	chmod(v1, 0707);
	want = xstrfmt("'%s' in it can be written by anyone (mode 0707)", v1);
	CHECK_INT(check_dir(&t, dir, "v1", 0, want), 1);
	free(want);
	chmod(v1, 0700);
	/* an older prepyc's modes are fine */
	chmod(dir, 0755);
	CHECK_INT(check_dir(&t, dir, "v1", 0, NULL), 0);

	/* a directory above that anyone can write, not sticky: refused, nothing created */
	CHECK(mkdir(open_dir, 0700) == 0 && chmod(open_dir, 0777) == 0);
	want = xstrfmt("'%s' above it can be written by anyone and is not sticky (mode 0777)",
		       open_dir);
	CHECK_INT(check_dir(&t, below, "v1", 1, want), 1);
	CHECK(!exists(below));
	/* through a symbolic link from a sound place: the real path is checked too */
	CHECK(mkdir(below, 0700) == 0 && symlink(below, link) == 0);
	CHECK_INT(check_dir(&t, link, NULL, 0, want), 1);
	free(want);
	/* sticky, as /tmp: fine */
	CHECK(chmod(open_dir, 01777) == 0);
	CHECK_INT(check_dir(&t, below, "v1", 1, NULL), 0);
	CHECK_INT(check_dir(&t, link, NULL, 0, NULL), 0);
	/* a relative path is judged from the current directory */
	if (getcwd(cwd, sizeof(cwd)) && chdir(tmp) == 0) {
		CHECK_INT(check_dir(&t, "a/cache", "v1", 0, NULL), 0);
		CHECK(chdir(cwd) == 0);
	}

	if (geteuid() == 0) {
		/* owners: another user's cache, subdirectory, directory above */
		CHECK(chown(dir, OTHER_UID, OTHER_GID) == 0);
		want = xstrfmt("it belongs to uid %d, not to you (uid 0); see --cache-shared", OTHER_UID);
		CHECK_INT(check_dir(&t, dir, "v1", 0, want), 1);
		free(want);
		CHECK(chown(dir, 0, 0) == 0 && chown(v1, OTHER_UID, 0) == 0);
		want = xstrfmt("'%s' in it belongs to uid %d, not to you (uid 0); see --cache-shared",
			       v1, OTHER_UID);
		CHECK_INT(check_dir(&t, dir, "v1", 0, want), 1);
		free(want);
		CHECK(chown(v1, 0, 0) == 0);
		CHECK(chmod(open_dir, 0755) == 0 && chown(open_dir, OTHER_UID, 0) == 0);
		want = xstrfmt("'%s' above it belongs to uid %d", open_dir, OTHER_UID);
		CHECK_INT(check_dir(&t, below, NULL, 0, want), 1);
		free(want);
		/* ... unless that user is the cache's owner, who could plant code anyway */
		CHECK(chown(below, OTHER_UID, 0) == 0 && chmod(below, 02770) == 0);
		CHECK_INT(check_dir(&s, below, NULL, 0, NULL), 0);
		want = xstrfmt("it belongs to uid %d, not to you (uid 0); see --cache-shared", OTHER_UID);
		CHECK_INT(check_dir(&t, below, NULL, 0, want), 1);
		free(want);
	} else {
		printf("  (not root: ownership cases skipped)\n");
	}
	umask(old);
	trust_release(&t);
	trust_release(&s);
	free(dir);
	free(v1);
	free(open_dir);
	free(below);
	free(link);
	remove_tree(tmp);
}

TEST(trust_mkdirs_modes_and_errors)
{
	char *tmp = make_tmpdir(), *deep = xstrfmt("%s/x/y/z", tmp), *file = xstrfmt("%s/f", tmp);
	char *under = xstrfmt("%s/f/g", tmp), *mid = xstrfmt("%s/x/y", tmp);
	struct strbuf failed = STRBUF_INIT;
	mode_t old = umask(077);

	CHECK_INT(trust_mkdirs(deep, 02750, NULL), 0);
	CHECK_INT(mode_of(deep) & 0777, 0750);
	CHECK_INT(mode_of(mid) & 0777, 0750);
	CHECK_INT(trust_mkdirs(deep, 0700, NULL), 0); /* existing: left as it is */
	CHECK_INT(mode_of(deep) & 0777, 0750);
	write_file(file, "x", 1);
	CHECK_INT(trust_mkdirs(under, 0700, &failed), -1);
	CHECK_INT(errno, ENOTDIR);
	CHECK_STR(failed.buf, under);
	umask(old);
	strbuf_release(&failed);
	free(deep);
	free(file);
	free(under);
	free(mid);
	remove_tree(tmp);
}

TEST(trust_disk_store_refuses_entries_not_ours)
{
	char *tmp = make_tmpdir(), *dir = xstrfmt("%s/cache", tmp), *path, *shard;
	unsigned char key[CACHE_KEY_LEN];
	struct cache *c;
	struct stat st;
	int saved;

	c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
	put_n(c, 1);
	put_n(c, 2);
	cache_close(c, "fill");
	make_key(key, 1);
	path = path_of(dir, key);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);

	/* an entry anyone could have written: a miss, and removed (the directory is ours) */
	CHECK(chmod(path, 0666) == 0);
	c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
	saved = stderr_off();
	CHECK(!get_n(c, 1));
	stderr_on(saved);
	CHECK(!exists(path));
	CHECK(get_n(c, 2));
	put_n(c, 1); /* stored again, ours */
	CHECK(get_n(c, 1));
	cache_close(c, "again");

	if (geteuid() == 0) {
		/* an entry of another user: a miss */
		CHECK(chown(path, OTHER_UID, OTHER_GID) == 0);
		c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
		saved = stderr_off();
		CHECK(!get_n(c, 1));
		stderr_on(saved);
		cache_close(c, "other");
		/* a shard of another user: the store stops for the run */
		make_key(key, 2);
		free(path);
		path = path_of(dir, key);
		shard = xstrdup(path);
		*strrchr(shard, '/') = '\0';
		CHECK(chown(shard, OTHER_UID, OTHER_GID) == 0);
		c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
		saved = stderr_off();
		CHECK(!get_n(c, 2));
		put_n(c, 3);
		stderr_on(saved);
		cache_close(c, "shard");
		make_key(key, 3);
		free(path);
		path = path_of(dir, key);
		CHECK(!exists(path));
		free(shard);
		/* the whole directory of another user: not opened */
		CHECK(chown(dir, OTHER_UID, OTHER_GID) == 0);
		saved = stderr_off();
		c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
		stderr_on(saved);
		CHECK(c == NULL);
	} else {
		printf("  (not root: ownership cases skipped)\n");
	}
	free(path);
	free(dir);
	remove_tree(tmp);
}

TEST(trust_store_remakes_a_cleared_shard)
{
	char *tmp = make_tmpdir(), *dir = xstrfmt("%s/cache", tmp), *v1 = xstrfmt("%s/v1", dir);
	struct cache_clear_result res;
	struct cache *c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);

	/* `prepyc cache clear` during a run removes v1 and its shards: storing goes on */
	put_n(c, 1);
	CHECK(get_n(c, 1));
	CHECK_INT(cache_admin_clear(dir, &res), 0);
	CHECK(!exists(v1));
	put_n(c, 1);
	CHECK(get_n(c, 1));
	CHECK_INT(mode_of(v1), 0700);
	cache_close(c, "cleared");
	free(v1);
	free(dir);
	remove_tree(tmp);
}
