/*
 * parallel.h - the one way prepyc spreads work over a few threads.
 *
 * The stages that are system calls more than computation (freshness, the
 * cache lookups, check's verdicts, the walk) run on a few threads; this is
 * their shared fan-out:
 *
 *   static void check_one(void *ctx, size_t i) { ... item i of ctx ... }
 *
 *   parallel_for(n, parallel_threads(n, 256, 1), check_one, ctx);
 *
 * parallel_for() calls fn(ctx, i) once for every i in [0, n), in no
 * particular order, on `nthreads` threads counting the caller's, and
 * returns when every call has returned.  Items are handed out one at a
 * time from an atomic counter, so a slow item does not hold a slice back.
 * A thread that cannot be created is not an error: the threads that run
 * (the caller's at least) take its share.  fn must be thread-safe for
 * distinct i; a caller that must stop early (a signal) makes fn return at
 * once.
 *
 * parallel_run() is the same for work that is not a range (a shared queue):
 * fn(ctx, t) runs once per thread t in [0, nthreads), t = 0 on the caller's
 * thread; it returns the number of threads that ran (those that could be
 * created, plus the caller's).
 */
#ifndef PARALLEL_H
#define PARALLEL_H

#include <stddef.h>

/* Never more threads than this: beyond it the stages gain nothing. */
#define PARALLEL_MAX_THREADS 4

/*
 * How many threads for `n` items: 1 when n < min_items (starting threads
 * costs more than it saves), else per_cpu threads per online CPU, at most
 * PARALLEL_MAX_THREADS.
 */
size_t parallel_threads(size_t n, size_t min_items, size_t per_cpu);

void parallel_for(size_t n, size_t nthreads, void (*fn)(void *ctx, size_t i), void *ctx);

size_t parallel_run(size_t nthreads, void (*fn)(void *ctx, size_t thread), void *ctx);

#endif
