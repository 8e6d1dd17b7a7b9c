/* test_bad.c -- test=bad: malformed descriptor chains on disk 0, written
 * straight into the ring, each followed by proof that the device still
 * works; then a normal write and read on every disk.
 *
 * The contract (hvcore-contract.md, "Request errors"): a malformed chain
 * never crashes the VMM; the request fails with IOERR when a status byte
 * can be found, otherwise the device sets NEEDS_RESET and stops the queue.
 * For each case the guest waits (bad_ms=, default 3000) for a completion
 * or NEEDS_RESET and prints
 *   GUEST bad: <case>: <outcome> (<accepted outcomes>): ok|UNEXPECTED
 * A case marked contract fails the test when its outcome is not accepted
 * (silence -- neither a completion nor NEEDS_RESET -- is never accepted
 * there); the others are reported only, and so are all with lenient=1 on
 * the command line (for QEMU, which is not bound by the contract: its DMA
 * to an address that is not RAM goes through a bounce buffer, so it
 * completes such requests with OK).  After every case: if the device
 * completed the request and did not ask for a reset, a normal read must
 * work without one; then the device is reset and set up again, and a
 * normal read must work. */
#include "tests.h"
#include "pattern.h"
#include "plan.h"

/* Outcomes, as a bit set. */
#define O_OK		(1u << 0)
#define O_IOERR		(1u << 1)
#define O_UNSUPP	(1u << 2)
#define O_NEEDS_RESET	(1u << 3)
#define O_SILENT	(1u << 4)	/* no completion, no NEEDS_RESET */
#define O_OTHER		(1u << 5)	/* a completion with another status */

static struct {
	struct {
		uint32_t type, reserved;
		uint64_t sector;
	} hdr;
	volatile uint8_t status;
} req;

struct bad_case {
	const char *name;
	unsigned accept;
	bool contract;
	/* Writes descriptors into q; returns the head to publish (or -1 when
	 * the case publishes on its own). */
	int (*build)(struct virtq *q);
};

static uint64_t far_addr(void)	/* surely not RAM */
{
	return 1ull << 40;
}

static void desc(struct virtq *q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	q->desc[i].addr = addr;
	q->desc[i].len = len;
	q->desc[i].flags = flags;
	q->desc[i].next = next;
}

static void header(uint32_t type, uint64_t sector)
{
	req.hdr.type = type;
	req.hdr.reserved = 0;
	req.hdr.sector = sector;
	req.status = 0xff;
}

/* hdr -> one data buffer -> status, in descriptors 0, 1, 2. */
static int three(struct virtq *q, uint32_t type, uint64_t data, uint32_t len)
{
	header(type, 64);
	desc(q, 0, (uintptr_t)&req.hdr, sizeof(req.hdr), VRING_DESC_F_NEXT, 1);
	desc(q, 1, data, len, VRING_DESC_F_NEXT | (type == VIRTIO_BLK_T_IN ? VRING_DESC_F_WRITE : 0), 2);
	desc(q, 2, (uintptr_t)&req.status, 1, VRING_DESC_F_WRITE, 0);
	return 0;
}

static int head_out_of_range(struct virtq *q)
{
	three(q, VIRTIO_BLK_T_IN, (uintptr_t)rbuf, 4096);
	return q->size + 7;
}

static int next_out_of_range(struct virtq *q)
{
	three(q, VIRTIO_BLK_T_IN, (uintptr_t)rbuf, 4096);
	q->desc[1].next = q->size + 100;
	return 0;
}

static int two_loop(struct virtq *q)
{
	three(q, VIRTIO_BLK_T_IN, (uintptr_t)rbuf, 4096);
	desc(q, 1, (uintptr_t)rbuf, 4096, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 0);
	return 0;
}

/* Every descriptor chained to the next, the last back to the first. */
static int ring_loop(struct virtq *q)
{
	uint16_t i;

	header(VIRTIO_BLK_T_IN, 64);
	desc(q, 0, (uintptr_t)&req.hdr, sizeof(req.hdr), VRING_DESC_F_NEXT, 1);
	for (i = 1; i < q->size; i++)
		desc(q, i, (uintptr_t)rbuf, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
		     (i + 1) % q->size);
	return 0;
}

