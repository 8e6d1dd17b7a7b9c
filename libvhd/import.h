/*
 * import.h -- read-only formats vhdkit imports from: qcow2 and VMDK.
 * They open as disks like any other (reads, extents, a backing chain), so
 * `vhdtool convert` turns them into VHD or VHDX; they are never written.
 *
 * Layout of the code:
 *  - import.c: detection, and what both formats share: the data path
 *    (pread/extents/prefetch over a format's map() of guest ranges), the
 *    refusal of every write, a cache of metadata tables, zlib inflation and
 *    the opening of a backing file.
 *  - qcow2.c, vmdk.c: header decoding, table walking, map().
 *
 * Invariants shared by both formats:
 *  - Every on-disk field is decoded with get_be* / get_le* (endian.h).
 *  - Every offset read from the file is checked against the file size
 *    before it is used; a range that does not fit is VHD_E_TRUNCATED (or
 *    VHD_E_CORRUPT when it cannot be right in any file) with a one-line
 *    message naming the structure, never a short or wrong read.
 *  - Reads are thread-safe: the only mutable state (table cache, last
 *    inflated unit) is guarded by mutexes; everything else is fixed at open.
 */
#ifndef LIBVHD_IMPORT_H
#define LIBVHD_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "disk.h"

/* From the first @len bytes of a file: is it one of ours?  Sets *fmt. */
bool import_detect(const uint8_t *head, size_t len, enum vhd_format *fmt);
int qcow2_open(vhd_disk *d, struct chain_ctx *ctx);
int vmdk_open(vhd_disk *d, struct chain_ctx *ctx);

/* ---- qcow2 (docs: qemu docs/interop/qcow2.txt) ----
 *
 * Header, big-endian:
 *   off size  field
 *     0    4  magic "QFI\xfb"
 *     4    4  version (2 or 3)
 *     8    8  backing_file_offset (0 = none)
 *    16    4  backing_file_size (bytes, no NUL)
 *    20    4  cluster_bits (9..21)
 *    24    8  size (virtual bytes)
 *    32    4  crypt_method (0 = none)
 *    36    4  l1_size (entries)
 *    40    8  l1_table_offset (cluster-aligned)
 *    48    8  refcount_table_offset      (not needed for reading)
 *    56    4  refcount_table_clusters
 *    60    4  nb_snapshots
 *    64    8  snapshots_offset
 *  version 3 only:
 *    72    8  incompatible_features (bit 0 dirty, 1 corrupt, 2 external
 *             data file, 3 compression type, 4 extended L2)
 *    80    8  compatible_features
 *    88    8  autoclear_features
 *    96    4  refcount_order
 *   100    4  header_length (>= 104, multiple of 8)
 *   104    1  compression_type (when header_length > 104; 0 = zlib)
 * Header extensions follow (type u32, length u32, data padded to 8) up to
 * the backing file name or the end of the first cluster.
 */
#define QCOW2_MAGIC		0x514649fbU	/* "QFI\xfb" */
#define QCOW2_V2_HEADER		72
#define QCOW2_V3_HEADER		104
#define QCOW2_MAX_L1		(32u << 20 >> 3)	/* entries (qemu's 32 MiB) */
#define QCOW2_MAX_BACKING_NAME	1023

#define QCOW2_INCOMPAT_DIRTY	(1ULL << 0)
#define QCOW2_INCOMPAT_CORRUPT	(1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ULL << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ULL << 3)
#define QCOW2_INCOMPAT_EXTL2	(1ULL << 4)
#define QCOW2_INCOMPAT_KNOWN	0x1fULL

#define QCOW2_EXT_END		0x00000000U
#define QCOW2_EXT_BACKING_FMT	0xe2792acaU

/* L1 entry: bits 9..55 L2 table offset; bit 63 "copied" (ignored). */
#define QCOW2_L1_OFFSET_MASK	0x00fffffffffffe00ULL
/* L2 entry: bit 62 compressed; standard clusters: bits 9..55 offset,
 * bit 0 reads-as-zero (version 3). */
