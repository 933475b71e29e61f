/*
 * Unit tests of the engine (src/engine/) without Python: a fake target
 * filled by hand, temporary trees made here, and a fake runner in place of
 * the worker pool (ninja's FakeCommandRunner) that answers each compile
 * frame by what its source says:
 *
 *   "SYNTAX" in the source  an error reply
 *   "CRASH"                 ops->failed() (the worker died)
 *   "WARN"                  a warning, then the code
 *   anything else           the code: a small 3.11 code object, canonical
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "blake2b.h"
#include "cache.h"
#include "cachekey.h"
#include "cofilename.h"
#include "engine.h"
#include "harness.h"
#include "plan.h"
#include "pool.h"
#include "proto.h"
#include "siphash.h"
#include "strbuf.h"
#include "util.h"
#include "walk.h"

/* ---- the fake world ---------------------------------------------------- */

/* `def f(a, b): return a + b`'s code as CPython 3.11 marshals it, canonical (test-canon.c). */
static const char code311_hex[] =
	"630100000000000000010000000200000013000000730c00000097007c007c017a0000005300"
	"29014e290029025a01615a0162730200000020207a083c737472696e673e5a01667a0f636f64"
	"652e3c6c6f63616c733e2e6604000000730a0000008000983198519933904a7300000000";

static size_t unhex(const char *hex, unsigned char *out)
{
	size_t n = strlen(hex) / 2, i;

	for (i = 0; i < n; i++) {
		unsigned v;

		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (unsigned char)v;
	}
	return n;
}

static void fake_target(struct target *t, int minor, int micro, const unsigned char magic[4])
{
	memset(t, 0, sizeof(*t));
	t->python = "fakepython";
	t->executable = "fakepython";
	t->version = "3.x";
	t->major = 3;
	t->minor = minor;
	t->micro = micro;
	t->implementation = "cpython";
	t->build = "fake build";
	t->cache_tag = minor == 8 ? "cpython-38" : minor == 13 ? "cpython-313" : "cpython-311";
	t->optimize = 0;
	t->recursion_limit = 1000;
	t->has_hash_pycs = 1;
	t->hash_kind = minor >= 11 ? 13 : 24;
	t->display = "FakePython 3.x";
	t->cwd = "/";
	memcpy(t->fmt.magic, magic, 4);
	t->fmt.header_len = 16;
	t->layout.cache_tag = t->cache_tag;
	t->layout.cwd = "/";
	t->layout.strip_dot_slash = minor >= 12;
}

static const unsigned char MAGIC38[4] = { 0x55, 0x0d, 0x0d, 0x0a };
static const unsigned char MAGIC311[4] = { 0xa7, 0x0d, 0x0d, 0x0a };
static const unsigned char MAGIC313[4] = { 0xf3, 0x0d, 0x0d, 0x0a };

struct fake {
	int frames;           /* compile frames taken */
	int reverse;          /* answer every frame at the end, last first */
	unsigned flags;       /* what the engine passed */
	char dfiles[16][256]; /* per id */
	int opts[16];
	const char *root;     /* the directory walked (in the tree), NULL: "pkg" */
};

static void answer(const struct pool_ops *ops, void *ctx, uint32_t id, const char *src)
{
	unsigned char code[256];
	struct proto_msg m;

	memset(&m, 0, sizeof(m));
	m.id = id;
	if (strstr(src, "CRASH")) {
		ops->failed(ctx, id, "was killed by signal 9 (Killed), twice");
		return;
	}
	if (strstr(src, "SYNTAX")) {
		m.type = PROTO_ERROR;
		m.data = "SyntaxError: invalid syntax";
		m.data_len = strlen(m.data);
		ops->reply(ctx, &m);
		return;
	}
	if (strstr(src, "WARN")) {
		struct strbuf body = STRBUF_INIT;
		struct proto_warning w;

		memset(&w, 0, sizeof(w));
		w.filename = "x.py";
		w.filename_len = 4;
		w.lineno = "1";
		w.lineno_len = 1;
		w.category = "SyntaxWarning";
		w.category_len = 13;
		w.message = "fake";
		w.message_len = 4;
		proto_add_warning(&body, &w);
		m.type = PROTO_WARNING;
		m.data = body.buf;
		m.data_len = body.len;
		if (proto_decode_warning(body.buf, body.len, &m.warn) < 0)
			BUG("fake runner: bad warning");
		ops->reply(ctx, &m);
		strbuf_release(&body);
	}
	m.type = PROTO_CODE;
	m.data_len = unhex(code311_hex, code);
	m.data = (const char *)code;
	ops->reply(ctx, &m);
}

