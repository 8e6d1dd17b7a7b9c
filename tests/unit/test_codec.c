/*
 * test_codec.c -- unit tests for the pure VHD codecs (vhd_codec.h), CHS
 * geometry and the creator-aware size rule (geometry.c), UTF-8/UTF-16
 * conversion (utf16.c), the path helpers (paths.c) and vhd_uuid_generate.
 *
 * Expected values come from /work/shared/vhd-facts.md section 1 and are
 * computed here independently of libvhd: checksums are summed by the test,
 * the qemu footer vector is laid out byte by byte, CHS geometry is checked
 * against a re-implementation of the spec pseudo-code, and bitmap helpers
 * against naive loops.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libvhd.h"
#include "vhd_codec.h"
#include "paths.h"

/* ------------------------------------------------------------------ */
/* Helpers written for the test (no libvhd code).                     */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic so failures reproduce. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

static uint32_t rnd_below(uint32_t n)
{
	return (uint32_t)(rnd() % n);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) << 32 | rd32(p + 4);
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

/* One's complement of the byte sum, the checksum field taken as zero:
 * copy the structure, zero the field, sum every byte. */
static uint32_t ref_checksum(const uint8_t *buf, size_t len, size_t field)
{
	uint8_t tmp[VHD_HEADER_SIZE];
	uint32_t sum = 0;

	assert_true(len <= sizeof(tmp));
	memcpy(tmp, buf, len);
	memset(tmp + field, 0, 4);
	for (size_t i = 0; i < len; i++)
		sum += tmp[i];
	return ~sum;
}

/* Naive MSB-first bit read. */
static int nbit(const uint8_t *bm, uint32_t i)
{
	return (bm[i / 8] >> (7 - i % 8)) & 1;
}

/* A footer with a distinct value in every field. */
static void sample_footer(struct vhd_footer *f)
{
	static const uint8_t uuid[16] = {
		0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0x4D, 0xEF,
		0x8E, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10,
	};

	memset(f, 0, sizeof(*f));
	f->features = VHD_FEATURES_RESERVED | VHD_FEATURE_TEMPORARY;
	f->version = VHD_VERSION;
	f->data_offset = 0x0000000000000200ull;
	f->timestamp = 0x2B3C4D5E;
	memcpy(f->creator_app, "vhdk", 4);
	f->creator_version = 0x00070009;
	f->creator_os = VHD_OS_WINDOWS;
	f->original_size = 0x0000001122334400ull;
	f->current_size = 0x0000005566778800ull;
	f->cylinders = 0xA1B2;
	f->heads = 0x0F;
	f->sectors_per_track = 0x3F;
	f->disk_type = 4;
	memcpy(f->uuid, uuid, 16);
	f->saved_state = 1;
	f->hidden = 0;
}

/* ------------------------------------------------------------------ */
/* Footer                                                              */

static void test_footer_roundtrip(void **state)
{
	struct vhd_footer f, g;
	uint8_t buf[VHD_FOOTER_SIZE];
	uint32_t computed = 0;

	(void)state;
	sample_footer(&f);
	f.hidden = 0;
	vhd_footer_encode(&f, buf);

	/* The bytes are where the layout table says, big-endian. */
	assert_memory_equal(buf, "conectix", 8);
	assert_int_equal(rd32(buf + 8), f.features);
	assert_int_equal(rd32(buf + 12), VHD_VERSION);
	assert_true(rd64(buf + 16) == 0x200);
	assert_int_equal(rd32(buf + 24), 0x2B3C4D5E);
	assert_memory_equal(buf + 28, "vhdk", 4);
	assert_int_equal(rd32(buf + 32), 0x00070009);
	assert_int_equal(rd32(buf + 36), 0x5769326B);
	assert_true(rd64(buf + 40) == 0x0000001122334400ull);
	assert_true(rd64(buf + 48) == 0x0000005566778800ull);
	assert_int_equal(rd16(buf + 56), 0xA1B2);
	assert_int_equal(buf[58], 0x0F);
	assert_int_equal(buf[59], 0x3F);
	assert_int_equal(rd32(buf + 60), 4);
	assert_memory_equal(buf + 68, f.uuid, 16);
	assert_int_equal(buf[84], 1);
	for (int i = 85; i < 512; i++)
		assert_int_equal(buf[i], 0);

	memset(&g, 0xEE, sizeof(g));
	assert_int_equal(vhd_footer_decode(buf, sizeof(buf), &g, &computed), 0);
	assert_int_equal(g.features, f.features);
	assert_int_equal(g.version, f.version);
	assert_true(g.data_offset == f.data_offset);
	assert_int_equal(g.timestamp, f.timestamp);
	assert_memory_equal(g.creator_app, f.creator_app, 4);
	assert_int_equal(g.creator_version, f.creator_version);
	assert_int_equal(g.creator_os, f.creator_os);
	assert_true(g.original_size == f.original_size);
	assert_true(g.current_size == f.current_size);
	assert_int_equal(g.cylinders, f.cylinders);
	assert_int_equal(g.heads, f.heads);
	assert_int_equal(g.sectors_per_track, f.sectors_per_track);
	assert_int_equal(g.disk_type, f.disk_type);
	assert_int_equal(g.checksum, f.checksum);
	assert_memory_equal(g.uuid, f.uuid, 16);
	assert_int_equal(g.saved_state, f.saved_state);
	assert_int_equal(g.hidden, 0);
	assert_int_equal(computed, f.checksum);

	/* Fixed-disk data offset (all 64 bits set) and a 64-bit size survive. */
	f.data_offset = VHD_NO_DATA_OFFSET;
	f.current_size = 0xFF000000ull * 512;
	f.hidden = 1;
	vhd_footer_encode(&f, buf);
	assert_int_equal(buf[85], 1);
	assert_int_equal(vhd_footer_decode(buf, sizeof(buf), &g, &computed), 0);
	assert_true(g.data_offset == VHD_NO_DATA_OFFSET);
	assert_true(g.current_size == 0xFF000000ull * 512);
	assert_int_equal(g.hidden, 1);
}

static void test_footer_roundtrip_random(void **state)
{
	(void)state;
	for (int n = 0; n < 500; n++) {
		struct vhd_footer f, g;
		uint8_t buf[VHD_FOOTER_SIZE];
		uint32_t computed;

		memset(&f, 0, sizeof(f));
		f.features = (uint32_t)rnd();
		f.version = 0x00010000u | (uint32_t)(rnd() & 0xFFFF);
		f.data_offset = rnd();
		f.timestamp = (uint32_t)rnd();
		for (int i = 0; i < 4; i++)
			f.creator_app[i] = (uint8_t)rnd();
		f.creator_version = (uint32_t)rnd();
		f.creator_os = (uint32_t)rnd();
		f.original_size = rnd();
		f.current_size = rnd();
		f.cylinders = (uint16_t)rnd();
		f.heads = (uint8_t)rnd();
		f.sectors_per_track = (uint8_t)rnd();
		f.disk_type = (uint32_t)rnd();
		for (int i = 0; i < 16; i++)
			f.uuid[i] = (uint8_t)rnd();
		f.saved_state = (uint8_t)rnd();
		f.hidden = (uint8_t)rnd();
		vhd_footer_encode(&f, buf);
		assert_int_equal(rd32(buf + 64), ref_checksum(buf, 512, 64));
		assert_int_equal(vhd_footer_decode(buf, 512, &g, &computed), 0);
		assert_int_equal(g.features, f.features);
		assert_int_equal(g.version, f.version);
		assert_true(g.data_offset == f.data_offset);
		assert_int_equal(g.timestamp, f.timestamp);
		assert_memory_equal(g.creator_app, f.creator_app, 4);
		assert_int_equal(g.creator_version, f.creator_version);
		assert_int_equal(g.creator_os, f.creator_os);
		assert_true(g.original_size == f.original_size);
		assert_true(g.current_size == f.current_size);
		assert_int_equal(g.cylinders, f.cylinders);
		assert_int_equal(g.heads, f.heads);
		assert_int_equal(g.sectors_per_track, f.sectors_per_track);
		assert_int_equal(g.disk_type, f.disk_type);
		assert_memory_equal(g.uuid, f.uuid, 16);
		assert_int_equal(g.saved_state, f.saved_state);
		assert_int_equal(g.hidden, f.hidden);
	}
}

static void test_footer_checksum_independent(void **state)
{
	struct vhd_footer f, g;
	uint8_t buf[VHD_FOOTER_SIZE];
	uint32_t computed = 0, expect;

	(void)state;
	sample_footer(&f);
	vhd_footer_encode(&f, buf);
	expect = ref_checksum(buf, sizeof(buf), 64);
	assert_int_equal(rd32(buf + 64), expect);
	assert_int_equal(f.checksum, expect);
	assert_int_equal(vhd_footer_decode(buf, sizeof(buf), &g, &computed), 0);
	assert_int_equal(computed, expect);

	/* vhd_checksum on its own, with the field at another offset. */
	{
		uint8_t b[100];
		for (int i = 0; i < 100; i++)
			b[i] = (uint8_t)(i * 37 + 11);
		assert_int_equal(vhd_checksum(b, 100, 36),
				 ref_checksum(b, 100, 36));
		memset(b, 0, sizeof(b));
		assert_int_equal(vhd_checksum(b, 100, 0), 0xFFFFFFFFu);
		memset(b, 0xFF, sizeof(b));
		/* 96 bytes of 0xFF outside the field: ~(96*255). */
		assert_int_equal(vhd_checksum(b, 100, 4), ~(uint32_t)(96 * 255));
	}
}

