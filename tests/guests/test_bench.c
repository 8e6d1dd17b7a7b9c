/* test_bench.c -- test=bench: random 4 KiB reads or writes on one disk at a
 * fixed queue depth, polled at CPL3, timed with the TSC.
 *
 *   rw=read|write (default read)  iodepth=N (default 16)  ops=N (default
 *   20000)  disk=N (default 0)  bs=N (default 4096)  tsc_khz=N
 *
 * Prints "GUEST BENCH rw=... bs=... iodepth=... ops=... us=... iops=..."
 * (iops and us need tsc_khz=; without it only cycles are given).  A write
 * bench overwrites the disk with pattern data: use a scratch image.  Each
 * batch of completions is answered with new requests and one notify. */
#include "tests.h"
#include "pattern.h"

struct bench {
	struct blk *b;
	bool write;
	uint32_t bs;
	uint64_t blocks;	/* disk size in bs units */
	uint64_t rng;
	uint64_t submitted, completed;
};

static int submit_one(struct bench *x, int i)
{
	struct vbuf v = { (uintptr_t)wbuf + (uint64_t)i * x->bs, x->bs, !x->write };
	uint64_t sector = rand64(&x->rng) % x->blocks * (x->bs / 512);
	int slot = blk_submit(x->b, x->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, sector, &v, 1);

	if (slot >= 0)
		x->submitted++;
	return slot;
}

/* Keeps iodepth requests in flight until ops have completed. */
static int run(struct bench *x, int iodepth, uint64_t ops)
{
	int slot[VQ_MAX], i, st;
	bool kick;

	for (i = 0; i < iodepth; i++)
		if ((slot[i] = submit_one(x, i)) < 0)
			return failf("bench: queue full at %d requests", i);
	blk_kick(x->b);
	while (x->completed < ops) {
		if (!blk_poll(x->b)) {
			cpu_relax();
			continue;
		}
		kick = false;
		for (i = 0; i < iodepth; i++) {
			struct blk_req *r = &x->b->req[slot[i]];

			if (slot[i] < 0 || !r->done)
				continue;
			st = r->status;
			r->busy = false;
			x->completed++;
			slot[i] = -1;
			if (st != VIRTIO_BLK_S_OK)
				return failf("bench: request failed: %s", blk_status_name(st));
			if (x->submitted < ops) {
				slot[i] = submit_one(x, i);
				kick = true;
			}
		}
		if (kick)
			blk_kick(x->b);
	}
	return 0;
}

int test_bench(void)
{
	const char *rw = arg_str("rw", "read");
	uint64_t ops = arg_u64("ops", 20000), disk = arg_u64("disk", 0);
	int iodepth = arg_u64("iodepth", 16);
	struct bench x = { .bs = arg_u64("bs", 4096), .rng = arg_u64("seed", 1) };
	struct pattern_key k = { 1, disk };
	uint64_t c0, cycles;

	blk_find_all();
	if (disk >= (uint64_t)ndisks || !disks[disk].q.size)
		return failf("bench: no usable disk %lu", disk);
	x.b = &disks[disk];
	x.write = streq(rw, "write");
	if (!x.write && !streq(rw, "read"))
		return failf("bench: rw=%s (read or write)", rw);
	if (x.bs < x.b->blk_size || x.bs % x.b->blk_size || x.bs > 64 * 1024)
		return failf("bench: bs=%u must be a multiple of %u up to 64 KiB", x.bs, x.b->blk_size);
	iodepth = MAX(1, MIN(iodepth, MIN((int)(x.b->q.size / 3), (int)(IOBUF_SIZE / x.bs))));
	x.blocks = x.b->sectors * 512 / x.bs;
	if (!x.blocks || !ops)
		return failf("bench: nothing to do (disk of %lu sectors, ops=%lu)", x.b->sectors, ops);
	if (x.write)
		pattern_fill(wbuf, &k, 1, 0, (uint64_t)iodepth * x.bs / 512);
	gprintf("GUEST bench: disk%lu random %ss of %u bytes, iodepth %d, %lu ops\n", disk, rw, x.bs,
		iodepth, ops);
	c0 = rdtsc();
	if (run(&x, iodepth, ops))
		return -1;
	cycles = rdtsc() - c0;
	if (!tsc_khz_given) {
		gprintf("GUEST BENCH rw=%s bs=%u iodepth=%d ops=%lu cycles=%lu (no tsc_khz=: no IOPS)\n",
			rw, x.bs, iodepth, ops, cycles);
		return 0;
	}
	gprintf("GUEST BENCH rw=%s bs=%u iodepth=%d ops=%lu us=%lu iops=%lu\n", rw, x.bs, iodepth, ops,
		cycles * 1000 / tsc_khz, ops * tsc_khz * 1000 / cycles);
	return 0;
}
