/*
 * vhd_parent.c -- parent locators: finding a differencing disk's parent.
 *
 * Order of candidates (vhd-facts 3): the relative locator (W2ru, Wi2r), the
 * absolute ones (W2ku, Wi2k, MacX), then the parent's file name in the
 * child's own folder.  A candidate is taken only if its footer UUID equals
 * the child's parent UUID (unless the caller ignores identity).  Locator
 * data is UTF-16LE (W2*), ANSI (Wi2*) or a file:// URL (MacX).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "io.h"
#include "paths.h"
#include "vhd_image.h"

#define MAX_LOCATOR_BYTES 65536
#define MAX_CANDIDATES (VHD_LOCATOR_COUNT + 1)

/* Decode locator @l into a host path (Windows separators turned to '/'). */
static int locator_path(vhd_disk *d, int idx, char *out, size_t size)
{
	struct vhd_locator *l = &IMG(d)->header.loc[idx];
	uint32_t len = l->data_length;
	uint16_t *units = NULL;
	uint8_t *raw;
	int rc;

	if (len == 0 || len > MAX_LOCATOR_BYTES || len > vhd_locator_space(l))
		return disk_error(d, VHD_E_CORRUPT,
				  "parent locator %d has a bad data length %u", idx, len);
	raw = malloc(len);
	if (!raw)
		return -ENOMEM;
	rc = io_read_full(d->io, raw, len, l->data_offset);
	if (rc < 0) {
		free(raw);
		return disk_error(d, rc, "cannot read parent locator %d: %s", idx,
				  vhd_strerror(rc));
	}
	if (l->code == VHD_PLAT_W2KU || l->code == VHD_PLAT_W2RU) {
		if (len % 2) {
			rc = disk_error(d, VHD_E_CORRUPT,
					"parent locator %d: odd UTF-16 length %u", idx, len);
			goto out;
		}
		units = malloc(len);
		if (!units) {
			rc = -ENOMEM;
			goto out;
		}
		for (uint32_t i = 0; i < len / 2; i++)
			units[i] = get_le16(raw + 2 * i);
		rc = vhd_utf16_to_utf8(units, len / 2, out, size, false);
		if (rc < 0) {
			rc = disk_error(d, VHD_E_CORRUPT,
					"parent locator %d holds invalid UTF-16", idx);
			goto out;
		}
	} else {
		const char *s = (const char *)raw;
		if (l->code == VHD_PLAT_MACX && len >= 7 && !memcmp(s, "file://", 7)) {
			s += 7;
			len -= 7;
		}
		if (len >= size) {
			rc = disk_error(d, VHD_E_CORRUPT,
					"parent locator %d is too long", idx);
			goto out;
		}
		memcpy(out, s, len);
		out[len] = '\0';
		out[strnlen(out, len)] = '\0';
	}
	for (char *p = out; *p; p++)
		if (*p == '\\')
			*p = '/';
	rc = 0;
out:
	free(units);
	free(raw);
	return rc;
}

static bool is_relative_code(uint32_t code)
{
	return code == VHD_PLAT_W2RU || code == VHD_PLAT_WI2R;
}

static bool is_known_code(uint32_t code)
{
	return code == VHD_PLAT_W2RU || code == VHD_PLAT_WI2R ||
	       code == VHD_PLAT_W2KU || code == VHD_PLAT_WI2K ||
	       code == VHD_PLAT_MACX;
}

struct candidates {
	char *path[MAX_CANDIDATES];
	int n;
};

static int add_candidate(struct candidates *c, const char *path)
{
	for (int i = 0; i < c->n; i++)
		if (!strcmp(c->path[i], path))
			return 0;
	if (c->n == MAX_CANDIDATES)
		return 0;
	c->path[c->n] = strdup(path);
	if (!c->path[c->n])
		return -ENOMEM;
	c->n++;
	return 0;
}

/* Parent resolution recurses once per chain layer (up to 256): keep path
 * buffers off the stack. */
static int collect_candidates(vhd_disk *d, struct candidates *c)
{
	struct vhd_image *v = IMG(d);
	char *loc = malloc(PATH_MAX), *full = malloc(PATH_MAX * 2);
	int rc = -ENOMEM;

	if (!loc || !full)
		goto out;

	/* Pass 0: relative locators; pass 1: absolute ones. */
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
			uint32_t code = v->header.loc[i].code;
			if (!is_known_code(code) || is_relative_code(code) != (pass == 0))
				continue;
			rc = locator_path(d, i, loc, PATH_MAX);
			if (rc < 0)
				goto out;
			if (pass == 0)
				path_join_relative(d->path, loc, full, PATH_MAX * 2);
			else
				snprintf(full, PATH_MAX * 2, "%s", loc);
			rc = add_candidate(c, full);
			if (rc < 0)
				goto out;
		}
	}
	rc = 0;
	if (v->parent_name && *v->parent_name) {
		path_join_relative(d->path, path_basename_any(v->parent_name),
				   full, PATH_MAX * 2);
		rc = add_candidate(c, full);
	}
