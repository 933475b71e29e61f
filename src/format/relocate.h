/*
 * relocate.h - give compiled code another co_filename, exactly as a compile
 * of the same source under that name would have it.
 *
 * Compiling a source under a name (py_compile's dfile) records that name
 * as the co_filename of every code object made, and nowhere else.  So the code of a source
 * compiled as "a/x.py" becomes the code of the same source compiled as
 * "b/c/x.py" by replacing every co_filename; written in the canonical form
 * (marshal_write_canonical(), a pure function of the value) it then has
 * exactly the bytes the canonical form of that other compile has.  The
 * bytecode cache serves one entry to every path of a file that way (a
 * second virtualenv, another checkout directory).
 *
 * What makes it exact:
 *   - the new name is a new node of the tree: a node may be shared through
 *     'r' (and, in the canonical form, equal texts are one object), so no
 *     node is changed in place; each co_filename (or 'r' to one) is
 *     replaced by a new text node (or an 'r' to that), keeping its place,
 *     FLAG_REF and index, so the reader's reference table is unchanged;
 *   - the new text is interned exactly when the name it replaces was (3.13
 *     interns co_filename, earlier versions do not): the canonical writer
 *     takes a text's type code from whether any occurrence was interned;
 *   - the old name must occur nowhere but as co_filename: a constant equal
 *     to it (a file holding its own path) shares the name's value, and in
 *     the canonical form its object, so whether that constant was itself
 *     interned cannot be told; such code is refused.
 *
 * Both names must be ASCII (any other text would need the file system
 * encoding the compiling interpreter decoded the path with): the cache
 * keeps a non-ASCII path's entries path-specific (cachekey.h).
 *
 * Calling sequence: marshal_parse() -> marshal_relocate() ->
 * marshal_write_canonical() -> mobj_free().
 *
 * The splice.  The cache holds the canonical form, where every co_filename
 * after the first is an 'r' to it: there the whole rewrite is replacing
 * the first name's bytes, the rest of the stream unchanged (no index
 * moves).  marshal_relocate_splice() does that, about ten times cheaper
 * than writing the canonical form again, when nothing in the code could
 * make the canonical writer treat the new name apart: neither name
 * occurs but as co_filename, neither is short (under 4 characters) or
 * made only of [A-Za-z0-9_] (PyPy interns such text), and the first name
 * is encoded as the canonical writer encodes it.  Otherwise it refuses
 * and the caller takes the way above.  Its output is the canonical
 * form's only if its input is canonical; the unit tests hold both ways to
 * the same bytes.  Sequence: marshal_parse() ->
 * marshal_relocate_splice() (-1: marshal_relocate() ->
 * marshal_write_canonical()) -> mobj_free().
 *
 * Errors: returns -1 and fills `err` (offset of the node at fault, a
 * lowercase reason; prints nothing) when the code cannot be relocated
 * exactly; the tree may then be partly changed: only free it.
 *
 * Ownership: the new nodes and the new name's copy live in the tree's
 * memory (tree_extra(), marshal-int.h) and go with mobj_free(root); the
 * nodes they replace stay there, unreachable.  Pure; thread-safe for
 * distinct trees.
 */
#ifndef RELOCATE_H
#define RELOCATE_H

#include <stddef.h>

#include "marshal.h"

/*
 * Set every co_filename of the code object `root` (a tree marshal_parse()
 * gave in `v`'s layout) to the `len` bytes at `dfile`.  0, or -1 with `err`
 * filled when that cannot be done exactly: `root` is not a code object,
 * a co_filename is not text or differs from the outermost one's, either
 * name is not ASCII, or the old name occurs elsewhere in the code.
 */
int marshal_relocate(struct mobj *root, const struct marshal_version *v, const char *dfile,
		     size_t len, struct marshal_err *err);

/*
 * The canonical stream `in` (`n` bytes, which marshal_parse() turned into
 * `root` in `v`'s layout) with every co_filename set to the `len` bytes
 * at `dfile`, appended to `out` by replacing the first name's bytes.  0,
 * or -1 with `out` and `root` untouched when the splice could differ from
 * marshal_relocate() then marshal_write_canonical() (see above) or that
 * refuses.
 */
int marshal_relocate_splice(struct mobj *root, const struct marshal_version *v,
			    const unsigned char *in, size_t n, const char *dfile, size_t len,
			    struct strbuf *out);

#endif
