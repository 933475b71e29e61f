/*
 * cachephase.c - the cache lookups before the pool starts (see cachephase.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "cachephase.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "marshal.h"
#include "parallel.h"
#include "pool.h"
#include "relocate.h"
#include "util.h"
#include "banned.h"

struct cache_phase {
	struct run *r;
	struct file **files;      /* those looked up */
	size_t nfiles;
	size_t *first, *count;    /* per file of `files`: its items in `order` */
	size_t *order;            /* item indexes grouped by file */
	atomic_size_t kept;       /* bytes of sources kept loaded */
	unsigned char *keyed;     /* per file of `files`: its items keyed (source read) */
	int batching;             /* a remote store: every key, then the lookups */
};

/* An entry's extra: the dfile it was compiled with and where its records start; -1 if malformed. */
static int parse_extra(const struct strbuf *extra, const char **dfile, size_t *dlen,
		       size_t *records)
{
	const unsigned char *p = (const unsigned char *)extra->buf;
	struct proto_warning w;
	size_t at, n;

	if (extra->len < 4 || (n = get_le32(p)) > extra->len - 4)
		return -1;
	*dfile = extra->buf + 4;
	*dlen = n;
	*records = at = 4 + n;
	while (at < extra->len) {
		if (extra->len - at < 4 || (n = get_le32(p + at)) > extra->len - at - 4 ||
		    proto_decode_warning(extra->buf + at + 4, n, &w) < 0)
			return -1;
		at += 4 + n;
	}
	return 0;
}

static int same_dfile(const char *was, size_t len, const char *dfile)
{
	return len == strlen(dfile) && !memcmp(was, dfile, len);
}

/* The cached `code` rewritten for f's dfile (relocate.h), into `out`; -1 when not exactly. */
static int relocate(const struct run *r, const struct file *f, const struct strbuf *code,
		    struct strbuf *out)
{
	const char *dfile = run_dfile(f);
	struct marshal_err err;
	struct mobj *root;
	int rc = -1;

	if (!r->o->canonical) /* the key is path-specific then: not reached */
		return -1;
	if (marshal_parse((const unsigned char *)code->buf, code->len, &r->canon.mv, &root,
			  &err) < 0)
		return -1;
	/* the entry is canonical: replacing the name's bytes is the rewrite, where it is exact */
	if (marshal_relocate_splice(root, &r->canon.mv, (const unsigned char *)code->buf,
				    code->len, dfile, strlen(dfile), out) == 0)
		rc = 0;
	else if (marshal_relocate(root, &r->canon.mv, dfile, strlen(dfile), &err) == 0 &&
		 marshal_write_canonical(root, &r->canon.mv, out) == 0)
		rc = 0;
	mobj_free(root);
	return rc;
}

/* Write it's pyc from a hit (it->warn holds the entry's extra); -1: take it as a miss. */
static int take_hit(struct run *r, struct item *it, const struct strbuf *code,
		    struct strbuf *moved)
{
	const char *was;
	size_t len, records;

	if (parse_extra(&it->warn, &was, &len, &records) < 0)
		return -1;
	if (same_dfile(was, len, run_dfile(it->f)))
		return run_write_pyc(r, it, code->buf, code->len, 0);
	strbuf_reset(moved);
	if (relocate(r, it->f, code, moved) < 0)
		return -1;
	return run_write_pyc(r, it, moved->buf, moved->len, 0);
}

/* Read file k's source and key its items; its source stays in f->in.data. */
static void key_file(void *arg, size_t k)
{
	struct cache_phase *cp = arg;
	struct run *r = cp->r;
	struct file *f = cp->files[k];
	size_t i;
	int e;

	/* SIGINT/SIGTERM: the file at hand is finished (its pyc whole), no other begun */
	if (pool_interrupted())
		return;
	if (run_read_source(r, f, &e) != PYC_READ_OK)
		return; /* the compile path reads it again and reports */
	for (i = 0; i < cp->count[k]; i++) {
		struct item *it = &r->plan.items[cp->order[cp->first[k] + i]];

		if (it->f != f)
			BUG("cache phase: item of another file");
		run_item_key(r, it);
	}
	cp->keyed[k] = 1;
	/*
	 * Batching: the lookups come after every file is keyed, so the source
	 * is not kept meanwhile (a miss reads it again, and keys it again:
	 * key_gen): the next file's read reuses its memory, where keeping
	 * them all would cost a page fault per 4 KiB of the tree.
	 */
	if (cp->batching)
		strbuf_release(&f->in.data);
}

