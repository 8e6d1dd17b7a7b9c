/*
 * test_import.c -- unit tests for the qcow2 and VMDK importers (import.h):
 * the pure decoders on hand-built buffers (headers, L2 entries, descriptor
 * text, edge cases of every check), then whole images built here byte by
 * byte, served from memory by the crash simulator, read through the public
 * API and compared with the content they were built from: data clusters,
 * runs, zero flags, compressed clusters and grains, a backing file, a
 * footer-located grain directory, a flat extent, concurrent readers, and
 * damaged entries that must fail with a message instead of reading wrong.
 *
 * The images follow the layouts in qemu's docs/interop/qcow2.txt and
 * VMware's "Virtual Disk Format 1.1"; the deflate streams come from zlib
 * directly (raw deflate, window 2^12 for qcow2; zlib format for VMDK).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "libvhd.h"
#include "endian.h"
#include "import.h"

/* ------------------------------------------------------------------ */
/* Helpers written for the test.                                       */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
}

/* Compressible content: text of a few words. */
static void fill_text(uint8_t *p, size_t n)
{
	static const char *const w[] = { "vhdkit ", "qcow2 ", "grain ", "cluster " };

	for (size_t i = 0; i < n;) {
		const char *s = w[rnd() % 4];
		for (; *s && i < n; s++)
			p[i++] = (uint8_t)*s;
	}
}

/* Deflate @in (@n bytes) with @window_bits (-12 raw, 15 zlib); returns the
 * compressed length written to @out (capacity @cap). */
static size_t deflate_buf(const uint8_t *in, size_t n, uint8_t *out, size_t cap,
			  int window_bits)
{
	z_stream z;

	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, window_bits, 9,
				      Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	deflateEnd(&z);
	return cap - z.avail_out;
}

static void assert_msg(const char *want)
{
	const char *m = vhd_errmsg(NULL);

	if (!strstr(m, want))
		fail_msg("message \"%s\" lacks \"%s\"", m, want);
	assert_null(strchr(m, '\n'));
}

/* ------------------------------------------------------------------ */
/* qcow2 header                                                        */

#define QBUF 512

/* A valid header: version @v, 64 KiB clusters, 1 GiB, L1 at 192 KiB. */
static void q_header(uint8_t *b, uint32_t v)
{
	memset(b, 0, QBUF);
	put_be32(b, QCOW2_MAGIC);
	put_be32(b + 4, v);
	put_be32(b + 20, 16);
	put_be64(b + 24, 1ULL << 30);
	put_be32(b + 36, 2);		/* 2 entries x 512 MiB */
	put_be64(b + 40, 3 << 16);
	if (v == 3) {
		put_be32(b + 96, 4);
		put_be32(b + 100, 104);
	}
}

static int q_decode(const uint8_t *b, size_t len, struct qcow2_header *h)
{
	return qcow2_header_decode(NULL, b, len, 1ULL << 30, h);
}

static void test_qcow2_header_valid(void **state)
{
	uint8_t b[QBUF];
	struct qcow2_header h;

	q_header(b, 2);
	assert_int_equal(q_decode(b, sizeof(b), &h), 0);
	assert_int_equal(h.version, 2);
	assert_int_equal(h.cluster_bits, 16);
	assert_int_equal(h.size, 1ULL << 30);
	assert_int_equal(h.l1_size, 2);
	assert_int_equal(h.l1_offset, 3 << 16);
	assert_int_equal(h.header_length, 72);
	assert_int_equal(h.refcount_order, 4);
	assert_int_equal(h.incompatible, 0);

	q_header(b, 3);
	put_be64(b + 72, QCOW2_INCOMPAT_DIRTY);	/* fine for reading */
	put_be64(b + 80, 1);
	put_be64(b + 88, 2);
	assert_int_equal(q_decode(b, sizeof(b), &h), 0);
	assert_int_equal(h.version, 3);
	assert_int_equal(h.incompatible, QCOW2_INCOMPAT_DIRTY);
	assert_int_equal(h.compatible, 1);
	assert_int_equal(h.autoclear, 2);
	assert_int_equal(h.header_length, 104);

	/* A 112-byte v3 header with compression type zlib (0). */
	put_be32(b + 100, 112);
	assert_int_equal(q_decode(b, sizeof(b), &h), 0);
	assert_int_equal(h.compression_type, 0);
	/* An empty disk needs no L1 table. */
	q_header(b, 2);
	put_be64(b + 24, 0);
	put_be32(b + 36, 0);
	put_be64(b + 40, 0);
	assert_int_equal(q_decode(b, sizeof(b), &h), 0);
}

static void test_qcow2_header_magic_version(void **state)
{
	uint8_t b[QBUF];
	struct qcow2_header h;

	q_header(b, 2);
	b[3] = 0xfa;
	assert_int_equal(q_decode(b, sizeof(b), &h), VHD_E_FORMAT);
	q_header(b, 1);
	assert_int_equal(q_decode(b, sizeof(b), &h), VHD_E_UNSUPPORTED);
	assert_msg("version 1");
	for (uint32_t v = 0; v < 8; v++) {
		q_header(b, 2);
		put_be32(b + 4, v);
		/* 3 is valid, but needs its v3 fields (header length). */
		assert_int_equal(q_decode(b, sizeof(b), &h),
				 v == 2 ? 0 : v == 3 ? VHD_E_CORRUPT : VHD_E_UNSUPPORTED);
	}
	put_be32(b + 4, 0xffffffff);
	assert_int_equal(q_decode(b, sizeof(b), &h), VHD_E_UNSUPPORTED);
	assert_msg("4294967295");
}

static void test_qcow2_header_short(void **state)
{
	uint8_t b[QBUF];
	struct qcow2_header h;

	q_header(b, 2);
	assert_int_equal(q_decode(b, 71, &h), VHD_E_TRUNCATED);
	assert_int_equal(q_decode(b, 72, &h), 0);
	assert_int_equal(q_decode(b, 4, &h), VHD_E_FORMAT);
	q_header(b, 3);
	assert_int_equal(q_decode(b, 103, &h), VHD_E_TRUNCATED);
	assert_int_equal(q_decode(b, 104, &h), 0);
	put_be32(b + 100, 112);		/* says there is a compression type */
	assert_int_equal(q_decode(b, 104, &h), VHD_E_TRUNCATED);
}

static void test_qcow2_header_geometry(void **state)
{
	uint8_t b[QBUF];
	struct qcow2_header h;

	for (uint32_t bits = 0; bits < 40; bits++) {
		q_header(b, 2);
		put_be32(b + 20, bits);
		/* Keep the L1 table big and aligned enough for any size. */
		put_be64(b + 24, 1ULL << 20);
		put_be32(b + 36, 1 << 12);
		put_be64(b + 40, 1ULL << 21);
		int rc = qcow2_header_decode(NULL, b, sizeof(b), 1ULL << 40, &h);
		if (bits < 9)
			assert_int_equal(rc, VHD_E_CORRUPT);
		else if (bits > 21)
			assert_int_equal(rc, VHD_E_UNSUPPORTED);
		else
			assert_int_equal(rc, 0);
	}
	/* v3 header length: at least 104, a multiple of 8, inside a cluster. */
	q_header(b, 3);
	put_be32(b + 100, 96);
	assert_int_equal(q_decode(b, sizeof(b), &h), VHD_E_CORRUPT);
	put_be32(b + 100, 108);
	assert_int_equal(q_decode(b, sizeof(b), &h), VHD_E_CORRUPT);
	put_be32(b + 20, 9);
	put_be32(b + 100, 520);
	assert_int_equal(q_decode(b, sizeof(b), &h), VHD_E_CORRUPT);
	/* Encryption. */
	q_header(b, 2);
	put_be32(b + 32, 1);
	assert_int_equal(q_decode(b, sizeof(b), &h), VHD_E_UNSUPPORTED);
	assert_msg("encrypted");
}

