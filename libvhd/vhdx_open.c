/*
 * vhdx_open.c -- open and validate a VHDX: file identifier, the current
 * header, the region table, metadata, the BAT; replay the log (in memory
 * for a read-only open); resolve the parent of a differencing disk.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "io.h"
#include "paths.h"
#include "vhd_codec.h"
#include "vhdx_image.h"

void vhdx_image_free(struct vhdx_image *x)
{
	if (!x)
		return;
	if (x->sb_pages) {
		for (uint64_t i = 0; i < x->nsb * (VHDX_SB_BLOCK / VHDX_PAGE); i++)
			free(x->sb_pages[i]);
		free(x->sb_pages);
	}
	free(x->bat);
	free(x->bat_dirty);
	free(x->bat_dirty_list);
	free(x->sb_dirty);
	free(x->sb_dirty_list);
	for (uint32_t i = 0; i < x->nmeta_pages; i++)
		free(x->meta_pages[i]);
	free(x->meta_pages);
	free(x->meta_page_offs);
	free(x->parent_linkage);
	free(x->parent_linkage2);
	free(x->relative_path);
	free(x->absolute_path);
	free(x->volume_path);
	pthread_mutex_destroy(&x->meta_lock);
	pthread_mutex_destroy(&x->flush_lock);
	for (int i = 0; i < VHDX_STRIPES; i++)
		pthread_mutex_destroy(&x->stripe[i]);
	free(x);
}

/* Both headers; the valid one with the higher sequence number is current. */
static int read_headers(vhd_disk *d)
{
	struct vhdx_image *x = XIMG(d);
	uint8_t buf[VHDX_HEADER_SIZE];
	struct vhdx_header h[2];
	int rc[2];

	for (int i = 0; i < 2; i++) {
		rc[i] = io_read_full(d->io, buf, sizeof(buf),
				     i ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF);
		if (rc[i] == 0)
			rc[i] = vhdx_header_decode(buf, &h[i]);
		if (rc[i] == 0 && (h[i].version != 1 || h[i].log_version != 0))
			rc[i] = VHD_E_UNSUPPORTED;
	}
	if (rc[0] && rc[1])
		return disk_error(d, VHD_E_CORRUPT,
				  "both VHDX headers are invalid (%s; %s)",
				  vhd_strerror(rc[0]), vhd_strerror(rc[1]));
	for (int i = 0; i < 2; i++)
		if (rc[i])
			disk_problem(d, VHD_CHECK_WARN, VHD_E_CORRUPT,
				     "header %d is invalid (%s); using header %d", i + 1,
				     vhd_strerror(rc[i]), 2 - i);
	x->hdr_slot = rc[0] ? 1 : rc[1] ? 0 : h[1].sequence > h[0].sequence;
	x->hdr = h[x->hdr_slot];
	return 0;
}

