/*
 * vhdx_codec.c -- VHDX headers, region and metadata tables, log entries,
 * GUIDs.  Layouts in vhdx_codec.h.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "crc32c.h"
#include "endian.h"
#include "libvhd.h"
#include "vhd_codec.h"
#include "vhdx_codec.h"

/* GUIDs in on-disk byte order (MS-VHDX 2.2, 2.6). */
#define G(a, b, c, d0, d1, d2, d3, d4, d5, d6, d7)                          \
	{ { (a) & 0xFF, (a) >> 8 & 0xFF, (a) >> 16 & 0xFF, (a) >> 24 & 0xFF,  \
	    (b) & 0xFF, (b) >> 8 & 0xFF, (c) & 0xFF, (c) >> 8 & 0xFF,         \
	    d0, d1, d2, d3, d4, d5, d6, d7 } }

const vhdx_guid VHDX_GUID_BAT =
	G(0x2DC27766u, 0xF623u, 0x4200u, 0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08);
const vhdx_guid VHDX_GUID_METADATA =
	G(0x8B7CA206u, 0x4790u, 0x4B9Au, 0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E);
const vhdx_guid VHDX_GUID_FILE_PARAMS =
	G(0xCAA16737u, 0xFA36u, 0x4D43u, 0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B);
const vhdx_guid VHDX_GUID_DISK_SIZE =
	G(0x2FA54224u, 0xCD1Bu, 0x4876u, 0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8);
const vhdx_guid VHDX_GUID_PAGE83 =
	G(0xBECA12ABu, 0xB2E6u, 0x4523u, 0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46);
const vhdx_guid VHDX_GUID_LOGICAL_SECTOR =
	G(0x8141BF1Du, 0xA96Fu, 0x4709u, 0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F);
const vhdx_guid VHDX_GUID_PHYSICAL_SECTOR =
	G(0xCDA348C7u, 0x445Du, 0x4471u, 0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56);
const vhdx_guid VHDX_GUID_PARENT_LOCATOR =
	G(0xA8D35F2Du, 0xB30Bu, 0x454Du, 0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C);
const vhdx_guid VHDX_GUID_PARENT_TYPE =
	G(0xB04AEFB7u, 0xD19Eu, 0x4A81u, 0xB7, 0x89, 0x25, 0xB8, 0xE9, 0x44, 0x59, 0x13);

bool vhdx_guid_is_zero(const vhdx_guid *g)
{
	static const vhdx_guid zero;

	return !memcmp(g, &zero, sizeof(zero));
}

bool vhdx_guid_eq(const vhdx_guid *a, const vhdx_guid *b)
{
	return !memcmp(a, b, sizeof(*a));
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int vhdx_guid_parse(const char *s, vhdx_guid *g)
{
	uint8_t v[16];
	int n = 0;
	size_t len = strlen(s);

	if (len == 38 && s[0] == '{' && s[37] == '}') {
		s++;
		len = 36;
	}
	if (len != 36)
		return -EINVAL;
	for (size_t i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			continue;
		}
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		v[n++] = (uint8_t)(hi << 4 | lo);
		i++;
	}
	/* Text order is Data1..Data4 big-endian-looking; disk order is LE. */
	g->b[0] = v[3]; g->b[1] = v[2]; g->b[2] = v[1]; g->b[3] = v[0];
	g->b[4] = v[5]; g->b[5] = v[4];
	g->b[6] = v[7]; g->b[7] = v[6];
	memcpy(g->b + 8, v + 8, 8);
	return 0;
}

void vhdx_guid_format(const vhdx_guid *g, char out[39])
{
	const uint8_t *b = g->b;

	snprintf(out, 39,
		 "{%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x}",
		 b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
}

void vhdx_guid_to_rfc(const vhdx_guid *g, uint8_t out[16])
{
	const uint8_t *b = g->b;
	uint8_t t[16] = { b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6] };

	memcpy(t + 8, b + 8, 8);
	memcpy(out, t, 16);
}

void vhdx_guid_from_rfc(const uint8_t in[16], vhdx_guid *g)
{
	vhdx_guid t;

	memcpy(&t, in, 16);
	vhdx_guid_to_rfc(&t, g->b);	/* the swap is its own inverse */
}

int vhdx_guid_random(vhdx_guid *g)
{
	return vhd_uuid_generate(g->b);
}

static uint32_t crc_with_zero_field(const uint8_t *buf, size_t len, size_t field)
{
	static const uint8_t zero4[4];
	uint32_t c = crc32c(0, buf, field);

	c = crc32c(c, zero4, 4);
	return crc32c(c, buf + field + 4, len - field - 4);
}

