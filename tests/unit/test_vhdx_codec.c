/*
 * test_vhdx_codec.c -- unit tests for CRC-32C (crc32c.h) and the pure VHDX
 * codecs (vhdx_codec.h): headers, region and metadata tables, GUIDs, log
 * entries, BAT entries and LSB-first sector bitmaps.
 *
 * Expected values come from RFC 3720 (B.4, the iSCSI CRC-32C vectors), from
 * MS-VHDX / vhd-facts.md section 2 (field offsets, GUID byte order), and from
 * a bit-at-a-time CRC-32C written here, independent of libvhd.  Random inputs
 * use a fixed-seed generator so that a failure reproduces.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "libvhd.h"
#include "crc32c.h"
#include "vhdx_codec.h"

/* ------------------------------------------------------------------ */
/* Helpers written for the test (no libvhd code).                     */

static uint64_t rng_state = 0xD1B54A32D192ED03ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

static uint32_t rnd_below(uint32_t n)
{
	return (uint32_t)(rnd() % n);
}

static void fill_random(void *p, size_t n)
{
	uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)rnd();
}

static void random_guid(vhdx_guid *g)
{
	fill_random(g->b, 16);
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void wle32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void wle64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Bit-at-a-time CRC-32C (reflected 0x82F63B78), the textbook definition. */
static uint32_t ref_crc(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
	}
	return ~crc;
}

/* The CRC of @len bytes with the 4-byte field at @field taken as zero. */
static uint32_t ref_crc_zero_field(const uint8_t *buf, size_t len, size_t field)
{
	uint8_t *c = malloc(len);
	uint32_t r;

	assert_non_null(c);
	memcpy(c, buf, len);
	memset(c + field, 0, 4);
	r = ref_crc(0, c, len);
	free(c);
	return r;
}

/* ------------------------------------------------------------------ */
/* CRC-32C                                                             */

static void test_crc_rfc3720_vectors(void **state)
{
	uint8_t buf[32];
	uint32_t (*fn[3])(uint32_t, const void *, size_t) = { crc32c, crc32c_sw, ref_crc };
	(void)state;

	for (int f = 0; f < 3; f++) {
		memset(buf, 0, 32);
		assert_int_equal(fn[f](0, buf, 32), 0x8A9136AA);
		memset(buf, 0xFF, 32);
		assert_int_equal(fn[f](0, buf, 32), 0x62A8AB43);
		for (int i = 0; i < 32; i++)
			buf[i] = (uint8_t)i;
		assert_int_equal(fn[f](0, buf, 32), 0x46DD794E);
		for (int i = 0; i < 32; i++)
			buf[i] = (uint8_t)(31 - i);
		assert_int_equal(fn[f](0, buf, 32), 0x113FDB5C);
		assert_int_equal(fn[f](0, "123456789", 9), 0xE3069283);
		assert_int_equal(fn[f](0, "", 0), 0);
	}
}

/* The SSE4.2 path (when the CPU has it) and the slicing-by-8 path agree
 * with each other and with the bit-wise reference on random data, lengths,
 * alignments and starting values, and chaining is the same as one call. */
static void test_crc_hw_sw_random(void **state)
{
	enum { MAX = 9000 };
	uint8_t *area = malloc(MAX + 64);
	(void)state;

	assert_non_null(area);
	for (int round = 0; round < 3000; round++) {
		size_t align = rnd_below(16);
		size_t len = round < 200 ? (size_t)round : rnd_below(MAX);
		uint8_t *p = area + align;
		uint32_t seed = round % 3 ? (uint32_t)rnd() : 0;
		uint32_t hw, sw, ref;

		fill_random(p, len);
		hw = crc32c(seed, p, len);
		sw = crc32c_sw(seed, p, len);
		ref = ref_crc(seed, p, len);
		if (hw != sw || sw != ref)
			fail_msg("round %d len %zu align %zu seed %08x: hw %08x sw %08x ref %08x",
				 round, len, align, seed, hw, sw, ref);
		if (len) {
			size_t cut = rnd_below((uint32_t)len + 1);
			assert_int_equal(crc32c(crc32c(seed, p, cut), p + cut, len - cut), hw);
			assert_int_equal(crc32c_sw(crc32c_sw(seed, p, cut), p + cut, len - cut), sw);
		}
	}
	free(area);
}

/* ------------------------------------------------------------------ */
/* Header                                                              */

static void random_header(struct vhdx_header *h)
{
	memset(h, 0, sizeof(*h));
	h->sequence = rnd();
	random_guid(&h->file_write);
	random_guid(&h->data_write);
	random_guid(&h->log_guid);
	h->log_version = 0;
	h->version = 1;
	h->log_length = (1 + rnd_below(8)) * VHDX_MiB;
	h->log_offset = (uint64_t)(1 + rnd_below(1000)) * VHDX_MiB;
}

