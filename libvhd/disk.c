/*
 * disk.c -- the public handle: open/close, bounds checks, error messages,
 * chain-wide extents and the dispatch to formats.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk.h"
#include "io.h"
#include "import.h"
#include "vhdx_image.h"

static __thread char thread_errmsg[1024];

const char *vhd_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case VHD_E_CORRUPT: return "image metadata is corrupt";
	case VHD_E_CHECKSUM: return "checksum mismatch";
	case VHD_E_UNSUPPORTED: return "unsupported image feature";
	case VHD_E_FORMAT: return "not an image of the expected format";
	case VHD_E_TRUNCATED: return "image is truncated";
	case VHD_E_NOPARENT: return "parent image not found";
	case VHD_E_PARENT_ID: return "parent image identity mismatch";
	case VHD_E_CHAIN: return "invalid parent chain";
	case VHD_E_TOO_BIG: return "size exceeds the format limit";
	}
	if (err < 0 && err > -VHD_E_BASE)
		return strerror(-err);
	return "unknown error";
}

const char *vhd_errmsg(const vhd_disk *d)
{
	return d ? d->errmsg : thread_errmsg;
}

int disk_verror(vhd_disk *d, int err, const char *fmt, va_list ap)
{
	char msg[768];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (d) {
		pthread_mutex_lock(&d->err_lock);
		snprintf(d->errmsg, sizeof(d->errmsg), "%s: %s", d->path, msg);
		pthread_mutex_unlock(&d->err_lock);
		/* Failures while opening surface through the thread message. */
		snprintf(thread_errmsg, sizeof(thread_errmsg), "%s", d->errmsg);
	} else {
		snprintf(thread_errmsg, sizeof(thread_errmsg), "%s", msg);
	}
	return err;
}

int disk_error(vhd_disk *d, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	disk_verror(d, err, fmt, ap);
	va_end(ap);
	return err;
}

int disk_problem(vhd_disk *d, enum vhd_check_severity sev, int err,
		 const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!(d->flags & VHD_OPEN_TOLERANT) && sev != VHD_CHECK_INFO)
		return disk_error(d, err, "%s", msg);
	if (d->report)
		d->report(d->report_opaque, sev, msg);
	return 0;
}

int path_error(const char *path, int err, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(thread_errmsg, sizeof(thread_errmsg), "%s: %s", path, msg);
	return err;
}

vhd_disk *disk_alloc(const char *path, struct vhd_io *io, unsigned flags)
{
	vhd_disk *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->path = strdup(path);
	if (!d->path) {
		free(d);
		return NULL;
	}
	d->io = io;
	d->flags = flags;
	d->read_only = !(flags & VHD_OPEN_RDWR);
	pthread_mutex_init(&d->err_lock, NULL);
	return d;
}

void disk_free(vhd_disk *d)
{
	if (!d)
		return;
	io_close(d->io);
	free(d->path);
	free(d->parent_path);
	pthread_mutex_destroy(&d->err_lock);
	free(d);
}

int disk_detect_format(struct vhd_io *io, enum vhd_format *fmt)
{
	uint8_t buf[512];
	uint64_t size;
	int rc = io_size(io, &size);

	if (rc < 0)
		return rc;
	*fmt = VHD_FMT_RAW;
	if (size >= 8) {
		rc = io_read_full(io, buf, 8, 0);
		if (rc < 0)
			return rc;
		if (!memcmp(buf, "vhdxfile", 8)) {
			*fmt = VHD_FMT_VHDX;
			return 0;
		}
		if (!memcmp(buf, "conectix", 8)) {
			*fmt = VHD_FMT_VHD;
			return 0;
		}
		if (import_detect(buf, 8, fmt))
			return 0;
	}
	for (unsigned tail = 512; tail >= 511; tail--) {
		if (size < tail)
			continue;
		rc = io_read_full(io, buf, 8, size - tail);
		if (rc < 0)
			return rc;
		if (!memcmp(buf, "conectix", 8)) {
			*fmt = VHD_FMT_VHD;
			return 0;
		}
	}
	return 0;
}

static int identity_seen(struct chain_ctx *ctx, struct vhd_io *io,
			 const char *path)
{
	uint64_t dev, ino;
	int rc;

	if (!io->ops->identity)
		return 0;
	rc = io->ops->identity(io, &dev, &ino);
	if (rc < 0)
		return 0;
	for (unsigned i = 0; i < ctx->depth; i++)
		if (ctx->dev[i] == dev && ctx->ino[i] == ino)
			return path_error(path, VHD_E_CHAIN,
					  "parent cycle: this file is already in the chain");
	ctx->dev[ctx->depth] = dev;
	ctx->ino[ctx->depth] = ino;
	return 0;
}

