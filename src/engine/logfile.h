/*
 * logfile.h - what the build log and the walk log share (buildlog.h,
 * walklog.h): where a log lives, how one is read, and the hash of the
 * tables they and check/inventory keep by path.
 *
 * A log file is an envelope: MAGIC (8 bytes), version (le32), count of
 * entries (le32), the recording run's start in ns (le64), the body's length
 * (le64), the body, and a SipHash-1-3 of all that precedes it (le64).
 *
 * Calling sequence:
 *
 *	char *name = logfile_name(dir, "walk-", id.buf, id.len, "walk log");
 *	size_t len;
 *	const char *data = name ? logfile_map(name, LOGFILE_HEAD + 8, max, "walk log", &len)
 *				: NULL;
 *	struct logfile_head h;
 *	if (data && logfile_parse_head(data, len, MAGIC, VERSION, &h) == 0)
 *		... entries at data + LOGFILE_HEAD, h.body bytes ...
 *	logfile_unmap(data, len);
 *	struct strbuf sb = STRBUF_INIT;
 *	logfile_begin(&sb, MAGIC, VERSION, count, start_ns);
 *	... append the entries ...
 *	logfile_write(&sb, name, "walk log");  // releases sb
 *	size_t slot = path_hash(path, strlen(path)) & (nslots - 1);
 *
 * Errors: none reach the user; a log that cannot be had is traced and is
 * NULL, and the run decides without it.  Returned strings are the caller's.
 */
#ifndef LOGFILE_H
#define LOGFILE_H

#include <stddef.h>
#include <stdint.h>

struct strbuf;

#define LOGFILE_HEAD 32 /* magic, version, count, start_ns, body length */
#define LOGFILE_TOUCH_AFTER 3600 /* seconds: a log read refreshes an mtime older than this */

struct logfile_head {
	uint32_t count;    /* entries, as the writer said: bound them by the body's size */
	int64_t start_ns;  /* when the recording run started */
	uint64_t body;     /* the body's length */
};

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
 * traced, naming `what`).  A read-only mapping of the file (as git maps
 * its index: a log is replaced by rename(), never written in place, so the
 * mapping stays whole), released with logfile_unmap().  A log read
 * gets its mtime refreshed when older than LOGFILE_TOUCH_AFTER: its build
 * ran (cache-logs.h keeps the logs of the builds that run).
 */
const char *logfile_map(const char *path, size_t min, size_t max, const char *what,
			size_t *len);

/* Release what logfile_map() returned (NULL is fine). */
void logfile_unmap(const char *data, size_t len);

/*
 * Check the envelope of data[0..len): magic, version, the body's length
 * and the checksum.  0 with *h filled, or -1 (not a whole log of this kind).
 */
int logfile_parse_head(const void *data, size_t len, const char magic[8], uint32_t version,
		       struct logfile_head *h);

/* Start `sb` (empty) with the envelope's head; the body follows. */
void logfile_begin(struct strbuf *sb, const char magic[8], uint32_t version, uint32_t count,
		   int64_t start_ns);

/*
 * Finish the log begun in `sb` (its body's length, the checksum), write it
 * to `path` atomically with mode 0600 (a failure is traced, naming `what`:
 * a log can only make a run faster) and release `sb`.  A log that did
 * not exist before is one more in DIR/buildlog: the unused ones are then
 * removed (cache_logs_prune(), cache-logs.h).
 */
void logfile_write(struct strbuf *sb, const char *path, const char *what);

/* A path's hash for in-memory tables, a word at a time (a tree's paths share long prefixes). */
uint64_t path_hash(const char *s, size_t len);

#endif
