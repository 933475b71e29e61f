/*
 * sys-path.h - `--sys-path` of `prepyc compile` and `prepyc check`: every
 * directory of the target's sys.path, walked recursively, besides the
 * PATHs given.
 *
 * Which directories (sys_path_dirs()): the entries of the target's
 * sys.path as its `python -c` sees them with the caller's environment and
 * site (the standard library, site-packages, .pth additions, PYTHONPATH),
 * less the working directory and '' (the application is given as PATH),
 * less what is not a directory (zip files) or does not exist, each
 * directory once, and none inside another one kept (a site-packages
 * inside the standard library's directory is walked with it).  Unlike
 * `python -m compileall` with no argument (its compile_path: the top level
 * of each entry only, maxlevels=0), the directories are walked as PATHs
 * are.
 *
 * Calling sequence of compile, per target:
 *
 *   struct source_list list = SOURCE_LIST_INIT;
 *   rc = sys_path_compile_list(d, t, &paths_list, &list);
 *   ... engine_run(&e, t, &list, ...) ...
 *   source_list_release(&list);
 *
 * and of check, which walks once for all its targets:
 *
 *   owner = sys_path_check_walk(targets, nt, maxlevels, &list, &rc);
 *   sys_path_check_skips(d, owner, targets, nt, &list, skips);
 *       (per target k: skips[k] from -x, then sys_path_mark_skips(owner, list.nr, k, &skips[k]))
 *   ... check_tree(&c, &opts, targets, nt, &list, skips) ...
 *   free(owner);
 *
 * sys_path_compile_list() copies the PATHs' list and appends the walk of
 * each directory.  A directory the caller cannot write in (access()) is
 * not walked into the list: when some pyc in it is missing or stale for
 * the target, that is ONE error naming it (not one per file), and the
 * return value counts it; when all are fresh, nothing is said.
 *
 * Errors: both return -1 after an error message when the target's sys.path
 * cannot be read.
 */
#ifndef SYS_PATH_H
#define SYS_PATH_H

#include "driver.h"
#include "options.h"
#include "target.h"
#include "walk.h"

/* The directories, appended to dirs as new strings (free each, then option_list_release()). */
int sys_path_dirs(const struct target *t, struct option_list *dirs);

/* The list compile runs for `t`; the number of directories refused (0, 1...), or -1. */
int sys_path_compile_list(const struct driver_opts *d, const struct target *t,
			  const struct source_list *paths, struct source_list *out);

/*
 * check: walk every target's directories into `list` with WALK_PYCACHE;
 * returns who owns each entry of the list (0: the PATHs walked before, k +
 * 1: target k's sys.path), to free.  *rc becomes 2 when a sys.path cannot
 * be read, else 1 when a directory could not be walked.
 */
size_t *sys_path_check_walk(const struct target *targets, size_t nt, int maxlevels,
			    struct source_list *list, int *rc);

/*
 * Mark in *skip (allocated, n bytes, when NULL) the entries another target
 * than k owns: each target is checked on its own sys.path only.
 */
void sys_path_mark_skips(const size_t *owner, size_t n, size_t k, unsigned char **skip);

/*
 * check's skips, per target k: skips[k] from -x (driver_eval_rx(), when
 * d->rx) and, with `owner`, sys_path_mark_skips(); NULLs without either.
 * 0, or -1 after an error.
 */
int sys_path_check_skips(const struct driver_opts *d, const size_t *owner,
			 const struct target *targets, size_t nt, const struct source_list *list,
			 unsigned char **skips);

#endif
