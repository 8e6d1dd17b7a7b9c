/* virtio.h -- virtio 1.x over PCI (modern only), split virtqueues.
 *
 *   virtio_pci.c  finds a device's capabilities, resets it, negotiates
 *                 features and sets up queues (struct vdev)
 *   virtq.c       the split ring: descriptor allocation, avail, used
 *
 * Spec: "Virtual I/O Device (VIRTIO) Version 1.2", 2.7 (split queues) and
 * 4.1 (PCI transport).  All fields are little endian, as is x86. */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H
#include "pci.h"

#define VIRTIO_VENDOR		0x1af4
#define VIRTIO_ID_BLK_MODERN	0x1042	/* 0x1040 + device type 2 */

/* Device status (4.1.4.3 device_status) */
#define VS_ACKNOWLEDGE		0x01
#define VS_DRIVER		0x02
#define VS_DRIVER_OK		0x04
#define VS_FEATURES_OK		0x08
#define VS_NEEDS_RESET		0x40
#define VS_FAILED		0x80

#define VIRTIO_F_RING_EVENT_IDX	29
#define VIRTIO_F_VERSION_1	32

/* Capability cfg_type values (4.1.4) */
#define VIRTIO_PCI_CAP_COMMON	1
#define VIRTIO_PCI_CAP_NOTIFY	2
#define VIRTIO_PCI_CAP_ISR	3
#define VIRTIO_PCI_CAP_DEVICE	4

/* struct virtio_pci_common_cfg offsets */
#define VC_DFSELECT	0x00
#define VC_DF		0x04
#define VC_GFSELECT	0x08
#define VC_GF		0x0c
#define VC_MSIX		0x10
#define VC_NUMQ		0x12
#define VC_STATUS	0x14
#define VC_CFGGEN	0x15
#define VC_Q_SELECT	0x16
#define VC_Q_SIZE	0x18
#define VC_Q_MSIX	0x1a
#define VC_Q_ENABLE	0x1c
#define VC_Q_NOFF	0x1e
#define VC_Q_DESC	0x20
#define VC_Q_AVAIL	0x28
#define VC_Q_USED	0x30

#define VIRTIO_NO_VECTOR 0xffff

/* ---- split virtqueue (2.7) */
#define VQ_MAX		256	/* the largest queue the guest sets up */
#define VRING_DESC_F_NEXT	1
#define VRING_DESC_F_WRITE	2	/* device writes this buffer */
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY	1

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

struct vring_avail {
	uint16_t flags, idx;
	uint16_t ring[VQ_MAX];
	uint16_t used_event;
};

struct vring_used_elem {
	uint32_t id, len;
};

struct vring_used {
	uint16_t flags, idx;
	struct vring_used_elem ring[VQ_MAX];
	uint16_t avail_event;
};

struct virtq {
	uint16_t size;		/* entries, a power of two <= VQ_MAX */
	uint16_t index;		/* queue number */
	uint16_t free_head;	/* first free descriptor, chained by next */
	uint16_t num_free;
	uint16_t avail_idx;	/* our copy of avail->idx */
	uint16_t last_used;	/* next used->ring entry to look at */
	volatile struct vring_desc *desc;
	volatile struct vring_avail *avail;
	volatile struct vring_used *used;
	uint64_t notify;	/* MMIO address of this queue's notify register */
	uint16_t chain_len[VQ_MAX];	/* descriptors in the chain at each head */
	void *cookie[VQ_MAX];
};

/* One buffer of a request: len bytes at addr, device-readable or not. */
struct vbuf {
	uint64_t addr;
	uint32_t len;
	bool write;	/* the device writes it */
};

/* virtq.c */
void virtq_init(struct virtq *q, uint16_t index, uint16_t size, void *mem, uint64_t notify);
void virtq_reset_free(struct virtq *q);
/* Adds a chain; returns its head, or -1 when there are too few descriptors. */
int virtq_add(struct virtq *q, const struct vbuf *b, int n, void *cookie);
/* Makes head visible in the avail ring (no notification). */
void virtq_publish(struct virtq *q, uint16_t head);
void virtq_kick(struct virtq *q);
/* Takes one used entry; returns false when there is none. */
bool virtq_get(struct virtq *q, void **cookie, uint32_t *len, uint32_t *id);
size_t virtq_mem_size(void);

/* ---- virtio_pci.c */
struct vdev {
	struct pci_addr pci;
	struct pci_bar bar[6];
	uint64_t common, isr, devcfg, notify;	/* MMIO addresses from the caps */
	uint32_t notify_mult;
	uint32_t devcfg_len;
	uint64_t features;	/* offered by the device */
	uint64_t negotiated;	/* accepted by us */
	uint16_t num_queues;
};

int vdev_probe(struct vdev *d, struct pci_addr a, char *err, size_t errlen);
/* Reset, ACKNOWLEDGE, DRIVER, features (VERSION_1 required, plus want),
 * FEATURES_OK.  Returns 0 or -1 with err filled. */
int vdev_start(struct vdev *d, uint64_t want, char *err, size_t errlen);
/* Sets up queue qi (size min(device max, VQ_MAX)) in mem. */
int vdev_setup_queue(struct vdev *d, uint16_t qi, struct virtq *q, void *mem, char *err, size_t errlen);
void vdev_driver_ok(struct vdev *d);
uint8_t vdev_status(struct vdev *d);
/* Writes 0 and waits until the device reads back 0; -1 on a timeout. */
int vdev_reset(struct vdev *d);
uint8_t vdev_cfg8(struct vdev *d, uint32_t off);
uint16_t vdev_cfg16(struct vdev *d, uint32_t off);
uint32_t vdev_cfg32(struct vdev *d, uint32_t off);
uint64_t vdev_cfg64(struct vdev *d, uint32_t off);
static inline bool vdev_has(const struct vdev *d, int bit)
{
	return d->negotiated >> bit & 1;
}

#endif
