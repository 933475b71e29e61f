/*
 * report-compileall.c - compileall's own output (see report.h): its lines
 * on stdout, in walk order, each file's once every file before it is final.
 */
#define _POSIX_C_SOURCE 200809L
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pystr.h"
#include "util.h"
#include "banned.h"

/* The lines of file `f`, shown as compileall would (see flush()). */
static void print_file(const struct reporter *rep, const struct file *f, const char *name,
		       int shown)
{
	int q = rep->quiet;

	if (f->note && q < 2)
		printf("%s\n", f->note);
	if (shown && f->state == FS_DONE && !q)
		printf("Compiling %s...\n", name);
	if (shown && f->state == FS_FAILED && q < 2) {
		if (q)
			printf("*** Error compiling %s...\n", name);
		else
			printf("Compiling %s...\n*** ", name);
		printf("%s\n", f->pyerror);
	}
	if (shown && f->warnings.len) {
		fflush(stdout);
		fwrite(f->warnings.buf, 1, f->warnings.len, stderr);
	}
}

/* Print, in walk order, the lines of every final file not yet printed. */
static void flush(struct reporter *rep)
{
	const struct plan *p = rep->plan;
	int q = rep->quiet;

	while (rep->printed < p->nfiles) {
		const struct file *f = &p->files[rep->printed];
		const struct source *s = f->src;
		char *name;

		if (f->state == FS_PENDING || (f->writer && f->writer->state == FS_PENDING))
			break;
		progress_clear(rep->progress);
		name = py_repr_path(s->path);
		if (s->kind == ENTRY_DIR || s->kind == ENTRY_DIR_ERROR) {
			if (!q)
				printf("Listing %s...\n", name);
			if (s->kind == ENTRY_DIR_ERROR && q < 2)
				printf("Can't list %s\n", name);
		} else {
			/*
			 * A file reached again after compileall wrote its pyc is
			 * found fresh (unless -f); after a failure it is tried again.
			 */
			print_file(rep, f, name, !f->writer || f->writer == f || rep->force ||
						 f->writer->state == FS_FAILED);
		}
		free(name);
		rep->printed++;
	}
}

/* compileall prints the failure with the file's lines (its pyerror) */
static void compileall_file_error(struct reporter *rep, const struct file *f, const char *msg)
{
	(void)rep;
	(void)f;
	(void)msg;
}

static void compileall_compile_error(struct reporter *rep, const struct file *f, const char *text)
{
	(void)rep;
	(void)f;
	(void)text;
}

/* the warnings module's lines, printed with the file's own, whatever -q says */
static void compileall_warning(struct reporter *rep, struct file *f, const char *text, size_t len)
{
	(void)rep;
	strbuf_add(&f->warnings, text, len);
}

/* a serial compileall lets the interpreter print on stderr while it compiles the file */
static void compileall_printed(struct reporter *rep, struct file *f, const char *text, size_t len)
{
	if (f) {
		strbuf_add(&f->warnings, text, len);
		return;
	}
	progress_clear(rep->progress);
	fflush(stdout);
	fwrite(text, 1, len, stderr);
}

static void compileall_file_final(struct reporter *rep, const struct file *f)
{
	(void)f;
	flush(rep);
}

static void compileall_finish(struct reporter *rep, const struct report_summary *s)
{
	(void)s;
	flush(rep);
}

static const struct reporter_ops compileall_ops = {
	compileall_file_error, compileall_compile_error, compileall_warning, compileall_printed,
	compileall_file_final, compileall_finish,
};

void report_compileall_init(struct reporter *rep, int quiet, int force, const struct plan *plan,
			    const struct target *t, struct progress *progress)
{
	memset(rep, 0, sizeof(*rep));
	rep->ops = &compileall_ops;
	/* compileall honours the caller's warning filters (PYTHONWARNINGS=error fails a file) */
	rep->keep_warnings_env = 1;
	rep->quiet = quiet;
	rep->force = force;
	rep->plan = plan;
	rep->t = t;
	rep->progress = progress;
}
