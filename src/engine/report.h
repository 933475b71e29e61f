/*
 * report.h - what a run tells the user, behind one small interface.
 *
 * The stages say what happened (a file failed, the compiler warned, a file
 * is final, the run is over); a reporter decides what is printed, where
 * and when.  One implementation per output style (ninja's Status and
 * StatusPrinter):
 *
 *   report-concise.c     prepyc's own: errors and warnings on stderr as
 *                        they come ("prepyc: error: ..."), one summary line
 *                        on stdout;
 *   report-compileall.c  compileall's own lines on stdout ("Listing ...",
 *                        "Compiling ...", "*** ..."), each file's warnings
 *                        with its lines, in the order a serial compileall
 *                        prints them, whatever order the pool finishes in.
 *
 * Calling sequence: the engine picks one with report_concise_init() or
 * report_compileall_init() (the only place that knows the styles), then
 * calls rep->ops->... as the run goes, and ops->finish() once when the run
 * completed (not after an interruption or a pool failure).  The reporter
 * reads the plan's files (state, writer, note, pyerror, warnings) and
 * never changes them but for the warnings it collects.
 *
 * keep_warnings_env is the reporter's answer to "does this style honour
 * the caller's PYTHONWARNINGS?" (compileall does: PYTHONWARNINGS=error
 * fails a file): the engine then keeps it in the workers' environment
 * (POOL_KEEP_WARNINGS_ENV) and in the cache key (cachekey.h).
 *
 * Everything runs on the engine's thread; a reporter prints nothing else
 * to stderr without progress_clear() first.  A reporter owns nothing.
 */
#ifndef REPORT_H
#define REPORT_H

#include <stddef.h>

#include "plan.h"
#include "progress.h"
#include "target.h"

struct reporter;

/* The counts of a completed run. */
struct report_summary {
	size_t compiled, uptodate, failed;
	size_t from_cache;   /* files whose every pyc came from the cache */
	int workers;         /* workers started (0 when nothing was compiled) */
	double seconds;
};

struct reporter_ops {
	/* `f` failed outside the compiler (reading, writing, a worker's death): prepyc's words */
	void (*file_error)(struct reporter *rep, const struct file *f, const char *msg);
	/* the compiler's error `text` for `f`, its first failure (compileall's words) */
	void (*compile_error)(struct reporter *rep, const struct file *f, const char *text);
	/* a warning the compiler printed for `f` (live, or replayed from the cache) */
	void (*warning)(struct reporter *rep, struct file *f, const char *text, size_t len);
	/*
	 * What the interpreter itself printed (its stdout and stderr: C-level
	 * messages, a crash's traceback) while compiling `f`, after f's own
	 * error if any and before file_final(); or with f NULL, what a worker
	 * printed between files.  Whole: nothing a worker prints cuts a line.
	 */
	void (*printed)(struct reporter *rep, struct file *f, const char *text, size_t len);
	/* every level of `f` is done (f->state FS_DONE or FS_FAILED) */
	void (*file_final)(struct reporter *rep, const struct file *f);
	/* the run completed */
	void (*finish)(struct reporter *rep, const struct report_summary *s);
};

struct reporter {
	const struct reporter_ops *ops;
	int keep_warnings_env;
	int quiet;                 /* 1: errors only; 2: nothing */
	int force;                 /* -f (a file reached twice is shown each time) */
	const struct plan *plan;
	const struct target *t;
	struct progress *progress;
	size_t printed;            /* compileall: files printed, in walk order */
};

/* Both set every field of `rep`; `plan`, `t` and `progress` must outlive it. */
void report_concise_init(struct reporter *rep, int quiet, int force, const struct plan *plan,
			 const struct target *t, struct progress *progress);
void report_compileall_init(struct reporter *rep, int quiet, int force, const struct plan *plan,
			    const struct target *t, struct progress *progress);

#endif