static void test_qcow2_header_features(void **state)
{
	static const struct { uint64_t bits; int rc; const char *msg; } cases[] = {
		{ QCOW2_INCOMPAT_DIRTY, 0, NULL },
		{ QCOW2_INCOMPAT_CORRUPT, VHD_E_CORRUPT, "marked corrupt" },
		{ QCOW2_INCOMPAT_DATA_FILE, VHD_E_UNSUPPORTED, "external data file" },
		{ QCOW2_INCOMPAT_EXTL2, VHD_E_UNSUPPORTED, "extended L2" },
		{ 1ULL << 5, VHD_E_UNSUPPORTED, "0x20" },
		{ 1ULL << 63, VHD_E_UNSUPPORTED, "0x8000000000000000" },
		{ QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT, VHD_E_CORRUPT, "corrupt" },
		/* bit 3 needs the compression type byte (header > 104). */
		{ QCOW2_INCOMPAT_COMPRESSION, VHD_E_CORRUPT, "compression type" },
	};
	uint8_t b[QBUF];
	struct qcow2_header h;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		q_header(b, 3);
		put_be64(b + 72, cases[i].bits);
		assert_int_equal(q_decode(b, sizeof(b), &h), cases[i].rc);
		if (cases[i].msg)
			assert_msg(cases[i].msg);
	}
	/* Compression types: zlib with the bit is fine, zstd is refused. */
	q_header(b, 3);
	put_be32(b + 100, 112);
	put_be64(b + 72, QCOW2_INCOMPAT_COMPRESSION);
	assert_int_equal(q_decode(b, sizeof(b), &h), 0);
	b[104] = 1;
	assert_int_equal(q_decode(b, sizeof(b), &h), VHD_E_UNSUPPORTED);
	assert_msg("zstd");
	put_be64(b + 72, 0);
	assert_int_equal(q_decode(b, sizeof(b), &h), VHD_E_CORRUPT);
	b[104] = 7;
	put_be64(b + 72, QCOW2_INCOMPAT_COMPRESSION);
	assert_int_equal(q_decode(b, sizeof(b), &h), VHD_E_UNSUPPORTED);
}

static void test_qcow2_header_l1(void **state)
{
	uint8_t b[QBUF];
	struct qcow2_header h;

	q_header(b, 2);
	put_be32(b + 36, 1);		/* 512 MiB of 1 GiB */
	assert_int_equal(q_decode(b, sizeof(b), &h), VHD_E_CORRUPT);
	assert_msg("L1 table has 1 entries, 2 needed");
	put_be64(b + 24, (1ULL << 29) + 1);	/* one byte more: 2 needed */
	assert_int_equal(q_decode(b, sizeof(b), &h), VHD_E_CORRUPT);
	put_be64(b + 24, 1ULL << 29);
	assert_int_equal(q_decode(b, sizeof(b), &h), 0);
	/* Unaligned, at 0, past the end, straddling the end. */
	q_header(b, 2);
	put_be64(b + 40, (3 << 16) + 8);
	assert_int_equal(q_decode(b, sizeof(b), &h), VHD_E_CORRUPT);
	put_be64(b + 40, 0);
	assert_int_equal(q_decode(b, sizeof(b), &h), VHD_E_CORRUPT);
	put_be64(b + 40, 1ULL << 30);
	assert_int_equal(q_decode(b, sizeof(b), &h), VHD_E_TRUNCATED);
	put_be64(b + 40, (1ULL << 30) - 65536);
	put_be32(b + 36, 8193);		/* 65544 bytes */
	assert_int_equal(q_decode(b, sizeof(b), &h), VHD_E_TRUNCATED);
	assert_msg("past the end");
	put_be32(b + 36, 8192);		/* exactly to the end */
	assert_int_equal(q_decode(b, sizeof(b), &h), 0);
	/* Absurd sizes: never an overflow into "fits". */
	put_be64(b + 24, UINT64_MAX);
	put_be32(b + 36, QCOW2_MAX_L1);
	assert_int_equal(qcow2_header_decode(NULL, b, sizeof(b), UINT64_MAX, &h), VHD_E_CORRUPT);
	put_be32(b + 36, QCOW2_MAX_L1 + 1);
	assert_int_equal(qcow2_header_decode(NULL, b, sizeof(b), UINT64_MAX, &h), VHD_E_CORRUPT);
	assert_msg("too large");
	put_be32(b + 36, UINT32_MAX);
	put_be64(b + 40, UINT64_MAX & ~0xffffULL);
	assert_int_equal(qcow2_header_decode(NULL, b, sizeof(b), UINT64_MAX, &h), VHD_E_CORRUPT);
}

static void test_qcow2_header_backing(void **state)
{
	uint8_t b[QBUF];
	struct qcow2_header h;

	q_header(b, 3);
	put_be64(b + 8, 104);
	put_be32(b + 16, 8);
	assert_int_equal(q_decode(b, sizeof(b), &h), 0);
	assert_int_equal(h.backing_offset, 104);
	assert_int_equal(h.backing_size, 8);
	put_be32(b + 16, 0);
	assert_int_equal(q_decode(b, sizeof(b), &h), VHD_E_CORRUPT);
	put_be32(b + 16, 1024);
	assert_int_equal(q_decode(b, sizeof(b), &h), VHD_E_CORRUPT);
	put_be32(b + 16, 1023);
	assert_int_equal(q_decode(b, sizeof(b), &h), 0);
	put_be64(b + 8, 64);		/* inside the header */
	assert_int_equal(q_decode(b, sizeof(b), &h), VHD_E_CORRUPT);
	put_be64(b + 8, 65536 - 1000);	/* crosses the first cluster's end */
	assert_int_equal(q_decode(b, sizeof(b), &h), VHD_E_CORRUPT);
	put_be64(b + 8, 1ULL << 62);
	assert_int_equal(q_decode(b, sizeof(b), &h), VHD_E_CORRUPT);
	/* Inside the cluster, but the file is shorter. */
	put_be64(b + 8, 1000);
	put_be32(b + 16, 100);
	put_be32(b + 36, 0);
	put_be64(b + 24, 0);
	assert_int_equal(qcow2_header_decode(NULL, b, sizeof(b), 1050, &h), VHD_E_TRUNCATED);
	assert_int_equal(qcow2_header_decode(NULL, b, sizeof(b), 1100, &h), 0);
}

/* ------------------------------------------------------------------ */
/* qcow2 L2 entries                                                    */

