/*
 * pyc.h - the pyc file format and where pyc files go.
 *
 * Header (all little-endian; see shared PYC-FACTS):
 *
 *   3.6      magic[4] mtime:u32 size:u32                      12 bytes
 *   3.7+     magic[4] flags:u32 mtime:u32 size:u32            16 bytes (flags 0)
 *            magic[4] flags:u32 source_hash[8]                (flags 1 or 3)
 *
 * followed by the marshalled code object.  mtime is Python's
 * int(st_mtime) & 0xFFFFFFFF, where st_mtime is the double sec + nsec*1e-9;
 * size is st_size & 0xFFFFFFFF.
 *
 * Paths: pyc_cache_path() is importlib.util.cache_from_source() for POSIX
 * paths, including sys.pycache_prefix and the "./" stripping that 3.12 added.
 * All functions here are pure: no I/O.
 */
#ifndef PYC_H
#define PYC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PYC_HEADER_MAX 16

enum pyc_flags {
	PYC_FLAG_HASH = 1 << 0,
	PYC_FLAG_CHECK_SOURCE = 1 << 1,
};

/* What a target interpreter's import system expects in a pyc. */
struct pyc_format {
	unsigned char magic[4];
	size_t header_len; /* 12 (3.6) or 16 */
};

/* Python's int(st_mtime) & 0xFFFFFFFF for a stat time of sec + nsec. */
uint32_t pyc_mtime32(int64_t sec, long nsec);

/*
 * Write a timestamp header for a source of the given mtime and size into
 * `out` (PYC_HEADER_MAX bytes); returns the header length.
 */
size_t pyc_header_timestamp(const struct pyc_format *fmt, unsigned char *out,
			    uint32_t mtime32, uint64_t size);

/*
 * Is `hdr` (`len` bytes read from the start of an existing pyc) a valid
 * timestamp header of this format for a source of this mtime and size?
 */
int pyc_header_is_fresh(const struct pyc_format *fmt, const unsigned char *hdr,
			size_t len, uint32_t mtime32, uint64_t size);

/* Where pycs go for one target (cache_from_source's inputs). */
struct pyc_layout {
	const char *cache_tag;      /* sys.implementation.cache_tag */
	const char *pycache_prefix; /* sys.pycache_prefix or NULL */
	const char *cwd;            /* os.getcwd(), used with a prefix */
	int strip_dot_slash;        /* 3.12+: _path_abspath drops one "./" */
};

/*
 * importlib.util.cache_from_source(source, optimization=opt) with opt 0
 * meaning no ".opt-" tag.  Returns a new string.
 */
char *pyc_cache_path(const struct pyc_layout *layout, const char *source, int opt);

/* The mode py_compile gives a pyc: (source mode | 0o200) & 0o666 (umask applies at open). */
mode_t pyc_mode(mode_t source_mode);

#endif
