#define _GNU_SOURCE /* memmem */
#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "util.h"
#include "banned.h"

static volatile sig_atomic_t interrupted;

void pool_interrupt(void)
{
	interrupted = 1;
}

int pool_interrupted(void)
{
	return interrupted != 0;
}

struct job {
	uint32_t id;
	int tries;      /* workers that died while compiling it */
	struct strbuf frame;
};

struct worker {
	struct child child;
	int req, resp;   /* our ends of its fd 3 and fd 4; -1 when closed */
	int alive;       /* started and not yet reaped */
	int hello;       /* it said hello: the target can run workers */
	struct job q[POOL_DEPTH];
	int nq;          /* frames it holds; q[0] is the one being compiled */
	int nsent;       /* frames fully written */
	size_t off;      /* bytes of q[nsent] written */
	double started;  /* when it was started */
	double since;    /* when it started compiling q[0] (sent, at the head, hello said) */
	struct strbuf in;
	int err;         /* our end of its stdout+stderr; -1 when closed */
	struct strbuf out; /* what it wrote there, not yet handed to ops->output() */
	size_t dropped;  /* bytes of it beyond POOL_OUTPUT_MAX, not kept */
	double idle_since; /* PREPYC_TRACE: when it ran out of work for good (0: not yet) */
};

struct pool {
	const struct target *t;
	const struct pool_ops *ops;
	void *ctx;
	char **env;
	struct worker *w;
	int nr;
	struct job *requeue; /* frames of dead workers, to send again */
	size_t nrequeue, requeue_alloc;
	int no_more;         /* ops->next() said there is nothing left */
	int ever_hello;
	int start_failures;
	char *start_error;
	double timeout;      /* seconds per file; 0: none */
	/* PREPYC_TRACE's profile */
	int tracing;
	double no_more_at;   /* when ops->next() first said there is nothing left */
	size_t pipe_full;    /* frames whose sending had to wait for a full pipe */
};

/*
 * Pipes of POOL_PIPE_SIZE where the system allows (Linux; beyond the
 * user's quota of pipe memory it refuses, harmlessly): a worker writes a
 * whole reply and goes on to its next frame while the core is busy with
 * another worker's reply, and the core sends a large source in one write.
 */
#define POOL_PIPE_SIZE (1 << 20)

static int make_pipe(int fds[2])
{
	if (pipe(fds) < 0)
		return -1;
	set_cloexec(fds[0]);
	set_cloexec(fds[1]);
#ifdef F_SETPIPE_SZ
	(void)fcntl(fds[0], F_SETPIPE_SZ, POOL_PIPE_SIZE);
#endif
	return 0;
}

static void close_pipes(int (*fds)[2], int n)
{
	int i;

	for (i = 0; i < n; i++) {
		close(fds[i][0]);
		close(fds[i][1]);
	}
}

static int worker_start(struct pool *p, struct worker *w)
{
	int fds[3][2]; /* its fd 3, its fd 4, its stdout+stderr */
	int i;

	for (i = 0; i < 3; i++) {
		if (make_pipe(fds[i]) < 0) {
			int e = errno;

			close_pipes(fds, i);
			errno = e;
			return error_errno("cannot create a pipe");
		}
	}
	w->child = (struct child)CHILD_INIT;
	w->child.argv = p->t->worker_argv;
	w->child.env = p->env;
	/* what it prints is captured: nothing may cut our lines, nor reach our stdout */
	w->child.out_fd = fds[2][1];
	w->child.err_fd = fds[2][1];
	w->child.fd3 = fds[0][0];
	w->child.fd4 = fds[1][1];
	if (child_start(&w->child) < 0) {
		error_errno("cannot run '%s'", p->t->executable);
		close_pipes(fds, 3);
		return -1;
	}
	close(fds[0][0]);
	close(fds[1][1]);
	close(fds[2][1]);
	w->req = fds[0][1];
	w->resp = fds[1][0];
	w->err = fds[2][0];
	set_nonblock(w->req, 1);
	set_nonblock(w->resp, 1);
	set_nonblock(w->err, 1);
	strbuf_reset(&w->out);
	w->dropped = 0;
	w->alive = 1;
	w->hello = 0;
	w->started = now_seconds();
	w->nq = w->nsent = 0;
	w->off = 0;
	strbuf_reset(&w->in);
	return 0;
}

