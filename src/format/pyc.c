#define _POSIX_C_SOURCE 200809L
#include "pyc.h"

#include <string.h>

#include "strbuf.h"
#include "util.h"
#include "banned.h"

uint32_t pyc_mtime32(int64_t sec, long nsec)
{
	/*
	 * Python computes st_mtime as a double and int() truncates toward
	 * zero; the rounding of the double matters (x.999999999 rounds up),
	 * so do exactly the same arithmetic.
	 */
	double t = (double)sec + (double)nsec * 1e-9;
	int64_t whole;

	if (t >= 9.2e18 || t <= -9.2e18)
		return 0; /* far outside any real file's mtime */
	whole = (int64_t)t;
	return (uint32_t)((uint64_t)whole & 0xFFFFFFFFu);
}

const char *pyc_kind_name(int kind)
{
	switch (kind) {
	case PYC_KIND_TIMESTAMP:
		return "timestamp";
	case PYC_KIND_UNCHECKED_HASH:
		return "unchecked-hash";
	case PYC_KIND_CHECKED_HASH:
		return "checked-hash";
	}
	return "?";
}

unsigned pyc_magic_number(const unsigned char *magic)
{
	return (unsigned)magic[0] | (unsigned)magic[1] << 8;
}

int pyc_has_magic(const unsigned char *data, size_t len)
{
	return len >= PYC_MAGIC_LEN && data[2] == '\r' && data[3] == '\n';
}

size_t pyc_header_timestamp(const struct pyc_format *fmt, unsigned char *out,
			    uint32_t mtime32, uint64_t size)
{
	unsigned char *p = out;

	memcpy(p, fmt->magic, PYC_MAGIC_LEN);
	p += PYC_MAGIC_LEN;
	if (fmt->header_len == PYC_HEADER_LEN) {
		put_le32(p, PYC_KIND_TIMESTAMP);
		p += 4;
	}
	put_le32(p, mtime32);
	put_le32(p + 4, (uint32_t)(size & 0xFFFFFFFFu));
	return fmt->header_len;
}

size_t pyc_header_hash(const struct pyc_format *fmt, unsigned char *out, uint32_t flags,
		       const unsigned char hash[PYC_HASH_LEN])
{
	if (fmt->header_len != PYC_HEADER_LEN ||
	    (flags != PYC_KIND_UNCHECKED_HASH && flags != PYC_KIND_CHECKED_HASH))
		BUG("hash-based pyc header: flags %u, header length %zu", (unsigned)flags,
		    fmt->header_len);
	memcpy(out, fmt->magic, PYC_MAGIC_LEN);
	put_le32(out + PYC_MAGIC_LEN, flags);
	memcpy(out + 8, hash, PYC_HASH_LEN);
	return PYC_HEADER_LEN;
}

int pyc_header_is_fresh(const struct pyc_format *fmt, const unsigned char *hdr,
			size_t len, uint32_t mtime32, uint64_t size)
{
	unsigned char want[PYC_HEADER_MAX];
	size_t n = pyc_header_timestamp(fmt, want, mtime32, size);

	return len >= n && !memcmp(hdr, want, n);
}

int pyc_header_parse(const struct pyc_format *fmt, const unsigned char *data, size_t len,
		     struct pyc_header *h)
{
	const unsigned char *rest; /* mtime and size, or the hash */

	memset(h, 0, sizeof(*h));
	h->len = fmt->header_len;
	if (len < h->len)
		return PYC_PARSE_SHORT;
	rest = data + h->len - 8;
	memcpy(h->magic, data, PYC_MAGIC_LEN);
	if (h->len == PYC_HEADER_LEN) {
		h->flags = get_le32(data + PYC_MAGIC_LEN);
		if (h->flags & ~(uint32_t)PYC_FLAGS_KNOWN)
			return PYC_PARSE_BAD_FLAGS;
	}
	/* the import system: flag bit 1 without bit 0 is a timestamp pyc */
	if (h->flags & PYC_FLAG_HASH) {
		h->kind = (enum pyc_kind)h->flags;
		memcpy(h->hash, rest, PYC_HASH_LEN);
	} else {
		h->kind = PYC_KIND_TIMESTAMP;
		h->mtime32 = get_le32(rest);
		h->size32 = get_le32(rest + 4);
	}
	return 0;
}

