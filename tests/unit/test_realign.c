/*
 * test_realign.c -- VHD_OPEN_REALIGN: a write moves a block whose data is
 * not 4 KiB aligned to an aligned place.
 *
 * The images are made by vhdkit and then rewritten here into qemu-img's
 * layout (blocks packed one after another from the end of the metadata,
 * so the data of 7 blocks in 8 starts off a page boundary); this file
 * parses the layout itself and shares no code with libvhd's.
 *
 *  - model: two threads write, read, zero and flush disjoint halves of a
 *    dynamic and of a differencing image; the content matches a mirror,
 *    the image checks clean, every block that took a small write (below
 *    64 KiB) is aligned afterwards, every other block stays where it was,
 *    and the allocated size does not grow (old places are punched);
 *  - the move falls back to copying through memory when the kernel's copy
 *    fails part way;
 *  - crash cuts at every write point of a workload that moves blocks, with
 *    flushes in between, with the copy through memory and with the
 *    simulator's copy op (copy_in_kernel's path): every crash image checks
 *    clean and holds every flushed write (model_check_crash), then takes
 *    writes again.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "endian.h"
#include "libvhd.h"
#include "model.h"

/* Every image has NBLOCKS blocks: 512 KiB ones in the model tests, 64 KiB
 * ones in the crash cuts (each move is one write per page). */
#define NBLOCKS 16u
static uint32_t BLOCK = 512u << 10;
static uint32_t CUT;	/* the last block holds BLOCK - CUT bytes of the disk */
static uint32_t LEAD;	/* sectors more before the first block */
#define SIZE (NBLOCKS * BLOCK - CUT)

static char dir[256];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/vhdkit-realign.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc(st.st_size);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, st.st_size, 0), st.st_size);
	close(fd);
	*len = st.st_size;
	return buf;
}

/* The parts of a dynamic VHD's layout this test needs (footer at EOF). */
struct layout {
	uint64_t table_off;
	uint32_t entries, block, bitmap;
};

static void parse(const uint8_t *f, size_t len, struct layout *l)
{
	const uint8_t *h = f + get_be64(f + len - 512 + 16);

	assert_memory_equal(h, "cxsparse", 8);
	l->table_off = get_be64(h + 16);
	l->entries = get_be32(h + 28);
	l->block = get_be32(h + 32);
	l->bitmap = ((l->block / 512 + 7) / 8 + 511) & ~511u;
}

static uint32_t entry_of(const uint8_t *f, const struct layout *l, uint32_t i)
{
	return get_be32(f + l->table_off + 4 * (uint64_t)i);
}

static bool misaligned(const struct layout *l, uint32_t e)
{
	return e != 0xFFFFFFFFu && ((uint64_t)e * 512 + l->bitmap) % 4096;
}

/* Rewrite @path as qemu-img lays a dynamic VHD out: the blocks, in file
 * order, packed from the end of the metadata on a sector boundary (LEAD
 * sectors later), then the footer.  A last block that holds only part of
 * the disk stops at the disk's end, the footer right after it. */
static void qemu_layout(const char *path)
{
	size_t len, n = 0;
	uint8_t *f = slurp(path, &len), *out;
	struct layout l;
	uint64_t first = UINT64_MAX, pos, disk;
	uint32_t order[NBLOCKS * 4];
	int fd;

	parse(f, len, &l);
	disk = get_be64(f + len - 512 + 48);	/* the footer's current size */
	assert_true(l.entries <= NBLOCKS * 4);
	for (uint32_t i = 0; i < l.entries; i++) {
		uint32_t e = entry_of(f, &l, i);
		if (e == 0xFFFFFFFFu)
			continue;
		if ((uint64_t)e * 512 < first)
			first = (uint64_t)e * 512;
		order[n++] = i;
	}
	for (size_t a = 1; a < n; a++)	/* by place in the file */
		for (size_t b = a; b > 0 && entry_of(f, &l, order[b]) <
					      entry_of(f, &l, order[b - 1]); b--) {
			uint32_t t = order[b];
			order[b] = order[b - 1];
			order[b - 1] = t;
		}
	if (first == UINT64_MAX)
		first = l.table_off + (uint64_t)l.entries * 4;
	pos = (first + 511) & ~511ull;
	if ((pos + l.bitmap) % 4096 == 0)
		pos += 512;
	pos += 512 * (uint64_t)LEAD;
	out = calloc(1, pos + (uint64_t)n * (l.bitmap + l.block) + 512);
	assert_non_null(out);
	memcpy(out, f, first);
	for (size_t k = 0; k < n; k++) {
		uint32_t i = order[k];
		uint64_t left = disk - (uint64_t)i * l.block;
		uint64_t span = l.bitmap + (left < l.block ? (left + 511) & ~511ull : l.block);
		memcpy(out + pos, f + (uint64_t)entry_of(f, &l, i) * 512, span);
		put_be32(out + l.table_off + 4 * (uint64_t)i, (uint32_t)(pos / 512));
		pos += span;
	}
	memcpy(out + pos, f + len - 512, 512);
	pos += 512;
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, out, pos, 0), (ssize_t)pos);
	close(fd);
	free(out);
	free(f);
}

