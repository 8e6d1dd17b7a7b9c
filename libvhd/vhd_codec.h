/*
 * vhd_codec.h -- pure encoders/decoders for the VHD (v1, "conectix") format.
 *
 * Nothing here does I/O or allocates; every function works on caller buffers
 * so the codecs can be unit-tested and fuzzed on their own.  All fields are
 * big-endian on disk.  Layouts (offsets in bytes):
 *
 * Footer (512 B, at EOF; a copy at offset 0 for dynamic/differencing disks;
 * Virtual PC before 2004 wrote only 511 bytes):
 *   0  8 cookie "conectix"          40 8 original size
 *   8  4 features (bit1 always set) 48 8 current size
 *  12  4 format version 0x00010000  56 4 geometry: cyl u16, heads u8, spt u8
 *  16  8 data offset (header; fixed 60 4 disk type 2 fixed/3 dynamic/4 diff
 *        disks: all ones)           64 4 checksum
 *  24  4 timestamp (s since 2000)   68 16 UUID
 *  28  4 creator application        84 1 saved state
 *  32  4 creator version            85 1 (blktap: hidden flag) -- reserved
 *  36  4 creator host OS            86..511 reserved, zero
 *
 * Dynamic header (1024 B, cookie "cxsparse", at footer.data_offset):
 *   0  8 cookie                     40 16 parent UUID
 *   8  8 data offset (all ones)     56 4 parent timestamp
 *  16  8 table (BAT) offset         60 4 reserved
 *  24  4 header version 0x00010000  64 512 parent name, UTF-16BE
 *  28  4 max table entries         576 8x24 parent locators
 *  32  4 block size                768 256 reserved
 *  36  4 checksum
 *
 * Parent locator (24 B): code u32, data space u32, data length u32,
 * reserved u32, data offset u64.  Locator data is UTF-16LE.
 *
 * Checksum (footer and header): one's complement of the byte sum of the
 * structure with the checksum field taken as zero.
 *
 * BAT: max_table_entries u32 entries, padded to a 512 B multiple; an entry is
 * the sector of the block's bitmap, 0xFFFFFFFF when unallocated.  A block is
 * its sector bitmap (block_size/512 bits, MSB first, padded to 512 B) followed
 * by block_size bytes of data.
 */
#ifndef LIBVHD_VHD_CODEC_H
#define LIBVHD_VHD_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VHD_SECTOR            512u
#define VHD_FOOTER_SIZE       512u
#define VHD_HEADER_SIZE       1024u
#define VHD_LOCATOR_COUNT     8
#define VHD_PARENT_NAME_UNITS 256	/* UTF-16 code units in the header */
#define VHD_BAT_UNUSED        0xFFFFFFFFu
#define VHD_VERSION           0x00010000u
#define VHD_FEATURES_RESERVED 0x2u
#define VHD_FEATURE_TEMPORARY 0x1u
#define VHD_NO_DATA_OFFSET    0xFFFFFFFFFFFFFFFFull
#define VHD_EPOCH_UNIX        946684800	/* 2000-01-01T00:00:00Z */
#define VHD_MIN_BLOCK         (4u << 10)
#define VHD_MAX_BLOCK         (256u << 20)
/* 65535 cylinders x 16 heads x 255 sectors: the CHS (ATA) maximum, 127.5 GiB */
#define VHD_CHS_MAX_SECTORS   (65535ull * 16 * 255)

/* Locator platform codes. */
#define VHD_PLAT_NONE 0
#define VHD_PLAT_WI2R 0x57693272u	/* "Wi2r" deprecated */
#define VHD_PLAT_WI2K 0x5769326Bu	/* "Wi2k" deprecated */
#define VHD_PLAT_W2RU 0x57327275u	/* "W2ru" relative path, UTF-16LE */
#define VHD_PLAT_W2KU 0x57326B75u	/* "W2ku" absolute path, UTF-16LE */
#define VHD_PLAT_MAC  0x4D616320u	/* "Mac " */
#define VHD_PLAT_MACX 0x4D616358u	/* "MacX" file URL, UTF-8 */

#define VHD_OS_WINDOWS 0x5769326Bu	/* "Wi2k" */

struct vhd_footer {
	uint32_t features;
	uint32_t version;
	uint64_t data_offset;
	uint32_t timestamp;
	uint8_t creator_app[4];
	uint32_t creator_version;
	uint32_t creator_os;
	uint64_t original_size;
	uint64_t current_size;
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors_per_track;
	uint32_t disk_type;
	uint32_t checksum;		/* as stored */
	uint8_t uuid[16];
	uint8_t saved_state;
	uint8_t hidden;			/* byte 85 (blktap) */
};

