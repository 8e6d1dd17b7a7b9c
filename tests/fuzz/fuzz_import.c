/*
 * fuzz_import.c -- libFuzzer target for the read-only import formats
 * (qcow2, VMDK) and format detection: the input is the whole file, served
 * from memory; a second file "f/b" (its first 4 KiB) gives backing-file
 * and extent names something to find.  Opens, reads, walks extents, checks.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vhd_crashsim *sim = vhd_crashsim_new(1);
	struct vhd_open_opts o = { .format = VHD_FMT_AUTO };
	struct vhd_check_result res = { 0 };
	static uint8_t buf[70000];
	struct vhd_info info;
	uint64_t covered = 0;
	vhd_disk *d;

	if (!sim)
		return 0;
	o.io = vhd_crashsim_factory(sim);
	vhd_crashsim_load_buf(sim, "f/b", data, size > 4096 ? 4096 : size);
	vhd_crashsim_load_buf(sim, "f/img", data, size);
	if (vhd_open("f/img", 0, &o, &d) == 0) {
		uint64_t sz = vhd_size(d);
		for (uint64_t off = 0; off < sz && off < (2u << 20); off += 65536 + 17) {
			size_t n = sz - off < sizeof(buf) ? (size_t)(sz - off) : sizeof(buf);
			vhd_pread(d, buf, n, off);
		}
		if (sz > 3)
			vhd_pread(d, buf, 3, sz - 3);
		vhd_extents(d, 0, sz < (1ull << 30) ? sz : (1ull << 30), count_extent, &covered);
		vhd_get_info(d, &info);
		vhd_close(d);
	}
	vhd_check("f/img", 0, &o, NULL, NULL, &res);
	vhd_crashsim_free(sim);
	return 0;
}