/* Per block: 1 misaligned, 0 aligned, -1 unallocated. */
static void placement(const char *path, int where[NBLOCKS])
{
	size_t len;
	uint8_t *f = slurp(path, &len);
	struct layout l;

	parse(f, len, &l);
	for (uint32_t i = 0; i < NBLOCKS; i++) {
		uint32_t e = entry_of(f, &l, i);
		where[i] = e == 0xFFFFFFFFu ? -1 : misaligned(&l, e);
	}
	free(f);
}

static uint64_t allocated(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

static void report(void *opaque, enum vhd_check_severity sev, const char *msg)
{
	if (sev != VHD_CHECK_INFO)
		print_message("  check: %s\n", msg);
}

static void assert_clean(const char *path, const struct vhd_open_opts *o)
{
	struct vhd_check_result res = { 0 };

	assert_int_equal(vhd_check(path, 0, o, report, NULL, &res), 0);
	if (res.errors + res.warnings)
		fail_msg("%s: %u errors, %u warnings", path, res.errors, res.warnings);
}

/* img.vhd (over base.vhd when @diff) in qemu's layout: every block
 * allocated; a differencing image's blocks hold only a middle part (partial
 * bitmaps).  Returns the paths in @img and @base. */
static void build(bool diff, char img[300], char base[300])
{
	struct vhd_create_opts co = { .type = VHD_TYPE_DYNAMIC, .size = SIZE,
				      .block_size = BLOCK };
	uint8_t *buf = malloc(BLOCK);
	uint64_t rng = diff ? 11 : 7;
	vhd_disk *d;

	snprintf(img, 300, "%s/img%d.vhd", dir, diff);
	snprintf(base, 300, "%s/base%d.vhd", dir, diff);
	unlink(img);
	unlink(base);
	if (diff) {
		assert_int_equal(vhd_create(base, &co, &d), 0);
		for (uint32_t b = 0; b < NBLOCKS; b++) {
			model_fill_random(buf, BLOCK, &rng);
			assert_int_equal(vhd_pwrite(d, buf, BLOCK, (uint64_t)b * BLOCK), BLOCK);
		}
		assert_int_equal(vhd_close(d), 0);
		co.type = VHD_TYPE_DIFF;
		co.size = 0;
		co.parent = base;
	}
	assert_int_equal(vhd_create(img, &co, &d), 0);
	for (uint32_t b = 0; b < NBLOCKS; b++) {
		uint32_t off = diff ? BLOCK / 4 + 512 * b : 0;
		uint32_t len = diff ? BLOCK / 2 : BLOCK;
		if ((uint64_t)b * BLOCK + off + len > SIZE)
			len = SIZE - b * BLOCK - off;
		model_fill_random(buf, len, &rng);
		assert_int_equal(vhd_pwrite(d, buf, len, (uint64_t)b * BLOCK + off), len);
	}
	assert_int_equal(vhd_close(d), 0);
	free(buf);
	qemu_layout(img);
}

static uint8_t *content(const char *path, const struct vhd_open_opts *o)
{
	uint8_t *buf = malloc(SIZE);
	vhd_disk *d;

	if (vhd_open(path, 0, o, &d) < 0)
		fail_msg("open %s: %s", path, vhd_errmsg(NULL));
	assert_int_equal(vhd_pread(d, buf, SIZE, 0), SIZE);
	vhd_close(d);
	return buf;
}

struct worker {
	vhd_disk *d;
	uint8_t *mirror;
	uint64_t lo, hi;	/* the part of the disk this thread owns */
	uint64_t rng;
	bool touched[NBLOCKS];	/* written or zeroed */
	bool small[NBLOCKS];	/* by a request of < 64 KiB in it (VHD_REALIGN_BELOW) */
	int failed;
};

static void touch(struct worker *w, uint64_t off, uint64_t len)
{
	for (uint64_t b = off / BLOCK; b <= (off + len - 1) / BLOCK; b++) {
		uint64_t a = b * BLOCK > off ? b * BLOCK : off;
		uint64_t e = (b + 1) * BLOCK < off + len ? (b + 1) * BLOCK : off + len;
		w->touched[b] = true;
		if (e - a < 64 * 1024)
			w->small[b] = true;
	}
}

static void *work(void *arg)
{
	struct worker *w = arg;
	uint8_t *buf = malloc(65536 + 1);

	for (int i = 0; i < 300 && !w->failed; i++) {
		uint64_t r = model_rand(&w->rng);
		uint64_t len = 1 + model_rand(&w->rng) % 65536;
		uint64_t off = w->lo + model_rand(&w->rng) % (w->hi - w->lo - len);

		switch (r % 8) {
		case 0: case 1: case 2: case 3:		/* write, any alignment */
			model_fill_random(buf, len, &w->rng);
			memcpy(w->mirror + off, buf, len);
			if (vhd_pwrite(w->d, buf, len, off) != (ssize_t)len)
				w->failed = 1;
			touch(w, off, len);
			break;
		case 4:					/* zero */
			memset(w->mirror + off, 0, len);
			if (vhd_zero(w->d, off, len, 0) < 0)
				w->failed = 2;
			touch(w, off, len);
			break;
		case 5:
			if (vhd_flush(w->d) < 0)
				w->failed = 3;
			break;
		default:				/* read back */
			if (vhd_pread(w->d, buf, len, off) != (ssize_t)len ||
			    memcmp(buf, w->mirror + off, len))
				w->failed = 4;
			break;
		}
	}
	free(buf);
	return NULL;
}

static void realign_model(bool diff)
{
	char img[300], base[300];
	int before[NBLOCKS], after[NBLOCKS];
	struct worker w[2];
	pthread_t t[2];
	uint8_t *mirror, *now;
	unsigned moved = 0, kept = 0;
	uint64_t alloc0;
	vhd_disk *d;

	build(diff, img, base);
	placement(img, before);
	for (uint32_t b = 0; b < NBLOCKS; b++)
		kept += before[b] == 1;
	assert_true(kept >= NBLOCKS / 2);	/* qemu's layout is misaligned */
	kept = 0;
	alloc0 = allocated(img);
	mirror = content(img, NULL);

	if (vhd_open(img, VHD_OPEN_RDWR | VHD_OPEN_REALIGN, NULL, &d) < 0)
		fail_msg("open: %s", vhd_errmsg(NULL));
	for (int i = 0; i < 2; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i] = (struct worker){ .d = d, .mirror = mirror, .rng = 100 + i + 10 * diff,
					.lo = i * (SIZE / 2), .hi = (i + 1) * (SIZE / 2) };
		/* leave the first block of each half alone */
		w[i].lo += BLOCK;
		assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failed, 0);
	}
	now = malloc(SIZE);
	assert_int_equal(vhd_pread(d, now, SIZE, 0), SIZE);
	assert_memory_equal(now, mirror, SIZE);
	free(now);
	assert_int_equal(vhd_close(d), 0);

	assert_clean(img, NULL);
	now = content(img, NULL);
	assert_memory_equal(now, mirror, SIZE);
	free(now);
	placement(img, after);
	for (uint32_t b = 0; b < NBLOCKS; b++) {
		bool small = w[0].small[b] || w[1].small[b];
		if (small && after[b] == 1)
			fail_msg("block %u took small writes but is still misaligned", b);
		if (!small && after[b] != before[b])
			fail_msg("block %u took no small write but moved", b);
		moved += small && before[b] == 1 && after[b] == 0;
		kept += !small && before[b] == 1;
	}
	print_message("%u blocks moved, %u misaligned blocks left alone\n", moved, kept);
	assert_true(moved > 0 && kept >= 1);
	/* the old places were punched: no more space than before (plus the
	 * sector-to-page padding of the copies) */
	if (allocated(img) > alloc0 + BLOCK)
		fail_msg("allocated %llu bytes, %llu before",
			 (unsigned long long)allocated(img), (unsigned long long)alloc0);
	free(mirror);
}

