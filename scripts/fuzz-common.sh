# shellcheck shell=bash
# What scripts/fuzz-safetensors and scripts/fuzz-tokenizer share: sourced,
# not run. Each target gets its own work folder, FUZZ_DIR/NAME (FUZZ_DIR
# defaults to build-fuzz), holding the binary, a copy of the seeds that
# libFuzzer grows (the committed seeds stay as they are), artifacts/ for a
# crashing input and fuzz.log.
#
#   fuzz_init NAME            checks that $CC (default clang) links
#                             -fsanitize=fuzzer (exit 2 with what to install)
#   fuzz_build ARGS...        compiles ARGS (sources, -l flags) into
#                             $fuzz_out/NAME with libFuzzer + ASan + UBSan
#   fuzz_run SEEDS SECONDS [ARGS...]
#                             runs it from the seed folder (ARGS: more
#                             libFuzzer options, e.g. -dict=FILE); exit 1 on
#                             any crash, leak, timeout or sanitizer report
#
# Environment: CC, FUZZ_DIR, JOBS (libFuzzer -jobs), FUZZ_MAX_LEN (default
# 65536 bytes per input).

fuzz_init() {
    fuzz_name=$1
    fuzz_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    fuzz_cc=${CC:-clang}
    fuzz_out=${FUZZ_DIR:-$fuzz_root/build-fuzz}/$fuzz_name
    mkdir -p "$fuzz_out/corpus" "$fuzz_out/artifacts"
    if ! command -v "$fuzz_cc" >/dev/null; then
        echo "fuzz-$fuzz_name: $fuzz_cc not found: install clang (Debian: apt-get install clang libclang-rt-14-dev)" >&2
        exit 2
    fi
    local probe
    probe=$(mktemp -d)
    printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n){(void)d;(void)n;return 0;}\n' >"$probe/p.c"
    if ! "$fuzz_cc" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" 2>"$probe/log"; then
        echo "fuzz-$fuzz_name: $fuzz_cc cannot link -fsanitize=fuzzer ($(head -1 "$probe/log")): install the libFuzzer runtime, e.g. apt-get install libclang-rt-14-dev (match your clang version: $($fuzz_cc --version | head -1))" >&2
        rm -rf "$probe"
        exit 2
    fi
    rm -rf "$probe"
}

fuzz_build() {
    "$fuzz_cc" -std=c11 -g -O1 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -I"$fuzz_root/src" "$@" -lm -o "$fuzz_out/$fuzz_name"
}

# fuzz_libs NAME PKG-CONFIG-NAME: the library's link flags, or -lNAME.
fuzz_libs() {
    pkg-config --cflags --libs "$2" 2>/dev/null || echo "-l$1"
}

fuzz_run() {
    local seeds=$1 seconds=$2 log=$fuzz_out/fuzz.log rc
    shift 2
    # Work on a copy: new inputs libFuzzer finds stay out of the committed seeds.
    cp "$seeds"/* "$fuzz_out/corpus/"
    set +e
    # shellcheck disable=SC2086  # JOBS adds one optional argument
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$fuzz_out/$fuzz_name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len="${FUZZ_MAX_LEN:-65536}" -artifact_prefix="$fuzz_out/artifacts/" ${JOBS:+-jobs=$JOBS} "$@" \
        "$fuzz_out/corpus" >"$log" 2>&1
    rc=$?
    set -e
    tail -n 5 "$log"
    if [ "$rc" -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log"; then
        echo "fuzz-$fuzz_name: FAILED (exit $rc); log $log, inputs in $fuzz_out/artifacts/" >&2
        exit 1
    fi
    echo "fuzz-$fuzz_name: no crash or sanitizer report in ${seconds}s ($(find "$fuzz_out/corpus" -type f | wc -l) corpus inputs)"
}
