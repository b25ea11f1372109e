/* make_ids_input: writes an input file with /input_ids (variable-length
 * int32, already tokenized) and /id (int64), deterministic.
 *
 * usage: make_ids_input OUT.h5 N_ROWS MAX_ID [--empty-row K] [--shared-prefix P]
 *                       [--reverse 1]
 * Row i has 3 + (i * 7) % 23 ids in [0, MAX_ID); with --empty-row, row K
 * has none (a bad row the run must report, not crash on); with
 * --shared-prefix, every row starts with the same P ids (a shared system
 * prompt, for the prefix cache); with --reverse 1, the same rows (and
 * /id values) in the opposite order (the batch-invariance test's "rows in
 * another order"). */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 4 || argc % 2) {
        fprintf(stderr, "usage: make_ids_input OUT.h5 N_ROWS MAX_ID [--empty-row K] "
                        "[--shared-prefix P] [--reverse 1]\n");
        return 2;
    }
    int n = atoi(argv[2]), max_id = atoi(argv[3]), empty = -1, prefix = 0, reverse = 0;
    for (int a = 4; a + 1 < argc; a += 2) {
        if (strcmp(argv[a], "--empty-row") == 0)
            empty = atoi(argv[a + 1]);
        else if (strcmp(argv[a], "--shared-prefix") == 0)
            prefix = atoi(argv[a + 1]);
        else if (strcmp(argv[a], "--reverse") == 0)
            reverse = atoi(argv[a + 1]);
        else {
            fprintf(stderr, "make_ids_input: unknown option '%s'\n", argv[a]);
            return 2;
        }
    }
    if (n < 1 || max_id < 2) {
        fprintf(stderr, "make_ids_input: bad N_ROWS or MAX_ID\n");
        return 2;
    }
    hvl_t *rows = calloc((size_t)n, sizeof *rows);
    int64_t *ids = calloc((size_t)n, sizeof *ids);
    uint64_t x = 0x243f6a8885a308d3ull;
    for (int i = 0; i < n; i++) {
        int len = i == empty ? 0 : prefix + 3 + (i * 7) % 23;
        int32_t *p = malloc(sizeof(int32_t) * (size_t)(len + 1));
        for (int k = 0; k < len; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            /* the shared prefix: the same ids in every row */
            p[k] = k < prefix ? (int32_t)((k * 2654435761u) % (uint32_t)max_id)
                              : (int32_t)((x >> 33) % (uint64_t)max_id);
        }
        rows[i].len = (size_t)len;
        rows[i].p = p;
        ids[i] = 1000 + i;
    }
    for (int i = 0; reverse && i < n / 2; i++) {
        hvl_t r = rows[i];
        rows[i] = rows[n - 1 - i];
        rows[n - 1 - i] = r;
        int64_t id = ids[i];
        ids[i] = ids[n - 1 - i];
        ids[n - 1 - i] = id;
    }
    hid_t f = H5Fcreate(argv[1], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t vt = H5Tvlen_create(H5T_NATIVE_INT32);
    hid_t d = H5Dcreate2(f, "input_ids", vt, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = H5Dwrite(d, vt, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows);
    H5Dclose(d);
    hid_t d2 = H5Dcreate2(f, "id", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    rc |= H5Dwrite(d2, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids);
    H5Dclose(d2);
    H5Tclose(vt);
    H5Sclose(sp);
    rc |= H5Fclose(f);
    for (int i = 0; i < n; i++)
        free(rows[i].p);
    free(rows);
    free(ids);
    if (rc < 0) {
        fprintf(stderr, "make_ids_input: cannot write %s\n", argv[1]);
        return 1;
    }
    return 0;
}
