/*
 * freeze.c -- freeze mounted filesystems (FIFREEZE) for a consistent copy
 * of their device, and always thaw them.
 *
 * A guardian process is forked before the first freeze.  It keeps its own
 * descriptors of the mount points and waits on a pipe from vhdtool; when
 * the pipe closes -- vhdtool thawed and exited, failed, was interrupted, or
 * was killed outright -- or the deadline passes, it thaws every filesystem
 * (FITHAW on one that is not frozen is a harmless EINVAL) and exits.  So no
 * path, not even SIGKILL, leaves a filesystem frozen past the deadline.
 * vhdtool itself also thaws at once when the copy ends.
 *
 * (This is the filesystem provider of quiescence; it moves to vss/ when that
 * layer arrives.)
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "freeze.h"
#include "vhdtool.h"

static void thaw_all(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			ioctl(fds[i], FITHAW, 0);
}

/* The guardian: thaw when vhdtool's end of the pipe closes or at the
 * deadline, whichever comes first. */
static void guardian(int rfd, const int *fds, int n, unsigned timeout_s)
{
	struct pollfd p = { .fd = rfd, .events = POLLIN };
	time_t deadline = time(NULL) + timeout_s;
	char c;

	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	for (;;) {
		time_t now = time(NULL);
		int left = deadline > now ? (int)(deadline - now) : 0;
		int r = poll(&p, 1, left * 1000);
		if (r == 0)
			break;		/* deadline */
		if (r > 0 && read(rfd, &c, 1) <= 0)
			break;		/* vhdtool is gone or done */
	}
	thaw_all(fds, n);
	_exit(0);
}

int freeze_begin(struct freeze *f, char **mounts, int n, unsigned timeout_s)
{
	int pipefd[2];

	memset(f, 0, sizeof(*f));
	f->n = n;
	f->fds = calloc((size_t)n, sizeof(int));
	if (!f->fds)
		return fail("out of memory");
	for (int i = 0; i < n; i++) {
		f->fds[i] = open(mounts[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (f->fds[i] < 0) {
			int e = errno;
			for (int k = 0; k < i; k++)
				close(f->fds[k]);
			free(f->fds);
			f->fds = NULL;
			return fail("%s: cannot open the mount point: %s", mounts[i], strerror(e));
		}
	}
	if (pipe(pipefd) < 0)
		return fail("cannot create a pipe: %s", strerror(errno));
	fflush(NULL);
	f->guardian = fork();
	if (f->guardian < 0)
		return fail("cannot fork the thaw guardian: %s", strerror(errno));
	if (f->guardian == 0) {
		close(pipefd[1]);
		guardian(pipefd[0], f->fds, n, timeout_s);
	}
	close(pipefd[0]);
	f->pipe_w = pipefd[1];
	for (int i = 0; i < n; i++) {
		if (ioctl(f->fds[i], FIFREEZE, 0) < 0) {
			int e = errno;
			freeze_end(f);
			return fail("%s: cannot freeze: %s", mounts[i], strerror(e));
		}
		f->frozen = i + 1;
	}
	return EXIT_OK;
}

void freeze_end(struct freeze *f)
{
	int status;

	if (!f->fds)
		return;
	thaw_all(f->fds, f->frozen);
	if (f->pipe_w > 0)
		close(f->pipe_w);	/* the guardian thaws again and exits */
	if (f->guardian > 0)
		waitpid(f->guardian, &status, 0);
	for (int i = 0; i < f->n; i++)
		close(f->fds[i]);
	free(f->fds);
	memset(f, 0, sizeof(*f));
}
