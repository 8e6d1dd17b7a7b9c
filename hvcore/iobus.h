/*
 * iobus.h -- port I/O dispatch: fixed ranges of ports, each with a handler.
 * Set up before the vCPUs start; read-only afterwards (no locking).
 */
#ifndef HVCORE_IOBUS_H
#define HVCORE_IOBUS_H

#include <stdbool.h>
#include <stdint.h>

#define IOBUS_MAX 16

/* @off is relative to the range's base; @data holds @len (1, 2, 4) bytes,
 * little-endian; a read fills it. */
typedef void (*iobus_fn)(void *opaque, uint64_t off, uint8_t *data,
			 unsigned len, bool write);

struct iobus_range {
	uint64_t base, len;
	iobus_fn fn;
	void *opaque;
};

struct iobus {
	struct iobus_range r[IOBUS_MAX];
	unsigned n;
};

/** Register [base, base + len).  -ENOSPC when full, -EEXIST on overlap. */
int iobus_add(struct iobus *b, uint64_t base, uint64_t len, iobus_fn fn,
	      void *opaque);
/** Dispatch one access; false when no range claims it (reads then see
 *  all ones, writes are dropped by the caller). */
bool iobus_access(const struct iobus *b, uint64_t addr, uint8_t *data,
		  unsigned len, bool write);

#endif /* HVCORE_IOBUS_H */
