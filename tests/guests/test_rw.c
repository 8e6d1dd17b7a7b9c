/* test_rw.c -- test=rw: every writable disk gets the steps of plan.c, each
 * write read back and compared at once, then all of it read back again at
 * the end; flush, discard, write zeroes (read back as zeros), GET_ID, and
 * requests the device must refuse (past the end: IOERR; an unknown type:
 * UNSUPP).  A read-only disk must fail a write with IOERR.
 *
 * For each disk the guest prints a machine-readable line first,
 *   GUEST DISK <n> sectors=<512-byte sectors> blk=<B> ro=<0|1> discard=<0|1>
 *     wzeroes=<0|1> seed=<seed> id=<serial>
 * from which the host (tests/guests/blkexpect) recomputes the plan and the
 * content the image must have afterwards. */
#include "tests.h"
#include "pattern.h"
#include "plan.h"

uint8_t wbuf[IOBUF_SIZE] __attribute__((aligned(4096)));
uint8_t rbuf[IOBUF_SIZE] __attribute__((aligned(4096)));

struct rw {
	struct blk *b;
	struct pattern_key key;
	struct plan_step steps[PLAN_MAX];
	int nsteps;
};

int disk_get_id(struct blk *b)
{
	struct vbuf v = { (uintptr_t)wbuf, BLK_ID_LEN, true };
	int st, i;

	memset(wbuf, 0, BLK_ID_LEN);
	st = blk_io(b, VIRTIO_BLK_T_GET_ID, 0, &v, 1);
	if (st != VIRTIO_BLK_S_OK)
		return failf("disk%d: GET_ID: %s", b->index, blk_status_name(st));
	for (i = 0; i < BLK_ID_LEN && wbuf[i]; i++)
		b->id[i] = wbuf[i] > ' ' && wbuf[i] < 127 ? wbuf[i] : '?';
	b->id[i] = '\0';
	gprintf("GUEST disk%d: GET_ID: \"%s\"\n", b->index, b->id);
	return 0;
}

void disk_summary(struct blk *b, uint64_t seed)
{
	gprintf("GUEST DISK %d sectors=%lu blk=%u ro=%d discard=%d wzeroes=%d seed=%lu id=%s\n",
		b->index, b->sectors, b->blk_size, b->ro, b->discard, b->wzeroes, seed, b->id);
}

/* Reports the first sector of buf (at byte offset off) that differs from
 * what steps [0, upto) leave on the disk. */
static int verify(struct rw *t, uint64_t off, uint32_t len, const uint8_t *buf, int upto,
		  const char *what)
{
	uint64_t s;

	for (s = off / 512; s < (off + len) / 512; s++) {
		const uint8_t *p = buf + (s * 512 - off);
		int want = plan_expect(t->steps, upto, s);
		int64_t bad;
		uint64_t got, exp;

		if (want < 0)
			continue;	/* not written by us: the host checks it */
		bad = pattern_check(p, &t->key, want, s, 1);
		if (bad < 0)
			continue;
		pattern_fill(wbuf, &t->key, want, s, 1);
		memcpy(&got, p + (bad & ~7), 8);
		memcpy(&exp, wbuf + (bad & ~7), 8);
		return failf("disk%d: %s: byte %lu (sector %lu) reads %#018lx, want %#018lx (%s %d)",
			     t->b->index, what, s * 512 + bad, s, got, exp,
			     want ? "generation" : "zeros", want);
	}
	return 0;
}

/* Reads [off, off + len) back in chunks and checks it against the steps
 * carried out so far (upto). */
static int read_back(struct rw *t, uint64_t off, uint64_t len, int segs, bool odd, int upto,
		     const char *what)
{
	uint64_t o;

	for (o = 0; o < len; o += PLAN_CHUNK) {
		uint32_t n = MIN(len - o, (uint64_t)PLAN_CHUNK);
		int st;

		memset(rbuf, 0xa5, n);	/* a read that moves no data shows */
		st = blk_rw(t->b, false, off + o, rbuf, n, segs, odd);
		if (st != VIRTIO_BLK_S_OK)
			return failf("disk%d: %s: read of %u bytes at %lu: %s", t->b->index, what, n,
				     off + o, blk_status_name(st));
		if (verify(t, off + o, n, rbuf, upto, what))
			return -1;
	}
	return 0;
}

