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
	"wrong-magic", "wrong-mode", "corrupt", "unreadable", "stale-on-arrival",
};

const char *pyc_status_name(enum pyc_status s)
{
	return (unsigned)s < PYC_NSTATUS ? names[s] : "?";
}

static int read_file(const char *path, struct strbuf *sb, struct stat *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	struct stat local, *stp = out ? out : &local;
	int e;

	if (fd < 0)
		return -1;
	if (fstat(fd, stp) < 0 || !S_ISREG(stp->st_mode)) {
		e = S_ISREG(stp->st_mode) ? errno : EINVAL;
		close(fd);
		errno = e;
		return -1;
	}
	if (strbuf_read_fd(sb, fd, (size_t)stp->st_size + 1) < 0) {
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
	return verify_pyc_stat(t, pyc, src, want_mode, detail, dlen, NULL, NULL, 0, NULL);
}

enum pyc_status verify_pyc_stat(const struct target *t, const char *pyc, const struct source *src,
				int want_mode, char *detail, size_t dlen, struct stat *pst,
				unsigned char *hdr_out, size_t hmax, size_t *hlen)
{
	struct strbuf data = STRBUF_INIT;
	enum pyc_status st;

	detail[0] = '\0';
	if (read_file(pyc, &data, pst) < 0) {
		int e = errno;

		strbuf_release(&data);
		if (e == ENOENT || e == ENOTDIR)
			return PYC_MISSING;
		snprintf(detail, dlen, "%s", e == EINVAL ? "not a regular file" : strerror(e));
		return PYC_UNREADABLE;
	}
	if (hlen) {
		*hlen = data.len < hmax ? data.len : hmax;
		memcpy(hdr_out, data.buf, *hlen);
	}
	st = verify_pyc_data(t, (const unsigned char *)data.buf, data.len, src, NULL, want_mode,
			     detail, dlen);
	strbuf_release(&data);
	return st;
}

/* A hash pyc's source hash against the source's (read from src->path when `src_hash` is NULL). */
static enum pyc_status check_hash(const struct target *t, const struct pyc_header *hdr,
				  const struct source *src, const unsigned char *src_hash,
				  char *detail, size_t dlen)
{
	unsigned char hash[PYC_HASH_LEN];

	if (!t->has_hash_pycs) {
		snprintf(detail, dlen, "hash-based pyc, not supported for %s", t->display);
		return PYC_CORRUPT;
	}
	if (!src_hash) {
		struct strbuf source = STRBUF_INIT;

		if (read_file(src->path, &source, NULL) < 0) {
			snprintf(detail, dlen, "cannot read the source: %s", strerror(errno));
			strbuf_release(&source);
			return PYC_UNREADABLE;
		}
		pyc_source_hash((enum source_hash_kind)t->hash_kind, t->fmt.magic, source.buf,
				source.len, hash);
		strbuf_release(&source);
		src_hash = hash;
	}
	if (memcmp(src_hash, hdr->hash, PYC_HASH_LEN)) {
		snprintf(detail, dlen, "%s pyc of other source bytes", pyc_kind_name(hdr->kind));
		return PYC_STALE_HASH;
	}
	return PYC_OK;
}

enum pyc_status verify_pyc_data(const struct target *t, const unsigned char *data, size_t len,
				const struct source *src, const unsigned char *src_hash,
				int want_mode, char *detail, size_t dlen)
{
	const unsigned char *body;
	struct pyc_header hdr;
	enum pyc_status st = PYC_OK;
	int parsed;

	detail[0] = '\0';
	parsed = pyc_header_parse(&t->fmt, data, len, &hdr);
	if (parsed == PYC_PARSE_SHORT) {
		snprintf(detail, dlen, "%zu bytes, shorter than its %zu-byte header", len, hdr.len);
		return PYC_CORRUPT;
	}
	if (memcmp(hdr.magic, t->fmt.magic, PYC_MAGIC_LEN)) {
		snprintf(detail, dlen, "magic %u, %s expects %u", pyc_magic_number(hdr.magic),
			 t->display, pyc_magic_number(t->fmt.magic));
		st = PYC_WRONG_MAGIC;
		goto out;
	}
	if (parsed == PYC_PARSE_BAD_FLAGS) {
		snprintf(detail, dlen, "invalid flags 0x%x", (unsigned)hdr.flags);
		st = PYC_CORRUPT;
		goto out;
	}
	if (hdr.kind != PYC_KIND_TIMESTAMP) {
		st = check_hash(t, &hdr, src, src_hash, detail, dlen);
		if (st != PYC_OK)
			goto out;
	} else {
		uint32_t mtime = pyc_mtime32(src->mtime_sec, src->mtime_nsec);

		if (hdr.mtime32 != mtime) {
			snprintf(detail, dlen, "pyc records mtime %u, source has %u",
				 (unsigned)hdr.mtime32, (unsigned)mtime);
			st = PYC_STALE_MTIME;
			goto out;
		}
		if (hdr.size32 != (uint32_t)(src->size & 0xFFFFFFFFu)) {
			snprintf(detail, dlen, "pyc records size %u, source has %llu",
				 (unsigned)hdr.size32, (unsigned long long)src->size);
			st = PYC_STALE_SIZE;
			goto out;
		}
	}
	if (want_mode >= 0 && (int)hdr.kind != want_mode) {
		snprintf(detail, dlen, "%s pyc, %s requested", pyc_kind_name(hdr.kind),
			 pyc_kind_name(want_mode));
		st = PYC_WRONG_MODE;
		goto out;
	}
	body = data + hdr.len;
	{
		struct marshal_version v = pyc_marshal_version(t->major, t->minor, t->implementation);
		struct marshal_err err;
		struct mobj *root = NULL;

		if (marshal_parse(body, len - hdr.len, &v, &root, &err) < 0) {
			snprintf(detail, dlen, "body does not unmarshal: %s at byte %zu", err.msg,
				 hdr.len + err.offset);
			st = PYC_CORRUPT;
		} else if (root->type != 'c') {
			/* the import system: "Non-code object in ..." */
			snprintf(detail, dlen, "body is not a code object (type '%c')", root->type);
			st = PYC_CORRUPT;
		}
		mobj_free(root);
	}
out:
	return st;
}
