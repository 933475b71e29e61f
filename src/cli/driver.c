/*
 * driver.c - from parsed options to engine runs (see driver.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "driver.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cachedir.h"
#include "child.h"
#include "pool.h"
#include "strbuf.h"
#include "sys-path.h"
#include "target.h"
#include "trustdir.h"
#include "walklog.h"
#include "util.h"
#include "walk.h"
#include "banned.h"

extern const char rxfilter_py[];
extern const char syspath_py[];

static volatile sig_atomic_t caught_signal;

static void on_signal(int sig)
{
	caught_signal = sig;
	pool_interrupt();
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

int driver_apply_prefix(const struct driver_opts *d, struct target *t)
{
	if (!d->pycache_prefix)
		return 0;
	if (!target_at_least(t, 3, 8, 0))
		return error("option '--pycache-prefix' needs Python 3.8 or later: '%s' is %s",
			     t->python, t->display);
	t->layout.pycache_prefix = d->pycache_prefix;
	return 0;
}

void driver_default_target(struct option_list *pythons)
{
	if (pythons->nr)
		return;
	ALLOC_GROW(pythons->v, 1, pythons->alloc);
	pythons->v[pythons->nr++] = target_default_python();
}

int parse_invalidation(const char *s)
{
	if (!strcmp(s, "timestamp"))
		return INVAL_TIMESTAMP;
	if (!strcmp(s, "checked-hash"))
		return INVAL_CHECKED_HASH;
	if (!strcmp(s, "unchecked-hash"))
		return INVAL_UNCHECKED_HASH;
	return -1;
}

static int needs(const struct target *t, int given, const char *option, int minor)
{
	if (!given || target_at_least(t, 3, minor, 0))
		return 0;
	return error("option '%s' needs Python 3.%d or later: '%s' is %s", option, minor,
		     t->python, t->display);
}

/* Refuse, before anything is written, the options a target cannot honour. */
int driver_check_target(const struct driver_opts *d, const struct target *t)
{
	int inval = engine_invalidation(&d->e, t);

	if (needs(t, d->given_o, "-o", 9) || needs(t, d->given_s, "-s", 9) ||
	    needs(t, d->given_p, "-p", 9) || needs(t, d->given_e, "-e", 9) ||
	    needs(t, d->given_hardlink, "--hardlink-dupes", 9) ||
	    needs(t, d->given_inval, "--invalidation-mode", 7))
		return -1;
	if (inval != INVAL_TIMESTAMP && !t->has_hash_pycs)
		return error("'%s' (%s) cannot write hash-based pycs (--invalidation-mode %s)",
			     t->python, t->display,
			     inval == INVAL_CHECKED_HASH ? "checked-hash" : "unchecked-hash");
	return 0;
}

