/*
 * engine.c - plan, compile, write and report, for one target (see engine.h).
 *
 * Each entry of the walk becomes a `struct file` (in walk order, which is
 * the order compileall prints in); each optimization level of a file that
 * needs compiling becomes a `struct item` (sorted largest first, the order
 * the pool is fed in).  A file is read once whatever its number of levels;
 * its pycs are written as their code comes back; when its last level is
 * done the file is final and, in compileall style, its lines are printed
 * as soon as every file before it is final too.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700 /* realpath */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "blake2b.h"
#include "marshal.h"
#include "pool.h"
#include "progress.h"
#include "proto.h"
#include "pyc.h"
#include "siphash.h"
#include "strbuf.h"
#include "tempfile.h"
#include "util.h"
#include "banned.h"

enum fstate {
	FS_SKIP,    /* nothing to do or print: directories, -x, -e, not .py */
	FS_FRESH,   /* every pyc up to date */
	FS_PENDING, /* being compiled */
	FS_DONE,      /* compiled and written */
	FS_FAILED,
};

struct file {
	const struct source *src;
	char *dfile;     /* co_filename; NULL means src->path */
	char *note;      /* compileall's stripdir warning, printed before the file */
	enum fstate state;
	int nlevels;     /* items of this file */
	int dispatched;  /* frames sent */
	int pending;     /* items not finished */
	char *pyerror;   /* the compileall text after "*** " */
	size_t first;    /* while planning: index of its first item */
	struct file *writer; /* a file reached twice: the occurrence whose pycs are kept */
	struct strbuf warnings; /* compileall style: printed with the file's lines */
	struct strbuf printed;  /* what its worker printed, not shown yet */
	char **pycs;     /* per level, in level order (for --hardlink-dupes) */
	/* the source as read for compiling, shared by its levels */
	struct strbuf data;
	int loaded;
	unsigned gen;    /* how many times it was read */
	uint32_t mtime32;
	uint64_t size;
	mode_t mode;
	unsigned char hash[8];
};

struct item {
	struct file *f;
	int opt;    /* the optimization level compiled with */
	char *pyc;
	/* the bytecode cache */
	unsigned char key[CACHE_KEY_LEN];
	unsigned char keyed;  /* key computed (from the source read `key_gen`) */
	unsigned key_gen;
	unsigned char hit;    /* written from the cache */
	struct strbuf warn;   /* the warnings of its compile, each ended by NUL */
};

struct run {
	const struct engine_opts *o;
	const struct target *t;
	int inval;
	struct file *files;
	size_t nfiles, printed;
	struct item *items;
	size_t nitems, next;
	size_t compiled, uptodate, failed, done;
	struct progress progress;
	size_t from_cache;          /* files whose every pyc came from the cache */
	struct strbuf identity;     /* the target's part of every cache key */
	mode_t umask;               /* the process's, read once */
	struct marshal_version mv;  /* for the canonical form */
	int canon_warned;
	struct strbuf canon;        /* the canonical code being written */
};

/* ---- output ------------------------------------------------------------ */

/* Whether Python's str.isprintable() holds for U+cp (close enough: the
 * controls, separators, format characters and private use it rejects). */
static int codepoint_printable(unsigned cp)
{
	if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0xa0) || cp == 0xad)
		return 0;
	if (cp == 0x61c || cp == 0x1680 || cp == 0x180e || (cp >= 0x2000 && cp <= 0x200f) ||
	    (cp >= 0x2028 && cp <= 0x202f) || (cp >= 0x205f && cp <= 0x206f) || cp == 0x3000 ||
	    (cp >= 0xd800 && cp <= 0xf8ff) || cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb) ||
	    cp >= 0xf0000)
		return 0;
	return 1;
}

char *py_repr_path(const char *path)
{
	const unsigned char *p = (const unsigned char *)path;
	struct strbuf sb = STRBUF_INIT;
	char quote = strchr(path, '\'') && !strchr(path, '"') ? '"' : '\'';

	strbuf_addch(&sb, quote);
	while (*p) {
		unsigned cp;
		size_t n = utf8_decode_one(p, &cp);

		if (!n) {
			/* surrogateescape: an undecodable byte is U+DC80..U+DCFF */
			strbuf_addf(&sb, "\\udc%02x", *p);
			p++;
			continue;
		}
		if (cp == '\\' || cp == (unsigned)quote)
			strbuf_addf(&sb, "\\%c", (char)cp);
		else if (cp == '\t')
			strbuf_addstr(&sb, "\\t");
		else if (cp == '\n')
			strbuf_addstr(&sb, "\\n");
		else if (cp == '\r')
			strbuf_addstr(&sb, "\\r");
		else if (codepoint_printable(cp))
			strbuf_add(&sb, p, n);
		else if (cp < 0x100)
			strbuf_addf(&sb, "\\x%02x", cp);
		else if (cp < 0x10000)
			strbuf_addf(&sb, "\\u%04x", cp);
		else
			strbuf_addf(&sb, "\\U%08x", cp);
		p += n;
	}
	strbuf_addch(&sb, quote);
	return strbuf_detach(&sb, NULL);
}

/* The class Python gives an OSError of this errno. */
static const char *py_oserror_class(int err)
{
	switch (err) {
	case EACCES:
	case EPERM:
		return "PermissionError";
	case ENOENT:
		return "FileNotFoundError";
	case EEXIST:
		return "FileExistsError";
	case EISDIR:
		return "IsADirectoryError";
	case ENOTDIR:
		return "NotADirectoryError";
	case EINTR:
		return "InterruptedError";
	default:
		return "OSError";
	}
}

/* "PermissionError: [Errno 13] Permission denied: 'path'", as compileall prints an OSError. */
static char *py_oserror(int err, const char *path)
{
	char *r = py_repr_path(path);
	char *s = xstrfmt("%s: [Errno %d] %s: %s", py_oserror_class(err), err, strerror(err), r);

	free(r);
	return s;
}

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

