/*
 * qcow2.c -- qcow2 import (versions 2 and 3), read-only.
 *
 * Reading follows qemu's docs/interop/qcow2.txt: guest cluster i is found
 * through L1[i >> l2_bits] (an L2 table's offset) and that table's entry
 * i & (l2_entries - 1).  An entry is unallocated (backing file or zeros),
 * zero (v3 flag), a data cluster, or a compressed cluster (raw deflate,
 * window 2^12, as qemu writes it).  Refcounts and snapshots are not needed
 * to read the active image and are ignored.
 *
 * Invariants after open: the header was validated (see import.h for the
 * layout), the whole L1 table is in memory and every L2 table it names is
 * cluster-aligned and inside the file.  L2 entries are checked as they are
 * used: the bytes a read needs must lie inside the file.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "import.h"
#include "io.h"

#define L2_BATCH 64		/* entries fetched per map step */
#define MSG_MAX 256

struct qcow2 {
	struct import_layer base;	/* first: import.c's view */
	struct qcow2_header h;
	uint64_t file_size;		/* at open */
	uint64_t cluster_size;
	unsigned l2_bits;		/* log2(entries per L2 table) */
	uint64_t *l1;			/* host order, h.l1_size entries */
	char *backing;			/* backing file name, NULL if none */
	pthread_mutex_t count_lock;	/* guards the allocation count */
	int64_t allocated;		/* clusters, -1 until counted */
};

static struct qcow2 *Q(vhd_disk *d)
{
	return d->priv;
}

/* ---- header ---- */

static int decode_v3_fields(vhd_disk *d, const uint8_t *buf, size_t len,
			    struct qcow2_header *h)
{
	if (len < QCOW2_V3_HEADER)
		return disk_error(d, VHD_E_TRUNCATED,
				  "file is %zu bytes, too short for a qcow2 v3 header", len);
	h->incompatible = get_be64(buf + 72);
	h->compatible = get_be64(buf + 80);
	h->autoclear = get_be64(buf + 88);
	h->refcount_order = get_be32(buf + 96);
	h->header_length = get_be32(buf + 100);
	if (h->header_length < QCOW2_V3_HEADER || h->header_length % 8)
		return disk_error(d, VHD_E_CORRUPT,
				  "qcow2 header length %u is invalid (at least 104, a multiple of 8)",
				  h->header_length);
	if (h->header_length > QCOW2_V3_HEADER) {
		if (len <= QCOW2_V3_HEADER)
			return disk_error(d, VHD_E_TRUNCATED,
					  "file ends inside the qcow2 header");
		h->compression_type = buf[104];
	}
	return 0;
}

/* Incompatible feature bits (v3): what reading can and cannot cope with. */
static int check_features(vhd_disk *d, const struct qcow2_header *h)
{
	uint64_t f = h->incompatible;

	if (f & ~QCOW2_INCOMPAT_KNOWN)
		return disk_error(d, VHD_E_UNSUPPORTED,
				  "unknown qcow2 incompatible features 0x%" PRIx64,
				  (uint64_t)(f & ~QCOW2_INCOMPAT_KNOWN));
	if (f & QCOW2_INCOMPAT_CORRUPT)
		return disk_error(d, VHD_E_CORRUPT,
				  "qcow2 image is marked corrupt (run qemu-img check -r all)");
	if (f & QCOW2_INCOMPAT_DATA_FILE)
		return disk_error(d, VHD_E_UNSUPPORTED,
				  "qcow2 images with an external data file are not supported");
	if (f & QCOW2_INCOMPAT_EXTL2)
		return disk_error(d, VHD_E_UNSUPPORTED,
				  "qcow2 extended L2 entries (subclusters) are not supported");
	if ((f & QCOW2_INCOMPAT_COMPRESSION) && h->header_length <= QCOW2_V3_HEADER)
		return disk_error(d, VHD_E_CORRUPT,
				  "qcow2 compression type bit set, but the header has no compression type");
	if (h->compression_type && !(f & QCOW2_INCOMPAT_COMPRESSION))
		return disk_error(d, VHD_E_CORRUPT,
				  "qcow2 compression type %u without the compression type feature bit",
				  h->compression_type);
	if (h->compression_type)
		return disk_error(d, VHD_E_UNSUPPORTED,
				  "qcow2 compression type %u (%s) is not supported (zlib only)",
				  h->compression_type,
				  h->compression_type == 1 ? "zstd" : "unknown");
	return 0;
}

