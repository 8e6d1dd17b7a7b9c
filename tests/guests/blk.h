/* blk.h -- a virtio-blk driver on one request queue, polled (virtio 1.2,
 * 5.2).  Requests are a read-only header, data buffers, and a one-byte
 * status the device writes.  Sectors are always 512 bytes on the wire,
 * whatever blk_size says. */
#ifndef GUEST_BLK_H
#define GUEST_BLK_H
#include "virtio.h"

#define VIRTIO_BLK_F_SIZE_MAX	1
#define VIRTIO_BLK_F_SEG_MAX	2
#define VIRTIO_BLK_F_RO		5
#define VIRTIO_BLK_F_BLK_SIZE	6
#define VIRTIO_BLK_F_FLUSH	9
#define VIRTIO_BLK_F_DISCARD	13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN		0
#define VIRTIO_BLK_T_OUT	1
#define VIRTIO_BLK_T_FLUSH	4
#define VIRTIO_BLK_T_GET_ID	8
#define VIRTIO_BLK_T_DISCARD	11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_WZ_UNMAP	1	/* write zeroes flag */

#define VIRTIO_BLK_S_OK		0
#define VIRTIO_BLK_S_IOERR	1
#define VIRTIO_BLK_S_UNSUPP	2
/* blk_wait() results besides a status byte */
#define BLK_TIMEOUT		-1	/* no completion, device still fine */
#define BLK_NEEDS_RESET		-2	/* the device set NEEDS_RESET */

#define MAX_DISKS		32
#define BLK_ID_LEN		20

struct blk_req {
	struct {
		uint32_t type, reserved;
		uint64_t sector;
	} hdr;			/* device-readable */
	volatile uint8_t status;	/* device-writable */
	bool busy, done;
	uint32_t used_len;
};

struct blk {
	int index;		/* disk number: the order of the PCI scan */
	struct vdev v;
	struct virtq q;
	uint64_t sectors;	/* capacity in 512-byte sectors */
	uint32_t blk_size;	/* logical block size in bytes (512 without BLK_SIZE) */
	uint32_t seg_max;	/* data segments per request */
	uint32_t size_max;	/* bytes per segment (0: no limit) */
	uint32_t max_discard_sectors, max_wz_sectors;
	bool ro, flush, discard, wzeroes;
	char id[BLK_ID_LEN + 1];
	struct {
		uint64_t sector;
		uint32_t num_sectors, flags;
	} range;		/* the discard / write zeroes segment (blk_range) */
	struct blk_req req[VQ_MAX];
	uint8_t qmem[3 * 4096] __attribute__((aligned(4096)));
};

extern struct blk disks[MAX_DISKS];
extern int ndisks;

/* Finds every virtio-blk on bus 0 and initialises it; prints what it found.
 * Returns the number of disks, each either ready or failed (err set). */
int blk_find_all(void);
/* Reset, negotiate, set up the queue and DRIVER_OK.  0 or -1 (err). */
int blk_init(struct blk *b, char *err, size_t errlen);
const char *blk_features(const struct blk *b);

/* Queues a request (header, data buffers, status) without notifying.
 * Returns the request slot, or -1 when the queue is full. */
int blk_submit(struct blk *b, uint32_t type, uint64_t sector, const struct vbuf *data, int n);
void blk_kick(struct blk *b);
/* Collects completions; returns how many. */
int blk_poll(struct blk *b);
/* Waits for slot; returns its status byte, BLK_TIMEOUT or BLK_NEEDS_RESET. */
int blk_wait(struct blk *b, int slot, uint64_t timeout_us);
/* submit + kick + wait with the default timeout. */
int blk_io(struct blk *b, uint32_t type, uint64_t sector, const struct vbuf *data, int n);
/* Marks every slot free: after a reset, nothing in flight will complete. */
void blk_forget_all(struct blk *b);

/* Splits [buf, buf + len) into at most nseg buffers: on 512-byte
 * boundaries, or (odd) at byte offsets that are not.  Returns the count. */
int blk_split(struct blk *b, void *buf, uint32_t len, int nseg, bool odd, bool write, struct vbuf *out);
/* One read or write of len bytes at byte offset off in nseg segments. */
int blk_rw(struct blk *b, bool write, uint64_t off, void *buf, uint32_t len, int nseg, bool odd);
/* DISCARD or WRITE_ZEROES of [off, off + len), split by the device limits. */
int blk_range(struct blk *b, uint32_t type, uint64_t off, uint64_t len, uint32_t flags);
const char *blk_status_name(int st);

#endif
