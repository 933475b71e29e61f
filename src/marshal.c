#define _POSIX_C_SOURCE 200809L
#include "marshal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "util.h"
#include "banned.h"

/*
 * The reader follows CPython's r_object() case by case; where CPython
 * builds an object and then validates it (PyDict_SetItem, PySet_Add, the
 * code object constructor), the same rule is applied to the node.  Every
 * length is compared with what is left of the input before anything is
 * allocated for it, and every object takes at least one byte, so a few
 * bytes cannot make us allocate or loop much.
 */

/* Code object flags and local kinds the constructor's checks look at. */
#define CO_VARARGS 0x04
#define CO_VARKEYWORDS 0x08
#define CO_FAST_LOCAL 0x20

static const struct marshal_code_field layout_36[] = {
	{"argcount", 'i'}, {"kwonlyargcount", 'i'}, {"nlocals", 'i'},  {"stacksize", 'i'},
	{"flags", 'i'},	   {"code", 'b'},	    {"consts", 't'},   {"names", 'n'},
	{"varnames", 'n'}, {"freevars", 'n'},	    {"cellvars", 'n'}, {"filename", 's'},
	{"name", 's'},	   {"firstlineno", 'i'},    {"lnotab", 'b'},
};

static const struct marshal_code_field layout_38[] = {
	{"argcount", 'i'},	 {"posonlyargcount", 'i'},
	{"kwonlyargcount", 'i'}, {"nlocals", 'i'},
	{"stacksize", 'i'},	 {"flags", 'i'},
	{"code", 'b'},		 {"consts", 't'},
	{"names", 'n'},		 {"varnames", 'n'},
	{"freevars", 'n'},	 {"cellvars", 'n'},
	{"filename", 's'},	 {"name", 's'},
	{"firstlineno", 'i'},	 {"lnotab", 'b'},
};

/* 3.10 writes co_linetable where 3.8 and 3.9 wrote co_lnotab. */
static const struct marshal_code_field layout_310[] = {
	{"argcount", 'i'},	 {"posonlyargcount", 'i'},
	{"kwonlyargcount", 'i'}, {"nlocals", 'i'},
	{"stacksize", 'i'},	 {"flags", 'i'},
	{"code", 'b'},		 {"consts", 't'},
	{"names", 'n'},		 {"varnames", 'n'},
	{"freevars", 'n'},	 {"cellvars", 'n'},
	{"filename", 's'},	 {"name", 's'},
	{"firstlineno", 'i'},	 {"linetable", 'b'},
};

static const struct marshal_code_field layout_311[] = {
	{"argcount", 'i'},	  {"posonlyargcount", 'i'}, {"kwonlyargcount", 'i'},
	{"stacksize", 'i'},	  {"flags", 'i'},	    {"code", 'b'},
	{"consts", 't'},	  {"names", 'n'},	    {"localsplusnames", 'n'},
	{"localspluskinds", 'b'}, {"filename", 's'},	    {"name", 's'},
	{"qualname", 's'},	  {"firstlineno", 'i'},	    {"linetable", 'b'},
	{"exceptiontable", 'b'},
};

const struct marshal_code_field *marshal_code_layout(const struct marshal_version *v,
						     size_t *nfields)
{
	if (v->major != 3 || v->minor < 6)
		return NULL;
	if (v->minor < 8) {
		*nfields = ARRAY_SIZE(layout_36);
		return layout_36;
	}
	if (v->minor < 10) {
		*nfields = ARRAY_SIZE(layout_38);
		return layout_38;
	}
	if (v->minor < 11) {
		*nfields = ARRAY_SIZE(layout_310);
		return layout_310;
	}
	*nfields = ARRAY_SIZE(layout_311);
	return layout_311;
}

/* Where a code object's named fields are: an index into its ints or items, or -1. */
struct code_index {
	int argcount, posonlyargcount, kwonlyargcount, nlocals, stacksize, flags;
	int varnames, localsplusnames, localspluskinds, code, consts;
};

/*
 * The memory of a parsed tree: the root node, a copy of the input that the
 * payloads point into, then the other nodes, their items arrays and the few
 * payloads that are not one stretch of the input, bump-allocated in blocks
 * freed together by mobj_free(root).  One malloc per tree (two or three
 * for one the first block underestimated) instead of two per node.
 *
 * The copy keeps the old contract (a payload is the tree's own and followed
 * by a NUL) without copying each payload: the NUL is written into the copy
 * over the byte after the payload, which is the next object's type byte or
 * a length, never a byte another node points at -- a payload always follows
 * its own type byte or length, and the code fields and 'x' texts that are
 * split by other bytes in the stream are copied out.
 */
struct tree {
	struct mobj root;	   /* first: mobj_free() casts the root back */
	struct tree_block *more;   /* blocks after the first, newest first */
	unsigned char *next, *end; /* free space in the newest block */
	size_t nnodes, len;	   /* for marshal_write_canonical() to size its tables */
};

struct tree_block {
	struct tree_block *next;
};

/* Every allocation is rounded to this, so nodes and items arrays stay aligned. */
#define TREE_ALIGN ((size_t)_Alignof(struct mobj))
#define TREE_ROUND(n) (st_add((n), TREE_ALIGN - 1) & ~(TREE_ALIGN - 1))
/* Blocks after the first are sized from how much the input so far took, at most this. */
#define TREE_BLOCK_MAX ((size_t)1 << 20)

struct parser {
	const unsigned char *start, *p, *end;
	struct tree *tree;
	unsigned char *copy;	/* the input's copy in the tree; copy[len] is NUL */
	size_t used;		/* bytes allocated in the tree so far */
	struct mobj **stack;	/* a dict's items while it is read */
	size_t nstack, stack_alloc;
	const struct marshal_version *v;
	const struct marshal_code_field *layout;
	size_t nfields, nints;
	struct code_index ci;
	int slices;	     /* ':' is a type (3.14+) */
	int code_rules;	     /* apply CPython's code constructor checks */
	struct mobj **slots; /* FLAG_REF objects by index; NULL while reserved */
	size_t nslots, slots_alloc;
	int depth;
	struct marshal_err *err;
};

PRINTF_LIKE(3, 4)
static int fail(struct parser *ps, size_t offset, const char *fmt, ...)
{
	va_list ap;

	if (ps->err) {
		ps->err->offset = offset;
		va_start(ap, fmt);
		vsnprintf(ps->err->msg, sizeof(ps->err->msg), fmt, ap);
		va_end(ap);
	}
	return -1;
}

static size_t pos(const struct parser *ps)
{
	return (size_t)(ps->p - ps->start);
}

static size_t left(const struct parser *ps)
{
	return (size_t)(ps->end - ps->p);
}

static int need(struct parser *ps, size_t n, const char *what)
{
	if (left(ps) < n)
		return fail(ps, pos(ps), "truncated %s: %zu bytes needed, %zu left", what, n,
			    left(ps));
	return 0;
}

static int read_u8(struct parser *ps, unsigned *out, const char *what)
{
	if (need(ps, 1, what) < 0)
		return -1;
	*out = *ps->p++;
	return 0;
}

static int read_i32(struct parser *ps, int32_t *out, const char *what)
{
	uint32_t u;

	if (need(ps, 4, what) < 0)
		return -1;
	u = get_le32(ps->p);
	ps->p += 4;
	/* two's complement without relying on implementation-defined conversion */
	*out = u <= INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1;
	return 0;
}

/* A u32 size that must be 0..INT32_MAX (CPython's SIZE32_MAX check). */
static int read_size(struct parser *ps, size_t *out, const char *what)
{
	size_t at = pos(ps);
	int32_t n;

	if (read_i32(ps, &n, what) < 0)
		return -1;
	if (n < 0)
		return fail(ps, at, "%s out of range: %ld", what, (long)n);
	*out = (size_t)n;
	return 0;
}

/*
 * A tree whose first block holds the input's copy and room for about what
 * the typical pyc needs (nodes take three or four times their bytes).
 */
static void tree_new(struct parser *ps, const unsigned char *data, size_t len)
{
	size_t head = TREE_ROUND(sizeof(struct tree)), copy = TREE_ROUND(st_add(len, 1));
	size_t room = TREE_ROUND(st_add(st_mult(len, 4), 512));
	unsigned char *b = xmalloc(st_add(st_add(head, copy), room));
	struct tree *t = (struct tree *)b;

	t->more = NULL;
	t->nnodes = 0;
	t->len = len;
	ps->tree = t;
	ps->copy = b + head;
	if (len)
		memcpy(ps->copy, data, len);
	ps->copy[len] = '\0';
	t->next = b + head + copy;
	t->end = t->next + room;
	ps->used = 0;
}

static void tree_free(struct tree *t)
{
	while (t->more) {
		struct tree_block *b = t->more;

		t->more = b->next;
		free(b);
	}
	free(t);
}

void mobj_free(struct mobj *o)
{
	if (o)
		tree_free((struct tree *)o);
}

/* Another block: enough for `n`, and for the rest of the input at the rate so far. */
static void tree_grow(struct parser *ps, size_t n)
{
	struct tree *t = ps->tree;
	size_t head = TREE_ROUND(sizeof(struct tree_block)), done = pos(ps) + 1;
	size_t size = (ps->used / done + 1) * left(ps);
	struct tree_block *b;

	if (size > TREE_BLOCK_MAX)
		size = TREE_BLOCK_MAX;
	if (size < 4096)
		size = 4096;
	if (size < n)
		size = n;
	b = xmalloc(st_add(head, size));
	b->next = t->more;
	t->more = b;
	t->next = (unsigned char *)b + head;
	t->end = t->next + size;
}

static void *tree_alloc(struct parser *ps, size_t n)
{
	void *p;

	n = TREE_ROUND(n);
	if ((size_t)(ps->tree->end - ps->tree->next) < n)
		tree_grow(ps, n);
	p = ps->tree->next;
	ps->tree->next += n;
	ps->used += n;
	return p;
}

