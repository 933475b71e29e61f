/* trustdir.c - who may have written the cache directory (trustdir.h). */
#define _XOPEN_SOURCE 700
#include "trustdir.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "banned.h"

/* ---- who we are ------------------------------------------------------- */

/* getpwuid_r/getgrgid_r want a buffer of a size they only tell by ERANGE. */
static int lookup_user(uid_t uid, struct passwd *pw, char **buf)
{
	struct passwd *res = NULL;
	size_t size = 1024;
	int e;

	for (;;) {
		*buf = xrealloc(*buf, size);
		e = getpwuid_r(uid, pw, *buf, size, &res);
		if (e != ERANGE || size >= ((size_t)1 << 20))
			break;
		size *= 2;
	}
	return e == 0 && res ? 0 : -1;
}

static int lookup_group(gid_t gid, struct group *gr, char **buf)
{
	struct group *res = NULL;
	size_t size = 1024;
	int e;

	for (;;) {
		*buf = xrealloc(*buf, size);
		e = getgrgid_r(gid, gr, *buf, size, &res);
		if (e != ERANGE || size >= ((size_t)1 << 20))
			break;
		size *= 2;
	}
	return e == 0 && res ? 0 : -1;
}

/*
 * Is `gid` our user-private group: our primary group, named as we are,
 * with no other member listed?  Group write permission on it gives nobody
 * else anything.  Asked only of a group-writable directory or file: the
 * user and group databases (nsswitch, /etc/passwd, /etc/group) are a
 * dozen system calls that most runs need not make.
 */
static int is_private_group(uid_t uid, gid_t gid)
{
	struct passwd pw;
	struct group gr;
	char *pwbuf = NULL, *grbuf = NULL;
	char **m;
	int private = 0;

	if (lookup_user(uid, &pw, &pwbuf) == 0 && pw.pw_gid == gid &&
	    lookup_group(pw.pw_gid, &gr, &grbuf) == 0 && !strcmp(gr.gr_name, pw.pw_name)) {
		for (m = gr.gr_mem; m && *m; m++)
			if (strcmp(*m, pw.pw_name))
				break;
		private = !m || !*m;
	}
	free(pwbuf);
	free(grbuf);
	return private;
}

void trust_init(struct trust *t, unsigned flags)
{
	int n;

	memset(t, 0, sizeof(*t));
	t->uid = geteuid();
	t->shared = !!(flags & TRUST_SHARED);
	t->has_private = -1; /* looked up when a group may write (is_private_group()) */
	n = getgroups(0, NULL);
	t->groups = xcalloc((size_t)(n > 0 ? n : 0) + 1, sizeof(*t->groups));
	if (n > 0) {
		n = getgroups(n, t->groups);
		t->nr_groups = n > 0 ? (size_t)n : 0;
	}
	t->groups[t->nr_groups++] = getegid();
}

void trust_release(struct trust *t)
{
	free(t->groups);
	memset(t, 0, sizeof(*t));
}

mode_t trust_dir_mode(const struct trust *t)
{
	return t->shared ? 02770 : 0700;
}

mode_t trust_file_mode(const struct trust *t)
{
	return t->shared ? 0660 : 0600;
}

static int in_groups(const struct trust *t, gid_t gid)
{
	size_t i;

	for (i = 0; i < t->nr_groups; i++)
		if (t->groups[i] == gid)
			return 1;
	return 0;
}

/* A group whose write permission lets no one we do not trust in. */
static int group_ok(const struct trust *t, gid_t gid)
{
	if (t->shared && in_groups(t, gid))
		return 1;
	if (t->has_private < 0)
		return is_private_group(t->uid, gid);
	return t->has_private && gid == t->private_gid;
}

/* ---- the rules -------------------------------------------------------- */

static int stat_problem(const struct trust *t, const struct stat *st, struct strbuf *why)
{
	unsigned mode = (unsigned)(st->st_mode & 07777);
	const char *hint = t->shared ? "" : "; see --cache-shared";

	if (st->st_uid != t->uid && st->st_uid != 0) {
		int group_member = t->shared && in_groups(t, st->st_gid);

		if (!group_member) {
			strbuf_addf(why, "belongs to uid %u, not to you (uid %u)%s",
				    (unsigned)st->st_uid, (unsigned)t->uid, hint);
			return 1;
		}
		if (S_ISDIR(st->st_mode) && !(st->st_mode & S_ISGID)) {
			strbuf_addf(why, "belongs to uid %u, not to you (uid %u), and is not setgid",
				    (unsigned)st->st_uid, (unsigned)t->uid);
			return 1;
		}
	}
	if (st->st_mode & S_IWOTH) {
		strbuf_addf(why, "can be written by anyone (mode %04o)", mode);
		return 1;
	}
	if ((st->st_mode & S_IWGRP) && !group_ok(t, st->st_gid)) {
		strbuf_addf(why, "can be written by the members of group %u (mode %04o)%s",
			    (unsigned)st->st_gid, mode, hint);
		return 1;
	}
	return 0;
}

int trust_stat_check(const struct trust *t, const struct stat *st, struct strbuf *reason)
{
	strbuf_reset(reason);
	return stat_problem(t, st, reason);
}

/*
 * A directory above the cache: could whoever may write it swap what is
 * below?  `owner` and `gid` are the cache directory's (a member of its
 * world already).
 */