static int read_regions(vhd_disk *d, uint64_t fsize)
{
	struct vhdx_image *x = XIMG(d);
	struct vhdx_region_table *t = malloc(sizeof(*t));
	uint8_t *buf = malloc(VHDX_REGION_SIZE);
	int rc = -ENOMEM, r1 = 0;

	if (!t || !buf)
		goto out;
	for (int i = 0; i < 2; i++) {
		rc = io_read_full(d->io, buf, VHDX_REGION_SIZE,
				  i ? VHDX_REGION2_OFF : VHDX_REGION1_OFF);
		if (rc == 0)
			rc = vhdx_region_decode(buf, t);
		if (rc == 0)
			break;
		if (i == 0)
			r1 = rc;
	}
	if (rc < 0) {
		rc = disk_error(d, rc == VHD_E_CHECKSUM ? VHD_E_CHECKSUM : VHD_E_CORRUPT,
				"region table is invalid in both copies (%s)",
				vhd_strerror(rc));
		goto out;
	}
	if (r1) {
		disk_problem(d, VHD_CHECK_WARN, VHD_E_CORRUPT,
			     "region table 1 is invalid (%s); using copy 2",
			     vhd_strerror(r1));
	} else {
		/* Copy 2 must be valid and say the same. */
		uint8_t *b2 = malloc(VHDX_REGION_SIZE);
		struct vhdx_region_table *t2 = malloc(sizeof(*t2));
		int r2 = !b2 || !t2 ? -ENOMEM :
			 io_read_full(d->io, b2, VHDX_REGION_SIZE, VHDX_REGION2_OFF);
		if (r2 == 0)
			r2 = vhdx_region_decode(b2, t2);
		if (r2 == 0 && t2->count != t->count)
			r2 = VHD_E_CORRUPT;
		for (uint32_t i = 0; r2 == 0 && i < t->count; i++)
			if (!vhdx_guid_eq(&t2->e[i].guid, &t->e[i].guid) ||
			    t2->e[i].offset != t->e[i].offset ||
			    t2->e[i].length != t->e[i].length ||
			    t2->e[i].required != t->e[i].required)
				r2 = VHD_E_CORRUPT;
		if (r2 < 0 && r2 != -ENOMEM)
			disk_problem(d, VHD_CHECK_WARN, VHD_E_CORRUPT,
				     "region table 2 is invalid or differs from table 1 (%s)",
				     vhd_strerror(r2));
		free(b2);
		free(t2);
	}
	for (uint32_t i = 0; i < t->count; i++) {
		struct vhdx_region *r = &t->e[i];
		if (vhdx_guid_eq(&r->guid, &VHDX_GUID_BAT)) {
			x->bat_off = r->offset;
			x->bat_len = r->length;
		} else if (vhdx_guid_eq(&r->guid, &VHDX_GUID_METADATA)) {
			x->meta_off = r->offset;
			x->meta_len = r->length;
		} else if (r->required) {
			char g[39];
			vhdx_guid_format(&r->guid, g);
			rc = disk_error(d, VHD_E_UNSUPPORTED,
					"unknown required region %s", g);
			goto out;
		} else {
			continue;
		}
		if (r->offset % VHDX_MiB || r->offset < VHDX_MiB ||
		    r->offset > fsize || fsize - r->offset < r->length) {
			rc = disk_error(d, VHD_E_TRUNCATED,
					"region at %llu (%u bytes) lies outside the file (%llu bytes)",
					(unsigned long long)r->offset, r->length,
					(unsigned long long)fsize);
			goto out;
		}
	}
	rc = 0;
	if (!x->bat_len || !x->meta_len)
		rc = disk_error(d, VHD_E_CORRUPT, "the %s region is missing",
				x->bat_len ? "metadata" : "BAT");
out:
	free(t);
	free(buf);
	return rc;
}

/* Read a metadata item into @out (exactly @len bytes expected). */
static int meta_item(vhd_disk *d, const struct vhdx_meta_entry *e, void *out,
		     uint32_t len)
{
	struct vhdx_image *x = XIMG(d);

	if (e->length < len || e->offset < VHDX_META_TABLE_SIZE ||
	    e->offset > x->meta_len || x->meta_len - e->offset < e->length)
		return disk_error(d, VHD_E_CORRUPT,
				  "metadata item at %u (%u bytes) lies outside the metadata region",
				  e->offset, e->length);
	return io_read_full(d->io, out, len, x->meta_off + e->offset);
}

static char *utf16le_string(const uint8_t *p, uint32_t bytes)
{
	uint32_t n = bytes / 2;
	uint16_t *u = malloc((n + 1) * 2);
	char *s = malloc((size_t)n * 4 + 1);

	if (!u || !s || bytes % 2)
		goto fail;
	for (uint32_t i = 0; i < n; i++)
		u[i] = get_le16(p + 2 * i);
	if (vhd_utf16_to_utf8(u, n, s, (size_t)n * 4 + 1, false) < 0)
		goto fail;
	free(u);
	return s;
fail:
	free(u);
	free(s);
	return NULL;
}