static void test_header_round_trip(void **state)
{
	uint8_t buf[VHDX_HEADER_SIZE];
	struct vhdx_header h, d;
	(void)state;

	for (int round = 0; round < 50; round++) {
		random_header(&h);
		memset(buf, 0xA5, sizeof(buf));
		vhdx_header_encode(&h, buf);
		/* Layout (MS-VHDX 2.2.2), read back independently. */
		assert_memory_equal(buf, "head", 4);
		assert_int_equal(le64(buf + 8), h.sequence);
		assert_memory_equal(buf + 16, h.file_write.b, 16);
		assert_memory_equal(buf + 32, h.data_write.b, 16);
		assert_memory_equal(buf + 48, h.log_guid.b, 16);
		assert_int_equal(le16(buf + 64), 0);
		assert_int_equal(le16(buf + 66), 1);
		assert_int_equal(le32(buf + 68), h.log_length);
		assert_int_equal(le64(buf + 72), h.log_offset);
		for (size_t i = 80; i < VHDX_HEADER_SIZE; i++)
			assert_int_equal(buf[i], 0);
		assert_int_equal(le32(buf + 4), ref_crc_zero_field(buf, VHDX_HEADER_SIZE, 4));
		assert_int_equal(h.checksum, le32(buf + 4));

		memset(&d, 0xEE, sizeof(d));
		assert_int_equal(vhdx_header_decode(buf, &d), 0);
		assert_int_equal(d.checksum, h.checksum);
		assert_int_equal(d.sequence, h.sequence);
		assert_true(vhdx_guid_eq(&d.file_write, &h.file_write));
		assert_true(vhdx_guid_eq(&d.data_write, &h.data_write));
		assert_true(vhdx_guid_eq(&d.log_guid, &h.log_guid));
		assert_int_equal(d.log_version, 0);
		assert_int_equal(d.version, 1);
		assert_int_equal(d.log_length, h.log_length);
		assert_int_equal(d.log_offset, h.log_offset);
	}
}

/* Any single changed byte is caught: the signature as a format error, every
 * other byte (the checksum field and the reserved area included) as a
 * checksum error. */
static void test_header_any_flip(void **state)
{
	uint8_t buf[VHDX_HEADER_SIZE];
	struct vhdx_header h, d;
	(void)state;

	random_header(&h);
	vhdx_header_encode(&h, buf);
	for (size_t i = 0; i < VHDX_HEADER_SIZE; i++) {
		uint8_t x = (uint8_t)(1u << (i % 8)) | (uint8_t)rnd();
		int rc;
		if (!x)
			x = 0x80;
		buf[i] ^= x;
		rc = vhdx_header_decode(buf, &d);
		if (i < 4 ? rc != VHD_E_FORMAT : rc != VHD_E_CHECKSUM)
			fail_msg("byte %zu flipped by %02x: decode returned %d", i, x, rc);
		buf[i] ^= x;
	}
	assert_int_equal(vhdx_header_decode(buf, &d), 0);
}

static void test_header_signature(void **state)
{
	uint8_t buf[VHDX_HEADER_SIZE];
	struct vhdx_header h, d;
	(void)state;

	random_header(&h);
	vhdx_header_encode(&h, buf);
	/* A wrong signature with a checksum that is right for it. */
	memcpy(buf, "HEAD", 4);
	wle32(buf + 4, ref_crc_zero_field(buf, VHDX_HEADER_SIZE, 4));
	assert_int_equal(vhdx_header_decode(buf, &d), VHD_E_FORMAT);
	memcpy(buf, "regi", 4);
	wle32(buf + 4, ref_crc_zero_field(buf, VHDX_HEADER_SIZE, 4));
	assert_int_equal(vhdx_header_decode(buf, &d), VHD_E_FORMAT);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(vhdx_header_decode(buf, &d), VHD_E_FORMAT);
	/* A header whose checksum was computed by the test decodes. */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "head", 4);
	wle64(buf + 8, 42);
	buf[66] = 1;
	wle32(buf + 68, VHDX_MiB);
	wle64(buf + 72, VHDX_MiB);
	wle32(buf + 4, ref_crc(0, buf, VHDX_HEADER_SIZE));
	assert_int_equal(vhdx_header_decode(buf, &d), 0);
	assert_int_equal(d.sequence, 42);
	assert_int_equal(d.log_offset, VHDX_MiB);
}

/* ------------------------------------------------------------------ */
/* Region table                                                        */

static struct vhdx_region_table rt_a, rt_b;

