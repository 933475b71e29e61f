/*
 * buildlog.c - the build log: freshness from stat() alone (see buildlog.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "buildlog.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logfile.h"
#include "strbuf.h"
#include "util.h"
#include "banned.h"

#define LOG_MAGIC "PREPYCL\n"
#define LOG_VERSION 1
#define STAT_BYTES 40
#define ENTRY_FIXED (2 * STAT_BYTES + 4 + 4 + BUILDLOG_HEADER_MAX + 4)
#define LOG_MAX ((size_t)1 << 30)

struct buildlog {
	char *path;             /* where it is written; NULL: never */
	/*
	 * The loaded file, mapped (logfile_map()), and where each entry starts
	 * in it: an entry is decoded when it is looked up, so that loading the
	 * log touches no memory per entry but an offset.
	 */
	const char *data;
	size_t len;
	size_t *off;
	size_t n;
	int64_t old_start;      /* when the run that wrote the loaded log started */
	uint32_t *slot;         /* hash table of off's indexes + 1; 0: empty */
	size_t nslots;
	int64_t start_ns;       /* this run's */
	int64_t racy_ns;        /* BUILDLOG_RACY_NS, or the tests' PREPYC_TEST_RACY_NS */
	/*
	 * Recorded again by this run exactly as loaded and trusted (the
	 * common case, a no-op): a mark per loaded entry, set without a
	 * lock, and the entry is written from what was loaded.
	 */
	atomic_uchar *again;
	pthread_mutex_t lock;   /* guards what follows */
	struct strbuf out;      /* the other entries recorded by this run, serialized */
	size_t nout;            /* of them */
};

static void get_stat(struct buildlog_stat *st, const unsigned char *p)
{
	st->dev = get_le64(p);
	st->ino = get_le64(p + 8);
	st->size = get_le64(p + 16);
	st->mtime_ns = (int64_t)get_le64(p + 24);
	st->ctime_ns = (int64_t)get_le64(p + 32);
}

static void put_stat(struct strbuf *sb, const struct buildlog_stat *st)
{
	strbuf_add_le64(sb, st->dev);
	strbuf_add_le64(sb, st->ino);
	strbuf_add_le64(sb, st->size);
	strbuf_add_le64(sb, (uint64_t)st->mtime_ns);
	strbuf_add_le64(sb, (uint64_t)st->ctime_ns);
}