static int parse_parent_locator(vhd_disk *d, const struct vhdx_meta_entry *e)
{
	struct vhdx_image *x = XIMG(d);
	uint8_t *buf;
	vhdx_guid type;
	uint16_t count;
	int rc;

	if (e->length < 20 || e->length > VHDX_MiB)
		return disk_error(d, VHD_E_CORRUPT, "parent locator has a bad length %u",
				  e->length);
	buf = malloc(e->length);
	if (!buf)
		return -ENOMEM;
	rc = meta_item(d, e, buf, e->length);
	if (rc < 0)
		goto out;
	memcpy(&type, buf, 16);
	count = get_le16(buf + 18);
	if (!vhdx_guid_eq(&type, &VHDX_GUID_PARENT_TYPE)) {
		rc = disk_error(d, VHD_E_UNSUPPORTED, "unknown parent locator type");
		goto out;
	}
	if (20 + 12ull * count > e->length) {
		rc = disk_error(d, VHD_E_CORRUPT, "parent locator has too many entries");
		goto out;
	}
	for (uint16_t i = 0; i < count; i++) {
		const uint8_t *p = buf + 20 + 12 * i;
		uint32_t ko = get_le32(p), vo = get_le32(p + 4);
		uint16_t kl = get_le16(p + 8), vl = get_le16(p + 10);
		char *key, *val, **slot = NULL;
		if ((uint64_t)ko + kl > e->length || (uint64_t)vo + vl > e->length) {
			rc = disk_error(d, VHD_E_CORRUPT, "parent locator entry %u lies outside it", i);
			goto out;
		}
		key = utf16le_string(buf + ko, kl);
		val = utf16le_string(buf + vo, vl);
		if (!key || !val) {
			free(key);
			free(val);
			rc = disk_error(d, VHD_E_CORRUPT, "parent locator entry %u is not valid UTF-16", i);
			goto out;
		}
		if (!strcmp(key, "parent_linkage")) slot = &x->parent_linkage;
		else if (!strcmp(key, "parent_linkage2")) slot = &x->parent_linkage2;
		else if (!strcmp(key, "relative_path")) slot = &x->relative_path;
		else if (!strcmp(key, "absolute_win32_path")) slot = &x->absolute_path;
		else if (!strcmp(key, "volume_path")) slot = &x->volume_path;
		free(key);
		if (slot) {
			free(*slot);
			*slot = val;
		} else {
			free(val);
		}
	}
	rc = x->parent_linkage ? 0 :
		disk_error(d, VHD_E_CORRUPT, "parent locator has no parent_linkage");
out:
	free(buf);
	return rc;
}

static int read_metadata(vhd_disk *d)
{
	struct vhdx_image *x = XIMG(d);
	struct vhdx_meta_table *t = malloc(sizeof(*t));
	uint8_t *buf = malloc(VHDX_META_TABLE_SIZE);
	uint8_t v[16];
	bool have[5] = { false };
	int rc = -ENOMEM;

	if (!t || !buf)
		goto out;
	rc = io_read_full(d->io, buf, VHDX_META_TABLE_SIZE, x->meta_off);
	if (rc == 0)
		rc = vhdx_meta_decode(buf, t);
	if (rc < 0) {
		rc = disk_error(d, VHD_E_CORRUPT, "metadata table is invalid (%s)",
				vhd_strerror(rc));
		goto out;
	}
	for (uint16_t i = 0; i < t->count && rc == 0; i++) {
		struct vhdx_meta_entry *e = &t->e[i];
		if (vhdx_guid_eq(&e->id, &VHDX_GUID_FILE_PARAMS)) {
			rc = meta_item(d, e, v, 8);
			x->block_size = get_le32(v);
			x->leave_allocated = get_le32(v + 4) & VHDX_PARAM_LEAVE_ALLOCATED;
			x->has_parent = get_le32(v + 4) & VHDX_PARAM_HAS_PARENT;
			have[0] = true;
		} else if (vhdx_guid_eq(&e->id, &VHDX_GUID_DISK_SIZE)) {
			rc = meta_item(d, e, v, 8);
			d->size = get_le64(v);
			x->size_item_off = e->offset;
			have[1] = true;
		} else if (vhdx_guid_eq(&e->id, &VHDX_GUID_PAGE83)) {
			rc = meta_item(d, e, v, 16);
			memcpy(&x->page83, v, 16);
		} else if (vhdx_guid_eq(&e->id, &VHDX_GUID_LOGICAL_SECTOR)) {
			rc = meta_item(d, e, v, 4);
			x->lsec = get_le32(v);
			have[2] = true;
		} else if (vhdx_guid_eq(&e->id, &VHDX_GUID_PHYSICAL_SECTOR)) {
			rc = meta_item(d, e, v, 4);
			x->psec = get_le32(v);
			have[3] = true;
		} else if (vhdx_guid_eq(&e->id, &VHDX_GUID_PARENT_LOCATOR)) {
			rc = parse_parent_locator(d, e);
			have[4] = true;
		} else if (e->flags & VHDX_META_REQUIRED) {
			char g[39];
			vhdx_guid_format(&e->id, g);
			rc = disk_error(d, VHD_E_UNSUPPORTED,
					"unknown required metadata item %s", g);
		}
	}
	if (rc < 0)
		goto out;
	if (!have[0] || !have[1] || !have[2] || !have[3]) {
		rc = disk_error(d, VHD_E_CORRUPT,
				"required metadata is missing (file parameters, size or sector sizes)");
		goto out;
	}
	if (x->has_parent != have[4]) {
		rc = disk_error(d, VHD_E_CORRUPT, x->has_parent
				? "differencing disk without a parent locator"
				: "parent locator in a disk without a parent");
		goto out;
	}
	rc = 0;
out:
	free(t);
	free(buf);
	return rc;
}

