/*
 * aio.c -- the asynchronous request queue (vhd_aioq; see libvhd.h).
 *
 * A READ or WRITE whose whole range the format maps to one contiguous run of
 * the image file (format op `map`), on a backend that exposes its
 * descriptor (io op `aio_fd`) and with the descriptor's O_DIRECT alignment
 * met, goes straight to that descriptor on the caller's iovec: as a libaio
 * iocb when the descriptor is O_DIRECT, and as a plain preadv/pwritev in
 * vhd_aio_submit when it is buffered (the kernel would run a buffered iocb
 * inside io_submit anyway; this saves the iocb and eventfd round trips).
 * Everything else runs synchronously in vhd_aio_submit through the ordinary
 * calls.  Requests finished inside vhd_aio_submit are queued as completed.
 *
 * Invariants
 *  - inflight = requests accepted and not yet reaped <= depth; kernel =
 *    those still owned by the kernel; ready holds the completed ones not
 *    yet reaped.  A slot (iocb) is owned by the kernel exactly while its
 *    request is in flight there.
 *  - The eventfd is non-zero whenever the kernel has completions not yet
 *    collected, or reap left completions behind: the kernel's add to it
 *    through io_set_eventfd, and reap resets it before collecting (only when
 *    it may be set: efd_maybe), re-arming it when it leaves some behind.
 *    Requests completed inside submit do not touch it: the caller reaps
 *    after submitting.
 *  - A FLUSH is executed only after every earlier request of the queue has
 *    completed (drain), so it covers them.
 */
#include <errno.h>
#include <libaio.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "disk.h"

#define AIOQ_MAX_DEPTH 1024

struct aio_slot {
	struct iocb cb;
	struct vhd_aio *req;
};

struct vhd_aioq {
	vhd_disk *d;
	io_context_t ctx;
	int efd;
	int fd;			/* the image file's descriptor, or -1 */
	unsigned align;		/* its O_DIRECT alignment (0: buffered) */
	unsigned depth;
	unsigned inflight;	/* accepted, not yet reaped */
	unsigned kernel;	/* owned by the kernel */
	struct vhd_aio **ready;	/* ring of completed requests */
	unsigned ready_head, ready_count;
	struct aio_slot *slots;
	unsigned *free_slots;	/* stack of free slot indexes */
	unsigned nfree;
	struct iocb **batch;	/* iocbs prepared by this submit call */
	unsigned nbatch;
	struct io_event *events;
	bool efd_maybe;		/* the eventfd may be non-zero */
};

static void signal_ready(vhd_aioq *q)
{
	uint64_t one = 1;

	q->efd_maybe = true;
	if (write(q->efd, &one, sizeof(one)) < 0) {
		/* The counter cannot overflow with <= 1024 requests. */
	}
}

static void complete(vhd_aioq *q, struct vhd_aio *r, ssize_t result)
{
	r->result = result;
	q->ready[(q->ready_head + q->ready_count) % q->depth] = r;
	q->ready_count++;
}

static uint64_t iov_bytes(const struct vhd_aio *r)
{
	uint64_t n = 0;

	for (int i = 0; i < r->iovcnt; i++)
		n += r->iov[i].iov_len;
	return n;
}

/* READ/WRITE through the ordinary calls, segment by segment. */
static ssize_t run_rw_sync(vhd_disk *d, const struct vhd_aio *r)
{
	uint64_t off = r->offset;

	for (int i = 0; i < r->iovcnt; i++) {
		size_t len = r->iov[i].iov_len;
		ssize_t n;

		if (len == 0)
			continue;
		n = r->op == VHD_AIO_READ ? vhd_pread(d, r->iov[i].iov_base, len, off)
					  : vhd_pwrite(d, r->iov[i].iov_base, len, off);
		if (n < 0)
			return n;
		off += len;
	}
	return (ssize_t)(off - r->offset);
}

static bool iov_aligned(const struct vhd_aio *r, unsigned align)
{
	if (align == 0)
		return true;
	for (int i = 0; i < r->iovcnt; i++)
		if ((uintptr_t)r->iov[i].iov_base % align || r->iov[i].iov_len % align)
			return false;
	return true;
}

/* When the request can go to the image file as it is: run it there now
 * (buffered descriptor) or prepare an iocb (O_DIRECT). */
