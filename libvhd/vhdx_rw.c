/*
 * vhdx_rw.c -- data path of VHDX images: reads, writes, discard, zero,
 * extents, prefetch, info.
 *
 * Payload block states: FULLY_PRESENT reads the block; PARTIALLY_PRESENT
 * (differencing) reads present sectors from the block and the others from
 * the parent (LSB-first sector bitmaps); NOT_PRESENT and UNMAPPED read from
 * the parent of a differencing disk and as zeros otherwise; ZERO and
 * UNDEFINED read as zeros.  Writes allocate at the end of the file (X1):
 * FULLY_PRESENT for dynamic disks and for differencing blocks that read as
 * zeros, PARTIALLY_PRESENT for differencing blocks that read the parent.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "vhdx_image.h"

#define BITS_PER_PAGE (VHDX_PAGE * 8)

static int read_file(vhd_disk *d, void *buf, size_t len, uint64_t pos)
{
	ssize_t n = d->io->ops->pread(d->io, buf, len, pos);

	if (n < 0)
		return disk_error(d, (int)n, "read at file offset %llu: %s",
				  (unsigned long long)pos, vhd_strerror((int)n));
	if ((size_t)n < len)	/* inside a block past EOF: zeros */
		memset((uint8_t *)buf + n, 0, len - (size_t)n);
	return 0;
}

static int write_file(vhd_disk *d, const void *buf, size_t len, uint64_t pos)
{
	int rc = io_write_full(d->io, buf, len, pos);

	return rc < 0 ? disk_error(d, rc, "write at file offset %llu: %s",
				   (unsigned long long)pos, vhd_strerror(rc)) : 0;
}

/* What a state reads as, for a range this layer does not store. */
static bool state_reads_parent(const struct vhdx_image *x, uint32_t st)
{
	return x->has_parent && (st == VHDX_PAYLOAD_NOT_PRESENT ||
				 st == VHDX_PAYLOAD_UNMAPPED ||
				 st == VHDX_PAYLOAD_UNMAPPED_V095);
}

static int read_absent(vhd_disk *d, bool parent, void *buf, size_t len, uint64_t voff)
{
	if (parent)
		return disk_read_parent(d, buf, len, voff);
	memset(buf, 0, len);
	return 0;
}

/* Length of the run of equal bits from sector @s (global) up to @end; the
 * bit value in *@present. */
static int bit_run(vhd_disk *d, uint64_t s, uint64_t end, bool *present, uint64_t *run)
{
	uint64_t i = s;
	uint8_t *p;
	int rc;

	while (i < end) {
		uint64_t page = i / BITS_PER_PAGE;
		uint64_t stop = (page + 1) * BITS_PER_PAGE;
		rc = vhdx_get_sb_page(d, page, &p);
		if (rc < 0)
			return rc;
		if (stop > end)
			stop = end;
		for (; i < stop; i++) {
			bool b = vhdx_bit_test(p, i % BITS_PER_PAGE);
			if (i == s)
				*present = b;
			else if (b != *present)
				goto done;
		}
	}
done:
	*run = i - s;
	return 0;
}

static int read_block(vhd_disk *d, uint64_t block, uint8_t *buf, uint32_t boff,
		      uint32_t n)
{
	struct vhdx_image *x = XIMG(d);
	uint64_t base = block << x->block_shift;
	uint64_t e = vhdx_bat_get(x, vhdx_payload_index(x, block));
	uint32_t st = vhdx_bat_state(e);
	uint64_t s, s_end;
	int rc;

	if (st == VHDX_PAYLOAD_FULLY_PRESENT)
		return read_file(d, buf, n, vhdx_bat_offset(e) + boff);
	if (st != VHDX_PAYLOAD_PARTIALLY_PRESENT)
		return read_absent(d, state_reads_parent(x, st), buf, n, base + boff);
	s = (base + boff) / x->lsec;
	s_end = (base + boff + n + x->lsec - 1) / x->lsec;
	while (s < s_end) {
		bool present = false;
		uint64_t run, a, b;
		rc = bit_run(d, s, s_end, &present, &run);
		if (rc < 0)
			return rc;
		a = s * x->lsec;
		b = (s + run) * x->lsec;
		if (a < base + boff)
			a = base + boff;
		if (b > base + boff + n)
			b = base + boff + n;
		if (present)
			rc = read_file(d, buf + (a - base - boff), b - a,
				       vhdx_bat_offset(e) + (a - base));
		else
			rc = read_absent(d, true, buf + (a - base - boff), b - a, a);
		if (rc < 0)
			return rc;
		s += run;
	}
	return 0;
}