static int above_problem(const struct trust *t, const struct stat *st, uid_t owner, gid_t gid,
			 int have_gid, struct strbuf *why)
{
	unsigned mode = (unsigned)(st->st_mode & 07777);

	if (st->st_uid != t->uid && st->st_uid != 0 && st->st_uid != owner) {
		strbuf_addf(why, "belongs to uid %u", (unsigned)st->st_uid);
		return 1;
	}
	if (st->st_mode & S_ISVTX)
		return 0; /* /tmp: others may add names, not rename ours */
	if (st->st_mode & S_IWOTH) {
		strbuf_addf(why, "can be written by anyone and is not sticky (mode %04o)", mode);
		return 1;
	}
	if ((st->st_mode & S_IWGRP) && !group_ok(t, st->st_gid) &&
	    !(t->shared && have_gid && st->st_gid == gid)) {
		strbuf_addf(why, "can be written by the members of group %u and is not sticky (mode %04o)",
			    (unsigned)st->st_gid, mode);
		return 1;
	}
	return 0;
}

/*
 * Every directory above the absolute path `path` (not `path` itself), from
 * / down; a missing one ends the walk (we create the rest).  0, 1, or -1.
 */
static int check_above(const struct trust *t, const char *path, uid_t owner, gid_t gid,
		       int have_gid, struct strbuf *reason)
{
	struct strbuf prefix = STRBUF_INIT, why = STRBUF_INIT;
	const char *p = path, *next;
	struct stat st;
	int rc = 0;

	strbuf_addch(&prefix, '/');
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			break; /* `path` itself: not ours to judge here */
		if (stat(prefix.buf, &st) < 0) {
			if (errno != ENOENT) {
				strbuf_reset(reason);
				strbuf_addstr(reason, prefix.buf);
				rc = -1;
			}
			break;
		}
		strbuf_reset(&why);
		if (above_problem(t, &st, owner, gid, have_gid, &why)) {
			strbuf_reset(reason);
			strbuf_addf(reason, "'%s' above it %s", prefix.buf, why.buf);
			rc = 1;
			break;
		}
		next = strchr(p, '/');
		if (!next)
			break;
		if (prefix.len > 1)
			strbuf_addch(&prefix, '/');
		strbuf_add(&prefix, p, (size_t)(next - p));
		p = next;
	}
	strbuf_release(&prefix);
	strbuf_release(&why);
	return rc;
}

int trust_mkdirs(const char *dir, mode_t mode, struct strbuf *failed)
{
	char *path = xstrdup(dir);
	char *p = path;
	int rc = 0;

	for (;;) {
		char c;

		while (*p == '/')
			p++;
		while (*p && *p != '/')
			p++;
		c = *p;
		*p = '\0';
		if (mkdir(path, mode & 0777) == 0) {
			if (chmod(path, mode) < 0) /* exactly: the umask does not narrow it */
				rc = -1;
		} else if (errno != EEXIST) {
			rc = -1;
		}
		if (rc < 0) {
			int e = errno;

			if (failed) {
				strbuf_reset(failed);
				strbuf_addstr(failed, path);
			}
			free(path);
			errno = e;
			return -1;
		}
		*p = c;
		if (!c)
			break;
	}
	free(path);
	return 0;
}

/* stat `path`, creating it first when asked and missing; 0, or -1 with `reason` naming it. */
static int stat_dir(const struct trust *t, const char *path, int create, struct stat *st,
		    struct strbuf *reason)
{
	if (stat(path, st) < 0) {
		if (!create || errno != ENOENT || trust_mkdirs(path, trust_dir_mode(t), reason) < 0 ||
		    stat(path, st) < 0) {
			int e = errno;

			if (!reason->len)
				strbuf_addstr(reason, path);
			errno = e;
			return -1;
		}
	}
	if (!S_ISDIR(st->st_mode)) {
		strbuf_reset(reason);
		strbuf_addstr(reason, path);
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

int trust_cache_dir(const struct trust *t, const char *dir, const char *sub, int create,
		    struct strbuf *reason)
{
	struct strbuf abs = STRBUF_INIT, why = STRBUF_INIT;
	struct stat st, sst;
	char *real = NULL, *subpath = NULL;
	int rc;

	strbuf_reset(reason);
	if (dir[0] != '/') {
		char cwd[PATH_MAX];

		if (!getcwd(cwd, sizeof(cwd))) {
			strbuf_addstr(reason, dir);
			return -1;
		}
		strbuf_addf(&abs, "%s/", cwd);
	}
	strbuf_addstr(&abs, dir);
	/* before creating anything: what is above must be sound */
	if (create && stat(abs.buf, &st) < 0 && errno == ENOENT &&
	    (rc = check_above(t, abs.buf, t->uid, 0, 0, reason)) != 0)
		goto out;
	rc = -1;
	if (stat_dir(t, abs.buf, create, &st, reason) < 0)
		goto out;
	rc = 1;
	if (stat_problem(t, &st, &why)) {
		strbuf_addf(reason, "it %s", why.buf);
		goto out;
	}
	/* the path as given, and where its symbolic links lead */
	rc = check_above(t, abs.buf, st.st_uid, st.st_gid, 1, reason);
	if (rc)
		goto out;
	real = realpath(abs.buf, NULL);
	if (!real) {
		strbuf_addstr(reason, abs.buf);
		rc = -1;
		goto out;
	}
	rc = check_above(t, real, st.st_uid, st.st_gid, 1, reason);
	if (rc || !sub)
		goto out;
	subpath = xstrfmt("%s/%s", dir, sub);
	rc = -1;
	if (stat_dir(t, subpath, create, &sst, reason) < 0)
		goto out;
	rc = 0;
	if (stat_problem(t, &sst, &why)) {
		strbuf_addf(reason, "'%s' in it %s", subpath, why.buf);
		rc = 1;
	}
out:
	if (rc < 0) {
		int e = errno;

		strbuf_release(&abs);
		strbuf_release(&why);
		free(real);
		free(subpath);
		errno = e;
		return -1;
	}
	strbuf_release(&abs);
	strbuf_release(&why);
	free(real);
	free(subpath);
	return rc;
}