static int fake_run(const struct runner *self, const struct target *t, int nworkers,
		    const struct pool_ops *ops, void *ctx, unsigned flags, double timeout)
{
	struct fake *fk = self->data;
	struct strbuf frame = STRBUF_INIT;
	uint32_t id, ids[16];
	char *srcs[16];
	int n = 0, i;

	(void)t;
	(void)nworkers;
	(void)timeout;
	fk->flags = flags;
	while (ops->next(ctx, &frame, &id)) {
		const char *payload;
		size_t plen;
		struct proto_msg m;

		if (proto_frame(frame.buf, frame.len, &payload, &plen) <= 0 ||
		    proto_decode(payload, plen, &m) < 0 || m.type != PROTO_COMPILE || m.id != id ||
		    id >= 16)
			BUG("fake runner: bad frame");
		fk->frames++;
		snprintf(fk->dfiles[id], sizeof(fk->dfiles[id]), "%.*s", (int)m.dfile_len, m.dfile);
		fk->opts[id] = m.optimize;
		ids[n] = id;
		srcs[n++] = xstrndup(m.data, m.data_len);
		if (!fk->reverse) {
			n--;
			answer(ops, ctx, ids[n], srcs[n]);
			free(srcs[n]);
		}
	}
	for (i = n - 1; i >= 0; i--) {
		answer(ops, ctx, ids[i], srcs[i]);
		free(srcs[i]);
	}
	strbuf_release(&frame);
	return 0;
}

/* ---- temporary trees and captured output -------------------------------- */

static char *make_tree(void)
{
	char *t = xstrdup("/tmp/prepyc-unit-engine-XXXXXX");

	if (!mkdtemp(t))
		die("mkdtemp: %s", strerror(errno));
	return t;
}

static void remove_tree(char *dir)
{
	char *cmd = xstrfmt("rm -rf '%s'", dir);

	if (system(cmd) != 0)
		printf("  (could not remove %s)\n", dir);
	free(cmd);
	free(dir);
}

static void put_file(const char *dir, const char *name, const char *text, time_t mtime)
{
	char *path = xstrfmt("%s/%s", dir, name);
	struct timeval tv[2] = { { mtime, 0 }, { mtime, 0 } };
	FILE *fp;

	char *slash = strrchr(path, '/');

	*slash = '\0';
	mkdir(path, 0777); /* one level: the tests' trees are shallow */
	*slash = '/';
	fp = fopen(path, "w");
	if (!fp)
		die("cannot write %s", path);
	fputs(text, fp);
	fclose(fp);
	utimes(path, tv);
	free(path);
}

static int read_all(const char *path, struct strbuf *sb)
{
	int fd = open(path, O_RDONLY), rc;

	strbuf_reset(sb);
	if (fd < 0)
		return -1;
	rc = strbuf_read_fd(sb, fd, 0) < 0 ? -1 : 0;
	close(fd);
	return rc;
}

struct capture {
	int saved[2];
	char *path[2];
};

static void capture_start(struct capture *c, const char *dir)
{
	int i;

	fflush(stdout);
	fflush(stderr);
	for (i = 0; i < 2; i++) {
		int fd;

		c->path[i] = xstrfmt("%s/.out%d", dir, i + 1);
		fd = open(c->path[i], O_WRONLY | O_CREAT | O_TRUNC, 0600);
		c->saved[i] = dup(i + 1);
		dup2(fd, i + 1);
		close(fd);
	}
}

/* Restore stdout/stderr; what was written to them into out[0], out[1]. */
static void capture_end(struct capture *c, struct strbuf *out)
{
	int i;

	fflush(stdout);
	fflush(stderr);
	for (i = 0; i < 2; i++) {
		dup2(c->saved[i], i + 1);
		close(c->saved[i]);
		read_all(c->path[i], &out[i]);
		unlink(c->path[i]);
		free(c->path[i]);
	}
}