/* Print, in walk order, the lines of every final file not yet printed (compileall style). */
static void flush_compileall(struct run *r)
{
	int q = r->o->quiet;

	while (r->printed < r->nfiles) {
		struct file *f = &r->files[r->printed];
		const struct source *s = f->src;
		char *name;

		if (f->state == FS_PENDING || (f->writer && f->writer->state == FS_PENDING))
			break;
		progress_clear(&r->progress);
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
			int shown = !f->writer || f->writer == f || r->o->force ||
				    f->writer->state == FS_FAILED;

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
		free(name);
		r->printed++;
	}
}

/* ---- file state -------------------------------------------------------- */

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
	strbuf_release(&f->data);
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
	if (r->o->style == STYLE_COMPILEALL)
		flush_compileall(r);
}

/*
 * Record a failure of `f` (the first one wins, as compileall stops at it):
 * `pyerror` is what compileall prints after "***", `fmt` prepyc's own message.
 */
static void file_error(struct run *r, struct file *f, char *pyerror, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void file_error(struct run *r, struct file *f, char *pyerror, const char *fmt, ...)
{
	if (f->pyerror) {
		free(pyerror);
		return;
	}
	f->pyerror = pyerror;
	if (r->o->style == STYLE_CONCISE && r->o->quiet < 2) {
		char msg[8192];
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		progress_clear(&r->progress);
		fprintf(stderr, "%s: error: ", progname);
		fput_printable(msg, strlen(msg), stderr);
		fputc('\n', stderr);
	}
}

/* Concise style: what the worker printed, under the file's own message. */
static void show_printed(struct run *r, struct file *f)
{
	char *head, *msg;

	if (!f->printed.len)
		return;
	if (!r->o->quiet) {
		head = xstrfmt("%s: warning: %s printed, while compiling '%s'", progname,
			       r->t->display, f->src->path);
		msg = xstrndup(f->printed.buf, f->printed.len);
		progress_clear(&r->progress);
		print_block(stderr, head, msg);
		free(msg);
		free(head);
	}
	strbuf_reset(&f->printed);
}

static void item_done(struct run *r, struct file *f)
{
	show_printed(r, f);
	if (--f->pending == 0)
		file_final(r, f);
}

/* ---- reading, writing -------------------------------------------------- */

enum load_status { LOAD_OK, LOAD_ERRNO, LOAD_NOT_REGULAR, LOAD_TOO_LARGE };

/*
 * Read `f`'s source and fill in what its header needs (thread-safe: it
 * reports nothing).  LOAD_ERRNO sets *err.
 */
static enum load_status read_source(const struct run *r, struct file *f, int *err)
{
	struct stat st;
	int fd;

	/* O_NONBLOCK: if the file became a FIFO since the walk, do not hang on it */
	fd = open(f->src->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return LOAD_NOT_REGULAR;
	}
	/* the header describes the file as it was when read, before any later change */
	f->mtime32 = pyc_mtime32((int64_t)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	f->size = (uint64_t)st.st_size;
	f->mode = st.st_mode;
	strbuf_init(&f->data, st.st_size > 0 && (uint64_t)st.st_size < PROTO_MAX_FRAME
				      ? (size_t)st.st_size + 1 : 0);
	if (strbuf_read_fd(&f->data, fd, 0) < 0)
		goto fail;
	close(fd);
	if (f->data.len > PROTO_MAX_FRAME - 4096) {
		strbuf_release(&f->data);
		return LOAD_TOO_LARGE;
	}
	if (r->inval != INVAL_TIMESTAMP)
		pyc_source_hash((enum source_hash_kind)r->t->hash_kind, r->t->fmt.magic,
				f->data.buf, f->data.len, f->hash);
	f->gen++;
	return LOAD_OK;
fail:
	*err = errno;
	if (fd >= 0)
		close(fd);
	strbuf_release(&f->data);
	return LOAD_ERRNO;
}

/* Read `f` once for all its levels; -1 after recording why not. */
static int load_file(struct run *r, struct file *f)
{
	const char *path = f->src->path;
	int e = 0;

	switch (read_source(r, f, &e)) {
	case LOAD_OK:
		f->loaded = 1;
		return 0;
	case LOAD_NOT_REGULAR:
		file_error(r, f, xstrfmt("OSError: %s is no longer a regular file", path),
			   "cannot read '%s': no longer a regular file", path);
		return -1;
	case LOAD_TOO_LARGE:
		file_error(r, f, xstrfmt("OSError: %s is too large", path),
			   "cannot compile '%s': file too large", path);
		return -1;
	case LOAD_ERRNO:
		break;
	}
	file_error(r, f, py_oserror(e, path), "cannot read '%s': %s", path, strerror(e));
	return -1;
}

static size_t build_header(const struct run *r, const struct file *f, unsigned char *hdr)
{
	if (r->inval == INVAL_TIMESTAMP)
		return pyc_header_timestamp(&r->t->fmt, hdr, f->mtime32, f->size);
	memcpy(hdr, r->t->fmt.magic, 4);
	put_le32(hdr + 4, (uint32_t)r->inval);
	memcpy(hdr + 8, f->hash, 8);
	return 16;
}

/*
 * The pyc at `path` already holds `code` after a header of `hlen` bytes: then
 * only its header can differ (a source touched but unchanged, a new build of
 * the same tree), and it is brought up to date with one pwrite() of the
 * header, which costs no new inode (creating 10,000 files is most of what a
 * rebuild costs on ext4).  Only for a regular file with one link (changing
 * it changes nothing else), the mode a new pyc would get, and the magic of
 * the target.  A reader sees the old header or the new one, and either way
 * valid code; so does anyone after a crash.  1 when done, 0 to write the
 * pyc the usual way.
 */
static int update_header_in_place(const char *path, mode_t mode, const unsigned char *hdr,
				  size_t hlen, const void *code, size_t len)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	unsigned char *old = NULL;
	struct stat st;
	int done = 0;

	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
	    (st.st_mode & 07777) != mode || (uint64_t)st.st_size != (uint64_t)hlen + len)
		goto out;
	old = xmalloc(hlen + len);
	if (read_in_full(fd, old, hlen + len) != (ssize_t)(hlen + len) ||
	    memcmp(old, hdr, 4) || memcmp(old + hlen, code, len))
		goto out;
	done = !memcmp(old, hdr, hlen) || pwrite(fd, hdr, hlen, 0) == (ssize_t)hlen;
out:
	free(old);
	close(fd);
	return done;
}