static void test_footer_flipped_byte(void **state)
{
	struct vhd_footer f, g;
	uint8_t good[VHD_FOOTER_SIZE], buf[VHD_FOOTER_SIZE];
	uint32_t computed;

	(void)state;
	/* hidden = 0: every byte but 85 (with hidden = 0, any value at 85 is
	 * indistinguishable from the blktap "sum without hidden" variant). */
	sample_footer(&f);
	f.hidden = 0;
	vhd_footer_encode(&f, good);
	for (int i = 8; i < 512; i++) {
		if (i == 85)
			continue;
		for (int bit = 0; bit < 8; bit++) {
			memcpy(buf, good, sizeof(buf));
			buf[i] ^= (uint8_t)(1u << bit);
			int rc = vhd_footer_decode(buf, sizeof(buf), &g,
						   &computed);
			if (rc != VHD_E_CHECKSUM)
				fail_msg("byte %d bit %d: rc %d, expected "
					 "VHD_E_CHECKSUM", i, bit, rc);
			assert_int_equal(g.checksum, rd32(buf + 64));
			assert_int_equal(computed,
					 ref_checksum(buf, sizeof(buf), 64));
		}
	}
	/* hidden = 1 (a tap footer): a damaged byte 85 is caught. */
	f.hidden = 1;
	memcpy(f.creator_app, "tap\0", 4);
	vhd_footer_encode(&f, good);
	for (int i = 85; i < 86; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(buf, good, sizeof(buf));
			buf[i] ^= (uint8_t)(1u << bit);
			int rc = vhd_footer_decode(buf, sizeof(buf), &g,
						   &computed);
			if (rc != VHD_E_CHECKSUM)
				fail_msg("byte %d bit %d: rc %d, expected "
					 "VHD_E_CHECKSUM", i, bit, rc);
			/* The footer is still filled in for reporting. */
			assert_int_equal(g.checksum, rd32(buf + 64));
			assert_int_equal(computed,
					 ref_checksum(buf, sizeof(buf), 64));
			assert_true(g.current_size == f.current_size ||
				    (i >= 48 && i < 56));
		}
	}
}

static void test_footer_bad_cookie(void **state)
{
	struct vhd_footer f, g;
	uint8_t buf[VHD_FOOTER_SIZE];
	uint32_t computed;

	(void)state;
	sample_footer(&f);
	for (int i = 0; i < 8; i++) {
		vhd_footer_encode(&f, buf);
		buf[i] ^= 0x20;	/* e.g. "Conectix" */
		/* Keep the checksum right so only the cookie is wrong. */
		wr32(buf + 64, ref_checksum(buf, sizeof(buf), 64));
		assert_int_equal(vhd_footer_decode(buf, sizeof(buf), &g,
						   &computed), VHD_E_FORMAT);
	}
	/* A dynamic header cookie is not a footer. */
	vhd_footer_encode(&f, buf);
	memcpy(buf, "cxsparse", 8);
	wr32(buf + 64, ref_checksum(buf, sizeof(buf), 64));
	assert_int_equal(vhd_footer_decode(buf, sizeof(buf), &g, &computed),
			 VHD_E_FORMAT);
	/* All zeros (e.g. a sparse hole). */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(vhd_footer_decode(buf, sizeof(buf), &g, &computed),
			 VHD_E_FORMAT);
}

static void test_footer_version(void **state)
{
	struct vhd_footer f, g;
	uint8_t buf[VHD_FOOTER_SIZE];
	uint32_t computed;

	(void)state;
	sample_footer(&f);
	f.version = 0x00020000;
	vhd_footer_encode(&f, buf);
	assert_int_equal(rd32(buf + 64), ref_checksum(buf, sizeof(buf), 64));
	assert_int_equal(vhd_footer_decode(buf, sizeof(buf), &g, &computed),
			 VHD_E_UNSUPPORTED);
	assert_int_equal(g.version, 0x00020000);

	f.version = 0;
	vhd_footer_encode(&f, buf);
	assert_int_equal(vhd_footer_decode(buf, sizeof(buf), &g, &computed),
			 VHD_E_UNSUPPORTED);

	f.version = 0xFFFF0000u;
	vhd_footer_encode(&f, buf);
	assert_int_equal(vhd_footer_decode(buf, sizeof(buf), &g, &computed),
			 VHD_E_UNSUPPORTED);

	f.version = VHD_VERSION;
	vhd_footer_encode(&f, buf);
	assert_int_equal(vhd_footer_decode(buf, sizeof(buf), &g, &computed), 0);
}

static void test_footer_511(void **state)
{
	struct vhd_footer f, g;
	uint8_t full[VHD_FOOTER_SIZE];
	uint8_t *short_buf = malloc(511);	/* exactly 511: no slack */
	uint32_t computed = 0;

	(void)state;
	assert_non_null(short_buf);
	sample_footer(&f);
	vhd_footer_encode(&f, full);
	memcpy(short_buf, full, 511);
	assert_int_equal(vhd_footer_decode(short_buf, 511, &g, &computed), 0);
	assert_true(g.current_size == f.current_size);
	assert_true(g.original_size == f.original_size);
	assert_int_equal(g.cylinders, f.cylinders);
	assert_int_equal(g.disk_type, f.disk_type);
	assert_memory_equal(g.uuid, f.uuid, 16);
	assert_int_equal(g.checksum, f.checksum);
	assert_int_equal(computed, ref_checksum(full, 512, 64));

	/* A damaged 511-byte footer is still caught. */
	short_buf[300] ^= 1;
	assert_int_equal(vhd_footer_decode(short_buf, 511, &g, &computed),
			 VHD_E_CHECKSUM);
	short_buf[300] ^= 1;
	short_buf[0] = 'X';
	assert_int_equal(vhd_footer_decode(short_buf, 511, &g, &computed),
			 VHD_E_FORMAT);
	free(short_buf);

	/* Other lengths are refused. */
	assert_int_not_equal(vhd_footer_decode(full, 510, &g, &computed), 0);
	assert_int_not_equal(vhd_footer_decode(full, 0, &g, &computed), 0);
}

/* The footer `qemu-img create -f vpc dyn.vhd 100M` writes (vhd-facts 1.2,
 * 1.3): creator "qemu" 5.3 on "Wi2k", dynamic, header at 512, CHS
 * 1004/12/17, original = current = 104865792 (0x06402000).  Laid out byte by
 * byte from the layout table. */
static void build_qemu_100m_footer(uint8_t v[VHD_FOOTER_SIZE])
{
	static const uint8_t head[84] = {
		/* 0 cookie */
		'c', 'o', 'n', 'e', 'c', 't', 'i', 'x',
		/* 8 features */
		0x00, 0x00, 0x00, 0x02,
		/* 12 version */
		0x00, 0x01, 0x00, 0x00,
		/* 16 data offset = 512 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00,
		/* 24 timestamp */
		0x2E, 0x8F, 0x10, 0x27,
		/* 28 creator app */
		'q', 'e', 'm', 'u',
		/* 32 creator version 0x00050003 */
		0x00, 0x05, 0x00, 0x03,
		/* 36 creator OS "Wi2k" */
		'W', 'i', '2', 'k',
		/* 40 original size */
		0x00, 0x00, 0x00, 0x00, 0x06, 0x40, 0x20, 0x00,
		/* 48 current size */
		0x00, 0x00, 0x00, 0x00, 0x06, 0x40, 0x20, 0x00,
		/* 56 geometry 1004 (0x03EC) / 12 / 17 */
		0x03, 0xEC, 0x0C, 0x11,
		/* 60 disk type dynamic */
		0x00, 0x00, 0x00, 0x03,
		/* 64 checksum, filled below */
		0x00, 0x00, 0x00, 0x00,
		/* 68 UUID */
		0x5B, 0x1C, 0x3F, 0x2A, 0x90, 0x4E, 0x4C, 0x11,
		0xA7, 0x33, 0x0D, 0x6E, 0x12, 0x9F, 0xC4, 0x08,
	};
	uint32_t sum = 0;

	memset(v, 0, VHD_FOOTER_SIZE);
	memcpy(v, head, sizeof(head));
	v[84] = 0;		/* saved state */
	for (int i = 0; i < (int)VHD_FOOTER_SIZE; i++)
		sum += v[i];
	sum = ~sum;
	v[64] = (uint8_t)(sum >> 24);
	v[65] = (uint8_t)(sum >> 16);
	v[66] = (uint8_t)(sum >> 8);
	v[67] = (uint8_t)sum;
}

