/*
 * io.h -- internal helpers over struct vhd_io (see libvhd.h for the ops).
 * Full-length reads and writes: a short read is reported as VHD_E_TRUNCATED,
 * because every structure the engine reads must lie inside the file.
 */
#ifndef LIBVHD_IO_H
#define LIBVHD_IO_H

#include <errno.h>

#include "libvhd.h"

static inline int io_read_full(struct vhd_io *io, void *buf, size_t len,
			       uint64_t off)
{
	ssize_t n = io->ops->pread(io, buf, len, off);

	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : VHD_E_TRUNCATED;
}

static inline int io_write_full(struct vhd_io *io, const void *buf, size_t len,
				uint64_t off)
{
	ssize_t n = io->ops->pwrite(io, buf, len, off);

	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -EIO;
}

static inline int io_size(struct vhd_io *io, uint64_t *size)
{
	return io->ops->get_size(io, size);
}

static inline void io_close(struct vhd_io *io)
{
	if (io)
		io->ops->close(io);
}

#endif /* LIBVHD_IO_H */
