#!/usr/bin/env bash
# --logprobs memory follows the rows being generated, not the whole input:
# every queued row got max_new x (1 + 2 x N) floats up front, so 20,000 rows
# at --max-new-tokens 2000 --logprobs 64 asked 20 GB before the first step
# (exit 1, "out of memory for logprobs"; 40,000 rows at 1024 tokens held
# 11 GB resident on the tiny model). Under a 4 GB address-space limit the
# run must finish. Each row's prompt is the end-of-turn token, which the
# tiny model repeats greedily: every row stops after one token.
#
# usage: test_logprobs_memory.sh VOLTBATCH MAKE_TINY_MODEL
set -u
vb=$1
make_model=$2
# shellcheck source=../lib.sh
. "$TEST_LIB"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null || { echo "make_tiny_model failed"; exit 1; }
eot_input "$vb" 20000
run_capture bash -c 'ulimit -v 4000000 && "$@"' _ "$vb" generate --device cpu --model model \
    --input p.h5 --output out.h5 --temperature 0 --max-new-tokens 2000 --logprobs 64
check "20,000 rows, --max-new-tokens 2000 --logprobs 64 in 4 GB: exit 0 ($(tail -1 <<<"$err"))" \
    [ "$rc" -eq 0 ]
check "every row stopped after one token, with its logprobs" \
    [ "$(one_token_rows "$vb" out.h5 '.*"logprobs":\[-')" = 20000 ]
summary
