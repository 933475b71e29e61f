#define _GNU_SOURCE /* memmem */
#include "target.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cachedir.h"
#include "child.h"
#include "factscache.h"
#include "siphash.h"
#include "strbuf.h"
#include "trustdir.h"
#include "util.h"
#include "banned.h"

extern const char facts_py[];
extern const char worker_py[];

const char *target_default_python(void)
{
	static char *venv_python;
	const char *named = getenv("PREPYC_PYTHON"); /* set by `python -m prepyc` */
	const char *venv = getenv("VIRTUAL_ENV");

	if (named && *named)
		return named;
	if (venv && *venv) {
		if (!venv_python)
			venv_python = xstrfmt("%s/bin/python", venv);
		return venv_python;
	}
	return "python3";
}

/* Find KEY in the NUL-separated KEY=VALUE records; NULL if absent. */
static const char *fact(const struct strbuf *out, const char *key)
{
	size_t klen = strlen(key);
	const char *p = out->buf, *end = out->buf + out->len;

	while (p < end) {
		size_t n = strnlen(p, (size_t)(end - p));
		if (n > klen && !memcmp(p, key, klen) && p[klen] == '=')
			return p + klen + 1;
		p += n + 1;
	}
	return NULL;
}

static int parse_magic(const char *hex, unsigned char magic[4])
{
	int i;

	if (!hex || strlen(hex) != 8)
		return -1;
	for (i = 0; i < 4; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		magic[i] = (unsigned char)v;
	}
	return 0;
}

/*
 * An unlinked temporary file for the probe's stderr (a file, not a pipe: it
 * cannot fill up while we read its stdout); -1 if none can be made, and the
 * probe writes to our stderr.
 */
static int probe_err_file(void)
{
	const char *dir = getenv("TMPDIR");
	char *path = xstrfmt("%s/.prepyc-probe-XXXXXX", dir && *dir ? dir : "/tmp");
	int fd = mkstemp(path);

	if (fd >= 0) {
		unlink(path);
		set_cloexec(fd);
	}
	free(path);
	return fd;
}

/*
 * The first line of what the probe printed on stderr, printable and at most
 * 100 characters, or NULL: enough to say why a program is no Python without
 * echoing its arguments (a program that is not Python may print all of
 * facts.py back).  With `all`, the whole of it.
 */
static char *probe_stderr(struct target *t, int all)
{
	struct strbuf sb = STRBUF_INIT;
	size_t len;
	char *nl;

	if (t->probe_err_fd < 0 || lseek(t->probe_err_fd, 0, SEEK_SET) < 0 ||
	    strbuf_read_fd(&sb, t->probe_err_fd, 0) < 0 || !sb.len) {
		strbuf_release(&sb);
		return NULL;
	}
	if (all)
		return strbuf_detach(&sb, NULL);
	/* a program that is no Python, echoing facts.py back: not worth a word */
	if (memmem(sb.buf, sb.len, facts_py, 24)) {
		strbuf_release(&sb);
		return NULL;
	}
	nl = memchr(sb.buf, '\n', sb.len);
	len = nl ? (size_t)(nl - sb.buf) : sb.len;
	if (len > 100) {
		strbuf_setlen(&sb, 97);
		strbuf_addstr(&sb, "...");
	} else {
		strbuf_setlen(&sb, len);
	}
	return strbuf_detach(&sb, NULL);
}

/* Start facts.py in `python`, its stdout on t->probe_fd, its stderr in t->probe_err_fd. */
static int facts_start(struct target *t, const char *python)
{
	/*
	 * -S -s -B: the probe must neither run the caller's site hooks nor
	 * write bytecode of its own; the environment is kept, so that
	 * PYTHONOPTIMIZE and PYTHONPYCACHEPREFIX count as they do for compileall.
	 */
	const char *argv[] = { python, "-S", "-s", "-B", "-c", facts_py, NULL };
	int pfd[2];

	t->probe = (struct child)CHILD_INIT;
	t->probe_fd = -1;
	if (pipe(pfd) < 0)
		return error_errno("cannot create a pipe");
	set_cloexec(pfd[0]);
	set_cloexec(pfd[1]);
	t->probe.argv = argv;
	t->probe.out_fd = pfd[1];
	t->probe_err_fd = probe_err_file();
	t->probe.err_fd = t->probe_err_fd;
	t->probe.search_path = !strchr(python, '/');
	if (child_start(&t->probe) < 0) {
		int e = errno;
		close(pfd[0]);
		close(pfd[1]);
		errno = e;
		if (e == ENOEXEC)
			return error("cannot run '%s': not an executable program", python);
		return error_errno("cannot run '%s'", python);
	}
	close(pfd[1]);
	t->probe_fd = pfd[0];
	return 0;
}

