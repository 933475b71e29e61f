/*
 * walk.h - find the sources to compile, exactly as compileall does.
 *
 * For each PATH argument: a regular file (or a symlink to one) is a source
 * when its name ends in ".py"; anything else is walked as a directory.  In
 * a directory, names are sorted, "__pycache__" is skipped, real
 * subdirectories are entered while `maxlevels` allows (symlinked
 * directories never are), and entries whose name ends exactly in ".py" and
 * that are regular files, or symlinks to regular files, are sources.
 * FIFOs, sockets and devices are never opened.
 *
 * A source's path is os.path.join(dir, name) built from the argument as
 * given: it is what compileall uses for co_filename.
 *
 * walk_path() appends to `list` and returns the number of errors it
 * reported (a missing argument, a directory that cannot be listed).
 * Each source records its depth, so that callers serving targets with
 * different compileall defaults can walk once with the largest `maxlevels`
 * and keep, per target, the sources with depth <= that target's.
 */
#ifndef WALK_H
#define WALK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct source {
	char *path;
	uint64_t size;
	int64_t mtime_sec;
	long mtime_nsec;
	mode_t mode;
	int depth; /* directories between the argument and the file */
};

struct source_list {
	struct source *v;
	size_t nr, alloc;
};

#define SOURCE_LIST_INIT { NULL, 0, 0 }

/* Deeper than any compileall default, shallow enough for our stack. */
#define WALK_MAX_DEPTH 10000

int walk_path(const char *arg, int maxlevels, struct source_list *list);
void source_list_release(struct source_list *list);

/* Does `name` end exactly in ".py"? */
int is_py_name(const char *name);

#endif
