/*
 * gmem.h -- guest physical memory as device code sees it.
 *
 * Guest RAM is one host mapping split into two guest ranges:
 *
 *   guest [0, low_size)                      -> host [0, low_size)
 *   guest [4 GiB, 4 GiB + high_size)         -> host [low_size, low_size + high_size)
 *
 * low_size is at most 3 GiB; [3 GiB, 4 GiB) is the MMIO hole.  Device code
 * touches guest memory only through gmem_ptr(), which returns a host pointer
 * for a range lying wholly inside one RAM range, or NULL.  The mapping never
 * changes while the VM runs, so a pointer stays valid until the VM is torn
 * down (the guest can still change the bytes under it at any time: copy
 * what you validate).
 *
 * No KVM dependency: the virtqueue parser and its fuzz target use it too.
 */
#ifndef HVCORE_GMEM_H
#define HVCORE_GMEM_H

#include <stddef.h>
#include <stdint.h>

#define GMEM_HIGH_BASE (4ULL << 30)	/* where RAM above the hole starts */
#define GMEM_LOW_MAX   (3ULL << 30)	/* RAM below the hole ends here at most */

struct gmem {
	uint8_t *host;		/* low RAM, then high RAM, contiguous */
	uint64_t low_size;	/* bytes of RAM at guest address 0 */
	uint64_t high_size;	/* bytes of RAM at GMEM_HIGH_BASE */
};

/* Host pointer for guest [gpa, gpa + len), or NULL when any byte of it is
 * not RAM.  Overflow-safe for any gpa and len. */
static inline void *gmem_ptr(const struct gmem *m, uint64_t gpa, uint64_t len)
{
	if (gpa < m->low_size) {
		if (len > m->low_size - gpa)
			return NULL;
		return m->host + gpa;
	}
	if (gpa >= GMEM_HIGH_BASE && gpa - GMEM_HIGH_BASE < m->high_size) {
		uint64_t off = gpa - GMEM_HIGH_BASE;

		if (len > m->high_size - off)
			return NULL;
		return m->host + m->low_size + off;
	}
	return NULL;
}

#endif /* HVCORE_GMEM_H */
