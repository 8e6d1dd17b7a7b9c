/*
 * vhdx_codec.h -- pure encoders/decoders for VHDX (MS-VHDX), little-endian,
 * CRC-32C.  No I/O, no allocation.
 *
 * File layout (offsets in bytes):
 *   0        file type identifier (64 KiB): "vhdxfile", creator UTF-16LE at 8
 *   64 KiB   header 1 (4 KiB)        128 KiB  header 2
 *   192 KiB  region table 1 (64 KiB) 256 KiB  region table 2
 *   then 1 MiB-aligned objects: log, metadata region, BAT, payload blocks,
 *   sector bitmap blocks (1 MiB each).
 *
 * Header (4 KiB; CRC-32C over all 4 KiB, checksum field zero):
 *   0 "head"  4 checksum  8 sequence u64  16 FileWriteGuid  32 DataWriteGuid
 *   48 LogGuid  64 LogVersion u16 (0)  66 Version u16 (1)  68 LogLength u32
 *   72 LogOffset u64
 * Region table (64 KiB; CRC over 64 KiB): 0 "regi" 4 checksum 8 count u32;
 *   entries from 16, 32 B: GUID, FileOffset u64, Length u32, flags u32
 *   (bit 0 Required).
 * Metadata table (64 KiB at the region's start): 0 "metadata" 10 count u16;
 *   entries from 32, 32 B: ItemId GUID, Offset u32 (from the region start,
 *   >= 64 KiB), Length u32, flags u32 (bit0 IsUser, bit1 IsVirtualDisk,
 *   bit2 IsRequired), reserved.
 * Log entry: 64 B header ("loge", checksum over EntryLength bytes, Entry-
 *   Length, Tail, SequenceNumber u64, DescriptorCount, reserved, LogGuid,
 *   FlushedFileOffset u64, LastFileOffset u64), then 32 B descriptors in the
 *   same 4 KiB sectors, then one 4 KiB data sector per data descriptor.
 *   Data descriptor: "desc", TrailingBytes u32, LeadingBytes u64,
 *   FileOffset u64, SequenceNumber u64.  Zero descriptor: "zero", reserved,
 *   ZeroLength u64, FileOffset u64, SequenceNumber u64.  Data sector:
 *   "data", SequenceHigh u32, 4084 data bytes, SequenceLow u32; the page is
 *   LeadingBytes(8) + data(4084) + TrailingBytes(4).
 * BAT entry u64: state bits 0-2, FileOffsetMB bits 20-63.
 *
 * GUIDs are kept as the 16 bytes found on disk (Data1, Data2, Data3 little-
 * endian, then Data4).
 */
#ifndef LIBVHD_VHDX_CODEC_H
#define LIBVHD_VHDX_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VHDX_MiB              (1024u * 1024u)
#define VHDX_HEADER_SIZE      4096u
#define VHDX_HEADER1_OFF      (64u * 1024u)
#define VHDX_HEADER2_OFF      (128u * 1024u)
#define VHDX_REGION1_OFF      (192u * 1024u)
#define VHDX_REGION2_OFF      (256u * 1024u)
#define VHDX_REGION_SIZE      (64u * 1024u)
#define VHDX_META_TABLE_SIZE  (64u * 1024u)
#define VHDX_MAX_ENTRIES      2047
#define VHDX_LOG_SECTOR       4096u
#define VHDX_MAX_SIZE         (64ull << 40)
#define VHDX_MIN_BLOCK        VHDX_MiB
#define VHDX_MAX_BLOCK        (256u * VHDX_MiB)
#define VHDX_SB_BLOCK         VHDX_MiB	/* sector bitmap block */

/* BAT states */
#define VHDX_PAYLOAD_NOT_PRESENT       0
#define VHDX_PAYLOAD_UNDEFINED         1
#define VHDX_PAYLOAD_ZERO              2
#define VHDX_PAYLOAD_UNMAPPED          3
#define VHDX_PAYLOAD_UNMAPPED_V095     5
#define VHDX_PAYLOAD_FULLY_PRESENT     6
#define VHDX_PAYLOAD_PARTIALLY_PRESENT 7
#define VHDX_SB_NOT_PRESENT            0
#define VHDX_SB_PRESENT                6

#define VHDX_META_USER      0x1
#define VHDX_META_VDISK     0x2
#define VHDX_META_REQUIRED  0x4

#define VHDX_PARAM_LEAVE_ALLOCATED 0x1
#define VHDX_PARAM_HAS_PARENT      0x2

typedef struct { uint8_t b[16]; } vhdx_guid;

extern const vhdx_guid VHDX_GUID_BAT, VHDX_GUID_METADATA,
	VHDX_GUID_FILE_PARAMS, VHDX_GUID_DISK_SIZE, VHDX_GUID_PAGE83,
	VHDX_GUID_LOGICAL_SECTOR, VHDX_GUID_PHYSICAL_SECTOR,
	VHDX_GUID_PARENT_LOCATOR, VHDX_GUID_PARENT_TYPE;

struct vhdx_header {
	uint32_t checksum;
	uint64_t sequence;
	vhdx_guid file_write, data_write, log_guid;
	uint16_t log_version, version;
	uint32_t log_length;
	uint64_t log_offset;
};

