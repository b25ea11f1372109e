#!/usr/bin/env bash
# scripts/ncu-source-top reads ncu's per-instruction source table
# (tests/bench/ncu-source-sample.csv: 30 SASS lines of the 4-bit mma GEMV
# on an H100, session 38, the stall columns kept) into its stall samples by
# opcode and by instruction, and refuses files it cannot read.
#
# usage: test_ncu_source_top.sh NCU_SOURCE_TOP SAMPLE_CSV
# shellcheck disable=SC2154,SC2016  # rc, out, err: run_capture (tests/lib.sh); the bash -c bodies expand their own $1
set -u
top=$1
sample=$2
# shellcheck source=../lib.sh
. "$TEST_LIB"
command -v python3 >/dev/null || { echo "SKIP: python3 needed"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

run_capture "$top" "$sample" --top 3
check "exits 0" [ "$rc" -eq 0 ]
check "the kernel profiled" grep -q "^void gemv_quant_mma_kernel<(int)4, (int)8," <<<"$out"
check "its instructions and samples" grep -q "^30 instructions, 961 stall samples$" <<<"$out"
check "the samples by opcode, the PRMTs first" grep -q "^by opcode: PRMT 44.7 %, BRA 14.3 %" <<<"$out"
check "three instructions, most samples first, with their reasons" \
    bash -c '[ "$(grep -c " %  " <<<"$1")" -eq 3 ] &&
             grep -A1 "^by opcode" <<<"$1" | tail -1 |
             grep -qE "^ 15\.9 %  PRMT R61, R61, 0x5410, R30 +long_sb=153$"' _ "$out"
check "the barrier's samples named" grep -qE "BRA .* barrier=126 " <<<"$out"

run_capture "$top" "$dir/missing.csv"
check "a missing file: exit 2, named" bash -c '[ "$1" -eq 2 ] && grep -q "missing.csv" <<<"$2"' _ "$rc" "$err"
printf 'bench output\n"Kernel Name","k"\n' >"$dir/notable.csv"
run_capture "$top" "$dir/notable.csv"
check "no source table: exit 2" bash -c '[ "$1" -eq 2 ] && grep -q "no source table" <<<"$2"' _ "$rc" "$err"
run_capture "$top" "$sample" --top
check "--top without a number: exit 2" [ "$rc" -eq 2 ]
summary
