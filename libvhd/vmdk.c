/*
 * vmdk.c -- VMDK import (placeholder until the reader lands).
 */
#include <errno.h>

#include "import.h"

int vmdk_open(vhd_disk *d, struct chain_ctx *ctx)
{
	return disk_error(d, VHD_E_UNSUPPORTED, "VMDK images cannot be read yet");
}
