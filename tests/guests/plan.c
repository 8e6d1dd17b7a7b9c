/* plan.c -- the test=rw steps; see plan.h.  No libc: built for the guest
 * and the host. */
#include "plan.h"

#define M (1024ull * 1024)

struct builder {
	const struct plan_disk *d;
	struct plan_step *s;
	int n;
};

static void add(struct builder *b, uint8_t op, uint8_t gen, uint64_t off, uint64_t len,
		uint16_t segs, bool odd, uint16_t reqs, const char *what)
{
	uint64_t size = b->d->size / b->d->blk * b->d->blk;

	/* off > size catches "size - 3 * B" on a disk of fewer than 3 blocks. */
	if (b->n == PLAN_MAX || len == 0 || off > size || len > size - off || off % b->d->blk ||
	    len % b->d->blk)
		return;
	b->s[b->n++] = (struct plan_step){ .op = op, .gen = gen, .odd = odd, .segs = segs,
					   .reqs = reqs, .off = off, .len = len, .what = what };
}

static void add_write(struct builder *b, uint8_t gen, uint64_t off, uint64_t len,
		      uint16_t segs, bool odd, uint16_t reqs, const char *what)
{
	add(b, PLAN_WRITE, gen, off, len, segs, odd, reqs, what);
}

int plan_rw(const struct plan_disk *d, struct plan_step *s)
{
	struct builder b = { d, s, 0 };
	uint64_t B = d->blk, size = d->size / B * B;

	add_write(&b, 1, 0, B, 1, false, 1, "the first block");
	add_write(&b, 1, 5 * B, B, 1, false, 1, "one block");
	add_write(&b, 1, 2 * M - 3 * B, 7 * B, 3, false, 1, "across the 2 MiB boundary");
	add_write(&b, 1, 6 * M - 5 * B, 2 * M + 10 * B, 4, false, 1,
	      "a whole 2 MiB block with ragged edges");
	add_write(&b, 2, 2 * M - B, 2 * B, 2, false, 1, "an overwrite across 2 MiB");
	add_write(&b, 1, 12 * M, 64 * B, 1, false, 16, "16 requests in flight");
	add_write(&b, 1, 14 * M + B, 128 * B, 128, false, 1, "128 segments");
	add_write(&b, 1, 32 * M - 64 * 1024 - B, 128 * 1024 + 2 * B, 8, true, 1,
	      "odd-sized segments across 32 MiB");
	add_write(&b, 1, 63 * M + B, 2 * M, 8, false, 1, "2 MiB across 64 MiB");
	add_write(&b, 1, size - 3 * B, 3 * B, 2, false, 1, "the last blocks");
	add(&b, PLAN_FLUSH, 0, 0, B, 0, false, 1, "flush");
	if (d->discard) {
		add_write(&b, 3, 20 * M - 2 * B, 2 * M + 4 * B, 4, false, 1, "a range to discard");
		add(&b, PLAN_DISCARD, 0, 20 * M - 2 * B, 2 * M + 4 * B, 0, false, 1,
		    "discard (a whole 2 MiB block with edges)");
		add_write(&b, 4, 20 * M - 2 * B, 2 * M + 4 * B, 4, false, 1, "rewrite after discard");
	}
	if (d->wzeroes) {
		add_write(&b, 5, 24 * M - 3 * B, 2 * M + 8 * B, 4, false, 1, "a range to zero");
		add(&b, PLAN_ZERO, 0, 24 * M - 3 * B, 2 * M + 8 * B, 0, false, 1,
		    "write zeroes (ragged, across 2 blocks)");
		add_write(&b, 6, 36 * M, 2 * M, 4, false, 1, "a block to zero with unmap");
		add(&b, PLAN_ZERO_UNMAP, 0, 36 * M, 2 * M, 0, false, 1,
		    "write zeroes with unmap (a whole 2 MiB block)");
	}
	add(&b, PLAN_FLUSH, 0, 0, B, 0, false, 1, "flush");
	return b.n;
}

int plan_bad(const struct plan_disk *d, struct plan_step *s)
{
	struct builder b = { d, s, 0 };

	add_write(&b, 1, 0, 32 * 1024, 4, false, 1, "a normal write after the bad requests");
	return b.n;
}

int plan_expect(const struct plan_step *s, int n, uint64_t sector)
{
	uint64_t off = sector * 512;

	while (n--) {
		const struct plan_step *p = &s[n];

		if (p->op == PLAN_FLUSH || off < p->off || off >= p->off + p->len)
			continue;
		if (p->op == PLAN_WRITE)
			return p->gen;
		return p->op == PLAN_DISCARD ? -2 : 0;
	}
	return -1;
}
