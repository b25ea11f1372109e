#!/usr/bin/env bash
# `voltbatch bench` on the tiny model under mpirun -np 2: it runs the
# engine on N synthetic prompts of the asked lengths and its report counts
# exactly N * input-len prompt tokens and N * output-len generated tokens;
# the scratch files are removed.
#
# usage: test_bench.sh VOLTBATCH MPIRUN MAKE_TINY_MODEL
# shellcheck disable=SC2154  # rc, out and err are set by run_capture in tests/lib.sh
set -u
vb=$1
mpirun=$2
make_model=$3
# shellcheck source=../lib.sh
. "$TEST_LIB"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null || exit 1
export TMPDIR="$dir/scratch"
mkdir -p "$TMPDIR"
run_capture "$mpirun" -np 2 "$vb" bench --model model --device cpu --input-len 40 --output-len 12 \
    --num-prompts 30 --report r.json
check "bench exits 0" [ "$rc" -eq 0 ]
check "bench prints generated tokens/s" contains "$out" "generated tokens/s"
check "report: 30 x 40 prompt tokens" grep -q '"prompt_tokens": 1200' r.json
check "report: 30 x 12 generated tokens" grep -q '"generated_tokens": 360' r.json
check "scratch files removed" [ -z "$(ls -A "$TMPDIR")" ]
run_capture "$vb" bench --model model --input-len x
check "bad number exits 2" [ "$rc" -eq 2 ]
summary
