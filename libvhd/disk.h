/*
 * disk.h -- the handle behind the public API and the interface every format
 * (raw, VHD, later VHDX) implements.
 *
 * The generic layer (disk.c) checks bounds and read-only state, then calls
 * the format.  A format reads its own layer; where a range is not stored in
 * it, it calls disk_read_parent(), which recurses down the chain.
 */
#ifndef LIBVHD_DISK_H
#define LIBVHD_DISK_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#include "libvhd.h"

/* What a format reports for one range of its own layer. */
enum layer_extent {
	LAYER_DATA,		/* stored in this layer */
	LAYER_ZERO,		/* reads as zeros */
	LAYER_PARENT,		/* comes from the parent */
};

typedef int (*layer_extent_fn)(void *opaque, uint64_t off, uint64_t len,
			       enum layer_extent what);

struct repair_ctx;
struct compact_job;

struct vhd_format_ops {
	const char *name;
	/* Ranges are inside the disk (checked by disk.c). */
	ssize_t (*pread)(vhd_disk *d, void *buf, size_t len, uint64_t off);
	ssize_t (*pwrite)(vhd_disk *d, const void *buf, size_t len,
			  uint64_t off);
	int (*flush)(vhd_disk *d);
	int (*discard)(vhd_disk *d, uint64_t off, uint64_t len);
	int (*zero)(vhd_disk *d, uint64_t off, uint64_t len, unsigned flags);
	int (*prefetch)(vhd_disk *d, uint64_t off, uint64_t len);
	int (*extents)(vhd_disk *d, uint64_t off, uint64_t len,
		       layer_extent_fn fn, void *opaque);
	int (*info)(vhd_disk *d, struct vhd_info *info);
	/* Release format state; the flush has been done by disk.c. */
	int (*close)(vhd_disk *d);
	/* Release format state of a failed open without any I/O (optional). */
	void (*abandon)(vhd_disk *d);
	/* vhd_check of formats other than VHD: findings beyond what a
	 * tolerant open reports (optional), and whether a parent is named. */
	void (*check)(vhd_disk *d, void (*found)(void *, enum vhd_check_severity,
						 const char *), void *opaque);
	bool (*has_parent)(vhd_disk *d);
	/* optional: change the virtual size (an image open read-write) */
	int (*resize)(vhd_disk *d, uint64_t size, bool force);
	/* optional: the asynchronous path's shortcut.  When [off, off+len) of
	 * this layer starts with a run stored contiguously in d->io that can be
	 * read (or, @write, overwritten) there without any metadata change,
	 * set *@pos to its file offset and return its length (<= len);
	 * otherwise return 0 and the request takes the synchronous path. */
	uint64_t (*map)(vhd_disk *d, uint64_t off, uint64_t len, bool write,
			uint64_t *pos);
	/* optional: drop blocks that read the same without them, move the
	 * rest down into holes, truncate (compact.c has the contract) */
	int (*compact)(vhd_disk *d, struct compact_job *j);
	/* optional: point a differencing image at @parent, whose info is
	 * @pi (reparent.c checked format, size and identity) */
	int (*reparent)(vhd_disk *d, const char *parent, const struct vhd_info *pi,
			const struct vhd_io_factory *f);
	/* optional: plan (and with c->apply, make) repairs of a tolerantly
	 * opened image (repair.c) */
	int (*repair)(vhd_disk *d, struct repair_ctx *c);
};

/* Identity of every file opened along a chain, for cycle detection. */
struct chain_ctx {
	unsigned depth;
	uint64_t dev[VHD_MAX_CHAIN_DEPTH + 2];
	uint64_t ino[VHD_MAX_CHAIN_DEPTH + 2];
	struct vhd_open_opts opts;	/* as given to vhd_open */
	unsigned flags;
	/* vhd_check: findings of a tolerant open of the top layer */
	void (*report)(void *opaque, enum vhd_check_severity sev,
		       const char *msg);
	void *report_opaque;
};

struct vhd_disk {
	const struct vhd_format_ops *ops;
	void *priv;			/* format state */
	struct vhd_io *io;		/* the image file */
	char *path;
	uint64_t size;			/* virtual size in bytes */
	unsigned flags;			/* VHD_OPEN_* */
	bool read_only;
	vhd_disk *parent;		/* owned */
	char *parent_path;		/* resolved, owned */
	unsigned depth;			/* layers below this one */
	pthread_mutex_t err_lock;
	char errmsg[1024];
	/* vhd_check: where a tolerant open reports what it works around */
	void (*report)(void *opaque, enum vhd_check_severity sev,
		       const char *msg);
	void *report_opaque;
};

/* Record "PATH: message" as @d's (or, for NULL, the thread's) last error and
 * return @err, so callers can `return disk_error(d, rc, "...")`. */
