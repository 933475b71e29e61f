/*
 * test-tool - reach prepyc's C code from the end-to-end tests (git's
 * t/helper/test-tool).  Built by `make build/test-tool`, never installed;
 * the Makefile hands its path to the tests as PREPYC_TEST_TOOL.
 *
 *   test-tool source-hash KIND MAGIC_HEX FILE...
 *       KIND is 13 (SipHash-1-3) or 24 (SipHash-2-4); MAGIC_HEX is the
 *       target's 4 magic bytes as 8 hex digits (e.g. 3.12's "cb0d0d0a").
 *       Prints, per FILE, one line: the 8 bytes a hash-based pyc stores
 *       for it, as 16 hex digits.
 *
 *   test-tool source-hash-kind MAGIC_HEX ABC_HEX
 *       ABC_HEX is what the target gave for _imp.source_hash(magic, b'abc')
 *       (16 hex digits, as stored); prints the KIND (13 or 24) that gives
 *       it, as prepyc decides it, or fails when neither does.
 *
 *   test-tool marshal-roundtrip MAJOR.MINOR[pypy] FILE.pyc...
 *       Parses each pyc's body (after the 16-byte header; 12 for 3.6) with
 *       marshal.c in that version's layout and writes it back.  Prints, per
 *       FILE, one line: "ok" when the bytes come back identical, "DIFF"
 *       when they do not, "FAIL OFFSET: MESSAGE" when the body does not
 *       parse (OFFSET counts from the start of the body) or the file
 *       cannot be read.  Exit status 1 when any line is not "ok".
 *
 *   test-tool canon MAJOR.MINOR[pypy] IN.pyc OUT.pyc [IN.pyc OUT.pyc]...
 *       Writes OUT.pyc: IN.pyc's header unchanged (12 bytes for 3.6, 16
 *       otherwise), then its body in canonical form
 *       (marshal_write_canonical()).  Prints nothing on success; "FAIL
 *       OFFSET: MESSAGE" per IN that does not parse (exit status 1).
 *
 *   test-tool relocate MAJOR.MINOR[pypy] IN.pyc DFILE OUT.pyc [IN.pyc DFILE OUT.pyc]...
 *       Writes OUT.pyc: IN.pyc's header unchanged, then its body with every
 *       co_filename set to DFILE (marshal_relocate()), in canonical form.
 *       Prints nothing on success; "FAIL OFFSET: MESSAGE" per IN that does
 *       not parse, "REFUSED OFFSET: MESSAGE" per IN that cannot be
 *       relocated exactly (no OUT written; exit status 1 for either).
 *
 *   test-tool canon-check [--time] MAJOR.MINOR[pypy] FILE.pyc...
 *       Prints, per FILE, "canonical" when its body is already in canonical
 *       form, "not-canonical" when it is not, "FAIL OFFSET: MESSAGE" when it
 *       does not parse.  Exit status 1 when any line is not "canonical".
 *       --time: print on stderr the bytes read and the seconds spent in
 *       marshal_parse(), marshal_write() and marshal_write_canonical().
 *
 *   test-tool stat-floor THREADS PASSES LIST
 *       The floor of a no-op run (make bench): LIST is a file of paths, one
 *       per line, the ones a no-op must stat() (directories, sources, pycs);
 *       each pass stat()s all of them on THREADS threads, handed out as
 *       prepyc hands out its own (parallel.h), and prints its milliseconds
 *       on a line.  Paths that are gone are stat()ed all the same.
 *
 * Exit status: 0 success; 1 a file could not be read (source-hash: the
 * others are still printed, its line is missing); 2 usage.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "marshal.h"
#include "parallel.h"
#include "relocate.h"
#include "siphash.h"
#include "strbuf.h"
#include "util.h"
#include "banned.h"

static int parse_hex(const char *hex, unsigned char *out, size_t n)
{
	size_t i;

	if (strlen(hex) != 2 * n)
		return -1;
	for (i = 0; i < 2 * n; i++) {
		char c = hex[i];
		int v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else
			return -1;
		if (i % 2)
			out[i / 2] |= (unsigned char)v;
		else
			out[i / 2] = (unsigned char)(v << 4);
	}
	return 0;
}

static int read_file(const char *path, struct strbuf *sb)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int saved;

	if (fd < 0)
		return error_errno("cannot open '%s'", path);
	if (strbuf_read_fd(sb, fd, 0) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return error_errno("cannot read '%s'", path);
	}
	close(fd);
	return 0;
}

static int cmd_source_hash(int argc, const char **argv)
{
	enum source_hash_kind kind;
	unsigned char magic[4], out[8];
	struct strbuf sb = STRBUF_INIT;
	int i, rc = 0;

	if (argc < 3)
		return -2;
	if (!strcmp(argv[1], "13"))
		kind = SOURCE_HASH_SIPHASH13;
	else if (!strcmp(argv[1], "24"))
		kind = SOURCE_HASH_SIPHASH24;
	else
		return -2;
	if (parse_hex(argv[2], magic, sizeof(magic)) < 0)
		return -2;
	for (i = 3; i < argc; i++) {
		strbuf_reset(&sb);
		if (read_file(argv[i], &sb) < 0) {
			rc = 1;
			continue;
		}
		pyc_source_hash(kind, magic, sb.buf, sb.len, out);
		printf("%02x%02x%02x%02x%02x%02x%02x%02x\n", out[0], out[1], out[2], out[3],
		       out[4], out[5], out[6], out[7]);
	}
	strbuf_release(&sb);
	return rc;
}

static int cmd_source_hash_kind(int argc, const char **argv)
{
	enum source_hash_kind kind;
	unsigned char magic[4], abc[8];

	if (argc != 3 || parse_hex(argv[1], magic, sizeof(magic)) < 0 ||
	    parse_hex(argv[2], abc, sizeof(abc)) < 0)
		return -2;
	if (source_hash_kind_from_probe(magic, abc, &kind) < 0) {
		error("no SipHash variant gives %s for b'abc' with magic %s", argv[2], argv[1]);
		return 1;
	}
	printf("%d\n", (int)kind);
	return 0;
}

/* "3.9" or "3.9pypy" */
static int parse_marshal_version(const char *s, struct marshal_version *v)
{
	char *end;
	long major, minor;

	major = strtol(s, &end, 10);
	if (end == s || *end != '.')
		return -1;
	s = end + 1;
	minor = strtol(s, &end, 10);
	if (end == s || major != 3 || minor < 6 || minor > 99)
		return -1;
	v->major = (int)major;
	v->minor = (int)minor;
	v->pypy = !strcmp(end, "pypy");
	if (*end && !v->pypy)
		return -1;
	return 0;
}

