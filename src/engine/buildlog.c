/*
 * buildlog.c - the build log: freshness from stat() alone (see buildlog.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "buildlog.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "blake2b.h"
#include "siphash.h"
#include "strbuf.h"
#include "tempfile.h"
#include "trustdir.h"
#include "util.h"
#include "banned.h"

#define LOG_MAGIC "PREPYCL\n"
#define LOG_VERSION 1
#define LOG_HEAD 32            /* magic, version, count, start_ns, body_len */
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
	pthread_mutex_t lock;   /* guards what follows */
	struct strbuf out;      /* the entries recorded by this run, serialized */
	size_t nout, nsame;     /* recorded; of them, equal to a trusted loaded entry */
};

static uint64_t hash_path(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 0x100000001b3ULL;
	return h;
}

static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u64(struct strbuf *sb, uint64_t v)
{
	unsigned char b[8];
	int i;

	for (i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	strbuf_add(sb, b, 8);
}

static void put_u32(struct strbuf *sb, uint32_t v)
{
	unsigned char b[4];
	int i;

	for (i = 0; i < 4; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	strbuf_add(sb, b, 4);
}

static void get_stat(struct buildlog_stat *st, const unsigned char *p)
{
	st->dev = get_u64(p);
	st->ino = get_u64(p + 8);
	st->size = get_u64(p + 16);
	st->mtime_ns = (int64_t)get_u64(p + 24);
	st->ctime_ns = (int64_t)get_u64(p + 32);
}

static void put_stat(struct strbuf *sb, const struct buildlog_stat *st)
{
	put_u64(sb, st->dev);
	put_u64(sb, st->ino);
	put_u64(sb, st->size);
	put_u64(sb, (uint64_t)st->mtime_ns);
	put_u64(sb, (uint64_t)st->ctime_ns);
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
	struct strbuf id = STRBUF_INIT, reason = STRBUF_INIT;
	unsigned char key[16];
	char hex[33], *cwd, *name;
	struct trust trust;
	size_t i;
	int bad;

	trust_init(&trust, 0);
	bad = trust_cache_dir(&trust, dir, "buildlog", 1, &reason);
	trust_release(&trust);
	if (bad) {
		trace("no build log in '%s': %s", dir, bad < 0 ? strerror(errno) : reason.buf);
		strbuf_release(&reason);
		return NULL;
	}
	strbuf_release(&reason);
	cwd = getcwd(NULL, 0);

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
	blake2b(key, sizeof(key), id.buf, id.len);
	for (i = 0; i < sizeof(key); i++) {
		hex[2 * i] = "0123456789abcdef"[key[i] >> 4];
		hex[2 * i + 1] = "0123456789abcdef"[key[i] & 15];
	}
	hex[32] = '\0';
	name = xstrfmt("%s/buildlog/%s", dir, hex);
	free(cwd);
	strbuf_release(&id);
	return name;
}

/* The log's bytes, if it is a file we may trust (buildlog.h); NULL otherwise (traced). */
static char *read_log(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	struct strbuf sb = STRBUF_INIT;
	struct stat st;
	const char *why = NULL;

	if (fd < 0)
		return NULL; /* none yet: the common case, not worth a word */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (st.st_uid != geteuid() || (st.st_mode & 022) || st.st_nlink != 1)
		why = "not the user's own, or writable by others";
	else if ((uint64_t)st.st_size < LOG_HEAD || (uint64_t)st.st_size > LOG_MAX)
		why = "of a wrong size";
	else if (strbuf_read_fd(&sb, fd, (size_t)st.st_size + 1) < 0)
		why = strerror(errno);
	close(fd);
	if (why) {
		trace("build log '%s' ignored: %s", path, why);
		strbuf_release(&sb);
		return NULL;
	}
	*len = sb.len;
	return strbuf_detach(&sb, NULL);
}

static void table_add(struct buildlog *log, size_t k)
{
	size_t i = hash_path(log->v[k].e.path) & (log->nslots - 1);

	while (log->slot[i])
		i = (i + 1) & (log->nslots - 1);
	log->slot[i] = (uint32_t)(k + 1);
}

/* Parse the log's bytes into log->v; -1 when they are not a whole, valid log. */
static int parse(struct buildlog *log, const unsigned char *p, size_t len, int64_t *start)
{
	uint64_t count, body;
	size_t off = LOG_HEAD, k;

	if (len < LOG_HEAD + 8 || memcmp(p, LOG_MAGIC, 8) || get_u32(p + 8) != LOG_VERSION)
		return -1;
	count = get_u32(p + 12);
	*start = (int64_t)get_u64(p + 16);
	body = get_u64(p + 24);
	if (body != len - LOG_HEAD - 8 || count > body / ENTRY_FIXED ||
	    get_u64(p + len - 8) != siphash13(0, 0, p, len - 8))
		return -1;
	log->v = xcalloc(count ? count : 1, sizeof(*log->v));
	for (k = 0; k < count; k++) {
		struct loaded *l = &log->v[k];

		if (len - 8 - off < ENTRY_FIXED)
			return -1;
		get_stat(&l->e.src, p + off);
		get_stat(&l->e.pyc, p + off + STAT_BYTES);
		l->e.flags = get_u32(p + off + 2 * STAT_BYTES);
		l->e.hlen = get_u32(p + off + 2 * STAT_BYTES + 4);
		memcpy(l->e.hdr, p + off + 2 * STAT_BYTES + 8, BUILDLOG_HEADER_MAX);
		l->plen = get_u32(p + off + ENTRY_FIXED - 4);
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
	if (!path || !(log->data = read_log(path, &len)))
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
	for (k = 0; k < log->n; k++)
		table_add(log, k);
	trace("build log '%s': %zu entries", path, log->n);
	return log;
}

static const struct loaded *find(const struct buildlog *log, const char *pyc)
{
	size_t i;

	if (!log->n)
		return NULL;
	for (i = hash_path(pyc) & (log->nslots - 1); log->slot[i]; i = (i + 1) & (log->nslots - 1))
		if (!strcmp(log->v[log->slot[i] - 1].e.path, pyc))
			return &log->v[log->slot[i] - 1];
	return NULL;
}

const struct buildlog_entry *buildlog_find(const struct buildlog *log, const char *pyc)
{
	const struct loaded *l = log ? find(log, pyc) : NULL;

	return l && l->trusted ? &l->e : NULL;
}

void buildlog_record(struct buildlog *log, const char *pyc, const struct buildlog_stat *src,
		     const struct buildlog_stat *pyc_st, const unsigned char *hdr, size_t hlen,
		     unsigned flags)
{
	const struct loaded *old;
	unsigned char h[BUILDLOG_HEADER_MAX];
	size_t plen = strlen(pyc);
	int same;

	if (!log || !log->path || hlen > BUILDLOG_HEADER_MAX || !plen)
		return;
	memset(h, 0, sizeof(h));
	memcpy(h, hdr, hlen);
	old = find(log, pyc);
	same = old && old->trusted && buildlog_stat_equal(&old->e.src, src) &&
	       buildlog_stat_equal(&old->e.pyc, pyc_st) && old->e.flags == flags &&
	       old->e.hlen == hlen && !memcmp(old->e.hdr, h, sizeof(h));
	pthread_mutex_lock(&log->lock);
	put_stat(&log->out, src);
	put_stat(&log->out, pyc_st);
	put_u32(&log->out, flags);
	put_u32(&log->out, (uint32_t)hlen);
	strbuf_add(&log->out, h, sizeof(h));
	put_u32(&log->out, (uint32_t)plen);
	strbuf_add(&log->out, pyc, plen);
	log->nout++;
	log->nsame += same;
	pthread_mutex_unlock(&log->lock);
}

static void write_log(struct buildlog *log)
{
	struct strbuf all = STRBUF_INIT;
	struct iovec iov[1];
	const char *what = "";

	strbuf_grow(&all, LOG_HEAD + log->out.len + 8);
	strbuf_add(&all, LOG_MAGIC, 8);
	put_u32(&all, LOG_VERSION);
	put_u32(&all, (uint32_t)log->nout);
	put_u64(&all, (uint64_t)log->start_ns);
	put_u64(&all, (uint64_t)log->out.len);
	strbuf_add(&all, log->out.buf, log->out.len);
	put_u64(&all, siphash13(0, 0, all.buf, all.len));
	iov[0].iov_base = all.buf;
	iov[0].iov_len = all.len;
	if (write_file_atomic(log->path, 0600, iov, 1, &what) < 0)
		trace("build log '%s' not written: %s: %s", log->path, what, strerror(errno));
	else
		trace("build log '%s': %zu entries written", log->path, log->nout);
	strbuf_release(&all);
}

void buildlog_close(struct buildlog *log)
{
	if (!log)
		return;
	if (log->path)
		trace("build log '%s': %zu of %zu pycs found fresh by their stat data alone",
		      log->path, log->nsame, log->nout);
	/* rewritten unless this run recorded exactly what it trusted (a no-op's no-op) */
	if (log->path && log->start_ns > 0 && log->nout <= UINT32_MAX &&
	    !(log->nout == log->nsame && log->nsame == log->n))
		write_log(log);
	pthread_mutex_destroy(&log->lock);
	strbuf_release(&log->out);
	free(log->slot);
	free(log->v);
	free(log->data);
	free(log->path);
	free(log);
}
