/*
 * pyc.h - the pyc file format, the Python versions that write it, and where
 * pyc files go.  Every constant of the format lives here (as Lua's lundump.h
 * holds its own): header layouts, flags, magic numbers, which version has
 * which header and marshal format.  See shared PYC-FACTS.
 *
 * Header (all little-endian):
 *
 *   3.6      magic[4] mtime:u32 size:u32                      12 bytes
 *   3.7+     magic[4] flags:u32 mtime:u32 size:u32            16 bytes (flags 0)
 *            magic[4] flags:u32 source_hash[8]                (flags 1 or 3)
 *
 * followed by the marshalled code object.  magic is a u16 number then
 * "\r\n".  mtime is Python's int(st_mtime) & 0xFFFFFFFF, where st_mtime is
 * the double sec + nsec*1e-9; size is st_size & 0xFFFFFFFF.  Flag bit 0
 * makes a hash-based pyc, bit 1 asks the import system to check its hash;
 * any other bit is refused by the import system (flags 2 is a timestamp
 * pyc).  The source hash is computed by pyc_source_hash() (siphash.h).
 *
 * Writing a header: pyc_header_timestamp() or pyc_header_hash() into a
 * buffer of PYC_HEADER_MAX bytes, for a struct pyc_format (the target's
 * magic and header length).  Reading one: pyc_header_parse(), then compare
 * the magic yourself (pyc_magic_number() names it in a message).
 *
 * Versions: pyc_version_of_magic() maps a magic number to its Python
 * version, header length and marshal format, from one table of the ranges
 * CPython (Include/internal/pycore_magic_number.h, PC/launcher.c) and PyPy
 * use.  Where an interpreter can be asked, ask it (target.h): the table is
 * for pycs with no interpreter at hand (`prepyc canon`).
 * pyc_header_len() and pyc_marshal_version() give the same facts for a
 * version reported by an interpreter.
 *
 * Paths: pyc_cache_path() is importlib.util.cache_from_source() for POSIX
 * paths, including sys.pycache_prefix and the "./" stripping that 3.12 added
 * (pyc_strips_dot_slash()); pycache_name_parts() is source_from_cache();
 * pyc_legacy_path() and pyc_legacy_source() are the legacy (-b) layout,
 * SOURCE.pyc beside SOURCE.py.  Returned strings are new; the caller frees.
 *
 * All functions here are pure (no I/O) and thread-safe; the table is const.
 */
#ifndef PYC_H
#define PYC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "marshal.h"

/* ---- header layout ------------------------------------------------------ */

#define PYC_MAGIC_LEN 4
#define PYC_HEADER_LEN_36 12 /* 3.6: magic, mtime, size */
#define PYC_HEADER_LEN 16    /* 3.7+ (PEP 552): magic, flags, 8 bytes */
#define PYC_HEADER_MAX 16
#define PYC_HASH_LEN 8       /* the source hash of a hash-based pyc */

enum pyc_flags {
	PYC_FLAG_HASH = 1 << 0,
	PYC_FLAG_CHECK_SOURCE = 1 << 1,
};
#define PYC_FLAGS_KNOWN (PYC_FLAG_HASH | PYC_FLAG_CHECK_SOURCE)

/* The kinds of pyc, valued as their header flags (also the invalidation modes). */
enum pyc_kind {
	PYC_KIND_TIMESTAMP = 0,
	PYC_KIND_UNCHECKED_HASH = PYC_FLAG_HASH,
	PYC_KIND_CHECKED_HASH = PYC_FLAG_HASH | PYC_FLAG_CHECK_SOURCE,
};

/* "timestamp", "unchecked-hash", "checked-hash"; "?" for another value. */
const char *pyc_kind_name(int kind);

/* What a target interpreter's import system expects in a pyc. */
struct pyc_format {
	unsigned char magic[PYC_MAGIC_LEN];
	size_t header_len; /* PYC_HEADER_LEN_36 or PYC_HEADER_LEN */
};

/* The number in a magic: its first two bytes as a little-endian u16. */
unsigned pyc_magic_number(const unsigned char *magic);

/* Do the `len` bytes at `data` start with a magic ("\r\n" in bytes 2-3)? */
int pyc_has_magic(const unsigned char *data, size_t len);

/* Python's int(st_mtime) & 0xFFFFFFFF for a stat time of sec + nsec. */
uint32_t pyc_mtime32(int64_t sec, long nsec);

/*
 * Write a timestamp header for a source of the given mtime and size into
 * `out` (PYC_HEADER_MAX bytes); returns the header length.
 */
size_t pyc_header_timestamp(const struct pyc_format *fmt, unsigned char *out,
			    uint32_t mtime32, uint64_t size);

