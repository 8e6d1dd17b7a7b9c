/*
 * vhd_rw.c -- data path of VHD images: reads, writes, discard, zero,
 * extents and info, for fixed and for sparse (dynamic/differencing) disks.
 *
 * Sparse reads: per block, an unallocated block or a clear sector bit reads
 * from the parent (differencing) or as zeros (dynamic); set bits read the
 * block's data.  Sparse writes go straight to the block's data when every
 * touched sector is already present; otherwise, under the block's stripe
 * lock, partial sectors that are not present are first filled from what the
 * layer shows (parent or zeros), and the bits are set after the data write
 * returns (they reach the disk at the next flush, after a sync: I3).
 * With realign on, a small write first moves a misaligned block to an
 * aligned place, and I/O on a block that may still move pins it
 * (vhd_realign.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "vhd_image.h"

static inline uint64_t block_data_off(const struct vhd_image *v, uint32_t entry)
{
	return (uint64_t)entry * VHD_SECTOR + v->bitmap_size;
}

static int read_data(vhd_disk *d, void *buf, size_t len, uint64_t pos)
{
	int rc = io_read_full(d->io, buf, len, pos);

	if (rc < 0)
		return disk_error(d, rc, "read at file offset %llu: %s",
				  (unsigned long long)pos, vhd_strerror(rc));
	return 0;
}

static int write_data(vhd_disk *d, const void *buf, size_t len, uint64_t pos)
{
	int rc = io_write_full(d->io, buf, len, pos);

	if (rc < 0)
		return disk_error(d, rc, "write at file offset %llu: %s",
				  (unsigned long long)pos, vhd_strerror(rc));
	return 0;
}

/* What this layer shows where it stores nothing. */
static int read_absent(vhd_disk *d, void *buf, size_t len, uint64_t off)
{
	if (IMG(d)->type == VHD_TYPE_DIFF)
		return disk_read_parent(d, buf, len, off);
	memset(buf, 0, len);
	return 0;
}

/* Read [boff, boff+n) of block @block (n within the block), which is at
 * @entry and pinned there (vhd_pin_block). */
static int read_block_at(vhd_disk *d, uint32_t block, uint32_t entry,
			 uint8_t *buf, uint32_t boff, uint32_t n)
{
	struct vhd_image *v = IMG(d);
	uint64_t voff = ((uint64_t)block << v->block_shift) + boff;
	uint32_t s, s_end;
	uint8_t *bm;
	int rc;

	if (entry == VHD_BAT_UNUSED)
		return read_absent(d, buf, n, voff);
	rc = vhd_get_bitmap(d, block, &bm);
	if (rc < 0)
		return rc;
	if (bm == BITMAP_FULL)
		return read_data(d, buf, n, block_data_off(v, entry) + boff);
	s = boff / VHD_SECTOR;
	s_end = (boff + n + VHD_SECTOR - 1) / VHD_SECTOR;
	while (s < s_end) {
		bool present;
		uint32_t run = vhd_bit_run(bm, s, s_end, &present);
		uint32_t a = s * VHD_SECTOR, b = (s + run) * VHD_SECTOR;
		if (a < boff)
			a = boff;
		if (b > boff + n)
			b = boff + n;
		if (present)
			rc = read_data(d, buf + (a - boff), b - a,
				       block_data_off(v, entry) + a);
		else
			rc = read_absent(d, buf + (a - boff), b - a,
					 ((uint64_t)block << v->block_shift) + a);
		if (rc < 0)
			return rc;
		s += run;
	}
	return 0;
}

static int read_block(vhd_disk *d, uint32_t block, uint8_t *buf, uint32_t boff,
		      uint32_t n)
{
	pthread_rwlock_t *pin;
	uint32_t entry = vhd_pin_block(IMG(d), block, &pin);
	int rc = read_block_at(d, block, entry, buf, boff, n);

	vhd_unpin_block(pin);
	return rc;
}

static ssize_t sparse_pread(vhd_disk *d, void *buf, size_t len, uint64_t off)
{
	struct vhd_image *v = IMG(d);
	uint8_t *p = buf;
	uint32_t block, boff, n;
	int rc;

	FOR_EACH_BLOCK(v, off, len, block, boff, n) {
		rc = read_block(d, block, p, boff, n);
		if (rc < 0)
			return rc;
		p += n;
	}
	return (ssize_t)len;
}

