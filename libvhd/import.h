/*
 * import.h -- read-only formats vhdkit imports from: qcow2 and VMDK.
 * They open as disks like any other (reads, extents, a backing chain), so
 * `vhdtool convert` turns them into VHD or VHDX; they are never written.
 */
#ifndef LIBVHD_IMPORT_H
#define LIBVHD_IMPORT_H

#include <stdbool.h>

#include "disk.h"

/* From the first @len bytes of a file: is it one of ours?  Sets *fmt. */
bool import_detect(const uint8_t *head, size_t len, enum vhd_format *fmt);
int qcow2_open(vhd_disk *d, struct chain_ctx *ctx);
int vmdk_open(vhd_disk *d, struct chain_ctx *ctx);

#endif /* LIBVHD_IMPORT_H */
