/*
 * cmd-cache.c - `prepyc cache stats|clear|prune`: the bytecode cache's
 * directory (cachedir.h) looked after as a whole, by cache-admin.h's
 * functions; this file parses the arguments and prints what they return.
 */
#define _POSIX_C_SOURCE 200809L
#include "cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache-admin.h"
#include "cache-logs.h"
#include "cache.h"
#include "cachedir.h"
#include "options.h"
#include "strbuf.h"
#include "trustdir.h"
#include "util.h"
#include "banned.h"

#define RUNS_SHOWN 10

/* Set `sb` to the human form of `n`; returns its text. */
static const char *human(struct strbuf *sb, uint64_t n)
{
	strbuf_reset(sb);
	strbuf_add_size(sb, n);
	return sb->buf;
}

static void print_runs(const char *dir)
{
	struct cache_runs runs;
	uint64_t hits = 0, misses = 0;
	int width = 0;
	size_t i;

	if (cache_admin_read_runs(dir, RUNS_SHOWN, &runs) < 0 || !runs.nr) {
		printf("no runs recorded\n");
		cache_runs_release(&runs);
		return;
	}
	for (i = 0; i < runs.nr; i++)
		if ((int)strlen(runs.v[i].label) > width)
			width = (int)strlen(runs.v[i].label);
	printf("last %zu run%s:\n", runs.nr, runs.nr == 1 ? "" : "s");
	for (i = 0; i < runs.nr; i++) {
		const struct cache_run *r = &runs.v[i];
		time_t t = (time_t)r->when;
		char when[32] = "?";
		struct tm tm;

		if (localtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		printf("  %s  %-*s  hits %llu  misses %llu  stored %llu", when, width, r->label,
		       (unsigned long long)r->hits, (unsigned long long)r->misses,
		       (unsigned long long)r->stored);
		if (r->evicted)
			printf("  evicted %llu", (unsigned long long)r->evicted);
		if (r->has_remote) /* an error is not a miss: apart */
			printf("  remote: hits %llu  misses %llu  uploads %llu  errors %llu"
			       "  rejected %llu",
			       (unsigned long long)r->remote.hits, (unsigned long long)r->remote.misses,
			       (unsigned long long)r->remote.uploads,
			       (unsigned long long)r->remote.errors,
			       (unsigned long long)r->remote.rejected);
		putchar('\n');
		hits += r->hits;
		misses += r->misses;
	}
	if (hits + misses)
		printf("hit rate: %.1f%% over these runs (%llu hits, %llu misses)\n",
		       100.0 * (double)hits / (double)(hits + misses), (unsigned long long)hits,
		       (unsigned long long)misses);
	cache_runs_release(&runs);
}

static int cache_stats(const char *dir)
{
	struct strbuf sb = STRBUF_INIT;
	struct cache_logs_result logs;
	struct cache_usage u;
	uint64_t max;
	int recorded;

	if (cache_admin_usage(dir, &u) < 0)
		return 1;
	max = cache_admin_last_max_size(dir, &recorded);
	printf("cache directory: %s\n", dir);
	printf("entries:         %zu, %s", u.entries, human(&sb, u.bytes));
	if (u.packs)
		printf("; %zu of them in %zu pack%s", u.packed, u.packs, u.packs == 1 ? "" : "s");
	printf("\n");
	printf("max size:        %s, %s\n", human(&sb, max),
	       recorded ? "the last run's" : "the default");
	if (u.temps)
		printf("temporary files: %zu (runs in progress, or left by killed ones)\n", u.temps);
	cache_logs_prune(dir, CACHE_LOGS_COUNT, &logs);
	printf("build logs:      %zu, %s\n", logs.left, human(&sb, logs.left_bytes));
	strbuf_release(&sb);
	print_runs(dir);
	return 0;
}

static int cache_clear(const char *dir)
{
	struct strbuf sb = STRBUF_INIT;
	struct cache_logs_result logs;
	struct cache_clear_result r;

	if (cache_admin_clear(dir, &r) < 0)
		return 1;
	cache_logs_prune(dir, CACHE_LOGS_ALL, &logs);
	printf("%s: cache clear: removed %zu entr%s (%s), %zu temporary file%s and %zu build "
	       "log%s from %s\n", progname, r.entries, r.entries == 1 ? "y" : "ies",
	       human(&sb, r.bytes), r.temps, r.temps == 1 ? "" : "s", logs.removed,
	       logs.removed == 1 ? "" : "s", dir);
	strbuf_release(&sb);
	return r.failed || logs.failed ? 1 : 0;
}

static int cache_prune(const char *dir, uint64_t max)
{
	struct strbuf sb = STRBUF_INIT;
	struct cache_logs_result logs;
	struct cache_prune_result r;

	if (cache_admin_prune(dir, max, &r) < 0)
		return 1;
	printf("%s: cache prune: removed %zu damaged entr%s and %zu least recently used (%s), "
	       "%zu temporary file%s; ",
	       progname, r.damaged, r.damaged == 1 ? "y" : "ies", r.evicted,
	       human(&sb, r.removed_bytes), r.temps, r.temps == 1 ? "" : "s");
	printf("%zu entr%s left (%s), ", r.left, r.left == 1 ? "y" : "ies", human(&sb, r.left_bytes));
	printf("max %s; ", human(&sb, max));
	cache_logs_prune(dir, CACHE_LOGS_PRUNE, &logs);
	printf("%zu unused build log%s removed, %zu left\n", logs.removed,
	       logs.removed == 1 ? "" : "s", logs.left);
	strbuf_release(&sb);
	return r.failed || logs.failed ? 1 : 0;
}

/*
 * Whether `dir` is ours (trustdir.h): clear and prune remove files in it
 * by name, so they refuse a cache someone else could have written (an
 * error); stats only reads, and says so.  0, or 1 when refused.
 */
static int check_trust(const char *dir, const char *sub, unsigned flags)
{
	struct strbuf why = STRBUF_INIT;
	int rc = cache_admin_trusted(dir, flags, &why) > 0;

	if (rc && !strcmp(sub, "stats"))
		warning("the cache '%s' is not yours: %s", dir, why.buf);
	else if (rc)
		error("not using the cache '%s': %s", dir, why.buf);
	strbuf_release(&why);
	return rc && strcmp(sub, "stats");
}

static const char *const cache_usage[] = {
	"usage: prepyc cache stats [--cache-dir DIR] [--cache-shared]",
	"   or: prepyc cache clear [--cache-dir DIR] [--cache-shared]",
	"   or: prepyc cache prune [--cache-dir DIR] [--cache-shared] [--cache-max-size SIZE]",
	"",
	"stats: the entries, their size, the last runs and their hit rate.",
	"clear: remove every entry, the stats, the build logs and the temporary",
	"       files (files prepyc did not make are left alone).",
	"prune: remove damaged entries, temporary files older than an hour, the",
	"       least recently used entries down to SIZE (default: the bound of the",
	"       last run recorded, else 1G), and the build logs of builds that have",
	"       not run for 30 days or are not among the last 100 to run.",
	"",
	"The cache directory is --cache-dir, else $PREPYC_CACHE_DIR, else",
	"$XDG_CACHE_HOME/prepyc, else ~/.cache/prepyc.  clear and prune refuse a",
	"cache that someone else could have written (not yours, or writable by",
	"others); --cache-shared (or $PREPYC_CACHE_SHARED) accepts your groups'.",
	NULL,
};

int cmd_cache(int argc, const char **argv)
{
	const char *dir_opt = NULL, *max_arg = NULL, *sub = argc > 1 ? argv[1] : NULL;
	int shared = 0;
	const struct option opts[] = {
		OPT_STRING(0, "cache-dir", &dir_opt, "DIR", "the cache directory"),
		OPT_FLAG(0, "cache-shared", &shared, "the cache is a group's (see prepyc compile --help)"),
		OPT_STRING(0, "cache-max-size", &max_arg, "SIZE",
			   "prune: the bound, in bytes or with K, M, G, T (powers of 1024)"),
		OPT_END(),
	};
	uint64_t max = 0;
	char *dir;
	int n, rc, recorded;

	if (sub && (!strcmp(sub, "-h") || !strcmp(sub, "--help"))) {
		n = -2;
	} else if (!sub || (strcmp(sub, "stats") && strcmp(sub, "clear") && strcmp(sub, "prune"))) {
		if (sub)
			error("unknown cache command '%s'", sub);
		else
			error("no cache command given");
		n = -1;
	} else {
		n = parse_options(argc - 2, argv + 2, opts);
		if (n > 0) {
			error("unexpected argument '%s'", argv[2]);
			n = -1;
		} else if (max_arg && strcmp(sub, "prune")) {
			error("option '--cache-max-size' is for 'prepyc cache prune' only");
			n = -1;
		}
	}
	if (n == -2) {
		usage_with_options(stdout, cache_usage, opts);
		printf("\nexit status: 0 success (a missing cache is not an error); 1 a file or\n"
		       "directory could not be read or removed; 2 usage error.\n");
		return 0;
	}
	if (n < 0) {
		fprintf(stderr, "%s\nTry 'prepyc cache --help' for the options.\n", cache_usage[0]);
		return 2;
	}
	dir = cache_dir_resolve(dir_opt);
	if (!dir) {
		error("no cache directory: HOME is not set; use --cache-dir");
		return 2;
	}
	if (!strcmp(sub, "prune") && max_arg && cache_parse_size(max_arg, &max) < 0) {
		error("option '--cache-max-size' expects a size such as 800M or 2G, not '%s'", max_arg);
		free(dir);
		return 2;
	}
	if (!strcmp(sub, "prune") && !max_arg)
		max = cache_admin_last_max_size(dir, &recorded);
	rc = 0;
	if (!cache_admin_exists(dir))
		printf("no cache at %s\n", dir);
	else if (check_trust(dir, sub, cache_dir_shared(shared) ? TRUST_SHARED : 0))
		rc = 1;
	else if (!strcmp(sub, "stats"))
		rc = cache_stats(dir);
	else if (!strcmp(sub, "clear"))
		rc = cache_clear(dir);
	else
		rc = cache_prune(dir, max);
	free(dir);
	fflush(stdout);
	return rc;
}
