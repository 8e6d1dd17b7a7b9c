/*
 * import.c -- format detection for the import formats.
 */
#include <string.h>

#include "import.h"

bool import_detect(const uint8_t *head, size_t len, enum vhd_format *fmt)
{
	if (len >= 4 && !memcmp(head, "QFI\xfb", 4)) {
		*fmt = VHD_FMT_QCOW2;
		return true;
	}
	if (len >= 4 && (!memcmp(head, "KDMV", 4) || !memcmp(head, "# Di", 4))) {
		*fmt = VHD_FMT_VMDK;
		return true;
	}
	return false;
}