struct vhd_locator {
	uint32_t code;
	uint32_t data_space;		/* as stored: sectors or bytes */
	uint32_t data_length;		/* bytes */
	uint64_t data_offset;
};

struct vhd_header {
	uint64_t data_offset;
	uint64_t table_offset;
	uint32_t version;
	uint32_t max_table_entries;
	uint32_t block_size;
	uint32_t checksum;		/* as stored */
	uint8_t parent_uuid[16];
	uint32_t parent_timestamp;
	uint16_t parent_name[VHD_PARENT_NAME_UNITS];	/* host order units */
	struct vhd_locator loc[VHD_LOCATOR_COUNT];
};

/* One's-complement byte-sum checksum over @len bytes, skipping the 4-byte
 * field at @skip. */
uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t skip);

/* Decode a footer from @len (512 or 511) bytes.  Returns 0, VHD_E_FORMAT
 * (cookie), VHD_E_CHECKSUM (with @f filled so the caller can report it) or
 * VHD_E_UNSUPPORTED (version).  *@computed gets the computed checksum. */
int vhd_footer_decode(const uint8_t *buf, size_t len, struct vhd_footer *f,
		      uint32_t *computed);
/* Encode into 512 bytes, computing the checksum (stored back into @f). */
void vhd_footer_encode(struct vhd_footer *f, uint8_t buf[VHD_FOOTER_SIZE]);

int vhd_header_decode(const uint8_t buf[VHD_HEADER_SIZE], struct vhd_header *h,
		      uint32_t *computed);
void vhd_header_encode(struct vhd_header *h, uint8_t buf[VHD_HEADER_SIZE]);

/* Bytes a locator reserves: Windows stores data_space in bytes, the spec in
 * sectors; values under 512 are sectors, others bytes (blktap's rule). */
uint64_t vhd_locator_space(const struct vhd_locator *l);

/* Bitmap bytes for a block (one bit per sector, padded to 512). */
static inline uint32_t vhd_bitmap_size(uint32_t block_size)
{
	uint32_t bits = block_size / VHD_SECTOR;
	uint32_t bytes = (bits + 7) / 8;
	return (bytes + VHD_SECTOR - 1) & ~(VHD_SECTOR - 1);
}

/* BAT bytes on disk for @entries, padded to 512. */
static inline uint64_t vhd_bat_size(uint32_t entries)
{
	return ((uint64_t)entries * 4 + VHD_SECTOR - 1) & ~(uint64_t)(VHD_SECTOR - 1);
}

/* MSB-first sector bitmaps (bit 7 of byte 0 is sector 0). */
static inline bool vhd_bit_test(const uint8_t *bm, uint32_t i)
{
	return __atomic_load_n(&bm[i >> 3], __ATOMIC_RELAXED) & (0x80u >> (i & 7));
}

/* Length of the run of equal bits starting at @i, not past @end; the bit
 * value goes to *@value. */
uint32_t vhd_bit_run(const uint8_t *bm, uint32_t i, uint32_t end, bool *value);
/* Set bits [@i, @end) atomically (readers may scan concurrently). */
void vhd_bits_set(uint8_t *bm, uint32_t i, uint32_t end);
/* True when bits [@i, @end) are all set. */
bool vhd_bits_all_set(const uint8_t *bm, uint32_t i, uint32_t end);

/* CHS geometry per the VHD specification (capped at 65535/16/255). */
void vhd_chs(uint64_t size, uint16_t *cyl, uint8_t *heads, uint8_t *spt);
static inline uint64_t vhd_chs_bytes(uint16_t c, uint8_t h, uint8_t s)
{
	return (uint64_t)c * h * s * VHD_SECTOR;
}

/* UTF-8 <-> UTF-16 (code units in host order).  utf8_to_utf16 returns the
 * unit count or -EILSEQ / -ENAMETOOLONG.  utf16_to_utf8 returns the byte
 * count (NUL-terminated output) or -EILSEQ for unpaired surrogates (when
 * @lenient, they become U+FFFD) or -ENAMETOOLONG. */
int vhd_utf8_to_utf16(const char *s, uint16_t *out, size_t max_units);
int vhd_utf16_to_utf8(const uint16_t *in, size_t units, char *out,
		      size_t out_size, bool lenient);

/* Size in use per the creator-aware rule (docs/vhd-format.md); *@source gets
 * "current" or "chs". */
uint64_t vhd_footer_virtual_size(const struct vhd_footer *f, int rule,
				 const char **source);

/* Random (version 4) UUID. */
int vhd_uuid_generate(uint8_t uuid[16]);

#endif /* LIBVHD_VHD_CODEC_H */