/*
 * Read what the worker printed so far (all of it once it has exited: end of
 * file closes w->err).  What it prints while compiling one frame is ended
 * by PROTO_OUTPUT_MARK, written before its reply; beyond POOL_OUTPUT_MAX
 * bytes without a mark, the middle is dropped and counted.
 */
static void worker_read_output(struct worker *w)
{
	char buf[8192];

	while (w->err >= 0) {
		ssize_t n = xread(w->err, buf, sizeof(buf));

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			close(w->err);
			w->err = -1;
			return;
		}
		strbuf_add(&w->out, buf, (size_t)n);
		if (w->out.len > POOL_OUTPUT_MAX &&
		    !memmem(w->out.buf, w->out.len, PROTO_OUTPUT_MARK, PROTO_OUTPUT_MARK_LEN)) {
			/* keep the start, and the end in case it holds part of a mark */
			size_t head = POOL_OUTPUT_MAX / 2, tail = PROTO_OUTPUT_MARK_LEN;
			size_t cut = w->out.len - head - tail;

			memmove(w->out.buf + head, w->out.buf + w->out.len - tail, tail);
			strbuf_setlen(&w->out, head + tail);
			w->dropped += cut;
		}
	}
}

/*
 * Hand to ops->output() what the worker printed for `id`: up to its mark
 * when `marked` (the rest is the next frame's), else all of it (it died, or
 * it printed between frames).
 */
static void worker_deliver_output(struct pool *p, struct worker *w, uint32_t id, int marked)
{
	const char *mark = NULL;
	size_t len = w->out.len, skip = 0;
	struct strbuf text = STRBUF_INIT;

	if (marked && (mark = memmem(w->out.buf, w->out.len, PROTO_OUTPUT_MARK,
				     PROTO_OUTPUT_MARK_LEN))) {
		len = (size_t)(mark - w->out.buf);
		skip = PROTO_OUTPUT_MARK_LEN;
	}
	strbuf_add(&text, w->out.buf, len);
	strbuf_remove_front(&w->out, len + skip);
	if (w->dropped && (!marked || mark)) {
		strbuf_addf(&text, "\n[%zu more bytes not shown]\n", w->dropped);
		w->dropped = 0;
	}
	if (text.len && p->ops->output) {
		p->ops->output(p->ctx, id, text.buf, text.len);
	} else if (text.len) {
		fflush(stdout);
		warning("a worker of '%s' printed:", p->t->executable);
		fput_printable(text.buf, text.len, stderr);
		fputc('\n', stderr);
	}
	strbuf_release(&text);
}

/*
 * Its output pipe is readable: keep what it printed for the frame it is
 * compiling; between frames (before its hello, or with nothing to compile)
 * it is the worker's own, and handed on now.
 */
static void worker_printed(struct pool *p, struct worker *w)
{
	worker_read_output(w);
	if (!(w->hello && w->nsent))
		worker_deliver_output(p, w, POOL_NO_JOB, 0);
}

static void append_twice(char *why, size_t size)
{
	size_t len = strlen(why);

	snprintf(why + len, size - len, ", twice");
}

/*
 * Reap a worker that is finished or broken; hand its frames back.  The
 * frame it was compiling is tried once more on another worker (the crash
 * may not be the input's doing), unless `retry` is 0 (a timeout: trying
 * again would double the wait); a second death fails it.
 */
static void worker_reap(struct pool *p, struct worker *w, const char *problem, int retry)
{
	int status = 0, i;
	char why[256];
	/* what it printed belongs to the frame it was compiling, if any */
	uint32_t printing = w->hello && w->nsent ? w->q[0].id : POOL_NO_JOB;

	if (problem)
		kill(w->child.pid, SIGKILL);
	if (w->req >= 0)
		close(w->req);
	/* reap before closing its reply pipe: a worker still writing must not get EPIPE */
	child_wait(&w->child, &status);
	close(w->resp);
	set_nonblock(w->err, 0); /* it is gone: read to the end */
	worker_read_output(w);
	worker_deliver_output(p, w, printing, 0);
	w->req = w->resp = -1;
	w->alive = 0;
	snprintf(why, sizeof(why), "%s", problem ? problem : child_describe_status(status));

	if (!w->hello) {
		p->start_failures++;
		if (!p->start_error)
			p->start_error = xstrdup(why);
	}
	/* the frames queued behind go first to the others; the retried one last */
	for (i = w->nq - 1; i >= 0; i--) {
		if (i == 0 && w->hello && w->nsent) {
			if (!retry || w->q[0].tries++ > 0) {
				if (retry)
					append_twice(why, sizeof(why));
				p->ops->failed(p->ctx, w->q[0].id, why);
				strbuf_release(&w->q[0].frame);
				continue;
			}
			trace("pool: job %u: the worker %s; trying once more", (unsigned)w->q[0].id,
			      why);
		}
		ALLOC_GROW(p->requeue, p->nrequeue + 1, p->requeue_alloc);
		p->requeue[p->nrequeue++] = w->q[i];
	}
	w->nq = w->nsent = 0;
	w->off = 0;
	strbuf_release(&w->in);
}