static int write_pyc(struct run *r, struct item *it, const char *code, size_t len)
{
	struct file *f = it->f;
	unsigned char hdr[PYC_HEADER_MAX];
	struct iovec iov[2];
	struct stat st;
	const char *what = "";

	/* py_compile refuses to replace a symlink or a non-regular file */
	if (lstat(it->pyc, &st) == 0 && (S_ISLNK(st.st_mode) || !S_ISREG(st.st_mode))) {
		int link = S_ISLNK(st.st_mode);

		file_error(r, f,
			   xstrfmt("FileExistsError: %s is a %s and will be changed into a regular "
				   "%s if import writes a byte-compiled file to it",
				   it->pyc, link ? "symlink" : "non-regular file", link ? "file" : "one"),
			   "cannot write '%s': it is %s", it->pyc,
			   link ? "a symbolic link" : "not a regular file");
		return -1;
	}
	iov[0].iov_base = hdr;
	iov[0].iov_len = build_header(r, f, hdr);
	iov[1].iov_base = (void *)code;
	iov[1].iov_len = len;
	remove_stray_temps(it->pyc);
	/* -f rewrites every pyc (a new file), as compileall does */
	if (!r->o->force && update_header_in_place(it->pyc, pyc_mode(f->mode) & ~r->umask, hdr,
						   iov[0].iov_len, code, len))
		return 0;
	if (write_file_atomic(it->pyc, pyc_mode(f->mode), iov, 2, &what) < 0) {
		int e = errno;

		file_error(r, f, py_oserror(e, it->pyc), "%s '%s': %s", what, it->pyc, strerror(e));
		return -1;
	}
	return 0;
}

/*
 * The canonical form of the code `data`, `*len` bytes (ARCHITECTURE.md):
 * r->canon's bytes, or `data` itself with --no-canonical.  A stream the
 * canonical writer cannot handle (a version it does not know) is written
 * as the interpreter gave it, after one warning.
 */
static const char *canonical_code(struct run *r, const struct file *f, const char *data,
				  size_t *len)
{
	struct mobj *root;
	struct marshal_err err;

	if (!r->o->canonical)
		return data;
	strbuf_reset(&r->canon);
	if (marshal_parse((const unsigned char *)data, *len, &r->mv, &root, &err) < 0)
		goto raw;
	if (marshal_write_canonical(root, &r->mv, &r->canon) < 0) {
		snprintf(err.msg, sizeof(err.msg), "the canonical writer refused it");
		mobj_free(root);
		goto raw;
	}
	mobj_free(root);
	*len = r->canon.len;
	return r->canon.buf;
raw:
	if (!r->canon_warned++) {
		progress_clear(&r->progress);
		warning("cannot write '%s' in the canonical form (%s): writing %s's own bytes",
			f->src->path, err.msg, r->t->display);
	}
	return data;
}

/* ---- the bytecode cache ------------------------------------------------ */

static void add_field(struct strbuf *sb, const char *name, const char *value)
{
	strbuf_add(sb, name, strlen(name));
	strbuf_add(sb, "=", 1);
	strbuf_add(sb, value, strlen(value) + 1);
}

/*
 * What every key of this run starts with: the target's identity and what
 * else its compiler's output depends on, beyond a file's own dfile, level
 * and source.
 */
static void cache_identity(struct run *r)
{
	const struct target *t = r->t;
	const char *seed = getenv("PYTHONHASHSEED");
	const char *warn = r->o->style == STYLE_COMPILEALL ? getenv("PYTHONWARNINGS") : NULL;
	char magic[16];

	snprintf(magic, sizeof(magic), "%02x%02x%02x%02x", t->fmt.magic[0], t->fmt.magic[1],
		 t->fmt.magic[2], t->fmt.magic[3]);
	add_field(&r->identity, "prepyc-cache-key", "1");
	add_field(&r->identity, "implementation", t->implementation);
	add_field(&r->identity, "build", t->build);
	add_field(&r->identity, "magic", magic);
	add_field(&r->identity, "cache_tag", t->cache_tag);
	add_field(&r->identity, "hashseed", seed && *seed ? seed : "0");
	add_field(&r->identity, "warnings", warn ? warn : "");
	add_field(&r->identity, "canonical", r->o->canonical ? "1" : "0");
}

/* The key of `it`, from its file's source as read now. */
static void item_key(const struct run *r, struct item *it)
{
	const struct file *f = it->f;
	const char *dfile = f->dfile ? f->dfile : f->src->path;
	unsigned char len[8];
	char opt[16];
	struct blake2b b;
	int i;

	snprintf(opt, sizeof(opt), "%d", it->opt);
	for (i = 0; i < 8; i++)
		len[i] = (unsigned char)((uint64_t)f->data.len >> (8 * i));
	blake2b_init(&b, CACHE_KEY_LEN);
	blake2b_update(&b, r->identity.buf, r->identity.len);
	blake2b_update(&b, opt, strlen(opt) + 1);
	blake2b_update(&b, dfile, strlen(dfile) + 1);
	blake2b_update(&b, len, sizeof(len));
	blake2b_update(&b, f->data.buf, f->data.len);
	blake2b_final(&b, it->key);
	it->keyed = 1;
	it->key_gen = f->gen;
}