/* Room for n items; n is at most the bytes left, so this is bounded by the input. */
static struct mobj **new_items(struct parser *ps, size_t n)
{
	return n ? tree_alloc(ps, st_mult(n, sizeof(struct mobj *))) : NULL;
}

/* A node without payload; the root is the tree's own. */
static struct mobj *new_node(struct parser *ps, int code, size_t offset)
{
	struct mobj *o = offset ? tree_alloc(ps, sizeof(*o)) : &ps->tree->root;

	ps->tree->nnodes++;
	memset(o, 0, sizeof(*o));
	o->type = (unsigned char)(code & ~MARSHAL_FLAG_REF);
	o->flag_ref = (code & MARSHAL_FLAG_REF) != 0;
	o->offset = offset;
	o->data = ps->copy + (ps->end - ps->start); /* the copy's final NUL */
	return o;
}

/* A node whose payload is the next `len` bytes of the input, which it consumes. */
static struct mobj *new_payload_node(struct parser *ps, int code, size_t offset, size_t len)
{
	struct mobj *o = new_node(ps, code, offset);

	o->data = ps->copy + pos(ps);
	o->len = len;
	ps->p += len;
	o->data[len] = '\0';
	return o;
}

/* A node with `len` payload bytes (plus a NUL) of its own, for the caller to fill. */
static struct mobj *new_owned_node(struct parser *ps, int code, size_t offset, size_t len)
{
	struct mobj *o = new_node(ps, code, offset);

	o->data = tree_alloc(ps, st_add(len, 1));
	o->len = len;
	o->data[len] = '\0';
	return o;
}

/*
 * Give a flagged object the next index: filled at once, or (frozensets,
 * code objects, slices) reserved until fill_slot(), as CPython does.
 */
static int take_slot(struct parser *ps, struct mobj *o, int filled)
{
	if (!o->flag_ref)
		return 0;
	if (ps->nslots >= 0x7ffffffe)
		return fail(ps, o->offset, "too many flagged objects");
	ALLOC_GROW(ps->slots, ps->nslots + 1, ps->slots_alloc);
	o->ref = (uint32_t)ps->nslots;
	ps->slots[ps->nslots++] = filled ? o : NULL;
	return 0;
}

static void fill_slot(struct parser *ps, struct mobj *o)
{
	if (o->flag_ref)
		ps->slots[o->ref] = o;
}

static const struct mobj *deref(const struct mobj *o)
{
	return o->type == MARSHAL_REF ? o->target : o;
}

static int is_str(const struct mobj *o)
{
	switch (deref(o)->type) {
	case MARSHAL_INTERNED:
	case MARSHAL_UNICODE:
	case MARSHAL_ASCII:
	case MARSHAL_ASCII_INTERNED:
	case MARSHAL_SHORT_ASCII:
	case MARSHAL_SHORT_ASCII_INTERNED:
		return 1;
	default:
		return 0;
	}
}

static int is_tuple(const struct mobj *o)
{
	int t = deref(o)->type;

	return t == MARSHAL_TUPLE || t == MARSHAL_SMALL_TUPLE;
}

static int is_bytes(const struct mobj *o)
{
	return deref(o)->type == MARSHAL_STRING;
}

/*
 * The last n % 8 bytes of s[0..n) in a word, with some bytes before them
 * (or again): overlapping loads instead of a byte loop whose length the
 * branch predictor cannot guess (most names are short).  Good for an OR
 * of the bytes, and for a hash of n bytes that has hashed n.
 */
static uint64_t tail_word(const unsigned char *s, size_t n)
{
	uint32_t lo, hi;
	uint64_t w;

	if (n >= 8) {
		memcpy(&w, s + n - 8, 8);
		return w;
	}
	if (n >= 4) {
		memcpy(&lo, s, 4);
		memcpy(&hi, s + n - 4, 4);
		return lo | (uint64_t)hi << 32;
	}
	return n ? s[0] | (uint64_t)s[n / 2] << 8 | (uint64_t)s[n - 1] << 16 : 0;
}

/* Eight bytes at a time: docstrings make this a hot loop. */
static int all_ascii(const unsigned char *s, size_t n)
{
	uint64_t w, any = 0;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&w, s + i, 8);
		any |= w;
	}
	return !((any | tail_word(s, n)) & 0x8080808080808080ULL);
}

/* What PyUnicode_DecodeUTF8(s, n, "surrogatepass") accepts. */
static int utf8_surrogatepass_ok(const unsigned char *s, size_t n, size_t *bad)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i], lo = 0x80, hi = 0xbf;
		size_t k, more;
		uint64_t w;

		if (c < 0x80) {
			/* the rest of an ASCII run a word at a time */
			for (i++; i + 8 <= n; i += 8) {
				memcpy(&w, s + i, 8);
				if (w & 0x8080808080808080ULL)
					break;
			}
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			more = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			more = 2;
			if (c == 0xe0)
				lo = 0xa0; /* overlong */
		} else if (c >= 0xf0 && c <= 0xf4) {
			more = 3;
			if (c == 0xf0)
				lo = 0x90; /* overlong */
			else if (c == 0xf4)
				hi = 0x8f; /* above U+10FFFF */
		} else {
			*bad = i;
			return 0;
		}
		if (n - i <= more) {
			*bad = i;
			return 0;
		}
		for (k = 1; k <= more; k++) {
			unsigned b = s[i + k];

			if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xbf)) {
				*bad = i;
				return 0;
			}
		}
		i += more + 1;
	}
	return 1;
}

static int ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int match_word(const unsigned char *s, size_t n, const char *w)
{
	size_t i;

	if (n != strlen(w))
		return 0;
	for (i = 0; i < n; i++)
		if (ascii_lower(s[i]) != w[i])
			return 0;
	return 1;
}

/*
 * What PyOS_string_to_double(text, NULL, NULL) accepts: the text up to its
 * first NUL (CPython copies it into a C string) must be a whole decimal
 * float or inf/infinity/nan, optionally signed, without spaces.
 */
static int float_text_ok(const unsigned char *s, size_t n)
{
	const unsigned char *nul = memchr(s, '\0', n);
	size_t i = 0, digits = 0;

	if (nul)
		n = (size_t)(nul - s);
	if (i < n && (s[i] == '+' || s[i] == '-'))
		i++;
	if (match_word(s + i, n - i, "inf") || match_word(s + i, n - i, "infinity") ||
	    match_word(s + i, n - i, "nan"))
		return 1;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		digits++;
	if (i < n && s[i] == '.')
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
	if (!digits)
		return 0;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		size_t e = 0;

		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			e++;
		if (!e)
			return 0;
	}
	return i == n;
}

static struct mobj *r_object(struct parser *ps);

/*
 * Read a child that must not be '0'; `what` and `field` name the parent for
 * the message (two strings, so that nothing is formatted unless it fails).
 */
static struct mobj *r_child(struct parser *ps, const char *what, const char *field)
{
	struct mobj *c = r_object(ps);

	if (c && c->type == MARSHAL_NULL) {
		fail(ps, c->offset, "null object in %s%s", what, field);
		return NULL;
	}
	return c;
}

/* A float's text: its length in *n, its bytes left at ps->p for the caller. */
static int r_float_text(struct parser *ps, size_t *n)
{
	size_t at = pos(ps);
	unsigned len;

	if (read_u8(ps, &len, "float text length") < 0 || need(ps, len, "float text") < 0)
		return -1;
	if (!float_text_ok(ps->p, len))
		return fail(ps, at, "float text is not a number");
	*n = len;
	return 0;
}

static struct mobj *r_float(struct parser *ps, int code, size_t off)
{
	size_t n1, n2;
	const unsigned char *real;
	struct mobj *o;

	if (r_float_text(ps, &n1) < 0)
		return NULL;
	if ((code & ~MARSHAL_FLAG_REF) == MARSHAL_FLOAT)
		return new_payload_node(ps, code, off, n1);
	/* 'x': the two texts are apart in the stream, one payload in the node */
	real = ps->p;
	ps->p += n1;
	if (r_float_text(ps, &n2) < 0)
		return NULL;
	o = new_owned_node(ps, code, off, n1 + n2);
	memcpy(o->data, real, n1);
	memcpy(o->data + n1, ps->p, n2);
	ps->p += n2;
	o->ival = (int64_t)n1;
	return o;
}

static struct mobj *r_scalar(struct parser *ps, int code, size_t off, size_t len)
{
	if (need(ps, len, "number") < 0)
		return NULL;
	return new_payload_node(ps, code, off, len);
}

static struct mobj *r_long(struct parser *ps, int code, size_t off)
{
	struct mobj *o;
	size_t at = pos(ps), k, i;
	int32_t n;

	if (read_i32(ps, &n, "long size") < 0)
		return NULL;
	if (n == INT32_MIN) {
		fail(ps, at, "long size out of range");
		return NULL;
	}
	k = (size_t)(n < 0 ? -(int64_t)n : n);
	if (k > left(ps) / 2) {
		fail(ps, pos(ps), "truncated long: %zu digits need %zu bytes, %zu left", k, 2 * k,
		     left(ps));
		return NULL;
	}
	for (i = 0; i < k; i++) {
		unsigned d = ps->p[2 * i] | (unsigned)ps->p[2 * i + 1] << 8;

		if (d > 0x7fff) {
			fail(ps, pos(ps) + 2 * i, "long digit out of range");
			return NULL;
		}
		if (d == 0 && i == k - 1) {
			fail(ps, pos(ps) + 2 * i, "unnormalized long (top digit is zero)");
			return NULL;
		}
	}
	o = new_payload_node(ps, code, off, 2 * k);
	o->ival = n;
	return o;
}

static struct mobj *r_string(struct parser *ps, int code, size_t off)
{
	int type = code & ~MARSHAL_FLAG_REF;
	const char *what = type == MARSHAL_STRING ? "bytes object size" : "string size";
	size_t n, bad;

