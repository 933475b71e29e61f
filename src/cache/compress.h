/*
 * compress.h - the remote cache's values compressed with zstd (libzstd).
 *
 * Bytecode compresses well (about 2.6x at zstd's level 1), and a remote
 * cache is bytes over a network: a fleet's builders fetch 2.6 times less,
 * the server serves 2.6 times less, for a decompression that costs less
 * than the bytes saved.  The local cache stays uncompressed.
 *
 *   if (compress_value(entry, len, &out) == 0)   ... store out, else entry
 *   if (compressed(value, len))
 *           rc = decompress_value(value, len, max, &entry);
 *
 * A compressed value is one zstd frame that records its content size;
 * anything else is stored as it is.  The frame's magic number tells the
 * two apart: an uncompressed value starts with the disk entry's magic
 * (store-disk.h), which is not zstd's.
 *
 * Built with libzstd's header when pkg-config finds it (PREPYC_WITH_ZSTD),
 * the library loaded with dlopen on first use (remote-libs.c:
 * zstd_loaded()).  Without it, at build or at run time, compress_value()
 * always declines (values are stored as they are) and decompress_value()
 * fails with COMPRESS_UNSUPPORTED, which the caller reports
 * (compress_missing_hint()).  Thread-safe.
 */
#ifndef COMPRESS_H
#define COMPRESS_H

#include <stddef.h>

#include "strbuf.h"

/* zstd's level for uploads: its fastest (ccache's default too). */
#define COMPRESS_LEVEL 1

enum {
	COMPRESS_OK = 0,
	COMPRESS_BAD = -1,         /* not a whole frame, too large, or corrupt */
	COMPRESS_UNSUPPORTED = -2, /* built without libzstd */
};

/* 1 when prepyc was built with libzstd's header and the library loads. */
int compress_available(void);

#ifdef PREPYC_WITH_ZSTD
/* 1 once libzstd is loaded (remote-libs.c; loads it the first time). */
int zstd_loaded(void);
#endif

/*
 * `len` bytes at `data` compressed into `out` (replacing what it held);
 * 0 when that is smaller than `data`, -1 otherwise (without libzstd, or
 * when it does not pay: store the bytes as they are).
 */
int compress_value(const void *data, size_t len, struct strbuf *out);

/* 1 when `len` bytes at `data` start as a zstd frame does. */
int compressed(const void *data, size_t len);

/* The length of the zstd frame that `len` bytes at `data` start with; 0 if none (or no libzstd). */
size_t compressed_frame_size(const void *data, size_t len);

/*
 * The frame of `len` bytes at `data` decompressed into `out` (replacing
 * what it held): COMPRESS_OK; COMPRESS_BAD when it is not exactly one
 * frame recording a content size of at most `max` bytes that decompresses
 * to that size; COMPRESS_UNSUPPORTED without libzstd.
 */
int decompress_value(const void *data, size_t len, size_t max, struct strbuf *out);

/* What to install for compressed values, for a message ("install ..."). */
const char *compress_missing_hint(void);

#endif
