#!/usr/bin/env bash
# `voltbatch generate` end to end on the CPU backend: a tiny random Qwen2
# model, /input_ids inputs, greedy and seeded sampling under several
# layouts (tp 1; mpirun -np 2 with tp 2; mpirun -np 2 with tp 1 = dp 2), bad
# rows, output refusal, text prompts (plain, --chat, --stop; refused
# without a tokenizer), --logprobs, and a SIGTERM stop (exit 75) resumed
# under another layout.
#
# usage: test_generate_run.sh VOLTBATCH MPIRUN MAKE_TINY_MODEL MAKE_IDS_INPUT
set -u
vb=$1
mpirun=$2
make_model=$3
make_input=$4
# shellcheck source=../lib.sh
. "$TEST_LIB"

if ! command -v h5dump >/dev/null; then
    echo "h5dump not found (Debian: hdf5-tools); skipping"
    exit 77
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null || { echo "make_tiny_model failed"; exit 1; }
"$make_input" in.h5 10 300 --empty-row 4 || { echo "make_ids_input failed"; exit 1; }

# The columns that must not depend on the layout, without the file name line.
cols() { h5dump -d /output_ids -d /index -d /finish_reason -d /completion_tokens -d /id "$1" | tail -n +2; }
n_rows() { h5dump -H -d /index "$1" | grep -o 'SIMPLE { ( [0-9]*' | grep -o '[0-9]*$'; }

greedy=(--device cpu --model model --input in.h5 --temperature 0 --repetition-penalty 1.3 --max-new-tokens 16)
run_capture "$vb" generate "${greedy[@]}" --output g_tp1.h5
check "greedy tp 1 exits 0" [ "$rc" -eq 0 ]
check "greedy tp 1: no positions warning" bash -c '! grep -q "positions the model was made for" <<<"$1"' _ "$err"
run_capture "$mpirun" -np 2 "$vb" generate "${greedy[@]}" --tp 2 --output g_tp2.h5
check "greedy mpirun -np 2 --tp 2 exits 0" [ "$rc" -eq 0 ]
run_capture "$mpirun" -np 2 "$vb" generate "${greedy[@]}" --tp 1 --output g_dp2.h5
check "greedy mpirun -np 2 --tp 1 (dp 2) exits 0" [ "$rc" -eq 0 ]
for f in g_tp1 g_tp2 g_dp2; do
    check "$f has every row" [ "$(n_rows $f.h5)" = 10 ]
done
check "greedy tp 2 = tp 1" [ "$(cols g_tp2.h5)" = "$(cols g_tp1.h5)" ]
check "greedy dp 2 = dp 1" [ "$(cols g_dp2.h5)" = "$(cols g_tp1.h5)" ]
check "greedy generated tokens" contains "$(h5dump -d /completion_tokens g_tp1.h5)" "16, 16"
check "empty row is an error row" contains "$(h5dump -d /error g_tp1.h5)" "empty prompt"
check "attributes record tp and dp" [ "$(h5dump -a /dp g_dp2.h5 | grep -c '(0): 2')" -eq 1 ]
# Sampling from the model's generation_config.json (no option given): the
# root attributes record the values in effect, settings_json what was asked
# (null), as --resume compares that (session 44: the attributes were absent).
run_capture "$vb" generate --device cpu --model model --input in.h5 --max-new-tokens 2 --output gc.h5
attr() { h5dump -a "/$1" "$2" | grep -o '(0): .*' | cut -c6-; }
check "generation_config's sampling recorded: exit 0" [ "$rc" -eq 0 ]
check "generation_config's sampling recorded: temperature 0.7 ($(attr temperature gc.h5))" \
    [ "$(attr temperature gc.h5)" = 0.7 ]
check "generation_config's sampling recorded: top_k 20, top_p 0.8, repetition_penalty 1.05" \
    [ "$(attr top_k gc.h5) $(attr top_p gc.h5) $(attr repetition_penalty gc.h5)" = "20 0.8 1.05" ]
check "generation_config's sampling: settings_json keeps what was asked (null)" \
    contains "$(h5dump -a /settings_json gc.h5)" '"temperature":null'
check "greedy run: temperature 0 and the option's repetition_penalty 1.3 recorded" \
    [ "$(attr temperature g_tp1.h5) $(attr repetition_penalty g_tp1.h5)" = "0 1.3" ]

