/* dirreader.c - a directory's names, with the fewest system calls (dirreader.h). */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* d_type, syscall() */
#include "dirreader.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif

#include "banned.h"

/* Open `name` (relative to `atfd`) for reading; `nofollow`: not through a symlink. */
int dir_open(struct dirreader *r, int atfd, const char *name, int nofollow)
{
	int flags = O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0);

	r->fd = openat(atfd, name, flags);
	if (r->fd < 0)
		return -1;
#ifdef DIR_GETDENTS
	r->pos = r->len = 0;
#else
	r->d = fdopendir(r->fd);
	if (!r->d) {
		int e = errno;

		close(r->fd);
		errno = e;
		return -1;
	}
#endif
	return 0;
}

const char *dir_next(struct dirreader *r, unsigned char *type)
{
#ifdef DIR_GETDENTS
	const unsigned char *rec;
	unsigned short reclen;

	if (r->pos >= r->len) {
		long got = syscall(SYS_getdents64, r->fd, r->buf, sizeof(r->buf));

		if (got <= 0) {
			if (!got)
				errno = 0;
			return NULL;
		}
		r->pos = 0;
		r->len = (size_t)got;
	}
	rec = r->buf + r->pos;
	memcpy(&reclen, rec + 16, sizeof(reclen));
	r->pos += reclen;
	*type = rec[18];
	return (const char *)rec + 19;
#else
	struct dirent *de;

	errno = 0;
	de = readdir(r->d);
	if (!de)
		return NULL;
	*type = DT_UNKNOWN;
#ifdef _DIRENT_HAVE_D_TYPE
	*type = de->d_type;
#endif
	return de->d_name;
#endif
}

void dir_close(struct dirreader *r)
{
#ifdef DIR_GETDENTS
	close(r->fd);
#else
	closedir(r->d);
#endif
}