	if (type == MARSHAL_SHORT_ASCII || type == MARSHAL_SHORT_ASCII_INTERNED) {
		unsigned u;

		if (read_u8(ps, &u, what) < 0)
			return NULL;
		n = u;
	} else if (read_size(ps, &n, what) < 0) {
		return NULL;
	}
	if (need(ps, n, type == MARSHAL_STRING ? "bytes" : "string") < 0)
		return NULL;
	/* PyPy takes any bytes here (it decodes them with a lossy handler) */
	if ((type == MARSHAL_UNICODE || type == MARSHAL_INTERNED) && !ps->v->pypy &&
	    !utf8_surrogatepass_ok(ps->p, n, &bad)) {
		fail(ps, pos(ps) + bad, "string is not valid UTF-8");
		return NULL;
	}
	if (ps->v->pypy && type != MARSHAL_STRING && type != MARSHAL_UNICODE &&
	    type != MARSHAL_INTERNED) {
		/* PyPy decodes these as ASCII, CPython as Latin-1 */
		if (!all_ascii(ps->p, n)) {
			for (bad = 0; !(ps->p[bad] & 0x80); bad++)
				;
			fail(ps, pos(ps) + bad, "ascii string is not ascii");
			return NULL;
		}
	}
	return new_payload_node(ps, code, off, n);
}

/* Tuples, lists, sets and frozensets: a count, then that many objects. */
static struct mobj *r_sequence(struct parser *ps, int code, size_t off)
{
	int type = code & ~MARSHAL_FLAG_REF;
	int set = type == MARSHAL_SET || type == MARSHAL_FROZENSET;
	const char *what = set ? "set" : type == MARSHAL_LIST ? "list" : "tuple";
	const char *sizename = set ? "set size" : type == MARSHAL_LIST ? "list size" : "tuple size";
	size_t n, i;
	struct mobj *o;

	if (type == MARSHAL_SMALL_TUPLE) {
		unsigned u;

		if (read_u8(ps, &u, sizename) < 0)
			return NULL;
		n = u;
	} else if (read_size(ps, &n, sizename) < 0) {
		return NULL;
	}
	if (n > left(ps)) {
		fail(ps, off, "%s of %zu items cannot fit in the %zu bytes left", what, n,
		     left(ps));
		return NULL;
	}
	o = new_node(ps, code, off);
	o->items = new_items(ps, n);
	/* frozensets are registered once complete; the empty one at once */
	if (take_slot(ps, o, type != MARSHAL_FROZENSET || n == 0) < 0)
		return NULL;
	o->busy = 1;
	o->hashable = 1;
	for (i = 0; i < n; i++) {
		struct mobj *c = r_child(ps, what, "");

		if (!c)
			return NULL;
		o->items[o->nitems++] = c;
		if (set && !c->hashable) {
			fail(ps, c->offset, "unhashable set element");
			return NULL;
		}
		if (!c->hashable)
			o->hashable = 0;
	}
	o->busy = 0;
	if (type == MARSHAL_FROZENSET)
		fill_slot(ps, o);
	if (type == MARSHAL_LIST || type == MARSHAL_SET)
		o->hashable = 0;
	else if (type == MARSHAL_FROZENSET)
		o->hashable = 1;
	return o;
}

/* Push a dict's item on the parser's stack (its count is not in the stream). */
static void push_item(struct parser *ps, struct mobj *c)
{
	ALLOC_GROW(ps->stack, ps->nstack + 1, ps->stack_alloc);
	ps->stack[ps->nstack++] = c;
}

static struct mobj *r_dict(struct parser *ps, int code, size_t off)
{
	struct mobj *o = new_node(ps, code, off);
	size_t base = ps->nstack;

	if (take_slot(ps, o, 1) < 0)
		return NULL;
	o->busy = 1;
	for (;;) {
		struct mobj *key, *val;

		if (!(key = r_object(ps)))
			return NULL;
		push_item(ps, key);
		if (key->type == MARSHAL_NULL)
			break;
		if (!(val = r_object(ps)))
			return NULL;
		push_item(ps, val);
		if (val->type == MARSHAL_NULL)
			break; /* CPython drops the key and ends the dict */
		if (!key->hashable) {
			fail(ps, key->offset, "unhashable dict key");
			return NULL;
		}
	}
	o->nitems = ps->nstack - base;
	o->items = new_items(ps, o->nitems);
	memcpy(o->items, ps->stack + base, o->nitems * sizeof(*o->items));
	ps->nstack = base;
	o->busy = 0;
	return o;
}

static struct mobj *r_slice(struct parser *ps, int code, size_t off)
{
	struct mobj *o = new_node(ps, code, off);
	size_t i;

	o->items = new_items(ps, 3);
	if (take_slot(ps, o, 0) < 0)
		return NULL;
	o->busy = 1;
	o->hashable = 1;
	for (i = 0; i < 3; i++) {
		struct mobj *c = r_child(ps, "slice", "");

		if (!c)
			return NULL;
		o->items[o->nitems++] = c;
		if (!c->hashable)
			o->hashable = 0;
	}
	o->busy = 0;
	fill_slot(ps, o);
	return o;
}

static int32_t code_int(const struct mobj *o, int i)
{
	uint32_t u = get_le32(o->data + 4 * (size_t)i);

	return u <= INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1;
}

/* int arithmetic as CPython's (built with -fwrapv) does it */
static int32_t wrap32(int64_t x)
{
	uint32_t u = (uint32_t)x;

	return u <= INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1;
}

/* What the code object constructor of the version rejects. */
static int check_code(struct parser *ps, struct mobj *o)
{
	const struct code_index *ci = &ps->ci;
	size_t i, nobj = 0;
	int32_t argc, posonly = 0, kwonly, flags, extra;

	for (i = 0; i < ps->nfields; i++) {
		const struct marshal_code_field *f = &ps->layout[i];
		const struct mobj *c;
		int ok;

		if (f->kind == 'i')
			continue;
		c = o->items[nobj++];
		switch (f->kind) {
		case 'b':
			ok = is_bytes(c);
			break;
		case 's':
			ok = is_str(c);
			break;
		case 't':
			ok = is_tuple(c);
			break;
		default: /* 'n' */
			ok = is_tuple(c);
			if (ok) {
				const struct mobj *t = deref(c);
				size_t k;

				for (k = 0; k < t->nitems && ok; k++)
					ok = is_str(t->items[k]);
			}
			break;
		}
		if (!ok)
			return fail(ps, c->offset, "code object's %s is not %s", f->name,
				    f->kind == 'b'   ? "bytes"
				    : f->kind == 's' ? "a str"
				    : f->kind == 't' ? "a tuple"
						     : "a tuple of str");
	}
	if (!ps->code_rules)
		return 0;

	argc = code_int(o, ci->argcount);
	kwonly = code_int(o, ci->kwonlyargcount);
	flags = code_int(o, ci->flags);
	if (ci->posonlyargcount >= 0)
		posonly = code_int(o, ci->posonlyargcount);
	if (argc < posonly || posonly < 0 || kwonly < 0 ||
	    (ci->nlocals >= 0 && code_int(o, ci->nlocals) < 0) ||
	    (ps->v->minor >= 8 && (code_int(o, ci->stacksize) < 0 || flags < 0)))
		return fail(ps, o->offset, "code object has a negative count");
	extra = ((flags & CO_VARARGS) != 0) + ((flags & CO_VARKEYWORDS) != 0);

	if (ci->localsplusnames >= 0) {
		const struct mobj *names = deref(o->items[ci->localsplusnames]);
		const struct mobj *kinds = deref(o->items[ci->localspluskinds]);
		const struct mobj *bytecode = deref(o->items[ci->code]);
		int32_t nlocals = 0;

		if (names->nitems != kinds->len)
			return fail(ps, o->offset, "code object has %zu local names but %zu kinds",
				    names->nitems, kinds->len);
		if (bytecode->len % 2 || bytecode->len > INT32_MAX)
			return fail(ps, o->offset, "code object's bytecode is malformed");
		for (i = 0; i < kinds->len; i++)
			if (kinds->data[i] & CO_FAST_LOCAL)
				nlocals++;
		if (wrap32((int64_t)nlocals - argc - kwonly - extra) < 0)
			return fail(ps, o->offset, "code object's varnames is too small");
	} else {
		size_t nvar = deref(o->items[ci->varnames])->nitems;

		if ((size_t)argc > nvar || (size_t)kwonly > nvar ||
		    (size_t)argc + (size_t)kwonly + (size_t)extra > nvar)
			return fail(ps, o->offset, "code object's varnames is too small");
	}
	return 0;
}

static struct mobj *r_code(struct parser *ps, int code, size_t off)
{
	struct mobj *o = new_owned_node(ps, code, off, 4 * ps->nints);
	size_t i, nint = 0;

	o->items = new_items(ps, ps->nfields - ps->nints);
	if (take_slot(ps, o, 0) < 0)
		return NULL;
	o->busy = 1;
	for (i = 0; i < ps->nfields; i++) {
		const struct marshal_code_field *f = &ps->layout[i];
		struct mobj *c;

		if (f->kind == 'i') {
			if (need(ps, 4, f->name) < 0)
				return NULL;
			memcpy(o->data + 4 * nint++, ps->p, 4);
			ps->p += 4;
			continue;
		}
		if (!(c = r_child(ps, "code object field ", f->name)))
			return NULL;
		o->items[o->nitems++] = c;
	}
	if (check_code(ps, o) < 0)
		return NULL;
	o->busy = 0;
	o->hashable = o->items[ps->ci.consts]->hashable;
	fill_slot(ps, o);
	return o;
}

static struct mobj *r_ref(struct parser *ps, int code, size_t off)
{
	size_t at = pos(ps);
	struct mobj *o, *t;
	int32_t n;

	if (read_i32(ps, &n, "reference") < 0)
		return NULL;
	if (n < 0 || (size_t)n >= ps->nslots) {
		fail(ps, at, "invalid reference %ld (%zu flagged objects so far)", (long)n,
		     ps->nslots);
		return NULL;
	}
	if (!(t = ps->slots[n])) {
		fail(ps, at, "reference %ld to an object still being read", (long)n);
		return NULL;
	}
	o = new_node(ps, code, off);
	o->ref = (uint32_t)n;
	o->target = t;
	/* hashing a container that holds itself never ends */
	o->hashable = t->hashable && !t->busy;
	return o;
}

