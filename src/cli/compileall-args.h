/*
 * compileall-args.h - `prepyc compileall`'s command line, parsed the way
 * compileall's argparse parser does for the forms people write (short
 * options, bundled flags, attached values, --long=value, unambiguous
 * prefixes of long options, "--"), with the options of compileall_options[]
 * (cli-options.h) that compileall has, plus prepyc's own.
 *
 * compileall_parse() fills `d` and moves the positional arguments to
 * argv[0..n), returning n; or COMPILEALL_FALLBACK when argparse (or
 * compileall's main()) would have something to say: the caller then lets
 * the target's own compileall answer; or COMPILEALL_USAGE_ERROR after
 * printing an error about one of prepyc's own options (exit status 2).
 */
#ifndef COMPILEALL_ARGS_H
#define COMPILEALL_ARGS_H

#include "cli-options.h"
#include "driver.h"

enum { COMPILEALL_FALLBACK = -3, COMPILEALL_USAGE_ERROR = -4 };

int compileall_parse(struct driver_opts *d, int argc, const char **argv);

/*
 * One of prepyc's own options, spelled in full ("--name" or "--name=value"),
 * that the real compileall must not see; or NULL.
 */
const struct compileall_option *compileall_own_option(const char *arg);

#endif
