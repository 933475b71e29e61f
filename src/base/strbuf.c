#define _POSIX_C_SOURCE 200809L
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "banned.h"

char strbuf_slopbuf[1];

void strbuf_init(struct strbuf *sb, size_t hint)
{
	sb->alloc = sb->len = 0;
	sb->buf = strbuf_slopbuf;
	if (hint)
		strbuf_grow(sb, hint);
}

void strbuf_release(struct strbuf *sb)
{
	if (sb->alloc)
		free(sb->buf);
	strbuf_init(sb, 0);
}

char *strbuf_detach(struct strbuf *sb, size_t *len)
{
	char *p;

	if (len)
		*len = sb->len;
	if (!sb->alloc)
		strbuf_grow(sb, 0);
	p = sb->buf;
	strbuf_init(sb, 0);
	return p;
}

void strbuf_grow(struct strbuf *sb, size_t extra)
{
	size_t want = st_add(st_add(sb->len, extra), 1);
	int fresh = !sb->alloc;

	if (want <= sb->alloc)
		return;
	if (fresh)
		sb->buf = NULL;
	if (want < sb->alloc * 3 / 2)
		want = sb->alloc * 3 / 2;
	if (want < 64)
		want = 64;
	sb->buf = xrealloc(sb->buf, want);
	sb->alloc = want;
	if (fresh)
		sb->buf[0] = '\0';
}

void strbuf_setlen(struct strbuf *sb, size_t len)
{
	if (len > (sb->alloc ? sb->alloc - 1 : 0))
		BUG("strbuf_setlen beyond allocation");
	sb->len = len;
	if (sb->alloc)
		sb->buf[len] = '\0';
}

void strbuf_add(struct strbuf *sb, const void *data, size_t len)
{
	if (!len)
		return;
	strbuf_grow(sb, len);
	memcpy(sb->buf + sb->len, data, len);
	strbuf_setlen(sb, sb->len + len);
}

void strbuf_addstr(struct strbuf *sb, const char *s)
{
	strbuf_add(sb, s, strlen(s));
}

void strbuf_addch(struct strbuf *sb, int c)
{
	strbuf_grow(sb, 1);
	sb->buf[sb->len] = (char)c;
	strbuf_setlen(sb, sb->len + 1);
}

void strbuf_addf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(sb->buf + sb->len, sb->alloc ? sb->alloc - sb->len : 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		BUG("vsnprintf failed");
	if (!sb->alloc || (size_t)n >= sb->alloc - sb->len) {
		strbuf_grow(sb, (size_t)n);
		va_start(ap, fmt);
		vsnprintf(sb->buf + sb->len, sb->alloc - sb->len, fmt, ap);
		va_end(ap);
	}
	strbuf_setlen(sb, sb->len + (size_t)n);
}

void strbuf_add_le32(struct strbuf *sb, unsigned long v)
{
	unsigned char b[4];

	put_le32(b, (uint32_t)v);
	strbuf_add(sb, b, 4);
}

void strbuf_add_le64(struct strbuf *sb, uint64_t v)
{
	unsigned char b[8];

	put_le64(b, v);
	strbuf_add(sb, b, 8);
}

void strbuf_remove_front(struct strbuf *sb, size_t n)
{
	if (n > sb->len)
		BUG("strbuf_remove_front beyond length");
	if (!n)
		return;
	memmove(sb->buf, sb->buf + n, sb->len - n);
	strbuf_setlen(sb, sb->len - n);
}

long strbuf_read_fd(struct strbuf *sb, int fd, size_t hint)
{
	size_t start = sb->len;

	strbuf_grow(sb, hint ? hint : 8192);
	for (;;) {
		ssize_t n;

		if (sb->alloc - sb->len < 4096)
			strbuf_grow(sb, sb->alloc);
		n = xread(fd, sb->buf + sb->len, sb->alloc - sb->len - 1);
		if (n < 0) {
			strbuf_setlen(sb, start);
			return -1;
		}
		if (n == 0)
			break;
		strbuf_setlen(sb, sb->len + (size_t)n);
	}
	return (long)(sb->len - start);
}

void strbuf_add_size(struct strbuf *sb, uint64_t n)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)n / 1024;
	size_t u = 0;

	if (n < 1024) {
		strbuf_addf(sb, "%llu byte%s", (unsigned long long)n, n == 1 ? "" : "s");
		return;
	}
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	strbuf_addf(sb, "%.1f %s (%llu bytes)", v, units[u], (unsigned long long)n);
}
