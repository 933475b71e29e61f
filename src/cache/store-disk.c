/*
 * store-disk.c - the disk store: entries in a directory shared by runs,
 * processes and users.  The layout is in store-disk.h, the rules of
 * concurrent use in ARCHITECTURE.md ("The bytecode cache"); scanning,
 * eviction and the stats file are cache-admin.c's.
 */
#define _POSIX_C_SOURCE 200809L
#include "store-disk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "blake2b.h"
#include "cache-admin.h"
#include "cache-store.h"
#include "compress.h"
#include "store-pack.h"
#include "tempfile.h"
#include "trustdir.h"
#include "util.h"
#include "banned.h"

static const char cachedir_tag[] =
	"Signature: 8a477f597d28d172789f06886806bc55\n"
	"# This file is a cache directory tag created by prepyc.\n"
	"# For information about cache directory tags, see:\n"
	"#\thttps://bford.info/cachedir/\n";

#define STORED_BITS 65536

struct disk_store {
	struct cache_store base; /* first: the front's handle */
	char *dir;
	uint64_t max_size;
	int writable;
	int fresh;                /* DIR/v1 did not exist before this run: it held nothing */
	int entries_off;          /* cache_store_disk_entries_off(): every lookup misses, nothing stored */
	mode_t umask;             /* the process's, read at the open */
	/* fresh: a bit per key this run stored (by its first two bytes; a clash costs an open) */
	atomic_uchar stored[STORED_BITS / 8];
	struct trust trust;       /* who may have written what we read (trustdir.h) */
	struct packs *packs;      /* DIR/v1/pk: a run's many new entries (store-pack.h) */
	atomic_size_t fills;      /* entries this run set out to store */
	atomic_int store_failed;  /* set once, with the run's one warning */
	atomic_int distrusted;    /* a shard is not ours: nothing more read or written (warned) */
	atomic_int entry_warned;  /* the run's one warning about an entry not ours */
	atomic_uchar shard_ok[256]; /* DIR/v1/ab passed the trust check */
	atomic_uchar shard_missing[256]; /* DIR/v1/ab was missing at a lookup, not made since */
};

/* ---- entries ---------------------------------------------------------- */

char *disk_entry_path(const char *dir, const unsigned char key[CACHE_KEY_LEN])
{
	char hex[2 * CACHE_KEY_LEN + 1];

	hex_encode(key, CACHE_KEY_LEN, hex);
	return xstrfmt("%s/v1/%.2s/%s", dir, hex, hex + 2);
}

/* BLAKE2b-128, unkeyed, of the header before the checksum, the code, the warnings. */
static void entry_sum(const unsigned char *header, const void *code, size_t code_len,
		      const void *warnings, size_t warnings_len, unsigned char out[DISK_SUM_LEN])
{
	struct blake2b s;

	blake2b_init(&s, DISK_SUM_LEN);
	blake2b_update(&s, header, DISK_SUM_OFFSET);
	blake2b_update(&s, code, code_len);
	blake2b_update(&s, warnings, warnings_len);
	blake2b_final(&s, out);
}

/* The header of an entry; `sum`: its checksum when known (checked already), else NULL. */
static void entry_header_sum(unsigned char h[DISK_HEADER_LEN], const unsigned char *key,
			     const void *code, size_t code_len, const void *warnings,
			     size_t warnings_len, const unsigned char *sum)
{
	memcpy(h, DISK_ENTRY_MAGIC, 8);
	put_le32(h + 8, DISK_ENTRY_VERSION);
	put_le32(h + 12, 0);
	memcpy(h + 16, key, CACHE_KEY_LEN);
	put_le64(h + 48, code_len);
	put_le64(h + 56, warnings_len);
	if (sum)
		memcpy(h + DISK_SUM_OFFSET, sum, DISK_SUM_LEN);
	else
		entry_sum(h, code, code_len, warnings, warnings_len, h + DISK_SUM_OFFSET);
}

