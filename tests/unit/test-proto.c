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

	put_payload(&sb, "W\x03\x00\x00\x00w", 6);
	CHECK_INT(proto_decode(sb.buf, sb.len, &m), 0);
	CHECK_INT(m.type, PROTO_WARNING);
	CHECK_INT(m.data_len, 1);
	strbuf_release(&sb);
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
	/* compile: dfile length past the end */
	CHECK_INT(proto_decode("C\x01\x00\x00\x00\x00\x00\x00\x00\x09\x00\x00\x00ab", 15, &m), -1);
	CHECK_INT(proto_decode("C\x01\x00\x00\x00\x00\x00\x00", 8, &m), -1);
}
