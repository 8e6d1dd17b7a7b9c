/*
 * vhdx_meta.c -- VHDX block allocation, sector-bitmap pages and the flush
 * that carries every metadata change through the log (vhdx_image.h, X1-X4).
 *
 * Flush, when metadata changed:
 *   1. copy the dirty BAT and bitmap pages (meta_lock held);
 *   2. extend the file to cover every allocated block, sync: data, earlier
 *      in-place writes and the new size are durable;
 *   3. write the pages as one log sequence at the start of the log, sync;
 *   4. write the pages in place (made durable by the next flush's step 2,
 *      or by close).
 * A batch too large for the log is cut into rounds, each applied and
 * synced before the log is reused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "io.h"
#include "vhdx_image.h"

#define SB_PAGES_PER_BLOCK (VHDX_SB_BLOCK / VHDX_PAGE)
#define BITS_PER_PAGE (VHDX_PAGE * 8)

static int sync_file(vhd_disk *d)
{
	int rc = d->io->ops->flush(d->io);

	return rc < 0 ? disk_error(d, rc, "sync: %s", vhd_strerror(rc)) : 0;
}

/* X3: before the first change of a session. */
static int begin(vhd_disk *d, unsigned guids)
{
	struct vhdx_image *x = XIMG(d);
	vhdx_guid log_guid;
	int rc = 0;

	if (__atomic_load_n(&x->session_started, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&x->meta_lock);
	if (!x->session_started) {
		rc = vhdx_guid_random(&log_guid);
		if (rc == 0)
			rc = vhdx_write_header(d, x->unsafe ? NULL : &log_guid, guids);
		if (rc == 0)
			__atomic_store_n(&x->session_started, true, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&x->meta_lock);
	return rc;
}

int vhdx_begin_session(vhd_disk *d)
{
	return begin(d, VHDX_NEW_FILE_GUID | VHDX_NEW_DATA_GUID);
}

int vhdx_begin_meta_session(vhd_disk *d)
{
	return begin(d, VHDX_NEW_FILE_GUID);
}

static void mark_bat_dirty(struct vhdx_image *x, uint64_t idx)
{
	uint64_t page = idx * 8 / VHDX_PAGE;

	if (!x->bat_dirty[page]) {
		x->bat_dirty[page] = 1;
		x->bat_dirty_list[x->nbat_dirty++] = page;
	}
}

static void mark_sb_dirty(struct vhdx_image *x, uint64_t page)
{
	if (!x->sb_dirty[page]) {
		x->sb_dirty[page] = 1;
		x->sb_dirty_list[x->nsb_dirty++] = page;
	}
}

/* meta_lock held: space for @len bytes at the end (X1). */
static uint64_t take_space(struct vhdx_image *x, uint64_t len)
{
	uint64_t pos = x->file_end;

	x->file_end += (len + VHDX_MiB - 1) & ~(uint64_t)(VHDX_MiB - 1);
	return pos;
}

int vhdx_alloc_payload(vhd_disk *d, uint64_t block, uint32_t state, uint64_t *entry)
{
	struct vhdx_image *x = XIMG(d);
	uint64_t idx = vhdx_payload_index(x, block);
	uint32_t st;
	int rc = 0;

	pthread_mutex_lock(&x->meta_lock);
	st = vhdx_bat_state(x->bat[idx]);
	if (st == VHDX_PAYLOAD_FULLY_PRESENT || st == VHDX_PAYLOAD_PARTIALLY_PRESENT)
		goto out;
	if (state == VHDX_PAYLOAD_PARTIALLY_PRESENT) {
		uint64_t sb = vhdx_sb_index(x, block / x->chunk_ratio);
		if (vhdx_bat_state(x->bat[sb]) != VHDX_SB_PRESENT) {
			uint64_t pos = take_space(x, VHDX_SB_BLOCK);
			__atomic_store_n(&x->bat[sb], vhdx_bat_make(VHDX_SB_PRESENT, pos),
					 __ATOMIC_RELEASE);
			mark_bat_dirty(x, sb);
		}
	}
	__atomic_store_n(&x->bat[idx],
			 vhdx_bat_make(state, take_space(x, x->block_size)),
			 __ATOMIC_RELEASE);
	x->allocated++;
	mark_bat_dirty(x, idx);
out:
	*entry = x->bat[idx];
	pthread_mutex_unlock(&x->meta_lock);
	return rc;
}

int vhdx_set_entry(vhd_disk *d, uint64_t idx, uint64_t entry)
{
	struct vhdx_image *x = XIMG(d);

	pthread_mutex_lock(&x->meta_lock);
	__atomic_store_n(&x->bat[idx], entry, __ATOMIC_RELEASE);
	mark_bat_dirty(x, idx);
	pthread_mutex_unlock(&x->meta_lock);
	return 0;
}

/* Change a payload entry (discard, zero, full-block promotion). */
int vhdx_set_state(vhd_disk *d, uint64_t block, uint64_t entry)
{
	return vhdx_set_entry(d, vhdx_payload_index(XIMG(d), block), entry);
}

int vhdx_queue_meta_page(vhd_disk *d, uint64_t off, const uint8_t *page)
{
	struct vhdx_image *x = XIMG(d);
	uint8_t *copy = malloc(VHDX_PAGE), **pages;
	uint64_t *offs;
	int rc = -ENOMEM;

	pthread_mutex_lock(&x->meta_lock);
	pages = realloc(x->meta_pages, (x->nmeta_pages + 1) * sizeof(*pages));
	if (pages)
		x->meta_pages = pages;
	offs = realloc(x->meta_page_offs, (x->nmeta_pages + 1) * sizeof(*offs));
	if (offs)
		x->meta_page_offs = offs;
	if (copy && pages && offs) {
		memcpy(copy, page, VHDX_PAGE);
		x->meta_pages[x->nmeta_pages] = copy;
		x->meta_page_offs[x->nmeta_pages++] = off;
		copy = NULL;
		rc = 0;
	}
	pthread_mutex_unlock(&x->meta_lock);
	free(copy);
	return rc < 0 ? disk_error(d, rc, "out of memory") : 0;
}

/* The cached 4 KiB bitmap page @page (global index), loaded on first use. */
int vhdx_get_sb_page(vhd_disk *d, uint64_t page, uint8_t **out)
{
	struct vhdx_image *x = XIMG(d);
	uint8_t *p = __atomic_load_n(&x->sb_pages[page], __ATOMIC_ACQUIRE);
	uint64_t e;
	int rc = 0;

	if (p) {
		*out = p;
		return 0;
	}
	pthread_mutex_lock(&x->meta_lock);
	p = x->sb_pages[page];
	if (p)
		goto out;
	p = calloc(1, VHDX_PAGE);
	if (!p) {
		rc = disk_error(d, -ENOMEM, "out of memory for a bitmap page");
		goto out;
	}
	e = x->bat[vhdx_sb_index(x, page / SB_PAGES_PER_BLOCK)];
	if (vhdx_bat_state(e) == VHDX_SB_PRESENT) {
		ssize_t n = d->io->ops->pread(d->io, p, VHDX_PAGE, vhdx_bat_offset(e) +
					      (page % SB_PAGES_PER_BLOCK) * VHDX_PAGE);
		if (n < 0) {
			free(p);
			p = NULL;
			rc = disk_error(d, (int)n, "reading a sector bitmap: %s",
					vhd_strerror((int)n));
			goto out;
		}
	}
	__atomic_store_n(&x->sb_pages[page], p, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&x->meta_lock);
	*out = p;
	return rc;
}

/* Set (@set) or clear the bits of sectors [s0, s0+n). */
static int change_bits(vhd_disk *d, uint64_t s0, uint64_t n, bool set)
{
	struct vhdx_image *x = XIMG(d);
	uint64_t s = s0, end = s0 + n;

	while (s < end) {
		uint64_t page = s / BITS_PER_PAGE;
		uint64_t stop = (page + 1) * BITS_PER_PAGE;
		uint8_t *p;
		int rc;
		if (stop > end)
			stop = end;
		rc = vhdx_get_sb_page(d, page, &p);
		if (rc < 0)
			return rc;
		pthread_mutex_lock(&x->meta_lock);
		for (uint64_t i = s; i < stop; i++) {
			uint64_t bit = i % BITS_PER_PAGE;
			if (set)
				__atomic_fetch_or(&p[bit >> 3], (uint8_t)(1u << (bit & 7)),
						  __ATOMIC_RELAXED);
			else
				__atomic_fetch_and(&p[bit >> 3], (uint8_t)~(1u << (bit & 7)),
						   __ATOMIC_RELAXED);
		}
		mark_sb_dirty(x, page);
		pthread_mutex_unlock(&x->meta_lock);
		s = stop;
	}
	return 0;
}

int vhdx_clear_bits(vhd_disk *d, uint64_t s0, uint64_t n)
{
	return change_bits(d, s0, n, false);
}

/* Set the bits of sectors [s0, s0+n) after their data was written (X4). */
void vhdx_mark_bits(vhd_disk *d, uint64_t s0, uint64_t n)
{
	change_bits(d, s0, n, true);
}

struct page_batch {
	uint64_t n;
	uint64_t *off;		/* file offsets */
	uint8_t *data;		/* n x 4 KiB */
	uint64_t file_end;
};

static void batch_free(struct page_batch *b)
{
	free(b->off);
	free(b->data);
}

/* meta_lock held: copy every dirty page; bitmap pages first, then BAT pages
 * from the highest down, so that a partly replayed multi-entry batch never
 * holds a payload entry without its bitmap block's entry (which follows the
 * payload entries of its chunk in the BAT). */
static int take_batch(struct vhdx_image *x, struct page_batch *b)
{
	uint64_t n = x->nsb_dirty + x->nbat_dirty + x->nmeta_pages + 1, k = 0;

	memset(b, 0, sizeof(*b));
	b->off = malloc((n + 1) * sizeof(uint64_t));
	b->data = malloc((size_t)(n + 1) * VHDX_PAGE);
	if (!b->off || !b->data) {
		batch_free(b);
		return -ENOMEM;
	}
	/* Metadata changes (resize, reparent) go first. */
	for (uint32_t i = 0; i < x->nmeta_pages; i++) {
		b->off[k] = x->meta_page_offs[i];
		memcpy(b->data + (size_t)k * VHDX_PAGE, x->meta_pages[i], VHDX_PAGE);
		free(x->meta_pages[i]);
		k++;
	}
	x->nmeta_pages = 0;
	for (uint64_t i = 0; i < x->nsb_dirty; i++) {
		uint64_t page = x->sb_dirty_list[i];
		uint64_t e = x->bat[vhdx_sb_index(x, page / SB_PAGES_PER_BLOCK)];
		x->sb_dirty[page] = 0;
		b->off[k] = vhdx_bat_offset(e) + (page % SB_PAGES_PER_BLOCK) * VHDX_PAGE;
		memcpy(b->data + (size_t)k * VHDX_PAGE, x->sb_pages[page], VHDX_PAGE);
		k++;
	}
	x->nsb_dirty = 0;
	for (uint64_t i = 0; i < x->nbat_dirty; i++) {
		for (uint64_t j = i + 1; j < x->nbat_dirty; j++) {
			if (x->bat_dirty_list[j] > x->bat_dirty_list[i]) {
				uint64_t t = x->bat_dirty_list[i];
				x->bat_dirty_list[i] = x->bat_dirty_list[j];
				x->bat_dirty_list[j] = t;
			}
		}
	}
	for (uint64_t i = 0; i < x->nbat_dirty; i++) {
		uint64_t page = x->bat_dirty_list[i];
		uint8_t *p = b->data + (size_t)k * VHDX_PAGE;
		x->bat_dirty[page] = 0;
		b->off[k] = x->bat_off + page * VHDX_PAGE;
		for (uint64_t j = 0; j < VHDX_PAGE / 8; j++) {
			uint64_t idx = page * (VHDX_PAGE / 8) + j;
			put_le64(p + 8 * j, idx < x->nentries ? x->bat[idx] : 0);
		}
		k++;
	}
	x->nbat_dirty = 0;
	b->n = k;
	b->file_end = x->file_end;
	return 0;
}

static int write_in_place(vhd_disk *d, const struct page_batch *b, uint64_t from,
			  uint64_t to)
{
	for (uint64_t i = from; i < to; i++) {
		int rc = io_write_full(d->io, b->data + (size_t)i * VHDX_PAGE, VHDX_PAGE,
				       b->off[i]);
		if (rc < 0)
			return disk_error(d, rc, "writing metadata at %llu: %s",
					  (unsigned long long)b->off[i], vhd_strerror(rc));
	}
	return 0;
}

/* Log pages [from, to) as one sequence at the start of the log; returns the
 * count that fit. */
static int log_round(vhd_disk *d, const struct page_batch *b, uint64_t from,
		     uint64_t to, uint64_t *logged)
{
	struct vhdx_image *x = XIMG(d);
	uint32_t sectors = x->log_len / VHDX_LOG_SECTOR, pos = 0;
	const uint32_t per_entry = (VHDX_LOG_SECTOR - 64) / 32;
	uint64_t i = from;
	int rc = 0;

	while (i < to) {
		uint32_t n = (uint32_t)(to - i < per_entry ? to - i : per_entry);
		uint32_t len;
		uint8_t *e;
		while (n && pos + vhdx_log_header_sectors(n) + n > sectors)
			n--;
		if (!n)
			break;
		len = (vhdx_log_header_sectors(n) + n) * VHDX_LOG_SECTOR;
		e = malloc(len);
		if (!e)
			return disk_error(d, -ENOMEM, "out of memory for a log entry");
		vhdx_log_entry_encode(e, ++x->log_seq, 0, &x->hdr.log_guid,
				      b->file_end, b->file_end,
				      b->data + (size_t)i * VHDX_PAGE, b->off + i, n);
		rc = io_write_full(d->io, e, len, x->log_off + (uint64_t)pos * VHDX_LOG_SECTOR);
		free(e);
		if (rc < 0)
			return disk_error(d, rc, "writing the log: %s", vhd_strerror(rc));
		pos += len / VHDX_LOG_SECTOR;
		i += n;
	}
	*logged = i - from;
	return 0;
}

static int ensure_file_size(vhd_disk *d, uint64_t end)
{
	uint64_t size;
	int rc = io_size(d->io, &size);

	if (rc == 0 && size < end)
		rc = d->io->ops->truncate(d->io, end);
	return rc < 0 ? disk_error(d, rc, "extending the file: %s", vhd_strerror(rc)) : 0;
}

static int write_batch(vhd_disk *d, const struct page_batch *b)
{
	struct vhdx_image *x = XIMG(d);
	uint64_t done = 0, n = 0;
	int rc = ensure_file_size(d, b->file_end);

	if (rc < 0)
		return rc;
	if (x->unsafe) {	/* bulk writers: no log */
		rc = write_in_place(d, b, 0, b->n);
		return rc < 0 ? rc : sync_file(d);
	}
	rc = sync_file(d);
	while (rc == 0 && done < b->n) {
		rc = log_round(d, b, done, b->n, &n);
		if (rc == 0)
			rc = sync_file(d);
		if (rc == 0)
			rc = write_in_place(d, b, done, done + n);
		done += n;
		/* The log is reused by the next round: make this one stick. */
		if (rc == 0 && done < b->n)
			rc = sync_file(d);
	}
	return rc;
}

int vhdx_meta_flush(vhd_disk *d)
{
	struct vhdx_image *x = XIMG(d);
	struct page_batch b;
	int rc;

	pthread_mutex_lock(&x->flush_lock);
	pthread_mutex_lock(&x->meta_lock);
	rc = take_batch(x, &b);
	pthread_mutex_unlock(&x->meta_lock);
	if (rc < 0) {
		rc = disk_error(d, rc, "out of memory during flush");
		goto out;
	}
	if (b.n)
		rc = write_batch(d, &b);
	else
		rc = sync_file(d);
	if (rc < 0) {
		/* Keep the pages dirty for a retry. */
		pthread_mutex_lock(&x->meta_lock);
		for (uint64_t i = 0; i < b.n; i++) {
			uint64_t off = b.off[i];
			if (off >= x->bat_off && off < x->bat_off + x->bat_len)
				mark_bat_dirty(x, (off - x->bat_off) / 8);
		}
		pthread_mutex_unlock(&x->meta_lock);
	}
	batch_free(&b);
out:
	pthread_mutex_unlock(&x->flush_lock);
	return rc;
}

/* Close (after disk.c's flush): make the in-place writes durable, then a
 * header without LogGuid marks the log empty. */
int vhdx_meta_close(vhd_disk *d)
{
	struct vhdx_image *x = XIMG(d);
	int rc = 0;

	if (!d->read_only && x->session_started) {
		rc = sync_file(d);
		if (rc == 0)
			rc = vhdx_write_header(d, NULL, 0);
		if (rc == 0 && x->unsafe)
			rc = sync_file(d);
	}
	vhdx_image_free(x);
	d->priv = NULL;
	return rc;
}

/* Grow the in-memory tables to @nentries BAT entries and @nsb bitmap
 * blocks (meta_lock held or exclusive use). */
static int grow_tables(struct vhdx_image *x, uint64_t nentries, uint64_t nsb)
{
	uint64_t pages = (x->bat_len + VHDX_PAGE - 1) / VHDX_PAGE;
	uint64_t sbp = nsb * SB_PAGES_PER_BLOCK, old_sbp = x->nsb * SB_PAGES_PER_BLOCK;
	uint64_t *bat = realloc(x->bat, nentries * sizeof(uint64_t));
	uint8_t **sb = NULL, *sbd = NULL;
	uint64_t *sbl = NULL;

	if (bat)
		x->bat = bat;
	if (sbp > old_sbp) {
		sb = realloc(x->sb_pages, sbp * sizeof(*sb));
		if (sb) {
			x->sb_pages = sb;
			memset(sb + old_sbp, 0, (sbp - old_sbp) * sizeof(*sb));
		}
		sbd = realloc(x->sb_dirty, sbp);
		if (sbd) {
			x->sb_dirty = sbd;
			memset(sbd + old_sbp, 0, sbp - old_sbp);
		}
		sbl = realloc(x->sb_dirty_list, sbp * sizeof(uint64_t));
		if (sbl)
			x->sb_dirty_list = sbl;
		if (!sb || !sbd || !sbl)
			return -ENOMEM;
	}
	if (!bat)
		return -ENOMEM;
	for (uint64_t i = x->nentries; i < nentries; i++)
		x->bat[i] = 0;
	(void)pages;
	return 0;
}

/* Resize: the disk size item changes through the log with the BAT pages
 * of any blocks a forced shrink drops.  The BAT region must have room. */
int vhdx_resize(vhd_disk *d, uint64_t size, bool force)
{
	struct vhdx_image *x = XIMG(d);
	uint64_t nblocks = (size + x->block_size - 1) / x->block_size;
	uint64_t nsb = (nblocks + x->chunk_ratio - 1) / x->chunk_ratio;
	uint64_t nentries = x->has_parent ? nsb * (x->chunk_ratio + 1)
					  : nblocks + (nblocks - 1) / x->chunk_ratio;
	uint64_t cut = 0, item = x->meta_off + x->size_item_off;
	uint8_t *page;
	int rc;

	if (size == 0 || size % x->lsec || size > VHDX_MAX_SIZE)
		return disk_error(d, -EINVAL,
				  "size %llu is not a positive multiple of %u up to 64 TiB",
				  (unsigned long long)size, x->lsec);
	if (nentries * 8 > x->bat_len)
		return disk_error(d, -ENOSPC,
				  "the BAT region (%llu bytes) has no room for %llu bytes; convert to a new VHDX instead",
				  (unsigned long long)x->bat_len, (unsigned long long)size);
	if (x->leave_allocated && size > d->size)
		return disk_error(d, VHD_E_UNSUPPORTED,
				  "growing a fixed VHDX is not supported; convert it instead");
	for (uint64_t b = nblocks; b < x->nblocks; b++) {
		uint32_t st = vhdx_bat_state(x->bat[vhdx_payload_index(x, b)]);
		if (st == VHDX_PAYLOAD_FULLY_PRESENT || st == VHDX_PAYLOAD_PARTIALLY_PRESENT)
			cut++;
	}
	if (cut && !force)
		return disk_error(d, -ENOTEMPTY,
				  "shrinking to %llu bytes would cut %llu allocated blocks (use --force)",
				  (unsigned long long)size, (unsigned long long)cut);
	rc = vhdx_begin_session(d);
	if (rc < 0)
		return rc;
	for (uint64_t b = nblocks; cut && b < x->nblocks; b++)
		vhdx_set_state(d, b, vhdx_bat_make(VHDX_PAYLOAD_NOT_PRESENT, 0));
	page = malloc(VHDX_PAGE);
	if (!page)
		return disk_error(d, -ENOMEM, "out of memory");
	rc = io_read_full(d->io, page, VHDX_PAGE, item / VHDX_PAGE * VHDX_PAGE);
	if (rc < 0) {
		free(page);
		return disk_error(d, rc, "reading metadata: %s", vhd_strerror(rc));
	}
	put_le64(page + item % VHDX_PAGE, size);
	pthread_mutex_lock(&x->meta_lock);
	rc = grow_tables(x, nentries > x->nentries ? nentries : x->nentries,
			 nsb > x->nsb ? nsb : x->nsb);
	if (rc == 0) {
		if (nentries > x->nentries)
			x->nentries = nentries;
		if (nsb > x->nsb)
			x->nsb = nsb;
		x->nblocks = nblocks;
	}
	pthread_mutex_unlock(&x->meta_lock);
	if (rc < 0) {
		free(page);
		return disk_error(d, rc, "out of memory");
	}
	/* The tables are ready: the size change may now be logged. */
	rc = vhdx_queue_meta_page(d, item / VHDX_PAGE * VHDX_PAGE, page);
	free(page);
	if (rc == 0)
		rc = vhdx_meta_flush(d);
	if (rc == 0)
		d->size = size;
	return rc;
}
