/*
 * vmdk.c -- VMDK import, read-only: monolithicSparse, streamOptimized,
 * monolithicFlat and the split (twoGbMaxExtent*) variants.
 *
 * A disk is a list of extents laid end to end: FLAT (raw bytes of a file
 * from an offset), SPARSE (a hosted sparse extent: header "KDMV", a grain
 * directory of grain tables of grain offsets, grains optionally compressed
 * behind grain markers, as streamOptimized files are), or ZERO.  A file
 * starting with "KDMV" is one sparse extent on its own; otherwise the file
 * is a text descriptor naming the extents, relative to its folder.
 * Differencing VMDKs (parentFileNameHint) are refused.
 *
 * Invariants after open: extents are sorted and contiguous from 0; a FLAT
 * extent's file holds all its bytes; a SPARSE extent's grain directory is in
 * memory and every grain table it names lies inside the file.  Grain table
 * entries are checked as they are used.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "import.h"
#include "io.h"
#include "paths.h"

#define SECTOR ((uint64_t)512)
#define GT_BATCH 64
#define MSG_MAX 320
#define MARKER_HEAD 12		/* u64 lba + u32 size */

struct vmdk_ext {
	enum vmdk_extent_type type;
	uint64_t start, len;		/* guest bytes */
	struct vhd_io *io;		/* NULL for ZERO */
	bool own_io;			/* io is an extent file we opened */
	char *name;			/* as the descriptor names it (owned) */
	uint64_t file_size;
	uint64_t file_off;		/* FLAT: bytes */
	/* SPARSE */
	struct vmdk_sparse_header h;
	uint64_t grain_bytes;
	unsigned grain_shift;
	uint32_t gd_entries;
	uint32_t *gd;			/* grain table sectors (host order) */
	bool compressed, markers, zero_grain;
};

struct vmdk {
	struct import_layer base;	/* first: import.c's view */
	struct vmdk_ext *ext;
	unsigned next;
	char *create_type;
	bool sparse;			/* some extent is sparse */
	bool unclean;			/* some extent has uncleanShutdown */
	pthread_mutex_t count_lock;	/* guards allocated */
	int64_t allocated;		/* grains, -1 until counted */
};

static struct vmdk *VM(vhd_disk *d)
{
	return d->priv;
}

/* ---- sparse extent header ---- */

static int check_geometry(vhd_disk *d, const struct vmdk_sparse_header *h)
{
	uint64_t g = h->grain_sectors, span;

	if (g == 0 || (g & (g - 1)) || g > VMDK_MAX_GRAIN_SECTORS)
		return disk_error(d, g > VMDK_MAX_GRAIN_SECTORS && !(g & (g - 1)) ?
				  VHD_E_UNSUPPORTED : VHD_E_CORRUPT,
				  "VMDK grain size of %" PRIu64 " sectors is invalid (a power of two up to %u)",
				  g, VMDK_MAX_GRAIN_SECTORS);
	if (h->gtes_per_gt == 0 || h->gtes_per_gt > VMDK_MAX_GTES)
		return disk_error(d, VHD_E_CORRUPT,
				  "VMDK grain tables of %u entries are invalid (1 to %u)",
				  h->gtes_per_gt, VMDK_MAX_GTES);
	if (h->capacity > VMDK_MAX_CAPACITY)
		return disk_error(d, VHD_E_CORRUPT,
				  "VMDK capacity of %" PRIu64 " sectors is too large", h->capacity);
	span = g * h->gtes_per_gt;
	if ((h->capacity + span - 1) / span > VMDK_MAX_GD_ENTRIES)
		return disk_error(d, VHD_E_UNSUPPORTED,
				  "VMDK grain directory of %" PRIu64 " entries is too large",
				  (h->capacity + span - 1) / span);
	return 0;
}

int vmdk_sparse_header_decode(vhd_disk *d, const uint8_t buf[512],
			      struct vmdk_sparse_header *h)
{
	memset(h, 0, sizeof(*h));
	if (get_le32(buf) != VMDK_MAGIC)
		return disk_error(d, VHD_E_FORMAT, "not a VMDK sparse extent (no KDMV magic)");
	h->version = get_le32(buf + 4);
	h->flags = get_le32(buf + 8);
	h->capacity = get_le64(buf + 12);
	h->grain_sectors = get_le64(buf + 20);
	h->desc_offset = get_le64(buf + 28);
	h->desc_size = get_le64(buf + 36);
	h->gtes_per_gt = get_le32(buf + 44);
	h->rgd_offset = get_le64(buf + 48);
	h->gd_offset = get_le64(buf + 56);
	h->overhead = get_le64(buf + 64);
	h->unclean = buf[72];
	h->compress = get_le16(buf + 77);
	if (h->version < 1 || h->version > 3)
		return disk_error(d, VHD_E_UNSUPPORTED,
				  "VMDK sparse extent version %u is not supported (1 to 3)",
				  h->version);
	if ((h->flags & VMDK_FLAG_NL_TEST) &&
	    (buf[73] != '\n' || buf[74] != ' ' || buf[75] != '\r' || buf[76] != '\n'))
		return disk_error(d, VHD_E_CORRUPT,
				  "VMDK header newline test failed (file damaged by a text-mode transfer?)");
	if (h->compress > VMDK_COMPRESS_DEFLATE)
		return disk_error(d, VHD_E_UNSUPPORTED,
				  "VMDK compression algorithm %u is not supported (deflate only)",
				  h->compress);
	if ((h->flags & VMDK_FLAG_COMPRESSED) && h->compress != VMDK_COMPRESS_DEFLATE)
		return disk_error(d, VHD_E_CORRUPT,
				  "VMDK compressed-grains flag without a compression algorithm");
	return check_geometry(d, h);
}