/* Run the engine on `dir` with the fake runner; stdout and stderr into out[]. */
static int run_engine(struct engine_opts *o, const struct target *t, const char *dir,
		      struct fake *fk, struct strbuf *out, int *any_failed)
{
	struct runner fake = { fake_run, fk };
	struct source_list list = SOURCE_LIST_INIT;
	struct capture c;
	char *cwd = getcwd(NULL, 0);
	int rc;

	o->runner = &fake;
	o->jobs = 1;
	*any_failed = 0;
	if (chdir(dir) < 0)
		die("chdir");
	walk_path(fk->root ? fk->root : "pkg", 100, o->style == STYLE_COMPILEALL ? WALK_COMPILEALL : 0,
		  &list);
	capture_start(&c, dir);
	rc = engine_run(o, t, &list, any_failed);
	capture_end(&c, out);
	if (chdir(cwd) < 0)
		die("chdir");
	free(cwd);
	source_list_release(&list);
	return rc;
}

static int exists(const char *dir, const char *rel)
{
	char *p = xstrfmt("%s/%s", dir, rel);
	struct stat st;
	int ok = stat(p, &st) == 0;

	free(p);
	return ok;
}

/* ---- planning ------------------------------------------------------------ */

static void plan_tree(struct plan *p, const struct plan_opts *po, const struct target *t,
		      const char *dir, struct source_list *list)
{
	char *cwd = getcwd(NULL, 0);

	if (chdir(dir) < 0)
		die("chdir");
	walk_path("pkg", 100, WALK_COMPILEALL, list);
	plan_build(p, po, t, list);
	if (chdir(cwd) < 0)
		die("chdir");
	free(cwd);
}

TEST(engine_plan_levels_and_pyc_paths)
{
	char *dir = make_tree();
	struct target t;
	struct source_list list = SOURCE_LIST_INIT;
	struct plan p = PLAN_INIT;
	struct plan_opts po;
	int levels[] = { 2, -1, 0, 2 };

	fake_target(&t, 11, 0, MAGIC311);
	put_file(dir, "pkg/a.py", "a = 1\n", 1700000000);
	put_file(dir, "pkg/notes.txt", "x\n", 1700000000);
	memset(&po, 0, sizeof(po));
	po.maxlevels = -1;
	po.levels = levels;
	po.nlevels = 4;
	plan_tree(&p, &po, &t, dir, &list);
	/* the directory, the source, the other file: only the source is a candidate */
	CHECK_INT(p.nfiles, 3);
	CHECK_INT(p.files[0].state, FS_SKIP);
	CHECK_INT(p.files[1].state, FS_PENDING);
	CHECK_INT(p.files[2].state, FS_SKIP);
	/* sorted(set(2, -1, 0, 2)) = -1, 0, 2; -1 is the target's 0, one pyc */
	CHECK_INT(p.nitems, 2);
	CHECK_INT(p.files[1].nlevels, 2);
	CHECK_INT(p.files[1].first, 0);
	CHECK_STR(p.items[0].pyc, "pkg/__pycache__/a.cpython-311.pyc");
	CHECK_INT(p.items[0].opt, 0);
	CHECK_STR(p.items[1].pyc, "pkg/__pycache__/a.cpython-311.opt-2.pyc");
	CHECK_INT(p.items[1].opt, 2);
	CHECK(p.files[1].dfile == NULL);
	plan_release(&p);

	/* -b: every level shares SOURCE.pyc, compiled at the last level */
	po.legacy = 1;
	plan_build(&p, &po, &t, &list);
	CHECK_INT(p.nitems, 1);
	CHECK_STR(p.items[0].pyc, "pkg/a.pyc");
	CHECK_INT(p.items[0].opt, 2);
	plan_release(&p);

	/* -x: excluded entries are files, but not candidates */
	{
		unsigned char skip[3] = { 0, 1, 0 };

		po.legacy = 0;
		po.rx_skip = skip;
		plan_build(&p, &po, &t, &list);
		CHECK_INT(p.files[1].state, FS_SKIP);
		CHECK_INT(p.nitems, 0);
		plan_release(&p);
	}
	source_list_release(&list);
	remove_tree(dir);
}

