/*
 * vhdx_reparent.c -- point a differencing VHDX at another parent.
 *
 * The parent locator metadata item is rebuilt (parent_linkage = the new
 * parent's DataWriteGuid, relative_path, absolute_win32_path) and written,
 * with the metadata table entry that gives its offset and length, through
 * the log as one entry (X2): a crash leaves the old locator or the new one,
 * never a mix.  The item stays where it was when it fits there, else it
 * goes after the last item of the metadata region.  The session is a
 * metadata session: DataWriteGuid is kept (the content does not change),
 * so children of this image stay linked.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "io.h"
#include "paths.h"
#include "vhdx_image.h"

#define ITEM_MAX (64u * 1024u)

struct meta_plan {
	struct vhdx_meta_table t;
	int loc;		/* index of the parent locator entry */
	uint32_t off, len;	/* where the new item goes */
};

/* Find the locator entry and a place for @len bytes. */
static int plan_item(vhd_disk *d, struct meta_plan *m, uint32_t len)
{
	struct vhdx_image *x = XIMG(d);
	uint32_t room_end = x->meta_len, end = VHDX_META_TABLE_SIZE;

	m->loc = -1;
	for (int i = 0; i < m->t.count; i++)
		if (vhdx_guid_eq(&m->t.e[i].id, &VHDX_GUID_PARENT_LOCATOR))
			m->loc = i;
	if (m->loc < 0)
		return disk_error(d, VHD_E_CORRUPT, "the metadata has no parent locator");
	for (int i = 0; i < m->t.count; i++) {
		const struct vhdx_meta_entry *e = &m->t.e[i];
		if (e->offset + e->length > end)
			end = e->offset + e->length;
		if (i != m->loc && e->offset > m->t.e[m->loc].offset && e->offset < room_end)
			room_end = e->offset;
	}
	m->len = len;
	if (m->t.e[m->loc].offset + len <= room_end) {
		m->off = m->t.e[m->loc].offset;
		return 0;
	}
	m->off = (end + 7) & ~7u;
	if ((uint64_t)m->off + len > x->meta_len)
		return disk_error(d, -ENOSPC,
				  "the metadata region has no room for a %u-byte parent locator", len);
	return 0;
}

/* Queue the pages of [off, off+len) of the file with @bytes patched in. */
static int queue_range(vhd_disk *d, uint64_t off, const uint8_t *bytes, uint32_t len)
{
	uint64_t first = off / VHDX_PAGE * VHDX_PAGE;
	uint8_t *page = malloc(VHDX_PAGE);
	int rc = page ? 0 : -ENOMEM;

	for (uint64_t p = first; rc == 0 && p < off + len; p += VHDX_PAGE) {
		uint64_t a = p > off ? p : off;
		uint64_t b = p + VHDX_PAGE < off + len ? p + VHDX_PAGE : off + len;
		rc = io_read_full(d->io, page, VHDX_PAGE, p);
		if (rc < 0)
			break;
		memcpy(page + (a - p), bytes + (a - off), b - a);
		rc = vhdx_queue_meta_page(d, p, page);
	}
	free(page);
	return rc;
}

static int replace_string(char **slot, const char *value)
{
	char *s = value ? strdup(value) : NULL;

	if (value && !s)
		return -ENOMEM;
	free(*slot);
	*slot = s;
	return 0;
}

int vhdx_reparent(vhd_disk *d, const char *parent, const struct vhd_info *pi,
		  const struct vhd_io_factory *f)
{
	struct vhdx_image *x = XIMG(d);
	struct meta_plan *m = malloc(sizeof(*m));
	uint8_t *item = calloc(1, ITEM_MAX), *tbuf = malloc(VHDX_META_TABLE_SIZE);
	char abs[PATH_MAX], wrel[PATH_MAX], link[39];
	vhdx_guid linkage;
	uint8_t ent[8];
	uint32_t len;
	int rc = -ENOMEM;

	if (!m || !item || !tbuf)
		goto out;
	rc = path_locator_forms(d->path, parent, abs, wrel, sizeof(abs));
	if (rc < 0) {
		rc = disk_error(d, rc, "the parent path cannot be stored: %s", vhd_strerror(rc));
		goto out;
	}
	vhdx_guid_from_rfc(pi->data_write_guid, &linkage);
	len = vhdx_build_locator(&linkage, wrel, abs, item);
	rc = io_read_full(d->io, tbuf, VHDX_META_TABLE_SIZE, x->meta_off);
	if (rc == 0)
		rc = vhdx_meta_decode(tbuf, &m->t);
	if (rc < 0) {
		rc = disk_error(d, rc, "reading the metadata table: %s", vhd_strerror(rc));
		goto out;
	}
	rc = plan_item(d, m, len);
	if (rc == 0)
		rc = vhdx_begin_meta_session(d);
	if (rc < 0)
		goto out;
	/* The item, then the table entry's offset and length: one flush, so
	 * one log entry holds both. */
	put_le32(ent, m->off);
	put_le32(ent + 4, m->len);
	rc = queue_range(d, x->meta_off + m->off, item, len);
	if (rc == 0)
		rc = queue_range(d, x->meta_off + 32 + 32 * (uint64_t)m->loc + 16, ent, 8);
	if (rc == 0)
		rc = vhdx_meta_flush(d);
	if (rc < 0) {
		rc = disk_error(d, rc, "writing the parent locator: %s", vhd_strerror(rc));
		goto out;
	}
	vhdx_guid_format(&linkage, link);
	rc = replace_string(&x->parent_linkage, link);
	if (rc == 0)
		rc = replace_string(&x->parent_linkage2, NULL);
	if (rc == 0)
		rc = replace_string(&x->relative_path, wrel);
	if (rc == 0)
		rc = replace_string(&x->absolute_path, abs);
	if (rc == 0)
		rc = replace_string(&x->volume_path, NULL);
out:
	free(m);
	free(item);
	free(tbuf);
	return rc;
}
