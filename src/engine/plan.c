/*
 * plan.c - files, items, pyc paths, freshness, duplicates, order (see plan.h).
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700 /* realpath */
#include "plan.h"

#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parallel.h"
#include "pyc.h"
#include "siphash.h"
#include "util.h"
#include "banned.h"

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

/* sorted(set(levels)), -1 meaning the target's own level; returns how many. */
static int plan_levels(const struct plan_opts *o, int *levels)
{
	int nlevels = 0, i, k;

	if (o->nlevels > PLAN_MAX_LEVELS)
		BUG("plan: %d levels", o->nlevels);
	if (!o->nlevels)
		levels[nlevels++] = -1;
	for (i = 0; i < o->nlevels; i++)
		levels[nlevels++] = o->levels[i];
	qsort(levels, (size_t)nlevels, sizeof(int), cmp_int);
	for (i = 1, k = 1; i < nlevels; i++)
		if (levels[i] != levels[k - 1])
			levels[k++] = levels[i];
	return k;
}

/*
 * The items of candidate `f` into slot[0..nlevels), its pyc paths
 * de-duplicated (-b, -1 = level); sets f->nlevels.
 */
static void add_items(struct item *slot, const struct plan_opts *o, const struct target *t,
		      struct file *f, const int *levels, int nlevels)
{
	int i, j;

	for (i = 0; i < nlevels; i++) {
		int opt = levels[i] < 0 ? t->optimize : levels[i];
		char *pyc = o->legacy ? pyc_legacy_path(f->src->path)
				      : pyc_cache_path(&t->layout, f->src->path, opt);
		struct item *it;
		int dup = 0;

		/* levels sharing a pyc (-b, or -1 = the target's level): the last one's stays */
		for (j = 0; j < f->nlevels; j++) {
			if (!strcmp(slot[j].pyc, pyc)) {
				slot[j].opt = opt;
				dup = 1;
			}
		}
		if (dup) {
			free(pyc);
			continue;
		}
		it = &slot[f->nlevels++];
		memset(it, 0, sizeof(*it));
		it->f = f;
		it->opt = opt;
		it->pyc = pyc;
		strbuf_init(&it->warn, 0);
	}
}

/*
 * plan_build() decides on the caller's thread which entries are files and
 * which of them candidates (a byte each), then fills the files and their
 * items on a few threads, a chunk of files at a time: filling them is
 * writing 300 bytes per file to memory touched for the first time, and on
 * a 10,000-file no-op those page faults were 15 ms on one core.
 */
#define BUILD_CHUNK 256

struct build_ctx {
	struct plan *p;
	const struct plan_opts *o;
	const struct target *t;
	const struct source_list *list;
	size_t *entry;         /* per new file: its index in the list */
	unsigned char *pending; /* per new file: a candidate? */
	size_t *slot;          /* per chunk of new files: its candidates' first item slot */
	size_t files0, nfiles; /* the new files: p->files[files0 .. files0 + nfiles) */
	const int *levels;
	int nlevels;
	atomic_size_t next;    /* the next chunk */
};

/* Chunk `c` of the new files: each one's file and, for a candidate, its items. */
static void build_chunk(struct build_ctx *c, size_t chunk)
{
	const struct plan_opts *o = c->o;
	size_t i, end = (chunk + 1) * BUILD_CHUNK, slot = c->slot[chunk];
	char *arg = NULL;

	for (i = chunk * BUILD_CHUNK; i < end && i < c->nfiles; i++) {
		const struct source *s = &c->list->v[c->entry[i]];
		struct file *f = &c->p->files[c->files0 + i];

		memset(f, 0, sizeof(*f));
		strbuf_init(&f->in.data, 0);
		strbuf_init(&f->warnings, 0);
		strbuf_init(&f->printed, 0);
		f->src = s;
		f->state = c->pending[i] ? FS_PENDING : FS_SKIP;
		if (s->kind == ENTRY_DIR || s->kind == ENTRY_DIR_ERROR)
			continue;
		/* the directory argument it came from, as given (compile_dir's), or none */
		if (!s->arg_len) {
			free(arg);
			arg = NULL;
		} else if (!arg || strlen(arg) != s->arg_len || strncmp(arg, s->path, s->arg_len)) {
			free(arg);
			arg = xstrndup(s->path, s->arg_len);
		}
		f->dfile = cofilename_compute(&o->names, c->t, s, arg, &f->note);
		if (c->pending[i]) {
			f->first = slot;
			add_items(&c->p->items[slot], o, c->t, f, c->levels, c->nlevels);
			slot += (size_t)c->nlevels;
		}
	}
	free(arg);
}