int vhdx_header_decode(const uint8_t buf[VHDX_HEADER_SIZE], struct vhdx_header *h)
{
	if (memcmp(buf, "head", 4))
		return VHD_E_FORMAT;
	memset(h, 0, sizeof(*h));
	h->checksum = get_le32(buf + 4);
	h->sequence = get_le64(buf + 8);
	memcpy(&h->file_write, buf + 16, 16);
	memcpy(&h->data_write, buf + 32, 16);
	memcpy(&h->log_guid, buf + 48, 16);
	h->log_version = get_le16(buf + 64);
	h->version = get_le16(buf + 66);
	h->log_length = get_le32(buf + 68);
	h->log_offset = get_le64(buf + 72);
	if (crc_with_zero_field(buf, VHDX_HEADER_SIZE, 4) != h->checksum)
		return VHD_E_CHECKSUM;
	return 0;
}

void vhdx_header_encode(struct vhdx_header *h, uint8_t buf[VHDX_HEADER_SIZE])
{
	memset(buf, 0, VHDX_HEADER_SIZE);
	memcpy(buf, "head", 4);
	put_le64(buf + 8, h->sequence);
	memcpy(buf + 16, &h->file_write, 16);
	memcpy(buf + 32, &h->data_write, 16);
	memcpy(buf + 48, &h->log_guid, 16);
	put_le16(buf + 64, h->log_version);
	put_le16(buf + 66, h->version);
	put_le32(buf + 68, h->log_length);
	put_le64(buf + 72, h->log_offset);
	h->checksum = crc32c(0, buf, VHDX_HEADER_SIZE);
	put_le32(buf + 4, h->checksum);
}

int vhdx_region_decode(const uint8_t buf[VHDX_REGION_SIZE], struct vhdx_region_table *t)
{
	uint32_t crc;

	if (memcmp(buf, "regi", 4))
		return VHD_E_FORMAT;
	crc = get_le32(buf + 4);
	if (crc_with_zero_field(buf, VHDX_REGION_SIZE, 4) != crc)
		return VHD_E_CHECKSUM;
	t->count = get_le32(buf + 8);
	if (t->count > VHDX_MAX_ENTRIES)
		return VHD_E_CORRUPT;
	for (uint32_t i = 0; i < t->count; i++) {
		const uint8_t *p = buf + 16 + 32 * i;
		memcpy(&t->e[i].guid, p, 16);
		t->e[i].offset = get_le64(p + 16);
		t->e[i].length = get_le32(p + 24);
		t->e[i].required = get_le32(p + 28) & 1;
	}
	return 0;
}

void vhdx_region_encode(const struct vhdx_region_table *t, uint8_t buf[VHDX_REGION_SIZE])
{
	memset(buf, 0, VHDX_REGION_SIZE);
	memcpy(buf, "regi", 4);
	put_le32(buf + 8, t->count);
	for (uint32_t i = 0; i < t->count; i++) {
		uint8_t *p = buf + 16 + 32 * i;
		memcpy(p, &t->e[i].guid, 16);
		put_le64(p + 16, t->e[i].offset);
		put_le32(p + 24, t->e[i].length);
		put_le32(p + 28, t->e[i].required ? 1 : 0);
	}
	put_le32(buf + 4, crc32c(0, buf, VHDX_REGION_SIZE));
}

int vhdx_meta_decode(const uint8_t buf[VHDX_META_TABLE_SIZE], struct vhdx_meta_table *t)
{
	if (memcmp(buf, "metadata", 8))
		return VHD_E_FORMAT;
	t->count = get_le16(buf + 10);
	if (t->count > VHDX_MAX_ENTRIES)
		return VHD_E_CORRUPT;
	for (uint16_t i = 0; i < t->count; i++) {
		const uint8_t *p = buf + 32 + 32 * i;
		memcpy(&t->e[i].id, p, 16);
		t->e[i].offset = get_le32(p + 16);
		t->e[i].length = get_le32(p + 20);
		t->e[i].flags = get_le32(p + 24);
	}
	return 0;
}

void vhdx_meta_encode(const struct vhdx_meta_table *t, uint8_t buf[VHDX_META_TABLE_SIZE])
{
	memset(buf, 0, VHDX_META_TABLE_SIZE);
	memcpy(buf, "metadata", 8);
	put_le16(buf + 10, t->count);
	for (uint16_t i = 0; i < t->count; i++) {
		uint8_t *p = buf + 32 + 32 * i;
		memcpy(p, &t->e[i].id, 16);
		put_le32(p + 16, t->e[i].offset);
		put_le32(p + 20, t->e[i].length);
		put_le32(p + 24, t->e[i].flags);
	}
}