/* The L1 table: large enough for the size, aligned, inside the file. */
static int check_l1(vhd_disk *d, const struct qcow2_header *h,
		    uint64_t file_size)
{
	unsigned span_bits = 2 * h->cluster_bits - 3;	/* bytes per L2 table */
	uint64_t need = (h->size >> span_bits) +
			((h->size & ((1ULL << span_bits) - 1)) != 0);
	uint64_t cs = 1ULL << h->cluster_bits;

	if (h->l1_size > QCOW2_MAX_L1)
		return disk_error(d, VHD_E_CORRUPT,
				  "qcow2 L1 table of %u entries is too large", h->l1_size);
	if (h->l1_size < need)
		return disk_error(d, VHD_E_CORRUPT,
				  "qcow2 L1 table has %u entries, %" PRIu64 " needed for %" PRIu64 " bytes",
				  h->l1_size, need, h->size);
	if (h->l1_size == 0)
		return 0;
	if (h->l1_offset % cs || h->l1_offset == 0)
		return disk_error(d, VHD_E_CORRUPT,
				  "qcow2 L1 table offset %" PRIu64 " is not a cluster boundary",
				  h->l1_offset);
	if (h->l1_offset > file_size || file_size - h->l1_offset < (uint64_t)h->l1_size * 8)
		return disk_error(d, VHD_E_TRUNCATED,
				  "qcow2 L1 table at %" PRIu64 " (%u entries) extends past the end of the file (%" PRIu64 " bytes)",
				  h->l1_offset, h->l1_size, file_size);
	return 0;
}

static int check_backing_name(vhd_disk *d, const struct qcow2_header *h,
			      uint64_t file_size)
{
	uint64_t cs = 1ULL << h->cluster_bits;

	if (!h->backing_offset)
		return 0;
	if (h->backing_size == 0 || h->backing_size > QCOW2_MAX_BACKING_NAME)
		return disk_error(d, VHD_E_CORRUPT,
				  "qcow2 backing file name length %u is invalid (1 to %d)",
				  h->backing_size, QCOW2_MAX_BACKING_NAME);
	if (h->backing_offset < h->header_length || h->backing_offset > cs ||
	    cs - h->backing_offset < h->backing_size)
		return disk_error(d, VHD_E_CORRUPT,
				  "qcow2 backing file name at %" PRIu64 " (%u bytes) is outside the header cluster",
				  h->backing_offset, h->backing_size);
	if (h->backing_offset + h->backing_size > file_size)
		return disk_error(d, VHD_E_TRUNCATED,
				  "qcow2 backing file name at %" PRIu64 " extends past the end of the file",
				  h->backing_offset);
	return 0;
}

