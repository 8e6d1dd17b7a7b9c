/*
 * repair.c -- vhd_repair(): plan, report, then apply.
 *
 * The layer is opened tolerantly (VHD_OPEN_TOLERANT, as check does), so
 * repairable damage is worked around in memory instead of refused.  A first
 * run, read-only, has the format list every change it would make; each is
 * reported before anything is written.  Unless it is a dry run, the layer
 * is opened again read-write (still tolerant) and the format makes the same
 * changes, in its crash-safe order (vhd_repair.c, vhdx_repair.c).  The
 * second plan is computed from the same bytes, so it is the same list.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhd_image.h"

void repair_action(struct repair_ctx *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	c->res->actions++;
	if (!c->plan)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->plan(c->opaque, line);
}

/* Findings of the tolerant open are what the plan lists; drop them. */
static void ignore(void *opaque, enum vhd_check_severity sev, const char *msg)
{
}

static int open_tolerant(const char *path, unsigned flags,
			 const struct vhd_open_opts *o, vhd_disk **d)
{
	struct vhd_open_opts oo = o ? *o : (struct vhd_open_opts){ 0 };

	oo.format = VHD_FMT_AUTO;
	return disk_open_tolerant(path, flags, &oo, ignore, NULL, d);
}

static int run(const char *path, bool apply, const struct vhd_open_opts *o,
	       struct repair_ctx *c)
{
	vhd_disk *d;
	int rc = open_tolerant(path, apply ? VHD_OPEN_RDWR : 0, o, &d);

	if (rc < 0)
		return rc;	/* damage no repair undoes: the open says what */
	c->apply = apply;
	if (d->ops->repair)
		rc = d->ops->repair(d, c);
	else if (d->ops != &vhd_fixed_ops)	/* a fixed VHD: only its footer */
		rc = disk_error(d, VHD_E_UNSUPPORTED,
				"repair works on VHD and VHDX images (this one opens as %s)",
				d->ops->name);
	if (rc < 0) {
		vhd_close(d);
		return rc;
	}
	return vhd_close(d);
}

int vhd_repair(const char *path, unsigned flags, const struct vhd_open_opts *o,
	       void (*plan)(void *opaque, const char *action), void *opaque,
	       struct vhd_repair_result *res)
{
	struct vhd_repair_result local;
	struct repair_ctx c = { .io = opts_io(o), .plan = plan, .opaque = opaque };
	unsigned planned;
	int rc;

	if (!res)
		res = &local;
	memset(res, 0, sizeof(*res));
	c.res = res;
	if (flags & ~VHD_REPAIR_DRY_RUN)
		return path_error(path, -EINVAL, "unknown repair flags 0x%x", flags);
	rc = run(path, false, o, &c);
	if (rc < 0 || !res->actions || (flags & VHD_REPAIR_DRY_RUN))
		return rc;
	planned = res->actions;
	memset(res, 0, sizeof(*res));
	c.plan = NULL;		/* reported already */
	rc = run(path, true, o, &c);
	if (rc == 0 && res->actions != planned)
		rc = path_error(path, -EAGAIN,
				"the image changed while it was repaired (%u changes planned, %u made)",
				planned, res->actions);
	return rc;
}
