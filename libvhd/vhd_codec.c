/*
 * vhd_codec.c -- VHD footer, dynamic header and parent locator codecs.
 * Layouts are documented in vhd_codec.h.
 */
#include <errno.h>
#include <string.h>

#include "libvhd.h"
#include "endian.h"
#include "vhd_codec.h"

static const char footer_cookie[8] = "conectix";
static const char header_cookie[8] = "cxsparse";

uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t skip)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < len; i++) {
		if (i >= skip && i < skip + 4)
			continue;
		sum += buf[i];
	}
	return ~sum;
}

int vhd_footer_decode(const uint8_t *buf, size_t len, struct vhd_footer *f,
		      uint32_t *computed)
{
	uint8_t full[VHD_FOOTER_SIZE];

	if (len != VHD_FOOTER_SIZE && len != VHD_FOOTER_SIZE - 1)
		return -EINVAL;
	/* A 511-byte footer lacks the last reserved byte, which is zero. */
	memset(full, 0, sizeof(full));
	memcpy(full, buf, len);
	if (memcmp(full, footer_cookie, 8) != 0)
		return VHD_E_FORMAT;

	memset(f, 0, sizeof(*f));
	f->features = get_be32(full + 8);
	f->version = get_be32(full + 12);
	f->data_offset = get_be64(full + 16);
	f->timestamp = get_be32(full + 24);
	memcpy(f->creator_app, full + 28, 4);
	f->creator_version = get_be32(full + 32);
	f->creator_os = get_be32(full + 36);
	f->original_size = get_be64(full + 40);
	f->current_size = get_be64(full + 48);
	f->cylinders = get_be16(full + 56);
	f->heads = full[58];
	f->sectors_per_track = full[59];
	f->disk_type = get_be32(full + 60);
	f->checksum = get_be32(full + 64);
	memcpy(f->uuid, full + 68, 16);
	f->saved_state = full[84];
	f->hidden = full[85];

	*computed = vhd_checksum(full, VHD_FOOTER_SIZE, 64);
	if (*computed != f->checksum) {
		/* blktap creator versions 0.1 and 1.1 summed the footer without
		 * the hidden byte (vhd-facts 1.7); accept that variant from
		 * them only. */
		uint32_t without_hidden = ~(~*computed - f->hidden);
		bool old_tap = !memcmp(f->creator_app, "tap", 3) &&
			       (f->creator_version == 0x00000001 ||
				f->creator_version == 0x00010001);
		if (!old_tap || !f->hidden || without_hidden != f->checksum)
			return VHD_E_CHECKSUM;
	}
	if (f->version >> 16 != 1)
		return VHD_E_UNSUPPORTED;
	return 0;
}

void vhd_footer_encode(struct vhd_footer *f, uint8_t buf[VHD_FOOTER_SIZE])
{
	memset(buf, 0, VHD_FOOTER_SIZE);
	memcpy(buf, footer_cookie, 8);
	put_be32(buf + 8, f->features);
	put_be32(buf + 12, f->version);
	put_be64(buf + 16, f->data_offset);
	put_be32(buf + 24, f->timestamp);
	memcpy(buf + 28, f->creator_app, 4);
	put_be32(buf + 32, f->creator_version);
	put_be32(buf + 36, f->creator_os);
	put_be64(buf + 40, f->original_size);
	put_be64(buf + 48, f->current_size);
	put_be16(buf + 56, f->cylinders);
	buf[58] = f->heads;
	buf[59] = f->sectors_per_track;
	put_be32(buf + 60, f->disk_type);
	memcpy(buf + 68, f->uuid, 16);
	buf[84] = f->saved_state;
	buf[85] = f->hidden;
	f->checksum = vhd_checksum(buf, VHD_FOOTER_SIZE, 64);
	put_be32(buf + 64, f->checksum);
}

static void locator_decode(const uint8_t *p, struct vhd_locator *l)
{
	l->code = get_be32(p);
	l->data_space = get_be32(p + 4);
	l->data_length = get_be32(p + 8);
	l->data_offset = get_be64(p + 16);
}

