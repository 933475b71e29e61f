/*
 * cmd-clean.c - `prepyc clean PATH...`: remove stale and orphaned bytecode.
 *
 * What may go, and nothing else:
 *   - *.pyc files in real __pycache__ directories (never through a symlink:
 *     the walk enters no symlinked directory and opens __pycache__ with
 *     O_NOFOLLOW; a pyc that is a symlink loses the link, never its target);
 *   - legacy *.pyc beside their .py, only with --legacy; a sourceless one
 *     (no .py beside it: it is importable) only with --sourceless too;
 *   - __pycache__ directories left empty;
 *   - stray temporary files of prepyc (".prepyc-PID-N.tmp" of a killed run,
 *     tempfile.h) in __pycache__ directories, and with --legacy in the
 *     directories of the sources.
 * Which pycs: by default orphans (no source) and the targets' own pycs that
 * are stale, of another magic, or corrupt; --other-versions adds pycs of
 * cache tags that are none of the targets'; --all takes every pyc.
 */
#define _POSIX_C_SOURCE 200809L
#include "cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "driver.h"
#include "options.h"
#include "pyc.h"
#include "target.h"
#include "tempfile.h"
#include "util.h"
#include "verify.h"
#include "walk.h"
#include "banned.h"

struct clean_opts {
	int all, other_versions, legacy, sourceless, dry_run, quiet, verbose;
};