static void build_thread(void *arg, size_t thread)
{
	struct build_ctx *c = arg;
	size_t chunk, nchunks = (c->nfiles + BUILD_CHUNK - 1) / BUILD_CHUNK;

	(void)thread;
	while ((chunk = atomic_fetch_add(&c->next, 1)) < nchunks)
		build_chunk(c, chunk);
}

void plan_build(struct plan *p, const struct plan_opts *o, const struct target *t,
		const struct source_list *list)
{
	int maxlevels = o->maxlevels >= 0 ? o->maxlevels : target_default_maxlevels(t);
	int levels[PLAN_MAX_LEVELS + 1], nlevels = plan_levels(o, levels);
	char *limit_real = o->limit_sl_dest ? realpath(o->limit_sl_dest, NULL) : NULL;
	struct build_ctx c = { .p = p, .o = o, .t = t, .list = list, .levels = levels,
			       .nlevels = nlevels, .files0 = p->nfiles };
	size_t k, n = 0, npending = 0, items0 = p->nitems, nchunks;

	c.entry = xcalloc(list->nr ? list->nr : 1, sizeof(*c.entry));
	c.pending = xcalloc(list->nr ? list->nr : 1, 1);
	c.slot = xcalloc(list->nr / BUILD_CHUNK + 1, sizeof(*c.slot));
	for (k = 0; k < list->nr; k++) {
		const struct source *s = &list->v[k];

		/* check's walk lists the pycs too: they are no files of the plan */
		if (s->depth > maxlevels || s->kind == ENTRY_CACHED || s->kind == ENTRY_LEGACY ||
		    s->kind == ENTRY_PYCACHE)
			continue;
		if (n % BUILD_CHUNK == 0)
			c.slot[n / BUILD_CHUNK] = items0 + npending * (size_t)nlevels;
		c.entry[n] = k;
		c.pending[n] = s->kind == ENTRY_SOURCE && !(o->rx_skip && o->rx_skip[k]) &&
			       !(limit_real && s->is_link &&
				 cofilename_outside_limit(limit_real, s->path));
		npending += c.pending[n++];
	}
	free(limit_real);
	/* sized once: grown by doubling, they were copied at each step */
	ALLOC_GROW_BULK(p->files, st_add(p->nfiles, n), p->falloc);
	ALLOC_GROW_BULK(p->items, st_add(items0, st_mult(npending, (size_t)nlevels)), p->ialloc);
	c.nfiles = n;
	nchunks = (n + BUILD_CHUNK - 1) / BUILD_CHUNK;
	atomic_init(&c.next, 0);
	parallel_run(parallel_threads(nchunks, 4, 1), build_thread, &c);
	p->nfiles += n;
	/* compact the items where -b or -1 made a candidate's levels share a pyc */
	p->nitems = items0;
	for (k = c.files0; k < p->nfiles; k++) {
		struct file *f = &p->files[k];
		int j;

		if (f->state != FS_PENDING)
			continue;
		if (f->first != p->nitems) {
			memmove(&p->items[p->nitems], &p->items[f->first],
				(size_t)f->nlevels * sizeof(*p->items));
			f->first = p->nitems;
		}
		for (j = 0; j < f->nlevels; j++)
			p->items[p->nitems + (size_t)j].f = f;
		p->nitems += (size_t)f->nlevels;
	}
	free(c.slot);
	free(c.pending);
	free(c.entry);
}

