/*
 * walklog.c - the walk log: directories not listed again (see walklog.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "walklog.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buildlog.h"
#include "cachedir.h"
#include "logfile.h"
#include "strbuf.h"
#include "util.h"
#include "banned.h"

#define LOG_MAGIC "PREPYCW\n"
#define LOG_VERSION 2 /* 2: __pycache__ kept whatever its type (walk.c: no_pycache) */
#define DIR_FIXED (40 + 12)   /* stat, nnames, path_len, names_len */
#define LOG_MAX ((size_t)1 << 30)

struct walklog {
	char *path;            /* where it is written; NULL: never */
	/* the loaded file, mapped (logfile_map()), and where each directory starts in it */
	const char *data;
	size_t len;
	size_t *off;
	size_t n;
	int64_t old_start;     /* when the walk that wrote it started */
	uint32_t *slot;        /* hash table of v's indexes + 1; 0: empty */
	size_t nslots;
	atomic_uchar *again;   /* per loaded entry: found again by this walk */
	int64_t racy_ns;
	pthread_mutex_t lock;  /* guards what follows */
	struct strbuf out;     /* the directories listed by this walk, serialized */
	size_t nout;
};

char *walklog_name(const char *dir, const char *const *paths, size_t npaths, unsigned flags)
{
	struct strbuf id = STRBUF_INIT;
	char *cwd = getcwd(NULL, 0), *name;
	size_t i;

	/* NUL-separated: no two walks give the same string */
	strbuf_addf(&id, "prepyc-walklog-%d", LOG_VERSION);
	strbuf_add(&id, "", 1);
	strbuf_addstr(&id, cwd ? cwd : "");
	strbuf_add(&id, "", 1);
	strbuf_addf(&id, "%u", flags);
	for (i = 0; i < npaths; i++) {
		strbuf_add(&id, "", 1);
		strbuf_addstr(&id, paths[i]);
	}
	name = logfile_name(dir, "walk-", id.buf, id.len, "walk log");
	free(cwd);
	strbuf_release(&id);
	return name;
}

/* nnames entries of (type name NUL) filling exactly len bytes, names that are names? */
static int names_ok(const unsigned char *p, size_t len, size_t nnames)
{
	size_t off = 0, k;

	for (k = 0; k < nnames; k++) {
		const unsigned char *name, *end;

		if (len - off < 3)
			return 0;
		name = p + off + 1;
		end = memchr(name, '\0', len - off - 1);
		if (!end || end == name || memchr(name, '/', (size_t)(end - name)) ||
		    (name[0] == '.' && (end - name == 1 || (end - name == 2 && name[1] == '.'))))
			return 0;
		off = (size_t)(end - p) + 1;
	}
	return off == len;
}

/* A loaded directory (the log's bytes were checked by parse()). */
struct wdir {
	struct buildlog_stat st;
	const char *path;     /* NUL-terminated in the loaded bytes */
	size_t plen;
	struct walklog_dir names;
};

static void dir_at(const struct walklog *log, size_t k, struct wdir *d)
{
	const unsigned char *p = (const unsigned char *)log->data + log->off[k];

	d->st.dev = get_le64(p);
	d->st.ino = get_le64(p + 8);
	d->st.size = get_le64(p + 16);
	d->st.mtime_ns = (int64_t)get_le64(p + 24);
	d->st.ctime_ns = (int64_t)get_le64(p + 32);
	d->names.nnames = get_le32(p + 40);
	d->plen = get_le32(p + 44);
	d->names.len = get_le32(p + 48);
	d->path = (const char *)p + DIR_FIXED;
	d->names.names = p + DIR_FIXED + d->plen + 1;
}

/* Find the directories of the log's bytes (log->off); -1 when they are not a whole, valid log. */
static int parse(struct walklog *log, const unsigned char *p, size_t len)
{
	struct logfile_head h;
	size_t off = LOGFILE_HEAD, k;

	if (logfile_parse_head(p, len, LOG_MAGIC, LOG_VERSION, &h) < 0 || h.count > h.body / DIR_FIXED)
		return -1;
	log->old_start = h.start_ns;
	log->off = xcalloc(h.count ? h.count : 1, sizeof(*log->off));
	for (k = 0; k < h.count; k++) {
		size_t nnames, plen, nlen;

		if (len - 8 - off < DIR_FIXED)
			return -1;
		nnames = get_le32(p + off + 40);
		plen = get_le32(p + off + 44);
		nlen = get_le32(p + off + 48);
		/* the path is followed by the names, whose first byte is a type: a NUL ends it */
		if (!plen || plen >= len - 8 - off - DIR_FIXED ||
		    nlen > len - 8 - off - DIR_FIXED - plen - 1 || p[off + DIR_FIXED + plen] != '\0' ||
		    memchr(p + off + DIR_FIXED, '\0', plen) ||
		    !names_ok(p + off + DIR_FIXED + plen + 1, nlen, nnames))
			return -1;
		log->off[k] = off;
		off += DIR_FIXED + plen + 1 + nlen;
		log->n = k + 1;
	}
	return off == len - 8 ? 0 : -1;
}

struct walklog *walklog_open(const char *path)
{
	struct walklog *log = xcalloc(1, sizeof(*log));
	const char *racy = getenv("PREPYC_TEST_RACY_NS");
	size_t k;