seeded=(--device cpu --model model --input in.h5 --temperature 0.8 --seed 7 --max-new-tokens 24)
run_capture "$vb" generate "${seeded[@]}" --output s_dp1.h5
check "seeded dp 1 exits 0" [ "$rc" -eq 0 ]
run_capture "$mpirun" -np 2 "$vb" generate "${seeded[@]}" --tp 1 --output s_dp2.h5
check "seeded dp 2 exits 0" [ "$rc" -eq 0 ]
run_capture "$vb" generate "${seeded[@]}" --max-batch 1 --output s_b1.h5
check "seeded --max-batch 1 exits 0" [ "$rc" -eq 0 ]
check "seeded dp 2 = dp 1" [ "$(cols s_dp2.h5)" = "$(cols s_dp1.h5)" ]
check "seeded --max-batch 1 = --max-batch 256" [ "$(cols s_b1.h5)" = "$(cols s_dp1.h5)" ]
check "seeded differs from greedy" [ "$(cols s_dp1.h5)" != "$(cols g_tp1.h5)" ]
run_capture "$vb" generate "${seeded[@]}" --seed 8 --output s_seed8.h5
check "another seed, other tokens" [ "$(cols s_seed8.h5)" != "$(cols s_dp1.h5)" ]

run_capture "$vb" generate "${seeded[@]}" --no-prefix-cache --max-batch 3 --output s_nopc.h5
check "--no-prefix-cache = prefix cache" [ "$(cols s_nopc.h5)" = "$(cols s_dp1.h5)" ]
for mb in 7 64; do
    run_capture "$vb" generate "${seeded[@]}" --max-batch "$mb" --output "s_b$mb.h5"
    check "seeded --max-batch $mb = --max-batch 256" [ "$(cols "s_b$mb.h5")" = "$(cols s_dp1.h5)" ]
done

# --kv-cache-dtype int8 (issue #21): runs on the CPU backend, is recorded
# in the output's settings (so it never resumes an fp16 run) and keeps the
# layout invariance (the CUDA backend's int8 cache: tests/run/test_kv_int8_cuda.sh).
# A row without a system prompt takes --system whatever the other rows of
# its file hold (pack writes "" for it when another row has one; that ""
# overrode --system, session 31): row a renders the same alone and beside b.
printf '%s\n' '{"id":"a","prompt":"hello"}' '{"id":"b","prompt":"hello","system":"S"}' >mixed.jsonl
printf '%s\n' '{"id":"a","prompt":"hello"}' >alone.jsonl
for f in mixed alone; do
    "$vb" pack "$f.jsonl" "$f.h5" >/dev/null 2>&1
    run_capture "$vb" generate --device cpu --model model --input "$f.h5" --output "sys_$f.h5" \
        --chat --system GLOBAL --temperature 0 --max-new-tokens 2
    "$vb" unpack "sys_$f.h5" "sys_$f.jsonl" >/dev/null 2>&1
done
check "a row without /system takes --system beside rows with one" \
    [ "$(head -1 sys_mixed.jsonl | grep -o '"prompt_tokens":[0-9]*')" = \
      "$(head -1 sys_alone.jsonl | grep -o '"prompt_tokens":[0-9]*')" ]
check "a row with /system keeps its own" \
    [ "$(sed -n 2p sys_mixed.jsonl | grep -o '"prompt_tokens":[0-9]*')" != \
      "$(head -1 sys_alone.jsonl | grep -o '"prompt_tokens":[0-9]*')" ]
# An error row of a text prompt counts its tokens as an /input_ids row does
# (it said 0 beside "prompt has 100 tokens", session 31).
python3 -c 'import json; print(json.dumps({"prompt": "x" * 100}))' >long.jsonl
"$vb" pack long.jsonl long.h5 >/dev/null 2>&1
run_capture "$vb" generate --device cpu --model model --input long.h5 --output long_out.h5 \
    --temperature 0 --max-new-tokens 3 --max-model-len 50
"$vb" unpack long_out.h5 long_out.jsonl >/dev/null 2>&1
n_tok=$(grep -o 'prompt has [0-9]* tokens' long_out.jsonl | grep -o '[0-9]*')
check "a too-long text prompt's error row counts its tokens ($n_tok)" \
    contains "$(cat long_out.jsonl)" "\"prompt_tokens\":${n_tok:-none},"