static void test_footer_known_answer_qemu(void **state)
{
	uint8_t v[VHD_FOOTER_SIZE], re[VHD_FOOTER_SIZE];
	struct vhd_footer f;
	uint32_t computed = 0;
	const char *src = NULL;
	uint16_t c;
	uint8_t h, s;

	(void)state;
	build_qemu_100m_footer(v);
	assert_int_equal(vhd_footer_decode(v, sizeof(v), &f, &computed), 0);
	assert_int_equal(f.features, 2);
	assert_int_equal(f.version, 0x00010000);
	assert_true(f.data_offset == 512);
	assert_int_equal(f.timestamp, 0x2E8F1027);
	assert_memory_equal(f.creator_app, "qemu", 4);
	assert_int_equal(f.creator_version, 0x00050003);
	assert_int_equal(f.creator_os, 0x5769326B);
	assert_true(f.original_size == 104865792ull);
	assert_true(f.current_size == 104865792ull);
	assert_int_equal(f.cylinders, 1004);
	assert_int_equal(f.heads, 12);
	assert_int_equal(f.sectors_per_track, 17);
	assert_int_equal(f.disk_type, 3);
	assert_int_equal(f.checksum, rd32(v + 64));
	assert_int_equal(computed, rd32(v + 64));
	assert_int_equal(f.uuid[0], 0x5B);
	assert_int_equal(f.uuid[15], 0x08);
	assert_int_equal(f.saved_state, 0);

	/* CHS is exact for the size qemu chose. */
	assert_true(vhd_chs_bytes(f.cylinders, f.heads, f.sectors_per_track) ==
		    104865792ull);
	vhd_chs(f.current_size, &c, &h, &s);
	assert_int_equal(c, 1004);
	assert_int_equal(h, 12);
	assert_int_equal(s, 17);
	assert_true(vhd_footer_virtual_size(&f, VHD_SIZE_AUTO, &src) ==
		    104865792ull);
	assert_non_null(src);

	/* Re-encoding the decoded footer gives the same bytes. */
	vhd_footer_encode(&f, re);
	assert_memory_equal(re, v, sizeof(v));

	/* The 511-byte form of the same vector decodes too. */
	assert_int_equal(vhd_footer_decode(v, 511, &f, &computed), 0);
	assert_true(f.current_size == 104865792ull);
}

/* qemu's dynamic header for the same image: BAT at 0x600, 51 entries,
 * 2 MiB blocks (vhd-facts 1.2, 1.4). */
static void test_header_known_answer_qemu(void **state)
{
	uint8_t v[VHD_HEADER_SIZE];
	struct vhd_header h;
	uint32_t computed = 0, sum = 0;

	(void)state;
	memset(v, 0, sizeof(v));
	memcpy(v, "cxsparse", 8);
	memset(v + 8, 0xFF, 8);			/* data offset */
	v[22] = 0x06;				/* table offset 0x600 */
	v[25] = 0x01;				/* version 0x00010000 */
	v[31] = 51;				/* max table entries */
	v[33] = 0x20;				/* block size 0x00200000 */
	for (int i = 0; i < (int)VHD_HEADER_SIZE; i++)
		sum += v[i];
	wr32(v + 36, ~sum);

	assert_int_equal(vhd_header_decode(v, &h, &computed), 0);
	assert_true(h.data_offset == VHD_NO_DATA_OFFSET);
	assert_true(h.table_offset == 0x600);
	assert_int_equal(h.version, 0x00010000);
	assert_int_equal(h.max_table_entries, 51);
	assert_int_equal(h.block_size, 2u << 20);
	assert_int_equal(h.checksum, ~sum);
	assert_int_equal(computed, ~sum);
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++)
		assert_int_equal(h.loc[i].code, VHD_PLAT_NONE);
	assert_int_equal(h.parent_name[0], 0);
	/* 51 entries of 2 MiB cover the 104865792-byte disk. */
	assert_true((uint64_t)h.max_table_entries * h.block_size >= 104865792ull);
	assert_true(vhd_bat_size(h.max_table_entries) == 512);
}

/* blktap (crtr_ver 0.1, 1.1) computed the checksum without the hidden byte
 * at offset 85 (vhd-facts 1.7); the decoder accepts that variant. */
static void test_footer_blktap_hidden_checksum(void **state)
{
	struct vhd_footer f, g;
	uint8_t buf[VHD_FOOTER_SIZE];
	uint32_t computed = 0, with, without;

	(void)state;
	sample_footer(&f);
	memcpy(f.creator_app, "tap\0", 4);
	f.creator_version = 0x00010001;
	f.creator_os = 0;
	f.hidden = 1;
	vhd_footer_encode(&f, buf);
	with = ref_checksum(buf, sizeof(buf), 64);
	buf[85] = 0;
	without = ref_checksum(buf, sizeof(buf), 64);
	buf[85] = 1;
	assert_int_not_equal(with, without);
	assert_int_equal(rd32(buf + 64), with);

	/* Standard checksum: accepted. */
	assert_int_equal(vhd_footer_decode(buf, sizeof(buf), &g, &computed), 0);
	assert_int_equal(g.hidden, 1);

	/* Checksum computed without byte 85: accepted, hidden reported. */
	wr32(buf + 64, without);
	memset(&g, 0, sizeof(g));
	assert_int_equal(vhd_footer_decode(buf, sizeof(buf), &g, &computed), 0);
	assert_int_equal(g.hidden, 1);
	assert_int_equal(g.checksum, without);
	assert_true(g.current_size == f.current_size);

	/* Also with a larger hidden value. */
	buf[85] = 0xC8;
	wr32(buf + 64, without);
	assert_int_equal(vhd_footer_decode(buf, sizeof(buf), &g, &computed), 0);
	assert_int_equal(g.hidden, 0xC8);

	/* Neither sum: refused. */
	wr32(buf + 64, without + 5);
	assert_int_equal(vhd_footer_decode(buf, sizeof(buf), &g, &computed),
			 VHD_E_CHECKSUM);
	wr32(buf + 64, without - 1);
	assert_int_equal(vhd_footer_decode(buf, sizeof(buf), &g, &computed),
			 VHD_E_CHECKSUM);
}

/* ------------------------------------------------------------------ */
/* Dynamic header                                                      */

static void sample_header(struct vhd_header *h)
{
	static const uint32_t codes[VHD_LOCATOR_COUNT] = {
		VHD_PLAT_W2KU, VHD_PLAT_W2RU, VHD_PLAT_MACX, VHD_PLAT_WI2K,
		VHD_PLAT_WI2R, VHD_PLAT_MAC, 0x12345678u, VHD_PLAT_NONE,
	};
	int n;

	memset(h, 0, sizeof(*h));
	h->data_offset = VHD_NO_DATA_OFFSET;
	h->table_offset = 0x0000000000002000ull;
	h->version = VHD_VERSION;
	h->max_table_entries = 0x00012345;
	h->block_size = 2u << 20;
	for (int i = 0; i < 16; i++)
		h->parent_uuid[i] = (uint8_t)(0xA0 + i);
	h->parent_timestamp = 0x31323334;
	n = vhd_utf8_to_utf16("C:\\VMs\\\xC3\x9C" "ber\\\xF0\x9F\x98\x80.vhd",
			      h->parent_name, VHD_PARENT_NAME_UNITS);
	assert_int_equal(n, 18);
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
		h->loc[i].code = codes[i];
		h->loc[i].data_space = i < 4 ? (uint32_t)i + 1 : 4096u << i;
		h->loc[i].data_length = (uint32_t)(0x100 + 2 * i);
		h->loc[i].data_offset = 0x0000000100000000ull + 0x1000u * i;
	}
}

static void test_header_roundtrip(void **state)
{
	struct vhd_header h, g;
	uint8_t buf[VHD_HEADER_SIZE];
	uint32_t computed = 0;

	(void)state;
	sample_header(&h);
	vhd_header_encode(&h, buf);

	/* Byte layout (vhd-facts 1.4). */
	assert_memory_equal(buf, "cxsparse", 8);
	assert_true(rd64(buf + 8) == VHD_NO_DATA_OFFSET);
	assert_true(rd64(buf + 16) == 0x2000);
	assert_int_equal(rd32(buf + 24), VHD_VERSION);
	assert_int_equal(rd32(buf + 28), 0x00012345);
	assert_int_equal(rd32(buf + 32), 0x00200000);
	assert_int_equal(rd32(buf + 36), ref_checksum(buf, sizeof(buf), 36));
	assert_int_equal(h.checksum, rd32(buf + 36));
	assert_memory_equal(buf + 40, h.parent_uuid, 16);
	assert_int_equal(rd32(buf + 56), 0x31323334);
	assert_int_equal(rd32(buf + 60), 0);
	/* Parent name is UTF-16 *big*-endian: 'C' = 00 43, U+00DC = 00 DC,
	 * U+1F600 = D83D DE00 at units 12-13. */
	assert_int_equal(buf[64], 0x00);
	assert_int_equal(buf[65], 0x43);
	assert_int_equal(rd16(buf + 64 + 2 * 7), 0x00DC);
	assert_int_equal(rd16(buf + 64 + 2 * 12), 0xD83D);
	assert_int_equal(rd16(buf + 64 + 2 * 13), 0xDE00);
	assert_int_equal(rd16(buf + 64 + 2 * 17), 'd');
	assert_int_equal(rd16(buf + 64 + 2 * 18), 0);
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
		const uint8_t *p = buf + 576 + 24 * i;

		assert_int_equal(rd32(p), h.loc[i].code);
		assert_int_equal(rd32(p + 4), h.loc[i].data_space);
		assert_int_equal(rd32(p + 8), h.loc[i].data_length);
		assert_int_equal(rd32(p + 12), 0);
		assert_true(rd64(p + 16) == h.loc[i].data_offset);
	}
	assert_memory_equal(buf + 576, "W2ku", 4);
	assert_memory_equal(buf + 600, "W2ru", 4);
	for (int i = 768; i < 1024; i++)
		assert_int_equal(buf[i], 0);

	memset(&g, 0x5A, sizeof(g));
	assert_int_equal(vhd_header_decode(buf, &g, &computed), 0);
	assert_true(g.data_offset == h.data_offset);
	assert_true(g.table_offset == h.table_offset);
	assert_int_equal(g.version, h.version);
	assert_int_equal(g.max_table_entries, h.max_table_entries);
	assert_int_equal(g.block_size, h.block_size);
	assert_int_equal(g.checksum, h.checksum);
	assert_int_equal(computed, h.checksum);
	assert_memory_equal(g.parent_uuid, h.parent_uuid, 16);
	assert_int_equal(g.parent_timestamp, h.parent_timestamp);
	for (int i = 0; i < VHD_PARENT_NAME_UNITS; i++)
		assert_int_equal(g.parent_name[i], h.parent_name[i]);
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
		assert_int_equal(g.loc[i].code, h.loc[i].code);
		assert_int_equal(g.loc[i].data_space, h.loc[i].data_space);
		assert_int_equal(g.loc[i].data_length, h.loc[i].data_length);
		assert_true(g.loc[i].data_offset == h.loc[i].data_offset);
	}

	/* The name converts back to the same UTF-8. */
	{
		char name[VHD_PARENT_NAME_UNITS * 4];
		int n = vhd_utf16_to_utf8(g.parent_name, VHD_PARENT_NAME_UNITS,
					  name, sizeof(name), false);
		assert_int_equal(n, 21);
		assert_string_equal(name, "C:\\VMs\\\xC3\x9C" "ber\\\xF0\x9F\x98\x80.vhd");
	}

	/* A full 256-unit name (no terminator) round-trips. */
	for (int i = 0; i < VHD_PARENT_NAME_UNITS; i++)
		h.parent_name[i] = (uint16_t)(0x4E00 + i);
	vhd_header_encode(&h, buf);
	assert_int_equal(rd16(buf + 64 + 2 * 255), 0x4E00 + 255);
	assert_int_equal(rd32(buf + 576), VHD_PLAT_W2KU); /* no overrun */
	assert_int_equal(vhd_header_decode(buf, &g, &computed), 0);
	for (int i = 0; i < VHD_PARENT_NAME_UNITS; i++)
		assert_int_equal(g.parent_name[i], 0x4E00 + i);
}