static ssize_t x_pread(vhd_disk *d, void *buf, size_t len, uint64_t off)
{
	struct vhdx_image *x = XIMG(d);
	uint8_t *p = buf;
	uint64_t block;
	uint32_t boff, n;
	int rc;

	FOR_EACH_BLOCK(x, off, len, block, boff, n) {
		rc = read_block(d, block, p, boff, n);
		if (rc < 0)
			return rc;
		p += n;
	}
	return (ssize_t)len;
}

/* Write into a PARTIALLY_PRESENT block: partial edge sectors not present
 * are completed from the parent first; bits set after the write (X4). */
static int write_partial(vhd_disk *d, uint64_t block, uint64_t e,
			 const uint8_t *buf, uint32_t boff, uint32_t n)
{
	struct vhdx_image *x = XIMG(d);
	uint64_t base = block << x->block_shift;
	uint32_t a = boff / x->lsec * x->lsec;
	uint32_t b = (boff + n + x->lsec - 1) / x->lsec * x->lsec;
	pthread_mutex_t *lock = &x->stripe[block % VHDX_STRIPES];
	uint8_t *tmp = NULL;
	int rc = 0;

	pthread_mutex_lock(lock);
	if (a != boff || b != boff + n) {
		tmp = malloc(b - a);
		if (!tmp) {
			rc = disk_error(d, -ENOMEM, "out of memory");
			goto out;
		}
		rc = read_block(d, block, tmp, a, x->lsec);
		if (rc == 0 && b - x->lsec > a)
			rc = read_block(d, block, tmp + (b - a - x->lsec), b - x->lsec, x->lsec);
		if (rc < 0)
			goto out;
		memcpy(tmp + (boff - a), buf, n);
		rc = write_file(d, tmp, b - a, vhdx_bat_offset(e) + a);
	} else {
		rc = write_file(d, buf, n, vhdx_bat_offset(e) + boff);
	}
	if (rc == 0)
		vhdx_mark_bits(d, (base + a) / x->lsec, (b - a) / x->lsec);
out:
	pthread_mutex_unlock(lock);
	free(tmp);
	return rc;
}

static int write_block(vhd_disk *d, uint64_t block, const uint8_t *buf,
		       uint32_t boff, uint32_t n)
{
	struct vhdx_image *x = XIMG(d);
	uint64_t e = vhdx_bat_get(x, vhdx_payload_index(x, block));
	uint32_t st = vhdx_bat_state(e);
	int rc;

	if (st != VHDX_PAYLOAD_FULLY_PRESENT && st != VHDX_PAYLOAD_PARTIALLY_PRESENT) {
		uint32_t want = state_reads_parent(x, st) ? VHDX_PAYLOAD_PARTIALLY_PRESENT
							 : VHDX_PAYLOAD_FULLY_PRESENT;
		rc = vhdx_alloc_payload(d, block, want, &e);
		if (rc < 0)
			return rc;
		st = vhdx_bat_state(e);
	}
	if (st == VHDX_PAYLOAD_FULLY_PRESENT)
		return write_file(d, buf, n, vhdx_bat_offset(e) + boff);
	return write_partial(d, block, e, buf, boff, n);
}

/* The part of the range inside its first block when that block is
 * FULLY_PRESENT (fixed VHDX blocks always are).  A write first opens the
 * write session (the header's new DataWriteGuid), as x_pwrite does. */
static uint64_t x_map(vhd_disk *d, uint64_t off, uint64_t len, bool write,
		      uint64_t *pos)
{
	struct vhdx_image *x = XIMG(d);
	uint64_t block = off >> x->block_shift;
	uint32_t boff = (uint32_t)(off & (x->block_size - 1));
	uint64_t n = len < x->block_size - boff ? len : x->block_size - boff;
	uint64_t e;

	if (write && vhdx_begin_session(d) < 0)
		return 0;
	e = vhdx_bat_get(x, vhdx_payload_index(x, block));
	if (vhdx_bat_state(e) != VHDX_PAYLOAD_FULLY_PRESENT)
		return 0;
	*pos = vhdx_bat_offset(e) + boff;
	return n;
}

static ssize_t x_pwrite(vhd_disk *d, const void *buf, size_t len, uint64_t off)
{
	struct vhdx_image *x = XIMG(d);
	const uint8_t *p = buf;
	uint64_t block;
	uint32_t boff, n;
	int rc = vhdx_begin_session(d);

	if (rc < 0)
		return rc;
	FOR_EACH_BLOCK(x, off, len, block, boff, n) {
		rc = write_block(d, block, p, boff, n);
		if (rc < 0)
			return rc;
		p += n;
	}
	return (ssize_t)len;
}

static bool whole_block(vhd_disk *d, uint32_t boff, uint32_t n, uint64_t voff)
{
	struct vhdx_image *x = XIMG(d);

	return boff == 0 && (n == x->block_size || voff + n == d->size);
}

static void punch(vhd_disk *d, uint64_t pos, uint64_t len)
{
	if (d->io->ops->punch)
		d->io->ops->punch(d->io, pos, len);
}

