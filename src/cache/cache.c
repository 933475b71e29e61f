/*
 * cache.c - the bytecode cache: entries on disk, the run's counters, the
 * stats file, eviction, and `prepyc cache`.  The format and the rules of
 * concurrent use are in cache.h and ARCHITECTURE.md ("The bytecode cache").
 */
#define _POSIX_C_SOURCE 200809L
#include "cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "blake2b.h"
#include "options.h"
#include "tempfile.h"
#include "util.h"
#include "banned.h"

#define ENTRY_MAGIC "PREPYC\x1a\n"
#define ENTRY_VERSION 1
#define HEADER_LEN 80 /* magic 8, version 4, flags 4, key 32, lengths 8+8, checksum 16 */
#define SUM_OFFSET 64
#define SUM_LEN 16
/* Nothing a compile produces comes near; bounds what a planted file makes us read. */
#define ENTRY_MAX_BODY ((uint64_t)1 << 30)

#define TOUCH_AFTER 3600      /* seconds: a hit refreshes an mtime older than this */
#define STALE_TEMP_AGE 3600   /* seconds: a temporary file older than this is garbage */
#define STATS_TRIM_AT (256 * 1024)
#define STATS_KEEP (64 * 1024)
#define STATS_SHOWN 10

static const char cachedir_tag[] =
	"Signature: 8a477f597d28d172789f06886806bc55\n"
	"# This file is a cache directory tag created by prepyc.\n"
	"# For information about cache directory tags, see:\n"
	"#\thttps://bford.info/cachedir/\n";

struct cache {
	char *dir;
	uint64_t max_size;
	int writable;
	atomic_int store_failed; /* set once, with the run's one warning */
	atomic_size_t hits, misses, stored;
	atomic_ullong stored_bytes;
};

/* ---- small helpers ---------------------------------------------------- */

