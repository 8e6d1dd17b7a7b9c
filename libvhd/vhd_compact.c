/*
 * vhd_compact.c -- compact a dynamic or differencing VHD (compact.c has the
 * contract and the rule for dropping blocks).
 *
 *   0. flush; trim the reservation (the footer right after the data);
 *   1. drop: BAT entries of blocks that read the same without them are
 *      cleared, written and synced (a crash leaves each BAT sector old or
 *      new: the block is there, or reads the same without it);
 *   2. move, in rounds: the highest blocks are copied (bitmap and data) into
 *      the lowest holes that fit -- space no durable BAT entry references --
 *      then synced; then their BAT entries point at the copies (written and
 *      synced by a flush).  A place a block left is free only from the next
 *      round on, when no durable entry can point at it any more;
 *   3. holes left inside the file are punched (unreferenced space);
 *   4. the footer is written right after the last structure, synced, and
 *      the file truncated after it (vhd_trim_reserve: two valid footers
 *      while it runs, the one at EOF wins).
 * Metadata (footer copy, header, BAT, locator data) never moves.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "vhd_image.h"

struct span {
	uint64_t start, end;
	uint32_t block;		/* UINT32_MAX: metadata */
};

struct move {
	uint32_t block;
	uint64_t from, to;
};

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Everything the image references, sorted by offset. */
static int collect_spans(vhd_disk *d, struct span **out, size_t *count)
{
	struct vhd_image *v = IMG(d);
	size_t n = 0, cap = (size_t)v->allocated + 3 + VHD_LOCATOR_COUNT;
	struct span *s = malloc(cap * sizeof(*s));

	if (!s)
		return -ENOMEM;
	s[n++] = (struct span){ 0, VHD_FOOTER_SIZE, UINT32_MAX };
	s[n++] = (struct span){ v->footer.data_offset,
				v->footer.data_offset + VHD_HEADER_SIZE, UINT32_MAX };
	s[n++] = (struct span){ v->header.table_offset,
				v->header.table_offset + vhd_bat_size(v->max_entries),
				UINT32_MAX };
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
		const struct vhd_locator *l = &v->header.loc[i];
		if (l->code != VHD_PLAT_NONE && vhd_locator_space(l))
			s[n++] = (struct span){ l->data_offset,
						l->data_offset + vhd_locator_space(l),
						UINT32_MAX };
	}
	for (uint32_t i = 0; i < v->max_entries && n < cap; i++) {
		uint64_t e = bat_get(v, i);
		if (e != VHD_BAT_UNUSED)
			s[n++] = (struct span){ e * VHD_SECTOR,
						e * VHD_SECTOR + block_total(v), i };
	}
	qsort(s, n, sizeof(*s), span_cmp);
	*out = s;
	*count = n;
	return 0;
}

/* Where a block goes in a hole starting at @at: data on a 4 KiB boundary,
 * as new blocks are placed (vhd_meta.c). */
static uint64_t place(const struct vhd_image *v, uint64_t at)
{
	return ((at + v->bitmap_size + 4095) & ~(uint64_t)4095) - v->bitmap_size;
}

/* The holes between referenced spans, below the footer; returned as spans
 * with block = 0.  The caller frees *@holes. */
static int find_holes(vhd_disk *d, const struct span *s, size_t n,
		      struct span **holes, size_t *nholes)
{
	struct vhd_image *v = IMG(d);
	struct span *h = malloc((n + 1) * sizeof(*h));
	uint64_t end = 0;
	size_t k = 0;

	if (!h)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (s[i].start > end && end < v->footer_pos)
			h[k++] = (struct span){ end, s[i].start < v->footer_pos ?
						s[i].start : v->footer_pos, 0 };
		if (s[i].end > end)
			end = s[i].end;
	}
	*holes = h;
	*nholes = k;
	return 0;
}

/* Step 1: drop blocks that read the same without them. */
static int drop_blocks(vhd_disk *d, struct compact_job *j)
{
	struct vhd_compact_stats *st = j->st;
	struct vhd_image *v = IMG(d);
	uint8_t *buf = malloc(v->block_size), *pbuf = malloc(v->block_size);
	int rc = 0;

	if (!buf || !pbuf) {
		rc = disk_error(d, -ENOMEM, "out of memory");
		goto out;
	}
	j->unit = v->block_size;
	rc = compact_step(d, j, 0, v->allocated);
	for (uint32_t i = 0; i < v->nblocks && rc == 0; i++) {
		uint64_t off = (uint64_t)i << v->block_shift;
		uint32_t len = d->size - off < v->block_size ?
			       (uint32_t)(d->size - off) : v->block_size;
		enum compact_verdict what;
		if (bat_get(v, i) == VHD_BAT_UNUSED)
			continue;
		rc = compact_classify(d, off, len, buf, pbuf, &what);
		if (rc == 0)
			rc = compact_step(d, j, 1, 0);
		if (rc < 0)
			break;
		if (what == COMPACT_DROP) {
			vhd_unmap_block(d, i);
			st->dropped++;
		} else if (what == COMPACT_ZERO) {
			st->kept_zero++;	/* no VHD state reads zeros over a parent */
		}
	}
	if (rc == 0 && st->dropped)
		rc = vhd_meta_flush(d);
out:
	free(buf);
	free(pbuf);
	if (rc == -ECANCELED)
		return rc;
	return rc < 0 ? disk_error(d, rc, "compact: %s", vhd_strerror(rc)) : 0;
}

