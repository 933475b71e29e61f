/*
 * report-concise.c - prepyc's own output (see report.h): messages on
 * stderr as they come, one summary line on stdout.
 */
#define _POSIX_C_SOURCE 200809L
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "banned.h"

/*
 * "HEAD: MSG", or HEAD and MSG's lines under it; every line printable (a
 * compiler's message quotes the file name and the source as they are).
 */
static void print_block(FILE *fp, const char *head, const char *msg)
{
	size_t len = strlen(msg);
	const char *nl;

	while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
		len--;
	fput_printable(head, strlen(head), fp);
	fputs(memchr(msg, '\n', len) ? ":\n" : ": ", fp);
	while ((nl = memchr(msg, '\n', len))) {
		fput_printable(msg, nl - msg, fp);
		fputc('\n', fp);
		len -= nl + 1 - msg;
		msg = nl + 1;
	}
	fput_printable(msg, len, fp);
	fputc('\n', fp);
}

static void concise_file_error(struct reporter *rep, const struct file *f, const char *msg)
{
	(void)f;
	if (rep->quiet >= 2)
		return;
	progress_clear(rep->progress);
	fprintf(stderr, "%s: error: ", progname);
	fput_printable(msg, strlen(msg), stderr);
	fputc('\n', stderr);
}

/* one block under our own line */
static void concise_compile_error(struct reporter *rep, const struct file *f, const char *text)
{
	char *head;

	if (rep->quiet >= 2)
		return;
	head = xstrfmt("%s: error: cannot compile '%s'", progname, f->src->path);
	progress_clear(rep->progress);
	print_block(stderr, head, text);
	free(head);
}

static void concise_warning(struct reporter *rep, struct file *f, const char *text, size_t len)
{
	char *head, *msg;

	if (rep->quiet)
		return;
	progress_clear(rep->progress);
	head = xstrfmt("%s: warning: while compiling '%s'", progname, f->src->path);
	msg = xstrndup(text, len);
	print_block(stderr, head, msg);
	free(msg);
	free(head);
}

static void concise_printed(struct reporter *rep, struct file *f, const char *text, size_t len)
{
	char *head, *msg;

	if (rep->quiet)
		return;
	progress_clear(rep->progress);
	if (f)
		head = xstrfmt("%s: warning: %s printed, while compiling '%s'", progname,
			       rep->t->display, f->src->path);
	else
		head = xstrfmt("%s: warning: a worker of %s printed", progname, rep->t->display);
	msg = xstrndup(text, len);
	print_block(stderr, head, msg);
	free(msg);
	free(head);
}

static void concise_file_final(struct reporter *rep, const struct file *f)
{
	(void)rep;
	(void)f;
}

static void concise_finish(struct reporter *rep, const struct report_summary *s)
{
	char from_cache[64] = "";

	if (rep->quiet)
		return;
	if (s->from_cache)
		snprintf(from_cache, sizeof(from_cache), ", %zu from the cache", s->from_cache);
	printf("%s: %zu compiled, %zu up to date, %zu failed (%s, %s, %d worker%s%s) in %.2fs\n",
	       progname, s->compiled, s->uptodate, s->failed, rep->t->display, rep->t->cache_tag,
	       s->workers, s->workers == 1 ? "" : "s", from_cache, s->seconds);
}

static const struct reporter_ops concise_ops = {
	concise_file_error, concise_compile_error, concise_warning, concise_printed,
	concise_file_final, concise_finish,
};

void report_concise_init(struct reporter *rep, int quiet, int force, const struct plan *plan,
			 const struct target *t, struct progress *progress)
{
	memset(rep, 0, sizeof(*rep));
	rep->ops = &concise_ops;
	rep->keep_warnings_env = 0;
	rep->quiet = quiet;
	rep->force = force;
	rep->plan = plan;
	rep->t = t;
	rep->progress = progress;
}
