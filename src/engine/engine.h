/*
 * engine.h - compile a walked tree for one target: plan, compile, write, report.
 *
 * Calling sequence: walk the paths (walk.h), probe the targets (target.h),
 * then engine_run() once per target with the same list.  The engine decides
 * per file what compileall of that target's version would do with it (the
 * co_filename from -d/-s/-p, -x, -e, the optimization levels, the pyc
 * paths), keeps the files whose pycs are not fresh, compiles them on a pool
 * of workers, largest first, writes every pyc atomically, and reports.
 * Its stages, one file each: plan.h (with cofilename.h), cachephase.h,
 * compilestage.h, pycwrite.h, report.h (run.h is their shared state);
 * engine.c only strings them together.  The styles (report.h):
 *
 *   STYLE_CONCISE     prepyc's own: errors and warnings on stderr as they
 *                     come, one summary line on stdout;
 *   STYLE_COMPILEALL  compileall's own lines on stdout ("Listing ...",
 *                     "Compiling ...", "*** ..."), in the order a serial
 *                     compileall prints them, whatever order the pool
 *                     finishes in.
 *
 * Errors in one file never stop the others.  engine_run() returns 0 when
 * the run completed (setting *any_failed when a file failed), -1 when it
 * could not run at all (message printed), -2 when interrupted by a signal
 * (see pool_interrupt()).
 */
#ifndef ENGINE_H
#define ENGINE_H

#include "target.h"
#include "cache.h"
#include "walk.h"

struct pool_ops;

enum engine_style {
	STYLE_CONCISE,
	STYLE_COMPILEALL,
};

/* The invalidation modes; the values are the pyc header's flags. */
enum invalidation {
	INVAL_DEFAULT = -1, /* checked-hash when SOURCE_DATE_EPOCH is set (3.7+), else timestamp */
	INVAL_TIMESTAMP = 0,
	INVAL_UNCHECKED_HASH = 1,
	INVAL_CHECKED_HASH = 3,
};

#define ENGINE_MAX_LEVELS 16 /* = PLAN_MAX_LEVELS */
#define ENGINE_DEFAULT_TIMEOUT 120

/*
 * What runs the compiles: pool_run()'s signature (pool.h) with the runner
 * itself first, so that a fake can keep its state in `data`.  It must call
 * ops->next() until it returns 0 and answer every frame it took with
 * ops->reply() (a code or an error, after any warnings) or ops->failed().
 * NULL in engine_opts means the worker pool (pool_run()); the unit tests
 * put a fake in its place (ninja's FakeCommandRunner).
 */
struct runner {
	int (*run)(const struct runner *self, const struct target *t, int nworkers,
		   const struct pool_ops *ops, void *ctx, unsigned flags, double timeout);
	void *data;
};

struct engine_opts {
	enum engine_style style;
	int force;
	int quiet;          /* 1: errors only; 2: nothing */
	int legacy;         /* -b: SOURCE.pyc beside the source */
	int hardlink_dupes;
	int jobs;           /* workers; 0: one per core */
	int maxlevels;      /* -1: the target's compileall default */
	const char *ddir, *stripdir, *prependdir;
	const char *limit_sl_dest;
	int levels[ENGINE_MAX_LEVELS]; /* -o; -1 is the target's own -O level */
	int nlevels;                   /* 0: just -1 */
	int invalidation;              /* enum invalidation */
	const unsigned char *rx_skip;  /* per entry of the list: excluded by -x; or NULL */
	int canonical;                 /* write the canonical form of the code (ARCHITECTURE.md) */
	struct cache *cache;           /* the bytecode cache, or NULL */
	int timeout;                   /* seconds per file before its worker is killed; 0: none */
	const struct runner *runner;   /* NULL: the worker pool */
	double started;                /* when the run began (now_seconds()): the summary's
					  time counts from it; 0: from engine_run() */
	size_t walk_failed;            /* PATHs missing, directories not listed: counted failed */
	const char *log_dir;           /* the cache directory the build log is in (buildlog.h),
					  or NULL: no build log */
	const char *const *log_paths;  /* the PATH arguments, which name the build with the target */
	size_t log_npaths;
};

#define ENGINE_OPTS_INIT { .style = STYLE_CONCISE, .maxlevels = -1, \
			   .invalidation = INVAL_DEFAULT, .canonical = 1, \
			   .timeout = ENGINE_DEFAULT_TIMEOUT }

int engine_run(const struct engine_opts *o, const struct target *t, const struct source_list *list,
	       int *any_failed);

/* The invalidation mode a run will use for `t` (resolving INVAL_DEFAULT). */
int engine_invalidation(const struct engine_opts *o, const struct target *t);

#endif
