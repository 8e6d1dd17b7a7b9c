/*
 * vhdx_log.c -- the VHDX log: replay on open, header updates.
 *
 * Replay (MS-VHDX 2.3.3): among the valid entries (signature, CRC-32C over
 * the whole entry, the header's LogGuid), find the sequence of consecutive
 * entries (each at the end of the previous one in the ring, sequence + 1)
 * whose head names, as its tail, an entry of the sequence; take the one with
 * the highest head sequence number; apply every descriptor from the tail to
 * the head; extend the file to LastFileOffset.  A read-write open writes the
 * result, syncs and clears LogGuid in a new header; a read-only open keeps
 * the replayed pages in an overlay over the file and never writes.  No valid
 * entry at all means nothing to replay.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "io.h"
#include "vhdx_image.h"

/* ---- overlay: a read-only view of a file with replayed pages on top ---- */

struct ov_page {
	uint64_t off;
	uint8_t data[VHDX_LOG_SECTOR];
};

struct overlay_io {
	struct vhd_io base;
	struct vhd_io *inner;
	struct ov_page *pages;	/* sorted by off, unique */
	size_t n;
	uint64_t size;
};

static ssize_t ov_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off)
{
	struct overlay_io *o = (struct overlay_io *)io;
	ssize_t r;
	size_t lo = 0, hi = o->n;

	if (off >= o->size)
		return 0;
	if (len > o->size - off)
		len = (size_t)(o->size - off);
	r = o->inner->ops->pread(o->inner, buf, len, off);
	if (r < 0)
		return r;
	if ((size_t)r < len)
		memset((uint8_t *)buf + r, 0, len - (size_t)r);
	/* first page that may overlap */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (o->pages[mid].off + VHDX_LOG_SECTOR <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < o->n && o->pages[i].off < off + len; i++) {
		uint64_t a = o->pages[i].off > off ? o->pages[i].off : off;
		uint64_t b = o->pages[i].off + VHDX_LOG_SECTOR;
		if (b > off + len)
			b = off + len;
		memcpy((uint8_t *)buf + (a - off), o->pages[i].data + (a - o->pages[i].off),
		       (size_t)(b - a));
	}
	return (ssize_t)len;
}

static ssize_t ov_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off)
{
	return -EROFS;
}

static int ov_flush(struct vhd_io *io)
{
	return 0;
}

static int ov_get_size(struct vhd_io *io, uint64_t *size)
{
	*size = ((struct overlay_io *)io)->size;
	return 0;
}

static int ov_truncate(struct vhd_io *io, uint64_t size)
{
	return -EROFS;
}

static int ov_identity(struct vhd_io *io, uint64_t *dev, uint64_t *ino)
{
	struct vhd_io *in = ((struct overlay_io *)io)->inner;

	return in->ops->identity ? in->ops->identity(in, dev, ino) : -ENOTSUP;
}

static int ov_prefetch(struct vhd_io *io, uint64_t off, uint64_t len)
{
	struct vhd_io *in = ((struct overlay_io *)io)->inner;

	return in->ops->prefetch ? in->ops->prefetch(in, off, len) : 0;
}

static void ov_close(struct vhd_io *io)
{
	struct overlay_io *o = (struct overlay_io *)io;

	io_close(o->inner);
	free(o->pages);
	free(o);
}

static const struct vhd_io_ops overlay_ops = {
	.pread = ov_pread,
	.pwrite = ov_pwrite,
	.flush = ov_flush,
	.get_size = ov_get_size,
	.truncate = ov_truncate,
	.close = ov_close,
	.identity = ov_identity,
	.prefetch = ov_prefetch,
};