/* ---- freshness --------------------------------------------------------- */

/*
 * The first n bytes of `pyc`, and its stat data taken before they were
 * read (a change after the fstat() gives the next run another ctime).
 */
static int read_header(const char *pyc, unsigned char *hdr, size_t n, struct buildlog_stat *bst)
{
	int fd = open(pyc, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	ssize_t got = -1;

	if (fd < 0)
		return 0;
	if (!bst || fstat(fd, &st) == 0)
		got = read_in_full(fd, hdr, n);
	close(fd);
	if (bst && got == (ssize_t)n)
		buildlog_stat_of(bst, &st);
	return got == (ssize_t)n;
}

/* The header a compile of `f` would write now; 0 when the source cannot be read. */
static size_t wanted_header(const struct target *t, int inval, const struct file *f,
			    unsigned char *want)
{
	struct strbuf src = STRBUF_INIT;
	unsigned char hash[8];
	int fd;

	if (inval == 0)
		return pycwrite_header(t, 0, pyc_mtime32(f->src->mtime_sec, f->src->mtime_nsec),
				       f->src->size, NULL, want);
	fd = open(f->src->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return 0;
	if (strbuf_read_fd(&src, fd, (size_t)f->src->size + 1) < 0) {
		close(fd);
		strbuf_release(&src);
		return 0;
	}
	close(fd);
	pyc_source_hash((enum source_hash_kind)t->hash_kind, t->fmt.magic, src.buf, src.len, hash);
	strbuf_release(&src);
	return pycwrite_header(t, inval, 0, 0, hash, want);
}

struct fresh_ctx {
	const struct plan *p;
	const struct target *t;
	int inval;
	struct buildlog *log;
	struct file **cand;
};

/*
 * Does the build log say every pyc of `f` is fresh?  Trusted entries only
 * (buildlog.h), both files' stat data equal; the header recorded must be
 * the one a compile would write now: all of it for timestamp pycs, the
 * magic and flags for hash pycs (the hash is the unchanged source's).
 * Fills st[] and ents[] with the pycs' stat data and entries, for
 * recording them again.
 */
static int fresh_by_log(const struct fresh_ctx *c, const struct file *f,
			const struct buildlog_stat *src, struct buildlog_stat *st,
			struct buildlog_entry *ents)
{
	const struct item *items = &c->p->items[f->first];
	unsigned char want[PYC_HEADER_MAX], nohash[8] = { 0 };
	size_t n = c->inval == 0 ? wanted_header(c->t, 0, f, want)
				 : pycwrite_header(c->t, c->inval, 0, 0, nohash, want);
	size_t cmp = c->inval == 0 ? n : n - 8;
	int k;

	for (k = 0; k < f->nlevels; k++) {
		struct buildlog_entry *e = &ents[k];
		struct stat now;

		if (!buildlog_find(c->log, items[k].pyc, e) || e->hlen != n ||
		    memcmp(e->hdr, want, cmp) || !buildlog_stat_equal(&e->src, src) ||
		    stat(items[k].pyc, &now) < 0)
			return 0;
		buildlog_stat_of(&st[k], &now);
		if (!buildlog_stat_equal(&e->pyc, &st[k]))
			return 0;
	}
	return 1;
}

/* What a pyc found fresh by its header keeps of its entry: BODY_OK if it is the same file. */
static unsigned kept_flags(const struct buildlog *log, const char *pyc,
			   const struct buildlog_stat *st)
{
	struct buildlog_entry e;

	return buildlog_find(log, pyc, &e) && buildlog_stat_equal(&e.pyc, st) ? e.flags : 0;
}

/* Is `pyc` in the __pycache__ of `src`'s directory (not a pycache prefix's, nor legacy)? */
static int in_own_pycache(const char *pyc, const char *src)
{
	const char *slash = strrchr(src, '/');
	size_t dir = slash ? (size_t)(slash - src) + 1 : 0;

	return !strncmp(pyc, src, dir) && !strncmp(pyc + dir, "__pycache__/", 12);
}

/* Are all pycs of candidate i fresh?  For hash pycs this reads and hashes the source. */
static void fresh_one(void *arg, size_t i)
{
	struct fresh_ctx *c = arg;
	struct file *f = c->cand[i];
	const struct item *items = &c->p->items[f->first];
	unsigned char hdr[PYC_HEADER_MAX], want[PYC_HEADER_MAX];
	struct buildlog_stat src, st[PLAN_MAX_LEVELS + 1];
	struct buildlog_entry ents[PLAN_MAX_LEVELS + 1];
	size_t n;
	int k;

	/* the walk saw no __pycache__ beside the source: nothing to open (a fresh tree's ~10,000) */
	for (k = 0; f->src->no_pycache && k < f->nlevels; k++)
		if (in_own_pycache(items[k].pyc, f->src->path))
			return;
	buildlog_stat_of_source(&src, f->src);
	if (c->log && fresh_by_log(c, f, &src, st, ents)) {
		/* both stat data and the header are the entries' own */
		for (k = 0; k < f->nlevels; k++)
			buildlog_keep(c->log, &ents[k]);
		f->state = FS_FRESH;
		return;
	}
	n = wanted_header(c->t, c->inval, f, want);
	if (!n)
		return;
	for (k = 0; k < f->nlevels; k++)
		if (!read_header(items[k].pyc, hdr, n, c->log ? &st[k] : NULL) || memcmp(hdr, want, n))
			return;
	f->state = FS_FRESH;
	for (k = 0; c->log && k < f->nlevels; k++)
		buildlog_record(c->log, items[k].pyc, &src, &st[k], hdr, n,
				kept_flags(c->log, items[k].pyc, &st[k]));
}

/* The candidates, in walk order; returns how many. */
static size_t candidates(const struct plan *p, struct file ***out)
{
	struct file **cand = xcalloc(p->nfiles ? p->nfiles : 1, sizeof(*cand));
	size_t k, n = 0;

	for (k = 0; k < p->nfiles; k++)
		if (p->files[k].state == FS_PENDING)
			cand[n++] = &p->files[k];
	*out = cand;
	return n;
}

/*
 * A system call or three per file (plus reading the source for hash pycs),
 * one stat() with a build log: it dominates a run where nothing changed,
 * hence the threads.
 */
void plan_freshness(struct plan *p, const struct target *t, int inval, struct buildlog *log)
{
	struct fresh_ctx c;
	size_t n;

	c.p = p;
	c.t = t;
	c.inval = inval;
	c.log = log;
	n = candidates(p, &c.cand);
	parallel_for(n, parallel_threads(n, 512, 1), fresh_one, &c);
	free(c.cand);
}

/* ---- duplicates -------------------------------------------------------- */

static char *dup_key(const struct file *f, const char *pyc)
{
	const char *base = strrchr(pyc, '/');

	return xstrfmt("%llu:%llu:%s", (unsigned long long)f->src->dev,
		       (unsigned long long)f->src->ino, base ? base + 1 : pyc);
}

/* Do two pyc paths name the same directory (a hard-linked source elsewhere does not)? */
static int same_pyc_dir(const char *a, const char *b)
{
	char *da = xstrdup(a), *db = xstrdup(b), *ra, *rb, *sa, *sb;
	int same;

	*strrchr(da, '/') = '\0';
	*strrchr(db, '/') = '\0';
	ra = realpath(da, NULL);
	rb = realpath(db, NULL);
	/* a __pycache__ not created yet: compare the directories holding it */
	if ((!ra || !rb) && (sa = strrchr(da, '/')) && (sb = strrchr(db, '/'))) {
		free(ra);
		free(rb);
		*sa = *sb = '\0';
		ra = realpath(da, NULL);
		rb = realpath(db, NULL);
	}
	same = ra && rb && !strcmp(ra, rb);
	free(ra);
	free(rb);
	free(da);
	free(db);
	return same;
}

struct dupkey {
	char *key;
	size_t order;
	struct file *f;
};

static int cmp_dupkey(const void *a, const void *b)
{
	const struct dupkey *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : (x->order > y->order) - (x->order < y->order);
}

void plan_mark_duplicates(struct plan *p, int force)
{
	struct file **cand;
	size_t n = candidates(p, &cand), i, m = 0;
	struct dupkey *keys = xcalloc(n ? n : 1, sizeof(*keys));

	for (i = 0; i < n; i++) {
		/* the same source file (device, inode) and the same pyc name */
		keys[m].key = dup_key(cand[i], p->items[cand[i]->first].pyc);
		keys[m].order = i;
		keys[m++].f = cand[i];
	}
	qsort(keys, m, sizeof(*keys), cmp_dupkey);
	for (i = 0; i < m;) {
		size_t end = i + 1, keep, j;

		while (end < m && !strcmp(keys[end].key, keys[i].key))
			end++;
		keep = force ? end - 1 : i;
		/* every occurrence is compiled (for its own messages); one writes */
		for (j = i; end - i > 1 && j < end; j++)
			if (same_pyc_dir(p->items[keys[j].f->first].pyc,
					 p->items[keys[keep].f->first].pyc))
				keys[j].f->writer = keys[keep].f;
		i = end;
	}
	for (i = 0; i < m; i++)
		free(keys[i].key);
	free(keys);
	free(cand);
}

/* ---- what is left, in what order --------------------------------------- */

void plan_drop_fresh(struct plan *p)
{
	size_t k, j;

	/* keep the items of stale files (still grouped by file, in level order) */
	for (k = 0, j = 0; k < p->nitems; k++) {
		struct file *f = p->items[k].f;

		if (f->state == FS_FRESH) {
			free(p->items[k].pyc);
			strbuf_release(&p->items[k].warn);
			continue;
		}
		if (!f->pycs)
			f->pycs = xcalloc((size_t)f->nlevels, sizeof(*f->pycs));
		f->pycs[f->pending++] = p->items[k].pyc;
		p->items[j++] = p->items[k];
	}
	p->nitems = j;
	for (k = 0; k < p->nfiles; k++)
		p->nfresh += p->files[k].state == FS_FRESH;
}

static int by_size_desc(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	if (x->f->src->size != y->f->src->size)
		return x->f->src->size < y->f->src->size ? 1 : -1;
	/* equal sizes keep walk order, then level order: a run is deterministic */
	if (x->f != y->f)
		return x->f < y->f ? -1 : 1;
	return (x->opt > y->opt) - (x->opt < y->opt);
}

static void test_shuffle(struct item *items, size_t n)
{
	const char *env = getenv("PREPYC_TEST_SHUFFLE");
	uint64_t x;
	size_t i;

	if (!env || !*env || n < 2)
		return;
	x = strtoull(env, NULL, 10) * 0x9e3779b97f4a7c15ULL + 1;
	for (i = n - 1; i > 0; i--) {
		size_t j;
		struct item tmp;

		x ^= x << 13; /* xorshift64 */
		x ^= x >> 7;
		x ^= x << 17;
		j = (size_t)(x % (i + 1));
		tmp = items[i];
		items[i] = items[j];
		items[j] = tmp;
	}
}

void plan_order(struct plan *p)
{
	if (p->nitems)
		qsort(p->items, p->nitems, sizeof(*p->items), by_size_desc);
	test_shuffle(p->items, p->nitems);
}

void plan_release(struct plan *p)
{
	size_t k;

	for (k = 0; k < p->nitems; k++) {
		free(p->items[k].pyc);
		strbuf_release(&p->items[k].warn);
	}
	for (k = 0; k < p->nfiles; k++) {
		struct file *f = &p->files[k];

		free(f->dfile);
		free(f->note);
		free(f->pyerror);
		free(f->pycs);
		strbuf_release(&f->in.data);
		strbuf_release(&f->warnings);
		strbuf_release(&f->printed);
	}
	free(p->items);
	free(p->files);
	memset(p, 0, sizeof(*p));
}