static void entry_header(unsigned char h[DISK_HEADER_LEN], const unsigned char *key,
			 const void *code, size_t code_len, const void *warnings,
			 size_t warnings_len)
{
	entry_header_sum(h, key, code, code_len, warnings, warnings_len, NULL);
}

void disk_entry_format(struct strbuf *out, const unsigned char key[CACHE_KEY_LEN],
		       const void *code, size_t code_len, const void *warnings, size_t warnings_len)
{
	unsigned char header[DISK_HEADER_LEN];

	entry_header(header, key, code, code_len, warnings, warnings_len);
	strbuf_add(out, header, DISK_HEADER_LEN);
	strbuf_add(out, code, code_len);
	strbuf_add(out, warnings, warnings_len);
}

size_t disk_entry_size(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t code_len, warnings_len;

	if (len < DISK_HEADER_LEN)
		return 0;
	code_len = get_le64(p + 48);
	warnings_len = get_le64(p + 56);
	if (code_len > DISK_ENTRY_MAX_BODY || warnings_len > DISK_ENTRY_MAX_BODY - code_len)
		return 0;
	return (size_t)(DISK_HEADER_LEN + code_len + warnings_len);
}

int disk_entry_check_parts(const unsigned char *h, const unsigned char *body, size_t size,
			   const unsigned char key[CACHE_KEY_LEN])
{
	unsigned char sum[DISK_SUM_LEN];
	uint64_t code_len;

	if (size < DISK_HEADER_LEN || disk_entry_size(h, DISK_HEADER_LEN) != size)
		return -1;
	code_len = get_le64(h + 48);
	if (memcmp(h, DISK_ENTRY_MAGIC, 8) || get_le32(h + 8) != DISK_ENTRY_VERSION ||
	    get_le32(h + 12) || memcmp(h + 16, key, CACHE_KEY_LEN))
		return -1;
	entry_sum(h, body, code_len, body + code_len, size - DISK_HEADER_LEN - code_len, sum);
	return memcmp(sum, h + DISK_SUM_OFFSET, DISK_SUM_LEN) ? -1 : 0;
}

int disk_entry_check(const void *buf, size_t size, const unsigned char key[CACHE_KEY_LEN])
{
	const unsigned char *p = buf;

	if (size < DISK_HEADER_LEN)
		return -1;
	return disk_entry_check_parts(p, p + DISK_HEADER_LEN, size, key);
}

int disk_entry_read(int fd, const struct stat *st, const unsigned char key[CACHE_KEY_LEN],
		    struct strbuf *code, struct strbuf *warnings)
{
	unsigned char h[DISK_HEADER_LEN];
	size_t base = code->len, size;
	struct iovec iov[2];
	unsigned char *p;
	ssize_t n;

	if (!S_ISREG(st->st_mode) || st->st_size < DISK_HEADER_LEN ||
	    (uint64_t)st->st_size > DISK_ENTRY_MAX_BODY + DISK_HEADER_LEN)
		return -1;
	size = (size_t)st->st_size;
	/* one read of the whole file: the header apart, the body into the caller's buffer */
	strbuf_grow(code, size - DISK_HEADER_LEN);
	p = (unsigned char *)code->buf + base;
	iov[0].iov_base = h;
	iov[0].iov_len = DISK_HEADER_LEN;
	iov[1].iov_base = p;
	iov[1].iov_len = size - DISK_HEADER_LEN;
	do
		n = readv(fd, iov, 2);
	while (n < 0 && errno == EINTR);
	if (n >= DISK_HEADER_LEN && (size_t)n < size &&
	    read_in_full(fd, p + (n - DISK_HEADER_LEN), size - (size_t)n) == (ssize_t)(size - (size_t)n))
		n = (ssize_t)size; /* a short read, finished */
	if (n != (ssize_t)size) {
		strbuf_setlen(code, base); /* its NUL again */
		return -1;
	}
	return disk_entry_take(h, size, key, code, base, warnings);
}

