#include "harness.h"
#include "proto.h"
#include "strbuf.h"
#include "util.h"

TEST(proto_compile_roundtrip)
{
	struct strbuf sb = STRBUF_INIT;
	const char *payload;
	size_t plen;
	struct proto_msg m;
	long n;

	proto_add_compile(&sb, 7, -1, "a/b.py", 6, "x = 1\n", 6);
	n = proto_frame(sb.buf, sb.len, &payload, &plen);
	CHECK_INT(n, (long)sb.len);
	CHECK_INT(plen, 1 + 4 + 4 + 4 + 6 + 6);
	CHECK_INT(proto_decode(payload, plen, &m), 0);
	CHECK_INT(m.type, PROTO_COMPILE);
	CHECK_INT(m.id, 7);
	CHECK_INT(m.optimize, -1);
	CHECK_INT(m.dfile_len, 6);
	CHECK_MEM(m.dfile, "a/b.py", 6);
	CHECK_INT(m.data_len, 6);
	CHECK_MEM(m.data, "x = 1\n", 6);
	strbuf_release(&sb);
}

TEST(proto_frame_needs_whole_frame)
{
	struct strbuf sb = STRBUF_INIT;
	const char *payload;
	size_t plen, i;

	proto_add_compile(&sb, 1, 0, "f.py", 4, "pass\n", 5);
	for (i = 0; i < sb.len; i++)
		CHECK_INT(proto_frame(sb.buf, i, &payload, &plen), 0);
	CHECK_INT(proto_frame(sb.buf, sb.len, &payload, &plen), (long)sb.len);
	strbuf_release(&sb);
}

TEST(proto_rejects_bad_lengths)
{
	const char *payload;
	size_t plen;
	static const char zero[4] = { 0, 0, 0, 0 };
	static const char huge[4] = { 0, 0, 0, 0x50 };

	CHECK_INT(proto_frame(zero, 4, &payload, &plen), -1);
	CHECK_INT(proto_frame(huge, 4, &payload, &plen), -1);
}

static void put_payload(struct strbuf *sb, const char *bytes, size_t n)
{
	strbuf_reset(sb);
	strbuf_add(sb, bytes, n);
}

TEST(proto_decode_replies)
{
	struct strbuf sb = STRBUF_INIT;
	struct proto_msg m;

	put_payload(&sb, "H\x01\x00\x00\x00", 5);
	CHECK_INT(proto_decode(sb.buf, sb.len, &m), 0);
	CHECK_INT(m.type, PROTO_HELLO);
	CHECK_INT(m.version, 1);

	put_payload(&sb, "K\x02\x00\x00\x00\xe3\x00", 7);
	CHECK_INT(proto_decode(sb.buf, sb.len, &m), 0);
	CHECK_INT(m.type, PROTO_CODE);
	CHECK_INT(m.id, 2);
	CHECK_INT(m.data_len, 2);

	put_payload(&sb, "E\x03\x00\x00\x00\x0bSyntaxErrorbad", 20);
	CHECK_INT(proto_decode(sb.buf, sb.len, &m), 0);
	CHECK_INT(m.type, PROTO_ERROR);
	CHECK_INT(m.kind_len, 11);
	CHECK_MEM(m.kind, "SyntaxError", 11);
	CHECK_INT(m.data_len, 3);
	CHECK_MEM(m.data, "bad", 3);

	/* as worker.py sends it: flags, four n:u32le parts, the stripped line */
	put_payload(&sb, "W\x03\x00\x00\x00\x03"
			 "\x06\x00\x00\x00" "a/w.py" "\x01\x00\x00\x00" "2"
			 "\x0d\x00\x00\x00" "SyntaxWarning" "\x04\x00\x00\x00" "oops"
			 "x is 1", 6 + 10 + 5 + 17 + 8 + 6);
	if (proto_decode(sb.buf, sb.len, &m) < 0) {
		CHECK(!"the warning decodes");
		strbuf_release(&sb);
		return;
	}
	CHECK_INT(m.type, PROTO_WARNING);
	CHECK_INT(m.id, 3);
	CHECK_INT(m.data_len, sb.len - 5);
	CHECK_INT(m.warn.flags, PROTO_WARN_AT_DFILE | PROTO_WARN_HAS_LINE);
	CHECK_INT(m.warn.filename_len, 6);
	CHECK_MEM(m.warn.filename, "a/w.py", 6);
	CHECK_INT(m.warn.lineno_len, 1);
	CHECK_MEM(m.warn.category, "SyntaxWarning", 13);
	CHECK_INT(m.warn.message_len, 4);
	CHECK_INT(m.warn.line_len, 6);
	CHECK_MEM(m.warn.line, "x is 1", 6);
	strbuf_release(&sb);
}

