// The process-wide switch of kernels/pdl.cuh's launches (one GPU per
// process, so one switch). Off until the backend turns it on: programs
// that call the kernels directly (the micro-benchmarks) launch plainly.
#include "kernels.h"

#ifndef __CUDACC_RTC__
static int pdl_on;

extern "C" void vb_pdl_enable(int on)
{
    pdl_on = on != 0;
}

extern "C" int vb_pdl_enabled(void)
{
    return pdl_on;
}
#endif
