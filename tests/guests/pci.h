/* pci.h -- PCI configuration mechanism #1 (ports 0xcf8/0xcfc), bus 0. */
#ifndef GUEST_PCI_H
#define GUEST_PCI_H
#include "guest.h"

#define PCI_VENDOR	0x00
#define PCI_DEVICE	0x02
#define PCI_COMMAND	0x04
#define PCI_STATUS	0x06
#define PCI_REVISION	0x08
#define PCI_CLASS	0x09	/* 3 bytes: prog-if, subclass, class */
#define PCI_HEADER	0x0e
#define PCI_BAR0	0x10
#define PCI_SUBVENDOR	0x2c
#define PCI_SUBSYSTEM	0x2e
#define PCI_CAPS	0x34

#define PCI_CMD_MEM	0x0002
#define PCI_CMD_MASTER	0x0004
#define PCI_STATUS_CAPS	0x0010

struct pci_addr {
	uint8_t bus, dev, fn;
};

uint32_t pci_read32(struct pci_addr a, uint8_t off);
uint16_t pci_read16(struct pci_addr a, uint8_t off);
uint8_t pci_read8(struct pci_addr a, uint8_t off);
void pci_write32(struct pci_addr a, uint8_t off, uint32_t v);
void pci_write16(struct pci_addr a, uint8_t off, uint16_t v);

struct pci_bar {
	uint64_t addr, size;	/* size 0: not implemented */
	bool is64, io;
};
/* Reads BAR n (both halves of a 64-bit BAR) and sizes it the standard way:
 * decoding off, all ones written, the mask read back, the value restored. */
void pci_bar(struct pci_addr a, int n, struct pci_bar *bar);

/* Calls fn for every function present on bus 0 (id: device << 16 | vendor),
 * in device/function order; returns how many. */
int pci_scan(void (*fn)(struct pci_addr, uint32_t id, void *), void *arg);

#endif