int qcow2_header_decode(vhd_disk *d, const uint8_t *buf, size_t len,
			uint64_t file_size, struct qcow2_header *h)
{
	int rc;

	memset(h, 0, sizeof(*h));
	if (len < 8 || get_be32(buf) != QCOW2_MAGIC)
		return disk_error(d, VHD_E_FORMAT, "not a qcow2 image (no QFI\\xfb magic)");
	h->version = get_be32(buf + 4);
	if (h->version == 1)
		return disk_error(d, VHD_E_UNSUPPORTED,
				  "qcow version 1 images are not supported (only qcow2 versions 2 and 3)");
	if (h->version != 2 && h->version != 3)
		return disk_error(d, VHD_E_UNSUPPORTED,
				  "qcow2 version %u is not supported (only 2 and 3)", h->version);
	if (len < QCOW2_V2_HEADER)
		return disk_error(d, VHD_E_TRUNCATED,
				  "file is %zu bytes, too short for a qcow2 header", len);
	h->backing_offset = get_be64(buf + 8);
	h->backing_size = get_be32(buf + 16);
	h->cluster_bits = get_be32(buf + 20);
	h->size = get_be64(buf + 24);
	h->crypt_method = get_be32(buf + 32);
	h->l1_size = get_be32(buf + 36);
	h->l1_offset = get_be64(buf + 40);
	h->header_length = QCOW2_V2_HEADER;
	h->refcount_order = 4;
	if (h->version == 3) {
		rc = decode_v3_fields(d, buf, len, h);
		if (rc < 0)
			return rc;
	}
	if (h->cluster_bits < 9)
		return disk_error(d, VHD_E_CORRUPT,
				  "qcow2 cluster size 2^%u is invalid (at least 512 bytes)",
				  h->cluster_bits);
	if (h->cluster_bits > 21)
		return disk_error(d, VHD_E_UNSUPPORTED,
				  "qcow2 cluster size 2^%u is not supported (at most 2 MiB)",
				  h->cluster_bits);
	if (h->header_length > (1U << h->cluster_bits))
		return disk_error(d, VHD_E_CORRUPT,
				  "qcow2 header length %u exceeds the cluster size", h->header_length);
	if (h->crypt_method)
		return disk_error(d, VHD_E_UNSUPPORTED,
				  "encrypted qcow2 images (method %u) are not supported",
				  h->crypt_method);
	rc = check_features(d, h);
	if (rc == 0)
		rc = check_l1(d, h, file_size);
	if (rc == 0)
		rc = check_backing_name(d, h, file_size);
	return rc;
}

/* ---- L2 entries ---- */

int qcow2_l2_decode(uint64_t entry, unsigned cluster_bits, unsigned version,
		    struct qcow2_l2 *out)
{
	uint64_t cs = 1ULL << cluster_bits;

	memset(out, 0, sizeof(*out));
	if (entry & QCOW2_L2_COMPRESSED) {
		unsigned x = 62 - (cluster_bits - 8);
		uint64_t sectors = ((entry >> x) & ((1ULL << (cluster_bits - 8)) - 1)) + 1;

		out->kind = QCOW2_COMPRESSED;
		out->host = entry & ((1ULL << x) - 1);
		out->csize = sectors * 512 - (out->host & 511);
		return 0;
	}
	out->host = entry & QCOW2_L2_OFFSET_MASK;
	if (entry & QCOW2_L2_ZERO) {
		out->kind = QCOW2_ZERO;
		return version >= 3 ? 0 : VHD_E_CORRUPT;
	}
	if (!out->host) {
		out->kind = QCOW2_UNALLOCATED;
		return 0;
	}
	out->kind = QCOW2_DATA;
	return out->host % cs ? VHD_E_CORRUPT : 0;
}

/* Decode the entry of the cluster at guest offset @guest and check that
 * what a read of it needs lies inside the file.  On failure, @why says so. */
static int entry_check(const struct qcow2 *q, uint64_t disk_size, uint64_t e,
		       uint64_t guest, struct qcow2_l2 *out, char *why)
{
	uint64_t visible = disk_size - guest < q->cluster_size ?
			   disk_size - guest : q->cluster_size;
	int rc = qcow2_l2_decode(e, q->h.cluster_bits, q->h.version, out);

	if (rc < 0) {
		snprintf(why, MSG_MAX, out->kind == QCOW2_ZERO ?
			 "L2 entry for guest offset %" PRIu64 " has the zero flag, invalid in a version 2 image" :
			 "L2 entry for guest offset %" PRIu64 " has an unaligned cluster offset",
			 guest);
		return rc;
	}
	if (out->kind == QCOW2_DATA &&
	    (out->host >= q->file_size || q->file_size - out->host < visible)) {
		snprintf(why, MSG_MAX,
			 "L2 entry for guest offset %" PRIu64 " points past the end of the file (cluster at %" PRIu64 ", file is %" PRIu64 " bytes)",
			 guest, out->host, q->file_size);
		return VHD_E_TRUNCATED;
	}
	if (out->kind == QCOW2_COMPRESSED &&
	    (out->host < q->h.header_length || out->host >= q->file_size)) {
		snprintf(why, MSG_MAX,
			 "L2 entry for guest offset %" PRIu64 " points to compressed data outside the file (at %" PRIu64 ", file is %" PRIu64 " bytes)",
			 guest, out->host, q->file_size);
		return out->host < q->h.header_length ? VHD_E_CORRUPT : VHD_E_TRUNCATED;
	}
	return 0;
}