TEST(engine_plan_freshness)
{
	char *dir = make_tree();
	struct target t;
	struct engine_opts o = ENGINE_OPTS_INIT;
	struct strbuf out[2] = { STRBUF_INIT, STRBUF_INIT };
	struct fake fk;
	int failed;

	fake_target(&t, 11, 0, MAGIC311);
	put_file(dir, "pkg/a.py", "a = 1\n", 1700000000);
	put_file(dir, "pkg/b.py", "b = 2\n", 1700000000);
	memset(&fk, 0, sizeof(fk));
	CHECK_INT(run_engine(&o, &t, dir, &fk, out, &failed), 0);
	CHECK_INT(fk.frames, 2);

	/* fresh files make no items */
	memset(&fk, 0, sizeof(fk));
	CHECK_INT(run_engine(&o, &t, dir, &fk, out, &failed), 0);
	CHECK_INT(fk.frames, 0);
	CHECK(strstr(out[0].buf, "0 compiled, 2 up to date, 0 failed") != NULL);

	/* a changed mtime, then a changed size with the same mtime */
	put_file(dir, "pkg/a.py", "a = 1\n", 1700000001);
	memset(&fk, 0, sizeof(fk));
	run_engine(&o, &t, dir, &fk, out, &failed);
	CHECK_INT(fk.frames, 1);
	CHECK_STR(fk.dfiles[0], "pkg/a.py");
	put_file(dir, "pkg/b.py", "b = 22\n", 1700000000);
	memset(&fk, 0, sizeof(fk));
	run_engine(&o, &t, dir, &fk, out, &failed);
	CHECK_INT(fk.frames, 1);
	CHECK_STR(fk.dfiles[0], "pkg/b.py");

	/* -f: nothing is fresh */
	o.force = 1;
	memset(&fk, 0, sizeof(fk));
	run_engine(&o, &t, dir, &fk, out, &failed);
	CHECK_INT(fk.frames, 2);
	strbuf_release(&out[0]);
	strbuf_release(&out[1]);
	remove_tree(dir);
}

TEST(engine_plan_duplicates)
{
	char *dir = make_tree();
	char *cwd = getcwd(NULL, 0);
	struct target t;
	struct source_list list = SOURCE_LIST_INIT;
	struct plan p = PLAN_INIT;
	struct plan_opts po;

	fake_target(&t, 11, 0, MAGIC311);
	put_file(dir, "pkg/a.py", "a = 1\n", 1700000000);
	memset(&po, 0, sizeof(po));
	po.maxlevels = -1;
	if (chdir(dir) < 0)
		die("chdir");
	/* the same file given twice, and once more by another spelling */
	walk_path("pkg/a.py", 0, 0, &list);
	walk_path("pkg/a.py", 0, 0, &list);
	walk_path("./pkg/a.py", 0, 0, &list);
	plan_build(&p, &po, &t, &list);
	plan_mark_duplicates(&p, 0);
	CHECK_INT(p.nfiles, 3);
	CHECK(p.files[0].writer == &p.files[0]);
	CHECK(p.files[1].writer == &p.files[0]);
	CHECK(p.files[2].writer == &p.files[0]);
	plan_release(&p);
	/* -f: compileall rewrites the pyc each time, the last one stays */
	plan_build(&p, &po, &t, &list);
	plan_mark_duplicates(&p, 1);
	CHECK(p.files[0].writer == &p.files[2]);
	CHECK(p.files[2].writer == &p.files[2]);
	plan_release(&p);
	if (chdir(cwd) < 0)
		die("chdir");
	free(cwd);
	source_list_release(&list);
	remove_tree(dir);
}

/* ---- co_filename ------------------------------------------------------- */

static char *dfile_of(const struct target *t, const struct cofilename_opts *o, const char *path,
		      int top, const char *arg, char **note)
{
	struct source s;
	char *d;

	memset(&s, 0, sizeof(s));
	s.path = (char *)path;
	s.top = (unsigned char)top;
	*note = NULL;
	d = cofilename_compute(o, t, &s, arg, note);
	return d ? d : xstrdup("(path)");
}

