#!/usr/bin/env bash
# scripts/kernel-timeline reads a CUPTI kernel trace
# (tests/bench/kernel-timeline-sample.txt: two decode steps of a1 under
# --batch-invariant on an H200, session 25, times rebased to 0) into its
# per-kernel table of critical times, and refuses traces it cannot read.
#
# usage: test_kernel_timeline.sh KERNEL_TIMELINE SAMPLE_TRACE
# shellcheck disable=SC2154,SC2016  # rc, out, err: run_capture (tests/lib.sh); the bash -c bodies expand their own $1
set -u
kt=$1
sample=$2
# shellcheck source=../lib.sh
. "$TEST_LIB"
command -v python3 >/dev/null || { echo "SKIP: python3 needed"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

run_capture "$kt" --trace "$sample"
check "exits 0" [ "$rc" -eq 0 ]
check "the steps, their time and kernel count" \
    grep -q "^2 steps, 4579.5 us a step, 204 kernels a step" <<<"$out"
check "largest critical time first: gate/up, 28 launches a step" \
    bash -c 'sed -n 3p <<<"$1" | grep -qE "^_Z9ch_kernelILi128ELi6ELi1EEv9ch_params +1184 +28\.0 +72\.62 +66\.36 +1858\.2$"' _ "$out"
check "the critical times add up to the step" \
    bash -c 'awk "NR > 2 { s += \$NF } END { exit !(s > 4578.5 && s < 4580.5) }" <<<"$1"' _ "$out"
run_capture "$kt" --trace "$sample" --by-predecessor
check "--by-predecessor: down (after gate/up) apart from o" \
    bash -c 'grep -E "^_Z9ch_kernelILi256ELi8ELi0EEv9ch_params +224 +28\.0 +56\.38 +36\.65 +1026\.3 +_Z9ch_kernelILi128ELi6ELi1EEv9ch_params$" <<<"$1" >/dev/null' _ "$out"
run_capture "$kt" --trace "$sample" --steps 1
check "--steps 1: one step" grep -q "^1 steps, " <<<"$out"

head -3 "$sample" >"$dir/short.txt"
run_capture "$kt" --trace "$dir/short.txt"
check "fewer than two steps: an error" \
    bash -c '[ "$1" -ne 0 ] && grep -q "fewer than two steps" <<<"$2"' _ "$rc" "$err"
: >"$dir/empty.txt"
run_capture "$kt" --trace "$dir/empty.txt"
check "an empty trace: an error naming it" \
    bash -c '[ "$1" -ne 0 ] && grep -q "empty.txt holds no kernels" <<<"$2"' _ "$rc" "$err"
{ head -5 "$sample"; echo "12 x 1 32 name"; } >"$dir/bad.txt"
run_capture "$kt" --trace "$dir/bad.txt"
check "a malformed line: an error naming the file and line" \
    bash -c '[ "$1" -ne 0 ] && grep -q "bad.txt:6: not" <<<"$2"' _ "$rc" "$err"
run_capture "$kt" --trace "$dir/missing.txt"
check "no trace: an error" bash -c '[ "$1" -ne 0 ] && grep -q "no trace at" <<<"$2"' _ "$rc" "$err"
run_capture "$kt" --frobnicate
check "an unknown option: exit 2" [ "$rc" -eq 2 ]
run_capture "$kt" --lib "$dir/none.so" -- true
check "no injection library: exit 2, named" \
    bash -c '[ "$1" -eq 2 ] && grep -q "no injection library at" <<<"$2"' _ "$rc" "$err"
summary
