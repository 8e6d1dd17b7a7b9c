/*
 * libvhd.h -- the public interface of libvhd, vhdkit's disk-image engine.
 *
 * One opaque handle, struct vhd_disk, stands for any opened disk: a raw file,
 * a fixed, dynamic or differencing VHD (with its whole parent chain), and
 * whatever later backends provide.  Every front end (vhdtool, the nbdkit
 * plugin, the VMM) sees only this interface.
 *
 * Conventions
 *  - Calls return 0 (or a byte count) on success and a negative errno on
 *    failure.  Format-specific failures use the VHD_E* codes below, which lie
 *    in a reserved range under -4096; vhd_strerror() names both kinds.
 *  - A handle keeps a message describing its last failure ("FILE: cause");
 *    vhd_errmsg(NULL) gives the message of the calling thread's last failed
 *    open or create, which have no handle to keep it in.
 *  - The library never prints, never aborts, and never exits.
 *  - Thread safety: one handle may be used by many threads at once for
 *    pread/pwrite/flush/discard/zero/extents.  Data I/O to allocated blocks
 *    takes no handle-wide lock; allocation and metadata updates are
 *    serialized inside the library.  vhd_close() must not race other calls.
 *  - Strings passed in are borrowed for the duration of the call.  Strings
 *    returned (vhd_errmsg, vhd_info fields) are owned by the library and stay
 *    valid until the next call on the same handle (errmsg) or until close.
 */
#ifndef LIBVHD_H
#define LIBVHD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define VHD_API __attribute__((visibility("default")))
#else
#define VHD_API
#endif

typedef struct vhd_disk vhd_disk;

/* ---- error codes (negative, below -4096; errno values are also used) ---- */
#define VHD_E_BASE          4096
#define VHD_E_CORRUPT      (-(VHD_E_BASE + 1))  /* metadata is inconsistent */
#define VHD_E_CHECKSUM     (-(VHD_E_BASE + 2))  /* a checksum does not match */
#define VHD_E_UNSUPPORTED  (-(VHD_E_BASE + 3))  /* valid but unsupported feature */
#define VHD_E_FORMAT       (-(VHD_E_BASE + 4))  /* not an image of the expected format */
#define VHD_E_TRUNCATED    (-(VHD_E_BASE + 5))  /* structure extends past end of file */
#define VHD_E_NOPARENT     (-(VHD_E_BASE + 6))  /* parent image cannot be found */
#define VHD_E_PARENT_ID    (-(VHD_E_BASE + 7))  /* parent identity does not match */
#define VHD_E_CHAIN        (-(VHD_E_BASE + 8))  /* parent cycle or chain too deep */
#define VHD_E_TOO_BIG      (-(VHD_E_BASE + 9))  /* size over the format limit */

/** Name an error code (negative errno or VHD_E*); never NULL. */
VHD_API const char *vhd_strerror(int err);

/** Message of @d's last failure, or of this thread's last failed open/create
 *  when @d is NULL.  Empty string if none. */
VHD_API const char *vhd_errmsg(const vhd_disk *d);

/* ---- formats and types ---- */
enum vhd_format {
	VHD_FMT_AUTO = 0,	/* open: detect from content */
	VHD_FMT_RAW = 1,
	VHD_FMT_VHD = 2,
	VHD_FMT_VHDX = 3,
	VHD_FMT_QCOW2 = 4,	/* read-only import (qcow2 v2/v3) */
	VHD_FMT_VMDK = 5,	/* read-only import (VMware) */
};

enum vhd_type {
	VHD_TYPE_NONE = 0,	/* raw files */
	VHD_TYPE_FIXED = 2,
	VHD_TYPE_DYNAMIC = 3,
	VHD_TYPE_DIFF = 4,
};

/* Limits. */
#define VHD_MAX_SIZE        (2040ULL << 30)	/* VHD format limit, 2040 GiB */
#define VHDX_MAX_DISK_SIZE  (64ULL << 40)	/* VHDX format limit, 64 TiB */
#define VHD_MAX_CHAIN_DEPTH 256
#define VHD_DEFAULT_BLOCK   (2U << 20)

/* ---- I/O backends ----
 * All file I/O of the library goes through a struct vhd_io.  A backend embeds
 * struct vhd_io as its first member and supplies the ops; the library calls
 * ops->close exactly once.  Offsets and sizes are bytes.  pread returns the
 * count read (short only at end of file) or -errno; pwrite returns the count
 * written or -errno.  Optional ops may be NULL.
 */
