#!/usr/bin/env bash
# tests/bench/run-set's commands, through --dry-run (no GPU needed): the
# workloads' bench options, --quick's prompt counts, --sampled's extra
# cases, --keep-outputs / --compare-to keeping the completions
# (bench --keep-scratch), data-parallel configs (tp x dp ranks), the
# quantized and int8-cache configs with the table's ratios against fp16
# (reports made up here), and a clear refusal of an unknown option.
#
# usage: test_run_set.sh RUN_SET
# shellcheck disable=SC2154,SC2016  # rc, out, err: run_capture (tests/lib.sh); the bash -c bodies expand their own $1
set -u
rs=$1
# shellcheck source=../lib.sh
. "$TEST_LIB"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export OUT=$dir

run_capture "$rs" --dry-run --only c,f --sampled --quick --configs 7b-tp1
check "dry run exits 0" [ "$rc" -eq 0 ]
benches=$(grep -c 'voltbatch bench' <<<"$out")
check "--sampled: c, cs, f, fs (4 bench commands)" [ "$benches" -eq 4 ]
check "--quick c: 200 prompts of 1,024 + 256" \
    grep -q -- '--input-len 1024 --output-len 256 --num-prompts 200 --report' <<<"$out"
check "cs: the sampled settings" \
    grep -q -- '--num-prompts 200 --temperature 0.8 --top-p 0.95 --top-k 50 --report' <<<"$out"
check "f: log-normal lengths" grep -q -- '--length-dist lognormal --input-len 600' <<<"$out"
check "completions not kept by default" bash -c '! grep -q -- --keep-scratch <<<"$1"' _ "$out"

run_capture "$rs" --dry-run --only c --configs 7b-tp1 --repeat 1 --warmup 0 --keep-outputs
check "--keep-outputs: bench keeps its scratch files" \
    grep -q -- '--num-prompts 2000 --keep-scratch --report' <<<"$out"
run_capture "$rs" --dry-run --only c --quick --configs 7b-tp1 --compare-to "$dir/earlier"
check "--compare-to keeps the completions too" grep -q -- '--keep-scratch' <<<"$out"

run_capture "$rs" --dry-run --only c --quick --configs 7b-tp1-dp2,14b-tp2-dp2-nop2p
check "7b-tp1-dp2: two ranks, tp 1 (two data-parallel groups)" \
    grep -q -- 'mpirun -np 2 .*--tp 1 .*c-7b-tp1-dp2-r1.json' <<<"$out"
check "14b-tp2-dp2-nop2p: four ranks, tp 2, NCCL P2P off" \
    grep -q -- 'mpirun -np 4 .*NCCL_P2P_DISABLE=1 .*--tp 2 .*c-14b-tp2-dp2-nop2p-r1.json' <<<"$out"
N_GPUS=1 run_capture "$rs" --dry-run --only c --quick --configs 7b-tp1-dp2
check "a data-parallel config on too few GPUs is skipped, named" \
    bash -c 'grep -q "7b-tp1-dp2 needs 2 GPUs, this machine has 1: skipped" <<<"$1" &&
             ! grep -q "voltbatch bench" <<<"$1"' _ "$out"

# issue #19's long-context case: dl on the YaRN model of the 14B shape
run_capture "$rs" --dry-run --only dl --quick --configs 14b-tp1-yarn4
check "dl on -yarn4: its own model folder, 65,000-token prompts at --max-model-len 65536" \
    grep -q -- '--model /tmp/vb-qwen2.5-14b-yarn4 .*--input-len 65000 --output-len 256 --num-prompts 1 --max-model-len 65536' \
    <<<"$out"

# issue #21's configs: quantized checkpoints beside the fp16 model, or
# options of bench; and the table's ratios against the fp16 case
run_capture "$rs" --dry-run --only a1 --quick --configs 7b-tp1-awq4,7b-tp1-gptq8,7b-tp1-int8-kv8
check "-awq4 / -gptq8: the quantized checkpoints' folders" \
    bash -c 'grep -q -- "--model /tmp/vb-qwen2.5-7b-awq4 " <<<"$1" &&
             grep -q -- "--model /tmp/vb-qwen2.5-7b-gptq8 " <<<"$1"' _ "$out"
check "-int8-kv8: --quantize int8 --kv-cache-dtype int8 on the fp16 model" \
    grep -q -- '--model /tmp/vb-qwen2.5-7b .*--quantize int8 --kv-cache-dtype int8 --report' \
    <<<"$out"
mkdir -p "$dir/q"
python3 - "$dir/q" <<'PY'
import json, sys
def rep(name, tpot, gen, blocks, seqs, prompts=200, **more):
    with open(f"{sys.argv[1]}/{name}-r1.json", "w") as f:
        json.dump({"engine_s": 10.0, "rows_this_run": 1, "prompt_tokens": 128,
                   "generated_tokens": gen, "bench": {"num_prompts": prompts},
                   "metrics": {"tpot_s": {"p50": tpot},
                               "kv_cache": {"peak_blocks": 10, "total_blocks": blocks,
                                            "peak_fraction": 10 / blocks,
                                            "peak_seqs": seqs}, **more}}, f)
rep("a1-7b-tp1", 0.004, 256, 1000, 1)
rep("a1-7b-tp1-awq4", 0.002, 256, 1000, 1)
rep("c-7b-tp1", 0.02, 40000, 1000, 60)
rep("c-7b-tp1-int8-kv8", 0.02, 44000, 1940, 117)
rep("c-7b-tp1-kv8", 0.02, 41000, 1940, 200)  # all 200 prompts at once
rep("dl-14b-tp1-yarn4", 0.03, 512, 9000, 2, mfu_prefill=0.512, mbu=0.77)
PY
OUT=$dir/q run_capture "$rs" --table-only
check "the table: dl's prefill MFU and decode MBU with #19's targets" \
    bash -c 'grep -q "dl: 14b-tp1-yarn4: prefill MFU 51.2 % (want >= 55 %)" <<<"$1" &&
             grep -q "dl: 14b-tp1-yarn4: decode MBU 77.0 % (want >= 75 %)" <<<"$1"' _ "$out"
check "the table: a1 awq4 / fp16 from TPOT, with the issue's target" \
    grep -q 'a1: 7b-tp1-awq4 / fp16: 2.00x decode speed (TPOT p50) (want >= 2.5)' <<<"$out"
check "the table: c int8 + kv8 / fp16 generated tokens/s and the K/V blocks" \
    bash -c 'grep -q "c: 7b-tp1-int8-kv8 / fp16: 1.10x generated tokens/s" <<<"$1" &&
             grep -q "c: 7b-tp1-int8-kv8 / fp16: 1.94x the K/V cache" <<<"$1" &&
             grep -q "c: 7b-tp1-int8-kv8 / fp16: 1.95x the sequences run at once (117 against 60;" <<<"$1" &&
             ! grep -q "c: 7b-tp1-int8-kv8 .*every prompt ran at once" <<<"$1"' \
    _ "$out"
check "the table: a kv8 run with every prompt in flight says the prompts bound it" \
    grep -q "c: 7b-tp1-kv8 / fp16: 3.33x the sequences run at once (200 against 60; .*: every prompt ran at once here" \
    <<<"$out"

run_capture "$rs" --only c --bogus
check "an unknown option: exit 2, named" \
    bash -c '[ "$1" -eq 2 ] && grep -q "unknown option .--bogus." <<<"$2"' _ "$rc" "$err"
summary