/* Open a layer over an already opened file; takes ownership of @io. */
static int open_io_layer(struct vhd_io *io, const char *path, unsigned flags,
			 struct chain_ctx *ctx, vhd_disk **out)
{
	enum vhd_format fmt = ctx->opts.format;
	vhd_disk *d;
	int rc;

	rc = identity_seen(ctx, io, path);
	if (rc < 0)
		goto out_io;
	if (fmt == VHD_FMT_AUTO || ctx->depth > 0) {
		rc = disk_detect_format(io, &fmt);
		if (rc < 0) {
			path_error(path, rc, "cannot read: %s", vhd_strerror(rc));
			goto out_io;
		}
	}
	d = disk_alloc(path, io, flags);
	if (!d) {
		rc = path_error(path, -ENOMEM, "out of memory");
		goto out_io;
	}
	if (ctx->depth == 0 && (flags & VHD_OPEN_TOLERANT)) {
		d->report = ctx->report;
		d->report_opaque = ctx->report_opaque;
	}
	switch (fmt) {
	case VHD_FMT_RAW:
		rc = raw_open(d);
		break;
	case VHD_FMT_VHD:
		rc = vhd_image_open(d, ctx);
		break;
	case VHD_FMT_VHDX:
		rc = vhdx_image_open(d, ctx);
		break;
	case VHD_FMT_QCOW2:
		rc = qcow2_open(d, ctx);
		break;
	case VHD_FMT_VMDK:
		rc = vmdk_open(d, ctx);
		break;
	default:
		rc = disk_error(d, -EINVAL, "unknown format %d", fmt);
	}
	if (rc < 0) {
		if (d->parent)
			vhd_close(d->parent);
		if (d->priv && d->ops && d->ops->abandon)
			d->ops->abandon(d);
		disk_free(d);
		return rc;
	}
	*out = d;
	return 0;

out_io:
	io_close(io);
	return rc;
}

int disk_open_layer(const char *path, unsigned flags, struct chain_ctx *ctx,
		    vhd_disk **out)
{
	const struct vhd_open_opts *o = &ctx->opts;
	unsigned ioflags = 0;
	struct vhd_io *io = NULL;
	int rc;

	if (ctx->depth > VHD_MAX_CHAIN_DEPTH)
		return path_error(path, VHD_E_CHAIN,
				  "parent chain deeper than %d layers",
				  VHD_MAX_CHAIN_DEPTH);
	if (flags & VHD_OPEN_RDWR)
		ioflags |= VHD_IO_RDWR;
	if (flags & VHD_OPEN_NOLOCK)
		ioflags |= VHD_IO_NOLOCK;
	if (flags & VHD_OPEN_DIRECT)
		ioflags |= VHD_IO_DIRECT;
	if ((flags & VHD_OPEN_SHARED) && !(flags & VHD_OPEN_RDWR))
		ioflags |= VHD_IO_TRYLOCK;
	rc = opts_io(o)->open(opts_io(o), path, ioflags, &io);
	if (rc < 0) {
		if ((rc == -EACCES || rc == -EROFS || rc == -EPERM) &&
		    (flags & VHD_OPEN_RDWR))
			return path_error(path, rc,
					  "cannot open for writing: %s (read-only file?)",
					  strerror(-rc));
		if (rc == -EBUSY)
			return path_error(path, rc,
					  "image is in use (locked by another process)");
		return path_error(path, rc, "cannot open: %s", strerror(-rc));
	}
	return open_io_layer(io, path, flags, ctx, out);
}

/* The context of one open: @o (or defaults) and @flags; NULL without memory. */
static struct chain_ctx *new_ctx(const struct vhd_open_opts *o, unsigned flags)
{
	struct chain_ctx *ctx = calloc(1, sizeof(*ctx));

	if (ctx) {
		if (o)
			ctx->opts = *o;
		ctx->flags = flags;
	}
	return ctx;
}

int vhd_open_io(struct vhd_io *io, const char *name, unsigned flags,
		const struct vhd_open_opts *o, vhd_disk **out)
{
	struct chain_ctx *ctx = new_ctx(o, flags);
	int rc;

	if (!ctx) {
		io_close(io);
		return path_error(name, -ENOMEM, "out of memory");
	}
	thread_errmsg[0] = '\0';
	rc = open_io_layer(io, name, flags, ctx, out);
	free(ctx);
	return rc;
}

