/*
 * inventory.h - the pycs a tree has and the pycs it should have; shared by
 * `prepyc check` and `prepyc clean`.
 *
 * Which pycs a source should have is not decided here but by the engine's
 * plan (plan.h), for check as for compile; this is the other direction:
 * which source, cache tag and level a pyc found in the tree belongs to.
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
 * inventory_build_with() is the same with another way to find a source:
 * stat_fn(ctx, source) fills source->size and mtime from source->path and
 * returns 0, or -1 when there is no such source (a bundle's, bundle.h).
 * It is called on a few threads at once (parallel.h), for distinct sources.
 *
 * A source the walk listed (ENTRY_SOURCE) is not stat()ed again: its
 * walk's stat data serve.
 *
 * Ownership: the inventory points into `list` (entry), which must outlive
 * it; the source paths are its own.  Nothing here prints or fails: a source
 * that cannot be stat()ed counts as gone, as the import system sees it.
 */
#ifndef INVENTORY_H
#define INVENTORY_H

#include <stddef.h>

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
	/*
	 * __pycache__: the optimization level its name says (".opt-N" 1 or 2,
	 * none 0); -1 for any other ".opt-" suffix and for legacy pycs.
	 */
	int level;
};

struct inventory {
	struct inventory_pyc *v;
	size_t nr, alloc;
};

#define INVENTORY_INIT { NULL, 0, 0 }

/* Record every ENTRY_CACHED and ENTRY_LEGACY of `list`, in order (stats each source once). */
void inventory_build(struct inventory *inv, const struct source_list *list);
void inventory_build_with(struct inventory *inv, const struct source_list *list,
			  int (*stat_fn)(void *ctx, struct source *s), void *ctx);
void inventory_release(struct inventory *inv);

/* A __pycache__ pyc whose source is gone. */
int inventory_is_orphan(const struct inventory_pyc *p);
/* A legacy pyc with no source beside it (importable on its own). */
int inventory_is_sourceless(const struct inventory_pyc *p);

#endif
