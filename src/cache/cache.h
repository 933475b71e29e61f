/*
 * cache.h - the bytecode cache shared between builds.
 *
 * A content-addressed store on disk.  The key is a BLAKE2b-256 digest,
 * computed by the caller (cache_key_*) over everything the compiled code
 * depends on: the target's identity, the optimization level, the dfile,
 * the canonical flag and the source bytes.  The value is the marshalled
 * code (the pyc without its header) and the warnings the compile printed.
 *
 * Layout under the cache directory DIR:
 *
 *   DIR/CACHEDIR.TAG        so that backup tools skip it
 *   DIR/v1/ab/cdef...       one entry: the key in hex, its first byte as the
 *                           subdirectory (256 of them)
 *   DIR/stats               one line appended per run that used the cache
 *
 * An entry is a header (magic "PREPYC\x1a\n", the format version, the key
 * again, the lengths of the two parts, a BLAKE2b checksum of the parts)
 * then the code, then the warnings.  Entries are published atomically
 * (temporary file in the same subdirectory, then rename), so a reader sees
 * a whole entry or none, and several processes can share one cache.  An
 * entry that fails any check (short, wrong magic or version, another key,
 * bad checksum) is a miss, and is removed when the directory is writable.
 *
 * Recency: a hit sets the entry's mtime to now when it is older than an
 * hour; eviction removes the oldest entries first.
 *
 * An entry, all integers little-endian (80 bytes of header):
 *
 *   magic     8   "PREPYC\x1a\n"
 *   version   u32 1
 *   flags     u32 0 (anything else: not an entry of this version)
 *   key       32  the key, again (a file renamed to another name is caught)
 *   code_len  u64
 *   warn_len  u64 (file size = 80 + code_len + warn_len, exactly)
 *   checksum  16  BLAKE2b-128, unkeyed, of the 64 header bytes above, then
 *                 the code, then the warnings
 *   code, warnings
 *
 * DIR/stats has one line per run that looked anything up (appended with a
 * single O_APPEND write, so concurrent runs do not mix their lines):
 *
 *   TIME LABEL hits=N misses=N stored=N stored_bytes=N evicted=N max_size=N
 *
 * TIME in Unix seconds; LABEL as given (it may hold spaces; control
 * characters become '?'), so readers take the first field as the time and
 * the trailing name=N fields as the counters, whatever their number.
 * Past 256 KiB the file is cut to its last 64 KiB.
 *
 * All functions but cache_open/cache_close are thread-safe.  A NULL cache
 * is accepted everywhere and does nothing (cache_get misses).
 */
#ifndef CACHE_H
#define CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define CACHE_KEY_LEN 32
#define CACHE_DEFAULT_MAX_SIZE ((uint64_t)1 << 30)

struct cache;

/*
 * The cache directory: `opt` (--cache-dir) if not NULL, else
 * $PREPYC_CACHE_DIR, else $XDG_CACHE_HOME/prepyc, else $HOME/.cache/prepyc.
 * Returns a new string, or NULL when none can be determined (no HOME).
 */
char *cache_default_dir(const char *opt);

/*
 * Open (creating it if need be) the cache in `dir`, bounded to `max_size`
 * bytes.  Never fails for a run: a directory that cannot be created or
 * written gives one warning and a cache that still answers lookups when it
 * can read, and stores nothing.  Returns NULL only when not even that is
 * possible (the warning is printed).
 */
struct cache *cache_open(const char *dir, uint64_t max_size);

/*
 * Look `key` up: 1 and the entry's code and warnings appended to `code`
 * and `warnings` on a hit; 0 on a miss (a damaged entry is removed).
 */
int cache_get(struct cache *c, const unsigned char key[CACHE_KEY_LEN], struct strbuf *code,
	      struct strbuf *warnings);

/*
 * Store an entry (an existing one is left alone, even a damaged one: the
 * next cache_get removes it).  Errors disable storing, with one warning.
 */
void cache_put(struct cache *c, const unsigned char key[CACHE_KEY_LEN], const void *code,
	       size_t code_len, const void *warnings, size_t warnings_len);

/*
 * End of the run: if this run stored anything, scan the cache (sizes are
 * st_size), remove temporary files older than an hour and, when the total
 * is over the bound, the least recently used entries down to 90% of it;
 * then append the run's line to DIR/stats (what `label` says, hits,
 * misses, stores, evictions) if the run looked anything up; free `c`.
 * Nothing is written to a cache opened read-only.  NULL is allowed.
 */
void cache_close(struct cache *c, const char *label);

/* Counters of this run so far. */
void cache_counts(const struct cache *c, size_t *hits, size_t *misses, size_t *stored);

/*
 * Parse a size: a number of bytes with an optional suffix K, M, G, T
 * (powers of 1024; "KiB", "MB"... accepted alike).  0, or -1 when invalid.
 */
int cache_parse_size(const char *s, uint64_t *out);

/*
 * `prepyc cache stats|clear|prune`.  prune's bound defaults to the
 * max_size of the last run recorded in DIR/stats, else
 * CACHE_DEFAULT_MAX_SIZE.
 */
int cmd_cache(int argc, const char **argv);

#endif
