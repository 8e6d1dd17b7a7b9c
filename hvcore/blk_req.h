/*
 * blk_req.h -- serve one virtio-blk request (virtio 1.x, 5.2.6).
 *
 * A request is a descriptor chain: a 16-byte header (le32 type, le32
 * reserved, le64 sector) in the readable part, then data (readable for
 * writes, writable for reads), then one writable status byte, the chain's
 * last byte.  Nothing is assumed about how the bytes are split between
 * descriptors.  Sectors are always 512 bytes in the protocol.
 *
 * No KVM dependency (fuzzed with the queue parser).
 */
#ifndef HVCORE_BLK_REQ_H
#define HVCORE_BLK_REQ_H

#include <sys/uio.h>

#include "blk_backend.h"
#include "virtq.h"

#define BLK_SEG_MAX        (VIRTQ_MAX_SIZE - 2)	/* data segments per request */
#define BLK_DISCARD_SEG    32			/* ranges per discard/zero */
#define BLK_DISCARD_MAX    (1u << 22)		/* sectors per range (2 GiB) */

/* A request in flight: READ/WRITE data go to libvhd's asynchronous queue
 * as an iovec straight over guest memory (no copy). */
struct blk_io {
	struct vhd_aio aio;
	uint16_t head;			/* used-ring id */
	uint32_t gen;			/* queue generation at submit (resets) */
	uint32_t written;		/* bytes written into the chain on success */
	uint8_t *status;
	struct iovec iov[VIRTQ_MAX_SIZE];
};

#define BLK_REQ_DONE   0		/* completed: status and io->written set */
#define BLK_REQ_QUEUED 1		/* in @q: finish with blk_req_finish */

/** Start serving chain @c on disk @b.  READ/WRITE go to @q when it is not
 *  NULL; everything else (and all of it without @q) completes at once.
 *  Returns BLK_REQ_DONE, BLK_REQ_QUEUED, or -EPROTO when the chain has no
 *  status byte (the device must then be reset). */
int blk_req_start(struct blk_backend *b, vhd_aioq *q, const struct virtq_chain *c,
		  struct blk_io *io);
/** A queued request completed (io->aio.result set): write its status byte;
 *  returns the byte count for the used ring. */
uint32_t blk_req_finish(struct blk_io *io);
/** Serve chain @c synchronously.  Returns the byte count the device wrote
 *  into the chain (for the used ring), or -EPROTO (see above). */
int blk_req_serve(struct blk_backend *b, const struct virtq_chain *c);

#endif /* HVCORE_BLK_REQ_H */
