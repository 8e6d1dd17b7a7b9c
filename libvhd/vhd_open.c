/*
 * vhd_open.c -- open and validate a VHD: footer (also the 511-byte form and
 * the backup copy at offset 0), dynamic header, BAT and the placement of
 * every block.  Every inconsistency is refused with a message naming it,
 * except in a tolerant open (check/repair), where repairable ones are
 * reported and worked around.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "io.h"
#include "vhd_image.h"

uint8_t vhd_full_bitmap_marker;

void vhd_image_free(struct vhd_image *v)
{
	if (!v)
		return;
	if (v->bitmaps) {
		for (uint32_t i = 0; i < v->max_entries; i++)
			if (v->bitmaps[i] != BITMAP_FULL)
				free(v->bitmaps[i]);
		free(v->bitmaps);
	}
	free(v->bat);
	free(v->bat_dirty);
	free(v->bat_dirty_list);
	free(v->bm_dirty);
	free(v->bm_dirty_list);
	free(v->parent_name);
	free(v->freed);
	pthread_mutex_destroy(&v->meta_lock);
	pthread_mutex_destroy(&v->flush_lock);
	for (int i = 0; i < VHD_STRIPES; i++) {
		pthread_mutex_destroy(&v->stripe[i]);
		pthread_rwlock_destroy(&v->move_lock[i]);
	}
	free(v);
}

static int try_footer(vhd_disk *d, uint64_t off, size_t len,
		      struct vhd_footer *f, uint32_t *computed)
{
	uint8_t buf[VHD_FOOTER_SIZE];
	int rc = io_read_full(d->io, buf, len, off);

	if (rc < 0)
		return rc;
	return vhd_footer_decode(buf, len, f, computed);
}

/* Find the footer at EOF; fall back to the backup copy at offset 0 only in
 * a tolerant open.  The refusal names what is wrong with both copies. */
static int read_footer(vhd_disk *d, uint64_t fsize)
{
	struct vhd_image *v = IMG(d);
	struct vhd_footer backup;
	uint32_t comp = 0, bcomp = 0;
	int rc = VHD_E_TRUNCATED, brc = VHD_E_TRUNCATED;
	const char *bstate;

	if (fsize >= VHD_FOOTER_SIZE) {
		rc = try_footer(d, fsize - VHD_FOOTER_SIZE, VHD_FOOTER_SIZE,
				&v->footer, &comp);
		v->footer_len = VHD_FOOTER_SIZE;
	}
	if (rc == VHD_E_FORMAT && fsize >= VHD_FOOTER_SIZE - 1) {
		int rc511 = try_footer(d, fsize - 511, 511, &v->footer, &comp);
		if (rc511 != VHD_E_FORMAT) {
			rc = rc511;
			v->footer_len = 511;
		}
	}
	if (rc == 0)
		return 0;
	if (rc != VHD_E_FORMAT && rc != VHD_E_CHECKSUM && rc != VHD_E_TRUNCATED) {
		if (rc == VHD_E_UNSUPPORTED)
			return disk_error(d, rc, "unsupported VHD version 0x%08x",
					  v->footer.version);
		return disk_error(d, rc, "cannot read footer: %s", vhd_strerror(rc));
	}
	if (fsize >= VHD_FOOTER_SIZE)
		brc = try_footer(d, 0, VHD_FOOTER_SIZE, &backup, &bcomp);
	bstate = brc == 0 ? "the backup footer at offset 0 is intact"
		: brc == VHD_E_CHECKSUM ? "the backup footer at offset 0 is also bad"
		: "there is no backup footer";
	if (brc == 0 && (d->flags & VHD_OPEN_TOLERANT) &&
	    backup.disk_type != VHD_TYPE_FIXED) {
		disk_problem(d, VHD_CHECK_ERROR, VHD_E_CORRUPT,
			    "footer at end of file is %s; using the backup copy at offset 0",
			    rc == VHD_E_CHECKSUM ? "damaged (checksum mismatch)" : "missing");
		v->footer = backup;
		v->footer_len = 0;	/* none at EOF */
		return 0;
	}
	if (rc == VHD_E_CHECKSUM)
		return disk_error(d, rc,
				  "footer checksum mismatch (stored 0x%08x, computed 0x%08x); %s",
				  v->footer.checksum, comp, bstate);
	if (brc == 0 || brc == VHD_E_CHECKSUM)
		return disk_error(d, VHD_E_CORRUPT,
				  "no valid footer at end of file (truncated or overwritten); %s",
				  bstate);
	if (fsize < VHD_FOOTER_SIZE - 1)
		return disk_error(d, VHD_E_TRUNCATED,
				  "file is %llu bytes, too short for a VHD footer",
				  (unsigned long long)fsize);
	return disk_error(d, VHD_E_FORMAT, "not a VHD (no \"conectix\" footer)");
}

