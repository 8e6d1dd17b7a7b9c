/*
 * vhd_realign.c -- move blocks whose data is not 4 KiB aligned to aligned
 * places, at their first small write (VHD_OPEN_REALIGN, VHD_REALIGN_BELOW).
 *
 * qemu-img and Virtual PC put a block's data one sector after its 512-byte
 * bitmap, so a 4 KiB guest write covers two pages of the host file partly,
 * and the kernel copies into two page-cache pages (and may have to read
 * them first) where one would do.  vhdkit places blocks so that their data
 * starts on a 4 KiB boundary (vhd_meta.c: block_pos); this file brings a
 * foreign image to that layout as it is written, one block at a time:
 *
 *   1. under the block's move lock (exclusive), its bitmap and data are
 *      copied from the old place to a new aligned place below a durable
 *      footer (I1), space no durable BAT entry references: by the kernel
 *      where the io can (copy_in_kernel), else through memory;
 *   2. in memory the BAT entry now points at the copy; the BAT sector (and
 *      a partial bitmap, so the bits set since the old place's bitmap was
 *      last written reach the copy) are dirty, written by the next flush
 *      after it has synced the copy (I3);
 *   3. the old place stays intact until that flush is done, and is punched
 *      then (I5).  A crash before leaves the durable BAT pointing at the
 *      old place, which holds every write flushed before the move.
 *
 * Aligned blocks never move, so their I/O never waits for the move lock.
 */
#include <errno.h>
#include <stdlib.h>

#include "io.h"
#include "vhd_image.h"

#define COPY_CHUNK (64u << 10)

/* Write the copy of a block (bitmap, then the data, which starts on a page
 * boundary and is whole pages long) at @pos, in runs of at most 64 KiB,
 * leaving out pages of zeros: the new place is fresh space that reads as
 * zeros (I1, I4), so the copy allocates no more than the old place did,
 * holes included.  In runs, because the page cache sizes its folios by the
 * write: one 2 MiB write leaves 2 MiB folios, and on ext4 every later
 * 4 KiB write into one walks all its 512 buffer heads (23% of the server's
 * time in a profile); 64 KiB folios have 16. */
static int write_copy(vhd_disk *d, const uint8_t *buf, uint64_t pos)
{
	struct vhd_image *v = IMG(d);
	uint64_t end = pos + block_total(v), run = 0;	/* 0: no run open */
	int rc = io_write_full(d->io, buf, v->bitmap_size, pos);

	for (uint64_t at = pos + v->bitmap_size; rc == 0 && at <= end; at += 4096) {
		bool zero = at == end || bytes_all_zero(buf + (at - pos), 4096);
		if (run && (zero || at - run == COPY_CHUNK)) {
			rc = io_write_full(d->io, buf + (run - pos), at - run, run);
			run = 0;
		}
		if (!zero && !run)
			run = at;
	}
	return rc;
}

/* The copy made by the kernel (io copy op: copy_file_range), without
 * passing through our memory: the bitmap first, written whole (a footer
 * written further out may sit where the new place's bitmap goes, so a hole
 * in the old bitmap must not leave it there), then the data area's data
 * runs (next_data), each to the same offset in the new place, in pieces
 * that end on 64 KiB boundaries of the new place (the folio sizes, as
 * above); holes in the data area stay holes (fresh space reads as zeros:
 * I1, I4).  About 5x faster per move than reading and writing here
 * (docs/io-paths.md). */
static int copy_in_kernel(vhd_disk *d, uint64_t from, uint64_t span, uint64_t to)
{
	const struct vhd_io_ops *ops = d->io->ops;
	struct vhd_image *v = IMG(d);
	uint64_t at = from + v->bitmap_size, end = from + span, data, data_end;
	uint8_t *bm = malloc(v->bitmap_size);
	int rc = bm ? io_read_full(d->io, bm, v->bitmap_size, from) : -ENOMEM;

	if (rc == 0)
		rc = io_write_full(d->io, bm, v->bitmap_size, to);
	free(bm);
	if (rc < 0)
		return rc;
	while (at < end) {
		if (!ops->next_data) {
			data = at;
			data_end = end;
		} else if ((rc = ops->next_data(d->io, at, &data, &data_end)) < 0) {
			return rc;
		}
		if (data >= end)
			break;
		if (data_end > end)
			data_end = end;
		for (uint64_t p = data; p < data_end;) {
			uint64_t dst = to + (p - from);
			uint64_t n = COPY_CHUNK - dst % COPY_CHUNK;
			ssize_t got;

			if (n > data_end - p)
				n = data_end - p;
			got = ops->copy(d->io, p, dst, n);
			if (got <= 0)	/* (0: end of file inside a data run) */
				return got < 0 ? (int)got : -EIO;
			p += (uint64_t)got;
		}
		at = data_end;
	}
	return 0;
}

uint32_t vhd_pin_block(struct vhd_image *v, uint32_t block, pthread_rwlock_t **held)
{
	uint32_t entry = bat_get(v, block);

	*held = NULL;
	if (!vhd_entry_may_move(v, entry))
		return entry;
	*held = &v->move_lock[block % VHD_STRIPES];
	pthread_rwlock_rdlock(*held);
	return bat_get(v, block);
}

void vhd_unpin_block(pthread_rwlock_t *held)
{
	if (held)
		pthread_rwlock_unlock(held);
}

/* Returns 0 when the block is aligned now (or unallocated), 1 when it
 * stays where it is (moving is stopped, or the copy failed: the caller
 * writes in place), or a negative errno for a failure that also stops the
 * write (the bitmap cannot be read). */
int vhd_realign_block(vhd_disk *d, uint32_t block)
{
	struct vhd_image *v = IMG(d);
	pthread_rwlock_t *lock = &v->move_lock[block % VHD_STRIPES];
	size_t total = block_total(v);
	uint32_t entry;
	uint8_t *buf = NULL, *bm;
	uint64_t pos;
	int rc;

	if (__atomic_load_n(&v->realign_stopped, __ATOMIC_RELAXED))
		return 1;
	pthread_rwlock_wrlock(lock);
	entry = bat_get(v, block);
	rc = 0;
	if (!vhd_entry_misaligned(v, entry))
		goto out;
	/* Load the bitmap from the old place now: the flush after the move
	 * writes it, with the bits set since, to the copy. */
	rc = vhd_get_bitmap(d, block, &bm);
	if (rc < 0)
		goto out;
	rc = 1;
	if (vhd_alloc_place(d, &pos) < 0)
		goto out;
	/* The kernel's copy, else (no copy op, or it failed: the new place is
	 * fresh space, written again whole) the copy through our memory. */
	if (!d->io->ops->copy ||
	    copy_in_kernel(d, (uint64_t)entry * VHD_SECTOR,
			   block_span(v, d->size, block), pos) < 0) {
		buf = malloc(total);
		if (!buf)
			goto out;
		if (vhd_read_place(d, (uint64_t)entry * VHD_SECTOR, buf) < 0)
			goto out;
		if (write_copy(d, buf, pos) < 0)
			goto out;
	}
	if (vhd_move_block(d, block, entry, (uint32_t)(pos / VHD_SECTOR)))
		rc = 0;
out:
	/* A failed copy (no memory, no space, an I/O error) leaves the block
	 * where it was and its new place unused (allocation only moves
	 * forward); the write goes in place, and no more blocks move. */
	if (rc == 1)
		__atomic_store_n(&v->realign_stopped, true, __ATOMIC_RELAXED);
	pthread_rwlock_unlock(lock);
	free(buf);
	return rc;
}