/* A compressed entry (the frame: `h`, then the rest at code->buf + base) made plain and checked. */
static int take_frame(const unsigned char *h, size_t size, const unsigned char *key,
		      struct strbuf *code, size_t base, struct strbuf *warnings)
{
	struct strbuf frame = STRBUF_INIT, plain = STRBUF_INIT;
	uint64_t code_len;
	int rc = -1;

	strbuf_add(&frame, h, DISK_HEADER_LEN);
	strbuf_add(&frame, code->buf + base, size - DISK_HEADER_LEN);
	strbuf_setlen(code, base);
	if (decompress_value(frame.buf, frame.len, DISK_HEADER_LEN + DISK_ENTRY_MAX_BODY, &plain) !=
		    COMPRESS_OK ||
	    disk_entry_check(plain.buf, plain.len, key) < 0)
		goto out;
	code_len = get_le64((const unsigned char *)plain.buf + 48);
	strbuf_add(code, plain.buf + DISK_HEADER_LEN, (size_t)code_len);
	strbuf_add(warnings, plain.buf + DISK_HEADER_LEN + code_len,
		   plain.len - DISK_HEADER_LEN - (size_t)code_len);
	rc = 0;
out:
	strbuf_release(&frame);
	strbuf_release(&plain);
	return rc;
}

int disk_entry_take(const unsigned char *h, size_t size, const unsigned char key[CACHE_KEY_LEN],
		    struct strbuf *code, size_t base, struct strbuf *warnings)
{
	const unsigned char *p = (const unsigned char *)code->buf + base;
	uint64_t code_len;

	if (compressed(h, DISK_HEADER_LEN))
		return take_frame(h, size, key, code, base, warnings);
	if (disk_entry_check_parts(h, p, size, key) < 0) {
		strbuf_setlen(code, base);
		return -1;
	}
	code_len = get_le64(h + 48);
	strbuf_add(warnings, p + code_len, size - DISK_HEADER_LEN - code_len);
	strbuf_setlen(code, base + code_len);
	return 0;
}

/*
 * Remove a damaged entry, unless it is no longer the file we read (`st`,
 * when known): another process may have just published a good one.
 */
static void remove_damaged(const char *path, const struct stat *st)
{
	struct stat now;

	if (st && (lstat(path, &now) < 0 || now.st_dev != st->st_dev || now.st_ino != st->st_ino))
		return;
	if (unlink(path) == 0)
		trace("cache: removed damaged entry '%s'", path);
}

/*
 * mkdir DIR/v1/ab in our mode (trust_mkdirs() does each of its ancestors
 * too: only when DIR/v1 is gone, a `prepyc cache clear` meanwhile).
 */
static int make_shard(const struct disk_store *d, const char *path)
{
	mode_t mode = trust_dir_mode(&d->trust);

	if (mkdir(path, mode & 0777) == 0)
		return chmod(path, mode); /* exactly: the umask does not narrow it */
	if (errno == EEXIST)
		return 0;
	return errno == ENOENT ? trust_mkdirs(path, mode, NULL) : -1;
}

/*
 * Is key byte `first`'s shard DIR/v1/ab one we may use?  Checked once per
 * run and shard.  A missing one is made with `create`, in our modes;
 * without, it holds nothing: 0, and remembered until this run makes it (a
 * cold run's lookups cost no system call; one another process makes
 * meanwhile is missed, as a cache may miss).  One that is not ours stops
 * the whole store, with one warning: a shard someone else can write means
 * the cache is not ours.
 */