static void test_qcow2_l2_entries(void **state)
{
	struct qcow2_l2 e;

	assert_int_equal(qcow2_l2_decode(0, 16, 3, &e), 0);
	assert_int_equal(e.kind, QCOW2_UNALLOCATED);
	assert_int_equal(qcow2_l2_decode(1ULL << 63, 16, 3, &e), 0);	/* copied */
	assert_int_equal(e.kind, QCOW2_UNALLOCATED);
	assert_int_equal(qcow2_l2_decode((1ULL << 63) | 0x50000, 16, 2, &e), 0);
	assert_int_equal(e.kind, QCOW2_DATA);
	assert_int_equal(e.host, 0x50000);
	/* Unaligned data cluster, but 512-aligned: corrupt. */
	assert_int_equal(qcow2_l2_decode(0x50200, 16, 3, &e), VHD_E_CORRUPT);
	assert_int_equal(qcow2_l2_decode(0x50200, 9, 3, &e), 0);
	/* Bits past 55 and 1..8 are not part of the offset. */
	assert_int_equal(qcow2_l2_decode(0x3f00000000050000ULL | 0x1fe, 16, 3, &e), 0);
	assert_int_equal(e.host, 0x50000);
	/* Zero flag: v3 only, with or without a preallocated cluster. */
	assert_int_equal(qcow2_l2_decode(1, 16, 3, &e), 0);
	assert_int_equal(e.kind, QCOW2_ZERO);
	assert_int_equal(qcow2_l2_decode(0x50001, 16, 3, &e), 0);
	assert_int_equal(e.kind, QCOW2_ZERO);
	assert_int_equal(qcow2_l2_decode(1, 16, 2, &e), VHD_E_CORRUPT);
}

static void test_qcow2_l2_compressed(void **state)
{
	for (unsigned bits = 9; bits <= 21; bits++) {
		unsigned x = 62 - (bits - 8);
		uint64_t max_sectors = 1ULL << (bits - 8);
		uint64_t host = ((1ULL << x) - 1) & 0x00fffffffffff3a7ULL;
		struct qcow2_l2 e;

		const uint64_t counts[] = { 1, 2, 3, max_sectors / 2, max_sectors };

		for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
			uint64_t s = counts[i] ? counts[i] : 1;
			uint64_t entry = (1ULL << 62) | ((s - 1) << x) | host;
			if (s > max_sectors)
				continue;
			assert_int_equal(qcow2_l2_decode(entry, bits, 3, &e), 0);
			assert_int_equal(e.kind, QCOW2_COMPRESSED);
			assert_int_equal(e.host, host);
			assert_int_equal(e.csize, s * 512 - (host & 511));
			/* The copied bit is never part of a compressed entry's
			 * fields. */
			assert_int_equal(qcow2_l2_decode(entry | (1ULL << 63), bits, 2, &e), 0);
			assert_int_equal(e.host, host);
			assert_int_equal(e.csize, s * 512 - (host & 511));
		}
	}
}

/* ------------------------------------------------------------------ */
/* VMDK sparse header                                                  */

/* A valid header: 1 GiB, 64 KiB grains, 512 GTEs, GD at sector 21. */
static void v_header(uint8_t *b)
{
	memset(b, 0, 512);
	put_le32(b, VMDK_MAGIC);
	put_le32(b + 4, 1);
	put_le32(b + 8, VMDK_FLAG_NL_TEST | VMDK_FLAG_RGD);
	put_le64(b + 12, 2097152);
	put_le64(b + 20, 128);
	put_le64(b + 28, 1);
	put_le64(b + 36, 20);
	put_le32(b + 44, 512);
	put_le64(b + 48, 21);
	put_le64(b + 56, 29);
	put_le64(b + 64, 128);
	b[73] = '\n';
	b[74] = ' ';
	b[75] = '\r';
	b[76] = '\n';
}

static void test_vmdk_header_valid(void **state)
{
	uint8_t b[512];
	struct vmdk_sparse_header h;

	v_header(b);
	assert_int_equal(vmdk_sparse_header_decode(NULL, b, &h), 0);
	assert_int_equal(h.version, 1);
	assert_int_equal(h.capacity, 2097152);
	assert_int_equal(h.grain_sectors, 128);
	assert_int_equal(h.desc_offset, 1);
	assert_int_equal(h.desc_size, 20);
	assert_int_equal(h.gtes_per_gt, 512);
	assert_int_equal(h.rgd_offset, 21);
	assert_int_equal(h.gd_offset, 29);
	assert_int_equal(h.overhead, 128);
	assert_int_equal(h.compress, 0);
	/* Stream-optimized: compressed, markers, GD at the end. */
	put_le32(b + 4, 3);
	put_le32(b + 8, VMDK_FLAG_NL_TEST | VMDK_FLAG_COMPRESSED | VMDK_FLAG_MARKERS);
	put_le64(b + 56, VMDK_GD_AT_END);
	put_le16(b + 77, VMDK_COMPRESS_DEFLATE);
	b[72] = 1;
	assert_int_equal(vmdk_sparse_header_decode(NULL, b, &h), 0);
	assert_int_equal(h.gd_offset, VMDK_GD_AT_END);
	assert_int_equal(h.compress, 1);
	assert_int_equal(h.unclean, 1);
	/* Without the newline-test flag, mangled test bytes do not matter. */
	v_header(b);
	put_le32(b + 8, 0);
	b[75] = '\n';
	assert_int_equal(vmdk_sparse_header_decode(NULL, b, &h), 0);
}

static void test_vmdk_header_bad(void **state)
{
	uint8_t b[512];
	struct vmdk_sparse_header h;

	v_header(b);
	memcpy(b, "COWD", 4);
	assert_int_equal(vmdk_sparse_header_decode(NULL, b, &h), VHD_E_FORMAT);
	for (uint32_t v = 0; v < 6; v++) {
		v_header(b);
		put_le32(b + 4, v);
		assert_int_equal(vmdk_sparse_header_decode(NULL, b, &h),
				 v >= 1 && v <= 3 ? 0 : VHD_E_UNSUPPORTED);
	}
	/* The newline test catches CR-LF conversion. */
	v_header(b);
	b[75] = '\n';
	assert_int_equal(vmdk_sparse_header_decode(NULL, b, &h), VHD_E_CORRUPT);
	assert_msg("newline");
	/* Compression. */
	v_header(b);
	put_le16(b + 77, 2);
	assert_int_equal(vmdk_sparse_header_decode(NULL, b, &h), VHD_E_UNSUPPORTED);
	put_le16(b + 77, 0);
	put_le32(b + 8, VMDK_FLAG_COMPRESSED);
	assert_int_equal(vmdk_sparse_header_decode(NULL, b, &h), VHD_E_CORRUPT);
}

static void test_vmdk_header_geometry(void **state)
{
	static const struct { uint64_t grain; uint32_t gtes; uint64_t cap; int rc; } cases[] = {
		{ 128, 512, 2097152, 0 },
		{ 1, 1, 1, 0 },
		{ 65536, 512, 1ULL << 40, 0 },
		{ 0, 512, 100, VHD_E_CORRUPT },
		{ 3, 512, 100, VHD_E_CORRUPT },
		{ 96, 512, 100, VHD_E_CORRUPT },
		{ 131072, 512, 100, VHD_E_UNSUPPORTED },
		{ 1ULL << 63, 512, 100, VHD_E_UNSUPPORTED },
		{ (1ULL << 63) + 1, 512, 100, VHD_E_CORRUPT },
		{ 128, 0, 100, VHD_E_CORRUPT },
		{ 128, 513, 100, VHD_E_CORRUPT },
		{ 65536, 512, 1ULL << 48, 0 },	/* the largest directory */
		{ 65536, 512, (1ULL << 48) + 1, VHD_E_UNSUPPORTED },
		{ 128, 512, VMDK_MAX_CAPACITY, VHD_E_UNSUPPORTED },
		{ 128, 512, VMDK_MAX_CAPACITY + 1, VHD_E_CORRUPT },
		{ 128, 512, UINT64_MAX, VHD_E_CORRUPT },
		/* A grain directory of more than 8 Mi entries. */
		{ 1, 1, (uint64_t)VMDK_MAX_GD_ENTRIES, 0 },
		{ 1, 1, (uint64_t)VMDK_MAX_GD_ENTRIES + 1, VHD_E_UNSUPPORTED },
	};
	uint8_t b[512];
	struct vmdk_sparse_header h;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v_header(b);
		put_le64(b + 20, cases[i].grain);
		put_le32(b + 44, cases[i].gtes);
		put_le64(b + 12, cases[i].cap);
		if (vmdk_sparse_header_decode(NULL, b, &h) != cases[i].rc)
			fail_msg("case %zu: got %d (%s)", i,
				 vmdk_sparse_header_decode(NULL, b, &h), vhd_errmsg(NULL));
	}
}

