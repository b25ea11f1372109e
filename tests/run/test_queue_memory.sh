#!/usr/bin/env bash
# The scheduler's memory follows the rows being generated, not the whole
# input: every queued row got its prompt + --max-new-tokens tokens and a
# KV block table (with chain hashes) for all of them up front, ~38 KB of
# address space a row at --max-new-tokens 8000, so 100,000 queued rows
# asked 3.8 GB before the first step (exit 1 under 2 GB, "setting up the
# queueing rows: out of memory"; 200,000 rows at 2000 tokens held 1.3 GB
# resident on the tiny model, against 0.26 GB at 2 tokens). Each row's
# prompt is the end-of-turn token, which the tiny model repeats greedily:
# every row stops after one token.
#
# The limit is on the data segment (ulimit -d: heap and private mappings),
# not the address space, which a voltbatch linked with CUDA's libraries
# exceeds in libraries alone; the build before the fix fails it still.
#
# usage: test_queue_memory.sh VOLTBATCH MAKE_TINY_MODEL
set -u
vb=$1
make_model=$2
# shellcheck source=../lib.sh
. "$TEST_LIB"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null || { echo "make_tiny_model failed"; exit 1; }
eot_input "$vb" 100000
run_capture bash -c 'ulimit -d 2000000 && "$@"' _ "$vb" generate --device cpu --model model \
    --input p.h5 --output out.h5 --temperature 0 --max-new-tokens 8000 --max-model-len 8192
check "100,000 rows queued at --max-new-tokens 8000 in 2 GB: exit 0 ($(tail -1 <<<"$err"))" \
    [ "$rc" -eq 0 ]
check "every row stopped after one token" [ "$(one_token_rows "$vb" out.h5)" = 100000 ]
summary
