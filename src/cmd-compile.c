/*
 * cmd-compile.c - `prepyc compile`: walk, plan, compile, write, report.
 *
 * Flow (see ARCHITECTURE.md): every target is probed first (a bad one
 * stops the run before anything is written); the paths are walked once;
 * then for each target the plan keeps the sources whose pyc is not fresh,
 * largest first, and a pool of that target's workers compiles them while
 * this process reads the sources into frames and writes each pyc
 * atomically as its code comes back.
 */
#define _POSIX_C_SOURCE 200809L
#include "cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "options.h"
#include "pool.h"
#include "progress.h"
#include "proto.h"
#include "pyc.h"
#include "target.h"
#include "tempfile.h"
#include "util.h"
#include "walk.h"
#include "banned.h"

struct item {
	const struct source *src;
	char *pyc;
	int opt;
	/* the source as read, for the header */
	uint32_t mtime32;
	uint64_t size;
	mode_t mode;
	int fresh;
};

#define PLAN_THREADS 4

struct run {
	const struct target *t;
	int quiet;
	struct item *items;
	size_t nr, next;
	size_t compiled, failed, done;
	struct progress progress;
};

static volatile sig_atomic_t caught_signal;

static void on_signal(int sig)
{
	caught_signal = sig;
	pool_interrupt();
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static void item_failed(struct run *r, struct item *it)
{
	(void)it;
	r->failed++;
	r->done++;
	progress_update(&r->progress, r->done);
}

/* Read the source of `it` into a compile frame; -1 after reporting why not. */
static int read_into_frame(struct run *r, struct item *it, uint32_t id, struct strbuf *frame)
{
	const char *path = it->src->path;
	struct stat st;
	size_t start;
	int fd;

	/* O_NONBLOCK: if the file became a FIFO since the walk, do not hang on it */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		progress_clear(&r->progress);
		return error_errno("cannot read '%s'", path);
	}
	if (fstat(fd, &st) < 0) {
		progress_clear(&r->progress);
		error_errno("cannot read '%s'", path);
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		progress_clear(&r->progress);
		return error("cannot read '%s': no longer a regular file", path);
	}
	/* the header describes the file as it was when read, before any later change */
	it->mtime32 = pyc_mtime32((int64_t)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	it->size = (uint64_t)st.st_size;
	it->mode = st.st_mode;

	start = proto_begin_compile(frame, id, it->opt, path, strlen(path));
	if ((uint64_t)st.st_size < PROTO_MAX_FRAME)
		strbuf_grow(frame, (size_t)st.st_size);
	if (strbuf_read_fd(frame, fd, 0) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		progress_clear(&r->progress);
		return error_errno("cannot read '%s'", path);
	}
	close(fd);
	if (proto_end_frame(frame, start) < 0) {
		progress_clear(&r->progress);
		return error("cannot compile '%s': file too large", path);
	}
	return 0;
}

static int next_job(void *ctx, struct strbuf *frame, uint32_t *id)
{
	struct run *r = ctx;

	while (r->next < r->nr) {
		size_t i = r->next++;

		strbuf_reset(frame);
		if (read_into_frame(r, &r->items[i], (uint32_t)i, frame) == 0) {
			*id = (uint32_t)i;
			return 1;
		}
		item_failed(r, &r->items[i]);
	}
	return 0;
}

/* py_compile refuses to replace a symlink or a non-regular file. */
static int check_pyc_target(const char *pyc)
{
	struct stat st;

	if (lstat(pyc, &st) < 0)
		return 0;
	if (S_ISLNK(st.st_mode))
		return error("cannot write '%s': it is a symbolic link", pyc);
	if (!S_ISREG(st.st_mode))
		return error("cannot write '%s': it is not a regular file", pyc);
	return 0;
}

static int write_pyc(const struct run *r, const struct item *it, const char *code, size_t len)
{
	unsigned char hdr[PYC_HEADER_MAX];
	struct iovec iov[2];
	const char *what = "";

	if (check_pyc_target(it->pyc) < 0)
		return -1;
	iov[0].iov_base = hdr;
	iov[0].iov_len = pyc_header_timestamp(&r->t->fmt, hdr, it->mtime32, it->size);
	iov[1].iov_base = (void *)code;
	iov[1].iov_len = len;
	if (write_file_atomic(it->pyc, pyc_mode(it->mode), iov, 2, &what) < 0)
		return error_errno("%s '%s'", what, it->pyc);
	return 0;
}

/* Print a worker's message, indented under our own line when it spans lines. */
static void print_message(const char *head, const char *msg, size_t len)
{
	while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
		len--;
	if (memchr(msg, '\n', len))
		fprintf(stderr, "%s:\n%.*s\n", head, (int)len, msg);
	else
		fprintf(stderr, "%s: %.*s\n", head, (int)len, msg);
}

static void on_reply(void *ctx, const struct proto_msg *msg)
{
	struct run *r = ctx;
	struct item *it;
	char *head;

	if (msg->id >= r->nr)
		BUG("reply for unknown job %u", (unsigned)msg->id);
	it = &r->items[msg->id];
	switch (msg->type) {
	case PROTO_CODE:
		if (write_pyc(r, it, msg->data, msg->data_len) < 0) {
			item_failed(r, it);
			return;
		}
		r->compiled++;
		r->done++;
		progress_update(&r->progress, r->done);
		return;
	case PROTO_ERROR:
		item_failed(r, it);
		if (r->quiet >= 2)
			return;
		progress_clear(&r->progress);
		head = xstrfmt("%s: error: cannot compile '%s'", progname, it->src->path);
		print_message(head, msg->data, msg->data_len);
		free(head);
		return;
	case PROTO_WARNING:
		if (r->quiet)
			return;
		progress_clear(&r->progress);
		head = xstrfmt("%s: warning: while compiling '%s'", progname, it->src->path);
		print_message(head, msg->data, msg->data_len);
		free(head);
		return;
	default:
		BUG("unexpected reply type %d", (int)msg->type);
	}
}

static void on_failed(void *ctx, uint32_t id, const char *why)
{
	struct run *r = ctx;
	struct item *it = &r->items[id];

	item_failed(r, it);
	if (r->quiet >= 2)
		return;
	progress_clear(&r->progress);
	error("cannot compile '%s': the worker compiling it %s", it->src->path, why);
}

static int by_size_desc(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	if (x->src->size != y->src->size)
		return x->src->size < y->src->size ? 1 : -1;
	/* equal sizes keep walk order, so a run is deterministic */
	return x->src < y->src ? -1 : x->src > y->src;
}

static int pyc_is_fresh(const struct target *t, const struct source *s, const char *pyc)
{
	unsigned char hdr[PYC_HEADER_MAX];
	ssize_t n;
	int fd = open(pyc, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return 0;
	n = read_in_full(fd, hdr, t->fmt.header_len);
	close(fd);
	return n > 0 && pyc_header_is_fresh(&t->fmt, hdr, (size_t)n,
					    pyc_mtime32(s->mtime_sec, s->mtime_nsec), s->size);
}

struct plan_slice {
	const struct target *t;
	struct item *items;
	size_t nr;
	int force;
};

static void *plan_slice_run(void *arg)
{
	struct plan_slice *p = arg;
	size_t i;

	for (i = 0; i < p->nr; i++) {
		struct item *it = &p->items[i];

		it->pyc = pyc_cache_path(&p->t->layout, it->src->path, it->opt);
		it->fresh = !p->force && pyc_is_fresh(p->t, it->src, it->pyc);
	}
	return NULL;
}

/*
 * Compute every item's pyc path and whether it is fresh.  This is a
 * system call or three per file and dominates a run where nothing changed,
 * so large plans are split over a few threads.
 */
static void plan_items(const struct target *t, struct item *items, size_t nr, int force)
{
	struct plan_slice slices[PLAN_THREADS];
	pthread_t tids[PLAN_THREADS];
	int started[PLAN_THREADS] = { 0 };
	size_t nthreads = (size_t)online_cpus(), per, i;

	if (nthreads > PLAN_THREADS)
		nthreads = PLAN_THREADS;
	if (nr < 1024)
		nthreads = 1;
	per = (nr + nthreads - 1) / nthreads;
	for (i = 0; i < nthreads; i++) {
		size_t from = i * per < nr ? i * per : nr;

		slices[i].t = t;
		slices[i].items = items + from;
		slices[i].nr = nr - from < per ? nr - from : per;
		slices[i].force = force;
		/* the first slice runs here; a thread that cannot start runs here too */
		if (i > 0 && !pthread_create(&tids[i], NULL, plan_slice_run, &slices[i]))
			started[i] = 1;
	}
	plan_slice_run(&slices[0]);
	for (i = 1; i < nthreads; i++) {
		if (started[i])
			pthread_join(tids[i], NULL);
		else
			plan_slice_run(&slices[i]);
	}
}

struct compile_opts {
	struct option_list pythons;
	int jobs;
	int force;
	int quiet;
	int no_recurse;
};

/* Compile the stale sources of `list` for one target; 0 done, -1 cannot, -2 interrupted. */
static int compile_for_target(const struct compile_opts *o, const struct target *t,
			      const struct source_list *list, int *any_failed)
{
	struct run r;
	struct pool_ops ops = { next_job, on_reply, on_failed };
	int maxlevels = o->no_recurse ? 0 : target_default_maxlevels(t);
	int opt = t->optimize;
	size_t i, kept, uptodate = 0, alloc = 0;
	int jobs = o->jobs > 0 ? o->jobs : online_cpus();
	double start = now_seconds();
	int rc = 0;

	memset(&r, 0, sizeof(r));
	r.t = t;
	r.quiet = o->quiet;
	for (i = 0; i < list->nr; i++) {
		if (list->v[i].depth > maxlevels)
			continue;
		ALLOC_GROW(r.items, r.nr + 1, alloc);
		memset(&r.items[r.nr], 0, sizeof(r.items[r.nr]));
		r.items[r.nr].src = &list->v[i];
		r.items[r.nr].opt = opt;
		r.nr++;
	}
	plan_items(t, r.items, r.nr, o->force);
	/* keep the stale ones */
	for (i = 0, kept = 0; i < r.nr; i++) {
		if (r.items[i].fresh) {
			uptodate++;
			free(r.items[i].pyc);
			continue;
		}
		r.items[kept++] = r.items[i];
	}
	r.nr = kept;
	qsort(r.items, r.nr, sizeof(*r.items), by_size_desc);
	trace("plan: %zu to compile, %zu up to date in %.1f ms", r.nr, uptodate,
	      (now_seconds() - start) * 1e3);

	if (r.nr) {
		if ((size_t)jobs > r.nr)
			jobs = (int)r.nr;
		progress_start(&r.progress, "compiling", r.nr, !o->quiet);
		rc = pool_run(t, jobs, &ops, &r);
		progress_stop(&r.progress);
	}
	if (rc == 0 && !o->quiet)
		printf("%s: %zu compiled, %zu up to date, %zu failed (%s, %s, %d worker%s) in %.2fs\n",
		       progname, r.compiled, uptodate, r.failed, t->display, t->cache_tag,
		       r.nr ? jobs : 0, r.nr && jobs == 1 ? "" : "s", now_seconds() - start);
	if (r.failed)
		*any_failed = 1;
	for (i = 0; i < r.nr; i++)
		free(r.items[i].pyc);
	free(r.items);
	return rc;
}

static const char *const compile_usage[] = {
	"usage: prepyc compile [OPTIONS] PATH...",
	"",
	"Compile every .py file under each PATH (directories are walked as",
	"compileall does) into the bytecode cache of the target interpreter,",
	"with that interpreter's own compiler.  Fresh pycs are left alone.",
	NULL,
};

static const char compile_epilog[] =
	"\nexit status: 0 every file compiled or up to date; 1 some file could not be\n"
	"compiled, read or written, or a PATH is missing (the others were compiled);\n"
	"2 usage error or unusable target interpreter (nothing written);\n"
	"130/143 interrupted by SIGINT/SIGTERM.\n";

int cmd_compile(int argc, const char **argv)
{
	struct compile_opts o;
	struct target *targets;
	struct source_list list = SOURCE_LIST_INIT;
	int npaths, i, any_failed = 0, rc = 0;
	double trace_start;
	const struct option opts[] = {
		OPT_LIST(0, "python", &o.pythons, "PATH",
			 "target interpreter (repeatable; default $VIRTUAL_ENV/bin/python, else python3)"),
		OPT_INT('j', "jobs", &o.jobs, "N", "worker processes (default, or 0: one per core)"),
		OPT_FLAG('f', "force", &o.force, "recompile even fresh pycs"),
		OPT_COUNT('q', "quiet", &o.quiet, "print only errors (no summary, no warnings); -qq nothing"),
		OPT_FLAG('l', NULL, &o.no_recurse, "do not recurse into subdirectories"),
		OPT_END(),
	};

	memset(&o, 0, sizeof(o));
	npaths = parse_options(argc - 1, argv + 1, opts);
	if (npaths == -2) {
		usage_with_options(stdout, compile_usage, opts);
		fputs(compile_epilog, stdout);
		option_list_release(&o.pythons);
		return 0;
	}
	if (npaths < 0 || (npaths == 0 && (error("no PATH given"), 1)) ||
	    (o.jobs < 0 && (error("option '-j' expects a number of workers >= 0"), 1))) {
		fprintf(stderr, "%s\nTry 'prepyc compile --help' for the options.\n", compile_usage[0]);
		option_list_release(&o.pythons);
		return 2;
	}
	if (!o.pythons.nr) {
		ALLOC_GROW(o.pythons.v, 1, o.pythons.alloc);
		o.pythons.v[o.pythons.nr++] = target_default_python();
	}

	/*
	 * Probe the targets while walking: the interpreters start on another
	 * core in the time the walk takes.  The walk records depths, so it
	 * need not know each target's compileall depth limit yet.
	 */
	trace_start = now_seconds();
	targets = xcalloc(o.pythons.nr, sizeof(*targets));
	for (i = 0; i < (int)o.pythons.nr; i++) {
		if (target_probe_start(&targets[i], o.pythons.v[i]) < 0) {
			while (--i >= 0)
				target_release(&targets[i]);
			free(targets);
			option_list_release(&o.pythons);
			return 2;
		}
	}

	install_signals();
	for (i = 0; i < npaths; i++)
		if (walk_path(argv[1 + i], o.no_recurse ? 0 : WALK_MAX_DEPTH, &list))
			any_failed = 1;
	trace("walk: %zu sources in %.1f ms", list.nr, (now_seconds() - trace_start) * 1e3);

	for (i = 0; i < (int)o.pythons.nr; i++) {
		if (target_probe_finish(&targets[i]) < 0)
			rc = 2;
		else
			trace("probe: %s ready after %.1f ms", targets[i].display,
			      (now_seconds() - trace_start) * 1e3);
	}
	if (rc)
		goto out;

	for (i = 0; i < (int)o.pythons.nr && rc == 0; i++) {
		int r = compile_for_target(&o, &targets[i], &list, &any_failed);
		if (r == -2)
			rc = 128 + (caught_signal ? caught_signal : SIGINT);
		else if (r < 0)
			rc = 2;
	}
	if (rc == 0)
		rc = any_failed ? 1 : 0;
out:
	fflush(stdout);
	source_list_release(&list);
	for (i = 0; i < (int)o.pythons.nr; i++)
		target_release(&targets[i]);
	free(targets);
	option_list_release(&o.pythons);
	return rc;
}
