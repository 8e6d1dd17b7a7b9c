/* virtio_pci.c -- the virtio PCI transport (modern, virtio 1.x): vendor
 * capabilities, device status, feature negotiation, queue setup.
 *
 * All four structures the guest uses (common, notify, ISR, device config)
 * are located through the capability list; BAR addresses are read from
 * config space (and sized), never assumed. */
#include "virtio.h"

#define PCI_CAP_VENDOR 0x09

static uint32_t c_rd32(struct vdev *d, uint32_t off) { return mmio_read32(d->common + off); }
static uint16_t c_rd16(struct vdev *d, uint32_t off) { return mmio_read16(d->common + off); }
static void c_wr32(struct vdev *d, uint32_t off, uint32_t v) { mmio_write32(d->common + off, v); }
static void c_wr16(struct vdev *d, uint32_t off, uint16_t v) { mmio_write16(d->common + off, v); }

/* A 64-bit common-config field as two 32-bit writes, low half first. */
static void c_wr64(struct vdev *d, uint32_t off, uint64_t v)
{
	c_wr32(d, off, (uint32_t)v);
	c_wr32(d, off + 4, v >> 32);
}

uint8_t vdev_status(struct vdev *d)
{
	return mmio_read8(d->common + VC_STATUS);
}

static void set_status(struct vdev *d, uint8_t s)
{
	mmio_write8(d->common + VC_STATUS, s);
}

/* Records one virtio capability: the MMIO address of its structure. */
static int take_cap(struct vdev *d, struct pci_addr a, uint8_t cap, char *err, size_t errlen)
{
	uint8_t type = pci_read8(a, cap + 3), bar = pci_read8(a, cap + 4);
	uint32_t off = pci_read32(a, cap + 8), len = pci_read32(a, cap + 12);
	uint64_t addr;

	if (type < VIRTIO_PCI_CAP_COMMON || type > VIRTIO_PCI_CAP_DEVICE)
		return 0;	/* PCI_CFG and newer types: not used */
	if (bar > 5 || d->bar[bar].io || !d->bar[bar].size || !d->bar[bar].addr) {
		gsnprintf(err, errlen, "capability type %u in BAR%u, which is not an assigned memory BAR",
			  type, bar);
		return -1;
	}
	if ((uint64_t)off + len > d->bar[bar].size) {
		gsnprintf(err, errlen, "capability type %u [%#x, +%#x) beyond BAR%u (size %#lx)",
			  type, off, len, bar, d->bar[bar].size);
		return -1;
	}
	addr = d->bar[bar].addr + off;
	if (type == VIRTIO_PCI_CAP_COMMON && !d->common)
		d->common = addr;
	else if (type == VIRTIO_PCI_CAP_NOTIFY && !d->notify) {
		d->notify = addr;
		d->notify_mult = pci_read32(a, cap + 16);
	} else if (type == VIRTIO_PCI_CAP_ISR && !d->isr)
		d->isr = addr;
	else if (type == VIRTIO_PCI_CAP_DEVICE && !d->devcfg) {
		d->devcfg = addr;
		d->devcfg_len = len;
	}
	return 0;
}

static void read_bars(struct vdev *d, struct pci_addr a)
{
	int n;

	for (n = 0; n < 6; n++) {
		pci_bar(a, n, &d->bar[n]);
		if (d->bar[n].is64) {
			n++;
			d->bar[n] = (struct pci_bar){ 0 };
		}
	}
}

int vdev_probe(struct vdev *d, struct pci_addr a, char *err, size_t errlen)
{
	uint8_t cap;
	int n, guard;

	*d = (struct vdev){ .pci = a };
	pci_write16(a, PCI_COMMAND, pci_read16(a, PCI_COMMAND) | PCI_CMD_MEM | PCI_CMD_MASTER);
	read_bars(d, a);
	for (n = 0; n < 6; n++) {
		if (d->bar[n].size && !d->bar[n].io &&
		    map_identity(d->bar[n].addr, d->bar[n].size)) {
			gsnprintf(err, errlen, "cannot map BAR%d at %#lx", n, d->bar[n].addr);
			return -1;
		}
	}
	if (!(pci_read16(a, PCI_STATUS) & PCI_STATUS_CAPS)) {
		gsnprintf(err, errlen, "no capability list (status bit 4 clear)");
		return -1;
	}
	cap = pci_read8(a, PCI_CAPS) & 0xfc;
	for (guard = 0; cap && guard < 48; guard++) {
		if (pci_read8(a, cap) == PCI_CAP_VENDOR && take_cap(d, a, cap, err, errlen))
			return -1;
		cap = pci_read8(a, cap + 1) & 0xfc;
	}
	if (!d->common || !d->notify || !d->isr || !d->devcfg) {
		gsnprintf(err, errlen, "missing virtio capabilities:%s%s%s%s", d->common ? "" : " common",
			  d->notify ? "" : " notify", d->isr ? "" : " isr", d->devcfg ? "" : " device");
		return -1;
	}
	return 0;
}

