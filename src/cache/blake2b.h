/*
 * blake2b.h - the BLAKE2b hash (RFC 7693), sequential mode, 1 to 64 bytes
 * of output, optionally keyed (up to 64 bytes of key).
 *
 * Calling sequence: blake2b_init() or blake2b_init_key(), any number of
 * blake2b_update(), one blake2b_final(), which writes `outlen` bytes.  The
 * state is plain data: copying it forks the hash, and it needs no
 * release.  blake2b() is the one-shot form.
 *
 * The digest is that of the reference implementation and of Python's
 * hashlib.blake2b(data, digest_size=outlen, key=key): the output length
 * and the key length are part of the parameter block, so BLAKE2b-256 is
 * not a prefix of BLAKE2b-512.  Bad lengths (outlen 0 or > 64, keylen >
 * 64) are a BUG().
 *
 * Byte order is handled with shifts, so it is portable and reads input at
 * any alignment.
 */
#ifndef BLAKE2B_H
#define BLAKE2B_H

#include <stddef.h>
#include <stdint.h>

#define BLAKE2B_BLOCKBYTES 128
#define BLAKE2B_OUTBYTES 64
#define BLAKE2B_KEYBYTES 64

struct blake2b {
	uint64_t h[8], t[2];
	unsigned char buf[BLAKE2B_BLOCKBYTES];
	size_t buflen, outlen;
};

void blake2b_init(struct blake2b *s, size_t outlen);
void blake2b_init_key(struct blake2b *s, size_t outlen, const void *key, size_t keylen);
void blake2b_update(struct blake2b *s, const void *data, size_t len);
void blake2b_final(struct blake2b *s, unsigned char *out);

/* One shot: out = BLAKE2b-(8*outlen)(data), unkeyed. */
void blake2b(void *out, size_t outlen, const void *data, size_t len);

#endif
