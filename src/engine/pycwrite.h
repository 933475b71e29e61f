/*
 * pycwrite.h - read a source for its pycs, and write a pyc as py_compile does.
 *
 * Calling sequence for one source and its levels:
 *
 *   pycwrite_read_source(&in, path, t, inval, &err)   once per source
 *   hlen = pycwrite_header(t, inval, in.mtime32, in.size, in.hash, hdr)
 *   code = pycwrite_canonical(&canon, reply, &len, &err)   per level (NULL: use reply)
 *   pycwrite_file(pyc, hdr, hlen, code, len, pyc_mode(in.mode), umask, force, &what)
 *
 * pycwrite_file() is the one way a pyc is written, from a compile or from
 * the cache.  It refuses a pyc path that is a symlink or not a regular
 * file (py_compile does: import would turn it into a regular file).  When
 * the file there already holds the same code (a source touched but
 * unchanged, a new build of the same tree), only its header can differ,
 * and it is brought up to date with one pwrite() of the header, which
 * costs no new inode (creating 10,000 files is most of what a rebuild
 * costs on ext4) -- only for a regular file with one link, the mode a new
 * pyc would get and the target's magic, and never with `force` (-f
 * rewrites every pyc as a new file, as compileall does).  A reader sees
 * the old header or the new one, and either way valid code; so does anyone
 * after a crash.  Otherwise the pyc is written atomically with
 * write_file_atomic() (tempfile.h), which removes the temporary files a
 * killed run left there.  Its directory is made first when missing
 * (temp_dir_prepare()); in one this process made, nothing but its own
 * pycs can be, so the path is not looked at first.
 *
 * Errors: nothing here prints.  pycwrite_read_source() and pycwrite_file()
 * return a status; the caller words the message.  Thread-safe: the cache
 * phase writes pycs from several threads (distinct paths).
 *
 * Ownership: a struct pyc_input owns its `data` (strbuf_release() it);
 * struct pycwrite_canon owns its buffer (pycwrite_canon_release()).
 */
#ifndef PYCWRITE_H
#define PYCWRITE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "marshal.h"
#include "pyc.h"
#include "strbuf.h"
#include "target.h"

/* A source as read for compiling, and what its pycs' header says of it. */
struct pyc_input {
	struct strbuf data;
	uint32_t mtime32;       /* pyc_mtime32() of the stat when read */
	uint64_t size;
	mode_t mode;
	unsigned char hash[8];  /* the source hash (hash-based pycs only) */
};

enum pyc_read_status {
	PYC_READ_OK,
	PYC_READ_ERRNO,       /* open/read failed: *err is the errno */
	PYC_READ_NOT_REGULAR, /* it became something else since the walk */
	PYC_READ_TOO_LARGE,   /* more than a compile frame can carry */
};

/*
 * Read `path` into in->data (reinitialised: it must be empty or released)
 * and fill in what its header needs; `inval` (enum invalidation) other
 * than 0 also computes the source hash.  A FIFO is never waited on.  On
 * failure in->data is released.
 */
enum pyc_read_status pycwrite_read_source(struct pyc_input *in, const char *path,
					  const struct target *t, int inval, int *err);

/*
 * The header of a pyc of `t` for a source of this mtime, size and hash:
 * a timestamp header when `inval` is 0, else magic | inval | hash.
 * Writes PYC_HEADER_MAX bytes at most into `hdr`; returns its length.
 */
size_t pycwrite_header(const struct target *t, int inval, uint32_t mtime32, uint64_t size,
		       const unsigned char hash[8], unsigned char *hdr);

/* The canonical writer of one run (ARCHITECTURE.md): the target's marshal version and a buffer. */
struct pycwrite_canon {
	struct marshal_version mv;
	struct strbuf out;
};

void pycwrite_canon_init(struct pycwrite_canon *c, const struct target *t);
void pycwrite_canon_release(struct pycwrite_canon *c);

/*
 * The canonical form of the marshalled code `data` (*len bytes): a pointer
 * into c->out, valid until the next call, with *len updated; or NULL,
 * with err->msg saying why, when the canonical writer cannot handle the
 * stream (a version it does not know): the caller writes `data` as is.
 */
const char *pycwrite_canonical(struct pycwrite_canon *c, const char *data, size_t *len,
			       struct marshal_err *err);

enum pycwrite_status {
	PYCWRITE_OK,
	PYCWRITE_SYMLINK,     /* the pyc path is a symlink: refused */
	PYCWRITE_NOT_REGULAR, /* the pyc path is not a regular file: refused */
	PYCWRITE_ERRNO,       /* writing failed: errno, and *what names the step */
};

/*
 * Write the pyc `pyc` holding hdr[0..hlen) then code[0..len), with `mode`
 * (pyc_mode() of the source's) under `umask` (the process's, which the
 * caller reads once while no other thread runs).
 */
enum pycwrite_status pycwrite_file(const char *pyc, const unsigned char *hdr, size_t hlen,
				   const void *code, size_t len, mode_t mode, mode_t umask,
				   int force, const char **what);

#endif
