#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* d_type */
#include "walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dirreader.h"
#include "parallel.h"
#include "strbuf.h"
#include "util.h"
#include "walklog.h"
#include "banned.h"

int is_py_name(const char *name)
{
	size_t n = strlen(name);
	return n >= 3 && !strcmp(name + n - 3, ".py");
}

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir), m = strlen(name);
	/* os.path.join: no separator added after one already there */
	size_t sep = n && dir[n - 1] == '/' ? 0 : 1;
	char *p = xmalloc(st_add(st_add(n, m), sep + 1));

	/* by hand: one per entry, and printf's machinery was a fifth of a no-op's time */
	memcpy(p, dir, n);
	p[n] = '/';
	memcpy(p + n + sep, name, m + 1);
	return p;
}

static struct source *add_entry(struct source_list *list, char *path, enum entry_kind kind,
				const struct stat *st, int depth)
{
	struct source *s;

	ALLOC_GROW(list->v, list->nr + 1, list->alloc);
	s = &list->v[list->nr++];
	memset(s, 0, sizeof(*s));
	s->path = path;
	s->kind = (unsigned char)kind;
	s->depth = depth;
	if (st) {
		s->size = (uint64_t)st->st_size;
		s->mtime_sec = (int64_t)st->st_mtim.tv_sec;
		s->mtime_nsec = st->st_mtim.tv_nsec;
		s->mode = st->st_mode;
		s->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
		s->dev = (uint64_t)st->st_dev;
		s->ino = (uint64_t)st->st_ino;
	}
	return s;
}

enum kind { K_SKIP, K_SOURCE, K_OTHER, K_DIR };

/*
 * Decide what one directory entry is, with as few stat calls as d_type allows.
 * *stat_err: the errno of a stat that failed (then K_OTHER), else 0.
 */
static enum kind classify(int dfd, const char *name, unsigned char type, struct stat *st,
			  int *is_link, int *stat_err)
{
	*is_link = 0;
	*stat_err = 0;
	if (type == DT_UNKNOWN) {
		if (fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) < 0) {
			*stat_err = errno;
			return K_OTHER;
		}
		type = S_ISDIR(st->st_mode) ? DT_DIR : S_ISREG(st->st_mode) ? DT_REG
			: S_ISLNK(st->st_mode) ? DT_LNK : DT_FIFO;
	}
	switch (type) {
	case DT_DIR:
		return K_DIR;
	case DT_LNK:
		*is_link = 1;
		/* a symlink to a directory is neither entered nor considered */
		if (fstatat(dfd, name, st, 0) < 0) {
			*stat_err = errno;
			return K_OTHER;
		}
		if (S_ISDIR(st->st_mode))
			return K_SKIP;
		return S_ISREG(st->st_mode) && is_py_name(name) ? K_SOURCE : K_OTHER;
	case DT_REG:
		if (!is_py_name(name))
			return K_OTHER;
		/* stat anyway: the plan needs the size and mtime */
		if (fstatat(dfd, name, st, 0) < 0) {
			*stat_err = errno;
			return K_OTHER;
		}
		return S_ISREG(st->st_mode) ? K_SOURCE : K_OTHER;
	default:
		return K_OTHER;
	}
}

struct walk_shared {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct source_list todo; /* directories to list (path and depth used) */
	int busy;                /* threads listing a directory now */
	atomic_int waiting;      /* threads waiting for a directory to list */
	int maxlevels;
	unsigned flags;
	int errors;
	struct walklog *log;     /* or NULL */
};

/*
 * The subdirectories found so far go to the shared stack; the caller holds
 * the lock.  A thread does so when its directory is done, and in the middle
 * of a listing when another thread waits (a large directory near the top
 * would keep it idle until the end of the listing).
 */
