/*
 * remote-store.h - the remote store's state, shared by its two files and
 * by nothing else: store-remote.c (values, lookups, uploads, faults, the
 * store's ops) and remote-prefetch.c (the prefetch thread and the groups).
 * The contract is store-remote.h's.
 *
 * Locks: `tlock` guards the transport, `lock` everything else (taken
 * after `tlock` or without it).  The functions below that say "under the
 * lock" are called with `lock` held.
 */
#ifndef REMOTE_STORE_H
#define REMOTE_STORE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "blake2b.h"
#include "cache-store.h"
#include "remote-group.h"
#include "store-remote.h"
#include "strbuf.h"

typedef char hexkey[2 * CACHE_KEY_LEN + 1];

#define PENDING 2 /* a prefetched key whose answer has not arrived yet */

/* What became of a group of the prefetch (remote-group.h). */
enum group_state {
	GROUP_UNASKED,  /* a store before had some of its keys, or too many bytes came */
	GROUP_ASKED,    /* its answer has not arrived */
	GROUP_MISSING,  /* the server does not have it */
	GROUP_FOUND,    /* the object arrived and parsed */
	GROUP_BAD,      /* the object arrived and did not parse (what parsed is used) */
	GROUP_FAILED,   /* an error: not uploaded either */
	GROUP_TAKEN,    /* found whole, every lookup of it done and good: its memory used again */
};

/* A key's value that came in its group's object: where in the object. */
struct group_ref {
	const unsigned char *at; /* NULL: none */
	size_t len;
	int rejected;            /* a lookup found it failed its checks */
};

struct remote_store {
	struct cache_store base; /* first: the front's handle */
	struct remote_transport *t;
	char *display;           /* the URL for messages */
	int read_only;
	int compress;            /* upload values compressed when smaller (compress.h) */
	int sign;                /* a secret: sign uploads, check lookups */
	unsigned char tagkey[BLAKE2B_KEYBYTES];
	size_t tagkeylen;

	pthread_mutex_t tlock;   /* the transport (taken without `lock`, or after it) */
	pthread_mutex_t lock;    /* everything below */
	pthread_cond_t arrived;  /* a chunk of the prefetch's answers is in */
	pthread_cond_t room;     /* a lookup took an answer, waits for one, or the end came */
	/* the prefetch's answers, sorted by key */
	unsigned char (*pkeys)[CACHE_KEY_LEN];
	struct strbuf *pvals;
	signed char *pstatus;    /* enum remote_status, PENDING; REMOTE_FAILED after a get took it */
	size_t *porder;          /* the order to fetch them in: the caller's */
	size_t *ppos;            /* per key: its place in porder */
	unsigned *puses;         /* per key: the lookups still to come (a source twice: 2) */
	unsigned char *pkept;    /* per key: its value was taken once and is kept, out of `held` */
	size_t pn;
	size_t taken_upto;       /* one past the furthest place in porder a lookup took */
	size_t wanted_upto;      /* one past the furthest place a lookup waits for */
	size_t held;             /* bytes of answers arrived and not taken */
	size_t waiting_at;       /* the chunk the prefetch waits for room to fetch; SIZE_MAX: none */
	int stopping;            /* the prefetch is no longer wanted (the flush or close) */
	pthread_t fetcher;
	int fetching;            /* the fetcher thread runs (or ran, not joined yet) */
	double pstarted;         /* when the prefetch began */
	/* groups (remote-group.h), when the transport wants them */
	struct remote_group *groups; /* first, n: the group's keys in pkeys */
	size_t ngroups;
	signed char *gstate;     /* per group: enum group_state */
	struct strbuf *graw;     /* per group: the object found, until the close */
	size_t *pgroup;          /* per key: its group, SIZE_MAX: none asked */
	struct group_ref *pref;  /* per key: its value in the group's object */
	struct strbuf *gvals;    /* per key: a value this run got, for its group's upload */
	size_t *gleft;           /* per group: its keys not looked up yet */
	unsigned char *pseen;    /* per key: looked up (once is enough for gleft) */
	size_t *gfound;          /* per group: its keys its object gave */
	unsigned char *gbad;     /* per group: a lookup rejected a value it gave */
	size_t glive;            /* groups arrived whose lookups are not all done */
	size_t gbytes;           /* the bytes of the objects held */
	size_t greused;          /* objects received into the memory of one taken */
	size_t gwanted;          /* one past the furthest group a lookup waits for */
	struct strbuf *gfree;    /* the memory of groups taken, for the next ones */
	size_t ngfree;
	size_t groups_sent;
	/* uploads not sent yet */
	hexkey *qhex;
	struct strbuf *qvals;
	size_t qn, qalloc, qbytes;

	struct cache_remote_stats st;
	size_t errors;
	int off, warned, warned_rejected, warned_unreadable;
	double busy;             /* seconds spent on the server */
};

/* store-remote.c */
int remote_cmp_key(const void *a, const void *b);
/* A batch's io added to the counters; the run's one warning; switching off.  Under the lock. */
void remote_account(struct remote_store *r, struct remote_io *io, double started);
void remote_io_init(struct remote_io *io, const struct remote_store *r);

/* remote-prefetch.c */
/* The store's prefetch op (cache-store.h). */
void remote_prefetch(struct cache_store *s, const unsigned char (*keys)[CACHE_KEY_LEN], size_t n,
		     const unsigned char (*all)[CACHE_KEY_LEN], size_t nall);
/* Wait for `key`'s answer if it was prefetched: its index, or -1.  Under the lock. */
ssize_t remote_prefetched(struct remote_store *r, const unsigned char *key);
/* After a lookup moved taken_upto, wanted_upto or held: let the prefetch go on.  Under the lock. */
void remote_wake_fetcher(struct remote_store *r);
/* Stop the prefetch where it is and join its thread (the flush, the close). */
void remote_join_fetcher(struct remote_store *r);
/* Keep value `v` this run got for key `k`, when its group will need it.  Under the lock. */
void remote_stash(struct remote_store *r, size_t k, const void *v, size_t len);
/* A lookup of key `k` is done: its group's upkeep.  Under the lock. */
void remote_group_lookup_done(struct remote_store *r, size_t k);
/* Upload the groups this run completed or mended.  Under the lock, after the lookups. */
void remote_send_groups(struct remote_store *r);
size_t remote_groups_found(const struct remote_store *r);
/* Free what the prefetch and the groups hold (the close). */
void remote_prefetch_release(struct remote_store *r);

#endif