static void put_le64(unsigned char *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get_le64(const unsigned char *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* we write lowercase only; anything else is not ours */
}

/* Decode `n` bytes from 2n lowercase hex digits; -1 if not hex. */
static int unhex(const char *s, unsigned char *out, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hi < 0 ? -1 : hexval(s[2 * i + 1]);

		if (lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* DIR/v1/ab/cdef... */
static char *entry_path(const char *dir, const unsigned char *key)
{
	static const char digits[] = "0123456789abcdef";
	char hex[2 * CACHE_KEY_LEN + 1];
	size_t i;

	for (i = 0; i < CACHE_KEY_LEN; i++) {
		hex[2 * i] = digits[key[i] >> 4];
		hex[2 * i + 1] = digits[key[i] & 15];
	}
	hex[2 * CACHE_KEY_LEN] = '\0';
	return xstrfmt("%s/v1/%.2s/%s", dir, hex, hex + 2);
}

static int is_temp_name(const char *name)
{
	size_t len = strlen(name);

	return len > 12 && !strncmp(name, ".prepyc-", 8) && !strcmp(name + len - 4, ".tmp");
}

static int timespec_cmp(const struct timespec *a, const struct timespec *b)
{
	if (a->tv_sec != b->tv_sec)
		return a->tv_sec < b->tv_sec ? -1 : 1;
	if (a->tv_nsec != b->tv_nsec)
		return a->tv_nsec < b->tv_nsec ? -1 : 1;
	return 0;
}

/* "12.3 MiB (12898812 bytes)", or "123 bytes" below a KiB. */
static void add_human(struct strbuf *sb, uint64_t n)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)n / 1024;
	size_t u = 0;

	if (n < 1024) {
		strbuf_addf(sb, "%llu byte%s", (unsigned long long)n, n == 1 ? "" : "s");
		return;
	}
	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	strbuf_addf(sb, "%.1f %s (%llu bytes)", v, units[u], (unsigned long long)n);
}

/* ---- entries ---------------------------------------------------------- */

/* BLAKE2b-128, unkeyed, of the header before the checksum, the code, the warnings. */
static void entry_sum(const unsigned char *header, const void *code, size_t code_len,
		      const void *warnings, size_t warnings_len, unsigned char out[SUM_LEN])
{
	struct blake2b s;

	blake2b_init(&s, SUM_LEN);
	blake2b_update(&s, header, SUM_OFFSET);
	blake2b_update(&s, code, code_len);
	blake2b_update(&s, warnings, warnings_len);
	blake2b_final(&s, out);
}

static void entry_header(unsigned char h[HEADER_LEN], const unsigned char *key, const void *code,
			 size_t code_len, const void *warnings, size_t warnings_len)
{
	memcpy(h, ENTRY_MAGIC, 8);
	put_le32(h + 8, ENTRY_VERSION);
	put_le32(h + 12, 0);
	memcpy(h + 16, key, CACHE_KEY_LEN);
	put_le64(h + 48, code_len);
	put_le64(h + 56, warnings_len);
	entry_sum(h, code, code_len, warnings, warnings_len, h + SUM_OFFSET);
}

/*
 * Read the entry open on `fd` (`st` its fstat) and check everything: a
 * regular file of exactly the size its header gives, our magic, version
 * and flags, `key`, the checksum.  0 with the parts appended to `code` and
 * `warnings`; -1 when anything fails (nothing appended).
 */
static int read_entry(int fd, const struct stat *st, const unsigned char *key,
		      struct strbuf *code, struct strbuf *warnings)
{
	size_t base = code->len, size;
	uint64_t code_len, warnings_len;
	unsigned char *p, sum[SUM_LEN];

	if (!S_ISREG(st->st_mode) || st->st_size < HEADER_LEN ||
	    (uint64_t)st->st_size > ENTRY_MAX_BODY + HEADER_LEN)
		return -1;
	size = (size_t)st->st_size;
	/* one read of the whole file, into the caller's buffer */
	strbuf_grow(code, size);
	p = (unsigned char *)code->buf + base;
	if (read_in_full(fd, p, size) != (ssize_t)size)
		goto bad;
	code_len = get_le64(p + 48);
	warnings_len = get_le64(p + 56);
	if (memcmp(p, ENTRY_MAGIC, 8) || get_le32(p + 8) != ENTRY_VERSION || get_le32(p + 12) ||
	    memcmp(p + 16, key, CACHE_KEY_LEN) || code_len > size - HEADER_LEN ||
	    warnings_len != size - HEADER_LEN - code_len)
		goto bad;
	entry_sum(p, p + HEADER_LEN, code_len, p + HEADER_LEN + code_len, warnings_len, sum);
	if (memcmp(sum, p + SUM_OFFSET, SUM_LEN))
		goto bad;
	strbuf_add(warnings, p + HEADER_LEN + code_len, warnings_len);
	memmove(p, p + HEADER_LEN, code_len);
	strbuf_setlen(code, base + code_len);
	return 0;
bad:
	strbuf_setlen(code, base);
	return -1;
}

/*
 * Remove a damaged entry, unless it is no longer the file we read (`st`,
 * when known): another process may have just published a good one.
 */
static void remove_damaged(const char *path, const struct stat *st)
{
	struct stat now;

	if (st && (lstat(path, &now) < 0 || now.st_dev != st->st_dev || now.st_ino != st->st_ino))
		return;
	if (unlink(path) == 0)
		trace("cache: removed damaged entry '%s'", path);
}

int cache_get(struct cache *c, const unsigned char key[CACHE_KEY_LEN], struct strbuf *code,
	      struct strbuf *warnings)
{
	char *path;
	struct stat st;
	int fd, hit = 0;

	if (!c)
		return 0;
	path = entry_path(c->dir, key);
	/* O_NONBLOCK: a FIFO planted at an entry's path must not hang us */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		if (errno == ELOOP && c->writable)
			remove_damaged(path, NULL); /* a symbolic link is not an entry */
		goto out;
	}
	if (fstat(fd, &st) < 0)
		goto out;
	if (read_entry(fd, &st, key, code, warnings) < 0) {
		if (c->writable)
			remove_damaged(path, &st);
		goto out;
	}
	hit = 1;
	/* recency for eviction, at most once an hour per entry; a failure only costs precision */
	if (c->writable && st.st_mtime < time(NULL) - TOUCH_AFTER)
		futimens(fd, NULL);
out:
	if (fd >= 0)
		close(fd);
	free(path);
	atomic_fetch_add(hit ? &c->hits : &c->misses, 1);
	return hit;
}

