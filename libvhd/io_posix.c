/*
 * io_posix.c -- the default I/O backend: POSIX files and block devices.
 *
 * Locking: every image is flock(2)ed, shared for read-only and exclusive for
 * read-write opens, so a second writer (or a writer while a reader has the
 * image, e.g. a parent under a running child) gets -EBUSY instead of silently
 * corrupting the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "libvhd.h"
#include "io.h"

/*
 * With VHD_IO_DIRECT the file is opened twice: `fd` buffered and `dfd` with
 * O_DIRECT.  Requests whose offset, length and buffer are aligned to `align`
 * use dfd; the rest (metadata, odd requests) use fd.  The kernel keeps the
 * two coherent (a direct write writes back and drops cached pages of its
 * range); only concurrent overlapping requests see no defined order, as on
 * any disk.
 */
struct posix_io {
	struct vhd_io base;
	int fd;
	int dfd;		/* O_DIRECT descriptor, or -1 */
	unsigned align;		/* dfd's alignment */
	int is_blk;
};

static int posix_fd(struct vhd_io *io)
{
	return ((struct posix_io *)io)->fd;
}

static int pick_fd(struct vhd_io *io, const void *buf, size_t len, uint64_t off)
{
	struct posix_io *p = (struct posix_io *)io;

	if (p->dfd >= 0 && off % p->align == 0 && len % p->align == 0 &&
	    (uintptr_t)buf % p->align == 0)
		return p->dfd;
	return p->fd;
}

static int posix_aio_fd(struct vhd_io *io, unsigned *align)
{
	struct posix_io *p = (struct posix_io *)io;

	*align = p->dfd >= 0 ? p->align : 0;
	return p->dfd >= 0 ? p->dfd : p->fd;
}

