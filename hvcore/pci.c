/*
 * pci.c -- configuration mechanism #1 and BAR0 decoding (see pci.h).
 *
 * 0xcf8 (32-bit): bit 31 enable, bits 23-16 bus, 15-11 device, 10-8
 * function, 7-2 register.  0xcfc-0xcff: the data, any width at any byte
 * offset that stays inside the dword.  A byte write to 0xcf9 is the PC
 * reset control register (bit 2 set: reset).  Absent functions read all
 * ones.
 */
#include <errno.h>
#include <string.h>

#include "mptable.h"
#include "pci.h"
#include "util.h"

#define CFG_COMMAND   0x04
#define CFG_STATUS    0x06
#define CFG_BAR0      0x10
#define CFG_CAP_PTR   0x34
#define CFG_INT_LINE  0x3c
#define CMD_MEMORY    0x2
#define STATUS_CAPS   0x10

void pci_dev_init(struct pci_dev *d, uint16_t vendor, uint16_t device,
		  uint32_t class_rev, uint16_t sub_vendor, uint16_t sub_id)
{
	memset(d, 0, sizeof(*d));
	pci_set16(d, 0x00, vendor);
	pci_set16(d, 0x02, device);
	pci_set32(d, 0x08, class_rev);		/* class << 8 | revision */
	pci_set16(d, 0x2c, sub_vendor);
	pci_set16(d, 0x2e, sub_id);
	pci_set16(d, CFG_COMMAND, 0);
	d->wmask[CFG_COMMAND] = 0x07;		/* I/O, memory, bus master */
	d->wmask[CFG_COMMAND + 1] = 0x04;	/* INTx disable */
	d->wmask[CFG_INT_LINE] = 0xff;
	d->next_cap = 0x40;
}

unsigned pci_add_cap(struct pci_dev *d, const void *cap, unsigned len)
{
	unsigned at = d->next_cap;

	if (len < 2 || at + len > PCI_CFG_SIZE)
		return 0;
	memcpy(&d->cfg[at], cap, len);
	d->cfg[at + 1] = 0;
	if (d->last_cap_next)
		*d->last_cap_next = (uint8_t)at;
	else
		d->cfg[CFG_CAP_PTR] = (uint8_t)at;
	d->last_cap_next = &d->cfg[at + 1];
	d->cfg[CFG_STATUS] |= STATUS_CAPS;
	d->next_cap = (uint8_t)((at + len + 3) & ~3u);
	return at;
}

/* Where BAR0 should decode now, 0 when it should not. */
static uint64_t bar_target(const struct pci_dev *d)
{
	uint32_t bar = pci_get32(d, CFG_BAR0) & ~0xfu;

	if (!d->bar_size || !(d->cfg[CFG_COMMAND] & CMD_MEMORY))
		return 0;
	if (bar == 0 || bar == (uint32_t)~(d->bar_size - 1))
		return 0;			/* unassigned, or being sized */
	return bar;
}

static void update_bar(struct pci_dev *d)
{
	uint64_t old = d->bar_base, now = bar_target(d);

	if (old == now)
		return;
	d->bar_base = now;
	if (d->ops && d->ops->bar_moved)
		d->ops->bar_moved(d, old, now);
}

int pci_plug(struct pci_bus *bus, struct pci_dev *d, uint32_t size)
{
	unsigned slot;

	for (slot = 1; slot < PCI_MAX_SLOTS && bus->dev[slot]; slot++)
		;
	if (slot == PCI_MAX_SLOTS)
		return hv_fail(-ENOSPC, "PCI bus full (%d slots)", PCI_MAX_SLOTS - 1);
	bus->next_bar = (bus->next_bar + size - 1) & ~(uint64_t)(size - 1);
	if (bus->next_bar + size > VM_PCI_MMIO_END)
		return hv_fail(-ENOSPC, "PCI MMIO hole full");
	d->slot = slot;
	d->bar_size = size;
	pci_set32(d, CFG_BAR0, (uint32_t)bus->next_bar);	/* 32-bit memory BAR */
	for (unsigned i = 0; i < 4; i++)
		d->wmask[CFG_BAR0 + i] = (uint8_t)(~(size - 1) >> (8 * i));
	d->wmask[CFG_BAR0] &= 0xf0;
	d->cfg[CFG_INT_LINE] = (uint8_t)MPTABLE_PCI_PIN(slot);
	d->cfg[0x3d] = 1;				/* INTA */
	d->cfg[CFG_COMMAND] |= CMD_MEMORY;
	bus->next_bar += size;
	bus->dev[slot] = d;
	update_bar(d);
	return 0;
}


