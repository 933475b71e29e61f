/*
 * bundle.c - a bundle's members listed as a walk and judged as they will
 * arrive (see bundle.h); the reading is bundle-read.c's.
 */
#define _POSIX_C_SOURCE 200809L
#include "bundle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "pyc.h"
#include "strbuf.h"
#include "util.h"
#include "banned.h"

int bundle_is_name(const char *path, enum bundle_kind *kind)
{
	static const struct { const char *suffix; enum bundle_kind kind; } names[] = {
		{ ".zip", BUNDLE_ZIP }, { ".whl", BUNDLE_WHEEL }, { ".tar", BUNDLE_TAR },
		{ ".tar.gz", BUNDLE_TAR }, { ".tgz", BUNDLE_TAR }, { ".tar.xz", BUNDLE_TAR },
		{ ".txz", BUNDLE_TAR }, { ".tar.zst", BUNDLE_TAR }, { ".tzst", BUNDLE_TAR },
		{ ".tar.bz2", BUNDLE_TAR },
	};
	size_t n = strlen(path), i;
	struct stat st;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	for (i = 0; i < ARRAY_SIZE(names); i++) {
		size_t m = strlen(names[i].suffix);

		if (n > m && path[n - m - 1] != '/' && !strcasecmp(path + n - m, names[i].suffix)) {
			*kind = names[i].kind;
			return 1;
		}
	}
	return 0;
}

int bundle_args(int npaths, const char *const *paths, const char *root,
		const char *tree_option)
{
	enum bundle_kind kind;
	int i, n = 0;

	for (i = 0; i < npaths; i++)
		n += bundle_is_name(paths[i], &kind);
	if (!n)
		return root ? error("option '--root' is for a bundle (.zip, .whl, .tar...)") : 0;
	if (npaths != 1)
		return error("a bundle is checked on its own: give one PATH");
	if (tree_option)
		return error("option '%s' does not apply to a bundle", tree_option);
	return 1;
}

static const char *kind_name(enum bundle_kind k)
{
	return k == BUNDLE_TAR ? "tar" : k == BUNDLE_ZIP ? "zip" : "wheel";
}

/*
 * `rel` taken from directory `dir` ("" for the top), lexically: "." and ""
 * components dropped, ".." removing one.  NULL when it is absolute or
 * climbs out of the top.
 */
static char *join_lexical(const char *dir, const char *rel)
{
	struct strbuf sb = STRBUF_INIT;
	const char *p = rel;

	if (*rel == '/')
		return NULL;
	strbuf_addstr(&sb, dir);
	while (*p) {
		const char *q = strchr(p, '/');
		size_t n = q ? (size_t)(q - p) : strlen(p);

		if (n == 2 && p[0] == '.' && p[1] == '.') {
			char *slash;

			if (!sb.len) {
				strbuf_release(&sb);
				return NULL;
			}
			slash = strrchr(sb.buf, '/');
			strbuf_setlen(&sb, slash ? (size_t)(slash - sb.buf) : 0);
		} else if (n && !(n == 1 && p[0] == '.')) {
			if (sb.len)
				strbuf_addch(&sb, '/');
			strbuf_add(&sb, p, n);
		}
		p += n + (q != NULL);
	}
	return strbuf_detach(&sb, NULL);
}

static int cmp_entry(const void *pa, const void *pb)
{
	const struct bundle_entry *a = pa, *b = pb;
	int c = strcmp(a->name, b->name);

	return c ? c : a->order < b->order ? -1 : a->order > b->order;
}

static void entry_release(struct bundle_entry *e)
{
	free(e->name);
	free(e->link);
	free(e->data);
	free(e->hashes);
}

/* The entry named `name`, or SIZE_MAX. */
static size_t lookup(const struct bundle *b, const char *name)
{
	size_t lo = 0, hi = b->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, b->v[mid].name);

		if (!c)
			return mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return SIZE_MAX;
}

/* Sorted by name, the last of equal names kept (what extraction leaves). */
static void index_entries(struct bundle *b)
{
	size_t k, n = 0;

	qsort(b->v, b->nr, sizeof(*b->v), cmp_entry);
	for (k = 0; k < b->nr; k++) {
		if (k + 1 < b->nr && !strcmp(b->v[k].name, b->v[k + 1].name))
			entry_release(&b->v[k]);
		else
			b->v[n++] = b->v[k];
	}
	b->nr = n;
}

