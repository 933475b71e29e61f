/*
 * clean.h - remove stale and orphaned bytecode from walked trees: the
 * library behind `prepyc clean` (src/cli/cmd-clean.c parses, probes, walks
 * and prints the summary).
 *
 * What may go, and nothing else:
 *   - *.pyc files in real __pycache__ directories (never through a symlink:
 *     the walk enters no symlinked directory and opens __pycache__ with
 *     O_NOFOLLOW; a pyc that is a symlink loses the link, never its target);
 *   - legacy *.pyc beside their .py, only with `legacy`; a sourceless one
 *     (no .py beside it: it is importable) only with `sourceless` too;
 *   - __pycache__ directories left empty;
 *   - stray temporary files of prepyc (".prepyc-PID-N.tmp" of a killed run,
 *     tempfile.h) in __pycache__ directories, and with `legacy` in the
 *     directories of the sources.
 * Which pycs (inventory.h): by default orphans (no source) and the targets'
 * own pycs that are stale, of another magic, or corrupt; `other_versions`
 * adds pycs of cache tags that are none of the targets'; `all` takes every
 * pyc (and needs no target).
 *
 * Calling sequence: walk every PATH with WALK_PYCACHE and WALK_MAX_DEPTH,
 * then clean_tree() once on the list.  It prints "would remove PATH"
 * (`dry_run`) or with `verbose` "removed PATH" on stdout for each file
 * ("removed DIR/" for an emptied __pycache__), or with `null` (-z) only
 * the path (DIR/ for a directory) followed by a NUL byte, nothing at all
 * with quiet >= 2, and the errors on stderr; it returns 0, or 1 when
 * something could not be removed, and fills *stats for the summary.
 */
#ifndef CLEAN_H
#define CLEAN_H

#include <stddef.h>

#include "target.h"
#include "walk.h"

struct clean_opts {
	int all, other_versions, legacy, sourceless, dry_run, quiet, verbose;
	int null;   /* -z: list every file removed (or, dry_run, to be) as PATH NUL */
};

struct clean_stats {
	size_t removed;          /* pycs removed (or that would be) */
	unsigned long long bytes; /* their size */
	size_t temps;            /* stray temporary files removed (or that would be) */
	size_t dirs;             /* empty __pycache__ directories removed */
};

int clean_tree(const struct clean_opts *o, const struct target *targets, size_t ntargets,
	       const struct source_list *list, struct clean_stats *stats);

#endif
