/* pattern.h -- the data the guest writes, recomputable on the host.
 *
 * Compiled into the guest and into the host helper blkexpect, so both
 * agree byte for byte.  Every 512-byte unit ("sector", byte offset / 512,
 * also on 4096-byte-sector disks) written in generation gen holds 64
 * little-endian words:
 *   word 0    'V' 'K' 'G' 'P' disk gen 0 0    (a tag for hexdump readers)
 *   word 1    the sector number
 *   word 2-63 mix(seed, disk, gen, sector, word index)
 * so a sector in the wrong place, of the wrong disk or of a stale
 * generation never matches. */
#ifndef GUEST_PATTERN_H
#define GUEST_PATTERN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pattern_key {
	uint64_t seed;
	uint32_t disk;
};

void pattern_fill(void *buf, const struct pattern_key *k, unsigned gen, uint64_t sector,
		  uint64_t nsectors);
/* Returns the byte offset of the first difference, or -1 when buf holds
 * exactly the pattern (gen 0 means zeros). */
int64_t pattern_check(const void *buf, const struct pattern_key *k, unsigned gen,
		      uint64_t sector, uint64_t nsectors);

#endif
