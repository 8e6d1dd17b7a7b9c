/*
 * vhd_meta.c -- block allocation, sector bitmaps, and the flush that makes
 * metadata durable in the order vhd_image.h's invariants require.
 *
 * Flush:
 *   1. under meta_lock, copy every dirty bitmap and BAT sector; the bits in
 *      these copies belong to data writes that have already returned;
 *   2. sync: that data and every initial bitmap of a new block are durable;
 *   3. write the copied bitmaps and BAT sectors;
 *   4. sync.
 * A crash before 4 completes leaves each BAT sector and bitmap old or new;
 * either way every pointer and every set bit refers to durable content.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "io.h"
#include "vhd_image.h"

static int write_footer_at(vhd_disk *d, uint64_t pos)
{
	uint8_t buf[VHD_FOOTER_SIZE];
	int rc;

	vhd_footer_encode(&IMG(d)->footer, buf);
	rc = io_write_full(d->io, buf, sizeof(buf), pos);
	if (rc < 0)
		return disk_error(d, rc, "writing footer at %llu: %s",
				  (unsigned long long)pos, vhd_strerror(rc));
	return 0;
}

static int sync_file(vhd_disk *d)
{
	int rc = d->io->ops->flush(d->io);

	if (rc < 0)
		return disk_error(d, rc, "sync: %s", vhd_strerror(rc));
	return 0;
}

static int sync_unless_unsafe(vhd_disk *d)
{
	return IMG(d)->unsafe ? 0 : sync_file(d);
}

int vhd_get_bitmap(vhd_disk *d, uint32_t block, uint8_t **out)
{
	struct vhd_image *v = IMG(d);
	uint8_t *bm = __atomic_load_n(&v->bitmaps[block], __ATOMIC_ACQUIRE);
	uint32_t entry;
	int rc = 0;

	if (bm) {
		*out = bm;
		return 0;
	}
	pthread_mutex_lock(&v->meta_lock);
	bm = v->bitmaps[block];
	entry = v->bat[block];
	if (bm || entry == VHD_BAT_UNUSED)
		goto out;
	bm = malloc(v->bitmap_size);
	if (!bm) {
		rc = disk_error(d, -ENOMEM, "out of memory for a bitmap");
		goto out;
	}
	rc = io_read_full(d->io, bm, v->bitmap_size, (uint64_t)entry * VHD_SECTOR);
	if (rc < 0) {
		free(bm);
		bm = NULL;
		rc = disk_error(d, rc, "reading bitmap of block %u: %s", block,
				vhd_strerror(rc));
		goto out;
	}
	if (vhd_bits_all_set(bm, 0, v->block_size / VHD_SECTOR)) {
		free(bm);
		bm = BITMAP_FULL;
	}
	__atomic_store_n(&v->bitmaps[block], bm, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&v->meta_lock);
	*out = bm;
	return rc;
}

static void mark_bat_dirty(struct vhd_image *v, uint32_t block)
{
	uint32_t sector = block / (VHD_SECTOR / 4);

	if (!v->bat_dirty[sector]) {
		v->bat_dirty[sector] = 1;
		v->bat_dirty_list[v->nbat_dirty++] = sector;
	}
}

static void mark_bm_dirty(struct vhd_image *v, uint32_t block)
{
	if (!v->bm_dirty[block]) {
		v->bm_dirty[block] = 1;
		v->bm_dirty_list[v->nbm_dirty++] = block;
	}
}

/* Blocks to reserve at once: grows with the image so that a sync per
 * reservation stays rare, bounded so a crash leaks little (I1). */
static uint64_t reserve_blocks(const struct vhd_image *v)
{
	uint64_t k = v->allocated / 16 + 1;
	uint64_t cap = (64u << 20) / block_total(v) + 1;

	return k < cap ? k : cap;
}

/* Where a block placed at or after @at goes: its data starts on a 4 KiB
 * boundary (as Hyper-V lays blocks out), so that 4 KiB guest I/O touches
 * one page of the host file, not two.  Costs at most 3.5 KiB per block. */
static uint64_t block_pos(const struct vhd_image *v, uint64_t at)
{
	return ((at + v->bitmap_size + 4095) & ~(uint64_t)4095) - v->bitmap_size;
}

