/*
 * fuzz_open.c -- libFuzzer target for the VHD open path: footer (EOF, 511
 * and backup copies), dynamic header, BAT and block placement, parent
 * locators; then reads, extents, check, and writes on whatever opened.
 * The input is the whole image file, served from memory by the crash
 * simulator, so nothing touches the host.
 *
 * Build with libFuzzer: ./configure --enable-fuzz && make fuzz, then
 * tests/fuzz/fuzz_open tests/fuzz/corpus.  `make check` replays the corpus
 * through replay_main.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libvhd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_extent(void *opaque, const struct vhd_extent *e)
{
	(*(uint64_t *)opaque) += e->length;
	return 0;
}

static void exercise_reads(vhd_disk *d)
{
	uint64_t size = vhd_size(d), covered = 0;
	uint8_t buf[8192];

	for (uint64_t off = 0; off < size && off < (1u << 20); off += sizeof(buf)) {
		size_t n = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);
		vhd_pread(d, buf, n, off);
	}
	if (size > 3)
		vhd_pread(d, buf, 3, size - 3);
	vhd_extents(d, 0, size < (64ull << 20) ? size : (64ull << 20),
		    count_extent, &covered);
}

static void exercise_writes(vhd_disk *d)
{
	uint64_t size = vhd_size(d);
	uint8_t buf[4096];

	memset(buf, 0x5A, sizeof(buf));
	if (size >= sizeof(buf)) {
		vhd_pwrite(d, buf, sizeof(buf), 0);
		vhd_pwrite(d, buf, 1000, size / 2 - 300);
		vhd_pwrite(d, buf, sizeof(buf), size - sizeof(buf));
		vhd_discard(d, 0, size / 2);
	}
	vhd_flush(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vhd_crashsim *sim = vhd_crashsim_new(1);
	struct vhd_open_opts o = { .format = VHD_FMT_VHD };
	struct vhd_check_result res = { 0 };
	vhd_disk *d;

	if (!sim)
		return 0;
	o.io = vhd_crashsim_factory(sim);
	if (vhd_crashsim_load_buf(sim, "f/img.vhd", data, size) < 0)
		goto out;
	if (vhd_open("f/img.vhd", 0, &o, &d) == 0) {
		exercise_reads(d);
		vhd_close(d);
	}
	vhd_check("f/img.vhd", 0, &o, NULL, NULL, &res);
	if (vhd_open("f/img.vhd", VHD_OPEN_RDWR, &o, &d) == 0) {
		exercise_writes(d);
		vhd_close(d);
		vhd_check("f/img.vhd", 0, &o, NULL, NULL, &res);
	}
out:
	vhd_crashsim_free(sim);
	return 0;
}