/*
 * Every magic number prepyc can name without asking an interpreter.
 * CPython's ranges are those of Include/internal/pycore_magic_number.h
 * (formerly Lib/importlib/_bootstrap_external.py) and PC/launcher.c, which
 * gives 3.10 the unused 3440-3449 too; since 3.11, 3.n owns 2900 + 50n to
 * 2949 + 50n.  PyPy has its own small numbers.
 */
static const struct pyc_version versions[] = {
	{ 3360, 3379, 3379, { 3, 6, 0 }, 4, PYC_HEADER_LEN_36 },
	{ 3390, 3399, 3394, { 3, 7, 0 }, 4, PYC_HEADER_LEN },
	{ 3400, 3419, 3413, { 3, 8, 0 }, 4, PYC_HEADER_LEN },
	{ 3420, 3429, 3425, { 3, 9, 0 }, 4, PYC_HEADER_LEN },
	{ 3430, 3449, 3439, { 3, 10, 0 }, 4, PYC_HEADER_LEN },
	{ 3450, 3499, 3495, { 3, 11, 0 }, 4, PYC_HEADER_LEN },
	{ 3500, 3549, 3531, { 3, 12, 0 }, 4, PYC_HEADER_LEN },
	{ 3550, 3599, 3571, { 3, 13, 0 }, 4, PYC_HEADER_LEN },
	{ 3600, 3649, 3627, { 3, 14, 0 }, 5, PYC_HEADER_LEN },  /* slices */
	{ 3650, 3699, 3666, { 3, 15, 0 }, 6, PYC_HEADER_LEN },  /* frozendict; 3666: 3.15.0rc1 */
	{ 336, 336, 336, { 3, 9, 1 }, 4, PYC_HEADER_LEN },      /* PyPy 3.9 */
	{ 352, 352, 352, { 3, 10, 1 }, 4, PYC_HEADER_LEN },     /* PyPy 3.10 */
};

const struct pyc_version *pyc_version_of_magic(unsigned magic)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(versions); i++)
		if (magic >= versions[i].magic_lo && magic <= versions[i].magic_hi)
			return &versions[i];
	return NULL;
}

size_t pyc_header_len(int major, int minor)
{
	/* PEP 552 (3.7) added the flags word */
	return major == 3 && minor < 7 ? PYC_HEADER_LEN_36 : PYC_HEADER_LEN;
}

struct marshal_version pyc_marshal_version(int major, int minor, const char *implementation)
{
	struct marshal_version v;

	v.major = major;
	v.minor = minor;
	v.pypy = implementation && !strcmp(implementation, "pypy");
	return v;
}

int pyc_strips_dot_slash(int major, int minor)
{
	return major > 3 || (major == 3 && minor >= 12);
}

/*
 * importlib's _path_join for POSIX: '/'.join(p.rstrip('/') for p in parts if p).
 * `*nparts` counts the parts joined so far (an empty stripped part still counts).
 */
static void path_join_part(struct strbuf *sb, int *nparts, const char *part, size_t len)
{
	if (!len)
		return;
	while (len && part[len - 1] == '/')
		len--;
	if ((*nparts)++)
		strbuf_addch(sb, '/');
	strbuf_add(sb, part, len);
}