static int take_job(struct pool *p, struct job *job)
{
	if (p->nrequeue) {
		*job = p->requeue[--p->nrequeue];
		return 1;
	}
	if (p->no_more)
		return 0;
	strbuf_init(&job->frame, 0);
	job->tries = 0;
	if (p->ops->next(p->ctx, &job->frame, &job->id))
		return 1;
	strbuf_release(&job->frame);
	p->no_more = 1;
	if (p->tracing)
		p->no_more_at = now_seconds();
	return 0;
}

static void worker_flush(struct pool *p, struct worker *w)
{
	while (w->nsent < w->nq) {
		struct strbuf *f = &w->q[w->nsent].frame;
		ssize_t n = xwrite(w->req, f->buf + w->off, f->len - w->off);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				p->pipe_full++;
				return;
			}
			/* EPIPE: it died; its end of file on the reply pipe follows */
			close(w->req);
			w->req = -1;
			return;
		}
		w->off += (size_t)n;
		if (w->off == f->len) {
			if (++w->nsent == 1)
				w->since = now_seconds();
			w->off = 0;
		}
	}
}

static void pool_fill(struct pool *p)
{
	int i;

	for (i = 0; i < p->nr; i++) {
		struct worker *w = &p->w[i];

		while (w->alive && w->req >= 0 && w->nq < POOL_DEPTH) {
			if (!take_job(p, &w->q[w->nq]))
				break;
			w->nq++;
		}
		if (w->alive && w->req >= 0)
			worker_flush(p, w);
	}
}

/* Handle the complete frames in w->in; -1 if the worker broke the protocol. */
static int worker_parse(struct pool *p, struct worker *w, const char **problem)
{
	size_t used = 0;
	int rc = 0;

	for (;;) {
		const char *payload;
		size_t plen;
		struct proto_msg msg;
		long n = proto_frame(w->in.buf + used, w->in.len - used, &payload, &plen);

		if (n == 0)
			break;
		if (n < 0 || proto_decode(payload, plen, &msg) < 0) {
			*problem = "sent a malformed reply";
			rc = -1;
			break;
		}
		used += (size_t)n;
		if (msg.type == PROTO_HELLO) {
			if (msg.version != PROTO_VERSION) {
				*problem = "speaks another protocol version";
				rc = -1;
				break;
			}
			w->hello = 1;
			p->ever_hello = 1;
			/* the clock of a frame sent before the hello starts now */
			if (w->nsent)
				w->since = now_seconds();
			continue;
		}
		if ((msg.type != PROTO_CODE && msg.type != PROTO_ERROR &&
		     msg.type != PROTO_WARNING) ||
		    !w->hello || !w->nsent || msg.id != w->q[0].id) {
			*problem = "sent an unexpected reply";
			rc = -1;
			break;
		}
		/*
		 * What it printed before its reply was written (a pipe keeps it) is
		 * this file's: read it now, whatever order poll() reported them in.
		 */
		if (msg.type != PROTO_WARNING) {
			worker_read_output(w);
			worker_deliver_output(p, w, msg.id, 1);
		}
		p->ops->reply(p->ctx, &msg);
		if (msg.type != PROTO_WARNING) {
			strbuf_release(&w->q[0].frame);
			memmove(&w->q[0], &w->q[1], sizeof(w->q[0]) * (size_t)(w->nq - 1));
			w->nq--;
			if (--w->nsent > 0)
				w->since = now_seconds();
		}
	}
	strbuf_remove_front(&w->in, used);
	return rc;
}

