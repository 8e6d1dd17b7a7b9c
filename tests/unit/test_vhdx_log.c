/*
 * test_vhdx_log.c -- a VHDX left with a log that was written and synced but
 * never applied (made with the crash simulator, cut right before the first
 * in-place metadata write) must replay on open: in memory for a read-only
 * open, which must not change the file, and for real on a read-write open,
 * after which the header's LogGuid is zero and the BAT holds the entry.
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
#include "vhdx_codec.h"

static char dir[256];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/vhdkit-vlog.XXXXXX");
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
	int fd = open(path, O_RDONLY);
	off_t n = lseek(fd, 0, SEEK_END);
	uint8_t *buf = malloc((size_t)n);

	assert_true(fd >= 0 && n > 0 && buf);
	assert_int_equal(pread(fd, buf, (size_t)n, 0), n);
	close(fd);
	*len = (size_t)n;
	return buf;
}

/* The current header of a VHDX file image. */
static void current_header(const uint8_t *img, struct vhdx_header *h)
{
	struct vhdx_header a, b;
	int ra = vhdx_header_decode(img + VHDX_HEADER1_OFF, &a);
	int rb = vhdx_header_decode(img + VHDX_HEADER2_OFF, &b);

	assert_true(ra == 0 || rb == 0);
	*h = ra ? b : rb ? a : (a.sequence > b.sequence ? a : b);
}

/* The first BAT entry, read straight from the file. */
static uint64_t first_bat_entry(const uint8_t *img)
{
	return get_le64(img + 3 * VHDX_MiB);	/* vhdkit puts the BAT at 3 MiB */
}

static void make_unreplayed(const char *host, const uint8_t *pattern, size_t plen)
{
	struct vhd_crashsim *sim = vhd_crashsim_new(7);
	struct vhd_open_opts oo = { .io = vhd_crashsim_factory(sim) };
	struct vhd_create_opts co = { .format = VHD_FMT_VHDX, .type = VHD_TYPE_DYNAMIC,
				      .size = 64 << 20, .block_size = 1 << 20,
				      .io = vhd_crashsim_factory(sim) };
	uint64_t w0, w1;
	vhd_disk *d;

	/* Dry run: how many writes the flush makes after the data write. */
	assert_int_equal(vhd_create("s/a.vhdx", &co, NULL), 0);
	assert_int_equal(vhd_open("s/a.vhdx", VHD_OPEN_RDWR, &oo, &d), 0);
	assert_int_equal(vhd_pwrite(d, pattern, plen, 4096), (ssize_t)plen);
	w0 = vhd_crashsim_writes(sim);
	assert_int_equal(vhd_flush(d), 0);
	w1 = vhd_crashsim_writes(sim);
	vhd_close(d);

	/* Real run, cut just before the single in-place BAT page write (the
	 * last write of the flush): the log entry is written and synced. */
	assert_int_equal(vhd_create("s/b.vhdx", &co, NULL), 0);
	assert_int_equal(vhd_open("s/b.vhdx", VHD_OPEN_RDWR, &oo, &d), 0);
	assert_int_equal(vhd_pwrite(d, pattern, plen, 4096), (ssize_t)plen);
	vhd_crashsim_cut_after(sim, w1 - w0 - 1);
	assert_true(vhd_flush(d) < 0);
	assert_true(vhd_crashsim_crashed(sim));
	assert_int_equal(vhd_crashsim_save_crash(sim, "s/b.vhdx", host, 100), 0);
	vhd_close(d);
	vhd_crashsim_free(sim);
}

static void test_replay_read_only_then_read_write(void **state)
{
	char path[300];
	uint8_t pattern[9000], buf[9000];
	struct vhdx_header h;
	size_t len, len2;
	uint8_t *before, *after;
	vhd_disk *d;

	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 7 + 3);
	snprintf(path, sizeof(path), "%s/unreplayed.vhdx", dir);
	make_unreplayed(path, pattern, sizeof(pattern));

	/* The file really holds an unapplied log. */
	before = slurp(path, &len);
	current_header(before, &h);
	assert_false(vhdx_guid_is_zero(&h.log_guid));
	assert_int_equal(vhdx_bat_state(first_bat_entry(before)), VHDX_PAYLOAD_NOT_PRESENT);

	/* Read-only: replayed in memory, the data is there, file unchanged. */
	assert_int_equal(vhd_open(path, 0, NULL, &d), 0);
	assert_int_equal(vhd_pread(d, buf, sizeof(buf), 4096), (ssize_t)sizeof(buf));
	assert_memory_equal(buf, pattern, sizeof(buf));
	vhd_close(d);
	after = slurp(path, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(before, after, len);
	free(after);

	/* Read-write: applied, LogGuid cleared, BAT entry in place. */
	assert_int_equal(vhd_open(path, VHD_OPEN_RDWR, NULL, &d), 0);
	assert_int_equal(vhd_pread(d, buf, sizeof(buf), 4096), (ssize_t)sizeof(buf));
	assert_memory_equal(buf, pattern, sizeof(buf));
	assert_int_equal(vhd_close(d), 0);
	after = slurp(path, &len2);
	current_header(after, &h);
	assert_true(vhdx_guid_is_zero(&h.log_guid));
	assert_int_equal(vhdx_bat_state(first_bat_entry(after)), VHDX_PAYLOAD_FULLY_PRESENT);
	free(after);
	free(before);

	/* And it is clean. */
	{
		struct vhd_check_result res = { 0 };
		assert_int_equal(vhd_check(path, 0, NULL, NULL, NULL, &res), 0);
		assert_int_equal(res.errors + res.warnings, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay_read_only_then_read_write),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
