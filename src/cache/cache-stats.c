/*
 * cache-stats.c - the cache's stats file, DIR/stats (cache-admin.h; its
 * line format is in store-disk.h): one line appended per run, read back
 * for `prepyc cache stats` and for the size bound that spares a run a scan.
 */
#define _POSIX_C_SOURCE 200809L
#include "cache-admin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "store-disk.h"
#include "strbuf.h"
#include "tempfile.h"
#include "trustdir.h"
#include "util.h"
#include "banned.h"

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
	if (read_stats_tail(dir, CACHE_STATS_TAIL, &sb) < 0) {
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
