/*
 * remote-prefetch.c - the remote store's prefetch (store-remote.h): a
 * thread that fetches the groups, then the keys still pending, while the
 * lookups take what arrived; and the groups' upkeep: what a lookup or an
 * upload gives a group that is to be uploaded, and the uploads of groups
 * at the flush.  The state is remote-store.h's.
 */
#define _POSIX_C_SOURCE 200809L
#include "remote-store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "banned.h"

/* ---- keys -------------------------------------------------------------- */

/* A batch to get: names, the values they bring, and its io. */
struct fetch {
	hexkey *hex;
	struct strbuf *values;
	signed char *status;
	struct remote_batch b;
	struct remote_io io;
	double started;
};

/* Make a batch of `n`: names to fill in, values empty.  Under the lock (the io's budget). */
static void fetch_begin(struct remote_store *r, struct fetch *f, size_t n)
{
	size_t i;

	f->hex = xcalloc(n, sizeof(*f->hex));
	f->values = xcalloc(n, sizeof(*f->values));
	f->status = xcalloc(n, sizeof(*f->status));
	for (i = 0; i < n; i++)
		strbuf_init(&f->values[i], 0);
	f->b = (struct remote_batch){ n, (const hexkey *)f->hex, f->values, f->status };
	f->started = now_seconds();
	remote_io_init(&f->io, r);
}

/* Run it on the transport.  Not under `lock`. */
static void fetch_run(struct remote_store *r, struct fetch *f)
{
	pthread_mutex_lock(&r->tlock);
	r->t->ops->get(r->t, &f->b, &f->io);
	pthread_mutex_unlock(&r->tlock);
}

/* Count it, wake the lookups, free it (its values moved out).  Under the lock. */
static void fetch_end(struct remote_store *r, struct fetch *f)
{
	remote_account(r, &f->io, f->started);
	pthread_cond_broadcast(&r->arrived);
	free(f->hex);
	free(f->values);
	free(f->status);
}

/*
 * Fetch keys pkeys[idx[0..n)] (PENDING, asked by no one else); publish
 * the answers.  Not under `lock`.
 */
static void fetch_keys(struct remote_store *r, const size_t *idx, size_t n)
{
	struct fetch f;
	size_t i;

	pthread_mutex_lock(&r->lock);
	fetch_begin(r, &f, n);
	pthread_mutex_unlock(&r->lock);
	for (i = 0; i < n; i++)
		hex_encode(r->pkeys[idx[i]], CACHE_KEY_LEN, f.hex[i]); /* the keys do not change */
	fetch_run(r, &f);
	pthread_mutex_lock(&r->lock);
	for (i = 0; i < n; i++) {
		size_t k = idx[i];

		r->pvals[k] = f.values[i]; /* moved */
		r->held += f.values[i].len;
		r->pstatus[k] = f.status[i];
	}
	fetch_end(r, &f);
	pthread_mutex_unlock(&r->lock);
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
		bsearch(key, r->pkeys + w->g->first, w->g->n, sizeof(*r->pkeys), remote_cmp_key);
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
	struct fetch f;
	size_t i, k;

	pthread_mutex_lock(&r->lock);
	fetch_begin(r, &f, n);
	for (i = 0; i < n; i++) {
		hex_encode(r->groups[idx[i]].name, CACHE_KEY_LEN, f.hex[i]);
		if (r->ngfree) {
			f.values[i] = r->gfree[--r->ngfree]; /* emptied, its room kept */
			r->greused++;
		}
	}
	pthread_mutex_unlock(&r->lock);
	fetch_run(r, &f);
	for (i = 0; i < n; i++) {
		struct group_walk w = { r, &r->groups[idx[i]], 0 };

		r->graw[idx[i]] = f.values[i]; /* moved: the refs point into it */
		if (f.status[i] == REMOTE_DONE)
			f.status[i] = remote_group_parse(f.values[i].buf, f.values[i].len,
							 group_record, &w) == 0 ? GROUP_FOUND
										: GROUP_BAD;
		else
			f.status[i] = f.status[i] == REMOTE_MISSING ? GROUP_MISSING : GROUP_FAILED;
		r->gfound[idx[i]] = w.found;
	}
	pthread_mutex_lock(&r->lock);
	for (i = 0; i < n; i++) {
		const struct remote_group *g = &r->groups[idx[i]];

		r->gstate[idx[i]] = f.status[i];
		r->glive += r->gfound[idx[i]] && r->gleft[idx[i]];
		r->gbytes += r->graw[idx[i]].len;
		for (k = g->first; k < g->first + g->n; k++)
			if (r->pref[k].at)
				r->pstatus[k] = REMOTE_DONE;
	}
	fetch_end(r, &f);
	pthread_mutex_unlock(&r->lock);
}

