/*
 * vhd_resize.c -- change the virtual size of a VHD, crash-safely.
 *
 * Dynamic and differencing disks.  Growing within max_table_entries only
 * rewrites the footers.  Growing past it moves the BAT to the end of the
 * file, in three steps, each synced, each leaving a valid image:
 *   1. write the (unchanged) footer past room for the larger BAT, sync,
 *      then the BAT where the old footer was -- unreferenced space;
 *   2. rewrite the header (its first sector holds table_offset, max table
 *      entries and the checksum) to point at the new BAT;
 *   3. rewrite both footers with the new size.
 * Shrinking refuses to cut allocated blocks unless forced; forced, their
 * BAT entries are cleared (written and synced) before the footers change.
 *
 * Fixed disks.  Growing writes the footer at the new end (synced), then
 * zeroes the old footer, which is now inside the disk.  Shrinking writes
 * the footer at the new end, syncs and truncates.
 *
 * A CHS-era creator ("vpc ", "vs  ", "qemu") would make readers trust CHS
 * geometry, which rounds down: such images get creator "win " when the new
 * size is not CHS-exact.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "io.h"
#include "vhd_image.h"

static int sync_file(vhd_disk *d)
{
	int rc = d->io->ops->flush(d->io);

	return rc < 0 ? disk_error(d, rc, "sync: %s", vhd_strerror(rc)) : 0;
}

static int put_footer(vhd_disk *d, uint64_t pos)
{
	uint8_t buf[VHD_FOOTER_SIZE];
	int rc;

	vhd_footer_encode(&IMG(d)->footer, buf);
	rc = io_write_full(d->io, buf, sizeof(buf), pos);
	return rc < 0 ? disk_error(d, rc, "writing footer: %s", vhd_strerror(rc)) : 0;
}

static void set_size(struct vhd_image *v, uint64_t size)
{
	struct vhd_footer *f = &v->footer;
	bool chs_era = !memcmp(f->creator_app, "vpc ", 4) ||
		       !memcmp(f->creator_app, "vs  ", 4) ||
		       !memcmp(f->creator_app, "qemu", 4);

	f->current_size = size;
	vhd_chs(size, &f->cylinders, &f->heads, &f->sectors_per_track);
	if (chs_era && vhd_chs_bytes(f->cylinders, f->heads, f->sectors_per_track) != size)
		memcpy(f->creator_app, "win ", 4);
}

static int resize_fixed(vhd_disk *d, uint64_t size)
{
	struct vhd_image *v = IMG(d);
	uint64_t old = d->size;
	int rc;

	set_size(v, size);
	rc = put_footer(d, size);
	if (rc == 0)
		rc = sync_file(d);
	if (rc == 0 && size > old) {
		static const uint8_t zero[VHD_FOOTER_SIZE];
		rc = io_write_full(d->io, zero, sizeof(zero), old);
	} else if (rc == 0 && size < old) {
		rc = d->io->ops->truncate(d->io, size + VHD_FOOTER_SIZE);
	}
	if (rc == 0)
		rc = sync_file(d);
	if (rc < 0)
		return disk_error(d, rc, "resize: %s", vhd_strerror(rc));
	d->size = size;
	return 0;
}

/* Step 1-2 of a BAT move: a larger BAT at the end, then the header. */
static int move_bat(vhd_disk *d, uint32_t entries)
{
	struct vhd_image *v = IMG(d);
	uint64_t pos = v->next_block, bytes = vhd_bat_size(entries);
	uint8_t *bat = malloc(bytes), hbuf[VHD_HEADER_SIZE];
	uint32_t *nbat = NULL;
	uint8_t **nbm = NULL, *nbmd = NULL;
	uint8_t *nbd = NULL;
	uint32_t *nbml = NULL, *nbdl = NULL;
	int rc = -ENOMEM;

	if (!bat)
		goto out;
	memset(bat, 0xFF, bytes);
	for (uint32_t i = 0; i < v->max_entries; i++)
		put_be32(bat + 4 * (size_t)i, v->bat[i]);
	/* The footer first: EOF must always end in a valid footer (I1). */
	rc = put_footer(d, pos + bytes);
	if (rc == 0)
		rc = sync_file(d);
	if (rc == 0)
		rc = io_write_full(d->io, bat, bytes, pos);
	if (rc == 0)
		rc = sync_file(d);
	if (rc < 0)
		goto out;
	/* In-memory tables grow before the header points at the new BAT. */
	nbat = realloc(v->bat, entries * sizeof(uint32_t));
	if (nbat)
		v->bat = nbat;
	nbm = realloc(v->bitmaps, entries * sizeof(*nbm));
	if (nbm)
		v->bitmaps = nbm;
	nbmd = realloc(v->bm_dirty, entries);
	if (nbmd)
		v->bm_dirty = nbmd;
	nbml = realloc(v->bm_dirty_list, entries * sizeof(uint32_t));
	if (nbml)
		v->bm_dirty_list = nbml;
	nbd = realloc(v->bat_dirty, bytes / VHD_SECTOR);
	if (nbd)
		v->bat_dirty = nbd;
	nbdl = realloc(v->bat_dirty_list, bytes / VHD_SECTOR * sizeof(uint32_t));
	if (nbdl)
		v->bat_dirty_list = nbdl;
	if (!nbat || !nbm || !nbmd || !nbml || !nbd || !nbdl) {
		rc = disk_error(d, -ENOMEM, "out of memory growing the BAT");
		goto out;
	}
	for (uint32_t i = v->max_entries; i < entries; i++) {
		v->bat[i] = VHD_BAT_UNUSED;
		v->bitmaps[i] = NULL;
		v->bm_dirty[i] = 0;
	}
	memset(v->bat_dirty + vhd_bat_size(v->max_entries) / VHD_SECTOR, 0,
	       (bytes - vhd_bat_size(v->max_entries)) / VHD_SECTOR);
	v->header.table_offset = pos;
	v->header.max_table_entries = entries;
	vhd_header_encode(&v->header, hbuf);
	rc = io_write_full(d->io, hbuf, VHD_SECTOR, v->footer.data_offset);
	if (rc == 0)
		rc = sync_file(d);
	if (rc < 0)
		goto out;
	v->max_entries = entries;
	v->next_block = pos + bytes;
	v->footer_pos = pos + bytes;
	if (pos + bytes > v->meta_end)
		v->meta_end = pos + bytes;
out:
	free(bat);
	return rc < 0 ? disk_error(d, rc, "moving the BAT: %s", vhd_strerror(rc)) : 0;
}