static int check_geometry(vhd_disk *d)
{
	struct vhdx_image *x = XIMG(d);
	uint64_t bat_bytes;

	if (x->lsec != 512 && x->lsec != 4096)
		return disk_error(d, VHD_E_CORRUPT, "logical sector size %u is not 512 or 4096", x->lsec);
	if (x->psec != 512 && x->psec != 4096)
		return disk_error(d, VHD_E_CORRUPT, "physical sector size %u is not 512 or 4096", x->psec);
	if (x->block_size < VHDX_MIN_BLOCK || x->block_size > VHDX_MAX_BLOCK ||
	    (x->block_size & (x->block_size - 1)))
		return disk_error(d, VHD_E_CORRUPT,
				  "block size %u is not a power of two between 1 and 256 MiB",
				  x->block_size);
	if (d->size > VHDX_MAX_SIZE)
		return disk_error(d, VHD_E_TOO_BIG,
				  "disk size %llu bytes is over the VHDX limit of 64 TiB",
				  (unsigned long long)d->size);
	if (d->size == 0 || d->size % x->lsec)
		return disk_error(d, VHD_E_CORRUPT,
				  "disk size %llu is not a positive multiple of the sector size %u",
				  (unsigned long long)d->size, x->lsec);
	x->block_shift = (uint32_t)__builtin_ctz(x->block_size);
	x->chunk_ratio = ((uint64_t)1 << 23) * x->lsec / x->block_size;
	x->nblocks = (d->size + x->block_size - 1) / x->block_size;
	x->nsb = (x->nblocks + x->chunk_ratio - 1) / x->chunk_ratio;
	if (x->has_parent)
		x->nentries = x->nsb * (x->chunk_ratio + 1);
	else
		x->nentries = x->nblocks + (x->nblocks - 1) / x->chunk_ratio;
	bat_bytes = x->nentries * 8;
	if (bat_bytes > x->bat_len)
		return disk_error(d, VHD_E_CORRUPT,
				  "BAT region (%llu bytes) is too small for %llu entries",
				  (unsigned long long)x->bat_len,
				  (unsigned long long)x->nentries);
	return 0;
}

static int read_bat(vhd_disk *d, uint64_t fsize)
{
	struct vhdx_image *x = XIMG(d);
	uint64_t bytes = x->nentries * 8;
	uint64_t pages = (x->bat_len + VHDX_PAGE - 1) / VHDX_PAGE;
	uint64_t sb_pages = x->nsb * (VHDX_SB_BLOCK / VHDX_PAGE);
	uint8_t *raw = malloc(bytes);
	int rc;

	x->bat = malloc(bytes);
	x->bat_dirty = calloc(pages, 1);
	x->bat_dirty_list = malloc(pages * sizeof(uint64_t));
	x->sb_pages = calloc(sb_pages ? sb_pages : 1, sizeof(uint8_t *));
	x->sb_dirty = calloc(sb_pages ? sb_pages : 1, 1);
	x->sb_dirty_list = malloc((sb_pages ? sb_pages : 1) * sizeof(uint64_t));
	if (!raw || !x->bat || !x->bat_dirty || !x->bat_dirty_list ||
	    !x->sb_pages || !x->sb_dirty || !x->sb_dirty_list) {
		free(raw);
		return disk_error(d, -ENOMEM, "out of memory for the BAT");
	}
	rc = io_read_full(d->io, raw, bytes, x->bat_off);
	if (rc < 0) {
		free(raw);
		return disk_error(d, rc, "cannot read the BAT: %s", vhd_strerror(rc));
	}
	for (uint64_t i = 0; i < x->nentries; i++)
		x->bat[i] = get_le64(raw + 8 * i);
	free(raw);
	return 0;
}

/* Every entry's state must fit the disk type, and every block must lie
 * inside the file, 1 MiB aligned, clear of the headers, log, metadata and
 * BAT, and of every other block. */