/* ------------------------------------------------------------------ */
/* VMDK descriptors                                                    */

static int parse(const char *text, struct vmdk_descriptor *d)
{
	return vmdk_descriptor_parse(NULL, text, strlen(text), d);
}

static void test_vmdk_descriptor_flat(void **state)
{
	static const char text[] =
		"# Disk DescriptorFile\r\n"
		"version=1\r\n"
		"CID=12345678\r\n"
		"parentCID=ffffffff\r\n"
		"createType=\"monolithicFlat\"\r\n"
		"\r\n"
		"# Extent description\r\n"
		"RW 2048 FLAT \"disk-flat.vmdk\" 0\r\n"
		"\r\n"
		"ddb.virtualHWVersion = \"4\"\r\n"
		"ddb.geometry.cylinders = \"2\"\r\n";
	struct vmdk_descriptor d;

	assert_int_equal(parse(text, &d), 0);
	assert_string_equal(d.create_type, "monolithicFlat");
	assert_null(d.parent_hint);
	assert_int_equal(d.next, 1);
	assert_int_equal(d.ext[0].type, VMDK_EXT_FLAT);
	assert_int_equal(d.ext[0].sectors, 2048);
	assert_int_equal(d.ext[0].offset, 0);
	assert_string_equal(d.ext[0].file, "disk-flat.vmdk");
	vmdk_descriptor_release(&d);
}

static void test_vmdk_descriptor_extents(void **state)
{
	static const char text[] =
		"# Disk DescriptorFile\n"
		"createType = \"twoGbMaxExtentSparse\"\n"
		"parentFileNameHint=\"../base image.vmdk\"\n"
		"  RW 4192256 SPARSE \"a b-s001.vmdk\"  \n"
		"RDONLY\t100 FLAT \"x-flat.vmdk\" 2048\n"
		"RW 64 ZERO\n"
		"RW 8 VMFS \"raw.bin\"\n"
		"ddb.adapterType = \"ide\"\n"
		"garbage line without equals\n";
	struct vmdk_descriptor d;

	assert_int_equal(parse(text, &d), 0);
	assert_string_equal(d.create_type, "twoGbMaxExtentSparse");
	assert_string_equal(d.parent_hint, "../base image.vmdk");
	assert_int_equal(d.next, 4);
	assert_int_equal(d.ext[0].type, VMDK_EXT_SPARSE);
	assert_int_equal(d.ext[0].sectors, 4192256);
	assert_string_equal(d.ext[0].file, "a b-s001.vmdk");
	assert_int_equal(d.ext[1].type, VMDK_EXT_FLAT);
	assert_int_equal(d.ext[1].offset, 2048);
	assert_int_equal(d.ext[2].type, VMDK_EXT_ZERO);
	assert_null(d.ext[2].file);
	assert_int_equal(d.ext[3].type, VMDK_EXT_FLAT);
	assert_int_equal(d.ext[3].offset, 0);
	vmdk_descriptor_release(&d);

	/* Text stops at a NUL. */
	static const char nul[] = "RW 8 ZERO\n\0RW 8 BOGUS\n";
	assert_int_equal(vmdk_descriptor_parse(NULL, nul, sizeof(nul), &d), 0);
	assert_int_equal(d.next, 1);
	vmdk_descriptor_release(&d);
}

static void test_vmdk_descriptor_bad(void **state)
{
	static const struct { const char *text; int rc; const char *msg; } cases[] = {
		{ "# Disk DescriptorFile\nversion=1\n", VHD_E_CORRUPT, "no extents" },
		{ "RW 8 VMFSSPARSE \"x.vmdk\"\n", VHD_E_UNSUPPORTED, "VMFSSPARSE" },
		{ "RW 8 SESPARSE \"x.vmdk\"\n", VHD_E_UNSUPPORTED, "SESPARSE" },
		{ "RW 8 VMFSRDM \"x.vmdk\"\n", VHD_E_UNSUPPORTED, "VMFSRDM" },
		{ "NOACCESS 8 FLAT \"x\" 0\n", VHD_E_UNSUPPORTED, "NOACCESS" },
		{ "RW 0 FLAT \"x\" 0\n", VHD_E_CORRUPT, "line 1" },
		{ "RW -8 FLAT \"x\" 0\n", VHD_E_CORRUPT, "invalid extent" },
		{ "RW 8x FLAT \"x\" 0\n", VHD_E_CORRUPT, "invalid extent" },
		{ "RW 99999999999999999999 FLAT \"x\" 0\n", VHD_E_CORRUPT, "invalid" },
		{ "RW 18014398509481985 ZERO\n", VHD_E_CORRUPT, "invalid" },
		{ "RW 8\n", VHD_E_CORRUPT, "invalid" },
		{ "RW 8 FLAT\n", VHD_E_CORRUPT, "invalid" },
		{ "RW 8 FLAT \"x 0\n", VHD_E_CORRUPT, "file name" },
		{ "RW 8 FLAT \"\" 0\n", VHD_E_CORRUPT, "file name" },
		{ "RW 8 SPARSE \"x\" 0\n", VHD_E_CORRUPT, "invalid" },
		{ "RW 8 ZERO \"x\"\n", VHD_E_CORRUPT, "invalid" },
		{ "RW 8 FLAT \"x\" 0 junk\n", VHD_E_CORRUPT, "invalid" },
		{ "RW 8 FLAT \"x\" -1\n", VHD_E_CORRUPT, "invalid" },
		{ "version=1\n\n# c\nRW 8 FLAT \"x\" z\n", VHD_E_CORRUPT, "line 4" },
		{ "createType=\"fullDevice\"\nRW 8 FLAT \"/dev/sda\" 0\n", VHD_E_UNSUPPORTED,
		  "raw device" },
		{ "RW 18014398509481984 ZERO\nRW 1 ZERO\n", VHD_E_CORRUPT, "too many sectors" },
	};
	struct vmdk_descriptor d;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = parse(cases[i].text, &d);
		if (rc != cases[i].rc)
			fail_msg("case %zu: got %d (%s)", i, rc, vhd_errmsg(NULL));
		assert_msg(cases[i].msg);
		assert_int_equal(d.next, 0);	/* released on failure */
		assert_null(d.ext);
	}
}

/* ------------------------------------------------------------------ */
/* Whole images in memory                                              */

struct sim {
	struct vhd_crashsim *cs;
	struct vhd_open_opts o;
};

static void sim_init(struct sim *s)
{
	s->cs = vhd_crashsim_new(1);
	assert_non_null(s->cs);
	memset(&s->o, 0, sizeof(s->o));
	s->o.io = vhd_crashsim_factory(s->cs);
}

static vhd_disk *sim_open(struct sim *s, const char *path, const void *buf,
			  size_t len)
{
	vhd_disk *d = NULL;

	if (buf)
		assert_int_equal(vhd_crashsim_load_buf(s->cs, path, buf, len), 0);
	if (vhd_open(path, 0, &s->o, &d) < 0)
		fail_msg("open %s: %s", path, vhd_errmsg(NULL));
	return d;
}

