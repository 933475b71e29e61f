/*
 * pool.h - a pool of worker processes of one target interpreter.
 *
 * The pool starts `nworkers` copies of the embedded worker (src/python/worker.py)
 * and drives them from one poll() loop: it asks the caller for work with
 * ops->next(), sends each compile frame to a worker with room for it (each
 * worker holds up to POOL_DEPTH frames so it never waits for the next one),
 * and hands every reply to ops->reply() while the reply's bytes are still
 * in the pool's buffer (copy what you keep).
 *
 * Nothing a worker prints reaches the terminal directly: its stdout and
 * stderr are one pipe the loop reads, and what it printed while compiling
 * a frame is handed to ops->output() whole, with that frame's reply, so
 * it can never cut one of our lines in two.
 *
 * A worker that dies, or that sends something that is not a frame, is
 * reaped (killed if need be) and a new worker replaces it while work
 * remains.  The frame it was compiling is tried once more on another worker;
 * if that worker dies on it too, it is reported with ops->failed() and a
 * description of what happened ("was killed by signal 11 (Segmentation
 * fault), twice").  A worker that spends more than `timeout` seconds on one
 * frame (counted from when it had the frame, had said hello and had replied
 * to the frames before it) is killed and that frame reported failed at once:
 * a hang would only hang again.  Frames a dead worker held but had not
 * started are given to another worker, not counted as a try.  Workers that
 * die before saying hello (or do not say it within `timeout`) mean the target
 * cannot run the worker at all: after a few, pool_run() fails.
 *
 * pool_run() returns 0 when all work is done, -1 after printing an error
 * when no worker could be started, and -2 when interrupted by a signal
 * (pool_interrupt() from a handler); in every case all workers are gone.
 */
#ifndef POOL_H
#define POOL_H

#include <stdint.h>

#include "proto.h"
#include "strbuf.h"
#include "target.h"

#define POOL_DEPTH 2

struct pool_ops {
	/* Append the next compile frame to `frame`, set *id; 1, or 0 when no work is left. */
	int (*next)(void *ctx, struct strbuf *frame, uint32_t *id);
	/* A 'K', 'E' or 'W' message from a worker (W precede the K/E of the same id). */
	void (*reply)(void *ctx, const struct proto_msg *msg);
	/* The worker compiling `id` died or misbehaved: `why` says how. */
	void (*failed)(void *ctx, uint32_t id, const char *why);
	/*
	 * What a worker printed on its stdout or stderr (the interpreter's own
	 * C-level messages, a crash's traceback): all it wrote while compiling
	 * `id`, handed on once, just before the reply() or failed() that ends
	 * `id` (keep it, to show it with that file); or POOL_NO_JOB for what it
	 * printed between frames (starting, exiting).
	 * NULL: the pool prints it as a warning.
	 */
	void (*output)(void *ctx, uint32_t id, const char *text, size_t len);
};

#define POOL_NO_JOB UINT32_MAX
/* What is kept of a worker's output between two deliveries; the rest is counted. */
#define POOL_OUTPUT_MAX ((size_t)1 << 20)

enum pool_flags {
	/* keep PYTHONWARNINGS in the workers' environment (compileall honours it) */
	POOL_KEEP_WARNINGS_ENV = 1 << 0,
};

/* `timeout`: seconds a worker may spend on one frame before it is killed (0: no limit). */
int pool_run(const struct target *t, int nworkers, const struct pool_ops *ops, void *ctx,
	     unsigned flags, double timeout);

/* Async-signal-safe: make a running pool_run() stop and return -2. */
void pool_interrupt(void);
/* Has pool_interrupt() been called?  (Long phases outside the pool can stop early.) */
int pool_interrupted(void);

#endif
