/*
 * progress.c -- a one-line progress bar on stderr (TTY only): bytes done,
 * rate and ETA, redrawn at most ten times a second.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "vhdtool.h"

double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_init(struct progress *p, bool enabled, const char *label)
{
	p->enabled = enabled && isatty(STDERR_FILENO);
	p->label = label;
	p->start = now_seconds();
	p->last = 0;
	p->total = 0;
}

static void draw(struct progress *p, uint64_t done, uint64_t total, double t)
{
	char d[32], tot[32], rate[32];
	double el = t - p->start;
	double frac = total ? (double)done / (double)total : 1;
	double bps = el > 0 ? (double)done / el : 0;
	int width = 30, fill = (int)(frac * width);

	format_size(done, d, sizeof(d));
	format_size(total, tot, sizeof(tot));
	format_size((uint64_t)bps, rate, sizeof(rate));
	fprintf(stderr, "\r%s [%.*s%*s] %3d%% %s/%s %s/s ETA %ds ", p->label,
		fill, "##############################", width - fill, "",
		(int)(frac * 100), d, tot, rate,
		bps > 0 ? (int)((double)(total - done) / bps) : 0);
}

int progress_update(void *opaque, uint64_t done, uint64_t total)
{
	struct progress *p = opaque;
	double t;

	p->total = total;
	if (!p->enabled)
		return 0;
	t = now_seconds();
	if (t - p->last < 0.1 && done < total)
		return 0;
	p->last = t;
	draw(p, done, total, t);
	return 0;
}

void progress_finish(struct progress *p, uint64_t total)
{
	if (!p->enabled)
		return;
	draw(p, total, total, now_seconds());
	fputc('\n', stderr);
}
