#define _POSIX_C_SOURCE 200809L
#include "proto.h"

#include <string.h>

#include "util.h"
#include "banned.h"

size_t proto_begin_compile(struct strbuf *out, uint32_t id, int32_t optimize,
			   const char *dfile, size_t dfile_len)
{
	size_t start = out->len;

	strbuf_add_le32(out, 0);
	strbuf_addch(out, PROTO_COMPILE);
	strbuf_add_le32(out, id);
	strbuf_add_le32(out, (uint32_t)optimize);
	strbuf_add_le32(out, (unsigned long)dfile_len);
	strbuf_add(out, dfile, dfile_len);
	return start;
}

int proto_end_frame(struct strbuf *out, size_t start)
{
	size_t payload = out->len - start - 4;

	if (payload > PROTO_MAX_FRAME)
		return -1;
	put_le32((unsigned char *)out->buf + start, (uint32_t)payload);
	return 0;
}

void proto_add_compile(struct strbuf *out, uint32_t id, int32_t optimize,
		       const char *dfile, size_t dfile_len, const char *source,
		       size_t source_len)
{
	size_t start = proto_begin_compile(out, id, optimize, dfile, dfile_len);

	strbuf_add(out, source, source_len);
	if (proto_end_frame(out, start) < 0)
		BUG("compile frame too large");
}

long proto_frame(const char *buf, size_t len, const char **payload, size_t *payload_len)
{
	uint32_t n;

	if (len < 4)
		return 0;
	n = get_le32((const unsigned char *)buf);
	if (n == 0 || n > PROTO_MAX_FRAME)
		return -1;
	if (len - 4 < n)
		return 0;
	*payload = buf + 4;
	*payload_len = n;
	return (long)n + 4;
}

int proto_decode(const char *payload, size_t len, struct proto_msg *msg)
{
	const unsigned char *p = (const unsigned char *)payload;

	memset(msg, 0, sizeof(*msg));
	if (len < 5)
		return -1;
	msg->type = (enum proto_type)p[0];
	if (msg->type == PROTO_HELLO) {
		if (len != 5)
			return -1;
		msg->version = get_le32(p + 1);
		return 0;
	}
	msg->id = get_le32(p + 1);
	p += 5;
	len -= 5;
	switch (msg->type) {
	case PROTO_COMPILE: {
		uint32_t dlen;

		if (len < 8)
			return -1;
		msg->optimize = (int32_t)get_le32(p);
		dlen = get_le32(p + 4);
		p += 8;
		len -= 8;
		if (dlen > len)
			return -1;
		msg->dfile = (const char *)p;
		msg->dfile_len = dlen;
		msg->data = (const char *)p + dlen;
		msg->data_len = len - dlen;
		return 0;
	}
	case PROTO_ERROR:
		if (len < 1 || (size_t)p[0] > len - 1)
			return -1;
		msg->kind = (const char *)p + 1;
		msg->kind_len = p[0];
		msg->data = (const char *)p + 1 + p[0];
		msg->data_len = len - 1 - p[0];
		return 0;
	case PROTO_WARNING:
		if (proto_decode_warning((const char *)p, len, &msg->warn) < 0)
			return -1;
		/* fall through */
	case PROTO_CODE:
		msg->data = (const char *)p;
		msg->data_len = len;
		return 0;
	default:
		return -1;
	}
}

/* One n:u32le-prefixed part of a warning's body; -1 past the end. */
static int take_part(const unsigned char **p, size_t *left, const char **part, size_t *len)
{
	uint32_t n;

	if (*left < 4)
		return -1;
	n = get_le32(*p);
	if (n > *left - 4)
		return -1;
	*part = (const char *)*p + 4;
	*len = n;
	*p += 4 + (size_t)n;
	*left -= 4 + (size_t)n;
	return 0;
}

int proto_decode_warning(const char *body, size_t len, struct proto_warning *w)
{
	const unsigned char *p = (const unsigned char *)body;

	memset(w, 0, sizeof(*w));
	if (len < 1 || (p[0] & ~(PROTO_WARN_AT_DFILE | PROTO_WARN_HAS_LINE)))
		return -1;
	w->flags = p[0];
	p++;
	len--;
	if (take_part(&p, &len, &w->filename, &w->filename_len) < 0 ||
	    take_part(&p, &len, &w->lineno, &w->lineno_len) < 0 ||
	    take_part(&p, &len, &w->category, &w->category_len) < 0 ||
	    take_part(&p, &len, &w->message, &w->message_len) < 0)
		return -1;
	w->line = (const char *)p;
	w->line_len = len;
	return 0;
}

static void add_part(struct strbuf *out, const char *part, size_t len)
{
	if (len > UINT32_MAX)
		BUG("warning part too long");
	strbuf_add_le32(out, (unsigned long)len);
	strbuf_add(out, part, len);
}

void proto_add_warning(struct strbuf *out, const struct proto_warning *w)
{
	strbuf_addch(out, (int)w->flags);
	add_part(out, w->filename, w->filename_len);
	add_part(out, w->lineno, w->lineno_len);
	add_part(out, w->category, w->category_len);
	add_part(out, w->message, w->message_len);
	strbuf_add(out, w->line, w->line_len);
}

void proto_format_warning(struct strbuf *out, const struct proto_warning *w,
			  const char *filename, size_t len, int show_line)
{
	strbuf_add(out, filename, len);
	strbuf_addch(out, ':');
	strbuf_add(out, w->lineno, w->lineno_len);
	strbuf_add(out, ": ", 2);
	strbuf_add(out, w->category, w->category_len);
	strbuf_add(out, ": ", 2);
	strbuf_add(out, w->message, w->message_len);
	strbuf_addch(out, '\n');
	/* formatwarning: `if line:` on the line as linecache has it, then strip() */
	if (show_line && (w->flags & PROTO_WARN_HAS_LINE)) {
		strbuf_add(out, "  ", 2);
		strbuf_add(out, w->line, w->line_len);
		strbuf_addch(out, '\n');
	}
}
