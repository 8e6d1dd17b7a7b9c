/*
 * test_layout.c -- images laid out the way other writers lay them out,
 * built byte by byte with the codecs: Windows (locator data before the BAT
 * at 0x2000), blktap (a batmap gap after the BAT), MSB-first bitmaps with
 * mixed bits over a parent (where libvhdi goes wrong), and the chain depth
 * limit.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "endian.h"
#include "libvhd.h"
#include "vhd_codec.h"

static char dir[256];

static const char *tpath(const char *name)
{
	static char buf[8][600];
	static int k;
	char *p = buf[k++ & 7];

	snprintf(p, 600, "%s/%s", dir, name);
	return p;
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/vhdkit-layout.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void put_file(const char *path, const uint8_t *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static void footer_for(struct vhd_footer *f, uint32_t type, uint64_t size,
		       uint8_t uuid_byte)
{
	memset(f, 0, sizeof(*f));
	f->features = VHD_FEATURES_RESERVED;
	f->version = VHD_VERSION;
	f->data_offset = type == 2 ? VHD_NO_DATA_OFFSET : 512;
	memcpy(f->creator_app, "win ", 4);
	f->creator_version = 0x000A0000;
	f->creator_os = VHD_OS_WINDOWS;
	f->original_size = f->current_size = size;
	vhd_chs(size, &f->cylinders, &f->heads, &f->sectors_per_track);
	f->disk_type = type;
	memset(f->uuid, uuid_byte, 16);
}

/*
 * A Windows-style dynamic disk of 4 blocks of 64 KiB:
 *   0x0000 footer copy, 0x0200 header, 0x1000 W2ku locator data,
 *   0x2000 BAT (padded to 512), 0x2200 blktap-style gap of 1024 bytes,
 *   then blocks 2 and 0 (in that order), then the footer.
 */
static void build_windows_layout(const char *path, uint8_t fill0, uint8_t fill2)
{
	const uint32_t bs = 64 << 10, bm = 512;
	const uint64_t size = 4ull * bs;
	uint64_t blk2 = 0x2200 + 1024, blk0 = blk2 + bm + bs, foot = blk0 + bm + bs;
	uint8_t *img = calloc(1, foot + 512);
	struct vhd_footer f;
	struct vhd_header h;

	footer_for(&f, 3, size, 0x11);
	memset(&h, 0, sizeof(h));
	h.data_offset = VHD_NO_DATA_OFFSET;
	h.table_offset = 0x2000;
	h.version = VHD_VERSION;
	h.max_table_entries = 4;
	h.block_size = bs;
	vhd_footer_encode(&f, img);
	vhd_footer_encode(&f, img + foot);
	vhd_header_encode(&h, img + 512);
	memcpy(img + 0x2200, "tdbatmap", 8);	/* the gap holds something */
	for (int i = 0; i < 4; i++)
		put_be32(img + 0x2000 + 4 * i, VHD_BAT_UNUSED);
	put_be32(img + 0x2000 + 0, (uint32_t)(blk0 / 512));
	put_be32(img + 0x2000 + 8, (uint32_t)(blk2 / 512));
	memset(img + blk0, 0xFF, bm);
	memset(img + blk0 + bm, fill0, bs);
	memset(img + blk2, 0xFF, bm);
	memset(img + blk2 + bm, fill2, bs);
	put_file(path, img, foot + 512);
	free(img);
}

static void test_windows_layout(void **state)
{
	uint8_t *buf = malloc(256 << 10);
	struct vhd_check_result res = { 0 };
	vhd_disk *d;

	build_windows_layout(tpath("win.vhd"), 0xA0, 0xA2);
	assert_int_equal(vhd_open(tpath("win.vhd"), 0, NULL, &d), 0);
	assert_int_equal(vhd_size(d), 256 << 10);
	assert_int_equal(vhd_pread(d, buf, 256 << 10, 0), 256 << 10);
	for (uint32_t i = 0; i < (256u << 10); i++) {
		uint8_t want = i < (64u << 10) ? 0xA0 : i >= (128u << 10) && i < (192u << 10) ? 0xA2 : 0;
		if (buf[i] != want)
			fail_msg("byte %u is %02x, want %02x", i, buf[i], want);
	}
	vhd_close(d);
	assert_int_equal(vhd_check(tpath("win.vhd"), 0, NULL, NULL, NULL, &res), 0);
	assert_int_equal(res.errors + res.warnings, 0);

	/* Writable too: a new block lands after the others. */
	assert_int_equal(vhd_open(tpath("win.vhd"), VHD_OPEN_RDWR, NULL, &d), 0);
	memset(buf, 0x5C, 4096);
	assert_int_equal(vhd_pwrite(d, buf, 4096, (192 << 10) + 512), 4096);
	assert_int_equal(vhd_close(d), 0);
	assert_int_equal(vhd_open(tpath("win.vhd"), 0, NULL, &d), 0);
	assert_int_equal(vhd_pread(d, buf, 8192, 192 << 10), 8192);
	for (int i = 0; i < 8192; i++)
		assert_int_equal(buf[i], i >= 512 && i < 4608 ? 0x5C : 0);
	assert_int_equal(vhd_pread(d, buf, 4096, 128 << 10), 4096);
	assert_int_equal(buf[0], 0xA2);
	vhd_close(d);
	free(buf);
}