/* reqs > 1: the range split evenly into requests submitted together. */
static int write_parallel(struct rw *t, const struct plan_step *s)
{
	uint32_t per = s->len / s->reqs;
	int slot[VQ_MAX], i, st;

	if (s->len > IOBUF_SIZE || per % t->b->blk_size || s->reqs > VQ_MAX)
		return failf("disk%d: %s: bad step", t->b->index, s->what);
	pattern_fill(wbuf, &t->key, s->gen, s->off / 512, s->len / 512);
	for (i = 0; i < s->reqs; i++) {
		struct vbuf seg[VQ_MAX];
		int n = blk_split(t->b, wbuf + i * per, per, s->segs, s->odd, false, seg);

		slot[i] = blk_submit(t->b, VIRTIO_BLK_T_OUT, (s->off + (uint64_t)i * per) / 512, seg, n);
		if (slot[i] < 0)
			return failf("disk%d: %s: queue full at request %d", t->b->index, s->what, i);
	}
	blk_kick(t->b);
	for (i = 0; i < s->reqs; i++) {
		st = blk_wait(t->b, slot[i], 30000000);
		if (st != VIRTIO_BLK_S_OK)
			return failf("disk%d: %s: request %d: %s", t->b->index, s->what, i,
				     blk_status_name(st));
	}
	return 0;
}

static int write_step(struct rw *t, const struct plan_step *s)
{
	uint64_t o;
	int st;

	if (s->reqs > 1)
		return write_parallel(t, s);
	for (o = 0; o < s->len; o += PLAN_CHUNK) {
		uint32_t n = MIN(s->len - o, (uint64_t)PLAN_CHUNK);

		pattern_fill(wbuf, &t->key, s->gen, (s->off + o) / 512, n / 512);
		st = blk_rw(t->b, true, s->off + o, wbuf, n, s->segs, s->odd);
		if (st != VIRTIO_BLK_S_OK)
			return failf("disk%d: %s: write of %u bytes at %lu: %s", t->b->index, s->what,
				     n, s->off + o, blk_status_name(st));
	}
	return 0;
}

/* Carries out step i and reads its range back. */
static int do_step(struct rw *t, int i)
{
	const struct plan_step *s = &t->steps[i];
	uint32_t type = VIRTIO_BLK_T_WRITE_ZEROES, flags = 0;
	int st;

	switch (s->op) {
	case PLAN_WRITE:
		if (write_step(t, s))
			return -1;
		break;
	case PLAN_FLUSH:
		if (!t->b->flush)
			return 0;
		st = blk_io(t->b, VIRTIO_BLK_T_FLUSH, 0, NULL, 0);
		if (st != VIRTIO_BLK_S_OK)
			return failf("disk%d: flush: %s", t->b->index, blk_status_name(st));
		break;
	case PLAN_DISCARD:
		type = VIRTIO_BLK_T_DISCARD;
		/* fall through */
	case PLAN_ZERO_UNMAP:
		flags = s->op == PLAN_ZERO_UNMAP ? VIRTIO_BLK_WZ_UNMAP : 0;
		/* fall through */
	case PLAN_ZERO:
		st = blk_range(t->b, type, s->off, s->len, flags);
		if (st != VIRTIO_BLK_S_OK)
			return failf("disk%d: %s: %s", t->b->index, s->what, blk_status_name(st));
		break;
	}
	if (s->op != PLAN_FLUSH && s->op != PLAN_DISCARD &&
	    read_back(t, s->off, s->len, s->segs + 2, !s->odd, i + 1, s->what))
		return -1;
	gprintf("GUEST disk%d: %-44s [%lu, +%lu): ok\n", t->b->index, s->what, s->off, s->len);
	return 0;
}

