/*
 * cache-logs.h - the build and walk logs a cache directory keeps
 * (DIR/buildlog: buildlog.h, walklog.h), looked after as a whole, so that
 * they do not pile up: one log is made per build (per working directory,
 * PATH arguments and target), and a machine that builds in a new
 * directory each time -- temporary checkouts, tox environments -- would
 * otherwise keep one more log (up to a few MB) per build, for ever.
 *
 * A log is DIR/buildlog/HEX or DIR/buildlog/walk-HEX, HEX 32 lowercase hex
 * digits; only files of those names are ever removed.  A run that reads a
 * log refreshes its mtime at most hourly (logfile.c), so a log's mtime
 * says when its build last ran.  Kept: the logs used within
 * CACHE_LOGS_MAX_AGE, and of those at most CACHE_LOGS_KEEP, the most
 * recently used.  Removing a log never costs more than the next run of its
 * build reading pyc headers again.
 *
 * Calling sequence: cache_logs_prune(dir, mode, &res) -- from `prepyc
 * cache stats` (count), `clear` (all), `prune`, and a run that wrote a new
 * log (logfile.c).
 *
 * Errors: a log that cannot be removed is counted in res.failed, and
 * printed when `mode` says so; a missing DIR/buildlog holds no logs.
 * Concurrency: a log another process removes or replaces meanwhile is
 * skipped; removing the log of a run in progress only makes its next run
 * slower.  Thread-safe.
 */
#ifndef CACHE_LOGS_H
#define CACHE_LOGS_H

#include <stddef.h>
#include <stdint.h>

#define CACHE_LOGS_MAX_AGE (30 * 24 * 3600) /* seconds since a log was last used */
#define CACHE_LOGS_KEEP 100                  /* logs kept, the most recently used */

enum cache_logs_mode {
	CACHE_LOGS_COUNT,        /* remove nothing */
	CACHE_LOGS_PRUNE,        /* the unused and the extra ones, errors printed */
	CACHE_LOGS_PRUNE_QUIET,  /* as PRUNE, errors only counted (a run's upkeep) */
	CACHE_LOGS_ALL,          /* every log, errors printed */
};

struct cache_logs_result {
	size_t removed;    /* logs removed, and their bytes */
	uint64_t removed_bytes;
	size_t left;       /* logs left, and their bytes */
	uint64_t left_bytes;
	size_t failed;     /* logs that could not be removed */
};

/* Count, and remove as `mode` says, the logs in DIR/buildlog. */
void cache_logs_prune(const char *dir, enum cache_logs_mode mode, struct cache_logs_result *res);

#endif