TEST(proto_warning_roundtrip_and_format)
{
	struct strbuf body = STRBUF_INIT, text = STRBUF_INIT;
	struct proto_warning w, back;

	memset(&w, 0, sizeof(w));
	w.flags = PROTO_WARN_AT_DFILE | PROTO_WARN_HAS_LINE;
	w.filename = "a/w.py";
	w.filename_len = 6;
	w.lineno = "2";
	w.lineno_len = 1;
	w.category = "SyntaxWarning";
	w.category_len = 13;
	w.message = "\"is\" with a literal";
	w.message_len = strlen(w.message);
	w.line = "return x is 1";
	w.line_len = strlen(w.line);
	proto_add_warning(&body, &w);
	CHECK_INT(proto_decode_warning(body.buf, body.len, &back), 0);
	CHECK_INT(back.flags, w.flags);
	CHECK_INT(back.line_len, w.line_len);
	CHECK_MEM(back.line, w.line, w.line_len);
	CHECK_MEM(back.message, w.message, w.message_len);

	/* formatwarning()'s text, the file named as the caller says */
	proto_format_warning(&text, &back, "b/c/w.py", 8, 1);
	CHECK_STR(text.buf, "b/c/w.py:2: SyntaxWarning: \"is\" with a literal\n  return x is 1\n");
	strbuf_reset(&text);
	proto_format_warning(&text, &back, "b/c/w.py", 8, 0);
	CHECK_STR(text.buf, "b/c/w.py:2: SyntaxWarning: \"is\" with a literal\n");
	/* a line that strips to nothing is still shown ("if line:" before strip()) */
	back.line_len = 0;
	strbuf_reset(&text);
	proto_format_warning(&text, &back, "w.py", 4, 1);
	CHECK_STR(text.buf, "w.py:2: SyntaxWarning: \"is\" with a literal\n  \n");
	/* no line */
	back.flags = PROTO_WARN_AT_DFILE;
	strbuf_reset(&text);
	proto_format_warning(&text, &back, "w.py", 4, 1);
	CHECK_STR(text.buf, "w.py:2: SyntaxWarning: \"is\" with a literal\n");

	/* malformed bodies */
	CHECK_INT(proto_decode_warning(body.buf, 0, &back), -1);
	CHECK_INT(proto_decode_warning(body.buf, 1 + 4 + 6 + 4, &back), -1); /* parts cut */
	CHECK_INT(proto_decode_warning("\x04\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 17, &back), -1);
	CHECK_INT(proto_decode_warning("\x00\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 17, &back), 0);
	CHECK_INT(proto_decode_warning("\x00\0\0\0\0\0\0\0\0\0\0\0\0\xff\0\0\0", 17, &back), -1);
	strbuf_release(&body);
	strbuf_release(&text);
}

TEST(proto_decode_rejects_malformed)
{
	struct proto_msg m;

	CHECK_INT(proto_decode("", 0, &m), -1);
	CHECK_INT(proto_decode("K\x01\x00\x00", 4, &m), -1);        /* short id */
	CHECK_INT(proto_decode("H\x01\x00\x00\x00\x00", 6, &m), -1); /* long hello */
	CHECK_INT(proto_decode("Z\x01\x00\x00\x00", 5, &m), -1);    /* unknown type */
	CHECK_INT(proto_decode("E\x01\x00\x00\x00\x09" "abc", 9, &m), -1); /* kind past the end */
	CHECK_INT(proto_decode("E\x01\x00\x00\x00", 5, &m), -1);    /* no kind length */
	CHECK_INT(proto_decode("W\x01\x00\x00\x00w", 6, &m), -1);   /* protocol 1's warning */
	/* compile: dfile length past the end */
	CHECK_INT(proto_decode("C\x01\x00\x00\x00\x00\x00\x00\x00\x09\x00\x00\x00ab", 15, &m), -1);
	CHECK_INT(proto_decode("C\x01\x00\x00\x00\x00\x00\x00", 8, &m), -1);
}
