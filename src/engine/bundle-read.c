/*
 * bundle-read.c - a bundle's members, read once with libarchive (see
 * bundle.h, bundle_read()).  The only file that knows libarchive; without
 * it (the Makefile did not find it) bundle_read() says what to install.
 */
#define _POSIX_C_SOURCE 200809L
#include "bundle.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "pyc.h"
#include "siphash.h"
#include "strbuf.h"
#include "util.h"

#ifdef PREPYC_WITH_LIBARCHIVE
#include <archive.h>
#include <archive_entry.h>
#endif

#include "banned.h"

#ifndef PREPYC_WITH_LIBARCHIVE

int bundle_read(struct bundle *b)
{
	(void)b;
	return error("reading bundles needs libarchive; install libarchive-dev and rebuild");
}

#else

#define DEFAULT_MAX_ENTRIES 1000000
#define DEFAULT_MAX_BYTES (4ull << 30)

/*
 * libarchive is loaded with dlopen() when a bundle is read, not linked:
 * linked, it and the fifteen libraries it links (ICU, libxml2, libstdc++,
 * the compressors) were loaded and relocated by every run of every
 * command, 12 ms of a no-op's start.  Its soname has been libarchive.so.13
 * since 3.0.  The functions used, from <archive.h> (for their types):
 */
#define ARCHIVE_FUNCTIONS(X)                                                         \
	X(struct archive *, archive_read_new, (void))                                \
	X(int, archive_read_free, (struct archive *))                                \
	X(int, archive_read_support_format_zip_seekable, (struct archive *))         \
	X(int, archive_read_support_format_tar, (struct archive *))                  \
	X(int, archive_read_support_filter_gzip, (struct archive *))                 \
	X(int, archive_read_support_filter_xz, (struct archive *))                   \
	X(int, archive_read_support_filter_zstd, (struct archive *))                 \
	X(int, archive_read_support_filter_bzip2, (struct archive *))                \
	X(int, archive_read_open_filename, (struct archive *, const char *, size_t)) \
	X(int, archive_read_next_header, (struct archive *, struct archive_entry **)) \
	X(la_ssize_t, archive_read_data_block,                                       \
	  (struct archive *, const void **, size_t *, la_int64_t *))                 \
	X(int, archive_read_data_skip, (struct archive *))                           \
	X(const char *, archive_error_string, (struct archive *))                    \
	X(const char *, archive_entry_pathname, (struct archive_entry *))            \
	X(const char *, archive_entry_pathname_utf8, (struct archive_entry *))       \
	X(const char *, archive_entry_hardlink, (struct archive_entry *))            \
	X(const char *, archive_entry_symlink, (struct archive_entry *))             \
	X(int, archive_entry_mtime_is_set, (struct archive_entry *))                 \
	X(time_t, archive_entry_mtime, (struct archive_entry *))                     \
	X(long, archive_entry_mtime_nsec, (struct archive_entry *))                  \
	X(__LA_MODE_T, archive_entry_filetype, (struct archive_entry *))             \
	X(int, archive_entry_size_is_set, (struct archive_entry *))                  \
	X(la_int64_t, archive_entry_size, (struct archive_entry *))

struct archive_lib {
	void *handle;
#define X(ret, name, args) ret(*name) args;
	ARCHIVE_FUNCTIONS(X)
#undef X
};

/* Load libarchive into `lib`; 0, or -1 after saying what to install. */
static int archive_lib_open(struct archive_lib *lib)
{
	static const char *const names[] = { "libarchive.so.13", "libarchive.13.dylib",
					     "libarchive.so", "libarchive.dylib" };
	const char *missing = NULL;
	size_t i;

	memset(lib, 0, sizeof(*lib));
	for (i = 0; i < sizeof(names) / sizeof(*names) && !lib->handle; i++)
		lib->handle = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!lib->handle)
		return error("reading bundles needs libarchive: %s; install libarchive13",
			     dlerror());
	/* a function pointer from dlsym()'s void *: POSIX's one blessed conversion */