/* ---- descriptor text ---- */

static void trim(char **s, char **e)
{
	while (*s < *e && (**s == ' ' || **s == '\t'))
		(*s)++;
	while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r'))
		(*e)--;
}

/* Next blank-separated token of [*p, e), NUL-terminated in place. */
static char *token(char **p, char *e)
{
	char *t;

	while (*p < e && (**p == ' ' || **p == '\t'))
		(*p)++;
	if (*p >= e)
		return NULL;
	t = *p;
	while (*p < e && **p != ' ' && **p != '\t')
		(*p)++;
	if (*p < e)
		*(*p)++ = '\0';
	return t;
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

static int ext_type(vhd_disk *d, unsigned line, const char *t,
		    enum vmdk_extent_type *type)
{
	if (!strcmp(t, "FLAT") || !strcmp(t, "VMFS"))
		*type = VMDK_EXT_FLAT;
	else if (!strcmp(t, "SPARSE"))
		*type = VMDK_EXT_SPARSE;
	else if (!strcmp(t, "ZERO"))
		*type = VMDK_EXT_ZERO;
	else
		return disk_error(d, VHD_E_UNSUPPORTED,
				  "descriptor line %u: VMDK extent type %.32s is not supported",
				  line, t);
	return 0;
}

/* "ACCESS SECTORS TYPE ["FILE" [OFFSET]]" */
static int parse_extent(vhd_disk *d, unsigned line, char *p, char *e,
			struct vmdk_extent_line *x)
{
	char *access = token(&p, e), *sectors = token(&p, e), *type = token(&p, e);
	char *file = NULL, *q, *offset;
	int rc;

	if (!strcmp(access, "NOACCESS"))
		return disk_error(d, VHD_E_UNSUPPORTED,
				  "descriptor line %u: NOACCESS extents are not supported", line);
	if (!type || !parse_u64(sectors, &x->sectors) || x->sectors == 0 ||
	    x->sectors > VMDK_MAX_CAPACITY)
		return disk_error(d, VHD_E_CORRUPT, "descriptor line %u: invalid extent line", line);
	rc = ext_type(d, line, type, &x->type);
	if (rc < 0)
		return rc;
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	if (p < e && *p == '"') {
		q = memchr(p + 1, '"', (size_t)(e - p - 1));
		if (!q || q == p + 1)
			return disk_error(d, VHD_E_CORRUPT,
					  "descriptor line %u: bad extent file name", line);
		*q = '\0';
		file = p + 1;
		p = q + 1;
	}
	offset = token(&p, e);
	if (token(&p, e) || (offset && (!parse_u64(offset, &x->offset) ||
					x->offset > VMDK_MAX_CAPACITY)) ||
	    (x->type == VMDK_EXT_ZERO) != !file ||
	    (x->type != VMDK_EXT_FLAT && offset))
		return disk_error(d, VHD_E_CORRUPT, "descriptor line %u: invalid extent line", line);
	if (file && !(x->file = strdup(file)))
		return disk_error(d, -ENOMEM, "out of memory");
	return 0;
}

static int add_extent(vhd_disk *d, unsigned line, char *p, char *e,
		      struct vmdk_descriptor *out)
{
	struct vmdk_extent_line *v;

	if (out->next == VMDK_MAX_EXTENTS)
		return disk_error(d, VHD_E_UNSUPPORTED,
				  "descriptor line %u: more than %u extents", line, VMDK_MAX_EXTENTS);
	v = realloc(out->ext, (out->next + 1) * sizeof(*v));
	if (!v)
		return disk_error(d, -ENOMEM, "out of memory");
	out->ext = v;
	memset(&v[out->next], 0, sizeof(*v));
	out->next++;
	return parse_extent(d, line, p, e, &v[out->next - 1]);
}

/* key=value or key = "value": keep the two keys that matter. */
static int key_value(vhd_disk *d, char *p, char *e, struct vmdk_descriptor *out)
{
	char *eq = memchr(p, '=', (size_t)(e - p)), *k = p, *ke, *v;
	char **slot = NULL;

	if (!eq)
		return 0;		/* not a key: tolerated, as qemu does */
	ke = eq;
	v = eq + 1;
	trim(&k, &ke);
	trim(&v, &e);
	if (e - v >= 2 && *v == '"' && e[-1] == '"') {
		v++;
		e--;
	}
	if ((size_t)(ke - k) == strlen("createType") && !strncmp(k, "createType", 10))
		slot = &out->create_type;
	else if ((size_t)(ke - k) == strlen("parentFileNameHint") &&
		 !strncmp(k, "parentFileNameHint", 18))
		slot = &out->parent_hint;
	if (!slot)
		return 0;
	free(*slot);
	*slot = strndup(v, (size_t)(e - v));
	return *slot ? 0 : disk_error(d, -ENOMEM, "out of memory");
}

static bool is_extent_line(const char *p, const char *e)
{
	static const char *const access[] = { "RW", "RDONLY", "NOACCESS" };

	for (int i = 0; i < 3; i++) {
		size_t n = strlen(access[i]);
		if ((size_t)(e - p) > n && !strncmp(p, access[i], n) &&
		    (p[n] == ' ' || p[n] == '\t'))
			return true;
	}
	return false;
}

static int check_descriptor(vhd_disk *d, const struct vmdk_descriptor *out)
{
	static const char *const devices[] = {
		"fullDevice", "partitionedDevice", "vmfsRaw", "vmfsRawDeviceMap",
		"vmfsPassthroughRawDeviceMap",
	};
	uint64_t total = 0;

	for (size_t i = 0; out->create_type && i < sizeof(devices) / sizeof(*devices); i++)
		if (!strcmp(out->create_type, devices[i]))
			return disk_error(d, VHD_E_UNSUPPORTED,
					  "VMDK createType %s (raw device access) is not supported",
					  devices[i]);
	if (out->next == 0)
		return disk_error(d, VHD_E_CORRUPT, "VMDK descriptor lists no extents");
	for (unsigned i = 0; i < out->next; i++) {
		total += out->ext[i].sectors;
		if (total > VMDK_MAX_CAPACITY)
			return disk_error(d, VHD_E_CORRUPT, "VMDK extents add up to too many sectors");
	}
	return 0;
}

/* Parse the lines of @text; extent lines only when @extents (an embedded
 * descriptor only names its own file: just its keys matter). */
static int parse_lines(vhd_disk *d, const char *text, size_t len,
		       struct vmdk_descriptor *out, bool extents)
{
	char *copy, *p, *end;
	unsigned line = 0;
	int rc = 0;

	len = strnlen(text, len);
	copy = strndup(text, len);
	if (!copy)
		return disk_error(d, -ENOMEM, "out of memory");
	for (p = copy; rc == 0 && p < copy + len; p = end + 1) {
		char *s = p, *e;
		end = memchr(p, '\n', (size_t)(copy + len - p));
		if (!end)
			end = copy + len;
		e = end;
		line++;
		trim(&s, &e);
		if (s == e || *s == '#')
			continue;
		*e = '\0';
		if (!is_extent_line(s, e))
			rc = key_value(d, s, e, out);
		else if (extents)
			rc = add_extent(d, line, s, e, out);
	}
	free(copy);
	return rc;
}

int vmdk_descriptor_parse(vhd_disk *d, const char *text, size_t len,
			  struct vmdk_descriptor *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = parse_lines(d, text, len, out, true);
	if (rc == 0)
		rc = check_descriptor(d, out);
	if (rc < 0)
		vmdk_descriptor_release(out);
	return rc;
}

void vmdk_descriptor_release(struct vmdk_descriptor *desc)
{
	for (unsigned i = 0; i < desc->next; i++)
		free(desc->ext[i].file);
	free(desc->ext);
	free(desc->create_type);
	free(desc->parent_hint);
	memset(desc, 0, sizeof(*desc));
}

/* ---- messages about extent files ---- */

/* Re-record @d's last message as about extent @e (when it is a file of its
 * own: the monolithic case already names the image). */
static int ext_fail(vhd_disk *d, const struct vmdk_ext *e, int rc)
{
	char msg[700];
	size_t n = strlen(d->path);

	if (!e->own_io)
		return rc;
	snprintf(msg, sizeof(msg), "%.690s",
		 !strncmp(d->errmsg, d->path, n) && d->errmsg[n] == ':' ?
		 d->errmsg + n + 2 : d->errmsg);
	return disk_error(d, rc, "extent %s: %s", e->name, msg);
}

/* ---- opening a sparse extent ---- */

static int parent_refused(vhd_disk *d, const char *hint)
{
	return disk_error(d, VHD_E_UNSUPPORTED,
			  "differencing VMDKs are not supported (parent \"%.200s\"); "
			  "flatten the chain with qemu-img convert first", hint);
}

/* The embedded descriptor of a sparse extent: refuse a parent. */
static int read_embedded_descriptor(vhd_disk *d, struct vmdk_ext *e)
{
	struct vmdk_descriptor desc = { 0 };
	uint64_t off = e->h.desc_offset * SECTOR, size = e->h.desc_size * SECTOR;
	char *text;
	int rc;

	if (!e->h.desc_offset || !e->h.desc_size)
		return 0;
	if (e->h.desc_size > VMDK_MAX_DESCRIPTOR / SECTOR)
		size = VMDK_MAX_DESCRIPTOR;
	if (e->h.desc_offset > e->file_size / SECTOR || e->file_size - off < size)
		return disk_error(d, VHD_E_TRUNCATED,
				  "VMDK embedded descriptor at sector %" PRIu64 " lies past the end of the file",
				  e->h.desc_offset);
	text = malloc(size);
	if (!text)
		return disk_error(d, -ENOMEM, "out of memory");
	rc = io_read_full(e->io, text, size, off);
	if (rc < 0) {
		free(text);
		return disk_error(d, rc, "cannot read the VMDK descriptor: %s", vhd_strerror(rc));
	}
	rc = parse_lines(d, text, size, &desc, false);
	free(text);
	if (rc == 0 && desc.parent_hint)
		rc = parent_refused(d, desc.parent_hint);
	vmdk_descriptor_release(&desc);
	return rc;
}

/* Stream-optimized: the header copy in the footer (3 sectors from the end:
 * footer marker, header, end-of-stream marker) holds the real GD offset. */
static int read_footer(vhd_disk *d, struct vmdk_ext *e)
{
	uint64_t end = e->file_size / SECTOR * SECTOR;
	uint8_t buf[3 * SECTOR];
	int rc;

	if (end < 4 * SECTOR)
		return disk_error(d, VHD_E_TRUNCATED,
				  "VMDK grain directory is at the end, but the file is too short for a footer");
	rc = io_read_full(e->io, buf, sizeof(buf), end - sizeof(buf));
	if (rc < 0)
		return disk_error(d, rc, "cannot read the VMDK footer: %s", vhd_strerror(rc));
	if (get_le32(buf + 8) != 0 || get_le32(buf + 12) != VMDK_MARKER_FOOTER ||
	    get_le64(buf + 1024) != 0 || get_le32(buf + 1032) != 0 ||
	    get_le32(buf + 1036) != VMDK_MARKER_EOS)
		return disk_error(d, VHD_E_CORRUPT,
				  "VMDK footer markers are missing (stream truncated?)");
	rc = vmdk_sparse_header_decode(d, buf + SECTOR, &e->h);
	if (rc < 0)
		return rc == VHD_E_FORMAT ?
		       disk_error(d, VHD_E_CORRUPT, "VMDK footer holds no header") : rc;
	if (e->h.gd_offset == VMDK_GD_AT_END)
		return disk_error(d, VHD_E_CORRUPT,
				  "VMDK footer does not locate the grain directory either");
	return 0;
}

static int read_gd(vhd_disk *d, struct vmdk_ext *e)
{
	uint64_t bytes = (uint64_t)e->gd_entries * 4, gt_bytes = e->h.gtes_per_gt * 4ULL;
	uint8_t *raw;
	int rc;

	if (!e->gd_entries)
		return 0;
	if (e->h.gd_offset == 0 || e->h.gd_offset > e->file_size / SECTOR ||
	    e->file_size - e->h.gd_offset * SECTOR < bytes)
		return disk_error(d, e->h.gd_offset ? VHD_E_TRUNCATED : VHD_E_CORRUPT,
				  "VMDK grain directory at sector %" PRIu64 " (%u entries) lies outside the file",
				  e->h.gd_offset, e->gd_entries);
	e->gd = malloc(bytes * 2);	/* raw bytes, then host order */
	if (!e->gd)
		return disk_error(d, -ENOMEM, "out of memory for the grain directory");
	raw = (uint8_t *)(e->gd + e->gd_entries);
	rc = io_read_full(e->io, raw, bytes, e->h.gd_offset * SECTOR);
	if (rc < 0)
		return disk_error(d, rc, "cannot read the grain directory: %s", vhd_strerror(rc));
	for (uint32_t i = 0; i < e->gd_entries; i++) {
		uint64_t gt = e->gd[i] = get_le32(raw + 4 * i);
		if (gt && (gt > e->file_size / SECTOR || e->file_size - gt * SECTOR < gt_bytes))
			return disk_error(d, VHD_E_TRUNCATED,
					  "grain directory entry %u: grain table at sector %" PRIu64 " lies past the end of the file (%" PRIu64 " bytes)",
					  i, gt, e->file_size);
	}
	return 0;
}

static int open_sparse(vhd_disk *d, struct vmdk_ext *e)
{
	uint8_t buf[SECTOR];
	uint64_t span;
	int rc;

	if (e->file_size < SECTOR)
		return disk_error(d, VHD_E_TRUNCATED, "file is too short for a VMDK header");
	rc = io_read_full(e->io, buf, SECTOR, 0);
	if (rc < 0)
		return disk_error(d, rc, "cannot read the VMDK header: %s", vhd_strerror(rc));
	rc = vmdk_sparse_header_decode(d, buf, &e->h);
	if (rc == 0)
		rc = read_embedded_descriptor(d, e);
	if (rc == 0 && e->h.gd_offset == VMDK_GD_AT_END)
		rc = read_footer(d, e);
	if (rc < 0)
		return rc;
	e->grain_bytes = e->h.grain_sectors * SECTOR;
	e->grain_shift = (unsigned)__builtin_ctzll(e->grain_bytes);
	e->compressed = e->h.compress == VMDK_COMPRESS_DEFLATE;
	e->markers = e->h.flags & VMDK_FLAG_MARKERS;
	e->zero_grain = e->h.flags & VMDK_FLAG_ZERO_GRAIN;
	span = e->h.grain_sectors * e->h.gtes_per_gt;
	e->gd_entries = (uint32_t)((e->h.capacity + span - 1) / span);
	return read_gd(d, e);
}

/* ---- opening extents named by a descriptor ---- */

static int open_extent_file(vhd_disk *d, struct chain_ctx *ctx,
			    struct vmdk_ext *e)
{
	const struct vhd_io_factory *f = opts_io(&ctx->opts);
	unsigned ioflags = 0;
	char *path = malloc(PATH_MAX * 2);
	int rc;

	if (!path)
		return disk_error(d, -ENOMEM, "out of memory");
	path_join_relative(d->path, e->name, path, PATH_MAX * 2);
	if (d->flags & VHD_OPEN_NOLOCK)
		ioflags |= VHD_IO_NOLOCK;
	if (d->flags & VHD_OPEN_SHARED)
		ioflags |= VHD_IO_TRYLOCK;
	if (ctx->opts.parent_root && !path_is_under(path, ctx->opts.parent_root))
		rc = disk_error(d, -EPERM, "extent %s is outside the allowed folder %s",
				path, ctx->opts.parent_root);
	else if ((rc = f->open(f, path, ioflags, &e->io)) < 0)
		rc = disk_error(d, rc == -ENOENT ? VHD_E_NOPARENT : rc,
				"cannot open extent %s: %s", path,
				rc == -ENOENT ? "not found" : vhd_strerror(rc));
	else
		e->own_io = true;
	free(path);
	if (rc == 0 && (rc = io_size(e->io, &e->file_size)) < 0)
		rc = disk_error(d, rc, "extent %s: cannot get its size: %s", e->name,
				vhd_strerror(rc));
	return rc;
}

static int open_listed_extent(vhd_disk *d, struct chain_ctx *ctx,
			      const struct vmdk_extent_line *x, struct vmdk_ext *e)
{
	uint64_t bytes = x->sectors * SECTOR;
	int rc;

	e->type = x->type;
	e->len = bytes;
	if (x->type == VMDK_EXT_ZERO)
		return 0;
	e->name = strdup(x->file);
	if (!e->name)
		return disk_error(d, -ENOMEM, "out of memory");
	rc = open_extent_file(d, ctx, e);
	if (rc < 0)
		return rc;
	if (x->type == VMDK_EXT_FLAT) {
		e->file_off = x->offset * SECTOR;
		if (e->file_off > e->file_size || e->file_size - e->file_off < bytes)
			return disk_error(d, VHD_E_TRUNCATED,
					  "extent %s is %" PRIu64 " bytes, too short for %" PRIu64 " bytes from offset %" PRIu64,
					  e->name, e->file_size, bytes, e->file_off);
		return 0;
	}
	rc = open_sparse(d, e);
	if (rc < 0)
		return ext_fail(d, e, rc);
	if (e->h.capacity != x->sectors)
		return disk_error(d, VHD_E_CORRUPT,
				  "extent %s holds %" PRIu64 " sectors, the descriptor says %" PRIu64,
				  e->name, e->h.capacity, x->sectors);
	return 0;
}

static int read_descriptor_file(vhd_disk *d, char **text, size_t *len)
{
	uint64_t size;
	int rc = io_size(d->io, &size);

	if (rc < 0)
		return disk_error(d, rc, "cannot get the file size: %s", vhd_strerror(rc));
	if (size > VMDK_MAX_DESCRIPTOR)
		return disk_error(d, VHD_E_UNSUPPORTED,
				  "VMDK descriptor file of %" PRIu64 " bytes is too large", size);
	*text = malloc(size + 1);
	if (!*text)
		return disk_error(d, -ENOMEM, "out of memory");
	rc = io_read_full(d->io, *text, size, 0);
	if (rc < 0)
		return disk_error(d, rc, "cannot read the VMDK descriptor: %s", vhd_strerror(rc));
	(*text)[size] = '\0';
	*len = size;
	return 0;
}

static int open_descriptor(vhd_disk *d, struct chain_ctx *ctx)
{
	struct vmdk *v = VM(d);
	struct vmdk_descriptor desc = { 0 };
	char *text = NULL;
	size_t len = 0;
	uint64_t start = 0;
	int rc = read_descriptor_file(d, &text, &len);

	if (rc == 0)
		rc = vmdk_descriptor_parse(d, text, len, &desc);
	free(text);
	if (rc < 0)
		return rc;
	if (desc.parent_hint)
		rc = parent_refused(d, desc.parent_hint);
	v->ext = rc ? NULL : calloc(desc.next, sizeof(*v->ext));
	if (rc == 0 && !v->ext)
		rc = disk_error(d, -ENOMEM, "out of memory");
	for (unsigned i = 0; rc == 0 && i < desc.next; i++) {
		struct vmdk_ext *e = &v->ext[v->next++];
		e->start = start;
		rc = open_listed_extent(d, ctx, &desc.ext[i], e);
		start += e->len;
	}
	if (rc == 0) {
		v->create_type = desc.create_type;
		desc.create_type = NULL;
	}
	vmdk_descriptor_release(&desc);
	return rc;
}

static int open_monolithic(vhd_disk *d)
{
	struct vmdk *v = VM(d);
	struct vmdk_ext *e = calloc(1, sizeof(*e));
	int rc;

	if (!e)
		return disk_error(d, -ENOMEM, "out of memory");
	v->ext = e;
	v->next = 1;
	e->type = VMDK_EXT_SPARSE;
	e->io = d->io;
	rc = io_size(d->io, &e->file_size);
	if (rc < 0)
		return disk_error(d, rc, "cannot get the file size: %s", vhd_strerror(rc));
	rc = open_sparse(d, e);
	e->len = e->h.capacity * SECTOR;
	return rc;
}

/* ---- map ---- */

static const struct vmdk_ext *find_ext(const struct vmdk *v, uint64_t off)
{
	unsigned lo = 0, hi = v->next;

	while (hi - lo > 1) {
		unsigned mid = lo + (hi - lo) / 2;
		if (v->ext[mid].start <= off)
			lo = mid;
		else
			hi = mid;
	}
	return &v->ext[lo];
}

enum grain_kind { GRAIN_ABSENT, GRAIN_ZERO, GRAIN_DATA, GRAIN_COMPRESSED };

/* Classify the grain table entry @gte of the grain at extent offset @rel,
 * checking that what a read needs lies in the file. */
static int grain_check(const struct vmdk_ext *e, uint32_t gte, uint64_t rel,
		       enum grain_kind *kind, char *why)
{
	uint64_t host = (uint64_t)gte * SECTOR;
	uint64_t need = e->len - rel < e->grain_bytes ? e->len - rel : e->grain_bytes;

	if (gte == 0) {
		*kind = GRAIN_ABSENT;
		return 0;
	}
	if (gte == 1 && e->zero_grain) {
		*kind = GRAIN_ZERO;
		return 0;
	}
	*kind = e->compressed ? GRAIN_COMPRESSED : GRAIN_DATA;
	if (e->compressed)
		need = e->markers ? MARKER_HEAD : 1;
	if (host < e->file_size && e->file_size - host >= need)
		return 0;
	snprintf(why, MSG_MAX,
		 "grain table entry for extent offset %" PRIu64 " points past the end of the file (sector %u, file is %" PRIu64 " bytes)",
		 rel, gte, e->file_size);
	return VHD_E_TRUNCATED;
}

static void set_grain_map(const struct vmdk_ext *e, enum grain_kind k,
			  uint32_t gte, uint64_t rel, struct import_map *m)
{
	uint64_t in = rel & (e->grain_bytes - 1);

	switch (k) {
	case GRAIN_ABSENT:
	case GRAIN_ZERO:
		m->what = LAYER_ZERO;
		return;
	case GRAIN_DATA:
		m->what = LAYER_DATA;
		m->io = e->io;
		m->host = (uint64_t)gte * SECTOR + in;
		return;
	case GRAIN_COMPRESSED:
		m->what = LAYER_DATA;
		m->io = e->io;
		m->compressed = true;
		m->host = (uint64_t)gte * SECTOR;
		m->unit_skip = (uint32_t)in;
		m->unit_guest = rel - in;
		m->unit_need = (uint32_t)(e->len - m->unit_guest < e->grain_bytes ?
					  e->len - m->unit_guest : e->grain_bytes);
		m->unit_bytes = e->grain_bytes * 2;
		m->ctx = e;
		return;
	}
}

static bool same_run(enum grain_kind a, enum grain_kind b, uint32_t prev,
		     uint32_t gte, uint64_t grain_sectors)
{
	if (a == GRAIN_ABSENT || a == GRAIN_ZERO)
		return b == GRAIN_ABSENT || b == GRAIN_ZERO;
	return a == GRAIN_DATA && b == GRAIN_DATA && gte == prev + grain_sectors;
}

/* Map [rel, end) of sparse extent @e (inside one grain table's span). */
static int map_gt(vhd_disk *d, const struct vmdk_ext *e, uint64_t gt,
		  uint64_t rel, uint64_t end, struct import_map *m)
{
	struct vmdk *v = VM(d);
	uint64_t first = rel >> e->grain_shift, last = (end - 1) >> e->grain_shift;
	uint32_t gti = (uint32_t)(first % e->h.gtes_per_gt);
	uint32_t n = last - first + 1 > GT_BATCH ? GT_BATCH : (uint32_t)(last - first + 1);
	enum grain_kind k0 = GRAIN_ABSENT, k;
	uint8_t raw[GT_BATCH * 4];
	uint32_t gte0 = 0, prev = 0;
	char why[MSG_MAX];
	int rc;

	rc = import_table_read(&v->base, e->io, gt * SECTOR, e->h.gtes_per_gt * 4,
			       gti * 4, raw, n * 4);
	if (rc < 0)
		return ext_fail(d, e, disk_error(d, rc, "cannot read the grain table at sector %" PRIu64 ": %s",
						 gt, vhd_strerror(rc)));
	for (uint32_t i = 0; i < n; i++) {
		uint32_t gte = get_le32(raw + 4 * i);
		rc = grain_check(e, gte, (first + i) << e->grain_shift, &k, why);
		if (rc < 0)
			return ext_fail(d, e, disk_error(d, rc, "%s", why));
		if (i == 0) {
			k0 = k;
			gte0 = prev = gte;
		} else if (k0 == GRAIN_COMPRESSED || !same_run(k0, k, prev, gte, e->h.grain_sectors)) {
			n = i;
			break;
		}
		prev = gte;
	}
	set_grain_map(e, k0, gte0, rel, m);
	m->len = ((first + n) << e->grain_shift) - rel;
	if (m->len > end - rel)
		m->len = end - rel;
	return 0;
}

static int map_sparse(vhd_disk *d, const struct vmdk_ext *e, uint64_t rel,
		      uint64_t len, struct import_map *m)
{
	uint64_t span = e->grain_bytes * e->h.gtes_per_gt;
	uint64_t gdi = rel / span, end = rel + len;

	if (end > (gdi + 1) * span)
		end = (gdi + 1) * span;
	if (!e->gd[gdi]) {
		m->what = LAYER_ZERO;
		m->len = end - rel;
		return 0;
	}
	return map_gt(d, e, e->gd[gdi], rel, end, m);
}

static int vmdk_map(vhd_disk *d, uint64_t off, uint64_t len,
		    struct import_map *m)
{
	const struct vmdk_ext *e = find_ext(VM(d), off);
	uint64_t rel = off - e->start;

	if (len > e->len - rel)
		len = e->len - rel;
	switch (e->type) {
	case VMDK_EXT_ZERO:
		m->what = LAYER_ZERO;
		break;
	case VMDK_EXT_FLAT:
		m->what = LAYER_DATA;
		m->io = e->io;
		m->host = e->file_off + rel;
		break;
	case VMDK_EXT_SPARSE:
		return map_sparse(d, e, rel, len, m);
	}
	m->len = len;
	return 0;
}

/* ---- compressed grains ---- */

/* Where the zlib stream of the grain of @m lies: after its marker, or (no
 * markers) somewhere in the next two grains' worth of bytes. */
static int grain_stream(vhd_disk *d, const struct vmdk_ext *e,
			const struct import_map *m, uint64_t *pos, uint64_t *n)
{
	uint8_t head[MARKER_HEAD];
	uint64_t lba;
	uint32_t size;
	int rc;

	if (!e->markers) {
		*pos = m->host;
		*n = e->file_size - m->host < m->unit_bytes ? e->file_size - m->host : m->unit_bytes;
		return 0;
	}
	rc = io_read_full(e->io, head, sizeof(head), m->host);
	if (rc < 0)
		return disk_error(d, rc, "reading the grain marker at %" PRIu64 ": %s",
				  m->host, vhd_strerror(rc));
	lba = get_le64(head);
	size = get_le32(head + 8);
	if (lba != m->unit_guest / SECTOR)
		return disk_error(d, VHD_E_CORRUPT,
				  "grain marker at %" PRIu64 " is for sector %" PRIu64 ", but the grain table maps sector %" PRIu64 " there",
				  m->host, lba, m->unit_guest / SECTOR);
	if (size == 0 || size > m->unit_bytes)
		return disk_error(d, VHD_E_CORRUPT,
				  "grain marker at %" PRIu64 " gives an invalid size %u", m->host, size);
	if (e->file_size - m->host - MARKER_HEAD < size)
		return disk_error(d, VHD_E_TRUNCATED,
				  "compressed grain at %" PRIu64 " (%u bytes) extends past the end of the file",
				  m->host, size);
	*pos = m->host + MARKER_HEAD;
	*n = size;
	return 0;
}

static int vmdk_inflate(vhd_disk *d, const struct import_map *m, uint8_t *out)
{
	const struct vmdk_ext *e = m->ctx;
	uint64_t pos = 0, n = 0;
	size_t produced = 0;
	uint8_t *in;
	int rc = grain_stream(d, e, m, &pos, &n);

	if (rc < 0)
		return ext_fail(d, e, rc);
	in = malloc(n);
	if (!in)
		return disk_error(d, -ENOMEM, "out of memory");
	rc = io_read_full(e->io, in, n, pos);
	if (rc == 0)
		rc = import_inflate(in, n, out, e->grain_bytes, 15, &produced);
	free(in);
	if (rc == -ENOMEM)
		return disk_error(d, rc, "out of memory");
	if (rc != 1 || produced < m->unit_need)
		return ext_fail(d, e, disk_error(d, rc < 0 && rc > -VHD_E_BASE ? rc : VHD_E_CORRUPT,
			"compressed grain for extent offset %" PRIu64 " (at %" PRIu64 ") does not inflate to %u bytes",
			m->unit_guest, m->host, m->unit_need));
	memset(out + produced, 0, e->grain_bytes - produced);
	return 0;
}

static const struct import_format vmdk_format = {
	.map = vmdk_map,
	.inflate = vmdk_inflate,
};

/* ---- whole-table walks: allocation count and check ---- */

typedef void (*walk_fn)(void *opaque, enum grain_kind k, int rc, const char *why);

struct gtref {
	uint32_t sector;		/* grain table */
	uint32_t gdi;			/* the directory entry naming it */
};

static int gtref_cmp(const void *a, const void *b)
{
	const struct gtref *x = a, *y = b;

	if (x->sector != y->sector)
		return x->sector < y->sector ? -1 : 1;
	return x->gdi < y->gdi ? -1 : x->gdi > y->gdi;
}

static void walk_gt(const struct vmdk_ext *e, const uint8_t *t, uint32_t gdi,
		    walk_fn fn, void *opaque)
{
	uint64_t span = e->grain_bytes * e->h.gtes_per_gt;
	char why[MSG_MAX];

	for (uint32_t i = 0; i < e->h.gtes_per_gt; i++) {
		uint64_t rel = gdi * span + ((uint64_t)i << e->grain_shift);
		enum grain_kind k;
		int rc;
		if (rel >= e->len)
			break;
		rc = grain_check(e, get_le32(t + 4 * i), rel, &k, why);
		fn(opaque, k, rc, why);
	}
}

/* Each distinct grain table once (sharing is reported): reads are bounded
 * by the file size. */
static int walk_ext(vhd_disk *d, const struct vmdk_ext *e, uint8_t *t,
		    walk_fn fn, void *opaque)
{
	struct gtref *r = malloc((e->gd_entries ? e->gd_entries : 1) * sizeof(*r));
	char why[MSG_MAX];
	size_t n = 0;
	int rc = 0;

	if (!r)
		return -ENOMEM;
	for (uint32_t gdi = 0; gdi < e->gd_entries; gdi++)
		if (e->gd[gdi])
			r[n++] = (struct gtref){ e->gd[gdi], gdi };
	qsort(r, n, sizeof(*r), gtref_cmp);
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (i && r[i].sector == r[i - 1].sector) {
			snprintf(why, MSG_MAX, "grain directory entries %u and %u share the grain table at sector %u",
				 r[i - 1].gdi, r[i].gdi, r[i].sector);
			fn(opaque, GRAIN_ABSENT, VHD_E_CORRUPT, why);
			continue;
		}
		rc = io_read_full(e->io, t, e->h.gtes_per_gt * 4, (uint64_t)r[i].sector * SECTOR);
		if (rc == 0)
			walk_gt(e, t, r[i].gdi, fn, opaque);
	}
	free(r);
	return rc;
}