static int check_footer_fields(vhd_disk *d, uint64_t fsize,
			       enum vhd_size_rule rule)
{
	struct vhd_image *v = IMG(d);
	struct vhd_footer *f = &v->footer;

	switch (f->disk_type) {
	case VHD_TYPE_FIXED:
	case VHD_TYPE_DYNAMIC:
	case VHD_TYPE_DIFF:
		break;
	default:
		return disk_error(d, VHD_E_UNSUPPORTED,
				  "unsupported disk type %u", f->disk_type);
	}
	v->type = f->disk_type;
	if (f->current_size % VHD_SECTOR)
		return disk_error(d, VHD_E_CORRUPT,
				  "current size %llu is not a multiple of 512",
				  (unsigned long long)f->current_size);
	if (f->current_size > VHD_MAX_SIZE)
		return disk_error(d, VHD_E_TOO_BIG,
				  "disk size %llu bytes is over the VHD limit of 2040 GiB",
				  (unsigned long long)f->current_size);
	d->size = vhd_footer_virtual_size(f, rule, &v->size_source);
	if (v->type == VHD_TYPE_FIXED) {
		uint64_t data = fsize - (v->footer_len ? v->footer_len : 0);
		if (d->size > data)
			return disk_error(d, VHD_E_TRUNCATED,
					  "fixed disk holds %llu data bytes, less than its size %llu",
					  (unsigned long long)data,
					  (unsigned long long)d->size);
	}
	return 0;
}

static int read_header(vhd_disk *d, uint64_t fsize)
{
	struct vhd_image *v = IMG(d);
	struct vhd_header *h = &v->header;
	uint8_t buf[VHD_HEADER_SIZE];
	uint64_t off = v->footer.data_offset;
	uint32_t comp;
	int rc;

	if (off < VHD_FOOTER_SIZE || off > fsize || fsize - off < VHD_HEADER_SIZE)
		return disk_error(d, VHD_E_TRUNCATED,
				  "dynamic header offset %llu is outside the file (%llu bytes)",
				  (unsigned long long)off, (unsigned long long)fsize);
	rc = io_read_full(d->io, buf, sizeof(buf), off);
	if (rc < 0)
		return disk_error(d, rc, "cannot read dynamic header: %s",
				  vhd_strerror(rc));
	rc = vhd_header_decode(buf, h, &comp);
	if (rc == VHD_E_FORMAT)
		return disk_error(d, VHD_E_CORRUPT,
				  "no dynamic header (\"cxsparse\") at offset %llu",
				  (unsigned long long)off);
	if (rc == VHD_E_CHECKSUM) {
		rc = disk_problem(d, VHD_CHECK_ERROR, VHD_E_CHECKSUM,
				 "dynamic header checksum mismatch (stored 0x%08x, computed 0x%08x)",
				 h->checksum, comp);
		if (rc < 0)
			return rc;
	} else if (rc == VHD_E_UNSUPPORTED) {
		return disk_error(d, rc, "unsupported dynamic header version 0x%08x",
				  h->version);
	}
	if (h->data_offset != VHD_NO_DATA_OFFSET)
		disk_problem(d, VHD_CHECK_INFO, 0,
			    "dynamic header data offset is 0x%llx, not all ones",
			    (unsigned long long)h->data_offset);
	return 0;
}

