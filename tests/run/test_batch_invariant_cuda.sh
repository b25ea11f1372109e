#!/usr/bin/env bash
# `generate --batch-invariant` on the GPU (issue #22): a row's completion is
# bit-identical whatever shares its steps. On transformers-made random
# models of each architecture (tests/forward/fixtures: wide weights, so
# greedy continuations are full of near-ties and any rounding difference
# shows), prompts sharing a 24-token prefix (prefix cache hits), greedy:
#   - --max-batch 1 (graphs off), 7 (--max-batched-tokens 256: prompts
#     split into chunks), 64 (--no-prefix-cache, --max-batched-tokens
#     8192), 256 and the automatic batch (graphs on) give the same ids;
#   - the rows in reverse order give each row (by /id) the same ids;
#   - VB_TABLE_BUCKETS=1 (block tables as wide as the step needs: fewer
#     decode attention splits, other graphs) gives the same ids;
#   - a run stopped by SIGTERM and resumed gives the same ids;
# and sampled (--temperature 0.8 --top-p 0.95 --seed 1): --max-batch 1,
# 7 and the automatic batch the same ids. (The rows' order is not varied
# sampled: a row's random stream is keyed by its row number, DESIGN.md.)
# Without the mode the same comparison of --max-batch 1 and the automatic
# batch is printed, not asserted (cuBLAS tiles by the row count).
# Skips without a GPU, or on a GPU the mode does not support (below sm_80).
#
# With INV_TP=N (N > 1; MPIRUN the launcher) every run is N ranks at
# --tp N (the rank-ordered all-reduce) and the stop/resume part is left to
# the fault tests; skips with fewer than N GPUs.
#
# usage: test_batch_invariant_cuda.sh VOLTBATCH MAKE_IDS_INPUT [FIXTURE...]
#   (default: llama_untied qwen2_tied qwen3_qknorm mistral); a FIXTURE with
#   a / in it is a model folder itself (the real SmolLM2 one of
#   scripts/make-smollm2-model, a make_tiny_model --shape qwen2.5-7b one)
# shellcheck disable=SC2154  # rc and err are set by run_capture in tests/lib.sh
set -u
vb=$1
make_input=$2
shift 2
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(llama_untied qwen2_tied qwen3_qknorm mistral)
# shellcheck source=../lib.sh
. "$TEST_LIB"
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 77; }
tp=${INV_TP:-1}
if [ "$tp" -gt 1 ]; then
    if [ "$(nvidia-smi -L 2>/dev/null | wc -l)" -lt "$tp" ]; then
        echo "SKIP: --tp $tp needs $tp GPUs"
        exit 77
    fi
    vbrun() { "${MPIRUN:-mpirun}" -np "$tp" "$vb" "$@" --tp "$tp"; }
else
    vbrun() { "$vb" "$@"; }
