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
 * `name` is the file name the message may quote (its co_filename): where
 * it does, a newline or other control character in it is escaped like the
 * rest, instead of starting a line of its own.
 */
static void print_block(FILE *fp, const char *head, const char *text, size_t len,
			const char *name)
{
	struct strbuf sb = STRBUF_INIT;
	const char *msg, *nl, *p, *end = text + len;
	size_t nlen = name ? strlen(name) : 0, i;

	for (i = 0; i < nlen && (unsigned char)name[i] >= 0x20 && name[i] != 0x7f; i++)
		;
	if (i == nlen)
		nlen = 0; /* nothing in it that could cut a line */
	for (p = text; p < end; p++) {
		if (nlen && (size_t)(end - p) >= nlen && !memcmp(p, name, nlen)) {
			for (i = 0; i < nlen; i++) {
				unsigned char c = (unsigned char)name[i];

				if (c >= 0x20 && c != 0x7f)
					strbuf_addch(&sb, (char)c);
				else if (c == '\n')
					strbuf_addstr(&sb, "\\n");
				else if (c == '\t')
					strbuf_addstr(&sb, "\\t");
				else if (c == '\r')
					strbuf_addstr(&sb, "\\r");
				else
					strbuf_addf(&sb, "\\x%02x", c);
			}
			p += nlen - 1;
		} else {
			strbuf_addch(&sb, *p);
		}
	}
	msg = sb.buf;
	len = sb.len;
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
	strbuf_release(&sb);
}

/* The name the compiler gives f in its messages. */
static const char *quoted_name(const struct file *f)
{
	return f->dfile ? f->dfile : f->src->path;
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
	print_block(stderr, head, text, strlen(text), quoted_name(f));
	free(head);
}

static void concise_warning(struct reporter *rep, struct file *f, const char *text, size_t len)
{
	char *head;

	if (rep->quiet)
		return;
	progress_clear(rep->progress);
	head = xstrfmt("%s: warning: while compiling '%s'", progname, f->src->path);
	print_block(stderr, head, text, len, quoted_name(f));
	free(head);
}

static void concise_printed(struct reporter *rep, struct file *f, const char *text, size_t len)
{
	char *head;

	if (rep->quiet)
		return;
	progress_clear(rep->progress);
	if (f)
		head = xstrfmt("%s: warning: %s printed, while compiling '%s'", progname,
			       rep->t->display, f->src->path);
	else
		head = xstrfmt("%s: warning: a worker of %s printed", progname, rep->t->display);
	print_block(stderr, head, text, len, f ? quoted_name(f) : NULL);
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