/* Look file k's keyed items up; keep its source for the compile after a miss (within bounds). */
static void get_file(void *arg, size_t k)
{
	struct cache_phase *cp = arg;
	struct run *r = cp->r;
	struct file *f = cp->files[k];
	struct strbuf code = STRBUF_INIT, moved = STRBUF_INIT;
	size_t i, missed = 0;

	if (!cp->keyed[k] || pool_interrupted())
		return;
	for (i = 0; i < cp->count[k]; i++) {
		struct item *it = &r->plan.items[cp->order[cp->first[k] + i]];

		strbuf_reset(&code);
		if (cache_get(r->o->cache, it->key, &code, &it->warn) &&
		    take_hit(r, it, &code, &moved) == 0) {
			it->hit = 1;
		} else {
			strbuf_reset(&it->warn);
			missed++;
		}
	}
	strbuf_release(&code);
	strbuf_release(&moved);
	if (missed && f->in.data.alloc &&
	    atomic_fetch_add(&cp->kept, f->in.data.len) + f->in.data.len <= CACHE_KEEP_MAX)
		f->loaded = 1;
	else
		strbuf_release(&f->in.data);
}

static void lookup_file(void *arg, size_t k)
{
	key_file(arg, k);
	get_file(arg, k);
}

/* Between the passes of a batching cache: the keys of every file keyed, to cache_prefetch() at once. */
static void prefetch(struct cache_phase *cp)
{
	struct run *r = cp->r;
	unsigned char (*keys)[CACHE_KEY_LEN] = xcalloc(r->plan.nitems + 1, sizeof(*keys));
	size_t i, k, n = 0;

	for (k = 0; k < cp->nfiles; k++) {
		if (!cp->keyed[k])
			continue;
		for (i = 0; i < cp->count[k]; i++)
			memcpy(keys[n++], r->plan.items[cp->order[cp->first[k] + i]].key, CACHE_KEY_LEN);
	}
	cache_prefetch(r->o->cache, (const unsigned char (*)[CACHE_KEY_LEN])keys, n);
	free(keys);
}

struct by_key {
	const unsigned char *key; /* the file's first item's; NULL: not keyed (last) */
	size_t at;
};

static int cmp_by_key(const void *a, const void *b)
{
	const struct by_key *x = a, *y = b;

	if (!x->key || !y->key)
		return !x->key - !y->key;
	return memcmp(x->key, y->key, CACHE_KEY_LEN);
}

/*
 * Between the passes of a batching cache: the files in the order of
 * their keys, for the prefetch and the lookups alike.  A remote store
 * that groups its entries (remote-group.h) fetches the groups in that
 * order, so that the lookups take each group as it comes instead of
 * waiting, in the plan's order, for a key of every group.  The misses
 * are compiled in the plan's order all the same (the compile stage's).
 */
static void sort_by_key(struct cache_phase *cp)
{
	const struct plan *p = &cp->r->plan;
	struct by_key *v = xcalloc(cp->nfiles + 1, sizeof(*v));
	struct file **files = xcalloc(cp->nfiles + 1, sizeof(*files));
	size_t *first = xcalloc(cp->nfiles + 1, sizeof(*first));
	size_t *count = xcalloc(cp->nfiles + 1, sizeof(*count));
	unsigned char *keyed = xcalloc(cp->nfiles + 1, 1);
	size_t k;

	for (k = 0; k < cp->nfiles; k++) {
		v[k].key = cp->keyed[k] && cp->count[k] ? p->items[cp->order[cp->first[k]]].key : NULL;
		v[k].at = k;
	}
	qsort(v, cp->nfiles, sizeof(*v), cmp_by_key);
	for (k = 0; k < cp->nfiles; k++) {
		files[k] = cp->files[v[k].at];
		first[k] = cp->first[v[k].at];
		count[k] = cp->count[v[k].at];
		keyed[k] = cp->keyed[v[k].at];
	}
	free(cp->files);
	free(cp->first);
	free(cp->count);
	free(cp->keyed);
	cp->files = files;
	cp->first = first;
	cp->count = count;
	cp->keyed = keyed;
	free(v);
}

