/*
 * cache-store.h - a place the bytecode cache keeps its entries: the table
 * of functions every store implements, and each store's open function.
 *
 * The front (cache.h) holds a list of stores and asks them in order; the
 * engine only ever sees the front.  A store is a struct whose first member
 * is a struct cache_store; its open function returns it (NULL when it
 * cannot be used, after one warning), its close frees it.  Adding a store
 * (a remote one) is one new file with its ops and open function, declared
 * here, and one cache_add_store() call where the cache is opened.
 *
 * The stores: the disk store (store-disk.c; its layout in store-disk.h),
 * a content-addressed directory shared by runs, processes and users; the
 * remote stores (store-remote.h: Redis, HTTP), shared by machines.
 *
 * The operations (`s` is the store itself):
 *
 *   get    Look `key` up: 1 and the entry's code and warnings appended to
 *          `code` and `warnings` on a hit; 0 on a miss, nothing appended.
 *          A store deals with its damaged entries itself (a miss).
 *   put    Store an entry: 1 and the bytes it added to the store in
 *          *bytes when stored; 0 when it did not (present already, too
 *          large, a read-only store, or storing given up after an error,
 *          with the store's one warning for the run).
 *   close  End of the run: the store's upkeep and its record of the run
 *          (`label` names the run's targets, `counts` is what the front
 *          saw of this store), then free `s`.
 *
 *   has    (optional) Whether the store holds `key`, cheaply (a stat):
 *          1 or 0, 0 when unsure.  What cache_prefetch() asks the stores
 *          before a batching one, so that it fetches only what they lack.
 *   prefetch  (optional; a store with it "batches") Fetch the `n` keys in
 *          batches and keep the answers for get; it may return before they
 *          are all in (a get, or has, of a key waits for its answer).
 *          `all`: the run's `nall` keys, the ones stores before hold too
 *          (a remote store's groups are cut from them: remote-group.h).
 *   fill   (optional) As put, for an entry the store was found to lack
 *          by has() at the prefetch and not asked for since (the back-fill
 *          after a later store's hit): it need not look for it first, and
 *          may replace what is there.  `form`: the entry as the store that
 *          had it gave it (get_entry), NULL when not known: its checksum,
 *          so that it is not hashed again, and its compressed bytes, which
 *          may be stored as they are.  Without fill, put is used.
 *   get_entry  (optional) As get, and on a hit `form` filled for fill.
 *   flush  (optional) Finish what put queued, before any close.
 *   stats  (optional) Add what the store did to `st` (a remote store's
 *          counters, struct cache_remote_stats), after flush.
 *
 * get, get_entry, put, fill and has are called from several threads at once and must be
 * thread-safe; prefetch is not concurrent with anything; flush, stats and
 * close are called once, after every get and put returned.
 */
#ifndef CACHE_STORE_H
#define CACHE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "strbuf.h"

/* What the front counted of one store in a run. */
struct cache_store_counts {
	size_t hits, misses;
	size_t stored;         /* puts that stored, the front's and the back-fills */
	uint64_t stored_bytes; /* what those puts added to the store */
	const struct cache_remote_stats *remote; /* the remote stores' (NULL: none) */
};

/* An entry's checksum: BLAKE2b-128 of its header and body (store-disk.h's DISK_SUM_LEN). */
#define CACHE_SUM_LEN 16

/*
 * An entry as get_entry found it, for fill: its checksum (checked), and,
 * when the store held it compressed (a remote's value: compress.h), that
 * zstd frame of the whole entry, checked too (empty when not).  A local
 * store back-filled with the frame writes ~2.6 times fewer bytes.
 */
struct cache_entry_form {
	unsigned char sum[CACHE_SUM_LEN];
	struct strbuf frame;
};

struct cache_store;

struct cache_store_ops {
	const char *name; /* for traces: "disk" */
	int (*get)(struct cache_store *s, const unsigned char key[CACHE_KEY_LEN],
		   struct strbuf *code, struct strbuf *warnings);
	int (*put)(struct cache_store *s, const unsigned char key[CACHE_KEY_LEN], const void *code,
		   size_t code_len, const void *warnings, size_t warnings_len, uint64_t *bytes);
	int (*fill)(struct cache_store *s, const unsigned char key[CACHE_KEY_LEN], const void *code,
		    size_t code_len, const void *warnings, size_t warnings_len,
		    const struct cache_entry_form *form, uint64_t *bytes);
	int (*get_entry)(struct cache_store *s, const unsigned char key[CACHE_KEY_LEN],
			 struct strbuf *code, struct strbuf *warnings,
			 struct cache_entry_form *form);
	void (*close)(struct cache_store *s, const char *label,
		      const struct cache_store_counts *counts);
	int (*has)(struct cache_store *s, const unsigned char key[CACHE_KEY_LEN]);
	void (*prefetch)(struct cache_store *s, const unsigned char (*keys)[CACHE_KEY_LEN],
			 size_t n, const unsigned char (*all)[CACHE_KEY_LEN], size_t nall);
	void (*flush)(struct cache_store *s);
	void (*stats)(struct cache_store *s, struct cache_remote_stats *st);
};

struct cache_store {
	const struct cache_store_ops *ops;
};

/*
 * The disk store in `dir` (store-disk.h), bounded to `max_size` bytes,
 * created if need be (modes of trustdir.h; `flags` its trust flags: a
 * group's cache with TRUST_SHARED).  A directory that cannot be written
 * gives one warning and a store that answers lookups and stores nothing;
 * NULL (with the warning printed) when it cannot even be read, or when
 * someone else could have written it (trustdir.h's rule: "not using the
 * cache 'DIR': REASON").  A shard found later not to be ours stops the
 * store for the run (one warning); an entry not ours is a miss.
 */
struct cache_store *cache_store_disk_open(const char *dir, uint64_t max_size, unsigned flags);

/*
 * From now on the disk store `s` holds no entry for the run: every lookup
 * misses without a system call and nothing is stored (--remote-cache-only).
 * Its stats line is still written.  Before any lookup.
 */
void cache_store_disk_entries_off(struct cache_store *s);

/*
 * The remote store at `url` (store-remote.h) with options `o`: NULL after
 * error() when the URL is not one of ours or its client library was not
 * compiled in.  Does not connect yet.
 */
struct cache_store *cache_store_remote_open(const char *url, const struct cache_remote_opts *o);

#endif