static struct mobj *r_body(struct parser *ps, int code, size_t off)
{
	struct mobj *o;

	switch (code & ~MARSHAL_FLAG_REF) {
	case MARSHAL_NULL:
	case MARSHAL_NONE:
	case MARSHAL_FALSE:
	case MARSHAL_TRUE:
	case MARSHAL_STOPITER:
	case MARSHAL_ELLIPSIS:
		/* singletons: the flag, if any, takes no index */
		o = new_node(ps, code, off);
		o->hashable = 1;
		return o;
	case MARSHAL_INT:
		if (!(o = r_scalar(ps, code, off, 4)))
			return NULL;
		o->ival = code_int(o, 0);
		break;
	case MARSHAL_INT64:
		o = r_scalar(ps, code, off, 8);
		break;
	case MARSHAL_BINARY_FLOAT:
		o = r_scalar(ps, code, off, 8);
		break;
	case MARSHAL_BINARY_COMPLEX:
		o = r_scalar(ps, code, off, 16);
		break;
	case MARSHAL_LONG:
		o = r_long(ps, code, off);
		break;
	case MARSHAL_FLOAT:
	case MARSHAL_COMPLEX:
		o = r_float(ps, code, off);
		break;
	case MARSHAL_STRING:
	case MARSHAL_INTERNED:
	case MARSHAL_UNICODE:
	case MARSHAL_ASCII:
	case MARSHAL_ASCII_INTERNED:
	case MARSHAL_SHORT_ASCII:
	case MARSHAL_SHORT_ASCII_INTERNED:
		o = r_string(ps, code, off);
		break;
	case MARSHAL_TUPLE:
	case MARSHAL_SMALL_TUPLE:
	case MARSHAL_LIST:
	case MARSHAL_SET:
	case MARSHAL_FROZENSET:
		return r_sequence(ps, code, off);
	case MARSHAL_DICT:
		return r_dict(ps, code, off);
	case MARSHAL_CODE:
		return r_code(ps, code, off);
	case MARSHAL_REF:
		return r_ref(ps, code, off);
	case MARSHAL_SLICE:
		if (ps->slices)
			return r_slice(ps, code, off);
		/* fall through */
	default:
		fail(ps, off, "unknown type code 0x%02x", (unsigned)code);
		return NULL;
	}
	if (!o)
		return NULL;
	/* scalars and strings: filled as soon as read */
	o->hashable = 1;
	if (take_slot(ps, o, 1) < 0)
		return NULL;
	return o;
}

static struct mobj *r_object(struct parser *ps)
{
	size_t off = pos(ps);
	struct mobj *o;
	int code;

	if (!left(ps)) {
		fail(ps, off, "truncated: object expected at end of data");
		return NULL;
	}
	code = *ps->p++;
	if (ps->depth >= MARSHAL_MAX_DEPTH) {
		fail(ps, off, "objects nested deeper than %d", MARSHAL_MAX_DEPTH);
		return NULL;
	}
	ps->depth++;
	o = r_body(ps, code, off);
	ps->depth--;
	return o;
}

static int find_field(const struct marshal_code_field *layout, size_t n, const char *name,
		      int want_int)
{
	size_t i;
	int idx = 0;

	for (i = 0; i < n; i++) {
		if (!strcmp(layout[i].name, name))
			return idx;
		if ((layout[i].kind == 'i') == want_int)
			idx++;
	}
	return -1;
}

static int parser_init(struct parser *ps, const unsigned char *data, size_t len,
		       const struct marshal_version *v, struct marshal_err *err)
{
	const struct marshal_code_field *l;
	struct code_index *ci = &ps->ci;
	size_t i;

	memset(ps, 0, sizeof(*ps));
	ps->start = ps->p = data;
	ps->end = data + len;
	ps->v = v;
	ps->err = err;
	ps->layout = l = marshal_code_layout(v, &ps->nfields);
	if (!l)
		return fail(ps, 0, "unsupported python version %d.%d", v->major, v->minor);
	for (i = 0; i < ps->nfields; i++)
		if (l[i].kind == 'i')
			ps->nints++;
	ps->slices = v->minor >= 14;
	/* PyPy builds its code objects its own way (and is more lenient) */
	ps->code_rules = !v->pypy;
	ci->argcount = find_field(l, ps->nfields, "argcount", 1);
	ci->posonlyargcount = find_field(l, ps->nfields, "posonlyargcount", 1);
	ci->kwonlyargcount = find_field(l, ps->nfields, "kwonlyargcount", 1);
	ci->nlocals = find_field(l, ps->nfields, "nlocals", 1);
	ci->stacksize = find_field(l, ps->nfields, "stacksize", 1);
	ci->flags = find_field(l, ps->nfields, "flags", 1);
	ci->code = find_field(l, ps->nfields, "code", 0);
	ci->consts = find_field(l, ps->nfields, "consts", 0);
	ci->varnames = find_field(l, ps->nfields, "varnames", 0);
	ci->localsplusnames = find_field(l, ps->nfields, "localsplusnames", 0);
	ci->localspluskinds = find_field(l, ps->nfields, "localspluskinds", 0);
	return 0;
}

int marshal_parse(const unsigned char *data, size_t len, const struct marshal_version *v,
		  struct mobj **out, struct marshal_err *err)
{
	struct parser ps;
	struct mobj *o = NULL;

	*out = NULL;
	if (parser_init(&ps, data, len, v, err) < 0)
		return -1;
	tree_new(&ps, data, len);
	o = r_object(&ps);
	free(ps.slots);
	free(ps.stack);
	if (!o)
		goto fail;
	if (o->type == MARSHAL_NULL) {
		fail(&ps, o->offset, "null object at top level");
		goto fail;
	}
	if (ps.p != ps.end) {
		fail(&ps, pos(&ps), "%zu trailing bytes after the object", left(&ps));
		goto fail;
	}
	*out = o;
	return 0;
fail:
	tree_free(ps.tree);
	return -1;
}

int marshal_check(const unsigned char *data, size_t len, const struct marshal_version *v,
		  struct marshal_err *err)
{
	struct mobj *o;

	if (marshal_parse(data, len, v, &o, err) < 0)
		return -1;
	mobj_free(o);
	return 0;
}

/* ---- writing ---- */

struct writer {
	const struct marshal_code_field *layout;
	size_t nfields;
	int slices;
	struct strbuf *out;
};

static int w_error(const struct mobj *o, const char *why)
{
	return error("cannot write marshal object '%c' (from offset %zu): %s", o->type, o->offset,
		     why);
}

static int w_object(struct writer *w, const struct mobj *o, int depth);

static int w_items(struct writer *w, const struct mobj *o, int depth)
{
	size_t i;

	for (i = 0; i < o->nitems; i++)
		if (w_object(w, o->items[i], depth + 1) < 0)
			return -1;
	return 0;
}

static int w_count32(struct writer *w, const struct mobj *o, size_t n)
{
	if (n > INT32_MAX)
		return w_error(o, "too long");
	strbuf_add_le32(w->out, (unsigned long)n);
	return 0;
}

static int w_count8(struct writer *w, const struct mobj *o, size_t n)
{
	if (n > 255)
		return w_error(o, "too long for a one-byte length");
	strbuf_addch(w->out, (int)n);
	return 0;
}

static int w_code(struct writer *w, const struct mobj *o, int depth)
{
	size_t i, nint = 0, nobj = 0;

	for (i = 0; i < w->nfields; i++) {
		if (w->layout[i].kind == 'i')
			nint++;
		else
			nobj++;
	}
	if (o->len != 4 * nint || o->nitems != nobj)
		return w_error(o, "fields do not match the version's layout");
	nint = nobj = 0;
	for (i = 0; i < w->nfields; i++) {
		if (w->layout[i].kind == 'i') {
			strbuf_add(w->out, o->data + 4 * nint++, 4);
		} else if (w_object(w, o->items[nobj++], depth + 1) < 0) {
			return -1;
		}
	}
	return 0;
}

static int w_object(struct writer *w, const struct mobj *o, int depth)
{
	size_t n;

	if (depth > MARSHAL_MAX_DEPTH)
		return w_error(o, "nested too deep");
	strbuf_addch(w->out, o->type | (o->flag_ref ? MARSHAL_FLAG_REF : 0));
	switch (o->type) {
	case MARSHAL_NULL:
	case MARSHAL_NONE:
	case MARSHAL_FALSE:
	case MARSHAL_TRUE:
	case MARSHAL_STOPITER:
	case MARSHAL_ELLIPSIS:
		return 0;
	case MARSHAL_INT:
	case MARSHAL_INT64:
	case MARSHAL_BINARY_FLOAT:
	case MARSHAL_BINARY_COMPLEX:
		n = o->type == MARSHAL_INT ? 4 : o->type == MARSHAL_BINARY_COMPLEX ? 16 : 8;
		if (o->len != n)
			return w_error(o, "payload of the wrong size");
		strbuf_add(w->out, o->data, n);
		return 0;
	case MARSHAL_LONG:
		if (o->ival <= INT32_MIN || o->ival > INT32_MAX ||
		    o->len != 2 * (size_t)(o->ival < 0 ? -o->ival : o->ival))
			return w_error(o, "digit count does not match its digits");
		strbuf_add_le32(w->out, (unsigned long)(uint32_t)o->ival);
		strbuf_add(w->out, o->data, o->len);
		return 0;
	case MARSHAL_FLOAT:
		if (w_count8(w, o, o->len) < 0)
			return -1;
		strbuf_add(w->out, o->data, o->len);
		return 0;
	case MARSHAL_COMPLEX:
		if (o->ival < 0 || (size_t)o->ival > o->len)
			return w_error(o, "real part longer than the text");
		n = (size_t)o->ival;
		if (w_count8(w, o, n) < 0)
			return -1;
		strbuf_add(w->out, o->data, n);
		if (w_count8(w, o, o->len - n) < 0)
			return -1;
		strbuf_add(w->out, o->data + n, o->len - n);
		return 0;
	case MARSHAL_SHORT_ASCII:
	case MARSHAL_SHORT_ASCII_INTERNED:
		if (w_count8(w, o, o->len) < 0)
			return -1;
		strbuf_add(w->out, o->data, o->len);
		return 0;
	case MARSHAL_STRING:
	case MARSHAL_INTERNED:
	case MARSHAL_UNICODE:
	case MARSHAL_ASCII:
	case MARSHAL_ASCII_INTERNED:
		if (w_count32(w, o, o->len) < 0)
			return -1;
		strbuf_add(w->out, o->data, o->len);
		return 0;
	case MARSHAL_SMALL_TUPLE:
		if (w_count8(w, o, o->nitems) < 0)
			return -1;
		return w_items(w, o, depth);
	case MARSHAL_TUPLE:
	case MARSHAL_LIST:
	case MARSHAL_SET:
	case MARSHAL_FROZENSET:
		if (w_count32(w, o, o->nitems) < 0)
			return -1;
		return w_items(w, o, depth);
	case MARSHAL_DICT:
		if (!o->nitems || o->items[o->nitems - 1]->type != MARSHAL_NULL)
			return w_error(o, "dict not ended by a null");
		return w_items(w, o, depth);
	case MARSHAL_SLICE:
		if (!w->slices || o->nitems != 3)
			return w_error(o, "not a slice of this version");
		return w_items(w, o, depth);
	case MARSHAL_CODE:
		return w_code(w, o, depth);
	case MARSHAL_REF:
		strbuf_add_le32(w->out, o->ref);
		return 0;
	default:
		return w_error(o, "unknown type");
	}
}

