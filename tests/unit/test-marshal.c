/*
 * Unit tests of src/format/marshal.c.  Every stream written as hex here was
 * checked with a real interpreter: the valid ones are `marshal.dumps(...)`
 * output (the comment says of what, and which version when it matters),
 * and for the invalid ones `marshal.loads` raises -- except where the
 * comment says prepyc is deliberately stricter.
 */
#include <stdlib.h>

#include "harness.h"
#include "marshal.h"
#include "strbuf.h"
#include "util.h"

static const struct marshal_version V36 = {3, 6, 0};
static const struct marshal_version V38 = {3, 8, 0};
static const struct marshal_version V310 = {3, 10, 0};
static const struct marshal_version V311 = {3, 11, 0};
static const struct marshal_version V313 = {3, 13, 0};
static const struct marshal_version V314 = {3, 14, 0};
static const struct marshal_version PYPY39 = {3, 9, 1};

static size_t unhex(const char *hex, unsigned char **out)
{
	size_t n = strlen(hex) / 2, i;
	unsigned char *b = xmalloc(n + 1);

	for (i = 0; i < n; i++) {
		unsigned v;

		sscanf(hex + 2 * i, "%2x", &v);
		b[i] = (unsigned char)v;
	}
	*out = b;
	return n;
}

/* Parses (or not) as expected; a parsed stream must also write back identically. */
static int parses(const char *hex, const struct marshal_version *v)
{
	unsigned char *b;
	size_t n = unhex(hex, &b);
	struct marshal_err err;
	struct mobj *o;
	struct strbuf sb = STRBUF_INIT;
	int ok = marshal_parse(b, n, v, &o, &err) == 0;

	if (ok) {
		if (marshal_write(o, v, &sb) < 0 || sb.len != n || memcmp(sb.buf, b, n)) {
			printf("  %s: written back differently\n", hex);
			harness_failures++;
		}
		mobj_free(o);
	}
	strbuf_release(&sb);
	free(b);
	return ok;
}

/* Parse a valid stream for inspection; NULL (and a failure) if it does not parse. */
static struct mobj *tree(const char *hex, const struct marshal_version *v)
{
	unsigned char *b;
	size_t n = unhex(hex, &b);
	struct marshal_err err;
	struct mobj *o;

	if (marshal_parse(b, n, v, &o, &err) < 0) {
		printf("  %s: %zu: %s\n", hex, err.offset, err.msg);
		harness_failures++;
		o = NULL;
	}
	free(b);
	return o;
}

/* The error a stream gets (its message into msg); -1 if it parses. */
static long fails_at(const char *hex, const struct marshal_version *v, char *msg, size_t msgsz)
{
	unsigned char *b;
	size_t n = unhex(hex, &b);
	struct marshal_err err;
	long at = -1;

	if (marshal_check(b, n, v, &err) < 0) {
		at = (long)err.offset;
		snprintf(msg, msgsz, "%s", err.msg);
	}
	free(b);
	return at;
}

/* def f(a, *, b): return a+b -- f.__code__ dumped by each version */
static const char code36[] =
	"e3010000000100000002000000020000005300000073080000007c007c011700530029014ea900"
	"2902da0161da016272010000007201000000da083c737472696e673eda0166040000007300000000";
static const char code38[] = "e30100000000000000010000000200000002000000530000007308000000"
			     "7c007c011700530029014ea9002902da0161da016272010000007201000000"
			     "da083c737472696e673eda016604000000f300000000";
static const char code310[] = "e30100000000000000010000000200000002000000530000007308000000"
			      "7c007c011700530029014ea9002902da0161da016272010000007201000000"
			      "da083c737472696e673eda01660400000073020000000800";
static const char code311[] =
	"e30100000000000000010000000200000013000000f30c00000097007c007c017a000000530029014e"
	"a9002902da0161da016273020000002020fa083c737472696e673eda01667a0f636f64652e3c6c6f63"
	"616c733e2e6604000000730a0000008000983198519933904af300000000";
static const char code313[] =
	"e30100000000000000010000000200000013000000f30a000000950058012d000000240029014ea9"
	"002902da0161da016273020000002020da083c737472696e673eda0166da0f636f64652e3c6c6f63"
	"616c733e2e66040000007308000000800098319933904af300000000";