# --max-model-len past max_position_embeddings runs, with one warning
# (session 31: it ran without a word)
run_capture "$vb" generate "${greedy[@]}" --max-model-len 4096 --output g_long.h5
check "--max-model-len past the model's positions: runs ($err)" [ "$rc" -eq 0 ]
check "--max-model-len past the model's positions: warned" \
    contains "$err" "warning: --max-model-len 4096 is past the 2048 positions"
run_capture "$vb" generate "${greedy[@]}" --kv-cache-dtype int8 --output g_kv8.h5
check "int8 KV cache exits 0" [ "$rc" -eq 0 ]
check "int8 KV cache: every row" [ "$(n_rows g_kv8.h5)" = 10 ]
check "int8 KV cache recorded in the settings" contains "$(h5dump -a /settings_json g_kv8.h5)" 'kv_cache_dtype'
run_capture "$mpirun" -np 2 "$vb" generate "${greedy[@]}" --tp 2 --kv-cache-dtype int8 --output g_kv8_tp2.h5
check "int8 KV cache tp 2 = tp 1" [ "$(cols g_kv8_tp2.h5)" = "$(cols g_kv8.h5)" ]
run_capture "$vb" generate "${greedy[@]}" --kv-cache-dtype fp8 --output g_kv_bad.h5
check "unknown KV dtype exits 2" [ "$rc" -eq 2 ]

# A 64-token prefix shared by every row (a system prompt): its blocks are
# computed once and hit after; outputs equal those without the cache.
"$make_input" sp.h5 40 300 --shared-prefix 64 || { echo "make_ids_input failed"; exit 1; }
hit_rate() { grep -o '"prefix_hit_rate": [0-9.e+-]*' "$1" | head -1 | awk '{print $2}'; }
run_capture "$vb" generate "${seeded[@]}" --input sp.h5 --max-batch 4 --report sp.json --output sp.h5.out.h5
check "shared prefix: exits 0" [ "$rc" -eq 0 ]
run_capture "$vb" generate "${seeded[@]}" --input sp.h5 --max-batch 4 --no-prefix-cache \
    --report sp_nopc.json --output sp_nopc.h5
check "shared prefix: same outputs without the cache" [ "$(cols sp_nopc.h5)" = "$(cols sp.h5.out.h5)" ]
echo "prefix hit rate: $(hit_rate sp.json) with the cache, $(hit_rate sp_nopc.json) without"
check "shared prefix: report shows hits (> 0.5)" awk -v r="$(hit_rate sp.json)" 'BEGIN { exit !(r > 0.5) }'
check "no prefix cache: no hits" awk -v r="$(hit_rate sp_nopc.json)" 'BEGIN { exit !(r == 0) }'

run_capture "$mpirun" -np 2 "$vb" generate "${seeded[@]}" --n 2 --report n2.json --output s_n2.h5
check "--n 2: exit 0" [ "$rc" -eq 0 ]
check "--n 2: two rows per input" [ "$(n_rows s_n2.h5)" = 20 ]
check "--n 2: a /sample column" [ "$(h5dump -d /sample s_n2.h5 | grep -c '(0): 0, 1, 0, 1')" -eq 1 ]
check "--report written" contains "$(cat n2.json 2>/dev/null)" '"generated_tokens"'

run_capture "$vb" generate "${seeded[@]}" --output s_dp1.h5
check "existing output refused: exit 2" [ "$rc" -eq 2 ]
check "existing output refused: one line" one_line "$err"
run_capture "$vb" generate "${seeded[@]}" --output s_dp1.h5 --resume
check "resume of a complete output exits 0" [ "$rc" -eq 0 ]
check "resume of a complete output keeps it" [ "$(cols s_dp1.h5)" = "$(cols s_dp2.h5)" ]

run_capture "$vb" generate --model nowhere --input in.h5 --output x.h5
check "missing model: exit 2" [ "$rc" -eq 2 ]
check "missing model: names rank and phase" contains "$err" "rank 0: model config"

printf 'Hello world\nThe capital of France is\n' >p.txt
"$vb" pack p.txt p.h5 >/dev/null 2>&1
text=(--device cpu --model model --input p.h5 --temperature 0.8 --seed 5 --max-new-tokens 12)
run_capture "$vb" generate "${text[@]}" --output p_tp1.h5
check "text prompts: exit 0" [ "$rc" -eq 0 ]
check "text prompts: every row" [ "$(n_rows p_tp1.h5)" = 2 ]
if h5dump -d /error p_tp1.h5 | grep -q 'text prompts need the tokenizer (issue #4)'; then
    # a tree without src/tokenizer: text rows are error rows, never a crash
    check "no tokenizer: text rows are error rows" \
        [ "$(h5dump -d /finish_reason p_tp1.h5 | grep -c 'error, error')" -eq 1 ]