int marshal_write(const struct mobj *root, const struct marshal_version *v, struct strbuf *out)
{
	struct writer w;

	w.layout = marshal_code_layout(v, &w.nfields);
	if (!w.layout)
		return error("cannot write marshal data for python %d.%d", v->major, v->minor);
	w.slices = v->minor >= 14;
	w.out = out;
	return w_object(&w, root, 1);
}

/* ---- canonical form ---- */

/*
 * marshal_write_canonical() walks the tree twice.
 *
 * 1. classify, in stream order, children before their parent: every node
 *    gets a class.  Equal immutable constants share one, found through a
 *    hash table keyed by the class's kind, its canonical payload and its
 *    children's classes (so comparing two tuples is comparing two short
 *    arrays of class numbers).  Code objects, lists, dicts, sets, and the
 *    containers holding one of those or a reference to a container still
 *    being read (a cycle) get a class of their own ("identity"), which only
 *    the 'r' nodes pointing at them share.  Per node, in pre-order, we keep
 *    its class and the size of its subtree, so the next walk can skip one.
 * 2. emit, in marshal's order: a class met before becomes an 'r' and its
 *    subtree is not entered.  Whether a class occurs more than once, and so
 *    needs FLAG_REF on its first occurrence, is known only at the end of
 *    this walk, and with it the indexes (which count flagged objects in
 *    the order written): first occurrences are written unflagged and 'r's
 *    with a blank index, and both are patched once the walk is done (a
 *    counting walk before the writing one was about a tenth of the time).
 *
 * Counting on the output walk rather than on the input matters: a string
 * inside a tuple written twice in one stream and once plus an 'r' in the
 * other must get the same flag in both.
 */

#define CANON_PENDING UINT32_MAX
/* 'r' + u32: a class whose whole encoding is shorter is written in full */
#define CANON_REF_SIZE 5
#define CANON_SIZE_CAP ((size_t)1 << 40)

struct cclass {
	uint64_t hash;
	const unsigned char *key; /* canonical payload: in the tree or in ctx->owned */
	size_t keylen;
	int64_t ival;		 /* 'i' value; 'l' signed digit count; 'x' real part length */
	size_t items;		 /* value classes: first child class in ids[] */
	size_t nitems;
	size_t full;		 /* bytes when written in full, children too (capped) */
	const struct mobj *node; /* a node of the class written in full... */
	size_t pos;		 /* ...and its pre-order position */
	size_t at;		 /* where the output has its first occurrence's type byte */
	unsigned char kind;	 /* see c_scalar(); 0 for an identity class */
	unsigned char ascii;	 /* text: all below 0x80 */
	unsigned char namelike;	 /* text: only [A-Za-z0-9_] (CPython's all_name_chars) */
	unsigned char shared;	 /* text: one object per process in CPython ('', 'a', '\xe9') */
	unsigned char interned;	 /* text: some occurrence was interned */
};

/*
 * The output walk's state of a class, apart (a byte each) so that the many
 * 'r's it writes do not bring whole classes into the cache.
 */
enum {
	CS_SMALL = 1 << 0,   /* c_small(): written in full every time */
	CS_WRITTEN = 1 << 1, /* its first occurrence is written */
	CS_AGAIN = 1 << 2,   /* met again once written: FLAG_REF, the others 'r' */
	CS_DEEP = 1 << 3,    /* small, met where writing it in full nests too deep */
};

/* An 'r' written with a blank index: the class it stands for and where it is. */
struct cfix {
	size_t at;
	uint32_t cls;
};

struct cnode {
	uint32_t cls;  /* while pending: the index the 'r' refers to */
	uint32_t size; /* nodes in the subtree, this one included */
};

struct cref {
	const struct mobj *node;
	uint32_t cls; /* CANON_PENDING while the node is being classified */
};

struct canon {
	const struct marshal_code_field *layout;
	size_t nfields, nints;
	int slices;
	int pypy;
	struct cclass *classes;
	size_t nclasses, classes_alloc;
	uint32_t *table; /* class + 1, 0 = empty; a power of two long */
	size_t table_size, table_used;
	uint32_t *ids; /* children of value classes */
	size_t nids, ids_alloc;
	uint32_t *stack; /* children's classes while their parent is classified */
	size_t nstack, stack_alloc;
	struct cnode *nodes;
	size_t nnodes, nodes_alloc;
	struct cref *refs; /* by the index the reader gives */
	size_t nrefs, refs_alloc;
	size_t *pending; /* positions of 'r' nodes to a node then unfinished */
	size_t npending, pending_alloc;
	unsigned char **owned;
	size_t nowned, owned_alloc;
	struct strbuf scratch; /* a payload transcoded for lookup */
	unsigned char *state;  /* CS_* by class */
	uint32_t *order;       /* classes in the order first written */
	size_t norder;
	uint32_t *index;       /* by class: its index, if flagged */
	struct cfix *fixes;
	size_t nfixes, fixes_alloc;
	struct strbuf *out;
};

static const char canon_singletons[] = "0NFTS.";

/* The class of a singleton (0..5, made first), or -1. */
static int c_singleton(int type)
{
	switch (type) {
	case MARSHAL_NULL:
		return 0;
	case MARSHAL_NONE:
		return 1;
	case MARSHAL_FALSE:
		return 2;
	case MARSHAL_TRUE:
		return 3;
	case MARSHAL_STOPITER:
		return 4;
	case MARSHAL_ELLIPSIS:
		return 5;
	default:
		return -1;
	}
}

static int c_error(const struct mobj *o, const char *why)
{
	return error("cannot write marshal object '%c' (from offset %zu) canonically: %s", o->type,
		     o->offset, why);
}

static size_t c_add(size_t a, size_t b)
{
	return a + b > CANON_SIZE_CAP ? CANON_SIZE_CAP : a + b;
}

/*
 * FNV-1a taken 8 bytes at a time (the payloads are whole bytecode strings:
 * byte by byte it was most of the time spent), with a final mix so the
 * low bits that index the table depend on every input bit.  Only the
 * table's layout depends on it, never the output.
 */
static uint64_t hash_word(uint64_t h, uint64_t w)
{
	h = (h ^ w) * 0x100000001b3ULL;
	return h ^ h >> 29;
}

/*
 * n bytes (the caller hashes n itself: a short tail is not told from
 * zeros).  Two lanes, so that a long payload is not one chain of multiplies.
 */
static uint64_t hash_bytes(uint64_t h, const unsigned char *p, size_t n)
{
	uint64_t w, v, h2 = ~h;
	size_t i;

	for (i = 0; i + 16 <= n; i += 16) {
		memcpy(&w, p + i, 8);
		memcpy(&v, p + i + 8, 8);
		h = hash_word(h, w);
		h2 = hash_word(h2, v);
	}
	if (i + 8 <= n) {
		memcpy(&w, p + i, 8);
		h = hash_word(h, w);
	}
	h = hash_word(h, h2);
	return n & 7 ? hash_word(h, tail_word(p, n)) : h;
}

