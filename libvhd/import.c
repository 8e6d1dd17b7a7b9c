/*
 * import.c -- format detection for the import formats (qcow2, VMDK) and
 * the machinery both share.
 *
 * Data path: a format only maps guest ranges (struct import_map: data at a
 * file offset, a compressed unit, zeros, or the backing file); reads,
 * extents and prefetch walk those runs here.  Every write is refused with
 * -EROFS: the formats are import-only, opened read-only.
 *
 * Locking: the table cache and the last inflated unit each have a mutex and
 * are only touched under it (data is copied out); the rest of the state is
 * fixed at open, so any number of threads may read at once.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "import.h"
#include "io.h"
#include "paths.h"

bool import_detect(const uint8_t *head, size_t len, enum vhd_format *fmt)
{
	if (len >= 4 && !memcmp(head, "QFI\xfb", 4)) {
		*fmt = VHD_FMT_QCOW2;
		return true;
	}
	/* A sparse extent, or a descriptor file ("# Disk DescriptorFile"). */
	if ((len >= 4 && !memcmp(head, "KDMV", 4)) ||
	    (len >= 8 && !memcmp(head, "# Disk D", 8))) {
		*fmt = VHD_FMT_VMDK;
		return true;
	}
	return false;
}

/* ---- table cache ---- */

static int tcache_init(struct import_tcache *c, uint32_t max_bytes)
{
	unsigned n = max_bytes ? (8u << 20) / max_bytes : 0;

	c->nslots = n < 4 ? 4 : n > 64 ? 64 : n;
	c->max_bytes = max_bytes;
	c->slot = calloc(c->nslots, sizeof(*c->slot));
	if (!c->slot)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	return 0;
}

static void tcache_release(struct import_tcache *c)
{
	if (!c->slot)
		return;
	for (unsigned i = 0; i < c->nslots; i++)
		free(c->slot[i].buf);
	free(c->slot);
	c->slot = NULL;
	pthread_mutex_destroy(&c->lock);
}

/* Under c->lock: the slot holding (io, off), or NULL. */
static struct import_tslot *tcache_find(struct import_tcache *c,
					struct vhd_io *io, uint64_t off)
{
	for (unsigned i = 0; i < c->nslots; i++)
		if (c->slot[i].io == io && c->slot[i].off == off)
			return &c->slot[i];
	return NULL;
}

/* Under c->lock: the least recently used slot. */
static struct import_tslot *tcache_victim(struct import_tcache *c)
{
	struct import_tslot *v = &c->slot[0];

	for (unsigned i = 1; i < c->nslots; i++)
		if (c->slot[i].stamp < v->stamp)
			v = &c->slot[i];
	return v;
}

