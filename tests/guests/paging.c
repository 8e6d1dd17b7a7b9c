/* paging.c -- identity mappings above 4 GiB, for BARs that firmware put
 * there (QEMU's SeaBIOS may place 64-bit BARs high; hvcore's BAR0 is
 * always below 4 GiB and needs none of this).
 *
 * boot.S maps [0, 4 GiB) statically; here, running at CPL3, 2 MiB pages
 * are added by writing the page tables directly (they are in the identity
 * map, writable at CPL3: this is a test guest).  The entries written were
 * not present before, so no TLB entry can be stale and no INVLPG (a CPL0
 * instruction) is needed. */
#include "guest.h"
#include "x86.h"

extern uint64_t pml4[512], pt_spare[4][512];
static int spare_used;

/* The table an entry points to, taking a spare one if it is not present. */
static uint64_t *next_table(uint64_t *entry)
{
	uint64_t *t;

	if (*entry & PTE_P)
		return (uint64_t *)(uintptr_t)(*entry & ~0xfffull);
	if (spare_used == ARRAY_SIZE(pt_spare))
		return NULL;
	t = pt_spare[spare_used++];
	memset(t, 0, 4096);
	barrier();
	*entry = (uint64_t)(uintptr_t)t | PTE_TABLE;
	return t;
}

int map_identity(uint64_t phys, uint64_t len)
{
	uint64_t a;

	if (phys + len <= 4ull << 30)
		return 0;
	for (a = phys & ~(2 * MiB - 1); a < phys + len; a += 2 * MiB) {
		uint64_t *pdpt = next_table(&pml4[(a >> 39) & 511]);
		uint64_t *pd = pdpt ? next_table(&pdpt[(a >> 30) & 511]) : NULL;

		if (!pd)
			return -1;
		if (pd[(a >> 21) & 511] & PTE_P)
			continue;
		pd[(a >> 21) & 511] = a | PTE_2M_UC;
	}
	return 0;
}