/* Collect what facts.py printed into `out`. */
static int facts_finish(struct target *t, const char *python, struct strbuf *out)
{
	int status;
	long n = strbuf_read_fd(out, t->probe_fd, 1024);
	int e = errno;

	close(t->probe_fd);
	t->probe_fd = -1;
	if (child_wait(&t->probe, &status) < 0)
		return error_errno("cannot wait for '%s'", python);
	if (n < 0) {
		errno = e;
		return error_errno("cannot read from '%s'", python);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char *said;

		if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && !out->len)
			return error("cannot run '%s': not found", python);
		said = probe_stderr(t, 0);
		error("'%s' is not a usable Python interpreter (%s%s%s)", python,
		      child_describe_status(status), said ? "; it printed: " : "",
		      said ? said : "");
		free(said);
		return -1;
	}
	return 0;
}

/* A usable target that printed something on stderr: show it, as it would have been. */
static void show_probe_stderr(struct target *t)
{
	char *said = probe_stderr(t, 1);

	if (said) {
		fflush(stdout);
		fput_printable(said, strlen(said), stderr);
		if (said[strlen(said) - 1] != '\n')
			fputc('\n', stderr);
		free(said);
	}
}

static char *dup_fact(const struct strbuf *out, const char *key)
{
	const char *v = fact(out, key);
	return v ? xstrdup(v) : NULL;
}

static void build_worker_argv(struct target *t)
{
	const char **argv = xcalloc(8, sizeof(*argv));
	int i = 0;

	argv[i++] = t->executable;
	argv[i++] = "-S"; /* no site: workers import nothing of the environment */
	argv[i++] = "-s";
	argv[i++] = "-B"; /* and write no bytecode of their own */
	argv[i++] = "-c";
	argv[i++] = worker_py;
	argv[i] = NULL;
	t->worker_argv = argv;
}

int target_probe_start(struct target *t, const char *python, const char *cache_dir,
		       unsigned cache_flags)
{
	memset(t, 0, sizeof(*t));
	t->python = xstrdup(python);
	t->probe_fd = t->probe_err_fd = -1;
	strbuf_init(&t->cache_key, 0);
	strbuf_init(&t->cached, 0);
	if (factscache_key(python, &t->cache_key) == 0) {
		t->cacheable = 1;
		t->facts_dir = cache_dir_resolve(cache_dir);
		t->facts_flags = cache_flags;
		if (factscache_get(t->facts_dir, cache_flags, &t->cache_key, &t->cached)) {
			trace("facts of '%s' from the cache", python);
			return 0; /* no interpreter to start */
		}
	}
	if (facts_start(t, python) < 0) {
		target_release(t);
		return -1;
	}
	return 0;
}

int target_probe(struct target *t, const char *python)
{
	if (target_probe_start(t, python, NULL, cache_dir_shared(0) ? TRUST_SHARED : 0) < 0)
		return -1;
	return target_probe_finish(t);
}

