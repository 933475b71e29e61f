/*
 * check.c - the verdicts of `prepyc check` and its import check (see check.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "parallel.h"
#include "plan.h"
#include "strbuf.h"
#include "util.h"
#include "banned.h"

extern const char importcheck_py[];

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
};

static void verify_one(void *arg, size_t i)
{
	struct verify_ctx *ctx = arg;
	struct check_verdict *v = &ctx->c->v[i];

	v->status = verify_pyc(v->t, v->pyc, v->src, ctx->want_mode, v->detail, sizeof(v->detail));
}

void check_tree(struct check_result *c, const struct check_opts *o,
		const struct target *targets, size_t ntargets, const struct source_list *list,
		unsigned char *const *skips)
{
	struct verify_ctx ctx = { c, o->want_mode };
	size_t k;

	for (k = 0; k < ntargets; k++)
		add_target(c, o, &targets[k], k == 0, list, skips ? skips[k] : NULL);
	/* reading pycs is system calls: a few threads, once there are enough */
	parallel_for(c->nr, parallel_threads(c->nr, 256, 1), verify_one, &ctx);
	for (k = 0; k < c->nr; k++)
		c->counts[c->v[k].status]++;

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

/* Run importcheck.py importing `mods`; its fd-3 records into `out`.  0, or -1. */
static int run_importcheck(const struct target *t, const struct option_list *mods,
			   struct strbuf *out, int *status)
{
	const char **argv = xcalloc(mods->nr + 5, sizeof(*argv));
	struct child c = CHILD_INIT;
	int pfd[2];
	size_t i, n = 0;

	argv[n++] = t->executable;
	argv[n++] = "-c";
	argv[n++] = importcheck_py;
	for (i = 0; i < mods->nr; i++)
		argv[n++] = mods->v[i];
	argv[n] = NULL;
	if (pipe(pfd) < 0) {
		free(argv);
		return error_errno("cannot create a pipe");
	}
	set_cloexec(pfd[0]);
	set_cloexec(pfd[1]);
	c.argv = argv;
	c.in_fd = 0;
	c.fd3 = pfd[1];
	if (child_start(&c) < 0) {
		error_errno("cannot run '%s'", t->executable);
		close(pfd[0]);
		close(pfd[1]);
		free(argv);
		return -1;
	}
	close(pfd[1]);
	strbuf_read_fd(out, pfd[0], 0);
	close(pfd[0]);
	child_wait(&c, status);
	free(argv);
	return 0;
}

int check_imports(const struct target *t, const struct option_list *mods, int quiet, FILE *fp)
{
	struct strbuf out = STRBUF_INIT;
	int status, problems = 0, done = 0;
	const char *p, *end;

	if (!target_at_least(t, 3, 8, 0))
		return error("option '--import' needs Python 3.8 or later (audit hooks): '%s' is %s",
			     t->python, t->display);
	if (run_importcheck(t, mods, &out, &status) < 0)
		return -1;

	/* records: KIND \t TEXT \n, KIND one of compile, write, error, done */
	for (p = out.buf, end = out.buf + out.len; p < end; p = memchr(p, '\n', (size_t)(end - p)) + 1) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *tab = memchr(p, '\t', (size_t)(nl - p));

		if (!nl || !tab)
			break;
		if (!strncmp(p, "done\t", 5)) {
			done = 1;
			continue;
		}
		problems++;
		if (quiet < 2) {
			if (!strncmp(p, "compile", 7))
				fprintf(fp, "%.*s: compiled at import (%s)\n", (int)(nl - tab - 1),
					tab + 1, t->display);
			else if (!strncmp(p, "write", 5))
				fprintf(fp, "%.*s: bytecode write attempted at import (%s)\n",
					(int)(nl - tab - 1), tab + 1, t->display);
			else
				fprintf(fp, "%.*s\n", (int)(nl - tab - 1), tab + 1);
		}
	}
	if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 1)) {
		problems++;
		error("the import check with '%s' %s", t->python, child_describe_status(status));
	} else if (!done) {
		problems++;
		error("the import check with '%s' did not finish: an imported module ended the "
		      "process (%s)", t->python, child_describe_status(status));
	}
	if (!problems && !quiet)
		fprintf(fp, "%s: check --import: %zu module%s imported, nothing compiled (%s)\n",
			progname, mods->nr, mods->nr == 1 ? "" : "s", t->display);
	strbuf_release(&out);
	return problems ? 1 : 0;
}
