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

/* mkdir -p of the directory part of `path`; *made: whether its last directory was made here. */
static int make_dirs(const char *path, int *made)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	char *p;
	int rc = 0;

	*made = 0;
	if (!slash || slash == dir) {
		free(dir);
		return 0;
	}
	*slash = '\0';
	if (mkdir(dir, 0777) == 0) {
		*made = 1;
		goto out;
	}
	if (errno == EEXIST)
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
			if (mkdir(dir, 0777) == 0) {
				*made = !c;
			} else if (errno != EEXIST) {
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

int mkdirs_for(const char *path)
{
	int made;

	return make_dirs(path, &made);
}

/*
 * Our PID, asked once: one getpid() per process, not per temporary file.
 * prepyc starts its children with posix_spawn(); a fork() all the same
 * (a library's) forgets it in the child.
 */
static atomic_long our_pid;

static void forget_pid(void)
{
	atomic_store(&our_pid, 0);
}

static void register_forget_pid(void)
{
	pthread_atfork(NULL, NULL, forget_pid);
}

static long pid_now(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	long pid = atomic_load(&our_pid);

	if (!pid) {
		pthread_once(&once, register_forget_pid);
		pid = (long)getpid();
		atomic_store(&our_pid, pid);
	}
	return pid;
}

static char *temp_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	int dlen = slash ? (int)(slash - path + 1) : 0;

	return xstrfmt("%.*s" TEMP_PREFIX "%ld-%lu.tmp", dlen, path, pid_now(),
		       (unsigned long)atomic_fetch_add(&counter, 1) + 1);
}

/* ---- stray temporary files ---------------------------------------------- */

/*
 * The directories this process knows: swept, made (nothing to sweep
 * there), or found to exist by temp_dir_prepare(): a hash set of their
 * names, kept for the process's life.
 */
struct dir_slot {
	char *name;
	size_t len;
	unsigned char made, swept;
};

static struct {
	pthread_mutex_t lock;
	struct dir_slot *slot;
	size_t size, used;
} swept = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0 };

static size_t hash_mem(const char *s, size_t len)
{
	size_t h = 5381;

	while (len--)
		h = h * 33 + (unsigned char)*s++;
	return h;
}

/* Under swept.lock: the slot of `dir` (len bytes), free (name NULL) if not there. */
static struct dir_slot *swept_find(const char *dir, size_t len)
{
	size_t i, mask = swept.size - 1;

	for (i = hash_mem(dir, len) & mask; swept.slot[i].name; i = (i + 1) & mask)
		if (swept.slot[i].len == len && !memcmp(swept.slot[i].name, dir, len))
			break;
	return &swept.slot[i];
}

/* Under swept.lock: the slot of `dir`, added (made and swept 0) if it was not there. */
static struct dir_slot *swept_add(const char *dir, size_t len)
{
	struct dir_slot *at;

	if (2 * (swept.used + 1) > swept.size) {
		struct dir_slot *old = swept.slot;
		size_t n = swept.size, k;

		swept.size = n ? 2 * n : 64;
		swept.slot = xcalloc(swept.size, sizeof(*swept.slot));
		for (k = 0; k < n; k++)
			if (old[k].name)
				*swept_find(old[k].name, old[k].len) = old[k];
		free(old);
	}
	at = swept_find(dir, len);
	if (!at->name) {
		at->name = xstrndup(dir, len);
		at->len = len;
		swept.used++;
	}
	return at;
}