/* Give a whole block a new state without data; its old area is punched so
 * that a crash before the flush shows zeros there, never old data. */
static int retire_block(vhd_disk *d, uint64_t block, uint32_t state)
{
	struct vhdx_image *x = XIMG(d);
	pthread_mutex_t *lock = &x->stripe[block % VHDX_STRIPES];
	uint64_t e;

	pthread_mutex_lock(lock);
	e = vhdx_bat_get(x, vhdx_payload_index(x, block));
	/* Its sector bits go with it (same flush): a later allocation of the
	 * block must not find them set over fresh, zero space. */
	if (vhdx_bat_state(e) == VHDX_PAYLOAD_PARTIALLY_PRESENT)
		vhdx_clear_bits(d, (block << x->block_shift) / x->lsec,
				x->block_size / x->lsec);
	vhdx_set_state(d, block, vhdx_bat_make(state, 0));
	if (vhdx_bat_state(e) == VHDX_PAYLOAD_FULLY_PRESENT ||
	    vhdx_bat_state(e) == VHDX_PAYLOAD_PARTIALLY_PRESENT)
		punch(d, vhdx_bat_offset(e), x->block_size);
	pthread_mutex_unlock(lock);
	return 0;
}

static int x_discard(vhd_disk *d, uint64_t off, uint64_t len)
{
	struct vhdx_image *x = XIMG(d);
	uint64_t block;
	uint32_t boff, n;
	int rc = vhdx_begin_session(d);

	FOR_EACH_BLOCK(x, off, len, block, boff, n) {
		uint64_t voff = (block << x->block_shift) + boff;
		uint64_t e = vhdx_bat_get(x, vhdx_payload_index(x, block));
		uint32_t st = vhdx_bat_state(e);
		if (rc < 0)
			return rc;
		if (st != VHDX_PAYLOAD_FULLY_PRESENT && st != VHDX_PAYLOAD_PARTIALLY_PRESENT)
			continue;
		if (whole_block(d, boff, n, voff))
			rc = retire_block(d, block, VHDX_PAYLOAD_NOT_PRESENT);
		else if (!x->has_parent && st == VHDX_PAYLOAD_FULLY_PRESENT) {
			/* whole logical sectors only, as a VHD does */
			uint32_t a = (boff + x->lsec - 1) / x->lsec * x->lsec;
			uint32_t b = (boff + n) / x->lsec * x->lsec;
			if (b > a)
				punch(d, vhdx_bat_offset(e) + a, b - a);
		}
	}
	return rc;
}

/* Whether zeroing needs data writes (for VHD_ZERO_FAST). */
static bool zero_needs_writes(vhd_disk *d, uint64_t off, uint64_t len, unsigned flags)
{
	struct vhdx_image *x = XIMG(d);
	uint64_t block;
	uint32_t boff, n;

	FOR_EACH_BLOCK(x, off, len, block, boff, n) {
		uint64_t voff = (block << x->block_shift) + boff;
		uint32_t st = vhdx_bat_state(vhdx_bat_get(x, vhdx_payload_index(x, block)));
		bool reads_zero = st == VHDX_PAYLOAD_ZERO || st == VHDX_PAYLOAD_UNDEFINED ||
				  (!x->has_parent && st != VHDX_PAYLOAD_FULLY_PRESENT);
		if (reads_zero)
			continue;
		if (!whole_block(d, boff, n, voff) || (flags & VHD_ZERO_NOUNMAP))
			return true;
	}
	return false;
}

static int x_zero(vhd_disk *d, uint64_t off, uint64_t len, unsigned flags)
{
	struct vhdx_image *x = XIMG(d);
	uint8_t *zeros = NULL;
	uint64_t block;
	uint32_t boff, n;
	int rc;

	if ((flags & VHD_ZERO_FAST) && zero_needs_writes(d, off, len, flags))
		return -ENOTSUP;
	rc = vhdx_begin_session(d);
	FOR_EACH_BLOCK(x, off, len, block, boff, n) {
		uint64_t voff = (block << x->block_shift) + boff;
		uint32_t st = vhdx_bat_state(vhdx_bat_get(x, vhdx_payload_index(x, block)));
		bool reads_zero = st == VHDX_PAYLOAD_ZERO || st == VHDX_PAYLOAD_UNDEFINED ||
				  (!x->has_parent && st != VHDX_PAYLOAD_FULLY_PRESENT &&
				   st != VHDX_PAYLOAD_PARTIALLY_PRESENT);
		if (rc < 0)
			break;
		if (reads_zero)
			continue;
		if (whole_block(d, boff, n, voff) && !(flags & VHD_ZERO_NOUNMAP)) {
			rc = retire_block(d, block, x->has_parent ? VHDX_PAYLOAD_ZERO
								  : VHDX_PAYLOAD_NOT_PRESENT);
			continue;
		}
		if (!zeros && !(zeros = calloc(1, x->block_size))) {
			rc = disk_error(d, -ENOMEM, "out of memory");
			break;
		}
		rc = write_block(d, block, zeros, boff, n);
	}
	free(zeros);
	return rc;
}

