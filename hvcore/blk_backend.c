/*
 * blk_backend.c -- virtio-blk's disk I/O through libvhd's synchronous API.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "blk_backend.h"
#include "passthrough.h"

static void set_serial(struct blk_backend *b, const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	snprintf(b->serial, sizeof(b->serial), "%.20s", base);
}

void blk_backend_init(struct blk_backend *b, vhd_disk *d, const char *name,
		      bool read_only)
{
	struct vhd_info info;

	memset(b, 0, sizeof(*b));
	b->disk = d;
	b->size = vhd_size(d);
	b->logical_sector = 512;
	b->physical_sector = 512;
	if (vhd_get_info(d, &info) == 0) {
		if (info.logical_sector == 4096)
			b->logical_sector = 4096;
		if (info.physical_sector >= b->logical_sector &&
		    info.physical_sector <= 65536 &&
		    !(info.physical_sector & (info.physical_sector - 1)))
			b->physical_sector = info.physical_sector;
	}
	if (b->physical_sector < b->logical_sector)
		b->physical_sector = b->logical_sector;
	b->read_only = read_only;
	set_serial(b, name);
}

static int open_block_device(struct blk_backend *b, const char *path, bool ro,
			     char *err, size_t errlen)
{
	struct pt_info info;
	vhd_disk *d;
	int rc;

	rc = pt_open(path, ro ? 0 : PT_RDWR, &d);
	if (rc < 0) {
		snprintf(err, errlen, "%s", pt_errmsg());
		return rc;
	}
	blk_backend_init(b, d, path, ro);
	if (pt_probe(path, &info) == 0 && info.logical_sector == 4096) {
		b->logical_sector = 4096;
		if (b->physical_sector < 4096)
			b->physical_sector = 4096;
	}
	return 0;
}

int blk_backend_open(struct blk_backend *b, const char *path, bool read_only,
		     char *err, size_t errlen)
{
	vhd_disk *d;
	int rc;

	if (pt_is_block_device(path))
		return open_block_device(b, path, read_only, err, errlen);
	/* As the NBD plugin and the FUSE mount do: a misaligned VHD block
	 * (qemu-img's layout) moves to a 4 KiB aligned place when first
	 * written, so the guest's 4 KiB writes touch one host page. */
	rc = vhd_open(path, read_only ? 0 : VHD_OPEN_RDWR | VHD_OPEN_REALIGN, NULL, &d);
	if (rc < 0) {
		const char *m = vhd_errmsg(NULL);

		if (*m && strstr(m, path))
			snprintf(err, errlen, "%s", m);
		else
			snprintf(err, errlen, "%s: %s", path, *m ? m : vhd_strerror(rc));
		return rc;
	}
	blk_backend_init(b, d, path, read_only);
	return 0;
}

void blk_backend_close(struct blk_backend *b)
{
	if (b->disk)
		vhd_close(b->disk);
	b->disk = NULL;
}

int blk_backend_read(struct blk_backend *b, void *buf, size_t len, uint64_t off)
{
	ssize_t n = vhd_pread(b->disk, buf, len, off);

	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -EIO;
}

int blk_backend_write(struct blk_backend *b, const void *buf, size_t len, uint64_t off)
{
	ssize_t n;

	if (b->read_only)
		return -EROFS;
	n = vhd_pwrite(b->disk, buf, len, off);
	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -EIO;
}

int blk_backend_flush(struct blk_backend *b)
{
	return b->read_only ? 0 : vhd_flush(b->disk);
}

int blk_backend_discard(struct blk_backend *b, uint64_t off, uint64_t len)
{
	int rc;

	if (b->read_only)
		return -EROFS;
	rc = vhd_discard(b->disk, off, len);
	return rc == -EOPNOTSUPP || rc == -ENOTSUP ? 0 : rc;	/* advisory */
}

int blk_backend_zero(struct blk_backend *b, uint64_t off, uint64_t len, bool unmap)
{
	if (b->read_only)
		return -EROFS;
	return vhd_zero(b->disk, off, len, unmap ? 0 : VHD_ZERO_NOUNMAP);
}
