/*
 * cache.c - the bytecode cache's front: the run's counters and the stores
 * it asks in order (cache.h, cache-store.h).  The disk store is
 * store-disk.c; `prepyc cache` is src/cli/cmd-cache.c on cache-admin.c.
 */
#define _POSIX_C_SOURCE 200809L
#include "cache.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cache-store.h"
#include "util.h"
#include "banned.h"

/* One store, with what this run did with it. */
struct cache_slot {
	struct cache_store *store;
	atomic_size_t hits, misses, stored;
	atomic_ullong stored_bytes;
};

/*
 * What cache_prefetch() found: the keys that no store before the first
 * batching one held (sorted), each with a flag cleared once it was put
 * there.  While set, those stores are not asked for the key, and their
 * back-fill need not look for it first (cache-store.h's `fill`).
 */
struct absent {
	unsigned char (*keys)[CACHE_KEY_LEN];
	atomic_uchar *live;
	size_t n;
	size_t before; /* the stores it is about: slots [0, before) */
};

struct cache {
	struct cache_slot **slots; /* asked in this order */
	size_t nr, alloc;
	atomic_size_t hits, misses, stored;
	struct absent absent;
	int local_off; /* cache_local_entries_off(): no store takes a back-fill */
};

struct cache *cache_open(const char *dir, uint64_t max_size)
{
	return cache_open_flags(dir, max_size, 0);
}

struct cache *cache_open_flags(const char *dir, uint64_t max_size, unsigned flags)
{
	struct cache_store *disk = cache_store_disk_open(dir, max_size, flags);
	struct cache *c;

	if (!disk)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	atomic_init(&c->hits, 0);
	atomic_init(&c->misses, 0);
	atomic_init(&c->stored, 0);
	cache_add_store(c, disk);
	return c;
}

void cache_add_store(struct cache *c, struct cache_store *s)
{
	struct cache_slot *slot;

	if (!c || !s)
		return;
	slot = xcalloc(1, sizeof(*slot));
	slot->store = s;
	atomic_init(&slot->hits, 0);
	atomic_init(&slot->misses, 0);
	atomic_init(&slot->stored, 0);
	atomic_init(&slot->stored_bytes, 0);
	ALLOC_GROW(c->slots, c->nr + 1, c->alloc);
	c->slots[c->nr++] = slot;
}

int cache_add_remote(struct cache *c, const char *url, const struct cache_remote_opts *o)
{
	struct cache_store *s = cache_store_remote_open(url, o);

	if (!s)
		return -1;
	if (c) {
		cache_add_store(c, s);
	} else {
		struct cache_store_counts none = { 0, 0, 0, 0, NULL };

		s->ops->close(s, "", &none);
	}
	return 0;
}

void cache_local_entries_off(struct cache *c)
{
	if (c && c->nr) {
		cache_store_disk_entries_off(c->slots[0]->store); /* cache_open_flags()'s */
		c->local_off = 1;
	}
}

int cache_batches(const struct cache *c)
{
	size_t i;

	for (i = 0; c && i < c->nr; i++)
		if (c->slots[i]->store->ops->prefetch)
			return 1;
	return 0;
}

static int cmp_key(const void *a, const void *b)
{
	return memcmp(a, b, CACHE_KEY_LEN);
}

/* Remember `want` (n keys no store before `before` holds): struct absent. */
static void note_absent(struct cache *c, const unsigned char (*want)[CACHE_KEY_LEN], size_t n,
			size_t before)
{
	struct absent *a = &c->absent;
	size_t k;

	a->keys = xcalloc(n, sizeof(*a->keys));
	memcpy(a->keys, want, n * sizeof(*a->keys));
	qsort(a->keys, n, sizeof(*a->keys), cmp_key);
	a->live = xcalloc(n, sizeof(*a->live));
	for (k = 0; k < n; k++)
		atomic_init(&a->live[k], 1);
	a->n = n;
	a->before = before;
}

/* The flag of `key` in struct absent, or NULL. */
static atomic_uchar *absent_flag(const struct cache *c, const unsigned char *key)
{
	const unsigned char (*at)[CACHE_KEY_LEN];

	if (!c->absent.n)
		return NULL;
	at = bsearch(key, c->absent.keys, c->absent.n, sizeof(*c->absent.keys), cmp_key);
	return at ? &c->absent.live[at - c->absent.keys] : NULL;
}

void cache_prefetch(struct cache *c, const unsigned char (*keys)[CACHE_KEY_LEN], size_t n)
{
	unsigned char (*want)[CACHE_KEY_LEN];
	size_t i, j, k, nwant;

	if (!c || !n)
		return;
	want = xcalloc(n, sizeof(*want));
	for (i = 0; i < c->nr; i++) {
		struct cache_store *s = c->slots[i]->store;

		if (!s->ops->prefetch)
			continue;
		/* only what no store before holds: a warm local cache costs the remote nothing */
		for (k = 0, nwant = 0; k < n; k++) {
			for (j = 0; j < i; j++) {
				struct cache_store *before = c->slots[j]->store;

				if (before->ops->has && before->ops->has(before, keys[k]))
					break;
			}
			if (j == i)
				memcpy(want[nwant++], keys[k], CACHE_KEY_LEN);
		}
		if (i && nwant && !c->absent.n && !c->absent.before)
			note_absent(c, (const unsigned char (*)[CACHE_KEY_LEN])want, nwant, i);
		if (nwant)
			s->ops->prefetch(s, (const unsigned char (*)[CACHE_KEY_LEN])want, nwant, keys,
					 n);
	}
	free(want);
}