char *pyc_cache_path(const struct pyc_layout *layout, const char *source, int opt)
{
	struct strbuf sb = STRBUF_INIT;
	const char *slash = strrchr(source, '/');
	const char *tail = slash ? slash + 1 : source;
	size_t head_len = slash ? (size_t)(slash - source) : 0;
	const char *dot = strrchr(tail, '.');
	struct strbuf filename = STRBUF_INIT;
	int nparts = 0;

	/* sized once: one per pyc of a tree, and growing was most of its cost */
	strbuf_grow(&filename, strlen(tail) + strlen(layout->cache_tag) + 24);
	/* base, sep, rest = tail.rpartition('.'); base or rest, then the tag */
	if (!dot)
		strbuf_addstr(&filename, tail);
	else if (dot == tail)
		strbuf_addstr(&filename, dot + 1);
	else
		strbuf_add(&filename, tail, (size_t)(dot - tail));
	if (dot)
		strbuf_addch(&filename, '.');
	strbuf_addstr(&filename, layout->cache_tag);
	if (opt > 0)
		strbuf_addf(&filename, ".opt-%d", opt);
	strbuf_addstr(&filename, ".pyc");
	/* exactly (a tree's pyc paths are kept: each spare byte is memory to fault in) */
	strbuf_grow(&sb, strlen(source) + filename.len + sizeof("/__pycache__/"));

	if (layout->pycache_prefix) {
		struct strbuf head = STRBUF_INIT;
		const char *h;
		int nhead = 0;

		/* the source's directory made absolute, then root-relative */
		if (head_len && source[0] == '/') {
			strbuf_add(&head, source, head_len);
		} else {
			const char *rel = source;
			size_t rel_len = head_len;

			if (layout->strip_dot_slash && rel_len >= 2 &&
			    rel[0] == '.' && rel[1] == '/') {
				rel += 2;
				rel_len -= 2;
			}
			path_join_part(&head, &nhead, layout->cwd, strlen(layout->cwd));
			path_join_part(&head, &nhead, rel, rel_len);
		}
		h = head.buf;
		while (*h == '/')
			h++;
		path_join_part(&sb, &nparts, layout->pycache_prefix,
			       strlen(layout->pycache_prefix));
		path_join_part(&sb, &nparts, h, strlen(h));
		path_join_part(&sb, &nparts, filename.buf, filename.len);
		strbuf_release(&head);
	} else {
		path_join_part(&sb, &nparts, source, head_len);
		path_join_part(&sb, &nparts, "__pycache__", 11);
		path_join_part(&sb, &nparts, filename.buf, filename.len);
	}
	strbuf_release(&filename);
	return strbuf_detach(&sb, NULL);
}

mode_t pyc_mode(mode_t source_mode)
{
	return (source_mode | 0200) & 0666;
}

int pycache_name_parts(const char *pyc_path, char **tag, char **source)
{
	const char *slash = strrchr(pyc_path, '/');
	const char *name = slash ? slash + 1 : pyc_path;
	const char *first = strchr(name, '.'), *end = name + strlen(name) - 4;
	const char *tag_end;
	size_t dots = 0, dirlen;
	const char *p;

	for (p = name; *p; p++)
		dots += *p == '.';
	/* importlib.util.source_from_cache: 2 or 3 dots, the third being .opt-N */
	if (!first || first == name || (dots != 2 && dots != 3) || end <= first)
		return -1;
	tag_end = end;
	if (dots == 3) {
		const char *opt = strstr(first + 1, ".opt-");
		if (!opt || opt >= end)
			return -1;
		tag_end = opt;
	}
	if (!slash)
		return -1;
	/* the directory holding __pycache__ */
	for (p = slash; p > pyc_path && p[-1] != '/'; p--)
		;
	if (strncmp(p, "__pycache__/", 12))
		return -1;
	dirlen = (size_t)(p - pyc_path);
	*tag = xstrndup(first + 1, (size_t)(tag_end - first - 1));
	/* by hand: one per pyc of a tree, and printf's machinery was a fifth of a check */
	{
		size_t base = (size_t)(first - name);
		char *src = xmalloc(st_add(dirlen + base, 4));

		memcpy(src, pyc_path, dirlen);
		memcpy(src + dirlen, name, base);
		memcpy(src + dirlen + base, ".py", 4);
		*source = src;
	}
	return 0;
}

char *pyc_legacy_path(const char *source)
{
	size_t n = strlen(source);
	char *pyc = xmalloc(st_add(n, 2));

	memcpy(pyc, source, n);
	memcpy(pyc + n, "c", 2);
	return pyc;
}

char *pyc_legacy_source(const char *pyc)
{
	size_t n = strlen(pyc);

	if (n < 4 || strcmp(pyc + n - 4, ".pyc"))
		return NULL;
	return xstrndup(pyc, n - 1);
}