void cache_put(struct cache *c, const unsigned char key[CACHE_KEY_LEN], const void *code,
	       size_t code_len, const void *warnings, size_t warnings_len)
{
	unsigned char header[HEADER_LEN];
	struct iovec iov[3];
	struct stat st;
	const char *what = "";
	char *path;
	int n = 0;

	if (!c || !c->writable || atomic_load(&c->store_failed))
		return;
	if ((uint64_t)code_len + warnings_len > ENTRY_MAX_BODY)
		return;
	path = entry_path(c->dir, key);
	if (lstat(path, &st) == 0)
		goto out; /* stored already (by us or another process); a bad one goes on its next get */
	entry_header(header, key, code, code_len, warnings, warnings_len);
	iov[n].iov_base = header;
	iov[n++].iov_len = HEADER_LEN;
	if (code_len) {
		iov[n].iov_base = (void *)code;
		iov[n++].iov_len = code_len;
	}
	if (warnings_len) {
		iov[n].iov_base = (void *)warnings;
		iov[n++].iov_len = warnings_len;
	}
	if (write_file_atomic(path, 0644, iov, n, &what) < 0) {
		int e = errno;

		if (!atomic_exchange(&c->store_failed, 1))
			warning("cache: %s '%s' (%s): storing nothing more in the cache in this run",
				what, path, strerror(e));
		goto out;
	}
	atomic_fetch_add(&c->stored, 1);
	atomic_fetch_add(&c->stored_bytes, (unsigned long long)HEADER_LEN + code_len + warnings_len);
out:
	free(path);
}

void cache_counts(const struct cache *c, size_t *hits, size_t *misses, size_t *stored)
{
	*hits = c ? atomic_load(&c->hits) : 0;
	*misses = c ? atomic_load(&c->misses) : 0;
	*stored = c ? atomic_load(&c->stored) : 0;
}

/* ---- opening ---------------------------------------------------------- */

char *cache_default_dir(const char *opt)
{
	const char *env;

	if (opt && *opt)
		return xstrdup(opt);
	env = getenv("PREPYC_CACHE_DIR");
	if (env && *env)
		return xstrdup(env);
	env = getenv("XDG_CACHE_HOME");
	if (env && *env == '/') /* the XDG spec: a relative value is to be ignored */
		return xstrfmt("%s/prepyc", env);
	env = getenv("HOME");
	if (env && *env)
		return xstrfmt("%s/.cache/prepyc", env);
	return NULL;
}

struct cache *cache_open(const char *dir, uint64_t max_size)
{
	char *v1 = xstrfmt("%s/v1", dir), *below = xstrfmt("%s/v1/-", dir);
	struct cache *c = NULL;
	struct stat st;
	int e = 0, mk;

	/* mkdir -p DIR/v1 (mkdirs_for makes the directories of a path) */
	mk = mkdirs_for(below) < 0 ? errno : 0;
	if (stat(v1, &st) < 0)
		e = mk ? mk : errno;
	else if (!S_ISDIR(st.st_mode))
		e = ENOTDIR;
	if (e) {
		warning("cannot create the cache directory '%s' (%s): compiling without the cache",
			dir, strerror(e));
		goto out;
	}
	if (access(v1, R_OK | X_OK) < 0) {
		warning("cannot read the cache directory '%s' (%s): compiling without the cache",
			dir, strerror(errno));
		goto out;
	}
	c = xcalloc(1, sizeof(*c));
	c->dir = xstrdup(dir);
	c->max_size = max_size;
	atomic_init(&c->store_failed, 0);
	atomic_init(&c->hits, 0);
	atomic_init(&c->misses, 0);
	atomic_init(&c->stored, 0);
	atomic_init(&c->stored_bytes, 0);
	/* access() sees modes, ACLs and read-only mounts; a full disk shows at the first put */
	if (access(v1, W_OK | X_OK) < 0 || access(dir, W_OK | X_OK) < 0) {
		warning("cache directory '%s' is not writable (%s): compiling without storing to the cache",
			dir, strerror(errno));
	} else {
		char *tag = xstrfmt("%s/CACHEDIR.TAG", dir);

		c->writable = 1;
		if (lstat(tag, &st) < 0 && errno == ENOENT) {
			struct iovec iov = { (void *)cachedir_tag, sizeof(cachedir_tag) - 1 };
			const char *what;

			write_file_atomic(tag, 0644, &iov, 1, &what); /* only a courtesy */
		}
		free(tag);
	}
out:
	free(v1);
	free(below);
	return c;
}

/* ---- scanning, eviction ----------------------------------------------- */

struct entry_info {
	struct timespec mtime;
	uint64_t size;
	unsigned char key[CACHE_KEY_LEN];
};

