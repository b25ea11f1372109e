/* libFuzzer target for the model directory's JSON: config.json (with its
 * quantization_config and rope_scaling) and generation_config.json, as
 * model_config_load reads them from a directory, then what `inspect` and
 * every run derive from a config that loaded: the tensor-parallel plan at
 * several --tp and the memory plan at both cache dtypes. A config that
 * loads must give plans whose arithmetic stays defined (UBSan: no signed
 * overflow, no shift past the width, no float-to-int out of range).
 *
 * The input's first byte picks the file: even, the rest of the input is
 * config.json (no generation_config.json); odd, it is generation_config.json
 * beside a fixed valid config.json. Files go to a directory made once per
 * process under TMPDIR (or /tmp).
 *
 * Built and run by scripts/fuzz-model-config; seeds in
 * tests/model/fuzz_config_corpus. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/memory_plan.h"
#include "model/model_config.h"
#include "model/tp_plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char valid_config[] =
    "{\"model_type\": \"qwen2\", \"hidden_size\": 64, \"intermediate_size\": 128,"
    " \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 2,"
    " \"vocab_size\": 256, \"max_position_embeddings\": 512, \"rms_norm_eps\": 1e-6,"
    " \"rope_theta\": 10000.0, \"tie_word_embeddings\": true}";

static char dir[4096];

static int write_file(const char *name, const void *bytes, size_t n)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(bytes, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static void remove_file(const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/vb-fuzz-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir))
            abort();
    }
    if (size == 0)
        return 0;
    int bad = 0;
    if (data[0] & 1) {
        bad |= write_file("config.json", valid_config, sizeof valid_config - 1);
        bad |= write_file("generation_config.json", data + 1, size - 1);
    } else {
        remove_file("generation_config.json");
        bad |= write_file("config.json", data + 1, size - 1);
    }
    if (bad)
        abort(); /* the fuzzer's own disk, not the input */

    model_config c;
    vb_err err;
    if (model_config_load(&c, dir, &err) != 0)
        return 0;
    (void)model_parameter_count(&c);
    (void)model_config_positions(&c);
    static const int tps[] = {1, 2, 3, 4, 8};
    for (size_t i = 0; i < sizeof tps / sizeof tps[0]; i++) {
        tp_plan p;
        if (tp_plan_make(&p, &c, tps[i], tps[i] - 1, &err) != 0)
            continue;
        memory_plan m;
        memory_plan_make(&m, &c, &p, (uint64_t)32 << 30, 0.9, 0, VB_KV_ACT, 0);
        memory_plan_make(&m, &c, &p, (uint64_t)80 << 30, 0.5, 4096, VB_KV_INT8, 1 << 20);
        memory_plan_make(&m, &c, &p, 0, 0.9, 0, VB_KV_ACT, 2048);
    }
    return 0;
}