static void random_regions(struct vhdx_region_table *t, uint32_t count)
{
	memset(t, 0, sizeof(*t));
	t->count = count;
	for (uint32_t i = 0; i < count; i++) {
		random_guid(&t->e[i].guid);
		t->e[i].offset = (uint64_t)(1 + rnd_below(1u << 20)) * VHDX_MiB;
		t->e[i].length = (1 + rnd_below(64)) * VHDX_MiB;
		t->e[i].required = rnd() & 1;
	}
}

static void test_region_round_trip(void **state)
{
	static uint8_t buf[VHDX_REGION_SIZE];
	const uint32_t counts[] = { 0, 1, 2, 3, 100, VHDX_MAX_ENTRIES };
	(void)state;

	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		random_regions(&rt_a, counts[c]);
		if (counts[c] >= 2) {
			rt_a.e[0].guid = VHDX_GUID_BAT;
			rt_a.e[1].guid = VHDX_GUID_METADATA;
		}
		memset(buf, 0x5A, sizeof(buf));
		vhdx_region_encode(&rt_a, buf);
		assert_memory_equal(buf, "regi", 4);
		assert_int_equal(le32(buf + 8), counts[c]);
		assert_int_equal(le32(buf + 12), 0);
		assert_int_equal(le32(buf + 4), ref_crc_zero_field(buf, VHDX_REGION_SIZE, 4));
		for (uint32_t i = 0; i < counts[c]; i++) {
			const uint8_t *p = buf + 16 + 32 * i;
			assert_memory_equal(p, rt_a.e[i].guid.b, 16);
			assert_int_equal(le64(p + 16), rt_a.e[i].offset);
			assert_int_equal(le32(p + 24), rt_a.e[i].length);
			assert_int_equal(le32(p + 28), rt_a.e[i].required ? 1 : 0);
		}
		for (size_t i = 16 + 32 * (size_t)counts[c]; i < VHDX_REGION_SIZE; i++)
			assert_int_equal(buf[i], 0);
		memset(&rt_b, 0xEE, sizeof(rt_b));
		assert_int_equal(vhdx_region_decode(buf, &rt_b), 0);
		assert_int_equal(rt_b.count, counts[c]);
		for (uint32_t i = 0; i < counts[c]; i++) {
			assert_true(vhdx_guid_eq(&rt_b.e[i].guid, &rt_a.e[i].guid));
			assert_int_equal(rt_b.e[i].offset, rt_a.e[i].offset);
			assert_int_equal(rt_b.e[i].length, rt_a.e[i].length);
			assert_int_equal(rt_b.e[i].required, rt_a.e[i].required);
		}
	}
}

static void test_region_crc(void **state)
{
	static uint8_t buf[VHDX_REGION_SIZE];
	(void)state;

	random_regions(&rt_a, 2);
	rt_a.e[0].guid = VHDX_GUID_BAT;
	rt_a.e[1].guid = VHDX_GUID_METADATA;
	vhdx_region_encode(&rt_a, buf);
	/* Flips in the header, the entries, the reserved tail and the last byte. */
	for (int k = 0; k < 400; k++) {
		size_t i = k < 96 ? (size_t)k : k == 399 ? VHDX_REGION_SIZE - 1 : rnd_below(VHDX_REGION_SIZE);
		uint8_t x = (uint8_t)(rnd() | 1);
		int rc;
		buf[i] ^= x;
		rc = vhdx_region_decode(buf, &rt_b);
		if (i < 4 ? rc != VHD_E_FORMAT : rc != VHD_E_CHECKSUM)
			fail_msg("region byte %zu flipped by %02x: decode returned %d", i, x, rc);
		buf[i] ^= x;
	}
	assert_int_equal(vhdx_region_decode(buf, &rt_b), 0);
	/* A count over 2047 with a good checksum is refused as corrupt. */
	wle32(buf + 8, VHDX_MAX_ENTRIES + 1);
	wle32(buf + 4, ref_crc_zero_field(buf, VHDX_REGION_SIZE, 4));
	assert_int_equal(vhdx_region_decode(buf, &rt_b), VHD_E_CORRUPT);
	wle32(buf + 8, 0xFFFFFFFFu);
	wle32(buf + 4, ref_crc_zero_field(buf, VHDX_REGION_SIZE, 4));
	assert_int_equal(vhdx_region_decode(buf, &rt_b), VHD_E_CORRUPT);
	/* A wrong signature with a matching checksum. */
	vhdx_region_encode(&rt_a, buf);
	memcpy(buf, "rege", 4);
	wle32(buf + 4, ref_crc_zero_field(buf, VHDX_REGION_SIZE, 4));
	assert_int_equal(vhdx_region_decode(buf, &rt_b), VHD_E_FORMAT);
}

/* ------------------------------------------------------------------ */
/* Metadata table                                                      */

static struct vhdx_meta_table mt_a, mt_b;

