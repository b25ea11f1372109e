#!/usr/bin/env bash
# tests/bench/run-set's commands, through --dry-run (no GPU needed): the
# workloads' bench options, --quick's prompt counts, --sampled's extra
# cases, --keep-outputs / --compare-to keeping the completions
# (bench --keep-scratch), data-parallel configs (tp x dp ranks), and a
# clear refusal of an unknown option.
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

run_capture "$rs" --only c --bogus
check "an unknown option: exit 2, named" \
    bash -c '[ "$1" -eq 2 ] && grep -q "unknown option .--bogus." <<<"$2"' _ "$rc" "$err"
summary
