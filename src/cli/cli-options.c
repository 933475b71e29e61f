/*
 * cli-options.c - the options the commands share (see cli-options.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "cli-options.h"

#include <stdlib.h>

#include "util.h"
#include "banned.h"

#define AT(field) offsetof(struct compile_args, field)

const struct compileall_option compileall_options[COMPILEALL_NOPTIONS] = {
	{ CO_PYTHON, 0, "python", "python", 1, OPTION_LIST, AT(d.pythons), "PATH",
	  "target interpreter (repeatable; default $PREPYC_PYTHON, else $VIRTUAL_ENV/bin/python, else python3)" },
	{ CO_JOBS, 'j', "jobs", "workers", 0, OPTION_INT, AT(d.e.jobs), "N",
	  "worker processes (default, or 0: one per core)" },
	{ CO_FORCE, 'f', "force", NULL, 0, OPTION_FLAG, AT(d.e.force), NULL,
	  "recompile even fresh pycs" },
	{ CO_QUIET, 'q', "quiet", NULL, 0, OPTION_COUNT, AT(d.e.quiet), NULL,
	  "print only errors (no summary, no warnings); -qq nothing" },
	{ CO_NO_RECURSE, 'l', NULL, NULL, 0, OPTION_FLAG, AT(d.no_recurse), NULL,
	  "do not recurse into subdirectories" },
	{ CO_RECURSION, 'r', NULL, NULL, 0, OPTION_INT, AT(d.recursion), "N",
	  "recurse at most N levels (overrides -l)" },
	{ CO_LEGACY, 'b', "legacy", NULL, 0, OPTION_FLAG, AT(d.e.legacy), NULL,
	  "write SOURCE.pyc beside the source (legacy layout)" },
	{ CO_DDIR, 'd', NULL, NULL, 0, OPTION_STRING, AT(d.e.ddir), "DIR",
	  "directory to prepend to co_filename" },
	{ CO_STRIPDIR, 's', NULL, NULL, 0, OPTION_STRING, AT(d.e.stripdir), "DIR",
	  "prefix to strip from co_filename (3.9+)" },
	{ CO_PREPENDDIR, 'p', NULL, NULL, 0, OPTION_STRING, AT(d.e.prependdir), "DIR",
	  "prefix to prepend to co_filename (3.9+)" },
	{ CO_EXCLUDE, 'x', "exclude", NULL, 0, OPTION_STRING, AT(d.rx), "REGEX",
	  "skip files whose path matches (Python re.search)" },
	{ CO_FILE_LIST, 'i', NULL, NULL, 0, OPTION_STRING, AT(d.flist), "FILE",
	  "also compile the paths listed in FILE (- for stdin)" },
	{ CO_LEVEL, 'o', NULL, NULL, 0, OPTION_LIST, AT(levels), "LEVEL",
	  "optimization level, repeatable (3.9+; -1: the target's own)" },
	{ CO_LIMIT_SL_DEST, 'e', NULL, NULL, 0, OPTION_STRING, AT(d.e.limit_sl_dest), "DIR",
	  "skip symlinks that point outside DIR (3.9+)" },
	{ CO_INVALIDATION, 0, "invalidation-mode", "invalidation-mode", 0, OPTION_STRING, AT(inval),
	  "MODE", "timestamp, checked-hash or unchecked-hash (3.7+)" },
	{ CO_HARDLINK_DUPES, 0, "hardlink-dupes", "hardlink-dupes", 0, OPTION_FLAG,
	  AT(d.e.hardlink_dupes), NULL, "hard-link identical pycs of successive -o levels (3.9+)" },
	{ CO_PYCACHE_PREFIX, 0, "pycache-prefix", NULL, 0, OPTION_STRING, AT(d.pycache_prefix), "DIR",
	  "write pycs under DIR, as sys.pycache_prefix does (3.8+)" },
	{ CO_NO_CANONICAL, 0, "no-canonical", "no-canonical", 1, OPTION_FLAG, AT(no_canonical), NULL,
	  "write the interpreter's own marshal bytes, not the canonical form" },
	{ CO_CACHE_DIR, 0, "cache-dir", "cache-dir", 1, OPTION_STRING, AT(d.cache_dir), "DIR",
	  "bytecode cache (default $PREPYC_CACHE_DIR, else $XDG_CACHE_HOME/prepyc, else ~/.cache/prepyc)" },
	{ CO_NO_CACHE, 0, "no-cache", "no-cache", 1, OPTION_FLAG, AT(d.no_cache), NULL,
	  "neither read nor fill the bytecode cache" },
	{ CO_TIMEOUT, 0, "timeout", "timeout", 1, OPTION_INT, AT(d.e.timeout), "SECONDS",
	  "kill a compile that takes longer (default 120; 0: no limit)" },
	{ CO_CACHE_MAX_SIZE, 0, "cache-max-size", "cache-max-size", 1, OPTION_STRING,
	  AT(d.cache_max_size), "SIZE", "bound of the cache, e.g. 500M, 2G (default 1G)" },
	{ CO_SYS_PATH, 0, "sys-path", NULL, 1, OPTION_FLAG, AT(d.sys_path), NULL,
	  "also every directory of the target's sys.path, recursively" },
	{ CO_CACHE_SHARED, 0, "cache-shared", "cache-shared", 1, OPTION_FLAG, AT(d.cache_shared),
	  NULL, "the cache is a group's: setgid directories, group-writable entries, entries of "
	  "the group's members used (they can all plant code; default $PREPYC_CACHE_SHARED)" },
	{ CO_BUNDLE, 0, "bundle", NULL, 1, OPTION_FLAG, AT(bundle), NULL,
	  "for a zip, wheel or tar: checked-hash pycs, which survive any archive (see above)" },
	{ CO_NO_BUILD_LOG, 0, "no-build-log", "no-build-log", 1, OPTION_FLAG, AT(d.no_build_log),
	  NULL, "read every pyc's header; neither use nor write the build log" },
	{ CO_REMOTE_CACHE, 0, "remote-cache", "remote-cache", 1, OPTION_LIST, AT(d.remote_caches),
	  "URL", "shared cache after the local one: redis://HOST[:PORT][/DB], http(s)://HOST/PATH "
	  "(repeatable; default $PREPYC_REMOTE_CACHE, space-separated)" },
	{ CO_REMOTE_CACHE_READ_ONLY, 0, "remote-cache-read-only", "remote-cache-read-only", 1,
	  OPTION_FLAG, AT(d.remote_read_only), NULL,
	  "look up in the remote cache, never upload (or $PREPYC_REMOTE_CACHE_READ_ONLY=1)" },
	{ CO_REMOTE_CACHE_ONLY, 0, "remote-cache-only", "remote-cache-only", 1, OPTION_FLAG,
	  AT(d.remote_only), NULL, "the remote cache alone: no local entry read or written, for "
	  "builders thrown away after the job (or $PREPYC_REMOTE_CACHE_ONLY=1)" },
	{ CO_REMOTE_CACHE_TIMEOUT, 0, "remote-cache-timeout", "remote-cache-timeout", 1,
	  OPTION_STRING, AT(d.remote_timeout), "SECONDS",
	  "give up a remote request after SECONDS (default 10, or $PREPYC_REMOTE_CACHE_TIMEOUT)" },
	{ CO_REMOTE_CACHE_CONNECT_TIMEOUT, 0, "remote-cache-connect-timeout",
	  "remote-cache-connect-timeout", 1, OPTION_STRING, AT(d.remote_connect_timeout), "SECONDS",
	  "give up connecting after SECONDS (default 2, or $PREPYC_REMOTE_CACHE_CONNECT_TIMEOUT)" },
};

int compileall_option_takes_value(const struct compileall_option *o)
{
	return o->type != OPTION_FLAG && o->type != OPTION_COUNT;
}

void compile_options(struct option *opts, struct compile_args *a)
{
	size_t i;

	for (i = 0; i < COMPILEALL_NOPTIONS; i++) {
		const struct compileall_option *c = &compileall_options[i];

		if (c->id != (enum compileall_option_id)i)
			BUG("compileall_options[%zu] out of order", i);
		opts[i].type = c->type;
		opts[i].short_name = c->short_name;
		opts[i].long_name = c->long_name;
		opts[i].value = (char *)a + c->offset;
		opts[i].argh = c->argh;
		opts[i].help = c->help;
	}
	opts[i] = (struct option)OPT_END();
}

int cli_parse_levels(const struct option_list *values, int *levels, int *nlevels,
		     const char **bad)
{
	size_t i;

	for (i = 0; i < values->nr; i++) {
		char *end;
		long v = strtol(values->v[i], &end, 10);

		*bad = values->v[i];
		if (!*values->v[i] || *end || v < -1 || v > 2)
			return -1;
		if (*nlevels >= ENGINE_MAX_LEVELS)
			return -2;
		levels[(*nlevels)++] = (int)v;
	}
	return 0;
}