#define X(ret, name, args)                                                       \
	if (!(*(void **)&lib->name = dlsym(lib->handle, #name)) && !missing)     \
		missing = #name;
	ARCHIVE_FUNCTIONS(X)
#undef X
	if (missing) {
		dlclose(lib->handle);
		return error("reading bundles needs libarchive 3.3 or later: no %s in it", missing);
	}
	return 0;
}

struct reader {
	struct bundle *b;
	const struct archive_lib *la;
	struct archive *a;
	uint64_t max_bytes, bytes; /* uncompressed bytes so far, against the bound */
	size_t max_entries;
	struct strbuf data;
};

/* A positive bound from the environment, else `dflt`. */
static uint64_t env_bound(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);
	char *end;
	unsigned long long v;

	if (!s || !*s)
		return dflt;
	v = strtoull(s, &end, 10);
	return *end || v == 0 ? dflt : (uint64_t)v;
}

static int too_big(const struct reader *r)
{
	return error("cannot read '%s': more than %llu bytes uncompressed "
		     "(PREPYC_BUNDLE_MAX_BYTES): a zip bomb?", r->b->path,
		     (unsigned long long)r->max_bytes);
}

/*
 * The member name as extraction would use it: no "", "." components, no
 * trailing "/".  NULL for an absolute name or one with a ".." component.
 */
static char *normalize_name(const char *in)
{
	struct strbuf sb = STRBUF_INIT;
	const char *p = in;

	if (*in == '/')
		return NULL;
	while (*p) {
		const char *q = strchr(p, '/');
		size_t n = q ? (size_t)(q - p) : strlen(p);

		if (n == 2 && p[0] == '.' && p[1] == '.') {
			strbuf_release(&sb);
			return NULL;
		}
		if (n && !(n == 1 && p[0] == '.')) {
			if (sb.len)
				strbuf_addch(&sb, '/');
			strbuf_add(&sb, p, n);
		}
		p += n + (q != NULL);
	}
	return strbuf_detach(&sb, NULL);
}

/* The member's data (`size` announced) into r->data, within the bound.  0 or -1. */
static int read_data(struct reader *r, const char *name, uint64_t size)
{
	strbuf_setlen(&r->data, 0);
	if (size < r->max_bytes - r->bytes)
		strbuf_grow(&r->data, (size_t)size + 1);
	for (;;) {
		const void *buf;
		size_t n;
		la_int64_t at;
		int st = r->la->archive_read_data_block(r->a, &buf, &n, &at);

		if (st == ARCHIVE_EOF)
			return 0;
		if (st != ARCHIVE_OK && st != ARCHIVE_WARN)
			return error("cannot read '%s': member '%s': %s", r->b->path, name,
				     r->la->archive_error_string(r->a));
		/* a sparse member's hole reads as zeros, and counts */
		if (at < 0 || (uint64_t)at < r->data.len ||
		    (uint64_t)at - r->data.len > r->max_bytes - r->bytes)
			return at < 0 || (uint64_t)at < r->data.len
				? error("cannot read '%s': member '%s': blocks out of order",
					r->b->path, name) : too_big(r);
		r->bytes += (uint64_t)at - r->data.len;
		while (r->data.len < (uint64_t)at)
			strbuf_addch(&r->data, '\0');
		if (n > r->max_bytes - r->bytes)
			return too_big(r);
		r->bytes += n;
		strbuf_add(&r->data, buf, n);
	}
}

static int has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/* A .py's hashes (for the targets with hash pycs) or a .pyc's bytes, from r->data. */
static void keep_data(struct reader *r, struct bundle_entry *be)
{
	const struct bundle *b = r->b;
	size_t k;

	be->size = r->data.len;
	if (has_suffix(be->name, ".pyc")) {
		be->data = (unsigned char *)strbuf_detach(&r->data, NULL);
		return;
	}
	be->hashes = xcalloc(b->ntargets ? b->ntargets : 1, PYC_HASH_LEN);
	for (k = 0; k < b->ntargets; k++)
		if (b->targets[k].has_hash_pycs)
			pyc_source_hash((enum source_hash_kind)b->targets[k].hash_kind,
					b->targets[k].fmt.magic, r->data.buf, r->data.len,
					be->hashes + k * PYC_HASH_LEN);
}

/* One member (its header just read) into the inventory.  0 or -1. */
static int add_member(struct reader *r, struct archive_entry *e)
{
	struct bundle *b = r->b;
	const char *raw = r->la->archive_entry_pathname(e), *hl = r->la->archive_entry_hardlink(e);
	struct bundle_entry *be;
	char *name;

	if (!raw)
		raw = r->la->archive_entry_pathname_utf8(e);
	if (!raw)
		return error("cannot read '%s': a member has no name", b->path);
	if (!(name = normalize_name(raw)))
		return error("cannot read '%s': member '%s' would be written outside the "
			     "directory it is extracted in", b->path, raw);
	if (!*name) { /* "./": the top directory itself */
		free(name);
		return r->la->archive_read_data_skip(r->a) == ARCHIVE_FATAL ? -1 : 0;
	}
	ALLOC_GROW(b->v, b->nr + 1, b->alloc);
	be = &b->v[b->nr];
	memset(be, 0, sizeof(*be));
	be->name = name;
	be->order = b->nr++;
	be->file = SIZE_MAX;
	if (r->la->archive_entry_mtime_is_set(e)) {
		be->mtime_sec = (int64_t)r->la->archive_entry_mtime(e);
		be->mtime_nsec = r->la->archive_entry_mtime_nsec(e);
	}
	if (hl) {
		be->type = BE_HARDLINK;
		if (!(be->link = normalize_name(hl)))
			return error("cannot read '%s': hard link '%s' points outside the archive "
				     "('%s')", b->path, raw, hl);
	} else if (r->la->archive_entry_filetype(e) == AE_IFLNK) {
		be->type = BE_SYMLINK;
		be->link = xstrdup(r->la->archive_entry_symlink(e) ? r->la->archive_entry_symlink(e) : "");
	} else if (r->la->archive_entry_filetype(e) == AE_IFDIR) {
		be->type = BE_DIR;
	} else if (r->la->archive_entry_filetype(e) == AE_IFREG) {
		be->type = BE_FILE;
		be->size = r->la->archive_entry_size_is_set(e) ? (uint64_t)r->la->archive_entry_size(e) : 0;
		if (has_suffix(name, ".py") || has_suffix(name, ".pyc")) {
			if (read_data(r, raw, be->size) < 0)
				return -1;
			keep_data(r, be);
			return 0;
		}
		/* skipped data is still extracted: count it (a tar's sizes are exact) */
		if ((r->bytes += be->size) > r->max_bytes)
			return too_big(r);
	} else {
		be->type = BE_OTHER;
	}
	if (r->la->archive_read_data_skip(r->a) == ARCHIVE_FATAL)
		return error("cannot read '%s': member '%s': %s", b->path, raw,
			     r->la->archive_error_string(r->a));
	return 0;
}

/* Let the archive be read as its name says it is. */
static void support_formats(const struct archive_lib *la, struct archive *a, enum bundle_kind kind)
{
	if (kind != BUNDLE_TAR) {
		/* the central directory, as unzip and zipimport read it */
		la->archive_read_support_format_zip_seekable(a);
		return;
	}
	la->archive_read_support_format_tar(a);
	la->archive_read_support_filter_gzip(a);
	la->archive_read_support_filter_xz(a);
	la->archive_read_support_filter_zstd(a);
	la->archive_read_support_filter_bzip2(a);
}

int bundle_read(struct bundle *b)
{
	struct archive_lib lib;
	struct reader r = { b, &lib, NULL, 0, 0, 0, STRBUF_INIT };
	struct archive_entry *e;
	size_t n = 0;
	int rc = 0;

	if (archive_lib_open(&lib) < 0)
		return -1;
	if (!(r.a = lib.archive_read_new()))
		die("out of memory");
	/*
	 * libarchive converts each zip member's DOS time with mktime(), which
	 * with TZ unset stats /etc/localtime every time (a third of the run on
	 * 20,000 members); that file is what an unset TZ means.
	 */
	if (!getenv("TZ"))
		setenv("TZ", ":/etc/localtime", 0);
	r.max_bytes = env_bound("PREPYC_BUNDLE_MAX_BYTES", DEFAULT_MAX_BYTES);
	r.max_entries = (size_t)env_bound("PREPYC_BUNDLE_MAX_ENTRIES", DEFAULT_MAX_ENTRIES);
	support_formats(&lib, r.a, b->kind);
	if (lib.archive_read_open_filename(r.a, b->path, 65536) != ARCHIVE_OK) {
		rc = error("cannot read '%s' as a %s: %s", b->path,
			   b->kind == BUNDLE_TAR ? "tar" : "zip", lib.archive_error_string(r.a));
		goto out;
	}
	for (;;) {
		int st = lib.archive_read_next_header(r.a, &e);

		if (st == ARCHIVE_EOF)
			break;
		if (st != ARCHIVE_OK && st != ARCHIVE_WARN) {
			rc = error("cannot read '%s' as a %s: %s", b->path,
				   b->kind == BUNDLE_TAR ? "tar" : "zip", lib.archive_error_string(r.a));
			break;
		}
		if (++n > r.max_entries) {
			rc = error("cannot read '%s': more than %zu members "
				   "(PREPYC_BUNDLE_MAX_ENTRIES)", b->path, r.max_entries);
			break;
		}
		if ((rc = add_member(&r, e)) < 0)
			break;
	}
out:
	strbuf_release(&r.data);
	lib.archive_read_free(r.a);
	dlclose(lib.handle);
	return rc;
}

#endif