static int shard_usable(struct disk_store *d, unsigned char first, int create)
{
	struct strbuf why = STRBUF_INIT;
	struct stat st;
	char *path;
	int ok = 1;

	if (atomic_load(&d->distrusted))
		return 0;
	if (atomic_load(&d->shard_ok[first]))
		return 1;
	if (!create && atomic_load(&d->shard_missing[first]))
		return 0;
	path = xstrfmt("%s/v1/%02x", d->dir, first);
	if (stat(path, &st) < 0) {
		if (errno == ENOENT && !create) {
			atomic_store(&d->shard_missing[first], 1);
			ok = 0;
			goto out;
		}
		/* (v1 too, if a `prepyc cache clear` removed it meanwhile) */
		if (errno != ENOENT || !create || make_shard(d, path) < 0 || stat(path, &st) < 0)
			goto out; /* the entry's open or write says what is wrong */
	}
	if (S_ISDIR(st.st_mode) && trust_stat_check(&d->trust, &st, &why)) {
		ok = 0;
		if (!atomic_exchange(&d->distrusted, 1))
			warning("not using the cache '%s': '%s' in it %s", d->dir, path, why.buf);
	} else {
		atomic_store(&d->shard_ok[first], 1);
	}
out:
	strbuf_release(&why);
	free(path);
	return ok;
}

/*
 * Whether the entry open on `fd` (`st`) could only have been written by
 * us (or those we trust): an entry of someone else is refused with the
 * run's one warning about entries.
 */
static int entry_trusted(struct disk_store *d, const char *path, const struct stat *st)
{
	struct strbuf why = STRBUF_INIT;
	int ok = !trust_stat_check(&d->trust, st, &why);

	if (!ok && !atomic_exchange(&d->entry_warned, 1))
		warning("not using the cache entry '%s': it %s", path, why.buf);
	strbuf_release(&why);
	return ok;
}

/* ---- the store's operations ------------------------------------------- */

/* Key `key`'s bit in d->stored: its byte, and the bit in it. */
static size_t stored_bit(const unsigned char key[CACHE_KEY_LEN], unsigned char *bit)
{
	size_t i = ((size_t)key[0] << 8 | key[1]) % STORED_BITS;

	*bit = (unsigned char)(1u << (i % 8));
	return i / 8;
}

/*
 * A cache this run made holds only what it stored, and one whose entries are
 * off holds nothing: the rest costs no system call.
 */
static int surely_absent(struct disk_store *d, const unsigned char key[CACHE_KEY_LEN])
{
	unsigned char bit;
	size_t at = stored_bit(key, &bit);

	return d->entries_off || (d->fresh && !(atomic_load(&d->stored[at]) & bit));
}

static void note_stored(struct disk_store *d, const unsigned char key[CACHE_KEY_LEN])
{
	unsigned char bit;
	size_t at = stored_bit(key, &bit);

	atomic_fetch_or(&d->stored[at], bit);
}

static int disk_get(struct cache_store *s, const unsigned char key[CACHE_KEY_LEN],
		    struct strbuf *code, struct strbuf *warnings)
{
	struct disk_store *d = (struct disk_store *)s;
	struct stat st;
	int fd = -1, hit = 0;
	char *path;

	if (surely_absent(d, key) || atomic_load(&d->distrusted))
		return 0;
	if (packs_get(d->packs, key, code, warnings))
		return 1;
	path = disk_entry_path(d->dir, key);
	if (!shard_usable(d, key[0], 0))
		goto out;
	/* O_NONBLOCK: a FIFO planted at an entry's path must not hang us */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		if (errno == ELOOP && d->writable)
			remove_damaged(path, NULL); /* a symbolic link is not an entry */
		goto out;
	}
	if (fstat(fd, &st) < 0)
		goto out;
	/* checked on the descriptor read: what is judged is what would be used */
	if (S_ISREG(st.st_mode) && !entry_trusted(d, path, &st)) {
		if (d->writable)
			remove_damaged(path, &st);
		goto out;
	}
	if (disk_entry_read(fd, &st, key, code, warnings) < 0) {
		if (d->writable)
			remove_damaged(path, &st);
		goto out;
	}
	hit = 1;
	/* recency for eviction, at most once an hour per entry; a failure only costs precision */
	if (d->writable && st.st_mtime < time(NULL) - DISK_TOUCH_AFTER)
		futimens(fd, NULL);
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return hit;
}

