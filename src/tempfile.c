#define _POSIX_C_SOURCE 200809L
#include "tempfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "banned.h"

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

	return xstrfmt("%.*s.prepyc-%ld-%lu.tmp", dlen, path, (long)getpid(),
		       (unsigned long)atomic_fetch_add(&counter, 1) + 1);
}

static int write_all_iov(int fd, const struct iovec *iov, int iovcnt)
{
	int i;

	for (i = 0; i < iovcnt; i++)
		if (write_in_full(fd, iov[i].iov_base, iov[i].iov_len) < 0)
			return -1;
	return 0;
}

int write_file_atomic(const char *path, mode_t mode, const struct iovec *iov,
		      int iovcnt, const char **what)
{
	char *tmp = temp_name(path);
	int fd, e;

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0 && errno == ENOENT) {
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
	if (write_all_iov(fd, iov, iovcnt) < 0) {
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