enum temp_policy {
	TEMPS_KEEP,       /* count them */
	TEMPS_REMOVE_OLD, /* remove those older than STALE_TEMP_AGE (a live run may own the others) */
	TEMPS_REMOVE_ALL,
};

struct scan {
	struct entry_info *v;
	size_t nr, alloc;
	uint64_t total;  /* bytes in the entries found */
	size_t temps;    /* temporary files kept */
	size_t temps_removed;
	uint64_t temp_bytes_removed;
};

static void scan_release(struct scan *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static void scan_subdir(int dfd, const char *sub, unsigned char first, enum temp_policy temps,
			time_t now, struct scan *s)
{
	int fd = openat(dfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d))) {
		struct entry_info *e;
		struct stat st;

		if (is_temp_name(de->d_name)) {
			if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode))
				continue;
			if (temps == TEMPS_KEEP ||
			    (temps == TEMPS_REMOVE_OLD && st.st_mtime > now - STALE_TEMP_AGE) ||
			    unlinkat(fd, de->d_name, 0) < 0) {
				s->temps++;
			} else {
				s->temps_removed++;
				s->temp_bytes_removed += (uint64_t)st.st_size;
			}
			continue;
		}
		if (strlen(de->d_name) != 2 * CACHE_KEY_LEN - 2)
			continue;
		ALLOC_GROW(s->v, s->nr + 1, s->alloc);
		e = &s->v[s->nr];
		e->key[0] = first;
		if (unhex(de->d_name, e->key + 1, CACHE_KEY_LEN - 1) < 0 ||
		    fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue; /* not ours, or gone */
		e->mtime = st.st_mtim;
		e->size = (uint64_t)st.st_size;
		s->total += e->size;
		s->nr++;
	}
	closedir(d);
}

/*
 * Find every entry under DIR/v1 (subdirectories and names of our pattern
 * only: other files are not ours) and deal with temporary files as
 * `temps` says.  0, 1 when there is no DIR/v1, -1 with errno on error.
 */