struct vhd_io;

struct vhd_io_ops {
	ssize_t (*pread)(struct vhd_io *io, void *buf, size_t len, uint64_t off);
	ssize_t (*pwrite)(struct vhd_io *io, const void *buf, size_t len,
			  uint64_t off);
	int (*flush)(struct vhd_io *io);		/* make writes durable */
	int (*get_size)(struct vhd_io *io, uint64_t *size);
	int (*truncate)(struct vhd_io *io, uint64_t size);
	void (*close)(struct vhd_io *io);
	/* optional: deallocate a range so that it reads zeros */
	int (*punch)(struct vhd_io *io, uint64_t off, uint64_t len);
	/* optional: first data byte at or after @off and the end of that data
	 * run (SEEK_DATA/SEEK_HOLE); *data = size when only holes follow */
	int (*next_data)(struct vhd_io *io, uint64_t off, uint64_t *data,
			 uint64_t *data_end);
	/* optional: identity for cycle detection (st_dev/st_ino) */
	int (*identity)(struct vhd_io *io, uint64_t *dev, uint64_t *ino);
	/* optional: start reading a range into the cache, without waiting */
	int (*prefetch)(struct vhd_io *io, uint64_t off, uint64_t len);
	/* optional: advisory deallocation (may leave any content); without
	 * it, discards use punch */
	int (*discard)(struct vhd_io *io, uint64_t off, uint64_t len);
	/* optional: a file descriptor that the asynchronous path (vhd_aio_*)
	 * may hand to the kernel directly (libaio), with *@align the O_DIRECT
	 * alignment of offsets, lengths and buffers (0: buffered); -ENOTSUP
	 * when the backend's I/O must go through its ops */
	int (*aio_fd)(struct vhd_io *io, unsigned *align);
	/* optional: copy @len bytes at @src to @dst in the same file, inside
	 * the kernel (ranges do not overlap); returns the bytes copied (short
	 * only at end of file) or a negative errno */
	ssize_t (*copy)(struct vhd_io *io, uint64_t src, uint64_t dst, size_t len);
};

struct vhd_io {
	const struct vhd_io_ops *ops;
};

/* vhd_io_factory.open flags */
#define VHD_IO_RDWR    0x1	/* open for writing */
#define VHD_IO_CREATE  0x2	/* create; fail if it exists */
#define VHD_IO_NOLOCK  0x4	/* do not take the advisory image lock */
#define VHD_IO_DIRECT  0x8	/* O_DIRECT (where the backend supports it) */
#define VHD_IO_TRYLOCK 0x10	/* take the lock if free, else go on without */

/* Opens files by path; the library uses it for the image and its parents. */
struct vhd_io_factory {
	int (*open)(const struct vhd_io_factory *f, const char *path,
		    unsigned flags, struct vhd_io **out);
	/* optional: delete a file (a failed create removes its output) */
	int (*remove)(const struct vhd_io_factory *f, const char *path);
};

/** The default factory: POSIX files, with flock(2) locking (shared for
 *  read-only opens, exclusive for read-write; -EBUSY when held elsewhere). */
VHD_API const struct vhd_io_factory *vhd_io_posix(void);

/** Crash-simulating in-memory backend for tests (see docs/crash-safety.md).
 *  Files live in memory.  Writes since the last flush are pending; a crash
 *  keeps a random subset of the pending 512-byte sector writes. */
struct vhd_crashsim;
VHD_API struct vhd_crashsim *vhd_crashsim_new(uint64_t seed);
VHD_API void vhd_crashsim_free(struct vhd_crashsim *cs);
VHD_API const struct vhd_io_factory *vhd_crashsim_factory(struct vhd_crashsim *cs);
/** From now on the simulator's files can punch holes (a pending write of
 *  zeros), and copy within a file (copy_file_range: a pending write of what
 *  reads see at the source); without these calls they offer neither op. */
VHD_API void vhd_crashsim_allow_punch(struct vhd_crashsim *cs);
VHD_API void vhd_crashsim_allow_copy(struct vhd_crashsim *cs);
/** Load a host file (or a buffer) into the simulator as durable content. */
VHD_API int vhd_crashsim_load(struct vhd_crashsim *cs, const char *path,
			      const char *host_path);
