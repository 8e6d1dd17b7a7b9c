/* pci.c -- PCI configuration space through mechanism #1 and a bus 0 scan.
 * Config accesses are rare (setup only), so they go through plain port I/O
 * at CPL3 like the serial port. */
#include "pci.h"

#define CONF_ADDR 0xcf8
#define CONF_DATA 0xcfc

static void select_reg(struct pci_addr a, uint8_t off)
{
	outl(CONF_ADDR, 0x80000000u | (uint32_t)a.bus << 16 | (uint32_t)a.dev << 11 |
			(uint32_t)a.fn << 8 | (off & 0xfc));
}

uint32_t pci_read32(struct pci_addr a, uint8_t off)
{
	select_reg(a, off);
	return inl(CONF_DATA);
}

/* 16- and 8-bit accesses go to 0xcfc + (off & 3), as the contract allows. */
uint16_t pci_read16(struct pci_addr a, uint8_t off)
{
	select_reg(a, off);
	return inw(CONF_DATA + (off & 2));
}

uint8_t pci_read8(struct pci_addr a, uint8_t off)
{
	select_reg(a, off);
	return inb(CONF_DATA + (off & 3));
}

void pci_write32(struct pci_addr a, uint8_t off, uint32_t v)
{
	select_reg(a, off);
	outl(CONF_DATA, v);
}

void pci_write16(struct pci_addr a, uint8_t off, uint16_t v)
{
	select_reg(a, off);
	outw(CONF_DATA + (off & 2), v);
}

void pci_bar(struct pci_addr a, int n, struct pci_bar *bar)
{
	uint8_t off = PCI_BAR0 + 4 * n;
	uint16_t cmd = pci_read16(a, PCI_COMMAND);
	uint32_t lo = pci_read32(a, off), hi = 0, mlo, mhi = 0xffffffff;
	uint64_t mask;

	*bar = (struct pci_bar){ .io = lo & 1, .is64 = !(lo & 1) && ((lo >> 1) & 3) == 2 };
	pci_write16(a, PCI_COMMAND, cmd & ~(PCI_CMD_MEM | 1));
	pci_write32(a, off, 0xffffffff);
	mlo = pci_read32(a, off);
	pci_write32(a, off, lo);
	if (bar->is64 && n < 5) {
		hi = pci_read32(a, off + 4);
		pci_write32(a, off + 4, 0xffffffff);
		mhi = pci_read32(a, off + 4);
		pci_write32(a, off + 4, hi);
	}
	pci_write16(a, PCI_COMMAND, cmd);
	if (bar->io) {
		bar->addr = lo & ~3u;
		mask = 0xffff0000u | (mlo & ~3u);
		bar->size = mlo ? (uint32_t)~mask + 1 : 0;
		return;
	}
	bar->addr = (uint64_t)hi << 32 | (lo & ~0xfu);
	mask = (uint64_t)mhi << 32 | (mlo & ~0xfu);
	bar->size = (mlo & ~0xfu) ? ~mask + 1 : 0;
}

int pci_scan(void (*fn)(struct pci_addr, uint32_t id, void *), void *arg)
{
	struct pci_addr a = { 0, 0, 0 };
	int found = 0, nfn;

	for (a.dev = 0; a.dev < 32; a.dev++) {
		a.fn = 0;
		if (pci_read16(a, PCI_VENDOR) == 0xffff)
			continue;
		nfn = (pci_read8(a, PCI_HEADER) & 0x80) ? 8 : 1;
		for (a.fn = 0; a.fn < nfn; a.fn++) {
			uint32_t id = pci_read32(a, PCI_VENDOR);

			if ((id & 0xffff) != 0xffff) {
				fn(a, id, arg);
				found++;
			}
		}
	}
	return found;
}
