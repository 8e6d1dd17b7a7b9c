/*
 * vhd_create.c -- create raw files and fixed, dynamic and differencing VHDs.
 *
 * Sparse layout we write (any order is legal; this one is qemu's and
 * blktap's):
 *   0                 footer copy (512)
 *   512               dynamic header (1024)
 *   1536              BAT, max_table_entries x 4, padded to 512
 *   after the BAT     differencing: W2ru then W2ku locator data, each padded
 *                     to 512 (data_space in bytes, as Windows writes it)
 *   then              footer (512); blocks are added before it
 *
 * Sizes are exact: the size asked for is the footer's current size (a
 * multiple of 512), and the creator is "win " so that readers that follow
 * the creator table (qemu, VirtualBox) trust current_size, not CHS.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "disk.h"
#include "endian.h"
#include "io.h"
#include "paths.h"
#include "vhd_codec.h"
#include "vhd_image.h"
#include "vhdx_image.h"

#define CREATOR_VERSION 0x000A0000u	/* the version Windows 10 writes */

struct new_vhd {
	const char *path;
	struct vhd_footer f;
	struct vhd_header h;
	uint8_t *loc_data[2];
	uint32_t loc_len[2];
};

static int fill_footer(struct new_vhd *n, const struct vhd_create_opts *o,
		       uint64_t size)
{
	struct vhd_footer *f = &n->f;
	static const uint8_t zero4[4];

	memset(f, 0, sizeof(*f));
	f->features = VHD_FEATURES_RESERVED;
	f->version = VHD_VERSION;
	f->data_offset = o->type == VHD_TYPE_FIXED ? VHD_NO_DATA_OFFSET : 512;
	f->timestamp = (uint32_t)(time(NULL) - VHD_EPOCH_UNIX);
	memcpy(f->creator_app, memcmp(o->creator_app, zero4, 4) ? o->creator_app : "win ", 4);
	f->creator_version = CREATOR_VERSION;
	f->creator_os = VHD_OS_WINDOWS;
	f->original_size = size;
	f->current_size = size;
	vhd_chs(size, &f->cylinders, &f->heads, &f->sectors_per_track);
	f->disk_type = o->type;
	return vhd_uuid_generate(f->uuid);
}

int vhd_locator_data(const char *path, uint8_t **out, uint32_t *len)
{
	uint16_t units[PATH_MAX];
	int count = vhd_utf8_to_utf16(path, units, PATH_MAX);

	if (count < 0)
		return count;
	*len = (uint32_t)count * 2;
	*out = calloc(1, *len + 1);
	if (!*out)
		return -ENOMEM;
	for (int i = 0; i < count; i++)
		put_le16(*out + 2 * i, units[i]);
	return 0;
}

int vhd_parent_name(const char *abs, uint16_t name[VHD_PARENT_NAME_UNITS])
{
	memset(name, 0, VHD_PARENT_NAME_UNITS * sizeof(uint16_t));
	if (vhd_utf8_to_utf16(abs, name, VHD_PARENT_NAME_UNITS) >= 0)
		return 0;
	memset(name, 0, VHD_PARENT_NAME_UNITS * sizeof(uint16_t));
	return vhd_utf8_to_utf16(path_basename_any(abs), name, VHD_PARENT_NAME_UNITS) < 0 ?
	       -ENAMETOOLONG : 0;
}

/* Parent identity, name and locators for a differencing child. */
static int fill_parent(struct new_vhd *n, const struct vhd_create_opts *o,
		       uint64_t *size)
{
	struct vhd_open_opts po = { .io = o->io };
	char abs[PATH_MAX], wrel[PATH_MAX];
	struct vhd_info pi;
	struct stat st;
	vhd_disk *p;
	int rc;

	if (!o->parent || !*o->parent)
		return path_error(n->path, -EINVAL,
				  "a differencing disk needs a parent");
	if (strchr(o->parent, '\\'))
		return path_error(o->parent, -EINVAL,
				  "a parent path with a backslash cannot be stored: VHD locators use it as the path separator");
	rc = vhd_open(o->parent, 0, &po, &p);
	if (rc < 0)
		return rc;
	vhd_get_info(p, &pi);
	memcpy(n->h.parent_uuid, pi.uuid, 16);
	if (*size == 0)
		*size = pi.size;
	vhd_close(p);
	if (pi.format != VHD_FMT_VHD)
		return path_error(o->parent, -EINVAL,
				  "parent of a differencing VHD must be a VHD");
	if (*size != pi.size)
		return path_error(n->path, -EINVAL,
				  "size %llu differs from the parent's size %llu",
				  (unsigned long long)*size,
				  (unsigned long long)pi.size);
	if (stat(o->parent, &st) == 0 && st.st_mtime > VHD_EPOCH_UNIX)
		n->h.parent_timestamp = (uint32_t)(st.st_mtime - VHD_EPOCH_UNIX);

	rc = path_locator_forms(n->path, o->parent, abs, wrel, sizeof(abs));
	if (rc < 0)
		return path_error(n->path, rc, "parent path is too long");
	rc = vhd_locator_data(wrel, &n->loc_data[0], &n->loc_len[0]);
	if (rc == 0)
		rc = vhd_locator_data(abs, &n->loc_data[1], &n->loc_len[1]);
	if (rc < 0)
		return path_error(n->path, rc, "parent path is not valid UTF-8 or too long");
	if (vhd_parent_name(abs, n->h.parent_name) < 0)
		return path_error(n->path, -ENAMETOOLONG, "parent file name is too long");
	return 0;
}

