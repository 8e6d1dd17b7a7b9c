/*
 * compare.c -- content equality of two disks of any formats (chains
 * included).  Ranges that are zero extents on both sides are not read;
 * elsewhere both are read in 1 MiB pieces and compared.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "disk.h"

#define PIECE (1u << 20)

struct zero_map {
	uint64_t *start, *end;	/* zero extents, sorted */
	size_t n, cap;
};

static int collect_zero(void *opaque, const struct vhd_extent *e)
{
	struct zero_map *z = opaque;

	if (e->type != VHD_EXT_ZERO)
		return 0;
	if (z->n == z->cap) {
		size_t cap = z->cap ? z->cap * 2 : 64;
		uint64_t *s = realloc(z->start, cap * sizeof(uint64_t));
		uint64_t *t = s ? realloc(z->end, cap * sizeof(uint64_t)) : NULL;
		if (!s || !t) {
			if (s)
				z->start = s;
			return -ENOMEM;
		}
		z->start = s;
		z->end = t;
		z->cap = cap;
	}
	z->start[z->n] = e->offset;
	z->end[z->n++] = e->offset + e->length;
	return 0;
}

/* Bytes from @off that are zero extents in @z (0 if @off is not in one). */
static uint64_t zero_run(const struct zero_map *z, size_t *cursor, uint64_t off)
{
	while (*cursor < z->n && z->end[*cursor] <= off)
		(*cursor)++;
	if (*cursor < z->n && z->start[*cursor] <= off)
		return z->end[*cursor] - off;
	return 0;
}

int vhd_compare(vhd_disk *a, vhd_disk *b, uint64_t *first_diff)
{
	struct zero_map za = { 0 }, zb = { 0 };
	uint64_t common = a->size < b->size ? a->size : b->size;
	uint64_t big = a->size > b->size ? a->size : b->size;
	uint8_t *ba = malloc(PIECE), *bb = malloc(PIECE);
	size_t ca = 0, cb = 0;
	uint64_t off = 0;
	int rc = 0;

	*first_diff = UINT64_MAX;
	if (!ba || !bb) {
		rc = -ENOMEM;
		goto out;
	}
	rc = vhd_extents(a, 0, a->size, collect_zero, &za);
	if (rc == 0)
		rc = vhd_extents(b, 0, b->size, collect_zero, &zb);
	if (rc < 0)
		goto out;
	while (off < big) {
		uint64_t ra = off < a->size ? zero_run(&za, &ca, off) : big - off;
		uint64_t rb = off < b->size ? zero_run(&zb, &cb, off) : big - off;
		uint64_t skip = ra < rb ? ra : rb;
		size_t n;
		if (skip) {
			off += skip;
			continue;
		}
		n = big - off < PIECE ? (size_t)(big - off) : PIECE;
		/* Stop at the next zero extent on either side so it is skipped. */
		for (size_t i = ca; i < za.n && za.start[i] < off + n; i++)
			if (za.start[i] > off) {
				n = (size_t)(za.start[i] - off);
				break;
			}
		for (size_t i = cb; i < zb.n && zb.start[i] < off + n; i++)
			if (zb.start[i] > off) {
				n = (size_t)(zb.start[i] - off);
				break;
			}
		if (off < common && off + n > common)
			n = (size_t)(common - off);
		if (off < a->size && vhd_pread(a, ba, n, off) < 0) {
			rc = disk_error(a, -EIO, "%s", vhd_errmsg(a) + strlen(a->path) + 2);
			goto out;
		}
		if (off >= a->size)
			memset(ba, 0, n);
		if (off < b->size && vhd_pread(b, bb, n, off) < 0) {
			rc = disk_error(b, -EIO, "%s", vhd_errmsg(b) + strlen(b->path) + 2);
			goto out;
		}
		if (off >= b->size)
			memset(bb, 0, n);
		if (memcmp(ba, bb, n)) {
			for (size_t i = 0; i < n; i++)
				if (ba[i] != bb[i]) {
					*first_diff = off + i;
					break;
				}
			rc = 1;
			goto out;
		}
		off += n;
	}
out:
	free(za.start);
	free(za.end);
	free(zb.start);
	free(zb.end);
	free(ba);
	free(bb);
	return rc;
}
