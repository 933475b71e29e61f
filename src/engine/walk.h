/*
 * walk.h - find what to compile, exactly as compileall does.
 *
 * For each PATH argument: a regular file (or a symlink to one) is
 * considered on its own; anything else is walked as a directory.  In a
 * directory, "__pycache__" is skipped, real subdirectories are entered while
 * `maxlevels` allows (symlinked directories never are), and every other
 * entry is a file compileall considers; those whose name ends exactly in
 * ".py" and that are regular files, or symlinks to regular files, are
 * sources.  FIFOs, sockets and devices are never opened.
 *
 * An entry's path is os.path.join(dir, name) built from the argument as
 * given: it is what compileall uses for co_filename and prints.  The list
 * is in compileall's order (a depth-first walk over sorted names), each
 * directory before its contents.
 *
 * By default only sources are listed and problems are reported as errors
 * (the `prepyc compile` view).  WALK_COMPILEALL lists directories (with
 * the errno of a failed listing, reported by nobody: compileall prints
 * "Can't list") and the other files too, and treats an argument that is
 * not a file as a directory even when it does not exist.
 *
 * walk_path() appends to `list` and returns the number of errors it
 * reported.  Each entry records its depth, so that callers serving targets
 * with different compileall defaults can walk once, deep enough, and keep
 * per target the entries with depth <= that target's `maxlevels`.
 */
#ifndef WALK_H
#define WALK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum entry_kind {
	ENTRY_SOURCE,    /* a .py regular file (or symlink to one) */
	ENTRY_OTHER,     /* anything else compileall would pass to compile_file */
	ENTRY_DIR,       /* a directory that was listed */
	ENTRY_DIR_ERROR, /* a directory that could not be listed: `err` says why */
	ENTRY_CACHED,    /* WALK_PYCACHE: a *.pyc in a real __pycache__ directory */
	ENTRY_LEGACY,    /* WALK_PYCACHE: a *.pyc outside __pycache__ (legacy layout) */
	ENTRY_PYCACHE,   /* WALK_PYCACHE: a real __pycache__ directory (listed before its pycs) */
};

struct source {
	char *path;
	uint64_t size;
	int64_t mtime_sec;
	long mtime_nsec;
	mode_t mode;
	int64_t ctime_ns;     /* st_ctim, for the build log (buildlog.h) */
	uint64_t dev, ino;    /* sources: the file's identity */
	int depth;            /* directories between the argument and the entry */
	int err;              /* ENTRY_DIR_ERROR: the errno */
	unsigned char kind;   /* enum entry_kind */
	unsigned char is_link;
	/*
	 * A source whose directory had no __pycache__ when the walk listed it
	 * (or the walk log replayed its names): no pyc of it can be there, and
	 * the plan does not look.  0 also when unknown (a file argument).
	 */
	unsigned char no_pycache;
	unsigned char top;    /* the argument itself */
	size_t arg_len;       /* from a directory argument: its length (path starts with it); else 0 */
};

struct source_list {
	struct source *v;
	size_t nr, alloc;
	int64_t started_ns; /* CLOCK_REALTIME before the first walk_path() stat'ed anything */
};

#define SOURCE_LIST_INIT { NULL, 0, 0, 0 }

enum walk_flags {
	WALK_COMPILEALL = 1 << 0,
	/*
	 * Also list the pyc files: those in real (not symlinked) __pycache__
	 * directories as ENTRY_CACHED, the others as ENTRY_LEGACY, both with
	 * their lstat (a symlink is reported, never followed).  For check and clean.
	 */
	WALK_PYCACHE = 1 << 1,
	/* Count the errors (the return value) but print nothing (-qq). */
	WALK_QUIET = 1 << 2,
};

/* Deeper than any compileall default, shallow enough for our stack. */
#define WALK_MAX_DEPTH 10000

int walk_path(const char *arg, int maxlevels, unsigned flags, struct source_list *list);

/*
 * walk_path() with a walk log (walklog.h; NULL: none): a directory whose
 * stat data the log has unchanged is not listed again, its names are
 * taken from the log; the others' listings are recorded in it.  The
 * result is walk_path()'s.
 */
struct walklog;
int walk_path_log(const char *arg, int maxlevels, unsigned flags, struct source_list *list,
		  struct walklog *log);
void source_list_release(struct source_list *list);

/* Does `name` end exactly in ".py"? */
int is_py_name(const char *name);
/* compileall's walk order of two paths from one argument (<0, 0, >0): a total order. */
int walk_path_cmp(const char *a, const char *b);

#endif
