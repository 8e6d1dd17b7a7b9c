/*
 * crc32c.h -- CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as
 * VHDX uses for headers, region tables and log entries.  The SSE4.2 crc32
 * instruction when the CPU has it, else a slicing-by-8 table; both are
 * checked against the RFC 3720 (iSCSI) vectors in the unit tests.
 */
#ifndef LIBVHD_CRC32C_H
#define LIBVHD_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC of @len bytes continuing from @crc (start with 0). */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
/* The portable implementation, for tests. */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);

#endif /* LIBVHD_CRC32C_H */
