/*
 * check-report.h - the two reports of `prepyc check` (check.h's result).
 *
 * check_report_text(): one line per problem, "SOURCE: status (PYC: detail)"
 * ("SOURCE: missing (PYC)" for a missing pyc), the source first because it
 * is what a person fixes; then the orphan and sourceless pycs
 * ("PYC: orphan (no source SOURCE)"), then unless `quiet` (or with no
 * `summary`) one summary line; nothing at all with quiet >= 2.
 *
 * check_report_null(): `check -z`, for scripts (file names may hold a
 * newline): the path of every source with a problem, once, in walk order,
 * each followed by a NUL byte; with `strict` then every orphan and
 * sourceless pyc, the same way.  Nothing else.
 *
 * check_report_imports_text(): `check --import` for one target
 * (check-import.h): "FILE: compiled at import (TARGET)" per source
 * compiled ("(lazy import of IMPORTER)" before the target when a lazy
 * import made eager loaded it), "FILE: bytecode write attempted at import
 * (TARGET)" per write, "MODULE: import failed: TYPE: MESSAGE" per failed
 * argument; with `verbose` "MODULE: loaded from FILE (TARGET)" (or
 * "loaded, no file") per module loaded; unless `quiet` one summary line
 * with the real counts: "prepyc: check --import: [N of ]M modules imported
 * [(K failed)], L loaded, C sources compiled at import, W bytecode writes
 * attempted[, Z lazy imports made eager][, O from outside the checked
 * paths][, did not finish] (TARGET)".  Nothing with quiet >= 2.
 * check_report_imports_null(): `check -z --import`: the sources compiled
 * at import, each followed by a NUL byte.
 *
 * check_report_json(): the whole result as one JSON document: "ok" (the
 * caller says: it agrees with the exit status), the "targets", the
 * "counts" per status, every verdict in "files", the "orphans" and the
 * "sourceless" pycs, and with --import (nimports > 0) "imports": per
 * target its "python", "finished", "status" (how it ended when it did
 * not finish, else null), "counts" (imported, failed, loaded, compiled,
 * written, lazy, outside) and "modules": per argument its "module",
 * "imported", "error", the sources "compiled" at its import ("source",
 * "lazy_import_of"), the pycs "written", and every module "loaded" with
 * its "file", "where" (tree, stdlib, outside, none) and "lazy_import_of".  Paths are JSON strings of what
 * Python sees with surrogateescape: valid UTF-8 as is, any other byte B as
 * \udcBB.
 *
 * Both write to `fp` and cannot fail (stdio reports write errors).
 */
#ifndef CHECK_REPORT_H
#define CHECK_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "check-import.h"
#include "check.h"

void check_report_text(FILE *fp, const struct check_result *c, const struct target *targets,
		       size_t ntargets, int quiet, int summary);

void check_report_null(FILE *fp, const struct check_result *c, int strict);

void check_report_imports_text(FILE *fp, const struct import_result *r, int quiet, int verbose);
void check_report_imports_null(FILE *fp, const struct import_result *r);

void check_report_json(FILE *fp, const struct check_result *c, const struct target *targets,
		       size_t ntargets, const struct import_result *imports, size_t nimports,
		       int ok);

#endif