/*
 * Write a hash-based header into `out` (PYC_HEADER_MAX bytes): `flags` is
 * PYC_KIND_UNCHECKED_HASH or PYC_KIND_CHECKED_HASH, `hash` the source hash
 * as stored.  Returns the header length (PYC_HEADER_LEN).  A format without
 * hash-based pycs (3.6) or other flags are a BUG().
 */
size_t pyc_header_hash(const struct pyc_format *fmt, unsigned char *out, uint32_t flags,
		       const unsigned char hash[PYC_HASH_LEN]);

/*
 * Is `hdr` (`len` bytes read from the start of an existing pyc) a valid
 * timestamp header of this format for a source of this mtime and size?
 */
int pyc_header_is_fresh(const struct pyc_format *fmt, const unsigned char *hdr,
			size_t len, uint32_t mtime32, uint64_t size);

/* A header as read; which fields mean something depends on `kind`. */
struct pyc_header {
	unsigned char magic[PYC_MAGIC_LEN];
	uint32_t flags;                   /* as stored; 0 in a 3.6 header */
	enum pyc_kind kind;
	uint32_t mtime32, size32;         /* PYC_KIND_TIMESTAMP */
	unsigned char hash[PYC_HASH_LEN]; /* the hash kinds */
	size_t len;                       /* fmt->header_len: the code follows */
};

enum {
	PYC_PARSE_SHORT = -1,     /* fewer bytes than the header */
	PYC_PARSE_BAD_FLAGS = -2, /* flag bits beyond PYC_FLAGS_KNOWN (h->flags set) */
};

/*
 * Read the header at the start of the `len` bytes at `data`, laid out as
 * `fmt` says (its length; the magic is copied, not compared).  Returns 0
 * with `h` filled, or PYC_PARSE_SHORT (h->len set), or PYC_PARSE_BAD_FLAGS
 * (h->magic, h->flags and h->len set), as the import system refuses them.
 */
int pyc_header_parse(const struct pyc_format *fmt, const unsigned char *data, size_t len,
		     struct pyc_header *h);

/* ---- versions ----------------------------------------------------------- */

/* One row of the magic number table. */
struct pyc_version {
	unsigned magic_lo, magic_hi; /* its magic numbers, pre-releases included */
	unsigned magic;              /* the release's own */
	struct marshal_version v;    /* language version and implementation */
	int marshal;                 /* marshal.version: 4; 3.14: 5; 3.15: 6 */
	size_t header_len;
};

/* The version whose magic number is `magic`; NULL when no row knows it. */
const struct pyc_version *pyc_version_of_magic(unsigned magic);

/* The header length of a pyc for Python major.minor (any implementation). */
size_t pyc_header_len(int major, int minor);

/*
 * The marshal layout of Python major.minor for an implementation named as
 * sys.implementation.name ("cpython", "pypy"; NULL counts as CPython).
 */
struct marshal_version pyc_marshal_version(int major, int minor, const char *implementation);

/* ---- paths -------------------------------------------------------------- */

/* Where pycs go for one target (cache_from_source's inputs). */
struct pyc_layout {
	const char *cache_tag;      /* sys.implementation.cache_tag */
	const char *pycache_prefix; /* sys.pycache_prefix or NULL */
	const char *cwd;            /* os.getcwd(), used with a prefix */
	int strip_dot_slash;        /* pyc_strips_dot_slash() */
};

/* Does Python major.minor's _path_abspath drop one leading "./" (3.12+)? */
int pyc_strips_dot_slash(int major, int minor);

/*
 * importlib.util.cache_from_source(source, optimization=opt) with opt 0
 * meaning no ".opt-" tag.  Returns a new string.
 */
char *pyc_cache_path(const struct pyc_layout *layout, const char *source, int opt);

/*
 * The parts of a __pycache__ file name "BASE.TAG[.opt-N].pyc": its cache tag
 * and the source it belongs to (DIR/BASE.py, DIR being the parent of the
 * __pycache__ directory).  Returns -1 for a name that is not of that shape
 * (importlib.util.source_from_cache would refuse it).  New strings.
 */
int pycache_name_parts(const char *pyc_path, char **tag, char **source);

/* The legacy pyc of `source` (compileall -b): SOURCE + "c".  A new string. */
char *pyc_legacy_path(const char *source);

/*
 * The source a legacy pyc belongs to: `pyc` without its final "c".  A new
 * string, or NULL when `pyc` does not end in ".pyc".
 */
char *pyc_legacy_source(const char *pyc);

/* The mode py_compile gives a pyc: (source mode | 0o200) & 0o666 (umask applies at open). */
mode_t pyc_mode(mode_t source_mode);

#endif
