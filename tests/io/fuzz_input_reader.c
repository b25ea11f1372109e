/* libFuzzer target for the HDF5 input reader: each input is written out as
 * a file and read the way the child of the isolated input check reads it
 * (vb_input_check, io/input_check.h: open and validate the shard, then
 * every row of every dataset), the code that stands between a damaged
 * file and a run.
 *
 * Besides "no crash, no sanitizer report in our code" it checks:
 *   - a refusal names the file (the message starts with its path);
 *   - every HDF5 object the reader opened is closed again: a leaked id
 *     keeps the file open, and the next input would be read from it.
 *
 * HDF5 itself is not instrumented, and it trusts the file: some inputs
 * crash or hang inside the library. Those are the isolated check's to
 * contain (the child dies, the parent names the file and dataset), not
 * ours to fix; scripts/fuzz-input-reader runs libFuzzer in fork mode,
 * sorts every crashing input by where it crashed, fails on ours and
 * checks that `voltbatch unpack` exits 2 on the library's.
 *
 * Seeds: tests/io/fuzz_corpus (made by tests/io/make_fuzz_corpus.py). */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/input_check.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[512];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    /* /dev/shm keeps the file writes out of the disk; one file a process
     * (libFuzzer's fork mode runs several). */
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, sizeof path, "%s/vb-fuzz-input-%ld.h5", tmp, (long)getpid());
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return 0;
}

static void write_file(const uint8_t *data, size_t size)
{
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(data, 1, size, fp) != size || fclose(fp) != 0) {
        perror(path);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    write_file(data, size);
    const char *specs[] = {path};
    bool is_output = false;
    vb_err err = {{0}};
    int rc = vb_input_check(specs, 1, false, &is_output, &err);
    if (rc != 0 && strncmp(err.msg, path, strlen(path)) != 0) {
        fprintf(stderr, "refusal that does not name the file: \"%s\"\n", err.msg);
        abort();
    }
    ssize_t open_ids = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (open_ids != 0) {
        fprintf(stderr, "%zd HDF5 objects left open after: %s\n", open_ids,
                rc ? err.msg : "a clean read");
        abort();
    }
    unlink(path);
    return 0;
}