/* Add or replace a page (later entries win). */
static int ov_put(struct overlay_io *o, uint64_t off, const uint8_t *page)
{
	size_t i;
	struct ov_page *v;

	for (i = 0; i < o->n && o->pages[i].off < off; i++)
		;
	if (i < o->n && o->pages[i].off == off) {
		memcpy(o->pages[i].data, page, VHDX_LOG_SECTOR);
		return 0;
	}
	v = realloc(o->pages, (o->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	o->pages = v;
	memmove(&v[i + 1], &v[i], (o->n - i) * sizeof(*v));
	v[i].off = off;
	memcpy(v[i].data, page, VHDX_LOG_SECTOR);
	o->n++;
	if (off + VHDX_LOG_SECTOR > o->size)
		o->size = off + VHDX_LOG_SECTOR;
	return 0;
}

/* ---- finding the active sequence ---- */

struct log_entry {
	uint32_t off;		/* in the log */
	struct vhdx_log_header h;
};

/* The entry at @off, copied out of the ring (it may wrap), if valid. */
static int entry_at(const struct vhdx_image *x, const uint8_t *log, uint32_t off,
		    uint8_t **out, struct vhdx_log_header *h)
{
	uint8_t *e;

	if (vhdx_log_header_decode(log + off, h) < 0)
		return -1;
	if (h->entry_length > x->log_len || !vhdx_guid_eq(&h->log_guid, &x->hdr.log_guid))
		return -1;
	e = malloc(h->entry_length);
	if (!e)
		return -ENOMEM;
	for (uint32_t done = 0; done < h->entry_length;) {
		uint32_t pos = (off + done) % x->log_len;
		uint32_t n = x->log_len - pos;
		if (n > h->entry_length - done)
			n = h->entry_length - done;
		memcpy(e + done, log + pos, n);
		done += n;
	}
	if (!vhdx_log_entry_crc_ok(e, h->entry_length)) {
		free(e);
		return -1;
	}
	*out = e;
	return 0;
}

/* Apply one entry's descriptors, to the file or to the overlay. */
static int apply_entry(vhd_disk *d, const uint8_t *e, const struct vhdx_log_header *h,
		       struct overlay_io *ov, uint64_t limit)
{
	uint32_t hs = vhdx_log_header_sectors(h->descriptor_count);
	uint32_t data_sector = hs;
	uint8_t page[VHDX_LOG_SECTOR];
	static const uint8_t zero[VHDX_LOG_SECTOR];
	int rc;

	for (uint32_t i = 0; i < h->descriptor_count; i++) {
		struct vhdx_log_desc desc;
		rc = vhdx_log_desc_decode(e, i, &desc);
		if (rc < 0 || desc.sequence != h->sequence)
			return disk_error(d, VHD_E_CORRUPT,
					  "log entry %llu: descriptor %u is invalid",
					  (unsigned long long)h->sequence, i);
		if (desc.file_offset > limit ||
		    (desc.zero ? desc.zero_length : VHDX_LOG_SECTOR) > limit - desc.file_offset)
			return disk_error(d, VHD_E_CORRUPT,
					  "the log does not replay: entry %llu writes at %llu, past its last file offset %llu",
					  (unsigned long long)h->sequence,
					  (unsigned long long)desc.file_offset,
					  (unsigned long long)limit);
		if (desc.zero) {
			for (uint64_t z = 0; z < desc.zero_length; z += VHDX_LOG_SECTOR) {
				rc = ov ? ov_put(ov, desc.file_offset + z, zero)
					: io_write_full(d->io, zero, VHDX_LOG_SECTOR,
							desc.file_offset + z);
				if (rc < 0)
					return disk_error(d, rc, "replaying the log: %s",
							  vhd_strerror(rc));
			}
			continue;
		}
		if ((uint64_t)(data_sector + 1) * VHDX_LOG_SECTOR > h->entry_length)
			return disk_error(d, VHD_E_CORRUPT,
					  "log entry %llu has fewer data sectors than descriptors",
					  (unsigned long long)h->sequence);
		rc = vhdx_log_data_decode(e + (size_t)data_sector * VHDX_LOG_SECTOR,
					  &desc, h->sequence, page);
		if (rc < 0)
			return disk_error(d, VHD_E_CORRUPT,
					  "log entry %llu: data sector %u is invalid",
					  (unsigned long long)h->sequence, data_sector);
		data_sector++;
		rc = ov ? ov_put(ov, desc.file_offset, page)
			: io_write_full(d->io, page, VHDX_LOG_SECTOR, desc.file_offset);
		if (rc < 0)
			return disk_error(d, rc, "replaying the log: %s", vhd_strerror(rc));
	}
	return 0;
}

/* Walk forward from entry @first; returns the count of consecutive valid
 * entries and the sequence's head. */
static int follow(const struct vhdx_image *x, const uint8_t *log, uint32_t first,
		  uint32_t *count, struct vhdx_log_header *head, uint32_t *head_off)
{
	uint32_t off = first, n = 0;
	uint64_t seq = 0;

	for (;;) {
		struct vhdx_log_header h;
		uint8_t *e = NULL;
		if (entry_at(x, log, off, &e, &h) != 0)
			break;
		free(e);
		if (n && h.sequence != seq + 1)
			break;
		seq = h.sequence;
		*head = h;
		*head_off = off;
		n++;
		off = (off + h.entry_length) % x->log_len;
		if (off == first || n > x->log_len / VHDX_LOG_SECTOR)
			break;
	}
	*count = n;
	return 0;
}

int vhdx_replay_log(vhd_disk *d, bool write_back, struct vhd_io **overlay)
{
	struct vhdx_image *x = XIMG(d);
	uint8_t *log = malloc(x->log_len);
	struct overlay_io *ov = NULL;
	uint64_t best_seq = 0, fsize;
	uint32_t best_tail = 0, best_head = 0;
	int rc;

	*overlay = NULL;
	if (!log)
		return disk_error(d, -ENOMEM, "out of memory for the log");
	rc = io_read_full(d->io, log, x->log_len, x->log_off);
	if (rc < 0) {
		rc = disk_error(d, rc, "cannot read the log: %s", vhd_strerror(rc));
		goto out;
	}
	for (uint32_t off = 0; off < x->log_len; off += VHDX_LOG_SECTOR) {
		struct vhdx_log_header head;
		uint32_t count, head_off, o;
		bool tail_in_seq = false;
		follow(x, log, off, &count, &head, &head_off);
		if (!count)
			continue;
		/* The head's tail must be an entry of this sequence. */
		o = off;
		for (uint32_t k = 0; k < count; k++) {
			struct vhdx_log_header h;
			uint8_t *e = NULL;
			if (o == head.tail)
				tail_in_seq = true;
			if (entry_at(x, log, o, &e, &h) != 0)
				break;
			free(e);
			o = (o + h.entry_length) % x->log_len;
		}
		if (tail_in_seq && head.sequence > best_seq) {
			best_seq = head.sequence;
			best_tail = head.tail;
			best_head = head_off;
		}
	}
	rc = io_size(d->io, &fsize);
	if (rc < 0)
		goto out;
	if (!write_back) {
		ov = calloc(1, sizeof(*ov));
		if (!ov) {
			rc = -ENOMEM;
			goto out;
		}
		ov->base.ops = &overlay_ops;
		ov->inner = d->io;
		ov->size = fsize;
	}
	if (best_seq) {
		uint32_t off = best_tail;
		uint64_t last = 0;
		for (;;) {
			struct vhdx_log_header h;
			uint8_t *e = NULL;
			if (entry_at(x, log, off, &e, &h) != 0) {
				rc = disk_error(d, VHD_E_CORRUPT, "the log does not replay");
				goto out;
			}
			/* Descriptors stay below the entry's LastFileOffset, which
			 * a crash can leave past EOF, but not absurdly far. */
			if (h.last_file_offset > fsize + (64ull << 30)) {
				free(e);
				rc = disk_error(d, VHD_E_CORRUPT,
						"the log does not replay: entry %llu ends the file at %llu, far past its end (%llu)",
						(unsigned long long)h.sequence,
						(unsigned long long)h.last_file_offset,
						(unsigned long long)fsize);
				goto out;
			}
			rc = apply_entry(d, e, &h, ov, h.last_file_offset);
			free(e);
			if (rc < 0)
				goto out;
			if (h.last_file_offset > last)
				last = h.last_file_offset;
			if (off == best_head)
				break;
			off = (off + h.entry_length) % x->log_len;
		}
		if (ov && last > ov->size)
			ov->size = last;
		if (!ov && last > fsize)
			rc = d->io->ops->truncate(d->io, last);
		if (rc < 0)
			goto out;
	}
	if (ov) {
		/* The image now reads through the overlay; it owns the file. */
		*overlay = &ov->base;
		ov = NULL;
		disk_problem(d, VHD_CHECK_INFO, 0,
			     best_seq ? "the log was replayed in memory (open read-write to apply it)"
				      : "the header names a log, but it holds no valid entry");
		rc = 0;
		goto out;
	}
	rc = d->io->ops->flush(d->io);
	if (rc == 0)
		rc = vhdx_write_header(d, NULL, 0);
out:
	free(ov ? ov->pages : NULL);
	free(ov);
	free(log);
	return rc;
}

/* Write a new current header into the other slot (sequence + 1) and sync.
 * @log_guid NULL clears it; @guids (VHDX_NEW_*_GUID) starts a session (X3). */
int vhdx_write_header(vhd_disk *d, const vhdx_guid *log_guid, unsigned guids)
{
	struct vhdx_image *x = XIMG(d);
	struct vhdx_header h = x->hdr;
	uint8_t buf[VHDX_HEADER_SIZE];
	int slot = !x->hdr_slot;
	int rc;

	h.sequence++;
	memset(&h.log_guid, 0, sizeof(h.log_guid));
	if (log_guid)
		h.log_guid = *log_guid;
	if (guids & VHDX_NEW_FILE_GUID) {
		rc = vhdx_guid_random(&h.file_write);
		if (rc < 0)
			return rc;
	}
	if (guids & VHDX_NEW_DATA_GUID) {
		rc = vhdx_guid_random(&h.data_write);
		if (rc < 0)
			return rc;
	}
	vhdx_header_encode(&h, buf);
	rc = io_write_full(d->io, buf, sizeof(buf), slot ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF);
	if (rc == 0 && !x->unsafe)
		rc = d->io->ops->flush(d->io);
	if (rc < 0)
		return disk_error(d, rc, "writing the VHDX header: %s", vhd_strerror(rc));
	x->hdr = h;
	x->hdr_slot = slot;
	return 0;
}