/* Read what the worker sent; reap it at end of file or on garbage. */
static void worker_read(struct pool *p, struct worker *w)
{
	const char *problem = NULL;

	for (;;) {
		size_t room;
		ssize_t n;

		strbuf_grow(&w->in, 65536);
		room = w->in.alloc - w->in.len - 1;
		n = xread(w->resp, w->in.buf + w->in.len, room);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			problem = "cannot be read from";
			break;
		}
		if (n == 0) {
			if (worker_parse(p, w, &problem) == 0 && w->in.len)
				problem = "sent a truncated reply";
			worker_reap(p, w, problem, 1);
			return;
		}
		strbuf_setlen(&w->in, w->in.len + (size_t)n);
		if (worker_parse(p, w, &problem) < 0)
			break;
		/* less than the room: the pipe is empty now (poll() tells when it is not) */
		if ((size_t)n < room)
			break;
	}
	if (problem)
		worker_reap(p, w, problem, 1);
}

/*
 * When the worker's time is up: `since` + timeout for the frame it is
 * compiling; for a worker that has not said hello yet, `started` + timeout
 * (a target that hangs at start would hang the run).  -1: no deadline.
 */
static double worker_deadline(const struct pool *p, const struct worker *w)
{
	if (p->timeout <= 0 || !w->alive)
		return -1;
	if (!w->hello)
		return w->started + p->timeout;
	return w->nsent ? w->since + p->timeout : -1;
}

/* Kill the workers whose time is up. */
static void reap_expired(struct pool *p)
{
	double now = now_seconds();
	int i;

	for (i = 0; i < p->nr; i++) {
		struct worker *w = &p->w[i];
		double deadline = worker_deadline(p, w);
		char why[128];

		if (deadline < 0 || deadline > now)
			continue;
		if (w->hello)
			snprintf(why, sizeof(why), "took longer than %g s (--timeout) and was killed",
				 p->timeout);
		else
			snprintf(why, sizeof(why), "did not start within %g s (--timeout)", p->timeout);
		/* a hung compile would hang again: not retried; frames not started are */
		worker_reap(p, w, why, 0);
	}
}

/* The poll() timeout (ms) until the nearest deadline; -1 for none. */
static int poll_timeout(const struct pool *p)
{
	double now = now_seconds(), next = -1, ms;
	int i;

	for (i = 0; i < p->nr; i++) {
		double deadline = worker_deadline(p, &p->w[i]);

		if (deadline >= 0 && (next < 0 || deadline < next))
			next = deadline;
	}
	if (next < 0)
		return -1;
	ms = (next - now) * 1000 + 1;
	return ms <= 0 ? 0 : ms >= INT_MAX ? INT_MAX : (int)ms;
}

static int pool_busy(struct pool *p)
{
	int i, busy = 0;

	for (i = 0; i < p->nr; i++) {
		struct worker *w = &p->w[i];

		if (w->alive && w->nq)
			busy = 1;
		else if (p->tracing && p->no_more && !w->idle_since)
			w->idle_since = now_seconds();
	}
	return busy;
}

/* PREPYC_TRACE: how the end of the run kept the workers busy, and the pipes. */
static void trace_tail(const struct pool *p)
{
	double end = now_seconds(), idle = 0;
	int i;

	for (i = 0; i < p->nr; i++)
		idle += p->w[i].idle_since ? end - p->w[i].idle_since : 0;
	trace("pool: %d workers; the last frame handed out %.1f ms before the end, then "
	      "%.3f worker-s idle; %zu sends waited for a full pipe",
	      p->nr, p->no_more_at ? (end - p->no_more_at) * 1e3 : 0.0, idle, p->pipe_full);
}

