/*
 * reparent.c -- vhd_reparent(): check that the new parent may stand under
 * the child (format, size, not in a cycle, identity), then let the format
 * rewrite the child's link (vhd_reparent.c, vhdx_reparent.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk.h"

/* @child must not be @p or one of its ancestors (a cycle). */
static int check_cycle(vhd_disk *child, vhd_disk *p)
{
	char a[PATH_MAX], b[PATH_MAX];

	if (!realpath(child->path, a))
		return 0;
	for (vhd_disk *l = p; l; l = vhd_parent(l))
		if (realpath(l->path, b) && !strcmp(a, b))
			return disk_error(child, VHD_E_CHAIN,
					  "%s has this image in its own chain: reparenting would make a cycle",
					  p->path);
	return 0;
}

static int check_identity(vhd_disk *child, const struct vhd_info *ci,
			  const struct vhd_info *pi, const char *parent)
{
	char want[37], got[37];

	if (!memcmp(ci->parent_uuid, pi->format == VHD_FMT_VHDX ? pi->data_write_guid
								 : pi->uuid, 16))
		return 0;
	vhd_uuid_format(ci->parent_uuid, want);
	vhd_uuid_format(pi->format == VHD_FMT_VHDX ? pi->data_write_guid : pi->uuid, got);
	return disk_error(child, VHD_E_PARENT_ID,
			  "%s has %s %s, but this image was made from %s (another disk, or it changed since); --ignore-id-mismatch overrides",
			  parent, pi->format == VHD_FMT_VHDX ? "DataWriteGuid" : "UUID",
			  got, want);
}

/* Everything that must hold before the child is touched. */
static int check_parent(vhd_disk *child, vhd_disk *p, const char *parent,
			unsigned flags, struct vhd_info *pi)
{
	struct vhd_info ci;
	int rc;

	vhd_get_info(child, &ci);
	vhd_get_info(p, pi);
	if (ci.type != VHD_TYPE_DIFF || !child->ops->reparent)
		return disk_error(child, -EINVAL,
				  "not a differencing image: it has no parent to change");
	if (pi->format != ci.format)
		return disk_error(child, -EINVAL, "%s is not a %s: a parent must have its child's format",
				  parent, ci.format == VHD_FMT_VHDX ? "VHDX" : "VHD");
	if (pi->size != child->size)
		return disk_error(child, -EINVAL,
				  "%s holds %llu bytes, this image %llu: a parent must have its child's size",
				  parent, (unsigned long long)pi->size,
				  (unsigned long long)child->size);
	rc = check_cycle(child, p);
	if (rc == 0 && !(flags & VHD_REPARENT_IGNORE_ID))
		rc = check_identity(child, &ci, pi, parent);
	return rc;
}

int vhd_reparent(const char *child, const char *new_parent, unsigned flags,
		 const struct vhd_open_opts *o)
{
	struct vhd_open_opts lo = o ? *o : (struct vhd_open_opts){ 0 };
	struct vhd_info pi;
	vhd_disk *d, *p;
	int rc;

	if (flags & ~VHD_REPARENT_IGNORE_ID)
		return path_error(child, -EINVAL, "unknown reparent flags 0x%x", flags);
	if (strchr(new_parent, '\\'))
		return path_error(new_parent, -EINVAL,
				  "a parent path with a backslash cannot be stored: locators use it as the path separator");
	lo.format = VHD_FMT_AUTO;
	rc = vhd_open(child, VHD_OPEN_RDWR | VHD_OPEN_NOPARENT, &lo, &d);
	if (rc < 0)
		return rc;
	/* Its whole chain must open.  Without locks: the child, locked for
	 * writing now, may be in it, which check_cycle reports. */
	rc = vhd_open(new_parent, VHD_OPEN_NOLOCK, &lo, &p);
	if (rc < 0) {
		vhd_close(d);
		return rc;
	}
	rc = check_parent(d, p, new_parent, flags, &pi);
	vhd_close(p);
	if (rc == 0)
		rc = d->ops->reparent(d, new_parent, &pi, opts_io(&lo));
	if (rc < 0) {
		vhd_close(d);
		return rc;	/* the message names the file and the cause */
	}
	return vhd_close(d);
}
