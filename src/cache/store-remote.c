/*
 * store-remote.c - the remote store over a transport (store-remote.h):
 * values and tags, lookups, queued uploads, counters and faults.  The
 * prefetch and the groups are remote-prefetch.c; the transports are
 * store-http.c and store-redis.c.
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
#include "remote-store.h"
#include "store-disk.h"
#include "util.h"
#include "banned.h"

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
 * `warnings` (and `form` filled, when not NULL), -1 when it fails a check,
 * COMPRESS_UNSUPPORTED when it is compressed and prepyc has no libzstd (at
 * build or at run time).  A signed value's tag is checked before anything
 * else is done with it.
 */
static int take_value(const struct remote_store *r, const unsigned char *key, const void *v,
		      size_t len, struct strbuf *code, struct strbuf *warnings,
		      struct cache_entry_form *form)
{
	const unsigned char *p = v;
	struct strbuf plain = STRBUF_INIT;
	size_t size, code_len, frame = 0;
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
		frame = body;
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
	if (form) {
		memcpy(form->sum, p + DISK_SUM_OFFSET, CACHE_SUM_LEN); /* checked above */
		if (frame) /* the frame of this very entry: a back-fill may store it as it is */
			strbuf_add(&form->frame, v, frame);
	}
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
void remote_account(struct remote_store *r, struct remote_io *io, double started)
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

void remote_io_init(struct remote_io *io, const struct remote_store *r)
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

int remote_cmp_key(const void *a, const void *b)
{
	return memcmp(a, b, CACHE_KEY_LEN);
}

static int remote_has(struct cache_store *s, const unsigned char key[CACHE_KEY_LEN])
{
	struct remote_store *r = (struct remote_store *)s;
	ssize_t i;
	int has;

	pthread_mutex_lock(&r->lock);
	i = remote_prefetched(r, key);
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
	remote_io_init(&io, r);
	pthread_mutex_lock(&r->tlock);
	r->t->ops->get(r->t, &b, &io);
	pthread_mutex_unlock(&r->tlock);
	remote_account(r, &io, started);
	return status;
}

/*
 * take_value() without the lock (its checks, a hash or two of the value,
 * and copies: lookups run on several threads), then the lock taken again
 * and a rejection counted; 1 on a hit.
 */
static int take_unlocked(struct remote_store *r, const unsigned char *key, const void *v,
			 size_t len, struct strbuf *code, struct strbuf *warnings,
			 struct cache_entry_form *form)
{
	int took = take_value(r, key, v, len, code, warnings, form);

	pthread_mutex_lock(&r->lock);
	if (took)
		note_rejected(r, took);
	return took == 0;
}

static int remote_get_entry(struct cache_store *s, const unsigned char key[CACHE_KEY_LEN],
			    struct strbuf *code, struct strbuf *warnings,
			    struct cache_entry_form *form)
{
	struct remote_store *r = (struct remote_store *)s;
	struct strbuf one = STRBUF_INIT;
	const void *v = NULL;
	size_t len = 0;
	signed char status;
	ssize_t i;
	int hit = 0, grouped = 0;

	pthread_mutex_lock(&r->lock);
	i = remote_prefetched(r, key);
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
		if (r->puses[i])
			r->puses[i]--; /* the lookups still to come, should the object go first */
		if (r->ppos[i] + 1 > r->taken_upto)
			r->taken_upto = r->ppos[i] + 1;
		remote_wake_fetcher(r);
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
		remote_wake_fetcher(r); /* held went down too */
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
	hit = take_unlocked(r, key, v, len, code, warnings, form);
	if (!hit && grouped) {
		/* its group is mended at the flush; another lookup of it asks alone */
		r->pref[i].rejected = 1;
		r->gbad[r->pgroup[i]] = 1;
		r->pstatus[i] = REMOTE_FAILED;
		/* the key's own value, which a forged or damaged group does not touch */
		grouped = 0;
		if (!r->off && fetch_one(r, key, &one) == REMOTE_DONE) {
			pthread_mutex_unlock(&r->lock);
			v = one.buf;
			len = one.len;
			hit = take_unlocked(r, key, v, len, code, warnings, form);
		}
	}
	if (hit) {
		r->st.hits++;
		if (i >= 0 && !grouped)
			remote_stash(r, (size_t)i, v, len);
	}
	if (i >= 0)
		remote_group_lookup_done(r, (size_t)i);
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

		remote_io_init(&io, r);
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
		remote_account(r, &io, started);
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
			bsearch(key, r->pkeys, r->pn, sizeof(*r->pkeys), remote_cmp_key);

		if (at)
			remote_stash(r, (size_t)(at - r->pkeys), v.buf, v.len);
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

static void remote_flush(struct cache_store *s)
{
	struct remote_store *r = (struct remote_store *)s;

	remote_join_fetcher(r);
	pthread_mutex_lock(&r->lock);
	send_queue(r);
	remote_send_groups(r);
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

static void remote_close(struct cache_store *s, const char *label,
			 const struct cache_store_counts *counts)
{
	struct remote_store *r = (struct remote_store *)s;
	size_t i;

	(void)label;
	(void)counts;
	remote_join_fetcher(r);
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
		      remote_groups_found(r), r->groups_sent, r->off ? " (off)" : "");
	r->t->ops->free(r->t);
	remote_prefetch_release(r);
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
