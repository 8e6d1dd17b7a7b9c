/*
 * vhd_reparent.c -- point a differencing VHD at another parent, crash-safely.
 *
 * What changes: the dynamic header (parent UUID, timestamp, name, the
 * locator table) and the locator data it points at.  The header is 1024
 * bytes, two sectors, so its write can tear; locator data lives elsewhere.
 * Order, each step synced:
 *   1. trim the reservation (footer right after the data);
 *   2. the footer goes further out, past room for the new locator data
 *      (I1: the EOF footer is always valid);
 *   3. the new locator data goes into that unreferenced room;
 *   4. the journal CHILD.vhdkit-reparent gets the new header;
 *   5. the header is written in place;
 *   6. the journal is removed.
 * Until 5 the old header, its old locators (never overwritten) and the old
 * parent hold.  A crash during 5 can leave one sector of each header: the
 * header checksum covers both sectors, so the mix fails it and a strict
 * open refuses the image ("dynamic header checksum mismatch"); the journal
 * is durable by then, and vhd_repair() finishes the reparent from it (it
 * does so whenever an intact journal names the header, even in the
 * unlikely case that a torn header happens to sum right).  A torn journal
 * (a crash during 4) fails its own header checksum and means the image was
 * not touched.  The old locator data stays as unreferenced space.
 *
 * Journal layout (1056 bytes): 0 "vhdkit-reparent\n", 16 header offset
 * (u64 BE), 24 zero, 32 the new 1024-byte header.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "endian.h"
#include "io.h"
#include "paths.h"
#include "vhd_image.h"

#define JOURNAL_MAGIC "vhdkit-reparent\n"
#define JOURNAL_SIZE (32 + VHD_HEADER_SIZE)

static void journal_path(const char *child, char *out, size_t len)
{
	snprintf(out, len, "%s%s", child, VHD_REPARENT_JOURNAL);
}

static int journal_write(const struct vhd_io_factory *f, const char *child,
			 uint64_t off, const uint8_t hdr[VHD_HEADER_SIZE])
{
	char jp[PATH_MAX + 32];
	uint8_t buf[JOURNAL_SIZE] = { 0 };
	struct vhd_io *io;
	int rc;

	journal_path(child, jp, sizeof(jp));
	memcpy(buf, JOURNAL_MAGIC, 16);
	put_be64(buf + 16, off);
	memcpy(buf + 32, hdr, VHD_HEADER_SIZE);
	if (f->remove)
		f->remove(f, jp);	/* a stale journal of this image */
	rc = f->open(f, jp, VHD_IO_CREATE | VHD_IO_NOLOCK, &io);
	if (rc < 0)
		return path_error(jp, rc, "cannot write the reparent journal: %s",
				  vhd_strerror(rc));
	rc = io_write_full(io, buf, sizeof(buf), 0);
	if (rc == 0)
		rc = io->ops->flush(io);
	io_close(io);
	return rc < 0 ? path_error(jp, rc, "cannot write the reparent journal: %s",
				   vhd_strerror(rc)) : 0;
}

int vhd_reparent_journal_read(const struct vhd_io_factory *f, const char *child,
			      uint64_t *off, uint8_t hdr[VHD_HEADER_SIZE])
{
	char jp[PATH_MAX + 32];
	uint8_t buf[JOURNAL_SIZE];
	struct vhd_header h;
	struct vhd_io *io;
	uint32_t comp;
	int rc;

	journal_path(child, jp, sizeof(jp));
	rc = f->open(f, jp, VHD_IO_NOLOCK, &io);
	if (rc < 0)
		return rc == -ENOENT ? -ENOENT : rc;
	rc = io_read_full(io, buf, sizeof(buf), 0);
	io_close(io);
	if (rc < 0 || memcmp(buf, JOURNAL_MAGIC, 16) ||
	    vhd_header_decode(buf + 32, &h, &comp) != 0)
		return VHD_E_CORRUPT;
	*off = get_be64(buf + 16);
	memcpy(hdr, buf + 32, VHD_HEADER_SIZE);
	return 0;
}

void vhd_reparent_journal_remove(const struct vhd_io_factory *f, const char *child)
{
	char jp[PATH_MAX + 32];

	journal_path(child, jp, sizeof(jp));
	if (f->remove)
		f->remove(f, jp);
}

static int sync_file(vhd_disk *d)
{
	int rc = d->io->ops->flush(d->io);

	return rc < 0 ? disk_error(d, rc, "sync: %s", vhd_strerror(rc)) : 0;
}

struct new_link {
	char abs[PATH_MAX], wrel[PATH_MAX];
	uint8_t *data[2];	/* W2ru, W2ku */
	uint32_t len[2], space[2];
};

