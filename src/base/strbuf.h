/*
 * strbuf.h - a growable byte buffer, always NUL-terminated.
 *
 * `buf` points at `len` bytes followed by a NUL; it is never NULL (an empty
 * strbuf points at a static empty string until it first grows, so
 * STRBUF_INIT needs no allocation).  strbuf_release() frees and resets;
 * strbuf_detach() hands the memory to the caller.
 */
#ifndef STRBUF_H
#define STRBUF_H

#include <stddef.h>
#include <stdint.h>

struct strbuf {
	size_t alloc;
	size_t len;
	char *buf;
};

extern char strbuf_slopbuf[];
#define STRBUF_INIT { 0, 0, strbuf_slopbuf }

void strbuf_init(struct strbuf *sb, size_t hint);
void strbuf_release(struct strbuf *sb);
char *strbuf_detach(struct strbuf *sb, size_t *len);
void strbuf_grow(struct strbuf *sb, size_t extra);
void strbuf_setlen(struct strbuf *sb, size_t len);
#define strbuf_reset(sb) strbuf_setlen((sb), 0)

void strbuf_add(struct strbuf *sb, const void *data, size_t len);
void strbuf_addstr(struct strbuf *sb, const char *s);
void strbuf_addch(struct strbuf *sb, int c);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void strbuf_add_le32(struct strbuf *sb, unsigned long v);
void strbuf_add_le64(struct strbuf *sb, uint64_t v);
/* A size for people: "12.3 MiB (12898812 bytes)", or "123 bytes" below a KiB. */
void strbuf_add_size(struct strbuf *sb, uint64_t n);
/* Remove the first `n` bytes. */
void strbuf_remove_front(struct strbuf *sb, size_t n);

/*
 * Read the whole of `fd` (until EOF) into `sb`, appending; `hint` sizes the
 * first allocation.  Returns the bytes read or -1 with errno set.
 */
long strbuf_read_fd(struct strbuf *sb, int fd, size_t hint);

#endif
