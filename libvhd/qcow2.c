/*
 * qcow2.c -- qcow2 import (placeholder until the reader lands).
 */
#include <errno.h>

#include "import.h"

int qcow2_open(vhd_disk *d, struct chain_ctx *ctx)
{
	return disk_error(d, VHD_E_UNSUPPORTED, "qcow2 images cannot be read yet");
}