static struct pci_dev *addressed(struct pci_bus *bus, unsigned *reg)
{
	uint32_t a = bus->cf8;
	unsigned dev = (a >> 11) & 0x1f;

	*reg = a & 0xfc;
	if (!(a & 0x80000000u) || ((a >> 16) & 0xff) || ((a >> 8) & 7))
		return NULL;			/* disabled, other bus, function > 0 */
	return dev == 0 ? &bus->host : bus->dev[dev];
}

static void cfg_write(struct pci_dev *d, unsigned off, const uint8_t *data, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		d->cfg[off + i] = (uint8_t)((d->cfg[off + i] & ~d->wmask[off + i]) |
					    (data[i] & d->wmask[off + i]));
	if (off < CFG_BAR0 + 4 && off + len > CFG_COMMAND)
		update_bar(d);
	if (d->ops && d->ops->cfg_written)
		d->ops->cfg_written(d, off, len);
}

static void cfg_data(struct pci_bus *bus, unsigned byte, uint8_t *data, unsigned len,
		     bool write)
{
	unsigned reg;
	struct pci_dev *d = addressed(bus, &reg);

	if (byte + len > 4)
		len = 4 - byte;
	if (!d) {
		if (!write)
			memset(data, 0xff, len);
		return;
	}
	if (write)
		cfg_write(d, reg + byte, data, len);
	else
		memcpy(data, &d->cfg[reg + byte], len);
}

static void conf1_io(void *opaque, uint64_t off, uint8_t *data, unsigned len,
		     bool write)
{
	struct pci_bus *bus = opaque;

	pthread_mutex_lock(&bus->lock);
	if (off == 0 && len == 4) {
		if (write)
			memcpy(&bus->cf8, data, 4);
		else
			memcpy(data, &bus->cf8, 4);
	} else if (off == 1 && len == 1) {		/* 0xcf9: reset control */
		if (write && (data[0] & 4))
			vm_exit(bus->vm, 0, NULL);
		else if (!write)
			data[0] = 0;
	} else if (off >= 4) {
		cfg_data(bus, (unsigned)off - 4, data, len, write);
	} else if (!write) {
		memset(data, 0xff, len);
	}
	pthread_mutex_unlock(&bus->lock);
}

bool pci_mmio(struct pci_bus *bus, uint64_t addr, uint8_t *data, unsigned len,
	      bool write)
{
	bool hit = false;

	if (!bus || addr < VM_PCI_MMIO_BASE || addr >= VM_PCI_MMIO_END)
		return false;
	pthread_mutex_lock(&bus->lock);
	for (unsigned s = 1; s < PCI_MAX_SLOTS; s++) {
		struct pci_dev *d = bus->dev[s];

		if (d && d->bar_base && addr >= d->bar_base &&
		    addr - d->bar_base < d->bar_size) {
			if (d->ops && d->ops->bar_access)
				d->ops->bar_access(d, addr - d->bar_base, data, len, write);
			hit = true;
			break;
		}
	}
	pthread_mutex_unlock(&bus->lock);
	return hit;
}

/* 00:00.0: a host bridge (Red Hat's QEMU PCIe host bridge id), so that
 * Linux's conf1 sanity check finds one. */
int pci_bus_init(struct pci_bus *bus, struct vm *vm)
{
	int rc;

	memset(bus, 0, sizeof(*bus));
	bus->vm = vm;
	bus->next_bar = VM_PCI_MMIO_BASE;
	pthread_mutex_init(&bus->lock, NULL);
	pci_dev_init(&bus->host, 0x1b36, 0x0008, 0x06000000, 0x1af4, 0x1100);
	rc = iobus_add(&vm->pio, 0xcf8, 8, conf1_io, bus);
	if (rc < 0)
		return hv_fail(rc, "PCI: cannot register ports 0xcf8-0xcff");
	vm->pci = bus;
	return 0;
}
