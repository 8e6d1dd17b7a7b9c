/*
 * vhdx_create.c -- create fixed, dynamic and differencing VHDX files.
 *
 * Layout written (MS-VHDX allows any order of the 1 MiB-aligned objects;
 * this is qemu's):
 *   0        file identifier, creator "vhdkit VERSION"
 *   64 KiB   header 1 (sequence 1)    128 KiB header 2 (sequence 0)
 *   192 KiB  region table             256 KiB its copy
 *   1 MiB    log (1 MiB, empty: LogGuid zero)
 *   2 MiB    metadata region (1 MiB): table, then items from +64 KiB:
 *            file parameters, disk size, page 83, logical and physical
 *            sector size, parent locator (differencing)
 *   3 MiB    BAT, rounded up to 1 MiB
 *   then     fixed disks: every payload block, FULLY_PRESENT, in order
 * Defaults as Hyper-V: block 32 MiB dynamic, 2 MiB fixed and differencing;
 * logical sector 512, physical 4096.  A differencing disk takes its
 * parent's size, sector sizes and page 83 identity, and records the
 * parent's DataWriteGuid as parent_linkage.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "endian.h"
#include "io.h"
#include "paths.h"
#include "vhd_codec.h"
#include "vhdx_image.h"

#define LOG_OFF   (1ull * VHDX_MiB)
#define META_OFF  (2ull * VHDX_MiB)
#define BAT_OFF   (3ull * VHDX_MiB)
#define ITEMS_OFF VHDX_META_TABLE_SIZE

struct new_vhdx {
	uint64_t size;
	uint32_t block, lsec, psec, params;
	vhdx_guid page83, parent_linkage;
	char *rel, *abs;	/* parent paths (Windows form for rel) */
};

static size_t put_utf16(uint8_t *out, const char *s)
{
	uint16_t u[PATH_MAX];
	int n = vhd_utf8_to_utf16(s, u, PATH_MAX);

	if (n < 0)
		return 0;
	for (int i = 0; i < n; i++)
		put_le16(out + 2 * i, u[i]);
	return (size_t)n * 2;
}

uint32_t vhdx_build_locator(const vhdx_guid *linkage, const char *rel,
			    const char *abs, uint8_t *p)
{
	char link[39];
	const char *keys[3] = { "parent_linkage", "relative_path", "absolute_win32_path" };
	const char *vals[3] = { link, rel, abs };
	uint32_t pos = 20 + 12 * 3;

	vhdx_guid_format(linkage, link);
	memcpy(p, &VHDX_GUID_PARENT_TYPE, 16);
	put_le16(p + 18, 3);
	for (int i = 0; i < 3; i++) {
		uint8_t *e = p + 20 + 12 * i;
		size_t kl = put_utf16(p + pos, keys[i]);
		put_le32(e, pos);
		put_le16(e + 8, (uint16_t)kl);
		pos += (uint32_t)kl;
		size_t vl = put_utf16(p + pos, vals[i]);
		put_le32(e + 4, pos);
		put_le16(e + 10, (uint16_t)vl);
		pos += (uint32_t)vl;
	}
	return pos;
}

static int write_metadata(struct vhd_io *io, const struct new_vhdx *n)
{
	struct vhdx_meta_table *t = calloc(1, sizeof(*t));
	uint8_t *region = calloc(1, VHDX_MiB);
	uint8_t *items = region + ITEMS_OFF;
	uint32_t loclen = 0;
	int rc = -ENOMEM;

	if (!t || !region)
		goto out;
	put_le32(items, n->block);
	put_le32(items + 4, n->params);
	put_le64(items + 8, n->size);
	memcpy(items + 16, &n->page83, 16);
	put_le32(items + 32, n->lsec);
	put_le32(items + 36, n->psec);
	t->e[0] = (struct vhdx_meta_entry){ VHDX_GUID_FILE_PARAMS, ITEMS_OFF, 8, VHDX_META_REQUIRED };
	t->e[1] = (struct vhdx_meta_entry){ VHDX_GUID_DISK_SIZE, ITEMS_OFF + 8, 8,
					    VHDX_META_VDISK | VHDX_META_REQUIRED };
	t->e[2] = (struct vhdx_meta_entry){ VHDX_GUID_PAGE83, ITEMS_OFF + 16, 16,
					    VHDX_META_VDISK | VHDX_META_REQUIRED };
	t->e[3] = (struct vhdx_meta_entry){ VHDX_GUID_LOGICAL_SECTOR, ITEMS_OFF + 32, 4,
					    VHDX_META_VDISK | VHDX_META_REQUIRED };
	t->e[4] = (struct vhdx_meta_entry){ VHDX_GUID_PHYSICAL_SECTOR, ITEMS_OFF + 36, 4,
					    VHDX_META_VDISK | VHDX_META_REQUIRED };
	t->count = 5;
	if (n->params & VHDX_PARAM_HAS_PARENT) {
		loclen = vhdx_build_locator(&n->parent_linkage, n->rel, n->abs, items + 48);
		t->e[5] = (struct vhdx_meta_entry){ VHDX_GUID_PARENT_LOCATOR, ITEMS_OFF + 48,
						    loclen, VHDX_META_REQUIRED };
		t->count = 6;
	}
	vhdx_meta_encode(t, region);
	rc = io_write_full(io, region, VHDX_MiB, META_OFF);
out:
	free(t);
	free(region);
	return rc;
}