static int write_sparse(struct new_vhd *n, struct vhd_io *io, uint32_t nblocks)
{
	uint8_t fbuf[VHD_FOOTER_SIZE], hbuf[VHD_HEADER_SIZE];
	uint64_t bat_bytes = vhd_bat_size(nblocks);
	uint64_t pos = 1536 + bat_bytes;
	uint8_t *bat = malloc(bat_bytes);
	int rc = 0;

	if (!bat)
		return -ENOMEM;
	memset(bat, 0xFF, bat_bytes);
	n->h.data_offset = VHD_NO_DATA_OFFSET;
	n->h.table_offset = 1536;
	n->h.version = VHD_VERSION;
	n->h.max_table_entries = nblocks;
	for (int i = 0; i < 2 && n->loc_data[i]; i++) {
		struct vhd_locator *l = &n->h.loc[i];
		uint32_t space = (n->loc_len[i] + VHD_SECTOR - 1) & ~(VHD_SECTOR - 1);
		l->code = i == 0 ? VHD_PLAT_W2RU : VHD_PLAT_W2KU;
		l->data_space = space;
		l->data_length = n->loc_len[i];
		l->data_offset = pos;
		rc = io_write_full(io, n->loc_data[i], n->loc_len[i], pos);
		if (rc < 0)
			goto out;
		pos += space;
	}
	vhd_header_encode(&n->h, hbuf);
	vhd_footer_encode(&n->f, fbuf);
	rc = io_write_full(io, bat, bat_bytes, 1536);
	if (rc == 0)
		rc = io_write_full(io, hbuf, sizeof(hbuf), 512);
	if (rc == 0)
		rc = io_write_full(io, fbuf, sizeof(fbuf), 0);
	if (rc == 0)
		rc = io_write_full(io, fbuf, sizeof(fbuf), pos);
out:
	free(bat);
	return rc;
}

static int write_fixed(struct new_vhd *n, struct vhd_io *io, uint64_t size,
		       int preallocate)
{
	uint8_t fbuf[VHD_FOOTER_SIZE];
	int rc = io->ops->truncate(io, size);

	if (rc < 0)
		return rc;
	if (preallocate) {
		rc = write_zeros(NULL, io, 0, size);
		if (rc < 0)
			return rc;
	}
	vhd_footer_encode(&n->f, fbuf);
	return io_write_full(io, fbuf, sizeof(fbuf), size);
}

static int check_opts(const char *path, const struct vhd_create_opts *o,
		      uint64_t size, uint32_t bs)
{
	if (o->type != VHD_TYPE_FIXED && o->type != VHD_TYPE_DYNAMIC &&
	    o->type != VHD_TYPE_DIFF)
		return path_error(path, -EINVAL, "unknown disk type %d", o->type);
	if (size % VHD_SECTOR)
		return path_error(path, -EINVAL,
				  "size %llu is not a multiple of 512 bytes",
				  (unsigned long long)size);
	if (size > VHD_MAX_SIZE)
		return path_error(path, VHD_E_TOO_BIG,
				  "size %llu is over the VHD limit of 2040 GiB",
				  (unsigned long long)size);
	if (bs < VHD_MIN_BLOCK || bs > VHD_MAX_BLOCK || (bs & (bs - 1)))
		return path_error(path, -EINVAL,
				  "block size %u is not a power of two between 4 KiB and 256 MiB",
				  bs);
	return 0;
}

