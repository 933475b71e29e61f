/*
 * store-remote.h - the remote stores (--remote-cache): a cache shared by
 * machines, on a Redis server or an HTTP server that keeps what is PUT.
 *
 * One store (store-remote.c, opened with cache_store_remote_open() of
 * cache-store.h) does what every remote needs: the entries' bytes and
 * their authentication, the answers of a prefetch, the queue of uploads,
 * the counters, the warnings and switching a failing server off.  It moves
 * bytes through a transport, one per protocol, each in its own file and
 * built on its client library:
 *
 *   store-http.c   http://, https://   libcurl (PREPYC_WITH_LIBCURL)
 *   store-redis.c  redis://, redis+unix://   hiredis (PREPYC_WITH_HIREDIS)
 *
 * Without its library a transport's open function is a stub that says
 * which package to install (error(), NULL).
 *
 * A value on the server (the key being the hex cache key: HTTP at
 * BASE/KEY[0:2]/KEY, Redis at "prepyc:KEY"):
 *
 *   value = BODY [TAG]
 *   BODY    ENTRY, or ENTRY compressed: one zstd frame (compress.h), which
 *           writers built with libzstd send when it is smaller
 *   ENTRY   the disk store's entry, byte for byte (store-disk.h): header
 *           with magic, version, key and checksum, code, warnings
 *   TAG     32 bytes, keyed BLAKE2b-256 (blake2b.h) over
 *           "prepyc-remote-tag-1" NUL, the key, BODY; the BLAKE2b key is
 *           $PREPYC_REMOTE_CACHE_SECRET, or BLAKE2b-512 of it when longer
 *           than 64 bytes
 *
 * Writers with a secret append the tag, writers without do not.  A reader
 * with a secret first requires the tag and compares it in constant time
 * (nothing unauthenticated is decompressed), then decompresses a zstd
 * BODY (into at most REMOTE_VALUE_MAX bytes), then checks ENTRY as the
 * disk store checks a file (disk_entry_check()).  An entry that fails is
 * "rejected": counted, one warning for the run, and a miss (its file is
 * compiled locally, the server's copy is left alone).  So is a compressed
 * one read by a prepyc built without libzstd, with its own warning naming
 * what to install.
 *
 * Prefetch: the keys, deduplicated, are fetched in the caller's order by
 * a thread of the store, REMOTE_PREFETCH_CHUNK at a time, while the
 * lookups of those already in go on (a lookup waits for its key's chunk).
 * The thread stays at most REMOTE_LOOKAHEAD keys ahead of the furthest
 * one a lookup took, holding at most about REMOTE_LOOKAHEAD_BYTES of
 * answers not taken, unless a lookup waits for a key not asked yet: the
 * answers held in memory stay bounded, and the memory of those taken is
 * used again for the next ones (fresh memory costs a page fault per 4 KiB,
 * which on a VM costs more than the bytes' journey from the server).
 * Uploads are queued and sent REMOTE_QUEUE_MAX bytes at a time and at the
 * flush.  The transport is used by one thread at a time (a mutex).
 *
 * Groups, when the transport wants them (remote-group.h): the run's keys
 * (all of them, the local cache's hits too) are cut into groups, and the
 * prefetch first asks for every group none of whose keys the stores
 * before had.  A group found gives its keys' values, each checked as a
 * key's value is when a lookup takes it (one that fails: the key's own
 * value is fetched instead); what it lacks is fetched key by key.  At the flush, a group asked and missing, or found
 * lacking a value or holding a rejected one that this run got (by key,
 * or compiled), is uploaded whole, unless read-only: so the first builder
 * of a tree writes its groups, the next ones fetch them, and a damaged
 * or forged group is replaced by the next writer that meets it.  Entries
 * are uploaded key by key as well, so that a tree that differs in a few
 * files still finds the rest of its changed groups' entries.
 *
 * Faults: a request that fails (cannot connect, times out, HTTP status
 * other than 2xx/404, a reply that is not the protocol) is an "error",
 * not a miss.  The first gives the run's one warning for that server; a
 * timeout or a failed connection, or REMOTE_MAX_ERRORS errors, switch the
 * server off for the rest of the run (lookups miss, uploads are dropped),
 * so that a slow or dead server costs at most about one timeout.
 */
#ifndef STORE_REMOTE_H
#define STORE_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "strbuf.h"