static void test_meta_round_trip(void **state)
{
	static uint8_t buf[VHDX_META_TABLE_SIZE];
	const uint16_t counts[] = { 0, 1, 5, 6, 1000, VHDX_MAX_ENTRIES };
	(void)state;

	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		memset(&mt_a, 0, sizeof(mt_a));
		mt_a.count = counts[c];
		for (uint16_t i = 0; i < counts[c]; i++) {
			random_guid(&mt_a.e[i].id);
			mt_a.e[i].offset = VHDX_META_TABLE_SIZE + rnd_below(VHDX_MiB);
			mt_a.e[i].length = rnd_below(VHDX_MiB + 1);
			mt_a.e[i].flags = rnd_below(8);
		}
		if (counts[c] >= 1)
			mt_a.e[0].id = VHDX_GUID_FILE_PARAMS;
		memset(buf, 0x77, sizeof(buf));
		vhdx_meta_encode(&mt_a, buf);
		assert_memory_equal(buf, "metadata", 8);
		assert_int_equal(le16(buf + 8), 0);
		assert_int_equal(le16(buf + 10), counts[c]);
		for (size_t i = 12; i < 32; i++)
			assert_int_equal(buf[i], 0);
		for (uint16_t i = 0; i < counts[c]; i++) {
			const uint8_t *p = buf + 32 + 32 * i;
			assert_memory_equal(p, mt_a.e[i].id.b, 16);
			assert_int_equal(le32(p + 16), mt_a.e[i].offset);
			assert_int_equal(le32(p + 20), mt_a.e[i].length);
			assert_int_equal(le32(p + 24), mt_a.e[i].flags);
			assert_int_equal(le32(p + 28), 0);
		}
		for (size_t i = 32 + 32 * (size_t)counts[c]; i < VHDX_META_TABLE_SIZE; i++)
			assert_int_equal(buf[i], 0);
		memset(&mt_b, 0xEE, sizeof(mt_b));
		assert_int_equal(vhdx_meta_decode(buf, &mt_b), 0);
		assert_int_equal(mt_b.count, counts[c]);
		for (uint16_t i = 0; i < counts[c]; i++) {
			assert_true(vhdx_guid_eq(&mt_b.e[i].id, &mt_a.e[i].id));
			assert_int_equal(mt_b.e[i].offset, mt_a.e[i].offset);
			assert_int_equal(mt_b.e[i].length, mt_a.e[i].length);
			assert_int_equal(mt_b.e[i].flags, mt_a.e[i].flags);
		}
	}
	/* Signature and entry count limits. */
	mt_a.count = 1;
	vhdx_meta_encode(&mt_a, buf);
	buf[7] = 'A';
	assert_int_equal(vhdx_meta_decode(buf, &mt_b), VHD_E_FORMAT);
	vhdx_meta_encode(&mt_a, buf);
	buf[10] = (VHDX_MAX_ENTRIES + 1) & 0xFF;
	buf[11] = (VHDX_MAX_ENTRIES + 1) >> 8;
	assert_int_equal(vhdx_meta_decode(buf, &mt_b), VHD_E_CORRUPT);
}

/* ------------------------------------------------------------------ */
/* GUIDs                                                               */

static void test_guid_bat_byte_order(void **state)
{
	static const uint8_t want[16] = { 0x66, 0x77, 0xC2, 0x2D, 0x23, 0xF6, 0x00, 0x42,
					  0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08 };
	vhdx_guid g;
	char s[39];
	(void)state;

	assert_memory_equal(VHDX_GUID_BAT.b, want, 16);
	assert_int_equal(vhdx_guid_parse("2DC27766-F623-4200-9D64-115E9BFD4A08", &g), 0);
	assert_memory_equal(g.b, want, 16);
	assert_int_equal(vhdx_guid_parse("{2dc27766-f623-4200-9d64-115e9bfd4a08}", &g), 0);
	assert_memory_equal(g.b, want, 16);
	vhdx_guid_format(&VHDX_GUID_BAT, s);
	assert_int_equal(strlen(s), 38);
	assert_true(!strcasecmp(s, "{2DC27766-F623-4200-9D64-115E9BFD4A08}"));
}

