/*
 * pystr.c - repr() of a path and the text of an OSError (see pystr.h).
 */
#include "pystr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "util.h"
#include "banned.h"

/* Whether Python's str.isprintable() holds for U+cp (close enough: the
 * controls, separators, format characters and private use it rejects). */
static int codepoint_printable(unsigned cp)
{
	if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0xa0) || cp == 0xad)
		return 0;
	if (cp == 0x61c || cp == 0x1680 || cp == 0x180e || (cp >= 0x2000 && cp <= 0x200f) ||
	    (cp >= 0x2028 && cp <= 0x202f) || (cp >= 0x205f && cp <= 0x206f) || cp == 0x3000 ||
	    (cp >= 0xd800 && cp <= 0xf8ff) || cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb) ||
	    cp >= 0xf0000)
		return 0;
	return 1;
}

char *py_repr_path(const char *path)
{
	const unsigned char *p = (const unsigned char *)path;
	struct strbuf sb = STRBUF_INIT;
	char quote = strchr(path, '\'') && !strchr(path, '"') ? '"' : '\'';

	strbuf_addch(&sb, quote);
	while (*p) {
		unsigned cp;
		size_t n = utf8_decode_one(p, &cp);

		if (!n) {
			/* surrogateescape: an undecodable byte is U+DC80..U+DCFF */
			strbuf_addf(&sb, "\\udc%02x", *p);
			p++;
			continue;
		}
		if (cp == '\\' || cp == (unsigned)quote)
			strbuf_addf(&sb, "\\%c", (char)cp);
		else if (cp == '\t')
			strbuf_addstr(&sb, "\\t");
		else if (cp == '\n')
			strbuf_addstr(&sb, "\\n");
		else if (cp == '\r')
			strbuf_addstr(&sb, "\\r");
		else if (codepoint_printable(cp))
			strbuf_add(&sb, p, n);
		else if (cp < 0x100)
			strbuf_addf(&sb, "\\x%02x", cp);
		else if (cp < 0x10000)
			strbuf_addf(&sb, "\\u%04x", cp);
		else
			strbuf_addf(&sb, "\\U%08x", cp);
		p += n;
	}
	strbuf_addch(&sb, quote);
	return strbuf_detach(&sb, NULL);
}

/* The class Python gives an OSError of this errno. */
static const char *py_oserror_class(int err)
{
	switch (err) {
	case EACCES:
	case EPERM:
		return "PermissionError";
	case ENOENT:
		return "FileNotFoundError";
	case EEXIST:
		return "FileExistsError";
	case EISDIR:
		return "IsADirectoryError";
	case ENOTDIR:
		return "NotADirectoryError";
	case EINTR:
		return "InterruptedError";
	default:
		return "OSError";
	}
}

char *py_oserror(int err, const char *path)
{
	char *r = py_repr_path(path);
	char *s = xstrfmt("%s: [Errno %d] %s: %s", py_oserror_class(err), err, strerror(err), r);

	free(r);
	return s;
}
