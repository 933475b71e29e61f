/*
 * inventory.c - the pycs of a tree against its sources (see inventory.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "inventory.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "logfile.h"
#include "parallel.h"
#include "pyc.h"
#include "util.h"
#include "verify.h"
#include "banned.h"

/*
 * The walk stat()ed every source it listed: a table of them by path, so
 * that a pyc's source is looked up there and stat()ed only when the walk
 * did not list it (deeper than -r, or no regular file).  On a tree of
 * 10,000 sources that is 10,000 stat() calls fewer.
 */
struct walked_sources {
	const struct source_list *list;
	uint32_t *slot; /* indexes + 1 into list->v; 0: empty */
	size_t nslots;  /* a power of two */
};

static void walked_init(struct walked_sources *w, const struct source_list *list)
{
	size_t k, n = 0;

	w->list = list;
	for (k = 0; k < list->nr; k++)
		n += list->v[k].kind == ENTRY_SOURCE;
	for (w->nslots = 16; w->nslots < 2 * n; w->nslots *= 2)
		;
	w->slot = xcalloc(w->nslots, sizeof(*w->slot));
	for (k = 0; k < list->nr && k < UINT32_MAX; k++) {
		const char *path = list->v[k].path;
		size_t i;

		if (list->v[k].kind != ENTRY_SOURCE)
			continue;
		for (i = path_hash(path, strlen(path)) & (w->nslots - 1); w->slot[i];
		     i = (i + 1) & (w->nslots - 1))
			;
		w->slot[i] = (uint32_t)(k + 1);
	}
}

/* The source's size and mtime into `s` (what verify_pyc() compares); 0 or -1. */
static int stat_source(void *ctx, struct source *s)
{
	const struct walked_sources *w = ctx;
	size_t i, len = strlen(s->path);
	struct stat st;

	for (i = path_hash(s->path, len) & (w->nslots - 1); w->slot[i];
	     i = (i + 1) & (w->nslots - 1)) {
		const struct source *e = &w->list->v[w->slot[i] - 1];

		if (!strcmp(e->path, s->path)) {
			s->size = e->size;
			s->mtime_sec = e->mtime_sec;
			s->mtime_nsec = e->mtime_nsec;
			return 0;
		}
	}
	if (stat(s->path, &st) < 0)
		return -1;
	s->size = (uint64_t)st.st_size;
	s->mtime_sec = (int64_t)st.st_mtim.tv_sec;
	s->mtime_nsec = st.st_mtim.tv_nsec;
	return 0;
}

/* The level of a __pycache__ name "BASE.TAG[.opt-N].pyc": 0, 1, 2, or -1. */
static int name_level(const char *path)
{
	size_t n = strlen(path), k;

	if (n < 4 || strcmp(path + n - 4, ".pyc"))
		return -1;
	n -= 4;
	for (k = n; k > 0 && path[k - 1] != '.' && path[k - 1] != '/'; k--)
		;
	if (k == 0 || path[k - 1] != '.' || strncmp(path + k, "opt-", 4))
		return 0;
	/* ".opt-1", ".opt-2"; any other is a level none of ours writes */
	if (n - k == 5 && (path[k + 4] == '1' || path[k + 4] == '2'))
		return path[k + 4] - '0';
	return -1;
}

void inventory_build(struct inventory *inv, const struct source_list *list)
{
	struct walked_sources w;

	walked_init(&w, list);
	inventory_build_with(inv, list, stat_source, &w);
	free(w.slot);
}

struct build_ctx {
	struct inventory *inv;
	const struct source_list *list;
	const size_t *at; /* inv->v[i] is of list->v[at[i]] */
	int (*stat_fn)(void *ctx, struct source *s);
	void *ctx;
};

static void build_one(void *arg, size_t i)
{
	struct build_ctx *c = arg;
	const struct source *s = &c->list->v[c->at[i]];
	struct inventory_pyc *p = &c->inv->v[c->inv->nr + i];
	char *tag = NULL, *src = NULL;

	if (s->kind == ENTRY_LEGACY)
		src = xstrndup(s->path, strlen(s->path) - 1);
	else if (pycache_name_parts(s->path, &tag, &src) < 0)
		tag = src = NULL;
	memset(p, 0, sizeof(*p));
	p->entry = s;
	p->tag = tag;
	p->legacy = s->kind == ENTRY_LEGACY;
	p->level = p->legacy || !src ? -1 : name_level(s->path);
	p->source.path = src;
	p->source.kind = ENTRY_SOURCE;
	p->has_source = src && c->stat_fn(c->ctx, &p->source) == 0;
}

void inventory_build_with(struct inventory *inv, const struct source_list *list,
			  int (*stat_fn)(void *ctx, struct source *s), void *ctx)
{
	struct build_ctx c = { .inv = inv, .list = list, .stat_fn = stat_fn, .ctx = ctx };
	size_t *at = xcalloc(list->nr ? list->nr : 1, sizeof(*at));
	size_t k, n = 0;

	for (k = 0; k < list->nr; k++)
		if (list->v[k].kind == ENTRY_CACHED || list->v[k].kind == ENTRY_LEGACY)
			at[n++] = k;
	/* sized once: never copied while it grows (each page is a fault to pay) */
	ALLOC_GROW_BULK(inv->v, st_add(inv->nr, n), inv->alloc);
	c.at = at;
	/* name parsing, two strings and a lookup (or a stat()) per pyc: a few threads */
	parallel_for(n, parallel_threads(n, 512, 1), build_one, &c);
	inv->nr += n;
	free(at);
}

void inventory_release(struct inventory *inv)
{
	size_t k;

	for (k = 0; k < inv->nr; k++) {
		free(inv->v[k].tag);
		free(inv->v[k].source.path);
	}
	free(inv->v);
	inv->v = NULL;
	inv->nr = inv->alloc = 0;
}

int inventory_is_orphan(const struct inventory_pyc *p)
{
	return !p->legacy && p->source.path && !p->has_source;
}

int inventory_is_sourceless(const struct inventory_pyc *p)
{
	return p->legacy && !p->has_source;
}
