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

#include "blk_backend.h"
#include "virtq.h"

#define BLK_SEG_MAX        (VIRTQ_MAX_SIZE - 2)	/* data segments per request */
#define BLK_DISCARD_SEG    32			/* ranges per discard/zero */
#define BLK_DISCARD_MAX    (1u << 22)		/* sectors per range (2 GiB) */

/** Serve chain @c on disk @b and write its status byte.  Returns the byte
 *  count the device wrote into the chain (for the used ring), or -EPROTO
 *  when the chain has no status byte (the device must then be reset). */
int blk_req_serve(struct blk_backend *b, const struct virtq_chain *c);

#endif /* HVCORE_BLK_REQ_H */