static void test_realign_dynamic(void **s) { BLOCK = 512u << 10; realign_model(false); }
static void test_realign_diff(void **s) { BLOCK = 512u << 10; realign_model(true); }

/* Without the flag, and read-only, nothing moves. */
static void test_realign_off(void **s)
{
	char img[300], base[300];
	int before[NBLOCKS], after[NBLOCKS];
	uint8_t buf[4096];
	vhd_disk *d;

	BLOCK = 512u << 10;
	build(false, img, base);
	placement(img, before);
	assert_int_equal(vhd_open(img, VHD_OPEN_RDWR, NULL, &d), 0);
	memset(buf, 0x42, sizeof(buf));
	for (uint32_t b = 0; b < NBLOCKS; b++)
		assert_int_equal(vhd_pwrite(d, buf, sizeof(buf), (uint64_t)b * BLOCK + 8192), 4096);
	assert_int_equal(vhd_close(d), 0);
	assert_int_equal(vhd_open(img, VHD_OPEN_REALIGN, NULL, &d), 0);
	assert_int_equal(vhd_pread(d, buf, sizeof(buf), 8192), 4096);
	assert_int_equal(vhd_close(d), 0);
	placement(img, after);
	assert_memory_equal(before, after, sizeof(before));
	assert_clean(img, NULL);
}

