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
 * With a cache that batches (cache_batches(): a remote store), the phase
 * runs in two passes: every file read and keyed, then cache_prefetch()
 * of all the keys at once, then the lookups; otherwise each file is read,
 * keyed and looked up in one go.
 *
 * A file's source read for the lookups stays loaded for the compile after
 * a miss, up to a total of CACHE_KEEP_MAX bytes (beyond, it is read again);
 * with a cache that batches, it is dropped once keyed (a miss reads it
 * again): holding every source until the lookups would cost a page fault
 * per 4 KiB of the tree.
 * Duplicates' non-writers are not looked up (their writer is).  A signal
 * (pool_interrupted()) stops the lookups after the file at hand, whose pyc
 * is whole.
 *
 * Needs r->o->cache and r->identity; returns the number of items left to
 * compile.
 *
 * An entry's extra blob (cache.h's "warnings", opaque to the cache):
 *
 *   extra  = dfile_len:u32le dfile record*
 *   record = n:u32le body       body: a warning's parts (proto.h's 'W' body)
 *
 * dfile is the co_filename the code was compiled with.  A hit at another
 * dfile (a relocatable key, cachekey.h) is rewritten for this one
 * (marshal_relocate_splice(), else marshal_relocate() then the canonical
 * form), or, if that cannot be
 * exact, is a miss (the compile then says what it says; the entry stays).
 * Its warnings are printed with this dfile: a warning at the dfile names
 * the file as the compile printed it when the dfile is the same, else by
 * this dfile's bytes (relocatable dfiles are ASCII), and shows its line
 * when this dfile exists (run_warning()).
 */
#ifndef CACHEPHASE_H
#define CACHEPHASE_H

#include <stddef.h>

#include "proto.h"
#include "run.h"
#include "strbuf.h"

/* Sources kept in memory after a miss, for the pool: beyond, they are read again. */
#define CACHE_KEEP_MAX ((size_t)256 << 20)

size_t cache_phase(struct run *r);

/* Append warning `w` of a compile to `records` (an item's `warn`), as a record of the extra. */
void cache_phase_add_warning(struct strbuf *records, const struct proto_warning *w);

/* The extra of an entry for code compiled with `dfile` that printed `records`, into `out`. */
void cache_phase_extra(struct strbuf *out, const char *dfile, const struct strbuf *records);

#endif