static int resize_sparse(vhd_disk *d, uint64_t size, bool force)
{
	struct vhd_image *v = IMG(d);
	uint32_t need = (uint32_t)((size + v->block_size - 1) >> v->block_shift);
	uint32_t cut = 0;
	int rc = vhd_meta_flush(d);

	if (rc == 0)
		rc = vhd_trim_reserve(d);	/* the footer right after the data */
	if (rc < 0)
		return rc;
	for (uint32_t i = need; i < v->max_entries; i++)
		if (v->bat[i] != VHD_BAT_UNUSED)
			cut++;
	if (cut && !force)
		return disk_error(d, -ENOTEMPTY,
				  "shrinking to %llu bytes would cut %u allocated blocks (use --force)",
				  (unsigned long long)size, cut);
	for (uint32_t i = need; cut && i < v->max_entries; i++)
		if (v->bat[i] != VHD_BAT_UNUSED)
			vhd_unmap_block(d, i);
	if (cut && (rc = vhd_meta_flush(d)) < 0)
		return rc;
	if (need > v->max_entries && (rc = move_bat(d, need)) < 0)
		return rc;
	set_size(v, size);
	rc = put_footer(d, v->footer_pos);
	if (rc == 0)
		rc = put_footer(d, 0);
	if (rc == 0)
		rc = sync_file(d);
	if (rc < 0)
		return rc;
	v->nblocks = need;
	d->size = size;
	return 0;
}

int vhd_image_resize(vhd_disk *d, uint64_t size, bool force)
{
	struct vhd_image *v = IMG(d);

	if (size % VHD_SECTOR || size == 0)
		return disk_error(d, -EINVAL, "size %llu is not a positive multiple of 512",
				  (unsigned long long)size);
	if (size > VHD_MAX_SIZE)
		return disk_error(d, VHD_E_TOO_BIG, "size %llu is over the VHD limit of 2040 GiB",
				  (unsigned long long)size);
	if (v->footer_len != VHD_FOOTER_SIZE)
		return disk_error(d, VHD_E_UNSUPPORTED,
				  "resizing needs a 512-byte footer at the end of the file");
	if (v->type == VHD_TYPE_FIXED)
		return resize_fixed(d, size);
	return resize_sparse(d, size, force);
}
