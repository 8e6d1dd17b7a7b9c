/*
 * layer_copy.c -- copy what one layer of a chain stores itself into another
 * disk (merge.c's copy into an ancestor, convert_chain.c's copy into a new
 * differencing output).  Ranges the layer takes from its parent are not
 * copied; ranges it stores as zeros over a parent are zeroed in the target.
 */
#include <errno.h>

#include "disk.h"

static int copy_cb(void *opaque, uint64_t off, uint64_t len, enum layer_extent what)
{
	struct layer_copy *c = opaque;
	int rc;

	if (what == LAYER_PARENT || (what == LAYER_ZERO && !c->layer_has_parent))
		return 0;
	if (what == LAYER_ZERO) {
		rc = vhd_zero(c->target, off, len, 0);
		return rc < 0 ? rc : 0;
	}
	while (len) {
		size_t n = len < LAYER_COPY_CHUNK ? (size_t)len : LAYER_COPY_CHUNK;
		ssize_t r = c->layer->ops->pread(c->layer, c->buf, n, off);
		if (r < 0)
			return (int)r;
		r = vhd_pwrite(c->target, c->buf, n, off);
		if (r < 0)
			return (int)r;
		off += n;
		len -= n;
		c->done += n;
		if (c->progress && c->progress(c->opaque, c->done, c->total))
			return -ECANCELED;
	}
	return 0;
}

int layer_copy(struct layer_copy *c)
{
	return c->layer->ops->extents(c->layer, 0, c->layer->size, copy_cb, c);
}
