/*
 * vhdx_compact.c -- compact a dynamic or differencing VHDX (compact.c has
 * the contract and the rule for dropping blocks).
 *
 * Every BAT and sector-bitmap change goes through the log (X2), in a
 * metadata session: a new FileWriteGuid, the DataWriteGuid kept, since the
 * content does not change and children must stay linked.
 *   1. payload blocks that read the same without them become NOT_PRESENT
 *      (zeros, or the parent); all-zero blocks of a differencing disk over
 *      other parent data become PAYLOAD_BLOCK_ZERO.  The sector bits of a
 *      PARTIALLY_PRESENT block that leaves are cleared in the same flush, so
 *      that no stale bit comes back with a later allocation.  Then sector
 *      bitmap blocks of chunks left without a PARTIALLY_PRESENT block are
 *      dropped, in a later flush (a bitmap entry never leaves before the
 *      payload entries that need it);
 *   2. in rounds, the highest blocks (payload or sector bitmap, 1 MiB
 *      aligned) are copied into the lowest free 1 MiB-aligned space below
 *      them, synced, then their entries point at the copies (one logged
 *      flush); a place left is reused only in a later round;
 *   3. the in-place writes are synced, and the file is truncated, last.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "vhdx_image.h"

struct xspan {
	uint64_t start, end;
	uint64_t idx;		/* BAT index; UINT64_MAX for metadata */
};