/* Write `it`'s pyc from cached code; 0 when it cannot (the compile path will say why). */
static int write_cached(const struct run *r, const struct item *it, const struct strbuf *code)
{
	unsigned char hdr[PYC_HEADER_MAX];
	struct iovec iov[2];
	struct stat st;
	const char *what;

	if (lstat(it->pyc, &st) == 0 && (S_ISLNK(st.st_mode) || !S_ISREG(st.st_mode)))
		return 0;
	iov[0].iov_base = hdr;
	iov[0].iov_len = build_header(r, it->f, hdr);
	iov[1].iov_base = code->buf;
	iov[1].iov_len = code->len;
	remove_stray_temps(it->pyc);
	if (!r->o->force && update_header_in_place(it->pyc, pyc_mode(it->f->mode) & ~r->umask,
						   hdr, iov[0].iov_len, code->buf, code->len))
		return 1;
	return write_file_atomic(it->pyc, pyc_mode(it->f->mode), iov, 2, &what) == 0;
}

/* Sources kept in memory after a miss, for the pool: beyond, they are read again. */
#define CACHE_KEEP_MAX ((size_t)256 << 20)
#define CACHE_THREADS 4

struct cache_phase {
	struct run *r;
	struct file **files;      /* those looked up */
	size_t nfiles;
	size_t *first, *count;    /* per file of `files`: its items in `order` */
	size_t *order;            /* item indexes grouped by file */
	atomic_size_t next;       /* the next file to take */
	atomic_size_t kept;       /* bytes of sources kept loaded */
};

static void cache_lookup_file(struct cache_phase *cp, size_t k)
{
	struct run *r = cp->r;
	struct file *f = cp->files[k];
	struct strbuf code = STRBUF_INIT;
	size_t i, missed = 0;
	int e;

	if (read_source(r, f, &e) != LOAD_OK)
		return; /* the compile path reads it again and reports */
	for (i = 0; i < cp->count[k]; i++) {
		struct item *it = &r->items[cp->order[cp->first[k] + i]];

		if (it->f != f)
			BUG("cache phase: item of another file");
		item_key(r, it);
		strbuf_reset(&code);
		if (cache_get(r->o->cache, it->key, &code, &it->warn) && write_cached(r, it, &code)) {
			it->hit = 1;
		} else {
			strbuf_reset(&it->warn);
			missed++;
		}
	}
	strbuf_release(&code);
	if (missed && atomic_fetch_add(&cp->kept, f->data.len) + f->data.len <= CACHE_KEEP_MAX)
		f->loaded = 1;
	else
		strbuf_release(&f->data);
}

static void *cache_phase_run(void *arg)
{
	struct cache_phase *cp = arg;
	size_t k;

	/* SIGINT/SIGTERM: the file at hand is finished (its pyc whole), no other begun */
	while (!pool_interrupted() && (k = atomic_fetch_add(&cp->next, 1)) < cp->nfiles)
		cache_lookup_file(cp, k);
	return NULL;
}

/* Replay the warnings a cached compile printed (each ended by NUL). */
static void replay_warnings(struct run *r, struct file *f, const struct strbuf *warn)
{
	size_t at = 0;

	while (at < warn->len) {
		const char *text = warn->buf + at;
		size_t len = strnlen(text, warn->len - at);

		at += len + 1;
		if (r->o->style == STYLE_COMPILEALL) {
			strbuf_add(&f->warnings, text, len);
		} else if (!r->o->quiet) {
			char *head = xstrfmt("%s: warning: while compiling '%s'", progname,
					     f->src->path);
			char *msg = xstrndup(text, len);

			progress_clear(&r->progress);
			print_block(stderr, head, msg);
			free(msg);
			free(head);
		}
	}
}

/*
 * Before any worker starts: look every item up in the cache, on a few
 * threads (reading the sources, hashing, reading entries and writing pycs
 * is all system calls and hashing), and finish the files that hit.
 * Returns the number of items left to compile.
 */
static size_t cache_phase(struct run *r)
{
	struct cache_phase cp;
	pthread_t tids[CACHE_THREADS];
	int started[CACHE_THREADS] = { 0 };
	size_t nfiles = r->nfiles, i, k, left = 0;
	int nthreads = online_cpus() * 2;
	size_t *slot;

	memset(&cp, 0, sizeof(cp));
	cp.r = r;
	cp.files = xcalloc(nfiles ? nfiles : 1, sizeof(*cp.files));
	cp.first = xcalloc(nfiles ? nfiles : 1, sizeof(*cp.first));
	cp.count = xcalloc(nfiles ? nfiles : 1, sizeof(*cp.count));
	cp.order = xcalloc(r->nitems, sizeof(*cp.order));
	slot = xcalloc(nfiles ? nfiles : 1, sizeof(*slot)); /* file index -> its place in cp.files */

	/* the files whose pycs this run writes (a duplicate's writer writes them) */
	for (i = 0; i < r->nitems; i++) {
		struct file *f = r->items[i].f;
		size_t fi = (size_t)(f - r->files);

		if (f->writer && f->writer != f)
			continue;
		if (!slot[fi]) {
			cp.files[cp.nfiles++] = f;
			slot[fi] = cp.nfiles; /* its place, plus one */
		}
		cp.count[slot[fi] - 1]++;
	}
	for (k = 0, i = 0; k < cp.nfiles; k++) {
		cp.first[k] = i;
		i += cp.count[k];
		cp.count[k] = 0;
	}
	for (i = 0; i < r->nitems; i++) {
		struct file *f = r->items[i].f;
		size_t at;

		if (f->writer && f->writer != f)
			continue;
		at = slot[f - r->files] - 1;
		cp.order[cp.first[at] + cp.count[at]++] = i;
	}
	free(slot);

	if (nthreads > CACHE_THREADS)
		nthreads = CACHE_THREADS;
	for (i = 1; i < (size_t)nthreads && cp.nfiles > 64; i++)
		started[i] = !pthread_create(&tids[i], NULL, cache_phase_run, &cp);
	cache_phase_run(&cp);
	for (i = 1; i < (size_t)nthreads; i++)
		if (started[i])
			pthread_join(tids[i], NULL);

	/* back on this thread: the files that hit are done */
	for (k = 0; k < cp.nfiles; k++) {
		struct file *f = cp.files[k];
		size_t hits = 0;

		for (i = 0; i < cp.count[k]; i++) {
			struct item *it = &r->items[cp.order[cp.first[k] + i]];

			if (!it->hit)
				continue;
			hits++;
			replay_warnings(r, f, &it->warn);
			strbuf_release(&it->warn);
			if (++f->dispatched == f->nlevels && f->loaded)
				strbuf_release(&f->data);
			item_done(r, f);
		}
		r->from_cache += hits == cp.count[k] && hits == (size_t)f->nlevels;
	}
	for (i = 0; i < r->nitems; i++)
		left += !r->items[i].hit;
	free(cp.files);
	free(cp.first);
	free(cp.count);
	free(cp.order);
	return left;
}

