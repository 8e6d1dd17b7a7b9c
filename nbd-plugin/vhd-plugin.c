/*
 * vhd-plugin.c -- nbdkit plugin serving VHD images, chains and raw files
 * through libvhd:  nbdkit vhd file=disk.vhd [snapshot=N|PATH]
 *
 * One libvhd handle serves every connection and every request thread
 * (PARALLEL thread model): libvhd is thread-safe, takes no handle-wide lock
 * for data I/O to allocated blocks, and a flush covers every connection, so
 * multi-conn is safe.  get_ready opens the image read-only once, so that
 * errors reach the user before nbdkit forks into the background; the
 * shared handle is opened by the first connection, read-only when that
 * connection is (nbdkit -r), and held, with the image's lock, until unload.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "config.h"
#include "libvhd.h"
#include "passthrough.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static char *file;		/* absolute: nbdkit may chdir("/") when it forks */
static char *device;		/* a host block device, passed through */
static const char *snapshot;	/* export an older layer of the chain */
static int force_readonly;
static int realign = 1;		/* move misaligned VHD blocks on write */
static vhd_disk *disk;		/* the export */
static vhd_disk *top;		/* what was opened (owns `disk` when a layer) */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;

static void vhd_unload(void)
{
	if (top)
		vhd_close(top);
	top = disk = NULL;
	free(file);
	free(device);
}

static int vhd_config(const char *key, const char *value)
{
	if (!strcmp(key, "file")) {
		free(file);
		file = nbdkit_absolute_path(value);
		if (!file)
			return -1;
	} else if (!strcmp(key, "device")) {
		free(device);
		device = nbdkit_absolute_path(value);
		if (!device)
			return -1;
	} else if (!strcmp(key, "snapshot")) {
		snapshot = value;
	} else if (!strcmp(key, "readonly")) {
		int r = nbdkit_parse_bool(value);
		if (r < 0)
			return -1;
		force_readonly = r;
	} else if (!strcmp(key, "realign")) {
		int r = nbdkit_parse_bool(value);
		if (r < 0)
			return -1;
		realign = r;
	} else {
		nbdkit_error("unknown parameter '%s'", key);
		return -1;
	}
	return 0;
}

static int vhd_config_complete(void)
{
	if (!file == !device) {
		nbdkit_error("you must supply either file=<IMAGE> or device=<BLOCK DEVICE>");
		return -1;
	}
	if (device && snapshot) {
		nbdkit_error("snapshot= applies to images, not to device=");
		return -1;
	}
	return 0;
}

#define vhd_config_help \
	"file=<IMAGE>     VHD or VHDX (a differencing chain's top) or raw file\n" \
	"device=<DEV>     or: a host block device, passed through exclusively\n" \
	"readonly=true    export read-only (also with nbdkit -r)\n" \
	"snapshot=N|PATH  export layer N of the chain (0 = file) or the layer\n" \
	"                 whose path is PATH, read-only\n" \
	"realign=false    keep a VHD's block layout (default: a block whose data\n" \
	"                 is not 4 KiB aligned moves to an aligned place at its\n" \
	"                 first write below 64 KiB)"

/* Find layer @spec (an index, or a path as the chain resolved it). */
static vhd_disk *find_layer(vhd_disk *d, const char *spec)
{
	char *end;
	long n = strtol(spec, &end, 10);
	unsigned i = 0;

	for (vhd_disk *l = d; l; l = vhd_parent(l), i++) {
		struct vhd_info info;
		if (*spec && !*end && n >= 0 && (unsigned long)n == i)
			return l;
		vhd_get_info(l, &info);
		if (!strcmp(info.path, spec))
			return l;
		{
			char a[PATH_MAX], b[PATH_MAX];
			if (realpath(info.path, a) && realpath(spec, b) && !strcmp(a, b))
				return l;
		}
	}
	return NULL;
}

/* Open the export: read-write unless @readonly (or the file is not
 * writable, then read-only).  Sets disk/top/force_readonly. */
