/*
 * fuzz-marshal - libFuzzer target for src/format/marshal.c and src/format/canon.c
 * (`make fuzz-marshal`).
 *
 * Input: one byte choosing the version (its value modulo the table below),
 * then a marshal stream (a pyc's body).  Whatever the bytes, the parser must
 * return without a sanitizer report; when it accepts, writing the tree back
 * must give the stream again, byte for byte (the round trip the e2e tests
 * check on real pycs).  Its canonical form (marshal_write_canonical())
 * must parse, be its own canonical form, hold the same value (compared
 * below as marshal.loads would build it, through references, whatever the
 * type codes) and be no longer than the input unless the input has what
 * the canonical form may lengthen ('I', non-ASCII 'a' 'A' 'z' 'Z').
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "marshal.h"
#include "strbuf.h"
#include "util.h"

static const struct marshal_version versions[] = {
	{3, 6, 0},  {3, 7, 0},	{3, 8, 0},  {3, 9, 0}, {3, 10, 0}, {3, 11, 0},
	{3, 12, 0}, {3, 13, 0}, {3, 14, 0}, {3, 9, 1}, {3, 10, 1}, {3, 15, 0},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct mobj *deref(const struct mobj *o)
{
	return o->type == MARSHAL_REF ? o->target : o;
}

static int is_text(int t)
{
	return t && strchr("tuaAzZ", t) != NULL;
}

/* The next code point of a string node (Latin-1 or UTF-8 as its type says). */
static unsigned next_cp(const struct mobj *o, size_t *i)
{
	const unsigned char *s = o->data;
	unsigned c = s[(*i)++], n, k;

	if (o->type != 't' && o->type != 'u')
		return c;
	if (c < 0x80)
		return c;
	n = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
	c &= 0x3f >> n;
	for (k = 0; k < n && *i < o->len; k++)
		c = c << 6 | (s[(*i)++] & 0x3f);
	return c;
}

static int text_eq(const struct mobj *a, const struct mobj *b)
{
	size_t i = 0, j = 0;

	while (i < a->len && j < b->len)
		if (next_cp(a, &i) != next_cp(b, &j))
			return 0;
	return i == a->len && j == b->len;
}

/* An int node as sign and 15-bit digits (least significant first). */
static int int_digits(const struct mobj *o, uint16_t *d, size_t max, size_t *n)
{
	uint64_t mag;
	int64_t v;
	size_t i;

	if (o->type == MARSHAL_LONG) {
		*n = o->len / 2;
		if (*n > max)
			return -2;
		for (i = 0; i < *n; i++)
			d[i] = (uint16_t)(o->data[2 * i] | o->data[2 * i + 1] << 8);
		return o->ival < 0 ? -1 : 1;
	}
	if (o->type == MARSHAL_INT)
		v = o->ival;
	else
		memcpy(&v, o->data, 8); /* 'I': little-endian, as the fuzzer's hosts are */
	mag = v < 0 ? -(uint64_t)v : (uint64_t)v;
	for (*n = 0; mag; mag >>= 15)
		d[(*n)++] = (uint16_t)(mag & 0x7fff);
	return v < 0 ? -1 : 1;
}

static int int_eq(const struct mobj *a, const struct mobj *b)
{
	uint16_t da[64], db[64];
	size_t na, nb;
	int sa = int_digits(a, da, 64, &na), sb = int_digits(b, db, 64, &nb);

	if (sa == -2 || sb == -2) /* long ones are never rewritten: compare as written */
		return a->type == b->type && a->ival == b->ival && a->len == b->len &&
		       !memcmp(a->data, b->data, a->len);
	return na == nb && (!na || (sa == sb && !memcmp(da, db, na * sizeof(*da))));
}

/*
 * Do two trees hold the same value?  `budget` and `depth` bound the walk:
 * a cycle through references (a list in itself) would never end; running
 * out counts as equal.
 */
static int value_eq(const struct mobj *a, const struct mobj *b, long *budget, int depth)
{
	int ta, tb;
	size_t i;

	if (--*budget < 0 || depth > 2 * MARSHAL_MAX_DEPTH)
		return 1;
	a = deref(a);
	b = deref(b);
	ta = a->type == ')' ? '(' : a->type;
	tb = b->type == ')' ? '(' : b->type;
	if (is_text(ta) && is_text(tb))
		return text_eq(a, b);
	if (strchr("ilI", ta) && strchr("ilI", tb))
		return int_eq(a, b);
	if (ta != tb || a->nitems != b->nitems)
		return 0;
	if (a->len != b->len || (a->len && memcmp(a->data, b->data, a->len)) || a->ival != b->ival)
		if (ta != '(' && ta != '[' && ta != '{' && ta != '}' && ta != '<' && ta != '>' &&
		    ta != ':')
			return 0;
	if (ta == '>') {
		/* a frozenset: the canonical form writes its items in value order */
		for (i = 0; i < a->nitems; i++) {
			size_t j;

			for (j = 0; j < b->nitems; j++)
				if (value_eq(a->items[i], b->items[j], budget, depth + 1))
					break;
			if (j == b->nitems)
				return 0;
		}
		return 1;
	}
	for (i = 0; i < a->nitems; i++)
		if (!value_eq(a->items[i], b->items[i], budget, depth + 1))
			return 0;
	return 1;
}

/* Does the tree hold what the canonical form may write longer? */
static int may_grow(const struct mobj *o)
{
	size_t i;

	if (o->type == MARSHAL_INT64)
		return 1;
	/* a frozendict is written in full at every occurrence, never as an 'r' */
	if (o->type == MARSHAL_REF && o->target && o->target->type == MARSHAL_FROZENDICT)
		return 1;
	if (strchr("aAzZ", o->type) && o->type)
		for (i = 0; i < o->len; i++)
			if (o->data[i] & 0x80)
				return 1;
	for (i = 0; i < o->nitems; i++)
		if (may_grow(o->items[i]))
			return 1;
	return 0;
}

static void check_canonical(const struct mobj *o, const struct marshal_version *v, size_t size)
{
	struct strbuf c1 = STRBUF_INIT, c2 = STRBUF_INIT;
	struct marshal_err err;
	struct mobj *p;
	long budget = 1000000;

	if (marshal_write_canonical(o, v, &c1) < 0)
		abort();
	if (marshal_parse((const unsigned char *)c1.buf, c1.len, v, &p, &err) < 0)
		abort();
	if (marshal_write_canonical(p, v, &c2) < 0 || c2.len != c1.len ||
	    memcmp(c1.buf, c2.buf, c1.len))
		abort();
	if (!value_eq(o, p, &budget, 0))
		abort();
	if (c1.len > size && !may_grow(o))
		abort();
	mobj_free(p);
	strbuf_release(&c1);
	strbuf_release(&c2);
}

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
	check_canonical(o, v, size - 1);
	strbuf_release(&sb);
	mobj_free(o);
	return 0;
}
