/*
 * cmd-canon.c - `prepyc canon FILE.pyc...`: rewrite pycs, whoever wrote
 * them (pip, uv, compileall), in prepyc's canonical form, so that their
 * bytes depend only on the code they hold (see ARCHITECTURE.md, "The
 * canonical form").  `--check` only reports the ones that are not.
 *
 * The marshal format of a pyc is chosen by its magic number (or by
 * --python, for magic numbers prepyc does not know); the header is kept as
 * it is; a file is replaced atomically, keeping its mode, only when its
 * bytes change.
 */
#define _POSIX_C_SOURCE 200809L
#include "cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "marshal.h"
#include "options.h"
#include "pyc.h"
#include "strbuf.h"
#include "target.h"
#include "tempfile.h"
#include "util.h"
#include "banned.h"

/* 1 canonical, 0 rewritten (or would be, with check), -1 error (reported). */
static int canon_file(const char *path, const struct pyc_version *forced, int check)
{
	struct strbuf in = STRBUF_INIT, out = STRBUF_INIT;
	const struct pyc_version *pv = forced;
	struct marshal_err err;
	struct mobj *root = NULL;
	struct stat st;
	size_t hlen;
	int fd, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    strbuf_read_fd(&in, fd, (size_t)st.st_size + 1) < 0) {
		if (fd >= 0 && !S_ISREG(st.st_mode))
			error("cannot read '%s': not a regular file", path);
		else
			error_errno("cannot read '%s'", path);
		goto out;
	}
	if (in.len < PYC_HEADER_MAX || !pyc_has_magic((const unsigned char *)in.buf, in.len)) {
		error("'%s' is not a pyc file (no magic number)", path);
		goto out;
	}
	if (!pv)
		pv = pyc_version_of_magic(pyc_magic_number((const unsigned char *)in.buf));
	if (!pv) {
		error("'%s': unknown magic number %u; name its interpreter with --python", path,
		      pyc_magic_number((const unsigned char *)in.buf));
		goto out;
	}
	hlen = pv->header_len;
	if (marshal_parse((const unsigned char *)in.buf + hlen, in.len - hlen, &pv->v, &root,
			  &err) < 0) {
		error("'%s' is corrupt: %s at byte %zu", path, err.msg, hlen + err.offset);
		goto out;
	}
	strbuf_add(&out, in.buf, hlen);
	if (marshal_write_canonical(root, &pv->v, &out) < 0) {
		error("cannot canonicalise '%s'", path);
		goto out;
	}
	if (out.len == in.len && !memcmp(out.buf, in.buf, in.len)) {
		rc = 1;
	} else if (check) {
		rc = 0;
	} else {
		struct iovec iov = { out.buf, out.len };
		const char *what = "";

		if (write_file_atomic(path, st.st_mode & 07777, &iov, 1, &what) < 0) {
			error_errno("%s '%s'", what, path);
			goto out;
		}
		rc = 0;
	}
out:
	if (fd >= 0)
		close(fd);
	mobj_free(root);
	strbuf_release(&in);
	strbuf_release(&out);
	return rc;
}

static const char *const canon_usage[] = {
	"usage: prepyc canon [--check] [--python PATH] FILE.pyc...",
	"",
	"Rewrite pyc files, whoever wrote them, in prepyc's canonical form: the same",
	"code gives the same bytes, whatever the process that compiled it had done",
	"before.  The header is kept; the code loads equal to the original's.",
	NULL,
};

int cmd_canon(int argc, const char **argv)
{
	int check = 0, quiet = 0, npaths, i, failed = 0;
	size_t rewritten = 0, canonical = 0;
	const char *python = NULL;
	struct pyc_version forced;
	struct target t;
	int have_forced = 0;
	const struct option opts[] = {
		OPT_FLAG(0, "check", &check, "report the pycs that are not canonical; change nothing"),
		OPT_STRING(0, "python", &python, "PATH", "the interpreter the pycs are for (else: their magic number)"),
		OPT_COUNT('q', "quiet", &quiet, "no summary; -qq: nothing"),
		OPT_END(),
	};

	npaths = parse_options(argc - 1, argv + 1, opts);
	if (npaths == -2) {
		usage_with_options(stdout, canon_usage, opts);
		printf("\nexit status: 0 every file is (now) canonical; 1 --check found files that are\n"
		       "not, or a file could not be read or written; 2 usage error.\n");
		return 0;
	}
	if (npaths <= 0) {
		if (npaths == 0)
			error("no FILE given");
		fprintf(stderr, "%s\nTry 'prepyc canon --help' for the options.\n", canon_usage[0]);
		return 2;
	}
	if (python) {
		if (target_probe(&t, python) < 0)
			return 2;
		/* the target's own facts, whatever its magic number (marshal: unknown) */
		memset(&forced, 0, sizeof(forced));
		forced.magic = forced.magic_lo = forced.magic_hi = pyc_magic_number(t.fmt.magic);
		forced.v = pyc_marshal_version(t.major, t.minor, t.implementation);
		forced.header_len = t.fmt.header_len;
		have_forced = 1;
		target_release(&t);
	}
	for (i = 0; i < npaths; i++) {
		int r = canon_file(argv[1 + i], have_forced ? &forced : NULL, check);

		if (r < 0) {
			failed = 1;
		} else if (r == 0) {
			rewritten++;
			if (check && quiet < 2)
				printf("%s: not canonical\n", argv[1 + i]);
		} else {
			canonical++;
		}
	}
	if (!quiet)
		printf("%s: canon: %zu canonical, %zu %s%s\n", progname, canonical, rewritten,
		       check ? "not canonical" : "rewritten", failed ? ", some failed" : "");
	return failed || (check && rewritten) ? 1 : 0;
}
