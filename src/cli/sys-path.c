/*
 * sys-path.c - the directories of --sys-path (see sys-path.h).
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700 /* realpath */
#include "sys-path.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plan.h"
#include "util.h"
#include "banned.h"

static int inside(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0' || !strcmp(dir, "/"));
}

int sys_path_dirs(const struct target *t, struct option_list *dirs)
{
	struct option_list all = { NULL, 0, 0 };
	char **real, *cwd = realpath(".", NULL);
	size_t i, j, n = dirs->nr;

	if (driver_sys_path(t, 1, &all) < 0) {
		free(cwd);
		return -1;
	}
	real = xcalloc(all.nr ? all.nr : 1, sizeof(*real));
	for (i = 0; i < all.nr; i++) {
		struct stat st;
		const char *p = all.v[i];

		/* not the working directory, zip files, what does not exist */
		if (!*p || !strcmp(p, ".") || stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		real[i] = realpath(p, NULL);
		if (!real[i] || (cwd && !strcmp(real[i], cwd))) {
			free(real[i]);
			real[i] = NULL;
		}
	}
	/* each directory once, and none inside another one kept */
	for (i = 0; i < all.nr; i++) {
		int keep = real[i] != NULL;

		for (j = 0; j < all.nr && keep; j++)
			if (j != i && real[j] && inside(real[i], real[j]) &&
			    (strcmp(real[i], real[j]) || j < i))
				keep = 0;
		if (keep) {
			ALLOC_GROW(dirs->v, n + 1, dirs->alloc);
			dirs->v[n++] = xstrdup(all.v[i]);
		}
	}
	dirs->nr = n;
	for (i = 0; i < all.nr; i++) {
		free(real[i]);
		free((char *)all.v[i]);
	}
	free(real);
	free(cwd);
	option_list_release(&all);
	return 0;
}

/* How many sources of `list` have a missing or stale pyc for `t` (compile's view). */
static size_t stale_sources(const struct driver_opts *d, const struct target *t,
			    const struct source_list *list)
{
	struct plan_opts po = { .maxlevels = d->e.maxlevels, .levels = d->e.levels,
				.nlevels = d->e.nlevels, .legacy = d->e.legacy };
	struct plan p = PLAN_INIT;
	unsigned char *skip = NULL;
	size_t k, n = 0;

	if (d->rx && driver_eval_rx(d, t, list, &skip) == 0)
		po.rx_skip = skip;
	plan_build(&p, &po, t, list);
	plan_freshness(&p, t, engine_invalidation(&d->e, t), NULL);
	for (k = 0; k < p.nfiles; k++)
		n += p.files[k].state == FS_PENDING;
	plan_release(&p);
	free(skip);
	return n;
}

static void copy_list(const struct source_list *from, struct source_list *to)
{
	size_t k;

	for (k = 0; k < from->nr; k++) {
		ALLOC_GROW(to->v, to->nr + 1, to->alloc);
		to->v[to->nr] = from->v[k];
		to->v[to->nr++].path = xstrdup(from->v[k].path);
	}
}

int sys_path_compile_list(const struct driver_opts *d, const struct target *t,
			  const struct source_list *paths, struct source_list *out)
{
	struct option_list dirs = { NULL, 0, 0 };
	int maxlevels = d->e.maxlevels >= 0 ? d->e.maxlevels : WALK_MAX_DEPTH;
	unsigned flags = d->e.quiet >= 2 ? WALK_QUIET : 0;
	size_t i;
	int refused = 0;

	if (sys_path_dirs(t, &dirs) < 0)
		return -1;
	copy_list(paths, out);
	for (i = 0; i < dirs.nr; i++) {
		struct source_list one = SOURCE_LIST_INIT;
		size_t n;

		int err;

		walk_path(dirs.v[i], maxlevels, flags, &one);
		if (access(dirs.v[i], W_OK) == 0) {
			copy_list(&one, out);
		} else if ((err = errno, n = stale_sources(d, t, &one)) > 0) {
			/* one message for the directory, not one per pyc it cannot hold */
			errno = err;
			error_errno("cannot write in '%s' (on the sys.path of %s, %zu source%s to "
				    "compile there)", dirs.v[i], t->display, n, n == 1 ? "" : "s");
			refused++;
		}
		source_list_release(&one);
	}
	for (i = 0; i < dirs.nr; i++)
		free((char *)dirs.v[i]);
	option_list_release(&dirs);
	return refused;
}

size_t *sys_path_check_walk(const struct target *targets, size_t nt, int maxlevels,
			    struct source_list *list, int *rc)
{
	size_t *owner, k, i, first = list->nr;
	size_t *ends = xcalloc(nt ? nt : 1, sizeof(*ends));

	for (k = 0; k < nt; k++) {
		struct option_list dirs = { NULL, 0, 0 };

		if (sys_path_dirs(&targets[k], &dirs) < 0)
			*rc = 2;
		for (i = 0; i < dirs.nr; i++) {
			if (walk_path(dirs.v[i], maxlevels, WALK_PYCACHE, list) && *rc == 0)
				*rc = 1;
			free((char *)dirs.v[i]);
		}
		option_list_release(&dirs);
		ends[k] = list->nr;
	}
	owner = xcalloc(list->nr ? list->nr : 1, sizeof(*owner));
	for (k = 0, i = first; k < nt; k++)
		for (; i < ends[k]; i++)
			owner[i] = k + 1;
	free(ends);
	return owner;
}

void sys_path_mark_skips(const size_t *owner, size_t n, size_t k, unsigned char **skip)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!owner[i] || owner[i] == k + 1)
			continue;
		if (!*skip)
			*skip = xcalloc(n, 1);
		(*skip)[i] = 1;
	}
}

int sys_path_check_skips(const struct driver_opts *d, const size_t *owner,
			 const struct target *targets, size_t nt, const struct source_list *list,
			 unsigned char **skips)
{
	size_t k;

	for (k = 0; k < nt; k++) {
		if (d->rx && driver_eval_rx(d, &targets[k], list, &skips[k]) < 0)
			return -1;
		if (owner)
			sys_path_mark_skips(owner, list->nr, k, &skips[k]);
	}
	return 0;
}