static void assert_reads(vhd_disk *d, const uint8_t *want, uint64_t size)
{
	uint8_t *got = malloc(size + 1);

	assert_non_null(got);
	assert_int_equal(vhd_size(d), size);
	assert_int_equal(vhd_pread(d, got, size, 0), (ssize_t)size);
	assert_memory_equal(got, want, size);
	/* Odd ranges crossing every kind of boundary. */
	for (int i = 0; i < 200; i++) {
		uint64_t off = rnd() % size, len = rnd() % (size - off) % 70000 + 1;
		if (off + len > size)
			len = size - off;
		assert_int_equal(vhd_pread(d, got, len, off), (ssize_t)len);
		if (memcmp(got, want + off, len))
			fail_msg("read [%llu, +%llu) differs", (unsigned long long)off,
				 (unsigned long long)len);
	}
	free(got);
}

struct ext_sum {
	uint64_t covered, data, zero;
	uint64_t next;
};

static int ext_cb(void *opaque, const struct vhd_extent *e)
{
	struct ext_sum *s = opaque;

	assert_int_equal(e->offset, s->next);
	s->next += e->length;
	s->covered += e->length;
	if (e->type == VHD_EXT_DATA)
		s->data += e->length;
	else
		s->zero += e->length;
	return 0;
}

/* Extents cover the disk, and every ZERO extent reads as zeros. */
static struct ext_sum assert_extents(vhd_disk *d, const uint8_t *want)
{
	struct ext_sum s = { 0, 0, 0, 0 };

	assert_int_equal(vhd_extents(d, 0, vhd_size(d), ext_cb, &s), 0);
	assert_int_equal(s.covered, vhd_size(d));
	return s;
}

/* -- qcow2 image builder: 4 KiB clusters, v3 -- */

#define QC 4096u
#define Q_CLUSTERS 12		/* guest clusters */
#define Q_SIZE (Q_CLUSTERS * QC - 1000)	/* last cluster partly inside */

struct qimg {
	uint8_t *b;
	size_t len;
	uint8_t guest[Q_CLUSTERS * QC];	/* what it must read as */
	uint64_t l2_off;
};

static void q_put_l2(struct qimg *q, unsigned i, uint64_t entry)
{
	put_be64(q->b + q->l2_off + 8 * i, entry);
}

/* Layout: 0 header (+ backing name at 512), 1 L1, 2 L2, 3.. data.
 * Guest clusters: 0,1 data (contiguous run), 2 zero flag, 3 compressed,
 * 4 unallocated, 5 zero flag with a cluster, 6 data, 7 compressed
 * (second), 8 unallocated, 9 data (not after 6), 10 compressed, 11 data
 * (partly past the disk's end).  Unallocated clusters read as the backing
 * file (@backing) or zeros. */
static void q_build(struct qimg *q, const uint8_t *backing, const char *backing_name)
{
	uint64_t next = 3 * QC;
	uint8_t z[2 * QC];

	q->len = 32 * QC;
	q->b = calloc(1, q->len);
	assert_non_null(q->b);
	memset(q->guest, 0, sizeof(q->guest));
	put_be32(q->b, QCOW2_MAGIC);
	put_be32(q->b + 4, 3);
	put_be32(q->b + 20, 12);
	put_be64(q->b + 24, Q_SIZE);
	put_be32(q->b + 36, 1);
	put_be64(q->b + 40, QC);
	put_be32(q->b + 96, 4);
	put_be32(q->b + 100, 104);
	if (backing_name) {
		put_be64(q->b + 8, 512);
		put_be32(q->b + 16, (uint32_t)strlen(backing_name));
		memcpy(q->b + 512, backing_name, strlen(backing_name));
	}
	q->l2_off = 2 * QC;
	put_be64(q->b + QC, (1ULL << 63) | q->l2_off);
	for (unsigned c = 0; c < Q_CLUSTERS; c++) {
		uint8_t *g = q->guest + c * QC;
		size_t n;
		switch (c) {
		case 0: case 1: case 6: case 9: case 11:
			if (c == 9)
				next += QC;	/* a gap: not contiguous with 6 */
			fill_random(q->b + next, QC);
			memcpy(g, q->b + next, QC);
			q_put_l2(q, c, (1ULL << 63) | next);
			next += QC;
			break;
		case 2:
			q_put_l2(q, c, 1);
			break;
		case 5:
			fill_random(q->b + next, QC);	/* stale: must not show */
			q_put_l2(q, c, next | 1);
			next += QC;
			break;
		case 3: case 7: case 10:
			fill_text(g, QC);
			n = deflate_buf(g, QC, z, sizeof(z), -12);
			/* Unaligned start; sector count rounds up. */
			next += 100;
			memcpy(q->b + next, z, n);
			q_put_l2(q, c, (1ULL << 62) |
				 ((uint64_t)((next % 512 + n + 511) / 512 - 1) << 58) | next);
			next = (next + n + QC - 1) / QC * QC;
			break;
		default:
			if (backing)
				memcpy(g, backing + c * QC, QC);
			break;
		}
	}
	assert_true(next <= q->len);
	q->len = next;
}

static void test_qcow2_image_reads(void **state)
{
	struct qimg q;
	struct sim s;
	vhd_disk *d;
	struct vhd_info info;
	struct ext_sum e;

	sim_init(&s);
	q_build(&q, NULL, NULL);
	d = sim_open(&s, "a.qcow2", q.b, q.len);
	assert_reads(d, q.guest, Q_SIZE);
	e = assert_extents(d, q.guest);
	/* Clusters 2, 4, 5, 8 read as zeros and are not data. */
	assert_int_equal(e.zero, 4 * QC);
	assert_int_equal(vhd_get_info(d, &info), 0);
	assert_int_equal(info.format, VHD_FMT_QCOW2);
	assert_int_equal(info.type, VHD_TYPE_DYNAMIC);
	assert_int_equal(info.block_size, QC);
	assert_int_equal(info.max_table_entries, Q_CLUSTERS);
	assert_int_equal(info.blocks_allocated, 8);
	/* Writes are refused (the handle is read-only, and so is the format). */
	assert_int_equal(vhd_pwrite(d, q.guest, 512, 0), -EROFS);
	vhd_close(d);

	/* A read-write open is refused with one line. */
	assert_int_equal(vhd_open("a.qcow2", VHD_OPEN_RDWR, &s.o, &d), -EROFS);
	assert_msg("a.qcow2: qcow2 images are read-only in vhdkit (convert them)");
	free(q.b);
	vhd_crashsim_free(s.cs);
}

static void test_qcow2_image_backing(void **state)
{
	uint8_t *base = malloc(Q_SIZE);
	struct vhd_info info;
	struct qimg q;
	struct sim s;
	vhd_disk *d;
	struct ext_sum e;

	assert_non_null(base);
	fill_random(base, Q_SIZE);
	sim_init(&s);
	assert_int_equal(vhd_crashsim_load_buf(s.cs, "base.raw", base, Q_SIZE - 5000), 0);
	/* The backing file is shorter: past its end reads zeros. */
	memset(base + Q_SIZE - 5000, 0, 5000);
	q_build(&q, base, "base.raw");
	d = sim_open(&s, "child.qcow2", q.b, q.len);
	assert_reads(d, q.guest, Q_SIZE);
	e = assert_extents(d, q.guest);
	assert_true(e.data >= 7 * QC);
	assert_int_equal(vhd_get_info(d, &info), 0);
	assert_int_equal(info.type, VHD_TYPE_DIFF);
	assert_string_equal(info.parent_name, "base.raw");
	assert_string_equal(info.parent_path, "base.raw");
	assert_non_null(vhd_parent(d));
	vhd_close(d);

	/* NOPARENT: the backing file is not opened; its ranges read zeros. */
	assert_int_equal(vhd_open("child.qcow2", VHD_OPEN_NOPARENT, &s.o, &d), 0);
	assert_null(vhd_parent(d));
	vhd_close(d);

	/* A missing backing file: one line naming both. */
	put_be32(q.b + 16, 7);
	memcpy(q.b + 512, "gone.ra", 7);
	assert_int_equal(vhd_crashsim_load_buf(s.cs, "orphan.qcow2", q.b, q.len), 0);
	assert_int_equal(vhd_open("orphan.qcow2", 0, &s.o, &d), VHD_E_NOPARENT);
	assert_msg("orphan.qcow2: backing file gone.ra not found");
	free(q.b);
	free(base);
	vhd_crashsim_free(s.cs);
}

