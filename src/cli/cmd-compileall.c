/*
 * cmd-compileall.c - `prepyc compileall ARGS...`: python -m compileall ARGS,
 * with the same options, output lines and exit status, on all cores.
 *
 * The arguments are parsed the way compileall's argparse parser does for
 * the forms people write (compileall-args.h).  Anything that parser is
 * unsure of, and -h, is handed to the target's own compileall,
 * which then prints exactly its own usage or error: a faithful answer is
 * worth more than a fast one there.  An option the target's compileall
 * does not have is refused with a message naming it and the version.
 */
#define _POSIX_C_SOURCE 200809L
#include "cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "child.h"
#include "cli-options.h"
#include "compileall-args.h"
#include "driver.h"
#include "util.h"
#include "banned.h"

/* Let the target's own compileall answer (usage, errors, --help). */
static int run_real_compileall(const char *python, int argc, const char **argv)
{
	const char **args = xcalloc((size_t)argc + 4, sizeof(*args));
	struct child c = CHILD_INIT;
	int i, n = 0, status;

	args[n++] = python;
	args[n++] = "-m";
	args[n++] = "compileall";
	for (i = 0; i < argc; i++) {
		const struct compileall_option *o = compileall_own_option(argv[i]);

		if (o) {
			i += compileall_option_takes_value(o) && !strchr(argv[i], '=') && i + 1 < argc;
			continue;
		}
		args[n++] = argv[i];
	}
	args[n] = NULL;
	c.argv = args;
	c.in_fd = 0;
	c.search_path = !strchr(python, '/');
	fflush(stdout);
	if (child_start(&c) < 0) {
		error_errno("cannot run '%s'", python);
		free(args);
		return 2;
	}
	child_wait(&c, &status);
	free(args);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* After the target's own --help: the options prepyc compileall adds to it. */
static void print_own_options(void)
{
	size_t i;

	printf("\nprepyc compileall also takes these options of its own (never passed to "
	       "compileall):\n");
	for (i = 0; i < COMPILEALL_NOPTIONS; i++) {
		const struct compileall_option *o = &compileall_options[i];
		char *name;

		if (!o->ours || !o->argparse_name)
			continue;
		name = xstrfmt("--%s%s%s", o->argparse_name, o->argh ? " " : "",
			       o->argh ? o->argh : "");
		printf("  %-24s %s\n", name, o->help);
		free(name);
	}
}

static int asks_for_help(int argc, const char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return 1;
	return 0;
}

int cmd_compileall(int argc, const char **argv)
{
	struct driver_opts d = DRIVER_OPTS_INIT;
	const char **copy = xcalloc((size_t)argc + 1, sizeof(*copy));
	int npaths, rc;

	memcpy(copy, argv + 1, sizeof(*copy) * (size_t)(argc - 1));
	d.e.style = STYLE_COMPILEALL;
	npaths = compileall_parse(&d, argc - 1, copy);
	if (npaths == COMPILEALL_USAGE_ERROR) {
		rc = 2;
		goto out;
	}
	if (npaths == COMPILEALL_FALLBACK) {
		driver_default_target(&d.pythons);
		rc = run_real_compileall(d.pythons.v[0], argc - 1, argv + 1);
		if (rc == 0 && asks_for_help(argc, argv))
			print_own_options();
		goto out;
	}
	d.compile_path = npaths == 0 && !d.flist;
	rc = driver_run(&d, npaths, copy);
out:
	option_list_release(&d.pythons);
	option_list_release(&d.remote_caches);
	free(copy);
	return rc;
}
