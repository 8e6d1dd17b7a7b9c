/*
 * merge.c -- merge a segment of a differencing chain into an ancestor
 * (Merge-VHD), journaled and resumable.
 *
 *   child -> ... -> (segment) -> target -> target's parents
 *
 * The target receives, for every sector some segment layer stores, the
 * value the topmost such layer holds: layers are copied bottom up, so upper
 * layers overwrite lower ones; a layer's ZERO ranges (which override its
 * parent) are written as zeros.  Copying is idempotent, so an interrupted
 * merge is finished by running the copy again.
 *
 * Journal: before the first write into the target, TARGET.vhdkit-merge is
 * written and synced:
 *     vhdkit-merge 1
 *     target PATH
 *     layer PATH        (one per segment layer, top first)
 * `vhd_merge_resume()` reads it and runs the copy again.  It is removed
 * when the target has been flushed.
 *
 * Crash safety: the segment layers are only read.  For a VHD target, writes
 * do not change its identity, so until the journal is gone the old chain
 * still reads exactly what it read before (every written sector is one the
 * segment overrides).  A VHDX target's DataWriteGuid changes with its first
 * write, which (rightly) invalidates the old chain's link: the journal then
 * is what finishes the merge.  Afterwards the segment layers are stale:
 * their content is in the target, and the caller names or deletes them.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk.h"
#include "io.h"

struct merge_plan {
	char *target;
	char **layers;		/* top first */
	int nlayers;
};

static void plan_free(struct merge_plan *p)
{
	for (int i = 0; i < p->nlayers; i++)
		free(p->layers[i]);
	free(p->layers);
	free(p->target);
	memset(p, 0, sizeof(*p));
}

static int plan_add(struct merge_plan *p, const char *path)
{
	char **v = realloc(p->layers, (p->nlayers + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	p->layers = v;
	p->layers[p->nlayers] = strdup(path);
	return p->layers[p->nlayers++] ? 0 : -ENOMEM;
}

static void journal_path(const char *target, char *out, size_t len)
{
	snprintf(out, len, "%s.vhdkit-merge", target);
}

static const struct vhd_io_factory *factory(const struct vhd_open_opts *o)
{
	return o && o->io ? o->io : vhd_io_posix();
}

static int write_journal(const struct merge_plan *p, const struct vhd_open_opts *o)
{
	const struct vhd_io_factory *f = factory(o);
	char jp[PATH_MAX + 32];
	size_t len = 64 + strlen(p->target);
	struct vhd_io *io;
	char *text;
	int rc;

	for (int i = 0; i < p->nlayers; i++)
		len += strlen(p->layers[i]) + 8;
	text = malloc(len);
	if (!text)
		return -ENOMEM;
	len = (size_t)snprintf(text, len, "vhdkit-merge 1\ntarget %s\n", p->target);
	for (int i = 0; i < p->nlayers; i++)
		len += (size_t)sprintf(text + len, "layer %s\n", p->layers[i]);
	journal_path(p->target, jp, sizeof(jp));
	if (f->remove)
		f->remove(f, jp);	/* a stale journal of the same merge */
	rc = f->open(f, jp, VHD_IO_CREATE | VHD_IO_NOLOCK, &io);
	if (rc < 0) {
		free(text);
		return path_error(jp, rc, "cannot write the merge journal: %s", vhd_strerror(rc));
	}
	rc = io_write_full(io, text, len, 0);
	if (rc == 0)
		rc = io->ops->flush(io);
	io_close(io);
	free(text);
	return rc < 0 ? path_error(jp, rc, "cannot write the merge journal: %s",
				   vhd_strerror(rc)) : 0;
}

static int read_journal(const char *jp, struct merge_plan *p,
			const struct vhd_open_opts *o)
{
	const struct vhd_io_factory *f = factory(o);
	struct vhd_io *io;
	uint64_t size;
	char *text, *line, *save = NULL;
	int rc = f->open(f, jp, VHD_IO_NOLOCK, &io);

	if (rc < 0)
		return path_error(jp, rc, "no merge journal here: %s", vhd_strerror(rc));
	rc = io_size(io, &size);
	if (rc == 0 && (size == 0 || size > (1u << 20)))
		rc = VHD_E_CORRUPT;
	text = rc == 0 ? malloc(size + 1) : NULL;
	if (rc == 0 && !text)
		rc = -ENOMEM;
	if (rc == 0)
		rc = io_read_full(io, text, size, 0);
	io_close(io);
	if (rc < 0) {
		free(text);
		return path_error(jp, rc, "cannot read the merge journal: %s", vhd_strerror(rc));
	}
	text[size] = '\0';
	memset(p, 0, sizeof(*p));
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strcmp(line, "vhdkit-merge 1"))
			continue;
		if (!strncmp(line, "target ", 7) && !p->target)
			p->target = strdup(line + 7);
		else if (!strncmp(line, "layer ", 6))
			rc = plan_add(p, line + 6);
		else
			rc = VHD_E_CORRUPT;
		if (rc < 0)
			break;
	}
	free(text);
	if (rc == 0 && (!p->target || !p->nlayers))
		rc = VHD_E_CORRUPT;
	if (rc < 0) {
		plan_free(p);
		return path_error(jp, rc, "the merge journal is damaged");
	}
	return 0;
}

