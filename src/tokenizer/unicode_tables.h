/* Unicode data for NFC (generated into unicode_tables.c by
 * gen_unicode_tables.py). Each table is sorted by its first column. */
#ifndef VB_UNICODE_TABLES_H
#define VB_UNICODE_TABLES_H

#include <stddef.h>
#include <stdint.h>

extern const uint32_t vb_ccc_table[][2];    /* code point, combining class */
extern const size_t vb_ccc_count;
extern const uint32_t vb_decomp_table[][3]; /* code point, first, second (0 if single) */
extern const size_t vb_decomp_count;
extern const uint32_t vb_comp_table[][3];   /* first, second, composed */
extern const size_t vb_comp_count;

#endif