static int pool_loop(struct pool *p)
{
	struct pollfd *pfd = xcalloc((size_t)p->nr * 3, sizeof(*pfd));
	int *owner = xcalloc((size_t)p->nr * 3, sizeof(*owner));
	int rc = 0;

	for (;;) {
		int i, n = 0, alive = 0;

		if (interrupted) {
			rc = -2;
			break;
		}
		reap_expired(p);
		pool_fill(p);
		if (!pool_busy(p) && !p->nrequeue && p->no_more)
			break;
		/* replace dead workers while there is work for them */
		for (i = 0; i < p->nr; i++) {
			struct worker *w = &p->w[i];

			if (!w->alive && p->start_failures < p->nr + 2 &&
			    (p->nrequeue || !p->no_more))
				if (worker_start(p, w) < 0) {
					rc = -1;
					goto out;
				}
			alive += w->alive;
		}
		if (!alive) {
			error("cannot start a worker of '%s': it %s", p->t->executable,
			      p->start_error ? p->start_error : "did not start");
			rc = -1;
			break;
		}
		pool_fill(p);
		for (i = 0; i < p->nr; i++) {
			struct worker *w = &p->w[i];

			if (!w->alive)
				continue;
			pfd[n].fd = w->resp;
			pfd[n].events = POLLIN;
			owner[n++] = i;
			if (w->err >= 0) {
				pfd[n].fd = w->err;
				pfd[n].events = POLLIN;
				owner[n++] = i;
			}
			if (w->req >= 0 && w->nsent < w->nq) {
				pfd[n].fd = w->req;
				pfd[n].events = POLLOUT;
				owner[n++] = i;
			}
		}
		if (poll(pfd, (nfds_t)n, poll_timeout(p)) < 0) {
			if (errno == EINTR)
				continue;
			rc = error_errno("poll failed");
			break;
		}
		/* replies first: one that came in time is taken; reap_expired() follows */
		for (i = 0; i < n; i++) {
			struct worker *w = &p->w[owner[i]];

			if (!w->alive || !pfd[i].revents)
				continue;
			if (pfd[i].fd == w->resp)
				worker_read(p, w);
			else if (pfd[i].fd == w->req)
				worker_flush(p, w);
			else if (pfd[i].fd == w->err)
				worker_printed(p, w);
		}
	}
out:
	free(pfd);
	free(owner);
	return rc;
}

int pool_run(const struct target *t, int nworkers, const struct pool_ops *ops, void *ctx,
	     unsigned flags, double timeout)
{
	struct pool p;
	int i, rc = 0;
	size_t j;

	memset(&p, 0, sizeof(p));
	p.t = t;
	p.ops = ops;
	p.ctx = ctx;
	p.timeout = timeout;
	p.tracing = trace_enabled();
	p.env = child_python_env(flags & POOL_KEEP_WARNINGS_ENV);
	p.nr = nworkers < 1 ? 1 : nworkers;
	p.w = xcalloc((size_t)p.nr, sizeof(*p.w));
	for (i = 0; i < p.nr; i++) {
		p.w[i].req = p.w[i].resp = p.w[i].err = -1;
		strbuf_init(&p.w[i].in, 0);
		strbuf_init(&p.w[i].out, 0);
	}
	for (i = 0; i < p.nr && rc == 0; i++)
		rc = worker_start(&p, &p.w[i]);
	if (rc == 0)
		rc = pool_loop(&p);
	if (p.tracing && rc == 0)
		trace_tail(&p);

	/* end of input tells a worker to exit; a broken or interrupted run kills them */
	for (i = 0; i < p.nr; i++) {
		struct worker *w = &p.w[i];
		int status;

		if (!w->alive)
			continue;
		if (rc != 0)
			kill(w->child.pid, SIGKILL);
		if (w->req >= 0)
			close(w->req);
		/*
		 * End of input makes it exit; its reply pipe stays open until then,
		 * so that a worker still sending its hello gets no EPIPE.
		 */
		child_wait(&w->child, &status);
		close(w->resp);
		/* what it printed on its way out (not after a kill: that was ours) */
		if (w->err >= 0) {
			if (rc == 0) {
				set_nonblock(w->err, 0);
				worker_read_output(w);
				worker_deliver_output(&p, w, POOL_NO_JOB, 0);
			}
			if (w->err >= 0)
				close(w->err);
		}
		for (j = 0; j < (size_t)w->nq; j++)
			strbuf_release(&w->q[j].frame);
		strbuf_release(&w->in);
	}
	for (i = 0; i < p.nr; i++)
		strbuf_release(&p.w[i].out);
	for (j = 0; j < p.nrequeue; j++)
		strbuf_release(&p.requeue[j].frame);
	free(p.requeue);
	free(p.w);
	free(p.start_error);
	child_free_env(p.env);
	return rc;
}