static int x_extents(vhd_disk *d, uint64_t off, uint64_t len, layer_extent_fn fn,
		     void *opaque)
{
	struct vhdx_image *x = XIMG(d);
	uint64_t block;
	uint32_t boff, n;
	int rc;

	FOR_EACH_BLOCK(x, off, len, block, boff, n) {
		uint64_t base = block << x->block_shift;
		uint32_t st = vhdx_bat_state(vhdx_bat_get(x, vhdx_payload_index(x, block)));
		uint64_t s, s_end;

		if (st == VHDX_PAYLOAD_FULLY_PRESENT) {
			rc = fn(opaque, base + boff, n, LAYER_DATA);
		} else if (st != VHDX_PAYLOAD_PARTIALLY_PRESENT) {
			rc = fn(opaque, base + boff, n,
				state_reads_parent(x, st) ? LAYER_PARENT : LAYER_ZERO);
		} else {
			rc = 0;
			s = (base + boff) / x->lsec;
			s_end = (base + boff + n + x->lsec - 1) / x->lsec;
			while (s < s_end && rc == 0) {
				bool present = false;
				uint64_t run, a, b;
				rc = bit_run(d, s, s_end, &present, &run);
				if (rc < 0)
					return rc;
				a = s * x->lsec;
				b = (s + run) * x->lsec;
				if (a < base + boff)
					a = base + boff;
				if (b > base + boff + n)
					b = base + boff + n;
				rc = fn(opaque, a, b - a, present ? LAYER_DATA : LAYER_PARENT);
				s += run;
			}
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int x_prefetch(vhd_disk *d, uint64_t off, uint64_t len)
{
	struct vhdx_image *x = XIMG(d);
	uint64_t block;
	uint32_t boff, n;

	FOR_EACH_BLOCK(x, off, len, block, boff, n) {
		uint64_t e = vhdx_bat_get(x, vhdx_payload_index(x, block));
		uint32_t st = vhdx_bat_state(e);
		if (st == VHDX_PAYLOAD_FULLY_PRESENT || st == VHDX_PAYLOAD_PARTIALLY_PRESENT)
			disk_prefetch_file(d, vhdx_bat_offset(e) + boff, n);
		if (st != VHDX_PAYLOAD_FULLY_PRESENT && x->has_parent)
			disk_prefetch_parent(d, (block << x->block_shift) + boff, n);
	}
	return 0;
}

static int x_info(vhd_disk *d, struct vhd_info *info)
{
	struct vhdx_image *x = XIMG(d);

	info->format = VHD_FMT_VHDX;
	info->type = x->has_parent ? VHD_TYPE_DIFF :
		     x->leave_allocated ? VHD_TYPE_FIXED : VHD_TYPE_DYNAMIC;
	info->current_size = d->size;
	info->logical_sector = x->lsec;
	info->physical_sector = x->psec;
	info->block_size = x->block_size;
	info->max_table_entries = (uint32_t)(x->nentries > UINT32_MAX ? UINT32_MAX : x->nentries);
	info->blocks_allocated = (uint32_t)x->allocated;
	vhdx_guid_to_rfc(&x->page83, info->uuid);
	vhdx_guid_to_rfc(&x->hdr.data_write, info->data_write_guid);
	info->size_source = "metadata";
	if (x->has_parent) {
		vhdx_guid g;
		if (vhdx_guid_parse(x->parent_linkage, &g) == 0)
			vhdx_guid_to_rfc(&g, info->parent_uuid);
		info->parent_name = x->relative_path ? x->relative_path : x->absolute_path;
	}
	return 0;
}

static int x_close(vhd_disk *d)
{
	return vhdx_meta_close(d);
}

static void x_abandon(vhd_disk *d)
{
	vhdx_image_free(XIMG(d));
	d->priv = NULL;
}

static bool x_has_parent(vhd_disk *d)
{
	return XIMG(d)->has_parent;
}

const struct vhd_format_ops vhdx_ops = {
	.name = "vhdx",
	.pread = x_pread,
	.pwrite = x_pwrite,
	.flush = vhdx_meta_flush,
	.discard = x_discard,
	.zero = x_zero,
	.prefetch = x_prefetch,
	.extents = x_extents,
	.info = x_info,
	.close = x_close,
	.abandon = x_abandon,
	.has_parent = x_has_parent,
	.resize = vhdx_resize,
	.map = x_map,
	.compact = vhdx_compact,
	.reparent = vhdx_reparent,
	.repair = vhdx_repair,
};