/* Where link `e` leads, one step: an entry name (new), or NULL when out of the archive. */
static char *link_step(const struct bundle_entry *e)
{
	const char *slash;
	char *dir, *to;

	if (e->type == BE_HARDLINK)
		return xstrdup(e->link);
	slash = strrchr(e->name, '/');
	dir = xstrndup(e->name, slash ? (size_t)(slash - e->name) : 0);
	to = join_lexical(dir, e->link);
	free(dir);
	return to;
}

/* The BE_FILE entry that entry `i` is once links are followed, or SIZE_MAX. */
static size_t resolve(const struct bundle *b, size_t i)
{
	int hops;

	for (hops = 0; hops < 40 && i != SIZE_MAX; hops++) {
		const struct bundle_entry *e = &b->v[i];
		char *to;

		if (e->type == BE_FILE)
			return i;
		if (e->type != BE_SYMLINK && e->type != BE_HARDLINK)
			return SIZE_MAX;
		if (!(to = link_step(e)))
			return SIZE_MAX;
		i = lookup(b, to);
		free(to);
	}
	return SIZE_MAX;
}

static int under_root(const char *name, const char *root, size_t rlen)
{
	return !rlen || (!strncmp(name, root, rlen) && name[rlen] == '/');
}

/*
 * Follow every link; a symlink under the root that leads out of the
 * archive is refused.  Then whether every file has one stored mtime.
 */
