/*
 * marshal-int.h - what the marshal reader (marshal.c) and the canonical
 * writer (canon.c) share: the memory of a parsed tree, which the canonical
 * writer sizes its tables from, and the byte scans both run over payloads.
 * Not an interface: everything else uses marshal.h.
 */
#ifndef MARSHAL_INT_H
#define MARSHAL_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "marshal.h"

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

/*
 * `n` more bytes in the memory of the tree whose root marshal_parse() gave
 * (aligned for a node; freed with it by mobj_free()): for code that adds
 * nodes to a parsed tree (relocate.c).  Such a node counts in `nnodes`
 * only if its adder increments it.
 */
void *tree_extra(struct mobj *root, size_t n);

/*
 * The last n % 8 bytes of s[0..n) in a word, with some bytes before them
 * (or again): overlapping loads instead of a byte loop whose length the
 * branch predictor cannot guess (most names are short).  Good for an OR
 * of the bytes, and for a hash of n bytes that has hashed n.
 */
static inline uint64_t tail_word(const unsigned char *s, size_t n)
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
static inline int all_ascii(const unsigned char *s, size_t n)
{
	uint64_t w, any = 0;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&w, s + i, 8);
		any |= w;
	}
	return !((any | tail_word(s, n)) & 0x8080808080808080ULL);
}

/* Only [A-Za-z0-9_]: CPython's all_name_chars(), which text PyPy interns (canon.c, relocate.c). */
static inline int all_name_chars(const unsigned char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

/* What PyUnicode_DecodeUTF8(s, n, "surrogatepass") accepts. */
int utf8_surrogatepass_ok(const unsigned char *s, size_t n, size_t *bad);

#endif
