/* CRC-32 (IEEE 802.3, the zlib/PNG polynomial), for journal records and the
 * input checksum. Chained: crc = vb_crc32(crc, buf, n), starting from 0. */
#ifndef VB_IO_CRC32_H
#define VB_IO_CRC32_H

#include <stddef.h>
#include <stdint.h>

uint32_t vb_crc32(uint32_t crc, const void *buf, size_t n);

#endif
