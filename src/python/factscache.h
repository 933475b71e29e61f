/*
 * factscache.h - remember what a target interpreter told us, so that a run
 * where nothing needs compiling starts no interpreter at all.
 *
 * An entry is keyed by everything the facts depend on: the interpreter as
 * given, the file it resolves to (device, inode, size, mtime, and the same
 * for the path itself when it is a symlink, as a virtualenv's is), and every
 * PYTHON* variable of the environment.  Interpreters that are scripts (pyenv
 * shims, wrappers: files starting with "#!") are never cached: what they run
 * depends on more than we can see.
 *
 * Entry file: DIR/targets/HHHHHHHHHHHHHHHH (FNV-1a of the key), holding
 *   "prepyc-facts 2\n" key "\0" facts
 * where facts is facts.py's output verbatim.  The key is compared in full
 * on lookup, so a hash collision is a miss.  DIR is the cache directory
 * (cachedir.h: the bytecode cache's, --cache-dir when given), passed in by
 * the caller; NULL (none could be determined) means no facts cache.  Every
 * failure (no directory, read-only cache) is a silent miss: the cache only
 * saves time.
 *
 * Trust: a facts entry decides what is compiled and where it is written,
 * so DIR, DIR/targets and the entry (judged on the open descriptor) must
 * pass trustdir.h's rule (`flags`: TRUST_SHARED or 0); anything else is a
 * miss (traced: the bytecode cache's opening gives the run's warning), the
 * target is probed again, and its facts are stored only in a directory
 * that passes (DIR/targets made in trustdir.h's modes).
 */
#ifndef FACTSCACHE_H
#define FACTSCACHE_H

#include "strbuf.h"

/* Build the key for `python` into `key`; -1 if this interpreter must not be cached. */
int factscache_key(const char *python, struct strbuf *key);

/* 1 and the facts appended to `facts` on a hit in DIR `dir`, else 0 (always when `dir` is NULL). */
int factscache_get(const char *dir, unsigned flags, const struct strbuf *key,
		   struct strbuf *facts);

/* Store in DIR `dir` (nothing when NULL); failures are ignored. */
void factscache_put(const char *dir, unsigned flags, const struct strbuf *key,
		    const struct strbuf *facts);

#endif
