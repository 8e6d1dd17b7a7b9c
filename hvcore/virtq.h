/*
 * virtq.h -- the split virtqueue (virtio 1.x, section 2.7), device side.
 *
 * This file and virtq.c know nothing of KVM or PCI: they walk rings that
 * live in guest memory (struct gmem) and turn each available descriptor
 * chain into a list of host buffers.  Everything the guest wrote is
 * untrusted; the parser guarantees, for ANY ring content:
 *
 *  - every buffer it returns lies wholly inside guest RAM (gmem_ptr);
 *  - a chain has at most `size` descriptors (so loops end) and at most
 *    2^32 bytes in total;
 *  - readable buffers come before writable ones;
 *  - it reads each descriptor exactly once into a local copy, so a guest
 *    racing the walk cannot make it use a value it did not check.
 *
 * Threading: one thread (the queue's I/O thread) pops, pushes and decides
 * on interrupts; the owner serializes setup/reset against it.
 */
#ifndef HVCORE_VIRTQ_H
#define HVCORE_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>

#include "gmem.h"

#define VIRTQ_MAX_SIZE 256		/* largest queue we accept (power of 2) */

struct virtq_iov {
	uint8_t *base;			/* host pointer into guest RAM */
	uint32_t len;			/* > 0 */
};

/* One descriptor chain: iov[0, nout) are device-readable, iov[nout,
 * nout + nin) device-writable.  Zero-length descriptors are dropped. */
struct virtq_chain {
	uint16_t head;			/* id to return in the used ring */
	uint16_t nout, nin;
	uint64_t out_len, in_len;	/* byte totals */
	uint8_t *status;		/* bad chain: last writable byte, or NULL */
	struct virtq_iov iov[VIRTQ_MAX_SIZE];
};

struct vring_desc;
struct vring_avail;
struct vring_used;

struct virtq {
	const struct gmem *mem;
	uint16_t size;			/* entries, power of 2, <= VIRTQ_MAX_SIZE */
	bool event_idx;			/* VIRTIO_F_RING_EVENT_IDX negotiated */
	bool broken;			/* a fatal ring error: stop until reset */
	struct vring_desc *desc;	/* host pointers, resolved by virtq_init */
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t last_avail;		/* next avail ring slot we will read */
	uint16_t used_idx;		/* our copy of used->idx */
	uint16_t signalled_used;	/* used_idx at the last interrupt decision */
};

/* virtq_pop results */
#define VIRTQ_EMPTY 0			/* nothing available */
#define VIRTQ_CHAIN 1			/* *c holds a valid chain */

/** Bind @q to rings at the given guest addresses.  Returns 0, -EINVAL for
 *  a bad size or misaligned ring, -EFAULT when a ring is not inside RAM. */
int virtq_init(struct virtq *q, const struct gmem *mem, uint16_t size,
	       uint64_t desc, uint64_t avail, uint64_t used, bool event_idx);

/** Take the next available chain.  Returns VIRTQ_CHAIN, VIRTQ_EMPTY,
 *  -EBADMSG for a malformed chain whose status byte is known (c->head and
 *  c->status are set: complete it with an error), or -EPROTO when the ring
 *  cannot be trusted any more (q->broken is set; the device needs reset). */
int virtq_pop(struct virtq *q, struct virtq_chain *c);

/** Put @head in the used ring with @len bytes written, and publish it. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t len);

/** After pushing: whether the driver wants an interrupt now. */
bool virtq_need_interrupt(struct virtq *q);

/** Ask the driver not to notify us (we are polling the ring). */
void virtq_disable_notify(struct virtq *q);

/** Whether the driver made buffers available that we have not taken. */
bool virtq_has_avail(struct virtq *q);

/** Ask for notifications again.  Returns true when buffers arrived in the
 *  meantime (poll again before sleeping). */
bool virtq_enable_notify(struct virtq *q);

#endif /* HVCORE_VIRTQ_H */
