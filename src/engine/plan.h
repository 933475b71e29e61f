/*
 * plan.h - what a run does for one target: which files, which pycs, which
 * co_filename, and which of them are stale.
 *
 * Every entry of the walk (walk.h) that is not deeper than the target's
 * compileall depth becomes a `struct file`, in walk order (the order
 * compileall prints in).  A file that compileall would compile (a .py
 * source not excluded by -x or -e) is a candidate, FS_PENDING; each of its
 * optimization levels becomes a `struct item` with its pyc path.  Levels
 * are sorted(set(-o)) with -1 the target's own level; levels that share a
 * pyc path (-b, or -1 equal to a given level) give one item, compiled at
 * the last of them.  Items are grouped by file, in level order, from
 * f->first.
 *
 * Calling sequence (engine.c; `prepyc check` can stop after plan_build()):
 *
 *   struct plan p = PLAN_INIT;
 *   plan_build(&p, &opts, t, list);      files, dfiles, items, pyc paths
 *   plan_freshness(&p, t, inval, log);   unless -f: fresh files -> FS_FRESH
 *   plan_mark_duplicates(&p, force);     a file reached twice writes once
 *   plan_drop_fresh(&p);                 items of fresh files go; f->pycs
 *   plan_order(&p);                      largest first (the pool's order)
 *   ... compile ...
 *   plan_release(&p);
 *
 * A checker walks the candidates after plan_build():
 *
 *   for each f in p.files[0..nfiles) with f->state == FS_PENDING:
 *       for each it in p.items[f->first .. f->first + f->nlevels):
 *           it->pyc, it->opt, f->dfile ? f->dfile : f->src->path
 *
 * Errors: planning never fails (an unreadable pyc is stale).  The files
 * point into the source list, which must outlive the plan.
 *
 * Threads: plan_build() fills the files and items, and plan_freshness()
 * reads pycs, on a few threads (parallel.h); the rest runs on the caller's.
 */
#ifndef PLAN_H
#define PLAN_H

#include <stddef.h>

#include "buildlog.h"
#include "cache.h"
#include "cofilename.h"
#include "pycwrite.h"
#include "strbuf.h"
#include "target.h"
#include "walk.h"

#define PLAN_MAX_LEVELS 16

enum fstate {
	FS_SKIP,    /* nothing to do or print: directories, -x, -e, not .py */
	FS_FRESH,   /* every pyc up to date */
	FS_PENDING, /* a candidate; after planning: being compiled */
	FS_DONE,    /* compiled and written */
	FS_FAILED,
};

struct file {
	const struct source *src;
	char *dfile;     /* co_filename; NULL means src->path */
	char *note;      /* compileall's stripdir note, printed before the file */
	enum fstate state;
	int nlevels;     /* items of this file */
	size_t first;    /* its first item (until plan_drop_fresh()) */
	struct file *writer; /* a file reached twice: the occurrence whose pycs are kept */
	char **pycs;     /* per level, in level order, owned by the items (plan_drop_fresh()) */

	/* the run's: see engine.c */
	int dispatched;  /* frames sent, or items taken from the cache */
	int pending;     /* items not finished */
	char *pyerror;   /* the compileall text after "*** " (the first failure) */
	struct strbuf warnings; /* the warnings module's lines, printed with the file's (compileall) */
	struct strbuf printed;  /* what its worker printed, not reported yet */
	struct pyc_input in; /* the source as read for compiling, shared by its levels */
	int loaded;      /* in.data holds the source */
	unsigned gen;    /* how many times it was read */
};

struct item {
	struct file *f;
	int opt;    /* the optimization level compiled with */
	char *pyc;

	/* the bytecode cache */
	unsigned char key[CACHE_KEY_LEN];
	unsigned char keyed;  /* key computed (from the source read `key_gen`) */
	unsigned key_gen;
	unsigned char hit;    /* written from the cache */
	struct strbuf warn;   /* its compile's warnings, or a hit's entry extra (cachephase.h) */
};

struct plan {
	struct file *files;
	size_t nfiles, falloc;
	struct item *items;
	size_t nitems, ialloc;
	size_t nfresh;       /* files found fresh */
};

#define PLAN_INIT { NULL, 0, 0, NULL, 0, 0, 0 }

struct plan_opts {
	int maxlevels;        /* entries deeper are left out; -1: the target's compileall default */
	const int *levels;    /* -o, -1 being the target's own level; 0 of them: just -1 */
	int nlevels;          /* at most PLAN_MAX_LEVELS */
	int legacy;           /* -b: SOURCE.pyc beside the source */
	struct cofilename_opts names;  /* -d, -s, -p */
	const char *limit_sl_dest;     /* -e DIR, or NULL */
	const unsigned char *rx_skip;  /* per entry of the list: excluded by -x; or NULL */
};

/* Fill `p` (PLAN_INIT) with the files of `list` and the items of its candidates. */
void plan_build(struct plan *p, const struct plan_opts *o, const struct target *t,
		const struct source_list *list);

/*
 * Mark FS_FRESH every candidate whose every pyc has the header a compile
 * now would write (`inval`, enum invalidation; for hash pycs this reads
 * and hashes the source).  Not called with -f.  With a build log
 * (buildlog.h; NULL: none), a file whose pycs' entries are trusted and
 * whose source and pycs have exactly the recorded stat data is fresh
 * without reading anything; every pyc found fresh is recorded in it.
 */
void plan_freshness(struct plan *p, const struct target *t, int inval, struct buildlog *log);

/*
 * A file reached twice (a path given twice, or inside two arguments) is
 * compiled each time for its messages, but its pycs are written by one
 * occurrence, f->writer: the first, or with `force` the last (compileall
 * rewrites the pyc each time).
 */
void plan_mark_duplicates(struct plan *p, int force);

/* Drop the items of fresh files; fill f->pycs and f->pending; count p->nfresh. */
void plan_drop_fresh(struct plan *p);

/*
 * Sort the items largest source first (ties: walk order, then level).
 * Test hook: PREPYC_TEST_SHUFFLE=SEED shuffles them instead, so that the
 * tests can show that a pyc's bytes do not depend on what its worker
 * compiled before.
 */
void plan_order(struct plan *p);

void plan_release(struct plan *p);

#endif