static pthread_mutex_t *stripe_of(struct vhd_image *v, uint32_t block)
{
	return &v->stripe[block % VHD_STRIPES];
}

/* Write with partial edge sectors completed from what the layer shows. */
static int write_merged(vhd_disk *d, uint32_t block, uint32_t entry,
			const uint8_t *buf, uint32_t boff, uint32_t n)
{
	struct vhd_image *v = IMG(d);
	uint32_t a = boff & ~(VHD_SECTOR - 1);
	uint32_t b = (boff + n + VHD_SECTOR - 1) & ~(VHD_SECTOR - 1);
	uint8_t *tmp;
	int rc;

	if (a == boff && b == boff + n)
		return write_data(d, buf, n, block_data_off(v, entry) + boff);
	tmp = malloc(b - a);
	if (!tmp)
		return disk_error(d, -ENOMEM, "out of memory");
	rc = read_block_at(d, block, entry, tmp, a, VHD_SECTOR);
	if (rc == 0 && b - VHD_SECTOR > a)
		rc = read_block_at(d, block, entry, tmp + (b - a - VHD_SECTOR),
				   b - VHD_SECTOR, VHD_SECTOR);
	if (rc == 0) {
		memcpy(tmp + (boff - a), buf, n);
		rc = write_data(d, tmp, b - a, block_data_off(v, entry) + a);
	}
	free(tmp);
	return rc;
}

/* Write to block @block, which is at @entry and pinned there. */
static int write_block_at(vhd_disk *d, uint32_t block, uint32_t entry,
			  const uint8_t *buf, uint32_t boff, uint32_t n)
{
	struct vhd_image *v = IMG(d);
	uint32_t s0 = boff / VHD_SECTOR;
	uint32_t s1 = (boff + n + VHD_SECTOR - 1) / VHD_SECTOR;
	pthread_mutex_t *lock;
	uint8_t *bm;
	int rc;

	if (entry == VHD_BAT_UNUSED) {
		rc = vhd_alloc_block(d, block, &entry);
		if (rc < 0)
			return rc;
	}
	rc = vhd_get_bitmap(d, block, &bm);
	if (rc < 0)
		return rc;
	if (bm == BITMAP_FULL || vhd_bits_all_set(bm, s0, s1))
		return write_data(d, buf, n, block_data_off(v, entry) + boff);

	lock = stripe_of(v, block);
	pthread_mutex_lock(lock);
	/* A concurrent discard may have unmapped the block. */
	entry = bat_get(v, block);
	if (entry == VHD_BAT_UNUSED) {
		pthread_mutex_unlock(lock);
		return write_block_at(d, block, entry, buf, boff, n);
	}
	rc = write_merged(d, block, entry, buf, boff, n);
	if (rc == 0)
		vhd_mark_bits(d, block, s0, s1);
	pthread_mutex_unlock(lock);
	return rc;
}

static int write_block(vhd_disk *d, uint32_t block, const uint8_t *buf,
		       uint32_t boff, uint32_t n)
{
	struct vhd_image *v = IMG(d);
	pthread_rwlock_t *pin;
	uint32_t entry;
	int rc;

	if (n < VHD_REALIGN_BELOW && vhd_entry_may_move(v, bat_get(v, block))) {
		rc = vhd_realign_block(d, block);
		if (rc < 0)
			return rc;
	}
	entry = vhd_pin_block(v, block, &pin);
	rc = write_block_at(d, block, entry, buf, boff, n);
	vhd_unpin_block(pin);
	return rc;
}

/* Sparse disks: the part of the range inside its first block, when that
 * block is allocated and every touched sector is present (the same test as
 * write_block's direct case, so a direct write changes no bitmap). */
static uint64_t sparse_map(vhd_disk *d, uint64_t off, uint64_t len, bool write,
			   uint64_t *pos)
{
	struct vhd_image *v = IMG(d);
	uint32_t block = (uint32_t)(off >> v->block_shift);
	uint32_t boff = (uint32_t)(off & (v->block_size - 1));
	uint64_t n = len < v->block_size - boff ? len : v->block_size - boff;
	uint32_t entry = bat_get(v, block);
	uint8_t *bm;

	(void)write;
	/* A block that may still move is reached only through the locked
	 * paths (vhd_realign.c). */
	if (entry == VHD_BAT_UNUSED || vhd_entry_may_move(v, entry) ||
	    vhd_get_bitmap(d, block, &bm) < 0)
		return 0;
	if (bm != BITMAP_FULL &&
	    !vhd_bits_all_set(bm, boff / VHD_SECTOR,
			      (uint32_t)((boff + n + VHD_SECTOR - 1) / VHD_SECTOR)))
		return 0;
	*pos = block_data_off(v, entry) + boff;
	return n;
}