#define QCOW2_L2_OFFSET_MASK	0x00fffffffffffe00ULL
#define QCOW2_L2_COMPRESSED	(1ULL << 62)
#define QCOW2_L2_ZERO		1ULL

struct qcow2_header {
	uint32_t version;		/* 2 or 3 */
	uint64_t backing_offset;	/* file offset of the backing name, 0 none */
	uint32_t backing_size;		/* bytes of the backing name */
	uint32_t cluster_bits;		/* log2 of the cluster size */
	uint64_t size;			/* virtual size in bytes */
	uint32_t crypt_method;		/* 0 = not encrypted */
	uint32_t l1_size;		/* L1 entries */
	uint64_t l1_offset;		/* file offset of the L1 table */
	uint64_t incompatible;		/* v3 feature bits, 0 for v2 */
	uint64_t compatible;
	uint64_t autoclear;
	uint32_t refcount_order;	/* 4 for v2 */
	uint32_t header_length;		/* 72 for v2 */
	uint8_t compression_type;	/* 0 = zlib */
};

/**
 * Decode and validate a qcow2 header from the first @len bytes of a file of
 * @file_size bytes (@len >= 112 unless the file is shorter).
 * @return 0, or VHD_E_FORMAT (no magic), VHD_E_TRUNCATED, VHD_E_CORRUPT,
 * VHD_E_UNSUPPORTED, with the message recorded on @d (or the thread when
 * @d is NULL).
 */
int qcow2_header_decode(vhd_disk *d, const uint8_t *buf, size_t len,
			uint64_t file_size, struct qcow2_header *h);

enum qcow2_cluster {
	QCOW2_UNALLOCATED,		/* backing file, or zeros */
	QCOW2_ZERO,			/* reads as zeros (v3 zero flag) */
	QCOW2_DATA,			/* at host, uncompressed */
	QCOW2_COMPRESSED,		/* deflate stream at host, <= csize bytes */
};

struct qcow2_l2 {
	enum qcow2_cluster kind;
	uint64_t host;			/* DATA/COMPRESSED: file offset */
	uint64_t csize;			/* COMPRESSED: bytes to read at most */
};

/**
 * Decode one L2 entry of an image with @cluster_bits and @version.  The
 * host range is not checked against the file (the caller knows its size).
 * @return 0, or VHD_E_CORRUPT (zero flag in v2, unaligned data cluster).
 */
int qcow2_l2_decode(uint64_t entry, unsigned cluster_bits, unsigned version,
		    struct qcow2_l2 *out);

/* ---- VMDK (VMware "Virtual Disk Format 1.1") ----
 *
 * Hosted sparse extent header, little-endian, one 512-byte sector:
 *   off size  field
 *     0    4  magic "KDMV"
 *     4    4  version (1..3)
 *     8    4  flags (bit 0 newline test valid, 1 redundant GD, 2 zeroed-
 *             grain GTEs, 16 compressed grains, 17 markers)
 *    12    8  capacity (sectors)
 *    20    8  grainSize (sectors, power of two)
 *    28    8  descriptorOffset (sectors, 0 = none)
 *    36    8  descriptorSize (sectors)
 *    44    4  numGTEsPerGT
 *    48    8  rgdOffset (sectors)
 *    56    8  gdOffset (sectors; GD_AT_END: see the footer)
 *    64    8  overHead (sectors of metadata before the first grain)
 *    72    1  uncleanShutdown
 *    73    4  '\n' ' ' '\r' '\n' (detects text-mode transfers)
 *    77    2  compressAlgorithm (0 none, 1 deflate)
 * Stream-optimized files end with a footer marker, a copy of the header
 * holding the real gdOffset, and an end-of-stream marker (3 sectors).
 * Markers: u64 value, u32 size, u32 type (when size is 0); a grain marker
 * is u64 LBA, u32 compressed size, then the zlib stream.
 */
