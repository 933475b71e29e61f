/*
 * check.c - the verdicts of `prepyc check` (see check.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "parallel.h"
#include "plan.h"
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
};

static void verify_one(void *arg, size_t i)
{
	struct verify_ctx *ctx = arg;
	struct check_verdict *v = &ctx->c->v[i];

	if (ctx->bundle)
		v->status = bundle_verify(ctx->bundle, v->t, v->pyc, v->src, ctx->want_mode,
					  v->detail, sizeof(v->detail));
	else
		v->status = verify_pyc(v->t, v->pyc, v->src, ctx->want_mode, v->detail,
				       sizeof(v->detail));
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
	struct verify_ctx ctx = { c, o->want_mode, o->bundle };
	size_t k;

	for (k = 0; k < ntargets; k++)
		add_target(c, o, &targets[k], k == 0, list, skips ? skips[k] : NULL);
	/* reading pycs is system calls: a few threads, once there are enough */
	parallel_for(c->nr, parallel_threads(c->nr, 256, 1), verify_one, &ctx);
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

	for (k = 0; k < c->nr; k++)
		free(c->v[k].pyc);
	free(c->v);
	inventory_release(&c->inv);
	memset(c, 0, sizeof(*c));
}
