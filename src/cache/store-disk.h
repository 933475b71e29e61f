/*
 * store-disk.h - the disk store's layout, and the entry functions the
 * store (store-disk.c, opened with cache_store_disk_open() of
 * cache-store.h) shares with the cache's administration (cache-admin.c).
 *
 * Layout under the cache directory DIR:
 *
 *   DIR/CACHEDIR.TAG        so that backup tools skip it
 *   DIR/v1/ab/cdef...       one entry: the key in hex, its first byte as the
 *                           subdirectory (256 of them)
 *   DIR/v1/ab/.prepyc-PID-N.tmp   an entry being written (tempfile.h)
 *   DIR/v1/pk/...           packs: the entries a run back-filled from a
 *                           remote cache, in one file (store-pack.h)
 *   DIR/stats               one line appended per run that used the cache
 *   DIR/targets/...         the targets' facts (factscache.h), not ours
 *
 * Directories are made mode 0700, files 0600 (02770 and 0660 for a
 * group's cache), exactly; a directory, shard or entry that someone else
 * could have written is not used (trustdir.h).
 *
 * An entry is a header (magic "PREPYC\x1a\n", the format version, the key
 * again, the lengths of the two parts, a BLAKE2b checksum of the parts)
 * then the code, then the warnings.  Entries are published atomically
 * (temporary file in the same subdirectory, then rename), so a reader sees
 * a whole entry or none, and several processes can share one cache.  An
 * entry that fails any check (short, wrong magic or version, another key,
 * bad checksum) is a miss, and is removed when the directory is writable.
 *
 * Recency: a hit sets the entry's mtime to now when it is older than an
 * hour; eviction removes the oldest entries first.
 *
 * An entry, all integers little-endian (80 bytes of header):
 *
 *   magic     8   "PREPYC\x1a\n"
 *   version   u32 1
 *   flags     u32 0 (anything else: not an entry of this version)
 *   key       32  the key, again (a file renamed to another name is caught)
 *   code_len  u64
 *   warn_len  u64 (file size = 80 + code_len + warn_len, exactly)
 *   checksum  16  BLAKE2b-128, unkeyed, of the 64 header bytes above, then
 *                 the code, then the warnings
 *   code, warnings
 *
 * An entry may also be stored compressed: one zstd frame (compress.h) of
 * all of the above, told apart by zstd's magic number.  A back-fill from a
 * remote cache stores the remote's frame as it is (cache-store.h's
 * `cache_entry_form`), 2.6 times fewer bytes to write; reading it
 * decompresses it and checks the result as any entry.  A prepyc that
 * cannot load libzstd takes such an entry for a damaged one.
 *
 * DIR/stats has one line per run that looked anything up (appended with a
 * single O_APPEND write, so concurrent runs do not mix their lines):
 *
 *   TIME LABEL hits=N misses=N stored=N stored_bytes=N evicted=N max_size=N [remote]
 *   remote = remote_hits=N remote_misses=N remote_uploads=N remote_upload_bytes=N
 *            remote_errors=N remote_rejected=N     (runs with --remote-cache: the sums
 *                                                  over the remote stores, store-remote.h)
 *
 * TIME in Unix seconds; LABEL as given (it may hold spaces; control
 * characters become '?'), so readers take the first field as the time and
 * the trailing name=N fields as the counters, whatever their number.
 * Past 256 KiB the file is cut to its last 64 KiB (cache-admin.c).
 */
#ifndef STORE_DISK_H
#define STORE_DISK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cache.h"
#include "strbuf.h"

#define DISK_ENTRY_MAGIC "PREPYC\x1a\n"
#define DISK_ENTRY_VERSION 1
#define DISK_HEADER_LEN 80 /* magic 8, version 4, flags 4, key 32, lengths 8+8, checksum 16 */
#define DISK_SUM_OFFSET 64
#define DISK_SUM_LEN 16
/* Nothing a compile produces comes near; bounds what a planted file makes us read. */
#define DISK_ENTRY_MAX_BODY ((uint64_t)1 << 30)

#define DISK_TOUCH_AFTER 3600    /* seconds: a hit refreshes an mtime older than this */
#define DISK_STALE_TEMP_AGE 3600 /* seconds: a temporary file older than this is garbage */
#define DISK_STATS_TRIM_AT (256 * 1024)
#define DISK_STATS_KEEP (64 * 1024)

/* The path of `key`'s entry: DIR/v1/ab/cdef... (a new string). */
char *disk_entry_path(const char *dir, const unsigned char key[CACHE_KEY_LEN]);

/*
 * Read the entry open on `fd` (`st` its fstat) and check everything: a
 * regular file of exactly the size its header gives, our magic, version
 * and flags, `key`, the checksum.  0 with the parts appended to `code` and
 * `warnings`; -1 when anything fails (nothing appended).
 */
int disk_entry_read(int fd, const struct stat *st, const unsigned char key[CACHE_KEY_LEN],
		    struct strbuf *code, struct strbuf *warnings);

/*
 * The readers' end: the `size` bytes of an entry were read, the first
 * DISK_HEADER_LEN into `h` and the rest appended to `code` at `base`.
 * Check them (a compressed entry decompressed first) and leave `code`
 * holding the code at `base`, the warnings appended to `warnings`: 0; -1
 * when anything fails (`code` cut back to `base`, nothing appended).
 */
int disk_entry_take(const unsigned char *h, size_t size, const unsigned char key[CACHE_KEY_LEN],
		    struct strbuf *code, size_t base, struct strbuf *warnings);

/*
 * The whole entry for `key` (header, code, warnings) appended to `out`:
 * the bytes a remote store keeps too (store-remote.h).
 */
void disk_entry_format(struct strbuf *out, const unsigned char key[CACHE_KEY_LEN],
		       const void *code, size_t code_len, const void *warnings, size_t warnings_len);

/*
 * The size the header at `buf` (`len` bytes of it readable) gives its
 * entry: DISK_HEADER_LEN + code_len + warn_len; 0 when `len` is shorter
 * than a header or the lengths are beyond DISK_ENTRY_MAX_BODY.
 */
size_t disk_entry_size(const void *buf, size_t len);

/*
 * Check the entry of `size` bytes at `buf` as disk_entry_read() does
 * (size, magic, version, flags, `key`, checksum): 0 when good, else -1.
 */
int disk_entry_check(const void *buf, size_t size, const unsigned char key[CACHE_KEY_LEN]);

/* disk_entry_check() of an entry whose header `h` and body (code, warnings) lie apart. */
int disk_entry_check_parts(const unsigned char *h, const unsigned char *body, size_t size,
			   const unsigned char key[CACHE_KEY_LEN]);

#endif