static bool try_kernel(vhd_aioq *q, struct vhd_aio *r, uint64_t len)
{
	vhd_disk *d = q->d;
	bool write = r->op == VHD_AIO_WRITE;
	struct aio_slot *s;
	uint64_t pos;
	unsigned idx;

	if (q->fd < 0 || !d->ops->map)
		return false;
	if (r->iovcnt > IOV_MAX)
		return false;
	if (d->ops->map(d, r->offset, len, write, &pos) != len)
		return false;
	if (q->align && (pos % q->align || !iov_aligned(r, q->align)))
		return false;
	if (!q->align) {
		ssize_t n = write ? pwritev(q->fd, r->iov, r->iovcnt, (off_t)pos)
				  : preadv(q->fd, r->iov, r->iovcnt, (off_t)pos);
		/* short or failed: the synchronous path has the answer */
		complete(q, r, n == (ssize_t)len ? n : run_rw_sync(d, r));
		return true;
	}
	if (q->nfree == 0)
		return false;
	idx = q->free_slots[--q->nfree];
	s = &q->slots[idx];
	s->req = r;
	if (write)
		io_prep_pwritev(&s->cb, q->fd, r->iov, r->iovcnt, (long long)pos);
	else
		io_prep_preadv(&s->cb, q->fd, r->iov, r->iovcnt, (long long)pos);
	io_set_eventfd(&s->cb, q->efd);
	s->cb.data = s;
	r->priv_[0] = len;
	q->batch[q->nbatch++] = &s->cb;
	return true;
}

static void release_slot(vhd_aioq *q, struct aio_slot *s)
{
	s->req = NULL;
	q->free_slots[q->nfree++] = (unsigned)(s - q->slots);
}

/* A kernel completion.  A short transfer (a file shorter than the disk, an
 * image truncated under us) is redone through the synchronous path, which
 * knows what each format makes of it. */
static void finish_kernel(vhd_aioq *q, struct io_event *ev)
{
	struct aio_slot *s = ev->data;
	struct vhd_aio *r = s->req;
	long res = (long)ev->res;

	release_slot(q, s);
	q->kernel--;
	if (res >= 0 && (uint64_t)res != r->priv_[0])
		res = run_rw_sync(q->d, r);
	complete(q, r, res);
}

static int collect(vhd_aioq *q, unsigned min, unsigned max)
{
	int n;

	if (q->kernel == 0 || max == 0)
		return 0;
	if (max > q->kernel)
		max = q->kernel;
	if (min > max)
		min = max;
	do
		n = io_getevents(q->ctx, min, max, q->events, NULL);
	while (n == -EINTR);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++)
		finish_kernel(q, &q->events[i]);
	return n;
}

/* Hand the prepared iocbs to the kernel; what it does not take runs
 * synchronously. */
static void push_batch(vhd_aioq *q)
{
	unsigned done = 0;

	while (done < q->nbatch) {
		int n = io_submit(q->ctx, q->nbatch - done, q->batch + done);
		if (n == -EINTR)
			continue;
		if (n <= 0) {
			for (; done < q->nbatch; done++) {
				struct aio_slot *s = q->batch[done]->data;
				struct vhd_aio *r = s->req;
				release_slot(q, s);
				complete(q, r, run_rw_sync(q->d, r));
			}
			break;
		}
		q->kernel += (unsigned)n;
		q->efd_maybe = true;
		done += (unsigned)n;
	}
	q->nbatch = 0;
}