/* ---- the pool's callbacks ---------------------------------------------- */

static int next_job(void *ctx, struct strbuf *frame, uint32_t *id)
{
	struct run *r = ctx;

	while (r->next < r->nitems) {
		size_t i = r->next++;
		struct item *it = &r->items[i];
		struct file *f = it->f;
		const char *dfile = f->dfile ? f->dfile : f->src->path;

		if (it->hit)
			continue;
		if (f->pyerror && !f->dispatched) {
			/* reading it failed for an earlier level */
			item_done(r, f);
			continue;
		}
		if (!f->loaded && load_file(r, f) < 0) {
			item_done(r, f);
			continue;
		}
		if (r->o->cache && (!it->keyed || it->key_gen != f->gen))
			item_key(r, it);
		strbuf_reset(frame);
		proto_add_compile(frame, (uint32_t)i, it->opt, dfile, strlen(dfile), f->data.buf,
				  f->data.len);
		if (++f->dispatched == f->nlevels)
			strbuf_release(&f->data); /* every level has its copy */
		*id = (uint32_t)i;
		return 1;
	}
	return 0;
}

static void on_reply(void *ctx, const struct proto_msg *msg)
{
	struct run *r = ctx;
	struct item *it;
	struct file *f;

	if (msg->id >= r->nitems)
		BUG("reply for unknown job %u", (unsigned)msg->id);
	it = &r->items[msg->id];
	f = it->f;
	switch (msg->type) {
	case PROTO_CODE:
		if (!f->pyerror && (!f->writer || f->writer == f)) {
			size_t len = msg->data_len;
			const char *code = canonical_code(r, f, msg->data, &len);

			if (write_pyc(r, it, code, len) == 0 && r->o->cache && it->keyed)
				cache_put(r->o->cache, it->key, code, len, it->warn.buf,
					  it->warn.len);
		}
		strbuf_release(&it->warn);
		item_done(r, f);
		return;
	case PROTO_ERROR: {
		char *text = xstrndup(msg->data, msg->data_len);
		size_t len = msg->data_len;

		/* concise: one block under our own line */
		if (r->o->style == STYLE_CONCISE && r->o->quiet < 2 && !f->pyerror) {
			char *head = xstrfmt("%s: error: cannot compile '%s'", progname,
					     f->src->path);
			progress_clear(&r->progress);
			print_block(stderr, head, text);
			free(head);
		}
		/* compileall prints py_compile's message as is (print adds a newline) */
		if (!f->pyerror)
			f->pyerror = text;
		else
			free(text);
		(void)len;
		item_done(r, f);
		return;
	}
	case PROTO_WARNING:
		if (r->o->cache) {
			strbuf_add(&it->warn, msg->data, msg->data_len);
			strbuf_add(&it->warn, "", 1);
		}
		/* compileall's warnings come from the warnings module, whatever -q says */
		if (r->o->quiet && r->o->style == STYLE_CONCISE)
			return;
		if (r->o->style == STYLE_COMPILEALL) {
			/* the warnings module's lines, printed with the file's own */
			strbuf_add(&f->warnings, msg->data, msg->data_len);
			return;
		} else {
			progress_clear(&r->progress);
			char *head = xstrfmt("%s: warning: while compiling '%s'", progname,
					     f->src->path);
			char *text = xstrndup(msg->data, msg->data_len);
			print_block(stderr, head, text);
			free(text);
			free(head);
		}
		return;
	default:
		BUG("unexpected reply type %d", (int)msg->type);
	}
}

static void on_failed(void *ctx, uint32_t id, const char *why)
{
	struct run *r = ctx;
	struct file *f = r->items[id].f;

	file_error(r, f, xstrfmt("RuntimeError: the worker compiling it %s", why),
		   "cannot compile '%s': the worker compiling it %s", f->src->path, why);
	item_done(r, f);
}

/*
 * What a worker printed (the interpreter's own messages) while compiling
 * item `id` (kept, shown with the file: item_done()), or between files.
 */
static void on_output(void *ctx, uint32_t id, const char *text, size_t len)
{
	struct run *r = ctx;
	char *head, *msg;

	if (id < r->nitems) {
		/* compileall style: a serial compileall shows it with the file's lines */
		strbuf_add(r->o->style == STYLE_COMPILEALL ? &r->items[id].f->warnings
							   : &r->items[id].f->printed, text, len);
		return;
	}
	if (r->o->quiet && r->o->style == STYLE_CONCISE)
		return;
	progress_clear(&r->progress);
	if (r->o->style == STYLE_COMPILEALL) {
		fflush(stdout);
		fwrite(text, 1, len, stderr);
		return;
	}
	head = xstrfmt("%s: warning: a worker of %s printed", progname, r->t->display);
	msg = xstrndup(text, len);
	print_block(stderr, head, msg);
	free(msg);
	free(head);
}

/* ---- planning ---------------------------------------------------------- */

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

