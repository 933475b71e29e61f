/*
 * pycwrite.c - a source read once, a pyc written atomically or its header
 * updated in place (see pycwrite.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "pycwrite.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proto.h"
#include "siphash.h"
#include "tempfile.h"
#include "util.h"
#include "banned.h"

/*
 * The file open on `fd` (`st`, its fstat) into `data`: one read() when it
 * still has its stat size -- asked for one byte more, a regular file
 * that gives exactly its size is at its end -- else on to the end.
 */
static int read_whole(struct strbuf *data, int fd, const struct stat *st)
{
	size_t size = st->st_size > 0 && (uint64_t)st->st_size < PROTO_MAX_FRAME
			      ? (size_t)st->st_size : 0;
	ssize_t n;

	strbuf_init(data, size + 1);
	if (size) {
		n = xread(fd, data->buf, size + 1);
		if (n < 0)
			return -1;
		strbuf_setlen(data, (size_t)n);
		if ((size_t)n == size)
			return 0;
	}
	return strbuf_read_fd(data, fd, 0) < 0 ? -1 : 0;
}

enum pyc_read_status pycwrite_read_source(struct pyc_input *in, const char *path,
					  const struct target *t, int inval, int *err)
{
	struct stat st;
	int fd;

	/* O_NONBLOCK: if the file became a FIFO since the walk, do not hang on it */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return PYC_READ_NOT_REGULAR;
	}
	/* the header describes the file as it was when read, before any later change */
	in->mtime32 = pyc_mtime32((int64_t)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	in->size = (uint64_t)st.st_size;
	in->mode = st.st_mode;
	if (read_whole(&in->data, fd, &st) < 0)
		goto fail;
	close(fd);
	if (in->data.len > PROTO_MAX_FRAME - 4096) {
		strbuf_release(&in->data);
		return PYC_READ_TOO_LARGE;
	}
	if (inval != 0)
		pyc_source_hash((enum source_hash_kind)t->hash_kind, t->fmt.magic, in->data.buf,
				in->data.len, in->hash);
	return PYC_READ_OK;
fail:
	*err = errno;
	if (fd >= 0)
		close(fd);
	strbuf_release(&in->data);
	return PYC_READ_ERRNO;
}

size_t pycwrite_header(const struct target *t, int inval, uint32_t mtime32, uint64_t size,
		       const unsigned char hash[8], unsigned char *hdr)
{
	if (inval == 0)
		return pyc_header_timestamp(&t->fmt, hdr, mtime32, size);
	return pyc_header_hash(&t->fmt, hdr, (uint32_t)inval, hash);
}

void pycwrite_canon_init(struct pycwrite_canon *c, const struct target *t)
{
	c->mv = pyc_marshal_version(t->major, t->minor, t->implementation);
	strbuf_init(&c->out, 0);
}

void pycwrite_canon_release(struct pycwrite_canon *c)
{
	strbuf_release(&c->out);
}

const char *pycwrite_canonical(struct pycwrite_canon *c, const char *data, size_t *len,
			       struct marshal_err *err)
{
	struct mobj *root;

	strbuf_reset(&c->out);
	if (marshal_parse((const unsigned char *)data, *len, &c->mv, &root, err) < 0)
		return NULL;
	if (marshal_write_canonical(root, &c->mv, &c->out) < 0) {
		snprintf(err->msg, sizeof(err->msg), "the canonical writer refused it");
		mobj_free(root);
		return NULL;
	}
	mobj_free(root);
	*len = c->out.len;
	return c->out.buf;
}

/* See pycwrite.h: 1 when the pyc at `path` was brought up to date in place, 0 to write it anew. */
static int update_header_in_place(const char *path, mode_t mode, const unsigned char *hdr,
				  size_t hlen, const void *code, size_t len)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	unsigned char *old = NULL;
	struct stat st;
	int done = 0;

	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
	    (st.st_mode & 07777) != mode || (uint64_t)st.st_size != (uint64_t)hlen + len)
		goto out;
	old = xmalloc(hlen + len);
	if (read_in_full(fd, old, hlen + len) != (ssize_t)(hlen + len) ||
	    memcmp(old, hdr, 4) || memcmp(old + hlen, code, len))
		goto out;
	done = !memcmp(old, hdr, hlen) || pwrite(fd, hdr, hlen, 0) == (ssize_t)hlen;
out:
	free(old);
	close(fd);
	return done;
}

enum pycwrite_status pycwrite_file(const char *pyc, const unsigned char *hdr, size_t hlen,
				   const void *code, size_t len, mode_t mode, mode_t umask,
				   int force, const char **what)
{
	struct iovec iov[2];
	struct stat st;
	int exists;

	/*
	 * A __pycache__ is made first, once (one mkdir(), no failed open()
	 * before it); in one this run made, only this run wrote: no old pyc
	 * to look at (a cold run's common case: one lstat() less per pyc).
	 */
	exists = !temp_dir_prepare(pyc) && lstat(pyc, &st) == 0;
	/* py_compile refuses to replace a symlink or a non-regular file */
	if (exists && (S_ISLNK(st.st_mode) || !S_ISREG(st.st_mode)))
		return S_ISLNK(st.st_mode) ? PYCWRITE_SYMLINK : PYCWRITE_NOT_REGULAR;
	iov[0].iov_base = (void *)hdr;
	iov[0].iov_len = hlen;
	iov[1].iov_base = (void *)code;
	iov[1].iov_len = len;
	/* no pyc there (a cold run): nothing to update, not even an open() to try */
	if (!force && exists) {
		remove_stray_temps(pyc);
		if (update_header_in_place(pyc, mode & ~umask, hdr, hlen, code, len))
			return PYCWRITE_OK;
	}
	if (write_file_atomic(pyc, mode, iov, 2, what) < 0)
		return PYCWRITE_ERRNO;
	return PYCWRITE_OK;
}
