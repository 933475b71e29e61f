/*
 * run.c - a file's end within a run: counts, errors, pycs (see run.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cachekey.h"
#include "pystr.h"
#include "util.h"
#include "banned.h"

static int files_equal(const char *a, const char *b)
{
	struct strbuf x = STRBUF_INIT, y = STRBUF_INIT;
	int fa = open(a, O_RDONLY | O_CLOEXEC), fb = open(b, O_RDONLY | O_CLOEXEC);
	int eq = fa >= 0 && fb >= 0 && strbuf_read_fd(&x, fa, 0) >= 0 &&
		 strbuf_read_fd(&y, fb, 0) >= 0 && x.len == y.len && !memcmp(x.buf, y.buf, x.len);

	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	strbuf_release(&x);
	strbuf_release(&y);
	return eq;
}

/* compileall --hardlink-dupes: a level identical to the previous one becomes a link to it. */
static void hardlink_dupes(struct run *r, struct file *f)
{
	int i;

	for (i = 1; i < f->nlevels; i++) {
		if (strcmp(f->pycs[i - 1], f->pycs[i]) && files_equal(f->pycs[i - 1], f->pycs[i])) {
			if (unlink(f->pycs[i]) < 0 || link(f->pycs[i - 1], f->pycs[i]) < 0) {
				progress_clear(&r->progress);
				error_errno("cannot link '%s' to '%s'", f->pycs[i], f->pycs[i - 1]);
			}
		}
	}
}

static void file_final(struct run *r, struct file *f)
{
	strbuf_release(&f->in.data);
	if (f->pyerror) {
		f->state = FS_FAILED;
		r->failed++;
	} else {
		if (r->o->hardlink_dupes)
			hardlink_dupes(r, f);
		f->state = FS_DONE;
		r->compiled++;
	}
	r->done++;
	progress_update(&r->progress, r->done);
	r->rep.ops->file_final(&r->rep, f);
}

void run_item_done(struct run *r, struct file *f)
{
	if (--f->pending == 0)
		file_final(r, f);
}

void run_file_error(struct run *r, struct file *f, char *pyerror, const char *fmt, ...)
{
	char msg[8192];
	va_list ap;

	if (f->pyerror) {
		free(pyerror);
		return;
	}
	f->pyerror = pyerror;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->rep.ops->file_error(&r->rep, f, msg);
}

enum pyc_read_status run_read_source(const struct run *r, struct file *f, int *err)
{
	enum pyc_read_status st = pycwrite_read_source(&f->in, f->src->path, r->t, r->inval, err);

	if (st == PYC_READ_OK)
		f->gen++;
	return st;
}

int run_load_file(struct run *r, struct file *f)
{
	const char *path = f->src->path;
	int e = 0;

	switch (run_read_source(r, f, &e)) {
	case PYC_READ_OK:
		f->loaded = 1;
		return 0;
	case PYC_READ_NOT_REGULAR:
		run_file_error(r, f, xstrfmt("OSError: %s is no longer a regular file", path),
			       "cannot read '%s': no longer a regular file", path);
		return -1;
	case PYC_READ_TOO_LARGE:
		run_file_error(r, f, xstrfmt("OSError: %s is too large", path),
			       "cannot compile '%s': file too large", path);
		return -1;
	case PYC_READ_ERRNO:
		break;
	}
	run_file_error(r, f, py_oserror(e, path), "cannot read '%s': %s", path, strerror(e));
	return -1;
}

const char *run_dfile(const struct file *f)
{
	return f->dfile ? f->dfile : f->src->path;
}

void run_item_key(const struct run *r, struct item *it)
{
	const struct file *f = it->f;
	const char *dfile = run_dfile(f);
	/* the workers' PYTHONWARNINGS, as the identity has it (engine.c) */
	const char *wenv = r->rep.keep_warnings_env ? getenv("PYTHONWARNINGS") : NULL;
	int reloc = cache_key_relocatable(r->o->canonical, wenv, dfile, f->in.data.buf,
					  f->in.data.len);

	cache_key_compute(&r->identity, it->opt, reloc ? NULL : dfile, f->in.data.buf,
			  f->in.data.len, it->key);
	it->keyed = 1;
	it->key_gen = f->gen;
}

void run_warning(struct run *r, struct file *f, const struct proto_warning *w,
		 const char *filename, size_t len)
{
	struct strbuf text = STRBUF_INIT;
	struct stat st;
	/* linecache reads the file the warning names: os.path.exists(dfile) */
	int show = (w->flags & PROTO_WARN_AT_DFILE) && (w->flags & PROTO_WARN_HAS_LINE) &&
		   !stat(run_dfile(f), &st);

	proto_format_warning(&text, w, filename, len, show);
	r->rep.ops->warning(&r->rep, f, text.buf, text.len);
	strbuf_release(&text);
}

/*
 * The path compileall's OSError names when writing `pyc` failed: the pyc,
 * or, when its directory could not be made, the directory os.makedirs()
 * failed on (the top-most one missing, as makedirs creates from the top).
 */
static char *what_failed(const char *pyc, const char *what)
{
	struct stat st;
	char *dir, *slash;
	int e = errno;

	if (strcmp(what, "cannot create the directory for") || !strchr(pyc, '/'))
		return xstrdup(pyc);
	dir = xstrdup(pyc);
	*strrchr(dir, '/') = '\0';
	while ((slash = strrchr(dir, '/')) && slash != dir) {
		*slash = '\0';
		if (!stat(dir, &st)) {
			*slash = '/';
			break;
		}
	}
	errno = e;
	return dir;
}

int run_write_pyc(struct run *r, struct item *it, const void *code, size_t len, int report)
{
	struct file *f = it->f;
	unsigned char hdr[PYC_HEADER_MAX];
	size_t hlen = pycwrite_header(r->t, r->inval, f->in.mtime32, f->in.size, f->in.hash, hdr);
	const char *what = "";
	enum pycwrite_status st;
	int e, link;

	st = pycwrite_file(it->pyc, hdr, hlen, code, len, pyc_mode(f->in.mode), r->umask,
			   r->o->force, &what);
	if (st == PYCWRITE_OK || !report)
		return st == PYCWRITE_OK ? 0 : -1;
	if (st == PYCWRITE_ERRNO) {
		char *named = what_failed(it->pyc, what);

		e = errno;
		run_file_error(r, f, py_oserror(e, named), "%s '%s': %s", what, it->pyc,
			       strerror(e));
		free(named);
		return -1;
	}
	link = st == PYCWRITE_SYMLINK;
	run_file_error(r, f,
		       xstrfmt("FileExistsError: %s is a %s and will be changed into a regular "
			       "%s if import writes a byte-compiled file to it",
			       it->pyc, link ? "symlink" : "non-regular file", link ? "file" : "one"),
		       "cannot write '%s': it is %s", it->pyc,
		       link ? "a symbolic link" : "not a regular file");
	return -1;
}