static int walk_grains(vhd_disk *d, walk_fn fn, void *opaque)
{
	struct vmdk *v = VM(d);
	uint8_t *t = malloc(VMDK_MAX_GTES * 4);
	int rc = t ? 0 : -ENOMEM;

	for (unsigned i = 0; rc == 0 && i < v->next; i++)
		if (v->ext[i].type == VMDK_EXT_SPARSE)
			rc = walk_ext(d, &v->ext[i], t, fn, opaque);
	free(t);
	return rc;
}

static void count_one(void *opaque, enum grain_kind k, int rc, const char *why)
{
	if (k == GRAIN_DATA || k == GRAIN_COMPRESSED)
		(*(int64_t *)opaque)++;
}

static uint32_t allocated_grains(vhd_disk *d)
{
	struct vmdk *v = VM(d);
	int64_t n = 0;

	pthread_mutex_lock(&v->count_lock);
	if (v->allocated < 0 && walk_grains(d, count_one, &n) == 0)
		v->allocated = n;
	n = v->allocated < 0 ? 0 : v->allocated;
	pthread_mutex_unlock(&v->count_lock);
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

struct checking {
	void (*found)(void *, enum vhd_check_severity, const char *);
	void *opaque;
	unsigned problems;
};

#define CHECK_REPORT_MAX 20

static void check_one(void *opaque, enum grain_kind k, int rc, const char *why)
{
	struct checking *c = opaque;

	if (rc < 0 && c->problems++ < CHECK_REPORT_MAX)
		c->found(c->opaque, VHD_CHECK_ERROR, why);
}

static void vmdk_check(vhd_disk *d, void (*found)(void *, enum vhd_check_severity,
						  const char *), void *opaque)
{
	struct vmdk *v = VM(d);
	struct checking c = { found, opaque, 0 };
	char msg[MSG_MAX];
	int rc;

	if (v->unclean)
		found(opaque, VHD_CHECK_INFO,
		      "VMDK uncleanShutdown flag set (not closed cleanly); data is read as is");
	rc = walk_grains(d, check_one, &c);
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "cannot read every grain table: %s", vhd_strerror(rc));
		found(opaque, VHD_CHECK_ERROR, msg);
	}
	if (c.problems > CHECK_REPORT_MAX) {
		snprintf(msg, sizeof(msg), "%u more problems in the grain tables not listed",
			 c.problems - CHECK_REPORT_MAX);
		found(opaque, VHD_CHECK_ERROR, msg);
	}
}

