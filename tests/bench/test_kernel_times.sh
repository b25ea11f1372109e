#!/usr/bin/env bash
# scripts/kernel-times reads an ncu CSV (tests/bench/kernel-times-sample.csv:
# 15 launches of a decode step on the H200, session 6) into its per-kernel
# table and launch list, and refuses CSVs it cannot read.
#
# usage: test_kernel_times.sh KERNEL_TIMES SAMPLE_CSV
# shellcheck disable=SC2154,SC2016  # rc, out, err: run_capture (tests/lib.sh); the bash -c bodies expand their own $1
set -u
kt=$1
sample=$2
# shellcheck source=../lib.sh
. "$TEST_LIB"
command -v python3 >/dev/null || { echo "SKIP: python3 needed"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

run_capture "$kt" --csv "$sample" --last 3
check "exits 0" [ "$rc" -eq 0 ]
check "counts the launches and their time" grep -qx "15 launches, 317.2 us profiled" <<<"$out"
# gate/up (grid 2368): 68.96 and 67.04 us; RoPE: 4.67 and 4.61 us
check "groups by kernel and grid, largest total first" \
    bash -c 'sed -n 3p <<<"$1" | grep -qE "^gemv_kernel<1, 2> +\(2368, 1, 1\) +2 +68\.00 +136\.0 +42\.9%$"' _ "$out"
check "mean of a group" grep -qE "^rope_kv_kernel +\(1, 32, 1\) +2 +4\.64 +9\.3 " <<<"$out"
check "the last launches in order" \
    bash -c '[ "$(grep -A3 "^last 3 launches:" <<<"$1" | tail -3 | awk "{print \$1}" | tr "\n" " ")" = "1196 1197 1198 " ]' _ "$out"

head -1 "$sample" >"$dir/empty.csv"
run_capture "$kt" --csv "$dir/empty.csv"
check "a CSV without rows: an error naming it" \
    bash -c '[ "$1" -ne 0 ] && grep -q "empty.csv holds no ncu rows" <<<"$2"' _ "$rc" "$err"
sed 's/"ns"/"furlong"/' "$sample" >"$dir/unit.csv"
run_capture "$kt" --csv "$dir/unit.csv"
check "an unknown time unit: an error naming it" \
    bash -c '[ "$1" -ne 0 ] && grep -q "unknown time unit .furlong." <<<"$2"' _ "$rc" "$err"
run_capture "$kt" --csv "$dir/missing.csv"
check "no CSV: an error" bash -c '[ "$1" -ne 0 ] && grep -q "no CSV at" <<<"$2"' _ "$rc" "$err"
summary