VHD_API int vhd_crashsim_load_buf(struct vhd_crashsim *cs, const char *path,
				  const void *buf, size_t len);
/** After @n more pwrite calls succeed, every later write fails with -EIO and
 *  the simulator records the crash image (n = 0 disarms). */
VHD_API void vhd_crashsim_cut_after(struct vhd_crashsim *cs, uint64_t n);
/** Count of pwrite calls that reached the simulator so far. */
VHD_API uint64_t vhd_crashsim_writes(const struct vhd_crashsim *cs);
/** Whether the armed cut has happened. */
VHD_API int vhd_crashsim_crashed(const struct vhd_crashsim *cs);
/** Write what would be on disk after a crash now (or at the cut, if it
 *  happened): durable content plus a random subset (probability @keep_pct
 *  percent per sector) of the pending writes, to @host_path. */
VHD_API int vhd_crashsim_save_crash(struct vhd_crashsim *cs, const char *path,
				    const char *host_path, unsigned keep_pct);

/* ---- create ---- */
struct vhd_create_opts {
	enum vhd_format format;		/* VHD_FMT_VHD (default) or RAW */
	enum vhd_type type;		/* FIXED, DYNAMIC (default) or DIFF */
	uint64_t size;			/* bytes; multiple of 512; 0 = parent's */
	uint32_t block_size;		/* 0 = 2 MiB */
	const char *parent;		/* DIFF: parent path */
	char creator_app[4];		/* all zero = "win " (see docs) */
	int chs_exact;			/* round size up to a CHS-exact size */
	int preallocate;		/* fixed: allocate the whole file */
	uint32_t logical_sector;	/* VHDX: 512 (default) or 4096 */
	uint32_t physical_sector;	/* VHDX: 512 or 4096 (default) */
	const struct vhd_io_factory *io; /* NULL = vhd_io_posix() */
};

/** Create an image at @path (which must not exist).  With @out non-NULL the
 *  new image is returned opened read-write; otherwise it is closed. */
VHD_API int vhd_create(const char *path, const struct vhd_create_opts *o,
		       vhd_disk **out);

/* ---- open ---- */
#define VHD_OPEN_RDWR      0x1	/* read-write (parents stay read-only) */
#define VHD_OPEN_NOPARENT  0x2	/* do not resolve the parent (info, check) */
#define VHD_OPEN_TOLERANT  0x4	/* accept repairable damage (check, repair) */
#define VHD_OPEN_UNSAFE    0x8	/* no intermediate syncs (bulk writers such
				   as convert, which remove the output on
				   failure); a final vhd_flush still syncs */
#define VHD_OPEN_DIRECT   0x10	/* O_DIRECT for the image file */
#define VHD_OPEN_NOLOCK   0x20	/* skip advisory locks */
#define VHD_OPEN_SHARED   0x40	/* read-only: open the image even while a
				   writer holds it.  The block table is read
				   once: data the writer puts in blocks it
				   allocates later is not seen, and reads may
				   see a moment of an update in progress */
#define VHD_OPEN_REALIGN  0x80	/* read-write dynamic/differencing VHD: a
				   block whose data is not 4 KiB aligned (as
				   qemu-img and Virtual PC place it) moves to
				   an aligned place at its first write below
				   64 KiB, so 4 KiB I/O touches one host
				   page, not two.
				   The old place is punched after the next
				   flush; the file's apparent size grows,
				   its allocated size does not.  Without
				   hole punching this does nothing */

enum vhd_size_rule {
	VHD_SIZE_AUTO = 0,	/* creator-aware (docs/vhd-format.md) */
	VHD_SIZE_CURRENT = 1,	/* trust the footer's current size */
	VHD_SIZE_CHS = 2,	/* trust CHS geometry */
};

struct vhd_open_opts {
	enum vhd_format format;		/* AUTO = detect */
	enum vhd_size_rule size_rule;
	const char *parent_root;	/* if set, parents must lie under it */
	int ignore_parent_id;		/* accept a parent whose UUID differs */
	const struct vhd_io_factory *io;	/* NULL = vhd_io_posix() */
};

VHD_API int vhd_open(const char *path, unsigned flags,
		     const struct vhd_open_opts *o, vhd_disk **out);
/** Open a disk over an I/O backend the caller opened (a host block device
 *  from passthrough/, say).  Takes ownership of @io, also on failure.
 *  @name is used in messages and to resolve relative parent locators. */
