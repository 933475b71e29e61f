#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* d_type */
#include "walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "parallel.h"
#include "util.h"
#include "banned.h"

int is_py_name(const char *name)
{
	size_t n = strlen(name);
	return n >= 3 && !strcmp(name + n - 3, ".py");
}

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir);

	/* os.path.join: no separator added after one already there */
	if (n && dir[n - 1] == '/')
		return xstrfmt("%s%s", dir, name);
	return xstrfmt("%s/%s", dir, name);
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
static enum kind classify(int dfd, const struct dirent *de, struct stat *st, int *is_link,
			  int *stat_err)
{
	const char *name = de->d_name;
	unsigned char type = DT_UNKNOWN;

#ifdef _DIRENT_HAVE_D_TYPE
	type = de->d_type;
#endif
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
	int maxlevels;
	unsigned flags;
	int errors;
};

static int is_pyc_name(const char *name)
{
	size_t n = strlen(name);
	return n > 4 && !strcmp(name + n - 4, ".pyc");
}

/* WALK_PYCACHE: the pyc files of DIR/__pycache__, which must be a real directory. */
static void list_pycache(const char *dir, int dfd, int depth, struct source_list *list)
{
	char *path = path_join(dir, "__pycache__");
	int fd = openat(dfd, "__pycache__", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		free(path);
		return;
	}
	add_entry(list, xstrdup(path), ENTRY_PYCACHE, NULL, depth);
	while ((de = readdir(d))) {
		struct stat st;

		if (!is_pyc_name(de->d_name) || fstatat(dirfd(d), de->d_name, &st,
							 AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		add_entry(list, path_join(path, de->d_name), ENTRY_CACHED, &st, depth)->is_link =
			S_ISLNK(st.st_mode);
	}
	closedir(d);
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

/*
 * List one directory: its entries go to `list`, its subdirectories to
 * `subdirs` (when `depth` allows).  Returns the number of errors reported.
 */
static int list_dir(const struct walk_shared *sh, const char *dir, int depth,
		    struct source_list *list, struct source_list *subdirs)
{
	int all = sh->flags & WALK_COMPILEALL;
	DIR *d;
	struct dirent *de;
	int errors = 0;

	d = opendir(dir);
	if (!d) {
		if (all) {
			add_entry(list, xstrdup(dir), ENTRY_DIR_ERROR, NULL, depth)->err = errno;
			return 0;
		}
		if (!(sh->flags & WALK_QUIET))
			error_errno("cannot list '%s'", dir);
		return 1;
	}
	if (all)
		add_entry(list, xstrdup(dir), ENTRY_DIR, NULL, depth);
	while ((errno = 0, de = readdir(d))) {
		struct stat st;
		enum kind kind;
		int is_link, stat_err;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!strcmp(de->d_name, "__pycache__")) {
			if (sh->flags & WALK_PYCACHE)
				list_pycache(dir, dirfd(d), depth, list);
			continue;
		}
		if ((sh->flags & WALK_PYCACHE) && is_pyc_name(de->d_name) &&
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    !S_ISDIR(st.st_mode)) {
			add_entry(list, path_join(dir, de->d_name), ENTRY_LEGACY, &st, depth)->is_link =
				S_ISLNK(st.st_mode);
			continue;
		}
		kind = classify(dirfd(d), de, &st, &is_link, &stat_err);
		if (kind == K_SOURCE)
			add_entry(list, path_join(dir, de->d_name), ENTRY_SOURCE, &st, depth)->is_link =
				(unsigned char)is_link;
		else if (kind == K_OTHER && all)
			add_entry(list, path_join(dir, de->d_name), ENTRY_OTHER, NULL, depth)->is_link =
				(unsigned char)is_link;
		else if (kind == K_DIR && depth < sh->maxlevels)
			add_entry(subdirs, path_join(dir, de->d_name), ENTRY_DIR, NULL, depth + 1);
		else if (kind == K_OTHER && !(sh->flags & WALK_PYCACHE) && is_py_name(de->d_name) &&
			 stat_err && stat_err != ENOENT && stat_err != ELOOP && stat_err != ENOTDIR)
			errors += unexaminable(sh->flags, dir, de->d_name, stat_err);
	}
	if (errno && !all) {
		if (!(sh->flags & WALK_QUIET))
			error_errno("cannot list '%s'", dir);
		errors++;
	}
	closedir(d);
	return errors;
}

/*
 * compileall's order: a depth-first walk over sorted names, which is the
 * order of the paths compared component by component ("a/z.py" before
 * "a.b/y.py", because the name "a" sorts before "a.b"; a directory before
 * what it holds).  Names compare as Python's str does: by code point, an
 * undecodable byte as its surrogate escape (utf8_decode_escaped()).
 */
int walk_path_cmp(const char *pa, const char *pb)
{
	const unsigned char *a = (const unsigned char *)pa, *b = (const unsigned char *)pb;
	size_t i = 0, comp = 0;
	unsigned ca, cb;

	while (a[i] && a[i] == b[i]) {
		if (a[i] == '/')
			comp = i + 1;
		i++;
	}
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

static int cmp_walk_order(const void *x, const void *y)
{
	return walk_path_cmp(((const struct source *)x)->path, ((const struct source *)y)->path);
}

/*
 * The walk of one directory argument runs on a few threads (parallel_run())
 * sharing a stack of directories to list; each collects entries in its own
 * list, and the union is sorted into compileall's order at the end.
 * Listing is system calls, so this matters most when nothing needs compiling.
 */
struct walk_ctx {
	struct walk_shared sh;
	struct source_list found[PARALLEL_MAX_THREADS]; /* per thread */
};

static void walk_thread_run(void *arg, size_t thread)
{
	struct walk_ctx *ctx = arg;
	struct walk_shared *sh = &ctx->sh;
	struct source_list subdirs = SOURCE_LIST_INIT;

	pthread_mutex_lock(&sh->lock);
	for (;;) {
		struct source dir;
		size_t i;
		int errors;

		while (!sh->todo.nr && sh->busy)
			pthread_cond_wait(&sh->cond, &sh->lock);
		if (!sh->todo.nr)
			break; /* nothing queued and nobody can queue more */
		dir = sh->todo.v[--sh->todo.nr];
		sh->busy++;
		pthread_mutex_unlock(&sh->lock);

		errors = list_dir(sh, dir.path, dir.depth, &ctx->found[thread], &subdirs);
		free(dir.path);

		pthread_mutex_lock(&sh->lock);
		sh->errors += errors;
		for (i = 0; i < subdirs.nr; i++) {
			ALLOC_GROW(sh->todo.v, sh->todo.nr + 1, sh->todo.alloc);
			sh->todo.v[sh->todo.nr++] = subdirs.v[i];
		}
		subdirs.nr = 0;
		sh->busy--;
		pthread_cond_broadcast(&sh->cond);
	}
	pthread_mutex_unlock(&sh->lock);
	free(subdirs.v);
}

static int walk_dir(const char *dir, int maxlevels, unsigned flags, struct source_list *list)
{
	struct walk_ctx ctx;
	size_t start = list->nr, i;

	memset(&ctx, 0, sizeof(ctx));
	pthread_mutex_init(&ctx.sh.lock, NULL);
	pthread_cond_init(&ctx.sh.cond, NULL);
	ctx.sh.maxlevels = maxlevels;
	ctx.sh.flags = flags;
	add_entry(&ctx.sh.todo, xstrdup(dir), ENTRY_DIR, NULL, 0);

	/* one directory is work enough for a thread: no minimum of items */
	parallel_run(parallel_threads(1, 0, 1), walk_thread_run, &ctx);
	for (i = 0; i < PARALLEL_MAX_THREADS; i++) {
		struct source_list *found = &ctx.found[i];

		if (found->nr) {
			ALLOC_GROW(list->v, list->nr + found->nr, list->alloc);
			memcpy(list->v + list->nr, found->v, found->nr * sizeof(*list->v));
			list->nr += found->nr;
		}
		free(found->v);
	}
	if (list->nr > start)
		qsort(list->v + start, list->nr - start, sizeof(*list->v), cmp_walk_order);
	if ((flags & WALK_COMPILEALL) && list->nr > start)
		list->v[start].top = 1; /* the argument's own directory entry */
	for (; start < list->nr; start++)
		list->v[start].arg_len = strlen(dir);
	free(ctx.sh.todo.v);
	pthread_mutex_destroy(&ctx.sh.lock);
	pthread_cond_destroy(&ctx.sh.cond);
	return ctx.sh.errors;
}

int walk_path(const char *arg, int maxlevels, unsigned flags, struct source_list *list)
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
			return walk_dir(arg, maxlevels, flags, list);
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
	return walk_dir(arg, maxlevels, flags, list);
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