/* Every well-known GUID constant is its text form in on-disk order. */
static void test_guid_constants(void **state)
{
	const struct { const vhdx_guid *g; const char *s; } k[] = {
		{ &VHDX_GUID_BAT, "2DC27766-F623-4200-9D64-115E9BFD4A08" },
		{ &VHDX_GUID_METADATA, "8B7CA206-4790-4B9A-B8FE-575F050F886E" },
		{ &VHDX_GUID_FILE_PARAMS, "CAA16737-FA36-4D43-B3B6-33F0AA44E76B" },
		{ &VHDX_GUID_DISK_SIZE, "2FA54224-CD1B-4876-B211-5DBED83BF4B8" },
		{ &VHDX_GUID_PAGE83, "BECA12AB-B2E6-4523-93EF-C309E000C746" },
		{ &VHDX_GUID_LOGICAL_SECTOR, "8141BF1D-A96F-4709-BA47-F233A8FAAB5F" },
		{ &VHDX_GUID_PHYSICAL_SECTOR, "CDA348C7-445D-4471-9CC9-E9885251C556" },
		{ &VHDX_GUID_PARENT_LOCATOR, "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C" },
		{ &VHDX_GUID_PARENT_TYPE, "B04AEFB7-D19E-4A81-B789-25B8E9445913" },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
		vhdx_guid g;
		uint8_t want[16];
		unsigned v[16];
		/* On-disk bytes built by hand from the text: Data1..3 reversed. */
		sscanf(k[i].s, "%2x%2x%2x%2x-%2x%2x-%2x%2x-%2x%2x-%2x%2x%2x%2x%2x%2x",
		       &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8],
		       &v[9], &v[10], &v[11], &v[12], &v[13], &v[14], &v[15]);
		const int order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
		for (int j = 0; j < 16; j++)
			want[j] = (uint8_t)v[order[j]];
		assert_memory_equal(k[i].g->b, want, 16);
		assert_int_equal(vhdx_guid_parse(k[i].s, &g), 0);
		assert_true(vhdx_guid_eq(&g, k[i].g));
	}
}

static void test_guid_round_trip(void **state)
{
	vhdx_guid g, h, z;
	char s[39], t[39];
	(void)state;

	memset(&z, 0, sizeof(z));
	assert_true(vhdx_guid_is_zero(&z));
	for (int round = 0; round < 2000; round++) {
		random_guid(&g);
		vhdx_guid_format(&g, s);
		assert_int_equal(strlen(s), 38);
		assert_true(s[0] == '{' && s[37] == '}');
		assert_true(s[9] == '-' && s[14] == '-' && s[19] == '-' && s[24] == '-');
		memset(&h, 0, sizeof(h));
		assert_int_equal(vhdx_guid_parse(s, &h), 0);
		assert_true(vhdx_guid_eq(&g, &h));
		/* Without braces, and in the other case. */
		memcpy(t, s + 1, 36);
		t[36] = 0;
		for (int i = 0; i < 36; i++)
			t[i] = (char)(round & 1 ? tolower((unsigned char)t[i]) : toupper((unsigned char)t[i]));
		memset(&h, 0, sizeof(h));
		assert_int_equal(vhdx_guid_parse(t, &h), 0);
		assert_true(vhdx_guid_eq(&g, &h));
	}
	assert_int_equal(vhdx_guid_random(&g), 0);
	assert_int_equal(vhdx_guid_random(&h), 0);
	assert_false(vhdx_guid_eq(&g, &h));
	assert_false(vhdx_guid_is_zero(&g));
}

static void test_guid_parse_rejects(void **state)
{
	const char *bad[] = {
		"",
		"2DC27766-F623-4200-9D64-115E9BFD4A0",		/* short */
		"2DC27766-F623-4200-9D64-115E9BFD4A080",	/* long */
		"2DC27766F623-4200-9D64-115E9BFD4A08-",		/* dash moved */
		"2DC27766-F623-4200-9D64_115E9BFD4A08",		/* not a dash */
		"2DC27766-F623-4200-9D64-115E9BFD4A0G",		/* not hex */
		"{2DC27766-F623-4200-9D64-115E9BFD4A08",	/* one brace */
		"2DC27766-F623-4200-9D64-115E9BFD4A08}",
		"(2DC27766-F623-4200-9D64-115E9BFD4A08)",
		" 2DC27766-F623-4200-9D64-115E9BFD4A08",
		"{2DC27766-F623-4200-9D64-115E9BFD4A 8}",
	};
	vhdx_guid g;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (vhdx_guid_parse(bad[i], &g) == 0)
			fail_msg("parsed an invalid GUID: \"%s\"", bad[i]);
}

/* ------------------------------------------------------------------ */
/* Log entries                                                         */

static void test_log_header_sectors(void **state)
{
	(void)state;
	assert_int_equal(vhdx_log_header_sectors(0), 1);
	assert_int_equal(vhdx_log_header_sectors(1), 1);
	assert_int_equal(vhdx_log_header_sectors(126), 1);	/* 64 + 126*32 = 4096 */
	assert_int_equal(vhdx_log_header_sectors(127), 2);
	assert_int_equal(vhdx_log_header_sectors(254), 2);
	assert_int_equal(vhdx_log_header_sectors(255), 3);
}

/* Alternates sequence numbers below and above 2^32, so that both halves of
 * the data sectors' SequenceHigh/SequenceLow are exercised. */
static int hi_toggle;
static int round_hi(void)
{
	return hi_toggle++ & 1;
}