static void test_qcow2_image_damage(void **state)
{
	uint8_t buf[QC];
	struct qimg q;
	struct sim s;
	vhd_disk *d;

	sim_init(&s);
	q_build(&q, NULL, NULL);
	/* Data cluster 6 past EOF: reads of it fail, others still work. */
	q_put_l2(&q, 6, (uint64_t)q.len + QC);
	d = sim_open(&s, "eof.qcow2", q.b, q.len);
	assert_int_equal(vhd_pread(d, buf, QC, 0), QC);
	assert_int_equal(vhd_pread(d, buf, 10, 6 * QC + 5), VHD_E_TRUNCATED);
	assert_non_null(strstr(vhd_errmsg(d), "guest offset 24576 points past the end"));
	assert_int_equal(vhd_extents(d, 0, vhd_size(d), ext_cb, &(struct ext_sum){ 0 }),
			 VHD_E_TRUNCATED);
	vhd_close(d);

	/* Unaligned data cluster; zero flag made v2. */
	free(q.b);
	q_build(&q, NULL, NULL);
	q_put_l2(&q, 0, 3 * QC + 512);
	d = sim_open(&s, "unaligned.qcow2", q.b, q.len);
	assert_int_equal(vhd_pread(d, buf, 1, 0), VHD_E_CORRUPT);
	vhd_close(d);
	free(q.b);
	q_build(&q, NULL, NULL);
	put_be32(q.b + 4, 2);
	d = sim_open(&s, "v2zero.qcow2", q.b, q.len);
	assert_int_equal(vhd_pread(d, buf, 1, 2 * QC), VHD_E_CORRUPT);
	assert_int_equal(vhd_pread(d, buf, QC, 0), QC);
	vhd_close(d);
	free(q.b);

	/* Compressed cluster 3 garbled, and one cut short by the file end. */
	q_build(&q, NULL, NULL);
	{
		uint64_t e = get_be64(q.b + q.l2_off + 3 * 8);
		uint64_t host = e & ((1ULL << 58) - 1);
		fill_random(q.b + host + 2, 40);
	}
	d = sim_open(&s, "garbled.qcow2", q.b, q.len);
	assert_int_equal(vhd_pread(d, buf, 1, 3 * QC), VHD_E_CORRUPT);
	assert_non_null(strstr(vhd_errmsg(d), "does not inflate"));
	assert_int_equal(vhd_pread(d, buf, QC, 7 * QC), QC);
	assert_memory_equal(buf, q.guest + 7 * QC, QC);
	vhd_close(d);
	{
		uint64_t e = get_be64(q.b + q.l2_off + 10 * 8);
		uint64_t host = e & ((1ULL << 58) - 1);
		d = sim_open(&s, "cut.qcow2", q.b, host + 20);
	}
	assert_int_equal(vhd_pread(d, buf, 1, 10 * QC), VHD_E_CORRUPT);
	vhd_close(d);

	/* The L1 table names an L2 table past the end: refused at open. */
	put_be64(q.b + QC, 1ULL << 40);
	assert_int_equal(vhd_crashsim_load_buf(s.cs, "l1.qcow2", q.b, q.len), 0);
	assert_int_equal(vhd_open("l1.qcow2", 0, &s.o, &d), VHD_E_TRUNCATED);
	assert_msg("l1.qcow2: L1 entry 0: L2 table at 1099511627776 lies past the end");
	put_be64(q.b + QC, 2 * QC + 512);
	assert_int_equal(vhd_crashsim_load_buf(s.cs, "l1b.qcow2", q.b, q.len), 0);
	assert_int_equal(vhd_open("l1b.qcow2", 0, &s.o, &d), VHD_E_CORRUPT);
	/* Truncated inside the L1 table. */
	assert_int_equal(vhd_crashsim_load_buf(s.cs, "short.qcow2", q.b, QC + 4), 0);
	assert_int_equal(vhd_open("short.qcow2", 0, &s.o, &d), VHD_E_TRUNCATED);
	assert_msg("L1 table");
	free(q.b);
	vhd_crashsim_free(s.cs);
}

struct findings {
	unsigned n[3];
	char last[512];
};

static void found(void *opaque, enum vhd_check_severity sev, const char *msg)
{
	struct findings *f = opaque;

	f->n[sev]++;
	snprintf(f->last, sizeof(f->last), "%s", msg);
}

static void test_qcow2_check(void **state)
{
	struct vhd_check_result res = { 0, 0, 0 };
	struct findings f = { { 0, 0, 0 }, "" };
	struct qimg q;
	struct sim s;

	sim_init(&s);
	/* A clean image; then the dirty bit (information only). */
	q_build(&q, NULL, NULL);
	assert_int_equal(vhd_crashsim_load_buf(s.cs, "ok.qcow2", q.b, q.len), 0);
	assert_int_equal(vhd_check("ok.qcow2", 0, &s.o, found, &f, &res), 0);
	assert_int_equal(res.errors + res.warnings + res.infos, 0);
	put_be64(q.b + 72, QCOW2_INCOMPAT_DIRTY);
	q_put_l2(&q, 9, (uint64_t)q.len + 7 * QC);
	assert_int_equal(vhd_crashsim_load_buf(s.cs, "dirty.qcow2", q.b, q.len), 0);
	assert_int_equal(vhd_check("dirty.qcow2", 0, &s.o, found, &f, &res), 0);
	assert_int_equal(res.infos, 1);
	assert_int_equal(res.errors, 1);
	assert_non_null(strstr(f.last, "guest offset 36864 points past the end"));
	/* Two L1 entries naming one L2 table: reported, and read once. */
	put_be64(q.b + 72, 0);
	q_put_l2(&q, 9, 0);
	put_be64(q.b + 24, 3ULL << 20);
	put_be32(q.b + 36, 2);
	put_be64(q.b + QC + 8, q.l2_off);
	assert_int_equal(vhd_crashsim_load_buf(s.cs, "shared.qcow2", q.b, q.len), 0);
	memset(&res, 0, sizeof(res));
	assert_int_equal(vhd_check("shared.qcow2", 0, &s.o, found, &f, &res), 0);
	assert_int_equal(res.errors, 1);
	assert_non_null(strstr(f.last, "L1 entries 0 and 1 share the L2 table at 8192"));
	free(q.b);
	vhd_crashsim_free(s.cs);
}

struct reader {
	vhd_disk *d;
	const uint8_t *want;
	uint64_t size;
	uint64_t seed;
	int bad;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	uint8_t *buf = malloc(3 * QC);
	uint64_t x = r->seed;

	for (int i = 0; i < 3000 && buf; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t off = (x >> 20) % r->size, len = (x >> 40) % (3 * QC) + 1;
		if (len > r->size - off)
			len = r->size - off;
		if (vhd_pread(r->d, buf, len, off) != (ssize_t)len ||
		    memcmp(buf, r->want + off, len))
			r->bad++;
	}
	free(buf);
	return NULL;
}