static int open_export(int readonly)
{
	int rc;

	if (device) {
		rc = pt_open(device, readonly ? 0 : PT_RDWR, &top);
		if (rc == -EROFS && !readonly) {
			nbdkit_debug("%s is read-only: exporting read-only", device);
			readonly = 1;
			rc = pt_open(device, 0, &top);
		}
		if (rc < 0) {
			nbdkit_error("%s", pt_errmsg());
			return -1;
		}
		disk = top;
		force_readonly = readonly;
		return 0;
	}
	/* Read-only exports share the image, also beside a writer. */
	rc = vhd_open(file, readonly ? VHD_OPEN_SHARED :
			  VHD_OPEN_RDWR | (realign ? VHD_OPEN_REALIGN : 0), NULL, &top);
	if ((rc == -EACCES || rc == -EROFS || rc == -EPERM) && !readonly) {
		nbdkit_debug("%s is not writable: exporting read-only", file);
		readonly = 1;
		rc = vhd_open(file, VHD_OPEN_SHARED, NULL, &top);
	}
	if (rc < 0) {
		nbdkit_error("%s", vhd_errmsg(NULL));
		return -1;
	}
	disk = top;
	if (snapshot) {
		disk = find_layer(top, snapshot);
		if (!disk) {
			nbdkit_error("%s: no layer '%s' in the chain", file, snapshot);
			vhd_close(top);
			top = NULL;
			return -1;
		}
	}
	force_readonly = readonly;
	return 0;
}

/* Validate before nbdkit daemonizes: the image opens (read-only, so that
 * `nbdkit -r` never opens it for writing). */
static int vhd_get_ready(void)
{
	int rc;

	if (device) {
		struct pt_info info;
		rc = pt_probe(device, &info);
		if (rc == 0 && !info.usable) {
			nbdkit_error("%s: refused: %s", device, info.why);
			return -1;
		}
		if (rc < 0) {
			nbdkit_error("%s", pt_errmsg());
			return -1;
		}
		return 0;
	}
	{
		int asked = force_readonly;	/* open_export sets it */
		rc = open_export(1);
		force_readonly = asked;
	}
	if (rc == 0) {
		vhd_close(top);
		top = disk = NULL;
	}
	return rc;
}

static void *vhd_open_conn(int readonly)
{
	int rc = 0;

	pthread_mutex_lock(&open_lock);
	if (!top)
		rc = open_export(readonly || force_readonly || snapshot);
	pthread_mutex_unlock(&open_lock);
	return rc < 0 ? NULL : disk;
}

/* Report a libvhd failure: its message, and an errno NBD knows. */
static int fail(int rc)
{
	int e = -rc;

	nbdkit_error("%s", vhd_errmsg(disk));
	if (rc <= -VHD_E_BASE)
		e = EIO;
	else if (e != ENOSPC && e != EROFS && e != EINVAL && e != ENOTSUP &&
		 e != ENOMEM && e != EDQUOT && e != EFBIG)
		e = EIO;
	nbdkit_set_error(e);
	return -1;
}

static int64_t vhd_get_size(void *h)
{
	return (int64_t)vhd_size(disk);
}

static int vhd_can_write(void *h)
{
	return !force_readonly;
}

static int vhd_can_multi_conn(void *h)
{
	return 1;
}

static int vhd_can_flush(void *h)
{
	return 1;
}

static int vhd_can_trim(void *h)
{
	return !force_readonly;
}

static int vhd_can_zero(void *h)
{
	return 1;
}

static int vhd_can_fast_zero(void *h)
{
	return 1;
}

static int vhd_can_fua(void *h)
{
	return NBDKIT_FUA_NATIVE;
}

static int vhd_can_extents(void *h)
{
	return 1;
}

static int vhd_can_cache(void *h)
{
	return NBDKIT_CACHE_NATIVE;
}

static int vhd_block_size(void *h, uint32_t *minimum, uint32_t *preferred,
			  uint32_t *maximum)
{
	*minimum = 1;		/* any byte range works */
	*preferred = 4096;
	*maximum = 0xFFFFFFFF;
	return 0;
}

static int flush_if_fua(uint32_t flags)
{
	int rc;

	if (!(flags & NBDKIT_FLAG_FUA))
		return 0;
	rc = vhd_flush(disk);
	return rc < 0 ? fail(rc) : 0;
}

