/*
 * compilestage.c - the pool's callbacks (see compilestage.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "compilestage.h"

#include <stdlib.h>
#include <string.h>

#include "cachephase.h"
#include "pool.h"
#include "proto.h"
#include "util.h"
#include "banned.h"

/* The canonical form of `data` (ARCHITECTURE.md), or `data` itself (see compilestage.h). */
static const char *canonical_code(struct run *r, const struct file *f, const char *data,
				  size_t *len)
{
	struct marshal_err err;
	const char *out;

	if (!r->o->canonical)
		return data;
	out = pycwrite_canonical(&r->canon, data, len, &err);
	if (out)
		return out;
	if (!r->canon_warned++) {
		progress_clear(&r->progress);
		warning("cannot write '%s' in the canonical form (%s): writing %s's own bytes",
			f->src->path, err.msg, r->t->display);
	}
	return data;
}

static int next_job(void *ctx, struct strbuf *frame, uint32_t *id)
{
	struct run *r = ctx;

	while (r->next < r->plan.nitems) {
		size_t i = r->next++;
		struct item *it = &r->plan.items[i];
		struct file *f = it->f;
		const char *dfile = run_dfile(f);

		if (it->hit)
			continue;
		if (f->pyerror && !f->dispatched) {
			/* reading it failed for an earlier level */
			run_item_done(r, f);
			continue;
		}
		if (!f->loaded) {
			double t0 = r->prof.on ? cpu_seconds(CPU_THREAD) : 0;
			int rc = run_load_file(r, f);

			if (r->prof.on)
				r->prof.read += cpu_seconds(CPU_THREAD) - t0;
			if (rc < 0) {
				run_item_done(r, f);
				continue;
			}
		}
		if (r->o->cache && (!it->keyed || it->key_gen != f->gen))
			run_item_key(r, it);
		strbuf_reset(frame);
		proto_add_compile(frame, (uint32_t)i, it->opt, dfile, strlen(dfile), f->in.data.buf,
				  f->in.data.len);
		if (++f->dispatched == f->nlevels)
			strbuf_release(&f->in.data); /* every level has its copy */
		*id = (uint32_t)i;
		return 1;
	}
	return 0;
}

/* What f's worker printed while compiling it (pool.h: handed on before its reply), reported. */
static void report_printed(struct run *r, struct file *f)
{
	if (!f->printed.len)
		return;
	r->rep.ops->printed(&r->rep, f, f->printed.buf, f->printed.len);
	strbuf_reset(&f->printed);
}

static void on_output(void *ctx, uint32_t id, const char *text, size_t len)
{
	struct run *r = ctx;

	if (id < r->plan.nitems)
		strbuf_add(&r->plan.items[id].f->printed, text, len);
	else
		r->rep.ops->printed(&r->rep, NULL, text, len);
}

static void on_code(struct run *r, struct item *it, const struct proto_msg *msg)
{
	struct file *f = it->f;

	if (!f->pyerror && (!f->writer || f->writer == f)) {
		size_t len = msg->data_len;
		double t0 = r->prof.on ? cpu_seconds(CPU_THREAD) : 0, t1 = 0, t2 = 0;
		const char *code = canonical_code(r, f, msg->data, &len);
		int rc;

		if (r->prof.on)
			t1 = cpu_seconds(CPU_THREAD);
		rc = run_write_pyc(r, it, code, len, 1);
		if (r->prof.on)
			t2 = cpu_seconds(CPU_THREAD);
		if (rc == 0 && r->o->cache && it->keyed) {
			struct strbuf extra = STRBUF_INIT;

			cache_phase_extra(&extra, run_dfile(f), &it->warn);
			cache_put(r->o->cache, it->key, code, len, extra.buf, extra.len);
			strbuf_release(&extra);
		}
		if (r->prof.on) {
			r->prof.canon += t1 - t0;
			r->prof.write += t2 - t1;
			r->prof.store += cpu_seconds(CPU_THREAD) - t2;
		}
	}
	strbuf_release(&it->warn);
	report_printed(r, f);
	run_item_done(r, f);
}

static void on_reply(void *ctx, const struct proto_msg *msg)
{
	struct run *r = ctx;
	struct item *it;
	struct file *f;

	if (msg->id >= r->plan.nitems)
		BUG("reply for unknown job %u", (unsigned)msg->id);
	it = &r->plan.items[msg->id];
	f = it->f;
	switch (msg->type) {
	case PROTO_CODE:
		on_code(r, it, msg);
		return;
	case PROTO_ERROR:
		/* compileall prints py_compile's message as is (print adds a newline) */
		if (!f->pyerror) {
			char *text = xstrndup(msg->data, msg->data_len);

			r->rep.ops->compile_error(&r->rep, f, text);
			f->pyerror = text;
		}
		report_printed(r, f);
		run_item_done(r, f);
		return;
	case PROTO_WARNING:
		if (r->o->cache)
			cache_phase_add_warning(&it->warn, &msg->warn);
		run_warning(r, f, &msg->warn, msg->warn.filename, msg->warn.filename_len);
		return;
	default:
		BUG("unexpected reply type %d", (int)msg->type);
	}
}

static void on_failed(void *ctx, uint32_t id, const char *why)
{
	struct run *r = ctx;
	struct file *f = r->plan.items[id].f;

	run_file_error(r, f, xstrfmt("RuntimeError: the worker compiling it %s", why),
		       "cannot compile '%s': the worker compiling it %s", f->src->path, why);
	report_printed(r, f);
	run_item_done(r, f);
}

static int run_pool(const struct runner *self, const struct target *t, int nworkers,
		    const struct pool_ops *ops, void *ctx, unsigned flags, double timeout)
{
	(void)self;
	return pool_run(t, nworkers, ops, ctx, flags, timeout);
}

int compile_stage(struct run *r, const struct runner *runner, int jobs, unsigned pool_flags)
{
	static const struct runner pool_runner = { run_pool, NULL };
	struct pool_ops ops = { next_job, on_reply, on_failed, on_output };

	if (!runner)
		runner = &pool_runner;
	return runner->run(runner, r->t, jobs, &ops, r, pool_flags, r->o->timeout);
}