/* Run `argv` with `input` on its stdin; its stdout into `out`.  Exit status, or -1. */
static int run_filter(const char *const *argv, const struct strbuf *input, struct strbuf *out,
		      int search_path)
{
	struct child c = CHILD_INIT;
	int in[2], outp[2], status;
	long n;

	if (pipe(in) < 0)
		return error_errno("cannot create a pipe");
	if (pipe(outp) < 0) {
		close(in[0]);
		close(in[1]);
		return error_errno("cannot create a pipe");
	}
	set_cloexec(in[0]);
	set_cloexec(in[1]);
	set_cloexec(outp[0]);
	set_cloexec(outp[1]);
	c.argv = argv;
	c.in_fd = in[0];
	c.out_fd = outp[1];
	c.search_path = search_path;
	if (child_start(&c) < 0) {
		error_errno("cannot run '%s'", argv[0]);
		close(in[0]);
		close(in[1]);
		close(outp[0]);
		close(outp[1]);
		return -1;
	}
	close(in[0]);
	close(outp[1]);
	/* the filters read all their input before writing anything */
	if (input->len && write_in_full(in[1], input->buf, input->len) < 0)
		error_errno("cannot write to '%s'", argv[0]);
	close(in[1]);
	n = strbuf_read_fd(out, outp[0], 0);
	close(outp[0]);
	if (child_wait(&c, &status) < 0 || n < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* -x: mark the entries whose path the target's re.search() matches. */
int driver_eval_rx(const struct driver_opts *d, const struct target *t,
		   const struct source_list *list, unsigned char **skip)
{
	const char *argv[] = { t->executable, "-S", "-s", "-B", "-c", rxfilter_py, d->rx, NULL };
	struct strbuf in = STRBUF_INIT, out = STRBUF_INIT;
	size_t i;
	int rc;

	for (i = 0; i < list->nr; i++) {
		strbuf_addstr(&in, list->v[i].path);
		strbuf_addch(&in, '\0');
	}
	rc = run_filter(argv, &in, &out, 0);
	strbuf_release(&in);
	if (rc != 0 || out.len != list->nr) {
		strbuf_release(&out);
		if (rc == 3)
			return error("option '-x': the target cannot compile the pattern");
		return error("cannot evaluate -x with '%s'", t->python);
	}
	*skip = (unsigned char *)strbuf_detach(&out, NULL);
	return 0;
}

/* -i FILE: one path per line, stripped, after the arguments (compileall's rule). */
static int read_flist(const char *flist, struct option_list *paths)
{
	struct strbuf sb = STRBUF_INIT;
	char *p, *line;
	int fd = strcmp(flist, "-") ? open(flist, O_RDONLY | O_CLOEXEC) : 0;

	if (fd < 0)
		return -1;
	if (strbuf_read_fd(&sb, fd, 0) < 0) {
		if (fd)
			close(fd);
		strbuf_release(&sb);
		return -1;
	}
	if (fd)
		close(fd);
	for (line = p = sb.buf; p <= sb.buf + sb.len; p++) {
		if (p < sb.buf + sb.len && *p != '\n')
			continue;
		if (p == sb.buf + sb.len && p == line)
			break; /* no final unterminated line */
		{
			char *a = line, *b = p;

			/* str.strip(): whitespace at both ends */
			while (a < b && (*a == ' ' || (*a >= '\t' && *a <= '\r')))
				a++;
			while (b > a && (b[-1] == ' ' || (b[-1] >= '\t' && b[-1] <= '\r')))
				b--;
			ALLOC_GROW(paths->v, paths->nr + 1, paths->alloc);
			paths->v[paths->nr++] = xstrndup(a, (size_t)(b - a));
		}
		line = p + 1;
	}
	strbuf_release(&sb);
	return 0;
}

int driver_sys_path(const struct target *t, int plain, struct option_list *dirs)
{
	const char *argv[] = { t->python, "-c", syspath_py, NULL, NULL, NULL };
	struct strbuf in = STRBUF_INIT, out = STRBUF_INIT;
	const char *safe = getenv("PYTHONSAFEPATH");
	size_t i;

	if (plain) {
		/* --sys-path: write nothing (check), import nothing but site */
		argv[1] = "-B";
		argv[2] = "-c";
		argv[3] = syspath_py;
		argv[4] = "--plain";
	}
	if (run_filter(argv, &in, &out, !strchr(t->python, '/')) != 0)
		return error("cannot read the sys.path of '%s'", t->python);
	/* -m puts '' first up to 3.6, the working directory after, nothing with -P (3.11+) */
	if (!(safe && *safe && target_at_least(t, 3, 11, 0))) {
		ALLOC_GROW(dirs->v, dirs->nr + 1, dirs->alloc);
		dirs->v[dirs->nr++] = target_at_least(t, 3, 7, 0) ? xstrdup(t->cwd) : xstrdup("");
	}
	for (i = 0; i < out.len;) {
		size_t n = strlen(out.buf + i);

		ALLOC_GROW(dirs->v, dirs->nr + 1, dirs->alloc);
		dirs->v[dirs->nr++] = xstrdup(out.buf + i);
		i += n + 1;
	}
	strbuf_release(&out);
	return 0;
}

static void free_strings(struct option_list *l)
{
	size_t i;

	for (i = 0; i < l->nr; i++)
		free((char *)l->v[i]);
	option_list_release(l);
}

/* compile_path(): each sys.path directory without recursion; stops at the first failure. */
static int run_compile_path(struct driver_opts *d, const struct target *t, int *any_failed)
{
	struct option_list dirs = { NULL, 0, 0 };
	struct engine_opts e = d->e;
	size_t i;
	int rc = 0;

	if (driver_sys_path(t, 0, &dirs) < 0)
		return -1;
	e.maxlevels = 0;
	e.nlevels = 0;
	e.ddir = e.stripdir = e.prependdir = e.limit_sl_dest = NULL;
	e.hardlink_dupes = 0;
	for (i = 0; i < dirs.nr && rc == 0 && !*any_failed && !caught_signal; i++) {
		struct source_list list = SOURCE_LIST_INIT;

		if (!dirs.v[i][0] || !strcmp(dirs.v[i], ".")) {
			if (e.quiet < 2)
				printf("Skipping current directory\n");
			continue;
		}
		walk_path(dirs.v[i], 0, WALK_COMPILEALL, &list);
		rc = engine_run(&e, t, &list, any_failed);
		source_list_release(&list);
	}
	free_strings(&dirs);
	return rc;
}

/* --sys-path: the PATHs' list and the target's sys.path directories, in one run. */
static int run_sys_path(struct driver_opts *d, struct engine_opts *e, const struct target *t,
			const struct source_list *paths, int *any_failed)
{
	struct source_list list = SOURCE_LIST_INIT;
	unsigned char *skip = NULL;
	int r = sys_path_compile_list(d, t, paths, &list);

	if (r < 0) {
		source_list_release(&list);
		return -1;
	}
	if (r > 0)
		*any_failed = 1;
	if (d->rx && driver_eval_rx(d, t, &list, &skip) < 0) {
		source_list_release(&list);
		return -1;
	}
	e->rx_skip = skip;
	r = engine_run(e, t, &list, any_failed);
	e->rx_skip = NULL;
	free(skip);
	source_list_release(&list);
	return r;
}

/* Run the engine for each target in turn; 0, or the exit status that stopped the run. */
static int run_targets(struct driver_opts *d, const struct target *targets,
		       const struct source_list *list, int *any_failed, struct strbuf *label)
{
	size_t k;
	int rc = 0;

	for (k = 0; k < d->pythons.nr && rc == 0; k++) {
		struct engine_opts e = d->e;
		unsigned char *skip = NULL;
		int r;

		/* each target's summary counts its time since the previous one's end */
		if (k > 0)
			e.started = now_seconds();

		if (caught_signal)
			return 128 + caught_signal;
		if (d->rx && !d->compile_path && !d->sys_path) {
			if (driver_eval_rx(d, &targets[k], list, &skip) < 0)
				/* compileall dies of re.error: exit status 1 */
				return d->e.style == STYLE_COMPILEALL ? 1 : 2;
			e.rx_skip = skip;
		}
		if (d->compile_path)
			r = run_compile_path(d, &targets[k], any_failed);
		else if (d->sys_path)
			r = run_sys_path(d, &e, &targets[k], list, any_failed);
		else
			r = engine_run(&e, &targets[k], list, any_failed);
		free(skip);
		if (label->len)
			strbuf_addstr(label, ", ");
		strbuf_addstr(label, targets[k].display);
		/* a signal outside the pool (walk, plan, cache) stops the run too */
		if (r == -2 || caught_signal)
			rc = 128 + (caught_signal ? caught_signal : SIGINT);
		else if (r < 0)
			rc = 2;
	}
	return rc;
}

/* Walk every PATH (compileall's way in compileall style); 1 when one could not be walked. */
static int walk_paths(struct driver_opts *d, const struct option_list *paths,
		      struct source_list *list)
{
	unsigned flags = d->e.style == STYLE_COMPILEALL ? WALK_COMPILEALL
			 : d->e.quiet >= 2 ? WALK_QUIET : 0;
	int maxlevels = d->e.maxlevels >= 0 ? d->e.maxlevels : WALK_MAX_DEPTH, failed = 0;
	struct walklog *log = NULL;
	size_t k;

	/* the walk log, beside the build log and under the same rules (walklog.h) */
	if (!d->no_build_log && !d->compile_path && !d->sys_path)
		log = walklog_open_cache(d->cache_dir, (const char *const *)paths->v, paths->nr,
					 flags & WALK_COMPILEALL);
	for (k = 0; k < paths->nr; k++) {
		int errors = walk_path_log(paths->v[k], maxlevels, flags, list, log);

		/* a PATH missing or a directory that cannot be listed: failures in the summary */
		d->e.walk_failed += (size_t)errors;
		if (errors)
			failed = 1;
	}
	walklog_close(log, list->started_ns);
	return failed;
}

/* Seconds (a decimal, e.g. 0.5) from an option or its variable into *ms; -1 after error(). */
static int parse_seconds(const char *opt, const char *env, long *ms)
{
	const char *s = opt ? opt : getenv(env);
	char *end;
	double v;

	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtod(s, &end);
	if (*end || errno || !(v > 0) || v > 86400)
		return error("%s%s expects a number of seconds above 0, not '%s'",
			     opt ? "option '--" : "$", opt ? (strcmp(env, "PREPYC_REMOTE_CACHE_TIMEOUT") ?
			     "remote-cache-connect-timeout'" : "remote-cache-timeout'") : env, s);
	*ms = (long)(v * 1000 + 0.5);
	if (*ms < 1)
		*ms = 1;
	return 0;
}

/*
 * The remote caches of this run into `urls` (new strings): --remote-cache,
 * else $PREPYC_REMOTE_CACHE split at spaces; and their options into `o`,
 * the secret and token from the environment only.  Each URL is checked
 * now, before anything runs; -1 after error().
 */
static int remote_options(const struct driver_opts *d, struct option_list *urls,
			  struct cache_remote_opts *o)
{
	const char *env = getenv("PREPYC_REMOTE_CACHE"), *ro = getenv("PREPYC_REMOTE_CACHE_READ_ONLY");
	const char *z = getenv("PREPYC_REMOTE_CACHE_COMPRESS");
	const char *only = getenv("PREPYC_REMOTE_CACHE_ONLY");
	size_t i;

	o->read_only = d->remote_read_only || (ro && *ro && strcmp(ro, "0"));
	o->uncompressed = z && !strcmp(z, "0");
	o->remote_only = d->remote_only || (only && *only && strcmp(only, "0"));
	o->secret = getenv("PREPYC_REMOTE_CACHE_SECRET");
	o->token = getenv("PREPYC_REMOTE_CACHE_TOKEN");
	if (parse_seconds(d->remote_timeout, "PREPYC_REMOTE_CACHE_TIMEOUT", &o->timeout_ms) < 0 ||
	    parse_seconds(d->remote_connect_timeout, "PREPYC_REMOTE_CACHE_CONNECT_TIMEOUT",
			  &o->connect_timeout_ms) < 0)
		return -1;
	for (i = 0; i < d->remote_caches.nr; i++) {
		ALLOC_GROW(urls->v, urls->nr + 1, urls->alloc);
		urls->v[urls->nr++] = xstrdup(d->remote_caches.v[i]);
	}
	while (!d->remote_caches.nr && env && *env) {
		size_t len;

		env += strspn(env, " \t\n");
		len = strcspn(env, " \t\n");
		if (!len)
			break;
		ALLOC_GROW(urls->v, urls->nr + 1, urls->alloc);
		urls->v[urls->nr++] = xstrndup(env, len);
		env += len;
	}
	for (i = 0; i < urls->nr; i++)
		if (cache_add_remote(NULL, urls->v[i], o) < 0)
			return -1;
	/* (the environment's alone is ignored without a remote, as the read-only one is) */
	if (d->remote_only && !urls->nr) {
		error("--remote-cache-only: no remote cache (--remote-cache URL or $PREPYC_REMOTE_CACHE)");
		return -1;
	}
	return 0;
}

/* The bytecode cache of this run, or NULL (no HOME, or it cannot be had: warned). */
static struct cache *open_cache(const char *opt_dir, uint64_t max_size, unsigned flags,
				const struct option_list *remotes, const struct cache_remote_opts *o)
{
	char *dir = cache_dir_resolve(opt_dir);
	struct cache *cache = NULL;
	size_t i;

	if (dir)
		cache = cache_open_flags(dir, max_size, flags);
	else
		trace("cache: no directory (no HOME): not used");
	free(dir);
	if (!cache && remotes->nr)
		trace("cache: no local cache: the remote ones are not used either");
	for (i = 0; cache && i < remotes->nr; i++)
		cache_add_remote(cache, remotes->v[i], o); /* checked already */
	if (remotes->nr && o->remote_only)
		cache_local_entries_off(cache);
	return cache;
}

int driver_run(struct driver_opts *d, int npaths, const char **argpaths)
{
	struct target *targets;
	struct source_list list = SOURCE_LIST_INIT;
	struct option_list paths = { NULL, 0, 0 };
	int i, any_failed = 0, rc = 0;
	size_t k;
	double start;
	uint64_t cache_max = CACHE_DEFAULT_MAX_SIZE;
	unsigned cache_flags = cache_dir_shared(d->cache_shared) ? TRUST_SHARED : 0;
	struct cache *cache = NULL;
	char *log_dir = NULL;
	struct strbuf label = STRBUF_INIT;
	struct option_list remotes = { NULL, 0, 0 };
	struct cache_remote_opts ropts = CACHE_REMOTE_OPTS_INIT;

	d->e.started = now_seconds(); /* the summary's time is the whole run's */

	if (d->cache_max_size && cache_parse_size(d->cache_max_size, &cache_max) < 0) {
		error("option '--cache-max-size' expects a size such as 800M or 2G, not '%s'",
		      d->cache_max_size);
		return 2;
	}
	if (!d->no_cache && remote_options(d, &remotes, &ropts) < 0) {
		free_strings(&remotes);
		return 2;
	}
	for (i = 0; i < npaths; i++) {
		ALLOC_GROW(paths.v, paths.nr + 1, paths.alloc);
		paths.v[paths.nr++] = xstrdup(argpaths[i]);
	}
	if (d->flist && read_flist(d->flist, &paths) < 0) {
		if (d->e.style == STYLE_COMPILEALL) {
			if (d->e.quiet < 2)
				printf("Error reading file list %s\n", d->flist);
		} else {
			error_errno("cannot read the file list '%s'", d->flist);
		}
		free_strings(&paths);
		free_strings(&remotes);
		return 1;
	}
	/* compileall: no paths, even after -i, means sys.path */
	if (d->e.style == STYLE_COMPILEALL && !paths.nr)
		d->compile_path = 1;
	driver_default_target(&d->pythons);
	if (d->recursion >= 0)
		d->e.maxlevels = d->recursion;
	else if (d->no_recurse)
		d->e.maxlevels = 0;

	/*
	 * Probe the targets while walking: the interpreters start on another
	 * core in the time the walk takes.  The walk records depths, so it
	 * need not know each target's compileall depth limit yet.
	 */
	start = now_seconds();
	targets = xcalloc(d->pythons.nr, sizeof(*targets));
	for (k = 0; k < d->pythons.nr; k++) {
		if (target_probe_start(&targets[k], d->pythons.v[k], d->cache_dir, cache_flags) < 0) {
			while (k-- > 0)
				target_release(&targets[k]);
			free(targets);
			free_strings(&paths);
			free_strings(&remotes);
			return 2;
		}
	}
	install_signals();
	any_failed = walk_paths(d, &paths, &list);
	trace("walk: %zu entries in %.1f ms", list.nr, (now_seconds() - start) * 1e3);
	for (k = 0; k < d->pythons.nr; k++) {
		if (target_probe_finish(&targets[k]) < 0)
			rc = 2;
		else if (driver_apply_prefix(d, &targets[k]) < 0)
			rc = 2;
		else if (driver_check_target(d, &targets[k]) < 0)
			rc = 2;
	}
	trace("probe: ready after %.1f ms", (now_seconds() - start) * 1e3);
	if (rc == 0 && !d->no_cache)
		d->e.cache = cache = open_cache(d->cache_dir, cache_max, cache_flags, &remotes, &ropts);
	free_strings(&remotes);
	/* the build log names the build by its PATHs: not for sys.path runs */
	if (!d->no_build_log && !d->compile_path && !d->sys_path)
		d->e.log_dir = log_dir = cache_dir_resolve(d->cache_dir);
	d->e.log_paths = (const char *const *)paths.v;
	d->e.log_npaths = paths.nr;

	if (rc == 0)
		rc = run_targets(d, targets, &list, &any_failed, &label);
	cache_close(cache, label.buf);
	d->e.cache = NULL;
	d->e.log_dir = NULL;
	free(log_dir);
	strbuf_release(&label);
	if (rc == 0)
		rc = any_failed ? 1 : 0;
	fflush(stdout);
	if (rc >= 128 && caught_signal)
		fprintf(stderr, "%s: %s\n", progname,
			caught_signal == SIGINT ? "interrupted" : "terminated");
	source_list_release(&list);
	for (k = 0; k < d->pythons.nr; k++)
		target_release(&targets[k]);
	free(targets);
	free_strings(&paths);
	return rc;
}