int vhdx_log_header_decode(const uint8_t *buf, struct vhdx_log_header *h)
{
	if (memcmp(buf, "loge", 4))
		return VHD_E_FORMAT;
	h->checksum = get_le32(buf + 4);
	h->entry_length = get_le32(buf + 8);
	h->tail = get_le32(buf + 12);
	h->sequence = get_le64(buf + 16);
	h->descriptor_count = get_le32(buf + 24);
	memcpy(&h->log_guid, buf + 32, 16);
	h->flushed_file_offset = get_le64(buf + 48);
	h->last_file_offset = get_le64(buf + 56);
	if (h->entry_length < VHDX_LOG_SECTOR || h->entry_length % VHDX_LOG_SECTOR ||
	    h->tail % VHDX_LOG_SECTOR || h->sequence == 0)
		return VHD_E_CORRUPT;
	if ((uint64_t)vhdx_log_header_sectors(h->descriptor_count) * VHDX_LOG_SECTOR >
	    h->entry_length)
		return VHD_E_CORRUPT;
	return 0;
}

bool vhdx_log_entry_crc_ok(const uint8_t *entry, uint32_t len)
{
	return crc_with_zero_field(entry, len, 4) == get_le32(entry + 4);
}

int vhdx_log_desc_decode(const uint8_t *buf, uint32_t i, struct vhdx_log_desc *d)
{
	const uint8_t *p = buf + 64 + 32 * (size_t)i;

	memset(d, 0, sizeof(*d));
	if (!memcmp(p, "zero", 4)) {
		d->zero = true;
		d->zero_length = get_le64(p + 8);
		d->file_offset = get_le64(p + 16);
		d->sequence = get_le64(p + 24);
		if (d->zero_length % VHDX_LOG_SECTOR)
			return VHD_E_CORRUPT;
	} else if (!memcmp(p, "desc", 4)) {
		d->trailing = get_le32(p + 4);
		d->leading = get_le64(p + 8);
		d->file_offset = get_le64(p + 16);
		d->sequence = get_le64(p + 24);
	} else {
		return VHD_E_CORRUPT;
	}
	if (d->file_offset % VHDX_LOG_SECTOR)
		return VHD_E_CORRUPT;
	return 0;
}

int vhdx_log_data_decode(const uint8_t sector[VHDX_LOG_SECTOR],
			 const struct vhdx_log_desc *d, uint64_t sequence,
			 uint8_t page[VHDX_LOG_SECTOR])
{
	uint64_t seq;

	if (memcmp(sector, "data", 4))
		return VHD_E_CORRUPT;
	seq = (uint64_t)get_le32(sector + 4) << 32 | get_le32(sector + 4092);
	if (seq != sequence || d->sequence != sequence)
		return VHD_E_CORRUPT;
	put_le64(page, d->leading);
	memcpy(page + 8, sector + 8, 4084);
	put_le32(page + 4092, d->trailing);
	return 0;
}

void vhdx_log_entry_encode(uint8_t *out, uint64_t sequence, uint32_t tail,
			   const vhdx_guid *log_guid, uint64_t flushed_off,
			   uint64_t last_off, const uint8_t *pages,
			   const uint64_t *offsets, uint32_t n)
{
	uint32_t hs = vhdx_log_header_sectors(n);
	uint32_t len = (hs + n) * VHDX_LOG_SECTOR;

	memset(out, 0, (size_t)hs * VHDX_LOG_SECTOR);
	memcpy(out, "loge", 4);
	put_le32(out + 8, len);
	put_le32(out + 12, tail);
	put_le64(out + 16, sequence);
	put_le32(out + 24, n);
	memcpy(out + 32, log_guid, 16);
	put_le64(out + 48, flushed_off);
	put_le64(out + 56, last_off);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *pg = pages + (size_t)i * VHDX_LOG_SECTOR;
		uint8_t *d = out + 64 + 32 * (size_t)i;
		uint8_t *s = out + (size_t)(hs + i) * VHDX_LOG_SECTOR;
		memcpy(d, "desc", 4);
		put_le32(d + 4, get_le32(pg + 4092));
		put_le64(d + 8, get_le64(pg));
		put_le64(d + 16, offsets[i]);
		put_le64(d + 24, sequence);
		memcpy(s, "data", 4);
		put_le32(s + 4, (uint32_t)(sequence >> 32));
		memcpy(s + 8, pg + 8, 4084);
		put_le32(s + 4092, (uint32_t)sequence);
	}
	put_le32(out + 4, crc32c(0, out, len));
}
