/*
 * progress.h - a one-line progress indicator on stderr.
 *
 * Shown only when stderr is a terminal, and only once a run has lasted a
 * moment (short runs print nothing); redrawn at most ten times a second;
 * progress_stop() erases it so the lines that follow start clean.  Call
 * progress_clear() before printing anything else to stderr.
 */
#ifndef PROGRESS_H
#define PROGRESS_H

#include <stddef.h>

struct progress {
	int enabled;
	int shown;
	double start, last;
	const char *label;
	size_t total;
};

void progress_start(struct progress *p, const char *label, size_t total, int enabled);
void progress_update(struct progress *p, size_t done);
void progress_clear(struct progress *p);
void progress_stop(struct progress *p);

#endif