#define REMOTE_TAG_LEN 32
#define REMOTE_TAG_CONTEXT "prepyc-remote-tag-1"
#define REMOTE_MAX_ERRORS 3
#define REMOTE_REDIS_PREFIX "prepyc:"
/* The largest value read from a server: a disk entry's bound, and the tag. */
#define REMOTE_VALUE_MAX ((size_t)256 << 20)
/*
 * Keys a prefetch asks at a time: the lookups of a chunk go on while the
 * next comes (small enough that the first lookups need not wait for long:
 * the plan puts the largest files first).
 */
#define REMOTE_PREFETCH_CHUNK 128
/* How far the prefetch may run ahead of the lookups: keys, and bytes held. */
#define REMOTE_LOOKAHEAD (8 * REMOTE_PREFETCH_CHUNK)
#define REMOTE_LOOKAHEAD_BYTES ((size_t)24 << 20)
/* Uploads are sent when this many bytes are queued, and at the end of the run. */
#define REMOTE_QUEUE_MAX ((size_t)32 << 20)
/* Groups (remote-group.h): asked REMOTE_GROUP_CHUNK at a time, at most this many bytes held. */
#define REMOTE_GROUP_CHUNK 2
/* Groups arrived and not all looked up yet, at most (unless a lookup waits for a later one). */
#define REMOTE_GROUP_LIVE 4
#define REMOTE_GROUP_HELD_MAX ((size_t)512 << 20)

/* What became of one key of a batch. */
enum remote_status {
	REMOTE_FAILED = -1, /* an error (counted in the batch's io) */
	REMOTE_MISSING = 0, /* the server does not have it (get), or not done (put) */
	REMOTE_DONE = 1,    /* found (get: `values[i]` filled), or stored (put) */
};

/* A batch: `n` keys, in hex ("0a1b..."), their values and statuses. */
struct remote_batch {
	size_t n;
	const char (*hex)[2 * CACHE_KEY_LEN + 1];
	struct strbuf *values; /* get: appended to; put: what to store */
	signed char *status;   /* enum remote_status, set for each key */
};

/* What a transport reports of a batch, added to the store's counters. */
struct remote_io {
	size_t requests;      /* requests (HTTP) or commands (Redis) sent */
	uint64_t sent, received; /* bytes of values (and keys) */
	size_t errors;        /* failed requests */
	int off;              /* a timeout or failed connection: stop using the server */
	struct strbuf why;    /* the first error's reason */
	size_t max_errors;    /* the caller's: stop the batch after this many errors */
};

struct remote_transport;

struct remote_transport_ops {
	/*
	 * Run batch `b` as concurrently as the protocol allows, setting each
	 * status; what failed is counted in `io` (the keys not tried when the
	 * batch stopped early are REMOTE_FAILED too, uncounted).
	 */
	void (*get)(struct remote_transport *t, struct remote_batch *b, struct remote_io *io);
	void (*put)(struct remote_transport *t, struct remote_batch *b, struct remote_io *io);
	void (*free)(struct remote_transport *t);
};

/*
 * A transport is a struct whose first member is this; not thread-safe (the store locks).
 * `group_keys`: the keys a group should hold (remote-group.h), 0 for no groups.
 */
struct remote_transport {
	const struct remote_transport_ops *ops;
	size_t group_keys;
};

/*
 * The transports' open functions: `url` parsed (NULL after error() when
 * it is malformed or the library is absent); nothing is connected yet.
 */
struct remote_transport *remote_http_open(const char *url, const struct cache_remote_opts *o);
struct remote_transport *remote_redis_open(const char *url, const struct cache_remote_opts *o);

/*
 * The remote store over transport `t` (taken: its free op is called by
 * the store's close), `url` for messages (shown without user
 * information), options `o`: what cache_store_remote_open() returns once
 * it chose the transport by the URL's scheme.  Also the unit tests' way
 * in, with a fake transport.
 */
struct cache_store *remote_store_new(struct remote_transport *t, const char *url,
				     const struct cache_remote_opts *o);

/* Record a failed request in `io`: counted; `fmt` gives the reason when it is the first. */
void remote_io_fail(struct remote_io *io, int off, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * `url` as messages may show it: without the user and password, the query
 * and the fragment (a new string).
 */
char *remote_url_display(const char *url);

#endif
