/*
 * cachedir.h - where prepyc keeps what it remembers between runs: the one
 * rule for the cache directory, shared by the bytecode cache (cache.h,
 * DIR/v1 and DIR/stats) and the targets' facts cache (factscache.h,
 * DIR/targets).
 *
 * The directory is the --cache-dir option when given (not empty), else
 * $PREPYC_CACHE_DIR (not empty), else $XDG_CACHE_HOME/prepyc (an absolute
 * XDG_CACHE_HOME only: the XDG spec says to ignore a relative one), else
 * $HOME/.cache/prepyc (HOME not empty).  Nothing is created or checked
 * here: whoever uses the directory checks who may write it (trustdir.h)
 * and deals with it not existing or not writable.
 *
 * A cache shared by a group is asked for by --cache-shared, or by
 * $PREPYC_CACHE_SHARED set to anything but "" or "0" (so that a team sets
 * it beside $PREPYC_CACHE_DIR): cache_dir_shared().
 */
#ifndef CACHEDIR_H
#define CACHEDIR_H

/*
 * The cache directory for the --cache-dir value `opt` (NULL when not
 * given), as above: a new string, or NULL when none can be determined
 * (no option, no variables, no HOME).
 */
char *cache_dir_resolve(const char *opt);

/* Whether the cache is a group's: `opt` (--cache-shared given), else $PREPYC_CACHE_SHARED. */
int cache_dir_shared(int opt);

#endif
