/*
 * cofilename.c - compileall's dfile rules, per version (see cofilename.h).
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700 /* realpath */
#include "cofilename.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "pystr.h"
#include "strbuf.h"
#include "util.h"
#include "banned.h"

/* posixpath.join(a, *parts) */
static void py_join(struct strbuf *sb, const char *part)
{
	if (part[0] == '/')
		strbuf_reset(sb);
	else if (sb->len && sb->buf[sb->len - 1] != '/')
		strbuf_addch(sb, '/');
	strbuf_addstr(sb, part);
}

struct parts {
	char **v;
	size_t nr, alloc;
};

/* str.split('/') */
static void split_parts(const char *s, struct parts *p)
{
	const char *slash;

	p->nr = 0;
	for (;;) {
		slash = strchr(s, '/');
		ALLOC_GROW(p->v, p->nr + 1, p->alloc);
		p->v[p->nr++] = slash ? xstrndup(s, (size_t)(slash - s)) : xstrdup(s);
		if (!slash)
			break;
		s = slash + 1;
	}
}

static void free_parts(struct parts *p)
{
	size_t i;

	for (i = 0; i < p->nr; i++)
		free(p->v[i]);
	free(p->v);
}

/* 3.13+: -s must be a prefix of the path, part by part. */
static char *strip_313(const char *fullname, const char *stripdir, const struct parts *fp,
		       const struct parts *sp, char *dfile, char **note)
{
	struct strbuf sb = STRBUF_INIT;
	int prefix = sp->nr <= fp->nr;
	size_t i;

	for (i = 0; prefix && i < sp->nr; i++)
		prefix = !strcmp(sp->v[i], fp->v[i]);
	if (!prefix) {
		char *a = py_repr_path(stripdir), *b = py_repr_path(fullname);

		*note = xstrfmt("The stripdir path %s is not a valid prefix for "
				"source path %s; ignoring", a, b);
		free(a);
		free(b);
	} else if (sp->nr < fp->nr) {
		for (i = sp->nr; i < fp->nr; i++)
			py_join(&sb, fp->v[i]);
		free(dfile);
		dfile = strbuf_detach(&sb, NULL);
	}
	strbuf_release(&sb);
	return dfile;
}

/* 3.9-3.12: for spart, opart in zip(...): if equal: ddir_parts.remove(spart) */
static char *strip_39(const char *fullname, const struct parts *fp, const struct parts *sp,
		      char *dfile)
{
	struct parts dp = { NULL, 0, 0 };
	struct strbuf sb = STRBUF_INIT;
	size_t i, j;

	split_parts(fullname, &dp);
	for (i = 0; i < sp->nr && i < fp->nr; i++) {
		if (strcmp(sp->v[i], fp->v[i]))
			continue;
		for (j = 0; j < dp.nr; j++) {
			if (!strcmp(dp.v[j], sp->v[i])) {
				free(dp.v[j]);
				memmove(dp.v + j, dp.v + j + 1, (dp.nr - j - 1) * sizeof(*dp.v));
				dp.nr--;
				break;
			}
		}
	}
	for (i = 0; i < dp.nr; i++)
		py_join(&sb, dp.v[i]);
	if (dp.nr) {
		free(dfile);
		dfile = strbuf_detach(&sb, NULL);
	}
	free_parts(&dp);
	strbuf_release(&sb);
	return dfile;
}

/* compile_file()'s -s/-p handling (3.9+), with its 3.9-3.12 and 3.13+ forms. */
static char *strip_prepend(const struct target *t, const char *fullname, const char *stripdir,
			   const char *prependdir, char *dfile, char **note)
{
	if (stripdir) {
		struct parts fp = { NULL, 0, 0 }, sp = { NULL, 0, 0 };

		split_parts(fullname, &fp);
		split_parts(stripdir, &sp);
		if (target_at_least(t, 3, 13, 0))
			dfile = strip_313(fullname, stripdir, &fp, &sp, dfile, note);
		else
			dfile = strip_39(fullname, &fp, &sp, dfile);
		free_parts(&fp);
		free_parts(&sp);
	}
	if (prependdir) {
		struct strbuf sb = STRBUF_INIT;

		strbuf_addstr(&sb, prependdir);
		py_join(&sb, dfile ? dfile : fullname);
		free(dfile);
		dfile = strbuf_detach(&sb, NULL);
	}
	return dfile;
}

char *cofilename_compute(const struct cofilename_opts *o, const struct target *t,
			 const struct source *s, const char *arg, char **note)
{
	const char *name = strrchr(s->path, '/');
	struct strbuf sb = STRBUF_INIT;

	name = name ? name + 1 : s->path;
	if (s->top || !arg) {
		/* a file argument: compile_file(dest, ddir, ...) */
		char *dfile = NULL;

		if (o->ddir) {
			strbuf_addstr(&sb, o->ddir);
			py_join(&sb, name);
			dfile = strbuf_detach(&sb, NULL);
		}
		if (target_at_least(t, 3, 9, 0))
			dfile = strip_prepend(t, s->path, o->stripdir, o->prependdir, dfile, note);
		return dfile;
	}
	if (target_at_least(t, 3, 9, 0)) {
		/* compile_dir turns -d into stripdir=dir, prependdir=ddir */
		if (o->ddir)
			return strip_prepend(t, s->path, arg, o->ddir, NULL, note);
		return strip_prepend(t, s->path, o->stripdir, o->prependdir, NULL, note);
	}
	if (!o->ddir)
		return NULL;
	strbuf_addstr(&sb, o->ddir);
	if (target_at_least(t, 3, 8, 2) || (t->minor == 7 && t->micro >= 7)) {
		/* the directories under the argument are kept (bpo-39769) */
		size_t n = strlen(arg);
		const char *rel = s->path + n;

		while (*rel == '/')
			rel++;
		py_join(&sb, rel);
	} else {
		py_join(&sb, name);
	}
	return strbuf_detach(&sb, NULL);
}

int cofilename_outside_limit(const char *limit_real, const char *path)
{
	char *real = realpath(path, NULL);
	size_t n = strlen(limit_real);
	int outside;

	if (!real)
		return 1;
	if (!strcmp(limit_real, "/"))
		outside = !strcmp(real, "/");
	else
		outside = strncmp(real, limit_real, n) || real[n] != '/';
	free(real);
	return outside;
}