struct vhdx_region {
	vhdx_guid guid;
	uint64_t offset;
	uint32_t length;
	bool required;
};

struct vhdx_region_table {
	uint32_t count;
	struct vhdx_region e[VHDX_MAX_ENTRIES];
};

struct vhdx_meta_entry {
	vhdx_guid id;
	uint32_t offset, length, flags;
};

struct vhdx_meta_table {
	uint16_t count;
	struct vhdx_meta_entry e[VHDX_MAX_ENTRIES];
};

struct vhdx_log_header {
	uint32_t checksum;
	uint32_t entry_length;
	uint32_t tail;
	uint64_t sequence;
	uint32_t descriptor_count;
	vhdx_guid log_guid;
	uint64_t flushed_file_offset;
	uint64_t last_file_offset;
};

struct vhdx_log_desc {
	bool zero;		/* zero descriptor, else data */
	uint32_t trailing;	/* data */
	uint64_t leading;	/* data */
	uint64_t zero_length;	/* zero */
	uint64_t file_offset;
	uint64_t sequence;
};

bool vhdx_guid_is_zero(const vhdx_guid *g);
bool vhdx_guid_eq(const vhdx_guid *a, const vhdx_guid *b);
/* "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}" (braces optional, any case)
 * <-> GUID; formatted lower case, as MS-VHDX 2.6.2.6.3 requires for
 * parent_linkage. */
int vhdx_guid_parse(const char *s, vhdx_guid *g);
void vhdx_guid_format(const vhdx_guid *g, char out[39]);
int vhdx_guid_random(vhdx_guid *g);
/* GUID <-> the 16 bytes in text (RFC 4122) order, as struct vhd_info and
 * vhd_uuid_format() use them. */
void vhdx_guid_to_rfc(const vhdx_guid *g, uint8_t out[16]);
void vhdx_guid_from_rfc(const uint8_t in[16], vhdx_guid *g);

/* Header: decode checks signature and CRC; returns 0, VHD_E_FORMAT or
 * VHD_E_CHECKSUM. */
int vhdx_header_decode(const uint8_t buf[VHDX_HEADER_SIZE], struct vhdx_header *h);
void vhdx_header_encode(struct vhdx_header *h, uint8_t buf[VHDX_HEADER_SIZE]);

int vhdx_region_decode(const uint8_t buf[VHDX_REGION_SIZE], struct vhdx_region_table *t);
void vhdx_region_encode(const struct vhdx_region_table *t, uint8_t buf[VHDX_REGION_SIZE]);

int vhdx_meta_decode(const uint8_t buf[VHDX_META_TABLE_SIZE], struct vhdx_meta_table *t);
void vhdx_meta_encode(const struct vhdx_meta_table *t, uint8_t buf[VHDX_META_TABLE_SIZE]);

/* Log entry header at the start of @buf (at least 4 KiB).  The CRC needs
 * the whole entry: vhdx_log_entry_crc_ok(). */
int vhdx_log_header_decode(const uint8_t *buf, struct vhdx_log_header *h);
bool vhdx_log_entry_crc_ok(const uint8_t *entry, uint32_t len);
/* Descriptor @i of an entry whose first sectors are in @buf. */
int vhdx_log_desc_decode(const uint8_t *buf, uint32_t i, struct vhdx_log_desc *d);
/* Rebuild a 4 KiB page from a data descriptor and its data sector; checks
 * the sector's signature and sequence.  Returns 0 or VHD_E_CORRUPT. */
int vhdx_log_data_decode(const uint8_t sector[VHDX_LOG_SECTOR],
			 const struct vhdx_log_desc *d, uint64_t sequence,
			 uint8_t page[VHDX_LOG_SECTOR]);
/* Sectors the header and @ndesc descriptors take. */
static inline uint32_t vhdx_log_header_sectors(uint32_t ndesc)
{
	return (64 + 32 * ndesc + VHDX_LOG_SECTOR - 1) / VHDX_LOG_SECTOR;
}
/* Build an entry of data pages: @pages (n x 4 KiB) going to @offsets.
 * @out holds (header sectors + n) x 4 KiB. */
void vhdx_log_entry_encode(uint8_t *out, uint64_t sequence, uint32_t tail,
			   const vhdx_guid *log_guid, uint64_t flushed_off,
			   uint64_t last_off, const uint8_t *pages,
			   const uint64_t *offsets, uint32_t n);

/* BAT entries. */
static inline uint64_t vhdx_bat_make(uint32_t state, uint64_t file_off)
{
	return (file_off / VHDX_MiB) << 20 | state;
}
static inline uint32_t vhdx_bat_state(uint64_t e)
{
	return (uint32_t)(e & 7);
}
static inline uint64_t vhdx_bat_offset(uint64_t e)
{
	return (e >> 20) * VHDX_MiB;
}

/* LSB-first sector bitmaps (bit 0 of byte 0 is the first sector). */
static inline bool vhdx_bit_test(const uint8_t *bm, uint64_t i)
{
	return __atomic_load_n(&bm[i >> 3], __ATOMIC_RELAXED) & (1u << (i & 7));
}

#endif /* LIBVHD_VHDX_CODEC_H */
