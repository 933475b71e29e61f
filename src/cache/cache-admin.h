/*
 * cache-admin.h - looking after a cache directory as a whole: what
 * `prepyc cache stats|clear|prune` does (src/cli/cmd-cache.c prints it),
 * and the end-of-run upkeep of the disk store (eviction, the stats file).
 *
 * Every function takes the cache directory DIR, laid out as store-disk.h
 * says.  Only files of prepyc's names are ever removed: entries, its
 * temporary files, v1's directories when empty, DIR/stats and
 * DIR/CACHEDIR.TAG; anything else in DIR is someone else's.
 *
 * Concurrency: no locks; other processes may use the cache meanwhile.  An
 * entry another process removed first counts as gone but not as removed
 * by us; one published meanwhile may be missed by a scan.
 *
 * Errors: functions that report return -1 with the error printed
 * (error()); files that could not be removed are printed as they come and
 * counted in the result's `failed`, the rest is still done.
 * Memory: what a struct holds belongs to it (cache_runs_release()).
 */
#ifndef CACHE_ADMIN_H
#define CACHE_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"

struct strbuf;
struct trust;

#define CACHE_STATS_TAIL 16384 /* what is read of DIR/stats: its last lines */

/*
 * Whether DIR, and DIR/v1 when there is one, pass trustdir.h's rule with
 * `flags` (TRUST_SHARED or 0): 0, 1 with the reason in `why` ("it belongs
 * to..."), -1 with errno when DIR cannot be looked at.
 */
int cache_admin_trusted(const char *dir, unsigned flags, struct strbuf *why);

/* 1 when DIR holds a cache (DIR/v1 or DIR/stats exists, whatever it is), else 0. */
int cache_admin_exists(const char *dir);

/* What DIR/v1 holds. */
struct cache_usage {
	size_t entries;
	uint64_t bytes; /* the entries' st_size */
	size_t packs;   /* pack files, and the entries they hold (among `entries`) */
	size_t packed;
	size_t temps;   /* temporary files: runs in progress, or left by killed ones */
};

/* Count (and only count) what DIR/v1 holds: 0 (zeros when there is no DIR/v1), or -1. */
int cache_admin_usage(const char *dir, struct cache_usage *u);

/* One line of DIR/stats (store-disk.h). */
struct cache_run {
	long long when; /* Unix seconds */
	char *label;    /* owned */
	uint64_t hits, misses, stored, stored_bytes, evicted, max_size;
	uint64_t size;  /* the entries' bytes after this run's scan of the cache; 0: no scan */
	int has_remote; /* the run used remote stores: their counters (the remote_* fields) */
	struct cache_remote_stats remote;
};

struct cache_runs {
	struct cache_run *v; /* oldest first */
	size_t nr;
	uint64_t last_max_size; /* the bound of the last run that recorded one; 0: none */
};

/*
 * The last `max` runs recorded in DIR/stats (among the lines of its last
 * 16 KiB: lines that do not parse are skipped), and last_max_size over all
 * of them.  0, or -1 with errno when there is no stats file to read
 * (`runs` empty; nothing printed).
 */
int cache_admin_read_runs(const char *dir, size_t max, struct cache_runs *runs);
void cache_runs_release(struct cache_runs *runs);

/* The bound recorded by the last run in DIR/stats, else CACHE_DEFAULT_MAX_SIZE. */
uint64_t cache_admin_last_max_size(const char *dir, int *recorded);

/*
 * Append `r` (its `when`, label and counters) as one line to DIR/stats,
 * with one write() on an O_APPEND descriptor; past 256 KiB the file is
 * rewritten (atomically) with its last 64 KiB.  The file is made in the
 * modes of `t` (trustdir.h), and left alone when `t` does not trust it.
 * Failures are traced only: the file is a courtesy.
 */
void cache_admin_append_run(const char *dir, const struct cache_run *r, const struct trust *t);

/*
 * The end-of-run upkeep of a run that stored `stored_bytes` (into a cache
 * it found empty: `fresh`): remove
 * temporary files older than an hour and, when the entries exceed
 * `max_size`, the least recently used ones down to 90% of it (so that the
 * next runs do not each evict a little).  Returns the number of entries
 * removed; *size is the entries' bytes left, or 0 when it did not scan.
 *
 * Scanning reads every entry's inode (a second per 100,000 entries), so it
 * is skipped while it cannot find too much: the cache was fresh and
 * `stored_bytes` is within `max_size`; or DIR/stats shows that a run
 * recorded the size its scan found (cache_run.size) less than
 * CACHE_SCAN_EVERY seconds ago, and that size plus the bytes every run
 * stored since, plus `stored_bytes`, is within `max_size`.  The estimate
 * only errs upwards (entries removed by others, concurrent runs counted
 * twice), which costs a scan, never an overfull cache for long.
 */
size_t cache_admin_trim(const char *dir, uint64_t max_size, uint64_t stored_bytes, int fresh,
			uint64_t *size);

/* Seconds after which a run scans the cache whatever DIR/stats says. */
#define CACHE_SCAN_EVERY 3600

struct cache_clear_result {
	size_t entries; /* removed, and their bytes: */
	uint64_t bytes;
	size_t temps;   /* temporary files removed, in DIR/v1/xx and DIR */
	size_t failed;  /* files that could not be removed (printed) */
};

/*
 * Remove every entry, every temporary file, v1's directories if that
 * leaves them empty, DIR/stats and DIR/CACHEDIR.TAG.  0 with `res` filled
 * in, or -1 when DIR/v1 cannot be read (nothing removed).
 */
int cache_admin_clear(const char *dir, struct cache_clear_result *res);

struct cache_prune_result {
	size_t damaged;         /* entries that failed a lookup's checks, removed */
	size_t evicted;         /* least recently used entries removed */
	uint64_t removed_bytes; /* of both (the damaged ones' even when removing failed) */
	size_t temps;           /* temporary files older than an hour, removed */
	size_t left;            /* entries left, and their bytes: */
	uint64_t left_bytes;
	size_t failed;          /* files that could not be removed (printed) */
};

/*
 * Check every entry as a lookup does (without touching it) and remove the
 * damaged ones, temporary files older than an hour, then the least
 * recently used entries down to `max_size`.  0 with `res` filled in, or -1
 * when DIR/v1 cannot be read.
 */
int cache_admin_prune(const char *dir, uint64_t max_size, struct cache_prune_result *res);

#endif
