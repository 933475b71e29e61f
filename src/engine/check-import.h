/*
 * check-import.h - `prepyc check --import MODULE`: import the modules in the
 * target interpreter and record what the imports compiled or wrote, and
 * where every module loaded came from.  check-report.h prints the result.
 *
 * Calling sequence, once per target (CPython 3.8+: audit hooks):
 *
 *   struct import_result r = IMPORT_RESULT_INIT;
 *   if (import_check_run(&r, t, &mods, npaths, paths, out_fd) == 0) {
 *       import_check_warn(&r, strict, quiet);
 *       ... r.found, r.mods, r.args ..., import_check_problems(&r, strict)
 *   }
 *   import_check_release(&r);
 *
 * import_check_run() runs src/python/importcheck.py with the caller's
 * environment and working directory, stdin, stderr and (out_fd -1) stdout
 * or out_fd as its stdout (`--json` and `-z` pass 2: stdout holds only the
 * report); the application's import-time code runs.  The program reports
 * on its fd 3, one record a line, "KIND\tTEXT\n" (fields of TEXT separated
 * by tabs, the last one may hold tabs):
 *
 *   import\tNAME               the next argument is being imported: what
 *                              follows, up to the next import, is its
 *   compile\tFILE              a source compiled
 *   write\tFILE                a bytecode file opened for writing
 *   lazy\tIMPORTER\tNAME       a lazy import (3.15+, PEP 810) made eager
 *   module\tNAME\tWHERE\tFILE  a module loaded during the check; WHERE is
 *                              stdlib (the target's standard library, not a
 *                              site-packages in it), file, or none (no
 *                              file: built-in, frozen, namespace; FILE empty)
 *   error\tNAME\tTYPE: MESSAGE the import of argument NAME failed
 *   done\tN                    all N arguments were attempted
 *
 * A module of WHERE "file" is IMPORT_TREE when its file (resolved) is under
 * one of `paths` (resolved; with no paths, the working directory), else
 * IMPORT_OUTSIDE: the check did not prove the tree it was given.  A source
 * compiled whose file is that of a module loaded through a lazy import
 * made eager is marked with its importer (lazy_of).
 *
 * Errors: import_check_run() returns -1 after printing an error when the
 * check could not run (the target is older than 3.8, the process could not
 * start); a process that ended before "done" or with another status than 0
 * or 1 is reported (error()) and counted as a problem, not a -1.
 * import_check_warn() prints on stderr one warning per module loaded from
 * outside the checked paths (one for a package and its submodules), an
 * error with `strict`; nothing with quiet >= 2.
 *
 * Ownership: the result's strings are its own; it points to `t` and to
 * the module names of `mods`, which must outlive it.
 */
#ifndef CHECK_IMPORT_H
#define CHECK_IMPORT_H

#include <stddef.h>

#include "options.h"
#include "target.h"

enum import_where {
	IMPORT_NOFILE,  /* built-in, frozen, namespace package */
	IMPORT_STDLIB,  /* a file of the target's standard library */
	IMPORT_TREE,    /* a file under the checked paths */
	IMPORT_OUTSIDE, /* any other file */
};

struct import_module {
	char *name;
	char *file;            /* NULL for IMPORT_NOFILE */
	enum import_where where;
	const char *lazy_of;   /* imported lazily (made eager) by this module; else NULL */
	size_t arg;            /* the argument being imported when it was loaded (or 0) */
};

struct import_found {
	char *path;
	int write;             /* 0: a source compiled; 1: a bytecode write attempted */
	const char *lazy_of;   /* compile: of a module imported lazily by this one; else NULL */
	size_t arg;            /* the argument being imported (before the first: 0) */
};

struct import_arg {
	const char *name;      /* as given */
	char *error;           /* "TYPE: MESSAGE" when its import failed, else NULL */
	int attempted;
};

struct import_lazy {
	char *importer, *name;
};

struct import_result {
	const struct target *t;
	struct import_arg *args;
	size_t nargs;
	struct import_module *mods;
	size_t nmods, amods;
	struct import_found *found;
	size_t nfound, afound;
	struct import_lazy *lazy;
	size_t nlazy, alazy;
	/* counts */
	size_t nimported, nfailed, ncompiled, nwritten, noutside;
	int npaths;            /* the paths the check was given (0: the working directory) */
	int finished;          /* it reached "done" and exited 0 or 1 */
	char status[128];      /* how the process ended, when it did not finish */
};

#define IMPORT_RESULT_INIT { NULL }

int import_check_run(struct import_result *r, const struct target *t,
		     const struct option_list *mods, int npaths, const char **paths, int out_fd);

/*
 * One warning (an error with `strict`) on stderr per outside module whose
 * parent package is not outside too; nothing with quiet >= 2.
 */
void import_check_warn(const struct import_result *r, int strict, int quiet);

/*
 * What fails the check: sources compiled, writes attempted, imports that
 * failed, a check that did not finish, and with `strict` outside modules.
 */
size_t import_check_problems(const struct import_result *r, int strict);

void import_check_release(struct import_result *r);

#endif