/* Which writes move a block: those below 64 KiB.  One of 64 KiB or more
 * goes in place wherever it starts, also at the block's first byte (a
 * sequential pass); a write across two blocks counts by its piece in each. */
static void test_realign_rule(void **s)
{
	char img[300], base[300];
	int before[NBLOCKS], after[NBLOCKS];
	uint32_t mis[NBLOCKS], n = 0, pair = NBLOCKS;
	uint8_t *buf = malloc(256u << 10), *mirror, *now;
	uint64_t rng = 9;
	vhd_disk *d;

	BLOCK = 512u << 10;
	build(false, img, base);
	placement(img, before);
	for (uint32_t b = 0; b < NBLOCKS; b++)
		if (before[b] == 1)
			mis[n++] = b;
	for (uint32_t b = 0; b + 1 < NBLOCKS && pair == NBLOCKS; b++)
		if (before[b] == 1 && before[b + 1] == 1)
			pair = b;
	assert_true(pair < NBLOCKS);
	/* four misaligned blocks besides pair and pair + 1 */
	for (uint32_t i = 0, k = 0; i < n; i++)
		if (mis[i] != pair && mis[i] != pair + 1)
			mis[k++] = mis[i];
	assert_true(n - 2 >= 4);
	mirror = content(img, NULL);
	assert_int_equal(vhd_open(img, VHD_OPEN_RDWR | VHD_OPEN_REALIGN, NULL, &d), 0);
	struct { uint64_t off; uint32_t len; } w[] = {
		{ (uint64_t)mis[0] * BLOCK, 128u << 10 },		/* starts the block: stays */
		{ (uint64_t)mis[1] * BLOCK + (64u << 10), 128u << 10 },	/* large, inside: stays */
		{ (uint64_t)mis[2] * BLOCK + 8192, 4096 },		/* small: moves */
		{ (uint64_t)mis[3] * BLOCK + 512, 64u << 10 },		/* 64 KiB, inside: stays */
		{ (uint64_t)(pair + 1) * BLOCK - (16u << 10), 96u << 10 },	/* 16 KiB, then 80 KiB */
	};
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		model_fill_random(buf, w[i].len, &rng);
		memcpy(mirror + w[i].off, buf, w[i].len);
		assert_int_equal(vhd_pwrite(d, buf, w[i].len, w[i].off), w[i].len);
	}
	assert_int_equal(vhd_close(d), 0);
	assert_clean(img, NULL);
	now = content(img, NULL);
	assert_memory_equal(now, mirror, SIZE);
	placement(img, after);
	assert_int_equal(after[mis[0]], 1);
	assert_int_equal(after[mis[1]], 1);
	assert_int_equal(after[mis[2]], 0);
	assert_int_equal(after[mis[3]], 1);
	assert_int_equal(after[pair], 0);
	assert_int_equal(after[pair + 1], 1);
	free(now);
	free(mirror);
	free(buf);
}