/* the same function from PyPy 3.9 (no FLAG_REF on the code object) */
static const char codepypy[] =
	"6301000000000000000100000002000000020000005300000073080000007c007c011700530029014e"
	"29002902fa0161da016229002900fa083c737472696e673e7a0166040000007300000000";

TEST(marshal_singletons_and_numbers)
{
	struct mobj *o;

	CHECK(parses("4e", &V311));		    /* None */
	CHECK(parses("54", &V311));		    /* True */
	CHECK(parses("46", &V311));		    /* False */
	CHECK(parses("53", &V311));		    /* StopIteration */
	CHECK(parses("2e", &V311));		    /* Ellipsis */
	CHECK(parses("ce", &V311));		    /* None with FLAG_REF: CPython ignores it */
	CHECK(parses("e901000000", &V311));	    /* 1 */
	CHECK(parses("6c00000000", &V311));	    /* 'l' with no digits is 0 */
	CHECK(parses("490100000000000000", &V311)); /* TYPE_INT64, still read */
	CHECK(parses("e70000000000000440", &V311)); /* 2.5 */
	CHECK(parses("f9000000000000e03f000000000000f03f", &V311)); /* 0.5+1j */
	CHECK(parses("6603322e35", &V311));			    /* 2.5, version 1 */
	CHECK(parses("7803312e350132", &V311));			    /* 1.5+2j, version 1 */

	if ((o = tree("e9ffffffff", &V311))) { /* -1 */
		CHECK_INT(o->type, MARSHAL_INT);
		CHECK_INT(o->flag_ref, 1);
		CHECK_INT(o->ival, -1);
		CHECK_INT(o->ref, 0);
		mobj_free(o);
	}
	if ((o = tree("ec0500000000002046b5783a5e5600", &V311))) { /* 10**20 */
		CHECK_INT(o->type, MARSHAL_LONG);
		CHECK_INT(o->ival, 5);
		CHECK_INT(o->len, 10);
		mobj_free(o);
	}
	if ((o = tree("ecfbffffff00002046b5783a5e5600", &V311))) { /* -(10**20) */
		CHECK_INT(o->ival, -5);
		mobj_free(o);
	}
	if ((o = tree("7803312e350132", &V311))) {
		CHECK_INT(o->type, MARSHAL_COMPLEX);
		CHECK_INT(o->ival, 3);
		CHECK_STR((const char *)o->data, "1.52");
		mobj_free(o);
	}
}

TEST(marshal_float_text)
{
	CHECK(parses("6603696e66", &V311));	      /* inf */
	CHECK(parses("6608496e66696e697479", &V311)); /* Infinity */
	CHECK(parses("66042d4e614e", &V311));	      /* -NaN */
	CHECK(parses("6602312e", &V311));	      /* 1. */
	CHECK(parses("66022e35", &V311));	      /* .5 */
	CHECK(parses("66052b31652b35", &V311));	      /* +1e+5 */
	CHECK(parses("660431007a7a", &V311));	      /* "1\0zz": CPython stops at the NUL */
	CHECK(!parses("66023165", &V311));	      /* 1e */
	CHECK(!parses("6600", &V311));		      /* empty */
	CHECK(!parses("66012e", &V311));	      /* . */
	CHECK(!parses("66022031", &V311));	      /* leading space */
	CHECK(!parses("660330783f", &V311));	      /* 0x? */
	CHECK(!parses("7803312e3501", &V311));	      /* complex cut short */
}

