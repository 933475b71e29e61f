/*
 * verify.h - is a pyc what the import system will accept for its source?
 *
 * verify_pyc() reads a pyc and classifies it against the source it belongs
 * to, for one target, the way the import system would judge it, and more
 * strictly where the import system is lax (an unchecked-hash pyc whose hash
 * no longer matches "runs old code forever": it is reported stale).  The
 * checks, in order:
 *
 *   unreadable    the pyc exists but cannot be read
 *   missing       there is no pyc
 *   corrupt       shorter than its header, or flags beyond 0b11
 *   wrong-magic   another interpreter's (the detail names the magic number)
 *   stale-mtime   timestamp pyc, the source's mtime changed
 *   stale-size    timestamp pyc, same mtime, the source's size changed
 *   stale-hash    hash pyc (checked or not), the source's hash changed
 *   wrong-mode    not the invalidation mode requested (when one is)
 *   corrupt       the body does not unmarshal (when a reader is available)
 *   ok
 *
 * stale-on-arrival is never verify_pyc()'s: `prepyc check BUNDLE`
 * (bundle.h) says it of a timestamp pyc that was fresh where it was built
 * but whose source will not arrive with the mtime it recorded.
 *
 * verify_pyc() reads both files; verify_pyc_data() judges a pyc already in
 * memory (a bundle's), given the source's hash for a hash pyc.  Pure apart
 * from reading files; safe to call from several threads.
 */
#ifndef VERIFY_H
#define VERIFY_H

#include <stddef.h>
#include <sys/stat.h>

#include "target.h"
#include "walk.h"

enum pyc_status {
	PYC_OK,
	PYC_MISSING,
	PYC_STALE_MTIME,
	PYC_STALE_SIZE,
	PYC_STALE_HASH,
	PYC_WRONG_MAGIC,
	PYC_WRONG_MODE,
	PYC_CORRUPT,
	PYC_UNREADABLE,
	PYC_STALE_ON_ARRIVAL,
	PYC_NSTATUS
};

const char *pyc_status_name(enum pyc_status s);

/*
 * Classify `pyc` for `src` and target `t`.  `want_mode` is the requested
 * invalidation mode (the header flags: 0, 1 or 3), or -1 for any.  A short
 * explanation goes to `detail` (empty when there is nothing to add).
 */
enum pyc_status verify_pyc(const struct target *t, const char *pyc, const struct source *src,
			   int want_mode, char *detail, size_t detail_len);

/*
 * The same for the pyc's bytes `data[0..len)`.  `src_hash` is the source's
 * hash for `t` (pyc_source_hash(), siphash.h), or NULL to read src->path
 * when the pyc is hash-based.
 */
enum pyc_status verify_pyc_data(const struct target *t, const unsigned char *data, size_t len,
				const struct source *src, const unsigned char *src_hash,
				int want_mode, char *detail, size_t detail_len);

/*
 * verify_pyc(), also giving the pyc's fstat() taken before it was read
 * (`st`) and its first bytes (up to `hmax` into `hdr`, their number in
 * *hlen): what a build log records of a pyc judged ok.  Meaningful when
 * the status is PYC_OK.
 */
enum pyc_status verify_pyc_stat(const struct target *t, const char *pyc, const struct source *src,
				int want_mode, char *detail, size_t detail_len, struct stat *st,
				unsigned char *hdr, size_t hmax, size_t *hlen);

#endif
