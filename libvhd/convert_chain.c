/*
 * convert_chain.c -- vhd_convert_chain(): a chain converted layer by layer
 * (vhdtool convert --keep-chain).  The base is converted whole; every layer
 * above becomes a differencing image over the previous output, holding the
 * ranges the layer stores itself (layer_copy.c).  Since output i stores
 * what layer i stores and takes the rest from output i-1, which reads as
 * layer i-1, each output reads as its layer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "disk.h"

static void remove_outputs(const struct vhd_convert_opts *o, const char *const *dst, int n)
{
	const struct vhd_io_factory *f = o->out.io ? o->out.io : vhd_io_posix();

	for (int i = 0; i < n && f->remove; i++)
		f->remove(f, dst[i]);
}

/* Output @i over output @i-1, with what @layer stores itself. */
static int convert_layer(vhd_disk *layer, const char *dst, const char *parent,
			 const struct vhd_convert_opts *o, uint8_t *buf, bool *created)
{
	struct vhd_create_opts co = o->out;
	struct layer_copy c = { .layer = layer, .buf = buf, .layer_has_parent = true,
				.progress = o->progress, .opaque = o->opaque,
				.total = layer->size };
	int rc;

	co.type = VHD_TYPE_DIFF;
	co.parent = parent;
	co.size = 0;
	rc = vhd_create(dst, &co, &c.target);
	if (rc < 0)
		return rc;
	*created = true;
	rc = layer_copy(&c);
	if (rc < 0 && !vhd_errmsg(c.target)[0])
		disk_error(c.target, rc, "copying %s: %s", layer->path, vhd_strerror(rc));
	if (rc < 0) {
		path_error(dst, rc, "%s", vhd_errmsg(c.target));
		vhd_close(c.target);
		return rc;
	}
	return vhd_close(c.target);
}

int vhd_convert_chain(vhd_disk *src, const char *const *dst, int n,
		      const struct vhd_convert_opts *o)
{
	vhd_disk *layers[VHD_MAX_CHAIN_DEPTH + 1];
	uint8_t *buf = NULL;
	int count = 0, rc = 0, made;

	for (vhd_disk *l = src; l && count <= VHD_MAX_CHAIN_DEPTH; l = vhd_parent(l))
		layers[count++] = l;
	if (n != count)
		return path_error(src->path, -EINVAL,
				  "the chain has %d layers, but %d outputs were named", count, n);
	if (o->out.format != VHD_FMT_VHD && o->out.format != VHD_FMT_VHDX)
		return path_error(dst[0], -EINVAL,
				  "a chain can only be kept in VHD or VHDX outputs");
	rc = vhd_convert(layers[count - 1], dst[0], o);
	if (rc < 0)
		return rc;
	made = 1;
	buf = malloc(LAYER_COPY_CHUNK);
	if (!buf)
		rc = path_error(dst[1 < n ? 1 : 0], -ENOMEM, "out of memory");
	for (int i = 1; i < n && rc == 0; i++) {
		bool created = false;
		rc = convert_layer(layers[count - 1 - i], dst[i], dst[i - 1], o, buf,
				   &created);
		made += created;
	}
	free(buf);
	if (rc < 0)
		remove_outputs(o, dst, made);	/* only what this call created */
	return rc;
}
