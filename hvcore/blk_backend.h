/*
 * blk_backend.h -- the one place where virtio-blk meets libvhd.
 *
 * Any libvhd handle is a disk: an image file (VHD/VHDX chains, raw) opened
 * with vhd_open(), or a host block device through passthrough's pt_open().
 * Calls are synchronous and made from the queue's I/O thread; a future
 * asynchronous libvhd API (vhd_aio_*) replaces only this file.
 *
 * All calls return 0 or a negative errno.  The handle is thread-safe in the
 * way libvhd handles are (concurrent I/O from several queues).
 */
#ifndef HVCORE_BLK_BACKEND_H
#define HVCORE_BLK_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libvhd.h"

struct blk_backend {
	vhd_disk *disk;
	uint64_t size;			/* bytes */
	uint32_t logical_sector;	/* 512 or 4096 */
	uint32_t physical_sector;
	bool read_only;
	char serial[21];		/* base name, <= 20 bytes, NUL-terminated */
};

/** Open @path (image file or block device).  On failure a one-line message
 *  naming the file is in @err. */
int blk_backend_open(struct blk_backend *b, const char *path, bool read_only,
		     char *err, size_t errlen);
/** Wrap an already opened handle (tests, fuzzing); takes ownership. */
void blk_backend_init(struct blk_backend *b, vhd_disk *d, const char *name,
		      bool read_only);
void blk_backend_close(struct blk_backend *b);

int blk_backend_read(struct blk_backend *b, void *buf, size_t len, uint64_t off);
int blk_backend_write(struct blk_backend *b, const void *buf, size_t len, uint64_t off);
int blk_backend_flush(struct blk_backend *b);
int blk_backend_discard(struct blk_backend *b, uint64_t off, uint64_t len);
int blk_backend_zero(struct blk_backend *b, uint64_t off, uint64_t len, bool unmap);

#endif /* HVCORE_BLK_BACKEND_H */
