/*
 * virtio_pci.c -- the modern virtio PCI transport (see virtio_pci.h).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "mptable.h"
#include "util.h"
#include "virtio_pci.h"

#define MSIX_CTRL_MASKED   1u
#define MSIX_CAP_ID        0x11
#define MSIX_ENABLE        0x8000
#define MSIX_FUNC_MASK     0x4000
#define PCI_VENDOR_REDHAT  0x1af4

static inline bool load_bool(const bool *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void store_bool(bool *p, bool v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

static unsigned msi_route_of(const struct vpci_dev *d, unsigned vec)
{
	return d->index * VPCI_MSIX_VECTORS + vec;
}

bool vpci_has_feature(const struct vpci_dev *d, unsigned bit)
{
	return (d->driver_features >> bit) & 1;
}

/* ---- interrupts ---- */

static bool vector_masked(const struct vpci_dev *d, unsigned vec)
{
	return load_bool(&d->msix_func_masked) ||
	       (__atomic_load_n(&d->msix[vec].ctrl, __ATOMIC_ACQUIRE) & MSIX_CTRL_MASKED);
}

/* Fire @vec if its pending bit was set (exactly one of the racing parties
 * sees the bit and fires). */
static void fire_if_pending(struct vpci_dev *d, unsigned vec)
{
	uint32_t bit = 1u << vec;

	if (__atomic_fetch_and(&d->pba, ~bit, __ATOMIC_ACQ_REL) & bit)
		hv_eventfd_signal(d->irqfd[vec]);
}

static void raise_vector(struct vpci_dev *d, uint16_t vec)
{
	if (vec >= VPCI_MSIX_VECTORS)
		return;			/* VPCI_NO_VECTOR: the driver wants none */
	if (!vector_masked(d, vec)) {
		hv_eventfd_signal(d->irqfd[vec]);
		return;
	}
	__atomic_fetch_or(&d->pba, 1u << vec, __ATOMIC_ACQ_REL);
	if (!vector_masked(d, vec))	/* unmasked meanwhile: maybe ours to fire */
		fire_if_pending(d, vec);
}

static void raise_intx(struct vpci_dev *d, uint8_t isr_bit)
{
	__atomic_fetch_or(&d->isr, isr_bit, __ATOMIC_ACQ_REL);
	vm_intx_set(d->vm, MPTABLE_PCI_PIN(d->pci.slot), d->index, true);
}

void vpci_queue_interrupt(struct vpci_dev *d, unsigned qi)
{
	if (load_bool(&d->msix_enabled))
		raise_vector(d, __atomic_load_n(&d->q[qi].msix_vector, __ATOMIC_ACQUIRE));
	else
		raise_intx(d, 1);
}

static void config_interrupt(struct vpci_dev *d)
{
	if (load_bool(&d->msix_enabled))
		raise_vector(d, __atomic_load_n(&d->config_vector, __ATOMIC_ACQUIRE));
	else
		raise_intx(d, 2);
}

void vpci_needs_reset(struct vpci_dev *d)
{
	uint8_t st = __atomic_load_n(&d->status, __ATOMIC_ACQUIRE);

	if (!(st & VIRTIO_CONFIG_S_DRIVER_OK) || (st & VIRTIO_CONFIG_S_NEEDS_RESET))
		return;
	__atomic_fetch_or(&d->status, VIRTIO_CONFIG_S_NEEDS_RESET, __ATOMIC_ACQ_REL);
	config_interrupt(d);
}

/* ---- queues and status ---- */

static void queue_reset(struct vpci_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->active = false;
	q->gen++;
	while (q->inflight)
		pthread_cond_wait(&q->idle, &q->lock);
	q->size = VIRTQ_MAX_SIZE;
	__atomic_store_n(&q->msix_vector, VPCI_NO_VECTOR, __ATOMIC_RELEASE);
	q->enabled = 0;
	q->desc = q->driver = q->device = 0;
	pthread_mutex_unlock(&q->lock);
}

static void device_reset(struct vpci_dev *d)
{
	for (unsigned i = 0; i < d->nqueues; i++)
		queue_reset(&d->q[i]);
	d->driver_features = 0;
	d->dfselect = d->gfselect = 0;
	d->queue_select = 0;
	__atomic_store_n(&d->config_vector, VPCI_NO_VECTOR, __ATOMIC_RELEASE);
	__atomic_store_n(&d->isr, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&d->status, 0, __ATOMIC_RELEASE);
	vm_intx_set(d->vm, MPTABLE_PCI_PIN(d->pci.slot), d->index, false);
}