fi
fixtures=$(cd "$(dirname "$TEST_LIB")/forward/fixtures" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
rows=120
"$make_input" in.h5 "$rows" 300 --shared-prefix 24 || exit 1
"$make_input" rev.h5 "$rows" 300 --shared-prefix 24 --reverse 1 || exit 1

ids() { output_ids "$vb" "$1" id; }
same_rows() { same_output_rows "$vb" "$1" "$2" id; }

# same NAME REF RUN: every row of RUN as in REF
same() {
    local n
    n=$(same_rows "$2" "$3")
    echo "$1: $n of $rows rows identical"
    check "$1: bit-identical" [ "$n" -eq "$rows" ]
}

for arch in "${archs[@]}"; do
    model=$fixtures/$arch
    case $arch in */*) model=$arch; arch=$(basename "$arch") ;; esac
    [ -f "$model/config.json" ] || { echo "no model at $model: skipped"; continue; }
    echo "== $arch"
    base=(generate --model "$model" --device cuda --max-new-tokens 40 --ignore-eos
          --batch-invariant)
    greedy=("${base[@]}" --temperature 0 --repetition-penalty 1)
    run_capture vbrun "${greedy[@]}" --input in.h5 --output "$arch-auto.h5" \
        --report "$arch-auto.json"
    if [ "$rc" -eq 2 ] && contains "$err" "no usable CUDA device"; then
        echo "SKIP: no GPU on this machine"
        exit 77
    fi
    if [ "$rc" -eq 2 ] && contains "$err" "needs an sm_80 or newer GPU"; then
        echo "SKIP: --batch-invariant is sm_80+ for now"
        exit 77
    fi
    check "$arch: --batch-invariant exits 0" [ "$rc" -eq 0 ]
    [ "$rc" -eq 0 ] || { echo "$err" | tail -3; continue; }
    check "$arch: CUDA graphs replayed" contains "$err" "steps replayed"
    hits=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["group0"]["prefix_hit_rate"])' \
        "$arch-auto.json" 2>/dev/null)
    echo "$arch: prefix cache hit rate ${hits:-?}"
    check "$arch: prefix cache hits" python3 -c 'import sys; sys.exit(not float(sys.argv[1]) > 0)' "${hits:-0}"
    run_capture vbrun "${greedy[@]}" --input in.h5 --output "$arch-b1.h5" --max-batch 1 \
        --no-cuda-graphs
    same "$arch greedy, --max-batch 1 no graphs vs auto" "$arch-auto.h5" "$arch-b1.h5"
    run_capture vbrun "${greedy[@]}" --input in.h5 --output "$arch-b7.h5" --max-batch 7 \
        --max-batched-tokens 256
    same "$arch greedy, --max-batch 7 --max-batched-tokens 256 vs auto" "$arch-auto.h5" "$arch-b7.h5"
    run_capture vbrun "${greedy[@]}" --input in.h5 --output "$arch-b64.h5" --max-batch 64 \
        --no-prefix-cache --max-batched-tokens 8192
    same "$arch greedy, --max-batch 64 --no-prefix-cache vs auto" "$arch-auto.h5" "$arch-b64.h5"
    run_capture vbrun "${greedy[@]}" --input in.h5 --output "$arch-b256.h5" --max-batch 256
    same "$arch greedy, --max-batch 256 vs auto" "$arch-auto.h5" "$arch-b256.h5"
    run_capture vbrun "${greedy[@]}" --input rev.h5 --output "$arch-rev.h5"
    same "$arch greedy, rows reversed vs auto" "$arch-auto.h5" "$arch-rev.h5"
    export VB_TABLE_BUCKETS=1
    run_capture vbrun "${greedy[@]}" --input in.h5 --output "$arch-tb.h5"
    unset VB_TABLE_BUCKETS
    same "$arch greedy, VB_TABLE_BUCKETS=1 vs auto" "$arch-auto.h5" "$arch-tb.h5"

    # stopped and resumed: SIGTERM once some rows are in the journal
    if [ "$tp" -eq 1 ]; then
        VB_JOURNAL_FLUSH_SECONDS=0.1 "$vb" "${greedy[@]}" --input in.h5 --output "$arch-res.h5" \
            --max-batch 3 --no-cuda-graphs >/dev/null 2>"$arch-res.err" &
        pid=$!
        # past the journal's header: some rows finished before the stop
        wait_for_journal "$arch-res.h5.journal" 0 "$pid" 600 0.05 &&
            wait_for_journal "$arch-res.h5.journal" "$(journal_size "$arch-res.h5.journal")" \
                "$pid" 600 0.05 && kill -TERM "$pid"
        wait "$pid"
        stop_rc=$?
        check "$arch: the stopped run exits 75 (stopped) or 0 (finished first)" \
            test "$stop_rc" -eq 75 -o "$stop_rc" -eq 0
        [ "$stop_rc" -eq 75 ] && echo "$arch: stopped with $(ids "$arch-res.h5" | wc -l) rows done"
        run_capture vbrun "${greedy[@]}" --input in.h5 --output "$arch-res.h5" --resume
        check "$arch: --resume exits 0" [ "$rc" -eq 0 ]
        same "$arch greedy, stopped + resumed vs auto" "$arch-auto.h5" "$arch-res.h5"
    fi

    sampled=("${base[@]}" --temperature 0.8 --top-p 0.95 --seed 1)
    run_capture vbrun "${sampled[@]}" --input in.h5 --output "$arch-s-auto.h5"
    check "$arch: sampled exits 0" [ "$rc" -eq 0 ]
    run_capture vbrun "${sampled[@]}" --input in.h5 --output "$arch-s-b1.h5" --max-batch 1
    same "$arch sampled, --max-batch 1 vs auto" "$arch-s-auto.h5" "$arch-s-b1.h5"
    run_capture vbrun "${sampled[@]}" --input in.h5 --output "$arch-s-b7.h5" --max-batch 7 \
        --max-batched-tokens 256 --no-cuda-graphs
    same "$arch sampled, --max-batch 7 no graphs vs auto" "$arch-s-auto.h5" "$arch-s-b7.h5"

    # the default mode, for the record
    plain=(generate --model "$model" --device cuda --max-new-tokens 40 --ignore-eos
           --temperature 0 --repetition-penalty 1 --input in.h5)
    vbrun "${plain[@]}" --output "$arch-p-auto.h5" 2>/dev/null &&
        vbrun "${plain[@]}" --output "$arch-p-b1.h5" --max-batch 1 --no-cuda-graphs 2>/dev/null &&
        echo "$arch without --batch-invariant: --max-batch 1 vs auto identical on" \
            "$(same_rows "$arch-p-auto.h5" "$arch-p-b1.h5") of $rows rows (not asserted)"
done
summary
