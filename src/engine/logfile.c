/*
 * logfile.c - the build and walk logs' file name, reading and path hash
 * (manual in logfile.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "blake2b.h"
#include "cache-logs.h"
#include "siphash.h"
#include "strbuf.h"
#include "tempfile.h"
#include "trustdir.h"
#include "util.h"
#include "banned.h"

char *logfile_name(const char *dir, const char *prefix, const char *id, size_t idlen,
		   const char *what)
{
	struct strbuf reason = STRBUF_INIT;
	unsigned char key[16];
	char hex[2 * sizeof(key) + 1];
	struct trust trust;
	int bad;

	trust_init(&trust, 0);
	bad = trust_cache_dir(&trust, dir, "buildlog", 1, &reason);
	trust_release(&trust);
	if (bad) {
		trace("no %s in '%s': %s", what, dir, bad < 0 ? strerror(errno) : reason.buf);
		strbuf_release(&reason);
		return NULL;
	}
	strbuf_release(&reason);
	blake2b(key, sizeof(key), id, idlen);
	hex_encode(key, sizeof(key), hex);
	return xstrfmt("%s/buildlog/%s%s", dir, prefix, hex);
}

const char *logfile_map(const char *path, size_t min, size_t max, const char *what,
			size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	struct stat st;
	const char *why = NULL;
	void *map = MAP_FAILED;

	if (fd < 0)
		return NULL; /* none yet: the common case, not worth a word */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (st.st_uid != geteuid() || (st.st_mode & 022) || st.st_nlink != 1)
		why = "not the user's own, or writable by others";
	else if ((uint64_t)st.st_size < min || (uint64_t)st.st_size > max)
		why = "of a wrong size";
	/*
	 * Mapped, not read: reading 3 MB into fresh memory costs a page fault
	 * per 4 KiB (10 ms in a VM), a mapping of cached pages a few faults.
	 */
	else if ((map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0)) ==
		 MAP_FAILED)
		why = strerror(errno);
	if (why) {
		close(fd);
		trace("%s '%s' ignored: %s", what, path, why);
		return NULL;
	}
	*len = (size_t)st.st_size;
	/* its build ran: the mtime says so, hourly (cache-logs.h keeps the logs in use) */
	if (st.st_mtime < time(NULL) - LOGFILE_TOUCH_AFTER)
		futimens(fd, NULL);
	close(fd);
	return map;
}

void logfile_unmap(const char *data, size_t len)
{
	if (data)
		munmap((void *)data, len);
}

int logfile_parse_head(const void *data, size_t len, const char magic[8], uint32_t version,
		       struct logfile_head *h)
{
	const unsigned char *p = data;

	if (len < LOGFILE_HEAD + 8 || memcmp(p, magic, 8) || get_le32(p + 8) != version)
		return -1;
	h->count = get_le32(p + 12);
	h->start_ns = (int64_t)get_le64(p + 16);
	h->body = get_le64(p + 24);
	if (h->body != len - LOGFILE_HEAD - 8 || get_le64(p + len - 8) != siphash13(0, 0, p, len - 8))
		return -1;
	return 0;
}

void logfile_begin(struct strbuf *sb, const char magic[8], uint32_t version, uint32_t count,
		   int64_t start_ns)
{
	strbuf_add(sb, magic, 8);
	strbuf_add_le32(sb, version);
	strbuf_add_le32(sb, count);
	strbuf_add_le64(sb, (uint64_t)start_ns);
	strbuf_add_le64(sb, 0); /* the body's length, once known */
}

void logfile_write(struct strbuf *sb, const char *path, const char *what)
{
	struct iovec iov[1];
	const char *step = "", *at;
	struct stat st;
	int made;

	put_le64((unsigned char *)sb->buf + 24, (uint64_t)(sb->len - LOGFILE_HEAD));
	strbuf_add_le64(sb, siphash13(0, 0, sb->buf, sb->len));
	iov[0].iov_base = sb->buf;
	iov[0].iov_len = sb->len;
	made = lstat(path, &st) < 0 && errno == ENOENT;
	if (write_file_atomic(path, 0600, iov, 1, &step) < 0) {
		trace("%s '%s' not written: %s: %s", what, path, step, strerror(errno));
		made = 0;
	}
	strbuf_release(sb);
	/* one more log: the unused ones go (cache-logs.h) */
	at = strstr(path, "/buildlog/");
	if (made && at) {
		char *dir = xstrndup(path, (size_t)(at - path));
		struct cache_logs_result res;

		cache_logs_prune(dir, CACHE_LOGS_PRUNE_QUIET, &res);
		if (res.removed || res.failed)
			trace("build logs: %zu unused removed, %zu left, %zu could not be removed",
			      res.removed, res.left, res.failed);
		free(dir);
	}
}

uint64_t path_hash(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ len;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, s + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	for (; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
	return h ^ (h >> 29);
}
