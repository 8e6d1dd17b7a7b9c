/*
 * convert.c -- copy a disk (its whole chain) into a new image.
 *
 * The source is walked by extents, so holes and unallocated blocks are never
 * read.  Data is copied in small chunks (they stay in the CPU cache between
 * the read, the zero scan and the write); every all-zero 4 KiB run is
 * skipped, because the new output already reads zeros there -- a dynamic
 * block is only allocated by its first non-zero write, and its unwritten
 * parts read as zeros -- so sparse outputs stay sparse.  The output is opened VHD_OPEN_UNSAFE (no
 * intermediate syncs) and synced once at the end; on any failure it is
 * removed, and the source is only ever read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk.h"

#define CHUNK (256u << 10)
#define ZERO_GRAIN 4096u
#define READ_AHEAD (32u << 20)	/* prefetch window ahead of the copy */

struct copy_job {
	vhd_disk *src, *dst;
	const struct vhd_convert_opts *o;
	uint8_t *buf;
	uint32_t chunk;
	uint32_t zero_grain;	/* granularity of zero skipping inside chunks */
	uint64_t done;
	uint64_t total;
	uint64_t prefetched;	/* source prefetched up to here */
};

static bool all_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && !memcmp(p, p + 1, len - 1));
}

/* Write the non-zero runs of @buf at the zero granularity. */
static int write_nonzero(struct copy_job *j, const uint8_t *buf, uint32_t len,
			 uint64_t off)
{
	uint32_t g = j->zero_grain, pos = 0;
	ssize_t n;

	if (!j->o->sparse_zeros) {
		n = vhd_pwrite(j->dst, buf, len, off);
		return n < 0 ? (int)n : 0;
	}
	while (pos < len) {
		uint32_t start, end;
		while (pos < len && all_zero(buf + pos, len - pos < g ? len - pos : g))
			pos += g;
		if (pos >= len)
			break;
		start = pos;
		while (pos < len && !all_zero(buf + pos, len - pos < g ? len - pos : g))
			pos += g;
		end = pos < len ? pos : len;
		n = vhd_pwrite(j->dst, buf + start, end - start, off + start);
		if (n < 0)
			return (int)n;
	}
	return 0;
}

static int copy_range(struct copy_job *j, uint64_t off, uint64_t len)
{
	while (len) {
		uint64_t room = j->chunk - (off % j->chunk);
		uint32_t n = (uint32_t)(len < room ? len : room);
		ssize_t r;
		int rc;

		/* Keep the kernel reading ahead while we copy. */
		if (j->prefetched < off)
			j->prefetched = off;
		if (j->prefetched < off + READ_AHEAD / 2) {
			vhd_prefetch(j->src, j->prefetched, READ_AHEAD);
			j->prefetched += READ_AHEAD;
		}
		r = vhd_pread(j->src, j->buf, n, off);
		if (r < 0)
			return disk_error(j->dst, (int)r, "reading source: %s",
					  vhd_errmsg(j->src));
		rc = write_nonzero(j, j->buf, n, off);
		if (rc < 0)
			return rc;
		off += n;
		len -= n;
		j->done += n;
		if (j->o->progress && j->o->progress(j->o->opaque, j->done, j->total))
			return disk_error(j->dst, -ECANCELED, "conversion cancelled");
	}
	return 0;
}

static int copy_extent(void *opaque, const struct vhd_extent *e)
{
	struct copy_job *j = opaque;

	if (e->type == VHD_EXT_ZERO) {
		j->done += e->length;
		if (j->o->progress && j->o->progress(j->o->opaque, j->done, j->total))
			return disk_error(j->dst, -ECANCELED, "conversion cancelled");
		return 0;
	}
	return copy_range(j, e->offset, e->length);
}

static void remove_output(const struct vhd_convert_opts *o, const char *path)
{
	const struct vhd_io_factory *f = o->out.io ? o->out.io : vhd_io_posix();

	if (f->remove)
		f->remove(f, path);
}

int vhd_convert(vhd_disk *src, const char *dst_path,
		const struct vhd_convert_opts *o)
{
	struct vhd_create_opts co = o->out;
	struct vhd_open_opts oo = { .io = o->out.io };
	struct copy_job j = { .src = src, .o = o, .total = src->size };
	unsigned flags = VHD_OPEN_RDWR | VHD_OPEN_UNSAFE;
	char msg[1024];
	int rc;

	co.size = src->size;
	if (co.type == VHD_TYPE_DIFF)
		return path_error(dst_path, -EINVAL,
				  "convert writes standalone images; use snapshot for a child");
	if (co.format != VHD_FMT_RAW && src->size % 512)
		return path_error(dst_path, -EINVAL,
				  "source size %llu is not a multiple of 512 bytes",
				  (unsigned long long)src->size);
	rc = vhd_create(dst_path, &co, NULL);
	if (rc < 0)
		return rc;
	if (o->direct)
		flags |= VHD_OPEN_DIRECT;
	rc = vhd_open(dst_path, flags, &oo, &j.dst);
	if (rc < 0) {
		remove_output(o, dst_path);
		return rc;
	}
	j.chunk = CHUNK;
	j.zero_grain = ZERO_GRAIN;
	j.buf = aligned_alloc(4096, j.chunk);
	if (!j.buf) {
		rc = disk_error(j.dst, -ENOMEM, "out of memory");
		goto fail;
	}
	rc = vhd_extents(src, 0, src->size, copy_extent, &j);
	if (rc == 0)
		rc = vhd_flush(j.dst);
	if (rc < 0)
		goto fail;
	free(j.buf);
	rc = vhd_close(j.dst);
	if (rc < 0)
		remove_output(o, dst_path);
	return rc;

fail:
	snprintf(msg, sizeof(msg), "%s", vhd_errmsg(j.dst));
	free(j.buf);
	vhd_close(j.dst);
	remove_output(o, dst_path);
	path_error(dst_path, rc, "%s (partial output removed)",
		   !strncmp(msg, dst_path, strlen(dst_path)) ? msg + strlen(dst_path) + 2 : msg);
	return rc;
}
