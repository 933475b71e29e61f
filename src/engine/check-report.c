/*
 * check-report.c - `prepyc check`'s text and JSON reports (see check-report.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "check-report.h"

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
		if (v->status == PYC_MISSING)
			fprintf(fp, "%s: missing (%s)\n", v->src->path, v->pyc);
		else
			fprintf(fp, "%s: %s (%s)\n", v->pyc, pyc_status_name(v->status), v->detail);
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

void check_report_json(FILE *fp, const struct check_result *c, const struct target *targets,
		       size_t ntargets, int ok)
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
		json_string(fp, v->detail);
		fputc('}', fp);
	}
	fprintf(fp, "\n  ],\n  \"orphans\": [");
	json_pycs(fp, &c->inv, inventory_is_orphan);
	fprintf(fp, "\n  ],\n  \"sourceless\": [");
	json_pycs(fp, &c->inv, inventory_is_sourceless);
	fprintf(fp, "\n  ]\n}\n");
}