TEST(marshal_strings)
{
	struct mobj *o;

	CHECK(parses("f3020000007879", &V311));	      /* b'xy' */
	CHECK(parses("f505000000c3a974c3a9", &V311)); /* 'été' */
	CHECK(parses("f503000000eda080", &V311));     /* '\ud800' (surrogatepass) */
	CHECK(parses("7504000000f09f9880", &V311));   /* a 4-byte character */
	CHECK(parses("6101000000ff", &V311));	      /* 'a' is read as Latin-1 */
	CHECK(parses("7a01ff", &V311));
	CHECK(parses("7a00", &V311));
	CHECK(!parses("7501000000ff", &V311));	     /* not UTF-8 */
	CHECK(!parses("7502000000c080", &V311));     /* overlong */
	CHECK(!parses("7504000000f4908080", &V311)); /* above U+10FFFF */
	CHECK(!parses("7503000000e282", &V311));     /* declared 3, 2 there */
	/* PyPy: ascii types must be ASCII, 'u' may hold anything */
	CHECK(!parses("7a01ff", &PYPY39));
	CHECK(parses("7501000000ff", &PYPY39));

	if ((o = tree("fa0b68656c6c6f20776f726c64", &V311))) { /* 'hello world' */
		CHECK_INT(o->type, MARSHAL_SHORT_ASCII);       /* not interned */
		CHECK_INT(o->len, 11);
		CHECK_STR((const char *)o->data, "hello world");
		mobj_free(o);
	}
}

TEST(marshal_containers)
{
	struct mobj *o;

	CHECK(parses("280200000069010000006902000000", &V311)); /* (1, 2), version 2 */
	CHECK(parses("a902e901000000e902000000", &V311));	/* (1, 2) */
	CHECK(parses("db02000000e901000000da0161", &V311));	/* [1, 'a'] */
	CHECK(parses("fbe901000000e90200000030", &V311));	/* {1: 2} */
	CHECK(parses("bc01000000e903000000", &V311));		/* {3} */
	CHECK(parses("be01000000e903000000", &V311));		/* frozenset({3}) */
	CHECK(parses("be00000000", &V311));			/* frozenset() */
	CHECK(parses("3c010000003e00000000", &V311));		/* {frozenset()} */
	CHECK(parses("7bb0", &V311));				/* {} ended by a flagged null */
	/* ((1,), [2.5], {None: b''}) */
	CHECK(parses("a903a901e9010000005b01000000e700000000000004407b4ef30000000030", &V311));

	if ((o = tree("7b690100000030", &V311))) { /* a key then a null value: {} */
		CHECK_INT(o->nitems, 2);
		CHECK_INT(o->items[1]->type, MARSHAL_NULL);
		mobj_free(o);
	}
	CHECK(parses("7b690100000030", &V311));
	CHECK(!parses("7b5b000000004e30", &V311));     /* {[]: None} */
	CHECK(!parses("7b29015b000000004e30", &V311)); /* {([],): None} */
	CHECK(!parses("3e010000005b00000000", &V311)); /* frozenset({[]}) */
	CHECK(!parses("290130", &V311));	       /* null in a tuple */
	CHECK(!parses("5b0100000030", &V311));	       /* null in a list */
	CHECK(!parses("7b4e", &V311));		       /* dict never ended */
}

TEST(marshal_refs)
{
	struct mobj *o;

	/* (s, s) with s interned: the tuple is index 0, s index 1 */
	if ((o = tree("a902da047370616d7201000000", &V311))) {
		CHECK_INT(o->nitems, 2);
		CHECK_INT(o->items[0]->ref, 1);
		CHECK_INT(o->items[1]->type, MARSHAL_REF);
		CHECK_INT(o->items[1]->ref, 1);
		CHECK(o->items[1]->target == o->items[0]);
		mobj_free(o);
	}
	CHECK(parses("a902da047370616d7201000000", &V311));
	/* l = []; l.append(l): CPython reads cycles through lists and tuples */
	CHECK(parses("db010000007200000000", &V311));
	CHECK(parses("a9017200000000", &V311));
	/* ... but not through frozensets and code objects, registered once complete */
	CHECK(!parses("be010000007200000000", &V311));
	CHECK(!parses("e3"
		      "0000000000000000000000000000000000000000"
		      "7200000000",
		      &V311));
	CHECK(!parses("bc010000007200000000", &V311)); /* a set in itself: unhashable */
	CHECK(!parses("7200000000", &V311));	       /* nothing flagged yet */
	CHECK(!parses("a9027a007201000000", &V311));   /* index 1 never given */
	CHECK(!parses("72ffffffff", &V311));
	CHECK(!parses("290272000000004e", &V311)); /* the tuple was not flagged */
	/* singletons take no index, whatever their flag */
	CHECK(!parses("2902ce7200000000", &V311));
	CHECK(parses("2902e9010000007200000000", &V311));
	CHECK(!parses("2902e9010000007201000000", &V311));
}