static int resolve_links(struct bundle *b, const char *root, size_t rlen)
{
	size_t k, nfiles = 0;
	int64_t first = 0;

	b->one_mtime = 1;
	for (k = 0; k < b->nr; k++) {
		struct bundle_entry *e = &b->v[k];

		if (e->type == BE_SYMLINK && under_root(e->name, root, rlen)) {
			char *to = link_step(e);

			if (!to)
				return error("cannot read '%s': symlink '%s' points out of the "
					     "archive ('%s')", b->path, e->name, e->link);
			free(to);
		}
		e->file = resolve(b, k);
		if (e->type == BE_FILE) {
			if (nfiles++ == 0)
				first = e->mtime_sec;
			else if (e->mtime_sec != first)
				b->one_mtime = 0;
		}
	}
	if (nfiles < 2)
		b->one_mtime = 0;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/*
 * A zip's time as it arrives: the DOS date-time it stores (local time, even
 * seconds, 1980-2107) read as UTC.
 */
static int64_t zip_arrival(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!localtime_r(&tt, &tm))
		return t;
	if (tm.tm_year < 80)
		return days_from_civil(1980, 1, 1) * 86400;
	if (tm.tm_year > 207)
		return days_from_civil(2107, 12, 31) * 86400 + 86398;
	return days_from_civil(tm.tm_year + 1900, (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday) *
		       86400 + tm.tm_hour * 3600 + tm.tm_min * 60 + (tm.tm_sec & ~1);
}

/* The file entry's arrival mtime into s. */
static void arrival(const struct bundle *b, const struct bundle_entry *f, struct source *s)
{
	s->size = f->size;
	if (b->kind == BUNDLE_TAR) {
		s->mtime_sec = f->mtime_sec;
		s->mtime_nsec = f->mtime_nsec;
	} else {
		s->mtime_sec = zip_arrival(f->mtime_sec);
		s->mtime_nsec = 0;
	}
}

/* The kind of walk entry member `rel` (from the root) is, and its depth; -1: none. */
static int entry_kind(const struct bundle *b, const struct bundle_entry *e, const char *rel,
		      int *depth)
{
	const char *base = strrchr(rel, '/'), *p;
	int slashes = 0, pycache = 0, parent_pycache;
	size_t n;

	base = base ? base + 1 : rel;
	for (p = rel; p < base; p = strchr(p, '/') + 1) {
		slashes++;
		pycache += !strncmp(p, "__pycache__/", 12);
	}
	parent_pycache = base - rel >= 12 && !strncmp(base - 12, "__pycache__/", 12) &&
			 (base - rel == 12 || base[-13] == '/');
	n = strlen(base);
	*depth = slashes;
	if (n > 4 && !strcmp(base + n - 4, ".pyc") && e->type != BE_DIR && e->type != BE_OTHER) {
		if (pycache == 1 && parent_pycache) {
			*depth = slashes - 1;
			return ENTRY_CACHED;
		}
		return pycache ? -1 : ENTRY_LEGACY;
	}
	if (!pycache && is_py_name(base) && e->file != SIZE_MAX && b->v[e->file].hashes)
		return ENTRY_SOURCE;
	return -1;
}

/* The members under the root as walk_path() lists a directory.  The number listed. */
static size_t list_members(const struct bundle *b, const char *root, size_t rlen, int maxlevels,
			   struct source_list *list)
{
	size_t k, n = 0;

	for (k = 0; k < b->nr; k++) {
		const struct bundle_entry *e = &b->v[k];
		const char *rel = rlen ? e->name + rlen + 1 : e->name;
		struct source *s;
		int kind, depth;

		if (!under_root(e->name, root, rlen))
			continue;
		n++;
		if ((kind = entry_kind(b, e, rel, &depth)) < 0 || depth > maxlevels)
			continue;
		ALLOC_GROW(list->v, list->nr + 1, list->alloc);
		s = &list->v[list->nr++];
		memset(s, 0, sizeof(*s));
		s->path = xstrfmt("%s/%s", b->path, e->name);
		s->kind = (unsigned char)kind;
		s->depth = depth;
		s->is_link = e->type != BE_FILE;
		s->mode = 0644;
		s->arg_len = strlen(b->path) + (rlen ? rlen + 1 : 0);
		if (e->file != SIZE_MAX)
			arrival(b, &b->v[e->file], s);
	}
	return n;
}

static int cmp_source(const void *a, const void *b)
{
	return walk_path_cmp(((const struct source *)a)->path, ((const struct source *)b)->path);
}

int bundle_load(struct bundle *b, const char *path, const char *root, int maxlevels,
		struct target *targets, size_t ntargets, struct source_list *list)
{
	char *r = xstrdup("");
	size_t first = list->nr, rlen, k;
	int rc = -1;

	for (k = 0; k < ntargets; k++)
		targets[k].layout.pycache_prefix = NULL;
	b->path = xstrdup(path);
	b->targets = targets;
	b->ntargets = ntargets;
	if (!bundle_is_name(path, &b->kind))
		b->kind = BUNDLE_TAR;
	if (root && *root) {
		free(r);
		if (!(r = join_lexical("", root))) {
			error("option '--root': '%s' is not a path inside the bundle", root);
			goto out;
		}
	}
	rlen = strlen(r);
	if (bundle_read(b) < 0)
		goto out;
	index_entries(b);
	if (resolve_links(b, r, rlen) < 0)
		goto out;
	if (!list_members(b, r, rlen, maxlevels, list) && rlen) {
		error("'%s' has nothing under '%s/'", path, r);
		goto out;
	}
	qsort(list->v + first, list->nr - first, sizeof(*list->v), cmp_source);
	rc = 0;
out:
	free(r);
	return rc;
}

/* The file entry (after links) of the listed path "BUNDLE/NAME", or NULL; *any: some entry. */
static const struct bundle_entry *find(const struct bundle *b, const char *path, int *any)
{
	size_t n = strlen(b->path), k;

	*any = 0;
	if (strncmp(path, b->path, n) || path[n] != '/')
		return NULL;
	if ((k = lookup(b, path + n + 1)) == SIZE_MAX)
		return NULL;
	*any = b->v[k].type == BE_DIR || b->v[k].type == BE_OTHER;
	return b->v[k].file == SIZE_MAX ? NULL : &b->v[b->v[k].file];
}

int bundle_stat(const struct bundle *b, struct source *s)
{
	int any;
	const struct bundle_entry *f = find(b, s->path, &any);

	if (!f || !f->hashes)
		return -1;
	arrival(b, f, s);
	return 0;
}

static void fmt_utc(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(buf, len, "%lld", (long long)t);
}

/*
 * Is `off` seconds a time zone's offset (whole quarter hours, within 14
 * hours), give or take a DOS time's rounding?  A zip written in one zone
 * and read in another is off by that much.
 */
static int zone_shift(int32_t off)
{
	int32_t q = off % 900;

	return off >= -14 * 3600 - 1 && off <= 14 * 3600 + 1 && (q <= 1 && q >= -1 ? 1 :
		q >= 899 || q <= -899);
}

/*
 * A timestamp pyc that does not match its source's arrival mtime: is the
 * bundle the cause (see bundle.h)?  Then stale-on-arrival, with why.
 */
static enum pyc_status on_arrival(const struct bundle *b, const struct target *t,
				  const struct bundle_entry *pyc, const struct bundle_entry *src,
				  const struct source *as, char *detail, size_t dlen)
{
	struct pyc_header hdr;
	uint32_t stored = pyc_mtime32(src->mtime_sec, src->mtime_nsec);
	int32_t off;
	char at[64], compiled[64];

	if (pyc_header_parse(&t->fmt, pyc->data, pyc->size, &hdr) != 0 ||
	    hdr.kind != PYC_KIND_TIMESTAMP || hdr.size32 != (uint32_t)(src->size & 0xFFFFFFFFu))
		return PYC_STALE_MTIME;
	off = (int32_t)(hdr.mtime32 - stored);
	if (b->kind == BUNDLE_WHEEL) {
		if (off < -1 || off > 1)
			return PYC_STALE_MTIME;
		snprintf(detail, dlen, "installers give a wheel's files the time they install "
			 "them: no timestamp pyc survives (use hash-based pycs)");
		return PYC_STALE_ON_ARRIVAL;
	}
	if (off != 0 && (b->kind == BUNDLE_TAR || off < -1 || off > 1) && !b->one_mtime &&
	    !(b->kind == BUNDLE_ZIP && zone_shift(off)))
		return PYC_STALE_MTIME;
	fmt_utc(as->mtime_sec, at, sizeof(at));
	fmt_utc((int64_t)hdr.mtime32, compiled, sizeof(compiled));
	snprintf(detail, dlen, "the %s stores %s for a source compiled at %s%s%s",
		 kind_name(b->kind), at, compiled,
		 b->one_mtime && (off < -1 || off > 1) ? " (as for every file)" : "",
		 b->kind == BUNDLE_ZIP && (as->mtime_sec - src->mtime_sec > 2 ||
					   src->mtime_sec - as->mtime_sec > 2 || off < -1 || off > 1)
			 ? " (a zip stores local time; it arrives as UTC)" : "");
	return PYC_STALE_ON_ARRIVAL;
}

enum pyc_status bundle_verify(const struct bundle *b, const struct target *t, const char *pyc,
			      const struct source *src, int want_mode, char *detail, size_t dlen)
{
	static const unsigned char no_hash[PYC_HASH_LEN];
	size_t k = (size_t)(t - b->targets);
	const struct bundle_entry *pe, *se;
	const unsigned char *hash = no_hash;
	struct source as = *src;
	enum pyc_status st;
	int any;

	detail[0] = '\0';
	if (!(pe = find(b, pyc, &any)) || !pe->data) {
		if (!any && !pe)
			return PYC_MISSING;
		snprintf(detail, dlen, "not a regular file");
		return PYC_UNREADABLE;
	}
	if (!(se = find(b, src->path, &any)) || !se->hashes)
		BUG("bundle source '%s' not in the bundle", src->path);
	if (k < b->ntargets && t->has_hash_pycs)
		hash = se->hashes + k * PYC_HASH_LEN;
	arrival(b, se, &as);
	if (b->kind == BUNDLE_WHEEL) {
		/* judged as stored: any timestamp pyc fresh there fails on arrival */
		as.mtime_sec = se->mtime_sec;
		as.mtime_nsec = se->mtime_nsec;
		st = verify_pyc_data(t, pe->data, pe->size, &as, hash, want_mode, detail, dlen);
		if (st == PYC_OK || st == PYC_WRONG_MODE) {
			struct pyc_header hdr;

			if (pyc_header_parse(&t->fmt, pe->data, pe->size, &hdr) == 0 &&
			    hdr.kind == PYC_KIND_TIMESTAMP)
				return on_arrival(b, t, pe, se, &as, detail, dlen);
			return st;
		}
	} else {
		st = verify_pyc_data(t, pe->data, pe->size, &as, hash, want_mode, detail, dlen);
	}
	if (st == PYC_STALE_MTIME) {
		char saved[200];

		snprintf(saved, sizeof(saved), "%s", detail);
		if ((st = on_arrival(b, t, pe, se, &as, detail, dlen)) == PYC_STALE_MTIME)
			snprintf(detail, dlen, "%s", saved);
	}
	return st;
}

void bundle_release(struct bundle *b)
{
	size_t k;

	for (k = 0; k < b->nr; k++)
		entry_release(&b->v[k]);
	free(b->v);
	free(b->path);
	memset(b, 0, sizeof(*b));
}
