/* plan.h -- what test=rw does to each writable disk, as data.
 *
 * Compiled into the guest (which carries the steps out, reading every
 * write back) and into the host helper blkexpect (which applies the same
 * steps to a raw copy of the disk's initial content, giving the image the
 * run must leave behind).  The steps depend only on the disk's size,
 * logical block size and the features it offers, all of which the guest
 * prints in its "GUEST DISK" line.
 *
 * Offsets and lengths are bytes, multiples of the logical block size B;
 * they are placed against 2 MiB (VHD dynamic block) and 32 MiB (VHDX
 * default block) boundaries.  Steps that do not fit the disk are left out.
 * A discarded range is always written again afterwards (what a discarded
 * range reads back is unspecified), so the final content is exact. */
#ifndef GUEST_PLAN_H
#define GUEST_PLAN_H
#include <stdbool.h>
#include <stdint.h>

enum plan_op {
	PLAN_WRITE,		/* pattern generation gen */
	PLAN_DISCARD,
	PLAN_ZERO,		/* WRITE_ZEROES */
	PLAN_ZERO_UNMAP,	/* WRITE_ZEROES with the UNMAP flag */
	PLAN_FLUSH,
};

struct plan_step {
	uint8_t op;		/* enum plan_op */
	uint8_t gen;		/* PLAN_WRITE: the pattern generation (>= 1) */
	bool odd;		/* data segments cut off the 512-byte grid */
	uint16_t segs;		/* data buffers per request */
	uint16_t reqs;		/* requests in flight together (range split evenly) */
	uint64_t off, len;	/* bytes */
	const char *what;
};

struct plan_disk {
	uint64_t size;		/* bytes */
	uint32_t blk;		/* logical block size */
	bool discard, wzeroes;	/* features the device offered */
};

#define PLAN_MAX 32
#define PLAN_CHUNK (256 * 1024)	/* the largest single request the guest sends */

/* Fills s (PLAN_MAX entries); returns the number of steps. */
int plan_rw(const struct plan_disk *d, struct plan_step *s);
/* test=bad: the one write that proves the device still works. */
int plan_bad(const struct plan_disk *d, struct plan_step *s);
/* A sector's content after steps [0, n): its generation, 0 for zeros,
 * -1 when no step touched it, -2 when unspecified (discarded last). */
int plan_expect(const struct plan_step *s, int n, uint64_t sector);

#endif
