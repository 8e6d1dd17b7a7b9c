/*
 * passthrough.h -- host block devices as vhdkit disk handles.
 *
 * pt_open() turns a whole disk, a partition or a loop device into a
 * vhd_disk (raw format), so every front end (NBD plugin, FUSE mount, vss,
 * the VMM) can use it like an image.  By default the device is taken
 * exclusively (O_EXCL) and refused, with the reason and the culprit, when
 * it or any partition on it is mounted, used as swap, held by another
 * device (device mapper, md, a loop device...), or holds the host's root
 * filesystem.  I/O is O_DIRECT; unaligned requests go through aligned
 * bounce buffers; flush is fdatasync, discard BLKDISCARD, zero BLKZEROOUT;
 * requests past the end are refused.
 *
 * Errors: negative errno; pt_errmsg() gives this thread's last message
 * ("DEVICE: cause").
 */
#ifndef PASSTHROUGH_H
#define PASSTHROUGH_H

#include <limits.h>
#include <stdint.h>

#include "libvhd.h"

struct pt_info {
	char path[PATH_MAX];		/* as given */
	char name[64];			/* kernel name, e.g. "loop0", "sda1" */
	uint64_t size;			/* bytes */
	uint32_t logical_sector, physical_sector;
	int read_only;
	int rotational;
	int partition;			/* a partition, not a whole disk */
	uint64_t discard_granularity;	/* 0: no discard */
	uint64_t discard_max;
	char model[128], serial[128];	/* from sysfs, may be empty */
	int usable;			/* can be passed through exclusively */
	char why[512];			/* when not: the reason and culprit */
};

#define PT_RDWR   0x1	/* open for writing */
#define PT_SHARED 0x2	/* read-only, no exclusivity checks (opt-out) */

/** Describe a block device, including whether (and why not) it can be
 *  passed through. */
int pt_probe(const char *dev, struct pt_info *info);
/** Every block device of the host (whole disks and partitions); free the
 *  array with free(). */
int pt_list(struct pt_info **out, size_t *count);
/** Open @dev as a disk handle (raw format, vhd_close() closes it). */
int pt_open(const char *dev, unsigned flags, vhd_disk **out);
/** Whether @path names a block device. */
int pt_is_block_device(const char *path);
const char *pt_errmsg(void);

#endif /* PASSTHROUGH_H */