/* Encode n random pages; decode the header, check the CRC, decode every
 * descriptor and data sector; the pages come back exactly. */
static void log_round_trip(uint32_t n)
{
	uint32_t hs = vhdx_log_header_sectors(n);
	size_t len = (size_t)(hs + n) * VHDX_LOG_SECTOR;
	uint8_t *out = malloc(len), *pages = malloc((size_t)n * VHDX_LOG_SECTOR + 1);
	uint64_t *offs = malloc((n + 1) * sizeof(uint64_t));
	uint64_t seq = (rnd() >> 1) | 1 | (round_hi() ? 1ull << 40 : 0);
	uint32_t tail = rnd_below(256) * VHDX_LOG_SECTOR;
	uint64_t flushed = (uint64_t)rnd_below(1u << 20) * VHDX_MiB;
	uint64_t last = flushed + VHDX_MiB;
	struct vhdx_log_header h;
	vhdx_guid lg;
	uint8_t page[VHDX_LOG_SECTOR];

	assert_non_null(out);
	assert_non_null(pages);
	assert_non_null(offs);
	random_guid(&lg);
	fill_random(pages, (size_t)n * VHDX_LOG_SECTOR);
	for (uint32_t i = 0; i < n; i++)
		offs[i] = (uint64_t)rnd_below(1u << 30) * VHDX_LOG_SECTOR;
	memset(out, 0xCC, len);
	vhdx_log_entry_encode(out, seq, tail, &lg, flushed, last, pages, offs, n);

	/* Header layout, checked by hand. */
	assert_memory_equal(out, "loge", 4);
	assert_int_equal(le32(out + 8), len);
	assert_int_equal(le32(out + 12), tail);
	assert_int_equal(le64(out + 16), seq);
	assert_int_equal(le32(out + 24), n);
	assert_memory_equal(out + 32, lg.b, 16);
	assert_int_equal(le64(out + 48), flushed);
	assert_int_equal(le64(out + 56), last);
	assert_int_equal(le32(out + 4), ref_crc_zero_field(out, len, 4));

	assert_int_equal(vhdx_log_header_decode(out, &h), 0);
	assert_int_equal(h.entry_length, len);
	assert_int_equal(h.tail, tail);
	assert_int_equal(h.sequence, seq);
	assert_int_equal(h.descriptor_count, n);
	assert_true(vhdx_guid_eq(&h.log_guid, &lg));
	assert_int_equal(h.flushed_file_offset, flushed);
	assert_int_equal(h.last_file_offset, last);
	assert_true(vhdx_log_entry_crc_ok(out, h.entry_length));

	for (uint32_t i = 0; i < n; i++) {
		struct vhdx_log_desc d;
		const uint8_t *raw = out + 64 + 32 * (size_t)i;
		const uint8_t *sec = out + (size_t)(hs + i) * VHDX_LOG_SECTOR;
		const uint8_t *want = pages + (size_t)i * VHDX_LOG_SECTOR;

		/* Descriptor and data sector layout (MS-VHDX 2.3.1.3, 2.3.1.4). */
		assert_memory_equal(raw, "desc", 4);
		assert_int_equal(le32(raw + 4), le32(want + 4092));
		assert_int_equal(le64(raw + 8), le64(want));
		assert_int_equal(le64(raw + 16), offs[i]);
		assert_int_equal(le64(raw + 24), seq);
		assert_memory_equal(sec, "data", 4);
		assert_int_equal(le32(sec + 4), (uint32_t)(seq >> 32));
		assert_int_equal(le32(sec + 4092), (uint32_t)seq);
		assert_memory_equal(sec + 8, want + 8, 4084);

		assert_int_equal(vhdx_log_desc_decode(out, i, &d), 0);
		assert_false(d.zero);
		assert_int_equal(d.file_offset, offs[i]);
		assert_int_equal(d.sequence, seq);
		assert_int_equal(d.leading, le64(want));
		assert_int_equal(d.trailing, le32(want + 4092));
		memset(page, 0, sizeof(page));
		assert_int_equal(vhdx_log_data_decode(sec, &d, seq, page), 0);
		assert_memory_equal(page, want, VHDX_LOG_SECTOR);
		/* The wrong sequence, or a damaged data signature, is refused. */
		assert_int_equal(vhdx_log_data_decode(sec, &d, seq + 1, page), VHD_E_CORRUPT);
		{
			uint8_t s2[VHDX_LOG_SECTOR];
			memcpy(s2, sec, sizeof(s2));
			s2[0] = 'D';
			assert_int_equal(vhdx_log_data_decode(s2, &d, seq, page), VHD_E_CORRUPT);
			memcpy(s2, sec, sizeof(s2));
			s2[4092] ^= 1;	/* SequenceLow */
			assert_int_equal(vhdx_log_data_decode(s2, &d, seq, page), VHD_E_CORRUPT);
			memcpy(s2, sec, sizeof(s2));
			s2[4] ^= 1;	/* SequenceHigh */
			assert_int_equal(vhdx_log_data_decode(s2, &d, seq, page), VHD_E_CORRUPT);
		}
	}
	free(out);
	free(pages);
	free(offs);
}