/* A child whose bitmap bytes mix set and clear bits over a parent with
 * data: every sector must come from the right layer (libvhdi reads the
 * sectors after the first set bit of a byte from the child). */
static void test_mixed_bitmap_over_parent(void **state)
{
	const uint32_t bs = 64 << 10, bm = 512;
	uint8_t *img, buf[64 << 10];
	struct vhd_create_opts po = { .format = VHD_FMT_VHD, .type = VHD_TYPE_DYNAMIC,
				      .size = bs, .block_size = bs };
	struct vhd_footer pf, f;
	struct vhd_header h;
	vhd_disk *d;
	char wrel[16] = ".\\p.vhd";
	uint64_t loc = 1536 + 512, blk = loc + 512, foot = blk + bm + bs;
	uint16_t units[16];
	int n;

	/* Parent: 0x50 everywhere. */
	assert_int_equal(vhd_create(tpath("p.vhd"), &po, &d), 0);
	memset(buf, 0x50, sizeof(buf));
	assert_int_equal(vhd_pwrite(d, buf, bs, 0), bs);
	assert_int_equal(vhd_close(d), 0);
	assert_int_equal(vhd_open(tpath("p.vhd"), 0, NULL, &d), 0);
	{
		struct vhd_info pi;
		vhd_get_info(d, &pi);
		footer_for(&pf, 3, bs, 0);
		memcpy(pf.uuid, pi.uuid, 16);
	}
	vhd_close(d);

	/* Child built by hand: bitmap byte 0 = 0xA5 (sectors 0,2,5,7 present),
	 * byte 1 = 0x01 (sector 15), child data 0xC0 everywhere. */
	img = calloc(1, foot + 512);
	footer_for(&f, 4, bs, 0x22);
	memset(&h, 0, sizeof(h));
	h.data_offset = VHD_NO_DATA_OFFSET;
	h.table_offset = 1536;
	h.version = VHD_VERSION;
	h.max_table_entries = 1;
	h.block_size = bs;
	memcpy(h.parent_uuid, pf.uuid, 16);
	n = vhd_utf8_to_utf16(wrel, units, 16);
	assert_true(n > 0);
	for (int i = 0; i < n; i++)
		put_le16(img + loc + 2 * i, units[i]);
	h.loc[0] = (struct vhd_locator){ VHD_PLAT_W2RU, 512, (uint32_t)n * 2, loc };
	vhd_footer_encode(&f, img);
	vhd_footer_encode(&f, img + foot);
	vhd_header_encode(&h, img + 512);
	memset(img + 1536, 0xFF, 512);
	put_be32(img + 1536, (uint32_t)(blk / 512));
	img[blk] = 0xA5;
	img[blk + 1] = 0x01;
	memset(img + blk + bm, 0xC0, bs);
	put_file(tpath("c.vhd"), img, foot + 512);
	free(img);

	assert_int_equal(vhd_open(tpath("c.vhd"), 0, NULL, &d), 0);
	assert_int_equal(vhd_pread(d, buf, bs, 0), bs);
	for (uint32_t s = 0; s < bs / 512; s++) {
		int present = s == 0 || s == 2 || s == 5 || s == 7 || s == 15;
		for (uint32_t i = 0; i < 512; i++)
			if (buf[s * 512 + i] != (present ? 0xC0 : 0x50))
				fail_msg("sector %u byte %u: %02x", s, i, buf[s * 512 + i]);
	}
	vhd_close(d);
}

/* 256 parents are allowed; the 257th is refused with VHD_E_CHAIN. */
static void test_chain_depth_limit(void **state)
{
	struct vhd_create_opts o = { .format = VHD_FMT_VHD, .type = VHD_TYPE_DYNAMIC,
				     .size = 1 << 20, .block_size = 64 << 10 };
	char name[64], prev[64];
	vhd_disk *d;
	uint8_t b = 0;

	assert_int_equal(vhd_create(tpath("l0.vhd"), &o, &d), 0);
	b = 0x77;
	assert_int_equal(vhd_pwrite(d, &b, 1, 1000), 1);
	vhd_close(d);
	o.type = VHD_TYPE_DIFF;
	o.size = 0;
	for (int i = 1; i <= 257; i++) {
		snprintf(prev, sizeof(prev), "l%d.vhd", i - 1);
		snprintf(name, sizeof(name), "l%d.vhd", i);
		o.parent = tpath(prev);
		if (i < 257) {
			assert_int_equal(vhd_create(tpath(name), &o, NULL), 0);
		} else {
			/* creating the 257th needs its parent chain opened: fine
			 * (256 deep); opening the new image must fail. */
			assert_int_equal(vhd_create(tpath(name), &o, NULL), 0);
		}
	}
	assert_int_equal(vhd_open(tpath("l256.vhd"), 0, NULL, &d), 0);
	b = 0;
	assert_int_equal(vhd_pread(d, &b, 1, 1000), 1);
	assert_int_equal(b, 0x77);
	vhd_close(d);
	assert_int_equal(vhd_open(tpath("l257.vhd"), 0, NULL, &d), VHD_E_CHAIN);
	assert_non_null(strstr(vhd_errmsg(NULL), "deeper than 256"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_windows_layout),
		cmocka_unit_test(test_mixed_bitmap_over_parent),
		cmocka_unit_test(test_chain_depth_limit),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