/* Publish a loose entry at `path` (key's): 0, or -1 with errno and *what. */
static int write_loose(struct disk_store *d, const unsigned char key[CACHE_KEY_LEN],
		       const char *path, const struct iovec *iov, int n, const char **what)
{
	int rc = write_file_atomic_masked(path, trust_file_mode(&d->trust), d->umask, iov, n, what);

	if (rc < 0 && errno == ENOENT) {
		/* the shard was removed since it was checked: make it again, once */
		atomic_store(&d->shard_ok[key[0]], 0);
		if (shard_usable(d, key[0], 1))
			rc = write_file_atomic_masked(path, trust_file_mode(&d->trust), d->umask,
						      iov, n, what);
	}
	return rc;
}

/* packs_close()'s unpack: an entry of a pack too small to keep, stored loose. */
static void unpack_entry(void *arg, const unsigned char key[CACHE_KEY_LEN], const void *entry,
			 size_t size)
{
	struct disk_store *d = arg;
	struct iovec iov = { (void *)entry, size };
	const char *what = "";
	char *path;

	if (atomic_load(&d->store_failed) || !shard_usable(d, key[0], 1))
		return;
	path = disk_entry_path(d->dir, key);
	if (write_loose(d, key, path, &iov, 1, &what) < 0) {
		int e = errno;

		/* (something not an entry at its path: not ours to remove, as for a fill) */
		if (e != EISDIR && e != ENOTEMPTY && e != EEXIST &&
		    !atomic_exchange(&d->store_failed, 1))
			warning("cache: %s '%s' (%s): storing nothing more in the cache in this run",
				what, path, strerror(e));
	}
	free(path);
}

/* The parts of key's entry: the frame of `form` when it has one, else header, code, warnings. */
static int entry_parts(struct iovec iov[PACK_ENTRY_PARTS], unsigned char *header,
		       const unsigned char *key, const void *code, size_t code_len,
		       const void *warnings, size_t warnings_len,
		       const struct cache_entry_form *form)
{
	int n = 0;

	/* (a frame shorter than a header is no entry a reader would take: store it plain) */
	if (form && form->frame.len >= DISK_HEADER_LEN) {
		iov[0].iov_base = form->frame.buf;
		iov[0].iov_len = form->frame.len;
		return 1;
	}
	entry_header_sum(header, key, code, code_len, warnings, warnings_len,
			 form ? form->sum : NULL);
	iov[n].iov_base = header;
	iov[n++].iov_len = DISK_HEADER_LEN;
	if (code_len) {
		iov[n].iov_base = (void *)code;
		iov[n++].iov_len = code_len;
	}
	if (warnings_len) {
		iov[n].iov_base = (void *)warnings;
		iov[n++].iov_len = warnings_len;
	}
	return n;
}

