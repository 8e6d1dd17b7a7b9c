/* blk.c -- virtio-blk: device discovery and configuration, requests,
 * completion polling.
 *
 * Each request slot (struct blk_req) holds the header, the discard/zeroes
 * range and the status byte the device sees; a slot is busy from submit
 * until its completion is collected.  Completions may arrive in any order
 * (the used ring says which head completed; the head's cookie names the
 * slot). */
#include "blk.h"

#define DEFAULT_TIMEOUT_US 30000000ull

struct blk disks[MAX_DISKS];
int ndisks;

static void found(struct pci_addr a, uint32_t id, void *arg)
{
	/* 0x1042: modern virtio-blk; 0x1001: transitional (modern caps too). */
	if ((id & 0xffff) != VIRTIO_VENDOR || (id >> 16 != VIRTIO_ID_BLK_MODERN && id >> 16 != 0x1001))
		return;
	if (ndisks == MAX_DISKS)
		return;
	disks[ndisks].index = ndisks;
	disks[ndisks].v.pci = a;
	ndisks++;
}

const char *blk_features(const struct blk *b)
{
	static char s[128];

	gsnprintf(s, sizeof(s), "%s%s%s%s%s%s%s", b->flush ? " FLUSH" : "",
		  b->discard ? " DISCARD" : "", b->wzeroes ? " WRITE_ZEROES" : "",
		  vdev_has(&b->v, VIRTIO_BLK_F_BLK_SIZE) ? " BLK_SIZE" : "",
		  vdev_has(&b->v, VIRTIO_BLK_F_SEG_MAX) ? " SEG_MAX" : "",
		  vdev_has(&b->v, VIRTIO_BLK_F_SIZE_MAX) ? " SIZE_MAX" : "", b->ro ? " RO" : "");
	return s;
}

static void read_config(struct blk *b)
{
	struct vdev *v = &b->v;

	b->sectors = vdev_cfg64(v, 0);
	b->size_max = vdev_has(v, VIRTIO_BLK_F_SIZE_MAX) ? vdev_cfg32(v, 8) : 0;
	b->seg_max = vdev_has(v, VIRTIO_BLK_F_SEG_MAX) ? vdev_cfg32(v, 12) : 1;
	b->blk_size = vdev_has(v, VIRTIO_BLK_F_BLK_SIZE) ? vdev_cfg32(v, 20) : 512;
	b->ro = vdev_has(v, VIRTIO_BLK_F_RO);
	b->flush = vdev_has(v, VIRTIO_BLK_F_FLUSH);
	b->discard = vdev_has(v, VIRTIO_BLK_F_DISCARD);
	b->wzeroes = vdev_has(v, VIRTIO_BLK_F_WRITE_ZEROES);
	b->max_discard_sectors = b->discard ? vdev_cfg32(v, 36) : 0;
	b->max_wz_sectors = b->wzeroes ? vdev_cfg32(v, 48) : 0;
}

int blk_init(struct blk *b, char *err, size_t errlen)
{
	uint64_t want = 1ull << VIRTIO_BLK_F_SIZE_MAX | 1ull << VIRTIO_BLK_F_SEG_MAX |
			1ull << VIRTIO_BLK_F_RO | 1ull << VIRTIO_BLK_F_BLK_SIZE |
			1ull << VIRTIO_BLK_F_FLUSH | 1ull << VIRTIO_BLK_F_DISCARD |
			1ull << VIRTIO_BLK_F_WRITE_ZEROES;
	int i;

	if (!b->v.common && vdev_probe(&b->v, b->v.pci, err, errlen))
		return -1;
	if (vdev_start(&b->v, want, err, errlen))
		return -1;
	read_config(b);
	if (b->blk_size < 512 || (b->blk_size & (b->blk_size - 1))) {
		gsnprintf(err, errlen, "blk_size %u is not a power of two >= 512", b->blk_size);
		return -1;
	}
	if (vdev_setup_queue(&b->v, 0, &b->q, b->qmem, err, errlen))
		return -1;
	/* Header + data + status must fit in the queue. */
	b->seg_max = MAX(1u, MIN(b->seg_max, (uint32_t)b->q.size - 2));
	for (i = 0; i < VQ_MAX; i++)
		b->req[i].busy = false;
	vdev_driver_ok(&b->v);
	return 0;
}

int blk_find_all(void)
{
	char err[160];
	int i;

	ndisks = 0;
	pci_scan(found, NULL);
	for (i = 0; i < ndisks; i++) {
		struct blk *b = &disks[i];
		struct pci_addr a = b->v.pci;
		int n;

		if (blk_init(b, err, sizeof(err))) {
			gprintf("GUEST disk%d: %02x:%02x.%x: FAILED: %s\n", i, a.bus, a.dev, a.fn, err);
			continue;
		}
		for (n = 0; n < 6; n++)
			if (b->v.bar[n].size)
				gprintf("GUEST disk%d: %02x:%02x.%x BAR%d %s %#lx size %#lx\n", i, a.bus,
					a.dev, a.fn, n, b->v.bar[n].io ? "io" : b->v.bar[n].is64 ?
					"mem64" : "mem32", b->v.bar[n].addr, b->v.bar[n].size);
		gprintf("GUEST disk%d: %lu sectors (%lu MiB), blk_size %u, seg_max %u, queue size %u, "
			"features %#lx:%s\n", i, b->sectors, b->sectors >> 11, b->blk_size, b->seg_max,
			b->q.size, b->v.features, blk_features(b));
	}
	return ndisks;
}

