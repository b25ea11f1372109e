/* libFuzzer target for the safetensors header parser and the row/column
 * readers: any byte string is treated as a whole file image. A header that
 * parses must describe only bytes inside the image, so reading every
 * readable tensor afterwards must stay in bounds (ASan checks that).
 *
 * Built and run by scripts/fuzz-safetensors; seeds in tests/model/fuzz_corpus. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_file f = {.path = "fuzz.safetensors", .map = data, .size = size};
    safetensors st = {.files = &f, .n_files = 1};
    vb_err err;
    if (st_parse_header(data, size, f.path, 0, &st.tensors, &st.n_tensors, &f.data_start, &err) != 0) {
        free(st.tensors);
        return 0;
    }
    for (int i = 0; i < st.n_tensors; i++) {
        const st_tensor *t = &st.tensors[i];
        /* Every tensor's bytes lie in the image: touch both ends. */
        if (t->end > t->begin) {
            volatile uint8_t x = data[f.data_start + t->begin] ^ data[f.data_start + t->end - 1];
            (void)x;
        }
        if (t->rows * t->cols > (1 << 16) || t->rows <= 0 || t->cols <= 0)
            continue;
        float *buf = malloc((size_t)(t->rows * t->cols) * sizeof *buf);
        uint64_t oor = 0;
        st_read_rows(&st, t, 0, t->rows, VB_W_F32, buf, &oor, &err);
        st_read_rows(&st, t, t->rows / 2, t->rows - t->rows / 2, VB_W_F16, buf, &oor, &err);
        st_read_cols(&st, t, t->cols / 2, t->cols - t->cols / 2, VB_W_F16, buf, &oor, &err);
        st_read_cols(&st, t, 0, t->cols + 1, VB_W_F32, buf, &oor, &err); /* refused */
        free(buf);
    }
    for (int i = 0; i < st.n_tensors; i++)
        free(st.tensors[i].name);
    free(st.tensors);
    return 0;
}