/* The groups asked, REMOTE_GROUP_CHUNK at a time, before any key alone. */
static void fetch_groups(struct remote_store *r)
{
	size_t idx[REMOTE_GROUP_CHUNK], g = 0, n;

	while (g < r->ngroups) {
		int off;

		pthread_mutex_lock(&r->lock);
		/* room: the lookups take the groups in their order (cachephase.c), and free them */
		while (!r->off && !r->stopping && r->glive >= REMOTE_GROUP_LIVE && g >= r->gwanted)
			pthread_cond_wait(&r->room, &r->lock);
		off = r->off || r->stopping;
		for (n = 0; !off && g < r->ngroups && n < REMOTE_GROUP_CHUNK &&
			    (n + r->glive < REMOTE_GROUP_LIVE || g < r->gwanted);
		     g++) {
			if (r->gstate[g] != GROUP_ASKED)
				continue;
			if (r->gbytes > REMOTE_GROUP_HELD_MAX)
				r->gstate[g] = GROUP_UNASKED; /* its keys, one by one */
			else
				idx[n++] = g;
		}
		pthread_mutex_unlock(&r->lock);
		if (off)
			return;
		if (n)
			fetch_group_chunk(r, idx, n);
	}
}

/* ---- the thread ------------------------------------------------------- */

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
void remote_wake_fetcher(struct remote_store *r)
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
	if (r->ngroups)
		trace("remote cache '%s': %zu groups, %zu received into the memory of one taken",
		      r->display, r->ngroups, r->greused);
	return NULL;
}

void remote_join_fetcher(struct remote_store *r)
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

/* ---- the start, and the lookups' side ---------------------------------- */

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
	qsort(ak, nall, sizeof(*ak), remote_cmp_key);
	for (i = 1, m = 1; i < nall; i++)
		if (memcmp(ak[i], ak[m - 1], CACHE_KEY_LEN))
			memcpy(ak[m++], ak[i], CACHE_KEY_LEN);
	r->ngroups = remote_groups_cut((const unsigned char (*)[CACHE_KEY_LEN])ak, m,
				       r->t->group_keys, &r->groups);
	r->gstate = xcalloc(r->ngroups + 1, sizeof(*r->gstate));
	r->graw = xcalloc(r->ngroups + 1, sizeof(*r->graw));
	r->gleft = xcalloc(r->ngroups + 1, sizeof(*r->gleft));
	r->pseen = xcalloc(r->pn, 1);
	r->gfound = xcalloc(r->ngroups + 1, sizeof(*r->gfound));
	r->gbad = xcalloc(r->ngroups + 1, 1);
	r->gfree = xcalloc(r->ngroups + 1, sizeof(*r->gfree));
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
			bsearch(ak[g->first], r->pkeys, r->pn, sizeof(*r->pkeys), remote_cmp_key);
		size_t first = at ? (size_t)(at - r->pkeys) : 0;

		strbuf_init(&r->graw[i], 0);
		if (!at || g->n > r->pn - first ||
		    memcmp(r->pkeys[first], ak[g->first], g->n * CACHE_KEY_LEN)) {
			g->n = 0; /* a store before has some of it: its keys one by one */
			continue;
		}
		g->first = first; /* from now on, in pkeys */
		r->gstate[i] = GROUP_ASKED;
		r->gleft[i] = g->n;
		for (k = first; k < first + g->n; k++)
			r->pgroup[k] = i;
	}
	free(ak);
}

