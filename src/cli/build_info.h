/* What this binary is and what it was built with (`voltbatch --version`).
 * Support requests start with this text. */
#ifndef VB_BUILD_INFO_H
#define VB_BUILD_INFO_H

#include <stdio.h>

void vb_print_version(FILE *out);

#endif