static int write_headers(struct vhd_io *io, uint64_t bat_len)
{
	struct vhdx_region_table *t = calloc(1, sizeof(*t));
	uint8_t *buf = calloc(1, VHDX_REGION_SIZE);
	struct vhdx_header h = { 0 };
	int rc = -ENOMEM;

	if (!t || !buf)
		goto out;
	memcpy(buf, "vhdxfile", 8);
	put_utf16(buf + 8, "vhdkit " VHDKIT_VERSION);
	rc = io_write_full(io, buf, VHDX_REGION_SIZE, 0);
	h.version = 1;
	h.log_length = VHDX_MiB;
	h.log_offset = LOG_OFF;
	if (rc == 0)
		rc = vhdx_guid_random(&h.file_write);
	if (rc == 0)
		rc = vhdx_guid_random(&h.data_write);
	for (int i = 0; i < 2 && rc == 0; i++) {
		h.sequence = i ? 0 : 1;
		vhdx_header_encode(&h, buf);
		rc = io_write_full(io, buf, VHDX_HEADER_SIZE, i ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF);
	}
	t->count = 2;
	t->e[0] = (struct vhdx_region){ VHDX_GUID_BAT, BAT_OFF, (uint32_t)bat_len, true };
	t->e[1] = (struct vhdx_region){ VHDX_GUID_METADATA, META_OFF, VHDX_MiB, true };
	vhdx_region_encode(t, buf);
	for (int i = 0; i < 2 && rc == 0; i++)
		rc = io_write_full(io, buf, VHDX_REGION_SIZE, i ? VHDX_REGION2_OFF : VHDX_REGION1_OFF);
out:
	free(t);
	free(buf);
	return rc;
}

/* Geometry: entries and the BAT for @n. */
static void geometry(const struct new_vhdx *n, uint64_t *nblocks, uint64_t *entries)
{
	uint64_t chunk = ((uint64_t)1 << 23) * n->lsec / n->block;
	uint64_t nsb;

	*nblocks = (n->size + n->block - 1) / n->block;
	nsb = (*nblocks + chunk - 1) / chunk;
	*entries = (n->params & VHDX_PARAM_HAS_PARENT) ? nsb * (chunk + 1)
						       : *nblocks + (*nblocks - 1) / chunk;
}

static int write_bat(struct vhd_io *io, const struct new_vhdx *n, uint64_t entries,
		     uint64_t bat_len, uint64_t nblocks)
{
	uint64_t chunk = ((uint64_t)1 << 23) * n->lsec / n->block;
	uint64_t data = BAT_OFF + bat_len;
	uint8_t *bat = calloc(1, bat_len);
	int rc;

	if (!bat)
		return -ENOMEM;
	if (n->params & VHDX_PARAM_LEAVE_ALLOCATED)
		for (uint64_t b = 0; b < nblocks; b++)
			put_le64(bat + 8 * (b + b / chunk),
				 vhdx_bat_make(VHDX_PAYLOAD_FULLY_PRESENT, data + b * n->block));
	(void)entries;
	rc = io_write_full(io, bat, bat_len, BAT_OFF);
	free(bat);
	if (rc == 0 && (n->params & VHDX_PARAM_LEAVE_ALLOCATED))
		rc = io->ops->truncate(io, data + nblocks * n->block);
	return rc;
}

static int from_parent(const char *path, const struct vhd_create_opts *o,
		       struct new_vhdx *n)
{
	struct vhd_open_opts po = { .io = o->io };
	char abs[PATH_MAX], wrel[PATH_MAX];
	struct vhd_info pi;
	vhd_disk *p;
	int rc;

