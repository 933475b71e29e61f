/*
 * store-remote.c - the remote store over a transport (store-remote.h):
 * values and tags, prefetched answers, queued uploads, counters and
 * faults.  The transports are store-http.c and store-redis.c.
 */
#define _POSIX_C_SOURCE 200809L
#include "store-remote.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blake2b.h"
#include "cache-store.h"
#include "compress.h"
#include "remote-group.h"
#include "store-disk.h"
#include "util.h"
#include "banned.h"

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

/* ---- values ------------------------------------------------------------ */

static void to_hex(const unsigned char *key, char *hex)
{
	hex_encode(key, CACHE_KEY_LEN, hex);
}

static void make_tag(const struct remote_store *r, const unsigned char *key, const void *entry,
		     size_t len, unsigned char tag[REMOTE_TAG_LEN])
{
	struct blake2b s;

	blake2b_init_key(&s, REMOTE_TAG_LEN, r->tagkey, r->tagkeylen);
	blake2b_update(&s, REMOTE_TAG_CONTEXT, sizeof(REMOTE_TAG_CONTEXT)); /* with its NUL */
	blake2b_update(&s, key, CACHE_KEY_LEN);
	blake2b_update(&s, entry, len);
	blake2b_final(&s, tag);
}

static int same_tag(const unsigned char *a, const unsigned char *b)
{
	unsigned char d = 0;
	size_t i;

	for (i = 0; i < REMOTE_TAG_LEN; i++) /* constant time: no early exit */
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

/* Whether the tag at `tag` is the one of `len` bytes at `data` for `key`. */
static int tag_ok(const struct remote_store *r, const unsigned char *key, const void *data,
		  size_t len, const unsigned char *tag)
{
	unsigned char want[REMOTE_TAG_LEN];

	make_tag(r, key, data, len, want);
	return same_tag(want, tag);
}

/*
 * Check value `v` of `key`; 0 with its parts appended to `code` and
 * `warnings`, -1 when it fails a check, COMPRESS_UNSUPPORTED when it is
 * compressed and prepyc has no libzstd (at build or at run time).  A signed value's tag
 * is checked before anything else is done with it.
 */
static int take_value(const struct remote_store *r, const unsigned char *key, const void *v,
		      size_t len, struct strbuf *code, struct strbuf *warnings, unsigned char *sum)
{
	const unsigned char *p = v;
	struct strbuf plain = STRBUF_INIT;
	size_t size, code_len;
	int rc = -1;

	if (compressed(p, len)) {
		/* BODY: with a secret, all but the tag; without, the frame (a tag may follow) */
		size_t body = r->sign ? (len >= REMOTE_TAG_LEN ? len - REMOTE_TAG_LEN : 0)
				      : compressed_frame_size(p, len);

		if (!compress_available())
			return COMPRESS_UNSUPPORTED;
		if (!body || (body != len && body + REMOTE_TAG_LEN != len))
			return -1;
		if (r->sign && !tag_ok(r, key, p, body, p + body))
			return -1;
		if (decompress_value(p, body, REMOTE_VALUE_MAX, &plain) != COMPRESS_OK)
			goto out;
		p = (const unsigned char *)plain.buf;
		len = plain.len;
		size = disk_entry_size(p, len);
		if (!size || len != size)
			goto out;
	} else {
		/* without a secret, a tag that follows is not asked for */
		size = disk_entry_size(p, len);
		if (!size || (len != size && len != size + REMOTE_TAG_LEN))
			goto out;
		if (r->sign && (len != size + REMOTE_TAG_LEN || !tag_ok(r, key, p, size, p + size)))
			goto out;
	}
	if (disk_entry_check(p, size, key) < 0)
		goto out;
	code_len = (size_t)get_le32(p + 48) | (size_t)get_le32(p + 52) << 16 << 16;
	strbuf_add(code, p + DISK_HEADER_LEN, code_len);
	strbuf_add(warnings, p + DISK_HEADER_LEN + code_len, size - DISK_HEADER_LEN - code_len);
	if (sum)
		memcpy(sum, p + DISK_SUM_OFFSET, CACHE_SUM_LEN); /* checked above */
	rc = 0;
out:
	strbuf_release(&plain);
	return rc;
}

/* ---- faults ------------------------------------------------------------ */

void remote_io_fail(struct remote_io *io, int off, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	io->errors++;
	if (off)
		io->off = 1;
	if (io->why.len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	strbuf_addstr(&io->why, why);
}

/* Add a batch's io to the counters; the run's one warning; switch off.  Under the lock. */
static void account(struct remote_store *r, struct remote_io *io, double started)
{
	r->busy += now_seconds() - started;
	r->st.requests += io->requests;
	r->st.bytes_sent += io->sent;
	r->st.bytes_received += io->received;
	r->st.errors += io->errors;
	r->errors += io->errors;
	if (io->errors && !r->warned) {
		r->warned = 1;
		warning("remote cache '%s': %s: compiling locally what it cannot give", r->display,
			io->why.len ? io->why.buf : "error");
	}
	if (!r->off && (io->off || r->errors >= REMOTE_MAX_ERRORS)) {
		r->off = 1;
		pthread_cond_broadcast(&r->room); /* a prefetch waiting for room ends */
		trace("remote cache '%s': switched off for the rest of the run (%zu errors)",
		      r->display, r->errors);
	}
	strbuf_release(&io->why);
}

static void io_init(struct remote_io *io, const struct remote_store *r)
{
	memset(io, 0, sizeof(*io));
	strbuf_init(&io->why, 0);
	io->max_errors = r->errors < REMOTE_MAX_ERRORS ? REMOTE_MAX_ERRORS - r->errors : 1;
}

/* An entry not used: `why` is take_value()'s.  Under the lock. */
static void note_rejected(struct remote_store *r, int why)
{
	r->st.rejected++;
	if (why == COMPRESS_UNSUPPORTED && !r->warned_unreadable) {
		r->warned_unreadable = 1;
		warning("remote cache '%s': an entry is compressed with zstd, which this prepyc "
			"cannot read (install %s): compiling it locally", r->display,
			compress_missing_hint());
	} else if (why != COMPRESS_UNSUPPORTED && !r->warned_rejected) {
		r->warned_rejected = 1;
		warning("remote cache '%s': rejected an entry that failed its checks%s: compiling "
			"it locally", r->display, r->sign ? " or authentication" : "");
	}
}

/* ---- lookups ----------------------------------------------------------- */

static int cmp_key(const void *a, const void *b)
{
	return memcmp(a, b, CACHE_KEY_LEN);
}

/* Fetch keys pkeys[idx[0..n)] (PENDING, asked by no one else); publish the answers.  Not under `lock`. */
static void fetch_keys(struct remote_store *r, const size_t *idx, size_t n)
{
	hexkey *hex = xcalloc(n, sizeof(*hex));
	struct strbuf *values = xcalloc(n, sizeof(*values));
	signed char *status = xcalloc(n, sizeof(*status));
	struct remote_batch b = { n, (const hexkey *)hex, values, status };
	struct remote_io io;
	double started = now_seconds();
	size_t i;

	pthread_mutex_lock(&r->lock);
	io_init(&io, r);
	pthread_mutex_unlock(&r->lock);
	for (i = 0; i < n; i++) {
		to_hex(r->pkeys[idx[i]], hex[i]); /* the keys do not change */
		strbuf_init(&values[i], 0);
	}
	pthread_mutex_lock(&r->tlock);
	r->t->ops->get(r->t, &b, &io);
	pthread_mutex_unlock(&r->tlock);
	pthread_mutex_lock(&r->lock);
	for (i = 0; i < n; i++) {
		size_t k = idx[i];

		r->pvals[k] = values[i]; /* moved */
		r->held += values[i].len;
		r->pstatus[k] = status[i];
	}
	account(r, &io, started);
	pthread_cond_broadcast(&r->arrived);
	pthread_mutex_unlock(&r->lock);
	free(hex);
	free(values);
	free(status);
}

/* ---- groups (remote-group.h) ------------------------------------------- */

struct group_walk {
	struct remote_store *r;
	const struct remote_group *g;
	size_t found;
};

/* A record of a group's object: its key's value, if the key is the group's and has none yet. */
static void group_record(void *arg, const unsigned char *key, const void *value, size_t len)
{
	struct group_walk *w = arg;
	struct remote_store *r = w->r;
	const unsigned char (*at)[CACHE_KEY_LEN] =
		bsearch(key, r->pkeys + w->g->first, w->g->n, sizeof(*r->pkeys), cmp_key);
	size_t k;

	if (!at)
		return;
	k = (size_t)(at - r->pkeys);
	if (r->pref[k].at)
		return; /* a key twice: the first */
	r->pref[k].at = value;
	r->pref[k].len = len;
	w->found++;
}

/*
 * Ask for groups idx[0..n); publish what came.  The objects are parsed
 * outside `lock`: until published, their keys are PENDING and no lookup
 * reads their refs.
 */
static void fetch_group_chunk(struct remote_store *r, const size_t *idx, size_t n)
{
	hexkey *hex = xcalloc(n, sizeof(*hex));
	signed char *status = xcalloc(n, sizeof(*status));
	struct strbuf *values = xcalloc(n, sizeof(*values));
	struct remote_batch b = { n, (const hexkey *)hex, values, status };
	struct remote_io io;
	double started = now_seconds();
	size_t i, k;

	pthread_mutex_lock(&r->lock);
	io_init(&io, r);
	pthread_mutex_unlock(&r->lock);
	for (i = 0; i < n; i++) {
		hex_encode(r->groups[idx[i]].name, CACHE_KEY_LEN, hex[i]);
		strbuf_init(&values[i], 0);
	}
	pthread_mutex_lock(&r->tlock);
	r->t->ops->get(r->t, &b, &io);
	pthread_mutex_unlock(&r->tlock);
	for (i = 0; i < n; i++) {
		struct group_walk w = { r, &r->groups[idx[i]], 0 };

		r->graw[idx[i]] = values[i]; /* moved: the refs point into it */
		if (status[i] == REMOTE_DONE)
			status[i] = remote_group_parse(values[i].buf, values[i].len, group_record,
						       &w) == 0 ? GROUP_FOUND : GROUP_BAD;
		else
			status[i] = status[i] == REMOTE_MISSING ? GROUP_MISSING : GROUP_FAILED;
	}
	pthread_mutex_lock(&r->lock);
	for (i = 0; i < n; i++) {
		const struct remote_group *g = &r->groups[idx[i]];

		r->gstate[idx[i]] = status[i];
		for (k = g->first; k < g->first + g->n; k++)
			if (r->pref[k].at)
				r->pstatus[k] = REMOTE_DONE;
	}
	account(r, &io, started);
	pthread_cond_broadcast(&r->arrived);
	pthread_mutex_unlock(&r->lock);
	free(hex);
	free(values);
	free(status);
}

/* The groups asked, REMOTE_GROUP_CHUNK at a time, before any key alone. */
static void fetch_groups(struct remote_store *r)
{
	size_t idx[REMOTE_GROUP_CHUNK], g = 0, n, bytes = 0;

	while (g < r->ngroups) {
		int off;

		pthread_mutex_lock(&r->lock);
		off = r->off || r->stopping;
		for (n = 0; !off && g < r->ngroups && n < REMOTE_GROUP_CHUNK; g++) {
			if (r->gstate[g] != GROUP_ASKED)
				continue;
			if (bytes > REMOTE_GROUP_HELD_MAX)
				r->gstate[g] = GROUP_UNASKED; /* its keys, one by one */
			else
				idx[n++] = g;
		}
		pthread_mutex_unlock(&r->lock);
		if (off)
			return;
		if (n)
			fetch_group_chunk(r, idx, n);
		for (; n; n--)
			bytes += r->graw[idx[n - 1]].len;
	}
}

/* Must the prefetch wait before fetching the chunk at `at`?  Under `lock`. */
static int no_room(const struct remote_store *r, size_t at)
{
	return !r->off && !r->stopping && at >= r->wanted_upto &&
	       (at > r->taken_upto + REMOTE_LOOKAHEAD || r->held > REMOTE_LOOKAHEAD_BYTES);
}

/*
 * Under `lock`, after a lookup moved taken_upto, wanted_upto or held: wake
 * the prefetch if it waits and may now go on.  Only then: a lookup that
 * woke it at every answer taken (a futex call and two context switches
 * each) cost more than the answers' copies.
 */
static void wake_fetcher(struct remote_store *r)
{
	if (r->waiting_at != SIZE_MAX && !no_room(r, r->waiting_at))
		pthread_cond_signal(&r->room);
}

/* The prefetch: the groups, then the keys still PENDING a chunk at a time, while lookups go on. */
static void *fetch_all(void *arg)
{
	struct remote_store *r = arg;
	size_t idx[REMOTE_PREFETCH_CHUNK], at = 0, n, i;

	fetch_groups(r);
	while (at < r->pn) {
		int off;

		pthread_mutex_lock(&r->lock);
		r->waiting_at = at;
		while (no_room(r, at))
			pthread_cond_wait(&r->room, &r->lock);
		r->waiting_at = SIZE_MAX;
		off = r->off || r->stopping;
		for (n = 0; !off && at < r->pn && n < REMOTE_PREFETCH_CHUNK; at++)
			if (r->pstatus[r->porder[at]] == PENDING)
				idx[n++] = r->porder[at];
		pthread_mutex_unlock(&r->lock);
		if (off)
			break;
		if (n)
			fetch_keys(r, idx, n);
	}
	pthread_mutex_lock(&r->lock);
	for (i = 0; i < r->pn; i++) /* switched off: what was not asked is not coming */
		if (r->pstatus[i] == PENDING)
			r->pstatus[i] = REMOTE_FAILED;
	for (i = 0; i < r->ngroups; i++)
		if (r->gstate[i] == GROUP_ASKED)
			r->gstate[i] = GROUP_FAILED;
	pthread_cond_broadcast(&r->arrived);
	pthread_mutex_unlock(&r->lock);
	trace("remote cache '%s': prefetched %zu keys in %.1f ms", r->display, r->pn,
	      (now_seconds() - r->pstarted) * 1e3);
	return NULL;
}

static void join_fetcher(struct remote_store *r)
{
	if (r->fetching) {
		pthread_mutex_lock(&r->lock);
		r->stopping = 1;
		pthread_cond_broadcast(&r->room);
		pthread_mutex_unlock(&r->lock);
		pthread_join(r->fetcher, NULL);
		r->fetching = 0;
	}
}

/*
 * Cut the run's keys `all` into groups; ask for those none of whose keys
 * a store before had (all in pkeys).  Before the fetcher starts.
 */
static void plan_groups(struct remote_store *r, const unsigned char (*all)[CACHE_KEY_LEN],
			size_t nall)
{
	unsigned char (*ak)[CACHE_KEY_LEN] = xcalloc(nall, sizeof(*ak));
	size_t i, k, m;

	memcpy(ak, all, nall * sizeof(*ak));
	qsort(ak, nall, sizeof(*ak), cmp_key);
	for (i = 1, m = 1; i < nall; i++)
		if (memcmp(ak[i], ak[m - 1], CACHE_KEY_LEN))
			memcpy(ak[m++], ak[i], CACHE_KEY_LEN);
	r->ngroups = remote_groups_cut((const unsigned char (*)[CACHE_KEY_LEN])ak, m,
				       r->t->group_keys, &r->groups);
	r->gstate = xcalloc(r->ngroups + 1, sizeof(*r->gstate));
	r->graw = xcalloc(r->ngroups + 1, sizeof(*r->graw));
	r->pgroup = xcalloc(r->pn, sizeof(*r->pgroup));
	r->pref = xcalloc(r->pn, sizeof(*r->pref));
	r->gvals = xcalloc(r->pn, sizeof(*r->gvals));
	for (k = 0; k < r->pn; k++) {
		r->pgroup[k] = SIZE_MAX;
		strbuf_init(&r->gvals[k], 0);
	}
	for (i = 0; i < r->ngroups; i++) {
		struct remote_group *g = &r->groups[i];
		const unsigned char (*at)[CACHE_KEY_LEN] =
			bsearch(ak[g->first], r->pkeys, r->pn, sizeof(*r->pkeys), cmp_key);
		size_t first = at ? (size_t)(at - r->pkeys) : 0;

		strbuf_init(&r->graw[i], 0);
		if (!at || g->n > r->pn - first ||
		    memcmp(r->pkeys[first], ak[g->first], g->n * CACHE_KEY_LEN)) {
			g->n = 0; /* a store before has some of it: its keys one by one */
			continue;
		}
		g->first = first; /* from now on, in pkeys */
		r->gstate[i] = GROUP_ASKED;
		for (k = first; k < first + g->n; k++)
			r->pgroup[k] = i;
	}
	free(ak);
}

static void remote_prefetch(struct cache_store *s, const unsigned char (*keys)[CACHE_KEY_LEN],
			    size_t n, const unsigned char (*all)[CACHE_KEY_LEN], size_t nall)
{
	struct remote_store *r = (struct remote_store *)s;
	unsigned char *seen;
	size_t i, m;

	join_fetcher(r);
	if (r->off || r->pn || !n)
		return; /* one prefetch a run */
	r->pstarted = now_seconds();
	r->pkeys = xcalloc(n, sizeof(*r->pkeys));
	memcpy(r->pkeys, keys, n * sizeof(*r->pkeys));
	qsort(r->pkeys, n, sizeof(*r->pkeys), cmp_key);
	for (i = 1, m = 1; i < n; i++) /* the same source twice: one request */
		if (memcmp(r->pkeys[i], r->pkeys[m - 1], CACHE_KEY_LEN))
			memcpy(r->pkeys[m++], r->pkeys[i], CACHE_KEY_LEN);
	r->pn = m;
	r->pvals = xcalloc(m, sizeof(*r->pvals));
	r->pstatus = xcalloc(m, sizeof(*r->pstatus));
	r->porder = xcalloc(m, sizeof(*r->porder));
	r->ppos = xcalloc(m, sizeof(*r->ppos));
	r->puses = xcalloc(m, sizeof(*r->puses));
	r->pkept = xcalloc(m, 1);
	seen = xcalloc(m, 1);
	for (i = 0; i < m; i++) {
		strbuf_init(&r->pvals[i], 0);
		r->pstatus[i] = PENDING;
	}
	/* fetched in the caller's order, which is the order its lookups come in */
	for (i = 0, m = 0; i < n; i++) {
		unsigned char (*at)[CACHE_KEY_LEN] =
			bsearch(keys[i], r->pkeys, r->pn, sizeof(*r->pkeys), cmp_key);
		size_t k = (size_t)(at - r->pkeys);

		r->puses[k]++;
		if (!seen[k]) {
			seen[k] = 1;
			r->ppos[k] = m;
			r->porder[m++] = k;
		}
	}
	free(seen);
	if (r->t->group_keys)
		plan_groups(r, all, nall);
	if (pthread_create(&r->fetcher, NULL, fetch_all, r) == 0)
		r->fetching = 1;
	else
		fetch_all(r); /* no thread: the lookups wait for all of it */
}

/* Wait for `key`'s answer if it was prefetched; its index, or -1.  Under `lock`. */
static ssize_t prefetched(struct remote_store *r, const unsigned char *key)
{
	unsigned char (*at)[CACHE_KEY_LEN];
	size_t i;

	at = r->pn ? bsearch(key, r->pkeys, r->pn, sizeof(*r->pkeys), cmp_key) : NULL;
	if (!at)
		return -1;
	i = (size_t)(at - r->pkeys);
	if (r->pstatus[i] == PENDING && r->ppos[i] + 1 > r->wanted_upto) {
		r->wanted_upto = r->ppos[i] + 1;
		wake_fetcher(r);
	}
	while (r->pstatus[i] == PENDING)
		pthread_cond_wait(&r->arrived, &r->lock);
	return (ssize_t)i;
}

static int remote_has(struct cache_store *s, const unsigned char key[CACHE_KEY_LEN])
{
	struct remote_store *r = (struct remote_store *)s;
	ssize_t i;
	int has;

	pthread_mutex_lock(&r->lock);
	i = prefetched(r, key);
	has = i >= 0 && r->pstatus[i] == REMOTE_DONE;
	pthread_mutex_unlock(&r->lock);
	return has;
}

/* One key not prefetched: a batch of one.  Under the lock. */
static signed char fetch_one(struct remote_store *r, const unsigned char *key,
			     struct strbuf *value)
{
	hexkey hex;
	signed char status = REMOTE_FAILED;
	struct remote_batch b = { 1, (const hexkey *)&hex, value, &status };
	struct remote_io io;
	double started = now_seconds();

	to_hex(key, hex);
	io_init(&io, r);
	pthread_mutex_lock(&r->tlock);
	r->t->ops->get(r->t, &b, &io);
	pthread_mutex_unlock(&r->tlock);
	account(r, &io, started);
	return status;
}

/*
 * Keep a value this run got for `k` (under the lock), when its group is to
 * be uploaded at the flush and lacks it: asked and missing, or found
 * without a good value for it.
 */
static void stash(struct remote_store *r, size_t k, const void *v, size_t len)
{
	size_t g = r->pgroup ? r->pgroup[k] : SIZE_MAX;

	if (g == SIZE_MAX || r->gvals[k].len || (r->pref[k].at && !r->pref[k].rejected))
		return;
	if (r->gstate[g] == GROUP_MISSING || r->gstate[g] == GROUP_BAD ||
	    r->gstate[g] == GROUP_FOUND)
		strbuf_add(&r->gvals[k], v, len);
}

static int remote_get_entry(struct cache_store *s, const unsigned char key[CACHE_KEY_LEN],
			    struct strbuf *code, struct strbuf *warnings, unsigned char *sum)
{
	struct remote_store *r = (struct remote_store *)s;
	struct strbuf one = STRBUF_INIT;
	const void *v = NULL;
	size_t len = 0;
	signed char status;
	ssize_t i;
	int hit = 0, took, grouped = 0;

	pthread_mutex_lock(&r->lock);
	i = prefetched(r, key);
	if (r->off && !(i >= 0 && r->pstatus[i] == REMOTE_DONE)) {
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	if (i >= 0 && r->pstatus[i] != REMOTE_FAILED && r->pref && r->pref[i].at) {
		/* in its group's object, which stays until the close: read in place */
		status = REMOTE_DONE;
		grouped = 1;
		v = r->pref[i].at;
		len = r->pref[i].len;
		if (r->ppos[i] + 1 > r->taken_upto)
			r->taken_upto = r->ppos[i] + 1;
		wake_fetcher(r);
	} else if (i >= 0 && r->pstatus[i] != REMOTE_FAILED) {
		status = r->pstatus[i];
		if (!r->pkept[i])
			r->held -= r->pvals[i].len; /* taken: no longer the lookahead's */
		if (r->puses[i] > 1) {
			/*
			 * The same source again later (an empty __init__.py): a copy, and the
			 * value kept for it (with a local cache, that lookup hits there first).
			 */
			r->puses[i]--;
			r->pkept[i] = 1;
			strbuf_add(&one, r->pvals[i].buf, r->pvals[i].len);
		} else {
			/* the last lookup: the value moves to us; another one asks again */
			one = r->pvals[i];
			strbuf_init(&r->pvals[i], 0);
			r->pstatus[i] = REMOTE_FAILED;
		}
		if (r->ppos[i] + 1 > r->taken_upto)
			r->taken_upto = r->ppos[i] + 1;
		wake_fetcher(r); /* held went down too */
	} else {
		status = fetch_one(r, key, &one);
	}
	if (status == REMOTE_MISSING)
		r->st.misses++;
	pthread_mutex_unlock(&r->lock);
	if (status != REMOTE_DONE) {
		strbuf_release(&one);
		return 0;
	}
	if (!grouped) {
		v = one.buf;
		len = one.len;
	}
	/* its checks (a hash or two of it) and copies unlocked: lookups run on several threads */
	took = take_value(r, key, v, len, code, warnings, sum);
	hit = took == 0;
	pthread_mutex_lock(&r->lock);
	if (hit) {
		r->st.hits++;
		if (i >= 0 && !grouped)
			stash(r, (size_t)i, v, len);
	} else {
		note_rejected(r, took);
		if (grouped) { /* its group is mended at the flush; another lookup asks alone */
			r->pref[i].rejected = 1;
			r->pstatus[i] = REMOTE_FAILED;
		}
	}
	pthread_mutex_unlock(&r->lock);
	strbuf_release(&one);
	return hit;
}

static int remote_get(struct cache_store *s, const unsigned char key[CACHE_KEY_LEN],
		      struct strbuf *code, struct strbuf *warnings)
{
	return remote_get_entry(s, key, code, warnings, NULL);
}

/* ---- uploads ----------------------------------------------------------- */

/* Send the queue (or drop it when off).  Under the lock. */
static void send_queue(struct remote_store *r)
{
	size_t i;

	if (r->qn && !r->off) {
		signed char *status = xcalloc(r->qn, sizeof(*status));
		struct remote_batch b = { r->qn, (const hexkey *)r->qhex, r->qvals, status };
		struct remote_io io;
		double started = now_seconds();

		io_init(&io, r);
		pthread_mutex_lock(&r->tlock);
		r->t->ops->put(r->t, &b, &io);
		pthread_mutex_unlock(&r->tlock);
		for (i = 0; i < r->qn; i++) {
			if (status[i] == REMOTE_DONE) {
				r->st.uploads++;
				r->st.upload_bytes += r->qvals[i].len;
			}
		}
		free(status);
		account(r, &io, started);
	}
	for (i = 0; i < r->qn; i++)
		strbuf_release(&r->qvals[i]);
	r->qn = 0;
	r->qbytes = 0;
}

static int remote_put(struct cache_store *s, const unsigned char key[CACHE_KEY_LEN],
		      const void *code, size_t code_len, const void *warnings, size_t warnings_len,
		      uint64_t *bytes)
{
	struct remote_store *r = (struct remote_store *)s;
	struct strbuf v = STRBUF_INIT, z = STRBUF_INIT;

	if (r->read_only || r->off || (uint64_t)code_len + warnings_len > DISK_ENTRY_MAX_BODY)
		return 0;
	/* the hashing and compressing outside the lock */
	disk_entry_format(&v, key, code, code_len, warnings, warnings_len);
	if (r->compress && compress_value(v.buf, v.len, &z) == 0) {
		struct strbuf t = v;

		v = z;
		z = t;
	}
	strbuf_release(&z);
	if (r->sign) {
		unsigned char tag[REMOTE_TAG_LEN];

		make_tag(r, key, v.buf, v.len, tag);
		strbuf_add(&v, tag, REMOTE_TAG_LEN);
	}
	if (v.len > REMOTE_VALUE_MAX) {
		strbuf_release(&v);
		return 0;
	}
	*bytes = v.len;
	pthread_mutex_lock(&r->lock);
	if (r->pgroup) {
		const unsigned char (*at)[CACHE_KEY_LEN] =
			bsearch(key, r->pkeys, r->pn, sizeof(*r->pkeys), cmp_key);

		if (at)
			stash(r, (size_t)(at - r->pkeys), v.buf, v.len);
	}
	ALLOC_GROW(r->qvals, r->qn + 1, r->qalloc);
	r->qhex = xrealloc(r->qhex, r->qalloc * sizeof(*r->qhex));
	to_hex(key, r->qhex[r->qn]);
	r->qvals[r->qn++] = v;
	r->qbytes += v.len;
	if (r->qbytes >= REMOTE_QUEUE_MAX)
		send_queue(r);
	pthread_mutex_unlock(&r->lock);
	return 1;
}

/* ---- the end ----------------------------------------------------------- */

/*
 * Group `g`'s object into `obj` when it is to be uploaded (store-remote.h):
 * 1, or 0 when it is not.  After the lookups and puts.
 */
static int group_object(const struct remote_store *r, size_t g, struct strbuf *obj)
{
	const struct remote_group *gr = &r->groups[g];
	size_t k, count = 0, fresh = 0;

	if (r->gstate[g] != GROUP_MISSING && r->gstate[g] != GROUP_BAD &&
	    r->gstate[g] != GROUP_FOUND)
		return 0;
	for (k = gr->first; k < gr->first + gr->n; k++) {
		fresh += r->gvals[k].len != 0;
		count += r->gvals[k].len || (r->pref[k].at && !r->pref[k].rejected);
	}
	if (!fresh)
		return 0; /* nothing to add to what is there */
	remote_group_begin(obj, count);
	for (k = gr->first; k < gr->first + gr->n; k++) {
		if (r->gvals[k].len)
			remote_group_add(obj, r->pkeys[k], r->gvals[k].buf, r->gvals[k].len);
		else if (r->pref[k].at && !r->pref[k].rejected)
			remote_group_add(obj, r->pkeys[k], r->pref[k].at, r->pref[k].len);
	}
	return 1;
}

/* Upload the groups this run completed or mended, REMOTE_GROUP_CHUNK at a time.  Under the lock. */
static void send_groups(struct remote_store *r)
{
	hexkey hex[REMOTE_GROUP_CHUNK];
	struct strbuf obj[REMOTE_GROUP_CHUNK];
	signed char status[REMOTE_GROUP_CHUNK];
	size_t g = 0, n, i;

	while (g < r->ngroups && !r->off && !r->read_only) {
		struct remote_batch b = { 0, (const hexkey *)hex, obj, status };
		struct remote_io io;
		double started = now_seconds();

		for (n = 0; g < r->ngroups && n < REMOTE_GROUP_CHUNK; g++) {
			strbuf_init(&obj[n], 0);
			if (group_object(r, g, &obj[n]))
				hex_encode(r->groups[g].name, CACHE_KEY_LEN, hex[n++]);
			else
				strbuf_release(&obj[n]);
		}
		if (!n)
			break;
		b.n = n;
		io_init(&io, r);
		pthread_mutex_lock(&r->tlock);
		r->t->ops->put(r->t, &b, &io);
		pthread_mutex_unlock(&r->tlock);
		for (i = 0; i < n; i++) {
			r->groups_sent += status[i] == REMOTE_DONE;
			strbuf_release(&obj[i]);
		}
		account(r, &io, started);
	}
}

static void remote_flush(struct cache_store *s)
{
	struct remote_store *r = (struct remote_store *)s;

	join_fetcher(r);
	pthread_mutex_lock(&r->lock);
	send_queue(r);
	send_groups(r);
	pthread_mutex_unlock(&r->lock);
}

static void remote_stats(struct cache_store *s, struct cache_remote_stats *st)
{
	struct remote_store *r = (struct remote_store *)s;

	st->hits += r->st.hits;
	st->misses += r->st.misses;
	st->uploads += r->st.uploads;
	st->upload_bytes += r->st.upload_bytes;
	st->errors += r->st.errors;
	st->rejected += r->st.rejected;
	st->requests += r->st.requests;
	st->bytes_sent += r->st.bytes_sent;
	st->bytes_received += r->st.bytes_received;
}

static size_t groups_found(const struct remote_store *r)
{
	size_t i, n = 0;

	for (i = 0; i < r->ngroups; i++)
		n += r->gstate[i] == GROUP_FOUND;
	return n;
}

static void remote_close(struct cache_store *s, const char *label,
			 const struct cache_store_counts *counts)
{
	struct remote_store *r = (struct remote_store *)s;
	size_t i;

	(void)label;
	(void)counts;
	join_fetcher(r);
	send_queue(r); /* nothing, after the front's flush */
	if (r->st.requests || r->off)
		trace("remote cache '%s': hits=%llu misses=%llu uploads=%llu upload_bytes=%llu "
		      "errors=%llu rejected=%llu requests=%llu bytes_sent=%llu bytes_received=%llu "
		      "time=%.1fms groups=%zu found=%zu sent=%zu%s",
		      r->display, (unsigned long long)r->st.hits, (unsigned long long)r->st.misses,
		      (unsigned long long)r->st.uploads, (unsigned long long)r->st.upload_bytes,
		      (unsigned long long)r->st.errors, (unsigned long long)r->st.rejected,
		      (unsigned long long)r->st.requests, (unsigned long long)r->st.bytes_sent,
		      (unsigned long long)r->st.bytes_received, r->busy * 1e3, r->ngroups,
		      groups_found(r), r->groups_sent, r->off ? " (off)" : "");
	r->t->ops->free(r->t);
	for (i = 0; i < r->pn; i++)
		strbuf_release(&r->pvals[i]);
	free(r->pkeys);
	free(r->pvals);
	free(r->pstatus);
	free(r->porder);
	free(r->ppos);
	free(r->puses);
	free(r->pkept);
	for (i = 0; i < r->ngroups; i++)
		strbuf_release(&r->graw[i]);
	for (i = 0; r->gvals && i < r->pn; i++)
		strbuf_release(&r->gvals[i]);
	free(r->groups);
	free(r->gstate);
	free(r->graw);
	free(r->pgroup);
	free(r->pref);
	free(r->gvals);
	free(r->qhex);
	free(r->qvals);
	pthread_mutex_destroy(&r->lock);
	pthread_mutex_destroy(&r->tlock);
	pthread_cond_destroy(&r->arrived);
	pthread_cond_destroy(&r->room);
	free(r->display);
	for (i = 0; i < sizeof(r->tagkey); i++) /* the secret's key: not left in freed memory */
		((volatile unsigned char *)r->tagkey)[i] = 0;
	free(r);
}

static const struct cache_store_ops remote_ops = {
	.name = "remote",
	.get = remote_get,
	.get_entry = remote_get_entry,
	.put = remote_put,
	.close = remote_close,
	.has = remote_has,
	.prefetch = remote_prefetch,
	.flush = remote_flush,
	.stats = remote_stats,
};

/* ---- opening ----------------------------------------------------------- */

char *remote_url_display(const char *url)
{
	const char *scheme = strstr(url, "://"), *host, *end, *at;
	struct strbuf sb = STRBUF_INIT;

	if (!scheme)
		return xstrdup(url);
	host = scheme + 3;
	end = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(end - host));
	/* the last '@' of the authority: a password may hold one */
	while (at && memchr(at + 1, '@', (size_t)(end - at - 1)))
		at = memchr(at + 1, '@', (size_t)(end - at - 1));
	strbuf_add(&sb, url, (size_t)(host - url));
	if (at)
		host = at + 1;
	strbuf_add(&sb, host, strcspn(host, "?#"));
	return strbuf_detach(&sb, NULL);
}

static int has_prefix(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

struct cache_store *cache_store_remote_open(const char *url, const struct cache_remote_opts *o)
{
	struct remote_transport *t;

	if (has_prefix(url, "http://") || has_prefix(url, "https://"))
		t = remote_http_open(url, o);
	else if (has_prefix(url, "redis://") || has_prefix(url, "redis+unix://"))
		t = remote_redis_open(url, o);
	else {
		char *shown = remote_url_display(url);

		error("remote cache '%s': not a URL prepyc knows (redis://, redis+unix://, "
		      "http://, https://)", shown);
		free(shown);
		return NULL;
	}
	return t ? remote_store_new(t, url, o) : NULL;
}

struct cache_store *remote_store_new(struct remote_transport *t, const char *url,
				     const struct cache_remote_opts *o)
{
	struct remote_store *r = xcalloc(1, sizeof(*r));

	r->base.ops = &remote_ops;
	r->t = t;
	r->display = remote_url_display(url);
	r->read_only = o->read_only;
	r->compress = !o->uncompressed;
	if (o->secret && *o->secret) {
		size_t len = strlen(o->secret);

		r->sign = 1;
		if (len > BLAKE2B_KEYBYTES) {
			blake2b(r->tagkey, BLAKE2B_KEYBYTES, o->secret, len);
			r->tagkeylen = BLAKE2B_KEYBYTES;
		} else {
			memcpy(r->tagkey, o->secret, len);
			r->tagkeylen = len;
		}
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->tlock, NULL);
	pthread_cond_init(&r->arrived, NULL);
	pthread_cond_init(&r->room, NULL);
	r->waiting_at = SIZE_MAX;
	return &r->base;
}