/* compile_file()'s -s/-p handling (3.9+), with its 3.9-3.12 and 3.13+ forms. */
static char *strip_prepend(const struct target *t, const char *fullname, const char *stripdir,
			   const char *prependdir, char *dfile, char **note)
{
	if (stripdir) {
		struct parts fp = { NULL, 0, 0 }, sp = { NULL, 0, 0 };
		struct strbuf sb = STRBUF_INIT;
		size_t i, j;

		split_parts(fullname, &fp);
		split_parts(stripdir, &sp);
		if (target_at_least(t, 3, 13, 0)) {
			int prefix = sp.nr <= fp.nr;

			for (i = 0; prefix && i < sp.nr; i++)
				prefix = !strcmp(sp.v[i], fp.v[i]);
			if (!prefix) {
				char *a = py_repr_path(stripdir), *b = py_repr_path(fullname);

				*note = xstrfmt("The stripdir path %s is not a valid prefix for "
						"source path %s; ignoring", a, b);
				free(a);
				free(b);
			} else if (sp.nr < fp.nr) {
				for (i = sp.nr; i < fp.nr; i++)
					py_join(&sb, fp.v[i]);
				free(dfile);
				dfile = strbuf_detach(&sb, NULL);
			}
		} else {
			/* for spart, opart in zip(...): if equal: ddir_parts.remove(spart) */
			struct parts dp = { NULL, 0, 0 };

			split_parts(fullname, &dp);
			for (i = 0; i < sp.nr && i < fp.nr; i++) {
				if (strcmp(sp.v[i], fp.v[i]))
					continue;
				for (j = 0; j < dp.nr; j++) {
					if (!strcmp(dp.v[j], sp.v[i])) {
						free(dp.v[j]);
						memmove(dp.v + j, dp.v + j + 1,
							(dp.nr - j - 1) * sizeof(*dp.v));
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
		}
		strbuf_release(&sb);
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

/* The co_filename compileall of this target's version gives the file. */
static char *compute_dfile(const struct engine_opts *o, const struct target *t,
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

/* -e: a symlink is skipped when it resolves outside the directory. */
static int outside_limit(const char *limit_real, const char *path)
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

static int read_header(const char *pyc, unsigned char *hdr, size_t n)
{
	int fd = open(pyc, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	ssize_t got;

	if (fd < 0)
		return 0;
	got = read_in_full(fd, hdr, n);
	close(fd);
	return got == (ssize_t)n;
}

/* Are all pycs of `f` fresh?  For hash pycs this reads and hashes the source. */
static int file_is_fresh(const struct run *r, struct file *f, struct item *items)
{
	const struct target *t = r->t;
	unsigned char hdr[PYC_HEADER_MAX], want[PYC_HEADER_MAX];
	size_t n;
	int i;

	if (r->inval == INVAL_TIMESTAMP) {
		n = pyc_header_timestamp(&t->fmt, want, pyc_mtime32(f->src->mtime_sec,
								   f->src->mtime_nsec),
					 f->src->size);
	} else {
		struct strbuf src = STRBUF_INIT;
		int fd = open(f->src->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

		if (fd < 0)
			return 0;
		if (strbuf_read_fd(&src, fd, (size_t)f->src->size + 1) < 0) {
			close(fd);
			strbuf_release(&src);
			return 0;
		}
		close(fd);
		memcpy(want, t->fmt.magic, 4);
		put_le32(want + 4, (uint32_t)r->inval);
		pyc_source_hash((enum source_hash_kind)t->hash_kind, t->fmt.magic, src.buf,
				src.len, want + 8);
		strbuf_release(&src);
		n = 16;
	}
	for (i = 0; i < f->nlevels; i++)
		if (!read_header(items[i].pyc, hdr, n) || memcmp(hdr, want, n))
			return 0;
	return 1;
}

struct plan_slice {
	struct run *r;
	struct file **files;
	size_t nr;
};

static void *plan_slice_run(void *arg)
{
	struct plan_slice *p = arg;
	size_t i;

	for (i = 0; i < p->nr; i++) {
		struct file *f = p->files[i];

		if (!p->r->o->force && file_is_fresh(p->r, f, &p->r->items[f->first]))
			f->state = FS_FRESH;
	}
	return NULL;
}

#define PLAN_THREADS 4

/*
 * Decide freshness of the candidate files on a few threads: it is a system
 * call or three per file (plus reading the source for hash pycs) and
 * dominates a run where nothing changed.
 */
static void plan_freshness(struct run *r, struct file **cand, size_t nr)
{
	struct plan_slice slices[PLAN_THREADS];
	pthread_t tids[PLAN_THREADS];
	int started[PLAN_THREADS] = { 0 };
	size_t nthreads = (size_t)online_cpus(), per, i;

	if (nthreads > PLAN_THREADS)
		nthreads = PLAN_THREADS;
	if (nr < 512)
		nthreads = 1;
	per = (nr + nthreads - 1) / nthreads;
	for (i = 0; i < nthreads; i++) {
		size_t from = i * per < nr ? i * per : nr;

		slices[i].r = r;
		slices[i].files = cand + from;
		slices[i].nr = nr - from < per ? nr - from : per;
		/* the first slice runs here; a thread that cannot start runs here too */
		if (i > 0 && !pthread_create(&tids[i], NULL, plan_slice_run, &slices[i]))
			started[i] = 1;
	}
	plan_slice_run(&slices[0]);
	for (i = 1; i < nthreads; i++) {
		if (started[i])
			pthread_join(tids[i], NULL);
		else
			plan_slice_run(&slices[i]);
	}
}

static char *dup_key(const struct file *f, const char *pyc)
{
	const char *base = strrchr(pyc, '/');

	return xstrfmt("%llu:%llu:%s", (unsigned long long)f->src->dev,
		       (unsigned long long)f->src->ino, base ? base + 1 : pyc);
}

/* Do two pyc paths name the same directory (a hard-linked source elsewhere does not)? */
static int same_pyc_dir(const char *a, const char *b)
{
	char *da = xstrdup(a), *db = xstrdup(b), *ra, *rb, *sa, *sb;
	int same;

	*strrchr(da, '/') = '\0';
	*strrchr(db, '/') = '\0';
	ra = realpath(da, NULL);
	rb = realpath(db, NULL);
	/* a __pycache__ not created yet: compare the directories holding it */
	if ((!ra || !rb) && (sa = strrchr(da, '/')) && (sb = strrchr(db, '/'))) {
		free(ra);
		free(rb);
		*sa = *sb = '\0';
		ra = realpath(da, NULL);
		rb = realpath(db, NULL);
	}
	same = ra && rb && !strcmp(ra, rb);
	free(ra);
	free(rb);
	free(da);
	free(db);
	return same;
}

struct dupkey {
	char *key;
	size_t order;
	struct file *f;
};

static int cmp_dupkey(const void *a, const void *b)
{
	const struct dupkey *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : (x->order > y->order) - (x->order < y->order);
}

/*
 * A file reached twice (a path given twice, or inside two arguments) is
 * compiled once: compileall finds it fresh the second time (or fails on it
 * again), and so does the output for it.
 */
static void mark_duplicates(struct run *r, struct file **cand, size_t n)
{
	struct dupkey *keys = xcalloc(n ? n : 1, sizeof(*keys));
	size_t i, m = 0;

	for (i = 0; i < n; i++) {
		if (cand[i]->state != FS_PENDING)
			continue;
		/* the same source file (device, inode) and the same pyc name */
		keys[m].key = dup_key(cand[i], r->items[cand[i]->first].pyc);
		keys[m].order = i;
		keys[m++].f = cand[i];
	}
	qsort(keys, m, sizeof(*keys), cmp_dupkey);
	/*
	 * The pyc that remains is the first occurrence's; with -f compileall
	 * rewrites it each time, so it is the last one's.
	 */
	for (i = 0; i < m;) {
		size_t end = i + 1, keep, j;

		while (end < m && !strcmp(keys[end].key, keys[i].key))
			end++;
		keep = r->o->force ? end - 1 : i;
		/* every occurrence is compiled (for its own messages); one writes */
		for (j = i; end - i > 1 && j < end; j++)
			if (same_pyc_dir(r->items[keys[j].f->first].pyc,
			                 r->items[keys[keep].f->first].pyc))
				keys[j].f->writer = keys[keep].f;
		i = end;
	}
	for (i = 0; i < m; i++)
		free(keys[i].key);
	free(keys);
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

static int by_size_desc(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	if (x->f->src->size != y->f->src->size)
		return x->f->src->size < y->f->src->size ? 1 : -1;
	/* equal sizes keep walk order, then level order: a run is deterministic */
	if (x->f != y->f)
		return x->f < y->f ? -1 : 1;
	return (x->opt > y->opt) - (x->opt < y->opt);
}

/*
 * Test hook: PREPYC_TEST_SHUFFLE=SEED feeds the pool in a pseudo-random
 * order instead of largest first, so that the tests can show that a pyc's
 * bytes do not depend on what its worker compiled before.
 */
static void test_shuffle(struct item *items, size_t n)
{
	const char *env = getenv("PREPYC_TEST_SHUFFLE");
	uint64_t x;
	size_t i;

	if (!env || !*env || n < 2)
		return;
	x = strtoull(env, NULL, 10) * 0x9e3779b97f4a7c15ULL + 1;
	for (i = n - 1; i > 0; i--) {
		size_t j;
		struct item tmp;

		x ^= x << 13; /* xorshift64 */
		x ^= x >> 7;
		x ^= x << 17;
		j = (size_t)(x % (i + 1));
		tmp = items[i];
		items[i] = items[j];
		items[j] = tmp;
	}
}

int engine_invalidation(const struct engine_opts *o, const struct target *t)
{
	const char *sde;

	if (o->invalidation != INVAL_DEFAULT)
		return o->invalidation;
	sde = getenv("SOURCE_DATE_EPOCH");
	if (sde && *sde && t->has_hash_pycs)
		return INVAL_CHECKED_HASH;
	return INVAL_TIMESTAMP;
}

/* Build r->files for every entry and r->items for the stale ones, largest first. */
static void plan(struct run *r, const struct source_list *list)
{
	const struct engine_opts *o = r->o;
	const struct target *t = r->t;
	int maxlevels = o->maxlevels >= 0 ? o->maxlevels : target_default_maxlevels(t);
	int levels[ENGINE_MAX_LEVELS], nlevels = 0, i;
	char *limit_real = o->limit_sl_dest ? realpath(o->limit_sl_dest, NULL) : NULL;
	const char *arg = NULL;
	size_t k, j, falloc = 0, ialloc = 0, ncand = 0;
	struct file **cand;

	/* sorted(set(levels)), -1 meaning the target's own level */
	if (!o->nlevels)
		levels[nlevels++] = -1;
	for (i = 0; i < o->nlevels; i++)
		levels[nlevels++] = o->levels[i];
	qsort(levels, (size_t)nlevels, sizeof(int), cmp_int);
	for (i = 1, k = 1; i < nlevels; i++)
		if (levels[i] != levels[k - 1])
			levels[k++] = levels[i];
	nlevels = (int)k;

	for (k = 0; k < list->nr; k++) {
		const struct source *s = &list->v[k];
		struct file *f;

		if (s->top)
			arg = (s->kind == ENTRY_DIR || s->kind == ENTRY_DIR_ERROR) ? s->path : NULL;
		if (s->depth > maxlevels)
			continue;
		ALLOC_GROW(r->files, r->nfiles + 1, falloc);
		f = &r->files[r->nfiles++];
		memset(f, 0, sizeof(*f));
		strbuf_init(&f->data, 0);
		strbuf_init(&f->warnings, 0);
		strbuf_init(&f->printed, 0);
		f->src = s;
		f->state = FS_SKIP;
		if (s->kind == ENTRY_DIR || s->kind == ENTRY_DIR_ERROR)
			continue;
		f->dfile = compute_dfile(o, t, s, arg, &f->note);
		if (o->rx_skip && o->rx_skip[k])
			continue;
		if (limit_real && s->is_link && outside_limit(limit_real, s->path))
			continue;
		if (s->kind != ENTRY_SOURCE)
			continue;
		f->state = FS_PENDING;
		ncand++;
	}
	free(limit_real);

	/* the items of each candidate, its pyc paths de-duplicated (-b, -1 = level) */
	for (k = 0; k < r->nfiles; k++) {
		struct file *f = &r->files[k];

		if (f->state != FS_PENDING)
			continue;
		for (i = 0; i < nlevels; i++) {
			int opt = levels[i] < 0 ? t->optimize : levels[i];
			char *pyc = o->legacy ? xstrfmt("%sc", f->src->path)
					      : pyc_cache_path(&t->layout, f->src->path, opt);
			int dup = 0;

			/* levels sharing a pyc (-b, or -1 = the target's level): the last one's stays */
			for (j = r->nitems - (size_t)f->nlevels; j < r->nitems; j++) {
				if (!strcmp(r->items[j].pyc, pyc)) {
					r->items[j].opt = opt;
					dup = 1;
				}
			}
			if (dup) {
				free(pyc);
				continue;
			}
			ALLOC_GROW(r->items, r->nitems + 1, ialloc);
			memset(&r->items[r->nitems], 0, sizeof(*r->items));
			r->items[r->nitems].f = f;
			r->items[r->nitems].opt = opt;
			r->items[r->nitems].pyc = pyc;
			strbuf_init(&r->items[r->nitems].warn, 0);
			r->nitems++;
			f->nlevels++;
		}
	}

	/* freshness */
	cand = xcalloc(ncand ? ncand : 1, sizeof(*cand));
	ncand = 0;
	for (k = 0, j = 0; k < r->nfiles; k++) {
		struct file *f = &r->files[k];

		if (f->state != FS_PENDING)
			continue;
		f->first = j;
		j += (size_t)f->nlevels;
		cand[ncand++] = f;
	}
	plan_freshness(r, cand, ncand);
	mark_duplicates(r, cand, ncand);
	free(cand);

	/* keep the items of stale files (still grouped by file, in level order) */
	for (k = 0, j = 0; k < r->nitems; k++) {
		struct file *f = r->items[k].f;

		if (f->state == FS_FRESH) {
			free(r->items[k].pyc);
			continue;
		}
		if (!f->pycs)
			f->pycs = xcalloc((size_t)f->nlevels, sizeof(*f->pycs));
		f->pycs[f->pending++] = r->items[k].pyc;
		r->items[j++] = r->items[k];
	}
	r->nitems = j;
	for (k = 0; k < r->nfiles; k++)
		r->uptodate += r->files[k].state == FS_FRESH;
	if (r->nitems)
		qsort(r->items, r->nitems, sizeof(*r->items), by_size_desc);
	test_shuffle(r->items, r->nitems);
}

int engine_run(const struct engine_opts *o, const struct target *t, const struct source_list *list,
	       int *any_failed)
{
	struct run r;
	struct pool_ops ops = { next_job, on_reply, on_failed, on_output };
	int jobs = o->jobs > 0 ? o->jobs : online_cpus();
	double start = now_seconds();
	size_t k, pending_files = 0;
	int rc = 0;

	memset(&r, 0, sizeof(r));
	r.o = o;
	r.t = t;
	r.inval = engine_invalidation(o, t);
	r.umask = umask(022); /* no other thread runs now */
	umask(r.umask);
	r.mv.major = t->major;
	r.mv.minor = t->minor;
	r.mv.pypy = !strcmp(t->implementation, "pypy");
	strbuf_init(&r.canon, 0);
	strbuf_init(&r.identity, 0);
	if (o->cache)
		cache_identity(&r);
	plan(&r, list);
	for (k = 0; k < r.nfiles; k++)
		pending_files += r.files[k].state == FS_PENDING;
	trace("plan: %zu to compile (%zu pycs), %zu up to date in %.1f ms", pending_files,
	      r.nitems, r.uptodate, (now_seconds() - start) * 1e3);

	if (r.nitems) {
		size_t left = r.nitems;

		progress_start(&r.progress, "compiling", pending_files, o->quiet < 2);
		if (o->cache && !pool_interrupted())
			left = cache_phase(&r);
		if ((size_t)jobs > left)
			jobs = (int)left;
		/* a signal during the plan or the cache phase: no worker starts */
		if (pool_interrupted())
			rc = -2;
		/* compileall honours the caller's warning filters (PYTHONWARNINGS=error fails a file) */
		else if (left)
			rc = pool_run(t, jobs, &ops, &r,
				      o->style == STYLE_COMPILEALL ? POOL_KEEP_WARNINGS_ENV : 0,
				      o->timeout);
		progress_stop(&r.progress);
	}
	if (rc == 0 && o->style == STYLE_COMPILEALL)
		flush_compileall(&r);
	if (rc == 0 && o->style == STYLE_CONCISE && !o->quiet) {
		char from_cache[64] = "";

		if (o->cache && r.from_cache)
			snprintf(from_cache, sizeof(from_cache), ", %zu from the cache",
				 r.from_cache);
		printf("%s: %zu compiled, %zu up to date, %zu failed (%s, %s, %d worker%s%s) "
		       "in %.2fs\n",
		       progname, r.compiled, r.uptodate, r.failed, t->display, t->cache_tag,
		       r.nitems ? jobs : 0, r.nitems && jobs == 1 ? "" : "s", from_cache,
		       now_seconds() - start);
	}
	if (r.failed)
		*any_failed = 1;
	for (k = 0; k < r.nitems; k++) {
		free(r.items[k].pyc);
		strbuf_release(&r.items[k].warn);
	}
	for (k = 0; k < r.nfiles; k++) {
		free(r.files[k].dfile);
		free(r.files[k].note);
		free(r.files[k].pyerror);
		free(r.files[k].pycs);
		strbuf_release(&r.files[k].data);
		strbuf_release(&r.files[k].warnings);
		strbuf_release(&r.files[k].printed);
	}
	free(r.items);
	free(r.files);
	strbuf_release(&r.canon);
	strbuf_release(&r.identity);
	return rc;
}
