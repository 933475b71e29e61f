/*
 * target.h - a target interpreter: the Python whose bytecode we write.
 *
 * target_probe() runs the interpreter once (src/python/facts.py, with the
 * caller's environment), or takes what such a run reported from the facts
 * cache (factscache.h), and records what the core needs: version, magic
 * number, cache tag, sys.pycache_prefix, the -O level, the recursion limit.
 * It refuses, with a message and -1, an interpreter that cannot be run,
 * that is Python 2 or older than 3.6, or that has no bytecode cache.
 *
 * t->worker_argv, set by a successful probe, is the command line of a
 * worker process for it (the interpreter running src/python/worker.py).
 * Memory: everything in a struct target is owned by it; target_release().
 */
#ifndef TARGET_H
#define TARGET_H

#include "child.h"
#include "pyc.h"
#include "strbuf.h"

struct target {
	char *python;         /* as given on the command line (or the default) */
	char *executable;     /* what workers run: sys.executable, else `python` */
	char *version;        /* "3.11.7" */
	int major, minor, micro;
	char *implementation; /* sys.implementation.name: "cpython", "pypy" */
	char *impl_version;   /* PyPy's own version, else NULL */
	char *build;          /* sys.version: version, build date, compiler */
	char *cache_tag;
	char *pycache_prefix; /* NULL when unset */
	int optimize;         /* sys.flags.optimize under the caller's environment */
	int gil_disabled;     /* a free-threaded build (Py_GIL_DISABLED: 3.13t, 3.14t...) */
	int recursion_limit;
	int has_hash_pycs;    /* 3.7+, and its source hash is one we compute */
	int hash_kind;        /* enum source_hash_kind */
	char *display;        /* "CPython 3.11.7" */
	char *cwd;
	struct pyc_format fmt;
	struct pyc_layout layout;
	const char **worker_argv; /* NULL-terminated */

	/* private: the probe while it runs, or the facts from the cache */
	struct child probe;
	int probe_fd;
	int probe_err_fd;     /* an unlinked temporary file for its stderr, or -1 */
	int cacheable;
	char *facts_dir; /* the cache directory the facts are kept in, or NULL */
	unsigned facts_flags; /* trustdir.h's flags for it (TRUST_SHARED) */
	struct strbuf cache_key;
	struct strbuf cached;
};

/*
 * The default target: $PREPYC_PYTHON when set and not empty (`python -m
 * prepyc` sets it to that interpreter), else $VIRTUAL_ENV/bin/python, else
 * python3 on PATH.
 */
const char *target_default_python(void);

/*
 * Probe `python`; 0, or -1 after printing why it cannot be a target.  The
 * facts are cached in the default cache directory (cachedir.h; shared as
 * $PREPYC_CACHE_SHARED says).
 */
int target_probe(struct target *t, const char *python);

/*
 * The same in two steps, so the caller can work while the interpreter
 * starts: start() launches the probe (-1 if it cannot be run), finish()
 * collects it.  After a failed finish() the target is released.
 * `cache_dir` is the --cache-dir option (NULL when not given): the facts
 * are cached in the directory cache_dir_resolve(cache_dir) names, under
 * trustdir.h's rule with `cache_flags` (TRUST_SHARED for
 * --cache-shared).
 */
int target_probe_start(struct target *t, const char *python, const char *cache_dir,
		       unsigned cache_flags);
int target_probe_finish(struct target *t);
void target_release(struct target *t);

/* Is the target at least version major.minor.micro? */
int target_at_least(const struct target *t, int major, int minor, int micro);

/* compileall's default recursion depth for this target's version. */
int target_default_maxlevels(const struct target *t);

#endif
