/*
 * run.h - the state of one engine run, shared by its stages.
 *
 * engine_run() (engine.c) owns a `struct run` for one target and hands it
 * to the stages in turn: the plan (plan.h), the cache phase
 * (cachephase.h), the compile stage (compilestage.h); each file's end goes
 * through the functions below, which keep the counts, write the pycs and
 * tell the reporter (report.h).
 *
 * A file's life: FS_PENDING with `pending` items; each item ends with
 * run_item_done() (written, failed, or taken from the cache); the last one
 * makes the file final (FS_DONE or FS_FAILED, --hardlink-dupes applied)
 * and tells the reporter.  The first failure of a file is its error
 * (run_file_error()); later ones are dropped, as compileall stops at the
 * first.
 *
 * Threads: run_read_source(), run_item_key() and run_write_pyc() with
 * report == 0 are thread-safe for distinct files (the cache phase); the
 * rest runs on the engine's thread.
 */
#ifndef RUN_H
#define RUN_H

#include <stddef.h>
#include <sys/types.h>

#include "engine.h"
#include "plan.h"
#include "progress.h"
#include "proto.h"
#include "pycwrite.h"
#include "report.h"
#include "strbuf.h"

struct run {
	const struct engine_opts *o;
	const struct target *t;
	int inval;                  /* enum invalidation, resolved */
	mode_t umask;               /* the process's, read once */
	struct plan plan;
	struct reporter rep;
	struct progress progress;
	struct strbuf identity;     /* the target's part of every cache key (cachekey.h) */
	struct pycwrite_canon canon;
	int canon_warned;
	size_t next;                /* the next item to hand to the pool */
	size_t compiled, failed, done;
	size_t from_cache;          /* files whose every pyc came from the cache */
	/* PREPYC_TRACE's profile of the compile stage: CPU seconds of the engine's thread */
	struct run_profile {
		int on;
		double read, canon, write, store;
	} prof;
};

/*
 * Record a failure of `f` (the first one wins): `pyerror` (taken) is what
 * compileall prints after "***", `fmt` prepyc's own message.
 */
void run_file_error(struct run *r, struct file *f, char *pyerror, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* One item of `f` is finished; the last makes the file final. */
void run_item_done(struct run *r, struct file *f);

/* Read `f`'s source into f->in (pycwrite_read_source()); counts f->gen.  Reports nothing. */
enum pyc_read_status run_read_source(const struct run *r, struct file *f, int *err);

/* Read `f` once for all its levels (sets f->loaded); -1 after run_file_error(). */
int run_load_file(struct run *r, struct file *f);

/* The co_filename `f` is compiled with. */
const char *run_dfile(const struct file *f);

/*
 * The cache key of `it` from its file's source as read now (sets keyed,
 * key_gen): relocatable or path-specific as cache_key_relocatable() says.
 */
void run_item_key(const struct run *r, struct item *it);

/*
 * Report a compiler warning of `f` (proto.h's parts) as compileall prints
 * it, naming the file `filename` (len bytes): with the source line when the
 * warning is at the dfile and the dfile exists (where linecache looks).
 */
void run_warning(struct run *r, struct file *f, const struct proto_warning *w,
		 const char *filename, size_t len);

/*
 * Write `it`'s pyc holding `code`.  0, or -1: with `report`, after
 * run_file_error() (compileall's words for py_compile's refusals and
 * OSErrors); without, silently (the cache phase: the compile will say why).
 */
int run_write_pyc(struct run *r, struct item *it, const void *code, size_t len, int report);

#endif
