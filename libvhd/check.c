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
	const char *path;	/* the layer being checked */
	char **seen;		/* findings already reported */
	size_t nseen;
};

/* Report a finding once: the tolerant open of a layer and the strict open
 * of the chain can meet the same problem. */
static void found(void *opaque, enum vhd_check_severity sev, const char *msg)
{
	struct checker *c = opaque;
	char line[1280];
	char **v;

	snprintf(line, sizeof(line), "%s: %s", c->path, msg);
	for (size_t i = 0; i < c->nseen; i++)
		if (!strcmp(c->seen[i], line))
			return;
	v = realloc(c->seen, (c->nseen + 1) * sizeof(*v));
	if (v) {
		c->seen = v;
		c->seen[c->nseen] = strdup(line);
		if (c->seen[c->nseen])
			c->nseen++;
	}
	switch (sev) {
	case VHD_CHECK_ERROR: c->res->errors++; break;
	case VHD_CHECK_WARN: c->res->warnings++; break;
	case VHD_CHECK_INFO: c->res->infos++; break;
	}
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
	if (!memcmp(want, have, sizeof(want)))
		return;
	/* Resize rewrites both copies in one sync window: a crash can leave
	 * the backup with the other size.  The footer at EOF is the one every
	 * reader uses, so that is information (repair rewrites the copy). */
	b.current_size = f.current_size;
	b.cylinders = f.cylinders;
	b.heads = f.heads;
	b.sectors_per_track = f.sectors_per_track;
	memcpy(b.creator_app, f.creator_app, sizeof(b.creator_app));
	vhd_footer_encode(&b, have);
	if (!memcmp(want, have, sizeof(want)))
		foundf(c, VHD_CHECK_INFO,
		       "backup footer at offset 0 holds another disk size (an interrupted resize); the footer at end of file is used, vhdtool repair rewrites the copy");
	else
		foundf(c, VHD_CHECK_WARN,
		       "backup footer at offset 0 differs from the footer at end of file");
}

/* A fixed disk's data should fill the file up to the footer. */
static void check_fixed(vhd_disk *d, struct checker *c)
{
	struct vhd_image *v = IMG(d);
	uint64_t fsize = 0;

	if (io_size(d->io, &fsize) == 0 && v->footer_len &&
	    fsize - v->footer_len > v->footer.current_size)
		foundf(c, VHD_CHECK_WARN,
		       "the file holds %llu bytes of data, more than the disk size %llu",
		       (unsigned long long)(fsize - v->footer_len),
		       (unsigned long long)v->footer.current_size);
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

/* Damage is a finding; a file we cannot read or recognise is not. */
static bool is_damage(int rc)
{
	return rc <= -VHD_E_BASE && rc != VHD_E_FORMAT;
}

/* Check one layer on its own (tolerant, no parent).  *@is_diff tells
 * whether it has a parent to look for. */
static int check_layer(const char *path, unsigned flags,
		       const struct vhd_open_opts *o, struct checker *c,
		       bool *is_diff)
{
	vhd_disk *d = NULL;
	int rc;

	*is_diff = false;
	c->path = path;
	rc = disk_open_tolerant(path, flags & VHD_OPEN_NOLOCK, o, found, c, &d);
	if (rc < 0) {
		if (!is_damage(rc))
			return rc;
		found(c, VHD_CHECK_ERROR, without_path(path));
		return 0;
	}
	if (d->ops == &vhd_fixed_ops || d->ops == &vhd_sparse_ops) {
		check_backup_footer(d, c);
		if (d->ops == &vhd_sparse_ops)
			check_sparse(d, c);
		else
			check_fixed(d, c);
		*is_diff = IMG(d)->type == VHD_TYPE_DIFF;
	} else {
		if (d->ops->check)
			d->ops->check(d, found, c);
		*is_diff = d->ops->has_parent && d->ops->has_parent(d);
	}
	vhd_close(d);
	return 0;
}

int vhd_check(const char *path, unsigned flags, const struct vhd_open_opts *o,
	      void (*report)(void *opaque, enum vhd_check_severity sev,
			     const char *msg),
	      void *opaque, struct vhd_check_result *res)
{
	struct checker c = { report, opaque, res, path, NULL, 0 };
	struct vhd_open_opts po = o ? *o : (struct vhd_open_opts){ 0 };
	char **paths = NULL;
	size_t npaths = 0;
	vhd_disk *full;
	bool is_diff;
	int rc;

	rc = check_layer(path, flags, o, &c, &is_diff);
	if (rc < 0 || !is_diff || (flags & VHD_OPEN_NOPARENT))
		goto out;
	/* The chain, resolved the strict way: parents found, identities
	 * matching, no cycle, not too deep.  Then each parent on its own. */
	po.format = VHD_FMT_AUTO;
	rc = vhd_open(path, flags & VHD_OPEN_NOLOCK, &po, &full);
	if (rc < 0) {
		c.path = path;
		if (is_damage(rc)) {
			found(&c, VHD_CHECK_ERROR, without_path(path));
			rc = 0;
		}
		goto out;
	}
	for (vhd_disk *l = vhd_parent(full); l; l = vhd_parent(l)) {
		char **v = realloc(paths, (npaths + 1) * sizeof(*v));
		if (!v) {
			rc = -ENOMEM;
			break;
		}
		paths = v;
		paths[npaths] = strdup(l->path);
		if (paths[npaths])
			npaths++;
	}
	vhd_close(full);
	for (size_t i = 0; rc == 0 && i < npaths; i++)
		rc = check_layer(paths[i], flags | VHD_OPEN_NOPARENT, o, &c, &is_diff);
out:
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	for (size_t i = 0; i < c.nseen; i++)
		free(c.seen[i]);
	free(c.seen);
	return rc;
}
