/*
 * cmd-check.c - `prepyc check PATH...`: is a tree fully and freshly
 * compiled for its targets?  And `--import MODULE`: does importing compile
 * anything?
 *
 * The command line, the targets and the walk (or a bundle's members,
 * bundle.h); the judging is check.h's, the reports check-report.h's.  No interpreter is started when the
 * targets' facts are cached (factscache.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "check-import.h"
#include "check-report.h"
#include "cachedir.h"
#include "check.h"
#include "cli-options.h"
#include "driver.h"
#include "options.h"
#include "sys-path.h"
#include "target.h"
#include "trustdir.h"
#include "walklog.h"
#include "util.h"
#include "walk.h"
#include "banned.h"

static const char *const check_usage[] = {
	"usage: prepyc check [OPTIONS] PATH...",
	"   or: prepyc check [OPTIONS] [--root PREFIX] BUNDLE",
	"   or: prepyc check [OPTIONS] [PATH...] --import MODULE [--import MODULE...]",
	"",
	"Verify that every .py file under each PATH has a valid, fresh pyc for each",
	"target and optimization level, as the import system will judge it.  One line",
	"per problem: 'SOURCE: status (PYC: detail)'; status is one of missing,",
	"stale-mtime, stale-size, stale-hash, wrong-magic, wrong-mode, corrupt,",
	"unreadable; orphan and sourceless pycs are warnings (failures with --strict).",
	"",
	"A BUNDLE (.zip, .whl, .tar[.gz|.xz|.zst]) is judged as it will arrive once",
	"extracted: a timestamp pyc whose source's mtime the archive will not restore",
	"is stale-on-arrival.",
	"",
	"--import runs the target interpreter, with your environment and working",
	"directory, and IMPORTS the named modules: the application's import-time code",
	"runs.  It reports every source compiled and every bytecode write attempted",
	"during the imports (audit hooks, Python 3.8+; lazy imports are made eager),",
	"and warns about every module loaded from outside the PATHs (without PATH,",
	"the working directory) other than the standard library's.",
	NULL,
};

static const char check_epilog[] =
	"\nexit status: 0 every source has a fresh pyc (and the imports compiled nothing);\n"
	"1 some pyc is missing, stale or invalid, or an import failed or compiled or\n"
	"wrote something (with --strict: or a module came from outside the PATHs);\n"
	"2 usage error, unusable target interpreter, or unreadable or hostile bundle.\n";

struct check_args {
	struct driver_opts d; /* the targets, -x and --pycache-prefix */
	struct check_opts o;
	struct option_list levels, imports;
	const char *inval, *root;
	int json, strict, quiet, verbose, null, sys_path, is_bundle;
	struct bundle bundle; /* check BUNDLE */
	size_t *owner; /* --sys-path: who owns each entry (sys-path.h) */
};

/* -o, --invalidation-mode and a bundle's options, checked once parsed; 0 or -1. */
static int finish_options(struct check_args *a, int npaths, const char **paths)
{
	const char *bad;

	if (cli_parse_levels(&a->levels, a->o.levels, &a->o.nlevels, &bad) < 0)
		return error("option '-o' expects -1, 0, 1 or 2, not '%s'", bad);
	if (a->inval && (a->o.want_mode = parse_invalidation(a->inval)) < 0)
		return error("option '--invalidation-mode' expects timestamp, checked-hash or "
			     "unchecked-hash");
	if (a->json && a->null)
		return error("options '--json' and '-z' cannot be used together");
	a->is_bundle = bundle_args(npaths, paths, a->root, a->imports.nr ? "--import" :
				   a->sys_path ? "--sys-path" :
				   a->d.pycache_prefix ? "--pycache-prefix" : NULL);
	return a->is_bundle < 0 ? -1 : 0;
}

/*
 * Probe the targets while walking the paths (the interpreters start in the
 * time the walk takes), then refuse what a target cannot check.  0, 1 when
 * a PATH could not be walked, 2 when a target is unusable.
 */
static int prepare(struct check_args *a, int npaths, const char **paths, struct target *targets,
		   struct source_list *list)
{
	struct driver_opts *d = &a->d;
	int maxlevels = a->o.recursion >= 0 ? a->o.recursion : a->o.no_recurse ? 0 : WALK_MAX_DEPTH;
	int rc = 0, i;
	size_t k;