/* ---- map ---- */

struct run {
	enum qcow2_cluster kind;
	uint64_t host;			/* of the run's first byte */
};

static bool run_continues(const struct run *r, const struct qcow2_l2 *e,
			  uint64_t expect_host)
{
	if (e->kind == QCOW2_COMPRESSED || e->kind != r->kind)
		return false;
	if (e->kind == QCOW2_DATA)
		return e->host == expect_host;
	return true;
}

static void set_map(vhd_disk *d, const struct run *r, const struct qcow2_l2 *first,
		    uint64_t off, struct import_map *m)
{
	struct qcow2 *q = Q(d);
	uint64_t in = off & (q->cluster_size - 1);

	switch (r->kind) {
	case QCOW2_UNALLOCATED:
		m->what = q->backing ? LAYER_PARENT : LAYER_ZERO;
		break;
	case QCOW2_ZERO:
		m->what = LAYER_ZERO;
		break;
	case QCOW2_DATA:
		m->what = LAYER_DATA;
		m->io = d->io;
		m->host = r->host + in;
		break;
	case QCOW2_COMPRESSED:
		m->what = LAYER_DATA;
		m->io = d->io;
		m->compressed = true;
		m->host = first->host;
		m->unit_skip = (uint32_t)in;
		m->unit_guest = off - in;
		m->unit_need = (uint32_t)q->cluster_size;
		m->unit_bytes = first->csize;
		break;
	}
}

/* Map [off, end) where end does not cross an L2 table's span. */
static int map_table(vhd_disk *d, uint64_t l2_off, uint64_t off, uint64_t end,
		     struct import_map *m)
{
	struct qcow2 *q = Q(d);
	unsigned cb = q->h.cluster_bits;
	uint64_t first = off >> cb, last = (end - 1) >> cb;
	uint32_t l2i = (uint32_t)(first & ((1ULL << q->l2_bits) - 1));
	uint32_t n = last - first + 1 > L2_BATCH ? L2_BATCH : (uint32_t)(last - first + 1);
	uint8_t raw[L2_BATCH * 8];
	struct qcow2_l2 e0, e;
	char why[MSG_MAX];
	struct run r = { QCOW2_UNALLOCATED, 0 };
	int rc;

	rc = import_table_read(&q->base, d->io, l2_off, (uint32_t)q->cluster_size,
			       l2i * 8, raw, n * 8);
	if (rc < 0)
		return disk_error(d, rc, "cannot read the L2 table at %" PRIu64 ": %s",
				  l2_off, vhd_strerror(rc));
	for (uint32_t i = 0; i < n; i++) {
		uint64_t g = (first + i) << cb;
		rc = entry_check(q, d->size, get_be64(raw + 8 * i), g, i ? &e : &e0, why);
		if (rc < 0)
			return disk_error(d, rc, "%s", why);
		if (i == 0) {
			r.kind = e0.kind;
			r.host = e0.host;
			continue;
		}
		if (e0.kind == QCOW2_COMPRESSED ||
		    !run_continues(&r, &e, r.host + i * q->cluster_size)) {
			n = i;
			break;
		}
	}
	set_map(d, &r, &e0, off, m);
	m->len = ((first + n) << cb) - off;
	if (m->len > end - off)
		m->len = end - off;
	return 0;
}

static int qcow2_map(vhd_disk *d, uint64_t off, uint64_t len,
		     struct import_map *m)
{
	struct qcow2 *q = Q(d);
	unsigned span_bits = q->h.cluster_bits + q->l2_bits;
	uint64_t l1i = off >> span_bits;
	uint64_t end = off + len, span_end = (l1i + 1) << span_bits;
	uint64_t l2_off;

