/*
 * check.h - is a walked tree fully and freshly compiled for its targets?
 * The library behind `prepyc check` (src/cli/cmd-check.c parses, probes,
 * walks and prints; check-report.h prints the result).
 *
 * Calling sequence, once the paths are walked with WALK_PYCACHE (walk.h)
 * and the targets probed (target.h):
 *
 *   struct check_result c = CHECK_RESULT_INIT;
 *   check_tree(&c, &opts, targets, ntargets, &list, skips);
 *   ... c.v[0..c.nr), c.inv, c.counts, check_problems(&c, strict) ...
 *   check_release(&c);
 *
 * check_tree() gives one verdict per pyc the engine's plan says a source
 * should have (plan_build(), plan.h: the files, levels and pyc paths
 * compile would write, without its freshness step), judged by
 * verify_pyc() (verify.h).  The sources are those of the list within each
 * target's recursion depth and not excluded by that target's -x (skips[k],
 * one byte per list entry, or NULL); levels are compile's: sorted(set(-o)),
 * -1 being the target's own level, levels sharing a pyc (-b) counted once
 * at the last of them.  The pycs are verified on a few threads
 * (parallel.h).  The tree's orphan and sourceless pycs are in c.inv
 * (inventory.h).
 *
 * With o->bundle the list is a bundle's (bundle_load(), bundle.h) and the
 * pycs are judged by bundle_verify() as they will arrive.
 *
 * With a build log (o->log_dir, buildlog.h; the one `compile` keeps for
 * the same PATHs and target), a pyc whose trusted entry says its body was
 * parsed (BUILDLOG_BODY_OK), whose recorded header is ok for the source
 * and whose source and pyc have exactly the recorded stat data is ok
 * without being read: its bytes are the ones judged ok before (the ctime
 * argument of buildlog.h), and so is the source; every pyc found ok is
 * recorded with BUILDLOG_BODY_OK.
 *
 * `check --import` is check-import.h's.
 *
 * Ownership: the result points into `list` and `targets`, which must
 * outlive it; the pyc paths are its own.  Errors: check_tree() cannot
 * fail (an unreadable pyc is a verdict).
 */
#ifndef CHECK_H
#define CHECK_H

#include <stddef.h>

#include "engine.h"
#include "inventory.h"
#include "target.h"
#include "verify.h"
#include "walk.h"

struct bundle;

struct check_opts {
	int levels[ENGINE_MAX_LEVELS]; /* -o; -1 is the target's own -O level */
	int nlevels;                   /* 0: the target's own level */
	int legacy;                    /* -b: SOURCE.pyc beside the source */
	int want_mode;                 /* the invalidation mode required (0, 1, 3), or -1: any */
	int recursion;                 /* -r N; -1 when not given */
	int no_recurse;                /* -l */
	const struct bundle *bundle;   /* check BUNDLE: the archive read; NULL for a tree */
	const char *log_dir;           /* the build log's cache directory (buildlog.h), or NULL */
	const char *const *log_paths;  /* the PATH arguments, naming the build */
	size_t log_npaths;
};

#define CHECK_OPTS_INIT { .want_mode = -1, .recursion = -1 }

struct check_verdict {
	const struct source *src;
	const struct target *t;
	int level;
	char *pyc;
	enum pyc_status status;
	char *detail;  /* why it is not ok, or NULL (most verdicts: 200 bytes each were
			  5 MB of memory to fault in for a tree of 10,000 files) */
};

struct check_result {
	struct check_verdict *v;
	size_t nr, alloc;
	struct inventory inv;       /* the tree's pycs: orphans and sourceless ones */
	size_t counts[PYC_NSTATUS]; /* verdicts per status */
	size_t nsources;            /* sources checked (for the first target) */
	size_t norphans, nsourceless;
};

#define CHECK_RESULT_INIT { NULL, 0, 0, INVENTORY_INIT, { 0 }, 0, 0, 0 }

void check_tree(struct check_result *c, const struct check_opts *o,
		const struct target *targets, size_t ntargets, const struct source_list *list,
		unsigned char *const *skips);

/* Verdicts not ok, plus with `strict` the orphan and sourceless pycs. */
size_t check_problems(const struct check_result *c, int strict);

void check_release(struct check_result *c);

#endif
