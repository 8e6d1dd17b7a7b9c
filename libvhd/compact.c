/*
 * compact.c -- vhd_compact(): open the image read-write (with its parent
 * chain, which decides what a differencing block may drop), let the format
 * reclaim space, report what was done.
 *
 * The rule for dropping a block (both formats): a stored block is dropped
 * only when the image reads the same bytes without it -- zeros for a
 * dynamic disk, the parent's bytes for a differencing one.  An all-zero
 * block of a differencing disk over non-zero parent data is kept (VHD: no
 * state says "zeros here") or turned into PAYLOAD_BLOCK_ZERO (VHDX), never
 * dropped: dropping it would expose the parent's data.
 *
 * The formats' own parts (vhd_compact.c, vhdx_compact.c) share one order,
 * which keeps the image valid and content-equal at every instant:
 *   1. drop blocks: BAT entries cleared (or set ZERO) and made durable;
 *   2. move blocks from the end of the file into holes: copy, sync, then the
 *      BAT entry points at the copy (durable); the old place is free only
 *      after that, and is reused only in a later round;
 *   3. truncate after the last block, last.
 */
#include <errno.h>
#include <string.h>

#include "disk.h"
#include "io.h"

int compact_classify(vhd_disk *d, uint64_t off, uint32_t len, uint8_t *buf,
		     uint8_t *pbuf, enum compact_verdict *out)
{
	ssize_t n = d->ops->pread(d, buf, len, off);
	int rc;

	if (n < 0)
		return (int)n;
	rc = disk_read_parent(d, pbuf, len, off);
	if (rc < 0)
		return rc;
	if (!memcmp(buf, pbuf, len))
		*out = COMPACT_DROP;
	else if (bytes_all_zero(buf, len))
		*out = COMPACT_ZERO;
	else
		*out = COMPACT_KEEP;
	return 0;
}

int compact_step(vhd_disk *d, struct compact_job *j, uint64_t n, uint64_t more)
{
	j->done += n * j->unit;
	j->total += more * j->unit;
	if (j->progress && j->progress(j->opaque, j->done, j->total))
		return disk_error(d, -ECANCELED, "compaction cancelled (the image is valid)");
	return 0;
}

int vhd_compact(const char *path, unsigned flags, const struct vhd_open_opts *o,
		int (*progress)(void *, uint64_t, uint64_t), void *opaque,
		struct vhd_compact_stats *st)
{
	struct vhd_open_opts lo = o ? *o : (struct vhd_open_opts){ 0 };
	struct vhd_compact_stats local;
	struct compact_job j = { .progress = progress, .opaque = opaque };
	uint64_t size = 0;
	vhd_disk *d;
	int rc;

	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	if (flags)
		return path_error(path, -EINVAL, "unknown compact flags 0x%x", flags);
	lo.format = VHD_FMT_AUTO;
	rc = vhd_open(path, VHD_OPEN_RDWR, &lo, &d);
	if (rc < 0)
		return rc;
	if (!d->ops->compact) {
		rc = disk_error(d, VHD_E_UNSUPPORTED,
				"only dynamic and differencing VHD and VHDX images can be compacted (this one opens as %s)",
				d->ops->name);
		goto out;
	}
	if (io_size(d->io, &size) == 0)
		st->file_before = size;
	j.st = st;
	rc = d->ops->compact(d, &j);
out:
	if (rc < 0) {
		vhd_close(d);
		return rc;	/* the message names the file and the cause */
	}
	rc = vhd_close(d);
	if (rc == 0) {
		struct vhd_open_opts so = lo;
		vhd_disk *s;
		/* The size after close (which trims the reservation). */
		if (vhd_open(path, VHD_OPEN_NOPARENT, &so, &s) == 0) {
			if (io_size(s->io, &size) == 0)
				st->file_after = size;
			vhd_close(s);
		}
	}
	return rc;
}