static void test_header_checksum_error(void **state)
{
	struct vhd_header h, g;
	uint8_t good[VHD_HEADER_SIZE], buf[VHD_HEADER_SIZE];
	uint32_t computed;

	(void)state;
	sample_header(&h);
	vhd_header_encode(&h, good);
	for (int i = 8; i < (int)VHD_HEADER_SIZE; i++) {
		memcpy(buf, good, sizeof(buf));
		buf[i] ^= (uint8_t)(1u << (i % 8));
		int rc = vhd_header_decode(buf, &g, &computed);
		if (rc != VHD_E_CHECKSUM)
			fail_msg("header byte %d: rc %d, expected "
				 "VHD_E_CHECKSUM", i, rc);
		assert_int_equal(computed, ref_checksum(buf, sizeof(buf), 36));
		assert_int_equal(g.checksum, rd32(buf + 36));
	}
	/* A stored checksum off by one. */
	memcpy(buf, good, sizeof(buf));
	wr32(buf + 36, rd32(buf + 36) + 1);
	assert_int_equal(vhd_header_decode(buf, &g, &computed), VHD_E_CHECKSUM);
}

static void test_header_cookie_and_version(void **state)
{
	struct vhd_header h, g;
	uint8_t buf[VHD_HEADER_SIZE];
	uint32_t computed;

	(void)state;
	sample_header(&h);
	for (int i = 0; i < 8; i++) {
		vhd_header_encode(&h, buf);
		buf[i] = (uint8_t)~buf[i];
		wr32(buf + 36, ref_checksum(buf, sizeof(buf), 36));
		assert_int_equal(vhd_header_decode(buf, &g, &computed),
				 VHD_E_FORMAT);
	}
	vhd_header_encode(&h, buf);
	memcpy(buf, "conectix", 8);
	wr32(buf + 36, ref_checksum(buf, sizeof(buf), 36));
	assert_int_equal(vhd_header_decode(buf, &g, &computed), VHD_E_FORMAT);

	h.version = 0x00020000;
	vhd_header_encode(&h, buf);
	assert_int_equal(vhd_header_decode(buf, &g, &computed),
			 VHD_E_UNSUPPORTED);
}

/* ------------------------------------------------------------------ */
/* Locator data_space                                                  */

static void test_locator_space(void **state)
{
	static const struct {
		uint32_t space;
		uint64_t bytes;
	} cases[] = {
		{ 0, 0 },
		{ 1, 512 },
		{ 2, 1024 },
		{ 8, 4096 },		/* spec: sectors */
		{ 128, 65536 },
		{ 511, 511ull * 512 },	/* largest sector count */
		{ 512, 512 },		/* from here on: bytes */
		{ 1024, 1024 },
		{ 4096, 4096 },		/* Windows */
		{ 65536, 65536 },	/* Windows */
		{ 0xFFFFFE00u, 0xFFFFFE00u },
		{ 0xFFFFFFFFu, 0xFFFFFFFFu },
	};
	struct vhd_locator l;

	(void)state;
	memset(&l, 0, sizeof(l));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		l.data_space = cases[i].space;
		if (vhd_locator_space(&l) != cases[i].bytes)
			fail_msg("data_space %u: got %llu expected %llu",
				 cases[i].space,
				 (unsigned long long)vhd_locator_space(&l),
				 (unsigned long long)cases[i].bytes);
	}
	/* The rule over the whole boundary region. */
	for (uint32_t s = 0; s < 2048; s++) {
		l.data_space = s;
		assert_true(vhd_locator_space(&l) ==
			    (s < 512 ? (uint64_t)s * 512 : s));
	}
}

static void test_bitmap_bat_sizes(void **state)
{
	(void)state;
	assert_int_equal(vhd_bitmap_size(2u << 20), 512);	/* 4096 bits */
	assert_int_equal(vhd_bitmap_size(4096), 512);		/* 8 bits */
	assert_int_equal(vhd_bitmap_size(512), 512);
	assert_int_equal(vhd_bitmap_size(4u << 20), 1024);
	assert_int_equal(vhd_bitmap_size(256u << 20), 65536);
	assert_true(vhd_bat_size(0) == 0);
	assert_true(vhd_bat_size(1) == 512);
	assert_true(vhd_bat_size(51) == 512);
	assert_true(vhd_bat_size(128) == 512);
	assert_true(vhd_bat_size(129) == 1024);
	assert_true(vhd_bat_size(0xFFFFFFFFu) == 0x400000000ull);
}

/* ------------------------------------------------------------------ */
/* CHS geometry                                                        */

/* vhd-facts 1.3 pseudo-code, transcribed. */
static void ref_chs(uint64_t size, unsigned *cyl, unsigned *heads,
		    unsigned *spt)
{
	uint64_t ts = size / 512, cth, h, s;
	const uint64_t cap = 65535ull * 16 * 255;

	if (ts > cap)
		ts = cap;
	if (ts >= 65535ull * 16 * 63) {
		s = 255;
		h = 16;
		cth = ts / s;
	} else {
		s = 17;
		cth = ts / s;
		h = (cth + 1023) / 1024;
		if (h < 4)
			h = 4;
		if (cth >= h * 1024 || h > 16) {
			s = 31;
			h = 16;
			cth = ts / s;
		}
		if (cth >= h * 1024) {
			s = 63;
			h = 16;
			cth = ts / s;
		}
	}
	*cyl = (unsigned)(cth / h);
	*heads = (unsigned)h;
	*spt = (unsigned)s;
}

static void check_chs(uint64_t size, unsigned ec, unsigned eh, unsigned es)
{
	uint16_t c;
	uint8_t h, s;

	vhd_chs(size, &c, &h, &s);
	if (c != ec || h != eh || s != es)
		fail_msg("vhd_chs(%llu) = %u/%u/%u, expected %u/%u/%u",
			 (unsigned long long)size, c, h, s, ec, eh, es);
}

static void test_chs_table(void **state)
{
	const uint64_t GiB = 1ull << 30, MiB = 1ull << 20;

	(void)state;
	/* Windows 10, 10 MiB: 301/4/17 = 10,479,616 B (rounds down). */
	check_chs(10 * MiB, 301, 4, 17);
	assert_true(vhd_chs_bytes(301, 4, 17) == 10479616ull);
	/* qemu 100M: asks 104857600, rounds up to 104865792 = 1004/12/17. */
	check_chs(104865792ull, 1004, 12, 17);
	check_chs(100 * MiB, 1003, 12, 17);
	assert_true(vhd_chs_bytes(1004, 12, 17) == 104865792ull);
	/* 1 GiB: spec gives 2080/16/63; qemu's rounded-up size is exact. */
	check_chs(1 * GiB, 2080, 16, 63);
	check_chs(1073995776ull, 2081, 16, 63);
	assert_true(vhd_chs_bytes(2081, 16, 63) == 1073995776ull);
	/* 4 GiB; qemu rounds to 8,389,584 sectors = 8323/16/63. */
	check_chs(4 * GiB, 8322, 16, 63);
	check_chs(8389584ull * 512, 8323, 16, 63);
	/* 127 GiB: 255 sectors per track. */
	check_chs(127 * GiB, 65278, 16, 255);
	/* The CHS cap, 127.5 GiB, exactly. */
	check_chs(65535ull * 16 * 255 * 512, 65535, 16, 255);
	assert_true(65535ull * 16 * 255 * 512 == 136899993600ull);
	/* Over the cap: capped. */
	check_chs(65535ull * 16 * 255 * 512 + 512, 65535, 16, 255);
	check_chs(128 * GiB, 65535, 16, 255);
	check_chs(2040 * GiB, 65535, 16, 255);
	check_chs(2048 * GiB, 65535, 16, 255);
	check_chs(UINT64_MAX, 65535, 16, 255);
	/* Tiny sizes. */
	check_chs(0, 0, 4, 17);
	check_chs(511, 0, 4, 17);
	check_chs(512, 0, 4, 17);
	check_chs(68 * 512 - 1, 0, 4, 17);
	check_chs(68 * 512, 1, 4, 17);
	check_chs(1 * MiB, 30, 4, 17);
	/* Heads grow past 4 with 17 sectors per track. */
	check_chs(4095ull * 17 * 512, 1023, 4, 17);	/* cth=4095 */
	check_chs(4096ull * 17 * 512, 140, 16, 31);	/* cth=4096: 31 spt */
	check_chs(20 * MiB, 602, 4, 17);
	check_chs(64 * MiB, 963, 8, 17);
	/* 31 and 63 sectors per track. */
	check_chs(200 * MiB, 825, 16, 31);
	check_chs(256 * MiB, 520, 16, 63);
	check_chs(512 * MiB, 1040, 16, 63);
	/* Switch to 255 sectors per track at 65535*16*63 sectors. */
	check_chs(65535ull * 16 * 63 * 512, 16191, 16, 255);
	check_chs(65535ull * 16 * 63 * 512 - 512, 65534, 16, 63);
	check_chs(32 * GiB, 16448, 16, 255);
}

