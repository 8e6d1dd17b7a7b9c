/*
 * vhd_repair.c -- repair a dynamic or differencing VHD (repair.c runs it
 * twice: plan, then apply).  The tolerant open already worked around the
 * damage in memory: the footer came from the backup copy, BAT entries past
 * EOF or overlapping were dropped; here the differences between memory and
 * the file become the plan.
 *
 * Order of the changes, each synced before the next:
 *   1. an interrupted reparent: the new header from its journal (the
 *      journal is removed after); else a header with a stale checksum is
 *      rewritten.  The header is what says where the BAT is;
 *   2. bad BAT entries cleared (BAT sectors written by a flush: each old or
 *      new after a crash, and old was already refused);
 *   3. a missing EOF footer written past the end of the file (nothing there
 *      can be referenced), from the backup copy;
 *   4. the backup copy at offset 0 rewritten from the EOF footer;
 *   5. unreferenced space before the footer given back (vhd_trim_reserve:
 *      footer at the end of the last structure, sync, truncate).
 * Each step leaves the image no worse than before it: a crash between
 * steps leaves some repairs done and the rest still to do.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "io.h"
#include "vhd_image.h"

struct fixes {
	int journal;			/* 1 finish, -1 remove a torn one */
	uint8_t jhdr[VHD_HEADER_SIZE];
	bool header_sum;
	uint32_t *clear;		/* BAT entries to clear */
	uint32_t nclear;
	bool eof_footer, backup_footer;
	uint64_t footer_at;		/* where the EOF footer is (after 3) */
	uint64_t trim_to;		/* 0: nothing to give back */
};

static int sync_file(vhd_disk *d)
{
	int rc = d->io->ops->flush(d->io);

	return rc < 0 ? disk_error(d, rc, "sync: %s", vhd_strerror(rc)) : 0;
}

/* Bytes of the disk block @i covers. */
static uint64_t block_bytes(vhd_disk *d, uint32_t i)
{
	struct vhd_image *v = IMG(d);
	uint64_t start = (uint64_t)i << v->block_shift;

	if (start >= d->size)
		return 0;
	return d->size - start < v->block_size ? d->size - start : v->block_size;
}

static void plan_header(vhd_disk *d, struct repair_ctx *c, struct fixes *fx)
{
	struct vhd_image *v = IMG(d);
	uint8_t raw[VHD_HEADER_SIZE];
	struct vhd_header h;
	uint64_t off;
	uint32_t comp;
	int rc = vhd_reparent_journal_read(c->io, d->path, &off, fx->jhdr);

	if (rc == 0 && off == v->footer.data_offset) {
		fx->journal = 1;
		repair_action(c, "finish the interrupted reparent: write the dynamic header from %s%s",
			      d->path, VHD_REPARENT_JOURNAL);
		return;
	}
	if (rc != -ENOENT) {
		fx->journal = -1;
		repair_action(c, "remove %s%s, the journal of a reparent that never wrote the header",
			      d->path, VHD_REPARENT_JOURNAL);
	}
	if (io_read_full(d->io, raw, sizeof(raw), v->footer.data_offset) == 0 &&
	    vhd_header_decode(raw, &h, &comp) == VHD_E_CHECKSUM) {
		fx->header_sum = true;
		repair_action(c, "rewrite the dynamic header with its checksum (stored 0x%08x, computed 0x%08x)",
			      h.checksum, comp);
	}
}

static int plan_bat(vhd_disk *d, struct repair_ctx *c, struct fixes *fx, uint64_t fsize)
{
	struct vhd_image *v = IMG(d);
	uint64_t bytes = vhd_bat_size(v->max_entries);
	uint8_t *raw = malloc(bytes);
	int rc;

	fx->clear = malloc((size_t)v->max_entries * sizeof(uint32_t));
	if (!raw || !fx->clear) {
		free(raw);
		return disk_error(d, -ENOMEM, "out of memory");
	}
	rc = io_read_full(d->io, raw, bytes, v->header.table_offset);
	for (uint32_t i = 0; rc == 0 && i < v->max_entries; i++) {
		uint32_t e = get_be32(raw + 4 * (size_t)i);
		uint64_t lost = block_bytes(d, i), from = (uint64_t)i << v->block_shift;
		if (e == VHD_BAT_UNUSED)
			continue;
		if (v->bat[i] == VHD_BAT_UNUSED) {	/* dropped by the open */
			bool past = (uint64_t)e * VHD_SECTOR + v->bitmap_size + lost >
				    fsize - v->footer_len;
			fx->clear[fx->nclear++] = i;
			c->res->lost_blocks++;
			repair_action(c, "clear BAT entry %u (sector %u, %s): disk bytes %llu-%llu are lost and read as %s",
				      i, e, past ? "past the end of the file"
						 : "overlapping metadata or another block",
				      (unsigned long long)from,
				      (unsigned long long)(from + lost - 1),
				      v->type == VHD_TYPE_DIFF ? "the parent's data" : "zeros");
		} else if (i >= v->nblocks) {
			fx->clear[fx->nclear++] = i;
			repair_action(c, "clear BAT entry %u: it lies past the end of the disk (no data is lost)", i);
		}
	}
	free(raw);
	return rc < 0 ? disk_error(d, rc, "reading the BAT: %s", vhd_strerror(rc)) : 0;
}