bool vhdx_entry_outside_file(vhd_disk *d, uint64_t i, uint64_t e, uint64_t fsize)
{
	struct vhdx_image *x = XIMG(d);
	bool is_sb = (i + 1) % (x->chunk_ratio + 1) == 0;
	uint64_t off = vhdx_bat_offset(e), len = is_sb ? VHDX_SB_BLOCK : x->block_size;
	uint64_t end = x->bat_off + x->bat_len;

	if (x->meta_off + x->meta_len > end)
		end = x->meta_off + x->meta_len;
	if (x->hdr.log_offset + x->hdr.log_length > end)
		end = x->hdr.log_offset + x->hdr.log_length;
	if (!is_sb) {
		/* The last payload block may end at the end of the disk. */
		uint64_t b = i - i / (x->chunk_ratio + 1);
		uint64_t need = d->size - b * x->block_size;
		if (need < len)
			len = need;
	}
	return off < end || off % VHDX_MiB || off > fsize || fsize - off < len;
}

static int check_bat(vhd_disk *d, uint64_t fsize)
{
	struct vhdx_image *x = XIMG(d);

	x->allocated = 0;
	for (uint64_t i = 0; i < x->nentries; i++) {
		uint64_t e = x->bat[i];
		uint32_t st = vhdx_bat_state(e);
		bool is_sb = (i + 1) % (x->chunk_ratio + 1) == 0;
		bool present;
		int rc;

		if (is_sb) {
			present = st == VHDX_SB_PRESENT;
			if (st != VHDX_SB_NOT_PRESENT && !present)
				return disk_error(d, VHD_E_CORRUPT,
						  "sector bitmap entry %llu has invalid state %u",
						  (unsigned long long)i, st);
			if (present && !x->has_parent)
				return disk_error(d, VHD_E_CORRUPT,
						  "sector bitmap block present in a disk without a parent");
		} else {
			present = st == VHDX_PAYLOAD_FULLY_PRESENT ||
				  st == VHDX_PAYLOAD_PARTIALLY_PRESENT;
			if (st == 4 || (st == VHDX_PAYLOAD_PARTIALLY_PRESENT && !x->has_parent))
				return disk_error(d, VHD_E_CORRUPT,
						  "BAT entry %llu has state %u, invalid for a %s disk",
						  (unsigned long long)i, st,
						  x->has_parent ? "differencing" : "non-differencing");
		}
		if (!present)
			continue;
		if (vhdx_entry_outside_file(d, i, e, fsize)) {
			rc = disk_problem(d, VHD_CHECK_ERROR, VHD_E_CORRUPT,
					  "BAT entry %llu points at %llu, outside the data area of the file (%llu bytes)",
					  (unsigned long long)i,
					  (unsigned long long)vhdx_bat_offset(e),
					  (unsigned long long)fsize);
			if (rc < 0)
				return rc;
			x->bat[i] = 0;
			continue;
		}
		x->allocated++;
	}
	return 0;
}

/* Overlap between blocks is checked by sorting the offsets. */
struct placed {
	uint64_t off, len, entry;
};

static int cmp_placed(const void *a, const void *b)
{
	const struct placed *x = a, *y = b;

	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return x->entry < y->entry ? -1 : x->entry > y->entry;
}

/*
 * No two present blocks may share file space.  A tolerant open (check,
 * repair) drops the entry of the later of two overlapping blocks in file
 * order (ties: the higher entry), so that block reads as absent and repair
 * clears its entry; the block it overlaps keeps its data.
 */
static int check_overlap(vhd_disk *d)
{
	struct vhdx_image *x = XIMG(d);
	struct placed *p = malloc((x->allocated + 1) * sizeof(*p));
	uint64_t n = 0, kept_end = 0, kept = 0;
	int rc = 0;

	if (!p)
		return disk_error(d, -ENOMEM, "out of memory");
	for (uint64_t i = 0; i < x->nentries; i++) {
		uint64_t e = x->bat[i];
		uint32_t st = vhdx_bat_state(e);
		bool is_sb = (i + 1) % (x->chunk_ratio + 1) == 0;
		if ((is_sb && st == VHDX_SB_PRESENT) ||
		    (!is_sb && (st == VHDX_PAYLOAD_FULLY_PRESENT ||
				st == VHDX_PAYLOAD_PARTIALLY_PRESENT)))
			p[n++] = (struct placed){ vhdx_bat_offset(e),
						  is_sb ? VHDX_SB_BLOCK : x->block_size, i };
	}
	qsort(p, n, sizeof(*p), cmp_placed);
	for (uint64_t i = 0; i < n && rc == 0; i++) {
		if (i && p[i].off < kept_end) {
			rc = disk_problem(d, VHD_CHECK_ERROR, VHD_E_CORRUPT,
					  "BAT entry %llu (block at file offset %llu) overlaps BAT entry %llu",
					  (unsigned long long)p[i].entry,
					  (unsigned long long)p[i].off,
					  (unsigned long long)kept);
			x->bat[p[i].entry] = 0;		/* not present */
			x->allocated--;
			continue;
		}
		kept = p[i].entry;
		kept_end = p[i].off + p[i].len;
	}
	/* New blocks go after everything, 1 MiB aligned (X1). */
	x->file_end = kept_end > x->file_end ? kept_end : x->file_end;
	free(p);
	return rc;
}

