/* cachedir.c - the cache directory's one rule (cachedir.h). */
#define _POSIX_C_SOURCE 200809L
#include "cachedir.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "banned.h"

char *cache_dir_resolve(const char *opt)
{
	const char *env;

	if (opt && *opt)
		return xstrdup(opt);
	env = getenv("PREPYC_CACHE_DIR");
	if (env && *env)
		return xstrdup(env);
	env = getenv("XDG_CACHE_HOME");
	if (env && *env == '/') /* the XDG spec: a relative value is to be ignored */
		return xstrfmt("%s/prepyc", env);
	env = getenv("HOME");
	if (env && *env)
		return xstrfmt("%s/.cache/prepyc", env);
	return NULL;
}

int cache_dir_shared(int opt)
{
	const char *env = getenv("PREPYC_CACHE_SHARED");

	return opt || (env && *env && strcmp(env, "0"));
}