static void share_subdirs_locked(struct walk_shared *sh, struct source_list *subdirs)
{
	size_t i;

	if (!subdirs->nr)
		return;
	for (i = 0; i < subdirs->nr; i++) {
		ALLOC_GROW(sh->todo.v, sh->todo.nr + 1, sh->todo.alloc);
		sh->todo.v[sh->todo.nr++] = subdirs->v[i];
	}
	subdirs->nr = 0;
	pthread_cond_broadcast(&sh->cond);
}

static void share_if_waited(struct walk_shared *sh, struct source_list *subdirs)
{
	if (!subdirs->nr || !atomic_load_explicit(&sh->waiting, memory_order_relaxed))
		return;
	pthread_mutex_lock(&sh->lock);
	share_subdirs_locked(sh, subdirs);
	pthread_mutex_unlock(&sh->lock);
}

/* A name the walk log keeps for a listing (walklog.h): one the walk may look at. */
static int log_keeps(unsigned flags, const char *name, unsigned char type);

/* A listing being recorded for the walk log: its names, and the stat taken before. */
struct log_rec {
	struct stat st;
	int on;
	struct strbuf names;
	size_t n;
};

static void rec_add(struct log_rec *rec, const char *name, unsigned char type)
{
	strbuf_addch(&rec->names, type);
	strbuf_add(&rec->names, name, strlen(name) + 1);
	rec->n++;
}

static int is_pyc_name(const char *name)
{
	size_t n = strlen(name);
	return n > 4 && !strcmp(name + n - 4, ".pyc");
}

/* One name of a __pycache__ listing: a pyc, lstat()ed (`at` relative to dfd). */
static void pycache_entry(int dfd, const char *at, const char *path, const char *name, int depth,
			  struct source_list *list)
{
	struct stat st;

