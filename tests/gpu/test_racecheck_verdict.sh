#!/usr/bin/env bash
# scripts/racecheck-verdict (the GPU check's racecheck verdict) on racecheck
# output: the hazards cuBLAS's Hopper GEMM reported on an H200
# (fixtures/racecheck-h200-cublas.txt, from test_cuda_backend_ops) are
# recorded but pass; a hazard in one of our kernels, mangled or demangled,
# fails; a test that failed under the tool, or the tool's internal error,
# fails; a skipped test passes.
#
# usage: test_racecheck_verdict.sh RACECHECK_VERDICT KERNELS_DIR FIXTURE
# shellcheck disable=SC2154  # rc, out, err: run_capture (tests/lib.sh)
set -u
verdict=$1
kernels=$2
fixture=$3
# shellcheck source=../lib.sh
. "$TEST_LIB"
command -v python3 >/dev/null || { echo "SKIP: python3 needed"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# One meson test-log line: name, result, and the test's output.
log_line() {
    python3 -c 'import json, sys; print(json.dumps({"name": sys.argv[1], "result": sys.argv[2], "duration": 1.5, "stdout": open(sys.argv[3]).read()}))' "$@"
}

cat >"$dir/ours-demangled.txt" <<'T'
========= Error: Race reported between Write access at void gemv_kernel<__half, 0, 1>(const __half *, int)+0x120
=========     and Read access at void gemv_kernel<__half, 0, 1>(const __half *, int)+0x200 [32 hazards]
T
cat >"$dir/ours-mangled.txt" <<'T'
========= Error: Race reported between Write access at _Z22sampler_summary_kernelPcPKfS1_+0x80
=========     and Read access at _Z22sampler_summary_kernelPcPKfS1_+0x90 [2 hazards]
T
# a library kernel whose name contains one of ours as a part: not ours
cat >"$dir/lookalike.txt" <<'T'
========= Error: Race reported between Write access at gemv_kernel_val<float>(int)+0x80
=========     and Read access at gemv_kernel_val<float>(int)+0x90 [2 hazards]
T
printf '========= Internal Sanitizer Error: The Sanitizer failed to handle a hardware exception.\n' >"$dir/internal.txt"
: >"$dir/empty.txt"

run_one() { # NAME RESULT FILE -> $rc, $out, $dir/out/
    rm -rf "$dir/out"
    mkdir -p "$dir/out"
    log_line "$1" "$2" "$3" >"$dir/log.json"
    run_capture "$verdict" "$dir/log.json" "$kernels" "$dir/out"
}

run_one ops OK "$fixture"
check "cuBLAS's hazards alone: exit 0" [ "$rc" -eq 0 ]
check "the test keeps OK in the verdict log" grep -q '"result": "OK"' "$dir/out/testlog-racecheck-ours.json"
check "library hazards recorded with their count" \
    grep -qP '^ops\tnvjet_sm90_hsh_128x128_64x6_2x1_v_bz_TNT\t2048 hazards$' "$dir/out/racecheck-library.txt"

run_one ops OK "$dir/ours-demangled.txt"
check "a hazard in gemv_kernel (demangled): exit 1" [ "$rc" -eq 1 ]
check "named in the output" grep -q "hazard in our kernel" <<<"$out"
check "FAIL in the verdict log" grep -q '"result": "FAIL"' "$dir/out/testlog-racecheck-ours.json"

run_one sampler OK "$dir/ours-mangled.txt"
check "a hazard in sampler_summary_kernel (mangled): exit 1" [ "$rc" -eq 1 ]

run_one lib OK "$dir/lookalike.txt"
check "gemv_kernel_val is not gemv_kernel: exit 0" [ "$rc" -eq 0 ]

run_one ops OK "$dir/internal.txt"
check "the tool's internal error: exit 1" [ "$rc" -eq 1 ]

run_one ops FAIL "$dir/empty.txt"
check "a test that failed under the tool: exit 1" [ "$rc" -eq 1 ]

run_one ops SKIP "$dir/empty.txt"
check "a skipped test: exit 0" [ "$rc" -eq 0 ]

run_capture "$verdict" "$dir/log.json" "$dir" "$dir/out"
check "no kernels in KERNELS_DIR: exit 2" [ "$rc" -eq 2 ]
summary