/* Called with meta_lock held.  Ensures the next block lies below a durable
 * footer.  The footer written further out sits exactly where a later block's
 * bitmap will go, so it is overwritten by metadata, never left inside a
 * block's data area (which must read as zeros: I4). */
static int reserve_space(vhd_disk *d)
{
	struct vhd_image *v = IMG(d);
	uint64_t pos = block_pos(v, v->next_block);
	int rc;

	if (pos + block_total(v) <= v->footer_pos)
		return 0;
	/* The current footer is in the way: continue after it unless it lies
	 * where this block's bitmap goes. */
	if (v->footer_pos > pos) {
		v->next_block = v->footer_pos;
		pos = block_pos(v, v->next_block);
	}
	for (uint64_t k = reserve_blocks(v); k; k--)
		pos = block_pos(v, pos + block_total(v));
	if (pos > (uint64_t)UINT32_MAX * VHD_SECTOR)
		return disk_error(d, -ENOSPC,
				  "image file would exceed the 2 TiB VHD addressing limit");
	rc = write_footer_at(d, pos);
	if (rc == 0)
		rc = sync_unless_unsafe(d);
	if (rc < 0)
		return rc;
	v->footer_pos = pos;
	return 0;
}

/* Hand out the place of one block (bitmap and data) below a durable footer;
 * meta_lock held. */
static int take_place(vhd_disk *d, uint64_t *pos)
{
	struct vhd_image *v = IMG(d);
	int rc = reserve_space(d);

	if (rc < 0)
		return rc;
	*pos = block_pos(v, v->next_block);
	v->next_block = *pos + block_total(v);
	return 0;
}

/* Read the bitmap and data of the block placed at @pos (block_total bytes)
 * into @buf.  The last block of the disk may stop short in the file, at the
 * end of the virtual disk: the rest reads as zeros. */
int vhd_read_place(vhd_disk *d, uint64_t pos, uint8_t *buf)
{
	struct vhd_image *v = IMG(d);
	ssize_t got = d->io->ops->pread(d->io, buf, block_total(v), pos);

	if (got < 0)
		return (int)got;
	if ((uint64_t)got < block_total(v))
		memset(buf + got, 0, block_total(v) - (size_t)got);
	return 0;
}

/* A place for a block that is to be moved there (vhd_realign.c). */
int vhd_alloc_place(vhd_disk *d, uint64_t *pos)
{
	struct vhd_image *v = IMG(d);
	int rc;

	pthread_mutex_lock(&v->meta_lock);
	rc = take_place(d, pos);
	pthread_mutex_unlock(&v->meta_lock);
	return rc;
}

/* Remember an old place to punch after the next flush (meta_lock held).
 * Without memory it stays allocated, which is safe. */
static void queue_freed(struct vhd_image *v, struct vhd_place p)
{
	if (v->nfreed == v->freed_cap) {
		uint32_t cap = v->freed_cap ? 2 * v->freed_cap : 64;
		struct vhd_place *f = realloc(v->freed, cap * sizeof(*f));
		if (!f)
			return;
		v->freed = f;
		v->freed_cap = cap;
	}
	v->freed[v->nfreed++] = p;
}

/* Point @block at the copy at sector @to if it still is at sector @from
 * (a discard may have dropped it meanwhile).  The BAT sector, and a partial
 * bitmap at its new place, are written at the next flush, after a sync;
 * the old place is punched once that flush is done (I5). */
bool vhd_move_block(vhd_disk *d, uint32_t block, uint32_t from, uint32_t to)
{
	struct vhd_image *v = IMG(d);
	bool moved = false;

	pthread_mutex_lock(&v->meta_lock);
	if (v->bat[block] != from)
		goto out;
	/* only what the block occupies: a short last block has the footer,
	 * then maybe its own copy, right after it */
	queue_freed(v, (struct vhd_place){ (uint64_t)from * VHD_SECTOR,
					   block_span(v, d->size, block) });
	__atomic_store_n(&v->bat[block], to, __ATOMIC_RELEASE);
	mark_bat_dirty(v, block);
	if (v->bitmaps[block] != BITMAP_FULL)
		mark_bm_dirty(v, block);
	moved = true;
out:
	pthread_mutex_unlock(&v->meta_lock);
	return moved;
}