static void test_chs_sweep(void **state)
{
	static const uint64_t edges[] = {
		4ull * 1024 * 17, 5ull * 1024 * 17, 12ull * 1024 * 17,
		16ull * 1024 * 17, 16ull * 1024 * 31, 16ull * 1024 * 63,
		65535ull * 16 * 63, 65535ull * 16 * 255, 20480, 204816,
		2097152, 8388608,
	};
	const uint64_t cap = 65535ull * 16 * 255;
	int n = 0;

	(void)state;
	for (int k = 0; k < 10000; k++) {
		uint64_t size;
		unsigned ec, eh, es;
		uint16_t c;
		uint8_t h, s;

		switch (k % 5) {
		case 0:	/* any sector count up to 3 TiB */
			size = (rnd() % (6ull << 30)) * 512;
			break;
		case 1:	/* under the 255-spt switch, unaligned bytes too */
			size = rnd() % (65535ull * 16 * 63 * 512);
			break;
		case 2:	/* small disks */
			size = rnd() % (1ull << 30);
			break;
		case 3: { /* near a switch point */
			uint64_t e = edges[rnd_below(sizeof(edges) /
						    sizeof(edges[0]))];
			int64_t d = (int64_t)rnd_below(4001) - 2000;
			size = (uint64_t)((int64_t)e + d) * 512 + rnd_below(512);
			break;
		}
		default: /* whole MiB up to 200 GiB */
			size = (uint64_t)rnd_below(200 * 1024) << 20;
			break;
		}
		ref_chs(size, &ec, &eh, &es);
		vhd_chs(size, &c, &h, &s);
		if (c != ec || h != eh || s != es)
			fail_msg("vhd_chs(%llu) = %u/%u/%u, reference %u/%u/%u",
				 (unsigned long long)size, c, h, s, ec, eh, es);
		/* Properties: rounds down, within limits, legal spt. */
		assert_true(vhd_chs_bytes(c, h, s) <= size);
		assert_true((uint64_t)c * h * s <= cap);
		assert_true(h >= 4 && h <= 16);
		assert_true(s == 17 || s == 31 || s == 63 || s == 255);
		n++;
	}
	assert_int_equal(n, 10000);
}

/* ------------------------------------------------------------------ */
/* Creator-aware virtual size                                          */

static void size_footer(struct vhd_footer *f, const char app[4],
			uint16_t c, uint8_t h, uint8_t s, uint64_t current)
{
	sample_footer(f);
	memcpy(f->creator_app, app, 4);
	f->cylinders = c;
	f->heads = h;
	f->sectors_per_track = s;
	f->current_size = current;
	f->original_size = current;
}

static void check_size(const struct vhd_footer *f, int rule, uint64_t expect,
		       const char *expect_src)
{
	const char *src = NULL;
	uint64_t got = vhd_footer_virtual_size(f, rule, &src);

	if (got != expect || !src || strcmp(src, expect_src) != 0)
		fail_msg("creator '%.4s' CHS %u/%u/%u current %llu rule %d: got "
			 "%llu (%s), expected %llu (%s)",
			 (const char *)f->creator_app, f->cylinders, f->heads,
			 f->sectors_per_track,
			 (unsigned long long)f->current_size, rule,
			 (unsigned long long)got, src ? src : "(null)",
			 (unsigned long long)expect, expect_src);
}

static void test_size_rule_creators(void **state)
{
	static const char *chs_era[] = { "vpc ", "vs  ", "qemu" };
	static const char *current_era[] = {
		"win ", "d2v ", "d2v\0", "tap\0", "vbox", "wa\0\0", "qem2",
		"CTXS", "vsim", "xyzw", "\0\0\0\0", "VPC ", "qemU",
	};
	const uint64_t ten = 10485760ull, chs = 10479616ull;
	struct vhd_footer f;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		size_footer(&f, chs_era[i], 301, 4, 17, ten);
		check_size(&f, VHD_SIZE_AUTO, chs, "chs");
		check_size(&f, VHD_SIZE_CURRENT, ten, "current");
		check_size(&f, VHD_SIZE_CHS, chs, "chs");
	}
	for (size_t i = 0; i < sizeof(current_era) / sizeof(current_era[0]);
	     i++) {
		size_footer(&f, current_era[i], 301, 4, 17, ten);
		check_size(&f, VHD_SIZE_AUTO, ten, "current");
		check_size(&f, VHD_SIZE_CURRENT, ten, "current");
		check_size(&f, VHD_SIZE_CHS, chs, "chs");
	}
}

static void test_size_rule_chs_exceeds_current(void **state)
{
	struct vhd_footer f;

	(void)state;
	/* CHS larger than current_size: current, even for the CHS era. */
	size_footer(&f, "vpc ", 1004, 12, 17, 104857600ull);
	check_size(&f, VHD_SIZE_AUTO, 104857600ull, "current");
	size_footer(&f, "qemu", 1004, 12, 17, 104857600ull);
	check_size(&f, VHD_SIZE_AUTO, 104857600ull, "current");
	/* CHS one byte over current_size (unaligned current): current. */
	size_footer(&f, "vpc ", 301, 4, 17, 10479616ull - 1);
	check_size(&f, VHD_SIZE_AUTO, 10479616ull - 1, "current");
	check_size(&f, VHD_SIZE_CHS, 10479616ull - 1, "current");
	size_footer(&f, "vpc ", 301, 4, 17, 10479616ull + 1);
	check_size(&f, VHD_SIZE_AUTO, 10479616ull, "chs");
	/* Equal: CHS (same number). */
	size_footer(&f, "qemu", 1004, 12, 17, 104865792ull);
	check_size(&f, VHD_SIZE_AUTO, 104865792ull, "chs");
	/* Zero geometry never wins. */
	size_footer(&f, "vpc ", 0, 0, 0, 4096);
	check_size(&f, VHD_SIZE_AUTO, 4096, "current");
	size_footer(&f, "vpc ", 0, 16, 63, 4096);
	check_size(&f, VHD_SIZE_AUTO, 4096, "current");
}

static void test_size_rule_max_chs_marker(void **state)
{
	const uint64_t maxchs = 65535ull * 16 * 255 * 512;
	const uint64_t big = 500ull << 30;
	struct vhd_footer f;

	(void)state;
	/* 65535/16/255 means "use current_size", even for "vpc ". */
	size_footer(&f, "vpc ", 65535, 16, 255, big);
	check_size(&f, VHD_SIZE_AUTO, big, "current");
	size_footer(&f, "qemu", 65535, 16, 255, big);
	check_size(&f, VHD_SIZE_AUTO, big, "current");
	size_footer(&f, "qem2", 65535, 16, 255, big);
	check_size(&f, VHD_SIZE_AUTO, big, "current");
	size_footer(&f, "vpc ", 65535, 16, 255, maxchs);
	check_size(&f, VHD_SIZE_AUTO, maxchs, "current");
	/* Just under the marker still counts as CHS. */
	size_footer(&f, "vpc ", 65535, 16, 254, big);
	check_size(&f, VHD_SIZE_AUTO, 65535ull * 16 * 254 * 512, "chs");
}

/* vhd-facts 1.6: "If CHS equals 65535/16/255, current_size is always
 * used" -- qemu: "even with an override we will still use current_size
 * for images that have CHS geometry of the maximum size". */
static void test_size_rule_max_chs_marker_override(void **state)
{
	const uint64_t big = 500ull << 30;
	struct vhd_footer f;

	(void)state;
	size_footer(&f, "qem2", 65535, 16, 255, big);
	check_size(&f, VHD_SIZE_CHS, big, "current");
	size_footer(&f, "vpc ", 65535, 16, 255, big);
	check_size(&f, VHD_SIZE_CHS, big, "current");
}

/* ------------------------------------------------------------------ */
/* Bitmaps                                                             */

static void random_bitmap(uint8_t *bm, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (rnd_below(4)) {
		case 0: bm[i] = 0x00; break;
		case 1: bm[i] = 0xFF; break;
		default: bm[i] = (uint8_t)rnd(); break;
		}
	}
	/* Sometimes long runs. */
	if (rnd_below(3) == 0) {
		size_t a = rnd_below((uint32_t)n), b = rnd_below((uint32_t)n);
		if (a > b) {
			size_t t = a;
			a = b;
			b = t;
		}
		memset(bm + a, rnd_below(2) ? 0xFF : 0x00, b - a);
	}
}

