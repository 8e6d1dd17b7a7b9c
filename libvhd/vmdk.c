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

#define SECTOR 512ULL
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
	char msg[768];
	size_t n = strlen(d->path);

	if (!e->own_io)
		return rc;
	snprintf(msg, sizeof(msg), "%s",
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

/* The embedded descriptor: refuse a parent, keep the createType. */
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
