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

size_t pyc_header_timestamp(const struct pyc_format *fmt, unsigned char *out,
			    uint32_t mtime32, uint64_t size)
{
	unsigned char *p = out;

	memcpy(p, fmt->magic, 4);
	p += 4;
	if (fmt->header_len == 16) {
		put_le32(p, 0);
		p += 4;
	}
	put_le32(p, mtime32);
	put_le32(p + 4, (uint32_t)(size & 0xFFFFFFFFu));
	return fmt->header_len;
}

int pyc_header_is_fresh(const struct pyc_format *fmt, const unsigned char *hdr,
			size_t len, uint32_t mtime32, uint64_t size)
{
	unsigned char want[PYC_HEADER_MAX];
	size_t n = pyc_header_timestamp(fmt, want, mtime32, size);

	return len >= n && !memcmp(hdr, want, n);
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