	if (!is_pyc_name(name) || fstatat(dfd, at, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	add_entry(list, path_join(path, name), ENTRY_CACHED, &st, depth)->is_link =
		S_ISLNK(st.st_mode);
}

/*
 * WALK_PYCACHE: the pyc files of DIR/__pycache__, which must be a real
 * directory; with a walk log, from the log when it is unchanged.
 */
static void list_pycache(const struct walk_shared *sh, const char *dir, int dfd, int depth,
			 struct source_list *list)
{
	char *path = path_join(dir, "__pycache__");
	struct log_rec rec = { .on = 0 };
	struct dirreader *r;
	const char *name;
	unsigned char type;

	if (sh->log && lstat(path, &rec.st) == 0 && S_ISDIR(rec.st.st_mode)) {
		struct walklog_dir wd;
		const unsigned char *p;
		size_t k;

		if (walklog_find(sh->log, path, &rec.st, &wd)) {
			add_entry(list, xstrdup(path), ENTRY_PYCACHE, NULL, depth);
			for (k = 0, p = wd.names; k < wd.nnames; k++) {
				char *full = path_join(path, (const char *)p + 1);

				pycache_entry(AT_FDCWD, full, path, (const char *)p + 1, depth, list);
				free(full);
				p += 1 + strlen((const char *)p + 1) + 1;
			}
			free(path);
			return;
		}
		rec.on = 1;
	}
	r = xmalloc(sizeof(*r));
	/* from the log's replay (dfd AT_FDCWD) by its whole path */
	if (dir_open(r, dfd, dfd == AT_FDCWD ? path : "__pycache__", 1) < 0) {
		free(r);
		free(path);
		return;
	}
	strbuf_init(&rec.names, 0);
	add_entry(list, xstrdup(path), ENTRY_PYCACHE, NULL, depth);
	while ((name = dir_next(r, &type))) {
		if (rec.on && is_pyc_name(name))
			rec_add(&rec, name, type);
		pycache_entry(r->fd, name, path, name, depth, list);
	}
	if (rec.on && !errno)
		walklog_record(sh->log, path, &rec.st, (const unsigned char *)rec.names.buf,
			       rec.names.len, rec.n);
	strbuf_release(&rec.names);
	dir_close(r);
	free(r);
	free(path);
}

/*
 * A *.py entry that cannot even be examined (in a directory without search
 * permission): compileall skips it without a word, but exit 0 would claim
 * it compiled.  (Gone, or a dangling or looping symlink, it is no source,
 * as for compileall.)  1 after saying so.
 */
static int unexaminable(unsigned flags, const char *dir, const char *name, int err)
{
	char *path = path_join(dir, name);

	if (!(flags & WALK_QUIET))
		error("cannot compile '%s': %s", path, strerror(err));
	free(path);
	return 1;
}

static int log_keeps(unsigned flags, const char *name, unsigned char type)
{
	/* what the loop below looks at: other names matter only to compileall's view */
	return (flags & WALK_COMPILEALL) || type == DT_DIR || type == DT_UNKNOWN ||
	       !strcmp(name, "__pycache__") ||
	       is_py_name(name) || ((flags & WALK_PYCACHE) && is_pyc_name(name));
}

/* An entry's path: *owned when the caller made it (taken: NULL then), else made. */
static char *entry_path(char **owned, const char *dir, const char *name)
{
	char *p = owned ? *owned : NULL;

	if (!p)
		return path_join(dir, name);
	*owned = NULL;
	return p;
}

/*
 * One name of directory `dir`, examined through `at` relative to `dfd`
 * (the name in the open directory, or the whole path, which *owned may
 * hold: an entry kept takes it over).  Returns the number of errors
 * reported.
 */
static int list_entry(const struct walk_shared *sh, const char *dir, int dfd, const char *at,
		      char **owned, const char *name, unsigned char type, int depth,
		      struct source_list *list, struct source_list *subdirs)
{
	int all = sh->flags & WALK_COMPILEALL;
	struct stat st;
	enum kind kind;
	int is_link, stat_err;

	if (!strcmp(name, "__pycache__")) {
		if (sh->flags & WALK_PYCACHE)
			list_pycache(sh, dir, dfd, depth, list);
		return 0;
	}
	if ((sh->flags & WALK_PYCACHE) && is_pyc_name(name) &&
	    fstatat(dfd, at, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
		add_entry(list, entry_path(owned, dir, name), ENTRY_LEGACY, &st, depth)->is_link =
			S_ISLNK(st.st_mode);
		return 0;
	}
	kind = classify(dfd, at, type, &st, &is_link, &stat_err);
	if (kind == K_SOURCE)
		add_entry(list, entry_path(owned, dir, name), ENTRY_SOURCE, &st, depth)->is_link =
			(unsigned char)is_link;
	else if (kind == K_OTHER && all)
		add_entry(list, entry_path(owned, dir, name), ENTRY_OTHER, NULL, depth)->is_link =
			(unsigned char)is_link;
	else if (kind == K_DIR && depth < sh->maxlevels)
		add_entry(subdirs, entry_path(owned, dir, name), ENTRY_DIR, NULL, depth + 1);
	else if (kind == K_OTHER && !(sh->flags & WALK_PYCACHE) && is_py_name(name) &&
		 stat_err && stat_err != ENOENT && stat_err != ELOOP && stat_err != ENOTDIR)
		return unexaminable(sh->flags, dir, name, stat_err);
	return 0;
}

/* The sources listed from entry `first` on are of a directory without __pycache__. */
static void mark_no_pycache(struct source_list *list, size_t first)
{
	for (; first < list->nr; first++)
		if (list->v[first].kind == ENTRY_SOURCE)
			list->v[first].no_pycache = 1;
}

/* A directory the walk log has unchanged: its names examined by their paths. */
static int replay_dir(struct walk_shared *sh, const char *dir, int depth,
		      const struct walklog_dir *wd, struct source_list *list,
		      struct source_list *subdirs)
{
	const unsigned char *p = wd->names;
	size_t k, first = list->nr;
	int errors = 0, pycache = 0;

	if (sh->flags & WALK_COMPILEALL)
		add_entry(list, xstrdup(dir), ENTRY_DIR, NULL, depth);
	for (k = 0; k < wd->nnames; k++) {
		const char *name = (const char *)p + 1;
		char *full = path_join(dir, name);

		pycache |= !strcmp(name, "__pycache__");
		errors += list_entry(sh, dir, AT_FDCWD, full, &full, name, p[0], depth, list,
				     subdirs);
		free(full);
		share_if_waited(sh, subdirs);
		p += 1 + strlen(name) + 1;
	}
	if (!pycache)
		mark_no_pycache(list, first);
	return errors;
}

/*
 * List one directory: its entries go to `list`, its subdirectories to
 * `subdirs` (when `depth` allows).  Returns the number of errors reported.
 * With a walk log, the directory is stat()ed first: unchanged, its names
 * come from the log; else the listing is recorded.
 */
static int list_dir(struct walk_shared *sh, const char *dir, int depth,
		    struct source_list *list, struct source_list *subdirs)
{
	int all = sh->flags & WALK_COMPILEALL;
	struct log_rec rec = { .on = 0 };
	struct dirreader *r;
	const char *name;
	unsigned char type;
	size_t first = list->nr;
	int errors = 0, e, pycache = 0;

	if (sh->log && stat(dir, &rec.st) == 0 && S_ISDIR(rec.st.st_mode)) {
		struct walklog_dir wd;

		if (walklog_find(sh->log, dir, &rec.st, &wd))
			return replay_dir(sh, dir, depth, &wd, list, subdirs);
		rec.on = 1;
	}
	r = xmalloc(sizeof(*r));
	if (dir_open(r, AT_FDCWD, dir, 0) < 0) {
		e = errno;
		free(r);
		if (all) {
			add_entry(list, xstrdup(dir), ENTRY_DIR_ERROR, NULL, depth)->err = e;
			return 0;
		}
		if (!(sh->flags & WALK_QUIET))
			error("cannot list '%s': %s", dir, strerror(e));
		return 1;
	}
	strbuf_init(&rec.names, 0);
	if (all)
		add_entry(list, xstrdup(dir), ENTRY_DIR, NULL, depth);
	while ((name = dir_next(r, &type))) {
		if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
			continue;
		if (rec.on && log_keeps(sh->flags, name, type))
			rec_add(&rec, name, type);
		pycache |= !strcmp(name, "__pycache__");
		errors += list_entry(sh, dir, r->fd, name, NULL, name, type, depth, list, subdirs);
		share_if_waited(sh, subdirs);
		errno = 0; /* dir_next() sets it at the end */
	}
	e = errno;
	if (e && !all) {
		if (!(sh->flags & WALK_QUIET))
			error("cannot list '%s': %s", dir, strerror(e));
		errors++;
	}
	if (!e && !pycache)
		mark_no_pycache(list, first);
	if (rec.on && !e)
		walklog_record(sh->log, dir, &rec.st, (const unsigned char *)rec.names.buf,
			       rec.names.len, rec.n);
	strbuf_release(&rec.names);
	dir_close(r);
	free(r);
	return errors;
}

/*
 * compileall's order: a depth-first walk over sorted names, which is the
 * order of the paths compared component by component ("a/z.py" before
 * "a.b/y.py", because the name "a" sorts before "a.b"; a directory before
 * what it holds).  Names compare as Python's str does: by code point, an
 * undecodable byte as its surrogate escape (utf8_decode_escaped()).
 * cmp_from() is that order of a and b, equal before i (a[i] != b[i], or
 * both end there).
 */
static int cmp_from(const unsigned char *a, const unsigned char *b, size_t i)
{
	size_t comp = i;
	unsigned ca, cb;

	if (a[i] == b[i])
		return 0;
	/* a path sorts before the paths under it, and a name before its extensions */
	if (!a[i])
		return -1;
	if (!b[i])
		return 1;
	if (a[i] == '/')
		return -1;
	if (b[i] == '/')
		return 1;
	if (a[i] < 0x80 && b[i] < 0x80)
		return a[i] < b[i] ? -1 : 1;
	/* decode the differing names from their start, where a character starts */
	while (comp && a[comp - 1] != '/')
		comp--;
	a += comp;
	b += comp;
	for (;;) {
		if (!*a)
			return *b ? -1 : 0;
		if (!*b)
			return 1;
		if (*a == '/')
			return *b != '/' ? -1 : 0;
		if (*b == '/')
			return 1;
		a += utf8_decode_escaped(a, &ca);
		b += utf8_decode_escaped(b, &cb);
		if (ca != cb)
			return ca < cb ? -1 : 1;
	}
}

int walk_path_cmp(const char *pa, const char *pb)
{
	const unsigned char *a = (const unsigned char *)pa, *b = (const unsigned char *)pb;
	size_t i = 0;

	while (a[i] && a[i] == b[i])
		i++;
	return cmp_from(a, b, i);
}

/*
 * Sorting the walk's entries compares long paths that share most of their
 * bytes (a tree's paths): with their lengths known, the common prefix is
 * skipped a word at a time, never reading past either path's NUL.
 */
struct sort_key {
	const unsigned char *path;
	size_t len;   /* of the path, less `skip` */
	size_t index; /* its index in its thread's list */
};

/* How many bytes a and b (of lengths at least n) have in common, from `i`. */
static size_t common_prefix(const unsigned char *a, const unsigned char *b, size_t i, size_t n)
{
	while (i + 8 <= n) {
		uint64_t u, v;

		memcpy(&u, a + i, 8);
		memcpy(&v, b + i, 8);
		if (u != v)
			break;
		i += 8;
	}
	while (i < n && a[i] == b[i])
		i++;
	return i;
}

static int cmp_sort_key(const void *x, const void *y)
{
	/* pointers are sorted: glibc's qsort moves 8-byte elements without a memcpy() call */
	const struct sort_key *kx = *(const struct sort_key *const *)x;
	const struct sort_key *ky = *(const struct sort_key *const *)y;
	size_t n = kx->len < ky->len ? kx->len : ky->len;

	return cmp_from(kx->path, ky->path, common_prefix(kx->path, ky->path, 0, n));
}

/*
 * One thread's finds in walk order: their keys (the path less `skip`
 * bytes, every entry's common start), sorted where they lie.  Each walk
 * thread sorts its own when the walk ends, and the caller merges the runs.
 */
struct sorted_run {
	struct sort_key *keys;
	struct sort_key **order;
	size_t n;
	size_t next, end; /* order[next..end): not merged yet, by the front and the back */
};

static void sort_run(struct sorted_run *run, const struct source_list *found, size_t skip)
{
	size_t i;

	run->n = run->end = found->nr;
	run->next = 0;
	if (!run->n)
		return;
	run->keys = xcalloc(run->n, sizeof(*run->keys));
	run->order = xcalloc(run->n, sizeof(*run->order));
	for (i = 0; i < run->n; i++) {
		run->keys[i].path = (const unsigned char *)found->v[i].path + skip;
		run->keys[i].len = strlen((const char *)run->keys[i].path);
		run->keys[i].index = i;
		run->order[i] = &run->keys[i];
	}
	qsort(run->order, run->n, sizeof(*run->order), cmp_sort_key);
}

/*
 * Append the entries of found[0..nfound), each sorted by sort_run() into
 * runs[], to `list` in walk order: merged, and copied once, into their
 * place (every page of a copy is a page fault, and a no-op has few other
 * costs).  Two threads share it: one takes the smallest entries from the
 * front, the other the largest from the back (a tie goes to the run found
 * first, from either end), each filling its own part of the list.
 */
struct merge_ctx {
	struct source *out;         /* n entries */
	const struct source_list *found;
	struct sorted_run *runs;
	size_t nfound, n, nfront;
	size_t front; /* how many the front has taken */
};

static void merge_front(struct merge_ctx *m)
{
	size_t j;

	for (; m->front < m->nfront; m->front++) {
		size_t best = m->nfound;

		for (j = 0; j < m->nfound; j++)
			if (m->runs[j].next < m->runs[j].n &&
			    (best == m->nfound ||
			     cmp_sort_key(&m->runs[j].order[m->runs[j].next],
					  &m->runs[best].order[m->runs[best].next]) < 0))
				best = j;
		m->out[m->front] =
			m->found[best].v[m->runs[best].order[m->runs[best].next++]->index];
	}
}

static void merge_back(struct merge_ctx *m)
{
	size_t i, j;

	for (i = m->n; i > m->nfront; i--) {
		size_t best = m->nfound;

		/* a run's tail and head never meet: the two parts add up to n */
		for (j = 0; j < m->nfound; j++)
			if (m->runs[j].end &&
			    (best == m->nfound ||
			     cmp_sort_key(&m->runs[j].order[m->runs[j].end - 1],
					  &m->runs[best].order[m->runs[best].end - 1]) >= 0))
				best = j;
		m->out[i - 1] = m->found[best].v[m->runs[best].order[--m->runs[best].end]->index];
	}
}

static void merge_thread(void *arg, size_t thread)
{
	if (thread == 0)
		merge_front(arg);
	else
		merge_back(arg);
}

static void merge_runs(struct source_list *list, const struct source_list *found,
		       struct sorted_run *runs, size_t nfound)
{
	struct merge_ctx m = { .found = found, .runs = runs, .nfound = nfound };
	size_t j;

	for (j = 0; j < nfound; j++)
		m.n += runs[j].n;
	ALLOC_GROW_BULK(list->v, st_add(list->nr, m.n), list->alloc);
	m.out = list->v + list->nr;
	/* one thread takes the whole merge when there is little of it */
	m.nfront = parallel_threads(m.n, 2048, 1) > 1 ? m.n / 2 : m.n;
	if (parallel_run(m.nfront < m.n ? 2 : 1, merge_thread, &m) < 2 && m.nfront < m.n) {
		/* no second thread: the front goes on to the end */
		m.nfront = m.n;
		merge_front(&m);
	}
	list->nr += m.n;
	for (j = 0; j < nfound; j++) {
		free(runs[j].order);
		free(runs[j].keys);
	}
}

/*
 * The walk of one directory argument runs on a few threads (parallel_run())
 * sharing a stack of directories to list; each collects entries in its own
 * list and sorts it when the stack is empty, and the sorted lists are merged
 * into compileall's order (merge_runs()).
 * Listing is system calls, so this matters most when nothing needs compiling.
 */
struct walk_ctx {
	struct walk_shared sh;
	struct source_list found[PARALLEL_MAX_THREADS]; /* per thread */
	struct sorted_run runs[PARALLEL_MAX_THREADS];   /* found[] sorted */
	size_t skip; /* the bytes every path starts with, whole directories */
};

static void walk_thread_run(void *arg, size_t thread)
{
	struct walk_ctx *ctx = arg;
	struct walk_shared *sh = &ctx->sh;
	struct source_list subdirs = SOURCE_LIST_INIT;

	pthread_mutex_lock(&sh->lock);
	for (;;) {
		struct source dir;
		int errors;

		while (!sh->todo.nr && sh->busy) {
			atomic_fetch_add(&sh->waiting, 1);
			pthread_cond_wait(&sh->cond, &sh->lock);
			atomic_fetch_sub(&sh->waiting, 1);
		}
		if (!sh->todo.nr)
			break; /* nothing queued and nobody can queue more */
		dir = sh->todo.v[--sh->todo.nr];
		sh->busy++;
		pthread_mutex_unlock(&sh->lock);

		errors = list_dir(sh, dir.path, dir.depth, &ctx->found[thread], &subdirs);
		free(dir.path);

		pthread_mutex_lock(&sh->lock);
		sh->errors += errors;
		share_subdirs_locked(sh, &subdirs);
		sh->busy--;
		if (!sh->busy)
			pthread_cond_broadcast(&sh->cond);
	}
	pthread_mutex_unlock(&sh->lock);
	free(subdirs.v);
	sort_run(&ctx->runs[thread], &ctx->found[thread], ctx->skip);
}

static int walk_dir(const char *dir, int maxlevels, unsigned flags, struct source_list *list,
		    struct walklog *log)
{
	struct walk_ctx ctx;
	size_t start = list->nr, i;
	const char *slash = strrchr(dir, '/');

	memset(&ctx, 0, sizeof(ctx));
	/* every path is dir or under it: its parent's part is skipped in comparisons */
	ctx.skip = slash ? (size_t)(slash - dir) + 1 : 0;
	pthread_mutex_init(&ctx.sh.lock, NULL);
	pthread_cond_init(&ctx.sh.cond, NULL);
	ctx.sh.maxlevels = maxlevels;
	ctx.sh.flags = flags;
	ctx.sh.log = log;
	add_entry(&ctx.sh.todo, xstrdup(dir), ENTRY_DIR, NULL, 0);

	/* one directory is work enough for a thread: no minimum of items */
	parallel_run(parallel_threads(1, 0, 1), walk_thread_run, &ctx);
	merge_runs(list, ctx.found, ctx.runs, PARALLEL_MAX_THREADS);
	for (i = 0; i < PARALLEL_MAX_THREADS; i++)
		free(ctx.found[i].v);
	if ((flags & WALK_COMPILEALL) && list->nr > start)
		list->v[start].top = 1; /* the argument's own directory entry */
	for (i = strlen(dir); start < list->nr; start++)
		list->v[start].arg_len = i;
	free(ctx.sh.todo.v);
	pthread_mutex_destroy(&ctx.sh.lock);
	pthread_cond_destroy(&ctx.sh.cond);
	return ctx.sh.errors;
}

int walk_path(const char *arg, int maxlevels, unsigned flags, struct source_list *list)
{
	return walk_path_log(arg, maxlevels, flags, list, NULL);
}

int walk_path_log(const char *arg, int maxlevels, unsigned flags, struct source_list *list,
		  struct walklog *log)
{
	struct stat st, lst;
	const char *slash = strrchr(arg, '/');
	int py = is_py_name(slash ? slash + 1 : arg);
	struct source *s;

	if (!list->started_ns) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		list->started_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	}
	if (stat(arg, &st) < 0) {
		if (flags & WALK_COMPILEALL)
			return walk_dir(arg, maxlevels, flags, list, log);
		if (!(flags & WALK_QUIET))
			error_errno("cannot compile '%s'", arg);
		return 1;
	}
	if (S_ISREG(st.st_mode)) {
		if (!py && !(flags & WALK_COMPILEALL)) {
			if (!(flags & WALK_QUIET))
				warning("'%s' is not a .py file: skipped", arg);
			return 0;
		}
		s = add_entry(list, xstrdup(arg), py ? ENTRY_SOURCE : ENTRY_OTHER, &st, 0);
		s->is_link = lstat(arg, &lst) == 0 && S_ISLNK(lst.st_mode);
		s->top = 1;
		return 0;
	}
	if (!S_ISDIR(st.st_mode) && !(flags & WALK_COMPILEALL)) {
		if (!(flags & WALK_QUIET))
			error("cannot compile '%s': not a regular file or directory", arg);
		return 1;
	}
	return walk_dir(arg, maxlevels, flags, list, log);
}

void source_list_release(struct source_list *list)
{
	size_t i;

	for (i = 0; i < list->nr; i++)
		free(list->v[i].path);
	free(list->v);
	list->v = NULL;
	list->nr = list->alloc = 0;
}
