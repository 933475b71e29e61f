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

struct loaded {
	struct buildlog_entry e;
	size_t off, plen;       /* the path in the loaded bytes */
	unsigned char trusted;
};

struct buildlog {
	char *path;             /* where it is written; NULL: never */
	char *data;             /* the loaded file (entries' paths point into it) */
	struct loaded *v;
	size_t n;
	uint32_t *slot;         /* hash table of v's indexes + 1; 0: empty */
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

static void table_add(struct buildlog *log, size_t k)
{
	size_t i = path_hash(log->v[k].e.path, log->v[k].plen) & (log->nslots - 1);

	while (log->slot[i])
		i = (i + 1) & (log->nslots - 1);
	log->slot[i] = (uint32_t)(k + 1);
}

/* Parse the log's bytes into log->v; -1 when they are not a whole, valid log. */
static int parse(struct buildlog *log, const unsigned char *p, size_t len, int64_t *start)
{
	struct logfile_head h;
	uint64_t count;
	size_t off = LOGFILE_HEAD, k;

	if (logfile_parse_head(p, len, LOG_MAGIC, LOG_VERSION, &h) < 0 || h.count > h.body / ENTRY_FIXED)
		return -1;
	count = h.count;
	*start = h.start_ns;
	log->v = xcalloc(count ? count : 1, sizeof(*log->v));
	for (k = 0; k < count; k++) {
		struct loaded *l = &log->v[k];

		if (len - 8 - off < ENTRY_FIXED)
			return -1;
		get_stat(&l->e.src, p + off);
		get_stat(&l->e.pyc, p + off + STAT_BYTES);
		l->e.flags = get_le32(p + off + 2 * STAT_BYTES);
		l->e.hlen = get_le32(p + off + 2 * STAT_BYTES + 4);
		memcpy(l->e.hdr, p + off + 2 * STAT_BYTES + 8, BUILDLOG_HEADER_MAX);
		l->plen = get_le32(p + off + ENTRY_FIXED - 4);
		off += ENTRY_FIXED;
		if (l->e.hlen > BUILDLOG_HEADER_MAX || !l->plen || l->plen > len - 8 - off ||
		    memchr(p + off, '\0', l->plen))
			return -1;
		l->off = off;
		off += l->plen;
		log->n = k + 1;
	}
	return off == len - 8 ? 0 : -1;
}

struct buildlog *buildlog_open(const char *path, int64_t start_ns)
{
	struct buildlog *log = xcalloc(1, sizeof(*log));
	size_t len = 0, k;
	int64_t old_start = 0;

	const char *racy = getenv("PREPYC_TEST_RACY_NS");

	log->path = path ? xstrdup(path) : NULL;
	log->start_ns = start_ns;
	log->racy_ns = racy && *racy ? strtoll(racy, NULL, 10) : BUILDLOG_RACY_NS;
	pthread_mutex_init(&log->lock, NULL);
	strbuf_init(&log->out, 0);
	if (!path || !(log->data = logfile_read(path, LOGFILE_HEAD + 8, LOG_MAX, "build log", &len)))
		return log;
	if (parse(log, (const unsigned char *)log->data, len, &old_start) < 0) {
		trace("build log '%s' ignored: not a whole prepyc build log", path);
		log->n = 0;
		return log;
	}
	for (k = 0; k < log->n; k++) {
		struct loaded *l = &log->v[k];

		/* each path ends where the next entry (parsed already) or the checksum starts */
		l->e.path = log->data + l->off;
		log->data[l->off + l->plen] = '\0';
		l->trusted = l->e.src.ctime_ns < old_start - log->racy_ns &&
			     l->e.pyc.ctime_ns < old_start - log->racy_ns;
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

static const struct loaded *find(const struct buildlog *log, const char *pyc, size_t len)
{
	size_t i;

	if (!log->n)
		return NULL;
	for (i = path_hash(pyc, len) & (log->nslots - 1); log->slot[i];
	     i = (i + 1) & (log->nslots - 1)) {
		const struct loaded *l = &log->v[log->slot[i] - 1];

		if (l->plen == len && !memcmp(l->e.path, pyc, len))
			return l;
	}
	return NULL;
}

const struct buildlog_entry *buildlog_find(const struct buildlog *log, const char *pyc)
{
	const struct loaded *l = log ? find(log, pyc, strlen(pyc)) : NULL;

	return l && l->trusted ? &l->e : NULL;
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
	const struct loaded *old;
	unsigned char h[BUILDLOG_HEADER_MAX];
	size_t plen = strlen(pyc);

	if (!log || !log->path || hlen > BUILDLOG_HEADER_MAX || !plen)
		return;
	memset(h, 0, sizeof(h));
	memcpy(h, hdr, hlen);
	old = find(log, pyc, plen);
	if (old && old->trusted && buildlog_stat_equal(&old->e.src, src) &&
	    buildlog_stat_equal(&old->e.pyc, pyc_st) && old->e.flags == flags &&
	    old->e.hlen == hlen && !memcmp(old->e.hdr, h, sizeof(h))) {
		atomic_store_explicit(&log->again[old - log->v], 1, memory_order_relaxed);
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

	strbuf_grow(&all, LOGFILE_HEAD + log->out.len + nsame * (ENTRY_FIXED + 64) + 8);
	logfile_begin(&all, LOG_MAGIC, LOG_VERSION, (uint32_t)(nsame + log->nout), log->start_ns);
	for (k = 0; k < log->n; k++) {
		const struct loaded *l = &log->v[k];

		if (atomic_load_explicit(&log->again[k], memory_order_relaxed))
			put_entry(&all, l->e.path, l->plen, &l->e.src, &l->e.pyc, l->e.hdr,
				  l->e.hlen, l->e.flags);
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
	free(log->v);
	free(log->data);
	free(log->path);
	free(log);
}