/* Locator data and the header that points at it (placed at @pos). */
static int build_link(vhd_disk *d, const char *parent, const struct vhd_info *pi,
		      struct new_link *l, struct vhd_header *h)
{
	struct stat st;
	int rc = path_locator_forms(d->path, parent, l->abs, l->wrel, sizeof(l->abs));

	if (rc == 0)
		rc = vhd_locator_data(l->wrel, &l->data[0], &l->len[0]);
	if (rc == 0)
		rc = vhd_locator_data(l->abs, &l->data[1], &l->len[1]);
	if (rc == 0)
		rc = vhd_parent_name(l->abs, h->parent_name);
	if (rc < 0)
		return disk_error(d, rc, "the parent path cannot be stored: %s",
				  vhd_strerror(rc));
	memcpy(h->parent_uuid, pi->uuid, 16);
	h->parent_timestamp = 0;
	if (stat(parent, &st) == 0 && st.st_mtime > VHD_EPOCH_UNIX)
		h->parent_timestamp = (uint32_t)(st.st_mtime - VHD_EPOCH_UNIX);
	memset(h->loc, 0, sizeof(h->loc));
	for (int i = 0; i < 2; i++) {
		l->space[i] = (l->len[i] + VHD_SECTOR - 1) & ~(VHD_SECTOR - 1);
		h->loc[i].code = i == 0 ? VHD_PLAT_W2RU : VHD_PLAT_W2KU;
		h->loc[i].data_space = l->space[i];	/* bytes, as Windows */
		h->loc[i].data_length = l->len[i];
	}
	return 0;
}

/* Steps 2 and 3: the footer further out, then the locator data. */
static int place_locators(vhd_disk *d, struct new_link *l, struct vhd_header *h)
{
	struct vhd_image *v = IMG(d);
	uint64_t pos = v->next_block, end = pos + l->space[0] + l->space[1];
	uint8_t fbuf[VHD_FOOTER_SIZE];
	int rc;

	vhd_footer_encode(&v->footer, fbuf);
	rc = io_write_full(d->io, fbuf, sizeof(fbuf), end);
	if (rc == 0)
		rc = sync_file(d);
	for (int i = 0; i < 2 && rc == 0; i++) {
		h->loc[i].data_offset = pos;
		rc = io_write_full(d->io, l->data[i], l->len[i], pos);
		pos += l->space[i];
	}
	if (rc == 0)
		rc = sync_file(d);
	if (rc < 0)
		return disk_error(d, rc, "writing the parent locators: %s", vhd_strerror(rc));
	v->footer_pos = end;
	v->next_block = end;
	if (end > v->meta_end)
		v->meta_end = end;
	return 0;
}

int vhd_image_reparent(vhd_disk *d, const char *parent, const struct vhd_info *pi,
		       const struct vhd_io_factory *f)
{
	struct vhd_image *v = IMG(d);
	struct vhd_header h = v->header;
	struct new_link l = { .data = { NULL, NULL } };
	uint8_t hbuf[VHD_HEADER_SIZE], jhdr[VHD_HEADER_SIZE];
	uint64_t joff;
	int rc;

	if (vhd_reparent_journal_read(f, d->path, &joff, jhdr) == 0)
		return disk_error(d, -EBUSY,
				  "an interrupted reparent left %s%s: run vhdtool repair first",
				  d->path, VHD_REPARENT_JOURNAL);
	if (v->footer_len != VHD_FOOTER_SIZE)
		return disk_error(d, VHD_E_UNSUPPORTED,
				  "reparenting needs a 512-byte footer at the end of the file");
	rc = build_link(d, parent, pi, &l, &h);
	if (rc == 0)
		rc = vhd_meta_flush(d);
	if (rc == 0)
		rc = vhd_trim_reserve(d);
	if (rc == 0)
		rc = place_locators(d, &l, &h);
	if (rc < 0)
		goto out;
	vhd_header_encode(&h, hbuf);
	rc = journal_write(f, d->path, v->footer.data_offset, hbuf);
	if (rc < 0) {
		disk_error(d, rc, "%s", vhd_errmsg(NULL));
		goto out;
	}
	rc = io_write_full(d->io, hbuf, sizeof(hbuf), v->footer.data_offset);
	if (rc == 0)
		rc = sync_file(d);
	if (rc < 0) {
		rc = disk_error(d, rc, "writing the header: %s (vhdtool repair finishes it)",
				vhd_strerror(rc));
		goto out;
	}
	vhd_reparent_journal_remove(f, d->path);
	v->header = h;
	free(v->parent_name);
	v->parent_name = strdup(l.abs);
out:
	free(l.data[0]);
	free(l.data[1]);
	return rc;
}
