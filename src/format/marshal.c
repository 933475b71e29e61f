#define _POSIX_C_SOURCE 200809L
#include "marshal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "marshal-int.h"
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

/* struct tree, the memory of a parsed tree: see marshal-int.h. */

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
	int frozendicts;     /* '}' is a type (3.15+) */
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

void *tree_extra(struct mobj *root, size_t n)
{
	struct tree *t = (struct tree *)root;
	size_t head = TREE_ROUND(sizeof(struct tree_block));
	void *p;

	n = TREE_ROUND(n);
	if ((size_t)(t->end - t->next) < n) {
		size_t size = n < 4096 ? 4096 : n;
		struct tree_block *b = xmalloc(st_add(head, size));

		b->next = t->more;
		t->more = b;
		t->next = (unsigned char *)b + head;
		t->end = t->next + size;
	}
	p = t->next;
	t->next += n;
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

/* What PyUnicode_DecodeUTF8(s, n, "surrogatepass") accepts. */
int utf8_surrogatepass_ok(const unsigned char *s, size_t n, size_t *bad)
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

/*
 * Dicts and frozendicts: key value pairs up to a null.  A frozendict is
 * registered once complete, as a frozenset (an 'r' inside it cannot name
 * it), and is hashable when its values are.
 */
static struct mobj *r_dict(struct parser *ps, int code, size_t off)
{
	struct mobj *o = new_node(ps, code, off);
	int frozen = (code & ~MARSHAL_FLAG_REF) == MARSHAL_FROZENDICT;
	size_t base = ps->nstack, i;

	if (take_slot(ps, o, !frozen) < 0)
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
	if (frozen) {
		o->hashable = 1;
		for (i = 1; i < o->nitems; i += 2)
			if (!o->items[i]->hashable)
				o->hashable = 0;
		fill_slot(ps, o);
	}
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
	case MARSHAL_FROZENDICT:
		if (ps->frozendicts)
			return r_dict(ps, code, off);
		fail(ps, off, "unknown type code 0x%02x", (unsigned)code);
		return NULL;
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
	ps->frozendicts = v->minor >= 15;
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
	int frozendicts;
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
	case MARSHAL_FROZENDICT:
		if (!w->frozendicts)
			return w_error(o, "not a frozendict of this version");
		/* fall through */
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
	w.frozendicts = v->minor >= 15;
	w.out = out;
	return w_object(&w, root, 1);
}