void buildlog_stat_of(struct buildlog_stat *out, const struct stat *st)
{
	out->dev = (uint64_t)st->st_dev;
	out->ino = (uint64_t)st->st_ino;
	out->size = (uint64_t)st->st_size;
	out->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	out->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

void buildlog_stat_of_source(struct buildlog_stat *out, const struct source *s)
{
	out->dev = s->dev;
	out->ino = s->ino;
	out->size = s->size;
	out->mtime_ns = s->mtime_sec * 1000000000 + s->mtime_nsec;
	out->ctime_ns = s->ctime_ns;
}

int buildlog_stat_equal(const struct buildlog_stat *a, const struct buildlog_stat *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

char *buildlog_name(const char *dir, const char *const *paths, size_t npaths,
		    const struct target *t)
{
	const char *prefix = t->pycache_prefix ? t->pycache_prefix : "";
	struct strbuf id = STRBUF_INIT;
	char *cwd = getcwd(NULL, 0), *name;
	size_t i;

	/* NUL-separated: no two builds give the same string */
	strbuf_addf(&id, "prepyc-buildlog-%d", LOG_VERSION);
	strbuf_add(&id, "", 1);
	strbuf_addstr(&id, cwd ? cwd : "");
	strbuf_add(&id, "", 1);
	/* lengths keep the parts apart */
	strbuf_addf(&id, "%zu:%s %zu:%s %zu:%s %02x%02x%02x%02x", strlen(t->executable),
		    t->executable, strlen(t->cache_tag), t->cache_tag, strlen(prefix), prefix,
		    t->fmt.magic[0], t->fmt.magic[1], t->fmt.magic[2], t->fmt.magic[3]);
	for (i = 0; i < npaths; i++) {
		strbuf_add(&id, "", 1);
		strbuf_addstr(&id, paths[i]);
	}
	name = logfile_name(dir, "", id.buf, id.len, "build log");
	free(cwd);
	strbuf_release(&id);
	return name;
}

/* Loaded entry k: its path (not NUL-terminated) and length. */
static const char *entry_path(const struct buildlog *log, size_t k, size_t *plen)
{
	const unsigned char *p = (const unsigned char *)log->data + log->off[k];

	*plen = get_le32(p + ENTRY_FIXED - 4);
	return (const char *)p + ENTRY_FIXED;
}

/* Decode loaded entry k; is it trusted (both ctimes older than the racy window)? */
static int entry_at(const struct buildlog *log, size_t k, struct buildlog_entry *e)
{
	const unsigned char *p = (const unsigned char *)log->data + log->off[k];

	get_stat(&e->src, p);
	get_stat(&e->pyc, p + STAT_BYTES);
	e->flags = get_le32(p + 2 * STAT_BYTES);
	e->hlen = get_le32(p + 2 * STAT_BYTES + 4);
	memcpy(e->hdr, p + 2 * STAT_BYTES + 8, BUILDLOG_HEADER_MAX);
	return e->src.ctime_ns < log->old_start - log->racy_ns &&
	       e->pyc.ctime_ns < log->old_start - log->racy_ns;
}

static void table_add(struct buildlog *log, size_t k)
{
	size_t plen, i;
	const char *path = entry_path(log, k, &plen);

	for (i = path_hash(path, plen) & (log->nslots - 1); log->slot[i];
	     i = (i + 1) & (log->nslots - 1))
		;
	log->slot[i] = (uint32_t)(k + 1);
}

/* Find the entries of the log's bytes (log->off); -1 when they are not a whole, valid log. */
static int parse(struct buildlog *log, const unsigned char *p, size_t len)
{
	struct logfile_head h;
	size_t off = LOGFILE_HEAD, k;

	if (logfile_parse_head(p, len, LOG_MAGIC, LOG_VERSION, &h) < 0 || h.count > h.body / ENTRY_FIXED)
		return -1;
	log->old_start = h.start_ns;
	log->off = xcalloc(h.count ? h.count : 1, sizeof(*log->off));
	for (k = 0; k < h.count; k++) {
		size_t plen;

		if (len - 8 - off < ENTRY_FIXED || get_le32(p + off + 2 * STAT_BYTES + 4) >
							   BUILDLOG_HEADER_MAX)
			return -1;
		plen = get_le32(p + off + ENTRY_FIXED - 4);
		if (!plen || plen > len - 8 - off - ENTRY_FIXED ||
		    memchr(p + off + ENTRY_FIXED, '\0', plen))
			return -1;
		log->off[k] = off;
		off += ENTRY_FIXED + plen;
		log->n = k + 1;
	}
	return off == len - 8 ? 0 : -1;
}

struct buildlog *buildlog_open(const char *path, int64_t start_ns)
{
	struct buildlog *log = xcalloc(1, sizeof(*log));
	const char *racy = getenv("PREPYC_TEST_RACY_NS");
	size_t k;

	log->path = path ? xstrdup(path) : NULL;
	log->start_ns = start_ns;
	log->racy_ns = racy && *racy ? strtoll(racy, NULL, 10) : BUILDLOG_RACY_NS;
	pthread_mutex_init(&log->lock, NULL);
	strbuf_init(&log->out, 0);
	if (!path ||
	    !(log->data = logfile_map(path, LOGFILE_HEAD + 8, LOG_MAX, "build log", &log->len)))
		return log;
	if (parse(log, (const unsigned char *)log->data, log->len) < 0) {
		trace("build log '%s' ignored: not a whole prepyc build log", path);
		log->n = 0;
		return log;
	}
	for (log->nslots = 16; log->nslots < 2 * log->n; log->nslots *= 2)
		;
	log->slot = xcalloc(log->nslots, sizeof(*log->slot));
	log->again = xcalloc(log->n ? log->n : 1, sizeof(*log->again));
	for (k = 0; k < log->n; k++)
		table_add(log, k);
	trace("build log '%s': %zu entries", path, log->n);
	return log;
}

/* The index of pyc's loaded entry, or -1. */
static ptrdiff_t find(const struct buildlog *log, const char *pyc, size_t len)
{
	size_t i;

	if (!log->n)
		return -1;
	for (i = path_hash(pyc, len) & (log->nslots - 1); log->slot[i];
	     i = (i + 1) & (log->nslots - 1)) {
		size_t k = log->slot[i] - 1, plen;
		const char *path = entry_path(log, k, &plen);

		if (plen == len && !memcmp(path, pyc, len))
			return (ptrdiff_t)k;
	}
	return -1;
}

int buildlog_find(const struct buildlog *log, const char *pyc, struct buildlog_entry *out)
{
	ptrdiff_t k = log ? find(log, pyc, strlen(pyc)) : -1;

	if (k < 0)
		return 0;
	out->index = (size_t)k;
	return entry_at(log, (size_t)k, out);
}

void buildlog_keep(struct buildlog *log, const struct buildlog_entry *e)
{
	if (log && log->path && e->index < log->n)
		atomic_store_explicit(&log->again[e->index], 1, memory_order_relaxed);
}

static void put_entry(struct strbuf *sb, const char *pyc, size_t plen,
		      const struct buildlog_stat *src, const struct buildlog_stat *pyc_st,
		      const unsigned char *hdr, size_t hlen, unsigned flags)
{
	put_stat(sb, src);
	put_stat(sb, pyc_st);
	strbuf_add_le32(sb, flags);
	strbuf_add_le32(sb, (uint32_t)hlen);
	strbuf_add(sb, hdr, BUILDLOG_HEADER_MAX);
	strbuf_add_le32(sb, (uint32_t)plen);
	strbuf_add(sb, pyc, plen);
}

void buildlog_record(struct buildlog *log, const char *pyc, const struct buildlog_stat *src,
		     const struct buildlog_stat *pyc_st, const unsigned char *hdr, size_t hlen,
		     unsigned flags)
{
	struct buildlog_entry old;
	unsigned char h[BUILDLOG_HEADER_MAX];
	size_t plen = strlen(pyc);
	ptrdiff_t k;

	if (!log || !log->path || hlen > BUILDLOG_HEADER_MAX || !plen)
		return;
	memset(h, 0, sizeof(h));
	memcpy(h, hdr, hlen);
	k = find(log, pyc, plen);
	if (k >= 0 && entry_at(log, (size_t)k, &old) && buildlog_stat_equal(&old.src, src) &&
	    buildlog_stat_equal(&old.pyc, pyc_st) && old.flags == flags && old.hlen == hlen &&
	    !memcmp(old.hdr, h, sizeof(h))) {
		atomic_store_explicit(&log->again[k], 1, memory_order_relaxed);
		return;
	}
	pthread_mutex_lock(&log->lock);
	put_entry(&log->out, pyc, plen, src, pyc_st, h, hlen, flags);
	log->nout++;
	pthread_mutex_unlock(&log->lock);
}

static void write_log(struct buildlog *log, size_t nsame)
{
	struct strbuf all = STRBUF_INIT;
	size_t k;

	strbuf_grow(&all, log->len + log->out.len + 8);
	logfile_begin(&all, LOG_MAGIC, LOG_VERSION, (uint32_t)(nsame + log->nout), log->start_ns);
	for (k = 0; k < log->n; k++) {
		/* an entry recorded again is copied as it was loaded */
		if (atomic_load_explicit(&log->again[k], memory_order_relaxed)) {
			size_t plen;

			entry_path(log, k, &plen);
			strbuf_add(&all, log->data + log->off[k], ENTRY_FIXED + plen);
		}
	}
	strbuf_add(&all, log->out.buf, log->out.len);
	trace("build log '%s': %zu entries", log->path, nsame + log->nout);
	logfile_write(&all, log->path, "build log");
}

void buildlog_close(struct buildlog *log)
{
	size_t nsame = 0, k;

	if (!log)
		return;
	for (k = 0; k < log->n; k++)
		nsame += atomic_load_explicit(&log->again[k], memory_order_relaxed);
	if (log->path)
		trace("build log '%s': %zu of %zu pycs found fresh by their stat data alone",
		      log->path, nsame, nsame + log->nout);
	/* rewritten unless this run recorded exactly what it trusted (a no-op's no-op) */
	if (log->path && log->start_ns > 0 && nsame + log->nout <= UINT32_MAX &&
	    !(log->nout == 0 && nsame == log->n))
		write_log(log, nsame);
	pthread_mutex_destroy(&log->lock);
	strbuf_release(&log->out);
	free(log->again);
	free(log->slot);
	free(log->off);
	logfile_unmap(log->data, log->len);
	free(log->path);
	free(log);
}
