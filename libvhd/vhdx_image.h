/*
 * vhdx_image.h -- in-memory state of an opened VHDX.
 *
 * Crash safety (docs/crash-safety.md, "VHDX"):
 *  X1  Payload and sector-bitmap blocks are only ever placed at the end of
 *      the file (1 MiB aligned), in space that reads as zeros.
 *  X2  Every metadata change (BAT pages, sector-bitmap pages) reaches its
 *      place only through the log: at a flush, data is synced, then the
 *      changed 4 KiB pages are written as one log sequence at the start of
 *      the log and synced, then written in place.  The next flush's first
 *      sync makes those in-place writes durable before the log is reused.
 *  X3  Before the first change of a session the header is rewritten (other
 *      slot, sequence + 1) with new FileWriteGuid, DataWriteGuid and a
 *      session LogGuid, and synced; a clean close writes LogGuid = 0.
 *  X4  A sector bit is set in memory only after its data write returned; the
 *      page carrying it is logged only after a sync.
 *
 * Locking mirrors the VHD engine: bat[] and bitmap bytes are read with
 * atomics and no lock; meta_lock serializes allocation and dirty tracking;
 * flush_lock serializes flushes; stripes serialize partial-sector writes.
 */
#ifndef LIBVHD_VHDX_IMAGE_H
#define LIBVHD_VHDX_IMAGE_H

#include <pthread.h>
#include <stdbool.h>

#include "disk.h"
#include "vhdx_codec.h"

#define VHDX_STRIPES 64
#define VHDX_PAGE 4096u

struct vhdx_image {
	struct vhdx_header hdr;		/* the current header */
	int hdr_slot;			/* 0 or 1: which slot holds it */
	bool session_started;		/* X3 done */

	uint64_t log_off;
	uint32_t log_len;
	uint64_t bat_off;
	uint64_t bat_len;
	uint64_t meta_off;
	uint32_t meta_len;

	uint32_t block_size, block_shift;
	uint32_t lsec, psec;
	bool leave_allocated, has_parent;
	vhdx_guid page83;
	uint64_t chunk_ratio;		/* payload blocks per sector-bitmap block */
	uint64_t nblocks;		/* payload blocks */
	uint64_t nsb;			/* sector-bitmap blocks */
	uint64_t nentries;		/* BAT entries */
	uint64_t *bat;			/* host order; atomic access */
	uint8_t **sb_pages;		/* per 4 KiB bitmap page: cached bytes */
	uint64_t allocated;

	/* parent locator (differencing) */
	char *parent_linkage, *parent_linkage2, *relative_path,
	     *absolute_path, *volume_path;

	/* dirty 4 KiB pages, under meta_lock */
	uint8_t *bat_dirty;		/* per BAT page */
	uint64_t *bat_dirty_list;
	uint64_t nbat_dirty;
	uint8_t *sb_dirty;		/* per bitmap page */
	uint64_t *sb_dirty_list;
	uint64_t nsb_dirty;

	uint64_t file_end;		/* next block goes here (1 MiB aligned) */
	uint32_t size_item_off;		/* disk size item, from meta_off */
	uint8_t **meta_pages;		/* metadata pages to log with the next
					   flush (resize, reparent) */
	uint64_t *meta_page_offs;
	uint32_t nmeta_pages;
	uint64_t log_seq;		/* last sequence number written */
	bool unsafe;

	pthread_mutex_t meta_lock, flush_lock;
	pthread_mutex_t stripe[VHDX_STRIPES];
};

static inline struct vhdx_image *XIMG(vhd_disk *d)
{
	return d->priv;
}

static inline uint64_t vhdx_payload_index(const struct vhdx_image *x, uint64_t b)
{
	return b + b / x->chunk_ratio;
}

static inline uint64_t vhdx_sb_index(const struct vhdx_image *x, uint64_t j)
{
	return (j + 1) * (x->chunk_ratio + 1) - 1;
}

static inline uint64_t vhdx_bat_get(const struct vhdx_image *x, uint64_t idx)
{
	return __atomic_load_n(&x->bat[idx], __ATOMIC_ACQUIRE);
}

/* vhdx_open.c */
int vhdx_image_open(vhd_disk *d, struct chain_ctx *ctx);
void vhdx_image_free(struct vhdx_image *x);

/* vhdx_log.c */
int vhdx_replay_log(vhd_disk *d, bool write_back, struct vhd_io **overlay);
/* vhdx_write_header @guids: which write GUIDs get new random values */
#define VHDX_NEW_FILE_GUID 0x1
#define VHDX_NEW_DATA_GUID 0x2
int vhdx_write_header(vhd_disk *d, const vhdx_guid *log_guid, unsigned guids);

/* vhdx_meta.c */
int vhdx_alloc_payload(vhd_disk *d, uint64_t block, uint32_t state, uint64_t *entry);
int vhdx_get_sb_page(vhd_disk *d, uint64_t page, uint8_t **out);
void vhdx_mark_bits(vhd_disk *d, uint64_t sector0, uint64_t nsec);
int vhdx_set_state(vhd_disk *d, uint64_t block, uint64_t entry);
/* Set BAT entry @idx (payload or sector bitmap) for the next flush. */
int vhdx_set_entry(vhd_disk *d, uint64_t idx, uint64_t entry);
/* Clear the sector bits of sectors [s0, s0+n) (a block leaving
 * PARTIALLY_PRESENT), logged with the next flush. */
int vhdx_clear_bits(vhd_disk *d, uint64_t s0, uint64_t n);
/* Queue a copy of the 4 KiB metadata page at file offset @off (page
 * aligned) to be logged and written with the next flush. */
int vhdx_queue_meta_page(vhd_disk *d, uint64_t off, const uint8_t *page);
int vhdx_meta_flush(vhd_disk *d);
int vhdx_meta_close(vhd_disk *d);
int vhdx_begin_session(vhd_disk *d);
/* X3 for a change of metadata only (compact, repair, reparent): a new
 * FileWriteGuid and LogGuid, the DataWriteGuid kept, so children stay
 * linked to an image whose content did not change. */
int vhdx_begin_meta_session(vhd_disk *d);
int vhdx_resize(vhd_disk *d, uint64_t size, bool force);

/* vhdx_compact.c */
int vhdx_compact(vhd_disk *d, struct compact_job *j);

/* vhdx_rw.c */
extern const struct vhd_format_ops vhdx_ops;

/* vhdx_create.c */
int vhdx_image_create(const char *path, const struct vhd_create_opts *o);
/* The parent locator item (parent_linkage, relative_path,
 * absolute_win32_path) into @p; returns its length.  @p holds 20 + 36 +
 * the UTF-16 of the keys and values (6 * PATH_MAX bytes suffice). */
uint32_t vhdx_build_locator(const vhdx_guid *linkage, const char *rel,
			    const char *abs, uint8_t *p);

/* vhdx_repair.c */
int vhdx_repair(vhd_disk *d, struct repair_ctx *c);

/* vhdx_reparent.c */
int vhdx_reparent(vhd_disk *d, const char *parent, const struct vhd_info *pi,
		  const struct vhd_io_factory *f);

/* Whether BAT entry @i, holding @e, points outside the data area of a file
 * of @fsize bytes (into the headers, log, metadata or BAT, unaligned, or
 * past the end). */
bool vhdx_entry_outside_file(vhd_disk *d, uint64_t i, uint64_t e, uint64_t fsize);

#endif /* LIBVHD_VHDX_IMAGE_H */