VHD_API int vhd_open_io(struct vhd_io *io, const char *name, unsigned flags,
			const struct vhd_open_opts *o, vhd_disk **out);
/** Flushes (when writable) and frees.  Returns the flush result. */
VHD_API int vhd_close(vhd_disk *d);

/* ---- I/O at any byte offset and length ---- */
VHD_API ssize_t vhd_pread(vhd_disk *d, void *buf, size_t len, uint64_t off);
VHD_API ssize_t vhd_pwrite(vhd_disk *d, const void *buf, size_t len,
			   uint64_t off);
/** Make every completed write durable (data, then metadata). */
VHD_API int vhd_flush(vhd_disk *d);
/** Advisory: the range may afterwards read as zeros (or, in a differencing
 *  image, as the parent's data); it never reads as another block's data. */
VHD_API int vhd_discard(vhd_disk *d, uint64_t off, uint64_t len);
/* vhd_zero flags */
#define VHD_ZERO_FAST    0x1	/* fail with -ENOTSUP rather than write data */
#define VHD_ZERO_NOUNMAP 0x2	/* keep blocks allocated (write zeros) */

/** The range reads as zeros afterwards; deallocates where possible (unless
 *  VHD_ZERO_NOUNMAP).  With VHD_ZERO_FAST, returns -ENOTSUP without changing
 *  anything when zeroing would mean writing zeros (NBD's fast zero). */
VHD_API int vhd_zero(vhd_disk *d, uint64_t off, uint64_t len, unsigned flags);
/** Start reading [off, off+len) of the chain into the page cache, without
 *  waiting (advisory; NBD's cache command, convert's read-ahead). */
VHD_API int vhd_prefetch(vhd_disk *d, uint64_t off, uint64_t len);

/* vhd_map_file flags */
#define VHD_MAP_WRITE 0x1	/* the run will be overwritten in place */

/** Zero-copy helper (splice, copy_file_range): when [off, off+len) of @d's
 *  own layer starts with a run stored as it is in the image file, readable
 *  (or, VHD_MAP_WRITE, overwritable) there with plain buffered I/O and no
 *  metadata change, set *@fd (owned by the handle) and *@pos and return the
 *  run's length (<= len).  Returns 0 when the range must go through
 *  vhd_pread/vhd_pwrite (parents, unallocated or partial blocks, O_DIRECT
 *  handles), or -errno. */
VHD_API int64_t vhd_map_file(vhd_disk *d, uint64_t off, uint64_t len,
			     unsigned flags, int *fd, uint64_t *pos);

/* ---- asynchronous I/O ----
 * A queue of requests in flight on one disk, for event-driven callers (the
 * VMM's virtio queues, convert --direct).  A request whose range is stored
 * contiguously in the image file (raw files, fixed disks, allocated blocks
 * of dynamic and differencing VHD/VHDX, block devices) goes straight to the
 * file on the caller's iovec: with libaio when the file is open O_DIRECT
 * (it completes later), with one preadv/pwritev when it is buffered.
 * Anything else (allocation, partial sectors, reads from parents, discard,
 * zero) runs synchronously inside vhd_aio_submit.  Either way the caller
 * sees one interface: submit, then reap completions.
 *
 * A queue is used by one thread at a time.  The disk handle may be used by
 * other queues and by the synchronous calls at the same time.  Overlapping
 * requests in flight at once have no defined order (as on any disk); a FLUSH
 * waits for every request submitted before it, then makes them durable.
 */
typedef struct vhd_aioq vhd_aioq;

enum vhd_aio_op {
	VHD_AIO_READ = 0,
	VHD_AIO_WRITE = 1,
	VHD_AIO_FLUSH = 2,
	VHD_AIO_DISCARD = 3,
	VHD_AIO_ZERO = 4,		/* flags: VHD_ZERO_* */
};

struct iovec;

struct vhd_aio {
	enum vhd_aio_op op;
	const struct iovec *iov;	/* READ/WRITE: the buffers (borrowed
					   until completion) */
	int iovcnt;
	uint64_t offset;		/* bytes */
	uint64_t length;		/* DISCARD/ZERO (READ/WRITE: ignored) */
	unsigned flags;
	void *opaque;			/* the caller's */
	ssize_t result;			/* on completion: bytes or -errno */
	uint64_t priv_[2];		/* library-private */
};