	for (k = 0; k < d->pythons.nr; k++)
		if (target_probe_start(&targets[k], d->pythons.v[k], NULL,
				       cache_dir_shared(0) ? TRUST_SHARED : 0) < 0)
			rc = 2;
	if (rc == 0 && !a->is_bundle) {
		/* the walk log, beside the build log and under the same rules (walklog.h) */
		struct walklog *log = d->no_build_log || a->sys_path ? NULL
				      : walklog_open_cache(NULL, paths, (size_t)npaths, WALK_PYCACHE);

		for (i = 0; rc == 0 && i < npaths; i++)
			if (walk_path_log(paths[i], maxlevels, WALK_PYCACHE, list, log))
				rc = 1;
		walklog_close(log, list->started_ns);
	}
	for (k = 0; k < d->pythons.nr; k++) {
		if (!targets[k].python)
			continue;
		if (target_probe_finish(&targets[k]) < 0 || driver_apply_prefix(d, &targets[k]) < 0) {
			rc = 2;
		} else if (a->o.want_mode > 0 && !targets[k].has_hash_pycs) {
			error("option '--invalidation-mode': '%s' (%s) has no hash-based pycs",
			      targets[k].python, targets[k].display);
			rc = 2;
		}
	}
	if (rc == 0 && a->is_bundle && bundle_load(&a->bundle, paths[0], a->root, maxlevels,
						   targets, d->pythons.nr, list) < 0)
		rc = 2;
	if (rc != 2 && a->sys_path)
		a->owner = sys_path_check_walk(targets, d->pythons.nr, maxlevels, list, &rc);
	return rc;
}

/*
 * --import, per target; the import findings printed unless --json (whose
 * document comes last).  With --json or -z the application's stdout goes
 * to our stderr: stdout holds the report alone.  The exit status so far.
 */
static int run_imports(struct check_args *a, int npaths, const char **paths,
		       const struct target *targets, struct import_result *res, int rc)
{
	size_t k, nt = a->d.pythons.nr;

	fflush(stdout);
	for (k = 0; k < nt; k++) {
		/* the checked paths: the PATHs, and with --sys-path the target's directories */
		struct option_list roots = { NULL, 0, 0 };
		size_t i;
		int r;

		for (i = 0; i < (size_t)npaths; i++) {
			ALLOC_GROW(roots.v, roots.nr + 1, roots.alloc);
			roots.v[roots.nr++] = xstrdup(paths[i]);
		}
		if (a->sys_path && sys_path_dirs(&targets[k], &roots) < 0)
			rc = 2;
		r = import_check_run(&res[k], &targets[k], &a->imports, (int)roots.nr, roots.v,
				     a->json || a->null ? 2 : -1);
		for (i = 0; i < roots.nr; i++)
			free((char *)roots.v[i]);
		option_list_release(&roots);
		if (r < 0) {
			rc = 2;
			continue;
		}
		import_check_warn(&res[k], a->strict, a->quiet);
		if (a->null)
			check_report_imports_null(stdout, &res[k]);
		else if (!a->json)
			check_report_imports_text(stdout, &res[k], a->quiet, a->verbose);
		fflush(stdout);
		if (import_check_problems(&res[k], a->strict) && rc == 0)
			rc = 1;
	}
	return rc;
}

