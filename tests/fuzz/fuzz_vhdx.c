/*
 * fuzz_vhdx.c -- libFuzzer target for the VHDX open path: headers, region
 * tables, metadata, log entries (replayed), BAT; then reads, extents,
 * check and writes on whatever opened.
 *
 * A VHDX is at least 4 MiB (every region is 1 MiB aligned), too big to
 * fuzz whole, so the input is scattered into an 8 MiB image at the places
 * vhdkit and qemu put things:
 *   input [0, 320 KiB)        -> file 0        identifier, headers, region tables
 *   input [320 KiB, 384 KiB)  -> file 1 MiB    the log
 *   input [384 KiB, 512 KiB)  -> file 2 MiB    metadata table and items
 *   input [512 KiB, 576 KiB)  -> file 3 MiB    the BAT
 * The rest of the image is zeros.  Seeds: tests/fuzz/make-corpus.sh.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libvhd.h"

#define KiB 1024u
#define MiB (1024u * 1024u)
#define IMAGE_SIZE (8u * MiB)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct { size_t in, len, out; } segs[] = {
	{ 0, 320 * KiB, 0 },
	{ 320 * KiB, 64 * KiB, 1 * MiB },
	{ 384 * KiB, 128 * KiB, 2 * MiB },
	{ 512 * KiB, 64 * KiB, 3 * MiB },
};

static int count_extent(void *opaque, const struct vhd_extent *e)
{
	(*(uint64_t *)opaque) += e->length;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vhd_crashsim *sim = vhd_crashsim_new(1);
	struct vhd_open_opts o = { .format = VHD_FMT_VHDX };
	struct vhd_check_result res = { 0 };
	uint8_t *img = calloc(1, IMAGE_SIZE), buf[4096];
	uint64_t covered = 0;
	vhd_disk *d;

	if (!sim || !img)
		goto out;
	for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
		if (size <= segs[i].in)
			break;
		size_t n = size - segs[i].in < segs[i].len ? size - segs[i].in : segs[i].len;
		memcpy(img + segs[i].out, data + segs[i].in, n);
	}
	o.io = vhd_crashsim_factory(sim);
	if (vhd_crashsim_load_buf(sim, "f/img.vhdx", img, IMAGE_SIZE) < 0)
		goto out;
	if (vhd_open("f/img.vhdx", 0, &o, &d) == 0) {
		uint64_t dsize = vhd_size(d);
		for (uint64_t off = 0; off < dsize && off < 4 * MiB; off += 64 * KiB)
			vhd_pread(d, buf, dsize - off < sizeof(buf) ? (size_t)(dsize - off) : sizeof(buf), off);
		vhd_extents(d, 0, dsize < 256ull * MiB ? dsize : 256ull * MiB, count_extent, &covered);
		vhd_close(d);
	}
	vhd_check("f/img.vhdx", 0, &o, NULL, NULL, &res);
	if (vhd_open("f/img.vhdx", VHD_OPEN_RDWR, &o, &d) == 0) {
		memset(buf, 0x5A, sizeof(buf));
		if (vhd_size(d) >= 3 * MiB) {
			vhd_pwrite(d, buf, sizeof(buf), 0);
			vhd_pwrite(d, buf, 1000, 2 * MiB + 300);
			vhd_zero(d, MiB, MiB, 0);
		}
		vhd_flush(d);
		vhd_close(d);
	}
out:
	free(img);
	vhd_crashsim_free(sim);
	return 0;
}