/** A queue for up to @depth requests in flight (1..1024). */
VHD_API int vhd_aioq_new(vhd_disk *d, unsigned depth, vhd_aioq **out);
/** An eventfd for poll/epoll loops: readable when completions arrive after
 *  vhd_aio_submit returned (requests finished inside submit are returned by
 *  the next vhd_aio_reap, which the caller makes after submitting);
 *  vhd_aio_reap resets it. */
VHD_API int vhd_aioq_eventfd(const vhd_aioq *q);
/** Submit @n requests.  Returns the number accepted (fewer when the queue is
 *  full) or -errno; a request's own failure is reported in its result. */
VHD_API int vhd_aio_submit(vhd_aioq *q, struct vhd_aio *const *reqs, unsigned n);
/** Collect up to @max completed requests into @done, waiting until at least
 *  @min have completed.  Returns the count or -errno. */
VHD_API int vhd_aio_reap(vhd_aioq *q, struct vhd_aio **done, unsigned min,
			 unsigned max);
/** Requests submitted and not yet reaped. */
VHD_API unsigned vhd_aioq_inflight(const vhd_aioq *q);
/** Wait for every request in flight, then free the queue (their completions
 *  are dropped). */
VHD_API void vhd_aioq_free(vhd_aioq *q);

/* ---- extents ---- */
enum vhd_extent_type {
	VHD_EXT_DATA = 1,	/* stored in layer `depth` of the chain */
	VHD_EXT_ZERO = 2,	/* stored nowhere: reads as zeros */
};

struct vhd_extent {
	uint64_t offset;
	uint64_t length;
	enum vhd_extent_type type;
	uint32_t depth;		/* DATA: 0 = this image, 1 = its parent, ... */
};

/** Call @cb for consecutive extents covering [off, off+len) (clipped to the
 *  disk size); adjacent extents of equal type and depth are merged.  A non-
 *  zero return from @cb stops the walk and is returned. */
VHD_API int vhd_extents(vhd_disk *d, uint64_t off, uint64_t len,
			int (*cb)(void *opaque, const struct vhd_extent *e),
			void *opaque);

/* ---- information ---- */
#define VHD_UUID_LEN 16

struct vhd_info {
	enum vhd_format format;
	enum vhd_type type;
	uint64_t size;			/* virtual size in use (bytes) */
	uint64_t current_size;		/* footer current size */
	uint64_t original_size;
	uint64_t file_size;		/* bytes the file occupies (apparent) */
	uint32_t logical_sector;	/* 512 for VHD */
	uint32_t physical_sector;
	uint32_t block_size;		/* dynamic/diff */
	uint32_t max_table_entries;
	uint32_t blocks_allocated;
	uint16_t cylinders;
	uint8_t heads, sectors_per_track;
	uint8_t uuid[VHD_UUID_LEN];
	uint8_t parent_uuid[VHD_UUID_LEN];	/* DIFF */
	uint8_t data_write_guid[VHD_UUID_LEN];	/* VHDX: changes with content */
	char creator_app[5];		/* NUL-terminated, may hold NULs inside */
	uint32_t creator_version;
	uint32_t creator_os;
	uint32_t timestamp;		/* seconds since 2000-01-01 UTC */
	uint32_t parent_timestamp;
	int saved_state;
	int read_only;
	const char *path;		/* as opened */
	const char *parent_name;	/* DIFF: name stored in the header (UTF-8) */
	const char *parent_path;	/* DIFF: resolved parent path, NULL if not */
	unsigned depth;			/* layers below this one */
	const char *size_source;	/* "current", "chs" */
};

VHD_API int vhd_get_info(vhd_disk *d, struct vhd_info *info);
VHD_API uint64_t vhd_size(const vhd_disk *d);
/** The parent of @d (borrowed; valid while @d is open), or NULL. */
VHD_API vhd_disk *vhd_parent(const vhd_disk *d);

/* ---- operations ---- */

/* A problem found by vhd_check. */
enum vhd_check_severity {
	VHD_CHECK_INFO = 0,	/* worth saying, not a problem (leaked space) */
	VHD_CHECK_WARN = 1,	/* a problem that does not lose data */
	VHD_CHECK_ERROR = 2,	/* a problem: data or metadata at risk */
};

struct vhd_check_result {
	unsigned errors, warnings, infos;
};