TEST(engine_cofilename_rules_38_and_313)
{
	struct target t38, t313;
	struct cofilename_opts d = { "/inst", NULL, NULL }, sp = { NULL, "/src", "/inst" };
	struct cofilename_opts bad = { NULL, "/other", NULL };
	char *note, *s;

	fake_target(&t38, 8, 2, MAGIC38);
	fake_target(&t313, 13, 0, MAGIC313);

	/* -d under a directory argument: 3.8.2+ keeps the directories under it */
	s = dfile_of(&t38, &d, "/src/pkg/sub/m.py", 0, "/src/pkg", &note);
	CHECK_STR(s, "/inst/sub/m.py");
	free(s);
	/* 3.8.1 kept only the name */
	t38.micro = 1;
	s = dfile_of(&t38, &d, "/src/pkg/sub/m.py", 0, "/src/pkg", &note);
	CHECK_STR(s, "/inst/m.py");
	free(s);
	/* a file argument: DIR/NAME */
	s = dfile_of(&t38, &d, "/src/pkg/sub/m.py", 1, NULL, &note);
	CHECK_STR(s, "/inst/m.py");
	free(s);
	/* no option: the path itself */
	{
		struct cofilename_opts none = { NULL, NULL, NULL };

		s = dfile_of(&t38, &none, "/src/pkg/m.py", 0, "/src/pkg", &note);
		CHECK_STR(s, "(path)");
		free(s);
	}

	/* 3.13: -d is stripdir=ARG, prependdir=DIR */
	s = dfile_of(&t313, &d, "/src/pkg/sub/m.py", 0, "/src/pkg", &note);
	CHECK_STR(s, "/inst/sub/m.py");
	free(s);
	/* -s/-p */
	s = dfile_of(&t313, &sp, "/src/pkg/m.py", 0, "/src", &note);
	CHECK_STR(s, "/inst/pkg/m.py");
	CHECK(note == NULL);
	free(s);
	/* 3.13: a -s that is not a prefix is ignored, with compileall's note */
	s = dfile_of(&t313, &bad, "/src/pkg/m.py", 0, "/src", &note);
	CHECK_STR(s, "(path)");
	CHECK_STR(note, "The stripdir path '/other' is not a valid prefix for source path "
			"'/src/pkg/m.py'; ignoring");
	free(note);
	free(s);
}

/* ---- whole runs ----------------------------------------------------------- */

TEST(engine_run_writes_pycs_with_the_header)
{
	char *dir = make_tree();
	struct target t;
	struct engine_opts o = ENGINE_OPTS_INIT;
	struct strbuf out[2] = { STRBUF_INIT, STRBUF_INIT }, pyc = STRBUF_INIT;
	unsigned char code[256], hdr[16];
	size_t n = unhex(code311_hex, code);
	char *path;
	struct fake fk;
	int failed;

	fake_target(&t, 11, 0, MAGIC311);
	put_file(dir, "pkg/a.py", "a = 1\n", 1700000000);
	memset(&fk, 0, sizeof(fk));
	CHECK_INT(run_engine(&o, &t, dir, &fk, out, &failed), 0);
	CHECK_INT(failed, 0);
	CHECK(fk.flags == 0); /* concise: the workers do not keep PYTHONWARNINGS */
	CHECK(strstr(out[0].buf, "prepyc: 1 compiled, 0 up to date, 0 failed (FakePython 3.x, "
				 "cpython-311, 1 worker) in ") == out[0].buf);
	CHECK_STR(out[1].buf, "");
	path = xstrfmt("%s/pkg/__pycache__/a.cpython-311.pyc", dir);
	CHECK_INT(read_all(path, &pyc), 0);
	CHECK_INT(pyc.len, 16 + n);
	memcpy(hdr, MAGIC311, 4);
	put_le32(hdr + 4, 0);
	put_le32(hdr + 8, 1700000000);
	put_le32(hdr + 12, 6);
	CHECK_MEM(pyc.buf, hdr, 16);
	CHECK_MEM(pyc.buf + 16, code, n);

	/* checked-hash: flags 3 and the source's SipHash-1-3 */
	o.invalidation = INVAL_CHECKED_HASH;
	memset(&fk, 0, sizeof(fk));
	run_engine(&o, &t, dir, &fk, out, &failed);
	CHECK_INT(fk.frames, 1);
	CHECK_INT(read_all(path, &pyc), 0);
	put_le32(hdr + 4, 3);
	pyc_source_hash(13, MAGIC311, "a = 1\n", 6, hdr + 8);
	CHECK_MEM(pyc.buf, hdr, 16);
	free(path);
	strbuf_release(&pyc);
	strbuf_release(&out[0]);
	strbuf_release(&out[1]);
	remove_tree(dir);
}