/* An io over the POSIX one whose in-kernel copy fails after its first
 * call: the move must fall back to copying through memory, over the part
 * the kernel already copied. */
struct flaky_io {
	struct vhd_io io;
	struct vhd_io *in;
	int copies;
};

#define IN(io) (((struct flaky_io *)(io))->in)
static ssize_t fl_pread(struct vhd_io *io, void *b, size_t l, uint64_t o) { return IN(io)->ops->pread(IN(io), b, l, o); }
static ssize_t fl_pwrite(struct vhd_io *io, const void *b, size_t l, uint64_t o) { return IN(io)->ops->pwrite(IN(io), b, l, o); }
static int fl_flush(struct vhd_io *io) { return IN(io)->ops->flush(IN(io)); }
static int fl_size(struct vhd_io *io, uint64_t *s) { return IN(io)->ops->get_size(IN(io), s); }
static int fl_truncate(struct vhd_io *io, uint64_t s) { return IN(io)->ops->truncate(IN(io), s); }
static int fl_punch(struct vhd_io *io, uint64_t o, uint64_t l) { return IN(io)->ops->punch(IN(io), o, l); }
static int fl_next_data(struct vhd_io *io, uint64_t o, uint64_t *d, uint64_t *e) { return IN(io)->ops->next_data(IN(io), o, d, e); }
static int fl_identity(struct vhd_io *io, uint64_t *d, uint64_t *i) { return IN(io)->ops->identity(IN(io), d, i); }
static void fl_close(struct vhd_io *io) { IN(io)->ops->close(IN(io)); free(io); }

static ssize_t fl_copy(struct vhd_io *io, uint64_t src, uint64_t dst, size_t len)
{
	if (((struct flaky_io *)io)->copies++ > 0)
		return -EXDEV;
	return IN(io)->ops->copy(IN(io), src, dst, len);
}

static const struct vhd_io_ops flaky_ops = {
	.pread = fl_pread, .pwrite = fl_pwrite, .flush = fl_flush,
	.get_size = fl_size, .truncate = fl_truncate, .close = fl_close,
	.punch = fl_punch, .next_data = fl_next_data, .identity = fl_identity,
	.copy = fl_copy,
};

static int fl_open(const struct vhd_io_factory *f, const char *path,
		   unsigned flags, struct vhd_io **out)
{
	struct flaky_io *x = calloc(1, sizeof(*x));
	int rc;

	if (!x)
		return -ENOMEM;
	rc = vhd_io_posix()->open(vhd_io_posix(), path, flags, &x->in);
	if (rc < 0) {
		free(x);
		return rc;
	}
	assert_non_null(x->in->ops->copy);	/* the POSIX io copies in the kernel */
	x->io.ops = &flaky_ops;
	*out = &x->io;
	return 0;
}

static void test_realign_copy_fails(void **s)
{
	static const struct vhd_io_factory flaky = { .open = fl_open };
	struct vhd_open_opts o = { .io = &flaky };
	char img[300], base[300];
	int before[NBLOCKS], after[NBLOCKS];
	uint8_t buf[4096], *mirror, *now;
	uint64_t rng = 13;
	vhd_disk *d;

	BLOCK = 512u << 10;
	build(false, img, base);
	placement(img, before);
	mirror = content(img, NULL);
	assert_int_equal(vhd_open(img, VHD_OPEN_RDWR | VHD_OPEN_REALIGN, &o, &d), 0);
	for (uint32_t b = 0; b < NBLOCKS; b++) {
		uint64_t off = (uint64_t)b * BLOCK + 4096 * b + 512;
		model_fill_random(buf, sizeof(buf), &rng);
		memcpy(mirror + off, buf, sizeof(buf));
		assert_int_equal(vhd_pwrite(d, buf, sizeof(buf), off), 4096);
	}
	assert_int_equal(vhd_close(d), 0);
	assert_clean(img, NULL);
	now = content(img, NULL);
	assert_memory_equal(now, mirror, SIZE);
	placement(img, after);
	for (uint32_t b = 0; b < NBLOCKS; b++)
		if (after[b] != 0)
			fail_msg("block %u (was %d) is still misaligned", b, before[b]);
	free(now);
	free(mirror);
}

