/*
 * trustdir.h - whether a cache directory may be used: whoever could write
 * it could plant code that prepyc would then write as a pyc, so a
 * directory that someone else could write is not used at all.  The one
 * rule, shared by the bytecode cache (store-disk.c, cache-admin.c) and
 * the targets' facts (factscache.c).
 *
 * The rule, for the cache directory DIR and every directory or file
 * prepyc uses in it (DIR/v1, its shards, entries, DIR/targets and its
 * entries, DIR/stats):
 *
 *   - owned by us or by root (root can replace prepyc itself); with
 *     TRUST_SHARED (--cache-shared) also owned by anyone when its group is
 *     one of ours (a directory must then also be setgid);
 *   - never writable by others (o+w), sticky or not;
 *   - writable by its group only when the group is our user-private group
 *     (named as we are, no other member listed: Fedora's and Debian's
 *     default with umask 002), or, with TRUST_SHARED, one of our groups.
 *
 * Every directory above DIR (those of the path as given, and those of the
 * path with its symbolic links resolved), up to /, must be owned by us,
 * root or DIR's owner, and, unless sticky (/tmp), writable neither by
 * others nor by a group other than the ones accepted above: otherwise
 * someone could rename DIR away and put theirs in its place.
 *
 * New directories are created mode 0700 (02770 with TRUST_SHARED), files
 * 0600 (0660), exactly: the umask does not apply.  Caches made by older
 * prepyc (0755 directories, 0644 files, ours) pass the rule unchanged.
 *
 * Calling sequence: trust_init(), any number of checks (thread-safe: the
 * struct is only read), trust_release().
 *
 * Errors: a check returns 0 (trusted), 1 (refused: `reason` is set to the
 * why, e.g. "it belongs to uid 1001, not to you (uid 0); see
 * --cache-shared", to follow "not using the cache 'DIR': "), or -1 with
 * errno when a directory cannot be created, stat'ed or resolved (`reason`
 * then names the path that failed).  Nothing is printed.
 */
#ifndef TRUSTDIR_H
#define TRUSTDIR_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "strbuf.h"

enum trust_flags {
	TRUST_SHARED = 1 << 0, /* --cache-shared: a group's cache */
};

struct trust {
	uid_t uid;
	int shared;
	int has_private;   /* we have a user-private group (-1: not looked up yet): */
	gid_t private_gid;
	gid_t *groups;     /* our groups (effective and supplementary) */
	size_t nr_groups;
};

/*
 * Learn who we are (uid, groups); `flags` as above.  The user-private
 * group is looked up only when a group-writable file is judged: the user
 * and group databases cost a dozen system calls most runs need not make.
 */
void trust_init(struct trust *t, unsigned flags);
void trust_release(struct trust *t);

/* The modes of what prepyc creates in the cache: 0700 or 02770, 0600 or 0660. */
mode_t trust_dir_mode(const struct trust *t);
mode_t trust_file_mode(const struct trust *t);

/*
 * One thing in the cache directory, by its stat (for a file, the fstat of
 * the descriptor opened with O_NOFOLLOW, so that what is checked is what
 * is read): 0, or 1 with `reason` set to "belongs to uid N, not to you (uid
 * M)..." style text, without a subject.
 */
int trust_stat_check(const struct trust *t, const struct stat *st, struct strbuf *reason);

/*
 * The cache directory `dir` and its subdirectory `sub` (NULL: none), and
 * every directory above `dir`.  With `create`, what is missing is created
 * (modes above), once what is above it passed the check; without, a
 * missing `dir` or `sub` is -1 with errno ENOENT.  0, 1 or -1 as above;
 * `reason` says "it belongs to...", "'DIR/sub' in it can be written by
 * ..." or "'/tmp/x' above it can be written by ...".
 */
int trust_cache_dir(const struct trust *t, const char *dir, const char *sub, int create,
		    struct strbuf *reason);

/*
 * mkdir -p `dir`: each directory created gets exactly `mode` (chmod after
 * mkdir).  0, or -1 with errno and `failed` (when not NULL) set to the
 * path that could not be made.
 */
int trust_mkdirs(const char *dir, mode_t mode, struct strbuf *failed);

#endif
