/*
 * io_blk.c -- the vhd_io backend of a passed-through block device, and
 * pt_open().
 *
 * O_DIRECT throughout.  A request whose buffer, offset or length is not
 * aligned to the logical sector goes through an aligned bounce buffer; an
 * unaligned write reads its edge sectors, merges and writes whole sectors,
 * under a lock striped by sector so that two such writes to one sector
 * cannot lose each other's bytes.  Aligned requests take no lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "passthrough.h"
#include "pt_internal.h"

#define STRIPES 64
#define ALIGN 4096u	/* memory alignment for O_DIRECT buffers */

struct blk_io {
	struct vhd_io base;
	int fd;
	uint32_t ls;		/* logical sector */
	uint64_t size;
	dev_t rdev;
	pthread_mutex_t stripe[STRIPES];
};

static struct blk_io *B(struct vhd_io *io)
{
	return (struct blk_io *)io;
}

static int full_pread(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;	/* a device does not end early */
		done += (size_t)n;
	}
	return 0;
}

static int full_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done,
				   (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ENOSPC;
		done += (size_t)n;
	}
	return 0;
}

static bool aligned(const struct blk_io *b, const void *buf, size_t len, uint64_t off)
{
	return off % b->ls == 0 && len % b->ls == 0 && (uintptr_t)buf % b->ls == 0;
}

static int check_bounds(const struct blk_io *b, size_t len, uint64_t off)
{
	return off > b->size || len > b->size - off ? -EINVAL : 0;
}

static ssize_t blk_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off)
{
	struct blk_io *b = B(io);
	uint64_t a, e;
	uint8_t *bounce;
	int rc = check_bounds(b, len, off);

	if (rc < 0)
		return rc;
	if (aligned(b, buf, len, off)) {
		rc = full_pread(b->fd, buf, len, off);
		return rc < 0 ? rc : (ssize_t)len;
	}
	a = off / b->ls * b->ls;
	e = (off + len + b->ls - 1) / b->ls * b->ls;
	if (posix_memalign((void **)&bounce, ALIGN, e - a))
		return -ENOMEM;
	rc = full_pread(b->fd, bounce, e - a, a);
	if (rc == 0)
		memcpy(buf, bounce + (off - a), len);
	free(bounce);
	return rc < 0 ? rc : (ssize_t)len;
}

static void lock_edges(struct blk_io *b, uint64_t s0, uint64_t s1, bool lock)
{
	unsigned i = (unsigned)(s0 % STRIPES), j = (unsigned)(s1 % STRIPES);

	if (i > j) {
		unsigned t = i;
		i = j;
		j = t;
	}
	if (lock) {
		pthread_mutex_lock(&b->stripe[i]);
		if (j != i)
			pthread_mutex_lock(&b->stripe[j]);
	} else {
		if (j != i)
			pthread_mutex_unlock(&b->stripe[j]);
		pthread_mutex_unlock(&b->stripe[i]);
	}
}

static ssize_t blk_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off)
{
	struct blk_io *b = B(io);
	uint64_t a, e;
	uint8_t *bounce;
	int rc = check_bounds(b, len, off);

	if (rc < 0)
		return rc;
	if (aligned(b, buf, len, off)) {
		rc = full_pwrite(b->fd, buf, len, off);
		return rc < 0 ? rc : (ssize_t)len;
	}
	a = off / b->ls * b->ls;
	e = (off + len + b->ls - 1) / b->ls * b->ls;
	if (posix_memalign((void **)&bounce, ALIGN, e - a))
		return -ENOMEM;
	lock_edges(b, a / b->ls, e / b->ls - 1, true);
	rc = 0;
	if (off != a)
		rc = full_pread(b->fd, bounce, b->ls, a);
	if (rc == 0 && off + len != e)
		rc = full_pread(b->fd, bounce + (e - a - b->ls), b->ls, e - b->ls);
	if (rc == 0) {
		memcpy(bounce + (off - a), buf, len);
		rc = full_pwrite(b->fd, bounce, e - a, a);
	}
	lock_edges(b, a / b->ls, e / b->ls - 1, false);
	free(bounce);
	return rc < 0 ? rc : (ssize_t)len;
}

static int blk_flush(struct vhd_io *io)
{
	return fdatasync(B(io)->fd) < 0 ? -errno : 0;
}

static int blk_get_size(struct vhd_io *io, uint64_t *size)
{
	*size = B(io)->size;
	return 0;
}

static int blk_truncate(struct vhd_io *io, uint64_t size)
{
	return -EINVAL;
}

