/*
 * engine.c - one run for one target: plan, cache, compile, report (see engine.h).
 *
 * Each entry of the walk becomes a `struct file` (in walk order, which is
 * the order compileall prints in); each optimization level of a file that
 * needs compiling becomes a `struct item` (sorted largest first, the order
 * the pool is fed in).  A file is read once whatever its number of levels;
 * its pycs are written as their code comes back; when its last level is
 * done the file is final and the reporter hears of it.
 */
#define _POSIX_C_SOURCE 200809L
#include "engine.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buildlog.h"
#include "cachekey.h"
#include "cachephase.h"
#include "compilestage.h"
#include "plan.h"
#include "pool.h"
#include "run.h"
#include "util.h"
#include "banned.h"

int engine_invalidation(const struct engine_opts *o, const struct target *t)
{
	const char *sde;

	if (o->invalidation != INVAL_DEFAULT)
		return o->invalidation;
	sde = getenv("SOURCE_DATE_EPOCH");
	if (sde && *sde && t->has_hash_pycs)
		return INVAL_CHECKED_HASH;
	return INVAL_TIMESTAMP;
}

/* The one place that knows the output styles. */
static void pick_reporter(struct run *r)
{
	const struct engine_opts *o = r->o;

	if (o->style == STYLE_COMPILEALL)
		report_compileall_init(&r->rep, o->quiet, o->force, &r->plan, r->t, &r->progress);
	else
		report_concise_init(&r->rep, o->quiet, o->force, &r->plan, r->t, &r->progress);
}

/* This build's log (buildlog.h), or NULL without one. */
static struct buildlog *open_log(const struct engine_opts *o, const struct target *t,
				 const struct source_list *list)
{
	struct buildlog *log;
	char *name;

	if (!o->log_dir)
		return NULL;
	name = buildlog_name(o->log_dir, o->log_paths, o->log_npaths, t);
	log = buildlog_open(name, list->started_ns);
	free(name);
	return log;
}

/* Files, items, freshness, duplicates, order (plan.h). */
static void plan(struct run *r, const struct source_list *list)
{
	const struct engine_opts *o = r->o;
	struct plan_opts po;

	memset(&po, 0, sizeof(po));
	po.maxlevels = o->maxlevels;
	po.levels = o->levels;
	po.nlevels = o->nlevels;
	po.legacy = o->legacy;
	po.names.ddir = o->ddir;
	po.names.stripdir = o->stripdir;
	po.names.prependdir = o->prependdir;
	po.limit_sl_dest = o->limit_sl_dest;
	po.rx_skip = o->rx_skip;
	plan_build(&r->plan, &po, r->t, list);
	if (!o->force) {
		struct buildlog *log = open_log(o, r->t, list);

		plan_freshness(&r->plan, r->t, r->inval, log);
		buildlog_close(log);
	}
	plan_mark_duplicates(&r->plan, o->force);
	plan_drop_fresh(&r->plan);
	plan_order(&r->plan);
}

/* The cache phase then the pool; the number of workers started, or -1/-2 (engine_run()). */
static int compile(struct run *r, size_t pending_files, int *jobs)
{
	const struct engine_opts *o = r->o;
	size_t left = r->plan.nitems;
	int rc = 0;

	double t0 = now_seconds(), cpu0 = r->prof.on ? cpu_seconds(CPU_PROCESS) : 0, t1, cpu1 = 0;

	progress_start(&r->progress, "compiling", pending_files, o->quiet < 2);
	if (o->cache && !pool_interrupted())
		left = cache_phase(r);
	t1 = now_seconds();
	if (r->prof.on) {
		cpu1 = cpu_seconds(CPU_PROCESS);
		trace("profile: cache phase %.1f ms (core CPU %.1f ms on its threads), %zu of %zu "
		      "pycs left", (t1 - t0) * 1e3, (cpu1 - cpu0) * 1e3, left, r->plan.nitems);
	}
	if ((size_t)*jobs > left)
		*jobs = (int)left;
	/* a signal during the plan or the cache phase: no worker starts */
	if (pool_interrupted())
		rc = -2;
	else if (left) {
		double wcpu = r->prof.on ? cpu_seconds(CPU_CHILDREN) : 0;

		rc = compile_stage(r, o->runner, *jobs,
				   r->rep.keep_warnings_env ? POOL_KEEP_WARNINGS_ENV : 0);
		if (r->prof.on) {
			double wall = now_seconds() - t1, core = cpu_seconds(CPU_PROCESS) - cpu1;

			trace("profile: compile stage %.1f ms: workers CPU %.1f ms (%d workers), "
			      "core CPU %.1f ms: read sources %.1f, canonical %.1f, write pycs %.1f, "
			      "cache %.1f, the rest (pool, pipes, reports) %.1f",
			      wall * 1e3, (cpu_seconds(CPU_CHILDREN) - wcpu) * 1e3, *jobs, core * 1e3,
			      r->prof.read * 1e3, r->prof.canon * 1e3, r->prof.write * 1e3,
			      r->prof.store * 1e3,
			      (core - r->prof.read - r->prof.canon - r->prof.write - r->prof.store) *
				      1e3);
		}
	}
	progress_stop(&r->progress);
	return rc;
}

int engine_run(const struct engine_opts *o, const struct target *t, const struct source_list *list,
	       int *any_failed)
{
	struct run r;
	int jobs = o->jobs > 0 ? o->jobs : online_cpus();
	double start = now_seconds();
	size_t k, pending_files = 0;
	int rc = 0;

	memset(&r, 0, sizeof(r));
	r.o = o;
	r.t = t;
	r.inval = engine_invalidation(o, t);
	r.prof.on = trace_enabled();
	r.umask = umask(022); /* no other thread runs now */
	umask(r.umask);
	pycwrite_canon_init(&r.canon, t);
	strbuf_init(&r.identity, 0);
	pick_reporter(&r);
	if (o->cache)
		cache_key_identity(&r.identity, t, o->canonical,
				   r.rep.keep_warnings_env ? getenv("PYTHONWARNINGS") : NULL);
	plan(&r, list);
	for (k = 0; k < r.plan.nfiles; k++)
		pending_files += r.plan.files[k].state == FS_PENDING;
	trace("plan: %zu to compile (%zu pycs), %zu up to date in %.1f ms (core CPU so far "
	      "%.1f ms)", pending_files, r.plan.nitems, r.plan.nfresh,
	      (now_seconds() - start) * 1e3, r.prof.on ? cpu_seconds(CPU_PROCESS) * 1e3 : 0.0);

	if (r.plan.nitems)
		rc = compile(&r, pending_files, &jobs);
	if (rc == 0) {
		struct report_summary s;

		s.compiled = r.compiled;
		s.uptodate = r.plan.nfresh;
		s.failed = r.failed + o->walk_failed;
		s.from_cache = r.from_cache;
		s.workers = r.plan.nitems ? jobs : 0;
		s.seconds = now_seconds() - (o->started > 0 ? o->started : start);
		r.rep.ops->finish(&r.rep, &s);
	}
	if (r.failed)
		*any_failed = 1;
	plan_release(&r.plan);
	pycwrite_canon_release(&r.canon);
	strbuf_release(&r.identity);
	return rc;
}