static int cmd_marshal_roundtrip(int argc, const char **argv)
{
	struct marshal_version v;
	struct strbuf sb = STRBUF_INIT, out = STRBUF_INIT;
	size_t header;
	int i, rc = 0;

	if (argc < 2 || parse_marshal_version(argv[1], &v) < 0)
		return -2;
	header = v.minor < 7 ? 12 : 16;
	for (i = 2; i < argc; i++) {
		struct marshal_err err;
		struct mobj *root;

		strbuf_reset(&sb);
		strbuf_reset(&out);
		if (read_file(argv[i], &sb) < 0) {
			printf("FAIL 0: cannot read '%s'\n", argv[i]);
			rc = 1;
			continue;
		}
		if (sb.len < header) {
			printf("FAIL 0: shorter than the %zu-byte header\n", header);
			rc = 1;
			continue;
		}
		if (marshal_parse((const unsigned char *)sb.buf + header, sb.len - header, &v, &root,
				  &err) < 0) {
			printf("FAIL %zu: %s\n", err.offset, err.msg);
			rc = 1;
			continue;
		}
		if (marshal_write(root, &v, &out) < 0 || out.len != sb.len - header ||
		    memcmp(out.buf, sb.buf + header, out.len)) {
			printf("DIFF\n");
			rc = 1;
		} else {
			printf("ok\n");
		}
		mobj_free(root);
	}
	strbuf_release(&sb);
	strbuf_release(&out);
	return rc;
}

static int write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	int saved;

	if (fd < 0)
		return error_errno("cannot create '%s'", path);
	if (write_in_full(fd, data, len) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return error_errno("cannot write '%s'", path);
	}
	if (close(fd) < 0)
		return error_errno("cannot write '%s'", path);
	return 0;
}

