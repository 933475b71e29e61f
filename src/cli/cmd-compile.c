/*
 * cmd-compile.c - `prepyc compile`: compileall's options, prepyc's output.
 *
 * Everything happens in driver.c and engine.c; this file is the command
 * line: the options of compileall (long names added; declared once for
 * compile and compileall in cli-options.c), and the concise report (errors
 * on stderr as they come, one summary line on stdout).
 */
#define _POSIX_C_SOURCE 200809L
#include "cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-options.h"
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
	"",
	"For a bundle (a Lambda or Cloud Functions zip, a wheel, an image layer), use",
	"--bundle: archives change the sources' mtimes, hash-based pycs do not mind;",
	"and -d DIR (or -s BUILD -p DIR) to name the path the code runs from",
	"(-d /var/task) in tracebacks.  Then 'prepyc check BUNDLE' on the artifact.",
	NULL,
};

static const char compile_epilog[] =
	"\nexit status: 0 every file compiled or up to date; 1 some file could not be\n"
	"compiled, read or written, or a PATH is missing (the others were compiled);\n"
	"2 usage error or unusable target interpreter (nothing written);\n"
	"130/143 interrupted by SIGINT/SIGTERM.\n";

/* -o and --invalidation-mode values, checked once parsed. */
static int finish_options(struct compile_args *a)
{
	struct driver_opts *d = &a->d;
	const char *bad;

	switch (cli_parse_levels(&a->levels, d->e.levels, &d->e.nlevels, &bad)) {
	case -1:
		return error("option '-o' expects -1, 0, 1 or 2, not '%s'", bad);
	case -2:
		return error("too many -o options");
	}
	d->given_o = a->levels.nr > 0;
	if (a->bundle)
		d->e.invalidation = INVAL_CHECKED_HASH; /* --invalidation-mode wins */
	if (a->inval) {
		d->e.invalidation = parse_invalidation(a->inval);
		if (d->e.invalidation < 0)
			return error("option '--invalidation-mode' expects timestamp, checked-hash "
				     "or unchecked-hash, not '%s'", a->inval);
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
	d->e.canonical = !a->no_canonical;
	if (d->e.limit_sl_dest && !*d->e.limit_sl_dest)
		d->e.limit_sl_dest = NULL;
	return 0;
}

int cmd_compile(int argc, const char **argv)
{
	struct compile_args a = COMPILE_ARGS_INIT;
	struct option opts[COMPILEALL_NOPTIONS + 1];
	int npaths, rc;

	compile_options(opts, &a);
	a.d.e.style = STYLE_CONCISE;
	npaths = parse_options(argc - 1, argv + 1, opts);
	if (npaths == -2) {
		usage_with_options(stdout, compile_usage, opts);
		fputs(compile_epilog, stdout);
		rc = 0;
		goto out;
	}
	if (npaths < 0 || (npaths == 0 && !a.d.flist && !a.d.sys_path &&
			   (error("no PATH given"), 1)) ||
	    finish_options(&a) < 0) {
		fprintf(stderr, "%s\nTry 'prepyc compile --help' for the options.\n", compile_usage[0]);
		rc = 2;
		goto out;
	}
	rc = driver_run(&a.d, npaths, argv + 1);
out:
	option_list_release(&a.levels);
	option_list_release(&a.d.pythons);
	option_list_release(&a.d.remote_caches);
	return rc;
}
