/*
 * parallel.c - parallel_for() and parallel_run() over POSIX threads (see parallel.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "parallel.h"

#include <pthread.h>
#include <stdatomic.h>

#include "util.h"
#include "banned.h"

size_t parallel_threads(size_t n, size_t min_items, size_t per_cpu)
{
	size_t t = (size_t)online_cpus() * (per_cpu ? per_cpu : 1);

	if (n < min_items || t < 1)
		return 1;
	return t > PARALLEL_MAX_THREADS ? PARALLEL_MAX_THREADS : t;
}

struct run_arg {
	void (*fn)(void *ctx, size_t thread);
	void *ctx;
	size_t thread;
};

static void *run_thread(void *arg)
{
	struct run_arg *a = arg;

	a->fn(a->ctx, a->thread);
	return NULL;
}

size_t parallel_run(size_t nthreads, void (*fn)(void *ctx, size_t thread), void *ctx)
{
	pthread_t tids[PARALLEL_MAX_THREADS];
	struct run_arg args[PARALLEL_MAX_THREADS];
	int started[PARALLEL_MAX_THREADS] = { 0 };
	size_t i, ran = 1;

	if (nthreads > PARALLEL_MAX_THREADS)
		nthreads = PARALLEL_MAX_THREADS;
	for (i = 1; i < nthreads; i++) {
		args[i].fn = fn;
		args[i].ctx = ctx;
		args[i].thread = i;
		started[i] = !pthread_create(&tids[i], NULL, run_thread, &args[i]);
		ran += started[i];
	}
	fn(ctx, 0);
	for (i = 1; i < nthreads; i++)
		if (started[i])
			pthread_join(tids[i], NULL);
	return ran;
}

struct for_arg {
	void (*fn)(void *ctx, size_t i);
	void *ctx;
	size_t n;
	atomic_size_t next;
};

static void for_thread(void *arg, size_t thread)
{
	struct for_arg *a = arg;
	size_t i;

	(void)thread;
	while ((i = atomic_fetch_add(&a->next, 1)) < a->n)
		a->fn(a->ctx, i);
}

void parallel_for(size_t n, size_t nthreads, void (*fn)(void *ctx, size_t i), void *ctx)
{
	struct for_arg a;

	a.fn = fn;
	a.ctx = ctx;
	a.n = n;
	atomic_init(&a.next, 0);
	if (nthreads > n)
		nthreads = n ? n : 1;
	parallel_run(nthreads, for_thread, &a);
}
