#!/usr/bin/env bash
# Ranks that disagree are refused before anything starts (exit 2, naming
# what differs, no output or journal), not run: every rank of a job must
# read the same model and inputs with the same settings. Each rank is
# given its own command line here (mpirun's app contexts: A : B), as a
# job script that builds one per node, or node-local copies that differ,
# would. Without the check, a tensor-parallel group with two seeds fell
# out of step (a crash or the watchdog), and a data-parallel group with
# another model or input wrote its rows, exit 0, under rank 0's settings.
# A node-local copy of the same model (another path, other mtimes) agrees.
#
# usage: test_rank_agreement.sh VOLTBATCH MPIRUN MAKE_TINY_MODEL MAKE_IDS_INPUT
# shellcheck disable=SC2154  # rc and err are set by run_capture in tests/lib.sh
set -u
vb=$1
mpirun=$2
make_model=$3
make_input=$4
# shellcheck source=../lib.sh
. "$TEST_LIB"
dir=$(mktemp -d)
trap 'pkill -9 -f "^$vb generate.* --output $dir/" 2>/dev/null; rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null && "$make_model" other --seed 7 >/dev/null &&
    "$make_input" in.h5 40 300 && "$make_input" in2.h5 40 301 || exit 1
cp -r model copy && touch -d 2020-01-01 copy/* || exit 1
args=(generate --device cpu --input in.h5 --temperature 0.7 --seed 3 --max-new-tokens 8
      --collective-timeout 300)
# two_ranks NAME TP RANK1-ARGS...: rank 0 runs args with --model model, rank 1
# the same with RANK1-ARGS after them (a later option wins)
two_ranks() {
    local name=$1 tp=$2
    shift 2
    run_capture timeout 300 "$mpirun" -np 1 "$vb" "${args[@]}" --model model --tp "$tp" \
        --output "$dir/$name.h5" : -np 1 "$vb" "${args[@]}" --model model --tp "$tp" "$@" \
        --output "$dir/$name.h5"
}
refused() { # NAME WHAT: exit 2, one message naming WHAT, nothing written
    [ "$rc" -eq 2 ] && grep -q "rank 1: settings: the ranks disagree: $2" <<<"$err" &&
        [ ! -e "$1.h5" ] && [ ! -e "$1.h5.journal" ]
}

two_ranks seed 2 --seed 4
check "tp 2, another --seed on rank 1: exit 2 naming the seed" refused seed "seed is \"4\" on rank 1"
two_ranks tokens 2 --max-new-tokens 4
check "tp 2, another --max-new-tokens: refused" refused tokens "max_new_tokens is 4"
two_ranks batch 2 --max-batch 2
check "tp 2, another --max-batch: refused" refused batch "max_batch is 2"
two_ranks model 1 --model other
check "dp 2, another model's weights on rank 1: refused naming the file" \
    refused model "the model's file model.safetensors"
two_ranks input 1 --input in2.h5
check "dp 2, another input on rank 1: refused" refused input "input_checksum"
two_ranks copy 2 --model copy
check "a copy of the model at another path, other mtimes: runs (exit 0)" [ "$rc" -eq 0 ]
summary