static void test_bit_order(void **state)
{
	uint8_t bm[4] = { 0x80, 0x01, 0x00, 0x00 };

	(void)state;
	assert_true(vhd_bit_test(bm, 0));
	for (uint32_t i = 1; i < 15; i++)
		assert_false(vhd_bit_test(bm, i));
	assert_true(vhd_bit_test(bm, 15));
	assert_false(vhd_bit_test(bm, 16));

	memset(bm, 0, sizeof(bm));
	vhd_bits_set(bm, 0, 1);
	assert_int_equal(bm[0], 0x80);
	vhd_bits_set(bm, 7, 8);
	assert_int_equal(bm[0], 0x81);
	vhd_bits_set(bm, 9, 11);
	assert_int_equal(bm[1], 0x60);
	vhd_bits_set(bm, 20, 32);
	assert_int_equal(bm[2], 0x0F);
	assert_int_equal(bm[3], 0xFF);

	for (int b = 0; b < 8; b++) {
		uint8_t one = (uint8_t)(0x80u >> b);
		for (uint32_t i = 0; i < 8; i++)
			assert_int_equal(vhd_bit_test(&one, i), i == (uint32_t)b);
	}
}

static void test_bit_run_random(void **state)
{
	enum { BYTES = 80, BITS = BYTES * 8 };
	uint8_t *bm = malloc(BYTES);

	(void)state;
	assert_non_null(bm);
	for (int n = 0; n < 20000; n++) {
		uint32_t i, end, want = 0;
		bool v = false;
		int first;

		if (n % 50 == 0)
			random_bitmap(bm, BYTES);
		i = rnd_below(BITS);
		end = i + 1 + rnd_below(BITS - i);
		first = nbit(bm, i);
		while (i + want < end && nbit(bm, i + want) == first)
			want++;
		uint32_t got = vhd_bit_run(bm, i, end, &v);
		if (got != want || v != (bool)first)
			fail_msg("bit_run(i=%u end=%u) = %u/%d, naive %u/%d", i,
				 end, got, v, want, first);
	}
	/* Whole 2 MiB-block bitmap all set / all clear / last bit differs. */
	{
		uint8_t full[512];
		bool v;

		memset(full, 0xFF, sizeof(full));
		assert_int_equal(vhd_bit_run(full, 0, 4096, &v), 4096);
		assert_true(v);
		full[511] = 0xFE;
		assert_int_equal(vhd_bit_run(full, 0, 4096, &v), 4095);
		assert_int_equal(vhd_bit_run(full, 4095, 4096, &v), 1);
		assert_false(v);
		memset(full, 0, sizeof(full));
		assert_int_equal(vhd_bit_run(full, 3, 4096, &v), 4093);
		assert_false(v);
		assert_int_equal(vhd_bit_run(full, 3, 4, &v), 1);
	}
	free(bm);
}

static void test_bits_set_random(void **state)
{
	enum { BYTES = 64, BITS = BYTES * 8 };
	uint8_t bm[BYTES], ref[BYTES];

	(void)state;
	for (int n = 0; n < 5000; n++) {
		uint32_t i = rnd_below(BITS + 1);
		uint32_t end = i + rnd_below(BITS - i + 1);

		if (n % 2)
			random_bitmap(bm, BYTES);
		else
			memset(bm, 0, BYTES);
		memcpy(ref, bm, BYTES);
		for (uint32_t k = i; k < end; k++)
			ref[k / 8] |= (uint8_t)(0x80u >> (k % 8));
		vhd_bits_set(bm, i, end);
		if (memcmp(bm, ref, BYTES) != 0)
			fail_msg("bits_set(%u, %u) differs from naive", i, end);
	}
}

static void test_bits_all_set_random(void **state)
{
	enum { BYTES = 64, BITS = BYTES * 8 };
	uint8_t bm[BYTES];
	int trues = 0, falses = 0;

	(void)state;
	for (int n = 0; n < 10000; n++) {
		uint32_t i = rnd_below(BITS + 1);
		uint32_t end = i + rnd_below(BITS - i + 1);
		bool want = true;

		if (n % 20 == 0) {
			/* Mostly set with a few holes. */
			memset(bm, 0xFF, BYTES);
			for (int k = rnd_below(4); k > 0; k--) {
				uint32_t b = rnd_below(BITS);
				bm[b / 8] &= (uint8_t)~(0x80u >> (b % 8));
			}
			if (n % 40 == 0)
				random_bitmap(bm, BYTES);
		}
		for (uint32_t k = i; k < end; k++)
			if (!nbit(bm, k))
				want = false;
		bool got = vhd_bits_all_set(bm, i, end);
		if (got != want)
			fail_msg("all_set(%u, %u) = %d, naive %d", i, end, got,
				 want);
		if (want)
			trues++;
		else
			falses++;
	}
	/* Both outcomes were exercised. */
	assert_true(trues > 500);
	assert_true(falses > 500);
	/* Empty range is vacuously true even on a zero bitmap. */
	memset(bm, 0, BYTES);
	assert_true(vhd_bits_all_set(bm, 5, 5));
	assert_false(vhd_bits_all_set(bm, 5, 6));
}

/* ------------------------------------------------------------------ */
/* UTF-8 <-> UTF-16                                                    */

static void roundtrip_utf(const char *s, const uint16_t *units, int nunits)
{
	uint16_t out[64];
	char back[256];
	int n;

	n = vhd_utf8_to_utf16(s, out, 64);
	assert_int_equal(n, nunits);
	for (int i = 0; i < nunits; i++)
		if (out[i] != units[i])
			fail_msg("unit %d of \"%s\": 0x%04X, expected 0x%04X",
				 i, s, out[i], units[i]);
	n = vhd_utf16_to_utf8(out, (size_t)nunits, back, sizeof(back), false);
	assert_int_equal(n, (int)strlen(s));
	assert_string_equal(back, s);
}

static void test_utf_ascii_bmp_astral(void **state)
{
	static const uint16_t ascii[] = { 'p', 'a', 'r', 'e', 'n', 't', '.',
					  'v', 'h', 'd' };
	static const uint16_t bmp[] = { 'C', ':', '\\', 0x00DC, 'b', 0x65E5,
					0x672C, 0x20AC };
	static const uint16_t astral[] = { 'a', 0xD83D, 0xDE00, 0xD800, 0xDC00,
					   0xDBFF, 0xDFFF, 'z' };
	static const uint16_t edges[] = { 0x7F, 0x80, 0x7FF, 0x800, 0xD7FF,
					  0xE000, 0xFFFD, 0xFFFF };

	(void)state;
	roundtrip_utf("parent.vhd", ascii, 10);
	roundtrip_utf("C:\\\xC3\x9C" "b\xE6\x97\xA5\xE6\x9C\xAC\xE2\x82\xAC",
		      bmp, 8);
	roundtrip_utf("a\xF0\x9F\x98\x80\xF0\x90\x80\x80\xF4\x8F\xBF\xBFz",
		      astral, 8);
	roundtrip_utf("\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80"
		      "\xEF\xBF\xBD\xEF\xBF\xBF", edges, 8);
	/* Empty string. */
	{
		uint16_t u[1] = { 0x1234 };
		char o[4] = "xyz";

		assert_int_equal(vhd_utf8_to_utf16("", u, 1), 0);
		assert_int_equal(vhd_utf16_to_utf8(u, 0, o, sizeof(o), false), 0);
		assert_string_equal(o, "");
	}
}

static void test_utf8_invalid(void **state)
{
	static const char *bad[] = {
		"\xC0\xAF",		/* overlong '/' */
		"\xC1\xBF",		/* overlong */
		"\xE0\x80\xAF",		/* overlong 3-byte */
		"\xE0\x9F\xBF",		/* overlong U+07FF */
		"\xF0\x80\x80\xAF",	/* overlong 4-byte */
		"\xF0\x8F\xBF\xBF",	/* overlong U+FFFF */
		"\xED\xA0\x80",		/* U+D800 */
		"\xED\xAF\xBF",		/* U+DBFF */
		"\xED\xB0\x80",		/* U+DC00 */
		"\xED\xBF\xBF",		/* U+DFFF */
		"\xED\xA0\xBD\xED\xB8\x80", /* CESU-8 pair */
		"\xF4\x90\x80\x80",	/* U+110000 */
		"\xF5\x80\x80\x80",
		"\xF8\x88\x80\x80\x80",	/* 5-byte form */
		"\xFC\x84\x80\x80\x80\x80",
		"\xFE", "\xFF",
		"\x80",			/* stray continuation */
		"a\xBFz",
		"\xC3",			/* truncated at end */
		"\xE2\x82",
		"\xF0\x9F\x98",
		"\xE2\x82z",		/* truncated before ASCII */
		"\xF0\x9F\x98z",
		"ok\xC3(",
		"\xC3\xC3\xA9",
	};
	uint16_t out[32];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = vhd_utf8_to_utf16(bad[i], out, 32);
		if (rc != -EILSEQ)
			fail_msg("bad UTF-8 #%zu: rc %d, expected -EILSEQ", i, rc);
	}
}

