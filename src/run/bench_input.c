/* Synthetic prompts for `voltbatch bench`; see bench_input.h. */
#include "run/bench_input.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#include "io/h5_util.h"

int bench_input_write(const char *path, int64_t n_prompts, int prefix_len, int input_len,
                      int32_t first_id, int32_t n_ids, uint64_t seed, vb_err *err)
{
    h5_quiet();
    const int len = prefix_len + input_len;
    hvl_t *rows = calloc((size_t)n_prompts, sizeof *rows);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n_prompts * (size_t)len + 4);
    if (!rows || !ids) {
        free(rows);
        free(ids);
        return vb_err_set(err, "%s: out of memory for %lld synthetic prompts", path,
                          (long long)n_prompts);
    }
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int64_t r = 0; r < n_prompts; r++) {
        int32_t *p = ids + (size_t)r * (size_t)len;
        if (r > 0 && prefix_len > 0) /* the shared part: row 0's first ids */
            memcpy(p, ids, (size_t)prefix_len * sizeof *p);
        for (int k = r > 0 ? prefix_len : 0; k < len; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            p[k] = first_id + (int32_t)((x >> 33) % (uint64_t)n_ids);
        }
        rows[r].len = (size_t)len;
        rows[r].p = p;
    }
    int rc = -1;
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t vt = H5Tvlen_create(H5T_NATIVE_INT32);
    if (f < 0 || vt < 0)
        vb_err_set(err, "%s: cannot create the synthetic input", path);
    else
        rc = h5_write_1d(f, "input_ids", vt, vt, (size_t)n_prompts, rows, err);
    if (vt >= 0 && H5Tclose(vt) < 0 && rc == 0)
        rc = vb_err_set(err, "%s: closing a type failed", path);
    if (f >= 0 && H5Fclose(f) < 0 && rc == 0)
        rc = vb_err_set(err, "%s: cannot close the synthetic input", path);
    free(rows);
    free(ids);
    return rc;
}
