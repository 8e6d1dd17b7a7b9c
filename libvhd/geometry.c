/*
 * geometry.c -- CHS geometry and the creator-aware virtual size rule.
 */
#include <string.h>

#include "libvhd.h"
#include "vhd_codec.h"

/* The VHD specification's algorithm (Appendix: CHS calculation); qemu,
 * blktap and VirtualBox compute the same. */
void vhd_chs(uint64_t size, uint16_t *cyl, uint8_t *heads, uint8_t *spt)
{
	uint64_t ts = size / VHD_SECTOR;
	uint64_t s, h, cth;

	if (ts > VHD_CHS_MAX_SECTORS)
		ts = VHD_CHS_MAX_SECTORS;
	if (ts >= 65535ull * 16 * 63) {
		s = 255;
		h = 16;
		cth = ts / s;
	} else {
		s = 17;
		cth = ts / s;
		h = (cth + 1023) / 1024;
		if (h < 4)
			h = 4;
		if (cth >= h * 1024 || h > 16) {
			s = 31;
			h = 16;
			cth = ts / s;
		}
		if (cth >= h * 1024) {
			s = 63;
			h = 16;
			cth = ts / s;
		}
	}
	*cyl = (uint16_t)(cth / h);
	*heads = (uint8_t)h;
	*spt = (uint8_t)s;
}

void vhd_chs_from_size(uint64_t size, uint16_t *cyl, uint8_t *heads,
		       uint8_t *spt)
{
	vhd_chs(size, cyl, heads, spt);
}

/*
 * Which size to trust (vhd-facts 1.6).  Virtual PC, Virtual Server and old
 * qemu used the CHS geometry as the disk size; every later writer (Hyper-V,
 * Disk2vhd, blktap, VirtualBox, Azure, qemu force_size) stores the exact size
 * in current_size.  Rule: current_size, unless the creator is one of the CHS
 * era and the CHS size does not exceed current_size; CHS 65535/16/255 is a
 * "use current_size" marker.
 */
uint64_t vhd_footer_virtual_size(const struct vhd_footer *f, int rule,
				 const char **source)
{
	uint64_t chs = vhd_chs_bytes(f->cylinders, f->heads,
				     f->sectors_per_track);
	bool chs_era = !memcmp(f->creator_app, "vpc ", 4) ||
		       !memcmp(f->creator_app, "vs  ", 4) ||
		       !memcmp(f->creator_app, "qemu", 4);
	bool max_chs = f->cylinders == 65535 && f->heads == 16 &&
		       f->sectors_per_track == 255;

	if (rule == VHD_SIZE_CHS && !max_chs && chs && chs <= f->current_size) {
		*source = "chs";
		return chs;
	}
	if (rule == VHD_SIZE_AUTO && chs_era && !max_chs && chs &&
	    chs <= f->current_size) {
		*source = "chs";
		return chs;
	}
	*source = "current";
	return f->current_size;
}