/* Run the check and print its report; the exit status. */
static int run(struct check_args *a, int npaths, const char **paths)
{
	size_t k, nt = a->d.pythons.nr;
	struct target *targets = xcalloc(nt, sizeof(*targets));
	unsigned char **skips = xcalloc(nt, sizeof(*skips));
	struct import_result *res = xcalloc(nt, sizeof(*res));
	struct source_list list = SOURCE_LIST_INIT;
	struct check_result c = CHECK_RESULT_INIT;
	int rc = prepare(a, npaths, paths, targets, &list);
	char *log_dir = NULL;

	if (rc == 2 || sys_path_check_skips(&a->d, a->owner, targets, nt, &list, skips) < 0) {
		rc = 2;
		goto out;
	}
	a->o.bundle = a->is_bundle ? &a->bundle : NULL;
	if (!a->d.no_build_log && !a->sys_path && !a->is_bundle)
		a->o.log_dir = log_dir = cache_dir_resolve(NULL);
	a->o.log_paths = paths;
	a->o.log_npaths = (size_t)npaths;
	check_tree(&c, &a->o, targets, nt, &list, skips);
	if (check_problems(&c, a->strict) && rc == 0)
		rc = 1;
	if (a->null && a->quiet < 2)
		check_report_null(stdout, &c, a->strict);
	else if (!a->json)
		check_report_text(stdout, &c, targets, nt, a->quiet, npaths > 0 || a->sys_path);
	if (a->imports.nr)
		rc = run_imports(a, npaths, paths, targets, res, rc);
	/* last, so that "ok" is the exit status */
	if (a->json)
		check_report_json(stdout, &c, targets, nt, res, a->imports.nr ? nt : 0, rc == 0);
out:
	fflush(stdout);
	check_release(&c);
	source_list_release(&list);
	bundle_release(&a->bundle);
	for (k = 0; k < nt; k++) {
		import_check_release(&res[k]);
		free(skips[k]);
		target_release(&targets[k]);
	}
	free(a->owner);
	free(log_dir);
	free(res);
	free(skips);
	free(targets);
	return rc;
}

int cmd_check(int argc, const char **argv)
{
	struct check_args a = { .d = DRIVER_OPTS_INIT, .o = CHECK_OPTS_INIT, .bundle = BUNDLE_INIT };
	int npaths, rc = 2;
	const struct option opts[] = {
		OPT_PYTHON(&a.d.pythons, "target interpreter (repeatable)"),
		OPT_NO_RECURSE(&a.o.no_recurse, "do not recurse into subdirectories"),
		OPT_RECURSION(&a.o.recursion, "recurse at most N levels"),
		OPT_STRING('x', "exclude", &a.d.rx, "REGEX", "skip sources whose path matches (Python re.search)"),
		OPT_LEVELS(&a.levels, "optimization level to check, repeatable"),
		OPT_INVALIDATION(&a.inval, "require this mode (else any valid one)"),
		OPT_FLAG('b', "legacy", &a.o.legacy, "check legacy SOURCE.pyc files"),
		OPT_PYCACHE_PREFIX(&a.d.pycache_prefix, "pycs live under DIR (3.8+)"),
		OPT_FLAG(0, "json", &a.json, "write a JSON report on stdout"),
		OPT_FLAG(0, "sys-path", &a.sys_path, "also every directory of the target's sys.path"),
		OPT_FLAG(0, "strict", &a.strict, "orphan and sourceless pycs fail the check"),
		OPT_STRING(0, "root", &a.root, "PREFIX", "in a bundle, the code is under PREFIX/ (a Lambda layer: python)"),
		OPT_LIST(0, "import", &a.imports, "MODULE", "import MODULE and report compiles (runs its code!)"),
		OPT_FLAG('z', "null", &a.null, "list only the paths of the sources with a problem, NUL-terminated"),
		OPT_FLAG('v', "verbose", &a.verbose, "with --import: list every module loaded and its file"),
		OPT_FLAG(0, "no-build-log", &a.d.no_build_log, "read every pyc; neither use nor write the build log"),
		OPT_QUIET(&a.quiet, "no summary; -qq: nothing"),
		OPT_END(),
	};

	npaths = parse_options(argc - 1, argv + 1, opts);
	if (npaths == -2) {
		usage_with_options(stdout, check_usage, opts);
		fputs(check_epilog, stdout);
		rc = 0;
	} else if (npaths < 0 || (npaths == 0 && !a.imports.nr && !a.sys_path &&
				  (error("no PATH given"), 1))) {
		fprintf(stderr, "%s\nTry 'prepyc check --help' for the options.\n", check_usage[0]);
	} else if (finish_options(&a, npaths, argv + 1) == 0) {
		driver_default_target(&a.d.pythons);
		rc = run(&a, npaths, argv + 1);
	}
	option_list_release(&a.levels);
	option_list_release(&a.imports);
	option_list_release(&a.d.pythons);
	return rc;
}