static void locator_encode(const struct vhd_locator *l, uint8_t *p)
{
	put_be32(p, l->code);
	put_be32(p + 4, l->data_space);
	put_be32(p + 8, l->data_length);
	put_be32(p + 12, 0);
	put_be64(p + 16, l->data_offset);
}

int vhd_header_decode(const uint8_t buf[VHD_HEADER_SIZE], struct vhd_header *h,
		      uint32_t *computed)
{
	if (memcmp(buf, header_cookie, 8) != 0)
		return VHD_E_FORMAT;
	memset(h, 0, sizeof(*h));
	h->data_offset = get_be64(buf + 8);
	h->table_offset = get_be64(buf + 16);
	h->version = get_be32(buf + 24);
	h->max_table_entries = get_be32(buf + 28);
	h->block_size = get_be32(buf + 32);
	h->checksum = get_be32(buf + 36);
	memcpy(h->parent_uuid, buf + 40, 16);
	h->parent_timestamp = get_be32(buf + 56);
	for (int i = 0; i < VHD_PARENT_NAME_UNITS; i++)
		h->parent_name[i] = get_be16(buf + 64 + 2 * i);
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++)
		locator_decode(buf + 576 + 24 * i, &h->loc[i]);

	*computed = vhd_checksum(buf, VHD_HEADER_SIZE, 36);
	if (*computed != h->checksum)
		return VHD_E_CHECKSUM;
	if (h->version >> 16 != 1)
		return VHD_E_UNSUPPORTED;
	return 0;
}

void vhd_header_encode(struct vhd_header *h, uint8_t buf[VHD_HEADER_SIZE])
{
	memset(buf, 0, VHD_HEADER_SIZE);
	memcpy(buf, header_cookie, 8);
	put_be64(buf + 8, h->data_offset);
	put_be64(buf + 16, h->table_offset);
	put_be32(buf + 24, h->version);
	put_be32(buf + 28, h->max_table_entries);
	put_be32(buf + 32, h->block_size);
	memcpy(buf + 40, h->parent_uuid, 16);
	put_be32(buf + 56, h->parent_timestamp);
	for (int i = 0; i < VHD_PARENT_NAME_UNITS; i++)
		put_be16(buf + 64 + 2 * i, h->parent_name[i]);
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++)
		locator_encode(&h->loc[i], buf + 576 + 24 * i);
	h->checksum = vhd_checksum(buf, VHD_HEADER_SIZE, 36);
	put_be32(buf + 36, h->checksum);
}

uint64_t vhd_locator_space(const struct vhd_locator *l)
{
	if (l->data_space < VHD_SECTOR)
		return (uint64_t)l->data_space * VHD_SECTOR;
	return l->data_space;
}

uint32_t vhd_bit_run(const uint8_t *bm, uint32_t i, uint32_t end, bool *value)
{
	bool v = vhd_bit_test(bm, i);
	uint32_t j = i + 1;

	*value = v;
	/* Step bit by bit to a byte boundary, then whole bytes. */
	while (j < end && (j & 7)) {
		if (vhd_bit_test(bm, j) != v)
			return j - i;
		j++;
	}
	while (j + 8 <= end) {
		uint8_t b = __atomic_load_n(&bm[j >> 3], __ATOMIC_RELAXED);
		if (b != (v ? 0xFF : 0x00))
			break;
		j += 8;
	}
	while (j < end && vhd_bit_test(bm, j) == v)
		j++;
	return j - i;
}

void vhd_bits_set(uint8_t *bm, uint32_t i, uint32_t end)
{
	for (; i < end && (i & 7); i++)
		__atomic_fetch_or(&bm[i >> 3], (uint8_t)(0x80u >> (i & 7)),
				  __ATOMIC_RELAXED);
	for (; i + 8 <= end; i += 8)
		__atomic_store_n(&bm[i >> 3], 0xFF, __ATOMIC_RELAXED);
	for (; i < end; i++)
		__atomic_fetch_or(&bm[i >> 3], (uint8_t)(0x80u >> (i & 7)),
				  __ATOMIC_RELAXED);
}

bool vhd_bits_all_set(const uint8_t *bm, uint32_t i, uint32_t end)
{
	bool v;

	if (i >= end)
		return true;
	return vhd_bit_run(bm, i, end, &v) == end - i && v;
}
