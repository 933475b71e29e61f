/*
 * cmd-clean.c - `prepyc clean PATH...`: remove stale and orphaned bytecode.
 *
 * The command line, the targets and the walk; what goes, and the removal,
 * are clean.h's (which says what may ever be removed).
 */
#define _POSIX_C_SOURCE 200809L
#include "cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clean.h"
#include "cli-options.h"
#include "driver.h"
#include "options.h"
#include "target.h"
#include "util.h"
#include "walk.h"
#include "banned.h"

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

static void print_summary(const struct clean_opts *o, const struct clean_stats *st)
{
	char extra[64] = "";

	if (st->temps)
		snprintf(extra, sizeof(extra), ", %zu stray temporary file%s", st->temps,
			 st->temps == 1 ? "" : "s");
	if (o->dry_run)
		printf("%s: clean: would remove %zu pyc%s (%.1f MB)%s\n", progname, st->removed,
		       st->removed == 1 ? "" : "s", (double)st->bytes / 1e6, extra);
	else
		printf("%s: clean: removed %zu pyc%s (%.1f MB)%s and %zu empty __pycache__ "
		       "director%s\n", progname, st->removed, st->removed == 1 ? "" : "s",
		       (double)st->bytes / 1e6, extra, st->dirs, st->dirs == 1 ? "y" : "ies");
}

/* Probe the targets (none with --all: nothing is judged), walk, clean; the exit status. */
static int run(const struct clean_opts *o, struct option_list *pythons, int npaths,
	       const char **paths)
{
	struct target *targets = NULL;
	struct source_list list = SOURCE_LIST_INIT;
	struct clean_stats st;
	size_t k, nt = 0;
	int rc = 0, i, failed = 0;

	if (!o->all) {
		driver_default_target(pythons);
		nt = pythons->nr;
		targets = xcalloc(nt, sizeof(*targets));
		for (k = 0; k < nt; k++)
			if (target_probe(&targets[k], pythons->v[k]) < 0)
				rc = 2;
		if (rc)
			goto out;
	}
	for (i = 0; i < npaths; i++)
		if (walk_path(paths[i], WALK_MAX_DEPTH, WALK_PYCACHE, &list))
			failed = 1;
	failed |= clean_tree(o, targets, nt, &list, &st);
	if (!o->quiet && !o->null)
		print_summary(o, &st);
	rc = failed ? 1 : 0;
out:
	source_list_release(&list);
	for (k = 0; k < nt; k++)
		target_release(&targets[k]);
	free(targets);
	return rc;
}

int cmd_clean(int argc, const char **argv)
{
	struct option_list pythons = { NULL, 0, 0 };
	struct clean_opts o;
	int npaths, rc = 2;
	const struct option opts[] = {
		OPT_PYTHON(&pythons, "target interpreter (repeatable)"),
		OPT_FLAG(0, "all", &o.all, "remove every pyc and __pycache__ under the paths"),
		OPT_FLAG(0, "other-versions", &o.other_versions, "also remove pycs of other cache tags than the targets'"),
		OPT_FLAG(0, "legacy", &o.legacy, "also consider legacy SOURCE.pyc files beside their source"),
		OPT_FLAG(0, "sourceless", &o.sourceless, "with --legacy: also legacy pycs with no source"),
		OPT_FLAG('n', "dry-run", &o.dry_run, "list what would be removed, remove nothing"),
		OPT_FLAG('v', "verbose", &o.verbose, "list every file removed"),
		OPT_FLAG('z', "null", &o.null, "list only the paths removed (with -n: to remove), NUL-terminated"),
		OPT_QUIET(&o.quiet, "no summary; -qq: nothing"),
		OPT_END(),
	};

	memset(&o, 0, sizeof(o));
	npaths = parse_options(argc - 1, argv + 1, opts);
	if (npaths == -2) {
		usage_with_options(stdout, clean_usage, opts);
		printf("\nexit status: 0 done; 1 something could not be removed; 2 usage error.\n");
		rc = 0;
	} else if (npaths <= 0) {
		if (npaths == 0)
			error("no PATH given");
		fprintf(stderr, "%s\nTry 'prepyc clean --help' for the options.\n", clean_usage[0]);
	} else {
		rc = run(&o, &pythons, npaths, argv + 1);
	}
	option_list_release(&pythons);
	return rc;
}