static void test_qcow2_concurrent_reads(void **state)
{
	struct reader r[8];
	pthread_t t[8];
	struct qimg q;
	struct sim s;
	vhd_disk *d;

	sim_init(&s);
	q_build(&q, NULL, NULL);
	d = sim_open(&s, "mt.qcow2", q.b, q.len);
	for (int i = 0; i < 8; i++) {
		r[i] = (struct reader){ d, q.guest, Q_SIZE, 0x1234567ull * (i + 1), 0 };
		assert_int_equal(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(r[i].bad, 0);
	}
	vhd_close(d);
	free(q.b);
	vhd_crashsim_free(s.cs);
}

/* -- VMDK builders: 4 KiB grains (8 sectors), 4 GTEs per table -- */

#define VG 4096u
#define V_GRAINS 14
#define V_SIZE (V_GRAINS * VG - 1024)	/* last grain partly inside */
#define V_GTES 4

struct vimg {
	uint8_t *b;
	size_t len;
	uint8_t guest[V_GRAINS * VG];
};

/* Sparse extent: header 0, descriptor 1..2, GD at 3, GTs at 4..(4 sectors
 * each 16 bytes; one sector per table), grains from sector 16.
 * Grains: 0,1 data (a run), 2 zeroed GTE, 3 absent, 4..7 absent table,
 * 8 data, 9 data, 10 data (not contiguous), 11..13 data / compressed.
 * @compressed: every data grain is compressed behind a marker, and with
 * @at_end the header says GD_AT_END and a footer locates it. */
static void v_build(struct vimg *v, bool compressed, bool at_end, const char *desc)
{
	uint64_t next = 16 * 512, gd = 3;
	uint32_t gts = (V_GRAINS + V_GTES - 1) / V_GTES;
	uint8_t *h;
	uint8_t z[2 * VG];

	v->len = 256 * 1024;
	v->b = calloc(1, v->len);
	assert_non_null(v->b);
	memset(v->guest, 0, sizeof(v->guest));
	h = v->b;
	v_header(h);
	put_le32(h + 8, VMDK_FLAG_NL_TEST | VMDK_FLAG_ZERO_GRAIN |
		 (compressed ? VMDK_FLAG_COMPRESSED | VMDK_FLAG_MARKERS : 0));
	put_le64(h + 12, V_SIZE / 512);
	put_le64(h + 20, VG / 512);
	put_le64(h + 28, 1);
	put_le64(h + 36, 2);
	put_le32(h + 44, V_GTES);
	put_le64(h + 48, 0);
	put_le64(h + 56, gd);
	put_le64(h + 64, 16);
	put_le16(h + 77, compressed ? VMDK_COMPRESS_DEFLATE : 0);
	strcpy((char *)v->b + 512, desc ? desc : "# Disk DescriptorFile\nparentCID=ffffffff\n");
	for (uint32_t t = 0; t < gts; t++)
		put_le32(v->b + gd * 512 + 4 * t, t == 1 ? 0 : 4 + t);
	for (unsigned g = 0; g < V_GRAINS; g++) {
		uint8_t *gte = v->b + (4 + g / V_GTES) * 512 + 4 * (g % V_GTES);
		uint8_t *out = v->guest + g * VG;
		size_t n;
		if (g / V_GTES == 1 || g == 3)
			continue;		/* absent */
		if (g == 2) {
			put_le32(gte, 1);	/* zeroed grain */
			continue;
		}
		if (g == 10 && !compressed)
			next += VG;		/* break the run */
		put_le32(gte, (uint32_t)(next / 512));
		if (g % 2)
			fill_text(out, VG);
		else
			fill_random(out, VG);
		if (g == V_GRAINS - 1)
			memset(out + VG - 1024, 0, 1024);	/* past the end */
		if (!compressed) {
			memcpy(v->b + next, out, VG);
			next += VG;
			continue;
		}
		n = deflate_buf(out, g == V_GRAINS - 1 ? VG - 1024 : VG, z, sizeof(z), 15);
		put_le64(v->b + next, g * (VG / 512));
		put_le32(v->b + next + 8, (uint32_t)n);
		memcpy(v->b + next + 12, z, n);
		next = (next + 12 + n + 511) / 512 * 512;
	}
	if (at_end) {
		/* Footer marker, header copy, end-of-stream marker. */
		put_le64(v->b + next, 1);
		put_le32(v->b + next + 12, VMDK_MARKER_FOOTER);
		memcpy(v->b + next + 512, h, 512);
		next += 3 * 512;
		put_le64(h + 56, VMDK_GD_AT_END);
	}
	assert_true(next <= v->len);
	v->len = next;
}

static void test_vmdk_sparse_image(void **state)
{
	struct vhd_info info;
	struct ext_sum e;
	struct vimg v;
	struct sim s;
	vhd_disk *d;

	sim_init(&s);
	v_build(&v, false, false, NULL);
	d = sim_open(&s, "s.vmdk", v.b, v.len);
	assert_reads(d, v.guest, V_SIZE);
	e = assert_extents(d, v.guest);
	assert_int_equal(e.zero, 6 * VG);	/* grains 2, 3, 4..7 */
	assert_int_equal(vhd_get_info(d, &info), 0);
	assert_int_equal(info.format, VHD_FMT_VMDK);
	assert_int_equal(info.type, VHD_TYPE_DYNAMIC);
	assert_int_equal(info.block_size, VG);
	assert_int_equal(info.blocks_allocated, V_GRAINS - 6);
	vhd_close(d);
	assert_int_equal(vhd_open("s.vmdk", VHD_OPEN_RDWR, &s.o, &d), -EROFS);
	assert_msg("VMDK images are read-only in vhdkit (convert them)");
	free(v.b);

	/* Stream-optimized, the grain directory found through the footer. */
	for (int at_end = 0; at_end < 2; at_end++) {
		v_build(&v, true, at_end, NULL);
		d = sim_open(&s, at_end ? "end.vmdk" : "stream.vmdk", v.b, v.len);
		assert_reads(d, v.guest, V_SIZE);
		assert_extents(d, v.guest);
		vhd_close(d);
		free(v.b);
	}
	vhd_crashsim_free(s.cs);
}

static void test_vmdk_sparse_damage(void **state)
{
	uint8_t buf[VG];
	struct vimg v;
	struct sim s;
	vhd_disk *d;

	sim_init(&s);
	/* A parent named in the embedded descriptor: refused. */
	v_build(&v, false, false, "parentCID=12345678\nparentFileNameHint=\"base.vmdk\"\n");
	assert_int_equal(vhd_crashsim_load_buf(s.cs, "delta.vmdk", v.b, v.len), 0);
	assert_int_equal(vhd_open("delta.vmdk", 0, &s.o, &d), VHD_E_UNSUPPORTED);
	assert_msg("differencing VMDKs are not supported (parent \"base.vmdk\")");
	free(v.b);

	/* A grain past the end of the file. */
	v_build(&v, false, false, NULL);
	put_le32(v.b + 4 * 512 + 4, 1u << 30);
	d = sim_open(&s, "g.vmdk", v.b, v.len);
	assert_int_equal(vhd_pread(d, buf, VG, 0), VG);
	assert_int_equal(vhd_pread(d, buf, VG, VG), VHD_E_TRUNCATED);
	assert_non_null(strstr(vhd_errmsg(d), "past the end"));
	vhd_close(d);
	/* A grain table past the end: refused at open. */
	put_le32(v.b + 3 * 512, 1u << 30);
	assert_int_equal(vhd_crashsim_load_buf(s.cs, "gt.vmdk", v.b, v.len), 0);
	assert_int_equal(vhd_open("gt.vmdk", 0, &s.o, &d), VHD_E_TRUNCATED);
	assert_msg("grain directory entry 0");
	free(v.b);

	/* Stream: a marker naming another sector, garbage, a cut footer. */
	v_build(&v, true, true, NULL);
	{
		uint64_t g0 = (uint64_t)get_le32(v.b + 4 * 512) * 512;
		uint64_t g1 = (uint64_t)get_le32(v.b + 4 * 512 + 4) * 512;
		put_le64(v.b + g0, 99);
		fill_random(v.b + g1 + 14, 30);
	}
	d = sim_open(&s, "bad-stream.vmdk", v.b, v.len);
	assert_int_equal(vhd_pread(d, buf, 1, 0), VHD_E_CORRUPT);
	assert_non_null(strstr(vhd_errmsg(d), "is for sector 99"));
	assert_int_equal(vhd_pread(d, buf, 1, VG), VHD_E_CORRUPT);
	assert_non_null(strstr(vhd_errmsg(d), "does not inflate"));
	assert_int_equal(vhd_pread(d, buf, VG, 8 * VG), VG);
	assert_memory_equal(buf, v.guest + 8 * VG, VG);
	vhd_close(d);
	assert_int_equal(vhd_crashsim_load_buf(s.cs, "cut.vmdk", v.b, v.len - 512), 0);
	assert_int_equal(vhd_open("cut.vmdk", 0, &s.o, &d), VHD_E_CORRUPT);
	assert_msg("footer");
	free(v.b);
	vhd_crashsim_free(s.cs);
}

static void test_vmdk_descriptor_image(void **state)
{
	static const char desc[] =
		"# Disk DescriptorFile\n"
		"version=1\n"
		"createType=\"twoGbMaxExtentFlat\"\n"
		"RW 16 FLAT \"d-f001.vmdk\" 4\n"
		"RW 8 ZERO\n"
		"RW 27 SPARSE \"d-s002.vmdk\"\n"
		"RW 5 FLAT \"d-f001.vmdk\" 0\n";
	uint8_t flat[20 * 512], want[(16 + 8 + 27 + 5) * 512];
	struct vhd_info info;
	struct vimg v;
	struct sim s;
	vhd_disk *d;

	sim_init(&s);
	fill_random(flat, sizeof(flat));
	assert_int_equal(vhd_crashsim_load_buf(s.cs, "dir/d-f001.vmdk", flat, sizeof(flat)), 0);
	v_build(&v, false, false, NULL);
	put_le64(v.b + 12, 27);		/* capacity of the sparse extent */
	assert_int_equal(vhd_crashsim_load_buf(s.cs, "dir/d-s002.vmdk", v.b, v.len), 0);
	memset(want, 0, sizeof(want));
	memcpy(want, flat + 4 * 512, 16 * 512);
	memcpy(want + 24 * 512, v.guest, 27 * 512);
	memcpy(want + 51 * 512, flat, 5 * 512);
	d = sim_open(&s, "dir/d.vmdk", desc, strlen(desc));
	assert_reads(d, want, sizeof(want));
	assert_extents(d, want);
	assert_int_equal(vhd_get_info(d, &info), 0);
	assert_int_equal(info.type, VHD_TYPE_DYNAMIC);
	vhd_close(d);

	/* Capacity and descriptor disagree: refused, naming the extent. */
	put_le64(v.b + 12, 28);
	assert_int_equal(vhd_crashsim_load_buf(s.cs, "b/d.vmdk", desc, strlen(desc)), 0);
	assert_int_equal(vhd_crashsim_load_buf(s.cs, "b/d-f001.vmdk", flat, sizeof(flat)), 0);
	assert_int_equal(vhd_crashsim_load_buf(s.cs, "b/d-s002.vmdk", v.b, v.len), 0);
	assert_int_equal(vhd_open("b/d.vmdk", 0, &s.o, &d), VHD_E_CORRUPT);
	assert_msg("b/d.vmdk: extent d-s002.vmdk holds 28 sectors, the descriptor says 27");
	/* A sparse extent with a bad header: the message names the extent. */
	put_le32(v.b + 4, 9);
	assert_int_equal(vhd_crashsim_load_buf(s.cs, "c/d.vmdk", desc, strlen(desc)), 0);
	assert_int_equal(vhd_crashsim_load_buf(s.cs, "c/d-f001.vmdk", flat, sizeof(flat)), 0);
	assert_int_equal(vhd_crashsim_load_buf(s.cs, "c/d-s002.vmdk", v.b, v.len), 0);
	assert_int_equal(vhd_open("c/d.vmdk", 0, &s.o, &d), VHD_E_UNSUPPORTED);
	assert_msg("c/d.vmdk: extent d-s002.vmdk: VMDK sparse extent version 9");
	/* A missing extent file. */
	assert_int_equal(vhd_crashsim_load_buf(s.cs, "e/d.vmdk", desc, strlen(desc)), 0);
	assert_int_equal(vhd_open("e/d.vmdk", 0, &s.o, &d), VHD_E_NOPARENT);
	assert_msg("e/d.vmdk: cannot open extent e/d-f001.vmdk: not found");
	free(v.b);
	vhd_crashsim_free(s.cs);
}

static void test_detect(void **state)
{
	enum vhd_format f = VHD_FMT_RAW;

	assert_true(import_detect((const uint8_t *)"QFI\xfb\0\0\0\3", 8, &f));
	assert_int_equal(f, VHD_FMT_QCOW2);
	assert_true(import_detect((const uint8_t *)"KDMV\1\0\0\0", 8, &f));
	assert_int_equal(f, VHD_FMT_VMDK);
	assert_true(import_detect((const uint8_t *)"# Disk DescriptorFile", 8, &f));
	assert_false(import_detect((const uint8_t *)"# Digest", 8, &f));
	assert_false(import_detect((const uint8_t *)"QFI\xfa\0\0\0\3", 8, &f));
	assert_false(import_detect((const uint8_t *)"QFI", 3, &f));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_qcow2_header_valid),
		cmocka_unit_test(test_qcow2_header_magic_version),
		cmocka_unit_test(test_qcow2_header_short),
		cmocka_unit_test(test_qcow2_header_geometry),
		cmocka_unit_test(test_qcow2_header_features),
		cmocka_unit_test(test_qcow2_header_l1),
		cmocka_unit_test(test_qcow2_header_backing),
		cmocka_unit_test(test_qcow2_l2_entries),
		cmocka_unit_test(test_qcow2_l2_compressed),
		cmocka_unit_test(test_vmdk_header_valid),
		cmocka_unit_test(test_vmdk_header_bad),
		cmocka_unit_test(test_vmdk_header_geometry),
		cmocka_unit_test(test_vmdk_descriptor_flat),
		cmocka_unit_test(test_vmdk_descriptor_extents),
		cmocka_unit_test(test_vmdk_descriptor_bad),
		cmocka_unit_test(test_qcow2_image_reads),
		cmocka_unit_test(test_qcow2_image_backing),
		cmocka_unit_test(test_qcow2_image_damage),
		cmocka_unit_test(test_qcow2_check),
		cmocka_unit_test(test_qcow2_concurrent_reads),
		cmocka_unit_test(test_vmdk_sparse_image),
		cmocka_unit_test(test_vmdk_sparse_damage),
		cmocka_unit_test(test_vmdk_descriptor_image),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
