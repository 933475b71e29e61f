/*
 * fuzz-marshal - libFuzzer target for src/marshal.c (`make fuzz-marshal`).
 *
 * Input: one byte choosing the version (its value modulo the table below),
 * then a marshal stream (a pyc's body).  Whatever the bytes, the parser must
 * return without a sanitizer report; when it accepts, writing the tree back
 * must give the stream again, byte for byte (the round trip the e2e tests
 * check on real pycs).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "marshal.h"
#include "strbuf.h"

static const struct marshal_version versions[] = {
	{3, 6, 0},  {3, 7, 0},	{3, 8, 0},  {3, 9, 0}, {3, 10, 0}, {3, 11, 0},
	{3, 12, 0}, {3, 13, 0}, {3, 14, 0}, {3, 9, 1}, {3, 10, 1},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct marshal_version *v;
	struct marshal_err err;
	struct mobj *o;
	struct strbuf sb = STRBUF_INIT;

	if (size < 1)
		return 0;
	v = &versions[data[0] % (sizeof(versions) / sizeof(versions[0]))];
	if (marshal_parse(data + 1, size - 1, v, &o, &err) < 0) {
		if (err.offset > size - 1 || !err.msg[0])
			abort();
		return 0;
	}
	if (marshal_write(o, v, &sb) < 0 || sb.len != size - 1 || memcmp(sb.buf, data + 1, sb.len))
		abort();
	strbuf_release(&sb);
	mobj_free(o);
	return 0;
}
