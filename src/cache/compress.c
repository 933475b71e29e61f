/*
 * compress.c - zstd for the remote cache's values (see compress.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "compress.h"

#include <string.h>

#ifdef PREPYC_WITH_ZSTD
#include <zstd.h>
#endif

#include "banned.h"

/* ZSTD_MAGICNUMBER, little-endian, without needing zstd.h */
static const unsigned char zstd_magic[4] = { 0x28, 0xb5, 0x2f, 0xfd };

int compressed(const void *data, size_t len)
{
	return len >= sizeof(zstd_magic) && !memcmp(data, zstd_magic, sizeof(zstd_magic));
}

const char *compress_missing_hint(void)
{
#ifdef PREPYC_WITH_ZSTD
	return "libzstd: Debian's libzstd1";
#else
	return "libzstd-dev and pkg-config, then rebuild prepyc";
#endif
}

#ifdef PREPYC_WITH_ZSTD

int compress_available(void)
{
	return zstd_loaded();
}

int compress_value(const void *data, size_t len, struct strbuf *out)
{
	size_t bound, n;

	strbuf_reset(out);
	if (!zstd_loaded())
		return -1;
	bound = ZSTD_compressBound(len);
	if (ZSTD_isError(bound))
		return -1;
	strbuf_grow(out, bound);
	n = ZSTD_compress(out->buf, bound, data, len, COMPRESS_LEVEL);
	if (ZSTD_isError(n) || n >= len) {
		strbuf_reset(out);
		return -1;
	}
	strbuf_setlen(out, n);
	return 0;
}

size_t compressed_frame_size(const void *data, size_t len)
{
	size_t n;

	if (!zstd_loaded())
		return 0;
	n = ZSTD_findFrameCompressedSize(data, len);
	return ZSTD_isError(n) ? 0 : n;
}

int decompress_value(const void *data, size_t len, size_t max, struct strbuf *out)
{
	unsigned long long size;
	size_t n;

	strbuf_reset(out);
	if (!zstd_loaded())
		return COMPRESS_UNSUPPORTED;
	size = ZSTD_getFrameContentSize(data, len);
	if (size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR || size > max ||
	    ZSTD_findFrameCompressedSize(data, len) != len)
		return COMPRESS_BAD;
	strbuf_grow(out, (size_t)size);
	n = ZSTD_decompress(out->buf, (size_t)size, data, len);
	if (ZSTD_isError(n) || n != size)
		return COMPRESS_BAD;
	strbuf_setlen(out, n);
	return COMPRESS_OK;
}

#else /* no libzstd */

int compress_available(void)
{
	return 0;
}

int compress_value(const void *data, size_t len, struct strbuf *out)
{
	(void)data;
	(void)len;
	strbuf_reset(out);
	return -1;
}

size_t compressed_frame_size(const void *data, size_t len)
{
	(void)data;
	(void)len;
	return 0;
}

int decompress_value(const void *data, size_t len, size_t max, struct strbuf *out)
{
	(void)data;
	(void)len;
	(void)max;
	strbuf_reset(out);
	return COMPRESS_UNSUPPORTED;
}

#endif