int disk_open_tolerant(const char *path, unsigned flags, const struct vhd_open_opts *o,
		       void (*report)(void *opaque, enum vhd_check_severity sev,
				      const char *msg),
		       void *opaque, vhd_disk **out)
{
	struct chain_ctx *ctx = new_ctx(o, VHD_OPEN_TOLERANT | VHD_OPEN_NOPARENT | flags);
	int rc;

	if (!ctx)
		return path_error(path, -ENOMEM, "out of memory");
	ctx->report = report;
	ctx->report_opaque = opaque;
	rc = disk_open_layer(path, ctx->flags, ctx, out);
	free(ctx);
	return rc;
}

int vhd_open(const char *path, unsigned flags, const struct vhd_open_opts *o,
	     vhd_disk **out)
{
	struct chain_ctx *ctx = new_ctx(o, flags);
	int rc;

	if (!ctx)
		return path_error(path, -ENOMEM, "out of memory");
	thread_errmsg[0] = '\0';
	rc = disk_open_layer(path, flags, ctx, out);
	free(ctx);
	return rc;
}

int vhd_close(vhd_disk *d)
{
	int rc = 0, rc2;

	if (!d)
		return 0;
	if (!d->read_only)
		rc = d->ops->flush(d);
	rc2 = d->ops->close(d);
	if (rc == 0)
		rc = rc2;
	if (rc < 0)
		snprintf(thread_errmsg, sizeof(thread_errmsg), "%s", d->errmsg);
	if (d->parent)
		vhd_close(d->parent);
	disk_free(d);
	return rc;
}

int disk_check_range(vhd_disk *d, uint64_t off, uint64_t len, bool write)
{
	if (write && d->read_only)
		return disk_error(d, -EROFS, "image is open read-only");
	if (off > d->size || len > d->size - off)
		return disk_error(d, -EINVAL,
				  "request [%llu, +%llu) is past the end of the disk (%llu bytes)",
				  (unsigned long long)off, (unsigned long long)len,
				  (unsigned long long)d->size);
	return 0;
}

ssize_t vhd_pread(vhd_disk *d, void *buf, size_t len, uint64_t off)
{
	int rc = disk_check_range(d, off, len, false);

	if (rc < 0)
		return rc;
	if (len == 0)
		return 0;
	return d->ops->pread(d, buf, len, off);
}

ssize_t vhd_pwrite(vhd_disk *d, const void *buf, size_t len, uint64_t off)
{
	int rc = disk_check_range(d, off, len, true);

	if (rc < 0)
		return rc;
	if (len == 0)
		return 0;
	return d->ops->pwrite(d, buf, len, off);
}

int64_t vhd_map_file(vhd_disk *d, uint64_t off, uint64_t len, unsigned flags,
		     int *fd, uint64_t *pos)
{
	bool write = flags & VHD_MAP_WRITE;
	uint64_t n, fsize;
	unsigned align = 0;
	int rc = disk_check_range(d, off, len, write);

	if (rc < 0)
		return rc;
	if (len == 0 || !d->ops->map || !d->io->ops->aio_fd)
		return 0;
	*fd = d->io->ops->aio_fd(d->io, &align);
	if (*fd < 0 || align)
		return 0;
	n = d->ops->map(d, off, len, write, pos);
	/* A raw file may be shorter than the disk: only bytes it has. */
	if (n && (io_size(d->io, &fsize) < 0 || *pos + n > fsize))
		return 0;
	return (int64_t)n;
}

int vhd_flush(vhd_disk *d)
{
	if (d->read_only)
		return 0;
	return d->ops->flush(d);
}

int vhd_discard(vhd_disk *d, uint64_t off, uint64_t len)
{
	int rc = disk_check_range(d, off, len, true);

	if (rc < 0 || len == 0)
		return rc;
	return d->ops->discard(d, off, len);
}

int vhd_zero(vhd_disk *d, uint64_t off, uint64_t len, unsigned flags)
{
	int rc = disk_check_range(d, off, len, true);

	if (rc < 0 || len == 0)
		return rc;
	return d->ops->zero(d, off, len, flags);
}

void disk_prefetch_file(vhd_disk *d, uint64_t off, uint64_t len)
{
	if (d->io->ops->prefetch && len)
		d->io->ops->prefetch(d->io, off, len);
}

void disk_prefetch_parent(vhd_disk *d, uint64_t off, uint64_t len)
{
	vhd_disk *p = d->parent;

	if (!p || off >= p->size)
		return;
	if (len > p->size - off)
		len = p->size - off;
	p->ops->prefetch(p, off, len);
}