static int check_geometry(vhd_disk *d, uint64_t fsize)
{
	struct vhd_image *v = IMG(d);
	struct vhd_header *h = &v->header;
	uint64_t need, bat_bytes;

	if (h->block_size < VHD_MIN_BLOCK || h->block_size > VHD_MAX_BLOCK ||
	    (h->block_size & (h->block_size - 1)))
		return disk_error(d, VHD_E_CORRUPT,
				  "block size %u is not a power of two between 4 KiB and 256 MiB",
				  h->block_size);
	v->block_size = h->block_size;
	v->block_shift = (uint32_t)__builtin_ctz(h->block_size);
	v->bitmap_size = vhd_bitmap_size(h->block_size);
	need = (d->size + v->block_size - 1) >> v->block_shift;
	v->nblocks = (uint32_t)need;
	if (h->max_table_entries < need)
		return disk_error(d, VHD_E_CORRUPT,
				  "max table entries %u is too small for %llu bytes (%llu blocks needed)",
				  h->max_table_entries,
				  (unsigned long long)d->size,
				  (unsigned long long)need);
	if ((uint64_t)h->max_table_entries << v->block_shift >
	    VHD_MAX_SIZE + ((uint64_t)v->block_size << 1))
		return disk_error(d, VHD_E_CORRUPT,
				  "max table entries %u addresses more than the 2040 GiB limit",
				  h->max_table_entries);
	v->max_entries = h->max_table_entries;
	bat_bytes = vhd_bat_size(v->max_entries);
	if (h->table_offset < VHD_FOOTER_SIZE || h->table_offset > fsize ||
	    fsize - h->table_offset < bat_bytes)
		return disk_error(d, VHD_E_TRUNCATED,
				  "BAT at offset %llu (%llu bytes) lies past the end of the file (%llu bytes)",
				  (unsigned long long)h->table_offset,
				  (unsigned long long)bat_bytes,
				  (unsigned long long)fsize);
	return 0;
}

static int read_bat(vhd_disk *d)
{
	struct vhd_image *v = IMG(d);
	uint64_t bytes = vhd_bat_size(v->max_entries);
	uint8_t *raw = malloc(bytes);
	int rc;

	v->bat = malloc((size_t)v->max_entries * sizeof(uint32_t));
	v->bitmaps = calloc(v->max_entries, sizeof(*v->bitmaps));
	v->bm_dirty = calloc(v->max_entries, 1);
	v->bm_dirty_list = malloc((size_t)v->max_entries * sizeof(uint32_t));
	v->bat_dirty = calloc(bytes / VHD_SECTOR, 1);
	v->bat_dirty_list = malloc(bytes / VHD_SECTOR * sizeof(uint32_t));
	if (!raw || !v->bat || !v->bitmaps || !v->bm_dirty ||
	    !v->bm_dirty_list || !v->bat_dirty || !v->bat_dirty_list) {
		free(raw);
		return disk_error(d, -ENOMEM, "out of memory for the BAT");
	}
	rc = io_read_full(d->io, raw, bytes, v->header.table_offset);
	if (rc < 0) {
		free(raw);
		return disk_error(d, rc, "cannot read BAT: %s", vhd_strerror(rc));
	}
	for (uint32_t i = 0; i < v->max_entries; i++)
		v->bat[i] = get_be32(raw + 4 * (size_t)i);
	free(raw);
	return 0;
}

struct range {
	uint64_t start, end;
	uint32_t block;		/* UINT32_MAX for metadata */
	const char *what;
};

static int range_cmp(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return 0;
}

/* Describe a range for an overlap message. */
static void range_name(const struct range *r, char *buf, size_t len)
{
	if (r->block == UINT32_MAX)
		snprintf(buf, len, "%s", r->what);
	else
		snprintf(buf, len, "block %u", r->block);
}

/* Drop a bad BAT entry (tolerant open): the block reads as unallocated. */
static void quarantine(struct vhd_image *v, uint32_t block)
{
	v->bat[block] = VHD_BAT_UNUSED;
}

