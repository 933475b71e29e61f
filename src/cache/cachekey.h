/*
 * cachekey.h - the key of a bytecode cache entry (cache.h).
 *
 * A key is BLAKE2b-256 over everything the compiled code depends on, so
 * that equal keys mean equal code.  It is made in two steps: once per run
 * the target's part (the identity), then per pyc the rest:
 *
 *   identity = field*             field = NAME "=" VALUE NUL
 *     prepyc-cache-key=2          (the version of this recipe; 1 had the
 *                                 dfile in every key)
 *     implementation=, build=     sys.implementation.name, sys.version
 *     magic=                      the 4 magic bytes as 8 lowercase hex digits
 *     cache_tag=
 *     hashseed=                   $PYTHONHASHSEED, "0" when unset or empty
 *                                 (set constants are ordered by it, 3.6-3.10)
 *     warnings=                   the PYTHONWARNINGS the workers see ("" when
 *                                 they see none): a warning may become an error
 *     canonical=                  "1" or "0" (the canonical form or the
 *                                 interpreter's own bytes; the form's rules
 *                                 are part of the recipe: a hit at another
 *                                 path splices the stored bytes, relocate.h)
 *     gil_disabled=1              only for a free-threaded build (3.13t...):
 *                                 it shares the default build's magic and
 *                                 cache tag, its bytecode may differ
 *
 *   key = BLAKE2b-256(identity | OPT NUL | PLACE | len:u64le | SOURCE)
 *     OPT the optimization level in decimal;
 *     PLACE = "*" NUL             a relocatable entry: the same for every
 *                                 co_filename (see below)
 *           | "=" DFILE NUL       a path-specific entry, DFILE the co_filename
 *
 * Relocatable entries.  compile() puts the dfile (co_filename) in every
 * code object and nowhere else, so one entry serves a source at any path
 * (a second virtualenv, another checkout directory): a hit compiled under
 * another name is rewritten with this one (relocate.h) and written in the
 * canonical form, which gives exactly a compile's bytes.  An entry stays
 * path-specific (cache_key_relocatable() is 0) when that cannot be exact:
 *   - --no-canonical: the interpreter's own bytes cannot be re-made;
 *   - the workers see a non-empty PYTHONWARNINGS: a filter's module field
 *     is matched against the file's path (compile's warnings have the
 *     module "DFILE minus .py"), so a warning may depend on the path;
 *   - the dfile is "__main__.py": its module is "__main__", which the
 *     default filters treat apart (3.7+ shows DeprecationWarnings there);
 *   - the dfile is empty or not ASCII (its text in the code would depend
 *     on the file system encoding the interpreter decodes it with);
 *   - the source holds the dfile's bytes: a constant equal to co_filename
 *     shares its value, which the rewrite refuses (relocate.h).  A
 *     constant that equals it without spelling it (escapes, folding) is
 *     found at the hit instead, which then compiles.
 *
 * The value stored is the code and an extra blob (cachephase.h): the
 * dfile the code was compiled with and its compiler warnings in parts, so
 * that they are printed again for the new path.
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

/*
 * Whether the code of `src` (`len` bytes) compiled with co_filename `dfile`
 * gets a relocatable key (the rules above): `canonical` and `warnings_env`
 * as for cache_key_identity().
 */
int cache_key_relocatable(int canonical, const char *warnings_env, const char *dfile,
			  const void *src, size_t len);

/*
 * The key of the code of `src` (`len` bytes) compiled at level `opt` with
 * co_filename `dfile`: relocatable when `dfile` is NULL, else specific to it.
 */
void cache_key_compute(const struct strbuf *id, int opt, const char *dfile, const void *src,
		       size_t len, unsigned char key[CACHE_KEY_LEN]);

#endif
