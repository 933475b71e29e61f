/*
 * cachephase.c - the cache lookups before the pool starts (see cachephase.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "cachephase.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "parallel.h"
#include "pool.h"
#include "util.h"
#include "banned.h"

struct cache_phase {
	struct run *r;
	struct file **files;      /* those looked up */
	size_t nfiles;
	size_t *first, *count;    /* per file of `files`: its items in `order` */
	size_t *order;            /* item indexes grouped by file */
	atomic_size_t kept;       /* bytes of sources kept loaded */
};

static void lookup_file(void *arg, size_t k)
{
	struct cache_phase *cp = arg;
	struct run *r = cp->r;
	struct file *f = cp->files[k];
	struct strbuf code = STRBUF_INIT;
	size_t i, missed = 0;
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
		strbuf_reset(&code);
		if (cache_get(r->o->cache, it->key, &code, &it->warn) &&
		    run_write_pyc(r, it, code.buf, code.len, 0) == 0) {
			it->hit = 1;
		} else {
			strbuf_reset(&it->warn);
			missed++;
		}
	}
	strbuf_release(&code);
	if (missed && atomic_fetch_add(&cp->kept, f->in.data.len) + f->in.data.len <= CACHE_KEEP_MAX)
		f->loaded = 1;
	else
		strbuf_release(&f->in.data);
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

/* Replay the warnings a cached compile printed (each ended by NUL). */
static void replay_warnings(struct run *r, struct file *f, const struct strbuf *warn)
{
	size_t at = 0;

	while (at < warn->len) {
		const char *text = warn->buf + at;
		size_t len = strnlen(text, warn->len - at);

		at += len + 1;
		r->rep.ops->warning(&r->rep, f, text, len);
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
	/* threads only past 64 files: below, starting them costs more than they save */
	parallel_for(cp.nfiles, parallel_threads(cp.nfiles, 65, 2), lookup_file, &cp);
	finish_hits(&cp);
	for (i = 0; i < r->plan.nitems; i++)
		left += !r->plan.items[i].hit;
	free(cp.files);
	free(cp.first);
	free(cp.count);
	free(cp.order);
	return left;
}