/* A last block that stops short in the file (at the end of the disk)
 * moves like any other, and moving goes on after it. */
static void test_realign_short_tail(void **s)
{
	char img[300], base[300];
	int before[NBLOCKS], after[NBLOCKS];
	uint8_t buf[4096], *mirror, *now;
	uint32_t last = NBLOCKS - 1, other = 0;
	uint64_t rng = 3;
	vhd_disk *d;

	BLOCK = 64u << 10;
	CUT = 40u << 10;
	LEAD = 1;
	build(false, img, base);
	placement(img, before);
	assert_int_equal(before[last], 1);
	while (before[other] != 1)
		other++;
	assert_true(other < last);
	mirror = content(img, NULL);
	assert_int_equal(vhd_open(img, VHD_OPEN_RDWR | VHD_OPEN_REALIGN, NULL, &d), 0);
	model_fill_random(buf, sizeof(buf), &rng);
	memcpy(mirror + (uint64_t)last * BLOCK + 4096, buf, sizeof(buf));
	assert_int_equal(vhd_pwrite(d, buf, sizeof(buf), (uint64_t)last * BLOCK + 4096), 4096);
	model_fill_random(buf, sizeof(buf), &rng);
	memcpy(mirror + (uint64_t)other * BLOCK, buf, sizeof(buf));
	assert_int_equal(vhd_pwrite(d, buf, sizeof(buf), (uint64_t)other * BLOCK), 4096);
	assert_int_equal(vhd_close(d), 0);
	assert_clean(img, NULL);
	now = content(img, NULL);
	assert_memory_equal(now, mirror, SIZE);
	placement(img, after);
	assert_int_equal(after[last], 0);
	assert_int_equal(after[other], 0);
	free(now);
	free(mirror);
	CUT = LEAD = 0;
}

/* Crash cuts: load @img (and @base) into a simulator that can punch, and
 * copy within a file when @kernel (the moves then take copy_in_kernel's
 * path; without, the copy through memory). */
static struct vhd_crashsim *sim_of(const char *img, const char *base, bool diff,
				   bool kernel, uint64_t seed)
{
	struct vhd_crashsim *sim = vhd_crashsim_new(seed);

	vhd_crashsim_allow_punch(sim);
	if (kernel)
		vhd_crashsim_allow_copy(sim);
	assert_int_equal(vhd_crashsim_load(sim, img, img), 0);
	if (diff)
		assert_int_equal(vhd_crashsim_load(sim, base, base), 0);
	return sim;
}

/* Writes that move blocks, two flushes; stops at the first failure.
 * Returns whether @d is still open (vhd_close frees it, also on failure). */
static bool workload(vhd_disk *d, struct model *m)
{
	uint64_t rng = 5;
	uint8_t buf[8192];

	for (int i = 0; i < 4; i++) {
		uint64_t off = (uint64_t)(i * 3 % NBLOCKS) * BLOCK + 4096 * i + 512 * (i & 1);
		size_t len = i & 1 ? 700 : sizeof(buf);
		model_fill_random(buf, len, &rng);
		model_write(m, off, buf, len);
		if (vhd_pwrite(d, buf, len, off) != (ssize_t)len)
			return true;
		if (i % 2 == 1) {
			if (vhd_flush(d) < 0)
				return true;
			model_flush(m);
		}
	}
	if (vhd_close(d) == 0)
		model_flush(m);
	return false;
}

