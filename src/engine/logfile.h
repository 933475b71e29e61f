/*
 * logfile.h - what the build log and the walk log share (buildlog.h,
 * walklog.h): where a log lives, how one is read, and the hash of the
 * tables they and check/inventory keep by path.
 *
 * Calling sequence:
 *
 *	char *name = logfile_name(dir, "walk-", id.buf, id.len, "walk log");
 *	size_t len;
 *	char *data = name ? logfile_read(name, min, max, "walk log", &len) : NULL;
 *	...
 *	size_t slot = path_hash(path, strlen(path)) & (nslots - 1);
 *
 * Errors: none reach the user; a log that cannot be had is traced and is
 * NULL, and the run decides without it.  Returned strings are the caller's.
 */
#ifndef LOGFILE_H
#define LOGFILE_H

#include <stddef.h>
#include <stdint.h>

/*
 * DIR/buildlog/PREFIXHEX, HEX the BLAKE2b-128 of id[0..idlen) (what names
 * the build or walk), or NULL (traced, naming `what`) when DIR/buildlog
 * fails the cache's ownership rule (trust_cache_dir(), trustdir.h; made
 * 0700 when missing): a log someone else could write could hide a stale
 * pyc.  A new string.
 */
char *logfile_name(const char *dir, const char *prefix, const char *id, size_t idlen,
		   const char *what);

/*
 * The bytes of the log at `path` (their number in *len), if it is a
 * regular file of ours, not writable by group or others, with one link,
 * of min..max bytes; else NULL (a missing log silently, anything else
 * traced, naming `what`).  A new buffer.
 */
char *logfile_read(const char *path, size_t min, size_t max, const char *what, size_t *len);

/* A path's hash for in-memory tables, a word at a time (a tree's paths share long prefixes). */
uint64_t path_hash(const char *s, size_t len);

#endif
