/*
 * clean.c - which pycs go, and their removal (see clean.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "clean.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inventory.h"
#include "pyc.h"
#include "tempfile.h"
#include "util.h"
#include "verify.h"
#include "banned.h"

/*
 * Is this __pycache__ pyc one of a target's, stale or invalid for its
 * source?  The inventory read its cache tag and level from its name; it is
 * the target's when importlib would look for it there (the target's
 * layout: a pycache_prefix puts the target's pycs elsewhere).
 */
static int stale_for_targets(const struct inventory_pyc *p, const struct target *targets,
			     size_t nt)
{
	size_t k;

	if (p->level < 0)
		return 0;
	for (k = 0; k < nt; k++) {
		char detail[200], *want;
		enum pyc_status st;
		int mine;

		if (strcmp(targets[k].cache_tag, p->tag))
			continue;
		want = pyc_cache_path(&targets[k].layout, p->source.path, p->level);
		mine = !strcmp(want, p->entry->path);
		free(want);
		if (!mine)
			continue;
		st = verify_pyc(&targets[k], p->entry->path, &p->source, -1, detail, sizeof(detail));
		return st != PYC_OK && st != PYC_MISSING && st != PYC_UNREADABLE;
	}
	return 0;
}

/* A legacy pyc beside its source: stale for a target it belongs to (its magic)? */
static int legacy_stale(const struct clean_opts *o, const struct inventory_pyc *p,
			const struct target *targets, size_t nt)
{
	size_t t;
	int go = 0, mine = 0;

	for (t = 0; t < nt && !go; t++) {
		char detail[200];
		enum pyc_status stt = verify_pyc(&targets[t], p->entry->path, &p->source, -1,
						 detail, sizeof(detail));

		mine |= stt != PYC_WRONG_MAGIC;
		go = stt != PYC_OK && stt != PYC_UNREADABLE && stt != PYC_WRONG_MAGIC;
	}
	/* another interpreter's is kept, unless asked for */
	return mine ? go : o->other_versions;
}

static int goes(const struct clean_opts *o, const struct inventory_pyc *p,
		const struct target *targets, size_t nt)
{
	size_t t;
	int ours = 0;

	if (p->legacy) {
		if (!o->legacy)
			return 0;
		/* a sourceless pyc is importable: only on request */
		if (!p->has_source)
			return o->sourceless;
		return o->all || !nt ? 1 : legacy_stale(o, p, targets, nt);
	}
	if (S_ISDIR(p->entry->mode))
		return 0;
	if (o->all)
		return 1;
	if (!p->source.path)
		return 0;
	if (!p->has_source)
		return 1; /* orphan */
	for (t = 0; t < nt; t++)
		ours |= !strcmp(targets[t].cache_tag, p->tag);
	return ours ? stale_for_targets(p, targets, nt) : o->other_versions;
}

/*
 * List a file removed (or that would be): "would remove PATH" with
 * dry_run, "removed PATH" with verbose, or with null (-z) PATH and a NUL.
 */
static void list_removed(const struct clean_opts *o, const char *path, const char *suffix)
{
	if (o->quiet >= 2)
		return;
	if (o->null)
		printf("%s%s%c", path, suffix, '\0');
	else if (o->dry_run)
		printf("would remove %s%s\n", path, suffix);
	else if (o->verbose)
		printf("removed %s%s\n", path, suffix);
}

struct temps {
	const struct clean_opts *o;
	size_t removed;
	int failed;
};

static void on_stray(const char *path, int err, void *arg)
{
	struct temps *t = arg;

	if (err) {
		errno = err;
		error_errno("cannot remove '%s'", path);
		t->failed = 1;
		return;
	}
	t->removed++;
	list_removed(t->o, path, "");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The stray temporary files of __pycache__ directories (--legacy: of the sources' too). */
static void clean_temps(const struct source_list *list, struct temps *t)
{
	char **dirs = NULL;
	size_t k, nr = 0, alloc = 0;

	for (k = 0; k < list->nr; k++) {
		const struct source *s = &list->v[k];
		const char *slash;

		if (s->kind == ENTRY_PYCACHE) {
			sweep_stray_temps(s->path, t->o->dry_run, on_stray, t);
			continue;
		}
		if (!t->o->legacy || (s->kind != ENTRY_SOURCE && s->kind != ENTRY_LEGACY))
			continue;
		slash = strrchr(s->path, '/');
		ALLOC_GROW(dirs, nr + 1, alloc);
		dirs[nr++] = slash ? xstrndup(s->path, slash == s->path ? 1 : (size_t)(slash - s->path))
				   : xstrdup(".");
	}
	if (nr)
		qsort(dirs, nr, sizeof(*dirs), cmp_str);
	for (k = 0; k < nr; k++) {
		if (k == 0 || strcmp(dirs[k], dirs[k - 1]))
			sweep_stray_temps(dirs[k], t->o->dry_run, on_stray, t);
	}
	for (k = 0; k < nr; k++)
		free(dirs[k]);
	free(dirs);
}

/* Remove (or list) one pyc; 0, or -1 when it could not be removed. */
static int remove_pyc(const struct clean_opts *o, const struct source *s, struct clean_stats *st)
{
	if (!o->dry_run && unlink(s->path) < 0) {
		if (errno == ENOENT)
			return 0;
		return error_errno("cannot remove '%s'", s->path);
	}
	list_removed(o, s->path, "");
	st->removed++;
	st->bytes += s->size;
	return 0;
}

int clean_tree(const struct clean_opts *o, const struct target *targets, size_t ntargets,
	       const struct source_list *list, struct clean_stats *stats)
{
	struct inventory inv = INVENTORY_INIT;
	struct temps temps = { o, 0, 0 };
	size_t k;
	int failed = 0;

	memset(stats, 0, sizeof(*stats));
	inventory_build(&inv, list);
	for (k = 0; k < inv.nr; k++)
		if (goes(o, &inv.v[k], targets, ntargets) && remove_pyc(o, inv.v[k].entry, stats) < 0)
			failed = 1;
	inventory_release(&inv);

	clean_temps(list, &temps);
	failed |= temps.failed;
	stats->temps = temps.removed;

	/* __pycache__ directories left empty (rmdir refuses the others) */
	for (k = 0; k < list->nr && !o->dry_run; k++) {
		const struct source *s = &list->v[k];

		if (s->kind != ENTRY_PYCACHE)
			continue;
		if (rmdir(s->path) == 0) {
			stats->dirs++;
			list_removed(o, s->path, "/");
		}
	}
	return failed;
}