/* ---- ops ---- */

static int vmdk_info(vhd_disk *d, struct vhd_info *info)
{
	struct vmdk *v = VM(d);
	uint64_t grains = 0;

	info->format = VHD_FMT_VMDK;
	info->type = v->sparse ? VHD_TYPE_DYNAMIC : VHD_TYPE_FIXED;
	info->current_size = d->size;
	info->size_source = v->create_type ? "descriptor" : "header";
	if (!v->sparse)
		return 0;
	for (unsigned i = 0; i < v->next; i++) {
		const struct vmdk_ext *e = &v->ext[i];
		if (e->type != VMDK_EXT_SPARSE)
			continue;
		if (!info->block_size)
			info->block_size = (uint32_t)e->grain_bytes;
		grains += (e->len + e->grain_bytes - 1) >> e->grain_shift;
	}
	info->max_table_entries = grains > UINT32_MAX ? UINT32_MAX : (uint32_t)grains;
	info->blocks_allocated = allocated_grains(d);
	return 0;
}

static bool vmdk_has_parent(vhd_disk *d)
{
	return false;
}

static void vmdk_abandon(vhd_disk *d)
{
	struct vmdk *v = VM(d);

	if (!v)
		return;
	for (unsigned i = 0; i < v->next; i++) {
		if (v->ext[i].own_io)
			io_close(v->ext[i].io);
		free(v->ext[i].gd);
		free(v->ext[i].name);
	}
	free(v->ext);
	import_layer_release(&v->base);
	pthread_mutex_destroy(&v->count_lock);
	free(v->create_type);
	free(v);
	d->priv = NULL;
}