static void test_utf16_unpaired(void **state)
{
	static const struct {
		uint16_t in[4];
		size_t units;
		const char *lenient;
	} cases[] = {
		{ { 0xD800, 'A' }, 2, "\xEF\xBF\xBD" "A" },	/* lone high */
		{ { 'A', 0xDC00 }, 2, "A\xEF\xBF\xBD" },	/* lone low */
		{ { 0xDBFF }, 1, "\xEF\xBF\xBD" },		/* high at end */
		{ { 0xDC00, 0xD800 }, 2, "\xEF\xBF\xBD\xEF\xBF\xBD" }, /* swapped */
		{ { 0xD800, 0xD800, 0xDC00 }, 3, "\xEF\xBF\xBD\xF0\x90\x80\x80" },
		{ { 0xD83D, 0xDE00 }, 1, "\xEF\xBF\xBD" },	/* pair cut by units */
		{ { 0xD800, 0xE000 }, 2, "\xEF\xBF\xBD\xEE\x80\x80" }, /* high + non-surrogate */
		{ { 0xDBFF, 0xFFFF }, 2, "\xEF\xBF\xBD\xEF\xBF\xBF" },
		{ { 0xD800, 0xD7FF }, 2, "\xEF\xBF\xBD\xED\x9F\xBF" },
		{ { 0xD83D, 0x0000, 0xDE00 }, 3, "\xEF\xBF\xBD" }, /* NUL ends */
	};
	char out[32];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = vhd_utf16_to_utf8(cases[i].in, cases[i].units, out,
					   sizeof(out), false);
		if (rc != -EILSEQ)
			fail_msg("strict case %zu: rc %d, expected -EILSEQ", i, rc);
		rc = vhd_utf16_to_utf8(cases[i].in, cases[i].units, out,
				       sizeof(out), true);
		assert_int_equal(rc, (int)strlen(cases[i].lenient));
		assert_string_equal(out, cases[i].lenient);
	}
	/* NUL unit terminates; units bound is honoured. */
	{
		static const uint16_t in[] = { 'a', 'b', 0, 'c' };
		static const uint16_t in2[] = { 'x', 'y', 'z' };

		assert_int_equal(vhd_utf16_to_utf8(in, 4, out, sizeof(out), false), 2);
		assert_string_equal(out, "ab");
		assert_int_equal(vhd_utf16_to_utf8(in2, 2, out, sizeof(out), false), 2);
		assert_string_equal(out, "xy");
	}
}

static void test_utf_too_long(void **state)
{
	uint16_t u[8];
	char o[16];

	(void)state;
	/* UTF-8 -> UTF-16: exact fit, one short, surrogate pair needing 2. */
	for (int i = 0; i < 8; i++)
		u[i] = 0xBEEF;
	assert_int_equal(vhd_utf8_to_utf16("abc", u, 3), 3);
	assert_int_equal(u[3], 0xBEEF);
	assert_int_equal(vhd_utf8_to_utf16("abcd", u, 3), -ENAMETOOLONG);
	assert_int_equal(u[3], 0xBEEF);
	assert_int_equal(vhd_utf8_to_utf16("ab\xF0\x9F\x98\x80", u, 3),
			 -ENAMETOOLONG);
	assert_int_equal(u[3], 0xBEEF);
	for (int i = 0; i < 8; i++)
		u[i] = 0xBEEF;
	assert_int_equal(vhd_utf8_to_utf16("\xF0\x9F\x98\x80", u, 1),
			 -ENAMETOOLONG);
	assert_int_equal(u[1], 0xBEEF);	/* no unit past max_units */
	assert_int_equal(vhd_utf8_to_utf16("\xF0\x9F\x98\x80", u, 2), 2);
	assert_int_equal(vhd_utf8_to_utf16("x", u, 0), -ENAMETOOLONG);
	assert_int_equal(vhd_utf8_to_utf16("", u, 0), 0);

	/* UTF-16 -> UTF-8: room for the NUL is needed. */
	{
		static const uint16_t abc[] = { 'a', 'b', 'c' };
		static const uint16_t euro[] = { 0x20AC };
		static const uint16_t smile[] = { 0xD83D, 0xDE00 };

		memset(o, '#', sizeof(o));
		assert_int_equal(vhd_utf16_to_utf8(abc, 3, o, 4, false), 3);
		assert_string_equal(o, "abc");
		memset(o, '#', sizeof(o));
		assert_int_equal(vhd_utf16_to_utf8(abc, 3, o, 3, false),
				 -ENAMETOOLONG);
		assert_int_equal(o[3], '#');	/* nothing past out_size */
		memset(o, '#', sizeof(o));
		assert_int_equal(vhd_utf16_to_utf8(abc, 3, o, 0, false),
				 -ENAMETOOLONG);
		assert_int_equal(o[0], '#');
		assert_int_equal(vhd_utf16_to_utf8(euro, 1, o, 3, false),
				 -ENAMETOOLONG);
		assert_int_equal(vhd_utf16_to_utf8(euro, 1, o, 4, false), 3);
		memset(o, '#', sizeof(o));
		assert_int_equal(vhd_utf16_to_utf8(smile, 2, o, 4, false),
				 -ENAMETOOLONG);
		assert_int_equal(o[4], '#');
		assert_int_equal(vhd_utf16_to_utf8(smile, 2, o, 5, false), 4);
		assert_string_equal(o, "\xF0\x9F\x98\x80");
		/* Lenient U+FFFD needs 3 bytes as well. */
		static const uint16_t lone[] = { 0xD800 };
		assert_int_equal(vhd_utf16_to_utf8(lone, 1, o, 3, true),
				 -ENAMETOOLONG);
		assert_int_equal(vhd_utf16_to_utf8(lone, 1, o, 4, true), 3);
	}
}

static void test_utf_random_roundtrip(void **state)
{
	(void)state;
	for (int n = 0; n < 2000; n++) {
		uint16_t u[40], u2[80];
		char s[40 * 4 + 1];
		int len = 1 + (int)rnd_below(40), k = 0, m;

		/* Random valid UTF-16 (pairs kept whole). */
		while (k < len) {
			uint32_t cp;
			do {
				switch (rnd_below(3)) {
				case 0: cp = 1 + rnd_below(0x7F); break;
				case 1: cp = 1 + rnd_below(0xFFFF); break;
				default: cp = 0x10000 + rnd_below(0x100000); break;
				}
			} while (cp >= 0xD800 && cp <= 0xDFFF);
			if (cp >= 0x10000) {
				if (k + 2 > len)
					break;
				u[k++] = (uint16_t)(0xD800 + ((cp - 0x10000) >> 10));
				u[k++] = (uint16_t)(0xDC00 + ((cp - 0x10000) & 0x3FF));
			} else {
				u[k++] = (uint16_t)cp;
			}
		}
		m = vhd_utf16_to_utf8(u, (size_t)k, s, sizeof(s), false);
		assert_true(m >= k);
		assert_int_equal((int)strlen(s), m);
		assert_int_equal(vhd_utf8_to_utf16(s, u2, 80), k);
		assert_memory_equal(u, u2, (size_t)k * 2);
	}
}

/* ------------------------------------------------------------------ */
/* Paths                                                               */

#define NX "/vhdkit-test-nonexistent-dir"

static void check_rel(const char *from, const char *to, const char *expect)
{
	char out[PATH_MAX];
	int rc;

	memset(out, 0, sizeof(out));
	rc = path_relative(from, to, out, sizeof(out));
	if (rc != 0 || strcmp(out, expect) != 0)
		fail_msg("path_relative(%s, %s) = %d \"%s\", expected \"%s\"",
			 from, to, rc, out, expect);
}

static void test_path_relative(void **state)
{
	char small[8];

	(void)state;
	check_rel(NX "/a/child.vhd", NX "/a/parent.vhd", "parent.vhd");
	check_rel(NX "/a/child.vhd", NX "/a/base/parent.vhd", "base/parent.vhd");
	check_rel(NX "/a/b/child.vhd", NX "/a/c/parent.vhd", "../c/parent.vhd");
	check_rel(NX "/a/b/c/child.vhd", NX "/parent.vhd", "../../../parent.vhd");
	check_rel(NX "/a/child.vhd", NX "/x/y/parent.vhd", "../x/y/parent.vhd");
	/* Component boundaries, not string prefixes. */
	check_rel(NX "/ab/child.vhd", NX "/a/parent.vhd", "../a/parent.vhd");
	check_rel(NX "/a/child.vhd", NX "/ab/parent.vhd", "../ab/parent.vhd");
	check_rel(NX "/a/child.vhd", NX "/a.vhd", "../a.vhd");
	/* Root folder on either side. */
	check_rel("/child.vhd", NX "/parent.vhd",
		  "vhdkit-test-nonexistent-dir/parent.vhd");
	check_rel(NX "/child.vhd", "/parent.vhd", "../parent.vhd");
	/* Output too small. */
	assert_int_equal(path_relative(NX "/a/b/child.vhd", NX "/a/c/parent.vhd",
				       small, sizeof(small)), -ENAMETOOLONG);
	assert_int_equal(path_relative(NX "/a/child.vhd", NX "/a/parent.vhd",
				       small, sizeof(small)), -ENAMETOOLONG);
	assert_int_equal(path_relative(NX "/a/child.vhd", NX "/a/p.vhd",
				       small, sizeof(small)), 0);
	assert_string_equal(small, "p.vhd");

	/* Nothing is written past @size, whichever part does not fit. */
	{
		char big[32];
		static const struct {
			const char *from, *to;
			size_t size;
		} tight[] = {
			{ NX "/a/b/c/child.vhd", NX "/parent.vhd", 4 },
			{ NX "/a/b/c/child.vhd", NX "/parent.vhd", 7 },
			{ NX "/a/b/child.vhd", NX "/a/c/parent.vhd", 9 },
			{ NX "/a/child.vhd", NX "/a/parent.vhd", 10 },
			{ "/child.vhd", NX "/parent.vhd", 12 },
		};

		for (size_t t = 0; t < sizeof(tight) / sizeof(tight[0]); t++) {
			memset(big, '#', sizeof(big));
			assert_int_equal(path_relative(tight[t].from, tight[t].to,
						       big, tight[t].size),
					 -ENAMETOOLONG);
			for (size_t k = tight[t].size; k < sizeof(big); k++)
				if (big[k] != '#')
					fail_msg("path_relative case %zu wrote "
						 "byte %zu past size %zu", t, k,
						 tight[t].size);
		}
	}
}

