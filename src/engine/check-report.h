/*
 * check-report.h - the two reports of `prepyc check` (check.h's result).
 *
 * check_report_text(): one line per problem, "PATH: status (detail)"
 * ("SOURCE: missing (PYC)" for a missing pyc), then the orphan and
 * sourceless pycs, then unless `quiet` (or with no `summary`) one summary
 * line; nothing at all with quiet >= 2.
 *
 * check_report_json(): the whole result as one JSON document: "ok", the
 * "targets", the "counts" per status, every verdict in "files", the
 * "orphans" and the "sourceless" pycs.  Paths are JSON strings of what
 * Python sees with surrogateescape: valid UTF-8 as is, any other byte B as
 * \udcBB.
 *
 * Both write to `fp` and cannot fail (stdio reports write errors).
 */
#ifndef CHECK_REPORT_H
#define CHECK_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "check.h"

void check_report_text(FILE *fp, const struct check_result *c, const struct target *targets,
		       size_t ntargets, int quiet, int summary);

void check_report_json(FILE *fp, const struct check_result *c, const struct target *targets,
		       size_t ntargets, int ok);

#endif
