/*
 * compilestage.h - feed the plan's items to the compilers, write what comes back.
 *
 * compile_stage() runs the items not taken from the cache through a runner
 * (engine.h's struct runner: the worker pool, pool_run(), unless a test
 * puts a fake in its place) with three callbacks:
 *
 *   next    the next item in the plan's order: its file is read once for
 *           all its levels (a failure to read fails the file's remaining
 *           levels), its cache key computed, its compile frame made
 *           (proto.h);
 *   reply   code: made canonical (pycwrite_canonical(); a stream the
 *           canonical writer cannot handle is written as the interpreter
 *           gave it, after one warning per run), written unless the file
 *           already failed or another occurrence writes it, and stored in
 *           the cache; an error: the file's error; a warning: to the
 *           reporter, and kept for the cache entry;
 *   failed  the worker died on it: the file's error.
 *
 * Returns what the runner returns: 0 when all items are done, -1 when no
 * worker could be started (printed), -2 when interrupted.
 */
#ifndef COMPILESTAGE_H
#define COMPILESTAGE_H

#include "run.h"

/* `jobs` workers; `pool_flags` enum pool_flags. */
int compile_stage(struct run *r, const struct runner *runner, int jobs, unsigned pool_flags);

#endif