TEST(engine_compile_error_is_reported_and_the_others_written)
{
	char *dir = make_tree();
	struct target t;
	struct engine_opts o = ENGINE_OPTS_INIT;
	struct strbuf out[2] = { STRBUF_INIT, STRBUF_INIT };
	struct fake fk;
	int failed;

	fake_target(&t, 11, 0, MAGIC311);
	put_file(dir, "pkg/a.py", "a = 1\n", 1700000000);
	put_file(dir, "pkg/bad.py", "SYNTAX\n", 1700000000);
	put_file(dir, "pkg/c.py", "c = 3  # WARN\n", 1700000000);
	memset(&fk, 0, sizeof(fk));
	CHECK_INT(run_engine(&o, &t, dir, &fk, out, &failed), 0);
	CHECK_INT(failed, 1);
	CHECK(exists(dir, "pkg/__pycache__/a.cpython-311.pyc"));
	CHECK(exists(dir, "pkg/__pycache__/c.cpython-311.pyc"));
	CHECK(!exists(dir, "pkg/__pycache__/bad.cpython-311.pyc"));
	CHECK(strstr(out[0].buf, "prepyc: 2 compiled, 0 up to date, 1 failed") == out[0].buf);
	CHECK(strstr(out[1].buf, "prepyc: error: cannot compile 'pkg/bad.py': "
				 "SyntaxError: invalid syntax\n") != NULL);
	CHECK(strstr(out[1].buf, "prepyc: warning: while compiling 'pkg/c.py': "
				 "x.py:1: SyntaxWarning: fake\n") != NULL);

	/* compileall style: its lines in walk order, whatever order the replies come in */
	o.style = STYLE_COMPILEALL;
	o.force = 1;
	memset(&fk, 0, sizeof(fk));
	fk.reverse = 1;
	CHECK_INT(run_engine(&o, &t, dir, &fk, out, &failed), 0);
	CHECK_INT(failed, 1);
	CHECK(fk.flags == POOL_KEEP_WARNINGS_ENV);
	CHECK_STR(out[0].buf, "Listing 'pkg'...\n"
			      "Compiling 'pkg/a.py'...\n"
			      "Compiling 'pkg/bad.py'...\n"
			      "*** SyntaxError: invalid syntax\n"
			      "Compiling 'pkg/c.py'...\n");
	CHECK_STR(out[1].buf, "x.py:1: SyntaxWarning: fake\n");
	strbuf_release(&out[0]);
	strbuf_release(&out[1]);
	remove_tree(dir);
}

TEST(engine_worker_failure_fails_the_file)
{
	char *dir = make_tree();
	struct target t;
	struct engine_opts o = ENGINE_OPTS_INIT;
	struct strbuf out[2] = { STRBUF_INIT, STRBUF_INIT };
	struct fake fk;
	int failed;

	fake_target(&t, 11, 0, MAGIC311);
	put_file(dir, "pkg/a.py", "a = 1\n", 1700000000);
	put_file(dir, "pkg/boom.py", "CRASH\n", 1700000000);
	memset(&fk, 0, sizeof(fk));
	CHECK_INT(run_engine(&o, &t, dir, &fk, out, &failed), 0);
	CHECK_INT(failed, 1);
	CHECK(exists(dir, "pkg/__pycache__/a.cpython-311.pyc"));
	CHECK(!exists(dir, "pkg/__pycache__/boom.cpython-311.pyc"));
	CHECK_STR(out[1].buf, "prepyc: error: cannot compile 'pkg/boom.py': the worker compiling "
			      "it was killed by signal 9 (Killed), twice\n");

	o.style = STYLE_COMPILEALL;
	memset(&fk, 0, sizeof(fk));
	run_engine(&o, &t, dir, &fk, out, &failed);
	CHECK_INT(fk.frames, 1);
	CHECK_STR(out[0].buf, "Listing 'pkg'...\n"
			      "Compiling 'pkg/boom.py'...\n"
			      "*** RuntimeError: the worker compiling it was killed by signal 9 "
			      "(Killed), twice\n");
	strbuf_release(&out[0]);
	strbuf_release(&out[1]);
	remove_tree(dir);
}

