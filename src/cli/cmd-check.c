/*
 * cmd-check.c - `prepyc check PATH...`: is a tree fully and freshly
 * compiled for its targets?  And `--import MODULE`: does importing compile
 * anything?
 *
 * Every source, target and optimization level gives one verdict
 * (verify.h).  Orphan pycs (in __pycache__, no source) and sourceless
 * legacy pycs (importable with no .py beside them) are warnings, failures
 * with --strict.  No interpreter is started when the targets' facts are
 * cached (factscache.h), and the pycs are verified on a few threads.
 */
#define _POSIX_C_SOURCE 200809L
#include "cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "driver.h"
#include "engine.h"
#include "options.h"
#include "pyc.h"
#include "strbuf.h"
#include "target.h"
#include "util.h"
#include "verify.h"
#include "walk.h"
#include "banned.h"

extern const char importcheck_py[];

struct verdict {
	const struct source *src;
	const struct target *t;
	int level;
	char *pyc;
	enum pyc_status status;
	char detail[200];
};

struct finding { /* orphan or sourceless */
	const char *pyc;
	char *why;
};

struct check {
	struct verdict *v;
	size_t nr, alloc;
	struct finding *orphans, *sourceless;
	size_t norphans, nsourceless, oalloc, salloc;
	int want_mode;
};

static void *verify_slice(void *arg)
{
	struct verdict **slice = arg;
	struct verdict *v;
	const int *want = (const int *)slice[0];
	size_t i;

	for (i = 1; (v = slice[i]); i++)
		v->status = verify_pyc(v->t, v->pyc, v->src, *want, v->detail, sizeof(v->detail));
	return NULL;
}

#define CHECK_THREADS 4

/* verify_pyc() for every verdict, on a few threads. */
static void verify_all(struct check *c)
{
	size_t n = (size_t)online_cpus(), per, i, j;
	struct verdict ***slices;
	pthread_t tids[CHECK_THREADS];
	int started[CHECK_THREADS] = { 0 };

	if (n > CHECK_THREADS)
		n = CHECK_THREADS;
	if (c->nr < 256)
		n = 1;
	per = (c->nr + n - 1) / n;
	slices = xcalloc(n, sizeof(*slices));
	for (i = 0; i < n; i++) {
		size_t from = i * per, to = from + per < c->nr ? from + per : c->nr;

		slices[i] = xcalloc(to > from ? to - from + 2 : 2, sizeof(**slices));
		slices[i][0] = (struct verdict *)(void *)&c->want_mode;
		for (j = from; j < to; j++)
			slices[i][j - from + 1] = &c->v[j];
		if (i > 0 && !pthread_create(&tids[i], NULL, verify_slice, slices[i]))
			started[i] = 1;
	}
	verify_slice(slices[0]);
	for (i = 0; i < n; i++) {
		if (i > 0) {
			if (started[i])
				pthread_join(tids[i], NULL);
			else
				verify_slice(slices[i]);
		}
		free(slices[i]);
	}
	free(slices);
}

