/*
 * cache-admin.c - a cache directory as a whole (cache-admin.h): scanning,
 * eviction, and what `prepyc cache stats|clear|prune` does; the stats
 * file is cache-stats.c's.  The layout is store-disk.h's (packs:
 * store-pack.h).
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
#include "store-pack.h"
#include "strbuf.h"
#include "tempfile.h"
#include "trustdir.h"
#include "util.h"
#include "banned.h"


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

/* An entry, or a pack (store-pack.h) of `count` entries: the unit eviction removes. */
struct entry_info {
	struct timespec mtime;
	uint64_t size;
	unsigned char key[CACHE_KEY_LEN]; /* a pack: its id, in the first bytes */
	size_t count;
	int pack;
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
	size_t entries;  /* the entries, loose and in packs */
	size_t temps;    /* temporary files kept */
	size_t temps_removed;
	uint64_t temp_bytes_removed;
};

static void scan_release(struct scan *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* A pack's entry count by its trailer and index; 0 when it is damaged. */
static size_t pack_count(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	struct stat st;
	long long n = fd >= 0 && fstat(fd, &st) == 0 ? pack_check(fd, &st, 0) : -1;

	if (fd >= 0)
		close(fd);
	return n > 0 ? (size_t)n : 0;
}

/* DIR/v1/ab (`first` its byte), or with `first` -1 DIR/v1/pk. */
static void scan_subdir(int dfd, const char *sub, int first, enum temp_policy temps,
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
		if (strlen(de->d_name) != (first < 0 ? PACK_NAME_LEN : 2 * CACHE_KEY_LEN - 2))
			continue;
		ALLOC_GROW(s->v, s->nr + 1, s->alloc);
		e = &s->v[s->nr];
		memset(e, 0, sizeof(*e));
		e->key[0] = (unsigned char)first;
		e->pack = first < 0;
		if (unhex(de->d_name, e->pack ? e->key : e->key + 1,
			  e->pack ? PACK_NAME_LEN / 2 : CACHE_KEY_LEN - 1) < 0 ||
		    fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue; /* not ours, or gone */
		e->mtime = st.st_mtim;
		e->size = (uint64_t)st.st_size;
		e->count = e->pack ? pack_count(fd, de->d_name) : 1;
		s->total += e->size;
		s->entries += e->count;
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
	scan_subdir(dfd, PACK_DIR, -1, temps, now, s);
	closedir(d);
	return 0;
}

static int by_age(const void *a, const void *b)
{
	const struct entry_info *x = a, *y = b;
	int r = timespec_cmp(&x->mtime, &y->mtime);

	return r ? r : memcmp(x->key, y->key, CACHE_KEY_LEN);
}

/* Where entry or pack `e` is (a new string). */
static char *unit_path(const char *dir, const struct entry_info *e)
{
	return e->pack ? pack_path(dir, e->key) : disk_entry_path(dir, e->key);
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
		char *path = unit_path(dir, &s->v[i]);

		if (unlink(path) == 0) {
			n += s->v[i].count;
			*bytes += s->v[i].size;
		}
		s->total -= s->v[i].size;
		s->v[i].size = 0;
		free(path);
	}
	return n;
}

/* ---- the whole directory ---------------------------------------------- */

/* What the entries may hold at most, by DIR/stats (cache_admin_trim()); -1: it cannot say. */
static int size_bound(const char *dir, uint64_t *bound)
{
	struct cache_runs runs;
	long long now = (long long)time(NULL);
	size_t i, j;
	int found = 0;

	if (cache_admin_read_runs(dir, CACHE_STATS_TAIL, &runs) < 0)
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
	size_t i;

	memset(u, 0, sizeof(*u));
	if (scan_or_error(dir, TEMPS_KEEP, &s) < 0)
		return -1;
	u->entries = s.entries;
	for (i = 0; i < s.nr; i++) {
		u->packs += s.v[i].pack;
		u->packed += s.v[i].pack ? s.v[i].count : 0;
	}
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
	path = xstrfmt("%s/v1/" PACK_DIR, dir);
	rmdir(path);
	free(path);
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
		path = unit_path(dir, &s.v[i]);
		if (remove_counted(path, &res->failed)) {
			res->entries += s.v[i].count;
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

/* 1 when entry or pack `e` is sound (it is read, not touched), or gone meanwhile. */
static int entry_is_sound(const char *path, const struct entry_info *e)
{
	struct strbuf code = STRBUF_INIT, warnings = STRBUF_INIT;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	struct stat st;
	int ok;

	if (fd < 0)
		return errno == ENOENT; /* gone meanwhile: nothing to remove */
	ok = fstat(fd, &st) == 0 &&
	     (e->pack ? pack_check(fd, &st, 1) >= 0
		      : disk_entry_read(fd, &st, e->key, &code, &warnings) == 0);
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
		char *path = unit_path(dir, &s.v[i]);

		if (entry_is_sound(path, &s.v[i])) {
			s.v[j++] = s.v[i];
		} else {
			/* a pack: its entries can no longer be vouched for, one by one */
			res->damaged += remove_counted(path, &res->failed) * (s.v[i].count ? s.v[i].count : 1);
			res->removed_bytes += s.v[i].size;
			s.total -= s.v[i].size;
		}
		free(path);
	}
	s.nr = j;
	res->evicted = evict(dir, &s, max_size, &evicted_bytes);
	res->removed_bytes += evicted_bytes;
	for (i = 0; i < s.nr; i++)
		res->left += s.v[i].size ? s.v[i].count : 0; /* evict() zeroes the sizes of the entries gone */
	res->left_bytes = s.total;
	res->temps = s.temps_removed;
	scan_release(&s);
	return 0;
}