static int exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* Is this __pycache__ pyc one of a target's, stale or invalid for its source? */
static int stale_for_targets(const struct source *pyc, const struct target *targets, size_t nt,
			     const char *tag, const char *src)
{
	struct source s;
	struct stat st;
	size_t k;
	int opt;

	if (stat(src, &st) < 0)
		return 0;
	memset(&s, 0, sizeof(s));
	s.path = (char *)src;
	s.size = (uint64_t)st.st_size;
	s.mtime_sec = (int64_t)st.st_mtim.tv_sec;
	s.mtime_nsec = st.st_mtim.tv_nsec;
	for (k = 0; k < nt; k++) {
		if (strcmp(targets[k].cache_tag, tag))
			continue;
		for (opt = 0; opt <= 2; opt++) {
			char *want = pyc_cache_path(&targets[k].layout, src, opt);
			int same = !strcmp(want, pyc->path);
			char detail[200];
			enum pyc_status stt;

			free(want);
			if (!same)
				continue;
			stt = verify_pyc(&targets[k], pyc->path, &s, -1, detail, sizeof(detail));
			return stt != PYC_OK && stt != PYC_MISSING && stt != PYC_UNREADABLE;
		}
	}
	return 0;
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
	if (t->o->dry_run && t->o->quiet < 2)
		printf("would remove %s\n", path);
	else if (t->o->verbose && t->o->quiet < 2)
		printf("removed %s\n", path);
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

static const char *const clean_usage[] = {
	"usage: prepyc clean [OPTIONS] PATH...",
	"",
	"Remove orphan pycs (no source) and the targets' stale or invalid pycs under",
	"each PATH, and the __pycache__ directories left empty.  Only *.pyc files in",
	"__pycache__ directories are ever removed (legacy ones with --legacy), and",
	"the .prepyc-PID-N.tmp files a killed prepyc left there; no symlink is",
	"followed out of the trees.",
	NULL,
};

int cmd_clean(int argc, const char **argv)
{
	struct driver_opts d = DRIVER_OPTS_INIT;
	struct clean_opts o;
	struct target *targets = NULL;
	struct source_list list = SOURCE_LIST_INIT;
	size_t k, nt = 0, removed = 0, dirs = 0;
	unsigned long long bytes = 0;
	int npaths, rc = 0, i, failed = 0;
	struct temps temps = { NULL, 0, 0 };
	char extra[64] = "";
	const struct option opts[] = {
		OPT_LIST(0, "python", &d.pythons, "PATH", "target interpreter (repeatable)"),
		OPT_FLAG(0, "all", &o.all, "remove every pyc and __pycache__ under the paths"),
		OPT_FLAG(0, "other-versions", &o.other_versions, "also remove pycs of other cache tags than the targets'"),
		OPT_FLAG(0, "legacy", &o.legacy, "also consider legacy SOURCE.pyc files beside their source"),
		OPT_FLAG(0, "sourceless", &o.sourceless, "with --legacy: also legacy pycs with no source"),
		OPT_FLAG('n', "dry-run", &o.dry_run, "list what would be removed, remove nothing"),
		OPT_FLAG('v', "verbose", &o.verbose, "list every file removed"),
		OPT_COUNT('q', "quiet", &o.quiet, "no summary; -qq: nothing"),
		OPT_END(),
	};

	memset(&o, 0, sizeof(o));
	npaths = parse_options(argc - 1, argv + 1, opts);
	if (npaths == -2) {
		usage_with_options(stdout, clean_usage, opts);
		printf("\nexit status: 0 done; 1 something could not be removed; 2 usage error.\n");
		goto out;
	}
	if (npaths <= 0) {
		if (npaths == 0)
			error("no PATH given");
		fprintf(stderr, "%s\nTry 'prepyc clean --help' for the options.\n", clean_usage[0]);
		rc = 2;
		goto out;
	}
	/* the targets decide staleness; --all needs none */
	if (!o.all) {
		if (!d.pythons.nr) {
			ALLOC_GROW(d.pythons.v, 1, d.pythons.alloc);
			d.pythons.v[d.pythons.nr++] = target_default_python();
		}
		nt = d.pythons.nr;
		targets = xcalloc(nt, sizeof(*targets));
		for (k = 0; k < nt; k++)
			if (target_probe(&targets[k], d.pythons.v[k]) < 0)
				rc = 2;
		if (rc)
			goto out;
	}
	for (i = 0; i < npaths; i++)
		if (walk_path(argv[1 + i], WALK_MAX_DEPTH, WALK_PYCACHE, &list))
			failed = 1;

	for (k = 0; k < list.nr; k++) {
		const struct source *s = &list.v[k];
		char *tag = NULL, *src = NULL;
		int go = 0;

		if (s->kind == ENTRY_CACHED) {
			if (S_ISDIR(s->mode))
				continue;
			if (o.all) {
				go = 1;
			} else if (pycache_name_parts(s->path, &tag, &src) == 0) {
				size_t t;
				int ours = 0;

				for (t = 0; t < nt; t++)
					ours |= !strcmp(targets[t].cache_tag, tag);
				if (!exists(src))
					go = 1; /* orphan */
				else if (!ours)
					go = o.other_versions;
				else
					go = stale_for_targets(s, targets, nt, tag, src);
			}
		} else if (s->kind == ENTRY_LEGACY && o.legacy) {
			char *py = xstrndup(s->path, strlen(s->path) - 1);

			/* a sourceless pyc is importable: only on request */
			go = exists(py) ? 1 : o.sourceless;
			if (go && !o.all && exists(py) && nt) {
				/* beside its source: only when stale for a target (legacy layout) */
				struct stat st;
				struct source sp;
				char detail[200];

				go = 0;
				if (stat(py, &st) == 0) {
					size_t t;

					memset(&sp, 0, sizeof(sp));
					sp.path = py;
					sp.size = (uint64_t)st.st_size;
					sp.mtime_sec = (int64_t)st.st_mtim.tv_sec;
					sp.mtime_nsec = st.st_mtim.tv_nsec;
					int mine = 0;

					/* judged by the targets it belongs to (its magic); another's is kept */
					for (t = 0; t < nt && !go; t++) {
						enum pyc_status stt = verify_pyc(&targets[t], s->path, &sp, -1,
										 detail, sizeof(detail));
						mine |= stt != PYC_WRONG_MAGIC;
						go = stt != PYC_OK && stt != PYC_UNREADABLE &&
						     stt != PYC_WRONG_MAGIC;
					}
					if (!mine)
						go = o.other_versions;
				}
			}
			free(py);
		}
		free(tag);
		free(src);
		if (!go)
			continue;
		if (o.dry_run) {
			if (o.quiet < 2)
				printf("would remove %s\n", s->path);
		} else if (unlink(s->path) < 0) {
			if (errno != ENOENT) {
				error_errno("cannot remove '%s'", s->path);
				failed = 1;
			}
			continue;
		} else if (o.verbose && o.quiet < 2) {
			printf("removed %s\n", s->path);
		}
		removed++;
		bytes += s->size;
	}

	temps.o = &o;
	clean_temps(&list, &temps);
	failed |= temps.failed;

	/* __pycache__ directories left empty (rmdir refuses the others) */
	for (k = 0; k < list.nr && !o.dry_run; k++) {
		const struct source *s = &list.v[k];

		if (s->kind != ENTRY_PYCACHE)
			continue;
		if (rmdir(s->path) == 0) {
			dirs++;
			if (o.verbose && o.quiet < 2)
				printf("removed %s/\n", s->path);
		}
	}
	if (temps.removed)
		snprintf(extra, sizeof(extra), ", %zu stray temporary file%s", temps.removed,
			 temps.removed == 1 ? "" : "s");
	if (!o.quiet && o.dry_run)
		printf("%s: clean: would remove %zu pyc%s (%.1f MB)%s\n", progname, removed,
		       removed == 1 ? "" : "s", (double)bytes / 1e6, extra);
	else if (!o.quiet)
		printf("%s: clean: removed %zu pyc%s (%.1f MB)%s and %zu empty __pycache__ "
		       "director%s\n", progname, removed, removed == 1 ? "" : "s",
		       (double)bytes / 1e6, extra, dirs, dirs == 1 ? "y" : "ies");
	rc = failed ? 1 : 0;
out:
	source_list_release(&list);
	for (k = 0; k < nt; k++)
		target_release(&targets[k]);
	free(targets);
	option_list_release(&d.pythons);
	return rc;
}