static int vmdk_close(vhd_disk *d)
{
	vmdk_abandon(d);
	return 0;
}

static const struct vhd_format_ops vmdk_ops = {
	.name = "VMDK",
	.pread = import_pread,
	.pwrite = import_pwrite,
	.flush = import_flush,
	.discard = import_discard,
	.zero = import_zero,
	.prefetch = import_prefetch,
	.extents = import_extents,
	.info = vmdk_info,
	.close = vmdk_close,
	.abandon = vmdk_abandon,
	.check = vmdk_check,
	.has_parent = vmdk_has_parent,
};

/* ---- open ---- */

/* Size, and what the shared layer needs: the largest compressed grain and
 * grain table. */
static int finish_open(vhd_disk *d)
{
	struct vmdk *v = VM(d);
	uint32_t unit = 0, table = 4;
	int rc;

	d->size = 0;
	for (unsigned i = 0; i < v->next; i++) {
		const struct vmdk_ext *e = &v->ext[i];
		d->size += e->len;
		if (e->type != VMDK_EXT_SPARSE)
			continue;
		v->sparse = true;
		v->unclean |= e->h.unclean != 0;
		if (e->compressed && e->grain_bytes > unit)
			unit = (uint32_t)e->grain_bytes;
		if (e->h.gtes_per_gt * 4 > table)
			table = e->h.gtes_per_gt * 4;
	}
	rc = import_layer_init(&v->base, &vmdk_format, unit, table);
	return rc < 0 ? disk_error(d, rc, "out of memory") : 0;
}

int vmdk_open(vhd_disk *d, struct chain_ctx *ctx)
{
	struct vmdk *v;
	uint8_t head[8] = { 0 };
	int rc = import_check_open_flags(d, "VMDK");

	if (rc < 0)
		return rc;
	v = calloc(1, sizeof(*v));
	if (!v)
		return disk_error(d, -ENOMEM, "out of memory");
	pthread_mutex_init(&v->count_lock, NULL);
	v->allocated = -1;
	d->priv = v;
	d->ops = &vmdk_ops;
	rc = io_read_full(d->io, head, 8, 0);
	if (rc < 0 && rc != VHD_E_TRUNCATED)
		return disk_error(d, rc, "cannot read: %s", vhd_strerror(rc));
	if (!memcmp(head, "KDMV", 4))
		rc = open_monolithic(d);
	else if (!memcmp(head, "# Disk D", 8))
		rc = open_descriptor(d, ctx);
	else
		rc = disk_error(d, VHD_E_FORMAT,
				"not a VMDK image (no KDMV magic, no \"# Disk DescriptorFile\" line)");
	if (rc == 0 && v->next == 0)
		rc = disk_error(d, VHD_E_CORRUPT, "VMDK image has no extents");
	return rc < 0 ? rc : finish_open(d);
}
