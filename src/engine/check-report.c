/*
 * check-report.c - `prepyc check`'s text and JSON reports (see check-report.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "check-report.h"

#include <stdlib.h>

#include "util.h"
#include "banned.h"

static void text_summary(FILE *fp, const struct check_result *c, const struct target *targets,
			 size_t ntargets)
{
	size_t k, ok = c->counts[PYC_OK], bad = c->nr - ok;
	int i;

	fprintf(fp, "%s: check: %zu source%s, %zu pyc%s ok, %zu problem%s", progname,
		c->nsources, c->nsources == 1 ? "" : "s", ok, ok == 1 ? "" : "s", bad,
		bad == 1 ? "" : "s");
	for (i = 1; i < PYC_NSTATUS; i++)
		if (c->counts[i])
			fprintf(fp, ", %zu %s", c->counts[i], pyc_status_name((enum pyc_status)i));
	fprintf(fp, "; %zu orphan%s, %zu sourceless (", c->norphans, c->norphans == 1 ? "" : "s",
		c->nsourceless);
	for (k = 0; k < ntargets; k++)
		fprintf(fp, "%s%s", k ? ", " : "", targets[k].display);
	fprintf(fp, ")\n");
}

void check_report_text(FILE *fp, const struct check_result *c, const struct target *targets,
		       size_t ntargets, int quiet, int summary)
{
	size_t k;

	if (quiet >= 2)
		return;
	for (k = 0; k < c->nr; k++) {
		const struct check_verdict *v = &c->v[k];

		if (v->status == PYC_OK)
			continue;
		/* the source first: it is what a person fixes (recompiles) */
		if (v->status == PYC_MISSING || !v->detail)
			fprintf(fp, "%s: %s (%s)\n", v->src->path, pyc_status_name(v->status), v->pyc);
		else
			fprintf(fp, "%s: %s (%s: %s)\n", v->src->path, pyc_status_name(v->status),
				v->pyc, v->detail);
	}
	for (k = 0; k < c->inv.nr; k++)
		if (inventory_is_orphan(&c->inv.v[k]))
			fprintf(fp, "%s: orphan (no source %s)\n", c->inv.v[k].entry->path,
				c->inv.v[k].source.path);
	for (k = 0; k < c->inv.nr; k++)
		if (inventory_is_sourceless(&c->inv.v[k]))
			fprintf(fp, "%s: sourceless (importable with no %s)\n",
				c->inv.v[k].entry->path, c->inv.v[k].source.path);
	if (!quiet && summary)
		text_summary(fp, c, targets, ntargets);
}