	if (end > span_end)
		end = span_end;
	l2_off = q->l1[l1i] & QCOW2_L1_OFFSET_MASK;
	if (!l2_off) {
		m->what = q->backing ? LAYER_PARENT : LAYER_ZERO;
		m->len = end - off;
		return 0;
	}
	return map_table(d, l2_off, off, end, m);
}

/* Compressed cluster: at most csize bytes (clipped to the file), inflated
 * as qemu does (the output must fill the cluster). */
static int qcow2_inflate(vhd_disk *d, const struct import_map *m, uint8_t *out)
{
	struct qcow2 *q = Q(d);
	uint64_t n = q->file_size - m->host;	/* host < file_size: checked */
	size_t produced = 0;
	uint8_t *in;
	int rc;

	if (n > m->unit_bytes)
		n = m->unit_bytes;
	in = malloc(n);
	if (!in)
		return disk_error(d, -ENOMEM, "out of memory");
	rc = io_read_full(d->io, in, n, m->host);
	if (rc < 0) {
		free(in);
		return disk_error(d, rc, "reading the compressed cluster at %" PRIu64 ": %s",
				  m->host, vhd_strerror(rc));
	}
	rc = import_inflate(in, n, out, q->cluster_size, -12, &produced);
	free(in);
	if (rc == -ENOMEM)
		return disk_error(d, rc, "out of memory");
	if (rc < 0 || produced != q->cluster_size)
		return disk_error(d, VHD_E_CORRUPT,
				  "compressed cluster for guest offset %" PRIu64 " (at %" PRIu64 ") does not inflate to %" PRIu64 " bytes",
				  m->unit_guest, m->host, q->cluster_size);
	return 0;
}

static const struct import_format qcow2_format = {
	.map = qcow2_map,
	.inflate = qcow2_inflate,
};

/* ---- whole-table walks: allocation count and check ---- */

typedef void (*walk_fn)(void *opaque, uint64_t guest, const struct qcow2_l2 *e,
			int rc, const char *why);

struct l2ref {
	uint64_t off;			/* L2 table offset */
	uint64_t l1i;			/* the L1 entry naming it */
};

static int l2ref_cmp(const void *a, const void *b)
{
	const struct l2ref *x = a, *y = b;

	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return x->l1i < y->l1i ? -1 : x->l1i > y->l1i;
}

/* The L2 tables that map guest clusters, sorted by offset (so that a table
 * named twice, which no valid image does, is read once). */
static struct l2ref *l2_tables(vhd_disk *d, size_t *n)
{
	struct qcow2 *q = Q(d);
	struct l2ref *r = malloc((q->h.l1_size ? q->h.l1_size : 1) * sizeof(*r));

	*n = 0;
	if (!r)
		return NULL;
	for (uint64_t l1i = 0; l1i < q->h.l1_size; l1i++)
		if (q->l1[l1i] && (l1i << (q->h.cluster_bits + q->l2_bits)) < d->size)
			r[(*n)++] = (struct l2ref){ q->l1[l1i], l1i };
	qsort(r, *n, sizeof(*r), l2ref_cmp);
	return r;
}

static void walk_table(vhd_disk *d, const uint8_t *t, uint64_t l1i,
		       walk_fn fn, void *opaque)
{
	struct qcow2 *q = Q(d);
	uint64_t base = l1i << (q->h.cluster_bits + q->l2_bits);
	char why[MSG_MAX];

	for (uint64_t i = 0; i < (1ULL << q->l2_bits); i++) {
		uint64_t g = base + (i << q->h.cluster_bits);
		struct qcow2_l2 e;
		int rc;
		if (g >= d->size)
			break;
		rc = entry_check(q, d->size, get_be64(t + 8 * i), g, &e, why);
		fn(opaque, g, &e, rc, why);
	}
}

/* Visit every entry of every L2 table that maps guest clusters; reads are
 * bounded by the file size. */