static void test_log_round_trip(void **state)
{
	const uint32_t ns[] = { 1, 2, 3, 17, 125, 126, 127, 200, 254, 255 };
	(void)state;

	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		log_round_trip(ns[i]);
}

/* Every byte of an entry is covered by its CRC. */
static void test_log_any_flip(void **state)
{
	const uint32_t n = 2;
	uint32_t hs = vhdx_log_header_sectors(n);
	size_t len = (size_t)(hs + n) * VHDX_LOG_SECTOR;
	uint8_t *out = malloc(len), *pages = malloc(n * VHDX_LOG_SECTOR);
	uint64_t offs[2] = { 3 * VHDX_MiB, 3 * VHDX_MiB + VHDX_LOG_SECTOR };
	vhdx_guid lg;
	(void)state;

	assert_non_null(out);
	assert_non_null(pages);
	random_guid(&lg);
	fill_random(pages, n * VHDX_LOG_SECTOR);
	vhdx_log_entry_encode(out, 7, 0, &lg, 4 * VHDX_MiB, 4 * VHDX_MiB, pages, offs, n);
	assert_true(vhdx_log_entry_crc_ok(out, (uint32_t)len));
	for (size_t i = 0; i < len; i++) {
		uint8_t x = (uint8_t)(rnd() | 0x10);
		out[i] ^= x;
		if (vhdx_log_entry_crc_ok(out, (uint32_t)len))
			fail_msg("log entry byte %zu flipped by %02x: CRC still ok", i, x);
		out[i] ^= x;
	}
	assert_true(vhdx_log_entry_crc_ok(out, (uint32_t)len));
	free(out);
	free(pages);
}

/* Header and descriptor validation: sequence 0, lengths that are not whole
 * sectors or too short for the descriptors, zero descriptors, unknown or
 * misaligned descriptors. */
static void test_log_decode_rejects(void **state)
{
	uint8_t e[2 * VHDX_LOG_SECTOR];
	struct vhdx_log_header h;
	struct vhdx_log_desc d;
	uint8_t page[VHDX_LOG_SECTOR];
	uint64_t off = 5 * VHDX_MiB;
	vhdx_guid lg;
	(void)state;

	random_guid(&lg);
	memset(page, 0x3C, sizeof(page));
	vhdx_log_entry_encode(e, 9, 0, &lg, 0, 0, page, &off, 1);
	assert_int_equal(vhdx_log_header_decode(e, &h), 0);

	wle64(e + 16, 0);				/* sequence 0 */
	assert_int_equal(vhdx_log_header_decode(e, &h), VHD_E_CORRUPT);
	wle64(e + 16, 9);
	wle32(e + 8, 4096 + 512);			/* not whole sectors */
	assert_int_equal(vhdx_log_header_decode(e, &h), VHD_E_CORRUPT);
	wle32(e + 8, 0);
	assert_int_equal(vhdx_log_header_decode(e, &h), VHD_E_CORRUPT);
	wle32(e + 8, 8192);
	wle32(e + 12, 100);				/* tail not aligned */
	assert_int_equal(vhdx_log_header_decode(e, &h), VHD_E_CORRUPT);
	wle32(e + 12, 0);
	wle32(e + 24, 127);				/* 2 header sectors > 1 */
	wle32(e + 8, 4096);
	assert_int_equal(vhdx_log_header_decode(e, &h), VHD_E_CORRUPT);
	wle32(e + 24, 1);
	wle32(e + 8, 8192);
	memcpy(e, "logE", 4);
	assert_int_equal(vhdx_log_header_decode(e, &h), VHD_E_FORMAT);
	memcpy(e, "loge", 4);

	/* A zero descriptor. */
	memset(e + 64, 0, 32);
	memcpy(e + 64, "zero", 4);
	wle64(e + 72, 3 * VHDX_LOG_SECTOR);
	wle64(e + 80, 7 * VHDX_MiB);
	wle64(e + 88, 9);
	assert_int_equal(vhdx_log_desc_decode(e, 0, &d), 0);
	assert_true(d.zero);
	assert_int_equal(d.zero_length, 3 * VHDX_LOG_SECTOR);
	assert_int_equal(d.file_offset, 7 * VHDX_MiB);
	assert_int_equal(d.sequence, 9);
	wle64(e + 72, 100);				/* not whole sectors */
	assert_int_equal(vhdx_log_desc_decode(e, 0, &d), VHD_E_CORRUPT);
	wle64(e + 72, VHDX_LOG_SECTOR);
	wle64(e + 80, 7 * VHDX_MiB + 512);		/* misaligned */
	assert_int_equal(vhdx_log_desc_decode(e, 0, &d), VHD_E_CORRUPT);
	memcpy(e + 64, "desc", 4);
	assert_int_equal(vhdx_log_desc_decode(e, 0, &d), VHD_E_CORRUPT);
	wle64(e + 80, 7 * VHDX_MiB);
	assert_int_equal(vhdx_log_desc_decode(e, 0, &d), 0);
	memcpy(e + 64, "dsec", 4);			/* unknown descriptor */
	assert_int_equal(vhdx_log_desc_decode(e, 0, &d), VHD_E_CORRUPT);
}

