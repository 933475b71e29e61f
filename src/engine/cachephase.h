/*
 * cachephase.h - take from the bytecode cache what it already holds.
 *
 * Before any worker starts, cache_phase() looks up every item of the plan
 * (cache.h, keys from cachekey.h) on a few threads (parallel.h): reading
 * the sources, hashing, reading entries and writing pycs is all system
 * calls and hashing.  A hit writes the item's pyc from the entry
 * (run_write_pyc(), silently: on any refusal the item is compiled, and the
 * compile path says why).  Back on the caller's thread, the warnings each
 * hit's compile printed are replayed to the reporter and the files whose
 * every item hit are final.
 *
 * A file's source read for the lookups stays loaded for the compile after
 * a miss, up to a total of CACHE_KEEP_MAX bytes (beyond, it is read again).
 * Duplicates' non-writers are not looked up (their writer is).  A signal
 * (pool_interrupted()) stops the lookups after the file at hand, whose pyc
 * is whole.
 *
 * Needs r->o->cache and r->identity; returns the number of items left to
 * compile.
 */
#ifndef CACHEPHASE_H
#define CACHEPHASE_H

#include <stddef.h>

#include "run.h"

/* Sources kept in memory after a miss, for the pool: beyond, they are read again. */
#define CACHE_KEEP_MAX ((size_t)256 << 20)

size_t cache_phase(struct run *r);

#endif
