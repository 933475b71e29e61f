/*
 * relocate.c - marshal_relocate(): every co_filename of a parsed code
 * object replaced by another name (see relocate.h).
 *
 * One walk of the tree in stream order, through the owning `items` links
 * ('r' nodes are leaves).  A co_filename that is text gets a new text node
 * in its place; if it was flagged, its index maps to that new node, and a
 * later co_filename that is an 'r' to it gets a new 'r' to the new node.
 * Any other text equal to the old name, or 'r' to one, refuses.
 *
 * marshal_relocate_splice() walks the same way without changing the tree,
 * and copies the stream with the one text that is the name replaced.
 */
#define _POSIX_C_SOURCE 200809L
#include "relocate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "marshal-int.h"
#include "strbuf.h"
#include "util.h"
#include "banned.h"

struct reloc {
	struct mobj *root;
	size_t fname;		   /* co_filename's place among a code object's items */
	size_t nobj;		   /* a code object's items */
	const unsigned char *old;  /* the name replaced (ASCII) */
	size_t oldlen;
	unsigned char *name;	   /* the new name, in the tree's memory, NUL-ended */
	size_t namelen;
	struct mobj **made;	   /* by reference index: the new node of a flagged co_filename */
	const struct mobj **was;   /* ...and the node it replaced */
	size_t nmade, made_alloc, was_alloc;
	struct marshal_err *err;
};

static int refuse(struct reloc *rl, const struct mobj *o, const char *why)
{
	if (rl->err) {
		rl->err->offset = o->offset;
		snprintf(rl->err->msg, sizeof(rl->err->msg), "cannot relocate: %s", why);
	}
	return -1;
}

static int is_text(int type)
{
	return type == MARSHAL_INTERNED || type == MARSHAL_UNICODE || type == MARSHAL_ASCII ||
	       type == MARSHAL_ASCII_INTERNED || type == MARSHAL_SHORT_ASCII ||
	       type == MARSHAL_SHORT_ASCII_INTERNED;
}

static int is_interned(int type)
{
	return type == MARSHAL_INTERNED || type == MARSHAL_ASCII_INTERNED ||
	       type == MARSHAL_SHORT_ASCII_INTERNED;
}

static int is_ascii(const unsigned char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] & 0x80)
			return 0;
	return 1;
}

/*
 * Text holding the old name.  The old name is ASCII, whose bytes are the
 * same in every text encoding marshal has (Latin-1 'a'/'z', UTF-8 'u'/'t').
 */
static int is_old_name(const struct reloc *rl, const struct mobj *o)
{
	return o && is_text(o->type) && o->len == rl->oldlen && !memcmp(o->data, rl->old, o->len);
}

static struct mobj *new_node(struct reloc *rl, const struct mobj *like)
{
	struct mobj *n = tree_extra(rl->root, sizeof(*n));

	*n = *like;
	((struct tree *)rl->root)->nnodes++;
	return n;
}

/* The new name in place of the text node `o`: interned when it was, same flag and index. */
static struct mobj *new_name(struct reloc *rl, const struct mobj *o)
{
	struct mobj *n = new_node(rl, o);
	int interned = is_interned(o->type);

	if (rl->namelen < 256)
		n->type = interned ? MARSHAL_SHORT_ASCII_INTERNED : MARSHAL_SHORT_ASCII;
	else
		n->type = interned ? MARSHAL_ASCII_INTERNED : MARSHAL_ASCII;
	n->data = rl->name;
	n->len = rl->namelen;
	n->nitems = 0;
	n->items = NULL;
	n->target = NULL;
	return n;
}

static void remember(struct reloc *rl, const struct mobj *was, struct mobj *made)
{
	size_t i;

	if (was->ref >= rl->nmade) {
		ALLOC_GROW(rl->made, st_add(was->ref, 1), rl->made_alloc);
		ALLOC_GROW(rl->was, st_add(was->ref, 1), rl->was_alloc);
		for (i = rl->nmade; i <= was->ref; i++) {
			rl->made[i] = NULL;
			rl->was[i] = NULL;
		}
		rl->nmade = (size_t)was->ref + 1;
	}
	rl->made[was->ref] = made;
	rl->was[was->ref] = was;
}

/* A code object's co_filename slot: the new name, or an 'r' to the new name. */
static int relocate_slot(struct reloc *rl, struct mobj **slot)
{
	struct mobj *o = *slot, *n;

	if (o->type == MARSHAL_REF) {
		if (o->ref >= rl->nmade || !rl->made[o->ref] || rl->was[o->ref] != o->target)
			return refuse(rl, o, "a co_filename refers to an object that is not one");
		n = new_node(rl, o);
		n->target = rl->made[o->ref];
		*slot = n;
		return 0;
	}
	if (!is_old_name(rl, o))
		return refuse(rl, o, "the code objects' co_filename differ");
	n = new_name(rl, o);
	if (o->flag_ref)
		remember(rl, o, n);
	*slot = n;
	return 0;
}

static int walk(struct reloc *rl, struct mobj *o)
{
	size_t i;

	if (o->type == MARSHAL_REF)
		return is_old_name(rl, o->target)
			       ? refuse(rl, o, "the file name is also a constant or a name")
			       : 0;
	if (is_old_name(rl, o))
		return refuse(rl, o, "the file name is also a constant or a name");
	if (o->type == MARSHAL_CODE && o->nitems != rl->nobj)
		return refuse(rl, o, "a code object of another layout");
	for (i = 0; i < o->nitems; i++) {
		int rc = o->type == MARSHAL_CODE && i == rl->fname ? relocate_slot(rl, &o->items[i])
								    : walk(rl, o->items[i]);

		if (rc < 0)
			return -1;
	}
	return 0;
}