int vhd_prefetch(vhd_disk *d, uint64_t off, uint64_t len)
{
	if (off >= d->size)
		return 0;
	if (len > d->size - off)
		len = d->size - off;
	return d->ops->prefetch(d, off, len);
}

int disk_read_parent(vhd_disk *d, void *buf, size_t len, uint64_t off)
{
	vhd_disk *p = d->parent;
	size_t n = 0;
	ssize_t r;

	if (p && off < p->size) {
		n = len;
		if (off + n > p->size)
			n = (size_t)(p->size - off);
		r = p->ops->pread(p, buf, n, off);
		if (r < 0)
			return disk_error(d, (int)r, "reading parent: %s",
					  p->errmsg);
	}
	memset((char *)buf + n, 0, len - n);
	return 0;
}

uint64_t vhd_size(const vhd_disk *d)
{
	return d->size;
}

vhd_disk *vhd_parent(const vhd_disk *d)
{
	return d->parent;
}

int vhd_get_info(vhd_disk *d, struct vhd_info *info)
{
	uint64_t fsize = 0;

	memset(info, 0, sizeof(*info));
	info->size = d->size;
	info->path = d->path;
	info->parent_path = d->parent_path;
	info->read_only = d->read_only;
	info->depth = d->depth;
	info->logical_sector = 512;
	info->physical_sector = 512;
	if (io_size(d->io, &fsize) == 0)
		info->file_size = fsize;
	return d->ops->info(d, info);
}

/* ---- chain-wide extents ---- */

struct ext_walk {
	vhd_disk *top;
	int (*cb)(void *opaque, const struct vhd_extent *e);
	void *opaque;
	struct vhd_extent pending;	/* length 0 = none */
	unsigned depth;
};

static int ext_emit(struct ext_walk *w, uint64_t off, uint64_t len,
		    enum vhd_extent_type type, unsigned depth)
{
	struct vhd_extent *p = &w->pending;
	int rc;

	if (len == 0)
		return 0;
	if (p->length && p->type == type && p->depth == depth &&
	    p->offset + p->length == off) {
		p->length += len;
		return 0;
	}
	if (p->length) {
		rc = w->cb(w->opaque, p);
		if (rc)
			return rc;
	}
	p->offset = off;
	p->length = len;
	p->type = type;
	p->depth = type == VHD_EXT_DATA ? depth : 0;
	return 0;
}

static int layer_extents(vhd_disk *d, uint64_t off, uint64_t len,
			 struct ext_walk *w);

struct layer_walk {
	struct ext_walk *w;
	vhd_disk *d;
};

static int layer_cb(void *opaque, uint64_t off, uint64_t len,
		    enum layer_extent what)
{
	struct layer_walk *lw = opaque;
	struct ext_walk *w = lw->w;
	vhd_disk *p = lw->d->parent;
	uint64_t in_parent;
	int rc;

	switch (what) {
	case LAYER_DATA:
		return ext_emit(w, off, len, VHD_EXT_DATA, w->depth);
	case LAYER_ZERO:
		return ext_emit(w, off, len, VHD_EXT_ZERO, 0);
	case LAYER_PARENT:
		break;
	}
	if (!p || off >= p->size)
		return ext_emit(w, off, len, VHD_EXT_ZERO, 0);
	in_parent = len;
	if (off + in_parent > p->size)
		in_parent = p->size - off;
	w->depth++;
	rc = layer_extents(p, off, in_parent, w);
	w->depth--;
	if (rc)
		return rc;
	return ext_emit(w, off + in_parent, len - in_parent, VHD_EXT_ZERO, 0);
}

static int layer_extents(vhd_disk *d, uint64_t off, uint64_t len,
			 struct ext_walk *w)
{
	struct layer_walk lw = { .w = w, .d = d };

	return d->ops->extents(d, off, len, layer_cb, &lw);
}

int vhd_extents(vhd_disk *d, uint64_t off, uint64_t len,
		int (*cb)(void *opaque, const struct vhd_extent *e),
		void *opaque)
{
	struct ext_walk w = { .top = d, .cb = cb, .opaque = opaque };
	int rc;

	if (off >= d->size)
		return 0;
	if (len > d->size - off)
		len = d->size - off;
	rc = layer_extents(d, off, len, &w);
	if (rc == 0 && w.pending.length)
		rc = cb(opaque, &w.pending);
	return rc;
}

void vhd_uuid_format(const uint8_t u[16], char out[37])
{
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
}