static ssize_t sparse_pwrite(vhd_disk *d, const void *buf, size_t len,
			     uint64_t off)
{
	struct vhd_image *v = IMG(d);
	const uint8_t *p = buf;
	uint32_t block, boff, n;
	int rc;

	FOR_EACH_BLOCK(v, off, len, block, boff, n) {
		rc = write_block(d, block, p, boff, n);
		if (rc < 0)
			return rc;
		p += n;
	}
	return (ssize_t)len;
}

static int punch_or_zero(vhd_disk *d, uint64_t pos, uint64_t len)
{
	int rc = -EOPNOTSUPP;

	if (d->io->ops->punch)
		rc = d->io->ops->punch(d->io, pos, len);
	if (rc == -EOPNOTSUPP || rc == -ENOTTY || rc == -EINVAL)
		return write_zeros(d, d->io, pos, len);
	if (rc < 0)
		return disk_error(d, rc, "punching hole: %s", vhd_strerror(rc));
	return 0;
}

/* Drop a whole block: unmapped in memory now, in the BAT at the next flush.
 * Its area reads as zeros at once, so that a crash before the flush shows a
 * block of zeros (dynamic) or of absent sectors (differencing) there. */
static int drop_block(vhd_disk *d, uint32_t block)
{
	struct vhd_image *v = IMG(d);
	pthread_mutex_t *lock = stripe_of(v, block);
	pthread_rwlock_t *pin;
	uint32_t entry;
	int rc = 0;

	vhd_pin_block(v, block, &pin);
	pthread_mutex_lock(lock);
	entry = bat_get(v, block);
	if (entry != VHD_BAT_UNUSED) {
		vhd_unmap_block(d, block);
		if (d->io->ops->punch)
			rc = punch_or_zero(d, (uint64_t)entry * VHD_SECTOR,
					   block_total(v));
		else
			rc = write_zeros(d, d->io, (uint64_t)entry * VHD_SECTOR,
					 v->bitmap_size);
	}
	pthread_mutex_unlock(lock);
	vhd_unpin_block(pin);
	return rc;
}

/* Whole blocks inside [off, off+len) that also lie inside the disk. */
static bool whole_block(vhd_disk *d, uint32_t boff, uint32_t n, uint64_t voff)
{
	struct vhd_image *v = IMG(d);

	return boff == 0 && (n == v->block_size || voff + n == d->size);
}

