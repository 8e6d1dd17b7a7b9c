/*
 * virtio_blk.h -- virtio-blk devices (virtio 1.2 section 5.2) on the PCI
 * transport, one request queue each, served by one I/O thread per queue.
 *
 * Features offered: SEG_MAX, BLK_SIZE, TOPOLOGY, FLUSH, DISCARD,
 * WRITE_ZEROES, RO (read-only disks), RING_EVENT_IDX; GET_ID requests
 * answer the image's base name.
 */
#ifndef HVCORE_VIRTIO_BLK_H
#define HVCORE_VIRTIO_BLK_H

#include <pthread.h>
#include <stdbool.h>

#include "blk_backend.h"
#include "virtio_pci.h"

struct virtq_chain;

struct blk_io;

struct vblk_queue {
	struct vblk *blk;
	unsigned index;
	pthread_t thread;
	bool started;
	struct virtq_chain *chain;	/* the chain being decoded (no malloc
					   per request) */
	vhd_aioq *aioq;			/* the I/O thread's; NULL: synchronous */
	struct blk_io *slots;		/* VIRTQ_MAX_SIZE requests in flight */
	uint16_t free[VIRTQ_MAX_SIZE];	/* stack of free slot indexes */
	unsigned nfree;
	uint64_t requests;		/* completed (for --stats) */
	uint64_t cpu_ns;		/* the I/O thread's CPU time, at its end */
};

struct vblk {
	struct vpci_dev vpci;		/* first: the transport */
	struct blk_backend disk;
	uint8_t config[64];		/* struct virtio_blk_config image */
	int stop_fd;			/* eventfd: I/O threads end */
	struct vblk_queue q[VPCI_MAX_QUEUES];
};

/** Open @path (an image or a block device; ",ro" handled by the caller)
 *  and plug it as device @index.  On failure the message names the file. */
int vblk_create(struct vblk *b, struct vm *vm, unsigned index, const char *path,
		bool read_only);
/** Start the I/O threads. */
int vblk_start(struct vblk *b);
/** Stop the I/O threads and close the disk (flushes it). */
void vblk_destroy(struct vblk *b);

#endif /* HVCORE_VIRTIO_BLK_H */
