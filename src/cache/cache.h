/*
 * cache.h - the bytecode cache shared between builds: the front the
 * engine calls.
 *
 * Content-addressed: the key is a BLAKE2b-256 digest over everything the
 * compiled code depends on (the target's identity, the optimization level,
 * the dfile, the canonical flag and the source bytes), computed by the
 * caller with cachekey.h's cache_key_* functions.  The value is the
 * marshalled code (the pyc without its header) and the warnings the compile
 * printed.
 *
 * The front keeps the run's counters and asks its stores in order
 * (cache-store.h): first the disk store, the directory that store-disk.h
 * describes (entries, CACHEDIR.TAG, the stats file) and that
 * cache-admin.h looks after, then the remote stores (--remote-cache,
 * store-remote.h).  A hit in a later store is put into the earlier ones.
 * Which directory: cachedir.h.
 *
 * Calling sequence: cache_open(), cache_add_store() or cache_add_remote()
 * for any further store, then, optionally, cache_prefetch() with the keys
 * about to be looked up (when cache_batches() says it pays), then
 * cache_get()/cache_put() from any number of threads, cache_counts() at
 * any time, cache_close() once at the end of the run.
 *
 * All functions but cache_open/cache_add_store/cache_add_remote/
 * cache_prefetch/cache_close are thread-safe.  A NULL cache is accepted everywhere and does nothing
 * (cache_get misses).  Errors never fail a run: a store that cannot be
 * used warns once and does less (see cache_open).
 */
#ifndef CACHE_H
#define CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define CACHE_KEY_LEN 32
#define CACHE_DEFAULT_MAX_SIZE ((uint64_t)1 << 30)

struct cache;
struct cache_store;

/*
 * Open (creating it if need be) the cache in `dir`, bounded to `max_size`
 * bytes: a front with the disk store of `dir` (cache-store.h).  Never fails
 * for a run: a directory that cannot be created or written gives one
 * warning and a cache that still answers lookups when it can read, and
 * stores nothing.  Returns NULL only when not even that is possible (the
 * warning is printed).
 */
struct cache *cache_open(const char *dir, uint64_t max_size);

/*
 * cache_open() with `flags`, trustdir.h's (TRUST_SHARED: a cache
 * shared by a group, --cache-shared).  cache_open() is this with 0.  A
 * cache someone else could have written is not used: one warning, NULL.
 */
struct cache *cache_open_flags(const char *dir, uint64_t max_size, unsigned flags);

/*
 * Append store `s` (from its open function; NULL is ignored) to the ones
 * `c` asks, after those it has; `c` owns it from now on and closes it in
 * cache_close().  Before any cache_get/cache_put.
 */
void cache_add_store(struct cache *c, struct cache_store *s);

/* What --remote-cache's options say (cache_add_remote()). */
struct cache_remote_opts {
	int read_only;           /* never upload */
	long connect_timeout_ms; /* to connect to the server */
	long timeout_ms;         /* a request (or a batch's round trip), connecting included */
	const char *secret;      /* $PREPYC_REMOTE_CACHE_SECRET: sign and check entries; NULL: not */
	const char *token;       /* $PREPYC_REMOTE_CACHE_TOKEN: HTTP bearer token; NULL: none */
	int uncompressed;        /* $PREPYC_REMOTE_CACHE_COMPRESS=0: upload values as they are */
	int remote_only;         /* --remote-cache-only: no local entry read or written */
};

#define CACHE_REMOTE_CONNECT_TIMEOUT_MS 2000
#define CACHE_REMOTE_TIMEOUT_MS 10000
#define CACHE_REMOTE_OPTS_INIT \
	{ 0, CACHE_REMOTE_CONNECT_TIMEOUT_MS, CACHE_REMOTE_TIMEOUT_MS, NULL, NULL, 0, 0 }

/*
 * What the remote stores did in a run, summed over them: in the disk
 * store's stats line and PREPYC_TRACE.  An error is a request that failed
 * (not a miss); a rejected entry is one the server gave that failed a
 * check or, with a secret, the authentication.
 */
struct cache_remote_stats {
	uint64_t hits, misses, uploads, upload_bytes, errors, rejected;
	uint64_t requests, bytes_sent, bytes_received;
};

/*
 * Append the remote store at `url` (store-remote.h) to `c`'s stores.  0;
 * -1 after error() when the URL is not one prepyc knows or its client
 * library was not compiled in (the message names the package to install).
 * Connects only when first used.  A NULL `c` only checks the URL.
 */
int cache_add_remote(struct cache *c, const char *url, const struct cache_remote_opts *o);

/*
 * The local cache's entries are neither read nor written in this run: the
 * remote stores alone (--remote-cache-only, for a builder that starts empty
 * and is thrown away: back-filling its local cache would only cost file
 * creations).  The local directory still keeps the logs and the stats.
 * Before any lookup.
 */
void cache_local_entries_off(struct cache *c);

/* Whether a store of `c` answers many lookups at once (a remote one): then use cache_prefetch(). */
int cache_batches(const struct cache *c);

/*
 * The run is about to look up `n` keys: the stores that batch fetch at
 * once those that no store before them holds, and keep the answers for
 * cache_get().  Never fails (a store's errors are its own, see
 * store-remote.h).  Not concurrent with anything else on `c`.
 */
void cache_prefetch(struct cache *c, const unsigned char (*keys)[CACHE_KEY_LEN], size_t n);

/*
 * Look `key` up in each store in turn: 1 and the entry's code and warnings
 * appended to `code` and `warnings` on a hit (put into the stores asked
 * before, which missed); 0 on a miss (a damaged entry is removed).
 */
int cache_get(struct cache *c, const unsigned char key[CACHE_KEY_LEN], struct strbuf *code,
	      struct strbuf *warnings);

/*
 * Store an entry in every store (an existing one is left alone, even a
 * damaged one: the next cache_get removes it).  Errors disable storing in
 * that store, with one warning.
 */
void cache_put(struct cache *c, const unsigned char key[CACHE_KEY_LEN], const void *code,
	       size_t code_len, const void *warnings, size_t warnings_len);

/*
 * End of the run: the remote stores send what they queued, then each
 * store is closed with what this run did with it.  The disk store, if this run stored anything in it, scans the cache (sizes
 * are st_size), removes temporary files older than an hour and, when the
 * total is over the bound, the least recently used entries down to 90% of
 * it; then appends the run's line to DIR/stats (what `label` says, hits,
 * misses, stores, evictions, and the remote stores' counters when there
 * are any) if the run looked anything up.  Nothing is
 * written to a cache opened read-only.  Frees `c`; NULL is allowed.
 */
void cache_close(struct cache *c, const char *label);

/*
 * Counters of this run so far: lookups that hit (in any store) and missed
 * (in all), cache_put calls that stored (in any store).
 */
void cache_counts(const struct cache *c, size_t *hits, size_t *misses, size_t *stored);

/*
 * Parse a size: a number of bytes with an optional suffix K, M, G, T
 * (powers of 1024; "KiB", "MB"... accepted alike).  0, or -1 when invalid.
 */
int cache_parse_size(const char *s, uint64_t *out);

#endif