out:
	free(loc);
	free(full);
	return rc;
}

static int decode_parent_name(vhd_disk *d)
{
	struct vhd_image *v = IMG(d);
	size_t size = VHD_PARENT_NAME_UNITS * 4 + 1;
	char *name = malloc(size);
	int rc;

	if (!name)
		return -ENOMEM;
	rc = vhd_utf16_to_utf8(v->header.parent_name, VHD_PARENT_NAME_UNITS,
			       name, size, true);
	if (rc < 0)
		name[0] = '\0';
	for (char *p = name; *p; p++)
		if (*p == '\\')
			*p = '/';
	v->parent_name = name;
	return 0;
}

/* Try one candidate.  Returns 1 when taken, 0 to try the next, <0 error. */
static int try_candidate(vhd_disk *d, struct chain_ctx *ctx, const char *path,
			 char *why, size_t why_len, int *why_code)
{
	struct vhd_image *v = IMG(d);
	unsigned flags = ctx->flags & (VHD_OPEN_NOLOCK | VHD_OPEN_DIRECT);
	struct vhd_info pi;
	vhd_disk *p;
	char want[37], got[37];
	int rc;

	if (ctx->opts.parent_root && !path_is_under(path, ctx->opts.parent_root)) {
		snprintf(why, why_len, "%s is outside the allowed folder %s", path,
			 ctx->opts.parent_root);
		*why_code = -EPERM;
		return 0;
	}
	ctx->depth++;
	rc = disk_open_layer(path, flags, ctx, &p);
	ctx->depth--;
	if (rc == -ENOENT || rc == -ENOTDIR)
		return 0;
	if (rc < 0)
		return rc;	/* the parent's message names it and the cause */
	vhd_get_info(p, &pi);
	if (pi.format != VHD_FMT_VHD) {
		snprintf(why, why_len, "%s is not a VHD", path);
		*why_code = VHD_E_PARENT_ID;
		vhd_close(p);
		return 0;
	}
	if (memcmp(pi.uuid, v->header.parent_uuid, 16) && !ctx->opts.ignore_parent_id) {
		vhd_uuid_format(v->header.parent_uuid, want);
		vhd_uuid_format(pi.uuid, got);
		snprintf(why, why_len, "%s has UUID %s, but this image's parent is %s",
			 path, got, want);
		*why_code = VHD_E_PARENT_ID;
		vhd_close(p);
		return 0;
	}
	d->parent = p;
	d->parent_path = strdup(path);
	d->depth = p->depth + 1;
	return d->parent_path ? 1 : -ENOMEM;
}

#define WHY_SIZE (PATH_MAX * 2 + 128)
#define TRIED_SIZE 1024

int vhd_resolve_parent(vhd_disk *d, struct chain_ctx *ctx)
{
	struct candidates c = { .n = 0 };
	char *why = NULL, *tried = NULL;
	int why_code = 0, rc;

	rc = decode_parent_name(d);
	if (rc < 0 || !ctx)
		return rc;
	why = calloc(1, WHY_SIZE);
	tried = calloc(1, TRIED_SIZE);
	rc = why && tried ? collect_candidates(d, &c) : -ENOMEM;
	for (int i = 0; rc == 0 && i < c.n; i++) {
		rc = try_candidate(d, ctx, c.path[i], why, WHY_SIZE, &why_code);
		if (rc == 0 && strlen(tried) + strlen(c.path[i]) + 3 < TRIED_SIZE) {
			if (*tried)
				strcat(tried, ", ");
			strcat(tried, c.path[i]);
		}
	}
	for (int i = 0; i < c.n; i++)
		free(c.path[i]);
	if (rc == -ENOMEM)
		rc = disk_error(d, rc, "out of memory resolving the parent");
	else if (rc > 0)
		rc = 0;
	else if (rc == 0 && why_code)
		rc = disk_error(d, why_code, "parent refused: %s", why);
	else if (rc == 0)
		rc = disk_error(d, VHD_E_NOPARENT, "parent %s not found (tried: %s)",
				IMG(d)->parent_name, *tried ? tried : "no locator");
	free(why);
	free(tried);
	return rc;
}