/* Requests the device must refuse, none of which may change the disk. */
static int refusals(struct blk *b)
{
	uint64_t end = b->sectors;
	uint32_t B = b->blk_size;
	struct {
		uint32_t type;
		uint64_t sector;
		uint32_t len;
		int want;
		const char *what;
	} r[] = {
		{ VIRTIO_BLK_T_IN, end, B, VIRTIO_BLK_S_IOERR, "read past the end" },
		{ VIRTIO_BLK_T_IN, end - B / 512, 2 * B, VIRTIO_BLK_S_IOERR, "read across the end" },
		{ VIRTIO_BLK_T_OUT, end, B, VIRTIO_BLK_S_IOERR, "write past the end" },
		{ 0x7f, 0, B, VIRTIO_BLK_S_UNSUPP, "request type 0x7f" },
	};
	unsigned i;

	for (i = 0; i < ARRAY_SIZE(r); i++) {
		struct vbuf v = { (uintptr_t)rbuf, r[i].len, r[i].type != VIRTIO_BLK_T_OUT };
		int st = blk_io(b, r[i].type, r[i].sector, &v, 1);

		if (st != r[i].want)
			return failf("disk%d: %s: %s, want %s", b->index, r[i].what,
				     blk_status_name(st), blk_status_name(r[i].want));
		gprintf("GUEST disk%d: %-44s %s: ok\n", b->index, r[i].what, blk_status_name(st));
	}
	return 0;
}

/* A read-only disk reads, and refuses a write (of the bytes it holds, so
 * that a device wrongly taking it changes nothing). */
static int test_ro(struct blk *b)
{
	uint32_t len = MIN(64 * 1024, b->sectors * 512);
	int st;

	st = blk_rw(b, false, 0, rbuf, len, 4, false);
	if (st != VIRTIO_BLK_S_OK)
		return failf("disk%d: read-only disk: read: %s", b->index, blk_status_name(st));
	st = blk_rw(b, true, 0, rbuf, len, 4, false);
	if (st != VIRTIO_BLK_S_IOERR)
		return failf("disk%d: read-only disk: write: %s, want IOERR", b->index,
			     blk_status_name(st));
	gprintf("GUEST disk%d: read-only: reads, write refused with IOERR: ok\n", b->index);
	return 0;
}

static int test_disk(struct blk *b, uint64_t seed)
{
	static struct rw t;
	struct plan_disk pd = { b->sectors * 512, b->blk_size, b->discard, b->wzeroes };
	uint64_t t0 = now_us();
	int i;

	if (disk_get_id(b))
		return -1;
	disk_summary(b, seed);
	if (b->ro)
		return test_ro(b);
	t = (struct rw){ .b = b, .key = { seed, b->index } };
	t.nsteps = plan_rw(&pd, t.steps);
	for (i = 0; i < t.nsteps; i++)
		if (do_step(&t, i))
			return -1;
	for (i = 0; i < t.nsteps; i++) {
		const struct plan_step *s = &t.steps[i];

		if (s->op != PLAN_FLUSH &&
		    read_back(&t, s->off, s->len, 3, false, t.nsteps, "final read-back"))
			return -1;
	}
	gprintf("GUEST disk%d: final read-back of every range: ok\n", b->index);
	if (refusals(b))
		return -1;
	gprintf("GUEST disk%d: done in %lu ms\n", b->index, (now_us() - t0) / 1000);
	return 0;
}

int test_rw(void)
{
	uint64_t seed = arg_u64("seed", 1), want = arg_u64("disks", 0);
	int i, rc = 0;

	blk_find_all();
	if (!ndisks)
		return failf("no virtio-blk device on PCI bus 0");
	if (want && want != (uint64_t)ndisks)
		return failf("found %d disks, the command line says disks=%lu", ndisks, want);
	for (i = 0; i < ndisks; i++) {
		if (!disks[i].q.size) {
			rc = failf("disk%d: not initialised", i);
			continue;
		}
		if (test_disk(&disks[i], seed))
			rc = -1;
	}
	return rc;
}