/* ------------------------------------------------------------------ */
/* BAT entries and sector bitmaps                                      */

static void test_bat_entry(void **state)
{
	(void)state;
	/* Raw values by hand: state in bits 0-2, FileOffsetMB from bit 20. */
	assert_int_equal(vhdx_bat_make(VHDX_PAYLOAD_FULLY_PRESENT, 3 * (uint64_t)VHDX_MiB),
			 (3ull << 20) | 6);
	assert_int_equal(vhdx_bat_make(VHDX_PAYLOAD_NOT_PRESENT, 0), 0);
	assert_int_equal(vhdx_bat_make(VHDX_SB_PRESENT, 1ull << 40), ((1ull << 20) << 20) | 6);
	for (uint32_t st = 0; st < 8; st++) {
		const uint64_t mbs[] = { 0, 1, 2, 3, 1000, (1ull << 20) - 1, 1ull << 30,
					 (1ull << 44) - 1 };
		for (size_t i = 0; i < sizeof(mbs) / sizeof(mbs[0]); i++) {
			uint64_t off = mbs[i] * VHDX_MiB;
			uint64_t e = vhdx_bat_make(st, off);
			assert_int_equal(e & 0xFFFF8ull, 0);	/* reserved bits 3-19 */
			assert_int_equal(e >> 20, mbs[i]);
			assert_int_equal(vhdx_bat_state(e), st);
			assert_int_equal(vhdx_bat_offset(e), off);
			/* Reserved bits do not leak into state or offset. */
			assert_int_equal(vhdx_bat_state(e | 0xFFFF8ull), st);
			assert_int_equal(vhdx_bat_offset(e | 0xFFFF8ull), off);
		}
	}
	for (int round = 0; round < 10000; round++) {
		uint64_t e = rnd();
		assert_int_equal(vhdx_bat_state(e), e & 7);
		assert_int_equal(vhdx_bat_offset(e), (e >> 20) * (uint64_t)VHDX_MiB);
		assert_int_equal(vhdx_bat_make(vhdx_bat_state(e), vhdx_bat_offset(e)),
				 e & ~0xFFFF8ull);
	}
}

static void test_bitmap_lsb_first(void **state)
{
	uint8_t bm[64];
	(void)state;

	memset(bm, 0, sizeof(bm));
	bm[0] = 0x01;		/* sector 0 */
	bm[1] = 0x80;		/* sector 15 */
	bm[5] = 0x14;		/* sectors 42, 44 */
	for (uint64_t i = 0; i < 64 * 8; i++) {
		bool want = i == 0 || i == 15 || i == 42 || i == 44;
		if (vhdx_bit_test(bm, i) != want)
			fail_msg("bit %llu: got %d", (unsigned long long)i, !want);
	}
	for (int round = 0; round < 100; round++) {
		fill_random(bm, sizeof(bm));
		for (uint64_t i = 0; i < 64 * 8; i++)
			assert_int_equal(vhdx_bit_test(bm, i), (bm[i / 8] >> (i % 8)) & 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc_rfc3720_vectors),
		cmocka_unit_test(test_crc_hw_sw_random),
		cmocka_unit_test(test_header_round_trip),
		cmocka_unit_test(test_header_any_flip),
		cmocka_unit_test(test_header_signature),
		cmocka_unit_test(test_region_round_trip),
		cmocka_unit_test(test_region_crc),
		cmocka_unit_test(test_meta_round_trip),
		cmocka_unit_test(test_guid_bat_byte_order),
		cmocka_unit_test(test_guid_constants),
		cmocka_unit_test(test_guid_round_trip),
		cmocka_unit_test(test_guid_parse_rejects),
		cmocka_unit_test(test_log_header_sectors),
		cmocka_unit_test(test_log_round_trip),
		cmocka_unit_test(test_log_any_flip),
		cmocka_unit_test(test_log_decode_rejects),
		cmocka_unit_test(test_bat_entry),
		cmocka_unit_test(test_bitmap_lsb_first),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