/* Group the items by the file that writes them (a duplicate's writer writes them). */
static void group_items(struct cache_phase *cp)
{
	const struct plan *p = &cp->r->plan;
	size_t n = p->nfiles ? p->nfiles : 1, i, k;
	size_t *slot = xcalloc(n, sizeof(*slot)); /* file index -> its place in cp->files, plus one */

	cp->files = xcalloc(n, sizeof(*cp->files));
	cp->first = xcalloc(n, sizeof(*cp->first));
	cp->count = xcalloc(n, sizeof(*cp->count));
	cp->order = xcalloc(p->nitems, sizeof(*cp->order));
	for (i = 0; i < p->nitems; i++) {
		struct file *f = p->items[i].f;
		size_t fi = (size_t)(f - p->files);

		if (f->writer && f->writer != f)
			continue;
		if (!slot[fi]) {
			cp->files[cp->nfiles++] = f;
			slot[fi] = cp->nfiles;
		}
		cp->count[slot[fi] - 1]++;
	}
	for (k = 0, i = 0; k < cp->nfiles; k++) {
		cp->first[k] = i;
		i += cp->count[k];
		cp->count[k] = 0;
	}
	for (i = 0; i < p->nitems; i++) {
		struct file *f = p->items[i].f;
		size_t at;

		if (f->writer && f->writer != f)
			continue;
		at = slot[f - p->files] - 1;
		cp->order[cp->first[at] + cp->count[at]++] = i;
	}
	free(slot);
}

/* Replay the warnings a cached compile printed (`extra`, checked by take_hit()), for f's dfile. */
static void replay_warnings(struct run *r, struct file *f, const struct strbuf *extra)
{
	const unsigned char *p = (const unsigned char *)extra->buf;
	const char *was, *dfile = run_dfile(f);
	size_t len, at;
	int same;

	if (parse_extra(extra, &was, &len, &at) < 0)
		BUG("cache phase: a hit's extra no longer parses");
	same = same_dfile(was, len, dfile);
	while (at < extra->len) {
		size_t n = get_le32(p + at);
		struct proto_warning w;

		if (proto_decode_warning(extra->buf + at + 4, n, &w) < 0)
			BUG("cache phase: a hit's warning no longer decodes");
		at += 4 + n;
		if ((w.flags & PROTO_WARN_AT_DFILE) && !same)
			run_warning(r, f, &w, dfile, strlen(dfile));
		else
			run_warning(r, f, &w, w.filename, w.filename_len);
	}
}

/* Back on the engine's thread: the items that hit are done. */
static void finish_hits(struct cache_phase *cp)
{
	struct run *r = cp->r;
	size_t i, k;

	for (k = 0; k < cp->nfiles; k++) {
		struct file *f = cp->files[k];
		size_t hits = 0;

		for (i = 0; i < cp->count[k]; i++) {
			struct item *it = &r->plan.items[cp->order[cp->first[k] + i]];

			if (!it->hit)
				continue;
			hits++;
			replay_warnings(r, f, &it->warn);
			strbuf_release(&it->warn);
			if (++f->dispatched == f->nlevels && f->loaded)
				strbuf_release(&f->in.data);
			run_item_done(r, f);
		}
		r->from_cache += hits == cp->count[k] && hits == (size_t)f->nlevels;
	}
}

size_t cache_phase(struct run *r)
{
	struct cache_phase cp;
	size_t i, left = 0;

	memset(&cp, 0, sizeof(cp));
	cp.r = r;
	atomic_init(&cp.kept, 0);
	group_items(&cp);
	cp.keyed = xcalloc(cp.nfiles + 1, 1);
	/* threads only past 64 files: below, starting them costs more than they save */
	cp.batching = cache_batches(r->o->cache);
	if (cp.batching) {
		/* a remote store: every key first, asked in one batch, then the hits taken */
		parallel_for(cp.nfiles, parallel_threads(cp.nfiles, 65, 2), key_file, &cp);
		sort_by_key(&cp);
		prefetch(&cp);
		parallel_for(cp.nfiles, parallel_threads(cp.nfiles, 65, 2), get_file, &cp);
	} else {
		parallel_for(cp.nfiles, parallel_threads(cp.nfiles, 65, 2), lookup_file, &cp);
	}
	finish_hits(&cp);
	for (i = 0; i < r->plan.nitems; i++)
		left += !r->plan.items[i].hit;
	free(cp.files);
	free(cp.first);
	free(cp.count);
	free(cp.order);
	free(cp.keyed);
	return left;
}

void cache_phase_add_warning(struct strbuf *records, const struct proto_warning *w)
{
	size_t at = records->len;

	strbuf_add_le32(records, 0);
	proto_add_warning(records, w);
	put_le32((unsigned char *)records->buf + at, (uint32_t)(records->len - at - 4));
}

void cache_phase_extra(struct strbuf *out, const char *dfile, const struct strbuf *records)
{
	size_t n = strlen(dfile);

	strbuf_add_le32(out, (unsigned long)n);
	strbuf_add(out, dfile, n);
	strbuf_add(out, records->buf, records->len);
}