static int walk_l2(vhd_disk *d, walk_fn fn, void *opaque)
{
	struct qcow2 *q = Q(d);
	uint8_t *t = malloc(q->cluster_size);
	struct l2ref *r;
	struct qcow2_l2 none = { QCOW2_UNALLOCATED, 0, 0 };
	char why[MSG_MAX];
	size_t n;
	int rc = 0;

	r = t ? l2_tables(d, &n) : NULL;
	if (!r) {
		free(t);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (i && r[i].off == r[i - 1].off) {
			snprintf(why, MSG_MAX, "L1 entries %" PRIu64 " and %" PRIu64 " share the L2 table at %" PRIu64,
				 r[i - 1].l1i, r[i].l1i, r[i].off);
			fn(opaque, r[i].l1i << (q->h.cluster_bits + q->l2_bits), &none,
			   VHD_E_CORRUPT, why);
			continue;
		}
		rc = io_read_full(d->io, t, q->cluster_size, r[i].off);
		if (rc == 0)
			walk_table(d, t, r[i].l1i, fn, opaque);
	}
	free(r);
	free(t);
	return rc;
}

static void count_one(void *opaque, uint64_t guest, const struct qcow2_l2 *e,
		      int rc, const char *why)
{
	if (e->kind == QCOW2_DATA || e->kind == QCOW2_COMPRESSED)
		(*(int64_t *)opaque)++;
}

static uint32_t allocated_clusters(vhd_disk *d)
{
	struct qcow2 *q = Q(d);
	int64_t n = 0;

	pthread_mutex_lock(&q->count_lock);
	if (q->allocated < 0 && walk_l2(d, count_one, &n) == 0)
		q->allocated = n;
	n = q->allocated < 0 ? 0 : q->allocated;
	pthread_mutex_unlock(&q->count_lock);
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

struct checking {
	void (*found)(void *, enum vhd_check_severity, const char *);
	void *opaque;
	unsigned problems;
};

#define CHECK_REPORT_MAX 20

static void check_one(void *opaque, uint64_t guest, const struct qcow2_l2 *e,
		      int rc, const char *why)
{
	struct checking *c = opaque;

	if (rc == 0)
		return;
	if (c->problems++ < CHECK_REPORT_MAX)
		c->found(c->opaque, VHD_CHECK_ERROR, why);
}

static void qcow2_check(vhd_disk *d, void (*found)(void *, enum vhd_check_severity,
						   const char *), void *opaque)
{
	struct qcow2 *q = Q(d);
	struct checking c = { found, opaque, 0 };
	char msg[MSG_MAX];
	int rc;

	if (q->h.incompatible & QCOW2_INCOMPAT_DIRTY)
		found(opaque, VHD_CHECK_INFO,
		      "qcow2 dirty bit set (not closed cleanly): refcounts may be stale, data is read as is");
	rc = walk_l2(d, check_one, &c);
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "cannot read every L2 table: %s", vhd_strerror(rc));
		found(opaque, VHD_CHECK_ERROR, msg);
	}
	if (c.problems > CHECK_REPORT_MAX) {
		snprintf(msg, sizeof(msg), "%u more problems in the L2 tables not listed",
			 c.problems - CHECK_REPORT_MAX);
		found(opaque, VHD_CHECK_ERROR, msg);
	}
}

/* ---- ops ---- */

static int qcow2_info(vhd_disk *d, struct vhd_info *info)
{
	struct qcow2 *q = Q(d);
	uint64_t clusters = (d->size + q->cluster_size - 1) >> q->h.cluster_bits;

	info->format = VHD_FMT_QCOW2;
	info->type = q->backing ? VHD_TYPE_DIFF : VHD_TYPE_DYNAMIC;
	info->current_size = d->size;
	info->size_source = "header";
	info->block_size = (uint32_t)q->cluster_size;
	info->max_table_entries = clusters > UINT32_MAX ? UINT32_MAX : (uint32_t)clusters;
	info->blocks_allocated = allocated_clusters(d);
	info->parent_name = q->backing;
	return 0;
}

static bool qcow2_has_parent(vhd_disk *d)
{
	return Q(d)->backing != NULL;
}

