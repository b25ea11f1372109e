// The process-wide switch of kernels/pdl.cuh's launches (one GPU per
// process, so one switch). Off until the backend turns it on: programs
// that call the kernels directly launch plainly unless they do the same.
#include "kernels.h"
#include "pdl.cuh"

// Built like every kernel here: its PTX version says whether this device
// runs code compiled with griddepcontrol (a build for sm_80 only runs on
// an H100 through the PTX JIT, without the waits, and must not launch
// with the attribute).
__global__ void pdl_probe_kernel(void)
{
    pdl_wait();
}

#ifndef __CUDACC_RTC__
static int pdl_on;

extern "C" int vb_pdl_enable(int on)
{
    pdl_on = on && vb_device_runs(90, (const void *)pdl_probe_kernel);
    return pdl_on;
}

extern "C" int vb_pdl_enabled(void)
{
    return pdl_on;
}
#endif
