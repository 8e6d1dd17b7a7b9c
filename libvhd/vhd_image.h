/*
 * vhd_image.h -- in-memory state of an opened VHD (fixed, dynamic, diff).
 *
 * Invariants (docs/crash-safety.md gives the argument):
 *  I1  The footer at EOF is always valid.  New blocks are only placed below
 *      a footer that is already durable: space is reserved by writing the
 *      footer further out and syncing ("reservation"), then handed out
 *      block by block without further syncs.
 *  I2  A BAT entry reaches the disk only after the block's initial bitmap
 *      (all zeros for differencing disks, all ones for dynamic disks, whose
 *      fresh data area reads as zeros) is durable.
 *  I3  A sector bit reaches the disk only after its data is durable: bits
 *      set in memory are snapshotted at flush, then data is synced, then the
 *      bitmaps and BAT sectors are written, then synced again.
 *  I4  Space between the last block and the footer that an earlier session
 *      reserved but never referenced may hold stale data; it is zeroed
 *      before reuse, so a dynamic block's all-ones bitmap never exposes it.
 *
 *  I5  (realign) A block moved to a new place keeps its old place intact
 *      until a flush has made the BAT entry that points at the copy durable;
 *      only then is the old place punched.  The copy is unreferenced space
 *      until that flush, which syncs it before writing the BAT.
 *
 * Locking: bat[] entries and bitmap bytes are read with atomic loads and no
 * lock.  meta_lock serializes allocation and dirty tracking; flush_lock
 * serializes flushes; a per-block stripe lock serializes writes that change
 * a block's bitmap or need a read-modify-write of a partial sector.  With
 * realign on, I/O on a block whose data is not 4 KiB aligned holds the
 * block's move lock shared, and moving the block holds it exclusively;
 * aligned blocks never move, so their I/O takes no such lock.
 */
#ifndef LIBVHD_VHD_IMAGE_H
#define LIBVHD_VHD_IMAGE_H

#include <pthread.h>
#include <stdbool.h>

#include "disk.h"
#include "vhd_codec.h"

#define VHD_STRIPES 64

/* Sentinel in bitmaps[]: the block's bitmap is all ones. */
extern uint8_t vhd_full_bitmap_marker;
#define BITMAP_FULL (&vhd_full_bitmap_marker)

struct vhd_place {
	uint64_t pos, len;
};

struct vhd_image {
	struct vhd_footer footer;
	struct vhd_header header;
	uint32_t type;			/* VHD_TYPE_* */
	uint32_t footer_len;		/* 512, or 511 for old Virtual PC */
	const char *size_source;
	char *parent_name;		/* UTF-8, from the header */

	/* dynamic / differencing */
	uint32_t block_size;
	uint32_t block_shift;		/* log2(block_size) */
	uint32_t bitmap_size;		/* bytes, padded to 512 */
	uint32_t nblocks;		/* blocks covering the virtual size */
	uint32_t max_entries;
	uint32_t *bat;			/* host order; atomic access */
	uint8_t **bitmaps;		/* per block: NULL unloaded, FULL, or bytes */
	uint32_t allocated;

	/* dirty state, under meta_lock */
	uint8_t *bat_dirty;		/* per BAT sector */
	uint32_t *bat_dirty_list;
	uint32_t nbat_dirty;
	uint8_t *bm_dirty;		/* per block */
	uint32_t *bm_dirty_list;
	uint32_t nbm_dirty;

	/* allocation */
	uint64_t next_block;		/* byte offset of the next new block */
	uint64_t footer_pos;		/* byte offset of the footer at EOF */
	uint64_t meta_end;		/* end of header, BAT and locators */

	bool unsafe;			/* VHD_OPEN_UNSAFE */

	/* realign (VHD_OPEN_REALIGN): moving misaligned blocks on write */
	bool realign;			/* set at open, constant after */
	bool realign_stopped;		/* no more moves (a punch failed) */
	struct vhd_place *freed;	/* old places to punch after the next
					   flush, under meta_lock */
	uint32_t nfreed, freed_cap;
	pthread_rwlock_t move_lock[VHD_STRIPES];

	pthread_mutex_t meta_lock;
	pthread_mutex_t flush_lock;
	pthread_mutex_t stripe[VHD_STRIPES];
};

static inline struct vhd_image *IMG(vhd_disk *d)
{
	return d->priv;
}

static inline uint64_t block_total(const struct vhd_image *v)
{
	return (uint64_t)v->bitmap_size + v->block_size;
}

/* The bytes of bitmap and data block @block occupies in the file: the last
 * block of a disk of @size bytes may stop at the disk's end. */
static inline uint64_t block_span(const struct vhd_image *v, uint64_t size,
				  uint32_t block)
{
	uint64_t start = (uint64_t)block << v->block_shift, len = v->block_size;

	if (start < size && size - start < len)
		len = (size - start + VHD_SECTOR - 1) & ~(uint64_t)(VHD_SECTOR - 1);
	return v->bitmap_size + len;
}