/*
 * Put into one store, counting; 1 when stored.  `fresh`: it lacked the key
 * at the prefetch (`form`: the entry as get_entry gave it, or NULL).
 */
static int slot_put(struct cache_slot *slot, const unsigned char *key, const void *code,
		    size_t code_len, const void *warnings, size_t warnings_len, int fresh,
		    const struct cache_entry_form *form)
{
	const struct cache_store_ops *ops = slot->store->ops;
	uint64_t bytes = 0;
	int rc;

	if (fresh && ops->fill)
		rc = ops->fill(slot->store, key, code, code_len, warnings, warnings_len, form,
			       &bytes);
	else
		rc = ops->put(slot->store, key, code, code_len, warnings, warnings_len, &bytes);
	if (rc <= 0)
		return 0;
	atomic_fetch_add(&slot->stored, 1);
	atomic_fetch_add(&slot->stored_bytes, (unsigned long long)bytes);
	return 1;
}

int cache_get(struct cache *c, const unsigned char key[CACHE_KEY_LEN], struct strbuf *code,
	      struct strbuf *warnings)
{
	size_t i, j, code_base, warn_base;
	struct cache_entry_form form = { .frame = STRBUF_INIT };
	atomic_uchar *absent;
	int skip, got;

	if (!c)
		return 0;
	code_base = code->len;
	warn_base = warnings->len;
	/* the stores that lacked the key at the prefetch are not asked again, until it is put */
	absent = absent_flag(c, key);
	skip = absent && atomic_load(absent);
	for (i = 0; i < c->nr; i++) {
		struct cache_slot *slot = c->slots[i];
		const struct cache_store_ops *ops = slot->store->ops;

		got = 0;
		if (skip && i < c->absent.before)
			; /* lacked it at the prefetch */
		else if (skip && ops->get_entry && !c->local_off) { /* (the form is for the fill) */
			strbuf_reset(&form.frame);
			got = ops->get_entry(slot->store, key, code, warnings, &form) > 0 ? 2 : 0;
		} else
			got = ops->get(slot->store, key, code, warnings) > 0;
		if (!got) {
			atomic_fetch_add(&slot->misses, 1);
			continue;
		}
		atomic_fetch_add(&slot->hits, 1);
		/* the stores asked before missed: give them the entry for next time */
		if (skip && i >= c->absent.before)
			skip = atomic_exchange(absent, 0); /* one thread fills, others put */
		for (j = 0; j < i; j++)
			slot_put(c->slots[j], key, code->buf + code_base, code->len - code_base,
				 warnings->buf + warn_base, warnings->len - warn_base,
				 skip && j < c->absent.before, got == 2 ? &form : NULL);
		atomic_fetch_add(&c->hits, 1);
		strbuf_release(&form.frame);
		return 1;
	}
	atomic_fetch_add(&c->misses, 1);
	strbuf_release(&form.frame);
	return 0;
}

void cache_put(struct cache *c, const unsigned char key[CACHE_KEY_LEN], const void *code,
	       size_t code_len, const void *warnings, size_t warnings_len)
{
	atomic_uchar *absent;
	size_t i;
	int stored = 0;

	if (!c)
		return;
	absent = absent_flag(c, key);
	if (absent)
		atomic_store(absent, 0); /* a cache_get() of it asks every store again */
	for (i = 0; i < c->nr; i++)
		stored |= slot_put(c->slots[i], key, code, code_len, warnings, warnings_len, 0, NULL);
	if (stored)
		atomic_fetch_add(&c->stored, 1);
}

void cache_counts(const struct cache *c, size_t *hits, size_t *misses, size_t *stored)
{
	*hits = c ? atomic_load(&c->hits) : 0;
	*misses = c ? atomic_load(&c->misses) : 0;
	*stored = c ? atomic_load(&c->stored) : 0;
}

void cache_close(struct cache *c, const char *label)
{
	struct cache_remote_stats remote;
	size_t i;
	int any_remote = 0;

	if (!c)
		return;
	memset(&remote, 0, sizeof(remote));
	/* the uploads first: the stats line then tells what they did */
	for (i = 0; i < c->nr; i++) {
		struct cache_store *s = c->slots[i]->store;

		if (s->ops->flush)
			s->ops->flush(s);
		if (s->ops->stats) {
			s->ops->stats(s, &remote);
			any_remote = 1;
		}
	}
	for (i = 0; i < c->nr; i++) {
		struct cache_slot *slot = c->slots[i];
		struct cache_store_counts counts = {
			.hits = atomic_load(&slot->hits),
			.misses = atomic_load(&slot->misses),
			.stored = atomic_load(&slot->stored),
			.stored_bytes = atomic_load(&slot->stored_bytes),
			.remote = any_remote ? &remote : NULL,
		};

		slot->store->ops->close(slot->store, label, &counts);
		free(slot);
	}
	free(c->slots);
	free(c->absent.keys);
	free(c->absent.live);
	free(c);
}

/* ---- sizes ------------------------------------------------------------ */

int cache_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "kmgtpe";
	uint64_t v = 0;
	const char *p = s;
	const char *u;
	int shift = 0;

	if (!s || *p < '0' || *p > '9')
		return -1; /* no sign, no space, no empty string */
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p && (u = strchr(units, *p | 0x20)) != NULL) {
		shift = 10 * (int)(u - units + 1);
		p++;
		if ((*p | 0x20) == 'i' && (p[1] | 0x20) == 'b')
			p += 2;
		else if ((*p | 0x20) == 'b')
			p++;
	} else if ((*p | 0x20) == 'b') {
		p++;
	}
	if (*p)
		return -1;
	if (shift && v > UINT64_MAX >> shift)
		return -1;
	*out = v << shift;
	return 0;
}
