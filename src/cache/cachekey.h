/*
 * cachekey.h - the key of a bytecode cache entry (cache.h).
 *
 * A key is BLAKE2b-256 over everything the compiled code depends on, so
 * that equal keys mean equal code.  It is made in two steps: once per run
 * the target's part (the identity), then per pyc the rest:
 *
 *   identity = field*             field = NAME "=" VALUE NUL
 *     prepyc-cache-key=1          (the version of this recipe)
 *     implementation=, build=     sys.implementation.name, sys.version
 *     magic=                      the 4 magic bytes as 8 lowercase hex digits
 *     cache_tag=
 *     hashseed=                   $PYTHONHASHSEED, "0" when unset or empty
 *                                 (set constants are ordered by it, 3.6-3.10)
 *     warnings=                   the PYTHONWARNINGS the workers see ("" when
 *                                 they see none): a warning may become an error
 *     canonical=                  "1" or "0" (the canonical form or the
 *                                 interpreter's own bytes)
 *     gil_disabled=1              only for a free-threaded build (3.13t...):
 *                                 it shares the default build's magic and
 *                                 cache tag, its bytecode may differ
 *
 *   key = BLAKE2b-256(identity | OPT NUL | DFILE NUL | len:u64le | SOURCE)
 *     OPT the optimization level in decimal, DFILE the co_filename.
 *
 * Changing any byte of this recipe changes every key: existing caches stop
 * hitting (and are evicted in time), so bump "prepyc-cache-key" with it.
 *
 * Pure (cache_key_identity() reads $PYTHONHASHSEED); thread-safe.
 */
#ifndef CACHEKEY_H
#define CACHEKEY_H

#include <stddef.h>

#include "cache.h"
#include "strbuf.h"
#include "target.h"

/*
 * Append the identity of target `t` to `id`: `canonical` says whether the
 * canonical form is written; `warnings_env` is the PYTHONWARNINGS the
 * workers run with (NULL when they do not keep it).
 */
void cache_key_identity(struct strbuf *id, const struct target *t, int canonical,
			const char *warnings_env);

/* The key of the code of `src` (`len` bytes) compiled at level `opt` with co_filename `dfile`. */
void cache_key_compute(const struct strbuf *id, int opt, const char *dfile, const void *src,
		       size_t len, unsigned char key[CACHE_KEY_LEN]);

#endif