#define VMDK_MAGIC		0x564d444bU	/* "KDMV" little-endian */
#define VMDK_FLAG_NL_TEST	(1U << 0)
#define VMDK_FLAG_RGD		(1U << 1)
#define VMDK_FLAG_ZERO_GRAIN	(1U << 2)
#define VMDK_FLAG_COMPRESSED	(1U << 16)
#define VMDK_FLAG_MARKERS	(1U << 17)
#define VMDK_GD_AT_END		0xffffffffffffffffULL
#define VMDK_COMPRESS_DEFLATE	1
#define VMDK_MARKER_EOS		0
#define VMDK_MARKER_FOOTER	3
#define VMDK_MAX_GRAIN_SECTORS	65536u		/* 32 MiB grains */
#define VMDK_MAX_GTES		512u		/* as qemu */
#define VMDK_MAX_GD_ENTRIES	(8u << 20)	/* 32 MiB of grain directory */
#define VMDK_MAX_CAPACITY	(1ULL << 54)	/* sectors: 8 EiB */
#define VMDK_MAX_DESCRIPTOR	(1u << 20)	/* bytes */
#define VMDK_MAX_EXTENTS	4096u

struct vmdk_sparse_header {
	uint32_t version;		/* 1..3 */
	uint32_t flags;			/* VMDK_FLAG_* */
	uint64_t capacity;		/* sectors */
	uint64_t grain_sectors;		/* power of two */
	uint64_t desc_offset;		/* sectors, 0 = no embedded descriptor */
	uint64_t desc_size;		/* sectors */
	uint32_t gtes_per_gt;		/* grain table entries per table */
	uint64_t rgd_offset;		/* sectors */
	uint64_t gd_offset;		/* sectors, or VMDK_GD_AT_END */
	uint64_t overhead;		/* sectors */
	uint8_t unclean;		/* uncleanShutdown */
	uint16_t compress;		/* compressAlgorithm */
};

/**
 * Decode and validate one hosted sparse extent header sector.
 * @return 0, or VHD_E_FORMAT (no magic), VHD_E_CORRUPT, VHD_E_UNSUPPORTED
 * (message on @d, or the thread when @d is NULL).
 */
int vmdk_sparse_header_decode(vhd_disk *d, const uint8_t buf[512],
			      struct vmdk_sparse_header *h);

enum vmdk_extent_type {
	VMDK_EXT_FLAT,			/* FLAT or VMFS: raw bytes at an offset */
	VMDK_EXT_SPARSE,		/* hosted sparse extent (KDMV) */
	VMDK_EXT_ZERO,			/* no file: zeros */
};

struct vmdk_extent_line {
	enum vmdk_extent_type type;
	uint64_t sectors;		/* extent length */
	uint64_t offset;		/* FLAT: start in the file, sectors */
	char *file;			/* owned; NULL for ZERO */
};

struct vmdk_descriptor {
	char *create_type;		/* owned, NULL if absent */
	char *parent_hint;		/* parentFileNameHint, owned, or NULL */
	struct vmdk_extent_line *ext;	/* owned array */
	unsigned next;			/* entries in ext */
};

/**
 * Parse descriptor text (@len bytes; stops at a NUL).  Extent lines are
 * checked (known type, sizes, file names); the caller decides what to do
 * with a parent hint.
 * @return 0, or VHD_E_CORRUPT / VHD_E_UNSUPPORTED / -ENOMEM with the
 * message on @d (or the thread).  @out is released on failure.
 */
int vmdk_descriptor_parse(vhd_disk *d, const char *text, size_t len,
			  struct vmdk_descriptor *out);
void vmdk_descriptor_release(struct vmdk_descriptor *desc);

/* ---- shared machinery (import.c) ---- */

/* What one guest range of an import layer maps to. */
struct import_map {
	enum layer_extent what;		/* DATA, ZERO or PARENT */
	uint64_t len;			/* guest bytes mapped, > 0 */
	struct vhd_io *io;		/* DATA: the file holding them */
	uint64_t host;			/* DATA: file offset of the first byte,
					   or of the compressed unit */
	bool compressed;		/* DATA stored in a compressed unit */
	uint32_t unit_skip;		/* compressed: offset in the unit */
	uint64_t unit_guest;		/* compressed: guest offset of the unit
					   (relative to its extent) */
	uint32_t unit_need;		/* compressed: bytes that must inflate */
	uint64_t unit_bytes;		/* compressed: stored bytes, at most */
	const void *ctx;		/* the format's own (VMDK: the extent) */
};

