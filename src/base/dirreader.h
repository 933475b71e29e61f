/*
 * dirreader.h - a directory's names, with the fewest system calls.
 *
 * On Linux, the getdents64 system call on a descriptor from openat():
 * opendir() adds an fstat() per directory (and a malloc) that a walk of
 * 5,000 directories does not need.  Elsewhere, fdopendir() and readdir().
 *
 *   struct dirreader *r = xmalloc(sizeof(*r));     (32 KB: not on a small stack)
 *   if (dir_open(r, AT_FDCWD, path, 0) == 0) {
 *           while ((name = dir_next(r, &type)))  ... fstatat(r->fd, name, ...) ...
 *           if (errno) ... the listing failed ...
 *           dir_close(r);
 *   }
 *
 * dir_next() returns every name, "." and ".." too, with its d_type
 * (DT_UNKNOWN when the file system does not say); the name lives until the
 * next call.  At the end it returns NULL with errno 0, on an error NULL
 * with errno set.  `r->fd` is the directory's descriptor, for fstatat()
 * and openat().
 */
#ifndef DIRREADER_H
#define DIRREADER_H

#include <dirent.h>
#include <stddef.h>

#if defined(__linux__)
#include <sys/syscall.h>
#if defined(SYS_getdents64)
#define DIR_GETDENTS 1
#endif
#endif

struct dirreader {
	int fd;
#ifdef DIR_GETDENTS
	size_t pos, len;
	/* struct linux_dirent64: d_ino:u64 d_off:i64 d_reclen:u16 d_type:u8 d_name */
	_Alignas(8) unsigned char buf[32768];
#else
	DIR *d;
#endif
};

/*
 * Open `name` (relative to `atfd`, or AT_FDCWD) for reading; `nofollow`:
 * not through a symbolic link.  0, or -1 with errno set.
 */
int dir_open(struct dirreader *r, int atfd, const char *name, int nofollow);

/* The next name and its d_type; NULL at the end (errno 0) or on an error (errno set). */
const char *dir_next(struct dirreader *r, unsigned char *type);

void dir_close(struct dirreader *r);

#endif