/* Existing files: paths are resolved (realpath), relative inputs too. */
static void test_path_relative_real(void **state)
{
	char tmpl[] = "/tmp/vhdkit-test-codec-XXXXXX";
	char *dir = mkdtemp(tmpl);
	char a[256], b[256], f1[512], f2[512], out[PATH_MAX];
	char cwd[PATH_MAX];
	int fd;

	(void)state;
	assert_non_null(dir);
	snprintf(a, sizeof(a), "%s/a", dir);
	snprintf(b, sizeof(b), "%s/b", dir);
	assert_int_equal(mkdir(a, 0700), 0);
	assert_int_equal(mkdir(b, 0700), 0);
	snprintf(f1, sizeof(f1), "%s/child.vhd", a);
	snprintf(f2, sizeof(f2), "%s/parent.vhd", b);
	fd = open(f1, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	fd = open(f2, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);

	assert_int_equal(path_relative(f1, f2, out, sizeof(out)), 0);
	assert_string_equal(out, "../b/parent.vhd");

	/* Relative names, from inside the temp folder. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(path_relative("a/child.vhd", "b/parent.vhd", out,
				       sizeof(out)), 0);
	assert_string_equal(out, "../b/parent.vhd");
	assert_int_equal(path_relative("a/child.vhd", "a/../b/parent.vhd", out,
				       sizeof(out)), 0);
	assert_string_equal(out, "../b/parent.vhd");
	assert_int_equal(path_relative("./b/../a/child.vhd", "b/parent.vhd", out,
				       sizeof(out)), 0);
	assert_string_equal(out, "../b/parent.vhd");
	assert_int_equal(chdir(cwd), 0);

	/* path_is_under on real files. */
	assert_true(path_is_under(f1, dir));
	assert_true(path_is_under(f1, a));
	assert_false(path_is_under(f1, b));
	assert_true(path_is_under(f1, "/"));

	unlink(f1);
	unlink(f2);
	rmdir(a);
	rmdir(b);
	rmdir(dir);
}

static void test_path_join_relative(void **state)
{
	char out[PATH_MAX], small[8];

	(void)state;
	path_join_relative("/d/e/child.vhd", "parent.vhd", out, sizeof(out));
	assert_string_equal(out, "/d/e/parent.vhd");
	path_join_relative("/d/e/child.vhd", "./parent.vhd", out, sizeof(out));
	assert_string_equal(out, "/d/e/parent.vhd");
	path_join_relative("/d/e/child.vhd", "././parent.vhd", out, sizeof(out));
	assert_string_equal(out, "/d/e/parent.vhd");
	path_join_relative("/d/e/child.vhd", "sub/parent.vhd", out, sizeof(out));
	assert_string_equal(out, "/d/e/sub/parent.vhd");
	path_join_relative("/d/e/child.vhd", "../f/parent.vhd", out, sizeof(out));
	assert_string_equal(out, "/d/e/../f/parent.vhd");
	path_join_relative("/d/e/child.vhd", "/abs/parent.vhd", out, sizeof(out));
	assert_string_equal(out, "/abs/parent.vhd");
	path_join_relative("child.vhd", "parent.vhd", out, sizeof(out));
	assert_string_equal(out, "parent.vhd");
	path_join_relative("d/child.vhd", "parent.vhd", out, sizeof(out));
	assert_string_equal(out, "d/parent.vhd");
	path_join_relative("/child.vhd", "parent.vhd", out, sizeof(out));
	assert_string_equal(out, "/parent.vhd");
	/* Truncated but terminated. */
	memset(small, '#', sizeof(small));
	path_join_relative("/d/e/child.vhd", "parent.vhd", small, sizeof(small));
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_memory_equal(small, "/d/e/pa", 8);

	/* path_relative then path_join_relative lands on the target. */
	{
		char rel[PATH_MAX];
		assert_int_equal(path_relative(NX "/a/child.vhd",
					       NX "/a/s/t/parent.vhd", rel,
					       sizeof(rel)), 0);
		path_join_relative(NX "/a/child.vhd", rel, out, sizeof(out));
		assert_string_equal(out, NX "/a/s/t/parent.vhd");
	}
}

static void test_path_basename_any(void **state)
{
	static const struct {
		const char *in, *base;
	} cases[] = {
		{ "C:\\VMs\\base.vhd", "base.vhd" },
		{ "\\\\server\\share\\dir\\p.vhd", "p.vhd" },
		{ ".\\p.vhd", "p.vhd" },
		{ "..\\x\\p.vhd", "p.vhd" },
		{ "/a/b/c.vhd", "c.vhd" },
		{ "mixed/dir\\p.vhd", "p.vhd" },
		{ "mixed\\dir/p.vhd", "p.vhd" },
		{ "plain.vhd", "plain.vhd" },
		{ "C:p.vhd", "C:p.vhd" },
		{ "dir\\", "" },
		{ "", "" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *b = path_basename_any(cases[i].in);
		assert_string_equal(b, cases[i].base);
		/* Borrowed: points into the input. */
		assert_true(b >= cases[i].in &&
			    b <= cases[i].in + strlen(cases[i].in));
	}
}

/* ------------------------------------------------------------------ */
/* UUID                                                                */

static void test_uuid_generate(void **state)
{
	uint8_t u1[16], u2[16], zero[16] = { 0 };
	uint8_t or_all[16] = { 0 }, and_all[16];

	(void)state;
	memset(and_all, 0xFF, sizeof(and_all));
	assert_int_equal(vhd_uuid_generate(u1), 0);
	assert_int_equal(vhd_uuid_generate(u2), 0);
	assert_memory_not_equal(u1, u2, 16);
	assert_memory_not_equal(u1, zero, 16);
	for (int n = 0; n < 1000; n++) {
		uint8_t u[16];

		assert_int_equal(vhd_uuid_generate(u), 0);
		assert_int_equal(u[6] >> 4, 4);		/* version 4 */
		assert_int_equal(u[8] & 0xC0, 0x80);	/* RFC 4122 variant */
		for (int i = 0; i < 16; i++) {
			or_all[i] |= u[i];
			and_all[i] &= u[i];
		}
	}
	/* Every other bit varies over 1000 draws. */
	for (int i = 0; i < 16; i++) {
		uint8_t fixed_mask = i == 6 ? 0xF0 : i == 8 ? 0xC0 : 0x00;
		uint8_t fixed_val = i == 6 ? 0x40 : i == 8 ? 0x80 : 0x00;
		assert_int_equal(or_all[i] | fixed_mask, 0xFF);
		assert_int_equal(and_all[i] & (uint8_t)~fixed_mask, 0x00);
		assert_int_equal(or_all[i] & fixed_mask, fixed_val);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_footer_roundtrip),
		cmocka_unit_test(test_footer_roundtrip_random),
		cmocka_unit_test(test_footer_checksum_independent),
		cmocka_unit_test(test_footer_flipped_byte),
		cmocka_unit_test(test_footer_bad_cookie),
		cmocka_unit_test(test_footer_version),
		cmocka_unit_test(test_footer_511),
		cmocka_unit_test(test_footer_known_answer_qemu),
		cmocka_unit_test(test_header_known_answer_qemu),
		cmocka_unit_test(test_footer_blktap_hidden_checksum),
		cmocka_unit_test(test_header_roundtrip),
		cmocka_unit_test(test_header_checksum_error),
		cmocka_unit_test(test_header_cookie_and_version),
		cmocka_unit_test(test_locator_space),
		cmocka_unit_test(test_bitmap_bat_sizes),
		cmocka_unit_test(test_chs_table),
		cmocka_unit_test(test_chs_sweep),
		cmocka_unit_test(test_size_rule_creators),
		cmocka_unit_test(test_size_rule_chs_exceeds_current),
		cmocka_unit_test(test_size_rule_max_chs_marker),
		cmocka_unit_test(test_size_rule_max_chs_marker_override),
		cmocka_unit_test(test_bit_order),
		cmocka_unit_test(test_bit_run_random),
		cmocka_unit_test(test_bits_set_random),
		cmocka_unit_test(test_bits_all_set_random),
		cmocka_unit_test(test_utf_ascii_bmp_astral),
		cmocka_unit_test(test_utf8_invalid),
		cmocka_unit_test(test_utf16_unpaired),
		cmocka_unit_test(test_utf_too_long),
		cmocka_unit_test(test_utf_random_roundtrip),
		cmocka_unit_test(test_path_relative),
		cmocka_unit_test(test_path_relative_real),
		cmocka_unit_test(test_path_join_relative),
		cmocka_unit_test(test_path_basename_any),
		cmocka_unit_test(test_uuid_generate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
