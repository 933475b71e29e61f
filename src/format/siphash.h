/*
 * siphash.h - SipHash, and the source hash of hash-based pycs (PEP 552).
 *
 * A hash-based pyc stores, instead of the source's mtime and size, 8 bytes
 * computed by the target's `importlib.util.source_hash(source)`, which is
 * `_imp.source_hash(key, source)`:
 *
 *   SipHash(k0 = key, k1 = 0, source bytes), stored as a little-endian u64,
 *
 * where key is the target's magic number read as a little-endian u32
 * (`_RAW_MAGIC_NUMBER`; 3.14 calls it `_imp.pyc_magic_number_token`).
 * Which SipHash depends on the interpreter: CPython 3.7-3.10 and PyPy use
 * SipHash-2-4, CPython 3.11+ SipHash-1-3 (the standard 1-3 variant, 64-bit
 * output).  prepyc does not map versions to variants: the probe reports the
 * target's hash of b"abc" and source_hash_kind_from_probe() finds which
 * variant gives it.
 *
 * Calling sequence: once per target, source_hash_kind_from_probe(); then
 * pyc_source_hash() per source.  Everything here is pure (no I/O, no
 * allocation, no global state), works on any alignment of `data` and gives
 * the same result on big- and little-endian hosts.
 */
#ifndef SIPHASH_H
#define SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/*
 * SipHash-c-d of `len` bytes at `data` (NULL allowed when len is 0) with
 * the 128-bit key k0 || k1, where k0 is the key's first 8 bytes read
 * little-endian and k1 the last 8.  Returns the 64-bit output; the
 * reference implementation's output bytes are it in little-endian.
 */
uint64_t siphash24(uint64_t k0, uint64_t k1, const void *data, size_t len);
uint64_t siphash13(uint64_t k0, uint64_t k1, const void *data, size_t len);

/* Which SipHash a target's _imp.source_hash() is; the values name the rounds. */
enum source_hash_kind {
	SOURCE_HASH_SIPHASH13 = 13,
	SOURCE_HASH_SIPHASH24 = 24,
};

/*
 * The 8 bytes a hash-based pyc stores for `len` bytes of source at `src`,
 * for a target whose magic is `magic` (the pyc's first 4 bytes) and whose
 * source hash is `kind`.  An unknown kind is a BUG().
 */
void pyc_source_hash(enum source_hash_kind kind, const unsigned char magic[4], const void *src,
		     size_t len, unsigned char out[8]);

/*
 * Given `abc_hash`, what the target reported for
 * `_imp.source_hash(_RAW_MAGIC_NUMBER, b'abc')` as 8 little-endian bytes,
 * decide which SipHash the target uses.  Returns 0 and sets *kind, or -1
 * (printing nothing, *kind untouched) when no variant matches.
 */
int source_hash_kind_from_probe(const unsigned char magic[4], const unsigned char abc_hash[8],
				enum source_hash_kind *kind);

#endif