static bool cleared(const struct fixes *fx, uint32_t i)
{
	for (uint32_t k = 0; k < fx->nclear; k++)
		if (fx->clear[k] == i)
			return true;
	return false;
}

/* End of everything the repaired image references. */
static uint64_t used_end(vhd_disk *d, const struct fixes *fx)
{
	struct vhd_image *v = IMG(d);
	struct vhd_header h = v->header;
	uint64_t end = v->header.table_offset + vhd_bat_size(v->max_entries);
	uint32_t comp;

	if (fx->journal == 1)
		vhd_header_decode(fx->jhdr, &h, &comp);
	if (v->footer.data_offset + VHD_HEADER_SIZE > end)
		end = v->footer.data_offset + VHD_HEADER_SIZE;
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++)
		if (h.loc[i].code != VHD_PLAT_NONE &&
		    h.loc[i].data_offset + vhd_locator_space(&h.loc[i]) > end)
			end = h.loc[i].data_offset + vhd_locator_space(&h.loc[i]);
	for (uint32_t i = 0; i < v->max_entries; i++) {
		uint64_t e = v->bat[i];
		if (e != VHD_BAT_UNUSED && !cleared(fx, i) &&
		    e * VHD_SECTOR + block_total(v) > end)
			end = e * VHD_SECTOR + block_total(v);
	}
	return (end + VHD_SECTOR - 1) & ~(uint64_t)(VHD_SECTOR - 1);
}

static void plan_footers(vhd_disk *d, struct repair_ctx *c, struct fixes *fx,
			 uint64_t fsize)
{
	struct vhd_image *v = IMG(d);
	uint8_t want[VHD_FOOTER_SIZE], have[VHD_FOOTER_SIZE];
	uint64_t end = used_end(d, fx);

	if (v->footer_len == 0) {
		fx->eof_footer = true;
		fx->footer_at = (fsize + VHD_SECTOR - 1) & ~(uint64_t)(VHD_SECTOR - 1);
		repair_action(c, "write the footer at the end of the file (offset %llu) from the backup copy at offset 0",
			      (unsigned long long)fx->footer_at);
	} else {
		fx->footer_at = v->footer_pos;
		vhd_footer_encode(&v->footer, want);
		if (io_read_full(d->io, have, sizeof(have), 0) < 0 ||
		    memcmp(want, have, sizeof(want))) {
			fx->backup_footer = true;
			repair_action(c, "rewrite the backup footer at offset 0 from the footer at the end of the file");
		}
	}
	if (v->footer_len != 511 && end < fx->footer_at) {
		fx->trim_to = end;
		repair_action(c, "give back %llu unreferenced bytes before the footer (the file is truncated to %llu bytes)",
			      (unsigned long long)(fx->footer_at - end),
			      (unsigned long long)(end + VHD_FOOTER_SIZE));
	}
}

static int put(vhd_disk *d, const void *buf, size_t len, uint64_t off, const char *what)
{
	int rc = io_write_full(d->io, buf, len, off);

	if (rc == 0)
		rc = sync_file(d);
	return rc < 0 ? disk_error(d, rc, "writing %s: %s", what, vhd_strerror(rc)) : 0;
}

static int apply(vhd_disk *d, struct repair_ctx *c, struct fixes *fx)
{
	struct vhd_image *v = IMG(d);
	uint8_t buf[VHD_HEADER_SIZE];
	uint32_t comp;
	int rc = 0;

	if (fx->journal == 1) {
		rc = put(d, fx->jhdr, VHD_HEADER_SIZE, v->footer.data_offset, "the header");
		if (rc == 0)
			vhd_header_decode(fx->jhdr, &v->header, &comp);
	} else if (fx->header_sum) {
		vhd_header_encode(&v->header, buf);
		rc = put(d, buf, VHD_HEADER_SIZE, v->footer.data_offset, "the header");
	}
	if (rc == 0 && fx->journal)
		vhd_reparent_journal_remove(c->io, d->path);
	for (uint32_t k = 0; rc == 0 && k < fx->nclear; k++)
		vhd_remap_block(d, fx->clear[k], VHD_BAT_UNUSED);
	if (rc == 0 && fx->nclear)
		rc = vhd_meta_flush(d);
	if (rc == 0 && fx->eof_footer) {
		vhd_footer_encode(&v->footer, buf);
		rc = put(d, buf, VHD_FOOTER_SIZE, fx->footer_at, "the footer");
		v->footer_len = VHD_FOOTER_SIZE;
		v->footer_pos = fx->footer_at;
	}
	if (rc == 0 && fx->backup_footer) {
		vhd_footer_encode(&v->footer, buf);
		rc = put(d, buf, VHD_FOOTER_SIZE, 0, "the backup footer");
	}
	if (rc == 0 && fx->trim_to) {
		v->next_block = fx->trim_to;
		rc = vhd_trim_reserve(d);
	}
	return rc;
}

int vhd_image_repair(vhd_disk *d, struct repair_ctx *c)
{
	struct fixes fx = { 0 };
	uint64_t fsize;
	int rc = io_size(d->io, &fsize);

	if (rc < 0)
		return disk_error(d, rc, "cannot get size: %s", vhd_strerror(rc));
	plan_header(d, c, &fx);
	rc = plan_bat(d, c, &fx, fsize);
	if (rc == 0)
		plan_footers(d, c, &fx, fsize);
	if (rc == 0 && c->apply)
		rc = apply(d, c, &fx);
	free(fx.clear);
	return rc;
}
