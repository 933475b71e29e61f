/*
 * marshal.h - read, and write back, the marshal stream that is a pyc's body.
 *
 * A pyc is a header (pyc.h) followed by `marshal.dumps(code)`.  This module
 * parses that stream into a tree of `struct mobj` exactly as the target's
 * `marshal.loads` would read it, so that `prepyc check` can say whether a
 * pyc is corrupt, and so that a re-encoder can rewrite the stream.
 * Semantics follow CPython's Python/marshal.c of each language version
 * (3.6-3.14; PyPy writes the CPython layout of its language version).
 *
 * The stream (all integers little-endian; u32/i32 are 4 bytes, u16 2):
 *
 *   object   = code:u8 payload          code = type | FLAG_REF (0x80)?
 *   '0' null  'N' None  'F' False  'T' True  'S' StopIteration  '.' Ellipsis
 *                                                    (no payload)
 *   'i' int            i32
 *   'I' int64          i64                          (read, never written)
 *   'l' long           n:i32, |n| digits u16 (0..32767, last nonzero), sign of n
 *   'g' float          8 bytes IEEE double;  'y' complex  16 bytes
 *   'f' float (text)   n:u8, n chars;        'x' complex  two of those
 *   's' bytes          n:u32, n bytes
 *   't' 'u'            n:u32, n bytes UTF-8 (surrogates allowed); 't' interned
 *   'a' 'A'            n:u32, n bytes (read as Latin-1); 'A' interned
 *   'z' 'Z'            n:u8,  n bytes (read as Latin-1); 'Z' interned
 *   '(' tuple          n:u32, n objects;  ')' small tuple  n:u8, n objects
 *   '[' list           n:u32, n objects
 *   '{' dict           key value ... '0'        (ends at a null key or value)
 *   '<' set  '>' frozenset  n:u32, n objects
 *   ':' slice          start stop step           (3.14+)
 *   '}' frozendict     key value ... '0'        (3.15+; as a dict, registered once complete)
 *   'c' code           fields, per version (marshal_code_layout())
 *   'r' reference      index:u32
 *
 * References: every object read with FLAG_REF takes the next index of a
 * table, in the order its type byte is read (so a container's index is
 * below its children's); 'r' INDEX stands for that object.  The singletons
 * ('0' 'N' 'F' 'T' 'S' '.') and 'r' itself never take an index, whatever
 * their flag.  Tuples, lists, dicts, sets and scalars are usable from the
 * moment their type byte is read (CPython can build cycles through them);
 * frozensets, code objects and slices only once complete: a reference to
 * one of those while it is being read is an error, as in CPython.
 *
 * What is checked, beyond the grammar: everything CPython's reader rejects
 * -- sizes out of range, long digits, UTF-8 of 't'/'u', the text of 'f'/'x',
 * unknown type codes (':' before 3.14), references to indexes not (yet)
 * filled, nesting deeper than MARSHAL_MAX_DEPTH, null where an object is
 * needed, unhashable dict keys and set elements -- and what CPython's code
 * object constructor rejects: field types (bytes, str, tuple, tuple of
 * str), negative counts, per version the argument counts against the
 * names, and (3.11+) odd-sized bytecode.  The e2e tests hold this to each
 * target's own marshal.load on mutated pycs.  Deliberate differences:
 *   - trailing bytes after the object are an error (marshal.loads ignores
 *     them);
 *   - a null among a code object's fields is an error (CPython < 3.14
 *     returns null silently, which ends an enclosing dict there);
 *   - for PyPy (v->pypy, checked against PyPy 3.9): 'a'/'A'/'z'/'Z' must
 *     be ASCII (CPython takes any byte as Latin-1), 't'/'u' may hold any
 *     bytes (PyPy decodes them leniently), and CPython's code constructor
 *     count rules are not applied (PyPy has its own);
 *   - bytecode and line tables are not looked into (a mutated opcode can
 *     crash CPython 3.12 as it loads the code; nothing here can tell).
 *
 * Calling sequence: marshal_parse() -> use the tree -> mobj_free(); or
 * marshal_check() when only the verdict matters.  marshal_write() turns a
 * tree back into bytes: a parsed tree comes back byte for byte.
 *
 * Errors: marshal_parse() and marshal_check() return -1 and fill `err`
 * (they print nothing).  Whatever the bytes, the input is never read out
 * of bounds, the recursion is bounded by MARSHAL_MAX_DEPTH, and a declared
 * length is checked against what is left before anything is allocated for
 * it: memory stays under about 100 bytes per input byte (a node per
 * object, and every object takes at least one byte).
 *
 * Ownership: the tree owns every node and a copy of every payload (it does
 * not point into the input); 'r' nodes point at their target without
 * owning it.  Through 'r' the graph can have cycles (a list holding
 * itself), never through the owning `items` links.  The nodes, items arrays
 * and payloads live in a few blocks that belong to the root: only the root
 * is ever freed, and nodes are not moved between trees or freed alone.
 */