/* The directory part of `path` (`*len` bytes at the returned pointer). */
static const char *dir_of(const char *path, size_t *len)
{
	const char *slash = strrchr(path, '/');

	if (!slash) {
		*len = 1;
		return ".";
	}
	*len = slash == path ? 1 : (size_t)(slash - path); /* "/name": "/" */
	return path;
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
	if (pid == pid_now()) {
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
	size_t len;
	const char *dir = dir_of(path, &len);
	struct dir_slot *at;
	int fresh;

	pthread_mutex_lock(&swept.lock);
	at = swept_add(dir, len);
	fresh = !at->swept;
	at->swept = 1;
	pthread_mutex_unlock(&swept.lock);
	if (fresh)
		sweep(dir, len, 0, NULL, NULL);
}

/* The directory of `path` was just made by us: empty, nothing to sweep. */
static void note_made(const char *path)
{
	size_t len;
	const char *dir = dir_of(path, &len);
	struct dir_slot *at;

	pthread_mutex_lock(&swept.lock);
	at = swept_add(dir, len);
	at->made = at->swept = 1;
	pthread_mutex_unlock(&swept.lock);
}

int temp_dir_prepare(const char *path)
{
	size_t len;
	const char *dir = dir_of(path, &len);
	struct dir_slot *at;
	char *name;
	int made, known;

	pthread_mutex_lock(&swept.lock);
	known = swept.size && swept_find(dir, len)->name;
	made = known && swept_find(dir, len)->made;
	pthread_mutex_unlock(&swept.lock);
	if (known)
		return made;
	name = xstrndup(dir, len);
	made = mkdir(name, 0777) == 0;
	if (made || errno == EEXIST) {
		pthread_mutex_lock(&swept.lock);
		at = swept_add(dir, len);
		if (made)
			at->made = at->swept = 1;
		made = at->made; /* (another thread may have made it first) */
		pthread_mutex_unlock(&swept.lock);
	}
	free(name);
	return made;
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

/*
 * write_file_atomic(); `exact`: write_file_atomic_exact(), whose fchmod()
 * `mask` (the umask, or all bits when it is not known) says is needed.
 */
static int write_atomic(const char *path, mode_t mode, int exact, mode_t mask,
			const struct iovec *iov, int iovcnt, const char **what)
{
	char *tmp = temp_name(path);
	int fd, e, made = 0;

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0 && errno == ENOENT && !exact) {
		if (make_dirs(path, &made) < 0) {
			*what = "cannot create the directory for";
			goto fail;
		}
		if (made)
			note_made(path);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	}
	if (fd < 0) {
		*what = "cannot create a temporary file for";
		goto fail;
	}
	/* (after our file is there: a sweep never takes a live run's file) */
	remove_stray_temps(path);
	if ((exact && (mode & mask) && fchmod(fd, mode) < 0) || write_all_iov(fd, iov, iovcnt) < 0) {
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

int temp_open(struct temp_file *t, const char *path, mode_t mode, mode_t mask,
	      const char **what)
{
	int e;

	t->tmp = temp_name(path);
	t->fd = open(t->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (t->fd < 0) {
		*what = "cannot create a temporary file for";
		goto fail;
	}
	remove_stray_temps(path);
	if ((mode & mask) && fchmod(t->fd, mode) < 0) {
		*what = "cannot write";
		e = errno;
		temp_drop(t);
		errno = e;
		return -1;
	}
	return 0;
fail:
	e = errno;
	free(t->tmp);
	t->tmp = NULL;
	errno = e;
	return -1;
}

int temp_publish(struct temp_file *t, const char *path, const char **what)
{
	int rc = close(t->fd), e;

	t->fd = -1;
	if (rc < 0)
		*what = "cannot write";
	else if ((rc = rename(t->tmp, path)) < 0)
		*what = "cannot rename the temporary file to";
	e = errno;
	if (rc < 0)
		unlink(t->tmp);
	free(t->tmp);
	t->tmp = NULL;
	errno = e;
	return rc;
}

void temp_drop(struct temp_file *t)
{
	int e = errno;

	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	if (t->tmp)
		unlink(t->tmp);
	free(t->tmp);
	t->tmp = NULL;
	errno = e;
}

int write_file_atomic(const char *path, mode_t mode, const struct iovec *iov,
		      int iovcnt, const char **what)
{
	return write_atomic(path, mode, 0, 0, iov, iovcnt, what);
}

int write_file_atomic_exact(const char *path, mode_t mode, const struct iovec *iov,
			    int iovcnt, const char **what)
{
	return write_atomic(path, mode, 1, 07777, iov, iovcnt, what);
}

int write_file_atomic_masked(const char *path, mode_t mode, mode_t mask,
			     const struct iovec *iov, int iovcnt, const char **what)
{
	return write_atomic(path, mode, 1, mask, iov, iovcnt, what);
}
