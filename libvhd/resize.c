/*
 * resize.c -- vhd_resize(): open the layer read-write, refuse a shrink that
 * would cut stored data (unless forced), let the format do it.
 */
#include <errno.h>

#include "disk.h"

struct cut_scan {
	uint64_t data;		/* bytes of this layer's data in the cut range */
};

static int count_data(void *opaque, const struct vhd_extent *e)
{
	struct cut_scan *c = opaque;

	if (e->type == VHD_EXT_DATA && e->depth == 0)
		c->data += e->length;
	return 0;
}

int vhd_resize(const char *path, uint64_t size, unsigned flags,
	       const struct vhd_open_opts *o)
{
	struct cut_scan c = { 0 };
	vhd_disk *d;
	int rc = vhd_open(path, VHD_OPEN_RDWR | VHD_OPEN_NOPARENT, o, &d);

	if (rc < 0)
		return rc;
	if (!d->ops->resize) {
		rc = disk_error(d, VHD_E_UNSUPPORTED, "this format cannot be resized");
		goto out;
	}
	if (size < d->size && !(flags & VHD_RESIZE_FORCE)) {
		rc = vhd_extents(d, size, d->size - size, count_data, &c);
		if (rc == 0 && c.data)
			rc = disk_error(d, -ENOTEMPTY,
					"shrinking to %llu bytes would cut %llu bytes of stored data (use --force)",
					(unsigned long long)size, (unsigned long long)c.data);
		if (rc < 0)
			goto out;
	}
	if (size != d->size)
		rc = d->ops->resize(d, size, flags & VHD_RESIZE_FORCE);
out:
	if (rc < 0) {
		vhd_close(d);
		return rc;	/* the message names the file and the cause */
	}
	return vhd_close(d);
}