static void qcow2_abandon(vhd_disk *d)
{
	struct qcow2 *q = Q(d);

	if (!q)
		return;
	import_layer_release(&q->base);
	pthread_mutex_destroy(&q->count_lock);
	free(q->l1);
	free(q->backing);
	free(q);
	d->priv = NULL;
}

static int qcow2_close(vhd_disk *d)
{
	qcow2_abandon(d);
	return 0;
}

static const struct vhd_format_ops qcow2_ops = {
	.name = "qcow2",
	.pread = import_pread,
	.pwrite = import_pwrite,
	.flush = import_flush,
	.discard = import_discard,
	.zero = import_zero,
	.prefetch = import_prefetch,
	.extents = import_extents,
	.info = qcow2_info,
	.close = qcow2_close,
	.abandon = qcow2_abandon,
	.check = qcow2_check,
	.has_parent = qcow2_has_parent,
};

/* ---- open ---- */

static int read_l1(vhd_disk *d)
{
	struct qcow2 *q = Q(d);
	size_t bytes = (size_t)q->h.l1_size * 8;
	uint8_t *raw;
	int rc;

	q->l1 = calloc(q->h.l1_size ? q->h.l1_size : 1, sizeof(*q->l1));
	raw = malloc(bytes ? bytes : 1);
	if (!q->l1 || !raw) {
		free(raw);
		return disk_error(d, -ENOMEM, "out of memory for the L1 table");
	}
	rc = bytes ? io_read_full(d->io, raw, bytes, q->h.l1_offset) : 0;
	if (rc < 0) {
		free(raw);
		return disk_error(d, rc, "cannot read the L1 table: %s", vhd_strerror(rc));
	}
	for (uint32_t i = 0; i < q->h.l1_size; i++)
		q->l1[i] = get_be64(raw + 8 * i) & QCOW2_L1_OFFSET_MASK;
	free(raw);
	return 0;
}

/* Every L2 table the L1 table names: aligned and inside the file. */
static int check_l1_entries(vhd_disk *d)
{
	struct qcow2 *q = Q(d);

	for (uint32_t i = 0; i < q->h.l1_size; i++) {
		uint64_t l2 = q->l1[i];
		if (l2 % q->cluster_size)
			return disk_error(d, VHD_E_CORRUPT,
					  "L1 entry %u: L2 table offset %" PRIu64 " is not a cluster boundary",
					  i, l2);
		if (l2 && (l2 >= q->file_size || q->file_size - l2 < q->cluster_size))
			return disk_error(d, VHD_E_TRUNCATED,
					  "L1 entry %u: L2 table at %" PRIu64 " lies past the end of the file (%" PRIu64 " bytes)",
					  i, l2, q->file_size);
	}
	return 0;
}

/* The backing format extension: a qemu driver name. */
static int backing_format(vhd_disk *d, const char *name, uint32_t len,
			  enum vhd_format *fmt)
{
	static const struct { const char *name; enum vhd_format fmt; } known[] = {
		{ "raw", VHD_FMT_RAW }, { "qcow2", VHD_FMT_QCOW2 },
		{ "vpc", VHD_FMT_VHD }, { "vhdx", VHD_FMT_VHDX },
		{ "vmdk", VHD_FMT_VMDK },
	};
	char buf[32];

	if (len == 0 || len >= sizeof(buf) || memchr(name, 0, len))
		return disk_error(d, VHD_E_CORRUPT,
				  "qcow2 backing format extension of %u bytes is invalid", len);
	memcpy(buf, name, len);
	buf[len] = '\0';
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (!strcmp(buf, known[i].name)) {
			*fmt = known[i].fmt;
			return 0;
		}
	}
	for (char *p = buf; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
	return disk_error(d, VHD_E_UNSUPPORTED,
			  "backing file format '%s' is not supported", buf);
}

