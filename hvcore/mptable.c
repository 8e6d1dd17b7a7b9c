/*
 * mptable.c -- see mptable.h.  Entry layouts (bytes, little-endian):
 *
 *   floating pointer (16): "_MP_", le32 table, u8 length (1 = 16 bytes),
 *       u8 spec (4), u8 checksum, u8 features[5] (0: a table follows)
 *   table header (44): "PCMP", le16 length, u8 spec, u8 checksum,
 *       char oem[8], char product[12], le32 oem_table, le16 oem_size,
 *       le16 entry_count, le32 lapic_addr, le16 ext_len, u8 ext_sum, u8 0
 *   processor (20): 0, apic id, apic version, flags (1 enabled, 2 BSP),
 *       le32 signature, le32 features, 8 reserved
 *   bus (8): 1, bus id, char type[6]
 *   IOAPIC (8): 2, id, version, flags (1 usable), le32 address
 *   interrupt source (8): 3 (I/O) or 4 (local), type (0 INT, 1 NMI,
 *       3 ExtINT), le16 flags (polarity bits 0-1, trigger bits 2-3),
 *       source bus, source irq (PCI: slot << 2 | pin), dest apic, dest pin
 * Both checksums make their bytes sum to 0.
 */
#include <errno.h>
#include <string.h>

#include "boot.h"
#include "mptable.h"

#define APIC_VERSION 0x14
/* Linux matches an MP bus id against the PCI bus number: PCI bus 0 must be
 * MP bus 0 (as SeaBIOS and kvmtool do); ISA comes after. */
#define BUS_PCI 0
#define BUS_ISA 1
#define IRQ_INT    0
#define IRQ_NMI    1
#define IRQ_EXTINT 3	/* the PIC reaches the CPUs through LINT0, not the IOAPIC */
#define IRQFLAG_PCI 0x0d	/* active high, level (what KVM_IRQ_LINE drives) */
#define MPTABLE_MAX (BOOT_MPTABLE_END - BOOT_MPTABLE)	/* 1 KiB */

struct mpw {
	uint8_t *base, *p;
	unsigned entries;
};

static void put8(struct mpw *w, uint8_t v) { *w->p++ = v; }
static void put16(struct mpw *w, uint16_t v) { put8(w, (uint8_t)v); put8(w, (uint8_t)(v >> 8)); }
static void put32(struct mpw *w, uint32_t v) { put16(w, (uint16_t)v); put16(w, (uint16_t)(v >> 16)); }
static void putstr(struct mpw *w, const char *s, unsigned n)
{
	memcpy(w->p, s, n);
	w->p += n;
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;

	while (n--)
		sum = (uint8_t)(sum + *p++);
	return (uint8_t)-sum;
}

static void intsrc(struct mpw *w, uint8_t kind, uint8_t type, uint16_t flags,
		   uint8_t bus, uint8_t irq, uint8_t apic, uint8_t pin)
{
	put8(w, kind);
	put8(w, type);
	put16(w, flags);
	put8(w, bus);
	put8(w, irq);
	put8(w, apic);
	put8(w, pin);
	w->entries++;
}

static void put_entries(struct mpw *w, unsigned ncpus, unsigned pci_slots)
{
	uint8_t ioapic = (uint8_t)ncpus;

	for (unsigned i = 0; i < ncpus; i++) {
		put8(w, 0);
		put8(w, (uint8_t)i);
		put8(w, APIC_VERSION);
		put8(w, (uint8_t)(1 | (i == 0 ? 2 : 0)));
		put32(w, 0x600);		/* family 6 */
		put32(w, 0x201);		/* APIC, FPU */
		put32(w, 0);
		put32(w, 0);
		w->entries++;
	}
	put8(w, 1); put8(w, BUS_PCI); putstr(w, "PCI   ", 6); w->entries++;
	put8(w, 1); put8(w, BUS_ISA); putstr(w, "ISA   ", 6); w->entries++;
	put8(w, 2); put8(w, ioapic); put8(w, APIC_VERSION); put8(w, 1);
	put32(w, (uint32_t)VM_IOAPIC_ADDR);
	w->entries++;
	for (uint8_t irq = 0; irq < 16; irq++)
		if (irq != 2)
			intsrc(w, 3, IRQ_INT, 0, BUS_ISA, irq, ioapic, irq);
	for (unsigned s = 1; s <= pci_slots; s++)
		intsrc(w, 3, IRQ_INT, IRQFLAG_PCI, BUS_PCI, (uint8_t)(s << 2), ioapic,
		       (uint8_t)MPTABLE_PCI_PIN(s));
	intsrc(w, 4, IRQ_EXTINT, 0, BUS_ISA, 0, 0xff, 0);
	intsrc(w, 4, IRQ_NMI, 0, BUS_ISA, 0, 0xff, 1);
}

int mptable_write(struct vm *vm, unsigned pci_slots)
{
	uint8_t *base = vm->mem.host + BOOT_MPTABLE;
	struct mpw w = { base, base, 0 };
	uint8_t *table = base + 16;
	uint16_t len;

	if (16 + 44 + 20ULL * vm->ncpus + 8 * (20 + pci_slots) > MPTABLE_MAX)
		return -E2BIG;
	memset(base, 0, MPTABLE_MAX);
	putstr(&w, "_MP_", 4);
	put32(&w, (uint32_t)(BOOT_MPTABLE + 16));
	put8(&w, 1);
	put8(&w, 4);
	w.p = table + 44;			/* header filled in last */
	put_entries(&w, vm->ncpus, pci_slots);
	len = (uint16_t)(w.p - table);
	w.p = table;
	putstr(&w, "PCMP", 4);
	put16(&w, len);
	put8(&w, 4);
	put8(&w, 0);				/* checksum, below */
	putstr(&w, "HVCORE  ", 8);
	putstr(&w, "VHDKIT      ", 12);
	put32(&w, 0);
	put16(&w, 0);
	put16(&w, (uint16_t)w.entries);
	put32(&w, (uint32_t)VM_LAPIC_ADDR);
	table[7] = checksum(table, len);
	base[10] = checksum(base, 16);
	return 0;
}
