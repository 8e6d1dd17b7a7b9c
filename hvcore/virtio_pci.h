/*
 * virtio_pci.h -- the virtio 1.x PCI transport, modern only (virtio 1.2,
 * section 4.1), for a device with up to VPCI_MAX_QUEUES queues.
 *
 * BAR0 (32 KiB, 32-bit memory) layout:
 *   0x0000  common configuration (struct virtio_pci_common_cfg, 0x3c bytes)
 *   0x1000  ISR status (1 byte; reading clears it and lowers INTx)
 *   0x2000  device configuration (the device type's struct)
 *   0x3000  notify: queue n at 0x3000 + 4 n (notify_off_multiplier 4);
 *           16-bit writes there are eaten by KVM (ioeventfd) and wake the
 *           queue's I/O thread; other widths take an MMIO exit and do the same
 *   0x4000  MSI-X table (16 bytes per vector: config vector + one per queue)
 *   0x5000  MSI-X pending bit array
 *
 * Interrupts: with MSI-X enabled, vector v is GSI VM_GSI_MSI_BASE +
 * index * VPCI_MSIX_VECTORS + v, an irqfd the I/O thread writes; a masked
 * vector sets its PBA bit and fires on unmask.  Without MSI-X, the ISR bit
 * is set and INTA (MPTABLE_PCI_PIN(slot)) asserted until the ISR is read.
 *
 * Locking: register accesses run under the PCI bus lock (vCPU threads).
 * Each queue has a lock that its I/O thread holds while serving the ring;
 * vCPUs take it to activate or reset the queue.  Interrupt state that the
 * I/O thread reads (MSI-X enable and masks, vectors, ISR, PBA) is atomic.
 */
#ifndef HVCORE_VIRTIO_PCI_H
#define HVCORE_VIRTIO_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "pci.h"
#include "virtq.h"

#define VPCI_MAX_QUEUES    1
#define VPCI_MSIX_VECTORS  (1 + VPCI_MAX_QUEUES)
#define VPCI_BAR_SIZE      0x8000
#define VPCI_COMMON_OFF    0x0000
#define VPCI_ISR_OFF       0x1000
#define VPCI_DEVICE_OFF    0x2000
#define VPCI_NOTIFY_OFF    0x3000
#define VPCI_NOTIFY_MULT   4
#define VPCI_MSIX_TABLE    0x4000
#define VPCI_MSIX_PBA      0x5000
#define VPCI_NO_VECTOR     0xffff

struct vpci_queue {
	pthread_mutex_t lock;		/* see above */
	struct virtq vq;		/* bound to the rings while active */
	bool active;			/* DRIVER_OK, enabled, rings valid */
	uint16_t size;			/* registers as the driver wrote them */
	uint16_t msix_vector;
	uint16_t enabled;
	uint64_t desc, driver, device;
	int kick_fd;			/* ioeventfd of the notify address */
	/* requests handed to the disk and not yet completed; a reset bumps
	 * gen and waits (idle) until none is left, so nothing touches the
	 * rings or buffers of a queue the driver has reset */
	unsigned inflight;
	uint32_t gen;
	pthread_cond_t idle;
};

struct vpci_msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl;	/* ctrl bit 0: masked */
};

struct vpci_dev;

struct vpci_ops {
	/* read @len bytes of the device configuration at @off (in range) */
	void (*config_read)(struct vpci_dev *d, unsigned off, uint8_t *data, unsigned len);
};

struct vpci_dev {
	struct pci_dev pci;
	struct vm *vm;
	unsigned index;			/* 0.. : MSI routes, INTx source bit */
	const struct vpci_ops *ops;
	void *opaque;			/* the device type's state */
	uint32_t config_size;
	uint64_t features;		/* offered */
	uint64_t driver_features;	/* accepted by the driver */
	uint32_t dfselect, gfselect;
	uint8_t status;
	uint16_t queue_select;
	uint16_t config_vector;
	unsigned nqueues;
	struct vpci_queue q[VPCI_MAX_QUEUES];
	uint8_t isr;			/* bit 0 queue, bit 1 config change */
	unsigned msix_cap;		/* config offset of the MSI-X capability */
	bool msix_enabled, msix_func_masked;
	struct vpci_msix_entry msix[VPCI_MSIX_VECTORS];
	uint32_t pba;			/* pending bits (atomic) */
	int irqfd[VPCI_MSIX_VECTORS];
};

/** Set up the transport for a device of virtio type @device_id (e.g. 2,
 *  block) with @nqueues queues, @features offered (VERSION_1 is added),
 *  and plug it into the bus.  @index numbers the device (0, 1, ...). */
int vpci_init(struct vpci_dev *d, struct vm *vm, unsigned index, uint16_t device_id,
	      uint16_t pci_class_hi, unsigned nqueues, uint64_t features,
	      uint32_t config_size, const struct vpci_ops *ops, void *opaque);
/** Interrupt for queue @qi (I/O thread). */
void vpci_queue_interrupt(struct vpci_dev *d, unsigned qi);
/** The queue's ring is unusable: set DEVICE_NEEDS_RESET and tell the driver
 *  (I/O thread, queue lock held). */
void vpci_needs_reset(struct vpci_dev *d);
/** Whether the driver accepted feature @bit. */
bool vpci_has_feature(const struct vpci_dev *d, unsigned bit);
void vpci_release(struct vpci_dev *d);

#endif /* HVCORE_VIRTIO_PCI_H */
