/*
 * compileall-args.c - compileall's command line, as argparse parses it
 * (see compileall-args.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "compileall-args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "util.h"
#include "banned.h"

/* compileall's options are compileall_options[] (cli-options.h), without compile's own. */
static int in_compileall(const struct compileall_option *o)
{
	return o->short_name || o->argparse_name;
}

static int to_int(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < -1000000 || v > 1000000)
		return -1;
	*out = (int)v;
	return 0;
}

/* Apply one option; COMPILEALL_FALLBACK when argparse would have something to say. */
static int apply(struct driver_opts *d, const struct compileall_option *o, const char *val)
{
	int n;

	switch (o->id) {
	case CO_NO_RECURSE: d->no_recurse = 1; return 0;
	case CO_FORCE: d->e.force = 1; return 0;
	case CO_QUIET: d->e.quiet++; return 0;
	case CO_LEGACY: d->e.legacy = 1; return 0;
	case CO_DDIR: d->e.ddir = val; return 0;
	case CO_STRIPDIR: d->e.stripdir = val; d->given_s = 1; return 0;
	case CO_PREPENDDIR: d->e.prependdir = val; d->given_p = 1; return 0;
	case CO_EXCLUDE: d->rx = val; return 0;
	case CO_FILE_LIST: d->flist = val; return 0;
	case CO_LIMIT_SL_DEST: d->e.limit_sl_dest = *val ? val : NULL; d->given_e = 1; return 0;
	case CO_RECURSION:
		if (to_int(val, &n) < 0)
			return COMPILEALL_FALLBACK;
		d->recursion = n < 0 ? 0 : n;
		return 0;
	case CO_JOBS:
		if (to_int(val, &n) < 0 || n < 0)
			return COMPILEALL_FALLBACK;
		d->e.jobs = n;
		return 0;
	case CO_LEVEL:
		if (to_int(val, &n) < 0 || d->e.nlevels >= ENGINE_MAX_LEVELS)
			return COMPILEALL_FALLBACK;
		d->e.levels[d->e.nlevels++] = n;
		d->given_o = 1;
		return 0;
	case CO_INVALIDATION:
		d->e.invalidation = parse_invalidation(val);
		d->given_inval = 1;
		return d->e.invalidation < 0 ? COMPILEALL_FALLBACK : 0;
	case CO_HARDLINK_DUPES:
		d->e.hardlink_dupes = 1;
		d->given_hardlink = 1;
		return 0;
	case CO_NO_CANONICAL:
		d->e.canonical = 0;
		return 0;
	case CO_TIMEOUT:
		/* prepyc's own option: compileall cannot answer for it */
		if (to_int(val, &n) < 0 || n < 0) {
			error("option '--timeout' expects a number of seconds >= 0, not '%s'", val);
			return COMPILEALL_USAGE_ERROR;
		}
		d->e.timeout = n;
		return 0;
	case CO_CACHE_DIR: d->cache_dir = val; return 0;
	case CO_NO_CACHE: d->no_cache = 1; return 0;
	case CO_CACHE_SHARED: d->cache_shared = 1; return 0;
	case CO_NO_BUILD_LOG: d->no_build_log = 1; return 0;
	case CO_CACHE_MAX_SIZE: d->cache_max_size = val; return 0;
	case CO_REMOTE_CACHE:
		ALLOC_GROW(d->remote_caches.v, d->remote_caches.nr + 1, d->remote_caches.alloc);
		d->remote_caches.v[d->remote_caches.nr++] = val;
		return 0;
	case CO_REMOTE_CACHE_READ_ONLY: d->remote_read_only = 1; return 0;
	case CO_REMOTE_CACHE_ONLY: d->remote_only = 1; return 0;
	case CO_REMOTE_CACHE_TIMEOUT: d->remote_timeout = val; return 0;
	case CO_REMOTE_CACHE_CONNECT_TIMEOUT: d->remote_connect_timeout = val; return 0;
	case CO_PYTHON:
		ALLOC_GROW(d->pythons.v, d->pythons.nr + 1, d->pythons.alloc);
		d->pythons.v[d->pythons.nr++] = val;
		return 0;
	case CO_PYCACHE_PREFIX:
	case CO_SYS_PATH: /* compile's only */
	case CO_BUNDLE:
	case COMPILEALL_NOPTIONS:
		break;
	}
	BUG("unhandled option");
}

