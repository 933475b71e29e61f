#define _POSIX_C_SOURCE 200809L
#include "tempfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "banned.h"

#define TEMP_PREFIX ".prepyc-"

static atomic_ulong counter; /* writers may run on several threads */

int mkdirs_for(const char *path)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	char *p;
	int rc = 0;

	if (!slash || slash == dir) {
		free(dir);
		return 0;
	}
	*slash = '\0';
	if (mkdir(dir, 0777) == 0 || errno == EEXIST)
		goto out;
	if (errno != ENOENT) {
		rc = -1;
		goto out;
	}
	/* create each missing ancestor, shallowest first */
	for (p = dir + 1; ; p++) {
		if (*p == '/' || !*p) {
			char c = *p;

			*p = '\0';
			if (mkdir(dir, 0777) < 0 && errno != EEXIST) {
				rc = -1;
				goto out;
			}
			*p = c;
			if (!c)
				break;
		}
	}
out:
	if (rc) {
		int e = errno;
		free(dir);
		errno = e;
		return rc;
	}
	free(dir);
	return 0;
}

static char *temp_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	int dlen = slash ? (int)(slash - path + 1) : 0;

	return xstrfmt("%.*s" TEMP_PREFIX "%ld-%lu.tmp", dlen, path, (long)getpid(),
		       (unsigned long)atomic_fetch_add(&counter, 1) + 1);
}

/* ---- stray temporary files ---------------------------------------------- */

/* The directories swept by this process (a hash set; the strings are kept). */
static struct {
	pthread_mutex_t lock;
	char **slot;
	size_t size, used;
} swept = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0 };

static size_t hash_str(const char *s)
{
	size_t h = 5381;

	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h;
}

/* Add `dir`; 1 if it was not there yet. */
static int swept_add(const char *dir, size_t len)
{
	size_t i, mask;
	char *copy;

	if (2 * (swept.used + 1) > swept.size) {
		size_t size = swept.size ? 2 * swept.size : 64, k;
		char **slot = xcalloc(size, sizeof(*slot));

		for (k = 0; k < swept.size; k++) {
			if (!swept.slot[k])
				continue;
			for (i = hash_str(swept.slot[k]) & (size - 1); slot[i]; i = (i + 1) & (size - 1))
				;
			slot[i] = swept.slot[k];
		}
		free(swept.slot);
		swept.slot = slot;
		swept.size = size;
	}
	copy = xstrndup(dir, len);
	mask = swept.size - 1;
	for (i = hash_str(copy) & mask; swept.slot[i]; i = (i + 1) & mask) {
		if (!strcmp(swept.slot[i], copy)) {
			free(copy);
			return 0;
		}
	}
	swept.slot[i] = copy;
	swept.used++;
	return 1;
}

/* Is ".prepyc-PID-N.tmp" a temporary file nobody will finish? */
static int is_stray(int dfd, const char *name, time_t now)
{
	const char *p = name + strlen(TEMP_PREFIX);
	char *end;
	long pid;
	unsigned long n;
	struct stat st;

	pid = strtol(p, &end, 10);
	if (end == p || *end != '-' || fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode))
		return 0;
	/* beyond an hour, it was on another host or PID namespace, or is long dead */
	if (now - st.st_mtime > 3600)
		return 1;
	if (pid == (long)getpid()) {
		/* ours, unless numbered beyond what we have used: a former process's with our PID */
		n = strtoul(end + 1, &end, 10);
		return strcmp(end, ".tmp") == 0 && n > atomic_load(&counter);
	}
	/* its writer is gone */
	return pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno == ESRCH);
}

