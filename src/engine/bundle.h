/*
 * bundle.h - a zip, wheel or tar judged as it will arrive: the library
 * behind `prepyc check BUNDLE`.
 *
 * Between a build tree and the running code a bundle rewrites the
 * sources' mtimes, so that a timestamp pyc fresh in the tree can be stale
 * once extracted, and every cold start recompiles it.  bundle_load() reads
 * the archive once, streaming, with libarchive (bundle-read.c, the one
 * file that knows it), and never extracts anything: it keeps an inventory
 * of the members (name, type, size, stored mtime), the bytes of every
 * .pyc, and of every .py its source hash for each target that has
 * hash-based pycs.  It then lists the members under the root as
 * walk_path() lists a tree (walk.h), so that check_tree() (check.h) plans
 * and judges them exactly as a directory's, with bundle_verify() in place
 * of verify_pyc() and bundle_stat() in place of stat().
 *
 * Paths: member NAME is listed as "BUNDLE/NAME" (BUNDLE as given: the form
 * zipimport gives __file__); the root (`--root PREFIX`: "python" in a
 * Lambda layer) is the directory argument, depths count from it.
 *
 * The mtime a source arrives with, which a timestamp pyc must record:
 *   - tar: the stored mtime (whole seconds; a pax time's fraction as
 *     st_mtime would have it).
 *   - zip: a DOS date-time, the local time of the machine that wrote it in
 *     2-second steps, perhaps with an exact UTC time (extra field 0x5455)
 *     that unzip restores but other extractors ignore.  Judged
 *     conservatively: the stored time as a DOS time holds it (local time
 *     of this machine's zone, seconds rounded down to even) read as UTC
 *     where it arrives (AWS Lambda and Cloud Functions run in UTC).
 *   - wheel: none survives: installers give the files the time of
 *     installation (pip: pypa/pip#13207), so every timestamp pyc is
 *     stale-on-arrival; hash pycs are judged as anywhere.
 * A timestamp pyc whose mtime is not its source's arrival mtime is
 * stale-on-arrival when the bundle is the cause: the size agrees and the
 * pyc records the stored time exactly, or within the zip's 2 seconds, or a
 * time zone's offset from it (whole quarter hours: a zip's local time),
 * or every file of the bundle has one stored time (a tool reset them);
 * else it was stale before (stale-mtime).  The detail names both times, in
 * UTC: "the zip stores 2026-01-02 12:00:02 UTC for a source compiled at
 * 2026-01-02 12:00:03 UTC".
 *
 * Hostile and broken archives are an error and nothing is judged: a member
 * with an absolute name or a ".." component, a hard link to one, a
 * symlink under the root pointing out of the archive (judged lexically;
 * one inside is judged as its target, a dangling one is no file), more
 * than PREPYC_BUNDLE_MAX_ENTRIES members (default 1000000) or
 * PREPYC_BUNDLE_MAX_BYTES bytes uncompressed (default 4 GiB: bounds a zip
 * bomb), and whatever libarchive cannot read (corrupt, truncated, not an
 * archive of the kind its name says).
 *
 * Calling sequence (cmd-check.c), once the targets are probed:
 *
 *   struct bundle b = BUNDLE_INIT;
 *   if (bundle_load(&b, path, root, maxlevels, targets, ntargets, &list) < 0)
 *       ... exit 2 ...
 *   o.bundle = &b;
 *   check_tree(&c, &o, targets, ntargets, &list, skips);  ... report ...
 *   check_release(&c); source_list_release(&list); bundle_release(&b);
 *
 * bundle_read() sets TZ to ":/etc/localtime" when it is unset (the same
 * zone): libarchive's conversion of each zip time then stops re-reading
 * the file per member.
 *
 * Errors: bundle_load() prints why ("prepyc: error: cannot read 'f.zip':
 * REASON"), also when libarchive was not compiled in or cannot be loaded
 * (it is loaded when first needed), and returns -1;
 * bundle_verify() and bundle_stat() cannot fail.  Ownership: the bundle
 * owns its entries, the list its paths; the targets must outlive the
 * bundle.  bundle_verify() and bundle_stat() only read: safe on threads.
 */
#ifndef BUNDLE_H
#define BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "target.h"
#include "verify.h"
#include "walk.h"

enum bundle_kind { BUNDLE_TAR, BUNDLE_ZIP, BUNDLE_WHEEL };

enum bundle_type { BE_FILE, BE_DIR, BE_SYMLINK, BE_HARDLINK, BE_OTHER };

struct bundle_entry {
	char *name;            /* member name without "./", "//" or a trailing "/" */
	char *link;            /* BE_SYMLINK: the target as stored; BE_HARDLINK: a member name */
	uint64_t size;
	int64_t mtime_sec;     /* as stored (0 when the member has none) */
	long mtime_nsec;
	unsigned char *data;   /* a .pyc's bytes (size of them), or NULL */
	unsigned char *hashes; /* a .py's source hash per target (PYC_HASH_LEN each), or NULL */
	size_t order;          /* place in the archive: of equal names, the last wins */
	size_t file;           /* the BE_FILE entry it is, after links; SIZE_MAX: none */
	unsigned char type;    /* enum bundle_type */
};

struct bundle {
	char *path;            /* as given */
	enum bundle_kind kind;
	struct bundle_entry *v; /* sorted by name once loaded */
	size_t nr, alloc;
	const struct target *targets;
	size_t ntargets;
	int one_mtime;         /* every file has the same stored mtime (two or more files) */
};

#define BUNDLE_INIT { NULL, BUNDLE_TAR, NULL, 0, 0, NULL, 0, 0 }

/*
 * Is `path` named as a bundle (.zip, .whl, .tar, .tar.gz, .tgz, .tar.xz,
 * .txz, .tar.zst, .tzst, .tar.bz2) and not a directory?  Sets *kind.
 */
int bundle_is_name(const char *path, enum bundle_kind *kind);

/*
 * `check`'s command line: 1 when `paths` are one bundle; 0 when none is
 * one (an error when `root`, --root, is given); -1 after an error: a
 * bundle with other PATHs, or `tree_option` (the name of an option given
 * that applies to trees only, or NULL).
 */
int bundle_args(int npaths, const char *const *paths, const char *root,
		const char *tree_option);

/*
 * Read `path` and list its members under `root` (NULL or "": all) no
 * deeper than `maxlevels` into `list`, for the targets (which must be
 * probed; their sys.pycache_prefix is dropped: where a bundle arrives
 * has none).  0, or -1 after printing an error.
 */
int bundle_load(struct bundle *b, const char *path, const char *root, int maxlevels,
		struct target *targets, size_t ntargets, struct source_list *list);

/*
 * bundle_load()'s first half, in bundle-read.c: the members of `b->path`
 * (b->kind set) appended to b->v in archive order, with their data and
 * hashes.  0, or -1 after printing an error.
 */
int bundle_read(struct bundle *b);

/* verify_pyc() for a pyc and source listed by bundle_load(), as they will arrive. */
enum pyc_status bundle_verify(const struct bundle *b, const struct target *t, const char *pyc,
			      const struct source *src, int want_mode, char *detail,
			      size_t detail_len);

/* The arrival size and mtime of the source s->path (inventory.h's stat_fn): 0, or -1: none. */
int bundle_stat(const struct bundle *b, struct source *s);

void bundle_release(struct bundle *b);

#endif