void remote_prefetch(struct cache_store *s, const unsigned char (*keys)[CACHE_KEY_LEN],
			    size_t n, const unsigned char (*all)[CACHE_KEY_LEN], size_t nall)
{
	struct remote_store *r = (struct remote_store *)s;
	unsigned char *seen;
	size_t i, m;

	remote_join_fetcher(r);
	if (r->off || r->pn || !n)
		return; /* one prefetch a run */
	r->pstarted = now_seconds();
	r->pkeys = xcalloc(n, sizeof(*r->pkeys));
	memcpy(r->pkeys, keys, n * sizeof(*r->pkeys));
	qsort(r->pkeys, n, sizeof(*r->pkeys), remote_cmp_key);
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
			bsearch(keys[i], r->pkeys, r->pn, sizeof(*r->pkeys), remote_cmp_key);
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
ssize_t remote_prefetched(struct remote_store *r, const unsigned char *key)
{
	unsigned char (*at)[CACHE_KEY_LEN];
	size_t i;

	at = r->pn ? bsearch(key, r->pkeys, r->pn, sizeof(*r->pkeys), remote_cmp_key) : NULL;
	if (!at)
		return -1;
	i = (size_t)(at - r->pkeys);
	if (r->pstatus[i] == PENDING && r->ppos[i] + 1 > r->wanted_upto) {
		r->wanted_upto = r->ppos[i] + 1;
		remote_wake_fetcher(r);
	}
	while (r->pstatus[i] == PENDING) {
		/*
		 * A group phase waiting for room fetches up to this key's group; all
		 * of them, when the key is to be asked alone (its group came without it).
		 */
		size_t g = r->pgroup ? r->pgroup[i] : SIZE_MAX;
		size_t upto = g != SIZE_MAX && r->gstate[g] == GROUP_ASKED ? g + 1 : r->ngroups;

		if (upto > r->gwanted) {
			r->gwanted = upto;
			pthread_cond_signal(&r->room);
		}
		pthread_cond_wait(&r->arrived, &r->lock);
	}
	return (ssize_t)i;
}

/*
 * Keep a value this run got for `k` (under the lock), when its group is to
 * be uploaded at the flush and lacks it: asked and missing, or found
 * without a good value for it.
 */
void remote_stash(struct remote_store *r, size_t k, const void *v, size_t len)
{
	size_t g = r->pgroup ? r->pgroup[k] : SIZE_MAX;

	if (g == SIZE_MAX || r->gvals[k].len || (r->pref[k].at && !r->pref[k].rejected))
		return;
	if (r->gstate[g] == GROUP_MISSING || r->gstate[g] == GROUP_BAD ||
	    r->gstate[g] == GROUP_FOUND)
		strbuf_add(&r->gvals[k], v, len);
}

/*
 * A lookup of key `k` is done (under the lock).  When its group's keys
 * have all been looked up, the group no longer holds the group phase
 * back; and when it was found whole with every value good, nothing of it
 * is to be mended: the values still wanted (the same source again) are
 * copied out, and its memory goes to the next group to arrive, which
 * spares a page fault per 4 KiB of the tree.
 */
void remote_group_lookup_done(struct remote_store *r, size_t k)
{
	size_t g = r->pgroup ? r->pgroup[k] : SIZE_MAX, j;
	const struct remote_group *gr;

	if (g == SIZE_MAX || !r->gfound[g] || r->pseen[k])
		return;
	r->pseen[k] = 1;
	if (--r->gleft[g])
		return;
	r->glive--;
	pthread_cond_signal(&r->room);
	gr = &r->groups[g];
	if (r->gstate[g] != GROUP_FOUND || r->gbad[g] || r->gfound[g] != gr->n)
		return;
	r->gstate[g] = GROUP_TAKEN;
	r->gbytes -= r->graw[g].len;
	for (j = gr->first; j < gr->first + gr->n; j++) {
		if (r->puses[j] && r->pstatus[j] == REMOTE_DONE) {
			strbuf_add(&r->pvals[j], r->pref[j].at, r->pref[j].len);
			r->held += r->pref[j].len;
		} else {
			r->pstatus[j] = REMOTE_FAILED; /* a lookup of it after all asks alone */
		}
		r->pref[j].at = NULL;
	}
	strbuf_reset(&r->graw[g]);
	r->gfree[r->ngfree++] = r->graw[g];
	strbuf_init(&r->graw[g], 0);
}

/* ---- uploads of groups, the end ----------------------------------------- */

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
void remote_send_groups(struct remote_store *r)
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
		remote_io_init(&io, r);
		pthread_mutex_lock(&r->tlock);
		r->t->ops->put(r->t, &b, &io);
		pthread_mutex_unlock(&r->tlock);
		for (i = 0; i < n; i++) {
			r->groups_sent += status[i] == REMOTE_DONE;
			strbuf_release(&obj[i]);
		}
		remote_account(r, &io, started);
	}
}

size_t remote_groups_found(const struct remote_store *r)
{
	size_t i, n = 0;

	for (i = 0; i < r->ngroups; i++)
		n += r->gstate[i] == GROUP_FOUND || r->gstate[i] == GROUP_TAKEN;
	return n;
}

void remote_prefetch_release(struct remote_store *r)
{
	size_t i;

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
	for (i = 0; i < r->ngfree; i++)
		strbuf_release(&r->gfree[i]);
	free(r->gfree);
	free(r->gleft);
	free(r->pseen);
	free(r->gfound);
	free(r->gbad);
	free(r->groups);
	free(r->gstate);
	free(r->graw);
	free(r->pgroup);
	free(r->pref);
	free(r->gvals);
}