/* Read a pyc and parse its body; prints the "FAIL" line itself. */
static int parse_pyc(const char *path, const struct marshal_version *v, struct strbuf *sb,
		     struct mobj **root, double *parse_time)
{
	size_t header = v->minor < 7 ? 12 : 16;
	struct marshal_err err;
	double t0;

	strbuf_reset(sb);
	if (read_file(path, sb) < 0) {
		printf("FAIL 0: cannot read '%s'\n", path);
		return -1;
	}
	if (sb->len < header) {
		printf("FAIL 0: shorter than the %zu-byte header\n", header);
		return -1;
	}
	t0 = now_seconds();
	if (marshal_parse((const unsigned char *)sb->buf + header, sb->len - header, v, root,
			  &err) < 0) {
		printf("FAIL %zu: %s\n", err.offset, err.msg);
		return -1;
	}
	if (parse_time)
		*parse_time += now_seconds() - t0;
	return 0;
}

static int cmd_canon(int argc, const char **argv)
{
	struct marshal_version v;
	struct strbuf sb = STRBUF_INIT, out = STRBUF_INIT;
	int i, rc = 0;

	if (argc < 4 || argc % 2 || parse_marshal_version(argv[1], &v) < 0)
		return -2;
	for (i = 2; i + 1 < argc; i += 2) {
		size_t header = v.minor < 7 ? 12 : 16;
		struct mobj *root;

		if (parse_pyc(argv[i], &v, &sb, &root, NULL) < 0) {
			rc = 1;
			continue;
		}
		strbuf_reset(&out);
		strbuf_add(&out, sb.buf, header);
		if (marshal_write_canonical(root, &v, &out) < 0 ||
		    write_file(argv[i + 1], out.buf, out.len) < 0)
			rc = 1;
		mobj_free(root);
	}
	strbuf_release(&sb);
	strbuf_release(&out);
	return rc;
}

static int cmd_relocate(int argc, const char **argv)
{
	struct marshal_version v;
	struct strbuf sb = STRBUF_INIT, out = STRBUF_INIT;
	int i, rc = 0;

	if (argc < 5 || (argc - 2) % 3 || parse_marshal_version(argv[1], &v) < 0)
		return -2;
	for (i = 2; i + 2 < argc; i += 3) {
		size_t header = v.minor < 7 ? 12 : 16;
		struct marshal_err err;
		struct mobj *root;

		if (parse_pyc(argv[i], &v, &sb, &root, NULL) < 0) {
			rc = 1;
			continue;
		}
		if (marshal_relocate(root, &v, argv[i + 1], strlen(argv[i + 1]), &err) < 0) {
			printf("REFUSED %zu: %s\n", err.offset, err.msg);
			mobj_free(root);
			rc = 1;
			continue;
		}
		strbuf_reset(&out);
		strbuf_add(&out, sb.buf, header);
		if (marshal_write_canonical(root, &v, &out) < 0 ||
		    write_file(argv[i + 2], out.buf, out.len) < 0)
			rc = 1;
		mobj_free(root);
	}
	strbuf_release(&sb);
	strbuf_release(&out);
	return rc;
}

static int cmd_canon_check(int argc, const char **argv)
{
	struct marshal_version v;
	struct strbuf sb = STRBUF_INIT, out = STRBUF_INIT;
	double t_parse = 0, t_write = 0, t_canon = 0, t0;
	size_t total = 0;
	int i, rc = 0, timing = 0;

	if (argc > 1 && !strcmp(argv[1], "--time")) {
		timing = 1;
		argc--;
		argv++;
	}
	if (argc < 2 || parse_marshal_version(argv[1], &v) < 0)
		return -2;
	for (i = 2; i < argc; i++) {
		size_t header = v.minor < 7 ? 12 : 16;
		struct mobj *root;

		if (parse_pyc(argv[i], &v, &sb, &root, &t_parse) < 0) {
			rc = 1;
			continue;
		}
		total += sb.len;
		if (timing) {
			strbuf_reset(&out);
			t0 = now_seconds();
			if (marshal_write(root, &v, &out) < 0)
				rc = 1;
			t_write += now_seconds() - t0;
		}
		strbuf_reset(&out);
		t0 = now_seconds();
		if (marshal_write_canonical(root, &v, &out) < 0) {
			printf("FAIL 0: cannot write canonically\n");
			rc = 1;
		} else if (out.len == sb.len - header && !memcmp(out.buf, sb.buf + header, out.len)) {
			printf("canonical\n");
		} else {
			printf("not-canonical\n");
			rc = 1;
		}
		t_canon += now_seconds() - t0;
		mobj_free(root);
	}
	if (timing)
		fprintf(stderr, "%d files, %zu bytes: parse %.3fs, write %.3fs, canonical %.3fs\n",
			argc - 2, total, t_parse, t_write, t_canon);
	strbuf_release(&sb);
	strbuf_release(&out);
	return rc;
}