static inline uint32_t bat_get(const struct vhd_image *v, uint32_t i)
{
	return __atomic_load_n(&v->bat[i], __ATOMIC_ACQUIRE);
}

/* Realign moves a block at a write of fewer bytes than this (into it).  A
 * larger write covers at most two partial pages among 16 or more whole
 * ones, so moving 2 MiB for it would not pay; a sequential first pass over
 * a foreign image runs at full speed and moves nothing. */
#define VHD_REALIGN_BELOW (64u << 10)

/* Whether the block at BAT entry @entry has its data off a 4 KiB boundary
 * (qemu-img and Virtual PC put data one sector after the bitmap). */
static inline bool vhd_entry_misaligned(const struct vhd_image *v, uint32_t entry)
{
	return entry != VHD_BAT_UNUSED &&
	       (((uint64_t)entry * VHD_SECTOR + v->bitmap_size) & 4095) != 0;
}

/* Whether the block at @entry may still move (realign on, misaligned):
 * its I/O must pin it (vhd_realign.c). */
static inline bool vhd_entry_may_move(const struct vhd_image *v, uint32_t entry)
{
	return v->realign && vhd_entry_misaligned(v, entry);
}

/* vhd_open.c */
void vhd_image_free(struct vhd_image *v);

/* vhd_meta.c: allocation, bitmaps, flush, close */
int vhd_get_bitmap(vhd_disk *d, uint32_t block, uint8_t **out);
int vhd_alloc_block(vhd_disk *d, uint32_t block, uint32_t *entry);
int vhd_read_place(vhd_disk *d, uint64_t pos, uint8_t *buf);
int vhd_alloc_place(vhd_disk *d, uint64_t *pos);
bool vhd_move_block(vhd_disk *d, uint32_t block, uint32_t from, uint32_t to);
void vhd_mark_bits(vhd_disk *d, uint32_t block, uint32_t s0, uint32_t s1);
int vhd_unmap_block(vhd_disk *d, uint32_t block);
void vhd_remap_block(vhd_disk *d, uint32_t block, uint32_t entry);
int vhd_meta_flush(vhd_disk *d);
int vhd_meta_close(vhd_disk *d);
int vhd_trim_reserve(vhd_disk *d);

/* vhd_create.c: what a child stores for its parent.  Locator data: @path
 * as UTF-16LE (malloc'd, *@len bytes).  Parent name: the absolute path when
 * it fits in the header, else its file name (UTF-16, host order). */
int vhd_locator_data(const char *path, uint8_t **out, uint32_t *len);
int vhd_parent_name(const char *abs, uint16_t name[VHD_PARENT_NAME_UNITS]);

/* vhd_reparent.c */
int vhd_image_reparent(vhd_disk *d, const char *parent, const struct vhd_info *pi,
		       const struct vhd_io_factory *f);
/* The reparent journal CHILD.vhdkit-reparent: the new dynamic header and
 * where it goes.  read returns 0 (found and intact: *@off, @hdr filled),
 * -ENOENT (none) or VHD_E_CORRUPT (torn: the header was not written yet). */
#define VHD_REPARENT_JOURNAL ".vhdkit-reparent"
int vhd_reparent_journal_read(const struct vhd_io_factory *f, const char *child,
			      uint64_t *off, uint8_t hdr[VHD_HEADER_SIZE]);
void vhd_reparent_journal_remove(const struct vhd_io_factory *f, const char *child);

/* vhd_repair.c */
int vhd_image_repair(vhd_disk *d, struct repair_ctx *c);

/* vhd_realign.c: I/O on a block pins its place (see Locking above); a
 * write to a misaligned block first moves it (I5).  pin returns the block's
 * current entry and sets *@held to the lock to give back (or NULL). */
uint32_t vhd_pin_block(struct vhd_image *v, uint32_t block, pthread_rwlock_t **held);
void vhd_unpin_block(pthread_rwlock_t *held);
int vhd_realign_block(vhd_disk *d, uint32_t block);

/* vhd_compact.c */
int vhd_image_compact(vhd_disk *d, struct compact_job *j);

/* vhd_resize.c */
int vhd_image_resize(vhd_disk *d, uint64_t size, bool force);
int vhd_prepare_writes(vhd_disk *d);

/* vhd_rw.c */
extern const struct vhd_format_ops vhd_fixed_ops, vhd_sparse_ops;

/* vhd_parent.c */
int vhd_resolve_parent(vhd_disk *d, struct chain_ctx *ctx);

/* shared helpers from raw.c */
int write_zeros(vhd_disk *d, struct vhd_io *io, uint64_t off, uint64_t len);
int file_extents(vhd_disk *d, uint64_t base, uint64_t off, uint64_t len,
		 layer_extent_fn fn, void *opaque);
int file_zero(vhd_disk *d, uint64_t off, uint64_t len, unsigned flags);

#endif /* LIBVHD_VHD_IMAGE_H */