/* Header extensions: only the backing file's format matters here. */
static int read_extensions(vhd_disk *d, enum vhd_format *backing_fmt)
{
	struct qcow2 *q = Q(d);
	uint64_t pos = q->h.header_length;
	uint64_t end = q->h.backing_offset ? q->h.backing_offset : q->cluster_size;
	uint8_t *buf;
	int rc;

	*backing_fmt = VHD_FMT_AUTO;
	if (end > q->file_size)
		end = q->file_size;
	if (end <= pos)
		return 0;
	buf = malloc(end);
	if (!buf)
		return disk_error(d, -ENOMEM, "out of memory");
	rc = io_read_full(d->io, buf, end, 0);
	if (rc < 0)
		rc = disk_error(d, rc, "cannot read the qcow2 header extensions: %s",
				vhd_strerror(rc));
	while (rc == 0 && end - pos >= 8) {
		uint32_t type = get_be32(buf + pos), len = get_be32(buf + pos + 4);
		if (type == QCOW2_EXT_END)
			break;
		if (len > end - pos - 8) {
			rc = disk_error(d, VHD_E_CORRUPT,
					"qcow2 header extension 0x%08x at %" PRIu64 " (%u bytes) overruns the header",
					type, pos, len);
			break;
		}
		if (type == QCOW2_EXT_BACKING_FMT)
			rc = backing_format(d, (const char *)buf + pos + 8, len, backing_fmt);
		pos += 8 + (((uint64_t)len + 7) & ~7ULL);
	}
	free(buf);
	return rc;
}

static int read_backing_name(vhd_disk *d)
{
	struct qcow2 *q = Q(d);
	int rc;

	if (!q->h.backing_offset)
		return 0;
	q->backing = calloc(1, q->h.backing_size + 1);
	if (!q->backing)
		return disk_error(d, -ENOMEM, "out of memory");
	rc = io_read_full(d->io, q->backing, q->h.backing_size, q->h.backing_offset);
	if (rc < 0)
		return disk_error(d, rc, "cannot read the backing file name: %s",
				  vhd_strerror(rc));
	if (strlen(q->backing) != q->h.backing_size)
		return disk_error(d, VHD_E_CORRUPT,
				  "qcow2 backing file name holds a NUL byte");
	return 0;
}

static int read_header(vhd_disk *d)
{
	struct qcow2 *q = Q(d);
	uint8_t buf[QCOW2_V3_HEADER + 8];
	size_t n = sizeof(buf);
	int rc;

	if (q->file_size < n)
		n = (size_t)q->file_size;
	rc = io_read_full(d->io, buf, n, 0);
	if (rc < 0)
		return disk_error(d, rc, "cannot read the qcow2 header: %s",
				  vhd_strerror(rc));
	rc = qcow2_header_decode(d, buf, n, q->file_size, &q->h);
	if (rc < 0)
		return rc;
	q->cluster_size = 1ULL << q->h.cluster_bits;
	q->l2_bits = q->h.cluster_bits - 3;
	d->size = q->h.size;
	return 0;
}

static struct qcow2 *qcow2_alloc(void)
{
	struct qcow2 *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	pthread_mutex_init(&q->count_lock, NULL);
	q->allocated = -1;
	return q;
}

int qcow2_open(vhd_disk *d, struct chain_ctx *ctx)
{
	enum vhd_format backing_fmt;
	struct qcow2 *q;
	int rc = import_check_open_flags(d, "qcow2");

	if (rc < 0)
		return rc;
	q = qcow2_alloc();
	if (!q)
		return disk_error(d, -ENOMEM, "out of memory");
	d->priv = q;
	d->ops = &qcow2_ops;
	rc = io_size(d->io, &q->file_size);
	if (rc < 0)
		return disk_error(d, rc, "cannot get the file size: %s", vhd_strerror(rc));
	rc = read_header(d);
	if (rc == 0)
		rc = import_layer_init(&q->base, &qcow2_format, (uint32_t)q->cluster_size,
				       (uint32_t)q->cluster_size);
	if (rc == -ENOMEM)
		return disk_error(d, rc, "out of memory");
	if (rc == 0)
		rc = read_l1(d);
	if (rc == 0)
		rc = check_l1_entries(d);
	if (rc == 0)
		rc = read_extensions(d, &backing_fmt);
	if (rc == 0)
		rc = read_backing_name(d);
	if (rc == 0 && q->backing)
		rc = import_open_backing(d, ctx, q->backing, backing_fmt);
	return rc;
}