static ssize_t posix_pread(struct vhd_io *io, void *buf, size_t len,
			   uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(pick_fd(io, (char *)buf + done, len - done, off + done),
				  (char *)buf + done, len - done,
				  (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/*
 * A buffered write that covers only part of a page needs that page's old
 * content, and ext4 reads it while holding the inode's lock, which every
 * writer of the file waits for.  Reading an uncached edge page first, before
 * the write takes the lock, leaves the other writers running meanwhile.
 * (Images made by other tools put block data at odd sector offsets, so every
 * 4 KiB guest write there has two such edges; a page the kernel evicted made
 * each of those writes wait for a disk read under the lock.)  A cached page
 * costs one RWF_NOWAIT read of a byte.
 */
#define EDGE_PAGE 4096u

static void cache_edge_page(int fd, uint64_t page_off)
{
	char byte;
	struct iovec iov = { &byte, 1 };

	if (preadv2(fd, &iov, 1, (off_t)page_off, RWF_NOWAIT) < 0 && errno == EAGAIN)
		(void)!pread(fd, &byte, 1, (off_t)page_off);
}

static void cache_write_edges(int fd, size_t len, uint64_t off)
{
	uint64_t end = off + len;
	uint64_t first = off - off % EDGE_PAGE, last = end - end % EDGE_PAGE;

	if (off % EDGE_PAGE)
		cache_edge_page(fd, first);
	/* (a write inside one page has one edge page, read above) */
	if (end % EDGE_PAGE && !(off % EDGE_PAGE && last == first))
		cache_edge_page(fd, last);
}

static ssize_t posix_pwrite(struct vhd_io *io, const void *buf, size_t len,
			    uint64_t off)
{
	size_t done = 0;

	if (pick_fd(io, buf, len, off) == posix_fd(io))
		cache_write_edges(posix_fd(io), len, off);

	while (done < len) {
		ssize_t n = pwrite(pick_fd(io, (const char *)buf + done, len - done,
					   off + done), (const char *)buf + done,
				   len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ENOSPC;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static int posix_flush(struct vhd_io *io)
{
	return fdatasync(posix_fd(io)) < 0 ? -errno : 0;
}

static int posix_get_size(struct vhd_io *io, uint64_t *size)
{
	struct posix_io *p = (struct posix_io *)io;
	struct stat st;

	if (p->is_blk)
		return ioctl(p->fd, BLKGETSIZE64, size) < 0 ? -errno : 0;
	if (fstat(p->fd, &st) < 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int posix_truncate(struct vhd_io *io, uint64_t size)
{
	if (((struct posix_io *)io)->is_blk)
		return -EINVAL;
	return ftruncate(posix_fd(io), (off_t)size) < 0 ? -errno : 0;
}

static int posix_punch(struct vhd_io *io, uint64_t off, uint64_t len)
{
	struct posix_io *p = (struct posix_io *)io;

	if (p->is_blk) {
		uint64_t range[2] = { off, len };
		return ioctl(p->fd, BLKZEROOUT, range) < 0 ? -errno : 0;
	}
	if (fallocate(p->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) < 0)
		return -errno;
	return 0;
}

static int posix_next_data(struct vhd_io *io, uint64_t off, uint64_t *data,
			   uint64_t *data_end)
{
	struct posix_io *p = (struct posix_io *)io;
	uint64_t size;
	off_t d, h;
	int rc = posix_get_size(io, &size);

	if (rc < 0)
		return rc;
	if (off >= size || p->is_blk) {
		*data = off >= size ? size : off;
		*data_end = size;
		return 0;
	}
	d = lseek(p->fd, (off_t)off, SEEK_DATA);
	if (d < 0) {
		if (errno == ENXIO) {
			*data = *data_end = size;
			return 0;
		}
		/* No SEEK_DATA support: everything is data. */
		*data = off;
		*data_end = size;
		return 0;
	}
	h = lseek(p->fd, d, SEEK_HOLE);
	*data = (uint64_t)d;
	*data_end = h < 0 ? size : (uint64_t)h;
	return 0;
}

static int posix_identity(struct vhd_io *io, uint64_t *dev, uint64_t *ino)
{
	struct stat st;

	if (fstat(posix_fd(io), &st) < 0)
		return -errno;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

static int posix_prefetch(struct vhd_io *io, uint64_t off, uint64_t len)
{
	return -posix_fadvise(posix_fd(io), (off_t)off, (off_t)len,
			      POSIX_FADV_WILLNEED);
}

static void posix_close(struct vhd_io *io)
{
	struct posix_io *p = (struct posix_io *)io;

	if (p->dfd >= 0)
		close(p->dfd);
	close(p->fd);
	free(io);
}

static ssize_t posix_copy(struct vhd_io *io, uint64_t src, uint64_t dst,
			  size_t len)
{
	loff_t from = (loff_t)src, to = (loff_t)dst;
	ssize_t n;

	do
		n = copy_file_range(posix_fd(io), &from, posix_fd(io), &to, len, 0);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

static const struct vhd_io_ops posix_ops = {
	.pread = posix_pread,
	.pwrite = posix_pwrite,
	.flush = posix_flush,
	.get_size = posix_get_size,
	.truncate = posix_truncate,
	.close = posix_close,
	.punch = posix_punch,
	.next_data = posix_next_data,
	.identity = posix_identity,
	.prefetch = posix_prefetch,
	.aio_fd = posix_aio_fd,
	.copy = posix_copy,
};

/* Open the O_DIRECT twin of @fd (the same file, through /proc) and learn
 * its alignment: statx's DIO alignment where the kernel reports it, else a
 * 4096 that every device accepts. */
static int open_direct(struct posix_io *p, int fd, int oflags)
{
	char self[64];
	unsigned align = 4096;
#ifdef STATX_DIOALIGN
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align) {
		align = stx.stx_dio_offset_align;
		if (stx.stx_dio_mem_align > align)
			align = stx.stx_dio_mem_align;
	}
#endif
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	p->dfd = open(self, oflags | O_DIRECT);
	if (p->dfd < 0)
		return -errno;
	p->align = align;
	return 0;
}

static int posix_open(const struct vhd_io_factory *f, const char *path,
		      unsigned flags, struct vhd_io **out)
{
	int oflags = O_CLOEXEC;
	struct posix_io *p;
	struct stat st;
	int fd, rc;

	(void)f;
	oflags |= (flags & (VHD_IO_RDWR | VHD_IO_CREATE)) ? O_RDWR : O_RDONLY;
	if (flags & VHD_IO_CREATE)
		oflags |= O_CREAT | O_EXCL;
	fd = open(path, oflags, 0644);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out_close;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = -EISDIR;
		goto out_close;
	}
	if (!(flags & VHD_IO_NOLOCK) && !S_ISBLK(st.st_mode)) {
		int op = (oflags & O_RDWR) ? LOCK_EX : LOCK_SH;
		if (flock(fd, op | LOCK_NB) < 0 &&
		    !(errno == EWOULDBLOCK && (flags & VHD_IO_TRYLOCK))) {
			rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
			goto out_close;
		}
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		rc = -ENOMEM;
		goto out_close;
	}
	p->base.ops = &posix_ops;
	p->fd = fd;
	p->dfd = -1;
	p->is_blk = S_ISBLK(st.st_mode);
	if (flags & VHD_IO_DIRECT) {
		rc = open_direct(p, fd, oflags & ~(O_CREAT | O_EXCL));
		if (rc < 0) {
			free(p);
			goto out_close;
		}
	}
	*out = &p->base;
	return 0;

out_close:
	close(fd);
	return rc;
}

static int posix_remove(const struct vhd_io_factory *f, const char *path)
{
	(void)f;
	return unlink(path) < 0 ? -errno : 0;
}

static const struct vhd_io_factory posix_factory = {
	.open = posix_open,
	.remove = posix_remove,
};

const struct vhd_io_factory *vhd_io_posix(void)
{
	return &posix_factory;
}
