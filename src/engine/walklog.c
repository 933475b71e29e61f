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
#define LOG_VERSION 1
#define DIR_FIXED (40 + 12)   /* stat, nnames, path_len, names_len */
#define LOG_MAX ((size_t)1 << 30)

struct wdir {
	struct buildlog_stat st;
	const char *path;     /* NUL-terminated in the loaded bytes */
	size_t plen;
	struct walklog_dir names;
	unsigned char trusted;
};

struct walklog {
	char *path;            /* where it is written; NULL: never */
	char *data;            /* the loaded file */
	struct wdir *v;
	size_t n;
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

/* Parse the log's bytes into log->v; -1 when they are not a whole, valid log. */
static int parse(struct walklog *log, unsigned char *p, size_t len, int64_t *start)
{
	struct logfile_head h;
	uint64_t count;
	size_t off = LOGFILE_HEAD, k;

	if (logfile_parse_head(p, len, LOG_MAGIC, LOG_VERSION, &h) < 0 || h.count > h.body / DIR_FIXED)
		return -1;
	count = h.count;
	*start = h.start_ns;
	log->v = xcalloc(count ? count : 1, sizeof(*log->v));
	for (k = 0; k < count; k++) {
		struct wdir *d = &log->v[k];
		size_t nnames, plen, nlen;

		if (len - 8 - off < DIR_FIXED)
			return -1;
		d->st.dev = get_le64(p + off);
		d->st.ino = get_le64(p + off + 8);
		d->st.size = get_le64(p + off + 16);
		d->st.mtime_ns = (int64_t)get_le64(p + off + 24);
		d->st.ctime_ns = (int64_t)get_le64(p + off + 32);
		nnames = get_le32(p + off + 40);
		plen = get_le32(p + off + 44);
		nlen = get_le32(p + off + 48);
		off += DIR_FIXED;
		/* the path is followed by the names, whose first byte is a type: a NUL ends it */
		if (!plen || plen >= len - 8 - off || nlen > len - 8 - off - plen - 1 ||
		    p[off + plen] != '\0' || memchr(p + off, '\0', plen) ||
		    !names_ok(p + off + plen + 1, nlen, nnames))
			return -1;
		d->path = (const char *)p + off;
		d->plen = plen;
		d->names.names = p + off + plen + 1;
		d->names.len = nlen;
		d->names.nnames = nnames;
		off += plen + 1 + nlen;
		log->n = k + 1;
	}
	return off == len - 8 ? 0 : -1;
}

struct walklog *walklog_open(const char *path)
{
	struct walklog *log = xcalloc(1, sizeof(*log));
	const char *racy = getenv("PREPYC_TEST_RACY_NS");
	size_t len = 0, k;
	int64_t old_start = 0;

	log->path = path ? xstrdup(path) : NULL;
	log->racy_ns = racy && *racy ? strtoll(racy, NULL, 10) : BUILDLOG_RACY_NS;
	pthread_mutex_init(&log->lock, NULL);
	strbuf_init(&log->out, 0);
	if (!path || !(log->data = logfile_read(path, LOGFILE_HEAD + 8, LOG_MAX, "walk log", &len)))
		return log;
	if (parse(log, (unsigned char *)log->data, len, &old_start) < 0) {
		trace("walk log '%s' ignored: not a whole prepyc walk log", path);
		log->n = 0;
		return log;
	}
	for (k = 0; k < log->n; k++)
		log->v[k].trusted = log->v[k].st.ctime_ns < old_start - log->racy_ns;
	for (log->nslots = 16; log->nslots < 2 * log->n; log->nslots *= 2)
		;
	log->slot = xcalloc(log->nslots, sizeof(*log->slot));
	log->again = xcalloc(log->n ? log->n : 1, sizeof(*log->again));
	for (k = 0; k < log->n; k++) {
		size_t i = path_hash(log->v[k].path, log->v[k].plen) & (log->nslots - 1);

		while (log->slot[i])
			i = (i + 1) & (log->nslots - 1);
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

const struct walklog_dir *walklog_find(struct walklog *log, const char *dir, const struct stat *st)
{
	struct buildlog_stat now;
	size_t i, len;

	if (!log || !log->n)
		return NULL;
	len = strlen(dir);
	buildlog_stat_of(&now, st);
	for (i = path_hash(dir, len) & (log->nslots - 1); log->slot[i];
	     i = (i + 1) & (log->nslots - 1)) {
		const struct wdir *d = &log->v[log->slot[i] - 1];

		if (d->plen != len || memcmp(d->path, dir, len))
			continue;
		if (!d->trusted || !buildlog_stat_equal(&d->st, &now))
			return NULL;
		atomic_store_explicit(&log->again[log->slot[i] - 1], 1, memory_order_relaxed);
		return &d->names;
	}
	return NULL;
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

	strbuf_grow(&all, LOGFILE_HEAD + log->out.len + 8);
	logfile_begin(&all, LOG_MAGIC, LOG_VERSION, (uint32_t)(nsame + log->nout), start_ns);
	for (k = 0; k < log->n; k++) {
		const struct wdir *d = &log->v[k];

		if (atomic_load_explicit(&log->again[k], memory_order_relaxed))
			put_dir(&all, d->path, d->plen, &d->st, d->names.names, d->names.len,
				d->names.nnames);
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
	free(log->v);
	free(log->data);
	free(log->path);
	free(log);
}
