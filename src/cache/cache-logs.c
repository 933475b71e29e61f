/*
 * cache-logs.c - cache_logs_prune(): the build and walk logs of a cache
 * directory counted, and the unused ones removed (see cache-logs.h).
 *
 * One listing of DIR/buildlog and an fstatat() per log; the logs are then
 * sorted most recently used first, and every one past the age or the count
 * goes.
 */
#define _POSIX_C_SOURCE 200809L
#include "cache-logs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "banned.h"

struct log_file {
	char name[48];
	time_t mtime;
	uint64_t size;
};

/* HEX or walk-HEX, HEX 32 lowercase hex digits: the names logfile_name() gives. */
static int is_log_name(const char *name)
{
	size_t i;

	if (!strncmp(name, "walk-", 5))
		name += 5;
	for (i = 0; i < 32; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return 0;
	return name[32] == '\0';
}

static int by_recent_use(const void *a, const void *b)
{
	const struct log_file *x = a, *y = b;

	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? 1 : -1;
	return strcmp(x->name, y->name);
}

/* The logs in the directory open on `dfd`, into *v (*n of them). */
static void list_logs(int dfd, struct log_file **v, size_t *n)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	size_t alloc = 0;

	*v = NULL;
	*n = 0;
	if (!d) {
		close(dfd);
		return;
	}
	while ((de = readdir(d))) {
		struct stat st;

		if (!is_log_name(de->d_name) ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		ALLOC_GROW(*v, *n + 1, alloc);
		memcpy((*v)[*n].name, de->d_name, strlen(de->d_name) + 1); /* is_log_name(): 38 at most */
		(*v)[*n].mtime = st.st_mtime;
		(*v)[*n].size = (uint64_t)st.st_size;
		(*n)++;
	}
	closedir(d);
}

void cache_logs_prune(const char *dir, enum cache_logs_mode mode, struct cache_logs_result *res)
{
	char *path = xstrfmt("%s/buildlog", dir);
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	time_t oldest = time(NULL) - CACHE_LOGS_MAX_AGE;
	struct log_file *v;
	size_t n, i;

	memset(res, 0, sizeof(*res));
	if (dfd < 0) {
		free(path);
		return; /* none yet, or not a directory of ours to clean */
	}
	list_logs(dfd, &v, &n);
	if (n)
		qsort(v, n, sizeof(*v), by_recent_use);
	for (i = 0; i < n; i++) {
		int go = mode == CACHE_LOGS_ALL ||
			 ((mode == CACHE_LOGS_PRUNE || mode == CACHE_LOGS_PRUNE_QUIET) &&
			  (i >= CACHE_LOGS_KEEP || v[i].mtime < oldest));
		char *file;

		if (!go) {
			res->left++;
			res->left_bytes += v[i].size;
			continue;
		}
		file = xstrfmt("%s/%s", path, v[i].name);
		if (unlink(file) == 0) {
			res->removed++;
			res->removed_bytes += v[i].size;
		} else if (errno != ENOENT) {
			if (mode != CACHE_LOGS_PRUNE_QUIET)
				error_errno("cannot remove '%s'", file);
			res->failed++;
			res->left++;
			res->left_bytes += v[i].size;
		}
		free(file);
	}
	free(v);
	free(path);
}