/* Copy the segment into the target, bottom layer first. */
static int run_copy(const struct merge_plan *p, const struct vhd_open_opts *o,
		    int (*progress)(void *, uint64_t, uint64_t), void *opaque)
{
	struct vhd_open_opts lo = o ? *o : (struct vhd_open_opts){ 0 };
	struct layer_copy c = { .progress = progress, .opaque = opaque };
	int rc;

	lo.format = VHD_FMT_AUTO;
	rc = vhd_open(p->target, VHD_OPEN_RDWR, &lo, &c.target);
	if (rc < 0)
		return rc;
	c.buf = malloc(LAYER_COPY_CHUNK);
	if (!c.buf) {
		vhd_close(c.target);
		return -ENOMEM;
	}
	for (int i = p->nlayers - 1; i >= 0 && rc == 0; i--) {
		struct vhd_info info;
		rc = vhd_open(p->layers[i], VHD_OPEN_NOPARENT, &lo, &c.layer);
		if (rc < 0)
			break;
		vhd_get_info(c.layer, &info);
		c.layer_has_parent = info.type == VHD_TYPE_DIFF;
		/* progress: allocated bytes of the layers not yet copied */
		c.total = c.done + (uint64_t)info.blocks_allocated * info.block_size;
		if (c.layer->size != c.target->size)
			rc = disk_error(c.layer, -EINVAL,
					"size %llu differs from the merge target's %llu",
					(unsigned long long)c.layer->size,
					(unsigned long long)c.target->size);
		else
			rc = layer_copy(&c);
		if (rc < 0 && !vhd_errmsg(NULL)[0])
			disk_error(c.layer, rc, "merge: %s", vhd_strerror(rc));
		vhd_close(c.layer);
	}
	free(c.buf);
	if (rc == 0)
		rc = vhd_flush(c.target);
	if (rc == 0)
		return vhd_close(c.target);
	vhd_close(c.target);
	return rc;
}

static int finish(struct merge_plan *p, const struct vhd_open_opts *o,
		  int (*progress)(void *, uint64_t, uint64_t), void *opaque)
{
	const struct vhd_io_factory *f = factory(o);
	char jp[PATH_MAX + 32];
	int rc = run_copy(p, o, progress, opaque);

	if (rc < 0)
		return rc;
	journal_path(p->target, jp, sizeof(jp));
	if (f->remove)
		f->remove(f, jp);
	return 0;
}

/* Run the journaled plan to the end, then hand its layers (now stale) to
 * the caller and free the plan. */
static int finish_plan(struct merge_plan *p, const struct vhd_open_opts *o,
		       int (*progress)(void *, uint64_t, uint64_t), void *opaque,
		       char ***stale, int *nstale)
{
	int rc = finish(p, o, progress, opaque);

	if (rc == 0) {
		*stale = p->layers;
		*nstale = p->nlayers;
		p->layers = NULL;
		p->nlayers = 0;
	}
	plan_free(p);
	return rc;
}

int vhd_merge(const char *child, const char *into, const struct vhd_open_opts *o,
	      int (*progress)(void *, uint64_t, uint64_t), void *opaque,
	      char ***stale, int *nstale)
{
	struct vhd_open_opts lo = o ? *o : (struct vhd_open_opts){ 0 };
	struct merge_plan p = { 0 };
	char want[PATH_MAX], have[PATH_MAX];
	vhd_disk *chain, *l;
	int rc, found = 0;

	*stale = NULL;
	*nstale = 0;
	lo.format = VHD_FMT_AUTO;
	rc = vhd_open(child, 0, &lo, &chain);
	if (rc < 0)
		return rc;
	if (!chain->parent) {
		vhd_close(chain);
		return path_error(child, -EINVAL, "not a differencing image: nothing to merge into");
	}
	if (into && !realpath(into, want))
		snprintf(want, sizeof(want), "%s", into);
	for (l = chain; l->parent && rc == 0; l = l->parent) {
		rc = plan_add(&p, l->path);
		if (!into)
			break;
		if (!realpath(l->parent_path, have))
			snprintf(have, sizeof(have), "%s", l->parent_path);
		if (!strcmp(have, want))
			break;
	}
	if (rc == 0 && l->parent) {
		p.target = strdup(l->parent_path);
		found = p.target != NULL;
	}
	vhd_close(chain);
	if (rc < 0 || !found) {
		plan_free(&p);
		return rc < 0 ? rc : path_error(child, -EINVAL, "%s is not an ancestor of this image",
					       into ? into : "(parent)");
	}
	rc = write_journal(&p, o);
	if (rc < 0) {
		plan_free(&p);
		return rc;
	}
	return finish_plan(&p, o, progress, opaque, stale, nstale);
}

int vhd_merge_resume(const char *target, const struct vhd_open_opts *o,
		     int (*progress)(void *, uint64_t, uint64_t), void *opaque,
		     char ***stale, int *nstale)
{
	struct merge_plan p;
	char jp[PATH_MAX + 32];
	int rc;

	*stale = NULL;
	*nstale = 0;
	journal_path(target, jp, sizeof(jp));
	rc = read_journal(jp, &p, o);
	if (rc < 0)
		return rc;
	return finish_plan(&p, o, progress, opaque, stale, nstale);
}