static int xspan_cmp(const void *a, const void *b)
{
	const struct xspan *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static bool is_sb_index(const struct vhdx_image *x, uint64_t i)
{
	return (i + 1) % (x->chunk_ratio + 1) == 0;
}

/* Length of the object BAT entry @i points at, 0 when none. */
static uint64_t object_len(const struct vhdx_image *x, uint64_t i)
{
	uint32_t st = vhdx_bat_state(vhdx_bat_get(x, i));

	if (is_sb_index(x, i))
		return st == VHDX_SB_PRESENT ? VHDX_SB_BLOCK : 0;
	return st == VHDX_PAYLOAD_FULLY_PRESENT ||
	       st == VHDX_PAYLOAD_PARTIALLY_PRESENT ? x->block_size : 0;
}

static int collect(vhd_disk *d, struct xspan **out, size_t *count)
{
	struct vhdx_image *x = XIMG(d);
	size_t n = 0;
	struct xspan *s = malloc((x->nentries + 4) * sizeof(*s));

	if (!s)
		return -ENOMEM;
	s[n++] = (struct xspan){ 0, VHDX_MiB, UINT64_MAX };
	s[n++] = (struct xspan){ x->log_off, x->log_off + x->log_len, UINT64_MAX };
	s[n++] = (struct xspan){ x->meta_off, x->meta_off + x->meta_len, UINT64_MAX };
	s[n++] = (struct xspan){ x->bat_off, x->bat_off + x->bat_len, UINT64_MAX };
	for (uint64_t i = 0; i < x->nentries; i++) {
		uint64_t len = object_len(x, i), off = vhdx_bat_offset(vhdx_bat_get(x, i));
		if (len)
			s[n++] = (struct xspan){ off, off + len, i };
	}
	for (size_t i = 0; i < n; i++)	/* regions are whole MiBs */
		s[i].end = (s[i].end + VHDX_MiB - 1) & ~(uint64_t)(VHDX_MiB - 1);
	qsort(s, n, sizeof(*s), xspan_cmp);
	*out = s;
	*count = n;
	return 0;
}

/* Step 1a: payload blocks. */
static int drop_payload(vhd_disk *d, struct compact_job *j)
{
	struct vhd_compact_stats *st = j->st;
	struct vhdx_image *x = XIMG(d);
	uint8_t *buf = malloc(x->block_size), *pbuf = malloc(x->block_size);
	uint64_t stored = 0;
	int rc = 0;

	if (!buf || !pbuf) {
		rc = -ENOMEM;
		goto out;
	}
	j->unit = x->block_size;
	for (uint64_t b = 0; b < x->nblocks; b++) {
		uint32_t st0 = vhdx_bat_state(vhdx_bat_get(x, vhdx_payload_index(x, b)));
		stored += st0 == VHDX_PAYLOAD_FULLY_PRESENT ||
			  st0 == VHDX_PAYLOAD_PARTIALLY_PRESENT;
	}
	rc = compact_step(d, j, 0, stored);
	for (uint64_t b = 0; b < x->nblocks && rc == 0; b++) {
		uint64_t off = b << x->block_shift;
		uint32_t len = d->size - off < x->block_size ?
			       (uint32_t)(d->size - off) : x->block_size;
		uint32_t old = vhdx_bat_state(vhdx_bat_get(x, vhdx_payload_index(x, b)));
		enum compact_verdict what;
		uint32_t state;
		if (old != VHDX_PAYLOAD_FULLY_PRESENT && old != VHDX_PAYLOAD_PARTIALLY_PRESENT)
			continue;
		rc = compact_classify(d, off, len, buf, pbuf, &what);
		if (rc == 0)
			rc = compact_step(d, j, 1, 0);
		if (rc < 0 || what == COMPACT_KEEP)
			continue;
		state = what == COMPACT_DROP ? VHDX_PAYLOAD_NOT_PRESENT : VHDX_PAYLOAD_ZERO;
		if (old == VHDX_PAYLOAD_PARTIALLY_PRESENT)
			rc = vhdx_clear_bits(d, off / x->lsec,
					     ((uint64_t)x->block_size) / x->lsec);
		if (rc == 0)
			rc = vhdx_set_state(d, b, vhdx_bat_make(state, 0));
		x->allocated--;
		if (what == COMPACT_DROP)
			st->dropped++;
		else
			st->zeroed++;
	}
	if (rc == 0 && (st->dropped || st->zeroed))
		rc = vhdx_meta_flush(d);
out:
	free(buf);
	free(pbuf);
	if (rc == -ECANCELED)
		return rc;
	return rc < 0 ? disk_error(d, rc, "compact: %s", vhd_strerror(rc)) : 0;
}

/* Step 1b: sector bitmap blocks no PARTIALLY_PRESENT block needs. */
static int drop_bitmaps(vhd_disk *d)
{
	struct vhdx_image *x = XIMG(d);
	bool changed = false;

	/* Only differencing disks have sector bitmap entries (a dynamic disk's
	 * BAT stops before the last chunk's). */
	for (uint64_t j = 0; x->has_parent && j < x->nsb; j++) {
		uint64_t sb = vhdx_sb_index(x, j);
		bool needed = false;
		if (sb >= x->nentries ||
		    vhdx_bat_state(vhdx_bat_get(x, sb)) != VHDX_SB_PRESENT)
			continue;
		for (uint64_t b = j * x->chunk_ratio;
		     b < (j + 1) * x->chunk_ratio && b < x->nblocks && !needed; b++)
			needed = vhdx_bat_state(vhdx_bat_get(x, vhdx_payload_index(x, b))) ==
				 VHDX_PAYLOAD_PARTIALLY_PRESENT;
		if (needed)
			continue;
		vhdx_set_entry(d, sb, vhdx_bat_make(VHDX_SB_NOT_PRESENT, 0));
		x->allocated--;
		changed = true;
	}
	return changed ? vhdx_meta_flush(d) : 0;
}

/* One round of step 2; returns the count moved. */
static int move_round(vhd_disk *d, struct compact_job *j, uint8_t *buf)
{
	struct vhdx_image *x = XIMG(d);
	struct xspan *s = NULL;
	uint64_t *hs = NULL, *he = NULL;	/* holes */
	size_t n = 0, nh = 0, k = 0;
	uint64_t end = 0;
	int rc = collect(d, &s, &n);

	if (rc == 0 && (!(hs = malloc((n + 1) * 8)) || !(he = malloc((n + 1) * 8))))
		rc = -ENOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (s[i].start > end) {
			hs[nh] = end;
			he[nh++] = s[i].start;
		}
		if (s[i].end > end)
			end = s[i].end;
	}
	for (size_t i = n; rc == 0 && i-- > 0;) {
		uint64_t len = s[i].end - s[i].start, to;
		size_t h;
		ssize_t got;
		if (s[i].idx == UINT64_MAX)
			continue;
		for (h = 0; h < nh; h++)
			if (he[h] - hs[h] >= len && hs[h] < s[i].start)
				break;
		if (h == nh)
			continue;	/* payload and bitmap blocks differ in size */
		to = hs[h];
		hs[h] += len;
		got = d->io->ops->pread(d->io, buf, len, s[i].start);
		if (got < 0) {
			rc = (int)got;
			break;
		}
		memset(buf + got, 0, len - (uint64_t)got);	/* short last block */
		rc = io_write_full(d->io, buf, len, to);
		if (rc == 0)
			rc = compact_step(d, j, 1, 1);
		if (rc < 0)
			break;
		s[i].end = to;	/* remember the target */
		s[i].start = UINT64_MAX;
		k++;
	}
	/* The flush syncs before it logs (vhdx_meta.c, step 2): the copies
	 * are durable before a logged BAT page points at them. */
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (s[i].start != UINT64_MAX)
			continue;
		uint64_t e = vhdx_bat_get(x, s[i].idx);
		vhdx_set_entry(d, s[i].idx, vhdx_bat_make(vhdx_bat_state(e), s[i].end));
	}
	if (rc == 0 && k)
		rc = vhdx_meta_flush(d);
	j->st->moved += rc == 0 ? k : 0;
	free(s);
	free(hs);
	free(he);
	if (rc == -ECANCELED)
		return rc;
	if (rc < 0)
		return disk_error(d, rc, "compact: moving blocks: %s", vhd_strerror(rc));
	return (int)k;
}

