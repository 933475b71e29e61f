/*
 * canon.c - marshal_write_canonical(): a parsed marshal tree written back
 * in prepyc's canonical form, whose bytes depend only on the value it holds
 * (see marshal.h and ARCHITECTURE.md, "The canonical form").
 *
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
#define _POSIX_C_SOURCE 200809L
#include "marshal.h"

#include <stdlib.h>
#include <string.h>

#include "marshal-int.h"
#include "strbuf.h"
#include "util.h"
#include "banned.h"

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
	CS_NEVER_REF = 1 << 4, /* never an 'r' to it, even too deep (a frozendict) */
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
	int frozendicts;
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
	case MARSHAL_FROZENDICT:
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
			if (!(*state & CS_WRITTEN) || (*state & CS_NEVER_REF))
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
	case MARSHAL_FROZENDICT:
		if (!cx->frozendicts)
			return c_error(o, "not a frozendict of this version");
		/* fall through */
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
	cx.frozendicts = v->minor >= 15;
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
	for (i = 0; i < cx.nclasses; i++) {
		if (c_small(&cx.classes[i]))
			cx.state[i] = CS_SMALL;
		/* 3.15's betas and candidates cannot load an 'r' to a frozendict (gh-155315) */
		if (cx.classes[i].kind == MARSHAL_FROZENDICT)
			cx.state[i] = CS_SMALL | CS_NEVER_REF;
	}
	rc = c_emit(&cx, root, 0, 1);
	if (!rc)
		rc = c_fix(&cx);
out:
	strbuf_setlen(out, rc < 0 ? start : out->len);
	canon_release(&cx);
	return rc;
}