struct import_format {
	/* Map [off, off+len) (len > 0, inside the disk) from its start: the
	 * first run, which may be shorter than @len. */
	int (*map)(vhd_disk *d, uint64_t off, uint64_t len,
		   struct import_map *m);
	/* Inflate the compressed unit of @m into @out (unit_size bytes). */
	int (*inflate)(vhd_disk *d, const struct import_map *m, uint8_t *out);
};

/* A small cache of metadata tables (qcow2 L2, VMDK grain tables), keyed by
 * file and offset.  Lookups copy entries out under the lock. */
struct import_tcache {
	pthread_mutex_t lock;
	uint32_t max_bytes;		/* largest table */
	unsigned nslots;
	uint64_t clock;			/* LRU stamp source */
	struct import_tslot {
		struct vhd_io *io;	/* NULL = empty slot */
		uint64_t off;
		uint64_t stamp;
		uint8_t *buf;		/* max_bytes */
	} *slot;
};

/* State every import format's priv starts with. */
struct import_layer {
	const struct import_format *fmt;
	struct import_tcache tables;
	uint32_t unit_size;		/* inflated bytes of a compressed unit */
	pthread_mutex_t unit_lock;	/* guards the last inflated unit */
	uint8_t *unit_buf;		/* NULL until one was inflated */
	struct vhd_io *unit_io;		/* which unit unit_buf holds */
	uint64_t unit_host;
};

int import_layer_init(struct import_layer *l, const struct import_format *f,
		      uint32_t unit_size, uint32_t table_bytes);
void import_layer_release(struct import_layer *l);

/* Copy @n bytes at @pos of the @table_len-byte table at @off of @io.
 * Returns 0 or a negative errno / VHD_E_TRUNCATED (no message). */
int import_table_read(struct import_layer *l, struct vhd_io *io, uint64_t off,
		      uint32_t table_len, uint32_t pos, void *out, uint32_t n);

/* The data path: format_ops members of both formats. */
ssize_t import_pread(vhd_disk *d, void *buf, size_t len, uint64_t off);
int import_extents(vhd_disk *d, uint64_t off, uint64_t len,
		   layer_extent_fn fn, void *opaque);
int import_prefetch(vhd_disk *d, uint64_t off, uint64_t len);
ssize_t import_pwrite(vhd_disk *d, const void *buf, size_t len, uint64_t off);
int import_flush(vhd_disk *d);
int import_discard(vhd_disk *d, uint64_t off, uint64_t len);
int import_zero(vhd_disk *d, uint64_t off, uint64_t len, unsigned flags);

/* Open checks common to both formats: read-only, no O_DIRECT.  @name is
 * "qcow2" or "VMDK". */
int import_check_open_flags(vhd_disk *d, const char *name);

/**
 * Inflate @in into @out.  @window_bits as for inflateInit2 (-12: raw
 * deflate as qcow2 writes it; 15: zlib stream as VMDK).
 * @return 1 when the stream ended, 0 when @out filled up first, or
 * VHD_E_CORRUPT (bad data) / -ENOMEM; *produced = bytes written.
 */
int import_inflate(const uint8_t *in, size_t in_len, uint8_t *out,
		   size_t out_len, int window_bits, size_t *produced);

/**
 * Open the backing file @name of @d (relative to @d's folder unless
 * absolute) as d->parent / d->parent_path, unless VHD_OPEN_NOPARENT.  With
 * @declared other than VHD_FMT_AUTO, the file must be of that format.
 * @return 0 or an error with a message naming @d and the backing file.
 */
int import_open_backing(vhd_disk *d, struct chain_ctx *ctx, const char *name,
			enum vhd_format declared);

/* Report [host, host+len) of @io as guest [off, off+len): DATA, or ZERO
 * where the file has holes. */
int import_host_extents(struct vhd_io *io, uint64_t host, uint64_t off,
			uint64_t len, layer_extent_fn fn, void *opaque);

#endif /* LIBVHD_IMPORT_H */
