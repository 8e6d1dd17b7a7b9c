/*
 * virtio_blk.c -- virtio-blk devices: configuration space, and the I/O
 * thread that serves a queue (see virtio_blk.h).
 *
 * The I/O thread sleeps in poll() on the queue's ioeventfd, the eventfd of
 * its libvhd asynchronous queue and the stop eventfd.  When woken it takes
 * the queue lock, collects finished requests, and drains the ring with
 * guest notifications suppressed: READ/WRITE go to the asynchronous queue
 * as iovecs over guest memory (libaio where the image maps them straight
 * to a file), the rest complete at once (blk_req.c).  Then it re-enables
 * notifications and looks again before sleeping, so a request made
 * meanwhile is never missed.  One interrupt per batch, and only if the
 * driver asked for it.  A queue reset waits until no request is in flight
 * (vpci_queue.inflight); completions of an older generation are dropped.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include "blk_req.h"
#include "util.h"
#include "virtio_blk.h"

#define VBLK_CONFIG_SIZE 60	/* through write_zeroes_may_unmap + padding */

static void config_read(struct vpci_dev *d, unsigned off, uint8_t *data, unsigned len)
{
	struct vblk *b = d->opaque;

	memcpy(data, b->config + off, len);
}

static const struct vpci_ops vblk_ops = {
	.config_read = config_read,
};