int vdev_reset(struct vdev *d)
{
	uint64_t t0 = now_us();

	set_status(d, 0);
	while (vdev_status(d) != 0) {
		if (now_us() - t0 > 2000000)
			return -1;
		cpu_relax();
	}
	return 0;
}

int vdev_start(struct vdev *d, uint64_t want, char *err, size_t errlen)
{
	if (vdev_reset(d)) {
		gsnprintf(err, errlen, "device status did not read 0 after reset");
		return -1;
	}
	set_status(d, VS_ACKNOWLEDGE);
	set_status(d, VS_ACKNOWLEDGE | VS_DRIVER);
	c_wr32(d, VC_DFSELECT, 0);
	d->features = c_rd32(d, VC_DF);
	c_wr32(d, VC_DFSELECT, 1);
	d->features |= (uint64_t)c_rd32(d, VC_DF) << 32;
	if (!(d->features >> VIRTIO_F_VERSION_1 & 1)) {
		gsnprintf(err, errlen, "VERSION_1 not offered (features %#lx)", d->features);
		set_status(d, VS_FAILED);
		return -1;
	}
	d->negotiated = d->features & (want | 1ull << VIRTIO_F_VERSION_1);
	c_wr32(d, VC_GFSELECT, 0);
	c_wr32(d, VC_GF, (uint32_t)d->negotiated);
	c_wr32(d, VC_GFSELECT, 1);
	c_wr32(d, VC_GF, d->negotiated >> 32);
	set_status(d, VS_ACKNOWLEDGE | VS_DRIVER | VS_FEATURES_OK);
	if (!(vdev_status(d) & VS_FEATURES_OK)) {
		gsnprintf(err, errlen, "device refused features %#lx", d->negotiated);
		set_status(d, VS_FAILED);
		return -1;
	}
	d->num_queues = c_rd16(d, VC_NUMQ);
	c_wr16(d, VC_MSIX, VIRTIO_NO_VECTOR);
	return 0;
}

int vdev_setup_queue(struct vdev *d, uint16_t qi, struct virtq *q, void *mem, char *err, size_t errlen)
{
	uint16_t size, noff;

	if (qi >= d->num_queues) {
		gsnprintf(err, errlen, "queue %u: the device has %u queues", qi, d->num_queues);
		return -1;
	}
	c_wr16(d, VC_Q_SELECT, qi);
	size = c_rd16(d, VC_Q_SIZE);
	if (!size || (size & (size - 1))) {
		gsnprintf(err, errlen, "queue %u: size %u is not a power of two", qi, size);
		return -1;
	}
	size = MIN(size, VQ_MAX);
	noff = c_rd16(d, VC_Q_NOFF);
	virtq_init(q, qi, size, mem, d->notify + (uint64_t)noff * d->notify_mult);
	c_wr16(d, VC_Q_SIZE, size);
	c_wr16(d, VC_Q_MSIX, VIRTIO_NO_VECTOR);
	c_wr64(d, VC_Q_DESC, (uint64_t)(uintptr_t)q->desc);
	c_wr64(d, VC_Q_AVAIL, (uint64_t)(uintptr_t)q->avail);
	c_wr64(d, VC_Q_USED, (uint64_t)(uintptr_t)q->used);
	c_wr16(d, VC_Q_ENABLE, 1);
	return 0;
}

void vdev_driver_ok(struct vdev *d)
{
	set_status(d, VS_ACKNOWLEDGE | VS_DRIVER | VS_FEATURES_OK | VS_DRIVER_OK);
}

/* Device config reads.  A 64-bit field is read as two halves, again if
 * config_generation changed in between (4.1.4.3.1). */
uint8_t vdev_cfg8(struct vdev *d, uint32_t off)
{
	return mmio_read8(d->devcfg + off);
}

uint16_t vdev_cfg16(struct vdev *d, uint32_t off)
{
	return mmio_read16(d->devcfg + off);
}

uint32_t vdev_cfg32(struct vdev *d, uint32_t off)
{
	return mmio_read32(d->devcfg + off);
}

uint64_t vdev_cfg64(struct vdev *d, uint32_t off)
{
	uint8_t gen;
	uint64_t v;

	do {
		gen = mmio_read8(d->common + VC_CFGGEN);
		v = mmio_read32(d->devcfg + off) | (uint64_t)mmio_read32(d->devcfg + off + 4) << 32;
	} while (gen != mmio_read8(d->common + VC_CFGGEN));
	return v;
}