static struct vhdx_image *image_alloc(void)
{
	struct vhdx_image *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	pthread_mutex_init(&x->meta_lock, NULL);
	pthread_mutex_init(&x->flush_lock, NULL);
	for (int i = 0; i < VHDX_STRIPES; i++)
		pthread_mutex_init(&x->stripe[i], NULL);
	return x;
}

int vhdx_resolve_parent(vhd_disk *d, struct chain_ctx *ctx);

int vhdx_image_open(vhd_disk *d, struct chain_ctx *ctx)
{
	struct vhdx_image *x = image_alloc();
	struct vhd_io *overlay = NULL;
	uint8_t sig[8];
	uint64_t fsize;
	int rc;

	if (!x)
		return disk_error(d, -ENOMEM, "out of memory");
	d->priv = x;
	d->ops = &vhdx_ops;
	x->unsafe = !!(d->flags & VHD_OPEN_UNSAFE);
	rc = io_size(d->io, &fsize);
	if (rc == 0)
		rc = io_read_full(d->io, sig, 8, 0);
	if (rc < 0 || memcmp(sig, "vhdxfile", 8))
		return disk_error(d, VHD_E_FORMAT, "not a VHDX (no \"vhdxfile\" identifier)");
	if (fsize < 1 * VHDX_MiB)
		return disk_error(d, VHD_E_TRUNCATED, "file is %llu bytes, too short for a VHDX",
				  (unsigned long long)fsize);
	rc = read_headers(d);
	if (rc < 0)
		return rc;
	if (x->hdr.log_offset % VHDX_MiB || x->hdr.log_length % VHDX_MiB ||
	    x->hdr.log_offset < VHDX_MiB || x->hdr.log_offset > fsize ||
	    fsize - x->hdr.log_offset < x->hdr.log_length)
		return disk_error(d, VHD_E_CORRUPT,
				  "log at %llu (%u bytes) is misplaced or outside the file",
				  (unsigned long long)x->hdr.log_offset, x->hdr.log_length);
	x->log_off = x->hdr.log_offset;
	x->log_len = x->hdr.log_length;
	if (!vhdx_guid_is_zero(&x->hdr.log_guid)) {
		/* Replay before anything else is read (read-only: in memory). */
		rc = vhdx_replay_log(d, !d->read_only, &overlay);
		if (rc < 0)
			return rc;
		if (overlay)
			d->io = overlay;
		rc = io_size(d->io, &fsize);
		if (rc < 0)
			return rc;
	}
	rc = read_regions(d, fsize);
	if (rc == 0)
		rc = read_metadata(d);
	if (rc == 0)
		rc = check_geometry(d);
	if (rc == 0)
		rc = read_bat(d, fsize);
	if (rc == 0)
		rc = check_bat(d, fsize);
	if (rc == 0)
		rc = check_overlap(d);
	if (rc < 0)
		return rc;
	{
		uint64_t end = x->bat_off + x->bat_len;
		if (x->meta_off + x->meta_len > end)
			end = x->meta_off + x->meta_len;
		if (x->log_off + x->log_len > end)
			end = x->log_off + x->log_len;
		if (x->file_end < end)
			x->file_end = end;
		/* X1: never reuse unreferenced space; start past EOF. */
		if (x->file_end < fsize)
			x->file_end = fsize;
		x->file_end = (x->file_end + VHDX_MiB - 1) & ~(uint64_t)(VHDX_MiB - 1);
	}
	if (x->has_parent && !(d->flags & VHD_OPEN_NOPARENT))
		return vhdx_resolve_parent(d, ctx);
	return 0;
}
