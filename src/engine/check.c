/*
 * check.c - the verdicts of `prepyc check` (see check.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bundle.h"
#include "buildlog.h"
#include "logfile.h"
#include "parallel.h"
#include "plan.h"
#include "pyc.h"
#include "util.h"
#include "banned.h"

/*
 * One verdict per pyc the engine's plan gives each candidate of the list:
 * the files, levels and pyc paths are compile's (plan.h), freshness is
 * verify_pyc()'s.
 */
static void add_target(struct check_result *c, const struct check_opts *o, const struct target *t,
		       int first, const struct source_list *list, const unsigned char *skip)
{
	struct plan_opts po = { .maxlevels = o->recursion >= 0 ? o->recursion
					     : o->no_recurse ? 0 : -1,
				.levels = o->levels, .nlevels = o->nlevels, .legacy = o->legacy,
				.rx_skip = skip };
	struct plan p = PLAN_INIT;
	size_t k;
	int j;

	plan_build(&p, &po, t, list);
	ALLOC_GROW_BULK(c->v, st_add(c->nr, p.nitems), c->alloc); /* sized once: never copied */
	for (k = 0; k < p.nfiles; k++) {
		struct file *f = &p.files[k];

		if (f->state != FS_PENDING)
			continue;
		c->nsources += first;
		for (j = 0; j < f->nlevels; j++) {
			struct item *it = &p.items[f->first + (size_t)j];
			struct check_verdict *v;

			ALLOC_GROW(c->v, c->nr + 1, c->alloc);
			v = &c->v[c->nr++];
			memset(v, 0, sizeof(*v));
			v->src = f->src;
			v->t = t;
			v->level = it->opt;
			v->pyc = it->pyc; /* taken from the plan */
			it->pyc = NULL;
		}
	}
	plan_release(&p);
}

struct verify_ctx {
	struct check_result *c;
	int want_mode;
	const struct bundle *bundle;
	size_t first;          /* the verdicts of this target start here */
	struct buildlog *log;  /* its build log, or NULL */
	const struct source_list *list;
	uint32_t *walked;      /* the list's pycs by path (indexes + 1), as the walk lstat'ed them */
	size_t nwalked;        /* slots, a power of two */
};

/* The walk stat'ed every pyc (WALK_PYCACHE): a table of them, so that none is stat'ed twice. */
static void index_walked(struct verify_ctx *ctx)
{
	const struct source_list *list = ctx->list;
	size_t k, n = 0;

	for (k = 0; k < list->nr; k++)
		n += list->v[k].kind == ENTRY_CACHED || list->v[k].kind == ENTRY_LEGACY;
	for (ctx->nwalked = 16; ctx->nwalked < 2 * n; ctx->nwalked *= 2)
		;
	ctx->walked = xcalloc(ctx->nwalked, sizeof(*ctx->walked));
	for (k = 0; k < list->nr && k < UINT32_MAX; k++) {
		const char *path = list->v[k].path;
		size_t i;

		if (list->v[k].kind != ENTRY_CACHED && list->v[k].kind != ENTRY_LEGACY)
			continue;
		for (i = path_hash(path, strlen(path)) & (ctx->nwalked - 1); ctx->walked[i];
		     i = (i + 1) & (ctx->nwalked - 1))
			;
		ctx->walked[i] = (uint32_t)(k + 1);
	}
}

/* The pyc's stat data: the walk's lstat (a regular file's is its stat), else a stat(). */
static int pyc_stat(const struct verify_ctx *ctx, const char *pyc, struct buildlog_stat *out)
{
	struct stat st;
	size_t i;

	for (i = path_hash(pyc, strlen(pyc)) & (ctx->nwalked - 1); ctx->walked[i];
	     i = (i + 1) & (ctx->nwalked - 1)) {
		const struct source *s = &ctx->list->v[ctx->walked[i] - 1];

		if (!strcmp(s->path, pyc)) {
			if (!S_ISREG(s->mode))
				return -1;
			buildlog_stat_of_source(out, s);
			return 0;
		}
	}
	if (stat(pyc, &st) < 0)
		return -1;
	buildlog_stat_of(out, &st);
	return 0;
}

/*
 * Does the build log alone say v's pyc is ok (check.h)?  Its entry into
 * *e, the pyc's stat data into *pst.
 */
static int ok_by_log(const struct verify_ctx *ctx, const struct check_verdict *v,
		     const struct buildlog_stat *src, struct buildlog_entry *e,
		     struct buildlog_stat *pst)
{
	const struct target *t = v->t;
	struct pyc_header h;

