/*
 * uuid.c -- random (version 4) UUIDs for new images.
 */
#include <errno.h>
#include <sys/random.h>

#include "vhd_codec.h"

int vhd_uuid_generate(uint8_t uuid[16])
{
	size_t done = 0;

	while (done < 16) {
		ssize_t n = getrandom(uuid + done, 16 - done, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	uuid[6] = (uint8_t)((uuid[6] & 0x0F) | 0x40);
	uuid[8] = (uint8_t)((uuid[8] & 0x3F) | 0x80);
	return 0;
}