int vhd_alloc_block(vhd_disk *d, uint32_t block, uint32_t *entry)
{
	struct vhd_image *v = IMG(d);
	uint8_t *bm, *old;
	uint64_t pos;
	int rc = 0;

	pthread_mutex_lock(&v->meta_lock);
	if (v->bat[block] != VHD_BAT_UNUSED)
		goto out;
	rc = take_place(d, &pos);
	if (rc < 0)
		goto out;
	bm = calloc(1, v->bitmap_size);
	if (!bm) {
		rc = disk_error(d, -ENOMEM, "out of memory for a bitmap");
		goto out;
	}
	/* Dynamic blocks are all-present: their data area is fresh space
	 * (I1, I4) and reads as zeros.  Differencing blocks start empty. */
	if (v->type == VHD_TYPE_DYNAMIC)
		memset(bm, 0xFF, v->bitmap_size);
	rc = io_write_full(d->io, bm, v->bitmap_size, pos);
	if (rc < 0) {
		free(bm);
		rc = disk_error(d, rc, "writing bitmap of block %u: %s", block,
				vhd_strerror(rc));
		goto out;
	}
	old = v->bitmaps[block];
	if (v->type == VHD_TYPE_DYNAMIC) {
		free(bm);
		bm = BITMAP_FULL;
	}
	/* A bitmap left by a discarded block may still be scanned by a
	 * concurrent reader: reuse it rather than free it. */
	if (old && old != BITMAP_FULL && bm != BITMAP_FULL) {
		memset(old, 0, v->bitmap_size);
		free(bm);
		bm = old;
	}
	__atomic_store_n(&v->bitmaps[block], bm, __ATOMIC_RELEASE);
	v->allocated++;
	__atomic_store_n(&v->bat[block], (uint32_t)(pos / VHD_SECTOR),
			 __ATOMIC_RELEASE);
	mark_bat_dirty(v, block);
out:
	*entry = v->bat[block];
	pthread_mutex_unlock(&v->meta_lock);
	return rc;
}

void vhd_mark_bits(vhd_disk *d, uint32_t block, uint32_t s0, uint32_t s1)
{
	struct vhd_image *v = IMG(d);
	uint8_t *bm = __atomic_load_n(&v->bitmaps[block], __ATOMIC_ACQUIRE);

	if (!bm || bm == BITMAP_FULL || vhd_bits_all_set(bm, s0, s1))
		return;
	pthread_mutex_lock(&v->meta_lock);
	vhd_bits_set(bm, s0, s1);
	mark_bm_dirty(v, block);
	pthread_mutex_unlock(&v->meta_lock);
}

/* Deallocate a block (discard).  The caller holds the block's stripe lock.
 * The BAT change is written at the next flush; the old area is never
 * reused (allocation only moves forward) until compact. */
int vhd_unmap_block(vhd_disk *d, uint32_t block)
{
	struct vhd_image *v = IMG(d);

	pthread_mutex_lock(&v->meta_lock);
	if (v->bat[block] != VHD_BAT_UNUSED) {
		__atomic_store_n(&v->bat[block], VHD_BAT_UNUSED, __ATOMIC_RELEASE);
		v->allocated--;
		mark_bat_dirty(v, block);
		if (v->bitmaps[block] == BITMAP_FULL)
			v->bitmaps[block] = NULL;
	}
	pthread_mutex_unlock(&v->meta_lock);
	return 0;
}

/* Point @block at the block now at sector @entry (compact moved it there;
 * the caller made the copy durable first).  Written at the next flush. */
void vhd_remap_block(vhd_disk *d, uint32_t block, uint32_t entry)
{
	struct vhd_image *v = IMG(d);

	pthread_mutex_lock(&v->meta_lock);
	__atomic_store_n(&v->bat[block], entry, __ATOMIC_RELEASE);
	mark_bat_dirty(v, block);
	pthread_mutex_unlock(&v->meta_lock);
}

struct meta_snapshot {
	uint32_t nbm, nbat;
	uint32_t *bm_blocks;
	uint64_t *bm_pos;
	uint8_t *bm_data;
	uint32_t *bat_sectors;
	uint8_t *bat_data;
	struct vhd_place *freed;	/* old places of moved blocks (I5) */
	uint32_t nfreed;
};

