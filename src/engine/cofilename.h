/*
 * cofilename.h - the co_filename compileall gives a file, and its -e rule.
 *
 * compileall compiles a file with a "dfile", the name the code object
 * records (co_filename, shown in tracebacks).  It comes from the path as
 * the walk built it and from -d DIR, -s STRIP and -p PREPEND, whose
 * meaning changed across versions; cofilename_compute() follows the
 * target's own Lib/compileall.py:
 *
 *   3.6-3.8.1, 3.7.0-3.7.6  -d DIR: DIR/NAME (the directories under the
 *                           argument are dropped)
 *   3.7.7+, 3.8.2+          -d DIR: DIR/REL, REL the path under the argument
 *                           (bpo-39769)
 *   3.9+                    -s/-p (and -d, which compile_dir turns into
 *                           stripdir=ARG, prependdir=DIR): the parts of
 *                           STRIP that equal the path's parts in the same
 *                           places are removed, then PREPEND is joined in
 *                           front
 *   3.13+                   -s must be a prefix of the path, part by part;
 *                           otherwise it is ignored with a note compileall
 *                           prints before the file
 *
 * cofilename_outside_limit() is -e DIR (3.9+): a symlinked file is skipped
 * when it resolves outside DIR.
 *
 * Pure but for realpath() in cofilename_outside_limit(); thread-safe.
 */
#ifndef COFILENAME_H
#define COFILENAME_H

#include "target.h"
#include "walk.h"

/* compileall's -d, -s and -p, as given (NULL when not given). */
struct cofilename_opts {
	const char *ddir, *stripdir, *prependdir;
};

/*
 * The co_filename compileall of `t`'s version gives `s`, reached under
 * the directory argument `arg` (NULL when `s` is an argument itself or
 * was not reached from a directory).  Returns a new string, or NULL when
 * the dfile is the path itself.  *note is set to a new string when
 * compileall prints a note about the file (3.13+'s ignored -s), else left
 * alone.
 */
char *cofilename_compute(const struct cofilename_opts *o, const struct target *t,
			 const struct source *s, const char *arg, char **note);

/*
 * -e: is `path` outside `limit_real` (a realpath()) once resolved?  A path
 * that cannot be resolved is outside.
 */
int cofilename_outside_limit(const char *limit_real, const char *path);

#endif
