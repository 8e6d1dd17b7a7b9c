/*
 * iobus.c -- see iobus.h.
 */
#include <errno.h>

#include "iobus.h"

int iobus_add(struct iobus *b, uint64_t base, uint64_t len, iobus_fn fn,
	      void *opaque)
{
	for (unsigned i = 0; i < b->n; i++)
		if (base < b->r[i].base + b->r[i].len && b->r[i].base < base + len)
			return -EEXIST;
	if (b->n == IOBUS_MAX)
		return -ENOSPC;
	b->r[b->n++] = (struct iobus_range){ base, len, fn, opaque };
	return 0;
}

bool iobus_access(const struct iobus *b, uint64_t addr, uint8_t *data,
		  unsigned len, bool write)
{
	for (unsigned i = 0; i < b->n; i++) {
		const struct iobus_range *r = &b->r[i];

		if (addr >= r->base && addr - r->base < r->len) {
			r->fn(r->opaque, addr - r->base, data, len, write);
			return true;
		}
	}
	return false;
}
