/*
 * test_compact.c -- compact and resize against an independent model (a
 * mirror buffer written with the same data), and crash cuts at every write
 * point of a compact and of a resize: the crash image must pass vhd_check
 * with no error or warning and read exactly as before (compact) or as the
 * old or the new size (resize), then take a write and check clean again.
 * Runs for dynamic and differencing VHD and VHDX.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "libvhd.h"
#include "model.h"

#define SIZE (8u << 20)

static char dir[256];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/vhdkit-compact.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static uint32_t block_of(enum vhd_format fmt)
{
	return fmt == VHD_FMT_VHDX ? 1u << 20 : 512u << 10;
}

static void put(vhd_disk *d, uint8_t *mirror, const void *buf, size_t len, uint64_t off)
{
	memcpy(mirror + off, buf, len);
	assert_int_equal(vhd_pwrite(d, buf, len, off), (ssize_t)len);
}

/* An image s/img (over s/base when @diff) with data blocks, all-zero
 * blocks, discarded blocks and, for @diff, blocks equal to the parent's
 * data and all-zero blocks over parent data.  @mirror: what s/img reads. */
static void build(enum vhd_format fmt, bool diff, const struct vhd_io_factory *io,
		  uint8_t *mirror)
{
	struct vhd_create_opts co = { .format = fmt, .type = VHD_TYPE_DYNAMIC,
				      .size = SIZE, .block_size = block_of(fmt), .io = io };
	uint32_t bs = block_of(fmt), nb = SIZE / bs;
	uint8_t *buf = malloc(bs);
	uint64_t rng = 77;
	vhd_disk *d;

	memset(mirror, 0, SIZE);
	if (diff) {
		assert_int_equal(vhd_create("s/base", &co, &d), 0);
		for (uint32_t b = 0; b < nb; b += 2) {	/* every other block */
			model_fill_random(buf, bs, &rng);
			put(d, mirror, buf, bs, (uint64_t)b * bs);
		}
		assert_int_equal(vhd_close(d), 0);
		co.type = VHD_TYPE_DIFF;
		co.size = 0;
		co.parent = "s/base";
	}
	assert_int_equal(vhd_create("s/img", &co, &d), 0);
	for (uint32_t b = 0; b < nb; b++) {
		uint64_t off = (uint64_t)b * bs;
		switch (b % 5) {
		case 0:		/* data (partial in a differencing disk) */
			model_fill_random(buf, bs / 2, &rng);
			put(d, mirror, buf, bs / 2, off + bs / 4);
			break;
		case 1:		/* zeros written: an allocated all-zero block */
			memset(buf, 0, bs);
			put(d, mirror, buf, bs, off);
			break;
		case 2:		/* data, then discarded (a hole) */
			model_fill_random(buf, bs, &rng);
			put(d, mirror, buf, bs, off);
			assert_int_equal(vhd_flush(d), 0);
			assert_int_equal(vhd_discard(d, off, bs), 0);
			/* reads zeros (dynamic) or the parent now */
			if (diff)
				assert_int_equal(vhd_pread(d, mirror + off, bs, off), bs);
			else
				memset(mirror + off, 0, bs);
			break;
		case 3:		/* the parent's (or zero) bytes written again */
			memcpy(buf, mirror + off, bs);
			put(d, mirror, buf, bs, off);
			break;
		default:	/* untouched */
			break;
		}
	}
	free(buf);
	assert_int_equal(vhd_close(d), 0);
}

/* The first @cmp bytes of @path (of size @size) equal @mirror's. */
static void assert_prefix(const char *path, const struct vhd_open_opts *o,
			  const uint8_t *mirror, uint64_t size, uint64_t cmp)
{
	uint8_t *buf = malloc(size);
	vhd_disk *d;

	if (vhd_open(path, 0, o, &d) < 0)
		fail_msg("open %s: %s", path, vhd_errmsg(NULL));
	assert_int_equal(vhd_size(d), size);
	assert_int_equal(vhd_pread(d, buf, size, 0), (ssize_t)size);
	for (uint64_t i = 0; i < cmp; i++)
		if (buf[i] != mirror[i])
			fail_msg("%s: byte %llu differs", path, (unsigned long long)i);
	vhd_close(d);
	free(buf);
}