static int scan_cache(const char *dir, enum temp_policy temps, struct scan *s)
{
	char *v1 = xstrfmt("%s/v1", dir);
	int dfd = open(v1, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	time_t now = time(NULL);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *de;

	memset(s, 0, sizeof(*s));
	free(v1);
	if (!d) {
		int e = errno;

		if (dfd >= 0)
			close(dfd);
		errno = e;
		return e == ENOENT ? 1 : -1;
	}
	while ((de = readdir(d))) {
		unsigned char first;

		if (strlen(de->d_name) == 2 && !unhex(de->d_name, &first, 1))
			scan_subdir(dfd, de->d_name, first, temps, now, s);
	}
	closedir(d);
	return 0;
}

static int by_age(const void *a, const void *b)
{
	const struct entry_info *x = a, *y = b;
	int r = timespec_cmp(&x->mtime, &y->mtime);

	return r ? r : memcmp(x->key, y->key, CACHE_KEY_LEN);
}

/*
 * Remove least-recently-used entries of `s` until its total is at most
 * `target`; the count removed, their bytes in *bytes.  An entry another
 * process removed first counts as gone but not as ours.
 */
static size_t evict(const char *dir, struct scan *s, uint64_t target, uint64_t *bytes)
{
	size_t i, n = 0;

	*bytes = 0;
	if (s->total <= target)
		return 0;
	qsort(s->v, s->nr, sizeof(*s->v), by_age);
	for (i = 0; i < s->nr && s->total > target; i++) {
		char *path = entry_path(dir, s->v[i].key);

		if (unlink(path) == 0) {
			n++;
			*bytes += s->v[i].size;
		}
		s->total -= s->v[i].size;
		s->v[i].size = 0;
		free(path);
	}
	return n;
}

/* ---- the stats file --------------------------------------------------- */

struct run_line {
	long long when;
	char *label;
	uint64_t hits, misses, stored, stored_bytes, evicted, max_size;
};

/*
 * "TIME LABEL name=N...": the time is the first field, the counters are
 * the name=number fields at the end, the label is what is between (it may
 * hold spaces).  0, or -1 for a line that is not one of ours.
 */
static int parse_run_line(const char *line, size_t len, struct run_line *r)
{
	char *s = xstrndup(line, len), *p, *end = s + len, *q;
	int have = 0;

	memset(r, 0, sizeof(*r));
	r->when = strtoll(s, &p, 10);
	if (p == s || *p != ' ')
		goto bad;
	while (end > p) {
		char *eq, *num;
		unsigned long long v;

		for (q = end; q > p && q[-1] != ' '; q--)
			;
		eq = memchr(q, '=', (size_t)(end - q));
		if (!eq || eq == q || eq + 1 == end)
			break;
		errno = 0;
		v = strtoull(eq + 1, &num, 10);
		if (num != end || errno || eq[1] < '0' || eq[1] > '9')
			break;
		*eq = '\0';
		if (!strcmp(q, "hits")) {
			r->hits = v;
			have |= 1;
		} else if (!strcmp(q, "misses")) {
			r->misses = v;
			have |= 2;
		} else if (!strcmp(q, "stored")) {
			r->stored = v;
		} else if (!strcmp(q, "stored_bytes")) {
			r->stored_bytes = v;
		} else if (!strcmp(q, "evicted")) {
			r->evicted = v;
		} else if (!strcmp(q, "max_size")) {
			r->max_size = v;
		}
		end = q;
		while (end > p && end[-1] == ' ')
			end--;
	}
	if (have != 3)
		goto bad;
	while (*p == ' ')
		p++;
	r->label = xstrndup(p, end > p ? (size_t)(end - p) : 0);
	free(s);
	return 0;
bad:
	free(s);
	return -1;
}

/* The last whole lines of DIR/stats (at most `max` bytes' worth) in `sb`; -1 with errno. */
static int read_stats_tail(const char *dir, size_t max, struct strbuf *sb)
{
	char *path = xstrfmt("%s/stats", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;
	off_t from = 0;
	long n;

	free(path);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	if (st.st_size > (off_t)max)
		from = st.st_size - (off_t)max;
	if (lseek(fd, from, SEEK_SET) < 0) {
		close(fd);
		return -1;
	}
	n = strbuf_read_fd(sb, fd, max + 1);
	close(fd);
	if (n < 0)
		return -1;
	if (from > 0) {
		char *nl = memchr(sb->buf, '\n', sb->len);

		strbuf_remove_front(sb, nl ? (size_t)(nl - sb->buf) + 1 : sb->len);
	}
	return 0;
}

/* Keep the file small: rewrite it with its last lines.  Lines appended meanwhile may be lost. */
static void trim_stats(const char *dir, const char *path)
{
	struct strbuf sb = STRBUF_INIT;

	if (read_stats_tail(dir, STATS_KEEP, &sb) == 0) {
		struct iovec iov = { sb.buf, sb.len };
		const char *what;

		write_file_atomic(path, 0644, &iov, 1, &what);
	}
	strbuf_release(&sb);
}

static void append_stats(const struct cache *c, const char *label, size_t evicted)
{
	char *path = xstrfmt("%s/stats", c->dir);
	struct strbuf line = STRBUF_INIT;
	struct stat st;
	const char *p;
	int fd;

	strbuf_addf(&line, "%lld ", (long long)time(NULL));
	for (p = label && *label ? label : "-"; *p; p++) /* one line whatever the label holds */
		strbuf_addch(&line, (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p);
	strbuf_addf(&line, " hits=%zu misses=%zu stored=%zu stored_bytes=%llu evicted=%zu max_size=%llu\n",
		    atomic_load(&c->hits), atomic_load(&c->misses), atomic_load(&c->stored),
		    (unsigned long long)atomic_load(&c->stored_bytes), evicted,
		    (unsigned long long)c->max_size);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
	if (fd >= 0) {
		/* one write(): O_APPEND places it whole after the other runs' lines */
		if (xwrite(fd, line.buf, line.len) < 0)
			trace("cache: cannot append to '%s': %s", path, strerror(errno));
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > STATS_TRIM_AT)
			trim_stats(c->dir, path);
		close(fd);
	}
	strbuf_release(&line);
	free(path);
}

void cache_close(struct cache *c, const char *label)
{
	size_t hits, misses, stored, evicted = 0;

	if (!c)
		return;
	cache_counts(c, &hits, &misses, &stored);
	if (c->writable && stored) {
		struct scan s;
		uint64_t bytes;

		if (scan_cache(c->dir, TEMPS_REMOVE_OLD, &s) == 0 && s.total > c->max_size) {
			/* down to 90%, so that the next runs do not each evict a little */
			evicted = evict(c->dir, &s, c->max_size - c->max_size / 10, &bytes);
			trace("cache: evicted %zu entries (%llu bytes), %llu bytes left", evicted,
			      (unsigned long long)bytes, (unsigned long long)s.total);
		}
		scan_release(&s);
	}
	if (c->writable && (hits || misses))
		append_stats(c, label, evicted);
	free(c->dir);
	free(c);
}

/* ---- sizes ------------------------------------------------------------ */

int cache_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "kmgtpe";
	uint64_t v = 0;
	const char *p = s;
	const char *u;
	int shift = 0;

	if (!s || *p < '0' || *p > '9')
		return -1; /* no sign, no space, no empty string */
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p && (u = strchr(units, *p | 0x20)) != NULL) {
		shift = 10 * (int)(u - units + 1);
		p++;
		if ((*p | 0x20) == 'i' && (p[1] | 0x20) == 'b')
			p += 2;
		else if ((*p | 0x20) == 'b')
			p++;
	} else if ((*p | 0x20) == 'b') {
		p++;
	}
	if (*p)
		return -1;
	if (shift && v > UINT64_MAX >> shift)
		return -1;
	*out = v << shift;
	return 0;
}