/** Verify the image at @path (the whole chain unless VHD_OPEN_NOPARENT in
 *  @flags).  @report is called once per finding.  Returns 0 when the image
 *  could be checked (even with problems: see @res) or -errno when it could
 *  not be checked at all. */
VHD_API int vhd_check(const char *path, unsigned flags,
		      const struct vhd_open_opts *o,
		      void (*report)(void *opaque, enum vhd_check_severity sev,
				     const char *msg),
		      void *opaque, struct vhd_check_result *res);

struct vhd_convert_opts {
	struct vhd_create_opts out;	/* output format, type, block size */
	int sparse_zeros;		/* skip all-zero blocks (default on: 1) */
	int direct;			/* O_DIRECT on input and output */
	int keep_partial;		/* on failure keep the (valid, incomplete)
					   output instead of removing it */
	/* called after each chunk; nonzero return cancels (-ECANCELED) */
	int (*progress)(void *opaque, uint64_t done, uint64_t total);
	void *opaque;
	/* read the source in 1 MiB requests kept in flight through vhd_aio
	 * instead of buffered reads with read-ahead: for sources opened
	 * VHD_OPEN_DIRECT (implied by direct) or pass-through devices */
	int direct_source;
};

/** Copy the full content of @src (its whole chain) into a new image at
 *  @dst_path.  On failure the partial output is removed (or, with
 *  keep_partial, closed as a valid image holding what was copied). */
VHD_API int vhd_convert(vhd_disk *src, const char *dst_path,
			const struct vhd_convert_opts *o);

/** Copy the chain of @src layer by layer into new images: @dst[0] gets
 *  the base layer (converted as vhd_convert() would), @dst[i] a
 *  differencing image over @dst[i-1] holding what layer i stores itself
 *  (data, and zeros it stores over its parent).  @n must be the number of
 *  layers (vhd_get_info's depth + 1).  @o->out gives the format (VHD or
 *  VHDX) and block size; its type applies to the base.  Each output reads
 *  exactly as the layer it came from.  On failure every output made is
 *  removed. */
VHD_API int vhd_convert_chain(vhd_disk *src, const char *const *dst, int n,
			      const struct vhd_convert_opts *o);

#define VHD_RESIZE_FORCE 0x1	/* shrink even over allocated data */

/** Change the virtual size of the image at @path (its own layer; parents
 *  are not needed).  Shrinking refuses to cut data stored in the image
 *  unless VHD_RESIZE_FORCE.  Crash-safe: every step leaves a valid image. */
VHD_API int vhd_resize(const char *path, uint64_t size, unsigned flags,
		       const struct vhd_open_opts *o);

/** Merge @child (and the layers between it and @into, or only @child when
 *  @into is NULL) into the ancestor @into / @child's parent (Merge-VHD).
 *  Journaled in INTO.vhdkit-merge: an interrupted merge is finished by
 *  vhd_merge_resume(INTO).  On success *@stale lists (malloc'd strings, free
 *  them and the array) the merged layers, whose content now lives in the
 *  target: they are stale and should be deleted. */
VHD_API int vhd_merge(const char *child, const char *into,
		      const struct vhd_open_opts *o,
		      int (*progress)(void *, uint64_t, uint64_t), void *opaque,
		      char ***stale, int *nstale);
VHD_API int vhd_merge_resume(const char *target, const struct vhd_open_opts *o,
			     int (*progress)(void *, uint64_t, uint64_t), void *opaque,
			     char ***stale, int *nstale);

/* What vhd_compact() did. */
struct vhd_compact_stats {
	uint64_t blocks_before;		/* allocated data blocks before */
	uint64_t blocks_after;		/* ... and after */
	uint64_t dropped;		/* blocks dropped: they read the same
					   without them (zeros, or the parent) */
	uint64_t zeroed;		/* VHDX differencing: all-zero blocks
					   over non-zero parent data, now ZERO */
	uint64_t kept_zero;		/* VHD differencing: all-zero blocks kept
					   (the parent holds other data there) */
	uint64_t moved;			/* blocks moved down into free space */
	uint64_t file_before, file_after;	/* file size in bytes */
};