static void snapshot_free(struct meta_snapshot *s)
{
	free(s->bm_blocks);
	free(s->bm_pos);
	free(s->bm_data);
	free(s->bat_sectors);
	free(s->bat_data);
	free(s->freed);
}

static void encode_bat_sector(struct vhd_image *v, uint32_t sector,
			      uint8_t *out)
{
	uint32_t first = sector * (VHD_SECTOR / 4);

	for (uint32_t j = 0; j < VHD_SECTOR / 4; j++) {
		uint32_t i = first + j;
		put_be32(out + 4 * j, i < v->max_entries ? v->bat[i] : VHD_BAT_UNUSED);
	}
}

/* Step 1: copy dirty metadata and clear the dirty marks (meta_lock held). */
static int take_snapshot(struct vhd_image *v, struct meta_snapshot *s)
{
	uint32_t nbm = 0;

	memset(s, 0, sizeof(*s));
	s->bm_blocks = malloc((v->nbm_dirty + 1) * sizeof(uint32_t));
	s->bm_pos = malloc((v->nbm_dirty + 1) * sizeof(uint64_t));
	s->bm_data = malloc((size_t)(v->nbm_dirty + 1) * v->bitmap_size);
	s->bat_sectors = malloc((v->nbat_dirty + 1) * sizeof(uint32_t));
	s->bat_data = malloc((size_t)(v->nbat_dirty + 1) * VHD_SECTOR);
	if (!s->bm_blocks || !s->bm_pos || !s->bm_data || !s->bat_sectors ||
	    !s->bat_data) {
		snapshot_free(s);
		return -ENOMEM;
	}
	for (uint32_t k = 0; k < v->nbm_dirty; k++) {
		uint32_t b = v->bm_dirty_list[k];
		uint8_t *bm = v->bitmaps[b];
		v->bm_dirty[b] = 0;
		/* A discarded block has no bitmap to write. */
		if (v->bat[b] == VHD_BAT_UNUSED || !bm || bm == BITMAP_FULL)
			continue;
		s->bm_blocks[nbm] = b;
		s->bm_pos[nbm] = (uint64_t)v->bat[b] * VHD_SECTOR;
		memcpy(s->bm_data + (size_t)nbm * v->bitmap_size, bm, v->bitmap_size);
		nbm++;
	}
	s->nbm = nbm;
	v->nbm_dirty = 0;
	for (uint32_t k = 0; k < v->nbat_dirty; k++) {
		uint32_t sec = v->bat_dirty_list[k];
		v->bat_dirty[sec] = 0;
		s->bat_sectors[k] = sec;
		encode_bat_sector(v, sec, s->bat_data + (size_t)k * VHD_SECTOR);
	}
	s->nbat = v->nbat_dirty;
	v->nbat_dirty = 0;
	s->freed = v->freed;
	s->nfreed = v->nfreed;
	v->freed = NULL;
	v->nfreed = v->freed_cap = 0;
	return 0;
}

/* On a failed write-out, mark everything dirty again for a retry. */
static void restore_dirty(struct vhd_image *v, struct meta_snapshot *s)
{
	pthread_mutex_lock(&v->meta_lock);
	for (uint32_t k = 0; k < s->nbm; k++)
		mark_bm_dirty(v, s->bm_blocks[k]);
	for (uint32_t k = 0; k < s->nbat; k++) {
		uint32_t sec = s->bat_sectors[k];
		if (!v->bat_dirty[sec]) {
			v->bat_dirty[sec] = 1;
			v->bat_dirty_list[v->nbat_dirty++] = sec;
		}
	}
	for (uint32_t k = 0; k < s->nfreed; k++)
		queue_freed(v, s->freed[k]);
	pthread_mutex_unlock(&v->meta_lock);
}

/* After a flush: the places moved blocks left are referenced by no durable
 * BAT entry any more (I5).  Without a working punch, stop moving blocks. */
static void punch_freed(vhd_disk *d, struct meta_snapshot *s)
{
	struct vhd_image *v = IMG(d);

	for (uint32_t k = 0; k < s->nfreed; k++) {
		int rc = d->io->ops->punch(d->io, s->freed[k].pos, s->freed[k].len);
		if (rc < 0)
			__atomic_store_n(&v->realign_stopped, true, __ATOMIC_RELAXED);
	}
}

