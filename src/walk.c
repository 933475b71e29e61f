#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* d_type */
#include "walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "banned.h"

enum kind { K_SKIP, K_SOURCE, K_DIR };

struct entry {
	char *name;
	enum kind kind;
	struct stat st;
};

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

static void add_source(struct source_list *list, char *path, const struct stat *st,
		       int depth)
{
	struct source *s;

	ALLOC_GROW(list->v, list->nr + 1, list->alloc);
	s = &list->v[list->nr++];
	s->path = path;
	s->size = (uint64_t)st->st_size;
	s->mtime_sec = (int64_t)st->st_mtim.tv_sec;
	s->mtime_nsec = st->st_mtim.tv_nsec;
	s->mode = st->st_mode;
	s->depth = depth;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

/* Decide what one directory entry is, with as few stat calls as d_type allows. */
static enum kind classify(int dfd, const struct dirent *de, struct stat *st)
{
	const char *name = de->d_name;
	int py = is_py_name(name);
	unsigned char type = DT_UNKNOWN;

#ifdef _DIRENT_HAVE_D_TYPE
	type = de->d_type;
#endif
	if (type == DT_UNKNOWN) {
		if (fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) < 0)
			return K_SKIP;
		type = S_ISDIR(st->st_mode) ? DT_DIR : S_ISREG(st->st_mode) ? DT_REG
			: S_ISLNK(st->st_mode) ? DT_LNK : DT_FIFO;
	}
	switch (type) {
	case DT_DIR:
		return K_DIR;
	case DT_REG:
	case DT_LNK:
		/* a symlink to a directory is neither entered nor compiled */
		if (!py || fstatat(dfd, name, st, 0) < 0 || !S_ISREG(st->st_mode))
			return K_SKIP;
		return K_SOURCE;
	default:
		return K_SKIP;
	}
}

static int walk_dir(const char *dir, int depth, int maxlevels, struct source_list *list)
{
	DIR *d;
	struct dirent *de;
	struct entry *ents = NULL;
	size_t nr = 0, alloc = 0, i;
	int errors = 0;

	d = opendir(dir);
	if (!d)
		return -error_errno("cannot list '%s'", dir);
	while ((errno = 0, de = readdir(d))) {
		struct entry e;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, "__pycache__"))
			continue;
		e.kind = classify(dirfd(d), de, &e.st);
		if (e.kind == K_SKIP || (e.kind == K_DIR && depth >= maxlevels))
			continue;
		e.name = xstrdup(de->d_name);
		ALLOC_GROW(ents, nr + 1, alloc);
		ents[nr++] = e;
	}
	if (errno) {
		error_errno("cannot list '%s'", dir);
		errors++;
	}
	closedir(d);

	qsort(ents, nr, sizeof(*ents), cmp_entry);
	for (i = 0; i < nr; i++) {
		char *path = path_join(dir, ents[i].name);

		if (ents[i].kind == K_SOURCE) {
			add_source(list, path, &ents[i].st, depth);
		} else {
			errors += walk_dir(path, depth + 1, maxlevels, list);
			free(path);
		}
		free(ents[i].name);
	}
	free(ents);
	return errors;
}

int walk_path(const char *arg, int maxlevels, struct source_list *list)
{
	struct stat st;

	if (stat(arg, &st) < 0)
		return -error_errno("cannot compile '%s'", arg);
	if (S_ISREG(st.st_mode)) {
		const char *slash = strrchr(arg, '/');

		if (!is_py_name(slash ? slash + 1 : arg)) {
			warning("'%s' is not a .py file: skipped", arg);
			return 0;
		}
		add_source(list, xstrdup(arg), &st, 0);
		return 0;
	}
	if (!S_ISDIR(st.st_mode))
		return -error("cannot compile '%s': not a regular file or directory", arg);
	return walk_dir(arg, 0, maxlevels, list);
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