/* ---- prepyc cache ----------------------------------------------------- */

static void print_runs(const char *dir)
{
	struct strbuf sb = STRBUF_INIT;
	struct run_line runs[STATS_SHOWN];
	size_t n = 0, total = 0, i;
	uint64_t hits = 0, misses = 0;
	int width = 0;
	char *p, *end;

	if (read_stats_tail(dir, 16384, &sb) < 0) {
		printf("no runs recorded\n");
		return;
	}
	/* the last STATS_SHOWN lines that parse, oldest first */
	for (p = sb.buf, end = sb.buf + sb.len; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		struct run_line r;

		if (parse_run_line(p, len, &r) == 0) {
			if (n == STATS_SHOWN) {
				free(runs[0].label);
				memmove(runs, runs + 1, sizeof(runs[0]) * (STATS_SHOWN - 1));
				n--;
			}
			runs[n++] = r;
			total++;
		}
		p += len + 1;
	}
	strbuf_release(&sb);
	if (!n) {
		printf("no runs recorded\n");
		return;
	}
	for (i = 0; i < n; i++)
		if ((int)strlen(runs[i].label) > width)
			width = (int)strlen(runs[i].label);
	printf("last %zu run%s:\n", n, n == 1 ? "" : "s");
	for (i = 0; i < n; i++) {
		struct run_line *r = &runs[i];
		time_t t = (time_t)r->when;
		char when[32] = "?";
		struct tm tm;

		if (localtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		printf("  %s  %-*s  hits %llu  misses %llu  stored %llu", when, width, r->label,
		       (unsigned long long)r->hits, (unsigned long long)r->misses,
		       (unsigned long long)r->stored);
		if (r->evicted)
			printf("  evicted %llu", (unsigned long long)r->evicted);
		putchar('\n');
		hits += r->hits;
		misses += r->misses;
		free(r->label);
	}
	if (hits + misses)
		printf("hit rate: %.1f%% over these runs (%llu hits, %llu misses)\n",
		       100.0 * (double)hits / (double)(hits + misses), (unsigned long long)hits,
		       (unsigned long long)misses);
}

/* The bound of the last run recorded in DIR/stats, else the default. */
static uint64_t last_max_size(const char *dir, int *recorded)
{
	struct strbuf sb = STRBUF_INIT;
	uint64_t max = CACHE_DEFAULT_MAX_SIZE;
	char *p, *end;

	*recorded = 0;
	if (read_stats_tail(dir, 16384, &sb) == 0) {
		for (p = sb.buf, end = sb.buf + sb.len; p < end;) {
			char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
			struct run_line r;

			if (parse_run_line(p, len, &r) == 0) {
				if (r.max_size) {
					max = r.max_size;
					*recorded = 1;
				}
				free(r.label);
			}
			p += len + 1;
		}
	}
	strbuf_release(&sb);
	return max;
}

static int no_cache_at(const char *dir)
{
	struct stat st;
	char *v1 = xstrfmt("%s/v1", dir), *stats = xstrfmt("%s/stats", dir);
	int none = lstat(v1, &st) < 0 && errno == ENOENT && lstat(stats, &st) < 0 && errno == ENOENT;

	free(v1);
	free(stats);
	if (none)
		printf("no cache at %s\n", dir);
	return none;
}

static int cache_stats(const char *dir)
{
	struct strbuf sb = STRBUF_INIT;
	struct scan s;
	uint64_t max;
	int recorded;

	if (no_cache_at(dir))
		return 0;
	if (scan_cache(dir, TEMPS_KEEP, &s) < 0) {
		error_errno("cannot read the cache directory '%s/v1'", dir);
		return 1;
	}
	max = last_max_size(dir, &recorded);
	printf("cache directory: %s\n", dir);
	add_human(&sb, s.total);
	printf("entries:         %zu, %s\n", s.nr, sb.buf);
	strbuf_reset(&sb);
	add_human(&sb, max);
	printf("max size:        %s, %s\n", sb.buf, recorded ? "the last run's" : "the default");
	if (s.temps)
		printf("temporary files: %zu (runs in progress, or left by killed ones)\n", s.temps);
	strbuf_release(&sb);
	scan_release(&s);
	print_runs(dir);
	return 0;
}

/* unlink, counting; ENOENT is not an error (another process removed it). */
static int remove_counted(const char *path, int *failed)
{
	if (unlink(path) == 0)
		return 1;
	if (errno != ENOENT) {
		error_errno("cannot remove '%s'", path);
		*failed = 1;
	}
	return 0;
}

/* Temporary files we left directly in DIR (CACHEDIR.TAG's, the stats file's). */
static size_t remove_top_temps(const char *dir, int *failed)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (is_temp_name(de->d_name)) {
			char *path = xstrfmt("%s/%s", dir, de->d_name);

			n += remove_counted(path, failed);
			free(path);
		}
	}
	closedir(d);
	return n;
}