TEST(marshal_code_objects_per_version)
{
	struct mobj *o;
	size_t n;

	CHECK(parses(code36, &V36));
	CHECK(parses(code38, &V38));
	CHECK(parses(code38, &V310)); /* same layout */
	CHECK(parses(code310, &V310));
	CHECK(parses(code311, &V311));
	CHECK(parses(code313, &V313));
	CHECK(parses(code313, &V314));
	CHECK(parses(codepypy, &PYPY39));
	/* another version's layout does not fit */
	CHECK(!parses(code36, &V311));
	CHECK(!parses(code311, &V36));
	CHECK(!parses(code311, &V310));

	CHECK(marshal_code_layout(&V36, &n) && n == 15);
	CHECK(marshal_code_layout(&V310, &n) && n == 16);
	CHECK(marshal_code_layout(&V314, &n) && n == 16);
	CHECK(!marshal_code_layout(&(struct marshal_version){3, 5, 0}, &n));
	CHECK(!marshal_code_layout(&(struct marshal_version){2, 7, 0}, &n));

	if ((o = tree(code311, &V311))) {
		const struct marshal_code_field *l = marshal_code_layout(&V311, &n);

		CHECK_INT(o->type, MARSHAL_CODE);
		CHECK_INT(o->len, 4 * 6); /* six int fields */
		CHECK_INT(o->nitems, 10); /* ten object fields */
		CHECK_STR(l[12].name, "qualname");
		CHECK_STR((const char *)o->items[7]->data, "code.<locals>.f");
		mobj_free(o);
	}
}

/* code311 with the bytes at hex offset `at` (in digits) replaced by `with` */
static char *patched(const char *hex, size_t at, const char *with)
{
	char *s = xstrdup(hex);

	memcpy(s + at, with, strlen(with));
	return s;
}

TEST(marshal_code_constructor_rules)
{
	char msg[160], *s;

	/* argcount -1, 4 (varnames too small), posonlyargcount 2 (> argcount) */
	s = patched(code311, 2, "ffffffff");
	CHECK(fails_at(s, &V311, msg, sizeof(msg)) == 0);
	free(s);
	s = patched(code311, 2, "04000000");
	CHECK(fails_at(s, &V311, msg, sizeof(msg)) == 0);
	CHECK(strstr(msg, "varnames") != NULL);
	free(s);
	s = patched(code311, 10, "02000000");
	CHECK(fails_at(s, &V311, msg, sizeof(msg)) == 0);
	free(s);
	/* 3.6: stacksize -1 is fine, nlocals -1 is not */
	s = patched(code36, 26, "ffffffff");
	CHECK(parses(s, &V36));
	free(s);
	s = patched(code36, 18, "ffffffff");
	CHECK(!parses(s, &V36));
	free(s);
	/* PyPy has its own rules */
	s = patched(codepypy, 2, "04000000");
	CHECK(parses(s, &PYPY39));
	free(s);
	/* co_code as a str ('a' instead of 's'): not bytes */
	s = patched(code311, 42, "e1");
	CHECK(fails_at(s, &V311, msg, sizeof(msg)) == 21);
	CHECK(strstr(msg, "code") != NULL);
	free(s);
	/* a null for a field */
	s = patched(code311, 42, "30");
	CHECK(!parses(s, &V311));
	free(s);
}

TEST(marshal_slices_are_314)
{
	/* (slice(1, 2, None),) */
	CHECK(parses("29013a690100000069020000004e", &V314));
	CHECK(!parses("29013a690100000069020000004e", &V313));
	CHECK(!parses("ba72000000004e4e", &V314)); /* a slice holding itself */
	CHECK(!parses("29013a6901000000304e", &V314));
}

