#define _POSIX_C_SOURCE 200809L
#include "verify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "marshal.h"
#include "pyc.h"
#include "siphash.h"
#include "strbuf.h"
#include "util.h"
#include "banned.h"

static const char *const names[PYC_NSTATUS] = {
	"ok", "missing", "stale-mtime", "stale-size", "stale-hash",
	"wrong-magic", "wrong-mode", "corrupt", "unreadable",
};

const char *pyc_status_name(enum pyc_status s)
{
	return (unsigned)s < PYC_NSTATUS ? names[s] : "?";
}

static int read_file(const char *path, struct strbuf *sb)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	struct stat st;
	int e;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		e = S_ISREG(st.st_mode) ? errno : EINVAL;
		close(fd);
		errno = e;
		return -1;
	}
	if (strbuf_read_fd(sb, fd, (size_t)st.st_size + 1) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

enum pyc_status verify_pyc(const struct target *t, const char *pyc, const struct source *src,
			   int want_mode, char *detail, size_t dlen)
{
	struct strbuf data = STRBUF_INIT;
	const unsigned char *h;
	size_t hlen = t->fmt.header_len;
	enum pyc_status st = PYC_OK;
	uint32_t flags = 0;

	detail[0] = '\0';
	if (read_file(pyc, &data) < 0) {
		int e = errno;

		strbuf_release(&data);
		if (e == ENOENT || e == ENOTDIR)
			return PYC_MISSING;
		snprintf(detail, dlen, "%s", e == EINVAL ? "not a regular file" : strerror(e));
		return PYC_UNREADABLE;
	}
	h = (const unsigned char *)data.buf;
	if (data.len < hlen) {
		snprintf(detail, dlen, "%zu bytes, shorter than its %zu-byte header", data.len, hlen);
		st = PYC_CORRUPT;
		goto out;
	}
	if (memcmp(h, t->fmt.magic, 4)) {
		snprintf(detail, dlen, "magic %u, %s expects %u",
			 (unsigned)(h[0] | h[1] << 8), t->display,
			 (unsigned)(t->fmt.magic[0] | t->fmt.magic[1] << 8));
		st = PYC_WRONG_MAGIC;
		goto out;
	}
	if (hlen == 16) {
		flags = get_le32(h + 4);
		if (flags & ~3u) {
			snprintf(detail, dlen, "invalid flags 0x%x", (unsigned)flags);
			st = PYC_CORRUPT;
			goto out;
		}
	}
	if (flags & 1) {
		struct strbuf source = STRBUF_INIT;
		unsigned char hash[8];

		if (!t->has_hash_pycs) {
			snprintf(detail, dlen, "hash-based pyc, not supported for %s", t->display);
			st = PYC_CORRUPT;
			goto out;
		}
		if (read_file(src->path, &source) < 0) {
			snprintf(detail, dlen, "cannot read the source: %s", strerror(errno));
			strbuf_release(&source);
			st = PYC_UNREADABLE;
			goto out;
		}
		pyc_source_hash((enum source_hash_kind)t->hash_kind, t->fmt.magic, source.buf,
				source.len, hash);
		strbuf_release(&source);
		if (memcmp(hash, h + 8, 8)) {
			snprintf(detail, dlen, "%s pyc of other source bytes",
				 flags & 2 ? "checked-hash" : "unchecked-hash");
			st = PYC_STALE_HASH;
			goto out;
		}
	} else {
		uint32_t mtime = pyc_mtime32(src->mtime_sec, src->mtime_nsec);
		uint32_t pm = get_le32(h + hlen - 8), ps = get_le32(h + hlen - 4);

		if (pm != mtime) {
			snprintf(detail, dlen, "pyc records mtime %u, source has %u", (unsigned)pm,
				 (unsigned)mtime);
			st = PYC_STALE_MTIME;
			goto out;
		}
		if (ps != (uint32_t)(src->size & 0xFFFFFFFFu)) {
			snprintf(detail, dlen, "pyc records size %u, source has %llu", (unsigned)ps,
				 (unsigned long long)src->size);
			st = PYC_STALE_SIZE;
			goto out;
		}
	}
	if (want_mode >= 0 && (int)(flags == 2 ? 0 : flags) != want_mode) {
		static const char *const mode[] = { "timestamp", "unchecked-hash", "", "checked-hash" };

		snprintf(detail, dlen, "%s pyc, %s requested", mode[flags == 2 ? 0 : flags],
			 mode[want_mode & 3]);
		st = PYC_WRONG_MODE;
		goto out;
	}
	{
		struct marshal_version v = { t->major, t->minor, !strcmp(t->implementation, "pypy") };
		struct marshal_err err;

		struct mobj *root = NULL;

		if (marshal_parse((const unsigned char *)data.buf + hlen, data.len - hlen, &v, &root,
				  &err) < 0) {
			snprintf(detail, dlen, "body does not unmarshal: %s at byte %zu", err.msg,
				 hlen + err.offset);
			st = PYC_CORRUPT;
		} else if (root->type != 'c') {
			/* the import system: "Non-code object in ..." */
			snprintf(detail, dlen, "body is not a code object (type '%c')", root->type);
			st = PYC_CORRUPT;
		}
		mobj_free(root);
	}
out:
	strbuf_release(&data);
	return st;
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
	*source = xstrfmt("%.*s%.*s.py", (int)dirlen, pyc_path, (int)(first - name), name);
	return 0;
}