/* Every allocated block must lie inside the file, outside the metadata, and
 * apart from every other block. */
static int check_blocks(vhd_disk *d, uint64_t fsize)
{
	struct vhd_image *v = IMG(d);
	struct vhd_header *h = &v->header;
	uint64_t data_limit = fsize - v->footer_len;
	size_t n = 0, cap = (size_t)v->allocated + 4 + VHD_LOCATOR_COUNT;
	struct range *r;
	int rc = 0;

	v->allocated = 0;
	for (uint32_t i = 0; i < v->max_entries; i++)
		if (v->bat[i] != VHD_BAT_UNUSED)
			v->allocated++;
	cap += v->allocated;
	r = malloc(cap * sizeof(*r));
	if (!r)
		return disk_error(d, -ENOMEM, "out of memory");
	if (v->footer_len)
		r[n++] = (struct range){ 0, VHD_FOOTER_SIZE, UINT32_MAX, "the footer copy" };
	r[n++] = (struct range){ v->footer.data_offset,
				 v->footer.data_offset + VHD_HEADER_SIZE,
				 UINT32_MAX, "the dynamic header" };
	r[n++] = (struct range){ h->table_offset,
				 h->table_offset + vhd_bat_size(v->max_entries),
				 UINT32_MAX, "the BAT" };
	v->meta_end = 0;
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
		struct vhd_locator *l = &h->loc[i];
		uint64_t space = vhd_locator_space(l);
		if (l->code == VHD_PLAT_NONE || space == 0)
			continue;
		if (l->data_offset > data_limit || data_limit - l->data_offset < space) {
			rc = disk_problem(d, VHD_CHECK_ERROR, VHD_E_TRUNCATED,
					 "parent locator %d data (offset %llu, %llu bytes) lies past the end of the file",
					 i, (unsigned long long)l->data_offset,
					 (unsigned long long)space);
			if (rc < 0)
				goto out;
			continue;
		}
		r[n++] = (struct range){ l->data_offset, l->data_offset + space,
					 UINT32_MAX, "a parent locator" };
	}
	for (size_t i = 0; i < n; i++)
		if (r[i].end > v->meta_end)
			v->meta_end = r[i].end;
	for (uint32_t i = 0; i < v->max_entries; i++) {
		uint64_t start, end;
		if (v->bat[i] == VHD_BAT_UNUSED)
			continue;
		start = (uint64_t)v->bat[i] * VHD_SECTOR;
		/* The last block may stop at the end of the virtual disk. */
		end = start + block_span(v, d->size, i);
		if (end > data_limit) {
			rc = disk_problem(d, VHD_CHECK_ERROR, VHD_E_CORRUPT,
					 "BAT entry %u points past the end of the file (sector %u, file %llu bytes)",
					 i, v->bat[i], (unsigned long long)fsize);
			if (rc < 0)
				goto out;
			quarantine(v, i);
			v->allocated--;
			continue;
		}
		r[n++] = (struct range){ start, start + block_total(v), i, NULL };
	}
	qsort(r, n, sizeof(*r), range_cmp);
	for (size_t i = 1; i < n; i++) {
		char a[64], b[64];
		if (r[i].start >= r[i - 1].end)
			continue;
		range_name(&r[i - 1], a, sizeof(a));
		range_name(&r[i], b, sizeof(b));
		if (r[i].block == UINT32_MAX && r[i - 1].block == UINT32_MAX) {
			rc = disk_error(d, VHD_E_CORRUPT, "%s overlaps %s", a, b);
			goto out;
		}
		rc = disk_problem(d, VHD_CHECK_ERROR, VHD_E_CORRUPT,
				 "%s (sector %llu) overlaps %s", b,
				 (unsigned long long)(r[i].start / VHD_SECTOR), a);
		if (rc < 0)
			goto out;
		/* Quarantine the later data block; keep the metadata. */
		{
			struct range *bad = r[i].block != UINT32_MAX ? &r[i] : &r[i - 1];
			if (bad->block != UINT32_MAX && v->bat[bad->block] != VHD_BAT_UNUSED) {
				quarantine(v, bad->block);
				v->allocated--;
			}
			if (bad == &r[i])
				r[i] = r[i - 1];	/* keep the earlier extent */
		}
	}
	/* Where new blocks go: at the footer, never into an unreferenced gap
	 * before it (I4; vhd_prepare_writes zeroes and reclaims it). */
	v->footer_pos = v->footer_len ? fsize - v->footer_len : fsize;
	v->next_block = (v->footer_pos + VHD_SECTOR - 1) & ~(uint64_t)(VHD_SECTOR - 1);