	if (!buildlog_find(ctx->log, v->pyc, e) || !(e->flags & BUILDLOG_BODY_OK) || !buildlog_stat_equal(&e->src, src) ||
	    pyc_header_parse(&t->fmt, e->hdr, e->hlen, &h) != 0 || h.len != e->hlen ||
	    memcmp(h.magic, t->fmt.magic, PYC_MAGIC_LEN) ||
	    (ctx->want_mode >= 0 && (int)h.kind != ctx->want_mode))
		return 0;
	if (h.kind == PYC_KIND_TIMESTAMP
		    ? h.mtime32 != pyc_mtime32(v->src->mtime_sec, v->src->mtime_nsec) ||
			      h.size32 != (uint32_t)(v->src->size & 0xFFFFFFFFu)
		    : !t->has_hash_pycs) /* the hash matched the source of this stat */
		return 0;
	return pyc_stat(ctx, v->pyc, pst) == 0 && buildlog_stat_equal(&e->pyc, pst);
}

/* The verdict on v's pyc; why it is not ok into detail[0..dlen). */
static enum pyc_status verify(const struct verify_ctx *ctx, const struct check_verdict *v,
			      char *detail, size_t dlen)
{
	struct buildlog_entry e;
	struct buildlog_stat src, pst;
	unsigned char hdr[BUILDLOG_HEADER_MAX];
	size_t hlen = 0;
	struct stat st;
	enum pyc_status status;

	detail[0] = '\0';
	if (ctx->bundle)
		return bundle_verify(ctx->bundle, v->t, v->pyc, v->src, ctx->want_mode, detail,
				     dlen);
	if (!ctx->log)
		return verify_pyc(v->t, v->pyc, v->src, ctx->want_mode, detail, dlen);
	buildlog_stat_of_source(&src, v->src);
	if (ok_by_log(ctx, v, &src, &e, &pst)) {
		buildlog_keep(ctx->log, &e); /* both stat data equal the entry's */
		return PYC_OK;
	}
	status = verify_pyc_stat(v->t, v->pyc, v->src, ctx->want_mode, detail, dlen, &st, hdr,
				 sizeof(hdr), &hlen);
	if (status == PYC_OK) {
		buildlog_stat_of(&pst, &st);
		buildlog_record(ctx->log, v->pyc, &src, &pst, hdr, hlen, BUILDLOG_BODY_OK);
	}
	return status;
}

static void verify_one(void *arg, size_t i)
{
	struct verify_ctx *ctx = arg;
	struct check_verdict *v = &ctx->c->v[ctx->first + i];
	char detail[200];
	v->status = verify(ctx, v, detail, sizeof(detail));
	v->detail = detail[0] ? xstrdup(detail) : NULL;
}

/* inventory_build_with()'s way to a bundle's source. */
static int bundle_source(void *ctx, struct source *s)
{
	return bundle_stat(ctx, s);
}

void check_tree(struct check_result *c, const struct check_opts *o,
		const struct target *targets, size_t ntargets, const struct source_list *list,
		unsigned char *const *skips)
{
	struct verify_ctx ctx = { .c = c, .want_mode = o->want_mode, .bundle = o->bundle,
				  .list = list };
	size_t k;

	if (o->log_dir)
		index_walked(&ctx);
	for (k = 0; k < ntargets; k++) {
		size_t n;

		ctx.first = c->nr;
		add_target(c, o, &targets[k], k == 0, list, skips ? skips[k] : NULL);
		n = c->nr - ctx.first;
		if (o->log_dir) {
			char *name = buildlog_name(o->log_dir, o->log_paths, o->log_npaths,
						   &targets[k]);

			ctx.log = buildlog_open(name, list->started_ns);
			free(name);
		}
		/* reading pycs is system calls: a few threads, once there are enough */
		parallel_for(n, parallel_threads(n, 256, 1), verify_one, &ctx);
		buildlog_close(ctx.log);
		ctx.log = NULL;
	}
	free(ctx.walked);
	for (k = 0; k < c->nr; k++)
		c->counts[c->v[k].status]++;

	if (o->bundle)
		inventory_build_with(&c->inv, list, bundle_source, (void *)o->bundle);
	else
		inventory_build(&c->inv, list);
	for (k = 0; k < c->inv.nr; k++) {
		c->norphans += inventory_is_orphan(&c->inv.v[k]);
		c->nsourceless += inventory_is_sourceless(&c->inv.v[k]);
	}
}

size_t check_problems(const struct check_result *c, int strict)
{
	size_t problems = c->nr - c->counts[PYC_OK];

	if (strict)
		problems += c->norphans + c->nsourceless;
	return problems;
}

void check_release(struct check_result *c)
{
	size_t k;

	for (k = 0; k < c->nr; k++) {
		free(c->v[k].pyc);
		free(c->v[k].detail);
	}
	free(c->v);
	inventory_release(&c->inv);
	memset(c, 0, sizeof(*c));
}
