#define _POSIX_C_SOURCE 200809L
#include "progress.h"

#include <stdio.h>
#include <unistd.h>

#include "util.h"
#include "banned.h"

void progress_start(struct progress *p, const char *label, size_t total, int enabled)
{
	p->enabled = enabled && isatty(2);
	p->shown = 0;
	p->start = p->last = now_seconds();
	p->label = label;
	p->total = total;
}

void progress_update(struct progress *p, size_t done)
{
	double t;

	if (!p->enabled)
		return;
	t = now_seconds();
	if (t - p->start < 0.5 || t - p->last < 0.1)
		return;
	p->last = t;
	p->shown = 1;
	fprintf(stderr, "\r%s: %s %zu/%zu (%d%%)\033[K", progname, p->label, done, p->total,
		p->total ? (int)(done * 100 / p->total) : 100);
	fflush(stderr);
}

void progress_clear(struct progress *p)
{
	if (p->shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		p->shown = 0;
		p->last = 0; /* redraw at the next update */
	}
}

void progress_stop(struct progress *p)
{
	progress_clear(p);
	p->enabled = 0;
}
