/*
 * inventory.h - the pycs a tree has and the pycs it should have; shared by
 * `prepyc check` and `prepyc clean`.
 *
 * What a tree should have: inventory_expected() lists, for one source and
 * one target, the pyc path of each optimization level asked for.  It is the
 * ONE place check and clean decide "which pycs for this source" (PLANNING
 * HOOK: to be replaced by the engine's plan, which decides the same for
 * compile).
 *
 * What a tree has: inventory_build() takes a list walked with WALK_PYCACHE
 * (walk.h) and records, in the list's order, every pyc it holds with the
 * source it belongs to and whether that source exists:
 *
 *   - an orphan is a __pycache__ pyc of a well-formed name
 *     (pycache_name_parts()) whose source is gone (inventory_is_orphan());
 *   - a sourceless pyc is a legacy SOURCE.pyc with no SOURCE.py beside it:
 *     the import system still imports it (inventory_is_sourceless()).
 *
 * Calling sequence:
 *
 *   struct inventory inv = INVENTORY_INIT;
 *   inventory_build(&inv, &list);    ... inv.v[0..inv.nr) ...
 *   inventory_release(&inv);
 *
 * Ownership: the inventory points into `list` (entry), which must outlive
 * it; the source paths are its own.  Nothing here prints or fails: a source
 * that cannot be stat()ed counts as gone, as the import system sees it.
 */
#ifndef INVENTORY_H
#define INVENTORY_H

#include <stddef.h>

#include "engine.h"
#include "target.h"
#include "walk.h"

struct inventory_pyc {
	const struct source *entry; /* the pyc as walked (ENTRY_CACHED or ENTRY_LEGACY) */
	char *tag;                  /* __pycache__: the cache tag of its name; else NULL */
	/*
	 * The source it belongs to (path NULL for a __pycache__ name of another
	 * shape); size and mtime from stat() when has_source.
	 */
	struct source source;
	unsigned char has_source;
	unsigned char legacy;       /* ENTRY_LEGACY: SOURCE.pyc beside SOURCE.py */
};

struct inventory {
	struct inventory_pyc *v;
	size_t nr, alloc;
};

#define INVENTORY_INIT { NULL, 0, 0 }

/* Record every ENTRY_CACHED and ENTRY_LEGACY of `list`, in order (stats each source once). */
void inventory_build(struct inventory *inv, const struct source_list *list);
void inventory_release(struct inventory *inv);

/* A __pycache__ pyc whose source is gone. */
int inventory_is_orphan(const struct inventory_pyc *p);
/* A legacy pyc with no source beside it (importable on its own). */
int inventory_is_sourceless(const struct inventory_pyc *p);

struct expected_pyc {
	int level;  /* the optimization level (-1 resolved to the target's own) */
	char *path; /* the pyc's path; the caller frees it */
};

/*
 * PLANNING HOOK - the pycs `src` should have for target `t`: one per
 * distinct level of levels[0..nlevels) in order (-1 is the target's own -O
 * level; no levels: just that one), at the path importlib's
 * cache_from_source() gives under t->layout; with `legacy`, the single
 * SOURCE.pyc beside the source, for the first level only.  Fills out[] and
 * returns how many (at most ENGINE_MAX_LEVELS; nlevels must not exceed it).
 */
size_t inventory_expected(const struct target *t, const char *src, const int *levels, int nlevels,
			  int legacy, struct expected_pyc out[ENGINE_MAX_LEVELS]);

#endif
