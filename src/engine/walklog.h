/*
 * walklog.h - what the last walk listed, so that the next one need not
 * list a directory that has not changed (git's untracked cache).
 *
 * Listing a directory is four system calls (open, two getdents, close);
 * a tree of 5,000 directories spends most of a no-op's kernel time there.
 * The walk log records, per directory listed, its stat data and the names
 * (with their d_type) the walk looked at; the next walk stat()s the
 * directory and, when the log has an entry for it that is trusted and has
 * exactly those stat data, takes the names from the log: one system call
 * instead of four.  Every name is then examined as if it had been read
 * (a .py is stat()ed for its size and mtime, as always).
 *
 * Why that is sound: adding, removing or renaming a name in a directory
 * sets its mtime and ctime (POSIX), and no user can set a ctime; a
 * directory whose identity and ctime are as recorded holds the same names
 * of the same types.  The race is the build log's (buildlog.h): an entry
 * is trusted only when the directory's ctime is more than
 * BUILDLOG_RACY_NS older than the moment the recording walk started, and
 * the directory is stat()ed before it is listed.  A file system mounted on
 * a subdirectory changes no ctime, but the subdirectory is stat()ed by its
 * path and its stat data (device, inode) are then another directory's.
 *
 * Where: DIR/buildlog/walk-KEY beside the build logs (same ownership rule,
 * same reading rules: a regular file of the user's, mode 0600, one link,
 * whole and checksummed, else empty), KEY a BLAKE2b-128 of the working
 * directory, the PATH arguments and the walk's flags.  Written atomically
 * when what was recorded differs from what was loaded.
 *
 * Format (little-endian):
 *
 *   log   = magic "PREPYCW\n" version:u32 (2) count:u32 start_ns:i64
 *           body_len:u64 dir{count} checksum:u64
 *   dir   = stat nnames:u32 path_len:u32 names_len:u32 path names
 *   stat  = dev:u64 ino:u64 size:u64 mtime_ns:i64 ctime_ns:i64
 *   names = (d_type:u8 name NUL){nnames}       names_len bytes
 *
 * checksum is SipHash-1-3 (key 0, 0) of every byte before it.
 *
 * Calling sequence (walk.c through walk_path_log(), driver.c, cmd-check.c):
 *
 *   char *name = walklog_name(dir, paths, npaths, flags);   (NULL: none)
 *   struct walklog *log = walklog_open(name);      (or walklog_open_cache())
 *   on a few threads, per directory:
 *     stat(dir, &st); walklog_find(log, dir, &st, &names)?   names to replay?
 *     ... else list it, then walklog_record(log, dir, &st, names, len, n);
 *   walklog_close(log, start_ns);
 *
 * Errors: none are reported (a log only makes a run faster); PREPYC_TRACE
 * says why a log was ignored or not written.  Threads: walklog_find() and
 * walklog_record() are safe from several threads.
 */
#ifndef WALKLOG_H
#define WALKLOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct walklog;

/* A directory's listing as recorded: nnames entries of (d_type:u8 name NUL). */
struct walklog_dir {
	const unsigned char *names;
	size_t len, nnames;
};

/*
 * The walk log file for a walk of `paths` from the working directory with
 * `flags` (walk.h), in the cache directory `dir`: a new string, or NULL
 * (traced) when DIR/buildlog fails the cache's ownership rule.
 */
char *walklog_name(const char *dir, const char *const *paths, size_t npaths, unsigned flags);

/* Load the log at `path` (NULL: an empty log never written).  Never fails. */
struct walklog *walklog_open(const char *path);

/*
 * The walk log of this walk in the cache directory `opt_dir` resolves to
 * (cache_dir_resolve(), cachedir.h; NULL: the default): walklog_open() of
 * walklog_name(), or NULL when there is no such directory or it fails the
 * ownership rule.
 */
struct walklog *walklog_open_cache(const char *opt_dir, const char *const *paths, size_t npaths,
				   unsigned flags);

/*
 * 1 with the recorded listing of directory `dir` in *out (pointing into
 * the mapped log, valid until walklog_close()), if the log has one that is
 * trusted and whose stat data are exactly `st`'s (its stat(), taken before
 * this call); else 0.  Marks it as recorded again by this walk.
 */
int walklog_find(struct walklog *log, const char *dir, const struct stat *st,
		 struct walklog_dir *out);

/*
 * Record the listing of `dir` (names: nnames entries of d_type:u8 name NUL,
 * `len` bytes) read after `st` was taken.
 */
void walklog_record(struct walklog *log, const char *dir, const struct stat *st,
		    const unsigned char *names, size_t len, size_t nnames);

/*
 * Write the log if this walk recorded something new or left something
 * out, with `start_ns` (when this walk started, before it stat()ed
 * anything: source_list's started_ns) for the next walk's trust; free it.
 * NULL is fine.
 */
void walklog_close(struct walklog *log, int64_t start_ns);

#endif