#ifndef MARSHAL_H
#define MARSHAL_H

#include <stddef.h>
#include <stdint.h>

struct strbuf;

enum marshal_type {
	MARSHAL_NULL = '0',
	MARSHAL_NONE = 'N',
	MARSHAL_FALSE = 'F',
	MARSHAL_TRUE = 'T',
	MARSHAL_STOPITER = 'S',
	MARSHAL_ELLIPSIS = '.',
	MARSHAL_INT = 'i',
	MARSHAL_INT64 = 'I',
	MARSHAL_LONG = 'l',
	MARSHAL_FLOAT = 'f',
	MARSHAL_BINARY_FLOAT = 'g',
	MARSHAL_COMPLEX = 'x',
	MARSHAL_BINARY_COMPLEX = 'y',
	MARSHAL_STRING = 's',
	MARSHAL_INTERNED = 't',
	MARSHAL_UNICODE = 'u',
	MARSHAL_ASCII = 'a',
	MARSHAL_ASCII_INTERNED = 'A',
	MARSHAL_SHORT_ASCII = 'z',
	MARSHAL_SHORT_ASCII_INTERNED = 'Z',
	MARSHAL_TUPLE = '(',
	MARSHAL_SMALL_TUPLE = ')',
	MARSHAL_LIST = '[',
	MARSHAL_DICT = '{',
	MARSHAL_FROZENDICT = '}', /* 3.15+ (PEP 814), marshal version 6 */
	MARSHAL_SET = '<',
	MARSHAL_FROZENSET = '>',
	MARSHAL_SLICE = ':',
	MARSHAL_CODE = 'c',
	MARSHAL_REF = 'r',
};

#define MARSHAL_FLAG_REF 0x80
/* CPython's MAX_MARSHAL_STACK_DEPTH: the top object is at depth 1. */
#define MARSHAL_MAX_DEPTH 2000

/* The language version whose layout the stream has; pypy is 0 or 1. */
struct marshal_version {
	int major, minor;
	int pypy;
};

/*
 * One object of the stream, as written.  Which fields mean something
 * depends on `type`:
 *
 *   data, len  the payload that is neither a child object nor a length
 *              the type implies, copied and followed by a NUL:
 *              'i' 4 bytes, 'I' 8, 'g' 8, 'y' 16 (as in the stream);
 *              'l' the 2*|ival| digit bytes; 'f' the text; 'x' the real
 *              part's text then the imaginary part's (ival = the first's
 *              length); strings and bytes their contents; 'c' the integer
 *              fields, 4 bytes each, in stream order.
 *   ival       'i' the value; 'l' the signed digit count; 'x' see above.
 *   items      the child objects in stream order: tuple, list, set,
 *              frozenset elements; slice start, stop, step; 'c' the object
 *              fields; '{' and '}' key, value, key, value, ..., then the '0' that
 *              ended it (a key left without value, if the stream had one,
 *              comes just before that '0').
 *   ref        'r' the index referred to; a flagged object its own index.
 *   target     'r' the object referred to (not owned).
 */
struct mobj {
	unsigned char type;	/* enum marshal_type: the code without FLAG_REF */
	unsigned char flag_ref; /* 1 when the code had FLAG_REF */
	unsigned char busy;	/* parser's: still reading its children */
	unsigned char hashable; /* parser's: hash() of it would succeed */
	uint32_t ref;
	int64_t ival;
	size_t offset; /* of the type byte in the parsed input */
	size_t len;
	unsigned char *data;
	size_t nitems;
	struct mobj **items;
	struct mobj *target;
};

/* Where and why marshal_parse() failed; msg is one lowercase line. */
struct marshal_err {
	size_t offset;
	char msg[160];
};

/*
 * A code object's fields in stream order: kind is 'i' for an i32 field
 * and, for object fields, what the constructor requires: 'b' bytes,
 * 's' str, 't' tuple, 'n' tuple of str.
 */
struct marshal_code_field {
	const char *name;
	char kind;
};

/*
 * The code object layout of version `v`; *nfields gets the count.  NULL
 * for a version this module does not know (before 3.6, or not 3.x).
 * 3.15 and later are assumed to be laid out as 3.14.
 */
const struct marshal_code_field *marshal_code_layout(const struct marshal_version *v,
						     size_t *nfields);

/*
 * Parse the `len` bytes at `data` as one marshal object in version `v`'s
 * layout; the object must end exactly at `len`.  Returns 0 and sets *out
 * to the tree (free it with mobj_free()), or -1 with *out NULL and `err`
 * (may be NULL) describing the first problem.
 */
