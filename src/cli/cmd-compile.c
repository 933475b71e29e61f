/*
 * cmd-compile.c - `prepyc compile`: compileall's options, prepyc's output.
 *
 * Everything happens in driver.c and engine.c; this file is the command
 * line: the options of compileall (long names added), and the concise
 * report (errors on stderr as they come, one summary line on stdout).
 */
#define _POSIX_C_SOURCE 200809L
#include "cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "options.h"
#include "util.h"
#include "banned.h"

static const char *const compile_usage[] = {
	"usage: prepyc compile [OPTIONS] PATH...",
	"",
	"Compile every .py file under each PATH (directories are walked as",
	"compileall does) into the bytecode cache of the target interpreter,",
	"with that interpreter's own compiler.  Fresh pycs are left alone.",
	NULL,
};

static const char compile_epilog[] =
	"\nexit status: 0 every file compiled or up to date; 1 some file could not be\n"
	"compiled, read or written, or a PATH is missing (the others were compiled);\n"
	"2 usage error or unusable target interpreter (nothing written);\n"
	"130/143 interrupted by SIGINT/SIGTERM.\n";

/* -o and --invalidation-mode values, checked once parsed. */
static int finish_options(struct driver_opts *d, const struct option_list *levels,
			  const char *inval)
{
	size_t i;

	for (i = 0; i < levels->nr; i++) {
		char *end;
		long v = strtol(levels->v[i], &end, 10);

		if (!*levels->v[i] || *end || v < -1 || v > 2)
			return error("option '-o' expects -1, 0, 1 or 2, not '%s'", levels->v[i]);
		if (d->e.nlevels >= ENGINE_MAX_LEVELS)
			return error("too many -o options");
		d->e.levels[d->e.nlevels++] = (int)v;
	}
	d->given_o = levels->nr > 0;
	if (inval) {
		d->e.invalidation = parse_invalidation(inval);
		if (d->e.invalidation < 0)
			return error("option '--invalidation-mode' expects timestamp, checked-hash "
				     "or unchecked-hash, not '%s'", inval);
		d->given_inval = 1;
	}
	d->given_s = d->e.stripdir != NULL;
	d->given_p = d->e.prependdir != NULL;
	d->given_e = d->e.limit_sl_dest != NULL;
	d->given_hardlink = d->e.hardlink_dupes;
	if (d->e.ddir && (d->e.stripdir || d->e.prependdir))
		return error("-d cannot be used in combination with -s or -p");
	if (d->e.hardlink_dupes && d->e.nlevels < 2)
		return error("--hardlink-dupes needs at least two -o levels");
	if (d->e.timeout < 0)
		return error("option '--timeout' expects a number of seconds >= 0");
	if (d->e.jobs < 0)
		return error("option '-j' expects a number of workers >= 0");
	return 0;
}

int cmd_compile(int argc, const char **argv)
{
	struct driver_opts d = DRIVER_OPTS_INIT;
	struct option_list levels = { NULL, 0, 0 };
	const char *inval = NULL;
	int npaths, rc, no_canonical = 0;
	const struct option opts[] = {
		OPT_LIST(0, "python", &d.pythons, "PATH",
			 "target interpreter (repeatable; default $VIRTUAL_ENV/bin/python, else python3)"),
		OPT_INT('j', "jobs", &d.e.jobs, "N", "worker processes (default, or 0: one per core)"),
		OPT_FLAG('f', "force", &d.e.force, "recompile even fresh pycs"),
		OPT_COUNT('q', "quiet", &d.e.quiet, "print only errors (no summary, no warnings); -qq nothing"),
		OPT_FLAG('l', NULL, &d.no_recurse, "do not recurse into subdirectories"),
		OPT_INT('r', NULL, &d.recursion, "N", "recurse at most N levels (overrides -l)"),
		OPT_FLAG('b', "legacy", &d.e.legacy, "write SOURCE.pyc beside the source (legacy layout)"),
		OPT_STRING('d', NULL, &d.e.ddir, "DIR", "directory to prepend to co_filename"),
		OPT_STRING('s', NULL, &d.e.stripdir, "DIR", "prefix to strip from co_filename (3.9+)"),
		OPT_STRING('p', NULL, &d.e.prependdir, "DIR", "prefix to prepend to co_filename (3.9+)"),
		OPT_STRING('x', NULL, &d.rx, "REGEX", "skip files whose path matches (Python re.search)"),
		OPT_STRING('i', NULL, &d.flist, "FILE", "also compile the paths listed in FILE (- for stdin)"),
		OPT_LIST('o', NULL, &levels, "LEVEL", "optimization level, repeatable (3.9+; -1: the target's own)"),
		OPT_STRING('e', NULL, &d.e.limit_sl_dest, "DIR", "skip symlinks that point outside DIR (3.9+)"),
		OPT_STRING(0, "invalidation-mode", &inval, "MODE", "timestamp, checked-hash or unchecked-hash (3.7+)"),
		OPT_FLAG(0, "hardlink-dupes", &d.e.hardlink_dupes, "hard-link identical pycs of successive -o levels (3.9+)"),
		OPT_STRING(0, "pycache-prefix", &d.pycache_prefix, "DIR", "write pycs under DIR, as sys.pycache_prefix does (3.8+)"),
		OPT_FLAG(0, "no-canonical", &no_canonical, "write the interpreter's own marshal bytes, not the canonical form"),
		OPT_STRING(0, "cache-dir", &d.cache_dir, "DIR", "bytecode cache (default $PREPYC_CACHE_DIR, else $XDG_CACHE_HOME/prepyc, else ~/.cache/prepyc)"),
		OPT_FLAG(0, "no-cache", &d.no_cache, "neither read nor fill the bytecode cache"),
		OPT_INT(0, "timeout", &d.e.timeout, "SECONDS", "kill a compile that takes longer (default 120; 0: no limit)"),
		OPT_STRING(0, "cache-max-size", &d.cache_max_size, "SIZE", "bound of the cache, e.g. 500M, 2G (default 1G)"),
		OPT_END(),
	};

	d.e.style = STYLE_CONCISE;
	npaths = parse_options(argc - 1, argv + 1, opts);
	if (npaths == -2) {
		usage_with_options(stdout, compile_usage, opts);
		fputs(compile_epilog, stdout);
		rc = 0;
		goto out;
	}
	if (npaths < 0 || (npaths == 0 && !d.flist && (error("no PATH given"), 1)) ||
	    finish_options(&d, &levels, inval) < 0) {
		fprintf(stderr, "%s\nTry 'prepyc compile --help' for the options.\n", compile_usage[0]);
		rc = 2;
		goto out;
	}
	d.e.canonical = !no_canonical;
	if (d.e.limit_sl_dest && !*d.e.limit_sl_dest)
		d.e.limit_sl_dest = NULL;
	rc = driver_run(&d, npaths, argv + 1);
out:
	option_list_release(&levels);
	option_list_release(&d.pythons);
	return rc;
}
