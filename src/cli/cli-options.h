/*
 * cli-options.h - the options the commands share, declared once.
 *
 * 1. compileall's options.  `prepyc compile` and `prepyc compileall` take
 *    the same options with two parsers: compile's is options.h's, with long
 *    names of prepyc's own (--jobs, --force...); compileall's parses as
 *    argparse does and hands doubtful input to the target's own compileall
 *    (cmd-compileall.c).  compileall_options[] declares each option once:
 *    its short name, its long name in each command, whether it takes a
 *    value, whether it is prepyc's own (not passed on to the real
 *    compileall), and where compile stores it; both parsers read it:
 *
 *      struct compile_args a = COMPILE_ARGS_INIT;
 *      struct option opts[COMPILEALL_NOPTIONS + 1];
 *      compile_options(opts, &a);
 *      npaths = parse_options(argc - 1, argv + 1, opts);
 *
 * 2. The options of compile, check and clean with the same name and value
 *    (OPT_PYTHON() ...): the help text stays each command's own, as each
 *    says what the option means for it.
 *
 * 3. cli_parse_levels(): the values of -o, for compile and check.
 */
#ifndef CLI_OPTIONS_H
#define CLI_OPTIONS_H

#include <stddef.h>

#include "driver.h"
#include "options.h"

#define OPT_PYTHON(list, help)         OPT_LIST(0, "python", (list), "PATH", (help))
#define OPT_NO_RECURSE(flag, help)     OPT_FLAG('l', NULL, (flag), (help))
#define OPT_RECURSION(n, help)         OPT_INT('r', NULL, (n), "N", (help))
#define OPT_LEVELS(list, help)         OPT_LIST('o', NULL, (list), "LEVEL", (help))
#define OPT_INVALIDATION(str, help)    OPT_STRING(0, "invalidation-mode", (str), "MODE", (help))
#define OPT_PYCACHE_PREFIX(str, help)  OPT_STRING(0, "pycache-prefix", (str), "DIR", (help))
#define OPT_QUIET(count, help)         OPT_COUNT('q', "quiet", (count), (help))

/* What compile's command line fills: the driver's options, and values checked once parsed. */
struct compile_args {
	struct driver_opts d;
	struct option_list levels; /* -o, as given */
	const char *inval;         /* --invalidation-mode, as given */
	int no_canonical;          /* --no-canonical */
	int bundle;                /* --bundle: checked-hash unless --invalidation-mode */
};

#define COMPILE_ARGS_INIT { .d = DRIVER_OPTS_INIT }

enum compileall_option_id {
	CO_PYTHON, CO_JOBS, CO_FORCE, CO_QUIET, CO_NO_RECURSE, CO_RECURSION, CO_LEGACY,
	CO_DDIR, CO_STRIPDIR, CO_PREPENDDIR, CO_EXCLUDE, CO_FILE_LIST, CO_LEVEL, CO_LIMIT_SL_DEST,
	CO_INVALIDATION, CO_HARDLINK_DUPES, CO_PYCACHE_PREFIX, CO_NO_CANONICAL, CO_CACHE_DIR,
	CO_NO_CACHE, CO_TIMEOUT, CO_CACHE_MAX_SIZE, CO_SYS_PATH, CO_CACHE_SHARED, CO_BUNDLE,
	CO_NO_BUILD_LOG,
	CO_REMOTE_CACHE, CO_REMOTE_CACHE_READ_ONLY, CO_REMOTE_CACHE_ONLY, CO_REMOTE_CACHE_TIMEOUT,
	CO_REMOTE_CACHE_CONNECT_TIMEOUT,
	COMPILEALL_NOPTIONS
};

struct compileall_option {
	enum compileall_option_id id;
	char short_name;
	const char *long_name;       /* prepyc compile's, or NULL */
	const char *argparse_name;   /* compileall's (and prepyc compileall's), or NULL */
	int ours;                    /* prepyc's own: the real compileall has no such option */
	enum option_type type;       /* for compile; OPTION_FLAG and OPTION_COUNT take no value */
	size_t offset;               /* where compile stores it in struct compile_args */
	const char *argh, *help;     /* compile's --help */
};

/* In compile's --help order.  An option with neither short nor argparse name is compile's only. */
extern const struct compileall_option compileall_options[COMPILEALL_NOPTIONS];

/* Does this option take a value? */
int compileall_option_takes_value(const struct compileall_option *o);

/* Fill opts[0..COMPILEALL_NOPTIONS] (OPT_END last) with compile's options storing into `a`. */
void compile_options(struct option *opts, struct compile_args *a);

/*
 * The -o values into levels[*nlevels...] (at most ENGINE_MAX_LEVELS in all).
 * 0; -1 for a value that is not -1, 0, 1 or 2; -2 when there are too many;
 * *bad is then the value refused.  Prints nothing.
 */
int cli_parse_levels(const struct option_list *values, int *levels, int *nlevels,
		     const char **bad);

#endif