else
    check "text prompts: completions decoded" \
        [ "$(h5dump -d /completion_tokens p_tp1.h5 | grep -c '(0): 12, 12')" -eq 1 ]
    run_capture "$mpirun" -np 2 "$vb" generate "${text[@]}" --tp 2 --output p_tp2.h5
    check "text prompts tp 2 = tp 1 (ids and text)" \
        [ "$(cols p_tp2.h5; h5dump -d /completions p_tp2.h5 | tail -n +2)" = \
          "$(cols p_tp1.h5; h5dump -d /completions p_tp1.h5 | tail -n +2)" ]
    run_capture "$vb" generate "${text[@]}" --chat --stop e --output p_chat.h5
    check "--chat --stop: exit 0" [ "$rc" -eq 0 ]
    check "--chat prompts are longer (template)" \
        [ "$(h5dump -d /prompt_tokens p_chat.h5 | tail -n +2)" != "$(h5dump -d /prompt_tokens p_tp1.h5 | tail -n +2)" ]
    mkdir model_notok && cp model/config.json model/generation_config.json model/model.safetensors model_notok/
    run_capture "$vb" generate --device cpu --model model_notok --input p.h5 --output p_notok.h5
    check "text prompts without tokenizer.json: exit 2" [ "$rc" -eq 2 ]
    check "text prompts without tokenizer.json: names the phase" contains "$err" "tokenizer"
    check "text prompts without tokenizer.json: says it is missing" contains "$err" "no such file"
    cp model/tokenizer.json model_notok/tokenizer.model # stands in for SentencePiece's file
    run_capture "$vb" generate --device cpu --model model_notok --input p.h5 --output p_notok.h5
    check "only a tokenizer.model: exit 2" [ "$rc" -eq 2 ]
    check "only a tokenizer.model: says it is not read" contains "$err" "tokenizer.model is not read"
    rm model_notok/tokenizer.model
    run_capture "$vb" generate "${greedy[@]}" --model model_notok --output g_notok.h5
    check "ids without tokenizer.json: exit 0" [ "$rc" -eq 0 ]
    check "ids without tokenizer.json: same ids" [ "$(cols g_notok.h5)" = "$(cols g_tp1.h5)" ]
fi

run_capture "$vb" generate "${seeded[@]}" --logprobs 3 --output lp1.h5
check "--logprobs 3: exit 0" [ "$rc" -eq 0 ]
run_capture "$mpirun" -np 2 "$vb" generate "${seeded[@]}" --logprobs 3 --tp 2 --output lp2.h5
check "--logprobs 3 tp 2: exit 0" [ "$rc" -eq 0 ]
check "--logprobs: same ids as without" [ "$(cols lp1.h5)" = "$(cols s_dp1.h5)" ]
check "--logprobs: top ids recorded" [ "$(h5dump -d /top_ids lp1.h5 | grep -c H5T_VLEN)" -eq 1 ]
check "--logprobs: same top ids at tp 2" \
    [ "$(h5dump -d /top_ids lp1.h5 | tail -n +2)" = "$(h5dump -d /top_ids lp2.h5 | tail -n +2)" ]

# Stop with SIGTERM once work has started, then resume with dp 2: the same
# rows as an uninterrupted run, nothing lost or doubled.
"$make_input" long.h5 16 300 || exit 1
long=(--device cpu --model model --input long.h5 --temperature 0.8 --seed 11 --max-new-tokens 700 --ignore-eos --max-batch 4)
run_capture "$vb" generate "${long[@]}" --output l_ref.h5
check "long reference run exits 0" [ "$rc" -eq 0 ]
"$vb" generate "${long[@]}" --output l_cut.h5 2>stop.err &
pid=$!
for _ in $(seq 100); do [ -e l_cut.h5.journal ] && break; sleep 0.05; done
sleep 0.5
kill -TERM "$pid"
wait "$pid"
rc=$?
check "SIGTERM: exit 75" [ "$rc" -eq 75 ]
check "SIGTERM: output and journal kept" [ -e l_cut.h5 ] && [ -e l_cut.h5.journal ]
check "SIGTERM: some rows missing" [ "$(n_rows l_cut.h5)" -lt 16 ]
# Weights saved over in place keep the model's path: the resume is refused
# naming the file, keeps the rows so far, and goes on once it is as it was.
touch -r model/model.safetensors mtime.ref
touch -d '2001-02-03 04:05:06' model/model.safetensors
run_capture "$vb" generate "${long[@]}" --output l_cut.h5 --resume
check "model file changed since begun: exit 2" [ "$rc" -eq 2 ]
check "model file changed: names the file" \
    contains "$err" "the model's model.safetensors changed since this output was begun"
