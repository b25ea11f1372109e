/* `voltbatch --version`: revision, backends and library versions. */
#include "cli/build_info.h"

#include <hdf5.h>
#include <jansson.h>
#include <mpi.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "git_revision.h"
#include "vb_config.h"

#if VB_HAVE_CUDA
#include "cuda/cuda_build_info.h"
#endif

static void print_mpi(FILE *out)
{
#if defined(OMPI_MAJOR_VERSION)
    fprintf(out, "  MPI:    Open MPI %d.%d.%d headers (MPI %d.%d)\n", OMPI_MAJOR_VERSION,
            OMPI_MINOR_VERSION, OMPI_RELEASE_VERSION, MPI_VERSION, MPI_SUBVERSION);
#elif defined(MPICH_VERSION)
    fprintf(out, "  MPI:    MPICH %s headers (MPI %d.%d)\n", MPICH_VERSION, MPI_VERSION,
            MPI_SUBVERSION);
#else
    fprintf(out, "  MPI:    MPI %d.%d headers\n", MPI_VERSION, MPI_SUBVERSION);
#endif
    /* Allowed before MPI_Init; says which library the loader picked. */
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    if (MPI_Get_library_version(lib, &len) == MPI_SUCCESS && len > 0) {
        for (int i = 0; i < len && lib[i]; i++)
            if (lib[i] == '\n' || lib[i] == ',') {
                lib[i] = '\0';
                break;
            }
        fprintf(out, "          runtime: %s\n", lib);
    }
}

void vb_print_version(FILE *out)
{
    fprintf(out, "voltbatch %s (git %s)\n", VB_VERSION, VB_GIT_REVISION);
#if VB_HAVE_CUDA
    fprintf(out, "  backends: cpu, cuda (sm %s)\n", VB_CUDA_ARCHS);
    vb_cuda_print_build_info(out);
#else
    fprintf(out, "  backends: cpu (built without CUDA)\n");
#endif
    print_mpi(out);
    fprintf(out, "  HDF5:   %d.%d.%d\n", H5_VERS_MAJOR, H5_VERS_MINOR, H5_VERS_RELEASE);
    fprintf(out, "  Jansson: %s   PCRE2: %d.%d\n", JANSSON_VERSION, PCRE2_MAJOR,
            PCRE2_MINOR);
}
