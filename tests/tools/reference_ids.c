/* reference_ids: turns a parity fixture's reference.json (prompts and
 * transformers' greedy continuations, tests/forward/test_forward_parity.c
 * describes it) into a `voltbatch generate` input, and checks generate's
 * output against it, so the whole pipeline (loader, scheduler, chunked
 * prefill, sampler at temperature 0) is compared with the reference, not
 * only the forward pass.
 *
 *   reference_ids input REFERENCE.json OUT.h5     /input_ids = the prompts
 *   reference_ids check REFERENCE.json OUT.jsonl  (voltbatch unpack's output)
 *   reference_ids new-tokens REFERENCE.json       prints the longest continuation
 * check prints the first mismatch and exits 1 unless every row's
 * output_ids equal its continuation (as many tokens as generate made,
 * which must be the continuation's length). */
#include <hdf5.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *load(const char *path, const char *key)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    json_t *a = root ? json_object_get(root, key) : NULL;
    if (!json_is_array(a)) {
        fprintf(stderr, "reference_ids: %s: no \"%s\" array (%s)\n", path, key,
                root ? "" : je.text);
        exit(2);
    }
    json_incref(a);
    json_decref(root);
    return a;
}

static int write_input(const char *ref, const char *out)
{
    json_t *prompts = load(ref, "prompts");
    size_t n = json_array_size(prompts);
    hvl_t *rows = calloc(n, sizeof *rows);
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(prompts, i);
        size_t len = json_array_size(p);
        int32_t *ids = malloc(sizeof(int32_t) * (len + 1));
        for (size_t k = 0; k < len; k++)
            ids[k] = (int32_t)json_integer_value(json_array_get(p, k));
        rows[i].len = len;
        rows[i].p = ids;
    }
    hid_t f = H5Fcreate(out, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t vt = H5Tvlen_create(H5T_NATIVE_INT32);
    hid_t d = H5Dcreate2(f, "input_ids", vt, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = H5Dwrite(d, vt, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows);
    H5Dclose(d);
    H5Tclose(vt);
    H5Sclose(sp);
    rc |= H5Fclose(f);
    for (size_t i = 0; i < n; i++)
        free(rows[i].p);
    free(rows);
    json_decref(prompts);
    if (rc < 0) {
        fprintf(stderr, "reference_ids: cannot write %s\n", out);
        return 1;
    }
    return 0;
}

static int check(const char *ref, const char *jsonl)
{
    json_t *conts = load(ref, "continuations");
    size_t n = json_array_size(conts), seen = 0, tokens = 0;
    FILE *f = fopen(jsonl, "r");
    if (!f) {
        fprintf(stderr, "reference_ids: cannot open %s\n", jsonl);
        return 2;
    }
    char line[1 << 16];
    int bad = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t je;
        json_t *row = json_loads(line, 0, &je);
        json_t *ids = json_object_get(row, "output_ids");
        json_int_t index = json_integer_value(json_object_get(row, "index"));
        if (!json_is_array(ids) || index < 0 || (size_t)index >= n) {
            fprintf(stderr, "reference_ids: %s: a row without output_ids or index\n", jsonl);
            bad = 1;
            json_decref(row);
            break;
        }
        json_t *want = json_array_get(conts, (size_t)index);
        if (json_array_size(ids) != json_array_size(want)) {
            fprintf(stderr, "row %lld: %zu tokens generated, the reference has %zu\n",
                    (long long)index, json_array_size(ids), json_array_size(want));
            bad = 1;
        }
        for (size_t k = 0; !bad && k < json_array_size(ids); k++)
            if (json_integer_value(json_array_get(ids, k)) !=
                json_integer_value(json_array_get(want, k))) {
                fprintf(stderr, "row %lld, token %zu: generate %lld, transformers %lld\n",
                        (long long)index, k, (long long)json_integer_value(json_array_get(ids, k)),
                        (long long)json_integer_value(json_array_get(want, k)));
                bad = 1;
            }
        tokens += json_array_size(ids);
        seen++;
        json_decref(row);
        if (bad)
            break;
    }
    fclose(f);
    json_decref(conts);
    if (!bad && seen != n) {
        fprintf(stderr, "reference_ids: %zu rows in %s, the reference has %zu\n", seen, jsonl, n);
        bad = 1;
    }
    if (!bad)
        printf("%zu rows, %zu tokens identical to the reference\n", seen, tokens);
    return bad;
}

static int new_tokens(const char *ref)
{
    json_t *conts = load(ref, "continuations");
    size_t most = 0;
    for (size_t i = 0; i < json_array_size(conts); i++)
        if (json_array_size(json_array_get(conts, i)) > most)
            most = json_array_size(json_array_get(conts, i));
    json_decref(conts);
    printf("%zu\n", most);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "new-tokens") == 0)
        return new_tokens(argv[2]);
    if (argc == 4 && strcmp(argv[1], "input") == 0)
        return write_input(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "check") == 0)
        return check(argv[2], argv[3]);
    fprintf(stderr, "usage: reference_ids input REFERENCE.json OUT.h5\n"
                    "       reference_ids check REFERENCE.json OUT.jsonl\n"
                    "       reference_ids new-tokens REFERENCE.json\n");
    return 2;
}
