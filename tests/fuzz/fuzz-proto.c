/*
 * fuzz-proto - libFuzzer target for the frame decoder (src/python/proto.c), fed
 * the way the pool feeds it: the bytes a worker wrote, split at arbitrary
 * points (`make fuzz-proto`).
 *
 * Input: one byte giving a split step, then the stream.  Whatever the
 * bytes: proto_frame() never claims more than it was given; a decoded
 * message's pointers stay inside its frame; decoding the same stream in one
 * piece and in pieces gives the same messages and leaves the same bytes
 * undecoded (an incomplete last frame); a warning's parts lie inside its
 * frame and its body, written again by proto_add_warning(), is the same
 * bytes; proto_format_warning() renders any warning; a compile frame built
 * by proto_add_compile() from any dfile and source decodes to them again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const char *p, size_t n, const char *lo, size_t len)
{
	return !n || (p >= lo && p + n <= lo + len);
}

/* A decoded warning: parts inside the frame, the body written back the same, rendered. */
static void check_warning(const struct proto_msg *m, const char *payload, size_t plen)
{
	const struct proto_warning *w = &m->warn;
	struct strbuf body = STRBUF_INIT, text = STRBUF_INIT;

	if (!inside(w->filename, w->filename_len, payload, plen) ||
	    !inside(w->lineno, w->lineno_len, payload, plen) ||
	    !inside(w->category, w->category_len, payload, plen) ||
	    !inside(w->message, w->message_len, payload, plen) ||
	    !inside(w->line, w->line_len, payload, plen))
		abort();
	proto_add_warning(&body, w);
	if (body.len != m->data_len || memcmp(body.buf, m->data, body.len))
		abort();
	proto_format_warning(&text, w, "f.py", 4, 1);
	/* "f.py:" lineno ": " category ": " message "\n", then "  " line "\n" if it has one */
	if (text.len != 10 + w->lineno_len + w->category_len + w->message_len +
			    ((w->flags & PROTO_WARN_HAS_LINE) ? 3 + w->line_len : 0))
		abort();
	strbuf_release(&body);
	strbuf_release(&text);
}

/* Decode every complete frame of buf[0..len); the number of messages, -1 on a bad frame. */
static long decode_all(const char *buf, size_t len, size_t *used, uint32_t *sum)
{
	long count = 0;

	*used = 0;
	for (;;) {
		const char *payload;
		size_t plen;
		struct proto_msg m;
		long n = proto_frame(buf + *used, len - *used, &payload, &plen);

		if (n == 0)
			return count;
		if (n < 0)
			return -1;
		if ((size_t)n > len - *used || payload < buf + *used || payload + plen > buf + *used + n)
			abort();
		*used += (size_t)n;
		if (proto_decode(payload, plen, &m) < 0)
			continue;
		if (!inside(m.dfile, m.dfile_len, payload, plen) ||
		    !inside(m.kind, m.kind_len, payload, plen) ||
		    !inside(m.data, m.data_len, payload, plen))
			abort();
		if (m.type == PROTO_WARNING)
			check_warning(&m, payload, plen);
		*sum = *sum * 31 + m.id + (uint32_t)m.type + (uint32_t)m.data_len;
		count++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strbuf in = STRBUF_INIT, frame = STRBUF_INIT;
	size_t step, at, used, whole_used, total = 0;
	uint32_t sum1 = 0, sum2 = 0;
	long whole, pieces = 0, n;

	if (size < 1)
		return 0;
	step = 1 + data[0];
	data++;
	size--;
	whole = decode_all((const char *)data, size, &whole_used, &sum1);

	/* the same stream arriving in pieces, as from a pipe */
	for (at = 0; at < size; at += step) {
		size_t k = size - at < step ? size - at : step;

		strbuf_add(&in, data + at, k);
		n = decode_all(in.buf, in.len, &used, &sum2);
		if (n < 0) {
			pieces = -1;
			break;
		}
		pieces += n;
		total += used;
		strbuf_remove_front(&in, used);
	}
	/* and leaves the same incomplete frame behind */
	if (whole >= 0 && pieces >= 0 &&
	    (whole != pieces || sum1 != sum2 || total != whole_used || total + in.len != size))
		abort();

	/* a compile frame round-trips whatever its contents */
	if (size >= 2) {
		const char *payload;
		size_t plen, dlen = data[0] % (size - 1);
		struct proto_msg m;

		proto_add_compile(&frame, 7, -1, (const char *)data + 1, dlen,
				  (const char *)data + 1 + dlen, size - 1 - dlen);
		if (proto_frame(frame.buf, frame.len, &payload, &plen) != (long)frame.len ||
		    proto_decode(payload, plen, &m) < 0 || m.type != PROTO_COMPILE || m.id != 7 ||
		    m.optimize != -1 || m.dfile_len != dlen || memcmp(m.dfile, data + 1, dlen) ||
		    m.data_len != size - 1 - dlen || memcmp(m.data, data + 1 + dlen, m.data_len))
			abort();
	}
	strbuf_release(&in);
	strbuf_release(&frame);
	return 0;
}