static const struct compileall_option *find_long(const char *name, size_t len)
{
	const struct compileall_option *found = NULL;
	size_t i;

	for (i = 0; i < COMPILEALL_NOPTIONS; i++) {
		const char *l = compileall_options[i].argparse_name;

		if (!l || strncmp(l, name, len))
			continue;
		if (strlen(l) == len)
			return &compileall_options[i];
		if (found)
			return NULL; /* ambiguous prefix */
		found = &compileall_options[i];
	}
	return found;
}

static const struct compileall_option *find_short(char c)
{
	size_t i;

	for (i = 0; i < COMPILEALL_NOPTIONS; i++)
		if (c && compileall_options[i].short_name == c && in_compileall(&compileall_options[i]))
			return &compileall_options[i];
	return NULL;
}

int compileall_parse(struct driver_opts *d, int argc, const char **argv)
{
	int i, npos = 0, only_pos = 0, rc;

	for (i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (only_pos || a[0] != '-' || !a[1]) {
			argv[npos++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_pos = 1;
			continue;
		}
		if (a[1] == '-') {
			const char *name = a + 2, *eq = strchr(name, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			const struct compileall_option *o = find_long(name, len);
			const char *val = eq ? eq + 1 : NULL;

			if (!o || (!compileall_option_takes_value(o) && val))
				return COMPILEALL_FALLBACK;
			if (compileall_option_takes_value(o) && !val) {
				/* as argparse: "-1" is a value, other dash words are not */
				if (i + 1 >= argc ||
				    (argv[i + 1][0] == '-' && argv[i + 1][1] &&
				     !(argv[i + 1][1] >= '0' && argv[i + 1][1] <= '9')))
					return COMPILEALL_FALLBACK;
				val = argv[++i];
			}
			if ((rc = apply(d, o, val)) < 0)
				return rc;
			continue;
		}
		for (a++; *a; a++) {
			const struct compileall_option *o = find_short(*a);

			if (!o)
				return COMPILEALL_FALLBACK;
			if (!compileall_option_takes_value(o)) {
				apply(d, o, NULL);
				continue;
			}
			if (a[1]) {
				rc = apply(d, o, a[1] == '=' ? a + 2 : a + 1);
			} else {
				/* argparse takes "-1" as a value, but not other dash words */
				if (i + 1 >= argc ||
				    (argv[i + 1][0] == '-' && argv[i + 1][1] &&
				     !(argv[i + 1][1] >= '0' && argv[i + 1][1] <= '9')))
					return COMPILEALL_FALLBACK;
				rc = apply(d, o, argv[++i]);
			}
			if (rc < 0)
				return rc;
			break;
		}
	}
	/* -x '': compileall passes the empty string on as a pattern and dies of it */
	if (d->rx && !*d->rx)
		return COMPILEALL_FALLBACK;
	/* what main() itself refuses with parser.error() */
	if (d->e.ddir && (d->e.stripdir || d->e.prependdir))
		return COMPILEALL_FALLBACK;
	if (d->e.hardlink_dupes) {
		int k, distinct = d->e.nlevels > 0;

		for (k = 1; k < d->e.nlevels; k++)
			distinct += d->e.levels[k] != d->e.levels[0];
		/* main() wants two -o, compile_file() two different levels */
		if (distinct < 2)
			return COMPILEALL_FALLBACK;
	}
	return npos;
}

const struct compileall_option *compileall_own_option(const char *arg)
{
	size_t i, len;

	if (strncmp(arg, "--", 2))
		return NULL;
	arg += 2;
	len = strcspn(arg, "=");
	for (i = 0; i < COMPILEALL_NOPTIONS; i++) {
		const struct compileall_option *o = &compileall_options[i];

		if (o->ours && o->argparse_name && strlen(o->argparse_name) == len &&
		    !strncmp(o->argparse_name, arg, len))
			return o;
	}
	return NULL;
}