static int sparse_discard(vhd_disk *d, uint64_t off, uint64_t len)
{
	struct vhd_image *v = IMG(d);
	uint32_t block, boff, n;
	int rc;

	FOR_EACH_BLOCK(v, off, len, block, boff, n) {
		uint64_t voff = ((uint64_t)block << v->block_shift) + boff;
		uint32_t entry = bat_get(v, block);
		pthread_rwlock_t *pin;
		uint8_t *bm;

		if (entry == VHD_BAT_UNUSED)
			continue;
		if (whole_block(d, boff, n, voff)) {
			rc = drop_block(d, block);
		} else if (v->type == VHD_TYPE_DYNAMIC) {
			/* Present sectors of a dynamic block may read as
			 * zeros: punch the aligned part. */
			uint32_t a = (boff + VHD_SECTOR - 1) & ~(VHD_SECTOR - 1);
			uint32_t b = (boff + n) & ~(VHD_SECTOR - 1);
			entry = vhd_pin_block(v, block, &pin);
			rc = vhd_get_bitmap(d, block, &bm);
			if (rc == 0 && entry != VHD_BAT_UNUSED && b > a &&
			    d->io->ops->punch)
				rc = punch_or_zero(d, block_data_off(v, entry) + a,
						   b - a);
			vhd_unpin_block(pin);
		} else {
			rc = 0;	/* advisory: keep partial differencing data */
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Whether zeroing [off, off+len) needs data writes (not only unmapping). */
static bool zero_needs_writes(vhd_disk *d, uint64_t off, uint64_t len,
			      unsigned flags)
{
	struct vhd_image *v = IMG(d);
	uint32_t block, boff, n;

	if (v->type == VHD_TYPE_DIFF)
		return true;
	FOR_EACH_BLOCK(v, off, len, block, boff, n) {
		uint64_t voff = ((uint64_t)block << v->block_shift) + boff;
		if (bat_get(v, block) == VHD_BAT_UNUSED)
			continue;
		if (!whole_block(d, boff, n, voff) || (flags & VHD_ZERO_NOUNMAP))
			return true;
	}
	return false;
}

static int sparse_zero(vhd_disk *d, uint64_t off, uint64_t len, unsigned flags)
{
	struct vhd_image *v = IMG(d);
	uint32_t block, boff, n;
	uint8_t *zeros = NULL;
	int rc = 0;

	if ((flags & VHD_ZERO_FAST) && zero_needs_writes(d, off, len, flags))
		return -ENOTSUP;
	FOR_EACH_BLOCK(v, off, len, block, boff, n) {
		uint64_t voff = ((uint64_t)block << v->block_shift) + boff;
		uint32_t entry = bat_get(v, block);

		if (v->type == VHD_TYPE_DYNAMIC && entry == VHD_BAT_UNUSED)
			continue;
		if (v->type == VHD_TYPE_DYNAMIC && whole_block(d, boff, n, voff) &&
		    !(flags & VHD_ZERO_NOUNMAP)) {
			rc = drop_block(d, block);
		} else {
			if (!zeros && !(zeros = calloc(1, v->block_size))) {
				rc = disk_error(d, -ENOMEM, "out of memory");
				break;
			}
			rc = write_block(d, block, zeros, boff, n);
		}
		if (rc < 0)
			break;
	}
	free(zeros);
	return rc;
}

static int sparse_prefetch(vhd_disk *d, uint64_t off, uint64_t len)
{
	struct vhd_image *v = IMG(d);
	uint32_t block, boff, n;

	FOR_EACH_BLOCK(v, off, len, block, boff, n) {
		uint64_t voff = ((uint64_t)block << v->block_shift) + boff;
		uint32_t entry = bat_get(v, block);
		uint8_t *bm = __atomic_load_n(&v->bitmaps[block], __ATOMIC_ACQUIRE);

		if (entry != VHD_BAT_UNUSED)
			disk_prefetch_file(d, block_data_off(v, entry) + boff, n);
		if (v->type == VHD_TYPE_DIFF && (entry == VHD_BAT_UNUSED || bm != BITMAP_FULL))
			disk_prefetch_parent(d, voff, n);
	}
	return 0;
}

static int sparse_extents(vhd_disk *d, uint64_t off, uint64_t len,
			  layer_extent_fn fn, void *opaque)
{
	struct vhd_image *v = IMG(d);
	enum layer_extent absent = v->type == VHD_TYPE_DIFF ? LAYER_PARENT : LAYER_ZERO;
	uint32_t block, boff, n;
	int rc;

	FOR_EACH_BLOCK(v, off, len, block, boff, n) {
		uint64_t base = (uint64_t)block << v->block_shift;
		uint32_t entry = bat_get(v, block);
		uint32_t s, s_end;
		uint8_t *bm;

		if (entry == VHD_BAT_UNUSED) {
			rc = fn(opaque, base + boff, n, absent);
			if (rc)
				return rc;
			continue;
		}
		rc = vhd_get_bitmap(d, block, &bm);
		if (rc < 0)
			return rc;
		if (bm == BITMAP_FULL) {
			rc = fn(opaque, base + boff, n, LAYER_DATA);
			if (rc)
				return rc;
			continue;
		}
		s = boff / VHD_SECTOR;
		s_end = (boff + n + VHD_SECTOR - 1) / VHD_SECTOR;
		while (s < s_end) {
			bool present;
			uint32_t run = vhd_bit_run(bm, s, s_end, &present);
			uint32_t a = s * VHD_SECTOR, b = (s + run) * VHD_SECTOR;
			if (a < boff)
				a = boff;
			if (b > boff + n)
				b = boff + n;
			rc = fn(opaque, base + a, b - a, present ? LAYER_DATA : absent);
			if (rc)
				return rc;
			s += run;
		}
	}
	return 0;
}

static void fill_info(vhd_disk *d, struct vhd_info *info)
{
	struct vhd_image *v = IMG(d);
	struct vhd_footer *f = &v->footer;

	info->format = VHD_FMT_VHD;
	info->type = (enum vhd_type)v->type;
	info->current_size = f->current_size;
	info->original_size = f->original_size;
	info->cylinders = f->cylinders;
	info->heads = f->heads;
	info->sectors_per_track = f->sectors_per_track;
	memcpy(info->uuid, f->uuid, 16);
	memcpy(info->creator_app, f->creator_app, 4);
	info->creator_version = f->creator_version;
	info->creator_os = f->creator_os;
	info->timestamp = f->timestamp;
	info->saved_state = f->saved_state;
	info->size_source = v->size_source;
	if (v->type == VHD_TYPE_FIXED)
		return;
	info->block_size = v->block_size;
	info->max_table_entries = v->max_entries;
	info->blocks_allocated = v->allocated;
	if (v->type == VHD_TYPE_DIFF) {
		memcpy(info->parent_uuid, v->header.parent_uuid, 16);
		info->parent_timestamp = v->header.parent_timestamp;
		info->parent_name = v->parent_name;
	}
}

static int vhd_info_op(vhd_disk *d, struct vhd_info *info)
{
	fill_info(d, info);
	return 0;
}

/* ---- fixed disks: data at offset 0, footer after it ---- */

static ssize_t fixed_pread(vhd_disk *d, void *buf, size_t len, uint64_t off)
{
	int rc = read_data(d, buf, len, off);

	return rc < 0 ? rc : (ssize_t)len;
}

static ssize_t fixed_pwrite(vhd_disk *d, const void *buf, size_t len,
			    uint64_t off)
{
	int rc = write_data(d, buf, len, off);

	return rc < 0 ? rc : (ssize_t)len;
}

/* Fixed disks: the data is the file's first `size` bytes. */
static uint64_t fixed_map(vhd_disk *d, uint64_t off, uint64_t len, bool write,
			  uint64_t *pos)
{
	(void)d;
	(void)write;
	*pos = off;
	return len;
}

static int fixed_flush(vhd_disk *d)
{
	int rc = d->io->ops->flush(d->io);

	return rc < 0 ? disk_error(d, rc, "sync: %s", vhd_strerror(rc)) : 0;
}

static int fixed_discard(vhd_disk *d, uint64_t off, uint64_t len)
{
	int rc;

	if (!d->io->ops->punch)
		return 0;
	rc = d->io->ops->punch(d->io, off, len);
	return rc == -EOPNOTSUPP || rc == -ENOTTY ? 0 : rc;
}

static int fixed_zero(vhd_disk *d, uint64_t off, uint64_t len, unsigned flags)
{
	return file_zero(d, off, len, flags);
}

static int fixed_prefetch(vhd_disk *d, uint64_t off, uint64_t len)
{
	disk_prefetch_file(d, off, len);
	return 0;
}

static int fixed_extents(vhd_disk *d, uint64_t off, uint64_t len,
			 layer_extent_fn fn, void *opaque)
{
	return file_extents(d, 0, off, len, fn, opaque);
}

static void vhd_abandon(vhd_disk *d)
{
	vhd_image_free(IMG(d));
	d->priv = NULL;
}

static int fixed_close(vhd_disk *d)
{
	vhd_abandon(d);
	return 0;
}

const struct vhd_format_ops vhd_fixed_ops = {
	.name = "vhd-fixed",
	.pread = fixed_pread,
	.pwrite = fixed_pwrite,
	.flush = fixed_flush,
	.discard = fixed_discard,
	.zero = fixed_zero,
	.prefetch = fixed_prefetch,
	.extents = fixed_extents,
	.info = vhd_info_op,
	.close = fixed_close,
	.abandon = vhd_abandon,
	.resize = vhd_image_resize,
	.map = fixed_map,
};

const struct vhd_format_ops vhd_sparse_ops = {
	.name = "vhd-sparse",
	.pread = sparse_pread,
	.pwrite = sparse_pwrite,
	.flush = vhd_meta_flush,
	.discard = sparse_discard,
	.zero = sparse_zero,
	.prefetch = sparse_prefetch,
	.extents = sparse_extents,
	.info = vhd_info_op,
	.close = vhd_meta_close,
	.abandon = vhd_abandon,
	.resize = vhd_image_resize,
	.map = sparse_map,
	.compact = vhd_image_compact,
	.reparent = vhd_image_reparent,
	.repair = vhd_image_repair,
};
