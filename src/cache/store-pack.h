/*
 * store-pack.h - the disk store's packs: many entries in one file.
 *
 * A run that fills a cache stores thousands of entries at once: a first
 * build, and a remote cache's hits stored in the local one (the back-fill)
 * on a fresh builder.  As loose files (store-disk.h) each costs a file
 * creation and a rename, which made such a back-fill half again as slow
 * as a run with a warm local cache.  So a run's new entries go into one
 * pack, published when the run ends (another one past PACK_MAX_BYTES, or
 * a 16th of the cache's bound: a pack is evicted whole).  Small packs are
 * not kept: a run's first PACK_MIN_FILLS entries are stored loose, and a
 * pack that holds less than a PACK_MIN_SHARE-th of the bound at the end
 * is written out as loose entries.  So the many runs that each store a
 * few entries (an edited module, a teammate's new one) leave no packs
 * for every later run to open, and a cache within its bound never holds
 * more than about PACK_MIN_SHARE packs:
 *
 *   DIR/v1/pk/0123...cdef       a pack: 32 hex digits, its trailer's checksum
 *   DIR/v1/pk/.prepyc-PID-N.tmp a pack being written (tempfile.h)
 *
 * A pack, integers little-endian:
 *
 *   entries   each exactly as a loose entry file holds it (store-disk.h),
 *             so each is checked as one is (magic, key, checksum) when read
 *   index     count records of 48 bytes, sorted by key:
 *             key 32, offset u64, size u64 (within the entries)
 *   trailer   48 bytes: magic "PREPYCP\n", version u32 1, flags u32 0,
 *             count u64, index offset u64, checksum 16 (BLAKE2b-128,
 *             unkeyed, of the index then the trailer's first 32 bytes)
 *
 * The file's size is exactly index offset + 48 * count + 48.  A pack is
 * read as an entry is: opened with O_NOFOLLOW and judged on its fstat
 * (trustdir.h), else not used (one warning); one whose trailer or index
 * fails a check is removed when the directory is writable.  A hit sets
 * the pack's mtime as a loose entry's (eviction removes a pack whole,
 * oldest first, as cache-admin.c does entries).  The packs are read at a
 * run's first lookup, a run's own pack is found by its lookups as it grows;
 * one another process publishes meanwhile is not seen by this run.
 *
 * Threads: every function but packs_open() and packs_close() may be
 * called from several threads at once.
 */
#ifndef STORE_PACK_H
#define STORE_PACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "cache.h"

struct packs;
struct strbuf;
struct trust;

#define PACK_DIR "pk"
#define PACK_NAME_LEN 32       /* hex digits */
#define PACK_RECORD_LEN 48
#define PACK_TRAILER_LEN 48
#define PACK_MAX_FILES 512     /* packs past this many (in directory order) are not read */
#define PACK_MIN_FILLS 64      /* a run's first new entries are stored loose, the rest packed */
#define PACK_MIN_SHARE 256     /* a pack below a 256th of the bound is unpacked, at the end */
/* A pack holds at most this, and a 16th of the cache's bound: eviction removes no more at once. */
#define PACK_MAX_BYTES ((uint64_t)64 << 20)

/*
 * The packs of cache directory `dir`, read at the first lookup or add (a
 * run that looks nothing up reads none); `trust` is the store's
 * (borrowed), `writable` whether the store writes (a damaged pack is then
 * removed), `mask` the umask, `max_bytes` what a pack of this run may
 * hold (a bigger entry gets a pack of its own), `min_bytes` what it must
 * hold to be kept as a pack.
 */
struct packs *packs_open(const char *dir, const struct trust *trust, int writable,
			 mode_t mask, uint64_t max_bytes, uint64_t min_bytes);

/*
 * Look `key` up: 1 with the entry's parts appended to `code` and
 * `warnings`; 0 when no pack holds it, or the entry fails a check.
 */
int packs_get(struct packs *p, const unsigned char key[CACHE_KEY_LEN], struct strbuf *code,
	      struct strbuf *warnings);

/* Whether a pack holds `key` (by the index: no read). */
int packs_has(struct packs *p, const unsigned char key[CACHE_KEY_LEN]);

/* The most parts an entry is given in to packs_add(): header, code, warnings. */
#define PACK_ENTRY_PARTS 3

/*
 * Append a whole entry, the `n` parts at `entry` one after the other (its
 * 80-byte header, code, warnings; or its compressed frame: store-disk.h),
 * to this run's pack, made on first use: 0 with *bytes what the pack grows
 * by (its index record and trailer counted); 1 when packs are off
 * (DIR/v1/pk is not ours, warned: store the entry loose); -1 with errno
 * and `*what` the failed step (the pack is then dropped at packs_close(),
 * nothing more added).
 */
int packs_add(struct packs *p, const unsigned char key[CACHE_KEY_LEN], const struct iovec *entry,
	      int n, const char **what, uint64_t *bytes);

/*
 * Publish this run's packs, close everything, free `p`.  A pack of less
 * than `min_bytes` is not kept: unpack(arg, key, entry, size) is called
 * for each of its entries (the whole entry, header included), to store
 * it loose.
 */
void packs_close(struct packs *p,
		 void (*unpack)(void *arg, const unsigned char key[CACHE_KEY_LEN],
				const void *entry, size_t size),
		 void *arg);

/* DIR/v1/pk/NAME for a pack's 16-byte id (a new string). */
char *pack_path(const char *dir, const unsigned char id[PACK_NAME_LEN / 2]);

/*
 * For `prepyc cache`: the pack open on `fd` (`st` its fstat): its entries'
 * count (trailer and index checked), -1 when damaged.  With `deep`, every
 * entry is read and checked too.
 */
long long pack_check(int fd, const struct stat *st, int deep);

#endif