int blk_submit(struct blk *b, uint32_t type, uint64_t sector, const struct vbuf *data, int n)
{
	struct vbuf chain[VQ_MAX];
	struct blk_req *r = NULL;
	int i, head;

	if (n + 2 > b->q.size)
		return -1;
	for (i = 0; i < VQ_MAX && !r; i++)
		if (!b->req[i].busy)
			r = &b->req[i];
	if (!r)
		return -1;
	r->hdr.type = type;
	r->hdr.reserved = 0;
	r->hdr.sector = sector;
	r->status = 0xff;
	chain[0] = (struct vbuf){ (uintptr_t)&r->hdr, sizeof(r->hdr), false };
	for (i = 0; i < n; i++)
		chain[1 + i] = data[i];
	chain[1 + n] = (struct vbuf){ (uintptr_t)&r->status, 1, true };
	head = virtq_add(&b->q, chain, n + 2, r);
	if (head < 0)
		return -1;
	r->busy = true;
	r->done = false;
	virtq_publish(&b->q, head);
	return r - b->req;
}

void blk_kick(struct blk *b)
{
	virtq_kick(&b->q);
}

int blk_poll(struct blk *b)
{
	struct blk_req *r;
	uint32_t len;
	int n = 0;
	void *c;

	while (virtq_get(&b->q, &c, &len, NULL)) {
		r = c;
		if (r) {
			r->done = true;
			r->used_len = len;
		}
		n++;
	}
	return n;
}

int blk_wait(struct blk *b, int slot, uint64_t timeout_us)
{
	struct blk_req *r = &b->req[slot];
	uint64_t t0 = now_us(), t = t0, checked = t0;
	int st;

	while (!r->done) {
		if (blk_poll(b))
			continue;
		cpu_relax();
		t = now_us();
		if (t - checked >= 1000) {	/* status reads are exits: 1/ms */
			checked = t;
			if (vdev_status(&b->v) & VS_NEEDS_RESET)
				return BLK_NEEDS_RESET;
		}
		if (t - t0 > timeout_us)
			return BLK_TIMEOUT;
	}
	st = r->status;
	r->busy = false;
	return st;
}

int blk_io(struct blk *b, uint32_t type, uint64_t sector, const struct vbuf *data, int n)
{
	int slot = blk_submit(b, type, sector, data, n);

	if (slot < 0)
		return BLK_TIMEOUT;
	blk_kick(b);
	return blk_wait(b, slot, DEFAULT_TIMEOUT_US);
}

void blk_forget_all(struct blk *b)
{
	int i;

	for (i = 0; i < VQ_MAX; i++)
		b->req[i].busy = false;
}

int blk_split(struct blk *b, void *buf, uint32_t len, int nseg, bool odd, bool write, struct vbuf *out)
{
	uint64_t addr = (uintptr_t)buf;
	uint32_t cut, prev = 0;
	int k, n = 0;

	nseg = MAX(1, MIN(nseg, (int)b->seg_max));
	if (b->size_max)	/* enough segments for the per-segment limit */
		nseg = MAX(nseg, (int)((len + b->size_max - 1) / b->size_max));
	for (k = 1; k <= nseg; k++) {
		cut = (uint64_t)len * k / nseg;
		if (k < nseg && odd)	/* move the cut off the 512-byte grid */
			cut = cut - MIN(cut, (uint32_t)(k * 7919 % 509 + 1));
		else if (k < nseg)
			cut &= ~511u;
		if (cut <= prev)
			continue;
		out[n++] = (struct vbuf){ addr + prev, cut - prev, write };
		prev = cut;
	}
	return n;
}

int blk_rw(struct blk *b, bool write, uint64_t off, void *buf, uint32_t len, int nseg, bool odd)
{
	struct vbuf seg[VQ_MAX];
	int n = blk_split(b, buf, len, nseg, odd, !write, seg);

	return blk_io(b, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, off / 512, seg, n);
}

int blk_range(struct blk *b, uint32_t type, uint64_t off, uint64_t len, uint32_t flags)
{
	uint32_t max = type == VIRTIO_BLK_T_DISCARD ? b->max_discard_sectors : b->max_wz_sectors;
	uint64_t sector = off / 512, left = len / 512;
	int st = VIRTIO_BLK_S_OK;

	max = max ? max : 0x400000;	/* 2 GiB per request when there is no limit */
	max &= ~(b->blk_size / 512 - 1);	/* pieces stay on logical blocks */
	while (left && st == VIRTIO_BLK_S_OK) {
		struct vbuf v = { (uintptr_t)&b->range, sizeof(b->range), false };
		uint32_t num = MIN(left, (uint64_t)max);

		b->range.sector = sector;
		b->range.num_sectors = num;
		b->range.flags = flags;
		st = blk_io(b, type, 0, &v, 1);
		sector += num;
		left -= num;
	}
	return st;
}

const char *blk_status_name(int st)
{
	switch (st) {
	case VIRTIO_BLK_S_OK: return "OK";
	case VIRTIO_BLK_S_IOERR: return "IOERR";
	case VIRTIO_BLK_S_UNSUPP: return "UNSUPP";
	case BLK_TIMEOUT: return "no completion";
	case BLK_NEEDS_RESET: return "NEEDS_RESET";
	case 0xff: return "status not written";
	default: return "bad status";
	}
}