check "model file changed: output and journal kept" [ -e l_cut.h5 ] && [ -e l_cut.h5.journal ]
touch -r mtime.ref model/model.safetensors
run_capture "$mpirun" -np 2 "$vb" generate "${long[@]}" --output l_cut.h5 --resume
check "resume under dp 2 exits 0" [ "$rc" -eq 0 ]
check "resumed = uninterrupted" [ "$(cols l_cut.h5)" = "$(cols l_ref.h5)" ]
check "resume removed the journal" [ ! -e l_cut.h5.journal ]

# Unsigned 64-bit ids (hash ids past 2^63 - 1): every row generated, the
# output's /id unsigned 64-bit with the input's values, JSON with the large
# ones as digit strings (session 32: such an id stopped the job).
if python3 -c 'import h5py, numpy' 2>/dev/null; then
    python3 - <<'PY'
import h5py, numpy as np
with h5py.File("in.h5") as src, h5py.File("u64.h5", "w") as f:
    rows = src["input_ids"][:3]
    ds = f.create_dataset("input_ids", (3,), dtype=h5py.vlen_dtype(np.dtype("int32")))
    for i, r in enumerate(rows):
        ds[i] = r
    f["id"] = np.array([5, 2**63, 2**64 - 1], dtype=np.uint64)
PY
    run_capture "$vb" generate --device cpu --model model --input u64.h5 --max-new-tokens 2 \
        --output u64_out.h5
    check "uint64 ids: exit 0 ($err)" [ "$rc" -eq 0 ]
    check "uint64 ids: kept in the output" python3 -c '
import h5py, numpy as np, sys
f = h5py.File("u64_out.h5")
ids = dict(zip(f["index"][:].tolist(), f["id"][:].tolist()))
sys.exit(not (f["id"].dtype == np.uint64 and ids == {0: 5, 1: 2**63, 2: 2**64 - 1}))'
    run_capture "$vb" unpack u64_out.h5 u64_out.jsonl
    check "uint64 ids: unpack exits 0" [ "$rc" -eq 0 ]
    check "uint64 ids in JSON" python3 -c '
import json, sys
ids = [json.loads(l)["id"] for l in open("u64_out.jsonl")]
sys.exit(not ids == [5, "9223372036854775808", "18446744073709551615"])'

    # An unsigned 64-bit /seed past 2^63 - 1 and a token id past int32 (an
    # int64 /input_ids): the seed is a seed, the bad id one row's error,
    # and the job runs every row (both stopped the whole read before).
    python3 - <<'PY'
import h5py, numpy as np
with h5py.File("odd.h5", "w") as f:
    ds = f.create_dataset("input_ids", (3,), dtype=h5py.vlen_dtype(np.dtype("int64")))
    ds[0] = np.array([1, 2, 3]); ds[1] = np.array([1, 2**40, 3]); ds[2] = np.array([4, 5])
    f["seed"] = np.array([7, 2**63 + 5, 2**64 - 1], dtype=np.uint64)
PY
    run_capture "$vb" generate --device cpu --model model --input odd.h5 --max-new-tokens 2 \
        --temperature 0.8 --output odd_out.h5
    check "odd columns: exit 0 ($err)" [ "$rc" -eq 0 ]
    check "odd columns: every row, only the bad id's an error" python3 -c '
import h5py, sys
f = h5py.File("odd_out.h5")
err = dict(zip(f["index"][:].tolist(), [e.decode() for e in f["error"][:]]))
sys.exit(not (len(err) == 3 and err[0] == "" and err[2] == "" and
              "token id 1099511627776 at position 1" in err[1]))'
    run_capture "$vb" unpack odd.h5 odd_in.jsonl
    check "unpack refuses the id past int32 (exit 2)" [ "$rc" -eq 2 ]
    check "unpack names the row" contains "$err" "odd.h5: /input_ids: row 1"
fi

summary
