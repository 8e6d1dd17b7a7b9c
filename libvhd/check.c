/*
 * check.c -- verify an image and its chain without changing anything.
 *
 * The top layer is opened read-only in tolerant mode, so repairable damage
 * (a bad footer with a good backup, BAT entries past EOF or overlapping) is
 * reported instead of refused.  Then format-specific checks run, then the
 * parent is resolved the strict way and checked in turn.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "vhd_image.h"

struct checker {
	void (*report)(void *opaque, enum vhd_check_severity sev, const char *msg);
	void *opaque;
	struct vhd_check_result *res;
	const char *path;
};

static void found(void *opaque, enum vhd_check_severity sev, const char *msg)
{
	struct checker *c = opaque;
	char line[1280];

	switch (sev) {
	case VHD_CHECK_ERROR: c->res->errors++; break;
	case VHD_CHECK_WARN: c->res->warnings++; break;
	case VHD_CHECK_INFO: c->res->infos++; break;
	}
	snprintf(line, sizeof(line), "%s: %s", c->path, msg);
	if (c->report)
		c->report(c->opaque, sev, line);
}

static void foundf(struct checker *c, enum vhd_check_severity sev,
		   const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void foundf(struct checker *c, enum vhd_check_severity sev,
		   const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	found(c, sev, msg);
}

/* The backup footer of a sparse disk must match the one at EOF. */
static void check_backup_footer(vhd_disk *d, struct checker *c)
{
	struct vhd_image *v = IMG(d);
	uint8_t want[VHD_FOOTER_SIZE], have[VHD_FOOTER_SIZE];
	struct vhd_footer f = v->footer;
	struct vhd_footer b;
	uint32_t comp;
	int rc;

	if (v->type == VHD_TYPE_FIXED || !v->footer_len)
		return;
	vhd_footer_encode(&f, want);
	rc = io_read_full(d->io, have, sizeof(have), 0);
	if (rc == 0)
		rc = vhd_footer_decode(have, sizeof(have), &b, &comp);
	if (rc < 0) {
		foundf(c, VHD_CHECK_ERROR, "backup footer at offset 0 is %s",
		       rc == VHD_E_CHECKSUM ? "damaged (checksum mismatch)" : "missing");
		return;
	}
	if (memcmp(want, have, sizeof(want)))
		foundf(c, VHD_CHECK_WARN,
		       "backup footer at offset 0 differs from the footer at end of file");
}

static void check_sparse(vhd_disk *d, struct checker *c)
{
	struct vhd_image *v = IMG(d);

	for (uint32_t i = v->nblocks; i < v->max_entries; i++)
		if (v->bat[i] != VHD_BAT_UNUSED)
			foundf(c, VHD_CHECK_WARN,
			       "BAT entry %u is allocated but lies past the end of the disk",
			       i);
	if (v->footer.features & ~(VHD_FEATURES_RESERVED | VHD_FEATURE_TEMPORARY))
		foundf(c, VHD_CHECK_INFO, "unknown feature bits 0x%08x",
		       v->footer.features);
}

/* A thread error message without its leading "PATH: ". */
static const char *without_path(const char *path)
{
	const char *m = vhd_errmsg(NULL);
	size_t n = strlen(path);

	return !strncmp(m, path, n) && m[n] == ':' && m[n + 1] == ' ' ? m + n + 2 : m;
}

/* Open the parent strictly (UUID checked) and check it too. */
static int check_parent(vhd_disk *d, unsigned flags,
			const struct vhd_open_opts *o, struct checker *c)
{
	struct vhd_open_opts po = o ? *o : (struct vhd_open_opts){ 0 };
	vhd_disk *full;
	int rc;

	po.format = VHD_FMT_AUTO;
	rc = vhd_open(d->path, 0, &po, &full);
	if (rc < 0) {
		found(c, VHD_CHECK_ERROR, without_path(d->path));
		return 0;
	}
	if (full->parent)
		rc = vhd_check(full->parent_path, flags, o, c->report, c->opaque,
			       c->res);
	vhd_close(full);
	return rc;
}

int vhd_check(const char *path, unsigned flags, const struct vhd_open_opts *o,
	      void (*report)(void *opaque, enum vhd_check_severity sev,
			     const char *msg),
	      void *opaque, struct vhd_check_result *res)
{
	struct checker c = { report, opaque, res, path };
	struct chain_ctx *ctx = calloc(1, sizeof(*ctx));
	vhd_disk *d = NULL;
	int rc;

	if (!ctx)
		return -ENOMEM;
	if (o)
		ctx->opts = *o;
	ctx->flags = VHD_OPEN_TOLERANT | VHD_OPEN_NOPARENT |
		     (flags & VHD_OPEN_NOLOCK);
	ctx->report = found;
	ctx->report_opaque = &c;
	rc = disk_open_layer(path, ctx->flags, ctx, &d);
	free(ctx);
	if (rc < 0) {
		/* Damage that even a tolerant open cannot work around is a
		 * finding; a file we cannot read or recognise is not. */
		if (rc <= -VHD_E_BASE && rc != VHD_E_FORMAT) {
			found(&c, VHD_CHECK_ERROR, without_path(path));
			return 0;
		}
		return rc;
	}
	if (d->ops == &vhd_fixed_ops || d->ops == &vhd_sparse_ops) {
		check_backup_footer(d, &c);
		if (d->ops == &vhd_sparse_ops)
			check_sparse(d, &c);
		if (IMG(d)->type == VHD_TYPE_DIFF && !(flags & VHD_OPEN_NOPARENT))
			rc = check_parent(d, flags, o, &c);
	}
	vhd_close(d);
	return rc;
}