static int cache_clear(const char *dir)
{
	struct strbuf sb = STRBUF_INIT;
	uint64_t bytes = 0;
	size_t i, n = 0, temps;
	struct scan s;
	int failed = 0;
	char *path;

	if (no_cache_at(dir))
		return 0;
	if (scan_cache(dir, TEMPS_REMOVE_ALL, &s) < 0) {
		error_errno("cannot read the cache directory '%s/v1'", dir);
		return 1;
	}
	for (i = 0; i < s.nr; i++) {
		path = entry_path(dir, s.v[i].key);
		if (remove_counted(path, &failed)) {
			n++;
			bytes += s.v[i].size;
		}
		free(path);
	}
	/* the directories, if we left them empty: a file of the user's keeps its own */
	for (i = 0; i < 256; i++) {
		path = xstrfmt("%s/v1/%02zx", dir, i);
		rmdir(path);
		free(path);
	}
	path = xstrfmt("%s/v1", dir);
	rmdir(path);
	free(path);
	path = xstrfmt("%s/stats", dir);
	remove_counted(path, &failed);
	free(path);
	path = xstrfmt("%s/CACHEDIR.TAG", dir);
	remove_counted(path, &failed);
	free(path);
	temps = s.temps_removed + remove_top_temps(dir, &failed);

	add_human(&sb, bytes);
	printf("%s: cache clear: removed %zu entr%s (%s) and %zu temporary file%s from %s\n",
	       progname, n, n == 1 ? "y" : "ies", sb.buf, temps, temps == 1 ? "" : "s", dir);
	strbuf_release(&sb);
	scan_release(&s);
	return failed;
}

/* 1 when the entry is sound (it is read, not touched). */
static int entry_is_sound(const char *path, const unsigned char *key)
{
	struct strbuf code = STRBUF_INIT, warnings = STRBUF_INIT;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	struct stat st;
	int ok;

	if (fd < 0)
		return errno == ENOENT; /* gone meanwhile: nothing to remove */
	ok = fstat(fd, &st) == 0 && read_entry(fd, &st, key, &code, &warnings) == 0;
	close(fd);
	strbuf_release(&code);
	strbuf_release(&warnings);
	return ok;
}