int marshal_parse(const unsigned char *data, size_t len, const struct marshal_version *v,
		  struct mobj **out, struct marshal_err *err);

/* marshal_parse() without keeping the tree. */
int marshal_check(const unsigned char *data, size_t len, const struct marshal_version *v,
		  struct marshal_err *err);

/* Free the tree whose root marshal_parse() gave (NULL is fine), all of it at once. */
void mobj_free(struct mobj *o);

/*
 * Append the stream for `root` to `out`: each node with its own type code
 * and FLAG_REF bit, 'r' nodes as 'r' + their index, code objects in `v`'s
 * layout.  Returns 0, or -1 (printing an error, `out` partly appended)
 * when the tree cannot be written: a count that does not fit its type's
 * length field, a code object with the wrong number of fields for `v`, a
 * dict not ended by '0', nesting deeper than MARSHAL_MAX_DEPTH.
 */
int marshal_write(const struct mobj *root, const struct marshal_version *v, struct strbuf *out);

/*
 * Append to `out` the canonical form of the stream `root` was parsed from
 * (in `v`'s layout): a stream that loads to an equal object and depends only
 * on that object's value, not on how the writing process shared or interned
 * its objects (marshal.dumps decides FLAG_REF from reference counts, and
 * from 3.12 interned strings are immortal, so the same code object comes out
 * differently after compiling other modules: gh-129724, gh-98819).
 *
 *   value class  Two objects are one value when both are immutable constants
 *                of the same kind and value: text (t u a A z Z, compared as
 *                decoded text), bytes, ints (i I l, by value), 'g' floats and
 *                'y' complexes by their IEEE bytes (0.0 is not -0.0; NaNs
 *                by bits), 'f' and 'x' by their text, tuples (either code)
 *                and slices whose items are pairwise one value, frozensets
 *                with the same items in any order (written in value
 *                order: kind, then number, payload, items; a set's
 *                iteration order is its process's history).  Code objects,
 *                lists, dicts, sets and any container holding one (or a
 *                reference back into an unfinished container) are each a
 *                value of their own, shared only where the input has 'r'.
 *   walk         Objects are written in marshal's order; a value met again
 *                in that walk is written as 'r' + u32 index and its
 *                contents are not walked again.
 *   sharing      A value met more than once in the walk has FLAG_REF on its
 *                first occurrence and is 'r' afterwards; indexes count from
 *                0 in the order flagged objects are written.  A value met
 *                once has no FLAG_REF.  Exceptions: the singletons 0 N F T S
 *                and . are one bare byte each; a value whose whole encoding
 *                is shorter than an 'r' (5 bytes: '', 'ab', (), (None,), ...)
 *                is written in full every time, never flagged -- unless an
 *                occurrence sits where writing it in full would nest deeper
 *                than MARSHAL_MAX_DEPTH: then it is flagged on its first
 *                occurrence and 'r' at those places only.
 *   type codes   Text: ASCII -> 'z' (length < 256) or 'a', else 'u' (UTF-8,
 *                surrogates as CPython writes them); 'Z' 'A' 't' when any
 *                occurrence of the value in the input was interned -- but
 *                '' and one-character text below U+0100 are interned exactly
 *                when made of [A-Za-z0-9_] (CPython's rule for constants):
 *                CPython has one object for each of those per process, so
 *                whether it is interned is the process's history.  Ints:
 *                'i' when in [-2**31, 2**31), else 'l'.  Tuples: ')' below
 *                256 items, else '('.  Everything else keeps its code.
 *   PyPy         Text is written interned exactly when it is made of
 *                [A-Za-z0-9_] only (CPython's rule for interning constants):
 *                PyPy writes a string interned when any string of its value
 *                has been interned in the writing process so far, which is
 *                history, not value (and loading does not depend on it).
 *                't'/'u' bytes that are not UTF-8 (PyPy reads them
 *                leniently) are one value only with the same bytes.
 *
 * Properties (tests/e2e/test_canon.py checks them on the stdlib of every
 * interpreter, the fuzz target on whatever the parser accepts):
 * marshal.loads gives an equal object; canonical(canonical(x)) is
 * canonical(x); equal values give equal bytes; the result is never longer
 * than the input, except that a non-ASCII 'a'/'z' (Latin-1) becomes UTF-8
 * 'u' and an 'I' may become a longer 'l' -- neither is written by CPython 3
 * or PyPy.
 *
 * `root` must be a root marshal_parse() gave (its tables are sized from
 * the tree; an 'r' node's `ref` must be the index the reader gives its
 * target).  Returns 0, or -1 (printing an error, `out` left as it was) when
 * the tree cannot be written, as marshal_write().
 */
int marshal_write_canonical(const struct mobj *root, const struct marshal_version *v,
			    struct strbuf *out);

#endif