TEST(marshal_rejects_every_truncation)
{
	const char *streams[] = {code36, code311, code313,
				 "a903a901e9010000005b01000000e700000000000004407b4ef30000000030"};
	size_t i, cut;
	int accepted = 0;

	for (i = 0; i < ARRAY_SIZE(streams); i++) {
		unsigned char *b;
		size_t n = unhex(streams[i], &b);
		const struct marshal_version *v = i == 0 ? &V36 : &V313;

		for (cut = 0; cut < n; cut++) {
			/* a fresh copy of exactly `cut` bytes, so ASan sees any overread */
			unsigned char *c = xmalloc(cut ? cut : 1);
			struct marshal_err err;

			memcpy(c, b, cut);
			if (marshal_check(c, cut, v, &err) == 0)
				accepted++;
			else if (err.offset > cut || !err.msg[0])
				accepted += 1000;
			free(c);
		}
		free(b);
	}
	CHECK_INT(accepted, 0);
}

TEST(marshal_rejects_bad_input)
{
	char msg[160];
	struct marshal_err err;

	CHECK(fails_at("3f", &V311, msg, sizeof(msg)) == 0); /* '?' */
	CHECK(strstr(msg, "unknown type code") != NULL);
	CHECK(fails_at("29013f", &V311, msg, sizeof(msg)) == 2);
	CHECK(!parses("ff", &V311));
	CHECK(!parses("", &V311));
	CHECK(!parses("30", &V311));			       /* null at top level */
	CHECK(fails_at("4e4e", &V311, msg, sizeof(msg)) == 1); /* trailing bytes */
	/* sizes out of range or beyond the input: rejected before allocating */
	CHECK(!parses("73ffffff7f", &V311));
	CHECK(!parses("73ffffffff", &V311));
	CHECK(!parses("75ffffff7f41", &V311));
	CHECK(!parses("61ffffff7f41", &V311));
	CHECK(!parses("28ffffff7f", &V311));
	CHECK(!parses("5bffffff7f4e", &V311));
	CHECK(!parses("3cffffff7f4e", &V311));
	CHECK(!parses("3effffff7f4e", &V311));
	CHECK(!parses("6cffffff7f0100", &V311));
	CHECK(!parses("6c00000080", &V311));	 /* long size INT32_MIN */
	CHECK(!parses("6c010000000080", &V311)); /* digit 0x8000 */
	CHECK(!parses("6c010000000000", &V311)); /* top digit zero */
	CHECK(!parses("e9010000", &V311));
	/* and the version must be one we know */
	CHECK(marshal_check((const unsigned char *)"N", 1, &(struct marshal_version){3, 5, 0},
			    &err) < 0);
}

static char *repeat(const char *unit, size_t times, const char *last)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i;

	for (i = 0; i < times; i++)
		strbuf_addstr(&sb, unit);
	strbuf_addstr(&sb, last);
	return strbuf_detach(&sb, NULL);
}

TEST(marshal_nesting_limit)
{
	char *s;
	char msg[160];

	s = repeat("2901", 1999, "4e"); /* 2000 objects deep: CPython's limit */
	CHECK(parses(s, &V311));
	free(s);
	s = repeat("2901", 2000, "4e");
	CHECK(fails_at(s, &V311, msg, sizeof(msg)) == 4000);
	free(s);
	s = repeat("5b01000000", 100000, "4e");
	CHECK(!parses(s, &V311));
	free(s);
	s = repeat("7b", 100000, "");
	CHECK(!parses(s, &V311));
	free(s);
}

TEST(marshal_write_rejects_what_cannot_be_written)
{
	struct mobj *o = tree("7a00", &V311);
	struct strbuf sb = STRBUF_INIT;

	if (!o)
		return;
	CHECK(marshal_write(o, &V311, &sb) == 0);
	CHECK_INT(sb.len, 2);
	/* a short string longer than its one-byte length can say */
	o->len = 300;
	strbuf_reset(&sb);
	CHECK(marshal_write(o, &V311, &sb) < 0);
	o->len = 0;
	mobj_free(o);
	o = tree(code311, &V311);
	strbuf_reset(&sb);
	CHECK(o && marshal_write(o, &V310, &sb) < 0); /* 3.11 fields, 3.10 layout */
	mobj_free(o);
	strbuf_release(&sb);
}