static int vhd_pread_cb(void *h, void *buf, uint32_t count, uint64_t offset,
			uint32_t flags)
{
	ssize_t n = vhd_pread(disk, buf, count, offset);

	return n < 0 ? fail((int)n) : 0;
}

static int vhd_pwrite_cb(void *h, const void *buf, uint32_t count,
			 uint64_t offset, uint32_t flags)
{
	ssize_t n = vhd_pwrite(disk, buf, count, offset);

	if (n < 0)
		return fail((int)n);
	return flush_if_fua(flags);
}

static int vhd_flush_cb(void *h, uint32_t flags)
{
	int rc = vhd_flush(disk);

	return rc < 0 ? fail(rc) : 0;
}

static int vhd_trim_cb(void *h, uint32_t count, uint64_t offset, uint32_t flags)
{
	int rc = vhd_discard(disk, offset, count);

	if (rc < 0)
		return fail(rc);
	return flush_if_fua(flags);
}

static int vhd_zero_cb(void *h, uint32_t count, uint64_t offset, uint32_t flags)
{
	unsigned zf = 0;
	int rc;

	if (!(flags & NBDKIT_FLAG_MAY_TRIM))
		zf |= VHD_ZERO_NOUNMAP;
	if (flags & NBDKIT_FLAG_FAST_ZERO)
		zf |= VHD_ZERO_FAST;
	rc = vhd_zero(disk, offset, count, zf);
	if (rc == -ENOTSUP && (zf & VHD_ZERO_FAST)) {
		nbdkit_set_error(ENOTSUP);
		return -1;
	}
	if (rc < 0)
		return fail(rc);
	return flush_if_fua(flags);
}

struct extent_ctx {
	struct nbdkit_extents *out;
	int req_one;
	int failed;
};

static int add_extent(void *opaque, const struct vhd_extent *e)
{
	struct extent_ctx *c = opaque;
	uint32_t type = e->type == VHD_EXT_ZERO
			? NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO : 0;

	if (nbdkit_add_extent(c->out, e->offset, e->length, type) < 0) {
		c->failed = 1;
		return 1;
	}
	return c->req_one;	/* one extent is enough for REQ_ONE */
}

static int vhd_extents_cb(void *h, uint32_t count, uint64_t offset,
			  uint32_t flags, struct nbdkit_extents *extents)
{
	struct extent_ctx c = { extents, !!(flags & NBDKIT_FLAG_REQ_ONE), 0 };
	int rc = vhd_extents(disk, offset, count, add_extent, &c);

	if (c.failed)
		return -1;
	return rc < 0 ? fail(rc) : 0;
}

static int vhd_cache_cb(void *h, uint32_t count, uint64_t offset, uint32_t flags)
{
	int rc = vhd_prefetch(disk, offset, count);

	return rc < 0 ? fail(rc) : 0;
}

static struct nbdkit_plugin plugin = {
	.name = "vhd",
	.longname = "vhdkit VHD plugin",
	.version = VHDKIT_VERSION,
	.description = "serves VHD images, differencing chains and raw files through libvhd",
	.unload = vhd_unload,
	.config = vhd_config,
	.config_complete = vhd_config_complete,
	.config_help = vhd_config_help,
	.magic_config_key = "file",
	.get_ready = vhd_get_ready,
	.open = vhd_open_conn,
	.get_size = vhd_get_size,
	.can_write = vhd_can_write,
	.can_flush = vhd_can_flush,
	.can_trim = vhd_can_trim,
	.can_zero = vhd_can_zero,
	.can_fast_zero = vhd_can_fast_zero,
	.can_fua = vhd_can_fua,
	.can_multi_conn = vhd_can_multi_conn,
	.can_extents = vhd_can_extents,
	.can_cache = vhd_can_cache,
	.block_size = vhd_block_size,
	.pread = vhd_pread_cb,
	.pwrite = vhd_pwrite_cb,
	.flush = vhd_flush_cb,
	.trim = vhd_trim_cb,
	.zero = vhd_zero_cb,
	.extents = vhd_extents_cb,
	.cache = vhd_cache_cb,
	.errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN(plugin)