/* Write zeros over a short range (partial sectors at the edges). */
static int zero_bytes(struct blk_io *b, uint64_t off, uint64_t len)
{
	uint8_t *z = calloc(1, (size_t)len);
	ssize_t n;

	if (!z)
		return -ENOMEM;
	n = blk_pwrite(&b->base, z, (size_t)len, off);
	free(z);
	return n < 0 ? (int)n : 0;
}

/* Apply @req (BLKZEROOUT, BLKDISCARD) to the whole sectors of a range;
 * @edges_zero writes zeros into partial edge sectors. */
static int blk_range(struct blk_io *b, unsigned long req, uint64_t off, uint64_t len,
		     bool edges_zero)
{
	uint64_t a = (off + b->ls - 1) / b->ls * b->ls;
	uint64_t e = (off + len) / b->ls * b->ls;
	int rc = check_bounds(b, (size_t)len, off);

	if (rc < 0)
		return rc;
	if (e > a) {
		uint64_t r[2] = { a, e - a };
		if (ioctl(b->fd, req, r) < 0)
			return -errno;
	}
	if (!edges_zero)
		return 0;
	if (e <= a)		/* no whole sector inside: all of it is edge */
		return zero_bytes(b, off, len);
	rc = a > off ? zero_bytes(b, off, a - off) : 0;
	if (rc == 0 && off + len > e)
		rc = zero_bytes(b, e, off + len - e);
	return rc;
}

static int blk_punch(struct vhd_io *io, uint64_t off, uint64_t len)
{
	return blk_range(B(io), BLKZEROOUT, off, len, true);
}

static int blk_discard(struct vhd_io *io, uint64_t off, uint64_t len)
{
	int rc = blk_range(B(io), BLKDISCARD, off, len, false);

	return rc == -EOPNOTSUPP || rc == -ENOTTY ? 0 : rc;
}

static int blk_identity(struct vhd_io *io, uint64_t *dev, uint64_t *ino)
{
	*dev = 0;
	*ino = B(io)->rdev;
	return 0;
}

static void blk_close(struct vhd_io *io)
{
	struct blk_io *b = B(io);

	close(b->fd);
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&b->stripe[i]);
	free(b);
}

/* The device is always open with O_DIRECT: the kernel needs offsets,
 * lengths and buffers aligned to the logical sector. */
static int blk_aio_fd(struct vhd_io *io, unsigned *align)
{
	*align = B(io)->ls;
	return B(io)->fd;
}

static const struct vhd_io_ops blk_ops = {
	.pread = blk_pread,
	.pwrite = blk_pwrite,
	.flush = blk_flush,
	.get_size = blk_get_size,
	.truncate = blk_truncate,
	.close = blk_close,
	.punch = blk_punch,
	.discard = blk_discard,
	.identity = blk_identity,
	.aio_fd = blk_aio_fd,
};

int pt_open(const char *dev, unsigned flags, vhd_disk **out)
{
	struct vhd_open_opts oo = { .format = VHD_FMT_RAW };
	struct pt_info info;
	struct blk_io *b;
	struct stat st;
	int oflags = O_CLOEXEC | O_DIRECT, rc;

	if ((flags & PT_SHARED) && (flags & PT_RDWR))
		return pt_error(-EINVAL, dev, "shared access is read-only");
	rc = pt_probe(dev, &info);
	if (rc < 0)
		return rc;
	if (!info.usable && !(flags & PT_SHARED))
		return pt_error(-EBUSY, dev, "refused: %s", info.why);
	if (info.read_only && (flags & PT_RDWR))
		return pt_error(-EROFS, dev, "the device is read-only");
	oflags |= (flags & PT_RDWR) ? O_RDWR : O_RDONLY;
	if (!(flags & PT_SHARED))
		oflags |= O_EXCL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return pt_error(-ENOMEM, dev, "out of memory");
	b->fd = open(dev, oflags);
	if (b->fd < 0) {
		rc = -errno;
		free(b);
		if (rc == -EBUSY)
			return pt_error(rc, dev, "busy: another user holds it exclusively");
		return pt_error(rc, dev, "cannot open: %s", strerror(-rc));
	}
	fstat(b->fd, &st);
	b->base.ops = &blk_ops;
	b->ls = info.logical_sector ? info.logical_sector : 512;
	b->size = info.size;
	b->rdev = st.st_rdev;
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_init(&b->stripe[i], NULL);
	rc = vhd_open_io(&b->base, dev, (flags & PT_RDWR) ? VHD_OPEN_RDWR : 0, &oo, out);
	if (rc < 0)
		return pt_error(rc, dev, "%s", vhd_errmsg(NULL));
	return 0;
}
