#!/usr/bin/env bash
# `voltbatch bench` on the tiny model under mpirun -np 2: it runs the
# engine on N synthetic prompts of the asked lengths and its report counts
# exactly N * input-len prompt tokens and N * output-len generated tokens;
# the scratch files are removed. Every figure of the summary is printed and
# in the report's "metrics"; on the CPU backend the GPU-only ones (MBU, MFU,
# peaks) are null, never a number. --prefix-len makes the prompts share
# their first tokens (the prefix cache then hits; without it, none).
#
# usage: test_bench.sh VOLTBATCH MPIRUN MAKE_TINY_MODEL
# shellcheck disable=SC2154  # rc, out and err are set by run_capture in tests/lib.sh
set -u
vb=$1
mpirun=$2
make_model=$3
# shellcheck source=../lib.sh
. "$TEST_LIB"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null || exit 1
export TMPDIR="$dir/scratch"
mkdir -p "$TMPDIR"
run_capture "$mpirun" -np 2 "$vb" bench --model model --device cpu --input-len 40 --output-len 12 \
    --num-prompts 30 --report r.json
check "bench exits 0" [ "$rc" -eq 0 ]
check "bench prints generated tokens/s" contains "$out" "generated tokens/s"
check "report: 30 x 40 prompt tokens" grep -q '"prompt_tokens": 1200' r.json
check "report: 30 x 12 generated tokens" grep -q '"generated_tokens": 360' r.json
check "scratch files removed" [ -z "$(ls -A "$TMPDIR")" ]
for figure in "time to first token  p50" "time per output tok  p50" "queue before admit   p50" \
    "admission to finish  p50" "decode step          p50" "KV cache peak" "prefill steps" \
    "decode  steps" "per step" "peaks                null: CPU backend" \
    "MBU (decode)             null" "MBU (decode forward)     null" \
    "MFU (all steps)          null" \
    "MFU (prefill steps)      null"; do
    check "bench prints: $figure" contains "$out" "$figure"
done
# the times add up: load + engine = elapsed (writing the output is neither:
# engine_s took it in before, session 31, understating roofline_fraction)
check "report: load_s + engine_s = elapsed_s" python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
sys.exit(abs(r["load_s"] + r["engine_s"] - r["elapsed_s"]) > 1e-6)' r.json
# dp 2: the figures are group 0's, which runs half of the 30 equal rows
check "ttft over group 0's 15 rows" grep -Eq '"n": 15,' r.json
for key in ttft_s tpot_s queue_s latency_s decode_step_s kv_cache steps per_step; do
    check "report metrics: $key" grep -q "\"$key\": {" r.json
done
check "report: peak KV blocks > 0" grep -Eq '"peak_blocks": [1-9]' r.json
check "report: sequences at once > 0" grep -Eq '"peak_seqs": [1-9]' r.json
check "report: decode steps counted" grep -Eq '"steps": [1-9]' r.json
for key in mbu mbu_forward mfu mfu_prefill peaks; do
    check "report: $key null on the CPU" grep -q "\"$key\": null" r.json
done
check "report: the device is cpu" grep -q '"device": "cpu"' r.json

run_capture "$mpirun" -np 1 "$vb" bench --model model --device cpu --input-len 8 --output-len 4 \
    --num-prompts 12 --prefix-len 48 --max-batch 4 --report p.json
check "prefix bench exits 0" [ "$rc" -eq 0 ]
check "report: 12 x (48 + 8) prompt tokens" grep -q '"prompt_tokens": 672' p.json
check "shared prefix hits the cache" grep -Eq '"prefix_hit_rate": 0\.[1-9]' p.json
run_capture "$mpirun" -np 1 "$vb" bench --model model --device cpu --input-len 8 --output-len 4 \
    --num-prompts 12 --prefix-len 48 --max-batch 4 --no-prefix-cache --report q.json
check "no prefix cache: no hits" grep -Eq '"prefix_hit_rate": 0(\.0)?,' q.json
check "report: --max-batch 4 runs 4 sequences at once" grep -q '"peak_seqs": 4' q.json
# the report says which sampling it timed: greedy unless asked, else the
# options given (the same settings object --resume compares)
check "report settings: greedy by default" grep -Eq '"temperature": 0(\.0)?,' q.json
run_capture "$mpirun" -np 1 "$vb" bench --model model --device cpu --input-len 8 --output-len 4 \
    --num-prompts 4 --temperature 0.8 --top-p 0.95 --top-k 40 --min-p 0.05 --report s.json
check "sampled bench exits 0" [ "$rc" -eq 0 ]
check "report settings: the sampling asked for" python3 -c '
import json, sys
s = json.load(open("s.json"))["settings"]
sys.exit(not (s["temperature"] == 0.8 and s["top_p"] == 0.95 and s["top_k"] == 40
              and s["min_p"] == 0.05))'
# every row done by its prompt step (one output token): no decode steps,
# whose rates are null in the report and said so, not printed as "nan"
run_capture "$mpirun" -np 1 "$vb" bench --model model --device cpu --input-len 8 --output-len 1 \
    --num-prompts 4 --report o1.json
check "one-token bench exits 0" [ "$rc" -eq 0 ]
check "one-token bench: no decode step" grep -q '"flops_per_s": null' o1.json
check "one-token bench prints no nan" bash -c '! grep -qi nan <<<"$1"' _ "$out"
check "one-token bench: the decode rates said null" contains "$out" "FLOP/s and B/s null"
run_capture "$vb" bench --model model --top-p 2
check "top-p out of range exits 2" [ "$rc" -eq 2 ]
# Stopped by SIGTERM mid-run: exit 75, says so, and the scratch folder goes
# with the stopped run's journal in it (it stayed, session 44).
"$vb" bench --model model --device cpu --input-len 16 --output-len 400 --num-prompts 4000 \
    --report stop.json >stop.out 2>stop.err &
pid=$!
for _ in $(seq 1200); do # the run has begun: its journal is there
    compgen -G "$TMPDIR/voltbatch-bench-*/out.h5.journal" >/dev/null && break
    sleep 0.05
done
kill -TERM "$pid"
wait "$pid"
rc=$?
check "bench stopped by SIGTERM: exit 75 (got $rc)" [ "$rc" -eq 75 ]
check "bench stopped: says so" grep -q "stopped by a signal before the end" stop.err
check "bench stopped: scratch folder removed" \
    bash -c '! compgen -G "$1/voltbatch-bench-*" >/dev/null' _ "$TMPDIR"
# --help needs no environment: a bad knob does not refuse it
run_capture env VB_CPU_THREADS=0 "$vb" bench --help
check "bench --help with a bad VB_CPU_THREADS: exit 0 (got $rc)" [ "$rc" -eq 0 ]
check "bench --help says what mfu_prefill is" contains "$out" "mfu_prefill: the same over
      the prefill steps alone"
run_capture "$vb" bench --model model --input-len x
check "bad number exits 2" [ "$rc" -eq 2 ]
summary