/* Plan one round: the highest blocks into the lowest holes below them.
 * Holes are consumed as they are planned; places blocks leave are not
 * holes yet (their BAT entries are still durable). */
static size_t plan_round(struct vhd_image *v, struct span *s, size_t n,
			 struct span *h, size_t nh, struct move *m)
{
	size_t k = 0;

	for (size_t i = n; i-- > 0;) {
		size_t j;
		if (s[i].block == UINT32_MAX)
			continue;
		for (j = 0; j < nh; j++) {
			uint64_t to = place(v, h[j].start);
			if (to + block_total(v) <= h[j].end && to < s[i].start)
				break;
		}
		if (j == nh)
			break;	/* every block is the same size: none fits lower */
		m[k].block = s[i].block;
		m[k].from = s[i].start;
		m[k].to = place(v, h[j].start);
		h[j].start = m[k].to + block_total(v);
		k++;
	}
	return k;
}

/* Copy a block (bitmap and data). */
static int copy_block(vhd_disk *d, const struct move *m, uint8_t *buf)
{
	int rc = vhd_read_place(d, m->from, buf);

	return rc < 0 ? rc : io_write_full(d->io, buf, block_total(IMG(d)), m->to);
}

/* Step 2, one round: copies, sync, then the BAT (flush).  Returns the count
 * moved. */
static int move_round(vhd_disk *d, struct compact_job *j, uint8_t *buf)
{
	struct vhd_image *v = IMG(d);
	struct span *s = NULL, *h = NULL;
	struct move *m = NULL;
	size_t n, nh, k = 0;
	int rc = collect_spans(d, &s, &n);

	if (rc == 0)
		rc = find_holes(d, s, n, &h, &nh);
	if (rc == 0 && !(m = malloc((n + 1) * sizeof(*m))))
		rc = -ENOMEM;
	if (rc == 0) {
		k = plan_round(v, s, n, h, nh, m);
		rc = compact_step(d, j, 0, k);
	}
	for (size_t i = 0; i < k && rc == 0; i++) {
		rc = copy_block(d, &m[i], buf);
		if (rc == 0)
			rc = compact_step(d, j, 1, 0);
	}
	/* The flush syncs first (vhd_meta.c, step 2): the copies are durable
	 * before a BAT sector points at them. */
	for (size_t i = 0; i < k && rc == 0; i++)
		vhd_remap_block(d, m[i].block, (uint32_t)(m[i].to / VHD_SECTOR));
	if (rc == 0 && k)
		rc = vhd_meta_flush(d);
	j->st->moved += rc == 0 ? k : 0;
	free(s);
	free(h);
	free(m);
	if (rc == -ECANCELED)
		return rc;
	if (rc < 0)
		return disk_error(d, rc, "compact: moving blocks: %s", vhd_strerror(rc));
	return (int)k;
}

/* Steps 3 and 4: punch the holes left, then truncate after the last span. */
static int punch_and_trim(vhd_disk *d)
{
	struct vhd_image *v = IMG(d);
	struct span *s = NULL, *h = NULL;
	size_t n, nh;
	uint64_t end = 0;
	int rc = collect_spans(d, &s, &n);

	if (rc == 0)
		rc = find_holes(d, s, n, &h, &nh);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (s[i].end > end)
			end = s[i].end;
	end = (end + VHD_SECTOR - 1) & ~(uint64_t)(VHD_SECTOR - 1);
	for (size_t i = 0; i < nh && d->io->ops->punch; i++)
		if (h[i].end <= end)
			d->io->ops->punch(d->io, h[i].start, h[i].end - h[i].start);
	if (end < v->footer_pos) {
		v->next_block = end;
		rc = vhd_trim_reserve(d);
	}
out:
	free(s);
	free(h);
	return rc < 0 ? disk_error(d, rc, "compact: %s", vhd_strerror(rc)) : 0;
}

int vhd_image_compact(vhd_disk *d, struct compact_job *j)
{
	struct vhd_compact_stats *st = j->st;
	struct vhd_image *v = IMG(d);
	uint8_t *buf;
	int rc;

	st->blocks_before = v->allocated;
	rc = vhd_meta_flush(d);
	if (rc == 0)
		rc = vhd_trim_reserve(d);
	if (rc == 0)
		rc = drop_blocks(d, j);
	if (rc < 0)
		return rc;
	buf = malloc(block_total(v));
	if (!buf)
		return disk_error(d, -ENOMEM, "out of memory");
	do
		rc = move_round(d, j, buf);
	while (rc > 0);
	free(buf);
	if (rc == 0)
		rc = punch_and_trim(d);
	st->blocks_after = v->allocated;
	return rc;
}
