/*
 * driver.h - what `prepyc compile` and `prepyc compileall` share once their
 * arguments are parsed: probe the targets, refuse what a target cannot do,
 * read -i lists, walk, evaluate -x with the target's `re`, and run the
 * engine for each target.  The pieces serve check and clean too, and
 * driver_default_target() is every command's one default-target rule.
 *
 * driver_run() returns the process exit status (see cmd.h).
 */
#ifndef DRIVER_H
#define DRIVER_H

#include "engine.h"
#include "options.h"

struct driver_opts {
	struct engine_opts e;
	struct option_list pythons;
	const char *rx;           /* -x */
	const char *flist;        /* -i FILE, "-" for stdin */
	int recursion;            /* -r N; -1 when not given */
	int no_recurse;           /* -l */
	/* which options were given, to refuse those the target's compileall lacks */
	int given_o, given_s, given_p, given_e, given_hardlink, given_inval;
	int compile_path;         /* compileall with no paths: compile sys.path */
	int sys_path;             /* compile --sys-path: the target's sys.path too (sys-path.h) */
	const char *pycache_prefix; /* --pycache-prefix: overrides the target's */
	const char *cache_dir;      /* --cache-dir */
	const char *cache_max_size; /* --cache-max-size */
	int no_cache;               /* --no-cache */
	int cache_shared;           /* --cache-shared */
	int no_build_log;           /* --no-build-log */
	struct option_list remote_caches; /* --remote-cache URL... */
	int remote_read_only;       /* --remote-cache-read-only */
	int remote_only;            /* --remote-cache-only */
	const char *remote_timeout, *remote_connect_timeout; /* --remote-cache-[connect-]timeout */
};

#define DRIVER_OPTS_INIT { .e = ENGINE_OPTS_INIT, .recursion = -1 }

int driver_run(struct driver_opts *d, int npaths, const char **paths);

/*
 * The one default-target rule of every command: with no --python given,
 * `pythons` gets target_default_python() ($VIRTUAL_ENV/bin/python, else
 * python3); given ones are left alone.
 */
void driver_default_target(struct option_list *pythons);

/* The pieces, for the commands that do not compile (check, clean). */
int driver_check_target(const struct driver_opts *d, const struct target *t);
int driver_apply_prefix(const struct driver_opts *d, struct target *t);
int driver_eval_rx(const struct driver_opts *d, const struct target *t,
		   const struct source_list *list, unsigned char **skip);

/*
 * The sys.path of `python -m compileall` for target `t` into dirs->v (new
 * strings): first what -m puts there (the working directory; '' up to
 * 3.6; nothing with PYTHONSAFEPATH on 3.11+), then the entries `python -c`
 * has after its first.  With `plain` (--sys-path, sys-path.h) the target
 * runs with -B and imports nothing but what site imports; otherwise it
 * imports argparse and compileall first, as `-m compileall` does.  0, or
 * -1 after an error message.
 */
int driver_sys_path(const struct target *t, int plain, struct option_list *dirs);

/* Parse an --invalidation-mode value; -1 if it is not one. */
int parse_invalidation(const char *s);

#endif