out:
	free(r);
	return rc;
}

/* End of the last structure the BAT or the header references. */
static uint64_t used_end(struct vhd_image *v)
{
	uint64_t end = v->meta_end;

	for (uint32_t i = 0; i < v->max_entries; i++) {
		uint32_t e = v->bat[i];
		if (e != VHD_BAT_UNUSED &&
		    (uint64_t)e * VHD_SECTOR + block_total(v) > end)
			end = (uint64_t)e * VHD_SECTOR + block_total(v);
	}
	return (end + VHD_SECTOR - 1) & ~(uint64_t)(VHD_SECTOR - 1);
}

static void report_leak(vhd_disk *d)
{
	struct vhd_image *v = IMG(d);
	uint64_t end = used_end(v);

	if (v->footer_len && v->footer_pos > end)
		disk_problem(d, VHD_CHECK_INFO, 0,
			    "%llu bytes between the last block and the footer are not referenced (an interrupted write leaves such space; the next read-write open reuses it)",
			    (unsigned long long)(v->footer_pos - end));
}

static struct vhd_image *image_alloc(void)
{
	struct vhd_image *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	pthread_mutex_init(&v->meta_lock, NULL);
	pthread_mutex_init(&v->flush_lock, NULL);
	for (int i = 0; i < VHD_STRIPES; i++) {
		pthread_mutex_init(&v->stripe[i], NULL);
		pthread_rwlock_init(&v->move_lock[i], NULL);
	}
	return v;
}

int vhd_image_open(vhd_disk *d, struct chain_ctx *ctx)
{
	struct vhd_image *v = image_alloc();
	uint64_t fsize;
	int rc;

	if (!v)
		return disk_error(d, -ENOMEM, "out of memory");
	d->priv = v;
	d->ops = &vhd_fixed_ops;
	v->unsafe = !!(d->flags & VHD_OPEN_UNSAFE);
	rc = io_size(d->io, &fsize);
	if (rc < 0)
		return disk_error(d, rc, "cannot get size: %s", vhd_strerror(rc));
	rc = read_footer(d, fsize);
	if (rc == 0)
		rc = check_footer_fields(d, fsize, ctx->opts.size_rule);
	if (rc < 0)
		return rc;
	if (v->type == VHD_TYPE_FIXED)
		return 0;

	d->ops = &vhd_sparse_ops;
	rc = read_header(d, fsize);
	if (rc == 0)
		rc = check_geometry(d, fsize);
	if (rc == 0)
		rc = read_bat(d);
	if (rc == 0)
		rc = check_blocks(d, fsize);
	if (rc < 0)
		return rc;
	if (d->flags & VHD_OPEN_TOLERANT)
		report_leak(d);
	if (v->type == VHD_TYPE_DIFF && !(d->flags & VHD_OPEN_NOPARENT)) {
		rc = vhd_resolve_parent(d, ctx);
		if (rc < 0)
			return rc;
	} else if (v->type == VHD_TYPE_DIFF) {
		vhd_resolve_parent(d, NULL);	/* name only */
	}
	/* A tolerant read-write open is repair's: it decides what happens to
	 * unreferenced space (which may hold the locator data an interrupted
	 * reparent's journal points at). */
	if (d->read_only || (d->flags & VHD_OPEN_TOLERANT))
		return 0;
	/* Moving blocks only pays when their old places can be punched;
	 * otherwise the file would grow by every block moved. */
	v->realign = (d->flags & VHD_OPEN_REALIGN) && d->io->ops->punch;
	return vhd_prepare_writes(d);
}