/* What both ways start from: the layout, the old name (rl->old), the new one checked. */
static int reloc_init(struct reloc *rl, struct mobj *root, const struct marshal_version *v,
		      const char *dfile, size_t len, struct marshal_err *err)
{
	const struct marshal_code_field *layout;
	const struct mobj *old;
	size_t nfields, i;

	memset(rl, 0, sizeof(*rl));
	rl->root = root;
	rl->err = err;
	layout = marshal_code_layout(v, &nfields);
	if (!layout || root->type != MARSHAL_CODE)
		return refuse(rl, root, "not a code object of a known version");
	rl->fname = SIZE_MAX;
	for (i = 0; i < nfields; i++) {
		if (layout[i].kind == 'i')
			continue;
		if (!strcmp(layout[i].name, "filename"))
			rl->fname = rl->nobj;
		rl->nobj++;
	}
	if (rl->fname == SIZE_MAX)
		BUG("code layout %d.%d without co_filename", v->major, v->minor);
	if (root->nitems != rl->nobj)
		return refuse(rl, root, "a code object of another layout");
	old = root->items[rl->fname];
	if (old->type == MARSHAL_REF)
		old = old->target;
	if (!old || !is_text(old->type) || !is_ascii(old->data, old->len))
		return refuse(rl, root, "co_filename is not ASCII text");
	if (!is_ascii((const unsigned char *)dfile, len))
		return refuse(rl, root, "the new file name is not ASCII");
	rl->old = old->data;
	rl->oldlen = old->len;
	return 0;
}

int marshal_relocate(struct mobj *root, const struct marshal_version *v, const char *dfile,
		     size_t len, struct marshal_err *err)
{
	struct reloc rl;
	int rc;

	if (reloc_init(&rl, root, v, dfile, len, err) < 0)
		return -1;
	rl.name = tree_extra(root, st_add(len, 1));
	memcpy(rl.name, dfile, len);
	rl.name[len] = '\0';
	rl.namelen = len;
	rc = walk(&rl, root);
	free(rl.made);
	free(rl.was);
	return rc;
}

/* ---- the splice -------------------------------------------------------- */

/*
 * Not text the canonical writer may treat apart (canon.c): one character
 * or none (one object per process in CPython), only [A-Za-z0-9_] (PyPy
 * interns those), short enough to be written in full instead of an 'r'.
 */
static int plain_name(const unsigned char *s, size_t n)
{
	return n >= 4 && !all_name_chars(s, n);
}

/* The splice's walk: every co_filename the first one or an 'r' to it, neither name elsewhere. */
static int splice_walk(const struct reloc *rl, const struct mobj *o, const struct mobj *first)
{
	size_t i;

	if (o->type == MARSHAL_REF)
		return o->target == first ? -1 : 0;
	if (is_old_name(rl, o) ||
	    (is_text(o->type) && o->len == rl->namelen && !memcmp(o->data, rl->name, o->len)))
		return -1;
	if (o->type == MARSHAL_CODE && o->nitems != rl->nobj)
		return -1;
	for (i = 0; i < o->nitems; i++) {
		const struct mobj *item = o->items[i];

		if (o->type == MARSHAL_CODE && i == rl->fname) {
			if (item != first && (item->type != MARSHAL_REF || item->target != first))
				return -1;
			continue;
		}
		if (splice_walk(rl, item, first) < 0)
			return -1;
	}
	return 0;
}

int marshal_relocate_splice(struct mobj *root, const struct marshal_version *v,
			    const unsigned char *in, size_t n, const char *dfile, size_t len,
			    struct strbuf *out)
{
	const struct mobj *first;
	struct reloc rl;
	size_t was, at;
	int type;

	if (reloc_init(&rl, root, v, dfile, len, NULL) < 0)
		return -1;
	/* the first name in the stream: in the first code object of the deepest first */
	first = root->items[rl.fname];
	if (first->type == MARSHAL_REF)
		first = first->target;
	rl.name = (unsigned char *)dfile;
	rl.namelen = len;
	if (!plain_name(rl.old, rl.oldlen) ||
	    !plain_name(rl.name, rl.namelen))
		return -1;
	/* the canonical writer's encoding of ASCII text (c_emit_text()) */
	if ((first->type == MARSHAL_SHORT_ASCII || first->type == MARSHAL_SHORT_ASCII_INTERNED) !=
	    (first->len < 256))
		return -1;
	was = (first->len < 256 ? 2 : 5) + first->len;
	at = first->offset;
	if (at > n || n - at < was || splice_walk(&rl, root, first) < 0)
		return -1;
	if (len < 256)
		type = is_interned(first->type) ? MARSHAL_SHORT_ASCII_INTERNED : MARSHAL_SHORT_ASCII;
	else
		type = is_interned(first->type) ? MARSHAL_ASCII_INTERNED : MARSHAL_ASCII;
	strbuf_grow(out, n - was + 5 + len);
	strbuf_add(out, in, at);
	strbuf_addch(out, type | (first->flag_ref ? MARSHAL_FLAG_REF : 0));
	if (len < 256) {
		strbuf_addch(out, (int)len);
	} else {
		unsigned char le[4];

		put_le32(le, (uint32_t)len);
		strbuf_add(out, le, 4);
	}
	strbuf_add(out, dfile, len);
	strbuf_add(out, in + at + was, n - at - was);
	return 0;
}