int import_table_read(struct import_layer *l, struct vhd_io *io, uint64_t off,
		      uint32_t table_len, uint32_t pos, void *out, uint32_t n)
{
	struct import_tcache *c = &l->tables;
	struct import_tslot *s;
	uint8_t *fresh;
	int rc;

	if (table_len > c->max_bytes || pos > table_len || n > table_len - pos)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	s = tcache_find(c, io, off);
	if (s) {
		s->stamp = ++c->clock;
		memcpy(out, s->buf + pos, n);
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	pthread_mutex_unlock(&c->lock);

	/* Miss: read outside the lock, then install (another thread may
	 * have done the same meanwhile; either copy is right). */
	fresh = malloc(c->max_bytes);
	if (!fresh)
		return -ENOMEM;
	rc = io_read_full(io, fresh, table_len, off);
	if (rc < 0) {
		free(fresh);
		return rc;
	}
	memcpy(out, fresh + pos, n);
	pthread_mutex_lock(&c->lock);
	if (!tcache_find(c, io, off)) {
		s = tcache_victim(c);
		free(s->buf);
		s->buf = fresh;
		s->io = io;
		s->off = off;
		s->stamp = ++c->clock;
		fresh = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	free(fresh);
	return 0;
}

/* ---- layer state ---- */

int import_layer_init(struct import_layer *l, const struct import_format *f,
		      uint32_t unit_size, uint32_t table_bytes)
{
	l->fmt = f;
	l->unit_size = unit_size;
	pthread_mutex_init(&l->unit_lock, NULL);
	return tcache_init(&l->tables, table_bytes);
}

void import_layer_release(struct import_layer *l)
{
	if (!l->fmt)
		return;		/* never initialised */
	tcache_release(&l->tables);
	free(l->unit_buf);
	l->unit_buf = NULL;
	pthread_mutex_destroy(&l->unit_lock);
}

static struct import_layer *LAYER(vhd_disk *d)
{
	return d->priv;
}

/* ---- compressed units ---- */

int import_inflate(const uint8_t *in, size_t in_len, uint8_t *out,
		   size_t out_len, int window_bits, size_t *produced)
{
	z_stream z;
	int zr;

	memset(&z, 0, sizeof(z));
	*produced = 0;
	if (in_len > UINT_MAX || out_len > UINT_MAX)
		return VHD_E_CORRUPT;
	zr = inflateInit2(&z, window_bits);
	if (zr != Z_OK)
		return zr == Z_MEM_ERROR ? -ENOMEM : VHD_E_CORRUPT;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)in_len;
	z.next_out = out;
	z.avail_out = (uInt)out_len;
	zr = inflate(&z, Z_FINISH);
	*produced = out_len - z.avail_out;
	inflateEnd(&z);
	if (zr == Z_STREAM_END)
		return 1;
	if (zr == Z_BUF_ERROR && z.avail_out == 0)
		return 0;
	if (zr == Z_MEM_ERROR)
		return -ENOMEM;
	return VHD_E_CORRUPT;
}

/* Copy [skip, skip+n) of the inflated unit of @m into @buf. */
static int read_unit(vhd_disk *d, const struct import_map *m, uint8_t *buf,
		     size_t n)
{
	struct import_layer *l = LAYER(d);
	uint8_t *fresh;
	int rc;

	pthread_mutex_lock(&l->unit_lock);
	if (l->unit_buf && l->unit_io == m->io && l->unit_host == m->host) {
		memcpy(buf, l->unit_buf + m->unit_skip, n);
		pthread_mutex_unlock(&l->unit_lock);
		return 0;
	}
	pthread_mutex_unlock(&l->unit_lock);

	fresh = malloc(l->unit_size);
	if (!fresh)
		return disk_error(d, -ENOMEM, "out of memory");
	rc = l->fmt->inflate(d, m, fresh);
	if (rc < 0) {
		free(fresh);
		return rc;
	}
	memcpy(buf, fresh + m->unit_skip, n);
	pthread_mutex_lock(&l->unit_lock);
	free(l->unit_buf);
	l->unit_buf = fresh;
	l->unit_io = m->io;
	l->unit_host = m->host;
	pthread_mutex_unlock(&l->unit_lock);
	return 0;
}

/* ---- data path ---- */

/* Read the run @m that starts at guest offset @pos into @buf. */
static int read_run(vhd_disk *d, const struct import_map *m, uint8_t *buf,
		    uint64_t pos)
{
	int rc;

	switch (m->what) {
	case LAYER_ZERO:
		memset(buf, 0, m->len);
		return 0;
	case LAYER_PARENT:
		return disk_read_parent(d, buf, m->len, pos);
	case LAYER_DATA:
		break;
	}
	if (m->compressed)
		return read_unit(d, m, buf, m->len);
	rc = io_read_full(m->io, buf, m->len, m->host);
	if (rc < 0)
		return disk_error(d, rc, "read of %llu bytes at file offset %llu: %s",
				  (unsigned long long)m->len,
				  (unsigned long long)m->host, vhd_strerror(rc));
	return 0;
}

ssize_t import_pread(vhd_disk *d, void *buf, size_t len, uint64_t off)
{
	const struct import_format *f = LAYER(d)->fmt;
	uint8_t *p = buf;
	uint64_t pos = off, end = off + len;
	int rc;

	while (pos < end) {
		struct import_map m;

		memset(&m, 0, sizeof(m));
		rc = f->map(d, pos, end - pos, &m);
		if (rc < 0)
			return rc;
		rc = read_run(d, &m, p, pos);
		if (rc < 0)
			return rc;
		p += m.len;
		pos += m.len;
	}
	return (ssize_t)len;
}

int import_host_extents(struct vhd_io *io, uint64_t host, uint64_t off,
			uint64_t len, layer_extent_fn fn, void *opaque)
{
	uint64_t end = off + len;
	int rc;

	if (!io->ops->next_data)
		return fn(opaque, off, len, LAYER_DATA);
	while (off < end) {
		uint64_t data, data_end, n;

		if (io->ops->next_data(io, host, &data, &data_end) < 0 ||
		    data < host || data_end < data)
			return fn(opaque, off, end - off, LAYER_DATA);
		if (data > host) {
			n = data - host < end - off ? data - host : end - off;
			rc = fn(opaque, off, n, LAYER_ZERO);
			if (rc)
				return rc;
			off += n;
			host += n;
			continue;
		}
		if (data_end <= host)	/* no data after all: be safe */
			return fn(opaque, off, end - off, LAYER_DATA);
		n = data_end - host < end - off ? data_end - host : end - off;
		rc = fn(opaque, off, n, LAYER_DATA);
		if (rc)
			return rc;
		off += n;
		host += n;
	}
	return 0;
}

int import_extents(vhd_disk *d, uint64_t off, uint64_t len,
		   layer_extent_fn fn, void *opaque)
{
	const struct import_format *f = LAYER(d)->fmt;
	uint64_t end = off + len;
	int rc;

	while (off < end) {
		struct import_map m;

		memset(&m, 0, sizeof(m));
		rc = f->map(d, off, end - off, &m);
		if (rc < 0)
			return rc;
		if (m.what == LAYER_DATA && !m.compressed)
			rc = import_host_extents(m.io, m.host, off, m.len, fn, opaque);
		else
			rc = fn(opaque, off, m.len, m.what);
		if (rc)
			return rc;
		off += m.len;
	}
	return 0;
}

int import_prefetch(vhd_disk *d, uint64_t off, uint64_t len)
{
	const struct import_format *f = LAYER(d)->fmt;
	uint64_t end = off + len;

	while (off < end) {
		struct import_map m;

		memset(&m, 0, sizeof(m));
		if (f->map(d, off, end - off, &m) < 0)
			return 0;	/* advisory: the read will report it */
		if (m.what == LAYER_PARENT)
			disk_prefetch_parent(d, off, m.len);
		else if (m.what == LAYER_DATA && !m.compressed &&
			 m.io->ops->prefetch)
			m.io->ops->prefetch(m.io, m.host, m.len);
		off += m.len;
	}
	return 0;
}

ssize_t import_pwrite(vhd_disk *d, const void *buf, size_t len, uint64_t off)
{
	return disk_error(d, -EROFS, "%s images are read-only in vhdkit",
			  d->ops->name);
}

int import_flush(vhd_disk *d)
{
	return disk_error(d, -EROFS, "%s images are read-only in vhdkit",
			  d->ops->name);
}

int import_discard(vhd_disk *d, uint64_t off, uint64_t len)
{
	return disk_error(d, -EROFS, "%s images are read-only in vhdkit",
			  d->ops->name);
}

int import_zero(vhd_disk *d, uint64_t off, uint64_t len, unsigned flags)
{
	return disk_error(d, -EROFS, "%s images are read-only in vhdkit",
			  d->ops->name);
}

int import_check_open_flags(vhd_disk *d, const char *name)
{
	if (d->flags & VHD_OPEN_RDWR)
		return disk_error(d, -EROFS,
				  "%s images are read-only in vhdkit (convert them)",
				  name);
	if (d->flags & VHD_OPEN_DIRECT)
		return disk_error(d, VHD_E_UNSUPPORTED,
				  "%s images cannot be read with O_DIRECT", name);
	return 0;
}

/* ---- backing files ---- */

static const char *fmt_label(enum vhd_format f)
{
	switch (f) {
	case VHD_FMT_RAW: return "raw";
	case VHD_FMT_VHD: return "vpc (VHD)";
	case VHD_FMT_VHDX: return "vhdx";
	case VHD_FMT_QCOW2: return "qcow2";
	case VHD_FMT_VMDK: return "vmdk";
	default: return "unknown";
	}
}

static int check_backing_format(vhd_disk *d, vhd_disk *p, const char *path,
				enum vhd_format declared)
{
	struct vhd_info pi;

	if (declared == VHD_FMT_AUTO)
		return 0;
	vhd_get_info(p, &pi);
	if (pi.format == declared)
		return 0;
	return disk_error(d, VHD_E_PARENT_ID,
			  "backing file %s is declared %s but its content is %s",
			  path, fmt_label(declared), fmt_label(pi.format));
}

int import_open_backing(vhd_disk *d, struct chain_ctx *ctx, const char *name,
			enum vhd_format declared)
{
	unsigned flags = ctx->flags & (VHD_OPEN_NOLOCK | VHD_OPEN_DIRECT);
	char *path, *msg;
	vhd_disk *p;
	int rc;

	if (d->flags & VHD_OPEN_NOPARENT)
		return 0;
	path = malloc(PATH_MAX * 2);
	if (!path)
		return disk_error(d, -ENOMEM, "out of memory");
	path_join_relative(d->path, name, path, PATH_MAX * 2);
	if (ctx->opts.parent_root && !path_is_under(path, ctx->opts.parent_root)) {
		rc = disk_error(d, -EPERM,
				"backing file %s is outside the allowed folder %s",
				path, ctx->opts.parent_root);
		goto out;
	}
	ctx->depth++;
	rc = disk_open_layer(path, flags, ctx, &p);
	ctx->depth--;
	if (rc == -ENOENT || rc == -ENOTDIR) {
		rc = disk_error(d, VHD_E_NOPARENT, "backing file %s not found", path);
		goto out;
	}
	if (rc < 0) {
		/* The layer's own message names it and the cause. */
		msg = strdup(vhd_errmsg(NULL));
		rc = disk_error(d, rc, "backing file: %s", msg ? msg : vhd_strerror(rc));
		free(msg);
		goto out;
	}
	d->parent = p;
	d->depth = p->depth + 1;
	rc = check_backing_format(d, p, path, declared);
	if (rc == 0) {
		d->parent_path = path;
		return 0;
	}
out:
	free(path);
	return rc;
}