int disk_error(vhd_disk *d, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int disk_verror(vhd_disk *d, int err, const char *fmt, va_list ap);
/* A problem found while opening: a strict open fails with @err and the
 * message; a tolerant one (vhd_check) reports it and returns 0 so the open
 * goes on.  VHD_CHECK_INFO never fails. */
int disk_problem(vhd_disk *d, enum vhd_check_severity sev, int err,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Split [off, off+len) at the block boundaries of @img, which has
 * block_shift and block_size: each step gives the block index, the offset
 * in the block and the byte count. */
#define FOR_EACH_BLOCK(img, off, len, block, boff, n)                         \
	for (uint64_t _o = (off), _e = (off) + (len); _o < _e; _o += (n))     \
		if (((block) = (__typeof__(block))(_o >> (img)->block_shift)), \
		    ((boff) = (uint32_t)(_o & ((img)->block_size - 1))),       \
		    ((n) = (uint32_t)((_e - _o) < (uint64_t)(img)->block_size - (boff) \
				      ? (_e - _o) : (img)->block_size - (boff))), 1)

/* A request on @d: -EROFS when writing a read-only handle, -EINVAL past the
 * end of the disk (with the handle's message set), else 0. */
int disk_check_range(vhd_disk *d, uint64_t off, uint64_t len, bool write);

/* Thread error for failures before a handle exists. */
int path_error(const char *path, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

vhd_disk *disk_alloc(const char *path, struct vhd_io *io, unsigned flags);
void disk_free(vhd_disk *d);

/* Prefetch a file range of @d's image file (advisory; errors ignored). */
void disk_prefetch_file(vhd_disk *d, uint64_t off, uint64_t len);
/* Prefetch [off, off+len) of @d's parent chain, clipped to its size. */
void disk_prefetch_parent(vhd_disk *d, uint64_t off, uint64_t len);

/* Read [off, off+len) of the parent chain below @d (zeros past the parent's
 * end, or without a parent). */
int disk_read_parent(vhd_disk *d, void *buf, size_t len, uint64_t off);

/* compact.c: what dropping a stored range of @d's own layer would do.
 * @buf and @pbuf hold @len bytes each (scratch). */
enum compact_verdict {
	COMPACT_KEEP,		/* its bytes differ from what shows through */
	COMPACT_DROP,		/* reads the same without it (zeros or parent) */
	COMPACT_ZERO,		/* all zeros, but the parent differs there */
};
int compact_classify(vhd_disk *d, uint64_t off, uint32_t len, uint8_t *buf,
		     uint8_t *pbuf, enum compact_verdict *out);

/* A compaction under way: what it did, and its progress in bytes of blocks
 * (every stored block is examined once, every moved block copied once;
 * the format sets @unit to its block size). */
struct compact_job {
	struct vhd_compact_stats *st;
	int (*progress)(void *opaque, uint64_t done, uint64_t total);
	void *opaque;
	uint64_t done, total;
	uint32_t unit;
};
/* @n more blocks done and @more blocks added to the total; -ECANCELED (with
 * the message set) when the progress callback asks to stop.  Compaction
 * stops only between its durable steps, so the image stays valid. */
int compact_step(vhd_disk *d, struct compact_job *j, uint64_t n, uint64_t more);

/* repair.c: a repair run.  The format lists every change with
 * repair_action() first, then, when @apply, makes them. */
struct repair_ctx {
	bool apply;
	const struct vhd_io_factory *io;
	void (*plan)(void *opaque, const char *action);
	void *opaque;
	struct vhd_repair_result *res;
};
void repair_action(struct repair_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* layer_copy.c: copy the ranges @layer stores itself into @target: data
 * as data, zeros stored over a parent as zeros; what it takes from its
 * parent is skipped.  @buf holds LAYER_COPY_CHUNK bytes; @progress (may be
 * NULL) sees @done grow towards @total and cancels with non-zero. */
#define LAYER_COPY_CHUNK (1u << 20)
struct layer_copy {
	vhd_disk *layer, *target;
	uint8_t *buf;
	uint64_t done, total;
	int (*progress)(void *, uint64_t, uint64_t);
	void *opaque;
	bool layer_has_parent;
};
int layer_copy(struct layer_copy *c);

/* Format entry points. */
int raw_open(vhd_disk *d);
int vhd_image_open(vhd_disk *d, struct chain_ctx *ctx);
int vhd_image_create(const char *path, const struct vhd_create_opts *o);

/* Open one layer on its own, tolerating repairable damage (check, repair):
 * VHD_OPEN_TOLERANT | VHD_OPEN_NOPARENT | @flags; what the open works
 * around goes to @report. */
int disk_open_tolerant(const char *path, unsigned flags, const struct vhd_open_opts *o,
		       void (*report)(void *opaque, enum vhd_check_severity sev,
				      const char *msg),
		       void *opaque, vhd_disk **out);

/* Open a layer of a chain (used for parents); fills ctx identities. */
int disk_open_layer(const char *path, unsigned flags, struct chain_ctx *ctx,
		    vhd_disk **out);

/* Sniff the format of an opened file. */
int disk_detect_format(struct vhd_io *io, enum vhd_format *fmt);

/* Whether the @len bytes at @p are all zero. */
static inline bool bytes_all_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && !memcmp(p, p + 1, len - 1));
}

static inline const struct vhd_io_factory *opts_io(const struct vhd_open_opts *o)
{
	return o && o->io ? o->io : vhd_io_posix();
}

#endif /* LIBVHD_DISK_H */