/* DRIVER_OK: bind every enabled queue to its rings and wake its thread. */
static void activate_queues(struct vpci_dev *d)
{
	bool event_idx = vpci_has_feature(d, VIRTIO_RING_F_EVENT_IDX);

	for (unsigned i = 0; i < d->nqueues; i++) {
		struct vpci_queue *q = &d->q[i];
		int rc;

		if (!q->enabled)
			continue;
		pthread_mutex_lock(&q->lock);
		rc = virtq_init(&q->vq, &d->vm->mem, q->size, q->desc, q->driver,
				q->device, event_idx);
		q->active = rc == 0;
		pthread_mutex_unlock(&q->lock);
		if (rc < 0)
			vpci_needs_reset(d);
		else
			hv_eventfd_signal(q->kick_fd);
	}
}

static void write_status(struct vpci_dev *d, uint8_t v)
{
	uint8_t old = d->status;

	if (v == 0) {
		device_reset(d);
		return;
	}
	if ((v & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
		/* refuse a feature set we did not offer, or a legacy driver */
		if ((d->driver_features & ~d->features) ||
		    !vpci_has_feature(d, VIRTIO_F_VERSION_1))
			v &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK;
	}
	v |= old & VIRTIO_CONFIG_S_NEEDS_RESET;
	__atomic_store_n(&d->status, v, __ATOMIC_RELEASE);
	if ((v & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK))
		activate_queues(d);
}

/* ---- common configuration ---- */

static struct vpci_queue *selected(struct vpci_dev *d)
{
	return d->queue_select < d->nqueues ? &d->q[d->queue_select] : NULL;
}

static uint32_t common_read(struct vpci_dev *d, unsigned off)
{
	struct vpci_queue *q = selected(d);

	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT: return d->dfselect;
	case VIRTIO_PCI_COMMON_DF:
		return d->dfselect < 2 ? (uint32_t)(d->features >> (32 * d->dfselect)) : 0;
	case VIRTIO_PCI_COMMON_GFSELECT: return d->gfselect;
	case VIRTIO_PCI_COMMON_GF:
		return d->gfselect < 2 ? (uint32_t)(d->driver_features >> (32 * d->gfselect)) : 0;
	case VIRTIO_PCI_COMMON_MSIX: return d->config_vector;
	case VIRTIO_PCI_COMMON_NUMQ: return d->nqueues;
	case VIRTIO_PCI_COMMON_STATUS: return __atomic_load_n(&d->status, __ATOMIC_ACQUIRE);
	case VIRTIO_PCI_COMMON_CFGGENERATION: return 0;
	case VIRTIO_PCI_COMMON_Q_SELECT: return d->queue_select;
	}
	if (!q)
		return 0;	/* queue_size 0: no such queue */
	switch (off) {
	case VIRTIO_PCI_COMMON_Q_SIZE: return q->size;
	case VIRTIO_PCI_COMMON_Q_MSIX: return q->msix_vector;
	case VIRTIO_PCI_COMMON_Q_ENABLE: return q->enabled;
	case VIRTIO_PCI_COMMON_Q_NOFF: return d->queue_select;
	case VIRTIO_PCI_COMMON_Q_DESCLO: return (uint32_t)q->desc;
	case VIRTIO_PCI_COMMON_Q_DESCHI: return (uint32_t)(q->desc >> 32);
	case VIRTIO_PCI_COMMON_Q_AVAILLO: return (uint32_t)q->driver;
	case VIRTIO_PCI_COMMON_Q_AVAILHI: return (uint32_t)(q->driver >> 32);
	case VIRTIO_PCI_COMMON_Q_USEDLO: return (uint32_t)q->device;
	case VIRTIO_PCI_COMMON_Q_USEDHI: return (uint32_t)(q->device >> 32);
	default: return 0;
	}
}

static void set_lo(uint64_t *r, uint32_t v) { *r = (*r & ~0xffffffffULL) | v; }
static void set_hi(uint64_t *r, uint32_t v) { *r = (*r & 0xffffffffULL) | (uint64_t)v << 32; }

static uint16_t checked_vector(uint32_t v)
{
	return v < VPCI_MSIX_VECTORS ? (uint16_t)v : VPCI_NO_VECTOR;
}

/* Queue registers can change only while the queue is not enabled (and the
 * driver not yet OK): 4.1.4.3.2. */