struct stat_list {
	char **path;
	size_t n;
};

static void stat_one(void *ctx, size_t i)
{
	struct stat_list *l = ctx;
	struct stat st;

	(void)!stat(l->path[i], &st);
}

static int cmd_stat_floor(int argc, const char **argv)
{
	struct strbuf sb = STRBUF_INIT;
	struct stat_list l = { NULL, 0 };
	size_t alloc = 0, threads, passes, k;
	char *p, *end;
	double t0;
	int fd;

	if (argc != 4 || (threads = (size_t)atoi(argv[1])) < 1 ||
	    (passes = (size_t)atoi(argv[2])) < 1)
		return -2;
	fd = open(argv[3], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || strbuf_read_fd(&sb, fd, 0) < 0) {
		error_errno("cannot read '%s'", argv[3]);
		if (fd >= 0)
			close(fd);
		return 1;
	}
	close(fd);
	for (p = sb.buf; p < sb.buf + sb.len; p = end + 1) {
		end = memchr(p, '\n', (size_t)(sb.buf + sb.len - p));
		if (!end)
			end = sb.buf + sb.len; /* (the strbuf's NUL ends the last line) */
		*end = '\0';
		if (end == p)
			continue;
		ALLOC_GROW(l.path, l.n + 1, alloc);
		l.path[l.n++] = p;
	}
	for (k = 0; k < passes; k++) {
		t0 = now_seconds();
		parallel_for(l.n, threads, stat_one, &l);
		printf("%.3f\n", (now_seconds() - t0) * 1000.0);
	}
	free(l.path);
	strbuf_release(&sb);
	return 0;
}

struct tool {
	const char *name;
	/* 0 success, 1 failure, -2 bad usage (the table's usage line is printed) */
	int (*fn)(int argc, const char **argv);
	const char *usage;
};

static const struct tool tools[] = {
	{ "source-hash", cmd_source_hash, "source-hash 13|24 MAGIC_HEX FILE..." },
	{ "source-hash-kind", cmd_source_hash_kind, "source-hash-kind MAGIC_HEX ABC_HEX" },
	{ "marshal-roundtrip", cmd_marshal_roundtrip, "marshal-roundtrip MAJOR.MINOR[pypy] FILE.pyc..." },
	{ "canon", cmd_canon, "canon MAJOR.MINOR[pypy] IN.pyc OUT.pyc [IN.pyc OUT.pyc]..." },
	{ "relocate", cmd_relocate,
	  "relocate MAJOR.MINOR[pypy] IN.pyc DFILE OUT.pyc [IN.pyc DFILE OUT.pyc]..." },
	{ "canon-check", cmd_canon_check, "canon-check [--time] MAJOR.MINOR[pypy] FILE.pyc..." },
	{ "stat-floor", cmd_stat_floor, "stat-floor THREADS PASSES LIST" },
};

static void usage(void)
{
	size_t i;

	fprintf(stderr, "usage:\n");
	for (i = 0; i < ARRAY_SIZE(tools); i++)
		fprintf(stderr, "  test-tool %s\n", tools[i].usage);
}

int main(int argc, const char **argv)
{
	size_t i;
	int rc;

	progname = "test-tool";
	if (argc < 2) {
		usage();
		return 2;
	}
	for (i = 0; i < ARRAY_SIZE(tools); i++) {
		if (strcmp(argv[1], tools[i].name))
			continue;
		rc = tools[i].fn(argc - 1, argv + 1);
		if (rc == -2) {
			fprintf(stderr, "usage: test-tool %s\n", tools[i].usage);
			return 2;
		}
		if (fflush(stdout) || ferror(stdout)) {
			error_errno("cannot write to stdout");
			return 1;
		}
		return rc;
	}
	error("unknown subcommand '%s'", argv[1]);
	usage();
	return 2;
}