static int cache_prune(const char *dir, const char *max_arg)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i, j, damaged = 0, evicted, left = 0;
	uint64_t max, damaged_bytes = 0, evicted_bytes;
	struct scan s;
	int failed = 0, recorded;

	if (max_arg) {
		if (cache_parse_size(max_arg, &max) < 0) {
			error("option '--cache-max-size' expects a size such as 800M or 2G, not '%s'",
			      max_arg);
			return 2;
		}
	} else {
		max = last_max_size(dir, &recorded);
	}
	if (no_cache_at(dir))
		return 0;
	if (scan_cache(dir, TEMPS_REMOVE_OLD, &s) < 0) {
		error_errno("cannot read the cache directory '%s/v1'", dir);
		return 1;
	}
	for (i = j = 0; i < s.nr; i++) {
		char *path = entry_path(dir, s.v[i].key);

		if (entry_is_sound(path, s.v[i].key)) {
			s.v[j++] = s.v[i];
		} else {
			damaged += remove_counted(path, &failed);
			damaged_bytes += s.v[i].size;
			s.total -= s.v[i].size;
		}
		free(path);
	}
	s.nr = j;
	evicted = evict(dir, &s, max, &evicted_bytes);
	for (i = 0; i < s.nr; i++)
		left += s.v[i].size != 0; /* evict() zeroes the sizes of the entries gone */

	add_human(&sb, damaged_bytes + evicted_bytes);
	printf("%s: cache prune: removed %zu damaged entr%s and %zu least recently used (%s), "
	       "%zu temporary file%s; ",
	       progname, damaged, damaged == 1 ? "y" : "ies", evicted, sb.buf, s.temps_removed,
	       s.temps_removed == 1 ? "" : "s");
	strbuf_reset(&sb);
	add_human(&sb, s.total);
	printf("%zu entr%s left (%s), ", left, left == 1 ? "y" : "ies", sb.buf);
	strbuf_reset(&sb);
	add_human(&sb, max);
	printf("max %s\n", sb.buf);
	strbuf_release(&sb);
	scan_release(&s);
	return failed;
}

static const char *const cache_usage[] = {
	"usage: prepyc cache stats [--cache-dir DIR]",
	"   or: prepyc cache clear [--cache-dir DIR]",
	"   or: prepyc cache prune [--cache-dir DIR] [--cache-max-size SIZE]",
	"",
	"stats: the entries, their size, the last runs and their hit rate.",
	"clear: remove every entry, the stats and the temporary files (files prepyc",
	"       did not make are left alone).",
	"prune: remove damaged entries, temporary files older than an hour, and the",
	"       least recently used entries down to SIZE (default: the bound of the",
	"       last run recorded, else 1G).",
	"",
	"The cache directory is --cache-dir, else $PREPYC_CACHE_DIR, else",
	"$XDG_CACHE_HOME/prepyc, else ~/.cache/prepyc.",
	NULL,
};

int cmd_cache(int argc, const char **argv)
{
	const char *dir_opt = NULL, *max_arg = NULL, *sub = argc > 1 ? argv[1] : NULL;
	const struct option opts[] = {
		OPT_STRING(0, "cache-dir", &dir_opt, "DIR", "the cache directory"),
		OPT_STRING(0, "cache-max-size", &max_arg, "SIZE",
			   "prune: the bound, in bytes or with K, M, G, T (powers of 1024)"),
		OPT_END(),
	};
	char *dir;
	int n, rc;

	if (sub && (!strcmp(sub, "-h") || !strcmp(sub, "--help"))) {
		n = -2;
	} else if (!sub || (strcmp(sub, "stats") && strcmp(sub, "clear") && strcmp(sub, "prune"))) {
		if (sub)
			error("unknown cache command '%s'", sub);
		else
			error("no cache command given");
		n = -1;
	} else {
		n = parse_options(argc - 2, argv + 2, opts);
		if (n > 0) {
			error("unexpected argument '%s'", argv[2]);
			n = -1;
		} else if (max_arg && strcmp(sub, "prune")) {
			error("option '--cache-max-size' is for 'prepyc cache prune' only");
			n = -1;
		}
	}
	if (n == -2) {
		usage_with_options(stdout, cache_usage, opts);
		printf("\nexit status: 0 success (a missing cache is not an error); 1 a file or\n"
		       "directory could not be read or removed; 2 usage error.\n");
		return 0;
	}
	if (n < 0) {
		fprintf(stderr, "%s\nTry 'prepyc cache --help' for the options.\n", cache_usage[0]);
		return 2;
	}
	dir = cache_default_dir(dir_opt);
	if (!dir) {
		error("no cache directory: HOME is not set; use --cache-dir");
		return 2;
	}
	if (!strcmp(sub, "stats"))
		rc = cache_stats(dir);
	else if (!strcmp(sub, "clear"))
		rc = cache_clear(dir);
	else
		rc = cache_prune(dir, max_arg);
	free(dir);
	fflush(stdout);
	return rc;
}