static void queue_write(struct vpci_dev *d, struct vpci_queue *q, unsigned off, uint32_t v)
{
	bool locked = q->enabled || (d->status & VIRTIO_CONFIG_S_DRIVER_OK);

	switch (off) {
	case VIRTIO_PCI_COMMON_Q_SIZE:
		if (!locked && v && v <= VIRTQ_MAX_SIZE && !(v & (v - 1)))
			q->size = (uint16_t)v;
		break;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		__atomic_store_n(&q->msix_vector, checked_vector(v), __ATOMIC_RELEASE);
		break;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		if (v == 1 && !q->enabled)
			q->enabled = 1;
		break;
	case VIRTIO_PCI_COMMON_Q_DESCLO: if (!locked) set_lo(&q->desc, v); break;
	case VIRTIO_PCI_COMMON_Q_DESCHI: if (!locked) set_hi(&q->desc, v); break;
	case VIRTIO_PCI_COMMON_Q_AVAILLO: if (!locked) set_lo(&q->driver, v); break;
	case VIRTIO_PCI_COMMON_Q_AVAILHI: if (!locked) set_hi(&q->driver, v); break;
	case VIRTIO_PCI_COMMON_Q_USEDLO: if (!locked) set_lo(&q->device, v); break;
	case VIRTIO_PCI_COMMON_Q_USEDHI: if (!locked) set_hi(&q->device, v); break;
	}
}

static void common_write(struct vpci_dev *d, unsigned off, uint32_t v)
{
	struct vpci_queue *q = selected(d);

	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT: d->dfselect = v; return;
	case VIRTIO_PCI_COMMON_GFSELECT: d->gfselect = v; return;
	case VIRTIO_PCI_COMMON_GF:
		if (d->gfselect < 2 && !(d->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
			if (d->gfselect)
				set_hi(&d->driver_features, v);
			else
				set_lo(&d->driver_features, v);
		}
		return;
	case VIRTIO_PCI_COMMON_MSIX:
		__atomic_store_n(&d->config_vector, checked_vector(v), __ATOMIC_RELEASE);
		return;
	case VIRTIO_PCI_COMMON_STATUS: write_status(d, (uint8_t)v); return;
	case VIRTIO_PCI_COMMON_Q_SELECT: d->queue_select = (uint16_t)v; return;
	}
	if (q)
		queue_write(d, q, off, v);
}

/* Field accesses at their natural width; 64-bit fields as two dwords. */
static void common_access(struct vpci_dev *d, unsigned off, uint8_t *data,
			  unsigned len, bool write)
{
	uint32_t v = 0;

	if (write) {
		memcpy(&v, data, len <= 4 ? len : 4);
		common_write(d, off, v);
	} else {
		v = common_read(d, off);
		memset(data, 0, len);
		memcpy(data, &v, len <= 4 ? len : 4);
	}
}

/* ---- MSI-X table ---- */

static void msix_route_update(struct vpci_dev *d, unsigned vec)
{
	struct vpci_msix_entry *e = &d->msix[vec];
	uint64_t addr = (uint64_t)e->addr_hi << 32 | e->addr_lo;

	pthread_mutex_lock(&d->vm->irq_lock);
	vm_msi_route(d->vm, msi_route_of(d, vec), addr, e->data, addr != 0);
	pthread_mutex_unlock(&d->vm->irq_lock);
}

static void msix_access(struct vpci_dev *d, unsigned off, uint8_t *data, unsigned len,
			bool write)
{
	unsigned vec = off / 16, field = (off % 16) / 4;
	uint32_t *f, v = 0;

	if (vec >= VPCI_MSIX_VECTORS || (off & 3) || len != 4) {
		if (!write)
			memset(data, 0, len);
		return;
	}
	f = &d->msix[vec].addr_lo + field;
	if (!write) {
		v = __atomic_load_n(f, __ATOMIC_ACQUIRE);
		memcpy(data, &v, 4);
		return;
	}
	memcpy(&v, data, 4);
	if (field == 3) {
		__atomic_store_n(f, v & MSIX_CTRL_MASKED, __ATOMIC_RELEASE);
		if (!vector_masked(d, vec))
			fire_if_pending(d, vec);
		return;
	}
	*f = v;
	msix_route_update(d, vec);
}

static void pba_read(struct vpci_dev *d, unsigned off, uint8_t *data, unsigned len)
{
	uint64_t v = off == 0 ? __atomic_load_n(&d->pba, __ATOMIC_ACQUIRE) : 0;

	memset(data, 0, len);
	memcpy(data, &v, len <= 8 ? len : 8);
}