TEST(engine_cache_hit_writes_without_compiling)
{
	char *dir = make_tree();
	char *cdir = xstrfmt("%s/cache", dir);
	struct target t;
	struct engine_opts o = ENGINE_OPTS_INIT;
	struct strbuf out[2] = { STRBUF_INIT, STRBUF_INIT }, pyc1 = STRBUF_INIT, pyc2 = STRBUF_INIT;
	char *path = xstrfmt("%s/pkg/__pycache__/c.cpython-311.pyc", dir);
	struct fake fk;
	size_t hits, misses, stored;
	int failed;

	fake_target(&t, 11, 0, MAGIC311);
	put_file(dir, "pkg/a.py", "a = 1\n", 1700000000);
	put_file(dir, "pkg/c.py", "c = 3  # WARN\n", 1700000000);
	o.cache = cache_open(cdir, CACHE_DEFAULT_MAX_SIZE);
	CHECK(o.cache != NULL);
	memset(&fk, 0, sizeof(fk));
	run_engine(&o, &t, dir, &fk, out, &failed);
	CHECK_INT(fk.frames, 2);
	cache_counts(o.cache, &hits, &misses, &stored);
	CHECK_INT(hits, 0);
	CHECK_INT(stored, 2);
	CHECK_INT(read_all(path, &pyc1), 0);

	/* -f: every pyc again, from the cache, the warning replayed */
	o.force = 1;
	memset(&fk, 0, sizeof(fk));
	run_engine(&o, &t, dir, &fk, out, &failed);
	CHECK_INT(fk.frames, 0);
	cache_counts(o.cache, &hits, &misses, &stored);
	CHECK_INT(hits, 2);
	CHECK(strstr(out[0].buf, "2 compiled, 0 up to date, 0 failed (FakePython 3.x, "
				 "cpython-311, 0 workers, 2 from the cache)") != NULL);
	CHECK_STR(out[1].buf, "prepyc: warning: while compiling 'pkg/c.py': "
			      "x.py:1: SyntaxWarning: fake\n");
	CHECK_INT(read_all(path, &pyc2), 0);
	CHECK(pyc1.len == pyc2.len && !memcmp(pyc1.buf, pyc2.buf, pyc1.len));
	cache_close(o.cache, "unit");
	free(path);
	free(cdir);
	strbuf_release(&pyc1);
	strbuf_release(&pyc2);
	strbuf_release(&out[0]);
	strbuf_release(&out[1]);
	remove_tree(dir);
}

/* The same sources at another path: hits, relocated (co_filename the new dfile). */
TEST(engine_cache_hit_at_another_path)
{
	char *dir = make_tree();
	char *cdir = xstrfmt("%s/cache", dir);
	char *path = xstrfmt("%s/two/__pycache__/c.cpython-311.pyc", dir);
	const char *dfile = "two/c.py";
	struct target t;
	struct engine_opts o = ENGINE_OPTS_INIT;
	struct strbuf out[2] = { STRBUF_INIT, STRBUF_INIT }, pyc = STRBUF_INIT;
	struct fake fk;
	int failed;

	fake_target(&t, 11, 0, MAGIC311);
	put_file(dir, "one/c.py", "c = 3  # WARN\n", 1700000000);
	o.cache = cache_open(cdir, CACHE_DEFAULT_MAX_SIZE);
	memset(&fk, 0, sizeof(fk));
	fk.root = "one";
	run_engine(&o, &t, dir, &fk, out, &failed);
	CHECK_INT(fk.frames, 1);
	put_file(dir, "two/c.py", "c = 3  # WARN\n", 1700000100);
	memset(&fk, 0, sizeof(fk));
	fk.root = "two";
	run_engine(&o, &t, dir, &fk, out, &failed);
	CHECK_INT(fk.frames, 0);
	CHECK(strstr(out[0].buf, "1 from the cache") != NULL);
	/* the warning did not name the dfile: as it was */
	CHECK_STR(out[1].buf, "prepyc: warning: while compiling 'two/c.py': "
			      "x.py:1: SyntaxWarning: fake\n");
	CHECK_INT(read_all(path, &pyc), 0);
	CHECK(memmem(pyc.buf, pyc.len, dfile, strlen(dfile)) != NULL);
	CHECK(memmem(pyc.buf, pyc.len, "<string>", 8) == NULL);
	cache_close(o.cache, "unit");
	free(path);
	free(cdir);
	strbuf_release(&pyc);
	strbuf_release(&out[0]);
	strbuf_release(&out[1]);
	remove_tree(dir);
}

