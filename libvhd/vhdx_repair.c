/*
 * vhdx_repair.c -- repair a VHDX (repair.c runs it twice: plan, then
 * apply).  Order, each step synced before the next:
 *   1. an invalid header: a new header, the current one with sequence + 1,
 *      goes into the invalid slot (the valid one stays current until the
 *      new one is durable: a torn write fails its CRC);
 *   2. a damaged region table from the intact copy (the intact copy is what
 *      readers use until the other is whole again);
 *   3. BAT entries pointing outside the data area, or at a block that
 *      overlaps an earlier one in the file, cleared through the log in a
 *      metadata session (DataWriteGuid kept).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "io.h"
#include "vhdx_image.h"

struct xfixes {
	bool header;
	int region_from;	/* 0 none, 1 or 2: the intact copy */
	uint64_t *clear;
	uint64_t nclear;
};

static void plan_header(vhd_disk *d, struct repair_ctx *c, struct xfixes *fx)
{
	struct vhdx_image *x = XIMG(d);
	uint8_t buf[VHDX_HEADER_SIZE];
	struct vhdx_header h;
	int other = !x->hdr_slot;

	if (io_read_full(d->io, buf, sizeof(buf),
			 other ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF) == 0 &&
	    vhdx_header_decode(buf, &h) == 0 && h.version == 1 && h.log_version == 0)
		return;
	fx->header = true;
	repair_action(c, "rewrite header %d from header %d", other + 1, x->hdr_slot + 1);
}

static int read_region(vhd_disk *d, int slot, uint8_t *buf, struct vhdx_region_table *t)
{
	int rc = io_read_full(d->io, buf, VHDX_REGION_SIZE,
			      slot == 1 ? VHDX_REGION1_OFF : VHDX_REGION2_OFF);

	return rc < 0 ? rc : vhdx_region_decode(buf, t);
}

static int plan_regions(vhd_disk *d, struct repair_ctx *c, struct xfixes *fx)
{
	uint8_t *b1 = malloc(VHDX_REGION_SIZE), *b2 = malloc(VHDX_REGION_SIZE);
	struct vhdx_region_table *t1 = malloc(sizeof(*t1)), *t2 = malloc(sizeof(*t2));
	int r1, r2, rc = 0;

	if (!b1 || !b2 || !t1 || !t2) {
		rc = disk_error(d, -ENOMEM, "out of memory");
		goto out;
	}
	r1 = read_region(d, 1, b1, t1);
	r2 = read_region(d, 2, b2, t2);
	if (r1 < 0 && r2 == 0)
		fx->region_from = 2;
	else if (r1 == 0 && (r2 < 0 || memcmp(b1, b2, VHDX_REGION_SIZE)))
		fx->region_from = 1;
	if (fx->region_from)
		repair_action(c, "rewrite region table %d from its intact copy %d",
			      3 - fx->region_from, fx->region_from);
out:
	free(b1);
	free(b2);
	free(t1);
	free(t2);
	return rc;
}

static int plan_bat(vhd_disk *d, struct repair_ctx *c, struct xfixes *fx)
{
	struct vhdx_image *x = XIMG(d);
	uint8_t *raw = malloc(x->nentries * 8);
	uint64_t fsize;
	int rc;

	fx->clear = malloc((x->nentries + 1) * sizeof(uint64_t));
	if (!raw || !fx->clear) {
		free(raw);
		return disk_error(d, -ENOMEM, "out of memory");
	}
	rc = io_size(d->io, &fsize);
	if (rc == 0)
		rc = io_read_full(d->io, raw, x->nentries * 8, x->bat_off);
	for (uint64_t i = 0; rc == 0 && i < x->nentries; i++) {
		uint64_t e = get_le64(raw + 8 * i);
		bool is_sb = (i + 1) % (x->chunk_ratio + 1) == 0;
		uint64_t b = i - i / (x->chunk_ratio + 1);
		const char *why;
		if (e == x->bat[i])
			continue;
		why = vhdx_entry_outside_file(d, i, e, fsize) ? "outside the data area"
							      : "overlapping another block";
		fx->clear[fx->nclear++] = i;
		if (is_sb) {
			repair_action(c, "clear BAT entry %llu (a sector bitmap block at %llu, %s): the sectors of chunk %llu read as %s",
				      (unsigned long long)i, (unsigned long long)vhdx_bat_offset(e),
				      why, (unsigned long long)(i / (x->chunk_ratio + 1)),
				      "absent");
			continue;
		}
		c->res->lost_blocks++;
		repair_action(c, "clear BAT entry %llu (block at %llu, %s): disk bytes %llu-%llu are lost and read as %s",
			      (unsigned long long)i, (unsigned long long)vhdx_bat_offset(e), why,
			      (unsigned long long)(b << x->block_shift),
			      (unsigned long long)(((b + 1) << x->block_shift) - 1),
			      x->has_parent ? "the parent's data" : "zeros");
	}
	free(raw);
	return rc < 0 ? disk_error(d, rc, "reading the BAT: %s", vhd_strerror(rc)) : 0;
}

static int apply(vhd_disk *d, struct xfixes *fx)
{
	struct vhdx_image *x = XIMG(d);
	uint8_t *buf;
	int rc = 0;

	if (fx->header)
		rc = vhdx_write_header(d, NULL, 0);	/* into the other slot */
	if (rc == 0 && fx->region_from) {
		buf = malloc(VHDX_REGION_SIZE);
		rc = buf ? io_read_full(d->io, buf, VHDX_REGION_SIZE, fx->region_from == 1 ?
					VHDX_REGION1_OFF : VHDX_REGION2_OFF) : -ENOMEM;
		if (rc == 0)
			rc = io_write_full(d->io, buf, VHDX_REGION_SIZE, fx->region_from == 1 ?
					   VHDX_REGION2_OFF : VHDX_REGION1_OFF);
		if (rc == 0)
			rc = d->io->ops->flush(d->io);
		free(buf);
		if (rc < 0)
			return disk_error(d, rc, "writing a region table: %s", vhd_strerror(rc));
	}
	if (rc == 0 && fx->nclear)
		rc = vhdx_begin_meta_session(d);
	for (uint64_t k = 0; rc == 0 && k < fx->nclear; k++)
		rc = vhdx_set_entry(d, fx->clear[k], x->bat[fx->clear[k]]);
	if (rc == 0 && fx->nclear)
		rc = vhdx_meta_flush(d);
	return rc;
}

int vhdx_repair(vhd_disk *d, struct repair_ctx *c)
{
	struct xfixes fx = { 0 };
	int rc;

	plan_header(d, c, &fx);
	rc = plan_regions(d, c, &fx);
	if (rc == 0)
		rc = plan_bat(d, c, &fx);
	if (rc == 0 && c->apply)
		rc = apply(d, &fx);
	free(fx.clear);
	return rc;
}