/* Step 3. */
static int truncate_end(vhd_disk *d)
{
	struct vhdx_image *x = XIMG(d);
	struct xspan *s = NULL;
	uint64_t end = 0, size = 0;
	size_t n;
	int rc = collect(d, &s, &n);

	for (size_t i = 0; rc == 0 && i < n; i++)
		if (s[i].end > end)
			end = s[i].end;
	free(s);
	if (rc == 0)
		rc = io_size(d->io, &size);
	if (rc < 0 || end >= size)
		return rc;
	/* The in-place BAT writes of the last flush are made durable before
	 * the file shrinks.  A crash after the truncate, before close clears
	 * the LogGuid, replays the last flush, which may extend the file to
	 * its LastFileOffset again: zeros past every block, still valid. */
	x->file_end = end;
	rc = vhdx_meta_flush(d);
	if (rc == 0)
		rc = d->io->ops->truncate(d->io, end);
	if (rc == 0)
		rc = d->io->ops->flush(d->io);
	return rc < 0 ? disk_error(d, rc, "compact: truncating: %s", vhd_strerror(rc)) : 0;
}

int vhdx_compact(vhd_disk *d, struct compact_job *j)
{
	struct vhd_compact_stats *st = j->st;
	struct vhdx_image *x = XIMG(d);
	uint8_t *buf;
	int rc;

	if (x->leave_allocated)
		return disk_error(d, VHD_E_UNSUPPORTED,
				  "a fixed VHDX cannot be compacted (its blocks stay allocated)");
	st->blocks_before = x->allocated;
	rc = vhdx_begin_meta_session(d);
	if (rc == 0)
		rc = vhdx_meta_flush(d);
	if (rc == 0)
		rc = drop_payload(d, j);
	if (rc == 0)
		rc = drop_bitmaps(d);
	if (rc < 0)
		return rc;
	buf = malloc(x->block_size > VHDX_SB_BLOCK ? x->block_size : VHDX_SB_BLOCK);
	if (!buf)
		return disk_error(d, -ENOMEM, "out of memory");
	do
		rc = move_round(d, j, buf);
	while (rc > 0);
	free(buf);
	if (rc == 0)
		rc = truncate_end(d);
	st->blocks_after = x->allocated;
	return rc;
}
