/*
 * raw.c -- raw image files (and block devices opened as files): the virtual
 * disk is the file.  Holes (SEEK_HOLE) are reported as zero extents.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "disk.h"
#include "io.h"

static ssize_t raw_pread(vhd_disk *d, void *buf, size_t len, uint64_t off)
{
	ssize_t n = d->io->ops->pread(d->io, buf, len, off);

	if (n < 0)
		return disk_error(d, (int)n, "read at %llu: %s",
				  (unsigned long long)off, vhd_strerror((int)n));
	/* The file may have shrunk under us; the disk keeps its size. */
	if ((size_t)n < len)
		memset((char *)buf + n, 0, len - (size_t)n);
	return (ssize_t)len;
}

static ssize_t raw_pwrite(vhd_disk *d, const void *buf, size_t len,
			  uint64_t off)
{
	int rc = io_write_full(d->io, buf, len, off);

	if (rc < 0)
		return disk_error(d, rc, "write at %llu: %s",
				  (unsigned long long)off, vhd_strerror(rc));
	return (ssize_t)len;
}

/* The disk is the file. */
static uint64_t raw_map(vhd_disk *d, uint64_t off, uint64_t len, bool write,
			uint64_t *pos)
{
	(void)d;
	(void)write;
	*pos = off;
	return len;
}

static int raw_flush(vhd_disk *d)
{
	int rc = d->io->ops->flush(d->io);

	return rc < 0 ? disk_error(d, rc, "flush: %s", vhd_strerror(rc)) : 0;
}

/* Write zeros where the backend cannot deallocate. */
int write_zeros(vhd_disk *d, struct vhd_io *io, uint64_t off, uint64_t len);

int write_zeros(vhd_disk *d, struct vhd_io *io, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[65536];
	int rc;

	while (len) {
		size_t n = len > sizeof(zeros) ? sizeof(zeros) : (size_t)len;
		rc = io_write_full(io, zeros, n, off);
		if (rc < 0)
			return disk_error(d, rc, "writing zeros at %llu: %s",
					  (unsigned long long)off,
					  vhd_strerror(rc));
		off += n;
		len -= n;
	}
	return 0;
}

/* Zero a file range: punch a hole, else (unless fast is asked) write
 * zeros.  Shared by raw files and fixed VHDs. */
int file_zero(vhd_disk *d, uint64_t off, uint64_t len, unsigned flags);

int file_zero(vhd_disk *d, uint64_t off, uint64_t len, unsigned flags)
{
	int rc = -EOPNOTSUPP;

	if (d->io->ops->punch && !(flags & VHD_ZERO_NOUNMAP))
		rc = d->io->ops->punch(d->io, off, len);
	if (rc == -EOPNOTSUPP || rc == -ENOTTY || rc == -EINVAL) {
		if (flags & VHD_ZERO_FAST)
			return -ENOTSUP;
		return write_zeros(d, d->io, off, len);
	}
	return rc < 0 ? disk_error(d, rc, "zero: %s", vhd_strerror(rc)) : 0;
}

static int raw_zero(vhd_disk *d, uint64_t off, uint64_t len, unsigned flags)
{
	return file_zero(d, off, len, flags);
}

static int raw_prefetch(vhd_disk *d, uint64_t off, uint64_t len)
{
	disk_prefetch_file(d, off, len);
	return 0;
}

static int raw_discard(vhd_disk *d, uint64_t off, uint64_t len)
{
	int rc;

	if (d->io->ops->discard)
		rc = d->io->ops->discard(d->io, off, len);
	else if (d->io->ops->punch)
		rc = d->io->ops->punch(d->io, off, len);
	else
		return 0;
	/* Discard is advisory. */
	return rc == -EOPNOTSUPP || rc == -ENOTTY ? 0 : rc;
}

/* Data/hole map of a file region, as layer extents; shared with fixed VHD. */
int file_extents(vhd_disk *d, uint64_t base, uint64_t off, uint64_t len,
		 layer_extent_fn fn, void *opaque);

int file_extents(vhd_disk *d, uint64_t base, uint64_t off, uint64_t len,
		 layer_extent_fn fn, void *opaque)
{
	struct vhd_io *io = d->io;
	uint64_t end = off + len;
	int rc;

	if (!io->ops->next_data)
		return fn(opaque, off, len, LAYER_DATA);
	while (off < end) {
		uint64_t data, data_end;
		rc = io->ops->next_data(io, base + off, &data, &data_end);
		if (rc < 0)
			return fn(opaque, off, end - off, LAYER_DATA);
		data = data < base ? 0 : data - base;
		data_end = data_end < base ? 0 : data_end - base;
		if (data > end)
			data = end;
		if (data_end > end || data_end < data)
			data_end = end;
		if (data > off) {
			rc = fn(opaque, off, data - off, LAYER_ZERO);
			if (rc)
				return rc;
			off = data;
		}
		if (data_end <= off) {
			/* Past EOF of a shorter file: zeros. */
			return fn(opaque, off, end - off, LAYER_ZERO);
		}
		rc = fn(opaque, off, data_end - off, LAYER_DATA);
		if (rc)
			return rc;
		off = data_end;
	}
	return 0;
}

static int raw_extents(vhd_disk *d, uint64_t off, uint64_t len,
		       layer_extent_fn fn, void *opaque)
{
	return file_extents(d, 0, off, len, fn, opaque);
}

static int raw_info(vhd_disk *d, struct vhd_info *info)
{
	info->format = VHD_FMT_RAW;
	info->type = VHD_TYPE_NONE;
	info->current_size = d->size;
	info->size_source = "file";
	return 0;
}

static int raw_close(vhd_disk *d)
{
	return 0;
}

static int raw_resize(vhd_disk *d, uint64_t size, bool force)
{
	int rc = d->io->ops->truncate(d->io, size);

	if (rc == 0)
		rc = d->io->ops->flush(d->io);
	if (rc < 0)
		return disk_error(d, rc, "resize: %s", vhd_strerror(rc));
	d->size = size;
	return 0;
}

static const struct vhd_format_ops raw_ops = {
	.name = "raw",
	.pread = raw_pread,
	.pwrite = raw_pwrite,
	.flush = raw_flush,
	.discard = raw_discard,
	.zero = raw_zero,
	.prefetch = raw_prefetch,
	.extents = raw_extents,
	.info = raw_info,
	.close = raw_close,
	.resize = raw_resize,
	.map = raw_map,
};

int raw_open(vhd_disk *d)
{
	int rc = io_size(d->io, &d->size);

	if (rc < 0)
		return disk_error(d, rc, "cannot get size: %s", vhd_strerror(rc));
	d->ops = &raw_ops;
	return 0;
}
