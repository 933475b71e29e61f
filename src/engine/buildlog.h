/*
 * buildlog.h - what the last run found fresh, so that the next one can
 * decide freshness from stat() alone (ninja's .ninja_log, git's index).
 *
 * A run that finds every pyc fresh spends its time opening and reading
 * pyc headers (and, for hash pycs, reading and hashing sources).  The build
 * log records, per pyc found fresh, the stat data of its source and of the
 * pyc and the header it holds; the next run with the same log trusts an
 * entry only when both files' stat data are still exactly what was
 * recorded:
 *
 *   source: dev, ino, size, mtime (ns), ctime (ns)  (the walk's stat)
 *   pyc:    dev, ino, size, mtime (ns), ctime (ns)  (one stat())
 *
 * Why that is sound: no user can set a file's ctime.  Every change of a
 * file's bytes or metadata (write, truncate, chmod, utime, rename over it,
 * a new inode at its path) sets its ctime to the current time, so a file
 * whose ctime and identity are as recorded has not changed since it was
 * recorded -- provided the change did not fall in the same timestamp tick
 * as the recorded ctime.  Hence an entry is trusted only when both ctimes
 * are more than BUILDLOG_RACY_NS older than the moment the recording run
 * started (before it stat'ed anything): a change after that moment gets a
 * later ctime (git's "racily clean" problem, solved by not trusting).  The
 * pycs a run writes are therefore not recorded by it; the next run checks
 * them by their headers and records them.  What this cannot see: the clock
 * set back, a file system that does not keep ctime (some FUSE or network
 * file systems, or one whose server's clock is more than 2 s behind), or
 * the raw device written.  `--no-build-log` does without it.  (Test hook:
 * PREPYC_TEST_RACY_NS=N replaces the 2 s, so that tests need not wait.)
 *
 * Where: DIR/buildlog/KEY in the cache directory (cachedir.h), KEY the
 * hex of a BLAKE2b-128 of what names the build (the working directory, the
 * PATH arguments, the target: buildlog_name()).  One log per build, not per
 * tree: read-only trees work, several roots are one build, another -b/-o
 * set simply finds no entries (the paths differ).  Written atomically
 * (temporary file + rename) with mode 0600; concurrent runs of one build:
 * the last rename wins, each log whole.  Read only when it is a regular
 * file owned by the user, not writable by group or others, with one link;
 * anything else -- missing, foreign, truncated, corrupt (a checksum covers
 * it all) -- is an empty log: the run reads headers, as without one.
 *
 * Format (little-endian):
 *
 *   log    = magic "PREPYCL\n" version:u32 (1) count:u32 start_ns:i64
 *            body_len:u64 entry{count} checksum:u64
 *   entry  = src:stat pyc:stat flags:u32 hlen:u32 header[16] path_len:u32 path
 *   stat   = dev:u64 ino:u64 size:u64 mtime_ns:i64 ctime_ns:i64
 *
 * checksum is SipHash-1-3 (key 0, 0) of every byte before it;
 * start_ns is when the recording run started (CLOCK_REALTIME); flags:
 * BUILDLOG_BODY_OK, the pyc's whole body was written or parsed by prepyc
 * (`check` needs it to skip parsing); header: the pyc's first hlen bytes.
 *
 * Calling sequence (plan.c, check.c):
 *
 *   struct buildlog *log = buildlog_open(path, start);   (NULL path: a log
 *                                                         that is not kept)
 *   on a few threads:
 *     if (buildlog_find(log, pyc, &e))                   recorded and trusted?
 *         buildlog_stat_equal(&e.src, &now) ...          the caller compares
 *     buildlog_record(log, pyc, &src, &pyc_st, hdr, hlen, flags);
 *   buildlog_close(log);        writes it if what was recorded differs
 *
 * Errors: none are reported (a log only makes a run faster); PREPYC_TRACE
 * says why a log was ignored or not written.  Threads: buildlog_find()
 * and buildlog_record() are safe from several threads.
 */
#ifndef BUILDLOG_H
#define BUILDLOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "strbuf.h"
#include "target.h"
#include "walk.h"

#define BUILDLOG_RACY_NS ((int64_t)2000000000)
#define BUILDLOG_HEADER_MAX 16

enum buildlog_flags {
	BUILDLOG_BODY_OK = 1 << 0,
};

struct buildlog_stat {
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
};

struct buildlog_entry {
	struct buildlog_stat src, pyc;
	uint32_t flags, hlen;
	unsigned char hdr[BUILDLOG_HEADER_MAX];
	size_t index; /* where buildlog_find() found it, for buildlog_keep() */
};

struct buildlog;

/*
 * The log file name for a build: DIR/buildlog/HEX, from the cache
 * directory `dir`, the working directory, the PATH arguments and the
 * target (its executable, cache tag, pycache prefix and magic number:
 * what decides where its pycs go and what they hold).  A new string, or
 * NULL (no log for this run; traced) when DIR/buildlog fails the cache's
 * ownership rule (trust_cache_dir(), trustdir.h; created 0700 when
 * missing): a log someone else could write could hide a stale pyc.
 */
char *buildlog_name(const char *dir, const char *const *paths, size_t npaths,
		    const struct target *t);

/*
 * Load the log at `path` (NULL: start empty and never write).  `start_ns`:
 * when this run started, before it stat'ed anything (source_list's
 * started_ns, CLOCK_REALTIME): recorded, it is what the next run's trust
 * is judged by.  Never fails.
 */
struct buildlog *buildlog_open(const char *path, int64_t start_ns);

/*
 * 1 with *out filled when `pyc` is recorded and trusted (see above); else
 * 0.  The log is mapped and its entries are decoded here, when looked up:
 * loading it costs no memory per entry.
 */
int buildlog_find(const struct buildlog *log, const char *pyc, struct buildlog_entry *out);

/* Record `pyc` as fresh with these stat data and header, for the log written at the end. */
void buildlog_record(struct buildlog *log, const char *pyc, const struct buildlog_stat *src,
		     const struct buildlog_stat *pyc_st, const unsigned char *hdr, size_t hlen,
		     unsigned flags);

/*
 * Record again, as it was, the entry buildlog_find() put in `e`: what
 * buildlog_record() does with the entry's own data, without looking the
 * path up again (a no-op keeps every entry).
 */
void buildlog_keep(struct buildlog *log, const struct buildlog_entry *e);

/* Write the log if what was recorded differs from what was loaded; free it. NULL is fine. */
void buildlog_close(struct buildlog *log);

/* The stat data of a stat result, and of a walked source. */
void buildlog_stat_of(struct buildlog_stat *out, const struct stat *st);
void buildlog_stat_of_source(struct buildlog_stat *out, const struct source *s);

int buildlog_stat_equal(const struct buildlog_stat *a, const struct buildlog_stat *b);

#endif