static void realign_cuts(bool diff, bool kernel)
{
	char img[300], base[300], host[400];
	uint8_t *initial;
	uint64_t total;

	build(diff, img, base);
	initial = content(img, NULL);
	{	/* count the write points */
		struct vhd_crashsim *sim = sim_of(img, base, diff, kernel, 1);
		struct vhd_open_opts o = { .io = vhd_crashsim_factory(sim) };
		struct model m;
		vhd_disk *d;
		assert_int_equal(model_init(&m, SIZE, initial), 0);
		assert_int_equal(vhd_open(img, VHD_OPEN_RDWR | VHD_OPEN_REALIGN, &o, &d), 0);
		total = vhd_crashsim_writes(sim);
		workload(d, &m);
		total = vhd_crashsim_writes(sim) - total;
		assert_true(total > 4 * 2);	/* the moves wrote page by page */
		model_free(&m);
		vhd_crashsim_free(sim);
	}
	for (uint64_t run = 0; run < 3 * total; run++) {
		uint64_t cut = run / 3 + 1;
		unsigned keep = run % 3 == 0 ? 0 : run % 3 == 1 ? 100 :
				(unsigned)(cut * 37 % 101);
		struct vhd_crashsim *sim = sim_of(img, base, diff, kernel, run + 1), *after;
		struct vhd_open_opts o = { .io = vhd_crashsim_factory(sim) }, a;
		struct model m;
		uint64_t bad;
		uint8_t sector[512];
		vhd_disk *d;

		assert_int_equal(model_init(&m, SIZE, initial), 0);
		assert_int_equal(vhd_open(img, VHD_OPEN_RDWR | VHD_OPEN_REALIGN, &o, &d), 0);
		vhd_crashsim_cut_after(sim, cut);
		if (workload(d, &m))
			vhd_close(d);	/* fails: the files are frozen */
		if (!vhd_crashsim_crashed(sim)) {
			model_free(&m);
			vhd_crashsim_free(sim);
			continue;
		}
		after = vhd_crashsim_new(run + 7);
		snprintf(host, sizeof(host), "%s/crash", dir);
		assert_int_equal(vhd_crashsim_save_crash(sim, img, host, keep), 0);
		assert_int_equal(vhd_crashsim_load(after, img, host), 0);
		if (diff)
			assert_int_equal(vhd_crashsim_load(after, base, base), 0);
		unlink(host);
		vhd_crashsim_free(sim);
		a = (struct vhd_open_opts){ .io = vhd_crashsim_factory(after) };
		assert_clean(img, &a);
		if (vhd_open(img, 0, &a, &d) < 0)
			fail_msg("cut %llu: open: %s", (unsigned long long)cut, vhd_errmsg(NULL));
		bad = model_check_crash(&m, d);
		if (bad != UINT64_MAX)
			fail_msg("cut %llu (keep %u%%): byte %llu lost or wrong",
				 (unsigned long long)cut, keep, (unsigned long long)bad);
		vhd_close(d);
		memset(sector, 0x5a, sizeof(sector));
		assert_int_equal(vhd_open(img, VHD_OPEN_RDWR | VHD_OPEN_REALIGN, &a, &d), 0);
		assert_int_equal(vhd_pwrite(d, sector, sizeof(sector), BLOCK + 4096), 512);
		assert_int_equal(vhd_close(d), 0);
		assert_clean(img, &a);
		model_free(&m);
		vhd_crashsim_free(after);
	}
	print_message("%llu write points\n", (unsigned long long)total);
	free(initial);
}

static void test_realign_cuts_dynamic(void **s) { BLOCK = 64u << 10; realign_cuts(false, false); }
static void test_realign_cuts_diff(void **s) { BLOCK = 64u << 10; realign_cuts(true, false); }
static void test_realign_cuts_dynamic_kcopy(void **s) { BLOCK = 64u << 10; realign_cuts(false, true); }
static void test_realign_cuts_diff_kcopy(void **s) { BLOCK = 64u << 10; realign_cuts(true, true); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_realign_dynamic),
		cmocka_unit_test(test_realign_diff),
		cmocka_unit_test(test_realign_off),
		cmocka_unit_test(test_realign_rule),
		cmocka_unit_test(test_realign_copy_fails),
		cmocka_unit_test(test_realign_cuts_dynamic),
		cmocka_unit_test(test_realign_cuts_diff),
		cmocka_unit_test(test_realign_cuts_dynamic_kcopy),
		cmocka_unit_test(test_realign_cuts_diff_kcopy),
		cmocka_unit_test(test_realign_short_tail),	/* last: sets CUT, LEAD */
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