	if (!o->parent || !*o->parent)
		return path_error(path, -EINVAL, "a differencing disk needs a parent");
	if (strchr(o->parent, '\\'))
		return path_error(o->parent, -EINVAL,
				  "a parent path with a backslash cannot be stored: VHDX locators use it as the path separator");
	rc = vhd_open(o->parent, 0, &po, &p);
	if (rc < 0)
		return rc;
	vhd_get_info(p, &pi);
	vhd_close(p);
	if (pi.format != VHD_FMT_VHDX)
		return path_error(o->parent, -EINVAL, "parent of a differencing VHDX must be a VHDX");
	if (o->size && o->size != pi.size)
		return path_error(path, -EINVAL, "size %llu differs from the parent's size %llu",
				  (unsigned long long)o->size, (unsigned long long)pi.size);
	n->size = pi.size;
	n->lsec = pi.logical_sector;
	n->psec = pi.physical_sector;
	vhdx_guid_from_rfc(pi.uuid, &n->page83);
	vhdx_guid_from_rfc(pi.data_write_guid, &n->parent_linkage);
	rc = path_locator_forms(path, o->parent, abs, wrel, sizeof(abs));
	if (rc < 0)
		return path_error(path, rc, "parent path is too long");
	n->rel = strdup(wrel);
	n->abs = strdup(abs);
	return n->rel && n->abs ? 0 : -ENOMEM;
}

static int check_new(const char *path, const struct new_vhdx *n)
{
	if ((n->lsec != 512 && n->lsec != 4096) || (n->psec != 512 && n->psec != 4096))
		return path_error(path, -EINVAL, "sector sizes must be 512 or 4096");
	if (n->block < VHDX_MIN_BLOCK || n->block > VHDX_MAX_BLOCK || (n->block & (n->block - 1)))
		return path_error(path, -EINVAL,
				  "block size %u is not a power of two between 1 MiB and 256 MiB",
				  n->block);
	if (n->size == 0 || n->size % n->lsec)
		return path_error(path, -EINVAL,
				  "size %llu is not a positive multiple of the sector size %u",
				  (unsigned long long)n->size, n->lsec);
	if (n->size > VHDX_MAX_SIZE)
		return path_error(path, VHD_E_TOO_BIG,
				  "size %llu is over the VHDX limit of 64 TiB",
				  (unsigned long long)n->size);
	return 0;
}

int vhdx_image_create(const char *path, const struct vhd_create_opts *o)
{
	const struct vhd_io_factory *fac = o->io ? o->io : vhd_io_posix();
	struct new_vhdx n = { .size = o->size, .lsec = o->logical_sector ? o->logical_sector : 512,
			      .psec = o->physical_sector ? o->physical_sector : 4096 };
	uint64_t nblocks, entries, bat_len;
	struct vhd_io *io = NULL;
	int rc;

	switch (o->type) {
	case VHD_TYPE_FIXED:
		n.params = VHDX_PARAM_LEAVE_ALLOCATED;
		n.block = 2 * VHDX_MiB;
		break;
	case VHD_TYPE_DYNAMIC:
		n.block = 32 * VHDX_MiB;
		break;
	case VHD_TYPE_DIFF:
		n.params = VHDX_PARAM_HAS_PARENT;
		n.block = 2 * VHDX_MiB;
		rc = from_parent(path, o, &n);
		if (rc < 0)
			goto out;
		break;
	default:
		rc = path_error(path, -EINVAL, "unknown disk type %d", o->type);
		goto out;
	}
	if (o->block_size)
		n.block = o->block_size;
	if (o->type != VHD_TYPE_DIFF) {
		rc = vhdx_guid_random(&n.page83);
		if (rc < 0)
			goto out;
	}
	rc = check_new(path, &n);
	if (rc < 0)
		goto out;
	geometry(&n, &nblocks, &entries);
	bat_len = (entries * 8 + VHDX_MiB - 1) & ~(uint64_t)(VHDX_MiB - 1);
	rc = fac->open(fac, path, VHD_IO_CREATE, &io);
	if (rc < 0) {
		path_error(path, rc, "cannot create: %s", vhd_strerror(rc));
		goto out;
	}
	rc = write_headers(io, bat_len);
	if (rc == 0)
		rc = write_metadata(io, &n);
	if (rc == 0)
		rc = write_bat(io, &n, entries, bat_len, nblocks);
	if (rc == 0)
		rc = io->ops->flush(io);
	io_close(io);
	if (rc < 0) {
		path_error(path, rc, "cannot write new image: %s", vhd_strerror(rc));
		if (fac->remove)
			fac->remove(fac, path);
	}
out:
	free(n.rel);
	free(n.abs);
	return rc;
}