/* The driver changed the MSI-X message control. */
static void msix_control(struct vpci_dev *d)
{
	uint16_t ctl = pci_get16(&d->pci, d->msix_cap + 2);
	bool enabled = ctl & MSIX_ENABLE;

	store_bool(&d->msix_func_masked, ctl & MSIX_FUNC_MASK);
	store_bool(&d->msix_enabled, enabled);
	if (enabled)
		vm_intx_set(d->vm, MPTABLE_PCI_PIN(d->pci.slot), d->index, false);
	for (unsigned v = 0; v < VPCI_MSIX_VECTORS; v++)
		if (!vector_masked(d, v))
			fire_if_pending(d, v);
}

/* ---- BAR0 ---- */

static void notify_write(struct vpci_dev *d, unsigned off)
{
	unsigned qi = off / VPCI_NOTIFY_MULT;

	if (qi < d->nqueues)
		hv_eventfd_signal(d->q[qi].kick_fd);
}

static void isr_read(struct vpci_dev *d, uint8_t *data, unsigned len)
{
	memset(data, 0, len);
	data[0] = __atomic_exchange_n(&d->isr, 0, __ATOMIC_ACQ_REL);
	vm_intx_set(d->vm, MPTABLE_PCI_PIN(d->pci.slot), d->index, false);
}

static void bar_access(struct pci_dev *p, uint64_t off, uint8_t *data, unsigned len,
		       bool write)
{
	struct vpci_dev *d = (struct vpci_dev *)p;

	if (off < VPCI_ISR_OFF) {
		if (off + len <= 0x40)
			common_access(d, (unsigned)off, data, len, write);
		else if (!write)
			memset(data, 0, len);
	} else if (off < VPCI_DEVICE_OFF) {
		if (!write && off == VPCI_ISR_OFF)
			isr_read(d, data, len);
		else if (!write)
			memset(data, 0, len);
	} else if (off < VPCI_NOTIFY_OFF) {
		unsigned co = (unsigned)(off - VPCI_DEVICE_OFF);

		if (!write && co + len <= d->config_size)
			d->ops->config_read(d, co, data, len);
		else if (!write)
			memset(data, 0, len);
	} else if (off < VPCI_MSIX_TABLE) {
		if (write)
			notify_write(d, (unsigned)(off - VPCI_NOTIFY_OFF));
		else
			memset(data, 0, len);
	} else if (off < VPCI_MSIX_PBA) {
		msix_access(d, (unsigned)(off - VPCI_MSIX_TABLE), data, len, write);
	} else if (!write) {
		pba_read(d, (unsigned)(off - VPCI_MSIX_PBA), data, len);
	}
}

static void bar_moved(struct pci_dev *p, uint64_t old, uint64_t base)
{
	struct vpci_dev *d = (struct vpci_dev *)p;

	for (unsigned i = 0; i < d->nqueues; i++) {
		uint64_t at = VPCI_NOTIFY_OFF + (uint64_t)i * VPCI_NOTIFY_MULT;

		if (old)
			vm_ioeventfd(d->vm, old + at, 2, d->q[i].kick_fd, false, false);
		if (base)
			vm_ioeventfd(d->vm, base + at, 2, d->q[i].kick_fd, false, true);
	}
}

static void cfg_written(struct pci_dev *p, unsigned off, unsigned len)
{
	struct vpci_dev *d = (struct vpci_dev *)p;

	if (off < d->msix_cap + 4 && off + len > d->msix_cap + 2)
		msix_control(d);
}

static const struct pci_dev_ops vpci_pci_ops = {
	.bar_access = bar_access,
	.cfg_written = cfg_written,
	.bar_moved = bar_moved,
};

/* ---- setup ---- */

static void add_virtio_cap(struct vpci_dev *d, uint8_t type, uint32_t off, uint32_t len)
{
	struct virtio_pci_notify_cap c;
	unsigned size = type == VIRTIO_PCI_CAP_NOTIFY_CFG ? sizeof(c) : sizeof(c.cap);

	memset(&c, 0, sizeof(c));
	c.cap.cap_vndr = 0x09;		/* vendor specific */
	c.cap.cap_len = (uint8_t)size;
	c.cap.cfg_type = type;
	c.cap.bar = 0;
	c.cap.offset = off;
	c.cap.length = len;
	c.notify_off_multiplier = VPCI_NOTIFY_MULT;
	pci_add_cap(&d->pci, &c, size);
}