/* Round up to the next CHS-exact size, as Virtual PC and qemu do (at most
 * heads x sectors-per-track steps; sizes past the CHS limit stay as they are). */
static uint64_t chs_round_up(uint64_t size)
{
	uint16_t c;
	uint8_t h, s;

	if (size >= VHD_CHS_MAX_SECTORS * VHD_SECTOR)
		return size;
	for (uint64_t sz = size;; sz += VHD_SECTOR) {
		vhd_chs(sz, &c, &h, &s);
		if (vhd_chs_bytes(c, h, s) >= size)
			return vhd_chs_bytes(c, h, s);
	}
}

int vhd_image_create(const char *path, const struct vhd_create_opts *o)
{
	const struct vhd_io_factory *fac = o->io ? o->io : vhd_io_posix();
	uint32_t bs = o->block_size ? o->block_size : VHD_DEFAULT_BLOCK;
	struct new_vhd n = { .path = path };
	struct vhd_io *io = NULL;
	uint64_t size = o->size;
	int rc;

	memset(&n.h, 0, sizeof(n.h));
	if (o->type == VHD_TYPE_DIFF) {
		rc = fill_parent(&n, o, &size);
		if (rc < 0)
			goto out;
	} else if (size == 0) {
		rc = path_error(path, -EINVAL, "size must be given and above zero");
		goto out;
	}
	if (o->chs_exact && o->type != VHD_TYPE_DIFF)
		size = chs_round_up(size);
	rc = check_opts(path, o, size, bs);
	if (rc == 0)
		rc = fill_footer(&n, o, size);
	if (rc < 0)
		goto out;
	n.h.block_size = bs;
	rc = fac->open(fac, path, VHD_IO_CREATE, &io);
	if (rc < 0) {
		path_error(path, rc, "cannot create: %s", vhd_strerror(rc));
		goto out;
	}
	if (o->type == VHD_TYPE_FIXED)
		rc = write_fixed(&n, io, size, o->preallocate);
	else
		rc = write_sparse(&n, io, (uint32_t)((size + bs - 1) / bs));
	if (rc == 0)
		rc = io->ops->flush(io);
	io_close(io);
	if (rc < 0) {
		path_error(path, rc, "cannot write new image: %s", vhd_strerror(rc));
		if (fac->remove)
			fac->remove(fac, path);
	}
out:
	free(n.loc_data[0]);
	free(n.loc_data[1]);
	return rc;
}

static int raw_create(const char *path, const struct vhd_create_opts *o)
{
	const struct vhd_io_factory *fac = o->io ? o->io : vhd_io_posix();
	struct vhd_io *io;
	int rc = fac->open(fac, path, VHD_IO_CREATE, &io);

	if (rc < 0)
		return path_error(path, rc, "cannot create: %s", vhd_strerror(rc));
	rc = io->ops->truncate(io, o->size);
	if (rc == 0 && o->preallocate)
		rc = write_zeros(NULL, io, 0, o->size);
	if (rc == 0)
		rc = io->ops->flush(io);
	io_close(io);
	if (rc < 0) {
		path_error(path, rc, "cannot write new image: %s", vhd_strerror(rc));
		if (fac->remove)
			fac->remove(fac, path);
	}
	return rc;
}

int vhd_create(const char *path, const struct vhd_create_opts *o,
	       vhd_disk **out)
{
	struct vhd_open_opts oo = { .io = o->io };
	enum vhd_format fmt = o->format;
	int rc;

	/* A differencing disk takes its parent's format unless told. */
	if (fmt == VHD_FMT_AUTO && o->type == VHD_TYPE_DIFF && o->parent) {
		struct vhd_info pi;
		vhd_disk *p;
		rc = vhd_open(o->parent, VHD_OPEN_NOPARENT, &oo, &p);
		if (rc < 0)
			return rc;
		vhd_get_info(p, &pi);
		vhd_close(p);
		fmt = pi.format;
	}
	switch (fmt) {
	case VHD_FMT_AUTO:
	case VHD_FMT_VHD:
		rc = vhd_image_create(path, o);
		break;
	case VHD_FMT_RAW:
		rc = raw_create(path, o);
		break;
	case VHD_FMT_VHDX:
		rc = vhdx_image_create(path, o);
		break;
	default:
		rc = path_error(path, VHD_E_UNSUPPORTED,
				"creating this format is not supported");
	}
	if (rc < 0 || !out)
		return rc;
	return vhd_open(path, VHD_OPEN_RDWR, &oo, out);
}
