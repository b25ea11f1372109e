#!/usr/bin/env bash
# shellcheck disable=SC2154  # rc is set by run_capture in tests/lib.sh
# The real small trained models in ../shared/models (any folder there with
# config.json, safetensors and tokenizer.json) give the same greedy tokens
# as Hugging Face transformers' generate. References: tests/run/fixtures/
# real/<model>.jsonl, made by scripts/make-real-model-goldens. Skips, saying
# so, when no such model is there (today the folder holds configs only).
#
# usage: test_real_models.sh VOLTBATCH SOURCE_ROOT
set -u
vb=$1
root=$2
# shellcheck source=../lib.sh
. "$TEST_LIB"
models=()
for d in "$root"/../shared/models/*/ "$root"/../shared/models/*/*/; do
    [ -f "$d/config.json" ] && [ -f "$d/tokenizer.json" ] &&
        { [ -f "$d/model.safetensors" ] || [ -f "$d/model.safetensors.index.json" ]; } &&
        models+=("${d%/}")
done
if [ ${#models[@]} -eq 0 ]; then
    echo "SKIP: no trained model in ../shared/models (config.json + safetensors + tokenizer.json)"
    exit 77
fi
if ! python3 -c 'import h5py' 2>/dev/null; then
    echo "SKIP: python3 with h5py is needed to write the prompt ids"
    exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for m in "${models[@]}"; do
    name=$(basename "$m")
    fx="$root/tests/run/fixtures/real/$name.jsonl"
    if [ ! -f "$fx" ]; then
        check "$name: reference exists (run scripts/make-real-model-goldens $m)" false
        continue
    fi
    n_new=$(python3 - "$fx" "$dir/$name.h5" <<'PY'
import json, sys, h5py, numpy as np
rows = [json.loads(l) for l in open(sys.argv[1])]
with h5py.File(sys.argv[2], "w") as f:
    d = f.create_dataset("input_ids", (len(rows),), dtype=h5py.vlen_dtype(np.int32))
    for i, r in enumerate(rows):
        d[i] = np.array(r["prompt_ids"], dtype=np.int32)
print(len(rows[0]["new_ids"]))
PY
)
    run_capture "$vb" generate --model "$m" --input "$dir/$name.h5" --output "$dir/$name.out.h5" \
        --temperature 0 --repetition-penalty 1 --ignore-eos --max-new-tokens "$n_new" --device cpu
    check "$name: generate exits 0" [ "$rc" -eq 0 ]
    same=$(python3 - "$fx" "$dir/$name.out.h5" <<'PY'
import json, sys, h5py
rows = [json.loads(l) for l in open(sys.argv[1])]
f = h5py.File(sys.argv[2], "r")
got = {int(i): list(map(int, ids)) for i, ids in zip(f["index"][:], f["output_ids"][:])}
print(sum(got.get(i) == r["new_ids"] for i, r in enumerate(rows)), len(rows))
PY
)
    echo "$name: $same prompts with transformers' greedy tokens"
    check "$name: every prompt's greedy tokens equal transformers'" [ "${same% *}" = "${same#* }" ]
done
summary