static void add_caps(struct vpci_dev *d)
{
	uint8_t msix[12] = { MSIX_CAP_ID, 0, VPCI_MSIX_VECTORS - 1, 0 };
	uint32_t table = VPCI_MSIX_TABLE, pba = VPCI_MSIX_PBA;	/* BIR 0 */

	memcpy(&msix[4], &table, 4);
	memcpy(&msix[8], &pba, 4);
	d->msix_cap = pci_add_cap(&d->pci, msix, sizeof(msix));
	d->pci.wmask[d->msix_cap + 3] = 0xc0;	/* enable, function mask */
	add_virtio_cap(d, VIRTIO_PCI_CAP_COMMON_CFG, VPCI_COMMON_OFF, 0x3c);
	add_virtio_cap(d, VIRTIO_PCI_CAP_NOTIFY_CFG, VPCI_NOTIFY_OFF,
		       VPCI_NOTIFY_MULT * d->nqueues);
	add_virtio_cap(d, VIRTIO_PCI_CAP_ISR_CFG, VPCI_ISR_OFF, 4);
	add_virtio_cap(d, VIRTIO_PCI_CAP_DEVICE_CFG, VPCI_DEVICE_OFF, d->config_size);
}

static int setup_irqfds(struct vpci_dev *d)
{
	for (unsigned v = 0; v < VPCI_MSIX_VECTORS; v++) {
		int rc;

		d->msix[v].ctrl = MSIX_CTRL_MASKED;
		d->irqfd[v] = hv_eventfd(true);
		if (d->irqfd[v] < 0)
			return hv_fail(d->irqfd[v], "eventfd: %s", strerror(-d->irqfd[v]));
		rc = vm_irqfd(d->vm, VM_GSI_MSI_BASE + msi_route_of(d, v), d->irqfd[v], true);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int vpci_init(struct vpci_dev *d, struct vm *vm, unsigned index, uint16_t device_id,
	      uint16_t pci_class_hi, unsigned nqueues, uint64_t features,
	      uint32_t config_size, const struct vpci_ops *ops, void *opaque)
{
	int rc;

	memset(d, 0, sizeof(*d));
	for (unsigned v = 0; v < VPCI_MSIX_VECTORS; v++)
		d->irqfd[v] = -1;
	for (unsigned i = 0; i < VPCI_MAX_QUEUES; i++)
		d->q[i].kick_fd = -1;
	d->vm = vm;
	if (nqueues == 0 || nqueues > VPCI_MAX_QUEUES ||
	    (index + 1) * VPCI_MSIX_VECTORS > VM_MAX_MSI ||
	    index >= 32)
		return hv_fail(-EINVAL, "virtio device %u: too many devices or queues", index);
	pci_dev_init(&d->pci, PCI_VENDOR_REDHAT, (uint16_t)(0x1040 + device_id),
		     (uint32_t)pci_class_hi << 16 | 0x01, PCI_VENDOR_REDHAT, device_id);
	d->pci.ops = &vpci_pci_ops;
	d->index = index;
	d->ops = ops;
	d->opaque = opaque;
	d->config_size = config_size;
	d->features = features | (1ULL << VIRTIO_F_VERSION_1);
	d->nqueues = nqueues;
	d->config_vector = VPCI_NO_VECTOR;
	for (unsigned i = 0; i < nqueues; i++) {
		pthread_mutex_init(&d->q[i].lock, NULL);
		pthread_cond_init(&d->q[i].idle, NULL);
		queue_reset(&d->q[i]);
		d->q[i].kick_fd = hv_eventfd(true);
		if (d->q[i].kick_fd < 0)
			return hv_fail(d->q[i].kick_fd, "eventfd: %s", strerror(-d->q[i].kick_fd));
	}
	add_caps(d);
	rc = setup_irqfds(d);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&vm->pci->lock);
	rc = pci_plug(vm->pci, &d->pci, VPCI_BAR_SIZE);
	pthread_mutex_unlock(&vm->pci->lock);
	return rc;
}

void vpci_release(struct vpci_dev *d)
{
	if (!d->vm)
		return;		/* never initialized */
	for (unsigned i = 0; i < d->nqueues; i++)
		if (d->q[i].kick_fd >= 0)
			close(d->q[i].kick_fd);
	for (unsigned v = 0; v < VPCI_MSIX_VECTORS; v++)
		if (d->irqfd[v] >= 0)
			close(d->irqfd[v]);
}