static int write_snapshot(vhd_disk *d, struct meta_snapshot *s)
{
	struct vhd_image *v = IMG(d);
	int rc;

	for (uint32_t k = 0; k < s->nbm; k++) {
		rc = io_write_full(d->io, s->bm_data + (size_t)k * v->bitmap_size,
				   v->bitmap_size, s->bm_pos[k]);
		if (rc < 0)
			return disk_error(d, rc, "writing bitmap of block %u: %s",
					  s->bm_blocks[k], vhd_strerror(rc));
	}
	for (uint32_t k = 0; k < s->nbat; k++) {
		uint64_t off = v->header.table_offset +
			       (uint64_t)s->bat_sectors[k] * VHD_SECTOR;
		rc = io_write_full(d->io, s->bat_data + (size_t)k * VHD_SECTOR,
				   VHD_SECTOR, off);
		if (rc < 0)
			return disk_error(d, rc, "writing BAT: %s", vhd_strerror(rc));
	}
	return 0;
}

int vhd_meta_flush(vhd_disk *d)
{
	struct vhd_image *v = IMG(d);
	struct meta_snapshot s;
	int rc;

	pthread_mutex_lock(&v->flush_lock);
	pthread_mutex_lock(&v->meta_lock);
	rc = take_snapshot(v, &s);
	pthread_mutex_unlock(&v->meta_lock);
	if (rc < 0) {
		rc = disk_error(d, rc, "out of memory during flush");
		goto out;
	}
	rc = sync_file(d);
	if (rc == 0 && (s.nbm || s.nbat)) {
		rc = write_snapshot(d, &s);
		if (rc == 0)
			rc = sync_file(d);
	}
	if (rc < 0)
		restore_dirty(v, &s);
	else
		punch_freed(d, &s);
	snapshot_free(&s);
out:
	pthread_mutex_unlock(&v->flush_lock);
	return rc;
}

/* Read-write open: reclaim space an interrupted session reserved but never
 * referenced.  Zero it first (I4), so new dynamic blocks read as zeros. */
int vhd_prepare_writes(vhd_disk *d)
{
	struct vhd_image *v = IMG(d);
	uint64_t end = v->meta_end;
	int rc = -EOPNOTSUPP;

	for (uint32_t i = 0; i < v->max_entries; i++) {
		uint32_t e = v->bat[i];
		if (e != VHD_BAT_UNUSED &&
		    (uint64_t)e * VHD_SECTOR + block_total(v) > end)
			end = (uint64_t)e * VHD_SECTOR + block_total(v);
	}
	end = (end + VHD_SECTOR - 1) & ~(uint64_t)(VHD_SECTOR - 1);
	if (v->footer_len != VHD_FOOTER_SIZE || end >= v->footer_pos)
		return 0;
	if (d->io->ops->punch)
		rc = d->io->ops->punch(d->io, end, v->footer_pos - end);
	if (rc < 0)
		rc = write_zeros(d, d->io, end, v->footer_pos - end);
	if (rc == 0)
		rc = sync_unless_unsafe(d);
	if (rc < 0)
		return rc;
	v->next_block = end;
	return 0;
}

/* Give back reserved space: footer at the end of the last block, sync,
 * truncate after it, sync. */
int vhd_trim_reserve(vhd_disk *d)
{
	struct vhd_image *v = IMG(d);
	int rc = 0;

	if (d->read_only || v->footer_len != VHD_FOOTER_SIZE ||
	    v->footer_pos <= v->next_block)
		return 0;
	rc = write_footer_at(d, v->next_block);
	if (rc == 0)
		rc = sync_file(d);
	if (rc == 0)
		rc = d->io->ops->truncate(d->io, v->next_block + VHD_FOOTER_SIZE);
	if (rc == 0)
		rc = sync_file(d);
	if (rc < 0)
		return disk_error(d, rc, "trimming reserved space: %s", vhd_strerror(rc));
	v->footer_pos = v->next_block;
	return 0;
}

/* Close: flush (done by disk.c), then give back reserved space. */
int vhd_meta_close(vhd_disk *d)
{
	int rc = vhd_trim_reserve(d);

	vhd_image_free(IMG(d));
	d->priv = NULL;
	return rc;
}
