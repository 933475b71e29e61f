#define _POSIX_C_SOURCE 200809L
#include "factscache.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tempfile.h"
#include "trustdir.h"
#include "util.h"
#include "banned.h"

extern char **environ;

#define MAGIC "prepyc-facts 2\n"

/* Resolve a command name the way posix_spawnp will. */
static char *find_in_path(const char *name)
{
	const char *path = getenv("PATH");
	const char *p;

	if (strchr(name, '/'))
		return xstrdup(name);
	if (!path)
		path = "/usr/bin:/bin";
	for (p = path;; p = strchr(p, ':') + 1) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char *cand = xstrfmt("%.*s%s%s", (int)len, p, len ? "/" : "", name);

		if (!access(cand, X_OK))
			return cand;
		free(cand);
		if (!end)
			return NULL;
	}
}

static int is_script(const char *path)
{
	char head[2];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	ssize_t n;

	if (fd < 0)
		return 1;
	n = read_in_full(fd, head, 2);
	close(fd);
	return n != 2 || (head[0] == '#' && head[1] == '!');
}

static void add_stat(struct strbuf *key, const char *what, const struct stat *st)
{
	strbuf_addf(key, "%s=%llu:%llu:%llu:%lld.%09ld\n", what,
		    (unsigned long long)st->st_dev, (unsigned long long)st->st_ino,
		    (unsigned long long)st->st_size, (long long)st->st_mtim.tv_sec,
		    st->st_mtim.tv_nsec);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int factscache_key(const char *python, struct strbuf *key)
{
	char *path = find_in_path(python);
	struct stat st, lst;
	const char **vars = NULL;
	size_t nr = 0, alloc = 0, i;

	if (!path || stat(path, &st) < 0 || !S_ISREG(st.st_mode) || is_script(path)) {
		free(path);
		return -1;
	}
	strbuf_addf(key, "python=%s\nresolved=%s\n", python, path);
	add_stat(key, "file", &st);
	if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode))
		add_stat(key, "link", &lst);
	free(path);
	for (i = 0; environ[i]; i++) {
		if (!strncmp(environ[i], "PYTHON", 6)) {
			ALLOC_GROW(vars, nr + 1, alloc);
			vars[nr++] = environ[i];
		}
	}
	if (nr)
		qsort(vars, nr, sizeof(*vars), cmp_str);
	for (i = 0; i < nr; i++)
		strbuf_addf(key, "env:%s\n", vars[i]);
	free(vars);
	return 0;
}

static char *entry_path(const char *dir, const struct strbuf *key)
{
	uint64_t h = 14695981039346656037ULL;
	size_t i;

	for (i = 0; i < key->len; i++) {
		h ^= (unsigned char)key->buf[i];
		h *= 1099511628211ULL;
	}
	return xstrfmt("%s/targets/%016llx", dir, (unsigned long long)h);
}

/*
 * Whether DIR and DIR/targets are ours (trustdir.h), creating them with
 * `create`: 1 yes, 0 no (traced: the bytecode cache's opening warns).
 */
static int dir_trusted(const struct trust *t, const char *dir, int create)
{
	struct strbuf why = STRBUF_INIT;
	int rc = trust_cache_dir(t, dir, "targets", create, &why);

	if (rc > 0)
		trace("facts cache: not using '%s': %s", dir, why.buf);
	strbuf_release(&why);
	return rc == 0;
}

int factscache_get(const char *dir, unsigned flags, const struct strbuf *key,
		   struct strbuf *facts)
{
	struct strbuf sb = STRBUF_INIT, why = STRBUF_INIT;
	size_t head = strlen(MAGIC);
	struct trust t;
	struct stat st;
	char *path;
	int fd, hit = 0;

	if (!dir)
		return 0;
	trust_init(&t, flags);
	if (!dir_trusted(&t, dir, 0)) {
		trust_release(&t);
		return 0;
	}
	path = entry_path(dir, key);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY);
	/* judged on the descriptor read: a facts entry decides where pycs go */
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
			trust_stat_check(&t, &st, &why))) {
		trace("facts cache: not using '%s': %s", path, why.len ? why.buf : "not a file");
		close(fd);
		fd = -1;
	}
	free(path);
	strbuf_release(&why);
	trust_release(&t);
	if (fd < 0)
		return 0;
	if (strbuf_read_fd(&sb, fd, 4096) > 0 && sb.len > head + key->len &&
	    !memcmp(sb.buf, MAGIC, head) && !memcmp(sb.buf + head, key->buf, key->len) &&
	    sb.buf[head + key->len] == '\0') {
		size_t off = head + key->len + 1;

		strbuf_add(facts, sb.buf + off, sb.len - off);
		hit = 1;
	}
	close(fd);
	strbuf_release(&sb);
	return hit;
}

void factscache_put(const char *dir, unsigned flags, const struct strbuf *key,
		    const struct strbuf *facts)
{
	struct iovec iov[3];
	struct trust t;
	const char *what;
	char *path;

	if (!dir)
		return;
	trust_init(&t, flags);
	if (!dir_trusted(&t, dir, 1)) {
		trust_release(&t);
		return;
	}
	path = entry_path(dir, key);
	iov[0].iov_base = (void *)MAGIC;
	iov[0].iov_len = strlen(MAGIC);
	iov[1].iov_base = key->buf;
	iov[1].iov_len = key->len + 1; /* with its NUL */
	iov[2].iov_base = facts->buf;
	iov[2].iov_len = facts->len;
	if (write_file_atomic_exact(path, trust_file_mode(&t), iov, 3, &what) < 0)
		trace("facts cache: %s '%s'", what, path);
	trust_release(&t);
	free(path);
}