/* put, and fill when `fresh` (cache-store.h): no lstat() first, and what is there goes. */
static int store_entry(struct cache_store *s, const unsigned char key[CACHE_KEY_LEN],
		       const void *code, size_t code_len, const void *warnings,
		       size_t warnings_len, uint64_t *bytes, int fresh,
		       const struct cache_entry_form *form)
{
	struct disk_store *d = (struct disk_store *)s;
	unsigned char header[DISK_HEADER_LEN];
	struct iovec iov[PACK_ENTRY_PARTS];
	struct stat st;
	const char *what = "";
	char *path;
	int n = 0, k, stored = 0, rc;

	*bytes = 0;
	if (!d->writable || d->entries_off || atomic_load(&d->store_failed) ||
	    atomic_load(&d->distrusted))
		return 0;
	if ((uint64_t)code_len + warnings_len > DISK_ENTRY_MAX_BODY)
		return 0;
	if (!fresh && packs_has(d->packs, key))
		return 0; /* stored already */
	/*
	 * A run's entries past the first few go into its pack, one file for
	 * them all (no lstat() first: the key missed here a moment ago, and a
	 * duplicate another process stores meanwhile costs only space).
	 */
	if (atomic_fetch_add(&d->fills, 1) >= PACK_MIN_FILLS) {
		n = entry_parts(iov, header, key, code, code_len, warnings, warnings_len, form);
		rc = packs_add(d->packs, key, iov, n, &what, bytes);
		if (rc <= 0) {
			path = rc < 0 ? xstrfmt("%s/v1/" PACK_DIR, d->dir) : NULL; /* for the warning */
			goto stored;
		}
	}
	if (!shard_usable(d, key[0], 1))
		return 0;
	path = disk_entry_path(d->dir, key);
	if (!fresh && lstat(path, &st) == 0)
		goto out; /* stored already (by us or another process); a bad one goes on its next get */
	if (!n) /* (else made already, for the pack: off) */
		n = entry_parts(iov, header, key, code, code_len, warnings, warnings_len, form);
	rc = write_loose(d, key, path, iov, n, &what);
	if (rc < 0 && fresh && (errno == EISDIR || errno == ENOTEMPTY || errno == EEXIST))
		goto out; /* not an entry there, but not ours to remove: as put would, leave it */
stored:
	if (rc < 0) {
		int e = errno;

		if (!atomic_exchange(&d->store_failed, 1))
			warning("cache: %s '%s' (%s): storing nothing more in the cache in this run",
				what, path, strerror(e));
		goto out;
	}
	if (!*bytes) /* (packs_add() counted its index record too) */
		for (k = 0; k < n; k++)
			*bytes += iov[k].iov_len;
	stored = 1;
	note_stored(d, key);
out:
	free(path);
	return stored;
}

static int disk_put(struct cache_store *s, const unsigned char key[CACHE_KEY_LEN],
		    const void *code, size_t code_len, const void *warnings, size_t warnings_len,
		    uint64_t *bytes)
{
	return store_entry(s, key, code, code_len, warnings, warnings_len, bytes, 0, NULL);
}

static int disk_fill(struct cache_store *s, const unsigned char key[CACHE_KEY_LEN],
		     const void *code, size_t code_len, const void *warnings, size_t warnings_len,
		     const struct cache_entry_form *form, uint64_t *bytes)
{
	_Static_assert(CACHE_SUM_LEN == DISK_SUM_LEN, "one checksum");
	return store_entry(s, key, code, code_len, warnings, warnings_len, bytes, 1, form);
}

static int disk_has(struct cache_store *s, const unsigned char key[CACHE_KEY_LEN])
{
	struct disk_store *d = (struct disk_store *)s;
	struct stat st;
	char *path;
	int has;

	if (surely_absent(d, key) || atomic_load(&d->distrusted))
		return 0;
	if (packs_has(d->packs, key))
		return 1;
	path = disk_entry_path(d->dir, key);
	has = lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > DISK_HEADER_LEN;
	free(path);
	return has;
}

static void disk_close(struct cache_store *s, const char *label,
		       const struct cache_store_counts *counts)
{
	struct disk_store *d = (struct disk_store *)s;
	size_t evicted = 0;
	uint64_t size = 0;
	int upkeep = d->writable && !atomic_load(&d->distrusted);

	packs_close(d->packs, unpack_entry, d); /* first: what it published is scanned below */
	if (upkeep && counts->stored)
		evicted = cache_admin_trim(d->dir, d->max_size, counts->stored_bytes, d->fresh,
					   &size);
	/* every run that stored is on record: cache_admin_trim() adds up their bytes */
	if (upkeep && (counts->hits || counts->misses || counts->stored)) {
		struct cache_run r = {
			.when = (long long)time(NULL),
			.label = (char *)label,
			.hits = counts->hits,
			.misses = counts->misses,
			.stored = counts->stored,
			.stored_bytes = counts->stored_bytes,
			.evicted = evicted,
			.max_size = d->max_size,
			.size = size,
		};

		if (counts->remote) {
			r.has_remote = 1;
			r.remote = *counts->remote;
		}

		cache_admin_append_run(d->dir, &r, &d->trust);
	}
	trust_release(&d->trust);
	free(d->dir);
	free(d);
}