/* A legal chain as long as the queue: header, size - 2 buffers, status. */
static int long_chain(struct virtq *q)
{
	uint16_t i, last = q->size - 1;

	header(VIRTIO_BLK_T_IN, 0);
	desc(q, 0, (uintptr_t)&req.hdr, sizeof(req.hdr), VRING_DESC_F_NEXT, 1);
	for (i = 1; i < last; i++)
		desc(q, i, (uintptr_t)rbuf + 512 * (i % 256), 512,
		     VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, i + 1);
	desc(q, last, (uintptr_t)&req.status, 1, VRING_DESC_F_WRITE, 0);
	return 0;
}

/* Two buffers of almost 4 GiB each: more than 2^32 bytes in all. */
static int huge_length(struct virtq *q)
{
	header(VIRTIO_BLK_T_IN, 64);
	desc(q, 0, (uintptr_t)&req.hdr, sizeof(req.hdr), VRING_DESC_F_NEXT, 1);
	desc(q, 1, (uintptr_t)rbuf, 0xfffff000, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	desc(q, 2, (uintptr_t)rbuf, 0xfffff000, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 3);
	desc(q, 3, (uintptr_t)&req.status, 1, VRING_DESC_F_WRITE, 0);
	return 0;
}

static int write_from_far(struct virtq *q)
{
	return three(q, VIRTIO_BLK_T_OUT, far_addr(), 4096);
}

static int read_past_ram(struct virtq *q)
{
	return three(q, VIRTIO_BLK_T_IN, ram_end() ? ram_end() : far_addr(), 4096);
}

static int read_across_ram_end(struct virtq *q)
{
	return three(q, VIRTIO_BLK_T_IN, ram_end() ? ram_end() - 2048 : far_addr(), 4096);
}

static int status_far(struct virtq *q)
{
	three(q, VIRTIO_BLK_T_IN, (uintptr_t)rbuf, 4096);
	q->desc[2].addr = far_addr();
	return 0;
}

static int short_header(struct virtq *q)
{
	three(q, VIRTIO_BLK_T_IN, (uintptr_t)rbuf, 4096);
	q->desc[0].len = 8;
	return 0;
}

/* avail->idx moved 1000 entries ahead: more heads than the queue has. */
static int avail_jump(struct virtq *q)
{
	three(q, VIRTIO_BLK_T_IN, (uintptr_t)rbuf, 4096);
	q->avail_idx += 1000;
	barrier();
	q->avail->idx = q->avail_idx;
	return -1;
}

#define ERRS (O_IOERR | O_NEEDS_RESET)
static const struct bad_case cases[] = {
	{ "head index out of range", O_NEEDS_RESET, true, head_out_of_range },
	{ "next index out of range", ERRS, true, next_out_of_range },
	{ "two-descriptor loop", ERRS, true, two_loop },
	{ "loop through the whole ring", ERRS, true, ring_loop },
	{ "total length over 4 GiB", ERRS, true, huge_length },
	{ "write from a buffer at 1 TiB", ERRS, true, write_from_far },
	{ "read into a buffer past the end of RAM", ERRS, true, read_past_ram },
	{ "read into a buffer across the end of RAM", ERRS, true, read_across_ram_end },
	{ "status byte at 1 TiB", O_NEEDS_RESET, true, status_far },
	{ "header of 8 bytes", ERRS | O_UNSUPP, true, short_header },
	{ "a legal chain as long as the queue", O_OK | ERRS, false, long_chain },
	{ "avail index 1000 entries ahead", ~0u, false, avail_jump },
};

static void outcome_name(unsigned o, char *buf, size_t len)
{
	gsnprintf(buf, len, "%s%s%s%s%s%s", o & O_OK ? " OK" : "", o & O_IOERR ? " IOERR" : "",
		  o & O_UNSUPP ? " UNSUPP" : "", o & O_NEEDS_RESET ? " NEEDS_RESET" : "",
		  o & O_SILENT ? " silence" : "", o & O_OTHER ? " other-status" : "");
}

/* Waits for a completion or NEEDS_RESET; returns the outcome bits. */
static unsigned wait_outcome(struct blk *b, uint16_t used0, uint64_t timeout_us)
{
	uint64_t t0 = now_us(), t;
	unsigned o = 0;

	for (;;) {
		if (b->q.used->idx != used0) {
			uint8_t st = req.status;

			o = st == 0 ? O_OK : st == 1 ? O_IOERR : st == 2 ? O_UNSUPP : O_OTHER;
			break;
		}
		t = now_us();
		if (vdev_status(&b->v) & VS_NEEDS_RESET)
			return O_NEEDS_RESET;
		if (t - t0 > timeout_us)
			return O_SILENT;
		for (t = now_us(); now_us() - t < 1000;)
			cpu_relax();
	}
	if (vdev_status(&b->v) & VS_NEEDS_RESET)
		o |= O_NEEDS_RESET;
	return o;
}

static int normal_read(struct blk *b, const char *when)
{
	int st = blk_rw(b, false, 0, rbuf, 4096, 2, false);

	if (st != VIRTIO_BLK_S_OK)
		return failf("disk%d: a normal read %s: %s", b->index, when, blk_status_name(st));
	return 0;
}

/* Runs one case on b, then brings the device back.  -1 when the VMM stopped
 * serving the disk, or a contract case had an outcome it may not have. */
static int run_case(struct blk *b, const struct bad_case *c, uint64_t timeout_us, bool lenient)
{
	char got[64], want[80], err[160];
	uint16_t used0 = b->q.used->idx;
	unsigned o;
	int head, rc = 0;

	head = c->build(&b->q);
	if (head >= 0)
		virtq_publish(&b->q, head);
	virtq_kick(&b->q);
	o = wait_outcome(b, used0, timeout_us);
	outcome_name(o, got, sizeof(got));
	outcome_name(c->accept, want, sizeof(want));
	gprintf("GUEST bad: %-44s%s (%s%s): %s\n", c->name, got, c->contract ? "contract:" : "any of:",
		c->accept == ~0u ? " anything" : want, (o & c->accept) == o ? "ok" :
		c->contract && !lenient ? "UNEXPECTED" : "unexpected, reported only");
	if (c->contract && !lenient && (o & c->accept) != o)
		rc = failf("bad: %s:%s", c->name, got);
	if (!(o & (O_NEEDS_RESET | O_SILENT))) {	/* still working, says the device */
		b->q.last_used = b->q.used->idx;
		virtq_reset_free(&b->q);
		blk_forget_all(b);
		if (normal_read(b, "after it, without a reset"))
			return -1;
	}
	if (blk_init(b, err, sizeof(err)))
		return failf("disk%d: set up again after \"%s\": %s", b->index, c->name, err);
	if (normal_read(b, "after a reset"))
		return -1;
	return rc;
}

/* The normal write of plan_bad() on a writable disk, read back. */
static int normal_write(struct blk *b, uint64_t seed)
{
	struct plan_step s[PLAN_MAX];
	struct plan_disk pd = { b->sectors * 512, b->blk_size, b->discard, b->wzeroes };
	struct pattern_key k = { seed, b->index };
	int n = plan_bad(&pd, s), i, st;

	for (i = 0; i < n; i++) {
		pattern_fill(wbuf, &k, s[i].gen, s[i].off / 512, s[i].len / 512);
		st = blk_rw(b, true, s[i].off, wbuf, s[i].len, s[i].segs, false);
		if (st == VIRTIO_BLK_S_OK)
			st = blk_rw(b, false, s[i].off, rbuf, s[i].len, s[i].segs + 1, true);
		if (st != VIRTIO_BLK_S_OK)
			return failf("disk%d: %s: %s", b->index, s[i].what, blk_status_name(st));
		if (pattern_check(rbuf, &k, s[i].gen, s[i].off / 512, s[i].len / 512) >= 0)
			return failf("disk%d: %s: reads back wrong", b->index, s[i].what);
	}
	gprintf("GUEST disk%d: normal write and read after the bad requests: ok\n", b->index);
	return 0;
}

int test_bad(void)
{
	uint64_t seed = arg_u64("seed", 1), timeout_us = arg_u64("bad_ms", 3000) * 1000;
	bool lenient = arg_u64("lenient", 0);
	unsigned i;
	int d, rc = 0;

	blk_find_all();
	if (!ndisks || !disks[0].q.size)
		return failf("bad: no usable virtio-blk device");
	gprintf("GUEST bad: RAM ends at %#lx; disk0 queue size %u\n", ram_end(), disks[0].q.size);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		if (run_case(&disks[0], &cases[i], timeout_us, lenient)) {
			rc = -1;
			if (!disks[0].q.size)
				break;
		}
	}
	for (d = 0; d < ndisks; d++) {
		struct blk *b = &disks[d];

		if (!b->q.size) {
			rc = failf("disk%d: not initialised", d);
			continue;
		}
		if (disk_get_id(b))
			return -1;
		disk_summary(b, seed);
		if (normal_read(b, "at the end") || (!b->ro && normal_write(b, seed)))
			rc = -1;
	}
	return rc;
}
