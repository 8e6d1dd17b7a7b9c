/*
 * pci.h -- PCI bus 0 behind configuration mechanism #1 (ports 0xcf8-0xcff).
 *
 * 00:00.0 is a host bridge; devices sit at 00:NN.0.  Each device keeps a
 * 256-byte configuration space image plus a write mask (bits the guest may
 * change).  BAR0 is the only BAR: 32-bit memory, non-prefetchable, a power
 * of two in size; hvcore assigns it inside the MMIO hole like firmware
 * would, and the guest may size it (write all ones, read the mask) or move
 * it.  MMIO exits in a mapped BAR0 go to the device's handler.
 *
 * Locking: bus->lock serializes every configuration access and every BAR0
 * MMIO access (handlers run with it held).  Lock order: bus lock, then a
 * device's queue locks, then vm->irq_lock.
 */
#ifndef HVCORE_PCI_H
#define HVCORE_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vm.h"

#define PCI_MAX_SLOTS 32
#define PCI_CFG_SIZE  256

struct pci_dev;

struct pci_dev_ops {
	/* BAR0 access at @off (already inside the BAR) */
	void (*bar_access)(struct pci_dev *d, uint64_t off, uint8_t *data,
			   unsigned len, bool write);
	/* after a guest write to config space [off, off + len) */
	void (*cfg_written)(struct pci_dev *d, unsigned off, unsigned len);
	/* BAR0 now decodes at @base (0: not decoded) */
	void (*bar_moved)(struct pci_dev *d, uint64_t old_base, uint64_t base);
};

struct pci_dev {
	uint8_t cfg[PCI_CFG_SIZE];	/* little-endian image */
	uint8_t wmask[PCI_CFG_SIZE];	/* writable bits */
	uint8_t next_cap;		/* where the next capability goes */
	uint8_t *last_cap_next;		/* previous capability's next pointer */
	unsigned slot;
	uint32_t bar_size;		/* BAR0 bytes; 0 = no BAR */
	uint64_t bar_base;		/* where BAR0 decodes now, 0 = off */
	const struct pci_dev_ops *ops;
	void *opaque;
};

struct pci_bus {
	struct vm *vm;
	pthread_mutex_t lock;
	uint32_t cf8;			/* configuration address register */
	struct pci_dev host;		/* 00:00.0 */
	struct pci_dev *dev[PCI_MAX_SLOTS];
	uint64_t next_bar;		/* next free address in the MMIO hole */
};

int pci_bus_init(struct pci_bus *bus, struct vm *vm);
/** Initialize @d's header (type 0) with the given ids; no BAR yet. */
void pci_dev_init(struct pci_dev *d, uint16_t vendor, uint16_t device,
		  uint32_t class_rev, uint16_t sub_vendor, uint16_t sub_id);
/** Give @d a BAR0 of @size bytes (power of 2, >= 4 KiB) and plug it into the
 *  next free slot; assigns the BAR and enables memory decoding.  -ENOSPC
 *  when the bus or the MMIO hole is full. */
int pci_plug(struct pci_bus *bus, struct pci_dev *d, uint32_t size);
/** Append a capability (@len bytes, starting with its id; the next pointer
 *  at byte 1 is filled in).  Returns its config offset, or 0 when full. */
unsigned pci_add_cap(struct pci_dev *d, const void *cap, unsigned len);
/** MMIO access from a vCPU: true when a device BAR claimed it. */
bool pci_mmio(struct pci_bus *bus, uint64_t addr, uint8_t *data, unsigned len,
	      bool write);

/* Little-endian config space helpers. */
static inline uint16_t pci_get16(const struct pci_dev *d, unsigned off)
{
	return (uint16_t)(d->cfg[off] | d->cfg[off + 1] << 8);
}

static inline uint32_t pci_get32(const struct pci_dev *d, unsigned off)
{
	return (uint32_t)pci_get16(d, off) | (uint32_t)pci_get16(d, off + 2) << 16;
}

static inline void pci_set16(struct pci_dev *d, unsigned off, uint16_t v)
{
	d->cfg[off] = (uint8_t)v;
	d->cfg[off + 1] = (uint8_t)(v >> 8);
}

static inline void pci_set32(struct pci_dev *d, unsigned off, uint32_t v)
{
	pci_set16(d, off, (uint16_t)v);
	pci_set16(d, off + 2, (uint16_t)(v >> 16));
}

#endif /* HVCORE_PCI_H */
