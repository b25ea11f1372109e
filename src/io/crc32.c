/* Table-driven CRC-32; see crc32.h. The same values as zlib's crc32(), so
 * a journal can be checked with Python's zlib.crc32 when debugging. */
#include "io/crc32.h"

#include <pthread.h>

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void make_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
}

uint32_t vb_crc32(uint32_t crc, const void *buf, size_t n)
{
    pthread_once(&table_once, make_table);
    const unsigned char *p = buf;
    crc = ~crc;
    while (n--)
        crc = table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}