static uint64_t hash_end(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static void c_table_put(struct canon *cx, uint32_t id)
{
	size_t mask = cx->table_size - 1, i = (size_t)cx->classes[id].hash & mask;

	while (cx->table[i])
		i = (i + 1) & mask;
	cx->table[i] = id + 1;
}

static void c_table_grow(struct canon *cx)
{
	size_t i;

	cx->table_size = st_mult(cx->table_size, 2);
	free(cx->table);
	cx->table = xcalloc(cx->table_size, sizeof(*cx->table));
	/* the table holds exactly the value classes (identity ones have kind 0) */
	for (i = 0; i < cx->nclasses; i++)
		if (cx->classes[i].kind)
			c_table_put(cx, (uint32_t)i);
}

static uint32_t c_new_class(struct canon *cx, int kind, const struct mobj *o, size_t pos)
{
	struct cclass *c;

	if (cx->nclasses >= CANON_PENDING - 1)
		BUG("canonical marshal: more classes than nodes"); /* nodes are counted first */
	ALLOC_GROW(cx->classes, cx->nclasses + 1, cx->classes_alloc);
	c = &cx->classes[cx->nclasses];
	/* field by field: a compound literal for the whole became a rep stos */
	c->kind = (unsigned char)kind;
	c->node = o;
	c->pos = pos;
	c->full = CANON_SIZE_CAP;
	c->hash = 0;
	c->key = NULL;
	c->keylen = c->items = c->nitems = c->at = 0;
	c->ival = 0;
	c->ascii = c->namelike = c->shared = c->interned = 0;
	return (uint32_t)cx->nclasses++;
}

/*
 * The value class with this key, made if new.  `key` may point into the
 * scratch buffer (it is copied then); `kids` are the nkids classes on top
 * of the stack.
 */
static uint32_t c_lookup(struct canon *cx, int kind, int64_t ival, const unsigned char *key,
			 size_t keylen, const uint32_t *kids, size_t nkids, size_t full,
			 const struct mobj *o, size_t pos)
{
	unsigned char k = (unsigned char)kind;
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t mask, i;
	struct cclass *c;
	uint32_t id;

	h = hash_word(h, k ^ (uint64_t)keylen << 8 ^ (uint64_t)nkids << 40);
	h = hash_word(h, (uint64_t)ival);
	if (keylen)
		h = hash_bytes(h, key, keylen);
	if (nkids)
		h = hash_bytes(h, (const unsigned char *)kids, nkids * sizeof(*kids));
	h = hash_end(h);
	if (2 * (cx->table_used + 1) > cx->table_size)
		c_table_grow(cx);
	mask = cx->table_size - 1;
	for (i = (size_t)h & mask; cx->table[i]; i = (i + 1) & mask) {
		c = &cx->classes[cx->table[i] - 1];
		if (c->hash == h && c->kind == k && c->ival == ival && c->keylen == keylen &&
		    c->nitems == nkids && (!keylen || !memcmp(c->key, key, keylen)) &&
		    (!nkids || !memcmp(cx->ids + c->items, kids, nkids * sizeof(*kids))))
			return cx->table[i] - 1;
	}
	id = c_new_class(cx, kind, o, pos);
	c = &cx->classes[id];
	c->hash = h;
	c->ival = ival;
	c->keylen = keylen;
	c->key = key;
	if (keylen && key == (const unsigned char *)cx->scratch.buf) {
		unsigned char *copy = xmalloc(keylen);

		memcpy(copy, key, keylen);
		ALLOC_GROW(cx->owned, cx->nowned + 1, cx->owned_alloc);
		cx->owned[cx->nowned++] = copy;
		c->key = copy;
	}
	c->items = cx->nids;
	c->nitems = nkids;
	if (nkids) {
		ALLOC_GROW(cx->ids, st_add(cx->nids, nkids), cx->ids_alloc);
		memcpy(cx->ids + cx->nids, kids, nkids * sizeof(*kids));
		cx->nids += nkids;
	}
	c->full = full;
	cx->table[i] = id + 1; /* where the probe ended */
	cx->table_used++;
	return id;
}

static int all_name_chars(const unsigned char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

/* The digit count and 15-bit digits of a 'l' holding v, into the scratch buffer. */
static int64_t c_long_digits(struct canon *cx, int64_t v)
{
	uint64_t mag = v < 0 ? -(uint64_t)v : (uint64_t)v;
	int64_t n = 0;

	strbuf_reset(&cx->scratch);
	while (mag) {
		strbuf_addch(&cx->scratch, (int)(mag & 0xff));
		strbuf_addch(&cx->scratch, (int)((mag >> 8) & 0x7f));
		mag >>= 15;
		n++;
	}
	return v < 0 ? -n : n;
}

/* A 'l' of at most 4 digits as an int64 (normalized: 5 digits are >= 2**60). */
static int long_value(const struct mobj *o, int64_t *out)
{
	size_t n = o->len / 2, i;
	uint64_t mag = 0;

	if (n > 4)
		return 0;
	for (i = n; i-- > 0;)
		mag = mag << 15 | (uint64_t)(o->data[2 * i] | (unsigned)o->data[2 * i + 1] << 8);
	*out = o->ival < 0 ? -(int64_t)mag : (int64_t)mag;
	return 1;
}

/*
 * The class of a scalar.  Kinds: 'u' text (key: its UTF-8), 'U' text PyPy
 * read leniently from invalid UTF-8 (key: the bytes), 's' bytes, 'i' int
 * that fits in 32 bits (ival), 'l' other int (ival, key: digits), 'g' 'y'
 * (key: the IEEE bytes), 'f' 'x' (key: the text).
 */
static uint32_t c_scalar(struct canon *cx, const struct mobj *o, size_t pos)
{
	const unsigned char *key = o->data;
	size_t keylen = o->len, i, bad;
	int64_t ival = 0, v;
	uint32_t id;
	int kind = o->type, ascii = 0;
	size_t made;

	switch (o->type) {
	case MARSHAL_INT:
		ival = o->ival;
		keylen = 0;
		break;
	case MARSHAL_INT64:
	case MARSHAL_LONG:
		if (o->type == MARSHAL_INT64) {
			uint64_t u = (uint64_t)get_le32(o->data) | (uint64_t)get_le32(o->data + 4) << 32;

			v = u <= INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
		} else if (!long_value(o, &v)) {
			kind = MARSHAL_LONG;
			ival = o->ival;
			break;
		}
		if (v >= INT32_MIN && v <= INT32_MAX) {
			kind = MARSHAL_INT;
			ival = v;
			keylen = 0;
		} else {
			kind = MARSHAL_LONG;
			ival = c_long_digits(cx, v);
			key = (const unsigned char *)cx->scratch.buf;
			keylen = cx->scratch.len;
		}
		break;
	case MARSHAL_COMPLEX:
		ival = o->ival;
		break;
	case MARSHAL_INTERNED:
	case MARSHAL_UNICODE:
		kind = 'u';
		if (!utf8_surrogatepass_ok(o->data, o->len, &bad))
			kind = 'U';
		else
			ascii = all_ascii(o->data, o->len);
		break;
	case MARSHAL_ASCII:
	case MARSHAL_ASCII_INTERNED:
	case MARSHAL_SHORT_ASCII:
	case MARSHAL_SHORT_ASCII_INTERNED:
		kind = 'u';
		ascii = all_ascii(o->data, o->len);
		if (!ascii) {
			/* CPython reads these as Latin-1 */
			strbuf_reset(&cx->scratch);
			for (i = 0; i < o->len; i++) {
				if (o->data[i] < 0x80) {
					strbuf_addch(&cx->scratch, o->data[i]);
				} else {
					strbuf_addch(&cx->scratch, 0xc0 | o->data[i] >> 6);
					strbuf_addch(&cx->scratch, 0x80 | (o->data[i] & 0x3f));
				}
			}
			key = (const unsigned char *)cx->scratch.buf;
			keylen = cx->scratch.len;
		}
		break;
	}
	made = cx->nclasses;
	id = c_lookup(cx, kind, ival, key, keylen, NULL, 0, 0, o, pos);
	{
		struct cclass *c = &cx->classes[id];

		switch (kind) {
		case 'u':
		case 'U':
			if (o->type == MARSHAL_INTERNED || o->type == MARSHAL_ASCII_INTERNED ||
			    o->type == MARSHAL_SHORT_ASCII_INTERNED)
				c->interned = 1;
			if (id < made)
				break; /* not new: the rest is known */
			/* the key is o's text (or its UTF-8), ASCII exactly when that is */
			c->ascii = (unsigned char)ascii;
			/* no character, or one below U+0100 (UTF-8 C2 xx or C3 xx) */
			c->shared = kind == 'u' && (c->keylen <= 1 || (c->keylen == 2 && (c->key[0] == 0xc2 ||
										 c->key[0] == 0xc3)));
			/* only c_emit_text() looks at it, and only in these cases */
			c->namelike = kind == 'u' && (cx->pypy || c->shared) &&
				      all_name_chars(c->key, c->keylen);
			c->full = c_add(c->ascii && c->keylen < 256 ? 2 : 5, c->keylen);
			break;
		case MARSHAL_INT:
			c->full = 5;
			break;
		case MARSHAL_FLOAT:
			c->full = 2 + c->keylen;
			break;
		case MARSHAL_COMPLEX:
			c->full = 3 + c->keylen;
			break;
		default: /* 's' 'l' 'g' 'y': a type byte and a 4-byte count or 8+ bytes */
			c->full = c_add(5, c->keylen);
			break;
		}
	}
	return id;
}

static int c_classify(struct canon *cx, const struct mobj *o, int depth, uint32_t *out);

/*
 * An order of value classes by value alone: kind, then number, payload and
 * items.  A frozenset's items are written in this order, so that its bytes
 * do not depend on the order the writing process's set iterated in (which
 * depends on its history: hash collisions are resolved by insertion order).
 */
static int c_cmp(const struct canon *cx, uint32_t a, uint32_t b)
{
	const struct cclass *x = &cx->classes[a], *y = &cx->classes[b];
	size_t i;
	int d;

	if (a == b)
		return 0;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (!x->kind)
		return a < b ? -1 : 1; /* identity classes: never in a value frozenset */
	if (x->ival != y->ival)
		return x->ival < y->ival ? -1 : 1;
	if (x->keylen != y->keylen)
		return x->keylen < y->keylen ? -1 : 1;
	if (x->keylen && (d = memcmp(x->key, y->key, x->keylen)))
		return d;
	if (x->nitems != y->nitems)
		return x->nitems < y->nitems ? -1 : 1;
	for (i = 0; i < x->nitems; i++)
		if ((d = c_cmp(cx, cx->ids[x->items + i], cx->ids[y->items + i])))
			return d;
	return 0;
}

/* Insertion sort by c_cmp() of ids[] (frozensets are small; no qsort context in C11). */
static void c_sort_ids(const struct canon *cx, uint32_t *ids, size_t n)
{
	size_t i, j;

	for (i = 1; i < n; i++) {
		uint32_t v = ids[i];

		for (j = i; j > 0 && c_cmp(cx, ids[j - 1], v) > 0; j--)
			ids[j] = ids[j - 1];
		ids[j] = v;
	}
}

/*
 * c_classify() of an item, with half the nodes of a typical stream, an 'r'
 * to an object already classified, done here without the call.
 */
static inline int c_classify_item(struct canon *cx, const struct mobj *o, int depth,
				  uint32_t *out)
{
	const struct cref *r = o->type == MARSHAL_REF && o->ref < cx->nrefs ? &cx->refs[o->ref] : NULL;

	if (r && r->node == o->target && r->cls != CANON_PENDING && depth <= MARSHAL_MAX_DEPTH &&
	    cx->nnodes < cx->nodes_alloc && cx->nnodes < CANON_PENDING - 1) {
		cx->nodes[cx->nnodes].cls = r->cls;
		cx->nodes[cx->nnodes++].size = 1;
		*out = r->cls;
		return 0;
	}
	return c_classify(cx, o, depth, out);
}

static int c_container(struct canon *cx, const struct mobj *o, size_t pos, int depth,
		       uint32_t *out)
{
	size_t base = cx->nstack, i, full;
	int identity = o->type == MARSHAL_LIST || o->type == MARSHAL_SET ||
		       o->type == MARSHAL_DICT || o->type == MARSHAL_CODE;
	int kind = o->type == MARSHAL_SMALL_TUPLE ? MARSHAL_TUPLE : o->type;

	full = o->type == MARSHAL_SLICE ? 1 : o->nitems < 256 && kind == MARSHAL_TUPLE ? 2 : 5;
	ALLOC_GROW(cx->stack, st_add(cx->nstack, o->nitems), cx->stack_alloc);
	for (i = 0; i < o->nitems; i++) {
		uint32_t id;

		if (c_classify_item(cx, o->items[i], depth + 1, &id) < 0)
			return -1;
		cx->stack[cx->nstack++] = id;
		if (identity)
			continue;
		if (id == CANON_PENDING || !cx->classes[id].kind)
			identity = 1;
		else
			full = c_add(full, cx->classes[id].full);
	}
	if (!identity && kind == MARSHAL_FROZENSET && o->nitems > 1)
		c_sort_ids(cx, cx->stack + base, o->nitems);
	if (identity)
		*out = c_new_class(cx, 0, o, pos);
	else
		*out = c_lookup(cx, kind, 0, NULL, 0, o->nitems ? cx->stack + base : NULL,
				o->nitems, full, o, pos);
	cx->nstack = base;
	return 0;
}

/* A flagged node's place in the reader's table (pending until classified); else none. */
static size_t c_take_ref(struct canon *cx, const struct mobj *o)
{
	if (!o->flag_ref)
		return SIZE_MAX;
	ALLOC_GROW(cx->refs, cx->nrefs + 1, cx->refs_alloc);
	cx->refs[cx->nrefs].node = o;
	cx->refs[cx->nrefs].cls = CANON_PENDING;
	return cx->nrefs++;
}

static int c_classify(struct canon *cx, const struct mobj *o, int depth, uint32_t *out)
{
	size_t pos = cx->nnodes, ref;
	uint32_t id;

	if (depth > MARSHAL_MAX_DEPTH)
		return c_error(o, "nested too deep");
	if (pos >= CANON_PENDING - 1)
		return c_error(o, "too many objects");
	ALLOC_GROW(cx->nodes, cx->nnodes + 1, cx->nodes_alloc);
	cx->nnodes++;
	switch (o->type) {
	case MARSHAL_REF:
		if (o->ref >= cx->nrefs || (o->target && cx->refs[o->ref].node != o->target))
			return c_error(o, "reference to an object not written before it");
		id = cx->refs[o->ref].cls;
		if (id == CANON_PENDING) {
			/* a cycle: resolved once its target is classified */
			cx->nodes[pos].cls = o->ref;
			cx->nodes[pos].size = 1;
			ALLOC_GROW(cx->pending, cx->npending + 1, cx->pending_alloc);
			cx->pending[cx->npending++] = pos;
			*out = CANON_PENDING;
			return 0;
		}
		break;
	case MARSHAL_NULL:
	case MARSHAL_NONE:
	case MARSHAL_FALSE:
	case MARSHAL_TRUE:
	case MARSHAL_STOPITER:
	case MARSHAL_ELLIPSIS:
		id = (uint32_t)c_singleton(o->type);
		break;
	case MARSHAL_TUPLE:
	case MARSHAL_SMALL_TUPLE:
	case MARSHAL_LIST:
	case MARSHAL_DICT:
	case MARSHAL_SET:
	case MARSHAL_FROZENSET:
	case MARSHAL_SLICE:
	case MARSHAL_CODE:
		/* the index the reader gives it, at its type byte: its items may refer to it */
		ref = c_take_ref(cx, o);
		if (c_container(cx, o, pos, depth, &id) < 0)
			return -1;
		if (o->flag_ref)
			cx->refs[ref].cls = id;
		break;
	case MARSHAL_INT:
	case MARSHAL_INT64:
	case MARSHAL_LONG:
	case MARSHAL_FLOAT:
	case MARSHAL_BINARY_FLOAT:
	case MARSHAL_COMPLEX:
	case MARSHAL_BINARY_COMPLEX:
	case MARSHAL_STRING:
	case MARSHAL_INTERNED:
	case MARSHAL_UNICODE:
	case MARSHAL_ASCII:
	case MARSHAL_ASCII_INTERNED:
	case MARSHAL_SHORT_ASCII:
	case MARSHAL_SHORT_ASCII_INTERNED:
		id = c_scalar(cx, o, pos);
		if (o->flag_ref) {
			ref = c_take_ref(cx, o); /* may move refs[] */
			cx->refs[ref].cls = id;
		}
		break;
	default:
		return c_error(o, "unknown type");
	}
	cx->nodes[pos].cls = id;
	cx->nodes[pos].size = (uint32_t)(cx->nnodes - pos);
	*out = id;
	return 0;
}

static int c_small(const struct cclass *c)
{
	return c->kind && c->full < CANON_REF_SIZE;
}

/* Written in full at `depth`, a small class would nest deeper than the reader allows. */
static int c_too_deep(const struct cclass *c, int depth)
{
	return depth + (c->nitems ? 1 : 0) > MARSHAL_MAX_DEPTH;
}

/* The node to write a class's first occurrence from: o itself unless it is an 'r'. */
static const struct mobj *c_full_node(const struct canon *cx, const struct mobj *o, size_t *pos)
{
	const struct cclass *c = &cx->classes[cx->nodes[*pos].cls];

	if (o->type != MARSHAL_REF)
		return o;
	*pos = c->pos;
	return c->node;
}

/*
 * The output, written in place (strbuf_add*() for every few bytes was a
 * fifth of the writer's time); `out` lacks its NUL until
 * marshal_write_canonical() returns.
 */
static unsigned char *c_room(struct canon *cx, size_t n)
{
	struct strbuf *sb = cx->out;

	if (sb->alloc - sb->len <= n)
		strbuf_grow(sb, n);
	return (unsigned char *)sb->buf + sb->len;
}

static void c_put1(struct canon *cx, int c)
{
	*c_room(cx, 1) = (unsigned char)c;
	cx->out->len++;
}

static void c_put_le32(struct canon *cx, uint32_t v)
{
	put_le32(c_room(cx, 4), v);
	cx->out->len += 4;
}

static void c_put(struct canon *cx, const void *data, size_t n)
{
	if (n) {
		memcpy(c_room(cx, n), data, n);
		cx->out->len += n;
	}
}

/* An 'r' to class `id`, its index filled in by c_fix(). */
static void c_put_ref(struct canon *cx, uint32_t id)
{
	unsigned char *p = c_room(cx, 5);

	ALLOC_GROW(cx->fixes, cx->nfixes + 1, cx->fixes_alloc);
	cx->fixes[cx->nfixes].at = cx->out->len;
	cx->fixes[cx->nfixes++].cls = id;
	p[0] = MARSHAL_REF;
	memset(p + 1, 0, 4);
	cx->out->len += 5;
}

static int c_emit(struct canon *cx, const struct mobj *o, size_t pos, int depth);

/* c_emit() of an item, with the commonest case, a class already written (an 'r'), here. */
static inline int c_emit_item(struct canon *cx, const struct mobj *o, size_t pos, int depth)
{
	uint32_t id = cx->nodes[pos].cls;

	if ((cx->state[id] & (CS_SMALL | CS_WRITTEN)) == CS_WRITTEN && depth <= MARSHAL_MAX_DEPTH) {
		cx->state[id] |= CS_AGAIN;
		c_put_ref(cx, id);
		return 0;
	}
	return c_emit(cx, o, pos, depth);
}

struct c_item {
	const struct mobj *node;
	size_t pos;
};

static int c_emit_items(struct canon *cx, const struct mobj *o, size_t pos, int depth)
{
	struct c_item *v;
	size_t i, j, p;
	int rc = 0;

	if (cx->classes[cx->nodes[pos].cls].kind != MARSHAL_FROZENSET) {
		for (i = 0, p = pos + 1; i < o->nitems; i++, p += cx->nodes[p].size)
			if (c_emit_item(cx, o->items[i], p, depth + 1) < 0)
				return -1;
		return 0;
	}
	/* a frozenset's items in value order (c_cmp), as its class has them */
	v = xcalloc(o->nitems ? o->nitems : 1, sizeof(*v));
	for (i = 0, p = pos + 1; i < o->nitems; i++, p += cx->nodes[p].size) {
		struct c_item it = { o->items[i], p };

		for (j = i; j > 0 && c_cmp(cx, cx->nodes[v[j - 1].pos].cls, cx->nodes[p].cls) > 0; j--)
			v[j] = v[j - 1];
		v[j] = it;
	}
	for (i = 0; i < o->nitems && rc == 0; i++)
		rc = c_emit(cx, v[i].node, v[i].pos, depth + 1);
	free(v);
	return rc;
}

static int c_emit_code(struct canon *cx, const struct mobj *o, size_t pos, int depth)
{
	size_t i, p, nint, nobj;

	if (o->len != 4 * cx->nints || o->nitems != cx->nfields - cx->nints)
		return c_error(o, "fields do not match the version's layout");
	nint = nobj = 0;
	p = pos + 1;
	for (i = 0; i < cx->nfields; i++) {
		if (cx->layout[i].kind == 'i') {
			c_put(cx, o->data + 4 * nint++, 4);
			continue;
		}
		if (c_emit_item(cx, o->items[nobj++], p, depth + 1) < 0)
			return -1;
		p += cx->nodes[p].size;
	}
	return 0;
}

static void c_emit_text(struct canon *cx, const struct cclass *c)
{
	/*
	 * Where the interned bit is the writing process's history, not the
	 * value's, take CPython's rule for interning constants instead: PyPy
	 * writes a string interned when any string of its value has been
	 * interned in the process so far, and CPython has one object for ''
	 * and for each one-character Latin-1 string, interned once anything
	 * in the process interned it.  Loading gives an equal string anyway.
	 */
	int interned = cx->pypy || c->shared ? c->namelike : c->interned;
	int type;

	if (c->ascii && c->keylen < 256) {
		type = interned ? MARSHAL_SHORT_ASCII_INTERNED : MARSHAL_SHORT_ASCII;
		c_put1(cx, type);
		c_put1(cx, (int)c->keylen);
	} else {
		if (c->ascii)
			type = interned ? MARSHAL_ASCII_INTERNED : MARSHAL_ASCII;
		else
			type = interned ? MARSHAL_INTERNED : MARSHAL_UNICODE;
		c_put1(cx, type);
		c_put_le32(cx, c->keylen);
	}
	c_put(cx, c->key, c->keylen);
}

static int c_emit(struct canon *cx, const struct mobj *o, size_t pos, int depth)
{
	uint32_t id = cx->nodes[pos].cls;
	unsigned char *state = &cx->state[id];
	struct cclass *c;
	int type;

	if (depth > MARSHAL_MAX_DEPTH)
		return c_error(o, "nested too deep");
	if (*state & CS_SMALL) {
		/* written in full every time, unless that nests too deep */
		if (depth == MARSHAL_MAX_DEPTH && c_too_deep(&cx->classes[id], depth)) {
			if (!(*state & CS_WRITTEN))
				return c_error(o, "nested too deep");
			*state |= CS_DEEP;
			c_put_ref(cx, id);
			return 0;
		}
	} else if (*state & CS_WRITTEN) {
		*state |= CS_AGAIN;
		c_put_ref(cx, id);
		return 0;
	}
	c = &cx->classes[id];
	if (!(*state & CS_WRITTEN)) {
		*state |= CS_WRITTEN;
		c->at = cx->out->len;
		cx->order[cx->norder++] = id;
	}
	o = c_full_node(cx, o, &pos);

	switch (c->kind) {
	case 0:
		break; /* below: the node's own shape */
	case 'u':
	case 'U':
		c_emit_text(cx, c);
		return 0;
	case MARSHAL_INT:
		c_put1(cx, MARSHAL_INT);
		c_put_le32(cx, (uint32_t)c->ival);
		return 0;
	case MARSHAL_LONG:
		c_put1(cx, MARSHAL_LONG);
		c_put_le32(cx, (uint32_t)c->ival);
		c_put(cx, c->key, c->keylen);
		return 0;
	case MARSHAL_STRING:
		c_put1(cx, MARSHAL_STRING);
		c_put_le32(cx, c->keylen);
		c_put(cx, c->key, c->keylen);
		return 0;
	case MARSHAL_BINARY_FLOAT:
	case MARSHAL_BINARY_COMPLEX:
		c_put1(cx, c->kind);
		c_put(cx, c->key, c->keylen);
		return 0;
	case MARSHAL_FLOAT:
		c_put1(cx, MARSHAL_FLOAT);
		c_put1(cx, (int)c->keylen);
		c_put(cx, c->key, c->keylen);
		return 0;
	case MARSHAL_COMPLEX:
		c_put1(cx, MARSHAL_COMPLEX);
		c_put1(cx, (int)c->ival);
		c_put(cx, c->key, (size_t)c->ival);
		c_put1(cx, (int)(c->keylen - (size_t)c->ival));
		c_put(cx, c->key + c->ival, c->keylen - (size_t)c->ival);
		return 0;
	default:
		if (c_singleton(c->kind) >= 0) {
			c_put1(cx, c->kind);
			return 0;
		}
		break; /* tuple, frozenset, slice */
	}

	type = o->type == MARSHAL_TUPLE || o->type == MARSHAL_SMALL_TUPLE
		       ? (o->nitems < 256 ? MARSHAL_SMALL_TUPLE : MARSHAL_TUPLE)
		       : o->type;
	c_put1(cx, type);
	switch (type) {
	case MARSHAL_SMALL_TUPLE:
		c_put1(cx, (int)o->nitems);
		break;
	case MARSHAL_TUPLE:
	case MARSHAL_LIST:
	case MARSHAL_SET:
	case MARSHAL_FROZENSET:
		if (o->nitems > INT32_MAX)
			return c_error(o, "too long");
		c_put_le32(cx, o->nitems);
		break;
	case MARSHAL_DICT:
		if (!o->nitems || o->items[o->nitems - 1]->type != MARSHAL_NULL)
			return c_error(o, "dict not ended by a null");
		break;
	case MARSHAL_SLICE:
		if (!cx->slices || o->nitems != 3)
			return c_error(o, "not a slice of this version");
		break;
	case MARSHAL_CODE:
		return c_emit_code(cx, o, pos, depth);
	default:
		return c_error(o, "unknown type");
	}
	return c_emit_items(cx, o, pos, depth);
}

/*
 * Now that the walk is done: FLAG_REF on the first occurrence of each class
 * met again (or, small, met too deep), indexes in the order those were
 * written, and those indexes in the 'r's.
 */
static int c_fix(struct canon *cx)
{
	unsigned char *out = (unsigned char *)cx->out->buf;
	uint32_t next = 0;
	size_t i;

	for (i = 0; i < cx->norder; i++) {
		uint32_t id = cx->order[i];
		struct cclass *c;

		if (!(cx->state[id] & (CS_AGAIN | CS_DEEP)))
			continue;
		c = &cx->classes[id];
		if (next >= 0x7ffffffe)
			return c_error(c->node, "too many shared objects");
		cx->index[id] = next++;
		out[c->at] |= MARSHAL_FLAG_REF;
	}
	for (i = 0; i < cx->nfixes; i++)
		put_le32(out + cx->fixes[i].at + 1, cx->index[cx->fixes[i].cls]);
	return 0;
}

static void canon_release(struct canon *cx)
{
	size_t i;

	for (i = 0; i < cx->nowned; i++)
		free(cx->owned[i]);
	free(cx->owned);
	free(cx->classes);
	free(cx->table);
	free(cx->ids);
	free(cx->stack);
	free(cx->nodes);
	free(cx->refs);
	free(cx->pending);
	free(cx->state);
	free(cx->order);
	free(cx->index);
	free(cx->fixes);
	strbuf_release(&cx->scratch);
}

/*
 * Tables and output sized once from the parsed tree (root is a tree's, see
 * marshal.h) instead of grown as the walks go (reallocating them was a tenth
 * of the time): a node per node, at most a class and an 'r' per node, a
 * table at most half full, output about the input's size.  Past
 * CANON_PRESIZE_MAX nodes (a pathological input: most are a few hundred)
 * the classes and 'r's start smaller and grow if they must.
 */
#define CANON_PRESIZE_MAX ((size_t)1 << 16)

static void canon_size(struct canon *cx, const struct tree *t)
{
	size_t n = st_add(t->nnodes, sizeof(canon_singletons));
	size_t m = n < CANON_PRESIZE_MAX ? n : CANON_PRESIZE_MAX;

	cx->nodes = xmalloc(st_mult(n, sizeof(*cx->nodes)));
	cx->nodes_alloc = n;
	cx->classes = xmalloc(st_mult(m, sizeof(*cx->classes)));
	cx->classes_alloc = m;
	cx->fixes = xmalloc(st_mult(m, sizeof(*cx->fixes)));
	cx->fixes_alloc = m;
	cx->table_size = 64;
	while (cx->table_size < 2 * m)
		cx->table_size *= 2;
	cx->table = xcalloc(cx->table_size, sizeof(*cx->table));
	strbuf_grow(cx->out, st_add(t->len, 64));
}

int marshal_write_canonical(const struct mobj *root, const struct marshal_version *v,
			    struct strbuf *out)
{
	struct canon cx;
	size_t start = out->len, i;
	uint32_t id;
	int rc = -1;

	memset(&cx, 0, sizeof(cx));
	strbuf_init(&cx.scratch, 0);
	cx.out = out;
	cx.layout = marshal_code_layout(v, &cx.nfields);
	if (!cx.layout)
		return error("cannot write marshal data for python %d.%d", v->major, v->minor);
	cx.slices = v->minor >= 14;
	cx.pypy = v->pypy;
	for (i = 0; i < cx.nfields; i++)
		if (cx.layout[i].kind == 'i')
			cx.nints++;
	canon_size(&cx, (const struct tree *)root);
	for (i = 0; canon_singletons[i]; i++) {
		id = c_lookup(&cx, canon_singletons[i], 0, NULL, 0, NULL, 0, 1, NULL, 0);
		if (id != i)
			BUG("canonical marshal: singleton classes out of order");
	}
	if (c_classify(&cx, root, 1, &id) < 0)
		goto out;
	for (i = 0; i < cx.npending; i++) {
		struct cnode *n = &cx.nodes[cx.pending[i]];

		n->cls = cx.refs[n->cls].cls;
		if (n->cls == CANON_PENDING)
			BUG("canonical marshal: reference never resolved");
	}
	cx.state = xcalloc(cx.nclasses, sizeof(*cx.state));
	cx.order = xcalloc(cx.nclasses, sizeof(*cx.order));
	cx.index = xcalloc(cx.nclasses, sizeof(*cx.index));
	for (i = 0; i < cx.nclasses; i++)
		if (c_small(&cx.classes[i]))
			cx.state[i] = CS_SMALL;
	rc = c_emit(&cx, root, 0, 1);
	if (!rc)
		rc = c_fix(&cx);
out:
	strbuf_setlen(out, rc < 0 ? start : out->len);
	canon_release(&cx);
	return rc;
}
