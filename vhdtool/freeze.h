/*
 * freeze.h -- freeze mounted filesystems for a consistent device copy, with
 * a guardian process that thaws them whatever happens to vhdtool.
 */
#ifndef VHDTOOL_FREEZE_H
#define VHDTOOL_FREEZE_H

#include <sys/types.h>

struct freeze {
	int *fds;		/* mount point directories */
	int n, frozen;
	int pipe_w;		/* closing it tells the guardian to thaw */
	pid_t guardian;
};

/* Freeze @mounts; thawed by freeze_end() or, failing that, by the guardian
 * when vhdtool exits or after @timeout_s seconds.  Prints errors. */
int freeze_begin(struct freeze *f, char **mounts, int n, unsigned timeout_s);
void freeze_end(struct freeze *f);

#endif /* VHDTOOL_FREEZE_H */