int target_probe_finish(struct target *t)
{
	struct strbuf out = STRBUF_INIT;
	const char *v, *exe, *python = t->python;
	char cwd[4096];
	int micro = 0, store = 0;

	if (t->cached.len) {
		strbuf_add(&out, t->cached.buf, t->cached.len);
	} else {
		if (facts_finish(t, python, &out) < 0)
			goto fail;
		store = t->cacheable;
		show_probe_stderr(t);
	}
	v = fact(&out, "version");
	if (!v || sscanf(v, "%d.%d.%d", &t->major, &t->minor, &micro) < 2) {
		error("'%s' is not a usable Python interpreter (it did not report its version)",
		      python);
		goto fail;
	}
	t->version = xstrdup(v);
	t->micro = micro;
	if (t->major < 3) {
		error("'%s' is Python %s: prepyc supports Python 3.6 and later only", python, v);
		goto fail;
	}
	if (t->major == 3 && t->minor < 6) {
		error("'%s' is Python %s: prepyc supports Python 3.6 and later only", python, v);
		goto fail;
	}
	if (!fact(&out, "end") || parse_magic(fact(&out, "magic"), t->fmt.magic) < 0) {
		error("'%s' did not report its bytecode facts", python);
		goto fail;
	}
	t->implementation = dup_fact(&out, "implementation");
	t->impl_version = dup_fact(&out, "impl_version");
	t->build = dup_fact(&out, "build");
	if (!t->build)
		t->build = xstrdup("");
	if (!t->implementation)
		t->implementation = xstrdup("python");
	v = fact(&out, "gil_disabled");
	t->gil_disabled = v ? atoi(v) : 0;
	if (!strcmp(t->implementation, "cpython"))
		t->display = xstrfmt("CPython %s%s", t->version,
				     t->gil_disabled ? " (free-threaded)" : "");
	else if (!strcmp(t->implementation, "pypy") && t->impl_version)
		t->display = xstrfmt("PyPy %s (Python %s)", t->impl_version, t->version);
	else
		t->display = xstrfmt("%s %s", t->implementation, t->version);
	t->cache_tag = dup_fact(&out, "cache_tag");
	if (!t->cache_tag || !*t->cache_tag) {
		error("'%s' (%s) has no bytecode cache (sys.implementation.cache_tag is None)",
		      python, t->display);
		goto fail;
	}
	t->pycache_prefix = dup_fact(&out, "pycache_prefix");
	v = fact(&out, "optimize");
	t->optimize = v ? atoi(v) : 0;
	v = fact(&out, "recursion_limit");
	t->recursion_limit = v ? atoi(v) : 1000;
	v = fact(&out, "source_hash_abc");
	if (v) {
		unsigned char abc[8];
		enum source_hash_kind kind;
		int i, ok = strlen(v) == 16;

		for (i = 0; ok && i < 8; i++) {
			unsigned x;
			ok = sscanf(v + 2 * i, "%2x", &x) == 1;
			abc[i] = (unsigned char)x;
		}
		if (ok && source_hash_kind_from_probe(t->fmt.magic, abc, &kind) == 0) {
			t->hash_kind = kind;
			t->has_hash_pycs = 1;
		}
	}
	exe = fact(&out, "executable");
	t->executable = xstrdup(exe && exe[0] == '/' ? exe : python);
	if (!getcwd(cwd, sizeof(cwd))) {
		error_errno("cannot get the current directory");
		goto fail;
	}
	t->cwd = xstrdup(cwd);

	t->fmt.header_len = pyc_header_len(t->major, t->minor);
	t->layout.cache_tag = t->cache_tag;
	t->layout.pycache_prefix = t->pycache_prefix;
	t->layout.cwd = t->cwd;
	t->layout.strip_dot_slash = pyc_strips_dot_slash(t->major, t->minor);
	build_worker_argv(t);
	/* only a usable target's facts are remembered */
	if (store)
		factscache_put(t->facts_dir, t->facts_flags, &t->cache_key, &out);
	strbuf_release(&out);
	return 0;
fail:
	strbuf_release(&out);
	target_release(t);
	return -1;
}

void target_release(struct target *t)
{
	if (t->probe_fd >= 0 && t->probe.pid > 0) {
		int status;

		close(t->probe_fd);
		child_wait(&t->probe, &status);
	}
	if (t->probe_err_fd >= 0)
		close(t->probe_err_fd);
	free(t->python);
	free(t->executable);
	free(t->version);
	free(t->implementation);
	free(t->build);
	free(t->impl_version);
	free(t->cache_tag);
	free(t->pycache_prefix);
	free(t->display);
	free(t->cwd);
	free(t->worker_argv);
	free(t->facts_dir);
	strbuf_release(&t->cache_key);
	strbuf_release(&t->cached);
	memset(t, 0, sizeof(*t));
	t->probe_fd = t->probe_err_fd = -1;
}

int target_at_least(const struct target *t, int major, int minor, int micro)
{
	if (t->major != major)
		return t->major > major;
	if (t->minor != minor)
		return t->minor > minor;
	return t->micro >= micro;
}

int target_default_maxlevels(const struct target *t)
{
	/* compileall: 10 up to 3.8, sys.getrecursionlimit() from 3.9 */
	if (t->major == 3 && t->minor < 9)
		return 10;
	return t->recursion_limit;
}
