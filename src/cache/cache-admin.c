/*
 * cache-admin.c - a cache directory as a whole (cache-admin.h): scanning,
 * eviction, the stats file, and what `prepyc cache stats|clear|prune`
 * does.  The layout is store-disk.h's.
 */
#define _POSIX_C_SOURCE 200809L
#include "cache-admin.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "store-disk.h"
#include "strbuf.h"
#include "tempfile.h"
#include "trustdir.h"
#include "util.h"
#include "banned.h"

#define STATS_TAIL 16384 /* what `prepyc cache` reads of DIR/stats */

/* ---- small helpers ---------------------------------------------------- */

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

/* tempfile.h's names: ".prepyc-PID-N.tmp" */
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

/* ---- scanning, eviction ----------------------------------------------- */

struct entry_info {
	struct timespec mtime;
	uint64_t size;
	unsigned char key[CACHE_KEY_LEN];
};

enum temp_policy {
	TEMPS_KEEP,       /* count them */
	TEMPS_REMOVE_OLD, /* remove those older than DISK_STALE_TEMP_AGE (a live run may own the others) */
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
			    (temps == TEMPS_REMOVE_OLD && st.st_mtime > now - DISK_STALE_TEMP_AGE) ||
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
		char *path = disk_entry_path(dir, s->v[i].key);

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

/* A remote_NAME=N field of a stats line (store-disk.h). */
static void parse_remote_field(const char *name, uint64_t v, struct cache_run *r)
{
	struct cache_remote_stats *st = &r->remote;

	if (!strcmp(name, "hits"))
		st->hits = v;
	else if (!strcmp(name, "misses"))
		st->misses = v;
	else if (!strcmp(name, "uploads"))
		st->uploads = v;
	else if (!strcmp(name, "upload_bytes"))
		st->upload_bytes = v;
	else if (!strcmp(name, "errors"))
		st->errors = v;
	else if (!strcmp(name, "rejected"))
		st->rejected = v;
	else
		return;
	r->has_remote = 1;
}

/*
 * "TIME LABEL name=N...": the time is the first field, the counters are
 * the name=number fields at the end, the label is what is between (it may
 * hold spaces).  0, or -1 for a line that is not one of ours.
 */
static int parse_run_line(const char *line, size_t len, struct cache_run *r)
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
		} else if (!strcmp(q, "size")) {
			r->size = v;
		} else if (!strncmp(q, "remote_", 7)) {
			parse_remote_field(q + 7, v, r);
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
static void trim_stats(const char *dir, const char *path, mode_t mode)
{
	struct strbuf sb = STRBUF_INIT;

	if (read_stats_tail(dir, DISK_STATS_KEEP, &sb) == 0) {
		struct iovec iov = { sb.buf, sb.len };
		const char *what;

		write_file_atomic_exact(path, mode, &iov, 1, &what);
	}
	strbuf_release(&sb);
}


void cache_admin_append_run(const char *dir, const struct cache_run *r, const struct trust *t)
{
	char *path = xstrfmt("%s/stats", dir);
	struct strbuf line = STRBUF_INIT, why = STRBUF_INIT;
	mode_t mode = trust_file_mode(t);
	struct stat st;
	const char *p;
	int fd;

	strbuf_addf(&line, "%lld ", r->when);
	for (p = r->label && *r->label ? r->label : "-"; *p; p++) /* one line whatever the label holds */
		strbuf_addch(&line, (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p);
	strbuf_addf(&line,
		    " hits=%llu misses=%llu stored=%llu stored_bytes=%llu evicted=%llu max_size=%llu\n",
		    (unsigned long long)r->hits, (unsigned long long)r->misses,
		    (unsigned long long)r->stored, (unsigned long long)r->stored_bytes,
		    (unsigned long long)r->evicted, (unsigned long long)r->max_size);
	if (r->has_remote) {
		strbuf_setlen(&line, line.len - 1);
		strbuf_addf(&line,
			    " remote_hits=%llu remote_misses=%llu remote_uploads=%llu"
			    " remote_upload_bytes=%llu remote_errors=%llu remote_rejected=%llu\n",
			    (unsigned long long)r->remote.hits, (unsigned long long)r->remote.misses,
			    (unsigned long long)r->remote.uploads,
			    (unsigned long long)r->remote.upload_bytes,
			    (unsigned long long)r->remote.errors,
			    (unsigned long long)r->remote.rejected);
	}
	if (r->size) {
		strbuf_setlen(&line, line.len - 1);
		strbuf_addf(&line, " size=%llu\n", (unsigned long long)r->size);
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, mode);
	if (fd >= 0 && (fstat(fd, &st) < 0 || trust_stat_check(t, &st, &why))) {
		trace("cache: not appending to '%s': %s", path, why.buf);
		close(fd);
		fd = -1;
	}
	if (fd >= 0) {
		/* a group's stats file: the umask must not keep the others out */
		if (st.st_uid == t->uid && (st.st_mode & 0777) != mode && st.st_size == 0)
			fchmod(fd, mode);
		/* one write(): O_APPEND places it whole after the other runs' lines */
		if (xwrite(fd, line.buf, line.len) < 0)
			trace("cache: cannot append to '%s': %s", path, strerror(errno));
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > DISK_STATS_TRIM_AT)
			trim_stats(dir, path, mode);
		close(fd);
	}
	strbuf_release(&why);
	strbuf_release(&line);
	free(path);
}

int cache_admin_read_runs(const char *dir, size_t max, struct cache_runs *runs)
{
	struct strbuf sb = STRBUF_INIT;
	size_t alloc = 0;
	char *p, *end;

	memset(runs, 0, sizeof(*runs));
	if (read_stats_tail(dir, STATS_TAIL, &sb) < 0) {
		int e = errno;

		strbuf_release(&sb);
		errno = e;
		return -1;
	}
	/* the last `max` lines that parse, oldest first */
	for (p = sb.buf, end = sb.buf + sb.len; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		struct cache_run r;

		if (parse_run_line(p, len, &r) == 0) {
			if (r.max_size)
				runs->last_max_size = r.max_size;
			if (max && runs->nr == max) {
				free(runs->v[0].label);
				memmove(runs->v, runs->v + 1, sizeof(*runs->v) * (max - 1));
				runs->nr--;
			}
			if (max) {
				ALLOC_GROW(runs->v, runs->nr + 1, alloc);
				runs->v[runs->nr++] = r;
			} else {
				free(r.label);
			}
		}
		p += len + 1;
	}
	strbuf_release(&sb);
	return 0;
}

void cache_runs_release(struct cache_runs *runs)
{
	size_t i;

	for (i = 0; i < runs->nr; i++)
		free(runs->v[i].label);
	free(runs->v);
	memset(runs, 0, sizeof(*runs));
}

uint64_t cache_admin_last_max_size(const char *dir, int *recorded)
{
	struct cache_runs runs;

	cache_admin_read_runs(dir, 0, &runs);
	*recorded = runs.last_max_size != 0;
	return runs.last_max_size ? runs.last_max_size : CACHE_DEFAULT_MAX_SIZE;
}

/* ---- the whole directory ---------------------------------------------- */

/* What the entries may hold at most, by DIR/stats (cache_admin_trim()); -1: it cannot say. */
static int size_bound(const char *dir, uint64_t *bound)
{
	struct cache_runs runs;
	long long now = (long long)time(NULL);
	size_t i, j;
	int found = 0;

	if (cache_admin_read_runs(dir, STATS_TAIL, &runs) < 0)
		return -1;
	for (i = runs.nr; i > 0 && !found; i--) { /* the last recent scan */
		const struct cache_run *r = &runs.v[i - 1];

		found = r->size && r->when <= now && r->when > now - CACHE_SCAN_EVERY;
	}
	if (found) { /* runs.v[i]: that scan; what every run after it stored is added */
		*bound = runs.v[i].size;
		for (j = i + 1; j < runs.nr; j++)
			*bound += runs.v[j].stored_bytes;
	}
	cache_runs_release(&runs);
	return found ? 0 : -1;
}

size_t cache_admin_trim(const char *dir, uint64_t max_size, uint64_t stored_bytes, int fresh,
			uint64_t *size)
{
	size_t evicted = 0;
	struct scan s;
	uint64_t bytes = 0;

	*size = 0;
	if ((fresh || size_bound(dir, &bytes) == 0) && bytes + stored_bytes <= max_size) {
		trace("cache: at most %llu bytes by the stats, within %llu: not scanned",
		      (unsigned long long)(bytes + stored_bytes), (unsigned long long)max_size);
		return 0;
	}
	if (scan_cache(dir, TEMPS_REMOVE_OLD, &s) == 0) {
		if (s.total > max_size) {
			/* down to 90%, so that the next runs do not each evict a little */
			evicted = evict(dir, &s, max_size - max_size / 10, &bytes);
			trace("cache: evicted %zu entries (%llu bytes), %llu bytes left", evicted,
			      (unsigned long long)bytes, (unsigned long long)s.total);
		}
		*size = s.total ? s.total : 1; /* 0 says "no scan" */
	}
	scan_release(&s);
	return evicted;
}

int cache_admin_trusted(const char *dir, unsigned flags, struct strbuf *why)
{
	struct trust t;
	int rc;

	trust_init(&t, flags);
	rc = trust_cache_dir(&t, dir, "v1", 0, why);
	if (rc < 0 && errno == ENOENT)
		rc = trust_cache_dir(&t, dir, NULL, 0, why);
	trust_release(&t);
	return rc;
}

int cache_admin_exists(const char *dir)
{
	struct stat st;
	char *v1 = xstrfmt("%s/v1", dir), *stats = xstrfmt("%s/stats", dir);
	int none = lstat(v1, &st) < 0 && errno == ENOENT && lstat(stats, &st) < 0 && errno == ENOENT;

	free(v1);
	free(stats);
	return !none;
}

/* scan_cache(), the error printed. */
static int scan_or_error(const char *dir, enum temp_policy temps, struct scan *s)
{
	if (scan_cache(dir, temps, s) < 0)
		return error_errno("cannot read the cache directory '%s/v1'", dir);
	return 0;
}

int cache_admin_usage(const char *dir, struct cache_usage *u)
{
	struct scan s;

	memset(u, 0, sizeof(*u));
	if (scan_or_error(dir, TEMPS_KEEP, &s) < 0)
		return -1;
	u->entries = s.nr;
	u->bytes = s.total;
	u->temps = s.temps;
	scan_release(&s);
	return 0;
}

/* unlink, counting; ENOENT is not an error (another process removed it). */
static int remove_counted(const char *path, size_t *failed)
{
	if (unlink(path) == 0)
		return 1;
	if (errno != ENOENT) {
		error_errno("cannot remove '%s'", path);
		(*failed)++;
	}
	return 0;
}

/* Temporary files we left directly in DIR (CACHEDIR.TAG's, the stats file's). */
static size_t remove_top_temps(const char *dir, size_t *failed)
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

/* The directories of v1, if we left them empty: a file of the user's keeps its own. */
static void remove_empty_dirs(const char *dir)
{
	char *path;
	size_t i;

	for (i = 0; i < 256; i++) {
		path = xstrfmt("%s/v1/%02zx", dir, i);
		rmdir(path);
		free(path);
	}
	path = xstrfmt("%s/v1", dir);
	rmdir(path);
	free(path);
}

int cache_admin_clear(const char *dir, struct cache_clear_result *res)
{
	struct scan s;
	size_t i;
	char *path;

	memset(res, 0, sizeof(*res));
	if (scan_or_error(dir, TEMPS_REMOVE_ALL, &s) < 0)
		return -1;
	for (i = 0; i < s.nr; i++) {
		path = disk_entry_path(dir, s.v[i].key);
		if (remove_counted(path, &res->failed)) {
			res->entries++;
			res->bytes += s.v[i].size;
		}
		free(path);
	}
	remove_empty_dirs(dir);
	path = xstrfmt("%s/stats", dir);
	remove_counted(path, &res->failed);
	free(path);
	path = xstrfmt("%s/CACHEDIR.TAG", dir);
	remove_counted(path, &res->failed);
	free(path);
	res->temps = s.temps_removed + remove_top_temps(dir, &res->failed);
	scan_release(&s);
	return 0;
}

/* 1 when the entry is sound (it is read, not touched), or gone meanwhile. */
static int entry_is_sound(const char *path, const unsigned char *key)
{
	struct strbuf code = STRBUF_INIT, warnings = STRBUF_INIT;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	struct stat st;
	int ok;

	if (fd < 0)
		return errno == ENOENT; /* gone meanwhile: nothing to remove */
	ok = fstat(fd, &st) == 0 && disk_entry_read(fd, &st, key, &code, &warnings) == 0;
	close(fd);
	strbuf_release(&code);
	strbuf_release(&warnings);
	return ok;
}

int cache_admin_prune(const char *dir, uint64_t max_size, struct cache_prune_result *res)
{
	uint64_t evicted_bytes;
	struct scan s;
	size_t i, j;

	memset(res, 0, sizeof(*res));
	if (scan_or_error(dir, TEMPS_REMOVE_OLD, &s) < 0)
		return -1;
	for (i = j = 0; i < s.nr; i++) {
		char *path = disk_entry_path(dir, s.v[i].key);

		if (entry_is_sound(path, s.v[i].key)) {
			s.v[j++] = s.v[i];
		} else {
			res->damaged += remove_counted(path, &res->failed);
			res->removed_bytes += s.v[i].size;
			s.total -= s.v[i].size;
		}
		free(path);
	}
	s.nr = j;
	res->evicted = evict(dir, &s, max_size, &evicted_bytes);
	res->removed_bytes += evicted_bytes;
	for (i = 0; i < s.nr; i++)
		res->left += s.v[i].size != 0; /* evict() zeroes the sizes of the entries gone */
	res->left_bytes = s.total;
	res->temps = s.temps_removed;
	scan_release(&s);
	return 0;
}