/** Reclaim space in the dynamic or differencing image at @path (VHD or
 *  VHDX): blocks that read the same without them are dropped (all-zero
 *  blocks of a dynamic disk; blocks of a differencing disk whose content
 *  equals what the parent shows there), an all-zero block over parent data
 *  in a differencing VHDX becomes PAYLOAD_BLOCK_ZERO, then blocks at the
 *  end of the file are moved into the holes (discarded and dropped blocks)
 *  and the file is truncated.  A differencing image needs its parent.  The
 *  image's identity (VHD UUID, VHDX DataWriteGuid) is kept: children stay
 *  valid.  Crash-safe: at every step the image is valid and reads the same
 *  (docs/crash-safety.md).  @flags must be 0; @st may be NULL.
 *  @progress (may be NULL) is called with bytes done and the total so far
 *  (every stored block is read once to examine it, every moved block
 *  copied once; the total grows as moves are planned); a nonzero return
 *  stops at the next durable step with -ECANCELED, the image valid and
 *  reading the same.
 *  @return 0, -errno or VHD_E_* (VHD_E_UNSUPPORTED for fixed and raw). */
VHD_API int vhd_compact(const char *path, unsigned flags,
			const struct vhd_open_opts *o,
			int (*progress)(void *, uint64_t, uint64_t), void *opaque,
			struct vhd_compact_stats *st);

#define VHD_REPAIR_DRY_RUN 0x1	/* plan only: report, change nothing */

struct vhd_repair_result {
	unsigned actions;		/* changes planned (and, unless a dry
					   run, made) */
	unsigned lost_blocks;		/* blocks whose data was unreachable:
					   their BAT entries were cleared */
};

/** Repair the image at @path (its own layer): VHD -- a missing or damaged
 *  footer at EOF from the backup copy at offset 0 and vice versa, a stale
 *  dynamic header checksum, an interrupted reparent (from its journal), BAT
 *  entries past the end of the file or overlapping metadata or another
 *  block (cleared: reported with the virtual range lost), unreferenced
 *  space before the footer (truncated); VHDX -- an invalid header from the
 *  current one, a damaged region table from its copy, BAT entries outside
 *  the data area.  Every change is reported through @plan (one line each)
 *  before the first is made; with VHD_REPAIR_DRY_RUN nothing is changed.
 *  Changes are applied in a crash-safe order (docs/crash-safety.md): the
 *  image never gets worse than it was.  Damage repair cannot undo (both
 *  footers bad, overlapping metadata, ...) fails with the open's message.
 *  @return 0 (also when there was nothing to do), -errno or VHD_E_*. */
VHD_API int vhd_repair(const char *path, unsigned flags,
		       const struct vhd_open_opts *o,
		       void (*plan)(void *opaque, const char *action),
		       void *opaque, struct vhd_repair_result *res);

#define VHD_REPARENT_IGNORE_ID 0x1	/* accept a parent of another identity */

/** Point the differencing image @child at @new_parent: parent locators,
 *  name, UUID and timestamp (VHD) or parent_linkage and the locator (VHDX).
 *  The new parent must have @child's format and size, must not have @child
 *  in its own chain, and must carry the identity @child was made from (VHD:
 *  its footer UUID equals the child's parent UUID; VHDX: its DataWriteGuid
 *  equals parent_linkage) -- else VHD_E_PARENT_ID, unless
 *  VHD_REPARENT_IGNORE_ID, which records the new parent's identity.
 *  Crash-safe (docs/crash-safety.md): a VHD header rewrite is journaled in
 *  CHILD.vhdkit-reparent, which vhd_repair() finishes after a crash; VHDX
 *  metadata changes go through the log.
 *  @return 0, -errno or VHD_E_* (the message names the file). */
VHD_API int vhd_reparent(const char *child, const char *new_parent,
			 unsigned flags, const struct vhd_open_opts *o);

/** Compare the content of two disks (any formats, whole chains).  Bytes
 *  past the smaller disk's end compare as zeros.  Returns 0 when equal, 1
 *  when not (*@first_diff = first differing offset), or -errno. */
VHD_API int vhd_compare(vhd_disk *a, vhd_disk *b, uint64_t *first_diff);

/* ---- helpers exposed for tools and tests ---- */
/** CHS geometry of a size per the VHD specification. */
VHD_API void vhd_chs_from_size(uint64_t size, uint16_t *cyl, uint8_t *heads,
			       uint8_t *spt);
/** Format a UUID as 8-4-4-4-12 lowercase hex; @out holds 37 bytes. */
VHD_API void vhd_uuid_format(const uint8_t uuid[16], char out[37]);

#ifdef __cplusplus
}
#endif

#endif /* LIBVHD_H */