static int file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static void json_string(FILE *fp, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', fp);
	for (; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(fp, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(fp, "\\u%04x", *p);
		else if (*p < 0x80)
			fputc(*p, fp);
		else {
			/* valid UTF-8 passes; other bytes as Python's surrogateescape would */
			unsigned c = *p, n = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0, k;
			int ok = n > 0 && c < 0xf5;

			for (k = 1; ok && k <= n; k++)
				ok = (p[k] & 0xc0) == 0x80;
			if (ok) {
				fwrite(p, 1, n + 1, fp);
				p += n;
			} else {
				fprintf(fp, "\\udc%02x", c);
			}
		}
	}
	fputc('"', fp);
}

static void print_json(FILE *fp, const struct check *c, const struct target *targets, size_t ntargets,
		       const size_t *counts, int ok)
{
	size_t i;

	fprintf(fp, "{\n  \"ok\": %s,\n  \"targets\": [", ok ? "true" : "false");
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
	fprintf(fp, "\n  ],\n  \"counts\": {");
	for (i = 0; i < PYC_NSTATUS; i++)
		fprintf(fp, "%s\"%s\": %zu", i ? ", " : "", pyc_status_name((enum pyc_status)i),
			counts[i]);
	fprintf(fp, ", \"orphan\": %zu, \"sourceless\": %zu},\n  \"files\": [", c->norphans,
		c->nsourceless);
	for (i = 0; i < c->nr; i++) {
		const struct verdict *v = &c->v[i];

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
	for (i = 0; i < c->norphans; i++) {
		fprintf(fp, "%s\n    ", i ? "," : "");
		json_string(fp, c->orphans[i].pyc);
	}
	fprintf(fp, "\n  ],\n  \"sourceless\": [");
	for (i = 0; i < c->nsourceless; i++) {
		fprintf(fp, "%s\n    ", i ? "," : "");
		json_string(fp, c->sourceless[i].pyc);
	}
	fprintf(fp, "\n  ]\n}\n");
}

/*
 * --import: run the target with the caller's environment and directory,
 * importing the modules under an audit hook (src/importcheck.py) that
 * reports on fd 3 every source compiled and every pyc write attempted.
 */
static int check_imports(const struct target *t, const struct option_list *mods, int quiet,
			 FILE *fp)
{
	const char **argv = xcalloc(mods->nr + 5, sizeof(*argv));
	struct child c = CHILD_INIT;
	struct strbuf out = STRBUF_INIT;
	int pfd[2], status, problems = 0, done = 0;
	size_t i, n = 0;
	const char *p, *end;

	if (!target_at_least(t, 3, 8, 0)) {
		free(argv);
		return error("option '--import' needs Python 3.8 or later (audit hooks): '%s' is %s",
			     t->python, t->display);
	}
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
	strbuf_read_fd(&out, pfd[0], 0);
	close(pfd[0]);
	child_wait(&c, &status);
	free(argv);

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

static const char *const check_usage[] = {
	"usage: prepyc check [OPTIONS] PATH...",
	"   or: prepyc check [--python PATH] --import MODULE [--import MODULE...]",
	"",
	"Verify that every .py file under each PATH has a valid, fresh pyc for each",
	"target and optimization level, as the import system will judge it.  One line",
	"per problem: 'path: status (detail)'; status is one of missing, stale-mtime,",
	"stale-size, stale-hash, wrong-magic, wrong-mode, corrupt, unreadable; orphan",
	"and sourceless pycs are warnings (failures with --strict).",
	"",
	"--import runs the target interpreter, with your environment and working",
	"directory, and IMPORTS the named modules: the application's import-time code",
	"runs.  It reports every source compiled and every bytecode write attempted",
	"during the imports (audit hooks, Python 3.8+).",
	NULL,
};

static const char check_epilog[] =
	"\nexit status: 0 every source has a fresh pyc (and the imports compiled nothing);\n"
	"1 some pyc is missing, stale or invalid, or an import compiled something;\n"
	"2 usage error or unusable target interpreter.\n";

int cmd_check(int argc, const char **argv)
{
	struct driver_opts d = DRIVER_OPTS_INIT;
	struct option_list levels = { NULL, 0, 0 }, imports = { NULL, 0, 0 };
	const char *inval = NULL;
	int npaths, rc = 0, json = 0, strict = 0, quiet = 0, i;
	struct target *targets = NULL;
	struct source_list list = SOURCE_LIST_INIT;
	struct check c;
	size_t k, counts[PYC_NSTATUS] = { 0 }, problems = 0, nsources = 0;
	const struct option opts[] = {
		OPT_LIST(0, "python", &d.pythons, "PATH", "target interpreter (repeatable)"),
		OPT_FLAG('l', NULL, &d.no_recurse, "do not recurse into subdirectories"),
		OPT_INT('r', NULL, &d.recursion, "N", "recurse at most N levels"),
		OPT_STRING('x', "exclude", &d.rx, "REGEX", "skip sources whose path matches (Python re.search)"),
		OPT_LIST('o', NULL, &levels, "LEVEL", "optimization level to check, repeatable"),
		OPT_STRING(0, "invalidation-mode", &inval, "MODE", "require this mode (else any valid one)"),
		OPT_FLAG('b', "legacy", &d.e.legacy, "check legacy SOURCE.pyc files"),
		OPT_STRING(0, "pycache-prefix", &d.pycache_prefix, "DIR", "pycs live under DIR (3.8+)"),
		OPT_FLAG(0, "json", &json, "write a JSON report on stdout"),
		OPT_FLAG(0, "strict", &strict, "orphan and sourceless pycs fail the check"),
		OPT_LIST(0, "import", &imports, "MODULE", "import MODULE and report compiles (runs its code!)"),
		OPT_COUNT('q', "quiet", &quiet, "no summary; -qq: nothing"),
		OPT_END(),
	};

	memset(&c, 0, sizeof(c));
	npaths = parse_options(argc - 1, argv + 1, opts);
	if (npaths == -2) {
		usage_with_options(stdout, check_usage, opts);
		fputs(check_epilog, stdout);
		goto out;
	}
	if (npaths < 0 || (npaths == 0 && !imports.nr && (error("no PATH given"), 1))) {
		fprintf(stderr, "%s\nTry 'prepyc check --help' for the options.\n", check_usage[0]);
		rc = 2;
		goto out;
	}
	for (k = 0; k < levels.nr; k++) {
		char *end;
		long v = strtol(levels.v[k], &end, 10);

		if (!*levels.v[k] || *end || v < -1 || v > 2 || d.e.nlevels >= ENGINE_MAX_LEVELS) {
			error("option '-o' expects -1, 0, 1 or 2, not '%s'", levels.v[k]);
			rc = 2;
			goto out;
		}
		d.e.levels[d.e.nlevels++] = (int)v;
	}
	c.want_mode = -1;
	if (inval && (c.want_mode = parse_invalidation(inval)) < 0) {
		error("option '--invalidation-mode' expects timestamp, checked-hash or unchecked-hash");
		rc = 2;
		goto out;
	}
	if (!d.pythons.nr) {
		ALLOC_GROW(d.pythons.v, 1, d.pythons.alloc);
		d.pythons.v[d.pythons.nr++] = target_default_python();
	}
	targets = xcalloc(d.pythons.nr, sizeof(*targets));
	for (k = 0; k < d.pythons.nr; k++)
		if (target_probe_start(&targets[k], d.pythons.v[k], NULL) < 0)
			rc = 2;
	if (rc == 0) {
		int maxlevels = d.recursion >= 0 ? d.recursion : d.no_recurse ? 0 : WALK_MAX_DEPTH;

		for (i = 0; i < npaths; i++)
			if (walk_path(argv[1 + i], maxlevels, WALK_PYCACHE, &list))
				rc = 1;
	}
	for (k = 0; k < d.pythons.nr; k++) {
		if (!targets[k].python)
			continue;
		if (target_probe_finish(&targets[k]) < 0 || driver_apply_prefix(&d, &targets[k]) < 0)
			rc = 2;
		else if (c.want_mode > 0 && !targets[k].has_hash_pycs)
			rc = error("option '--invalidation-mode': '%s' (%s) has no hash-based pycs",
				   targets[k].python, targets[k].display) ? 2 : 2;
	}
	if (rc == 2)
		goto out;

	/* one verdict per source, target and level */
	for (k = 0; k < d.pythons.nr; k++) {
		const struct target *t = &targets[k];
		int maxlevels = d.recursion >= 0 ? d.recursion : d.no_recurse ? 0
						 : target_default_maxlevels(t);
		unsigned char *skip = NULL;
		size_t s;

		if (d.rx && driver_eval_rx(&d, t, &list, &skip) < 0) {
			rc = 2;
			goto out;
		}
		for (s = 0; s < list.nr; s++) {
			const struct source *src = &list.v[s];
			int lv[ENGINE_MAX_LEVELS], nlv = 0, j;

			if (src->kind != ENTRY_SOURCE || src->depth > maxlevels || (skip && skip[s]))
				continue;
			nsources += k == 0;
			if (!d.e.nlevels)
				lv[nlv++] = t->optimize;
			for (j = 0; j < d.e.nlevels; j++)
				lv[nlv++] = d.e.levels[j] < 0 ? t->optimize : d.e.levels[j];
			for (j = 0; j < nlv; j++) {
				struct verdict *v;
				int dup = 0, m;

				for (m = 0; m < j; m++)
					dup |= lv[m] == lv[j];
				if (dup || (d.e.legacy && j > 0))
					continue;
				ALLOC_GROW(c.v, c.nr + 1, c.alloc);
				v = &c.v[c.nr++];
				memset(v, 0, sizeof(*v));
				v->src = src;
				v->t = t;
				v->level = lv[j];
				v->pyc = d.e.legacy ? xstrfmt("%sc", src->path)
						    : pyc_cache_path(&t->layout, src->path, lv[j]);
			}
		}
		free(skip);
	}
	verify_all(&c);

	/* orphans and sourceless pycs */
	for (k = 0; k < list.nr; k++) {
		const struct source *s = &list.v[k];
		char *tag, *src;

		if (s->kind == ENTRY_CACHED && pycache_name_parts(s->path, &tag, &src) == 0) {
			if (!file_exists(src)) {
				ALLOC_GROW(c.orphans, c.norphans + 1, c.oalloc);
				c.orphans[c.norphans].pyc = s->path;
				c.orphans[c.norphans++].why = xstrfmt("no source %s", src);
			}
			free(tag);
			free(src);
		} else if (s->kind == ENTRY_LEGACY) {
			char *py = xstrndup(s->path, strlen(s->path) - 1);

			if (!file_exists(py)) {
				ALLOC_GROW(c.sourceless, c.nsourceless + 1, c.salloc);
				c.sourceless[c.nsourceless].pyc = s->path;
				c.sourceless[c.nsourceless++].why = xstrfmt("importable with no %s", py);
			}
			free(py);
		}
	}

	for (k = 0; k < c.nr; k++) {
		counts[c.v[k].status]++;
		problems += c.v[k].status != PYC_OK;
	}
	if (strict)
		problems += c.norphans + c.nsourceless;
	if (problems && rc == 0)
		rc = 1;
	if (json) {
		print_json(stdout, &c, targets, d.pythons.nr, counts, rc == 0);
	} else if (quiet < 2) {
		for (k = 0; k < c.nr; k++) {
			const struct verdict *v = &c.v[k];

			if (v->status == PYC_OK)
				continue;
			if (v->status == PYC_MISSING)
				printf("%s: missing (%s)\n", v->src->path, v->pyc);
			else
				printf("%s: %s (%s)\n", v->pyc, pyc_status_name(v->status), v->detail);
		}
		for (k = 0; k < c.norphans; k++)
			printf("%s: orphan (%s)\n", c.orphans[k].pyc, c.orphans[k].why);
		for (k = 0; k < c.nsourceless; k++)
			printf("%s: sourceless (%s)\n", c.sourceless[k].pyc, c.sourceless[k].why);
		if (!quiet && npaths) {
			printf("%s: check: %zu source%s, %zu pyc%s ok, %zu problem%s", progname,
			       nsources, nsources == 1 ? "" : "s", counts[PYC_OK],
			       counts[PYC_OK] == 1 ? "" : "s", c.nr - counts[PYC_OK],
			       c.nr - counts[PYC_OK] == 1 ? "" : "s");
			for (i = 1; i < PYC_NSTATUS; i++)
				if (counts[i])
					printf(", %zu %s", counts[i], pyc_status_name((enum pyc_status)i));
			printf("; %zu orphan%s, %zu sourceless (", c.norphans,
			       c.norphans == 1 ? "" : "s", c.nsourceless);
			for (k = 0; k < d.pythons.nr; k++)
				printf("%s%s", k ? ", " : "", targets[k].display);
			printf(")\n");
		}
	}
	if (imports.nr) {
		fflush(stdout);
		for (k = 0; k < d.pythons.nr; k++) {
			/* with --json, stdout is the JSON document alone */
			int r = check_imports(&targets[k], &imports, quiet, json ? stderr : stdout);

			if (r < 0)
				rc = 2;
			else if (r > 0 && rc == 0)
				rc = 1;
		}
	}
out:
	fflush(stdout);
	for (k = 0; k < c.nr; k++)
		free(c.v[k].pyc);
	for (k = 0; k < c.norphans; k++)
		free(c.orphans[k].why);
	for (k = 0; k < c.nsourceless; k++)
		free(c.sourceless[k].why);
	free(c.v);
	free(c.orphans);
	free(c.sourceless);
	source_list_release(&list);
	if (targets)
		for (k = 0; k < d.pythons.nr; k++)
			target_release(&targets[k]);
	free(targets);
	option_list_release(&levels);
	option_list_release(&imports);
	option_list_release(&d.pythons);
	return rc;
}