static const struct cache_store_ops disk_ops = {
	.name = "disk",
	.get = disk_get,
	.put = disk_put,
	.fill = disk_fill,
	.close = disk_close,
	.has = disk_has,
};

void cache_store_disk_entries_off(struct cache_store *s)
{
	((struct disk_store *)s)->entries_off = 1;
}

/* ---- opening ---------------------------------------------------------- */

/* The tag that backup tools look for; only a courtesy, so failures are ignored. */
static void write_tag(const char *dir, mode_t mode)
{
	char *tag = xstrfmt("%s/CACHEDIR.TAG", dir);
	struct stat st;

	if (lstat(tag, &st) < 0 && errno == ENOENT) {
		struct iovec iov = { (void *)cachedir_tag, sizeof(cachedir_tag) - 1 };
		const char *what;

		write_file_atomic_exact(tag, mode, &iov, 1, &what);
	}
	free(tag);
}

struct cache_store *cache_store_disk_open(const char *dir, uint64_t max_size, unsigned flags)
{
	char *v1 = xstrfmt("%s/v1", dir);
	struct strbuf why = STRBUF_INIT;
	struct disk_store *d = NULL;
	struct trust trust;
	struct stat st;
	size_t i;
	int rc, fresh = lstat(v1, &st) < 0 && errno == ENOENT;

	trust_init(&trust, flags);
	/* mkdir -p DIR/v1 in our modes, and whether all of it is ours (trustdir.h) */
	rc = trust_cache_dir(&trust, dir, "v1", 1, &why);
	if (rc < 0) {
		warning("cannot create the cache directory '%s' (%s): compiling without the cache",
			dir, strerror(errno));
		goto out;
	}
	if (rc > 0) {
		warning("not using the cache '%s': %s", dir, why.buf);
		goto out;
	}
	if (access(v1, R_OK | X_OK) < 0) {
		warning("cannot read the cache directory '%s' (%s): compiling without the cache",
			dir, strerror(errno));
		goto out;
	}
	d = xcalloc(1, sizeof(*d));
	d->base.ops = &disk_ops;
	d->dir = xstrdup(dir);
	d->max_size = max_size;
	d->fresh = fresh;
	d->umask = umask(022); /* no other thread runs now */
	umask(d->umask);
	d->trust = trust;
	atomic_init(&d->store_failed, 0);
	atomic_init(&d->fills, 0);
	atomic_init(&d->distrusted, 0);
	atomic_init(&d->entry_warned, 0);
	for (i = 0; i < ARRAY_SIZE(d->stored); i++)
		atomic_init(&d->stored[i], 0);
	for (i = 0; i < ARRAY_SIZE(d->shard_ok); i++) {
		atomic_init(&d->shard_ok[i], 0);
		atomic_init(&d->shard_missing[i], 0);
	}
	/* access() sees modes, ACLs and read-only mounts; a full disk shows at the first put */
	if (access(v1, W_OK | X_OK) < 0 || access(dir, W_OK | X_OK) < 0) {
		warning("cache directory '%s' is not writable (%s): compiling without storing to the cache",
			dir, strerror(errno));
	} else {
		d->writable = 1;
		write_tag(dir, trust_file_mode(&d->trust));
	}
	d->packs = packs_open(dir, &d->trust, d->writable, d->umask,
			      max_size / 16 < PACK_MAX_BYTES ? max_size / 16 : PACK_MAX_BYTES,
			      max_size / PACK_MIN_SHARE);
out:
	if (!d)
		trust_release(&trust);
	strbuf_release(&why);
	free(v1);
	return d ? &d->base : NULL;
}