static unsigned log2u(uint32_t v)
{
	unsigned n = 0;

	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

static void build_config(struct vblk *b)
{
	struct virtio_blk_config c;
	const struct blk_backend *k = &b->disk;

	memset(&c, 0, sizeof(c));
	c.capacity = k->size / 512;
	c.seg_max = BLK_SEG_MAX;
	c.blk_size = k->logical_sector;
	c.physical_block_exp = (uint8_t)log2u(k->physical_sector / k->logical_sector);
	c.min_io_size = (uint16_t)(k->physical_sector / 512);
	c.num_queues = 1;
	c.max_discard_sectors = BLK_DISCARD_MAX;
	c.max_discard_seg = BLK_DISCARD_SEG;
	c.discard_sector_alignment = k->logical_sector / 512;
	c.max_write_zeroes_sectors = BLK_DISCARD_MAX;
	c.max_write_zeroes_seg = BLK_DISCARD_SEG;
	c.write_zeroes_may_unmap = 1;
	memcpy(b->config, &c, VBLK_CONFIG_SIZE);
}

static uint64_t offered_features(const struct vblk *b)
{
	uint64_t f = 1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_BLK_SIZE |
		     1ULL << VIRTIO_BLK_F_TOPOLOGY | 1ULL << VIRTIO_BLK_F_FLUSH |
		     1ULL << VIRTIO_RING_F_EVENT_IDX;

	if (b->disk.read_only)
		f |= 1ULL << VIRTIO_BLK_F_RO;
	else
		f |= 1ULL << VIRTIO_BLK_F_DISCARD | 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
	return f;
}

int vblk_create(struct vblk *b, struct vm *vm, unsigned index, const char *path,
		bool read_only)
{
	char err[512];
	int rc;

	memset(b, 0, sizeof(*b));
	b->stop_fd = -1;
	rc = blk_backend_open(&b->disk, path, read_only, err, sizeof(err));
	if (rc < 0)
		return hv_fail(rc, "%s", err);
	build_config(b);
	b->stop_fd = hv_eventfd(false);
	if (b->stop_fd < 0)
		return hv_fail(b->stop_fd, "eventfd: %s", strerror(-b->stop_fd));
	for (unsigned i = 0; i < VPCI_MAX_QUEUES; i++) {
		b->q[i].blk = b;
		b->q[i].index = i;
		b->q[i].chain = malloc(sizeof(*b->q[i].chain));
		if (!b->q[i].chain)
			return hv_fail(-ENOMEM, "out of memory");
	}
	rc = vpci_init(&b->vpci, vm, index, VIRTIO_ID_BLOCK, 0x0100, 1,
		       offered_features(b), VBLK_CONFIG_SIZE, &vblk_ops, b);
	if (rc < 0)
		return hv_fail(rc, "%s: %s", path, hv_errmsg());
	return 0;
}

/* Completed requests: answer those of the current generation.  Queue lock
 * held.  Returns true when anything was pushed. */
static bool reap(struct vblk_queue *bq, struct vpci_queue *q)
{
	struct vhd_aio *done[64];
	bool pushed = false;
	int n;

	while (bq->aioq && (n = vhd_aio_reap(bq->aioq, done, 0, 64)) > 0) {
		for (int i = 0; i < n; i++) {
			struct blk_io *io = done[i]->opaque;
			if (io->gen == q->gen && q->active && !q->vq.broken) {
				virtq_push(&q->vq, io->head, blk_req_finish(io));
				pushed = true;
				bq->requests++;
			}
			bq->free[bq->nfree++] = (uint16_t)(io - bq->slots);
			q->inflight--;
		}
	}
	if (q->inflight == 0)
		pthread_cond_broadcast(&q->idle);
	return pushed;
}

/* Drain the ring once (while slots are free).  Returns true when anything
 * completed. */
static bool drain(struct vblk_queue *bq, struct vpci_queue *q, struct virtq_chain *c)
{
	struct vblk *b = bq->blk;
	bool done = false;
	int rc, n;

	while (bq->nfree && (rc = virtq_pop(&q->vq, c)) != VIRTQ_EMPTY) {
		if (rc == VIRTQ_CHAIN) {
			struct blk_io *io = &bq->slots[bq->free[bq->nfree - 1]];
			n = blk_req_start(&b->disk, bq->aioq, c, io);
			if (n < 0) {		/* no status byte to answer in */
				q->vq.broken = true;
				vpci_needs_reset(&b->vpci);
				break;
			}
			if (n == BLK_REQ_QUEUED) {
				io->gen = q->gen;
				bq->nfree--;
				q->inflight++;
				continue;
			}
			virtq_push(&q->vq, c->head, io->written);
			bq->requests++;
		} else if (rc == -EBADMSG) {
			*c->status = VIRTIO_BLK_S_IOERR;
			virtq_push(&q->vq, c->head, 1);
		} else {
			vpci_needs_reset(&b->vpci);
			break;
		}
		done = true;
	}
	return done;
}

/*
 * After a batch the thread watches the avail index for a short while
 * before it re-enables notifications and sleeps: a driver that answers a
 * completion with its next request (queue depth 1, a polling guest) is
 * served without a kick exit, an eventfd wakeup and a context switch, which
 * cost more than the watch (here: ~12 us of host CPU per request at depth 1
 * without it).  Notifications stay off meanwhile, so the driver does not
 * kick.
 */
#define VBLK_WATCH_NS 20000

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Watch for new requests for up to VBLK_WATCH_NS with the queue lock
 * released.  Returns true when there is work. */
static bool watch(struct vblk_queue *bq, struct vpci_queue *q)
{
	uint64_t end = now_ns() + VBLK_WATCH_NS;
	bool work = false;

	pthread_mutex_unlock(&q->lock);
	do {
		if (!__atomic_load_n(&q->active, __ATOMIC_ACQUIRE) ||
		    virtq_has_avail(&q->vq)) {
			work = true;
			break;
		}
		__builtin_ia32_pause();
	} while (now_ns() < end);
	pthread_mutex_lock(&q->lock);
	return work;
}

static void serve(struct vblk_queue *bq)
{
	struct vpci_queue *q = &bq->blk->vpci.q[bq->index];

	pthread_mutex_lock(&q->lock);
	if (reap(bq, q) && virtq_need_interrupt(&q->vq))
		vpci_queue_interrupt(&bq->blk->vpci, bq->index);
	while (q->active && !q->vq.broken) {
		bool any;
		virtq_disable_notify(&q->vq);
		any = drain(bq, q, bq->chain);
		any |= reap(bq, q);
		if (any && virtq_need_interrupt(&q->vq))
			vpci_queue_interrupt(&bq->blk->vpci, bq->index);
		/* out of slots: completions wake us, not the guest */
		if (!bq->nfree || q->vq.broken)
			break;
		/* requests in the kernel: their completion wakes us */
		if (q->active && !q->inflight && watch(bq, q))
			continue;
		if (!q->active || !virtq_enable_notify(&q->vq))
			break;
	}
	pthread_mutex_unlock(&q->lock);
}

static void *io_thread(void *arg)
{
	struct vblk_queue *bq = arg;
	struct vblk *b = bq->blk;
	struct vpci_queue *q = &b->vpci.q[bq->index];
	struct pollfd p[3] = {
		{ .fd = q->kick_fd, .events = POLLIN },
		{ .fd = b->stop_fd, .events = POLLIN },
		{ .fd = bq->aioq ? vhd_aioq_eventfd(bq->aioq) : -1, .events = POLLIN },
	};

	for (;;) {
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		if (p[0].revents)
			hv_eventfd_drain(p[0].fd);
		serve(bq);
	}
	/* Requests still in the kernel are waited for by vhd_aioq_free in
	 * vblk_destroy, after the vCPUs (the only ones waiting on q->idle)
	 * have stopped. */
	{
		struct timespec ts;
		if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
			bq->cpu_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	}
	return NULL;
}

int vblk_start(struct vblk *b)
{
	for (unsigned i = 0; i < b->vpci.nqueues; i++) {
		struct vblk_queue *bq = &b->q[i];
		int rc;

		bq->slots = calloc(VIRTQ_MAX_SIZE, sizeof(*bq->slots));
		if (!bq->slots)
			return hv_fail(-ENOMEM, "out of memory");
		for (unsigned s = 0; s < VIRTQ_MAX_SIZE; s++)
			bq->free[bq->nfree++] = (uint16_t)(VIRTQ_MAX_SIZE - 1 - s);
		/* without a queue (io_setup refused) requests run synchronously */
		if (vhd_aioq_new(b->disk.disk, VIRTQ_MAX_SIZE, &bq->aioq) < 0)
			bq->aioq = NULL;
		rc = pthread_create(&b->q[i].thread, NULL, io_thread, &b->q[i]);

		if (rc)
			return hv_fail(-rc, "cannot start an I/O thread: %s", strerror(rc));
		b->q[i].started = true;
	}
	return 0;
}

void vblk_destroy(struct vblk *b)
{
	if (b->stop_fd >= 0)
		hv_eventfd_signal(b->stop_fd);
	for (unsigned i = 0; i < VPCI_MAX_QUEUES; i++) {
		if (b->q[i].started)
			pthread_join(b->q[i].thread, NULL);
		b->q[i].started = false;
		free(b->q[i].chain);
		b->q[i].chain = NULL;
		vhd_aioq_free(b->q[i].aioq);
		b->q[i].aioq = NULL;
		free(b->q[i].slots);
		b->q[i].slots = NULL;
	}
	vpci_release(&b->vpci);
	blk_backend_close(&b->disk);
	if (b->stop_fd >= 0)
		close(b->stop_fd);
	b->stop_fd = -1;
}