static const char *plural(size_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

static size_t lazy_loaded(const struct import_result *r)
{
	size_t k, n = 0;

	for (k = 0; k < r->nmods; k++)
		n += r->mods[k].lazy_of != NULL;
	return n;
}

static void import_summary(FILE *fp, const struct import_result *r)
{
	size_t lazy = lazy_loaded(r);

	fprintf(fp, "%s: check --import: ", progname);
	if (r->nimported != r->nargs)
		fprintf(fp, "%zu of ", r->nimported);
	fprintf(fp, "%zu %s imported", r->nargs, plural(r->nargs, "module", "modules"));
	if (r->nfailed)
		fprintf(fp, " (%zu failed)", r->nfailed);
	fprintf(fp, ", %zu loaded, %zu %s compiled at import, %zu bytecode %s attempted",
		r->nmods, r->ncompiled, plural(r->ncompiled, "source", "sources"), r->nwritten,
		plural(r->nwritten, "write", "writes"));
	if (lazy)
		fprintf(fp, ", %zu lazy %s made eager", lazy, plural(lazy, "import", "imports"));
	if (r->noutside)
		fprintf(fp, ", %zu from outside %s", r->noutside,
			r->npaths ? "the checked paths" : "the working directory");
	if (!r->finished)
		fprintf(fp, ", did not finish");
	fprintf(fp, " (%s)\n", r->t->display);
}

void check_report_imports_text(FILE *fp, const struct import_result *r, int quiet, int verbose)
{
	const char *t = r->t->display;
	size_t k;

	if (quiet >= 2)
		return;
	for (k = 0; k < r->nfound; k++) {
		const struct import_found *x = &r->found[k];

		if (x->write)
			fprintf(fp, "%s: bytecode write attempted at import (%s)\n", x->path, t);
		else if (x->lazy_of)
			fprintf(fp, "%s: compiled at import (lazy import of %s) (%s)\n", x->path,
				x->lazy_of, t);
		else
			fprintf(fp, "%s: compiled at import (%s)\n", x->path, t);
	}
	for (k = 0; k < r->nargs; k++)
		if (r->args[k].error)
			fprintf(fp, "%s: import failed: %s\n", r->args[k].name, r->args[k].error);
	for (k = 0; k < r->nmods && verbose; k++) {
		const struct import_module *m = &r->mods[k];
		char lazy[256] = "";

		if (m->lazy_of)
			snprintf(lazy, sizeof(lazy), " (lazy import of %s)", m->lazy_of);
		if (m->file)
			fprintf(fp, "%s: loaded from %s%s (%s)\n", m->name, m->file, lazy, t);
		else
			fprintf(fp, "%s: loaded, no file%s (%s)\n", m->name, lazy, t);
	}
	if (!quiet)
		import_summary(fp, r);
}

void check_report_imports_null(FILE *fp, const struct import_result *r)
{
	size_t k;

	for (k = 0; k < r->nfound; k++)
		if (!r->found[k].write)
			fprintf(fp, "%s%c", r->found[k].path, '\0');
}

static int cmp_source_ptr(const void *a, const void *b)
{
	const struct source *x = *(const struct source *const *)a;
	const struct source *y = *(const struct source *const *)b;

	return (x > y) - (x < y);
}

void check_report_null(FILE *fp, const struct check_result *c, int strict)
{
	const struct source **bad = xcalloc(c->nr ? c->nr : 1, sizeof(*bad));
	size_t k, n = 0;

	for (k = 0; k < c->nr; k++)
		if (c->v[k].status != PYC_OK)
			bad[n++] = c->v[k].src;
	/* the verdicts point into the walked list: address order is walk order */
	qsort(bad, n, sizeof(*bad), cmp_source_ptr);
	for (k = 0; k < n; k++)
		if (k == 0 || bad[k] != bad[k - 1])
			fprintf(fp, "%s%c", bad[k]->path, '\0');
	free(bad);
	for (k = 0; k < c->inv.nr && strict; k++)
		if (inventory_is_orphan(&c->inv.v[k]) || inventory_is_sourceless(&c->inv.v[k]))
			fprintf(fp, "%s%c", c->inv.v[k].entry->path, '\0');
}

static void json_string(FILE *fp, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', fp);
	while (*p) {
		unsigned cp;
		size_t n = utf8_decode_escaped(p, &cp);

		if (cp == '"' || cp == '\\')
			fprintf(fp, "\\%c", (int)cp);
		else if (cp < 0x20)
			fprintf(fp, "\\u%04x", cp);
		else if (cp >= 0xdc80 && cp <= 0xdcff)
			fprintf(fp, "\\u%04x", cp); /* a byte that is not UTF-8 */
		else
			fwrite(p, 1, n, fp);
		p += n;
	}
	fputc('"', fp);
}

static void json_targets(FILE *fp, const struct target *targets, size_t ntargets)
{
	size_t i;

	for (i = 0; i < ntargets; i++) {
		const struct target *t = &targets[i];

		fprintf(fp, "%s\n    {\"python\": ", i ? "," : "");
		json_string(fp, t->python);
		fprintf(fp, ", \"implementation\": ");
		json_string(fp, t->implementation);
		fprintf(fp, ", \"version\": ");
		json_string(fp, t->version);
		fprintf(fp, ", \"cache_tag\": ");
		json_string(fp, t->cache_tag);
		fprintf(fp, ", \"magic\": %u}", (unsigned)(t->fmt.magic[0] | t->fmt.magic[1] << 8));
	}
}

/* The orphan (or sourceless) pycs as the elements of a JSON array. */
static void json_pycs(FILE *fp, const struct inventory *inv,
		      int (*is)(const struct inventory_pyc *))
{
	size_t k, n = 0;

	for (k = 0; k < inv->nr; k++) {
		if (!is(&inv->v[k]))
			continue;
		fprintf(fp, "%s\n    ", n++ ? "," : "");
		json_string(fp, inv->v[k].entry->path);
	}
}

static const char *const where_names[] = { "none", "stdlib", "tree", "outside" };

static void json_or_null(FILE *fp, const char *s)
{
	if (s)
		json_string(fp, s);
	else
		fputs("null", fp);
}

/* What argument `a` of `r` compiled, wrote and loaded. */
static void json_import_arg(FILE *fp, const struct import_result *r, size_t a)
{
	size_t k, n;

	fprintf(fp, "{\"module\": ");
	json_string(fp, r->args[a].name);
	fprintf(fp, ", \"imported\": %s, \"error\": ",
		r->args[a].attempted && !r->args[a].error ? "true" : "false");
	json_or_null(fp, r->args[a].error);
	fprintf(fp, ",\n         \"compiled\": [");
	for (k = n = 0; k < r->nfound; k++) {
		if (r->found[k].arg != a || r->found[k].write)
			continue;
		fprintf(fp, "%s{\"source\": ", n++ ? ", " : "");
		json_string(fp, r->found[k].path);
		fprintf(fp, ", \"lazy_import_of\": ");
		json_or_null(fp, r->found[k].lazy_of);
		fputc('}', fp);
	}
	fprintf(fp, "],\n         \"written\": [");
	for (k = n = 0; k < r->nfound; k++) {
		if (r->found[k].arg != a || !r->found[k].write)
			continue;
		fputs(n++ ? ", " : "", fp);
		json_string(fp, r->found[k].path);
	}
	fprintf(fp, "],\n         \"loaded\": [");
	for (k = n = 0; k < r->nmods; k++) {
		const struct import_module *m = &r->mods[k];

		if (m->arg != a)
			continue;
		fprintf(fp, "%s\n           {\"module\": ", n++ ? "," : "");
		json_string(fp, m->name);
		fprintf(fp, ", \"file\": ");
		json_or_null(fp, m->file);
		fprintf(fp, ", \"where\": \"%s\", \"lazy_import_of\": ", where_names[m->where]);
		json_or_null(fp, m->lazy_of);
		fputc('}', fp);
	}
	fprintf(fp, "]}");
}

static void json_imports(FILE *fp, const struct import_result *imports, size_t nimports)
{
	size_t i, a;

	for (i = 0; i < nimports; i++) {
		const struct import_result *r = &imports[i];

		fprintf(fp, "%s\n    {\"python\": ", i ? "," : "");
		json_string(fp, r->t->python);
		fprintf(fp, ", \"finished\": %s, \"status\": ", r->finished ? "true" : "false");
		json_or_null(fp, r->finished ? NULL : r->status);
		fprintf(fp, ",\n     \"counts\": {\"imported\": %zu, \"failed\": %zu, "
			"\"loaded\": %zu, \"compiled\": %zu, \"written\": %zu, \"lazy\": %zu, "
			"\"outside\": %zu},\n     \"modules\": [", r->nimported, r->nfailed,
			r->nmods, r->ncompiled, r->nwritten, lazy_loaded(r), r->noutside);
		for (a = 0; a < r->nargs; a++) {
			fprintf(fp, "%s\n        ", a ? "," : "");
			json_import_arg(fp, r, a);
		}
		fprintf(fp, "]}");
	}
}

void check_report_json(FILE *fp, const struct check_result *c, const struct target *targets,
		       size_t ntargets, const struct import_result *imports, size_t nimports,
		       int ok)
{
	size_t i;

	fprintf(fp, "{\n  \"ok\": %s,\n  \"targets\": [", ok ? "true" : "false");
	json_targets(fp, targets, ntargets);
	fprintf(fp, "\n  ],\n  \"counts\": {");
	for (i = 0; i < PYC_NSTATUS; i++)
		fprintf(fp, "%s\"%s\": %zu", i ? ", " : "", pyc_status_name((enum pyc_status)i),
			c->counts[i]);
	fprintf(fp, ", \"orphan\": %zu, \"sourceless\": %zu},\n  \"files\": [", c->norphans,
		c->nsourceless);
	for (i = 0; i < c->nr; i++) {
		const struct check_verdict *v = &c->v[i];

		fprintf(fp, "%s\n    {\"source\": ", i ? "," : "");
		json_string(fp, v->src->path);
		fprintf(fp, ", \"pyc\": ");
		json_string(fp, v->pyc);
		fprintf(fp, ", \"cache_tag\": ");
		json_string(fp, v->t->cache_tag);
		fprintf(fp, ", \"optimization\": %d, \"status\": \"%s\", \"detail\": ", v->level,
			pyc_status_name(v->status));
		json_string(fp, v->detail ? v->detail : "");
		fputc('}', fp);
	}
	fprintf(fp, "\n  ],\n  \"orphans\": [");
	json_pycs(fp, &c->inv, inventory_is_orphan);
	fprintf(fp, "\n  ],\n  \"sourceless\": [");
	json_pycs(fp, &c->inv, inventory_is_sourceless);
	fprintf(fp, "\n  ]");
	if (nimports) {
		fprintf(fp, ",\n  \"imports\": [");
		json_imports(fp, imports, nimports);
		fprintf(fp, "\n  ]");
	}
	fprintf(fp, "\n}\n");
}