static size_t sweep(const char *dir, size_t len, int dry_run,
		    void (*fn)(const char *path, int err, void *arg), void *arg)
{
	char *d = xstrndup(dir, len);
	DIR *dp = opendir(d);
	struct dirent *de;
	time_t now = time(NULL);
	size_t count = 0;

	if (!dp) {
		free(d);
		return 0;
	}
	while ((de = readdir(dp))) {
		size_t n = strlen(de->d_name);
		int err = 0;
		char *path;

		if (strncmp(de->d_name, TEMP_PREFIX, strlen(TEMP_PREFIX)) || n < 4 ||
		    strcmp(de->d_name + n - 4, ".tmp") || !is_stray(dirfd(dp), de->d_name, now))
			continue;
		if (!dry_run && unlinkat(dirfd(dp), de->d_name, 0) < 0) {
			if (errno == ENOENT)
				continue; /* someone else's sweep was first */
			err = errno;
		}
		path = xstrfmt("%s/%s", d, de->d_name);
		trace("stray temporary file %s: %s", path,
		      dry_run ? "would remove" : err ? strerror(err) : "removed");
		if (fn)
			fn(path, err, arg);
		free(path);
		count += !err;
	}
	closedir(dp);
	free(d);
	return count;
}

void remove_stray_temps(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t len = slash ? (size_t)(slash - path) : 1;
	const char *dir = slash ? path : ".";
	int fresh;

	if (slash == path)
		len = 1; /* "/name" */
	pthread_mutex_lock(&swept.lock);
	fresh = swept_add(dir, len);
	pthread_mutex_unlock(&swept.lock);
	if (fresh)
		sweep(dir, len, 0, NULL, NULL);
}

size_t sweep_stray_temps(const char *dir, int dry_run,
			 void (*fn)(const char *path, int err, void *arg), void *arg)
{
	return sweep(dir, strlen(dir), dry_run, fn, arg);
}

/* One writev() for the whole (a pyc: its header and its code), then what a short write left. */
static int write_all_iov(int fd, const struct iovec *iov, int iovcnt)
{
	size_t total = 0, done;
	ssize_t n;
	int i;

	for (i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	do
		n = writev(fd, iov, iovcnt);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if ((size_t)n == total)
		return 0;
	for (i = 0, done = (size_t)n; i < iovcnt; i++) {
		size_t skip = done < iov[i].iov_len ? done : iov[i].iov_len;

		done -= skip;
		if (write_in_full(fd, (const char *)iov[i].iov_base + skip, iov[i].iov_len - skip) < 0)
			return -1;
	}
	return 0;
}

/* write_file_atomic(); `exact`: write_file_atomic_exact(). */
static int write_atomic(const char *path, mode_t mode, int exact, const struct iovec *iov,
			int iovcnt, const char **what)
{
	char *tmp = temp_name(path);
	int fd, e;

	remove_stray_temps(path);

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0 && errno == ENOENT && !exact) {
		if (mkdirs_for(path) < 0) {
			*what = "cannot create the directory for";
			goto fail;
		}
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	}
	if (fd < 0) {
		*what = "cannot create a temporary file for";
		goto fail;
	}
	if ((exact && fchmod(fd, mode) < 0) || write_all_iov(fd, iov, iovcnt) < 0) {
		*what = "cannot write";
		e = errno;
		close(fd);
		errno = e;
		goto fail_unlink;
	}
	if (close(fd) < 0) {
		*what = "cannot write";
		goto fail_unlink;
	}
	if (rename(tmp, path) < 0) {
		*what = "cannot rename the temporary file to";
		goto fail_unlink;
	}
	free(tmp);
	return 0;

fail_unlink:
	e = errno;
	unlink(tmp);
	errno = e;
fail:
	e = errno;
	free(tmp);
	errno = e;
	return -1;
}

int write_file_atomic(const char *path, mode_t mode, const struct iovec *iov,
		      int iovcnt, const char **what)
{
	return write_atomic(path, mode, 0, iov, iovcnt, what);
}

int write_file_atomic_exact(const char *path, mode_t mode, const struct iovec *iov,
			    int iovcnt, const char **what)
{
	return write_atomic(path, mode, 1, iov, iovcnt, what);
}
