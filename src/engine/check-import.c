/*
 * check-import.c - `prepyc check --import`: run importcheck.py, read its
 * records (see check-import.h).
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700 /* realpath */
#include "check-import.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "strbuf.h"
#include "util.h"
#include "banned.h"

extern const char importcheck_py[];

/* Run importcheck.py importing `mods`; its fd-3 records into `out`.  0, or -1. */
static int run_importcheck(const struct target *t, const struct option_list *mods, int out_fd,
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
	c.out_fd = out_fd;
	c.fd3 = pfd[1];
	fflush(stdout);
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

/* The resolved roots a module's file must be under to be the tree's. */
static char **tree_roots(int npaths, const char **paths, size_t *nr)
{
	char **roots = xcalloc((size_t)(npaths > 0 ? npaths : 1), sizeof(*roots));
	int i;

	*nr = 0;
	if (npaths == 0) {
		char *cwd = realpath(".", NULL);

		if (cwd)
			roots[(*nr)++] = cwd;
	}
	for (i = 0; i < npaths; i++) {
		char *r = realpath(paths[i], NULL);

		if (r)
			roots[(*nr)++] = r;
	}
	return roots;
}

static int under(const char *path, char *const *roots, size_t nr)
{
	size_t k;

	for (k = 0; k < nr; k++) {
		size_t n = strlen(roots[k]);

		if (!strncmp(path, roots[k], n) &&
		    (path[n] == '\0' || path[n] == '/' || (n == 1 && roots[k][0] == '/')))
			return 1;
	}
	return 0;
}

static enum import_where classify(const char *where, const char *file, char *const *roots,
				  size_t nroots)
{
	char *real;
	int in;

	if (!strcmp(where, "none") || !*file)
		return IMPORT_NOFILE;
	if (!strcmp(where, "stdlib"))
		return IMPORT_STDLIB;
	real = realpath(file, NULL);
	in = under(real ? real : file, roots, nroots);
	free(real);
	return in ? IMPORT_TREE : IMPORT_OUTSIDE;
}

/* Split `line` at its first `max - 1` tabs, in place; how many fields. */
static int split_fields(char *line, char **f, int max)
{
	int n = 0;

	f[n++] = line;
	while (n < max) {
		char *tab = strchr(f[n - 1], '\t');

		if (!tab)
			break;
		*tab = '\0';
		f[n++] = tab + 1;
	}
	return n;
}

static const char *lazy_importer(const struct import_result *r, const char *name)
{
	size_t k;

	for (k = 0; k < r->nlazy; k++)
		if (!strcmp(r->lazy[k].name, name))
			return r->lazy[k].importer;
	return NULL;
}

/* One record (a line without its newline); `cur` is the argument being imported. */
static void parse_record(struct import_result *r, char *line, size_t cur, char *const *roots,
			 size_t nroots)
{
	char *f[4], *tab = strchr(line, '\t');
	const char *kind = line;
	int n;

	if (!tab)
		return;
	*tab = '\0';
	/* the last field keeps its tabs */
	n = split_fields(tab + 1, f, !strcmp(kind, "module") ? 3 : !strcmp(kind, "lazy") ||
				     !strcmp(kind, "error") ? 2 : 1);
	if (!strcmp(kind, "import")) {
		if (cur < r->nargs)
			r->args[cur].attempted = 1;
	} else if (!strcmp(kind, "compile") || !strcmp(kind, "write")) {
		struct import_found *x;

		ALLOC_GROW(r->found, r->nfound + 1, r->afound);
		x = &r->found[r->nfound++];
		x->path = xstrdup(f[0]);
		x->write = kind[0] == 'w';
		x->lazy_of = NULL;
		x->arg = cur < r->nargs ? cur : 0; /* before the first: the first's */
		if (x->write)
			r->nwritten++;
		else
			r->ncompiled++;
	} else if (n == 2 && !strcmp(kind, "lazy")) {
		ALLOC_GROW(r->lazy, r->nlazy + 1, r->alazy);
		r->lazy[r->nlazy].importer = xstrdup(f[0]);
		r->lazy[r->nlazy++].name = xstrdup(f[1]);
	} else if (n == 3 && !strcmp(kind, "module")) {
		struct import_module *m;

		ALLOC_GROW(r->mods, r->nmods + 1, r->amods);
		m = &r->mods[r->nmods++];
		m->name = xstrdup(f[0]);
		m->where = classify(f[1], f[2], roots, nroots);
		m->file = m->where == IMPORT_NOFILE ? NULL : xstrdup(f[2]);
		m->lazy_of = NULL;
		m->arg = cur < r->nargs ? cur : 0;
		r->noutside += m->where == IMPORT_OUTSIDE;
	} else if (n == 2 && !strcmp(kind, "error")) {
		if (cur < r->nargs && !r->args[cur].error) {
			r->args[cur].error = xstrdup(f[1]);
			r->nfailed++;
		}
	} else if (!strcmp(kind, "done")) {
		r->finished = 1;
	}
}

/* After the records: which modules and compiles came from a lazy import. */
static void join_lazy(struct import_result *r)
{
	size_t k, j;

	for (k = 0; k < r->nmods && r->nlazy; k++)
		r->mods[k].lazy_of = lazy_importer(r, r->mods[k].name);
	for (k = 0; k < r->nfound; k++) {
		if (r->found[k].write)
			continue;
		for (j = 0; j < r->nmods; j++)
			if (r->mods[j].lazy_of && r->mods[j].file &&
			    !strcmp(r->mods[j].file, r->found[k].path))
				r->found[k].lazy_of = r->mods[j].lazy_of;
	}
}

int import_check_run(struct import_result *r, const struct target *t,
		     const struct option_list *mods, int npaths, const char **paths, int out_fd)
{
	struct strbuf out = STRBUF_INIT;
	size_t nroots, k, cur;
	char **roots, *p, *end;
	int status;

	memset(r, 0, sizeof(*r));
	r->t = t;
	r->npaths = npaths;
	r->nargs = mods->nr;
	r->args = xcalloc(r->nargs ? r->nargs : 1, sizeof(*r->args));
	for (k = 0; k < r->nargs; k++)
		r->args[k].name = mods->v[k];
	if (!target_at_least(t, 3, 8, 0))
		return error("option '--import' needs Python 3.8 or later (audit hooks): '%s' is %s",
			     t->python, t->display);
	if (run_importcheck(t, mods, out_fd, &out, &status) < 0)
		return -1;

	roots = tree_roots(npaths, paths, &nroots);
	cur = r->nargs; /* before the first "import": the check's own */
	for (p = out.buf, end = out.buf + out.len; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));

		if (!nl)
			break;
		*nl = '\0';
		if (!strncmp(p, "import\t", 7))
			cur = cur == r->nargs ? 0 : cur + 1;
		parse_record(r, p, cur, roots, nroots);
		p = nl + 1;
	}
	for (k = 0; k < nroots; k++)
		free(roots[k]);
	free(roots);
	join_lazy(r);
	for (k = 0; k < r->nargs; k++)
		r->nimported += r->args[k].attempted && !r->args[k].error;

	if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 1)) {
		r->finished = 0;
		snprintf(r->status, sizeof(r->status), "%s", child_describe_status(status));
		error("the import check with '%s' %s", t->python, r->status);
	} else if (!r->finished) {
		snprintf(r->status, sizeof(r->status), "%s", child_describe_status(status));
		error("the import check with '%s' did not finish: an imported module ended the "
		      "process (%s)", t->python, r->status);
	}
	strbuf_release(&out);
	return 0;
}