static void assert_content(const char *path, const struct vhd_open_opts *o,
			   const uint8_t *mirror, uint64_t size)
{
	assert_prefix(path, o, mirror, size, size);
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

/* What the progress callback saw; @stop_after: calls before it asks to stop
 * (0: never). */
struct seen {
	unsigned calls, stop_after;
	uint64_t done, total;
	bool backwards;
};

static int record(void *opaque, uint64_t done, uint64_t total)
{
	struct seen *s = opaque;

	if (done < s->done || total < s->total || done > total)
		s->backwards = true;
	s->done = done;
	s->total = total;
	return s->stop_after && ++s->calls >= s->stop_after;
}

static void compact_model(enum vhd_format fmt, bool diff)
{
	struct vhd_crashsim *sim = vhd_crashsim_new(1);
	struct vhd_open_opts o = { .io = vhd_crashsim_factory(sim) };
	uint8_t *mirror = malloc(SIZE);
	struct vhd_compact_stats st;

	struct seen seen = { 0 };

	build(fmt, diff, o.io, mirror);
	assert_clean("s/img", &o);
	if (vhd_compact("s/img", 0, &o, record, &seen, &st) < 0)
		fail_msg("compact: %s", vhd_errmsg(NULL));
	/* progress: every stored block examined, every moved one copied */
	assert_false(seen.backwards);
	assert_int_equal(seen.done, seen.total);
	/* (a VHDX's count of stored blocks includes its sector bitmap blocks,
	 * which are not examined) */
	assert_true(seen.total >= (st.dropped + st.zeroed + st.moved) * block_of(fmt));
	assert_true(seen.total <= (st.blocks_before + st.moved) * block_of(fmt));
	if (!diff)
		assert_int_equal(seen.total, (st.blocks_before + st.moved) * block_of(fmt));
	print_message("%s %s: %llu -> %llu blocks (%llu dropped, %llu zeroed, %llu kept zero, %llu moved), %llu -> %llu bytes\n",
		      fmt == VHD_FMT_VHDX ? "vhdx" : "vhd", diff ? "diff" : "dynamic",
		      (unsigned long long)st.blocks_before, (unsigned long long)st.blocks_after,
		      (unsigned long long)st.dropped, (unsigned long long)st.zeroed,
		      (unsigned long long)st.kept_zero, (unsigned long long)st.moved,
		      (unsigned long long)st.file_before, (unsigned long long)st.file_after);
	assert_content("s/img", &o, mirror, SIZE);
	assert_clean("s/img", &o);
	assert_true(st.dropped > 0);
	assert_true(st.moved > 0);
	assert_true(st.file_after < st.file_before);
	if (diff && fmt == VHD_FMT_VHD)
		assert_true(st.kept_zero > 0);
	if (diff && fmt == VHD_FMT_VHDX)
		assert_true(st.zeroed > 0);
	/* A second compact finds nothing to do. */
	assert_int_equal(vhd_compact("s/img", 0, &o, NULL, NULL, &st), 0);
	assert_int_equal(st.dropped + st.moved, 0);
	assert_content("s/img", &o, mirror, SIZE);
	free(mirror);
	vhd_crashsim_free(sim);
}

/* A progress callback that asks to stop, at each point it is called in
 * turn: -ECANCELED with a message naming the file, and the image checks
 * clean and reads as before; a later compact finishes the job. */
static void compact_cancel(enum vhd_format fmt, bool diff)
{
	uint8_t *mirror = malloc(SIZE);
	unsigned points = 0;

	for (unsigned stop = 1;; stop++) {
		struct vhd_crashsim *sim = vhd_crashsim_new(1);
		struct vhd_open_opts o = { .io = vhd_crashsim_factory(sim) };
		struct vhd_compact_stats st;
		struct seen seen = { .stop_after = stop };
		int rc;

		build(fmt, diff, o.io, mirror);
		rc = vhd_compact("s/img", 0, &o, record, &seen, &st);
		if (rc) {
			assert_int_equal(rc, -ECANCELED);
			assert_non_null(strstr(vhd_errmsg(NULL), "s/img: "));
			assert_non_null(strstr(vhd_errmsg(NULL), "cancelled"));
		}
		assert_content("s/img", &o, mirror, SIZE);
		assert_clean("s/img", &o);
		if (rc == 0) {
			vhd_crashsim_free(sim);
			break;
		}
		assert_int_equal(vhd_compact("s/img", 0, &o, NULL, NULL, &st), 0);
		assert_content("s/img", &o, mirror, SIZE);
		assert_clean("s/img", &o);
		points++;
		vhd_crashsim_free(sim);
	}
	print_message("cancelled at %u points\n", points);
	assert_true(points > 2);
	free(mirror);
}

static void test_compact_cancel_vhd(void **s) { compact_cancel(VHD_FMT_VHD, true); }
static void test_compact_cancel_vhdx(void **s) { compact_cancel(VHD_FMT_VHDX, true); }

static void test_compact_vhd(void **s) { compact_model(VHD_FMT_VHD, false); }
static void test_compact_vhd_diff(void **s) { compact_model(VHD_FMT_VHD, true); }
static void test_compact_vhdx(void **s) { compact_model(VHD_FMT_VHDX, false); }
static void test_compact_vhdx_diff(void **s) { compact_model(VHD_FMT_VHDX, true); }

/* Fixed and raw images are refused with a message naming the file. */
static void test_compact_refuses_fixed(void **s)
{
	struct vhd_crashsim *sim = vhd_crashsim_new(1);
	struct vhd_open_opts o = { .io = vhd_crashsim_factory(sim) };
	struct vhd_create_opts co = { .format = VHD_FMT_VHD, .type = VHD_TYPE_FIXED,
				      .size = SIZE, .io = o.io };

	assert_int_equal(vhd_create("s/fixed", &co, NULL), 0);
	assert_int_equal(vhd_compact("s/fixed", 0, &o, NULL, NULL, NULL), VHD_E_UNSUPPORTED);
	assert_non_null(strstr(vhd_errmsg(NULL), "s/fixed: "));
	vhd_crashsim_free(sim);
}

/* A discarded PARTIALLY_PRESENT VHDX block takes its sector bits along: a
 * later write that allocates the block again must not find them set over
 * fresh space (the sectors would read zeros instead of the parent). */
static void test_vhdx_discard_clears_bits(void **s)
{
	struct vhd_crashsim *sim = vhd_crashsim_new(1);
	struct vhd_create_opts co = { .format = VHD_FMT_VHDX, .type = VHD_TYPE_DYNAMIC,
				      .size = SIZE, .block_size = 1 << 20,
				      .io = vhd_crashsim_factory(sim) };
	static uint8_t a[1 << 20], b[4096], r[4096];
	vhd_disk *d;

	memset(a, 0xAA, sizeof(a));
	memset(b, 0xBB, sizeof(b));
	assert_int_equal(vhd_create("s/base", &co, &d), 0);
	assert_int_equal(vhd_pwrite(d, a, sizeof(a), 0), sizeof(a));
	assert_int_equal(vhd_close(d), 0);
	co.type = VHD_TYPE_DIFF;
	co.size = 0;
	co.parent = "s/base";
	assert_int_equal(vhd_create("s/img", &co, &d), 0);
	assert_int_equal(vhd_pwrite(d, b, sizeof(b), 0), sizeof(b));
	assert_int_equal(vhd_flush(d), 0);
	assert_int_equal(vhd_discard(d, 0, 1 << 20), 0);
	assert_int_equal(vhd_flush(d), 0);
	assert_int_equal(vhd_pwrite(d, b, sizeof(b), 65536), sizeof(b));
	assert_int_equal(vhd_pread(d, r, sizeof(r), 0), sizeof(r));
	assert_memory_equal(r, a, sizeof(r));	/* the parent's */
	assert_int_equal(vhd_close(d), 0);
	vhd_crashsim_free(sim);
}

/* The crash image of every file of @from, loaded into a new simulator. */
static struct vhd_crashsim *reload(struct vhd_crashsim *from, unsigned keep)
{
	static const char *const names[] = { "s/base", "s/img" };
	struct vhd_crashsim *to = vhd_crashsim_new(2);
	char host[400];

	for (size_t i = 0; i < 2; i++) {
		snprintf(host, sizeof(host), "%s/f%zu", dir, i);
		if (vhd_crashsim_save_crash(from, names[i], host, keep) < 0)
			continue;	/* no base */
		assert_int_equal(vhd_crashsim_load(to, names[i], host), 0);
		unlink(host);
	}
	return to;
}

/* After a crash: clean, the first @cmp bytes as @mirror, and writable. */
static void verify_after(struct vhd_crashsim *after, const uint8_t *mirror, uint64_t size,
			 uint64_t cmp)
{
	struct vhd_open_opts a = { .io = vhd_crashsim_factory(after) };
	uint8_t sector[512];
	vhd_disk *d;

	assert_clean("s/img", &a);
	assert_prefix("s/img", &a, mirror, size, cmp);
	memset(sector, 0x5a, sizeof(sector));
	if (vhd_open("s/img", VHD_OPEN_RDWR, &a, &d) < 0)
		fail_msg("reopen: %s", vhd_errmsg(NULL));
	assert_int_equal(vhd_pwrite(d, sector, sizeof(sector), 4096), 512);
	assert_int_equal(vhd_close(d), 0);
	assert_clean("s/img", &a);
}

typedef int (*operation)(const struct vhd_open_opts *o, uint64_t arg);

static int op_compact(const struct vhd_open_opts *o, uint64_t arg)
{
	return vhd_compact("s/img", 0, o, NULL, NULL, NULL);
}

static int op_resize(const struct vhd_open_opts *o, uint64_t size)
{
	return vhd_resize("s/img", size, VHD_RESIZE_FORCE, o);
}

/* Cut @op at every write point.  @new_size: the size after the operation
 * (the image may read as the old or the new size after a crash; bytes past
 * a shrink are gone, bytes past the old end read as zeros). */
static void cuts(enum vhd_format fmt, bool diff, operation op, uint64_t arg,
		 uint64_t new_size)
{
	uint8_t *mirror = calloc(1, SIZE * 2);
	uint64_t total, w0;
	unsigned old_seen = 0, new_seen = 0;

	{	/* count the write points */
		struct vhd_crashsim *sim = vhd_crashsim_new(1);
		struct vhd_open_opts o = { .io = vhd_crashsim_factory(sim) };
		build(fmt, diff, o.io, mirror);
		w0 = vhd_crashsim_writes(sim);
		if (op(&o, arg) < 0)
			fail_msg("operation: %s", vhd_errmsg(NULL));
		total = vhd_crashsim_writes(sim) - w0;
		vhd_crashsim_free(sim);
	}
	for (uint64_t run = 0; run < 3 * total; run++) {
		uint64_t cut = run / 3 + 1;
		unsigned keep = run % 3 == 0 ? 0 : run % 3 == 1 ? 100 :
				(unsigned)(cut * 37 % 101);
		struct vhd_crashsim *sim = vhd_crashsim_new(run + 1), *after;
		struct vhd_open_opts o = { .io = vhd_crashsim_factory(sim) };
		struct vhd_open_opts a;
		vhd_disk *d;
		uint64_t size;

		build(fmt, diff, o.io, mirror);
		vhd_crashsim_cut_after(sim, cut);
		if (op(&o, arg) == 0) {
			vhd_crashsim_free(sim);
			continue;	/* the cut came after the last write */
		}
		after = reload(sim, keep);	/* none, all, some pending writes */
		vhd_crashsim_free(sim);
		a = (struct vhd_open_opts){ .io = vhd_crashsim_factory(after) };
		if (vhd_open("s/img", 0, &a, &d) < 0)
			fail_msg("cut %llu: open: %s", (unsigned long long)cut, vhd_errmsg(NULL));
		size = vhd_size(d);
		vhd_close(d);
		if (size == new_size && size != SIZE)
			new_seen++;
		else if (size == SIZE)
			old_seen++;
		else
			fail_msg("cut %llu: size %llu", (unsigned long long)cut,
				 (unsigned long long)size);
		/* A forced shrink may have dropped the tail before the size
		 * changed: only the part both sizes keep is compared. */
		verify_after(after, mirror, size, size < new_size ? size : new_size);
		vhd_crashsim_free(after);
	}
	print_message("%llu write points (%u old size, %u new size)\n",
		      (unsigned long long)total, old_seen, new_seen);
	free(mirror);
}

static void test_compact_cuts_vhd(void **s) { cuts(VHD_FMT_VHD, false, op_compact, 0, SIZE); }
static void test_compact_cuts_vhd_diff(void **s) { cuts(VHD_FMT_VHD, true, op_compact, 0, SIZE); }
static void test_compact_cuts_vhdx(void **s) { cuts(VHD_FMT_VHDX, false, op_compact, 0, SIZE); }
static void test_compact_cuts_vhdx_diff(void **s) { cuts(VHD_FMT_VHDX, true, op_compact, 0, SIZE); }

/* Grow past the VHD's BAT (moves it), and a forced shrink. */
static void test_resize_cuts_vhd_grow(void **s)
{
	cuts(VHD_FMT_VHD, false, op_resize, SIZE * 2, SIZE * 2);
}
static void test_resize_cuts_vhd_shrink(void **s)
{
	cuts(VHD_FMT_VHD, false, op_resize, SIZE / 2, SIZE / 2);
}
static void test_resize_cuts_vhdx_grow(void **s)
{
	cuts(VHD_FMT_VHDX, false, op_resize, SIZE * 2, SIZE * 2);
}
static void test_resize_cuts_vhdx_shrink(void **s)
{
	cuts(VHD_FMT_VHDX, false, op_resize, SIZE / 2, SIZE / 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compact_vhd),
		cmocka_unit_test(test_compact_vhd_diff),
		cmocka_unit_test(test_compact_vhdx),
		cmocka_unit_test(test_compact_vhdx_diff),
		cmocka_unit_test(test_compact_refuses_fixed),
		cmocka_unit_test(test_compact_cancel_vhd),
		cmocka_unit_test(test_compact_cancel_vhdx),
		cmocka_unit_test(test_vhdx_discard_clears_bits),
		cmocka_unit_test(test_compact_cuts_vhd),
		cmocka_unit_test(test_compact_cuts_vhd_diff),
		cmocka_unit_test(test_compact_cuts_vhdx),
		cmocka_unit_test(test_compact_cuts_vhdx_diff),
		cmocka_unit_test(test_resize_cuts_vhd_grow),
		cmocka_unit_test(test_resize_cuts_vhd_shrink),
		cmocka_unit_test(test_resize_cuts_vhdx_grow),
		cmocka_unit_test(test_resize_cuts_vhdx_shrink),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
