#!/usr/bin/env bash
# The command-line contract: --version, --help for each subcommand, and one-
# line errors with exit status 2 for unknown options, missing values and bad
# numbers.
set -u
vb=$1
# shellcheck source=../lib.sh
. "$TEST_LIB"

run_capture "$vb" --version
check "version exits 0" [ "$rc" -eq 0 ]
check "version names the revision" contains "$out" "(git "
check "version names HDF5" contains "$out" "HDF5:"
check "version names MPI" contains "$out" "MPI:"
check "version names the backends" contains "$out" "backends: cpu"

for cmd in generate bench inspect tokenize pack unpack; do
    run_capture "$vb" "$cmd" --help
    check "$cmd --help exits 0" [ "$rc" -eq 0 ]
    check "$cmd --help prints usage" contains "$out" "usage:"
    run_capture "$vb" "$cmd" --no-such-option
    check "$cmd unknown option exits 2" [ "$rc" -eq 2 ]
    check "$cmd unknown option: one line naming it" one_line "$err"
    check "$cmd unknown option names it" contains "$err" "--no-such-option"
done

run_capture "$vb" generate --help
check "generate --help lists --tp" contains "$out" "--tp N"
check "generate --help lists exit codes" contains "$out" "75 stopped by a signal"

run_capture "$vb" generate --model m --input i --output o --tp x
check "bad number exits 2" [ "$rc" -eq 2 ]
check "bad number: one line" one_line "$err"
check "bad number names option and value" contains "$err" "--tp: 'x' is not an integer"

run_capture "$vb" generate --model m --input i --output o --top-p 1.5
check "out of range exits 2" [ "$rc" -eq 2 ]
check "out of range names option" contains "$err" "--top-p"
# beyond a double (strtod's ERANGE) was "not a number"
run_capture "$vb" generate --model m --input i --output o --top-p 1e-320
check "--top-p 1e-320 exits 2" [ "$rc" -eq 2 ]
check "--top-p 1e-320 is too near zero, not 'not a number'" contains "$err" \
    "--top-p: '1e-320' is too large or too near zero (range [0, 1])"

not_contains() { ! contains "$@"; }
# A positive temperature so small that logits / T overflow fp32 made every
# row an error row after the whole run: refused up front, 0 and 1e-5 not.
for cmd in generate bench; do
    io=(--input i); [ "$cmd" = generate ] && io+=(--output o)
    run_capture "$vb" $cmd --model m "${io[@]}" --temperature 1e-40
    check "$cmd --temperature 1e-40 exits 2" [ "$rc" -eq 2 ]
    check "$cmd --temperature 1e-40: one line" one_line "$err"
    check "$cmd --temperature 1e-40: names it" contains "$err" "--temperature: 1e-40 is too small"
    for t in 0 1e-5; do
        run_capture "$vb" $cmd --model m "${io[@]}" --temperature $t
        check "$cmd --temperature $t is taken" not_contains "$err" "--temperature"
    done
done

# a seed past 2^64 - 1 is too large, not "not a non-negative integer"
run_capture "$vb" generate --model m --input i --output o --seed 18446744073709551616
check "--seed 2^64 exits 2" [ "$rc" -eq 2 ]
check "--seed 2^64: too large" contains "$err" "--seed: '18446744073709551616' is too large"

# --gpu-memory-utilization: one range for generate, bench and inspect (bench
# took 0.01; inspect planned 0.01, a run generate refuses)
for cmd in generate bench inspect; do
    io=()
    [ "$cmd" = inspect ] || io+=(--input i)
    [ "$cmd" = generate ] && io+=(--output o)
    run_capture "$vb" $cmd --model m "${io[@]}" --gpu-memory-utilization 0.02
    check "$cmd --gpu-memory-utilization 0.02 exits 2" [ "$rc" -eq 2 ]
    check "$cmd --gpu-memory-utilization 0.02: names it" contains "$err" "--gpu-memory-utilization"
done

# --tp: one range for generate, bench and inspect (inspect stopped at 1024)
for cmd in generate bench inspect; do
    io=()
    [ "$cmd" = inspect ] || io+=(--input i)
    [ "$cmd" = generate ] && io+=(--output o)
    run_capture "$vb" $cmd --model m "${io[@]}" --tp 4097
    check "$cmd --tp 4097: out of range [1, 4096] ($err)" contains "$err" "4096"
    run_capture "$vb" $cmd --model m "${io[@]}" --tp 2048
    check "$cmd --tp 2048: not refused for its range" \
        bash -c '! grep -q "out of range\|must be" <<<"$1"' _ "$err"
done

run_capture "$vb" generate --model
check "missing value exits 2" [ "$rc" -eq 2 ]
check "missing value: one line" one_line "$err"
check "missing value names option" contains "$err" "'--model' needs a value"

run_capture "$vb" generate --input i --output o
check "missing --model exits 2" [ "$rc" -eq 2 ]
check "missing --model named" contains "$err" "--model DIR is required"

run_capture "$vb" generate --model m --input i --output o --device tpu
check "bad choice exits 2" [ "$rc" -eq 2 ]
check "bad choice names the choices" contains "$err" "auto, cpu, cuda"

run_capture "$vb" generate --help
check "generate --help lists --quantize int8" contains "$out" "--quantize int8"
# which distribution the logprobs are of was said nowhere a user reads
# (transformers' scores are after the warpers, vLLM's raw by default)
check "generate --help says which logits --logprobs reports" \
    contains "$out" "log-softmax of the logits after the penalties and the"
for cmd in "generate --input i --output o" bench inspect; do
    # shellcheck disable=SC2086  # the command and its required options
    run_capture "$vb" $cmd --model m --quantize int4
    cmd=${cmd%% *}
    check "$cmd --quantize int4 exits 2" [ "$rc" -eq 2 ]
    check "$cmd --quantize int4: one line" one_line "$err"
    check "$cmd --quantize int4 names the choice" contains "$err" "--quantize: 'int4' is not supported (int8)"
done

# --logprobs 0 was taken and recorded nothing (session 31): 1 to 64
run_capture "$vb" generate --model m --input i --output o --logprobs 0
check "--logprobs 0 exits 2 with the range ($err)" contains "$err" "--logprobs: 0 is out of range [1, 64]"

run_capture "$vb" frobnicate
check "unknown command exits 2" [ "$rc" -eq 2 ]
check "unknown command: one line" one_line "$err"

run_capture "$vb"
check "no command exits 2" [ "$rc" -eq 2 ]

# arguments after --help or --version were dropped without a word
for a in --help help --version; do
    run_capture "$vb" $a generate
    check "$a generate exits 2" [ "$rc" -eq 2 ]
    check "$a generate: one line naming it" one_line "$err"
    check "$a generate: says it takes no arguments" contains "$err" "$a takes no arguments (got 'generate'"
done

summary
