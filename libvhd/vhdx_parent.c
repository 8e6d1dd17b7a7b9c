/*
 * vhdx_parent.c -- find a differencing VHDX's parent: relative_path (from
 * the child's folder), absolute_win32_path, then the parent's file name in
 * the child's folder.  A candidate is taken only if it is a VHDX whose
 * DataWriteGuid equals parent_linkage (or parent_linkage2): a parent
 * modified after the child was made is refused, as Hyper-V does.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paths.h"
#include "vhdx_image.h"

static char *to_host_path(const char *p)
{
	char *s = strdup(p);

	if (!s)
		return NULL;
	for (char *c = s; *c; c++)
		if (*c == '\\')
			*c = '/';
	return s;
}

int vhdx_resolve_parent(vhd_disk *d, struct chain_ctx *ctx);

int vhdx_resolve_parent(vhd_disk *d, struct chain_ctx *ctx)
{
	struct vhdx_image *x = XIMG(d);
	const char *sources[3] = { x->relative_path, x->absolute_path, NULL };
	char *cand[3] = { NULL, NULL, NULL };
	char *buf = malloc(PATH_MAX * 2);
	char why[512] = "";
	int why_code = 0, rc = -ENOMEM, n = 0;
	vhdx_guid want, want2, gotg;
	bool have2;

	if (!buf)
		goto out;
	if (vhdx_guid_parse(x->parent_linkage, &want) < 0) {
		rc = disk_error(d, VHD_E_CORRUPT, "parent_linkage \"%s\" is not a GUID",
				x->parent_linkage);
		goto out;
	}
	have2 = x->parent_linkage2 && vhdx_guid_parse(x->parent_linkage2, &want2) == 0;
	for (int i = 0; i < 2; i++) {
		char *h;
		if (!sources[i])
			continue;
		h = to_host_path(sources[i]);
		if (!h)
			goto out;
		if (i == 0)
			path_join_relative(d->path, h, buf, PATH_MAX * 2);
		else
			snprintf(buf, PATH_MAX * 2, "%s", h);
		if (i == 0 || !cand[0] || strcmp(cand[0], buf))
			cand[n++] = strdup(buf);
		if (!sources[2]) {
			path_join_relative(d->path, path_basename_any(h), buf, PATH_MAX * 2);
			sources[2] = "";	/* computed once, from the first name */
			cand[2] = strdup(buf);
		}
		free(h);
	}
	rc = 0;
	for (int i = 0; i < 3 && rc == 0; i++) {
		struct vhd_info pi;
		vhd_disk *p;
		if (!cand[i] || (i == 2 && ((cand[0] && !strcmp(cand[0], cand[2])) ||
					   (cand[1] && !strcmp(cand[1], cand[2])))))
			continue;
		if (ctx->opts.parent_root && !path_is_under(cand[i], ctx->opts.parent_root)) {
			snprintf(why, sizeof(why), "%s is outside the allowed folder %s",
				 cand[i], ctx->opts.parent_root);
			why_code = -EPERM;
			continue;
		}
		ctx->depth++;
		rc = disk_open_layer(cand[i], ctx->flags & (VHD_OPEN_NOLOCK | VHD_OPEN_DIRECT),
				     ctx, &p);
		ctx->depth--;
		if (rc == -ENOENT || rc == -ENOTDIR) {
			rc = 0;
			continue;
		}
		if (rc < 0)
			break;
		vhd_get_info(p, &pi);
		if (pi.format != VHD_FMT_VHDX) {
			snprintf(why, sizeof(why), "%s is not a VHDX", cand[i]);
			why_code = VHD_E_PARENT_ID;
		} else if (vhdx_guid_from_rfc(pi.data_write_guid, &gotg),
			   !ctx->opts.ignore_parent_id && !vhdx_guid_eq(&gotg, &want) &&
			   !(have2 && vhdx_guid_eq(&gotg, &want2))) {
			char got[39];
			vhdx_guid_format(&gotg, got);
			snprintf(why, sizeof(why),
				 "%s has DataWriteGuid %s, but this image's parent_linkage is %s (the parent changed after the child was made)",
				 cand[i], got, x->parent_linkage);
			why_code = VHD_E_PARENT_ID;
		} else {
			d->parent = p;
			d->parent_path = strdup(cand[i]);
			d->depth = p->depth + 1;
			rc = d->parent_path ? 1 : -ENOMEM;
			break;
		}
		vhd_close(p);
	}
	if (rc > 0)
		rc = 0;
	else if (rc == 0 && why_code)
		rc = disk_error(d, why_code, "parent refused: %s", why);
	else if (rc == 0)
		rc = disk_error(d, VHD_E_NOPARENT, "parent %s not found",
				x->relative_path ? x->relative_path :
				x->absolute_path ? x->absolute_path : "(no path in the locator)");
out:
	for (int i = 0; i < 3; i++)
		free(cand[i]);
	free(buf);
	return rc;
}