/* Wait until the kernel owns none of this queue's requests. */
static int drain(vhd_aioq *q)
{
	push_batch(q);
	while (q->kernel > 0) {
		int rc = collect(q, q->kernel, q->kernel);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void start(vhd_aioq *q, struct vhd_aio *r)
{
	uint64_t len;
	ssize_t rc;

	switch (r->op) {
	case VHD_AIO_READ:
	case VHD_AIO_WRITE:
		len = iov_bytes(r);
		rc = disk_check_range(q->d, r->offset, len, r->op == VHD_AIO_WRITE);
		if (rc < 0 || len == 0) {
			complete(q, r, rc);
			return;
		}
		if (try_kernel(q, r, len))
			return;
		complete(q, r, run_rw_sync(q->d, r));
		return;
	case VHD_AIO_FLUSH:
		rc = drain(q);
		complete(q, r, rc < 0 ? rc : vhd_flush(q->d));
		return;
	case VHD_AIO_DISCARD:
		complete(q, r, vhd_discard(q->d, r->offset, r->length));
		return;
	case VHD_AIO_ZERO:
		complete(q, r, vhd_zero(q->d, r->offset, r->length, r->flags));
		return;
	}
	complete(q, r, -EINVAL);
}

int vhd_aio_submit(vhd_aioq *q, struct vhd_aio *const *reqs, unsigned n)
{
	unsigned i;

	for (i = 0; i < n && q->inflight < q->depth; i++) {
		q->inflight++;
		start(q, reqs[i]);
	}
	push_batch(q);
	return (int)i;
}

int vhd_aio_reap(vhd_aioq *q, struct vhd_aio **done, unsigned min, unsigned max)
{
	unsigned got = 0;
	uint64_t cnt;
	int rc;

	if (min > q->inflight)
		min = q->inflight;
	if (min > max)
		min = max;
	/* Reset first: completions that land from here on count again. */
	if (q->efd_maybe) {
		q->efd_maybe = q->kernel > 0;
		if (read(q->efd, &cnt, sizeof(cnt)) < 0) {
			/* EAGAIN: nothing was signalled */
		}
	}
	for (;;) {
		while (got < max && q->ready_count > 0) {
			done[got++] = q->ready[q->ready_head];
			q->ready_head = (q->ready_head + 1) % q->depth;
			q->ready_count--;
		}
		if (got >= max || q->kernel == 0)
			break;
		rc = collect(q, got < min ? 1 : 0, max - got);
		if (rc < 0)
			return rc;
		if (rc == 0 && got >= min)
			break;
	}
	q->inflight -= got;
	if (q->ready_count > 0 || (got == max && q->kernel > 0))
		signal_ready(q);
	return (int)got;
}

int vhd_aioq_eventfd(const vhd_aioq *q)
{
	return q->efd;
}

unsigned vhd_aioq_inflight(const vhd_aioq *q)
{
	return q->inflight;
}

/* Free a queue's memory and descriptors (nothing in flight). */
static void release(vhd_aioq *q)
{
	if (q->ctx)
		io_destroy(q->ctx);
	close(q->efd);
	free(q->ready);
	free(q->slots);
	free(q->free_slots);
	free(q->batch);
	free(q->events);
	free(q);
}

void vhd_aioq_free(vhd_aioq *q)
{
	if (!q)
		return;
	drain(q);
	release(q);
}

int vhd_aioq_new(vhd_disk *d, unsigned depth, vhd_aioq **out)
{
	vhd_aioq *q;
	int rc;

	if (depth == 0 || depth > AIOQ_MAX_DEPTH)
		return disk_error(d, -EINVAL, "queue depth %u is not in 1..%u", depth,
				  AIOQ_MAX_DEPTH);
	q = calloc(1, sizeof(*q));
	if (!q)
		return disk_error(d, -ENOMEM, "out of memory");
	q->d = d;
	q->depth = depth;
	q->fd = -1;
	q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->efd < 0) {
		rc = disk_error(d, -errno, "eventfd: %s", vhd_strerror(-errno));
		free(q);
		return rc;
	}
	q->ready = calloc(depth, sizeof(*q->ready));
	q->slots = calloc(depth, sizeof(*q->slots));
	q->free_slots = calloc(depth, sizeof(*q->free_slots));
	q->batch = calloc(depth, sizeof(*q->batch));
	q->events = calloc(depth, sizeof(*q->events));
	if (!q->ready || !q->slots || !q->free_slots || !q->batch || !q->events) {
		rc = disk_error(d, -ENOMEM, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < depth; i++)
		q->free_slots[q->nfree++] = depth - 1 - i;
	rc = io_setup((int)depth, &q->ctx);
	if (rc < 0) {
		rc = disk_error(d, rc, "io_setup(%u): %s", depth, vhd_strerror(rc));
		goto fail;
	}
	if (d->io && d->io->ops->aio_fd) {
		unsigned align = 0;
		int fd = d->io->ops->aio_fd(d->io, &align);
		if (fd >= 0) {
			q->fd = fd;
			q->align = align;
		}
	}
	*out = q;
	return 0;
fail:
	release(q);
	return rc;
}