/* When an entry is relocatable (cachekey.h). */
TEST(engine_cache_key_relocatable_rules)
{
	CHECK_INT(cache_key_relocatable(1, NULL, "pkg/a.py", "a = 1\n", 6), 1);
	CHECK_INT(cache_key_relocatable(1, "", "pkg/a.py", "a = 1\n", 6), 1);
	CHECK_INT(cache_key_relocatable(0, NULL, "pkg/a.py", "a = 1\n", 6), 0);
	CHECK_INT(cache_key_relocatable(1, "error", "pkg/a.py", "a = 1\n", 6), 0);
	CHECK_INT(cache_key_relocatable(1, NULL, "__main__.py", "a = 1\n", 6), 0);
	CHECK_INT(cache_key_relocatable(1, NULL, "x/__main__.py", "a = 1\n", 6), 1);
	CHECK_INT(cache_key_relocatable(1, NULL, "p\xc3\xa9/a.py", "a = 1\n", 6), 0);
	CHECK_INT(cache_key_relocatable(1, NULL, "", "a = 1\n", 6), 0);
	CHECK_INT(cache_key_relocatable(1, NULL, "pkg/a.py", "F = 'pkg/a.py'\n", 15), 0);
	CHECK_INT(cache_key_relocatable(1, NULL, "pkg/a.py", "F = 'pkg/a.p'\n", 14), 1);
}

/* The key recipe of cachekey.h, written down again: keys must not change. */
TEST(engine_cache_key_recipe)
{
	static const char id_want[] =
		"prepyc-cache-key=2\0implementation=cpython\0build=fake build\0magic=a70d0d0a\0"
		"cache_tag=cpython-311\0hashseed=0\0warnings=error\0canonical=1";
	struct target t;
	struct strbuf id = STRBUF_INIT;
	unsigned char key[CACHE_KEY_LEN], want[CACHE_KEY_LEN], len[8] = { 6 };
	struct blake2b b;
	const char *seed = getenv("PYTHONHASHSEED");
	char *saved = seed ? xstrdup(seed) : NULL;

	unsetenv("PYTHONHASHSEED");
	fake_target(&t, 11, 0, MAGIC311);
	cache_key_identity(&id, &t, 1, "error");
	CHECK_INT(id.len, sizeof(id_want));
	CHECK_MEM(id.buf, id_want, sizeof(id_want));
	cache_key_compute(&id, 2, "pkg/a.py", "a = 1\n", 6, key);
	blake2b_init(&b, CACHE_KEY_LEN);
	blake2b_update(&b, id_want, sizeof(id_want));
	blake2b_update(&b, "2", 2);
	blake2b_update(&b, "=pkg/a.py", 10);
	blake2b_update(&b, len, 8);
	blake2b_update(&b, "a = 1\n", 6);
	blake2b_final(&b, want);
	CHECK_MEM(key, want, CACHE_KEY_LEN);
	/* relocatable: no dfile */
	cache_key_compute(&id, 2, NULL, "a = 1\n", 6, key);
	blake2b_init(&b, CACHE_KEY_LEN);
	blake2b_update(&b, id_want, sizeof(id_want));
	blake2b_update(&b, "2", 2);
	blake2b_update(&b, "*", 2);
	blake2b_update(&b, len, 8);
	blake2b_update(&b, "a = 1\n", 6);
	blake2b_final(&b, want);
	CHECK_MEM(key, want, CACHE_KEY_LEN);
	/* a free-threaded build of the same version: another identity */
	t.gil_disabled = 1;
	strbuf_reset(&id);
	cache_key_identity(&id, &t, 1, "error");
	CHECK_INT(id.len, sizeof(id_want) + sizeof("gil_disabled=1"));
	CHECK_MEM(id.buf + sizeof(id_want), "gil_disabled=1", sizeof("gil_disabled=1"));
	if (saved)
		setenv("PYTHONHASHSEED", saved, 1);
	free(saved);
	strbuf_release(&id);
}