	log->path = path ? xstrdup(path) : NULL;
	log->racy_ns = racy && *racy ? strtoll(racy, NULL, 10) : BUILDLOG_RACY_NS;
	pthread_mutex_init(&log->lock, NULL);
	strbuf_init(&log->out, 0);
	if (!path ||
	    !(log->data = logfile_map(path, LOGFILE_HEAD + 8, LOG_MAX, "walk log", &log->len)))
		return log;
	if (parse(log, (const unsigned char *)log->data, log->len) < 0) {
		trace("walk log '%s' ignored: not a whole prepyc walk log", path);
		log->n = 0;
		return log;
	}
	for (log->nslots = 16; log->nslots < 2 * log->n; log->nslots *= 2)
		;
	log->slot = xcalloc(log->nslots, sizeof(*log->slot));
	log->again = xcalloc(log->n ? log->n : 1, sizeof(*log->again));
	for (k = 0; k < log->n; k++) {
		const unsigned char *p = (const unsigned char *)log->data + log->off[k];
		size_t plen = get_le32(p + 44), i;

		for (i = path_hash((const char *)p + DIR_FIXED, plen) & (log->nslots - 1); log->slot[i];
		     i = (i + 1) & (log->nslots - 1))
			;
		log->slot[i] = (uint32_t)(k + 1);
	}
	trace("walk log '%s': %zu directories", path, log->n);
	return log;
}

struct walklog *walklog_open_cache(const char *opt_dir, const char *const *paths, size_t npaths,
				   unsigned flags)
{
	char *dir = cache_dir_resolve(opt_dir);
	char *name = dir ? walklog_name(dir, paths, npaths, flags) : NULL;
	struct walklog *log = name ? walklog_open(name) : NULL;

	free(name);
	free(dir);
	return log;
}

int walklog_find(struct walklog *log, const char *dir, const struct stat *st,
		 struct walklog_dir *out)
{
	struct buildlog_stat now;
	size_t i, len;

	if (!log || !log->n)
		return 0;
	len = strlen(dir);
	buildlog_stat_of(&now, st);
	for (i = path_hash(dir, len) & (log->nslots - 1); log->slot[i];
	     i = (i + 1) & (log->nslots - 1)) {
		struct wdir d;

		dir_at(log, log->slot[i] - 1, &d);
		if (d.plen != len || memcmp(d.path, dir, len))
			continue;
		if (d.st.ctime_ns >= log->old_start - log->racy_ns ||
		    !buildlog_stat_equal(&d.st, &now))
			return 0;
		atomic_store_explicit(&log->again[log->slot[i] - 1], 1, memory_order_relaxed);
		*out = d.names;
		return 1;
	}
	return 0;
}

static void put_dir(struct strbuf *sb, const char *dir, size_t plen,
		    const struct buildlog_stat *st, const unsigned char *names, size_t len,
		    size_t nnames)
{
	strbuf_add_le64(sb, st->dev);
	strbuf_add_le64(sb, st->ino);
	strbuf_add_le64(sb, st->size);
	strbuf_add_le64(sb, (uint64_t)st->mtime_ns);
	strbuf_add_le64(sb, (uint64_t)st->ctime_ns);
	strbuf_add_le32(sb, (uint32_t)nnames);
	strbuf_add_le32(sb, (uint32_t)plen);
	strbuf_add_le32(sb, (uint32_t)len);
	strbuf_add(sb, dir, plen);
	strbuf_add(sb, "", 1);
	strbuf_add(sb, names, len);
}

void walklog_record(struct walklog *log, const char *dir, const struct stat *st,
		    const unsigned char *names, size_t len, size_t nnames)
{
	struct buildlog_stat bst;
	size_t plen = strlen(dir);

	if (!log || !log->path || !plen || len > UINT32_MAX || nnames > UINT32_MAX ||
	    plen > UINT32_MAX)
		return;
	buildlog_stat_of(&bst, st);
	pthread_mutex_lock(&log->lock);
	put_dir(&log->out, dir, plen, &bst, names, len, nnames);
	log->nout++;
	pthread_mutex_unlock(&log->lock);
}

static void write_log(struct walklog *log, size_t nsame, int64_t start_ns)
{
	struct strbuf all = STRBUF_INIT;
	size_t k;

	strbuf_grow(&all, log->len + log->out.len + 8);
	logfile_begin(&all, LOG_MAGIC, LOG_VERSION, (uint32_t)(nsame + log->nout), start_ns);
	for (k = 0; k < log->n; k++) {
		/* a directory found again is copied as it was loaded */
		if (atomic_load_explicit(&log->again[k], memory_order_relaxed)) {
			struct wdir d;

			dir_at(log, k, &d);
			strbuf_add(&all, log->data + log->off[k],
				   DIR_FIXED + d.plen + 1 + d.names.len);
		}
	}
	strbuf_add(&all, log->out.buf, log->out.len);
	trace("walk log '%s': %zu directories", log->path, nsame + log->nout);
	logfile_write(&all, log->path, "walk log");
}

void walklog_close(struct walklog *log, int64_t start_ns)
{
	size_t nsame = 0, k;

	if (!log)
		return;
	for (k = 0; k < log->n; k++)
		nsame += atomic_load_explicit(&log->again[k], memory_order_relaxed);
	if (log->path)
		trace("walk log '%s': %zu of %zu directories not listed again", log->path, nsame,
		      nsame + log->nout);
	if (log->path && start_ns > 0 && nsame + log->nout <= UINT32_MAX &&
	    !(log->nout == 0 && nsame == log->n))
		write_log(log, nsame, start_ns);
	pthread_mutex_destroy(&log->lock);
	strbuf_release(&log->out);
	free(log->again);
	free(log->slot);
	free(log->off);
	logfile_unmap(log->data, log->len);
	free(log->path);
	free(log);
}