/* The outside module that names `m`'s top-most outside package (m itself if none). */
static const struct import_module *outside_root(const struct import_result *r,
						const struct import_module *m)
{
	const char *dot;
	size_t k;

	for (dot = strchr(m->name, '.'); dot; dot = strchr(dot + 1, '.'))
		for (k = 0; k < r->nmods; k++)
			if (r->mods[k].where == IMPORT_OUTSIDE &&
			    strlen(r->mods[k].name) == (size_t)(dot - m->name) &&
			    !strncmp(r->mods[k].name, m->name, (size_t)(dot - m->name)))
				return &r->mods[k];
	return m;
}

static const char *outside_what(const struct import_result *r)
{
	return r->npaths ? "the checked paths" : "the working directory";
}

void import_check_warn(const struct import_result *r, int strict, int quiet)
{
	size_t k, j;

	for (k = 0; k < r->nmods && quiet < 2; k++) {
		const struct import_module *m = &r->mods[k];
		size_t subs = 0;
		char more[64] = "";

		if (m->where != IMPORT_OUTSIDE || outside_root(r, m) != m)
			continue;
		for (j = 0; j < r->nmods; j++)
			subs += j != k && r->mods[j].where == IMPORT_OUTSIDE &&
				outside_root(r, &r->mods[j]) == m;
		if (subs)
			snprintf(more, sizeof(more), " (and %zu submodule%s)", subs,
				 subs == 1 ? "" : "s");
		if (strict)
			error("check --import: '%s'%s was loaded from '%s', outside %s (%s)", m->name,
			      more, m->file, outside_what(r), r->t->display);
		else
			warning("check --import: '%s'%s was loaded from '%s', outside %s (%s)", m->name,
				more, m->file, outside_what(r), r->t->display);
	}
}

size_t import_check_problems(const struct import_result *r, int strict)
{
	return r->ncompiled + r->nwritten + r->nfailed + !r->finished +
	       (strict ? r->noutside : 0);
}

void import_check_release(struct import_result *r)
{
	size_t k;

	for (k = 0; k < r->nargs && r->args; k++)
		free(r->args[k].error);
	for (k = 0; k < r->nmods; k++) {
		free(r->mods[k].name);
		free(r->mods[k].file);
	}
	for (k = 0; k < r->nfound; k++)
		free(r->found[k].path);
	for (k = 0; k < r->nlazy; k++) {
		free(r->lazy[k].importer);
		free(r->lazy[k].name);
	}
	free(r->args);
	free(r->mods);
	free(r->found);
	free(r->lazy);
	memset(r, 0, sizeof(*r));
}
